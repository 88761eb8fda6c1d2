/* loadgen_grpc.c (loadgen-grpc): the gRPC side of the benchmark, on the grpc
 * C core (one channel, one completion queue, C calls kept in flight):
 *   list     History.ListMessages of `limit` messages before a random seq of
 *            the history room: requests/s and latency percentiles;
 *   publish  Stream.Publish from C concurrent publishers (one author each),
 *            every answer an ack after commit: acked publishes/s; with
 *            --db, "stored" is how many messages the room gained (each
 *            acked publish must be exactly one);
 *   stream   C Stream.Connect streams (one author each), each keeping W
 *            publish frames in flight (--window), every ack after commit:
 *            acked publishes/s with many in flight (and "stored" with --db);
 *            with --batch 1 (the default) the stream turns on the
 *            contract's batches, as the gateway does: what is waiting goes
 *            out as one ClientFrame{batch} (up to 64 publishes) and acks
 *            come back as ServerFrame{batch};
 *   sqlite   the same page read straight from the database file through the
 *            store API (src/store/store.h store_list), one thread: the limit.
 * With --proto jetstream, publish and stream run the same load against NATS
 * JetStream (lg_jetstream.c: the NATS protocol on TCP, one connection, C
 * publishers keeping 1 or W publishes in flight, each counted when its
 * PubAck came back).
 * Method paths come from the generated tables (gen/parley/v1/history.grpc.h,
 * stream.grpc.h).
 * Prints one JSON object on stdout. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "hist.h"
#include "clock.h"
#include "lg_jetstream.h"
#include "lg_proc.h"
#include "lg_token.h"
#include "parley/v1/history.grpc.h"
#include "parley/v1/history.pb-c.h"
#include "parley/v1/stream.grpc.h"
#include "parley/v1/stream.pb-c.h"
#include "rpc_client.h"
#include "settings.h"
#include "store.h"

enum { LGG_LIST, LGG_PUBLISH, LGG_SQLITE, LGG_STREAM };

typedef struct lgg_slot {
    int idx;
    const char *token;
    rpc_client_unary u; /* the call in flight (src/rpc_client.h) */
    uint64_t t0;
    uint64_t n;
} lgg_slot;

typedef struct lgg {
    int mode;
    const char *target, *room, *db;
    unsigned limit, conc, window;
    int batch; /* stream: SessionOptions{batch} and batched publishes */
    double duration;
    size_t body_size;
    uint64_t head_seq;
    grpc_channel *ch;
    grpc_completion_queue *cq;
    const rpc_method_desc *method;
    char **tokens;
    size_t n_tokens;
    hist *lat;
    uint64_t ok, failed, dup, bad, rows;
    int last_status;
    char last_detail[160];
    pid_t pids[8];
    int n_pids;
    uint64_t rng;
} lgg;

static uint64_t lgg_rand(lgg *g)
{
    g->rng ^= g->rng << 13;
    g->rng ^= g->rng >> 7;
    g->rng ^= g->rng << 17;
    return g->rng;
}

static uint64_t lgg_cursor(lgg *g)
{
    /* before_seq in [limit+1, head_seq+1]: a full page anywhere in the room */
    uint64_t lo = g->limit + 1, hi = g->head_seq + 1;
    if (hi <= lo) return hi;
    return lo + lgg_rand(g) % (hi - lo + 1);
}

/* Starts one call on slot s: a ListMessages page before a random seq, or a
 * publish with a fresh client_msg_id and a timestamped body. */
static int lgg_start(lgg *g, lgg_slot *s)
{
    gpr_timespec dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                   gpr_time_from_seconds(30, GPR_TIMESPAN));
    Parley__V1__ListMessagesRequest list =
        PARLEY__V1__LIST_MESSAGES_REQUEST__INIT;
    Parley__V1__PublishRequest pub = PARLEY__V1__PUBLISH_REQUEST__INIT;
    char cid[64], body[4096];
    const ProtobufCMessage *req;
    if (g->mode == LGG_LIST) {
        list.room = (char *)g->room;
        list.limit = g->limit;
        list.cursor_case = PARLEY__V1__LIST_MESSAGES_REQUEST__CURSOR_BEFORE_SEQ;
        list.before_seq = lgg_cursor(g);
        req = &list.base;
    } else {
        snprintf(cid, sizeof cid, "g%d-%" PRIu64, s->idx, s->n);
        size_t n = (size_t)snprintf(body, sizeof body,
                                    "lg %" PRIu64 " %d %" PRIu64 " ",
                                    clock_mono_ns(), s->idx, s->n);
        while (n < g->body_size && n < sizeof body - 1) body[n++] = 'x';
        body[n] = 0;
        pub.room = (char *)g->room;
        pub.client_msg_id = cid;
        pub.body = body;
        req = &pub.base;
    }
    s->t0 = clock_mono_ns();
    if (rpc_client_unary_start(&s->u, g->ch, g->cq, g->method->path, s->token,
                               req, dl, s) != PARLEY_OK)
        return -1;
    return 0;
}

