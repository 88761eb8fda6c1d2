/* gw.h: what every module of parley-gateway shares: the settings, the
 * server object, counters, close codes, and the module headers.
 *
 * Threads: one lws thread owns all state (HTTP, WebSockets, rooms, the
 * state of upstream calls). The grpc thread only waits on the completion
 * queue, reads and decodes what the core sends, and hands it over in
 * batches (gw_upstream.c); gw_up_drain runs it on the lws thread, called in
 * one place, the service loop of gw_main.c.
 *
 * Modules, each calling only those below it (function pointers set up by
 * gw_main.c carry events back up, never an #include):
 *
 *   gw_main.c      wiring, secret, lws context, service loop, shutdown
 *   gw_http.c      HTTP: upgrade checks, CORS, /healthz, /metrics, dev
 *                  token, static files; gw_rest.c REST routes to History,
 *                  gw_rest_rooms.c those of room management (Rooms)
 *   gw_session.c   the parley.v1 frames of a WebSocket: authenticate,
 *                  ping, options, subscribe/unsubscribe, publish
 *   gw_rooms.c     rooms: the table, one upstream subscription each, the
 *                  event ring with a tail per subscriber, replay, fan-out,
 *                  the core's access check before a session is attached,
 *                  room events, presence and typing
 *   gw_conn.c      a WebSocket connection: message assembly and limits,
 *                  the send queue and writer (coalesced writes, batches),
 *                  close codes, the sweep of deadlines
 *   gw_upstream.c  the gRPC client of parleyd: unary calls, shared
 *                  Connect streams (links), the grpc thread's hand-over
 *   gw_buf.c       refcounted encoded frames, weak handles
 *   gw_json.c      the generic proto3-JSON codec
 *   gw_metrics.c   counters as Prometheus text
 *   gw_config.c    the settings table
 *   gw_route.c     the REST route matcher and paging arguments (pure)
 *   gw_limits.c    sessions per peer address
 *
 *   main -> http, session -> rooms -> conn, upstream -> buf
 *           rest ----------------------------> upstream  */
#ifndef GW_H
#define GW_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <libwebsockets.h>
#include <protobuf-c/protobuf-c.h>

#include "auth.h"
#include "errors.h"
#include "rpc_desc.h"
#include "parley/v1/history.pb-c.h"
#include "parley/v1/stream.pb-c.h"

#define GW_PROTO_BIN "parley.v1.proto"
#define GW_PROTO_JSON "parley.v1.json"
/* bytes lws keeps for one request head (request line and headers) */
#define GW_HTTP_HEADER_SPACE 16384
/* The browser listener's lws mounts (gw_http_mounts). */
#define GW_HTTP_MOUNTS 4

/* Close codes of the wire contract (docs/gateway.md). */
enum {
    GW_CLOSE_GOING_AWAY = 1001,
    GW_CLOSE_BAD_UTF8 = 1007,
    GW_CLOSE_TOO_BIG = 1009,
    GW_CLOSE_UNAUTH = 4401,
    GW_CLOSE_TOKEN_EXPIRED = 4402, /* the session's token expired: renew it */
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
    int upstream_links; /* shared Connect streams per core */
    char static_dir[512];
    char log_level[16];  /* debug, info, warn, error */
    char log_format[16]; /* text, json */
    char jwt_secret_file[512];
    char jwt_secret[512];
    char jwt_keys[512]; /* PEM or JWKS public keys (RS256/ES256) */
    char jwt_issuer[256];
    char jwt_audience[256];
    size_t jwt_max_ttl; /* seconds, 0 none */
    size_t jwt_leeway;  /* seconds */
    char service_secret_file[512];
    char service_secret[512];
    int dev;
    char origin[2048]; /* comma list as given */
    char **origins;    /* derived from origin */
    int n_origins;
    size_t max_frame; /* bytes of one WS message */
    double rate;      /* messages per second per connection */
    double burst;
    int max_conns;
    size_t sendq_bytes; /* per-connection send queue bound */
    size_t sendq_frames;
    int auth_timeout_s;
    int ping_s;           /* idle seconds before a WS ping */
    int hangup_s;         /* idle seconds before hanging up */
    size_t ring_size;     /* recent events kept per room */
    size_t replay_page;   /* History page size when replaying */
    int room_linger_s;    /* an unwatched room keeps its upstream this long */
    int max_rooms;        /* rooms one session may follow */
    int max_conns_per_ip; /* sessions from one address */
    int service_token_ttl_s; /* lifetime of the service token */
    char tls_cert[512];      /* https/wss: PEM certificate (or chain) */
    char tls_key[512];
    char tls_chain[512];         /* intermediates, appended to tls_cert */
    char upstream_tls_ca[512];   /* TLS to parleyd: its CA */
    char upstream_tls_cert[512]; /* mutual TLS: the gateway's certificate */
    char upstream_tls_key[512];
    char admin_listen[160]; /* /healthz and /metrics here; "" main */
    char admin_host[128];   /* derived */
    int admin_port;         /* derived; the bound port once listening */
    int allow_plaintext;    /* plaintext beyond loopback */
} gw_config;

