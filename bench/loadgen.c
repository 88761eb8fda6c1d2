/* loadgen.c: the WebSocket load generator's event loop and scenarios.
 * One process, one thread, one epoll set (edge-triggered) over many
 * non-blocking client connections (lg_ws.c) bound to several loopback source
 * addresses, speaking one server protocol through an adapter (lg_proto_*.c).
 * Every published body carries "lg <monotonic ns> <conn> <seq>", so a
 * delivery yields its end-to-end latency (hist.c) and lets the reconnect
 * scenario count lost and duplicated messages.
 *
 * Modes: fanout (one room, N subscribers, one publisher flat out or at a
 * rate), rooms (N connections in rooms of K, each publishing at a rate),
 * idle (N subscribed connections held open; server RSS per connection),
 * reconnect (N subscribers drop at once while M messages are published, then
 * reconnect and resume). Prints one JSON object on stdout. */
#include <errno.h>
#include <arpa/inet.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include "lg.h"
#include "clock.h"
#include "lg_proc.h"
#include "lg_token.h"
#include "settings.h"

enum { LG_FANOUT, LG_ROOMS, LG_IDLE, LG_RECONNECT };

#define LG_MAX_PIDS 8
#define LG_MAX_ATTEMPTS 20

struct lg_ctx {
    const lg_proto *proto;
    int mode;
    struct sockaddr_in dst;
    char host_hdr[64];
    struct sockaddr_in *src;
    int n_src;
    int ep;
    lg_conn *conns;
    size_t n;      /* connections in total */
    size_t n_subs; /* fanout/reconnect: subscribers (ids 0..n_subs-1) */
    size_t room_size;
    double rate; /* msgs/s per publisher; 0 = flat out (fanout) */
    double duration;
    unsigned window;
    unsigned msgs, pre;
    size_t body_size;
    double timeout;
    unsigned max_connecting;
    pid_t pids[LG_MAX_PIDS];
    int n_pids;
    char **tokens;
    size_t n_tokens;
    const char *room_prefix;
    /* connect queue (ring of conn ids) */
    uint32_t *q;
    size_t q_head, q_len;
    uint64_t *retry_at;
    uint8_t *attempts;
    size_t connecting, ready, gave_up, conn_failures, drops_while_ready;
    /* counters */
    hist *lat;
    int measuring;
    int publishing; /* the publish phase is on */
    uint64_t t_measure;
    uint64_t published, acked, delivered_all, delivered_measured, own, foreign,
        errors, stalls, recovered, not_recovered;
    uint64_t gaps, dups; /* fanout/rooms: skipped and repeated seqs */
    size_t probe;
    uint64_t probe_recv;
    uint64_t last_probe_progress;
    uint32_t publisher; /* fanout / reconnect publisher conn id */
    size_t complete;    /* reconnect: subscribers with every message */
    int last_err_code;
    char last_err[160];
    int close_codes[8][2];
};

static volatile sig_atomic_t lg_stop;
static void lg_on_signal(int s)
{
    (void)s;
    lg_stop = 1;
}

void lg_room_name(const lg_ctx *x, uint32_t room, char *out, size_t n)
{
    snprintf(out, n, "%s-%u", x->room_prefix, room);
}

void lg_path_root(const lg_ctx *x, const lg_conn *c, char *out, size_t n)
{
    (void)x;
    (void)c;
    snprintf(out, n, "/");
}

int lg_send_binary(lg_conn *c, const char *s, size_t n)
{
    return lg_ws_send(&c->ws, LG_WS_BINARY, s, n) ? -1 : 0;
}

long lg_nats_parse(lg_ctx *x, lg_conn *c, const uint8_t *p, size_t len,
                   lg_nats_fn fn)
{
    size_t used = 0;
    lg_nats_cmd m;
    long n;
    while ((n = lg_nats_next(p + used, len - used, &m)) > 0) {
        used += (size_t)n;
        if (m.kind == LG_NATS_PING) {
            if (lg_send_binary(c, "PONG\r\n", 6)) return -1;
        } else if (m.kind == LG_NATS_ERR) {
            lg_on_error(x, c, -1, "NATS -ERR");
        } else if (fn(x, c, &m)) {
            return -1;
        }
    }
    return n < 0 ? -1 : (long)used;
}

const char *lg_token(const lg_ctx *x, const lg_conn *c)
{
    if (!x->n_tokens) return NULL;
    return x->tokens[c->id % x->n_tokens];
}

/* ---- connection lifecycle ---- */

static void lg_note_close(lg_ctx *x, int code)
{
    for (int i = 0; i < 8; i++) {
        if (x->close_codes[i][0] == code || x->close_codes[i][1] == 0) {
            x->close_codes[i][0] = code;
            x->close_codes[i][1]++;
            return;
        }
    }
}

static void lg_enqueue(lg_ctx *x, lg_conn *c, uint64_t at)
{
    size_t i = (x->q_head + x->q_len) % x->n;
    x->q[i] = c->id;
    x->retry_at[c->id] = at;
    x->q_len++;
}

