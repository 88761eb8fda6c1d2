/* log.c: the process's log lines (see log.h): formatting as text or JSON,
 * redaction of tokens and secrets, and one write(2) per line. Owns the
 * logger's settings, the only process-wide state of base/. */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 8192 /* longer lines are cut, still ending in \n */
#define LOG_MSG_MAX 4096
#define LOG_SECRETS_MAX 8
#define LOG_SECRET_MAX 512
#define LOG_SECRET_MIN 8
#define LOG_REDACTED "[redacted]"

static struct {
    char program[64];
    log_level min;
    log_format fmt;
    int fd;
    int n_secrets;
    char secrets[LOG_SECRETS_MAX][LOG_SECRET_MAX];
} log_cfg = {.program = "", .min = LOG_INFO, .fmt = LOG_TEXT, .fd = 2};

static const char *const level_text[] = {"DEBUG", "INFO", "WARN", "ERROR"};
static const char *const level_json[] = {"debug", "info", "warn", "error"};

int log_level_parse(const char *s, log_level *out)
{
    static const struct {
        const char *name;
        log_level lv;
    } names[] = {{"debug", LOG_DEBUG},
                 {"info", LOG_INFO},
                 {"warn", LOG_WARN},
                 {"warning", LOG_WARN},
                 {"error", LOG_ERROR}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(s, names[i].name) == 0) {
            *out = names[i].lv;
            return 0;
        }
    return -1;
}

int log_format_parse(const char *s, log_format *out)
{
    if (strcasecmp(s, "text") == 0 || strcasecmp(s, "plain") == 0) {
        *out = LOG_TEXT;
        return 0;
    }
    if (strcasecmp(s, "json") == 0) {
        *out = LOG_JSON;
        return 0;
    }
    return -1;
}

void log_setup(const char *program, log_level min, log_format fmt, int fd)
{
    snprintf(log_cfg.program, sizeof log_cfg.program, "%s",
             program ? program : "");
    log_cfg.min = min;
    log_cfg.fmt = fmt;
    log_cfg.fd = fd;
}

void log_redact_secret(const char *secret)
{
    size_t n = secret ? strlen(secret) : 0;
    if (n < LOG_SECRET_MIN || n >= LOG_SECRET_MAX) return;
    for (int i = 0; i < log_cfg.n_secrets; i++)
        if (strcmp(log_cfg.secrets[i], secret) == 0) return;
    if (log_cfg.n_secrets == LOG_SECRETS_MAX) return;
    memcpy(log_cfg.secrets[log_cfg.n_secrets++], secret, n + 1);
}

int log_enabled(log_level lv) { return lv >= log_cfg.min; }

/* ---- redaction ---------------------------------------------------------- */

static int b64url(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* Length of the JWT that starts at p (header.payload.signature, the header
 * being base64url JSON, so "eyJ"), or 0. */
static size_t jwt_len(const char *p)
{
    if (strncmp(p, "eyJ", 3) != 0) return 0;
    size_t i = 3;
    for (int part = 0; part < 3; part++) {
        size_t start = i;
        while (b64url(p[i])) i++;
        if (part < 2) {
            if (i == start && part > 0) return 0;
            if (p[i] != '.') return 0;
            i++;
        }
    }
    return i;
}

/* Copies in to out (cap bytes, NUL-terminated, cut to fit) with every
 * token and registered secret replaced by LOG_REDACTED. */
static void redact(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    while (*in && o + 1 < cap) {
        size_t skip = jwt_len(in);
        for (int i = 0; !skip && i < log_cfg.n_secrets; i++) {
            size_t n = strlen(log_cfg.secrets[i]);
            if (strncmp(in, log_cfg.secrets[i], n) == 0) skip = n;
        }
        if (skip) {
            size_t r = sizeof LOG_REDACTED - 1;
            if (o + r >= cap) break;
            memcpy(out + o, LOG_REDACTED, r);
            o += r;
            in += skip;
        } else {
            out[o++] = *in++;
        }
    }
    out[o] = 0;
}

/* ---- the line ----------------------------------------------------------- */

typedef struct line {
    char buf[LOG_LINE_MAX];
    size_t len; /* < LOG_LINE_MAX - 1: room for the \n is kept */
} line;

static void put(line *l, const char *s, size_t n)
{
    size_t room = sizeof l->buf - 1 - l->len;
    if (n > room) n = room;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void puts_(line *l, const char *s) { put(l, s, strlen(s)); }

/* s as the inside of a JSON string. */
static void put_json(line *l, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(l, esc, 2);
        } else if (c == '\n') {
            put(l, "\\n", 2);
        } else if (c == '\r') {
            put(l, "\\r", 2);
        } else if (c == '\t') {
            put(l, "\\t", 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            put(l, esc, 6);
        } else {
            put(l, (const char *)&c, 1);
        }
    }
}

/* s on a text line: control characters escaped so one event stays one
 * line; quoted when asked for (field values with spaces). */
static void put_text(line *l, const char *s, int quote)
{
    if (quote) put(l, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\n')
            put(l, "\\n", 2);
        else if (c == '\r' || c == '\t' || c < 0x20)
            put(l, " ", 1);
        else if (quote && (c == '"' || c == '\\')) {
            char esc[2] = {'\\', (char)c};
            put(l, esc, 2);
        } else
            put(l, (const char *)&c, 1);
    }
    if (quote) put(l, "\"", 1);
}

static int needs_quotes(const char *s)
{
    if (!*s) return 1;
    for (; *s; s++)
        if (*s == ' ' || *s == '"' || *s == '=' || *s == '\\') return 1;
    return 0;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return; /* nowhere left to say it */
        }
        p += w;
        n -= (size_t)w;
    }
}

