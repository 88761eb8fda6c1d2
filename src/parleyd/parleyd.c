/* parleyd.c: the parley daemon. Reads its settings, sets up the log, opens
 * the store, serves parley.v1 History and Stream with grpc.health.v1 and
 * grpc.reflection over gRPC (TCP and a unix socket) from one event-loop
 * thread, /metrics and /healthz on an HTTP listener of their own
 * (ops_http.c), and shuts down cleanly on SIGTERM / SIGINT: health turns
 * NOT_SERVING, stop accepting, commit and ack what is in flight, cancel
 * streams, drain the completion queue, close the store.
 *
 * Output: the ready line ("parleyd listening on ...") and, in dev mode,
 * the dev tokens go to stdout, for the scripts and people that start it;
 * everything else is a log line on stderr (base/log.h), which never holds
 * a token or the secret. */
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
#include "bus.h"
#include "clock.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "ops_http.h"
#include "rpc.h"
#include "secrets.h"
#include "settings.h"
#include "srv.h"
#include "store.h"

#ifndef PARLEY_VERSION
#define PARLEY_VERSION "dev"
#endif

static volatile sig_atomic_t stop_flag, reload_flag;

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        reload_flag = 1;
    else
        stop_flag = 1;
}

/* Once a second (and at once on SIGHUP): re-read the keys file if it
 * changed. (Streams whose token expired are ended by srv_tick.) */
static void reload_keys(auth *au, int force)
{
    static int64_t last;
    int64_t now = clock_mono_ms();
    if (!force && now - last < 1000) return;
    last = now;
    char err[600];
    int r = auth_reload(au, err, sizeof err);
    if (r > 0)
        log_info("auth", "keys reloaded: %zu public key(s)",
                 auth_key_count(au));
    else if (r < 0)
        log_error("auth", "%s", err);
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
        log_error("config", "database path too long");
        return -1;
    }
    secrets_source src = {file, value, c->dev, dev_path};
    int created;
    if (secrets_load(&src, out, outlen, &created, err, sizeof err) != 0) {
        log_error("config", "%s", err);
        return -1;
    }
    if (created)
        log_info("dev", "dev mode: new secret written to %s", dev_path);
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
        log_error("config",
                  "--dev refused: a real secret or key is configured "
                  "(jwt-secret, jwt-secret-file, jwt-keys, service-secret...); "
                  "development mode prints tokens and must never run with "
                  "them");
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
    if (hu) log_redact_secret(user);
    if (hs) log_redact_secret(svc);
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
        log_error("config", "%s", err);
        return NULL;
    }
    if (auth_key_count(au))
        log_info("auth", "%zu public key(s) from %s", auth_key_count(au),
                 c->jwt_keys);
    if (!c->dev && auth_can_mint(au))
        log_warn("auth", "a JWT user secret is configured; whoever holds it "
                         "can mint any user (prefer --jwt-keys)");
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
        log_error("config", "cannot create room \"%s\": %s", name,
                  parley_err_text(e));
        return -1;
    }
    return 0;
}

/* The log, from --log-level and --log-format; 2 (usage) on a bad one. */
static int setup_log(const cfg *c)
{
    log_level lv;
    log_format fmt;
    if (log_level_parse(c->log_level, &lv) != 0) {
        fprintf(stderr,
                "parleyd: --log-level \"%s\" is none of debug, info, warn, "
                "error\n",
                c->log_level);
        return 2;
    }
    if (log_format_parse(c->log_format, &fmt) != 0) {
        fprintf(stderr,
                "parleyd: --log-format \"%s\" is neither text nor json\n",
                c->log_format);
        return 2;
    }
    log_setup("parleyd", lv, fmt, 2);
    return 0;
}

/* The series parleyd keeps itself (the rest are the server's). */
typedef struct daemon_metrics {
    metric *db_bytes, *wal_bytes;
    char db[512], wal[520];
    int64_t next_ms;
} daemon_metrics;

