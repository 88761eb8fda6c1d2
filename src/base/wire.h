/* wire.h: the few protobuf wire-format steps that protobuf-c does not
 * offer and that batches of already-encoded messages need: the key and
 * length in front of a length-delimited field (to wrap encoded frames into
 * a `repeated` field without decoding them again), and a walk over the
 * fields of an encoded message (to take such frames out again, each as the
 * bytes it was sent as). Field numbers come from the caller (looked up in
 * the generated descriptors), so nothing here knows a message type. */
#ifndef PARLEY_WIRE_H
#define PARLEY_WIRE_H

#include <stddef.h>
#include <stdint.h>

/* The longest key + length prefix: a 5-byte key and a 10-byte varint. */
#define WIRE_PREFIX_MAX 15

enum { WIRE_VARINT = 0, WIRE_I64 = 1, WIRE_LEN = 2, WIRE_I32 = 5 };

/* Bytes the varint encoding of v takes (1..10). */
size_t wire_varint_size(uint64_t v);
/* Bytes of the key of length-delimited field `field` plus the varint len. */
size_t wire_len_prefix_size(uint32_t field, size_t len);
/* Writes that key and length at out (room for WIRE_PREFIX_MAX bytes);
 * returns how many bytes it wrote. The payload of len bytes follows. */
size_t wire_put_len_prefix(uint8_t *out, uint32_t field, size_t len);

/* One field of an encoded message. */
typedef struct wire_field {
    uint32_t number;
    int type;            /* WIRE_VARINT, WIRE_I64, WIRE_LEN or WIRE_I32 */
    uint64_t varint;     /* the value of a WIRE_VARINT field */
    const uint8_t *data; /* the payload of a WIRE_LEN field */
    size_t len;
} wire_field;

/* Reads the field at *p (before end) into f and moves *p past it. 1 when a
 * field was read, 0 at end, -1 when the bytes are not a well-formed field
 * (a truncated varint or payload, groups, unknown wire types, field 0). */
int wire_next(const uint8_t **p, const uint8_t *end, wire_field *f);

#endif
