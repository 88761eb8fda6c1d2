/* srv_core.c: the srv object and the services it registers, identity
 * checks on every call, the unary calls' shared answers (store errors,
 * page sizes), conversion of store rows to parley.v1 messages,
 * event frames and fan-out. */
#include "srv.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "grpc/health/v1/health.grpc.h"
#include "log.h"

#define SRV_SAMPLE_MS 1000 /* gauges are sampled this often */
#define SRV_TOKEN_CACHE_DEFAULT 4096

srv *srv_new(store *db, const auth *au, const srv_opts *opts, char *err,
             size_t errlen)
{
    srv *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->db = db;
    s->wdb = db;
    s->au = au;
    s->max_body =
        opts && opts->max_body ? opts->max_body : RULES_BODY_MAX_DEFAULT;
    size_t slots =
        opts && opts->token_cache ? opts->token_cache : SRV_TOKEN_CACHE_DEFAULT;
    s->n_readers = opts ? opts->readers : 0;
    s->max_subs = opts && opts->max_subs ? opts->max_subs : 100;
    s->hub = hub_new();
    s->rate =
        srv_rate_new(opts ? opts->user_rate : 0, opts ? opts->user_burst : 1);
    s->org_rate = srv_rate_new(opts ? opts->organizer_rate : 0,
                               opts ? opts->user_burst : 1);
    s->metrics = srv_metrics_new(opts ? opts->metrics : NULL);
    s->health = srv_health_new();
    s->ac = auth_cache_new(au, slots);
    s->readers = calloc(s->n_readers ? s->n_readers : 1, sizeof *s->readers);
    s->presence = srv_presence_new();
    if (!s->hub || !s->rate || !s->org_rate || !s->metrics || !s->health ||
        !s->presence || !s->ac || !s->readers) {
        snprintf(err, errlen, "out of memory");
        srv_free(s);
        return NULL;
    }
    if (!(opts && opts->no_reflection)) {
        s->reflection = srv_reflection_new(err, errlen);
        if (!s->reflection) {
            srv_free(s);
            return NULL;
        }
    }
    /* The loop's own read handle lets the writer thread commit while the
     * loop reads; without one (an in-memory database, an engine without
     * reader handles) the loop commits. */
    store *mine = NULL;
    char why[300];
    if (opts && opts->commit_thread &&
        store_open_reader(db, &mine, why, sizeof why) == PARLEY_OK) {
        /* The writer needs the loop's view pinned while it commits: an
         * engine that cannot pin one keeps the loop committing. */
        if (store_snapshot_begin(mine) == PARLEY_OK) {
            store_snapshot_end(mine);
            s->db = mine;
            s->owns_db = 1;
        } else {
            store_close(mine);
        }
    }
    if (!s->n_readers) s->readers[0] = (srv_reader){s, s->db, s->ac, 0};
    for (size_t i = 0; i < s->n_readers; i++) {
        srv_reader *r = &s->readers[i];
        *r = (srv_reader){s, NULL, NULL, 1};
        if (store_open_reader(db, &r->db, why, sizeof why) != PARLEY_OK) {
            snprintf(err, errlen, "reader %zu: %s", i, why);
            srv_free(s);
            return NULL;
        }
        r->ac = auth_cache_new(au, slots);
        if (!r->ac) {
            snprintf(err, errlen, "out of memory");
            srv_free(s);
            return NULL;
        }
    }
    /* Last: from here on db is the writer thread's alone. */
    if (s->owns_db && srv_writer_start(s, err, errlen) != 0) {
        srv_free(s);
        return NULL;
    }
    return s;
}

/* Registers one service, and tells the metrics and reflection of it. */
static int add_service(srv *s, rpc_server *rs, const rpc_service_desc *d,
                       const void *handlers, char *err, size_t errlen)
{
    if (rpc_server_add_service(rs, d, handlers, s, err, errlen) != 0) return -1;
    srv_metrics_service(s->metrics, d);
    srv_reflection_serves(s->reflection, d->full_name);
    return 0;
}

