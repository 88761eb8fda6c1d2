/* test_wire.c: CUnit tests of base/wire.c: length prefixes byte for byte
 * (known encodings), a walk over every wire type, and the refusal of cut
 * or malformed input. The batch framing built on it is checked against
 * protobuf-c's own decoding in tests/server and tests/gateway. */
#include <CUnit/Basic.h>
#include <stdint.h>
#include <string.h>

#include "wire.h"

static void test_prefix_bytes(void)
{
    uint8_t b[WIRE_PREFIX_MAX];
    CU_ASSERT_EQUAL(wire_put_len_prefix(b, 1, 3), 2);
    CU_ASSERT_EQUAL(b[0], 0x0a);
    CU_ASSERT_EQUAL(b[1], 0x03);
    CU_ASSERT_EQUAL(wire_len_prefix_size(1, 3), 2);
    /* field 9, 300 bytes: key 0x4a, varint 300 = ac 02 */
    CU_ASSERT_EQUAL(wire_put_len_prefix(b, 9, 300), 3);
    CU_ASSERT_EQUAL(b[0], 0x4a);
    CU_ASSERT_EQUAL(b[1], 0xac);
    CU_ASSERT_EQUAL(b[2], 0x02);
    /* field 16 needs a two-byte key: (16 << 3 | 2) = 130 = 82 01 */
    CU_ASSERT_EQUAL(wire_put_len_prefix(b, 16, 0), 3);
    CU_ASSERT_EQUAL(b[0], 0x82);
    CU_ASSERT_EQUAL(b[1], 0x01);
    CU_ASSERT_EQUAL(b[2], 0x00);
    CU_ASSERT_EQUAL(wire_varint_size(0), 1);
    CU_ASSERT_EQUAL(wire_varint_size(127), 1);
    CU_ASSERT_EQUAL(wire_varint_size(128), 2);
    CU_ASSERT_EQUAL(wire_varint_size(UINT64_MAX), 10);
    CU_ASSERT_EQUAL(
        wire_len_prefix_size(0x1fffffff, SIZE_MAX) <= WIRE_PREFIX_MAX, 1);
}

static void test_walk(void)
{
    /* field 1 varint 150; field 2 "hi"; field 3 fixed64; field 4 fixed32 */
    uint8_t buf[64];
    size_t n = 0;
    buf[n++] = 0x08;
    buf[n++] = 0x96;
    buf[n++] = 0x01;
    n += wire_put_len_prefix(buf + n, 2, 2);
    buf[n++] = 'h';
    buf[n++] = 'i';
    buf[n++] = 0x19; /* field 3, I64 */
    for (int i = 0; i < 8; i++) buf[n++] = (uint8_t)i;
    buf[n++] = 0x25; /* field 4, I32 */
    for (int i = 0; i < 4; i++) buf[n++] = 0xff;
    const uint8_t *p = buf, *end = buf + n;
    wire_field f;
    CU_ASSERT_EQUAL(wire_next(&p, end, &f), 1);
    CU_ASSERT_EQUAL(f.number, 1);
    CU_ASSERT_EQUAL(f.type, WIRE_VARINT);
    CU_ASSERT_EQUAL(f.varint, 150);
    CU_ASSERT_EQUAL(wire_next(&p, end, &f), 1);
    CU_ASSERT_EQUAL(f.number, 2);
    CU_ASSERT_EQUAL(f.type, WIRE_LEN);
    CU_ASSERT_EQUAL(f.len, 2);
    CU_ASSERT_EQUAL(memcmp(f.data, "hi", 2), 0);
    CU_ASSERT_EQUAL(wire_next(&p, end, &f), 1);
    CU_ASSERT_EQUAL(f.number, 3);
    CU_ASSERT_EQUAL(f.len, 8);
    CU_ASSERT_EQUAL(f.data[7], 7);
    CU_ASSERT_EQUAL(wire_next(&p, end, &f), 1);
    CU_ASSERT_EQUAL(f.number, 4);
    CU_ASSERT_EQUAL(f.type, WIRE_I32);
    CU_ASSERT_EQUAL(wire_next(&p, end, &f), 0);
    CU_ASSERT_PTR_EQUAL(p, end);
}

static void test_malformed(void)
{
    wire_field f;
    const uint8_t cut_varint[] = {0x08, 0x96};
    const uint8_t *p = cut_varint;
    CU_ASSERT_EQUAL(wire_next(&p, cut_varint + 2, &f), -1);
    const uint8_t cut_len[] = {0x12, 0x05, 'a', 'b'};
    p = cut_len;
    CU_ASSERT_EQUAL(wire_next(&p, cut_len + 4, &f), -1);
    const uint8_t group[] = {0x0b};
    p = group;
    CU_ASSERT_EQUAL(wire_next(&p, group + 1, &f), -1);
    const uint8_t field0[] = {0x02, 0x00};
    p = field0;
    CU_ASSERT_EQUAL(wire_next(&p, field0 + 2, &f), -1);
    const uint8_t cut_i64[] = {0x19, 1, 2, 3};
    p = cut_i64;
    CU_ASSERT_EQUAL(wire_next(&p, cut_i64 + 4, &f), -1);
    uint8_t long_varint[12];
    memset(long_varint, 0xff, sizeof long_varint);
    long_varint[0] = 0x08;
    p = long_varint;
    CU_ASSERT_EQUAL(wire_next(&p, long_varint + sizeof long_varint, &f), -1);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("wire", NULL, NULL);
    CU_add_test(s, "prefix bytes", test_prefix_bytes);
    CU_add_test(s, "walk over every wire type", test_walk);
    CU_add_test(s, "malformed input", test_malformed);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
