/* gw_upstream.c: the gateway's gRPC client of parleyd, on the grpc C core.
 *
 * Two kinds of calls. Unary calls (REST, History paging) carry the user's
 * token. Links are long-lived Stream.Connect streams opened with the
 * gateway's service token: every room subscription and every session's
 * publish rides one of --upstream-links of them (a room's link is chosen by
 * hash of its name, and the room's publishes take the same one), each
 * publish with the user's token as its ClientFrame.user_token. A handful of
 * streams instead of one per room and one per session: grpc's completion
 * queue walks all outstanding operations on every completion (Debian's
 * libgrpc keeps its debug checks), so its cost grew with the number of open
 * streams. A link asks for batches first (SessionOptions.batch): the core
 * then sends whatever queued up behind one message as one ServerFrame{batch},
 * and the link sends the frames that queued behind its send in flight as one
 * ClientFrame{batch}.
 *
 * Threads. The lws thread starts every call and send (grpc_call_start_batch
 * does not block) and owns all state. The grpc thread waits on the
 * completion queue. For a link's read it does the work itself: takes the
 * message apart (a batch into its frames, each kept as the bytes the core
 * encoded, for pass-through), decodes each frame, posts the next read at
 * once (so the core's send queue never waits for the lws thread), and hands
 * the frames over. Every other completion is handed over as it is. The
 * hand-over is one mutex-protected list; the grpc thread wakes the lws
 * thread (lws_cancel_service) only when the list was empty, so a burst
 * costs one wake-up. gw_up_drain, on the lws thread, runs the list.
 *
 * Several cores. --upstream lists the cores; every one of them is a
 * channel. A room belongs to one core at a time, chosen by rendezvous
 * hashing of the room's name over the cores that are usable now (highest
 * hash of (room, core address) wins): every gateway with the same list
 * picks the same core for a room, so a room's publishes and subscribers
 * meet on one core and the bus between cores carries it only while cores
 * come and go; a core that goes away moves only its own rooms, each to its
 * next choice, the others stay. Links are per core (--upstream-links
 * each). A core is not chosen while it is failed (a link to it ended
 * without being asked to, or its health check went unanswered: for
 * GW_CORE_RETRY_MS), while its health check says NOT_SERVING, or while
 * its channel is in TRANSIENT_FAILURE. The check is grpc.health.v1
 * Health/Check on each core every GW_HEALTH_MS with a GW_HEALTH_DEADLINE_MS
 * deadline; with gRPC keepalive on the channels (a ping every
 * GW_KEEPALIVE_MS) a core that died, hangs or is cut off is noticed within
 * a few seconds, one that was killed at once (its connection resets). A
 * core found failed or NOT_SERVING has its links taken down: on_down tells
 * the rooms, which move to their next core (gw_rooms.c).
 *
 * A link's life: OPEN (ops posted) -> DOWN (status received or cancelled:
 * calls answered with NULL, on_down reported, no longer chosen) -> freed
 * once no operation is pending. The read counts as one pending operation
 * from the first post until the grpc thread hands over its end. */
#include "gw_upstream.h"
#include "defaults.h"
#include "log.h"
#include "rpc_tls.h"

#include <assert.h>
#include <grpc/grpc.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "grpc/health/v1/health.grpc.h"
#include "parley/v1/stream.grpc.h"
#include "ring.h"
#include "rpc_client.h"
#include "wire.h"

#define GW_UNARY_DEADLINE_S 15
#define GW_HEALTH_MS 1000 /* each core's health is checked this often */
#define GW_HEALTH_DEADLINE_MS 1500 /* ... and unanswered after this, failed */
#define GW_CORE_RETRY_MS 2000      /* a failed core is not chosen this long */
#define GW_KEEPALIVE_MS 2000       /* gRPC keepalive ping interval ... */
#define GW_KEEPALIVE_TIMEOUT_MS \
    2000 /* ... and how long one may go unanswered */
/* Frames a link may queue for sending; over it a call is refused. */
#define GW_LINK_SENDQ_MAX (1u << 20)
/* Most frames merged into one ClientFrame{batch}. */
#define GW_LINK_MERGE_MAX 512

enum op_kind {
    OP_UNARY,
    OP_HEALTH,
    OP_LINK_START,
    OP_LINK_READ,
    OP_LINK_SEND,
    OP_LINK_STATUS
};

typedef struct up_op {
    enum op_kind kind;
    void *owner;
} up_op;

/* One hand-over from the grpc thread: a completion, or a frame read. */
typedef struct up_item {
    up_op *op; /* completion; NULL for a frame */
    int ok;
    gw_link *link; /* frame: its link */
    Parley__V1__ServerFrame *f;
    gw_buf *bytes; /* the frame as the core encoded it */
    int first;     /* the first frame of a gRPC message */
    struct up_item *next;
} up_item;

/* Every live grpc call, so shutdown can cancel them and wait. */
typedef struct up_live {
    grpc_call *call;
    lws_dll2_t link;
} up_live;

typedef struct up_unary {
    up_live live;
    up_op op;
    rpc_client_unary rc;
    const rpc_method_desc *m;
    gw_unary_cb cb;
    void *ud;
    int core; /* OP_HEALTH: whose check */
} up_unary;

struct gw_call {
    lws_dll2_t link; /* gw_link.calls, in request_id order */
    uint64_t rid;
    gw_reply_cb cb;
    void *ud;
};