int srv_register(srv *s, rpc_server *rs, char *err, size_t errlen)
{
    s->rs = rs;
    if (rpc_server_workers(rs) != s->n_readers) {
        snprintf(err, errlen, "%zu reader threads for %zu readers",
                 rpc_server_workers(rs), s->n_readers);
        return -1;
    }
    if (add_service(s, rs, &parley_v1_History_service, &srv_history, err,
                    errlen) != 0 ||
        add_service(s, rs, &parley_v1_Stream_service, &srv_stream, err,
                    errlen) != 0 ||
        add_service(s, rs, &parley_v1_Rooms_service, &srv_rooms, err, errlen) !=
            0)
        return -1;
    /* The reads go to the readers (or to readers[0], the loop's own). */
    static const int reads[] = {PARLEY_V1_HISTORY_LIST_MESSAGES,
                                PARLEY_V1_HISTORY_GET_MESSAGE,
                                PARLEY_V1_HISTORY_GET_ROOM};
    size_t n = s->n_readers ? s->n_readers : 1;
    void **uds = calloc(n, sizeof *uds);
    if (!uds) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) uds[i] = &s->readers[i];
    int rc = 0;
    for (size_t i = 0; i < sizeof reads / sizeof reads[0] && !rc; i++) {
        const rpc_method_desc *m = &parley_v1_History_service.methods[reads[i]];
        if (rpc_server_on_workers(rs, m, uds) != 0) {
            snprintf(err, errlen, "cannot serve %s on reader threads", m->path);
            rc = -1;
        }
    }
    free(uds);
    if (rc) return -1;
    if (srv_health_register(s, rs, err, errlen) != 0) return -1;
    srv_metrics_service(s->metrics, &grpc_health_v1_Health_service);
    srv_reflection_serves(s->reflection,
                          grpc_health_v1_Health_service.full_name);
    if (s->reflection && srv_reflection_register(s, rs, err, errlen) != 0)
        return -1;
    rpc_observer obs = {srv_metrics_call_done, s->metrics};
    rpc_server_set_observer(rs, &obs);
    return 0;
}

void srv_tick(srv *s, const rpc_server *rs)
{
    srv_health_tick(s);
    srv_presence_tick(s, clock_mono_ms());
    int64_t now = clock_mono_ms();
    srv_commit_tick(s, now);
    if (now >= s->next_sample_ms) {
        s->next_sample_ms = now + SRV_SAMPLE_MS;
        srv_metrics_sample(s->metrics, s, rs);
    }
    if (now >= s->next_expire_ms) { /* once a second */
        s->next_expire_ms = now + 1000;
        size_t n = srv_expire(s, clock_wall_ms() / 1000);
        if (n) log_info("auth", "%zu stream(s) ended: token expired", n);
        srv_rate_sweep(s->rate, now);
        srv_rate_sweep(s->org_rate, now);
    }
}

void srv_free(srv *s)
{
    if (!s) return;
    srv_bus_stop(s);
    srv_presence_free(s->presence);
    srv_writer_stop(s);
    if (s->owns_db) store_close(s->db);
    for (size_t i = 0; i < s->batch.n; i++) free(s->batch.v[i].room);
    free(s->batch.v);
    for (size_t i = 0; s->readers && i < s->n_readers; i++) {
        if (!s->readers[i].owns) continue;
        store_close(s->readers[i].db);
        auth_cache_free(s->readers[i].ac);
    }
    free(s->readers);
    auth_cache_free(s->ac);
    hub_free(s->hub);
    srv_rate_free(s->rate);
    srv_rate_free(s->org_rate);
    srv_metrics_free(s->metrics);
    srv_health_free(s->health);
    srv_reflection_free(s->reflection);
    free(s);
}

/* ---- answers shared by the unary calls ---- */

void srv_fail_store(rpc_call *c, store *db, parley_err e)
{
    if (e == PARLEY_ERR_INTERNAL || e == PARLEY_ERR_IO) {
        log_error("store", "store error: %s", store_last_error(db));
        rpc_fail(c, PARLEY_ERR_INTERNAL, "storage failure");
        return;
    }
    rpc_fail(c, e, NULL);
}

void srv_answer(rpc_call *c, store *db, parley_err e,
                const ProtobufCMessage *reply)
{
    if (e)
        srv_fail_store(c, db, e);
    else
        rpc_reply(c, reply);
}

unsigned srv_page_limit(rpc_call *c, uint32_t asked, unsigned dflt)
{
    assert(dflt >= 1 && dflt <= RULES_LIST_LIMIT_MAX);
    if (asked > RULES_LIST_LIMIT_MAX) {
        char detail[40];
        snprintf(detail, sizeof detail, "limit must be 1..%u",
                 (unsigned)RULES_LIST_LIMIT_MAX);
        rpc_fail(c, PARLEY_ERR_BAD_CURSOR, detail);
        return 0;
    }
    return asked ? asked : dflt;
}

void *srv_grow(void *arr, size_t *cap, size_t first, size_t size)
{
    assert(first > 0 && size > 0);
    size_t n = *cap ? *cap * 2 : first;
    void *grown = realloc(arr, n * size);
    if (grown) *cap = n;
    return grown;
}

int srv_authenticate(srv *s, rpc_call *c, auth_identity *who)
{
    return srv_authenticate_with(s->ac, c, who);
}

int srv_authenticate_with(auth_cache *ac, rpc_call *c, auth_identity *who)
{
    char tok[4096];
    if (rpc_call_metadata(c, "authorization", tok, sizeof tok) < 0) {
        rpc_fail(c, PARLEY_ERR_UNAUTHENTICATED,
                 "missing authorization metadata (want: Bearer <jwt>)");
        return -1;
    }
    parley_err e = auth_cache_verify(ac, tok, clock_wall_ms() / 1000, who);
    if (e != PARLEY_OK) {
        rpc_fail(c, e,
                 e == PARLEY_ERR_TOKEN_EXPIRED
                     ? "the token has expired; renew it"
                     : "invalid or badly signed token, or claims refused");
        return -1;
    }
    return 0;
}