static void daemon_metrics_init(daemon_metrics *d, metrics *reg, const char *db)
{
    memset(d, 0, sizeof d[0]);
    snprintf(d->db, sizeof d->db, "%s", db);
    snprintf(d->wal, sizeof d->wal, "%s-wal", db);
    const char *help = "Size of the store's files on disk.";
    d->db_bytes =
        metrics_gauge(reg, "parley_core_store_bytes", help, "file=\"db\"");
    d->wal_bytes =
        metrics_gauge(reg, "parley_core_store_bytes", help, "file=\"wal\"");
    metric_set(metrics_gauge(reg, "parley_core_start_time_seconds",
                             "When parleyd started (Unix time).", NULL),
               clock_wall_ms() / 1000);
    metric_set(metrics_gauge(reg, "parley_core_build_info",
                             "Always 1; the version is the label.",
                             "version=\"" PARLEY_VERSION "\""),
               1);
}

/* Once a second: what the store's files weigh. */
static void daemon_metrics_sample(daemon_metrics *d)
{
    int64_t now = clock_mono_ms();
    if (now < d->next_ms) return;
    d->next_ms = now + 1000;
    struct stat st;
    metric_set(d->db_bytes, stat(d->db, &st) == 0 ? (int64_t)st.st_size : 0);
    metric_set(d->wal_bytes, stat(d->wal, &st) == 0 ? (int64_t)st.st_size : 0);
}

