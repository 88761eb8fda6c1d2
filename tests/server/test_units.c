/* test_units.c: CUnit tests of the server's parts that need no client:
 * settings precedence (flags > env > file > defaults), refusal of a service
 * with a missing handler, the hub's room index, the client's mapping of a
 * call's status and parley-error-code trailer, and parleyd refusing to
 * start without a secret.
 *
 * usage: test_units PARLEYD_BINARY */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "hub.h"
#include "rpc.h"
#include "rpc_client.h"
#include "parley/v1/history.grpc.h"

static const char *g_bin;

static void clear_env(void) {
    const char *vars[] = {"PARLEY_ADDR", "PARLEY_UNIX", "PARLEY_DB",
                          "PARLEY_JWT_SECRET", "PARLEY_JWT_SECRET_FILE",
                          "PARLEY_ROOMS", "PARLEY_MAX_BODY", "PARLEY_MAX_QUEUE",
                          "PARLEY_DEV", "PARLEY_CONFIG"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) unsetenv(vars[i]);
}

static void test_cfg_defaults(void) {
    clear_env();
    cfg c;
    char err[256];
    char *argv[] = {"parleyd", NULL};
    CU_ASSERT_EQUAL_FATAL(cfg_load(&c, 1, argv, err, sizeof err), CFG_OK);
    CU_ASSERT_STRING_EQUAL(c.listen, "127.0.0.1:7400");
    CU_ASSERT_STRING_EQUAL(c.unix_path, "var/parleyd.sock");
    CU_ASSERT_STRING_EQUAL(c.db, "var/parley.db");
    CU_ASSERT_STRING_EQUAL(c.rooms, "lobby");
    CU_ASSERT_EQUAL(c.max_body, 4096);
    CU_ASSERT_EQUAL(c.max_queue, 4096);
    CU_ASSERT_EQUAL(c.dev, 0);
    CU_ASSERT_STRING_EQUAL(c.jwt_secret, "");
}

static void test_cfg_precedence(void) {
    clear_env();
    char path[] = "/tmp/parley-cfg-XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "# parleyd settings\n"
               "listen = 127.0.0.1:9000\n"
               "db = file.db\n"
               "max_body = 100\n"
               "rooms = \"a,b\"\n"
               "max-queue = 10\n");
    fclose(f);
    setenv("PARLEY_CONFIG", path, 1);
    setenv("PARLEY_DB", "env.db", 1);
    setenv("PARLEY_MAX_BODY", "200", 1);
    setenv("PARLEY_MAX_QUEUE", "20", 1);
    cfg c;
    char err[256];
    char *argv[] = {"parleyd", "--max-body", "300", "--dev", NULL};
    int rc = cfg_load(&c, 4, argv, err, sizeof err);
    if (rc != CFG_OK) fprintf(stderr, "  %s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, CFG_OK);
    CU_ASSERT_STRING_EQUAL(c.listen, "127.0.0.1:9000"); /* file */
    CU_ASSERT_STRING_EQUAL(c.db, "env.db");             /* env over file */
    CU_ASSERT_EQUAL(c.max_body, 300);                   /* flag over env */
    CU_ASSERT_EQUAL(c.max_queue, 20);                   /* env over file */
    CU_ASSERT_STRING_EQUAL(c.rooms, "a,b");             /* file, unquoted */
    CU_ASSERT_STRING_EQUAL(c.unix_path, "var/parleyd.sock"); /* default */
    CU_ASSERT_EQUAL(c.dev, 1);

    /* --config on the command line beats PARLEY_CONFIG */
    unsetenv("PARLEY_CONFIG");
    char *argv2[] = {"parleyd", "--config", "/nonexistent/parley.conf", NULL};
    CU_ASSERT_EQUAL(cfg_load(&c, 3, argv2, err, sizeof err), CFG_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent/parley.conf"));

    f = fopen(path, "w");
    fprintf(f, "lissten = 1\n");
    fclose(f);
    char *argv3[] = {"parleyd", "--config", path, NULL};
    CU_ASSERT_EQUAL(cfg_load(&c, 3, argv3, err, sizeof err), CFG_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "lissten"));
    unlink(path);
    clear_env();
}

static void test_cfg_errors(void) {
    clear_env();
    cfg c;
    char err[256];
    char *a1[] = {"parleyd", "--max-body", "lots", NULL};
    CU_ASSERT_EQUAL(cfg_load(&c, 3, a1, err, sizeof err), CFG_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "max-body"));
    char *a2[] = {"parleyd", "--bogus", NULL};
    CU_ASSERT_EQUAL(cfg_load(&c, 2, a2, err, sizeof err), CFG_ERROR);
    setenv("PARLEY_MAX_QUEUE", "-5", 1);
    char *a3[] = {"parleyd", NULL};
    CU_ASSERT_EQUAL(cfg_load(&c, 1, a3, err, sizeof err), CFG_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "PARLEY_MAX_QUEUE"));
    unsetenv("PARLEY_MAX_QUEUE");
}

static void nop_unary(rpc_call *c, const void *r, void *ud) {
    (void)c;
    (void)r;
    (void)ud;
}

