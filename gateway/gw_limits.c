/* gw_limits.c: how many WebSocket sessions each peer address holds, for
 * the per-address limit checked at upgrade (gw_http.c). A chained hash
 * table keyed by the address text; an entry lives while its count is
 * above zero. Lws thread only. */
#include "gw.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GW_IP_BUCKETS 1024

typedef struct gw_ip_entry {
    struct gw_ip_entry *next;
    int n;
    char ip[48];
} ip_entry;

/* the table hangs off s->ips: GW_IP_BUCKETS chains */
static ip_entry **table(gw_server *s, int create)
{
    if (!s->ips && create) s->ips = calloc(GW_IP_BUCKETS, sizeof(ip_entry *));
    return s->ips;
}

static size_t bucket(const char *ip)
{
    size_t h = 5381;
    for (; *ip; ip++) h = h * 33 + (unsigned char)*ip;
    return h % GW_IP_BUCKETS;
}

int gw_ip_count(gw_server *s, const char *ip)
{
    ip_entry **t = table(s, 0);
    if (!t) return 0;
    for (ip_entry *e = t[bucket(ip)]; e; e = e->next)
        if (strcmp(e->ip, ip) == 0) return e->n;
    return 0;
}

int gw_ip_add(gw_server *s, const char *ip, int delta)
{
    ip_entry **t = table(s, 1);
    if (!t) return -1;
    ip_entry **pp = &t[bucket(ip)];
    while (*pp && strcmp((*pp)->ip, ip) != 0) pp = &(*pp)->next;
    if (!*pp) {
        if (delta <= 0) return 0;
        ip_entry *e = calloc(1, sizeof *e);
        if (!e) return -1;
        snprintf(e->ip, sizeof e->ip, "%s", ip);
        *pp = e;
    }
    ip_entry *e = *pp;
    e->n += delta;
    assert(e->n >= 0);
    if (e->n == 0) {
        *pp = e->next;
        free(e);
    }
    return 0;
}

void gw_ip_free_all(gw_server *s)
{
    ip_entry **t = table(s, 0);
    if (!t) return;
    for (size_t i = 0; i < GW_IP_BUCKETS; i++)
        for (ip_entry *e = t[i], *nx; e; e = nx) {
            nx = e->next;
            free(e);
        }
    free(t);
    s->ips = NULL;
}
