/* config.c: parleyd settings (see config.h). One table lists every setting
 * with its flag, environment variable and config-file key; values are
 * applied lowest precedence first (defaults, file, environment, flags), so
 * each later source overrides the earlier ones. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

typedef enum { K_STR, K_SIZE, K_BOOL } kind;

typedef struct setting {
    const char *name; /* flag and file key */
    const char *env;
    kind k;
    size_t off, cap;
    const char *def;
    const char *help;
} setting;

#define S(field) offsetof(cfg, field), sizeof(((cfg *)0)->field)
static const setting settings[] = {
    {"listen", "PARLEY_ADDR", K_STR, S(listen), "127.0.0.1:7400",
     "gRPC TCP address (host:port; port 0 picks one; \"none\" disables)"},
    {"unix", "PARLEY_UNIX", K_STR, S(unix_path), "var/parleyd.sock",
     "unix socket path for gRPC (\"none\" disables)"},
    {"db", "PARLEY_DB", K_STR, S(db), "var/parley.db", "SQLite database file"},
    {"jwt-secret", "PARLEY_JWT_SECRET", K_STR, S(jwt_secret), "",
     "HS256 secret (at least 32 bytes)"},
    {"jwt-secret-file", "PARLEY_JWT_SECRET_FILE", K_STR, S(jwt_secret_file), "",
     "file holding the HS256 secret"},
    {"rooms", "PARLEY_ROOMS", K_STR, S(rooms), "lobby",
     "comma list of rooms created at start"},
    {"max-body", "PARLEY_MAX_BODY", K_SIZE, offsetof(cfg, max_body), 0, "4096",
     "largest message body in bytes"},
    {"max-queue", "PARLEY_MAX_QUEUE", K_SIZE, offsetof(cfg, max_queue), 0,
     "4096", "frames queued per stream before it is cut as too slow"},
    {"dev", "PARLEY_DEV", K_BOOL, offsetof(cfg, dev), 0, "0",
     "development mode: random secret in <db dir>/dev-secret, prints tokens"},
};
#define N_SETTINGS (sizeof settings / sizeof settings[0])

static int apply(cfg *c, const setting *s, const char *v, const char *src,
                 char *err, size_t errlen) {
    char *dst = (char *)c + s->off;
    if (s->k == K_STR) {
        if (strlen(v) >= s->cap) {
            snprintf(err, errlen, "%s: value of %s is too long", src, s->name);
            return -1;
        }
        strcpy(dst, v);
    } else if (s->k == K_SIZE) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(v, &end, 10);
        if (errno || end == v || *end || n == 0 || v[0] == '-') {
            snprintf(err, errlen, "%s: %s wants a positive number, got \"%s\"",
                     src, s->name, v);
            return -1;
        }
        *(size_t *)dst = (size_t)n;
    } else {
        int b;
        if (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") ||
            !strcasecmp(v, "on"))
            b = 1;
        else if (!strcmp(v, "0") || !strcasecmp(v, "false") ||
                 !strcasecmp(v, "no") || !strcasecmp(v, "off") || !*v)
            b = 0;
        else {
            snprintf(err, errlen, "%s: %s wants true or false, got \"%s\"", src,
                     s->name, v);
            return -1;
        }
        *(int *)dst = b;
    }
    return 0;
}

static const setting *find(const char *name) {
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const char *a = settings[i].name, *b = name;
        /* "max_body" and "max-body" are the same key */
        while (*a && (*a == *b || (*a == '-' && *b == '_'))) a++, b++;
        if (!*a && !*b) return &settings[i];
    }
    return NULL;
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' ||
                 s[n - 1] == '\r'))
        s[--n] = 0;
    return s;
}

