/* loadgen_seed.c (bench-seed): prepares a parley database for the benchmark
 * through the store API before parleyd opens it: creates the rooms the load
 * generator uses (PREFIX-0 .. PREFIX-N-1) and fills one history room with M
 * messages in a single transaction (synchronous=NORMAL: seeding needs no
 * fsync per row). */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store.h"

static int64_t seed_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv) {
    const char *db = NULL, *prefix = "bench", *big = NULL;
    unsigned long rooms = 0, msgs = 0;
    static const struct option opts[] = {
        {"db", 1, 0, 'd'},       {"room-prefix", 1, 0, 'p'},
        {"rooms", 1, 0, 'r'},    {"history-room", 1, 0, 'h'},
        {"messages", 1, 0, 'm'}, {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'd': db = optarg; break;
        case 'p': prefix = optarg; break;
        case 'r': rooms = strtoul(optarg, NULL, 10); break;
        case 'h': big = optarg; break;
        case 'm': msgs = strtoul(optarg, NULL, 10); break;
        default: goto usage;
        }
    }
    if (!db) goto usage;
    store *s = NULL;
    char err[256];
    store_opts so = {.max_body_bytes = 0, .synchronous_full = 0};
    parley_err e = store_open(db, &so, &s, err, sizeof err);
    if (e != PARLEY_OK) {
        fprintf(stderr, "bench-seed: open %s: %s (%s)\n", db, parley_err_name(e), err);
        return 1;
    }
    int64_t now = seed_now_ms();
    if ((e = store_begin(s)) != PARLEY_OK) goto fail;
    for (unsigned long i = 0; i < rooms; i++) {
        char name[64];
        parley_room r;
        int created;
        snprintf(name, sizeof name, "%s-%lu", prefix, i);
        if ((e = store_room_create(s, name, now, &r, &created)) != PARLEY_OK) goto fail;
    }
    if (big) {
        parley_room r;
        int created;
        if ((e = store_room_create(s, big, now, &r, &created)) != PARLEY_OK) goto fail;
        parley_author a = {.id = "seed", .display_name = "Seeder",
                          .role = PARLEY_ROLE_PARTICIPANT};
        for (unsigned long i = 0; i < msgs; i++) {
            char cid[32], body[128];
            snprintf(cid, sizeof cid, "seed-%lu", i);
            int n = snprintf(body, sizeof body,
                             "history message %lu: the quick brown fox jumps over the lazy dog", i);
            parley_msg m;
            int dup;
            e = store_append(s, big, &a, cid, body, (size_t)n, now, &m, &dup);
            if (e != PARLEY_OK) goto fail;
        }
    }
    if ((e = store_commit(s)) != PARLEY_OK) goto fail;
    store_close(s);
    printf("seeded %lu rooms%s%s with %lu messages\n", rooms, big ? " and " : "",
           big ? big : "", big ? msgs : 0);
    return 0;
fail:
    fprintf(stderr, "bench-seed: %s (%s)\n", parley_err_name(e), store_last_error(s));
    store_rollback(s);
    store_close(s);
    return 1;
usage:
    fprintf(stderr, "usage: bench-seed --db PATH [--room-prefix P --rooms N] "
                    "[--history-room R --messages M]\n");
    return 2;
}
