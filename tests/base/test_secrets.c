/* test_secrets.c: CUnit tests of base/secrets.c on real files in a temp
 * folder: the precedence file > value > dev secret, the dev secret created
 * once (0600, its folder made, 64 hex digits) and then shared, the dev path
 * beside a database, and the refusals. */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "secrets.h"

static char dir[] = "/tmp/parley-secrets-XXXXXX";

static int suite_init(void) { return mkdtemp(dir) ? 0 : -1; }

static int suite_clean(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
    CU_ASSERT_EQUAL(chmod(path, 0600), 0);
}

/* A secret file that other users may read or write is refused; the dev
 * secret's folder is created private. */
static void test_private_files(void)
{
    char file[256], out[128], err[256];
    int created;
    snprintf(file, sizeof file, "%s/open-secret", dir);
    write_file(file, "0123456789abcdef0123456789abcdef");
    secrets_source src = {file, NULL, 0, NULL};
    CU_ASSERT_EQUAL(secrets_load(&src, out, sizeof out, &created, err,
                                 sizeof err), 0);
    mode_t modes[] = {0640, 0604, 0620, 0644};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        CU_ASSERT_EQUAL(chmod(file, modes[i]), 0);
        CU_ASSERT_EQUAL(secrets_load(&src, out, sizeof out, &created, err,
                                     sizeof err), -1);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "chmod 600"));
    }
    char db[256], dev[300];
    struct stat st;
    snprintf(db, sizeof db, "%s/newdir/parley.db", dir);
    CU_ASSERT_EQUAL(secrets_dev_path(db, dev, sizeof dev), 0);
    secrets_source d = {NULL, NULL, 1, dev};
    CU_ASSERT_EQUAL(secrets_load(&d, out, sizeof out, &created, err,
                                 sizeof err), 0);
    CU_ASSERT_EQUAL(stat(dev, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
    snprintf(db, sizeof db, "%s/newdir", dir);
    CU_ASSERT_EQUAL(stat(db, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0700);
}

static void test_precedence(void)
{
    char file[256], out[128], err[256];
    int created = -1;
    snprintf(file, sizeof file, "%s/secret", dir);
    write_file(file, "from-the-file\r\n\n");
    secrets_source src = {file, "from-the-value", 1, "/nonexistent/dev"};
    CU_ASSERT_EQUAL(secrets_load(&src, out, sizeof out, &created, err,
                                 sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(out, "from-the-file"); /* newlines dropped */
    CU_ASSERT_EQUAL(created, 0);
    src.file = "";
    CU_ASSERT_EQUAL(secrets_load(&src, out, sizeof out, &created, err,
                                 sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(out, "from-the-value");
    src.file = "/nonexistent/secret"; /* a named file must be readable */
    CU_ASSERT_EQUAL(secrets_load(&src, out, sizeof out, &created, err,
                                 sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent/secret"));
    secrets_source none = {NULL, NULL, 0, NULL};
    CU_ASSERT_EQUAL(secrets_load(&none, out, sizeof out, &created, err,
                                 sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "no JWT secret"));
}

static void test_dev_secret(void)
{
    char db[256], path[256], out[128], again[128], err[256];
    int created = -1;
    snprintf(db, sizeof db, "%s/state/parley.db", dir);
    CU_ASSERT_EQUAL_FATAL(secrets_dev_path(db, path, sizeof path), 0);
    char want[256];
    snprintf(want, sizeof want, "%s/state/dev-secret", dir);
    CU_ASSERT_STRING_EQUAL(path, want);

    secrets_source src = {NULL, NULL, 1, path};
    CU_ASSERT_EQUAL_FATAL(secrets_load(&src, out, sizeof out, &created, err,
                                       sizeof err), 0);
    CU_ASSERT_EQUAL(created, 1);
    CU_ASSERT_EQUAL(strlen(out), 64);
    CU_ASSERT_EQUAL(strspn(out, "0123456789abcdef"), 64);
    struct stat sb;
    CU_ASSERT_EQUAL_FATAL(stat(path, &sb), 0);
    CU_ASSERT_EQUAL(sb.st_mode & 0777, 0600);
    CU_ASSERT_EQUAL(sb.st_size, 65); /* and a newline */

    /* The second process reads the same secret. */
    CU_ASSERT_EQUAL(secrets_load(&src, again, sizeof again, &created, err,
                                 sizeof err), 0);
    CU_ASSERT_EQUAL(created, 0);
    CU_ASSERT_STRING_EQUAL(again, out);
    /* A configured secret wins over dev mode. */
    src.value = "configured";
    CU_ASSERT_EQUAL(secrets_load(&src, again, sizeof again, &created, err,
                                 sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(again, "configured");
}

static void test_dev_paths(void)
{
    char p[64];
    CU_ASSERT_EQUAL(secrets_dev_path("var/parley.db", p, sizeof p), 0);
    CU_ASSERT_STRING_EQUAL(p, "var/dev-secret");
    CU_ASSERT_EQUAL(secrets_dev_path("parley.db", p, sizeof p), 0);
    CU_ASSERT_STRING_EQUAL(p, "dev-secret");
    CU_ASSERT_EQUAL(secrets_dev_path("/parley.db", p, sizeof p), 0);
    CU_ASSERT_STRING_EQUAL(p, "/dev-secret");
    CU_ASSERT_EQUAL(secrets_dev_path("a/b/c/d/e/f/g/h/i/j/k/db", p, 12), -1);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("secrets", suite_init, suite_clean);
    CU_add_test(s, "precedence", test_precedence);
    CU_add_test(s, "dev secret", test_dev_secret);
    CU_add_test(s, "dev secret path", test_dev_paths);
    CU_add_test(s, "private files only", test_private_files);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
