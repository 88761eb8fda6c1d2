/* loadgen_grpc.c (loadgen-grpc): the gRPC side of the benchmark, on the grpc
 * C core (one channel, one completion queue, C calls kept in flight):
 *   list     History.ListMessages of `limit` messages before a random seq of
 *            the history room: requests/s and latency percentiles;
 *   publish  Stream.Publish from C concurrent publishers (one author each),
 *            every answer an ack after commit: acked publishes/s; with
 *            --db, "stored" is how many messages the room gained (each acked
 *            publish must be exactly one);
 *   sqlite   the same page read straight from the database file through the
 *            store API (src/store.h store_list), one thread: the limit.
 * Method paths come from the generated tables (gen/parley/v1/history.grpc.h, stream.grpc.h).
 * Prints one JSON object on stdout. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "hist.h"
#include "lg_proc.h"
#include "lg_token.h"
#include "parley/v1/history.grpc.h"
#include "parley/v1/history.pb-c.h"
#include "parley/v1/stream.grpc.h"
#include "parley/v1/stream.pb-c.h"
#include "rpc_client.h"
#include "store.h"

enum { LGG_LIST, LGG_PUBLISH, LGG_SQLITE };

typedef struct lgg_slot {
    int idx;
    const char *token;
    rpc_client_unary u; /* the call in flight (src/rpc_client.h) */
    uint64_t t0;
    uint64_t n;
} lgg_slot;

typedef struct lgg {
    int mode;
    const char *target, *room, *db;
    unsigned limit, conc;
    double duration;
    size_t body_size;
    uint64_t head_seq;
    grpc_channel *ch;
    grpc_completion_queue *cq;
    const rpc_method_desc *method;
    char **tokens;
    size_t n_tokens;
    hist *lat;
    uint64_t ok, failed, dup, bad, rows;
    int last_status;
    char last_detail[160];
    pid_t pids[8];
    int n_pids;
    uint64_t rng;
} lgg;

static uint64_t lgg_rand(lgg *g) {
    g->rng ^= g->rng << 13;
    g->rng ^= g->rng >> 7;
    g->rng ^= g->rng << 17;
    return g->rng;
}

static uint64_t lgg_cursor(lgg *g) {
    /* before_seq in [limit+1, head_seq+1]: a full page anywhere in the room */
    uint64_t lo = g->limit + 1, hi = g->head_seq + 1;
    if (hi <= lo) return hi;
    return lo + lgg_rand(g) % (hi - lo + 1);
}

/* Starts one call on slot s: a ListMessages page before a random seq, or a
 * publish with a fresh client_msg_id and a timestamped body. */
static int lgg_start(lgg *g, lgg_slot *s) {
    gpr_timespec dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                   gpr_time_from_seconds(30, GPR_TIMESPAN));
    Parley__V1__ListMessagesRequest list = PARLEY__V1__LIST_MESSAGES_REQUEST__INIT;
    Parley__V1__PublishRequest pub = PARLEY__V1__PUBLISH_REQUEST__INIT;
    char cid[64], body[4096];
    const ProtobufCMessage *req;
    if (g->mode == LGG_LIST) {
        list.room = (char *)g->room;
        list.limit = g->limit;
        list.cursor_case = PARLEY__V1__LIST_MESSAGES_REQUEST__CURSOR_BEFORE_SEQ;
        list.before_seq = lgg_cursor(g);
        req = &list.base;
    } else {
        snprintf(cid, sizeof cid, "g%d-%" PRIu64, s->idx, s->n);
        size_t n = (size_t)snprintf(body, sizeof body, "lg %" PRIu64 " %d %" PRIu64 " ",
                                    lg_now_ns(), s->idx, s->n);
        while (n < g->body_size && n < sizeof body - 1) body[n++] = 'x';
        body[n] = 0;
        pub.room = (char *)g->room;
        pub.client_msg_id = cid;
        pub.body = body;
        req = &pub.base;
    }
    s->t0 = lg_now_ns();
    if (rpc_client_unary_start(&s->u, g->ch, g->cq, g->method->path, s->token,
                               req, dl, s) != PARLEY_OK)
        return -1;
    return 0;
}

/* Counts the answer of slot s's call, which completed with `success`. */
static void lgg_finish(lgg *g, lgg_slot *s, int success) {
    uint64_t now = lg_now_ns();
    ProtobufCMessage *resp = NULL;
    int unavailable = 0;
    parley_err e = rpc_client_unary_finish(&s->u, success, g->method->output, &resp,
                                           g->last_detail, sizeof g->last_detail,
                                           &unavailable);
    if (e == PARLEY_OK && resp) {
        int good = 0;
        if (g->mode == LGG_LIST) {
            const Parley__V1__ListMessagesResponse *m = (const void *)resp;
            good = m->n_messages == g->limit || g->head_seq < g->limit;
            g->rows += m->n_messages;
        } else {
            const Parley__V1__PublishResponse *m = (const void *)resp;
            good = m->message && m->message->seq > 0;
            if (m->duplicate) g->dup++;
        }
        protobuf_c_message_free_unpacked(resp, NULL);
        if (good) {
            g->ok++;
            hist_record(g->lat, now - s->t0);
        } else {
            g->bad++;
        }
    } else {
        g->failed++;
        g->last_status = success ? (int)s->u.status : -1;
    }
    s->n++;
    rpc_client_unary_free(&s->u);
}

