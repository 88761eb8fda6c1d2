/* gw_ws.c: WebSocket sessions at /v1/stream, subprotocols parley.v1.proto
 * (binary ClientFrame/ServerFrame) and parley.v1.json (proto3 JSON text).
 * Owns per-session state: message assembly with the frame-size limit, the
 * authenticate handshake and its timeout, the per-connection token bucket,
 * the send queue of shared buffer references with its slow-consumer bound,
 * the periodic sweep (auth timeout, WS pings, hang-up of dead peers), and
 * close codes. Frames are dispatched to rooms (subscribe/unsubscribe)
 * and upstream (publish). */
#include "gw.h"
#include "gw_json.h"
#include "parley/v1/stream.grpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- send queue ---- */

static void q_clear(gw_conn *c)
{
    while (c->q_n > 0) {
        gw_buf_unref(c->q[c->q_head]);
        c->q_head = (c->q_head + 1) % c->q_cap;
        c->q_n--;
    }
    c->q_bytes = 0;
}

int gw_conn_send(gw_conn *c, gw_buf *b, int enforce)
{
    if (c->close_code)
        return -1;
    if (enforce && (c->q_n >= c->srv->cfg.sendq_frames ||
                    c->q_bytes + b->len > c->srv->cfg.sendq_bytes)) {
        c->srv->m.drops_slow++;
        gw_conn_close(c, GW_CLOSE_SLOW, 0);
        return -1;
    }
    if (c->q_n == c->q_cap) {
        size_t ncap = c->q_cap ? c->q_cap * 2 : 16;
        gw_buf **nq = malloc(ncap * sizeof *nq);
        if (!nq) {
            gw_conn_close(c, GW_CLOSE_SLOW, 0);
            return -1;
        }
        for (size_t i = 0; i < c->q_n; i++)
            nq[i] = c->q[(c->q_head + i) % c->q_cap];
        free(c->q);
        c->q = nq;
        c->q_head = 0;
        c->q_cap = ncap;
    }
    c->q[(c->q_head + c->q_n) % c->q_cap] = gw_buf_ref(b);
    c->q_n++;
    c->q_bytes += b->len;
    lws_callback_on_writable(c->wsi);
    return 0;
}

int gw_conn_send_msg(gw_conn *c, const ProtobufCMessage *m)
{
    gw_buf *b = gw_buf_encode(m, c->json);
    if (!b) {
        gw_conn_close(c, GW_CLOSE_SLOW, 0);
        return -1;
    }
    int r = gw_conn_send(c, b, 0);
    gw_buf_unref(b);
    return r;
}

void gw_conn_send_error(gw_conn *c, uint64_t request_id, parley_err code,
                        const char *detail, int fatal)
{
    Parley__V1__ServerFrame f = PARLEY__V1__SERVER_FRAME__INIT;
    Parley__V1__Error er = PARLEY__V1__ERROR__INIT;
    f.request_id = request_id;
    f.kind_case = PARLEY__V1__SERVER_FRAME__KIND_ERROR;
    f.error = &er;
    er.code = (Parley__V1__ErrorCode)code;
    er.detail = (char *)(detail && *detail ? detail : parley_err_text(code));
    er.fatal = fatal;
    gw_conn_send_msg(c, &f.base);
}

void gw_conn_close(gw_conn *c, int code, int flush)
{
    if (!c->close_code)
        c->close_code = code; /* the first reason wins */
    if (!flush && !c->close_now) {
        c->close_now = 1;
        q_clear(c);
    }
    lws_callback_on_writable(c->wsi);
}

void gw_ws_close_all(gw_server *s, int code)
{
    for (gw_conn *c = s->conns; c; c = c->next)
        gw_conn_close(c, code, 0);
}

