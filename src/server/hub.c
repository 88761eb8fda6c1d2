/* hub.c: rooms -> subscribers (see hub.h). A chained hash table keyed by
 * room name (FNV-1a), doubled when it gets full; each room holds an
 * intrusive list of subscriptions and is dropped when its last subscription
 * leaves, so a room in the table always has at least one. */
#include "hub.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct hub_room {
    hub_room *chain;
    uint32_t hash;
    list subs; /* hub_sub.link */
    char name[];
};

struct hub {
    hub_room **buckets;
    size_t n_buckets; /* power of two, >= n_rooms after a successful grow */
    size_t n_rooms;
    size_t n_subs; /* attached subscriptions, all rooms */
};

static uint32_t fnv1a(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

hub *hub_new(void)
{
    hub *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->n_buckets = 64;
    h->buckets = calloc(h->n_buckets, sizeof *h->buckets);
    if (!h->buckets) {
        free(h);
        return NULL;
    }
    return h;
}

void hub_free(hub *h)
{
    if (!h) return;
    for (size_t i = 0; i < h->n_buckets; i++) {
        hub_room *r = h->buckets[i];
        while (r) {
            hub_room *n = r->chain;
            free(r);
            r = n;
        }
    }
    free(h->buckets);
    free(h);
}

static hub_room *find(const hub *h, const char *name, uint32_t hash)
{
    for (hub_room *r = h->buckets[hash & (h->n_buckets - 1)]; r; r = r->chain)
        if (r->hash == hash && strcmp(r->name, name) == 0) {
            assert(r->subs.len > 0); /* an empty room leaves the table */
            return r;
        }
    return NULL;
}

static void grow(hub *h)
{
    size_t nb = h->n_buckets * 2;
    assert((nb & (nb - 1)) == 0); /* masks below need a power of two */
    hub_room **b = calloc(nb, sizeof *b);
    if (!b) return; /* keep the old table; chains just get longer */
    for (size_t i = 0; i < h->n_buckets; i++) {
        hub_room *r = h->buckets[i];
        while (r) {
            hub_room *n = r->chain;
            r->chain = b[r->hash & (nb - 1)];
            b[r->hash & (nb - 1)] = r;
            r = n;
        }
    }
    free(h->buckets);
    h->buckets = b;
    h->n_buckets = nb;
}

int hub_add(hub *h, const char *room, hub_sub *s)
{
    uint32_t hash = fnv1a(room);
    hub_room *r = find(h, room, hash);
    if (!r) {
        size_t len = strlen(room);
        r = calloc(1, sizeof *r + len + 1);
        if (!r) return -1;
        memcpy(r->name, room, len + 1);
        r->hash = hash;
        if (h->n_rooms + 1 > h->n_buckets) grow(h);
        size_t b = hash & (h->n_buckets - 1);
        r->chain = h->buckets[b];
        h->buckets[b] = r;
        h->n_rooms++;
    }
    list_push_front(&r->subs, &s->link);
    h->n_subs++;
    return 0;
}

void hub_remove(hub *h, hub_sub *s)
{
    if (!list_node_is_linked(&s->link)) return;
    hub_room *r = list_entry(s->link.owner, hub_room, subs);
    list_remove(&s->link);
    assert(h->n_subs > 0);
    h->n_subs--;
    if (r->subs.len > 0) return;
    hub_room **pp = &h->buckets[r->hash & (h->n_buckets - 1)];
    while (*pp != r) {
        assert(*pp != NULL); /* a room is always in its bucket's chain */
        pp = &(*pp)->chain;
    }
    *pp = r->chain;
    h->n_rooms--;
    free(r);
}

int hub_has_live(const hub *h, const char *room)
{
    hub_room *r = find(h, room, fnv1a(room));
    if (!r) return 0;
    list_for_each(&r->subs, n, next)
    {
        if (list_entry(n, hub_sub, link)->live) return 1;
    }
    return 0;
}

size_t hub_publish(hub *h, const char *room, grpc_slice frame)
{
    hub_room *r = find(h, room, fnv1a(room));
    size_t n = 0;
    if (!r) return 0;
    list_for_each(&r->subs, node, next)
    {
        hub_sub *s = list_entry(node, hub_sub, link);
        if (s->live && rpc_stream_send(s->call, frame) == 0) n++;
    }
    return n;
}

size_t hub_publish_to(hub *h, const char *room, grpc_slice frame, unsigned want)
{
    hub_room *r = find(h, room, fnv1a(room));
    size_t n = 0;
    if (!r) return 0;
    list_for_each(&r->subs, node, next)
    {
        hub_sub *s = list_entry(node, hub_sub, link);
        if (s->live && (s->wants & want) &&
            rpc_stream_send(s->call, frame) == 0)
            n++;
    }
    return n;
}

size_t hub_publish_rev(hub *h, const char *room, uint64_t rev, grpc_slice frame)
{
    hub_room *r = find(h, room, fnv1a(room));
    size_t n = 0;
    if (!r) return 0;
    list_for_each(&r->subs, node, next)
    {
        hub_sub *s = list_entry(node, hub_sub, link);
        if (!s->live || s->rev >= rev) continue;
        s->rev = rev;
        if (rpc_stream_send(s->call, frame) == 0) n++;
    }
    return n;
}

size_t hub_room_count(const hub *h) { return h->n_rooms; }

size_t hub_sub_count(const hub *h) { return h->n_subs; }
