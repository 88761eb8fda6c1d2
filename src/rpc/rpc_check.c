/* rpc_check.c: the strict wire walk (see rpc_check.h). Reads the protobuf
 * encoding directly: each field is a varint key (field number << 3 | wire
 * type) and a value whose extent the wire type gives; only length-delimited
 * values (wire type 2) can hold a string or a nested message, and the
 * descriptor says which. Packed repeated scalars are length-delimited too
 * and are skipped whole. */
#include "rpc_check.h"

#include <assert.h>
#include <string.h>

#include "rules.h"

enum {
    WIRE_VARINT = 0,
    WIRE_FIXED64 = 1,
    WIRE_LEN = 2,
    WIRE_START_GROUP = 3,
    WIRE_END_GROUP = 4,
    WIRE_FIXED32 = 5
};

/* A varint at p[*i..len) into *v; 0 if truncated or over 10 bytes. */
static int read_varint(const uint8_t *p, size_t len, size_t *i, uint64_t *v)
{
    uint64_t r = 0;
    for (unsigned shift = 0; shift < 70 && *i < len; shift += 7) {
        uint8_t b = p[(*i)++];
        r |= (uint64_t)(b & 0x7f) << (shift < 64 ? shift : 63);
        if (!(b & 0x80)) {
            *v = r;
            return 1;
        }
    }
    return 0;
}

static parley_err check(const ProtobufCMessageDescriptor *d, const uint8_t *p,
                        size_t len, int depth)
{
    size_t i = 0;
    if (depth > RPC_CHECK_MAX_DEPTH) return PARLEY_ERR_MALFORMED;
    while (i < len) {
        uint64_t key, n;
        if (!read_varint(p, len, &i, &key)) return PARLEY_ERR_MALFORMED;
        uint64_t number = key >> 3;
        if (number == 0 || number > 536870911u) return PARLEY_ERR_MALFORMED;
        switch ((int)(key & 7)) {
        case WIRE_VARINT:
            if (!read_varint(p, len, &i, &n)) return PARLEY_ERR_MALFORMED;
            break;
        case WIRE_FIXED64:
            if (len - i < 8) return PARLEY_ERR_MALFORMED;
            i += 8;
            break;
        case WIRE_FIXED32:
            if (len - i < 4) return PARLEY_ERR_MALFORMED;
            i += 4;
            break;
        case WIRE_LEN: {
            if (!read_varint(p, len, &i, &n) || n > len - i)
                return PARLEY_ERR_MALFORMED;
            const uint8_t *v = p + i;
            i += (size_t)n;
            const ProtobufCFieldDescriptor *f =
                d ? protobuf_c_message_descriptor_get_field(d, (unsigned)number)
                  : NULL;
            if (f == NULL) break; /* unknown field: kept opaque */
            if (f->type == PROTOBUF_C_TYPE_STRING) {
                if (!rules_utf8_valid((const char *)v, (size_t)n))
                    return PARLEY_ERR_INVALID_UTF8;
            } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
                parley_err e = check(f->descriptor, v, (size_t)n, depth + 1);
                if (e != PARLEY_OK) return e;
            }
            break;
        }
        default: /* groups are not proto3; 6 and 7 do not exist */
            return PARLEY_ERR_MALFORMED;
        }
        assert(i <= len);
    }
    return PARLEY_OK;
}

parley_err rpc_check_message(const ProtobufCMessageDescriptor *d,
                             const uint8_t *p, size_t len)
{
    if (len > 0 && p == NULL) return PARLEY_ERR_MALFORMED;
    return check(d, p, len, 0);
}

ProtobufCMessage *rpc_check_unpack(const ProtobufCMessageDescriptor *d,
                                   const uint8_t *p, size_t len,
                                   parley_err *err)
{
    parley_err e = rpc_check_message(d, p, len);
    if (e == PARLEY_ERR_MALFORMED) {
        *err = e;
        return NULL;
    }
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, len, p);
    *err = m ? e : PARLEY_ERR_MALFORMED;
    return m;
}
