/* gw_main.c: parley-gateway's entry point. Reads its settings
 * (gw_config.c) and the JWT secret, mints the gateway's service token,
 * starts the upstream client and the one lws context (HTTP + the two
 * WebSocket subprotocols),
 * serves until SIGTERM/SIGINT, then closes every socket with 1001 and
 * exits 0. */
#include "gw.h"

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
    if (g_ctx)
        lws_cancel_service(g_ctx);
}

gw_server *gw_server_of(struct lws *wsi)
{
    return lws_context_user(lws_get_context(wsi));
}

int64_t gw_now_s(void)
{
    return (int64_t)time(NULL);
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
    secrets_source src = {s->cfg.jwt_secret_file, s->cfg.jwt_secret,
                          s->cfg.dev, dev_path};
    if (secrets_load(&src, secret, sizeof secret, &created, err,
                     sizeof err) != 0) {
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
    int rc = 1;

    char err[700];
    int r = gw_config_load(&s->cfg, argc, argv, err, sizeof err);
    if (r != 0) {
        if (r < 0) fprintf(stderr, "parley-gateway: %s\n", err);
        gw_config_free(&s->cfg);
        return r > 0 ? 0 : 2;
    }
    if (load_auth(s) < 0)
        goto out;

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
    if (gw_up_new(s, &s->up) != PARLEY_OK) {
        fprintf(stderr, "parley-gateway: cannot start the gRPC client\n");
        goto out;
    }

    static const struct lws_protocols *pprotos[] = {
        &gw_http_protocol, &gw_ws_protocol_bin, &gw_ws_protocol_json, NULL};
    struct lws_protocols protos[4];
    memset(protos, 0, sizeof protos);
    for (int i = 0; pprotos[i]; i++) {
        protos[i] = *pprotos[i];
        if (i > 0)
            protos[i].rx_buffer_size = s->cfg.max_frame < 16384
                                           ? s->cfg.max_frame : 16384;
    }
    /* lws's validity policy (a ping / hang-up sul per connection, re-armed
     * on every pong) is off: secs_since_valid_hangup 0 disables it, where
     * no policy at all would mean lws's default of 300 / 310 s. Pings,
     * hang-ups and the authenticate timeout are the gateway's own sweep
     * (gw_ws.c), one timer for all sessions. */
    lws_retry_bo_t retry;
    memset(&retry, 0, sizeof retry);

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = s->cfg.listen_port; /* 0: the OS picks, printed below */
    info.iface = s->cfg.listen_host;
    info.protocols = protos;
    info.user = s;
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8 |
                   LWS_SERVER_OPTION_DISABLE_IPV6;
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
    if (s->vh)
        s->cfg.listen_port = lws_get_vhost_listen_port(s->vh);
    gw_ws_sweep_start(s);
    printf("parley-gateway listening on http://%s:%d/\n", s->cfg.listen_host,
           s->cfg.listen_port);
    fflush(stdout);

    while (!g_stop)
        if (lws_service(s->ctx, 0) < 0)
            break;

    /* Shutdown: every session closes 1001, give them a moment to go. */
    s->shutting_down = 1;
    gw_ws_close_all(s, GW_CLOSE_GOING_AWAY);
    lws_usec_t until = lws_now_usecs() + 2 * LWS_US_PER_SEC;
    while (s->n_conns > 0 && lws_now_usecs() < until)
        lws_service(s->ctx, 0);
    gw_ws_sweep_stop(s);
    gw_ws_pub_streams_cancel(s);
    gw_rooms_free_all(s);
    gw_up_free(s->up);
    s->up = NULL;
    g_ctx = NULL;
    lws_context_destroy(s->ctx);
    s->ctx = NULL;
    rc = 0;
out:
    if (s->up)
        gw_up_free(s->up);
    gw_rooms_free_all(s);
    if (s->service_token) {
        memset(s->service_token, 0, strlen(s->service_token));
        free(s->service_token);
    }
    auth_free(s->auth);
    gw_config_free(&s->cfg);
    return rc;
}
