/* auth.c: bearer-token identity (see auth.h). The header is read first
 * (base64url + jansson) for its `alg` and `kid`; the key is chosen by that
 * algorithm only among keys made for it (an HMAC secret for HS256, RSA keys
 * for RS256, P-256 keys for ES256), so a token cannot make a public key
 * serve as an HMAC secret; libjwt then checks the signature with that key,
 * and the algorithm it verified is compared again. The claims are read with
 * jansson so their JSON types are checked exactly (the `rooms` claim
 * through access_grants_parse). Tokens are never logged or copied anywhere
 * but libjwt's own parse and an auth_cache's entries (wiped when dropped).
 *
 * Threads: any thread may verify (History's reader threads do, each with
 * its own auth_cache); auth_reload swaps the keys under a write lock and
 * moves the key generation on, and a cached verdict of an older generation
 * is never used again. A cached token's time window (exp, nbf, iat, the
 * maximum lifetime) is tested against the clock on every hit by the same
 * code as a fresh token's, so a cached verdict never outlives the token. */
#include "auth.h"

#include <assert.h>
#include <errno.h>
#include <jansson.h>
#include <jwt.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "auth_keys.h"

#define AUTH_SECRET_MIN 32
/* Far above any real token; bounds the work on hostile input. */
#define AUTH_TOKEN_MAX 8192
#define AUTH_HEADER_MAX 1024
#define AUTH_CLAIM_MAX 256 /* iss, aud, svc */

typedef struct auth_secret {
    unsigned char *p;
    size_t len;
} auth_secret;

struct auth {
    auth_secret user, svc; /* HS256 secrets; p NULL when absent */
    char *keys_file;       /* NULL: none */
    struct stat keys_st;   /* the file as last read */
    auth_keyset keys;
    char *issuer, *audience; /* NULL: not checked */
    int64_t max_ttl_s, leeway_s;
    /* keys and gen: read by every verifier, written by auth_reload */
    pthread_rwlock_t lock;
    uint64_t gen; /* moves on with each new key set */
};

static int secret_set(auth_secret *s, const void *p, size_t len)
{
    if (p == NULL || len == 0) return 0;
    if (len < AUTH_SECRET_MIN || len > INT_MAX) return -1;
    s->p = malloc(len);
    if (!s->p) return -1;
    memcpy(s->p, p, len);
    s->len = len;
    return 0;
}

static void secret_wipe(auth_secret *s)
{
    if (s->p) explicit_bzero(s->p, s->len);
    free(s->p);
    s->p = NULL;
    s->len = 0;
}

/* Reads the keys file into a new key set; fills st. */
static int keys_read(const char *path, auth_keyset *ks, struct stat *st,
                     char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read keys file %s: %s", path,
                 strerror(errno));
        return -1;
    }
    char *buf = malloc(AUTH_KEYS_FILE_MAX + 1);
    size_t n = buf ? fread(buf, 1, AUTH_KEYS_FILE_MAX + 1, f) : 0;
    int bad = !buf || ferror(f) || fstat(fileno(f), st) != 0;
    fclose(f);
    if (bad || n > AUTH_KEYS_FILE_MAX) {
        snprintf(err, errlen, "cannot read keys file %s%s", path,
                 n > AUTH_KEYS_FILE_MAX ? ": over 1 MiB" : "");
        free(buf);
        return -1;
    }
    char why[300];
    int rc = auth_keys_parse(buf, n, ks, why, sizeof why);
    free(buf);
    if (rc != 0) snprintf(err, errlen, "keys file %s: %s", path, why);
    return rc;
}

