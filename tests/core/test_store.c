/* test_store.c: CUnit tests of the SQLite history store (store.c) against
 * real database files in a fresh temporary directory: seq/rev density,
 * idempotency, paging in every direction, catch-up convergence, permissions,
 * input limits, reopening, schema versions, group commit and concurrent
 * writers. */
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
#include <sqlite3.h>

#include "rules.h"
#include "store.h"

static char g_dir[4096];
static int g_db_no;

static const parley_author ADA = {"ada", "Ada Lovelace", PARLEY_ROLE_PARTICIPANT};
static const parley_author BOB = {"bob", "Bob", PARLEY_ROLE_PARTICIPANT};
static const parley_author ORG = {"olga", "Olga (host)", PARLEY_ROLE_ORGANIZER};

/* ---- fixtures ---------------------------------------------------------- */

static void db_path(char *out, size_t len)
{
    snprintf(out, len, "%s/t%02d.db", g_dir, ++g_db_no);
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

static parley_err list(store *s, store_dir dir, uint64_t cursor,
                       unsigned limit, page *p, parley_room *room, int *more)
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
    CU_ASSERT_EQUAL(store_list(s, "nope", STORE_LATEST, 0, 10, collect, &g_page,
                               &r, &more),
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
    CU_ASSERT_EQUAL(store_edit(s, "r", 3, &ADA, "changed", 7, 500, &m), PARLEY_OK);
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
    CU_ASSERT_EQUAL(list(s, STORE_LATEST, 0, 1000, &g_page, &r, &more), PARLEY_OK);
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
    CU_ASSERT_EQUAL(post(s, "r", &ADA, "same", "second try", &m, &dup), PARLEY_OK);
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
    CU_ASSERT_EQUAL(post(s, "r", &BOB, "same", "bob's again", &m, &dup), PARLEY_OK);
    CU_ASSERT_EQUAL(dup, 1);
    CU_ASSERT_EQUAL(m.seq, 2);
    CU_ASSERT_STRING_EQUAL(m.body, "bob's");
    /* The same id in another room is another message. */
    CU_ASSERT_EQUAL(store_room_create(s, "r2", 1, NULL, NULL), PARLEY_OK);
    CU_ASSERT_EQUAL(post(s, "r2", &ADA, "same", "elsewhere", &m, &dup), PARLEY_OK);
    CU_ASSERT_EQUAL(dup, 0);
    CU_ASSERT_EQUAL(m.seq, 1);

    CU_ASSERT_EQUAL(list(s, STORE_LATEST, 0, 100, &g_page, &r, &more), PARLEY_OK);
    CU_ASSERT_EQUAL(g_page.n, 2);
    CU_ASSERT_EQUAL(r.head_seq, 2);
    CU_ASSERT_EQUAL(r.head_rev, 2);

    /* A repeat after an edit returns the message as it is now, no new rev. */
    CU_ASSERT_EQUAL(store_edit(s, "r", 1, &ADA, "edited", 6, 3000, &m), PARLEY_OK);
    CU_ASSERT_EQUAL(post(s, "r", &ADA, "same", "third try", &m, &dup), PARLEY_OK);
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
    CU_ASSERT_EQUAL(list(s, STORE_LATEST, 0, 10, &g_page, &r, &more), PARLEY_OK);
    expect_seqs(&g_page, 1, 10);
    CU_ASSERT_EQUAL(more, 0);
    CU_ASSERT_EQUAL(list(s, STORE_LATEST, 0, 11, &g_page, &r, &more), PARLEY_OK);
    expect_seqs(&g_page, 1, 10);
    CU_ASSERT_EQUAL(more, 0);

    /* BEFORE_SEQ */
    CU_ASSERT_EQUAL(list(s, STORE_BEFORE_SEQ, 8, 3, &g_page, &r, &more), PARLEY_OK);
    expect_seqs(&g_page, 5, 7);
    CU_ASSERT_EQUAL(more, 1);
    CU_ASSERT_EQUAL(list(s, STORE_BEFORE_SEQ, 4, 3, &g_page, &r, &more), PARLEY_OK);
    expect_seqs(&g_page, 1, 3);
    CU_ASSERT_EQUAL(more, 0);
    CU_ASSERT_EQUAL(list(s, STORE_BEFORE_SEQ, 4, 2, &g_page, &r, &more), PARLEY_OK);
    expect_seqs(&g_page, 2, 3);
    CU_ASSERT_EQUAL(more, 1);
    CU_ASSERT_EQUAL(list(s, STORE_BEFORE_SEQ, 2, 5, &g_page, &r, &more), PARLEY_OK);
    expect_seqs(&g_page, 1, 1);
    CU_ASSERT_EQUAL(more, 0);
    CU_ASSERT_EQUAL(list(s, STORE_BEFORE_SEQ, 1, 5, &g_page, &r, &more), PARLEY_OK);
    CU_ASSERT_EQUAL(g_page.n, 0);
    CU_ASSERT_EQUAL(more, 0);
    CU_ASSERT_EQUAL(list(s, STORE_BEFORE_SEQ, 0, 5, &g_page, &r, &more), PARLEY_OK);
    CU_ASSERT_EQUAL(g_page.n, 0);
    CU_ASSERT_EQUAL(more, 0);
    CU_ASSERT_EQUAL(list(s, STORE_BEFORE_SEQ, 1000, 3, &g_page, &r, &more),
                    PARLEY_OK);
    expect_seqs(&g_page, 8, 10);
    CU_ASSERT_EQUAL(more, 1);
    CU_ASSERT_EQUAL(list(s, STORE_BEFORE_SEQ, UINT64_MAX, 3, &g_page, &r, &more),
                    PARLEY_OK);
    expect_seqs(&g_page, 8, 10);

    /* Scrolling back page by page visits every message once. */
    {
        uint64_t cursor = 11, seen = 0;
        int pages = 0;
        do {
            CU_ASSERT_EQUAL_FATAL(list(s, STORE_BEFORE_SEQ, cursor, 4, &g_page,
                                       &r, &more),
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
    CU_ASSERT_EQUAL(list(s, STORE_AFTER_REV, 0, 4, &g_page, &r, &more), PARLEY_OK);
    expect_seqs(&g_page, 1, 4);
    CU_ASSERT_EQUAL(more, 1);
    CU_ASSERT_EQUAL(list(s, STORE_AFTER_REV, 6, 4, &g_page, &r, &more), PARLEY_OK);
    expect_seqs(&g_page, 7, 10);
    CU_ASSERT_EQUAL(more, 0);
    CU_ASSERT_EQUAL(list(s, STORE_AFTER_REV, 5, 4, &g_page, &r, &more), PARLEY_OK);
    expect_seqs(&g_page, 6, 9);
    CU_ASSERT_EQUAL(more, 1);
    CU_ASSERT_EQUAL(list(s, STORE_AFTER_REV, 7, 4, &g_page, &r, &more), PARLEY_OK);
    expect_seqs(&g_page, 8, 10);
    CU_ASSERT_EQUAL(more, 0);
    CU_ASSERT_EQUAL(list(s, STORE_AFTER_REV, 10, 4, &g_page, &r, &more), PARLEY_OK);
    CU_ASSERT_EQUAL(g_page.n, 0);
    CU_ASSERT_EQUAL(more, 0);
    CU_ASSERT_EQUAL(list(s, STORE_AFTER_REV, UINT64_MAX, 4, &g_page, &r, &more),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(g_page.n, 0);

    /* Limits: 0 is the default (50), 1000 the most, 1001 refused. */
    CU_ASSERT_EQUAL(list(s, STORE_LATEST, 0, 1000, &g_page, &r, &more), PARLEY_OK);
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
    CU_ASSERT_EQUAL(list(s, STORE_AFTER_REV, 0, 0, &g_page, &r, &more), PARLEY_OK);
    expect_seqs(&g_page, 1, 50);
    CU_ASSERT_EQUAL(more, 1);

    /* The callback may stop early. */
    memset(&g_page, 0, sizeof g_page);
    g_page.stop_after = 2;
    CU_ASSERT_EQUAL(store_list(s, "r", STORE_AFTER_REV, 50, 10, collect, &g_page,
                               &r, &more),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(g_page.n, 2);
    CU_ASSERT_EQUAL(g_page.rows[1].rev, 52);
    CU_ASSERT_EQUAL(more, 1); /* 53..55 remain */
    memset(&g_page, 0, sizeof g_page);
    g_page.stop_after = 5;
    CU_ASSERT_EQUAL(store_list(s, "r", STORE_AFTER_REV, 50, 10, collect, &g_page,
                               &r, &more),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(g_page.n, 5);
    CU_ASSERT_EQUAL(more, 0); /* stopped on the last one */
    memset(&g_page, 0, sizeof g_page);
    g_page.stop_after = 1;
    CU_ASSERT_EQUAL(store_list(s, "r", STORE_LATEST, 0, 10, collect, &g_page, &r,
                               &more),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(g_page.n, 1);
    CU_ASSERT_EQUAL(g_page.rows[0].seq, 46);
    /* The handle still works after an early stop (statements were reset). */
    CU_ASSERT_EQUAL(post_n(s, "r", "o", 1), 0);
    CU_ASSERT_EQUAL(store_room_get(s, "r", &r), PARLEY_OK);
    CU_ASSERT_EQUAL(r.head_seq, 56);
    /* NULL room_out / has_more / fn are allowed. */
    CU_ASSERT_EQUAL(store_list(s, "r", STORE_LATEST, 0, 5, NULL, NULL, NULL, NULL),
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
        x->e = post(x->other, "r", &BOB, "late", "written mid-page", NULL, NULL);
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
            p->e = store_edit(s, "r", (uint64_t)i / 2 + 1, &ORG, "re", 2, i, NULL);
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
    CU_ASSERT_EQUAL(store_list(s, "r", STORE_AFTER_REV, 0, 3, intrude, &x, &r,
                               &more),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(x.e, PARLEY_OK);
    CU_ASSERT_EQUAL(x.n, 3);
    CU_ASSERT_EQUAL(r.head_seq, 6);
    CU_ASSERT_EQUAL(r.head_rev, 6);
    CU_ASSERT_EQUAL(more, 1);

    x.n = 1; /* no more intrusions */
    CU_ASSERT_EQUAL(store_list(s, "r", STORE_AFTER_REV, 3, 10, intrude, &x, &r,
                               &more),
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
        CU_ASSERT_EQUAL_FATAL(list(s, STORE_AFTER_REV, from, page_size,
                                   &g_page2, &r, &more),
                              PARLEY_OK);
        for (unsigned i = 0; i < g_page2.n; i++) {
            CU_ASSERT_TRUE(g_page2.rows[i].rev > from);
            if (i) CU_ASSERT_TRUE(g_page2.rows[i].rev > g_page2.rows[i - 1].rev);
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
        CU_ASSERT_EQUAL_FATAL(post(s, "r", i % 3 ? &ADA : &BOB, id, body, &m, &dup),
                              PARLEY_OK);
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
        CU_ASSERT_EQUAL_FATAL(post(s, "r", &BOB, id, body, &m, &dup), PARLEY_OK);
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
    CU_ASSERT_EQUAL(list(s, STORE_LATEST, 0, 1000, &g_page, &r, &more), PARLEY_OK);
    CU_ASSERT_EQUAL(g_page.n, 14);
    for (unsigned i = 0; i < g_page.n; i++) view_apply(&g_full, &g_page.rows[i]);
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
    CU_ASSERT_EQUAL(store_edit(s, "r", 1, &ADA, "ada v2", 6, 11, &m), PARLEY_OK);
    CU_ASSERT_EQUAL(m.rev, 2);
    CU_ASSERT_STRING_EQUAL(m.body, "ada v2");
    CU_ASSERT_EQUAL(m.body_len, 6);
    CU_ASSERT_EQUAL(store_edit(s, "r", 1, &ORG, "by org", 6, 12, &m), PARLEY_OK);
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
    CU_ASSERT_EQUAL(store_get(s, "r", UINT64_MAX, &m), PARLEY_ERR_MESSAGE_NOT_FOUND);
    CU_ASSERT_EQUAL(store_edit(s, "r", 9, &ORG, "x", 1, 1, &m),
                    PARLEY_ERR_MESSAGE_NOT_FOUND);
    CU_ASSERT_EQUAL(store_delete(s, "r", 9, &ORG, 1, &m),
                    PARLEY_ERR_MESSAGE_NOT_FOUND);

    /* Results of one call may be passed to the next (the row buffers). */
    CU_ASSERT_EQUAL(post(s, "r", &BOB, "2", "bob's words", &m, NULL), PARLEY_OK);
    CU_ASSERT_EQUAL(store_get(s, "r", 2, &m), PARLEY_OK);
    CU_ASSERT_EQUAL(store_edit(s, m.room, m.seq, &m.author, m.body, m.body_len,
                               30, &m),
                    PARLEY_OK);
    CU_ASSERT_STRING_EQUAL(m.body, "bob's words");
    CU_ASSERT_EQUAL(m.rev, 6);
    CU_ASSERT_EQUAL(store_delete(s, m.room, m.seq, &m.author, 31, &m), PARLEY_OK);
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

static void expect_unchanged(store *s, const page *before, const parley_room *rb)
{
    parley_room ra;
    snapshot(s, &g_page2, &ra);
    CU_ASSERT_EQUAL(ra.head_seq, rb->head_seq);
    CU_ASSERT_EQUAL(ra.head_rev, rb->head_rev);
    CU_ASSERT_EQUAL(g_page2.n, before->n);
    CU_ASSERT_EQUAL(memcmp(g_page2.rows, before->rows,
                           before->n * sizeof before->rows[0]),
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
    CU_ASSERT_EQUAL(post(s, "r", &ADA, "x", "", &m, NULL), PARLEY_ERR_BODY_EMPTY);
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
    CU_ASSERT_EQUAL(store_append(s, "r", &ADA, "big", big, sizeof big, 1, &m, NULL),
                    PARLEY_ERR_BODY_TOO_LONG);
    CU_ASSERT_EQUAL(store_append(s, "r", &ADA, "big", big, sizeof big - 1, 1, &m,
                                 NULL),
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
        {"over\xC0\xAF", 6},          /* overlong '/' */
        {"over\xE0\x80\xAF", 7},      /* overlong, 3 bytes */
        {"sur\xED\xA0\x80", 6},       /* high surrogate */
        {"sur\xED\xBF\xBF", 6},       /* low surrogate */
        {"trunc\xE2\x82", 7},         /* truncated at the end */
        {"tr\xF0\x9F" "x", 5},        /* truncated in the middle */
        {"nul\0byte", 8},             /* embedded NUL */
        {"big\xF4\x90\x80\x80", 7},   /* U+110000 */
        {"\xF8\x88\x80\x80\x80", 5},  /* 5-byte form */
        {"\x80lead", 5},              /* stray continuation */
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
        CU_ASSERT_EQUAL(store_edit(s, "r", 1, &ADA, bad[i].b, bad[i].len, 1, &m),
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
    CU_ASSERT_EQUAL(post(s, "r", &ADA,
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

static int sql_int(const char *path, const char *sql, int *out)
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

static int sql_text(const char *path, const char *sql, char *out, size_t len)
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

    /* The file is WAL and stamped with the schema version. */
    CU_ASSERT_EQUAL(sql_text(path, "PRAGMA journal_mode", mode, sizeof mode),
                    SQLITE_OK);
    CU_ASSERT_STRING_EQUAL(mode, "wal");
    CU_ASSERT_EQUAL(sql_int(path, "PRAGMA user_version", &v), SQLITE_OK);
    CU_ASSERT_EQUAL(v, 1);

    s = open_at(path, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    snapshot(s, &g_page2, &r2);
    CU_ASSERT_EQUAL(r2.head_seq, 12);
    CU_ASSERT_EQUAL(r2.head_rev, 14);
    CU_ASSERT_EQUAL(r1.head_rev, r2.head_rev);
    CU_ASSERT_EQUAL(g_page.n, 12);
    CU_ASSERT_EQUAL(g_page2.n, g_page.n);
    CU_ASSERT_EQUAL(memcmp(g_page.rows, g_page2.rows, g_page.n * sizeof(row)), 0);
    CU_ASSERT_EQUAL(store_room_get(s, "second", &r2), PARLEY_OK);
    /* Dedupe and counters carry on where they were. */
    CU_ASSERT_EQUAL(post(s, "r", &ADA, "p3", "again", &m, &dup), PARLEY_OK);
    CU_ASSERT_EQUAL(dup, 1);
    CU_ASSERT_EQUAL(m.seq, 3);
    CU_ASSERT_EQUAL(post(s, "r", &ADA, "p13", "new", &m, &dup), PARLEY_OK);
    CU_ASSERT_EQUAL(dup, 0);
    CU_ASSERT_EQUAL(m.seq, 13);
    CU_ASSERT_EQUAL(m.rev, 15);
    CU_ASSERT_EQUAL(list(s, STORE_LATEST, 0, 2, &g_page, &r2, &more), PARLEY_OK);
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
    CU_ASSERT_EQUAL_FATAL(sql_int(path, "PRAGMA user_version = 7", &v), SQLITE_OK);

    s = (store *)&v; /* must be reset to NULL */
    CU_ASSERT_EQUAL(store_open(path, NULL, &s, err, sizeof err),
                    PARLEY_ERR_SCHEMA_TOO_NEW);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "7"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "(1)"));
    fprintf(stderr, "  (schema refusal reads: %s)\n", err);
    /* The file was not touched. */
    CU_ASSERT_EQUAL(sql_int(path, "PRAGMA user_version", &v), SQLITE_OK);
    CU_ASSERT_EQUAL(v, 7);
    CU_ASSERT_EQUAL(sql_int(path, "SELECT count(*) FROM messages", &v), SQLITE_OK);
    CU_ASSERT_EQUAL(v, 2);

    /* Back at version 1 it opens again. */
    CU_ASSERT_EQUAL(sql_int(path, "PRAGMA user_version = 1", &v), SQLITE_OK);
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
    CU_ASSERT_EQUAL(list(s, STORE_LATEST, 0, 100, &g_page, &r, &more), PARLEY_OK);
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
        parley_err e = store_append(s, "r", w->author, id, id, strlen(id), i, &m,
                                    &dup);
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
    CU_ASSERT_EQUAL(list(s, STORE_LATEST, 0, 1000, &g_page, &r, &more), PARLEY_OK);
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
        if (i && strcmp(x->author, g_page.rows[i - 1].author) != 0) interleaved++;
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
        if (i == SYNC_TABLES) return SQLITE_CANTOPEN; /* never silently uncounted */
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
    fprintf(stderr, "  (fsyncs for 20 commits: default %d, FULL %d, NORMAL %d)\n",
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
        if (g_page.rows[i].seq != i + 1 || strcmp(g_page.rows[i].client_id, want))
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

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/parley-core-XXXXXX",
             tmp && tmp[0] ? tmp : "/tmp");
    if (mkdtemp(g_dir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite s = CU_add_suite("store", NULL, NULL);
    if (s == NULL ||
        !CU_add_test(s, "rooms and unknown/invalid rooms", test_rooms) ||
        !CU_add_test(s, "seq and rev dense from 1", test_seq_rev_dense) ||
        !CU_add_test(s, "idempotent append", test_idempotency) ||
        !CU_add_test(s, "list: LATEST, BEFORE_SEQ, AFTER_REV, has_more",
                     test_list_cursors) ||
        !CU_add_test(s, "list reads one snapshot", test_list_snapshot) ||
        !CU_add_test(s, "catch-up converges with the live view",
                     test_catch_up_converges) ||
        !CU_add_test(s, "edit/delete permissions and tombstones",
                     test_permissions) ||
        !CU_add_test(s, "body limits", test_body_limits) ||
        !CU_add_test(s, "invalid input leaves the db unchanged",
                     test_invalid_input) ||
        !CU_add_test(s, "reopen keeps everything", test_reopen) ||
        !CU_add_test(s, "future schema refused", test_schema_too_new) ||
        !CU_add_test(s, "open errors", test_open_errors) ||
        !CU_add_test(s, "group commit", test_group_commit) ||
        !CU_add_test(s, "two concurrent writers", test_concurrent_writers) ||
        !CU_add_test(s, "synchronous: FULL fsyncs every commit",
                     test_synchronous) ||
        !CU_add_test(s, "a failed commit leaves nothing", test_commit_failure)) {
        CU_cleanup_registry();
        rm_tree_dir(g_dir);
        return 2;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_ErrorCode rc = CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures();
    unsigned suites_failed = CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    rm_tree_dir(g_dir);
    return (rc != CUE_SUCCESS || failures || suites_failed) ? 1 : 0;
}
