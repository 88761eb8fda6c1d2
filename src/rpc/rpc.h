/* rpc.h: a thin, generic gRPC server over the grpc C core. It registers the
 * methods of generated service descriptors (rpc_desc.h), drives one
 * completion queue from one thread, decodes requests with protobuf-c and hands
 * them to typed handlers; replies, failures and streamed messages go back
 * through the functions below. Everything here runs on the loop thread that
 * calls rpc_server_poll: no locks, no callbacks from other threads, except
 * for the unary methods handed to worker threads (rpc_server_on_workers):
 * those calls live wholly on their worker, whose handler may touch only
 * what that worker owns.
 *
 * Streams keep one send operation in flight per call (the grpc rule) and a
 * bounded queue of refcounted slices behind it: a frame encoded once can be
 * queued to many calls without copying. A call whose queue would exceed the
 * bound is cancelled with RESOURCE_EXHAUSTED ("subscriber too slow"). */
#ifndef PARLEY_RPC_H
#define PARLEY_RPC_H

#include <stddef.h>
#include <stdint.h>
#include <grpc/grpc.h>
#include <grpc/slice.h>
#include "errors.h"
#include "rpc_desc.h"
#include "rpc_tls.h"
#include "rpc_wire.h"

typedef struct rpc_server rpc_server;

typedef struct rpc_server_opts {
    size_t max_queue;      /* frames queued per stream; 0 = 4096 */
    size_t max_recv_bytes; /* largest request message; 0 = 64 KiB */
    size_t workers;        /* threads for rpc_server_on_workers; 0 = none */
} rpc_server_opts;

/* Creates the grpc server and its completion queue (grpc_init is the
 * caller's). NULL on allocation failure. */
rpc_server *rpc_server_new(const rpc_server_opts *opts);

/* Registers every method of desc, to be served by `handlers` (the generated
 * parley_v1_S_handlers struct, which must outlive the server) with `ud` passed
 * to each handler. -1 (and a message in err naming the method) when a handler
 * member is NULL or the server already started. */
int rpc_server_add_service(rpc_server *rs, const rpc_service_desc *desc,
                           const void *handlers, void *ud, char *err,
                           size_t errlen);

/* Serves the unary method m (of a service added before) on the worker
 * threads instead of the loop thread: each worker has its own completion
 * queue on which its calls are accepted, dispatched and answered, and its
 * handler gets worker_ud[i] (one per worker) instead of the service's ud.
 * Such a handler runs concurrently with the loop and the other workers.
 * Without workers (opts.workers 0) the method stays on the loop thread and
 * gets worker_ud[0]. -1 after start, for a streaming or unknown method, or
 * out of memory. */
int rpc_server_on_workers(rpc_server *rs, const rpc_method_desc *m,
                          void *const *worker_ud);
/* opts.workers. */
size_t rpc_server_workers(const rpc_server *rs);

/* Listens on a grpc address ("127.0.0.1:7400", "unix:var/parleyd.sock"),
 * without TLS. Returns the bound TCP port (> 0; the real one when asked for
 * port 0) or 0 on failure. Call before rpc_server_start. */
int rpc_server_listen(rpc_server *rs, const char *addr);

/* The same with TLS (rpc_tls.h): the certificate and key files, and a
 * client CA for mutual TLS; the files are reloaded when they change. 0 with
 * the reason in err on failure. */
int rpc_server_listen_tls(rpc_server *rs, const char *addr,
                          const rpc_tls_files *tls, char *err, size_t errlen);
/* Certificates loaded again since the start (all TLS listeners). */
int rpc_server_tls_reloads(const rpc_server *rs);

/* Starts serving: posts requests for every registered method and starts the
 * worker threads. -1 with a message in err if that failed. */
int rpc_server_start(rpc_server *rs, char *err, size_t errlen);

/* Runs the loop once: waits up to timeout_ms for a first completion, then
 * handles what is ready without waiting (at most a few thousand events, so a
 * caller can run its group commit between polls). Returns how many events
 * were handled, or -1 once the server is fully shut down. */
int rpc_server_poll(rpc_server *rs, int timeout_ms);

/* Makes the loop's rpc_server_poll return soon even without a gRPC event
 * (or right away if it is not waiting): another thread's way to hand the
 * loop something (parleyd's writer thread, when a commit is done). Any
 * thread, after rpc_server_start; wakes before the loop ran count as one. */
void rpc_server_wake(rpc_server *rs);

/* Shutdown, in steps the caller interleaves with rpc_server_poll:
 * begin stops accepting new calls and reading stream messages; unsent counts
 * the frames still queued on open streams (wait for the acks to leave);
 * cancel_all ends every call still open; done is 1 once grpc reported the
 * shutdown and every call is freed. */
void rpc_server_shutdown_begin(rpc_server *rs);
size_t rpc_server_unsent(const rpc_server *rs);
void rpc_server_cancel_all(rpc_server *rs);
int rpc_server_done(const rpc_server *rs);
/* Destroys the grpc server and its queue (after done, or before start). */
void rpc_server_free(rpc_server *rs);

/* ---- observing (metrics, access logs) ---- */

/* Told once per call, when it is over: its method (NULL for a method no
 * service registered), the gRPC status it ended with (the one the server
 * sent, else CANCELLED: the client went away first) and how long it lasted
 * from its arrival, in microseconds. Runs on the thread of the call's loop:
 * the loop thread, or a worker's (rpc_server_on_workers), so it must be
 * thread-safe. */