/* ---- the sweep ----
 *
 * Per-session deadlines (authenticate in time, ping when idle, hang up when
 * dead) are NOT lws timers: lws keeps every scheduled sul of a thread in one
 * sorted list and inserts by walking it, and each new session's deadline is
 * the latest, so one timer per session made accepting N sessions O(N^2)
 * (and lws's validity policy re-armed one on every pong). Instead one
 * gateway-wide sul fires every GW_SWEEP_US and walks s->conns once: O(N) per
 * tick, no allocation; 20,000 sessions a second is a few milliseconds of
 * pointer chasing. Deadlines are therefore checked with a granularity of
 * one tick (a 10 s timeout fires between 10 and 11 s). */

#define GW_SWEEP_US LWS_US_PER_SEC

/* The payload of our WS pings. lws hands a pong to LWS_CALLBACK_RECEIVE_PONG
 * only when it carries a payload, so it must not be empty. */
static const char gw_ping_payload[] = "parley";

static void sweep_conn(gw_server *s, gw_conn *c, lws_usec_t now)
{
    if (c->close_sent || c->hung_up)
        return; /* lws is ending it (close-ack timeout or the kill below) */
    if (!c->authed && !c->close_code &&
        now - c->opened_us >= (lws_usec_t)s->cfg.auth_timeout_s * LWS_US_PER_SEC) {
        s->m.drops_unauth++;
        gw_conn_send_error(c, 0, PARLEY_ERR_UNAUTHENTICATED,
                           "no authenticate frame in time", 1);
        gw_conn_close(c, GW_CLOSE_UNAUTH, 1);
    }
    lws_usec_t idle = now - c->last_rx_us;
    if (idle >= (lws_usec_t)s->cfg.hangup_s * LWS_US_PER_SEC) {
        /* Nothing from the peer, not even the pong: drop it without a
         * close handshake (a dead peer would never answer one), as lws's
         * validity hang-up did. The kill runs after this sweep returns. */
        c->hung_up = 1;
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    } else if (idle >= (lws_usec_t)s->cfg.ping_s * LWS_US_PER_SEC &&
               !c->ping_sent && !c->close_code) {
        c->ping_sent = 1;
        c->ping_due = 1;
        lws_callback_on_writable(c->wsi);
    }
}

static void sweep(lws_sorted_usec_list_t *sul)
{
    gw_server *s = lws_container_of(sul, gw_server, sul_sweep);
    lws_usec_t now = lws_now_usecs();
    for (gw_conn *c = s->conns; c; c = c->next)
        sweep_conn(s, c, now);
    lws_sul_schedule(s->ctx, 0, &s->sul_sweep, sweep, GW_SWEEP_US);
}

void gw_ws_sweep_start(gw_server *s)
{
    lws_sul_schedule(s->ctx, 0, &s->sul_sweep, sweep, GW_SWEEP_US);
}

void gw_ws_sweep_stop(gw_server *s)
{
    lws_sul_cancel(&s->sul_sweep);
}

/* ---- frames ---- */

/* ---- publishes ----
 *
 * A session's publishes ride ONE upstream Stream.Connect opened with the
 * user's token on its first publish (the core verifies the token once per
 * stream and batches what arrives into its group commit), instead of one
 * unary Stream.Publish each. Each publish goes up as ClientFrame{up_rid,
 * publish} with up_rid from the session's own counter; c->pubs maps it back
 * to the browser's requestId. If the stream ends (core down, cancelled),
 * every outstanding publish gets the error the unary path gave, and the next
 * publish opens a fresh stream. gw_ustream_cancel stops all callbacks, so
 * the stream's callbacks may use c directly: the session cancels its stream
 * before it goes, and the stream frees itself when its completions come. */

static void pub_answer_error(gw_conn *c, uint64_t rid, parley_err e,
                             const char *detail, int unavailable)
{
    if (unavailable)
        gw_conn_send_error(c, rid, PARLEY_ERR_INTERNAL,
                           "upstream core unavailable", 0);
    else
        gw_conn_send_error(c, rid, e, detail, 0);
}

