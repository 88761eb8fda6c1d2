/* test_auth.c: auth.c against the real libjwt and, for interoperability,
 * tokens made and checked by Python's PyJWT (Debian python3-jwt) at test
 * time. Forged tokens (alg none, tampered payload, other algorithms, bad
 * claims) are built here byte by byte or signed with libjwt directly. */
#include <CUnit/Basic.h>
#include <jwt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "auth.h"

#ifndef PARLEY_PYTHON
#define PARLEY_PYTHON "/usr/bin/python3"
#endif

static const char SECRET[] = "0123456789abcdef0123456789abcdef-parley-test";
static const char OTHER[] = "fedcba9876543210fedcba9876543210-other-secret";
static const int64_t NOW = 1790000000; /* a fixed clock: 2026-09 */

static auth *A;

static int suite_init(void)
{
    return auth_new(SECRET, strlen(SECRET), &A) == PARLEY_OK ? 0 : -1;
}

static int suite_clean(void)
{
    auth_free(A);
    return 0;
}

static auth_identity ident(const char *id, const char *name, int role)
{
    auth_identity i;
    memset(&i, 0, sizeof i);
    snprintf(i.id, sizeof i.id, "%s", id);
    snprintf(i.display_name, sizeof i.display_name, "%s", name);
    i.role = role;
    return i;
}

static parley_err verify(const char *token, int64_t now)
{
    auth_identity out;
    memset(&out, 0x5a, sizeof out);
    return auth_verify(A, token, now, &out);
}

/* base64url without padding, as JWTs use. */
static char *b64url(const char *s)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t n = strlen(s);
    char *out = malloc(n * 4 / 3 + 4);
    size_t o = 0;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)u[i] << 16;
        if (i + 1 < n) v |= (unsigned)u[i + 1] << 8;
        if (i + 2 < n) v |= u[i + 2];
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        if (i + 1 < n) out[o++] = tab[(v >> 6) & 63];
        if (i + 2 < n) out[o++] = tab[v & 63];
    }
    out[o] = '\0';
    return out;
}

static char *join3(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + strlen(c) + 3;
    char *s = malloc(n);
    snprintf(s, n, "%s.%s.%s", a, b, c);
    return s;
}

/* A token with these claims (JSON object text) signed by libjwt with alg and
 * key. */
static char *sign_claims(const char *claims_json, jwt_alg_t alg, const char *key)
{
    jwt_t *j = NULL;
    CU_ASSERT_FATAL(jwt_new(&j) == 0);
    CU_ASSERT_FATAL(jwt_add_grants_json(j, claims_json) == 0);
    CU_ASSERT_FATAL(jwt_set_alg(j, alg, (const unsigned char *)key, (int)strlen(key)) == 0);
    char *t = jwt_encode_str(j);
    jwt_free(j);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    return t;
}

static const char VALID_CLAIMS[] =
    "{\"sub\":\"u-42\",\"name\":\"Ada L\",\"role\":\"participant\",\"exp\":1790000100}";

static void test_secret_length(void)
{
    auth *a = (auth *)&a; /* must be reset to NULL on failure */
    CU_ASSERT_EQUAL(auth_new(SECRET, 31, &a), PARLEY_ERR_INTERNAL);
    CU_ASSERT_PTR_NULL(a);
    CU_ASSERT_NOT_EQUAL(auth_new(NULL, 40, &a), PARLEY_OK);
    CU_ASSERT_EQUAL(auth_new(SECRET, 32, &a), PARLEY_OK);
    CU_ASSERT_PTR_NOT_NULL(a);
    auth_free(a);
    auth_free(NULL);
}

