/* auth.h: identity from bearer tokens (docs/security.md has the model).
 *
 * A user token is a JWT signed by the platform's identity provider, RS256
 * or ES256 with a public key from a PEM or JWKS file (several keys, chosen
 * by `kid`), or HS256 with a shared user secret. Claims: sub (id), name
 * (display name), exp, and the user's roles: rooms (a role per room
 * pattern, access.h) and/or role ("organizer" or "participant"; may be
 * left out with rooms, and then grants nothing); checked: iss and
 * aud when configured, exp and nbf with a clock-skew leeway, and a maximum
 * lifetime (exp - iat). With public keys only, the holder of an auth handle
 * can verify users but not mint one.
 *
 * A service token is an HS256 JWT signed with the service secret, carrying
 * `svc` (the service's name) instead of a user: the gateway's credential
 * for its shared upstream subscriptions. It can read (subscribe, list) but
 * never act as a user: the core refuses it every write. A token signed with
 * the service secret without `svc`, or with the user secret or a user key
 * with `svc`, is refused. Without a service secret, service tokens are
 * signed with the user secret (one shared secret, the old setup).
 *
 * An auth handle is owned by one thread, which alone calls auth_reload;
 * any thread may verify with it meanwhile (the keys are swapped under a
 * lock). An auth_cache remembers tokens it verified, so a client that sends
 * the same token on every call pays for the signature and the JSON once;
 * it belongs to one thread. Neither is ever logged nor logs a token. */
#ifndef PARLEY_AUTH_H
#define PARLEY_AUTH_H

#include <stddef.h>
#include <stdint.h>
#include "access.h"
#include "errors.h"
#include "rules.h"

typedef struct auth auth;

typedef struct auth_identity {
    char id[RULES_AUTHOR_ID_MAX + 1];
    char display_name[RULES_DISPLAY_NAME_MAX + 1];
    /* The `role` claim (PARLEY_ROLE_*): without a `rooms` claim, the role in
     * every room; with one, only the role shown for the user outside a room
     * (PARLEY_ROLE_PARTICIPANT when the claim is absent). */
    int role;
    int service;          /* a service token (svc claim): reads only */
    int64_t exp;          /* when the token expires (seconds since the epoch) */
    access_grants grants; /* the `rooms` claim (access.h) */
} auth_identity;

typedef struct auth_opts {
    const void *user_secret; /* HS256 user secret, >= 32 bytes; or NULL */
    size_t user_secret_len;
    const void *svc_secret; /* HS256 service secret, >= 32 bytes; or NULL */
    size_t svc_secret_len;
    const char *keys_file; /* PEM or JWKS public keys; NULL or "": none */
    const char *issuer;    /* required `iss`; NULL or "": not checked */
    const char *audience;  /* required in `aud`; NULL or "": not checked */
    int64_t max_ttl_s;     /* exp - iat at most; 0: no limit */
    int64_t leeway_s;      /* clock skew allowed on exp, nbf, iat */
} auth_opts;

/* A handle from o; at least one way to verify users is required (a user
 * secret or a keys file). PARLEY_OK, or PARLEY_ERR_INTERNAL with the reason
 * in err (secret too short, keys file unreadable or holding private
 * keys...). */
parley_err auth_open(const auth_opts *o, auth **out, char *err, size_t errlen);
/* auth_open with only a user secret (at least 32 bytes). */
parley_err auth_new(const void *secret, size_t len, auth **out);
void auth_free(auth *a);

/* Re-reads the keys file if it changed (size, mtime or inode) since it was
 * read. 1 when new keys are in use, 0 when unchanged, -1 with the reason in
 * err when the new file is unreadable or bad (the old keys stay). */
int auth_reload(auth *a, char *err, size_t errlen);
/* Keys in use from the keys file (0 without one). */
size_t auth_key_count(const auth *a);

/* Accepts "Bearer <jwt>" or a bare "<jwt>". PARLEY_ERR_TOKEN_EXPIRED when
 * it is well signed and expired (now_s > exp + leeway); otherwise
 * PARLEY_ERR_UNAUTHENTICATED if it is missing, malformed, badly signed, of
 * another algorithm than its key, not yet valid, over the maximum lifetime,
 * of a wrong issuer or audience, or its claims are not a valid author
 * (rules_author) or service. */
parley_err auth_verify(const auth *a, const char *token, int64_t now_s,
                       auth_identity *out);

/* 1 once id's token has expired at now_s (exp + leeway passed): a session
 * opened with it ends then, unless it was renewed. */
int auth_expired(const auth *a, const auth_identity *id, int64_t now_s);
/* The same for a token that expires at exp (what a holder kept of it). */
int auth_expired_at(const auth *a, int64_t exp, int64_t now_s);

/* 1 if a holds a user secret, so it could mint user tokens. */
int auth_can_mint(const auth *a);

/* A user token for id, valid for ttl_s seconds from now_s, signed HS256
 * with the user secret (development mode and tests); malloc'd, the caller
 * frees it. NULL on failure or without a user secret. */
char *auth_mint(const auth *a, const auth_identity *id, int64_t now_s,
                int64_t ttl_s);
/* A service token {svc: name}, signed with the service secret (or, without
 * one, the user secret); NULL if a holds neither. */
char *auth_mint_service(const auth *a, const char *name, int64_t now_s,
                        int64_t ttl_s);

/* ---- a verification cache, one per thread ----
 *
 * Answers exactly what auth_verify would answer for the same token, clock
 * and keys: a token is looked up by its exact bytes (after the "Bearer "
 * prefix); only tokens that auth_verify accepted are remembered, with their
 * identity, their time claims (exp, nbf, iat, tested against now_s, the
 * leeway and the maximum lifetime on every hit by the same code as a fresh
 * token's: an expired entry is dropped and answered TOKEN_EXPIRED) and the
 * key generation that accepted them (after an auth_reload that brought new
 * keys, the token is verified again). Bounded: `slots` entries in
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

/* What id's token says about room (access.h): the role of its most
 * specific `rooms` pattern, or without the claim its `role`; 0 for a
 * service (services read by access.h's own rule). */
int auth_room_role(const auth_identity *id, const char *room);

#endif
