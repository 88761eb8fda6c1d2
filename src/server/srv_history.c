/* srv_history.c: the History service. Every RPC checks the caller's token
 * and their access to the room (srv_access.c), runs its store call and
 * answers; edits and deletes are also fanned out as EDITED / DELETED
 * events. ListMessages encodes each row straight into the response bytes
 * while the store walks the page (see page_buf).
 *
 * The reads (ListMessages, GetMessage, GetRoom) take a srv_reader: they run
 * on a reader thread with its own store handle and token cache (or on the
 * loop with the srv's), and touch nothing else; their access check reads
 * through that handle too. A reader's handle sees every commit that
 * returned before the read began, so a publish acked before a ListMessages
 * is in its page; a read that caught a commit whose events are not fanned
 * out yet waits for them and reads again (srv_read_settled). Edits and
 * deletes join the group commit (srv_commit.c), which checks their access
 * inside its transaction; CreateRoom writes on the loop (srv_write_now). */
#include "srv.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "defaults.h"

/* ---- ListMessages: a response encoded row by row ---- */

/* Encoded protobuf messages laid one after the other are one message of
 * that type with their fields merged, repeated fields appended in order
 * (the protobuf encoding's rule). So each row is packed as a
 * ListMessagesResponse holding only that message, and the room and has_more
 * as one more at the end: the bytes are the whole page, and no field
 * number is written here. The rows are encoded while the store walks them,
 * with no per-message allocation or string copy, each straight into the
 * page with protobuf_c_message_pack (the buffer API would hand every field
 * to a callback: a third of the encoding's cost). A row's room is reserved
 * from its string lengths, so it is measured only where protobuf-c must
 * (for the nested length prefixes), not once more up front. */
typedef struct page_buf {
    uint8_t *p;
    size_t len, cap;
    int oom;
    /* The page must fit in PARLEY_ANSWER_BYTES_MAX (what the gateway and
     * any client accept, defaults.h). Rows come in ascending order: after
     * a cursor (AFTER_REV) the newest would be dropped, so the walk stops
     * there; for the newest page or one before a seq the oldest are
     * dropped from the front, keeping the rows nearest the cursor. */
    int drop_front;
    size_t front; /* bytes of dropped rows at the start of p */
    size_t first; /* index of the first kept row */
    size_t *ends; /* end offset in p of each row */
    size_t n_rows, cap_rows;
    int cut; /* rows were left out: more exist */
} page_buf;

/* Every field's key, length prefix and varint fit in 16 bytes, and a
 * Message is at most 16 fields deep in all (with its Author and the
 * ListMessagesResponse around it). */
#define PAGE_ROW_OVERHEAD 256

/* Makes room for n more bytes; 0, or -1 (and oom) on allocation failure. */
static int page_reserve(page_buf *pb, size_t n)
{
    if (pb->oom) return -1;
    if (pb->len + n <= pb->cap) return 0;
    size_t nc = pb->cap ? pb->cap * 2 : 4096;
    while (nc < pb->len + n) nc *= 2;
    uint8_t *np = realloc(pb->p, nc);
    if (!np) {
        pb->oom = 1;
        return -1;
    }
    pb->p = np;
    pb->cap = nc;
    return 0;
}

/* Appends msg, encoded in at most `bound` bytes, to the page. */
static void page_pack(page_buf *pb, const ProtobufCMessage *msg, size_t bound)
{
    if (page_reserve(pb, bound) != 0) return;
    size_t w = protobuf_c_message_pack(msg, pb->p + pb->len);
    assert(w <= bound); /* the bound holds, so nothing was overrun */
    pb->len += w;
}

/* Empties the page for another walk (its memory kept). */
static void page_reset(page_buf *pb)
{
    pb->len = pb->front = pb->first = pb->n_rows = 0;
    pb->cut = 0;
}

/* Room left for the room and has_more packed after the rows. */
#define PAGE_TAIL_RESERVE 512

