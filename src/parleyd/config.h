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
    char jwt_secret[512];
    char jwt_secret_file[512];
    char rooms[1024];         /* comma list created at start */
    char config[512];         /* the config file read, if any */
    char metrics_listen[256]; /* HOST:PORT of /metrics; "" or "none": off */
    char log_level[16];       /* debug, info, warn, error */
    char log_format[16];      /* text, json */
    size_t max_body;
    size_t max_queue;
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
