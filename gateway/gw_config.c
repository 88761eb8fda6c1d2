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
     "parleyd gRPC addresses, comma-separated: the cores (each room goes "
     "to one by rendezvous hashing; a failed core's rooms move)",
     0},
    {"upstream-links", "PARLEY_GW_UPSTREAM_LINKS", SETTING_INT,
     F(upstream_links), "4", 1, 256, "N",
     "shared Stream.Connect streams per core that carry every room and "
     "publish (a room's name picks one)",
     0},
    {"log-level", "PARLEY_GW_LOG_LEVEL", SETTING_STR, F(log_level), "info", 0,
     0, "LEVEL", "debug, info, warn or error", 0},
    {"log-format", "PARLEY_GW_LOG_FORMAT", SETTING_STR, F(log_format), "text",
     0, 0, "FORMAT", "text, or json (one JSON object per line)", 0},
    {"static", "PARLEY_GW_STATIC", SETTING_STR, F(static_dir), "web/dist", 0, 0,
     "DIR", "files served for GET / and other non-API paths", 0},
    {"jwt-keys", "PARLEY_JWT_KEYS", SETTING_STR, F(jwt_keys), "", 0, 0, "FILE",
     "the identity provider's public keys (PEM or JWKS) for RS256/ES256 "
     "user tokens; re-read when it changes",
     0},
    {"jwt-issuer", "PARLEY_JWT_ISSUER", SETTING_STR, F(jwt_issuer), "", 0, 0,
     "ISS", "required iss claim of user tokens (empty: not checked)", 0},
    {"jwt-audience", "PARLEY_JWT_AUDIENCE", SETTING_STR, F(jwt_audience), "", 0,
     0, "AUD", "required aud claim of user tokens (empty: not checked)", 0},
    {"jwt-max-ttl", "PARLEY_JWT_MAX_TTL", SETTING_SIZE, F(jwt_max_ttl), "0", 0,
     31536000, "SECS", "longest token lifetime accepted (0: no limit)", 0},
    {"jwt-leeway", "PARLEY_JWT_LEEWAY", SETTING_SIZE, F(jwt_leeway), "0", 0,
     3600, "SECS", "clock skew allowed on exp, nbf and iat", 0},
    {"service-secret-file", "PARLEY_SERVICE_SECRET_FILE", SETTING_STR,
     F(service_secret_file), "", 0, 0, "FILE",
     "the service secret (mode 600): the gateway's own read-only credential "
     "for its upstream subscriptions",
     0},
    {"service-secret", "PARLEY_SERVICE_SECRET", SETTING_STR, F(service_secret),
     "", 0, 0, NULL,
     "the service secret itself; environment or config file only",
     SETTING_SECRET},
    {"jwt-secret-file", "PARLEY_JWT_SECRET_FILE", SETTING_STR,
     F(jwt_secret_file), "", 0, 0, "FILE",
     "HS256 user secret file (mode 600; wins over PARLEY_JWT_SECRET); "
     "a gateway holding it can mint users: prefer --jwt-keys",
     0},
    {"jwt-secret", "PARLEY_JWT_SECRET", SETTING_STR, F(jwt_secret), "", 0, 0,
     NULL, "HS256 user secret; environment or config file only",
     SETTING_SECRET},
    {"dev", "PARLEY_GW_DEV", SETTING_BOOL, F(dev), "0", 0, 0, NULL,
     "development mode: the dev secrets parleyd --dev uses (var/dev-secret, "
     "var/dev-service-secret) and GET /v1/dev/token on loopback; refused "
     "with any real secret or key",
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
    {"max-rooms", "PARLEY_GW_MAX_ROOMS", SETTING_INT, F(max_rooms), "100", 1,
     1e6, "N", "rooms one WebSocket session may follow (RESOURCE_EXHAUSTED)",
     0},
    {"max-conns-per-ip", "PARLEY_GW_MAX_CONNS_PER_IP", SETTING_INT,
     F(max_conns_per_ip), "256", 1, 1e7, "N",
     "WebSocket sessions from one peer address (HTTP 429 at upgrade; behind "
     "a proxy every user shares its address)",
     0},
    {"service-token-ttl", "PARLEY_GW_SERVICE_TOKEN_TTL", SETTING_INT,
     F(service_token_ttl_s), "3600", 10, 86400, "SECS",
     "lifetime of the gateway's service token; renewed halfway, on every "
     "upstream subscription",
     0},
    {"tls-cert", "PARLEY_GW_TLS_CERT", SETTING_STR, F(tls_cert), "", 0, 0,
     "FILE",
     "serve https and wss with this PEM certificate (or full chain); "
     "reloaded on SIGHUP without dropping connections",
     0},
    {"tls-key", "PARLEY_GW_TLS_KEY", SETTING_STR, F(tls_key), "", 0, 0, "FILE",
     "the certificate's PEM private key (mode 600)", 0},
    {"tls-chain", "PARLEY_GW_TLS_CHAIN", SETTING_STR, F(tls_chain), "", 0, 0,
     "FILE", "intermediate certificates served after --tls-cert", 0},
    {"upstream-tls-ca", "PARLEY_GW_UPSTREAM_TLS_CA", SETTING_STR,
     F(upstream_tls_ca), "", 0, 0, "FILE",
     "TLS to parleyd: the CA its certificate is checked against", 0},
    {"upstream-tls-cert", "PARLEY_GW_UPSTREAM_TLS_CERT", SETTING_STR,
     F(upstream_tls_cert), "", 0, 0, "FILE",
     "mutual TLS to parleyd: the gateway's certificate", 0},
    {"upstream-tls-key", "PARLEY_GW_UPSTREAM_TLS_KEY", SETTING_STR,
     F(upstream_tls_key), "", 0, 0, "FILE",
     "mutual TLS to parleyd: its key (mode 600)", 0},
    {"admin-listen", "PARLEY_GW_ADMIN_LISTEN", SETTING_STR, F(admin_listen), "",
     0, 0, "HOST:PORT",
     "serve /healthz and /metrics here only (plain HTTP), not on --listen", 0},
    {"allow-plaintext", "PARLEY_GW_ALLOW_PLAINTEXT", SETTING_BOOL,
     F(allow_plaintext), "0", 0, 0, NULL,
     "plain HTTP/WS on an address beyond loopback, or to a remote parleyd "
     "(behind a TLS proxy)",
     0},
};
#undef F