static int list_row(const parley_msg *m, void *ud)
{
    page_buf *pb = ud;
    srv_pbmsg pm;
    srv_pb_message(&pm, m);
    Parley__V1__Message *one = &pm.msg;
    Parley__V1__ListMessagesResponse r =
        PARLEY__V1__LIST_MESSAGES_RESPONSE__INIT;
    r.n_messages = 1;
    r.messages = &one;
    size_t start = pb->len;
    size_t bound = strlen(m->room) + strlen(m->client_msg_id) +
                   strlen(m->author.id) + strlen(m->author.display_name) +
                   m->body_len + PAGE_ROW_OVERHEAD;
    page_pack(pb, &r.base, bound);
    if (pb->oom) return 1;
    if (pb->n_rows == pb->cap_rows) {
        size_t *ne = srv_grow(pb->ends, &pb->cap_rows, 64, sizeof *ne);
        if (!ne) {
            pb->oom = 1;
            return 1;
        }
        pb->ends = ne;
    }
    pb->ends[pb->n_rows++] = pb->len;
    const size_t max = PARLEY_ANSWER_BYTES_MAX - PAGE_TAIL_RESERVE;
    if (pb->len - pb->front <= max || pb->n_rows - pb->first == 1)
        return 0; /* within the bound, or the one row a page always has */
    if (!pb->drop_front) { /* after a cursor: stop before this row */
        pb->len = start;
        pb->n_rows--;
        pb->cut = 1;
        return 1;
    }
    /* drop the oldest kept rows; the bytes go once the page is done */
    while (pb->len - pb->front > max && pb->n_rows - pb->first > 1) {
        pb->front = pb->ends[pb->first++];
        pb->cut = 1;
    }
    assert(pb->front <= pb->len && pb->first < pb->n_rows);
    return 0;
}

static void h_list_messages(rpc_call *c,
                            const Parley__V1__ListMessagesRequest *req,
                            void *ud)
{
    srv_reader *rd = ud;
    auth_identity who;
    srv_grant g;
    if (srv_admit_on(rd->ac, rd->db, c, req->room, ACCESS_READ, &who, &g))
        return;
    unsigned limit = srv_page_limit(c, req->limit, RULES_LIST_LIMIT_DEFAULT);
    if (limit == 0) return;
    parley_err e;
    store_dir dir = STORE_LATEST;
    uint64_t cursor = 0;
    if (req->cursor_case ==
        PARLEY__V1__LIST_MESSAGES_REQUEST__CURSOR_AFTER_REV) {
        dir = STORE_AFTER_REV;
        cursor = req->after_rev;
    } else if (req->cursor_case ==
               PARLEY__V1__LIST_MESSAGES_REQUEST__CURSOR_BEFORE_SEQ) {
        dir = STORE_BEFORE_SEQ;
        cursor = req->before_seq;
    }
    page_buf b;
    memset(&b, 0, sizeof b);
    b.drop_front = dir != STORE_AFTER_REV;
    page_reserve(&b, (size_t)limit * 192); /* a page of short messages */
    parley_room room;
    int has_more = 0;
    do { /* again if the page caught a commit before its fan-out */
        page_reset(&b);
        e = store_list(rd->db, req->room, dir, cursor, limit, list_row, &b,
                       &room, &has_more);
    } while (!e && !srv_read_settled(rd->s, req->room, room.head_rev));
    free(b.ends);
    if (e) {
        free(b.p);
        srv_fail_store(c, rd->db, e);
        return;
    }
    if (b.cut) has_more = 1; /* rows left out for size: page on */
    srv_room_pb pr;
    srv_pb_room_as(rd->s, rd->db, &who, &room, &g.st, &pr);
    Parley__V1__ListMessagesResponse tail =
        PARLEY__V1__LIST_MESSAGES_RESPONSE__INIT;
    tail.room = &pr.room;
    tail.has_more = has_more ? 1 : 0;
    page_pack(&b, &tail.base, protobuf_c_message_get_packed_size(&tail.base));
    if (b.oom) {
        free(b.p);
        rpc_fail(c, PARLEY_ERR_INTERNAL, "out of memory");
        return;
    }
    /* The slice takes the buffer (past the rows dropped from its front):
     * the page is not copied again. */
    grpc_slice sl = grpc_slice_new_with_user_data(b.p + b.front,
                                                  b.len - b.front, free, b.p);
    rpc_reply_slice(c, sl);
    grpc_slice_unref(sl);
}

static void h_get_message(rpc_call *c, const Parley__V1__GetMessageRequest *req,
                          void *ud)
{
    srv_reader *rd = ud;
    auth_identity who;
    srv_grant g;
    if (srv_admit_on(rd->ac, rd->db, c, req->room, ACCESS_READ, &who, &g))
        return;
    parley_err e;
    parley_msg m;
    do {
        e = store_get(rd->db, req->room, req->seq, &m);
    } while (!e && !srv_read_settled(rd->s, req->room, m.rev));
    if (e) {
        srv_fail_store(c, rd->db, e);
        return;
    }
    srv_pbmsg pm;
    srv_pb_message(&pm, &m);
    Parley__V1__GetMessageResponse r = PARLEY__V1__GET_MESSAGE_RESPONSE__INIT;
    r.message = &pm.msg;
    rpc_reply(c, &r.base);
}

