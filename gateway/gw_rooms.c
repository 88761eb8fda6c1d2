/* gw_rooms.c: edge fan-out. The rooms module owns its table of rooms;
 * each room has ONE upstream subscription (on the link its name hashes to)
 * however many connections watch it, a ring of its recent events, and its
 * subscriptions.
 *
 * The ring. Entries are numbered by position (a 64-bit count that only
 * grows); the ring holds positions [first_pos, next_pos) and covers every
 * change with rev in (ring_lo, head_rev]: the upstream replay, then each
 * live event, in rev order. When full it drops the oldest and ring_lo
 * moves up. It keeps max(--ring, --sendq-frames) + 1 entries, so a tail
 * that falls out of it has more waiting than the send bound allows. (Not
 * lws_ring: its tails are wrapping byte offsets with no way to tell an
 * overtaken tail, and moving its oldest tail means scanning every tail
 * after every read.)
 *
 * A subscription is a feed of its connection (gw_conn.h) with a tail: a
 * live event is stored once, each subscriber is charged one frame against
 * its send bound and asked to write; the frames are copied only into each
 * socket's write when it pulls them. Subscribe{room, resume_after_rev = R}:
 *   - R >= ring_lo: the tail starts at the first entry with rev > R; those
 *     up to the head at that moment go as replay, then Subscribed, then
 *     live events (a marker in the pull, so order is kept without copying);
 *   - R < ring_lo: History.ListMessages(after_rev) pages (with the user's
 *     token) go to the connection's own queue, the next page only when that
 *     queue is below half its bound, until the ring takes over as above.
 * A subscription remembers the last rev it sent: nothing twice, no gap.
 *
 * The gateway never widens access. Its upstream subscription of a room
 * runs as the gateway's service identity, which may read every room, so a
 * connection is attached to a room only after the core said its user may
 * read it (SUB_CHECK: History.GetRoom with the user's token; the answer's
 * Room.me is the user's own view in Subscribed). Room events of the room
 * (ServerFrame{room_event}) go to every connection watching it; one that
 * can take reading away (a removal, a membership ended, members-only
 * visibility) has the connections concerned checked again the same way,
 * and those refused get Error{PERMISSION_DENIED, rule} on their subscribe's
 * request id and Unsubscribed; a deleted room ends every subscription with
 * ROOM_NOT_FOUND. Publishes carry the user's token (gw_session.c), edits
 * and deletes go as the user's own REST calls: the core decides each.
 *
 * Moving. The room's link ends when its core goes away (gw_upstream.c):
 * the room subscribes again on its next core's link with resume_after_rev
 * = head_rev, the last rev its ring has. That core replays what came after
 * it, then goes live; the ring takes each rev once (ring_add drops what it
 * has), so the room's subscribers see a pause, never a gap or a duplicate,
 * and are not told. The new core is told who is here through this
 * gateway (room_say_here), as the old one was. With no other core usable
 * the room fails as a single core's did: its sessions are closed 4503, to
 * reconnect and resume.
 *
 * Encodings per entry, made once and only when some subscriber needs them:
 * [format][replay flag]. The binary frame of the flag the core sent is the
 * core's own bytes, passed through (a live event is never re-encoded for
 * binary subscribers); JSON is encoded only if a JSON subscriber pulls. */
#include "gw_rooms.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_session.h"
#include "parley/v1/history.grpc.h"
#include "ring.h"
#include "rules.h"

#define GW_ROOM_BUCKETS 4096
/* The most entries a ring ever holds (tails further behind are cut). */
#define GW_RING_MAX (1u << 20)

typedef struct gw_event {
    uint64_t rev;
    size_t len;        /* of the core's encoding: what the bound charges */
    int core_replay;   /* the replay flag of the core's encoding */
    int passed;        /* the core's bytes were sent (counted once) */
    gw_buf *enc[2][2]; /* [json][replay]; [0][core_replay]: the core's */
} gw_event;

typedef struct gw_room gw_room;

struct gw_rooms {
    gw_room *tab[GW_ROOM_BUCKETS];
    lws_dll2_owner_t all;
};

struct gw_room {
    gw_server *srv;
    char name[RULES_ROOM_MAX + 1];
    int live;   /* the upstream answered Subscribed */
    int moving; /* live, re-subscribed on another core, not answered yet */
    gw_link *link;
    gw_call *call; /* the upstream Subscribe, until answered */
    ring ents;     /* gw_event *, oldest first */
    size_t keep;   /* entries kept once no tail needs more */
    uint64_t first_pos;
    uint64_t ring_lo, head_rev, head_seq;
    uint32_t max_body; /* the core's Room.max_body_bytes, passed on */
    lws_dll2_owner_t subs;
    lws_dll2_owner_t here; /* here_user: users present, sessions each */
    gw_buf *presence[2];   /* the core's latest Presence, [json] */
    lws_sorted_usec_list_t sul_idle; /* ends the upstream of an unwatched
                                      * room after --room-linger seconds,
                                      * so a quick reconnect still finds the
                                      * ring */
    lws_dll2_t link_all;
    gw_room *hnext; /* hash chain */
};

enum sub_state {
    SUB_CHECK,  /* the core is asked whether the user may read the room */
    SUB_WAIT,   /* the room's upstream is not live yet */
    SUB_PAGING, /* replaying through History */
    SUB_RING    /* pulling from the ring (replay, Subscribed, live) */
};

typedef struct gw_sub {
    gw_feed feed;                         /* first: the connection's feed */
    gw_room *room;                        /* NULL while SUB_CHECK */
    char want[RULES_ROOM_MAX + 1];        /* the room asked for */
    Parley__V1__GetRoomResponse *checked; /* the core's yes (Room.me), until
                                             Subscribed is encoded */
    gw_conn *conn;
    gw_handle *h; /* for History answers */
    char *token;  /* the user's, while paging */
    uint64_t request_id;
    uint64_t last_sent;
    int here;             /* counted in room->here */
    lws_usec_t typing_us; /* the last typing passed upstream */
    enum sub_state state;
    int page_wait; /* the next page waits for the own queue to drain */
    int pages;
    uint64_t tail;           /* next position to pull (SUB_RING) */
    uint64_t subscribed_rev; /* Subscribed goes before any rev above it */
    gw_buf *subscribed;      /* the encoded Subscribed, until written */
    int subscribed_sent;
    long charged_frames, charged_bytes;
    lws_dll2_t rlink; /* room->subs */
} gw_sub;

