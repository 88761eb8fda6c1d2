/* srv_reflection.c: gRPC server reflection, grpc.reflection.v1 and
 * v1alpha (ServerReflectionInfo), so grpcurl, Postman and Evans list and
 * call parleyd's methods without the .proto files.
 *
 * What it serves: the FileDescriptorProtos protoc compiled from proto/,
 * built into the binary as one serialized FileDescriptorSet
 * (gen/descriptor_set.c; gen-runtime/descriptor_set.h says why those bytes
 * and not descriptors rebuilt from protobuf-c's). At start the set is split
 * into its files (each file's bytes are sent as they are, never re-encoded)
 * and every symbol of each file is indexed: messages and their fields,
 * nested types, enums and their values, services and their methods.
 *
 * Answers: list_services names the services registered with the server;
 * file_by_filename and file_containing_symbol send the file and everything
 * it imports, transitively (every time: the protocol allows skipping files
 * sent earlier on the stream, but a client must cope with both);
 * all_extension_numbers_of_type answers an empty list for a known message
 * (the contract declares no extensions) and file_containing_extension
 * NOT_FOUND. A name that is not known is NOT_FOUND in an ErrorResponse, and
 * the stream goes on.
 *
 * v1alpha is v1 under another package: the messages are the same on the
 * wire, field for field, so a v1alpha request's bytes are read as a v1
 * request and the v1 answer's bytes are a valid v1alpha answer. One
 * implementation serves both.
 *
 * Like Health, reflection needs no token: the descriptors are the public
 * contract (proto/), and calling a method still needs one. parleyd
 * --reflection=0 turns it off. */
#include "srv.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "descriptor_set.h"
#include "google/protobuf/descriptor.pb-c.h"
#include "grpc/reflection/v1/reflection.grpc.h"
#include "grpc/reflection/v1alpha/reflection.grpc.h"

typedef Grpc__Reflection__V1__ServerReflectionRequest refl_request;
typedef Grpc__Reflection__V1__ServerReflectionResponse refl_response;
typedef Google__Protobuf__FileDescriptorProto file_proto;
typedef Google__Protobuf__DescriptorProto message_proto;
typedef Google__Protobuf__EnumDescriptorProto enum_proto;

/* gRPC status numbers of ErrorResponse.error_code. */
enum { REFL_INVALID_ARGUMENT = 3, REFL_NOT_FOUND = 5 };

typedef struct refl_file {
    char *name;
    const uint8_t *bytes; /* this file's FileDescriptorProto, in the set */
    size_t len;
    size_t *deps; /* indexes of the files it imports */
    size_t n_deps;
} refl_file;

typedef struct refl_symbol {
    char *name; /* fully qualified, no leading dot */
    size_t file;
    int is_message;
} refl_symbol;

struct srv_reflection {
    refl_file *files;
    size_t n_files;
    refl_symbol *syms; /* sorted by name once built */
    size_t n_syms, cap_syms;
    char **services; /* served, in registration order */
    size_t n_services;
};

/* ---- building the index ------------------------------------------------ */

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p >= end) return -1;
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return 0;
    }
    return -1;
}

static int add_symbol(srv_reflection *r, const char *scope, const char *name,
                      size_t file, int is_message)
{
    if (r->n_syms == r->cap_syms) {
        size_t nc = r->cap_syms ? r->cap_syms * 2 : 128;
        refl_symbol *ns = realloc(r->syms, nc * sizeof *ns);
        if (!ns) return -1;
        r->syms = ns;
        r->cap_syms = nc;
    }
    size_t len = strlen(scope) + strlen(name) + 2;
    char *full = malloc(len);
    if (!full) return -1;
    snprintf(full, len, "%s%s%s", scope, *scope ? "." : "", name);
    r->syms[r->n_syms++] = (refl_symbol){full, file, is_message};
    return 0;
}

/* An enum's values live in the scope that holds the enum (proto scoping). */
static int add_enum(srv_reflection *r, const char *scope, const enum_proto *e,
                    size_t file)
{
    if (!e->name || add_symbol(r, scope, e->name, file, 0)) return -1;
    for (size_t i = 0; i < e->n_value; i++)
        if (e->value[i]->name &&
            add_symbol(r, scope, e->value[i]->name, file, 0))
            return -1;
    return 0;
}

