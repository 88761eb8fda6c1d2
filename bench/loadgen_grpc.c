/* loadgen_grpc.c (loadgen-grpc): the gRPC side of the benchmark, on the grpc
 * C core (one channel, one completion queue, C calls kept in flight):
 *   list     History.ListMessages of `limit` messages before a random seq of
 *            the history room: requests/s and latency percentiles;
 *   publish  Stream.Publish from C concurrent publishers (one author each),
 *            every answer an ack after commit: acked publishes/s; with
 *            --db, "stored" is how many messages the room gained (each
 *            acked publish must be exactly one);
 *   sqlite   the same page read straight from the database file through the
 *            store API (src/store/store.h store_list), one thread: the limit.
 * Method paths come from the generated tables (gen/parley/v1/history.grpc.h,
 * stream.grpc.h).
 * Prints one JSON object on stdout. */
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
#include "clock.h"
#include "lg_proc.h"
#include "lg_token.h"
#include "parley/v1/history.grpc.h"
#include "parley/v1/history.pb-c.h"
#include "parley/v1/stream.grpc.h"
#include "parley/v1/stream.pb-c.h"
#include "rpc_client.h"
#include "settings.h"
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

static uint64_t lgg_rand(lgg *g)
{
    g->rng ^= g->rng << 13;
    g->rng ^= g->rng >> 7;
    g->rng ^= g->rng << 17;
    return g->rng;
}

static uint64_t lgg_cursor(lgg *g)
{
    /* before_seq in [limit+1, head_seq+1]: a full page anywhere in the room */
    uint64_t lo = g->limit + 1, hi = g->head_seq + 1;
    if (hi <= lo) return hi;
    return lo + lgg_rand(g) % (hi - lo + 1);
}

/* Starts one call on slot s: a ListMessages page before a random seq, or a
 * publish with a fresh client_msg_id and a timestamped body. */
static int lgg_start(lgg *g, lgg_slot *s)
{
    gpr_timespec dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                   gpr_time_from_seconds(30, GPR_TIMESPAN));
    Parley__V1__ListMessagesRequest list =
        PARLEY__V1__LIST_MESSAGES_REQUEST__INIT;
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
        size_t n = (size_t)snprintf(body, sizeof body,
                                    "lg %" PRIu64 " %d %" PRIu64 " ",
                                    clock_mono_ns(), s->idx, s->n);
        while (n < g->body_size && n < sizeof body - 1) body[n++] = 'x';
        body[n] = 0;
        pub.room = (char *)g->room;
        pub.client_msg_id = cid;
        pub.body = body;
        req = &pub.base;
    }
    s->t0 = clock_mono_ns();
    if (rpc_client_unary_start(&s->u, g->ch, g->cq, g->method->path, s->token,
                               req, dl, s) != PARLEY_OK)
        return -1;
    return 0;
}