struct gw_link {
    gw_upstream *u;
    int core; /* index in u->ch */
    int slot; /* index in u->links while chosen */
    up_live live;
    up_op op_start, op_read, op_send, op_status;
    grpc_metadata md;
    grpc_byte_buffer *send_bb; /* in flight */
    grpc_byte_buffer *recv_bb; /* grpc thread only, after the first post */
    ring sendq;                /* grpc_slice frames waiting to be sent */
    int sending;
    int batch_ok; /* the core agreed to SessionOptions.batch */
    int down;
    int pending; /* operations started, not yet completed (lws thread) */
    grpc_metadata_array init_md, trail_md;
    grpc_status_code status;
    grpc_slice details;
    uint64_t next_rid;
    lws_dll2_owner_t calls;
};

/* What the gateway knows of one core (lws thread). */
typedef struct up_core {
    uint64_t hash;           /* of its address: its rendezvous seed */
    int64_t failed_until_ms; /* not chosen before (monotonic ms) */
    int serving;             /* last check: 1 SERVING, 0 not, -1 unknown */
    up_unary *check;         /* the health check on its way, or NULL */
} up_core;

struct gw_upstream {
    gw_server *srv;
    grpc_completion_queue *cq;
    grpc_channel **ch;
    int n_ch;
    up_core *cores;  /* n_ch */
    gw_link **links; /* n_ch * n_links slots, core by core; NULL until used */
    int n_links;
    unsigned rr; /* unary calls: round robin over the usable cores */
    lws_sorted_usec_list_t sul_health;
    int health_started;
    gw_up_handlers h;
    parley_rule unary_rule; /* of the unary callback running now */
    pthread_t thread;
    int thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    up_item *head, *tail;  /* the hand-over list */
    lws_dll2_owner_t live; /* up_live.link */
    /* field numbers of the batch wrappers, from the generated tables */
    uint32_t f_sbatch, f_sframes, f_cbatch, f_cframes;
};

/* ---- the grpc thread ---- */

static void hand_over(gw_upstream *u, up_item *first, up_item *last)
{
    pthread_mutex_lock(&u->mu);
    int was_empty = u->head == NULL;
    if (u->tail)
        u->tail->next = first;
    else
        u->head = first;
    u->tail = last;
    pthread_cond_signal(&u->cv);
    pthread_mutex_unlock(&u->mu);
    if (was_empty && u->srv->ctx) lws_cancel_service(u->srv->ctx);
}

static up_item *item_new(void)
{
    up_item *it = calloc(1, sizeof *it);
    if (!it) {
        log_error("upstream", "out of memory in the grpc thread");
        abort();
    }
    return it;
}

/* Appends one encoded ServerFrame to the list [*first, *last]. A frame
 * that does not decode is dropped (counted when drained as an error). */
static void add_frame(gw_link *l, const uint8_t *p, size_t n, up_item **first,
                      up_item **last)
{
    up_item *it = item_new();
    it->link = l;
    it->f = (Parley__V1__ServerFrame *)protobuf_c_message_unpack(
        &parley__v1__server_frame__descriptor, NULL, n, p);
    it->bytes = it->f ? gw_buf_copy(p, n) : NULL;
    if (it->f && !it->bytes) {
        protobuf_c_message_free_unpacked(&it->f->base, NULL);
        it->f = NULL;
    }
    if (*last)
        (*last)->next = it;
    else
        *first = it;
    *last = it;
}

/* A message read on l: its frames (a batch taken apart, each frame kept in
 * the core's own encoding), in order. */
static void split_message(gw_upstream *u, gw_link *l, grpc_byte_buffer *bb,
                          up_item **first, up_item **last)
{
    grpc_byte_buffer_reader r;
    if (!grpc_byte_buffer_reader_init(&r, bb)) return;
    grpc_slice s = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    const uint8_t *p = GRPC_SLICE_START_PTR(s), *end = GRPC_SLICE_END_PTR(s);
    const uint8_t *batch = NULL;
    size_t batch_len = 0;
    wire_field f;
    int rc;
    while ((rc = wire_next(&p, end, &f)) == 1)
        if (f.number == u->f_sbatch && f.type == WIRE_LEN) {
            batch = f.data;
            batch_len = f.len;
        }
    if (rc == 0 && batch) {
        const uint8_t *q = batch, *qend = batch + batch_len;
        while ((rc = wire_next(&q, qend, &f)) == 1)
            if (f.number == u->f_sframes && f.type == WIRE_LEN)
                add_frame(l, f.data, f.len, first, last);
    } else {
        add_frame(l, GRPC_SLICE_START_PTR(s), GRPC_SLICE_LENGTH(s), first,
                  last);
    }
    grpc_slice_unref(s);
}

static int post_read(gw_link *l)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &l->recv_bb;
    return grpc_call_start_batch(l->live.call, &op, 1, &l->op_read, NULL) ==
                   GRPC_CALL_OK
               ? 0
               : -1;
}

