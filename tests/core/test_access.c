/* test_access.c: CUnit tests of the access model (core/access.c) and of
 * the `rooms` claim as tokens carry it (core/auth.c): patterns, the most
 * specific grant, every rule of access_decide, the caller's view, and
 * tokens with and without the claim, minted and verified for real. */
#include <jansson.h>
#include <jwt.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "access.h"
#include "auth.h"

static const char SECRET[] = "access-test-secret-0123456789abcdef!!";

static int parse(const char *json, access_grants *g)
{
    json_t *j = json_loads(json, 0, NULL);
    int rc = access_grants_parse(j, g) == PARLEY_OK;
    json_decref(j);
    return rc;
}

static void test_patterns(void)
{
    CU_ASSERT_TRUE(access_pattern_valid("lobby"));
    CU_ASSERT_TRUE(access_pattern_valid("event-42.*"));
    CU_ASSERT_TRUE(access_pattern_valid("*"));
    CU_ASSERT_FALSE(access_pattern_valid(""));
    CU_ASSERT_FALSE(access_pattern_valid("a*b"));
    CU_ASSERT_FALSE(access_pattern_valid("a**"));
    CU_ASSERT_FALSE(access_pattern_valid("ev ent.*"));
    CU_ASSERT_FALSE(access_pattern_valid(NULL));

    access_grants g;
    CU_ASSERT_TRUE(parse("{\"event-42.*\": \"organizer\", \"event-7.*\": "
                         "\"participant\", \"event-42.stage\": "
                         "\"participant\", \"*\": \"participant\", "
                         "\"event-42.staff.*\": \"participant\"}",
                         &g));
    CU_ASSERT_TRUE(g.present);
    CU_ASSERT_EQUAL(g.n, 5);
    /* The most specific pattern decides. */
    CU_ASSERT_EQUAL(access_grants_role(&g, "event-42.main"),
                    PARLEY_ROLE_ORGANIZER);
    CU_ASSERT_EQUAL(access_grants_role(&g, "event-42.stage"),
                    PARLEY_ROLE_PARTICIPANT); /* exact beats prefix */
    CU_ASSERT_EQUAL(access_grants_role(&g, "event-42.staff.x"),
                    PARLEY_ROLE_PARTICIPANT); /* longer prefix */
    CU_ASSERT_EQUAL(access_grants_role(&g, "event-7.main"),
                    PARLEY_ROLE_PARTICIPANT);
    CU_ASSERT_EQUAL(access_grants_role(&g, "elsewhere"),
                    PARLEY_ROLE_PARTICIPANT); /* "*" */
    CU_ASSERT_TRUE(parse("{\"event-42.*\": \"organizer\"}", &g));
    CU_ASSERT_EQUAL(access_grants_role(&g, "event-42."), PARLEY_ROLE_ORGANIZER);
    CU_ASSERT_EQUAL(access_grants_role(&g, "event-42"), 0);
    CU_ASSERT_EQUAL(access_grants_role(&g, "event-420.x"), 0);
    CU_ASSERT_TRUE(parse("{}", &g));
    CU_ASSERT_TRUE(g.present);
    CU_ASSERT_EQUAL(access_grants_role(&g, "lobby"), 0);

    /* Malformed claims are refused whole. */
    CU_ASSERT_FALSE(parse("[\"lobby\"]", &g));
    CU_ASSERT_FALSE(parse("{\"lobby\": \"admin\"}", &g));
    CU_ASSERT_FALSE(parse("{\"lobby\": 2}", &g));
    CU_ASSERT_FALSE(parse("{\"lo by\": \"participant\"}", &g));
    CU_ASSERT_FALSE(g.present);
    char big[4096] = "{";
    for (int i = 0; i <= ACCESS_GRANTS_MAX; i++) {
        char one[64];
        snprintf(one, sizeof one, "%s\"r%d\": \"participant\"", i ? ", " : "",
                 i);
        strcat(big, one);
    }
    strcat(big, "}");
    CU_ASSERT_FALSE(parse(big, &g)); /* one more than allowed */
}

static const parley_room OPEN = {
    "r", 0, 0, "", "", PARLEY_VIS_OPEN, PARLEY_MODE_OPEN};

