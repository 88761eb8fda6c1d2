/* gw_route.h: matching an HTTP method and path against a table of routes
 * ("/v1/rooms/{room}/messages/{seq}"), and reading the REST query
 * arguments. Pure functions on strings, no lws and no upstream, so the REST
 * routing can be unit-tested and fuzzed on its own (fuzz/). */
#ifndef GW_ROUTE_H
#define GW_ROUTE_H

#include <stddef.h>
#include <stdint.h>
#include "errors.h"

#define GW_ROUTE_MAX_ARGS 4
#define GW_ROUTE_ARG_MAX 128 /* bytes of one {name} segment kept */

/* One route: a method and a pattern of '/'-separated segments, each a
 * literal or "{name}" (one whole segment). A trailing '/' in the request
 * path is ignored. `handler` is the caller's, never looked at here. */
typedef struct gw_route {
    const char *method;
    const char *pattern;
    void (*handler)(void);
} gw_route;

/* The {name} segments of a matched path, in pattern order. A segment
 * longer than GW_ROUTE_ARG_MAX bytes is kept cut, with too_long set, so the
 * caller can refuse it as what it names (a room name too long, say). */
typedef struct gw_route_args {
    size_t n;
    struct {
        const char *name; /* points into the pattern, not NUL-terminated */
        size_t name_len;
        char value[GW_ROUTE_ARG_MAX + 1];
        int too_long;
    } a[GW_ROUTE_MAX_ARGS];
} gw_route_args;

enum { GW_ROUTE_NOT_FOUND = -404, GW_ROUTE_BAD_METHOD = -405 };

/* The index of the route matching method and path (path without its query),
 * with its arguments in *args. GW_ROUTE_NOT_FOUND when no pattern matches
 * the path; GW_ROUTE_BAD_METHOD when one does but not with this method, and
 * then `allow` holds the methods it takes ("GET, PATCH, DELETE"). */
int gw_route_match(const gw_route *t, size_t n, const char *method,
                   const char *path, gw_route_args *args, char *allow,
                   size_t allow_cap);

/* The value of argument name in args, or NULL. */
const char *gw_route_arg(const gw_route_args *args, const char *name,
                         int *too_long);

/* A decimal uint64 without sign, spaces or leading '+'; -1 if s is not one
 * or is over the range. */
int gw_route_u64(const char *s, uint64_t *out);

/* The ListMessages paging of a REST query: after=REV or before=SEQ (not
 * both), limit=N. Each argument NULL when absent. Fills *cursor (0 none,
 * 1 after, 2 before), *value and *limit (0: the core's default). PARLEY_OK
 * or BAD_CURSOR with a reason in detail. */
parley_err gw_route_paging(const char *after, const char *before,
                           const char *limit, int *cursor, uint64_t *value,
                           uint32_t *limit_out, char *detail, size_t cap);

#endif
