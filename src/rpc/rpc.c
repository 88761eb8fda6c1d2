/* rpc.c: the generic gRPC server layer (see rpc.h). Owns the grpc_server,
 * its one completion queue, the registered methods, and each call's
 * lifecycle: receive, decode, dispatch, replies, the per-call send queue and
 * the final status, which an observer (metrics, logs) is told when the call
 * is over. Every completion-queue tag is an rpc_op whose callback
 * runs on the thread of the loop (rpc_loop) that accepted the call: the main
 * loop, or one of the worker threads that serve the methods given to
 * rpc_server_on_workers, each with its own completion queue, calls and
 * ready list. Loops share only what is immutable after start, the atomic
 * shutdown flag and the observer (which must be thread-safe).
 *
 * A call's state is three small machines, each changed only through its
 * call_*_to() function, which asserts that the step is one of those drawn
 * here.
 *
 * The answer (rpc_call_state), what the handler may still do:
 *
 *        rpc_stream_finish / rpc_fail
 *        with sends pending                     last pending send done:
 *   OPEN ----------------------> DRAINING ----- status sent ----+
 *    |                                                          v
 *    +-- rpc_reply, cancel, finish with nothing pending ---> FINISHED
 *
 *   OPEN, DRAINING, FINISHED --- grpc reports the call over ---> CLOSED
 *
 *   OPEN      the handler may reply, stream, finish.
 *   DRAINING  the final status is recorded and leaves once the send queue
 *             is empty; nothing more may be queued.
 *   FINISHED  the reply or final status is on its way, or the call was
 *             cancelled; nothing more is sent.
 *   CLOSED    RECV_CLOSE_ON_SERVER completed (on_close ran) or could not be
 *             started; the queue is dropped. Freed once no batch is in
 *             flight and no reference is held. Terminal.
 *
 * The send side (rpc_send_state), one SEND_MESSAGE batch at a time:
 *
 *   IDLE --kick_send--> IN_FLIGHT --completed ok, call not closed--> HELD
 *    ^                      |                                         |
 *    +-- failed or closed --+      +-- end of the poll (ready list), -+
 *    +-----------------------------+   or nothing left to send
 *
 *   HELD: the last send just completed; the next one starts at the end of
 *   this rpc_server_poll, after the completion queue was drained, so one
 *   fast stream cannot monopolize the loop. Sends queued meanwhile wait.
 *
 * The receive side of a client- or bidi-streaming call (rpc_recv_state):
 *
 *   IDLE --post_recv--> POSTED --a message--> IDLE
 *                          |
 *                          +--client half-closed or call over--> ENDED
 *
 * Invariants (asserted): a call is on its loop's list until it is freed;
 * it is on the ready list only while HELD, holding a reference; DRAINING
 * means a send is in flight, held or queued; the queue is empty once
 * CLOSED. */
#include "rpc.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grpc/byte_buffer.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include "clock.h"
#include "list.h"
#include "log.h"
#include "ring.h"

#define RPC_SLOTS_PER_METHOD 4 /* requested calls kept posted per method */
/* events per rpc_server_poll: bounds the wait of a publish for its group
 * commit */
#define RPC_POLL_BUDGET 256
/* grpc's own receive cap: a message between max_recv_bytes and this is read
 * and refused by too_big() with the parley-error-code trailer; above it grpc
 * refuses it without reading it all (and without the trailer). */
#define RPC_RECV_HARD_CAP (4u << 20)

typedef struct rpc_op rpc_op;
typedef void (*rpc_op_fn)(rpc_op *op, int ok);
struct rpc_op {
    rpc_op_fn fn;
    void *self;
};

typedef struct rpc_method_reg rpc_method_reg;
typedef struct rpc_loop rpc_loop;

/* One posted grpc_server_request_registered_call (or request_call for
 * unknown methods). */
typedef struct rpc_slot {
    rpc_op op;
    rpc_loop *loop;      /* whose completion queue it is posted on */
    rpc_method_reg *reg; /* NULL: the unregistered-method slot */
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array md;
    grpc_byte_buffer *payload;
    grpc_call_details details; /* unregistered slot only */
    int posted;
} rpc_slot;

struct rpc_method_reg {
    rpc_server *rs;
    const rpc_method_desc *m;
    const void *handlers;
    void *ud;
    void *handle;
    void **worker_ud; /* rpc_server_on_workers: one per worker, else NULL */
    rpc_slot *slots;  /* RPC_SLOTS_PER_METHOD per loop that serves it */
    size_t n_slots;
};

/* One completion queue and the calls accepted on it, driven by one thread:
 * the server's main loop (rpc_server_poll, the caller's thread) or a worker
 * (its own thread, for the methods given to rpc_server_on_workers). A call
 * lives on the loop that accepted it: every completion of its batches comes
 * back on that loop's queue, so a call is only ever touched by one thread. */
struct rpc_loop {
    rpc_server *rs;
    grpc_completion_queue *cq;
    size_t index; /* worker number; 0 for the main loop too */
    int is_worker, cq_shut;
    size_t n_slots_posted;
    list calls; /* every call of this loop not yet freed (rpc_call.link) */
    /* HELD calls with frames queued, in the order their sends completed
     * (rpc_call.ready_link); each holds a reference. */
    list ready;
    pthread_t thread; /* workers */
    int thread_started;
    atomic_int exited; /* a worker's thread has returned */
};

/* Wakes the main loop from another thread (rpc_server_wake). grpc's C API
 * has no way to post an event to a completion queue, so the waker keeps a
 * client call on a channel that never connects (its target does not
 * exist, and a call that sends nothing never picks one), with its status
 * batch pending on the main queue: cancelling that call, which grpc allows
 * from any thread, completes the batch and the loop's poll returns. The
 * loop then arms a new call. */
typedef struct rpc_waker {
    rpc_op op;
    grpc_channel *ch;
    grpc_call *call; /* armed: its status batch is pending */
    grpc_metadata_array md;
    grpc_status_code status;
    grpc_slice details;
    pthread_mutex_t mu; /* call and fired, between the loop and wakers */
    int fired;
} rpc_waker;