/* ---- gw_config.c ---- */

/* Fills c from defaults, the config file (--config / PARLEY_GW_CONFIG), the
 * environment and argv. 0; 1 after printing the usage text (--help); -1
 * with a message in err. */
int gw_config_load(gw_config *c, int argc, char **argv, char *err,
                   size_t errlen);
/* Frees the derived lists and wipes the secret. */
void gw_config_free(gw_config *c);

typedef struct gw_metrics {
    uint64_t ws_accepted, ws_closed;
    uint64_t msgs_in, msgs_out, bytes_out;
    uint64_t writes;      /* socket writes (each may carry many frames) */
    uint64_t batches_out; /* ServerFrame{batch} messages sent */
    uint64_t drops_slow, drops_rate, drops_big, drops_unauth, drops_expired;
    uint64_t refused_origin, refused_full, refused_ip;
    uint64_t upstream_events, upstream_errors;
    uint64_t upstream_unary;      /* unary calls finished */
    uint64_t upstream_links;      /* shared Connect streams opened */
    uint64_t upstream_msgs_in;    /* gRPC messages read on them */
    uint64_t upstream_frames_in;  /* ServerFrames in those messages */
    uint64_t upstream_frames_out; /* ClientFrames sent on them */
    uint64_t upstream_msgs_out;   /* gRPC messages those took */
    uint64_t pub_frames;          /* publishes sent upstream */
    uint64_t core_failures;       /* a core found failed (health, stream) */
    uint64_t rooms_moved;         /* room subscriptions moved to a core */
    uint64_t http_requests;
    uint64_t replay_ring, replay_history;
    uint64_t encodes[2];     /* live events encoded: [0] protobuf, [1] JSON */
    uint64_t passthrough;    /* events sent in the core's own encoding */
    uint64_t access_checks;  /* the core asked whether a user may read */
    uint64_t access_refused; /* subscriptions it refused or ended */
    uint64_t room_events;    /* room events from the core, fanned out */
} gw_metrics;

/* The modules' opaque types, declared here so that any header may come
 * first. */
typedef struct gw_upstream gw_upstream;
typedef struct gw_rooms gw_rooms;
typedef struct gw_link gw_link;
typedef struct gw_call gw_call;
typedef struct gw_conn gw_conn;
typedef struct gw_writer gw_writer;
typedef struct gw_conn_handlers gw_conn_handlers;

typedef struct gw_server {
    gw_config cfg;
    struct lws_context *ctx;
    struct lws_vhost *vh;
    struct lws_http_mount mounts[GW_HTTP_MOUNTS]; /* vh's, gw_http_mounts */
    struct lws_vhost *admin_vh; /* NULL: /healthz, /metrics on vh */
    char tls_cert_path[600];    /* what lws serves: tls_cert (+ tls_chain) */
    char tls_tmpdir[64];        /* private folder of the joined chain, or "" */
    int tls_reloads;
    auth *auth;
    char *service_token; /* {svc: gateway}, service secret; never logged */
    lws_usec_t service_token_at; /* when it was minted (renewed halfway) */
    struct gw_ip_entry **ips;    /* sessions per peer address (gw_limits.c) */
    gw_upstream *up;
    gw_rooms *rooms;
    lws_dll2_owner_t conns; /* WebSocket connections (gw_conn.c) */
    const struct gw_conn_handlers *conn_h; /* the session's (gw_session.c) */
    gw_metrics m;
    int shutting_down;
    lws_sorted_usec_list_t sul_sweep; /* the one periodic connection sweep */
    uint64_t rounds;                  /* service-loop rounds so far */
    unsigned char *wbuf;              /* the writer's scratch (lws thread) */
    size_t wbuf_cap;
} gw_server;