/* Answers are decoded into a bump arena reset before each one, so reading
 * a page of 50 messages costs the client no malloc / free per field (the
 * client shares the machine with the server it measures). One thread, one
 * answer at a time; larger answers fall back to the heap. */
#define LGG_ARENA_BYTES (1u << 20)
static unsigned char lgg_arena[LGG_ARENA_BYTES] __attribute__((aligned(16)));
static size_t lgg_arena_used;

static void *lgg_alloc(void *ud, size_t n)
{
    (void)ud;
    size_t need = (n + 15) & ~(size_t)15;
    if (need <= LGG_ARENA_BYTES - lgg_arena_used) {
        void *p = lgg_arena + lgg_arena_used;
        lgg_arena_used += need;
        return p;
    }
    return malloc(n);
}

static void lgg_free(void *ud, void *p)
{
    (void)ud;
    unsigned char *c = p;
    if (c >= lgg_arena && c < lgg_arena + LGG_ARENA_BYTES) return;
    free(p);
}

static ProtobufCAllocator lgg_allocator = {lgg_alloc, lgg_free, NULL};

/* The call's answer decoded as d into the arena (NULL if it does not). */
static ProtobufCMessage *lgg_decode(const ProtobufCMessageDescriptor *d,
                                    grpc_byte_buffer *bb)
{
    grpc_byte_buffer_reader r;
    if (!bb || !grpc_byte_buffer_reader_init(&r, bb)) return NULL;
    grpc_slice sl = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    lgg_arena_used = 0;
    ProtobufCMessage *m = protobuf_c_message_unpack(
        d, &lgg_allocator, GRPC_SLICE_LENGTH(sl), GRPC_SLICE_START_PTR(sl));
    grpc_slice_unref(sl);
    return m;
}

/* Counts the answer of slot s's call, which completed with `success`. */
static void lgg_finish(lgg *g, lgg_slot *s, int success)
{
    uint64_t now = clock_mono_ns();
    ProtobufCMessage *resp = NULL;
    int unavailable = 0;
    parley_err e =
        rpc_client_unary_finish(&s->u, success, NULL, NULL, g->last_detail,
                                sizeof g->last_detail, &unavailable);
    if (e == PARLEY_OK) resp = lgg_decode(g->method->output, s->u.recv_bb);
    if (e == PARLEY_OK && resp) {
        int good = 0;
        if (g->mode == LGG_LIST) {
            const Parley__V1__ListMessagesResponse *m = (const void *)resp;
            good = m->n_messages == g->limit || g->head_seq < g->limit;
            g->rows += m->n_messages;
        } else {
            const Parley__V1__PublishResponse *m = (const void *)resp;
            good = m->message && m->message->seq > 0;
            if (m->duplicate) g->dup++;
        }
        protobuf_c_message_free_unpacked(resp, &lgg_allocator);
        if (good) {
            g->ok++;
            hist_record(g->lat, now - s->t0);
        } else {
            g->bad++;
        }
    } else {
        g->failed++;
        g->last_status = success ? (int)s->u.status : -1;
    }
    s->n++;
    rpc_client_unary_free(&s->u);
}

static int lgg_room_head(lgg *g)
{
    store *st = NULL;
    char err[200];
    parley_err e = store_open(g->db, NULL, &st, err, sizeof err);
    if (e != PARLEY_OK) {
        fprintf(stderr, "loadgen-grpc: open %s: %s\n", g->db, err);
        return -1;
    }
    parley_room r;
    e = store_room_get(st, g->room, &r);
    if (e == PARLEY_OK) g->head_seq = r.head_seq;
    store_close(st);
    return e == PARLEY_OK ? 0 : -1;
}