static void *cq_thread(void *arg)
{
    gw_upstream *u = arg;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(
            u->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN) break;
        if (ev.type != GRPC_OP_COMPLETE) continue;
        up_op *op = ev.tag;
        if (op->kind == OP_LINK_READ && ev.success) {
            gw_link *l = op->owner;
            grpc_byte_buffer *bb = l->recv_bb;
            l->recv_bb = NULL;
            if (bb) {
                up_item *first = NULL, *last = NULL;
                split_message(u, l, bb, &first, &last);
                grpc_byte_buffer_destroy(bb);
                if (first) first->first = 1;
                /* The next read goes out before the lws thread sees this
                 * one; only a read that ends is handed over as such. */
                if (post_read(l) != 0) {
                    up_item *end = item_new();
                    end->op = op;
                    end->ok = 0;
                    if (last)
                        last->next = end;
                    else
                        first = end;
                    last = end;
                }
                if (first) hand_over(u, first, last);
                continue;
            }
        }
        up_item *it = item_new();
        it->op = op;
        it->ok = ev.success;
        hand_over(u, it, it);
    }
    return NULL;
}

/* TLS to parleyd when a CA or a client certificate is configured (mutual
 * TLS); plaintext only to the unix socket or loopback, unless allowed. */
static grpc_channel_credentials *gw_up_creds(gw_server *s)
{
    gw_config *c = &s->cfg;
    char err[400];
    if (*c->upstream_tls_ca || *c->upstream_tls_cert) {
        rpc_tls_files f = {c->upstream_tls_cert, c->upstream_tls_key,
                           c->upstream_tls_ca};
        grpc_channel_credentials *cr =
            rpc_tls_client_creds(&f, err, sizeof err);
        if (!cr) log_error("upstream", "upstream %s", err);
        return cr;
    }
    for (int i = 0; i < c->n_upstreams; i++)
        if (!rpc_addr_is_local(c->upstreams[i]) && !c->allow_plaintext) {
            log_error("config",
                      "upstream %s is beyond loopback: "
                      "give --upstream-tls-ca (or --allow-plaintext)",
                      c->upstreams[i]);
            return NULL;
        }
    return grpc_insecure_credentials_create();
}
/* ---- setup ---- */

parley_err gw_up_new(gw_server *s, gw_upstream **out)
{
    gw_upstream *u = calloc(1, sizeof *u);
    if (!u) return PARLEY_ERR_INTERNAL;
    grpc_init();
    u->srv = s;
    pthread_mutex_init(&u->mu, NULL);
    pthread_cond_init(&u->cv, NULL);
    u->f_sbatch =
        rpc_wire_field(&parley__v1__server_frame__descriptor, "batch");
    u->f_sframes =
        rpc_wire_field(&parley__v1__server_batch__descriptor, "frames");
    u->f_cbatch =
        rpc_wire_field(&parley__v1__client_frame__descriptor, "batch");
    u->f_cframes =
        rpc_wire_field(&parley__v1__client_batch__descriptor, "frames");
    u->cq = grpc_completion_queue_create_for_next(NULL);
    u->ch = calloc((size_t)s->cfg.n_upstreams, sizeof *u->ch);
    u->cores = calloc((size_t)s->cfg.n_upstreams, sizeof *u->cores);
    u->n_links = s->cfg.upstream_links > 0 ? s->cfg.upstream_links : 1;
    u->links = calloc((size_t)u->n_links * (size_t)s->cfg.n_upstreams,
                      sizeof *u->links);
    if (!u->ch || !u->cores || !u->links) {
        gw_up_free(u);
        return PARLEY_ERR_INTERNAL;
    }
    /* A dead or cut-off core is found by keepalive pings (parleyd accepts
     * them this often) as well as by the health checks. */
    grpc_arg args[9];
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = GRPC_ARG_CLIENT_IDLE_TIMEOUT_MS;
    args[0].value.integer = INT_MAX;
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS;
    args[1].value.integer = 200;
    args[2].type = GRPC_ARG_INTEGER;
    args[2].key = GRPC_ARG_MAX_RECONNECT_BACKOFF_MS;
    args[2].value.integer = 2000;
    args[3].type = GRPC_ARG_INTEGER;
    args[3].key = GRPC_ARG_MIN_RECONNECT_BACKOFF_MS;
    args[3].value.integer = 200;
    args[4].type = GRPC_ARG_INTEGER;
    args[4].key = GRPC_ARG_KEEPALIVE_TIME_MS;
    args[4].value.integer = GW_KEEPALIVE_MS;
    args[5].type = GRPC_ARG_INTEGER;
    args[5].key = GRPC_ARG_KEEPALIVE_TIMEOUT_MS;
    args[5].value.integer = GW_KEEPALIVE_TIMEOUT_MS;
    args[6].type = GRPC_ARG_INTEGER;
    args[6].key = GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS;
    args[6].value.integer = 1;
    args[7].type = GRPC_ARG_INTEGER;
    args[7].key = GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA;
    args[7].value.integer = 0; /* keep pinging an idle link */
    /* what the core may answer (a full history page), defaults.h */
    args[8].type = GRPC_ARG_INTEGER;
    args[8].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[8].value.integer = (int)PARLEY_CLIENT_RECV_MAX;
    grpc_channel_args ca = {9, args};
    grpc_channel_credentials *creds = gw_up_creds(s);
    if (!creds) {
        gw_up_free(u);
        return PARLEY_ERR_INTERNAL;
    }
    for (int i = 0; i < s->cfg.n_upstreams; i++) {
        u->ch[i] = grpc_channel_create(s->cfg.upstreams[i], creds, &ca);
        u->n_ch++;
        /* FNV-1a 64 of the address: the same on every gateway. */
        uint64_t h = 1469598103934665603ull;
        for (const char *p = s->cfg.upstreams[i]; *p; p++)
            h = (h ^ (unsigned char)*p) * 1099511628211ull;
        u->cores[i].hash = h;
        u->cores[i].serving = -1;
        grpc_channel_check_connectivity_state(u->ch[i], 1);
    }
    grpc_channel_credentials_release(creds);
    if (pthread_create(&u->thread, NULL, cq_thread, u) != 0) {
        gw_up_free(u);
        return PARLEY_ERR_INTERNAL;
    }
    u->thread_started = 1;
    *out = u;
    return PARLEY_OK;
}

