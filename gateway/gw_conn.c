/* gw_conn.c: a WebSocket connection at /v1/stream, subprotocols
 * parley.v1.proto (binary) and parley.v1.json (text). Owns message
 * assembly with the frame-size limit, the inbound token bucket, the send
 * side, close codes and the periodic sweep of deadlines. Whole messages go
 * to the session (gw_session.c) through gw_conn_handlers.
 *
 * The send side. A connection has its own queue (references to encoded
 * frames: answers, errors, History replay pages; allocated on first use,
 * freed when empty) and feeds it pulls from (a subscription's tail in its
 * room's ring, gw_rooms.c). On a write callback the writer collects the
 * own queue first, then every feed, up to GW_WRITE_BUDGET bytes, and
 * writes them in ONE socket write: each frame with its own WebSocket
 * header, or, once the client turned on SessionOptions.batch, all of them
 * as one ServerFrame{batch} message. The fan-out profile had three
 * quarters of the gateway's time in send(2), one call per event per
 * socket; a burst now costs one call per socket. The frames are framed
 * here (server frames are never masked) and handed to lws as raw bytes,
 * which lws sends or, if the socket takes only part, keeps and finishes
 * before the next write callback.
 *
 * Bound: when an event is charged to a connection whose socket did not
 * take a write for a whole service round, frames waiting (own queue plus
 * what feeds were charged for) over --sendq-frames, or bytes over
 * --sendq-bytes, close it 4508. Answers alone never cut.
 *
 * Deadlines (authenticate in time, ping when idle, hang up when dead) are
 * NOT lws timers: lws keeps every scheduled sul of a thread in one sorted
 * list and inserts by walking it, so one timer per connection made
 * accepting N connections O(N^2). One gateway-wide sul fires every
 * GW_SWEEP_US and walks the connections once. */
#include "gw_conn.h"

#include "defaults.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ring.h"
#include "rpc_wire.h"
#include "wire.h"

#define GW_SWEEP_US LWS_US_PER_SEC
/* Payload bytes one write collects (a single larger frame still goes). */
#define GW_WRITE_BUDGET (48 * 1024)
/* Frames one write collects. */
#define GW_WRITE_FRAMES 512
/* The own queue's hard limit (answers and History pages; History is
 * paced, answers follow the client's own requests). */
#define GW_OWN_QUEUE_MAX (1u << 20)
/* Answers waiting in the own queue are cut at this many times
 * --sendq-frames / --sendq-bytes (gw_conn_send). */
#define GW_ANSWER_SLACK 4
/* WebSocket header of a server frame: 2, 4 or 10 bytes. */
#define GW_WS_HEADER_MAX 10
/* The largest fragment lws hands over per callback; longer messages are
 * assembled here. lws allocates this much per connection for all its life:
 * authenticate, subscribe and most publishes fit, bigger bodies come in
 * pieces. */
#define GW_RX_CHUNK 512

/* The payload of our WS pings. lws hands a pong to LWS_CALLBACK_RECEIVE_PONG
 * only when it carries a payload, so it must not be empty. */
static const char gw_ping_payload[] = "parley";

struct gw_conn {
    struct lws *wsi;
    gw_server *srv;
    gw_handle *h;
    void *session;
    unsigned json : 1, batch : 1, authed : 1, rx_oversize : 1;
    unsigned close_now : 1;  /* drop what waits and close at once */
    unsigned close_sent : 1; /* the close frame is on its way */
    unsigned ping_due : 1;   /* a WS ping waits for the next write */
    unsigned ping_sent : 1;  /* pinged since last_rx_us */
    unsigned hung_up : 1;    /* dropped without a close handshake */
    unsigned write_asked : 1;
    uint64_t asked_round; /* the service round the write was asked in */
    char ip[48];          /* the peer's address (per-address limit) */
    int close_code;       /* nonzero: closing, with this code */
    unsigned char *rx;
    size_t rx_len, rx_cap;
    ring q; /* gw_buf *, the own queue */
    size_t q_bytes;
    long feed_frames, feed_bytes; /* waiting in feeds, as charged */
    double tokens;
    lws_usec_t last_us;    /* token bucket refill */
    lws_usec_t opened_us;  /* when the connection was established */
    lws_usec_t last_rx_us; /* last frame (or pong) from the peer */
    lws_dll2_owner_t feeds;
    lws_dll2_t link; /* srv->conns */
};