static void test_mint_verify_roundtrip(void)
{
    auth_identity in = ident("u-1", "Grace Hopper", PARLEY_ROLE_ORGANIZER);
    char *t = auth_mint(A, &in, NOW, 600);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    auth_identity out;
    memset(&out, 0, sizeof out);
    CU_ASSERT_EQUAL(auth_verify(A, t, NOW, &out), PARLEY_OK);
    CU_ASSERT_STRING_EQUAL(out.id, "u-1");
    CU_ASSERT_STRING_EQUAL(out.display_name, "Grace Hopper");
    CU_ASSERT_EQUAL(out.role, PARLEY_ROLE_ORGANIZER);
    parley_author a = auth_author(&out);
    CU_ASSERT_PTR_EQUAL(a.id, out.id);
    CU_ASSERT_PTR_EQUAL(a.display_name, out.display_name);
    CU_ASSERT_EQUAL(a.role, PARLEY_ROLE_ORGANIZER);

    /* exp = NOW + 600: valid up to and including that second. */
    CU_ASSERT_EQUAL(verify(t, NOW + 600), PARLEY_OK);
    CU_ASSERT_EQUAL(verify(t, NOW + 601), PARLEY_ERR_TOKEN_EXPIRED);
    free(t);

    in = ident("p-7", "Überraschung ✓", PARLEY_ROLE_PARTICIPANT);
    t = auth_mint(A, &in, NOW, 60);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(auth_verify(A, t, NOW, &out), PARLEY_OK);
    CU_ASSERT_STRING_EQUAL(out.display_name, "Überraschung ✓");
    CU_ASSERT_EQUAL(out.role, PARLEY_ROLE_PARTICIPANT);
    free(t);
}

static void test_mint_rejects_bad_input(void)
{
    auth_identity in = ident("u-1", "Grace", PARLEY_ROLE_ORGANIZER);
    CU_ASSERT_PTR_NULL(auth_mint(A, &in, NOW, 0));
    CU_ASSERT_PTR_NULL(auth_mint(A, &in, NOW, -5));
    CU_ASSERT_PTR_NULL(auth_mint(A, NULL, NOW, 60));
    in.role = 7;
    CU_ASSERT_PTR_NULL(auth_mint(A, &in, NOW, 60));
    in = ident("", "Grace", PARLEY_ROLE_ORGANIZER);
    CU_ASSERT_PTR_NULL(auth_mint(A, &in, NOW, 60));
}

static void test_bearer_prefix(void)
{
    char *t = sign_claims(VALID_CLAIMS, JWT_ALG_HS256, SECRET);
    const char *forms[] = { "Bearer %s", "bearer %s", "BEARER   %s", "%s" };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        char buf[2048];
        snprintf(buf, sizeof buf, forms[i], t);
        auth_identity out;
        memset(&out, 0, sizeof out);
        CU_ASSERT_EQUAL(auth_verify(A, buf, NOW, &out), PARLEY_OK);
        CU_ASSERT_STRING_EQUAL(out.id, "u-42");
        CU_ASSERT_STRING_EQUAL(out.display_name, "Ada L");
        CU_ASSERT_EQUAL(out.role, PARLEY_ROLE_PARTICIPANT);
    }
    char buf[2048];
    snprintf(buf, sizeof buf, "Basic %s", t);
    CU_ASSERT_EQUAL(verify(buf, NOW), PARLEY_ERR_UNAUTHENTICATED);
    snprintf(buf, sizeof buf, "Bearer%s", t);
    CU_ASSERT_EQUAL(verify(buf, NOW), PARLEY_ERR_UNAUTHENTICATED);
    CU_ASSERT_EQUAL(verify("Bearer ", NOW), PARLEY_ERR_UNAUTHENTICATED);
    free(t);
}

static void test_wrong_secret(void)
{
    char *t = sign_claims(VALID_CLAIMS, JWT_ALG_HS256, OTHER);
    CU_ASSERT_EQUAL(verify(t, NOW), PARLEY_ERR_UNAUTHENTICATED);
    free(t);
    /* The same claims with the right secret pass: the secret made the
     * difference. */
    t = sign_claims(VALID_CLAIMS, JWT_ALG_HS256, SECRET);
    CU_ASSERT_EQUAL(verify(t, NOW), PARLEY_OK);
    free(t);
}

