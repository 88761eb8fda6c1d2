/* srv_bus.c: several cores on one store. Binds the bus (bus/bus.h) to the
 * hub and the store: every change this core commits is published once on
 * the bus (the event frame already encoded for the hub), and the changes
 * of rooms this core's subscribers watch arrive from the bus. Without
 * --bus none of this runs: srv_deliver hands a commit's event straight to
 * the hub, as a single core always did.
 *
 * Order and exactly-once, per watched room. The room keeps `rev`: every
 * change up to it has been delivered to the room's live subscribers (or
 * superseded: a later change of the same message was delivered in its
 * place, as a catch-up read from the store does). A change arriving with
 * rev + 1 is delivered at once, from this core's own commits (no bus
 * round trip) or from the bus alike; an older one is a duplicate and
 * dropped; a later one is held. A gap (something held) is filled from
 * the store, which has everything committed, after gap_wait ms (the bus
 * usually brings the missing change first: another core committed it just
 * before) or at once while the link is down. Then what is held is
 * delivered in order. So two cores committing to one room interleave
 * correctly: a local commit with rev 12 waits for rev 11 from the other
 * core, which the bus or the store supplies.
 *
 * What the bus may have missed without a later change to show a gap is
 * read from the store too: a watch the server just confirmed (what was
 * published before it), the link coming back, a loss nats.c reported,
 * and a slow sweep over every watched room (sweep_ms, SB_SWEEP_BUDGET
 * rooms at a time), which also catches a change whose publish another
 * core lost. While the link is down the sweep runs every SB_DOWN_POLL_MS.
 *
 * A subscriber turns live at the head rev its replay read (srv_stream.c);
 * the hub hands it only changes past that (hub_publish_rev), so a replay
 * that read further than the room was delivered costs no duplicate. */
#include "srv.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "log.h"

#define SB_HOLD_MAX 4096      /* held changes per room, then filled at once */
#define SB_FILL_PAGE 256      /* rows per store read */
#define SB_FILL_PAGES 8       /* store reads per room per poll, then later */
#define SB_SWEEP_BUDGET 256   /* rooms read per sweep round */
#define SB_DOWN_POLL_MS 250   /* the sweep's pace while the link is down */
#define SB_NOBUS_POLL_MS 2    /* the loop's pace when the bus cannot wake it */
#define SB_FILLS_PER_POLL 128 /* rooms read per poll: the loop stays live */
#define SB_RETRY_MS 500       /* a room whose store read failed waits this */

typedef struct sb_ev {
    uint64_t rev;
    grpc_slice frame;
} sb_ev;

typedef struct sb_room {
    struct sb_room *chain;
    uint32_t hash;
    size_t refs;  /* subscriptions watching */
    uint64_t rev; /* delivered (or superseded) up to here */
    sb_ev *held;  /* ascending, all > rev + 1 */
    size_t n_held, cap_held;
    int64_t gap_ms;   /* monotonic time the oldest held change arrived; 0 */
    int stale;        /* read from the store at the next poll */
    int64_t retry_ms; /* a failed read is not tried again before */
    bus_sub *watch;
    list_node due; /* srv_bus.due while stale or n_held */
    list_node all; /* srv_bus.all, in sweep order */
    char name[];
} sb_room;

struct srv_bus {
    srv *s;
    bus *b;
    sb_room **buckets;
    size_t n_buckets, n_rooms;
    list due, all;
    unsigned gap_wait_ms, sweep_ms;
    void (*wake)(void *); /* wakes the loop; NULL: the loop polls fast */
    void *wake_ud;
    int up; /* the link, as the loop last heard */
    int64_t next_sweep_ms;
    metric *m_up, *m_rooms, *m_gaps, *m_fills, *m_fill_rows, *m_dups;
    metric *m_published, *m_pub_failed, *m_received, *m_dropped;
    metric *m_reconnects;
    bus_stats last; /* to turn the bus's totals into counter increments */
};

