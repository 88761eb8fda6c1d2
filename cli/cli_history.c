/* cli_history.c: the commands that read or write a room's history in bulk:
 * history (with --follow: live events after the history, resumed after a
 * cut without a gap or a repeat), export (the room in seq order as JSON
 * lines) and import (those lines published back, idempotently). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "gw_json.h"
#include "parley/v1/history.pb-c.h"
#include "parley/v1/stream.pb-c.h"

#define PAGE_MAX 1000
#define FOLLOW_BACKOFF_MIN_MS 200
#define FOLLOW_BACKOFF_MAX_MS 5000
#define IMPORT_WINDOW 64 /* publishes in flight: they share group commits */

static int list_page(cli *c, const char *room, int by_rev, uint64_t cursor,
                     unsigned limit, Parley__V1__ListMessagesResponse **out)
{
    Parley__V1__ListMessagesRequest req =
        PARLEY__V1__LIST_MESSAGES_REQUEST__INIT;
    req.room = (char *)room;
    req.limit = limit;
    if (by_rev) {
        req.cursor_case = PARLEY__V1__LIST_MESSAGES_REQUEST__CURSOR_AFTER_REV;
        req.after_rev = cursor;
    } else if (cursor) {
        req.cursor_case = PARLEY__V1__LIST_MESSAGES_REQUEST__CURSOR_BEFORE_SEQ;
        req.before_seq = cursor;
    }
    return cli_unary(c, "/parley.v1.History/ListMessages", &req.base,
                     &parley__v1__list_messages_response__descriptor,
                     (ProtobufCMessage **)out);
}

/* ---- history [--follow] ------------------------------------------------- */

static const char history_usage[] =
    "usage: parley history ROOM [--limit N | --after-rev REV] [--follow] "
    "[--json]\n"
    "\n"
    "Prints ROOM's newest N messages (default 50, at most 1000) in seq order,\n"
    "one per line: \"#SEQ rREV TIME AUTHOR: BODY\" (--json: one\n"
    "parley.v1.Message per line). With --after-rev REV: every message changed\n"
    "after REV (new, edited, deleted), in rev order, all pages.\n"
    "\n"
    "--follow: then prints each change as it happens (the message in its new\n"
    "state), until Ctrl-C (exit 0). After a cut (parleyd restarted, network)\n"
    "it reconnects with backoff and resumes after the last change printed:\n"
    "nothing is missed and nothing is printed twice. Notes about the\n"
    "connection go to stderr.\n";

typedef struct history_opts {
    long long limit, after_rev;
    int follow;
} history_opts;

static int history_opt(cli *c, int ch, const char *arg, void *ud)
{
    history_opts *o = ud;
    switch (ch) {
    case 'l':
        if ((o->limit = cli_number(arg, PAGE_MAX)) < 0)
            return cli_usage_error(c, history_usage, "--limit is 1..1000");
        return 0;
    case 'a':
        o->after_rev = strcmp(arg, "0") == 0 ? 0 : cli_number(arg, 1LL << 62);
        if (o->after_rev < 0)
            return cli_usage_error(c, history_usage, "--after-rev is a rev");
        return 0;
    case 'f': o->follow = 1; return 0;
    default: return -1;
    }
}

/* Prints the history part; *last is the rev to resume after. */
static int print_history(cli *c, const char *room, const history_opts *o,
                         uint64_t *last)
{
    Parley__V1__ListMessagesResponse *r = NULL;
    if (o->after_rev < 0) {
        int rc =
            list_page(c, room, 0, 0, o->limit ? (unsigned)o->limit : 50, &r);
        if (rc) return rc;
        for (size_t i = 0; i < r->n_messages && !rc; i++)
            rc = cli_print_msg(c, r->messages[i]);
        *last = r->room ? r->room->head_rev : 0;
        protobuf_c_message_free_unpacked(&r->base, NULL);
        return rc;
    }
    uint64_t cursor = (uint64_t)o->after_rev;
    for (;;) {
        int rc = list_page(c, room, 1, cursor, PAGE_MAX, &r);
        if (rc) return rc;
        for (size_t i = 0; i < r->n_messages && !rc; i++) {
            rc = cli_print_msg(c, r->messages[i]);
            cursor = r->messages[i]->rev;
        }
        int more = r->has_more && r->n_messages > 0;
        if (!more && r->room && r->room->head_rev > cursor)
            cursor = r->room->head_rev;
        protobuf_c_message_free_unpacked(&r->base, NULL);
        if (rc) return rc;
        if (!more) break;
    }
    *last = cursor;
    return CLI_OK;
}

/* One Connect stream: subscribe after *last, print every change with a
 * higher rev. Returns CLI_OK when told to stop, -1 when the stream was cut
 * (reconnect), else an exit status (room gone, token refused). */