static int read_file(cfg *c, const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "config file %s: %s", path, strerror(errno));
        return -1;
    }
    char line[2048];
    int ln = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        ln++;
        char *l = trim(line);
        if (!*l || *l == '#') continue;
        char *eq = strchr(l, '=');
        char src[600];
        snprintf(src, sizeof src, "%s:%d", path, ln);
        if (!eq) {
            snprintf(err, errlen, "%s: expected key = value", src);
            rc = -1;
            break;
        }
        *eq = 0;
        char *k = trim(l), *v = trim(eq + 1);
        size_t vl = strlen(v);
        if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
            v[vl - 1] = 0;
            v++;
        }
        const setting *s = find(k);
        if (!s) {
            snprintf(err, errlen, "%s: unknown key \"%s\"", src, k);
            rc = -1;
            break;
        }
        rc = apply(c, s, v, src, err, errlen);
    }
    fclose(f);
    return rc;
}

void cfg_usage(FILE *out) {
    fprintf(out,
            "usage: parleyd [options]\n"
            "parley's gRPC server (parley.v1 History and Stream).\n\n");
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const setting *s = &settings[i];
        char flag[64];
        snprintf(flag, sizeof flag, "--%s%s", s->name,
                 s->k == K_BOOL ? "" : " VALUE");
        fprintf(out, "  %-26s %s\n  %-26s   env %s", flag, s->help, "", s->env);
        if (s->def && *s->def && s->k != K_BOOL)
            fprintf(out, ", default %s", s->def);
        fputc('\n', out);
    }
    fprintf(out,
            "  %-26s read settings from a `key = value` file\n"
            "  %-26s   env PARLEY_CONFIG\n"
            "  %-26s this text\n\n"
            "Precedence: flags > environment > config file > defaults.\n"
            "Without --dev a JWT secret is required.\n",
            "--config FILE", "", "--help");
}

int cfg_load(cfg *c, int argc, char **argv, char *err, size_t errlen) {
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (apply(c, &settings[i], settings[i].def, "default", err, errlen))
            return CFG_ERROR;

    struct option opts[N_SETTINGS + 3];
    for (size_t i = 0; i < N_SETTINGS; i++)
        opts[i] = (struct option){settings[i].name,
                                  settings[i].k == K_BOOL ? no_argument
                                                          : required_argument,
                                  NULL, (int)(256 + i)};
    opts[N_SETTINGS] = (struct option){"config", required_argument, NULL, 'c'};
    opts[N_SETTINGS + 1] = (struct option){"help", no_argument, NULL, 'h'};
    opts[N_SETTINGS + 2] = (struct option){0, 0, 0, 0};

    /* Pass 1: find --config and --help, check the flags parse. */
    const char *file = getenv("PARLEY_CONFIG");
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "hc:", opts, NULL)) != -1) {
        if (ch == 'h') {
            cfg_usage(stdout);
            return CFG_HELP;
        }
        if (ch == 'c') file = optarg;
        if (ch == '?') {
            snprintf(err, errlen, "unknown or incomplete option \"%s\" (see --help)",
                     argv[optind - 1]);
            return CFG_ERROR;
        }
    }
    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument \"%s\" (see --help)",
                 argv[optind]);
        return CFG_ERROR;
    }
    if (file && *file) {
        if (strlen(file) >= sizeof c->config) {
            snprintf(err, errlen, "config path too long");
            return CFG_ERROR;
        }
        strcpy(c->config, file);
        if (read_file(c, file, err, errlen)) return CFG_ERROR;
    }
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const char *v = getenv(settings[i].env);
        if (v && apply(c, &settings[i], v, settings[i].env, err, errlen))
            return CFG_ERROR;
    }
    /* Pass 2: flags win. */
    optind = 1;
    while ((ch = getopt_long(argc, argv, "hc:", opts, NULL)) != -1) {
        if (ch >= 256 && ch < 256 + (int)N_SETTINGS) {
            const setting *s = &settings[ch - 256];
            char src[80];
            snprintf(src, sizeof src, "--%s", s->name);
            if (apply(c, s, s->k == K_BOOL ? "1" : optarg, src, err, errlen))
                return CFG_ERROR;
        }
    }
    return CFG_OK;
}
