/* secrets.c: the signing secret's sources and the shared dev secret file
 * (see secrets.h). */
#include "secrets.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECRETS_DEV_BYTES 32

int secrets_read_file(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || (st.st_mode & 077)) {
        fclose(f);
        errno = EPERM; /* readable (or writable) by others */
        return -1;
    }
    size_t n = fread(out, 1, cap - 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        errno = EIO;
        return -1;
    }
    out[n] = '\0';
    while (n && (out[n - 1] == '\n' || out[n - 1] == '\r')) out[--n] = '\0';
    return 0;
}

int secrets_dev_file(const char *db_path, const char *name, char *out,
                     size_t cap)
{
    const char *slash = strrchr(db_path, '/');
    int n;
    if (slash == NULL)
        n = snprintf(out, cap, "%s", name);
    else if (slash == db_path)
        n = snprintf(out, cap, "/%s", name);
    else
        n = snprintf(out, cap, "%.*s/%s", (int)(slash - db_path), db_path,
                     name);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int secrets_dev_path(const char *db_path, char *out, size_t cap)
{
    return secrets_dev_file(db_path, SECRETS_DEV_FILE, out, cap);
}

/* Reads the dev secret, or writes a new one if there is none yet. */
static int dev_secret(const char *path, char *out, size_t cap, int *created)
{
    *created = 0;
    if (secrets_read_file(path, out, cap) == 0) return 0;
    if (errno != ENOENT) return -1;
    unsigned char raw[SECRETS_DEV_BYTES];
    if (cap < 2 * sizeof raw + 1 ||
        getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
        return -1;
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(out + 2 * i, cap - 2 * i, "%02x", raw[i]);
    /* Its folder, one level, as the first of the two binaries finds it. */
    char dir[512];
    const char *slash = strrchr(path, '/');
    if (slash && slash != path && (size_t)(slash - path) < sizeof dir) {
        memcpy(dir, path, (size_t)(slash - path));
        dir[slash - path] = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) return -1;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0 && errno == EEXIST) /* the other binary made it meanwhile */
        return secrets_read_file(path, out, cap);
    if (fd < 0) return -1;
    size_t n = strlen(out);
    int ok = write(fd, out, n) == (ssize_t)n && write(fd, "\n", 1) == 1;
    if (close(fd) != 0) ok = 0;
    if (!ok) return -1;
    *created = 1;
    return 0;
}

int secrets_load(const secrets_source *src, char *out, size_t cap,
                 int *dev_created, char *err, size_t errlen)
{
    *dev_created = 0;
    if (src->file && *src->file) {
        if (secrets_read_file(src->file, out, cap) == 0) return 0;
        if (errno == EPERM)
            snprintf(err, errlen,
                     "secret file %s can be read or changed by other users: "
                     "chmod 600 it",
                     src->file);
        else
            snprintf(err, errlen, "cannot read secret file %s: %s", src->file,
                     strerror(errno));
        return -1;
    }
    if (src->value && *src->value) {
        if (strlen(src->value) >= cap) {
            snprintf(err, errlen, "the JWT secret is too long");
            return -1;
        }
        memcpy(out, src->value, strlen(src->value) + 1);
        return 0;
    }
    if (!src->dev) {
        snprintf(err, errlen,
                 "no JWT secret configured: set PARLEY_JWT_SECRET or "
                 "PARLEY_JWT_SECRET_FILE (or --jwt-secret-file), or run with "
                 "--dev for a development secret");
        return -1;
    }
    if (dev_secret(src->dev_path, out, cap, dev_created) == 0) return 0;
    snprintf(err, errlen, "cannot read or create the dev secret %s: %s",
             src->dev_path,
             errno == EPERM ? "other users can read it (chmod 600 it)"
                            : strerror(errno));
    return -1;
}
