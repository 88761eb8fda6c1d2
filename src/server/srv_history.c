/* srv_history.c: the History service. Every RPC checks the caller's token,
 * runs one store call and answers; edits and deletes are also fanned out as
 * EDITED / DELETED events. ListMessages encodes each row straight into the
 * response bytes while the store walks the page (see page_buf).
 *
 * The reads (ListMessages, GetMessage, GetRoom) take a srv_reader: they run
 * on a reader thread with its own store handle and token cache (or on the
 * loop with the srv's), and touch nothing else. A reader's handle sees
 * every commit that returned before the read began, so a publish acked
 * before a ListMessages is in its page; a read that caught a commit whose
 * events are not fanned out yet waits for them and reads again
 * (srv_read_settled). The writes join the group commit (srv_commit.c). */
#include "srv.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static void fail_store(rpc_call *c, store *db, parley_err e)
{
    if (e == PARLEY_ERR_INTERNAL || e == PARLEY_ERR_IO) {
        log_error("store", "store error: %s", store_last_error(db));
        rpc_fail(c, PARLEY_ERR_INTERNAL, "storage failure");
        return;
    }
    rpc_fail(c, e, parley_err_text(e));
}

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

static int list_row(const parley_msg *m, void *ud)
{
    srv_pbmsg pm;
    srv_pb_message(&pm, m);
    Parley__V1__Message *one = &pm.msg;
    Parley__V1__ListMessagesResponse r =
        PARLEY__V1__LIST_MESSAGES_RESPONSE__INIT;
    r.n_messages = 1;
    r.messages = &one;
    size_t bound = strlen(m->room) + strlen(m->client_msg_id) +
                   strlen(m->author.id) + strlen(m->author.display_name) +
                   m->body_len + PAGE_ROW_OVERHEAD;
    page_pack(ud, &r.base, bound);
    return 0;
}

static void h_list_messages(rpc_call *c,
                            const Parley__V1__ListMessagesRequest *req,
                            void *ud)
{
    srv_reader *rd = ud;
    auth_identity who;
    if (srv_authenticate_with(rd->ac, c, &who)) return;
    parley_err e = rules_room(req->room);
    if (e) {
        rpc_fail(c, e, NULL);
        return;
    }
    unsigned limit = req->limit ? req->limit : RULES_LIST_LIMIT_DEFAULT;
    if (limit > RULES_LIST_LIMIT_MAX) {
        rpc_fail(c, PARLEY_ERR_BAD_CURSOR, "limit must be 1..1000");
        return;
    }
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
    page_buf b = {NULL, 0, 0, 0};
    page_reserve(&b, (size_t)limit * 192); /* a page of short messages */
    parley_room room;
    int has_more = 0;
    do { /* again if the page caught a commit before its fan-out */
        b.len = 0;
        e = store_list(rd->db, req->room, dir, cursor, limit, list_row, &b,
                       &room, &has_more);
    } while (!e && !srv_read_settled(rd->s, req->room, room.head_rev));
    if (e) {
        free(b.p);
        fail_store(c, rd->db, e);
        return;
    }
    Parley__V1__Room pr;
    srv_pb_room(&pr, &room);
    Parley__V1__ListMessagesResponse tail =
        PARLEY__V1__LIST_MESSAGES_RESPONSE__INIT;
    tail.room = &pr;
    tail.has_more = has_more ? 1 : 0;
    page_pack(&b, &tail.base, protobuf_c_message_get_packed_size(&tail.base));
    if (b.oom) {
        free(b.p);
        rpc_fail(c, PARLEY_ERR_INTERNAL, "out of memory");
        return;
    }
    /* The slice takes the buffer: the page is not copied again. */
    grpc_slice sl = grpc_slice_new(b.p, b.len, free);
    rpc_reply_slice(c, sl);
    grpc_slice_unref(sl);
}