static void test_tampered(void)
{
    char *t = sign_claims(VALID_CLAIMS, JWT_ALG_HS256, SECRET);
    CU_ASSERT_EQUAL(verify(t, NOW), PARLEY_OK);
    char *dot1 = strchr(t, '.');
    char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    CU_ASSERT_PTR_NOT_NULL_FATAL(dot2);
    *dot1 = *dot2 = '\0';
    const char *head = t, *sig = dot2 + 1;

    /* Promote ourselves to organizer, keep the signature. */
    char *payload = b64url("{\"sub\":\"u-42\",\"name\":\"Ada L\",\"role\":\"organizer\","
                           "\"exp\":1790000100}");
    char *forged = join3(head, payload, sig);
    CU_ASSERT_EQUAL(verify(forged, NOW), PARLEY_ERR_UNAUTHENTICATED);
    free(forged);
    free(payload);

    /* One flipped signature character. */
    char *sig2 = strdup(sig);
    sig2[3] = sig2[3] == 'A' ? 'B' : 'A';
    forged = join3(head, dot1 + 1, sig2);
    CU_ASSERT_EQUAL(verify(forged, NOW), PARLEY_ERR_UNAUTHENTICATED);
    free(forged);
    free(sig2);

    /* Signature dropped. */
    forged = join3(head, dot1 + 1, "");
    CU_ASSERT_EQUAL(verify(forged, NOW), PARLEY_ERR_UNAUTHENTICATED);
    free(forged);
    free(t);
}

static void test_alg_none_and_others(void)
{
    char *payload = b64url(VALID_CLAIMS);
    const char *headers[] = {
        "{\"alg\":\"none\",\"typ\":\"JWT\"}",
        "{\"alg\":\"None\",\"typ\":\"JWT\"}",
        "{\"typ\":\"JWT\"}",
    };
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        char *h = b64url(headers[i]);
        char *t = join3(h, payload, "");
        CU_ASSERT_EQUAL(verify(t, NOW), PARLEY_ERR_UNAUTHENTICATED);
        free(t);
        t = join3(h, payload, "c2lnbmF0dXJl");
        CU_ASSERT_EQUAL(verify(t, NOW), PARLEY_ERR_UNAUTHENTICATED);
        free(t);
        free(h);
    }
    free(payload);

    /* libjwt itself can make an unsigned token. */
    jwt_t *j = NULL;
    CU_ASSERT_FATAL(jwt_new(&j) == 0);
    CU_ASSERT_FATAL(jwt_add_grants_json(j, VALID_CLAIMS) == 0);
    char *t = jwt_encode_str(j); /* alg none by default */
    jwt_free(j);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(verify(t, NOW), PARLEY_ERR_UNAUTHENTICATED);
    free(t);

    /* Correctly signed with our secret, but not HS256. */
    jwt_alg_t others[] = { JWT_ALG_HS384, JWT_ALG_HS512 };
    for (size_t i = 0; i < 2; i++) {
        t = sign_claims(VALID_CLAIMS, others[i], SECRET);
        CU_ASSERT_EQUAL(verify(t, NOW), PARLEY_ERR_UNAUTHENTICATED);
        free(t);
    }
}

static void test_expiry(void)
{
    char *t = sign_claims(VALID_CLAIMS, JWT_ALG_HS256, SECRET); /* exp NOW+100 */
    CU_ASSERT_EQUAL(verify(t, NOW + 100), PARLEY_OK);
    CU_ASSERT_EQUAL(verify(t, NOW + 101), PARLEY_ERR_TOKEN_EXPIRED);
    CU_ASSERT_EQUAL(verify(t, NOW + 86400), PARLEY_ERR_TOKEN_EXPIRED);
    free(t);

    /* Not before: honoured when present. */
    t = sign_claims("{\"sub\":\"u\",\"name\":\"n\",\"role\":\"participant\","
                    "\"exp\":1790000100,\"nbf\":1790000050}", JWT_ALG_HS256, SECRET);
    CU_ASSERT_EQUAL(verify(t, NOW), PARLEY_ERR_UNAUTHENTICATED);
    CU_ASSERT_EQUAL(verify(t, NOW + 50), PARLEY_OK);
    free(t);
}

