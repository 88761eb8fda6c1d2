/* loadgen_cluster.c (loadgen-cluster): the cluster row of the benchmark.
 * Several cores (parleyd on one store, on one NATS bus), driven over gRPC
 * from one thread and one completion queue:
 *   subscribers  S Connect streams, stream i on core i % T, each subscribed
 *                to every room; each event is checked (rev = last + 1 per
 *                stream and room: no gap, no duplicate) and timed from the
 *                publish that made it (the body carries the send time and
 *                the publisher's core, one clock): "local" when publisher
 *                and subscriber use the same core, "remote" when the event
 *                crossed the bus;
 *   publishers   P unary Stream.Publish calls kept in flight, publisher j
 *                on core j % T into room j % N: acked (durable) per second
 *                and the ack latency.
 * After the duration, waits (bounded) until every stream has every acked
 * change of every room. Prints one JSON object on stdout. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include "clock.h"
#include "hist.h"
#include "lg_token.h"
#include "parley/v1/stream.grpc.h"
#include "parley/v1/stream.pb-c.h"
#include "rpc_client.h"
#include "settings.h"

#define LC_MAX_TARGETS 8
#define LC_MAX_ROOMS 256

enum { OP_PUB, OP_SUB_START, OP_SUB_READ, OP_SUB_SEND, OP_SUB_STATUS };

typedef struct lc lc;

typedef struct lc_op {
    int kind;
    void *owner;
} lc_op;

typedef struct lc_pub {
    lc_op op;
    int idx, core, room;
    uint64_t n, t0;
    rpc_client_unary u;
} lc_pub;

typedef struct lc_sub {
    lc *g;
    int idx, core;
    grpc_call *call;
    lc_op op_start, op_read, op_send, op_status;
    grpc_metadata md;
    grpc_byte_buffer *recv_bb, *send_bb;
    grpc_metadata_array init_md, trail_md;
    grpc_status_code status;
    grpc_slice details;
    int next_room; /* the next Subscribe to send */
    int subscribed, pending, done;
    uint64_t last[LC_MAX_ROOMS];
} lc_sub;

struct lc {
    grpc_channel *ch[LC_MAX_TARGETS];
    int n_targets, n_rooms;
    unsigned pubs, subs;
    double duration;
    size_t body_size;
    grpc_completion_queue *cq;
    char **tokens;
    const rpc_method_desc *publish;
    hist *ack_lat, *lat_local, *lat_remote;
    uint64_t acked, failed, dup_acks;
    uint64_t room_acked[LC_MAX_ROOMS];
    uint64_t delivered, gaps, dups, bad_frames, subscribed;
    int publishing;
    char room_names[LC_MAX_ROOMS][48];
};

/* ---- publishers --------------------------------------------------------- */

static int pub_start(lc *g, lc_pub *p)
{
    char cid[64], body[4096];
    snprintf(cid, sizeof cid, "lc%d-%" PRIu64, p->idx, p->n);
    size_t n = (size_t)snprintf(body, sizeof body, "lc %" PRIu64 " %d ",
                                clock_mono_ns(), p->core);
    while (n < g->body_size && n < sizeof body - 1) body[n++] = 'x';
    body[n] = 0;
    Parley__V1__PublishRequest req = PARLEY__V1__PUBLISH_REQUEST__INIT;
    req.room = g->room_names[p->room];
    req.client_msg_id = cid;
    req.body = body;
    gpr_timespec dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                   gpr_time_from_seconds(30, GPR_TIMESPAN));
    p->t0 = clock_mono_ns();
    return rpc_client_unary_start(&p->u, g->ch[p->core], g->cq,
                                  g->publish->path, g->tokens[p->idx],
                                  &req.base, dl, &p->op) == PARLEY_OK
               ? 0
               : -1;
}

