/* test_gw_json.c: CUnit tests of the gateway's generic proto3-JSON codec on
 * the real parley.v1 types (ClientFrame, ServerFrame, ListMessagesResponse):
 * round trips through protobuf bytes, name styles, enums, 64-bit strings,
 * unknown fields, wrong types and invalid UTF-8. */
#include <CUnit/Basic.h>
#include <stdlib.h>
#include <string.h>

#include "gw_json.h"
#include "parley/v1/history.pb-c.h"
#include "parley/v1/stream.pb-c.h"

/* Decode JSON text as d, or NULL (and the error in *e). */
static ProtobufCMessage *dec(const ProtobufCMessageDescriptor *d,
                             const char *text, parley_err *e)
{
    ProtobufCMessage *m = NULL;
    char detail[200];
    *e = gw_json_decode(d, text, strlen(text), &m, detail, sizeof detail);
    return m;
}

/* Packs a and b and compares the bytes. */
static int same_wire(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
    size_t na = protobuf_c_message_get_packed_size(a);
    size_t nb = protobuf_c_message_get_packed_size(b);
    if (na != nb) return 0;
    unsigned char *ba = malloc(na + 1), *bb = malloc(nb + 1);
    protobuf_c_message_pack(a, ba);
    protobuf_c_message_pack(b, bb);
    int r = memcmp(ba, bb, na) == 0;
    free(ba);
    free(bb);
    return r;
}

static void test_field_names(void)
{
    char out[64];
    gw_json_field_name("client_msg_id", out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "clientMsgId");
    gw_json_field_name("room", out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "room");
    gw_json_field_name("resume_after_rev", out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "resumeAfterRev");
}

static void test_client_frame_publish(void)
{
    parley_err e;
    ProtobufCMessage *m =
        dec(&parley__v1__client_frame__descriptor,
            "{\"requestId\":\"18446744073709551615\",\"publish\":{\"room\":"
            "\"lobby\","
            "\"clientMsgId\":\"c1\",\"body\":\"h\\u00e9llo\"}}",
            &e);
    CU_ASSERT_EQUAL_FATAL(e, PARLEY_OK);
    Parley__V1__ClientFrame *cf = (Parley__V1__ClientFrame *)m;
    CU_ASSERT_EQUAL(cf->request_id, UINT64_MAX);
    CU_ASSERT_EQUAL_FATAL(cf->kind_case,
                          PARLEY__V1__CLIENT_FRAME__KIND_PUBLISH);
    CU_ASSERT_STRING_EQUAL(cf->publish->room, "lobby");
    CU_ASSERT_STRING_EQUAL(cf->publish->client_msg_id, "c1");
    CU_ASSERT_STRING_EQUAL(cf->publish->body, "h\xc3\xa9llo");

    /* encode back, decode again, compare wire bytes */
    size_t len;
    char *text = gw_json_encode(m, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(text, "\"requestId\":\"18446744073709551615\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"clientMsgId\":\"c1\""));
    ProtobufCMessage *m2 = dec(&parley__v1__client_frame__descriptor, text, &e);
    CU_ASSERT_EQUAL_FATAL(e, PARLEY_OK);
    CU_ASSERT(same_wire(m, m2));
    free(text);
    protobuf_c_message_free_unpacked(m, NULL);
    protobuf_c_message_free_unpacked(m2, NULL);
}

static void test_original_names_and_numbers(void)
{
    parley_err e;
    ProtobufCMessage *m = dec(&parley__v1__client_frame__descriptor,
                              "{\"request_id\":7,\"subscribe\":{\"room\":\"r\","
                              "\"resume_after_rev\":42}}",
                              &e);
    CU_ASSERT_EQUAL_FATAL(e, PARLEY_OK);
    Parley__V1__ClientFrame *cf = (Parley__V1__ClientFrame *)m;
    CU_ASSERT_EQUAL(cf->request_id, 7);
    CU_ASSERT_EQUAL_FATAL(cf->kind_case,
                          PARLEY__V1__CLIENT_FRAME__KIND_SUBSCRIBE);
    CU_ASSERT_EQUAL(cf->subscribe->resume_after_rev, 42);
    protobuf_c_message_free_unpacked(m, NULL);

    /* an empty oneof member still selects the case */
    m = dec(&parley__v1__client_frame__descriptor, "{\"ping\":{}}", &e);
    CU_ASSERT_EQUAL_FATAL(e, PARLEY_OK);
    CU_ASSERT_EQUAL(((Parley__V1__ClientFrame *)m)->kind_case,
                    PARLEY__V1__CLIENT_FRAME__KIND_PING);
    char *text = gw_json_encode(m, NULL);
    CU_ASSERT_STRING_EQUAL(text, "{\"ping\":{}}");
    free(text);
    protobuf_c_message_free_unpacked(m, NULL);
}

