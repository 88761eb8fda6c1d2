/* srv_metrics.c: the core's Prometheus series (parley_core_*), named like
 * the gateway's (parley_gateway_*): calls by service, method and status
 * with their latency, group commits with their batch sizes and durations,
 * what was stored, the open streams, subscriptions and watched rooms, the
 * send queues, slow consumers cut, and the health state. Counters and
 * histograms are updated where things happen (the rpc observer, the group
 * commit); gauges are sampled once a second by srv_tick. Each call that
 * ends is also one debug log line. */
#include "srv.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define SRV_METRICS_METHODS 32 /* methods served; registration stops there */
#define SRV_GRPC_CODES 17      /* OK .. UNAUTHENTICATED */

static const char *const grpc_code_name[SRV_GRPC_CODES] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED"};

/* Seconds: unary calls take well under a millisecond to tens of
 * milliseconds (a commit's fsync); streams last minutes to hours. */
static const double duration_bounds[] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1,    0.25,    0.5,    1,     2.5,    10,    60,   600,   3600};
static const double commit_bounds[] = {0.0001, 0.00025, 0.0005, 0.001,
                                       0.0025, 0.005,   0.01,   0.025,
                                       0.05,   0.1,     0.25,   1};
static const double batch_bounds[] = {1,  2,   4,   8,   16,  32,
                                      64, 128, 256, 512, 1024};

/* One served method: its series, the per-status counters made on first
 * use. */
typedef struct method_series {
    const rpc_method_desc *m; /* NULL: the catch-all for unknown methods */
    char labels[256];         /* service="...",method="..." */
    metric *by_code[SRV_GRPC_CODES];
    metric *duration;
} method_series;

struct srv_metrics {
    metrics *reg; /* NULL: nothing is kept */
    method_series methods[SRV_METRICS_METHODS + 1];
    size_t n_methods; /* methods[n_methods] is the unknown-method one */
    metric *commits_ok, *commits_failed, *batch, *commit_time;
    metric *stored, *duplicates;
    metric *streams, *subscriptions, *rooms_watched, *open_calls;
    metric *queued, *queued_max, *pending, *slow_cut, *serving;
    uint64_t slow_cut_seen;
};

srv_metrics *srv_metrics_new(metrics *reg)
{
    srv_metrics *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->reg = reg;
    snprintf(m->methods[0].labels, sizeof m->methods[0].labels,
             "service=\"unknown\",method=\"unknown\"");
    if (!reg) return m;
#define C(name, help, labels) metrics_counter(reg, name, help, labels)
#define G(name, help) metrics_gauge(reg, name, help, NULL)
    m->commits_ok = C("parley_core_commits_total", "Group commits, by result.",
                      "result=\"ok\"");
    m->commits_failed = C("parley_core_commits_total", "", "result=\"failed\"");
    m->batch = metrics_histogram(
        reg, "parley_core_commit_batch_size",
        "Publishes per group commit (one transaction, one fsync).", NULL,
        batch_bounds, sizeof batch_bounds / sizeof batch_bounds[0], 1);
    m->commit_time = metrics_histogram(
        reg, "parley_core_commit_duration_seconds",
        "Time the store took for a group commit, fsync included.", NULL,
        commit_bounds, sizeof commit_bounds / sizeof commit_bounds[0], 1e-9);
    m->stored = C("parley_core_messages_stored_total",
                  "Publishes stored as new messages (acked).", NULL);
    m->duplicates =
        C("parley_core_publish_duplicates_total",
          "Publishes acked as duplicates of a stored client_msg_id.", NULL);
    m->slow_cut = C("parley_core_slow_consumers_total",
                    "Streams cut for falling --max-queue frames behind.", NULL);
    m->streams = G("parley_core_streams", "Open Stream.Connect streams.");
    m->subscriptions =
        G("parley_core_subscriptions",
          "Room subscriptions on Connect streams (replaying or live).");
    m->rooms_watched =
        G("parley_core_rooms_watched", "Rooms with at least one subscription.");
    m->open_calls = G("parley_core_open_calls", "Calls not over yet.");
    m->queued = G("parley_core_send_queue_frames",
                  "Frames waiting in the send queues of all calls.");
    m->queued_max = G("parley_core_send_queue_max_frames",
                      "Frames waiting in the longest send queue.");
    m->pending = G("parley_core_commit_pending",
                   "Publishes waiting for the next group commit.");
    m->serving = G("parley_core_serving",
                   "1 while the store can commit (grpc.health.v1 SERVING).");
#undef C
#undef G
    return m;
}