/* Counts the answer of slot s's call, which completed with `success`. */
static void lgg_finish(lgg *g, lgg_slot *s, int success)
{
    uint64_t now = clock_mono_ns();
    ProtobufCMessage *resp = NULL;
    int unavailable = 0;
    parley_err e = rpc_client_unary_finish(&s->u, success, g->method->output,
                                           &resp, g->last_detail,
                                           sizeof g->last_detail, &unavailable);
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

static int lgg_room_head(lgg *g)
{
    store *st = NULL;
    char err[200];
    parley_err e = store_open(g->db, NULL, &st, err, sizeof err);
    if (e != PARLEY_OK) {
        fprintf(stderr, "loadgen-grpc: open %s: %s\n", g->db, err);
        return -1;
    }
    parley_room r;
    e = store_room_get(st, g->room, &r);
    if (e == PARLEY_OK) g->head_seq = r.head_seq;
    store_close(st);
    return e == PARLEY_OK ? 0 : -1;
}

static int lgg_count_row(const parley_msg *m, void *ud)
{
    (void)m;
    (*(uint64_t *)ud)++;
    return 0;
}

static int lgg_run_sqlite(lgg *g)
{
    store *st = NULL;
    char err[200];
    if (store_open(g->db, NULL, &st, err, sizeof err) != PARLEY_OK) {
        fprintf(stderr, "loadgen-grpc: open %s: %s\n", g->db, err);
        return -1;
    }
    uint64_t end = clock_mono_ns() + (uint64_t)(g->duration * 1e9);
    while (clock_mono_ns() < end) {
        uint64_t rows = 0, t0 = clock_mono_ns();
        int more = 0;
        parley_err e = store_list(st, g->room, STORE_BEFORE_SEQ, lgg_cursor(g),
                                  g->limit, lgg_count_row, &rows, NULL, &more);
        if (e != PARLEY_OK || rows != g->limit) {
            g->bad++;
            continue;
        }
        hist_record(g->lat, clock_mono_ns() - t0);
        g->ok++;
        g->rows += rows;
    }
    store_close(st);
    return 0;
}

static int lgg_run_grpc(lgg *g)
{
    const rpc_method_desc *m =
        g->mode == LGG_LIST
            ? &parley_v1_History_service
                   .methods[PARLEY_V1_HISTORY_LIST_MESSAGES]
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
    uint64_t end = clock_mono_ns() + (uint64_t)(g->duration * 1e9);
    for (unsigned i = 0; i < g->conc; i++)
        if (lgg_start(g, &slots[i]) == 0) inflight++;
    while (inflight) {
        grpc_event ev = grpc_completion_queue_next(
            g->cq,
            gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                         gpr_time_from_seconds(35, GPR_TIMESPAN)),
            NULL);
        if (ev.type != GRPC_OP_COMPLETE) {
            fprintf(stderr, "loadgen-grpc: completion queue timed out\n");
            break;
        }
        lgg_slot *s = ev.tag;
        lgg_finish(g, s, ev.success);
        inflight--;
        if (clock_mono_ns() < end && lgg_start(g, s) == 0) inflight++;
    }
    grpc_channel_destroy(g->ch);
    grpc_completion_queue_shutdown(g->cq);
    while (grpc_completion_queue_next(g->cq, gpr_inf_future(GPR_CLOCK_REALTIME),
                                      NULL)
               .type != GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(g->cq);
    free(slots);
    return 0;
}

/* loadgen-grpc's settings (base/settings.h). */
typedef struct lgg_opts {
    char mode[16], target[256], room[128], db[512], pids[256];
    char secret_file[512], secret[512];
    int limit, conc;
    double duration;
    size_t body_size;
} lgg_opts;

#define F(field) SETTING_FIELD(lgg_opts, field)
static const setting lgg_rows[] = {
    {"mode", NULL, SETTING_STR, F(mode), "", 0, 0, "list|publish|sqlite",
     "what to measure (required)", 0},
    {"target", NULL, SETTING_STR, F(target), "", 0, 0, "HOST:PORT",
     "parleyd's gRPC address (list, publish)", 0},
    {"room", NULL, SETTING_STR, F(room), "history", 0, 0, "R", "the room", 0},
    {"db", NULL, SETTING_STR, F(db), "", 0, 0, "PATH",
     "the database (list, sqlite; publish: count what got stored)", 0},
    {"limit", NULL, SETTING_INT, F(limit), "50", 1, 1000, "N",
     "messages per page", 0},
    {"concurrency", NULL, SETTING_INT, F(conc), "16", 1, 1e5, "N",
     "calls in flight", 0},
    {"duration", NULL, SETTING_DOUBLE, F(duration), "10", 0, 1e6, "S",
     "seconds", 0},
    {"size", NULL, SETTING_SIZE, F(body_size), "64", 1, 1e6, "B",
     "publish: body bytes", 0},
    {"pid", NULL, SETTING_LIST, F(pids), "", 0, 0, "P",
     "server process to measure", 0},
    {"secret-file", "PARLEY_JWT_SECRET_FILE", SETTING_STR, F(secret_file), "",
     0, 0, "F", "JWT secret to mint tokens with", 0},
    {"jwt-secret", "PARLEY_JWT_SECRET", SETTING_STR, F(secret), "", 0, 0, NULL,
     "the JWT secret itself", SETTING_NO_FLAG},
};
#undef F

static const settings_spec lgg_spec = {
    .program = "loadgen-grpc",
    .summary = "gRPC history / publish load; prints one JSON object.",
    .rows = lgg_rows,
    .n_rows = sizeof lgg_rows / sizeof lgg_rows[0],
};

int main(int argc, char **argv)
{
    static lgg_opts o;
    lgg g;
    memset(&g, 0, sizeof g);
    int r = settings_load_main(&lgg_spec, &o, argc, argv);
    if (r >= 0) return r;
    char err[700];
    g.limit = (unsigned)o.limit;
    g.conc = (unsigned)o.conc;
    g.duration = o.duration;
    g.body_size = o.body_size;
    g.room = o.room;
    g.target = *o.target ? o.target : NULL;
    g.db = *o.db ? o.db : NULL;
    g.rng = 0x2545F4914F6CDD1DULL;
    g.n_pids = lg_proc_parse_pids(o.pids, g.pids, 8);
    if (g.n_pids < 0) goto usage;
    const char *mode = o.mode;
    if (!strcmp(mode, "list"))
        g.mode = LGG_LIST;
    else if (!strcmp(mode, "publish"))
        g.mode = LGG_PUBLISH;
    else if (!strcmp(mode, "sqlite"))
        g.mode = LGG_SQLITE;
    else
        goto usage;
    if (g.mode != LGG_PUBLISH && !g.db) goto usage;
    if (g.mode != LGG_SQLITE && !g.target) goto usage;
    if (g.db && lgg_room_head(&g) != 0) {
        fprintf(stderr, "loadgen-grpc: room %s not found in %s\n", g.room,
                g.db);
        return 1;
    }
    g.lat = hist_new();
    if (!g.lat) return 1;
    if (g.mode != LGG_SQLITE) {
        g.n_tokens = g.conc;
        g.tokens = lg_token_mint_from(o.secret_file, o.secret, g.n_tokens, err,
                                      sizeof err);
        if (!g.tokens) {
            fprintf(stderr, "loadgen-grpc: %s\n", err);
            return 2;
        }
        grpc_init();
    }
    int64_t srv0 = 0, srv1 = 0;
    for (int i = 0; i < g.n_pids; i++) srv0 += lg_proc_cpu_ns(g.pids[i]);
    int64_t self0 = lg_self_cpu_ns();
    uint64_t t0 = clock_mono_ns();
    uint64_t head_before = g.head_seq;
    int rc = g.mode == LGG_SQLITE ? lgg_run_sqlite(&g) : lgg_run_grpc(&g);
    /* publish with --db: how many new messages the database holds now; each
     * acked publish (fresh client_msg_ids) must be exactly one of them. */
    int64_t stored = -1;
    if (g.mode == LGG_PUBLISH && g.db && lgg_room_head(&g) == 0)
        stored = (int64_t)(g.head_seq - head_before);
    uint64_t wall = clock_mono_ns() - t0;
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
    printf(
        "{\"mode\":\"%s\",\"concurrency\":%u,\"limit\":%u,\"head_seq\":%" PRIu64
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
    settings_usage(&lgg_spec, stderr);
    return 2;
}
