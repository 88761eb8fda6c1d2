/* srv_history.c: the History service. Every RPC checks the caller's token,
 * runs one store call and answers; edits and deletes are also fanned out as
 * EDITED / DELETED events. ListMessages encodes each row straight into the
 * response bytes while the store walks the page (see page_buf). */
#include "srv.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static void fail_store(rpc_call *c, srv *s, parley_err e)
{
    if (e == PARLEY_ERR_INTERNAL || e == PARLEY_ERR_IO) {
        log_error("store", "store error: %s", store_last_error(s->db));
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
 * with no per-message allocation or string copy. */
typedef struct page_buf {
    ProtobufCBuffer base; /* protobuf-c appends through it */
    uint8_t *p;
    size_t len, cap;
    int oom;
} page_buf;

static void page_append(ProtobufCBuffer *b, size_t n, const uint8_t *data)
{
    page_buf *pb = (page_buf *)b;
    if (pb->oom) return;
    if (pb->len + n > pb->cap) {
        size_t nc = pb->cap ? pb->cap * 2 : 4096;
        while (nc < pb->len + n) nc *= 2;
        uint8_t *np = realloc(pb->p, nc);
        if (!np) {
            pb->oom = 1;
            return;
        }
        pb->p = np;
        pb->cap = nc;
    }
    memcpy(pb->p + pb->len, data, n);
    pb->len += n;
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
    protobuf_c_message_pack_to_buffer(&r.base, ud);
    return 0;
}

static void h_list_messages(rpc_call *c,
                            const Parley__V1__ListMessagesRequest *req,
                            void *ud)
{
    srv *s = ud;
    auth_identity who;
    if (srv_authenticate(s, c, &who)) return;
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
    page_buf b = {{page_append}, NULL, 0, 0, 0};
    parley_room room;
    int has_more = 0;
    e = store_list(s->db, req->room, dir, cursor, limit, list_row, &b.base,
                   &room, &has_more);
    if (e) {
        free(b.p);
        fail_store(c, s, e);
        return;
    }
    Parley__V1__Room pr;
    srv_pb_room(s, &pr, &room);
    Parley__V1__ListMessagesResponse tail =
        PARLEY__V1__LIST_MESSAGES_RESPONSE__INIT;
    tail.room = &pr;
    tail.has_more = has_more ? 1 : 0;
    protobuf_c_message_pack_to_buffer(&tail.base, &b.base);
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
    srv *s = ud;
    auth_identity who;
    if (srv_authenticate(s, c, &who)) return;
    parley_msg m;
    parley_err e = store_get(s->db, req->room, req->seq, &m);
    if (e) {
        fail_store(c, s, e);
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
    parley_author actor = auth_author(&who);
    parley_msg m;
    parley_err e = store_edit(s->db, req->room, req->seq, &actor, req->body,
                              strlen(req->body), clock_wall_ms(), &m);
    if (e) {
        fail_store(c, s, e);
        return;
    }
    srv_pbmsg pm;
    srv_pb_message(&pm, &m);
    Parley__V1__EditMessageResponse r = PARLEY__V1__EDIT_MESSAGE_RESPONSE__INIT;
    r.message = &pm.msg;
    rpc_reply(c, &r.base);
    srv_fanout(s, PARLEY__V1__EVENT_TYPE__EVENT_TYPE_EDITED, &m);
}

static void h_delete_message(rpc_call *c,
                             const Parley__V1__DeleteMessageRequest *req,
                             void *ud)
{
    srv *s = ud;
    auth_identity who;
    if (srv_authenticate(s, c, &who)) return;
    parley_author actor = auth_author(&who);
    parley_msg m;
    parley_room before;
    /* Deleting a tombstone again changes nothing and fans nothing out. */
    parley_err e = store_room_get(s->db, req->room, &before);
    uint64_t head_before = e == PARLEY_OK ? before.head_rev : 0;
    e = store_delete(s->db, req->room, req->seq, &actor, clock_wall_ms(), &m);
    if (e) {
        fail_store(c, s, e);
        return;
    }
    srv_pbmsg pm;
    srv_pb_message(&pm, &m);
    Parley__V1__DeleteMessageResponse r =
        PARLEY__V1__DELETE_MESSAGE_RESPONSE__INIT;
    r.message = &pm.msg;
    rpc_reply(c, &r.base);
    if (m.rev > head_before)
        srv_fanout(s, PARLEY__V1__EVENT_TYPE__EVENT_TYPE_DELETED, &m);
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
    parley_room room;
    int created = 0;
    parley_err e =
        store_room_create(s->db, req->name, clock_wall_ms(), &room, &created);
    if (e) {
        fail_store(c, s, e);
        return;
    }
    Parley__V1__Room pr;
    srv_pb_room(s, &pr, &room);
    Parley__V1__CreateRoomResponse r = PARLEY__V1__CREATE_ROOM_RESPONSE__INIT;
    r.room = &pr;
    r.created = created ? 1 : 0;
    rpc_reply(c, &r.base);
}

static void h_get_room(rpc_call *c, const Parley__V1__GetRoomRequest *req,
                       void *ud)
{
    srv *s = ud;
    auth_identity who;
    if (srv_authenticate(s, c, &who)) return;
    parley_room room;
    parley_err e = store_room_get(s->db, req->name, &room);
    if (e) {
        fail_store(c, s, e);
        return;
    }
    Parley__V1__Room pr;
    srv_pb_room(s, &pr, &room);
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
    const srv *s;
} rooms_page;

static int rooms_row(const parley_room *r, void *ud)
{
    rooms_page *p = ud;
    assert(p->n < LIST_ROOMS_MAX);
    char *name = p->names + p->n * (RULES_ROOM_MAX + 1);
    snprintf(name, RULES_ROOM_MAX + 1, "%s", r->name);
    parley_room copy = *r;
    copy.name = name;
    srv_pb_room(p->s, &p->rooms[p->n], &copy);
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
                    malloc((size_t)limit * (RULES_ROOM_MAX + 1)), 0, s};
    int has_more = 0;
    parley_err e = p.rooms && p.ptrs && p.names
                       ? store_room_list(s->db, req->after_name, limit,
                                         rooms_row, &p, &has_more)
                       : PARLEY_ERR_INTERNAL;
    if (e) {
        fail_store(c, s, e);
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
