/* auth_keys.c: the verification key set (see auth_keys.h): PEM and JWKS
 * parsing with OpenSSL 3 (EVP_PKEY, PEM, OSSL_PARAM), checked for type and
 * size, each key re-exported as PEM for libjwt. */
#include "auth_keys.h"

#include <assert.h>
#include <ctype.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUTH_RSA_MIN_BITS 2048

auth_alg auth_alg_parse(const char *name)
{
    if (name == NULL) return AUTH_ALG_NONE;
    if (strcmp(name, "HS256") == 0) return AUTH_ALG_HS256;
    if (strcmp(name, "RS256") == 0) return AUTH_ALG_RS256;
    if (strcmp(name, "ES256") == 0) return AUTH_ALG_ES256;
    return AUTH_ALG_NONE;
}

const char *auth_alg_name(auth_alg a)
{
    switch (a) {
    case AUTH_ALG_HS256: return "HS256";
    case AUTH_ALG_RS256: return "RS256";
    case AUTH_ALG_ES256: return "ES256";
    default: return "none";
    }
}

int auth_b64url_decode(const char *in, size_t n, unsigned char **out,
                       size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    if (n % 4 == 1 || n > (size_t)1 << 20) return -1;
    while (n > 0 && in[n - 1] == '=') n--; /* padding is optional */
    size_t padded = (n + 3) / 4 * 4;
    unsigned char *tmp = malloc(padded + 1);
    unsigned char *res = malloc(padded / 4 * 3 + 1);
    if (!tmp || !res) {
        free(tmp);
        free(res);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '-')
            c = '+';
        else if (c == '_')
            c = '/';
        else if (!isalnum(c)) {
            free(tmp);
            free(res);
            return -1;
        }
        tmp[i] = c;
    }
    for (size_t i = n; i < padded; i++) tmp[i] = '=';
    int r = padded ? EVP_DecodeBlock(res, tmp, (int)padded) : 0;
    free(tmp);
    if (r < 0) {
        free(res);
        return -1;
    }
    /* EVP_DecodeBlock counts the bytes the padding stands for as zeros */
    size_t len = (size_t)r - (padded - n) % 4;
    assert(len <= padded / 4 * 3);
    res[len] = '\0';
    *out = res;
    *outlen = len;
    return 0;
}

void auth_keys_free(auth_keyset *ks)
{
    if (ks == NULL) return;
    for (size_t i = 0; i < ks->n; i++) free(ks->keys[i].pem);
    free(ks->keys);
    ks->keys = NULL;
    ks->n = 0;
}

/* Checks pk (RSA >= 2048 bits or EC P-256) and appends it as PEM. */
static int add_pkey(auth_keyset *ks, EVP_PKEY *pk, const char *kid,
                    const char *want_alg, char *err, size_t errlen)
{
    auth_alg alg = AUTH_ALG_NONE;
    if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA) {
        if (EVP_PKEY_get_bits(pk) < AUTH_RSA_MIN_BITS) {
            snprintf(err, errlen, "RSA key%s%s has %d bits, fewer than %d",
                     *kid ? " " : "", kid, EVP_PKEY_get_bits(pk),
                     AUTH_RSA_MIN_BITS);
            return -1;
        }
        alg = AUTH_ALG_RS256;
    } else if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC) {
        char group[64] = "";
        if (EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME,
                                           group, sizeof group, NULL) != 1 ||
            strcmp(group, "prime256v1") != 0) {
            snprintf(err, errlen, "EC key%s%s is not on P-256 (ES256)",
                     *kid ? " " : "", kid);
            return -1;
        }
        alg = AUTH_ALG_ES256;
    } else {
        snprintf(err, errlen, "key%s%s is neither RSA nor EC P-256",
                 *kid ? " " : "", kid);
        return -1;
    }
    if (want_alg && auth_alg_parse(want_alg) != alg) {
        snprintf(err, errlen, "key %s says alg %s but is a key for %s", kid,
                 want_alg, auth_alg_name(alg));
        return -1;
    }
    if (ks->n == AUTH_KEYS_MAX) {
        snprintf(err, errlen, "more than %d keys", AUTH_KEYS_MAX);
        return -1;
    }
    BIO *m = BIO_new(BIO_s_mem());
    char *data = NULL;
    long dl = 0;
    if (!m || PEM_write_bio_PUBKEY(m, pk) != 1 ||
        (dl = BIO_get_mem_data(m, &data)) <= 0) {
        BIO_free(m);
        snprintf(err, errlen, "cannot export a key as PEM");
        return -1;
    }
    auth_pubkey *k = &ks->keys[ks->n];
    memset(k, 0, sizeof *k);
    k->pem = malloc((size_t)dl + 1);
    if (!k->pem) {
        BIO_free(m);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(k->pem, data, (size_t)dl);
    k->pem[dl] = '\0';
    k->pem_len = (size_t)dl;
    BIO_free(m);
    k->alg = alg;
    snprintf(k->kid, sizeof k->kid, "%s", kid);
    ks->n++;
    return 0;
}

