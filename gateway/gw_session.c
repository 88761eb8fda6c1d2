/* gw_session.c: what the frames of one WebSocket mean (parley.v1
 * ClientFrame / ServerFrame, binary or proto3 JSON): authenticate first,
 * then ping, options, subscribe and unsubscribe (gw_rooms.c), publish. A
 * session owns its user (identity and token) and its publishes waiting for
 * their ack.
 *
 * Publishes ride the link of their room (gw_upstream.c), the stream that
 * also carries the room's subscription, as ClientFrame{publish} with the
 * user's token as user_token: the core checks the token and stores the
 * message as that user, exactly as on a stream of the user's own. The
 * link's answer (ack or error) goes back with the browser's request id.
 * If the link goes down first, every waiting publish gets INTERNAL
 * "upstream core unavailable" (retry with the same client_msg_id; the next
 * publish opens a fresh link). */
#include "gw_session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_json.h"
#include "rpc_check.h"

/* What a session keeps of its user's token: the token itself (sent up
 * with every call, where the core decides access) and what the gateway
 * shows or checks itself. Not the whole auth_identity: its room grants
 * (about 2.5 KB) are the core's to read, and 20,000 idle sessions would
 * carry 50 MB of them. */
typedef struct gw_session {
    char *user_id, *display_name;
    int role;
    int64_t exp;
    char *token;
    int presence, typing;  /* SessionOptions the client turned on */
    lws_dll2_owner_t pubs; /* gw_pub, waiting for their answer */
} gw_session;

typedef struct gw_pub {
    lws_dll2_t link; /* gw_session.pubs */
    gw_conn *conn;
    gw_call *call;
    uint64_t rid; /* the browser's request id */
} gw_pub;

static void pub_free(gw_pub *p)
{
    lws_dll2_remove(&p->link);
    free(p);
}

static void pub_answer(gw_server *s, void *ud, Parley__V1__ServerFrame *f)
{
    gw_pub *p = ud;
    (void)s;
    if (!f) {
        gw_conn_send_error(p->conn, p->rid, PARLEY_ERR_INTERNAL,
                           "upstream core unavailable", 0);
    } else if (f->kind_case == PARLEY__V1__SERVER_FRAME__KIND_ERROR) {
        gw_conn_send_error_rule(p->conn, p->rid, (parley_err)f->error->code,
                                (parley_rule)f->error->rule, f->error->detail,
                                0);
    } else {
        f->request_id = p->rid;
        gw_conn_send_msg(p->conn, &f->base);
    }
    pub_free(p);
}

static void on_publish(gw_conn *c, gw_session *ss, uint64_t rid,
                       Parley__V1__PublishRequest *pr)
{
    gw_server *s = gw_conn_server(c);
    Parley__V1__ClientFrame cf = PARLEY__V1__CLIENT_FRAME__INIT;
    cf.kind_case = PARLEY__V1__CLIENT_FRAME__KIND_PUBLISH;
    cf.publish = pr;
    if (gw_link_frame_size(&cf, ss->token) > GW_LINK_MSG_MAX) {
        /* far over any body limit; never sent, so the shared link that
         * carries other users' frames cannot be made to fail */
        gw_conn_send_error(c, rid, PARLEY_ERR_BODY_TOO_LONG, NULL, 0);
        return;
    }
    gw_pub *p = calloc(1, sizeof *p);
    gw_link *l = p ? gw_rooms_link(s, pr->room) : NULL;
    if (!l) {
        free(p);
        gw_conn_send_error(c, rid, PARLEY_ERR_INTERNAL,
                           "upstream core unavailable", 0);
        return;
    }
    p->conn = c;
    p->rid = rid;
    lws_dll2_add_tail(&p->link, &ss->pubs);
    p->call = gw_link_call(l, &cf, ss->token, pub_answer, p);
    if (!p->call) {
        pub_free(p);
        gw_conn_send_error(c, rid, PARLEY_ERR_INTERNAL,
                           "upstream core unavailable", 0);
        return;
    }
    s->m.pub_frames++;
}

