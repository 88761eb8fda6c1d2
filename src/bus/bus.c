/* bus.c: the NATS bus (see bus.h). Three kinds of threads meet here:
 *
 *   loop   bus_publish / bus_watch / bus_unwatch queue commands (out),
 *          bus_poll takes what arrived (in) and runs the callbacks.
 *   worker the bus's own thread: runs the commands against nats.c, so
 *          the loop never waits on a socket; confirms watches and a link
 *          that came back with a ping round trip (FlushTimeout) before it
 *          reports them.
 *   nats   nats.c's threads: the delivery thread calls on_msg, the
 *          connection callbacks tell of links lost and regained; both
 *          only queue items in and wake the loop.
 *
 * One mutex (mu) guards both queues and the flags; nothing calls into
 * nats.c or the caller while holding it. A bus_sub is the loop's from
 * bus_watch until bus_unwatch, then the worker's, then nats.c's until its
 * on-complete callback (after the last on_msg of that subscription has
 * returned) frees it; bus_free waits for every one of those. */
#include "bus.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <nats/nats.h>

#include "log.h"
#include "rules.h"

#define BUS_VERSION 1
#define BUS_HEADER 9                  /* version byte + rev */
#define BUS_OUT_MAX_BYTES (64u << 20) /* queued publishes, then dropped */
#define BUS_IN_MAX 65536              /* queued items, then dropped */
#define BUS_CONFIRM_MS 2000           /* a ping round trip's limit */
#define BUS_PING_MS 1000              /* a dead link is found in ~2-3 s */
#define BUS_PINGS_OUT 2
#define BUS_RECONNECT_WAIT_MS 250
#define BUS_SUB_PENDING_MSGS (256 * 1024) /* nats.c's slow-consumer limit */
#define BUS_SUB_PENDING_BYTES (256 << 20)

typedef enum { CMD_PUB, CMD_SUB, CMD_UNSUB } cmd_kind;

typedef struct bus_cmd {
    struct bus_cmd *next;
    cmd_kind kind;
    bus_sub *sub; /* SUB, UNSUB */
    size_t len;   /* PUB: payload bytes */
    char subject[BUS_SUBJECT_MAX + 1];
    uint8_t data[]; /* PUB: header + bytes */
} bus_cmd;

typedef enum { IN_EVENT, IN_WATCHING, IN_LINK, IN_LOSS } in_kind;

typedef struct bus_in {
    in_kind kind;
    int up;       /* LINK */
    uint64_t rev; /* EVENT */
    natsMsg *msg; /* EVENT: destroyed after the callback */
    char room[RULES_ROOM_MAX + 1];
} bus_in;

struct bus_sub {
    bus *b;
    natsSubscription *ns; /* the worker's */
    char room[RULES_ROOM_MAX + 1];
    char subject[BUS_SUBJECT_MAX + 1];
};

struct bus {
    bus_cbs cbs;
    void *ud;
    void (*wake)(void *);
    void *wake_ud;
    unsigned drop_per_mille;
    char prefix[BUS_PREFIX_MAX + 1];
    natsConnection *nc;

    pthread_t worker;
    int worker_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* worker: commands, a link to confirm, stop */
    pthread_cond_t done_cv; /* bus_free: subscriptions complete, closed */
    /* under mu */
    bus_cmd *out_head, *out_tail;
    size_t out_bytes;
    int confirm_link; /* nats said connected: confirm, then report */
    int stop;
    bus_in *in;
    size_t n_in, cap_in;
    int woken;        /* wake() called since the last bus_poll */
    int lost;         /* items dropped at the bound since the last bus_poll */
    int closing;      /* bus_free began: a lost link is no news */
    size_t live_subs; /* bus_subs not yet completed by nats.c */
    int closed;       /* nats.c's closed callback ran */
    int connected;
    bus_stats st;
    uint32_t rng; /* test drops */
};

/* ---- subjects ------------------------------------------------------- */