static void h_get_message(rpc_call *c, const Parley__V1__GetMessageRequest *req,
                          void *ud)
{
    srv_reader *rd = ud;
    auth_identity who;
    if (srv_authenticate_with(rd->ac, c, &who)) return;
    parley_msg m;
    parley_err e;
    do {
        e = store_get(rd->db, req->room, req->seq, &m);
    } while (!e && !srv_read_settled(rd->s, req->room, m.rev));
    if (e) {
        fail_store(c, rd->db, e);
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
    /* Answered, and fanned out, after its group commit (srv_commit.c). */
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
    parley_err e = srv_enqueue_delete(s, c, &who, req->room, req->seq);
    if (e) rpc_fail(c, e, parley_err_text(e));
}

static void h_create_room(rpc_call *c, const Parley__V1__CreateRoomRequest *req,
                          void *ud)
{
    srv *s = ud;
    auth_identity who;
    if (srv_authenticate(s, c, &who)) return;
    if (who.role != PARLEY_ROLE_ORGANIZER) {
        rpc_fail(c, PARLEY_ERR_PERMISSION_DENIED,
                 "only organizers may create rooms");
        return;
    }
    parley_err e = srv_enqueue_create_room(s, c, req->name);
    if (e) rpc_fail(c, e, parley_err_text(e));
}

static void h_get_room(rpc_call *c, const Parley__V1__GetRoomRequest *req,
                       void *ud)
{
    srv_reader *rd = ud;
    auth_identity who;
    if (srv_authenticate_with(rd->ac, c, &who)) return;
    parley_room room;
    parley_err e;
    do {
        e = store_room_get(rd->db, req->name, &room);
    } while (!e && !srv_read_settled(rd->s, req->name, room.head_rev));
    if (e) {
        fail_store(c, rd->db, e);
        return;
    }
    Parley__V1__Room pr;
    srv_pb_room(&pr, &room);
    Parley__V1__GetRoomResponse r = PARLEY__V1__GET_ROOM_RESPONSE__INIT;
    r.room = &pr;
    rpc_reply(c, &r.base);
}

/* ---- ListRooms: the rooms by name, one page ---- */

#define LIST_ROOMS_MAX 1000

typedef struct rooms_page {
    Parley__V1__Room *rooms; /* LIST_ROOMS_MAX entries */
    Parley__V1__Room **ptrs; /* into rooms */
    char *names;             /* LIST_ROOMS_MAX names of RULES_ROOM_MAX+1 */
    size_t n;
} rooms_page;

static int rooms_row(const parley_room *r, void *ud)
{
    rooms_page *p = ud;
    assert(p->n < LIST_ROOMS_MAX);
    char *name = p->names + p->n * (RULES_ROOM_MAX + 1);
    snprintf(name, RULES_ROOM_MAX + 1, "%s", r->name);
    parley_room copy = *r;
    copy.name = name;
    srv_pb_room(&p->rooms[p->n], &copy);
    p->ptrs[p->n] = &p->rooms[p->n];
    p->n++;
    return 0;
}

static void h_list_rooms(rpc_call *c, const Parley__V1__ListRoomsRequest *req,
                         void *ud)
{
    srv *s = ud;
    auth_identity who;
    if (srv_authenticate(s, c, &who)) return;
    if (req->limit > LIST_ROOMS_MAX) {
        rpc_fail(c, PARLEY_ERR_BAD_CURSOR, "limit must be 1..1000");
        return;
    }
    unsigned limit = req->limit ? req->limit : 100;
    rooms_page p = {calloc(limit, sizeof *p.rooms),
                    calloc(limit, sizeof *p.ptrs),
                    malloc((size_t)limit * (RULES_ROOM_MAX + 1)), 0};
    int has_more = 0;
    parley_err e = p.rooms && p.ptrs && p.names
                       ? store_room_list(s->db, req->after_name, limit,
                                         rooms_row, &p, &has_more)
                       : PARLEY_ERR_INTERNAL;
    if (e) {
        fail_store(c, s->db, e);
    } else {
        Parley__V1__ListRoomsResponse r = PARLEY__V1__LIST_ROOMS_RESPONSE__INIT;
        r.n_rooms = p.n;
        r.rooms = p.ptrs;
        r.has_more = has_more ? 1 : 0;
        rpc_reply(c, &r.base);
    }
    free(p.rooms);
    free(p.ptrs);
    free(p.names);
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