void gw_up_set_handlers(gw_server *s, const gw_up_handlers *h)
{
    s->up->h = *h;
}

static void run_item(gw_server *s, up_item *it);

/* Takes the whole hand-over list (lws thread). */
static up_item *take_items(gw_upstream *u)
{
    pthread_mutex_lock(&u->mu);
    up_item *it = u->head;
    u->head = u->tail = NULL;
    pthread_mutex_unlock(&u->mu);
    return it;
}

void gw_up_free(gw_upstream *u)
{
    if (!u) return;
    lws_sul_cancel(&u->sul_health);
    /* Cancel what still runs and run its completions here. */
    lws_start_foreach_dll(struct lws_dll2 *, d, lws_dll2_get_head(&u->live))
    {
        grpc_call_cancel(lws_container_of(d, up_live, link)->call, NULL);
    }
    lws_end_foreach_dll(d);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    while (u->live.count > 0 && u->thread_started) {
        pthread_mutex_lock(&u->mu);
        while (!u->head)
            if (pthread_cond_timedwait(&u->cv, &u->mu, &until) != 0) break;
        pthread_mutex_unlock(&u->mu);
        up_item *it = take_items(u);
        if (!it) break;
        while (it) {
            up_item *next = it->next;
            run_item(u->srv, it);
            it = next;
        }
    }
    for (int i = 0; i < u->n_ch; i++) grpc_channel_destroy(u->ch[i]);
    free(u->ch);
    if (u->cq) {
        grpc_completion_queue_shutdown(u->cq);
        if (u->thread_started) pthread_join(u->thread, NULL);
        grpc_completion_queue_destroy(u->cq);
    }
    for (up_item *it = take_items(u); it;) {
        up_item *next = it->next;
        if (it->f) protobuf_c_message_free_unpacked(&it->f->base, NULL);
        gw_buf_unref(it->bytes);
        free(it);
        it = next;
    }
    free(u->links);
    free(u->cores);
    pthread_mutex_destroy(&u->mu);
    pthread_cond_destroy(&u->cv);
    free(u);
    grpc_shutdown();
}

/* May core i be given work now? */
static int core_usable(gw_upstream *u, int i, int64_t now)
{
    const up_core *c = &u->cores[i];
    if (now < c->failed_until_ms || c->serving == 0) return 0;
    grpc_connectivity_state st =
        grpc_channel_check_connectivity_state(u->ch[i], 1);
    return st != GRPC_CHANNEL_TRANSIENT_FAILURE && st != GRPC_CHANNEL_SHUTDOWN;
}

/* A core for a unary call: the usable ones in turn (any core may serve
 * any call); when none is, the first (the call fails and says so). */
static int pick_core_any(gw_upstream *u)
{
    int64_t now = clock_mono_ms();
    for (int k = 0; k < u->n_ch; k++) {
        int i = (int)((u->rr + (unsigned)k) % (unsigned)u->n_ch);
        if (core_usable(u, i, now)) {
            u->rr = (unsigned)i + 1;
            return i;
        }
    }
    return 0;
}

static grpc_channel *pick_channel(gw_upstream *u)
{
    return u->ch[pick_core_any(u)];
}

/* splitmix64's finalizer: spreads (room hash ^ core hash). */
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* The core of a room: rendezvous hashing over the usable cores; -1 when
 * none is usable. */
static int pick_core_for(gw_upstream *u, const char *key)
{
    uint64_t k = 1469598103934665603ull;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        k = (k ^ *p) * 1099511628211ull;
    int64_t now = clock_mono_ms();
    int best = -1;
    uint64_t best_score = 0;
    for (int i = 0; i < u->n_ch; i++) {
        if (!core_usable(u, i, now)) continue;
        uint64_t score = mix64(k ^ u->cores[i].hash);
        if (best < 0 || score > best_score) {
            best = i;
            best_score = score;
        }
    }
    return best;
}

int gw_up_healthy(gw_server *s)
{
    gw_upstream *u = s->up;
    int64_t now = clock_mono_ms();
    for (int i = 0; u && i < u->n_ch; i++)
        if (core_usable(u, i, now) && grpc_channel_check_connectivity_state(
                                          u->ch[i], 0) == GRPC_CHANNEL_READY)
            return 1;
    return 0;
}

int gw_up_cores(gw_server *s, int *usable)
{
    gw_upstream *u = s->up;
    int64_t now = clock_mono_ms();
    int n = 0;
    for (int i = 0; u && i < u->n_ch; i++) n += core_usable(u, i, now);
    *usable = n;
    return u ? u->n_ch : 0;
}

