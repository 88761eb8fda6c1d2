/* loadgen_seed.c (bench-seed): prepares a parley database for the benchmark
 * through the store API before parleyd opens it: creates the rooms the load
 * generator uses (PREFIX-0 .. PREFIX-N-1) and fills one history room with M
 * messages in a single transaction (synchronous=NORMAL: seeding needs no
 * fsync per row). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "settings.h"
#include "store.h"

typedef struct seed_opts {
    char db[512], prefix[64], big[128];
    size_t rooms, msgs;
} seed_opts;

#define F(field) SETTING_FIELD(seed_opts, field)
static const setting seed_rows[] = {
    {"db", NULL, SETTING_STR, F(db), "", 0, 0, "PATH",
     "the database to seed (required)", 0},
    {"room-prefix", NULL, SETTING_STR, F(prefix), "bench", 0, 0, "P",
     "rooms P-0, P-1, ...", 0},
    {"rooms", NULL, SETTING_SIZE, F(rooms), "0", 0, 1e7, "N",
     "how many such rooms", 0},
    {"history-room", NULL, SETTING_STR, F(big), "", 0, 0, "R",
     "a room to fill with messages", 0},
    {"messages", NULL, SETTING_SIZE, F(msgs), "0", 0, 1e9, "M",
     "how many messages in it", 0},
};
#undef F

static const settings_spec seed_spec = {
    .program = "bench-seed",
    .summary = "Creates rooms and history for bench/run.",
    .rows = seed_rows,
    .n_rows = sizeof seed_rows / sizeof seed_rows[0],
};

int main(int argc, char **argv)
{
    static seed_opts o;
    int r = settings_load_main(&seed_spec, &o, argc, argv);
    if (r >= 0) return r;
    char err[700];
    if (!*o.db) {
        settings_usage(&seed_spec, stderr);
        return 2;
    }
    const char *db = o.db, *prefix = o.prefix, *big = *o.big ? o.big : NULL;
    unsigned long rooms = o.rooms, msgs = o.msgs;
    store *s = NULL;
    store_opts so = {.max_body_bytes = 0, .synchronous_full = 0};
    parley_err e = store_open(db, &so, &s, err, sizeof err);
    if (e != PARLEY_OK) {
        fprintf(stderr, "bench-seed: open %s: %s (%s)\n", db,
                parley_err_name(e), err);
        return 1;
    }
    int64_t now = clock_wall_ms();
    if ((e = store_begin(s)) != PARLEY_OK) goto fail;
    for (unsigned long i = 0; i < rooms; i++) {
        char name[96];
        parley_room r;
        int created;
        snprintf(name, sizeof name, "%s-%lu", prefix, i);
        if ((e = store_room_create(s, name, now, &r, &created)) != PARLEY_OK)
            goto fail;
    }
    if (big) {
        parley_room r;
        int created;
        if ((e = store_room_create(s, big, now, &r, &created)) != PARLEY_OK)
            goto fail;
        parley_author a = {.id = "seed",
                           .display_name = "Seeder",
                           .role = PARLEY_ROLE_PARTICIPANT};
        for (unsigned long i = 0; i < msgs; i++) {
            char cid[32], body[128];
            snprintf(cid, sizeof cid, "seed-%lu", i);
            int n = snprintf(body, sizeof body,
                             "history message %lu: the quick brown fox jumps "
                             "over the lazy dog",
                             i);
            parley_msg m;
            int dup;
            e = store_append(s, big, &a, cid, body, (size_t)n, now, &m, &dup);
            if (e != PARLEY_OK) goto fail;
        }
    }
    if ((e = store_commit(s)) != PARLEY_OK) goto fail;
    store_close(s);
    printf("seeded %lu rooms%s%s with %lu messages\n", rooms,
           big ? " and " : "", big ? big : "", big ? msgs : 0);
    return 0;
fail:
    fprintf(stderr, "bench-seed: %s (%s)\n", parley_err_name(e),
            store_last_error(s));
    store_rollback(s);
    store_close(s);
    return 1;
}