static void lg_fail(lg_ctx *x, lg_conn *c)
{
    int code = c->ws.close_code ? c->ws.close_code : -c->ws.err;
    lg_note_close(x, code);
    if (c->ready) {
        c->ready = 0;
        x->ready--;
        x->drops_while_ready++;
        lg_ws_drop(&c->ws);
        return;
    }
    x->connecting--;
    x->conn_failures++;
    lg_ws_drop(&c->ws);
    if (++x->attempts[c->id] < LG_MAX_ATTEMPTS)
        lg_enqueue(x, c, clock_mono_ns() + 100000000ULL * x->attempts[c->id]);
    else
        x->gave_up++;
}

static int lg_ws_cb(void *ud, int opcode, const uint8_t *d, size_t n);

static void lg_start(lg_ctx *x, lg_conn *c)
{
    char path[128];
    x->proto->path(x, c, path, sizeof path);
    const struct sockaddr_in *src = x->n_src ? &x->src[c->id % x->n_src] : NULL;
    c->epoch++;
    c->ready = 0;
    c->pstate = 0;
    c->app.len = c->app.off = 0;
    c->ws.fd = -1;
    x->connecting++;
    int rc = lg_ws_connect(&c->ws, src, &x->dst, x->host_hdr, path,
                           x->proto->subprotocol);
    if (rc < 0) {
        c->ws.err = -rc;
        c->ws.state = LG_WS_CLOSED;
        lg_fail(x, c);
        return;
    }
    struct epoll_event ev = {
        .events = EPOLLIN | EPOLLOUT | EPOLLET | EPOLLRDHUP, .data.ptr = c};
    if (epoll_ctl(x->ep, EPOLL_CTL_ADD, c->ws.fd, &ev) < 0) {
        c->ws.err = errno;
        lg_fail(x, c);
    }
}

static void lg_pump_connects(lg_ctx *x, uint64_t now)
{
    while (x->q_len && x->connecting < x->max_connecting) {
        uint32_t id = x->q[x->q_head];
        if (x->retry_at[id] > now) break;
        x->q_head = (x->q_head + 1) % x->n;
        x->q_len--;
        lg_start(x, &x->conns[id]);
    }
}

int lg_feed(lg_ctx *x, lg_conn *c, const uint8_t *d, size_t n,
            lg_parse_fn parse)
{
    if (c->app.len > c->app.off) {
        if (lg_buf_append(&c->app, d, n)) return -1;
        long u = parse(x, c, c->app.p + c->app.off, c->app.len - c->app.off);
        if (u < 0) return -1;
        lg_buf_consume(&c->app, (size_t)u);
        return 0;
    }
    long u = parse(x, c, d, n);
    if (u < 0) return -1;
    if ((size_t)u < n && lg_buf_append(&c->app, d + u, n - (size_t)u))
        return -1;
    return 0;
}

void lg_on_ready(lg_ctx *x, lg_conn *c)
{
    if (c->ready) return;
    c->ready = 1;
    x->ready++;
    x->connecting--;
    x->attempts[c->id] = 0;
}

void lg_on_ack(lg_ctx *x, lg_conn *c)
{
    (void)c;
    x->acked++;
}

void lg_on_resumed(lg_ctx *x, lg_conn *c, int recovered)
{
    (void)c;
    if (recovered)
        x->recovered++;
    else
        x->not_recovered++;
}

void lg_on_error(lg_ctx *x, lg_conn *c, int code, const char *detail)
{
    (void)c;
    x->errors++;
    x->last_err_code = code;
    snprintf(x->last_err, sizeof x->last_err, "%s", detail ? detail : "");
}

/* ---- publishing ---- */

static void lg_publish(lg_ctx *x, lg_conn *c, uint64_t seq)
{
    char body[4096];
    int h = snprintf(body, sizeof body, "lg %" PRIu64 " %u %" PRIu64 " ",
                     clock_mono_ns(), c->id, seq);
    size_t n = (size_t)h;
    size_t want = x->body_size < sizeof body ? x->body_size : sizeof body - 1;
    while (n < want) body[n++] = 'x';
    body[n] = 0;
    if (x->proto->publish(x, c, body, n) < 0) {
        lg_on_error(x, c, -1, "publish encode failed");
        return;
    }
    c->pub_seq++;
    x->published++;
    if (lg_ws_flush(&c->ws) < 0) lg_fail(x, c);
}

static void lg_fill_window(lg_ctx *x)
{
    lg_conn *p = &x->conns[x->publisher];
    if (!x->publishing || !p->ready) return;
    while (x->published - x->probe_recv < x->window)
        lg_publish(x, p, x->published);
}

