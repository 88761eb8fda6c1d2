/* srv_rooms.c: the Rooms service (room settings, members, moderation,
 * erasure) and room events. Every change is decided by the access rules
 * (srv_check: organizers of the room), stored together with its
 * ModerationAction in one transaction, answered, and then told to the
 * room's live watchers as ServerFrame{room_event}; a change that can take
 * reading away (a removal, a membership ended, members-only visibility, a
 * deleted room) then has every subscription to the room checked again
 * (srv_stream_recheck). The changes are made on the loop through the
 * write handle (s->wdb), after the writer thread's group in flight was
 * committed and answered (srv_write_now); the reads through the loop's.
 * MarkRead, frequent, joins the group commit instead (srv_commit.c). */
#include "srv.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- actions as protobuf, and kept across store calls ---- */

void srv_action_keep(srv_action_copy *k, const parley_action *a)
{
    k->a = *a;
    snprintf(k->room, sizeof k->room, "%s", a->room);
    snprintf(k->actor_id, sizeof k->actor_id, "%s", a->actor.id);
    snprintf(k->actor_name, sizeof k->actor_name, "%s", a->actor.display_name);
    snprintf(k->target, sizeof k->target, "%s",
             a->target_user_id ? a->target_user_id : "");
    snprintf(k->reason, sizeof k->reason, "%s", a->reason ? a->reason : "");
    k->a.room = k->room;
    k->a.actor.id = k->actor_id;
    k->a.actor.display_name = k->actor_name;
    k->a.target_user_id = k->target;
    k->a.reason = k->reason;
}

typedef struct pb_action {
    Parley__V1__ModerationAction msg;
    Parley__V1__Author actor;
} pb_action;

static void srv_pb_action(pb_action *out, const parley_action *a)
{
    parley__v1__moderation_action__init(&out->msg);
    parley__v1__author__init(&out->actor);
    out->actor.id = (char *)a->actor.id;
    out->actor.display_name = (char *)a->actor.display_name;
    out->actor.role = (Parley__V1__Role)a->actor.role;
    out->msg.id = a->id;
    out->msg.room = (char *)a->room;
    out->msg.kind = (Parley__V1__ActionKind)a->kind;
    out->msg.actor = &out->actor;
    out->msg.target_user_id =
        (char *)(a->target_user_id ? a->target_user_id : "");
    out->msg.at_ms = a->at_ms;
    out->msg.until_ms = a->until_ms;
    out->msg.reason = (char *)(a->reason ? a->reason : "");
    out->msg.mode = (Parley__V1__RoomMode)a->mode;
    out->msg.visibility = (Parley__V1__Visibility)a->visibility;
    out->msg.role = (Parley__V1__Role)a->role;
    out->msg.seq = a->seq;
    out->msg.count = a->count;
}

void srv_room_event(srv *s, const parley_action *a, const parley_room *room)
{
    if (!hub_has_live(s->hub, a->room)) return;
    parley_room read, gone;
    if (room == NULL) {
        if (store_room_get(s->db, a->room, &read) == PARLEY_OK) {
            room = &read;
        } else {
            memset(&gone, 0, sizeof gone);
            gone.name = a->room;
            room = &gone;
        }
    }
    pb_action pa;
    srv_pb_action(&pa, a);
    Parley__V1__Room pr;
    srv_pb_room(s, &pr, room);
    Parley__V1__RoomEvent ev = PARLEY__V1__ROOM_EVENT__INIT;
    ev.action = &pa.msg;
    ev.room = &pr;
    Parley__V1__ServerFrame f = PARLEY__V1__SERVER_FRAME__INIT;
    f.kind_case = PARLEY__V1__SERVER_FRAME__KIND_ROOM_EVENT;
    f.room_event = &ev;
    grpc_slice sl = rpc_encode(&f.base);
    hub_publish(s->hub, a->room, sl);
    grpc_slice_unref(sl);
}

/* ---- shared steps ---- */

/* Authenticates and checks that the caller may moderate room (and, for a
 * change, that their writes are within their rate, as every write's); on
 * failure the call is answered and nonzero returned. actor is the caller
 * as an author with their role in the room. */
