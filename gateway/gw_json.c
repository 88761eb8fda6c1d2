/* gw_json.c: the generic proto3-JSON codec of the gateway. It walks
 * ProtobufCMessageDescriptor / ProtobufCFieldDescriptor tables, so it knows
 * no parley message by name. Encoding follows proto3 JSON: lowerCamelCase
 * names, defaults omitted, 64-bit integers as decimal strings, enums by name,
 * bytes as base64. Decoding is lenient where proto3 JSON says parsers must
 * be (both name styles, enum numbers, integers as strings or numbers,
 * unknown fields ignored) and strict on types. */
#include "gw_json.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <libwebsockets.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gw_json_field_name(const char *proto_name, char *out, size_t cap)
{
    size_t o = 0;
    int up = 0;
    if (cap == 0) return;
    for (const char *p = proto_name; *p && o + 1 < cap; p++) {
        if (*p == '_') {
            up = 1;
            continue;
        }
        out[o++] = up ? (char)toupper((unsigned char)*p) : *p;
        up = 0;
    }
    out[o] = '\0';
}

/* ---- base64 ----------------------------------------------------------
 * lws's codec does the work. Its decoder is lenient (it skips characters
 * outside the alphabet), so the text is checked first: proto3 JSON wants
 * bad base64 refused, not read as something else. */

char *gw_base64_encode(const unsigned char *p, size_t n, size_t *outlen)
{
    if (n > INT_MAX / 2) return NULL;
    size_t len = 4 * ((n + 2) / 3);
    /* lws wants a byte to spare past the NUL */
    char *s = malloc(len + 2);
    if (!s) return NULL;
    int w = lws_b64_encode_string((const char *)p, (int)n, s, (int)len + 2);
    if (w < 0 || (size_t)w != len) {
        free(s);
        return NULL;
    }
    if (outlen) *outlen = len;
    return s;
}

/* Standard or URL-safe alphabet, then at most two '=' that complete the
 * last quad; the length without them is never 1 mod 4. */
static int b64_valid(const char *s, size_t n, size_t *data_len)
{
    size_t pad = 0;
    while (n > 0 && s[n - 1] == '=' && pad < 2) {
        n--;
        pad++;
    }
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && (!s[i] || !strchr("+/-_", s[i])))
            return 0;
    if (n % 4 == 1 || (pad && (n + pad) % 4 != 0)) return 0;
    *data_len = n;
    return 1;
}

int gw_base64_decode(const char *s, size_t n, unsigned char **out,
                     size_t *outlen)
{
    size_t len;
    if (n > INT_MAX / 2 || !b64_valid(s, n, &len)) return -1;
    /* lws writes a NUL after the bytes and wants room past them */
    size_t cap = len / 4 * 3 + 8;
    unsigned char *b = malloc(cap);
    if (!b) return -1;
    int got =
        len ? lws_b64_decode_string_len(s, (int)len, (char *)b, (int)cap) : 0;
    if (got < 0 || (size_t)got > len / 4 * 3 + 2) {
        free(b);
        return -1;
    }
    *out = b;
    *outlen = (size_t)got;
    return 0;
}

/* ---- encoding -------------------------------------------------------- */

static json_t *scalar_to_json(const ProtobufCFieldDescriptor *f, const void *p)
{
    char num[32];
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: return json_integer(*(const int32_t *)p);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: return json_integer(*(const uint32_t *)p);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        snprintf(num, sizeof num, "%" PRId64, *(const int64_t *)p);
        return json_string(num);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        snprintf(num, sizeof num, "%" PRIu64, *(const uint64_t *)p);
        return json_string(num);
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE: {
        double d = f->type == PROTOBUF_C_TYPE_FLOAT ? *(const float *)p
                                                    : *(const double *)p;
        if (isnan(d)) return json_string("NaN");
        if (isinf(d)) return json_string(d > 0 ? "Infinity" : "-Infinity");
        return json_real(d);
    }
    case PROTOBUF_C_TYPE_BOOL:
        return json_boolean(*(const protobuf_c_boolean *)p);
    case PROTOBUF_C_TYPE_ENUM: {
        int v = *(const int *)p;
        const ProtobufCEnumValue *ev =
            protobuf_c_enum_descriptor_get_value(f->descriptor, v);
        return ev ? json_string(ev->name) : json_integer(v);
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return json_string(s ? s : "");
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *bd = p;
        char *s = gw_base64_encode(bd->data, bd->len, NULL);
        if (!s) return NULL;
        json_t *j = json_string(s);
        free(s);
        return j;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *m = *(ProtobufCMessage *const *)p;
        return m ? gw_json_from_msg(m) : json_null();
    }
    }
    return NULL;
}

