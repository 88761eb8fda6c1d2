/* test_durable.c: CUnit tests of parleyd's read and write paths under
 * concurrency, over real gRPC on loopback against real parleyd processes:
 *   - History on reader threads answers byte for byte what the loop thread
 *     answered before (same database, --readers 0 then --readers 3);
 *   - read-your-writes across threads: a message acked (unary Publish or a
 *     Connect stream's publish) is at once in GetMessage and ListMessages,
 *     whichever reader thread serves them;
 *   - a Connect stream with many publishes in flight is acked only after
 *     commit: kill -9 in the middle, and every acked message is stored;
 *   - --durability interval: the store's own counters show that commits are
 *     fsync'd (parleyd's shutdown line), and acked messages are readable.
 *
 * usage: test_durable PARLEYD_BINARY */
#include <CUnit/Basic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tclient.h"
#include "parley/v1/history.pb-c.h"
#include "parley/v1/stream.pb-c.h"

#define H(m) "/parley.v1.History/" m
#define S(m) "/parley.v1.Stream/" m

static const char *g_bin;
static char *t_org, *t_pat;

/* ---------- helpers ---------- */

static tc_result call(grpc_channel *ch, const char *path, const char *tok,
                      const ProtobufCMessage *req,
                      const ProtobufCMessageDescriptor *d)
{
    tc_result r;
    int rc = tc_unary(ch, path, tok, req, NULL, 0, d, &r);
    CU_ASSERT_EQUAL(rc, 0);
    return r;
}

static int create_room(grpc_channel *ch, const char *name)
{
    Parley__V1__CreateRoomRequest q = PARLEY__V1__CREATE_ROOM_REQUEST__INIT;
    q.name = (char *)name;
    tc_result r = call(ch, H("CreateRoom"), t_org, &q.base,
                       &parley__v1__create_room_response__descriptor);
    int ok = r.status == GRPC_STATUS_OK;
    tc_result_free(&r);
    return ok ? 0 : -1;
}

/* A unary publish; the stored message's seq, 0 on failure. */
static uint64_t publish(grpc_channel *ch, const char *tok, const char *room,
                        const char *id, const char *body)
{
    Parley__V1__PublishRequest q = PARLEY__V1__PUBLISH_REQUEST__INIT;
    q.room = (char *)room;
    q.client_msg_id = (char *)id;
    q.body = (char *)body;
    tc_result r = call(ch, S("Publish"), tok, &q.base,
                       &parley__v1__publish_response__descriptor);
    uint64_t seq = 0;
    if (r.status == GRPC_STATUS_OK && r.resp)
        seq = ((Parley__V1__PublishResponse *)r.resp)->message->seq;
    tc_result_free(&r);
    return seq;
}

/* The encoded bytes of a call's decoded response (malloc'd; *n its size),
 * with its status first: what a client sees of the answer. */
static uint8_t *answer_bytes(grpc_channel *ch, const char *path,
                             const ProtobufCMessage *req,
                             const ProtobufCMessageDescriptor *d, size_t *n)
{
    tc_result r = call(ch, path, t_pat, req, d);
    size_t body = r.resp ? protobuf_c_message_get_packed_size(r.resp) : 0;
    uint8_t *out = malloc(body + 1);
    out[0] = (uint8_t)r.status;
    if (r.resp) protobuf_c_message_pack(r.resp, out + 1);
    *n = body + 1;
    tc_result_free(&r);
    return out;
}

/* Body of message seq in room, or NULL (malloc'd). */
static char *get_body(grpc_channel *ch, const char *room, uint64_t seq)
{
    Parley__V1__GetMessageRequest q = PARLEY__V1__GET_MESSAGE_REQUEST__INIT;
    q.room = (char *)room;
    q.seq = seq;
    tc_result r = call(ch, H("GetMessage"), t_pat, &q.base,
                       &parley__v1__get_message_response__descriptor);
    char *body = NULL;
    if (r.status == GRPC_STATUS_OK && r.resp)
        body =
            strdup(((Parley__V1__GetMessageResponse *)r.resp)->message->body);
    tc_result_free(&r);
    return body;
}

/* ---------- reader threads answer what the loop answered ---------- */

enum { N_PAGES = 15 };