static int lgg_count_row(const parley_msg *m, void *ud)
{
    (void)m;
    (*(uint64_t *)ud)++;
    return 0;
}

static int lgg_run_sqlite(lgg *g)
{
    store *w = NULL, *st = NULL;
    char err[200];
    /* A reader handle, as parleyd's History readers use. */
    if (store_open(g->db, NULL, &w, err, sizeof err) != PARLEY_OK ||
        store_open_reader(w, &st, err, sizeof err) != PARLEY_OK) {
        fprintf(stderr, "loadgen-grpc: open %s: %s\n", g->db, err);
        store_close(w);
        return -1;
    }
    uint64_t end = clock_mono_ns() + (uint64_t)(g->duration * 1e9);
    while (clock_mono_ns() < end) {
        uint64_t rows = 0, t0 = clock_mono_ns();
        int more = 0;
        parley_err e = store_list(st, g->room, STORE_BEFORE_SEQ, lgg_cursor(g),
                                  g->limit, lgg_count_row, &rows, NULL, &more);
        if (e != PARLEY_OK || rows != g->limit) {
            g->bad++;
            continue;
        }
        hist_record(g->lat, clock_mono_ns() - t0);
        g->ok++;
        g->rows += rows;
    }
    store_close(st);
    store_close(w);
    return 0;
}

/* ---- stream mode: pipelined publishes on Connect streams ---- */

typedef struct lgg_stream lgg_stream;
typedef struct lgg_tag {
    lgg_stream *st;
    int kind; /* LGG_T_* */
} lgg_tag;
enum { LGG_T_START, LGG_T_SEND, LGG_T_RECV, LGG_T_STATUS };

struct lgg_stream {
    lgg *g;
    int idx;
    grpc_call *call;
    grpc_metadata md;
    lgg_tag t_start, t_send, t_recv, t_status;
    grpc_byte_buffer *send_bb, *recv_bb;
    grpc_metadata_array init_md, trail_md;
    grpc_status_code status;
    grpc_slice details;
    int sending, receiving, done, open;
    uint64_t next_id;  /* request ids 1, 2, ... */
    uint64_t inflight; /* sent, not yet acked */
    uint64_t *t0;      /* send time by request id % window */
    int ops;           /* batches in flight */
};

#define LGG_BATCH_MAX 64 /* publishes in one ClientFrame{batch} */

/* One publish frame (request id id) of stream st, its strings in cid and
 * body (the caller's buffers). */
static void lgg_publish_frame(lgg_stream *st, uint64_t id,
                              Parley__V1__ClientFrame *f,
                              Parley__V1__PublishRequest *p, char *cid,
                              size_t cid_len, char *body, size_t body_len)
{
    lgg *g = st->g;
    snprintf(cid, cid_len, "s%d-%" PRIu64, st->idx, id);
    size_t n =
        (size_t)snprintf(body, body_len, "lg %" PRIu64 " %d %" PRIu64 " ",
                         clock_mono_ns(), st->idx, id);
    while (n < g->body_size && n < body_len - 1) body[n++] = 'x';
    body[n] = 0;
    parley__v1__publish_request__init(p);
    p->room = (char *)g->room;
    p->client_msg_id = cid;
    p->body = body;
    parley__v1__client_frame__init(f);
    f->request_id = id;
    f->kind_case = PARLEY__V1__CLIENT_FRAME__KIND_PUBLISH;
    f->publish = p;
    st->t0[id % g->window] = clock_mono_ns();
}

/* Sends st->send_bb (one ClientFrame) on the stream; -1 (the buffer
 * freed) when the call would not take it. */
static int lgg_stream_send(lgg_stream *st)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = st->send_bb;
    if (grpc_call_start_batch(st->call, &op, 1, &st->t_send, NULL) !=
        GRPC_CALL_OK) {
        grpc_byte_buffer_destroy(st->send_bb);
        st->send_bb = NULL;
        return -1;
    }
    st->sending = 1;
    st->ops++;
    return 0;
}

/* Sends what the window has room for if no send is in flight (one
 * SEND_MESSAGE at a time: grpc's rule): one publish frame, or with batches
 * on up to LGG_BATCH_MAX of them in one ClientFrame{batch}. */