struct rpc_server {
    grpc_server *server;
    rpc_waker waker;
    int has_waker;
    rpc_server_opts opts;
    rpc_method_reg **regs;
    size_t n_regs;
    rpc_slot unknown; /* catches methods nobody registered */
    int started, shutdown_notified;
    atomic_int shutting_down; /* read by the workers */
    rpc_op shutdown_op;
    rpc_loop main;
    rpc_loop *workers;     /* opts.workers of them */
    rpc_tls_watch *tls[4]; /* reload state of the TLS listeners */
    size_t n_tls;
    rpc_observer obs;  /* obs.call_done NULL: nobody observes */
    uint64_t slow_cut; /* calls cancelled for a full send queue */
};

typedef enum rpc_call_state {
    RPC_CALL_OPEN,
    RPC_CALL_DRAINING,
    RPC_CALL_FINISHED,
    RPC_CALL_CLOSED
} rpc_call_state;

typedef enum rpc_send_state {
    RPC_SEND_IDLE,
    RPC_SEND_IN_FLIGHT,
    RPC_SEND_HELD
} rpc_send_state;

typedef enum rpc_recv_state {
    RPC_RECV_IDLE,
    RPC_RECV_POSTED,
    RPC_RECV_ENDED
} rpc_recv_state;

struct rpc_call {
    rpc_server *rs;
    rpc_loop *loop;      /* the one thread that may touch this call */
    rpc_method_reg *reg; /* NULL for an unimplemented method */
    grpc_call *call;
    grpc_metadata_array md;
    ProtobufCMessage *req; /* unary request, kept until the call is freed */
    int refs;              /* handler references */
    int inflight;          /* batches started and not completed */
    rpc_call_state state;
    rpc_send_state send;
    rpc_recv_state recv;
    int meta_sent;               /* initial metadata went out (in some batch) */
    int cancelled;               /* written by grpc: the client cancelled */
    uint64_t arrived_ns;         /* clock_mono_ns when the call came in */
    grpc_status_code end_status; /* what the server ended it with, */
    int has_end_status;          /* if it did */
    rpc_op op_close, op_recv, op_send, op_status, op_meta;
    grpc_byte_buffer *recv_buf;
    grpc_byte_buffer *send_buf;
    grpc_byte_buffer *reply_buf;
    ring sendq; /* grpc_slice frames waiting for the send in flight */
    /* Final status, kept alive until its batch completes. */
    grpc_status_code fin_status;
    grpc_slice fin_detail;
    grpc_metadata fin_md[2]; /* parley-error-code, parley-rule */
    int fin_n_md, fin_has_detail;
    rpc_stream_cbs cbs;
    void *cb_ud;
    rpc_merge_fn merge;   /* NULL: one frame per send */
    list_node link;       /* loop->calls */
    list_node ready_link; /* loop->ready */
};

/* ---------- state transitions ---------- */

static void call_state_to(rpc_call *c, rpc_call_state to)
{
    switch (to) {
    case RPC_CALL_OPEN: assert(!"a call never reopens"); break;
    case RPC_CALL_DRAINING:
        assert(c->state == RPC_CALL_OPEN);
        assert(c->send != RPC_SEND_IDLE || ring_len(&c->sendq) > 0);
        break;
    case RPC_CALL_FINISHED:
        assert(c->state == RPC_CALL_OPEN || c->state == RPC_CALL_DRAINING);
        break;
    case RPC_CALL_CLOSED: assert(c->state != RPC_CALL_CLOSED); break;
    }
    c->state = to;
}

static void call_send_to(rpc_call *c, rpc_send_state to)
{
    switch (to) {
    case RPC_SEND_IDLE:
        assert(c->send != RPC_SEND_IDLE);
        assert(!list_node_is_linked(&c->ready_link));
        break;
    case RPC_SEND_IN_FLIGHT: assert(c->send == RPC_SEND_IDLE); break;
    case RPC_SEND_HELD: assert(c->send == RPC_SEND_IN_FLIGHT); break;
    }
    c->send = to;
}

static void call_recv_to(rpc_call *c, rpc_recv_state to)
{
    switch (to) {
    case RPC_RECV_IDLE: assert(c->recv == RPC_RECV_POSTED); break;
    case RPC_RECV_POSTED: assert(c->recv == RPC_RECV_IDLE); break;
    case RPC_RECV_ENDED: assert(c->recv == RPC_RECV_POSTED); break;
    }
    c->recv = to;
}

/* 1 while the handler may still answer or send. */
static int call_is_open(const rpc_call *c) { return c->state == RPC_CALL_OPEN; }

/* ---------- helpers ---------- */

static grpc_byte_buffer *bb_from_slice(grpc_slice s)
{
    /* grpc_raw_byte_buffer_create takes its own reference. */
    return grpc_raw_byte_buffer_create(&s, 1);
}

static int start(rpc_call *c, const grpc_op *ops, size_t n, rpc_op *tag)
{
    grpc_call_error e = grpc_call_start_batch(c->call, ops, n, tag, NULL);
    if (e != GRPC_CALL_OK) {
        log_error("grpc", "grpc_call_start_batch failed (%d) on %s", (int)e,
                  c->reg ? c->reg->m->path : "?");
        return -1;
    }
    c->inflight++;
    return 0;
}

/* The call whose batch `op` completed; that batch is no longer in flight. */
static rpc_call *batch_done(rpc_op *op)
{
    rpc_call *c = op->self;
    assert(c->inflight > 0);
    c->inflight--;
    return c;
}

/* Clears a batch of cap ops and opens it with the initial metadata if
 * the call has not sent it yet (grpc wants it before anything else);
 * returns how many ops that took. */
static size_t ops_begin(rpc_call *c, grpc_op *ops, size_t cap)
{
    memset(ops, 0, cap * sizeof *ops);
    if (c->meta_sent) return 0;
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    c->meta_sent = 1;
    return 1;
}

/* Unrefs and drops every queued frame. */
static void sendq_drop(rpc_call *c)
{
    grpc_slice s;
    while (ring_pop(&c->sendq, &s) == 0) grpc_slice_unref(s);
}

/* ---------- server setup ---------- */

static void slot_post(rpc_slot *s);