typedef struct rpc_observer {
    void (*call_done)(void *ud, const rpc_method_desc *m, int status,
                      uint64_t micros);
    void *ud;
} rpc_observer;
/* obs is copied; NULL stops observing. */
void rpc_server_set_observer(rpc_server *rs, const rpc_observer *obs);

typedef struct rpc_server_stats {
    size_t open_calls;    /* arrived and not over yet */
    size_t queued_frames; /* waiting in the send queues of all calls */
    size_t max_queued;    /* in the longest one */
    uint64_t slow_cut;    /* streams cut for falling max_queue behind */
} rpc_server_stats;
/* Walks the open calls (O(calls)): for a sampler, not for every event. */
void rpc_server_get_stats(const rpc_server *rs, rpc_server_stats *out);

/* ---- calls ---- */

const rpc_method_desc *rpc_call_method(const rpc_call *c);
/* Copies the first value of request metadata `key` (lower case) into buf as
 * a C string. Returns its length, or -1 if absent or longer than buflen-1. */
int rpc_call_metadata(const rpc_call *c, const char *key, char *buf,
                      size_t buflen);
/* Handlers that answer later (after a group commit) hold a reference; the
 * call stays valid (replies to a dead call are ignored) until unref. */
void rpc_call_ref(rpc_call *c);
void rpc_call_unref(rpc_call *c);
/* 1 once the call ended (finished, cancelled, or the client went away). */
int rpc_call_is_done(const rpc_call *c);

/* Unary answers: exactly one of them per call. */
void rpc_reply(rpc_call *c, const ProtobufCMessage *resp);
/* The same with the response already encoded (the slice is ref'd). */
void rpc_reply_slice(rpc_call *c, grpc_slice encoded);
/* Status from parley_err_grpc_status(e), detail as the status message, and
 * the error's name in trailing metadata `parley-error-code`. */
void rpc_fail(rpc_call *c, parley_err e, const char *detail);
/* rpc_fail for a PERMISSION_DENIED that names the access rule behind it,
 * in trailing metadata `parley-rule` (its name, "MUTED"). */
void rpc_fail_rule(rpc_call *c, parley_err e, parley_rule rule,
                   const char *detail);
/* A gRPC status of the caller's choosing, without a parley error code:
 * for services whose protocol is not parley's (grpc.health.v1). */
void rpc_fail_status(rpc_call *c, grpc_status_code status, const char *detail);

/* ---- streams (bidi and server-streaming methods) ---- */

typedef struct rpc_stream_cbs {
    /* One client message, read strictly (rpc_decode_strict). err is
     * PARLEY_OK for a good one; MALFORMED with msg NULL when its bytes did
     * not decode as the method's input type; INVALID_UTF8 with msg set when
     * a string field held a NUL or was not UTF-8 (only its non-string
     * fields may be used, to answer it). The stream goes on either way; msg
     * is freed after. */
    void (*on_message)(rpc_call *c, const ProtobufCMessage *msg, parley_err err,
                       void *ud);
    /* The client finished sending. NULL: finish with OK once the queue
     * drains. */
    void (*on_half_close)(rpc_call *c, void *ud);
    /* The send queue fell to rpc_stream_low_water frames or fewer. */
    void (*on_drain)(rpc_call *c, void *ud);
    /* The call is over (finished, cancelled, client gone); called once. */
    void (*on_close)(rpc_call *c, void *ud);
} rpc_stream_cbs;

/* Set by a streaming handler during its dispatch. */
void rpc_stream_set_callbacks(rpc_call *c, const rpc_stream_cbs *cbs, void *ud);
/* Queues bytes (one encoded output message; the slice is ref'd, not
 * copied). 0 on success; -1 if the call is over, or if the queue is full,
 * in which case the call is cancelled with RESOURCE_EXHAUSTED. */
int rpc_stream_send(rpc_call *c, grpc_slice bytes);
/* Encodes msg into a fresh slice and queues it. */
int rpc_stream_send_msg(rpc_call *c, const ProtobufCMessage *msg);
size_t rpc_stream_queued(const rpc_call *c);
/* How many more frames the queue takes before the call is cut. */
size_t rpc_stream_room(const rpc_call *c);
size_t rpc_stream_low_water(const rpc_call *c);
/* Lets c queue factor (>= 1) times the server's max_queue frames before it
 * is cut: for a stream that carries many subscribers' frames. */
void rpc_stream_scale_queue(rpc_call *c, unsigned factor);
/* Merges frames[0..n) (n >= 2, the oldest queued) into one encoded
 * message holding them all, in order; the format is the caller's (parley:
 * ServerFrame{batch}). */
typedef grpc_slice (*rpc_merge_fn)(const grpc_slice *frames, size_t n);
/* With merge set, each send takes every frame queued behind it (up to
 * RPC_MERGE_MAX_FRAMES and RPC_MERGE_MAX_BYTES) as one message, so a burst
 * costs one grpc send instead of one per frame; NULL sends frame by frame
 * (the default). The queue bound still counts frames. */
void rpc_stream_set_merge(rpc_call *c, rpc_merge_fn merge);
#define RPC_MERGE_MAX_FRAMES 512
#define RPC_MERGE_MAX_BYTES (256 * 1024)
/* Ends the stream with a status once what is queued has been sent.
 * e = PARLEY_OK finishes with OK. */
void rpc_stream_finish(rpc_call *c, parley_err e, const char *detail);

#endif
