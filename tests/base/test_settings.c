/* test_settings.c: CUnit tests of base/settings.c with a table of every
 * kind: defaults, each source over the one below it (file < environment <
 * flags), lists replaced by a new source and extended by a repeated flag,
 * range and type errors naming their source, env-only rows, and the usage
 * text generated from the table. */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "settings.h"

typedef struct conf {
    char name[16];
    char list[64];
    int on;
    size_t size;
    int count;
    double ratio;
    char secret[32];
} conf;

#define F(field) SETTING_FIELD(conf, field)
static const setting rows[] = {
    {"name", "TS_NAME", SETTING_STR, F(name), "anon", 0, 0, "NAME", "a name", 0},
    {"item", "TS_ITEMS", SETTING_LIST, F(list), "a,b", 0, 0, "ITEM", "items", 0},
    {"on", "TS_ON", SETTING_BOOL, F(on), "0", 0, 0, NULL, "a switch", 0},
    {"max-size", "TS_SIZE", SETTING_SIZE, F(size), "100", 1, 1000, "BYTES",
     "a size", 0},
    {"count", NULL, SETTING_INT, F(count), "3", -5, 5, "N", "a count", 0},
    {"ratio", "TS_RATIO", SETTING_DOUBLE, F(ratio), "0.5", 0.25, 2, "R",
     "a ratio", 0},
    {"secret", "TS_SECRET", SETTING_STR, F(secret), "", 0, 0, NULL,
     "env and file only", SETTING_NO_FLAG},
};
#undef F

static const settings_spec spec = {"tester", "A test program.", rows,
                                   sizeof rows / sizeof rows[0], "TS_CONFIG",
                                   "The end."};

static const char *const envs[] = {"TS_NAME", "TS_ITEMS", "TS_ON", "TS_SIZE",
                                   "TS_RATIO", "TS_SECRET", "TS_CONFIG"};

static void clear_env(void)
{
    for (size_t i = 0; i < sizeof envs / sizeof envs[0]; i++) unsetenv(envs[i]);
}

static int load(conf *c, int argc, char **argv, char *err, size_t errlen)
{
    return settings_load(&spec, c, argc, argv, NULL, 0, err, errlen);
}

static void test_defaults(void)
{
    clear_env();
    conf c;
    memset(&c, 0xAB, sizeof c); /* settings_load must set every field */
    char err[256] = "";
    char *argv[] = {"tester", NULL};
    CU_ASSERT_EQUAL_FATAL(load(&c, 1, argv, err, sizeof err), SETTINGS_OK);
    CU_ASSERT_STRING_EQUAL(c.name, "anon");
    CU_ASSERT_STRING_EQUAL(c.list, "a,b");
    CU_ASSERT_EQUAL(c.on, 0);
    CU_ASSERT_EQUAL(c.size, 100);
    CU_ASSERT_EQUAL(c.count, 3);
    CU_ASSERT_DOUBLE_EQUAL(c.ratio, 0.5, 1e-12);
    CU_ASSERT_STRING_EQUAL(c.secret, "");
}

