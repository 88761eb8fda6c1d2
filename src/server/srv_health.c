/* srv_health.c: grpc.health.v1.Health (Check and Watch) for parleyd.
 *
 * What it reports: a core that cannot commit is NOT_SERVING. The store
 * remembers what its writes found out (store_write_status: a commit that
 * failed for a storage reason, such as a full disk or a read-only file,
 * until a later one commits), and while that says it cannot, srv_tick
 * probes it every SRV_HEALTH_PROBE_MS (store_probe writes about as much as
 * a group commit), so a core that load balancers stopped sending to still
 * learns when the disk has room again. From SIGTERM on, everything is
 * NOT_SERVING (srv_health_shutdown).
 *
 * The services it answers for: "" (the server as a whole),
 * parley.v1.History and parley.v1.Stream, all with the same status, since
 * both need the store. Any other name is unknown: Check fails with
 * NOT_FOUND, Watch answers SERVICE_UNKNOWN and stays open, as the protocol
 * says. Health needs no token: probes do not carry one, and the answer
 * holds nothing but the status.
 *
 * Watch streams stay open until the client cancels or the server shuts
 * down, and get a message each time their service's status changes. */
#include "srv.h"

#include <assert.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/health/v1/health.grpc.h"
#include "log.h"

#define SRV_HEALTH_PROBE_MS 2000

typedef Grpc__Health__V1__HealthCheckResponse__ServingStatus health_status;
#define ST_UNKNOWN \
    GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__UNKNOWN
#define ST_SERVING \
    GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
#define ST_NOT_SERVING \
    GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING
#define ST_SERVICE_UNKNOWN \
    GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN

/* One Watch stream. */
typedef struct health_watch {
    srv *s;
    rpc_call *call;
    int known;          /* the service is one we report on */
    health_status sent; /* the last status sent */
    list_node link;     /* srv_health.watches */
} health_watch;

struct srv_health {
    atomic_int serving; /* read by other threads (srv_health_serving) */
    int shutting_down;
    int64_t next_probe_ms; /* monotonic; 0: no probe due */
    list watches;
};

static const char *const known_services[] = {"", "parley.v1.History",
                                             "parley.v1.Stream"};

static int service_known(const char *name)
{
    for (size_t i = 0; i < sizeof known_services / sizeof known_services[0];
         i++)
        if (strcmp(name, known_services[i]) == 0) return 1;
    return 0;
}

srv_health *srv_health_new(void)
{
    srv_health *h = calloc(1, sizeof *h);
    if (h) atomic_init(&h->serving, 1);
    return h;
}

void srv_health_free(srv_health *h)
{
    if (!h) return;
    assert(h->watches.len == 0); /* every call closed before the srv goes */
    free(h);
}

int srv_health_serving(const srv *s)
{
    return atomic_load(&((srv_health *)s->health)->serving);
}

static health_status current(const srv_health *h)
{
    return atomic_load(&((srv_health *)h)->serving) ? ST_SERVING
                                                    : ST_NOT_SERVING;
}

static void send_status(rpc_call *c, health_status st)
{
    Grpc__Health__V1__HealthCheckResponse r =
        GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    r.status = st;
    rpc_stream_send_msg(c, &r.base);
}

/* Sets the state and tells every watcher of a known service. */
static void set_serving(srv *s, int serving, const char *why)
{
    srv_health *h = s->health;
    if (atomic_load(&h->serving) == serving) return;
    atomic_store(&h->serving, serving);
    srv_metrics_health(s->metrics, serving);
    if (serving)
        log_info("health", "SERVING: the store commits again");
    else
        log_warn("health", "NOT_SERVING: %s", why);
    health_status st = current(h);
    list_for_each(&h->watches, n, next)
    {
        health_watch *w = list_entry(n, health_watch, link);
        if (w->known && w->sent != st) {
            send_status(w->call, st);
            w->sent = st;
        }
    }
}

void srv_health_tick(srv *s)
{
    srv_health *h = s->health;
    if (h->shutting_down) return;
    parley_err ws = store_write_status(s->db);
    int64_t now = clock_mono_ms();
    if (ws == PARLEY_OK) {
        h->next_probe_ms = 0;
        set_serving(s, 1, NULL);
        return;
    }
    if (atomic_load(&h->serving)) {
        set_serving(s, 0, store_last_error(s->db));
        h->next_probe_ms = now + SRV_HEALTH_PROBE_MS;
        return;
    }
    /* Not serving: probe now and then; a probe cannot join a group
     * commit, and none is open between polls. */
    if (now < h->next_probe_ms) return;
    h->next_probe_ms = now + SRV_HEALTH_PROBE_MS;
    if (store_probe(s->db) == PARLEY_OK) set_serving(s, 1, NULL);
}

void srv_health_shutdown(srv *s)
{
    srv_health *h = s->health;
    if (h->shutting_down) return;
    set_serving(s, 0, "shutting down");
    h->shutting_down = 1;
}

/* ---- the service ---- */

static void h_check(rpc_call *c,
                    const Grpc__Health__V1__HealthCheckRequest *req, void *ud)
{
    srv *s = ud;
    if (!service_known(req->service)) {
        rpc_fail_status(c, GRPC_STATUS_NOT_FOUND, "unknown service");
        return;
    }
    Grpc__Health__V1__HealthCheckResponse r =
        GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    r.status = current(s->health);
    rpc_reply(c, &r.base);
}

static void watch_close(rpc_call *c, void *ud)
{
    health_watch *w = ud;
    list_remove(&w->link);
    free(w);
    rpc_call_unref(c);
}

static void h_watch(rpc_call *c,
                    const Grpc__Health__V1__HealthCheckRequest *req, void *ud)
{
    srv *s = ud;
    health_watch *w = calloc(1, sizeof *w);
    if (!w) {
        rpc_fail(c, PARLEY_ERR_INTERNAL, "out of memory");
        return;
    }
    w->s = s;
    w->call = c;
    w->known = service_known(req->service);
    w->sent = w->known ? current(s->health) : ST_SERVICE_UNKNOWN;
    rpc_call_ref(c);
    list_push_back(&s->health->watches, &w->link);
    static const rpc_stream_cbs cbs = {NULL, NULL, NULL, watch_close};
    rpc_stream_set_callbacks(c, &cbs, w);
    send_status(c, w->sent);
}

static const grpc_health_v1_Health_handlers health_handlers = {
    .check = h_check,
    .watch = h_watch,
};

int srv_health_register(srv *s, rpc_server *rs, char *err, size_t errlen)
{
    srv_metrics_health(s->metrics, srv_health_serving(s));
    return rpc_server_add_service(rs, &grpc_health_v1_Health_service,
                                  &health_handlers, s, err, errlen);
}
