/* emit.c: generates X.grpc.h / X.grpc.c for each requested .proto file that
 * defines services (see emit.h). Output depends only on the request, in
 * descriptor order, so it is deterministic.
 *
 * For service S in package a.b the generated API is
 *   typedef struct a_b_S_handlers {
 *       void (*method_name)(...); ...
 *   } a_b_S_handlers;
 *   enum { A_B_S_METHOD_NAME = 0, ..., A_B_S__N_METHODS };
 *   extern const rpc_service_desc a_b_S_service;
 * Unary and server-streaming handlers take (rpc_call *, const Req *, void *ud),
 * client-streaming and bidi handlers (rpc_call *, void *ud). */
#include "emit.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"

typedef Google__Protobuf__FileDescriptorProto file_proto;
typedef Google__Protobuf__DescriptorProto message_proto;
typedef Google__Protobuf__ServiceDescriptorProto service_proto;
typedef Google__Protobuf__MethodDescriptorProto method_proto;

/* A message type of any file in the request. */
typedef struct type_entry {
    const char *full;   /* ".parley.v1.Outer.Inner", as in method types */
    const char *file;   /* "parley/v1/message.proto" */
    const char *c_type; /* Parley__V1__Outer__Inner */
    const char *c_desc; /* parley__v1__outer__inner__descriptor */
} type_entry;

typedef struct method_info {
    const method_proto *m;
    const char *member;   /* list_messages */
    const char *upper;    /* PARLEY_V1_HISTORY_LIST_MESSAGES */
    const char *dispatch; /* parley_v1_History_list_messages_dispatch */
    const char *kind;     /* RPC_UNARY, ... */
    int takes_request;    /* unary and server-streaming */
    const type_entry *in;
    const type_entry *out;
} method_info;

typedef struct service_info {
    const service_proto *s;
    const char *full;   /* parley.v1.History */
    const char *prefix; /* parley_v1_History */
    const char *upper;  /* PARLEY_V1_HISTORY */
    method_info *methods;
    size_t n_methods;
} service_info;

typedef struct ctx {
    text_pool *pool;
    type_entry *types;
    size_t n_types, cap_types;
    const char **idents; /* every global name generated, to catch clashes */
    size_t n_idents, cap_idents;
    const char *error;
} ctx;

static int fail(ctx *c, const char *msg)
{
    if (!c->error) c->error = msg ? msg : "out of memory";
    return -1;
}

static int oom(ctx *c) { return fail(c, "out of memory"); }

static const char *str_or_empty(const char *s) { return s ? s : ""; }

/* --- the c_package file option of protoc-c ---------------------------- */

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

/* Finds field 6 (c_package) in an encoded ProtobufCFileOptions. Sets *out to
 * a pool string when present. -1 if the bytes are malformed. */
static int parse_pb_c_file(ctx *c, const uint8_t *p, size_t len,
                           const char **out)
{
    const uint8_t *end = p + len;
    while (p < end) {
        uint64_t key, v;
        if (read_varint(&p, end, &key) < 0) return -1;
        switch (key & 7) {
        case 0:
            if (read_varint(&p, end, &v) < 0) return -1;
            break;
        case 1:
            if ((size_t)(end - p) < 8) return -1;
            p += 8;
            break;
        case 5:
            if ((size_t)(end - p) < 4) return -1;
            p += 4;
            break;
        case 2:
            if (read_varint(&p, end, &v) < 0 || v > (uint64_t)(end - p))
                return -1;
            if ((key >> 3) == 6) {
                char *s =
                    text_pool_own(c->pool, strndup((const char *)p, (size_t)v));
                if (!s) return oom(c);
                *out = s;
            }
            p += v;
            break;
        default: return -1;
        }
    }
    return 0;
}

/* The package protoc-c names a file's types with: option (pb_c_file).c_package
 * (extension 1019 of FileOptions, kept by protobuf-c as an unknown field) or
 * the proto package. NULL on error. */
