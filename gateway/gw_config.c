/* gw_config.c: parley-gateway's settings table (base/settings.h): one row
 * per setting with its flag, environment variable, config-file key, range,
 * default and help, from which the usage text is printed. After loading, the
 * listen address and the two lists are split into what the gateway uses. */
#include "gw.h"

#include <stdlib.h>
#include <string.h>

#include "defaults.h"
#include "settings.h"

#define F(field) SETTING_FIELD(gw_config, field)
static const setting gw_config_rows[] = {
    {"listen", "PARLEY_GW_LISTEN", SETTING_STR, F(listen), "127.0.0.1:7480", 0,
     0, "HOST:PORT", "HTTP + WebSocket address (port 0 picks one)", 0},
    {"upstream", "PARLEY_GW_UPSTREAM", SETTING_LIST, F(upstream),
     "unix:" PARLEY_SOCKET_DEFAULT, 0, 0, "ADDRS",
     "parleyd gRPC addresses, comma-separated; each call uses the first "
     "connected one",
     0},
    {"static", "PARLEY_GW_STATIC", SETTING_STR, F(static_dir), "web/dist", 0, 0,
     "DIR", "files served for GET / and other non-API paths", 0},
    {"jwt-secret-file", "PARLEY_JWT_SECRET_FILE", SETTING_STR,
     F(jwt_secret_file), "", 0, 0, "FILE",
     "HS256 secret file (wins over PARLEY_JWT_SECRET)", 0},
    {"jwt-secret", "PARLEY_JWT_SECRET", SETTING_STR, F(jwt_secret), "", 0, 0,
     NULL, "HS256 secret; no flag, so it stays out of the process list",
     SETTING_NO_FLAG},
    {"dev", "PARLEY_GW_DEV", SETTING_BOOL, F(dev), "0", 0, 0, NULL,
     "development mode: the dev secret parleyd --dev uses (var/dev-secret, "
     "created if missing) and GET /v1/dev/token",
     0},
    {"origin", "PARLEY_GW_ORIGIN", SETTING_LIST, F(origin),
     "http://localhost:*,http://127.0.0.1:*", 0, 0, "PATTERN",
     "allowed browser Origin, for WebSockets and CORS; '*' wildcards; "
     "replaces the defaults (the gateway's own origin is always allowed)",
     0},
    {"max-frame", "PARLEY_GW_MAX_FRAME", SETTING_SIZE, F(max_frame), "65536",
     16, 64 << 20, "BYTES", "largest WebSocket message (close 1009)", 0},
    {"rate", "PARLEY_GW_RATE", SETTING_DOUBLE, F(rate), "20", 0.01, 1e9, "N",
     "messages per second per connection", 0},
    {"burst", "PARLEY_GW_BURST", SETTING_DOUBLE, F(burst), "40", 1, 1e9, "N",
     "token bucket size (over it close 4429)", 0},
    {"max-conns", "PARLEY_GW_MAX_CONNS", SETTING_INT, F(max_conns), "10000", 1,
     1e7, "N", "WebSocket sessions (then HTTP 503 at upgrade)", 0},
    {"sendq-bytes", "PARLEY_GW_SENDQ_BYTES", SETTING_SIZE, F(sendq_bytes),
     "1048576", 1024, 1e12, "BYTES",
     "per-connection send queue bound (close 4508)", 0},
    {"sendq-frames", "PARLEY_GW_SENDQ_FRAMES", SETTING_SIZE, F(sendq_frames),
     "1024", 1, 1e9, "N", "per-connection send queue bound (close 4508)", 0},
    {"auth-timeout", "PARLEY_GW_AUTH_TIMEOUT", SETTING_INT, F(auth_timeout_s),
     "10", 1, 3600, "SECS", "time to authenticate (close 4401)", 0},
    {"ping-secs", "PARLEY_GW_PING_SECS", SETTING_INT, F(ping_s), "5", 1, 3600,
     "SECS", "idle seconds before a WebSocket ping", 0},
    {"hangup-secs", "PARLEY_GW_HANGUP_SECS", SETTING_INT, F(hangup_s), "10", 1,
     3600, "SECS", "idle seconds before hanging up", 0},
    {"ring", "PARLEY_GW_RING", SETTING_SIZE, F(ring_size), "4096", 1, 1e7, "N",
     "recent events kept per room for resume", 0},
    {"replay-page", "PARLEY_GW_REPLAY_PAGE", SETTING_SIZE, F(replay_page),
     "1000", 1, 1000, "N",
     "History page size when a resume misses the ring (1000 is the most the "
     "core gives)",
     0},
    {"room-linger", "PARLEY_GW_ROOM_LINGER", SETTING_INT, F(room_linger_s),
     "60", 0, 86400, "SECS",
     "an unwatched room keeps its upstream subscription and ring this long", 0},
};
#undef F

