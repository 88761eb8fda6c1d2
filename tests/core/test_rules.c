/* test_rules.c: CUnit tests of the input rules (rules.c) and of the error
 * code table (errors.c), the latter checked against the generated
 * parley.v1.ErrorCode descriptor. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "errors.h"
#include "parley/v1/message.pb-c.h"
#include "rules.h"

#define U8(lit) rules_utf8_valid(lit, sizeof(lit) - 1)

static void test_utf8_valid(void)
{
    CU_ASSERT_TRUE(rules_utf8_valid("", 0));
    CU_ASSERT_TRUE(U8("hello"));
    CU_ASSERT_TRUE(U8("caf\xC3\xA9"));      /* U+00E9 */
    CU_ASSERT_TRUE(U8("\xC2\x80"));         /* U+0080, lowest 2-byte */
    CU_ASSERT_TRUE(U8("\xDF\xBF"));         /* U+07FF */
    CU_ASSERT_TRUE(U8("\xE0\xA0\x80"));     /* U+0800, lowest 3-byte */
    CU_ASSERT_TRUE(U8("\xED\x9F\xBF"));     /* U+D7FF, below surrogates */
    CU_ASSERT_TRUE(U8("\xEE\x80\x80"));     /* U+E000, above them */
    CU_ASSERT_TRUE(U8("\xEF\xBF\xBF"));     /* U+FFFF */
    CU_ASSERT_TRUE(U8("\xF0\x90\x80\x80")); /* U+10000 */
    CU_ASSERT_TRUE(U8("\xF0\x9F\x98\x80")); /* U+1F600 emoji */
    CU_ASSERT_TRUE(U8("\xF4\x8F\xBF\xBF")); /* U+10FFFF, the last */
}

static void test_utf8_invalid(void)
{
    /* overlongs */
    CU_ASSERT_FALSE(U8("\xC0\x80"));
    CU_ASSERT_FALSE(U8("\xC1\xBF"));
    CU_ASSERT_FALSE(U8("\xE0\x80\x80"));
    CU_ASSERT_FALSE(U8("\xE0\x9F\xBF"));
    CU_ASSERT_FALSE(U8("\xF0\x80\x80\x80"));
    CU_ASSERT_FALSE(U8("\xF0\x8F\xBF\xBF"));
    /* surrogates */
    CU_ASSERT_FALSE(U8("\xED\xA0\x80"));
    CU_ASSERT_FALSE(U8("\xED\xBF\xBF"));
    CU_ASSERT_FALSE(U8("\xED\xA0\xBD\xED\xB8\x80")); /* CESU-8 pair */
    /* above U+10FFFF */
    CU_ASSERT_FALSE(U8("\xF4\x90\x80\x80"));
    CU_ASSERT_FALSE(U8("\xF5\x80\x80\x80"));
    CU_ASSERT_FALSE(U8("\xF8\x88\x80\x80\x80"));
    CU_ASSERT_FALSE(U8("\xFF"));
    CU_ASSERT_FALSE(U8("\xFE"));
    /* truncated */
    CU_ASSERT_FALSE(U8("\xC3"));
    CU_ASSERT_FALSE(U8("ab\xE2\x82"));
    CU_ASSERT_FALSE(U8("\xF0\x9F\x98"));
    CU_ASSERT_FALSE(U8("\xF0\x9F\x98"
                       "a"));
    CU_ASSERT_FALSE(U8("\xE2"
                       "ab"));
    /* stray continuation */
    CU_ASSERT_FALSE(U8("\x80"));
    CU_ASSERT_FALSE(U8("a\xBF"
                       "b"));
    /* NUL */
    CU_ASSERT_FALSE(U8("a\0b"));
    CU_ASSERT_FALSE(U8("\0"));
    /* A valid prefix does not hide a bad tail, and length is honoured. */
    CU_ASSERT_FALSE(U8("caf\xC3\xA9\xC3"));
    CU_ASSERT_TRUE(rules_utf8_valid("caf\xC3\xA9\xC3", 5));
}

