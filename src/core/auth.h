/* auth.h: identity from bearer tokens. Verifies HS256 JWTs (libjwt) whose
 * claims carry the user: sub (id), name (display name), role ("organizer" or
 * "participant"), exp. Also mints tokens, for development mode and tests.
 * An auth handle holds only the secret; it is immutable after auth_new and
 * may be shared by threads. */
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

/* The identity as a store author (pointers into id). */
parley_author auth_author(const auth_identity *id);

#endif