const char *gw_up_state_name(gw_server *s)
{
    gw_upstream *u = s->up;
    int best = -1;
    static const char *names[] = {"idle", "connecting", "ready",
                                  "transient_failure", "shutdown"};
    for (int i = 0; u && i < u->n_ch; i++) {
        int st = (int)grpc_channel_check_connectivity_state(u->ch[i], 0);
        if (st == GRPC_CHANNEL_READY) return "ready";
        if (best < 0) best = st;
    }
    return best >= 0 && best <= 4 ? names[best] : "none";
}

/* ---- unary calls ---- */

parley_rule gw_up_unary_rule(const gw_server *s) { return s->up->unary_rule; }

parley_err gw_up_unary(gw_server *s, const rpc_method_desc *m,
                       const ProtobufCMessage *req, const char *token,
                       gw_unary_cb cb, void *ud)
{
    gw_upstream *u = s->up;
    up_unary *c = calloc(1, sizeof *c);
    if (!c) return PARLEY_ERR_INTERNAL;
    c->op.kind = OP_UNARY;
    c->op.owner = c;
    c->m = m;
    c->cb = cb;
    c->ud = ud;
    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
                     gpr_time_from_seconds(GW_UNARY_DEADLINE_S, GPR_TIMESPAN));
    if (rpc_client_unary_start(&c->rc, pick_channel(u), u->cq, m->path, token,
                               req, deadline, &c->op) != PARLEY_OK) {
        free(c);
        return PARLEY_ERR_INTERNAL;
    }
    c->live.call = c->rc.call;
    lws_dll2_add_tail(&c->live.link, &u->live);
    return PARLEY_OK;
}

static void unary_done(gw_server *s, up_unary *c, int ok)
{
    char detail[256] = "";
    int unavailable = 0;
    ProtobufCMessage *resp = NULL;
    parley_err e = rpc_client_unary_finish(&c->rc, ok, c->m->output, &resp,
                                           detail, sizeof detail, &unavailable);
    s->m.upstream_unary++;
    if (e != PARLEY_OK) s->m.upstream_errors++;
    lws_dll2_remove(&c->live.link);
    char rule[64];
    s->up->unary_rule = e == PARLEY_ERR_PERMISSION_DENIED &&
                                rpc_metadata_get(&c->rc.trail_md, "parley-rule",
                                                 rule, sizeof rule) > 0
                            ? parley_rule_from_name(rule)
                            : PARLEY_RULE_NONE;
    c->cb(s, c->ud, e, detail, unavailable, resp);
    s->up->unary_rule = PARLEY_RULE_NONE;
    rpc_client_unary_free(&c->rc);
    free(c);
}

/* ---- links ---- */

static void link_free_if_done(gw_link *l)
{
    if (l->pending > 0) return;
    assert(l->down && l->calls.count == 0);
    lws_dll2_remove(&l->live.link);
    grpc_call_unref(l->live.call);
    if (l->send_bb) grpc_byte_buffer_destroy(l->send_bb);
    if (l->recv_bb) grpc_byte_buffer_destroy(l->recv_bb);
    grpc_slice q;
    while (ring_pop(&l->sendq, &q) == 0) grpc_slice_unref(q);
    ring_free(&l->sendq);
    grpc_slice_unref(l->md.value);
    grpc_slice_unref(l->details);
    grpc_metadata_array_destroy(&l->init_md);
    grpc_metadata_array_destroy(&l->trail_md);
    free(l);
}

/* OPEN -> DOWN: answers every call with NULL, reports on_down once, and
 * frees the slot so the next gw_up_link opens a fresh link. */
static void core_mark_failed(gw_server *s, int i, const char *why);
static void core_links_down(gw_server *s, int i);

static void link_down(gw_server *s, gw_link *l)
{
    if (l->down) return;
    l->down = 1;
    /* Links end only when their core went away (or at shutdown): the core
     * is not chosen while its rooms move, and its other links go too. */
    if (!s->shutting_down) core_mark_failed(s, l->core, "its stream ended");
    grpc_call_cancel(l->live.call, NULL);
    gw_upstream *u = s->up;
    if (l->slot >= 0 && u->links[l->slot] == l) u->links[l->slot] = NULL;
    l->slot = -1;
    struct lws_dll2 *d;
    while ((d = lws_dll2_get_head(&l->calls)) != NULL) {
        gw_call *c = lws_container_of(d, gw_call, link);
        lws_dll2_remove(d);
        if (c->cb) c->cb(s, c->ud, NULL);
        free(c);
    }
    if (u->h.on_down) u->h.on_down(s, l);
    if (!s->shutting_down) core_links_down(s, l->core);
}

/* Starts the next send if none is on its way: the oldest queued frame, or,
 * once the core agreed to batches, every queued frame as one batch. */
