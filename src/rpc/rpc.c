/* rpc.c: the generic gRPC server layer (see rpc.h). Owns the grpc_server,
 * its one completion queue, the registered methods, and each call's
 * lifecycle: receive, decode, dispatch, replies, the per-call send queue and
 * the final status. Every completion-queue tag is an rpc_op whose callback
 * runs on the loop thread. */
#include "rpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#define RPC_SLOTS_PER_METHOD 4   /* requested calls kept posted per method */
#define RPC_POLL_BUDGET 256 /* events per rpc_server_poll: bounds the wait of a publish for its group commit */

typedef struct rpc_op rpc_op;
typedef void (*rpc_op_fn)(rpc_op *op, int ok);
struct rpc_op {
    rpc_op_fn fn;
    void *self;
};

typedef struct rpc_method_reg rpc_method_reg;

/* One posted grpc_server_request_registered_call (or request_call for
 * unknown methods). */
typedef struct rpc_slot {
    rpc_op op;
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
    rpc_slot slots[RPC_SLOTS_PER_METHOD];
};

struct rpc_server {
    grpc_server *server;
    grpc_completion_queue *cq;
    rpc_server_opts opts;
    rpc_method_reg **regs;
    size_t n_regs;
    rpc_slot unknown; /* catches methods nobody registered */
    int started, shutting_down, shutdown_notified, cq_shut;
    rpc_op shutdown_op;
    size_t n_slots_posted;
    rpc_call *calls; /* every live call, for cancel_all */
    size_t n_calls;
    /* Calls whose last send completed with more queued: their next send
     * starts after the completion queue was drained (and its sockets
     * polled), so one fast stream cannot monopolize the loop. */
    rpc_call *ready;
};

struct rpc_call {
    rpc_server *rs;
    rpc_method_reg *reg; /* NULL for an unimplemented method */
    grpc_call *call;
    grpc_metadata_array md;
    ProtobufCMessage *req; /* unary request, kept until the call is freed */
    int refs;     /* handler references */
    int inflight; /* batches started and not completed */
    unsigned closed : 1, finished : 1, finish_pending : 1, send_busy : 1,
        recv_busy : 1, half_closed : 1, meta_sent : 1, close_cb_done : 1,
        in_ready : 1;
    rpc_call *ready_next;
    int cancelled;
    rpc_op op_close, op_recv, op_send, op_status, op_meta;
    grpc_byte_buffer *recv_buf;
    grpc_byte_buffer *send_buf;
    grpc_byte_buffer *reply_buf;
    /* Send queue: a ring of slices, grown up to max_queue. */
    grpc_slice *q;
    size_t qcap, qhead, qlen;
    /* Final status, kept alive until its batch completes. */
    grpc_status_code fin_status;
    grpc_slice fin_detail;
    grpc_metadata fin_md;
    int fin_has_md, fin_has_detail;
    rpc_stream_cbs cbs;
    void *cb_ud;
    rpc_call *prev, *next; /* rs->calls */
};

/* ---------- helpers ---------- */

static grpc_byte_buffer *bb_from_slice(grpc_slice s) {
    /* grpc_raw_byte_buffer_create takes its own reference. */
    return grpc_raw_byte_buffer_create(&s, 1);
}

static int start(rpc_call *c, const grpc_op *ops, size_t n, rpc_op *tag) {
    grpc_call_error e = grpc_call_start_batch(c->call, ops, n, tag, NULL);
    if (e != GRPC_CALL_OK) {
        fprintf(stderr, "parleyd: grpc_call_start_batch failed (%d) on %s\n",
                (int)e, c->reg ? c->reg->m->path : "?");
        return -1;
    }
    c->inflight++;
    return 0;
}

/* ---------- server setup ---------- */

static void slot_post(rpc_slot *s);