static void test_missing_handler(void) {
    rpc_server *rs = rpc_server_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rs);
    parley_v1_History_handlers h;
    memset(&h, 0, sizeof h);
    h.list_messages = (void *)nop_unary;
    h.get_message = (void *)nop_unary;
    h.edit_message = (void *)nop_unary;
    h.delete_message = (void *)nop_unary;
    h.create_room = (void *)nop_unary; /* get_room stays NULL */
    char err[256] = "";
    CU_ASSERT_EQUAL(rpc_server_add_service(rs, &parley_v1_History_service, &h,
                                           NULL, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/parley.v1.History/GetRoom"));
    h.get_room = (void *)nop_unary;
    h.list_rooms = (void *)nop_unary;
    CU_ASSERT_EQUAL(rpc_server_add_service(rs, &parley_v1_History_service, &h,
                                           NULL, err, sizeof err), 0);
    rpc_server_free(rs);
}

static void test_hub_rooms(void) {
    hub *h = hub_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    enum { N = 300 };
    static hub_sub subs[N];
    char name[32];
    for (int i = 0; i < N; i++) { /* enough rooms to grow the table */
        memset(&subs[i], 0, sizeof subs[i]);
        snprintf(name, sizeof name, "room-%d", i % 150);
        subs[i].live = i % 3 != 0;
        CU_ASSERT_EQUAL(hub_add(h, name, &subs[i]), 0);
    }
    CU_ASSERT_EQUAL(hub_room_count(h), 150);
    CU_ASSERT_TRUE(hub_has_live(h, "room-1"));
    CU_ASSERT_FALSE(hub_has_live(h, "room-x"));
    /* room-0 holds subs 0 and 150, both not live (multiples of 3) */
    CU_ASSERT_FALSE(hub_has_live(h, "room-0"));
    for (int i = 0; i < N; i++) hub_remove(h, &subs[i]);
    CU_ASSERT_EQUAL(hub_room_count(h), 0);
    CU_ASSERT_FALSE(hub_has_live(h, "room-1"));
    hub_free(h);
}

/* Without --dev and without a secret parleyd refuses to start. */
/* The trailer names the error; without it the gRPC status decides. */
static void test_client_status_error(void) {
    grpc_metadata_array none = {0, 0, NULL};
    grpc_metadata md;
    grpc_metadata_array trail = {1, 1, &md};
    int unavail = -1;
    md.key = grpc_slice_from_static_string("parley-error-code");
    md.value = grpc_slice_from_static_string("ROOM_NOT_FOUND");
    CU_ASSERT_EQUAL(rpc_client_status_error(GRPC_STATUS_NOT_FOUND, &trail,
                                            &unavail),
                    PARLEY_ERR_ROOM_NOT_FOUND);
    CU_ASSERT_EQUAL(unavail, 0);
    md.value = grpc_slice_from_static_string("ERROR_CODE_BODY_EMPTY");
    CU_ASSERT_EQUAL(rpc_client_status_error(GRPC_STATUS_INVALID_ARGUMENT,
                                            &trail, &unavail),
                    PARLEY_ERR_BODY_EMPTY);
    md.value = grpc_slice_from_static_string("NO_SUCH_CODE");
    CU_ASSERT_EQUAL(rpc_client_status_error(GRPC_STATUS_INVALID_ARGUMENT,
                                            &trail, &unavail),
                    PARLEY_ERR_INTERNAL);
    CU_ASSERT_EQUAL(rpc_client_status_error(GRPC_STATUS_OK, &none, &unavail),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(rpc_client_status_error(GRPC_STATUS_INVALID_ARGUMENT,
                                            &none, &unavail),
                    PARLEY_ERR_MALFORMED);
    CU_ASSERT_EQUAL(unavail, 0);
    CU_ASSERT_EQUAL(rpc_client_status_error(GRPC_STATUS_UNAVAILABLE, &none,
                                            &unavail),
                    PARLEY_ERR_INTERNAL);
    CU_ASSERT_EQUAL(unavail, 1);
    CU_ASSERT_EQUAL(parley_err_from_name("AUTHOR_INVALID"),
                    PARLEY_ERR_AUTHOR_INVALID);
    CU_ASSERT_EQUAL(parley_err_from_name("OK"), PARLEY_ERR_INTERNAL);
}

static void test_no_secret_refuses(void) {
    clear_env();
    char dir[] = "/tmp/parley-nosecret-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char db[128], sock[128], log[128];
    snprintf(db, sizeof db, "%s/parley.db", dir);
    snprintf(sock, sizeof sock, "%s/p.sock", dir);
    snprintf(log, sizeof log, "%s/err.txt", dir);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(log, "w", stderr) || !freopen("/dev/null", "w", stdout))
            _exit(126);
        execl(g_bin, g_bin, "--listen", "127.0.0.1:0", "--unix", sock, "--db",
              db, (char *)NULL);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    CU_ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 2);
    char buf[512] = "";
    FILE *f = fopen(log, "r");
    if (f) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = 0;
        fclose(f);
    }
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "no JWT secret"));
    CU_ASSERT_EQUAL(access(db, F_OK), -1); /* nothing created */
    unlink(log);
    rmdir(dir);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s PARLEYD_BINARY\n", argv[0]);
        return 2;
    }
    g_bin = argv[1];
    grpc_init();
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("server units", NULL, NULL);
    CU_add_test(s, "config defaults", test_cfg_defaults);
    CU_add_test(s, "config precedence", test_cfg_precedence);
    CU_add_test(s, "config errors", test_cfg_errors);
    CU_add_test(s, "missing handler refused", test_missing_handler);
    CU_add_test(s, "hub room index", test_hub_rooms);
    CU_add_test(s, "client status and trailer mapping",
                test_client_status_error);
    CU_add_test(s, "no secret refuses to start", test_no_secret_refuses);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    grpc_shutdown();
    return fails ? 1 : 0;
}