void lg_on_deliver(lg_ctx *x, lg_conn *c, const char *body, size_t n,
                   uint64_t rev)
{
    (void)rev;
    char tmp[80];
    size_t m = n < sizeof tmp - 1 ? n : sizeof tmp - 1;
    memcpy(tmp, body, m);
    tmp[m] = 0;
    if (m < 3 || memcmp(tmp, "lg ", 3) != 0) {
        x->foreign++;
        return;
    }
    char *e;
    uint64_t ts = strtoull(tmp + 3, &e, 10);
    uint32_t pub = (uint32_t)strtoul(e, &e, 10);
    uint64_t seq = strtoull(e, &e, 10);
    if (pub == c->id) {
        x->own++;
        return;
    }
    uint64_t now = clock_mono_ns();
    x->delivered_all++;
    c->recv_count++;
    if (x->measuring && ts >= x->t_measure) {
        hist_record(x->lat, now > ts ? now - ts : 0);
        x->delivered_measured++;
    }
    if (c->next) {
        /* Each publisher's seqs must arrive once each, in order. */
        uint64_t *want =
            &c->next[x->mode == LG_FANOUT ? 0 : pub % x->room_size];
        if (seq == *want) {
            (*want)++;
        } else if (seq > *want) {
            x->gaps += seq - *want;
            *want = seq + 1;
        } else {
            x->dups++;
        }
    }
    if (c->seen && seq < (uint64_t)x->pre + x->msgs) {
        uint8_t bit = (uint8_t)(1u << (seq & 7));
        if (!(c->seen[seq >> 3] & bit)) {
            c->seen[seq >> 3] |= bit;
            if (++c->seen_distinct == x->pre + x->msgs && c->id < x->n_subs)
                x->complete++;
        }
    }
    if (c->id == x->probe) {
        x->probe_recv++;
        x->last_probe_progress = now;
        if (x->mode == LG_FANOUT && x->rate == 0) lg_fill_window(x);
    }
}

/* ---- event loop ---- */

static int lg_ws_cb(void *ud, int opcode, const uint8_t *d, size_t n)
{
    lg_conn *c = ud;
    lg_ctx *x = c->ctx;
    if (opcode == LG_WS_OPENED) return x->proto->on_open(x, c) ? -1 : 0;
    return x->proto->on_message(x, c, opcode, d, n) ? -1 : 0;
}

static void lg_handle(lg_ctx *x, lg_conn *c, uint32_t ev)
{
    if (c->ws.fd < 0) return;
    if ((ev & EPOLLOUT) || c->ws.state == LG_WS_CONNECTING) {
        if (lg_ws_flush(&c->ws) < 0) {
            lg_fail(x, c);
            return;
        }
    }
    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        if (lg_ws_read(&c->ws, lg_ws_cb, c) < 0) {
            lg_fail(x, c);
            return;
        }
    }
    if (lg_ws_pending(&c->ws) && lg_ws_flush(&c->ws) < 0) lg_fail(x, c);
}

/* Runs the loop for up to timeout_ns or until done(x) is true; tick(x, now)
 * runs every iteration. Returns 1 if done, 0 on timeout or signal. */
static int lg_loop(lg_ctx *x, uint64_t timeout_ns, int (*done)(lg_ctx *),
                   void (*tick)(lg_ctx *, uint64_t))
{
    struct epoll_event evs[512];
    uint64_t end = clock_mono_ns() + timeout_ns;
    for (;;) {
        uint64_t now = clock_mono_ns();
        if (done && done(x)) return 1;
        if (lg_stop || now >= end) return 0;
        lg_pump_connects(x, now);
        if (tick) tick(x, now);
        int k = epoll_wait(x->ep, evs, 512, 1);
        if (k < 0 && errno != EINTR) return 0;
        for (int i = 0; i < k; i++)
            lg_handle(x, evs[i].data.ptr, evs[i].events);
    }
}

static int lg_all_ready(lg_ctx *x)
{
    return x->ready + x->gave_up >= x->n && !x->connecting && !x->q_len;
}

/* ---- scenarios ---- */

typedef struct lg_usage {
    uint64_t wall;
    int64_t self_cpu, srv_cpu;
} lg_usage;

static void lg_usage_mark(lg_ctx *x, lg_usage *u)
{
    u->wall = clock_mono_ns();
    u->self_cpu = lg_self_cpu_ns();
    u->srv_cpu = 0;
    for (int i = 0; i < x->n_pids; i++) {
        int64_t c = lg_proc_cpu_ns(x->pids[i]);
        if (c > 0) u->srv_cpu += c;
    }
}

static void lg_srv_mem(lg_ctx *x, int64_t *hwm, int64_t *rss)
{
    *hwm = *rss = 0;
    for (int i = 0; i < x->n_pids; i++) {
        int64_t h, r;
        if (lg_proc_mem_kb(x->pids[i], &h, &r) == 0) {
            *hwm += h;
            *rss += r;
        }
    }
}

static void lg_connect_all(lg_ctx *x, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) lg_enqueue(x, &x->conns[i], 0);
}

static double lg_pct(int64_t cpu, uint64_t wall)
{
    return wall ? 100.0 * (double)cpu / (double)wall : 0;
}

