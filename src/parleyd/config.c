/* config.c: parleyd's settings table (see config.h). Each setting is one
 * row: flag and file key, environment variable, type and range, default,
 * help; base/settings.c reads the sources and prints the usage text from
 * it. */
#include "config.h"

#include <stdint.h>

#include "defaults.h"
#include "rules.h"
#include "settings.h"

#define STR(x) #x
#define XSTR(x) STR(x)

#define F(field) SETTING_FIELD(cfg, field)
static const setting cfg_rows[] = {
    {"listen", "PARLEY_ADDR", SETTING_STR, F(listen), "127.0.0.1:7400", 0, 0,
     "HOST:PORT", "gRPC TCP address (port 0 picks one; \"none\" disables)", 0},
    {"unix", "PARLEY_UNIX", SETTING_STR, F(unix_path), PARLEY_SOCKET_DEFAULT, 0,
     0, "PATH", "unix socket path for gRPC (\"none\" disables)", 0},
    {"db", "PARLEY_DB", SETTING_STR, F(db), PARLEY_DB_DEFAULT, 0, 0, "FILE",
     "SQLite database file (its folder is created)", 0},
    {"store", "PARLEY_STORE", SETTING_STR, F(store), "", 0, 0, "TARGET",
     "history store: postgres://USER@HOST/DB (PostgreSQL) or an SQLite "
     "file; default: the --db file",
     0},
    {"bus", "PARLEY_BUS", SETTING_STR, F(bus), "none", 0, 0, "URLS",
     "NATS servers (nats://HOST:PORT, comma-separated) of the bus between "
     "cores sharing a PostgreSQL store; \"none\": a single node",
     0},
    {"bus-prefix", "PARLEY_BUS_PREFIX", SETTING_STR, F(bus_prefix),
     "parley.room", 0, 0, "SUBJECT",
     "NATS subject prefix of the rooms' events (the same on every core)", 0},
    {"bus-name", "PARLEY_BUS_NAME", SETTING_STR, F(bus_name), "", 0, 0, "NAME",
     "this core's connection name on NATS (default parleyd@ADDR)", 0},
    {"bus-gap-wait", "PARLEY_BUS_GAP_WAIT", SETTING_INT, F(bus_gap_wait_ms),
     "10", 0, 10000, "MS",
     "how long an event that came before an earlier one waits for it on the "
     "bus before the gap is read from the store",
     0},
    {"bus-sweep", "PARLEY_BUS_SWEEP", SETTING_INT, F(bus_sweep_ms), "1000", 50,
     600000, "MS",
     "pace of the store check of watched rooms (catches a change whose bus "
     "message was lost)",
     0},
    {"bus-test-drop", "PARLEY_BUS_TEST_DROP", SETTING_INT, F(bus_test_drop),
     "0", 0, 1000, "PERMILLE",
     "tests only: drop this many of every 1000 events received on the bus", 0},
    {"jwt-secret", "PARLEY_JWT_SECRET", SETTING_STR, F(jwt_secret), "", 0, 0,
     NULL,
     "HS256 user secret (at least 32 bytes); environment or config file "
     "only, never a flag",
     SETTING_SECRET},
    {"jwt-secret-file", "PARLEY_JWT_SECRET_FILE", SETTING_STR,
     F(jwt_secret_file), "", 0, 0, "FILE",
     "file holding the HS256 user secret (mode 600; wins over "
     "PARLEY_JWT_SECRET)",
     0},
    {"jwt-keys", "PARLEY_JWT_KEYS", SETTING_STR, F(jwt_keys), "", 0, 0, "FILE",
     "the identity provider's public keys (PEM or JWKS) for RS256/ES256 "
     "tokens; re-read when it changes",
     0},
    {"jwt-issuer", "PARLEY_JWT_ISSUER", SETTING_STR, F(jwt_issuer), "", 0, 0,
     "ISS", "required iss claim of user tokens (empty: not checked)", 0},
    {"jwt-audience", "PARLEY_JWT_AUDIENCE", SETTING_STR, F(jwt_audience), "", 0,
     0, "AUD", "required aud claim of user tokens (empty: not checked)", 0},
    {"jwt-max-ttl", "PARLEY_JWT_MAX_TTL", SETTING_SIZE, F(jwt_max_ttl), "0", 0,
     31536000, "SECS",
     "longest token lifetime accepted, exp - iat (0: no limit)", 0},
    {"jwt-leeway", "PARLEY_JWT_LEEWAY", SETTING_SIZE, F(jwt_leeway), "0", 0,
     3600, "SECS", "clock skew allowed on exp, nbf and iat", 0},
    {"service-secret", "PARLEY_SERVICE_SECRET", SETTING_STR, F(service_secret),
     "", 0, 0, NULL,
     "HS256 secret of service tokens (the gateway's; read-only access); "
     "environment or config file only",
     SETTING_SECRET},
    {"service-secret-file", "PARLEY_SERVICE_SECRET_FILE", SETTING_STR,
     F(service_secret_file), "", 0, 0, "FILE",
     "file holding the service secret (mode 600)", 0},
    {"tls-cert", "PARLEY_TLS_CERT", SETTING_STR, F(tls_cert), "", 0, 0, "FILE",
     "PEM certificate chain: the TCP port speaks TLS (reloaded when the "
     "file changes)",
     0},
    {"tls-key", "PARLEY_TLS_KEY", SETTING_STR, F(tls_key), "", 0, 0, "FILE",
     "PEM private key of --tls-cert (mode 600)", 0},
    {"tls-client-ca", "PARLEY_TLS_CLIENT_CA", SETTING_STR, F(tls_client_ca), "",
     0, 0, "FILE",
     "mutual TLS: every TCP client must present a certificate this CA "
     "signed",
     0},
    {"allow-plaintext", "PARLEY_ALLOW_PLAINTEXT", SETTING_BOOL,
     F(allow_plaintext), "0", 0, 0, NULL,
     "allow TCP without TLS on an address beyond loopback", 0},
    {"rooms", "PARLEY_ROOMS", SETTING_STR, F(rooms), "lobby", 0, 0, "LIST",
     "comma list of rooms created at start", 0},
    {"max-body", "PARLEY_MAX_BODY", SETTING_SIZE, F(max_body),
     XSTR(RULES_BODY_MAX_DEFAULT), 1, (double)UINT32_MAX, "BYTES",
     "largest message body in bytes", 0},
    {"max-queue", "PARLEY_MAX_QUEUE", SETTING_SIZE, F(max_queue), "4096", 1,
     (double)UINT32_MAX, "N",
     "frames queued per stream before it is cut as too slow", 0},
    {"user-rate", "PARLEY_USER_RATE", SETTING_DOUBLE, F(user_rate), "20", 0,
     1e9, "N",
     "writes (publish, edit, delete, create room) per second per "
     "participant, over every path together; 0: no limit",
     0},
    {"organizer-rate", "PARLEY_ORGANIZER_RATE", SETTING_DOUBLE,
     F(organizer_rate), "0", 0, 1e9, "N",
     "the same per organizer (staff, backend tools, imports); 0: no limit", 0},
    {"user-burst", "PARLEY_USER_BURST", SETTING_DOUBLE, F(user_burst), "60", 1,
     1e9, "N", "writes a user may make at once before --user-rate applies", 0},
    {"max-subs", "PARLEY_MAX_SUBS", SETTING_SIZE, F(max_subs), "100", 1, 1e6,
     "N", "rooms one Connect stream may follow", 0},
    {"metrics-listen", "PARLEY_METRICS_LISTEN", SETTING_STR, F(metrics_listen),
     "none", 0, 0, "HOST:PORT",
     "HTTP address of /metrics (Prometheus) and /healthz (port 0 picks one; "
     "\"none\" disables)",
     0},
    {"log-level", "PARLEY_LOG_LEVEL", SETTING_STR, F(log_level), "info", 0, 0,
     "LEVEL", "debug (a line per call), info, warn or error", 0},
    {"log-format", "PARLEY_LOG_FORMAT", SETTING_STR, F(log_format), "text", 0,
     0, "FORMAT", "text, or json (one JSON object per line)", 0},
    {"no-reflection", "PARLEY_NO_REFLECTION", SETTING_BOOL, F(no_reflection),
     "0", 0, 0, NULL,
     "do not serve gRPC server reflection (grpc.reflection.v1, v1alpha)", 0},
    {"dev", "PARLEY_DEV", SETTING_BOOL, F(dev), "0", 0, 0, NULL,
     "development mode: random secrets in <db folder>/dev-secret and "
     "dev-service-secret, prints tokens; refused with any real secret or key",
     0},
};
#undef F

static const settings_spec cfg_spec = {
    .program = "parleyd",
    .summary = "parley's gRPC server (parley.v1 History and Stream, "
               "grpc.health.v1, grpc.reflection).",
    .rows = cfg_rows,
    .n_rows = sizeof cfg_rows / sizeof cfg_rows[0],
    .config_env = "PARLEY_CONFIG",
    .epilog = "Without --dev, user tokens need public keys (--jwt-keys) or a "
              "JWT secret; docs/security.md.",
};

int cfg_load(cfg *c, int argc, char **argv, char *err, size_t errlen)
{
    int rc = settings_load(&cfg_spec, c, argc, argv, c->config,
                           sizeof c->config, err, errlen);
    return rc == SETTINGS_OK     ? CFG_OK
           : rc == SETTINGS_HELP ? CFG_HELP
                                 : CFG_ERROR;
}

void cfg_usage(FILE *out) { settings_usage(&cfg_spec, out); }