static int follow_once(cli *c, const char *room, uint64_t *last, int *live)
{
    cli_stream *s = cli_stream_open(c, "/parley.v1.Stream/Connect");
    if (!s) return cli_fail(c, PARLEY_ERR_INTERNAL, 0, "out of memory");
    Parley__V1__Subscribe sub = PARLEY__V1__SUBSCRIBE__INIT;
    sub.room = (char *)room;
    sub.resume_after_rev = *last;
    Parley__V1__ClientFrame f = PARLEY__V1__CLIENT_FRAME__INIT;
    f.request_id = 1;
    f.kind_case = PARLEY__V1__CLIENT_FRAME__KIND_SUBSCRIBE;
    f.subscribe = &sub;
    int rc = -1;
    cli_stream_send(s, &f.base);
    while (!cli_stop) {
        ProtobufCMessage *m = NULL;
        int got =
            cli_stream_recv(s, &parley__v1__server_frame__descriptor, &m, 200);
        if (got == 0) continue;
        if (got < 0) break;
        Parley__V1__ServerFrame *sf = (Parley__V1__ServerFrame *)m;
        if (sf->kind_case == PARLEY__V1__SERVER_FRAME__KIND_EVENT &&
            sf->event->message && sf->event->message->rev > *last) {
            rc = cli_print_msg(c, sf->event->message);
            fflush(stdout);
            *last = sf->event->message->rev;
            if (rc) {
                protobuf_c_message_free_unpacked(m, NULL);
                break;
            }
            rc = -1;
        } else if (sf->kind_case == PARLEY__V1__SERVER_FRAME__KIND_SUBSCRIBED) {
            if (!*live) fprintf(stderr, "parley: following %s (live)\n", room);
            *live = 1;
        } else if (sf->kind_case == PARLEY__V1__SERVER_FRAME__KIND_ERROR) {
            rc = cli_fail(c, (parley_err)sf->error->code, 0, sf->error->detail);
            protobuf_c_message_free_unpacked(m, NULL);
            break;
        }
        protobuf_c_message_free_unpacked(m, NULL);
    }
    if (cli_stop && rc == -1) rc = CLI_OK;
    char detail[300];
    int unavailable = 0;
    parley_err e = cli_stream_end(s, &unavailable, detail, sizeof detail);
    if (rc != -1) return rc;
    /* Cut: the token or the room may be the reason, else reconnect. */
    int code = cli_exit_code(e, unavailable);
    if (code == CLI_DENIED || code == CLI_NOT_FOUND)
        return cli_fail(c, e, 0, detail);
    fprintf(stderr, "parley: stream cut (%s: %s); resuming after rev %llu\n",
            unavailable ? "UNAVAILABLE" : parley_err_name(e), detail,
            (unsigned long long)*last);
    return -1;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (!cli_stop && nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int cli_cmd_history(cli *c, int argc, char **argv)
{
    static const struct option own[] = {
        {"limit", required_argument, NULL, 'l'},
        {"after-rev", required_argument, NULL, 'a'},
        {"follow", no_argument, NULL, 'f'},
        {0, 0, 0, 0}};
    history_opts o = {0, -1, 0};
    int rc = cli_parse(c, argc, argv, history_usage, own, history_opt, &o);
    if (rc >= 0) return rc;
    if (argc - optind != 1)
        return cli_usage_error(c, history_usage, "want ROOM");
    if (o.limit && o.after_rev >= 0)
        return cli_usage_error(c, history_usage,
                               "--limit and --after-rev do not go together");
    const char *room = argv[optind];
    uint64_t last = 0;
    if ((rc = print_history(c, room, &o, &last)) != CLI_OK) return rc;
    if (!o.follow) return CLI_OK;
    fflush(stdout);
    long backoff = FOLLOW_BACKOFF_MIN_MS;
    int live = 0;
    while (!cli_stop) {
        uint64_t before = last;
        int was_live = live;
        live = 0;
        rc = follow_once(c, room, &last, &live);
        if (rc != -1) return rc;
        /* A stream that got going resets the backoff. */
        if (live || last > before) backoff = FOLLOW_BACKOFF_MIN_MS;
        (void)was_live;
        sleep_ms(backoff);
        backoff = backoff * 2 > FOLLOW_BACKOFF_MAX_MS ? FOLLOW_BACKOFF_MAX_MS
                                                      : backoff * 2;
    }
    return CLI_OK;
}

/* ---- export -------------------------------------------------------------- */

static const char export_usage[] =
    "usage: parley export ROOM > room.jsonl\n"
    "\n"
    "Writes every message of ROOM, tombstones included, in seq order, one\n"
    "parley.v1.Message per line (proto3 JSON, as --json prints), to stdout.\n"
    "It covers the room up to its newest message when the export began;\n"
    "what is published meanwhile is left out, and an edit made meanwhile\n"
    "may or may not be in. A summary goes to stderr.\n";

int cli_cmd_export(cli *c, int argc, char **argv)
{
    int rc = cli_parse(c, argc, argv, export_usage, NULL, NULL, NULL);
    if (rc >= 0) return rc;
    if (argc - optind != 1)
        return cli_usage_error(c, export_usage, "want ROOM");
    const char *room = argv[optind];
    Parley__V1__GetRoomRequest gr = PARLEY__V1__GET_ROOM_REQUEST__INIT;
    gr.name = (char *)room;
    ProtobufCMessage *out = NULL;
    rc = cli_unary(c, "/parley.v1.History/GetRoom", &gr.base,
                   &parley__v1__get_room_response__descriptor, &out);
    if (rc) return rc;
    uint64_t head = ((Parley__V1__GetRoomResponse *)out)->room->head_seq;
    protobuf_c_message_free_unpacked(out, NULL);
    /* seq is dense from 1: before_seq = lo + n, limit n is exactly the page
     * lo .. lo + n - 1, whatever is published meanwhile. */
    uint64_t n_out = 0;
    for (uint64_t lo = 1; lo <= head && rc == CLI_OK; lo += PAGE_MAX) {
        unsigned n =
            head - lo + 1 < PAGE_MAX ? (unsigned)(head - lo + 1) : PAGE_MAX;
        Parley__V1__ListMessagesResponse *r = NULL;
        if ((rc = list_page(c, room, 0, lo + n, n, &r))) return rc;
        for (size_t i = 0; i < r->n_messages && rc == CLI_OK; i++) {
            if (r->messages[i]->seq != lo + i)
                rc = cli_fail(c, PARLEY_ERR_INTERNAL, 0,
                              "the core's page has a gap; export stopped");
            else
                rc = cli_print_json(&r->messages[i]->base);
            n_out++;
        }
        if (rc == CLI_OK && r->n_messages != n)
            rc = cli_fail(c, PARLEY_ERR_INTERNAL, 0,
                          "the core's page is short; export stopped");
        protobuf_c_message_free_unpacked(&r->base, NULL);
    }
    if (rc == CLI_OK && fflush(stdout) != 0)
        rc = cli_fail(c, PARLEY_ERR_INTERNAL, 0, "cannot write the output");
    if (rc == CLI_OK)
        fprintf(stderr, "parley: exported %llu messages of %s (seq 1..%llu)\n",
                (unsigned long long)n_out, room, (unsigned long long)head);
    return rc;
}

/* ---- import -------------------------------------------------------------- */

static const char import_usage[] =
    "usage: parley import ROOM [FILE] [--create]\n"
    "\n"
    "Reads parley.v1.Message JSON lines (what export writes) from FILE or\n"
    "stdin and publishes each message's body to ROOM, in order, as the\n"
    "token's user; tombstones are skipped. Each gets the client_msg_id\n"
    "\"imp-<seq>-<source room>\" (cut to 64 bytes), so the same import run\n"
    "twice stores nothing twice: rerun it after any failure. Authors and\n"
    "times are not carried over (no call writes as someone else).\n"
    "--create: create ROOM first (organizers only). Prints what it did.\n";

static int import_opt(cli *c, int ch, const char *arg, void *ud)
{
    (void)c;
    (void)arg;
    if (ch != 'c') return -1;
    *(int *)ud = 1;
    return 0;
}

typedef struct import_run {
    cli *c;
    cli_stream *s;
    size_t in_flight;
    unsigned long long stored, duplicates, skipped;
} import_run;

/* Reads one answer; CLI_OK, or an exit status (after saying which line). */
static int import_ack(import_run *ir)
{
    for (;;) {
        ProtobufCMessage *m = NULL;
        int got = cli_stream_recv(ir->s, &parley__v1__server_frame__descriptor,
                                  &m, 1000);
        if (got == 0) {
            if (cli_stop) return CLI_FAIL;
            continue;
        }
        if (got < 0) return -1; /* the stream is over: see cli_stream_end */
        Parley__V1__ServerFrame *f = (Parley__V1__ServerFrame *)m;
        int rc = CLI_OK;
        if (f->kind_case == PARLEY__V1__SERVER_FRAME__KIND_ACK) {
            if (f->ack->duplicate)
                ir->duplicates++;
            else
                ir->stored++;
        } else if (f->kind_case == PARLEY__V1__SERVER_FRAME__KIND_ERROR) {
            char d[400];
            snprintf(d, sizeof d, "line %llu: %s",
                     (unsigned long long)f->request_id, f->error->detail);
            rc = cli_fail(ir->c, (parley_err)f->error->code, 0, d);
        } else {
            protobuf_c_message_free_unpacked(m, NULL);
            continue; /* nothing else is expected; not an answer */
        }
        protobuf_c_message_free_unpacked(m, NULL);
        ir->in_flight--;
        return rc;
    }
}

int cli_cmd_import(cli *c, int argc, char **argv)
{
    static const struct option own[] = {{"create", no_argument, NULL, 'c'},
                                        {0, 0, 0, 0}};
    int create = 0;
    int rc = cli_parse(c, argc, argv, import_usage, own, import_opt, &create);
    if (rc >= 0) return rc;
    if (argc - optind < 1 || argc - optind > 2)
        return cli_usage_error(c, import_usage, "want ROOM and maybe FILE");
    const char *room = argv[optind];
    FILE *in = stdin;
    if (argc - optind == 2 && strcmp(argv[optind + 1], "-") != 0 &&
        !(in = fopen(argv[optind + 1], "r"))) {
        fprintf(stderr, "parley: IO: cannot open %s: %s\n", argv[optind + 1],
                strerror(errno));
        return CLI_FAIL;
    }
    if ((rc = cli_need_token(c)) || (rc = cli_connect(c))) goto out;
    if (create) {
        Parley__V1__CreateRoomRequest cr =
            PARLEY__V1__CREATE_ROOM_REQUEST__INIT;
        cr.name = (char *)room;
        ProtobufCMessage *o = NULL;
        if ((rc = cli_unary(c, "/parley.v1.History/CreateRoom", &cr.base,
                            &parley__v1__create_room_response__descriptor, &o)))
            goto out;
        protobuf_c_message_free_unpacked(o, NULL);
    }
    import_run ir = {
        c, cli_stream_open(c, "/parley.v1.Stream/Connect"), 0, 0, 0, 0};
    if (!ir.s) {
        rc = cli_fail(c, PARLEY_ERR_INTERNAL, 0, "out of memory");
        goto out;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    unsigned long long lineno = 0;
    while (rc == CLI_OK && !cli_stop && (len = getline(&line, &cap, in)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        if (len == 0) continue;
        ProtobufCMessage *pm = NULL;
        char detail[300];
        parley_err e = gw_json_decode(&parley__v1__message__descriptor, line,
                                      (size_t)len, &pm, detail, sizeof detail);
        if (e) {
            char d[400];
            snprintf(d, sizeof d, "line %llu is not a message: %s", lineno,
                     detail);
            rc = cli_fail(c, e, 0, d);
            break;
        }
        Parley__V1__Message *m = (Parley__V1__Message *)pm;
        if (m->deleted) {
            ir.skipped++;
            protobuf_c_message_free_unpacked(pm, NULL);
            continue;
        }
        char id[65];
        snprintf(id, sizeof id, "imp-%llu-%s", (unsigned long long)m->seq,
                 m->room ? m->room : "");
        Parley__V1__PublishRequest p = PARLEY__V1__PUBLISH_REQUEST__INIT;
        p.room = (char *)room;
        p.client_msg_id = id;
        p.body = m->body;
        Parley__V1__ClientFrame f = PARLEY__V1__CLIENT_FRAME__INIT;
        f.request_id = lineno;
        f.kind_case = PARLEY__V1__CLIENT_FRAME__KIND_PUBLISH;
        f.publish = &p;
        int sent = cli_stream_send(ir.s, &f.base);
        protobuf_c_message_free_unpacked(pm, NULL);
        if (sent != 0) {
            rc = -1;
            break;
        }
        ir.in_flight++;
        while (rc == CLI_OK && ir.in_flight >= IMPORT_WINDOW)
            rc = import_ack(&ir);
    }
    free(line);
    if (rc == CLI_OK && ferror(in))
        rc = cli_fail(c, PARLEY_ERR_INTERNAL, 0, "cannot read the input");
    while (rc == CLI_OK && ir.in_flight > 0) rc = import_ack(&ir);
    char detail[300];
    int unavailable = 0;
    parley_err e = cli_stream_end(ir.s, &unavailable, detail, sizeof detail);
    if (rc == -1) {
        char d[500];
        snprintf(d, sizeof d,
                 "%s; rerun the same import: nothing is stored twice", detail);
        rc = cli_fail(c, e ? e : PARLEY_ERR_INTERNAL, unavailable, d);
    }
    if (cli_stop && rc == CLI_OK) rc = CLI_FAIL;
    fprintf(stderr,
            "parley: imported %llu new, %llu already there, skipped %llu "
            "deleted%s\n",
            ir.stored, ir.duplicates, ir.skipped,
            rc == CLI_OK ? "" : " (stopped early)");
out:
    if (in != stdin) fclose(in);
    return rc;
}
