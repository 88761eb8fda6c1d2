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

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

/* mkdir -p of the directory holding path. */
static int make_parent(const char *path)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", path);
    char *d = dirname(buf);
    if (!strcmp(d, ".") || !strcmp(d, "/")) return 0;
    for (char *p = d + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(d, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(d, 0755) != 0 && errno != EEXIST) return -1;
    return 0;
}

static int disabled(const char *v) { return !*v || !strcmp(v, "none"); }

/* The secret: --jwt-secret-file, else --jwt-secret, else (dev) the dev
 * secret beside the database, created if missing. */
static int load_secret(const cfg *c, char *out, size_t outlen)
{
    char dev_path[600], err[700];
    if (secrets_dev_path(c->db, dev_path, sizeof dev_path) != 0) {
        log_error("config", "database path too long");
        return -1;
    }
    secrets_source src = {c->jwt_secret_file, c->jwt_secret, c->dev, dev_path};
    int created;
    if (secrets_load(&src, out, outlen, &created, err, sizeof err) != 0) {
        log_error("config", "%s", err);
        return -1;
    }
    if (created)
        log_info("dev", "dev mode: new secret written to %s", dev_path);
    return 0;
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
    if (disabled(c.listen) && disabled(c.unix_path)) {
        log_error("config", "nothing to listen on (--listen and --unix both "
                            "disabled)");
        return 2;
    }
    if (make_parent(c.db) != 0 ||
        (!disabled(c.unix_path) && make_parent(c.unix_path) != 0)) {
        log_error("config", "cannot create directory for %s: %s", c.db,
                  strerror(errno));
        return 1;
    }
    char secret[512];
    if (load_secret(&c, secret, sizeof secret) != 0) return 2;
    log_redact_secret(secret);
    auth *au = NULL;
    if (auth_new(secret, strlen(secret), &au) != PARLEY_OK) {
        log_error("config", "the JWT secret must be at least 32 bytes");
        return 2;
    }
    memset(secret, 0, sizeof secret);

    store_opts so = {c.max_body, 1};
    store *db = NULL;
    if (store_open(c.db, &so, &db, err, sizeof err) != PARLEY_OK) {
        log_error("store", "cannot open %s: %s", c.db, err);
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

    grpc_init();
    int code = 1;
    metrics *reg = metrics_new();
    daemon_metrics dm;
    ops_http *http = NULL;
    srv_opts sopt = {c.max_body, reg, c.no_reflection};
    srv *sv = reg ? srv_new(db, au, &sopt) : NULL;
    size_t max_recv = c.max_body * 2 + 4096;
    if (max_recv < 64 * 1024) max_recv = 64 * 1024;
    rpc_server_opts ro = {c.max_queue, max_recv};
    rpc_server *rs = sv ? rpc_server_new(&ro) : NULL;
    if (!rs || srv_register(sv, rs, err, sizeof err) != 0) {
        log_error("start", "%s", rs ? err : "out of memory");
        goto out;
    }
    daemon_metrics_init(&dm, reg, c.db);
    char where[700] = "";
    if (!disabled(c.listen)) {
        int port = rpc_server_listen(rs, c.listen);
        if (port <= 0) {
            log_error("start", "cannot listen on %s (in use or bad address)",
                      c.listen);
            goto out;
        }
        char host[256];
        snprintf(host, sizeof host, "%s", c.listen);
        char *colon = strrchr(host, ':');
        if (colon) *colon = 0;
        snprintf(where, sizeof where, "%s:%d", host, port);
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
    rpc_server_start(rs, err, sizeof err);
    if (c.dev) {
        log_warn("dev", "development mode: tokens are printed on stdout");
        print_dev_tokens(au);
    }
    /* The level SQLite really runs with, read back: tests check it. */
    static const char *const sync_names[] = {"OFF", "NORMAL", "FULL", "EXTRA"};
    int sync = store_synchronous(db);
    printf("parleyd listening on %s (db %s, synchronous=%s)%s%s\n", where, c.db,
           sync >= 0 && sync <= 3 ? sync_names[sync] : "unknown",
           metrics_at[0] ? "; metrics on " : "", metrics_at);
    fflush(stdout);
    {
        const char *f[] = {"grpc",    where,
                           "db",      c.db,
                           "metrics", metrics_at[0] ? metrics_at : "none",
                           NULL};
        log_event(LOG_INFO, "listening", f, "parleyd %s ready", PARLEY_VERSION);
    }

    while (!stop_flag) {
        if (rpc_server_poll(rs, 150) < 0) break;
        srv_flush(sv);
        srv_tick(sv, rs);
        daemon_metrics_sample(&dm);
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
    if (code) log_error("shutdown", "calls still open after 5 s");
out:
    ops_http_stop(http);
    rpc_server_free(rs);
    srv_free(sv);
    metrics_free(reg);
    store_close(db);
    auth_free(au);
    if (!disabled(c.unix_path)) unlink(c.unix_path);
    grpc_shutdown();
    if (code == 0) log_info("shutdown", "stopped");
    return code;
}
