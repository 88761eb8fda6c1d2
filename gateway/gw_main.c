/* gw_main.c: parley-gateway's entry point. Reads flags (getopt_long) and
 * the JWT secret, mints the gateway's service token, starts the upstream
 * client and the one lws context (HTTP + the two WebSocket subprotocols),
 * serves until SIGTERM/SIGINT, then closes every socket with 1001 and
 * exits 0. */
#include "gw.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define GW_DEV_SECRET "var/dev-secret"

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

static void usage(FILE *f)
{
    fprintf(f,
"usage: parley-gateway [options]\n"
"  --listen HOST:PORT      HTTP + WebSocket address (default 127.0.0.1:7480; port 0 picks one)\n"
"  --upstream ADDRS        parleyd gRPC addresses, comma-separated; the first\n"
"                          healthy one is used (default unix:var/parleyd.sock)\n"
"  --static DIR            demo page files (default web/dist)\n"
"  --jwt-secret-file FILE  HS256 secret (else env PARLEY_JWT_SECRET, else --dev)\n"
"  --dev                   development mode: secret from " GW_DEV_SECRET " (shared with\n"
"                          parleyd --dev, created if missing) and GET /v1/dev/token\n"
"  --origin PATTERN        allowed browser Origin, for WebSockets and CORS;\n"
"                          repeatable, '*' wildcards (default http://localhost:*,\n"
"                          http://127.0.0.1:*; the gateway's own origin is always\n"
"                          allowed)\n"
"  --max-frame BYTES       largest WebSocket message (default 65536; close 1009)\n"
"  --rate N                messages per second per connection (default 20)\n"
"  --burst N               token bucket size (default 40; over it close 4429)\n"
"  --max-conns N           WebSocket sessions (default 10000; then HTTP 503)\n"
"  --sendq-bytes BYTES     per-connection send queue bound (default 1048576)\n"
"  --sendq-frames N        per-connection send queue bound (default 1024;\n"
"                          over either bound close 4508)\n"
"  --auth-timeout SECS     time to authenticate (default 10; close 4401)\n"
"  --ping-secs SECS        idle seconds before a WebSocket ping (default 5)\n"
"  --hangup-secs SECS      idle seconds before hanging up (default 10)\n"
"  --ring N                recent events kept per room (default 4096)\n"
"  --replay-page N         History page size when a resume misses the ring\n"
"                          (default 1000, the most the core gives)\n"
"  --room-linger SECS      an unwatched room keeps its upstream subscription\n"
"                          and ring this long (default 60)\n"
"  --help\n");
}

static int parse_listen(gw_config *c, const char *v)
{
    const char *colon = strrchr(v, ':');
    if (!colon || colon == v || (size_t)(colon - v) >= sizeof c->listen_host)
        return -1;
    memcpy(c->listen_host, v, (size_t)(colon - v));
    c->listen_host[colon - v] = '\0';
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || p < 0 || p > 65535)
        return -1;
    c->listen_port = (int)p;
    return 0;
}

static int push_str(char ***arr, int *n, const char *v)
{
    char **na = realloc(*arr, (size_t)(*n + 1) * sizeof *na);
    if (!na)
        return -1;
    *arr = na;
    if (!(na[*n] = strdup(v)))
        return -1;
    (*n)++;
    return 0;
}

static int num(const char *v, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || *end || !*v || d < lo || d > hi)
        return -1;
    *out = d;
    return 0;
}

/* Reads a secret file: its bytes up to the first newline. */
static int read_secret(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(out, 1, cap - 1, f);
    fclose(f);
    out[n] = '\0';
    while (n && (out[n - 1] == '\n' || out[n - 1] == '\r'))
        out[--n] = '\0';
    return 0;
}

/* The dev secret: shared with parleyd --dev (same file, same format: 64 hex
 * digits and a newline), created when neither side made it yet. */
static int dev_secret(char *out, size_t cap)
{
    if (read_secret(GW_DEV_SECRET, out, cap) == 0)
        return 0;
    if (errno != ENOENT)
        return -1;
    unsigned char raw[32];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
        return -1;
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(out + 2 * i, cap - 2 * i, "%02x", raw[i]);
    mkdir("var", 0755);
    int fd = open(GW_DEV_SECRET, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) /* parleyd may have made it meanwhile */
        return read_secret(GW_DEV_SECRET, out, cap);
    int ok = write(fd, out, strlen(out)) == (ssize_t)strlen(out) &&
             write(fd, "\n", 1) == 1;
    close(fd);
    fprintf(stderr, "parley-gateway: dev mode: new secret written to %s\n",
            GW_DEV_SECRET);
    return ok ? 0 : -1;
}

enum {
    O_LISTEN = 1, O_UPSTREAM, O_STATIC, O_SECRET_FILE, O_DEV, O_ORIGIN,
    O_MAX_FRAME, O_RATE, O_BURST, O_MAX_CONNS, O_SENDQ_BYTES, O_SENDQ_FRAMES,
    O_AUTH_TIMEOUT, O_PING, O_HANGUP, O_RING, O_REPLAY_PAGE, O_LINGER, O_HELP
};

