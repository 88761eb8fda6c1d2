/* fuzz_json: the proto3-JSON mapping both ways (gateway/gw_json.c). The
 * first byte picks a message type of the contract; the rest is JSON text
 * read as that type. Whatever decodes must encode, and the encoding must
 * decode again to a message that encodes to the same text (a fixed point
 * after one round). The same input is also read as protobuf bytes of that
 * type (strictly, as the servers read them), encoded as JSON and read back
 * to a message with the same JSON. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gw_json.h"
#include "rpc_check.h"
#include "parley/v1/history.pb-c.h"
#include "parley/v1/stream.pb-c.h"

static const ProtobufCMessageDescriptor *TYPES[] = {
    &parley__v1__client_frame__descriptor,
    &parley__v1__server_frame__descriptor,
    &parley__v1__list_messages_response__descriptor,
    &parley__v1__edit_message_request__descriptor,
    &parley__v1__create_room_request__descriptor,
    &parley__v1__message__descriptor,
};

static char *enc(const ProtobufCMessage *m, size_t *len)
{
    char *t = gw_json_encode(m, len);
    assert(t != NULL);
    return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536) return 0;
    const ProtobufCMessageDescriptor *d =
        TYPES[data[0] % (sizeof TYPES / sizeof TYPES[0])];
    data++, size--;
    char detail[256];

    ProtobufCMessage *m = NULL;
    if (gw_json_decode(d, (const char *)data, size, &m, detail,
                       sizeof detail) == PARLEY_OK) {
        size_t l1, l2;
        char *t1 = enc(m, &l1);
        ProtobufCMessage *m2 = NULL;
        parley_err e = gw_json_decode(d, t1, l1, &m2, detail, sizeof detail);
        assert(e == PARLEY_OK);
        char *t2 = enc(m2, &l2);
        assert(l1 == l2 && memcmp(t1, t2, l1) == 0);
        free(t1);
        free(t2);
        protobuf_c_message_free_unpacked(m2, NULL);
        protobuf_c_message_free_unpacked(m, NULL);
    }

    /* binary of this type (read strictly) -> JSON -> message -> the same
     * JSON (unknown fields are kept by protobuf-c's binary form and
     * dropped by JSON, so the text is compared, not the bytes) */
    parley_err be;
    ProtobufCMessage *b = rpc_check_unpack(d, data, size, &be);
    if (b && be == PARLEY_OK) {
        size_t l, l2;
        char *t = enc(b, &l);
        ProtobufCMessage *b2 = NULL;
        parley_err e = gw_json_decode(d, t, l, &b2, detail, sizeof detail);
        assert(e == PARLEY_OK);
        char *t2 = enc(b2, &l2);
        assert(l == l2 && memcmp(t, t2, l) == 0);
        free(t);
        free(t2);
        protobuf_c_message_free_unpacked(b2, NULL);
    }
    if (b) protobuf_c_message_free_unpacked(b, NULL);
    return 0;
}
