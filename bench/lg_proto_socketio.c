/* lg_proto_socketio.c: the load generator's adapter for Socket.IO 4.8
 * (bench/peers/socketio.mjs), on its WebSocket transport: Engine.IO v4
 * packets in text frames ("0" open, "2" ping / "3" pong, "4" message)
 * carrying Socket.IO v5 packets ("0" connect, "2" event). The client
 * connects with "40{auth}" naming its room; the server answers
 * "40{"sid":..,"pid":..}" and sends events as 42["msg",body,offset].
 *
 * Connection state recovery: a client that comes back sends the session's
 * pid and the offset of the last event it got in its auth; the server then
 * restores the session (same sid, same rooms) and replays what it missed,
 * or starts a new one if it cannot. Which of the two happened is reported
 * (lg_on_resumed); what was lost or doubled the reconnect scenario counts. */
#include "lg.h"

#include <stdio.h>
#include <string.h>

enum { LGS_OPEN_WAIT = 0, LGS_CONNECT_WAIT = 1, LGS_LIVE = 2 };

static void lgs_path(const lg_ctx *x, const lg_conn *c, char *out, size_t n)
{
    (void)x;
    (void)c;
    snprintf(out, n, "/socket.io/?EIO=4&transport=websocket");
}

static int lgs_send(lg_conn *c, const char *s, size_t n)
{
    return lg_ws_send(&c->ws, LG_WS_TEXT, s, n) ? -1 : 0;
}

static int lgs_on_open(lg_ctx *x, lg_conn *c)
{
    (void)x;
    c->pstate = LGS_OPEN_WAIT;
    return 0;
}

/* Copies the JSON string value of `key` in s[0..n) into out; 0 if found. */
static int lgs_json_str(const char *s, size_t n, const char *key, char *out,
                        size_t outlen)
{
    char pat[40];
    int pl = snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *p = memmem(s, n, pat, (size_t)pl);
    if (!p) return -1;
    p += pl;
    const char *e = memchr(p, '"', (size_t)(s + n - p));
    if (!e || (size_t)(e - p) >= outlen) return -1;
    memcpy(out, p, (size_t)(e - p));
    out[e - p] = '\0';
    return 0;
}

/* Engine.IO open: connect to the default namespace, with the room to join
 * and, when coming back, the session to recover. */
static int lgs_connect(lg_ctx *x, lg_conn *c)
{
    char b[256], room[64];
    int n;
    lg_room_name(x, c->room, room, sizeof room);
    if (!c->subscriber)
        n = snprintf(b, sizeof b, "40");
    else if (c->sess_key[0] && c->sess_offset[0])
        n = snprintf(b, sizeof b,
                     "40{\"room\":\"%s\",\"pid\":\"%s\",\"offset\":\"%s\"}",
                     room, c->sess_key, c->sess_offset);
    else
        n = snprintf(b, sizeof b, "40{\"room\":\"%s\"}", room);
    c->pstate = LGS_CONNECT_WAIT;
    return lgs_send(c, b, (size_t)n);
}

/* A Socket.IO packet (after the Engine.IO "4"). */
static int lgs_packet(lg_ctx *x, lg_conn *c, const char *p, size_t n)
{
    if (n >= 1 && p[0] == '0') { /* connected */
        char sid[32] = "", pid[32] = "";
        lgs_json_str(p, n, "sid", sid, sizeof sid);
        lgs_json_str(p, n, "pid", pid, sizeof pid);
        if (c->sess_id[0]) lg_on_resumed(x, c, strcmp(sid, c->sess_id) == 0);
        snprintf(c->sess_id, sizeof c->sess_id, "%s", sid);
        if (pid[0]) snprintf(c->sess_key, sizeof c->sess_key, "%s", pid);
        c->pstate = LGS_LIVE;
        lg_on_ready(x, c);
        return 0;
    }
    if (n >= 1 && p[0] == '4') { /* connect error */
        lg_on_error(x, c, -1, "Socket.IO connect error");
        return -1;
    }
    static const char ev[] = "2[\"msg\",\"";
    if (n > sizeof ev - 1 && memcmp(p, ev, sizeof ev - 1) == 0) {
        /* 2["msg","<body>","<offset>"]: bodies are plain ASCII */
        const char *body = p + sizeof ev - 1;
        const char *be = memchr(body, '"', (size_t)(p + n - body));
        if (!be) return 0;
        const char *off = be + 1;
        if (off + 2 < p + n && off[0] == ',' && off[1] == '"') {
            off += 2;
            const char *oe = memchr(off, '"', (size_t)(p + n - off));
            if (oe && (size_t)(oe - off) < sizeof c->sess_offset) {
                memcpy(c->sess_offset, off, (size_t)(oe - off));
                c->sess_offset[oe - off] = '\0';
            }
        }
        lg_on_deliver(x, c, body, (size_t)(be - body), 0);
    }
    return 0;
}

static int lgs_on_message(lg_ctx *x, lg_conn *c, int opcode, const uint8_t *d,
                          size_t n)
{
    (void)opcode;
    const char *p = (const char *)d;
    if (n == 0) return 0;
    switch (p[0]) {
    case '0': return c->pstate == LGS_OPEN_WAIT ? lgs_connect(x, c) : 0;
    case '2': return lgs_send(c, "3", 1); /* ping -> pong */
    case '4': return lgs_packet(x, c, p + 1, n - 1);
    case '1': return -1; /* the server closes */
    default: return 0;
    }
}

static int lgs_publish(lg_ctx *x, lg_conn *c, const char *body, size_t n)
{
    char b[4300], room[64];
    lg_room_name(x, c->room, room, sizeof room);
    int h = snprintf(b, sizeof b, "42[\"pub\",\"%s\",\"", room);
    if ((size_t)h + n + 2 > sizeof b) return -1;
    memcpy(b + h, body, n);
    memcpy(b + h + n, "\"]", 2);
    return lgs_send(c, b, (size_t)h + n + 2);
}

const lg_proto lg_proto_socketio = {
    .name = "socketio",
    .subprotocol = NULL,
    .path = lgs_path,
    .on_open = lgs_on_open,
    .on_message = lgs_on_message,
    .publish = lgs_publish,
    .has_ack = 0,
    .has_resume = 1,
};
