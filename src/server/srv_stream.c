/* srv_stream.c: the Stream service. Publish (unary) joins the group commit.
 * Connect is one session: subscriptions with replay then live, publishes
 * acked after commit, pings, and an Authenticate frame answered like the
 * WebSocket gateway does.
 *
 * Replay then live without gap or duplicate: a new subscription starts
 * "replaying": it is in the hub but skipped by fan-out, and reads the store
 * in pages (rev > cursor) whenever its send queue is low. Everything runs on
 * the loop thread and every commit is fanned out before the loop reads
 * again, so whatever it skipped is in the store; once a page comes back
 * without more, it has sent everything up to the room's head rev: it sends
 * Subscribed{room} and turns live. */
#include "srv.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define REPLAY_PAGE 256

typedef struct srv_subscription {
    hub_sub hs;
    list_node link;      /* srv_conn.subs */
    uint64_t cursor;     /* highest rev sent while replaying */
    uint64_t request_id; /* of the Subscribe */
    char room[RULES_ROOM_MAX + 1];
} srv_subscription;

struct srv_conn {
    srv *s;
    rpc_call *call;
    auth_identity who;
    list subs;           /* srv_subscription.link, at most one per room */
    size_t pending_pubs; /* publishes enqueued and not yet answered */
    int closed, half_closed;
    list_node link; /* srv.conns while the stream is open */
};

static void conn_maybe_free(srv_conn *cn)
{
    if (!cn->closed || cn->pending_pubs) return;
    assert(cn->subs.len == 0 && !list_node_is_linked(&cn->link));
    free(cn);
}

/* A publish of this stream was answered (srv_enqueue's done). */
static void conn_pub_done(srv_conn *cn)
{
    assert(cn->pending_pubs > 0);
    cn->pending_pubs--;
    if (cn->closed) {
        conn_maybe_free(cn);
        return;
    }
    if (cn->half_closed && !cn->pending_pubs && cn->subs.len == 0)
        rpc_stream_finish(cn->call, PARLEY_OK, NULL);
}

static srv_subscription *find_sub(srv_conn *cn, const char *room)
{
    list_for_each(&cn->subs, n, next)
    {
        srv_subscription *sub = list_entry(n, srv_subscription, link);
        if (strcmp(sub->room, room) == 0) return sub;
    }
    return NULL;
}

/* Takes sub off its stream and its room, and frees it. */
static void sub_free(srv_conn *cn, srv_subscription *sub)
{
    list_remove(&sub->link);
    hub_remove(cn->s->hub, &sub->hs);
    free(sub);
}

static void send_frame(rpc_call *c, Parley__V1__ServerFrame *f)
{
    rpc_stream_send_msg(c, &f->base);
}

typedef struct replay_ctx {
    srv_subscription *sub;
    rpc_call *call;
    int stop;
} replay_ctx;

static int replay_row(const parley_msg *m, void *ud)
{
    replay_ctx *rc = ud;
    grpc_slice f = srv_event_frame(srv_event_type(m), m, 1);
    int r = rpc_stream_send(rc->call, f);
    grpc_slice_unref(f);
    rc->sub->cursor = m->rev;
    if (r != 0) rc->stop = 1;
    return r != 0;
}

/* Sends one replay page if the send queue is low (the next page follows
 * from on_drain, so a big replay never holds the loop for long); turns live
 * at the head. */
static void replay_step(srv_conn *cn, srv_subscription *sub)
{
    srv *s = cn->s;
    if (!sub->hs.live && !rpc_call_is_done(cn->call) &&
        rpc_stream_queued(cn->call) <= rpc_stream_low_water(cn->call)) {
        /* A page never fills more than half of what the queue has left, so
         * replay alone cannot cut a subscriber however small --max-queue. */
        size_t room_left = rpc_stream_room(cn->call);
        if (room_left < 2) return; /* wait for on_drain */
        size_t page = room_left / 2;
        if (page > REPLAY_PAGE) page = REPLAY_PAGE;
        assert(page >= 1 && page <= room_left / 2);
        replay_ctx rc = {sub, cn->call, 0};
        parley_room room;
        int has_more = 0;
        parley_err e =
            store_list(s->db, sub->room, STORE_AFTER_REV, sub->cursor,
                       (unsigned)page, replay_row, &rc, &room, &has_more);
        if (e) {
            log_error("store", "replay of %s failed: %s", sub->room,
                      store_last_error(s->db));
            rpc_stream_finish(cn->call, PARLEY_ERR_INTERNAL, "replay failed");
            return;
        }
        if (rc.stop) return;
        if (!has_more) {
            Parley__V1__Room pr;
            srv_pb_room(s, &pr, &room);
            pr.name = sub->room;
            Parley__V1__Subscribed sd = PARLEY__V1__SUBSCRIBED__INIT;
            sd.room = &pr;
            Parley__V1__ServerFrame f = PARLEY__V1__SERVER_FRAME__INIT;
            f.request_id = sub->request_id;
            f.kind_case = PARLEY__V1__SERVER_FRAME__KIND_SUBSCRIBED;
            f.subscribed = &sd;
            send_frame(cn->call, &f);
            sub->hs.live = 1;
        }
    }
}

