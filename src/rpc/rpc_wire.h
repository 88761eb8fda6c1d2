/* rpc_wire.h: what the server (rpc.h) and the client (rpc_client.h) sides
 * of parley's gRPC share: protobuf-c messages to and from grpc slices and
 * byte buffers, and reading request / trailing metadata. */
#ifndef PARLEY_RPC_WIRE_H
#define PARLEY_RPC_WIRE_H

#include <stddef.h>
#include <grpc/grpc.h>
#include <grpc/slice.h>
#include <protobuf-c/protobuf-c.h>

/* Encodes any message into a new refcounted slice (caller unrefs). */
grpc_slice rpc_encode(const ProtobufCMessage *msg);
/* Decodes a received byte buffer as d; NULL if it does not decode. The
 * caller frees with protobuf_c_message_free_unpacked. */
ProtobufCMessage *rpc_decode(const ProtobufCMessageDescriptor *d,
                             grpc_byte_buffer *bb);
/* Copies the first value of metadata `key` (lower case) in a into buf as a
 * C string. Returns its length, or -1 if absent or longer than buflen-1. */
int rpc_metadata_get(const grpc_metadata_array *a, const char *key, char *buf,
                     size_t buflen);

#endif
