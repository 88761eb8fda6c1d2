/* test_log.c: CUnit tests of base/log.c: the text and JSON line formats
 * (every JSON line parsed back with jansson), levels, fields and quoting,
 * one event per line whatever the message holds, long lines cut but whole,
 * and redaction: no token and no registered secret is ever written. */
#include <CUnit/Basic.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static char g_path[256];
static int g_fd = -1;

/* Starts a fresh capture file and points the log at it. */
static void capture(log_level min, log_format fmt)
{
    if (g_fd >= 0) close(g_fd);
    snprintf(g_path, sizeof g_path, "/tmp/parley-logtest-XXXXXX");
    g_fd = mkstemp(g_path);
    CU_ASSERT_FATAL(g_fd >= 0);
    unlink(g_path);
    log_setup("parleyd", min, fmt, g_fd);
}

/* What was written since capture(), NUL-terminated; caller frees. */
static char *captured(void)
{
    off_t n = lseek(g_fd, 0, SEEK_END);
    char *buf = calloc(1, (size_t)n + 1);
    if (pread(g_fd, buf, (size_t)n, 0) != n) buf[0] = 0;
    return buf;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

static void test_text(void)
{
    capture(LOG_INFO, LOG_TEXT);
    log_debug("hidden", "not written at info");
    log_info("listening", "parleyd listening on %s", "127.0.0.1:7400");
    const char *f[] = {"method", "/parley.v1.History/GetRoom",
                       "detail", "two words",
                       "empty",  "",
                       NULL};
    log_event(LOG_WARN, "call", f, "a\nsecond line");
    log_error(NULL, "no event name");
    char *out = captured();
    CU_ASSERT_EQUAL(count_lines(out), 3);
    CU_ASSERT_PTR_NULL(strstr(out, "hidden"));
    CU_ASSERT_PTR_NOT_NULL(strstr(
        out,
        "Z INFO parleyd listening: parleyd listening on 127.0.0.1:7400\n"));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(out, " WARN parleyd call: a\\nsecond line "
                    "method=/parley.v1.History/GetRoom detail=\"two words\" "
                    "empty=\"\"\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, " ERROR parleyd log: no event name\n"));
    /* 2026-05-01T09:30:00.123Z: a UTC timestamp in milliseconds */
    CU_ASSERT_EQUAL(out[4], '-');
    CU_ASSERT_EQUAL(out[10], 'T');
    CU_ASSERT_EQUAL(out[19], '.');
    CU_ASSERT_EQUAL(out[23], 'Z');
    free(out);
}

static void test_json(void)
{
    capture(LOG_DEBUG, LOG_JSON);
    const char *f[] = {"status", "OK", "quote", "say \"hi\"\t\\", NULL};
    log_event(LOG_DEBUG, "call", f, "done in %d us", 42);
    log_info("ctl", "bell\x01 and é");
    char *out = captured();
    CU_ASSERT_EQUAL_FATAL(count_lines(out), 2);
    char *nl = strchr(out, '\n');
    *nl = 0;
    json_error_t je;
    json_t *a = json_loads(out, 0, &je), *b = json_loads(nl + 1, 0, &je);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(a, "level")),
                           "debug");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(a, "program")),
                           "parleyd");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(a, "event")),
                           "call");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(a, "msg")),
                           "done in 42 us");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(a, "status")),
                           "OK");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(a, "quote")),
                           "say \"hi\"\t\\");
    CU_ASSERT_EQUAL(strlen(json_string_value(json_object_get(a, "ts"))), 24);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(b, "msg")),
                           "bell\x01 and é");
    json_decref(a);
    json_decref(b);
    free(out);
}

static void test_long_lines_stay_whole(void)
{
    capture(LOG_INFO, LOG_JSON);
    /* Quotes double in JSON: the line overflows and is written again with
     * a shorter message, still one valid JSON object. */
    char big[5000];
    memset(big, '"', sizeof big - 1);
    big[sizeof big - 1] = 0;
    const char *f[] = {"k", big, NULL};
    log_event(LOG_INFO, "big", f, "%s", big);
    /* A multi-byte character cut in the middle is dropped, not halved. */
    char utf[6000];
    size_t n = 0;
    while (n + 2 < sizeof utf) {
        utf[n++] = (char)0xC3;
        utf[n++] = (char)0xA9;
    }
    utf[n] = 0;
    log_info("utf", "x%s", utf);
    char *out = captured();
    CU_ASSERT_EQUAL_FATAL(count_lines(out), 2);
    char *nl = strchr(out, '\n');
    *nl = 0;
    json_error_t je;
    json_t *a = json_loads(out, 0, &je);
    json_t *b = json_loads(nl + 1, 0, &je);
    CU_ASSERT_PTR_NOT_NULL(a);
    CU_ASSERT_PTR_NOT_NULL(b);
    if (a)
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(a, "event")),
                               "big");
    json_decref(a);
    json_decref(b);
    free(out);
}

static void test_redaction(void)
{
    const char *secret = "s3cr3t-value-that-signs-tokens-0123456789";
    const char *jwt =
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJvbGdhIn0."
        "abcDEF_-123";
    log_redact_secret(secret);
    log_redact_secret("short"); /* too short to redact: ignored */
    for (int fmt = LOG_TEXT; fmt <= LOG_JSON; fmt++) {
        capture(LOG_DEBUG, (log_format)fmt);
        const char *f[] = {"authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.",
                           "secret", secret, NULL};
        log_event(LOG_INFO, "leak", f, "token=%s secret=%s%s end", jwt, secret,
                  secret);
        log_info("words", "a short word stays; eyJ alone too; eyJx.y");
        char *out = captured();
        CU_ASSERT_PTR_NULL(strstr(out, secret));
        CU_ASSERT_PTR_NULL(strstr(out, "eyJhbGci"));
        CU_ASSERT_PTR_NULL(strstr(out, "abcDEF"));
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "token=[redacted] "));
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "secret=[redacted][redacted] end"));
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "Bearer [redacted]"));
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "short word"));
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "eyJ alone too; eyJx.y"));
        free(out);
    }
}

static void test_parse(void)
{
    log_level lv;
    log_format f;
    CU_ASSERT_EQUAL(log_level_parse("debug", &lv), 0);
    CU_ASSERT_EQUAL(lv, LOG_DEBUG);
    CU_ASSERT_EQUAL(log_level_parse("WARNING", &lv), 0);
    CU_ASSERT_EQUAL(lv, LOG_WARN);
    CU_ASSERT_EQUAL(log_level_parse("loud", &lv), -1);
    CU_ASSERT_EQUAL(log_format_parse("json", &f), 0);
    CU_ASSERT_EQUAL(f, LOG_JSON);
    CU_ASSERT_EQUAL(log_format_parse("plain", &f), 0);
    CU_ASSERT_EQUAL(f, LOG_TEXT);
    CU_ASSERT_EQUAL(log_format_parse("xml", &f), -1);
    capture(LOG_WARN, LOG_TEXT);
    CU_ASSERT_FALSE(log_enabled(LOG_INFO));
    CU_ASSERT_TRUE(log_enabled(LOG_ERROR));
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("log", NULL, NULL);
    if (!s || !CU_add_test(s, "text lines", test_text) ||
        !CU_add_test(s, "JSON lines", test_json) ||
        !CU_add_test(s, "long lines stay whole", test_long_lines_stay_whole) ||
        !CU_add_test(s, "tokens and secrets are redacted", test_redaction) ||
        !CU_add_test(s, "level and format names", test_parse)) {
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
