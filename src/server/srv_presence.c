/* srv_presence.c: live state that is never stored: who is in which room
 * now (presence) and who is typing. In memory only, on the loop thread.
 *
 * Presence. Streams say a user is here or gone in a room
 * (ClientFrame{presence}); a gateway says it for each of its sessions'
 * users, so the core, where every gateway's streams meet, counts each user
 * once however many sessions, streams and gateways carry them. Each stream
 * remembers what it said (srv_presence_refs), and its users leave when it
 * ends. A change marks the room dirty; srv_presence_tick sends the room's
 * watchers the whole picture (count, and the first SRV_PRESENCE_NAMES
 * users by display name), at most every SRV_PRESENCE_MIN_MS, so a room of
 * thousands costs a bounded frame a few times a second, not one per join.
 *
 * Typing. A user's typing in a room is passed to the room's watchers at
 * most once per SRV_TYPING_MIN_MS; the rest is dropped. */
#include "srv.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PRES_BUCKETS 1024 /* power of two */

typedef struct pres_user {
    struct pres_user *next;
    char id[RULES_AUTHOR_ID_MAX + 1];
    char name[RULES_DISPLAY_NAME_MAX + 1];
    int role;
    unsigned refs;     /* streams that said "here" (each counted once) */
    int64_t typing_ms; /* last typing passed on; 0 never */
} pres_user;

typedef struct pres_room {
    struct pres_room *next;       /* hash chain */
    struct pres_room *dirty_next; /* on the dirty list while dirty */
    char name[RULES_ROOM_MAX + 1];
    pres_user *users;
    unsigned present; /* users with refs > 0 */
    int dirty;
    int64_t sent_ms; /* when the picture was last sent */
} pres_room;

struct srv_presence {
    pres_room *tab[PRES_BUCKETS];
    pres_room *dirty;
    int64_t next_gc_ms;
};

/* What one stream said. */
struct srv_presence_refs {
    size_t n, cap;
    struct pres_ref {
        char room[RULES_ROOM_MAX + 1];
        char user[RULES_AUTHOR_ID_MAX + 1];
    } * v;
};

static size_t pres_hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h & (PRES_BUCKETS - 1);
}

srv_presence *srv_presence_new(void) { return calloc(1, sizeof(srv_presence)); }

static void room_free(pres_room *r)
{
    pres_user *u = r->users;
    while (u) {
        pres_user *n = u->next;
        free(u);
        u = n;
    }
    free(r);
}

void srv_presence_free(srv_presence *p)
{
    if (!p) return;
    for (size_t i = 0; i < PRES_BUCKETS; i++) {
        pres_room *r = p->tab[i];
        while (r) {
            pres_room *n = r->next;
            room_free(r);
            r = n;
        }
    }
    free(p);
}

static pres_room *room_get(srv_presence *p, const char *name, int create)
{
    size_t b = pres_hash(name);
    for (pres_room *r = p->tab[b]; r; r = r->next)
        if (strcmp(r->name, name) == 0) return r;
    if (!create) return NULL;
    pres_room *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    memcpy(r->name, name, strlen(name) + 1);
    r->next = p->tab[b];
    p->tab[b] = r;
    return r;
}

static pres_user *user_get(pres_room *r, const parley_author *a, int create)
{
    for (pres_user *u = r->users; u; u = u->next)
        if (strcmp(u->id, a->id) == 0) return u;
    if (!create) return NULL;
    pres_user *u = calloc(1, sizeof *u);
    if (!u) return NULL;
    snprintf(u->id, sizeof u->id, "%s", a->id);
    snprintf(u->name, sizeof u->name, "%s", a->display_name);
    u->role = a->role;
    u->next = r->users;
    r->users = u;
    return u;
}

static void mark_dirty(srv_presence *p, pres_room *r)
{
    if (r->dirty) return;
    r->dirty = 1;
    r->dirty_next = p->dirty;
    p->dirty = r;
}

/* ---- one stream's refs ---- */

void srv_presence_refs_free(srv *s, srv_presence_refs *refs)
{
    if (!refs) return;
    for (size_t i = 0; i < refs->n; i++)
        srv_presence_leave(s, refs->v[i].room, refs->v[i].user);
    free(refs->v);
    free(refs);
}

static int refs_find(const srv_presence_refs *refs, const char *room,
                     const char *user)
{
    for (size_t i = 0; refs && i < refs->n; i++)
        if (!strcmp(refs->v[i].room, room) && !strcmp(refs->v[i].user, user))
            return (int)i;
    return -1;
}

parley_err srv_presence_say(srv *s, srv_presence_refs **refs, const char *room,
                            const parley_author *who, int here)
{
    int i = refs_find(*refs, room, who->id);
    if (here) {
        if (i >= 0) return PARLEY_OK; /* said already on this stream */
        if (!*refs && !(*refs = calloc(1, sizeof **refs)))
            return PARLEY_ERR_INTERNAL;
        srv_presence_refs *r = *refs;
        if (r->n == r->cap) {
            struct pres_ref *nv = srv_grow(r->v, &r->cap, 8, sizeof *nv);
            if (!nv) return PARLEY_ERR_INTERNAL;
            r->v = nv;
        }
        if (srv_presence_join(s, room, who) != 0) return PARLEY_ERR_INTERNAL;
        snprintf(r->v[r->n].room, sizeof r->v[0].room, "%s", room);
        snprintf(r->v[r->n].user, sizeof r->v[0].user, "%s", who->id);
        r->n++;
        return PARLEY_OK;
    }
    if (i < 0) return PARLEY_OK; /* gone already */
    srv_presence_leave(s, room, who->id);
    (*refs)->v[i] = (*refs)->v[--(*refs)->n];
    return PARLEY_OK;
}