static void lg_print_common(lg_ctx *x, const lg_usage *a, const lg_usage *b)
{
    uint64_t wall = b->wall - a->wall;
    int64_t hwm, rss;
    lg_srv_mem(x, &hwm, &rss);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf(
        "\"proto\":\"%s\",\"conns\":%zu,\"ready\":%zu,\"gave_up\":%zu,"
        "\"conn_failures\":%zu,\"drops\":%zu,\"errors\":%" PRIu64 ","
        "\"last_error\":\"%s\",\"wall_s\":%.3f,"
        "\"lg_cpu_pct\":%.1f,\"srv_cpu_pct\":%.1f,\"srv_rss_peak_kb\":%" PRId64
        ",\"srv_rss_kb\":%" PRId64 ",\"lg_rss_peak_kb\":%ld",
        x->proto->name, x->n, x->ready, x->gave_up, x->conn_failures,
        x->drops_while_ready, x->errors, x->last_err, (double)wall / 1e9,
        lg_pct(b->self_cpu - a->self_cpu, wall),
        lg_pct(b->srv_cpu - a->srv_cpu, wall), hwm, rss, ru.ru_maxrss);
    printf(",\"close_codes\":{");
    for (int i = 0; i < 8 && x->close_codes[i][1]; i++)
        printf("%s\"%d\":%d", i ? "," : "", x->close_codes[i][0],
               x->close_codes[i][1]);
    printf("}");
}

static void lg_print_latency(lg_ctx *x)
{
    printf(",\"published\":%" PRIu64 ",\"acked\":%" PRIu64
           ",\"delivered\":%" PRIu64 ",\"delivered_measured\":%" PRIu64
           ",\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f"
           ",\"mean_us\":%.1f,\"stalls\":%" PRIu64,
           x->published, x->acked, x->delivered_all, x->delivered_measured,
           hist_percentile(x->lat, 50) / 1e3, hist_percentile(x->lat, 99) / 1e3,
           hist_percentile(x->lat, 99.9) / 1e3, hist_max(x->lat) / 1e3,
           hist_mean(x->lat) / 1e3, x->stalls);
}

static void lg_tick_fanout(lg_ctx *x, uint64_t now)
{
    if (!x->publishing) return;
    lg_conn *p = &x->conns[x->publisher];
    if (x->rate > 0) {
        uint64_t iv = (uint64_t)(1e9 / x->rate);
        while (p->ready && p->next_pub_at <= now) {
            lg_publish(x, p, x->published);
            p->next_pub_at += iv;
        }
        return;
    }
    if (x->published > x->probe_recv &&
        now - x->last_probe_progress > 1000000000ULL) {
        /* the probe missed something (dropped or lost): do not stall */
        x->stalls++;
        x->probe_recv = x->published;
        x->last_probe_progress = now;
    }
    lg_fill_window(x);
}

static uint64_t lg_last_delivered;
static uint64_t lg_last_change;
static int lg_quiet(lg_ctx *x)
{
    uint64_t now = clock_mono_ns();
    if (x->delivered_all != lg_last_delivered) {
        lg_last_delivered = x->delivered_all;
        lg_last_change = now;
    }
    return now - lg_last_change > 300000000ULL;
}

static void lg_drain(lg_ctx *x, double max_s)
{
    lg_last_delivered = x->delivered_all;
    lg_last_change = clock_mono_ns();
    lg_loop(x, (uint64_t)(max_s * 1e9), lg_quiet, NULL);
}

/* Connects every connection and waits (up to --timeout) until all are
 * ready; the seconds it took. */
static double lg_connect_every(lg_ctx *x)
{
    lg_connect_all(x, 0, x->n);
    uint64_t t0 = clock_mono_ns();
    lg_loop(x, (uint64_t)(x->timeout * 1e9), lg_all_ready, NULL);
    return (double)(clock_mono_ns() - t0) / 1e9;
}

/* Starts the per-publisher order check on every subscriber ready now:
 * slots publisher slots each (1 in fanout, the room size in rooms). */
static int lg_check_start(lg_ctx *x, size_t slots)
{
    for (size_t i = 0; i < x->n; i++) {
        lg_conn *c = &x->conns[i];
        if (!c->subscriber || !c->ready) continue;
        c->next = calloc(slots, sizeof *c->next);
        if (!c->next) return -1;
    }
    return 0;
}

/* What never arrived: the gaps seen, plus for every checked subscriber and
 * every publisher of its room, what that publisher published after the
 * last seq the subscriber got. */
