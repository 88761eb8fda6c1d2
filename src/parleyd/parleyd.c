/* parleyd.c: the parley daemon. Reads its settings, opens the store, serves
 * parley.v1 History and Stream over gRPC (TCP and a unix socket) from one
 * event-loop thread, and shuts down cleanly on SIGTERM / SIGINT: stop
 * accepting, commit and ack what is in flight, cancel streams, drain the
 * completion queue, close the store. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <grpc/grpc.h>

#include "auth.h"
#include "clock.h"
#include "config.h"
#include "rpc.h"
#include "secrets.h"
#include "settings.h"
#include "srv.h"
#include "store.h"

static volatile sig_atomic_t stop_flag, reload_flag;

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        reload_flag = 1;
    else
        stop_flag = 1;
}

/* Once a second (and at once on SIGHUP): re-read the keys file if it
 * changed, end the streams whose token expired. */
static void housekeeping(srv *sv, auth *au, int force)
{
    static int64_t last;
    int64_t now = clock_mono_ms();
    if (!force && now - last < 1000) return;
    last = now;
    char err[600];
    int r = auth_reload(au, err, sizeof err);
    if (r > 0)
        fprintf(stderr, "parleyd: keys reloaded: %zu public key(s)\n",
                auth_key_count(au));
    else if (r < 0)
        fprintf(stderr, "parleyd: %s\n", err);
    srv_tick(sv);
}

/* mkdir -p of the directory holding path; folders made here are 0700 (the
 * database, its WAL and the dev secrets live there). */
static int make_parent(const char *path)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", path);
    char *d = dirname(buf);
    if (!strcmp(d, ".") || !strcmp(d, "/")) return 0;
    for (char *p = d + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(d, 0700) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(d, 0700) != 0 && errno != EEXIST) return -1;
    return 0;
}

/* Creates the database file 0600 if it does not exist yet: SQLite gives its
 * -wal and -shm files the mode of the database file. */
static int make_db_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) return close(fd);
    return errno == EEXIST ? 0 : -1;
}

static int disabled(const char *v) { return !*v || !strcmp(v, "none"); }

/* One secret (user or service): its file, else its value, else in dev mode
 * the dev file `dev_name` beside the database. 1 with the secret in out,
 * 0 when none is configured (and not dev), -1 on an error (printed). */
static int load_one_secret(const cfg *c, const char *file, const char *value,
                           const char *dev_name, char *out, size_t outlen)
{
    char dev_path[600], err[700];
    if (!c->dev && !*file && !*value) return 0;
    if (secrets_dev_file(c->db, dev_name, dev_path, sizeof dev_path) != 0) {
        fprintf(stderr, "parleyd: database path too long\n");
        return -1;
    }
    secrets_source src = {file, value, c->dev, dev_path};
    int created;
    if (secrets_load(&src, out, outlen, &created, err, sizeof err) != 0) {
        fprintf(stderr, "parleyd: %s\n", err);
        return -1;
    }
    if (created)
        fprintf(stderr, "parleyd: dev mode: new secret written to %s\n",
                dev_path);
    return 1;
}

/* The token verifier: public keys (--jwt-keys), the user secret, the
 * service secret, the claims policy. Development mode makes its own
 * secrets and is refused next to any real one: it prints tokens, and with a
 * real secret those would be real users. */
