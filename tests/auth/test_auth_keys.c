/* test_auth_keys.c: tokens of an identity provider (RS256, ES256) verified
 * with public keys from PEM and JWKS files, keys chosen by kid, reloaded
 * without a restart; the claims policy (iss, aud, maximum lifetime, clock
 * skew); service tokens that can never pass as users; and the attacks the
 * key choice must stop (an HS256 token "signed" with the public key, a
 * private key in the keys file). Keys are generated with OpenSSL at test
 * time, tokens signed with libjwt and the private keys. */
#include <CUnit/Basic.h>
#include <jwt.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "auth_keys.h"

static const int64_t NOW = 1790000000;
static const char USER_SECRET[] = "user-secret-0123456789abcdef-0123456789";
static const char SVC_SECRET[] = "svc-secret-fedcba9876543210-fedcba98765";

typedef struct kp {
    EVP_PKEY *pk;
    char *priv_pem, *pub_pem;
} kp;

static char *pem_of(EVP_PKEY *pk, int priv)
{
    BIO *m = BIO_new(BIO_s_mem());
    if (priv)
        PEM_write_bio_PrivateKey(m, pk, NULL, NULL, 0, NULL, NULL);
    else
        PEM_write_bio_PUBKEY(m, pk);
    char *d;
    long n = BIO_get_mem_data(m, &d);
    char *out = strndup(d, (size_t)n);
    BIO_free(m);
    return out;
}

static kp gen(int rsa)
{
    kp k;
    k.pk = rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
    k.priv_pem = pem_of(k.pk, 1);
    k.pub_pem = pem_of(k.pk, 0);
    return k;
}

static void kp_free(kp *k)
{
    EVP_PKEY_free(k->pk);
    free(k->priv_pem);
    free(k->pub_pem);
}

static kp RSA1, RSA2, EC1;
static char DIR_[64];

static int init(void)
{
    RSA1 = gen(1);
    RSA2 = gen(1);
    EC1 = gen(0);
    snprintf(DIR_, sizeof DIR_, "/tmp/parley-keys-XXXXXX");
    return RSA1.pk && RSA2.pk && EC1.pk && mkdtemp(DIR_) ? 0 : -1;
}

static int clean(void)
{
    kp_free(&RSA1);
    kp_free(&RSA2);
    kp_free(&EC1);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", DIR_);
    return system(cmd) == 0 ? 0 : -1;
}

static char *path_of(const char *name)
{
    static char p[128];
    snprintf(p, sizeof p, "%s/%s", DIR_, name);
    return p;
}