static size_t elem_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_ENUM: return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE: return 8;
    case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING: return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE: return sizeof(ProtobufCMessage *);
    }
    return 0;
}

/* 1 if the implicit-presence field at p holds its proto3 default. */
static int is_default(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return !s || !*s;
    }
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)p)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE: return *(ProtobufCMessage *const *)p == NULL;
    case PROTOBUF_C_TYPE_FLOAT: return *(const float *)p == 0;
    case PROTOBUF_C_TYPE_DOUBLE: return *(const double *)p == 0;
    default: {
        size_t n = elem_size(f->type);
        static const unsigned char zero[8];
        return memcmp(p, zero, n) == 0;
    }
    }
}

json_t *gw_json_from_msg(const ProtobufCMessage *msg)
{
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    const char *base = (const char *)msg;
    json_t *obj = json_object();
    if (!obj) return NULL;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const void *p = base + f->offset;
        char name[128];
        json_t *v = NULL;
        gw_json_field_name(f->name, name, sizeof name);
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            if (n == 0) continue;
            const char *arr = *(char *const *)p;
            size_t es = elem_size(f->type);
            v = json_array();
            for (size_t k = 0; v && k < n; k++) {
                json_t *e = scalar_to_json(f, arr + k * es);
                if (!e || json_array_append_new(v, e) < 0) {
                    json_decref(v);
                    v = NULL;
                }
            }
        } else if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (*(const uint32_t *)(base + f->quantifier_offset) != f->id)
                continue;
            v = scalar_to_json(f, p);
        } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL &&
                   f->quantifier_offset) {
            if (!*(const protobuf_c_boolean *)(base + f->quantifier_offset))
                continue;
            v = scalar_to_json(f, p);
        } else {
            if (f->label != PROTOBUF_C_LABEL_REQUIRED && is_default(f, p))
                continue;
            v = scalar_to_json(f, p);
        }
        if (!v || json_object_set_new(obj, name, v) < 0) {
            json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

char *gw_json_encode(const ProtobufCMessage *msg, size_t *len)
{
    json_t *j = gw_json_from_msg(msg);
    if (!j) return NULL;
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (s && len) *len = strlen(s);
    return s;
}

/* ---- decoding -------------------------------------------------------- */

typedef struct dctx {
    char *detail;
    size_t cap;
} dctx;

static parley_err bad(dctx *c, const char *field, const char *what)
{
    if (c->detail && c->cap)
        snprintf(c->detail, c->cap, "field %s: %s", field, what);
    return PARLEY_ERR_MALFORMED;
}

static const ProtobufCFieldDescriptor *
find_field(const ProtobufCMessageDescriptor *d, const char *key)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(d, key);
    if (f) return f;
    for (unsigned i = 0; i < d->n_fields; i++) {
        char name[128];
        gw_json_field_name(d->fields[i].name, name, sizeof name);
        if (strcmp(name, key) == 0) return &d->fields[i];
    }
    return NULL;
}