static int add_message(srv_reflection *r, const char *scope,
                       const message_proto *m, size_t file)
{
    if (!m->name || add_symbol(r, scope, m->name, file, 1)) return -1;
    const char *self = r->syms[r->n_syms - 1].name;
    for (size_t i = 0; i < m->n_field; i++)
        if (m->field[i]->name &&
            add_symbol(r, self, m->field[i]->name, file, 0))
            return -1;
    for (size_t i = 0; i < m->n_nested_type; i++)
        if (add_message(r, self, m->nested_type[i], file)) return -1;
    for (size_t i = 0; i < m->n_enum_type; i++)
        if (add_enum(r, self, m->enum_type[i], file)) return -1;
    return 0;
}

static int add_file_symbols(srv_reflection *r, const file_proto *f, size_t fi)
{
    const char *pkg = f->package ? f->package : "";
    for (size_t i = 0; i < f->n_message_type; i++)
        if (add_message(r, pkg, f->message_type[i], fi)) return -1;
    for (size_t i = 0; i < f->n_enum_type; i++)
        if (add_enum(r, pkg, f->enum_type[i], fi)) return -1;
    for (size_t i = 0; i < f->n_service; i++) {
        const Google__Protobuf__ServiceDescriptorProto *sv = f->service[i];
        if (!sv->name || add_symbol(r, pkg, sv->name, fi, 0)) return -1;
        const char *self = r->syms[r->n_syms - 1].name;
        for (size_t k = 0; k < sv->n_method; k++)
            if (sv->method[k]->name &&
                add_symbol(r, self, sv->method[k]->name, fi, 0))
                return -1;
    }
    return 0;
}

static int file_index(const srv_reflection *r, const char *name, size_t *out)
{
    for (size_t i = 0; i < r->n_files; i++)
        if (strcmp(r->files[i].name, name) == 0) {
            *out = i;
            return 0;
        }
    return -1;
}

static int sym_cmp(const void *a, const void *b)
{
    return strcmp(((const refl_symbol *)a)->name,
                  ((const refl_symbol *)b)->name);
}

srv_reflection *srv_reflection_new(char *err, size_t errlen)
{
    srv_reflection *r = calloc(1, sizeof *r);
    file_proto **parsed = NULL;
    if (!r) goto oom;
    /* FileDescriptorSet { repeated FileDescriptorProto file = 1; } */
    const uint8_t *p = parley_descriptor_set,
                  *end = parley_descriptor_set + parley_descriptor_set_len;
    size_t cap = 0;
    while (p < end) {
        uint64_t tag, len;
        if (read_varint(&p, end, &tag) || tag != ((1 << 3) | 2) ||
            read_varint(&p, end, &len) || len > (uint64_t)(end - p))
            goto bad;
        if (r->n_files == cap) {
            cap = cap ? cap * 2 : 8;
            refl_file *nf = realloc(r->files, cap * sizeof *nf);
            file_proto **np = realloc(parsed, cap * sizeof *np);
            if (nf) r->files = nf;
            if (np) parsed = np;
            if (!nf || !np) goto oom;
        }
        refl_file *f = &r->files[r->n_files];
        memset(f, 0, sizeof *f);
        f->bytes = p;
        f->len = (size_t)len;
        parsed[r->n_files] =
            google__protobuf__file_descriptor_proto__unpack(NULL, f->len, p);
        r->n_files++;
        if (!parsed[r->n_files - 1] || !parsed[r->n_files - 1]->name) goto bad;
        if (!(f->name = strdup(parsed[r->n_files - 1]->name))) goto oom;
        p += len;
    }
    for (size_t i = 0; i < r->n_files; i++) {
        const file_proto *fp = parsed[i];
        refl_file *f = &r->files[i];
        f->deps =
            calloc(fp->n_dependency ? fp->n_dependency : 1, sizeof *f->deps);
        if (!f->deps) goto oom;
        for (size_t k = 0; k < fp->n_dependency; k++)
            if (file_index(r, fp->dependency[k], &f->deps[f->n_deps++]))
                goto bad; /* --include_imports puts every import in */
        if (add_file_symbols(r, fp, i)) goto oom;
    }
    qsort(r->syms, r->n_syms, sizeof *r->syms, sym_cmp);
    for (size_t i = 0; i < r->n_files; i++)
        google__protobuf__file_descriptor_proto__free_unpacked(parsed[i], NULL);
    free(parsed);
    return r;
bad:
    snprintf(err, errlen, "the built-in descriptor set does not parse");
    goto fail;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    if (r)
        for (size_t i = 0; i < r->n_files; i++)
            if (parsed[i])
                google__protobuf__file_descriptor_proto__free_unpacked(
                    parsed[i], NULL);
    free(parsed);
    srv_reflection_free(r);
    return NULL;
}

