/* rpc_desc.h: the descriptor types that protoc-gen-parley-grpc emits for each
 * service (gen/parley/v1/<file>.grpc.{h,c}) and that the server (rpc.c)
 * registers with the grpc C core, and the gateway uses to call upstream.
 *
 * For a service S the generated header declares
 *   - struct parley_v1_S_handlers: one typed function pointer per RPC,
 *     named by the RPC in snake_case;
 *   - const rpc_service_desc parley_v1_S_service: the method table.
 * Adding an RPC to a .proto adds a table row and a handler member; no
 * routing code is written by hand. */
#ifndef PARLEY_RPC_DESC_H
#define PARLEY_RPC_DESC_H

#include <stddef.h>
#include <protobuf-c/protobuf-c.h>

typedef struct rpc_call rpc_call;

typedef enum rpc_kind {
    RPC_UNARY = 0,
    RPC_CLIENT_STREAMING = 1,
    RPC_SERVER_STREAMING = 2,
    RPC_BIDI_STREAMING = 3
} rpc_kind;

/* Calls the typed handler of one method in `handlers` (a pointer to the
 * service's generated handlers struct). `req` is the decoded request for
 * unary and server-streaming methods, and NULL for client-streaming and bidi
 * methods, whose messages arrive later through the call. */
typedef void (*rpc_dispatch_fn)(const void *handlers, rpc_call *call,
                                const ProtobufCMessage *req, void *ud);

typedef struct rpc_method_desc {
    const char *name; /* "ListMessages" */
    const char *path; /* "/parley.v1.History/ListMessages" */
    rpc_kind kind;
    const ProtobufCMessageDescriptor *input;
    const ProtobufCMessageDescriptor *output;
    /* offsetof the handler member in the handlers struct, so a server can
     * check that every method has an implementation before it starts. */
    size_t handler_offset;
    rpc_dispatch_fn dispatch;
} rpc_method_desc;

typedef struct rpc_service_desc {
    const char *full_name; /* "parley.v1.History" */
    size_t n_methods;
    const rpc_method_desc *methods;
} rpc_service_desc;

#endif
