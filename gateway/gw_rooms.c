/* gw_rooms.c: edge fan-out. A room has ONE upstream Stream.Connect
 * subscription however many local sockets watch it, a ring of its recent
 * events, and the list of local subscriptions.
 *
 * The ring covers every change with rev in (ring_lo, head_rev]: it holds the
 * upstream's replay and then each live event; when full it drops the oldest
 * and ring_lo moves up. A local Subscribe{room, resume_after_rev = R} is
 * served from the ring when R >= ring_lo, else by paging
 * History.ListMessages(after_rev) upstream until the ring takes over; then
 * Subscribed, then live events. A subscription remembers the last rev it
 * sent, so nothing is sent twice and nothing is skipped.
 *
 * Each live event is encoded once per wire format (protobuf always, JSON
 * only if a JSON client watches) into a shared buffer that every socket's
 * send queue references; replay encodings are cached in the ring entry. */
#include "gw.h"
#include "parley/v1/history.grpc.h"
#include "parley/v1/stream.grpc.h"
#include "rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ring_ent {
    uint64_t rev;
    Parley__V1__ServerFrame *f; /* owns the event */
    gw_buf *replay[2];          /* cached Event{replay:true}: [0] protobuf, [1] JSON */
} ring_ent;

struct gw_room {
    gw_server *srv;
    char name[RULES_ROOM_MAX + 1];
    int live; /* the upstream sent Subscribed */
    gw_ustream *up;
    ring_ent *ring;
    size_t cap, start, n;
    uint64_t ring_lo, head_rev, head_seq;
    uint32_t max_body; /* the core's Room.max_body_bytes, passed on */
    gw_sub *subs;
    size_t n_subs, n_json;
    lws_sorted_usec_list_t sul_idle; /* ends the upstream of an unwatched room
                                      * after --room-linger seconds, so a
                                      * quick reconnect still finds the ring */
    gw_room *next, *prev;
    gw_room *hnext; /* hash chain */
};

#define GW_ROOM_BUCKETS 4096

static size_t room_hash(const char *name)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h % GW_ROOM_BUCKETS;
}

struct gw_sub {
    gw_room *room;
    gw_conn *conn;
    gw_handle *h;
    uint64_t request_id;
    uint64_t last_sent;
    int live;
    int paging;
    int page_wait; /* next page waits for the send queue to drain */
    int pages;
    gw_sub *rnext, *rprev;
    gw_sub *cnext;
};

Parley__V1__EventType gw_event_type_of(const Parley__V1__Message *m)
{
    if (m->deleted)
        return PARLEY__V1__EVENT_TYPE__EVENT_TYPE_DELETED;
    if (m->edited_at_ms != 0)
        return PARLEY__V1__EVENT_TYPE__EVENT_TYPE_EDITED;
    return PARLEY__V1__EVENT_TYPE__EVENT_TYPE_CREATED;
}

static void room_destroy(gw_server *s, gw_room *r);

static void room_idle(lws_sorted_usec_list_t *sul)
{
    gw_room *r = lws_container_of(sul, gw_room, sul_idle);
    if (r->n_subs == 0)
        room_destroy(r->srv, r);
}

/* ---- subscriptions ---- */

static void sub_remove(gw_sub *sub)
{
    gw_room *r = sub->room;
    gw_conn *c = sub->conn;
    if (sub->rprev)
        sub->rprev->rnext = sub->rnext;
    else
        r->subs = sub->rnext;
    if (sub->rnext)
        sub->rnext->rprev = sub->rprev;
    r->n_subs--;
    if (c->json)
        r->n_json--;
    if (r->n_subs == 0 && r->srv->ctx)
        lws_sul_schedule(r->srv->ctx, 0, &r->sul_idle, room_idle,
                         (lws_usec_t)r->srv->cfg.room_linger_s * LWS_US_PER_SEC);
    for (gw_sub **pp = &c->subs; *pp; pp = &(*pp)->cnext) {
        if (*pp == sub) {
            *pp = sub->cnext;
            break;
        }
    }
    sub->h->p = NULL;
    gw_handle_unref(sub->h);
    free(sub);
}