static int rooms_begin(srv *s, rpc_call *c, const char *room, int write,
                       auth_identity *who, parley_author *actor, srv_grant *g)
{
    if (srv_authenticate(s, c, who)) return -1;
    if (write && srv_refuse_write(s, c, who)) return -1;
    /* A change is made on the loop through the write handle (s->wdb),
     * after the writer's group in flight: checked against, and landing
     * after, everything committed before it. */
    if (write) srv_write_now(s);
    parley_err e = srv_check(s, who, room, ACCESS_MODERATE, 0, g);
    if (e) {
        srv_fail_check(c, s, e, g);
        return -1;
    }
    *actor = auth_author(who);
    actor->role = g->role;
    return 0;
}

/* Ends the transaction of a change: commits after success, else rolls
 * back. Returns the outcome. */
static parley_err rooms_end(srv *s, parley_err e)
{
    if (e == PARLEY_OK) return store_commit(s->wdb);
    store_rollback(s->wdb);
    return e;
}

/* Stores an action of actor in room (in the open transaction) and keeps a
 * copy in k. */
parley_action srv_action_of(const char *room, int kind,
                            const parley_author *actor, const char *target,
                            int64_t now)
{
    parley_action a;
    memset(&a, 0, sizeof a);
    a.room = room;
    a.kind = kind;
    a.actor = *actor;
    a.target_user_id = target;
    a.at_ms = now;
    return a;
}

parley_err srv_action_store(store *db, const parley_action *a,
                            srv_action_copy *k)
{
    parley_action out;
    parley_err e = store_action_append(db, a, &out);
    if (e == PARLEY_OK) srv_action_keep(k, &out);
    return e;
}

/* The room as the caller sees it, for a reply. */
static parley_err room_for(srv *s, const auth_identity *who, const char *name,
                           srv_room_pb *out, parley_room *room)
{
    srv_grant g;
    parley_err e = srv_check(s, who, name, ACCESS_READ, 0, &g);
    /* An organizer who just made the room members-only still reads it; a
     * refusal here only means the view says so. */
    if (e != PARLEY_OK && e != PARLEY_ERR_PERMISSION_DENIED) return e;
    parley_standing st = g.st;
    e = store_room_get(s->db, name, room);
    if (e != PARLEY_OK) return e;
    srv_pb_room_as(s, s->db, who, room, &st, out);
    return PARLEY_OK;
}

/* ---- UpdateRoom ---- */

static void h_update_room(rpc_call *c, const Parley__V1__UpdateRoomRequest *req,
                          void *ud)
{
    srv *s = ud;
    auth_identity who;
    parley_author actor;
    srv_grant g;
    if (rooms_begin(s, c, req->name, 1, &who, &actor, &g)) return;
    parley_room_settings u = {req->title ? req->title->value : NULL,
                              req->topic ? req->topic->value : NULL,
                              (int)req->visibility, (int)req->mode};
    int64_t now = clock_wall_ms();
    srv_action_copy acts[3];
    size_t n = 0;
    unsigned changed = 0;
    parley_room after;
    parley_err e = store_begin(s->wdb);
    if (e == PARLEY_OK)
        e = store_room_update(s->wdb, req->name, &u, &after, &changed);
    int mode = after.mode, vis = after.visibility;
    /* One action for each kind of change, in this order. */
    static const struct {
        unsigned changed;
        int kind;
    } kinds[] = {{STORE_CHANGED_TEXT, PARLEY_ACTION_UPDATE_ROOM},
                 {STORE_CHANGED_VISIBILITY, PARLEY_ACTION_SET_VISIBILITY},
                 {STORE_CHANGED_MODE, PARLEY_ACTION_SET_MODE}};
    for (size_t i = 0; i < 3 && e == PARLEY_OK; i++) {
        if (!(changed & kinds[i].changed)) continue;
        parley_action a =
            srv_action_of(req->name, kinds[i].kind, &actor, NULL, now);
        a.visibility = kinds[i].kind == PARLEY_ACTION_SET_VISIBILITY ? vis : 0;
        a.mode = kinds[i].kind == PARLEY_ACTION_SET_MODE ? mode : 0;
        e = srv_action_store(s->wdb, &a, &acts[n++]);
    }
    e = rooms_end(s, e);
    srv_room_pb rr;
    parley_room room;
    if (e == PARLEY_OK) e = room_for(s, &who, req->name, &rr, &room);
    if (e) {
        srv_fail_store(c, s->wdb, e);
        return;
    }
    pb_action pa[3];
    Parley__V1__ModerationAction *ptrs[3];
    for (size_t i = 0; i < n; i++) {
        srv_pb_action(&pa[i], &acts[i].a);
        ptrs[i] = &pa[i].msg;
    }
    Parley__V1__UpdateRoomResponse r = PARLEY__V1__UPDATE_ROOM_RESPONSE__INIT;
    r.room = &rr.room;
    r.n_actions = n;
    r.actions = ptrs;
    rpc_reply(c, &r.base);
    for (size_t i = 0; i < n; i++) srv_room_event(s, &acts[i].a, NULL);
    if (changed & STORE_CHANGED_VISIBILITY)
        srv_stream_recheck(s, req->name, NULL);
}

