/* gw_route.c: the route table matcher and the REST query arguments (see
 * gw_route.h). A path is walked segment by segment against each pattern;
 * nothing is allocated. */
#include "gw_route.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Next '/'-separated segment of *p: its start and length; *p moves past it.
 * 0 at the end. */
static int next_seg(const char **p, const char **seg, size_t *len)
{
    const char *s = *p;
    if (*s == '/') s++;
    if (*s == '\0') return 0;
    size_t n = strcspn(s, "/");
    *seg = s;
    *len = n;
    *p = s + n;
    return 1;
}

/* 1 if path matches pattern; args filled. */
static int match_path(const char *pattern, const char *path,
                      gw_route_args *args)
{
    const char *pp = pattern, *sp = path;
    const char *pseg = NULL, *sseg = NULL;
    size_t plen = 0, slen = 0;
    args->n = 0;
    for (;;) {
        int hp = next_seg(&pp, &pseg, &plen);
        int hs = next_seg(&sp, &sseg, &slen);
        if (!hp || !hs) {
            /* both ended; a trailing '/' of the path is allowed */
            return !hp && !hs && (*sp == '\0' || strcmp(sp, "/") == 0);
        }
        if (plen >= 2 && pseg[0] == '{' && pseg[plen - 1] == '}') {
            if (slen == 0 || args->n == GW_ROUTE_MAX_ARGS) return 0;
            size_t k = args->n++;
            args->a[k].name = pseg + 1;
            args->a[k].name_len = plen - 2;
            args->a[k].too_long = slen > GW_ROUTE_ARG_MAX;
            size_t c = slen > GW_ROUTE_ARG_MAX ? GW_ROUTE_ARG_MAX : slen;
            memcpy(args->a[k].value, sseg, c);
            args->a[k].value[c] = '\0';
        } else if (plen != slen || memcmp(pseg, sseg, plen) != 0) {
            return 0;
        }
    }
}

int gw_route_match(const gw_route *t, size_t n, const char *method,
                   const char *path, gw_route_args *args, char *allow,
                   size_t allow_cap)
{
    int path_seen = 0;
    size_t used = 0;
    if (allow_cap) allow[0] = '\0';
    /* "//" anywhere would make an empty segment: no route has one */
    if (path[0] != '/' || strstr(path, "//")) return GW_ROUTE_NOT_FOUND;
    for (size_t i = 0; i < n; i++) {
        gw_route_args tmp;
        if (!match_path(t[i].pattern, path, &tmp)) continue;
        if (strcmp(t[i].method, method) == 0) {
            *args = tmp;
            return (int)i;
        }
        path_seen = 1;
        if (allow_cap && !strstr(allow, t[i].method)) {
            int w = snprintf(allow + used, allow_cap - used, "%s%s",
                             used ? ", " : "", t[i].method);
            if (w > 0 && (size_t)w < allow_cap - used) used += (size_t)w;
        }
    }
    return path_seen ? GW_ROUTE_BAD_METHOD : GW_ROUTE_NOT_FOUND;
}

const char *gw_route_arg(const gw_route_args *args, const char *name,
                         int *too_long)
{
    size_t nl = strlen(name);
    assert(args->n <= GW_ROUTE_MAX_ARGS);
    for (size_t i = 0; i < args->n; i++)
        if (args->a[i].name_len == nl &&
            memcmp(args->a[i].name, name, nl) == 0) {
            if (too_long) *too_long = args->a[i].too_long;
            return args->a[i].value;
        }
    return NULL;
}

int gw_route_u64(const char *s, uint64_t *out)
{
    char *end;
    if (!s || *s < '0' || *s > '9') return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

parley_err gw_route_paging(const char *after, const char *before,
                           const char *limit, int *cursor, uint64_t *value,
                           uint32_t *limit_out, char *detail, size_t cap)
{
    uint64_t v;
    *cursor = 0;
    *value = 0;
    *limit_out = 0;
    if (after && before) {
        snprintf(detail, cap, "give after or before, not both");
        return PARLEY_ERR_BAD_CURSOR;
    }
    if (after || before) {
        if (gw_route_u64(after ? after : before, &v) < 0) {
            snprintf(detail, cap, "%s must be a decimal %s",
                     after ? "after" : "before", after ? "rev" : "seq");
            return PARLEY_ERR_BAD_CURSOR;
        }
        *cursor = after ? 1 : 2;
        *value = v;
    }
    if (limit) {
        if (gw_route_u64(limit, &v) < 0 || v > UINT32_MAX) {
            snprintf(detail, cap, "limit must be a decimal number");
            return PARLEY_ERR_BAD_CURSOR;
        }
        *limit_out = (uint32_t)v;
    }
    return PARLEY_OK;
}