static void pub_done(lc *g, lc_pub *p, int ok)
{
    ProtobufCMessage *resp = NULL;
    char detail[160];
    int unavailable = 0;
    parley_err e = rpc_client_unary_finish(&p->u, ok, g->publish->output, &resp,
                                           detail, sizeof detail, &unavailable);
    if (e == PARLEY_OK && resp) {
        const Parley__V1__PublishResponse *r = (const void *)resp;
        if (r->duplicate) {
            g->dup_acks++;
        } else {
            g->acked++;
            g->room_acked[p->room]++;
            hist_record(g->ack_lat, clock_mono_ns() - p->t0);
        }
        protobuf_c_message_free_unpacked(resp, NULL);
    } else {
        g->failed++;
    }
    p->n++;
    rpc_client_unary_free(&p->u);
}

/* ---- subscribers -------------------------------------------------------- */

static int sub_post_read(lc_sub *s)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &s->recv_bb;
    if (grpc_call_start_batch(s->call, &op, 1, &s->op_read, NULL) !=
        GRPC_CALL_OK)
        return -1;
    s->pending++;
    return 0;
}

/* Sends the next Subscribe, one at a time. */
static void sub_send_next(lc_sub *s)
{
    lc *g = s->g;
    if (s->next_room >= g->n_rooms || s->done) return;
    Parley__V1__Subscribe sb = PARLEY__V1__SUBSCRIBE__INIT;
    sb.room = g->room_names[s->next_room];
    Parley__V1__ClientFrame f = PARLEY__V1__CLIENT_FRAME__INIT;
    f.request_id = (uint64_t)s->next_room + 1;
    f.kind_case = PARLEY__V1__CLIENT_FRAME__KIND_SUBSCRIBE;
    f.subscribe = &sb;
    s->next_room++;
    s->send_bb = rpc_client_pack(&f.base);
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = s->send_bb;
    if (grpc_call_start_batch(s->call, &op, 1, &s->op_send, NULL) ==
        GRPC_CALL_OK)
        s->pending++;
}