static void link_pump(gw_server *s, gw_link *l)
{
    if (l->sending || l->down || ring_len(&l->sendq) == 0) return;
    gw_upstream *u = s->up;
    grpc_slice msg;
    size_t n = ring_len(&l->sendq);
    if (n > 1 && l->batch_ok) {
        /* as many as fit in one message the core takes */
        size_t bytes = 0, k = 0;
        for (; k < n && k < GW_LINK_MERGE_MAX; k++) {
            size_t len =
                GRPC_SLICE_LENGTH(*(grpc_slice *)ring_at(&l->sendq, k));
            if (k > 0 && bytes + len + WIRE_PREFIX_MAX > GW_LINK_MSG_MAX) break;
            bytes += len + WIRE_PREFIX_MAX;
        }
        n = k;
    }
    if (n > 1 && l->batch_ok) {
        grpc_slice frames[GW_LINK_MERGE_MAX];
        for (size_t i = 0; i < n; i++) ring_pop(&l->sendq, &frames[i]);
        msg = rpc_wire_merge(frames, n, u->f_cbatch, u->f_cframes);
        for (size_t i = 0; i < n; i++) grpc_slice_unref(frames[i]);
    } else {
        n = 1;
        ring_pop(&l->sendq, &msg);
    }
    l->send_bb = grpc_raw_byte_buffer_create(&msg, 1);
    grpc_slice_unref(msg);
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = l->send_bb;
    if (grpc_call_start_batch(l->live.call, &op, 1, &l->op_send, NULL) !=
        GRPC_CALL_OK) {
        grpc_byte_buffer_destroy(l->send_bb);
        l->send_bb = NULL;
        link_down(s, l);
        return;
    }
    l->sending = 1;
    l->pending++;
    s->m.upstream_msgs_out++;
    s->m.upstream_frames_out += n;
}

static void options_answered(gw_server *s, void *ud, Parley__V1__ServerFrame *f)
{
    gw_link *l = ud;
    (void)s;
    if (f && f->kind_case == PARLEY__V1__SERVER_FRAME__KIND_OPTIONS &&
        f->options->batch)
        l->batch_ok = 1;
}