struct gw_writer {
    gw_conn *c;
    size_t n, bytes;
    struct {
        const unsigned char *p;
        size_t len;
    } it[GW_WRITE_FRAMES];
};

void gw_conn_set_handlers(gw_server *s, const gw_conn_handlers *h)
{
    s->conn_h = h;
}

gw_server *gw_conn_server(const gw_conn *c) { return c->srv; }
gw_handle *gw_conn_handle(gw_conn *c) { return c->h; }
int gw_conn_json(const gw_conn *c) { return c->json; }
void gw_conn_set_batch(gw_conn *c, int on) { c->batch = on ? 1 : 0; }
int gw_conn_batch(const gw_conn *c) { return c->batch; }
void *gw_conn_session(const gw_conn *c) { return c->session; }
void gw_conn_set_session(gw_conn *c, void *session) { c->session = session; }
void gw_conn_set_authed(gw_conn *c) { c->authed = 1; }
int gw_conn_closing(const gw_conn *c) { return c->close_code != 0; }
size_t gw_conn_queued(const gw_conn *c) { return ring_len(&c->q); }
size_t gw_conn_count(const gw_server *s) { return (size_t)s->conns.count; }

int gw_conn_busy(const gw_conn *c)
{
    const gw_config *cfg = &c->srv->cfg;
    /* lws keeps what a socket did not take of a write and sends it first:
     * a choked socket is busy even with an empty queue (one poll(2), only
     * asked while a History replay is paced) */
    return c->q_bytes > cfg->sendq_bytes / 2 ||
           ring_len(&c->q) > cfg->sendq_frames / 2 ||
           lws_send_pipe_choked(c->wsi);
}

void gw_conn_want_write(gw_conn *c)
{
    if (c->write_asked) return;
    c->write_asked = 1;
    c->asked_round = c->srv->rounds;
    lws_callback_on_writable(c->wsi);
}

/* A write was asked for before this service round and lws has not called
 * back: epoll did not find the socket writable in a whole round, the peer
 * is not reading. (A burst that arrives in one drain is charged before any
 * write could happen; that alone is not slowness.) */
static int stalled(const gw_conn *c)
{
    return c->write_asked && c->srv->rounds > c->asked_round;
}

/* ---- the own queue ---- */

static void q_clear(gw_conn *c)
{
    gw_buf *b;
    while (ring_pop(&c->q, &b) == 0) gw_buf_unref(b);
    ring_free(&c->q);
    c->q_bytes = 0;
}

int gw_conn_send(gw_conn *c, gw_buf *b)
{
    if (c->close_code) return -1;
    /* Answers are not cut by the bound itself (a client may pipeline
     * requests before it reads their answers), but by GW_ANSWER_SLACK times
     * it: a client that sends and never reads cannot make the gateway hold
     * its answers without end. */
    /* (plus one whole History page: a replay asks for the next page only
     * below half the bound, and a page must always fit) */
    const gw_config *cfg = &c->srv->cfg;
    if (ring_len(&c->q) >=
            GW_ANSWER_SLACK * cfg->sendq_frames + cfg->replay_page ||
        c->q_bytes + b->len >
            GW_ANSWER_SLACK * cfg->sendq_bytes + PARLEY_CLIENT_RECV_MAX ||
        ring_push(&c->q, &b) != 0) {
        c->srv->m.drops_slow++;
        gw_conn_close(c, GW_CLOSE_SLOW, 0);
        return -1;
    }
    gw_buf_ref(b);
    c->q_bytes += b->len;
    gw_conn_want_write(c);
    return 0;
}

int gw_conn_send_msg(gw_conn *c, const ProtobufCMessage *m)
{
    if (c->close_code) return -1;
    gw_buf *b = gw_buf_encode(m, c->json);
    if (!b) {
        gw_conn_close(c, GW_CLOSE_SLOW, 0);
        return -1;
    }
    int r = gw_conn_send(c, b);
    gw_buf_unref(b);
    return r;
}

void gw_conn_send_error(gw_conn *c, uint64_t request_id, parley_err code,
                        const char *detail, int fatal)
{
    gw_conn_send_error_rule(c, request_id, code, PARLEY_RULE_NONE, detail,
                            fatal);
}

