/* srv.h: the parley.v1 service handlers (History and Stream) on top of
 * rpc.h, the hub and the store, and the services operators use beside
 * them. srv_core.c owns identity checks and message conversion,
 * srv_history.c the History RPCs, srv_stream.c Connect streams
 * (subscriptions, replay then live) and Publish, srv_commit.c the group
 * commit that turns a loop iteration's publishes into one transaction,
 * srv_health.c grpc.health.v1.Health (the store's ability to commit),
 * srv_reflection.c grpc.reflection v1 and v1alpha (the descriptors built
 * in), srv_metrics.c the core's Prometheus series. Everything runs on the
 * loop thread, but for the two readers named thread-safe below. */
#ifndef PARLEY_SRV_H
#define PARLEY_SRV_H

#include <stddef.h>
#include <stdint.h>
#include "auth.h"
#include "clock.h"
#include "hub.h"
#include "metrics.h"
#include "rpc.h"
#include "store.h"
#include "parley/v1/history.grpc.h"
#include "parley/v1/stream.grpc.h"

typedef struct srv srv;

typedef struct srv_opts {
    size_t max_body;   /* 0 = RULES_BODY_MAX_DEFAULT */
    metrics *metrics;  /* where the core's series go; NULL: none kept */
    int no_reflection; /* 1: do not serve grpc.reflection */
} srv_opts;

/* db and au stay owned by the caller and must outlive the srv. */
srv *srv_new(store *db, const auth *au, const srv_opts *opts);
/* Registers History, Stream, Health and (unless opts.no_reflection)
 * ServerReflection v1 and v1alpha with rs, before rpc_server_start, and
 * observes rs's calls for the metrics and the debug log. */
int srv_register(srv *s, rpc_server *rs, char *err, size_t errlen);
/* Housekeeping, after each rpc_server_poll (it keeps its own pace): the
 * health state from the store's writes (probing it every few seconds while
 * it cannot commit; watchers are told of each change) and, once a second,
 * the gauges sampled from rs. */
void srv_tick(srv *s, const rpc_server *rs);
/* Shutdown begins: every health service turns NOT_SERVING and watchers are
 * told, so balancers stop sending before the port closes. */
void srv_health_shutdown(srv *s);
/* 1 while the core can commit (and is not shutting down). Thread-safe:
 * parleyd's HTTP thread answers /healthz with it. */
int srv_health_serving(const srv *s);
/* Group commit: stores every publish collected since the last flush in one
 * transaction, then acks them and fans the events out. Call after each
 * rpc_server_poll. Returns how many publishes it handled. */
size_t srv_flush(srv *s);
/* Publishes waiting for the next flush. */
size_t srv_pending(const srv *s);
void srv_free(srv *s);

/* ---- internal to srv_*.c ---- */

typedef struct srv_conn srv_conn;

/* Told that a Connect stream's publish was acked or refused. */
typedef void (*srv_pub_done_fn)(srv_conn *conn);

/* One publish waiting for the group commit. */
typedef struct srv_pending_pub {
    rpc_call *call;       /* ref'd until the ack is sent */
    srv_conn *conn;       /* Connect stream, or NULL for unary Publish */
    srv_pub_done_fn done; /* with conn: called once it is answered */
    uint64_t request_id;
    auth_identity who;
    char *room, *client_msg_id, *body; /* one allocation, at room */
    size_t body_len;
} srv_pending_pub;

typedef struct srv_metrics srv_metrics;
typedef struct srv_health srv_health;
typedef struct srv_reflection srv_reflection;

struct srv {
    store *db; /* the message store, owned by the caller */
    const auth *au;
    hub *hub;
    size_t max_body;
    srv_metrics *metrics;       /* srv_metrics.c; never NULL after srv_new */
    srv_health *health;         /* srv_health.c */
    srv_reflection *reflection; /* srv_reflection.c; NULL when not served */
    int64_t next_sample_ms;     /* srv_tick: when the gauges are next read */
    srv_pending_pub *batch;
    size_t n_batch, cap_batch;
    list conns; /* every open Connect stream (srv_conn.link) */
};

/* Verifies `authorization` metadata; on failure fails the call
 * (UNAUTHENTICATED) and returns nonzero. */
int srv_authenticate(srv *s, rpc_call *c, auth_identity *who);

/* A protobuf view of a store row: pointers into m (valid while m is). */
typedef struct srv_pbmsg {
    Parley__V1__Message msg;
    Parley__V1__Author author;
} srv_pbmsg;
void srv_pb_message(srv_pbmsg *out, const parley_msg *m);
/* A Room with the core's body limit (max_body_bytes) for clients. */
void srv_pb_room(const srv *s, Parley__V1__Room *out, const parley_room *r);
int srv_event_type(const parley_msg *m); /* CREATED, EDITED or DELETED */

/* An encoded ServerFrame{event{type, m, replay}}. */
grpc_slice srv_event_frame(int type, const parley_msg *m, int replay);
/* Encodes the event once and queues it to the room's live subscribers. */
void srv_fanout(srv *s, int type, const parley_msg *m);
/* ServerFrame{request_id, error{code, detail, fatal}} on a stream. */
void srv_send_error(rpc_call *c, uint64_t request_id, parley_err e,
                    const char *detail, int fatal);

/* srv_commit.c: queues a publish (copies its strings). A Connect
 * stream's publish (conn not NULL) is answered with a frame on the stream
 * and then reported to done(conn); a unary one with the call's reply. */
parley_err srv_enqueue(srv *s, rpc_call *c, srv_conn *conn,
                       srv_pub_done_fn done, uint64_t request_id,
                       const auth_identity *who,
                       const Parley__V1__PublishRequest *p);

extern const parley_v1_History_handlers srv_history;
extern const parley_v1_Stream_handlers srv_stream;

/* srv_metrics.c */
srv_metrics *srv_metrics_new(metrics *reg); /* reg NULL: counts nothing */
void srv_metrics_free(srv_metrics *m);
/* Registers the per-method series of desc's methods (srv_register). */
void srv_metrics_service(srv_metrics *m, const rpc_service_desc *desc);
/* rpc_observer.call_done with ud = the srv_metrics: counts the call by
 * method and status, times it, and logs it at debug level. */
void srv_metrics_call_done(void *ud, const rpc_method_desc *m, int status,
                           uint64_t micros);
/* One group commit: how many publishes it held, how many were stored new
 * and how many were duplicates, whether the commit failed, how long the
 * store took (ns). */
void srv_metrics_commit(srv_metrics *m, size_t batch, size_t stored,
                        size_t duplicates, int failed, uint64_t ns);
/* The gauges, from the srv and rs (srv_tick, once a second). */
void srv_metrics_sample(srv_metrics *m, const srv *s, const rpc_server *rs);
void srv_metrics_health(srv_metrics *m, int serving);

/* srv_health.c */
srv_health *srv_health_new(void);
void srv_health_free(srv_health *h);
int srv_health_register(srv *s, rpc_server *rs, char *err, size_t errlen);
void srv_health_tick(srv *s);

/* srv_reflection.c: NULL with err when the built-in descriptors do not
 * parse. */
srv_reflection *srv_reflection_new(char *err, size_t errlen);
void srv_reflection_free(srv_reflection *r);
/* Registers both ServerReflection versions; every service registered with
 * rs before or after (by name, see srv_reflection_serves) is listed. */
int srv_reflection_register(srv *s, rpc_server *rs, char *err, size_t errlen);
/* Tells reflection that this service is served (for list_services). */
void srv_reflection_serves(srv_reflection *r, const char *full_name);

#endif