static auth *load_auth(const cfg *c)
{
    int real = *c->jwt_secret || *c->jwt_secret_file || *c->jwt_keys ||
               *c->service_secret || *c->service_secret_file;
    if (c->dev && real) {
        fprintf(stderr,
                "parleyd: --dev refused: a real secret or key is configured "
                "(jwt-secret, jwt-secret-file, jwt-keys, service-secret...); "
                "development mode prints tokens and must never run with "
                "them\n");
        return NULL;
    }
    char user[512], svc[512], err[700];
    int hu = load_one_secret(c, c->jwt_secret_file, c->jwt_secret,
                             SECRETS_DEV_FILE, user, sizeof user);
    int hs = hu < 0
                 ? -1
                 : load_one_secret(c, c->service_secret_file, c->service_secret,
                                   SECRETS_DEV_SERVICE_FILE, svc, sizeof svc);
    if (hu < 0 || hs < 0) return NULL;
    auth_opts o = {0};
    if (hu) o.user_secret = user, o.user_secret_len = strlen(user);
    if (hs) o.svc_secret = svc, o.svc_secret_len = strlen(svc);
    o.keys_file = c->jwt_keys;
    o.issuer = c->jwt_issuer;
    o.audience = c->jwt_audience;
    o.max_ttl_s = (int64_t)c->jwt_max_ttl;
    o.leeway_s = (int64_t)c->jwt_leeway;
    auth *au = NULL;
    parley_err e = auth_open(&o, &au, err, sizeof err);
    explicit_bzero(user, sizeof user);
    explicit_bzero(svc, sizeof svc);
    if (e != PARLEY_OK) {
        fprintf(stderr, "parleyd: %s\n", err);
        return NULL;
    }
    if (auth_key_count(au))
        fprintf(stderr, "parleyd: %zu public key(s) from %s\n",
                auth_key_count(au), c->jwt_keys);
    if (!c->dev && auth_can_mint(au))
        fprintf(stderr,
                "parleyd: note: a JWT user secret is configured; whoever "
                "holds it can mint any user (prefer --jwt-keys)\n");
    return au;
}

static void print_dev_tokens(const auth *au)
{
    static const struct {
        const char *id, *name;
        int role;
    } users[] = {{"olga", "Olga (organizer)", PARLEY_ROLE_ORGANIZER},
                 {"pat", "Pat", PARLEY_ROLE_PARTICIPANT},
                 {"quinn", "Quinn", PARLEY_ROLE_PARTICIPANT}};
    int64_t now = time(NULL);
    printf("parleyd dev tokens (valid 24 h; send as `authorization: Bearer "
           "<token>`):\n");
    for (size_t i = 0; i < sizeof users / sizeof users[0]; i++) {
        auth_identity id;
        memset(&id, 0, sizeof id);
        snprintf(id.id, sizeof id.id, "%s", users[i].id);
        snprintf(id.display_name, sizeof id.display_name, "%s", users[i].name);
        id.role = users[i].role;
        char *t = auth_mint(au, &id, now, 24 * 3600);
        if (t) {
            printf("  %-6s %-11s %s\n", users[i].id,
                   parley_role_name(users[i].role), t);
            free(t);
        }
    }
}

