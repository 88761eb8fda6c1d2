/* lg.h: the load generator's shared types: a client connection (one
 * WebSocket plus what a protocol adapter keeps for it), the run context
 * with its counters and latency histogram, and the adapter interface that
 * each server protocol implements (lg_proto_parley.c, lg_proto_mqtt.c,
 * lg_proto_nats.c, lg_proto_ws.c, lg_proto_jetstream.c,
 * lg_proto_socketio.c). The adapters report back through the lg_on_* calls
 * that loadgen.c implements. */
#ifndef PARLEY_BENCH_LG_H
#define PARLEY_BENCH_LG_H

#include <stddef.h>
#include <stdint.h>

#include "hist.h"
#include "lg_nats.h"
#include "lg_ws.h"

typedef struct lg_ctx lg_ctx;

typedef struct lg_conn {
    lg_ws ws;
    lg_ctx *ctx;
    uint32_t id;
    uint32_t room;        /* room index */
    uint8_t subscriber;   /* subscribes and receives */
    uint8_t publisher;    /* publishes */
    uint8_t ready;        /* authenticated (+ subscribed if subscriber) */
    uint8_t pstate;       /* adapter's state machine */
    uint64_t next_req;    /* adapter's request ids */
    uint64_t last_rev;    /* parley: highest rev applied in its room */
    lg_buf app;           /* adapter's byte stream (MQTT, NATS) */
    uint64_t next_pub_at; /* rate mode: monotonic ns of the next publish */
    uint64_t pub_seq;     /* messages this connection published */
    uint64_t recv_count;  /* deliveries (all) */
    uint8_t *seen;        /* reconnect mode: one bit per expected seq */
    uint64_t *next;       /* fanout/rooms: per publisher slot, the next seq
                           * expected from it (NULL: not checked) */
    uint32_t seen_distinct;
    uint32_t epoch; /* bumps on every (re)connect */
    /* A session a server lets a client resume (Socket.IO's connection
     * state recovery): its id, the client's session key, and the offset of
     * the last event received. Kept across reconnects. */
    char sess_id[32], sess_key[32], sess_offset[32];
} lg_conn;

typedef struct lg_proto {
    const char *name;
    const char *subprotocol; /* NULL: none offered */
    /* URL path for a connection to room `room` (e.g. "/v1/stream"). */
    void (*path)(const lg_ctx *x, const lg_conn *c, char *out, size_t n);
    /* The upgrade succeeded: authenticate / CONNECT, then subscribe if the
     * connection is a subscriber. lg_on_ready once usable. 0 or -1. */
    int (*on_open)(lg_ctx *x, lg_conn *c);
    /* One complete WebSocket data message. 0 or -1 (close). */
    int (*on_message)(lg_ctx *x, lg_conn *c, int opcode, const uint8_t *d,
                      size_t n);
    /* Queue a publish of body to the connection's room. 0 or -1. */
    int (*publish)(lg_ctx *x, lg_conn *c, const char *body, size_t n);
    /* Whether a publish is acknowledged (lg_on_ack) by the server. */
    int has_ack;
    /* Whether a subscriber can resume after a drop without loss. */
    int has_resume;
} lg_proto;

extern const lg_proto lg_proto_parley;
extern const lg_proto lg_proto_mqtt;
extern const lg_proto lg_proto_nats;
extern const lg_proto lg_proto_ws;
extern const lg_proto lg_proto_jetstream;
extern const lg_proto lg_proto_socketio;

/* Room name for an index, e.g. "bench-17" (stable across adapters). */
void lg_room_name(const lg_ctx *x, uint32_t room, char *out, size_t n);
/* An adapter's path when the server serves WebSocket at "/" (NATS). */
void lg_path_root(const lg_ctx *x, const lg_conn *c, char *out, size_t n);
/* Sends s as one binary WebSocket message on c; -1 on failure. */
int lg_send_binary(lg_conn *c, const char *s, size_t n);
/* A NATS adapter's handling of one server command (PING and -ERR are
 * answered by lg_nats_parse already); -1 ends the connection. */
typedef int (*lg_nats_fn)(lg_ctx *x, lg_conn *c, const lg_nats_cmd *m);
/* The NATS adapters' parser (an lg_parse_fn with the adapter's fn): splits
 * p into commands, answers PING with PONG, reports -ERR, and hands every
 * other command to fn. The bytes used, or -1. */
long lg_nats_parse(lg_ctx *x, lg_conn *c, const uint8_t *p, size_t len,
                   lg_nats_fn fn);
/* The bearer token a connection presents (parley); NULL if none. */
const char *lg_token(const lg_ctx *x, const lg_conn *c);

/* A byte-stream parser of an adapter (MQTT, NATS): how many bytes of p it
 * took (whole frames only), or -1 on error. */
typedef long (*lg_parse_fn)(lg_ctx *x, lg_conn *c, const uint8_t *p, size_t n);
/* Hands a WebSocket message's bytes to parse, after what c->app kept of
 * the previous ones; keeps in c->app what parse left (a split frame).
 * Bytes are copied only while a frame is split. 0, or -1 on error. */
int lg_feed(lg_ctx *x, lg_conn *c, const uint8_t *d, size_t n,
            lg_parse_fn parse);

/* Adapter callbacks into the core. */
void lg_on_ready(lg_ctx *x, lg_conn *c);
/* A delivered message body (rev: parley's rev, 0 if the protocol has none). */
void lg_on_deliver(lg_ctx *x, lg_conn *c, const char *body, size_t n,
                   uint64_t rev);
void lg_on_ack(lg_ctx *x, lg_conn *c);
/* A reconnect was taken back into its session by the server (1) or started
 * a new one (0). */
void lg_on_resumed(lg_ctx *x, lg_conn *c, int recovered);
/* A non-fatal error answer (counted, reported). */
void lg_on_error(lg_ctx *x, lg_conn *c, int code, const char *detail);

#endif