static const settings_spec gw_config_spec = {
    .program = "parley-gateway",
    .summary = "parley's browser door: WebSocket, REST, static files, "
               "/healthz, /metrics.",
    .rows = gw_config_rows,
    .n_rows = sizeof gw_config_rows / sizeof gw_config_rows[0],
    .config_env = "PARLEY_GW_CONFIG",
    .epilog =
        "Without --dev a JWT secret is required (PARLEY_JWT_SECRET or a file).",
};

static int push_str(char ***arr, int *n, const char *v)
{
    char **na = realloc(*arr, (size_t)(*n + 1) * sizeof *na);
    if (!na) return -1;
    *arr = na;
    if (!(na[*n] = strdup(v))) return -1;
    (*n)++;
    return 0;
}

static int add_upstream(const char *item, void *ud)
{
    gw_config *c = ud;
    return push_str(&c->upstreams, &c->n_upstreams, item);
}

static int add_origin(const char *item, void *ud)
{
    gw_config *c = ud;
    return push_str(&c->origins, &c->n_origins, item);
}

/* "HOST:PORT" into listen_host and listen_port. */
static int parse_listen(gw_config *c)
{
    const char *v = c->listen, *colon = strrchr(v, ':');
    if (!colon || colon == v || (size_t)(colon - v) >= sizeof c->listen_host)
        return -1;
    memcpy(c->listen_host, v, (size_t)(colon - v));
    c->listen_host[colon - v] = '\0';
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end || p < 0 || p > 65535) return -1;
    c->listen_port = (int)p;
    return 0;
}

int gw_config_load(gw_config *c, int argc, char **argv, char *err,
                   size_t errlen)
{
    memset(c, 0, sizeof *c);
    int rc =
        settings_load(&gw_config_spec, c, argc, argv, NULL, 0, err, errlen);
    if (rc != SETTINGS_OK) return rc == SETTINGS_HELP ? 1 : -1;
    if (parse_listen(c) != 0) {
        snprintf(err, errlen, "--listen wants HOST:PORT, got \"%s\"",
                 c->listen);
        return -1;
    }
    if (c->hangup_s <= c->ping_s)
        c->ping_s = c->hangup_s > 1 ? c->hangup_s / 2 : 1;
    if (settings_list_each(c->upstream, add_upstream, c) != 0 ||
        settings_list_each(c->origin, add_origin, c) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (!c->n_upstreams) {
        snprintf(err, errlen, "--upstream is empty");
        return -1;
    }
    return 0;
}

static void free_strs(char **a, int n)
{
    for (int i = 0; i < n; i++) free(a[i]);
    free(a);
}

void gw_config_free(gw_config *c)
{
    free_strs(c->upstreams, c->n_upstreams);
    free_strs(c->origins, c->n_origins);
    c->upstreams = c->origins = NULL;
    c->n_upstreams = c->n_origins = 0;
    explicit_bzero(c->jwt_secret, sizeof c->jwt_secret);
}
