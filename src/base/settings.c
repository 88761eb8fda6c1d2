/* settings.c: table-driven settings (see settings.h). Values are applied
 * lowest precedence first (defaults, config file, environment, flags), so
 * each later source overrides the earlier ones; getopt_long reads the flags
 * in two passes, the first only for --help and --config. */
#include "settings.h"

#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* Values given by a source so far: a LIST replaces what an earlier source
 * gave and appends to what the same source gave. */
typedef struct load_state {
    const settings_spec *spec;
    void *target;
    int *last_source; /* per row: the source that set it last */
    char *err;
    size_t errlen;
} load_state;

enum { SRC_DEFAULT, SRC_FILE, SRC_ENV, SRC_FLAG };

static int parse_number(const char *v, int whole, double *out)
{
    char *end;
    errno = 0;
    if (!*v) return -1;
    if (whole) {
        if (*v == '+') return -1;
        long long n = strtoll(v, &end, 10);
        if (errno || *end) return -1;
        *out = (double)n;
        return 0;
    }
    double d = strtod(v, &end);
    if (errno || *end || !isfinite(d)) return -1;
    *out = d;
    return 0;
}

static int parse_bool(const char *v, int *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off", ""};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        if (strcasecmp(v, yes[i]) == 0) return *out = 1, 0;
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (strcasecmp(v, no[i]) == 0) return *out = 0, 0;
    return -1;
}

/* A row's field has the size its kind writes (a mistyped table would
 * write past it). */
static int field_size_ok(const setting *s)
{
    switch (s->kind) {
    case SETTING_STR:
    case SETTING_LIST: return s->size > 0;
    case SETTING_BOOL:
    case SETTING_INT: return s->size == sizeof(int);
    case SETTING_SIZE: return s->size == sizeof(size_t);
    case SETTING_DOUBLE: return s->size == sizeof(double);
    }
    return 0;
}

static int apply(load_state *ls, size_t row, const char *v, int source,
                 const char *src)
{
    const setting *s = &ls->spec->rows[row];
    char *dst = (char *)ls->target + s->offset;
    double d;
    int b;

    switch (s->kind) {
    case SETTING_STR:
        if (strlen(v) >= s->size) goto too_long;
        memcpy(dst, v, strlen(v) + 1);
        break;
    case SETTING_LIST: {
        /* Same source again: append (a repeated flag). */
        size_t have = ls->last_source[row] == source ? strlen(dst) : 0;
        size_t add = strlen(v) + (have && *v ? 1 : 0);
        if (have + add >= s->size) goto too_long;
        if (have && *v) dst[have++] = ',';
        memcpy(dst + have, v, strlen(v) + 1);
        break;
    }
    case SETTING_BOOL:
        if (parse_bool(v, &b) != 0) {
            snprintf(ls->err, ls->errlen,
                     "%s: %s wants true or false, got \"%s\"", src, s->name, v);
            return -1;
        }
        *(int *)dst = b;
        break;
    case SETTING_SIZE:
    case SETTING_INT:
    case SETTING_DOUBLE:
        if (parse_number(v, s->kind != SETTING_DOUBLE, &d) != 0 || d < s->min ||
            d > s->max) {
            snprintf(ls->err, ls->errlen,
                     "%s: %s wants %s from %g to %g, got \"%s\"", src, s->name,
                     s->kind == SETTING_DOUBLE ? "a number" : "a whole number",
                     s->min, s->max, v);
            return -1;
        }
        if (s->kind == SETTING_SIZE)
            *(size_t *)dst = (size_t)d;
        else if (s->kind == SETTING_INT)
            *(int *)dst = (int)d;
        else
            *(double *)dst = d;
        break;
    }
    ls->last_source[row] = source;
    return 0;
too_long:
    snprintf(ls->err, ls->errlen,
             "%s: value of %s is too long (at most %zu bytes)", src, s->name,
             s->size - 1);
    return -1;
}

/* The row of a file key or flag name; '_' and '-' are the same. */
static int find_row(const settings_spec *spec, const char *name, size_t *row)
{
    for (size_t i = 0; i < spec->n_rows; i++) {
        const char *a = spec->rows[i].name, *b = name;
        while (*a && (*a == *b || (*a == '-' && *b == '_'))) a++, b++;
        if (!*a && !*b) return *row = i, 0;
    }
    return -1;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' ||
                 s[n - 1] == '\r'))
        s[--n] = 0;
    return s;
}