static void write_file(const char *name, const char *text)
{
    FILE *f = fopen(path_of(name), "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
}

/* A token: header extras (kid) and claims JSON, signed with alg and key. */
static char *sign(jwt_alg_t alg, const char *key, size_t keylen,
                  const char *kid, const char *claims)
{
    jwt_t *j = NULL;
    CU_ASSERT_FATAL(jwt_new(&j) == 0);
    CU_ASSERT_FATAL(jwt_add_grants_json(j, claims) == 0);
    if (kid) jwt_add_header(j, "kid", kid);
    CU_ASSERT_FATAL(jwt_set_alg(j, alg, (const unsigned char *)key,
                                (int)keylen) == 0);
    char *t = jwt_encode_str(j);
    jwt_free(j);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    return t;
}

#define USER "\"sub\":\"ann\",\"name\":\"Ann\",\"role\":\"participant\""
#define CLAIMS(extra) "{" USER ",\"iat\":1789999990,\"exp\":1790000600" extra "}"

static char *rs(const kp *k, const char *kid, const char *claims)
{
    return sign(JWT_ALG_RS256, k->priv_pem, strlen(k->priv_pem), kid, claims);
}

static char *es(const kp *k, const char *kid, const char *claims)
{
    return sign(JWT_ALG_ES256, k->priv_pem, strlen(k->priv_pem), kid, claims);
}

static auth *open_keys(const char *file, const char *iss, const char *aud,
                       int64_t max_ttl, int64_t leeway)
{
    auth_opts o = {0};
    o.keys_file = path_of(file);
    o.issuer = iss;
    o.audience = aud;
    o.max_ttl_s = max_ttl;
    o.leeway_s = leeway;
    auth *a = NULL;
    char err[400];
    parley_err e = auth_open(&o, &a, err, sizeof err);
    if (e != PARLEY_OK) fprintf(stderr, "auth_open: %s\n", err);
    return a;
}

static parley_err check(const auth *a, const char *t, int64_t now)
{
    auth_identity id;
    return auth_verify(a, t, now, &id);
}

/* base64url of a BIGNUM parameter of pk. */
static char *b64p(const EVP_PKEY *pk, const char *param, size_t pad)
{
    BIGNUM *bn = NULL;
    EVP_PKEY_get_bn_param(pk, param, &bn);
    unsigned char buf[512];
    int n = BN_bn2binpad(bn, buf, pad ? (int)pad : BN_num_bytes(bn));
    BN_free(bn);
    unsigned char b64[800];
    int m = EVP_EncodeBlock(b64, buf, n);
    while (m > 0 && b64[m - 1] == '=') m--;
    for (int i = 0; i < m; i++)
        b64[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
    return strndup((char *)b64, (size_t)m);
}

static char *jwks(void)
{
    char *n1 = b64p(RSA1.pk, OSSL_PKEY_PARAM_RSA_N, 0);
    char *e1 = b64p(RSA1.pk, OSSL_PKEY_PARAM_RSA_E, 0);
    char *n2 = b64p(RSA2.pk, OSSL_PKEY_PARAM_RSA_N, 0);
    char *e2 = b64p(RSA2.pk, OSSL_PKEY_PARAM_RSA_E, 0);
    char *x = b64p(EC1.pk, OSSL_PKEY_PARAM_EC_PUB_X, 32);
    char *y = b64p(EC1.pk, OSSL_PKEY_PARAM_EC_PUB_Y, 32);
    char *out = malloc(8192);
    snprintf(out, 8192,
             "{\"keys\":["
             "{\"kty\":\"RSA\",\"kid\":\"r1\",\"use\":\"sig\",\"alg\":"
             "\"RS256\",\"n\":\"%s\",\"e\":\"%s\"},"
             "{\"kty\":\"RSA\",\"kid\":\"r2\",\"n\":\"%s\",\"e\":\"%s\"},"
             "{\"kty\":\"EC\",\"kid\":\"e1\",\"crv\":\"P-256\",\"x\":\"%s\","
             "\"y\":\"%s\"},"
             "{\"kty\":\"RSA\",\"kid\":\"enc\",\"use\":\"enc\",\"n\":\"%s\","
             "\"e\":\"%s\"}]}",
             n1, e1, n2, e2, x, y, n1, e1);
    free(n1), free(e1), free(n2), free(e2), free(x), free(y);
    return out;
}

static void test_pem_keys(void)
{
    char both[8192];
    snprintf(both, sizeof both, "%s%s", RSA1.pub_pem, EC1.pub_pem);
    write_file("pem", both);
    auth *a = open_keys("pem", NULL, NULL, 0, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(auth_key_count(a), 2);
    CU_ASSERT_FALSE(auth_can_mint(a)); /* public keys only: cannot mint */
    char *t = rs(&RSA1, NULL, CLAIMS(""));
    auth_identity id;
    CU_ASSERT_EQUAL(auth_verify(a, t, NOW, &id), PARLEY_OK);
    CU_ASSERT_STRING_EQUAL(id.id, "ann");
    CU_ASSERT_EQUAL(id.exp, 1790000600);
    CU_ASSERT_FALSE(id.service);
    CU_ASSERT_EQUAL(check(a, t, 1790000601), PARLEY_ERR_TOKEN_EXPIRED);
    free(t);
    t = es(&EC1, "any-kid", CLAIMS("")); /* PEM keys match any kid */
    CU_ASSERT_EQUAL(check(a, t, NOW), PARLEY_OK);
    free(t);
    t = rs(&RSA2, NULL, CLAIMS("")); /* a key not in the file */
    CU_ASSERT_EQUAL(check(a, t, NOW), PARLEY_ERR_UNAUTHENTICATED);
    free(t);
    /* HS256 "signed" with the public key as HMAC secret: the classic
     * algorithm confusion; no HMAC secret is configured, and a public key
     * is never used as one */
    t = sign(JWT_ALG_HS256, RSA1.pub_pem, strlen(RSA1.pub_pem), NULL,
             CLAIMS(""));
    CU_ASSERT_EQUAL(check(a, t, NOW), PARLEY_ERR_UNAUTHENTICATED);
    free(t);
    /* RS384 with the right key: only RS256 */
    t = sign(JWT_ALG_RS384, RSA1.priv_pem, strlen(RSA1.priv_pem), NULL,
             CLAIMS(""));
    CU_ASSERT_EQUAL(check(a, t, NOW), PARLEY_ERR_UNAUTHENTICATED);
    free(t);
    /* an ES256 header on an RSA signature */
    t = es(&EC1, NULL, CLAIMS(""));
    char *dot = strrchr(t, '.');
    char *r = rs(&RSA1, NULL, CLAIMS(""));
    char forged[4096];
    snprintf(forged, sizeof forged, "%.*s%s", (int)(dot - t), t,
             strrchr(r, '.'));
    CU_ASSERT_EQUAL(check(a, forged, NOW), PARLEY_ERR_UNAUTHENTICATED);
    free(t);
    free(r);
    auth_free(a);
}

static void test_jwks_kid_and_reload(void)
{
    char *doc = jwks();
    write_file("jwks", doc);
    free(doc);
    auth *a = open_keys("jwks", NULL, NULL, 0, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(auth_key_count(a), 3); /* the "enc" key is left out */
    char *t1 = rs(&RSA1, "r1", CLAIMS(""));
    char *t2 = rs(&RSA2, "r2", CLAIMS(""));
    char *te = es(&EC1, "e1", CLAIMS(""));
    char *wrong = rs(&RSA1, "r2", CLAIMS("")); /* kid names another key */
    char *nokid = rs(&RSA2, NULL, CLAIMS(""));
    CU_ASSERT_EQUAL(check(a, t1, NOW), PARLEY_OK);
    CU_ASSERT_EQUAL(check(a, t2, NOW), PARLEY_OK);
    CU_ASSERT_EQUAL(check(a, te, NOW), PARLEY_OK);
    CU_ASSERT_EQUAL(check(a, wrong, NOW), PARLEY_ERR_UNAUTHENTICATED);
    CU_ASSERT_EQUAL(check(a, nokid, NOW), PARLEY_OK); /* tries each RSA key */
    char err[300];
    CU_ASSERT_EQUAL(auth_reload(a, err, sizeof err), 0); /* unchanged */

    /* rotation: the provider drops r1; the running handle follows */
    sleep(1); /* a new mtime even on coarse clocks */
    write_file("jwks", "{\"keys\":[]}");
    CU_ASSERT_EQUAL(auth_reload(a, err, sizeof err), -1); /* empty: kept */
    CU_ASSERT_EQUAL(check(a, t1, NOW), PARLEY_OK);
    write_file("jwks.new", RSA2.pub_pem);
    char from[128];
    snprintf(from, sizeof from, "%s", path_of("jwks.new"));
    CU_ASSERT_EQUAL(rename(from, path_of("jwks")), 0);
    CU_ASSERT_EQUAL(auth_reload(a, err, sizeof err), 1);
    CU_ASSERT_EQUAL(auth_key_count(a), 1);
    CU_ASSERT_EQUAL(check(a, t1, NOW), PARLEY_ERR_UNAUTHENTICATED);
    CU_ASSERT_EQUAL(check(a, t2, NOW), PARLEY_OK);
    free(t1), free(t2), free(te), free(wrong), free(nokid);
    auth_free(a);
}

static void test_refused_files(void)
{
    char err[400];
    auth_keyset ks;
    CU_ASSERT_EQUAL(auth_keys_parse(RSA1.priv_pem, strlen(RSA1.priv_pem), &ks,
                                    err, sizeof err),
                    -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "private"));
    const char *jwk_priv =
        "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":"
        "\"AA\",\"d\":\"AA\"}]}";
    CU_ASSERT_EQUAL(auth_keys_parse(jwk_priv, strlen(jwk_priv), &ks, err,
                                    sizeof err),
                    -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "private"));
    const char *bad_point =
        "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":"
        "\"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\",\"y\":"
        "\"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}]}";
    CU_ASSERT_EQUAL(auth_keys_parse(bad_point, strlen(bad_point), &ks, err,
                                    sizeof err),
                    -1);
    EVP_PKEY *small = EVP_RSA_gen(1024);
    char *sp = pem_of(small, 0);
    CU_ASSERT_EQUAL(auth_keys_parse(sp, strlen(sp), &ks, err, sizeof err), -1);
    free(sp);
    EVP_PKEY_free(small);
    CU_ASSERT_EQUAL(auth_keys_parse("junk", 4, &ks, err, sizeof err), -1);
    CU_ASSERT_EQUAL(auth_keys_parse("{\"keys\":5}", 10, &ks, err, sizeof err),
                    -1);
    /* a keys file that cannot be read stops auth_open */
    auth_opts o = {0};
    o.keys_file = path_of("missing");
    auth *a = NULL;
    CU_ASSERT_NOT_EQUAL(auth_open(&o, &a, err, sizeof err), PARLEY_OK);
    /* nothing to verify users with */
    o.keys_file = NULL;
    o.svc_secret = SVC_SECRET;
    o.svc_secret_len = strlen(SVC_SECRET);
    CU_ASSERT_NOT_EQUAL(auth_open(&o, &a, err, sizeof err), PARLEY_OK);
    o.user_secret = SVC_SECRET; /* the same secret for both: refused */
    o.user_secret_len = strlen(SVC_SECRET);
    CU_ASSERT_NOT_EQUAL(auth_open(&o, &a, err, sizeof err), PARLEY_OK);
}

static void test_claims_policy(void)
{
    write_file("pem1", RSA1.pub_pem);
    auth *a = open_keys("pem1", "https://idp.example", "parley", 3600, 30);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    const char *good =
        CLAIMS(",\"iss\":\"https://idp.example\",\"aud\":[\"x\",\"parley\"]");
    char *t = rs(&RSA1, NULL, good);
    CU_ASSERT_EQUAL(check(a, t, NOW), PARLEY_OK);
    /* leeway: 30 s past exp still valid, 31 s not */
    CU_ASSERT_EQUAL(check(a, t, 1790000630), PARLEY_OK);
    CU_ASSERT_EQUAL(check(a, t, 1790000631), PARLEY_ERR_TOKEN_EXPIRED);
    /* iat in the future beyond the leeway */
    CU_ASSERT_EQUAL(check(a, t, 1789999950), PARLEY_ERR_UNAUTHENTICATED);
    free(t);
    const char *bad[] = {
        CLAIMS(",\"aud\":\"parley\""), /* no iss */
        CLAIMS(",\"iss\":\"https://evil.example\",\"aud\":\"parley\""),
        CLAIMS(",\"iss\":\"https://idp.example\""), /* no aud */
        CLAIMS(",\"iss\":\"https://idp.example\",\"aud\":\"other\""),
        CLAIMS(",\"iss\":\"https://idp.example\",\"aud\":[1]"),
        /* a lifetime over max-ttl (3600 + 30) */
        "{" USER ",\"iss\":\"https://idp.example\",\"aud\":\"parley\","
        "\"iat\":1789999990,\"exp\":1790003700}",
        /* no iat: measured from now */
        "{" USER ",\"iss\":\"https://idp.example\",\"aud\":\"parley\","
        "\"exp\":1790003700}",
        /* a service claim on a user key */
        CLAIMS(",\"iss\":\"https://idp.example\",\"aud\":\"parley\","
               "\"svc\":\"gateway\""),
        /* crit headers are not understood: refused */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        t = rs(&RSA1, NULL, bad[i]);
        CU_ASSERT_EQUAL(check(a, t, NOW), PARLEY_ERR_UNAUTHENTICATED);
        free(t);
    }
    jwt_t *j = NULL;
    jwt_new(&j);
    jwt_add_grants_json(j, good);
    jwt_add_header(j, "crit", "exp");
    jwt_set_alg(j, JWT_ALG_RS256, (const unsigned char *)RSA1.priv_pem,
                (int)strlen(RSA1.priv_pem));
    t = jwt_encode_str(j);
    jwt_free(j);
    CU_ASSERT_EQUAL(check(a, t, NOW), PARLEY_ERR_UNAUTHENTICATED);
    free(t);
    auth_free(a);
}

static void test_service_tokens(void)
{
    auth_opts o = {0};
    o.user_secret = USER_SECRET;
    o.user_secret_len = strlen(USER_SECRET);
    o.svc_secret = SVC_SECRET;
    o.svc_secret_len = strlen(SVC_SECRET);
    auth *core = NULL, *gw = NULL;
    char err[300];
    CU_ASSERT_FATAL(auth_open(&o, &core, err, sizeof err) == PARLEY_OK);
    /* the gateway holds only the service secret and public keys */
    write_file("pem2", RSA1.pub_pem);
    auth_opts g = {0};
    g.svc_secret = SVC_SECRET;
    g.svc_secret_len = strlen(SVC_SECRET);
    g.keys_file = path_of("pem2");
    CU_ASSERT_FATAL(auth_open(&g, &gw, err, sizeof err) == PARLEY_OK);
    CU_ASSERT_FALSE(auth_can_mint(gw));
    auth_identity ann = {.id = "ann", .display_name = "Ann",
                         .role = PARLEY_ROLE_ORGANIZER};
    CU_ASSERT_PTR_NULL(auth_mint(gw, &ann, NOW, 60)); /* cannot mint users */

    char *st = auth_mint_service(gw, "gateway", NOW, 600);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    auth_identity id;
    CU_ASSERT_EQUAL(auth_verify(core, st, NOW, &id), PARLEY_OK);
    CU_ASSERT_TRUE(id.service);
    CU_ASSERT_STRING_EQUAL(id.id, "gateway");
    CU_ASSERT_EQUAL(id.role, PARLEY_ROLE_PARTICIPANT); /* never organizer */
    free(st);
    /* the service secret signing a user: refused */
    char *t = sign(JWT_ALG_HS256, SVC_SECRET, strlen(SVC_SECRET), NULL,
                   CLAIMS(""));
    CU_ASSERT_EQUAL(check(core, t, NOW), PARLEY_ERR_UNAUTHENTICATED);
    free(t);
    /* a user secret token claiming svc: refused */
    t = sign(JWT_ALG_HS256, USER_SECRET, strlen(USER_SECRET), NULL,
             "{\"svc\":\"gateway\",\"exp\":1790000600}");
    CU_ASSERT_EQUAL(check(core, t, NOW), PARLEY_ERR_UNAUTHENTICATED);
    free(t);
    /* users still verify */
    char *u = auth_mint(core, &ann, NOW, 60);
    CU_ASSERT_EQUAL(auth_verify(core, u, NOW, &id), PARLEY_OK);
    CU_ASSERT_FALSE(id.service);
    free(u);
    auth_free(core);
    auth_free(gw);

    /* the old setup, one shared secret: service tokens signed with it */
    auth *one = NULL;
    CU_ASSERT_FATAL(auth_new(USER_SECRET, strlen(USER_SECRET), &one) ==
                    PARLEY_OK);
    st = auth_mint_service(one, "gateway", NOW, 600);
    CU_ASSERT_EQUAL(auth_verify(one, st, NOW, &id), PARLEY_OK);
    CU_ASSERT_TRUE(id.service);
    free(st);
    auth_free(one);
}

static void test_b64url(void)
{
    unsigned char *o;
    size_t n;
    CU_ASSERT_EQUAL(auth_b64url_decode("aGk", 3, &o, &n), 0);
    CU_ASSERT(n == 2 && memcmp(o, "hi", 2) == 0);
    free(o);
    CU_ASSERT_EQUAL(auth_b64url_decode("aGk=", 4, &o, &n), 0);
    CU_ASSERT(n == 2);
    free(o);
    CU_ASSERT_EQUAL(auth_b64url_decode("-_8", 3, &o, &n), 0);
    CU_ASSERT(n == 2 && o[0] == 0xfb && o[1] == 0xff);
    free(o);
    CU_ASSERT_EQUAL(auth_b64url_decode("a", 1, &o, &n), -1);
    CU_ASSERT_EQUAL(auth_b64url_decode("a+b=", 4, &o, &n), -1);
    CU_ASSERT_EQUAL(auth_b64url_decode("", 0, &o, &n), 0);
    CU_ASSERT_EQUAL(n, 0);
    free(o);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("auth_keys", init, clean);
    CU_add_test(s, "PEM keys, algorithm confusion", test_pem_keys);
    CU_add_test(s, "JWKS, kid, reload", test_jwks_kid_and_reload);
    CU_add_test(s, "refused key files", test_refused_files);
    CU_add_test(s, "iss, aud, max lifetime, leeway", test_claims_policy);
    CU_add_test(s, "service tokens", test_service_tokens);
    CU_add_test(s, "base64url", test_b64url);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned f = CU_get_number_of_failures();
    CU_cleanup_registry();
    return f ? 1 : 0;
}