static Parley__V1__Message *mk_msg(uint64_t seq, const char *body)
{
    Parley__V1__Message *msg = malloc(sizeof *msg);
    parley__v1__message__init(msg);
    msg->room = strdup("lobby");
    msg->seq = seq;
    msg->rev = seq + 100;
    msg->client_msg_id = strdup("cid");
    msg->body = strdup(body);
    msg->created_at_ms = 1700000000123LL;
    msg->author = malloc(sizeof *msg->author);
    parley__v1__author__init(msg->author);
    msg->author->id = strdup("u1");
    msg->author->display_name = strdup("Ann");
    msg->author->role = PARLEY__V1__ROLE__ROLE_ORGANIZER;
    return msg;
}

static void test_server_frame_event(void)
{
    Parley__V1__ServerFrame sf = PARLEY__V1__SERVER_FRAME__INIT;
    Parley__V1__Event ev = PARLEY__V1__EVENT__INIT;
    sf.kind_case = PARLEY__V1__SERVER_FRAME__KIND_EVENT;
    sf.event = &ev;
    ev.type = PARLEY__V1__EVENT_TYPE__EVENT_TYPE_EDITED;
    ev.replay = 1;
    ev.message = mk_msg(3, "x");
    char *text = gw_json_encode(&sf.base, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"type\":\"EVENT_TYPE_EDITED\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"role\":\"ROLE_ORGANIZER\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"createdAtMs\":\"1700000000123\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"replay\":true"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"displayName\":\"Ann\""));
    /* defaults are omitted */
    CU_ASSERT_PTR_NULL(strstr(text, "editedAtMs"));
    CU_ASSERT_PTR_NULL(strstr(text, "requestId"));
    parley_err e;
    ProtobufCMessage *back =
        dec(&parley__v1__server_frame__descriptor, text, &e);
    CU_ASSERT_EQUAL_FATAL(e, PARLEY_OK);
    CU_ASSERT(same_wire(&sf.base, back));
    /* enum given as a number decodes the same */
    ProtobufCMessage *num = dec(&parley__v1__server_frame__descriptor,
                                "{\"event\":{\"type\":2}}", &e);
    CU_ASSERT_EQUAL_FATAL(e, PARLEY_OK);
    CU_ASSERT_EQUAL(((Parley__V1__ServerFrame *)num)->event->type,
                    PARLEY__V1__EVENT_TYPE__EVENT_TYPE_EDITED);
    protobuf_c_message_free_unpacked(num, NULL);
    protobuf_c_message_free_unpacked(back, NULL);
    protobuf_c_message_free_unpacked(&ev.message->base, NULL);
    free(text);
}

static void test_list_messages_response(void)
{
    Parley__V1__ListMessagesResponse r =
        PARLEY__V1__LIST_MESSAGES_RESPONSE__INIT;
    Parley__V1__Room room = PARLEY__V1__ROOM__INIT;
    Parley__V1__Message *msgs[3];
    for (int i = 0; i < 3; i++)
        msgs[i] = mk_msg((uint64_t)i + 1, i == 1 ? "" : "b");
    msgs[1]->deleted = 1;
    r.n_messages = 3;
    r.messages = msgs;
    room.name = "lobby";
    room.head_seq = 3;
    room.head_rev = 103;
    r.room = &room;
    r.has_more = 1;
    char *text = gw_json_encode(&r.base, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"hasMore\":true"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"headRev\":\"103\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"deleted\":true"));
    parley_err e;
    ProtobufCMessage *back =
        dec(&parley__v1__list_messages_response__descriptor, text, &e);
    CU_ASSERT_EQUAL_FATAL(e, PARLEY_OK);
    CU_ASSERT_EQUAL(((Parley__V1__ListMessagesResponse *)back)->n_messages, 3);
    CU_ASSERT(same_wire(&r.base, back));
    protobuf_c_message_free_unpacked(back, NULL);
    for (int i = 0; i < 3; i++)
        protobuf_c_message_free_unpacked(&msgs[i]->base, NULL);
    free(text);
}

static void test_unknown_fields_ignored(void)
{
    parley_err e;
    ProtobufCMessage *m = dec(
        &parley__v1__client_frame__descriptor,
        "{\"requestId\":\"5\",\"futureField\":{\"a\":[1,2]},\"authenticate\":"
        "{\"token\":\"t\",\"extra\":true}}",
        &e);
    CU_ASSERT_EQUAL_FATAL(e, PARLEY_OK);
    Parley__V1__ClientFrame *cf = (Parley__V1__ClientFrame *)m;
    CU_ASSERT_EQUAL(cf->request_id, 5);
    CU_ASSERT_STRING_EQUAL(cf->authenticate->token, "t");
    protobuf_c_message_free_unpacked(m, NULL);
}

