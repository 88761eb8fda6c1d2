/* auth.h: identity from bearer tokens. Verifies HS256 JWTs (libjwt) whose
 * claims carry the user: sub (id), name (display name), role ("organizer" or
 * "participant"), exp. Also mints tokens, for development mode and tests.
 * An auth handle holds only the secret; it is immutable after auth_new and
 * may be shared by threads. An auth_cache remembers tokens it verified, so
 * a client that sends the same token on every call pays for the signature
 * and the JSON once; it belongs to one thread. */
#ifndef PARLEY_AUTH_H
#define PARLEY_AUTH_H

#include <stddef.h>
#include <stdint.h>
#include "errors.h"
#include "rules.h"

typedef struct auth auth;

typedef struct auth_identity {
    char id[RULES_AUTHOR_ID_MAX + 1];
    char display_name[RULES_DISPLAY_NAME_MAX + 1];
    int role; /* PARLEY_ROLE_* */
} auth_identity;

/* The secret must be at least 32 bytes. */
parley_err auth_new(const void *secret, size_t len, auth **out);
void auth_free(auth *a);

/* Accepts "Bearer <jwt>" or a bare "<jwt>". UNAUTHENTICATED if the token is
 * missing, malformed, badly signed, expired (now_s > exp) or its claims are
 * not a valid author (rules_author). Never logs the token. */
parley_err auth_verify(const auth *a, const char *token, int64_t now_s,
                       auth_identity *out);

/* A token for id, valid for ttl_s seconds from now_s; malloc'd, the caller
 * frees it. NULL on failure. */
char *auth_mint(const auth *a, const auth_identity *id, int64_t now_s,
                int64_t ttl_s);

/* ---- a verification cache, one per thread ----
 *
 * Answers exactly what auth_verify would answer for the same token and
 * clock: a token is looked up by its exact bytes (after the "Bearer "
 * prefix); only tokens that auth_verify accepted are remembered, with their
 * identity and their exp / nbf, which are checked against now_s on every
 * hit (an expired entry is dropped and refused). Bounded: `slots` entries in
 * sets of two, the least recently used of a set replaced; tokens longer
 * than AUTH_CACHE_TOKEN_MAX are verified every time. Not thread-safe: give
 * each thread its own. It must not outlive its auth. */
#define AUTH_CACHE_TOKEN_MAX 2048

typedef struct auth_cache auth_cache;

typedef struct auth_cache_stats {
    uint64_t hits;      /* answered from the cache (accepted or expired) */
    uint64_t misses;    /* verified by auth_verify */
    uint64_t evictions; /* live entries replaced by another token */
    size_t entries;     /* remembered now */
} auth_cache_stats;

/* slots: entries kept (rounded up to an even number, at least 2). NULL on
 * allocation failure. */
auth_cache *auth_cache_new(const auth *a, size_t slots);
void auth_cache_free(auth_cache *c);
/* auth_verify through the cache (see above). */
parley_err auth_cache_verify(auth_cache *c, const char *token, int64_t now_s,
                             auth_identity *out);
void auth_cache_get_stats(const auth_cache *c, auth_cache_stats *out);

/* The identity as a store author (pointers into id). */
parley_author auth_author(const auth_identity *id);

#endif