/* A user present in a room through this gateway: how many of its
 * sessions watch it. The core hears "here" on the first and "gone" after
 * the last, so it counts each user once however many tabs they have. */
typedef struct here_user {
    lws_dll2_t link; /* gw_room.here */
    unsigned sessions;
    char id[RULES_AUTHOR_ID_MAX + 1];
} here_user;

static uint64_t next_pos(const gw_room *r)
{
    return r->first_pos + ring_len(&r->ents);
}

static gw_event *ent_at(const gw_room *r, uint64_t pos)
{
    assert(pos >= r->first_pos && pos < next_pos(r));
    return *(gw_event **)ring_at(&r->ents, (size_t)(pos - r->first_pos));
}

/* Resume from the ring covers rev > this: the ring holds more entries
 * than --ring when the send bound is larger, but only the last --ring
 * count for resume. */
static uint64_t resume_lo(const gw_room *r)
{
    size_t keep = r->srv->cfg.ring_size;
    if (ring_len(&r->ents) > keep)
        return ent_at(r, next_pos(r) - keep - 1)->rev;
    return r->ring_lo;
}

Parley__V1__EventType gw_event_type_of(const Parley__V1__Message *m)
{
    if (m->deleted) return PARLEY__V1__EVENT_TYPE__EVENT_TYPE_DELETED;
    if (m->edited_at_ms != 0) return PARLEY__V1__EVENT_TYPE__EVENT_TYPE_EDITED;
    return PARLEY__V1__EVENT_TYPE__EVENT_TYPE_CREATED;
}

static size_t room_hash(const char *name)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h % GW_ROOM_BUCKETS;
}

parley_err gw_rooms_new(gw_server *s)
{
    s->rooms = calloc(1, sizeof *s->rooms);
    return s->rooms ? PARLEY_OK : PARLEY_ERR_INTERNAL;
}

size_t gw_rooms_count(const gw_server *s)
{
    return s->rooms ? (size_t)s->rooms->all.count : 0;
}

static gw_room *room_find(gw_server *s, const char *name)
{
    for (gw_room *r = s->rooms->tab[room_hash(name)]; r; r = r->hnext)
        if (strcmp(r->name, name) == 0) return r;
    return NULL;
}

/* ---- events ---- */

static void event_free(gw_event *e)
{
    for (int j = 0; j < 2; j++)
        for (int k = 0; k < 2; k++) gw_buf_unref(e->enc[j][k]);
    free(e);
}

/* e as a frame for a subscriber in format json with the replay flag: made
 * from the core's bytes on first need, then kept. */
static gw_buf *event_enc(gw_server *s, gw_event *e, int json, int replay)
{
    gw_buf *b = e->enc[json][replay];
    if (b) {
        if (!json && replay == e->core_replay && !e->passed) {
            e->passed = 1;
            s->m.passthrough++;
        }
        return b;
    }
    gw_buf *core = e->enc[0][e->core_replay];
    Parley__V1__ServerFrame *f =
        (Parley__V1__ServerFrame *)protobuf_c_message_unpack(
            &parley__v1__server_frame__descriptor, NULL, core->len, core->data);
    if (!f) return NULL;
    f->event->replay = replay;
    b = e->enc[json][replay] = gw_buf_encode(&f->base, json);
    protobuf_c_message_free_unpacked(&f->base, NULL);
    if (b && !replay) s->m.encodes[json]++;
    return b;
}

/* ---- subscriptions ---- */

static void room_idle(lws_sorted_usec_list_t *sul);
static void room_destroy(gw_server *s, gw_room *r);

static void sub_discharge(gw_sub *sub)
{
    if (sub->charged_frames || sub->charged_bytes)
        gw_conn_charge(sub->conn, -sub->charged_frames, -sub->charged_bytes, 0);
    sub->charged_frames = sub->charged_bytes = 0;
}

/* Tells the core, on the room's link with the user's token, that the user
 * is here or gone. */
static void presence_say(gw_room *r, const char *token, int here)
{
    if (!r->link || !token) return;
    Parley__V1__ClientFrame cf = PARLEY__V1__CLIENT_FRAME__INIT;
    Parley__V1__PresenceUpdate pu = PARLEY__V1__PRESENCE_UPDATE__INIT;
    cf.kind_case = PARLEY__V1__CLIENT_FRAME__KIND_PRESENCE;
    cf.presence = &pu;
    pu.room = r->name;
    pu.here = here;
    gw_link_send(r->link, &cf, token);
}

/* sub's user is here (once per session). */
static void sub_here(gw_sub *sub)
{
    gw_room *r = sub->room;
    const char *user = gw_session_user(sub->conn);
    if (sub->here || !user) return;
    here_user *h = NULL;
    lws_start_foreach_dll(struct lws_dll2 *, d, lws_dll2_get_head(&r->here))
    {
        here_user *x = lws_container_of(d, here_user, link);
        if (strcmp(x->id, user) == 0) h = x;
    }
    lws_end_foreach_dll(d);
    if (!h) {
        if (!(h = calloc(1, sizeof *h))) return;
        snprintf(h->id, sizeof h->id, "%s", user);
        lws_dll2_add_tail(&h->link, &r->here);
    }
    sub->here = 1;
    if (h->sessions++ == 0) presence_say(r, gw_session_token(sub->conn), 1);
}

/* sub's session leaves the room: its user is gone after the last one. */
static void sub_gone(gw_sub *sub)
{
    gw_room *r = sub->room;
    const char *user = gw_session_user(sub->conn);
    if (!sub->here || !r || !user) return;
    sub->here = 0;
    lws_start_foreach_dll_safe(struct lws_dll2 *, d, d1,
                               lws_dll2_get_head(&r->here))
    {
        here_user *x = lws_container_of(d, here_user, link);
        if (strcmp(x->id, user) == 0 && --x->sessions == 0) {
            /* (a token that expired meanwhile is refused, and the core
             * keeps the user until the link ends) */
            presence_say(r, gw_session_token(sub->conn), 0);
            lws_dll2_remove(&x->link);
            free(x);
        }
    }
    lws_end_foreach_dll_safe(d, d1);
}

