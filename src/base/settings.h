/* settings.h: a program's settings from one table. Each row names a
 * setting once: its flag (--name), its environment variable, its key in a
 * `key = value` config file, its type and range, its default and its help
 * line; the usage text is generated from the same rows, so a default is
 * stated in one place only.
 *
 * Sources, lowest precedence first: the defaults, the config file
 * (--config FILE or the spec's environment variable), the environment, the
 * flags. Each later source overrides the earlier ones; a LIST setting given
 * by a source replaces the earlier sources' list, and a repeated flag adds
 * to it. Every value is checked against its row (type, range, length) and a
 * bad one is an error that names its source and the setting.
 *
 * A config file that others may write is refused (they could change what
 * the program trusts), and so is one that sets a SETTING_SECRET while
 * others may read it. */
#ifndef PARLEY_SETTINGS_H
#define PARLEY_SETTINGS_H

#include <stddef.h>
#include <stdio.h>

typedef enum setting_kind {
    SETTING_STR,   /* char[size]: the text */
    SETTING_LIST,  /* char[size]: items joined by ',' (no ',' in an item) */
    SETTING_BOOL,  /* int: 0 / 1; the flag takes no value */
    SETTING_SIZE,  /* size_t: a whole number in [min, max] */
    SETTING_INT,   /* int: a whole number in [min, max] */
    SETTING_DOUBLE /* double: a number in [min, max] */
} setting_kind;

/* Row flags. */
enum {
    SETTING_NO_FLAG = 1, /* environment and config file only */
    /* a secret: never a flag (the process list shows flags; "--name" on
     * the command line is refused with a message saying so), and a config
     * file that gives it must be readable by its owner only */
    SETTING_SECRET = 2 | SETTING_NO_FLAG
};

typedef struct setting {
    const char
        *name;       /* "max-body": --max-body, file key max-body or max_body */
    const char *env; /* "PARLEY_MAX_BODY", or NULL */
    setting_kind kind;
    size_t offset, size; /* the field in the target struct: SETTING_FIELD */
    const char *def;     /* the default as text; "" is empty / off */
    double min, max;     /* numbers: the accepted range, inclusive */
    const char *metavar; /* "BYTES" in the usage text; NULL: VALUE */
    const char *help;
    unsigned flags; /* SETTING_NO_FLAG */
} setting;

#define SETTING_FIELD(type, field) \
    offsetof(type, field), sizeof(((type *)0)->field)

typedef struct settings_spec {
    const char *program; /* "parleyd" */
    const char *summary; /* one line under the usage line, or NULL */
    const setting *rows;
    size_t n_rows;
    const char *config_env; /* names the config file too, or NULL */
    const char *epilog;     /* printed after the list, or NULL */
} settings_spec;

enum { SETTINGS_OK = 0, SETTINGS_HELP = 1, SETTINGS_ERROR = -1 };

/* Fills target (zeroed first) from the sources above. SETTINGS_HELP after
 * printing the usage text to stdout (--help); SETTINGS_ERROR with a message
 * in err. config_path (if not NULL, size config_cap) receives the config
 * file read, "" if none. */
int settings_load(const settings_spec *spec, void *target, int argc,
                  char **argv, char *config_path, size_t config_cap, char *err,
                  size_t errlen);

/* settings_load for a main() that keeps no config path: prints a bad
 * setting as "program: message" to stderr. Returns -1 when the program
 * should go on, else its exit status: 0 after --help, 2 on a bad setting. */
int settings_load_main(const settings_spec *spec, void *target, int argc,
                       char **argv);

void settings_usage(const settings_spec *spec, FILE *out);

/* Calls fn for each item of a LIST value (or any comma list), in order,
 * skipping empty items; stops at and returns fn's first nonzero result. */
int settings_list_each(const char *list, int (*fn)(const char *item, void *ud),
                       void *ud);

#endif