static void test_room(void)
{
    char name[RULES_ROOM_MAX + 2];

    CU_ASSERT_EQUAL(rules_room("general"), PARLEY_OK);
    CU_ASSERT_EQUAL(rules_room("a"), PARLEY_OK);
    CU_ASSERT_EQUAL(rules_room("Room_1.b-c"), PARLEY_OK);
    memset(name, 'x', RULES_ROOM_MAX);
    name[RULES_ROOM_MAX] = '\0';
    CU_ASSERT_EQUAL(rules_room(name), PARLEY_OK);
    name[RULES_ROOM_MAX] = 'x';
    name[RULES_ROOM_MAX + 1] = '\0';
    CU_ASSERT_EQUAL(rules_room(name), PARLEY_ERR_ROOM_INVALID);
    CU_ASSERT_EQUAL(rules_room(""), PARLEY_ERR_ROOM_INVALID);
    CU_ASSERT_EQUAL(rules_room(NULL), PARLEY_ERR_ROOM_INVALID);
    CU_ASSERT_EQUAL(rules_room("a b"), PARLEY_ERR_ROOM_INVALID);
    CU_ASSERT_EQUAL(rules_room("a/b"), PARLEY_ERR_ROOM_INVALID);
    CU_ASSERT_EQUAL(rules_room("a:b"), PARLEY_ERR_ROOM_INVALID);
    CU_ASSERT_EQUAL(rules_room("caf\xC3\xA9"), PARLEY_ERR_ROOM_INVALID);
    CU_ASSERT_EQUAL(rules_room("a\nb"), PARLEY_ERR_ROOM_INVALID);
    CU_ASSERT_EQUAL(rules_room("bad\xC3"), PARLEY_ERR_INVALID_UTF8);
}