static uint32_t fnv1a(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

static sb_room *find(const srv_bus *sb, const char *name)
{
    uint32_t h = fnv1a(name);
    for (sb_room *r = sb->buckets[h & (sb->n_buckets - 1)]; r; r = r->chain)
        if (r->hash == h && strcmp(r->name, name) == 0) return r;
    return NULL;
}

static void grow(srv_bus *sb)
{
    size_t nb = sb->n_buckets * 2;
    sb_room **b = calloc(nb, sizeof *b);
    if (!b) return; /* longer chains, still correct */
    for (size_t i = 0; i < sb->n_buckets; i++)
        for (sb_room *r = sb->buckets[i], *n; r; r = n) {
            n = r->chain;
            r->chain = b[r->hash & (nb - 1)];
            b[r->hash & (nb - 1)] = r;
        }
    free(sb->buckets);
    sb->buckets = b;
    sb->n_buckets = nb;
}

static void mark_due(srv_bus *sb, sb_room *r)
{
    if (!list_node_is_linked(&r->due)) list_push_back(&sb->due, &r->due);
}

/* ---- delivery -------------------------------------------------------- */

static void deliver(srv_bus *sb, sb_room *r, uint64_t rev, grpc_slice frame)
{
    assert(rev > r->rev); /* each change once, in order */
    hub_publish_rev(sb->s->hub, r->name, rev, frame);
    r->rev = rev;
}

/* Delivers what is held and now next; drops what is held and old. */
static void drain_held(srv_bus *sb, sb_room *r)
{
    size_t i = 0;
    for (; i < r->n_held; i++) {
        sb_ev *e = &r->held[i];
        if (e->rev == r->rev + 1)
            deliver(sb, r, e->rev, e->frame);
        else if (e->rev > r->rev + 1)
            break;
        grpc_slice_unref(e->frame);
    }
    memmove(r->held, r->held + i, (r->n_held - i) * sizeof *r->held);
    r->n_held -= i;
    if (!r->n_held) r->gap_ms = 0;
}

/* A change of r (rev, its event frame): delivered, dropped or held. */
static void offer(srv_bus *sb, sb_room *r, uint64_t rev, grpc_slice frame)
{
    if (rev <= r->rev) {
        metric_inc(sb->m_dups);
        return;
    }
    if (rev == r->rev + 1) {
        deliver(sb, r, rev, frame);
        if (r->n_held) drain_held(sb, r);
        return;
    }
    /* A gap: hold it, in order, once. */
    size_t i = r->n_held;
    while (i > 0 && r->held[i - 1].rev > rev) i--;
    if (i > 0 && r->held[i - 1].rev == rev) return;
    if (r->n_held == r->cap_held) {
        size_t nc = r->cap_held ? r->cap_held * 2 : 8;
        sb_ev *nv = realloc(r->held, nc * sizeof *nv);
        if (!nv) { /* cannot hold it: the store has it */
            r->stale = 1;
            mark_due(sb, r);
            return;
        }
        r->held = nv;
        r->cap_held = nc;
    }
    memmove(r->held + i + 1, r->held + i, (r->n_held - i) * sizeof *r->held);
    r->held[i].rev = rev;
    r->held[i].frame = grpc_slice_ref(frame);
    r->n_held++;
    if (!r->gap_ms) {
        r->gap_ms = clock_mono_ms();
        metric_inc(sb->m_gaps);
    }
    if (r->n_held >= SB_HOLD_MAX) r->stale = 1;
    mark_due(sb, r);
}

typedef struct fill_ctx {
    srv_bus *sb;
    sb_room *r;
    size_t rows;
} fill_ctx;

static int fill_row(const parley_msg *m, void *ud)
{
    fill_ctx *fc = ud;
    if (m->rev <= fc->r->rev) return 0;
    grpc_slice f = srv_event_frame(srv_event_type(m), m, 0);
    deliver(fc->sb, fc->r, m->rev, f);
    grpc_slice_unref(f);
    fc->rows++;
    return 0;
}

/* Reads r's changes past r->rev from the store and delivers them, then
 * what is held. 0 when r is up to date with the store; 1 when more is
 * left for the next poll; -1 when the store failed (tried again later). */
static int fill(srv_bus *sb, sb_room *r)
{
    srv *s = sb->s;
    fill_ctx fc = {sb, r, 0};
    int more = 1;
    for (int page = 0; page < SB_FILL_PAGES && more; page++) {
        parley_room room;
        int has_more = 0;
        parley_err e =
            store_list(s->db, r->name, STORE_AFTER_REV, r->rev, SB_FILL_PAGE,
                       fill_row, &fc, &room, &has_more);
        if (e == PARLEY_ERR_ROOM_NOT_FOUND) {
            more = 0; /* nothing to deliver, ever */
            break;
        }
        if (e) {
            log_error("bus", "reading %s from the store failed: %s", r->name,
                      store_last_error(s->db));
            return -1;
        }
        if (!has_more) {
            /* Everything up to the head was read in that transaction; what
             * the reads skipped was superseded by what they delivered. */
            if (room.head_rev > r->rev) r->rev = room.head_rev;
            more = 0;
        }
    }
    if (fc.rows) {
        metric_inc(sb->m_fills);
        metric_add(sb->m_fill_rows, fc.rows);
    }
    if (r->n_held) drain_held(sb, r);
    return more;
}

/* ---- the bus's callbacks (loop thread, from bus_poll) ---------------- */

static void on_event(void *ud, const char *room, uint64_t rev,
                     const uint8_t *bytes, size_t len)
{
    srv_bus *sb = ud;
    sb_room *r = find(sb, room);
    if (!r) return; /* nobody here watches it (any more) */
    if (rev <= r->rev) {
        metric_inc(sb->m_dups);
        return;
    }
    grpc_slice f = grpc_slice_from_copied_buffer((const char *)bytes, len);
    offer(sb, r, rev, f);
    grpc_slice_unref(f);
}

static void on_watching(void *ud, const char *room)
{
    srv_bus *sb = ud;
    sb_room *r = find(sb, room);
    if (!r) return;
    r->stale = 1; /* what was published before the server had our SUB */
    mark_due(sb, r);
}

/* Every watched room is read from the store at the next poll. */
static void all_stale(srv_bus *sb)
{
    list_for_each(&sb->all, n, next)
    {
        sb_room *r = list_entry(n, sb_room, all);
        r->stale = 1;
        mark_due(sb, r);
    }
}

static void on_link(void *ud, int up)
{
    srv_bus *sb = ud;
    sb->up = up;
    metric_set(sb->m_up, up);
    if (up) all_stale(sb);
    /* Down: held gaps are filled at once, rooms swept at the fast pace. */
    sb->next_sweep_ms = 0;
}

static void on_loss(void *ud) { all_stale(ud); }

/* ---- the srv's side --------------------------------------------------- */

static void bus_wake(void *ud)
{
    srv_bus *sb = ud;
    sb->wake(sb->wake_ud);
}

int srv_bus_start(srv *s, const srv_bus_opts *o, char *err, size_t errlen)
{
    assert(!s->bus);
    srv_bus *sb = calloc(1, sizeof *sb);
    if (!sb || !(sb->buckets = calloc(64, sizeof *sb->buckets))) {
        free(sb);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    sb->s = s;
    sb->n_buckets = 64;
    sb->gap_wait_ms = o->gap_wait_ms;
    sb->sweep_ms = o->sweep_ms ? o->sweep_ms : 1000;
    sb->wake = o->wake;
    sb->wake_ud = o->wake_ud;
    metrics *reg = o->metrics;
    if (reg) {
        sb->m_up = metrics_gauge(reg, "parley_core_bus_up",
                                 "1 while the link to NATS is up.", NULL);
        sb->m_rooms = metrics_gauge(
            reg, "parley_core_bus_rooms",
            "Rooms this core watches on the bus (its subscribers').", NULL);
        sb->m_gaps = metrics_counter(
            reg, "parley_core_bus_gaps_total",
            "Changes that arrived before an earlier one (held).", NULL);
        sb->m_fills = metrics_counter(
            reg, "parley_core_bus_fills_total",
            "Store reads that delivered changes the bus had not.", NULL);
        sb->m_fill_rows = metrics_counter(
            reg, "parley_core_bus_fill_rows_total",
            "Changes delivered from the store instead of the bus.", NULL);
        sb->m_dups = metrics_counter(
            reg, "parley_core_bus_duplicates_total",
            "Changes that arrived after they were delivered (dropped).", NULL);
        const char *h = "Events on the bus, by what became of them.";
        sb->m_published = metrics_counter(reg, "parley_core_bus_events_total",
                                          h, "result=\"published\"");
        sb->m_pub_failed = metrics_counter(reg, "parley_core_bus_events_total",
                                           h, "result=\"not_published\"");
        sb->m_received = metrics_counter(reg, "parley_core_bus_events_total", h,
                                         "result=\"received\"");
        sb->m_dropped = metrics_counter(reg, "parley_core_bus_events_total", h,
                                        "result=\"dropped\"");
        sb->m_reconnects = metrics_counter(
            reg, "parley_core_bus_links_total",
            "Times the link to NATS was made (the first included).", NULL);
    }
    bus_opts bo = {o->servers, o->prefix,   o->name, o->wake ? bus_wake : NULL,
                   sb,         o->test_drop};
    static const bus_cbs cbs = {on_event, on_watching, on_link, on_loss};
    sb->b = bus_new(&bo, &cbs, sb, err, errlen);
    if (!sb->b) {
        free(sb->buckets);
        free(sb);
        return -1;
    }
    s->bus = sb;
    return 0;
}

void srv_bus_stop(srv *s)
{
    srv_bus *sb = s->bus;
    if (!sb) return;
    for (size_t i = 0; i < sb->n_buckets; i++)
        for (sb_room *r = sb->buckets[i], *n; r; r = n) {
            n = r->chain;
            bus_unwatch(sb->b, r->watch);
            for (size_t k = 0; k < r->n_held; k++)
                grpc_slice_unref(r->held[k].frame);
            free(r->held);
            free(r);
        }
    bus_free(sb->b);
    free(sb->buckets);
    free(sb);
    s->bus = NULL;
}

void srv_deliver(srv *s, const char *room, uint64_t rev, grpc_slice frame)
{
    srv_bus *sb = s->bus;
    if (!sb) {
        hub_publish(s->hub, room, frame);
        return;
    }
    /* Others first (the publish is only queued), then this core's own. */
    bus_publish(sb->b, room, rev, GRPC_SLICE_START_PTR(frame),
                GRPC_SLICE_LENGTH(frame));
    sb_room *r = find(sb, room);
    if (r) offer(sb, r, rev, frame);
}

int srv_bus_watch(srv *s, const char *room, uint64_t head_rev)
{
    srv_bus *sb = s->bus;
    if (!sb) return 0;
    sb_room *r = find(sb, room);
    if (r) {
        r->refs++;
        return 0;
    }
    size_t len = strlen(room);
    r = calloc(1, sizeof *r + len + 1);
    if (!r) return -1;
    memcpy(r->name, room, len + 1);
    r->hash = fnv1a(room);
    r->refs = 1;
    /* The head read just now: this core delivers what follows it. */
    r->rev = head_rev;
    r->watch = bus_watch(sb->b, room);
    if (!r->watch) {
        free(r);
        return -1;
    }
    if (sb->n_rooms + 1 > sb->n_buckets) grow(sb);
    size_t b = r->hash & (sb->n_buckets - 1);
    r->chain = sb->buckets[b];
    sb->buckets[b] = r;
    sb->n_rooms++;
    list_push_back(&sb->all, &r->all);
    metric_set(sb->m_rooms, (int64_t)sb->n_rooms);
    return 0;
}

void srv_bus_unwatch(srv *s, const char *room)
{
    srv_bus *sb = s->bus;
    if (!sb) return;
    sb_room *r = find(sb, room);
    assert(r && r->refs > 0); /* every watch is unwatched once */
    if (--r->refs) return;
    sb_room **pp = &sb->buckets[r->hash & (sb->n_buckets - 1)];
    while (*pp != r) pp = &(*pp)->chain;
    *pp = r->chain;
    sb->n_rooms--;
    list_remove(&r->all);
    if (list_node_is_linked(&r->due)) list_remove(&r->due);
    bus_unwatch(sb->b, r->watch);
    for (size_t k = 0; k < r->n_held; k++) grpc_slice_unref(r->held[k].frame);
    free(r->held);
    free(r);
    metric_set(sb->m_rooms, (int64_t)sb->n_rooms);
}

int srv_bus_live_ok(const srv *s, const char *room, uint64_t head_rev)
{
    if (!s->bus) return 1;
    const sb_room *r = find(s->bus, room);
    return !r || head_rev >= r->rev;
}

/* The bus's totals as counter increments (srv_tick pace is enough). */
static void sample(srv_bus *sb)
{
    bus_stats st;
    bus_get_stats(sb->b, &st);
    metric_add(sb->m_published, st.published - sb->last.published);
    metric_add(sb->m_pub_failed, st.publish_failed - sb->last.publish_failed);
    metric_add(sb->m_received, st.received - sb->last.received);
    metric_add(sb->m_dropped, st.dropped - sb->last.dropped);
    metric_add(sb->m_reconnects, st.reconnects - sb->last.reconnects);
    sb->last = st;
}

size_t srv_bus_poll(srv *s)
{
    srv_bus *sb = s->bus;
    if (!sb) return 0;
    size_t n = bus_poll(sb->b);
    int64_t now = clock_mono_ms();
    if (now >= sb->next_sweep_ms) {
        /* The next SB_SWEEP_BUDGET rooms in sweep order are read again. */
        sb->next_sweep_ms =
            now + (sb->up ? (int64_t)sb->sweep_ms : SB_DOWN_POLL_MS);
        for (size_t k = 0; k < SB_SWEEP_BUDGET && sb->all.len; k++) {
            list_node *first = list_pop_front(&sb->all);
            list_push_back(&sb->all, first);
            sb_room *r = list_entry(first, sb_room, all);
            r->stale = 1;
            mark_due(sb, r);
            if (k + 1 >= sb->all.len) break; /* each room once a round */
        }
        sample(sb);
    }
    /* Rooms due: stale ones, and gaps that waited long enough; at most
     * SB_FILLS_PER_POLL reads, the rest at the next poll (after a link
     * came back every room is due at once). */
    size_t left = sb->due.len, fills = 0;
    while (left-- > 0) {
        sb_room *r = list_entry(list_pop_front(&sb->due), sb_room, due);
        int ready =
            now >= r->retry_ms && fills < SB_FILLS_PER_POLL &&
            (r->stale ||
             (r->n_held && (!sb->up || now - r->gap_ms >= sb->gap_wait_ms)));
        if (ready) {
            int more = fill(sb, r);
            fills++;
            r->stale = more != 0;
            r->retry_ms = more < 0 ? now + SB_RETRY_MS : 0;
            n++;
        }
        if (r->stale || r->n_held) list_push_back(&sb->due, &r->due);
    }
    return n;
}

int srv_bus_timeout_ms(const srv *s, int idle_ms)
{
    const srv_bus *sb = s->bus;
    if (!sb) return idle_ms;
    if (!sb->wake) return SB_NOBUS_POLL_MS;
    int64_t now = clock_mono_ms(), t = idle_ms;
    if (sb->next_sweep_ms - now < t) t = sb->next_sweep_ms - now;
    list_for_each(&sb->due, n, next)
    {
        const sb_room *r = list_entry(n, sb_room, due);
        int64_t d = r->stale || !sb->up ? 0 : r->gap_ms + sb->gap_wait_ms - now;
        if (d < r->retry_ms - now) d = r->retry_ms - now;
        if (d < t) t = d;
    }
    return t < 0 ? 0 : (int)t;
}
