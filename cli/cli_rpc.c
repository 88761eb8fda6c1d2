/* cli_rpc.c: what every command of `parley` shares (see cli.h): the common
 * options, the token, the channel, unary calls and the Connect stream on
 * one pluck completion queue (everything is synchronous: one thread, each
 * operation waited for by its tag), errors and exit codes, and output. */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <grpc/byte_buffer.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include "gw_json.h"
#include "rpc_client.h"
#include "secrets.h"

/* ---- options, errors, exit codes --------------------------------------- */

int cli_common_opt(cli *c, int ch, const char *arg, const char *usage,
                   int *exit_now)
{
    *exit_now = 0;
    switch (ch) {
    case 1000: snprintf(c->server, sizeof c->server, "%s", arg); return 0;
    case 1001:
        snprintf(c->token_file, sizeof c->token_file, "%s", arg);
        return 0;
    case 1002: c->json = 1; return 0;
    case 1003: {
        char *end;
        long v = strtol(arg, &end, 10);
        if (*arg == 0 || *end || v < 1 || v > 3600) {
            *exit_now = 1;
            return cli_usage_error(c, usage, "--timeout wants 1..3600 seconds");
        }
        c->timeout_s = (int)v;
        return 0;
    }
    case 'h':
        fputs(usage, stdout);
        *exit_now = 1;
        return CLI_OK;
    case '?':
        *exit_now = 1;
        return cli_usage_error(c, usage, "unknown or incomplete option");
    default: return 1;
    }
}

int cli_parse(cli *c, int argc, char **argv, const char *usage,
              const struct option *own,
              int (*own_fn)(cli *c, int ch, const char *arg, void *ud),
              void *ud)
{
    static const struct option common[] = {CLI_COMMON_LONG};
    struct option all[40];
    size_t n = 0;
    for (; own && own[n].name && n < 30; n++) all[n] = own[n];
    for (size_t i = 0; i < sizeof common / sizeof common[0]; i++)
        all[n++] = common[i];
    memset(&all[n], 0, sizeof all[n]);
    opterr = 0;
    optind = 0;
    int ch, done;
    while ((ch = getopt_long(argc, argv, CLI_COMMON_SHORT, all, NULL)) != -1) {
        int rc = cli_common_opt(c, ch, optarg, usage, &done);
        if (done) return rc;
        if (rc == 0) continue;
        rc = own_fn ? own_fn(c, ch, optarg, ud) : -1;
        if (rc == 0) continue;
        return rc < 0 ? cli_usage_error(c, usage, "unknown option") : rc;
    }
    return -1;
}

char *cli_text_arg(const char *arg)
{
    if (strcmp(arg, "-") != 0) return strdup(arg);
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) break;
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, stdin);
        n += got;
        if (got == 0) {
            if (ferror(stdin)) break;
            if (n && buf[n - 1] == '\n') n--;
            buf[n] = 0;
            return buf;
        }
    }
    free(buf);
    return NULL;
}

long long cli_number(const char *s, long long max)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v < 1 || v > max) return -1;
    return v;
}

int cli_usage_error(const cli *c, const char *usage, const char *fmt, ...)
{
    (void)usage;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *cmd = c->cmd ? c->cmd : "";
    fprintf(stderr, "parley: USAGE: %s%s%s (see parley %s%s--help)\n", cmd,
            *cmd ? ": " : "", msg, cmd, *cmd ? " " : "");
    return CLI_USAGE;
}

