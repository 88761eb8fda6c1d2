/* srv_stream.c: the Stream service. Publish (unary) joins the group commit.
 * Connect is one session: subscriptions with replay then live (each checked
 * against the access rules when made, and again when a room action may
 * have taken it away: srv_stream_recheck), publishes acked after commit,
 * pings, and an Authenticate frame answered like the WebSocket gateway
 * does. A stream may carry many users (the gateway's shared stream): a
 * frame with user_token acts as that token's user, and is checked as that
 * user.
 *
 * Batches (SessionOptions.batch): once a client turned them on, the send
 * queue hands every frame waiting behind the one in flight to
 * merge_frames, which wraps them, still encoded, into one
 * ServerFrame{batch}; the receiver handles them in the same order. A
 * ClientFrame{batch} is handled frame by frame exactly as if each had come
 * alone.
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
    access_view me;      /* the subscriber's view, for Subscribed.room.me */
    char room[RULES_ROOM_MAX + 1];
} srv_subscription;

struct srv_conn {
    srv *s;
    rpc_call *call;
    auth_identity who;
    list subs;           /* srv_subscription.link, at most one per room */
    size_t pending_pubs; /* publishes enqueued and not yet answered */
    int closed, half_closed;
    int batch;               /* SessionOptions.batch: merged sends */
    unsigned wants;          /* HUB_WANT_*: SessionOptions.presence, .typing */
    srv_presence_refs *pres; /* who this stream said is here, where */
    list_node link;          /* srv.conns while the stream is open */
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
    srv_bus_unwatch(cn->s, sub->room);
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
    size_t sent;
} replay_ctx;

static int replay_row(const parley_msg *m, void *ud)
{
    replay_ctx *rc = ud;
    grpc_slice f = srv_event_frame(srv_event_type(m), m, 1);
    int r = rpc_stream_send(rc->call, f);
    grpc_slice_unref(f);
    rc->sub->cursor = m->rev;
    rc->sent++;
    if (r != 0) rc->stop = 1;
    return r != 0;
}

/* A replay that cannot read its room ends that subscription alone, with
 * an Error frame under its request id: the stream and its other rooms go
 * on (a gateway's shared link carries hundreds). The client subscribes
 * again from the last rev it got. sub is freed. */
static void replay_fail(srv_conn *cn, srv_subscription *sub, const char *why)
{
    log_error("store", "replay of %s failed: %s", sub->room, why);
    uint64_t rid = sub->request_id;
    sub_free(cn, sub);
    srv_send_error(cn->call, rid, PARLEY_ERR_INTERNAL,
                   "replay of this room failed; subscribe again", 0);
}

/* Sends one replay page if the send queue is low (the next page follows
 * from on_drain, so a big replay never holds the loop for long); turns live
 * at the head. May free sub (replay_fail). */
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
        replay_ctx rc = {sub, cn->call, 0, 0};
        parley_room room;
        int has_more = 0;
        parley_err e =
            store_list(s->db, sub->room, STORE_AFTER_REV, sub->cursor,
                       (unsigned)page, replay_row, &rc, &room, &has_more);
        if (e) {
            replay_fail(cn, sub, store_last_error(s->db));
            return;
        }
        if (rc.stop) return;
        if (!has_more && !srv_bus_live_ok(s, sub->room, room.head_rev)) {
            /* This core delivered changes (another core's, from the bus)
             * that this read did not see yet: read on. A read that sent
             * rows goes on from on_drain; one that sent none was behind
             * what was already committed, which the store never is. */
            if (rc.sent) return;
            replay_fail(cn, sub, "its read is behind what was delivered");
            return;
        }
        if (!has_more) {
            Parley__V1__Room pr;
            Parley__V1__RoomAccess me;
            srv_pb_room(s, &pr, &room);
            pr.name = sub->room;
            srv_pb_access(&me, &sub->me);
            pr.me = &me;
            Parley__V1__Subscribed sd = PARLEY__V1__SUBSCRIBED__INIT;
            sd.room = &pr;
            Parley__V1__ServerFrame f = PARLEY__V1__SERVER_FRAME__INIT;
            f.request_id = sub->request_id;
            f.kind_case = PARLEY__V1__SERVER_FRAME__KIND_SUBSCRIBED;
            f.subscribed = &sd;
            send_frame(cn->call, &f);
            /* Everything up to the head it read has been sent. */
            sub->hs.rev = room.head_rev;
            sub->hs.live = 1;
            /* Who is here now; changes follow as they come. */
            if ((cn->wants & HUB_WANT_PRESENCE) &&
                srv_presence_count(s, sub->room) > 0) {
                grpc_slice pf = srv_presence_frame(s, sub->room);
                rpc_stream_send(cn->call, pf);
                grpc_slice_unref(pf);
            }
        }
    }
}

