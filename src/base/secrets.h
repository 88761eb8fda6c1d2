/* secrets.h: where a process gets its signing secret, for every binary
 * (parleyd, parley-gateway, the load generators): a secret file, else a
 * secret given as a value (environment or config), else, in development
 * mode only, the shared dev secret file, created on first use.
 *
 * The dev secret is SECRETS_DEV_FILE in the folder of the database, so a
 * parleyd and a gateway started in the same folder with the defaults
 * (database var/parley.db) share var/dev-secret; secrets_dev_path gives it.
 * It is 64 hex digits and a newline, mode 0600 (its folder, if made here,
 * 0700), created with O_EXCL so two processes starting together end up
 * with the same secret. A secret file that other users may read is
 * refused. Nothing here logs or keeps a secret. */
#ifndef PARLEY_SECRETS_H
#define PARLEY_SECRETS_H

#include <stddef.h>

#define SECRETS_DEV_FILE "dev-secret"
/* the service secret of development mode (parleyd and gateway share it) */
#define SECRETS_DEV_SERVICE_FILE "dev-service-secret"

typedef struct secrets_source {
    const char *file;     /* a secret file; NULL or "": none */
    const char *value;    /* the secret itself; NULL or "": none */
    int dev;              /* development mode: fall back to dev_path */
    const char *dev_path; /* the dev secret file (secrets_dev_path) */
} secrets_source;

/* The secret, by the precedence above, into out (cap bytes, NUL-terminated).
 * 0, with *dev_created set when a new dev secret file was written; -1 with
 * a message in err when none is configured or a file cannot be read. */
int secrets_load(const secrets_source *src, char *out, size_t cap,
                 int *dev_created, char *err, size_t errlen);

/* The bytes of a secret file without its trailing newlines. -1 (errno set)
 * when it cannot be read; errno EPERM when users other than its owner may
 * read or write it (mode & 077): a secret others can read is no secret. */
int secrets_read_file(const char *path, char *out, size_t cap);

/* A dev file beside the database db_path: "<folder of db_path>/name". -1
 * if it does not fit in cap. */
int secrets_dev_file(const char *db_path, const char *name, char *out,
                     size_t cap);
/* The dev secret file: secrets_dev_file(db_path, SECRETS_DEV_FILE). */
int secrets_dev_path(const char *db_path, char *out, size_t cap);

#endif