static gw_link *link_open(gw_server *s, int slot)
{
    gw_upstream *u = s->up;
    gw_link *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    l->u = u;
    l->slot = slot;
    l->core = slot / u->n_links;
    l->op_start = (up_op){OP_LINK_START, l};
    l->op_read = (up_op){OP_LINK_READ, l};
    l->op_send = (up_op){OP_LINK_SEND, l};
    l->op_status = (up_op){OP_LINK_STATUS, l};
    ring_init(&l->sendq, sizeof(grpc_slice), GW_LINK_SENDQ_MAX);
    grpc_metadata_array_init(&l->init_md);
    grpc_metadata_array_init(&l->trail_md);
    l->live.call = grpc_channel_create_call(
        u->ch[l->core], NULL, GRPC_PROPAGATE_DEFAULTS, u->cq,
        grpc_slice_from_static_string(
            parley_v1_Stream_service.methods[PARLEY_V1_STREAM_CONNECT].path),
        NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    rpc_client_auth_md(&l->md, s->service_token);
    lws_dll2_add_tail(&l->live.link, &u->live);
    s->m.upstream_links++;

    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = 1;
    ops[0].data.send_initial_metadata.metadata = &l->md;
    ops[1].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[1].data.recv_initial_metadata.recv_initial_metadata = &l->init_md;
    int started = 0;
    if (grpc_call_start_batch(l->live.call, ops, 2, &l->op_start, NULL) ==
        GRPC_CALL_OK) {
        l->pending++;
        started++;
    }
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[0].data.recv_status_on_client.trailing_metadata = &l->trail_md;
    ops[0].data.recv_status_on_client.status = &l->status;
    ops[0].data.recv_status_on_client.status_details = &l->details;
    if (grpc_call_start_batch(l->live.call, ops, 1, &l->op_status, NULL) ==
        GRPC_CALL_OK) {
        l->pending++;
        started++;
    }
    if (post_read(l) == 0) {
        l->pending++;
        started++;
    }
    if (started < 3) {
        /* Could not start: report nothing, the caller sees NULL. */
        l->slot = -1;
        l->down = 1;
        grpc_call_cancel(l->live.call, NULL);
        link_free_if_done(l);
        return NULL;
    }
    /* The first frame asks for batches; until the answer, frame by frame. */
    Parley__V1__SessionOptions o = PARLEY__V1__SESSION_OPTIONS__INIT;
    o.batch = 1;
    o.presence = 1; /* the rooms pass them on to the sessions that ask */
    o.typing = 1;
    Parley__V1__ClientFrame f = PARLEY__V1__CLIENT_FRAME__INIT;
    f.kind_case = PARLEY__V1__CLIENT_FRAME__KIND_OPTIONS;
    f.options = &o;
    u->links[slot] = l;
    if (!gw_link_call(l, &f, NULL, options_answered, l)) {
        link_down(s, l);
        return NULL;
    }
    return l;
}

gw_link *gw_up_link(gw_server *s, const char *key)
{
    gw_upstream *u = s->up;
    int core = pick_core_for(u, key);
    if (core < 0) return NULL;
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 16777619u;
    int slot = core * u->n_links + (int)(h % (uint32_t)u->n_links);
    if (u->links[slot]) return u->links[slot];
    return link_open(s, slot);
}

int gw_link_core(const gw_link *l) { return l->core; }

/* ---- the cores' health ---- */

/* Takes every link of core i down (their rooms move, their waiting calls
 * are answered NULL). */
static void core_links_down(gw_server *s, int i)
{
    gw_upstream *u = s->up;
    for (int k = 0; k < u->n_links; k++) {
        gw_link *l = u->links[i * u->n_links + k];
        if (l) link_down(s, l);
    }
}

static void core_mark_failed(gw_server *s, int i, const char *why)
{
    gw_upstream *u = s->up;
    up_core *c = &u->cores[i];
    int64_t now = clock_mono_ms();
    if (now >= c->failed_until_ms) {
        log_warn("core", "core %s failed (%s); its rooms move",
                 s->cfg.upstreams[i], why);
        s->m.core_failures++;
    }
    c->failed_until_ms = now + GW_CORE_RETRY_MS;
}

static void core_failed(gw_server *s, int i, const char *why)
{
    core_mark_failed(s, i, why);
    core_links_down(s, i);
}

static void health_done(gw_server *s, up_unary *c, int ok)
{
    gw_upstream *u = s->up;
    int i = c->core;
    char detail[256] = "";
    int unavailable = 0;
    ProtobufCMessage *resp = NULL;
    parley_err e = rpc_client_unary_finish(&c->rc, ok, c->m->output, &resp,
                                           detail, sizeof detail, &unavailable);
    lws_dll2_remove(&c->live.link);
    rpc_client_unary_free(&c->rc);
    free(c);
    u->cores[i].check = NULL;
    if (s->shutting_down) {
        if (resp) protobuf_c_message_free_unpacked(resp, NULL);
        return;
    }
    if (e != PARLEY_OK) {
        /* No answer in time: dead, hanging or cut off. Another refusal
         * (a core without the health service) says nothing. */
        if (unavailable) core_failed(s, i, detail[0] ? detail : "no answer");
        return;
    }
    Grpc__Health__V1__HealthCheckResponse *hr =
        (Grpc__Health__V1__HealthCheckResponse *)resp;
    int serving =
        hr->status ==
        GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    protobuf_c_message_free_unpacked(resp, NULL);
    int was = u->cores[i].serving;
    u->cores[i].serving = serving;
    if (!serving && was != 0) {
        /* Its rooms move if some other core serves; when none does (the
         * store is down for all of them) they stay: moving helps nobody
         * and would end their sessions. */
        int others = 0;
        int64_t now = clock_mono_ms();
        for (int k = 0; k < u->n_ch; k++)
            others += k != i && core_usable(u, k, now);
        log_warn("core", "core %s is NOT_SERVING%s", s->cfg.upstreams[i],
                 others ? "; its rooms move" : "");
        if (others) core_links_down(s, i);
    } else if (serving && was == 0) {
        log_info("core", "core %s is SERVING again", s->cfg.upstreams[i]);
    }
}

/* Every GW_HEALTH_MS: a Health/Check to each core that has none on its
 * way. */
static void health_tick(lws_sorted_usec_list_t *sul)
{
    gw_upstream *u = lws_container_of(sul, gw_upstream, sul_health);
    gw_server *s = u->srv;
    if (s->shutting_down) return;
    const rpc_method_desc *m =
        &grpc_health_v1_Health_service.methods[GRPC_HEALTH_V1_HEALTH_CHECK];
    for (int i = 0; i < u->n_ch; i++) {
        if (u->cores[i].check) continue;
        up_unary *c = calloc(1, sizeof *c);
        if (!c) break;
        c->op.kind = OP_HEALTH;
        c->op.owner = c;
        c->m = m;
        c->core = i;
        Grpc__Health__V1__HealthCheckRequest req =
            GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
        req.service = "";
        gpr_timespec deadline = gpr_time_add(
            gpr_now(GPR_CLOCK_REALTIME),
            gpr_time_from_millis(GW_HEALTH_DEADLINE_MS, GPR_TIMESPAN));
        if (rpc_client_unary_start(&c->rc, u->ch[i], u->cq, m->path,
                                   s->service_token, &req.base, deadline,
                                   &c->op) != PARLEY_OK) {
            free(c);
            continue;
        }
        c->live.call = c->rc.call;
        lws_dll2_add_tail(&c->live.link, &u->live);
        u->cores[i].check = c;
    }
    lws_sul_schedule(s->ctx, 0, &u->sul_health, health_tick,
                     (lws_usec_t)GW_HEALTH_MS * 1000);
}

size_t gw_link_frame_size(const Parley__V1__ClientFrame *f,
                          const char *user_token)
{
    /* request_id (at most 11 bytes) and user_token's key and length */
    return protobuf_c_message_get_packed_size(&f->base) + 11 +
           (user_token ? strlen(user_token) + WIRE_PREFIX_MAX : 0);
}

/* Queues f with request id rid (and user_token); -1 if full. */
static int link_enqueue(gw_link *l, Parley__V1__ClientFrame *f,
                        const char *user_token, uint64_t rid)
{
    assert(gw_link_frame_size(f, user_token) <= GW_LINK_MSG_MAX);
    f->request_id = rid;
    char *saved = f->user_token;
    if (user_token) f->user_token = (char *)user_token;
    grpc_slice bytes = rpc_encode(&f->base);
    f->user_token = saved;
    if (ring_push(&l->sendq, &bytes) != 0) {
        grpc_slice_unref(bytes);
        return -1;
    }
    return 0;
}

gw_call *gw_link_call(gw_link *l, Parley__V1__ClientFrame *f,
                      const char *user_token, gw_reply_cb cb, void *ud)
{
    if (!l || l->down || ring_is_full(&l->sendq)) return NULL;
    gw_call *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->rid = ++l->next_rid;
    c->cb = cb;
    c->ud = ud;
    if (link_enqueue(l, f, user_token, c->rid) != 0) {
        free(c);
        return NULL;
    }
    lws_dll2_add_tail(&c->link, &l->calls);
    link_pump(l->u->srv, l);
    return c;
}

int gw_link_send(gw_link *l, Parley__V1__ClientFrame *f, const char *user_token)
{
    if (!l || l->down || ring_is_full(&l->sendq)) return -1;
    if (link_enqueue(l, f, user_token, ++l->next_rid) != 0) return -1;
    link_pump(l->u->srv, l);
    return 0;
}

void gw_call_forget(gw_call *c)
{
    if (c) c->cb = NULL;
}

/* The call waiting for request id rid; answers come mostly in the order
 * the frames went, so the search usually stops at the head. */
static gw_call *call_find(gw_link *l, uint64_t rid)
{
    lws_start_foreach_dll(struct lws_dll2 *, d, lws_dll2_get_head(&l->calls))
    {
        gw_call *c = lws_container_of(d, gw_call, link);
        if (c->rid == rid) return c;
    }
    lws_end_foreach_dll(d);
    return NULL;
}

static void link_frame(gw_server *s, gw_link *l, Parley__V1__ServerFrame *f,
                       gw_buf *bytes)
{
    s->m.upstream_frames_in++;
    if (l->down) return; /* read before the end was known: dropped */
    if (f->request_id != 0) {
        gw_call *c = call_find(l, f->request_id);
        if (!c) return;
        /* Events of a subscription come first with request_id 0; the
         * Subscribed or Error with the id is the one answer. */
        lws_dll2_remove(&c->link);
        if (c->cb) c->cb(s, c->ud, f);
        free(c);
    } else if (f->kind_case == PARLEY__V1__SERVER_FRAME__KIND_EVENT &&
               f->event && f->event->message) {
        s->m.upstream_events++;
        if (s->up->h.on_event) s->up->h.on_event(s, l, f, bytes);
    } else if ((f->kind_case == PARLEY__V1__SERVER_FRAME__KIND_ROOM_EVENT &&
                f->room_event && f->room_event->action) ||
               (f->kind_case == PARLEY__V1__SERVER_FRAME__KIND_PRESENCE &&
                f->presence) ||
               (f->kind_case == PARLEY__V1__SERVER_FRAME__KIND_TYPING &&
                f->typing && f->typing->user)) {
        if (s->up->h.on_room_frame) s->up->h.on_room_frame(s, l, f);
    }
}

static void link_op_done(gw_server *s, up_op *op, int ok)
{
    gw_link *l = op->owner;
    assert(l->pending > 0);
    l->pending--;
    switch (op->kind) {
    case OP_LINK_START:
        if (!ok) link_down(s, l); /* the status completion tells why */
        break;
    case OP_LINK_SEND:
        grpc_byte_buffer_destroy(l->send_bb);
        l->send_bb = NULL;
        l->sending = 0;
        if (!ok)
            link_down(s, l);
        else
            link_pump(s, l);
        break;
    case OP_LINK_READ: /* the read ended: the stream is over */
        link_down(s, l);
        break;
    case OP_LINK_STATUS:
        if (!l->down) {
            s->m.upstream_errors++;
            char detail[256];
            rpc_client_slice_str(l->details, detail, sizeof detail);
            log_warn("upstream", "upstream stream ended: %d %s", (int)l->status,
                     detail);
        }
        link_down(s, l);
        break;
    default: assert(!"not a link operation");
    }
    link_free_if_done(l);
}

static void run_item(gw_server *s, up_item *it)
{
    if (!it->op) {
        if (it->first) s->m.upstream_msgs_in++;
        if (it->f) {
            link_frame(s, it->link, it->f, it->bytes);
            protobuf_c_message_free_unpacked(&it->f->base, NULL);
        } else {
            s->m.upstream_errors++; /* a frame that did not decode */
        }
        gw_buf_unref(it->bytes);
    } else if (it->op->kind == OP_UNARY) {
        unary_done(s, it->op->owner, it->ok);
    } else if (it->op->kind == OP_HEALTH) {
        health_done(s, it->op->owner, it->ok);
    } else {
        link_op_done(s, it->op, it->ok);
    }
    free(it);
}

void gw_up_drain(gw_server *s)
{
    gw_upstream *u = s->up;
    if (!u) return;
    if (!u->health_started && s->ctx && !s->shutting_down) {
        u->health_started = 1; /* the lws context exists from here on */
        health_tick(&u->sul_health);
    }
    up_item *it = take_items(u);
    while (it) {
        up_item *next = it->next;
        run_item(s, it);
        it = next;
    }
}

void gw_up_renew(gw_server *s)
{
    gw_upstream *u = s->up;
    Parley__V1__ClientFrame cf = PARLEY__V1__CLIENT_FRAME__INIT;
    Parley__V1__Authenticate au = PARLEY__V1__AUTHENTICATE__INIT;
    cf.kind_case = PARLEY__V1__CLIENT_FRAME__KIND_AUTHENTICATE;
    cf.authenticate = &au;
    au.token = s->service_token;
    for (int i = 0; u && i < u->n_links; i++)
        if (u->links[i]) (void)gw_link_call(u->links[i], &cf, NULL, NULL, NULL);
}
