/* lg_proto_mqtt.c: the load generator's adapter for MQTT 3.1.1 over
 * WebSocket (subprotocol "mqtt"), as mosquitto serves it: CONNECT (clean
 * session, no keep-alive) -> CONNACK, SUBSCRIBE QoS 0 -> SUBACK, PUBLISH
 * QoS 0 with the room as topic. WebSocket messages carry a byte stream of
 * MQTT packets, so packets are reassembled in the connection's app buffer. */
#include "lg.h"

#include <stdio.h>
#include <string.h>

enum { LGM_CONNACK_WAIT = 0, LGM_SUBACK_WAIT = 1, LGM_LIVE = 2 };

static void lgm_path(const lg_ctx *x, const lg_conn *c, char *out, size_t n)
{
    (void)x;
    (void)c;
    snprintf(out, n, "/mqtt");
}

static size_t lgm_varint(uint8_t *p, size_t v)
{
    size_t i = 0;
    do {
        uint8_t b = v & 0x7f;
        v >>= 7;
        if (v) b |= 0x80;
        p[i++] = b;
    } while (v);
    return i;
}

static size_t lgm_str(uint8_t *p, const char *s, size_t n)
{
    p[0] = (uint8_t)(n >> 8);
    p[1] = (uint8_t)n;
    memcpy(p + 2, s, n);
    return n + 2;
}

/* Packet = type byte, remaining length, body. */
static int lgm_send(lg_conn *c, uint8_t type, const uint8_t *body, size_t n)
{
    uint8_t buf[4200];
    if (n + 5 > sizeof buf) return -1;
    size_t h = 0;
    buf[h++] = type;
    h += lgm_varint(buf + h, n);
    memcpy(buf + h, body, n);
    return lg_ws_send(&c->ws, LG_WS_BINARY, buf, h + n) ? -1 : 0;
}

static int lgm_on_open(lg_ctx *x, lg_conn *c)
{
    (void)x;
    uint8_t b[128];
    size_t n = 0;
    n += lgm_str(b + n, "MQTT", 4);
    b[n++] = 4;    /* protocol level 3.1.1 */
    b[n++] = 0x02; /* clean session */
    b[n++] = 0;    /* keep-alive 0: off */
    b[n++] = 0;
    char cid[32];
    int l = snprintf(cid, sizeof cid, "lg%u-%u", c->id, c->epoch);
    n += lgm_str(b + n, cid, (size_t)l);
    c->pstate = LGM_CONNACK_WAIT;
    c->app.len = c->app.off = 0;
    return lgm_send(c, 0x10, b, n);
}

static int lgm_subscribe(lg_ctx *x, lg_conn *c)
{
    char room[64];
    lg_room_name(x, c->room, room, sizeof room);
    uint8_t b[128];
    size_t n = 0;
    uint16_t pid = (uint16_t)(++c->next_req ? c->next_req : ++c->next_req);
    b[n++] = (uint8_t)(pid >> 8);
    b[n++] = (uint8_t)pid;
    n += lgm_str(b + n, room, strlen(room));
    b[n++] = 0; /* QoS 0 */
    c->pstate = LGM_SUBACK_WAIT;
    return lgm_send(c, 0x82, b, n);
}

static int lgm_packet(lg_ctx *x, lg_conn *c, uint8_t type, const uint8_t *p,
                      size_t n)
{
    switch (type >> 4) {
    case 2: /* CONNACK */
        if (n < 2 || p[1] != 0) {
            lg_on_error(x, c, n >= 2 ? p[1] : -1, "CONNACK refused");
            return -1;
        }
        if (c->subscriber) return lgm_subscribe(x, c);
        c->pstate = LGM_LIVE;
        lg_on_ready(x, c);
        return 0;
    case 9: /* SUBACK */
        if (n < 3 || p[2] == 0x80) {
            lg_on_error(x, c, -1, "SUBACK failure");
            return -1;
        }
        c->pstate = LGM_LIVE;
        lg_on_ready(x, c);
        return 0;
    case 3: { /* PUBLISH */
        if (n < 2) return -1;
        size_t tl = ((size_t)p[0] << 8) | p[1];
        size_t off = 2 + tl + (((type >> 1) & 3) ? 2 : 0);
        if (off > n) return -1;
        lg_on_deliver(x, c, (const char *)p + off, n - off, 0);
        return 0;
    }
    default: return 0;
    }
}

/* Whole MQTT packets of p[0..len): how many bytes they took, -1 if bad. */
static long lgm_parse(lg_ctx *x, lg_conn *c, const uint8_t *p, size_t len)
{
    size_t used = 0;
    while (len - used >= 2) {
        size_t rl = 0, h = 1;
        int mul = 0, ok = 0;
        while (h < len - used && h <= 4) {
            uint8_t b = p[used + h++];
            rl |= (size_t)(b & 0x7f) << mul;
            mul += 7;
            if (!(b & 0x80)) {
                ok = 1;
                break;
            }
        }
        if (!ok) {
            if (h > 4) return -1;
            break;
        }
        if (len - used < h + rl) break;
        if (lgm_packet(x, c, p[used], p + used + h, rl)) return -1;
        used += h + rl;
    }
    return (long)used;
}

static int lgm_on_message(lg_ctx *x, lg_conn *c, int opcode, const uint8_t *d,
                          size_t n)
{
    (void)opcode;
    return lg_feed(x, c, d, n, lgm_parse);
}

static int lgm_publish(lg_ctx *x, lg_conn *c, const char *body, size_t n)
{
    char room[64];
    lg_room_name(x, c->room, room, sizeof room);
    uint8_t b[4200];
    size_t tl = strlen(room);
    if (tl + 2 + n > sizeof b) return -1;
    size_t off = lgm_str(b, room, tl);
    memcpy(b + off, body, n);
    return lgm_send(c, 0x30, b, off + n);
}

const lg_proto lg_proto_mqtt = {
    .name = "mqtt",
    .subprotocol = "mqtt",
    .path = lgm_path,
    .on_open = lgm_on_open,
    .on_message = lgm_on_message,
    .publish = lgm_publish,
    .has_ack = 0,
    .has_resume = 0,
};
