/* rpc_wire.c: protobuf messages to and from grpc byte buffers, and
 * metadata lookup (see rpc_wire.h). */
#include "rpc_wire.h"

#include <string.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>

grpc_slice rpc_encode(const ProtobufCMessage *msg)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    grpc_slice s = grpc_slice_malloc(n);
    if (n) protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(s));
    return s;
}

ProtobufCMessage *rpc_decode(const ProtobufCMessageDescriptor *d,
                             grpc_byte_buffer *bb)
{
    grpc_byte_buffer_reader r;
    if (!grpc_byte_buffer_reader_init(&r, bb)) return NULL;
    grpc_slice s = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    ProtobufCMessage *m = protobuf_c_message_unpack(
        d, NULL, GRPC_SLICE_LENGTH(s), GRPC_SLICE_START_PTR(s));
    grpc_slice_unref(s);
    return m;
}

int rpc_metadata_get(const grpc_metadata_array *a, const char *key, char *buf,
                     size_t buflen)
{
    size_t klen = strlen(key);
    for (size_t i = 0; i < a->count; i++) {
        const grpc_metadata *m = &a->metadata[i];
        if (GRPC_SLICE_LENGTH(m->key) != klen ||
            memcmp(GRPC_SLICE_START_PTR(m->key), key, klen) != 0)
            continue;
        size_t vlen = GRPC_SLICE_LENGTH(m->value);
        if (vlen + 1 > buflen) return -1;
        memcpy(buf, GRPC_SLICE_START_PTR(m->value), vlen);
        buf[vlen] = 0;
        return (int)vlen;
    }
    return -1;
}
