/* rpc_check.h: the strict reading of an encoded protobuf message, shared by
 * the core's gRPC server (rpc.c) and the gateway's binary WebSocket
 * subprotocol. protobuf-c unpacks a string field into a NUL-terminated C
 * string, so a string holding a NUL reaches C code cut short ("a\0b" reads
 * as "a") and every later check (length limits, duplicate ids, room names)
 * sees another value than the sender sent. The check here looks at the wire
 * bytes, before protobuf-c: it walks the message over its descriptor and
 * refuses a string field, at any depth, that holds a NUL or is not UTF-8.
 * After a message passed, strlen() of each of its strings is the length the
 * sender sent. Knows nothing of parley's messages: any descriptor will do. */
#ifndef PARLEY_RPC_CHECK_H
#define PARLEY_RPC_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>
#include "errors.h"

/* Messages nested deeper than this are refused as MALFORMED (a hostile
 * sender could otherwise recurse the walk, and protobuf-c's unpack, deep). */
#define RPC_CHECK_MAX_DEPTH 32

/* PARLEY_OK if p[0..len) is well-formed wire data whose string fields (of
 * d and of every nested message d knows, repeated ones included) are UTF-8
 * without NUL; PARLEY_ERR_INVALID_UTF8 if one is not; PARLEY_ERR_MALFORMED
 * if the bytes are not a protobuf message (bad varint, truncated field, bad
 * wire type, nesting over RPC_CHECK_MAX_DEPTH). Unknown fields are skipped
 * as the protobuf rules say, and so are their contents. */
parley_err rpc_check_message(const ProtobufCMessageDescriptor *d,
                             const uint8_t *p, size_t len);

/* rpc_check_message and protobuf-c's unpack, with the verdict in *err.
 * NULL (and MALFORMED) when the bytes do not decode. When they decode but a
 * string is bad, *err is INVALID_UTF8 and the message is returned all the
 * same, so that the caller can answer it (its request id, say); none of its
 * strings may be used then. Free with protobuf_c_message_free_unpacked. */
ProtobufCMessage *rpc_check_unpack(const ProtobufCMessageDescriptor *d,
                                   const uint8_t *p, size_t len,
                                   parley_err *err);

#endif