void srv_reflection_free(srv_reflection *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n_files; i++) {
        free(r->files[i].name);
        free(r->files[i].deps);
    }
    free(r->files);
    for (size_t i = 0; i < r->n_syms; i++) free(r->syms[i].name);
    free(r->syms);
    for (size_t i = 0; i < r->n_services; i++) free(r->services[i]);
    free(r->services);
    free(r);
}

void srv_reflection_serves(srv_reflection *r, const char *full_name)
{
    if (!r) return;
    for (size_t i = 0; i < r->n_services; i++)
        if (strcmp(r->services[i], full_name) == 0) return;
    char **ns = realloc(r->services, (r->n_services + 1) * sizeof *ns);
    if (!ns) return;
    r->services = ns;
    if ((ns[r->n_services] = strdup(full_name))) r->n_services++;
}

/* ---- answering --------------------------------------------------------- */

static const refl_symbol *find_symbol(const srv_reflection *r, const char *name)
{
    if (*name == '.') name++; /* tolerate a leading dot */
    refl_symbol key = {(char *)name, 0, 0};
    return bsearch(&key, r->syms, r->n_syms, sizeof *r->syms, sym_cmp);
}

/* Adds file i, then what it imports (depth first, each once). */
static void closure(const srv_reflection *r, size_t i, unsigned char *seen,
                    size_t *order, size_t *n)
{
    if (seen[i]) return;
    seen[i] = 1;
    order[(*n)++] = i;
    for (size_t k = 0; k < r->files[i].n_deps; k++)
        closure(r, r->files[i].deps[k], seen, order, n);
}

static void send_response(rpc_call *c, const refl_request *req,
                          refl_response *resp)
{
    resp->valid_host = req && req->host ? req->host : "";
    resp->original_request = (refl_request *)req;
    rpc_stream_send_msg(c, &resp->base);
}

static void send_error(rpc_call *c, const refl_request *req, int code,
                       const char *msg)
{
    Grpc__Reflection__V1__ErrorResponse er =
        GRPC__REFLECTION__V1__ERROR_RESPONSE__INIT;
    er.error_code = code;
    er.error_message = (char *)msg;
    refl_response resp = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;
    resp.message_response_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
    resp.error_response = &er;
    send_response(c, req, &resp);
}

static void send_files(const srv_reflection *r, rpc_call *c,
                       const refl_request *req, size_t file)
{
    unsigned char *seen = calloc(r->n_files, 1);
    size_t *order = calloc(r->n_files, sizeof *order);
    ProtobufCBinaryData *blobs = calloc(r->n_files, sizeof *blobs);
    if (!seen || !order || !blobs) {
        rpc_stream_finish(c, PARLEY_ERR_INTERNAL, "out of memory");
        goto out;
    }
    size_t n = 0;
    closure(r, file, seen, order, &n);
    assert(n >= 1 && n <= r->n_files);
    for (size_t i = 0; i < n; i++) {
        blobs[i].data = (uint8_t *)r->files[order[i]].bytes;
        blobs[i].len = r->files[order[i]].len;
    }
    Grpc__Reflection__V1__FileDescriptorResponse fr =
        GRPC__REFLECTION__V1__FILE_DESCRIPTOR_RESPONSE__INIT;
    fr.n_file_descriptor_proto = n;
    fr.file_descriptor_proto = blobs;
    refl_response resp = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;
    resp.message_response_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
    resp.file_descriptor_response = &fr;
    send_response(c, req, &resp);
out:
    free(seen);
    free(order);
    free(blobs);
}

