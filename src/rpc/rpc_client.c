/* rpc_client.c: parley's gRPC client calls on the grpc C core (see
 * rpc_client.h). Owns the unary call batch and its cleanup, the mapping of a
 * finished call to a parley_err, and the byte-buffer helpers of the client
 * side; encoding and decoding themselves are rpc_wire.c's, shared with the
 * server. */
#include "rpc_client.h"

#include <stdio.h>
#include <string.h>
#include <grpc/byte_buffer.h>

void rpc_client_auth_md(grpc_metadata *md, const char *token)
{
    size_t n = strlen(token);
    grpc_slice v = grpc_slice_malloc(7 + n);
    memcpy(GRPC_SLICE_START_PTR(v), "Bearer ", 7);
    memcpy(GRPC_SLICE_START_PTR(v) + 7, token, n);
    md->key = grpc_slice_from_static_string("authorization");
    md->value = v;
}

grpc_byte_buffer *rpc_client_pack(const ProtobufCMessage *msg)
{
    grpc_slice s = rpc_encode(msg);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    return bb;
}

grpc_byte_buffer *rpc_client_pack_bytes(const void *p, size_t n)
{
    grpc_slice s = grpc_slice_from_copied_buffer(p, n);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    return bb;
}

void rpc_client_slice_str(grpc_slice s, char *buf, size_t buflen)
{
    if (buflen == 0) return;
    size_t n = GRPC_SLICE_LENGTH(s);
    if (n >= buflen) n = buflen - 1;
    memcpy(buf, GRPC_SLICE_START_PTR(s), n);
    buf[n] = '\0';
}

parley_err rpc_client_status_error(grpc_status_code status,
                                   const grpc_metadata_array *trail,
                                   int *unavailable)
{
    char name[64];
    *unavailable = 0;
    if (rpc_metadata_get(trail, "parley-error-code", name, sizeof name) >= 0)
        return parley_err_from_name(name);
    switch (status) {
    case GRPC_STATUS_OK: return PARLEY_OK;
    case GRPC_STATUS_UNAUTHENTICATED: return PARLEY_ERR_UNAUTHENTICATED;
    case GRPC_STATUS_PERMISSION_DENIED: return PARLEY_ERR_PERMISSION_DENIED;
    case GRPC_STATUS_INVALID_ARGUMENT: return PARLEY_ERR_MALFORMED;
    case GRPC_STATUS_RESOURCE_EXHAUSTED: return PARLEY_ERR_RESOURCE_EXHAUSTED;
    case GRPC_STATUS_UNAVAILABLE:
    case GRPC_STATUS_DEADLINE_EXCEEDED:
    case GRPC_STATUS_CANCELLED: *unavailable = 1; return PARLEY_ERR_INTERNAL;
    default: return PARLEY_ERR_INTERNAL;
    }
}

/* Takes send (the encoded request) in every case. */
static parley_err unary_start(rpc_client_unary *u, grpc_channel *ch,
                              grpc_completion_queue *cq, const char *path,
                              const char *bearer_token, grpc_byte_buffer *send,
                              gpr_timespec deadline, void *tag)
{
    memset(u, 0, sizeof *u);
    grpc_metadata_array_init(&u->init_md);
    grpc_metadata_array_init(&u->trail_md);
    u->details = grpc_empty_slice();
    u->send_bb = send;
    u->call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                                       grpc_slice_from_static_string(path),
                                       NULL, deadline, NULL);
    if (bearer_token) {
        rpc_client_auth_md(&u->md, bearer_token);
        u->has_md = 1;
    }
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = u->has_md ? 1 : 0;
    ops[0].data.send_initial_metadata.metadata = u->has_md ? &u->md : NULL;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = u->send_bb;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &u->init_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &u->recv_bb;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &u->trail_md;
    ops[5].data.recv_status_on_client.status = &u->status;
    ops[5].data.recv_status_on_client.status_details = &u->details;
    if (!u->call || !u->send_bb ||
        grpc_call_start_batch(u->call, ops, 6, tag, NULL) != GRPC_CALL_OK) {
        rpc_client_unary_free(u);
        return PARLEY_ERR_INTERNAL;
    }
    return PARLEY_OK;
}

parley_err rpc_client_unary_start(rpc_client_unary *u, grpc_channel *ch,
                                  grpc_completion_queue *cq, const char *path,
                                  const char *bearer_token,
                                  const ProtobufCMessage *req,
                                  gpr_timespec deadline, void *tag)
{
    return unary_start(u, ch, cq, path, bearer_token, rpc_client_pack(req),
                       deadline, tag);
}

parley_err rpc_client_unary_start_bytes(rpc_client_unary *u, grpc_channel *ch,
                                        grpc_completion_queue *cq,
                                        const char *path,
                                        const char *bearer_token,
                                        const void *req, size_t req_len,
                                        gpr_timespec deadline, void *tag)
{
    return unary_start(u, ch, cq, path, bearer_token,
                       rpc_client_pack_bytes(req, req_len), deadline, tag);
}

parley_err rpc_client_unary_finish(rpc_client_unary *u, int ok,
                                   const ProtobufCMessageDescriptor *resp_desc,
                                   ProtobufCMessage **resp_out, char *detail,
                                   size_t detail_len, int *unavailable)
{
    if (resp_out) *resp_out = NULL;
    if (!ok) {
        *unavailable = 1;
        snprintf(detail, detail_len, "upstream call failed");
        return PARLEY_ERR_INTERNAL;
    }
    parley_err e =
        rpc_client_status_error(u->status, &u->trail_md, unavailable);
    rpc_client_slice_str(u->details, detail, detail_len);
    if (e != PARLEY_OK || !resp_desc) return e;
    ProtobufCMessage *m = u->recv_bb ? rpc_decode(resp_desc, u->recv_bb) : NULL;
    if (!m) {
        snprintf(detail, detail_len, "bad answer from the core");
        return PARLEY_ERR_INTERNAL;
    }
    if (resp_out)
        *resp_out = m;
    else
        protobuf_c_message_free_unpacked(m, NULL);
    return PARLEY_OK;
}

void rpc_client_unary_free(rpc_client_unary *u)
{
    if (u->call) grpc_call_unref(u->call);
    if (u->send_bb) grpc_byte_buffer_destroy(u->send_bb);
    if (u->recv_bb) grpc_byte_buffer_destroy(u->recv_bb);
    if (u->has_md) grpc_slice_unref(u->md.value);
    grpc_slice_unref(u->details);
    grpc_metadata_array_destroy(&u->init_md);
    grpc_metadata_array_destroy(&u->trail_md);
    memset(u, 0, sizeof *u);
}