static int sub_start(lc *g, lc_sub *s, const char *token)
{
    s->g = g;
    s->op_start = (lc_op){OP_SUB_START, s};
    s->op_read = (lc_op){OP_SUB_READ, s};
    s->op_send = (lc_op){OP_SUB_SEND, s};
    s->op_status = (lc_op){OP_SUB_STATUS, s};
    grpc_metadata_array_init(&s->init_md);
    grpc_metadata_array_init(&s->trail_md);
    s->call = grpc_channel_create_call(
        g->ch[s->core], NULL, GRPC_PROPAGATE_DEFAULTS, g->cq,
        grpc_slice_from_static_string(
            parley_v1_Stream_service.methods[PARLEY_V1_STREAM_CONNECT].path),
        NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    rpc_client_auth_md(&s->md, token);
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = 1;
    ops[0].data.send_initial_metadata.metadata = &s->md;
    ops[1].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[1].data.recv_initial_metadata.recv_initial_metadata = &s->init_md;
    if (grpc_call_start_batch(s->call, ops, 2, &s->op_start, NULL) !=
        GRPC_CALL_OK)
        return -1;
    s->pending++;
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[0].data.recv_status_on_client.trailing_metadata = &s->trail_md;
    ops[0].data.recv_status_on_client.status = &s->status;
    ops[0].data.recv_status_on_client.status_details = &s->details;
    if (grpc_call_start_batch(s->call, ops, 1, &s->op_status, NULL) !=
        GRPC_CALL_OK)
        return -1;
    s->pending++;
    if (sub_post_read(s) != 0) return -1;
    sub_send_next(s);
    return 0;
}

static int room_index(lc *g, const char *name)
{
    for (int i = 0; i < g->n_rooms; i++)
        if (strcmp(g->room_names[i], name) == 0) return i;
    return -1;
}

static void sub_frame(lc *g, lc_sub *s, const Parley__V1__ServerFrame *f)
{
    if (f->kind_case == PARLEY__V1__SERVER_FRAME__KIND_SUBSCRIBED) {
        s->subscribed++;
        g->subscribed++;
        return;
    }
    if (f->kind_case != PARLEY__V1__SERVER_FRAME__KIND_EVENT ||
        !f->event->message) {
        g->bad_frames++;
        return;
    }
    const Parley__V1__Message *m = f->event->message;
    int r = room_index(g, m->room);
    if (r < 0) {
        g->bad_frames++;
        return;
    }
    if (m->rev <= s->last[r]) {
        g->dups++;
        return;
    }
    if (m->rev != s->last[r] + 1) g->gaps++;
    s->last[r] = m->rev;
    g->delivered++;
    uint64_t sent = 0;
    int core = -1;
    if (sscanf(m->body, "lc %" SCNu64 " %d", &sent, &core) == 2 && sent) {
        uint64_t now = clock_mono_ns();
        hist_record(core == s->core ? g->lat_local : g->lat_remote,
                    now > sent ? now - sent : 0);
    }
}

/* The bytes of a received message, as one slice (caller unrefs). */
static grpc_slice slice_of(grpc_byte_buffer *bb)
{
    grpc_byte_buffer_reader r;
    if (!grpc_byte_buffer_reader_init(&r, bb)) return grpc_empty_slice();
    grpc_slice s = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    return s;
}

static void sub_op(lc *g, lc_op *op, int ok)
{
    lc_sub *s = op->owner;
    s->pending--;
    switch (op->kind) {
    case OP_SUB_START: break;
    case OP_SUB_SEND:
        grpc_byte_buffer_destroy(s->send_bb);
        s->send_bb = NULL;
        if (ok) sub_send_next(s);
        break;
    case OP_SUB_READ:
        if (ok && s->recv_bb) {
            grpc_slice sl = slice_of(s->recv_bb);
            Parley__V1__ServerFrame *f = parley__v1__server_frame__unpack(
                NULL, GRPC_SLICE_LENGTH(sl), GRPC_SLICE_START_PTR(sl));
            grpc_slice_unref(sl);
            grpc_byte_buffer_destroy(s->recv_bb);
            s->recv_bb = NULL;
            if (f) {
                sub_frame(g, s, f);
                parley__v1__server_frame__free_unpacked(f, NULL);
            } else {
                g->bad_frames++;
            }
            if (!s->done) sub_post_read(s);
        }
        break;
    case OP_SUB_STATUS: s->done = 1; break;
    }
}

/* ---- the run -------------------------------------------------------------- */

static void next(lc *g, int64_t wait_ms, lc_pub *pubs, unsigned *inflight)
{
    grpc_event ev = grpc_completion_queue_next(
        g->cq,
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                     gpr_time_from_millis(wait_ms, GPR_TIMESPAN)),
        NULL);
    if (ev.type != GRPC_OP_COMPLETE) return;
    lc_op *op = ev.tag;
    if (op->kind == OP_PUB) {
        lc_pub *p = op->owner;
        pub_done(g, p, ev.success);
        (*inflight)--;
        if (g->publishing && pub_start(g, p) == 0) (*inflight)++;
    } else {
        sub_op(g, op, ev.success);
    }
    (void)pubs;
}

/* 1 when every stream has every acked change of every room. */
static int all_delivered(lc *g, lc_sub *subs)
{
    for (unsigned i = 0; i < g->subs; i++)
        for (int r = 0; r < g->n_rooms; r++)
            if (subs[i].last[r] < g->room_acked[r]) return 0;
    return 1;
}

typedef struct lc_opts {
    char targets[1024], secret_file[512], room_prefix[24];
    int rooms, pubs, subs, body_size;
    double duration;
} lc_opts;

#define F(field) SETTING_FIELD(lc_opts, field)
static const setting lc_rows[] = {
    {"targets", NULL, SETTING_STR, F(targets), "", 0, 0, "ADDRS",
     "core gRPC addresses, comma-separated", 0},
    {"secret-file", NULL, SETTING_STR, F(secret_file), "", 0, 0, "FILE",
     "the cores' JWT secret", 0},
    {"room-prefix", NULL, SETTING_STR, F(room_prefix), "cl-", 0, 0, "NAME",
     "rooms are PREFIX0 .. PREFIX<rooms-1> (created by the cores)", 0},
    {"rooms", NULL, SETTING_INT, F(rooms), "8", 1, LC_MAX_ROOMS, "N", "rooms",
     0},
    {"pubs", NULL, SETTING_INT, F(pubs), "32", 1, 4096, "N",
     "publishes kept in flight", 0},
    {"subs", NULL, SETTING_INT, F(subs), "6", 1, 4096, "N",
     "subscriber streams (each on every room)", 0},
    {"body-size", NULL, SETTING_INT, F(body_size), "64", 16, 4000, "BYTES",
     "message body size", 0},
    {"duration", NULL, SETTING_DOUBLE, F(duration), "10", 0.1, 3600, "S",
     "how long publishers run", 0},
};
#undef F
static const settings_spec lc_spec = {
    "loadgen-cluster",
    "publishers and subscribers spread over several cores",
    lc_rows,
    sizeof lc_rows / sizeof lc_rows[0],
    NULL,
    NULL};

