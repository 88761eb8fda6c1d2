/* gw_upstream.c: the gateway's gRPC client of parleyd, on the grpc C core.
 *
 * Calls are started from the lws thread (grpc_call_start_batch does not
 * block). One dedicated thread waits on the completion queue and hands every
 * completion (tag + success) to the lws thread through a mutex-protected
 * list, then wakes it with lws_cancel_service(); the lws thread runs the
 * completions in gw_up_drain(). So all gateway state stays on one thread and
 * the lws thread never blocks on grpc.
 *
 * Upstream addresses come from --upstream (comma-separated); a call uses the
 * first channel that is connected, else the first that is not failing.
 *
 * Stream.Connect streams serve rooms (service token, one Subscribe) and the
 * publishes of a WebSocket session (the user's token, one Publish frame per
 * browser publish). grpc allows one send in flight per call, so a stream
 * keeps a queue of encoded frames and sends the next when the last went. */
#include "gw.h"
#include "parley/v1/stream.grpc.h"
#include "rpc_client.h"

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GW_UNARY_DEADLINE_S 15

enum { OP_UNARY, OP_ST_START, OP_ST_READ, OP_ST_STATUS, OP_ST_SEND };

typedef struct up_op {
    int kind;
    void *owner;
} up_op;

typedef struct up_done {
    up_op *op;
    int ok;
    struct up_done *next;
} up_done;

/* Every live call, so shutdown can cancel them and wait. */
typedef struct up_call {
    grpc_call *call;
    struct up_call *next, *prev;
} up_call;

typedef struct up_unary {
    up_call lc;
    up_op op;
    rpc_client_unary rc;
    const rpc_method_desc *m;
    gw_unary_cb cb;
    void *ud;
} up_unary;

struct gw_ustream {
    up_call lc;
    up_op op_start, op_read, op_status, op_send;
    grpc_metadata md;
    grpc_byte_buffer *send_bb, *recv_bb;
    grpc_byte_buffer **sq; /* frames waiting for the send in flight */
    size_t sq_head, sq_n, sq_cap;
    int sending;           /* send_bb is in flight */
    int send_failed;
    grpc_metadata_array init_md, trail_md;
    grpc_status_code status;
    grpc_slice details;
    int pending;
    int cancelled;
    gw_ustream_frame_cb on_frame;
    gw_ustream_end_cb on_end;
    void *ud;
};

struct gw_upstream {
    gw_server *srv;
    grpc_completion_queue *cq;
    grpc_channel **ch;
    int n_ch;
    pthread_t thread;
    int thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    up_done *head, *tail;
    up_call calls; /* sentinel of the live-call list */
    size_t n_calls;
};

static void *cq_thread(void *arg)
{
    gw_upstream *u = arg;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(
            u->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        up_done *d = malloc(sizeof *d);
        if (!d) {
            fprintf(stderr, "parley-gateway: out of memory in the grpc thread\n");
            abort();
        }
        d->op = ev.tag;
        d->ok = ev.success;
        d->next = NULL;
        pthread_mutex_lock(&u->mu);
        if (u->tail)
            u->tail->next = d;
        else
            u->head = d;
        u->tail = d;
        pthread_cond_signal(&u->cv);
        pthread_mutex_unlock(&u->mu);
        if (u->srv->ctx)
            lws_cancel_service(u->srv->ctx);
    }
    return NULL;
}

