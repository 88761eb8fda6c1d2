/* srv_limits.h: the per-user write rate of the core. Every write a user
 * makes (a publish, unary or on a Connect stream, an edit, a delete, a
 * room creation) takes a token from that user's bucket, whatever path it
 * came by: a browser over the gateway (WebSocket or REST), a backend over
 * gRPC. The bucket is keyed by the user id of the token, so reconnecting
 * does not refill it. Buckets of users quiet long enough to be full again
 * are dropped by the once-a-second sweep, so memory follows the users who
 * are writing now. Loop thread only. */
#ifndef PARLEY_SRV_LIMITS_H
#define PARLEY_SRV_LIMITS_H

#include <stddef.h>
#include <stdint.h>

typedef struct srv_rate srv_rate;

/* rate writes per second, up to burst at once; rate 0: no limit. */
srv_rate *srv_rate_new(double rate, double burst);
void srv_rate_free(srv_rate *r);
/* 1 if user may write now (a token taken), 0 if over the rate. */
int srv_rate_take(srv_rate *r, const char *user, int64_t now_ms);
/* Drops the buckets that are full again; returns how many remain. */
size_t srv_rate_sweep(srv_rate *r, int64_t now_ms);

#endif