static void answer(const srv_reflection *r, rpc_call *c,
                   const refl_request *req)
{
    char msg[400];
    size_t fi;
    const refl_symbol *sym;
    switch (req->message_request_case) {
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES: {
        Grpc__Reflection__V1__ServiceResponse *items =
            calloc(r->n_services ? r->n_services : 1, sizeof *items);
        Grpc__Reflection__V1__ServiceResponse **ptrs =
            calloc(r->n_services ? r->n_services : 1, sizeof *ptrs);
        if (!items || !ptrs) {
            free(items);
            free(ptrs);
            rpc_stream_finish(c, PARLEY_ERR_INTERNAL, "out of memory");
            return;
        }
        for (size_t i = 0; i < r->n_services; i++) {
            grpc__reflection__v1__service_response__init(&items[i]);
            items[i].name = r->services[i];
            ptrs[i] = &items[i];
        }
        Grpc__Reflection__V1__ListServiceResponse ls =
            GRPC__REFLECTION__V1__LIST_SERVICE_RESPONSE__INIT;
        ls.n_service = r->n_services;
        ls.service = ptrs;
        refl_response resp =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;
        resp.message_response_case =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
        resp.list_services_response = &ls;
        send_response(c, req, &resp);
        free(items);
        free(ptrs);
        return;
    }
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
        if (file_index(r, req->file_by_filename, &fi) == 0) {
            send_files(r, c, req, fi);
        } else {
            snprintf(msg, sizeof msg, "file not found: %.300s",
                     req->file_by_filename);
            send_error(c, req, REFL_NOT_FOUND, msg);
        }
        return;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
        if ((sym = find_symbol(r, req->file_containing_symbol))) {
            send_files(r, c, req, sym->file);
        } else {
            snprintf(msg, sizeof msg, "symbol not found: %.300s",
                     req->file_containing_symbol);
            send_error(c, req, REFL_NOT_FOUND, msg);
        }
        return;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION:
        send_error(c, req, REFL_NOT_FOUND, "extension not found");
        return;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE:
        sym = find_symbol(r, req->all_extension_numbers_of_type);
        if (sym && sym->is_message) {
            Grpc__Reflection__V1__ExtensionNumberResponse en =
                GRPC__REFLECTION__V1__EXTENSION_NUMBER_RESPONSE__INIT;
            en.base_type_name = sym->name;
            refl_response resp =
                GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;
            resp.message_response_case =
                GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE;
            resp.all_extension_numbers_response = &en;
            send_response(c, req, &resp);
        } else {
            snprintf(msg, sizeof msg, "type not found: %.300s",
                     req->all_extension_numbers_of_type);
            send_error(c, req, REFL_NOT_FOUND, msg);
        }
        return;
    default:
        send_error(c, req, REFL_INVALID_ARGUMENT,
                   "ServerReflectionRequest sets no message_request");
        return;
    }
}

static void on_v1(rpc_call *c, const ProtobufCMessage *msg, parley_err err,
                  void *ud)
{
    srv *s = ud;
    if (!msg || err != PARLEY_OK) { /* a bad string is no request either */
        send_error(c, NULL, REFL_INVALID_ARGUMENT,
                   "not a ServerReflectionRequest");
        return;
    }
    answer(s->reflection, c, (const refl_request *)msg);
}

/* v1alpha: the same bytes, read as v1 (see the top comment). */
static void on_v1alpha(rpc_call *c, const ProtobufCMessage *msg, parley_err err,
                       void *ud)
{
    srv *s = ud;
    refl_request *req = NULL;
    if (msg && err == PARLEY_OK) {
        grpc_slice b = rpc_encode(msg);
        req = grpc__reflection__v1__server_reflection_request__unpack(
            NULL, GRPC_SLICE_LENGTH(b), GRPC_SLICE_START_PTR(b));
        grpc_slice_unref(b);
    }
    if (!req) {
        send_error(c, NULL, REFL_INVALID_ARGUMENT,
                   "not a ServerReflectionRequest");
        return;
    }
    answer(s->reflection, c, req);
    grpc__reflection__v1__server_reflection_request__free_unpacked(req, NULL);
}

static void h_info_v1(rpc_call *c, void *ud)
{
    static const rpc_stream_cbs cbs = {on_v1, NULL, NULL, NULL};
    rpc_stream_set_callbacks(c, &cbs, ud);
}

static void h_info_v1alpha(rpc_call *c, void *ud)
{
    static const rpc_stream_cbs cbs = {on_v1alpha, NULL, NULL, NULL};
    rpc_stream_set_callbacks(c, &cbs, ud);
}

static const grpc_reflection_v1_ServerReflection_handlers v1_handlers = {
    .server_reflection_info = h_info_v1,
};
static const grpc_reflection_v1alpha_ServerReflection_handlers
    v1alpha_handlers = {
        .server_reflection_info = h_info_v1alpha,
};

int srv_reflection_register(srv *s, rpc_server *rs, char *err, size_t errlen)
{
    if (rpc_server_add_service(rs, &grpc_reflection_v1_ServerReflection_service,
                               &v1_handlers, s, err, errlen) != 0 ||
        rpc_server_add_service(
            rs, &grpc_reflection_v1alpha_ServerReflection_service,
            &v1alpha_handlers, s, err, errlen) != 0)
        return -1;
    srv_reflection_serves(
        s->reflection, grpc_reflection_v1_ServerReflection_service.full_name);
    srv_reflection_serves(
        s->reflection,
        grpc_reflection_v1alpha_ServerReflection_service.full_name);
    return 0;
}
