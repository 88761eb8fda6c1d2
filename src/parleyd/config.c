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
    {"jwt-secret", "PARLEY_JWT_SECRET", SETTING_STR, F(jwt_secret), "", 0, 0,
     "SECRET", "HS256 secret (at least 32 bytes)", 0},
    {"jwt-secret-file", "PARLEY_JWT_SECRET_FILE", SETTING_STR,
     F(jwt_secret_file), "", 0, 0, "FILE",
     "file holding the HS256 secret (wins over --jwt-secret)", 0},
    {"rooms", "PARLEY_ROOMS", SETTING_STR, F(rooms), "lobby", 0, 0, "LIST",
     "comma list of rooms created at start", 0},
    {"max-body", "PARLEY_MAX_BODY", SETTING_SIZE, F(max_body),
     XSTR(RULES_BODY_MAX_DEFAULT), 1, (double)UINT32_MAX, "BYTES",
     "largest message body in bytes", 0},
    {"max-queue", "PARLEY_MAX_QUEUE", SETTING_SIZE, F(max_queue), "4096", 1,
     (double)UINT32_MAX, "N",
     "frames queued per stream before it is cut as too slow", 0},
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
     "development mode: random secret in <db folder>/dev-secret, prints "
     "tokens",
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
    .epilog = "Without --dev a JWT secret is required.",
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
