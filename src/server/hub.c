/* hub.c: rooms -> subscribers (see hub.h). A chained hash table keyed by
 * room name (FNV-1a), doubled when it gets full; each room holds an
 * intrusive doubly-linked list of subscriptions and is dropped when its last
 * subscription leaves. */
#include "hub.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct hub_room {
    hub_room *chain;
    uint32_t hash;
    hub_sub *subs;
    size_t n_subs;
    char name[];
};

struct hub {
    hub_room **buckets;
    size_t n_buckets; /* power of two */
    size_t n_rooms;
};

static uint32_t fnv1a(const char *s) {
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

hub *hub_new(void) {
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

void hub_free(hub *h) {
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

static hub_room *find(const hub *h, const char *name, uint32_t hash) {
    for (hub_room *r = h->buckets[hash & (h->n_buckets - 1)]; r; r = r->chain)
        if (r->hash == hash && strcmp(r->name, name) == 0) return r;
    return NULL;
}

static void grow(hub *h) {
    size_t nb = h->n_buckets * 2;
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

int hub_add(hub *h, const char *room, hub_sub *s) {
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
    s->room = r;
    s->prev = NULL;
    s->next = r->subs;
    if (r->subs) r->subs->prev = s;
    r->subs = s;
    r->n_subs++;
    return 0;
}

void hub_remove(hub *h, hub_sub *s) {
    hub_room *r = s->room;
    if (!r) return;
    if (s->prev) s->prev->next = s->next;
    else r->subs = s->next;
    if (s->next) s->next->prev = s->prev;
    s->room = NULL;
    s->prev = s->next = NULL;
    if (--r->n_subs) return;
    hub_room **pp = &h->buckets[r->hash & (h->n_buckets - 1)];
    while (*pp != r) pp = &(*pp)->chain;
    *pp = r->chain;
    h->n_rooms--;
    free(r);
}

int hub_has_live(const hub *h, const char *room) {
    hub_room *r = find(h, room, fnv1a(room));
    if (!r) return 0;
    for (hub_sub *s = r->subs; s; s = s->next)
        if (s->live) return 1;
    return 0;
}

size_t hub_publish(hub *h, const char *room, grpc_slice frame) {
    hub_room *r = find(h, room, fnv1a(room));
    size_t n = 0;
    if (!r) return 0;
    for (hub_sub *s = r->subs; s; s = s->next)
        if (s->live && rpc_stream_send(s->call, frame) == 0) n++;
    return n;
}

size_t hub_room_count(const hub *h) { return h->n_rooms; }