static void test_client_msg_id(void)
{
    char id[RULES_CLIENT_MSG_ID_MAX + 2];

    CU_ASSERT_EQUAL(rules_client_msg_id("m-1"), PARLEY_OK);
    CU_ASSERT_EQUAL(rules_client_msg_id("550e8400-e29b-41d4-a716-446655440000"),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(rules_client_msg_id("!~{}#"), PARLEY_OK);
    memset(id, 'k', RULES_CLIENT_MSG_ID_MAX);
    id[RULES_CLIENT_MSG_ID_MAX] = '\0';
    CU_ASSERT_EQUAL(rules_client_msg_id(id), PARLEY_OK);
    id[RULES_CLIENT_MSG_ID_MAX] = 'k';
    id[RULES_CLIENT_MSG_ID_MAX + 1] = '\0';
    CU_ASSERT_EQUAL(rules_client_msg_id(id), PARLEY_ERR_CLIENT_MSG_ID_INVALID);
    CU_ASSERT_EQUAL(rules_client_msg_id(""), PARLEY_ERR_CLIENT_MSG_ID_INVALID);
    CU_ASSERT_EQUAL(rules_client_msg_id(NULL),
                    PARLEY_ERR_CLIENT_MSG_ID_INVALID);
    CU_ASSERT_EQUAL(rules_client_msg_id("a b"),
                    PARLEY_ERR_CLIENT_MSG_ID_INVALID);
    CU_ASSERT_EQUAL(rules_client_msg_id("a\tb"),
                    PARLEY_ERR_CLIENT_MSG_ID_INVALID);
    CU_ASSERT_EQUAL(rules_client_msg_id("a\x7f"),
                    PARLEY_ERR_CLIENT_MSG_ID_INVALID);
    CU_ASSERT_EQUAL(rules_client_msg_id("\xC3\xA9"),
                    PARLEY_ERR_CLIENT_MSG_ID_INVALID);
    CU_ASSERT_EQUAL(rules_client_msg_id("x\xFF"), PARLEY_ERR_INVALID_UTF8);
}

static void test_author(void)
{
    char big[RULES_AUTHOR_ID_MAX + 2];
    parley_author a = {"u1", "Ada", PARLEY_ROLE_PARTICIPANT};

    CU_ASSERT_EQUAL(rules_author(&a), PARLEY_OK);
    a.role = PARLEY_ROLE_ORGANIZER;
    CU_ASSERT_EQUAL(rules_author(&a), PARLEY_OK);
    a.role = 0;
    CU_ASSERT_EQUAL(rules_author(&a), PARLEY_ERR_AUTHOR_INVALID);
    a.role = 3;
    CU_ASSERT_EQUAL(rules_author(&a), PARLEY_ERR_AUTHOR_INVALID);
    a.role = PARLEY_ROLE_PARTICIPANT;

    a.display_name = "Jos\xC3\xA9 \xF0\x9F\x98\x80"; /* UTF-8 and spaces ok */
    CU_ASSERT_EQUAL(rules_author(&a), PARLEY_OK);
    a.display_name = "";
    CU_ASSERT_EQUAL(rules_author(&a), PARLEY_ERR_AUTHOR_INVALID);
    a.display_name = NULL;
    CU_ASSERT_EQUAL(rules_author(&a), PARLEY_ERR_AUTHOR_INVALID);
    a.display_name = "bell\x07";
    CU_ASSERT_EQUAL(rules_author(&a), PARLEY_ERR_AUTHOR_INVALID);
    a.display_name = "two\nlines";
    CU_ASSERT_EQUAL(rules_author(&a), PARLEY_ERR_AUTHOR_INVALID);
    a.display_name = "c1\xC2\x85"; /* U+0085, a C1 control */
    CU_ASSERT_EQUAL(rules_author(&a), PARLEY_ERR_AUTHOR_INVALID);
    a.display_name = "bad\xC3";
    CU_ASSERT_EQUAL(rules_author(&a), PARLEY_ERR_AUTHOR_INVALID);
    memset(big, 'n', RULES_DISPLAY_NAME_MAX);
    big[RULES_DISPLAY_NAME_MAX] = '\0';
    a.display_name = big;
    CU_ASSERT_EQUAL(rules_author(&a), PARLEY_OK);
    big[RULES_DISPLAY_NAME_MAX] = 'n';
    big[RULES_DISPLAY_NAME_MAX + 1] = '\0';
    CU_ASSERT_EQUAL(rules_author(&a), PARLEY_ERR_AUTHOR_INVALID);
    a.display_name = "Ada";

    memset(big, 'i', RULES_AUTHOR_ID_MAX);
    big[RULES_AUTHOR_ID_MAX] = '\0';
    a.id = big;
    CU_ASSERT_EQUAL(rules_author(&a), PARLEY_OK);
    big[RULES_AUTHOR_ID_MAX] = 'i';
    big[RULES_AUTHOR_ID_MAX + 1] = '\0';
    CU_ASSERT_EQUAL(rules_author(&a), PARLEY_ERR_AUTHOR_INVALID);
    a.id = "";
    CU_ASSERT_EQUAL(rules_author(&a), PARLEY_ERR_AUTHOR_INVALID);
    a.id = NULL;
    CU_ASSERT_EQUAL(rules_author(&a), PARLEY_ERR_AUTHOR_INVALID);
    a.id = "tab\tid";
    CU_ASSERT_EQUAL(rules_author(&a), PARLEY_ERR_AUTHOR_INVALID);
    a.id = "\xED\xA0\x80";
    CU_ASSERT_EQUAL(rules_author(&a), PARLEY_ERR_AUTHOR_INVALID);
    a.id = "user@example.org";
    CU_ASSERT_EQUAL(rules_author(&a), PARLEY_OK);
    a.display_name = "Ann \xE2\x80\xAE" "nimda"; /* RLO in a name */
    CU_ASSERT_EQUAL(rules_author(&a), PARLEY_ERR_AUTHOR_INVALID);
    a.display_name = "Ann \xE2\x81\xA8" "x" "\xE2\x81\xA9"; /* even balanced */
    CU_ASSERT_EQUAL(rules_author(&a), PARLEY_ERR_AUTHOR_INVALID);
    CU_ASSERT_EQUAL(rules_author(NULL), PARLEY_ERR_AUTHOR_INVALID);
}

#define BODY(lit, max) rules_body(lit, sizeof(lit) - 1, max)

static void test_body(void)
{
    char buf[RULES_BODY_MAX_DEFAULT + 2];

    CU_ASSERT_EQUAL(BODY("hi", 16), PARLEY_OK);
    CU_ASSERT_EQUAL(BODY(" x ", 16), PARLEY_OK);
    CU_ASSERT_EQUAL(BODY("line\nline", 16), PARLEY_OK);
    CU_ASSERT_EQUAL(rules_body("", 0, 16), PARLEY_ERR_BODY_EMPTY);
    CU_ASSERT_EQUAL(rules_body(NULL, 0, 16), PARLEY_ERR_BODY_EMPTY);
    CU_ASSERT_EQUAL(BODY(" \t\r\n", 16), PARLEY_ERR_BODY_EMPTY);
    /* NBSP, ideographic space, em space, zero width space, BOM */
    CU_ASSERT_EQUAL(
        BODY("\xC2\xA0\xE3\x80\x80\xE2\x80\x83\xE2\x80\x8B\xEF\xBB\xBF", 64),
        PARLEY_ERR_BODY_EMPTY);
    CU_ASSERT_EQUAL(BODY("\xC2\xA0"
                         "a",
                         16),
                    PARLEY_OK);

    /* exact limit, limit + 1 */
    CU_ASSERT_EQUAL(BODY("0123456789abcdef", 16), PARLEY_OK);
    CU_ASSERT_EQUAL(BODY("0123456789abcdefg", 16), PARLEY_ERR_BODY_TOO_LONG);
    /* The limit counts bytes, not characters: 8 x U+00E9 = 16 bytes. */
    CU_ASSERT_EQUAL(
        BODY("\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9",
             16),
        PARLEY_OK);
    CU_ASSERT_EQUAL(
        BODY("\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9",
             15),
        PARLEY_ERR_BODY_TOO_LONG);
    /* 0 means the default */
    memset(buf, 'b', sizeof buf);
    CU_ASSERT_EQUAL(rules_body(buf, RULES_BODY_MAX_DEFAULT, 0), PARLEY_OK);
    CU_ASSERT_EQUAL(rules_body(buf, RULES_BODY_MAX_DEFAULT + 1, 0),
                    PARLEY_ERR_BODY_TOO_LONG);

    CU_ASSERT_EQUAL(BODY("a\0b", 16), PARLEY_ERR_INVALID_UTF8);
    CU_ASSERT_EQUAL(BODY("a\xC0\x80", 16), PARLEY_ERR_INVALID_UTF8);
    CU_ASSERT_EQUAL(BODY("a\xED\xA0\x80", 16), PARLEY_ERR_INVALID_UTF8);
    CU_ASSERT_EQUAL(BODY("a\xF4\x90\x80\x80", 16), PARLEY_ERR_INVALID_UTF8);
    CU_ASSERT_EQUAL(BODY("a\xE2\x82", 16), PARLEY_ERR_INVALID_UTF8);
    CU_ASSERT_EQUAL(BODY(" \xFF", 16), PARLEY_ERR_INVALID_UTF8);

    /* control characters: only TAB, LF, CR */
    CU_ASSERT_EQUAL(BODY("a\tb\r\nc", 16), PARLEY_OK);
    CU_ASSERT_EQUAL(BODY("a\x1b[31mred", 16), PARLEY_ERR_INVALID_UTF8);
    CU_ASSERT_EQUAL(BODY("a\x07", 16), PARLEY_ERR_INVALID_UTF8);
    CU_ASSERT_EQUAL(BODY("a\v", 16), PARLEY_ERR_INVALID_UTF8);
    CU_ASSERT_EQUAL(BODY("a\x7f", 16), PARLEY_ERR_INVALID_UTF8);
    CU_ASSERT_EQUAL(BODY("a\xC2\x9B", 16), PARLEY_ERR_INVALID_UTF8); /* C1 CSI */
    /* bidi: balanced runs pass, anything left open or closed twice not */
    CU_ASSERT_EQUAL(BODY("a \xE2\x80\xAE" "olleh" "\xE2\x80\xAC b", 32), PARLEY_OK);
    CU_ASSERT_EQUAL(BODY("\xE2\x81\xA7" "x" "\xE2\x81\xA9", 32), PARLEY_OK);
    CU_ASSERT_EQUAL(BODY("a \xE2\x80\xAE" "gnp.exe", 32), PARLEY_ERR_INVALID_UTF8);
    CU_ASSERT_EQUAL(BODY("a \xE2\x80\xAC", 32), PARLEY_ERR_INVALID_UTF8);
    CU_ASSERT_EQUAL(BODY("a \xE2\x81\xA6", 32), PARLEY_ERR_INVALID_UTF8);
    CU_ASSERT_EQUAL(BODY("\xE2\x81\xA6" "a" "\xE2\x80\xAC", 32), PARLEY_ERR_INVALID_UTF8);
    CU_ASSERT_EQUAL(BODY("a\xE2\x80\x8F" "b", 32), PARLEY_OK); /* RLM mark */
}

static void test_may_modify(void)
{
    parley_author ada = {"ada", "Ada", PARLEY_ROLE_PARTICIPANT};
    parley_author org = {"org", "Org", PARLEY_ROLE_ORGANIZER};
    parley_author bad = {"", "Nobody", PARLEY_ROLE_PARTICIPANT};

    CU_ASSERT_EQUAL(rules_may_modify(&ada, "ada"), PARLEY_OK);
    CU_ASSERT_EQUAL(rules_may_modify(&ada, "bob"),
                    PARLEY_ERR_PERMISSION_DENIED);
    CU_ASSERT_EQUAL(rules_may_modify(&ada, "ad"), PARLEY_ERR_PERMISSION_DENIED);
    CU_ASSERT_EQUAL(rules_may_modify(&ada, "adam"),
                    PARLEY_ERR_PERMISSION_DENIED);
    CU_ASSERT_EQUAL(rules_may_modify(&org, "bob"), PARLEY_OK);
    CU_ASSERT_EQUAL(rules_may_modify(&org, "org"), PARLEY_OK);
    CU_ASSERT_EQUAL(rules_may_modify(&bad, ""), PARLEY_ERR_AUTHOR_INVALID);
    CU_ASSERT_EQUAL(rules_may_modify(NULL, "ada"), PARLEY_ERR_AUTHOR_INVALID);
}

/* Every wire code's name is the proto enum value's name without the
 * ERROR_CODE_ prefix, and the statuses are those of the mapping table. */
static void test_error_table(void)
{
    static const struct {
        parley_err e;
        int grpc, http;
    } want[] = {
        {PARLEY_ERR_INTERNAL, 13, 500},
        {PARLEY_ERR_MALFORMED, 3, 400},
        {PARLEY_ERR_ROOM_INVALID, 3, 400},
        {PARLEY_ERR_ROOM_NOT_FOUND, 5, 404},
        {PARLEY_ERR_BODY_EMPTY, 3, 400},
        {PARLEY_ERR_BODY_TOO_LONG, 3, 400},
        {PARLEY_ERR_INVALID_UTF8, 3, 400},
        {PARLEY_ERR_CLIENT_MSG_ID_INVALID, 3, 400},
        {PARLEY_ERR_MESSAGE_NOT_FOUND, 5, 404},
        {PARLEY_ERR_MESSAGE_DELETED, 9, 409},
        {PARLEY_ERR_PERMISSION_DENIED, 7, 403},
        {PARLEY_ERR_UNAUTHENTICATED, 16, 401},
        {PARLEY_ERR_RESOURCE_EXHAUSTED, 8, 429},
        {PARLEY_ERR_BAD_CURSOR, 3, 400},
        {PARLEY_ERR_SUBSCRIPTION_STATE, 9, 409},
        {PARLEY_ERR_AUTHOR_INVALID, 3, 400},
        {PARLEY_ERR_TOKEN_EXPIRED, 16, 401},
        {PARLEY_ERR_SCHEMA_TOO_NEW, 9, 500},
        {PARLEY_ERR_IO, 13, 500},
    };
    const ProtobufCEnumDescriptor *d = &parley__v1__error_code__descriptor;
    unsigned wire = 0;

    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        parley_err e = want[i].e;
        CU_ASSERT_EQUAL(parley_err_grpc_status(e), want[i].grpc);
        CU_ASSERT_EQUAL(parley_err_http_status(e), want[i].http);
        CU_ASSERT_PTR_NOT_NULL(parley_err_text(e));
        CU_ASSERT_TRUE(strlen(parley_err_text(e)) > 0);
        CU_ASSERT_STRING_NOT_EQUAL(parley_err_name(e), "UNKNOWN");
        const ProtobufCEnumValue *v =
            protobuf_c_enum_descriptor_get_value(d, e);
        if (e < 100) {
            char proto_name[64];
            wire++;
            CU_ASSERT_PTR_NOT_NULL_FATAL(v);
            snprintf(proto_name, sizeof proto_name, "ERROR_CODE_%s",
                     parley_err_name(e));
            CU_ASSERT_STRING_EQUAL(v->name, proto_name);
        } else {
            CU_ASSERT_PTR_NULL(v);
        }
        for (size_t j = 0; j < i; j++)
            CU_ASSERT_STRING_NOT_EQUAL(parley_err_name(e),
                                       parley_err_name(want[j].e));
    }
    /* The table covers every wire code but UNSPECIFIED. */
    CU_ASSERT_EQUAL(wire + 1, d->n_values);
    CU_ASSERT_STRING_EQUAL(parley_err_name(PARLEY_OK), "OK");
    CU_ASSERT_STRING_EQUAL(parley_err_name((parley_err)77), "UNKNOWN");
    CU_ASSERT_EQUAL(parley_err_grpc_status((parley_err)-1), 13);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite s = CU_add_suite("rules", NULL, NULL);
    if (s == NULL ||
        !CU_add_test(s, "utf8 accepts well-formed text", test_utf8_valid) ||
        !CU_add_test(s,
                     "utf8 refuses overlong, surrogate, >U+10FFFF, "
                     "truncated, NUL",
                     test_utf8_invalid) ||
        !CU_add_test(s, "room names", test_room) ||
        !CU_add_test(s, "client message ids", test_client_msg_id) ||
        !CU_add_test(s, "authors", test_author) ||
        !CU_add_test(s, "bodies", test_body) ||
        !CU_add_test(s, "may modify", test_may_modify) ||
        !CU_add_test(s, "error table matches proto", test_error_table)) {
        CU_cleanup_registry();
        return 2;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_ErrorCode rc = CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures();
    unsigned suites_failed = CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    return (rc != CUE_SUCCESS || failures || suites_failed) ? 1 : 0;
}