static void test_bad_claims(void)
{
    const char *bad[] = {
        /* missing each required claim */
        "{\"name\":\"n\",\"role\":\"participant\",\"exp\":1790000100}",
        "{\"sub\":\"u\",\"role\":\"participant\",\"exp\":1790000100}",
        "{\"sub\":\"u\",\"name\":\"n\",\"exp\":1790000100}",
        "{\"sub\":\"u\",\"name\":\"n\",\"role\":\"participant\"}",
        /* wrong types */
        "{\"sub\":42,\"name\":\"n\",\"role\":\"participant\",\"exp\":1790000100}",
        "{\"sub\":\"u\",\"name\":\"n\",\"role\":\"participant\",\"exp\":\"1790000100\"}",
        "{\"sub\":\"u\",\"name\":[\"n\"],\"role\":\"participant\",\"exp\":1790000100}",
        /* roles */
        "{\"sub\":\"u\",\"name\":\"n\",\"role\":\"admin\",\"exp\":1790000100}",
        "{\"sub\":\"u\",\"name\":\"n\",\"role\":\"Organizer\",\"exp\":1790000100}",
        "{\"sub\":\"u\",\"name\":\"n\",\"role\":\"\",\"exp\":1790000100}",
        /* not a valid author (rules_author) */
        "{\"sub\":\"\",\"name\":\"n\",\"role\":\"participant\",\"exp\":1790000100}",
        "{\"sub\":\"u\",\"name\":\"\",\"role\":\"participant\",\"exp\":1790000100}",
        "{\"sub\":\"u\\u0007\",\"name\":\"n\",\"role\":\"participant\",\"exp\":1790000100}",
        /* nbf of the wrong type */
        "{\"sub\":\"u\",\"name\":\"n\",\"role\":\"participant\",\"exp\":1790000100,\"nbf\":\"x\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *t = sign_claims(bad[i], JWT_ALG_HS256, SECRET);
        if (verify(t, NOW) != PARLEY_ERR_UNAUTHENTICATED)
            fprintf(stderr, "accepted bad claims #%zu: %s\n", i, bad[i]);
        CU_ASSERT_EQUAL(verify(t, NOW), PARLEY_ERR_UNAUTHENTICATED);
        free(t);
    }

    /* Too long: 129-byte id and display name; 128 bytes pass. */
    char longs[200], claims[512];
    memset(longs, 'x', sizeof longs);
    longs[RULES_AUTHOR_ID_MAX + 1] = '\0';
    snprintf(claims, sizeof claims,
             "{\"sub\":\"%s\",\"name\":\"n\",\"role\":\"participant\",\"exp\":1790000100}", longs);
    char *t = sign_claims(claims, JWT_ALG_HS256, SECRET);
    CU_ASSERT_EQUAL(verify(t, NOW), PARLEY_ERR_UNAUTHENTICATED);
    free(t);
    snprintf(claims, sizeof claims,
             "{\"sub\":\"u\",\"name\":\"%s\",\"role\":\"participant\",\"exp\":1790000100}", longs);
    t = sign_claims(claims, JWT_ALG_HS256, SECRET);
    CU_ASSERT_EQUAL(verify(t, NOW), PARLEY_ERR_UNAUTHENTICATED);
    free(t);
    longs[RULES_AUTHOR_ID_MAX] = '\0';
    snprintf(claims, sizeof claims,
             "{\"sub\":\"%s\",\"name\":\"%s\",\"role\":\"organizer\",\"exp\":1790000100}",
             longs, longs);
    t = sign_claims(claims, JWT_ALG_HS256, SECRET);
    auth_identity out;
    CU_ASSERT_EQUAL(auth_verify(A, t, NOW, &out), PARLEY_OK);
    CU_ASSERT_EQUAL(strlen(out.id), RULES_AUTHOR_ID_MAX);
    CU_ASSERT_EQUAL(strlen(out.display_name), RULES_DISPLAY_NAME_MAX);
    free(t);
}

static void test_garbage(void)
{
    const char *junk[] = {
        "", "x", "a.b", "a.b.c", "..", "...", "Bearer", "Bearer a.b.c",
        "eyJhbGciOiJIUzI1NiJ9", "eyJhbGciOiJIUzI1NiJ9.e30.",
        "eyJhbGciOiJIUzI1NiJ9.!!!!.abc", "\xff\xfe.\xfd.\xfc",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.eyJzdWIiOiJ1In0.extra",
    };
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++)
        CU_ASSERT_EQUAL(verify(junk[i], NOW), PARLEY_ERR_UNAUTHENTICATED);
    auth_identity out;
    CU_ASSERT_EQUAL(auth_verify(A, NULL, NOW, &out), PARLEY_ERR_UNAUTHENTICATED);

    /* Huge input is refused before parsing. */
    size_t n = 1 << 20;
    char *big = malloc(n + 1);
    memset(big, 'A', n);
    big[n] = '\0';
    big[100] = '.';
    big[200] = '.';
    CU_ASSERT_EQUAL(verify(big, NOW), PARLEY_ERR_UNAUTHENTICATED);
    free(big);
}