rpc_server *rpc_server_new(const rpc_server_opts *opts) {
    rpc_server *rs = calloc(1, sizeof *rs);
    if (!rs) return NULL;
    if (opts) rs->opts = *opts;
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
        {GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000},
    };
    enum { N_ARGS = sizeof iargs / sizeof iargs[0] };
    grpc_arg args[N_ARGS];
    for (size_t i = 0; i < N_ARGS; i++) {
        args[i].type = GRPC_ARG_INTEGER;
        args[i].key = (char *)iargs[i].key;
        args[i].value.integer = iargs[i].value;
    }
    args[0].value.integer = (int)rs->opts.max_recv_bytes;
    grpc_channel_args ca = {N_ARGS, args};
    rs->server = grpc_server_create(&ca, NULL);
    rs->cq = grpc_completion_queue_create_for_next(NULL);
    if (!rs->server || !rs->cq) {
        rpc_server_free(rs);
        return NULL;
    }
    grpc_server_register_completion_queue(rs->server, rs->cq, NULL);
    return rs;
}

int rpc_server_add_service(rpc_server *rs, const rpc_service_desc *desc,
                           const void *handlers, void *ud, char *err,
                           size_t errlen) {
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

int rpc_server_listen(rpc_server *rs, const char *addr) {
    grpc_server_credentials *cr = grpc_insecure_server_credentials_create();
    int port = grpc_server_add_http2_port(rs->server, addr, cr);
    grpc_server_credentials_release(cr);
    return port;
}

int rpc_server_start(rpc_server *rs, char *err, size_t errlen) {
    (void)err;
    (void)errlen;
    grpc_server_start(rs->server);
    rs->started = 1;
    for (size_t i = 0; i < rs->n_regs; i++)
        for (int k = 0; k < RPC_SLOTS_PER_METHOD; k++) {
            rpc_slot *s = &rs->regs[i]->slots[k];
            s->reg = rs->regs[i];
            slot_post(s);
        }
    rs->unknown.reg = NULL;
    slot_post(&rs->unknown);
    return 0;
}

/* ---------- call lifecycle ---------- */

static void call_maybe_free(rpc_call *c) {
    if (!c->closed || c->inflight || c->refs) return;
    rpc_server *rs = c->rs;
    if (c->prev) c->prev->next = c->next;
    else rs->calls = c->next;
    if (c->next) c->next->prev = c->prev;
    rs->n_calls--;
    while (c->qlen) {
        grpc_slice_unref(c->q[c->qhead]);
        c->qhead = (c->qhead + 1) % c->qcap;
        c->qlen--;
    }
    free(c->q);
    if (c->req) protobuf_c_message_free_unpacked(c->req, NULL);
    if (c->fin_has_detail) grpc_slice_unref(c->fin_detail);
    if (c->fin_has_md) grpc_slice_unref(c->fin_md.value);
    grpc_metadata_array_destroy(&c->md);
    grpc_call_unref(c->call);
    free(c);
}

static void call_closed(rpc_call *c) {
    /* Drop what can never be sent. */
    while (c->qlen) {
        grpc_slice_unref(c->q[c->qhead]);
        c->qhead = (c->qhead + 1) % c->qcap;
        c->qlen--;
    }
    if (!c->close_cb_done) {
        c->close_cb_done = 1;
        if (c->cbs.on_close) c->cbs.on_close(c, c->cb_ud);
    }
}

static void on_close_op(rpc_op *op, int ok) {
    (void)ok;
    rpc_call *c = op->self;
    c->inflight--;
    c->closed = 1;
    c->refs++; /* on_close may drop the handler's reference */
    call_closed(c);
    rpc_call_unref(c);
}

static void on_simple_op(rpc_op *op, int ok) {
    (void)ok;
    rpc_call *c = op->self;
    c->inflight--;
    if (c->reply_buf) {
        grpc_byte_buffer_destroy(c->reply_buf);
        c->reply_buf = NULL;
    }
    call_maybe_free(c);
}

static void send_status_now(rpc_call *c) {
    grpc_op ops[2];
    size_t n = 0;
    memset(ops, 0, sizeof ops);
    if (!c->meta_sent) {
        ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
        n++;
        c->meta_sent = 1;
    }
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = c->fin_status;
    ops[n].data.send_status_from_server.status_details =
        c->fin_has_detail ? &c->fin_detail : NULL;
    ops[n].data.send_status_from_server.trailing_metadata_count =
        c->fin_has_md ? 1 : 0;
    ops[n].data.send_status_from_server.trailing_metadata =
        c->fin_has_md ? &c->fin_md : NULL;
    n++;
    c->finish_pending = 0;
    start(c, ops, n, &c->op_status);
}

/* Records the final status; the slices live until the call is freed. */
static void set_status(rpc_call *c, parley_err e, const char *detail) {
    c->fin_status = e == PARLEY_OK ? GRPC_STATUS_OK
                                   : (grpc_status_code)parley_err_grpc_status(e);
    if (detail && *detail) {
        c->fin_detail = grpc_slice_from_copied_string(detail);
        c->fin_has_detail = 1;
    }
    if (e != PARLEY_OK) {
        c->fin_md.key = grpc_slice_from_static_string("parley-error-code");
        c->fin_md.value = grpc_slice_from_static_string(parley_err_name(e));
        c->fin_has_md = 1;
    }
}

static void call_cancel(rpc_call *c, grpc_status_code st, const char *why) {
    if (c->finished || c->closed) return;
    c->finished = 1;
    c->finish_pending = 0;
    grpc_call_cancel_with_status(c->call, st, why, NULL);
}

void rpc_reply(rpc_call *c, const ProtobufCMessage *resp) {
    if (c->finished || c->closed) return;
    grpc_slice s = rpc_encode(resp);
    rpc_reply_slice(c, s);
    grpc_slice_unref(s);
}

void rpc_reply_slice(rpc_call *c, grpc_slice encoded) {
    if (c->finished || c->closed) return;
    c->finished = 1;
    c->reply_buf = bb_from_slice(encoded);
    grpc_op ops[3];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    if (!c->meta_sent) {
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
        c->meta_sent = 1;
    }
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = c->reply_buf;
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n++].data.send_status_from_server.status = GRPC_STATUS_OK;
    if (start(c, ops, n, &c->op_status) != 0) {
        grpc_byte_buffer_destroy(c->reply_buf);
        c->reply_buf = NULL;
    }
}

