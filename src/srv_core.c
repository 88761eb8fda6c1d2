/* srv_core.c: the srv object, identity checks on every call, conversion of
 * store rows to parley.v1 messages, event frames and fan-out. */
#include "srv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

srv *srv_new(store *st, const auth *au, const srv_opts *opts) {
    srv *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->st = st;
    s->au = au;
    s->max_body = opts && opts->max_body ? opts->max_body
                                         : RULES_BODY_MAX_DEFAULT;
    s->hub = hub_new();
    if (!s->hub) {
        free(s);
        return NULL;
    }
    return s;
}

int srv_register(srv *s, rpc_server *rs, char *err, size_t errlen) {
    if (rpc_server_add_service(rs, &parley_v1_History_service, &srv_history,
                               s, err, errlen) != 0)
        return -1;
    return rpc_server_add_service(rs, &parley_v1_Stream_service, &srv_stream,
                                  s, err, errlen);
}

void srv_free(srv *s) {
    if (!s) return;
    hub_free(s->hub);
    free(s->batch);
    free(s);
}

size_t srv_pending(const srv *s) { return s->n_batch; }

int64_t srv_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int srv_authenticate(srv *s, rpc_call *c, auth_identity *who) {
    char tok[4096];
    if (rpc_call_metadata(c, "authorization", tok, sizeof tok) < 0) {
        rpc_fail(c, PARLEY_ERR_UNAUTHENTICATED,
                 "missing authorization metadata (want: Bearer <jwt>)");
        return -1;
    }
    if (auth_verify(s->au, tok, srv_now_ms() / 1000, who) != PARLEY_OK) {
        rpc_fail(c, PARLEY_ERR_UNAUTHENTICATED,
                 "invalid, expired or badly signed token");
        return -1;
    }
    return 0;
}

void srv_pb_message(srv_pbmsg *out, const store_msg *m) {
    parley__v1__message__init(&out->msg);
    parley__v1__author__init(&out->author);
    out->author.id = (char *)m->author.id;
    out->author.display_name = (char *)m->author.display_name;
    out->author.role = (Parley__V1__Role)m->author.role;
    out->msg.room = (char *)m->room;
    out->msg.seq = m->seq;
    out->msg.rev = m->rev;
    out->msg.client_msg_id = (char *)m->client_msg_id;
    out->msg.author = &out->author;
    out->msg.body = (char *)(m->body ? m->body : "");
    out->msg.created_at_ms = m->created_at_ms;
    out->msg.edited_at_ms = m->edited_at_ms;
    out->msg.deleted = m->deleted ? 1 : 0;
}

void srv_pb_room(const srv *s, Parley__V1__Room *out, const store_room *r) {
    parley__v1__room__init(out);
    out->name = (char *)r->name;
    out->head_seq = r->head_seq;
    out->head_rev = r->head_rev;
    out->max_body_bytes =
        s->max_body > UINT32_MAX ? UINT32_MAX : (uint32_t)s->max_body;
}

int srv_event_type(const store_msg *m) {
    if (m->deleted) return PARLEY__V1__EVENT_TYPE__EVENT_TYPE_DELETED;
    if (m->edited_at_ms) return PARLEY__V1__EVENT_TYPE__EVENT_TYPE_EDITED;
    return PARLEY__V1__EVENT_TYPE__EVENT_TYPE_CREATED;
}

grpc_slice srv_event_frame(int type, const store_msg *m, int replay) {
    srv_pbmsg pm;
    srv_pb_message(&pm, m);
    Parley__V1__Event ev = PARLEY__V1__EVENT__INIT;
    ev.type = (Parley__V1__EventType)type;
    ev.message = &pm.msg;
    ev.replay = replay ? 1 : 0;
    Parley__V1__ServerFrame f = PARLEY__V1__SERVER_FRAME__INIT;
    f.kind_case = PARLEY__V1__SERVER_FRAME__KIND_EVENT;
    f.event = &ev;
    return rpc_encode(&f.base);
}

void srv_fanout(srv *s, int type, const store_msg *m) {
    if (!hub_has_live(s->hub, m->room)) return;
    grpc_slice f = srv_event_frame(type, m, 0);
    hub_publish(s->hub, m->room, f);
    grpc_slice_unref(f);
}

void srv_send_error(rpc_call *c, uint64_t request_id, parley_err e,
                    const char *detail, int fatal) {
    Parley__V1__Error er = PARLEY__V1__ERROR__INIT;
    er.code = (Parley__V1__ErrorCode)e;
    er.detail = (char *)(detail ? detail : parley_err_text(e));
    er.fatal = fatal ? 1 : 0;
    Parley__V1__ServerFrame f = PARLEY__V1__SERVER_FRAME__INIT;
    f.request_id = request_id;
    f.kind_case = PARLEY__V1__SERVER_FRAME__KIND_ERROR;
    f.error = &er;
    rpc_stream_send_msg(c, &f.base);
}