static int read_file(load_state *ls, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(ls->err, ls->errlen, "config file %s: %s", path,
                 strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || (st.st_mode & 022)) {
        snprintf(ls->err, ls->errlen,
                 "config file %s can be changed by other users (mode %03o): "
                 "chmod go-w it",
                 path, (unsigned)(st.st_mode & 0777));
        fclose(f);
        return -1;
    }
    char line[4096];
    int ln = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        ln++;
        char *l = trim(line);
        if (!*l || *l == '#') continue;
        char src[600];
        snprintf(src, sizeof src, "%s:%d", path, ln);
        char *eq = strchr(l, '=');
        if (!eq) {
            snprintf(ls->err, ls->errlen, "%s: expected key = value", src);
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
        size_t row;
        if (find_row(ls->spec, k, &row) != 0) {
            snprintf(ls->err, ls->errlen, "%s: unknown key \"%s\"", src, k);
            rc = -1;
            break;
        }
        if ((ls->spec->rows[row].flags & SETTING_SECRET) == SETTING_SECRET &&
            (st.st_mode & 044)) {
            snprintf(ls->err, ls->errlen,
                     "%s: holds the secret %s and other users can read the "
                     "file (mode %03o): chmod 600 it",
                     src, ls->spec->rows[row].name,
                     (unsigned)(st.st_mode & 0777));
            rc = -1;
            break;
        }
        rc = apply(ls, row, v, SRC_FILE, src);
    }
    fclose(f);
    return rc;
}

#define USAGE_COL 29   /* where help text starts */
#define USAGE_WIDTH 79 /* and where it wraps */

/* Prints text from column USAGE_COL (the cursor is there), wrapped at
 * spaces so that no line passes USAGE_WIDTH when the words fit. */
static void usage_wrapped(FILE *out, const char *text)
{
    size_t col = USAGE_COL;
    while (*text) {
        size_t word = strcspn(text, " ");
        if (col > USAGE_COL && col + 1 + word > USAGE_WIDTH) {
            fprintf(out, "\n%*s", USAGE_COL + 2, "");
            col = USAGE_COL + 2;
        } else if (col > USAGE_COL) {
            fputc(' ', out);
            col++;
        }
        fwrite(text, 1, word, out);
        col += word;
        text += word;
        while (*text == ' ') text++;
    }
    fputc('\n', out);
}

void settings_usage(const settings_spec *spec, FILE *out)
{
    fprintf(out, "usage: %s [options]\n", spec->program);
    if (spec->summary) fprintf(out, "%s\n", spec->summary);
    fputc('\n', out);
    for (size_t i = 0; i < spec->n_rows; i++) {
        const setting *s = &spec->rows[i];
        char flag[64];
        if (s->flags & SETTING_NO_FLAG)
            snprintf(flag, sizeof flag, "(%s)", s->name);
        else
            snprintf(flag, sizeof flag, "--%s%s%s", s->name,
                     s->kind == SETTING_BOOL ? "" : " ",
                     s->kind == SETTING_BOOL ? ""
                     : s->metavar            ? s->metavar
                                             : "VALUE");
        fprintf(out, "  %-26s ", flag);
        usage_wrapped(out, s->help);
        char more[256] = "";
        size_t n = 0;
        if (s->env)
            n += (size_t)snprintf(more + n, sizeof more - n, "env %s", s->env);
        if (s->def && *s->def && s->kind != SETTING_BOOL && n < sizeof more)
            n += (size_t)snprintf(more + n, sizeof more - n, "%sdefault %s",
                                  n ? ", " : "", s->def);
        if (s->kind == SETTING_LIST && !(s->flags & SETTING_NO_FLAG) &&
            n < sizeof more)
            snprintf(more + n, sizeof more - n, "%srepeatable", n ? "; " : "");
        if (*more) {
            fprintf(out, "%*s", USAGE_COL, "");
            usage_wrapped(out, more);
        }
    }
    fprintf(out, "  %-26s read settings from a `key = value` file\n",
            "--config FILE");
    if (spec->config_env)
        fprintf(out, "  %-26s   env %s\n", "", spec->config_env);
    fprintf(out, "  %-26s this text\n\n", "--help");
    fprintf(out, "Precedence: flags > environment > config file > defaults.\n");
    if (spec->epilog) fprintf(out, "%s\n", spec->epilog);
}

