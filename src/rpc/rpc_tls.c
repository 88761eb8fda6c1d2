/* rpc_tls.c: gRPC TLS credentials from files (see rpc_tls.h). The server's
 * certificate config fetcher runs on grpc's threads at each handshake: it
 * compares the files' stamps under a mutex and hands grpc a new config
 * only when one changed and reads well, so a bad renewal keeps the old
 * certificate in service. */
#include "rpc_tls.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "secrets.h"

#define RPC_TLS_FILE_MAX (256 * 1024)

typedef struct stamp {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtim;
} stamp;

struct rpc_tls_watch {
    pthread_mutex_t mu;
    char *cert, *key, *ca;
    stamp st[3];
    int loaded, reloads;
};

static int stamp_of(const char *path, stamp *s)
{
    struct stat st;
    memset(s, 0, sizeof *s);
    if (!path) return 0;
    if (stat(path, &st) != 0) return -1;
    s->dev = st.st_dev;
    s->ino = st.st_ino;
    s->size = st.st_size;
    s->mtim = st.st_mtim;
    return 0;
}

static int stamp_eq(const stamp *a, const stamp *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtim.tv_sec == b->mtim.tv_sec &&
           a->mtim.tv_nsec == b->mtim.tv_nsec;
}

/* A whole PEM file, NUL-terminated; NULL with errno set. */
static char *read_pem(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char *buf = malloc(RPC_TLS_FILE_MAX + 1);
    size_t n = buf ? fread(buf, 1, RPC_TLS_FILE_MAX + 1, f) : 0;
    int bad = !buf || ferror(f) || n > RPC_TLS_FILE_MAX || n == 0;
    fclose(f);
    if (bad) {
        free(buf);
        errno = EINVAL;
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

/* The key, refused when others may read it (base/secrets.h's rule). */
static char *read_key(const char *path)
{
    char *buf = malloc(RPC_TLS_FILE_MAX + 1);
    if (!buf) return NULL;
    if (secrets_read_file(path, buf, RPC_TLS_FILE_MAX + 1) != 0) {
        int e = errno;
        free(buf);
        errno = e;
        return NULL;
    }
    return buf;
}

static void wipe_free(char *p)
{
    if (p) explicit_bzero(p, strlen(p));
    free(p);
}

/* Reads the files into a new config; NULL with err set. */
static grpc_ssl_server_certificate_config *load_config(rpc_tls_watch *w,
                                                       char *err, size_t errlen)
{
    char *cert = read_pem(w->cert);
    if (!cert) {
        snprintf(err, errlen, "TLS certificate %s: %s", w->cert,
                 strerror(errno));
        return NULL;
    }
    char *key = read_key(w->key);
    if (!key) {
        snprintf(err, errlen, "TLS key %s: %s", w->key,
                 errno == EPERM ? "other users can read it (chmod 600 it)"
                                : strerror(errno));
        free(cert);
        return NULL;
    }
    char *ca = NULL;
    if (w->ca && !(ca = read_pem(w->ca))) {
        snprintf(err, errlen, "TLS client CA %s: %s", w->ca, strerror(errno));
        free(cert);
        wipe_free(key);
        return NULL;
    }
    grpc_ssl_pem_key_cert_pair pair = {key, cert};
    /* grpc (1.51) asserts a root list on reloads even when no client
     * certificate is requested: without a client CA the server's own chain
     * stands in; it is never used to verify anyone. */
    grpc_ssl_server_certificate_config *c =
        grpc_ssl_server_certificate_config_create(ca ? ca : cert, &pair, 1);
    free(cert);
    wipe_free(key);
    free(ca);
    if (!c) snprintf(err, errlen, "grpc refused the TLS certificate config");
    return c;
}

static grpc_ssl_certificate_config_reload_status
fetch(void *ud, grpc_ssl_server_certificate_config **config)
{
    rpc_tls_watch *w = ud;
    grpc_ssl_certificate_config_reload_status r =
        GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_UNCHANGED;
    pthread_mutex_lock(&w->mu);
    stamp now[3];
    int ok = stamp_of(w->cert, &now[0]) == 0 &&
             stamp_of(w->key, &now[1]) == 0 && stamp_of(w->ca, &now[2]) == 0;
    if (ok &&
        (!w->loaded || !stamp_eq(&now[0], &w->st[0]) ||
         !stamp_eq(&now[1], &w->st[1]) || !stamp_eq(&now[2], &w->st[2]))) {
        char err[300];
        grpc_ssl_server_certificate_config *c = load_config(w, err, sizeof err);
        if (c) {
            *config = c;
            memcpy(w->st, now, sizeof now);
            if (w->loaded) w->reloads++;
            w->loaded = 1;
            r = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_NEW;
        } else {
            fprintf(stderr, "parleyd: %s (old certificate kept)\n", err);
            memcpy(w->st, now, sizeof now); /* not again until it changes */
            r = w->loaded ? GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_UNCHANGED
                          : GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_FAIL;
        }
    }
    pthread_mutex_unlock(&w->mu);
    return r;
}

void rpc_tls_watch_free(rpc_tls_watch *w)
{
    if (!w) return;
    pthread_mutex_destroy(&w->mu);
    free(w->cert);
    free(w->key);
    free(w->ca);
    free(w);
}

int rpc_tls_reloads(const rpc_tls_watch *w) { return w ? w->reloads : 0; }

grpc_server_credentials *rpc_tls_server_creds(const rpc_tls_files *f,
                                              rpc_tls_watch **watch, char *err,
                                              size_t errlen)
{
    *watch = NULL;
    if (!f->cert || !*f->cert || !f->key || !*f->key) {
        snprintf(err, errlen, "TLS needs both a certificate and a key file");
        return NULL;
    }
    rpc_tls_watch *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    pthread_mutex_init(&w->mu, NULL);
    w->cert = strdup(f->cert);
    w->key = strdup(f->key);
    w->ca = f->ca && *f->ca ? strdup(f->ca) : NULL;
    /* read once now, so a bad file stops the start with a clear message */
    grpc_ssl_server_certificate_config *first = load_config(w, err, errlen);
    if (!first) {
        rpc_tls_watch_free(w);
        return NULL;
    }
    grpc_ssl_server_certificate_config_destroy(first);
    grpc_ssl_server_credentials_options *o =
        grpc_ssl_server_credentials_create_options_using_config_fetcher(
            w->ca ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                  : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
            fetch, w);
    grpc_server_credentials *c =
        o ? grpc_ssl_server_credentials_create_with_options(o) : NULL;
    if (!c) {
        snprintf(err, errlen, "grpc refused the TLS server options");
        rpc_tls_watch_free(w);
        return NULL;
    }
    *watch = w;
    return c;
}

grpc_channel_credentials *rpc_tls_client_creds(const rpc_tls_files *f,
                                               char *err, size_t errlen)
{
    char *ca = NULL, *cert = NULL, *key = NULL;
    if (f->ca && *f->ca && !(ca = read_pem(f->ca))) {
        snprintf(err, errlen, "TLS CA %s: %s", f->ca, strerror(errno));
        return NULL;
    }
    if (f->cert && *f->cert) {
        cert = read_pem(f->cert);
        key = cert && f->key ? read_key(f->key) : NULL;
        if (!cert || !key) {
            snprintf(err, errlen, "TLS client %s %s: %s",
                     cert ? "key" : "certificate", cert ? f->key : f->cert,
                     errno == EPERM ? "other users can read it (chmod 600 it)"
                                    : strerror(errno));
            free(ca);
            free(cert);
            wipe_free(key);
            return NULL;
        }
    }
    grpc_ssl_pem_key_cert_pair pair = {key, cert};
    grpc_channel_credentials *c =
        grpc_ssl_credentials_create(ca, cert ? &pair : NULL, NULL, NULL);
    free(ca);
    free(cert);
    wipe_free(key);
    if (!c) snprintf(err, errlen, "grpc refused the TLS client credentials");
    return c;
}

int rpc_addr_is_local(const char *addr)
{
    if (strncmp(addr, "unix:", 5) == 0) return 1;
    const char *a = strncmp(addr, "ipv4:", 5) == 0   ? addr + 5
                    : strncmp(addr, "ipv6:", 5) == 0 ? addr + 5
                                                     : addr;
    return strncmp(a, "127.", 4) == 0 || strncmp(a, "[::1]", 5) == 0 ||
           strncmp(a, "localhost:", 10) == 0;
}