parley_err auth_open(const auth_opts *o, auth **out, char *err, size_t errlen)
{
    *out = NULL;
    auth *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return PARLEY_ERR_INTERNAL;
    }
    if (pthread_rwlock_init(&a->lock, NULL) != 0) {
        free(a);
        snprintf(err, errlen, "cannot make a lock");
        return PARLEY_ERR_INTERNAL;
    }
    if (secret_set(&a->user, o->user_secret, o->user_secret_len) != 0 ||
        secret_set(&a->svc, o->svc_secret, o->svc_secret_len) != 0) {
        snprintf(err, errlen, "a JWT secret must be at least %d bytes",
                 AUTH_SECRET_MIN);
        auth_free(a);
        return PARLEY_ERR_INTERNAL;
    }
    if (a->user.p && a->svc.p && a->user.len == a->svc.len &&
        memcmp(a->user.p, a->svc.p, a->user.len) == 0) {
        snprintf(err, errlen,
                 "the service secret must differ from the user "
                 "secret");
        auth_free(a);
        return PARLEY_ERR_INTERNAL;
    }
    if (o->keys_file && *o->keys_file) {
        a->keys_file = strdup(o->keys_file);
        if (!a->keys_file ||
            keys_read(a->keys_file, &a->keys, &a->keys_st, err, errlen) != 0) {
            auth_free(a);
            return PARLEY_ERR_INTERNAL;
        }
    }
    if (!a->user.p && a->keys.n == 0) {
        snprintf(
            err, errlen,
            "no JWT secret or public keys configured: nothing to verify "
            "user tokens with (set PARLEY_JWT_KEYS, PARLEY_JWT_SECRET_FILE "
            "or PARLEY_JWT_SECRET, or run with --dev)");
        auth_free(a);
        return PARLEY_ERR_INTERNAL;
    }
    if ((o->issuer && *o->issuer && !(a->issuer = strdup(o->issuer))) ||
        (o->audience && *o->audience && !(a->audience = strdup(o->audience)))) {
        snprintf(err, errlen, "out of memory");
        auth_free(a);
        return PARLEY_ERR_INTERNAL;
    }
    a->max_ttl_s = o->max_ttl_s > 0 ? o->max_ttl_s : 0;
    a->leeway_s = o->leeway_s > 0 ? o->leeway_s : 0;
    *out = a;
    return PARLEY_OK;
}

parley_err auth_new(const void *secret, size_t len, auth **out)
{
    char err[200];
    *out = NULL;
    if (secret == NULL || len < AUTH_SECRET_MIN) return PARLEY_ERR_INTERNAL;
    auth_opts o = {0};
    o.user_secret = secret;
    o.user_secret_len = len;
    return auth_open(&o, out, err, sizeof err);
}

void auth_free(auth *a)
{
    if (a == NULL) return;
    secret_wipe(&a->user);
    secret_wipe(&a->svc);
    auth_keys_free(&a->keys);
    free(a->keys_file);
    free(a->issuer);
    free(a->audience);
    pthread_rwlock_destroy(&a->lock);
    free(a);
}

int auth_reload(auth *a, char *err, size_t errlen)
{
    struct stat st;
    if (!a->keys_file) return 0;
    if (stat(a->keys_file, &st) != 0) {
        snprintf(err, errlen, "keys file %s: %s (old keys kept)", a->keys_file,
                 strerror(errno));
        return -1;
    }
    if (st.st_size == a->keys_st.st_size && st.st_ino == a->keys_st.st_ino &&
        st.st_mtim.tv_sec == a->keys_st.st_mtim.tv_sec &&
        st.st_mtim.tv_nsec == a->keys_st.st_mtim.tv_nsec)
        return 0;
    auth_keyset ks;
    char why[400];
    if (keys_read(a->keys_file, &ks, &st, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s (old keys kept)", why);
        a->keys_st = st; /* do not retry the same bad file every time */
        return -1;
    }
    /* Verifiers on other threads hold the read lock while they use the
     * keys: the old set goes only when none does. */
    auth_keyset old;
    pthread_rwlock_wrlock(&a->lock);
    old = a->keys;
    a->keys = ks;
    a->gen++;
    pthread_rwlock_unlock(&a->lock);
    auth_keys_free(&old);
    a->keys_st = st;
    return 1;
}

size_t auth_key_count(const auth *a)
{
    pthread_rwlock_rdlock((pthread_rwlock_t *)&a->lock);
    size_t n = a->keys.n;
    pthread_rwlock_unlock((pthread_rwlock_t *)&a->lock);
    return n;
}

int auth_can_mint(const auth *a) { return a && a->user.p != NULL; }

int auth_expired(const auth *a, const auth_identity *id, int64_t now_s)
{
    return auth_expired_at(a, id->exp, now_s);
}

int auth_expired_at(const auth *a, int64_t exp, int64_t now_s)
{
    return exp < INT64_MAX - a->leeway_s && now_s > exp + a->leeway_s;
}

/* A string claim of 1..max bytes, without embedded NULs; NULL if not. */
static const char *claim_str(json_t *claims, const char *name, size_t max)
{
    json_t *v = json_object_get(claims, name);
    if (!json_is_string(v)) return NULL;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n == 0 || n > max || strlen(s) != n) return NULL;
    return s;
}