static uint64_t lg_check_lost(lg_ctx *x)
{
    uint64_t lost = x->gaps;
    for (size_t i = 0; i < x->n; i++) {
        lg_conn *c = &x->conns[i];
        if (!c->next) continue;
        if (x->mode == LG_FANOUT) {
            uint64_t sent = x->conns[x->publisher].pub_seq;
            if (sent > c->next[0]) lost += sent - c->next[0];
            continue;
        }
        size_t lo = (size_t)c->room * x->room_size;
        for (size_t j = lo; j < lo + x->room_size && j < x->n; j++) {
            if (j == i) continue;
            uint64_t sent = x->conns[j].pub_seq;
            uint64_t got = c->next[j % x->room_size];
            if (sent > got) lost += sent - got;
        }
    }
    return lost;
}

static int lg_run_fanout(lg_ctx *x)
{
    /* subscribers 0..n_subs-1, publisher n_subs */
    double connect_s = lg_connect_every(x);
    lg_usage a, b;
    if (lg_check_start(x, 1) != 0) return -1;
    lg_usage_mark(x, &a);
    x->measuring = 1;
    x->t_measure = a.wall;
    x->last_probe_progress = a.wall;
    x->conns[x->publisher].next_pub_at = a.wall;
    x->publishing = 1;
    lg_loop(x, (uint64_t)(x->duration * 1e9), NULL, lg_tick_fanout);
    x->publishing = 0;
    uint64_t t_pub_end = clock_mono_ns();
    lg_drain(x, 3.0);
    lg_usage_mark(x, &b);
    double secs = (double)(t_pub_end - a.wall) / 1e9;
    printf("{\"mode\":\"fanout\",");
    lg_print_common(x, &a, &b);
    lg_print_latency(x);
    uint64_t expect = x->published * x->n_subs;
    printf(",\"subs\":%zu,\"connect_s\":%.2f,\"publish_s\":%.2f,"
           "\"delivered_per_s\":%.0f,\"published_per_s\":%.0f,"
           "\"missing\":%" PRId64 ",\"lost\":%" PRIu64 ",\"dup\":%" PRIu64
           "}\n",
           x->n_subs, connect_s, secs, (double)x->delivered_measured / secs,
           (double)x->published / secs,
           (int64_t)expect - (int64_t)x->delivered_measured, lg_check_lost(x),
           x->dups);
    return 0;
}

static uint64_t lg_rooms_next;
static uint64_t lg_rooms_t0;
static void lg_tick_rooms(lg_ctx *x, uint64_t now)
{
    if (!x->publishing) return;
    double iv = 1e9 / (x->rate * (double)x->n);
    uint64_t due = (uint64_t)((double)(now - lg_rooms_t0) / iv);
    while (lg_rooms_next <= due) {
        lg_conn *c = &x->conns[lg_rooms_next % x->n];
        if (c->ready) lg_publish(x, c, c->pub_seq);
        lg_rooms_next++;
    }
}

static int lg_run_rooms(lg_ctx *x)
{
    double connect_s = lg_connect_every(x);
    lg_usage a, b;
    if (lg_check_start(x, x->room_size) != 0) return -1;
    lg_usage_mark(x, &a);
    x->measuring = 1;
    x->t_measure = a.wall;
    lg_rooms_t0 = a.wall;
    lg_rooms_next = 0;
    x->publishing = 1;
    lg_loop(x, (uint64_t)(x->duration * 1e9), NULL, lg_tick_rooms);
    x->publishing = 0;
    uint64_t t_pub_end = clock_mono_ns();
    lg_drain(x, 3.0);
    lg_usage_mark(x, &b);
    double secs = (double)(t_pub_end - a.wall) / 1e9;
    printf("{\"mode\":\"rooms\",");
    lg_print_common(x, &a, &b);
    lg_print_latency(x);
    uint64_t expect = x->published * (x->room_size - 1);
    printf(",\"room_size\":%zu,\"connect_s\":%.2f,\"publish_s\":%.2f,"
           "\"delivered_per_s\":%.0f,\"published_per_s\":%.0f,"
           "\"missing\":%" PRId64 ",\"lost\":%" PRIu64 ",\"dup\":%" PRIu64
           "}\n",
           x->room_size, connect_s, secs, (double)x->delivered_measured / secs,
           (double)x->published / secs,
           (int64_t)expect - (int64_t)x->delivered_measured, lg_check_lost(x),
           x->dups);
    return 0;
}

static int lg_run_idle(lg_ctx *x)
{
    int64_t hwm0, rss0, hwm1, rss1;
    lg_srv_mem(x, &hwm0, &rss0);
    double connect_s = lg_connect_every(x);
    lg_usage a, b;
    lg_usage_mark(x, &a);
    lg_loop(x, (uint64_t)(x->duration * 1e9), NULL, NULL); /* hold */
    lg_usage_mark(x, &b);
    lg_srv_mem(x, &hwm1, &rss1);
    printf("{\"mode\":\"idle\",");
    lg_print_common(x, &a, &b);
    double per =
        x->ready ? (double)(rss1 - rss0) * 1024.0 / (double)x->ready : 0;
    printf(",\"connect_s\":%.2f,\"srv_rss_before_kb\":%" PRId64
           ",\"srv_rss_after_kb\":%" PRId64 ",\"bytes_per_conn\":%.0f}\n",
           connect_s, rss0, rss1, per);
    return 0;
}