/* The same set of reads against whichever server ch reaches. */
static void read_all(grpc_channel *ch, uint8_t **out, size_t *len)
{
    int k = 0;
    static const struct {
        int dir; /* 0 latest, 1 before_seq, 2 after_rev */
        uint64_t cursor;
        unsigned limit;
    } pages[] = {{0, 0, 0},     {0, 0, 1},    {0, 0, 1000},   {1, 1, 50},
                 {1, 2, 50},    {1, 150, 7},  {1, 300, 1000}, {1, 9999, 3},
                 {2, 0, 50},    {2, 0, 1000}, {2, 250, 50},   {2, 340, 10},
                 {2, 100000, 5}};
    for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++) {
        Parley__V1__ListMessagesRequest q =
            PARLEY__V1__LIST_MESSAGES_REQUEST__INIT;
        q.room = "pages";
        q.limit = pages[i].limit;
        if (pages[i].dir == 1) {
            q.cursor_case =
                PARLEY__V1__LIST_MESSAGES_REQUEST__CURSOR_BEFORE_SEQ;
            q.before_seq = pages[i].cursor;
        } else if (pages[i].dir == 2) {
            q.cursor_case = PARLEY__V1__LIST_MESSAGES_REQUEST__CURSOR_AFTER_REV;
            q.after_rev = pages[i].cursor;
        }
        out[k] = answer_bytes(ch, H("ListMessages"), &q.base,
                              &parley__v1__list_messages_response__descriptor,
                              &len[k]);
        k++;
    }
    Parley__V1__GetMessageRequest g = PARLEY__V1__GET_MESSAGE_REQUEST__INIT;
    g.room = "pages";
    g.seq = 17; /* edited */
    out[k] =
        answer_bytes(ch, H("GetMessage"), &g.base,
                     &parley__v1__get_message_response__descriptor, &len[k]);
    k++;
    Parley__V1__GetRoomRequest gr = PARLEY__V1__GET_ROOM_REQUEST__INIT;
    gr.name = "pages";
    out[k] = answer_bytes(ch, H("GetRoom"), &gr.base,
                          &parley__v1__get_room_response__descriptor, &len[k]);
    k++;
    CU_ASSERT_EQUAL(k, N_PAGES);
}

static void test_readers_same_pages(void)
{
    tc_server s;
    const char *loop_only[] = {"--readers", "0", NULL};
    CU_ASSERT_EQUAL_FATAL(tc_server_start(&s, g_bin, NULL, loop_only), 0);
    grpc_channel *ch = tc_channel(s.addr);
    CU_ASSERT_EQUAL_FATAL(create_room(ch, "pages"), 0);
    char id[32], body[64];
    for (int i = 1; i <= 300; i++) {
        snprintf(id, sizeof id, "m%d", i);
        snprintf(body, sizeof body, "message number %d", i);
        CU_ASSERT_EQUAL(publish(ch, i % 3 ? t_pat : t_org, "pages", id, body),
                        (uint64_t)i);
    }
    /* Edits and deletes move revs, so after_rev pages differ from seq ones. */
    for (uint64_t seq = 17; seq <= 300; seq += 41) {
        Parley__V1__EditMessageRequest e =
            PARLEY__V1__EDIT_MESSAGE_REQUEST__INIT;
        e.room = "pages";
        e.seq = seq;
        e.body = "edited";
        tc_result r = call(ch, H("EditMessage"), t_org, &e.base,
                           &parley__v1__edit_message_response__descriptor);
        CU_ASSERT_EQUAL(r.status, GRPC_STATUS_OK);
        tc_result_free(&r);
        Parley__V1__DeleteMessageRequest d =
            PARLEY__V1__DELETE_MESSAGE_REQUEST__INIT;
        d.room = "pages";
        d.seq = seq + 1;
        r = call(ch, H("DeleteMessage"), t_org, &d.base,
                 &parley__v1__delete_message_response__descriptor);
        CU_ASSERT_EQUAL(r.status, GRPC_STATUS_OK);
        tc_result_free(&r);
    }
    uint8_t *before[N_PAGES], *after[N_PAGES];
    size_t blen[N_PAGES], alen[N_PAGES];
    read_all(ch, before, blen);
    grpc_channel_destroy(ch);
    CU_ASSERT_EQUAL(tc_server_stop(&s, 0), 0);

    tc_server s2;
    const char *readers[] = {"--readers", "3", NULL};
    CU_ASSERT_EQUAL_FATAL(tc_server_start(&s2, g_bin, s.dir, readers), 0);
    ch = tc_channel(s2.addr);
    /* Several rounds, so every reader thread serves some of them. */
    for (int round = 0; round < 4; round++) {
        read_all(ch, after, alen);
        for (int i = 0; i < N_PAGES; i++) {
            CU_ASSERT_EQUAL(alen[i], blen[i]);
            CU_ASSERT(alen[i] == blen[i] &&
                      memcmp(after[i], before[i], alen[i]) == 0);
            if (alen[i] != blen[i] || memcmp(after[i], before[i], alen[i]))
                fprintf(stderr, "  read %d differs on reader threads\n", i);
            free(after[i]);
        }
    }
    for (int i = 0; i < N_PAGES; i++) free(before[i]);
    /* A page is a real one, not two empty answers that agree. */
    CU_ASSERT(blen[2] > 300 * 20);
    grpc_channel_destroy(ch);
    CU_ASSERT_EQUAL(tc_server_stop(&s2, 0), 0);
    tc_server_cleanup(&s2);
}