void gw_conn_send_error_rule(gw_conn *c, uint64_t request_id, parley_err code,
                             parley_rule rule, const char *detail, int fatal)
{
    Parley__V1__ServerFrame f = PARLEY__V1__SERVER_FRAME__INIT;
    Parley__V1__Error er = PARLEY__V1__ERROR__INIT;
    f.request_id = request_id;
    f.kind_case = PARLEY__V1__SERVER_FRAME__KIND_ERROR;
    f.error = &er;
    er.code = (Parley__V1__ErrorCode)code;
    er.detail = (char *)(detail && *detail ? detail : parley_err_text(code));
    er.fatal = fatal;
    er.rule = (Parley__V1__Rule)rule;
    gw_conn_send_msg(c, &f.base);
}

/* ---- feeds ---- */

void gw_conn_add_feed(gw_conn *c, gw_feed *fd)
{
    lws_dll2_add_tail(&fd->link, &c->feeds);
}

void gw_conn_remove_feed(gw_conn *c, gw_feed *fd)
{
    (void)c;
    lws_dll2_remove(&fd->link);
}

gw_feed *gw_conn_next_feed(gw_conn *c, gw_feed *prev)
{
    struct lws_dll2 *d = prev ? prev->link.next : lws_dll2_get_head(&c->feeds);
    return d ? lws_container_of(d, gw_feed, link) : NULL;
}

int gw_conn_charge(gw_conn *c, long frames, long bytes, int enforce)
{
    c->feed_frames += frames;
    c->feed_bytes += bytes;
    assert(c->feed_frames >= 0 && c->feed_bytes >= 0);
    if (!enforce || c->close_code) return c->close_code ? -1 : 0;
    const gw_config *cfg = &c->srv->cfg;
    if (((size_t)c->feed_frames + ring_len(&c->q) > cfg->sendq_frames ||
         (size_t)c->feed_bytes + c->q_bytes > cfg->sendq_bytes) &&
        stalled(c)) {
        c->srv->m.drops_slow++;
        gw_conn_close(c, GW_CLOSE_SLOW, 0);
        return -1;
    }
    return 0;
}

/* ---- rate ---- */

int gw_conn_rate_take(gw_conn *c, double n)
{
    lws_usec_t now = lws_now_usecs();
    double dt = (double)(now - c->last_us) / 1e6;
    c->last_us = now;
    c->tokens += dt * c->srv->cfg.rate;
    if (c->tokens > c->srv->cfg.burst) c->tokens = c->srv->cfg.burst;
    if (c->tokens < n) {
        c->srv->m.drops_rate++;
        gw_conn_close(c, GW_CLOSE_RATE, 0);
        return -1;
    }
    c->tokens -= n;
    return 0;
}

/* ---- closing ---- */

void gw_conn_close(gw_conn *c, int code, int flush)
{
    if (!c->close_code) c->close_code = code; /* the first reason wins */
    if (!flush && !c->close_now) {
        c->close_now = 1;
        q_clear(c);
    }
    gw_conn_want_write(c);
}

void gw_conn_close_all(gw_server *s, int code)
{
    lws_start_foreach_dll(struct lws_dll2 *, d, lws_dll2_get_head(&s->conns))
    {
        gw_conn_close(lws_container_of(d, gw_conn, link), code, 0);
    }
    lws_end_foreach_dll(d);
}

/* ---- the sweep ---- */

static void sweep_conn(gw_server *s, gw_conn *c, lws_usec_t now)
{
    if (c->close_sent || c->hung_up)
        return; /* lws is ending it (close-ack timeout or the kill below) */
    if (c->authed && !c->close_code && s->conn_h->expired &&
        s->conn_h->expired(c)) {
        /* the session's token expired and was not renewed in time */
        s->m.drops_expired++;
        gw_conn_send_error(c, 0, PARLEY_ERR_TOKEN_EXPIRED,
                           "the session's token expired; renew it", 1);
        gw_conn_close(c, GW_CLOSE_TOKEN_EXPIRED, 1);
        return;
    }
    if (!c->authed && !c->close_code &&
        now - c->opened_us >=
            (lws_usec_t)s->cfg.auth_timeout_s * LWS_US_PER_SEC) {
        s->m.drops_unauth++;
        gw_conn_send_error(c, 0, PARLEY_ERR_UNAUTHENTICATED,
                           "no authenticate frame in time", 1);
        gw_conn_close(c, GW_CLOSE_UNAUTH, 1);
    }
    lws_usec_t idle = now - c->last_rx_us;
    if (idle >= (lws_usec_t)s->cfg.hangup_s * LWS_US_PER_SEC) {
        /* Nothing from the peer, not even the pong: drop it without a
         * close handshake (a dead peer would never answer one). The kill
         * runs after this sweep returns. */
        c->hung_up = 1;
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    } else if (idle >= (lws_usec_t)s->cfg.ping_s * LWS_US_PER_SEC &&
               !c->ping_sent && !c->close_code) {
        c->ping_sent = 1;
        c->ping_due = 1;
        gw_conn_want_write(c);
    }
}

