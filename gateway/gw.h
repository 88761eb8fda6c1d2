/* gw.h: the shared types of parley-gateway. One lws context runs everything
 * on one thread (the "lws thread"): HTTP, WebSockets, rooms and the state of
 * upstream calls. The only other thread pumps the grpc completion queue and
 * hands completions over through a mutex-protected queue (gw_upstream.c).
 *
 * Modules:
 *   gw_main.c      secret, lws context, signals, shutdown
 *   gw_config.c    the settings table (flags, environment, config file)
 *   gw_http.c      HTTP routing, static files, /healthz, /metrics, dev token,
 *                  the upgrade checks (origin, subprotocol, max connections)
 *   gw_rest.c      REST routes to History calls
 *   gw_ws.c        WebSocket sessions: frames, auth, limits, send queues
 *   gw_rooms.c     rooms: one upstream subscription each, ring, replay,
 *                  fan-out of shared encoded frames
 *   gw_upstream.c  gRPC client of parleyd on the grpc C core
 *   gw_buf.c       refcounted frame buffers and small handles
 *   gw_json.c      the generic proto3-JSON codec
 *   gw_metrics.c   counters and their Prometheus text */
#ifndef GW_H
#define GW_H

#include <stddef.h>
#include <stdint.h>
#include <libwebsockets.h>
#include <protobuf-c/protobuf-c.h>

#include "auth.h"
#include "errors.h"
#include "rpc_desc.h"
#include "parley/v1/history.pb-c.h"
#include "parley/v1/stream.pb-c.h"

#define GW_PROTO_BIN "parley.v1.proto"
#define GW_PROTO_JSON "parley.v1.json"

/* Close codes of the wire contract (docs/gateway.md). */
enum {
    GW_CLOSE_GOING_AWAY = 1001,
    GW_CLOSE_BAD_UTF8 = 1007,
    GW_CLOSE_TOO_BIG = 1009,
    GW_CLOSE_UNAUTH = 4401,
    GW_CLOSE_RATE = 4429,
    GW_CLOSE_UPSTREAM = 4503,
    GW_CLOSE_SLOW = 4508
};

/* The settings (gw_config.c's table) and what is derived from them. */
typedef struct gw_config {
    char listen[160];      /* HOST:PORT as given */
    char listen_host[128]; /* derived from listen */
    int listen_port;       /* derived; the bound port once listening */
    char upstream[2048];   /* comma list as given */
    char **upstreams;      /* derived from upstream */
    int n_upstreams;
    char static_dir[512];
    char jwt_secret_file[512];
    char jwt_secret[512];
    int dev;
    char origin[2048];     /* comma list as given */
    char **origins;        /* derived from origin */
    int n_origins;
    size_t max_frame;      /* bytes of one WS message */
    double rate;           /* messages per second per connection */
    double burst;
    int max_conns;
    size_t sendq_bytes;    /* per-connection send queue bound */
    size_t sendq_frames;
    int auth_timeout_s;
    int ping_s;            /* idle seconds before a WS ping */
    int hangup_s;          /* idle seconds before hanging up */
    size_t ring_size;      /* recent events kept per room */
    size_t replay_page;    /* History page size when replaying */
    int room_linger_s;     /* an unwatched room keeps its upstream this long */
} gw_config;

/* ---- gw_config.c ---- */

/* Fills c from defaults, the config file (--config / PARLEY_GW_CONFIG), the
 * environment and argv. 0; 1 after printing the usage text (--help); -1
 * with a message in err. */
int gw_config_load(gw_config *c, int argc, char **argv, char *err,
                   size_t errlen);
/* Frees the derived lists and wipes the secret. */
void gw_config_free(gw_config *c);

/* ---- gw_buf.c ---- */

/* One encoded frame, shared by every socket it is queued on. data has
 * LWS_PRE bytes of headroom; the payload is at data + LWS_PRE. Only the lws
 * thread touches refs. */
typedef struct gw_buf {
    int refs;
    int binary;
    size_t len;
    unsigned char data[];
} gw_buf;

gw_buf *gw_buf_new(size_t len, int binary);
gw_buf *gw_buf_ref(gw_buf *b);
void gw_buf_unref(gw_buf *b);
/* m encoded as protobuf (json == 0) or proto3 JSON; NULL if out of memory. */
gw_buf *gw_buf_encode(const ProtobufCMessage *m, int json);