static void lgg_stream_kick(lgg_stream *st, int publishing)
{
    lgg *g = st->g;
    if (st->sending || st->done || !st->open || !publishing ||
        st->inflight >= g->window)
        return;
    static Parley__V1__ClientFrame fr[LGG_BATCH_MAX], *frp[LGG_BATCH_MAX];
    static Parley__V1__PublishRequest pr[LGG_BATCH_MAX];
    static char cid[LGG_BATCH_MAX][64], body[LGG_BATCH_MAX][4096];
    size_t n = 0, room = g->window - st->inflight;
    size_t max = g->batch ? LGG_BATCH_MAX : 1;
    while (n < room && n < max) {
        lgg_publish_frame(st, st->next_id++, &fr[n], &pr[n], cid[n],
                          sizeof cid[n], body[n], sizeof body[n]);
        frp[n] = &fr[n];
        n++;
    }
    if (n == 1 && !g->batch) {
        st->send_bb = rpc_client_pack(&fr[0].base);
    } else {
        Parley__V1__ClientBatch cb = PARLEY__V1__CLIENT_BATCH__INIT;
        cb.n_frames = n;
        cb.frames = frp;
        Parley__V1__ClientFrame f = PARLEY__V1__CLIENT_FRAME__INIT;
        f.kind_case = PARLEY__V1__CLIENT_FRAME__KIND_BATCH;
        f.batch = &cb;
        st->send_bb = rpc_client_pack(&f.base);
    }
    if (lgg_stream_send(st)) {
        st->done = 1;
        return;
    }
    st->inflight += n;
}

/* Turns batches on: ClientFrame{options{batch}}, answered by
 * ServerFrame{options} (not counted). */
static int lgg_stream_options(lgg_stream *st)
{
    Parley__V1__SessionOptions o = PARLEY__V1__SESSION_OPTIONS__INIT;
    o.batch = 1;
    Parley__V1__ClientFrame f = PARLEY__V1__CLIENT_FRAME__INIT;
    f.kind_case = PARLEY__V1__CLIENT_FRAME__KIND_OPTIONS;
    f.options = &o;
    st->send_bb = rpc_client_pack(&f.base);
    return lgg_stream_send(st);
}

static void lgg_stream_recv(lgg_stream *st)
{
    if (st->receiving || st->done) return;
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &st->recv_bb;
    if (grpc_call_start_batch(st->call, &op, 1, &st->t_recv, NULL) ==
        GRPC_CALL_OK) {
        st->receiving = 1;
        st->ops++;
    }
}

/* One answer frame: an ack counts (latency from its send), a batch is its
 * frames, the options answer is nothing; anything else is a failure. */
static void lgg_stream_one(lgg_stream *st, const Parley__V1__ServerFrame *f,
                           uint64_t now)
{
    lgg *g = st->g;
    if (f && f->kind_case == PARLEY__V1__SERVER_FRAME__KIND_OPTIONS) return;
    if (f && f->kind_case == PARLEY__V1__SERVER_FRAME__KIND_BATCH) {
        for (size_t i = 0; i < f->batch->n_frames; i++)
            lgg_stream_one(st, f->batch->frames[i], now);
        return;
    }
    if (f && f->kind_case == PARLEY__V1__SERVER_FRAME__KIND_ACK &&
        f->request_id >= 1 && f->request_id < st->next_id && f->ack->message &&
        f->ack->message->seq > 0) {
        g->ok++;
        if (f->ack->duplicate) g->dup++;
        hist_record(g->lat, now - st->t0[f->request_id % g->window]);
    } else {
        g->failed++;
        if (f && f->kind_case == PARLEY__V1__SERVER_FRAME__KIND_ERROR)
            snprintf(g->last_detail, sizeof g->last_detail, "%s",
                     f->error->detail);
    }
    if (st->inflight) st->inflight--;
}

static void lgg_stream_frame(lgg_stream *st, grpc_byte_buffer *bb)
{
    uint64_t now = clock_mono_ns();
    ProtobufCMessage *m = lgg_decode(&parley__v1__server_frame__descriptor, bb);
    lgg_stream_one(st, (const Parley__V1__ServerFrame *)m, now);
    if (m) protobuf_c_message_free_unpacked(m, &lgg_allocator);
}