static int lgg_room_head(lgg *g) {
    store *st = NULL;
    char err[200];
    parley_err e = store_open(g->db, NULL, &st, err, sizeof err);
    if (e != PARLEY_OK) {
        fprintf(stderr, "loadgen-grpc: open %s: %s\n", g->db, err);
        return -1;
    }
    store_room r;
    e = store_room_get(st, g->room, &r);
    if (e == PARLEY_OK) g->head_seq = r.head_seq;
    store_close(st);
    return e == PARLEY_OK ? 0 : -1;
}

static int lgg_count_row(const store_msg *m, void *ud) {
    (void)m;
    (*(uint64_t *)ud)++;
    return 0;
}

static int lgg_run_sqlite(lgg *g) {
    store *st = NULL;
    char err[200];
    if (store_open(g->db, NULL, &st, err, sizeof err) != PARLEY_OK) {
        fprintf(stderr, "loadgen-grpc: open %s: %s\n", g->db, err);
        return -1;
    }
    uint64_t end = lg_now_ns() + (uint64_t)(g->duration * 1e9);
    while (lg_now_ns() < end) {
        uint64_t rows = 0, t0 = lg_now_ns();
        int more = 0;
        parley_err e = store_list(st, g->room, STORE_BEFORE_SEQ, lgg_cursor(g),
                                  g->limit, lgg_count_row, &rows, NULL, &more);
        if (e != PARLEY_OK || rows != g->limit) {
            g->bad++;
            continue;
        }
        hist_record(g->lat, lg_now_ns() - t0);
        g->ok++;
        g->rows += rows;
    }
    store_close(st);
    return 0;
}

