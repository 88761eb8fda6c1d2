/* lg_proto_nats.c: the load generator's adapter for NATS over WebSocket, as
 * nats-server serves it: the server greets with INFO; the client sends
 * CONNECT, SUB <room> <sid> and PING, and is subscribed once PONG comes back
 * (the server handles a connection's commands in order). Deliveries are
 * MSG <subject> <sid> [reply] <size>\r\n<payload>\r\n; publishes are
 * PUB <room> <size>\r\n<payload>\r\n. The server's PINGs are answered. */
#include "lg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { LGN_INFO_WAIT = 0, LGN_PONG_WAIT = 1, LGN_LIVE = 2 };

static int lgn_on_open(lg_ctx *x, lg_conn *c)
{
    (void)x;
    c->pstate = LGN_INFO_WAIT;
    c->app.len = c->app.off = 0;
    return 0;
}

static int lgn_after_info(lg_ctx *x, lg_conn *c)
{
    char b[256], room[64];
    lg_room_name(x, c->room, room, sizeof room);
    int n = snprintf(b, sizeof b,
                     "CONNECT {\"verbose\":false,\"pedantic\":false,"
                     "\"lang\":\"c\",\"version\":\"0\",\"protocol\":1}\r\n");
    if (c->subscriber)
        n += snprintf(b + n, sizeof b - (size_t)n, "SUB %s 1\r\n", room);
    n += snprintf(b + n, sizeof b - (size_t)n, "PING\r\n");
    c->pstate = LGN_PONG_WAIT;
    return lg_send_binary(c, b, (size_t)n);
}

/* One server command (lg_nats_parse answers PING and -ERR). */
static int lgn_cmd(lg_ctx *x, lg_conn *c, const lg_nats_cmd *m)
{
    if (m->kind == LG_NATS_MSG) {
        lg_on_deliver(x, c, m->payload, m->payload_len, 0);
    } else if (m->kind == LG_NATS_PONG) {
        if (c->pstate == LGN_PONG_WAIT) {
            c->pstate = LGN_LIVE;
            lg_on_ready(x, c);
        }
    } else if (m->kind == LG_NATS_INFO) {
        if (c->pstate == LGN_INFO_WAIT) return lgn_after_info(x, c);
    }
    return 0;
}

static long lgn_parse(lg_ctx *x, lg_conn *c, const uint8_t *p, size_t len)
{
    return lg_nats_parse(x, c, p, len, lgn_cmd);
}

static int lgn_on_message(lg_ctx *x, lg_conn *c, int opcode, const uint8_t *d,
                          size_t n)
{
    (void)opcode;
    return lg_feed(x, c, d, n, lgn_parse);
}

static int lgn_publish(lg_ctx *x, lg_conn *c, const char *body, size_t n)
{
    char b[4300], room[64];
    lg_room_name(x, c->room, room, sizeof room);
    int h = snprintf(b, sizeof b, "PUB %s %zu\r\n", room, n);
    if ((size_t)h + n + 2 > sizeof b) return -1;
    memcpy(b + h, body, n);
    memcpy(b + h + n, "\r\n", 2);
    return lg_send_binary(c, b, (size_t)h + n + 2);
}

const lg_proto lg_proto_nats = {
    .name = "nats",
    .subprotocol = NULL,
    .path = lg_path_root,
    .on_open = lgn_on_open,
    .on_message = lgn_on_message,
    .publish = lgn_publish,
    .has_ack = 0,
    .has_resume = 0,
};
