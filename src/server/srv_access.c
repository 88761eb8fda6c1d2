/* srv_access.c: the access check every parley.v1 call makes before it
 * reads or changes a room (core/access.h decides; this file brings the
 * room and the caller's standing from the store: the loop's handle, a
 * reader thread's, or the writer's inside the commit's transaction), how a refusal is told
 * (PERMISSION_DENIED with the rule in the `parley-rule` trailer or
 * Error.rule, and a detail that names it), and the caller's own view of a
 * room (Room.me). */
#include "srv.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

access_who srv_who(const auth_identity *who, const char *room)
{
    access_who w = {auth_room_role(who, room), who->service};
    return w;
}

parley_err srv_check(srv *s, const auth_identity *who, const char *room,
                     access_op op, int own, srv_grant *g)
{
    return srv_check_on(s->db, who, room, op, own, g);
}

parley_err srv_check_on(store *db, const auth_identity *who, const char *room,
                        access_op op, int own, srv_grant *g)
{
    parley_room r;
    parley_standing st;
    memset(&r, 0, sizeof r);
    memset(&st, 0, sizeof st);
    parley_err e = store_room_access(db, room, who->id, &r, &st);
    return srv_check_rows(who, room, e, &r, &st, op, own, g);
}

parley_err srv_check_rows(const auth_identity *who, const char *room,
                          parley_err found, const parley_room *r,
                          const parley_standing *st, access_op op, int own,
                          srv_grant *g)
{
    memset(g, 0, sizeof *g);
    if (found == PARLEY_OK) {
        g->room = *r;
        g->st = *st;
    }
    access_who w = srv_who(who, room);
    parley_err e = found;
    if (e == PARLEY_ERR_ROOM_NOT_FOUND && w.token_role == 0 && !w.service) {
        /* Nothing grants this name: say so rather than whether it exists. */
        g->rule = PARLEY_RULE_NOT_GRANTED;
        return PARLEY_ERR_PERMISSION_DENIED;
    }
    if (e != PARLEY_OK) return e;
    g->role = access_role(&w, &g->st);
    g->rule = access_decide(&w, &g->room, &g->st, op, own, clock_wall_ms());
    return g->rule == PARLEY_RULE_NONE ? PARLEY_OK
                                       : PARLEY_ERR_PERMISSION_DENIED;
}

void srv_rule_detail(parley_rule rule, const parley_standing *st, char *buf,
                     size_t n)
{
    int64_t until = 0;
    if (rule == PARLEY_RULE_MUTED && st) until = st->muted_until_ms;
    if (rule == PARLEY_RULE_REMOVED && st) until = st->removed_until_ms;
    if (until > 0) {
        time_t t = (time_t)(until / 1000);
        struct tm tm;
        char when[32];
        gmtime_r(&t, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        snprintf(buf, n, "%s until %s (rule %s)", parley_rule_text(rule), when,
                 parley_rule_name(rule));
    } else {
        snprintf(buf, n, "%s (rule %s)", parley_rule_text(rule),
                 parley_rule_name(rule));
    }
}

void srv_fail_check(rpc_call *c, srv *s, parley_err e, const srv_grant *g)
{
    srv_fail_check_on(c, s->db, e, g);
}

void srv_fail_check_on(rpc_call *c, store *db, parley_err e, const srv_grant *g)
{
    char detail[200];
    if (e == PARLEY_ERR_PERMISSION_DENIED) {
        srv_rule_detail(g->rule, &g->st, detail, sizeof detail);
        rpc_fail_rule(c, e, g->rule, detail);
    } else {
        srv_fail_store(c, db, e);
    }
}

int srv_admit_on(auth_cache *ac, store *db, rpc_call *c, const char *room,
                 access_op op, auth_identity *who, srv_grant *g)
{
    if (srv_authenticate_with(ac, c, who)) return -1;
    parley_err e = srv_check_on(db, who, room, op, 0, g);
    if (e) {
        srv_fail_check_on(c, db, e, g);
        return -1;
    }
    return 0;
}

void srv_send_check_error(rpc_call *c, uint64_t request_id, parley_err e,
                          const srv_grant *g)
{
    char detail[200];
    if (e == PARLEY_ERR_PERMISSION_DENIED) {
        srv_rule_detail(g->rule, &g->st, detail, sizeof detail);
        srv_send_error_rule(c, request_id, e, g->rule, detail, 0);
    } else {
        srv_send_error(
            c, request_id, e == PARLEY_ERR_IO ? PARLEY_ERR_INTERNAL : e,
            e == PARLEY_ERR_ROOM_NOT_FOUND                   ? "no such room"
            : e == PARLEY_ERR_INTERNAL || e == PARLEY_ERR_IO ? "storage failure"
                                                             : NULL,
            0);
    }
}

void srv_pb_room_as(const srv *s, store *db, const auth_identity *who,
                    const parley_room *room, const parley_standing *st,
                    srv_room_pb *out)
{
    access_view v;
    srv_view_on(db, who, room, st, &v);
    srv_pb_room(s, &out->room, room);
    srv_pb_access(&out->me, &v);
    out->room.me = &out->me;
}

void srv_pb_access(Parley__V1__RoomAccess *out, const access_view *v)
{
    parley__v1__room_access__init(out);
    out->role = (Parley__V1__Role)v->role;
    out->member = v->member ? 1 : 0;
    out->can_post = v->can_post ? 1 : 0;
    out->post_rule = (Parley__V1__Rule)v->post_rule;
    out->muted = v->muted ? 1 : 0;
    out->muted_until_ms = v->muted_until_ms;
    out->last_read_seq = v->last_read_seq;
    out->last_read_rev = v->last_read_rev;
    out->unread_count = v->unread;
}

void srv_view(srv *s, const auth_identity *who, const parley_room *room,
              const parley_standing *st, access_view *out)
{
    srv_view_on(s->db, who, room, st, out);
}

void srv_view_on(store *db, const auth_identity *who, const parley_room *room,
                 const parley_standing *st, access_view *out)
{
    access_who w = srv_who(who, room->name);
    access_view_of(&w, room, st, clock_wall_ms(), out);
    unsigned n = 0;
    /* A count that cannot be read is left 0 rather than failing the call
     * that shows the room. */
    if (out->role != 0 &&
        store_unread_count(db, room->name, who->id, out->last_read_seq,
                           SRV_UNREAD_CAP, &n) == PARLEY_OK)
        out->unread = n;
}