/* The server a wsi belongs to (the context's user pointer). */
static inline gw_server *gw_server_of(struct lws *wsi)
{
    return lws_context_user(lws_get_context(wsi));
}
/* Wall-clock seconds, for token expiry. */
static inline int64_t gw_now_s(void) { return (int64_t)time(NULL); }

#include "gw_buf.h"
#include "gw_upstream.h"
#include "gw_conn.h"
#include "gw_rooms.h"
#include "gw_session.h"

/* ---- gw_http.c / gw_rest.c ---- */

extern const struct lws_protocols gw_http_protocol;
/* Fills m (room for n) with the browser listener's mounts: --static at "/"
 * and gw_http_protocol at its own paths, chained; the array and s's config
 * must outlive the vhost. Returns how many, or -1 if n is too small. */
int gw_http_mounts(gw_server *s, struct lws_http_mount *m, size_t n);

typedef struct gw_http gw_http;
/* Answer an HTTP request (body copied). */
void gw_http_respond(gw_http *h, int status, const char *ctype,
                     const char *body, size_t len);
void gw_http_respond_error(gw_http *h, parley_err e, int status,
                           const char *detail);
/* The same for a PERMISSION_DENIED: the body names the access rule
 * ({"code":"PERMISSION_DENIED","rule":"MUTED","detail":"..."}). */
void gw_http_respond_error_rule(gw_http *h, parley_err e, parley_rule rule,
                                int status, const char *detail);
gw_server *gw_http_server(gw_http *h);
gw_handle *gw_http_handle(gw_http *h);
struct lws *gw_http_wsi(gw_http *h);

/* An Allow header for h's answer (a 405). */
void gw_http_set_allow(gw_http *h, const char *methods);

/* Answers a /v1/... request from the REST route table (gw_rest.c): the
 * route's History call, or 404 / 405 with a JSON error. */
void gw_rest_route(gw_http *h, const char *method, const char *path,
                   const char *body, size_t body_len, const char *bearer);
/* Calls method m upstream with req and the caller's token, and answers h
 * with the response as JSON (only its field unwrap when not NULL), the
 * core's refusal (403 naming the rule), or 503 when the core is out of
 * reach. Every REST route ends here. */
void gw_rest_call(gw_http *h, const rpc_method_desc *m,
                  const ProtobufCMessage *req, const char *token,
                  const char *unwrap);

/* ---- gw_limits.c: sessions per peer address ---- */

/* Sessions open from ip now. */
int gw_ip_count(gw_server *s, const char *ip);
/* A session from ip opened / closed; -1 when out of memory. */
int gw_ip_add(gw_server *s, const char *ip, int delta);
void gw_ip_free_all(gw_server *s);

/* 1 for 127.x, localhost and ::1 */
int gw_host_is_loopback(const char *host);

/* The room management and moderation routes (gw_rest_rooms.c), which the
 * table of gw_rest.c hands their requests to. */
typedef enum gw_rooms_route {
    GW_RR_LIST_ROOMS,
    GW_RR_UPDATE_ROOM,
    GW_RR_DELETE_ROOM,
    GW_RR_LIST_MEMBERS,
    GW_RR_ADD_MEMBER,
    GW_RR_REMOVE_MEMBER,
    GW_RR_MODERATE,
    GW_RR_LIST_ACTIONS,
    GW_RR_MARK_READ,
    GW_RR_ERASE_USER
} gw_rooms_route;
/* Answers one of them: room and user from the path ("" when the route has
 * none; checked here), token the caller's verified bearer token. */
void gw_rest_rooms(gw_http *h, gw_rooms_route r, const char *room,
                   const char *user, const char *body, size_t body_len,
                   const char *token);
/* A {user} path segment %-decoded into out (cap bytes); -1 if it is
 * empty, too long or badly escaped. */
int gw_rest_user_id(const char *raw, char *out, size_t cap);

/* ---- gw_metrics.c ---- */

char *gw_metrics_render(gw_server *s, size_t *len);

#endif