static int create_room(const char *name, void *ud)
{
    parley_err e = store_room_create(ud, name, clock_wall_ms(), NULL, NULL);
    if (e) {
        fprintf(stderr, "parleyd: cannot create room \"%s\": %s\n", name,
                parley_err_text(e));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    cfg c;
    char err[600];
    int r = cfg_load(&c, argc, argv, err, sizeof err);
    if (r == CFG_HELP) return 0;
    if (r != CFG_OK) {
        fprintf(stderr, "parleyd: %s\n", err);
        return 2;
    }
    if (disabled(c.listen) && disabled(c.unix_path)) {
        fprintf(stderr, "parleyd: nothing to listen on (--listen and --unix "
                        "both disabled)\n");
        return 2;
    }
    if (c.dev)
        fprintf(stderr,
                "parleyd: *** DEVELOPMENT MODE: generated secrets, tokens "
                "printed below; never run --dev where others can reach it "
                "***\n");
    if (make_parent(c.db) != 0 ||
        (!disabled(c.unix_path) && make_parent(c.unix_path) != 0)) {
        fprintf(stderr, "parleyd: cannot create directory for %s: %s\n", c.db,
                strerror(errno));
        return 1;
    }
    auth *au = load_auth(&c);
    if (!au) return 2;
    if (make_db_file(c.db) != 0) {
        fprintf(stderr, "parleyd: cannot create %s: %s\n", c.db,
                strerror(errno));
        auth_free(au);
        return 1;
    }

    store_opts so = {c.max_body, 1};
    store *db = NULL;
    if (store_open(c.db, &so, &db, err, sizeof err) != PARLEY_OK) {
        fprintf(stderr, "parleyd: cannot open %s: %s\n", c.db, err);
        auth_free(au);
        return 1;
    }
    if (settings_list_each(c.rooms, create_room, db) != 0) {
        store_close(db);
        auth_free(au);
        return 1;
    }

    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    grpc_init();
    int code = 1;
    srv_opts sopt = {c.max_body, c.user_rate, c.user_burst, c.max_subs};
    srv *sv = srv_new(db, au, &sopt);
    size_t max_recv = c.max_body * 2 + 4096;
    if (max_recv < 64 * 1024) max_recv = 64 * 1024;
    rpc_server_opts ro = {c.max_queue, max_recv};
    rpc_server *rs = sv ? rpc_server_new(&ro) : NULL;
    if (!rs || srv_register(sv, rs, err, sizeof err) != 0) {
        fprintf(stderr, "parleyd: %s\n", rs ? err : "out of memory");
        goto out;
    }
    char where[700] = "";
    if (!disabled(c.listen)) {
        int tls = *c.tls_cert || *c.tls_key;
        if (!tls && !c.allow_plaintext && !rpc_addr_is_local(c.listen)) {
            fprintf(stderr,
                    "parleyd: %s is beyond loopback: give --tls-cert and "
                    "--tls-key (or --allow-plaintext behind a TLS proxy)\n",
                    c.listen);
            goto out;
        }
        if (!tls && *c.tls_client_ca) {
            fprintf(stderr, "parleyd: --tls-client-ca needs --tls-cert and "
                            "--tls-key\n");
            goto out;
        }
        rpc_tls_files tf = {c.tls_cert, c.tls_key, c.tls_client_ca};
        int port =
            tls ? rpc_server_listen_tls(rs, c.listen, &tf, err, sizeof err)
                : rpc_server_listen(rs, c.listen);
        if (port <= 0) {
            fprintf(stderr, "parleyd: cannot listen on %s: %s\n", c.listen,
                    tls ? err : "in use or bad address");
            goto out;
        }
        char host[256];
        snprintf(host, sizeof host, "%s", c.listen);
        char *colon = strrchr(host, ':');
        if (colon) *colon = 0;
        snprintf(where, sizeof where, "%s:%d%s", host, port,
                 !tls               ? ""
                 : *c.tls_client_ca ? " (TLS, client certificates required)"
                                    : " (TLS)");
    }
    if (!disabled(c.unix_path)) {
        char addr[300];
        struct stat sb;
        if (stat(c.unix_path, &sb) == 0 && S_ISSOCK(sb.st_mode))
            unlink(c.unix_path); /* stale socket of a previous run */
        snprintf(addr, sizeof addr, "unix:%s", c.unix_path);
        if (rpc_server_listen(rs, addr) <= 0) {
            fprintf(stderr, "parleyd: cannot listen on %s\n", addr);
            goto out;
        }
        size_t n = strlen(where);
        snprintf(where + n, sizeof where - n, "%s%s", n ? " and " : "", addr);
    }
    rpc_server_start(rs, err, sizeof err);
    if (c.dev) print_dev_tokens(au);
    printf("parleyd listening on %s (db %s)\n", where, c.db);
    fflush(stdout);

    while (!stop_flag) {
        if (rpc_server_poll(rs, 150) < 0) break;
        srv_flush(sv);
        int force = reload_flag;
        reload_flag = 0;
        housekeeping(sv, au, force);
    }

    /* Shutdown: no new calls; commit and ack what already arrived. */
    fprintf(stderr, "parleyd: shutting down\n");
    rpc_server_shutdown_begin(rs);
    int64_t t0 = clock_mono_ms();
    do { /* commit what arrived, let the acks and events leave (<= 2 s) */
        rpc_server_poll(rs, 20);
        srv_flush(sv);
    } while (clock_mono_ms() - t0 < 2000 && !rpc_server_done(rs) &&
             (srv_pending(sv) || rpc_server_unsent(rs) ||
              clock_mono_ms() - t0 < 50));
    srv_flush(sv);
    rpc_server_cancel_all(rs);
    t0 = clock_mono_ms();
    while (!rpc_server_done(rs) && clock_mono_ms() - t0 < 5000) {
        if (rpc_server_poll(rs, 50) < 0) break;
        srv_flush(sv);
    }
    code = rpc_server_done(rs) ? 0 : 1;
    if (code) fprintf(stderr, "parleyd: calls still open after 5 s\n");
out:
    rpc_server_free(rs);
    srv_free(sv);
    store_close(db);
    auth_free(au);
    if (!disabled(c.unix_path)) unlink(c.unix_path);
    grpc_shutdown();
    return code;
}