static void on_subscribe(srv_conn *cn, uint64_t rid,
                         const Parley__V1__Subscribe *sb)
{
    srv *s = cn->s;
    parley_err e = rules_room(sb->room);
    if (e) {
        srv_send_error(cn->call, rid, e, NULL, 0);
        return;
    }
    if (find_sub(cn, sb->room)) {
        srv_send_error(cn->call, rid, PARLEY_ERR_SUBSCRIPTION_STATE,
                       "already subscribed to this room on this stream", 0);
        return;
    }
    parley_room room;
    e = store_room_get(s->db, sb->room, &room);
    if (e) {
        srv_send_error(cn->call, rid, e,
                       e == PARLEY_ERR_ROOM_NOT_FOUND ? "no such room"
                                                      : "storage failure",
                       0);
        return;
    }
    srv_subscription *sub = calloc(1, sizeof *sub);
    if (!sub) {
        srv_send_error(cn->call, rid, PARLEY_ERR_INTERNAL, "out of memory", 0);
        return;
    }
    strcpy(sub->room, sb->room);
    sub->cursor = sb->resume_after_rev;
    sub->request_id = rid;
    sub->hs.call = cn->call;
    sub->hs.live = 0;
    if (hub_add(s->hub, sub->room, &sub->hs) != 0) {
        free(sub);
        srv_send_error(cn->call, rid, PARLEY_ERR_INTERNAL, "out of memory", 0);
        return;
    }
    list_push_front(&cn->subs, &sub->link);
    replay_step(cn, sub);
}

static void on_unsubscribe(srv_conn *cn, uint64_t rid,
                           const Parley__V1__Unsubscribe *u)
{
    srv_subscription *sub = find_sub(cn, u->room);
    if (!sub) {
        srv_send_error(cn->call, rid, PARLEY_ERR_SUBSCRIPTION_STATE,
                       "not subscribed to this room on this stream", 0);
        return;
    }
    sub_free(cn, sub);
    Parley__V1__Unsubscribed us = PARLEY__V1__UNSUBSCRIBED__INIT;
    us.room = u->room;
    Parley__V1__ServerFrame f = PARLEY__V1__SERVER_FRAME__INIT;
    f.request_id = rid;
    f.kind_case = PARLEY__V1__SERVER_FRAME__KIND_UNSUBSCRIBED;
    f.unsubscribed = &us;
    send_frame(cn->call, &f);
}

static void on_authenticate(srv_conn *cn, uint64_t rid,
                            const Parley__V1__Authenticate *a)
{
    auth_identity who;
    if (auth_verify(cn->s->au, a->token, clock_wall_ms() / 1000, &who) !=
        PARLEY_OK) {
        srv_send_error(cn->call, rid, PARLEY_ERR_UNAUTHENTICATED,
                       "invalid, expired or badly signed token", 0);
        return;
    }
    Parley__V1__Author au = PARLEY__V1__AUTHOR__INIT;
    au.id = who.id;
    au.display_name = who.display_name;
    au.role = (Parley__V1__Role)who.role;
    Parley__V1__Authenticated ad = PARLEY__V1__AUTHENTICATED__INIT;
    ad.user = &au;
    Parley__V1__ServerFrame f = PARLEY__V1__SERVER_FRAME__INIT;
    f.request_id = rid;
    f.kind_case = PARLEY__V1__SERVER_FRAME__KIND_AUTHENTICATED;
    f.authenticated = &ad;
    send_frame(cn->call, &f);
}

