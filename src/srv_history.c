/* srv_history.c: the History service. Every RPC checks the caller's token,
 * runs one store call and answers; edits and deletes are also fanned out as
 * EDITED / DELETED events. ListMessages encodes each row straight into the
 * response bytes while the store walks the page, so a page costs no
 * per-message allocations or string copies. */
#include "srv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fail_store(rpc_call *c, srv *s, parley_err e) {
    if (e == PARLEY_ERR_INTERNAL || e == PARLEY_ERR_IO) {
        fprintf(stderr, "parleyd: store error: %s\n", store_last_error(s->st));
        rpc_fail(c, PARLEY_ERR_INTERNAL, "storage failure");
        return;
    }
    rpc_fail(c, e, parley_err_text(e));
}

/* ---- ListMessages: a response built field by field ---- */

typedef struct wbuf {
    uint8_t *p;
    size_t len, cap;
    int oom;
} wbuf;

static uint8_t *wb_room(wbuf *b, size_t n) {
    if (b->oom) return NULL;
    if (b->len + n > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 4096;
        while (nc < b->len + n) nc *= 2;
        uint8_t *np = realloc(b->p, nc);
        if (!np) {
            b->oom = 1;
            return NULL;
        }
        b->p = np;
        b->cap = nc;
    }
    return b->p + b->len;
}

static void wb_varint(wbuf *b, uint64_t v) {
    uint8_t *p = wb_room(b, 10);
    if (!p) return;
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    b->len += n;
}

/* field `num` (length-delimited) holding msg */
static void wb_submsg(wbuf *b, unsigned num, const ProtobufCMessage *msg) {
    size_t n = protobuf_c_message_get_packed_size(msg);
    wb_varint(b, (uint64_t)num << 3 | 2);
    wb_varint(b, n);
    uint8_t *p = wb_room(b, n);
    if (!p) return;
    protobuf_c_message_pack(msg, p);
    b->len += n;
}

static int list_row(const store_msg *m, void *ud) {
    srv_pbmsg pm;
    srv_pb_message(&pm, m);
    wb_submsg(ud, 1, &pm.msg.base);
    return 0;
}

static void h_list_messages(rpc_call *c, const Parley__V1__ListMessagesRequest *req,
                            void *ud) {
    srv *s = ud;
    auth_identity who;
    if (srv_authenticate(s, c, &who)) return;
    parley_err e = rules_room(req->room);
    if (e) {
        rpc_fail(c, e, "room name must be 1-64 characters of [A-Za-z0-9._-]");
        return;
    }
    unsigned limit = req->limit ? req->limit : RULES_LIST_LIMIT_DEFAULT;
    if (limit > RULES_LIST_LIMIT_MAX) {
        rpc_fail(c, PARLEY_ERR_BAD_CURSOR, "limit must be 1..1000");
        return;
    }
    store_dir dir = STORE_LATEST;
    uint64_t cursor = 0;
    if (req->cursor_case == PARLEY__V1__LIST_MESSAGES_REQUEST__CURSOR_AFTER_REV) {
        dir = STORE_AFTER_REV;
        cursor = req->after_rev;
    } else if (req->cursor_case ==
               PARLEY__V1__LIST_MESSAGES_REQUEST__CURSOR_BEFORE_SEQ) {
        dir = STORE_BEFORE_SEQ;
        cursor = req->before_seq;
    }
    wbuf b = {0};
    store_room room;
    int has_more = 0;
    e = store_list(s->st, req->room, dir, cursor, limit, list_row, &b, &room,
                   &has_more);
    if (e) {
        free(b.p);
        fail_store(c, s, e);
        return;
    }
    Parley__V1__Room pr;
    srv_pb_room(s, &pr, &room);
    wb_submsg(&b, 2, &pr.base);
    if (has_more) {
        wb_varint(&b, 3 << 3 | 0);
        wb_varint(&b, 1);
    }
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
                          void *ud) {
    srv *s = ud;
    auth_identity who;
    if (srv_authenticate(s, c, &who)) return;
    store_msg m;
    parley_err e = store_get(s->st, req->room, req->seq, &m);
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

static void h_edit_message(rpc_call *c, const Parley__V1__EditMessageRequest *req,
                           void *ud) {
    srv *s = ud;
    auth_identity who;
    if (srv_authenticate(s, c, &who)) return;
    store_author actor = auth_author(&who);
    store_msg m;
    parley_err e = store_edit(s->st, req->room, req->seq, &actor, req->body,
                              strlen(req->body), srv_now_ms(), &m);
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
                             void *ud) {
    srv *s = ud;
    auth_identity who;
    if (srv_authenticate(s, c, &who)) return;
    store_author actor = auth_author(&who);
    store_msg m;
    store_room before;
    /* Deleting a tombstone again changes nothing and fans nothing out. */
    parley_err e = store_room_get(s->st, req->room, &before);
    uint64_t head_before = e == PARLEY_OK ? before.head_rev : 0;
    e = store_delete(s->st, req->room, req->seq, &actor, srv_now_ms(), &m);
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
                          void *ud) {
    srv *s = ud;
    auth_identity who;
    if (srv_authenticate(s, c, &who)) return;
    if (who.role != STORE_ROLE_ORGANIZER) {
        rpc_fail(c, PARLEY_ERR_PERMISSION_DENIED,
                 "only organizers may create rooms");
        return;
    }
    store_room room;
    int created = 0;
    parley_err e =
        store_room_create(s->st, req->name, srv_now_ms(), &room, &created);
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
                       void *ud) {
    srv *s = ud;
    auth_identity who;
    if (srv_authenticate(s, c, &who)) return;
    store_room room;
    parley_err e = store_room_get(s->st, req->name, &room);
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

const parley_v1_History_handlers srv_history = {
    .list_messages = h_list_messages,
    .get_message = h_get_message,
    .edit_message = h_edit_message,
    .delete_message = h_delete_message,
    .create_room = h_create_room,
    .get_room = h_get_room,
};