int main(int argc, char **argv)
{
    lc_opts o;
    int rc = settings_load_main(&lc_spec, &o, argc, argv);
    if (rc >= 0) return rc;
    static lc g;
    g.n_rooms = o.rooms;
    g.pubs = (unsigned)o.pubs;
    g.subs = (unsigned)o.subs;
    g.duration = o.duration;
    g.body_size = (size_t)o.body_size;
    for (int r = 0; r < g.n_rooms; r++)
        snprintf(g.room_names[r], sizeof g.room_names[r], "%s%d", o.room_prefix,
                 r);
    char err[200];
    size_t n_tok = g.pubs > g.subs ? g.pubs : g.subs;
    g.tokens = lg_token_mint_from(o.secret_file, getenv("PARLEY_JWT_SECRET"),
                                  n_tok, err, sizeof err);
    if (!g.tokens) {
        fprintf(stderr, "loadgen-cluster: %s\n", err);
        return 2;
    }
    grpc_init();
    grpc_channel_credentials *cr = grpc_insecure_credentials_create();
    char *save = NULL;
    for (char *t = strtok_r(o.targets, ",", &save);
         t && g.n_targets < LC_MAX_TARGETS; t = strtok_r(NULL, ",", &save))
        g.ch[g.n_targets++] = grpc_channel_create(t, cr, NULL);
    grpc_channel_credentials_release(cr);
    if (!g.n_targets) {
        fprintf(stderr, "loadgen-cluster: no --targets\n");
        return 2;
    }
    g.cq = grpc_completion_queue_create_for_next(NULL);
    g.publish = &parley_v1_Stream_service.methods[PARLEY_V1_STREAM_PUBLISH];
    g.ack_lat = hist_new();
    g.lat_local = hist_new();
    g.lat_remote = hist_new();
    lc_sub *subs = calloc(g.subs, sizeof *subs);
    lc_pub *pubs = calloc(g.pubs, sizeof *pubs);
    if (!subs || !pubs || !g.ack_lat || !g.lat_local || !g.lat_remote) return 1;

    /* Subscribers first, every one subscribed before anyone publishes. */
    for (unsigned i = 0; i < g.subs; i++) {
        subs[i].idx = (int)i;
        subs[i].core = (int)(i % (unsigned)g.n_targets);
        if (sub_start(&g, &subs[i], g.tokens[i]) != 0) return 1;
    }
    unsigned inflight = 0;
    uint64_t t_end = clock_mono_ns() + 15 * 1000000000ull;
    while (g.subscribed < (uint64_t)g.subs * (uint64_t)g.n_rooms &&
           clock_mono_ns() < t_end)
        next(&g, 100, pubs, &inflight);
    if (g.subscribed < (uint64_t)g.subs * (uint64_t)g.n_rooms) {
        fprintf(stderr, "loadgen-cluster: only %" PRIu64 " of %u subscribed\n",
                g.subscribed, g.subs * (unsigned)g.n_rooms);
        return 1;
    }
    /* Publishers for the duration. */
    g.publishing = 1;
    uint64_t t0 = clock_mono_ns();
    for (unsigned j = 0; j < g.pubs; j++) {
        pubs[j].op = (lc_op){OP_PUB, &pubs[j]};
        pubs[j].idx = (int)j;
        pubs[j].core = (int)(j % (unsigned)g.n_targets);
        pubs[j].room = (int)(j % (unsigned)g.n_rooms);
        if (pub_start(&g, &pubs[j]) == 0) inflight++;
    }
    uint64_t t_pub_end = t0 + (uint64_t)(g.duration * 1e9);
    while (clock_mono_ns() < t_pub_end) next(&g, 50, pubs, &inflight);
    g.publishing = 0;
    while (inflight) next(&g, 100, pubs, &inflight);
    double pub_s = (double)(clock_mono_ns() - t0) / 1e9;
    /* Every acked change to every stream (bounded). */
    t_end = clock_mono_ns() + 15 * 1000000000ull;
    while (!all_delivered(&g, subs) && clock_mono_ns() < t_end)
        next(&g, 100, pubs, &inflight);
    double all_s = (double)(clock_mono_ns() - t0) / 1e9;
    uint64_t missing = 0;
    for (unsigned i = 0; i < g.subs; i++)
        for (int r = 0; r < g.n_rooms; r++)
            if (subs[i].last[r] < g.room_acked[r])
                missing += g.room_acked[r] - subs[i].last[r];

    printf("{\"cores\":%d,\"pubs\":%u,\"subs\":%u,\"rooms\":%d,"
           "\"duration_s\":%.2f,\"acked\":%" PRIu64 ",\"failed\":%" PRIu64
           ",\"dup_acks\":%" PRIu64 ",\"acked_per_s\":%.1f,"
           "\"ack_p50_us\":%.1f,\"ack_p99_us\":%.1f,"
           "\"delivered\":%" PRIu64 ",\"delivered_per_s\":%.1f,"
           "\"missing\":%" PRIu64 ",\"gaps\":%" PRIu64 ",\"dup\":%" PRIu64
           ",\"bad_frames\":%" PRIu64 ","
           "\"local\":%" PRIu64 ",\"local_p50_us\":%.1f,\"local_p99_us\":%.1f,"
           "\"remote\":%" PRIu64 ",\"remote_p50_us\":%.1f,"
           "\"remote_p99_us\":%.1f}\n",
           g.n_targets, g.pubs, g.subs, g.n_rooms, pub_s, g.acked, g.failed,
           g.dup_acks, (double)g.acked / pub_s,
           hist_percentile(g.ack_lat, 50) / 1e3,
           hist_percentile(g.ack_lat, 99) / 1e3, g.delivered,
           (double)g.delivered / all_s, missing, g.gaps, g.dups, g.bad_frames,
           hist_count(g.lat_local), hist_percentile(g.lat_local, 50) / 1e3,
           hist_percentile(g.lat_local, 99) / 1e3, hist_count(g.lat_remote),
           hist_percentile(g.lat_remote, 50) / 1e3,
           hist_percentile(g.lat_remote, 99) / 1e3);

    /* Close the streams and drain the queue. */
    for (unsigned i = 0; i < g.subs; i++) {
        subs[i].done = 1;
        grpc_call_cancel(subs[i].call, NULL);
    }
    int open = 1;
    t_end = clock_mono_ns() + 5 * 1000000000ull;
    while (open && clock_mono_ns() < t_end) {
        next(&g, 100, pubs, &inflight);
        open = 0;
        for (unsigned i = 0; i < g.subs; i++) open |= subs[i].pending > 0;
    }
    for (unsigned i = 0; i < g.subs; i++) {
        grpc_call_unref(subs[i].call);
        grpc_slice_unref(subs[i].md.value);
        grpc_slice_unref(subs[i].details);
        grpc_metadata_array_destroy(&subs[i].init_md);
        grpc_metadata_array_destroy(&subs[i].trail_md);
    }
    for (int i = 0; i < g.n_targets; i++) grpc_channel_destroy(g.ch[i]);
    grpc_completion_queue_shutdown(g.cq);
    while (grpc_completion_queue_next(g.cq, gpr_inf_future(GPR_CLOCK_REALTIME),
                                      NULL)
               .type != GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(g.cq);
    hist_free(g.ack_lat);
    hist_free(g.lat_local);
    hist_free(g.lat_remote);
    lg_token_free(g.tokens, n_tok);
    free(subs);
    free(pubs);
    grpc_shutdown();
    return missing || g.gaps || g.dups ? 3 : 0;
}