/* ---- rooms ---- */

static void ring_ent_free(ring_ent *e)
{
    protobuf_c_message_free_unpacked(&e->f->base, NULL);
    gw_buf_unref(e->replay[0]);
    gw_buf_unref(e->replay[1]);
    memset(e, 0, sizeof *e);
}

static void room_destroy(gw_server *s, gw_room *r)
{
    while (r->subs)
        sub_remove(r->subs);
    lws_sul_cancel(&r->sul_idle);
    gw_ustream_cancel(r->up);
    for (size_t i = 0; i < r->n; i++)
        ring_ent_free(&r->ring[(r->start + i) % r->cap]);
    free(r->ring);
    for (gw_room **pp = &s->room_tab[room_hash(r->name)]; *pp; pp = &(*pp)->hnext) {
        if (*pp == r) {
            *pp = r->hnext;
            break;
        }
    }
    if (r->prev)
        r->prev->next = r->next;
    else
        s->rooms = r->next;
    if (r->next)
        r->next->prev = r->prev;
    s->n_rooms--;
    free(r);
}

static gw_room *room_find(gw_server *s, const char *name)
{
    if (!s->room_tab)
        return NULL;
    for (gw_room *r = s->room_tab[room_hash(name)]; r; r = r->hnext)
        if (strcmp(r->name, name) == 0)
            return r;
    return NULL;
}

/* Adds an event to the ring; 0 if it was new (rev > head), -1 if not. */
static int ring_push(gw_room *r, Parley__V1__ServerFrame *f)
{
    const Parley__V1__Message *m = f->event->message;
    if (m->rev <= r->head_rev)
        return -1;
    if (r->n == r->cap) {
        ring_ent *old = &r->ring[r->start];
        r->ring_lo = old->rev;
        ring_ent_free(old);
        r->start = (r->start + 1) % r->cap;
        r->n--;
    }
    ring_ent *e = &r->ring[(r->start + r->n) % r->cap];
    e->rev = m->rev;
    e->f = f;
    r->n++;
    r->head_rev = m->rev;
    if (m->seq > r->head_seq)
        r->head_seq = m->seq;
    return 0;
}

static gw_buf *ring_replay_buf(ring_ent *e, int json)
{
    if (!e->replay[json]) {
        Parley__V1__ServerFrame out = PARLEY__V1__SERVER_FRAME__INIT;
        Parley__V1__Event ev = *e->f->event;
        ev.replay = 1;
        out.kind_case = PARLEY__V1__SERVER_FRAME__KIND_EVENT;
        out.event = &ev;
        e->replay[json] = gw_buf_encode(&out.base, json);
    }
    return e->replay[json];
}

static void send_subscribed(gw_sub *sub)
{
    gw_room *r = sub->room;
    Parley__V1__ServerFrame f = PARLEY__V1__SERVER_FRAME__INIT;
    Parley__V1__Subscribed sd = PARLEY__V1__SUBSCRIBED__INIT;
    Parley__V1__Room room = PARLEY__V1__ROOM__INIT;
    f.request_id = sub->request_id;
    f.kind_case = PARLEY__V1__SERVER_FRAME__KIND_SUBSCRIBED;
    f.subscribed = &sd;
    sd.room = &room;
    room.name = r->name;
    room.head_seq = r->head_seq;
    room.head_rev = r->head_rev;
    room.max_body_bytes = r->max_body;
    gw_conn_send_msg(sub->conn, &f.base);
}

/* Replays the ring after sub->last_sent, then Subscribed; the sub is live. */
static void sub_finish_from_ring(gw_sub *sub)
{
    gw_room *r = sub->room;
    for (size_t i = 0; i < r->n; i++) {
        ring_ent *e = &r->ring[(r->start + i) % r->cap];
        if (e->rev <= sub->last_sent)
            continue;
        gw_buf *b = ring_replay_buf(e, sub->conn->json);
        if (!b || gw_conn_send(sub->conn, b, 0) < 0)
            return;
        sub->last_sent = e->rev;
    }
    if (r->head_rev > sub->last_sent)
        sub->last_sent = r->head_rev;
    send_subscribed(sub);
    sub->paging = 0;
    sub->live = 1;
}

