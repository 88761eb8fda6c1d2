/* auth_keys.h: the keys tokens are verified with. A key set holds the
 * identity provider's public keys, read from one file that is either PEM
 * (one or more "PUBLIC KEY" blocks) or a JWKS document ({"keys": [...]}),
 * each an RSA key (RS256, at least 2048 bits) or an EC P-256 key (ES256),
 * with its `kid` when the JWKS gives one. A file holding private key
 * material is refused: whoever verifies must not be able to sign. Keys are
 * handed to libjwt as PEM text. Also the base64url decoding a JWT header
 * needs. Uses OpenSSL's libcrypto; no global state. */
#ifndef PARLEY_AUTH_KEYS_H
#define PARLEY_AUTH_KEYS_H

#include <stddef.h>
#include <stdint.h>

#define AUTH_KEYS_MAX 64 /* keys in one file */
#define AUTH_KID_MAX 128 /* bytes of a kid */
#define AUTH_KEYS_FILE_MAX (1 << 20)

typedef enum auth_alg {
    AUTH_ALG_NONE = 0, /* unknown or refused */
    AUTH_ALG_HS256,
    AUTH_ALG_RS256,
    AUTH_ALG_ES256
} auth_alg;

typedef struct auth_pubkey {
    auth_alg alg;
    char kid[AUTH_KID_MAX + 1]; /* "" when the file gives none */
    char *pem;                  /* SubjectPublicKeyInfo PEM, for libjwt */
    size_t pem_len;
} auth_pubkey;

typedef struct auth_keyset {
    auth_pubkey *keys;
    size_t n;
} auth_keyset;

/* "HS256" -> AUTH_ALG_HS256 ...; AUTH_ALG_NONE for anything else. */
auth_alg auth_alg_parse(const char *name);
const char *auth_alg_name(auth_alg a);

/* Parses text (PEM or JWKS, by its first non-blank character) into *out.
 * 0, or -1 with a reason in err (nothing is kept then). An empty set is an
 * error. */
int auth_keys_parse(const char *text, size_t len, auth_keyset *out, char *err,
                    size_t errlen);
void auth_keys_free(auth_keyset *ks);

/* base64url (RFC 4648 section 5, padding optional) into a new buffer with a
 * NUL after its *outlen bytes. 0, or -1 on a bad character or length. */
int auth_b64url_decode(const char *in, size_t n, unsigned char **out,
                       size_t *outlen);

#endif
