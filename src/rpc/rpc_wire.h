/* rpc_wire.h: what the server (rpc.h) and the client (rpc_client.h) sides
 * of parley's gRPC share: protobuf-c messages to and from grpc slices and
 * byte buffers, and reading request / trailing metadata. */
#ifndef PARLEY_RPC_WIRE_H
#define PARLEY_RPC_WIRE_H

#include <stddef.h>
#include <grpc/grpc.h>
#include <grpc/slice.h>
#include <protobuf-c/protobuf-c.h>
#include "rpc_check.h"

/* Encodes any message into a new refcounted slice (caller unrefs). */
grpc_slice rpc_encode(const ProtobufCMessage *msg);
/* Decodes a received byte buffer as d; NULL if it does not decode. The
 * caller frees with protobuf_c_message_free_unpacked. */
ProtobufCMessage *rpc_decode(const ProtobufCMessageDescriptor *d,
                             grpc_byte_buffer *bb);
/* Decodes a received byte buffer strictly (rpc_check_unpack): NULL with
 * *err MALFORMED when it does not decode; the message with *err
 * INVALID_UTF8 when a string field holds a NUL or is not UTF-8 (its strings
 * must not be used then). Every message a client sends is read this way. */
ProtobufCMessage *rpc_decode_strict(const ProtobufCMessageDescriptor *d,
                                    grpc_byte_buffer *bb, parley_err *err);
/* frames[0..n), each an encoded message M, as one encoded message holding
 * them in order as the repeated field `inner` of a message B that is field
 * `outer` of M (parley: ServerFrame{batch{frames}}, ClientFrame{batch{
 * frames}}). The frames' bytes are copied behind their key and length,
 * never decoded again. */
grpc_slice rpc_wire_merge(const grpc_slice *frames, size_t n, uint32_t outer,
                          uint32_t inner);
/* The number of field `name` of message d, from the generated tables (so
 * no field number is written twice); asserts that it exists. */
uint32_t rpc_wire_field(const ProtobufCMessageDescriptor *d, const char *name);
/* Copies the first value of metadata `key` (lower case) in a into buf as a
 * C string. Returns its length, or -1 if absent or longer than buflen-1. */
int rpc_metadata_get(const grpc_metadata_array *a, const char *key, char *buf,
                     size_t buflen);

#endif