/* Removes the entry of up_rid; its browser requestId in *rid. */
static int pub_take(gw_conn *c, uint64_t up_rid, uint64_t *rid)
{
    for (size_t i = 0; i < c->n_pubs; i++) {
        if (c->pubs[i].up_rid == up_rid) {
            *rid = c->pubs[i].rid;
            /* keep the order: answers mostly come oldest first */
            memmove(&c->pubs[i], &c->pubs[i + 1],
                    (c->n_pubs - i - 1) * sizeof *c->pubs);
            c->n_pubs--;
            return 1;
        }
    }
    return 0;
}

static void pub_stream_frame(gw_server *s, void *ud,
                             Parley__V1__ServerFrame *f)
{
    gw_conn *c = ud;
    uint64_t rid;
    (void)s;
    if ((f->kind_case == PARLEY__V1__SERVER_FRAME__KIND_ACK ||
         f->kind_case == PARLEY__V1__SERVER_FRAME__KIND_ERROR) &&
        pub_take(c, f->request_id, &rid)) {
        f->request_id = rid;
        if (f->kind_case == PARLEY__V1__SERVER_FRAME__KIND_ERROR) {
            gw_conn_send_error(c, rid, (parley_err)f->error->code,
                               f->error->detail, 0);
        } else {
            gw_conn_send_msg(c, &f->base);
        }
    }
    protobuf_c_message_free_unpacked(&f->base, NULL);
}

static void pub_stream_end(gw_server *s, void *ud, parley_err e,
                           const char *detail, int unavailable)
{
    gw_conn *c = ud;
    (void)s;
    c->pub_st = NULL; /* it frees itself */
    for (size_t i = 0; i < c->n_pubs; i++)
        pub_answer_error(c, c->pubs[i].rid, e, detail, unavailable);
    c->n_pubs = 0;
}

static void pub_streams_drop(gw_conn *c)
{
    gw_ustream_cancel(c->pub_st);
    c->pub_st = NULL;
    c->n_pubs = 0;
}

void gw_ws_pub_streams_cancel(gw_server *s)
{
    for (gw_conn *c = s->conns; c; c = c->next)
        pub_streams_drop(c);
}

static void on_publish(gw_conn *c, uint64_t rid,
                       Parley__V1__PublishRequest *pr)
{
    if (c->n_pubs == c->cap_pubs) {
        size_t ncap = c->cap_pubs ? c->cap_pubs * 2 : 8;
        struct gw_pub *n = realloc(c->pubs, ncap * sizeof *n);
        if (!n) {
            gw_conn_send_error(c, rid, PARLEY_ERR_INTERNAL, NULL, 0);
            return;
        }
        c->pubs = n;
        c->cap_pubs = ncap;
    }
    Parley__V1__ClientFrame cf = PARLEY__V1__CLIENT_FRAME__INIT;
    cf.request_id = ++c->pub_next_rid;
    cf.kind_case = PARLEY__V1__CLIENT_FRAME__KIND_PUBLISH;
    cf.publish = pr;
    parley_err e = PARLEY_OK;
    if (!c->pub_st) {
        c->pub_st = gw_up_connect(c->srv, c->token, &cf.base, pub_stream_frame,
                                  pub_stream_end, c);
        if (!c->pub_st)
            e = PARLEY_ERR_INTERNAL;
        else
            c->srv->m.pub_streams_opened++;
    } else {
        e = gw_ustream_send(c->pub_st, &cf.base);
    }
    if (e != PARLEY_OK) {
        gw_conn_send_error(c, rid, e, "upstream core unavailable", 0);
        return;
    }
    c->srv->m.pub_stream_frames++;
    c->pubs[c->n_pubs].up_rid = cf.request_id;
    c->pubs[c->n_pubs].rid = rid;
    c->n_pubs++;
}