static void h_edit_message(rpc_call *c,
                           const Parley__V1__EditMessageRequest *req, void *ud)
{
    srv *s = ud;
    auth_identity who;
    if (srv_authenticate(s, c, &who)) return;
    if (srv_refuse_write(s, c, &who)) return;
    /* Checked, answered and fanned out with its group commit. */
    parley_err e = srv_enqueue_edit(s, c, &who, req->room, req->seq, req->body);
    if (e) rpc_fail(c, e, parley_err_text(e));
}

static void h_delete_message(rpc_call *c,
                             const Parley__V1__DeleteMessageRequest *req,
                             void *ud)
{
    srv *s = ud;
    auth_identity who;
    if (srv_authenticate(s, c, &who)) return;
    if (srv_refuse_write(s, c, &who)) return;
    /* An organizer's delete of another's message stores its moderation
     * action in the same transaction (srv_commit.c). */
    parley_err e = srv_enqueue_delete(s, c, &who, req->room, req->seq);
    if (e) rpc_fail(c, e, parley_err_text(e));
}

static void h_create_room(rpc_call *c, const Parley__V1__CreateRoomRequest *req,
                          void *ud)
{
    srv *s = ud;
    auth_identity who;
    srv_grant g;
    if (srv_authenticate(s, c, &who)) return;
    if (srv_refuse_write(s, c, &who)) return;
    parley_err e = rules_room(req->name);
    if (e) {
        rpc_fail(c, e, NULL);
        return;
    }
    access_who w = srv_who(&who, req->name);
    g.rule = access_decide(&w, NULL, NULL, ACCESS_CREATE, 0, 0);
    if (g.rule != PARLEY_RULE_NONE) {
        srv_fail_check(c, s, PARLEY_ERR_PERMISSION_DENIED, &g);
        return;
    }
    parley_room_settings set = {req->title, req->topic, (int)req->visibility,
                                (int)req->mode};
    parley_room room;
    int created = 0;
    /* Made on the loop, after the writer's group in flight (rare: not
     * worth a place in the group commit). */
    store *wdb = srv_write_now(s);
    e = store_room_create_with(wdb, req->name, &set, clock_wall_ms(), &room,
                               &created);
    if (e) {
        srv_fail_store(c, wdb, e);
        return;
    }
    /* The caller's standing there (a room that existed may have some). */
    e = srv_check(s, &who, req->name, ACCESS_READ, 0, &g);
    if (e == PARLEY_OK) e = store_room_get(s->db, req->name, &room);
    if (e) {
        srv_fail_store(c, s->db, e);
        return;
    }
    srv_room_pb pr;
    srv_pb_room_as(s, s->db, &who, &room, &g.st, &pr);
    Parley__V1__CreateRoomResponse r = PARLEY__V1__CREATE_ROOM_RESPONSE__INIT;
    r.room = &pr.room;
    r.created = created ? 1 : 0;
    rpc_reply(c, &r.base);
}

static void h_get_room(rpc_call *c, const Parley__V1__GetRoomRequest *req,
                       void *ud)
{
    srv_reader *rd = ud;
    auth_identity who;
    srv_grant g;
    if (srv_admit_on(rd->ac, rd->db, c, req->name, ACCESS_READ, &who, &g))
        return;
    parley_err e;
    parley_room room;
    do {
        e = store_room_get(rd->db, req->name, &room);
    } while (!e && !srv_read_settled(rd->s, req->name, room.head_rev));
    if (e) {
        srv_fail_store(c, rd->db, e);
        return;
    }
    srv_room_pb pr;
    srv_pb_room_as(rd->s, rd->db, &who, &room, &g.st, &pr);
    Parley__V1__GetRoomResponse r = PARLEY__V1__GET_ROOM_RESPONSE__INIT;
    r.room = &pr.room;
    rpc_reply(c, &r.base);
}

/* ---- ListRooms: the rooms the caller may read, by name, one page ---- */

/* Rooms looked at per call, beyond those returned: a caller who may read
 * few of many rooms pages on with next_after_name. */
#define LIST_ROOMS_SCAN 5000

/* One room of the page: its protobuf form and the strings it points to. */
typedef struct rooms_entry {
    Parley__V1__Room room;
    Parley__V1__RoomAccess me;
    char name[RULES_ROOM_MAX + 1];
    char *title, *topic;
} rooms_entry;