void rpc_fail(rpc_call *c, parley_err e, const char *detail) {
    if (e == PARLEY_OK) e = PARLEY_ERR_INTERNAL;
    rpc_stream_finish(c, e, detail ? detail : parley_err_text(e));
}

void rpc_stream_finish(rpc_call *c, parley_err e, const char *detail) {
    if (c->finished || c->closed) return;
    c->finished = 1;
    set_status(c, e, detail);
    if (c->send_busy || c->qlen) c->finish_pending = 1;
    else send_status_now(c);
}

/* ---------- streams ---------- */

static void kick_send(rpc_call *c);

static void on_send_op(rpc_op *op, int ok) {
    rpc_call *c = op->self;
    c->inflight--;
    c->send_busy = 0;
    grpc_byte_buffer_destroy(c->send_buf);
    c->send_buf = NULL;
    c->refs++; /* callbacks may drop references */
    if (ok && !c->closed) {
        /* No send starts from inside this completion (in_ready holds off
         * kick_send): the next one waits for the end of the poll. */
        c->in_ready = 1;
        if (!c->finished && c->cbs.on_drain &&
            c->qlen <= rpc_stream_low_water(c))
            c->cbs.on_drain(c, c->cb_ud);
        c->in_ready = 0;
        if (c->qlen && !c->closed) {
            c->in_ready = 1;
            c->refs++; /* held by rs->ready */
            c->ready_next = c->rs->ready;
            c->rs->ready = c;
        } else if (!c->qlen && c->finish_pending && !c->closed) {
            send_status_now(c);
        }
    }
    rpc_call_unref(c);
}

