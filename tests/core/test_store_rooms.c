/* test_store_rooms.c: CUnit tests of the store's room calls (store.h,
 * "rooms: settings, access, members, sanctions, actions") against real
 * databases: settings on create and update, a user's standing, members,
 * mutes and removals, the action log, rooms listed with a prefix and a
 * user's standing, deleting a room (and creating its name again), erasing
 * a user's messages, the migration of a database written before rooms had
 * settings, and all of it inside a group commit that rolls back.
 *
 *   test_core_store_rooms [sqlite]   database files in a fresh temp dir
 *   test_core_store_rooms postgres   a fresh database per test on the
 *                                    PostgreSQL that PARLEY_PG_HOST / _PORT
 *                                    / _USER name (tests/pg/pgtmp)
 *
 * The migration test writes the schema-1 database the way each engine
 * stored it. */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "rules.h"
#include "store.h"

static char g_dir[4096];
static int g_db_no;

static const parley_author ADA = {"ada", "Ada Lovelace",
                                  PARLEY_ROLE_PARTICIPANT};
static const parley_author BOB = {"bob", "Bob", PARLEY_ROLE_PARTICIPANT};
static const parley_author OLGA = {"olga", "Olga", PARLEY_ROLE_ORGANIZER};

/* PostgreSQL: where it is, and an admin connection that makes a database
 * per target. NULL g_admin: SQLite files. */
static const char *g_pg_host, *g_pg_port, *g_pg_user;
static PGconn *g_admin;

static void pg_uri(char *out, size_t len, const char *db)
{
    snprintf(out, len, "postgres://%s@/%s?host=%s&port=%s", g_pg_user, db,
             g_pg_host, g_pg_port);
}

/* Runs sql on conn; 0 on success. */
static int pg_run_sql(PGconn *conn, const char *sql)
{
    PGresult *r = PQexec(conn, sql);
    int st = PQresultStatus(r);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok) fprintf(stderr, "%s: %s", sql, PQerrorMessage(conn));
    PQclear(r);
    return ok ? 0 : -1;
}

static void target(char *out, size_t len)
{
    g_db_no++;
    if (g_admin == NULL) {
        snprintf(out, len, "%s/r%02d.db", g_dir, g_db_no);
        return;
    }
    char db[64], sql[128];
    snprintf(db, sizeof db, "parley_rooms%d_%02d", (int)getpid(), g_db_no);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", db);
    if (pg_run_sql(g_admin, sql) != 0) {
        out[0] = '\0';
        return;
    }
    pg_uri(out, len, db);
}

static store *open_target(const char *t)
{
    store *s = NULL;
    char err[256];
    if (store_open(t, NULL, &s, err, sizeof err) != PARLEY_OK)
        fprintf(stderr, "store_open %s: %s\n", t, err);
    return s;
}

static store *fresh(void)
{
    char t[4200];
    target(t, sizeof t);
    return t[0] ? open_target(t) : NULL;
}

static parley_err post(store *s, const char *room, const parley_author *a,
                       const char *id, const char *body, parley_msg *out)
{
    return store_append(s, room, a, id, body, strlen(body), 2000, out, NULL);
}

/* ---- settings ---------------------------------------------------------- */

