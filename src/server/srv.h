/* srv.h: the parley.v1 service handlers (History and Stream) on top of
 * rpc.h, the hub and the store, and the services operators use beside
 * them. srv_core.c owns identity checks and message conversion,
 * srv_history.c the History RPCs, srv_stream.c Connect streams
 * (subscriptions, replay then live) and Publish, srv_commit.c the group
 * commit that turns what a loop iteration received into one transaction,
 * srv_access.c the access check of every call (core/access.h),
 * srv_rooms.c the Rooms service (settings, members, moderation, erasure)
 * and room events, srv_health.c grpc.health.v1.Health (the store's ability
 * to commit),
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
#include "srv_limits.h"
#include "store.h"
#include "parley/v1/history.grpc.h"
#include "parley/v1/rooms.grpc.h"
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
    metrics *metrics;      /* where the core's series go; NULL: none kept */
    int no_reflection;     /* 1: do not serve grpc.reflection */
    double user_rate;      /* writes per second per participant; 0: no limit */
    double user_burst;     /* the bucket's size */
    double organizer_rate; /* the same for organizers; 0: no limit */
    size_t max_subs;       /* rooms one user's Connect stream may follow
                              (a service's: no limit); 0: 100 */
} srv_opts;

/* A service's Connect stream (a gateway's shared link) may queue this many
 * times --max-queue frames before it is cut as too slow. */
#define SRV_SERVICE_QUEUE_FACTOR 16

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
/* Ends every Connect stream whose token expired by now_s (and was not
 * renewed by an Authenticate frame) with UNAUTHENTICATED and the
 * parley-error-code TOKEN_EXPIRED. Call about once a second. Returns how
 * many it ended. */
size_t srv_expire(srv *s, int64_t now_s);
void srv_free(srv *s);

/* srv_bus.c: several cores on one store, their events on a NATS bus
 * (bus/bus.h). Without srv_bus_start the core is a single node and none of
 * it runs. */
typedef struct srv_bus srv_bus;
typedef struct srv_bus_opts {
    const char *servers;  /* NATS URLs, comma-separated */
    const char *prefix;   /* subject prefix; NULL: bus.h's default */
    const char *name;     /* connection name shown by the NATS server */
    unsigned gap_wait_ms; /* how long a gap waits for the bus, then store */
    unsigned sweep_ms;    /* pace of the sweep over watched rooms; 0: 1000 */
    unsigned test_drop;   /* tests: events dropped per 1000 received */
    metrics *metrics;     /* where its series go; NULL: none */
    /* Wakes the loop from another thread (rpc_server_wake); NULL: the loop
     * must poll every few ms (srv_bus_timeout_ms says so). */
    void (*wake)(void *wake_ud);
    void *wake_ud;
} srv_bus_opts;
int srv_bus_start(srv *s, const srv_bus_opts *o, char *err, size_t errlen);
/* Before srv_free, after the last stream closed. */
void srv_bus_stop(srv *s);
/* After each rpc_server_poll: what the bus brought, gaps due, the sweep.
 * Returns how many items it handled. */
size_t srv_bus_poll(srv *s);
/* The longest the loop may wait in rpc_server_poll (at most idle_ms). */
int srv_bus_timeout_ms(const srv *s, int idle_ms);

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
    SRV_OP_MARK_READ
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
    uint64_t seq;                      /* edit, delete: the message;
                                          mark read: the seq read up to */
    uint64_t mark_rev;                 /* mark read: the rev read up to */
    char *room, *client_msg_id, *body; /* one allocation, at room */
    size_t body_len;
    int64_t now_ms;
    /* results */
    parley_err err;
    parley_rule rule;   /* with PERMISSION_DENIED: the refusing rule */
    parley_standing st; /* and the standing it was judged by */
    int duplicate;
    uint64_t new_seq, new_rev; /* a publish stored anew (not a duplicate);
                                  an edit's, a delete's event */
    int author_role;           /* a new message's author's role in the room */
    grpc_slice reply;          /* the encoded answer, when err is OK */
    grpc_slice event;          /* edit, delete: the encoded event */
    int has_reply, has_event;
    /* a delete of another's message: the moderation action stored with it
     * (srv_rooms.c tells the room's watchers); NULL: none */
    struct srv_action_copy *action;
} srv_op;

/* A list of ops (a batch being collected, or a commit). */
typedef struct srv_ops {
    srv_op *v;
    size_t n, cap;
} srv_ops;