static int parse_pem(const char *text, size_t len, auth_keyset *ks, char *err,
                     size_t errlen)
{
    BIO *b = BIO_new_mem_buf(text, (int)len);
    if (!b) return -1;
    EVP_PKEY *pk;
    int rc = 0;
    while (rc == 0 && (pk = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL))) {
        rc = add_pkey(ks, pk, "", NULL, err, errlen);
        EVP_PKEY_free(pk);
    }
    ERR_clear_error(); /* the end of the input reads as an error */
    BIO_free(b);
    return rc;
}

/* The bytes of a base64url JWK member (malloc'd), NULL if absent, bad or
 * empty. */
static unsigned char *jwk_bytes(json_t *jwk, const char *name, size_t *n)
{
    json_t *v = json_object_get(jwk, name);
    unsigned char *out = NULL;
    if (!json_is_string(v) ||
        auth_b64url_decode(json_string_value(v), json_string_length(v), &out,
                           n) != 0)
        return NULL;
    if (*n == 0) {
        free(out);
        return NULL;
    }
    return out;
}

static EVP_PKEY *jwk_rsa(json_t *jwk)
{
    size_t nl, el;
    unsigned char *nb = jwk_bytes(jwk, "n", &nl),
                  *eb = jwk_bytes(jwk, "e", &el);
    EVP_PKEY *pk = NULL;
    BIGNUM *n = nb ? BN_bin2bn(nb, (int)nl, NULL) : NULL;
    BIGNUM *e = eb ? BN_bin2bn(eb, (int)el, NULL) : NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    if (n && e && bld &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) &&
        (params = OSSL_PARAM_BLD_to_param(bld)) &&
        (ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) &&
        EVP_PKEY_fromdata_init(ctx) == 1)
        if (EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1)
            pk = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    free(nb);
    free(eb);
    return pk;
}

static EVP_PKEY *jwk_ec(json_t *jwk)
{
    json_t *crv = json_object_get(jwk, "crv");
    if (!json_is_string(crv) || strcmp(json_string_value(crv), "P-256") != 0)
        return NULL;
    size_t xl, yl;
    unsigned char *x = jwk_bytes(jwk, "x", &xl), *y = jwk_bytes(jwk, "y", &yl);
    EVP_PKEY *pk = NULL;
    if (x && y && xl == 32 && yl == 32) {
        unsigned char pub[65];
        pub[0] = 0x04; /* uncompressed point */
        memcpy(pub + 1, x, 32);
        memcpy(pub + 33, y, 32);
        OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
        OSSL_PARAM *params = NULL;
        EVP_PKEY_CTX *ctx = NULL;
        if (bld &&
            OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                            "prime256v1", 0) &&
            OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub,
                                             sizeof pub) &&
            (params = OSSL_PARAM_BLD_to_param(bld)) &&
            (ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) &&
            EVP_PKEY_fromdata_init(ctx) == 1 &&
            EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) == 1) {
            /* the point must be on the curve */
            EVP_PKEY_CTX *chk = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
            if (!chk || EVP_PKEY_public_check(chk) != 1) {
                EVP_PKEY_free(pk);
                pk = NULL;
            }
            EVP_PKEY_CTX_free(chk);
        }
        EVP_PKEY_CTX_free(ctx);
        OSSL_PARAM_free(params);
        OSSL_PARAM_BLD_free(bld);
    }
    free(x);
    free(y);
    return pk;
}

