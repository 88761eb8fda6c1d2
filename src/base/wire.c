/* wire.c: key + length prefixes and a field walk over encoded protobuf
 * (see wire.h). */
#include "wire.h"

#include <assert.h>

size_t wire_varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static size_t put_varint(uint8_t *out, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

size_t wire_len_prefix_size(uint32_t field, size_t len)
{
    assert(field > 0 && field < (1u << 29));
    return wire_varint_size((uint64_t)field << 3 | WIRE_LEN) +
           wire_varint_size(len);
}

size_t wire_put_len_prefix(uint8_t *out, uint32_t field, size_t len)
{
    assert(field > 0 && field < (1u << 29));
    size_t n = put_varint(out, (uint64_t)field << 3 | WIRE_LEN);
    n += put_varint(out + n, len);
    assert(n <= WIRE_PREFIX_MAX);
    return n;
}

/* 0 and the value in *v, or -1 when the varint is cut or too long. */
static int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (*p >= end) return -1;
        uint8_t b = *(*p)++;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

int wire_next(const uint8_t **p, const uint8_t *end, wire_field *f)
{
    if (*p >= end) return 0;
    uint64_t key;
    if (get_varint(p, end, &key) != 0 || (key >> 3) == 0 ||
        (key >> 3) > 0x1fffffff)
        return -1;
    f->number = (uint32_t)(key >> 3);
    f->type = (int)(key & 7);
    f->varint = 0;
    f->data = NULL;
    f->len = 0;
    switch (f->type) {
    case WIRE_VARINT: return get_varint(p, end, &f->varint) == 0 ? 1 : -1;
    case WIRE_I64:
    case WIRE_I32: {
        size_t w = f->type == WIRE_I64 ? 8 : 4;
        if ((size_t)(end - *p) < w) return -1;
        f->data = *p;
        f->len = w;
        *p += w;
        return 1;
    }
    case WIRE_LEN: {
        uint64_t len;
        if (get_varint(p, end, &len) != 0 || len > (uint64_t)(end - *p))
            return -1;
        f->data = *p;
        f->len = (size_t)len;
        *p += len;
        return 1;
    }
    default: return -1; /* groups (3, 4) and 6, 7 */
    }
}