void srv_metrics_free(srv_metrics *m) { free(m); }

/* The calls counter of one method and status, made on first use. */
static metric *code_series(srv_metrics *m, method_series *ms, int status)
{
    if (!ms->by_code[status] && m->reg) {
        char labels[300];
        snprintf(labels, sizeof labels, "%s,code=\"%s\"", ms->labels,
                 grpc_code_name[status]);
        ms->by_code[status] = metrics_counter(
            m->reg, "parley_core_calls_total",
            "Calls ended, by service, method and gRPC status.", labels);
    }
    return ms->by_code[status];
}

void srv_metrics_service(srv_metrics *m, const rpc_service_desc *desc)
{
    for (size_t i = 0; i < desc->n_methods; i++) {
        if (m->n_methods == SRV_METRICS_METHODS) return; /* counted unknown */
        method_series *ms = &m->methods[m->n_methods++];
        memset(ms, 0, sizeof *ms);
        ms->m = &desc->methods[i];
        snprintf(ms->labels, sizeof ms->labels, "service=\"%s\",method=\"%s\"",
                 desc->full_name, desc->methods[i].name);
        ms->duration = metrics_histogram(
            m->reg, "parley_core_call_duration_seconds",
            "Time from a call's arrival to its end (streams: their life).",
            ms->labels, duration_bounds,
            sizeof duration_bounds / sizeof duration_bounds[0], 1e-6);
        /* OK is made at once, so a dashboard sees each method at 0. */
        code_series(m, ms, 0);
    }
    /* Keep the catch-all last. */
    method_series *u = &m->methods[m->n_methods];
    memset(u, 0, sizeof *u);
    snprintf(u->labels, sizeof u->labels,
             "service=\"unknown\",method=\"unknown\"");
}

static method_series *find_method(srv_metrics *m, const rpc_method_desc *d)
{
    for (size_t i = 0; d && i < m->n_methods; i++)
        if (m->methods[i].m == d) return &m->methods[i];
    return &m->methods[m->n_methods];
}

void srv_metrics_call_done(void *ud, const rpc_method_desc *d, int status,
                           uint64_t micros)
{
    srv_metrics *m = ud;
    if (status < 0 || status >= SRV_GRPC_CODES) status = 2; /* UNKNOWN */
    method_series *ms = find_method(m, d);
    metric_inc(code_series(m, ms, status));
    metric_observe(ms->duration, micros);
    if (log_enabled(LOG_DEBUG)) {
        char us[32];
        snprintf(us, sizeof us, "%llu", (unsigned long long)micros);
        const char *f[] = {"method", d ? d->path : "unknown",
                           "status", grpc_code_name[status],
                           "us",     us,
                           NULL};
        log_event(LOG_DEBUG, "call", f, "call ended");
    }
}

void srv_metrics_commit(srv_metrics *m, size_t batch, size_t stored,
                        size_t duplicates, int failed, uint64_t ns)
{
    metric_inc(failed ? m->commits_failed : m->commits_ok);
    metric_observe(m->batch, batch);
    metric_observe(m->commit_time, ns);
    if (failed) return;
    metric_add(m->stored, stored);
    metric_add(m->duplicates, duplicates);
}

void srv_metrics_sample(srv_metrics *m, const srv *s, const rpc_server *rs)
{
    if (!m->reg) return;
    rpc_server_stats st;
    rpc_server_get_stats(rs, &st);
    metric_set(m->streams, (int64_t)s->conns.len);
    metric_set(m->subscriptions, (int64_t)hub_sub_count(s->hub));
    metric_set(m->rooms_watched, (int64_t)hub_room_count(s->hub));
    metric_set(m->open_calls, (int64_t)st.open_calls);
    metric_set(m->queued, (int64_t)st.queued_frames);
    metric_set(m->queued_max, (int64_t)st.max_queued);
    metric_set(m->pending, (int64_t)s->n_batch);
    assert(st.slow_cut >= m->slow_cut_seen);
    metric_add(m->slow_cut, st.slow_cut - m->slow_cut_seen);
    m->slow_cut_seen = st.slow_cut;
}

void srv_metrics_health(srv_metrics *m, int serving)
{
    metric_set(m->serving, serving ? 1 : 0);
}