/* ---------- read-your-writes across threads ---------- */

typedef struct ryw_arg {
    const char *addr;
    int idx, n;
    int seen, missing;
} ryw_arg;

/* Publishes and at once reads back, each read on a channel of its own (so
 * any reader thread may serve it). */
static void *ryw_main(void *p)
{
    ryw_arg *a = p;
    grpc_channel *w = tc_channel(a->addr);
    grpc_channel *r = tc_channel(a->addr);
    char id[32], body[64];
    for (int i = 0; i < a->n; i++) {
        snprintf(id, sizeof id, "ryw-%d-%d", a->idx, i);
        snprintf(body, sizeof body, "thread %d message %d", a->idx, i);
        uint64_t seq = publish(w, t_pat, "ryw", id, body);
        if (!seq) {
            a->missing++;
            continue;
        }
        char *got = get_body(r, "ryw", seq);
        /* and as the newest page's content: after_rev seq - 1 holds it */
        Parley__V1__ListMessagesRequest q =
            PARLEY__V1__LIST_MESSAGES_REQUEST__INIT;
        q.room = "ryw";
        q.limit = 1;
        q.cursor_case = PARLEY__V1__LIST_MESSAGES_REQUEST__CURSOR_BEFORE_SEQ;
        q.before_seq = seq + 1;
        tc_result lr;
        tc_unary(r, H("ListMessages"), t_pat, &q.base, NULL, 0,
                 &parley__v1__list_messages_response__descriptor, &lr);
        const Parley__V1__ListMessagesResponse *page = (const void *)lr.resp;
        int in_page = lr.status == GRPC_STATUS_OK && page &&
                      page->n_messages == 1 && page->messages[0]->seq == seq &&
                      !strcmp(page->messages[0]->body, body) &&
                      page->room->head_seq >= seq;
        if (got && !strcmp(got, body) && in_page)
            a->seen++;
        else
            a->missing++;
        tc_result_free(&lr);
        free(got);
    }
    grpc_channel_destroy(w);
    grpc_channel_destroy(r);
    return NULL;
}

static void test_read_your_writes(void)
{
    tc_server s;
    const char *extra[] = {"--readers", "3", "--rooms", "ryw", NULL};
    CU_ASSERT_EQUAL_FATAL(tc_server_start(&s, g_bin, NULL, extra), 0);
    enum { T = 4, N = 150 };
    pthread_t th[T];
    ryw_arg a[T];
    for (int i = 0; i < T; i++) {
        a[i] = (ryw_arg){s.addr, i, N, 0, 0};
        pthread_create(&th[i], NULL, ryw_main, &a[i]);
    }
    int seen = 0, missing = 0;
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        seen += a[i].seen;
        missing += a[i].missing;
    }
    CU_ASSERT_EQUAL(missing, 0);
    CU_ASSERT_EQUAL(seen, T * N);
    CU_ASSERT_EQUAL(tc_server_stop(&s, 0), 0);
    tc_server_cleanup(&s);
}

/* ---------- a pipelined stream is acked only after commit ---------- */