/* ---- DeleteRoom ---- */

static void h_delete_room(rpc_call *c, const Parley__V1__DeleteRoomRequest *req,
                          void *ud)
{
    srv *s = ud;
    auth_identity who;
    parley_author actor;
    srv_grant g;
    if (rooms_begin(s, c, req->name, 1, &who, &actor, &g)) return;
    parley_room before;
    uint64_t n = 0;
    parley_err e = store_room_delete(s->wdb, req->name, &before, &n);
    if (e) {
        srv_fail_store(c, s->wdb, e);
        return;
    }
    char name[RULES_ROOM_MAX + 1];
    snprintf(name, sizeof name, "%s", req->name);
    before.name = name;
    before.title = before.topic = "";
    Parley__V1__Room pr;
    srv_pb_room(s, &pr, &before);
    Parley__V1__DeleteRoomResponse r = PARLEY__V1__DELETE_ROOM_RESPONSE__INIT;
    r.room = &pr;
    r.deleted_messages = n;
    rpc_reply(c, &r.base);
    /* Not stored (the room's log went with it): id 0. */
    parley_action a = srv_action_of(name, PARLEY_ACTION_DELETE_ROOM, &actor,
                                    NULL, clock_wall_ms());
    a.count = n;
    srv_room_event(s, &a, &before);
    srv_stream_recheck(s, name, NULL);
}

/* ---- members ---- */

static void h_add_member(rpc_call *c, const Parley__V1__AddMemberRequest *req,
                         void *ud)
{
    srv *s = ud;
    auth_identity who;
    parley_author actor;
    srv_grant g;
    if (rooms_begin(s, c, req->room, 1, &who, &actor, &g)) return;
    int role = req->role ? (int)req->role : PARLEY_ROLE_PARTICIPANT;
    if (parley_role_name(role) == NULL) {
        rpc_fail(c, PARLEY_ERR_MALFORMED, "role must be a parley.v1.Role");
        return;
    }
    int64_t now = clock_wall_ms();
    parley_member m;
    int changed = 0;
    srv_action_copy k;
    char uid[RULES_AUTHOR_ID_MAX + 1], by[RULES_AUTHOR_ID_MAX + 1];
    int64_t added_at = 0;
    parley_err e = store_begin(s->wdb);
    if (e == PARLEY_OK)
        e = store_member_set(s->wdb, req->room, req->user_id, role, who.id, now,
                             &m, &changed);
    if (e == PARLEY_OK) {
        snprintf(uid, sizeof uid, "%s", m.user_id);
        snprintf(by, sizeof by, "%s", m.added_by);
        added_at = m.added_at_ms;
    }
    if (e == PARLEY_OK && changed) {
        parley_action a = srv_action_of(req->room, PARLEY_ACTION_ADD_MEMBER,
                                        &actor, req->user_id, now);
        a.role = role;
        e = srv_action_store(s->wdb, &a, &k);
    }
    e = rooms_end(s, e);
    if (e) {
        srv_fail_store(c, s->wdb, e);
        return;
    }
    Parley__V1__Member pm = PARLEY__V1__MEMBER__INIT;
    pm.user_id = uid;
    pm.role = (Parley__V1__Role)role;
    pm.added_by = by;
    pm.added_at_ms = added_at;
    pb_action pa;
    Parley__V1__AddMemberResponse r = PARLEY__V1__ADD_MEMBER_RESPONSE__INIT;
    r.member = &pm;
    if (changed) {
        srv_pb_action(&pa, &k.a);
        r.action = &pa.msg;
    }
    rpc_reply(c, &r.base);
    if (changed) srv_room_event(s, &k.a, NULL);
}