static int lg_witness_has_all(lg_ctx *x)
{
    return x->conns[x->probe].seen_distinct >= x->pre + x->msgs;
}
static int lg_subs_have_pre(lg_ctx *x)
{
    for (size_t i = 0; i < x->n_subs; i++)
        if (x->conns[i].seen_distinct < x->pre) return 0;
    return x->conns[x->probe].seen_distinct >= x->pre;
}
static int lg_all_complete(lg_ctx *x) { return x->complete >= x->n_subs; }
static int lg_subs_ready(lg_ctx *x)
{
    return x->ready >= x->n_subs + 2 ||
           (x->ready + x->gave_up >= x->n && !x->q_len && !x->connecting);
}

static int lg_run_reconnect(lg_ctx *x)
{
    /* subscribers 0..n_subs-1 drop; n_subs is the witness subscriber that
     * stays; n_subs+1 publishes. */
    size_t total = x->pre + x->msgs;
    for (size_t i = 0; i <= x->n_subs; i++) {
        x->conns[i].seen = calloc((total + 7) / 8, 1);
        if (!x->conns[i].seen) return -1;
    }
    double connect_s = lg_connect_every(x);
    lg_conn *pub = &x->conns[x->publisher];
    lg_usage a, b;
    lg_usage_mark(x, &a);
    /* warm: pre messages everyone must see */
    for (unsigned i = 0; i < x->pre && pub->ready; i++) lg_publish(x, pub, i);
    int pre_ok =
        lg_loop(x, (uint64_t)(x->timeout * 1e9), lg_subs_have_pre, NULL);
    /* drop every subscriber at once */
    size_t dropped = 0;
    for (size_t i = 0; i < x->n_subs; i++) {
        lg_conn *c = &x->conns[i];
        if (c->ready) {
            c->ready = 0;
            x->ready--;
            dropped++;
        }
        lg_ws_drop(&c->ws);
    }
    for (unsigned i = 0; i < x->msgs && pub->ready; i++)
        lg_publish(x, pub, x->pre + i);
    int wit_ok =
        lg_loop(x, (uint64_t)(x->timeout * 1e9), lg_witness_has_all, NULL);
    /* reconnect all at once, resuming from each one's last rev */
    uint64_t tr = clock_mono_ns();
    for (size_t i = 0; i < x->n_subs; i++) {
        x->attempts[i] = 0;
        lg_enqueue(x, &x->conns[i], 0);
    }
    lg_loop(x, (uint64_t)(x->timeout * 1e9), lg_subs_ready, NULL);
    uint64_t t_ready = clock_mono_ns();
    int all_ok;
    if (x->proto->has_resume) {
        all_ok =
            lg_loop(x, (uint64_t)(x->timeout * 1e9), lg_all_complete, NULL);
    } else {
        /* nothing will replay: give stragglers a moment, then count */
        all_ok = lg_loop(x, 1000000000ULL, lg_all_complete, NULL);
    }
    uint64_t t_done = clock_mono_ns();
    lg_drain(x, 1.0); /* late duplicates would show here */
    lg_usage_mark(x, &b);
    uint64_t lost = 0, dup = 0;
    for (size_t i = 0; i < x->n_subs; i++) {
        lg_conn *c = &x->conns[i];
        lost += total - c->seen_distinct;
        dup += c->recv_count - c->seen_distinct;
    }
    printf("{\"mode\":\"reconnect\",");
    lg_print_common(x, &a, &b);
    lg_print_latency(x);
    printf(",\"subs\":%zu,\"dropped\":%zu,\"connect_s\":%.2f,\"pre\":%u,"
           "\"msgs\":%u,\"pre_ok\":%d,\"witness_ok\":%d,\"resume\":%d,"
           "\"reconnect_ms\":%.1f,\"catchup_ms\":%.1f,\"all_caught_up\":%d,"
           "\"complete\":%zu,\"lost\":%" PRIu64 ",\"dup\":%" PRIu64
           ",\"recovered\":%" PRIu64 ",\"not_recovered\":%" PRIu64 "}\n",
           x->n_subs, dropped, connect_s, x->pre, x->msgs, pre_ok, wit_ok,
           x->proto->has_resume, (double)(t_ready - tr) / 1e6,
           (double)(t_done - tr) / 1e6, all_ok, x->complete, lost, dup,
           x->recovered, x->not_recovered);
    return 0;
}

/* ---- setup ---- */

/* The load generator's settings (base/settings.h). */
typedef struct lg_opts {
    char proto[16], mode[16], host[48], pids[256], room_prefix[64];
    char secret_file[512], secret[512];
    int port, src_ips, max_connecting, window, msgs;
    size_t subs, conns, room_size, body_size;
    double rate, duration, timeout;
} lg_opts;