int cli_exit_code(parley_err e, int unavailable)
{
    if (unavailable) return CLI_UNAVAILABLE;
    switch (e) {
    case PARLEY_OK: return CLI_OK;
    case PARLEY_ERR_UNAUTHENTICATED:
    case PARLEY_ERR_PERMISSION_DENIED: return CLI_DENIED;
    case PARLEY_ERR_ROOM_NOT_FOUND:
    case PARLEY_ERR_MESSAGE_NOT_FOUND: return CLI_NOT_FOUND;
    case PARLEY_ERR_MALFORMED:
    case PARLEY_ERR_ROOM_INVALID:
    case PARLEY_ERR_BODY_EMPTY:
    case PARLEY_ERR_BODY_TOO_LONG:
    case PARLEY_ERR_INVALID_UTF8:
    case PARLEY_ERR_CLIENT_MSG_ID_INVALID:
    case PARLEY_ERR_MESSAGE_DELETED:
    case PARLEY_ERR_BAD_CURSOR:
    case PARLEY_ERR_SUBSCRIPTION_STATE:
    case PARLEY_ERR_AUTHOR_INVALID: return CLI_REFUSED;
    default: return CLI_FAIL;
    }
}

int cli_fail(const cli *c, parley_err e, int unavailable, const char *detail)
{
    (void)c;
    const char *code = unavailable ? "UNAVAILABLE" : parley_err_name(e);
    fprintf(stderr, "parley: %s: %s\n", code,
            detail && *detail ? detail : parley_err_text(e));
    return cli_exit_code(e, unavailable);
}

/* ---- token, channel ----------------------------------------------------- */

int cli_need_token(cli *c)
{
    if (c->token[0]) return CLI_OK;
    const char *file =
        c->token_file[0] ? c->token_file : getenv("PARLEY_TOKEN_FILE");
    if (file && *file) {
        if (secrets_read_file(file, c->token, sizeof c->token) != 0) {
            fprintf(stderr,
                    "parley: UNAUTHENTICATED: cannot read token file %s: %s\n",
                    file, strerror(errno));
            return CLI_DENIED;
        }
        if (c->token[0]) return CLI_OK;
    }
    const char *env = getenv("PARLEY_TOKEN");
    if (env && *env && strlen(env) < sizeof c->token) {
        snprintf(c->token, sizeof c->token, "%s", env);
        return CLI_OK;
    }
    fprintf(stderr,
            "parley: UNAUTHENTICATED: no token: set PARLEY_TOKEN or "
            "--token-file FILE (in dev mode: export PARLEY_TOKEN=$(parley "
            "token USER))\n");
    return CLI_DENIED;
}

int cli_connect(cli *c)
{
    if (c->ch) return CLI_OK;
    /* Keepalive pings find a dead parleyd under a quiet --follow (parleyd
     * accepts one every 10 s); reconnecting is tried every 0.2 s to 5 s,
     * not grpc's default of at least 20 s, so a --follow resumes soon after
     * parleyd is back. */
    static const struct {
        const char *key;
        int value;
    } iargs[] = {
        {GRPC_ARG_KEEPALIVE_TIME_MS, 20000},
        {GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000},
        {GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1},
        {GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200},
        {GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 200},
        {GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 5000},
    };
    enum { N_ARGS = sizeof iargs / sizeof iargs[0] };
    grpc_arg a[N_ARGS];
    for (size_t i = 0; i < N_ARGS; i++) {
        a[i].type = GRPC_ARG_INTEGER;
        a[i].key = (char *)iargs[i].key;
        a[i].value.integer = iargs[i].value;
    }
    grpc_channel_args args = {N_ARGS, a};
    grpc_channel_credentials *cr = grpc_insecure_credentials_create();
    c->ch = grpc_channel_create(c->server, cr, &args);
    grpc_channel_credentials_release(cr);
    c->cq = grpc_completion_queue_create_for_pluck(NULL);
    if (!c->ch || !c->cq) {
        fprintf(stderr, "parley: UNAVAILABLE: cannot open a channel to %s\n",
                c->server);
        return CLI_UNAVAILABLE;
    }
    return CLI_OK;
}

void cli_close(cli *c)
{
    if (c->ch) grpc_channel_destroy(c->ch);
    if (c->cq) {
        grpc_completion_queue_shutdown(c->cq);
        while (grpc_completion_queue_pluck(
                   c->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
                   .type != GRPC_QUEUE_SHUTDOWN) {
        }
        grpc_completion_queue_destroy(c->cq);
    }
    c->ch = NULL;
    c->cq = NULL;
    memset(c->token, 0, sizeof c->token);
}

static gpr_timespec in_ms(long ms)
{
    return gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
                        gpr_time_from_millis(ms, GPR_TIMESPAN));
}