/* A NumericDate claim (RFC 7519: seconds, integer or not): 1 and *out if
 * present and a number, 0 if absent, -1 if of another type. */
static int claim_time(json_t *claims, const char *name, double *out)
{
    json_t *v = json_object_get(claims, name);
    if (v == NULL) return 0;
    if (!json_is_number(v)) return -1;
    *out = json_number_value(v);
    return 1;
}

/* aud: a string, or an array of strings, one of which is want. */
static int aud_has(json_t *claims, const char *want)
{
    json_t *v = json_object_get(claims, "aud");
    if (json_is_string(v)) return strcmp(json_string_value(v), want) == 0;
    if (!json_is_array(v)) return 0;
    size_t i;
    json_t *e;
    json_array_foreach(v, i,
                       e) if (json_is_string(e) &&
                              strcmp(json_string_value(e), want) == 0) return 1;
    return 0;
}

/* The time claims of a token and the limits they were judged by: all
 * that makes its verdict depend on the clock. */
typedef struct auth_window {
    double exp, nbf, iat;
    int has_nbf, has_iat;
    double lee, max_ttl; /* the auth's leeway and maximum lifetime (0: none) */
} auth_window;

/* 1 if the token is not valid yet at now_s (nbf, iat) or, without an iat,
 * lives longer than the maximum lifetime from now on. */
static int window_early(const auth_window *w, int64_t now_s)
{
    double now = (double)now_s;
    if (w->has_nbf && now + w->lee < w->nbf) return 1;
    if (w->has_iat && now + w->lee < w->iat) return 1;
    /* a lifetime over the limit is refused even while valid, so a
     * year-long token cannot be used at all */
    double from = w->has_iat ? w->iat : now;
    return w->max_ttl > 0 && w->exp - from > w->max_ttl + w->lee;
}

/* 1 once the token expired at now_s (exp plus the leeway passed). */
static int window_expired(const auth_window *w, int64_t now_s)
{
    return (double)now_s > w->exp + w->lee;
}

/* Checks the claims of a token whose signature verified (by the service
 * secret when service) and fills out and win. */