rpc_server *rpc_server_new(const rpc_server_opts *opts)
{
    rpc_server *rs = calloc(1, sizeof *rs);
    if (!rs) return NULL;
    if (opts) rs->opts = *opts;
    atomic_init(&rs->shutting_down, 0);
    rs->main.rs = rs;
    atomic_init(&rs->main.exited, 0);
    if (!rs->opts.max_queue) rs->opts.max_queue = 4096;
    if (!rs->opts.max_recv_bytes) rs->opts.max_recv_bytes = 64 * 1024;
    /* Largest request; no silent port sharing between two servers;
     * keepalive pings find dead peers (a vanished subscriber would otherwise
     * hold its queue until TCP gives up), and clients may ping us every
     * 10 s without being told off. */
    static const struct {
        const char *key;
        int value;
    } iargs[] = {
        {GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, 0},
        {GRPC_ARG_ALLOW_REUSEPORT, 0},
        {GRPC_ARG_KEEPALIVE_TIME_MS, 30000},
        {GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000},
        {GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1},
        /* Gateways ping every 2 s to find a dead or cut-off core fast. */
        {GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 1000},
    };
    enum { N_ARGS = sizeof iargs / sizeof iargs[0] };
    grpc_arg args[N_ARGS];
    for (size_t i = 0; i < N_ARGS; i++) {
        args[i].type = GRPC_ARG_INTEGER;
        args[i].key = (char *)iargs[i].key;
        args[i].value.integer = iargs[i].value;
    }
    size_t hard = rs->opts.max_recv_bytes * 4;
    if (hard < RPC_RECV_HARD_CAP) hard = RPC_RECV_HARD_CAP;
    if (hard > INT_MAX) hard = INT_MAX;
    args[0].value.integer = (int)hard;
    grpc_channel_args ca = {N_ARGS, args};
    rs->server = grpc_server_create(&ca, NULL);
    rs->main.cq = grpc_completion_queue_create_for_next(NULL);
    if (rs->opts.workers)
        rs->workers = calloc(rs->opts.workers, sizeof *rs->workers);
    if (!rs->server || !rs->main.cq || (rs->opts.workers && !rs->workers)) {
        rs->opts.workers = rs->workers ? rs->opts.workers : 0;
        rpc_server_free(rs);
        return NULL;
    }
    grpc_server_register_completion_queue(rs->server, rs->main.cq, NULL);
    for (size_t i = 0; i < rs->opts.workers; i++) {
        rpc_loop *w = &rs->workers[i];
        w->rs = rs;
        w->index = i;
        w->is_worker = 1;
        atomic_init(&w->exited, 0);
        /* A worker's queue does not poll: only the main loop waits in
         * epoll for the sockets, so an idle worker never picks up the
         * loop's I/O (and has to hand it over with a wake-up); a worker
         * waits for the completions of its own calls only. */
        grpc_completion_queue_attributes qa = {
            GRPC_CQ_CURRENT_VERSION, GRPC_CQ_NEXT, GRPC_CQ_NON_POLLING, NULL};
        w->cq = grpc_completion_queue_create(
            grpc_completion_queue_factory_lookup(&qa), &qa, NULL);
        if (!w->cq) {
            rpc_server_free(rs);
            return NULL;
        }
        grpc_server_register_completion_queue(rs->server, w->cq, NULL);
    }
    return rs;
}

int rpc_server_add_service(rpc_server *rs, const rpc_service_desc *desc,
                           const void *handlers, void *ud, char *err,
                           size_t errlen)
{
    if (rs->started) {
        snprintf(err, errlen, "service %s added after start", desc->full_name);
        return -1;
    }
    for (size_t i = 0; i < desc->n_methods; i++) {
        const rpc_method_desc *m = &desc->methods[i];
        void (*fn)(void);
        memcpy(&fn, (const char *)handlers + m->handler_offset, sizeof fn);
        if (!fn) {
            snprintf(err, errlen, "no handler for %s (%s): refusing to start",
                     m->path, m->name);
            return -1;
        }
    }
    rpc_method_reg **nr =
        realloc(rs->regs, (rs->n_regs + desc->n_methods) * sizeof *nr);
    if (!nr) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    rs->regs = nr;
    for (size_t i = 0; i < desc->n_methods; i++) {
        const rpc_method_desc *m = &desc->methods[i];
        rpc_method_reg *r = calloc(1, sizeof *r);
        if (!r) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        r->rs = rs;
        r->m = m;
        r->handlers = handlers;
        r->ud = ud;
        r->worker_ud = NULL;
        int unary_in = m->kind == RPC_UNARY || m->kind == RPC_SERVER_STREAMING;
        r->handle = grpc_server_register_method(
            rs->server, m->path, NULL,
            unary_in ? GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER
                     : GRPC_SRM_PAYLOAD_NONE,
            0);
        if (!r->handle) {
            snprintf(err, errlen, "grpc refused to register %s", m->path);
            free(r);
            return -1;
        }
        rs->regs[rs->n_regs++] = r;
    }
    return 0;
}

int rpc_server_on_workers(rpc_server *rs, const rpc_method_desc *m,
                          void *const *worker_ud)
{
    if (rs->started || m->kind != RPC_UNARY) return -1;
    for (size_t i = 0; i < rs->n_regs; i++) {
        rpc_method_reg *r = rs->regs[i];
        if (r->m != m) continue;
        if (!rs->opts.workers) { /* no workers: the loop serves it */
            r->ud = worker_ud[0];
            return 0;
        }
        free(r->worker_ud);
        r->worker_ud = malloc(rs->opts.workers * sizeof *r->worker_ud);
        if (!r->worker_ud) return -1;
        memcpy(r->worker_ud, worker_ud,
               rs->opts.workers * sizeof *r->worker_ud);
        return 0;
    }
    return -1;
}

size_t rpc_server_workers(const rpc_server *rs) { return rs->opts.workers; }

int rpc_server_listen(rpc_server *rs, const char *addr)
{
    grpc_server_credentials *cr = grpc_insecure_server_credentials_create();
    int port = grpc_server_add_http2_port(rs->server, addr, cr);
    grpc_server_credentials_release(cr);
    return port;
}

static void *worker_main(void *arg);
static int waker_arm(rpc_server *rs);
int rpc_server_listen_tls(rpc_server *rs, const char *addr,
                          const rpc_tls_files *tls, char *err, size_t errlen)
{
    if (rs->n_tls == sizeof rs->tls / sizeof rs->tls[0]) {
        snprintf(err, errlen, "too many TLS listeners");
        return 0;
    }
    rpc_tls_watch *w = NULL;
    grpc_server_credentials *cr = rpc_tls_server_creds(tls, &w, err, errlen);
    if (!cr) return 0;
    rs->tls[rs->n_tls++] = w; /* freed with the server, after grpc's use */
    int port = grpc_server_add_http2_port(rs->server, addr, cr);
    grpc_server_credentials_release(cr);
    if (port <= 0) snprintf(err, errlen, "cannot listen on %s", addr);
    return port;
}