static void sub_page(gw_server *s, gw_sub *sub);

static void page_done(gw_server *s, void *ud, parley_err e,
                      const char *detail, int unavailable,
                      ProtobufCMessage *resp)
{
    gw_handle *h = ud;
    gw_sub *sub = h->p;
    gw_handle_unref(h);
    if (!sub) {
        if (resp)
            protobuf_c_message_free_unpacked(resp, NULL);
        return;
    }
    gw_conn *c = sub->conn;
    if (e != PARLEY_OK) {
        if (unavailable) {
            gw_conn_close(c, GW_CLOSE_UPSTREAM, 0);
        } else {
            gw_conn_send_error(c, sub->request_id, e, detail, 0);
        }
        sub_remove(sub);
        return;
    }
    Parley__V1__ListMessagesResponse *lr =
        (Parley__V1__ListMessagesResponse *)resp;
    uint64_t before = sub->last_sent;
    for (size_t i = 0; i < lr->n_messages; i++) {
        Parley__V1__Message *m = lr->messages[i];
        if (m->rev <= sub->last_sent)
            continue;
        Parley__V1__ServerFrame f = PARLEY__V1__SERVER_FRAME__INIT;
        Parley__V1__Event ev = PARLEY__V1__EVENT__INIT;
        f.kind_case = PARLEY__V1__SERVER_FRAME__KIND_EVENT;
        f.event = &ev;
        ev.type = gw_event_type_of(m);
        ev.message = m;
        ev.replay = 1;
        if (gw_conn_send_msg(c, &f.base) < 0)
            break;
        sub->last_sent = m->rev;
    }
    int more = lr->has_more ||
               (sub->last_sent < sub->room->ring_lo && ++sub->pages < 64);
    protobuf_c_message_free_unpacked(resp, NULL);
    if (c->close_code)
        return;
    if (more && sub->last_sent > before) {
        /* Replay at the pace the client reads: the next page waits while
         * the send queue holds more than half its bound. */
        if (c->q_bytes > s->cfg.sendq_bytes / 2 ||
            c->q_n > s->cfg.sendq_frames / 2)
            sub->page_wait = 1;
        else
            sub_page(s, sub);
    } else {
        sub_finish_from_ring(sub);
    }
}

void gw_rooms_conn_drained(gw_server *s, gw_conn *c)
{
    for (gw_sub *sub = c->subs, *next; sub; sub = next) {
        next = sub->cnext;
        if (sub->page_wait) {
            sub->page_wait = 0;
            sub_page(s, sub);
        }
    }
}

static void sub_page(gw_server *s, gw_sub *sub)
{
    Parley__V1__ListMessagesRequest req = PARLEY__V1__LIST_MESSAGES_REQUEST__INIT;
    req.room = sub->room->name;
    req.cursor_case = PARLEY__V1__LIST_MESSAGES_REQUEST__CURSOR_AFTER_REV;
    req.after_rev = sub->last_sent;
    req.limit = (uint32_t)s->cfg.replay_page;
    gw_handle *h = gw_handle_ref(sub->h);
    parley_err e = gw_up_unary(
        s, &parley_v1_History_service.methods[PARLEY_V1_HISTORY_LIST_MESSAGES],
        &req.base, sub->conn->token, page_done, h);
    if (e != PARLEY_OK) {
        gw_handle_unref(h);
        gw_conn_close(sub->conn, GW_CLOSE_UPSTREAM, 0);
        sub_remove(sub);
    }
}

static void sub_start(gw_server *s, gw_sub *sub)
{
    if (sub->last_sent >= sub->room->ring_lo) {
        s->m.replay_ring++;
        sub_finish_from_ring(sub);
    } else {
        s->m.replay_history++;
        sub->paging = 1;
        sub_page(s, sub);
    }
}