static parley_err check_claims(const auth *a, json_t *claims, int service,
                               int64_t now_s, auth_identity *out,
                               auth_window *win)
{
    auth_window w;
    memset(&w, 0, sizeof w);
    w.lee = (double)a->leeway_s;
    w.max_ttl = (double)a->max_ttl_s;
    if (!json_is_object(claims) || claim_time(claims, "exp", &w.exp) != 1)
        return PARLEY_ERR_UNAUTHENTICATED;
    w.has_nbf = claim_time(claims, "nbf", &w.nbf);
    w.has_iat = claim_time(claims, "iat", &w.iat);
    if (w.has_nbf < 0 || w.has_iat < 0) return PARLEY_ERR_UNAUTHENTICATED;
    if (window_early(&w, now_s)) return PARLEY_ERR_UNAUTHENTICATED;
    if (!service) {
        if (a->issuer) {
            const char *iss = claim_str(claims, "iss", AUTH_CLAIM_MAX);
            if (!iss || strcmp(iss, a->issuer) != 0)
                return PARLEY_ERR_UNAUTHENTICATED;
        }
        if (a->audience && !aud_has(claims, a->audience))
            return PARLEY_ERR_UNAUTHENTICATED;
    }

    auth_identity id;
    memset(&id, 0, sizeof id);
    json_t *svc = json_object_get(claims, "svc");
    if (service) {
        const char *name = claim_str(claims, "svc", RULES_AUTHOR_ID_MAX);
        if (!name) return PARLEY_ERR_UNAUTHENTICATED;
        memcpy(id.id, name, strlen(name) + 1);
        memcpy(id.display_name, name, strlen(name) + 1);
        id.role = PARLEY_ROLE_PARTICIPANT;
        id.service = 1;
    } else {
        if (svc != NULL) return PARLEY_ERR_UNAUTHENTICATED; /* not a user */
        const char *sub = claim_str(claims, "sub", RULES_AUTHOR_ID_MAX);
        const char *name = claim_str(claims, "name", RULES_DISPLAY_NAME_MAX);
        const char *role = claim_str(claims, "role", 32);
        json_t *rooms = json_object_get(claims, "rooms");
        /* role may be left out only when rooms says everything; a role
         * that is there must be valid either way. */
        if (sub == NULL || name == NULL ||
            (role == NULL &&
             (rooms == NULL || json_object_get(claims, "role") != NULL)))
            return PARLEY_ERR_UNAUTHENTICATED;
        memcpy(id.id, sub, strlen(sub) + 1);
        memcpy(id.display_name, name, strlen(name) + 1);
        id.role = role ? parley_role_parse(role) : PARLEY_ROLE_PARTICIPANT;
        if (rooms != NULL &&
            access_grants_parse(rooms, &id.grants) != PARLEY_OK)
            return PARLEY_ERR_UNAUTHENTICATED;
    }
    parley_author au = auth_author(&id);
    if (rules_author(&au) != PARLEY_OK) return PARLEY_ERR_UNAUTHENTICATED;
    /* expiry last: only a token that is right in every other way may be
     * told apart as merely expired (the client then renews it) */
    if (window_expired(&w, now_s)) return PARLEY_ERR_TOKEN_EXPIRED;
    id.exp = w.exp >= (double)INT64_MAX ? INT64_MAX : (int64_t)w.exp;
    *out = id;
    *win = w;
    return PARLEY_OK;
}

/* The token's header: its alg, and its kid (copied into kid, "" if none).
 * -1 if it is not a JSON object with a known alg, or has `crit`. */
static int read_header(const char *token, auth_alg *alg, char *kid,
                       size_t kid_cap)
{
    const char *dot = strchr(token, '.');
    if (!dot || (size_t)(dot - token) > AUTH_HEADER_MAX) return -1;
    unsigned char *raw;
    size_t n;
    if (auth_b64url_decode(token, (size_t)(dot - token), &raw, &n) != 0)
        return -1;
    json_t *h = json_loadb((const char *)raw, n, JSON_REJECT_DUPLICATES, NULL);
    free(raw);
    json_t *a = json_object_get(h, "alg"), *k = json_object_get(h, "kid");
    int rc = -1;
    kid[0] = '\0';
    if (json_is_string(a) && !json_object_get(h, "crit") &&
        (k == NULL ||
         (json_is_string(k) && json_string_length(k) < kid_cap &&
          strlen(json_string_value(k)) == json_string_length(k)))) {
        *alg = auth_alg_parse(json_string_value(a));
        if (k) memcpy(kid, json_string_value(k), json_string_length(k) + 1);
        rc = *alg == AUTH_ALG_NONE ? -1 : 0;
    }
    json_decref(h);
    return rc;
}