static int lgg_run_grpc(lgg *g) {
    const rpc_method_desc *m =
        g->mode == LGG_LIST
            ? &parley_v1_History_service.methods[PARLEY_V1_HISTORY_LIST_MESSAGES]
            : &parley_v1_Stream_service.methods[PARLEY_V1_STREAM_PUBLISH];
    g->method = m;
    grpc_channel_credentials *cr = grpc_insecure_credentials_create();
    g->ch = grpc_channel_create(g->target, cr, NULL);
    grpc_channel_credentials_release(cr);
    g->cq = grpc_completion_queue_create_for_next(NULL);
    lgg_slot *slots = calloc(g->conc, sizeof *slots);
    if (!slots) return -1;
    unsigned inflight = 0;
    for (unsigned i = 0; i < g->conc; i++) {
        slots[i].idx = (int)i;
        slots[i].token = g->tokens[i % g->n_tokens];
    }
    uint64_t end = lg_now_ns() + (uint64_t)(g->duration * 1e9);
    for (unsigned i = 0; i < g->conc; i++)
        if (lgg_start(g, &slots[i]) == 0) inflight++;
    while (inflight) {
        grpc_event ev = grpc_completion_queue_next(
            g->cq, gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                gpr_time_from_seconds(35, GPR_TIMESPAN)),
            NULL);
        if (ev.type != GRPC_OP_COMPLETE) {
            fprintf(stderr, "loadgen-grpc: completion queue timed out\n");
            break;
        }
        lgg_slot *s = ev.tag;
        lgg_finish(g, s, ev.success);
        inflight--;
        if (lg_now_ns() < end && lgg_start(g, s) == 0) inflight++;
    }
    grpc_channel_destroy(g->ch);
    grpc_completion_queue_shutdown(g->cq);
    while (grpc_completion_queue_next(g->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
               .type != GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(g->cq);
    free(slots);
    return 0;
}

int main(int argc, char **argv) {
    lgg g;
    memset(&g, 0, sizeof g);
    g.limit = 50;
    g.conc = 16;
    g.duration = 10;
    g.body_size = 64;
    g.room = "history";
    g.rng = 0x2545F4914F6CDD1DULL;
    const char *mode = NULL, *secret_file = NULL;
    static const struct option opts[] = {
        {"mode", 1, 0, 'm'},   {"target", 1, 0, 't'}, {"room", 1, 0, 'r'},
        {"db", 1, 0, 'D'},     {"limit", 1, 0, 'l'},  {"concurrency", 1, 0, 'c'},
        {"duration", 1, 0, 'd'}, {"size", 1, 0, 'b'}, {"pid", 1, 0, 'i'},
        {"secret-file", 1, 0, 'f'}, {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'm': mode = optarg; break;
        case 't': g.target = optarg; break;
        case 'r': g.room = optarg; break;
        case 'D': g.db = optarg; break;
        case 'l': g.limit = (unsigned)atoi(optarg); break;
        case 'c': g.conc = (unsigned)atoi(optarg); break;
        case 'd': g.duration = atof(optarg); break;
        case 'b': g.body_size = strtoul(optarg, NULL, 10); break;
        case 'i': if (g.n_pids < 8) g.pids[g.n_pids++] = atoi(optarg); break;
        case 'f': secret_file = optarg; break;
        default: goto usage;
        }
    }
    if (!mode) goto usage;
    if (!strcmp(mode, "list")) g.mode = LGG_LIST;
    else if (!strcmp(mode, "publish")) g.mode = LGG_PUBLISH;
    else if (!strcmp(mode, "sqlite")) g.mode = LGG_SQLITE;
    else goto usage;
    if (g.conc == 0 || g.limit == 0 || g.limit > 1000) goto usage;
    if ((g.mode != LGG_PUBLISH || g.db) && !g.db) goto usage;
    if (g.mode != LGG_SQLITE && !g.target) goto usage;
    if (g.db && lgg_room_head(&g) != 0) {
        fprintf(stderr, "loadgen-grpc: room %s not found in %s\n", g.room, g.db);
        return 1;
    }
    g.lat = hist_new();
    if (!g.lat) return 1;
    if (g.mode != LGG_SQLITE) {
        char buf[512];
        const char *sec = getenv("PARLEY_JWT_SECRET");
        if (secret_file) {
            FILE *f = fopen(secret_file, "r");
            if (!f) {
                perror(secret_file);
                return 2;
            }
            size_t k = fread(buf, 1, sizeof buf - 1, f);
            fclose(f);
            while (k && (buf[k - 1] == '\n' || buf[k - 1] == '\r')) k--;
            buf[k] = 0;
            sec = buf;
        }
        if (!sec) {
            fprintf(stderr, "loadgen-grpc: needs --secret-file or PARLEY_JWT_SECRET\n");
            return 2;
        }
        char err[128];
        g.n_tokens = g.conc;
        g.tokens = lg_token_mint(sec, g.n_tokens, err, sizeof err);
        if (!g.tokens) {
            fprintf(stderr, "loadgen-grpc: %s\n", err);
            return 2;
        }
        grpc_init();
    }
    int64_t srv0 = 0, srv1 = 0;
    for (int i = 0; i < g.n_pids; i++) srv0 += lg_proc_cpu_ns(g.pids[i]);
    int64_t self0 = lg_self_cpu_ns();
    uint64_t t0 = lg_now_ns();
    uint64_t head_before = g.head_seq;
    int rc = g.mode == LGG_SQLITE ? lgg_run_sqlite(&g) : lgg_run_grpc(&g);
    /* publish with --db: how many new messages the database holds now; each
     * acked publish (fresh client_msg_ids) must be exactly one of them. */
    int64_t stored = -1;
    if (g.mode == LGG_PUBLISH && g.db && lgg_room_head(&g) == 0)
        stored = (int64_t)(g.head_seq - head_before);
    uint64_t wall = lg_now_ns() - t0;
    int64_t self1 = lg_self_cpu_ns();
    int64_t hwm = 0, rss = 0;
    for (int i = 0; i < g.n_pids; i++) {
        srv1 += lg_proc_cpu_ns(g.pids[i]);
        int64_t h, r;
        if (lg_proc_mem_kb(g.pids[i], &h, &r) == 0) {
            hwm += h;
            rss += r;
        }
    }
    printf("{\"mode\":\"%s\",\"concurrency\":%u,\"limit\":%u,\"head_seq\":%" PRIu64
           ",\"ok\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"bad\":%" PRIu64
           ",\"dup\":%" PRIu64 ",\"last_status\":%d,\"last_detail\":\"%s\","
           "\"wall_s\":%.3f,\"per_s\":%.0f,\"p50_us\":%.1f,\"p99_us\":%.1f,"
           "\"p999_us\":%.1f,\"max_us\":%.1f,\"lg_cpu_pct\":%.1f,"
           "\"srv_cpu_pct\":%.1f,\"srv_rss_peak_kb\":%" PRId64
           ",\"stored\":%" PRId64 "}\n",
           mode, g.conc, g.limit, g.head_seq, g.ok, g.failed, g.bad, g.dup,
           g.last_status, g.last_detail, (double)wall / 1e9,
           (double)g.ok / ((double)wall / 1e9), hist_percentile(g.lat, 50) / 1e3,
           hist_percentile(g.lat, 99) / 1e3, hist_percentile(g.lat, 99.9) / 1e3,
           hist_max(g.lat) / 1e3, 100.0 * (double)(self1 - self0) / (double)wall,
           g.n_pids ? 100.0 * (double)(srv1 - srv0) / (double)wall : 0.0, hwm,
           stored);
    hist_free(g.lat);
    lg_token_free(g.tokens, g.n_tokens);
    if (g.mode != LGG_SQLITE) grpc_shutdown();
    return rc ? 1 : (g.failed || g.bad ? 1 : 0);
usage:
    fprintf(stderr,
            "usage: loadgen-grpc --mode list|publish|sqlite [--target HOST:PORT]\n"
            "  [--db PATH (list, sqlite; publish: count what got stored)] [--room R]\n"
            "  [--limit 50] [--concurrency 16]\n"
            "  [--duration 10] [--size 64] [--pid P] [--secret-file F]\n");
    return 2;
}