static void h_remove_member(rpc_call *c,
                            const Parley__V1__RemoveMemberRequest *req,
                            void *ud)
{
    srv *s = ud;
    auth_identity who;
    parley_author actor;
    srv_grant g;
    if (rooms_begin(s, c, req->room, 1, &who, &actor, &g)) return;
    int removed = 0;
    srv_action_copy k;
    parley_err e = store_begin(s->wdb);
    if (e == PARLEY_OK)
        e = store_member_remove(s->wdb, req->room, req->user_id, &removed);
    if (e == PARLEY_OK && removed) {
        parley_action a = srv_action_of(req->room, PARLEY_ACTION_REMOVE_MEMBER,
                                        &actor, req->user_id, clock_wall_ms());
        e = srv_action_store(s->wdb, &a, &k);
    }
    e = rooms_end(s, e);
    if (e) {
        srv_fail_store(c, s->wdb, e);
        return;
    }
    pb_action pa;
    Parley__V1__RemoveMemberResponse r =
        PARLEY__V1__REMOVE_MEMBER_RESPONSE__INIT;
    r.removed = removed ? 1 : 0;
    if (removed) {
        srv_pb_action(&pa, &k.a);
        r.action = &pa.msg;
    }
    rpc_reply(c, &r.base);
    if (removed) {
        srv_room_event(s, &k.a, NULL);
        srv_stream_recheck(s, req->room, req->user_id);
    }
}

/* The end of a List call of Rooms: answers with r (its page set) or e as
 * srv_fail_store does, then frees the page's three arrays. */
static void page_end(rpc_call *c, srv *s, parley_err e,
                     const ProtobufCMessage *r, void *rows, void *ptrs,
                     void *keep)
{
    srv_answer(c, s->db, e, r);
    free(rows);
    free(ptrs);
    free(keep);
}

typedef struct members_page {
    Parley__V1__Member *m;
    Parley__V1__Member **ptrs;
    char *strs; /* two ids of RULES_AUTHOR_ID_MAX + 1 per member */
    size_t n;
} members_page;

static int members_row(const parley_member *m, void *ud)
{
    members_page *p = ud;
    char *uid = p->strs + p->n * 2 * (RULES_AUTHOR_ID_MAX + 1);
    char *by = uid + RULES_AUTHOR_ID_MAX + 1;
    snprintf(uid, RULES_AUTHOR_ID_MAX + 1, "%s", m->user_id);
    snprintf(by, RULES_AUTHOR_ID_MAX + 1, "%s", m->added_by);
    Parley__V1__Member *pm = &p->m[p->n];
    parley__v1__member__init(pm);
    pm->user_id = uid;
    pm->role = (Parley__V1__Role)m->role;
    pm->added_by = by;
    pm->added_at_ms = m->added_at_ms;
    p->ptrs[p->n++] = pm;
    return 0;
}

static void h_list_members(rpc_call *c,
                           const Parley__V1__ListMembersRequest *req, void *ud)
{
    srv *s = ud;
    auth_identity who;
    parley_author actor;
    srv_grant g;
    if (rooms_begin(s, c, req->room, 0, &who, &actor, &g)) return;
    unsigned limit = srv_page_limit(c, req->limit, 100);
    if (limit == 0) return;
    members_page p = {calloc(limit, sizeof *p.m), calloc(limit, sizeof *p.ptrs),
                      malloc((size_t)limit * 2 * (RULES_AUTHOR_ID_MAX + 1)), 0};
    int more = 0;
    parley_err e = p.m && p.ptrs && p.strs
                       ? store_member_list(s->db, req->room, req->after_user_id,
                                           limit, members_row, &p, &more)
                       : PARLEY_ERR_INTERNAL;
    Parley__V1__ListMembersResponse r = PARLEY__V1__LIST_MEMBERS_RESPONSE__INIT;
    r.n_members = p.n;
    r.members = p.ptrs;
    r.has_more = more ? 1 : 0;
    page_end(c, s, e, &r.base, p.m, p.ptrs, p.strs);
}

