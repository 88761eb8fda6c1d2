/* srv_limits.c: per-user token buckets in a chained hash table keyed by
 * user id (see srv_limits.h). The table doubles when it holds more entries
 * than buckets; entries are dropped only by the sweep. */
#include "srv_limits.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"

typedef struct bucket {
    struct bucket *next;
    double tokens;
    int64_t last_ms;
    char user[RULES_AUTHOR_ID_MAX + 1];
} bucket;

struct srv_rate {
    double rate, burst;
    bucket **tab;
    size_t n_tab, n;
};

static size_t hash(const char *s)
{
    size_t h = 1469598103934665603u; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

srv_rate *srv_rate_new(double rate, double burst)
{
    srv_rate *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->rate = rate > 0 ? rate : 0;
    r->burst = burst >= 1 ? burst : 1;
    r->n_tab = 256;
    r->tab = calloc(r->n_tab, sizeof *r->tab);
    if (!r->tab) {
        free(r);
        return NULL;
    }
    return r;
}

void srv_rate_free(srv_rate *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n_tab; i++)
        for (bucket *b = r->tab[i], *nx; b; b = nx) {
            nx = b->next;
            free(b);
        }
    free(r->tab);
    free(r);
}

static void grow(srv_rate *r)
{
    size_t nt = r->n_tab * 2;
    bucket **t = calloc(nt, sizeof *t);
    if (!t) return; /* longer chains, still correct */
    for (size_t i = 0; i < r->n_tab; i++)
        for (bucket *b = r->tab[i], *nx; b; b = nx) {
            nx = b->next;
            size_t k = hash(b->user) & (nt - 1);
            b->next = t[k];
            t[k] = b;
        }
    free(r->tab);
    r->tab = t;
    r->n_tab = nt;
}

/* Refills b up to now. */
static void refill(const srv_rate *r, bucket *b, int64_t now_ms)
{
    if (now_ms > b->last_ms) {
        b->tokens += (double)(now_ms - b->last_ms) / 1000.0 * r->rate;
        if (b->tokens > r->burst) b->tokens = r->burst;
    }
    b->last_ms = now_ms;
}

int srv_rate_take(srv_rate *r, const char *user, int64_t now_ms)
{
    if (!r || r->rate <= 0) return 1;
    size_t k = hash(user) & (r->n_tab - 1);
    bucket *b = r->tab[k];
    while (b && strcmp(b->user, user) != 0) b = b->next;
    if (!b) {
        if (strlen(user) > RULES_AUTHOR_ID_MAX) return 0;
        b = calloc(1, sizeof *b);
        if (!b) return 0; /* refuse rather than write unmetered */
        strcpy(b->user, user);
        b->tokens = r->burst;
        b->last_ms = now_ms;
        b->next = r->tab[k];
        r->tab[k] = b;
        if (++r->n > r->n_tab) grow(r);
    }
    refill(r, b, now_ms);
    assert(b->tokens <= r->burst);
    if (b->tokens < 1.0) return 0;
    b->tokens -= 1.0;
    return 1;
}

size_t srv_rate_sweep(srv_rate *r, int64_t now_ms)
{
    if (!r) return 0;
    for (size_t i = 0; i < r->n_tab; i++) {
        bucket **pp = &r->tab[i];
        while (*pp) {
            bucket *b = *pp;
            refill(r, b, now_ms);
            if (b->tokens >= r->burst) {
                *pp = b->next;
                free(b);
                r->n--;
            } else {
                pp = &b->next;
            }
        }
    }
    return r->n;
}