static int send_publish(tc_stream *st, uint64_t rid, const char *room,
                        const char *id, const char *body)
{
    Parley__V1__PublishRequest p = PARLEY__V1__PUBLISH_REQUEST__INIT;
    p.room = (char *)room;
    p.client_msg_id = (char *)id;
    p.body = (char *)body;
    Parley__V1__ClientFrame f = PARLEY__V1__CLIENT_FRAME__INIT;
    f.request_id = rid;
    f.kind_case = PARLEY__V1__CLIENT_FRAME__KIND_PUBLISH;
    f.publish = &p;
    return tc_stream_send(st, &f.base);
}

/* Publishes on one Connect stream with `window` publishes in flight and
 * kills parleyd with SIGKILL as soon as `kill_after` acks came back; after
 * a restart every acked message must be stored with its seq and body, and
 * nothing beyond what was sent. */
static void pipelined_kill(const char *durability)
{
    enum { WINDOW = 128, TOTAL = 4000, KILL_AFTER = 1500 };
    tc_server s;
    const char *extra[] = {"--rooms", "pipe", "--durability", durability, NULL};
    CU_ASSERT_EQUAL_FATAL(tc_server_start(&s, g_bin, NULL, extra), 0);
    grpc_channel *ch = tc_channel(s.addr);
    tc_stream *st = tc_stream_open(ch, S("Connect"), t_pat);
    static uint64_t acked_seq[TOTAL + 1];
    memset(acked_seq, 0, sizeof acked_seq);
    int sent = 0, acked = 0, errors = 0;
    char id[32], body[64];
    while (acked < KILL_AFTER) {
        while (sent < TOTAL && sent - acked < WINDOW) {
            snprintf(id, sizeof id, "p-%d", sent + 1);
            snprintf(body, sizeof body, "pipelined %d", sent + 1);
            if (send_publish(st, (uint64_t)sent + 1, "pipe", id, body)) break;
            sent++;
        }
        ProtobufCMessage *m = NULL;
        if (tc_stream_recv(st, &parley__v1__server_frame__descriptor, 20000,
                           &m) != 1)
            break;
        const Parley__V1__ServerFrame *f = (const void *)m;
        if (f->kind_case == PARLEY__V1__SERVER_FRAME__KIND_ACK &&
            f->request_id >= 1 && f->request_id <= TOTAL &&
            !acked_seq[f->request_id]) {
            acked_seq[f->request_id] = f->ack->message->seq;
            acked++;
        } else {
            errors++;
        }
        protobuf_c_message_free_unpacked(m, NULL);
    }
    /* Now, with publishes still in flight. */
    CU_ASSERT_EQUAL(tc_server_stop(&s, 1), 128 + 9);
    tc_stream_free(st);
    grpc_channel_destroy(ch);
    CU_ASSERT_EQUAL(errors, 0);
    CU_ASSERT_EQUAL_FATAL(acked, KILL_AFTER);
    CU_ASSERT(sent > acked); /* the kill came with publishes in flight */

    tc_server s2;
    CU_ASSERT_EQUAL_FATAL(tc_server_start(&s2, g_bin, s.dir, extra), 0);
    ch = tc_channel(s2.addr);
    int missing = 0, wrong = 0;
    uint64_t max_seq = 0;
    for (int i = 1; i <= TOTAL; i++) {
        if (!acked_seq[i]) continue;
        if (acked_seq[i] > max_seq) max_seq = acked_seq[i];
        char *got = get_body(ch, "pipe", acked_seq[i]);
        snprintf(body, sizeof body, "pipelined %d", i);
        if (!got)
            missing++;
        else if (strcmp(got, body) != 0)
            wrong++;
        free(got);
    }
    CU_ASSERT_EQUAL(missing, 0);
    CU_ASSERT_EQUAL(wrong, 0);
    Parley__V1__GetRoomRequest gr = PARLEY__V1__GET_ROOM_REQUEST__INIT;
    gr.name = "pipe";
    tc_result r = call(ch, H("GetRoom"), t_pat, &gr.base,
                       &parley__v1__get_room_response__descriptor);
    CU_ASSERT_EQUAL_FATAL(r.status, GRPC_STATUS_OK);
    uint64_t head = ((Parley__V1__GetRoomResponse *)r.resp)->room->head_seq;
    CU_ASSERT(head >= max_seq);        /* every ack is in ... */
    CU_ASSERT(head <= (uint64_t)sent); /* ... and nothing unsent */
    tc_result_free(&r);
    grpc_channel_destroy(ch);
    CU_ASSERT_EQUAL(tc_server_stop(&s2, 0), 0);
    tc_server_cleanup(&s2);
}

