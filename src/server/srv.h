/* srv.h: the parley.v1 service handlers (History and Stream) on top of
 * rpc.h, the hub and the store, and the services operators use beside
 * them. srv_core.c owns identity checks and message conversion,
 * srv_history.c the History RPCs, srv_stream.c Connect streams
 * (subscriptions, replay then live) and Publish, srv_commit.c the group
 * commit that turns what a loop iteration received into one transaction,
 * srv_health.c grpc.health.v1.Health (the store's ability to commit),
 * srv_reflection.c grpc.reflection v1 and v1alpha (the descriptors built
 * in), srv_metrics.c the core's Prometheus series. Everything runs on the
 * loop thread, but for the two readers named thread-safe below, and:
 *   - the History reads (ListMessages, GetMessage, GetRoom): rpc's worker
 *     threads serve them, each with a srv_reader of its own (a read-only
 *     store handle and a token cache), when the srv has readers;
 *   - the commits: a writer thread owns the store handle the srv was given
 *     and runs each group commit while the loop goes on serving (see
 *     srv_commit.c), with durability full when a second handle could be
 *     opened for the loop's own reads. */
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
    size_t max_body;    /* 0 = RULES_BODY_MAX_DEFAULT */
    size_t readers;     /* reader threads (= rpc workers); 0: the loop reads */
    size_t token_cache; /* verified tokens kept per thread; 0 = 4096 */
    /* Commit on a writer thread while the loop serves (groups big enough
     * to be worth two thread switches, every group with durability full);
     * 0: the loop commits every group itself. */
    int commit_thread;
    metrics *metrics;  /* where the core's series go; NULL: none kept */
    int no_reflection; /* 1: do not serve grpc.reflection */
} srv_opts;

/* db and au stay owned by the caller and must outlive the srv; db becomes
 * the writer thread's (the caller must not use it until srv_free). Opens
 * read-only handles on db's database for each reader and, with
 * commit_thread, for the loop (NULL, and why in err, if a reader's fails;
 * without commit_thread, or without a handle for the loop as for an
 * in-memory database or an engine without reader handles, the loop
 * commits itself). */
srv *srv_new(store *db, const auth *au, const srv_opts *opts, char *err,
             size_t errlen);
/* Registers History, Stream, Health and (unless opts.no_reflection)
 * ServerReflection v1 and v1alpha with rs, before rpc_server_start, the
 * History reads on rs's workers (of which there must be opts.readers),
 * and observes rs's calls for the metrics and the debug log. */
int srv_register(srv *s, rpc_server *rs, char *err, size_t errlen);
/* Housekeeping, after each rpc_server_poll (it keeps its own pace): the
 * health state from the store's writes (probing it every few seconds while
 * it cannot commit; watchers are told of each change), once a second the
 * gauges sampled from rs, and interval durability's syncs when the loop
 * commits itself (the writer thread syncs its own). */
void srv_tick(srv *s, const rpc_server *rs);
/* Shutdown begins: every health service turns NOT_SERVING and watchers are
 * told, so balancers stop sending before the port closes. */
void srv_health_shutdown(srv *s);
/* 1 while the core can commit (and is not shutting down). Thread-safe:
 * parleyd's HTTP thread answers /healthz with it. */
int srv_health_serving(const srv *s);
/* Group commit, called after each rpc_server_poll: answers the writes of
 * the commit that finished (acks, replies, events fanned out, in commit
 * order) and hands what was collected since to the writer as the next
 * commit (without a writer thread: commits it at once). Returns how many
 * writes it answered. */
size_t srv_flush(srv *s);
/* Writes collected or in a commit not yet answered. */
size_t srv_pending(const srv *s);
/* How long the loop may sleep in rpc_server_poll: `idle_ms`, unless a
 * commit is in flight and no rpc server was registered to be woken. */
int srv_poll_ms(const srv *s, int idle_ms);
/* Before the rpc server srv_register was given is freed: the writer stops
 * waking its loop. */
void srv_detach(srv *s);
void srv_free(srv *s);

/* ---- internal to srv_*.c ---- */

/* What one thread needs to serve History reads: its store handle and its
 * token cache. The loop's uses the srv's own; a reader thread's are its
 * own, and of the srv it reads only what never changes (max_body). */
typedef struct srv_reader {
    srv *s;
    store *db;
    auth_cache *ac;
    int owns; /* db and ac are this reader's (closed with it) */
} srv_reader;

typedef struct srv_conn srv_conn;

/* Told that a Connect stream's publish was acked or refused. */
typedef void (*srv_pub_done_fn)(srv_conn *conn);