/* An integer from a JSON number or a decimal string. */
static int json_int(json_t *v, int is_signed, int64_t *s_out, uint64_t *u_out)
{
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (!is_signed && i < 0) return -1;
        *s_out = i;
        *u_out = (uint64_t)i;
        return 0;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d != floor(d) || (!is_signed && d < 0) || fabs(d) > 1.8e19)
            return -1;
        if (is_signed) {
            if (d < -9.2e18 || d > 9.2e18) return -1;
            *s_out = (int64_t)d;
        } else {
            *u_out = (uint64_t)d;
        }
        return 0;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        if (!*s || isspace((unsigned char)*s)) return -1;
        errno = 0;
        if (is_signed) {
            long long x = strtoll(s, &end, 10);
            if (errno || *end) return -1;
            *s_out = x;
        } else {
            if (*s == '-') return -1;
            unsigned long long x = strtoull(s, &end, 10);
            if (errno || *end) return -1;
            *u_out = x;
        }
        return 0;
    }
    return -1;
}

static parley_err json_to_scalar(dctx *c, const ProtobufCFieldDescriptor *f,
                                 json_t *v, void *p, const char *key)
{
    int64_t s = 0;
    uint64_t u = 0;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if (json_int(v, 1, &s, &u) < 0 || s < INT32_MIN || s > INT32_MAX)
            return bad(c, key, "expected a 32-bit integer");
        *(int32_t *)p = (int32_t)s;
        return PARLEY_OK;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (json_int(v, 0, &s, &u) < 0 || u > UINT32_MAX)
            return bad(c, key, "expected an unsigned 32-bit integer");
        *(uint32_t *)p = (uint32_t)u;
        return PARLEY_OK;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if (json_int(v, 1, &s, &u) < 0)
            return bad(c, key, "expected a 64-bit integer");
        *(int64_t *)p = s;
        return PARLEY_OK;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if (json_int(v, 0, &s, &u) < 0)
            return bad(c, key, "expected an unsigned 64-bit integer");
        *(uint64_t *)p = u;
        return PARLEY_OK;
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE: {
        double d;
        if (json_is_number(v)) {
            d = json_number_value(v);
        } else if (json_is_string(v)) {
            const char *str = json_string_value(v);
            if (!strcmp(str, "NaN"))
                d = NAN;
            else if (!strcmp(str, "Infinity"))
                d = INFINITY;
            else if (!strcmp(str, "-Infinity"))
                d = -INFINITY;
            else {
                char *end;
                d = strtod(str, &end);
                if (!*str || *end) return bad(c, key, "expected a number");
            }
        } else {
            return bad(c, key, "expected a number");
        }
        if (f->type == PROTOBUF_C_TYPE_FLOAT)
            *(float *)p = (float)d;
        else
            *(double *)p = d;
        return PARLEY_OK;
    }
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_is_boolean(v)) return bad(c, key, "expected true or false");
        *(protobuf_c_boolean *)p = json_is_true(v);
        return PARLEY_OK;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *ed = f->descriptor;
        if (json_is_string(v)) {
            const ProtobufCEnumValue *ev =
                protobuf_c_enum_descriptor_get_value_by_name(
                    ed, json_string_value(v));
            if (!ev) return bad(c, key, "unknown enum name");
            *(int *)p = ev->value;
            return PARLEY_OK;
        }
        if (json_int(v, 1, &s, &u) < 0 || s < INT32_MIN || s > INT32_MAX)
            return bad(c, key, "expected an enum name or number");
        *(int *)p = (int)s;
        return PARLEY_OK;
    }
    case PROTOBUF_C_TYPE_STRING: {
        if (!json_is_string(v)) return bad(c, key, "expected a string");
        char *str = malloc(json_string_length(v) + 1);
        if (!str) return PARLEY_ERR_INTERNAL;
        memcpy(str, json_string_value(v), json_string_length(v) + 1);
        *(char **)p = str;
        return PARLEY_OK;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData *bd = p;
        if (!json_is_string(v)) return bad(c, key, "expected base64 text");
        if (gw_base64_decode(json_string_value(v), json_string_length(v),
                             &bd->data, &bd->len) < 0)
            return bad(c, key, "bad base64");
        return PARLEY_OK;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        ProtobufCMessage *m = NULL;
        if (!json_is_object(v)) return bad(c, key, "expected an object");
        parley_err e = gw_json_to_msg(f->descriptor, v, &m, c->detail, c->cap);
        if (e == PARLEY_OK) *(ProtobufCMessage **)p = m;
        return e;
    }
    }
    return bad(c, key, "unsupported type");
}