static void on_authenticate(gw_conn *c, uint64_t rid, const char *token)
{
    auth_identity id;
    parley_err e = auth_verify(c->srv->auth, token, gw_now_s(), &id);
    if (e != PARLEY_OK) {
        c->srv->m.drops_unauth++;
        gw_conn_send_error(c, rid, PARLEY_ERR_UNAUTHENTICATED,
                           "token missing, invalid or expired", 1);
        gw_conn_close(c, GW_CLOSE_UNAUTH, 1);
        return;
    }
    if (c->authed && strcmp(id.id, c->who.id) != 0) {
        gw_conn_send_error(c, rid, PARLEY_ERR_UNAUTHENTICATED,
                           "a session keeps its user", 1);
        gw_conn_close(c, GW_CLOSE_UNAUTH, 1);
        return;
    }
    char *t = strdup(token);
    if (!t) {
        gw_conn_send_error(c, rid, PARLEY_ERR_INTERNAL, NULL, 0);
        return;
    }
    free(c->token);
    c->token = t;
    c->who = id;
    c->authed = 1;

    Parley__V1__ServerFrame f = PARLEY__V1__SERVER_FRAME__INIT;
    Parley__V1__Authenticated a = PARLEY__V1__AUTHENTICATED__INIT;
    Parley__V1__Author user = PARLEY__V1__AUTHOR__INIT;
    Parley__V1__Limits lim = PARLEY__V1__LIMITS__INIT;
    f.request_id = rid;
    f.kind_case = PARLEY__V1__SERVER_FRAME__KIND_AUTHENTICATED;
    f.authenticated = &a;
    a.user = &user;
    a.limits = &lim; /* what rate_ok and on_receive enforce on this session */
    lim.max_frame_bytes = c->srv->cfg.max_frame > UINT32_MAX
                              ? UINT32_MAX
                              : (uint32_t)c->srv->cfg.max_frame;
    lim.frame_rate = c->srv->cfg.rate;
    lim.frame_burst = c->srv->cfg.burst;
    user.id = c->who.id;
    user.display_name = c->who.display_name;
    user.role = (Parley__V1__Role)c->who.role;
    gw_conn_send_msg(c, &f.base);
}

static void on_frame(gw_conn *c, const unsigned char *data, size_t len,
                     int binary)
{
    ProtobufCMessage *m = NULL;
    char detail[200] = "";
    parley_err e;

    if (binary != !c->json) {
        e = PARLEY_ERR_MALFORMED;
        snprintf(detail, sizeof detail, "%s frames expected on %s",
                 c->json ? "text" : "binary",
                 c->json ? GW_PROTO_JSON : GW_PROTO_BIN);
    } else if (c->json) {
        e = gw_json_decode(&parley__v1__client_frame__descriptor,
                           (const char *)data, len, &m, detail, sizeof detail);
        if (e != PARLEY_OK)
            e = PARLEY_ERR_MALFORMED;
    } else {
        m = protobuf_c_message_unpack(&parley__v1__client_frame__descriptor,
                                      NULL, len, data);
        e = m ? PARLEY_OK : PARLEY_ERR_MALFORMED;
        if (!m)
            snprintf(detail, sizeof detail, "not a parley.v1.ClientFrame");
    }
    if (e != PARLEY_OK) {
        if (!c->authed) {
            c->srv->m.drops_unauth++;
            gw_conn_send_error(c, 0, PARLEY_ERR_UNAUTHENTICATED,
                               "the first frame must be authenticate", 1);
            gw_conn_close(c, GW_CLOSE_UNAUTH, 1);
            return;
        }
        gw_conn_send_error(c, 0, e, detail, 0);
        return;
    }
    Parley__V1__ClientFrame *f = (Parley__V1__ClientFrame *)m;
    uint64_t rid = f->request_id;
    if (f->kind_case == PARLEY__V1__CLIENT_FRAME__KIND_AUTHENTICATE) {
        on_authenticate(c, rid, f->authenticate->token);
    } else if (!c->authed) {
        c->srv->m.drops_unauth++;
        gw_conn_send_error(c, rid, PARLEY_ERR_UNAUTHENTICATED,
                           "the first frame must be authenticate", 1);
        gw_conn_close(c, GW_CLOSE_UNAUTH, 1);
    } else {
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
        case PARLEY__V1__CLIENT_FRAME__KIND_SUBSCRIBE:
            gw_rooms_subscribe(c->srv, c, rid, f->subscribe);
            break;
        case PARLEY__V1__CLIENT_FRAME__KIND_UNSUBSCRIBE:
            gw_rooms_unsubscribe(c->srv, c, rid, f->unsubscribe->room);
            break;
        case PARLEY__V1__CLIENT_FRAME__KIND_PUBLISH:
            on_publish(c, rid, f->publish);
            break;
        default:
            gw_conn_send_error(c, rid, PARLEY_ERR_MALFORMED,
                               "frame has no known kind", 0);
            break;
        }
    }
    protobuf_c_message_free_unpacked(m, NULL);
}