static void kick_send(rpc_call *c) {
    if (c->send_busy || !c->qlen || c->closed) return;
    grpc_slice s = c->q[c->qhead];
    c->qhead = (c->qhead + 1) % c->qcap;
    c->qlen--;
    c->send_buf = bb_from_slice(s);
    grpc_slice_unref(s);
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    if (!c->meta_sent) {
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
        c->meta_sent = 1;
    }
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = c->send_buf;
    if (start(c, ops, n, &c->op_send) == 0) {
        c->send_busy = 1;
    } else {
        grpc_byte_buffer_destroy(c->send_buf);
        c->send_buf = NULL;
    }
}

int rpc_stream_send(rpc_call *c, grpc_slice bytes) {
    if (c->finished || c->closed) return -1;
    if (c->qlen >= c->rs->opts.max_queue) {
        call_cancel(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "subscriber too slow");
        return -1;
    }
    if (c->qlen == c->qcap) {
        size_t ncap = c->qcap ? c->qcap * 2 : 16;
        if (ncap > c->rs->opts.max_queue) ncap = c->rs->opts.max_queue;
        grpc_slice *nq = malloc(ncap * sizeof *nq);
        if (!nq) {
            call_cancel(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
            return -1;
        }
        for (size_t i = 0; i < c->qlen; i++)
            nq[i] = c->q[(c->qhead + i) % c->qcap];
        free(c->q);
        c->q = nq;
        c->qcap = ncap;
        c->qhead = 0;
    }
    c->q[(c->qhead + c->qlen) % c->qcap] = grpc_slice_ref(bytes);
    c->qlen++;
    if (!c->in_ready) kick_send(c); /* else at the end of this poll */
    return 0;
}

int rpc_stream_send_msg(rpc_call *c, const ProtobufCMessage *msg) {
    if (c->finished || c->closed) return -1;
    grpc_slice s = rpc_encode(msg);
    int r = rpc_stream_send(c, s);
    grpc_slice_unref(s);
    return r;
}

size_t rpc_stream_queued(const rpc_call *c) { return c->qlen + c->send_busy; }

size_t rpc_stream_room(const rpc_call *c) {
    return c->qlen >= c->rs->opts.max_queue ? 0 : c->rs->opts.max_queue - c->qlen;
}

size_t rpc_stream_low_water(const rpc_call *c) {
    size_t lw = c->rs->opts.max_queue / 4;
    return lw ? lw : 1;
}

void rpc_stream_set_callbacks(rpc_call *c, const rpc_stream_cbs *cbs,
                              void *ud) {
    c->cbs = *cbs;
    c->cb_ud = ud;
}

static void post_recv(rpc_call *c);

static void on_recv_op(rpc_op *op, int ok) {
    rpc_call *c = op->self;
    c->inflight--;
    c->recv_busy = 0;
    grpc_byte_buffer *bb = c->recv_buf;
    c->recv_buf = NULL;
    if (!ok || !bb) {
        if (bb) grpc_byte_buffer_destroy(bb);
        c->refs++;
        if (!c->half_closed && !c->closed) {
            c->half_closed = 1;
            if (c->cbs.on_half_close) c->cbs.on_half_close(c, c->cb_ud);
            else rpc_stream_finish(c, PARLEY_OK, NULL);
        }
        rpc_call_unref(c);
        return;
    }
    ProtobufCMessage *m = rpc_decode(c->reg->m->input, bb);
    grpc_byte_buffer_destroy(bb);
    rpc_call_ref(c);
    if (c->cbs.on_message && !c->closed) c->cbs.on_message(c, m, c->cb_ud);
    if (m) protobuf_c_message_free_unpacked(m, NULL);
    /* Shutting down: read no more, so the last batch can be acked. */
    if (!c->closed && !c->finished && !c->rs->shutting_down) post_recv(c);
    rpc_call_unref(c);
}

static void post_recv(rpc_call *c) {
    if (c->recv_busy) return;
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &c->recv_buf;
    if (start(c, &op, 1, &c->op_recv) == 0) c->recv_busy = 1;
}

/* ---------- accepting calls ---------- */

static void on_slot_op(rpc_op *op, int ok);

static void slot_post(rpc_slot *s) {
    rpc_server *rs = s->reg ? s->reg->rs : NULL;
    if (!rs) rs = (rpc_server *)((char *)s - offsetof(rpc_server, unknown));
    if (rs->shutting_down) return;
    s->op.fn = on_slot_op;
    s->op.self = s;
    s->call = NULL;
    s->payload = NULL;
    grpc_metadata_array_init(&s->md);
    grpc_call_error e;
    if (s->reg) {
        e = grpc_server_request_registered_call(
            rs->server, s->reg->handle, &s->call, &s->deadline, &s->md,
            s->reg->m->kind == RPC_UNARY || s->reg->m->kind == RPC_SERVER_STREAMING
                ? &s->payload
                : NULL,
            rs->cq, rs->cq, &s->op);
    } else {
        grpc_call_details_init(&s->details);
        e = grpc_server_request_call(rs->server, &s->call, &s->details, &s->md,
                                     rs->cq, rs->cq, &s->op);
    }
    if (e != GRPC_CALL_OK) {
        fprintf(stderr, "parleyd: request_call failed (%d)\n", (int)e);
        grpc_metadata_array_destroy(&s->md);
        if (!s->reg) grpc_call_details_destroy(&s->details);
        return;
    }
    s->posted = 1;
    rs->n_slots_posted++;
}

static rpc_call *call_new(rpc_server *rs, rpc_slot *s) {
    rpc_call *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->rs = rs;
    c->reg = s->reg;
    c->call = s->call;
    c->md = s->md; /* take ownership of the array */
    c->op_close = (rpc_op){on_close_op, c};
    c->op_recv = (rpc_op){on_recv_op, c};
    c->op_send = (rpc_op){on_send_op, c};
    c->op_status = (rpc_op){on_simple_op, c};
    c->op_meta = (rpc_op){on_simple_op, c};
    c->next = rs->calls;
    if (rs->calls) rs->calls->prev = c;
    rs->calls = c;
    rs->n_calls++;
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &c->cancelled;
    if (start(c, &op, 1, &c->op_close) != 0) c->closed = 1;
    return c;
}

static void on_slot_op(rpc_op *op, int ok) {
    rpc_slot *s = op->self;
    rpc_server *rs = s->reg ? s->reg->rs
                            : (rpc_server *)((char *)s - offsetof(rpc_server, unknown));
    s->posted = 0;
    rs->n_slots_posted--;
    if (!ok || !s->call) {
        /* Shutdown: nothing arrived. */
        grpc_metadata_array_destroy(&s->md);
        if (!s->reg) grpc_call_details_destroy(&s->details);
        if (s->payload) grpc_byte_buffer_destroy(s->payload);
        if (s->call) grpc_call_unref(s->call);
        return;
    }
    grpc_byte_buffer *payload = s->payload;
    rpc_call *c = call_new(rs, s);
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
    slot_post(s); /* keep one request posted while we handle this one */

    rpc_call_ref(c);
    if (!r) {
        c->fin_status = GRPC_STATUS_UNIMPLEMENTED;
        c->fin_detail = grpc_slice_from_static_string("unknown method");
        c->fin_has_detail = 1;
        c->finished = 1;
        send_status_now(c);
    } else if (r->m->kind == RPC_UNARY || r->m->kind == RPC_SERVER_STREAMING) {
        if (!payload) {
            rpc_fail(c, PARLEY_ERR_MALFORMED, "request message missing");
        } else {
            c->req = rpc_decode(r->m->input, payload);
            if (!c->req) {
                char d[160];
                snprintf(d, sizeof d, "request is not a valid %s",
                         r->m->input->name);
                rpc_fail(c, PARLEY_ERR_MALFORMED, d);
            } else {
                r->m->dispatch(r->handlers, c, c->req, r->ud);
            }
        }
    } else {
        grpc_op op2;
        memset(&op2, 0, sizeof op2);
        op2.op = GRPC_OP_SEND_INITIAL_METADATA;
        c->meta_sent = 1;
        start(c, &op2, 1, &c->op_meta);
        r->m->dispatch(r->handlers, c, NULL, r->ud);
        if (!c->closed && !c->finished) post_recv(c);
    }
    if (payload) grpc_byte_buffer_destroy(payload);
    rpc_call_unref(c);
}

/* ---------- the loop ---------- */

static void on_shutdown_op(rpc_op *op, int ok) {
    (void)ok;
    rpc_server *rs = op->self;
    rs->shutdown_notified = 1;
}

int rpc_server_poll(rpc_server *rs, int timeout_ms) {
    if (rs->cq_shut) return -1;
    int handled = 0;
    gpr_timespec dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                   gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
    while (handled < RPC_POLL_BUDGET) {
        grpc_event ev = grpc_completion_queue_next(rs->cq, dl, NULL);
        if (ev.type == GRPC_QUEUE_TIMEOUT) break;
        if (ev.type == GRPC_QUEUE_SHUTDOWN) {
            rs->cq_shut = 1;
            return -1;
        }
        rpc_op *op = ev.tag;
        op->fn(op, ev.success);
        handled++;
        dl = gpr_inf_past(GPR_CLOCK_MONOTONIC);
    }
    /* One more send for each stream that has frames queued. */
    rpc_call *c = rs->ready;
    rs->ready = NULL;
    while (c) {
        rpc_call *next = c->ready_next;
        c->in_ready = 0;
        kick_send(c);
        if (!c->send_busy && !c->qlen && c->finish_pending) send_status_now(c);
        rpc_call_unref(c);
        c = next;
    }
    return handled;
}

void rpc_server_shutdown_begin(rpc_server *rs) {
    if (rs->shutting_down) return;
    rs->shutting_down = 1;
    rs->shutdown_op = (rpc_op){on_shutdown_op, rs};
    grpc_server_shutdown_and_notify(rs->server, rs->cq, &rs->shutdown_op);
}

void rpc_server_cancel_all(rpc_server *rs) {
    for (rpc_call *c = rs->calls; c; c = c->next)
        call_cancel(c, GRPC_STATUS_UNAVAILABLE, "server shutting down");
    grpc_server_cancel_all_calls(rs->server);
}

size_t rpc_server_unsent(const rpc_server *rs) {
    size_t n = 0;
    for (const rpc_call *c = rs->calls; c; c = c->next)
        if (!c->closed) n += c->qlen + c->send_busy;
    return n;
}

int rpc_server_done(const rpc_server *rs) {
    return rs->shutdown_notified && rs->n_calls == 0 && rs->n_slots_posted == 0;
}

void rpc_server_free(rpc_server *rs) {
    if (!rs) return;
    if (rs->server) {
        if (rs->started && !rs->shutdown_notified) {
            rpc_server_shutdown_begin(rs);
            rpc_server_cancel_all(rs);
            while (!rpc_server_done(rs) && rpc_server_poll(rs, 100) >= 0) {
            }
        }
        grpc_server_destroy(rs->server);
    }
    if (rs->cq) {
        grpc_completion_queue_shutdown(rs->cq);
        while (!rs->cq_shut) {
            grpc_event ev = grpc_completion_queue_next(
                rs->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
            if (ev.type == GRPC_QUEUE_SHUTDOWN) rs->cq_shut = 1;
        }
        grpc_completion_queue_destroy(rs->cq);
    }
    for (size_t i = 0; i < rs->n_regs; i++) free(rs->regs[i]);
    free(rs->regs);
    free(rs);
}

/* ---------- call accessors ---------- */

const rpc_method_desc *rpc_call_method(const rpc_call *c) {
    return c->reg ? c->reg->m : NULL;
}

int rpc_call_metadata(const rpc_call *c, const char *key, char *buf,
                      size_t buflen) {
    return rpc_metadata_get(&c->md, key, buf, buflen);
}

void rpc_call_ref(rpc_call *c) { c->refs++; }

void rpc_call_unref(rpc_call *c) {
    c->refs--;
    call_maybe_free(c);
}

int rpc_call_is_done(const rpc_call *c) { return c->closed || c->finished; }
