/* test_rpc_check.c: CUnit tests of src/rpc/rpc_check.c, the strict wire
 * walk: a NUL or bad UTF-8 in a string field at any depth is refused, an
 * unknown field is skipped, broken encodings are MALFORMED, and a message
 * that passes unpacks to strings whose strlen is the sent length. */
#include <CUnit/Basic.h>
#include <string.h>

#include "rpc_check.h"
#include "parley/v1/history.pb-c.h"
#include "parley/v1/stream.pb-c.h"

static const ProtobufCMessageDescriptor *CF =
    &parley__v1__client_frame__descriptor;

/* A ClientFrame{request_id: 9, publish{room, client_msg_id, body}} built by
 * hand, so bodies can hold anything. Returns its length. */
static size_t frame(uint8_t *out, const char *room, size_t rl, const char *id,
                    size_t il, const char *body, size_t bl)
{
    uint8_t inner[512];
    size_t n = 0, m = 0;
    inner[n++] = 0x0a, inner[n++] = (uint8_t)rl;
    memcpy(inner + n, room, rl), n += rl;
    inner[n++] = 0x12, inner[n++] = (uint8_t)il;
    memcpy(inner + n, id, il), n += il;
    inner[n++] = 0x1a, inner[n++] = (uint8_t)bl;
    memcpy(inner + n, body, bl), n += bl;
    out[m++] = 0x08, out[m++] = 9; /* request_id = 9 */
    out[m++] = (uint8_t)(PARLEY__V1__CLIENT_FRAME__KIND_PUBLISH << 3 | 2);
    out[m++] = (uint8_t)n;
    memcpy(out + m, inner, n);
    return m + n;
}

static void test_clean_frame_passes(void)
{
    uint8_t b[600];
    size_t n = frame(b, "lobby", 5, "c1", 2, "h\xc3\xa9llo", 6);
    CU_ASSERT_EQUAL(rpc_check_message(CF, b, n), PARLEY_OK);
    parley_err e;
    Parley__V1__ClientFrame *f =
        (Parley__V1__ClientFrame *)rpc_check_unpack(CF, b, n, &e);
    CU_ASSERT_EQUAL(e, PARLEY_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(strlen(f->publish->body), 6);
    protobuf_c_message_free_unpacked(&f->base, NULL);
}

static void test_nul_refused_at_depth(void)
{
    uint8_t b[600];
    size_t n = frame(b, "lobby", 5, "c1", 2, "a\0b", 3);
    CU_ASSERT_EQUAL(rpc_check_message(CF, b, n), PARLEY_ERR_INVALID_UTF8);
    n = frame(b, "lob\0y", 5, "c1", 2, "ab", 2);
    CU_ASSERT_EQUAL(rpc_check_message(CF, b, n), PARLEY_ERR_INVALID_UTF8);
    n = frame(b, "lobby", 5, "same\0one", 8, "ab", 2);
    CU_ASSERT_EQUAL(rpc_check_message(CF, b, n), PARLEY_ERR_INVALID_UTF8);
    n = frame(b, "lobby", 5, "c1", 2, "\xc3\x28", 2); /* bad UTF-8 */
    CU_ASSERT_EQUAL(rpc_check_message(CF, b, n), PARLEY_ERR_INVALID_UTF8);
    /* the message still comes back, so the caller can answer request 9 */
    parley_err e;
    ProtobufCMessage *m = rpc_check_unpack(CF, b, n, &e);
    CU_ASSERT_EQUAL(e, PARLEY_ERR_INVALID_UTF8);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(((Parley__V1__ClientFrame *)m)->request_id, 9);
    protobuf_c_message_free_unpacked(m, NULL);
}

static void test_unknown_field_skipped(void)
{
    /* field 99 (unknown), length-delimited, holding a NUL: not ours */
    uint8_t b[] = {0x08, 1, 0x9a, 0x06, 3, 'a', 0, 'b'};
    CU_ASSERT_EQUAL(rpc_check_message(CF, b, sizeof b), PARLEY_OK);
    /* unknown varint, fixed32 and fixed64 fields */
    uint8_t c[] = {0x98, 0x06, 0x80, 0x01, 0x9d, 0x06, 1, 2, 3, 4,
                   0x99, 0x06, 1, 2, 3, 4, 5, 6, 7, 8};
    CU_ASSERT_EQUAL(rpc_check_message(CF, c, sizeof c), PARLEY_OK);
}

static void test_malformed(void)
{
    uint8_t trunc[] = {0x08};                  /* key, no value */
    uint8_t overrun[] = {0x9a, 0x06, 9, 'a'};  /* length past the end */
    uint8_t group[] = {0x0b, 0x0c};            /* wire type 3 */
    uint8_t field0[] = {0x02, 0x00};           /* field number 0 */
    uint8_t longv[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff,
                       0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    CU_ASSERT_EQUAL(rpc_check_message(CF, trunc, sizeof trunc), PARLEY_ERR_MALFORMED);
    CU_ASSERT_EQUAL(rpc_check_message(CF, overrun, sizeof overrun), PARLEY_ERR_MALFORMED);
    CU_ASSERT_EQUAL(rpc_check_message(CF, group, sizeof group), PARLEY_ERR_MALFORMED);
    CU_ASSERT_EQUAL(rpc_check_message(CF, field0, sizeof field0), PARLEY_ERR_MALFORMED);
    CU_ASSERT_EQUAL(rpc_check_message(CF, longv, sizeof longv), PARLEY_ERR_MALFORMED);
    CU_ASSERT_EQUAL(rpc_check_message(CF, NULL, 0), PARLEY_OK);
}

static void test_nested_message_walked(void)
{
    /* Message{author: Author{id: "i\0"}}: a NUL two levels down */
    const ProtobufCFieldDescriptor *fa =
        protobuf_c_message_descriptor_get_field_by_name(
            &parley__v1__message__descriptor, "author");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fa);
    uint8_t author[] = {0x0a, 2, 'i', 0};
    uint8_t msg[16];
    size_t n = 0;
    msg[n++] = (uint8_t)(fa->id << 3 | 2);
    msg[n++] = sizeof author;
    memcpy(msg + n, author, sizeof author);
    n += sizeof author;
    CU_ASSERT_EQUAL(rpc_check_message(&parley__v1__message__descriptor, msg, n),
                    PARLEY_ERR_INVALID_UTF8);
    author[3] = 'd';
    memcpy(msg + 2, author, sizeof author);
    CU_ASSERT_EQUAL(rpc_check_message(&parley__v1__message__descriptor, msg, n),
                    PARLEY_OK);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("rpc_check", NULL, NULL);
    CU_add_test(s, "clean frame passes", test_clean_frame_passes);
    CU_add_test(s, "NUL refused at any depth", test_nul_refused_at_depth);
    CU_add_test(s, "unknown fields skipped", test_unknown_field_skipped);
    CU_add_test(s, "malformed encodings", test_malformed);
    CU_add_test(s, "nested messages walked", test_nested_message_walked);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned f = CU_get_number_of_failures();
    CU_cleanup_registry();
    return f ? 1 : 0;
}
