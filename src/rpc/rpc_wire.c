/* rpc_wire.c: protobuf messages to and from grpc byte buffers, and
 * metadata lookup (see rpc_wire.h). */
#include "rpc_wire.h"
#include "wire.h"

#include <assert.h>
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

ProtobufCMessage *rpc_decode_strict(const ProtobufCMessageDescriptor *d,
                                    grpc_byte_buffer *bb, parley_err *err)
{
    grpc_byte_buffer_reader r;
    *err = PARLEY_ERR_MALFORMED;
    if (!grpc_byte_buffer_reader_init(&r, bb)) return NULL;
    grpc_slice s = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    ProtobufCMessage *m =
        rpc_check_unpack(d, GRPC_SLICE_START_PTR(s), GRPC_SLICE_LENGTH(s), err);
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

grpc_slice rpc_wire_merge(const grpc_slice *frames, size_t n, uint32_t outer,
                          uint32_t inner)
{
    size_t body = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = GRPC_SLICE_LENGTH(frames[i]);
        body += wire_len_prefix_size(inner, len) + len;
    }
    grpc_slice out =
        grpc_slice_malloc(wire_len_prefix_size(outer, body) + body);
    uint8_t *p = GRPC_SLICE_START_PTR(out);
    p += wire_put_len_prefix(p, outer, body);
    for (size_t i = 0; i < n; i++) {
        size_t len = GRPC_SLICE_LENGTH(frames[i]);
        p += wire_put_len_prefix(p, inner, len);
        memcpy(p, GRPC_SLICE_START_PTR(frames[i]), len);
        p += len;
    }
    assert(p == GRPC_SLICE_END_PTR(out));
    return out;
}

uint32_t rpc_wire_field(const ProtobufCMessageDescriptor *d, const char *name)
{
    const ProtobufCFieldDescriptor *fd =
        protobuf_c_message_descriptor_get_field_by_name(d, name);
    assert(fd != NULL);
    return fd->id;
}
