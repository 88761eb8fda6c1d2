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
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

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

/* The time window a token is valid in, from its exp and nbf claims. */
typedef struct auth_window {
    double exp;
    double nbf; /* -HUGE_VAL without an nbf claim */
} auth_window;

/* The one test of the window, for a fresh token and a cached one alike. */
static int auth_window_open(const auth_window *w, int64_t now_s)
{
    return !((double)now_s > w->exp) && !((double)now_s < w->nbf);
}

/* Checks the claims and fills out and win; PARLEY_OK or UNAUTHENTICATED. */
static parley_err auth_claims(json_t *claims, int64_t now_s, auth_identity *out,
                              auth_window *win)
{
    auth_window w = {0, -HUGE_VAL};
    if (!json_is_object(claims) || !auth_claim_time(claims, "exp", &w.exp))
        return PARLEY_ERR_UNAUTHENTICATED;
    if (json_object_get(claims, "nbf") != NULL &&
        !auth_claim_time(claims, "nbf", &w.nbf))
        return PARLEY_ERR_UNAUTHENTICATED;
    if (!auth_window_open(&w, now_s)) return PARLEY_ERR_UNAUTHENTICATED;

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
    *win = w;
    return PARLEY_OK;
}

/* The token without its "Bearer " prefix, and its length; NULL if it is
 * empty or longer than AUTH_TOKEN_MAX. */
static const char *auth_bare(const char *token, size_t *len)
{
    if (strncasecmp(token, "Bearer ", 7) == 0) {
        token += 7;
        while (*token == ' ') token++;
    }
    size_t n = strnlen(token, AUTH_TOKEN_MAX + 1);
    if (n == 0 || n > AUTH_TOKEN_MAX) return NULL;
    *len = n;
    return token;
}

/* Verifies a bare token (auth_bare's output). */
static parley_err auth_verify_bare(const auth *a, const char *token,
                                   int64_t now_s, auth_identity *out,
                                   auth_window *win)
{
    assert(a->len >= AUTH_SECRET_MIN); /* auth_new's promise */

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
                err = auth_claims(claims, now_s, out, win);
                json_decref(claims);
            }
            free(json);
        }
    }
    jwt_free(jwt);
    return err;
}

parley_err auth_verify(const auth *a, const char *token, int64_t now_s,
                       auth_identity *out)
{
    if (a == NULL || token == NULL || out == NULL)
        return PARLEY_ERR_UNAUTHENTICATED;
    size_t n;
    const char *bare = auth_bare(token, &n);
    if (bare == NULL) return PARLEY_ERR_UNAUTHENTICATED;
    auth_window w;
    return auth_verify_bare(a, bare, now_s, out, &w);
}

/* ---- the cache ---------------------------------------------------------- */

typedef struct auth_entry {
    char *token; /* NULL: free; else malloc'd, len bytes and a NUL */
    size_t len;
    uint64_t hash;
    uint64_t used; /* c->clock at the last hit or insert */
    auth_window win;
    auth_identity id;
} auth_entry;

struct auth_cache {
    const auth *a;
    auth_entry *e; /* n_sets sets of AUTH_CACHE_WAYS entries */
    size_t n_sets;
    uint64_t seed; /* per cache, so colliding tokens cannot be precomputed */
    uint64_t clock;
    auth_cache_stats st;
};

#define AUTH_CACHE_WAYS 2

static uint64_t auth_hash(uint64_t seed, const char *s, size_t n)
{
    uint64_t h = 14695981039346656037ULL ^ seed; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

auth_cache *auth_cache_new(const auth *a, size_t slots)
{
    if (a == NULL) return NULL;
    auth_cache *c = calloc(1, sizeof *c);
    if (c == NULL) return NULL;
    c->a = a;
    c->n_sets = slots < AUTH_CACHE_WAYS ? 1 : (slots + 1) / AUTH_CACHE_WAYS;
    c->e = calloc(c->n_sets * AUTH_CACHE_WAYS, sizeof *c->e);
    if (c->e == NULL) {
        free(c);
        return NULL;
    }
    c->seed =
        (uint64_t)(uintptr_t)c * 0x9E3779B97F4A7C15ULL ^ (uint64_t)time(NULL);
    return c;
}

static void auth_entry_clear(auth_cache *c, auth_entry *e)
{
    if (e->token == NULL) return;
    explicit_bzero(e->token, e->len);
    free(e->token);
    memset(e, 0, sizeof *e);
    assert(c->st.entries > 0);
    c->st.entries--;
}

void auth_cache_free(auth_cache *c)
{
    if (c == NULL) return;
    for (size_t i = 0; i < c->n_sets * AUTH_CACHE_WAYS; i++)
        auth_entry_clear(c, &c->e[i]);
    assert(c->st.entries == 0);
    free(c->e);
    free(c);
}

parley_err auth_cache_verify(auth_cache *c, const char *token, int64_t now_s,
                             auth_identity *out)
{
    if (c == NULL || token == NULL || out == NULL)
        return PARLEY_ERR_UNAUTHENTICATED;
    size_t n;
    const char *bare = auth_bare(token, &n);
    if (bare == NULL) return PARLEY_ERR_UNAUTHENTICATED;
    if (n > AUTH_CACHE_TOKEN_MAX) {
        c->st.misses++;
        return auth_verify(c->a, bare, now_s, out);
    }
    uint64_t h = auth_hash(c->seed, bare, n);
    auth_entry *set = &c->e[(h % c->n_sets) * AUTH_CACHE_WAYS];
    c->clock++;
    for (int i = 0; i < AUTH_CACHE_WAYS; i++) {
        auth_entry *e = &set[i];
        if (e->token == NULL || e->hash != h || e->len != n ||
            memcmp(e->token, bare, n) != 0)
            continue;
        c->st.hits++;
        if (!auth_window_open(&e->win, now_s)) {
            /* Expired (or not yet valid, if the clock went back): refused
             * as auth_verify would; an expired token never comes back. */
            if ((double)now_s > e->win.exp) auth_entry_clear(c, e);
            return PARLEY_ERR_UNAUTHENTICATED;
        }
        e->used = c->clock;
        *out = e->id;
        return PARLEY_OK;
    }
    c->st.misses++;
    auth_window w;
    auth_identity id;
    parley_err err = auth_verify_bare(c->a, bare, now_s, &id, &w);
    if (err != PARLEY_OK) return err;
    *out = id;
    /* Remember it in the free or least recently used way of its set. */
    auth_entry *victim = &set[0];
    for (int i = 0; i < AUTH_CACHE_WAYS; i++) {
        if (set[i].token == NULL) {
            victim = &set[i];
            break;
        }
        if (set[i].used < victim->used) victim = &set[i];
    }
    char *copy = malloc(n + 1);
    if (copy == NULL) return PARLEY_OK; /* verified; just not remembered */
    memcpy(copy, bare, n);
    copy[n] = '\0';
    if (victim->token != NULL) {
        c->st.evictions++;
        auth_entry_clear(c, victim);
    }
    victim->token = copy;
    victim->len = n;
    victim->hash = h;
    victim->used = c->clock;
    victim->win = w;
    victim->id = id;
    c->st.entries++;
    assert(c->st.entries <= c->n_sets * AUTH_CACHE_WAYS);
    return PARLEY_OK;
}

void auth_cache_get_stats(const auth_cache *c, auth_cache_stats *out)
{
    *out = c->st;
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
