/* fuzz_store: the core's requests through the store (src/store), the way
 * the History and Stream handlers call it: the input is a little program of
 * operations (create room, append, edit, delete, get, list in each
 * direction) with their arguments taken from the input bytes, run against
 * an in-memory SQLite store, each run in a transaction rolled back after. Invariants checked after each step: a
 * refused operation changed nothing (the head counters stay), seq and rev
 * stay dense (head_seq = messages, head_rev = changes), a list page is
 * ordered and within its limit. */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

typedef struct rd {
    const uint8_t *p;
    size_t n;
} rd;

static unsigned u8(rd *r)
{
    if (!r->n) return 0;
    r->n--;
    return *r->p++;
}

/* A string of up to max bytes (length from the input; may hold anything,
 * NUL included, as the rules must cope). */
static size_t str(rd *r, char *out, size_t max)
{
    size_t len = u8(r) % (max + 1);
    if (len > r->n) len = r->n;
    memcpy(out, r->p, len);
    out[len] = '\0';
    r->p += len;
    r->n -= len;
    return len;
}

static const char *ROOMS[] = {"lobby", "r2", "bad room", ""};

typedef struct page {
    uint64_t last;
    unsigned n;
    store_dir dir;
} page;

static int on_row(const parley_msg *m, void *ud)
{
    page *pg = ud;
    uint64_t key = pg->dir == STORE_AFTER_REV ? m->rev : m->seq;
    assert(pg->n == 0 || key > pg->last);
    pg->last = key;
    pg->n++;
    return 0;
}

static store *S;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    char err[200];
    store_opts o = {64, 0};
    int created;
    if (store_open(":memory:", &o, &S, err, sizeof err) != PARLEY_OK ||
        store_room_create(S, "lobby", 1, NULL, &created) != PARLEY_OK) {
        fprintf(stderr, "fuzz_store: %s\n", err);
        abort();
    }
    return 0;
}

/* Each run is one transaction rolled back at its end, so every run starts
 * from the same empty room "lobby" (and runs a hundred times faster than
 * opening a store each time). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192) return 0;
    store *s = S;
    int created;
    assert(store_begin(s) == PARLEY_OK);
    rd r = {data, size};
    uint64_t msgs = 0, changes = 0; /* what lobby must hold */
    int64_t now = 1000;
    for (int step = 0; step < 64 && r.n; step++) {
        unsigned op = u8(&r) % 7;
        const char *room = ROOMS[u8(&r) % 4];
        char body[80], id[80], who[40];
        size_t bl;
        parley_msg m;
        parley_room before, after;
        int have = store_room_get(s, "lobby", &before) == PARLEY_OK;
        assert(have);
        str(&r, who, 8);
        parley_author a = {who[0] ? who : "ann", "Ann",
                           u8(&r) & 1 ? PARLEY_ROLE_ORGANIZER
                                      : PARLEY_ROLE_PARTICIPANT};
        now += 7;
        switch (op) {
        case 0: {
            char name[80];
            str(&r, name, 70);
            (void)store_room_create(s, name, now, NULL, &created);
            break;
        }
        case 1: {
            str(&r, id, 70);
            bl = str(&r, body, 70);
            int dup = 0;
            if (store_append(s, room, &a, id, body, bl, now, &m, &dup) ==
                    PARLEY_OK &&
                !dup && strcmp(room, "lobby") == 0) {
                msgs++;
                changes++;
                assert(m.seq == msgs && m.rev == changes);
            }
            break;
        }
        case 2: {
            uint64_t seq = u8(&r) % 8;
            bl = str(&r, body, 70);
            if (store_edit(s, room, seq, &a, body, bl, now, &m) == PARLEY_OK &&
                strcmp(room, "lobby") == 0) {
                changes++;
                assert(m.rev == changes);
            }
            break;
        }
        case 3: {
            uint64_t seq = u8(&r) % 8;
            if (store_delete(s, room, seq, &a, now, &m) == PARLEY_OK &&
                strcmp(room, "lobby") == 0 && m.rev > before.head_rev)
                changes++;
            break;
        }
        case 4:
            (void)store_get(s, room, u8(&r) % 8, &m);
            break;
        default: {
            page pg = {0, 0, (store_dir)(u8(&r) % 3)};
            unsigned limit = 1 + u8(&r) % 20;
            int more;
            parley_room rr;
            if (store_list(s, room, pg.dir, u8(&r) % 10, limit, on_row, &pg,
                           &rr, &more) == PARLEY_OK)
                assert(pg.n <= limit);
            break;
        }
        }
        assert(store_room_get(s, "lobby", &after) == PARLEY_OK);
        assert(after.head_seq == msgs && after.head_rev == changes);
    }
    store_rollback(s);
    return 0;
}