typedef enum srv_op_kind {
    SRV_OP_PUBLISH,
    SRV_OP_EDIT,
    SRV_OP_DELETE,
    SRV_OP_CREATE_ROOM
} srv_op_kind;

/* One write waiting for (or in) a group commit. The loop fills the input
 * half; the writer the result half; the loop answers it. */
typedef struct srv_op {
    srv_op_kind kind;
    rpc_call *call;       /* ref'd until answered */
    srv_conn *conn;       /* publish on a Connect stream, else NULL */
    srv_pub_done_fn done; /* with conn: called once it is answered */
    uint64_t request_id;
    auth_identity who;
    uint64_t seq;                      /* edit, delete: the message */
    char *room, *client_msg_id, *body; /* one allocation, at room */
    size_t body_len;
    int64_t now_ms;
    /* results */
    parley_err err;
    int duplicate, created;
    uint64_t new_seq, new_rev; /* a publish stored anew (not a duplicate) */
    grpc_slice reply;          /* the encoded answer, when err is OK */
    grpc_slice event;          /* edit, delete: the encoded event */
    int has_reply, has_event;
} srv_op;

/* A list of ops (a batch being collected, or a commit). */
typedef struct srv_ops {
    srv_op *v;
    size_t n, cap;
} srv_ops;

typedef struct srv_writer srv_writer; /* srv_commit.c */

typedef struct srv_metrics srv_metrics;
typedef struct srv_health srv_health;
typedef struct srv_reflection srv_reflection;

struct srv {
    store *db;  /* the loop's reads (replays): a reader handle, or wdb */
    store *wdb; /* the writes: the caller's handle */
    int owns_db;
    const auth *au;
    auth_cache *ac;      /* the loop thread's verified tokens */
    srv_reader *readers; /* max(1, n_readers); [0] is the loop's if none */
    size_t n_readers;
    hub *hub;
    size_t max_body;
    srv_metrics *metrics;       /* srv_metrics.c; never NULL after srv_new */
    srv_health *health;         /* srv_health.c */
    srv_reflection *reflection; /* srv_reflection.c; NULL when not served */
    int64_t next_sample_ms;     /* srv_tick: when the gauges are next read */
    srv_ops batch;              /* collected since the last hand-over */
    srv_writer *wr;             /* NULL: the loop commits itself */
    rpc_server *rs;             /* srv_register's: the writer wakes its loop */
    list conns;                 /* every open Connect stream (srv_conn.link) */
};

/* srv_commit.c: the writer thread's start and stop (srv_new, srv_free). */
int srv_writer_start(srv *s, char *err, size_t errlen);
void srv_writer_stop(srv *s);
/* The store handle that writes, when the loop may use it now: always
 * without a writer thread, else only while the writer is idle (it stays
 * idle until the loop's next srv_flush); NULL while a group is being
 * committed. For the health check's write status and probes. */
store *srv_write_store(srv *s);
/* Interval durability when the loop commits itself (srv_tick). */
void srv_commit_tick(srv *s, int64_t now_ms);
/* For a History read on any thread that saw head_rev of room (the room's
 * head, or the rev of the message it read): 1 if everything it saw has
 * been fanned out; 0 if it may have seen a commit whose events are not out
 * yet, in which case it waited until they are and must read again. So a
 * page never holds a change that a subscriber could then be sent as new. */
int srv_read_settled(srv *s, const char *room, uint64_t head_rev);

/* Verifies `authorization` metadata through the calling thread's token
 * cache; on failure fails the call (UNAUTHENTICATED) and returns nonzero. */
int srv_authenticate_with(auth_cache *ac, rpc_call *c, auth_identity *who);
/* The same on the loop thread (the srv's cache). */
int srv_authenticate(srv *s, rpc_call *c, auth_identity *who);

/* A protobuf view of a store row: pointers into m (valid while m is). */
typedef struct srv_pbmsg {
    Parley__V1__Message msg;
    Parley__V1__Author author;
} srv_pbmsg;
void srv_pb_message(srv_pbmsg *out, const parley_msg *m);
void srv_pb_room(Parley__V1__Room *out, const parley_room *r);
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
/* Queues History's writes; each is answered with the call's reply (or
 * failure) after its commit, and an edit or delete that changed something
 * is fanned out. */
parley_err srv_enqueue_edit(srv *s, rpc_call *c, const auth_identity *who,
                            const char *room, uint64_t seq, const char *body);
parley_err srv_enqueue_delete(srv *s, rpc_call *c, const auth_identity *who,
                              const char *room, uint64_t seq);
parley_err srv_enqueue_create_room(srv *s, rpc_call *c, const char *name);

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