/* who: the stream's user, or the frame's user_token's: a stream that
 * carries many users (the gateway's) subscribes only where the user it
 * names may read. */
static void on_subscribe(srv_conn *cn, uint64_t rid,
                         const Parley__V1__Subscribe *sb,
                         const auth_identity *who)
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
    /* A user's stream follows at most max_subs rooms. A service's (a
     * gateway's shared link) follows rooms for many users, each of whom
     * the gateway holds to its own per-session limit, and is not capped:
     * a gateway on --upstream-links streams must be able to follow every
     * room its users watch. */
    if (!cn->who.service && cn->subs.len >= s->max_subs) {
        srv_send_error(cn->call, rid, PARLEY_ERR_RESOURCE_EXHAUSTED,
                       "this stream follows as many rooms as it may", 0);
        return;
    }
    srv_grant g;
    e = srv_check(s, who, sb->room, ACCESS_READ, 0, &g);
    if (e) {
        if (e == PARLEY_ERR_INTERNAL || e == PARLEY_ERR_IO)
            log_error("store", "subscribe to %s: %s", sb->room,
                      store_last_error(s->db));
        srv_send_check_error(cn->call, rid, e, &g);
        return;
    }
    srv_subscription *sub = calloc(1, sizeof *sub);
    if (!sub) {
        srv_send_error(cn->call, rid, PARLEY_ERR_INTERNAL, "out of memory", 0);
        return;
    }
    strcpy(sub->room, sb->room);
    srv_view(s, who, &g.room, &g.st, &sub->me);
    /* srv_check reads the settings, not the counters: with a bus, the
     * head this core delivers from is read now (srv_bus_watch). */
    uint64_t head_rev = 0;
    if (s->bus) {
        parley_room cur;
        e = store_room_get(s->db, sb->room, &cur);
        if (e) {
            free(sub);
            srv_send_error(cn->call, rid, e,
                           e == PARLEY_ERR_ROOM_NOT_FOUND ? "no such room"
                                                          : "storage failure",
                           0);
            return;
        }
        head_rev = cur.head_rev;
    }
    sub->cursor = sb->resume_after_rev;
    sub->request_id = rid;
    sub->hs.call = cn->call;
    sub->hs.live = 0;
    sub->hs.wants = cn->wants;
    if (srv_bus_watch(s, sub->room, head_rev) != 0) {
        free(sub);
        srv_send_error(cn->call, rid, PARLEY_ERR_INTERNAL, "out of memory", 0);
        return;
    }
    if (hub_add(s->hub, sub->room, &sub->hs) != 0) {
        srv_bus_unwatch(s, sub->room);
        free(sub);
        srv_send_error(cn->call, rid, PARLEY_ERR_INTERNAL, "out of memory", 0);
        return;
    }
    list_push_front(&cn->subs, &sub->link);
    replay_step(cn, sub);
}

static void send_unsubscribed(rpc_call *c, uint64_t rid, const char *room)
{
    Parley__V1__Unsubscribed us = PARLEY__V1__UNSUBSCRIBED__INIT;
    us.room = (char *)room;
    Parley__V1__ServerFrame f = PARLEY__V1__SERVER_FRAME__INIT;
    f.request_id = rid;
    f.kind_case = PARLEY__V1__SERVER_FRAME__KIND_UNSUBSCRIBED;
    f.unsubscribed = &us;
    send_frame(c, &f);
}

void srv_stream_recheck(srv *s, const char *room, const char *user_id)
{
    list_for_each(&s->conns, n, next)
    {
        srv_conn *cn = list_entry(n, srv_conn, link);
        if (user_id && strcmp(cn->who.id, user_id) != 0) continue;
        srv_subscription *sub = find_sub(cn, room);
        if (!sub) continue;
        srv_grant g;
        parley_err e = srv_check(s, &cn->who, room, ACCESS_READ, 0, &g);
        if (e == PARLEY_OK) {
            srv_view(s, &cn->who, &g.room, &g.st, &sub->me);
            continue;
        }
        if (e == PARLEY_ERR_INTERNAL || e == PARLEY_ERR_IO) {
            /* Not known to be refused: keep it, and say why in the log. */
            log_error("store", "recheck of %s: %s", room,
                      store_last_error(s->db));
            continue;
        }
        uint64_t rid = sub->request_id;
        srv_send_check_error(cn->call, rid, e, &g);
        send_unsubscribed(cn->call, rid, room);
        sub_free(cn, sub);
        if (cn->half_closed && !cn->pending_pubs && cn->subs.len == 0)
            rpc_stream_finish(cn->call, PARLEY_OK, NULL);
    }
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
    send_unsubscribed(cn->call, rid, u->room);
}