static void sub_remove(gw_sub *sub)
{
    gw_room *r = sub->room;
    sub_gone(sub);
    sub_discharge(sub);
    gw_conn_remove_feed(sub->conn, &sub->feed);
    if (r) {
        gw_server *s = r->srv;
        lws_dll2_remove(&sub->rlink);
        if (r->subs.count == 0 && s->ctx)
            lws_sul_schedule(s->ctx, 0, &r->sul_idle, room_idle,
                             (lws_usec_t)s->cfg.room_linger_s * LWS_US_PER_SEC);
    }
    if (sub->checked)
        protobuf_c_message_free_unpacked(&sub->checked->base, NULL);
    sub->h->p = NULL;
    gw_handle_unref(sub->h);
    gw_buf_unref(sub->subscribed);
    free(sub->token);
    free(sub);
}

/* Adds the Subscribed marker to w once; 0, or -1 if w is full. */
static int add_subscribed(gw_sub *sub, gw_writer *w)
{
    if (sub->subscribed_sent) return 0;
    if (gw_writer_add(w, sub->subscribed->data, sub->subscribed->len))
        return -1;
    sub->subscribed_sent = 1;
    return 0;
}

/* gw_feed.pull: the ring from the tail, the Subscribed marker in place. */
static int sub_pull(gw_feed *fd, gw_writer *w)
{
    gw_sub *sub = (gw_sub *)fd;
    gw_conn *c = sub->conn;
    /* The connection pulls every feed when it writes anything (a pong, an
     * ack): a subscription still being checked has no room yet. */
    if (sub->state != SUB_RING || gw_conn_closing(c)) return 0;
    gw_room *r = sub->room;
    assert(r);
    gw_server *s = r->srv;
    if (sub->tail < r->first_pos) {
        /* overtaken: more waited than the bound allows */
        s->m.drops_slow++;
        gw_conn_close(c, GW_CLOSE_SLOW, 0);
        return 0;
    }
    int json = gw_conn_json(c);
    while (sub->tail < next_pos(r)) {
        gw_event *e = ent_at(r, sub->tail);
        if (e->rev > sub->subscribed_rev && add_subscribed(sub, w) != 0)
            return 1;
        if (e->rev > sub->last_sent) {
            int replay = e->rev <= sub->subscribed_rev;
            gw_buf *b = event_enc(s, e, json, replay);
            if (!b) {
                gw_conn_close(c, GW_CLOSE_SLOW, 0);
                return 0;
            }
            if (gw_writer_add(w, b->data, b->len)) return 1;
            sub->last_sent = e->rev;
        }
        sub->tail++;
        sub->charged_frames--;
        sub->charged_bytes -= (long)e->len;
        gw_conn_charge(c, -1, -(long)e->len, 0);
    }
    return add_subscribed(sub, w) != 0;
}

/* gw_feed.written: the Subscribed marker went out, its buffer may go. */
static void sub_written(gw_feed *fd)
{
    gw_sub *sub = (gw_sub *)fd;
    if (sub->subscribed_sent && sub->subscribed) {
        gw_buf_unref(sub->subscribed);
        sub->subscribed = NULL;
    }
}

static void sub_page(gw_server *s, gw_sub *sub);

/* gw_feed.drained: a History replay waiting for room goes on. */
static void sub_drained(gw_feed *fd)
{
    gw_sub *sub = (gw_sub *)fd;
    if (sub->page_wait) {
        sub->page_wait = 0;
        sub_page(sub->room->srv, sub);
    }
}