static void test_pipelined_acks_full(void) { pipelined_kill("full"); }
static void test_pipelined_acks_interval(void) { pipelined_kill("interval"); }

/* ---------- interval durability syncs, by the store's counters ---------- */

/* The counters parleyd prints when it stops ("durability MODE: C commits,
 * S syncs, U unsynced at exit"). 0 if the line was found. */
static int exit_counters(const tc_server *s, char *mode, unsigned long *c,
                         unsigned long *sy, unsigned long *u)
{
    char path[300], line[512];
    snprintf(path, sizeof path, "%s/parleyd.log", s->dir);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int found = -1;
    while (fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "durability ");
        if (p && sscanf(p,
                        "durability %15[a-z]: %lu commits, %lu "
                        "syncs, %lu unsynced",
                        mode, c, sy, u) == 4)
            found = 0;
    }
    fclose(f);
    return found;
}

static void test_interval_syncs(void)
{
    tc_server s;
    const char *extra[] = {
        "--rooms", "iv", "--durability", "interval", "--sync-interval-ms",
        "40",      NULL};
    CU_ASSERT_EQUAL_FATAL(tc_server_start(&s, g_bin, NULL, extra), 0);
    grpc_channel *ch = tc_channel(s.addr);
    char id[32];
    int ok = 0;
    for (int i = 0; i < 30; i++) {
        snprintf(id, sizeof id, "iv-%d", i);
        ok += publish(ch, t_pat, "iv", id, "interval body") > 0;
        usleep(5 * 1000); /* spread over several intervals */
    }
    CU_ASSERT_EQUAL(ok, 30);
    usleep(400 * 1000); /* ten intervals with nothing new */
    grpc_channel_destroy(ch);
    CU_ASSERT_EQUAL(tc_server_stop(&s, 0), 0);
    char mode[16] = "";
    unsigned long commits = 0, syncs = 0, unsynced = 0;
    CU_ASSERT_EQUAL_FATAL(exit_counters(&s, mode, &commits, &syncs, &unsynced),
                          0);
    CU_ASSERT_STRING_EQUAL(mode, "interval");
    CU_ASSERT(commits >= 30);     /* the room and each publish, or groups */
    CU_ASSERT(syncs >= 1);        /* the loop synced on its own ... */
    CU_ASSERT(syncs < commits);   /* ... fewer times than it committed */
    CU_ASSERT_EQUAL(unsynced, 0); /* and nothing waited at the end */
    tc_server_cleanup(&s);

    /* Full durability: SQLite syncs each commit, parleyd never has to. */
    const char *full[] = {"--rooms", "fu", NULL};
    CU_ASSERT_EQUAL_FATAL(tc_server_start(&s, g_bin, NULL, full), 0);
    ch = tc_channel(s.addr);
    CU_ASSERT(publish(ch, t_pat, "fu", "one", "body") > 0);
    grpc_channel_destroy(ch);
    CU_ASSERT_EQUAL(tc_server_stop(&s, 0), 0);
    CU_ASSERT_EQUAL_FATAL(exit_counters(&s, mode, &commits, &syncs, &unsynced),
                          0);
    CU_ASSERT_STRING_EQUAL(mode, "full");
    CU_ASSERT(commits >= 2);
    CU_ASSERT_EQUAL(syncs, 0);
    CU_ASSERT_EQUAL(unsynced, 0);
    tc_server_cleanup(&s);
}

/* ---------- main ---------- */

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PARLEYD_BINARY\n", argv[0]);
        return 2;
    }
    g_bin = argv[1];
    grpc_init();
    t_org = tc_token("olga", "organizer", 3600, NULL);
    t_pat = tc_token("pat", "participant", 3600, NULL);
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("durable", NULL, NULL);
    CU_add_test(s, "reader threads answer as the loop did",
                test_readers_same_pages);
    CU_add_test(s, "read your writes across threads", test_read_your_writes);
    CU_add_test(s, "pipelined stream acked after commit (full)",
                test_pipelined_acks_full);
    CU_add_test(s, "pipelined stream acked after commit (interval)",
                test_pipelined_acks_interval);
    CU_add_test(s, "interval durability syncs", test_interval_syncs);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails =
        CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    free(t_org);
    free(t_pat);
    grpc_shutdown();
    return fails ? 1 : 0;
}