static const char *c_package(ctx *c, const file_proto *f)
{
    const char *pkg = str_or_empty(f->package);
    const Google__Protobuf__FileOptions *o = f->options;
    if (!o) return pkg;
    for (unsigned i = 0; i < o->base.n_unknown_fields; i++) {
        const ProtobufCMessageUnknownField *u = &o->base.unknown_fields[i];
        if (u->tag != 1019 ||
            u->wire_type != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED)
            continue;
        /* protobuf-c keeps a length-delimited unknown field with its length
         * prefix. */
        const uint8_t *p = u->data, *end = u->data + u->len;
        uint64_t n;
        if (read_varint(&p, end, &n) < 0 || n != (uint64_t)(end - p) ||
            parse_pb_c_file(c, p, (size_t)n, &pkg) < 0) {
            fail(c, text_pool_printf(c->pool,
                                     "%s: cannot parse option (pb_c_file)",
                                     str_or_empty(f->name)));
            return NULL;
        }
    }
    return pkg;
}

/* --- the type index ---------------------------------------------------- */

static const char *join_dot(ctx *c, const char *a, const char *b)
{
    if (!*a) return text_pool_strdup(c->pool, b);
    return text_pool_printf(c->pool, "%s.%s", a, b);
}

static int index_messages(ctx *c, const file_proto *f, const char *cpkg,
                          const char *rel_prefix, message_proto *const *msgs,
                          size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const message_proto *m = msgs[i];
        if (!m->name || !*m->name)
            return fail(c,
                        text_pool_printf(c->pool, "%s: message without a name",
                                         str_or_empty(f->name)));
        const char *rel = join_dot(c, rel_prefix, m->name);
        const char *pkg_rel =
            rel ? join_dot(c, str_or_empty(f->package), rel) : NULL;
        const char *cfull = rel ? join_dot(c, cpkg, rel) : NULL;
        if (!pkg_rel || !cfull) return oom(c);
        if (c->n_types == c->cap_types) {
            size_t cap = c->cap_types ? c->cap_types * 2 : 64;
            type_entry *t = realloc(c->types, cap * sizeof *t);
            if (!t) return oom(c);
            c->types = t;
            c->cap_types = cap;
        }
        type_entry *t = &c->types[c->n_types];
        t->full = text_pool_printf(c->pool, ".%s", pkg_rel);
        t->file = f->name;
        t->c_type = names_full_to_c(c->pool, cfull);
        const char *lower = names_full_to_lower(c->pool, cfull);
        t->c_desc =
            lower ? text_pool_printf(c->pool, "%s__descriptor", lower) : NULL;
        if (!t->full || !t->c_type || !t->c_desc) return oom(c);
        c->n_types++;
        if (index_messages(c, f, cpkg, rel, m->nested_type, m->n_nested_type) <
            0)
            return -1;
    }
    return 0;
}

static const type_entry *find_type(const ctx *c, const char *full)
{
    for (size_t i = 0; i < c->n_types; i++)
        if (strcmp(c->types[i].full, full) == 0) return &c->types[i];
    return NULL;
}

static const file_proto *
find_file(const Google__Protobuf__Compiler__CodeGeneratorRequest *req,
          const char *name)
{
    for (size_t i = 0; i < req->n_proto_file; i++)
        if (req->proto_file[i]->name &&
            strcmp(req->proto_file[i]->name, name) == 0)
            return req->proto_file[i];
    return NULL;
}

static int add_ident(ctx *c, const char *file, const char *id)
{
    if (!id) return oom(c);
    for (size_t i = 0; i < c->n_idents; i++)
        if (strcmp(c->idents[i], id) == 0)
            return fail(c, text_pool_printf(c->pool,
                                            "%s: generated name %s clashes "
                                            "with another one; rename the "
                                            "service or method",
                                            file, id));
    if (c->n_idents == c->cap_idents) {
        size_t cap = c->cap_idents ? c->cap_idents * 2 : 64;
        const char **v = realloc(c->idents, cap * sizeof *v);
        if (!v) return oom(c);
        c->idents = v;
        c->cap_idents = cap;
    }
    c->idents[c->n_idents++] = id;
    return 0;
}

/* --- one file ---------------------------------------------------------- */

