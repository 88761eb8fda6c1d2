/* rpc_client.h: the client side of parley's gRPC calls on the grpc C core,
 * shared by the gateway (its upstream to parleyd) and the server tests. It
 * owns the one unary call batch (authorization metadata, send the request,
 * half-close, receive metadata, answer and status), the mapping of a
 * finished call's status and `parley-error-code` trailer to a parley_err, and
 * the message <-> byte-buffer helpers the streaming clients use as well.
 * It does not own completion queues or threads: the caller creates the call
 * on its queue and tells rpc_client_unary_finish when the tag completed. */
#ifndef PARLEY_RPC_CLIENT_H
#define PARLEY_RPC_CLIENT_H

#include <stddef.h>
#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>
#include "errors.h"
#include "rpc_wire.h"

typedef struct rpc_client_unary {
    grpc_call *call;
    grpc_metadata md; /* authorization, when has_md */
    int has_md;
    grpc_byte_buffer *send_bb, *recv_bb;
    grpc_metadata_array init_md, trail_md;
    grpc_status_code status;
    grpc_slice details;
} rpc_client_unary;

/* Creates the call of method `path` on ch, bound to cq, and starts its one
 * batch with `tag`; bearer_token NULL sends no authorization metadata. The
 * _bytes form sends bytes already encoded (tests send junk on purpose).
 * PARLEY_OK, or PARLEY_ERR_INTERNAL when grpc refused (nothing is left to
 * free then; rpc_client_unary_free is harmless). */
parley_err rpc_client_unary_start(rpc_client_unary *u, grpc_channel *ch,
                                  grpc_completion_queue *cq, const char *path,
                                  const char *bearer_token,
                                  const ProtobufCMessage *req,
                                  gpr_timespec deadline, void *tag);
parley_err rpc_client_unary_start_bytes(rpc_client_unary *u, grpc_channel *ch,
                                        grpc_completion_queue *cq,
                                        const char *path,
                                        const char *bearer_token,
                                        const void *req, size_t req_len,
                                        gpr_timespec deadline, void *tag);

/* After the tag completed with success `ok`: the call's parley error (see
 * rpc_client_status_error), its status details in detail, and, when the
 * status is OK and resp_desc is not NULL, the decoded answer in *resp_out
 * (caller frees with protobuf_c_message_free_unpacked). An OK call whose
 * answer is missing or does not decode is PARLEY_ERR_INTERNAL ("bad answer
 * from the core"); a batch that failed is PARLEY_ERR_INTERNAL with
 * *unavailable set. u->status and u->trail_md stay readable until free. */
parley_err rpc_client_unary_finish(rpc_client_unary *u, int ok,
                                   const ProtobufCMessageDescriptor *resp_desc,
                                   ProtobufCMessage **resp_out, char *detail,
                                   size_t detail_len, int *unavailable);

/* Releases the call and everything it holds (after the tag completed). */
void rpc_client_unary_free(rpc_client_unary *u);

/* ---- shared with streaming clients ---- */

/* `authorization: Bearer <token>`; the caller unrefs md->value. */
void rpc_client_auth_md(grpc_metadata *md, const char *token);
/* A new byte buffer holding msg encoded (caller destroys it). */
grpc_byte_buffer *rpc_client_pack(const ProtobufCMessage *msg);
/* The same for bytes already encoded (copied). */
grpc_byte_buffer *rpc_client_pack_bytes(const void *p, size_t n);
/* The parley error of a finished call: the server's parley-error-code
 * trailer, else the nearest code for the gRPC status; *unavailable is set
 * for UNAVAILABLE, DEADLINE_EXCEEDED and CANCELLED (the core was not
 * reached or did not answer). */
parley_err rpc_client_status_error(grpc_status_code status,
                                   const grpc_metadata_array *trail,
                                   int *unavailable);
/* Copies a slice (status details) into buf as a C string, cut to fit. */
void rpc_client_slice_str(grpc_slice s, char *buf, size_t buflen);

#endif
