/* fuzz_token: token parsing and verification (src/core/auth.c,
 * auth_keys.c). Keys are made once at start (an RSA and an EC P-256 key in
 * a JWKS file, a user and a service secret). The first input byte picks
 * what the rest is: a bearer token to verify; a keys file to parse; or JSON
 * claims that are signed with the user secret and then verified (so the
 * claims checks see well-signed hostile claims). Invariants: only a token
 * with a valid signature is accepted, and an accepted identity is a valid
 * author. */
#include <assert.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "auth_keys.h"

static auth *A;
static const char USER[] = "fuzz-user-secret-0123456789abcdef-0123";
static const char SVC[] = "fuzz-svc-secret-0123456789abcdef-012345";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    EVP_PKEY *k = EVP_EC_gen("P-256");
    char path[] = "/tmp/parley-fuzz-keys-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    PEM_write_PUBKEY(f, k);
    fclose(f);
    EVP_PKEY_free(k);
    auth_opts o = {0};
    o.user_secret = USER;
    o.user_secret_len = strlen(USER);
    o.svc_secret = SVC;
    o.svc_secret_len = strlen(SVC);
    o.keys_file = path;
    o.issuer = "iss";
    o.audience = "aud";
    o.max_ttl_s = 3600;
    o.leeway_s = 5;
    char err[300];
    if (auth_open(&o, &A, err, sizeof err) != PARLEY_OK) {
        fprintf(stderr, "fuzz_token: %s\n", err);
        abort();
    }
    unlink(path);
    return 0;
}

static void accepted(const auth_identity *id)
{
    parley_author a = auth_author(id);
    assert(rules_author(&a) == PARLEY_OK);
    assert(id->role == PARLEY_ROLE_PARTICIPANT ||
           (id->role == PARLEY_ROLE_ORGANIZER && !id->service));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 16384) return 0;
    int mode = data[0] % 3;
    char *s = malloc(size);
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0';
    auth_identity id;
    if (mode == 0) {
        if (auth_verify(A, s, 1790000000, &id) == PARLEY_OK) accepted(&id);
    } else if (mode == 1) {
        auth_keyset ks;
        char err[300];
        if (auth_keys_parse((const char *)data + 1, size - 1, &ks, err,
                            sizeof err) == 0)
            auth_keys_free(&ks);
    } else {
        jwt_t *j = NULL;
        if (jwt_new(&j) == 0 && jwt_add_grants_json(j, s) == 0 &&
            jwt_set_alg(j, JWT_ALG_HS256, (const unsigned char *)USER,
                        (int)strlen(USER)) == 0) {
            char *t = jwt_encode_str(j);
            if (t && auth_verify(A, t, 1790000000, &id) == PARLEY_OK)
                accepted(&id);
            free(t);
        }
        jwt_free(j);
    }
    free(s);
    return 0;
}