/* Decodes token with key and, if its signature holds for alg, returns its
 * claims; NULL otherwise. */
static json_t *try_key(const char *token, auth_alg alg, const void *key,
                       size_t len)
{
    jwt_t *jwt = NULL;
    json_t *claims = NULL;
    if (jwt_decode(&jwt, token, key, (int)len) != 0 || jwt == NULL) return NULL;
    jwt_alg_t want = alg == AUTH_ALG_HS256   ? JWT_ALG_HS256
                     : alg == AUTH_ALG_RS256 ? JWT_ALG_RS256
                                             : JWT_ALG_ES256;
    if (jwt_get_alg(jwt) == want) {
        char *json = jwt_get_grants_json(jwt, NULL);
        if (json) claims = json_loads(json, JSON_REJECT_DUPLICATES, NULL);
        free(json);
    }
    jwt_free(jwt);
    return claims;
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

/* Verifies a bare token (auth_bare's output); *gen is the key generation
 * it was judged by, *win its time window. */
static parley_err verify_bare(const auth *a, const char *token, int64_t now_s,
                              auth_identity *out, auth_window *win,
                              uint64_t *gen)
{
    auth_alg alg;
    char kid[AUTH_KID_MAX + 1];
    if (read_header(token, &alg, kid, sizeof kid) != 0)
        return PARLEY_ERR_UNAUTHENTICATED;
    json_t *claims = NULL;
    int service = 0;
    pthread_rwlock_t *lock = (pthread_rwlock_t *)&a->lock;
    pthread_rwlock_rdlock(lock);
    *gen = a->gen;
    if (alg == AUTH_ALG_HS256) {
        /* the user secret, else the service secret; without a service
         * secret, service tokens are signed with the user secret */
        if (a->user.p) claims = try_key(token, alg, a->user.p, a->user.len);
        if (claims && !a->svc.p && json_object_get(claims, "svc")) service = 1;
        if (!claims && a->svc.p) {
            claims = try_key(token, alg, a->svc.p, a->svc.len);
            service = claims != NULL;
        }
    } else {
        for (size_t i = 0; i < a->keys.n && !claims; i++) {
            const auth_pubkey *k = &a->keys.keys[i];
            /* a kid picks the key; a key without one (PEM) may match any */
            if (k->alg != alg || (kid[0] && k->kid[0] && strcmp(k->kid, kid)))
                continue;
            claims = try_key(token, alg, k->pem, k->pem_len);
        }
    }
    pthread_rwlock_unlock(lock);
    if (!claims) return PARLEY_ERR_UNAUTHENTICATED;
    parley_err err = check_claims(a, claims, service, now_s, out, win);
    json_decref(claims);
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
    uint64_t gen;
    return verify_bare(a, bare, now_s, out, &w, &gen);
}

/* The key generation now. */
static uint64_t auth_gen(const auth *a)
{
    pthread_rwlock_t *lock = (pthread_rwlock_t *)&a->lock;
    pthread_rwlock_rdlock(lock);
    uint64_t g = a->gen;
    pthread_rwlock_unlock(lock);
    return g;
}

/* ---- the cache ---------------------------------------------------------- */

typedef struct auth_entry {
    char *token; /* NULL: free; else malloc'd, len bytes and a NUL */
    size_t len;
    uint64_t hash;
    uint64_t used; /* c->clock at the last hit or insert */
    uint64_t gen;  /* the key generation that accepted it */
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
    uint64_t gen = auth_gen(c->a);
    c->clock++;
    for (int i = 0; i < AUTH_CACHE_WAYS; i++) {
        auth_entry *e = &set[i];
        if (e->token == NULL || e->hash != h || e->len != n ||
            memcmp(e->token, bare, n) != 0)
            continue;
        if (e->gen != gen) {
            /* Judged by keys that were replaced since: judged again. */
            auth_entry_clear(c, e);
            break;
        }
        c->st.hits++;
        /* The same tests, in the same order, as a fresh token's. */
        if (window_early(&e->win, now_s)) return PARLEY_ERR_UNAUTHENTICATED;
        if (window_expired(&e->win, now_s)) {
            auth_entry_clear(c, e); /* an expired token never comes back */
            return PARLEY_ERR_TOKEN_EXPIRED;
        }
        e->used = c->clock;
        *out = e->id;
        return PARLEY_OK;
    }
    c->st.misses++;
    auth_window w;
    auth_identity id;
    parley_err err = verify_bare(c->a, bare, now_s, &id, &w, &gen);
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
    victim->gen = gen;
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

/* {"rooms": {pattern: role, ...}} as JSON text (malloc'd), to add to a
 * token's claims; NULL on failure. */
static char *grants_json(const access_grants *g)
{
    json_t *obj = json_object(), *rooms = json_object();
    char *txt = NULL;
    int ok = obj && rooms && json_object_set(obj, "rooms", rooms) == 0;
    for (unsigned i = 0; ok && i < g->n; i++)
        ok = json_object_set_new(rooms, g->g[i].pattern,
                                 json_string(parley_role_name(g->g[i].role))) ==
             0;
    if (ok) txt = json_dumps(obj, JSON_COMPACT);
    json_decref(rooms);
    json_decref(obj);
    return txt;
}

/* json: more claims as a JSON object's text, or NULL. */
static char *mint(const auth_secret *key, const char *const *str_claims,
                  const char *json, int64_t now_s, int64_t ttl_s)
{
    if (key->p == NULL || ttl_s <= 0 || now_s < 0 || now_s > LONG_MAX - ttl_s)
        return NULL;
    jwt_t *jwt = NULL;
    if (jwt_new(&jwt) != 0) return NULL;
    int ok = json == NULL || jwt_add_grants_json(jwt, json) == 0;
    for (size_t i = 0; str_claims[i]; i += 2)
        ok = ok && jwt_add_grant(jwt, str_claims[i], str_claims[i + 1]) == 0;
    char *token = NULL;
    if (ok && jwt_add_grant_int(jwt, "iat", (long)now_s) == 0 &&
        jwt_add_grant_int(jwt, "exp", (long)(now_s + ttl_s)) == 0 &&
        jwt_set_alg(jwt, JWT_ALG_HS256, key->p, (int)key->len) == 0)
        token = jwt_encode_str(jwt);
    jwt_free(jwt);
    return token;
}

char *auth_mint(const auth *a, const auth_identity *id, int64_t now_s,
                int64_t ttl_s)
{
    if (a == NULL || id == NULL) return NULL;
    parley_author author = auth_author(id);
    if (rules_author(&author) != PARLEY_OK) return NULL;
    const char *claims[] = {"sub",  id->id,
                            "name", id->display_name,
                            "role", parley_role_name(id->role),
                            NULL};
    char *rooms = id->grants.present ? grants_json(&id->grants) : NULL;
    if (id->grants.present && rooms == NULL) return NULL;
    char *token = mint(&a->user, claims, rooms, now_s, ttl_s);
    free(rooms);
    return token;
}

char *auth_mint_service(const auth *a, const char *name, int64_t now_s,
                        int64_t ttl_s)
{
    if (a == NULL || name == NULL) return NULL;
    parley_author au = {name, name, PARLEY_ROLE_PARTICIPANT};
    if (rules_author(&au) != PARLEY_OK) return NULL;
    const char *claims[] = {"svc", name, NULL};
    return mint(a->svc.p ? &a->svc : &a->user, claims, NULL, now_s, ttl_s);
}

parley_author auth_author(const auth_identity *id)
{
    parley_author a = {id->id, id->display_name, id->role};
    return a;
}

int auth_room_role(const auth_identity *id, const char *room)
{
    if (id->service) return 0;
    if (!id->grants.present) return id->role;
    return access_grants_role(&id->grants, room);
}