static void test_precedence(void)
{
    clear_env();
    char path[] = "/tmp/parley-settings-XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "# comment\n\n"
               "name = \"from file\"\n"
               "max_size = 200\n"
               "item = x\n"
               "count = -2\n"
               "ratio = 1.5\n"
               "secret = s3\n"
               "on = yes\n");
    fclose(f);
    setenv("TS_CONFIG", path, 1);
    setenv("TS_SIZE", "300", 1);
    setenv("TS_ITEMS", "e1,e2", 1);
    setenv("TS_ON", "off", 1);
    conf c;
    char err[256] = "";
    char *argv[] = {"tester", "--max-size", "400", "--item", "f1",
                    "--item", "f2", NULL};
    int rc = load(&c, 7, argv, err, sizeof err);
    if (rc != SETTINGS_OK) fprintf(stderr, "  %s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, SETTINGS_OK);
    CU_ASSERT_STRING_EQUAL(c.name, "from file"); /* file, unquoted */
    CU_ASSERT_EQUAL(c.size, 400);                /* flag over env over file */
    CU_ASSERT_STRING_EQUAL(c.list, "f1,f2");     /* flags replace, then add */
    CU_ASSERT_EQUAL(c.count, -2);                /* file over default */
    CU_ASSERT_DOUBLE_EQUAL(c.ratio, 1.5, 1e-12);
    CU_ASSERT_STRING_EQUAL(c.secret, "s3");      /* env-only row, from file */
    CU_ASSERT_EQUAL(c.on, 0);                    /* env over file */

    /* Without the flags the environment's list replaces the file's. */
    char *argv2[] = {"tester", NULL};
    CU_ASSERT_EQUAL_FATAL(load(&c, 1, argv2, err, sizeof err), SETTINGS_OK);
    CU_ASSERT_STRING_EQUAL(c.list, "e1,e2");
    CU_ASSERT_EQUAL(c.size, 300);

    /* --config on the command line beats the environment's file. */
    char *argv3[] = {"tester", "--config", "/nonexistent/t.conf", NULL};
    CU_ASSERT_EQUAL(load(&c, 3, argv3, err, sizeof err), SETTINGS_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent/t.conf"));

    f = fopen(path, "w");
    fprintf(f, "nmae = 1\n");
    fclose(f);
    CU_ASSERT_EQUAL(load(&c, 1, argv2, err, sizeof err), SETTINGS_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "nmae"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, ":1")); /* the line */
    unlink(path);
    clear_env();
}

static void expect_error(int argc, char **argv, const char *needle)
{
    conf c;
    char err[256] = "";
    CU_ASSERT_EQUAL(load(&c, argc, argv, err, sizeof err), SETTINGS_ERROR);
    if (!strstr(err, needle))
        fprintf(stderr, "  \"%s\" lacks \"%s\"\n", err, needle);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, needle));
}

static void test_errors(void)
{
    clear_env();
    char *a1[] = {"tester", "--max-size", "0", NULL}; /* below min */
    expect_error(3, a1, "--max-size");
    char *a2[] = {"tester", "--max-size", "1001", NULL}; /* above max */
    expect_error(3, a2, "max-size");
    char *a3[] = {"tester", "--max-size", "12x", NULL};
    expect_error(3, a3, "12x");
    char *a4[] = {"tester", "--count", "-6", NULL};
    expect_error(3, a4, "count");
    char *a5[] = {"tester", "--ratio", "nan", NULL};
    expect_error(3, a5, "ratio");
    char *a6[] = {"tester", "--name", "far too long for sixteen", NULL};
    expect_error(3, a6, "too long");
    char *a7[] = {"tester", "--bogus", NULL};
    expect_error(2, a7, "--bogus");
    char *a8[] = {"tester", "--secret", "x", NULL}; /* no flag for it */
    expect_error(3, a8, "--secret");
    char *a9[] = {"tester", "stray", NULL};
    expect_error(2, a9, "stray");
    setenv("TS_ON", "maybe", 1);
    char *a10[] = {"tester", NULL};
    expect_error(1, a10, "TS_ON");
    clear_env();
}

static void test_usage(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    settings_usage(&spec, f);
    fclose(f);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "usage: tester [options]"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "--max-size BYTES"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "env TS_SIZE, default 100"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "--on "));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "(secret)"));
    CU_ASSERT_PTR_NULL(strstr(text, "--secret"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "env TS_CONFIG"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "The end."));
    free(text);
}

static int collect(const char *item, void *ud)
{
    char *out = ud;
    strcat(out, "[");
    strcat(out, item);
    strcat(out, "]");
    return strcmp(item, "stop") == 0;
}

static void test_list_each(void)
{
    char out[128] = "";
    CU_ASSERT_EQUAL(settings_list_each(" a, b ,,c ", collect, out), 0);
    CU_ASSERT_STRING_EQUAL(out, "[a][b][c]");
    out[0] = 0;
    CU_ASSERT_EQUAL(settings_list_each("x,stop,y", collect, out), 1);
    CU_ASSERT_STRING_EQUAL(out, "[x][stop]");
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("settings", NULL, NULL);
    CU_add_test(s, "defaults", test_defaults);
    CU_add_test(s, "precedence", test_precedence);
    CU_add_test(s, "errors", test_errors);
    CU_add_test(s, "usage text", test_usage);
    CU_add_test(s, "list items", test_list_each);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