static parley_rule decide(int token_role, const parley_room *room,
                          const parley_standing *st, access_op op, int own)
{
    access_who who = {token_role, 0};
    return access_decide(&who, room, st, op, own, 1000);
}

static void test_rules(void)
{
    const int P = PARLEY_ROLE_PARTICIPANT, O = PARLEY_ROLE_ORGANIZER;
    parley_standing none = {0};
    parley_room members = OPEN, ann = OPEN, closed = OPEN;
    members.visibility = PARLEY_VIS_MEMBERS;
    ann.mode = PARLEY_MODE_ANNOUNCEMENTS;
    closed.mode = PARLEY_MODE_CLOSED;

    /* Nothing granted. */
    CU_ASSERT_EQUAL(decide(0, &OPEN, &none, ACCESS_READ, 0),
                    PARLEY_RULE_NOT_GRANTED);
    CU_ASSERT_EQUAL(decide(0, &OPEN, NULL, ACCESS_POST, 0),
                    PARLEY_RULE_NOT_GRANTED);
    /* A membership grants what the token does not. */
    parley_standing member = {P, 0, 0, 0, 0, 0, 0};
    CU_ASSERT_EQUAL(decide(0, &OPEN, &member, ACCESS_POST, 0),
                    PARLEY_RULE_NONE);
    parley_standing org_member = {O, 0, 0, 0, 0, 0, 0};
    CU_ASSERT_EQUAL(decide(P, &OPEN, &org_member, ACCESS_MODERATE, 0),
                    PARLEY_RULE_NONE);
    /* Open room, participant. */
    CU_ASSERT_EQUAL(decide(P, &OPEN, &none, ACCESS_READ, 0), PARLEY_RULE_NONE);
    CU_ASSERT_EQUAL(decide(P, &OPEN, &none, ACCESS_POST, 0), PARLEY_RULE_NONE);
    CU_ASSERT_EQUAL(decide(P, &OPEN, &none, ACCESS_EDIT, 1), PARLEY_RULE_NONE);
    CU_ASSERT_EQUAL(decide(P, &OPEN, &none, ACCESS_EDIT, 0),
                    PARLEY_RULE_ORGANIZER_ONLY);
    CU_ASSERT_EQUAL(decide(P, &OPEN, &none, ACCESS_DELETE, 0),
                    PARLEY_RULE_ORGANIZER_ONLY);
    CU_ASSERT_EQUAL(decide(P, &OPEN, &none, ACCESS_MODERATE, 0),
                    PARLEY_RULE_ORGANIZER_ONLY);
    CU_ASSERT_EQUAL(decide(O, &OPEN, &none, ACCESS_DELETE, 0),
                    PARLEY_RULE_NONE);
    /* Members only. */
    CU_ASSERT_EQUAL(decide(P, &members, &none, ACCESS_READ, 0),
                    PARLEY_RULE_MEMBERS_ONLY);
    CU_ASSERT_EQUAL(decide(P, &members, &member, ACCESS_POST, 0),
                    PARLEY_RULE_NONE);
    CU_ASSERT_EQUAL(decide(O, &members, &none, ACCESS_READ, 0),
                    PARLEY_RULE_NONE);
    /* Announcements and closed. */
    CU_ASSERT_EQUAL(decide(P, &ann, &none, ACCESS_READ, 0), PARLEY_RULE_NONE);
    CU_ASSERT_EQUAL(decide(P, &ann, &none, ACCESS_POST, 0),
                    PARLEY_RULE_ANNOUNCEMENTS);
    CU_ASSERT_EQUAL(decide(O, &ann, &none, ACCESS_POST, 0), PARLEY_RULE_NONE);
    CU_ASSERT_EQUAL(decide(O, &closed, &none, ACCESS_POST, 0),
                    PARLEY_RULE_ROOM_CLOSED);
    CU_ASSERT_EQUAL(decide(P, &closed, &none, ACCESS_EDIT, 1),
                    PARLEY_RULE_ROOM_CLOSED);
    CU_ASSERT_EQUAL(decide(P, &closed, &none, ACCESS_DELETE, 1),
                    PARLEY_RULE_NONE); /* deletions stay possible */
    CU_ASSERT_EQUAL(decide(P, &closed, &none, ACCESS_READ, 0),
                    PARLEY_RULE_NONE);
    /* Mutes: timed, until lifted, expired; organizers are not muted. */
    parley_standing muted = {0, 1, 2000, 0, 0, 0, 0};
    CU_ASSERT_EQUAL(decide(P, &OPEN, &muted, ACCESS_POST, 0),
                    PARLEY_RULE_MUTED);
    CU_ASSERT_EQUAL(decide(P, &OPEN, &muted, ACCESS_EDIT, 1),
                    PARLEY_RULE_MUTED);
    CU_ASSERT_EQUAL(decide(P, &OPEN, &muted, ACCESS_DELETE, 1),
                    PARLEY_RULE_NONE);
    CU_ASSERT_EQUAL(decide(P, &OPEN, &muted, ACCESS_READ, 0), PARLEY_RULE_NONE);
    muted.muted_until_ms = 0;
    CU_ASSERT_EQUAL(decide(P, &OPEN, &muted, ACCESS_POST, 0),
                    PARLEY_RULE_MUTED);
    muted.muted_until_ms = 1000; /* ended exactly now */
    CU_ASSERT_EQUAL(decide(P, &OPEN, &muted, ACCESS_POST, 0), PARLEY_RULE_NONE);
    muted.muted_until_ms = 0;
    CU_ASSERT_EQUAL(decide(O, &OPEN, &muted, ACCESS_POST, 0), PARLEY_RULE_NONE);
    /* Removals: no reading either; a membership does not help. */
    parley_standing removed = {P, 0, 0, 1, 0, 0, 0};
    CU_ASSERT_EQUAL(decide(P, &OPEN, &removed, ACCESS_READ, 0),
                    PARLEY_RULE_REMOVED);
    CU_ASSERT_EQUAL(decide(P, &OPEN, &removed, ACCESS_DELETE, 1),
                    PARLEY_RULE_REMOVED);
    removed.removed_until_ms = 999;
    CU_ASSERT_EQUAL(decide(P, &OPEN, &removed, ACCESS_READ, 0),
                    PARLEY_RULE_NONE);
    /* Creating: the token's organizer role in the name. */
    CU_ASSERT_EQUAL(decide(O, NULL, NULL, ACCESS_CREATE, 0), PARLEY_RULE_NONE);
    CU_ASSERT_EQUAL(decide(P, NULL, NULL, ACCESS_CREATE, 0),
                    PARLEY_RULE_ORGANIZER_ONLY);
    /* A service reads everything and writes nothing. */
    access_who svc = {0, 1};
    CU_ASSERT_EQUAL(access_decide(&svc, &members, NULL, ACCESS_READ, 0, 1),
                    PARLEY_RULE_NONE);
    CU_ASSERT_EQUAL(access_decide(&svc, &OPEN, NULL, ACCESS_POST, 0, 1),
                    PARLEY_RULE_SERVICE_READ_ONLY);

    access_view v;
    access_who p = {P, 0};
    parley_standing m2 = {0, 1, 5000, 0, 0, 0, 0};
    access_view_of(&p, &OPEN, &m2, 1000, &v);
    CU_ASSERT_EQUAL(v.role, P);
    CU_ASSERT_FALSE(v.member);
    CU_ASSERT_FALSE(v.can_post);
    CU_ASSERT_EQUAL(v.post_rule, PARLEY_RULE_MUTED);
    CU_ASSERT_TRUE(v.muted);
    CU_ASSERT_EQUAL(v.muted_until_ms, 5000);
    access_view_of(&p, &ann, &member, 1000, &v);
    CU_ASSERT_TRUE(v.member);
    CU_ASSERT_EQUAL(v.post_rule, PARLEY_RULE_ANNOUNCEMENTS);
    CU_ASSERT_FALSE(v.muted);

    CU_ASSERT_STRING_EQUAL(parley_rule_name(PARLEY_RULE_MUTED), "MUTED");
    CU_ASSERT_EQUAL(parley_rule_from_name("RULE_ROOM_CLOSED"),
                    PARLEY_RULE_ROOM_CLOSED);
    CU_ASSERT_EQUAL(parley_rule_from_name("NOPE"), PARLEY_RULE_NONE);
}