parley_err gw_json_to_msg(const ProtobufCMessageDescriptor *d, json_t *obj,
                          ProtobufCMessage **out, char *detail, size_t cap)
{
    dctx c = {detail, cap};
    const char *key;
    json_t *v;
    parley_err e = PARLEY_OK;

    *out = NULL;
    if (!json_is_object(obj))
        return bad(&c, d->short_name, "expected an object");
    ProtobufCMessage *msg = malloc(d->sizeof_message);
    if (!msg) return PARLEY_ERR_INTERNAL;
    d->message_init(msg);
    char *base = (char *)msg;

    json_object_foreach(obj, key, v)
    {
        const ProtobufCFieldDescriptor *f = find_field(d, key);
        if (!f || json_is_null(v))
            continue; /* unknown fields are ignored; null is the default */
        void *p = base + f->offset;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t *np = (size_t *)(base + f->quantifier_offset);
            if (!json_is_array(v)) {
                e = bad(&c, key, "expected an array");
                break;
            }
            if (*np) {
                e = bad(&c, key, "given twice");
                break;
            }
            size_t n = json_array_size(v), es = elem_size(f->type);
            if (n == 0) continue;
            char *arr = calloc(n, es);
            if (!arr) {
                e = PARLEY_ERR_INTERNAL;
                break;
            }
            *(char **)p = arr;
            for (size_t k = 0; k < n && e == PARLEY_OK; k++) {
                e = json_to_scalar(&c, f, json_array_get(v, k), arr + k * es,
                                   key);
                if (e == PARLEY_OK)
                    (*np)++; /* count only filled slots so free is exact */
            }
            if (e != PARLEY_OK) break;
            continue;
        }
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t *cs = (uint32_t *)(base + f->quantifier_offset);
            if (*cs != 0) {
                e = bad(&c, key, "more than one member of a oneof");
                break;
            }
            if ((e = json_to_scalar(&c, f, v, p, key)) != PARLEY_OK) break;
            *cs = f->id;
            continue;
        }
        /* A field given twice under both names: free the first value. */
        if (f->type == PROTOBUF_C_TYPE_STRING) {
            char *old = *(char **)p;
            if (old && old != (const char *)f->default_value) {
                e = bad(&c, key, "given twice");
                break;
            }
        } else if (f->type == PROTOBUF_C_TYPE_MESSAGE && *(void **)p) {
            e = bad(&c, key, "given twice");
            break;
        } else if (f->type == PROTOBUF_C_TYPE_BYTES &&
                   ((ProtobufCBinaryData *)p)->data) {
            e = bad(&c, key, "given twice");
            break;
        }
        if ((e = json_to_scalar(&c, f, v, p, key)) != PARLEY_OK) break;
        if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset)
            *(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
    }
    if (e != PARLEY_OK) {
        protobuf_c_message_free_unpacked(msg, NULL);
        return e;
    }
    *out = msg;
    return PARLEY_OK;
}

parley_err gw_json_decode(const ProtobufCMessageDescriptor *d, const char *text,
                          size_t len, ProtobufCMessage **out, char *detail,
                          size_t cap)
{
    json_error_t err;
    *out = NULL;
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    if (!j) {
        if (detail && cap) snprintf(detail, cap, "bad JSON: %s", err.text);
        /* "\u0000" in a string is refused (jansson without
         * JSON_ALLOW_NUL) with the code the binary wire gives a NUL */
        return json_error_code(&err) == json_error_invalid_utf8 ||
                       json_error_code(&err) == json_error_null_character
                   ? PARLEY_ERR_INVALID_UTF8
                   : PARLEY_ERR_MALFORMED;
    }
    parley_err e = gw_json_to_msg(d, j, out, detail, cap);
    json_decref(j);
    return e;
}
