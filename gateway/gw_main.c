/* gw_main.c: parley-gateway's entry point. Reads its settings
 * (gw_config.c) and the JWT secret, mints the gateway's service token,
 * starts the upstream client and the one lws context (HTTP + the two
 * WebSocket subprotocols),
 * serves until SIGTERM/SIGINT, then closes every socket with 1001 and
 * exits 0. */
#include "gw.h"

#include <ev.h>

#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "defaults.h"
#include "log.h"
#include "secrets.h"

static volatile sig_atomic_t g_stop, g_reload;
static struct lws_context *g_ctx;

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        g_reload = 1;
    else
        g_stop = 1;
    if (g_ctx) lws_cancel_service(g_ctx);
}

/* One secret: its file, else its value, else in dev mode the dev file
 * `name` beside parleyd's default database. 1 with it in out, 0 when none
 * is configured, -1 on an error (printed). */
static int load_one_secret(gw_server *s, const char *file, const char *value,
                           const char *name, char *out, size_t cap)
{
    char dev_path[256], err[700];
    int created;
    if (!s->cfg.dev && !*file && !*value) return 0;
    if (secrets_dev_file(PARLEY_DB_DEFAULT, name, dev_path, sizeof dev_path))
        return -1;
    secrets_source src = {file, value, s->cfg.dev, dev_path};
    if (secrets_load(&src, out, cap, &created, err, sizeof err) != 0) {
        log_error("config", "%s", err);
        return -1;
    }
    if (created)
        log_warn("secrets", "dev mode: new secret written to %s", dev_path);
    return 1;
}

/* (Re)mints the gateway's service token: {svc: "gateway"}, an hour long,
 * signed with the service secret. Never a user, never an organizer. */
static int mint_service_token(gw_server *s)
{
    char *t = auth_mint_service(s->auth, "gateway", gw_now_s(),
                                s->cfg.service_token_ttl_s);
    if (!t) return -1;
    if (s->service_token) {
        explicit_bzero(s->service_token, strlen(s->service_token));
        free(s->service_token);
    }
    s->service_token = t;
    s->service_token_at = lws_now_usecs();
    return 0;
}

/* The token verifier and the service token. Public keys verify users
 * without being able to mint one; the service secret signs only the
 * gateway's own read-only credential. A user secret still works (the old
 * setup, and development mode) but is announced: it can mint anyone. */
static int load_auth(gw_server *s)
{
    gw_config *c = &s->cfg;
    int real = *c->jwt_secret || *c->jwt_secret_file || *c->jwt_keys ||
               *c->service_secret || *c->service_secret_file;
    if (c->dev && real) {
        log_error("config",
                  "--dev refused: a real secret or key is "
                  "configured; development mode mints tokens on /v1/dev/token "
                  "and must never run with them");
        return -1;
    }
    char user[1024], svc[1024], err[700];
    int hu = load_one_secret(s, c->jwt_secret_file, c->jwt_secret,
                             SECRETS_DEV_FILE, user, sizeof user);
    int hs = hu < 0
                 ? -1
                 : load_one_secret(s, c->service_secret_file, c->service_secret,
                                   SECRETS_DEV_SERVICE_FILE, svc, sizeof svc);
    if (hu < 0 || hs < 0) return -1;
    if (hu) log_redact_secret(user); /* whatever a line might carry */
    if (hs) log_redact_secret(svc);
    if (!hs && !hu) {
        log_error("config",
                  "no service secret: set "
                  "PARLEY_SERVICE_SECRET_FILE (--service-secret-file); "
                  "the gateway follows rooms upstream with its own "
                  "service token");
        return -1;
    }
    auth_opts o;
    memset(&o, 0, sizeof o);
    if (hu) o.user_secret = user, o.user_secret_len = strlen(user);
    if (hs) o.svc_secret = svc, o.svc_secret_len = strlen(svc);
    o.keys_file = c->jwt_keys;
    o.issuer = c->jwt_issuer;
    o.audience = c->jwt_audience;
    o.max_ttl_s = (int64_t)c->jwt_max_ttl;
    o.leeway_s = (int64_t)c->jwt_leeway;
    parley_err e = auth_open(&o, &s->auth, err, sizeof err);
    explicit_bzero(user, sizeof user);
    explicit_bzero(svc, sizeof svc);
    if (e != PARLEY_OK) {
        log_error("config", "%s", err);
        return -1;
    }
    if (!c->dev && auth_can_mint(s->auth))
        log_warn("auth", "this gateway holds the JWT "
                         "user secret and could mint any user; give it "
                         "--jwt-keys and --service-secret-file instead");
    if (mint_service_token(s) != 0) {
        log_error("auth", "cannot mint the service token");
        return -1;
    }
    return 0;
}