int rpc_server_tls_reloads(const rpc_server *rs)
{
    int n = 0;
    for (size_t i = 0; i < rs->n_tls; i++) n += rpc_tls_reloads(rs->tls[i]);
    return n;
}

int rpc_server_start(rpc_server *rs, char *err, size_t errlen)
{
    /* Slots first: a method on the workers has RPC_SLOTS_PER_METHOD posted
     * on each worker's queue, the others on the main loop's. */
    for (size_t i = 0; i < rs->n_regs; i++) {
        rpc_method_reg *r = rs->regs[i];
        size_t loops = r->worker_ud ? rs->opts.workers : 1;
        r->n_slots = RPC_SLOTS_PER_METHOD * loops;
        r->slots = calloc(r->n_slots, sizeof *r->slots);
        if (!r->slots) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        for (size_t k = 0; k < r->n_slots; k++) {
            r->slots[k].reg = r;
            r->slots[k].loop = r->worker_ud
                                   ? &rs->workers[k / RPC_SLOTS_PER_METHOD]
                                   : &rs->main;
        }
    }
    grpc_server_start(rs->server);
    rs->started = 1;
    for (size_t i = 0; i < rs->n_regs; i++)
        for (size_t k = 0; k < rs->regs[i]->n_slots; k++)
            slot_post(&rs->regs[i]->slots[k]);
    rs->unknown.reg = NULL;
    rs->unknown.loop = &rs->main;
    slot_post(&rs->unknown);
    if (waker_arm(rs) != 0) {
        snprintf(err, errlen, "cannot arm the loop's waker");
        return -1;
    }
    for (size_t i = 0; i < rs->opts.workers; i++) {
        rpc_loop *w = &rs->workers[i];
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            snprintf(err, errlen, "cannot start worker thread %zu", i);
            atomic_store(&w->exited, 1);
            return -1;
        }
        w->thread_started = 1;
    }
    return 0;
}

/* ---------- call lifecycle ---------- */

static void call_maybe_free(rpc_call *c)
{
    if (c->state != RPC_CALL_CLOSED || c->inflight || c->refs) return;
    assert(c->send != RPC_SEND_IN_FLIGHT && c->recv != RPC_RECV_POSTED);
    assert(!list_node_is_linked(&c->ready_link));
    assert(ring_len(&c->sendq) == 0);
    list_remove(&c->link);
    ring_free(&c->sendq);
    if (c->req) protobuf_c_message_free_unpacked(c->req, NULL);
    if (c->fin_has_detail) grpc_slice_unref(c->fin_detail);
    /* The codes' slices are static; only fin_detail was copied. */
    grpc_metadata_array_destroy(&c->md);
    grpc_call_unref(c->call);
    free(c);
}

static void on_close_op(rpc_op *op, int ok)
{
    (void)ok;
    rpc_call *c = batch_done(op);
    call_state_to(c, RPC_CALL_CLOSED);
    sendq_drop(c); /* what can never be sent */
    if (c->rs->obs.call_done)
        c->rs->obs.call_done(c->rs->obs.ud, c->reg ? c->reg->m : NULL,
                             c->has_end_status ? (int)c->end_status
                                               : GRPC_STATUS_CANCELLED,
                             (clock_mono_ns() - c->arrived_ns) / 1000u);
    c->refs++; /* on_close may drop the handler's reference */
    if (c->cbs.on_close) c->cbs.on_close(c, c->cb_ud);
    rpc_call_unref(c);
}

static void on_simple_op(rpc_op *op, int ok)
{
    (void)ok;
    rpc_call *c = batch_done(op);
    if (c->reply_buf) {
        grpc_byte_buffer_destroy(c->reply_buf);
        c->reply_buf = NULL;
    }
    call_maybe_free(c);
}

/* Sends the recorded final status: OPEN or DRAINING -> FINISHED. */
static void send_status_now(rpc_call *c)
{
    assert(c->send != RPC_SEND_IN_FLIGHT && ring_len(&c->sendq) == 0);
    call_state_to(c, RPC_CALL_FINISHED);
    c->end_status = c->fin_status;
    c->has_end_status = 1;
    grpc_op ops[2];
    size_t n = ops_begin(c, ops, 2);
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = c->fin_status;
    ops[n].data.send_status_from_server.status_details =
        c->fin_has_detail ? &c->fin_detail : NULL;
    ops[n].data.send_status_from_server.trailing_metadata_count =
        (size_t)c->fin_n_md;
    ops[n].data.send_status_from_server.trailing_metadata =
        c->fin_n_md ? c->fin_md : NULL;
    n++;
    start(c, ops, n, &c->op_status);
}

/* Records the final status; the slices live until the call is freed. */
static void set_status(rpc_call *c, parley_err e, parley_rule rule,
                       const char *detail)
{
    assert(!c->fin_has_detail && c->fin_n_md == 0); /* one final status */
    c->fin_status = e == PARLEY_OK
                        ? GRPC_STATUS_OK
                        : (grpc_status_code)parley_err_grpc_status(e);
    if (detail && *detail) {
        c->fin_detail = grpc_slice_from_copied_string(detail);
        c->fin_has_detail = 1;
    }
    if (e != PARLEY_OK) {
        grpc_metadata *md = &c->fin_md[c->fin_n_md++];
        md->key = grpc_slice_from_static_string("parley-error-code");
        md->value = grpc_slice_from_static_string(parley_err_name(e));
    }
    if (e == PARLEY_ERR_PERMISSION_DENIED && rule != PARLEY_RULE_NONE) {
        grpc_metadata *md = &c->fin_md[c->fin_n_md++];
        md->key = grpc_slice_from_static_string("parley-rule");
        md->value = grpc_slice_from_static_string(parley_rule_name(rule));
    }
    assert(c->fin_n_md <= 2);
}

static void call_cancel(rpc_call *c, grpc_status_code status, const char *why)
{
    if (!call_is_open(c)) return;
    call_state_to(c, RPC_CALL_FINISHED);
    c->end_status = status;
    c->has_end_status = 1;
    grpc_call_cancel_with_status(c->call, status, why, NULL);
}

void rpc_reply(rpc_call *c, const ProtobufCMessage *resp)
{
    if (!call_is_open(c)) return;
    grpc_slice s = rpc_encode(resp);
    rpc_reply_slice(c, s);
    grpc_slice_unref(s);
}