static int describe_service(ctx *c, const file_proto *f, const service_proto *s,
                            service_info *si)
{
    const char *fname = f->name;
    const char *pkg = str_or_empty(f->package);
    if (!s->name || !*s->name)
        return fail(
            c, text_pool_printf(c->pool, "%s: service without a name", fname));
    si->s = s;
    si->full = join_dot(c, pkg, s->name);
    const char *pkg_id = names_dots_to_underscores(c->pool, pkg);
    const char *pkg_up = pkg_id ? names_upper(c->pool, pkg_id) : NULL;
    const char *svc_up = names_camel_to_upper(c->pool, s->name);
    if (!si->full || !pkg_up || !svc_up) return oom(c);
    if (*pkg) {
        si->prefix = text_pool_printf(c->pool, "%s_%s", pkg_id, s->name);
        si->upper = text_pool_printf(c->pool, "%s_%s", pkg_up, svc_up);
    } else {
        si->prefix = s->name;
        si->upper = svc_up;
    }
    if (!si->prefix || !si->upper) return oom(c);
    if (add_ident(c, fname,
                  text_pool_printf(c->pool, "%s_handlers", si->prefix)) < 0 ||
        add_ident(c, fname,
                  text_pool_printf(c->pool, "%s_service", si->prefix)) < 0 ||
        add_ident(c, fname,
                  text_pool_printf(c->pool, "%s_methods", si->prefix)) < 0 ||
        add_ident(c, fname,
                  text_pool_printf(c->pool, "%s__N_METHODS", si->upper)) < 0)
        return -1;

    si->n_methods = s->n_method;
    si->methods = text_pool_own(
        c->pool, calloc(s->n_method ? s->n_method : 1, sizeof *si->methods));
    if (!si->methods) return oom(c);
    for (size_t j = 0; j < s->n_method; j++) {
        const method_proto *m = s->method[j];
        method_info *mi = &si->methods[j];
        mi->m = m;
        if (!m->name || !*m->name || !m->input_type || !m->output_type)
            return fail(c, text_pool_printf(c->pool,
                                            "%s: service %s has an "
                                            "incomplete method",
                                            fname, si->full));
        const char *snake = names_camel_to_lower(c->pool, m->name);
        const char *up = names_camel_to_upper(c->pool, m->name);
        if (!snake || !up) return oom(c);
        mi->member = names_is_keyword(snake)
                         ? text_pool_printf(c->pool, "%s_", snake)
                         : snake;
        mi->upper = text_pool_printf(c->pool, "%s_%s", si->upper, up);
        mi->dispatch =
            text_pool_printf(c->pool, "%s_%s_dispatch", si->prefix, mi->member);
        if (!mi->member || !mi->upper || !mi->dispatch) return oom(c);
        for (size_t k = 0; k < j; k++)
            if (strcmp(si->methods[k].member, mi->member) == 0)
                return fail(c, text_pool_printf(c->pool,
                                                "%s: methods %s and %s of %s "
                                                "both map to handler member %s",
                                                fname, si->methods[k].m->name,
                                                m->name, si->full, mi->member));
        if (add_ident(c, fname, mi->upper) < 0 ||
            add_ident(c, fname, mi->dispatch) < 0)
            return -1;

        int cs = m->has_client_streaming && m->client_streaming;
        int ss = m->has_server_streaming && m->server_streaming;
        mi->kind = cs ? (ss ? "RPC_BIDI_STREAMING" : "RPC_CLIENT_STREAMING")
                      : (ss ? "RPC_SERVER_STREAMING" : "RPC_UNARY");
        mi->takes_request = !cs;
        mi->in = find_type(c, m->input_type);
        mi->out = find_type(c, m->output_type);
        if (!mi->in || !mi->out)
            return fail(
                c, text_pool_printf(
                       c->pool,
                       "%s: %s.%s: message type %s not found in the request",
                       fname, si->full, m->name,
                       mi->in ? m->output_type : m->input_type));
    }
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void emit_banner(text_buf *b, const char *proto)
{
    text_printf(
        b, "/* Generated by protoc-gen-parley-grpc from %s. Do not edit. */\n",
        proto);
}

static void emit_header(text_buf *b, const file_proto *f, const char *guard,
                        const char **includes, size_t n_includes,
                        const service_info *svcs, size_t n_svcs)
{
    emit_banner(b, f->name);
    text_printf(b, "#ifndef %s\n#define %s\n\n", guard, guard);
    text_puts(b, "#include \"rpc_desc.h\"\n");
    for (size_t i = 0; i < n_includes; i++)
        text_printf(b, "#include \"%s\"\n", includes[i]);
    text_puts(b, "\n#ifdef __cplusplus\nextern \"C\" {\n#endif\n");

    for (size_t i = 0; i < n_svcs; i++) {
        const service_info *si = &svcs[i];
        text_printf(b, "\n/* service %s */\n", si->full);
        text_printf(b, "typedef struct %s_handlers {\n", si->prefix);
        if (si->n_methods == 0)
            text_puts(b,
                      "    char no_methods_; /* C has no empty structs */\n");
        for (size_t j = 0; j < si->n_methods; j++) {
            const method_info *mi = &si->methods[j];
            int cs = mi->m->has_client_streaming && mi->m->client_streaming;
            int ss = mi->m->has_server_streaming && mi->m->server_streaming;
            text_printf(b, "    /* rpc %s(%s%s) returns (%s%s) */\n",
                        mi->m->name, cs ? "stream " : "", mi->in->full + 1,
                        ss ? "stream " : "", mi->out->full + 1);
            if (mi->takes_request)
                text_printf(b,
                            "    void (*%s)(rpc_call *call, const %s *req, "
                            "void *ud);\n",
                            mi->member, mi->in->c_type);
            else
                text_printf(b, "    void (*%s)(rpc_call *call, void *ud);\n",
                            mi->member);
        }
        text_printf(b, "} %s_handlers;\n\n", si->prefix);

        text_puts(b, "enum {\n");
        for (size_t j = 0; j < si->n_methods; j++)
            text_printf(b, "    %s = %zu,\n", si->methods[j].upper, j);
        text_printf(b, "    %s__N_METHODS = %zu\n};\n\n", si->upper,
                    si->n_methods);
        text_printf(b, "extern const rpc_service_desc %s_service;\n",
                    si->prefix);
    }
    text_printf(b, "\n#ifdef __cplusplus\n}\n#endif\n\n#endif /* %s */\n",
                guard);
}

static void emit_source(text_buf *b, const file_proto *f, const char *header,
                        const service_info *svcs, size_t n_svcs)
{
    emit_banner(b, f->name);
    text_printf(b, "#include <stddef.h>\n\n#include \"%s\"\n", header);

    for (size_t i = 0; i < n_svcs; i++) {
        const service_info *si = &svcs[i];
        text_printf(b, "\n/* service %s */\n", si->full);
        for (size_t j = 0; j < si->n_methods; j++) {
            const method_info *mi = &si->methods[j];
            text_printf(
                b,
                "\nstatic void %s(const void *handlers, rpc_call *call,\n"
                "    const ProtobufCMessage *req, void *ud)\n{\n",
                mi->dispatch);
            text_printf(b, "    const %s_handlers *h = handlers;\n",
                        si->prefix);
            if (mi->takes_request) {
                text_printf(b, "    h->%s(call, (const %s *)req, ud);\n",
                            mi->member, mi->in->c_type);
            } else {
                text_puts(b, "    (void)req;\n");
                text_printf(b, "    h->%s(call, ud);\n", mi->member);
            }
            text_puts(b, "}\n");
        }
        if (si->n_methods > 0) {
            text_printf(b,
                        "\nstatic const rpc_method_desc "
                        "%s_methods[%s__N_METHODS] = {\n",
                        si->prefix, si->upper);
            for (size_t j = 0; j < si->n_methods; j++) {
                const method_info *mi = &si->methods[j];
                text_printf(b, "    [%s] = {\n", mi->upper);
                text_printf(b, "        .name = \"%s\",\n", mi->m->name);
                text_printf(b, "        .path = \"/%s/%s\",\n", si->full,
                            mi->m->name);
                text_printf(b, "        .kind = %s,\n", mi->kind);
                text_printf(b, "        .input = &%s,\n", mi->in->c_desc);
                text_printf(b, "        .output = &%s,\n", mi->out->c_desc);
                text_printf(
                    b, "        .handler_offset = offsetof(%s_handlers, %s),\n",
                    si->prefix, mi->member);
                text_printf(b, "        .dispatch = %s,\n", mi->dispatch);
                text_puts(b, "    },\n");
            }
            text_puts(b, "};\n");
        }
        text_printf(b, "\nconst rpc_service_desc %s_service = {\n", si->prefix);
        text_printf(b, "    .full_name = \"%s\",\n", si->full);
        text_printf(b, "    .n_methods = %s__N_METHODS,\n", si->upper);
        if (si->n_methods > 0)
            text_printf(b, "    .methods = %s_methods,\n", si->prefix);
        else
            text_puts(b, "    .methods = NULL,\n");
        text_puts(b, "};\n");
    }
}

static int emit_one(ctx *c, const file_proto *f, emit_result *out)
{
    if (f->n_service == 0) return 0;
    service_info *svcs =
        text_pool_own(c->pool, calloc(f->n_service, sizeof *svcs));
    if (!svcs) return oom(c);
    for (size_t i = 0; i < f->n_service; i++)
        if (describe_service(c, f, f->service[i], &svcs[i]) < 0) return -1;

    /* The .pb-c.h of this file first, then those defining the types used. */
    size_t cap = 1;
    for (size_t i = 0; i < f->n_service; i++) cap += 2 * svcs[i].n_methods;
    const char **files = text_pool_own(c->pool, calloc(cap, sizeof *files));
    if (!files) return oom(c);
    size_t n = 0;
    for (size_t i = 0; i < f->n_service; i++)
        for (size_t j = 0; j < svcs[i].n_methods; j++) {
            const char *t[2] = {svcs[i].methods[j].in->file,
                                svcs[i].methods[j].out->file};
            for (int k = 0; k < 2; k++)
                if (strcmp(t[k], f->name) != 0) files[n++] = t[k];
        }
    qsort(files, n, sizeof *files, cmp_str);
    const char **includes =
        text_pool_own(c->pool, calloc(n + 1, sizeof *includes));
    if (!includes) return oom(c);
    size_t n_inc = 0;
    const char *own = names_strip_proto(c->pool, f->name);
    if (!own ||
        !(includes[n_inc++] = text_pool_printf(c->pool, "%s.pb-c.h", own)))
        return oom(c);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && strcmp(files[i], files[i - 1]) == 0) continue;
        const char *stem = names_strip_proto(c->pool, files[i]);
        if (!stem ||
            !(includes[n_inc++] = text_pool_printf(c->pool, "%s.pb-c.h", stem)))
            return oom(c);
    }

    const char *hname = text_pool_printf(c->pool, "%s.grpc.h", own);
    const char *cname = text_pool_printf(c->pool, "%s.grpc.c", own);
    const char *fid = names_file_ident(c->pool, f->name);
    const char *guard =
        fid ? text_pool_printf(c->pool, "PARLEY_GRPC_%s__INCLUDED", fid) : NULL;
    if (!hname || !cname || !guard) return oom(c);

    text_buf h, s;
    text_init(&h);
    text_init(&s);
    emit_header(&h, f, guard, includes, n_inc, svcs, f->n_service);
    emit_source(&s, f, hname, svcs, f->n_service);
    char *hs = text_pool_own(c->pool, text_take(&h));
    char *ss = text_pool_own(c->pool, text_take(&s));
    if (!hs || !ss) return oom(c);
    out->files[out->n_files].name = hname;
    out->files[out->n_files++].content = hs;
    out->files[out->n_files].name = cname;
    out->files[out->n_files++].content = ss;
    return 0;
}