/* Once a second from the main loop (and at once after SIGHUP): the keys
 * file re-read if it changed, the service token renewed halfway through
 * its life. */
static void gw_tls_reload(gw_server *s);

static void housekeeping(gw_server *s, int force)
{
    static lws_usec_t last;
    if (force) gw_tls_reload(s);
    lws_usec_t now = lws_now_usecs();
    if (!force && now - last < LWS_US_PER_SEC) return;
    last = now;
    char err[600];
    int r = auth_reload(s->auth, err, sizeof err);
    if (r > 0)
        log_info("auth", "keys reloaded: %zu public key(s)",
                 auth_key_count(s->auth));
    else if (r < 0)
        log_error("config", "%s", err);
    if (now - s->service_token_at >
        (lws_usec_t)s->cfg.service_token_ttl_s * LWS_US_PER_SEC / 2) {
        if (mint_service_token(s) != 0)
            log_error("auth", "cannot renew the service token");
        else
            gw_up_renew(s);
    }
}

int gw_host_is_loopback(const char *host)
{
    return strncmp(host, "127.", 4) == 0 || strcmp(host, "localhost") == 0 ||
           strcmp(host, "::1") == 0;
}

/* What lws serves: --tls-cert, or --tls-cert with --tls-chain appended into
 * a file of the gateway's own private folder (lws reads one chain file).
 * The key must be private. Called at start and on SIGHUP. */