int srv_take_write(srv *s, const auth_identity *who)
{
    /* An organizer by the old role claim, or of some room by the rooms
     * claim, writes at the organizers' rate. */
    int org = who->role == PARLEY_ROLE_ORGANIZER;
    for (unsigned i = 0; !org && who->grants.present && i < who->grants.n; i++)
        org = who->grants.g[i].role == PARLEY_ROLE_ORGANIZER;
    srv_rate *r = org ? s->org_rate : s->rate;
    return srv_rate_take(r, who->id, clock_mono_ms());
}

int srv_refuse_write(srv *s, rpc_call *c, const auth_identity *who)
{
    if (srv_refuse_service(c, who)) return -1;
    if (srv_take_write(s, who)) return 0;
    rpc_fail(c, PARLEY_ERR_RESOURCE_EXHAUSTED,
             "over this user's write rate; retry shortly");
    return -1;
}

int srv_refuse_service(rpc_call *c, const auth_identity *who)
{
    if (!who->service) return 0;
    rpc_fail_rule(c, PARLEY_ERR_PERMISSION_DENIED,
                  PARLEY_RULE_SERVICE_READ_ONLY,
                  "a service token can read, never write (rule "
                  "SERVICE_READ_ONLY)");
    return -1;
}

void srv_pb_message(srv_pbmsg *out, const parley_msg *m)
{
    parley__v1__message__init(&out->msg);
    parley__v1__author__init(&out->author);
    out->author.id = (char *)m->author.id;
    out->author.display_name = (char *)m->author.display_name;
    out->author.role = (Parley__V1__Role)m->author.role;
    out->msg.room = (char *)m->room;
    out->msg.seq = m->seq;
    out->msg.rev = m->rev;
    out->msg.client_msg_id = (char *)m->client_msg_id;
    out->msg.author = &out->author;
    out->msg.body = (char *)(m->body ? m->body : "");
    out->msg.created_at_ms = m->created_at_ms;
    out->msg.edited_at_ms = m->edited_at_ms;
    out->msg.deleted = m->deleted ? 1 : 0;
}

void srv_pb_room(const srv *s, Parley__V1__Room *out, const parley_room *r)
{
    parley__v1__room__init(out);
    out->name = (char *)r->name;
    out->head_seq = r->head_seq;
    out->head_rev = r->head_rev;
    out->max_body_bytes =
        s->max_body > UINT32_MAX ? UINT32_MAX : (uint32_t)s->max_body;
    out->title = (char *)(r->title ? r->title : "");
    out->topic = (char *)(r->topic ? r->topic : "");
    out->visibility = (Parley__V1__Visibility)r->visibility;
    out->mode = (Parley__V1__RoomMode)r->mode;
}

int srv_event_type(const parley_msg *m)
{
    if (m->deleted) return PARLEY__V1__EVENT_TYPE__EVENT_TYPE_DELETED;
    if (m->edited_at_ms) return PARLEY__V1__EVENT_TYPE__EVENT_TYPE_EDITED;
    return PARLEY__V1__EVENT_TYPE__EVENT_TYPE_CREATED;
}

grpc_slice srv_event_frame(int type, const parley_msg *m, int replay)
{
    srv_pbmsg pm;
    srv_pb_message(&pm, m);
    Parley__V1__Event ev = PARLEY__V1__EVENT__INIT;
    ev.type = (Parley__V1__EventType)type;
    ev.message = &pm.msg;
    ev.replay = replay ? 1 : 0;
    Parley__V1__ServerFrame f = PARLEY__V1__SERVER_FRAME__INIT;
    f.kind_case = PARLEY__V1__SERVER_FRAME__KIND_EVENT;
    f.event = &ev;
    return rpc_encode(&f.base);
}

void srv_fanout(srv *s, int type, const parley_msg *m)
{
    if (!s->bus && !hub_has_live(s->hub, m->room)) return;
    grpc_slice f = srv_event_frame(type, m, 0);
    srv_deliver(s, m->room, m->rev, f);
    grpc_slice_unref(f);
}

void srv_send_error(rpc_call *c, uint64_t request_id, parley_err e,
                    const char *detail, int fatal)
{
    srv_send_error_rule(c, request_id, e, PARLEY_RULE_NONE, detail, fatal);
}

void srv_send_error_rule(rpc_call *c, uint64_t request_id, parley_err e,
                         parley_rule rule, const char *detail, int fatal)
{
    Parley__V1__Error er = PARLEY__V1__ERROR__INIT;
    er.code = (Parley__V1__ErrorCode)e;
    er.rule = (Parley__V1__Rule)rule;
    er.detail = (char *)(detail ? detail : parley_err_text(e));
    er.fatal = fatal ? 1 : 0;
    Parley__V1__ServerFrame f = PARLEY__V1__SERVER_FRAME__INIT;
    f.request_id = request_id;
    f.kind_case = PARLEY__V1__SERVER_FRAME__KIND_ERROR;
    f.error = &er;
    rpc_stream_send_msg(c, &f.base);
}
