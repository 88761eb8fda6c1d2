/* main.c: protoc-gen-parley-grpc, a protoc plugin that generates parley's
 * gRPC method tables (see emit.h and gen-runtime/rpc_desc.h). It reads a
 * CodeGeneratorRequest from stdin and writes a CodeGeneratorResponse to
 * stdout; problems with the input go in the response's error field, which
 * protoc reports. The exit status is non-zero only when no response could be
 * written. Run by protoc:
 *   protoc --plugin=protoc-gen-parley-grpc=PATH \
 *          --parley-grpc_out=DIR x.proto */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emit.h"
#include "google/protobuf/compiler/plugin.pb-c.h"
#include "text.h"

typedef Google__Protobuf__Compiler__CodeGeneratorRequest request;
typedef Google__Protobuf__Compiler__CodeGeneratorResponse response;
typedef Google__Protobuf__Compiler__CodeGeneratorResponse__File response_file;

/* Reads all of f; NULL on error or out of memory. */
static unsigned char *read_all(FILE *f, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap);
    if (!buf) return NULL;
    for (;;) {
        if (n == cap) {
            unsigned char *p =
                cap < ((size_t)-1) / 2 ? realloc(buf, cap * 2) : NULL;
            if (!p) {
                free(buf);
                return NULL;
            }
            buf = p;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                free(buf);
                return NULL;
            }
            break;
        }
    }
    *len = n;
    return buf;
}

static int write_response(const response *resp)
{
    size_t len =
        google__protobuf__compiler__code_generator_response__get_packed_size(
            resp);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) return -1;
    google__protobuf__compiler__code_generator_response__pack(resp, buf);
    int ok = fwrite(buf, 1, len, stdout) == len && fflush(stdout) == 0;
    free(buf);
    return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        if (strcmp(argv[1], "--version") == 0) {
            puts("protoc-gen-parley-grpc 1");
            return 0;
        }
        fprintf(stderr,
                "usage: protoc --plugin=protoc-gen-parley-grpc=%s "
                "--parley-grpc_out=DIR file.proto...\n",
                argv[0]);
        return 2;
    }

    text_pool pool;
    text_pool_init(&pool);
    response resp = GOOGLE__PROTOBUF__COMPILER__CODE_GENERATOR_RESPONSE__INIT;
    resp.has_supported_features = 1;
    resp.supported_features =
        GOOGLE__PROTOBUF__COMPILER__CODE_GENERATOR_RESPONSE__FEATURE__FEATURE_PROTO3_OPTIONAL;

    size_t len = 0;
    unsigned char *in = read_all(stdin, &len);
    int read_ok = in != NULL;
    request *req =
        in ? google__protobuf__compiler__code_generator_request__unpack(NULL,
                                                                        len, in)
           : NULL;
    free(in);

    response_file *files = NULL;
    response_file **file_ptrs = NULL;
    emit_result res = {0};
    if (!req) {
        resp.error = read_ok
                         ? "cannot parse the CodeGeneratorRequest on stdin"
                         : "cannot read the CodeGeneratorRequest from stdin";
    } else if (emit_run(req, &pool, &res) < 0) {
        resp.error = (char *)res.error;
    } else if (res.n_files > 0) {
        files = calloc(res.n_files, sizeof *files);
        file_ptrs = calloc(res.n_files, sizeof *file_ptrs);
        if (!files || !file_ptrs) {
            resp.error = "out of memory";
        } else {
            for (size_t i = 0; i < res.n_files; i++) {
                google__protobuf__compiler__code_generator_response__file__init(
                    &files[i]);
                files[i].name = (char *)res.files[i].name;
                files[i].content = (char *)res.files[i].content;
                file_ptrs[i] = &files[i];
            }
            resp.n_file = res.n_files;
            resp.file = file_ptrs;
        }
    }

    int rc = write_response(&resp);
    if (rc < 0)
        fprintf(stderr, "protoc-gen-parley-grpc: cannot write the response\n");
    free(files);
    free(file_ptrs);
    if (req)
        google__protobuf__compiler__code_generator_request__free_unpacked(req,
                                                                          NULL);
    text_pool_free(&pool);
    return rc < 0 ? 1 : 0;
}