typedef struct srv_writer srv_writer; /* srv_commit.c */

typedef struct srv_metrics srv_metrics;
typedef struct srv_presence srv_presence;
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
    srv_rate *rate;     /* per-user writes (srv_limits.h), participants */
    srv_rate *org_rate; /* and organizers */
    size_t max_body;
    srv_metrics *metrics;       /* srv_metrics.c; never NULL after srv_new */
    srv_presence *presence;     /* srv_presence.c; never NULL after srv_new */
    srv_health *health;         /* srv_health.c */
    srv_reflection *reflection; /* srv_reflection.c; NULL when not served */
    int64_t next_sample_ms;     /* srv_tick: when the gauges are next read */
    int64_t next_expire_ms; /* srv_tick: when tokens and rates are next swept */
    size_t max_subs;
    srv_ops batch;  /* collected since the last hand-over */
    srv_writer *wr; /* NULL: the loop commits itself */
    rpc_server *rs; /* srv_register's: the writer wakes its loop */
    list conns;     /* every open Connect stream (srv_conn.link) */
    srv_bus *bus;   /* srv_bus.c; NULL: a single node */
};

/* srv_commit.c: the writer thread's start and stop (srv_new, srv_free). */
int srv_writer_start(srv *s, char *err, size_t errlen);
void srv_writer_stop(srv *s);
/* The store handle that writes, when the loop may use it now: always
 * without a writer thread, else only while the writer is idle (it stays
 * idle until the loop's next srv_flush); NULL while a group is being
 * committed. For the health check's write status and probes. */
store *srv_write_store(srv *s);
/* The store handle that writes, for a change the loop makes itself (the
 * Rooms service's, CreateRoom): waits until the writer's group in flight
 * (if any) is committed, answers it and fans it out, so the change lands
 * after it and every read sees both. The handle is the loop's until its
 * next srv_flush. */
store *srv_write_now(srv *s);
/* Interval durability when the loop commits itself (srv_tick). */
void srv_commit_tick(srv *s, int64_t now_ms);
/* For a History read on any thread that saw head_rev of room (the room's
 * head, or the rev of the message it read): 1 if everything it saw has
 * been fanned out; 0 if it may have seen a commit whose events are not out
 * yet, in which case it waited until they are and must read again. So a
 * page never holds a change that a subscriber could then be sent as new. */
int srv_read_settled(srv *s, const char *room, uint64_t head_rev);

/* Verifies `authorization` metadata through the calling thread's token
 * cache; on failure fails the call (UNAUTHENTICATED, or TOKEN_EXPIRED) and
 * returns nonzero. */
int srv_authenticate_with(auth_cache *ac, rpc_call *c, auth_identity *who);
/* The same on the loop thread (the srv's cache). */
int srv_authenticate(srv *s, rpc_call *c, auth_identity *who);
/* Fails a unary call with a store error e (INTERNAL and IO are logged with
 * db's last error and answered as a storage failure). */
void srv_fail_store(rpc_call *c, store *db, parley_err e);
/* Answers a unary call: reply when e is PARLEY_OK, else e as
 * srv_fail_store does. */
void srv_answer(rpc_call *c, store *db, parley_err e,
                const ProtobufCMessage *reply);
/* The page size a List call asks for (0: dflt); 0 after failing c with
 * BAD_CURSOR for one above RULES_LIST_LIMIT_MAX. */
unsigned srv_page_limit(rpc_call *c, uint32_t asked, unsigned dflt);
/* arr (of *cap items of size bytes) reallocated to twice *cap items, or
 * first when *cap is 0, and *cap set to that; NULL out of memory (arr and
 * *cap unchanged then). */
void *srv_grow(void *arr, size_t *cap, size_t first, size_t size);
/* For a call that writes: fails it with PERMISSION_DENIED and returns
 * nonzero when who is a service token (those only read), or with
 * RESOURCE_EXHAUSTED when the user is over the write rate. */
int srv_refuse_service(rpc_call *c, const auth_identity *who);
int srv_refuse_write(srv *s, rpc_call *c, const auth_identity *who);
/* 1 if who may write now (a token of its role's bucket taken). */
int srv_take_write(srv *s, const auth_identity *who);

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
/* srv_bus.c: the event (frame) of a change this core committed (rev): to
 * the room's live subscribers, in rev order with the other cores' changes,
 * and on the bus; without a bus straight to the hub. */