static int parse_flags(gw_config *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, O_LISTEN},
        {"upstream", required_argument, NULL, O_UPSTREAM},
        {"static", required_argument, NULL, O_STATIC},
        {"jwt-secret-file", required_argument, NULL, O_SECRET_FILE},
        {"dev", no_argument, NULL, O_DEV},
        {"origin", required_argument, NULL, O_ORIGIN},
        {"max-frame", required_argument, NULL, O_MAX_FRAME},
        {"rate", required_argument, NULL, O_RATE},
        {"burst", required_argument, NULL, O_BURST},
        {"max-conns", required_argument, NULL, O_MAX_CONNS},
        {"sendq-bytes", required_argument, NULL, O_SENDQ_BYTES},
        {"sendq-frames", required_argument, NULL, O_SENDQ_FRAMES},
        {"auth-timeout", required_argument, NULL, O_AUTH_TIMEOUT},
        {"ping-secs", required_argument, NULL, O_PING},
        {"hangup-secs", required_argument, NULL, O_HANGUP},
        {"ring", required_argument, NULL, O_RING},
        {"replay-page", required_argument, NULL, O_REPLAY_PAGE},
        {"room-linger", required_argument, NULL, O_LINGER},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    int ch;
    double d;
    const char *upstream = "unix:var/parleyd.sock";
    snprintf(c->listen_host, sizeof c->listen_host, "127.0.0.1");
    c->listen_port = 7480;
    c->static_dir = "web/dist";
    c->max_frame = 64 * 1024;
    c->rate = 20;
    c->burst = 40;
    c->max_conns = 10000;
    c->sendq_bytes = 1024 * 1024;
    c->sendq_frames = 1024;
    c->auth_timeout_s = 10;
    c->ping_s = 5;
    c->hangup_s = 10;
    c->ring_size = 4096;
    c->replay_page = 1000;
    c->room_linger_s = 60;

    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        const char *v = optarg;
        int bad = 0;
        switch (ch) {
        case O_LISTEN: bad = parse_listen(c, v); break;
        case O_UPSTREAM: upstream = v; break;
        case O_STATIC: c->static_dir = v; break;
        case O_SECRET_FILE: c->jwt_secret_file = v; break;
        case O_DEV: c->dev = 1; break;
        case O_ORIGIN: bad = push_str(&c->origins, &c->n_origins, v); break;
        case O_MAX_FRAME: bad = num(v, 16, 64 << 20, &d); c->max_frame = (size_t)d; break;
        case O_RATE: bad = num(v, 0.01, 1e9, &d); c->rate = d; break;
        case O_BURST: bad = num(v, 1, 1e9, &d); c->burst = d; break;
        case O_MAX_CONNS: bad = num(v, 1, 1e7, &d); c->max_conns = (int)d; break;
        case O_SENDQ_BYTES: bad = num(v, 1024, 1e12, &d); c->sendq_bytes = (size_t)d; break;
        case O_SENDQ_FRAMES: bad = num(v, 1, 1e9, &d); c->sendq_frames = (size_t)d; break;
        case O_AUTH_TIMEOUT: bad = num(v, 1, 3600, &d); c->auth_timeout_s = (int)d; break;
        case O_PING: bad = num(v, 1, 3600, &d); c->ping_s = (int)d; break;
        case O_HANGUP: bad = num(v, 1, 3600, &d); c->hangup_s = (int)d; break;
        case O_RING: bad = num(v, 1, 1e7, &d); c->ring_size = (size_t)d; break;
        case O_REPLAY_PAGE: bad = num(v, 1, 1000, &d); c->replay_page = (size_t)d; break;
        case O_LINGER: bad = num(v, 0, 86400, &d); c->room_linger_s = (int)d; break;
        case O_HELP: case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
        if (bad) {
            fprintf(stderr, "parley-gateway: bad value for --%s: %s\n",
                    opts[ch - 1].name, v);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "parley-gateway: unexpected argument %s\n", argv[optind]);
        return -1;
    }
    if (c->hangup_s <= c->ping_s)
        c->ping_s = c->hangup_s > 1 ? c->hangup_s / 2 : 1;
    if (!c->n_origins && (push_str(&c->origins, &c->n_origins, "http://localhost:*") ||
                          push_str(&c->origins, &c->n_origins, "http://127.0.0.1:*")))
        return -1;
    char *list = strdup(upstream), *save = NULL;
    if (!list)
        return -1;
    for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save))
        if (*t && push_str(&c->upstreams, &c->n_upstreams, t) < 0) {
            free(list);
            return -1;
        }
    free(list);
    if (!c->n_upstreams) {
        fprintf(stderr, "parley-gateway: --upstream is empty\n");
        return -1;
    }
    return 0;
}

static void free_strs(char **a, int n)
{
    for (int i = 0; i < n; i++)
        free(a[i]);
    free(a);
}

static int load_auth(gw_server *s)
{
    char secret[1024];
    const char *file = s->cfg.jwt_secret_file;
    const char *env = getenv("PARLEY_JWT_SECRET");
    if (file) {
        if (read_secret(file, secret, sizeof secret) < 0) {
            fprintf(stderr, "parley-gateway: cannot read %s: %s\n", file,
                    strerror(errno));
            return -1;
        }
    } else if (env && *env) {
        snprintf(secret, sizeof secret, "%s", env);
    } else if (s->cfg.dev) {
        if (dev_secret(secret, sizeof secret) < 0) {
            fprintf(stderr, "parley-gateway: cannot read or create %s\n",
                    GW_DEV_SECRET);
            return -1;
        }
    } else {
        fprintf(stderr, "parley-gateway: no JWT secret: set PARLEY_JWT_SECRET, "
                        "--jwt-secret-file, or run with --dev\n");
        return -1;
    }
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
    svc.role = STORE_ROLE_ORGANIZER;
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

    if (parse_flags(&s->cfg, argc, argv) < 0)
        return 2;
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
    free_strs(s->cfg.upstreams, s->cfg.n_upstreams);
    free_strs(s->cfg.origins, s->cfg.n_origins);
    return rc;
}