/* Sends a live event to every live subscription that has not seen it. */
static void fan_out(gw_room *r, ring_ent *e)
{
    gw_buf *b[2] = {NULL, NULL};
    Parley__V1__ServerFrame out = PARLEY__V1__SERVER_FRAME__INIT;
    Parley__V1__Event ev = *e->f->event;
    ev.replay = 0;
    out.kind_case = PARLEY__V1__SERVER_FRAME__KIND_EVENT;
    out.event = &ev;
    for (gw_sub *sub = r->subs; sub; sub = sub->rnext) {
        if (!sub->live || e->rev <= sub->last_sent)
            continue;
        int j = sub->conn->json;
        if (!b[j]) {
            if (!(b[j] = gw_buf_encode(&out.base, j)))
                break;
            r->srv->m.encodes[j]++;
        }
        gw_conn_send(sub->conn, b[j], 1);
        sub->last_sent = e->rev;
    }
    gw_buf_unref(b[0]);
    gw_buf_unref(b[1]);
}

/* The upstream subscription failed or ended: waiting subscriptions get the
 * core's refusal; sockets that were live are closed 4503 so they reconnect
 * and resume. */
static void room_fail(gw_server *s, gw_room *r, parley_err e,
                      const char *detail, int unavailable)
{
    while (r->subs) {
        gw_sub *sub = r->subs;
        if (!sub->live && !unavailable && e != PARLEY_ERR_INTERNAL)
            gw_conn_send_error(sub->conn, sub->request_id, e, detail, 0);
        else
            gw_conn_close(sub->conn, GW_CLOSE_UPSTREAM, 1);
        sub_remove(sub);
    }
    room_destroy(s, r);
}

static void up_frame(gw_server *s, void *ud, Parley__V1__ServerFrame *f)
{
    gw_room *r = ud;
    switch (f->kind_case) {
    case PARLEY__V1__SERVER_FRAME__KIND_EVENT:
        if (!f->event || !f->event->message)
            break;
        s->m.upstream_events++;
        if (ring_push(r, f) < 0)
            break;
        if (r->live)
            fan_out(r, &r->ring[(r->start + r->n - 1) % r->cap]);
        return; /* the ring owns f */
    case PARLEY__V1__SERVER_FRAME__KIND_SUBSCRIBED:
        if (f->subscribed && f->subscribed->room) {
            const Parley__V1__Room *rm = f->subscribed->room;
            if (rm->head_rev < r->ring_lo) {
                /* asked for more than exists: the ring starts at the head */
                r->ring_lo = rm->head_rev;
                r->head_rev = rm->head_rev;
            } else if (rm->head_rev > r->head_rev) {
                r->head_rev = rm->head_rev;
            }
            if (rm->head_seq > r->head_seq)
                r->head_seq = rm->head_seq;
            r->max_body = rm->max_body_bytes;
        }
        if (!r->live) {
            r->live = 1;
            for (gw_sub *sub = r->subs, *next; sub; sub = next) {
                next = sub->rnext;
                if (!sub->live && !sub->paging)
                    sub_start(s, sub);
            }
        }
        break;
    case PARLEY__V1__SERVER_FRAME__KIND_ERROR: {
        parley_err e = f->error ? (parley_err)f->error->code : PARLEY_ERR_INTERNAL;
        char detail[256];
        snprintf(detail, sizeof detail, "%s",
                 f->error && f->error->detail ? f->error->detail : "");
        protobuf_c_message_free_unpacked(&f->base, NULL);
        room_fail(s, r, e, detail, r->live);
        return;
    }
    default:
        break;
    }
    protobuf_c_message_free_unpacked(&f->base, NULL);
}

static void up_end(gw_server *s, void *ud, parley_err e, const char *detail,
                   int unavailable)
{
    gw_room *r = ud;
    r->up = NULL; /* the stream frees itself */
    room_fail(s, r, e, detail, unavailable || r->live);
}