/* A weak handle: whoever owns p clears it when p dies; pending upstream
 * calls hold a reference and check p before using it. */
typedef struct gw_handle {
    int refs;
    void *p;
} gw_handle;

gw_handle *gw_handle_new(void *p);
gw_handle *gw_handle_ref(gw_handle *h);
void gw_handle_unref(gw_handle *h);

/* ---- the server ---- */

typedef struct gw_conn gw_conn;
typedef struct gw_room gw_room;
typedef struct gw_sub gw_sub;
typedef struct gw_upstream gw_upstream;
typedef struct gw_ustream gw_ustream;

typedef struct gw_metrics {
    uint64_t ws_accepted, ws_closed;
    uint64_t msgs_in, msgs_out, bytes_out;
    uint64_t drops_slow, drops_rate, drops_big, drops_unauth;
    uint64_t refused_origin, refused_full;
    uint64_t upstream_events, upstream_errors;
    uint64_t upstream_unary;       /* unary calls finished */
    uint64_t pub_streams_opened;   /* publish streams (one per session at a time) */
    uint64_t pub_stream_frames;    /* publishes sent on them */
    uint64_t http_requests;
    uint64_t replay_ring, replay_history;
    uint64_t encodes[2];   /* live events encoded: [0] protobuf, [1] JSON */
} gw_metrics;

typedef struct gw_server {
    gw_config cfg;
    struct lws_context *ctx;
    struct lws_vhost *vh;
    auth *auth;
    char *service_token;   /* minted from the shared secret; never logged */
    gw_upstream *up;
    gw_room *rooms;        /* list */
    gw_room **room_tab;    /* hash by name, GW_ROOM_BUCKETS chains */
    size_t n_rooms;
    gw_conn *conns;        /* list of WebSocket sessions */
    size_t n_conns;
    gw_metrics m;
    int shutting_down;
    lws_sorted_usec_list_t sul_sweep; /* the one periodic session sweep */
} gw_server;

/* ---- gw_ws.c ---- */

struct gw_conn {
    struct lws *wsi;
    gw_server *srv;
    gw_handle *h;
    int json;
    int authed;
    auth_identity who;
    char *token;
    /* message assembly */
    unsigned char *rx;
    size_t rx_len, rx_cap;
    int rx_oversize;
    /* send queue: a ring of buffer references */
    gw_buf **q;
    size_t q_head, q_n, q_cap, q_bytes;
    int close_code;        /* nonzero: close once the queue is written */
    int close_now;         /* drop the queue and close at once */
    int close_sent;        /* the close frame is on its way */
    double tokens;
    lws_usec_t last_us;
    /* timers, checked by the periodic sweep (gw_ws_sweep) */
    lws_usec_t opened_us;  /* when the session was established */
    lws_usec_t last_rx_us; /* last frame (or pong) from the peer */
    int ping_due;          /* a WS ping waits for the next writeable */
    int ping_sent;         /* pinged since last_rx_us */
    int hung_up;           /* dropped without a close handshake */
    gw_sub *subs;
    /* publishes ride one upstream Stream.Connect (user's token), opened on
     * the first publish; pubs maps its request ids to the browser's */
    gw_ustream *pub_st;
    struct gw_pub { uint64_t up_rid, rid; } *pubs;
    size_t n_pubs, cap_pubs;
    uint64_t pub_next_rid;
    gw_conn *next, *prev;
};

extern const struct lws_protocols gw_ws_protocol_bin;
extern const struct lws_protocols gw_ws_protocol_json;

/* Queue a reference to b. With enforce, a queue over its bound closes the
 * connection 4508 (slow consumer) and returns -1. */
int gw_conn_send(gw_conn *c, gw_buf *b, int enforce);
/* Encode m in the connection's format and queue it (no bound). */
int gw_conn_send_msg(gw_conn *c, const ProtobufCMessage *m);
/* Send Error{code, detail, fatal} answering request_id. */
void gw_conn_send_error(gw_conn *c, uint64_t request_id, parley_err code,
                        const char *detail, int fatal);
