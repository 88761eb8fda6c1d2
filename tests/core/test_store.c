/* test_store.c: CUnit tests of the history store (store.h) on each engine:
 * seq/rev density, idempotency, paging in every direction, catch-up
 * convergence, permissions, input limits, reopening, schema versions, group
 * commit and concurrent writers. One suite, run per engine:
 *
 *   test_core_store [sqlite]   real database files in a fresh temp dir
 *   test_core_store postgres   a fresh database per test on the PostgreSQL
 *                              that PARLEY_PG_HOST / _PORT / _USER name
 *                              (tests/pg/pgtmp starts one)
 *
 * The engine fixture (engine_fx) makes a fresh target and reads the
 * database behind the store's back. Besides the shared tests each engine has
 * its own: for SQLite, fsyncs counted under a VFS and a full disk; for
 * PostgreSQL, WAL flushes counted by the server, several processes and
 * connections in one room, concurrent duplicates, a lost connection, and
 * migrations of an empty database. */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
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
static const parley_author ORG = {"olga", "Olga (host)", PARLEY_ROLE_ORGANIZER};

/* ---- engines ----------------------------------------------------------- */

typedef struct engine_fx {
    const char *name;
    /* Writes a fresh, empty target (a path, a URI) into out. */
    int (*make_target)(char *out, size_t len);
    /* Runs sql on the database behind target; the first column of the
     * first row (if any) into *out. 0 on success. */
    int (*sql_int)(const char *target, const char *sql, int *out);
    const char *version_get; /* reads the schema version */
    const char *version_set; /* sets it (printf format of an int) */
} engine_fx;

static const engine_fx *E;

static int sqlite_make_target(char *out, size_t len)
{
    snprintf(out, len, "%s/t%02d.db", g_dir, ++g_db_no);
    return 0;
}

static int sqlite_int(const char *path, const char *sql, int *out)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) *out = sqlite3_column_int(st, 0);
        rc = (rc == SQLITE_ROW || rc == SQLITE_DONE) ? SQLITE_OK : rc;
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return rc;
}

static int sqlite_text(const char *path, const char *sql, char *out, size_t len)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            snprintf(out, len, "%s", (const char *)sqlite3_column_text(st, 0));
        rc = rc == SQLITE_ROW ? SQLITE_OK : SQLITE_ERROR;
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return rc;
}

static const engine_fx fx_sqlite = {
    .name = "sqlite",
    .make_target = sqlite_make_target,
    .sql_int = sqlite_int,
    .version_get = "PRAGMA user_version",
    .version_set = "PRAGMA user_version = %d",
};

/* PostgreSQL: where the server is, and an admin connection (to database
 * "postgres") that creates a database per target and looks behind the
 * store's back. */
static const char *g_pg_host, *g_pg_port, *g_pg_user;
static PGconn *g_admin;

static void pg_uri(char *out, size_t len, const char *db, const char *extra)
{
    snprintf(out, len, "postgres://%s@/%s?host=%s&port=%s%s", g_pg_user, db,
             g_pg_host, g_pg_port, extra ? extra : "");
}

/* Runs sql on the admin connection; the first value of the first row, if
 * any, into out. 0 on success. */
static int admin_text(const char *sql, char *out, size_t len)
{
    PGresult *r = PQexec(g_admin, sql);
    int st = PQresultStatus(r), rc = -1;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        rc = 0;
        if (out && PQntuples(r) > 0)
            snprintf(out, len, "%s", PQgetvalue(r, 0, 0));
    } else {
        fprintf(stderr, "admin: %s: %s", sql, PQerrorMessage(g_admin));
    }
    PQclear(r);
    return rc;
}

static long long admin_int(const char *sql)
{
    char v[64] = "-1";
    if (admin_text(sql, v, sizeof v) != 0) return -1;
    return atoll(v);
}

static int pg_make_db(char *name, size_t len, const char *opts)
{
    char sql[256];
    snprintf(name, len, "parley_t%d_%02d", (int)getpid(), ++g_db_no);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s %s", name, opts ? opts : "");
    return admin_text(sql, NULL, 0);
}

static int pg_make_target(char *out, size_t len)
{
    char db[64];
    if (pg_make_db(db, sizeof db, NULL) != 0) return -1;
    pg_uri(out, len, db, NULL);
    return 0;
}

static int pg_int(const char *target, const char *sql, int *out)
{
    PGconn *c = PQconnectdb(target);
    int rc = -1;
    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *r = PQexec(c, sql);
        int st = PQresultStatus(r);
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
            rc = 0;
            if (PQntuples(r) > 0) *out = atoi(PQgetvalue(r, 0, 0));
        } else {
            fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
        }
        PQclear(r);
    } else {
        fprintf(stderr, "connect %s: %s", target, PQerrorMessage(c));
    }
    PQfinish(c);
    return rc;
}

static const engine_fx fx_pg = {
    .name = "postgres",
    .make_target = pg_make_target,
    .sql_int = pg_int,
    .version_get = "SELECT version FROM parley_schema",
    .version_set = "UPDATE parley_schema SET version = %d",
};

static int sql_int(const char *target, const char *sql, int *out)
{
    return E->sql_int(target, sql, out);
}

static int set_version(const char *target, int v)
{
    char sql[128];
    int ignored;
    snprintf(sql, sizeof sql, E->version_set, v);
    return sql_int(target, sql, &ignored);
}

/* ---- fixtures ---------------------------------------------------------- */

static void db_path(char *out, size_t len)
{
    if (E->make_target(out, len) != 0) out[0] = '\0';
}

static store *open_at(const char *path, const store_opts *opts)
{
    store *s = NULL;
    char err[256];
    parley_err e = store_open(path, opts, &s, err, sizeof err);
    if (e != PARLEY_OK) fprintf(stderr, "store_open %s: %s\n", path, err);
    return e == PARLEY_OK ? s : NULL;
}

/* A fresh database with room "r" (and its path in path, if given). */
static store *fresh(char *path, size_t len, const store_opts *opts)
{
    char p[4200];
    int created = 0;
    if (path == NULL) {
        path = p;
        len = sizeof p;
    }
    db_path(path, len);
    store *s = open_at(path, opts);
    if (s && store_room_create(s, "r", 1000, NULL, &created) != PARLEY_OK) {
        store_close(s);
        return NULL;
    }
    return s;
}

static parley_err post(store *s, const char *room, const parley_author *a,
                       const char *id, const char *body, parley_msg *out,
                       int *dup)
{
    return store_append(s, room, a, id, body, strlen(body), 2000, out, dup);
}

/* Appends n messages by ADA with ids "<prefix><i>" and bodies "body <i>". */
static int post_n(store *s, const char *room, const char *prefix, int n)
{
    char id[64], body[64];
    for (int i = 1; i <= n; i++) {
        snprintf(id, sizeof id, "%s%d", prefix, i);
        snprintf(body, sizeof body, "body %d", i);
        if (post(s, room, &ADA, id, body, NULL, NULL) != PARLEY_OK) return -1;
    }
    return 0;
}

/* A page as plain data (copies, since list strings die with the callback). */
typedef struct row {
    uint64_t seq, rev;
    char client_id[RULES_CLIENT_MSG_ID_MAX + 1];
    char author[RULES_AUTHOR_ID_MAX + 1];
    char name[RULES_DISPLAY_NAME_MAX + 1];
    int role;
    char body[256];
    int64_t created, edited;
    int deleted;
} row;

typedef struct page {
    row rows[1100];
    unsigned n;
    unsigned stop_after; /* 0: never stop */
    int room_mismatch;
} page;

static void row_from(row *r, const parley_msg *m)
{
    memset(r, 0, sizeof *r);
    r->seq = m->seq;
    r->rev = m->rev;
    snprintf(r->client_id, sizeof r->client_id, "%s", m->client_msg_id);
    snprintf(r->author, sizeof r->author, "%s", m->author.id);
    snprintf(r->name, sizeof r->name, "%s", m->author.display_name);
    r->role = m->author.role;
    snprintf(r->body, sizeof r->body, "%.*s", (int)m->body_len, m->body);
    r->created = m->created_at_ms;
    r->edited = m->edited_at_ms;
    r->deleted = m->deleted;
}

static int collect(const parley_msg *m, void *ud)
{
    page *p = ud;
    if (p->n < sizeof p->rows / sizeof p->rows[0]) row_from(&p->rows[p->n], m);
    p->n++;
    if (m->room == NULL || strcmp(m->room, "r") != 0) p->room_mismatch = 1;
    return p->stop_after && p->n >= p->stop_after;
}

static parley_err list(store *s, store_dir dir, uint64_t cursor, unsigned limit,
                       page *p, parley_room *room, int *more)
{
    memset(p, 0, sizeof *p);
    return store_list(s, "r", dir, cursor, limit, collect, p, room, more);
}

static page g_page, g_page2; /* large; kept off the stack */

static int rows_equal(const row *a, const row *b)
{
    return memcmp(a, b, sizeof *a) == 0;
}

/* ---- rooms ------------------------------------------------------------- */