static gw_room *room_new(gw_server *s, const char *name, uint64_t resume)
{
    gw_room *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    snprintf(r->name, sizeof r->name, "%s", name);
    r->cap = s->cfg.ring_size ? s->cfg.ring_size : 1;
    r->ring = calloc(r->cap, sizeof *r->ring);
    if (!r->ring) {
        free(r);
        return NULL;
    }
    if (!s->room_tab && !(s->room_tab = calloc(GW_ROOM_BUCKETS, sizeof *s->room_tab))) {
        free(r->ring);
        free(r);
        return NULL;
    }
    r->srv = s;
    r->ring_lo = r->head_rev = resume;
    Parley__V1__ClientFrame cf = PARLEY__V1__CLIENT_FRAME__INIT;
    Parley__V1__Subscribe sub = PARLEY__V1__SUBSCRIBE__INIT;
    cf.request_id = 1;
    cf.kind_case = PARLEY__V1__CLIENT_FRAME__KIND_SUBSCRIBE;
    cf.subscribe = &sub;
    sub.room = r->name;
    sub.resume_after_rev = resume;
    r->up = gw_up_connect(s, NULL, &cf.base, up_frame, up_end, r);
    if (!r->up) {
        free(r->ring);
        free(r);
        return NULL;
    }
    size_t hb = room_hash(r->name);
    r->hnext = s->room_tab[hb];
    s->room_tab[hb] = r;
    r->next = s->rooms;
    if (s->rooms)
        s->rooms->prev = r;
    s->rooms = r;
    s->n_rooms++;
    return r;
}

void gw_rooms_subscribe(gw_server *s, gw_conn *c, uint64_t request_id,
                        const Parley__V1__Subscribe *req)
{
    parley_err e = rules_room(req->room);
    if (e != PARLEY_OK) {
        gw_conn_send_error(c, request_id, e, NULL, 0);
        return;
    }
    for (gw_sub *sub = c->subs; sub; sub = sub->cnext) {
        if (strcmp(sub->room->name, req->room) == 0) {
            gw_conn_send_error(c, request_id, PARLEY_ERR_SUBSCRIPTION_STATE,
                               "already subscribed to this room", 0);
            return;
        }
    }
    gw_room *r = room_find(s, req->room);
    if (!r && !(r = room_new(s, req->room, req->resume_after_rev))) {
        gw_conn_close(c, GW_CLOSE_UPSTREAM, 0);
        return;
    }
    gw_sub *sub = calloc(1, sizeof *sub);
    if (!sub || !(sub->h = gw_handle_new(sub))) {
        free(sub);
        gw_conn_send_error(c, request_id, PARLEY_ERR_INTERNAL, NULL, 0);
        return;
    }
    sub->room = r;
    sub->conn = c;
    sub->request_id = request_id;
    sub->last_sent = req->resume_after_rev;
    sub->rnext = r->subs;
    if (r->subs)
        r->subs->rprev = sub;
    r->subs = sub;
    r->n_subs++;
    if (c->json)
        r->n_json++;
    sub->cnext = c->subs;
    c->subs = sub;
    lws_sul_cancel(&r->sul_idle);
    if (r->live)
        sub_start(s, sub);
}

void gw_rooms_unsubscribe(gw_server *s, gw_conn *c, uint64_t request_id,
                          const char *room)
{
    (void)s;
    for (gw_sub *sub = c->subs; sub; sub = sub->cnext) {
        if (strcmp(sub->room->name, room) == 0) {
            sub_remove(sub);
            Parley__V1__ServerFrame f = PARLEY__V1__SERVER_FRAME__INIT;
            Parley__V1__Unsubscribed u = PARLEY__V1__UNSUBSCRIBED__INIT;
            f.request_id = request_id;
            f.kind_case = PARLEY__V1__SERVER_FRAME__KIND_UNSUBSCRIBED;
            f.unsubscribed = &u;
            u.room = (char *)room;
            gw_conn_send_msg(c, &f.base);
            return;
        }
    }
    gw_conn_send_error(c, request_id, PARLEY_ERR_SUBSCRIPTION_STATE,
                       "not subscribed to this room", 0);
}

void gw_rooms_conn_gone(gw_server *s, gw_conn *c)
{
    (void)s;
    while (c->subs)
        sub_remove(c->subs);
}

void gw_rooms_free_all(gw_server *s)
{
    while (s->rooms)
        room_destroy(s, s->rooms);
    free(s->room_tab);
    s->room_tab = NULL;
}