static int lgg_run_stream(lgg *g)
{
    const char *path =
        parley_v1_Stream_service.methods[PARLEY_V1_STREAM_CONNECT].path;
    grpc_channel_credentials *cr = grpc_insecure_credentials_create();
    g->ch = grpc_channel_create(g->target, cr, NULL);
    grpc_channel_credentials_release(cr);
    g->cq = grpc_completion_queue_create_for_next(NULL);
    lgg_stream *sts = calloc(g->conc, sizeof *sts);
    if (!sts) return -1;
    gpr_timespec dl = gpr_time_add(
        gpr_now(GPR_CLOCK_MONOTONIC),
        gpr_time_from_seconds((int64_t)g->duration + 60, GPR_TIMESPAN));
    int ops_total = 0;
    for (unsigned i = 0; i < g->conc; i++) {
        lgg_stream *st = &sts[i];
        st->g = g;
        st->idx = (int)i;
        st->next_id = 1;
        st->t0 = calloc(g->window, sizeof *st->t0);
        st->t_start = (lgg_tag){st, LGG_T_START};
        st->t_send = (lgg_tag){st, LGG_T_SEND};
        st->t_recv = (lgg_tag){st, LGG_T_RECV};
        st->t_status = (lgg_tag){st, LGG_T_STATUS};
        grpc_metadata_array_init(&st->init_md);
        grpc_metadata_array_init(&st->trail_md);
        st->details = grpc_empty_slice();
        st->call = grpc_channel_create_call(
            g->ch, NULL, GRPC_PROPAGATE_DEFAULTS, g->cq,
            grpc_slice_from_static_string(path), NULL, dl, NULL);
        rpc_client_auth_md(&st->md, g->tokens[i % g->n_tokens]);
        grpc_op ops[3];
        memset(ops, 0, sizeof ops);
        ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
        ops[0].data.send_initial_metadata.count = 1;
        ops[0].data.send_initial_metadata.metadata = &st->md;
        ops[1].op = GRPC_OP_RECV_INITIAL_METADATA;
        ops[1].data.recv_initial_metadata.recv_initial_metadata = &st->init_md;
        grpc_op sop;
        memset(&sop, 0, sizeof sop);
        sop.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
        sop.data.recv_status_on_client.trailing_metadata = &st->trail_md;
        sop.data.recv_status_on_client.status = &st->status;
        sop.data.recv_status_on_client.status_details = &st->details;
        if (!st->call || !st->t0 ||
            grpc_call_start_batch(st->call, ops, 2, &st->t_start, NULL) !=
                GRPC_CALL_OK ||
            grpc_call_start_batch(st->call, &sop, 1, &st->t_status, NULL) !=
                GRPC_CALL_OK) {
            fprintf(stderr, "loadgen-grpc: cannot open stream %u\n", i);
            st->done = 1;
            continue;
        }
        st->ops = 2;
        lgg_stream_recv(st);
    }
    uint64_t end = clock_mono_ns() + (uint64_t)(g->duration * 1e9);
    int publishing = 1, closing = 0;
    for (;;) {
        ops_total = 0;
        for (unsigned i = 0; i < g->conc; i++) ops_total += sts[i].ops;
        if (!ops_total) break;
        uint64_t now = clock_mono_ns();
        if (publishing && now >= end) publishing = 0;
        if (!publishing && !closing) {
            /* Wait for what is in flight, then half-close each stream. */
            int waiting = 0;
            for (unsigned i = 0; i < g->conc; i++)
                waiting += sts[i].inflight > 0 && !sts[i].done;
            if (!waiting || now >= end + 30000000000ULL) {
                closing = 1;
                for (unsigned i = 0; i < g->conc; i++)
                    if (sts[i].call) grpc_call_cancel(sts[i].call, NULL);
            }
        }
        grpc_event ev = grpc_completion_queue_next(
            g->cq,
            gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                         gpr_time_from_millis(100, GPR_TIMESPAN)),
            NULL);
        if (ev.type == GRPC_QUEUE_TIMEOUT) continue;
        if (ev.type != GRPC_OP_COMPLETE) break;
        lgg_tag *t = ev.tag;
        lgg_stream *st = t->st;
        st->ops--;
        switch (t->kind) {
        case LGG_T_START:
            st->open = ev.success;
            if (!ev.success) st->done = 1;
            if (st->open && g->batch && lgg_stream_options(st) != 0)
                st->done = 1;
            break;
        case LGG_T_SEND:
            grpc_byte_buffer_destroy(st->send_bb);
            st->send_bb = NULL;
            st->sending = 0;
            if (!ev.success) st->done = 1;
            break;
        case LGG_T_RECV:
            st->receiving = 0;
            if (!ev.success || !st->recv_bb) {
                st->done = 1;
                break;
            }
            lgg_stream_frame(st, st->recv_bb);
            grpc_byte_buffer_destroy(st->recv_bb);
            st->recv_bb = NULL;
            lgg_stream_recv(st);
            break;
        case LGG_T_STATUS:
            st->done = 1;
            if (!closing && st->status != GRPC_STATUS_OK) {
                g->failed++;
                g->last_status = (int)st->status;
                rpc_client_slice_str(st->details, g->last_detail,
                                     sizeof g->last_detail);
            }
            break;
        }
        lgg_stream_kick(st, publishing);
    }
    uint64_t lost = 0;
    for (unsigned i = 0; i < g->conc; i++) {
        lgg_stream *st = &sts[i];
        lost += st->inflight;
        if (st->call) grpc_call_unref(st->call);
        grpc_slice_unref(st->md.value);
        grpc_slice_unref(st->details);
        grpc_metadata_array_destroy(&st->init_md);
        grpc_metadata_array_destroy(&st->trail_md);
        free(st->t0);
    }
    /* A publish never answered is a failed one. */
    g->failed += lost;
    free(sts);
    grpc_channel_destroy(g->ch);
    grpc_completion_queue_shutdown(g->cq);
    while (grpc_completion_queue_next(g->cq, gpr_inf_future(GPR_CLOCK_REALTIME),
                                      NULL)
               .type != GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(g->cq);
    return 0;
}