/* Token bucket: 1 if one more message may pass. */
static int rate_ok(gw_conn *c)
{
    lws_usec_t now = lws_now_usecs();
    double dt = (double)(now - c->last_us) / 1e6;
    c->last_us = now;
    c->tokens += dt * c->srv->cfg.rate;
    if (c->tokens > c->srv->cfg.burst)
        c->tokens = c->srv->cfg.burst;
    if (c->tokens < 1.0)
        return 0;
    c->tokens -= 1.0;
    return 1;
}

static int on_receive(gw_conn *c, const void *in, size_t len)
{
    gw_server *s = c->srv;
    int first = lws_is_first_fragment(c->wsi);
    int final = lws_is_final_fragment(c->wsi) &&
                !lws_remaining_packet_payload(c->wsi);

    c->last_rx_us = lws_now_usecs();
    c->ping_sent = 0;
    if (c->close_code)
        return 0; /* closing: ignore what still arrives */
    if (first && c->rx_len == 0 && !c->rx_oversize) {
        s->m.msgs_in++;
        if (!rate_ok(c)) {
            s->m.drops_rate++;
            gw_conn_close(c, GW_CLOSE_RATE, 0);
            return 0;
        }
    }
    if (!c->rx_oversize && c->rx_len + len > s->cfg.max_frame) {
        /* Keep reading to the end of the message so the close frame is
         * not lost to a reset, then close 1009. */
        c->rx_oversize = 1;
        c->rx_len = 0;
    }
    if (c->rx_oversize) {
        if (final) {
            s->m.drops_big++;
            gw_conn_close(c, GW_CLOSE_TOO_BIG, 0);
        }
        return 0;
    }
    if (c->rx_len + len > c->rx_cap) {
        size_t ncap = c->rx_cap ? c->rx_cap : 1024;
        while (ncap < c->rx_len + len)
            ncap *= 2;
        unsigned char *n = realloc(c->rx, ncap);
        if (!n)
            return -1;
        c->rx = n;
        c->rx_cap = ncap;
    }
    memcpy(c->rx + c->rx_len, in, len);
    c->rx_len += len;
    if (final) {
        size_t n = c->rx_len;
        c->rx_len = 0;
        on_frame(c, c->rx, n, lws_frame_is_binary(c->wsi));
        if (c->rx_cap > 64 * 1024) { /* do not keep a big buffer around */
            free(c->rx);
            c->rx = NULL;
            c->rx_cap = 0;
        }
    }
    return 0;
}

