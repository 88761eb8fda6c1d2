/* emit.h: turns a CodeGeneratorRequest into the method tables: for every
 * requested .proto file with services, X.grpc.h (typed handler structs,
 * method index enums, the rpc_service_desc declarations) and X.grpc.c (the
 * tables and the dispatch trampolines). */
#ifndef PGPG_EMIT_H
#define PGPG_EMIT_H

#include <stddef.h>
#include "google/protobuf/compiler/plugin.pb-c.h"
#include "text.h"

typedef struct emit_file {
    const char *name; /* relative output path */
    const char *content;
} emit_file;

typedef struct emit_result {
    emit_file *files;
    size_t n_files;
    const char *error; /* set when generation failed; files then empty */
} emit_result;

/* Fills out; all strings live in pool. Returns 0, or -1 with out->error. */
int emit_run(const Google__Protobuf__Compiler__CodeGeneratorRequest *req,
             text_pool *pool, emit_result *out);

#endif