static void test_rooms(void)
{
    char path[4200];
    parley_room r;
    int created = -1, more = -1;
    parley_msg m;

    db_path(path, sizeof path);
    store *s = open_at(path, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);

    CU_ASSERT_EQUAL(store_room_create(s, "lobby", 5, &r, &created), PARLEY_OK);
    CU_ASSERT_EQUAL(created, 1);
    CU_ASSERT_STRING_EQUAL(r.name, "lobby");
    CU_ASSERT_EQUAL(r.head_seq, 0);
    CU_ASSERT_EQUAL(r.head_rev, 0);
    CU_ASSERT_EQUAL(store_room_create(s, "lobby", 6, &r, &created), PARLEY_OK);
    CU_ASSERT_EQUAL(created, 0);
    CU_ASSERT_EQUAL(store_room_get(s, "lobby", &r), PARLEY_OK);
    CU_ASSERT_STRING_EQUAL(r.name, "lobby");

    CU_ASSERT_EQUAL(store_room_get(s, "nope", &r), PARLEY_ERR_ROOM_NOT_FOUND);
    CU_ASSERT_EQUAL(store_room_get(s, "no pe", &r), PARLEY_ERR_ROOM_INVALID);
    CU_ASSERT_EQUAL(store_room_create(s, "", 1, &r, &created),
                    PARLEY_ERR_ROOM_INVALID);
    CU_ASSERT_EQUAL(store_room_create(s, "a/b", 1, &r, &created),
                    PARLEY_ERR_ROOM_INVALID);
    {
        char name[RULES_ROOM_MAX + 2];
        memset(name, 'n', sizeof name);
        name[RULES_ROOM_MAX + 1] = '\0'; /* 65 bytes */
        CU_ASSERT_EQUAL(store_room_create(s, name, 1, &r, &created),
                        PARLEY_ERR_ROOM_INVALID);
        name[RULES_ROOM_MAX] = '\0'; /* 64 bytes */
        CU_ASSERT_EQUAL(store_room_create(s, name, 1, &r, &created), PARLEY_OK);
        CU_ASSERT_EQUAL(created, 1);
    }
    CU_ASSERT_EQUAL(store_room_get(s, "nope", &r), PARLEY_ERR_ROOM_NOT_FOUND);

    /* Every call on an unknown room says so, and invalid names say that. */
    CU_ASSERT_EQUAL(post(s, "nope", &ADA, "1", "hi", &m, NULL),
                    PARLEY_ERR_ROOM_NOT_FOUND);
    CU_ASSERT_EQUAL(store_get(s, "nope", 1, &m), PARLEY_ERR_ROOM_NOT_FOUND);
    CU_ASSERT_EQUAL(store_edit(s, "nope", 1, &ADA, "x", 1, 1, &m),
                    PARLEY_ERR_ROOM_NOT_FOUND);
    CU_ASSERT_EQUAL(store_delete(s, "nope", 1, &ADA, 1, &m),
                    PARLEY_ERR_ROOM_NOT_FOUND);
    CU_ASSERT_EQUAL(
        store_list(s, "nope", STORE_LATEST, 0, 10, collect, &g_page, &r, &more),
        PARLEY_ERR_ROOM_NOT_FOUND);
    CU_ASSERT_EQUAL(post(s, "bad room", &ADA, "1", "hi", &m, NULL),
                    PARLEY_ERR_ROOM_INVALID);
    CU_ASSERT_EQUAL(store_list(s, "bad room", STORE_LATEST, 0, 10, collect,
                               &g_page, &r, &more),
                    PARLEY_ERR_ROOM_INVALID);
    CU_ASSERT_EQUAL(store_get(s, "", 1, &m), PARLEY_ERR_ROOM_INVALID);

    /* An empty room lists nothing. */
    memset(&g_page, 0, sizeof g_page);
    CU_ASSERT_EQUAL(store_list(s, "lobby", STORE_LATEST, 0, 10, collect,
                               &g_page, &r, &more),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(g_page.n, 0);
    CU_ASSERT_EQUAL(more, 0);
    CU_ASSERT_STRING_EQUAL(r.name, "lobby");
    store_close(s);
}

/* ---- seq and rev ------------------------------------------------------- */

static void test_seq_rev_dense(void)
{
    parley_msg m;
    parley_room r;
    int dup = -1, more;
    char id[16];
    store *s = fresh(NULL, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);

    for (int i = 1; i <= 20; i++) {
        snprintf(id, sizeof id, "c%d", i);
        CU_ASSERT_EQUAL(store_append(s, "r", i % 2 ? &ADA : &BOB, id, "hello",
                                     5, 100 + i, &m, &dup),
                        PARLEY_OK);
        CU_ASSERT_EQUAL(dup, 0);
        CU_ASSERT_EQUAL(m.seq, (uint64_t)i);
        CU_ASSERT_EQUAL(m.rev, (uint64_t)i);
        CU_ASSERT_STRING_EQUAL(m.room, "r");
        CU_ASSERT_STRING_EQUAL(m.client_msg_id, id);
        CU_ASSERT_STRING_EQUAL(m.author.id, i % 2 ? "ada" : "bob");
        CU_ASSERT_EQUAL(m.author.role, PARLEY_ROLE_PARTICIPANT);
        CU_ASSERT_EQUAL(m.body_len, 5);
        CU_ASSERT_STRING_EQUAL(m.body, "hello");
        CU_ASSERT_EQUAL(m.created_at_ms, 100 + i);
        CU_ASSERT_EQUAL(m.edited_at_ms, 0);
        CU_ASSERT_EQUAL(m.deleted, 0);
    }
    CU_ASSERT_EQUAL(store_room_get(s, "r", &r), PARLEY_OK);
    CU_ASSERT_EQUAL(r.head_seq, 20);
    CU_ASSERT_EQUAL(r.head_rev, 20);

    /* An edit and a delete take revs 21 and 22, keeping their seqs. */
    CU_ASSERT_EQUAL(store_edit(s, "r", 3, &ADA, "changed", 7, 500, &m),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(m.seq, 3);
    CU_ASSERT_EQUAL(m.rev, 21);
    CU_ASSERT_EQUAL(m.edited_at_ms, 500);
    CU_ASSERT_EQUAL(m.created_at_ms, 103);
    CU_ASSERT_EQUAL(store_delete(s, "r", 6, &BOB, 600, &m), PARLEY_OK);
    CU_ASSERT_EQUAL(m.seq, 6);
    CU_ASSERT_EQUAL(m.rev, 22);
    CU_ASSERT_EQUAL(store_room_get(s, "r", &r), PARLEY_OK);
    CU_ASSERT_EQUAL(r.head_seq, 20);
    CU_ASSERT_EQUAL(r.head_rev, 22);

    /* Another room counts on its own. */
    CU_ASSERT_EQUAL(store_room_create(s, "other", 1, NULL, NULL), PARLEY_OK);
    CU_ASSERT_EQUAL(post(s, "other", &ADA, "c1", "x", &m, &dup), PARLEY_OK);
    CU_ASSERT_EQUAL(m.seq, 1);
    CU_ASSERT_EQUAL(m.rev, 1);
    CU_ASSERT_EQUAL(dup, 0);

    /* By seq: 1..20 ascending; by rev: ascending, each message once. */
    CU_ASSERT_EQUAL(list(s, STORE_LATEST, 0, 1000, &g_page, &r, &more),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(g_page.n, 20);
    for (unsigned i = 0; i < g_page.n; i++)
        CU_ASSERT_EQUAL(g_page.rows[i].seq, i + 1);
    CU_ASSERT_EQUAL(list(s, STORE_AFTER_REV, 0, 1000, &g_page, &r, &more),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(g_page.n, 20);
    CU_ASSERT_EQUAL(g_page.rows[18].seq, 3);
    CU_ASSERT_EQUAL(g_page.rows[18].rev, 21);
    CU_ASSERT_EQUAL(g_page.rows[19].seq, 6);
    CU_ASSERT_EQUAL(g_page.rows[19].rev, 22);
    for (unsigned i = 1; i < g_page.n; i++)
        CU_ASSERT_TRUE(g_page.rows[i].rev > g_page.rows[i - 1].rev);
    CU_ASSERT_EQUAL(g_page.room_mismatch, 0);
    store_close(s);
}

/* ---- idempotency ------------------------------------------------------- */

static void test_idempotency(void)
{
    parley_msg m;
    parley_room r;
    int dup = -1, more;
    store *s = fresh(NULL, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);

    CU_ASSERT_EQUAL(post(s, "r", &ADA, "same", "first", &m, &dup), PARLEY_OK);
    CU_ASSERT_EQUAL(dup, 0);
    CU_ASSERT_EQUAL(m.seq, 1);
    /* Same author, same id: the original comes back, nothing is stored. */
    CU_ASSERT_EQUAL(post(s, "r", &ADA, "same", "second try", &m, &dup),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(dup, 1);
    CU_ASSERT_EQUAL(m.seq, 1);
    CU_ASSERT_EQUAL(m.rev, 1);
    CU_ASSERT_STRING_EQUAL(m.body, "first");
    CU_ASSERT_STRING_EQUAL(m.client_msg_id, "same");
    CU_ASSERT_STRING_EQUAL(m.author.id, "ada");
    CU_ASSERT_EQUAL(m.created_at_ms, 2000);
    /* Another author may use the same id. */
    CU_ASSERT_EQUAL(post(s, "r", &BOB, "same", "bob's", &m, &dup), PARLEY_OK);
    CU_ASSERT_EQUAL(dup, 0);
    CU_ASSERT_EQUAL(m.seq, 2);
    CU_ASSERT_EQUAL(post(s, "r", &BOB, "same", "bob's again", &m, &dup),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(dup, 1);
    CU_ASSERT_EQUAL(m.seq, 2);
    CU_ASSERT_STRING_EQUAL(m.body, "bob's");
    /* The same id in another room is another message. */
    CU_ASSERT_EQUAL(store_room_create(s, "r2", 1, NULL, NULL), PARLEY_OK);
    CU_ASSERT_EQUAL(post(s, "r2", &ADA, "same", "elsewhere", &m, &dup),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(dup, 0);
    CU_ASSERT_EQUAL(m.seq, 1);

    CU_ASSERT_EQUAL(list(s, STORE_LATEST, 0, 100, &g_page, &r, &more),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(g_page.n, 2);
    CU_ASSERT_EQUAL(r.head_seq, 2);
    CU_ASSERT_EQUAL(r.head_rev, 2);

    /* A repeat after an edit returns the message as it is now, no new rev. */
    CU_ASSERT_EQUAL(store_edit(s, "r", 1, &ADA, "edited", 6, 3000, &m),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(post(s, "r", &ADA, "same", "third try", &m, &dup),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(dup, 1);
    CU_ASSERT_EQUAL(m.seq, 1);
    CU_ASSERT_EQUAL(m.rev, 3);
    CU_ASSERT_STRING_EQUAL(m.body, "edited");
    CU_ASSERT_EQUAL(store_room_get(s, "r", &r), PARLEY_OK);
    CU_ASSERT_EQUAL(r.head_rev, 3);
    store_close(s);
}

/* ---- paging ------------------------------------------------------------ */

/* Checks a page holds exactly the seqs lo..hi ascending. */
static void expect_seqs(const page *p, uint64_t lo, uint64_t hi)
{
    CU_ASSERT_EQUAL(p->n, hi >= lo ? hi - lo + 1 : 0);
    for (unsigned i = 0; i < p->n && i < 1100; i++)
        CU_ASSERT_EQUAL(p->rows[i].seq, lo + i);
}

static void test_list_cursors(void)
{
    parley_room r;
    int more = -1;
    store *s = fresh(NULL, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL_FATAL(post_n(s, "r", "m", 10), 0);

    /* LATEST */
    CU_ASSERT_EQUAL(list(s, STORE_LATEST, 0, 3, &g_page, &r, &more), PARLEY_OK);
    expect_seqs(&g_page, 8, 10);
    CU_ASSERT_EQUAL(more, 1);
    CU_ASSERT_EQUAL(r.head_seq, 10);
    CU_ASSERT_EQUAL(r.head_rev, 10);
    CU_ASSERT_STRING_EQUAL(r.name, "r");
    CU_ASSERT_EQUAL(list(s, STORE_LATEST, 0, 9, &g_page, &r, &more), PARLEY_OK);
    expect_seqs(&g_page, 2, 10);
    CU_ASSERT_EQUAL(more, 1);
    CU_ASSERT_EQUAL(list(s, STORE_LATEST, 0, 10, &g_page, &r, &more),
                    PARLEY_OK);
    expect_seqs(&g_page, 1, 10);
    CU_ASSERT_EQUAL(more, 0);
    CU_ASSERT_EQUAL(list(s, STORE_LATEST, 0, 11, &g_page, &r, &more),
                    PARLEY_OK);
    expect_seqs(&g_page, 1, 10);
    CU_ASSERT_EQUAL(more, 0);

    /* BEFORE_SEQ */
    CU_ASSERT_EQUAL(list(s, STORE_BEFORE_SEQ, 8, 3, &g_page, &r, &more),
                    PARLEY_OK);
    expect_seqs(&g_page, 5, 7);
    CU_ASSERT_EQUAL(more, 1);
    CU_ASSERT_EQUAL(list(s, STORE_BEFORE_SEQ, 4, 3, &g_page, &r, &more),
                    PARLEY_OK);
    expect_seqs(&g_page, 1, 3);
    CU_ASSERT_EQUAL(more, 0);
    CU_ASSERT_EQUAL(list(s, STORE_BEFORE_SEQ, 4, 2, &g_page, &r, &more),
                    PARLEY_OK);
    expect_seqs(&g_page, 2, 3);
    CU_ASSERT_EQUAL(more, 1);
    CU_ASSERT_EQUAL(list(s, STORE_BEFORE_SEQ, 2, 5, &g_page, &r, &more),
                    PARLEY_OK);
    expect_seqs(&g_page, 1, 1);
    CU_ASSERT_EQUAL(more, 0);
    CU_ASSERT_EQUAL(list(s, STORE_BEFORE_SEQ, 1, 5, &g_page, &r, &more),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(g_page.n, 0);
    CU_ASSERT_EQUAL(more, 0);
    CU_ASSERT_EQUAL(list(s, STORE_BEFORE_SEQ, 0, 5, &g_page, &r, &more),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(g_page.n, 0);
    CU_ASSERT_EQUAL(more, 0);
    CU_ASSERT_EQUAL(list(s, STORE_BEFORE_SEQ, 1000, 3, &g_page, &r, &more),
                    PARLEY_OK);
    expect_seqs(&g_page, 8, 10);
    CU_ASSERT_EQUAL(more, 1);
    CU_ASSERT_EQUAL(
        list(s, STORE_BEFORE_SEQ, UINT64_MAX, 3, &g_page, &r, &more),
        PARLEY_OK);
    expect_seqs(&g_page, 8, 10);

    /* Scrolling back page by page visits every message once. */
    {
        uint64_t cursor = 11, seen = 0;
        int pages = 0;
        do {
            CU_ASSERT_EQUAL_FATAL(
                list(s, STORE_BEFORE_SEQ, cursor, 4, &g_page, &r, &more),
                PARLEY_OK);
            CU_ASSERT_TRUE_FATAL(g_page.n > 0);
            CU_ASSERT_EQUAL(g_page.rows[g_page.n - 1].seq, cursor - 1);
            seen += g_page.n;
            cursor = g_page.rows[0].seq;
            pages++;
        } while (more && pages < 10);
        CU_ASSERT_EQUAL(seen, 10);
        CU_ASSERT_EQUAL(pages, 3);
        CU_ASSERT_EQUAL(cursor, 1);
    }

    /* AFTER_REV, with has_more at the exact boundary. */
    CU_ASSERT_EQUAL(list(s, STORE_AFTER_REV, 0, 4, &g_page, &r, &more),
                    PARLEY_OK);
    expect_seqs(&g_page, 1, 4);
    CU_ASSERT_EQUAL(more, 1);
    CU_ASSERT_EQUAL(list(s, STORE_AFTER_REV, 6, 4, &g_page, &r, &more),
                    PARLEY_OK);
    expect_seqs(&g_page, 7, 10);
    CU_ASSERT_EQUAL(more, 0);
    CU_ASSERT_EQUAL(list(s, STORE_AFTER_REV, 5, 4, &g_page, &r, &more),
                    PARLEY_OK);
    expect_seqs(&g_page, 6, 9);
    CU_ASSERT_EQUAL(more, 1);
    CU_ASSERT_EQUAL(list(s, STORE_AFTER_REV, 7, 4, &g_page, &r, &more),
                    PARLEY_OK);
    expect_seqs(&g_page, 8, 10);
    CU_ASSERT_EQUAL(more, 0);
    CU_ASSERT_EQUAL(list(s, STORE_AFTER_REV, 10, 4, &g_page, &r, &more),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(g_page.n, 0);
    CU_ASSERT_EQUAL(more, 0);
    CU_ASSERT_EQUAL(list(s, STORE_AFTER_REV, UINT64_MAX, 4, &g_page, &r, &more),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(g_page.n, 0);

    /* Limits: 0 is the default (50), 1000 the most, 1001 refused. */
    CU_ASSERT_EQUAL(list(s, STORE_LATEST, 0, 1000, &g_page, &r, &more),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(list(s, STORE_LATEST, 0, 1001, &g_page, &r, &more),
                    PARLEY_ERR_BAD_CURSOR);
    CU_ASSERT_EQUAL(list(s, STORE_AFTER_REV, 0, 1001, &g_page, &r, &more),
                    PARLEY_ERR_BAD_CURSOR);
    CU_ASSERT_EQUAL(list(s, (store_dir)7, 0, 10, &g_page, &r, &more),
                    PARLEY_ERR_BAD_CURSOR);
    CU_ASSERT_EQUAL_FATAL(post_n(s, "r", "n", 45), 0);
    CU_ASSERT_EQUAL(list(s, STORE_LATEST, 0, 0, &g_page, &r, &more), PARLEY_OK);
    expect_seqs(&g_page, 6, 55);
    CU_ASSERT_EQUAL(more, 1);
    CU_ASSERT_EQUAL(list(s, STORE_AFTER_REV, 0, 0, &g_page, &r, &more),
                    PARLEY_OK);
    expect_seqs(&g_page, 1, 50);
    CU_ASSERT_EQUAL(more, 1);

    /* The callback may stop early. */
    memset(&g_page, 0, sizeof g_page);
    g_page.stop_after = 2;
    CU_ASSERT_EQUAL(store_list(s, "r", STORE_AFTER_REV, 50, 10, collect,
                               &g_page, &r, &more),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(g_page.n, 2);
    CU_ASSERT_EQUAL(g_page.rows[1].rev, 52);
    CU_ASSERT_EQUAL(more, 1); /* 53..55 remain */
    memset(&g_page, 0, sizeof g_page);
    g_page.stop_after = 5;
    CU_ASSERT_EQUAL(store_list(s, "r", STORE_AFTER_REV, 50, 10, collect,
                               &g_page, &r, &more),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(g_page.n, 5);
    CU_ASSERT_EQUAL(more, 0); /* stopped on the last one */
    memset(&g_page, 0, sizeof g_page);
    g_page.stop_after = 1;
    CU_ASSERT_EQUAL(
        store_list(s, "r", STORE_LATEST, 0, 10, collect, &g_page, &r, &more),
        PARLEY_OK);
    CU_ASSERT_EQUAL(g_page.n, 1);
    CU_ASSERT_EQUAL(g_page.rows[0].seq, 46);
    /* The handle still works after an early stop (statements were reset). */
    CU_ASSERT_EQUAL(post_n(s, "r", "o", 1), 0);
    CU_ASSERT_EQUAL(store_room_get(s, "r", &r), PARLEY_OK);
    CU_ASSERT_EQUAL(r.head_seq, 56);
    /* NULL room_out / has_more / fn are allowed. */
    CU_ASSERT_EQUAL(
        store_list(s, "r", STORE_LATEST, 0, 5, NULL, NULL, NULL, NULL),
        PARLEY_OK);
    store_close(s);
}

/* ---- one snapshot per page --------------------------------------------- */

typedef struct intruder {
    store *other; /* a second handle on the same file */
    unsigned n;
    parley_err e;
} intruder;

/* While handle A pages, handle B commits a new message and an edit. */
static int intrude(const parley_msg *m, void *ud)
{
    intruder *x = ud;
    (void)m;
    if (x->n++ == 0) {
        x->e =
            post(x->other, "r", &BOB, "late", "written mid-page", NULL, NULL);
        if (x->e == PARLEY_OK)
            x->e = store_edit(x->other, "r", 5, &ORG, "edited mid-page", 15, 9,
                              NULL);
    }
    return 0;
}

typedef struct pacer {
    const char *path;
    volatile int done;
    parley_err e;
} pacer;

static void *pacer_main(void *arg)
{
    pacer *p = arg;
    char id[32];
    store *s = open_at(p->path, NULL);
    if (s == NULL) {
        p->e = PARLEY_ERR_IO;
        p->done = 1;
        return NULL;
    }
    for (int i = 0; i < 200 && p->e == PARLEY_OK; i++) {
        snprintf(id, sizeof id, "w%d", i);
        p->e = post(s, "r", &BOB, id, id, NULL, NULL);
        if (p->e == PARLEY_OK && i % 3 == 0)
            p->e =
                store_edit(s, "r", (uint64_t)i / 2 + 1, &ORG, "re", 2, i, NULL);
    }
    store_close(s);
    __atomic_store_n(&p->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

typedef struct revcheck {
    uint64_t max_rev;
    unsigned n;
} revcheck;

static int revcheck_fn(const parley_msg *m, void *ud)
{
    revcheck *c = ud;
    if (m->rev > c->max_rev) c->max_rev = m->rev;
    c->n++;
    return 0;
}

static void test_list_snapshot(void)
{
    char path[4200];
    parley_room r;
    int more = -1;
    intruder x = {0};
    store *s = fresh(path, sizeof path, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL_FATAL(post_n(s, "r", "s", 6), 0);
    x.other = open_at(path, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x.other);

    /* The page and the heads come from the snapshot the list started in. */
    CU_ASSERT_EQUAL(
        store_list(s, "r", STORE_AFTER_REV, 0, 3, intrude, &x, &r, &more),
        PARLEY_OK);
    CU_ASSERT_EQUAL(x.e, PARLEY_OK);
    CU_ASSERT_EQUAL(x.n, 3);
    CU_ASSERT_EQUAL(r.head_seq, 6);
    CU_ASSERT_EQUAL(r.head_rev, 6);
    CU_ASSERT_EQUAL(more, 1);

    x.n = 1; /* no more intrusions */
    CU_ASSERT_EQUAL(
        store_list(s, "r", STORE_AFTER_REV, 3, 10, intrude, &x, &r, &more),
        PARLEY_OK);
    CU_ASSERT_EQUAL(x.n, 1 + 4); /* 4, 6, 7 (new), 5 (edited) */
    CU_ASSERT_EQUAL(r.head_seq, 7);
    CU_ASSERT_EQUAL(r.head_rev, 8);
    CU_ASSERT_EQUAL(more, 0);
    store_close(x.other);

    /* While another handle writes, every catch-up page agrees with the heads
     * it comes with: nothing newer than head_rev, and a final page ends
     * exactly at head_rev. */
    pacer p = {.path = path};
    pthread_t t;
    unsigned checks = 0, bad = 0;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, pacer_main, &p), 0);
    while (!__atomic_load_n(&p.done, __ATOMIC_SEQ_CST) && checks < 100000) {
        parley_room h;
        revcheck c = {0, 0};
        uint64_t from = r.head_rev > 4 ? r.head_rev - 4 : 0;
        if (store_list(s, "r", STORE_AFTER_REV, from, 1000, revcheck_fn, &c, &h,
                       &more) != PARLEY_OK) {
            bad++;
            break;
        }
        if (c.max_rev > h.head_rev || (!more && c.n && c.max_rev != h.head_rev))
            bad++;
        r = h;
        checks++;
    }
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(p.e, PARLEY_OK);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_TRUE(checks > 0);
    store_close(s);
}

/* ---- catch-up convergence ---------------------------------------------- */

#define MAXSEQ 64
typedef struct view {
    row by_seq[MAXSEQ + 1]; /* index = seq */
    uint64_t last_rev;
} view;

/* Applies one message to a reader's view: by seq, only if newer. */
static void view_apply(view *v, const row *r)
{
    CU_ASSERT_TRUE_FATAL(r->seq >= 1 && r->seq <= MAXSEQ);
    if (r->rev > v->by_seq[r->seq].rev) v->by_seq[r->seq] = *r;
    if (r->rev > v->last_rev) v->last_rev = r->rev;
}

static void view_apply_msg(view *v, const parley_msg *m)
{
    row r;
    row_from(&r, m);
    view_apply(v, &r);
}

/* The offline reader's catch-up: pages of AFTER_REV from its last rev. */
static void view_catch_up(store *s, view *v, unsigned page_size)
{
    parley_room r;
    int more = 1, pages = 0;
    while (more && pages < 100) {
        uint64_t from = v->last_rev;
        CU_ASSERT_EQUAL_FATAL(
            list(s, STORE_AFTER_REV, from, page_size, &g_page2, &r, &more),
            PARLEY_OK);
        for (unsigned i = 0; i < g_page2.n; i++) {
            CU_ASSERT_TRUE(g_page2.rows[i].rev > from);
            if (i)
                CU_ASSERT_TRUE(g_page2.rows[i].rev > g_page2.rows[i - 1].rev);
            view_apply(v, &g_page2.rows[i]);
        }
        pages++;
        if (!more) CU_ASSERT_EQUAL(v->last_rev, r.head_rev);
    }
    CU_ASSERT_EQUAL(more, 0);
}

static int views_equal(const view *a, const view *b)
{
    for (int i = 0; i <= MAXSEQ; i++)
        if (!rows_equal(&a->by_seq[i], &b->by_seq[i])) return 0;
    return a->last_rev == b->last_rev;
}

static view g_live, g_offline, g_late, g_full;

static void test_catch_up_converges(void)
{
    parley_msg m;
    parley_room r;
    int more, dup;
    char id[16], body[32];
    store *s = fresh(NULL, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    memset(&g_live, 0, sizeof g_live);
    memset(&g_offline, 0, sizeof g_offline);
    memset(&g_late, 0, sizeof g_late);
    memset(&g_full, 0, sizeof g_full);

    /* Phase 1: both readers watch 8 messages. */
    for (int i = 1; i <= 8; i++) {
        snprintf(id, sizeof id, "a%d", i);
        snprintf(body, sizeof body, "first %d", i);
        CU_ASSERT_EQUAL_FATAL(
            post(s, "r", i % 3 ? &ADA : &BOB, id, body, &m, &dup), PARLEY_OK);
        view_apply_msg(&g_live, &m);
    }
    view_catch_up(s, &g_offline, 3);
    CU_ASSERT_TRUE(views_equal(&g_live, &g_offline));

    /* Phase 2: the offline reader is away; new messages, edits of old and
     * new ones, deletes, an edit then a delete, a repeat publish. The live
     * reader applies each change as it happens (as the hub would send it). */
    for (int i = 9; i <= 14; i++) {
        snprintf(id, sizeof id, "a%d", i);
        snprintf(body, sizeof body, "second %d", i);
        CU_ASSERT_EQUAL_FATAL(post(s, "r", &BOB, id, body, &m, &dup),
                              PARLEY_OK);
        view_apply_msg(&g_live, &m);
    }
    CU_ASSERT_EQUAL(store_edit(s, "r", 2, &ADA, "fixed typo", 10, 7000, &m),
                    PARLEY_OK);
    view_apply_msg(&g_live, &m);
    CU_ASSERT_EQUAL(store_edit(s, "r", 10, &ORG, "moderated", 9, 7001, &m),
                    PARLEY_OK);
    view_apply_msg(&g_live, &m);
    CU_ASSERT_EQUAL(store_delete(s, "r", 3, &BOB, 7002, &m), PARLEY_OK);
    view_apply_msg(&g_live, &m);
    CU_ASSERT_EQUAL(store_edit(s, "r", 4, &ADA, "about to go", 11, 7003, &m),
                    PARLEY_OK);
    view_apply_msg(&g_live, &m);
    CU_ASSERT_EQUAL(store_delete(s, "r", 4, &ORG, 7004, &m), PARLEY_OK);
    view_apply_msg(&g_live, &m);
    CU_ASSERT_EQUAL(store_edit(s, "r", 2, &ADA, "fixed again", 11, 7005, &m),
                    PARLEY_OK);
    view_apply_msg(&g_live, &m);
    CU_ASSERT_EQUAL(post(s, "r", &BOB, "a9", "repeat", &m, &dup), PARLEY_OK);
    CU_ASSERT_EQUAL(dup, 1);
    view_apply_msg(&g_live, &m);
    CU_ASSERT_FALSE(views_equal(&g_live, &g_offline)); /* it fell behind */

    view_catch_up(s, &g_offline, 3);
    CU_ASSERT_TRUE(views_equal(&g_live, &g_offline));
    /* Catch-up sent each changed message once: seqs 2,3,4,9..14 and 10 →
     * 9 distinct messages after rev 8. */
    CU_ASSERT_EQUAL(list(s, STORE_AFTER_REV, 8, 1000, &g_page, &r, &more),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(g_page.n, 9);
    CU_ASSERT_EQUAL(r.head_rev, 20);

    /* A reader that starts late from rev 0 converges too. */
    view_catch_up(s, &g_late, 4);
    CU_ASSERT_TRUE(views_equal(&g_live, &g_late));

    /* And all three agree with the stored state read by seq. */
    CU_ASSERT_EQUAL(list(s, STORE_LATEST, 0, 1000, &g_page, &r, &more),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(g_page.n, 14);
    for (unsigned i = 0; i < g_page.n; i++)
        view_apply(&g_full, &g_page.rows[i]);
    CU_ASSERT_TRUE(views_equal(&g_live, &g_full));

    /* Spot checks of the converged state. */
    CU_ASSERT_STRING_EQUAL(g_offline.by_seq[2].body, "fixed again");
    CU_ASSERT_EQUAL(g_offline.by_seq[3].deleted, 1);
    CU_ASSERT_STRING_EQUAL(g_offline.by_seq[3].body, "");
    CU_ASSERT_EQUAL(g_offline.by_seq[4].deleted, 1);
    CU_ASSERT_STRING_EQUAL(g_offline.by_seq[10].body, "moderated");
    CU_ASSERT_STRING_EQUAL(g_offline.by_seq[10].author, "bob");
    CU_ASSERT_STRING_EQUAL(g_offline.by_seq[9].body, "second 9");
    store_close(s);
}

/* ---- edits, deletes, permissions -------------------------------------- */

static void test_permissions(void)
{
    parley_msg m;
    parley_room r;
    store *s = fresh(NULL, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(post(s, "r", &ADA, "1", "ada's", &m, NULL), PARLEY_OK);

    /* A participant may not touch another's message. */
    CU_ASSERT_EQUAL(store_edit(s, "r", 1, &BOB, "hijack", 6, 10, &m),
                    PARLEY_ERR_PERMISSION_DENIED);
    CU_ASSERT_EQUAL(store_delete(s, "r", 1, &BOB, 10, &m),
                    PARLEY_ERR_PERMISSION_DENIED);
    CU_ASSERT_EQUAL(store_get(s, "r", 1, &m), PARLEY_OK);
    CU_ASSERT_STRING_EQUAL(m.body, "ada's");
    CU_ASSERT_EQUAL(m.rev, 1);
    CU_ASSERT_EQUAL(store_room_get(s, "r", &r), PARLEY_OK);
    CU_ASSERT_EQUAL(r.head_rev, 1);

    /* The author may; an organizer may. */
    CU_ASSERT_EQUAL(store_edit(s, "r", 1, &ADA, "ada v2", 6, 11, &m),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(m.rev, 2);
    CU_ASSERT_STRING_EQUAL(m.body, "ada v2");
    CU_ASSERT_EQUAL(m.body_len, 6);
    CU_ASSERT_EQUAL(store_edit(s, "r", 1, &ORG, "by org", 6, 12, &m),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(m.rev, 3);
    CU_ASSERT_STRING_EQUAL(m.author.id, "ada"); /* authorship unchanged */
    CU_ASSERT_EQUAL(m.edited_at_ms, 12);
    /* An invalid actor is refused as such. */
    parley_author nobody = {"", "x", PARLEY_ROLE_ORGANIZER};
    CU_ASSERT_EQUAL(store_edit(s, "r", 1, &nobody, "x", 1, 13, &m),
                    PARLEY_ERR_AUTHOR_INVALID);

    /* Delete by organizer: a tombstone that keeps seq and author. */
    CU_ASSERT_EQUAL(store_delete(s, "r", 1, &ORG, 20, &m), PARLEY_OK);
    CU_ASSERT_EQUAL(m.seq, 1);
    CU_ASSERT_EQUAL(m.rev, 4);
    CU_ASSERT_EQUAL(m.deleted, 1);
    CU_ASSERT_EQUAL(m.body_len, 0);
    CU_ASSERT_STRING_EQUAL(m.body, "");
    CU_ASSERT_STRING_EQUAL(m.author.id, "ada");
    CU_ASSERT_STRING_EQUAL(m.client_msg_id, "1");
    CU_ASSERT_EQUAL(m.edited_at_ms, 20);
    CU_ASSERT_EQUAL(m.created_at_ms, 2000);

    /* A tombstone cannot be edited; deleting it again changes nothing. */
    CU_ASSERT_EQUAL(store_edit(s, "r", 1, &ADA, "back", 4, 21, &m),
                    PARLEY_ERR_MESSAGE_DELETED);
    CU_ASSERT_EQUAL(store_edit(s, "r", 1, &ORG, "back", 4, 21, &m),
                    PARLEY_ERR_MESSAGE_DELETED);
    CU_ASSERT_EQUAL(store_delete(s, "r", 1, &ADA, 22, &m), PARLEY_OK);
    CU_ASSERT_EQUAL(m.rev, 4);
    CU_ASSERT_EQUAL(m.deleted, 1);
    CU_ASSERT_EQUAL(m.edited_at_ms, 20);
    CU_ASSERT_EQUAL(store_delete(s, "r", 1, &BOB, 22, &m),
                    PARLEY_ERR_PERMISSION_DENIED);
    CU_ASSERT_EQUAL(store_room_get(s, "r", &r), PARLEY_OK);
    CU_ASSERT_EQUAL(r.head_rev, 4);
    CU_ASSERT_EQUAL(r.head_seq, 1);

    /* Unknown seqs. */
    CU_ASSERT_EQUAL(store_get(s, "r", 0, &m), PARLEY_ERR_MESSAGE_NOT_FOUND);
    CU_ASSERT_EQUAL(store_get(s, "r", 2, &m), PARLEY_ERR_MESSAGE_NOT_FOUND);
    CU_ASSERT_EQUAL(store_get(s, "r", UINT64_MAX, &m),
                    PARLEY_ERR_MESSAGE_NOT_FOUND);
    CU_ASSERT_EQUAL(store_edit(s, "r", 9, &ORG, "x", 1, 1, &m),
                    PARLEY_ERR_MESSAGE_NOT_FOUND);
    CU_ASSERT_EQUAL(store_delete(s, "r", 9, &ORG, 1, &m),
                    PARLEY_ERR_MESSAGE_NOT_FOUND);

    /* Results of one call may be passed to the next (the row buffers). */
    CU_ASSERT_EQUAL(post(s, "r", &BOB, "2", "bob's words", &m, NULL),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(store_get(s, "r", 2, &m), PARLEY_OK);
    CU_ASSERT_EQUAL(
        store_edit(s, m.room, m.seq, &m.author, m.body, m.body_len, 30, &m),
        PARLEY_OK);
    CU_ASSERT_STRING_EQUAL(m.body, "bob's words");
    CU_ASSERT_EQUAL(m.rev, 6);
    CU_ASSERT_EQUAL(store_delete(s, m.room, m.seq, &m.author, 31, &m),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(m.deleted, 1);
    CU_ASSERT_STRING_EQUAL(m.room, "r");
    CU_ASSERT_STRING_EQUAL(m.author.id, "bob");
    store_close(s);
}

/* ---- input rules at the store --------------------------------------- */

/* Fingerprint of a room: heads and the full AFTER_REV listing. */
static void snapshot(store *s, page *p, parley_room *r)
{
    int more;
    CU_ASSERT_EQUAL(list(s, STORE_AFTER_REV, 0, 1000, p, r, &more), PARLEY_OK);
}

static void expect_unchanged(store *s, const page *before,
                             const parley_room *rb)
{
    parley_room ra;
    snapshot(s, &g_page2, &ra);
    CU_ASSERT_EQUAL(ra.head_seq, rb->head_seq);
    CU_ASSERT_EQUAL(ra.head_rev, rb->head_rev);
    CU_ASSERT_EQUAL(g_page2.n, before->n);
    CU_ASSERT_EQUAL(
        memcmp(g_page2.rows, before->rows, before->n * sizeof before->rows[0]),
        0);
}

static void test_body_limits(void)
{
    store_opts o = {.max_body_bytes = 16, .synchronous_full = 1};
    parley_room rb;
    parley_msg m;
    store *s = fresh(NULL, 0, &o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(post(s, "r", &ADA, "keep", "kept", &m, NULL), PARLEY_OK);
    snapshot(s, &g_page, &rb);

    CU_ASSERT_EQUAL(post(s, "r", &ADA, "x", "0123456789abcdefg", &m, NULL),
                    PARLEY_ERR_BODY_TOO_LONG);
    CU_ASSERT_EQUAL(store_edit(s, "r", 1, &ADA, "0123456789abcdefg", 17, 1, &m),
                    PARLEY_ERR_BODY_TOO_LONG);
    CU_ASSERT_EQUAL(post(s, "r", &ADA, "x", "", &m, NULL),
                    PARLEY_ERR_BODY_EMPTY);
    CU_ASSERT_EQUAL(post(s, "r", &ADA, "x", " \n\t ", &m, NULL),
                    PARLEY_ERR_BODY_EMPTY);
    CU_ASSERT_EQUAL(post(s, "r", &ADA, "x", "\xE3\x80\x80", &m, NULL),
                    PARLEY_ERR_BODY_EMPTY);
    CU_ASSERT_EQUAL(store_edit(s, "r", 1, &ADA, "  ", 2, 1, &m),
                    PARLEY_ERR_BODY_EMPTY);
    expect_unchanged(s, &g_page, &rb);

    CU_ASSERT_EQUAL(post(s, "r", &ADA, "x", "0123456789abcdef", &m, NULL),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(m.body_len, 16);
    CU_ASSERT_EQUAL(store_edit(s, "r", 1, &ADA, "fedcba9876543210", 16, 1, &m),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(m.body_len, 16);
    store_close(s);

    /* Without opts the limit is 4096 bytes. */
    static char big[RULES_BODY_MAX_DEFAULT + 1];
    memset(big, 'z', sizeof big);
    s = fresh(NULL, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(
        store_append(s, "r", &ADA, "big", big, sizeof big, 1, &m, NULL),
        PARLEY_ERR_BODY_TOO_LONG);
    CU_ASSERT_EQUAL(
        store_append(s, "r", &ADA, "big", big, sizeof big - 1, 1, &m, NULL),
        PARLEY_OK);
    CU_ASSERT_EQUAL(m.body_len, RULES_BODY_MAX_DEFAULT);
    CU_ASSERT_EQUAL(memcmp(m.body, big, RULES_BODY_MAX_DEFAULT), 0);
    CU_ASSERT_EQUAL(m.body[m.body_len], '\0');
    CU_ASSERT_EQUAL(store_get(s, "r", 1, &m), PARLEY_OK);
    CU_ASSERT_EQUAL(m.body_len, RULES_BODY_MAX_DEFAULT);
    store_close(s);
}

static void test_invalid_input(void)
{
    static const struct {
        const char *b;
        size_t len;
    } bad[] = {
        {"over\xC0\xAF", 6},     /* overlong '/' */
        {"over\xE0\x80\xAF", 7}, /* overlong, 3 bytes */
        {"sur\xED\xA0\x80", 6},  /* high surrogate */
        {"sur\xED\xBF\xBF", 6},  /* low surrogate */
        {"trunc\xE2\x82", 7},    /* truncated at the end */
        {"tr\xF0\x9F"
         "x",
         5},                         /* truncated in the middle */
        {"nul\0byte", 8},            /* embedded NUL */
        {"big\xF4\x90\x80\x80", 7},  /* U+110000 */
        {"\xF8\x88\x80\x80\x80", 5}, /* 5-byte form */
        {"\x80lead", 5},             /* stray continuation */
    };
    parley_room rb;
    parley_msg m;
    store *s = fresh(NULL, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(post(s, "r", &ADA, "keep", "kept", &m, NULL), PARLEY_OK);
    snapshot(s, &g_page, &rb);

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CU_ASSERT_EQUAL(store_append(s, "r", &ADA, "bad", bad[i].b, bad[i].len,
                                     1, &m, NULL),
                        PARLEY_ERR_INVALID_UTF8);
        CU_ASSERT_EQUAL(
            store_edit(s, "r", 1, &ADA, bad[i].b, bad[i].len, 1, &m),
            PARLEY_ERR_INVALID_UTF8);
    }
    /* Other refused inputs, each with its own code. */
    parley_author noid = {"", "No Id", PARLEY_ROLE_PARTICIPANT};
    parley_author norole = {"x", "No Role", 0};
    parley_author ctl = {"x", "bell\x07", PARLEY_ROLE_PARTICIPANT};
    CU_ASSERT_EQUAL(post(s, "r", &noid, "c", "hi", &m, NULL),
                    PARLEY_ERR_AUTHOR_INVALID);
    CU_ASSERT_EQUAL(post(s, "r", &norole, "c", "hi", &m, NULL),
                    PARLEY_ERR_AUTHOR_INVALID);
    CU_ASSERT_EQUAL(post(s, "r", &ctl, "c", "hi", &m, NULL),
                    PARLEY_ERR_AUTHOR_INVALID);
    CU_ASSERT_EQUAL(store_append(s, "r", NULL, "c", "hi", 2, 1, &m, NULL),
                    PARLEY_ERR_AUTHOR_INVALID);
    CU_ASSERT_EQUAL(post(s, "r", &ADA, "", "hi", &m, NULL),
                    PARLEY_ERR_CLIENT_MSG_ID_INVALID);
    CU_ASSERT_EQUAL(post(s, "r", &ADA, "has space", "hi", &m, NULL),
                    PARLEY_ERR_CLIENT_MSG_ID_INVALID);
    CU_ASSERT_EQUAL(
        post(
            s, "r", &ADA,
            "01234567890123456789012345678901234567890123456789012345678901234",
            "hi", &m, NULL),
        PARLEY_ERR_CLIENT_MSG_ID_INVALID);
    CU_ASSERT_EQUAL(store_append(s, "r", &ADA, NULL, "hi", 2, 1, &m, NULL),
                    PARLEY_ERR_CLIENT_MSG_ID_INVALID);
    CU_ASSERT_EQUAL(post(s, "r\xFF", &ADA, "c", "hi", &m, NULL),
                    PARLEY_ERR_INVALID_UTF8);
    expect_unchanged(s, &g_page, &rb);
    store_close(s);
}

/* ---- persistence and schema -------------------------------------------- */

static void test_reopen(void)
{
    char path[4200], mode[16] = "";
    parley_room r1, r2;
    parley_msg m;
    int dup, v = -1, more;
    store *s = fresh(path, sizeof path, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL_FATAL(post_n(s, "r", "p", 12), 0);
    CU_ASSERT_EQUAL(store_edit(s, "r", 5, &ADA, "edited", 6, 9, &m), PARLEY_OK);
    CU_ASSERT_EQUAL(store_delete(s, "r", 7, &ADA, 9, &m), PARLEY_OK);
    CU_ASSERT_EQUAL(store_room_create(s, "second", 1, NULL, NULL), PARLEY_OK);
    snapshot(s, &g_page, &r1);
    store_close(s);

    /* The database is stamped with the schema version (and an SQLite file
     * is WAL). */
    if (E == &fx_sqlite) {
        CU_ASSERT_EQUAL(
            sqlite_text(path, "PRAGMA journal_mode", mode, sizeof mode),
            SQLITE_OK);
        CU_ASSERT_STRING_EQUAL(mode, "wal");
    }
    CU_ASSERT_EQUAL(sql_int(path, E->version_get, &v), 0);
    CU_ASSERT_EQUAL(v, 2);

    s = open_at(path, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    snapshot(s, &g_page2, &r2);
    CU_ASSERT_EQUAL(r2.head_seq, 12);
    CU_ASSERT_EQUAL(r2.head_rev, 14);
    CU_ASSERT_EQUAL(r1.head_rev, r2.head_rev);
    CU_ASSERT_EQUAL(g_page.n, 12);
    CU_ASSERT_EQUAL(g_page2.n, g_page.n);
    CU_ASSERT_EQUAL(memcmp(g_page.rows, g_page2.rows, g_page.n * sizeof(row)),
                    0);
    CU_ASSERT_EQUAL(store_room_get(s, "second", &r2), PARLEY_OK);
    /* Dedupe and counters carry on where they were. */
    CU_ASSERT_EQUAL(post(s, "r", &ADA, "p3", "again", &m, &dup), PARLEY_OK);
    CU_ASSERT_EQUAL(dup, 1);
    CU_ASSERT_EQUAL(m.seq, 3);
    CU_ASSERT_EQUAL(post(s, "r", &ADA, "p13", "new", &m, &dup), PARLEY_OK);
    CU_ASSERT_EQUAL(dup, 0);
    CU_ASSERT_EQUAL(m.seq, 13);
    CU_ASSERT_EQUAL(m.rev, 15);
    CU_ASSERT_EQUAL(list(s, STORE_LATEST, 0, 2, &g_page, &r2, &more),
                    PARLEY_OK);
    expect_seqs(&g_page, 12, 13);
    store_close(s);
}

static void test_schema_too_new(void)
{
    char path[4200], err[256] = "";
    int v = -1;
    store *s = fresh(path, sizeof path, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(post_n(s, "r", "q", 2), 0);
    store_close(s);
    CU_ASSERT_EQUAL_FATAL(set_version(path, 7), 0);

    s = (store *)&v; /* must be reset to NULL */
    CU_ASSERT_EQUAL(store_open(path, NULL, &s, err, sizeof err),
                    PARLEY_ERR_SCHEMA_TOO_NEW);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "7"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "(2)"));
    fprintf(stderr, "  (schema refusal reads: %s)\n", err);
    /* The database was not touched. */
    CU_ASSERT_EQUAL(sql_int(path, E->version_get, &v), 0);
    CU_ASSERT_EQUAL(v, 7);
    CU_ASSERT_EQUAL(sql_int(path, "SELECT count(*) FROM messages", &v), 0);
    CU_ASSERT_EQUAL(v, 2);

    /* Back at the version it had it opens again. */
    CU_ASSERT_EQUAL(set_version(path, 2), 0);
    s = open_at(path, NULL);
    CU_ASSERT_PTR_NOT_NULL(s);
    store_close(s);
}

static void test_open_errors(void)
{
    char path[4200], err[256] = "";
    store *s = (store *)&err;

    snprintf(path, sizeof path, "%s/no/such/dir/x.db", g_dir);
    CU_ASSERT_EQUAL(store_open(path, NULL, &s, err, sizeof err), PARLEY_ERR_IO);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_TRUE(strlen(err) > 0);

    /* A file that is not a database. */
    snprintf(path, sizeof path, "%s/garbage.db", g_dir);
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    for (int i = 0; i < 4096; i++) fputc("not a database "[i % 15], f);
    fclose(f);
    err[0] = '\0';
    CU_ASSERT_EQUAL(store_open(path, NULL, &s, err, sizeof err), PARLEY_ERR_IO);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not a database")); /* SQLite's words */

    /* NULL errmsg is allowed. */
    CU_ASSERT_NOT_EQUAL(store_open(path, NULL, &s, NULL, 0), PARLEY_OK);

    /* synchronous NORMAL opens as well. */
    store_opts o = {.max_body_bytes = 0, .synchronous_full = 0};
    s = fresh(NULL, 0, &o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_STRING_EQUAL(store_last_error(s), "no error");
    store_close(s);
    store_close(NULL);
}

/* ---- group commit ------------------------------------------------------ */

static void test_group_commit(void)
{
    parley_room r;
    parley_msg m;
    int more, dup;
    store *s = fresh(NULL, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);

    /* Rolled back: nothing stays. */
    CU_ASSERT_EQUAL_FATAL(store_begin(s), PARLEY_OK);
    CU_ASSERT_EQUAL(store_begin(s), PARLEY_ERR_INTERNAL); /* no nesting */
    CU_ASSERT_EQUAL(post_n(s, "r", "g", 5), 0);
    CU_ASSERT_EQUAL(store_room_get(s, "r", &r), PARLEY_OK); /* sees its own */
    CU_ASSERT_EQUAL(r.head_seq, 5);
    store_rollback(s);
    CU_ASSERT_EQUAL(list(s, STORE_LATEST, 0, 100, &g_page, &r, &more),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(g_page.n, 0);
    CU_ASSERT_EQUAL(r.head_seq, 0);
    CU_ASSERT_EQUAL(r.head_rev, 0);
    CU_ASSERT_EQUAL(store_get(s, "r", 1, &m), PARLEY_ERR_MESSAGE_NOT_FOUND);
    CU_ASSERT_EQUAL(store_commit(s), PARLEY_ERR_INTERNAL); /* none open */

    /* Committed: all of it, with refused writes in the middle leaving the
     * rest of the group intact. */
    CU_ASSERT_EQUAL_FATAL(store_begin(s), PARLEY_OK);
    CU_ASSERT_EQUAL(post_n(s, "r", "g", 3), 0);
    CU_ASSERT_EQUAL(post(s, "r", &ADA, "bad", "\xC0\x80", &m, NULL),
                    PARLEY_ERR_INVALID_UTF8);
    CU_ASSERT_EQUAL(post(s, "nope", &ADA, "x", "x", &m, NULL),
                    PARLEY_ERR_ROOM_NOT_FOUND);
    CU_ASSERT_EQUAL(store_edit(s, "r", 1, &BOB, "x", 1, 1, &m),
                    PARLEY_ERR_PERMISSION_DENIED);
    CU_ASSERT_EQUAL(post(s, "r", &ADA, "g2", "repeat", &m, &dup), PARLEY_OK);
    CU_ASSERT_EQUAL(dup, 1);
    CU_ASSERT_EQUAL(m.seq, 2);
    CU_ASSERT_EQUAL(store_edit(s, "r", 1, &ADA, "edited in group", 15, 1, &m),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(post(s, "r", &BOB, "b1", "bob", &m, &dup), PARLEY_OK);
    CU_ASSERT_EQUAL(m.seq, 4);
    CU_ASSERT_EQUAL(m.rev, 5);
    CU_ASSERT_EQUAL(store_commit(s), PARLEY_OK);
    CU_ASSERT_EQUAL(list(s, STORE_AFTER_REV, 0, 100, &g_page, &r, &more),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(g_page.n, 4);
    CU_ASSERT_EQUAL(r.head_seq, 4);
    CU_ASSERT_EQUAL(r.head_rev, 5);
    CU_ASSERT_STRING_EQUAL(g_page.rows[3].body, "bob");
    CU_ASSERT_STRING_EQUAL(g_page.rows[2].body, "edited in group");

    store_rollback(s); /* none open: a no-op */
    store_close(s);
}

/* ---- concurrent writers ------------------------------------------------ */

#define CONC_N 150

static pthread_barrier_t g_start;

/* Neither writer runs more than CONC_AHEAD appends ahead of the other, so
 * they interleave whatever the scheduler does, while both still write at
 * the same time (each one's append may meet the other's lock). */
#define CONC_AHEAD 3
static pthread_mutex_t g_conc_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_conc_cv = PTHREAD_COND_INITIALIZER;
static int g_conc_done[2];

static void conc_count(int me, int n)
{
    pthread_mutex_lock(&g_conc_mu);
    g_conc_done[me] += n;
    pthread_cond_broadcast(&g_conc_cv);
    pthread_mutex_unlock(&g_conc_mu);
}

typedef struct writer {
    const char *path;
    const parley_author *author;
    int me;
    int failures;
    uint64_t last_seq;
    int out_of_order;
    char err[256];
} writer;

static void *writer_main(void *arg)
{
    writer *w = arg;
    store *s = NULL;
    char id[32];
    parley_msg m;
    int dup;

    parley_err oe = store_open(w->path, NULL, &s, w->err, sizeof w->err);
    /* Both handles are open before either writes, so they contend. */
    pthread_barrier_wait(&g_start);
    if (oe != PARLEY_OK) {
        w->failures = CONC_N;
        conc_count(w->me, 2 * CONC_N); /* never hold the other back */
        return NULL;
    }
    for (int i = 1; i <= CONC_N; i++) {
        pthread_mutex_lock(&g_conc_mu);
        while (g_conc_done[w->me] - g_conc_done[!w->me] >= CONC_AHEAD)
            pthread_cond_wait(&g_conc_cv, &g_conc_mu);
        pthread_mutex_unlock(&g_conc_mu);
        snprintf(id, sizeof id, "%s-%d", w->author->id, i);
        parley_err e =
            store_append(s, "r", w->author, id, id, strlen(id), i, &m, &dup);
        conc_count(w->me, 1);
        if (e != PARLEY_OK || dup) {
            if (e != PARLEY_OK)
                snprintf(w->err, sizeof w->err, "%s: %s", parley_err_name(e),
                         store_last_error(s));
            w->failures++;
            continue;
        }
        if (m.seq <= w->last_seq) w->out_of_order++;
        w->last_seq = m.seq;
    }
    store_close(s);
    return NULL;
}

static void test_concurrent_writers(void)
{
    char path[4200];
    pthread_t t[2];
    writer w[2];
    parley_room r;
    int more;
    static unsigned char seen[2 * CONC_N + 1];
    store *s = fresh(path, sizeof path, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    store_close(s);

    memset(w, 0, sizeof w);
    g_conc_done[0] = g_conc_done[1] = 0;
    w[0].path = w[1].path = path;
    w[0].author = &ADA;
    w[1].author = &BOB;
    w[1].me = 1;
    CU_ASSERT_EQUAL_FATAL(pthread_barrier_init(&g_start, NULL, 2), 0);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t[0], NULL, writer_main, &w[0]), 0);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t[1], NULL, writer_main, &w[1]), 0);
    pthread_join(t[0], NULL);
    pthread_join(t[1], NULL);
    pthread_barrier_destroy(&g_start);
    for (int i = 0; i < 2; i++) {
        if (w[i].failures) fprintf(stderr, "writer %d: %s\n", i, w[i].err);
        CU_ASSERT_EQUAL(w[i].failures, 0);
        CU_ASSERT_EQUAL(w[i].out_of_order, 0);
    }

    s = open_at(path, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(list(s, STORE_LATEST, 0, 1000, &g_page, &r, &more),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(r.head_seq, 2 * CONC_N);
    CU_ASSERT_EQUAL(r.head_rev, 2 * CONC_N);
    CU_ASSERT_EQUAL(g_page.n, 2 * CONC_N);
    memset(seen, 0, sizeof seen);
    int per_author[2] = {0, 0}, dups = 0, dense = 1, interleaved = 0;
    for (unsigned i = 0; i < g_page.n; i++) {
        const row *x = &g_page.rows[i];
        if (x->seq != i + 1 || x->rev != x->seq) dense = 0;
        if (x->seq >= 1 && x->seq <= 2 * CONC_N) {
            if (seen[x->seq]) dups++;
            seen[x->seq] = 1;
        }
        per_author[strcmp(x->author, "ada") == 0 ? 0 : 1]++;
        if (i && strcmp(x->author, g_page.rows[i - 1].author) != 0)
            interleaved++;
    }
    CU_ASSERT_TRUE(dense); /* seq 1..2N in order, rev == seq */
    CU_ASSERT_EQUAL(dups, 0);
    CU_ASSERT_EQUAL(per_author[0], CONC_N);
    CU_ASSERT_EQUAL(per_author[1], CONC_N);
    /* A run of one author is at most about 2 * CONC_AHEAD + 1 long, so the
     * authors switch at least this often: both really wrote in turn. */
    fprintf(stderr, "  (author switches in the sequence: %d)\n", interleaved);
    CU_ASSERT_TRUE(interleaved >= 2 * CONC_N / (2 * CONC_AHEAD + 2));
    store_close(s);
}

/* ---- durability: PRAGMA synchronous ------------------------------------ */

/* What FULL changes, seen from below SQLite: an fsync at every commit. A
 * VFS over the default one counts xSync calls by swapping each opened
 * file's method table for a copy whose xSync counts and then forwards. */
#define SYNC_TABLES 8
static sqlite3_vfs g_count_vfs, *g_real_vfs;
static int g_syncs;
static struct {
    const sqlite3_io_methods *real;
    sqlite3_io_methods mine;
} g_tables[SYNC_TABLES];
static int g_n_tables;

static int count_sync(sqlite3_file *f, int flags)
{
    for (int i = 0; i < g_n_tables; i++)
        if (f->pMethods == &g_tables[i].mine) {
            g_syncs++;
            return g_tables[i].real->xSync(f, flags);
        }
    return SQLITE_IOERR_FSYNC;
}

static int count_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f,
                      int flags, int *out_flags)
{
    (void)vfs;
    int rc = g_real_vfs->xOpen(g_real_vfs, name, f, flags, out_flags);
    if (rc != SQLITE_OK || f->pMethods == NULL) return rc;
    int i = 0;
    while (i < g_n_tables && g_tables[i].real != f->pMethods) i++;
    if (i == g_n_tables) {
        if (i == SYNC_TABLES)
            return SQLITE_CANTOPEN; /* never silently uncounted */
        g_tables[i].real = f->pMethods;
        g_tables[i].mine = *f->pMethods;
        g_tables[i].mine.xSync = count_sync;
        g_n_tables++;
    }
    f->pMethods = &g_tables[i].mine;
    return rc;
}

/* Opens a fresh store with opts, checks the level it reports, and returns
 * how many fsyncs 20 single commits took. */
static int syncs_for_20_commits(const store_opts *opts, int want_level)
{
    store *s = fresh(NULL, 0, opts);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(store_synchronous(s), want_level);
    int before = g_syncs;
    CU_ASSERT_EQUAL(post_n(s, "r", "d", 20), 0);
    int n = g_syncs - before;
    store_close(s);
    return n;
}

static void test_synchronous(void)
{
    g_real_vfs = sqlite3_vfs_find(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g_real_vfs);
    g_count_vfs = *g_real_vfs;
    g_count_vfs.zName = "parley-count-sync";
    g_count_vfs.pNext = NULL;
    g_count_vfs.xOpen = count_open;
    CU_ASSERT_EQUAL_FATAL(sqlite3_vfs_register(&g_count_vfs, 1), SQLITE_OK);

    store_opts full = {.max_body_bytes = 0, .synchronous_full = 1};
    store_opts normal = {.max_body_bytes = 0, .synchronous_full = 0};
    int by_default = syncs_for_20_commits(NULL, STORE_SYNC_FULL);
    int by_full = syncs_for_20_commits(&full, STORE_SYNC_FULL);
    int by_normal = syncs_for_20_commits(&normal, STORE_SYNC_NORMAL);
    fprintf(stderr,
            "  (fsyncs for 20 commits: default %d, FULL %d, NORMAL %d)\n",
            by_default, by_full, by_normal);
    CU_ASSERT_TRUE(by_default >= 20);
    CU_ASSERT_TRUE(by_full >= 20);
    /* The control: the counter does tell the levels apart. */
    CU_ASSERT_TRUE(by_normal < 20);

    CU_ASSERT_EQUAL(sqlite3_vfs_unregister(&g_count_vfs), SQLITE_OK);
    CU_ASSERT_PTR_EQUAL(sqlite3_vfs_find(NULL), g_real_vfs);
}

/* ---- a commit that fails ----------------------------------------------- */

/* A real full disk: a child process runs the store under RLIMIT_FSIZE
 * (SIGXFSZ ignored, so the write past it fails with EFBIG) and commits
 * groups of 8 appends until a commit fails. The failed group must leave
 * nothing behind, in the handle that failed and in the file. */
#define FAIL_LIMIT (256 * 1024)
#define FAIL_GROUP 8

typedef struct fail_report {
    int opened, committed, commit_err, append_err;
    uint64_t head_after;
    unsigned listed_after;
} fail_report;

static int count_rows(const parley_msg *m, void *ud)
{
    (void)m;
    (*(unsigned *)ud)++;
    return 0;
}

static void fail_child(const char *path, int fd)
{
    fail_report rep;
    char body[1001], id[32];
    memset(&rep, 0, sizeof rep);
    memset(body, 'b', 1000);
    body[1000] = 0;
    struct rlimit rl = {FAIL_LIMIT, FAIL_LIMIT};
    signal(SIGXFSZ, SIG_IGN);
    store *s = setrlimit(RLIMIT_FSIZE, &rl) == 0 ? open_at(path, NULL) : NULL;
    rep.opened = s != NULL;
    for (int g = 0; s && g < 1000; g++) {
        if (store_begin(s) != PARLEY_OK) break;
        for (int k = 0; k < FAIL_GROUP && !rep.append_err; k++) {
            snprintf(id, sizeof id, "g%d-%d", g, k);
            rep.append_err = post(s, "r", &ADA, id, body, NULL, NULL);
        }
        if (rep.append_err) {
            store_rollback(s);
            break;
        }
        parley_err e = store_commit(s);
        if (e != PARLEY_OK) {
            rep.commit_err = e;
            break;
        }
        rep.committed++;
    }
    if (s) {
        parley_room r;
        if (store_list(s, "r", STORE_AFTER_REV, 0, 1000, count_rows,
                       &rep.listed_after, &r, NULL) == PARLEY_OK)
            rep.head_after = r.head_seq;
        store_close(s);
    }
    ssize_t w = write(fd, &rep, sizeof rep);
    _exit(w == (ssize_t)sizeof rep ? 0 : 1);
}

static void test_commit_failure(void)
{
    char path[4200];
    store *s = fresh(path, sizeof path, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    store_close(s);
    int pfd[2];
    CU_ASSERT_EQUAL_FATAL(pipe(pfd), 0);
    fflush(NULL);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        fail_child(path, pfd[1]);
    }
    close(pfd[1]);
    fail_report rep;
    memset(&rep, 0, sizeof rep);
    ssize_t got = read(pfd[0], &rep, sizeof rep);
    close(pfd[0]);
    int st = -1;
    waitpid(pid, &st, 0);
    CU_ASSERT_EQUAL_FATAL(got, (ssize_t)sizeof rep);
    CU_ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    fprintf(stderr, "  (%d groups committed under the limit, then %s)\n",
            rep.committed, parley_err_name((parley_err)rep.commit_err));
    CU_ASSERT_TRUE(rep.opened);
    CU_ASSERT_EQUAL(rep.append_err, PARLEY_OK); /* nothing spilled early */
    CU_ASSERT_TRUE(rep.committed > 0);
    CU_ASSERT_EQUAL(rep.commit_err, PARLEY_ERR_IO);
    /* The handle that failed sees only what was committed. */
    CU_ASSERT_EQUAL(rep.head_after, (uint64_t)rep.committed * FAIL_GROUP);
    CU_ASSERT_EQUAL(rep.listed_after, (unsigned)rep.committed * FAIL_GROUP);

    /* So does the file, and the failed group's ids are free again. */
    int more;
    parley_room r;
    parley_msg m;
    int dup = -1;
    s = open_at(path, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(list(s, STORE_AFTER_REV, 0, 1000, &g_page, &r, &more),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(r.head_seq, (uint64_t)rep.committed * FAIL_GROUP);
    CU_ASSERT_EQUAL(g_page.n, (unsigned)rep.committed * FAIL_GROUP);
    int bad = 0;
    for (unsigned i = 0; i < g_page.n && i < 1100; i++) {
        char want[32];
        snprintf(want, sizeof want, "g%u-%u", i / FAIL_GROUP, i % FAIL_GROUP);
        if (g_page.rows[i].seq != i + 1 ||
            strcmp(g_page.rows[i].client_id, want))
            bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    char id[32];
    snprintf(id, sizeof id, "g%d-0", rep.committed);
    CU_ASSERT_EQUAL(post(s, "r", &ADA, id, "retried", &m, &dup), PARLEY_OK);
    CU_ASSERT_EQUAL(dup, 0);
    CU_ASSERT_EQUAL(m.seq, (uint64_t)rep.committed * FAIL_GROUP + 1);
    store_close(s);
}

/* ---- room list and probe ------------------------------------------------ */

typedef struct names {
    char name[8][RULES_ROOM_MAX + 1];
    uint64_t seq[8];
    unsigned n, stop_after;
} names;

static int collect_room(const parley_room *r, void *ud)
{
    names *x = ud;
    if (x->n < 8) {
        snprintf(x->name[x->n], sizeof x->name[0], "%s", r->name);
        x->seq[x->n] = r->head_seq;
    }
    x->n++;
    return x->stop_after && x->n >= x->stop_after;
}

/* Rooms come in byte order of their names on every engine (PostgreSQL's
 * collation would put "a" before "B"), in pages, with their heads; a
 * probe commits and changes nothing visible. */
static void test_room_list_and_probe(void)
{
    static const char *const made[] = {"b", "B", "_x", "a", "Z-1", "a.2"};
    static const char *const sorted[] = {"B",   "Z-1", "_x", "a",
                                         "a.2", "b",   "r"};
    names x;
    int more = -1;
    store *s = fresh(NULL, 0, NULL); /* has room "r" */
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    for (size_t i = 0; i < sizeof made / sizeof made[0]; i++)
        CU_ASSERT_EQUAL(store_room_create(s, made[i], 1, NULL, NULL),
                        PARLEY_OK);
    CU_ASSERT_EQUAL(post_n(s, "a", "m", 3), 0);

    memset(&x, 0, sizeof x);
    CU_ASSERT_EQUAL(store_room_list(s, "", 4, collect_room, &x, &more),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(x.n, 4);
    CU_ASSERT_EQUAL(more, 1);
    for (unsigned i = 0; i < 4 && i < x.n; i++)
        CU_ASSERT_STRING_EQUAL(x.name[i], sorted[i]);
    CU_ASSERT_EQUAL(x.seq[3], 3); /* "a" with its head */
    memset(&x, 0, sizeof x);
    CU_ASSERT_EQUAL(store_room_list(s, "a", 4, collect_room, &x, &more),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(x.n, 3);
    CU_ASSERT_EQUAL(more, 0);
    for (unsigned i = 0; i < 3 && i < x.n; i++)
        CU_ASSERT_STRING_EQUAL(x.name[i], sorted[4 + i]);
    memset(&x, 0, sizeof x);
    x.stop_after = 2;
    CU_ASSERT_EQUAL(store_room_list(s, "_x", 10, collect_room, &x, &more),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(x.n, 2);
    CU_ASSERT_EQUAL(more, 1);

    parley_room before, after;
    CU_ASSERT_EQUAL(store_room_get(s, "a", &before), PARLEY_OK);
    uint64_t seq = before.head_seq, rev = before.head_rev;
    CU_ASSERT_EQUAL(store_probe(s), PARLEY_OK);
    CU_ASSERT_EQUAL(store_write_status(s), PARLEY_OK);
    CU_ASSERT_EQUAL(store_room_get(s, "a", &after), PARLEY_OK);
    CU_ASSERT_EQUAL(after.head_seq, seq);
    CU_ASSERT_EQUAL(after.head_rev, rev);
    store_close(s);
}

/* ---- PostgreSQL: waiting on the server's own views --------------------- */

/* Waits (bounded: running out fails the test) until the admin query sql
 * yields want. */
static int admin_wait(const char *sql, long long want)
{
    for (int i = 0; i < 2000; i++) {
        if (admin_int(sql) == want) return 1;
        usleep(5000);
    }
    fprintf(stderr, "  timed out waiting for %s = %lld\n", sql, want);
    return 0;
}

/* A target on a fresh database whose connections carry application_name
 * app, so the server's views can tell the store's backend apart. */
static int pg_target_app(char *out, size_t len, const char *app)
{
    char db[64], extra[96];
    if (pg_make_db(db, sizeof db, NULL) != 0) return -1;
    snprintf(extra, sizeof extra, "&application_name=%s", app);
    pg_uri(out, len, db, extra);
    return 0;
}

static int backends_named(const char *app, char *sql, size_t len)
{
    snprintf(sql, len,
             "SELECT count(*) FROM pg_stat_activity WHERE application_name"
             " = '%s'",
             app);
    return (int)admin_int(sql);
}

/* ---- PostgreSQL: durability -------------------------------------------- */

/* What synchronous_commit = on changes, seen by the server: a WAL flush
 * (an fsync) at every commit. pg_stat_wal.wal_sync counts them; a backend
 * hands its counts in when it exits, before it leaves pg_stat_activity.
 * Needs a server with fsync on (tests/pg/pgtmp's default). */
static long long wal_syncs_for_20_commits(const store_opts *opts, int want,
                                          int n)
{
    char target[512], app[64], sql[256];
    snprintf(app, sizeof app, "parley_sync_%d", n);
    CU_ASSERT_EQUAL_FATAL(pg_target_app(target, sizeof target, app), 0);
    store *s = open_at(target, opts);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(store_room_create(s, "r", 1, NULL, NULL), PARLEY_OK);
    CU_ASSERT_EQUAL(store_synchronous(s), want);
    long long before = admin_int("SELECT wal_sync FROM pg_stat_wal");
    CU_ASSERT_EQUAL(post_n(s, "r", "d", 20), 0);
    store_close(s);
    CU_ASSERT_TRUE(admin_wait((backends_named(app, sql, sizeof sql), sql), 0));
    return admin_int("SELECT wal_sync FROM pg_stat_wal") - before;
}

static void test_pg_synchronous(void)
{
    char fsync[8] = "";
    CU_ASSERT_EQUAL_FATAL(admin_text("SHOW fsync", fsync, sizeof fsync), 0);
    CU_ASSERT_STRING_EQUAL_FATAL(fsync, "on");
    store_opts full = {.max_body_bytes = 0, .synchronous_full = 1};
    store_opts normal = {.max_body_bytes = 0, .synchronous_full = 0};
    long long by_default = wal_syncs_for_20_commits(NULL, STORE_SYNC_FULL, 1);
    long long by_full = wal_syncs_for_20_commits(&full, STORE_SYNC_FULL, 2);
    long long by_normal =
        wal_syncs_for_20_commits(&normal, STORE_SYNC_NORMAL, 3);
    fprintf(stderr,
            "  (WAL flushes for 20 commits: default %lld, on %lld, off %lld)\n",
            by_default, by_full, by_normal);
    CU_ASSERT_TRUE(by_default >= 20);
    CU_ASSERT_TRUE(by_full >= 20);
    /* The control: the counter does tell the levels apart. */
    CU_ASSERT_TRUE(by_normal >= 0 && by_normal < 20);
}

/* ---- PostgreSQL: open errors and migrations ---------------------------- */

static void test_pg_open_errors(void)
{
    char target[4200], err[512] = "", db[64];
    store *s = (store *)&err;

    /* No server there. */
    snprintf(target, sizeof target,
             "postgres://%s@/postgres?host=%s/nowhere&port=%s", g_pg_user,
             g_dir, g_pg_port);
    CU_ASSERT_EQUAL(store_open(target, NULL, &s, err, sizeof err),
                    PARLEY_ERR_IO);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "connect"));
    fprintf(stderr, "  (no server: %s)\n", err);

    /* A database that does not exist: libpq's words. */
    pg_uri(target, sizeof target, "no_such_db", NULL);
    err[0] = '\0';
    CU_ASSERT_EQUAL(store_open(target, NULL, &s, err, sizeof err),
                    PARLEY_ERR_IO);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "does not exist"));
    CU_ASSERT_NOT_EQUAL(store_open(target, NULL, &s, NULL, 0), PARLEY_OK);

    /* A database in another encoding is refused before anything is
     * created in it. */
    CU_ASSERT_EQUAL_FATAL(pg_make_db(db, sizeof db,
                                     "TEMPLATE template0 ENCODING 'LATIN1'"
                                     " LC_COLLATE 'C' LC_CTYPE 'C'"),
                          0);
    pg_uri(target, sizeof target, db, NULL);
    err[0] = '\0';
    CU_ASSERT_EQUAL(store_open(target, NULL, &s, err, sizeof err),
                    PARLEY_ERR_INTERNAL);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "UTF8"));
    int n = -1;
    CU_ASSERT_EQUAL(sql_int(target,
                            "SELECT count(*) FROM pg_tables WHERE schemaname"
                            " = 'public'",
                            &n),
                    0);
    CU_ASSERT_EQUAL(n, 0);

    /* synchronous_commit off (NORMAL) opens as well, and says so. */
    store_opts o = {.max_body_bytes = 0, .synchronous_full = 0};
    s = fresh(NULL, 0, &o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(store_synchronous(s), STORE_SYNC_NORMAL);
    CU_ASSERT_STRING_EQUAL(store_last_error(s), "no error");
    CU_ASSERT_STRING_EQUAL(store_engine_name(s), "postgres");
    /* What may be logged names the database, never a password. */
    CU_ASSERT_PTR_NOT_NULL(strstr(store_describe(s), "postgres://"));
    CU_ASSERT_PTR_NOT_NULL(strstr(store_describe(s), "parley_t"));
    store_close(s);
}

typedef struct opener {
    const char *target;
    parley_err e;
    char err[256];
} opener;

static void *opener_main(void *arg)
{
    opener *o = arg;
    store *s = NULL;
    pthread_barrier_wait(&g_start);
    o->e = store_open(o->target, NULL, &s, o->err, sizeof o->err);
    store_close(s);
    return NULL;
}

/* An empty database gets the schema on first open; four cores opening it
 * at once migrate it once (the advisory lock), and all of them open. */
static void test_pg_migrate_empty(void)
{
    char target[512];
    int n = -1;
    pthread_t t[4];
    opener o[4];
    CU_ASSERT_EQUAL_FATAL(pg_make_target(target, sizeof target), 0);
    CU_ASSERT_EQUAL(sql_int(target,
                            "SELECT count(*) FROM pg_tables WHERE schemaname"
                            " = 'public'",
                            &n),
                    0);
    CU_ASSERT_EQUAL(n, 0);

    CU_ASSERT_EQUAL_FATAL(pthread_barrier_init(&g_start, NULL, 4), 0);
    for (int i = 0; i < 4; i++) {
        memset(&o[i], 0, sizeof o[i]);
        o[i].target = target;
        CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, opener_main, &o[i]),
                              0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        if (o[i].e != PARLEY_OK)
            fprintf(stderr, "  open %d: %s\n", i, o[i].err);
        CU_ASSERT_EQUAL(o[i].e, PARLEY_OK);
    }
    pthread_barrier_destroy(&g_start);

    CU_ASSERT_EQUAL(sql_int(target, "SELECT count(*) FROM parley_schema", &n),
                    0);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(sql_int(target, E->version_get, &n), 0);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(sql_int(target,
                            "SELECT count(*) FROM pg_indexes WHERE indexname"
                            " IN ('messages_rev', 'messages_client_id')",
                            &n),
                    0);
    CU_ASSERT_EQUAL(n, 2);

    /* A store whose schema vanished under it is refused, not re-created
     * behind the operator's back on a reconnect... but a fresh open of a
     * database at version 0 migrates it. */
    store *s = open_at(target, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(store_room_create(s, "r", 1, NULL, NULL), PARLEY_OK);
    CU_ASSERT_EQUAL(post_n(s, "r", "m", 3), 0);
    store_close(s);
}

/* ---- PostgreSQL: concurrency SQLite never sees ------------------------- */

/* Several processes, each with its own connection, commit to one room at
 * once: groups of 1..8 appends and edits of their own earlier messages.
 * seq must come out dense and gap-free, every rev unique, and every ack a
 * process got must name its own stored message. */
#define HAMMER_PROCS 3
#define HAMMER_N 150

typedef struct hammer_ack {
    uint64_t seq;
    char id[24];
} hammer_ack;

static void hammer_child(const char *target, int me, int go_fd, int out_fd)
{
    char author_id[16], id[24], one;
    snprintf(author_id, sizeof author_id, "w%d", me);
    parley_author a = {author_id, "Writer", PARLEY_ROLE_PARTICIPANT};
    store *s = open_at(target, NULL);
    int edits = 0;
    if (s == NULL || read(go_fd, &one, 1) != 1) _exit(3);
    for (int i = 1; i <= HAMMER_N;) {
        int group = 1 + (i * 7 + me) % 8;
        if (store_begin(s) != PARLEY_OK) _exit(4);
        hammer_ack acks[8];
        int n = 0;
        for (; n < group && i <= HAMMER_N; n++, i++) {
            parley_msg m;
            int dup = -1;
            snprintf(id, sizeof id, "w%d-%d", me, i);
            if (store_append(s, "r", &a, id, id, strlen(id), i, &m, &dup) !=
                    PARLEY_OK ||
                dup != 0)
                _exit(5);
            acks[n].seq = m.seq;
            snprintf(acks[n].id, sizeof acks[n].id, "%s", id);
        }
        if (store_commit(s) != PARLEY_OK) _exit(6);
        /* Acked only now, after the commit. */
        if (write(out_fd, acks, n * sizeof acks[0]) !=
            (ssize_t)(n * sizeof acks[0]))
            _exit(7);
        /* Every other group, edit the first message of this one. */
        if (i % 2 == 0) {
            parley_msg m;
            if (store_edit(s, "r", acks[0].seq, &a, "edited", 6, i, &m) !=
                PARLEY_OK)
                _exit(8);
            edits++;
        }
    }
    store_close(s);
    /* The number of edits, as the last record (seq 0). */
    hammer_ack last = {0, ""};
    snprintf(last.id, sizeof last.id, "%d", edits);
    _exit(write(out_fd, &last, sizeof last) == (ssize_t)sizeof last ? 0 : 9);
}

static void test_pg_processes_one_room(void)
{
    char path[4200];
    int go[2], out[HAMMER_PROCS][2];
    pid_t pid[HAMMER_PROCS];
    static hammer_ack acks[HAMMER_PROCS * HAMMER_N + HAMMER_PROCS];
    size_t n_acks = 0;
    int edits = 0;
    parley_room r;
    int more;
    store *s = fresh(path, sizeof path, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    store_close(s);

    CU_ASSERT_EQUAL_FATAL(pipe(go), 0);
    fflush(NULL);
    for (int k = 0; k < HAMMER_PROCS; k++) {
        CU_ASSERT_EQUAL_FATAL(pipe(out[k]), 0);
        pid[k] = fork();
        CU_ASSERT_FATAL(pid[k] >= 0);
        if (pid[k] == 0) {
            close(go[1]);
            close(out[k][0]);
            hammer_child(path, k, go[0], out[k][1]);
        }
        close(out[k][1]);
    }
    close(go[0]);
    /* All at once: each child has its connection open and waits. */
    char ones[HAMMER_PROCS];
    memset(ones, 1, sizeof ones);
    CU_ASSERT_EQUAL(write(go[1], ones, sizeof ones), (ssize_t)sizeof ones);
    close(go[1]);
    for (int k = 0; k < HAMMER_PROCS; k++) {
        hammer_ack a;
        while (read(out[k][0], &a, sizeof a) == (ssize_t)sizeof a) {
            if (a.seq == 0)
                edits += atoi(a.id);
            else if (n_acks < sizeof acks / sizeof acks[0])
                acks[n_acks++] = a;
        }
        close(out[k][0]);
        int st = -1;
        waitpid(pid[k], &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            fprintf(stderr, "  writer %d ended with status %d\n", k, st);
        CU_ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    CU_ASSERT_EQUAL(n_acks, (size_t)HAMMER_PROCS * HAMMER_N);

    s = open_at(path, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(list(s, STORE_LATEST, 0, 1000, &g_page, &r, &more),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(r.head_seq, (uint64_t)HAMMER_PROCS * HAMMER_N);
    CU_ASSERT_EQUAL(r.head_rev, (uint64_t)HAMMER_PROCS * HAMMER_N + edits);
    CU_ASSERT_EQUAL(g_page.n, HAMMER_PROCS * HAMMER_N);
    int dense = 1, switches = 0, bad_ack = 0, rev_dups = 0;
    static unsigned char rev_seen[HAMMER_PROCS * HAMMER_N * 2 + 8];
    memset(rev_seen, 0, sizeof rev_seen);
    for (unsigned i = 0; i < g_page.n && i < 1100; i++) {
        const row *x = &g_page.rows[i];
        if (x->seq != i + 1) dense = 0;
        if (x->rev < sizeof rev_seen) {
            if (rev_seen[x->rev]) rev_dups++;
            rev_seen[x->rev] = 1;
        }
        if (x->rev > r.head_rev) rev_dups++;
        if (i && strcmp(x->author, g_page.rows[i - 1].author) != 0) switches++;
    }
    /* Each ack names the message stored under its seq. */
    for (size_t i = 0; i < n_acks; i++) {
        uint64_t q = acks[i].seq;
        if (q < 1 || q > g_page.n ||
            strcmp(g_page.rows[q - 1].client_id, acks[i].id) != 0)
            bad_ack++;
    }
    fprintf(stderr, "  (%d edits; the writer changes %d times along seq)\n",
            edits, switches);
    CU_ASSERT_TRUE(dense);
    CU_ASSERT_EQUAL(rev_dups, 0);
    CU_ASSERT_EQUAL(bad_ack, 0);
    CU_ASSERT_TRUE(edits > 0);
    /* They did write at the same time. */
    CU_ASSERT_TRUE(switches >= HAMMER_PROCS);
    store_close(s);
}

/* Two connections append the same (room, author, client id). */
typedef struct duper {
    const char *target;
    int group; /* inside store_begin .. commit, between other writes */
    parley_err e[3];
    int dup;
    parley_msg m; /* the answer to the duplicate (strings copied below) */
    char body[64];
} duper;

static void *duper_main(void *arg)
{
    duper *d = arg;
    parley_msg m;
    int dup = -1;
    store *s = open_at(d->target, NULL);
    if (s == NULL) {
        d->e[0] = PARLEY_ERR_IO;
        return NULL;
    }
    if (d->group) {
        (void)store_begin(s);
        d->e[0] = post(s, "r2", &BOB, "b-before", "other room", &m, NULL);
    }
    /* Waits on the room lock of the uncommitted original, then meets the
     * unique index: the original is the answer. */
    d->e[1] = post(s, "r", &ADA, "dup-1", "second copy", &m, &dup);
    d->dup = dup;
    d->m = m;
    snprintf(d->body, sizeof d->body, "%.*s", (int)m.body_len, m.body);
    d->e[2] = post(s, "r", &BOB, "b-after", "after", &m, NULL);
    if (d->group && store_commit(s) != PARLEY_OK) d->e[2] = PARLEY_ERR_IO;
    store_close(s);
    return NULL;
}

static void duplicate_race(int group)
{
    char path[4200], app[64], sql[256];
    parley_msg m;
    parley_room r;
    int dup = -1, more;
    snprintf(app, sizeof app, "parley_dup_%d", group);
    CU_ASSERT_EQUAL_FATAL(pg_target_app(path, sizeof path, app), 0);
    store *a = open_at(path, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(store_room_create(a, "r", 1, NULL, NULL), PARLEY_OK);
    CU_ASSERT_EQUAL(store_room_create(a, "r2", 1, NULL, NULL), PARLEY_OK);

    /* A stores the original and holds its transaction open. */
    CU_ASSERT_EQUAL_FATAL(store_begin(a), PARLEY_OK);
    CU_ASSERT_EQUAL(post(a, "r", &ADA, "dup-1", "original", &m, &dup),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(dup, 0);
    CU_ASSERT_EQUAL(m.seq, 1);

    duper d = {.target = path, .group = group};
    pthread_t t;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, duper_main, &d), 0);
    /* B has looked for dup-1 (not visible yet) and waits on A's lock. */
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM pg_stat_activity WHERE application_name"
             " = '%s' AND wait_event_type = 'Lock'",
             app);
    CU_ASSERT_TRUE(admin_wait(sql, 1));
    CU_ASSERT_EQUAL(store_commit(a), PARLEY_OK);
    pthread_join(t, NULL);

    for (int i = group ? 0 : 1; i < 3; i++) CU_ASSERT_EQUAL(d.e[i], PARLEY_OK);
    CU_ASSERT_EQUAL(d.dup, 1);
    CU_ASSERT_EQUAL(d.m.seq, 1);
    CU_ASSERT_EQUAL(d.m.rev, 1);
    CU_ASSERT_STRING_EQUAL(d.body, "original");

    /* Stored once; B's undone attempt left no gap; B's other writes of
     * the group stayed. */
    CU_ASSERT_EQUAL(list(a, STORE_AFTER_REV, 0, 100, &g_page, &r, &more),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(g_page.n, 2);
    CU_ASSERT_EQUAL(r.head_seq, 2);
    CU_ASSERT_EQUAL(r.head_rev, 2);
    CU_ASSERT_STRING_EQUAL(g_page.rows[0].client_id, "dup-1");
    CU_ASSERT_STRING_EQUAL(g_page.rows[0].body, "original");
    CU_ASSERT_STRING_EQUAL(g_page.rows[1].client_id, "b-after");
    CU_ASSERT_EQUAL(g_page.rows[1].seq, 2);
    CU_ASSERT_EQUAL(store_room_get(a, "r2", &r), PARLEY_OK);
    CU_ASSERT_EQUAL(r.head_seq, group ? 1 : 0);
    store_close(a);
}

typedef struct racer {
    const char *target;
    int n;
    int dup[100];
    uint64_t seq[100];
    parley_err e;
} racer;

static void *racer_main(void *arg)
{
    racer *x = arg;
    char id[16];
    store *s = open_at(x->target, NULL);
    for (int i = 0; i < x->n; i++) {
        parley_msg m;
        pthread_barrier_wait(&g_start);
        if (s == NULL) continue;
        snprintf(id, sizeof id, "race-%d", i);
        parley_err e = post(s, "r", &ADA, id, id, &m, &x->dup[i]);
        if (e != PARLEY_OK) x->e = e;
        x->seq[i] = m.seq;
    }
    if (s == NULL) x->e = PARLEY_ERR_IO;
    store_close(s);
    return NULL;
}

static void test_pg_concurrent_duplicates(void)
{
    /* The conflict path, made certain: outside and inside a group. */
    duplicate_race(0);
    duplicate_race(1);

    /* And by the hundred, both connections released at once each time:
     * every id stored once, one of the two told duplicate, both given the
     * same seq. */
    char path[4200];
    static racer x[2];
    pthread_t t[2];
    parley_room r;
    int more;
    store *s = fresh(path, sizeof path, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL_FATAL(pthread_barrier_init(&g_start, NULL, 2), 0);
    for (int k = 0; k < 2; k++) {
        memset(&x[k], 0, sizeof x[k]);
        x[k].target = path;
        x[k].n = 100;
        CU_ASSERT_EQUAL_FATAL(pthread_create(&t[k], NULL, racer_main, &x[k]),
                              0);
    }
    for (int k = 0; k < 2; k++) pthread_join(t[k], NULL);
    pthread_barrier_destroy(&g_start);
    int bad = 0;
    for (int i = 0; i < 100; i++)
        if (x[0].dup[i] + x[1].dup[i] != 1 || x[0].seq[i] != x[1].seq[i]) bad++;
    CU_ASSERT_EQUAL(x[0].e, PARLEY_OK);
    CU_ASSERT_EQUAL(x[1].e, PARLEY_OK);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(list(s, STORE_LATEST, 0, 1000, &g_page, &r, &more),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(g_page.n, 100);
    CU_ASSERT_EQUAL(r.head_seq, 100);
    CU_ASSERT_EQUAL(r.head_rev, 100);
    expect_seqs(&g_page, 1, 100);
    store_close(s);
}

/* ---- PostgreSQL: a lost connection ------------------------------------- */

/* Ends the store's backend from the server side (as a restart or a
 * network cut would), waiting until it is gone. */
static int kill_backend(const char *app)
{
    char sql[256];
    /* The filter first (OFFSET 0 keeps it a subquery of its own): the
     * server may evaluate a WHERE's terms in any order. */
    snprintf(sql, sizeof sql,
             "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 10000))"
             " FROM (SELECT pid FROM pg_stat_activity"
             " WHERE application_name = '%s' OFFSET 0) b",
             app);
    return (int)admin_int(sql);
}

static void test_pg_connection_loss(void)
{
    char path[4200], app[] = "parley_loss";
    parley_msg m;
    parley_room r;
    int more, dup = -1;
    CU_ASSERT_EQUAL_FATAL(pg_target_app(path, sizeof path, app), 0);
    store *s = open_at(path, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(store_room_create(s, "r", 1, NULL, NULL), PARLEY_OK);
    CU_ASSERT_EQUAL(post_n(s, "r", "k", 2), 0);
    store *other = open_at(path, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(other);

    /* Lost in the middle of a group: the rest of the group fails, nothing
     * of it is stored, and the handle works again once it is ended. */
    CU_ASSERT_EQUAL_FATAL(store_begin(s), PARLEY_OK);
    CU_ASSERT_EQUAL(post_n(s, "r", "g", 3), 0);
    CU_ASSERT_EQUAL(kill_backend(app), 2); /* both handles' backends */
    CU_ASSERT_EQUAL(post(s, "r", &ADA, "g4", "after the cut", &m, NULL),
                    PARLEY_ERR_IO);
    fprintf(stderr, "  (mid-group: %s)\n", store_last_error(s));
    CU_ASSERT_EQUAL(post(s, "r", &ADA, "g5", "still cut", &m, NULL),
                    PARLEY_ERR_IO);
    store_rollback(s);
    CU_ASSERT_EQUAL(list(other, STORE_LATEST, 0, 100, &g_page, &r, &more),
                    PARLEY_OK); /* reconnected for a read */
    CU_ASSERT_EQUAL(g_page.n, 2);
    CU_ASSERT_EQUAL(r.head_seq, 2);
    CU_ASSERT_EQUAL(post(s, "r", &ADA, "g1", "retried", &m, &dup), PARLEY_OK);
    CU_ASSERT_EQUAL(dup, 0);
    CU_ASSERT_EQUAL(m.seq, 3); /* no gap */

    /* Lost just before COMMIT: the commit fails, and so was not acked,
     * and nothing of the group is stored. */
    CU_ASSERT_EQUAL_FATAL(store_begin(s), PARLEY_OK);
    CU_ASSERT_EQUAL(post_n(s, "r", "h", 4), 0);
    CU_ASSERT_EQUAL(kill_backend(app), 2);
    CU_ASSERT_EQUAL(store_commit(s), PARLEY_ERR_IO);
    CU_ASSERT_EQUAL(store_get(other, "r", 4, &m), PARLEY_ERR_MESSAGE_NOT_FOUND);
    CU_ASSERT_EQUAL(store_room_get(other, "r", &r), PARLEY_OK);
    CU_ASSERT_EQUAL(r.head_seq, 3);

    /* Lost while idle: the next call of each kind reconnects by itself. */
    CU_ASSERT_EQUAL(store_room_get(s, "r", &r), PARLEY_OK); /* reconnects */
    CU_ASSERT_EQUAL(r.head_seq, 3);
    CU_ASSERT_EQUAL(kill_backend(app), 2);
    CU_ASSERT_EQUAL(post(s, "r", &ADA, "h1", "after idle cut", &m, &dup),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(m.seq, 4);
    CU_ASSERT_EQUAL(kill_backend(app), 1); /* other's went with the last */
    CU_ASSERT_EQUAL(store_edit(s, "r", 4, &ADA, "edited", 6, 1, &m), PARLEY_OK);
    CU_ASSERT_EQUAL(m.rev, 5);
    CU_ASSERT_EQUAL(store_get(other, "r", 4, &m), PARLEY_OK);
    CU_ASSERT_STRING_EQUAL(m.body, "edited");
    CU_ASSERT_EQUAL(store_synchronous(s), STORE_SYNC_FULL);
    store_close(other);
    store_close(s);
}

/* ---- runner ------------------------------------------------------------ */

static int rm_one(const char *p, const struct stat *sb, int type, struct FTW *f)
{
    (void)sb;
    (void)type;
    (void)f;
    return remove(p);
}

static void rm_tree_dir(const char *dir)
{
    if (dir[0]) nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

typedef struct test_row {
    const char *name;
    CU_TestFunc fn;
} test_row;

/* Every engine passes these. */
static const test_row common_tests[] = {
    {"rooms and unknown/invalid rooms", test_rooms},
    {"seq and rev dense from 1", test_seq_rev_dense},
    {"idempotent append", test_idempotency},
    {"list: LATEST, BEFORE_SEQ, AFTER_REV, has_more", test_list_cursors},
    {"list reads one snapshot", test_list_snapshot},
    {"catch-up converges with the live view", test_catch_up_converges},
    {"edit/delete permissions and tombstones", test_permissions},
    {"body limits", test_body_limits},
    {"invalid input leaves the db unchanged", test_invalid_input},
    {"reopen keeps everything", test_reopen},
    {"future schema refused", test_schema_too_new},
    {"group commit", test_group_commit},
    {"two concurrent writers", test_concurrent_writers},
    {"room list in byte order, probe", test_room_list_and_probe},
};

static const test_row sqlite_tests[] = {
    {"open errors", test_open_errors},
    {"synchronous: FULL fsyncs every commit", test_synchronous},
    {"a failed commit leaves nothing", test_commit_failure},
};

static const test_row pg_tests[] = {
    {"open errors (postgres)", test_pg_open_errors},
    {"migrations of an empty database, four opening at once",
     test_pg_migrate_empty},
    {"synchronous_commit on: a WAL flush per commit", test_pg_synchronous},
    {"three processes commit to one room: dense, gap-free",
     test_pg_processes_one_room},
    {"concurrent duplicate client ids from two connections",
     test_pg_concurrent_duplicates},
    {"a lost connection: nothing acked that is not stored",
     test_pg_connection_loss},
};

static int add_tests(CU_pSuite s, const test_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!CU_add_test(s, rows[i].name, rows[i].fn)) return -1;
    return 0;
}

int main(int argc, char **argv)
{
    const char *engine = argc > 1 ? argv[1] : "sqlite";
    const test_row *own;
    size_t n_own;
    if (strcmp(engine, "sqlite") == 0) {
        E = &fx_sqlite;
        own = sqlite_tests;
        n_own = sizeof sqlite_tests / sizeof sqlite_tests[0];
    } else if (strcmp(engine, "postgres") == 0) {
        E = &fx_pg;
        own = pg_tests;
        n_own = sizeof pg_tests / sizeof pg_tests[0];
        g_pg_host = getenv("PARLEY_PG_HOST");
        g_pg_port = getenv("PARLEY_PG_PORT");
        g_pg_user = getenv("PARLEY_PG_USER");
        if (!g_pg_host || !g_pg_port || !g_pg_user) {
            fprintf(stderr, "test_core_store postgres: PARLEY_PG_HOST, "
                            "PARLEY_PG_PORT and PARLEY_PG_USER name the "
                            "server (run it under tests/pg/pgtmp exec)\n");
            return 2;
        }
        char admin[1024];
        pg_uri(admin, sizeof admin, "postgres", NULL);
        g_admin = PQconnectdb(admin);
        if (PQstatus(g_admin) != CONNECTION_OK) {
            fprintf(stderr, "connect %s: %s", admin, PQerrorMessage(g_admin));
            PQfinish(g_admin);
            return 2;
        }
    } else {
        fprintf(stderr, "usage: test_core_store [sqlite|postgres]\n");
        return 2;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/parley-core-XXXXXX",
             tmp && tmp[0] ? tmp : "/tmp");
    if (mkdtemp(g_dir) == NULL) {
        perror("mkdtemp");
        PQfinish(g_admin);
        return 2;
    }
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    char suite_name[64];
    snprintf(suite_name, sizeof suite_name, "store (%s)", E->name);
    CU_pSuite s = CU_add_suite(suite_name, NULL, NULL);
    if (s == NULL ||
        add_tests(s, common_tests,
                  sizeof common_tests / sizeof common_tests[0]) != 0 ||
        add_tests(s, own, n_own) != 0) {
        CU_cleanup_registry();
        rm_tree_dir(g_dir);
        PQfinish(g_admin);
        return 2;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_ErrorCode rc = CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures();
    unsigned suites_failed = CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    rm_tree_dir(g_dir);
    PQfinish(g_admin);
    return (rc != CUE_SUCCESS || failures || suites_failed) ? 1 : 0;
}