static void on_authenticate(gw_conn *c, uint64_t rid, const char *token)
{
    gw_server *s = gw_conn_server(c);
    gw_session *ss = gw_conn_session(c);
    auth_identity id;
    parley_err e = auth_verify(s->auth, token, gw_now_s(), &id);
    if (e == PARLEY_ERR_TOKEN_EXPIRED) {
        s->m.drops_unauth++;
        gw_conn_send_error(c, rid, e, "the token has expired; renew it", 1);
        gw_conn_close(c, GW_CLOSE_TOKEN_EXPIRED, 1);
        return;
    }
    if (e != PARLEY_OK) {
        s->m.drops_unauth++;
        gw_conn_send_error(c, rid, PARLEY_ERR_UNAUTHENTICATED,
                           "token missing or invalid", 1);
        gw_conn_close(c, GW_CLOSE_UNAUTH, 1);
        return;
    }
    if (ss && strcmp(id.id, ss->user_id) != 0) {
        gw_conn_send_error(c, rid, PARLEY_ERR_UNAUTHENTICATED,
                           "a session keeps its user", 1);
        gw_conn_close(c, GW_CLOSE_UNAUTH, 1);
        return;
    }
    char *t = strdup(token);
    char *name = strdup(id.display_name);
    char *uid = ss ? NULL : strdup(id.id);
    if (!ss && t && name && uid && (ss = calloc(1, sizeof *ss)) != NULL) {
        ss->user_id = uid;
        uid = NULL;
        gw_conn_set_session(c, ss);
    }
    if (!t || !name || !ss) {
        free(t);
        free(name);
        free(uid);
        gw_conn_send_error(c, rid, PARLEY_ERR_INTERNAL, NULL, 0);
        return;
    }
    if (ss->token) {
        explicit_bzero(ss->token, strlen(ss->token));
        free(ss->token);
    }
    ss->token = t;
    free(ss->display_name);
    ss->display_name = name;
    ss->role = id.role;
    ss->exp = id.exp;
    gw_conn_set_authed(c);

    Parley__V1__ServerFrame f = PARLEY__V1__SERVER_FRAME__INIT;
    Parley__V1__Authenticated a = PARLEY__V1__AUTHENTICATED__INIT;
    Parley__V1__Author user = PARLEY__V1__AUTHOR__INIT;
    Parley__V1__Limits lim = PARLEY__V1__LIMITS__INIT;
    f.request_id = rid;
    f.kind_case = PARLEY__V1__SERVER_FRAME__KIND_AUTHENTICATED;
    f.authenticated = &a;
    a.user = &user;
    a.limits = &lim; /* what gw_conn enforces on this connection */
    lim.max_frame_bytes =
        s->cfg.max_frame > UINT32_MAX ? UINT32_MAX : (uint32_t)s->cfg.max_frame;
    lim.frame_rate = s->cfg.rate;
    lim.frame_burst = s->cfg.burst;
    user.id = ss->user_id;
    user.display_name = ss->display_name;
    user.role = (Parley__V1__Role)ss->role;
    gw_conn_send_msg(c, &f.base);
}

static void refuse_unauthenticated(gw_conn *c, uint64_t rid)
{
    gw_conn_server(c)->m.drops_unauth++;
    gw_conn_send_error(c, rid, PARLEY_ERR_UNAUTHENTICATED,
                       "the first frame must be authenticate", 1);
    gw_conn_close(c, GW_CLOSE_UNAUTH, 1);
}

/* One client frame, alone or out of a batch. */
static void on_frame(gw_conn *c, Parley__V1__ClientFrame *f, int in_batch)
{
    gw_server *s = gw_conn_server(c);
    gw_session *ss = gw_conn_session(c);
    uint64_t rid = f->request_id;
    if (f->kind_case == PARLEY__V1__CLIENT_FRAME__KIND_AUTHENTICATE) {
        on_authenticate(c, rid, f->authenticate->token);
        return;
    }
    if (!ss) {
        refuse_unauthenticated(c, rid);
        return;
    }
    switch (f->kind_case) {
    case PARLEY__V1__CLIENT_FRAME__KIND_PING: {
        Parley__V1__ServerFrame sf = PARLEY__V1__SERVER_FRAME__INIT;
        Parley__V1__Pong pong = PARLEY__V1__PONG__INIT;
        sf.request_id = rid;
        sf.kind_case = PARLEY__V1__SERVER_FRAME__KIND_PONG;
        sf.pong = &pong;
        pong.nonce = f->ping->nonce;
        gw_conn_send_msg(c, &sf.base);
        break;
    }
    case PARLEY__V1__CLIENT_FRAME__KIND_OPTIONS: {
        gw_conn_set_batch(c, f->options->batch);
        ss->presence = f->options->presence ? 1 : 0;
        ss->typing = f->options->typing ? 1 : 0;
        Parley__V1__ServerFrame sf = PARLEY__V1__SERVER_FRAME__INIT;
        Parley__V1__SessionOptions on = PARLEY__V1__SESSION_OPTIONS__INIT;
        on.batch = gw_conn_batch(c);
        on.presence = ss->presence;
        on.typing = ss->typing;
        sf.request_id = rid;
        sf.kind_case = PARLEY__V1__SERVER_FRAME__KIND_OPTIONS;
        sf.options = &on;
        gw_conn_send_msg(c, &sf.base);
        break;
    }
    case PARLEY__V1__CLIENT_FRAME__KIND_SUBSCRIBE:
        gw_rooms_subscribe(s, c, rid, f->subscribe, ss->token);
        break;
    case PARLEY__V1__CLIENT_FRAME__KIND_UNSUBSCRIBE:
        gw_rooms_unsubscribe(s, c, rid, f->unsubscribe->room);
        break;
    case PARLEY__V1__CLIENT_FRAME__KIND_PUBLISH:
        on_publish(c, ss, rid, f->publish);
        break;
    case PARLEY__V1__CLIENT_FRAME__KIND_TYPING:
        /* no answer: passed on, or dropped when too soon or not watched */
        gw_rooms_typing(s, c, f->typing->room, ss->token);
        break;
    case PARLEY__V1__CLIENT_FRAME__KIND_PRESENCE:
        gw_conn_send_error(c, rid, PARLEY_ERR_MALFORMED,
                           "presence is the gateway's to say: it follows "
                           "your subscriptions",
                           0);
        break;
    case PARLEY__V1__CLIENT_FRAME__KIND_BATCH:
        if (in_batch) {
            gw_conn_send_error(c, rid, PARLEY_ERR_MALFORMED,
                               "batches do not nest", 0);
            break;
        }
        /* each frame of a batch counts against the rate (the message
         * itself took one) */
        if (f->batch->n_frames > 1 &&
            gw_conn_rate_take(c, (double)f->batch->n_frames - 1) != 0)
            break;
        for (size_t i = 0; i < f->batch->n_frames && !gw_conn_closing(c); i++)
            on_frame(c, f->batch->frames[i], 1);
        break;
    default:
        gw_conn_send_error(c, rid, PARLEY_ERR_MALFORMED,
                           "frame has no known kind", 0);
        break;
    }
}

