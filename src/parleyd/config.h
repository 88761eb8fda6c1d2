/* config.h: parleyd's settings, one row each in config.c's table
 * (base/settings.h): flags, PARLEY_* environment variables and a
 * `key = value` config file, over the built-in defaults. */
#ifndef PARLEY_CONFIG_H
#define PARLEY_CONFIG_H

#include <stddef.h>
#include <stdio.h>

typedef struct cfg {
    char listen[256];    /* grpc TCP address; "" or "none": no TCP */
    char unix_path[256]; /* unix socket path; "" or "none": none */
    char db[512];
    char store[512]; /* store target; "" means the --db file */
    char jwt_secret[512];
    char jwt_secret_file[512];
    char jwt_keys[512];   /* PEM or JWKS public keys of the identity provider */
    char jwt_issuer[256]; /* required iss, "" none */
    char jwt_audience[256]; /* required aud, "" none */
    size_t jwt_max_ttl;     /* seconds, 0 none */
    size_t jwt_leeway;      /* seconds of clock skew */
    char service_secret[512];
    char service_secret_file[512];
    char tls_cert[512]; /* PEM chain for the TCP listener */
    char tls_key[512];
    char tls_client_ca[512];  /* mutual TLS: clients need a cert it signed */
    int allow_plaintext;      /* plaintext TCP beyond loopback */
    char rooms[1024];         /* comma list created at start */
    char config[512];         /* the config file read, if any */
    char metrics_listen[256]; /* HOST:PORT of /metrics; "" or "none": off */
    char log_level[16];       /* debug, info, warn, error */
    char log_format[16];      /* text, json */
    char bus[1024];           /* NATS URLs; "" or "none": a single node */
    char bus_prefix[128];     /* subject prefix of the rooms */
    char bus_name[128];       /* connection name; "": parleyd@HOST:PORT */
    int bus_gap_wait_ms;
    int bus_sweep_ms;
    int bus_test_drop; /* tests: per mille of received events dropped */
    size_t max_body;
    size_t max_queue;
    double user_rate; /* writes per second per user, 0: no limit */
    double user_burst;
    double organizer_rate;
    size_t max_subs; /* rooms per Connect stream */
    int dev;
    int no_reflection;
} cfg;

enum { CFG_OK = 0, CFG_HELP = 1, CFG_ERROR = -1 };

/* Fills c from defaults, the config file (--config / PARLEY_CONFIG), the
 * environment and argv. CFG_HELP after printing usage to stdout; CFG_ERROR
 * with a message in err. */
int cfg_load(cfg *c, int argc, char **argv, char *err, size_t errlen);
void cfg_usage(FILE *out);

#endif