/* Runs a Python snippet with PyJWT; the secret and token pass through the
 * environment, never the command line. Returns its stdout (malloc'd, last
 * newline stripped) or NULL when it failed. */
static char *python(const char *code)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s -c '%s'", PARLEY_PYTHON, code);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return NULL;
    char *buf = calloc(1, 8192);
    size_t n = fread(buf, 1, 8191, p);
    int st = pclose(p);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        free(buf);
        return NULL;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    return buf;
}

static void test_python_interop(void)
{
    CU_ASSERT_FATAL(setenv("PARLEY_TEST_SECRET", SECRET, 1) == 0);
    char *t = python(
        "import os, jwt\n"
        "print(jwt.encode({\"sub\": \"py-1\", \"name\": \"Monty P\", \"role\": \"organizer\",\n"
        "                  \"iat\": 1790000000, \"exp\": 1790000300},\n"
        "                 os.environ[\"PARLEY_TEST_SECRET\"], algorithm=\"HS256\"))\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT(strlen(t) > 40);
    auth_identity out;
    memset(&out, 0, sizeof out);
    CU_ASSERT_EQUAL(auth_verify(A, t, NOW, &out), PARLEY_OK);
    CU_ASSERT_STRING_EQUAL(out.id, "py-1");
    CU_ASSERT_STRING_EQUAL(out.display_name, "Monty P");
    CU_ASSERT_EQUAL(out.role, PARLEY_ROLE_ORGANIZER);
    CU_ASSERT_EQUAL(verify(t, NOW + 301), PARLEY_ERR_TOKEN_EXPIRED);
    free(t);

    /* PyJWT with HS512 and our secret: signed right, wrong algorithm. */
    t = python(
        "import os, jwt\n"
        "print(jwt.encode({\"sub\": \"py-1\", \"name\": \"Monty P\", \"role\": \"organizer\",\n"
        "                  \"exp\": 1790000300},\n"
        "                 os.environ[\"PARLEY_TEST_SECRET\"], algorithm=\"HS512\"))\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(verify(t, NOW), PARLEY_ERR_UNAUTHENTICATED);
    free(t);

    /* And the other way: PyJWT verifies what auth_mint makes. */
    auth_identity in = ident("c-9", "From C", PARLEY_ROLE_PARTICIPANT);
    char *mine = auth_mint(A, &in, NOW, 120);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mine);
    CU_ASSERT_FATAL(setenv("PARLEY_TEST_TOKEN", mine, 1) == 0);
    char *claims = python(
        "import os, jwt\n"
        "c = jwt.decode(os.environ[\"PARLEY_TEST_TOKEN\"], os.environ[\"PARLEY_TEST_SECRET\"],\n"
        "               algorithms=[\"HS256\"], options={\"verify_exp\": False})\n"
        "print(c[\"sub\"], c[\"name\"], c[\"role\"], c[\"iat\"], c[\"exp\"], sep=\"|\")\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(claims);
    CU_ASSERT_STRING_EQUAL(claims, "c-9|From C|participant|1790000000|1790000120");
    free(claims);
    free(mine);
    unsetenv("PARLEY_TEST_TOKEN");
    unsetenv("PARLEY_TEST_SECRET");
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("auth", suite_init, suite_clean);
    if (!s || !CU_add_test(s, "secret length", test_secret_length) ||
        !CU_add_test(s, "mint and verify", test_mint_verify_roundtrip) ||
        !CU_add_test(s, "mint rejects bad input", test_mint_rejects_bad_input) ||
        !CU_add_test(s, "Bearer prefix", test_bearer_prefix) ||
        !CU_add_test(s, "wrong secret", test_wrong_secret) ||
        !CU_add_test(s, "tampered token", test_tampered) ||
        !CU_add_test(s, "alg none and other algs", test_alg_none_and_others) ||
        !CU_add_test(s, "expiry and nbf", test_expiry) ||
        !CU_add_test(s, "bad claims", test_bad_claims) ||
        !CU_add_test(s, "garbage", test_garbage) ||
        !CU_add_test(s, "PyJWT interop", test_python_interop)) {
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures() + CU_get_number_of_tests_failed()
                   + CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