#define F(field) SETTING_FIELD(lg_opts, field)
static const setting lg_rows[] = {
    {"proto", NULL, SETTING_STR, F(proto), "", 0, 0,
     "parley|mqtt|nats|ws|jetstream|socketio", "server protocol (required)", 0},
    {"mode", NULL, SETTING_STR, F(mode), "", 0, 0,
     "fanout|rooms|idle|reconnect", "scenario (required)", 0},
    {"host", NULL, SETTING_STR, F(host), "127.0.0.1", 0, 0, "ADDR",
     "server address", 0},
    {"port", NULL, SETTING_INT, F(port), "0", 0, 65535, "N",
     "server port (required)", 0},
    {"src-ips", NULL, SETTING_INT, F(src_ips), "4", 0, 250, "K",
     "bind to 127.0.0.2 .. 127.0.0.(K+1)", 0},
    {"subs", NULL, SETTING_SIZE, F(subs), "1000", 0, 1e7, "N",
     "fanout/reconnect subscribers", 0},
    {"conns", NULL, SETTING_SIZE, F(conns), "10000", 0, 1e7, "N",
     "rooms/idle connections", 0},
    {"room-size", NULL, SETTING_SIZE, F(room_size), "10", 1, 1e7, "K",
     "rooms/idle: connections per room", 0},
    {"rate", NULL, SETTING_DOUBLE, F(rate), "0", 0, 1e9, "R",
     "msgs/s per publisher; 0: rooms 1, fanout flat out", 0},
    {"window", NULL, SETTING_INT, F(window), "64", 1, 1e6, "W",
     "fanout flat out: most msgs in flight", 0},
    {"duration", NULL, SETTING_DOUBLE, F(duration), "10", 0, 1e6, "S",
     "publish (or hold) seconds", 0},
    {"msgs", NULL, SETTING_INT, F(msgs), "100", 0, 1e8, "M",
     "reconnect: messages while down", 0},
    {"size", NULL, SETTING_SIZE, F(body_size), "64", 40, 1e6, "B", "body bytes",
     0},
    {"timeout", NULL, SETTING_DOUBLE, F(timeout), "60", 0, 1e6, "S",
     "connect / catch-up limit", 0},
    {"max-connecting", NULL, SETTING_INT, F(max_connecting), "512", 1, 1e6, "N",
     "connects in flight", 0},
    {"pid", NULL, SETTING_LIST, F(pids), "", 0, 0, "P",
     "server process to measure", 0},
    {"room-prefix", NULL, SETTING_STR, F(room_prefix), "bench", 0, 0, "S",
     "room names S-0, S-1, ...", 0},
    {"secret-file", "PARLEY_JWT_SECRET_FILE", SETTING_STR, F(secret_file), "",
     0, 0, "F", "parley: JWT secret to mint tokens with", 0},
    {"jwt-secret", "PARLEY_JWT_SECRET", SETTING_STR, F(secret), "", 0, 0, NULL,
     "parley: the JWT secret itself", SETTING_NO_FLAG},
};
#undef F

static const settings_spec lg_spec = {
    .program = "loadgen",
    .summary = "WebSocket load generator; prints one JSON object.",
    .rows = lg_rows,
    .n_rows = sizeof lg_rows / sizeof lg_rows[0],
};