/* ---- joins and leaves ---- */

int srv_presence_join(srv *s, const char *room, const parley_author *who)
{
    pres_room *r = room_get(s->presence, room, 1);
    pres_user *u = r ? user_get(r, who, 1) : NULL;
    if (!u) return -1;
    if (u->refs++ == 0) {
        r->present++;
        mark_dirty(s->presence, r);
    }
    return 0;
}

void srv_presence_leave(srv *s, const char *room, const char *user_id)
{
    pres_room *r = room_get(s->presence, room, 0);
    parley_author a = {user_id, "", 0};
    pres_user *u = r ? user_get(r, &a, 0) : NULL;
    if (!u || u->refs == 0) return;
    if (--u->refs == 0) {
        assert(r->present > 0);
        r->present--;
        mark_dirty(s->presence, r);
    }
}

/* ---- the picture ---- */

static int by_name(const void *a, const void *b)
{
    const pres_user *x = *(pres_user *const *)a, *y = *(pres_user *const *)b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->id, y->id);
}

grpc_slice srv_presence_frame(srv *s, const char *room)
{
    pres_room *r = room_get(s->presence, room, 0);
    unsigned n = r ? r->present : 0, k = 0;
    pres_user **all = n ? malloc(n * sizeof *all) : NULL;
    if (r && all)
        for (pres_user *u = r->users; u; u = u->next)
            if (u->refs > 0) all[k++] = u;
    assert(!all || k == n);
    if (all) qsort(all, k, sizeof *all, by_name);
    size_t shown = k < SRV_PRESENCE_NAMES ? k : SRV_PRESENCE_NAMES;
    Parley__V1__Author au[SRV_PRESENCE_NAMES], *aup[SRV_PRESENCE_NAMES];
    for (size_t i = 0; i < shown; i++) {
        parley__v1__author__init(&au[i]);
        au[i].id = all[i]->id;
        au[i].display_name = all[i]->name;
        au[i].role = (Parley__V1__Role)all[i]->role;
        aup[i] = &au[i];
    }
    Parley__V1__Presence pr = PARLEY__V1__PRESENCE__INIT;
    pr.room = (char *)room;
    pr.count = n;
    pr.n_users = shown;
    pr.users = aup;
    pr.truncated = shown < n;
    Parley__V1__ServerFrame f = PARLEY__V1__SERVER_FRAME__INIT;
    f.kind_case = PARLEY__V1__SERVER_FRAME__KIND_PRESENCE;
    f.presence = &pr;
    grpc_slice sl = rpc_encode(&f.base);
    free(all);
    return sl;
}

unsigned srv_presence_count(srv *s, const char *room)
{
    pres_room *r = room_get(s->presence, room, 0);
    return r ? r->present : 0;
}

/* Drops users with no refs and no recent typing, and empty rooms. */
static void presence_gc(srv_presence *p, int64_t now)
{
    for (size_t b = 0; b < PRES_BUCKETS; b++) {
        for (pres_room **rp = &p->tab[b]; *rp;) {
            pres_room *r = *rp;
            for (pres_user **up = &r->users; *up;) {
                pres_user *u = *up;
                if (u->refs == 0 && now - u->typing_ms > SRV_TYPING_MIN_MS) {
                    *up = u->next;
                    free(u);
                } else {
                    up = &u->next;
                }
            }
            if (!r->users && !r->dirty) {
                *rp = r->next;
                free(r);
            } else {
                rp = &r->next;
            }
        }
    }
}

void srv_presence_tick(srv *s, int64_t now)
{
    srv_presence *p = s->presence;
    pres_room *keep = NULL, *r = p->dirty;
    p->dirty = NULL;
    while (r) {
        pres_room *next = r->dirty_next;
        if (now - r->sent_ms < SRV_PRESENCE_MIN_MS) {
            r->dirty_next = keep; /* not yet: the next tick */
            keep = r;
        } else {
            r->dirty = 0;
            r->sent_ms = now;
            if (hub_has_live(s->hub, r->name)) {
                grpc_slice f = srv_presence_frame(s, r->name);
                hub_publish_to(s->hub, r->name, f, HUB_WANT_PRESENCE);
                grpc_slice_unref(f);
            }
        }
        r = next;
    }
    p->dirty = keep;
    if (now >= p->next_gc_ms) {
        p->next_gc_ms = now + 10 * SRV_TYPING_MIN_MS;
        presence_gc(p, now);
    }
}

/* ---- typing ---- */

int srv_presence_typing(srv *s, const char *room, const parley_author *who,
                        int64_t now)
{
    pres_room *r = room_get(s->presence, room, 1);
    pres_user *u = r ? user_get(r, who, 1) : NULL;
    if (!u) return 0;
    if (u->typing_ms && now - u->typing_ms < SRV_TYPING_MIN_MS) return 0;
    u->typing_ms = now;
    if (!hub_has_live(s->hub, room)) return 1;
    Parley__V1__Author au = PARLEY__V1__AUTHOR__INIT;
    au.id = (char *)who->id;
    au.display_name = (char *)who->display_name;
    au.role = (Parley__V1__Role)who->role;
    Parley__V1__Typing t = PARLEY__V1__TYPING__INIT;
    t.room = (char *)room;
    t.user = &au;
    Parley__V1__ServerFrame f = PARLEY__V1__SERVER_FRAME__INIT;
    f.kind_case = PARLEY__V1__SERVER_FRAME__KIND_TYPING;
    f.typing = &t;
    grpc_slice sl = rpc_encode(&f.base);
    hub_publish_to(s->hub, room, sl, HUB_WANT_TYPING);
    grpc_slice_unref(sl);
    return 1;
}