void rpc_reply_slice(rpc_call *c, grpc_slice encoded)
{
    if (!call_is_open(c)) return;
    /* A unary answer: nothing was streamed on this call. */
    assert(c->send == RPC_SEND_IDLE && ring_len(&c->sendq) == 0);
    call_state_to(c, RPC_CALL_FINISHED);
    c->end_status = GRPC_STATUS_OK;
    c->has_end_status = 1;
    c->reply_buf = bb_from_slice(encoded);
    grpc_op ops[3];
    size_t n = ops_begin(c, ops, 3);
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = c->reply_buf;
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n++].data.send_status_from_server.status = GRPC_STATUS_OK;
    if (start(c, ops, n, &c->op_status) != 0) {
        grpc_byte_buffer_destroy(c->reply_buf);
        c->reply_buf = NULL;
    }
}

void rpc_fail(rpc_call *c, parley_err e, const char *detail)
{
    rpc_fail_rule(c, e, PARLEY_RULE_NONE, detail);
}

void rpc_fail_rule(rpc_call *c, parley_err e, parley_rule rule,
                   const char *detail)
{
    if (e == PARLEY_OK) e = PARLEY_ERR_INTERNAL;
    if (!call_is_open(c)) return;
    set_status(c, e, rule, detail ? detail : parley_err_text(e));
    if (c->send != RPC_SEND_IDLE || ring_len(&c->sendq) > 0)
        call_state_to(c, RPC_CALL_DRAINING);
    else
        send_status_now(c);
}

void rpc_fail_status(rpc_call *c, grpc_status_code status, const char *detail)
{
    if (!call_is_open(c)) return;
    assert(status != GRPC_STATUS_OK && !c->fin_has_detail && c->fin_n_md == 0);
    c->fin_status = status;
    if (detail && *detail) {
        c->fin_detail = grpc_slice_from_copied_string(detail);
        c->fin_has_detail = 1;
    }
    if (c->send != RPC_SEND_IDLE || ring_len(&c->sendq) > 0)
        call_state_to(c, RPC_CALL_DRAINING);
    else
        send_status_now(c);
}

void rpc_stream_finish(rpc_call *c, parley_err e, const char *detail)
{
    if (!call_is_open(c)) return;
    set_status(c, e, PARLEY_RULE_NONE, detail);
    if (c->send != RPC_SEND_IDLE || ring_len(&c->sendq) > 0)
        call_state_to(c, RPC_CALL_DRAINING);
    else
        send_status_now(c);
}

/* ---------- streams ---------- */

static void on_send_op(rpc_op *op, int ok)
{
    rpc_call *c = batch_done(op);
    grpc_byte_buffer_destroy(c->send_buf);
    c->send_buf = NULL;
    c->refs++; /* callbacks may drop references */
    if (!ok || c->state == RPC_CALL_CLOSED) {
        call_send_to(c, RPC_SEND_IDLE);
        rpc_call_unref(c);
        return;
    }
    /* No send starts from inside this completion (HELD holds off
     * kick_send): the next one waits for the end of the poll. */
    call_send_to(c, RPC_SEND_HELD);
    if (call_is_open(c) && c->cbs.on_drain &&
        ring_len(&c->sendq) <= rpc_stream_low_water(c))
        c->cbs.on_drain(c, c->cb_ud);
    if (ring_len(&c->sendq) > 0 && c->state != RPC_CALL_CLOSED) {
        c->refs++; /* held by its loop's ready list */
        list_push_back(&c->loop->ready, &c->ready_link);
    } else {
        call_send_to(c, RPC_SEND_IDLE);
        if (c->state == RPC_CALL_DRAINING) send_status_now(c);
    }
    rpc_call_unref(c);
}

/* The next message to send: the oldest queued frame, or with a merge
 * function every frame queued (within the RPC_MERGE_MAX_* bounds) as one. */
static int pop_message(rpc_call *c, grpc_slice *out)
{
    if (ring_pop(&c->sendq, out) != 0) return -1;
    if (!c->merge || ring_len(&c->sendq) == 0) return 0;
    grpc_slice frames[RPC_MERGE_MAX_FRAMES];
    size_t n = 1, bytes = GRPC_SLICE_LENGTH(*out);
    frames[0] = *out;
    while (n < RPC_MERGE_MAX_FRAMES) {
        grpc_slice *next = ring_at(&c->sendq, 0);
        if (!next || bytes + GRPC_SLICE_LENGTH(*next) > RPC_MERGE_MAX_BYTES)
            break;
        bytes += GRPC_SLICE_LENGTH(*next);
        ring_pop(&c->sendq, &frames[n++]);
    }
    if (n == 1) return 0;
    *out = c->merge(frames, n);
    for (size_t i = 0; i < n; i++) grpc_slice_unref(frames[i]);
    return 0;
}

/* Starts a SEND_MESSAGE batch with the oldest queued frame(s), if none is
 * in flight or held. */
static void kick_send(rpc_call *c)
{
    if (c->send != RPC_SEND_IDLE || c->state == RPC_CALL_CLOSED) return;
    grpc_slice s;
    if (pop_message(c, &s) != 0) return;
    c->send_buf = bb_from_slice(s);
    grpc_slice_unref(s);
    grpc_op ops[2];
    size_t n = ops_begin(c, ops, 2);
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = c->send_buf;
    if (start(c, ops, n, &c->op_send) == 0) {
        call_send_to(c, RPC_SEND_IN_FLIGHT);
    } else {
        grpc_byte_buffer_destroy(c->send_buf);
        c->send_buf = NULL;
    }
}