static int prefix_valid(const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || n > BUS_PREFIX_MAX || p[0] == '.' || p[n - 1] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '.') {
            if (p[i + 1] == '.') return 0; /* an empty token */
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int bus_subject(const char *prefix, const char *room, char *out, size_t outlen)
{
    if (!prefix_valid(prefix) || rules_room(room) != PARLEY_OK) return -1;
    size_t pl = strlen(prefix), rl = strlen(room);
    if (pl + 1 + rl + 1 > outlen) return -1;
    memcpy(out, prefix, pl);
    out[pl] = '.';
    for (size_t i = 0; i < rl; i++)
        out[pl + 1 + i] = room[i] == '.' ? '~' : room[i];
    out[pl + 1 + rl] = '\0';
    return 0;
}

int bus_subject_room(const char *prefix, const char *subject, char *room,
                     size_t roomlen)
{
    size_t pl = strlen(prefix);
    if (strncmp(subject, prefix, pl) != 0 || subject[pl] != '.') return -1;
    const char *r = subject + pl + 1;
    size_t rl = strlen(r);
    if (rl + 1 > roomlen) return -1;
    for (size_t i = 0; i < rl; i++) {
        if (r[i] == '.') return -1; /* not one token: not ours */
        room[i] = r[i] == '~' ? '.' : r[i];
    }
    room[rl] = '\0';
    return rules_room(room) == PARLEY_OK ? 0 : -1;
}

/* ---- the inbound queue (any thread -> loop) -------------------------- */

/* Queues it (mu held); returns 1 if the loop must be woken. Past the
 * bound the item is dropped and the loss noted: bus_poll reports it. */
static int in_push_locked(bus *b, const bus_in *it)
{
    if (b->n_in == b->cap_in) {
        size_t nc = b->cap_in ? b->cap_in * 2 : 256;
        bus_in *nv = nc <= BUS_IN_MAX ? realloc(b->in, nc * sizeof *nv) : NULL;
        if (!nv) {
            if (it->kind == IN_EVENT) {
                natsMsg_Destroy(it->msg);
                b->st.dropped++;
            }
            b->lost = 1;
            return 0; /* the queue is not empty: the loop was woken */
        }
        b->in = nv;
        b->cap_in = nc;
    }
    b->in[b->n_in++] = *it;
    if (b->woken) return 0;
    b->woken = 1;
    return 1;
}

static void in_push(bus *b, const bus_in *it)
{
    pthread_mutex_lock(&b->mu);
    int wake = in_push_locked(b, it);
    pthread_mutex_unlock(&b->mu);
    if (wake && b->wake) b->wake(b->wake_ud);
}

/* ---- nats.c's threads ------------------------------------------------ */

static void on_msg(natsConnection *nc, natsSubscription *ns, natsMsg *msg,
                   void *closure)
{
    (void)nc;
    (void)ns;
    bus_sub *s = closure;
    bus *b = s->b;
    const uint8_t *d = (const uint8_t *)natsMsg_GetData(msg);
    int len = natsMsg_GetDataLength(msg);
    if (len < BUS_HEADER || d[0] != BUS_VERSION) {
        /* Not ours (another version, or a stranger on our subject). */
        natsMsg_Destroy(msg);
        return;
    }
    uint64_t rev = 0;
    for (int i = 1; i < BUS_HEADER; i++) rev = rev << 8 | d[i];
    pthread_mutex_lock(&b->mu);
    if (b->drop_per_mille) {
        b->rng = b->rng * 1103515245u + 12345u;
        if ((b->rng >> 16) % 1000 < b->drop_per_mille) {
            b->st.dropped++;
            pthread_mutex_unlock(&b->mu);
            natsMsg_Destroy(msg);
            return;
        }
    }
    bus_in it = {.kind = IN_EVENT, .rev = rev, .msg = msg};
    memcpy(it.room, s->room, sizeof it.room);
    int wake = in_push_locked(b, &it);
    pthread_mutex_unlock(&b->mu);
    if (wake && b->wake) b->wake(b->wake_ud);
}

/* After nats.c dispatched the last message of a closed subscription. */
static void on_sub_complete(void *closure)
{
    bus_sub *s = closure;
    bus *b = s->b;
    free(s);
    pthread_mutex_lock(&b->mu);
    assert(b->live_subs > 0);
    b->live_subs--;
    pthread_cond_broadcast(&b->done_cv);
    pthread_mutex_unlock(&b->mu);
}

static void on_connected(natsConnection *nc, void *closure)
{
    (void)nc;
    bus *b = closure;
    pthread_mutex_lock(&b->mu);
    b->confirm_link = 1; /* the worker confirms with a round trip */
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

static void on_disconnected(natsConnection *nc, void *closure)
{
    (void)nc;
    bus *b = closure;
    pthread_mutex_lock(&b->mu);
    int was = b->connected && !b->closing;
    b->connected = 0;
    b->st.connected = 0;
    b->confirm_link = 0;
    int wake = 0;
    if (was) {
        bus_in it = {.kind = IN_LINK, .up = 0};
        wake = in_push_locked(b, &it);
    }
    pthread_mutex_unlock(&b->mu);
    if (was)
        log_warn("bus", "lost the link to NATS; events come from the "
                        "store until it is back");
    if (wake && b->wake) b->wake(b->wake_ud);
}

static void on_closed(natsConnection *nc, void *closure)
{
    on_disconnected(nc, closure);
    bus *b = closure;
    pthread_mutex_lock(&b->mu);
    b->closed = 1;
    pthread_cond_broadcast(&b->done_cv);
    pthread_mutex_unlock(&b->mu);
}

static void on_error(natsConnection *nc, natsSubscription *ns, natsStatus err,
                     void *closure)
{
    (void)nc;
    (void)ns;
    bus *b = closure;
    if (err == NATS_SLOW_CONSUMER) {
        bus_in it = {.kind = IN_LOSS};
        in_push(b, &it);
        log_warn("bus", "NATS dropped events for this core (slow consumer); "
                        "rooms are read again from the store");
    } else {
        log_warn("bus", "NATS error: %s", natsStatus_GetText(err));
    }
}

/* ---- the worker ------------------------------------------------------- */

static void run_batch(bus *b, bus_cmd *c)
{
    int subscribed = 0;
    for (bus_cmd *x = c; x; x = x->next) {
        natsStatus st = NATS_OK;
        switch (x->kind) {
        case CMD_PUB:
            st =
                natsConnection_Publish(b->nc, x->subject, x->data, (int)x->len);
            pthread_mutex_lock(&b->mu);
            *(st == NATS_OK ? &b->st.published : &b->st.publish_failed) += 1;
            pthread_mutex_unlock(&b->mu);
            break;
        case CMD_SUB:
            st = natsConnection_Subscribe(&x->sub->ns, b->nc, x->subject,
                                          on_msg, x->sub);
            if (st == NATS_OK) {
                natsSubscription_SetPendingLimits(
                    x->sub->ns, BUS_SUB_PENDING_MSGS, BUS_SUB_PENDING_BYTES);
                st = natsSubscription_SetOnCompleteCB(x->sub->ns,
                                                      on_sub_complete, x->sub);
            }
            if (st != NATS_OK) {
                /* Not watched: the store sweep still serves the room. */
                log_error("bus", "cannot subscribe to %s: %s", x->subject,
                          natsStatus_GetText(st));
                if (x->sub->ns) natsSubscription_Destroy(x->sub->ns);
                x->sub->ns = NULL;
            } else {
                subscribed = 1;
            }
            break;
        case CMD_UNSUB:
            if (x->sub->ns) {
                /* on_sub_complete frees the bus_sub once nats.c is done
                 * with it, maybe before Unsubscribe returns. */
                natsSubscription *ns = x->sub->ns;
                natsSubscription_Unsubscribe(ns);
                natsSubscription_Destroy(ns);
            } else {
                pthread_mutex_lock(&b->mu);
                b->live_subs--;
                pthread_cond_broadcast(&b->done_cv);
                pthread_mutex_unlock(&b->mu);
                free(x->sub);
            }
            break;
        }
    }
    if (subscribed &&
        natsConnection_FlushTimeout(b->nc, BUS_CONFIRM_MS) == NATS_OK) {
        /* The server has every SUB of the batch: confirm them. A failed
         * round trip confirms nothing; the link's return (on_link 1) then
         * stands for all of them. */
        for (bus_cmd *x = c; x; x = x->next)
            if (x->kind == CMD_SUB && x->sub->ns) {
                bus_in it = {.kind = IN_WATCHING};
                memcpy(it.room, x->sub->room, sizeof it.room);
                in_push(b, &it);
            }
    }
    while (c) {
        bus_cmd *n = c->next;
        free(c);
        c = n;
    }
}

static void *worker_main(void *arg)
{
    bus *b = arg;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        while (!b->stop && !b->out_head && !b->confirm_link)
            pthread_cond_wait(&b->cv, &b->mu);
        if (b->confirm_link) {
            b->confirm_link = 0;
            pthread_mutex_unlock(&b->mu);
            /* Every subscription was sent again before nats.c said
             * connected; one round trip later the server has them all. */
            natsStatus st = natsConnection_FlushTimeout(b->nc, BUS_CONFIRM_MS);
            pthread_mutex_lock(&b->mu);
            if (st == NATS_OK && !b->connected) {
                b->connected = 1;
                b->st.connected = 1;
                b->st.reconnects++;
                bus_in it = {.kind = IN_LINK, .up = 1};
                int wake = in_push_locked(b, &it);
                pthread_mutex_unlock(&b->mu);
                log_info("bus", "linked to NATS");
                if (wake && b->wake) b->wake(b->wake_ud);
                pthread_mutex_lock(&b->mu);
            } else if (st != NATS_OK) {
                log_warn("bus", "NATS link not confirmed: %s",
                         natsStatus_GetText(st));
            }
            continue;
        }
        if (!b->out_head) break; /* stop, nothing left to run */
        bus_cmd *c = b->out_head;
        b->out_head = b->out_tail = NULL;
        b->out_bytes = 0;
        pthread_mutex_unlock(&b->mu);
        run_batch(b, c);
        pthread_mutex_lock(&b->mu);
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

/* ---- the loop's side -------------------------------------------------- */

static void out_push(bus *b, bus_cmd *c, size_t bytes)
{
    pthread_mutex_lock(&b->mu);
    c->next = NULL;
    if (b->out_tail)
        b->out_tail->next = c;
    else
        b->out_head = c;
    b->out_tail = c;
    b->out_bytes += bytes;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

int bus_publish(bus *b, const char *room, uint64_t rev, const void *bytes,
                size_t len)
{
    assert(rev > 0);
    pthread_mutex_lock(&b->mu);
    int full = b->out_bytes + len > BUS_OUT_MAX_BYTES;
    if (full) b->st.publish_failed++;
    pthread_mutex_unlock(&b->mu);
    if (full) return -1;
    bus_cmd *c = malloc(sizeof *c + BUS_HEADER + len);
    if (!c) return -1;
    c->kind = CMD_PUB;
    c->sub = NULL;
    if (bus_subject(b->prefix, room, c->subject, sizeof c->subject) != 0) {
        free(c);
        return -1;
    }
    c->data[0] = BUS_VERSION;
    for (int i = 0; i < 8; i++) c->data[1 + i] = (uint8_t)(rev >> (56 - 8 * i));
    if (len) memcpy(c->data + BUS_HEADER, bytes, len);
    c->len = BUS_HEADER + len;
    out_push(b, c, c->len);
    return 0;
}

bus_sub *bus_watch(bus *b, const char *room)
{
    bus_sub *s = calloc(1, sizeof *s);
    bus_cmd *c = calloc(1, sizeof *c);
    if (!s || !c ||
        bus_subject(b->prefix, room, s->subject, sizeof s->subject) != 0) {
        free(s);
        free(c);
        return NULL;
    }
    s->b = b;
    snprintf(s->room, sizeof s->room, "%s", room);
    c->kind = CMD_SUB;
    c->sub = s;
    memcpy(c->subject, s->subject, sizeof c->subject);
    pthread_mutex_lock(&b->mu);
    b->live_subs++;
    pthread_mutex_unlock(&b->mu);
    out_push(b, c, 0);
    return s;
}

void bus_unwatch(bus *b, bus_sub *s)
{
    if (!s) return;
    bus_cmd *c = calloc(1, sizeof *c);
    if (!c) {
        /* Cannot queue it: leave the subscription; its events are
         * dropped by the caller (no watcher) and it goes at bus_free. */
        log_error("bus", "out of memory: %s stays subscribed", s->room);
        return;
    }
    c->kind = CMD_UNSUB;
    c->sub = s;
    out_push(b, c, 0);
}

size_t bus_poll(bus *b)
{
    pthread_mutex_lock(&b->mu);
    bus_in *v = b->in;
    size_t n = b->n_in;
    b->in = NULL;
    b->n_in = b->cap_in = 0;
    b->woken = 0;
    int lost = b->lost;
    b->lost = 0;
    pthread_mutex_unlock(&b->mu);
    uint64_t received = 0;
    for (size_t i = 0; i < n; i++) {
        bus_in *it = &v[i];
        switch (it->kind) {
        case IN_EVENT:
            received++;
            b->cbs.on_event(
                b->ud, it->room, it->rev,
                (const uint8_t *)natsMsg_GetData(it->msg) + BUS_HEADER,
                (size_t)natsMsg_GetDataLength(it->msg) - BUS_HEADER);
            natsMsg_Destroy(it->msg);
            break;
        case IN_WATCHING: b->cbs.on_watching(b->ud, it->room); break;
        case IN_LINK: b->cbs.on_link(b->ud, it->up); break;
        case IN_LOSS: b->cbs.on_loss(b->ud); break;
        }
    }
    free(v);
    if (lost) b->cbs.on_loss(b->ud);
    if (received) {
        pthread_mutex_lock(&b->mu);
        b->st.received += received;
        pthread_mutex_unlock(&b->mu);
    }
    return n;
}

int bus_connected(const bus *b)
{
    bus *m = (bus *)b; /* the mutex, not the state, changes */
    pthread_mutex_lock(&m->mu);
    int c = m->connected;
    pthread_mutex_unlock(&m->mu);
    return c;
}

void bus_get_stats(const bus *b, bus_stats *out)
{
    bus *m = (bus *)b;
    pthread_mutex_lock(&m->mu);
    *out = m->st;
    pthread_mutex_unlock(&m->mu);
}

/* ---- setup ------------------------------------------------------------ */

#define BUS_MAX_SERVERS 16

bus *bus_new(const bus_opts *o, const bus_cbs *cbs, void *ud, char *err,
             size_t errlen)
{
    const char *prefix =
        o->prefix && *o->prefix ? o->prefix : BUS_PREFIX_DEFAULT;
    if (!prefix_valid(prefix)) {
        snprintf(err, errlen,
                 "bus subject prefix \"%s\" is not dot-separated tokens of "
                 "[A-Za-z0-9_-] (at most %d bytes)",
                 prefix, BUS_PREFIX_MAX);
        return NULL;
    }
    /* The server list: comma-separated URLs. */
    char list[2048];
    char *urls[BUS_MAX_SERVERS];
    int n_urls = 0;
    if (snprintf(list, sizeof list, "%s", o->servers ? o->servers : "") >=
        (int)sizeof list) {
        snprintf(err, errlen, "bus server list too long");
        return NULL;
    }
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t;
         t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ') t++;
        if (!*t) continue;
        if (n_urls == BUS_MAX_SERVERS) {
            snprintf(err, errlen, "more than %d bus servers", BUS_MAX_SERVERS);
            return NULL;
        }
        urls[n_urls++] = t;
    }
    if (!n_urls) {
        snprintf(err, errlen, "no bus server given");
        return NULL;
    }
    bus *b = calloc(1, sizeof *b);
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    b->cbs = *cbs;
    b->ud = ud;
    b->wake = o->wake;
    b->wake_ud = o->wake_ud;
    b->drop_per_mille = o->test_drop_per_mille;
    b->rng = (uint32_t)time(NULL) ^ (uint32_t)(uintptr_t)b;
    snprintf(b->prefix, sizeof b->prefix, "%s", prefix);
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    pthread_cond_init(&b->done_cv, NULL);

    natsOptions *no = NULL;
    natsStatus st = natsOptions_Create(&no);
    if (st == NATS_OK)
        st = natsOptions_SetServers(no, (const char **)urls, n_urls);
    if (st == NATS_OK && o->name) st = natsOptions_SetName(no, o->name);
    /* A core gets its own events straight from its commits. */
    if (st == NATS_OK) st = natsOptions_SetNoEcho(no, true);
    if (st == NATS_OK) st = natsOptions_SetMaxReconnect(no, -1);
    if (st == NATS_OK)
        st = natsOptions_SetReconnectWait(no, BUS_RECONNECT_WAIT_MS);
    if (st == NATS_OK) st = natsOptions_SetTimeout(no, BUS_CONFIRM_MS);
    if (st == NATS_OK) st = natsOptions_SetPingInterval(no, BUS_PING_MS);
    if (st == NATS_OK) st = natsOptions_SetMaxPingsOut(no, BUS_PINGS_OUT);
    /* One delivery thread for all rooms, not one per subscription. */
    if (st == NATS_OK) st = natsOptions_UseGlobalMessageDelivery(no, true);
    if (st == NATS_OK)
        st = natsOptions_SetRetryOnFailedConnect(no, true, on_connected, b);
    if (st == NATS_OK)
        st = natsOptions_SetDisconnectedCB(no, on_disconnected, b);
    if (st == NATS_OK) st = natsOptions_SetReconnectedCB(no, on_connected, b);
    if (st == NATS_OK) st = natsOptions_SetClosedCB(no, on_closed, b);
    if (st == NATS_OK) st = natsOptions_SetErrorHandler(no, on_error, b);
    if (st == NATS_OK) {
        st = natsConnection_Connect(&b->nc, no);
        if (st == NATS_OK)
            on_connected(b->nc, b); /* connected at once: no callback */
        else if (st == NATS_NOT_YET_CONNECTED)
            st = NATS_OK; /* connects in the background */
    }
    natsOptions_Destroy(no);
    if (st != NATS_OK) {
        snprintf(err, errlen, "bus: %s", natsStatus_GetText(st));
        if (b->nc) natsConnection_Destroy(b->nc);
        b->nc = NULL;
        bus_free(b);
        return NULL;
    }
    if (pthread_create(&b->worker, NULL, worker_main, b) != 0) {
        snprintf(err, errlen, "cannot start the bus thread");
        bus_free(b);
        return NULL;
    }
    b->worker_started = 1;
    return b;
}

void bus_free(bus *b)
{
    if (!b) return;
    if (b->worker_started) {
        pthread_mutex_lock(&b->mu);
        b->stop = 1;
        pthread_cond_signal(&b->cv);
        pthread_mutex_unlock(&b->mu);
        pthread_join(b->worker, NULL);
    }
    if (b->nc) {
        pthread_mutex_lock(&b->mu);
        b->closing = 1;
        pthread_mutex_unlock(&b->mu);
        natsConnection_Close(b->nc);
        /* Wait (bounded) for nats.c to let go of every subscription and
         * of the connection's callbacks, which hold pointers into b. */
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += 5;
        pthread_mutex_lock(&b->mu);
        while ((b->live_subs || !b->closed) &&
               pthread_cond_timedwait(&b->done_cv, &b->mu, &dl) != ETIMEDOUT)
            ;
        int stuck = b->live_subs || !b->closed;
        pthread_mutex_unlock(&b->mu);
        natsConnection_Destroy(b->nc);
        if (stuck) {
            /* Freeing b could crash a late callback: keep it. */
            log_error("bus", "NATS did not release the bus in 5 s");
            return;
        }
    }
    for (size_t i = 0; i < b->n_in; i++)
        if (b->in[i].kind == IN_EVENT) natsMsg_Destroy(b->in[i].msg);
    free(b->in);
    while (b->out_head) {
        bus_cmd *n = b->out_head->next;
        free(b->out_head);
        b->out_head = n;
    }
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv);
    pthread_cond_destroy(&b->done_cv);
    free(b);
}

void bus_library_close(void) { nats_CloseAndWait(5000); }