int settings_load(const settings_spec *spec, void *target, int argc,
                  char **argv, char *config_path, size_t config_cap, char *err,
                  size_t errlen)
{
    /* getopt_long's codes: 256 + row, 'c' --config, 'h' --help. */
    enum { OPT_ROW0 = 256 };
    assert(spec->n_rows > 0 && spec->n_rows < 1000);
    int rc = SETTINGS_ERROR;
    struct option *opts = calloc(spec->n_rows + 3, sizeof *opts);
    int *last = calloc(spec->n_rows, sizeof *last);
    load_state ls = {spec, target, last, err, errlen};
    if (config_path && config_cap) config_path[0] = 0;
    if (!opts || !last) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    size_t n_opts = 0;
    for (size_t i = 0; i < spec->n_rows; i++) {
        const setting *s = &spec->rows[i];
        if (s->flags & SETTING_NO_FLAG) continue;
        opts[n_opts++] = (struct option){
            s->name, s->kind == SETTING_BOOL ? no_argument : required_argument,
            NULL, OPT_ROW0 + (int)i};
    }
    opts[n_opts++] = (struct option){"config", required_argument, NULL, 'c'};
    opts[n_opts++] = (struct option){"help", no_argument, NULL, 'h'};

    for (size_t i = 0; i < spec->n_rows; i++) {
        const setting *s = &spec->rows[i];
        assert(field_size_ok(s));
        memset((char *)target + s->offset, 0, s->size);
        if (apply(&ls, i, s->def ? s->def : "", SRC_DEFAULT, "default") != 0)
            goto out;
    }

    /* A secret given as a flag is refused before getopt_long sees it: it
     * would take "--jwt-secret" for an abbreviation of "--jwt-secret-file"
     * and read the secret as a path (and print it in the error). */
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (strcmp(arg, "--") == 0) break;
        if (strncmp(arg, "--", 2) != 0) continue;
        for (size_t i = 0; i < spec->n_rows; i++) {
            const setting *s = &spec->rows[i];
            size_t nl = strlen(s->name);
            if ((s->flags & SETTING_SECRET) != SETTING_SECRET ||
                strncmp(arg + 2, s->name, nl) != 0 ||
                (arg[2 + nl] != '\0' && arg[2 + nl] != '='))
                continue;
            snprintf(err, errlen,
                     "--%s: a secret on the command line shows in the "
                     "process list; give it in %s or a secret file",
                     s->name, s->env ? s->env : "the config file");
            goto out;
        }
    }

    /* Pass 1: --help and --config; every flag must parse. */
    const char *file = spec->config_env ? getenv(spec->config_env) : NULL;
    int ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'h') {
            settings_usage(spec, stdout);
            rc = SETTINGS_HELP;
            goto out;
        }
        if (ch == 'c') file = optarg;
        if (ch == '?' || ch == ':') {
            snprintf(err, errlen,
                     "unknown or incomplete option \"%s\" (see --help)",
                     argv[optind - 1]);
            goto out;
        }
    }
    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument \"%s\" (see --help)",
                 argv[optind]);
        goto out;
    }
    if (file && *file) {
        if (config_path && config_cap) {
            if (strlen(file) >= config_cap) {
                snprintf(err, errlen, "config path too long");
                goto out;
            }
            memcpy(config_path, file, strlen(file) + 1);
        }
        if (read_file(&ls, file) != 0) goto out;
    }
    for (size_t i = 0; i < spec->n_rows; i++) {
        const char *env = spec->rows[i].env;
        const char *v = env ? getenv(env) : NULL;
        if (v && apply(&ls, i, v, SRC_ENV, env) != 0) goto out;
    }
    /* Pass 2: flags win. */
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch < OPT_ROW0) continue;
        const setting *s = &spec->rows[ch - OPT_ROW0];
        char src[80];
        snprintf(src, sizeof src, "--%s", s->name);
        if (apply(&ls, (size_t)(ch - OPT_ROW0),
                  s->kind == SETTING_BOOL ? "1" : optarg, SRC_FLAG, src) != 0)
            goto out;
    }
    rc = SETTINGS_OK;
out:
    free(opts);
    free(last);
    optind = 1;
    return rc;
}

int settings_load_main(const settings_spec *spec, void *target, int argc,
                       char **argv)
{
    char err[700];
    int rc = settings_load(spec, target, argc, argv, NULL, 0, err, sizeof err);
    if (rc == SETTINGS_OK) return -1;
    if (rc == SETTINGS_HELP) return 0;
    fprintf(stderr, "%s: %s\n", spec->program, err);
    return 2;
}

int settings_list_each(const char *list, int (*fn)(const char *item, void *ud),
                       void *ud)
{
    char *copy = strdup(list);
    if (!copy) return -1;
    int rc = 0;
    char *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t && rc == 0;
         t = strtok_r(NULL, ",", &save)) {
        t = trim(t);
        if (*t) rc = fn(t, ud);
    }
    free(copy);
    return rc;
}