static const settings_spec gw_config_spec = {
    .program = "parley-gateway",
    .summary = "parley's browser door: WebSocket, REST, static files, "
               "/healthz, /metrics.",
    .rows = gw_config_rows,
    .n_rows = sizeof gw_config_rows / sizeof gw_config_rows[0],
    .config_env = "PARLEY_GW_CONFIG",
    .epilog = "Without --dev, user tokens need public keys (--jwt-keys) or a "
              "JWT secret, and the upstream subscriptions a service secret; "
              "docs/security.md.",
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

/* "HOST:PORT" into host (cap bytes) and *port. */
static int parse_hostport(const char *v, char *host, size_t cap, int *port)
{
    const char *colon = strrchr(v, ':');
    if (!colon || colon == v || (size_t)(colon - v) >= cap) return -1;
    memcpy(host, v, (size_t)(colon - v));
    host[colon - v] = '\0';
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end || p < 0 || p > 65535) return -1;
    *port = (int)p;
    return 0;
}

static int parse_listen(gw_config *c)
{
    return parse_hostport(c->listen, c->listen_host, sizeof c->listen_host,
                          &c->listen_port);
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
    if (*c->admin_listen &&
        parse_hostport(c->admin_listen, c->admin_host, sizeof c->admin_host,
                       &c->admin_port) != 0) {
        snprintf(err, errlen, "--admin-listen wants HOST:PORT, got \"%s\"",
                 c->admin_listen);
        return -1;
    }
    if (!*c->tls_cert != !*c->tls_key) {
        snprintf(err, errlen, "--tls-cert and --tls-key go together");
        return -1;
    }
    if (*c->tls_chain && !*c->tls_cert) {
        snprintf(err, errlen, "--tls-chain needs --tls-cert");
        return -1;
    }
    if (!*c->upstream_tls_cert != !*c->upstream_tls_key) {
        snprintf(err, errlen,
                 "--upstream-tls-cert and --upstream-tls-key go together");
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
    explicit_bzero(c->service_secret, sizeof c->service_secret);
}
