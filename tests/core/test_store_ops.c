/* test_store_ops.c: CUnit tests of the store calls operations rely on,
 * against real database files: listing rooms by name in pages
 * (store_room_list, behind History.ListRooms) and knowing whether the store
 * can commit (store_write_status, store_probe, behind grpc.health.v1), with
 * a real full disk: RLIMIT_FSIZE makes every write past a size fail with
 * EFBIG, as a full file system would, without root. */
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "rules.h"
#include "store.h"

static char g_dir[4096];
static int g_db_no;

static const parley_author ADA = {"ada", "Ada", PARLEY_ROLE_PARTICIPANT};

static store *fresh(char *path, size_t len)
{
    snprintf(path, len, "%s/ops%02d.db", g_dir, ++g_db_no);
    store *s = NULL;
    char err[256];
    if (store_open(path, NULL, &s, err, sizeof err) != PARLEY_OK) {
        fprintf(stderr, "store_open %s: %s\n", path, err);
        return NULL;
    }
    return s;
}

/* ---- store_room_list --------------------------------------------------- */

typedef struct room_page {
    char names[32][RULES_ROOM_MAX + 1];
    uint64_t seq[32], rev[32];
    int n, stop_after;
} room_page;

static int collect(const parley_room *r, void *ud)
{
    room_page *p = ud;
    if (p->n < 32) {
        snprintf(p->names[p->n], sizeof p->names[0], "%s", r->name);
        p->seq[p->n] = r->head_seq;
        p->rev[p->n] = r->head_rev;
    }
    p->n++;
    return p->stop_after && p->n >= p->stop_after;
}

