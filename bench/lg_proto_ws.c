/* lg_proto_ws.c: the load generator's adapter for a plain WebSocket
 * broadcast server (bench/peers/ws-broadcast.mjs): the room is the URL path,
 * every text message is broadcast to the other connections of the room. No
 * subscribe step, no ack, no resume. */
#include "lg.h"

#include <stdio.h>

static void lgw_path(const lg_ctx *x, const lg_conn *c, char *out, size_t n)
{
    char room[64];
    lg_room_name(x, c->room, room, sizeof room);
    snprintf(out, n, "/%s", room);
}

static int lgw_on_open(lg_ctx *x, lg_conn *c)
{
    lg_on_ready(x, c);
    return 0;
}

static int lgw_on_message(lg_ctx *x, lg_conn *c, int opcode, const uint8_t *d,
                          size_t n)
{
    (void)opcode;
    lg_on_deliver(x, c, (const char *)d, n, 0);
    return 0;
}

static int lgw_publish(lg_ctx *x, lg_conn *c, const char *body, size_t n)
{
    (void)x;
    return lg_ws_send(&c->ws, LG_WS_TEXT, body, n) ? -1 : 0;
}

const lg_proto lg_proto_ws = {
    .name = "ws",
    .subprotocol = NULL,
    .path = lgw_path,
    .on_open = lgw_on_open,
    .on_message = lgw_on_message,
    .publish = lgw_publish,
    .has_ack = 0,
    .has_resume = 0,
};
