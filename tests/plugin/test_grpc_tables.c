/* test_grpc_tables.c: the method tables protoc-gen-parley-grpc generated for
 * the real parley.v1 services (gen/parley/v1/<file>.grpc.c): names, paths, kinds,
 * message descriptors, handler offsets, and that each dispatch trampoline
 * calls exactly its own typed handler with the call, request and ud. */
#include <CUnit/Basic.h>
#include <stddef.h>
#include <string.h>

#include "parley/v1/history.grpc.h"
#include "parley/v1/stream.grpc.h"

/* rpc_call is opaque to the tables; the test only passes its address on. */
struct rpc_call {
    int unused;
};

/* What the last handler call saw. */
static struct {
    const char *which;
    rpc_call *call;
    const void *req;
    void *ud;
    int calls;
} seen;

static void record(const char *which, rpc_call *call, const void *req, void *ud)
{
    seen.which = which;
    seen.call = call;
    seen.req = req;
    seen.ud = ud;
    seen.calls++;
}

#define REQ_HANDLER(fn, type)                                              \
    static void fn(rpc_call *call, const type *req, void *ud)            \
    {                                                                      \
        record(#fn, call, req, ud);                                        \
    }

REQ_HANDLER(list_messages, Parley__V1__ListMessagesRequest)
REQ_HANDLER(get_message, Parley__V1__GetMessageRequest)
REQ_HANDLER(edit_message, Parley__V1__EditMessageRequest)
REQ_HANDLER(delete_message, Parley__V1__DeleteMessageRequest)
REQ_HANDLER(create_room, Parley__V1__CreateRoomRequest)
REQ_HANDLER(get_room, Parley__V1__GetRoomRequest)
REQ_HANDLER(list_rooms, Parley__V1__ListRoomsRequest)
REQ_HANDLER(publish, Parley__V1__PublishRequest)

static void connect_(rpc_call *call, void *ud) { record("connect", call, NULL, ud); }

static const parley_v1_History_handlers history_handlers = {
    .list_messages = list_messages,
    .get_message = get_message,
    .edit_message = edit_message,
    .delete_message = delete_message,
    .create_room = create_room,
    .get_room = get_room,
    .list_rooms = list_rooms,
};

static const parley_v1_Stream_handlers stream_handlers = {
    .connect = connect_,
    .publish = publish,
};

typedef struct expect {
    int index;
    const char *name;
    const char *path;
    rpc_kind kind;
    const ProtobufCMessageDescriptor *input;
    const ProtobufCMessageDescriptor *output;
    size_t offset;
    const char *handler; /* function name recorded by the handler */
} expect;

static void check_method(const rpc_service_desc *svc, const void *handlers,
                         const expect *e)
{
    CU_ASSERT_FATAL((size_t)e->index < svc->n_methods);
    const rpc_method_desc *m = &svc->methods[e->index];
    CU_ASSERT_STRING_EQUAL(m->name, e->name);
    CU_ASSERT_STRING_EQUAL(m->path, e->path);
    CU_ASSERT_EQUAL(m->kind, e->kind);
    CU_ASSERT_PTR_EQUAL(m->input, e->input);
    CU_ASSERT_PTR_EQUAL(m->output, e->output);
    CU_ASSERT_EQUAL(m->handler_offset, e->offset);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m->dispatch);

    /* A real request of the method's input type, so the typed handler gets a
     * well-formed message. */
    ProtobufCMessage *req = NULL;
    union {
        ProtobufCMessage base;
        char space[512];
    } storage;
    int takes_request = m->kind == RPC_UNARY || m->kind == RPC_SERVER_STREAMING;
    if (takes_request) {
        CU_ASSERT_FATAL(m->input->sizeof_message <= sizeof storage.space);
        m->input->message_init(&storage.base);
        req = &storage.base;
    }
    struct rpc_call call;
    int ud;
    memset(&seen, 0, sizeof seen);
    m->dispatch(handlers, &call, req, &ud);
    CU_ASSERT_EQUAL(seen.calls, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(seen.which);
    CU_ASSERT_STRING_EQUAL(seen.which, e->handler);
    CU_ASSERT_PTR_EQUAL(seen.call, &call);
    CU_ASSERT_PTR_EQUAL(seen.req, takes_request ? (const void *)req : NULL);
    CU_ASSERT_PTR_EQUAL(seen.ud, &ud);
}

static void test_history_table(void)
{
    const rpc_service_desc *s = &parley_v1_History_service;
    CU_ASSERT_STRING_EQUAL(s->full_name, "parley.v1.History");
    CU_ASSERT_EQUAL(s->n_methods, 7);
    CU_ASSERT_EQUAL(PARLEY_V1_HISTORY__N_METHODS, 7);
    const expect e[] = {
        { PARLEY_V1_HISTORY_LIST_MESSAGES, "ListMessages", "/parley.v1.History/ListMessages",
          RPC_UNARY, &parley__v1__list_messages_request__descriptor,
          &parley__v1__list_messages_response__descriptor,
          offsetof(parley_v1_History_handlers, list_messages), "list_messages" },
        { PARLEY_V1_HISTORY_GET_MESSAGE, "GetMessage", "/parley.v1.History/GetMessage",
          RPC_UNARY, &parley__v1__get_message_request__descriptor,
          &parley__v1__get_message_response__descriptor,
          offsetof(parley_v1_History_handlers, get_message), "get_message" },
        { PARLEY_V1_HISTORY_EDIT_MESSAGE, "EditMessage", "/parley.v1.History/EditMessage",
          RPC_UNARY, &parley__v1__edit_message_request__descriptor,
          &parley__v1__edit_message_response__descriptor,
          offsetof(parley_v1_History_handlers, edit_message), "edit_message" },
        { PARLEY_V1_HISTORY_DELETE_MESSAGE, "DeleteMessage", "/parley.v1.History/DeleteMessage",
          RPC_UNARY, &parley__v1__delete_message_request__descriptor,
          &parley__v1__delete_message_response__descriptor,
          offsetof(parley_v1_History_handlers, delete_message), "delete_message" },
        { PARLEY_V1_HISTORY_CREATE_ROOM, "CreateRoom", "/parley.v1.History/CreateRoom",
          RPC_UNARY, &parley__v1__create_room_request__descriptor,
          &parley__v1__create_room_response__descriptor,
          offsetof(parley_v1_History_handlers, create_room), "create_room" },
        { PARLEY_V1_HISTORY_GET_ROOM, "GetRoom", "/parley.v1.History/GetRoom",
          RPC_UNARY, &parley__v1__get_room_request__descriptor,
          &parley__v1__get_room_response__descriptor,
          offsetof(parley_v1_History_handlers, get_room), "get_room" },
        { PARLEY_V1_HISTORY_LIST_ROOMS, "ListRooms", "/parley.v1.History/ListRooms",
          RPC_UNARY, &parley__v1__list_rooms_request__descriptor,
          &parley__v1__list_rooms_response__descriptor,
          offsetof(parley_v1_History_handlers, list_rooms), "list_rooms" },
    };
    for (size_t i = 0; i < sizeof e / sizeof e[0]; i++)
        check_method(s, &history_handlers, &e[i]);
}

static void test_stream_table(void)
{
    const rpc_service_desc *s = &parley_v1_Stream_service;
    CU_ASSERT_STRING_EQUAL(s->full_name, "parley.v1.Stream");
    CU_ASSERT_EQUAL(s->n_methods, 2);
    CU_ASSERT_EQUAL(PARLEY_V1_STREAM__N_METHODS, 2);
    const expect e[] = {
        { PARLEY_V1_STREAM_CONNECT, "Connect", "/parley.v1.Stream/Connect",
          RPC_BIDI_STREAMING, &parley__v1__client_frame__descriptor,
          &parley__v1__server_frame__descriptor,
          offsetof(parley_v1_Stream_handlers, connect), "connect" },
        { PARLEY_V1_STREAM_PUBLISH, "Publish", "/parley.v1.Stream/Publish",
          RPC_UNARY, &parley__v1__publish_request__descriptor,
          &parley__v1__publish_response__descriptor,
          offsetof(parley_v1_Stream_handlers, publish), "publish" },
    };
    for (size_t i = 0; i < sizeof e / sizeof e[0]; i++)
        check_method(s, &stream_handlers, &e[i]);
}

/* The table rows are indexed by the enum and every handler offset lies inside
 * the handlers struct, distinct per method, so a server can check for missing
 * handlers by offset. */
static void test_offsets_cover_struct(void)
{
    const struct {
        const rpc_service_desc *svc;
        size_t size;
    } svcs[] = {
        { &parley_v1_History_service, sizeof(parley_v1_History_handlers) },
        { &parley_v1_Stream_service, sizeof(parley_v1_Stream_handlers) },
    };
    for (size_t i = 0; i < sizeof svcs / sizeof svcs[0]; i++) {
        const rpc_service_desc *s = svcs[i].svc;
        for (size_t j = 0; j < s->n_methods; j++) {
            CU_ASSERT(s->methods[j].handler_offset + sizeof(void (*)(void)) <= svcs[i].size);
            for (size_t k = 0; k < j; k++) {
                CU_ASSERT_NOT_EQUAL(s->methods[j].handler_offset, s->methods[k].handler_offset);
                CU_ASSERT_STRING_NOT_EQUAL(s->methods[j].path, s->methods[k].path);
            }
        }
        CU_ASSERT_EQUAL(s->n_methods * sizeof(void (*)(void)), svcs[i].size);
    }
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("grpc_tables", NULL, NULL);
    if (!s || !CU_add_test(s, "history table", test_history_table) ||
        !CU_add_test(s, "stream table", test_stream_table) ||
        !CU_add_test(s, "offsets cover the handlers struct", test_offsets_cover_struct)) {
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
