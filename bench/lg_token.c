/* lg_token.c: mints the parley adapter's tokens with src/core/auth.h. */
#include "lg_token.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "model.h"
#include "secrets.h"

char **lg_token_mint(const char *secret, size_t n, char *errmsg, size_t errlen)
{
    auth *a = NULL;
    parley_err e = auth_new(secret, strlen(secret), &a);
    if (e != PARLEY_OK) {
        snprintf(errmsg, errlen, "auth_new: %s", parley_err_name(e));
        return NULL;
    }
    char **t = calloc(n, sizeof *t);
    if (!t) {
        auth_free(a);
        snprintf(errmsg, errlen, "out of memory");
        return NULL;
    }
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < n; i++) {
        auth_identity id;
        memset(&id, 0, sizeof id);
        snprintf(id.id, sizeof id.id, "lg-%zu", i);
        snprintf(id.display_name, sizeof id.display_name, "Load %zu", i);
        id.role = PARLEY_ROLE_PARTICIPANT;
        t[i] = auth_mint(a, &id, now, 3600);
        if (!t[i]) {
            lg_token_free(t, n);
            auth_free(a);
            snprintf(errmsg, errlen, "auth_mint failed");
            return NULL;
        }
    }
    auth_free(a);
    return t;
}

char **lg_token_mint_from(const char *secret_file, const char *secret, size_t n,
                          char *errmsg, size_t errlen)
{
    char buf[512];
    int created;
    secrets_source src = {secret_file, secret, 0, NULL};
    if (secrets_load(&src, buf, sizeof buf, &created, errmsg, errlen) != 0)
        return NULL;
    char **t = lg_token_mint(buf, n, errmsg, errlen);
    explicit_bzero(buf, sizeof buf);
    return t;
}

void lg_token_free(char **t, size_t n)
{
    if (!t) return;
    for (size_t i = 0; i < n; i++) free(t[i]);
    free(t);
}
