/* lg_proto_jetstream.c: the load generator's adapter for NATS JetStream
 * over WebSocket (nats-server -js with its websocket listener), the peer
 * that keeps what it acks (lg_jetstream.h). After INFO the client sends
 * CONNECT and subscribes to its inbox _INBOX.lg<id>.*; on its first
 * connect it creates the stream (the same configuration from every
 * connection answers alike). A subscriber then subscribes to a deliver
 * subject of its own and creates an ephemeral push consumer on its room's
 * subject that delivers there: from the next message on the first time,
 * from the stream sequence after the last one it got when it comes back
 * (its resume). A publish is PUB parley.<room> with the inbox as reply
 * subject, acked by JetStream's PubAck once stored. */
#include "lg.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lg_jetstream.h"

enum {
    LGJ_INFO_WAIT = 0,
    LGJ_STREAM_WAIT = 1,
    LGJ_CONSUMER_WAIT = 2,
    LGJ_LIVE = 3
};

static int lgj_on_open(lg_ctx *x, lg_conn *c)
{
    (void)x;
    c->pstate = LGJ_INFO_WAIT;
    c->app.len = c->app.off = 0;
    return 0;
}

/* A JetStream API request on the connection's inbox (reply "<id>.<tag>"). */
static int lgj_request(lg_conn *c, const char *subject, char tag,
                       const char *json)
{
    char b[1024];
    int n = snprintf(b, sizeof b, "PUB %s _INBOX.lg%u.%c %zu\r\n%s\r\n",
                     subject, c->id, tag, strlen(json), json);
    if (n < 0 || (size_t)n >= sizeof b) return -1;
    return lg_send_binary(c, b, (size_t)n);
}

static int lgj_after_info(lg_ctx *x, lg_conn *c)
{
    (void)x;
    char b[256];
    int n = snprintf(b, sizeof b,
                     "CONNECT {\"verbose\":false,\"pedantic\":false,"
                     "\"lang\":\"c\",\"version\":\"0\",\"protocol\":1,"
                     "\"headers\":false}\r\nSUB _INBOX.lg%u.* 1\r\n",
                     c->id);
    if (lg_send_binary(c, b, (size_t)n)) return -1;
    c->pstate = LGJ_STREAM_WAIT;
    return lgj_request(c, "$JS.API.STREAM.CREATE." LG_JS_STREAM, 's',
                       LG_JS_STREAM_CONFIG);
}

/* The consumer that feeds this subscriber, from where it left off. */
static int lgj_consume(lg_ctx *x, lg_conn *c)
{
    char room[64], b[256], cfg[640], from[96];
    lg_room_name(x, c->room, room, sizeof room);
    int n = snprintf(b, sizeof b, "SUB _DLV.lg%u.%u 2\r\n", c->id, c->epoch);
    if (lg_send_binary(c, b, (size_t)n)) return -1;
    if (c->last_rev)
        snprintf(from, sizeof from,
                 "\"deliver_policy\":\"by_start_sequence\","
                 "\"opt_start_seq\":%" PRIu64,
                 c->last_rev + 1);
    else
        snprintf(from, sizeof from, "\"deliver_policy\":\"%s\"",
                 c->epoch > 1 ? "all" : "new");
    snprintf(cfg, sizeof cfg,
             "{\"stream_name\":\"" LG_JS_STREAM "\",\"config\":{"
             "\"deliver_subject\":\"_DLV.lg%u.%u\",%s,"
             "\"ack_policy\":\"none\",\"filter_subject\":"
             "\"" LG_JS_SUBJECT_PREFIX "%s\"}}",
             c->id, c->epoch, from, room);
    c->pstate = LGJ_CONSUMER_WAIT;
    return lgj_request(c, "$JS.API.CONSUMER.CREATE." LG_JS_STREAM, 'c', cfg);
}

/* A message on the inbox (subscription 1; tag: s stream, c consumer, p
 * publish ack) or a delivery of the consumer (subscription 2, under the
 * message's own subject, with the $JS.ACK reply that holds its stream
 * sequence). */
static int lgj_msg(lg_ctx *x, lg_conn *c, const char *subj, size_t sn, int sid,
                   const char *reply, size_t rn, const char *data, size_t dn)
{
    int code;
    char desc[120];
    if (sid == 2) {
        uint64_t seq = lg_js_ack_stream_seq(reply, rn);
        if (seq > c->last_rev) c->last_rev = seq;
        lg_on_deliver(x, c, data, dn, seq);
        return 0;
    }
    char tag = sn ? subj[sn - 1] : 0;
    int err = lg_js_is_error(data, dn, &code, desc, sizeof desc);
    switch (tag) {
    case 's':
        if (err && code != LG_JS_ERR_STREAM_IN_USE) {
            lg_on_error(x, c, code, desc);
            return -1;
        }
        if (c->subscriber) return lgj_consume(x, c);
        c->pstate = LGJ_LIVE;
        lg_on_ready(x, c);
        return 0;
    case 'c':
        if (err) {
            lg_on_error(x, c, code, desc);
            return -1;
        }
        if (c->epoch > 1) lg_on_resumed(x, c, 1);
        c->pstate = LGJ_LIVE;
        lg_on_ready(x, c);
        return 0;
    case 'p':
        if (err)
            lg_on_error(x, c, code, desc);
        else
            lg_on_ack(x, c);
        return 0;
    }
    return 0;
}

/* One server command (lg_nats_parse answers PING and -ERR). */
static int lgj_cmd(lg_ctx *x, lg_conn *c, const lg_nats_cmd *m)
{
    if (m->kind == LG_NATS_MSG)
        return lgj_msg(x, c, m->subject, m->subject_len, m->sid, m->reply,
                       m->reply_len, m->payload, m->payload_len);
    if (m->kind == LG_NATS_INFO && c->pstate == LGJ_INFO_WAIT)
        return lgj_after_info(x, c);
    return 0;
}

static long lgj_parse(lg_ctx *x, lg_conn *c, const uint8_t *p, size_t len)
{
    return lg_nats_parse(x, c, p, len, lgj_cmd);
}

static int lgj_on_message(lg_ctx *x, lg_conn *c, int opcode, const uint8_t *d,
                          size_t n)
{
    (void)opcode;
    return lg_feed(x, c, d, n, lgj_parse);
}

static int lgj_publish(lg_ctx *x, lg_conn *c, const char *body, size_t n)
{
    char b[4400], room[64];
    lg_room_name(x, c->room, room, sizeof room);
    int h = snprintf(b, sizeof b,
                     "PUB " LG_JS_SUBJECT_PREFIX "%s _INBOX.lg%u.p %zu\r\n",
                     room, c->id, n);
    if ((size_t)h + n + 2 > sizeof b) return -1;
    memcpy(b + h, body, n);
    memcpy(b + h + n, "\r\n", 2);
    return lg_send_binary(c, b, (size_t)h + n + 2);
}

const lg_proto lg_proto_jetstream = {
    .name = "jetstream",
    .subprotocol = NULL,
    .path = lg_path_root,
    .on_open = lgj_on_open,
    .on_message = lgj_on_message,
    .publish = lgj_publish,
    .has_ack = 1,
    .has_resume = 1,
};
