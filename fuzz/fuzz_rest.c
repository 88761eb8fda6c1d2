/* fuzz_rest: REST routing and query parsing (gateway/gw_route.c) on the
 * gateway's route patterns. The input is "METHOD PATH?QUERY" (split at the
 * first space and '?'); the path is matched against the table, each
 * argument read back, the query's after/before/limit parsed. Invariants: a
 * match's arguments are NUL-terminated and within their bound; a 405 names
 * at least one method; paging succeeds only with at most one cursor. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gw_route.h"

static void h(void) {}

/* The patterns of gateway/gw_rest.c's rest_routes. */
static const gw_route T[] = {
    {"POST", "/v1/rooms", h},
    {"GET", "/v1/rooms/{room}", h},
    {"GET", "/v1/rooms/{room}/messages", h},
    {"GET", "/v1/rooms/{room}/messages/{seq}", h},
    {"PATCH", "/v1/rooms/{room}/messages/{seq}", h},
    {"DELETE", "/v1/rooms/{room}/messages/{seq}", h},
};

/* The value of name= in an &-separated query, copied into buf; NULL. */
static const char *qarg(const char *q, const char *name, char *buf, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *p = q; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
            size_t vl = len - nl - 1;
            if (vl >= cap) vl = cap - 1;
            memcpy(buf, p + nl + 1, vl);
            buf[vl] = '\0';
            return buf;
        }
        p = amp ? amp + 1 : NULL;
    }
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384) return 0;
    char *in = malloc(size + 1);
    memcpy(in, data, size);
    in[size] = '\0'; /* lws hands over C strings: a NUL ends the input */
    char *sp = strchr(in, ' ');
    const char *method = "GET", *path = in;
    if (sp) {
        *sp = '\0';
        method = in;
        path = sp + 1;
    }
    char *q = strchr(path, '?');
    if (q) *q++ = '\0';
    gw_route_args args;
    char allow[64];
    int r = gw_route_match(T, sizeof T / sizeof T[0], method, path, &args,
                           allow, sizeof allow);
    if (r >= 0) {
        assert((size_t)r < sizeof T / sizeof T[0]);
        assert(strcmp(T[r].method, method) == 0);
        for (size_t i = 0; i < args.n; i++)
            assert(strlen(args.a[i].value) <= GW_ROUTE_ARG_MAX);
        int tl;
        const char *room = gw_route_arg(&args, "room", &tl);
        assert(r == 0 || room != NULL);
        uint64_t seq;
        const char *s = gw_route_arg(&args, "seq", NULL);
        if (s) (void)gw_route_u64(s, &seq);
    } else if (r == GW_ROUTE_BAD_METHOD) {
        assert(allow[0] != '\0');
    } else {
        assert(r == GW_ROUTE_NOT_FOUND);
    }
    if (q) {
        char b1[64], b2[64], b3[64], detail[100];
        const char *after = qarg(q, "after", b1, sizeof b1);
        const char *before = qarg(q, "before", b2, sizeof b2);
        const char *limit = qarg(q, "limit", b3, sizeof b3);
        int cur;
        uint64_t v;
        uint32_t lim;
        parley_err e = gw_route_paging(after, before, limit, &cur, &v, &lim,
                                       detail, sizeof detail);
        assert(e == PARLEY_OK || e == PARLEY_ERR_BAD_CURSOR);
        if (e == PARLEY_OK) assert(!(after && before) && cur >= 0 && cur <= 2);
    }
    free(in);
    return 0;
}