/* Ends s before a UTF-8 sequence that a cut left incomplete. */
static void utf8_trim(char *s)
{
    size_t n = strlen(s), i = n;
    while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) i--;
    if (i == 0) return;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t want = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (n - (i - 1) < want) s[i - 1] = 0;
}

/* The line without its \n; msg is cut at max_msg bytes. 0 if it fit. */
static int format_line(line *l, log_level lv, const char *when, const char *ev,
                       char *msg, const char *const *fields, size_t max_msg)
{
    char val[LOG_MSG_MAX];
    l->len = 0;
    if (strlen(msg) > max_msg) {
        msg[max_msg] = 0;
        utf8_trim(msg);
    }
    if (log_cfg.fmt == LOG_JSON) {
        puts_(l, "{\"ts\":\"");
        puts_(l, when);
        puts_(l, "\",\"level\":\"");
        puts_(l, level_json[lv]);
        puts_(l, "\",\"program\":\"");
        put_json(l, log_cfg.program);
        puts_(l, "\",\"event\":\"");
        put_json(l, ev);
        puts_(l, "\",\"msg\":\"");
        put_json(l, msg);
        puts_(l, "\"");
        for (size_t i = 0; fields && fields[i]; i += 2) {
            redact(fields[i + 1] ? fields[i + 1] : "", val, sizeof val);
            utf8_trim(val);
            puts_(l, ",\"");
            put_json(l, fields[i]);
            puts_(l, "\":\"");
            put_json(l, val);
            puts_(l, "\"");
        }
        puts_(l, "}");
    } else {
        puts_(l, when);
        puts_(l, " ");
        puts_(l, level_text[lv]);
        puts_(l, " ");
        if (log_cfg.program[0]) {
            put_text(l, log_cfg.program, 0);
            puts_(l, " ");
        }
        put_text(l, ev, 0);
        puts_(l, ": ");
        put_text(l, msg, 0);
        for (size_t i = 0; fields && fields[i]; i += 2) {
            redact(fields[i + 1] ? fields[i + 1] : "", val, sizeof val);
            puts_(l, " ");
            put_text(l, fields[i], 0);
            puts_(l, "=");
            put_text(l, val, needs_quotes(val));
        }
    }
    return l->len >= sizeof l->buf - 1;
}

void log_eventv(log_level lv, const char *event, const char *const *fields,
                const char *fmt, va_list ap)
{
    if (lv < log_cfg.min) return;
    if (lv > LOG_ERROR) lv = LOG_ERROR;
    char raw[LOG_MSG_MAX], msg[LOG_MSG_MAX];
    vsnprintf(raw, sizeof raw, fmt, ap);
    utf8_trim(raw);
    redact(raw, msg, sizeof msg);

    struct timespec ts;
    struct tm tm;
    char when[40];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t wl = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + wl, sizeof when - wl, ".%03ldZ", ts.tv_nsec / 1000000);

    line l, *lp = &l;
    const char *ev = event && *event ? event : "log";
    /* A line too long is written again with a shorter message and no
     * fields, so that it stays whole (and valid JSON). */
    if (format_line(lp, lv, when, ev, msg, fields, LOG_MSG_MAX))
        format_line(lp, lv, when, ev, msg, NULL, 512);
    lp->buf[lp->len++] = '\n';
    write_all(log_cfg.fd, lp->buf, lp->len);
}

void log_event(log_level lv, const char *event, const char *const *fields,
               const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_eventv(lv, event, fields, fmt, ap);
    va_end(ap);
}
