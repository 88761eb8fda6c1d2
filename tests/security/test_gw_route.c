/* test_gw_route.c: CUnit tests of gateway/gw_route.c, the REST route
 * matcher and the paging arguments: literal and {name} segments, trailing
 * slash, 404 versus 405 with the Allow list, over-long segments kept cut
 * and flagged, and every BAD_CURSOR case. */
#include <CUnit/Basic.h>
#include <string.h>

#include "gw_route.h"

static void h(void) {}

static const gw_route T[] = {
    {"POST", "/v1/rooms", h},
    {"GET", "/v1/rooms/{room}", h},
    {"GET", "/v1/rooms/{room}/messages", h},
    {"GET", "/v1/rooms/{room}/messages/{seq}", h},
    {"PATCH", "/v1/rooms/{room}/messages/{seq}", h},
    {"DELETE", "/v1/rooms/{room}/messages/{seq}", h},
};
#define NT (sizeof T / sizeof T[0])

static void test_match(void)
{
    gw_route_args a;
    char allow[64];
    CU_ASSERT_EQUAL(gw_route_match(T, NT, "POST", "/v1/rooms", &a, allow, sizeof allow), 0);
    CU_ASSERT_EQUAL(gw_route_match(T, NT, "POST", "/v1/rooms/", &a, allow, sizeof allow), 0);
    CU_ASSERT_EQUAL(gw_route_match(T, NT, "GET", "/v1/rooms/lobby", &a, allow, sizeof allow), 1);
    CU_ASSERT_STRING_EQUAL(gw_route_arg(&a, "room", NULL), "lobby");
    CU_ASSERT_EQUAL(gw_route_match(T, NT, "DELETE", "/v1/rooms/lobby/messages/42", &a, allow, sizeof allow), 5);
    CU_ASSERT_STRING_EQUAL(gw_route_arg(&a, "seq", NULL), "42");
    CU_ASSERT_PTR_NULL(gw_route_arg(&a, "nope", NULL));
}

static void test_not_found_and_method(void)
{
    gw_route_args a;
    char allow[64];
    CU_ASSERT_EQUAL(gw_route_match(T, NT, "GET", "/v1/nothing", &a, allow, sizeof allow), GW_ROUTE_NOT_FOUND);
    CU_ASSERT_EQUAL(gw_route_match(T, NT, "GET", "/v1/rooms//messages", &a, allow, sizeof allow), GW_ROUTE_NOT_FOUND);
    CU_ASSERT_EQUAL(gw_route_match(T, NT, "GET", "/v1/rooms/a/messages/1/x", &a, allow, sizeof allow), GW_ROUTE_NOT_FOUND);
    CU_ASSERT_EQUAL(gw_route_match(T, NT, "GET", "v1/rooms", &a, allow, sizeof allow), GW_ROUTE_NOT_FOUND);
    CU_ASSERT_EQUAL(gw_route_match(T, NT, "PUT", "/v1/rooms/a/messages/1", &a, allow, sizeof allow), GW_ROUTE_BAD_METHOD);
    CU_ASSERT_STRING_EQUAL(allow, "GET, PATCH, DELETE");
    CU_ASSERT_EQUAL(gw_route_match(T, NT, "GET", "/v1/rooms", &a, allow, sizeof allow), GW_ROUTE_BAD_METHOD);
    CU_ASSERT_STRING_EQUAL(allow, "POST");
}

static void test_long_segment(void)
{
    gw_route_args a;
    char allow[64], path[400];
    memset(path, 'r', sizeof path);
    memcpy(path, "/v1/rooms/", 10);
    path[sizeof path - 1] = '\0';
    CU_ASSERT_EQUAL(gw_route_match(T, NT, "GET", path, &a, allow, sizeof allow), 1);
    int too_long = 0;
    const char *room = gw_route_arg(&a, "room", &too_long);
    CU_ASSERT_TRUE(too_long);
    CU_ASSERT_EQUAL(strlen(room), GW_ROUTE_ARG_MAX);
}

static void test_paging(void)
{
    int cur;
    uint64_t v;
    uint32_t lim;
    char d[100];
    CU_ASSERT_EQUAL(gw_route_paging(NULL, NULL, NULL, &cur, &v, &lim, d, sizeof d), PARLEY_OK);
    CU_ASSERT_EQUAL(cur, 0);
    CU_ASSERT_EQUAL(gw_route_paging("12", NULL, "50", &cur, &v, &lim, d, sizeof d), PARLEY_OK);
    CU_ASSERT(cur == 1 && v == 12 && lim == 50);
    CU_ASSERT_EQUAL(gw_route_paging(NULL, "7", NULL, &cur, &v, &lim, d, sizeof d), PARLEY_OK);
    CU_ASSERT(cur == 2 && v == 7);
    CU_ASSERT_EQUAL(gw_route_paging("1", "2", NULL, &cur, &v, &lim, d, sizeof d), PARLEY_ERR_BAD_CURSOR);
    CU_ASSERT_EQUAL(gw_route_paging("-1", NULL, NULL, &cur, &v, &lim, d, sizeof d), PARLEY_ERR_BAD_CURSOR);
    CU_ASSERT_EQUAL(gw_route_paging(" 1", NULL, NULL, &cur, &v, &lim, d, sizeof d), PARLEY_ERR_BAD_CURSOR);
    CU_ASSERT_EQUAL(gw_route_paging("1x", NULL, NULL, &cur, &v, &lim, d, sizeof d), PARLEY_ERR_BAD_CURSOR);
    CU_ASSERT_EQUAL(gw_route_paging("", NULL, NULL, &cur, &v, &lim, d, sizeof d), PARLEY_ERR_BAD_CURSOR);
    CU_ASSERT_EQUAL(gw_route_paging("99999999999999999999", NULL, NULL, &cur, &v, &lim, d, sizeof d),
                    PARLEY_ERR_BAD_CURSOR);
    CU_ASSERT_EQUAL(gw_route_paging(NULL, NULL, "4294967296", &cur, &v, &lim, d, sizeof d), PARLEY_ERR_BAD_CURSOR);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("gw_route", NULL, NULL);
    CU_add_test(s, "match and arguments", test_match);
    CU_add_test(s, "404 and 405 with Allow", test_not_found_and_method);
    CU_add_test(s, "over-long segment", test_long_segment);
    CU_add_test(s, "paging arguments", test_paging);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned f = CU_get_number_of_failures();
    CU_cleanup_registry();
    return f ? 1 : 0;
}