static int lgg_run_grpc(lgg *g)
{
    const rpc_method_desc *m =
        g->mode == LGG_LIST
            ? &parley_v1_History_service
                   .methods[PARLEY_V1_HISTORY_LIST_MESSAGES]
            : &parley_v1_Stream_service.methods[PARLEY_V1_STREAM_PUBLISH];
    g->method = m;
    grpc_channel_credentials *cr = grpc_insecure_credentials_create();
    g->ch = grpc_channel_create(g->target, cr, NULL);
    grpc_channel_credentials_release(cr);
    g->cq = grpc_completion_queue_create_for_next(NULL);
    lgg_slot *slots = calloc(g->conc, sizeof *slots);
    if (!slots) return -1;
    unsigned inflight = 0;
    for (unsigned i = 0; i < g->conc; i++) {
        slots[i].idx = (int)i;
        slots[i].token = g->tokens[i % g->n_tokens];
    }
    uint64_t end = clock_mono_ns() + (uint64_t)(g->duration * 1e9);
    for (unsigned i = 0; i < g->conc; i++)
        if (lgg_start(g, &slots[i]) == 0) inflight++;
    while (inflight) {
        grpc_event ev = grpc_completion_queue_next(
            g->cq,
            gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                         gpr_time_from_seconds(35, GPR_TIMESPAN)),
            NULL);
        if (ev.type != GRPC_OP_COMPLETE) {
            fprintf(stderr, "loadgen-grpc: completion queue timed out\n");
            break;
        }
        lgg_slot *s = ev.tag;
        lgg_finish(g, s, ev.success);
        inflight--;
        if (clock_mono_ns() < end && lgg_start(g, s) == 0) inflight++;
    }
    grpc_channel_destroy(g->ch);
    grpc_completion_queue_shutdown(g->cq);
    while (grpc_completion_queue_next(g->cq, gpr_inf_future(GPR_CLOCK_REALTIME),
                                      NULL)
               .type != GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(g->cq);
    free(slots);
    return 0;
}

/* loadgen-grpc's settings (base/settings.h). */
typedef struct lgg_opts {
    char mode[16], proto[16], target[256], room[128], db[512], pids[256];
    char secret_file[512], secret[512];
    int limit, conc, window, batch;
    double duration;
    size_t body_size;
} lgg_opts;