parley_err gw_up_new(gw_server *s, gw_upstream **out)
{
    gw_upstream *u = calloc(1, sizeof *u);
    if (!u)
        return PARLEY_ERR_INTERNAL;
    grpc_init();
    u->srv = s;
    u->calls.next = u->calls.prev = &u->calls;
    pthread_mutex_init(&u->mu, NULL);
    pthread_cond_init(&u->cv, NULL);
    u->cq = grpc_completion_queue_create_for_next(NULL);
    u->ch = calloc((size_t)s->cfg.n_upstreams, sizeof *u->ch);
    if (!u->ch) {
        gw_up_free(u);
        return PARLEY_ERR_INTERNAL;
    }
    grpc_arg args[4];
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
    grpc_channel_args ca = {4, args};
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    for (int i = 0; i < s->cfg.n_upstreams; i++) {
        u->ch[i] = grpc_channel_create(s->cfg.upstreams[i], creds, &ca);
        u->n_ch++;
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

static void call_link(gw_upstream *u, up_call *c)
{
    c->next = u->calls.next;
    c->prev = &u->calls;
    u->calls.next->prev = c;
    u->calls.next = c;
    u->n_calls++;
}

static void call_unlink(gw_upstream *u, up_call *c)
{
    c->prev->next = c->next;
    c->next->prev = c->prev;
    u->n_calls--;
}

static void run_done(gw_server *s, up_done *d);

void gw_up_free(gw_upstream *u)
{
    if (!u)
        return;
    /* Cancel what still runs and run its completions here. */
    for (up_call *c = u->calls.next; c != &u->calls; c = c->next)
        grpc_call_cancel(c->call, NULL);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    while (u->n_calls > 0 && u->thread_started) {
        pthread_mutex_lock(&u->mu);
        while (!u->head) {
            if (pthread_cond_timedwait(&u->cv, &u->mu, &until) != 0)
                break;
        }
        up_done *d = u->head;
        u->head = u->tail = NULL;
        pthread_mutex_unlock(&u->mu);
        if (!d)
            break;
        while (d) {
            up_done *next = d->next;
            run_done(u->srv, d);
            d = next;
        }
    }
    for (int i = 0; i < u->n_ch; i++)
        grpc_channel_destroy(u->ch[i]);
    free(u->ch);
    if (u->cq) {
        grpc_completion_queue_shutdown(u->cq);
        if (u->thread_started)
            pthread_join(u->thread, NULL);
        grpc_completion_queue_destroy(u->cq);
    }
    for (up_done *d = u->head; d;) {
        up_done *next = d->next;
        free(d);
        d = next;
    }
    pthread_mutex_destroy(&u->mu);
    pthread_cond_destroy(&u->cv);
    free(u);
    grpc_shutdown();
}

static grpc_channel *pick_channel(gw_upstream *u)
{
    int fallback = -1;
    for (int i = 0; i < u->n_ch; i++) {
        grpc_connectivity_state st =
            grpc_channel_check_connectivity_state(u->ch[i], 1);
        if (st == GRPC_CHANNEL_READY)
            return u->ch[i];
        if (fallback < 0 && st != GRPC_CHANNEL_TRANSIENT_FAILURE &&
            st != GRPC_CHANNEL_SHUTDOWN)
            fallback = i;
    }
    return u->ch[fallback < 0 ? 0 : fallback];
}

int gw_up_healthy(gw_server *s)
{
    gw_upstream *u = s->up;
    for (int i = 0; u && i < u->n_ch; i++)
        if (grpc_channel_check_connectivity_state(u->ch[i], 1) ==
            GRPC_CHANNEL_READY)
            return 1;
    return 0;
}

const char *gw_up_state_name(gw_server *s)
{
    gw_upstream *u = s->up;
    int best = -1;
    static const char *names[] = {"idle", "connecting", "ready",
                                  "transient_failure", "shutdown"};
    for (int i = 0; u && i < u->n_ch; i++) {
        int st = (int)grpc_channel_check_connectivity_state(u->ch[i], 0);
        if (st == GRPC_CHANNEL_READY)
            return "ready";
        if (best < 0)
            best = st;
    }
    return best >= 0 && best <= 4 ? names[best] : "none";
}

parley_err gw_up_unary(gw_server *s, const rpc_method_desc *m,
                       const ProtobufCMessage *req, const char *token,
                       gw_unary_cb cb, void *ud)
{
    gw_upstream *u = s->up;
    up_unary *c = calloc(1, sizeof *c);
    if (!c)
        return PARLEY_ERR_INTERNAL;
    c->op.kind = OP_UNARY;
    c->op.owner = c;
    c->m = m;
    c->cb = cb;
    c->ud = ud;
    gpr_timespec deadline = gpr_time_add(
        gpr_now(GPR_CLOCK_REALTIME),
        gpr_time_from_seconds(GW_UNARY_DEADLINE_S, GPR_TIMESPAN));
    if (rpc_client_unary_start(&c->rc, pick_channel(u), u->cq, m->path, token,
                               req, deadline, &c->op) != PARLEY_OK) {
        free(c);
        return PARLEY_ERR_INTERNAL;
    }
    c->lc.call = c->rc.call;
    call_link(u, &c->lc);
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
    if (e != PARLEY_OK)
        s->m.upstream_errors++;
    call_unlink(s->up, &c->lc);
    c->cb(s, c->ud, e, detail, unavailable, resp);
    rpc_client_unary_free(&c->rc);
    free(c);
}

/* ---- streams ---- */

static void st_free_if_done(gw_upstream *u, gw_ustream *st)
{
    if (st->pending > 0)
        return;
    call_unlink(u, &st->lc);
    grpc_call_unref(st->lc.call);
    if (st->send_bb)
        grpc_byte_buffer_destroy(st->send_bb);
    if (st->recv_bb)
        grpc_byte_buffer_destroy(st->recv_bb);
    for (size_t i = 0; i < st->sq_n; i++)
        grpc_byte_buffer_destroy(st->sq[(st->sq_head + i) % st->sq_cap]);
    free(st->sq);
    grpc_slice_unref(st->md.value);
    grpc_slice_unref(st->details);
    grpc_metadata_array_destroy(&st->init_md);
    grpc_metadata_array_destroy(&st->trail_md);
    free(st);
}

static int st_read(gw_ustream *st)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &st->recv_bb;
    if (grpc_call_start_batch(st->lc.call, &op, 1, &st->op_read, NULL) !=
        GRPC_CALL_OK)
        return -1;
    st->pending++;
    return 0;
}

/* Start sending the next queued frame if none is in flight. */
static int st_pump(gw_ustream *st)
{
    if (st->sending || st->sq_n == 0 || st->cancelled || st->send_failed)
        return 0;
    st->send_bb = st->sq[st->sq_head];
    st->sq_head = (st->sq_head + 1) % st->sq_cap;
    st->sq_n--;
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = st->send_bb;
    if (grpc_call_start_batch(st->lc.call, &op, 1, &st->op_send, NULL) !=
        GRPC_CALL_OK) {
        grpc_byte_buffer_destroy(st->send_bb);
        st->send_bb = NULL;
        st->send_failed = 1;
        return -1;
    }
    st->sending = 1;
    st->pending++;
    return 0;
}

parley_err gw_ustream_send(gw_ustream *st, const ProtobufCMessage *msg)
{
    if (!st || st->cancelled || st->send_failed)
        return PARLEY_ERR_INTERNAL;
    if (st->sq_n == st->sq_cap) {
        size_t ncap = st->sq_cap ? st->sq_cap * 2 : 8;
        grpc_byte_buffer **nq = malloc(ncap * sizeof *nq);
        if (!nq)
            return PARLEY_ERR_INTERNAL;
        for (size_t i = 0; i < st->sq_n; i++)
            nq[i] = st->sq[(st->sq_head + i) % st->sq_cap];
        free(st->sq);
        st->sq = nq;
        st->sq_head = 0;
        st->sq_cap = ncap;
    }
    grpc_byte_buffer *bb = rpc_client_pack(msg);
    if (!bb)
        return PARLEY_ERR_INTERNAL;
    st->sq[(st->sq_head + st->sq_n) % st->sq_cap] = bb;
    st->sq_n++;
    if (st_pump(st) < 0) {
        /* Not gw_ustream_cancel: on_end must still answer the rest. */
        grpc_call_cancel(st->lc.call, NULL);
        return PARLEY_ERR_INTERNAL;
    }
    return PARLEY_OK;
}

gw_ustream *gw_up_connect(gw_server *s, const char *token,
                          const ProtobufCMessage *first,
                          gw_ustream_frame_cb on_frame,
                          gw_ustream_end_cb on_end, void *ud)
{
    gw_upstream *u = s->up;
    gw_ustream *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->op_start = (up_op){OP_ST_START, st};
    st->op_read = (up_op){OP_ST_READ, st};
    st->op_status = (up_op){OP_ST_STATUS, st};
    st->op_send = (up_op){OP_ST_SEND, st};
    st->on_frame = on_frame;
    st->on_end = on_end;
    st->ud = ud;
    grpc_metadata_array_init(&st->init_md);
    grpc_metadata_array_init(&st->trail_md);
    st->lc.call = grpc_channel_create_call(
        pick_channel(u), NULL, GRPC_PROPAGATE_DEFAULTS, u->cq,
        grpc_slice_from_static_string(
            parley_v1_Stream_service.methods[PARLEY_V1_STREAM_CONNECT].path),
        NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    rpc_client_auth_md(&st->md, token ? token : s->service_token);
    st->send_bb = rpc_client_pack(first);
    call_link(u, &st->lc);

    grpc_op ops[3];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = 1;
    ops[0].data.send_initial_metadata.metadata = &st->md;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = st->send_bb;
    ops[2].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[2].data.recv_initial_metadata.recv_initial_metadata = &st->init_md;
    if (grpc_call_start_batch(st->lc.call, ops, 3, &st->op_start, NULL) ==
        GRPC_CALL_OK) {
        st->pending++;
        st->sending = 1; /* the first frame is in flight */
    }
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[0].data.recv_status_on_client.trailing_metadata = &st->trail_md;
    ops[0].data.recv_status_on_client.status = &st->status;
    ops[0].data.recv_status_on_client.status_details = &st->details;
    if (grpc_call_start_batch(st->lc.call, ops, 1, &st->op_status, NULL) ==
        GRPC_CALL_OK)
        st->pending++;
    if (st_read(st) < 0 || st->pending < 3) {
        /* Could not start: report nothing, let the caller see NULL. */
        st->cancelled = 1;
        grpc_call_cancel(st->lc.call, NULL);
        if (st->pending == 0) {
            st_free_if_done(u, st);
        }
        return NULL;
    }
    return st;
}

void gw_ustream_cancel(gw_ustream *st)
{
    if (!st || st->cancelled)
        return;
    st->cancelled = 1;
    grpc_call_cancel(st->lc.call, NULL);
}

static void st_done(gw_server *s, up_op *op, int ok)
{
    gw_ustream *st = op->owner;
    st->pending--;
    switch (op->kind) {
    case OP_ST_START:
    case OP_ST_SEND:
        grpc_byte_buffer_destroy(st->send_bb);
        st->send_bb = NULL;
        st->sending = 0;
        if (!ok)
            st->send_failed = 1; /* the status completion tells why */
        else if (st_pump(st) < 0)
            grpc_call_cancel(st->lc.call, NULL); /* on_end follows */
        break;
    case OP_ST_READ:
        if (ok && st->recv_bb) {
            ProtobufCMessage *m =
                rpc_decode(&parley__v1__server_frame__descriptor, st->recv_bb);
            grpc_byte_buffer_destroy(st->recv_bb);
            st->recv_bb = NULL;
            if (!st->cancelled && m)
                st->on_frame(s, st->ud, (Parley__V1__ServerFrame *)m);
            else if (m)
                protobuf_c_message_free_unpacked(m, NULL);
            if (!st->cancelled && st_read(st) < 0)
                gw_ustream_cancel(st);
        }
        break;
    case OP_ST_STATUS:
        if (!st->cancelled) {
            char detail[256];
            int unavailable;
            parley_err e =
                rpc_client_status_error(st->status, &st->trail_md, &unavailable);
            rpc_client_slice_str(st->details, detail, sizeof detail);
            if (e == PARLEY_OK) { /* the core ended a live stream */
                e = PARLEY_ERR_INTERNAL;
                unavailable = 1;
            }
            s->m.upstream_errors++;
            st->cancelled = 1;
            st->on_end(s, st->ud, e, detail, unavailable);
        }
        break;
    }
    st_free_if_done(s->up, st);
}

static void run_done(gw_server *s, up_done *d)
{
    up_op *op = d->op;
    int ok = d->ok;
    free(d);
    if (op->kind == OP_UNARY)
        unary_done(s, op->owner, ok);
    else
        st_done(s, op, ok);
}

void gw_up_drain(gw_server *s)
{
    gw_upstream *u = s->up;
    if (!u)
        return;
    pthread_mutex_lock(&u->mu);
    up_done *d = u->head;
    u->head = u->tail = NULL;
    pthread_mutex_unlock(&u->mu);
    while (d) {
        up_done *next = d->next;
        run_done(s, d);
        d = next;
    }
}