/* --- the request ------------------------------------------------------- */

static int run(ctx *c,
               const Google__Protobuf__Compiler__CodeGeneratorRequest *req,
               emit_result *out)
{
    if (req->parameter && *req->parameter)
        return fail(c,
                    text_pool_printf(
                        c->pool,
                        "protoc-gen-parley-grpc takes no options (got \"%s\")",
                        req->parameter));

    for (size_t i = 0; i < req->n_proto_file; i++) {
        const file_proto *f = req->proto_file[i];
        if (!f->name) return fail(c, "a file in the request has no name");
        const char *cpkg = c_package(c, f);
        if (!cpkg) return -1;
        if (index_messages(c, f, cpkg, "", f->message_type, f->n_message_type) <
            0)
            return -1;
    }

    out->files = text_pool_own(
        c->pool, calloc(2 * req->n_file_to_generate + 1, sizeof *out->files));
    if (!out->files) return oom(c);
    for (size_t i = 0; i < req->n_file_to_generate; i++) {
        const file_proto *f = find_file(req, req->file_to_generate[i]);
        if (!f)
            return fail(c, text_pool_printf(c->pool,
                                            "%s: not among the request's files",
                                            req->file_to_generate[i]));
        if (emit_one(c, f, out) < 0) return -1;
    }
    return 0;
}

int emit_run(const Google__Protobuf__Compiler__CodeGeneratorRequest *req,
             text_pool *pool, emit_result *out)
{
    ctx c = {.pool = pool};
    out->files = NULL;
    out->n_files = 0;
    out->error = NULL;
    int rc = run(&c, req, out);
    if (rc == 0 && pool->oom) rc = oom(&c);
    free(c.types);
    free(c.idents);
    if (rc < 0) {
        out->n_files = 0;
        out->error = c.error ? c.error : "out of memory";
    }
    return rc;
}
