/* access.c: the access decisions of the core (see access.h): the grants of
 * a token's `rooms` claim, and who may read, post, edit, delete, moderate
 * and create in a room. Pure functions; the caller brings the room and the
 * stored standing. */
#include "access.h"

#include <assert.h>
#include <jansson.h>
#include <string.h>

int access_pattern_valid(const char *p)
{
    if (p == NULL) return 0;
    size_t len = strnlen(p, ACCESS_PATTERN_MAX + 1);
    if (len == 0 || len > ACCESS_PATTERN_MAX) return 0;
    if (p[len - 1] != '*') return rules_room(p) == PARLEY_OK;
    /* A prefix: room characters only, and no other '*'. */
    for (size_t i = 0; i + 1 < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

parley_err access_grants_parse(const json_t *rooms, access_grants *out)
{
    const char *key;
    json_t *val;

    memset(out, 0, sizeof *out);
    if (!json_is_object(rooms)) return PARLEY_ERR_UNAUTHENTICATED;
    if (json_object_size(rooms) > ACCESS_GRANTS_MAX)
        return PARLEY_ERR_UNAUTHENTICATED;
    /* jansson's iteration macro wants a non-const object; it only reads. */
    json_object_foreach((json_t *)rooms, key, val)
    {
        const char *role_name = json_string_value(val);
        int role = parley_role_parse(role_name);
        if (!access_pattern_valid(key) || role == 0 ||
            strlen(role_name) != json_string_length(val)) {
            memset(out, 0, sizeof *out);
            return PARLEY_ERR_UNAUTHENTICATED;
        }
        assert(out->n < ACCESS_GRANTS_MAX); /* the size check above */
        access_grant *g = &out->g[out->n++];
        memcpy(g->pattern, key, strlen(key) + 1);
        g->role = role;
    }
    out->present = 1;
    return PARLEY_OK;
}

int access_grants_role(const access_grants *g, const char *room)
{
    int role = 0;
    size_t best = 0; /* length of the best prefix so far, + 1 */
    size_t rlen = strlen(room);

    for (unsigned i = 0; i < g->n; i++) {
        const access_grant *a = &g->g[i];
        size_t plen = strlen(a->pattern);
        assert(plen > 0);
        if (a->pattern[plen - 1] != '*') {
            if (strcmp(a->pattern, room) == 0) return a->role; /* exact */
            continue;
        }
        size_t pre = plen - 1;
        if (pre <= rlen && memcmp(a->pattern, room, pre) == 0 &&
            pre + 1 > best) {
            best = pre + 1;
            role = a->role;
        }
    }
    return role;
}

int access_muted(const parley_standing *st, int64_t now_ms)
{
    return st && st->muted &&
           (st->muted_until_ms == 0 || st->muted_until_ms > now_ms);
}

int access_removed(const parley_standing *st, int64_t now_ms)
{
    return st && st->removed &&
           (st->removed_until_ms == 0 || st->removed_until_ms > now_ms);
}

int access_role(const access_who *who, const parley_standing *st)
{
    int role = who->token_role;
    if (st && st->member_role > role) role = st->member_role;
    return role;
}

/* May the caller read the room at all? */
static parley_rule access_read(const access_who *who, const parley_room *room,
                               const parley_standing *st, int role,
                               int64_t now_ms)
{
    if (who->service) return PARLEY_RULE_NONE;
    if (role == 0) return PARLEY_RULE_NOT_GRANTED;
    if (role == PARLEY_ROLE_ORGANIZER) return PARLEY_RULE_NONE;
    if (access_removed(st, now_ms)) return PARLEY_RULE_REMOVED;
    if (room->visibility == PARLEY_VIS_MEMBERS && !(st && st->member_role != 0))
        return PARLEY_RULE_MEMBERS_ONLY;
    return PARLEY_RULE_NONE;
}

/* May a reader post (or edit) now? */
static parley_rule access_write(const parley_room *room,
                                const parley_standing *st, int role,
                                int64_t now_ms)
{
    if (room->mode == PARLEY_MODE_CLOSED) return PARLEY_RULE_ROOM_CLOSED;
    if (role == PARLEY_ROLE_ORGANIZER) return PARLEY_RULE_NONE;
    if (room->mode == PARLEY_MODE_ANNOUNCEMENTS)
        return PARLEY_RULE_ANNOUNCEMENTS;
    if (access_muted(st, now_ms)) return PARLEY_RULE_MUTED;
    return PARLEY_RULE_NONE;
}

parley_rule access_decide(const access_who *who, const parley_room *room,
                          const parley_standing *st, access_op op, int own,
                          int64_t now_ms)
{
    if (op == ACCESS_CREATE) {
        if (who->service) return PARLEY_RULE_SERVICE_READ_ONLY;
        return who->token_role == PARLEY_ROLE_ORGANIZER
                   ? PARLEY_RULE_NONE
                   : PARLEY_RULE_ORGANIZER_ONLY;
    }
    assert(room != NULL);
    int role = access_role(who, st);
    parley_rule r = access_read(who, room, st, role, now_ms);
    if (r != PARLEY_RULE_NONE || op == ACCESS_READ) return r;
    if (who->service) return PARLEY_RULE_SERVICE_READ_ONLY;
    int org = role == PARLEY_ROLE_ORGANIZER;
    switch (op) {
    case ACCESS_POST: return access_write(room, st, role, now_ms);
    case ACCESS_EDIT:
        if (!own && !org) return PARLEY_RULE_ORGANIZER_ONLY;
        return access_write(room, st, role, now_ms);
    case ACCESS_DELETE:
        return own || org ? PARLEY_RULE_NONE : PARLEY_RULE_ORGANIZER_ONLY;
    case ACCESS_MODERATE:
        return org ? PARLEY_RULE_NONE : PARLEY_RULE_ORGANIZER_ONLY;
    default:
        assert(0 && "access_decide: unknown op");
        return PARLEY_RULE_NOT_GRANTED;
    }
}

void access_view_of(const access_who *who, const parley_room *room,
                    const parley_standing *st, int64_t now_ms, access_view *out)
{
    memset(out, 0, sizeof *out);
    out->role = access_role(who, st);
    out->member = st && st->member_role != 0;
    out->post_rule = access_decide(who, room, st, ACCESS_POST, 0, now_ms);
    out->can_post = out->post_rule == PARLEY_RULE_NONE;
    out->muted = out->role != PARLEY_ROLE_ORGANIZER && access_muted(st, now_ms);
    out->muted_until_ms = out->muted ? st->muted_until_ms : 0;
    if (st) {
        out->last_read_seq = st->last_read_seq;
        out->last_read_rev = st->last_read_rev;
    }
}