static void test_wrong_types_malformed(void)
{
    static const char *bad[] = {
        "{\"requestId\":true}",
        "{\"requestId\":\"12x\"}",
        "{\"requestId\":-1}",
        "{\"requestId\":1.5}",
        "{\"publish\":\"hello\"}",
        "{\"publish\":{\"body\":5}}",
        "{\"subscribe\":{\"room\":\"a\",\"resumeAfterRev\":[]}}",
        "{\"ping\":{},\"publish\":{}}",
        "[1,2]",
        "{\"requestId\":",
        "",
        "{\"requestId\":1,\"requestId\":2}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        parley_err e;
        ProtobufCMessage *m =
            dec(&parley__v1__client_frame__descriptor, bad[i], &e);
        CU_ASSERT_PTR_NULL(m);
        CU_ASSERT_EQUAL(e, PARLEY_ERR_MALFORMED);
        if (m) protobuf_c_message_free_unpacked(m, NULL);
    }
    parley_err e;
    ProtobufCMessage *m = dec(&parley__v1__server_frame__descriptor,
                              "{\"event\":{\"type\":\"EVENT_TYPE_NOPE\"}}", &e);
    CU_ASSERT_PTR_NULL(m);
    CU_ASSERT_EQUAL(e, PARLEY_ERR_MALFORMED);
}

static void test_invalid_utf8(void)
{
    parley_err e;
    ProtobufCMessage *m = dec(&parley__v1__client_frame__descriptor,
                              "{\"publish\":{\"body\":\"a\xff\xfe\"}}", &e);
    CU_ASSERT_PTR_NULL(m);
    CU_ASSERT_EQUAL(e, PARLEY_ERR_INVALID_UTF8);
    m = dec(&parley__v1__client_frame__descriptor,
            "{\"publish\":{\"body\":\"\xed\xa0\x80\"}}", &e); /* a surrogate */
    CU_ASSERT_PTR_NULL(m);
    CU_ASSERT_EQUAL(e, PARLEY_ERR_INVALID_UTF8);
    /* an escaped NUL is refused too */
    m = dec(&parley__v1__client_frame__descriptor,
            "{\"publish\":{\"body\":\"a\\u0000b\"}}", &e);
    CU_ASSERT_PTR_NULL(m);
    CU_ASSERT_NOT_EQUAL(e, PARLEY_OK);
}

static void test_base64(void)
{
    static const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *want[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                 "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        char *s =
            gw_base64_encode((const unsigned char *)in[i], strlen(in[i]), NULL);
        CU_ASSERT_STRING_EQUAL(s, want[i]);
        unsigned char *b;
        size_t n;
        CU_ASSERT_EQUAL_FATAL(gw_base64_decode(s, strlen(s), &b, &n), 0);
        CU_ASSERT_EQUAL(n, strlen(in[i]));
        CU_ASSERT(memcmp(b, in[i], n) == 0);
        free(b);
        free(s);
    }
    unsigned char *b;
    size_t n;
    CU_ASSERT_EQUAL(gw_base64_decode("a*bc", 4, &b, &n), -1);
    /* URL-safe and unpadded forms read the same bytes */
    static const char *same[] = {"+/8=", "-_8=", "-_8", "+/8"};
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL_FATAL(
            gw_base64_decode(same[i], strlen(same[i]), &b, &n), 0);
        CU_ASSERT_EQUAL(n, 2);
        CU_ASSERT(b[0] == 0xfb && b[1] == 0xff);
        free(b);
    }
    /* refused, never read as something else */
    static const char *bad[] = {"Z",    "Zg=",   "Zm9v=", "Zg==x", "Zg==Zg==",
                                "Zm 9", "Zm9\n", "Zg===", "===="};
    for (int i = 0; i < 9; i++)
        CU_ASSERT_EQUAL(gw_base64_decode(bad[i], strlen(bad[i]), &b, &n), -1);
    CU_ASSERT_EQUAL(gw_base64_decode("Zm\0v", 4, &b, &n), -1);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite s = CU_add_suite("gw_json", NULL, NULL);
    CU_add_test(s, "field names", test_field_names);
    CU_add_test(s, "ClientFrame publish round trip", test_client_frame_publish);
    CU_add_test(s, "original names, numbers, empty oneof",
                test_original_names_and_numbers);
    CU_add_test(s, "ServerFrame event round trip", test_server_frame_event);
    CU_add_test(s, "ListMessagesResponse round trip",
                test_list_messages_response);
    CU_add_test(s, "unknown fields ignored", test_unknown_fields_ignored);
    CU_add_test(s, "wrong types are MALFORMED", test_wrong_types_malformed);
    CU_add_test(s, "invalid UTF-8 rejected", test_invalid_utf8);
    CU_add_test(s, "base64", test_base64);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails =
        CU_get_number_of_tests_failed() + CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
