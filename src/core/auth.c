/* auth.c: bearer-token identity (see auth.h). Verifies and mints HS256 JWTs
 * with libjwt; reads the claims with jansson so their JSON types are checked
 * exactly. Only HS256 is accepted: "none" and every other algorithm are
 * rejected whatever the token's header says. Tokens are never logged or
 * copied anywhere but libjwt's own parse. */
#include "auth.h"

#include <assert.h>
#include <jansson.h>
#include <jwt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define AUTH_SECRET_MIN 32
/* Far above any token parley mints; bounds the work on hostile input. */
#define AUTH_TOKEN_MAX 8192

struct auth {
    size_t len;
    unsigned char key[];
};

parley_err auth_new(const void *secret, size_t len, auth **out)
{
    *out = NULL;
    if (secret == NULL || len < AUTH_SECRET_MIN || len > INT_MAX)
        return PARLEY_ERR_INTERNAL;
    auth *a = malloc(sizeof *a + len);
    if (a == NULL) return PARLEY_ERR_INTERNAL;
    a->len = len;
    memcpy(a->key, secret, len);
    *out = a;
    return PARLEY_OK;
}

void auth_free(auth *a)
{
    if (a == NULL) return;
    explicit_bzero(a->key, a->len);
    free(a);
}

/* A string claim of at most max bytes, without embedded NULs; NULL if not. */
static const char *auth_claim_str(json_t *claims, const char *name, size_t max)
{
    json_t *v = json_object_get(claims, name);
    if (!json_is_string(v)) return NULL;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n == 0 || n > max || strlen(s) != n) return NULL;
    return s;
}

/* A NumericDate claim (RFC 7519: seconds, integer or not). 0 if absent or
 * not a number. */
static int auth_claim_time(json_t *claims, const char *name, double *out)
{
    json_t *v = json_object_get(claims, name);
    if (!json_is_number(v)) return 0;
    *out = json_number_value(v);
    return 1;
}

/* Checks the claims and fills out; PARLEY_OK or UNAUTHENTICATED. */
static parley_err auth_claims(json_t *claims, int64_t now_s, auth_identity *out)
{
    double exp, nbf;
    if (!json_is_object(claims) || !auth_claim_time(claims, "exp", &exp))
        return PARLEY_ERR_UNAUTHENTICATED;
    if ((double)now_s > exp) return PARLEY_ERR_UNAUTHENTICATED;
    if (json_object_get(claims, "nbf") != NULL &&
        (!auth_claim_time(claims, "nbf", &nbf) || (double)now_s < nbf))
        return PARLEY_ERR_UNAUTHENTICATED;

    const char *sub = auth_claim_str(claims, "sub", RULES_AUTHOR_ID_MAX);
    const char *name = auth_claim_str(claims, "name", RULES_DISPLAY_NAME_MAX);
    const char *role = auth_claim_str(claims, "role", 32);
    if (sub == NULL || name == NULL || role == NULL)
        return PARLEY_ERR_UNAUTHENTICATED;

    auth_identity id;
    memset(&id, 0, sizeof id);
    memcpy(id.id, sub, strlen(sub) + 1);
    memcpy(id.display_name, name, strlen(name) + 1);
    id.role = parley_role_parse(role);
    parley_author a = auth_author(&id);
    if (rules_author(&a) != PARLEY_OK) return PARLEY_ERR_UNAUTHENTICATED;
    *out = id;
    return PARLEY_OK;
}

parley_err auth_verify(const auth *a, const char *token, int64_t now_s,
                       auth_identity *out)
{
    if (a == NULL || token == NULL || out == NULL)
        return PARLEY_ERR_UNAUTHENTICATED;
    assert(a->len >= AUTH_SECRET_MIN); /* auth_new's promise */
    if (strncasecmp(token, "Bearer ", 7) == 0) {
        token += 7;
        while (*token == ' ') token++;
    }
    size_t n = strnlen(token, AUTH_TOKEN_MAX + 1);
    if (n == 0 || n > AUTH_TOKEN_MAX) return PARLEY_ERR_UNAUTHENTICATED;

    /* libjwt checks the signature for the algorithm the header names, so
     * insist on HS256 afterwards: a header saying "none" or anything else
     * must not be enough. */
    jwt_t *jwt = NULL;
    if (jwt_decode(&jwt, token, a->key, (int)a->len) != 0 || jwt == NULL)
        return PARLEY_ERR_UNAUTHENTICATED;
    parley_err err = PARLEY_ERR_UNAUTHENTICATED;
    if (jwt_get_alg(jwt) == JWT_ALG_HS256) {
        char *json = jwt_get_grants_json(jwt, NULL);
        if (json != NULL) {
            json_t *claims = json_loads(json, JSON_REJECT_DUPLICATES, NULL);
            if (claims != NULL) {
                err = auth_claims(claims, now_s, out);
                json_decref(claims);
            }
            free(json);
        }
    }
    jwt_free(jwt);
    return err;
}

char *auth_mint(const auth *a, const auth_identity *id, int64_t now_s,
                int64_t ttl_s)
{
    if (a == NULL || id == NULL || ttl_s <= 0 || now_s < 0 ||
        now_s > LONG_MAX - ttl_s)
        return NULL;
    parley_author author = auth_author(id);
    if (rules_author(&author) != PARLEY_OK) return NULL;
    const char *role = parley_role_name(id->role);

    jwt_t *jwt = NULL;
    if (jwt_new(&jwt) != 0) return NULL;
    char *token = NULL;
    if (jwt_add_grant(jwt, "sub", id->id) == 0 &&
        jwt_add_grant(jwt, "name", id->display_name) == 0 &&
        jwt_add_grant(jwt, "role", role) == 0 &&
        jwt_add_grant_int(jwt, "iat", (long)now_s) == 0 &&
        jwt_add_grant_int(jwt, "exp", (long)(now_s + ttl_s)) == 0 &&
        jwt_set_alg(jwt, JWT_ALG_HS256, a->key, (int)a->len) == 0)
        token = jwt_encode_str(jwt);
    jwt_free(jwt);
    return token;
}

parley_author auth_author(const auth_identity *id)
{
    parley_author a = {id->id, id->display_name, id->role};
    return a;
}