static void conn_on_message(rpc_call *c, const ProtobufCMessage *msg, void *ud)
{
    srv_conn *cn = ud;
    if (!msg) {
        srv_send_error(c, 0, PARLEY_ERR_MALFORMED,
                       "frame is not a valid parley.v1.ClientFrame", 0);
        return;
    }
    const Parley__V1__ClientFrame *f = (const Parley__V1__ClientFrame *)msg;
    uint64_t rid = f->request_id;
    switch (f->kind_case) {
    case PARLEY__V1__CLIENT_FRAME__KIND_SUBSCRIBE:
        on_subscribe(cn, rid, f->subscribe);
        break;
    case PARLEY__V1__CLIENT_FRAME__KIND_UNSUBSCRIBE:
        on_unsubscribe(cn, rid, f->unsubscribe);
        break;
    case PARLEY__V1__CLIENT_FRAME__KIND_PUBLISH: {
        parley_err e =
            srv_enqueue(cn->s, c, cn, conn_pub_done, rid, &cn->who, f->publish);
        if (e)
            srv_send_error(c, rid, e, parley_err_text(e), 0);
        else
            cn->pending_pubs++;
        break;
    }
    case PARLEY__V1__CLIENT_FRAME__KIND_PING: {
        Parley__V1__Pong pg = PARLEY__V1__PONG__INIT;
        pg.nonce = f->ping->nonce;
        Parley__V1__ServerFrame sf = PARLEY__V1__SERVER_FRAME__INIT;
        sf.request_id = rid;
        sf.kind_case = PARLEY__V1__SERVER_FRAME__KIND_PONG;
        sf.pong = &pg;
        send_frame(c, &sf);
        break;
    }
    case PARLEY__V1__CLIENT_FRAME__KIND_AUTHENTICATE:
        on_authenticate(cn, rid, f->authenticate);
        break;
    default:
        srv_send_error(c, rid, PARLEY_ERR_MALFORMED,
                       "client frame has no kind set", 0);
    }
}

static void conn_on_drain(rpc_call *c, void *ud)
{
    (void)c;
    srv_conn *cn = ud;
    list_for_each(&cn->subs, n, next)
    {
        srv_subscription *sub = list_entry(n, srv_subscription, link);
        if (!sub->hs.live) replay_step(cn, sub);
    }
}

/* The client stopped sending. A stream with subscriptions goes on
 * delivering events until the client cancels; one without ends once its
 * publishes are acked. */
static void conn_on_half_close(rpc_call *c, void *ud)
{
    srv_conn *cn = ud;
    cn->half_closed = 1;
    if (!cn->pending_pubs && cn->subs.len == 0)
        rpc_stream_finish(c, PARLEY_OK, NULL);
}

static void conn_on_close(rpc_call *c, void *ud)
{
    srv_conn *cn = ud;
    list_node *n;
    while ((n = cn->subs.first) != NULL)
        sub_free(cn, list_entry(n, srv_subscription, link));
    assert(cn->subs.len == 0);
    list_remove(&cn->link);
    cn->closed = 1;
    conn_maybe_free(cn);
    rpc_call_unref(c);
}

static void h_connect(rpc_call *c, void *ud)
{
    srv *s = ud;
    auth_identity who;
    if (srv_authenticate(s, c, &who)) return;
    srv_conn *cn = calloc(1, sizeof *cn);
    if (!cn) {
        rpc_fail(c, PARLEY_ERR_INTERNAL, "out of memory");
        return;
    }
    cn->s = s;
    cn->call = c;
    cn->who = who;
    list_push_front(&s->conns, &cn->link);
    rpc_call_ref(c);
    static const rpc_stream_cbs cbs = {conn_on_message, conn_on_half_close,
                                       conn_on_drain, conn_on_close};
    rpc_stream_set_callbacks(c, &cbs, cn);
}

static void h_publish(rpc_call *c, const Parley__V1__PublishRequest *req,
                      void *ud)
{
    srv *s = ud;
    auth_identity who;
    if (srv_authenticate(s, c, &who)) return;
    parley_err e = srv_enqueue(s, c, NULL, NULL, 0, &who, req);
    if (e) rpc_fail(c, e, parley_err_text(e));
}

const parley_v1_Stream_handlers srv_stream = {
    .connect = h_connect,
    .publish = h_publish,
};
