/* gw_main.c: parley-gateway's entry point. Reads its settings
 * (gw_config.c) and the JWT secret, mints the gateway's service token,
 * wires the modules (the links report events to the rooms, connections
 * report messages to the session), starts the upstream client and the one
 * lws context (HTTP + the two WebSocket subprotocols), and runs the service
 * loop, which is also the one place the upstream hand-over is drained.
 * Serves until SIGTERM/SIGINT, then closes every socket with 1001 and
 * exits 0. */
#include "gw.h"

#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "defaults.h"
#include "secrets.h"

static volatile sig_atomic_t g_stop;
static struct lws_context *g_ctx;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
    if (g_ctx) lws_cancel_service(g_ctx);
}

/* The secret (base/secrets.h: file, else PARLEY_JWT_SECRET, else in dev
 * mode the dev secret beside parleyd's default database), the auth handle
 * and the gateway's service token. */
static int load_auth(gw_server *s)
{
    char secret[1024], dev_path[256], err[700];
    int created;
    if (secrets_dev_path(PARLEY_DB_DEFAULT, dev_path, sizeof dev_path) != 0)
        return -1;
    secrets_source src = {s->cfg.jwt_secret_file, s->cfg.jwt_secret, s->cfg.dev,
                          dev_path};
    if (secrets_load(&src, secret, sizeof secret, &created, err, sizeof err) !=
        0) {
        fprintf(stderr, "parley-gateway: %s\n", err);
        return -1;
    }
    if (created)
        fprintf(stderr, "parley-gateway: dev mode: new secret written to %s\n",
                dev_path);
    parley_err e = auth_new(secret, strlen(secret), &s->auth);
    memset(secret, 0, sizeof secret);
    if (e != PARLEY_OK) {
        fprintf(stderr, "parley-gateway: the JWT secret must be at least 32 "
                        "bytes\n");
        return -1;
    }
    auth_identity svc;
    memset(&svc, 0, sizeof svc);
    snprintf(svc.id, sizeof svc.id, "gateway");
    snprintf(svc.display_name, sizeof svc.display_name, "parley-gateway");
    svc.role = PARLEY_ROLE_ORGANIZER;
    s->service_token = auth_mint(s->auth, &svc, gw_now_s(), 365LL * 24 * 3600);
    if (!s->service_token) {
        fprintf(stderr, "parley-gateway: cannot mint the service token\n");
        return -1;
    }
    return 0;
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
        if (r < 0) fprintf(stderr, "parley-gateway: %s\n", err);
        gw_config_free(&s->cfg);
        return r > 0 ? 0 : 2;
    }
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

    /* PARLEY_GW_LWS_LOG: lws log level bits, for debugging (default errors) */
    const char *ll = getenv("PARLEY_GW_LWS_LOG");
    lws_set_log_level(ll ? atoi(ll) : LLL_ERR, NULL);
    if (gw_up_new(s, &s->up) != PARLEY_OK || gw_rooms_new(s) != PARLEY_OK) {
        fprintf(stderr, "parley-gateway: cannot start the gRPC client\n");
        goto out;
    }
    static const gw_up_handlers up_handlers = {gw_rooms_on_event,
                                               gw_rooms_on_link_down};
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
        fprintf(stderr, "parley-gateway: cannot create the event loop\n");
        goto out;
    }
    void *foreign_loops[1] = {loop};

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.foreign_loops = foreign_loops;
    info.port = s->cfg.listen_port; /* 0: the OS picks, printed below */
    info.iface = s->cfg.listen_host;
    info.protocols = protos;
    info.user = s;
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8 |
                   LWS_SERVER_OPTION_DISABLE_IPV6 | LWS_SERVER_OPTION_LIBEV;
    info.retry_and_idle_policy = &retry;
    info.timeout_secs = 20;
    info.vhost_name = "parley-gateway";
    info.server_string = "parley-gateway";

    s->ctx = lws_create_context(&info);
    if (!s->ctx) {
        fprintf(stderr, "parley-gateway: cannot listen on %s:%d\n",
                s->cfg.listen_host, s->cfg.listen_port);
        goto out;
    }
    g_ctx = s->ctx;
    s->vh = lws_get_vhost_by_name(s->ctx, "parley-gateway");
    if (s->vh) s->cfg.listen_port = lws_get_vhost_listen_port(s->vh);
    gw_conn_sweep_start(s);
    printf("parley-gateway listening on http://%s:%d/\n", s->cfg.listen_host,
           s->cfg.listen_port);
    fflush(stdout);

    /* The grpc thread wakes lws_service (lws_cancel_service) when it hands
     * something over; what it handed over runs here, between two rounds. */
    while (!g_stop) {
        s->rounds++; /* gw_conn.c tells a stalled socket by it */
        ev_run(loop, EVRUN_ONCE);
        gw_up_drain(s);
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
    gw_config_free(&s->cfg);
    return rc;
}
