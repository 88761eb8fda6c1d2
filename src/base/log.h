/* log.h: the process's log. One line per event, written with one write(2)
 * so that lines from several threads never interleave: a timestamp (UTC,
 * milliseconds), a level, the program, a short event name, a message and
 * optional key=value fields. Plain text by default:
 *
 *   2026-05-01T09:30:00.123Z INFO parleyd listening: ready tcp=127.0.0.1:7400
 *
 * or JSON lines (LOG_JSON), one object per line with the keys ts, level,
 * program, event, msg and then the fields:
 *
 *   {"ts":"2026-05-01T09:30:00.123Z","level":"info","program":"parleyd",
 *    "event":"listening","msg":"ready","tcp":"127.0.0.1:7400"}
 *
 * No token or secret is ever written: whatever a caller passes, a JSON Web
 * Token (three base64url parts starting "eyJ") and every value given to
 * log_redact_secret are replaced by "[redacted]" in the message and the
 * fields before the line is written.
 *
 * The settings (level, format, program, output, secrets) are the one piece
 * of process-wide state here: set them with log_setup and
 * log_redact_secret at start, before other threads run; the log calls only
 * read them. Until log_setup, lines go to stderr as text at level info. */
#ifndef PARLEY_LOG_H
#define PARLEY_LOG_H

#include <stdarg.h>

typedef enum log_level {
    LOG_DEBUG = 0,
    LOG_INFO = 1,
    LOG_WARN = 2,
    LOG_ERROR = 3
} log_level;

typedef enum log_format { LOG_TEXT = 0, LOG_JSON = 1 } log_format;

/* "debug", "info", "warn" (or "warning"), "error" -> *out; -1 otherwise. */
int log_level_parse(const char *s, log_level *out);
/* "text" (or "plain"), "json" -> *out; -1 otherwise. */
int log_format_parse(const char *s, log_format *out);

/* program names the process in each line; fd is where lines go (2 for
 * stderr). */
void log_setup(const char *program, log_level min, log_format fmt, int fd);

/* Never write this value (at least 8 bytes; shorter ones are ignored, as
 * they would redact ordinary words). Copied; up to 8 secrets. */
void log_redact_secret(const char *secret);

/* 1 if a line at lv would be written (to skip building costly fields). */
int log_enabled(log_level lv);

/* One line. fields: NULL, or key, value, key, value, ..., NULL (values
 * may be NULL: written as ""). msg is printf-style. */
void log_event(log_level lv, const char *event, const char *const *fields,
               const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void log_eventv(log_level lv, const char *event, const char *const *fields,
                const char *fmt, va_list ap);

#define log_debug(event, ...) log_event(LOG_DEBUG, event, NULL, __VA_ARGS__)
#define log_info(event, ...) log_event(LOG_INFO, event, NULL, __VA_ARGS__)
#define log_warn(event, ...) log_event(LOG_WARN, event, NULL, __VA_ARGS__)
#define log_error(event, ...) log_event(LOG_ERROR, event, NULL, __VA_ARGS__)

#endif