static int health_serving(void *ud) { return srv_health_serving(ud); }

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
    if ((r = setup_log(&c)) != 0) return r;
    log_redact_secret(c.jwt_secret); /* whatever a line might carry */
    log_redact_secret(c.service_secret);
    if (c.dev)
        log_warn("dev", "*** DEVELOPMENT MODE: generated secrets, tokens "
                        "printed on stdout; never run --dev where others can "
                        "reach it ***");
    if (disabled(c.listen) && disabled(c.unix_path)) {
        log_error("config", "nothing to listen on (--listen and --unix both "
                            "disabled)");
        return 2;
    }
    /* The store: --store (an SQLite file or a postgres:// URI), else the
     * --db file. The --db folder holds the dev secret either way. */
    const char *target = c.store[0] ? c.store : c.db;
    int store_is_file = strstr(target, "://") == NULL;
    if (make_parent(c.db) != 0 || (store_is_file && make_parent(target) != 0) ||
        (!disabled(c.unix_path) && make_parent(c.unix_path) != 0)) {
        log_error("config", "cannot create directory for %s: %s",
                  store_is_file ? target : c.db, strerror(errno));
        return 1;
    }
    auth *au = load_auth(&c);
    if (!au) return 2;
    if (make_db_file(c.db) != 0) {
        log_error("config", "cannot create %s: %s", c.db, strerror(errno));
        auth_free(au);
        return 1;
    }

    store_opts so = {c.max_body, 1};
    store *db = NULL;
    if (store_open(target, &so, &db, err, sizeof err) != PARLEY_OK) {
        /* A URI may hold a password: not echoed. */
        log_error("store", "cannot open %s: %s",
                  store_is_file ? target : "the store", err);
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
    metrics *reg = metrics_new();
    daemon_metrics dm;
    ops_http *http = NULL;
    srv_opts sopt = {.max_body = c.max_body,
                     .metrics = reg,
                     .no_reflection = c.no_reflection,
                     .user_rate = c.user_rate,
                     .user_burst = c.user_burst,
                     .organizer_rate = c.organizer_rate,
                     .max_subs = c.max_subs};
    srv *sv = reg ? srv_new(db, au, &sopt) : NULL;
    size_t max_recv = c.max_body * 2 + 4096;
    if (max_recv < 64 * 1024) max_recv = 64 * 1024;
    rpc_server_opts ro = {c.max_queue, max_recv};
    rpc_server *rs = sv ? rpc_server_new(&ro) : NULL;
    if (!rs || srv_register(sv, rs, err, sizeof err) != 0) {
        log_error("start", "%s", rs ? err : "out of memory");
        goto out;
    }
    daemon_metrics_init(&dm, reg, store_is_file ? target : c.db);
    char where[700] = "";
    if (!disabled(c.listen)) {
        int tls = *c.tls_cert || *c.tls_key;
        if (!tls && !c.allow_plaintext && !rpc_addr_is_local(c.listen)) {
            log_error("config",
                      "%s is beyond loopback: give --tls-cert and --tls-key "
                      "(or --allow-plaintext behind a TLS proxy)",
                      c.listen);
            goto out;
        }
        if (!tls && *c.tls_client_ca) {
            log_error("config", "--tls-client-ca needs --tls-cert and "
                                "--tls-key");
            goto out;
        }
        rpc_tls_files tf = {c.tls_cert, c.tls_key, c.tls_client_ca};
        int port =
            tls ? rpc_server_listen_tls(rs, c.listen, &tf, err, sizeof err)
                : rpc_server_listen(rs, c.listen);
        if (port <= 0) {
            log_error("start", "cannot listen on %s: %s", c.listen,
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
            log_error("start", "cannot listen on %s", addr);
            goto out;
        }
        size_t n = strlen(where);
        snprintf(where + n, sizeof where - n, "%s%s", n ? " and " : "", addr);
    }
    char metrics_at[300] = "";
    if (!disabled(c.metrics_listen)) {
        ops_http_opts ho = {c.metrics_listen, reg, health_serving, sv};
        if (!(http = ops_http_start(&ho, err, sizeof err))) {
            log_error("start", "%s", err);
            goto out;
        }
        char host[256];
        snprintf(host, sizeof host, "%s", c.metrics_listen);
        char *colon = strrchr(host, ':');
        if (colon) *colon = 0;
        snprintf(metrics_at, sizeof metrics_at, "http://%s:%d/metrics", host,
                 ops_http_port(http));
    }
    if (!disabled(c.bus)) {
        char name[800];
        snprintf(name, sizeof name, "%s", c.bus_name);
        if (!name[0]) snprintf(name, sizeof name, "parleyd@%s", where);
        srv_bus_opts bo = {c.bus,
                           c.bus_prefix,
                           name,
                           (unsigned)c.bus_gap_wait_ms,
                           (unsigned)c.bus_sweep_ms,
                           (unsigned)c.bus_test_drop,
                           reg,
                           NULL,
                           NULL};
        if (!strcmp(store_engine_name(db), "sqlite"))
            log_warn("config", "--bus with an SQLite store: other cores "
                               "cannot share this history (use "
                               "PostgreSQL)");
        if (srv_bus_start(sv, &bo, err, sizeof err) != 0) {
            log_error("start", "%s", err);
            goto out;
        }
    }
    rpc_server_start(rs, err, sizeof err);
    if (c.dev) {
        log_warn("dev", "development mode: tokens are printed on stdout");
        print_dev_tokens(au);
    }
    /* The level the store really runs with, read back: tests check it. */
    static const char *const sync_names[] = {"OFF", "NORMAL", "FULL", "EXTRA"};
    int sync = store_synchronous(db);
    /* The bus URLs may hold credentials: not echoed. */
    printf("parleyd listening on %s (db %s, synchronous=%s)%s%s%s\n", where,
           store_describe(db),
           sync >= 0 && sync <= 3 ? sync_names[sync] : "unknown",
           metrics_at[0] ? "; metrics on " : "", metrics_at,
           disabled(c.bus) ? "" : "; bus on");
    fflush(stdout);
    {
        const char *f[] = {"grpc",    where,
                           "db",      store_describe(db),
                           "metrics", metrics_at[0] ? metrics_at : "none",
                           NULL};
        log_event(LOG_INFO, "listening", f, "parleyd %s ready", PARLEY_VERSION);
    }

    while (!stop_flag) {
        if (rpc_server_poll(rs, srv_bus_timeout_ms(sv, 150)) < 0) break;
        srv_bus_poll(sv);
        srv_flush(sv);
        srv_tick(sv, rs);
        daemon_metrics_sample(&dm);
        int force = reload_flag;
        reload_flag = 0;
        reload_keys(au, force);
    }

    /* Shutdown: health says so first, then no new calls; commit and ack
     * what already arrived. */
    log_info("shutdown", "shutting down");
    srv_health_shutdown(sv);
    rpc_server_poll(rs, 0); /* let the NOT_SERVING answers leave */
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
    if (sv) srv_bus_stop(sv); /* every stream is closed */
    if (code) log_error("shutdown", "calls still open after 5 s");
out:
    ops_http_stop(http);
    rpc_server_free(rs);
    srv_free(sv);
    metrics_free(reg);
    store_close(db);
    auth_free(au);
    if (!disabled(c.unix_path)) unlink(c.unix_path);
    if (!disabled(c.bus)) bus_library_close();
    grpc_shutdown();
    if (code == 0) log_info("shutdown", "stopped");
    return code;
}
