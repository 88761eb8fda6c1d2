/* fuzz_client_frame: what the gateway does with a browser's frame before
 * anything goes upstream. The input is one WebSocket message; the first
 * byte says which subprotocol it arrived on (binary protobuf or proto3
 * JSON). It is decoded the strict way (rpc_check for binary, gw_json for
 * text), checked by the rules a publish or subscribe must pass, and
 * re-encoded as JSON; the invariants: a frame that passed holds no NUL in
 * any string (strlen is the sent length), and its JSON reads back to a
 * frame with the same JSON. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gw_json.h"
#include "rpc_check.h"
#include "rules.h"
#include "parley/v1/stream.pb-c.h"

static const ProtobufCMessageDescriptor *CF =
    &parley__v1__client_frame__descriptor;

static void handle(const Parley__V1__ClientFrame *f)
{
    switch (f->kind_case) {
    case PARLEY__V1__CLIENT_FRAME__KIND_PUBLISH: {
        const Parley__V1__PublishRequest *p = f->publish;
        (void)rules_room(p->room);
        (void)rules_client_msg_id(p->client_msg_id);
        (void)rules_body(p->body, strlen(p->body), 0);
        break;
    }
    case PARLEY__V1__CLIENT_FRAME__KIND_SUBSCRIBE:
        (void)rules_room(f->subscribe->room);
        break;
    case PARLEY__V1__CLIENT_FRAME__KIND_UNSUBSCRIBE:
        (void)rules_room(f->unsubscribe->room);
        break;
    default: break;
    }
}

/* message -> JSON -> message -> the same JSON */
static void roundtrip(const ProtobufCMessage *m)
{
    size_t l1, l2;
    char *t1 = gw_json_encode(m, &l1);
    assert(t1 != NULL);
    ProtobufCMessage *back = NULL;
    char detail[200];
    parley_err e = gw_json_decode(CF, t1, l1, &back, detail, sizeof detail);
    assert(e == PARLEY_OK);
    char *t2 = gw_json_encode(back, &l2);
    assert(t2 != NULL && l1 == l2 && memcmp(t1, t2, l1) == 0);
    free(t1);
    free(t2);
    protobuf_c_message_free_unpacked(back, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536) return 0;
    int json = data[0] & 1;
    data++, size--;
    ProtobufCMessage *m = NULL;
    parley_err e;
    if (json) {
        char detail[200];
        e = gw_json_decode(CF, (const char *)data, size, &m, detail,
                           sizeof detail);
    } else {
        m = rpc_check_unpack(CF, data, size, &e);
    }
    if (m && e == PARLEY_OK) {
        handle((const Parley__V1__ClientFrame *)m);
        /* every string passed the check: no NUL inside */
        if (!json) assert(rpc_check_message(CF, data, size) == PARLEY_OK);
        roundtrip(m);
    }
    if (m) protobuf_c_message_free_unpacked(m, NULL);
    return 0;
}