/* Close with code after what is queued (flush) or at once. */
void gw_conn_close(gw_conn *c, int code, int flush);
/* Every session closes 1001 (shutdown). */
void gw_ws_close_all(gw_server *s, int code);
/* Cancels every session's publish stream (before the upstream goes). */
void gw_ws_pub_streams_cancel(gw_server *s);
/* Start / stop the periodic sweep of every session: authenticate timeout,
 * WS pings to idle peers, hang-up of dead ones. */
void gw_ws_sweep_start(gw_server *s);
void gw_ws_sweep_stop(gw_server *s);

/* ---- gw_rooms.c ---- */

void gw_rooms_subscribe(gw_server *s, gw_conn *c, uint64_t request_id,
                        const Parley__V1__Subscribe *sub);
void gw_rooms_unsubscribe(gw_server *s, gw_conn *c, uint64_t request_id,
                          const char *room);
/* c's send queue drained below half its bound: replays waiting for room
 * go on. */
void gw_rooms_conn_drained(gw_server *s, gw_conn *c);
/* Drops every subscription of c (it is closing). */
void gw_rooms_conn_gone(gw_server *s, gw_conn *c);
void gw_rooms_free_all(gw_server *s);
/* The event type a stored message stands for (created, edited, deleted). */
Parley__V1__EventType gw_event_type_of(const Parley__V1__Message *m);

/* ---- gw_upstream.c ---- */

/* The answer of a unary call: resp is owned by the callback (free with
 * protobuf_c_message_free_unpacked). unavailable is set when the core could
 * not be reached. */
typedef void (*gw_unary_cb)(gw_server *s, void *ud, parley_err e,
                            const char *detail, int unavailable,
                            ProtobufCMessage *resp);

typedef void (*gw_ustream_frame_cb)(gw_server *s, void *ud,
                                    Parley__V1__ServerFrame *f);
typedef void (*gw_ustream_end_cb)(gw_server *s, void *ud, parley_err e,
                                  const char *detail, int unavailable);

parley_err gw_up_new(gw_server *s, gw_upstream **out);
/* Stops the completion queue thread and frees everything. */
void gw_up_free(gw_upstream *u);
/* Runs completions handed over by the grpc thread (lws thread only). */
void gw_up_drain(gw_server *s);
/* 1 if some upstream channel is connected (or idle without failures). */
int gw_up_healthy(gw_server *s);
const char *gw_up_state_name(gw_server *s);

/* Start a unary call of method m with token as `authorization` metadata. */
parley_err gw_up_unary(gw_server *s, const rpc_method_desc *m,
                       const ProtobufCMessage *req, const char *token,
                       gw_unary_cb cb, void *ud);

/* Open Stream.Connect with token as `authorization` (NULL: the service
 * token), send first, then deliver each ServerFrame to on_frame until the
 * stream ends (on_end, once). */
gw_ustream *gw_up_connect(gw_server *s, const char *token,
                          const ProtobufCMessage *first,
                          gw_ustream_frame_cb on_frame,
                          gw_ustream_end_cb on_end, void *ud);
/* Queue one more ClientFrame on the stream (sent in order, one in flight at
 * a time). PARLEY_ERR_INTERNAL if the stream cannot take it (it is failing:
 * on_end follows unless cancelled). */
parley_err gw_ustream_send(gw_ustream *st, const ProtobufCMessage *msg);
/* Cancel; no callback runs after this returns. */
void gw_ustream_cancel(gw_ustream *st);

/* ---- gw_http.c / gw_rest.c ---- */

extern const struct lws_protocols gw_http_protocol;

typedef struct gw_http gw_http;
/* Answer an HTTP request (body copied). */
void gw_http_respond(gw_http *h, int status, const char *ctype,
                     const char *body, size_t len);
void gw_http_respond_error(gw_http *h, parley_err e, int status,
                           const char *detail);
gw_server *gw_http_server(gw_http *h);
gw_handle *gw_http_handle(gw_http *h);
struct lws *gw_http_wsi(gw_http *h);

/* Route a /v1/rooms... request; 0 if handled (answered now or later). */
int gw_rest_route(gw_http *h, const char *method, const char *path,
                  const char *body, size_t body_len, const char *bearer);

/* ---- gw_metrics.c ---- */

char *gw_metrics_render(gw_server *s, size_t *len);

/* ---- helpers ---- */
gw_server *gw_server_of(struct lws *wsi);
int64_t gw_now_s(void);

#endif