#define F(field) SETTING_FIELD(lgg_opts, field)
static const setting lgg_rows[] = {
    {"mode", NULL, SETTING_STR, F(mode), "", 0, 0, "list|publish|stream|sqlite",
     "what to measure (required)", 0},
    {"proto", NULL, SETTING_STR, F(proto), "parley", 0, 0, "parley|jetstream",
     "the server: parleyd over gRPC, or NATS JetStream (publish, stream)", 0},
    {"target", NULL, SETTING_STR, F(target), "", 0, 0, "HOST:PORT",
     "parleyd's gRPC address (list, publish)", 0},
    {"room", NULL, SETTING_STR, F(room), "history", 0, 0, "R", "the room", 0},
    {"db", NULL, SETTING_STR, F(db), "", 0, 0, "PATH",
     "the database (list, sqlite; publish: count what got stored)", 0},
    {"limit", NULL, SETTING_INT, F(limit), "50", 1, 1000, "N",
     "messages per page", 0},
    {"concurrency", NULL, SETTING_INT, F(conc), "16", 1, 1e5, "N",
     "calls in flight", 0},
    {"window", NULL, SETTING_INT, F(window), "64", 1, 1e6, "W",
     "stream: publishes in flight per stream", 0},
    {"batch", NULL, SETTING_INT, F(batch), "1", 0, 1, "0|1",
     "stream: turn the contract's batches on (up to 64 publishes a message)",
     0},
    {"duration", NULL, SETTING_DOUBLE, F(duration), "10", 0, 1e6, "S",
     "seconds", 0},
    {"size", NULL, SETTING_SIZE, F(body_size), "64", 1, 1e6, "B",
     "publish: body bytes", 0},
    {"pid", NULL, SETTING_LIST, F(pids), "", 0, 0, "P",
     "server process to measure", 0},
    {"secret-file", "PARLEY_JWT_SECRET_FILE", SETTING_STR, F(secret_file), "",
     0, 0, "F", "JWT secret to mint tokens with", 0},
    {"jwt-secret", "PARLEY_JWT_SECRET", SETTING_STR, F(secret), "", 0, 0, NULL,
     "the JWT secret itself", SETTING_NO_FLAG},
};
#undef F

static const settings_spec lgg_spec = {
    .program = "loadgen-grpc",
    .summary = "gRPC history / publish load; prints one JSON object.",
    .rows = lgg_rows,
    .n_rows = sizeof lgg_rows / sizeof lgg_rows[0],
};

