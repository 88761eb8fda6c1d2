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
#include "hub.h"
#include "rpc.h"
#include "store.h"
#include "parley/v1/history.grpc.h"
#include "parley/v1/stream.grpc.h"

typedef struct srv srv;

typedef struct srv_opts {
    size_t max_body; /* 0 = RULES_BODY_MAX_DEFAULT */
} srv_opts;

/* st and au stay owned by the caller and must outlive the srv. */
srv *srv_new(store *st, const auth *au, const srv_opts *opts);
/* Registers History and Stream with rs (before rpc_server_start). */
int srv_register(srv *s, rpc_server *rs, char *err, size_t errlen);
/* Group commit: stores every publish collected since the last flush in one
 * transaction, then acks them and fans the events out. Call after each
 * rpc_server_poll. Returns how many publishes it handled. */
size_t srv_flush(srv *s);
/* Publishes waiting for the next flush. */
size_t srv_pending(const srv *s);
void srv_free(srv *s);

/* ---- internal to srv_*.c ---- */

typedef struct srv_conn srv_conn;

/* One publish waiting for the group commit. */
typedef struct srv_pub {
    rpc_call *call;       /* ref'd until the ack is sent */
    srv_conn *conn;       /* Connect stream, or NULL for unary Publish */
    uint64_t request_id;
    auth_identity who;
    char *room, *client_msg_id, *body; /* one allocation, at room */
    size_t body_len;
} srv_pub;

struct srv {
    store *st;
    const auth *au;
    hub *hub;
    size_t max_body;
    srv_pub *batch;
    size_t n_batch, cap_batch;
    srv_conn *conns; /* every open Connect stream */
};

/* Verifies `authorization` metadata; on failure fails the call
 * (UNAUTHENTICATED) and returns nonzero. */
int srv_authenticate(srv *s, rpc_call *c, auth_identity *who);
int64_t srv_now_ms(void);

/* A protobuf view of a store row: pointers into m (valid while m is). */
typedef struct srv_pbmsg {
    Parley__V1__Message msg;
    Parley__V1__Author author;
} srv_pbmsg;
void srv_pb_message(srv_pbmsg *out, const store_msg *m);
/* A Room with the core's body limit (max_body_bytes) for clients. */
void srv_pb_room(const srv *s, Parley__V1__Room *out, const store_room *r);
int srv_event_type(const store_msg *m); /* CREATED, EDITED or DELETED */

/* An encoded ServerFrame{event{type, m, replay}}. */
grpc_slice srv_event_frame(int type, const store_msg *m, int replay);
/* Encodes the event once and queues it to the room's live subscribers. */
void srv_fanout(srv *s, int type, const store_msg *m);
/* ServerFrame{request_id, error{code, detail, fatal}} on a stream. */
void srv_send_error(rpc_call *c, uint64_t request_id, parley_err e,
                    const char *detail, int fatal);

/* srv_commit.c: queues a publish (copies its strings). */
parley_err srv_enqueue(srv *s, rpc_call *c, srv_conn *conn,
                       uint64_t request_id, const auth_identity *who,
                       const Parley__V1__PublishRequest *p);
/* srv_stream.c: a Connect stream's publish was acked or refused. */
void srv_conn_pub_done(srv_conn *conn);

extern const parley_v1_History_handlers srv_history;
extern const parley_v1_Stream_handlers srv_stream;

#endif