/* ---- unary -------------------------------------------------------------- */

int cli_unary(cli *c, const char *path, const ProtobufCMessage *req,
              const ProtobufCMessageDescriptor *resp_desc,
              ProtobufCMessage **resp)
{
    int rc = cli_need_token(c);
    if (rc) return rc;
    if ((rc = cli_connect(c))) return rc;
    /* Wait for a connection up to the timeout rather than failing fast: a
     * parleyd that is starting still answers. */
    rpc_client_unary u;
    char tag;
    gpr_timespec dl = in_ms((long)c->timeout_s * 1000);
    if (rpc_client_unary_start(&u, c->ch, c->cq, path, c->token, req, dl,
                               &tag) != PARLEY_OK)
        return cli_fail(c, PARLEY_ERR_INTERNAL, 0, "cannot start the call");
    grpc_event ev = grpc_completion_queue_pluck(
        c->cq, &tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    char detail[512];
    int unavailable = 0;
    parley_err e = rpc_client_unary_finish(&u, ev.success, resp_desc, resp,
                                           detail, sizeof detail, &unavailable);
    if (e == PARLEY_OK) {
        rpc_client_unary_free(&u);
        return CLI_OK;
    }
    if (unavailable) {
        char d2[1100];
        snprintf(d2, sizeof d2, "%s (server %s)", detail, c->server);
        rpc_client_unary_free(&u);
        return cli_fail(c, e, 1, d2);
    }
    rpc_client_unary_free(&u);
    return cli_fail(c, e, 0, detail);
}

/* ---- streams ------------------------------------------------------------ */

struct cli_stream {
    cli *c;
    grpc_call *call;
    grpc_metadata md;
    grpc_metadata_array init_md, trail_md;
    grpc_status_code status;
    grpc_slice details;
    grpc_byte_buffer *recv_bb;
    int recv_pending; /* a RECV_MESSAGE is started and not plucked */
    int over;         /* a recv or send found the stream over */
    char tag_status, tag_recv, tag_send, tag_meta;
};

cli_stream *cli_stream_open(cli *c, const char *path)
{
    cli_stream *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->c = c;
    grpc_metadata_array_init(&s->init_md);
    grpc_metadata_array_init(&s->trail_md);
    s->details = grpc_empty_slice();
    s->call =
        grpc_channel_create_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq,
                                 grpc_slice_from_static_string(path), NULL,
                                 gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    rpc_client_auth_md(&s->md, c->token);
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = 1;
    ops[0].data.send_initial_metadata.metadata = &s->md;
    /* A stream waits for parleyd to be reachable rather than failing at
     * once: --follow and import ride out a restart. */
    ops[0].flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY;
    ops[1].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[1].data.recv_initial_metadata.recv_initial_metadata = &s->init_md;
    int ok = s->call && grpc_call_start_batch(s->call, ops, 2, &s->tag_meta,
                                              NULL) == GRPC_CALL_OK;
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[0].data.recv_status_on_client.trailing_metadata = &s->trail_md;
    ops[0].data.recv_status_on_client.status = &s->status;
    ops[0].data.recv_status_on_client.status_details = &s->details;
    ok = ok && grpc_call_start_batch(s->call, ops, 1, &s->tag_status, NULL) ==
                   GRPC_CALL_OK;
    if (!ok) {
        s->over = 1;
        s->status = GRPC_STATUS_INTERNAL;
    }
    return s;
}

int cli_stream_send(cli_stream *s, const ProtobufCMessage *m)
{
    if (s->over) return -1;
    grpc_byte_buffer *bb = rpc_client_pack(m);
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = bb;
    int ok = 0;
    if (grpc_call_start_batch(s->call, &op, 1, &s->tag_send, NULL) ==
        GRPC_CALL_OK) {
        grpc_event ev = grpc_completion_queue_pluck(
            s->c->cq, &s->tag_send, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        ok = ev.success;
    }
    grpc_byte_buffer_destroy(bb);
    if (!ok) s->over = 1;
    return ok ? 0 : -1;
}

int cli_stream_recv(cli_stream *s, const ProtobufCMessageDescriptor *d,
                    ProtobufCMessage **out, int timeout_ms)
{
    *out = NULL;
    if (s->over) return -1;
    if (!s->recv_pending) {
        grpc_op op;
        memset(&op, 0, sizeof op);
        op.op = GRPC_OP_RECV_MESSAGE;
        op.data.recv_message.recv_message = &s->recv_bb;
        if (grpc_call_start_batch(s->call, &op, 1, &s->tag_recv, NULL) !=
            GRPC_CALL_OK) {
            s->over = 1;
            return -1;
        }
        s->recv_pending = 1;
    }
    grpc_event ev = grpc_completion_queue_pluck(s->c->cq, &s->tag_recv,
                                                in_ms(timeout_ms), NULL);
    if (ev.type == GRPC_QUEUE_TIMEOUT) return 0;
    s->recv_pending = 0;
    if (!ev.success || !s->recv_bb) {
        s->over = 1;
        return -1;
    }
    *out = rpc_decode(d, s->recv_bb);
    grpc_byte_buffer_destroy(s->recv_bb);
    s->recv_bb = NULL;
    if (!*out) {
        s->over = 1;
        return -1;
    }
    return 1;
}

parley_err cli_stream_end(cli_stream *s, int *unavailable, char *detail,
                          size_t cap)
{
    cli *c = s->c;
    if (s->call) {
        grpc_call_cancel(s->call, NULL);
        grpc_completion_queue_pluck(c->cq, &s->tag_status,
                                    gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        grpc_completion_queue_pluck(c->cq, &s->tag_meta,
                                    gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (s->recv_pending)
            grpc_completion_queue_pluck(
                c->cq, &s->tag_recv, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    }
    if (s->recv_bb) grpc_byte_buffer_destroy(s->recv_bb);
    parley_err e =
        rpc_client_status_error(s->status, &s->trail_md, unavailable);
    rpc_client_slice_str(s->details, detail, cap);
    grpc_slice_unref(s->details);
    grpc_slice_unref(s->md.value);
    grpc_metadata_array_destroy(&s->init_md);
    grpc_metadata_array_destroy(&s->trail_md);
    if (s->call) grpc_call_unref(s->call);
    free(s);
    return e;
}

/* ---- output ------------------------------------------------------------- */

int cli_print_json(const ProtobufCMessage *m)
{
    size_t len = 0;
    char *t = gw_json_encode(m, &len);
    if (!t) return CLI_FAIL;
    int ok = fwrite(t, 1, len, stdout) == len && fputc('\n', stdout) != EOF;
    free(t);
    return ok ? CLI_OK : CLI_FAIL;
}

void cli_print_message(const Parley__V1__Message *m)
{
    char when[40] = "";
    time_t t = (time_t)(m->created_at_ms / 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm))
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf("#%llu r%llu %s %s: ", (unsigned long long)m->seq,
           (unsigned long long)m->rev, when,
           m->author && m->author->id ? m->author->id : "?");
    /* One message, one line: line breaks are shown as \n. */
    for (const char *p = m->body ? m->body : ""; *p; p++) {
        if (*p == '\n')
            fputs("\\n", stdout);
        else if (*p == '\r' || *p == '\t')
            fputc(' ', stdout);
        else
            fputc(*p, stdout);
    }
    if (m->deleted)
        fputs("(deleted)", stdout);
    else if (m->edited_at_ms)
        fputs(" (edited)", stdout);
    fputc('\n', stdout);
}

int cli_print_msg(const cli *c, const Parley__V1__Message *m)
{
    if (c->json) return cli_print_json(&m->base);
    cli_print_message(m);
    return CLI_OK;
}
