/* srv.h: the parley.v1 service handlers (History and Stream) on top of
 * rpc.h, the hub and the store. srv_core.c owns identity checks and message
 * conversion, srv_history.c the History RPCs, srv_stream.c Connect streams
 * (subscriptions, replay then live) and Publish, srv_commit.c the group
 * commit that turns a loop iteration's publishes into one transaction.
 * Everything runs on the loop thread. */
#ifndef PARLEY_SRV_H
#define PARLEY_SRV_H

#include <stddef.h>
#include <stdint.h>
#include "auth.h"
#include "clock.h"
#include "hub.h"
#include "rpc.h"
#include "srv_limits.h"
#include "store.h"
#include "parley/v1/history.grpc.h"
#include "parley/v1/stream.grpc.h"

typedef struct srv srv;

typedef struct srv_opts {
    size_t max_body;   /* 0 = RULES_BODY_MAX_DEFAULT */
    double user_rate;  /* writes per second per user; 0: no limit */
    double user_burst; /* the bucket's size */
    size_t max_subs;   /* rooms one Connect stream may follow; 0: 100 */
} srv_opts;

/* db and au stay owned by the caller and must outlive the srv. */
srv *srv_new(store *db, const auth *au, const srv_opts *opts);
/* Registers History and Stream with rs (before rpc_server_start). */
int srv_register(srv *s, rpc_server *rs, char *err, size_t errlen);
/* Group commit: stores every publish collected since the last flush in one
 * transaction, then acks them and fans the events out. Call after each
 * rpc_server_poll. Returns how many publishes it handled. */
size_t srv_flush(srv *s);
/* Publishes waiting for the next flush. */
size_t srv_pending(const srv *s);
/* Ends every Connect stream whose token expired by now_s (and was not
 * renewed by an Authenticate frame) with UNAUTHENTICATED and the
 * parley-error-code TOKEN_EXPIRED. Call about once a second. Returns how
 * many it ended. */
size_t srv_expire(srv *s, int64_t now_s);
/* Once a second: srv_expire, and the idle rate buckets dropped. */
void srv_tick(srv *s);
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

struct srv {
    store *db; /* the message store, owned by the caller */
    const auth *au;
    hub *hub;
    srv_rate *rate; /* per-user writes (srv_limits.h) */
    size_t max_body;
    size_t max_subs;
    srv_pending_pub *batch;
    size_t n_batch, cap_batch;
    list conns; /* every open Connect stream (srv_conn.link) */
};

/* Verifies `authorization` metadata; on failure fails the call
 * (UNAUTHENTICATED, or TOKEN_EXPIRED) and returns nonzero. */
int srv_authenticate(srv *s, rpc_call *c, auth_identity *who);
/* For a call that writes: fails it with PERMISSION_DENIED and returns
 * nonzero when who is a service token (those only read), or with
 * RESOURCE_EXHAUSTED when the user is over the write rate. */
int srv_refuse_service(rpc_call *c, const auth_identity *who);
int srv_refuse_write(srv *s, rpc_call *c, const auth_identity *who);

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

extern const parley_v1_History_handlers srv_history;
extern const parley_v1_Stream_handlers srv_stream;

#endif