void srv_deliver(srv *s, const char *room, uint64_t rev, grpc_slice frame);
/* A subscription to room begins (head_rev: the room's head as read for
 * it) or ends: the bus watches the rooms that have any. -1 out of memory.
 * No-ops without a bus. */
int srv_bus_watch(srv *s, const char *room, uint64_t head_rev);
void srv_bus_unwatch(srv *s, const char *room);
/* May a subscription whose replay read room up to head_rev turn live?
 * Not while this core already delivered past it (the replay reads on). */
int srv_bus_live_ok(const srv *s, const char *room, uint64_t head_rev);
/* ServerFrame{request_id, error{code, detail, fatal}} on a stream. */
void srv_send_error(rpc_call *c, uint64_t request_id, parley_err e,
                    const char *detail, int fatal);
/* The same with the access rule of a PERMISSION_DENIED (Error.rule). */
void srv_send_error_rule(rpc_call *c, uint64_t request_id, parley_err e,
                         parley_rule rule, const char *detail, int fatal);

/* srv_access.c: the access check of every call (core/access.h). */
typedef struct srv_grant {
    parley_room room;   /* its settings (no counters); store strings, valid
                           until the next store call */
    parley_standing st; /* the caller's standing there */
    int role;           /* the caller's role there */
    parley_rule rule;   /* with PERMISSION_DENIED: the refusing rule */
} srv_grant;
/* What who's token says about room (the service flag: a service token). */
access_who srv_who(const auth_identity *who, const char *room);
/* Reads room and who's standing there and decides op (own: the message is
 * who's, for EDIT and DELETE). PARLEY_OK, PERMISSION_DENIED with g->rule,
 * ROOM_NOT_FOUND (NOT_GRANTED instead when nothing grants who the name, so
 * no room's existence leaks), or a storage error. */
parley_err srv_check(srv *s, const auth_identity *who, const char *room,
                     access_op op, int own, srv_grant *g);
/* The same read through db: the writer's handle inside its transaction
 * (the commit's checks), or a reader thread's. */
parley_err srv_check_on(store *db, const auth_identity *who, const char *room,
                        access_op op, int own, srv_grant *g);
/* The decision of srv_check_on from the rows it read: found is what
 * store_room_access returned, r and st what it read (used when found is
 * PARLEY_OK). For a caller that read them before (the group commit). */
parley_err srv_check_rows(const auth_identity *who, const char *room,
                          parley_err found, const parley_room *r,
                          const parley_standing *st, access_op op, int own,
                          srv_grant *g);
/* "an organizer muted you in this room until 2030-01-01T00:00:00Z (rule
 * MUTED)" */
void srv_rule_detail(parley_rule rule, const parley_standing *st, char *buf,
                     size_t n);
/* Fails a unary call with srv_check's refusal (rule trailer and detail). */
void srv_fail_check(rpc_call *c, srv *s, parley_err e, const srv_grant *g);
/* The same after a check through db (its error is logged). */
void srv_fail_check_on(rpc_call *c, store *db, parley_err e,
                       const srv_grant *g);
/* Authenticates c's caller through ac and checks op on room through db
 * (srv_check_on, not one's own message); nonzero after failing c. */
int srv_admit_on(auth_cache *ac, store *db, rpc_call *c, const char *room,
                 access_op op, auth_identity *who, srv_grant *g);
/* The same as an Error frame on a stream (not fatal). */
void srv_send_check_error(rpc_call *c, uint64_t request_id, parley_err e,
                          const srv_grant *g);
/* who's view of room (Room.me), its unread count included (a store
 * read), and its protobuf form. */
#define SRV_UNREAD_CAP 1000
void srv_view(srv *s, const auth_identity *who, const parley_room *room,
              const parley_standing *st, access_view *out);
/* The same with the unread count read through db. */
void srv_view_on(store *db, const auth_identity *who, const parley_room *room,
                 const parley_standing *st, access_view *out);
void srv_pb_access(Parley__V1__RoomAccess *out, const access_view *v);
/* A room as one caller sees it, for a reply: the room and its `me`. */
typedef struct srv_room_pb {
    Parley__V1__Room room;
    Parley__V1__RoomAccess me;
} srv_room_pb;
/* Fills out with room and who's view of it (standing st, the unread count
 * read through db); out->room.me points into out. */
void srv_pb_room_as(const srv *s, store *db, const auth_identity *who,
                    const parley_room *room, const parley_standing *st,
                    srv_room_pb *out);