static int on_writeable(gw_conn *c)
{
    gw_server *s = c->srv;
    if (c->close_sent)
        return 0; /* lws is waiting for the peer's close; stay quiet */
    if (c->close_now || (c->close_code && c->q_n == 0)) {
        c->close_sent = 1;
        char reason[32];
        snprintf(reason, sizeof reason, "%d", c->close_code);
        lws_close_reason(c->wsi, (enum lws_close_status)c->close_code,
                         (unsigned char *)reason, strlen(reason));
        return -1;
    }
    if (c->ping_due) {
        unsigned char ping[LWS_PRE + sizeof gw_ping_payload];
        size_t n = sizeof gw_ping_payload - 1;
        c->ping_due = 0;
        memcpy(ping + LWS_PRE, gw_ping_payload, n);
        if (lws_write(c->wsi, ping + LWS_PRE, n, LWS_WRITE_PING) < (int)n)
            return -1;
        if (lws_send_pipe_choked(c->wsi)) {
            if (c->q_n > 0)
                lws_callback_on_writable(c->wsi);
            return 0;
        }
    }
    while (c->q_n > 0) {
        gw_buf *b = c->q[c->q_head];
        int n = lws_write(c->wsi, b->data + LWS_PRE, b->len,
                          b->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
        if (n < (int)b->len)
            return -1;
        s->m.msgs_out++;
        s->m.bytes_out += b->len;
        c->q_bytes -= b->len;
        c->q_head = (c->q_head + 1) % c->q_cap;
        c->q_n--;
        gw_buf_unref(b);
        if (lws_send_pipe_choked(c->wsi))
            break;
    }
    if (c->q_bytes <= s->cfg.sendq_bytes / 4 && c->q_n <= s->cfg.sendq_frames / 4)
        gw_rooms_conn_drained(s, c);
    if (c->q_n > 0 || c->close_code)
        lws_callback_on_writable(c->wsi);
    return 0;
}

static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason,
                       void *user, void *in, size_t len)
{
    gw_conn *c = user;
    gw_server *s = gw_server_of(wsi);

    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        memset(c, 0, sizeof *c);
        c->wsi = wsi;
        c->srv = s;
        c->json = strcmp(lws_get_protocol(wsi)->name, GW_PROTO_JSON) == 0;
        c->h = gw_handle_new(c);
        if (!c->h)
            return -1;
        c->tokens = s->cfg.burst;
        c->last_us = lws_now_usecs();
        c->opened_us = c->last_rx_us = c->last_us;
        c->next = s->conns;
        if (s->conns)
            s->conns->prev = c;
        s->conns = c;
        s->n_conns++;
        s->m.ws_accepted++;
        if (s->shutting_down)
            gw_conn_close(c, GW_CLOSE_GOING_AWAY, 0);
        return 0;

    case LWS_CALLBACK_RECEIVE:
        return on_receive(c, in, len);

    case LWS_CALLBACK_RECEIVE_PONG:
        c->last_rx_us = lws_now_usecs();
        c->ping_sent = 0;
        return 0;

    case LWS_CALLBACK_SERVER_WRITEABLE:
        return on_writeable(c);

    case LWS_CALLBACK_CLOSED:
        if (!c->h)
            return 0;
        gw_rooms_conn_gone(s, c);
        pub_streams_drop(c);
        free(c->pubs);
        q_clear(c);
        free(c->q);
        free(c->rx);
        if (c->token) {
            memset(c->token, 0, strlen(c->token));
            free(c->token);
        }
        c->h->p = NULL;
        gw_handle_unref(c->h);
        c->h = NULL;
        if (c->prev)
            c->prev->next = c->next;
        else
            s->conns = c->next;
        if (c->next)
            c->next->prev = c->prev;
        s->n_conns--;
        s->m.ws_closed++;
        return 0;

    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        return 0; /* handled once, by the http protocol */

    default:
        return 0;
    }
}

const struct lws_protocols gw_ws_protocol_bin = {
    GW_PROTO_BIN, ws_callback, sizeof(gw_conn), 16384, 0, NULL, 0
};
const struct lws_protocols gw_ws_protocol_json = {
    GW_PROTO_JSON, ws_callback, sizeof(gw_conn), 16384, 0, NULL, 0
};