/* Tokens: with the claim, without it, and with a bad one. */
static void test_tokens(void)
{
    auth *a = NULL;
    CU_ASSERT_EQUAL_FATAL(auth_new(SECRET, strlen(SECRET), &a), PARLEY_OK);
    auth_identity id, got;
    memset(&id, 0, sizeof id);
    strcpy(id.id, "ada");
    strcpy(id.display_name, "Ada");
    id.role = PARLEY_ROLE_PARTICIPANT;

    /* Legacy: role everywhere. */
    char *t = auth_mint(a, &id, 1000, 60);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(auth_verify(a, t, 1000, &got), PARLEY_OK);
    CU_ASSERT_FALSE(got.grants.present);
    CU_ASSERT_EQUAL(auth_room_role(&got, "anything"), PARLEY_ROLE_PARTICIPANT);
    free(t);

    /* With rooms: only what it lists. */
    CU_ASSERT_TRUE(parse("{\"event-42.*\": \"organizer\", \"event-7.*\": "
                         "\"participant\"}",
                         &id.grants));
    t = auth_mint(a, &id, 1000, 60);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(auth_verify(a, t, 1000, &got), PARLEY_OK);
    CU_ASSERT_TRUE(got.grants.present);
    CU_ASSERT_EQUAL(got.grants.n, 2);
    CU_ASSERT_EQUAL(auth_room_role(&got, "event-42.main"),
                    PARLEY_ROLE_ORGANIZER);
    CU_ASSERT_EQUAL(auth_room_role(&got, "event-7.qa"),
                    PARLEY_ROLE_PARTICIPANT);
    CU_ASSERT_EQUAL(auth_room_role(&got, "lobby"), 0);
    free(t);

    /* Hand-made claims: role may be left out with rooms, not without;
     * a bad rooms claim refuses the token. */
    struct {
        const char *claims;
        parley_err want;
    } cases[] = {
        {"{\"sub\":\"x\",\"name\":\"X\",\"exp\":2000,\"rooms\":{\"a.*\":"
         "\"participant\"}}",
         PARLEY_OK},
        {"{\"sub\":\"x\",\"name\":\"X\",\"exp\":2000}",
         PARLEY_ERR_UNAUTHENTICATED},
        {"{\"sub\":\"x\",\"name\":\"X\",\"exp\":2000,\"role\":\"admin\","
         "\"rooms\":{}}",
         PARLEY_ERR_UNAUTHENTICATED},
        {"{\"sub\":\"x\",\"name\":\"X\",\"exp\":2000,\"role\":"
         "\"participant\",\"rooms\":{\"a b\":\"participant\"}}",
         PARLEY_ERR_UNAUTHENTICATED},
        {"{\"sub\":\"x\",\"name\":\"X\",\"exp\":2000,\"role\":"
         "\"participant\",\"rooms\":[\"a\"]}",
         PARLEY_ERR_UNAUTHENTICATED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        jwt_t *jwt = NULL;
        CU_ASSERT_EQUAL_FATAL(jwt_new(&jwt), 0);
        CU_ASSERT_EQUAL(jwt_add_grants_json(jwt, cases[i].claims), 0);
        CU_ASSERT_EQUAL(jwt_set_alg(jwt, JWT_ALG_HS256,
                                    (const unsigned char *)SECRET,
                                    (int)strlen(SECRET)),
                        0);
        char *tok = jwt_encode_str(jwt);
        jwt_free(jwt);
        CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
        parley_err e = auth_verify(a, tok, 1000, &got);
        CU_ASSERT_EQUAL(e, cases[i].want);
        if (e != cases[i].want)
            fprintf(stderr, "  case %zu: got %s\n", i, parley_err_name(e));
        if (e == PARLEY_OK) {
            CU_ASSERT_EQUAL(got.role, PARLEY_ROLE_PARTICIPANT);
            CU_ASSERT_EQUAL(auth_room_role(&got, "a.b"),
                            PARLEY_ROLE_PARTICIPANT);
            CU_ASSERT_EQUAL(auth_room_role(&got, "b"), 0);
        }
        free(tok);
    }
    auth_free(a);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite suite = CU_add_suite("access", NULL, NULL);
    CU_add_test(suite, "patterns and the most specific grant", test_patterns);
    CU_add_test(suite, "every rule of access_decide", test_rules);
    CU_add_test(suite, "tokens with and without a rooms claim", test_tokens);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}