typedef struct rooms_page {
    const srv *s;
    const auth_identity *who;
    rooms_entry *e; /* limit entries */
    Parley__V1__Room **ptrs;
    size_t n, limit;
    size_t scanned;                /* rooms looked at */
    char last[RULES_ROOM_MAX + 1]; /* the last room looked at */
    int oom;
} rooms_page;

static int rooms_row(const parley_room *r, const parley_standing *st, void *ud)
{
    rooms_page *p = ud;
    p->scanned++;
    snprintf(p->last, sizeof p->last, "%s", r->name);
    access_who w = srv_who(p->who, r->name);
    int64_t now = clock_wall_ms();
    if (access_decide(&w, r, st, ACCESS_READ, 0, now) == PARLEY_RULE_NONE) {
        assert(p->n < p->limit);
        rooms_entry *e = &p->e[p->n];
        access_view v;
        snprintf(e->name, sizeof e->name, "%s", r->name);
        e->title = strdup(r->title);
        e->topic = strdup(r->topic);
        if (!e->title || !e->topic) {
            free(e->title);
            free(e->topic);
            p->oom = 1;
            return 1;
        }
        parley_room copy = *r;
        copy.name = e->name;
        copy.title = e->title;
        copy.topic = e->topic;
        srv_pb_room(p->s, &e->room, &copy);
        access_view_of(&w, r, st, now, &v);
        srv_pb_access(&e->me, &v);
        e->room.me = &e->me;
        p->ptrs[p->n] = &e->room;
        p->n++;
    }
    /* Stop when the page is full or the scan budget is spent. */
    return p->n == p->limit || p->scanned >= LIST_ROOMS_SCAN;
}

static void h_list_rooms(rpc_call *c, const Parley__V1__ListRoomsRequest *req,
                         void *ud)
{
    srv *s = ud;
    auth_identity who;
    if (srv_authenticate(s, c, &who)) return;
    unsigned limit = srv_page_limit(c, req->limit, 100);
    if (limit == 0) return;
    rooms_page p;
    memset(&p, 0, sizeof p);
    p.s = s;
    p.who = &who;
    p.limit = limit;
    p.e = calloc(limit, sizeof *p.e);
    p.ptrs = calloc(limit, sizeof *p.ptrs);
    int has_more = 0;
    store_room_query q = {req->after_name, req->prefix, who.id, limit};
    parley_err e = PARLEY_OK;
    if (!p.e || !p.ptrs) e = PARLEY_ERR_INTERNAL;
    /* Pages of the store until ours is full, the rooms end, or the scan
     * budget is spent. */
    while (e == PARLEY_OK) {
        e = store_room_list_for(s->db, &q, rooms_row, &p, &has_more);
        if (p.oom) e = PARLEY_ERR_INTERNAL;
        if (e || !has_more || p.n == p.limit || p.scanned >= LIST_ROOMS_SCAN)
            break;
        q.after = p.last;
        q.limit = limit - (unsigned)p.n;
    }
    /* Unread counts after the page was read (a list callback may not
     * call into the store). */
    for (size_t i = 0; e == PARLEY_OK && i < p.n; i++) {
        Parley__V1__RoomAccess *me = &p.e[i].me;
        unsigned n = 0;
        if (me->role != PARLEY__V1__ROLE__ROLE_UNSPECIFIED &&
            store_unread_count(s->db, p.e[i].name, who.id, me->last_read_seq,
                               SRV_UNREAD_CAP, &n) == PARLEY_OK)
            me->unread_count = n;
    }
    Parley__V1__ListRoomsResponse r = PARLEY__V1__LIST_ROOMS_RESPONSE__INIT;
    r.n_rooms = p.n;
    r.rooms = p.ptrs;
    r.has_more = has_more ? 1 : 0;
    r.next_after_name = has_more ? p.last : "";
    srv_answer(c, s->db, e, &r.base);
    for (size_t i = 0; i < p.n; i++) {
        free(p.e[i].title);
        free(p.e[i].topic);
    }
    free(p.e);
    free(p.ptrs);
}

const parley_v1_History_handlers srv_history = {
    .list_messages = h_list_messages,
    .get_message = h_get_message,
    .edit_message = h_edit_message,
    .delete_message = h_delete_message,
    .create_room = h_create_room,
    .get_room = h_get_room,
    .list_rooms = h_list_rooms,
};