int rpc_stream_send(rpc_call *c, grpc_slice bytes)
{
    if (!call_is_open(c)) return -1;
    if (ring_is_full(&c->sendq)) {
        c->rs->slow_cut++;
        call_cancel(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "subscriber too slow");
        return -1;
    }
    grpc_slice ref = grpc_slice_ref(bytes);
    if (ring_push(&c->sendq, &ref) != 0) {
        grpc_slice_unref(ref);
        call_cancel(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        return -1;
    }
    kick_send(c); /* a no-op while a send is in flight or held */
    return 0;
}

int rpc_stream_send_msg(rpc_call *c, const ProtobufCMessage *msg)
{
    if (!call_is_open(c)) return -1;
    grpc_slice s = rpc_encode(msg);
    int r = rpc_stream_send(c, s);
    grpc_slice_unref(s);
    return r;
}

size_t rpc_stream_queued(const rpc_call *c)
{
    return ring_len(&c->sendq) + (c->send == RPC_SEND_IN_FLIGHT);
}

size_t rpc_stream_room(const rpc_call *c) { return ring_room(&c->sendq); }

size_t rpc_stream_low_water(const rpc_call *c)
{
    size_t lw = c->sendq.max / 4;
    return lw ? lw : 1;
}

void rpc_stream_scale_queue(rpc_call *c, unsigned factor)
{
    assert(factor >= 1);
    ring_raise_max(&c->sendq, c->rs->opts.max_queue * (size_t)factor);
}

void rpc_stream_set_merge(rpc_call *c, rpc_merge_fn merge) { c->merge = merge; }

void rpc_stream_set_callbacks(rpc_call *c, const rpc_stream_cbs *cbs, void *ud)
{
    assert(call_is_open(c));
    c->cbs = *cbs;
    c->cb_ud = ud;
}

static void post_recv(rpc_call *c);

/* A request message over max_recv_bytes fails its call with
 * RESOURCE_EXHAUSTED and the parley-error-code trailer, like every other
 * refusal (grpc's own cap, RPC_RECV_HARD_CAP, sits above it and answers
 * without the trailer). 1 if it did. */
static int too_big(rpc_call *c, grpc_byte_buffer *bb)
{
    size_t n = grpc_byte_buffer_length(bb);
    if (n <= c->rs->opts.max_recv_bytes) return 0;
    char d[160];
    snprintf(d, sizeof d,
             "request message of %zu bytes is over this server's "
             "limit of %zu",
             n, c->rs->opts.max_recv_bytes);
    rpc_fail(c, PARLEY_ERR_RESOURCE_EXHAUSTED, d);
    return 1;
}

static void on_recv_op(rpc_op *op, int ok)
{
    rpc_call *c = batch_done(op);
    grpc_byte_buffer *bb = c->recv_buf;
    c->recv_buf = NULL;
    if (!ok || !bb) {
        /* The client half-closed, or the call is over. */
        if (bb) grpc_byte_buffer_destroy(bb);
        call_recv_to(c, RPC_RECV_ENDED);
        c->refs++;
        if (c->state != RPC_CALL_CLOSED) {
            if (c->cbs.on_half_close)
                c->cbs.on_half_close(c, c->cb_ud);
            else
                rpc_stream_finish(c, PARLEY_OK, NULL);
        }
        rpc_call_unref(c);
        return;
    }
    call_recv_to(c, RPC_RECV_IDLE);
    if (too_big(c, bb)) {
        grpc_byte_buffer_destroy(bb);
        return; /* the stream is over; no more reads */
    }
    parley_err err;
    ProtobufCMessage *m = rpc_decode_strict(c->reg->m->input, bb, &err);
    grpc_byte_buffer_destroy(bb);
    rpc_call_ref(c);
    if (c->cbs.on_message && c->state != RPC_CALL_CLOSED)
        c->cbs.on_message(c, m, err, c->cb_ud);
    if (m) protobuf_c_message_free_unpacked(m, NULL);
    /* Shutting down: read no more, so the last batch can be acked. */
    if (call_is_open(c) && !atomic_load(&c->rs->shutting_down)) post_recv(c);
    rpc_call_unref(c);
}

static void post_recv(rpc_call *c)
{
    if (c->recv != RPC_RECV_IDLE) return;
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &c->recv_buf;
    if (start(c, &op, 1, &c->op_recv) == 0) call_recv_to(c, RPC_RECV_POSTED);
}

/* ---------- accepting calls ---------- */

static void on_slot_op(rpc_op *op, int ok);

static void slot_post(rpc_slot *s)
{
    rpc_loop *loop = s->loop;
    rpc_server *rs = loop->rs;
    if (atomic_load(&rs->shutting_down)) return;
    s->op.fn = on_slot_op;
    s->op.self = s;
    s->call = NULL;
    s->payload = NULL;
    grpc_metadata_array_init(&s->md);
    grpc_call_error e;
    if (s->reg) {
        e = grpc_server_request_registered_call(
            rs->server, s->reg->handle, &s->call, &s->deadline, &s->md,
            s->reg->m->kind == RPC_UNARY ||
                    s->reg->m->kind == RPC_SERVER_STREAMING
                ? &s->payload
                : NULL,
            loop->cq, loop->cq, &s->op);
    } else {
        grpc_call_details_init(&s->details);
        e = grpc_server_request_call(rs->server, &s->call, &s->details, &s->md,
                                     loop->cq, loop->cq, &s->op);
    }
    if (e != GRPC_CALL_OK) {
        log_error("grpc", "request_call failed (%d)", (int)e);
        grpc_metadata_array_destroy(&s->md);
        if (!s->reg) grpc_call_details_destroy(&s->details);
        return;
    }
    s->posted = 1;
    loop->n_slots_posted++;
}

static rpc_call *call_new(rpc_loop *loop, rpc_slot *s)
{
    rpc_server *rs = loop->rs;
    rpc_call *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->rs = rs;
    c->loop = loop;
    c->reg = s->reg;
    c->call = s->call;
    c->arrived_ns = clock_mono_ns();
    c->md = s->md; /* take ownership of the array */
    c->op_close = (rpc_op){on_close_op, c};
    c->op_recv = (rpc_op){on_recv_op, c};
    c->op_send = (rpc_op){on_send_op, c};
    c->op_status = (rpc_op){on_simple_op, c};
    c->op_meta = (rpc_op){on_simple_op, c};
    c->state = RPC_CALL_OPEN;
    c->send = RPC_SEND_IDLE;
    c->recv = RPC_RECV_IDLE;
    ring_init(&c->sendq, sizeof(grpc_slice), rs->opts.max_queue);
    list_push_back(&loop->calls, &c->link);
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &c->cancelled;
    if (start(c, &op, 1, &c->op_close) != 0) call_state_to(c, RPC_CALL_CLOSED);
    return c;
}

static void on_slot_op(rpc_op *op, int ok)
{
    rpc_slot *s = op->self;
    rpc_loop *loop = s->loop;
    s->posted = 0;
    loop->n_slots_posted--;
    if (!ok || !s->call) {
        /* Shutdown: nothing arrived. */
        grpc_metadata_array_destroy(&s->md);
        if (!s->reg) grpc_call_details_destroy(&s->details);
        if (s->payload) grpc_byte_buffer_destroy(s->payload);
        if (s->call) grpc_call_unref(s->call);
        return;
    }
    grpc_byte_buffer *payload = s->payload;
    rpc_call *c = call_new(loop, s);
    if (!s->reg) grpc_call_details_destroy(&s->details);
    if (!c) {
        grpc_call_cancel_with_status(s->call, GRPC_STATUS_RESOURCE_EXHAUSTED,
                                     "out of memory", NULL);
        grpc_metadata_array_destroy(&s->md);
        grpc_call_unref(s->call);
        if (payload) grpc_byte_buffer_destroy(payload);
        slot_post(s);
        return;
    }
    rpc_method_reg *r = s->reg;
    /* A worker's handler gets that worker's ud. */
    void *ud = r && loop->is_worker ? r->worker_ud[loop->index]
               : r                  ? r->ud
                                    : NULL;
    slot_post(s); /* keep one request posted while we handle this one */

    rpc_call_ref(c);
    if (!r) {
        if (call_is_open(c)) {
            c->fin_status = GRPC_STATUS_UNIMPLEMENTED;
            c->fin_detail = grpc_slice_from_static_string("unknown method");
            c->fin_has_detail = 1;
            send_status_now(c);
        }
    } else if (r->m->kind == RPC_UNARY || r->m->kind == RPC_SERVER_STREAMING) {
        if (!payload) {
            rpc_fail(c, PARLEY_ERR_MALFORMED, "request message missing");
        } else if (too_big(c, payload)) {
            /* answered */
        } else {
            parley_err err;
            c->req = rpc_decode_strict(r->m->input, payload, &err);
            if (err != PARLEY_OK) {
                char d[200];
                if (err == PARLEY_ERR_INVALID_UTF8)
                    snprintf(d, sizeof d,
                             "a string field of the %s holds a NUL or is "
                             "not UTF-8",
                             r->m->input->name);
                else
                    snprintf(d, sizeof d, "request is not a valid %s",
                             r->m->input->name);
                rpc_fail(c, err, d);
            } else {
                r->m->dispatch(r->handlers, c, c->req, ud);
            }
        }
    } else {
        grpc_op op2;
        start(c, &op2, ops_begin(c, &op2, 1), &c->op_meta);
        r->m->dispatch(r->handlers, c, NULL, ud);
        if (call_is_open(c)) post_recv(c);
    }
    if (payload) grpc_byte_buffer_destroy(payload);
    rpc_call_unref(c);
}

/* ---------- waking the loop ---------- */

static void on_wake_op(rpc_op *op, int ok);

/* Starts a waker call (loop thread; the waker is idle). */
static int waker_arm(rpc_server *rs)
{
    rpc_waker *w = &rs->waker;
    if (!rs->has_waker) {
        grpc_channel_credentials *cr = grpc_insecure_credentials_create();
        w->ch = grpc_channel_create("unix:/nonexistent/parley-loop-waker", cr,
                                    NULL);
        grpc_channel_credentials_release(cr);
        if (!w->ch) return -1;
        pthread_mutex_init(&w->mu, NULL);
        w->op = (rpc_op){on_wake_op, rs};
        rs->has_waker = 1;
    }
    grpc_call *c = grpc_channel_create_call(
        w->ch, NULL, GRPC_PROPAGATE_DEFAULTS, rs->main.cq,
        grpc_slice_from_static_string("/parley.rpc/wake"), NULL,
        gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (!c) return -1;
    grpc_metadata_array_init(&w->md);
    w->details = grpc_empty_slice();
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    op.data.recv_status_on_client.trailing_metadata = &w->md;
    op.data.recv_status_on_client.status = &w->status;
    op.data.recv_status_on_client.status_details = &w->details;
    if (grpc_call_start_batch(c, &op, 1, &w->op, NULL) != GRPC_CALL_OK) {
        grpc_call_unref(c);
        grpc_metadata_array_destroy(&w->md);
        return -1;
    }
    pthread_mutex_lock(&w->mu);
    w->call = c;
    w->fired = 0;
    pthread_mutex_unlock(&w->mu);
    return 0;
}

/* The waker call ended (fired, or cancelled at shutdown): let it go and,
 * unless the server is being freed, arm the next one. */
static void waker_release(rpc_waker *w)
{
    pthread_mutex_lock(&w->mu);
    grpc_call *c = w->call;
    w->call = NULL;
    pthread_mutex_unlock(&w->mu);
    if (c) grpc_call_unref(c);
    grpc_metadata_array_destroy(&w->md);
    grpc_slice_unref(w->details);
}

static void on_wake_op(rpc_op *op, int ok)
{
    (void)ok;
    rpc_server *rs = op->self;
    waker_release(&rs->waker);
    if (waker_arm(rs) != 0)
        fprintf(stderr, "parleyd: cannot re-arm the loop's waker\n");
}

void rpc_server_wake(rpc_server *rs)
{
    if (!rs->has_waker) return;
    rpc_waker *w = &rs->waker;
    pthread_mutex_lock(&w->mu);
    if (w->call && !w->fired) {
        w->fired = 1;
        grpc_call_cancel(w->call, NULL);
    }
    pthread_mutex_unlock(&w->mu);
}

/* Ends the waker for good (rpc_server_free, main loop, before its queue
 * shuts down): cancels the armed call and takes its completion. */
static void waker_close(rpc_server *rs)
{
    if (!rs->has_waker) return;
    rpc_waker *w = &rs->waker;
    pthread_mutex_lock(&w->mu);
    int armed = w->call != NULL;
    if (armed && !w->fired) grpc_call_cancel(w->call, NULL);
    w->fired = 1;
    pthread_mutex_unlock(&w->mu);
    while (armed) {
        grpc_event ev = grpc_completion_queue_next(
            rs->main.cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type != GRPC_OP_COMPLETE) break;
        if (ev.tag == &w->op) break; /* other late events are dropped */
    }
    if (armed) waker_release(w);
    grpc_channel_destroy(w->ch);
    pthread_mutex_destroy(&w->mu);
    rs->has_waker = 0;
}

/* ---------- the loop ---------- */

static void on_shutdown_op(rpc_op *op, int ok)
{
    (void)ok;
    rpc_server *rs = op->self;
    rs->shutdown_notified = 1;
}

/* One turn of a loop (see rpc_server_poll). */
static int loop_poll(rpc_loop *loop, int timeout_ms)
{
    if (loop->cq_shut) return -1;
    int handled = 0;
    gpr_timespec dl =
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                     gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
    while (handled < RPC_POLL_BUDGET) {
        grpc_event ev = grpc_completion_queue_next(loop->cq, dl, NULL);
        if (ev.type == GRPC_QUEUE_TIMEOUT) break;
        if (ev.type == GRPC_QUEUE_SHUTDOWN) {
            loop->cq_shut = 1;
            return -1;
        }
        rpc_op *op = ev.tag;
        op->fn(op, ev.success);
        handled++;
        dl = gpr_inf_past(GPR_CLOCK_MONOTONIC);
    }
    /* One more send for each stream that has frames queued. No completion
     * runs in this loop, so nothing joins the list while it drains. */
    list_node *n;
    while ((n = list_pop_front(&loop->ready)) != NULL) {
        rpc_call *c = list_entry(n, rpc_call, ready_link);
        call_send_to(c, RPC_SEND_IDLE);
        kick_send(c);
        if (c->send == RPC_SEND_IDLE && ring_len(&c->sendq) == 0 &&
            c->state == RPC_CALL_DRAINING)
            send_status_now(c);
        rpc_call_unref(c);
    }
    return handled;
}

int rpc_server_poll(rpc_server *rs, int timeout_ms)
{
    return loop_poll(&rs->main, timeout_ms);
}

/* A worker thread: turns its loop until the server shuts down and the last
 * of its calls and posted slots are gone. */
static void *worker_main(void *arg)
{
    rpc_loop *w = arg;
    assert(w->is_worker);
    while (!(atomic_load(&w->rs->shutting_down) && w->n_slots_posted == 0 &&
             w->calls.len == 0))
        if (loop_poll(w, 100) < 0) break;
    atomic_store(&w->exited, 1);
    return NULL;
}

void rpc_server_shutdown_begin(rpc_server *rs)
{
    if (atomic_load(&rs->shutting_down)) return;
    atomic_store(&rs->shutting_down, 1);
    rs->shutdown_op = (rpc_op){on_shutdown_op, rs};
    grpc_server_shutdown_and_notify(rs->server, rs->main.cq, &rs->shutdown_op);
}

void rpc_server_cancel_all(rpc_server *rs)
{
    /* The main loop's calls here; grpc cancels the workers' calls, whose
     * completions their own threads then handle. */
    list_for_each(&rs->main.calls, n, next)
    {
        call_cancel(list_entry(n, rpc_call, link), GRPC_STATUS_UNAVAILABLE,
                    "server shutting down");
    }
    grpc_server_cancel_all_calls(rs->server);
}

size_t rpc_server_unsent(const rpc_server *rs)
{
    size_t n = 0;
    list_for_each(&rs->main.calls, node, next)
    {
        const rpc_call *c = list_entry(node, rpc_call, link);
        if (c->state != RPC_CALL_CLOSED) n += rpc_stream_queued(c);
    }
    return n;
}

int rpc_server_done(const rpc_server *rs)
{
    if (!rs->shutdown_notified || rs->main.calls.len != 0 ||
        rs->main.n_slots_posted != 0)
        return 0;
    for (size_t i = 0; i < rs->opts.workers; i++)
        if (!atomic_load(&rs->workers[i].exited)) return 0;
    return 1;
}

/* Shuts a loop's queue down and waits until grpc has drained it. */
static void loop_close_cq(rpc_loop *loop)
{
    if (!loop->cq) return;
    grpc_completion_queue_shutdown(loop->cq);
    while (!loop->cq_shut) {
        grpc_event ev = grpc_completion_queue_next(
            loop->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN) loop->cq_shut = 1;
    }
    grpc_completion_queue_destroy(loop->cq);
    loop->cq = NULL;
}

void rpc_server_free(rpc_server *rs)
{
    if (!rs) return;
    if (rs->server) {
        if (rs->started && !rs->shutdown_notified) {
            rpc_server_shutdown_begin(rs);
            rpc_server_cancel_all(rs);
            while (!rpc_server_done(rs) && rpc_server_poll(rs, 100) >= 0) {
            }
        }
    }
    /* The workers return once the server shut down and their calls ended
     * (a worker that failed to start never ran). */
    for (size_t i = 0; i < rs->opts.workers; i++) {
        rpc_loop *w = &rs->workers[i];
        if (w->thread_started) pthread_join(w->thread, NULL);
        w->thread_started = 0;
    }
    waker_close(rs);
    if (rs->server) grpc_server_destroy(rs->server);
    loop_close_cq(&rs->main);
    for (size_t i = 0; i < rs->opts.workers; i++)
        loop_close_cq(&rs->workers[i]);
    for (size_t i = 0; i < rs->n_regs; i++) {
        free(rs->regs[i]->worker_ud);
        free(rs->regs[i]->slots);
        free(rs->regs[i]);
    }
    for (size_t i = 0; i < rs->n_tls; i++) rpc_tls_watch_free(rs->tls[i]);
    free(rs->regs);
    free(rs->workers);
    free(rs);
}

/* ---------- observing ---------- */

void rpc_server_set_observer(rpc_server *rs, const rpc_observer *obs)
{
    if (obs)
        rs->obs = *obs;
    else
        memset(&rs->obs, 0, sizeof rs->obs);
}

void rpc_server_get_stats(const rpc_server *rs, rpc_server_stats *out)
{
    memset(out, 0, sizeof *out);
    out->slow_cut = rs->slow_cut;
    /* The main loop's calls (the caller's thread); the workers' are short
     * unary calls of their own threads. */
    list_for_each(&rs->main.calls, node, next)
    {
        const rpc_call *c = list_entry(node, rpc_call, link);
        if (c->state == RPC_CALL_CLOSED) continue;
        size_t q = rpc_stream_queued(c);
        out->open_calls++;
        out->queued_frames += q;
        if (q > out->max_queued) out->max_queued = q;
    }
}

/* ---------- call accessors ---------- */

const rpc_method_desc *rpc_call_method(const rpc_call *c)
{
    return c->reg ? c->reg->m : NULL;
}

int rpc_call_metadata(const rpc_call *c, const char *key, char *buf,
                      size_t buflen)
{
    return rpc_metadata_get(&c->md, key, buf, buflen);
}

void rpc_call_ref(rpc_call *c) { c->refs++; }

void rpc_call_unref(rpc_call *c)
{
    assert(c->refs > 0);
    c->refs--;
    call_maybe_free(c);
}

int rpc_call_is_done(const rpc_call *c) { return !call_is_open(c); }