static void test_room_list(void)
{
    char path[4200];
    store *s = fresh(path, sizeof path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    room_page p;
    int more = 7;

    /* No rooms at all. */
    memset(&p, 0, sizeof p);
    CU_ASSERT_EQUAL(store_room_list(s, "", 10, collect, &p, &more), PARLEY_OK);
    CU_ASSERT_EQUAL(p.n, 0);
    CU_ASSERT_EQUAL(more, 0);

    /* Created out of order, listed by name (byte order: upper case first). */
    const char *names[] = {"lobby", "Zed", "b-2", "b-10", "general", "a.x"};
    for (size_t i = 0; i < 6; i++)
        CU_ASSERT_EQUAL(store_room_create(s, names[i], 1, NULL, NULL),
                        PARLEY_OK);
    parley_msg m;
    CU_ASSERT_EQUAL(
        store_append(s, "general", &ADA, "c1", "hi", 2, 5, &m, NULL),
        PARLEY_OK);
    CU_ASSERT_EQUAL(
        store_append(s, "general", &ADA, "c2", "ho", 2, 5, &m, NULL),
        PARLEY_OK);
    CU_ASSERT_EQUAL(store_delete(s, "general", 1, &ADA, 6, &m), PARLEY_OK);

    memset(&p, 0, sizeof p);
    CU_ASSERT_EQUAL(store_room_list(s, NULL, 0, collect, &p, &more), PARLEY_OK);
    CU_ASSERT_EQUAL_FATAL(p.n, 6);
    const char *want[] = {"Zed", "a.x", "b-10", "b-2", "general", "lobby"};
    for (int i = 0; i < 6; i++) CU_ASSERT_STRING_EQUAL(p.names[i], want[i]);
    CU_ASSERT_EQUAL(p.seq[4], 2); /* general: two messages, */
    CU_ASSERT_EQUAL(p.rev[4], 3); /* and a deletion */
    CU_ASSERT_EQUAL(p.seq[5], 0);
    CU_ASSERT_EQUAL(more, 0);

    /* Pages of two, each after the last name of the one before. */
    char after[RULES_ROOM_MAX + 1] = "";
    int pages = 0, total = 0;
    do {
        memset(&p, 0, sizeof p);
        CU_ASSERT_EQUAL_FATAL(store_room_list(s, after, 2, collect, &p, &more),
                              PARLEY_OK);
        CU_ASSERT_TRUE(p.n >= 1 && p.n <= 2);
        for (int i = 0; i < p.n; i++)
            CU_ASSERT_STRING_EQUAL(p.names[i], want[total + i]);
        total += p.n;
        snprintf(after, sizeof after, "%s", p.names[p.n - 1]);
        pages++;
    } while (more && pages < 10);
    CU_ASSERT_EQUAL(total, 6);
    CU_ASSERT_EQUAL(pages, 3);

    /* A cursor that is no room still orders: after "b" comes "b-10". */
    memset(&p, 0, sizeof p);
    CU_ASSERT_EQUAL(store_room_list(s, "b", 1, collect, &p, &more), PARLEY_OK);
    CU_ASSERT_EQUAL(p.n, 1);
    CU_ASSERT_STRING_EQUAL(p.names[0], "b-10");
    CU_ASSERT_EQUAL(more, 1);

    /* A callback that stops early still learns whether more follow. */
    memset(&p, 0, sizeof p);
    p.stop_after = 2;
    CU_ASSERT_EQUAL(store_room_list(s, "", 10, collect, &p, &more), PARLEY_OK);
    CU_ASSERT_EQUAL(p.n, 2);
    CU_ASSERT_EQUAL(more, 1);
    memset(&p, 0, sizeof p);
    p.stop_after = 1;
    CU_ASSERT_EQUAL(store_room_list(s, "general", 10, collect, &p, &more),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(p.n, 1);
    CU_ASSERT_EQUAL(more, 0);

    /* Bad input: refused, nothing called. */
    memset(&p, 0, sizeof p);
    CU_ASSERT_EQUAL(store_room_list(s, "", 1001, collect, &p, &more),
                    PARLEY_ERR_BAD_CURSOR);
    CU_ASSERT_EQUAL(store_room_list(s, "no spaces", 5, collect, &p, &more),
                    PARLEY_ERR_ROOM_INVALID);
    CU_ASSERT_EQUAL(p.n, 0);
    store_close(s);
}

/* ---- store_write_status / store_probe on a full disk -------------------- */

static long long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

static void test_full_disk(void)
{
    char path[4200], wal[4300];
    store *s = fresh(path, sizeof path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    snprintf(wal, sizeof wal, "%s-wal", path);
    CU_ASSERT_EQUAL(store_write_status(s), PARLEY_OK);
    CU_ASSERT_EQUAL(store_room_create(s, "r", 1, NULL, NULL), PARLEY_OK);
    /* The probe reaches the disk: the WAL grows by at least a page. */
    long long before = file_size(wal);
    CU_ASSERT_EQUAL(store_probe(s), PARLEY_OK);
    CU_ASSERT_TRUE(file_size(wal) > before);
    parley_room r;
    CU_ASSERT_EQUAL(store_room_get(s, "r", &r), PARLEY_OK);
    CU_ASSERT_EQUAL(r.head_rev, 0); /* and changed nothing visible */

    /* A refusal by the rules or the data says nothing about the disk. */
    CU_ASSERT_EQUAL(store_append(s, "nope", &ADA, "x", "b", 1, 1, NULL, NULL),
                    PARLEY_ERR_ROOM_NOT_FOUND);
    CU_ASSERT_EQUAL(store_write_status(s), PARLEY_OK);

    /* The disk fills up 64 KiB past the WAL's size. */
    struct rlimit old, lim;
    CU_ASSERT_EQUAL_FATAL(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*old_sig)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = (rlim_t)(file_size(wal) + 64 * 1024);
    CU_ASSERT_EQUAL_FATAL(setrlimit(RLIMIT_FSIZE, &lim), 0);
    char id[32], body[2048];
    memset(body, 'x', sizeof body - 1);
    body[sizeof body - 1] = 0;
    parley_err e = PARLEY_OK;
    int acked = 0;
    for (int i = 0; i < 1000 && e == PARLEY_OK; i++) {
        snprintf(id, sizeof id, "f%d", i);
        e = store_append(s, "r", &ADA, id, body, strlen(body), 1, NULL, NULL);
        if (e == PARLEY_OK) acked++;
    }
    CU_ASSERT_EQUAL(e, PARLEY_ERR_IO);
    CU_ASSERT_TRUE(acked > 0 && acked < 1000);
    CU_ASSERT_EQUAL(store_write_status(s), PARLEY_ERR_IO);
    /* A group commit on the full disk fails too, and so does the probe. */
    if (store_begin(s) == PARLEY_OK) {
        e = store_append(s, "r", &ADA, "g1", body, strlen(body), 1, NULL, NULL);
        if (e == PARLEY_OK)
            e = store_commit(s);
        else
            store_rollback(s);
        CU_ASSERT_EQUAL(e, PARLEY_ERR_IO);
    }
    CU_ASSERT_EQUAL(store_probe(s), PARLEY_ERR_IO);
    CU_ASSERT_EQUAL(store_write_status(s), PARLEY_ERR_IO);
    /* Reads go on. */
    CU_ASSERT_EQUAL(store_room_get(s, "r", &r), PARLEY_OK);
    CU_ASSERT_EQUAL(r.head_seq, (uint64_t)acked);

    /* Space again: the probe says so, and writes work. */
    CU_ASSERT_EQUAL(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, old_sig);
    CU_ASSERT_EQUAL(store_probe(s), PARLEY_OK);
    CU_ASSERT_EQUAL(store_write_status(s), PARLEY_OK);
    CU_ASSERT_EQUAL(store_append(s, "r", &ADA, "after", "b", 1, 1, NULL, NULL),
                    PARLEY_OK);
    CU_ASSERT_EQUAL(store_room_get(s, "r", &r), PARLEY_OK);
    CU_ASSERT_EQUAL(r.head_seq, (uint64_t)acked + 1);

    /* Inside a group commit the probe is a caller's bug. */
    CU_ASSERT_EQUAL(store_begin(s), PARLEY_OK);
    CU_ASSERT_EQUAL(store_probe(s), PARLEY_ERR_INTERNAL);
    store_rollback(s);
    store_close(s);
}

static int rm_entry(const char *p, const struct stat *sb, int flag,
                    struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/parley-storeops-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite su = CU_add_suite("store operations", NULL, NULL);
    if (!su || !CU_add_test(su, "room list by name, paged", test_room_list) ||
        !CU_add_test(su, "write status and probe on a full disk",
                     test_full_disk)) {
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return fails ? 1 : 0;
}