/* The first ring position with rev > after (revs grow along the ring). */
static uint64_t ring_find(const gw_room *r, uint64_t after)
{
    uint64_t lo = r->first_pos, hi = next_pos(r);
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (ent_at(r, mid)->rev <= after)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* From here the subscription pulls from the ring: what it has not sent up
 * to the head as replay, then Subscribed{head}, then live. */
static void sub_start_ring(gw_sub *sub)
{
    gw_room *r = sub->room;
    Parley__V1__ServerFrame f = PARLEY__V1__SERVER_FRAME__INIT;
    Parley__V1__Subscribed sd = PARLEY__V1__SUBSCRIBED__INIT;
    Parley__V1__Room room = PARLEY__V1__ROOM__INIT;
    f.request_id = sub->request_id;
    f.kind_case = PARLEY__V1__SERVER_FRAME__KIND_SUBSCRIBED;
    f.subscribed = &sd;
    sd.room = &room;
    const Parley__V1__Room *mine = sub->checked ? sub->checked->room : NULL;
    if (mine) {
        /* the settings and the user's own view, as the core answered */
        room.title = mine->title;
        room.topic = mine->topic;
        room.visibility = mine->visibility;
        room.mode = mine->mode;
        room.me = mine->me;
    }
    room.name = r->name;
    room.head_seq = r->head_seq;
    room.head_rev = r->head_rev;
    room.max_body_bytes = r->max_body;
    sub->subscribed = gw_buf_encode(&f.base, gw_conn_json(sub->conn));
    /* The core's answer served this Subscribed only: not kept for the
     * subscription's life (a few hundred bytes per idle session). */
    if (sub->checked) {
        protobuf_c_message_free_unpacked(&sub->checked->base, NULL);
        sub->checked = NULL;
    }
    if (!sub->subscribed) {
        gw_conn_close(sub->conn, GW_CLOSE_SLOW, 0);
        return;
    }
    sub->subscribed_rev = r->head_rev;
    sub->tail = ring_find(r, sub->last_sent);
    long frames = 0, bytes = 0;
    for (uint64_t p = sub->tail; p < next_pos(r); p++) {
        frames++;
        bytes += (long)ent_at(r, p)->len;
    }
    /* the backlog counts against the bound from now on, as live events do,
     * but does not by itself cut the subscriber */
    gw_conn_charge(sub->conn, frames, bytes, 0);
    sub->charged_frames += frames;
    sub->charged_bytes += bytes;
    sub->state = SUB_RING;
    /* Who is here, as the core last said (changes follow). */
    gw_buf *pres = r->presence[gw_conn_json(sub->conn)];
    if (pres && gw_session_wants_presence(sub->conn))
        gw_conn_send(sub->conn, pres);
    gw_conn_want_write(sub->conn);
}

static void page_done(gw_server *s, void *ud, parley_err e, const char *detail,
                      int unavailable, ProtobufCMessage *resp)
{
    gw_handle *h = ud;
    gw_sub *sub = h->p;
    gw_handle_unref(h);
    if (!sub) {
        if (resp) protobuf_c_message_free_unpacked(resp, NULL);
        return;
    }
    gw_conn *c = sub->conn;
    if (e != PARLEY_OK) {
        if (unavailable)
            gw_conn_close(c, GW_CLOSE_UPSTREAM, 0);
        else
            gw_conn_send_error(c, sub->request_id, e, detail, 0);
        sub_remove(sub);
        return;
    }
    Parley__V1__ListMessagesResponse *lr =
        (Parley__V1__ListMessagesResponse *)resp;
    uint64_t before = sub->last_sent;
    for (size_t i = 0; i < lr->n_messages; i++) {
        Parley__V1__Message *m = lr->messages[i];
        if (m->rev <= sub->last_sent) continue;
        Parley__V1__ServerFrame f = PARLEY__V1__SERVER_FRAME__INIT;
        Parley__V1__Event ev = PARLEY__V1__EVENT__INIT;
        f.kind_case = PARLEY__V1__SERVER_FRAME__KIND_EVENT;
        f.event = &ev;
        ev.type = gw_event_type_of(m);
        ev.message = m;
        ev.replay = 1;
        if (gw_conn_send_msg(c, &f.base) < 0) break;
        sub->last_sent = m->rev;
    }
    int more = lr->has_more ||
               (sub->last_sent < resume_lo(sub->room) && ++sub->pages < 64);
    protobuf_c_message_free_unpacked(resp, NULL);
    if (gw_conn_closing(c)) return;
    if (more && sub->last_sent > before) {
        /* Replay at the pace the client reads. */
        if (gw_conn_busy(c))
            sub->page_wait = 1;
        else
            sub_page(s, sub);
    } else {
        free(sub->token);
        sub->token = NULL;
        sub_start_ring(sub);
    }
}

static void sub_page(gw_server *s, gw_sub *sub)
{
    Parley__V1__ListMessagesRequest req =
        PARLEY__V1__LIST_MESSAGES_REQUEST__INIT;
    req.room = sub->room->name;
    req.cursor_case = PARLEY__V1__LIST_MESSAGES_REQUEST__CURSOR_AFTER_REV;
    req.after_rev = sub->last_sent;
    req.limit = (uint32_t)s->cfg.replay_page;
    gw_handle *h = gw_handle_ref(sub->h);
    parley_err e = gw_up_unary(
        s, &parley_v1_History_service.methods[PARLEY_V1_HISTORY_LIST_MESSAGES],
        &req.base, sub->token, page_done, h);
    if (e != PARLEY_OK) {
        gw_handle_unref(h);
        gw_conn_close(sub->conn, GW_CLOSE_UPSTREAM, 0);
        sub_remove(sub);
    }
}

static void sub_start(gw_server *s, gw_sub *sub)
{
    if (sub->last_sent >= resume_lo(sub->room)) {
        s->m.replay_ring++;
        free(sub->token);
        sub->token = NULL;
        sub_start_ring(sub);
    } else {
        s->m.replay_history++;
        sub->state = SUB_PAGING;
        sub_page(s, sub);
    }
}

/* ---- rooms ---- */

static void room_idle(lws_sorted_usec_list_t *sul)
{
    gw_room *r = lws_container_of(sul, gw_room, sul_idle);
    if (r->subs.count == 0) room_destroy(r->srv, r);
}

static void room_destroy(gw_server *s, gw_room *r)
{
    struct lws_dll2 *d;
    while ((d = lws_dll2_get_head(&r->subs)) != NULL)
        sub_remove(lws_container_of(d, gw_sub, rlink));
    lws_sul_cancel(&r->sul_idle);
    gw_call_forget(r->call);
    if (r->link) {
        /* the link stays for other rooms: leave this one there (after a
         * Subscribe still on its way, the core takes both in order) */
        Parley__V1__ClientFrame cf = PARLEY__V1__CLIENT_FRAME__INIT;
        Parley__V1__Unsubscribe us = PARLEY__V1__UNSUBSCRIBE__INIT;
        cf.kind_case = PARLEY__V1__CLIENT_FRAME__KIND_UNSUBSCRIBE;
        cf.unsubscribe = &us;
        us.room = r->name;
        gw_link_call(r->link, &cf, NULL, NULL, NULL);
    }
    gw_event *e;
    while (ring_pop(&r->ents, &e) == 0) event_free(e);
    ring_free(&r->ents);
    while ((d = lws_dll2_get_head(&r->here)) != NULL) {
        lws_dll2_remove(d);
        free(lws_container_of(d, here_user, link));
    }
    gw_buf_unref(r->presence[0]);
    gw_buf_unref(r->presence[1]);
    for (gw_room **pp = &s->rooms->tab[room_hash(r->name)]; *pp;
         pp = &(*pp)->hnext) {
        if (*pp == r) {
            *pp = r->hnext;
            break;
        }
    }
    lws_dll2_remove(&r->link_all);
    free(r);
}

static void ring_drop_oldest(gw_room *r)
{
    gw_event *old;
    ring_pop(&r->ents, &old);
    r->ring_lo = old->rev;
    r->first_pos++;
    event_free(old);
}

/* Keeps the ring at its size (max(--ring, --sendq-frames)) but never drops
 * an entry a live tail has not passed: a burst that arrives in one drain
 * is bigger than the ring at times, and its subscribers have not had a
 * chance to write yet. min_tail: the oldest position still needed. */
static void ring_trim(gw_room *r, uint64_t min_tail)
{
    while (ring_len(&r->ents) > r->keep && r->first_pos < min_tail)
        ring_drop_oldest(r);
}

/* Adds an event to the ring; its position, or -1 if it was not new (rev
 * <= head) or out of memory. */
static int ring_add(gw_room *r, Parley__V1__ServerFrame *f, gw_buf *bytes)
{
    const Parley__V1__Message *m = f->event->message;
    if (m->rev <= r->head_rev) return -1;
    gw_event *e = calloc(1, sizeof *e);
    if (!e) return -1;
    e->rev = m->rev;
    e->len = bytes->len;
    e->core_replay = f->event->replay ? 1 : 0;
    e->enc[0][e->core_replay] = gw_buf_ref(bytes);
    if (ring_is_full(&r->ents)) ring_drop_oldest(r);
    if (ring_push(&r->ents, &e) != 0) {
        event_free(e);
        return -1;
    }
    r->head_rev = m->rev;
    if (m->seq > r->head_seq) r->head_seq = m->seq;
    return 0;
}

/* The upstream subscription failed or ended: waiting subscriptions get
 * the core's refusal; connections that were live are closed 4503 so they
 * reconnect and resume. */
static void room_fail(gw_server *s, gw_room *r, parley_err e,
                      const char *detail, int unavailable)
{
    struct lws_dll2 *d;
    while ((d = lws_dll2_get_head(&r->subs)) != NULL) {
        gw_sub *sub = lws_container_of(d, gw_sub, rlink);
        if (sub->state == SUB_WAIT && !unavailable && e != PARLEY_ERR_INTERNAL)
            gw_conn_send_error(sub->conn, sub->request_id, e, detail, 0);
        else
            gw_conn_close(sub->conn, GW_CLOSE_UPSTREAM, 1);
        sub_remove(sub);
    }
    room_destroy(s, r);
}

void gw_rooms_on_event(gw_server *s, gw_link *l, Parley__V1__ServerFrame *f,
                       gw_buf *bytes)
{
    if (!s->rooms) return;
    gw_room *r = room_find(s, f->event->message->room);
    /* An event of another link (a room re-subscribed elsewhere), or, while
     * the room's replay runs, a live event of an older subscription on the
     * same link: not this subscription's, dropped. While the room moves,
     * its new core's replay continues the ring (ring_add keeps each rev
     * once). */
    if (!r || r->link != l ||
        (!r->moving &&
         ((!r->live && !f->event->replay) || (r->live && f->event->replay))))
        return;
    if (ring_add(r, f, bytes) != 0) return;
    long len = (long)bytes->len;
    uint64_t min_tail = next_pos(r);
    lws_start_foreach_dll(struct lws_dll2 *, d, lws_dll2_get_head(&r->subs))
    {
        gw_sub *sub = lws_container_of(d, gw_sub, rlink);
        if (r->live && sub->state == SUB_RING) {
            sub->charged_frames++;
            sub->charged_bytes += len;
            if (gw_conn_charge(sub->conn, 1, len, 1) == 0) {
                gw_conn_want_write(sub->conn);
                if (sub->tail < min_tail) min_tail = sub->tail;
            }
        }
    }
    lws_end_foreach_dll(d);
    ring_trim(r, min_tail);
}

static void room_subscribed(gw_server *s, void *ud, Parley__V1__ServerFrame *f)
{
    gw_room *r = ud;
    r->call = NULL;
    if (!f) return; /* the link went down: gw_rooms_on_link_down follows */
    if (f->kind_case == PARLEY__V1__SERVER_FRAME__KIND_ERROR) {
        parley_err e =
            f->error ? (parley_err)f->error->code : PARLEY_ERR_INTERNAL;
        room_fail(s, r, e, f->error && f->error->detail ? f->error->detail : "",
                  0);
        return;
    }
    if (f->kind_case != PARLEY__V1__SERVER_FRAME__KIND_SUBSCRIBED) {
        room_fail(s, r, PARLEY_ERR_INTERNAL, "unexpected answer", 1);
        return;
    }
    if (f->subscribed && f->subscribed->room) {
        const Parley__V1__Room *rm = f->subscribed->room;
        if (rm->head_rev < r->ring_lo) {
            /* asked for more than exists: the ring starts at the head */
            r->ring_lo = rm->head_rev;
            r->head_rev = rm->head_rev;
        } else if (rm->head_rev > r->head_rev) {
            r->head_rev = rm->head_rev;
        }
        if (rm->head_seq > r->head_seq) r->head_seq = rm->head_seq;
        r->max_body = rm->max_body_bytes;
    }
    r->live = 1;
    lws_start_foreach_dll_safe(struct lws_dll2 *, d, d1,
                               lws_dll2_get_head(&r->subs))
    {
        gw_sub *sub = lws_container_of(d, gw_sub, rlink);
        if (sub->state == SUB_WAIT) sub_start(s, sub);
    }
    lws_end_foreach_dll_safe(d, d1);
}

/* The answer to a moved room's Subscribe on its new core. */
static void room_moved(gw_server *s, void *ud, Parley__V1__ServerFrame *f)
{
    gw_room *r = ud;
    r->call = NULL;
    if (!f) return; /* that link went down too: the room moves again */
    if (f->kind_case != PARLEY__V1__SERVER_FRAME__KIND_SUBSCRIBED) {
        room_fail(s, r,
                  f->kind_case == PARLEY__V1__SERVER_FRAME__KIND_ERROR &&
                          f->error
                      ? (parley_err)f->error->code
                      : PARLEY_ERR_INTERNAL,
                  "", 1);
        return;
    }
    /* Every rev up to the core's head came as replay before this. */
    if (f->subscribed && f->subscribed->room) {
        const Parley__V1__Room *rm = f->subscribed->room;
        if (rm->head_seq > r->head_seq) r->head_seq = rm->head_seq;
        r->max_body = rm->max_body_bytes; /* the new core's limit applies */
    }
    r->moving = 0;
}

/* Tells r's (new) core who is here through this gateway: each user once,
 * with the token of one of its sessions. A core hears "here" only on a
 * user's first session, and the one it heard it from is gone with its
 * link, so a room that moved would otherwise count none of them. */
static void room_say_here(gw_room *r)
{
    lws_start_foreach_dll(struct lws_dll2 *, d, lws_dll2_get_head(&r->here))
    {
        here_user *h = lws_container_of(d, here_user, link);
        const char *token = NULL;
        lws_start_foreach_dll(struct lws_dll2 *, e, lws_dll2_get_head(&r->subs))
        {
            gw_sub *sub = lws_container_of(e, gw_sub, rlink);
            const char *user = gw_session_user(sub->conn);
            if (!token && sub->here && user && strcmp(user, h->id) == 0)
                token = gw_session_token(sub->conn);
        }
        lws_end_foreach_dll(e);
        presence_say(r, token, 1);
    }
    lws_end_foreach_dll(d);
}

/* Subscribes r again on its (new) core's link, from the last rev it has.
 * With no other core usable (a single node, or every core gone) its
 * sessions are closed 4503 as before: they reconnect and resume. */
static void room_move(gw_server *s, gw_room *r)
{
    assert(!r->link && !r->call);
    r->link = gw_up_link(s, r->name);
    Parley__V1__ClientFrame cf = PARLEY__V1__CLIENT_FRAME__INIT;
    Parley__V1__Subscribe sub = PARLEY__V1__SUBSCRIBE__INIT;
    cf.kind_case = PARLEY__V1__CLIENT_FRAME__KIND_SUBSCRIBE;
    cf.subscribe = &sub;
    sub.room = r->name;
    sub.resume_after_rev = r->head_rev;
    r->call = r->link ? gw_link_call(r->link, &cf, NULL,
                                     r->live ? room_moved : room_subscribed, r)
                      : NULL;
    if (!r->call) {
        r->link = NULL;
        room_fail(s, r, PARLEY_ERR_INTERNAL, "upstream core unavailable", 1);
        return;
    }
    r->moving = r->live;
    room_say_here(r);
    s->m.rooms_moved++;
}

void gw_rooms_on_link_down(gw_server *s, gw_link *l)
{
    if (!s->rooms || s->shutting_down) return; /* the rooms go anyway */
    lws_start_foreach_dll_safe(struct lws_dll2 *, d, d1,
                               lws_dll2_get_head(&s->rooms->all))
    {
        gw_room *r = lws_container_of(d, gw_room, link_all);
        if (r->link == l) {
            /* its Subscribe, if one was on its way, was answered NULL */
            assert(!r->call);
            r->link = NULL; /* nothing more is sent on it */
            room_move(s, r);
        }
    }
    lws_end_foreach_dll_safe(d, d1);
}

gw_link *gw_rooms_link(gw_server *s, const char *room)
{
    gw_room *r = s->rooms ? room_find(s, room) : NULL;
    return r && r->link ? r->link : gw_up_link(s, room);
}

static gw_room *room_new(gw_server *s, const char *name, uint64_t resume)
{
    gw_room *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    snprintf(r->name, sizeof r->name, "%s", name);
    r->keep = (s->cfg.ring_size > s->cfg.sendq_frames ? s->cfg.ring_size
                                                      : s->cfg.sendq_frames) +
              1;
    ring_init(&r->ents, sizeof(gw_event *), GW_RING_MAX);
    r->srv = s;
    r->ring_lo = r->head_rev = resume;
    r->link = gw_up_link(s, r->name);
    Parley__V1__ClientFrame cf = PARLEY__V1__CLIENT_FRAME__INIT;
    Parley__V1__Subscribe sub = PARLEY__V1__SUBSCRIBE__INIT;
    cf.kind_case = PARLEY__V1__CLIENT_FRAME__KIND_SUBSCRIBE;
    cf.subscribe = &sub;
    sub.room = r->name;
    sub.resume_after_rev = resume;
    r->call =
        r->link ? gw_link_call(r->link, &cf, NULL, room_subscribed, r) : NULL;
    if (!r->call) {
        free(r);
        return NULL;
    }
    size_t hb = room_hash(r->name);
    r->hnext = s->rooms->tab[hb];
    s->rooms->tab[hb] = r;
    lws_dll2_add_tail(&r->link_all, &s->rooms->all);
    return r;
}

/* c's subscription to room (being checked or attached), or NULL. */
static gw_sub *conn_sub(gw_conn *c, const char *room)
{
    for (gw_feed *fd = gw_conn_next_feed(c, NULL); fd;
         fd = gw_conn_next_feed(c, fd)) {
        if (fd->pull != sub_pull) continue;
        gw_sub *sub = (gw_sub *)fd;
        if (strcmp(sub->want, room) == 0) return sub;
    }
    return NULL;
}

/* ---- access: the core's word for each user ---- */

/* Asks the core, with the user's token, whether sub's user may read its
 * room: History.GetRoom answers the room with the user's view, or the
 * refusal. done runs with sub (NULL if it went meanwhile). */
typedef void (*check_fn)(gw_server *s, gw_sub *sub, parley_err e,
                         parley_rule rule, const char *detail, int unavailable,
                         Parley__V1__GetRoomResponse *resp);

typedef struct check_ctx {
    gw_handle *h;
    check_fn done;
} check_ctx;

static void check_answer(gw_server *s, void *ud, parley_err e,
                         const char *detail, int unavailable,
                         ProtobufCMessage *resp)
{
    check_ctx *cc = ud;
    gw_sub *sub = cc->h->p;
    if (sub) {
        cc->done(s, sub, e, gw_up_unary_rule(s), detail, unavailable,
                 (Parley__V1__GetRoomResponse *)resp);
        resp = NULL; /* done owns it */
    }
    if (resp) protobuf_c_message_free_unpacked(resp, NULL);
    gw_handle_unref(cc->h);
    free(cc);
}

static int check_access(gw_server *s, gw_sub *sub, check_fn done)
{
    const char *token = gw_session_token(sub->conn);
    check_ctx *cc = token ? malloc(sizeof *cc) : NULL;
    if (!cc) return -1;
    cc->h = gw_handle_ref(sub->h);
    cc->done = done;
    Parley__V1__GetRoomRequest req = PARLEY__V1__GET_ROOM_REQUEST__INIT;
    req.name = sub->want;
    if (gw_up_unary(
            s, &parley_v1_History_service.methods[PARLEY_V1_HISTORY_GET_ROOM],
            &req.base, token, check_answer, cc) != PARLEY_OK) {
        gw_handle_unref(cc->h);
        free(cc);
        return -1;
    }
    s->m.access_checks++;
    return 0;
}

/* Ends sub with the core's refusal: the error on its subscribe's request
 * id (then, if it was attached, Unsubscribed). */
static void sub_refuse(gw_server *s, gw_sub *sub, parley_err e,
                       parley_rule rule, const char *detail)
{
    int attached = sub->room != NULL;
    char room[RULES_ROOM_MAX + 1];
    snprintf(room, sizeof room, "%s", sub->want);
    gw_conn_send_error_rule(sub->conn, sub->request_id, e, rule, detail, 0);
    if (attached) {
        Parley__V1__ServerFrame f = PARLEY__V1__SERVER_FRAME__INIT;
        Parley__V1__Unsubscribed u = PARLEY__V1__UNSUBSCRIBED__INIT;
        f.request_id = sub->request_id;
        f.kind_case = PARLEY__V1__SERVER_FRAME__KIND_UNSUBSCRIBED;
        f.unsubscribed = &u;
        u.room = room;
        gw_conn_send_msg(sub->conn, &f.base);
    }
    s->m.access_refused++;
    sub_remove(sub);
}

/* The first check's answer: attach, or refuse. */
static void checked_first(gw_server *s, gw_sub *sub, parley_err e,
                          parley_rule rule, const char *detail, int unavailable,
                          Parley__V1__GetRoomResponse *resp)
{
    gw_conn *c = sub->conn;
    if (unavailable) {
        if (resp) protobuf_c_message_free_unpacked(&resp->base, NULL);
        gw_conn_close(c, GW_CLOSE_UPSTREAM, 0);
        sub_remove(sub);
        return;
    }
    if (e != PARLEY_OK) {
        if (resp) protobuf_c_message_free_unpacked(&resp->base, NULL);
        sub_refuse(s, sub, e, rule, detail);
        return;
    }
    sub->checked = resp;
    gw_room *r = room_find(s, sub->want);
    if (!r && !(r = room_new(s, sub->want, sub->last_sent))) {
        gw_conn_close(c, GW_CLOSE_UPSTREAM, 0);
        sub_remove(sub);
        return;
    }
    sub->room = r;
    sub->state = SUB_WAIT;
    lws_dll2_add_tail(&sub->rlink, &r->subs);
    lws_sul_cancel(&r->sul_idle);
    sub_here(sub);
    if (r->live) sub_start(s, sub);
}

/* A check again, after a room event: refused ones end, the others stay. */
static void checked_again(gw_server *s, gw_sub *sub, parley_err e,
                          parley_rule rule, const char *detail, int unavailable,
                          Parley__V1__GetRoomResponse *resp)
{
    if (resp) protobuf_c_message_free_unpacked(&resp->base, NULL);
    /* Unreachable: the core also ends the link's subscription if the room
     * went; otherwise the subscription stays until the core says no. */
    if (unavailable || e == PARLEY_OK) return;
    if (e == PARLEY_ERR_PERMISSION_DENIED || e == PARLEY_ERR_ROOM_NOT_FOUND ||
        e == PARLEY_ERR_UNAUTHENTICATED)
        sub_refuse(s, sub, e, rule, detail);
}

/* Presence: kept for the subscriptions that start later, and sent to
 * those that are live. */
static void room_presence(gw_room *r, Parley__V1__ServerFrame *f)
{
    for (int json = 0; json < 2; json++) {
        gw_buf_unref(r->presence[json]);
        r->presence[json] = gw_buf_encode(&f->base, json);
    }
    lws_start_foreach_dll(struct lws_dll2 *, d, lws_dll2_get_head(&r->subs))
    {
        gw_sub *sub = lws_container_of(d, gw_sub, rlink);
        gw_buf *b = r->presence[gw_conn_json(sub->conn)];
        if (sub->state == SUB_RING && b && gw_session_wants_presence(sub->conn))
            gw_conn_send(sub->conn, b);
    }
    lws_end_foreach_dll(d);
}

/* Typing: to every live session of the room but the typist's. */
static void room_typing(gw_room *r, Parley__V1__ServerFrame *f)
{
    gw_buf *enc[2] = {NULL, NULL};
    const char *typist = f->typing->user->id;
    /* (no `continue` in lws's list loops: it would skip the step) */
    lws_start_foreach_dll(struct lws_dll2 *, d, lws_dll2_get_head(&r->subs))
    {
        gw_sub *sub = lws_container_of(d, gw_sub, rlink);
        const char *user = gw_session_user(sub->conn);
        int json = gw_conn_json(sub->conn);
        int to = sub->state == SUB_RING && gw_session_wants_typing(sub->conn) &&
                 !(user && typist && !strcmp(user, typist));
        if (to && !enc[json]) enc[json] = gw_buf_encode(&f->base, json);
        if (to && enc[json]) gw_conn_send(sub->conn, enc[json]);
    }
    lws_end_foreach_dll(d);
    gw_buf_unref(enc[0]);
    gw_buf_unref(enc[1]);
}

void gw_rooms_typing(gw_server *s, gw_conn *c, const char *room,
                     const char *token)
{
    gw_sub *sub = conn_sub(c, room);
    if (!sub || sub->state != SUB_RING) return; /* not watching: dropped */
    lws_usec_t now = lws_now_usecs();
    /* One a second from a session is plenty; the core passes one per two
     * seconds per user on. */
    if (sub->typing_us && now - sub->typing_us < LWS_US_PER_SEC) return;
    sub->typing_us = now;
    Parley__V1__ClientFrame cf = PARLEY__V1__CLIENT_FRAME__INIT;
    Parley__V1__Typing t = PARLEY__V1__TYPING__INIT;
    cf.kind_case = PARLEY__V1__CLIENT_FRAME__KIND_TYPING;
    cf.typing = &t;
    t.room = sub->room->name;
    if (sub->room->link) gw_link_send(sub->room->link, &cf, token);
    (void)s;
}

void gw_rooms_on_room_frame(gw_server *s, gw_link *l,
                            Parley__V1__ServerFrame *f)
{
    if (!s->rooms) return;
    if (f->kind_case != PARLEY__V1__SERVER_FRAME__KIND_ROOM_EVENT) {
        const char *name =
            f->kind_case == PARLEY__V1__SERVER_FRAME__KIND_PRESENCE
                ? f->presence->room
                : f->typing->room;
        gw_room *r = name ? room_find(s, name) : NULL;
        if (!r || r->link != l) return;
        if (f->kind_case == PARLEY__V1__SERVER_FRAME__KIND_PRESENCE)
            room_presence(r, f);
        else
            room_typing(r, f);
        return;
    }
    const Parley__V1__ModerationAction *a = f->room_event->action;
    gw_room *r = a->room ? room_find(s, a->room) : NULL;
    if (!r || r->link != l) return;
    gw_buf *enc[2] = {NULL, NULL};
    lws_start_foreach_dll_safe(struct lws_dll2 *, d, d1,
                               lws_dll2_get_head(&r->subs))
    {
        gw_sub *sub = lws_container_of(d, gw_sub, rlink);
        int json = gw_conn_json(sub->conn);
        if (!enc[json]) enc[json] = gw_buf_encode(&f->base, json);
        if (enc[json]) gw_conn_send(sub->conn, enc[json]);
    }
    lws_end_foreach_dll_safe(d, d1);
    gw_buf_unref(enc[0]);
    gw_buf_unref(enc[1]);
    s->m.room_events++;

    switch (a->kind) {
    case PARLEY__V1__ACTION_KIND__ACTION_KIND_DELETE_ROOM: {
        struct lws_dll2 *d;
        while ((d = lws_dll2_get_head(&r->subs)) != NULL)
            sub_refuse(s, lws_container_of(d, gw_sub, rlink),
                       PARLEY_ERR_ROOM_NOT_FOUND, PARLEY_RULE_NONE,
                       "the room was deleted");
        room_destroy(s, r);
        break;
    }
    case PARLEY__V1__ACTION_KIND__ACTION_KIND_REMOVE:
    case PARLEY__V1__ACTION_KIND__ACTION_KIND_REMOVE_MEMBER:
    case PARLEY__V1__ACTION_KIND__ACTION_KIND_SET_VISIBILITY:
        lws_start_foreach_dll_safe(struct lws_dll2 *, d, d1,
                                   lws_dll2_get_head(&r->subs))
        {
            gw_sub *sub = lws_container_of(d, gw_sub, rlink);
            const char *user = gw_session_user(sub->conn);
            int concerned =
                a->kind ==
                    PARLEY__V1__ACTION_KIND__ACTION_KIND_SET_VISIBILITY ||
                (user && a->target_user_id &&
                 strcmp(user, a->target_user_id) == 0);
            if (concerned && check_access(s, sub, checked_again) != 0)
                sub_refuse(s, sub, PARLEY_ERR_INTERNAL, PARLEY_RULE_NONE,
                           "access could not be checked again");
        }
        lws_end_foreach_dll_safe(d, d1);
        break;
    default: break;
    }
}

void gw_rooms_subscribe(gw_server *s, gw_conn *c, uint64_t request_id,
                        const Parley__V1__Subscribe *req, const char *token)
{
    parley_err e = rules_room(req->room);
    if (e != PARLEY_OK) {
        gw_conn_send_error(c, request_id, e, NULL, 0);
        return;
    }
    if (conn_sub(c, req->room)) {
        gw_conn_send_error(c, request_id, PARLEY_ERR_SUBSCRIPTION_STATE,
                           "already subscribed to this room", 0);
        return;
    }
    int n = 0;
    for (gw_feed *fd = gw_conn_next_feed(c, NULL); fd;
         fd = gw_conn_next_feed(c, fd))
        n += fd->pull == sub_pull;
    if (n >= s->cfg.max_rooms) {
        gw_conn_send_error(c, request_id, PARLEY_ERR_RESOURCE_EXHAUSTED,
                           "this session follows as many rooms as it may", 0);
        return;
    }
    gw_sub *sub = calloc(1, sizeof *sub);
    if (!sub || !(sub->h = gw_handle_new(sub)) ||
        !(sub->token = strdup(token ? token : ""))) {
        if (sub) gw_handle_unref(sub->h);
        free(sub);
        gw_conn_send_error(c, request_id, PARLEY_ERR_INTERNAL, NULL, 0);
        return;
    }
    sub->feed.pull = sub_pull;
    sub->feed.drained = sub_drained;
    sub->feed.written = sub_written;
    snprintf(sub->want, sizeof sub->want, "%s", req->room);
    sub->conn = c;
    sub->request_id = request_id;
    sub->last_sent = req->resume_after_rev;
    sub->state = SUB_CHECK;
    gw_conn_add_feed(c, &sub->feed);
    /* Attached (checked_first) only once the core said yes. */
    if (check_access(s, sub, checked_first) != 0) {
        gw_conn_close(c, GW_CLOSE_UPSTREAM, 0);
        sub_remove(sub);
    }
}

void gw_rooms_unsubscribe(gw_server *s, gw_conn *c, uint64_t request_id,
                          const char *room)
{
    (void)s;
    gw_sub *sub = conn_sub(c, room);
    if (!sub) {
        gw_conn_send_error(c, request_id, PARLEY_ERR_SUBSCRIPTION_STATE,
                           "not subscribed to this room", 0);
        return;
    }
    sub_remove(sub);
    Parley__V1__ServerFrame f = PARLEY__V1__SERVER_FRAME__INIT;
    Parley__V1__Unsubscribed u = PARLEY__V1__UNSUBSCRIBED__INIT;
    f.request_id = request_id;
    f.kind_case = PARLEY__V1__SERVER_FRAME__KIND_UNSUBSCRIBED;
    f.unsubscribed = &u;
    u.room = (char *)room;
    gw_conn_send_msg(c, &f.base);
}

void gw_rooms_conn_gone(gw_server *s, gw_conn *c)
{
    (void)s;
    gw_feed *fd = gw_conn_next_feed(c, NULL);
    while (fd) {
        gw_feed *next = gw_conn_next_feed(c, fd);
        if (fd->pull == sub_pull) sub_remove((gw_sub *)fd);
        fd = next;
    }
}

void gw_rooms_free(gw_server *s)
{
    if (!s->rooms) return;
    struct lws_dll2 *d;
    while ((d = lws_dll2_get_head(&s->rooms->all)) != NULL) {
        gw_room *r = lws_container_of(d, gw_room, link_all);
        r->link = NULL; /* shutting down: nothing more is sent */
        room_destroy(s, r);
    }
    free(s->rooms);
    s->rooms = NULL;
}