/* ---- Moderate ---- */

static void h_moderate(rpc_call *c, const Parley__V1__ModerateRequest *req,
                       void *ud)
{
    srv *s = ud;
    auth_identity who;
    parley_author actor;
    srv_grant g;
    if (rooms_begin(s, c, req->room, 1, &who, &actor, &g)) return;
    store_sanction kind;
    int active, act_kind;
    switch (req->action) {
    case PARLEY__V1__MODERATE_ACTION__MODERATE_ACTION_MUTE:
        kind = STORE_SANCTION_MUTE, active = 1, act_kind = PARLEY_ACTION_MUTE;
        break;
    case PARLEY__V1__MODERATE_ACTION__MODERATE_ACTION_UNMUTE:
        kind = STORE_SANCTION_MUTE, active = 0, act_kind = PARLEY_ACTION_UNMUTE;
        break;
    case PARLEY__V1__MODERATE_ACTION__MODERATE_ACTION_REMOVE:
        kind = STORE_SANCTION_REMOVE, active = 1,
        act_kind = PARLEY_ACTION_REMOVE;
        break;
    case PARLEY__V1__MODERATE_ACTION__MODERATE_ACTION_READMIT:
        kind = STORE_SANCTION_REMOVE, active = 0,
        act_kind = PARLEY_ACTION_READMIT;
        break;
    default:
        rpc_fail(c, PARLEY_ERR_MALFORMED,
                 "action must be MUTE, UNMUTE, REMOVE or READMIT");
        return;
    }
    if (req->duration_ms < 0) {
        rpc_fail(c, PARLEY_ERR_MALFORMED, "duration_ms must not be negative");
        return;
    }
    int64_t now = clock_wall_ms();
    int64_t until = active && req->duration_ms ? now + req->duration_ms : 0;
    int changed = 0;
    srv_action_copy k;
    parley_err e = store_begin(s->wdb);
    if (e == PARLEY_OK)
        e = store_sanction_set(s->wdb, req->room, req->user_id, kind, active,
                               until, &changed);
    /* Placing a sanction is always an action (it may renew one); lifting
     * one that is not there changes nothing and stores nothing. */
    if (e == PARLEY_OK && changed) {
        parley_action a =
            srv_action_of(req->room, act_kind, &actor, req->user_id, now);
        a.until_ms = until;
        a.reason = req->reason;
        e = srv_action_store(s->wdb, &a, &k);
    }
    e = rooms_end(s, e);
    if (e) {
        srv_fail_store(c, s->wdb, e);
        return;
    }
    pb_action pa;
    Parley__V1__ModerateResponse r = PARLEY__V1__MODERATE_RESPONSE__INIT;
    if (changed) {
        srv_pb_action(&pa, &k.a);
        r.action = &pa.msg;
    }
    rpc_reply(c, &r.base);
    if (!changed) return;
    srv_room_event(s, &k.a, NULL);
    if (act_kind == PARLEY_ACTION_REMOVE)
        srv_stream_recheck(s, req->room, req->user_id);
}

/* ---- ListActions ---- */

typedef struct actions_page {
    pb_action *a;
    Parley__V1__ModerationAction **ptrs;
    srv_action_copy *k;
    size_t n;
} actions_page;

static int actions_row(const parley_action *a, void *ud)
{
    actions_page *p = ud;
    srv_action_keep(&p->k[p->n], a);
    srv_pb_action(&p->a[p->n], &p->k[p->n].a);
    p->ptrs[p->n] = &p->a[p->n].msg;
    p->n++;
    return 0;
}

static void h_list_actions(rpc_call *c,
                           const Parley__V1__ListActionsRequest *req, void *ud)
{
    srv *s = ud;
    auth_identity who;
    srv_grant g;
    parley_err e;
    if (srv_admit_on(s->ac, s->db, c, req->room, ACCESS_READ, &who, &g)) return;
    unsigned limit = srv_page_limit(c, req->limit, 100);
    if (limit == 0) return;
    actions_page p = {calloc(limit, sizeof *p.a), calloc(limit, sizeof *p.ptrs),
                      calloc(limit, sizeof *p.k), 0};
    int more = 0;
    e = p.a && p.ptrs && p.k
            ? store_action_list(s->db, req->room, req->after_id, limit,
                                actions_row, &p, &more)
            : PARLEY_ERR_INTERNAL;
    Parley__V1__ListActionsResponse r = PARLEY__V1__LIST_ACTIONS_RESPONSE__INIT;
    r.n_actions = p.n;
    r.actions = p.ptrs;
    r.has_more = more ? 1 : 0;
    page_end(c, s, e, &r.base, p.a, p.ptrs, p.k);
}