static void sweep(lws_sorted_usec_list_t *sul)
{
    gw_server *s = lws_container_of(sul, gw_server, sul_sweep);
    lws_usec_t now = lws_now_usecs();
    lws_start_foreach_dll(struct lws_dll2 *, d, lws_dll2_get_head(&s->conns))
    {
        sweep_conn(s, lws_container_of(d, gw_conn, link), now);
    }
    lws_end_foreach_dll(d);
    lws_sul_schedule(s->ctx, 0, &s->sul_sweep, sweep, GW_SWEEP_US);
}

void gw_conn_sweep_start(gw_server *s)
{
    lws_sul_schedule(s->ctx, 0, &s->sul_sweep, sweep, GW_SWEEP_US);
}

void gw_conn_sweep_stop(gw_server *s) { lws_sul_cancel(&s->sul_sweep); }

/* ---- receiving ---- */

static int on_receive(gw_conn *c, const void *in, size_t len)
{
    gw_server *s = c->srv;
    int first = lws_is_first_fragment(c->wsi);
    int final =
        lws_is_final_fragment(c->wsi) && !lws_remaining_packet_payload(c->wsi);

    c->last_rx_us = lws_now_usecs();
    c->ping_sent = 0;
    if (c->close_code) return 0; /* closing: ignore what still arrives */
    if (first && c->rx_len == 0 && !c->rx_oversize) {
        s->m.msgs_in++;
        if (gw_conn_rate_take(c, 1.0) != 0) return 0;
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
    if (final && c->rx_len == 0) { /* the usual case: one piece */
        s->conn_h->on_message(c, in, len, lws_frame_is_binary(c->wsi));
        return 0;
    }
    if (c->rx_len + len > c->rx_cap) {
        size_t ncap = c->rx_cap ? c->rx_cap : 1024;
        while (ncap < c->rx_len + len) ncap *= 2;
        unsigned char *n = realloc(c->rx, ncap);
        if (!n) return -1;
        c->rx = n;
        c->rx_cap = ncap;
    }
    memcpy(c->rx + c->rx_len, in, len);
    c->rx_len += len;
    if (final) {
        size_t n = c->rx_len;
        c->rx_len = 0;
        s->conn_h->on_message(c, c->rx, n, lws_frame_is_binary(c->wsi));
        free(c->rx); /* assembly is rare: keep no buffer around */
        c->rx = NULL;
        c->rx_cap = 0;
    }
    return 0;
}

/* ---- writing ---- */

int gw_writer_add(gw_writer *w, const unsigned char *p, size_t n)
{
    if (w->n == GW_WRITE_FRAMES || (w->n > 0 && w->bytes + n > GW_WRITE_BUDGET))
        return -1;
    w->it[w->n].p = p;
    w->it[w->n].len = n;
    w->n++;
    w->bytes += n;
    return 0;
}

static size_t ws_header(unsigned char *out, int text, size_t len)
{
    out[0] = 0x80 | (text ? 0x1 : 0x2); /* FIN + opcode */
    if (len < 126) {
        out[1] = (unsigned char)len;
        return 2;
    }
    if (len <= 0xffff) {
        out[1] = 126;
        out[2] = (unsigned char)(len >> 8);
        out[3] = (unsigned char)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    return 10;
}

static unsigned char *wbuf_reserve(gw_server *s, size_t need)
{
    if (need > s->wbuf_cap) {
        size_t cap = s->wbuf_cap ? s->wbuf_cap : 64 * 1024;
        while (cap < need) cap *= 2;
        unsigned char *n = realloc(s->wbuf, cap);
        if (!n) return NULL;
        s->wbuf = n;
        s->wbuf_cap = cap;
    }
    return s->wbuf;
}

/* The frames of w as one or more WebSocket messages in s->wbuf (after
 * LWS_PRE); their length, or 0 when out of memory. */
static size_t frame_write(gw_conn *c, const gw_writer *w)
{
    gw_server *s = c->srv;
    static const char jopen[] = "{\"batch\":{\"frames\":[", jclose[] = "]}}";
    static uint32_t f_batch, f_frames;
    if (!f_batch) {
        f_batch =
            rpc_wire_field(&parley__v1__server_frame__descriptor, "batch");
        f_frames =
            rpc_wire_field(&parley__v1__server_batch__descriptor, "frames");
    }
    int batch = c->batch && w->n > 1;
    size_t need = LWS_PRE + w->bytes +
                  w->n * (batch ? WIRE_PREFIX_MAX : GW_WS_HEADER_MAX) +
                  GW_WS_HEADER_MAX + WIRE_PREFIX_MAX + sizeof jopen +
                  sizeof jclose;
    unsigned char *base = wbuf_reserve(s, need);
    if (!base) return 0;
    unsigned char *p = base + LWS_PRE;
    if (!batch) {
        for (size_t i = 0; i < w->n; i++) {
            p += ws_header(p, c->json, w->it[i].len);
            memcpy(p, w->it[i].p, w->it[i].len);
            p += w->it[i].len;
        }
        return (size_t)(p - (base + LWS_PRE));
    }
    size_t body;
    if (c->json) {
        body = sizeof jopen - 1 + (w->n - 1) + w->bytes + sizeof jclose - 1;
    } else {
        size_t inner = 0;
        for (size_t i = 0; i < w->n; i++)
            inner +=
                wire_len_prefix_size(f_frames, w->it[i].len) + w->it[i].len;
        body = wire_len_prefix_size(f_batch, inner) + inner;
        p += ws_header(p, 0, body);
        p += wire_put_len_prefix(p, f_batch, inner);
    }
    if (c->json) {
        p += ws_header(p, 1, body);
        memcpy(p, jopen, sizeof jopen - 1);
        p += sizeof jopen - 1;
    }
    for (size_t i = 0; i < w->n; i++) {
        if (c->json && i > 0) *p++ = ',';
        if (!c->json) p += wire_put_len_prefix(p, f_frames, w->it[i].len);
        memcpy(p, w->it[i].p, w->it[i].len);
        p += w->it[i].len;
    }
    if (c->json) {
        memcpy(p, jclose, sizeof jclose - 1);
        p += sizeof jclose - 1;
    }
    s->m.batches_out++;
    return (size_t)(p - (base + LWS_PRE));
}

static int on_writeable(gw_conn *c)
{
    gw_server *s = c->srv;
    c->write_asked = 0;
    if (c->close_sent) return 0; /* lws waits for the peer's close */
    if (c->close_now ||
        (c->close_code && ring_len(&c->q) == 0 && c->feed_frames == 0)) {
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
            gw_conn_want_write(c);
            return 0;
        }
    }
    gw_writer w;
    w.c = c;
    w.n = w.bytes = 0;
    size_t own = 0;
    for (; own < ring_len(&c->q); own++) {
        gw_buf *b = *(gw_buf **)ring_at(&c->q, own);
        if (gw_writer_add(&w, b->data, b->len) != 0) break;
    }
    int more = own < ring_len(&c->q);
    if (!more) {
        /* Feeds in turn; the first one moves to the back each write, so
         * none waits behind a busy one for long. */
        struct lws_dll2 *first = lws_dll2_get_head(&c->feeds);
        lws_start_foreach_dll_safe(struct lws_dll2 *, d, d1,
                                   lws_dll2_get_head(&c->feeds))
        {
            gw_feed *fd = lws_container_of(d, gw_feed, link);
            if (fd->pull(fd, &w)) more = 1;
        }
        lws_end_foreach_dll_safe(d, d1);
        if (first && c->feeds.count > 1) {
            lws_dll2_remove(first);
            lws_dll2_add_tail(first, &c->feeds);
        }
    }
    if (c->close_now) {
        /* a feed cut the connection (slow consumer): the own queue was
         * dropped, nothing collected is written */
        gw_conn_want_write(c);
        return 0;
    }
    if (w.n > 0) {
        size_t len = frame_write(c, &w);
        if (!len) return -1;
        if (lws_write(c->wsi, s->wbuf + LWS_PRE, len, LWS_WRITE_HTTP) <
            (int)len)
            return -1;
        s->m.writes++;
        s->m.msgs_out += w.n;
        s->m.bytes_out += w.bytes;
    }
    if (w.n > own) {
        lws_start_foreach_dll_safe(struct lws_dll2 *, d, d1,
                                   lws_dll2_get_head(&c->feeds))
        {
            gw_feed *fd = lws_container_of(d, gw_feed, link);
            if (fd->written) fd->written(fd);
        }
        lws_end_foreach_dll_safe(d, d1);
    }
    for (size_t i = 0; i < own; i++) {
        gw_buf *b;
        ring_pop(&c->q, &b);
        c->q_bytes -= b->len;
        gw_buf_unref(b);
    }
    if (ring_len(&c->q) == 0) ring_free(&c->q); /* no memory while idle */
    const gw_config *cfg = &s->cfg;
    if (own > 0 && c->q_bytes <= cfg->sendq_bytes / 4 &&
        ring_len(&c->q) <= cfg->sendq_frames / 4) {
        lws_start_foreach_dll_safe(struct lws_dll2 *, d, d1,
                                   lws_dll2_get_head(&c->feeds))
        {
            gw_feed *fd = lws_container_of(d, gw_feed, link);
            if (fd->drained) fd->drained(fd);
        }
        lws_end_foreach_dll_safe(d, d1);
    }
    if (more || ring_len(&c->q) > 0 || c->close_code) gw_conn_want_write(c);
    return 0;
}

/* ---- the protocol callback ---- */

static int conn_callback(struct lws *wsi, enum lws_callback_reasons reason,
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
        if (!c->h) return -1;
        /* Answers are not cut by the bound (a client may pipeline many
         * publishes before it reads their acks); what they hold counts
         * against it when the next event is charged. */
        ring_init(&c->q, sizeof(gw_buf *), GW_OWN_QUEUE_MAX);
        lws_get_peer_simple(wsi, c->ip, sizeof c->ip);
        if (gw_ip_add(s, c->ip, 1) != 0) return -1;
        c->tokens = s->cfg.burst;
        c->last_us = lws_now_usecs();
        c->opened_us = c->last_rx_us = c->last_us;
        lws_dll2_add_tail(&c->link, &s->conns);
        s->m.ws_accepted++;
        if (s->shutting_down) gw_conn_close(c, GW_CLOSE_GOING_AWAY, 0);
        return 0;

    case LWS_CALLBACK_RECEIVE: return on_receive(c, in, len);

    case LWS_CALLBACK_RECEIVE_PONG:
        c->last_rx_us = lws_now_usecs();
        c->ping_sent = 0;
        return 0;

    case LWS_CALLBACK_SERVER_WRITEABLE: return on_writeable(c);

    case LWS_CALLBACK_CLOSED:
        if (!c->h) return 0;
        s->conn_h->on_close(c); /* drops the feeds and the session */
        assert(c->feeds.count == 0 && c->session == NULL);
        q_clear(c);
        free(c->rx);
        gw_ip_add(s, c->ip, -1);
        c->h->p = NULL;
        gw_handle_unref(c->h);
        c->h = NULL;
        lws_dll2_remove(&c->link);
        s->m.ws_closed++;
        return 0;

    default: return 0;
    }
}

/* rx_buffer_size: the largest piece lws hands over at once (bigger
 * messages are assembled); tx_packet_size: the most lws sends per write,
 * so one collected write leaves in one send. */
const struct lws_protocols gw_conn_protocol_bin = {
    GW_PROTO_BIN, conn_callback,      sizeof(gw_conn), GW_RX_CHUNK, 0,
    NULL,         GW_WRITE_BUDGET * 2};
const struct lws_protocols gw_conn_protocol_json = {
    GW_PROTO_JSON, conn_callback,      sizeof(gw_conn), GW_RX_CHUNK, 0,
    NULL,          GW_WRITE_BUDGET * 2};