/* Answers like the gateway does, and renews the stream's token: a valid
 * token of the same user (or service) replaces the one the stream was
 * opened with, so the stream outlives the first token's expiry. */
static void on_authenticate(srv_conn *cn, uint64_t rid,
                            const Parley__V1__Authenticate *a)
{
    auth_identity who;
    parley_err e =
        auth_cache_verify(cn->s->ac, a->token, clock_wall_ms() / 1000, &who);
    if (e != PARLEY_OK) {
        srv_send_error(cn->call, rid, e,
                       "invalid, expired or badly signed token", 0);
        return;
    }
    if (strcmp(who.id, cn->who.id) != 0 || who.service != cn->who.service) {
        srv_send_error(cn->call, rid, PARLEY_ERR_UNAUTHENTICATED,
                       "a stream keeps its user", 0);
        return;
    }
    cn->who = who;
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

/* rpc_merge_fn: frames (each an encoded ServerFrame) as one encoded
 * ServerFrame{batch{frames}}, the frames' bytes copied, not re-encoded. */
static grpc_slice merge_frames(const grpc_slice *frames, size_t n)
{
    static uint32_t f_batch, f_frames;
    if (!f_batch) {
        f_batch =
            rpc_wire_field(&parley__v1__server_frame__descriptor, "batch");
        f_frames =
            rpc_wire_field(&parley__v1__server_batch__descriptor, "frames");
    }
    return rpc_wire_merge(frames, n, f_batch, f_frames);
}

static void on_options(srv_conn *cn, uint64_t rid,
                       const Parley__V1__SessionOptions *o)
{
    cn->batch = o->batch ? 1 : 0;
    rpc_stream_set_merge(cn->call, cn->batch ? merge_frames : NULL);
    cn->wants = (o->presence ? HUB_WANT_PRESENCE : 0) |
                (o->typing ? HUB_WANT_TYPING : 0);
    list_for_each(&cn->subs, n, next)
    {
        list_entry(n, srv_subscription, link)->hs.wants = cn->wants;
    }
    Parley__V1__SessionOptions on = PARLEY__V1__SESSION_OPTIONS__INIT;
    on.batch = cn->batch;
    on.presence = (cn->wants & HUB_WANT_PRESENCE) != 0;
    on.typing = (cn->wants & HUB_WANT_TYPING) != 0;
    Parley__V1__ServerFrame f = PARLEY__V1__SERVER_FRAME__INIT;
    f.request_id = rid;
    f.kind_case = PARLEY__V1__SERVER_FRAME__KIND_OPTIONS;
    f.options = &on;
    send_frame(cn->call, &f);
}

static void on_frame(srv_conn *cn, const Parley__V1__ClientFrame *f,
                     int in_batch);

static void conn_on_message(rpc_call *c, const ProtobufCMessage *msg,
                            parley_err err, void *ud)
{
    srv_conn *cn = ud;
    if (!msg) {
        srv_send_error(c, 0, PARLEY_ERR_MALFORMED,
                       "frame is not a valid parley.v1.ClientFrame", 0);
        return;
    }
    if (err != PARLEY_OK) { /* refused whole, never cut at the NUL */
        srv_send_error(c, ((const Parley__V1__ClientFrame *)msg)->request_id,
                       err, "a string field holds a NUL or is not UTF-8", 0);
        return;
    }
    on_frame(cn, (const Parley__V1__ClientFrame *)msg, 0);
}

/* ClientFrame{presence}: who (the stream's user or the frame's
 * user_token's) is here or gone; being here needs read access. Answered
 * only with an Error when refused. */
static void on_presence(srv_conn *cn, uint64_t rid,
                        const Parley__V1__PresenceUpdate *pu,
                        const auth_identity *who)
{
    srv *s = cn->s;
    srv_grant g;
    parley_err e = PARLEY_OK;
    memset(&g, 0, sizeof g);
    if (who->service) {
        /* a service is no one to count; it says so for users, with their
         * tokens */
        g.rule = PARLEY_RULE_SERVICE_READ_ONLY;
        srv_send_check_error(cn->call, rid, PARLEY_ERR_PERMISSION_DENIED, &g);
        return;
    }
    if (pu->here)
        e = srv_check(s, who, pu->room, ACCESS_READ, 0, &g);
    else
        e = rules_room(pu->room);
    if (e) {
        srv_send_check_error(cn->call, rid, e, &g);
        return;
    }
    parley_author a = auth_author(who);
    if (pu->here) a.role = g.role;
    e = srv_presence_say(s, &cn->pres, pu->room, &a, pu->here);
    if (e) srv_send_error(cn->call, rid, e, "out of memory", 0);
}

/* ClientFrame{typing}: needs the right to post (a muted user's typing is
 * refused); passed on at most every SRV_TYPING_MIN_MS. */
static void on_typing(srv_conn *cn, uint64_t rid, const Parley__V1__Typing *t,
                      const auth_identity *who)
{
    srv *s = cn->s;
    srv_grant g;
    parley_err e = srv_check(s, who, t->room, ACCESS_POST, 0, &g);
    if (e) {
        srv_send_check_error(cn->call, rid, e, &g);
        return;
    }
    parley_author a = auth_author(who);
    a.role = g.role;
    srv_presence_typing(s, t->room, &a, clock_mono_ms());
}

/* One client frame, alone or out of a batch. */
static void on_frame(srv_conn *cn, const Parley__V1__ClientFrame *f,
                     int in_batch)
{
    rpc_call *c = cn->call;
    uint64_t rid = f->request_id;
    auth_identity who = cn->who;
    parley_err ae = PARLEY_OK;
    if (f->user_token && *f->user_token &&
        (ae = auth_cache_verify(cn->s->ac, f->user_token,
                                clock_wall_ms() / 1000, &who)) != PARLEY_OK) {
        srv_send_error(c, rid, ae,
                       ae == PARLEY_ERR_TOKEN_EXPIRED
                           ? "user_token expired; renew it"
                           : "user_token invalid or badly signed",
                       0);
        return;
    }
    switch (f->kind_case) {
    case PARLEY__V1__CLIENT_FRAME__KIND_SUBSCRIBE:
        on_subscribe(cn, rid, f->subscribe, &who);
        break;
    case PARLEY__V1__CLIENT_FRAME__KIND_UNSUBSCRIBE:
        on_unsubscribe(cn, rid, f->unsubscribe);
        break;
    case PARLEY__V1__CLIENT_FRAME__KIND_PUBLISH: {
        /* who: the frame's user_token, else the stream's; a service
         * identity carries users' publishes only with their own tokens */
        if (who.service) {
            srv_send_error_rule(c, rid, PARLEY_ERR_PERMISSION_DENIED,
                                PARLEY_RULE_SERVICE_READ_ONLY,
                                "a service token can read, never write "
                                "(rule SERVICE_READ_ONLY)",
                                0);
            break;
        }
        parley_err e =
            srv_enqueue(cn->s, c, cn, conn_pub_done, rid, &who, f->publish);
        if (e)
            srv_send_error(c, rid, e, parley_err_text(e), 0);
        else
            cn->pending_pubs++;
        break;
    }
    case PARLEY__V1__CLIENT_FRAME__KIND_PRESENCE:
        on_presence(cn, rid, f->presence, &who);
        break;
    case PARLEY__V1__CLIENT_FRAME__KIND_TYPING:
        on_typing(cn, rid, f->typing, &who);
        break;
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
    case PARLEY__V1__CLIENT_FRAME__KIND_OPTIONS:
        on_options(cn, rid, f->options);
        break;
    case PARLEY__V1__CLIENT_FRAME__KIND_BATCH:
        if (in_batch) {
            srv_send_error(c, rid, PARLEY_ERR_MALFORMED, "batches do not nest",
                           0);
            break;
        }
        for (size_t i = 0; i < f->batch->n_frames && !rpc_call_is_done(c); i++)
            on_frame(cn, f->batch->frames[i], 1);
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
    /* Everyone this stream said is here leaves with it. */
    srv_presence_refs_free(cn->s, cn->pres);
    cn->pres = NULL;
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
    /* A service's stream (a gateway's shared link) carries the frames of
     * every session the gateway holds in its rooms: a short stall of the
     * gateway must not cut them all. */
    if (who.service) rpc_stream_scale_queue(c, SRV_SERVICE_QUEUE_FACTOR);
}

static void h_publish(rpc_call *c, const Parley__V1__PublishRequest *req,
                      void *ud)
{
    srv *s = ud;
    auth_identity who;
    if (srv_authenticate(s, c, &who)) return;
    if (srv_refuse_service(c, &who)) return;
    parley_err e = srv_enqueue(s, c, NULL, NULL, 0, &who, req);
    if (e) rpc_fail(c, e, parley_err_text(e));
}

size_t srv_expire(srv *s, int64_t now_s)
{
    size_t n = 0;
    list_for_each(&s->conns, node, next)
    {
        srv_conn *cn = list_entry(node, srv_conn, link);
        if (rpc_call_is_done(cn->call) || !auth_expired(s->au, &cn->who, now_s))
            continue;
        /* the subscriptions go with the call (conn_on_close) */
        rpc_stream_finish(cn->call, PARLEY_ERR_TOKEN_EXPIRED,
                          "the token of this stream has expired; renew it "
                          "(Authenticate) before it does, or reconnect");
        n++;
    }
    return n;
}

const parley_v1_Stream_handlers srv_stream = {
    .connect = h_connect,
    .publish = h_publish,
};