int main(int argc, char **argv)
{
    static lg_ctx ctx;
    static lg_opts o;
    lg_ctx *x = &ctx;
    int r = settings_load_main(&lg_spec, &o, argc, argv);
    if (r >= 0) return r;
    char err[700];
    if (!*o.proto || !*o.mode || o.port <= 0) {
        settings_usage(&lg_spec, stderr);
        return 2;
    }
    const char *proto = o.proto, *mode = o.mode, *host = o.host;
    int port = o.port;
    size_t subs = o.subs, conns = o.conns;
    x->n_src = o.src_ips;
    x->room_size = o.room_size;
    x->rate = o.rate;
    x->window = (unsigned)o.window;
    x->duration = o.duration;
    x->msgs = (unsigned)o.msgs;
    x->pre = 10;
    x->body_size = o.body_size;
    x->timeout = o.timeout;
    x->max_connecting = (unsigned)o.max_connecting;
    x->room_prefix = o.room_prefix;
    x->n_pids = lg_proc_parse_pids(o.pids, x->pids, LG_MAX_PIDS);
    if (x->n_pids < 0) {
        fprintf(stderr, "loadgen: --pid wants process ids, got \"%s\"\n",
                o.pids);
        return 2;
    }
    if (!strcmp(proto, "parley"))
        x->proto = &lg_proto_parley;
    else if (!strcmp(proto, "mqtt"))
        x->proto = &lg_proto_mqtt;
    else if (!strcmp(proto, "nats"))
        x->proto = &lg_proto_nats;
    else if (!strcmp(proto, "ws"))
        x->proto = &lg_proto_ws;
    else if (!strcmp(proto, "jetstream"))
        x->proto = &lg_proto_jetstream;
    else if (!strcmp(proto, "socketio"))
        x->proto = &lg_proto_socketio;
    else {
        fprintf(stderr, "loadgen: unknown protocol %s\n", proto);
        return 2;
    }
    if (!strcmp(mode, "fanout")) {
        x->mode = LG_FANOUT;
        x->n_subs = subs;
        x->n = subs + 1;
    } else if (!strcmp(mode, "rooms")) {
        x->mode = LG_ROOMS;
        x->n = conns;
        if (x->rate <= 0) x->rate = 1;
    } else if (!strcmp(mode, "idle")) {
        x->mode = LG_IDLE;
        x->n = conns;
    } else if (!strcmp(mode, "reconnect")) {
        x->mode = LG_RECONNECT;
        x->n_subs = subs;
        x->n = subs + 2;
    } else {
        fprintf(stderr, "loadgen: unknown mode %s\n", mode);
        return 2;
    }
    if (x->n == 0) {
        fprintf(stderr, "loadgen: need connections (--subs / --conns)\n");
        return 2;
    }

    /* file descriptors: one per connection plus some */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) perror("loadgen: setrlimit");
        if (rl.rlim_cur < x->n + 64) {
            fprintf(stderr,
                    "loadgen: RLIMIT_NOFILE hard limit %llu is below %zu "
                    "connections\n",
                    (unsigned long long)rl.rlim_cur, x->n + 64);
            return 3;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, lg_on_signal);
    signal(SIGTERM, lg_on_signal);

    x->dst.sin_family = AF_INET;
    x->dst.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &x->dst.sin_addr) != 1) {
        fprintf(stderr, "loadgen: bad host %s\n", host);
        return 2;
    }
    snprintf(x->host_hdr, sizeof x->host_hdr, "%s:%d", host, port);
    if (x->n_src > 0) {
        x->src = calloc((size_t)x->n_src, sizeof *x->src);
        if (!x->src) return 1;
        for (int i = 0; i < x->n_src; i++) {
            x->src[i].sin_family = AF_INET;
            x->src[i].sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)i);
        }
    }
    if (x->proto == &lg_proto_parley) {
        x->n_tokens = x->n < 64 ? x->n : 64;
        x->tokens = lg_token_mint_from(o.secret_file, o.secret, x->n_tokens,
                                       err, sizeof err);
        if (!x->tokens) {
            fprintf(stderr, "loadgen: %s\n", err);
            return 2;
        }
    }

    x->ep = epoll_create1(EPOLL_CLOEXEC);
    x->conns = calloc(x->n, sizeof *x->conns);
    x->q = calloc(x->n, sizeof *x->q);
    x->retry_at = calloc(x->n, sizeof *x->retry_at);
    x->attempts = calloc(x->n, 1);
    x->lat = hist_new();
    if (x->ep < 0 || !x->conns || !x->q || !x->retry_at || !x->attempts ||
        !x->lat) {
        fprintf(stderr, "loadgen: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < x->n; i++) {
        lg_conn *c = &x->conns[i];
        c->ctx = x;
        c->id = (uint32_t)i;
        c->ws.fd = -1;
        c->ws.mask_seed = (uint32_t)(i * 2654435761u + 1);
        c->subscriber = 1;
        c->room = (uint32_t)(i / x->room_size);
    }
    int rc = 0;
    switch (x->mode) {
    case LG_FANOUT:
        x->publisher = (uint32_t)x->n_subs;
        x->probe = x->n_subs ? x->n_subs - 1 : 0;
        for (size_t i = 0; i < x->n; i++) x->conns[i].room = 0;
        x->conns[x->publisher].subscriber = 0;
        x->conns[x->publisher].publisher = 1;
        rc = lg_run_fanout(x);
        break;
    case LG_ROOMS:
        for (size_t i = 0; i < x->n; i++) x->conns[i].publisher = 1;
        x->probe = (size_t)-1;
        rc = lg_run_rooms(x);
        break;
    case LG_IDLE:
        x->probe = (size_t)-1;
        rc = lg_run_idle(x);
        break;
    case LG_RECONNECT:
        x->probe = x->n_subs; /* the witness */
        x->publisher = (uint32_t)x->n_subs + 1;
        for (size_t i = 0; i < x->n; i++) x->conns[i].room = 0;
        x->conns[x->publisher].subscriber = 0;
        x->conns[x->publisher].publisher = 1;
        rc = lg_run_reconnect(x);
        break;
    }
    fflush(stdout);
    for (size_t i = 0; i < x->n; i++) {
        lg_ws_drop(&x->conns[i].ws);
        lg_buf_free(&x->conns[i].app);
        free(x->conns[i].seen);
        free(x->conns[i].next);
    }
    lg_token_free(x->tokens, x->n_tokens);
    hist_free(x->lat);
    free(x->conns);
    free(x->q);
    free(x->retry_at);
    free(x->attempts);
    free(x->src);
    close(x->ep);
    return rc ? 1 : (lg_stop ? 130 : 0);
}
