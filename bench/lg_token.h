/* lg_token.h: bearer tokens for the parley adapter, minted with the core's
 * auth_mint (src/core/auth.h) from the secret the bench gave parleyd. */
#ifndef PARLEY_BENCH_LG_TOKEN_H
#define PARLEY_BENCH_LG_TOKEN_H

#include <stddef.h>

/* Mints n tokens for users "lg-0" .. "lg-<n-1>" (participants) valid for an
 * hour. Returns a malloc'd array of malloc'd strings, or NULL (errmsg says
 * why). */
char **lg_token_mint(const char *secret, size_t n, char *errmsg, size_t errlen);
/* The same with the secret read as every parley binary reads it
 * (base/secrets.h): the file, else the value (PARLEY_JWT_SECRET). */
char **lg_token_mint_from(const char *secret_file, const char *secret, size_t n,
                          char *errmsg, size_t errlen);
void lg_token_free(char **t, size_t n);

#endif