/* ---- EraseUser ---- */

/* One room an erasure touched: its events, encoded while the tombstones
 * were read, sent after the commit. */
typedef struct erased_room {
    char name[RULES_ROOM_MAX + 1];
    uint64_t count;
    grpc_slice *frames;
    uint64_t *revs; /* frames[i] is the tombstone of change revs[i] */
    size_t n, cap;
    srv_action_copy k;
} erased_room;

typedef struct erase_ctx {
    erased_room *rooms;
    size_t n, cap;
    int oom;
} erase_ctx;

static int erase_row(const parley_msg *m, void *ud)
{
    erase_ctx *x = ud;
    if (x->oom) return 0;
    erased_room *r = x->n ? &x->rooms[x->n - 1] : NULL;
    if (!r || strcmp(r->name, m->room) != 0) {
        if (x->n == x->cap) {
            erased_room *nr = srv_grow(x->rooms, &x->cap, 8, sizeof *nr);
            if (!nr) {
                x->oom = 1;
                return 0;
            }
            x->rooms = nr;
        }
        r = &x->rooms[x->n++];
        memset(r, 0, sizeof *r);
        snprintf(r->name, sizeof r->name, "%s", m->room);
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        grpc_slice *nf = realloc(r->frames, cap * sizeof *nf);
        if (!nf) {
            x->oom = 1;
            return 0;
        }
        r->frames = nf;
        uint64_t *nr = realloc(r->revs, cap * sizeof *nr);
        if (!nr) {
            x->oom = 1;
            return 0;
        }
        r->revs = nr;
        r->cap = cap;
    }
    r->revs[r->n] = m->rev;
    r->frames[r->n++] =
        srv_event_frame(PARLEY__V1__EVENT_TYPE__EVENT_TYPE_DELETED, m, 0);
    r->count++;
    return 0;
}

/* May who erase user_id's messages in room (NULL: every room)? Their own,
 * anywhere; another's, as an organizer of the room, or for every room as
 * an organizer of every room (no rooms claim and the organizer role, or a
 * rooms claim whose patterns all grant organizer and include "*"). */
static parley_err erase_allowed(srv *s, const auth_identity *who,
                                const char *room, const char *user_id,
                                srv_grant *g)
{
    memset(g, 0, sizeof *g);
    if (strcmp(who->id, user_id) == 0) {
        return room ? srv_check(s, who, room, ACCESS_DELETE, 1, g) : PARLEY_OK;
    }
    if (room) return srv_check(s, who, room, ACCESS_MODERATE, 0, g);
    int everywhere = !who->grants.present && who->role == PARLEY_ROLE_ORGANIZER;
    if (who->grants.present) {
        int star = 0, all_org = 1;
        for (unsigned i = 0; i < who->grants.n; i++) {
            if (strcmp(who->grants.g[i].pattern, "*") == 0) star = 1;
            if (who->grants.g[i].role != PARLEY_ROLE_ORGANIZER) all_org = 0;
        }
        everywhere = star && all_org;
    }
    g->rule = everywhere ? PARLEY_RULE_NONE : PARLEY_RULE_ORGANIZER_ONLY;
    return everywhere ? PARLEY_OK : PARLEY_ERR_PERMISSION_DENIED;
}