int main(int argc, char **argv)
{
    static lgg_opts o;
    lgg g;
    memset(&g, 0, sizeof g);
    int r = settings_load_main(&lgg_spec, &o, argc, argv);
    if (r >= 0) return r;
    char err[700];
    g.limit = (unsigned)o.limit;
    g.conc = (unsigned)o.conc;
    g.window = (unsigned)o.window;
    g.batch = o.batch;
    g.duration = o.duration;
    g.body_size = o.body_size;
    g.room = o.room;
    g.target = *o.target ? o.target : NULL;
    g.db = *o.db ? o.db : NULL;
    g.rng = 0x2545F4914F6CDD1DULL;
    g.n_pids = lg_proc_parse_pids(o.pids, g.pids, 8);
    if (g.n_pids < 0) goto usage;
    const char *mode = o.mode;
    if (!strcmp(mode, "list"))
        g.mode = LGG_LIST;
    else if (!strcmp(mode, "publish"))
        g.mode = LGG_PUBLISH;
    else if (!strcmp(mode, "sqlite"))
        g.mode = LGG_SQLITE;
    else if (!strcmp(mode, "stream"))
        g.mode = LGG_STREAM;
    else
        goto usage;
    int writes = g.mode == LGG_PUBLISH || g.mode == LGG_STREAM;
    int js = !strcmp(o.proto, "jetstream");
    if (!js && strcmp(o.proto, "parley")) goto usage;
    if (js && !writes) goto usage;
    if (!writes && !g.db) goto usage;
    if (g.mode != LGG_SQLITE && !g.target) goto usage;
    if (g.db && lgg_room_head(&g) != 0) {
        fprintf(stderr, "loadgen-grpc: room %s not found in %s\n", g.room,
                g.db);
        return 1;
    }
    g.lat = hist_new();
    if (!g.lat) return 1;
    if (g.mode != LGG_SQLITE && !js) {
        g.n_tokens = g.conc;
        g.tokens = lg_token_mint_from(o.secret_file, o.secret, g.n_tokens, err,
                                      sizeof err);
        if (!g.tokens) {
            fprintf(stderr, "loadgen-grpc: %s\n", err);
            return 2;
        }
        grpc_init();
    }
    int64_t srv0 = 0, srv1 = 0;
    for (int i = 0; i < g.n_pids; i++) srv0 += lg_proc_cpu_ns(g.pids[i]);
    int64_t self0 = lg_self_cpu_ns();
    uint64_t t0 = clock_mono_ns();
    uint64_t head_before = g.head_seq;
    int rc;
    if (js) {
        char host[256];
        snprintf(host, sizeof host, "%s", g.target);
        char *colon = strrchr(host, ':');
        if (!colon) goto usage;
        *colon = '\0';
        lg_js_load jl = {.host = host,
                         .port = atoi(colon + 1),
                         .room = g.room,
                         .publishers = g.conc,
                         .window = g.mode == LGG_STREAM ? g.window : 1,
                         .duration = g.duration,
                         .body_size = g.body_size,
                         .lat = g.lat};
        rc = lg_js_publish_load(&jl);
        g.ok = jl.ok;
        g.failed = jl.failed;
        snprintf(g.last_detail, sizeof g.last_detail, "%s", jl.last_error);
        if (rc) fprintf(stderr, "loadgen-grpc: %s\n", jl.last_error);
    } else {
        rc = g.mode == LGG_SQLITE   ? lgg_run_sqlite(&g)
             : g.mode == LGG_STREAM ? lgg_run_stream(&g)
                                    : lgg_run_grpc(&g);
    }
    /* publish, stream with --db: how many new messages the database holds
     * now; each acked publish (fresh client_msg_ids) must be exactly one of
     * them. */
    int64_t stored = -1;
    if (writes && !js && g.db && lgg_room_head(&g) == 0)
        stored = (int64_t)(g.head_seq - head_before);
    uint64_t wall = clock_mono_ns() - t0;
    /* The detail goes into a JSON string. */
    for (char *q = g.last_detail; *q; q++)
        if (*q == '"' || *q == '\\' || (unsigned char)*q < 0x20) *q = '\'';
    int64_t self1 = lg_self_cpu_ns();
    int64_t hwm = 0, rss = 0;
    for (int i = 0; i < g.n_pids; i++) {
        srv1 += lg_proc_cpu_ns(g.pids[i]);
        int64_t h, r;
        if (lg_proc_mem_kb(g.pids[i], &h, &r) == 0) {
            hwm += h;
            rss += r;
        }
    }
    printf("{\"mode\":\"%s\",\"concurrency\":%u,\"window\":%u,\"limit\":%u,"
           "\"head_seq\":%" PRIu64 ",\"ok\":%" PRIu64 ",\"failed\":%" PRIu64
           ",\"bad\":%" PRIu64 ",\"dup\":%" PRIu64
           ",\"last_status\":%d,\"last_detail\":\"%s\","
           "\"wall_s\":%.3f,\"per_s\":%.0f,\"p50_us\":%.1f,\"p99_us\":%.1f,"
           "\"p999_us\":%.1f,\"max_us\":%.1f,\"lg_cpu_pct\":%.1f,"
           "\"srv_cpu_pct\":%.1f,\"srv_rss_peak_kb\":%" PRId64
           ",\"stored\":%" PRId64 "}\n",
           mode, g.conc, g.mode == LGG_STREAM ? g.window : 1, g.limit,
           g.head_seq, g.ok, g.failed, g.bad, g.dup, g.last_status,
           g.last_detail, (double)wall / 1e9,
           (double)g.ok / ((double)wall / 1e9),
           hist_percentile(g.lat, 50) / 1e3, hist_percentile(g.lat, 99) / 1e3,
           hist_percentile(g.lat, 99.9) / 1e3, hist_max(g.lat) / 1e3,
           100.0 * (double)(self1 - self0) / (double)wall,
           g.n_pids ? 100.0 * (double)(srv1 - srv0) / (double)wall : 0.0, hwm,
           stored);
    hist_free(g.lat);
    lg_token_free(g.tokens, g.n_tokens);
    if (g.mode != LGG_SQLITE && !js) grpc_shutdown();
    return rc ? 1 : (g.failed || g.bad ? 1 : 0);
usage:
    settings_usage(&lgg_spec, stderr);
    return 2;
}