static int parse_jwks(const char *text, size_t len, auth_keyset *ks, char *err,
                      size_t errlen)
{
    json_error_t je;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    json_t *keys = json_object_get(doc, "keys");
    if (!json_is_array(keys)) {
        snprintf(err, errlen, "not a JWKS document (%s)",
                 doc ? "no \"keys\" array" : je.text);
        json_decref(doc);
        return -1;
    }
    static const char *private_members[] = {"d",  "p",  "q", "dp",
                                            "dq", "qi", "k"};
    size_t i;
    json_t *jwk;
    int rc = 0;
    json_array_foreach(keys, i, jwk)
    {
        json_t *kty = json_object_get(jwk, "kty");
        json_t *kidv = json_object_get(jwk, "kid");
        json_t *use = json_object_get(jwk, "use");
        json_t *alg = json_object_get(jwk, "alg");
        const char *kid = json_is_string(kidv) ? json_string_value(kidv) : "";
        if (!json_is_string(kty) || (kidv && !json_is_string(kidv)) ||
            (kidv && json_string_length(kidv) > AUTH_KID_MAX) ||
            (alg && !json_is_string(alg))) {
            snprintf(err, errlen, "key %zu: bad kty, kid or alg", i);
            rc = -1;
            break;
        }
        for (size_t k = 0; k < sizeof private_members / sizeof *private_members;
             k++)
            if (json_object_get(jwk, private_members[k])) {
                snprintf(err, errlen,
                         "key %zu (%s) holds private key material (\"%s\"): "
                         "give only public keys",
                         i, kid, private_members[k]);
                rc = -1;
            }
        if (rc) break;
        if (use && (!json_is_string(use) ||
                    strcmp(json_string_value(use), "sig") != 0))
            continue; /* an encryption key: not for tokens */
        const char *t = json_string_value(kty);
        EVP_PKEY *pk = strcmp(t, "RSA") == 0  ? jwk_rsa(jwk)
                       : strcmp(t, "EC") == 0 ? jwk_ec(jwk)
                                              : NULL;
        if (!pk) {
            snprintf(err, errlen,
                     "key %zu (%s): kty %s is not a valid RSA or EC P-256 "
                     "public key",
                     i, kid, t);
            ERR_clear_error();
            rc = -1;
            break;
        }
        rc = add_pkey(ks, pk, kid, alg ? json_string_value(alg) : NULL, err,
                      errlen);
        EVP_PKEY_free(pk);
        if (rc) break;
    }
    json_decref(doc);
    return rc;
}

int auth_keys_parse(const char *text, size_t len, auth_keyset *out, char *err,
                    size_t errlen)
{
    auth_keyset ks = {calloc(AUTH_KEYS_MAX, sizeof(auth_pubkey)), 0};
    out->keys = NULL;
    out->n = 0;
    if (!ks.keys) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t i = 0;
    while (i < len && isspace((unsigned char)text[i])) i++;
    int rc;
    if (memmem(text, len, "PRIVATE KEY", 11)) {
        snprintf(err, errlen,
                 "the keys file holds a private key: give only public keys "
                 "(who verifies tokens must not be able to sign them)");
        rc = -1;
    } else if (i < len && text[i] == '{') {
        rc = parse_jwks(text + i, len - i, &ks, err, errlen);
    } else {
        rc = parse_pem(text, len, &ks, err, errlen);
    }
    if (rc == 0 && ks.n == 0) {
        snprintf(err, errlen,
                 "no public key found (want PEM \"PUBLIC KEY\" "
                 "blocks or a JWKS document)");
        rc = -1;
    }
    if (rc != 0) {
        auth_keys_free(&ks);
        return -1;
    }
    *out = ks;
    return 0;
}