static void h_erase_user(rpc_call *c, const Parley__V1__EraseUserRequest *req,
                         void *ud)
{
    srv *s = ud;
    auth_identity who;
    srv_grant g;
    if (srv_authenticate(s, c, &who)) return;
    if (srv_refuse_write(s, c, &who)) return;
    srv_write_now(s); /* see rooms_begin */
    const char *room = req->room && *req->room ? req->room : NULL;
    parley_err e = rules_user_id(req->user_id);
    if (e) {
        rpc_fail(c, e, "user_id is no valid user id");
        return;
    }
    e = erase_allowed(s, &who, room, req->user_id, &g);
    if (e) {
        srv_fail_check(c, s, e, &g);
        return;
    }
    parley_author actor = auth_author(&who);
    int64_t now = clock_wall_ms();
    erase_ctx x = {NULL, 0, 0, 0};
    uint64_t total = 0;
    e = store_begin(s->wdb);
    if (e == PARLEY_OK)
        e = store_erase_user(s->wdb, room, req->user_id, now, erase_row, &x,
                             &total);
    if (e == PARLEY_OK && x.oom) e = PARLEY_ERR_INTERNAL;
    for (size_t i = 0; e == PARLEY_OK && i < x.n; i++) {
        erased_room *r = &x.rooms[i];
        parley_action a = srv_action_of(r->name, PARLEY_ACTION_ERASE_USER,
                                        &actor, req->user_id, now);
        /* The actor's role in this room, as every action records it. */
        a.actor.role = srv_who(&who, r->name).token_role;
        if (a.actor.role == 0) a.actor.role = who.role;
        a.count = r->count;
        e = srv_action_store(s->wdb, &a, &r->k);
    }
    e = rooms_end(s, e);
    Parley__V1__Room *prs = NULL, **pptrs = NULL;
    char(*names)[RULES_ROOM_MAX + 1] = NULL;
    if (e == PARLEY_OK && x.n) {
        prs = calloc(x.n, sizeof *prs);
        pptrs = calloc(x.n, sizeof *pptrs);
        names = calloc(x.n, sizeof *names);
        if (!prs || !pptrs || !names) e = PARLEY_ERR_INTERNAL;
    }
    for (size_t i = 0; e == PARLEY_OK && i < x.n; i++) {
        parley_room room_after;
        e = store_room_get(s->db, x.rooms[i].name, &room_after);
        if (e) break;
        memcpy(names[i], x.rooms[i].name, sizeof names[i]);
        room_after.name = names[i];
        room_after.title = room_after.topic = ""; /* counters are the point */
        srv_pb_room(s, &prs[i], &room_after);
        pptrs[i] = &prs[i];
    }
    if (e) {
        srv_fail_store(c, s->wdb, e);
    } else {
        Parley__V1__EraseUserResponse r = PARLEY__V1__ERASE_USER_RESPONSE__INIT;
        r.erased = total;
        r.n_rooms = x.n;
        r.rooms = pptrs;
        rpc_reply(c, &r.base);
        /* Committed: the tombstones and the actions go out, in order. */
        for (size_t i = 0; i < x.n; i++) {
            erased_room *er = &x.rooms[i];
            for (size_t j = 0; j < er->n; j++)
                srv_deliver(s, er->name, er->revs[j], er->frames[j]);
            srv_room_event(s, &er->k.a, NULL);
        }
    }
    for (size_t i = 0; i < x.n; i++) {
        for (size_t j = 0; j < x.rooms[i].n; j++)
            grpc_slice_unref(x.rooms[i].frames[j]);
        free(x.rooms[i].frames);
        free(x.rooms[i].revs);
    }
    free(x.rooms);
    free(prs);
    free(pptrs);
    free(names);
}

/* ---- MarkRead ---- */

static void h_mark_read(rpc_call *c, const Parley__V1__MarkReadRequest *req,
                        void *ud)
{
    srv *s = ud;
    auth_identity who;
    if (srv_authenticate(s, c, &who)) return;
    /* Checked, stored and answered with a group commit (srv_commit.c):
     * frequent, so it does not wait for the writer as the changes above
     * do. */
    parley_err e =
        srv_enqueue_mark_read(s, c, &who, req->room, req->seq, req->rev);
    if (e) rpc_fail(c, e, NULL);
}

const parley_v1_Rooms_handlers srv_rooms = {
    .mark_read = h_mark_read,
    .update_room = h_update_room,
    .delete_room = h_delete_room,
    .add_member = h_add_member,
    .remove_member = h_remove_member,
    .list_members = h_list_members,
    .moderate = h_moderate,
    .list_actions = h_list_actions,
    .erase_user = h_erase_user,
};