static int gw_tls_prepare(gw_server *s)
{
    gw_config *c = &s->cfg;
    if (!c->tls_cert[0]) return 0;
    struct stat st;
    if (stat(c->tls_key, &st) != 0 || (st.st_mode & 077)) {
        log_error("tls", "TLS key %s: %s", c->tls_key,
                  errno == ENOENT ? "missing"
                                  : "other users can read it (chmod 600 it)");
        return -1;
    }
    if (!c->tls_chain[0]) {
        snprintf(s->tls_cert_path, sizeof s->tls_cert_path, "%s", c->tls_cert);
        return 0;
    }
    if (!s->tls_tmpdir[0]) {
        snprintf(s->tls_tmpdir, sizeof s->tls_tmpdir, "/tmp/parley-gw-XXXXXX");
        if (!mkdtemp(s->tls_tmpdir)) {
            s->tls_tmpdir[0] = '\0';
            perror("parley-gateway: mkdtemp");
            return -1;
        }
    }
    char tmp[700];
    snprintf(s->tls_cert_path, sizeof s->tls_cert_path, "%s/fullchain.pem",
             s->tls_tmpdir);
    snprintf(tmp, sizeof tmp, "%s.new", s->tls_cert_path);
    FILE *out = fopen(tmp, "w");
    int ok = out != NULL;
    const char *parts[] = {c->tls_cert, c->tls_chain};
    for (int i = 0; ok && i < 2; i++) {
        FILE *in = fopen(parts[i], "r");
        char buf[4096];
        size_t n;
        ok = in != NULL;
        while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0)
            ok = fwrite(buf, 1, n, out) == n;
        if (in) fclose(in);
        if (ok) fputc('\n', out);
    }
    if (out && fclose(out) != 0) ok = 0;
    if (!ok || rename(tmp, s->tls_cert_path) != 0) {
        log_error("tls", "cannot join %s and %s", c->tls_cert, c->tls_chain);
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* SIGHUP: the certificate files are read again into the running vhost;
 * connections already open keep the session they have. */
static void gw_tls_reload(gw_server *s)
{
    if (!s->cfg.tls_cert[0] || !s->ctx) return;
    if (gw_tls_prepare(s) != 0 ||
        lws_tls_cert_updated(s->ctx, s->tls_cert_path, s->cfg.tls_key, NULL, 0,
                             NULL, 0) != 0) {
        log_error("tls", "TLS reload failed; the old "
                         "certificate stays");
        return;
    }
    s->tls_reloads++;
    log_info("tls", "TLS certificate reloaded");
}

static void gw_tls_cleanup(gw_server *s)
{
    if (!s->tls_tmpdir[0]) return;
    unlink(s->tls_cert_path);
    rmdir(s->tls_tmpdir);
}

int main(int argc, char **argv)
{
    static gw_server srv;
    gw_server *s = &srv;
    struct ev_loop *loop = NULL;
    int rc = 1;

    char err[700];
    int r = gw_config_load(&s->cfg, argc, argv, err, sizeof err);
    if (r != 0) {
        if (r < 0) log_error("config", "%s", err);
        gw_config_free(&s->cfg);
        return r > 0 ? 0 : 2;
    }
    log_level lv;
    log_format fmt;
    if (log_level_parse(s->cfg.log_level, &lv) != 0 ||
        log_format_parse(s->cfg.log_format, &fmt) != 0) {
        log_error("config",
                  "--log-level is one of debug, info, warn, error and "
                  "--log-format text or json (got \"%s\", \"%s\")",
                  s->cfg.log_level, s->cfg.log_format);
        gw_config_free(&s->cfg);
        return 2;
    }
    log_setup("parley-gateway", lv, fmt, 2);
    if (s->cfg.dev)
        log_warn("dev", "*** DEVELOPMENT MODE: generated "
                        "secrets, tokens minted on /v1/dev/token (loopback "
                        "only); never run --dev where others can reach it "
                        "***");
    if (load_auth(s) < 0) goto out;

    /* lws sizes its fd tables from the soft limit: lift it to the hard one
     * so --max-conns, not the shell's default 1024, is the bound. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    /* PARLEY_GW_LWS_LOG: lws log level bits, for debugging (default errors) */
    const char *ll = getenv("PARLEY_GW_LWS_LOG");
    lws_set_log_level(ll ? atoi(ll) : LLL_ERR, NULL);
    if (gw_up_new(s, &s->up) != PARLEY_OK || gw_rooms_new(s) != PARLEY_OK) {
        log_error("start", "cannot start the gRPC client");
        goto out;
    }
    static const gw_up_handlers up_handlers = {
        .on_event = gw_rooms_on_event,
        .on_room_frame = gw_rooms_on_room_frame,
        .on_down = gw_rooms_on_link_down};
    gw_up_set_handlers(s, &up_handlers);
    gw_conn_set_handlers(s, &gw_session_handlers);

    struct lws_protocols protos[4] = {gw_http_protocol, gw_conn_protocol_bin,
                                      gw_conn_protocol_json};
    memset(&protos[3], 0, sizeof protos[3]);
    /* lws's validity policy (a ping / hang-up sul per connection, re-armed
     * on every pong) is off: secs_since_valid_hangup 0 disables it, where
     * no policy at all would mean lws's default of 300 / 310 s. Pings,
     * hang-ups and the authenticate timeout are the gateway's own sweep
     * (gw_conn.c), one timer for all sessions. */
    lws_retry_bo_t retry;
    memset(&retry, 0, sizeof retry);
    /* The event loop is libev's (epoll), given to lws as a foreign loop:
     * lws's own poll(2) loop walks every descriptor on every round, which
     * with 10,000 connections took a third of the gateway's time. */
    loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
    if (!loop) {
        log_error("start", "cannot create the event loop");
        goto out;
    }
    void *foreign_loops[1] = {loop};

    if (gw_tls_prepare(s) != 0) goto out;
    int tls = s->cfg.tls_cert[0] != '\0';
    if (!tls && !s->cfg.allow_plaintext && !s->cfg.dev &&
        !gw_host_is_loopback(s->cfg.listen_host)) {
        log_error("config",
                  "%s is beyond loopback: give "
                  "--tls-cert and --tls-key (or --allow-plaintext "
                  "behind a TLS proxy)",
                  s->cfg.listen_host);
        goto out;
    }

    /* One context, one vhost per listener: the browsers' (https/wss when
     * TLS is configured) and, with --admin-listen, a plain one that
     * answers /healthz and /metrics only. */
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
                   LWS_SERVER_OPTION_VALIDATE_UTF8 |
                   LWS_SERVER_OPTION_DISABLE_IPV6 | LWS_SERVER_OPTION_LIBEV |
                   (tls ? LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT : 0);
    info.foreign_loops = foreign_loops;
    info.user = s;
    /* room for a request head with a target up to gw_http.c's GW_URL_MAX,
     * so that a long URL is answered 414 instead of dropped */
    info.max_http_header_data = GW_HTTP_HEADER_SPACE;
    info.server_string = "parley-gateway";
    info.retry_and_idle_policy = &retry;
    s->ctx = lws_create_context(&info);
    if (!s->ctx) {
        log_error("start", "cannot create the lws context");
        goto out;
    }
    g_ctx = s->ctx;

    struct lws_context_creation_info vi;
    memset(&vi, 0, sizeof vi);
    vi.port = s->cfg.listen_port; /* 0: the OS picks, printed below */
    vi.iface = s->cfg.listen_host;
    vi.protocols = protos;
    vi.user = s;
    vi.options = LWS_SERVER_OPTION_VALIDATE_UTF8 |
                 LWS_SERVER_OPTION_DISABLE_IPV6 |
                 (tls ? LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT : 0);
    vi.retry_and_idle_policy = &retry;
    vi.timeout_secs = 20;
    vi.vhost_name = "parley-gateway";
    /* lws keeps the pointer: s outlives the context */
    if (gw_http_mounts(s, s->mounts, GW_HTTP_MOUNTS) < 0) goto out;
    vi.mounts = s->mounts;
    if (tls) {
        vi.ssl_cert_filepath = s->tls_cert_path;
        vi.ssl_private_key_filepath = s->cfg.tls_key;
    }
    s->vh = lws_create_vhost(s->ctx, &vi);
    if (!s->vh) {
        log_error("listen", "cannot listen on %s:%d%s", s->cfg.listen_host,
                  s->cfg.listen_port,
                  tls ? " (or the TLS certificate and key do not load)" : "");
        goto out;
    }
    s->cfg.listen_port = lws_get_vhost_listen_port(s->vh);
    if (s->cfg.admin_listen[0]) {
        /* lws keeps the pointer: the list lives as long as the context */
        static struct lws_protocols admin_protos[2];
        admin_protos[0] = gw_http_protocol;
        struct lws_context_creation_info ai;
        memset(&ai, 0, sizeof ai);
        ai.port = s->cfg.admin_port;
        ai.iface = s->cfg.admin_host;
        ai.protocols = admin_protos;
        ai.user = s;
        ai.options = LWS_SERVER_OPTION_DISABLE_IPV6;
        ai.retry_and_idle_policy = &retry;
        ai.timeout_secs = 20;
        ai.vhost_name = "parley-admin";
        s->admin_vh = lws_create_vhost(s->ctx, &ai);
        if (!s->admin_vh) {
            log_error("listen", "cannot listen on %s (admin)",
                      s->cfg.admin_listen);
            goto out;
        }
        s->cfg.admin_port = lws_get_vhost_listen_port(s->admin_vh);
    }
    gw_conn_sweep_start(s);
    if (s->cfg.dev && strncmp(s->cfg.listen_host, "127.", 4) != 0 &&
        strcmp(s->cfg.listen_host, "localhost") != 0)
        log_warn("dev",
                 "*** DEVELOPMENT MODE on %s, reachable "
                 "from other machines: /v1/dev/token still answers "
                 "loopback only ***",
                 s->cfg.listen_host);
    if (s->admin_vh)
        printf("parley-gateway admin on http://%s:%d/ (/healthz, /metrics)\n",
               s->cfg.admin_host, s->cfg.admin_port);
    printf("parley-gateway listening on %s://%s:%d/\n", tls ? "https" : "http",
           s->cfg.listen_host, s->cfg.listen_port);
    fflush(stdout);

    /* The grpc thread wakes lws_service (lws_cancel_service) when it hands
     * something over; what it handed over runs here, between two rounds,
     * and so do the reloads (SIGHUP) and the once-a-second housekeeping. */
    while (!g_stop) {
        s->rounds++; /* gw_conn.c tells a stalled socket by it */
        ev_run(loop, EVRUN_ONCE);
        gw_up_drain(s);
        int force = g_reload;
        g_reload = 0;
        housekeeping(s, force);
    }

    /* Shutdown: every session closes 1001, give them a moment to go. */
    s->shutting_down = 1;
    gw_conn_close_all(s, GW_CLOSE_GOING_AWAY);
    lws_usec_t until = lws_now_usecs() + 2 * LWS_US_PER_SEC;
    while (gw_conn_count(s) > 0 && lws_now_usecs() < until) {
        ev_run(loop, EVRUN_ONCE);
        gw_up_drain(s);
    }
    gw_conn_sweep_stop(s);
    gw_rooms_free(s);
    gw_up_free(s->up);
    s->up = NULL;
    g_ctx = NULL;
    lws_context_destroy(s->ctx);
    s->ctx = NULL;
    rc = 0;
out:
    gw_rooms_free(s);
    if (s->up) gw_up_free(s->up);
    free(s->wbuf);
    if (loop) ev_loop_destroy(loop);
    if (s->service_token) {
        memset(s->service_token, 0, strlen(s->service_token));
        free(s->service_token);
    }
    auth_free(s->auth);
    gw_ip_free_all(s);
    gw_tls_cleanup(s);
    gw_config_free(&s->cfg);
    return rc;
}