static void test_settings(void)
{
    store *s = fresh();
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    parley_room r;
    int created = 0;
    unsigned changed = 99;

    /* Defaults: no texts, open, open. */
    CU_ASSERT_EQUAL(store_room_create(s, "plain", 1, &r, &created), PARLEY_OK);
    CU_ASSERT_STRING_EQUAL(r.title, "");
    CU_ASSERT_EQUAL(r.visibility, PARLEY_VIS_OPEN);
    CU_ASSERT_EQUAL(r.mode, PARLEY_MODE_OPEN);

    parley_room_settings set = {"Backstage", "For the crew\nonly",
                                PARLEY_VIS_MEMBERS, PARLEY_MODE_ANNOUNCEMENTS};
    CU_ASSERT_EQUAL(store_room_create_with(s, "ev.back", &set, 1, &r, &created),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(created, 1);
    CU_ASSERT_STRING_EQUAL(r.title, "Backstage");
    CU_ASSERT_STRING_EQUAL(r.topic, "For the crew\nonly");
    CU_ASSERT_EQUAL(r.visibility, PARLEY_VIS_MEMBERS);
    CU_ASSERT_EQUAL(r.mode, PARLEY_MODE_ANNOUNCEMENTS);
    /* Creating it again changes nothing, whatever the settings say. */
    parley_room_settings other = {"Other", NULL, PARLEY_VIS_OPEN, 0};
    CU_ASSERT_EQUAL(
        store_room_create_with(s, "ev.back", &other, 2, &r, &created),
        PARLEY_OK);
    CU_ASSERT_EQUAL(created, 0);
    CU_ASSERT_STRING_EQUAL(r.title, "Backstage");
    CU_ASSERT_EQUAL(r.visibility, PARLEY_VIS_MEMBERS);

    /* Update: only what is set; the bits say what really changed. */
    parley_room_settings u = {NULL, "", 0, PARLEY_MODE_CLOSED};
    CU_ASSERT_EQUAL(store_room_update(s, "ev.back", &u, &r, &changed),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(changed, STORE_CHANGED_TEXT | STORE_CHANGED_MODE);
    CU_ASSERT_STRING_EQUAL(r.title, "Backstage");
    CU_ASSERT_STRING_EQUAL(r.topic, "");
    CU_ASSERT_EQUAL(r.mode, PARLEY_MODE_CLOSED);
    CU_ASSERT_EQUAL(r.visibility, PARLEY_VIS_MEMBERS);
    CU_ASSERT_EQUAL(store_room_update(s, "ev.back", &u, &r, &changed),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(changed, 0);
    /* Texts from the previous result may be passed back in. */
    parley_room_settings same = {r.title, r.topic, PARLEY_VIS_OPEN, 0};
    CU_ASSERT_EQUAL(store_room_update(s, "ev.back", &same, &r, &changed),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(changed, STORE_CHANGED_VISIBILITY);
    CU_ASSERT_STRING_EQUAL(r.title, "Backstage");
    CU_ASSERT_EQUAL(store_room_get(s, "ev.back", &r), PARLEY_OK);
    CU_ASSERT_EQUAL(r.visibility, PARLEY_VIS_OPEN);
    CU_ASSERT_EQUAL(r.mode, PARLEY_MODE_CLOSED);

    /* Refusals change nothing. */
    parley_room_settings bad = {"tab\there", NULL, 0, 0};
    CU_ASSERT_EQUAL(store_room_update(s, "ev.back", &bad, &r, &changed),
                    PARLEY_ERR_INVALID_UTF8);
    bad.title = "\xff";
    CU_ASSERT_EQUAL(store_room_update(s, "ev.back", &bad, &r, &changed),
                    PARLEY_ERR_INVALID_UTF8);
    char long_title[STORE_TITLE_MAX + 2];
    memset(long_title, 'x', sizeof long_title - 1);
    long_title[sizeof long_title - 1] = '\0';
    bad.title = long_title;
    CU_ASSERT_EQUAL(store_room_update(s, "ev.back", &bad, &r, &changed),
                    PARLEY_ERR_MALFORMED);
    long_title[STORE_TITLE_MAX] = '\0'; /* exactly the limit is fine */
    parley_room_settings edge = {long_title, NULL, 0, 0};
    CU_ASSERT_EQUAL(store_room_update(s, "plain", &edge, &r, &changed),
                    PARLEY_OK);
    parley_room_settings bad_mode = {NULL, NULL, 0, 9};
    CU_ASSERT_EQUAL(store_room_update(s, "ev.back", &bad_mode, &r, &changed),
                    PARLEY_ERR_MALFORMED);
    parley_room_settings bad_vis = {NULL, NULL, 3, 0};
    CU_ASSERT_EQUAL(store_room_create_with(s, "new", &bad_vis, 1, &r, &created),
                    PARLEY_ERR_MALFORMED);
    CU_ASSERT_EQUAL(store_room_get(s, "new", &r), PARLEY_ERR_ROOM_NOT_FOUND);
    CU_ASSERT_EQUAL(store_room_update(s, "nope", &u, &r, &changed),
                    PARLEY_ERR_ROOM_NOT_FOUND);
    CU_ASSERT_EQUAL(store_room_get(s, "ev.back", &r), PARLEY_OK);
    CU_ASSERT_STRING_EQUAL(r.title, "Backstage");
    CU_ASSERT_EQUAL(r.mode, PARLEY_MODE_CLOSED);
    store_close(s);
}

/* ---- standing: members and sanctions ----------------------------------- */

typedef struct member_ids {
    char ids[8][16];
    int n;
} member_ids;

static int collect_member(const parley_member *m, void *ud)
{
    member_ids *p = ud;
    if (p->n < 8) snprintf(p->ids[p->n], sizeof p->ids[0], "%s", m->user_id);
    p->n++;
    return 0;
}

static void test_members_and_standing(void)
{
    store *s = fresh();
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    parley_room r;
    parley_standing st;
    parley_member m;
    int changed = -1, removed = -1;

    CU_ASSERT_EQUAL(store_room_create(s, "r", 1, NULL, NULL), PARLEY_OK);
    CU_ASSERT_EQUAL(store_room_access(s, "r", "ada", &r, &st), PARLEY_OK);
    CU_ASSERT_EQUAL(st.member_role, 0);
    CU_ASSERT_FALSE(st.muted);
    CU_ASSERT_FALSE(st.removed);
    CU_ASSERT_EQUAL(r.visibility, PARLEY_VIS_OPEN);
    CU_ASSERT_EQUAL(store_room_access(s, "nope", "ada", &r, &st),
                    PARLEY_ERR_ROOM_NOT_FOUND);
    CU_ASSERT_EQUAL(store_room_access(s, "r", "", &r, &st),
                    PARLEY_ERR_AUTHOR_INVALID);

    CU_ASSERT_EQUAL(store_member_set(s, "r", "ada", PARLEY_ROLE_PARTICIPANT,
                                     "olga", 50, &m, &changed),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(changed, 1);
    CU_ASSERT_STRING_EQUAL(m.user_id, "ada");
    CU_ASSERT_STRING_EQUAL(m.added_by, "olga");
    CU_ASSERT_EQUAL(m.added_at_ms, 50);
    CU_ASSERT_EQUAL(store_member_set(s, "r", "ada", PARLEY_ROLE_PARTICIPANT,
                                     "zed", 60, &m, &changed),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(changed, 0); /* same role: the stored membership */
    CU_ASSERT_STRING_EQUAL(m.added_by, "olga");
    CU_ASSERT_EQUAL(store_member_set(s, "r", "ada", PARLEY_ROLE_ORGANIZER,
                                     "zed", 70, &m, &changed),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(changed, 1);
    CU_ASSERT_EQUAL(m.role, PARLEY_ROLE_ORGANIZER);
    CU_ASSERT_EQUAL(store_member_set(s, "r", "bob", 7, "zed", 70, &m, &changed),
                    PARLEY_ERR_MALFORMED);
    CU_ASSERT_EQUAL(store_member_set(s, "nope", "bob", 1, "zed", 70, &m, NULL),
                    PARLEY_ERR_ROOM_NOT_FOUND);

    CU_ASSERT_EQUAL(store_sanction_set(s, "r", "ada", STORE_SANCTION_MUTE, 1,
                                       5000, &changed),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(changed, 1);
    CU_ASSERT_EQUAL(store_sanction_set(s, "r", "ada", STORE_SANCTION_REMOVE, 1,
                                       0, &changed),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(store_room_access(s, "r", "ada", &r, &st), PARLEY_OK);
    CU_ASSERT_EQUAL(st.member_role, PARLEY_ROLE_ORGANIZER);
    CU_ASSERT_TRUE(st.muted);
    CU_ASSERT_EQUAL(st.muted_until_ms, 5000);
    CU_ASSERT_TRUE(st.removed);
    CU_ASSERT_EQUAL(st.removed_until_ms, 0);
    /* Another user's standing is their own. */
    CU_ASSERT_EQUAL(store_room_access(s, "r", "bob", &r, &st), PARLEY_OK);
    CU_ASSERT_EQUAL(st.member_role, 0);
    CU_ASSERT_FALSE(st.muted || st.removed);
    /* Lifting: once changes, twice does not. */
    CU_ASSERT_EQUAL(
        store_sanction_set(s, "r", "ada", STORE_SANCTION_MUTE, 0, 0, &changed),
        PARLEY_OK);
    CU_ASSERT_EQUAL(changed, 1);
    CU_ASSERT_EQUAL(
        store_sanction_set(s, "r", "ada", STORE_SANCTION_MUTE, 0, 0, &changed),
        PARLEY_OK);
    CU_ASSERT_EQUAL(changed, 0);
    CU_ASSERT_EQUAL(store_sanction_set(s, "r", "ada", 3, 1, 0, &changed),
                    PARLEY_ERR_MALFORMED);
    CU_ASSERT_EQUAL(
        store_sanction_set(s, "r", "ada", STORE_SANCTION_MUTE, 1, -5, &changed),
        PARLEY_ERR_MALFORMED);
    CU_ASSERT_EQUAL(store_room_access(s, "r", "ada", &r, &st), PARLEY_OK);
    CU_ASSERT_FALSE(st.muted);
    CU_ASSERT_TRUE(st.removed);

    /* Members listed by id, in pages. */
    const char *ids[] = {"zoe", "bob", "carl", "dan"};
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(store_member_set(s, "r", ids[i],
                                         PARLEY_ROLE_PARTICIPANT, "olga", 1,
                                         NULL, NULL),
                        PARLEY_OK);
    member_ids seen;
    int more = 0;
    memset(&seen, 0, sizeof seen);
    const char *after = "";
    for (int page = 0; page < 5; page++) {
        CU_ASSERT_EQUAL_FATAL(
            store_member_list(s, "r", after, 2, collect_member, &seen, &more),
            PARLEY_OK);
        after = seen.ids[seen.n - 1];
        if (!more) break;
    }
    CU_ASSERT_EQUAL(seen.n, 5);
    const char *want[] = {"ada", "bob", "carl", "dan", "zoe"};
    for (int i = 0; i < 5 && i < seen.n; i++)
        CU_ASSERT_STRING_EQUAL(seen.ids[i], want[i]);
    CU_ASSERT_EQUAL(store_member_list(s, "r", "", 1001, NULL, NULL, &more),
                    PARLEY_ERR_BAD_CURSOR);

    CU_ASSERT_EQUAL(store_member_remove(s, "r", "bob", &removed), PARLEY_OK);
    CU_ASSERT_EQUAL(removed, 1);
    CU_ASSERT_EQUAL(store_member_remove(s, "r", "bob", &removed), PARLEY_OK);
    CU_ASSERT_EQUAL(removed, 0);
    CU_ASSERT_EQUAL(store_room_access(s, "r", "bob", &r, &st), PARLEY_OK);
    CU_ASSERT_EQUAL(st.member_role, 0);
    store_close(s);
}

/* ---- actions ----------------------------------------------------------- */

typedef struct acts {
    uint64_t ids[16];
    int kinds[16];
    char targets[16][16];
    int n;
} acts;

static int collect_action(const parley_action *a, void *ud)
{
    acts *p = ud;
    if (p->n < 16) {
        p->ids[p->n] = a->id;
        p->kinds[p->n] = a->kind;
        snprintf(p->targets[p->n], 16, "%s", a->target_user_id);
    }
    p->n++;
    return 0;
}

static void test_actions(void)
{
    store *s = fresh();
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(store_room_create(s, "a", 1, NULL, NULL), PARLEY_OK);
    CU_ASSERT_EQUAL(store_room_create(s, "b", 1, NULL, NULL), PARLEY_OK);
    parley_action a, out;
    memset(&a, 0, sizeof a);
    a.room = "a";
    a.kind = PARLEY_ACTION_MUTE;
    a.actor = OLGA;
    a.target_user_id = "ada";
    a.at_ms = 1234;
    a.until_ms = 9999;
    a.reason = "calm down";
    CU_ASSERT_EQUAL(store_action_append(s, &a, &out), PARLEY_OK);
    CU_ASSERT_EQUAL(out.id, 1);
    CU_ASSERT_STRING_EQUAL(out.room, "a");
    CU_ASSERT_STRING_EQUAL(out.actor.id, "olga");
    CU_ASSERT_STRING_EQUAL(out.target_user_id, "ada");
    CU_ASSERT_STRING_EQUAL(out.reason, "calm down");
    CU_ASSERT_EQUAL(out.until_ms, 9999);
    a.kind = PARLEY_ACTION_SET_MODE;
    a.target_user_id = NULL; /* room-wide */
    a.reason = NULL;
    a.mode = PARLEY_MODE_CLOSED;
    CU_ASSERT_EQUAL(store_action_append(s, &a, &out), PARLEY_OK);
    CU_ASSERT_EQUAL(out.id, 2);
    CU_ASSERT_STRING_EQUAL(out.target_user_id, "");
    /* Ids are per room. */
    a.room = "b";
    CU_ASSERT_EQUAL(store_action_append(s, &a, &out), PARLEY_OK);
    CU_ASSERT_EQUAL(out.id, 1);
    /* Refused: no kind, bad actor, bad reason, no room. */
    a.kind = 0;
    CU_ASSERT_EQUAL(store_action_append(s, &a, &out), PARLEY_ERR_MALFORMED);
    a.kind = PARLEY_ACTION_KIND_MAX + 1;
    CU_ASSERT_EQUAL(store_action_append(s, &a, &out), PARLEY_ERR_MALFORMED);
    a.kind = PARLEY_ACTION_UNMUTE;
    a.actor.role = 0;
    CU_ASSERT_EQUAL(store_action_append(s, &a, &out),
                    PARLEY_ERR_AUTHOR_INVALID);
    a.actor = OLGA;
    a.reason = "\x01";
    CU_ASSERT_EQUAL(store_action_append(s, &a, &out), PARLEY_ERR_INVALID_UTF8);
    a.reason = NULL;
    a.room = "nope";
    CU_ASSERT_EQUAL(store_action_append(s, &a, &out),
                    PARLEY_ERR_ROOM_NOT_FOUND);

    for (int i = 0; i < 3; i++) {
        a.room = "a";
        a.kind = PARLEY_ACTION_ADD_MEMBER;
        a.target_user_id = i == 0 ? "x" : i == 1 ? "y" : "z";
        CU_ASSERT_EQUAL(store_action_append(s, &a, &out), PARLEY_OK);
        CU_ASSERT_EQUAL(out.id, 3 + (uint64_t)i);
    }
    acts p;
    int more = 0;
    memset(&p, 0, sizeof p);
    CU_ASSERT_EQUAL(store_action_list(s, "a", 0, 3, collect_action, &p, &more),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(p.n, 3);
    CU_ASSERT_TRUE(more);
    CU_ASSERT_EQUAL(p.ids[0], 1);
    CU_ASSERT_EQUAL(p.kinds[0], PARLEY_ACTION_MUTE);
    CU_ASSERT_STRING_EQUAL(p.targets[0], "ada");
    CU_ASSERT_EQUAL(p.kinds[1], PARLEY_ACTION_SET_MODE);
    memset(&p, 0, sizeof p);
    CU_ASSERT_EQUAL(store_action_list(s, "a", 3, 0, collect_action, &p, &more),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(p.n, 2);
    CU_ASSERT_FALSE(more);
    CU_ASSERT_EQUAL(p.ids[0], 4);
    CU_ASSERT_STRING_EQUAL(p.targets[1], "z");
    CU_ASSERT_EQUAL(store_action_list(s, "nope", 0, 3, NULL, NULL, &more),
                    PARLEY_ERR_ROOM_NOT_FOUND);
    store_close(s);
}

/* ---- room lists with a prefix and a standing ---------------------------- */

typedef struct rooms_seen {
    char names[16][RULES_ROOM_MAX + 1];
    int member[16], muted[16];
    uint64_t read_seq[16];
    int n;
} rooms_seen;

static int collect_room(const parley_room *r, const parley_standing *st,
                        void *ud)
{
    rooms_seen *p = ud;
    if (p->n < 16) {
        snprintf(p->names[p->n], sizeof p->names[0], "%s", r->name);
        p->member[p->n] = st->member_role;
        p->muted[p->n] = st->muted;
        p->read_seq[p->n] = st->last_read_seq;
    }
    p->n++;
    return 0;
}

static void test_room_list_for(void)
{
    store *s = fresh();
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    const char *names[] = {"ev-1.main", "ev-1.back", "ev-10.main", "ev-2.main",
                           "lobby"};
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(store_room_create(s, names[i], 1, NULL, NULL),
                        PARLEY_OK);
    CU_ASSERT_EQUAL(store_member_set(s, "ev-1.back", "ada",
                                     PARLEY_ROLE_PARTICIPANT, "olga", 1, NULL,
                                     NULL),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(store_sanction_set(s, "ev-1.main", "ada",
                                       STORE_SANCTION_MUTE, 1, 0, NULL),
                    PARLEY_OK);
    rooms_seen p;
    int more;
    memset(&p, 0, sizeof p);
    store_room_query q = {NULL, "ev-1.", "ada", 0};
    CU_ASSERT_EQUAL(store_room_list_for(s, &q, collect_room, &p, &more),
                    PARLEY_OK);
    CU_ASSERT_EQUAL_FATAL(p.n, 2);
    CU_ASSERT_STRING_EQUAL(p.names[0], "ev-1.back");
    CU_ASSERT_EQUAL(p.member[0], PARLEY_ROLE_PARTICIPANT);
    CU_ASSERT_FALSE(p.muted[0]);
    CU_ASSERT_STRING_EQUAL(p.names[1], "ev-1.main");
    CU_ASSERT_EQUAL(p.member[1], 0);
    CU_ASSERT_TRUE(p.muted[1]);
    CU_ASSERT_FALSE(more);
    /* Another user, no standing; a prefix that is a whole name. */
    memset(&p, 0, sizeof p);
    q.prefix = "ev-1";
    q.user_id = "bob";
    CU_ASSERT_EQUAL(store_room_list_for(s, &q, collect_room, &p, &more),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(p.n, 3); /* ev-1.back, ev-1.main, ev-10.main */
    CU_ASSERT_EQUAL(p.member[0], 0);
    /* after + prefix + limit together. */
    memset(&p, 0, sizeof p);
    store_room_query q2 = {"ev-1.back", "ev-", NULL, 2};
    CU_ASSERT_EQUAL(store_room_list_for(s, &q2, collect_room, &p, &more),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(p.n, 2);
    CU_ASSERT_STRING_EQUAL(p.names[0], "ev-1.main");
    CU_ASSERT_STRING_EQUAL(p.names[1], "ev-10.main");
    CU_ASSERT_TRUE(more);
    store_room_query bad = {NULL, "ev 1", NULL, 0};
    CU_ASSERT_EQUAL(store_room_list_for(s, &bad, collect_room, &p, &more),
                    PARLEY_ERR_ROOM_INVALID);
    store_close(s);
}

/* ---- deleting rooms ---------------------------------------------------- */

typedef struct msgs {
    uint64_t seq[64], rev[64];
    int deleted[64];
    char names[64][32];
    int n;
} msgs;

static int collect_msg(const parley_msg *m, void *ud)
{
    msgs *p = ud;
    if (p->n < 64) {
        p->seq[p->n] = m->seq;
        p->rev[p->n] = m->rev;
        p->deleted[p->n] = m->deleted;
        snprintf(p->names[p->n], 32, "%s", m->author.display_name);
    }
    p->n++;
    return 0;
}

static void test_room_delete(void)
{
    store *s = fresh();
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    parley_room r;
    parley_msg m;
    uint64_t n = 99;
    int created, more;
    CU_ASSERT_EQUAL(store_room_create(s, "gone", 1, NULL, NULL), PARLEY_OK);
    CU_ASSERT_EQUAL(store_room_create(s, "kept", 1, NULL, NULL), PARLEY_OK);
    for (int i = 0; i < 5; i++) {
        char id[8];
        snprintf(id, sizeof id, "m%d", i);
        CU_ASSERT_EQUAL(post(s, "gone", &ADA, id, "hello", &m), PARLEY_OK);
        CU_ASSERT_EQUAL(post(s, "kept", &ADA, id, "hello", &m), PARLEY_OK);
    }
    CU_ASSERT_EQUAL(store_delete(s, "gone", 2, &ADA, 3, &m), PARLEY_OK);
    CU_ASSERT_EQUAL(
        store_member_set(s, "gone", "ada", 1, "olga", 1, NULL, NULL),
        PARLEY_OK);
    CU_ASSERT_EQUAL(
        store_sanction_set(s, "gone", "bob", STORE_SANCTION_MUTE, 1, 0, NULL),
        PARLEY_OK);
    parley_action a = {0};
    a.room = "gone";
    a.kind = PARLEY_ACTION_MUTE;
    a.actor = OLGA;
    CU_ASSERT_EQUAL(store_action_append(s, &a, NULL), PARLEY_OK);

    CU_ASSERT_EQUAL(store_room_delete(s, "gone", &r, &n), PARLEY_OK);
    CU_ASSERT_EQUAL(n, 5);
    CU_ASSERT_STRING_EQUAL(r.name, "gone");
    CU_ASSERT_EQUAL(r.head_seq, 5);
    CU_ASSERT_EQUAL(r.head_rev, 6);
    /* Gone for every call; the other room untouched. */
    CU_ASSERT_EQUAL(store_room_get(s, "gone", &r), PARLEY_ERR_ROOM_NOT_FOUND);
    CU_ASSERT_EQUAL(post(s, "gone", &ADA, "late", "x", &m),
                    PARLEY_ERR_ROOM_NOT_FOUND);
    CU_ASSERT_EQUAL(store_get(s, "gone", 1, &m), PARLEY_ERR_ROOM_NOT_FOUND);
    CU_ASSERT_EQUAL(store_room_access(s, "gone", "ada", &r, NULL),
                    PARLEY_ERR_ROOM_NOT_FOUND);
    CU_ASSERT_EQUAL(store_room_delete(s, "gone", &r, &n),
                    PARLEY_ERR_ROOM_NOT_FOUND);
    CU_ASSERT_EQUAL(store_room_get(s, "kept", &r), PARLEY_OK);
    CU_ASSERT_EQUAL(r.head_seq, 5);
    rooms_seen p;
    memset(&p, 0, sizeof p);
    store_room_query q = {NULL, NULL, NULL, 0};
    CU_ASSERT_EQUAL(store_room_list_for(s, &q, collect_room, &p, &more),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(p.n, 1);
    CU_ASSERT_STRING_EQUAL(p.names[0], "kept");

    /* The name again: counters go on, nothing of the old room shows. */
    parley_room_settings set = {"Again", NULL, 0, 0};
    CU_ASSERT_EQUAL(store_room_create_with(s, "gone", &set, 9, &r, &created),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(created, 1);
    CU_ASSERT_EQUAL(r.head_seq, 5);
    CU_ASSERT_EQUAL(r.head_rev, 6);
    CU_ASSERT_STRING_EQUAL(r.title, "Again");
    msgs page;
    memset(&page, 0, sizeof page);
    CU_ASSERT_EQUAL(store_list(s, "gone", STORE_LATEST, 0, 50, collect_msg,
                               &page, &r, &more),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(page.n, 0);
    CU_ASSERT_FALSE(more);
    CU_ASSERT_EQUAL(store_list(s, "gone", STORE_AFTER_REV, 0, 50, collect_msg,
                               &page, &r, &more),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(page.n, 0);
    CU_ASSERT_EQUAL(post(s, "gone", &ADA, "m0", "new life", &m), PARLEY_OK);
    CU_ASSERT_EQUAL(m.seq, 6); /* "m0" is no duplicate any more */
    CU_ASSERT_EQUAL(m.rev, 7);
    CU_ASSERT_EQUAL(post(s, "gone", &ADA, "m1", "second", &m), PARLEY_OK);
    memset(&page, 0, sizeof page);
    CU_ASSERT_EQUAL(store_list(s, "gone", STORE_LATEST, 0, 1, collect_msg,
                               &page, &r, &more),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(page.n, 1);
    CU_ASSERT_EQUAL(page.seq[0], 7);
    CU_ASSERT_TRUE(more);
    memset(&page, 0, sizeof page);
    CU_ASSERT_EQUAL(store_list(s, "gone", STORE_BEFORE_SEQ, 7, 50, collect_msg,
                               &page, &r, &more),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(page.n, 1);
    CU_ASSERT_EQUAL(page.seq[0], 6);
    CU_ASSERT_FALSE(more); /* nothing below: the old seqs went */
    parley_standing st;
    CU_ASSERT_EQUAL(store_room_access(s, "gone", "ada", &r, &st), PARLEY_OK);
    CU_ASSERT_EQUAL(st.member_role, 0);
    CU_ASSERT_EQUAL(store_room_access(s, "gone", "bob", &r, &st), PARLEY_OK);
    CU_ASSERT_FALSE(st.muted);
    parley_action out;
    CU_ASSERT_EQUAL(store_action_append(s, &a, &out), PARLEY_OK);
    CU_ASSERT_EQUAL(out.id, 2); /* action ids go on too */
    acts ap;
    memset(&ap, 0, sizeof ap);
    CU_ASSERT_EQUAL(
        store_action_list(s, "gone", 0, 10, collect_action, &ap, &more),
        PARLEY_OK);
    CU_ASSERT_EQUAL(ap.n, 1);
    store_close(s);
}

/* ---- erasing a user ---------------------------------------------------- */

static void test_erase_user(void)
{
    store *s = fresh();
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    parley_msg m;
    parley_room r;
    uint64_t count = 99;
    int more;
    CU_ASSERT_EQUAL(store_room_create(s, "a", 1, NULL, NULL), PARLEY_OK);
    CU_ASSERT_EQUAL(store_room_create(s, "b", 1, NULL, NULL), PARLEY_OK);
    CU_ASSERT_EQUAL(post(s, "a", &ADA, "1", "ada one", &m), PARLEY_OK);
    CU_ASSERT_EQUAL(post(s, "a", &BOB, "1", "bob one", &m), PARLEY_OK);
    CU_ASSERT_EQUAL(post(s, "a", &ADA, "2", "ada two", &m), PARLEY_OK);
    CU_ASSERT_EQUAL(post(s, "a", &ADA, "3", "ada three", &m), PARLEY_OK);
    CU_ASSERT_EQUAL(store_delete(s, "a", 4, &ADA, 3, &m), PARLEY_OK);
    CU_ASSERT_EQUAL(post(s, "b", &ADA, "1", "ada in b", &m), PARLEY_OK);
    CU_ASSERT_EQUAL(post(s, "b", &BOB, "1", "bob in b", &m), PARLEY_OK);
    /* a: revs 1..5 (4 posts and a delete); b: revs 1..2. */

    /* One room: each live message of ada becomes a tombstone with a new
     * rev, in seq order; the one deleted before is not counted. */
    msgs seen;
    memset(&seen, 0, sizeof seen);
    CU_ASSERT_EQUAL(
        store_erase_user(s, "a", "ada", 50, collect_msg, &seen, &count),
        PARLEY_OK);
    CU_ASSERT_EQUAL(count, 2);
    CU_ASSERT_EQUAL_FATAL(seen.n, 2);
    CU_ASSERT_EQUAL(seen.seq[0], 1);
    CU_ASSERT_EQUAL(seen.rev[0], 6);
    CU_ASSERT_EQUAL(seen.seq[1], 3);
    CU_ASSERT_EQUAL(seen.rev[1], 7);
    CU_ASSERT_TRUE(seen.deleted[0] && seen.deleted[1]);
    CU_ASSERT_STRING_EQUAL(seen.names[0], ""); /* the name is forgotten */
    CU_ASSERT_EQUAL(store_get(s, "a", 1, &m), PARLEY_OK);
    CU_ASSERT_TRUE(m.deleted);
    CU_ASSERT_STRING_EQUAL(m.body, "");
    CU_ASSERT_STRING_EQUAL(m.author.id, "ada");
    CU_ASSERT_EQUAL(store_get(s, "a", 2, &m), PARLEY_OK);
    CU_ASSERT_STRING_EQUAL(m.body, "bob one");
    CU_ASSERT_EQUAL(store_get(s, "b", 1, &m), PARLEY_OK);
    CU_ASSERT_STRING_EQUAL(m.body, "ada in b"); /* another room: kept */

    /* A reader at rev 5 catches up exactly those tombstones. */
    memset(&seen, 0, sizeof seen);
    CU_ASSERT_EQUAL(store_list(s, "a", STORE_AFTER_REV, 5, 50, collect_msg,
                               &seen, &r, &more),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(seen.n, 2);
    CU_ASSERT_EQUAL(r.head_rev, 7);

    /* Every room: only b has something left. A repeat erases nothing. */
    memset(&seen, 0, sizeof seen);
    CU_ASSERT_EQUAL(
        store_erase_user(s, NULL, "ada", 60, collect_msg, &seen, &count),
        PARLEY_OK);
    CU_ASSERT_EQUAL(count, 1);
    CU_ASSERT_EQUAL(seen.n, 1);
    CU_ASSERT_EQUAL(seen.seq[0], 1);
    CU_ASSERT_EQUAL(seen.rev[0], 3);
    CU_ASSERT_EQUAL(store_erase_user(s, NULL, "ada", 70, NULL, NULL, &count),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(count, 0);
    /* A retry of an erased publish is still a duplicate (its tombstone). */
    int dup = 0;
    CU_ASSERT_EQUAL(store_append(s, "a", &ADA, "1", "again", 5, 80, &m, &dup),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(dup, 1);
    CU_ASSERT_TRUE(m.deleted);
    CU_ASSERT_EQUAL(store_erase_user(s, "nope", "ada", 70, NULL, NULL, &count),
                    PARLEY_ERR_ROOM_NOT_FOUND);
    CU_ASSERT_EQUAL(store_erase_user(s, NULL, "", 70, NULL, NULL, &count),
                    PARLEY_ERR_AUTHOR_INVALID);
    store_close(s);
}

/* ---- read state -------------------------------------------------------- */

static void test_read_state(void)
{
    store *s = fresh();
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    parley_msg m;
    parley_room r;
    parley_standing st;
    uint64_t seq = 0, rev = 0;
    unsigned n = 99;
    CU_ASSERT_EQUAL(store_room_create(s, "r", 1, NULL, NULL), PARLEY_OK);
    for (int i = 1; i <= 6; i++) {
        char id[8];
        snprintf(id, sizeof id, "%d", i);
        /* 1, 3, 5 by ada; 2, 4, 6 by bob */
        CU_ASSERT_EQUAL(post(s, "r", i % 2 ? &ADA : &BOB, id, "m", &m),
                        PARLEY_OK);
    }
    CU_ASSERT_EQUAL(store_delete(s, "r", 6, &BOB, 3, &m), PARLEY_OK);
    CU_ASSERT_EQUAL(store_room_access(s, "r", "ada", &r, &st), PARLEY_OK);
    CU_ASSERT_EQUAL(st.last_read_seq, 0);
    CU_ASSERT_EQUAL(store_unread_count(s, "r", "ada", 0, 1000, &n), PARLEY_OK);
    CU_ASSERT_EQUAL(n, 2); /* bob's 2 and 4; 6 is deleted, 1 3 5 hers */
    CU_ASSERT_EQUAL(store_read_mark(s, "r", "ada", 2, 2, 10, &seq, &rev),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(seq, 2);
    CU_ASSERT_EQUAL(rev, 2);
    CU_ASSERT_EQUAL(store_unread_count(s, "r", "ada", 2, 1000, &n), PARLEY_OK);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(store_unread_count(s, "r", "bob", 0, 2, &n), PARLEY_OK);
    CU_ASSERT_EQUAL(n, 2); /* 1, 3, 5 counted up to the cap of 2 */
    /* Never back. */
    CU_ASSERT_EQUAL(store_read_mark(s, "r", "ada", 1, 7, 11, &seq, &rev),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(seq, 2);
    CU_ASSERT_EQUAL(rev, 7);
    CU_ASSERT_EQUAL(store_room_access(s, "r", "ada", &r, &st), PARLEY_OK);
    CU_ASSERT_EQUAL(st.last_read_seq, 2);
    CU_ASSERT_EQUAL(st.last_read_rev, 7);
    CU_ASSERT_EQUAL(store_room_access(s, "r", "bob", &r, &st), PARLEY_OK);
    CU_ASSERT_EQUAL(st.last_read_seq, 0);
    rooms_seen p;
    int more;
    memset(&p, 0, sizeof p);
    store_room_query q = {NULL, NULL, "ada", 0};
    CU_ASSERT_EQUAL(store_room_list_for(s, &q, collect_room, &p, &more),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(p.n, 1);
    CU_ASSERT_EQUAL(p.read_seq[0], 2);
    CU_ASSERT_EQUAL(store_unread_count(s, "r", "ada", 0, 0, &n),
                    PARLEY_ERR_BAD_CURSOR);
    CU_ASSERT_EQUAL(store_read_mark(s, "nope", "ada", 1, 1, 1, NULL, NULL),
                    PARLEY_ERR_ROOM_NOT_FOUND);
    store_close(s);
}

/* ---- a group commit of moderation that rolls back ----------------------- */

/* Unread counts are remembered per handle (store_unread_key): every kind of
 * change must show in the next count, on this handle and on a reader. */
static unsigned unread(store *s, const char *user, uint64_t after)
{
    unsigned n = 9999;
    CU_ASSERT_EQUAL(store_unread_count(s, "r", user, after, 1000, &n),
                    PARLEY_OK);
    return n;
}

static void test_unread_follows_changes(void)
{
    store *s = fresh(), *rd = NULL;
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    char err[256];
    CU_ASSERT_EQUAL_FATAL(store_open_reader(s, &rd, err, sizeof err),
                          PARLEY_OK);
    parley_msg m;
    uint64_t erased = 0;
    CU_ASSERT_EQUAL(store_room_create(s, "r", 1, NULL, NULL), PARLEY_OK);
    CU_ASSERT_EQUAL(unread(s, "ada", 0), 0);
    CU_ASSERT_EQUAL(post(s, "r", &BOB, "b1", "m", &m), PARLEY_OK);
    CU_ASSERT_EQUAL(unread(s, "ada", 0), 1);
    CU_ASSERT_EQUAL(unread(rd, "ada", 0), 1);
    CU_ASSERT_EQUAL(unread(s, "ada", 0), 1); /* asked again: the same */
    CU_ASSERT_EQUAL(post(s, "r", &BOB, "b2", "m", &m), PARLEY_OK);
    CU_ASSERT_EQUAL(unread(s, "ada", 0), 2);
    CU_ASSERT_EQUAL(unread(rd, "ada", 0), 2);
    CU_ASSERT_EQUAL(unread(s, "ada", 1), 1); /* another read mark */
    CU_ASSERT_EQUAL(post(s, "r", &ADA, "a1", "m", &m), PARLEY_OK);
    CU_ASSERT_EQUAL(unread(s, "ada", 0), 2); /* her own is not counted */
    CU_ASSERT_EQUAL(unread(s, "bob", 0), 1);
    CU_ASSERT_EQUAL(store_delete(s, "r", 1, &BOB, 3, &m), PARLEY_OK);
    CU_ASSERT_EQUAL(unread(s, "ada", 0), 1);
    CU_ASSERT_EQUAL(unread(rd, "ada", 0), 1);
    /* A write rolled back is never remembered: the count taken inside the
     * transaction must not answer for the counters reached again after. */
    CU_ASSERT_EQUAL(store_begin(s), PARLEY_OK);
    CU_ASSERT_EQUAL(post(s, "r", &BOB, "b3", "m", &m), PARLEY_OK);
    CU_ASSERT_EQUAL(unread(s, "ada", 0), 2);
    store_rollback(s);
    CU_ASSERT_EQUAL(unread(s, "ada", 0), 1);
    CU_ASSERT_EQUAL(post(s, "r", &ADA, "a2", "m", &m), PARLEY_OK);
    CU_ASSERT_EQUAL(unread(s, "ada", 0), 1);
    CU_ASSERT_EQUAL(store_erase_user(s, "r", "bob", 4, NULL, NULL, &erased),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(erased, 1);
    CU_ASSERT_EQUAL(unread(s, "ada", 0), 0);
    CU_ASSERT_EQUAL(unread(rd, "ada", 0), 0);
    /* A deleted room's name made again keeps its counters but not its
     * messages. */
    CU_ASSERT_EQUAL(post(s, "r", &BOB, "b4", "m", &m), PARLEY_OK);
    CU_ASSERT_EQUAL(unread(rd, "ada", 0), 1);
    CU_ASSERT_EQUAL(unread(s, "ada", 0), 1);
    CU_ASSERT_EQUAL(store_room_delete(s, "r", NULL, NULL), PARLEY_OK);
    CU_ASSERT_EQUAL(store_room_create(s, "r", 5, NULL, NULL), PARLEY_OK);
    CU_ASSERT_EQUAL(unread(s, "ada", 0), 0);
    CU_ASSERT_EQUAL(unread(rd, "ada", 0), 0);
    store_close(rd);
    store_close(s);
}

static void test_rollback(void)
{
    store *s = fresh();
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    parley_room r;
    parley_standing st;
    CU_ASSERT_EQUAL(store_room_create(s, "r", 1, NULL, NULL), PARLEY_OK);
    CU_ASSERT_EQUAL(store_begin(s), PARLEY_OK);
    CU_ASSERT_EQUAL(
        store_sanction_set(s, "r", "ada", STORE_SANCTION_MUTE, 1, 0, NULL),
        PARLEY_OK);
    parley_action a = {0};
    a.room = "r";
    a.kind = PARLEY_ACTION_MUTE;
    a.actor = OLGA;
    a.target_user_id = "ada";
    CU_ASSERT_EQUAL(store_action_append(s, &a, NULL), PARLEY_OK);
    parley_room_settings u = {"T", NULL, 0, PARLEY_MODE_CLOSED};
    CU_ASSERT_EQUAL(store_room_update(s, "r", &u, &r, NULL), PARLEY_OK);
    /* Inside the transaction it shows ... */
    CU_ASSERT_EQUAL(store_room_access(s, "r", "ada", &r, &st), PARLEY_OK);
    CU_ASSERT_TRUE(st.muted);
    CU_ASSERT_EQUAL(r.mode, PARLEY_MODE_CLOSED);
    store_rollback(s);
    /* ... and after the rollback none of it is there. */
    CU_ASSERT_EQUAL(store_room_access(s, "r", "ada", &r, &st), PARLEY_OK);
    CU_ASSERT_FALSE(st.muted);
    CU_ASSERT_EQUAL(r.mode, PARLEY_MODE_OPEN);
    CU_ASSERT_STRING_EQUAL(r.title, "");
    int more;
    CU_ASSERT_EQUAL(store_action_list(s, "r", 0, 10, NULL, NULL, &more),
                    PARLEY_OK);
    CU_ASSERT_FALSE(more);
    acts ap;
    memset(&ap, 0, sizeof ap);
    CU_ASSERT_EQUAL(
        store_action_list(s, "r", 0, 10, collect_action, &ap, &more),
        PARLEY_OK);
    CU_ASSERT_EQUAL(ap.n, 0);
    store_close(s);
}

/* ---- migration of a database from before rooms had settings ------------- */

/* Schema version 1 as each engine published it, with a room "old" of two
 * messages. */
static const char *const v1_sqlite =
    "CREATE TABLE rooms(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " head_seq INTEGER NOT NULL DEFAULT 0, head_rev INTEGER NOT NULL"
    " DEFAULT 0, created_ms INTEGER NOT NULL);"
    "CREATE TABLE messages(room_id INTEGER NOT NULL REFERENCES rooms(id),"
    " seq INTEGER NOT NULL, rev INTEGER NOT NULL, client_msg_id TEXT NOT"
    " NULL, author_id TEXT NOT NULL, author_name TEXT NOT NULL,"
    " author_role INTEGER NOT NULL, body TEXT NOT NULL, created_ms INTEGER"
    " NOT NULL, edited_ms INTEGER NOT NULL DEFAULT 0, deleted INTEGER NOT"
    " NULL DEFAULT 0, PRIMARY KEY(room_id, seq)) WITHOUT ROWID;"
    "CREATE UNIQUE INDEX messages_rev ON messages(room_id, rev);"
    "CREATE UNIQUE INDEX messages_client_id"
    "  ON messages(room_id, author_id, client_msg_id);"
    "INSERT INTO rooms(id, name, head_seq, head_rev, created_ms)"
    " VALUES(1, 'old', 2, 2, 1);"
    "INSERT INTO messages VALUES(1, 1, 1, 'c1', 'ada', 'Ada', 1, 'hi', 1,"
    " 0, 0), (1, 2, 2, 'c2', 'ada', 'Ada', 1, 'there', 1, 0, 0);"
    "PRAGMA user_version = 1;";
static const char *const v1_pg =
    "CREATE TABLE parley_schema(one boolean PRIMARY KEY DEFAULT true"
    " CHECK (one), version integer NOT NULL);"
    "INSERT INTO parley_schema(version) VALUES (1);"
    "CREATE TABLE rooms(id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " name text COLLATE \"C\" NOT NULL UNIQUE, head_seq bigint NOT NULL"
    " DEFAULT 0, head_rev bigint NOT NULL DEFAULT 0, created_ms bigint NOT"
    " NULL);"
    "CREATE TABLE messages(room_id bigint NOT NULL REFERENCES rooms(id),"
    " seq bigint NOT NULL, rev bigint NOT NULL, client_msg_id text NOT NULL,"
    " author_id text NOT NULL, author_name text NOT NULL, author_role"
    " integer NOT NULL, body text NOT NULL, created_ms bigint NOT NULL,"
    " edited_ms bigint NOT NULL DEFAULT 0, deleted boolean NOT NULL DEFAULT"
    " false, PRIMARY KEY(room_id, seq));"
    "CREATE UNIQUE INDEX messages_rev ON messages(room_id, rev);"
    "CREATE UNIQUE INDEX messages_client_id"
    "  ON messages(room_id, author_id, client_msg_id);"
    "INSERT INTO rooms(name, head_seq, head_rev, created_ms)"
    " VALUES('old', 2, 2, 1);"
    "INSERT INTO messages VALUES(1, 1, 1, 'c1', 'ada', 'Ada', 1, 'hi', 1,"
    " 0, false), (1, 2, 2, 'c2', 'ada', 'Ada', 1, 'there', 1, 0, false);";

static void test_migrate_v1(void)
{
    char t[4200];
    target(t, sizeof t);
    CU_ASSERT_FATAL(t[0] != '\0');
    if (g_admin) {
        PGconn *c = PQconnectdb(t);
        CU_ASSERT_EQUAL_FATAL(PQstatus(c), CONNECTION_OK);
        CU_ASSERT_EQUAL(pg_run_sql(c, v1_pg), 0);
        PQfinish(c);
    } else {
        sqlite3 *db;
        CU_ASSERT_EQUAL_FATAL(sqlite3_open(t, &db), SQLITE_OK);
        CU_ASSERT_EQUAL(sqlite3_exec(db, v1_sqlite, NULL, NULL, NULL),
                        SQLITE_OK);
        sqlite3_close(db);
    }

    store *s = open_target(t);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    parley_room r;
    parley_msg m;
    CU_ASSERT_EQUAL(store_room_get(s, "old", &r), PARLEY_OK);
    CU_ASSERT_EQUAL(r.head_seq, 2);
    CU_ASSERT_EQUAL(r.visibility, PARLEY_VIS_OPEN);
    CU_ASSERT_EQUAL(r.mode, PARLEY_MODE_OPEN);
    CU_ASSERT_STRING_EQUAL(r.title, "");
    CU_ASSERT_EQUAL(store_get(s, "old", 2, &m), PARLEY_OK);
    CU_ASSERT_STRING_EQUAL(m.body, "there");
    CU_ASSERT_EQUAL(post(s, "old", &BOB, "c1", "new", &m), PARLEY_OK);
    CU_ASSERT_EQUAL(m.seq, 3);
    CU_ASSERT_EQUAL(
        store_sanction_set(s, "old", "ada", STORE_SANCTION_MUTE, 1, 0, NULL),
        PARLEY_OK);
    store_close(s);
}

/* ---- main -------------------------------------------------------------- */

static int rm_entry(const char *p, const struct stat *sb, int flag,
                    struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

int main(int argc, char **argv)
{
    const char *engine = argc > 1 ? argv[1] : "sqlite";
    if (strcmp(engine, "postgres") == 0) {
        g_pg_host = getenv("PARLEY_PG_HOST");
        g_pg_port = getenv("PARLEY_PG_PORT");
        g_pg_user = getenv("PARLEY_PG_USER");
        if (!g_pg_host || !g_pg_port || !g_pg_user) {
            fprintf(stderr,
                    "%s postgres: PARLEY_PG_HOST, _PORT and _USER "
                    "name the server (tests/pg/pgtmp exec)\n",
                    argv[0]);
            return 2;
        }
        char admin[1024];
        pg_uri(admin, sizeof admin, "postgres");
        g_admin = PQconnectdb(admin);
        if (PQstatus(g_admin) != CONNECTION_OK) {
            fprintf(stderr, "connect %s: %s", admin, PQerrorMessage(g_admin));
            PQfinish(g_admin);
            return 2;
        }
    } else if (strcmp(engine, "sqlite") != 0) {
        fprintf(stderr, "usage: %s [sqlite|postgres]\n", argv[0]);
        return 2;
    }
    snprintf(g_dir, sizeof g_dir, "%s/parley-rooms-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(g_dir)) return 1;
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite suite = CU_add_suite("store rooms", NULL, NULL);
    CU_add_test(suite, "settings on create and update", test_settings);
    CU_add_test(suite, "members and standing", test_members_and_standing);
    CU_add_test(suite, "the action log", test_actions);
    CU_add_test(suite, "room lists with prefix and standing",
                test_room_list_for);
    CU_add_test(suite, "deleting a room, and its name again", test_room_delete);
    CU_add_test(suite, "erasing a user's messages", test_erase_user);
    CU_add_test(suite, "read state and unread counts", test_read_state);
    CU_add_test(suite, "unread counts follow every change",
                test_unread_follows_changes);
    CU_add_test(suite, "moderation in a group commit rolled back",
                test_rollback);
    CU_add_test(suite, "migration from schema 1", test_migrate_v1);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures();
    CU_cleanup_registry();
    nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (g_admin) PQfinish(g_admin);
    return failed ? 1 : 0;
}