/* srv_commit.c: queues a publish (copies its strings). A Connect
 * stream's publish (conn not NULL) is answered with a frame on the stream
 * and then reported to done(conn); a unary one with the call's reply. */
parley_err srv_enqueue(srv *s, rpc_call *c, srv_conn *conn,
                       srv_pub_done_fn done, uint64_t request_id,
                       const auth_identity *who,
                       const Parley__V1__PublishRequest *p);
/* Queues History's edits and deletes; each is checked against the access
 * rules inside its commit's transaction (as a publish is), answered with
 * the call's reply (or failure) after the commit, and fanned out when it
 * changed something. */
parley_err srv_enqueue_edit(srv *s, rpc_call *c, const auth_identity *who,
                            const char *room, uint64_t seq, const char *body);
parley_err srv_enqueue_delete(srv *s, rpc_call *c, const auth_identity *who,
                              const char *room, uint64_t seq);
/* Queues Rooms.MarkRead: checked (READ) and stored in a group commit like
 * the writes above, so the loop never waits for the writer for it. */
parley_err srv_enqueue_mark_read(srv *s, rpc_call *c, const auth_identity *who,
                                 const char *room, uint64_t seq, uint64_t rev);

extern const parley_v1_History_handlers srv_history;
extern const parley_v1_Stream_handlers srv_stream;
extern const parley_v1_Rooms_handlers srv_rooms;

/* srv_rooms.c: an action with its own copies of the strings (store
 * results live only until the next store call but one). */
typedef struct srv_action_copy {
    parley_action a;
    char room[RULES_ROOM_MAX + 1];
    char actor_id[RULES_AUTHOR_ID_MAX + 1];
    char actor_name[RULES_DISPLAY_NAME_MAX + 1];
    char target[RULES_AUTHOR_ID_MAX + 1];
    char reason[STORE_REASON_MAX + 1];
} srv_action_copy;
void srv_action_keep(srv_action_copy *k, const parley_action *a);
/* An action of kind by actor in room about target (a user id, or NULL) at
 * now; the caller sets what else its kind records (mode, until, ...). */
parley_action srv_action_of(const char *room, int kind,
                            const parley_author *actor, const char *target,
                            int64_t now);
/* Stores a through db (inside the caller's transaction) and keeps what was
 * stored, its id given, in k. */
parley_err srv_action_store(store *db, const parley_action *a,
                            srv_action_copy *k);
/* srv_rooms.c: tells the room's live watchers of action a (room: its
 * settings and counters after it, or NULL to read them here). */
void srv_room_event(srv *s, const parley_action *a, const parley_room *room);
/* srv_stream.c: checks again that every subscription to room (of user_id
 * only, unless NULL) may still read it; one that may not gets
 * Error{PERMISSION_DENIED, rule} (ROOM_NOT_FOUND for a deleted room) with
 * its subscribe's request_id, then Unsubscribed{room}, and ends. */
void srv_stream_recheck(srv *s, const char *room, const char *user_id);

/* srv_presence.c: presence and typing (never stored). */
#define SRV_PRESENCE_NAMES 50   /* users named in a Presence, at most */
#define SRV_PRESENCE_MIN_MS 500 /* a room's picture is sent this often */
#define SRV_TYPING_MIN_MS 2000  /* one typing per user and room this often */
typedef struct srv_presence_refs srv_presence_refs;
srv_presence *srv_presence_new(void);
void srv_presence_free(srv_presence *p);
/* A stream says who is here (here = 1) or gone in room; *refs (NULL at
 * first) remembers it for the stream, each (room, user) once. */
parley_err srv_presence_say(srv *s, srv_presence_refs **refs, const char *room,
                            const parley_author *who, int here);
/* The stream ended: its users leave. */
void srv_presence_refs_free(srv *s, srv_presence_refs *refs);
int srv_presence_join(srv *s, const char *room, const parley_author *who);
void srv_presence_leave(srv *s, const char *room, const char *user_id);
/* ServerFrame{presence} of room as it is now. */
grpc_slice srv_presence_frame(srv *s, const char *room);
unsigned srv_presence_count(srv *s, const char *room);
/* Sends the changed rooms' pictures (srv_tick). */
void srv_presence_tick(srv *s, int64_t now);
/* Passes who's typing in room on to its watchers unless they were told
 * less than SRV_TYPING_MIN_MS ago (then 0, dropped). */
int srv_presence_typing(srv *s, const char *room, const parley_author *who,
                        int64_t now);

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