static void on_message(gw_conn *c, const unsigned char *data, size_t len,
                       int binary)
{
    ProtobufCMessage *m = NULL;
    char detail[200] = "";
    parley_err e;
    int json = gw_conn_json(c);

    if (binary != !json) {
        e = PARLEY_ERR_MALFORMED;
        snprintf(detail, sizeof detail, "%s frames expected on %s",
                 json ? "text" : "binary", json ? GW_PROTO_JSON : GW_PROTO_BIN);
    } else if (json) {
        e = gw_json_decode(&parley__v1__client_frame__descriptor,
                           (const char *)data, len, &m, detail, sizeof detail);
        if (e != PARLEY_OK && e != PARLEY_ERR_INVALID_UTF8)
            e = PARLEY_ERR_MALFORMED;
    } else {
        /* strict (rpc_check.c): a string holding a NUL is refused, never
         * cut, whatever its depth (a batch's frames too) */
        m = rpc_check_unpack(&parley__v1__client_frame__descriptor, data, len,
                             &e);
        snprintf(detail, sizeof detail, "%s",
                 e == PARLEY_ERR_INVALID_UTF8
                     ? "a string field holds a NUL or is not UTF-8"
                     : "not a parley.v1.ClientFrame");
    }
    if (e != PARLEY_OK) {
        uint64_t rid = m ? ((Parley__V1__ClientFrame *)m)->request_id : 0;
        if (m) protobuf_c_message_free_unpacked(m, NULL);
        if (!gw_conn_session(c))
            refuse_unauthenticated(c, rid);
        else
            gw_conn_send_error(c, rid, e, detail, 0);
        return;
    }
    on_frame(c, (Parley__V1__ClientFrame *)m, 0);
    protobuf_c_message_free_unpacked(m, NULL);
}

static void on_close(gw_conn *c)
{
    gw_server *s = gw_conn_server(c);
    gw_session *ss = gw_conn_session(c);
    gw_rooms_conn_gone(s, c);
    if (!ss) return;
    struct lws_dll2 *d;
    while ((d = lws_dll2_get_head(&ss->pubs)) != NULL) {
        gw_pub *p = lws_container_of(d, gw_pub, link);
        gw_call_forget(p->call);
        pub_free(p);
    }
    if (ss->token) {
        explicit_bzero(ss->token, strlen(ss->token));
        free(ss->token);
    }
    free(ss->user_id);
    free(ss->display_name);
    free(ss);
    gw_conn_set_session(c, NULL);
}

static int expired(gw_conn *c)
{
    gw_session *ss = gw_conn_session(c);
    return ss && auth_expired_at(gw_conn_server(c)->auth, ss->exp, gw_now_s());
}

const gw_conn_handlers gw_session_handlers = {on_message, on_close, expired};

const char *gw_session_token(const gw_conn *c)
{
    const gw_session *ss = gw_conn_session(c);
    return ss ? ss->token : NULL;
}

int gw_session_wants_presence(const gw_conn *c)
{
    const gw_session *ss = gw_conn_session(c);
    return ss && ss->presence;
}

int gw_session_wants_typing(const gw_conn *c)
{
    const gw_session *ss = gw_conn_session(c);
    return ss && ss->typing;
}

const char *gw_session_user(const gw_conn *c)
{
    const gw_session *ss = gw_conn_session(c);
    return ss ? ss->user_id : NULL;
}
