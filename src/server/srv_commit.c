/* srv_commit.c: group commit. Publishes (unary Stream.Publish and Connect
 * publish frames) collected during one loop iteration are stored in one
 * transaction, sorted by room (by_room); only after store_commit returns
 * (fsync'd with synchronous=FULL) are they acked and their events fanned
 * out, a room's in commit order. Each publish is checked against the access
 * rules (srv_access.c) inside that transaction. A publish the rules or the
 * store refuse (muted, room not found, bad body, ...) gets its own error and
 * changes nothing; a failing
 * commit fails the whole batch. */
#include "srv.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

parley_err srv_enqueue(srv *s, rpc_call *c, srv_conn *conn,
                       srv_pub_done_fn done, uint64_t request_id,
                       const auth_identity *who,
                       const Parley__V1__PublishRequest *p)
{
    /* Cheap checks first, so a bad publish never enters a batch. */
    parley_err e = rules_room(p->room);
    if (!e) e = rules_client_msg_id(p->client_msg_id);
    /* the wire check (rpc_check.c) refused every string holding a NUL,
     * so strlen is the length that was sent */
    size_t blen = strlen(p->body);
    if (!e) e = rules_body(p->body, blen, s->max_body);
    if (e) return e;
    /* one bucket per user, whatever path the publish came by */
    if (!srv_take_write(s, who)) return PARLEY_ERR_RESOURCE_EXHAUSTED;
    if (s->n_batch == s->cap_batch) {
        size_t nc = s->cap_batch ? s->cap_batch * 2 : 64;
        srv_pending_pub *nb = realloc(s->batch, nc * sizeof *nb);
        if (!nb) return PARLEY_ERR_INTERNAL;
        s->batch = nb;
        s->cap_batch = nc;
    }
    size_t rl = strlen(p->room) + 1, il = strlen(p->client_msg_id) + 1;
    char *mem = malloc(rl + il + blen + 1);
    if (!mem) return PARLEY_ERR_INTERNAL;
    srv_pending_pub *pub = &s->batch[s->n_batch++];
    pub->call = c;
    assert((conn == NULL) == (done == NULL));
    pub->conn = conn;
    pub->done = done;
    pub->request_id = request_id;
    pub->who = *who;
    pub->room = mem;
    memcpy(pub->room, p->room, rl);
    pub->client_msg_id = mem + rl;
    memcpy(pub->client_msg_id, p->client_msg_id, il);
    pub->body = mem + rl + il;
    memcpy(pub->body, p->body, blen + 1);
    pub->body_len = blen;
    rpc_call_ref(c);
    return PARLEY_OK;
}

/* The answer to one publish, encoded while its row is still valid. */
typedef struct pub_result {
    parley_err err;
    parley_rule rule;   /* with PERMISSION_DENIED */
    parley_standing st; /* for the refusal's detail */
    int duplicate;
    grpc_slice reply; /* PublishResponse or ServerFrame{ack} */
    grpc_slice event; /* ServerFrame{event}, when fanned out */
    uint64_t rev;     /* the event's */
    int has_event;
} pub_result;

static void answer_error(srv_pending_pub *p, parley_err e, parley_rule rule,
                         const char *detail)
{
    if (p->conn)
        srv_send_error_rule(p->call, p->request_id, e, rule, detail, 0);
    else
        rpc_fail_rule(p->call, e, rule, detail);
}

/* The order a batch is stored in: by room (byte order), then as it
 * arrived. Each append locks its room's row until the commit (PostgreSQL,
 * with several cores), so two cores whose batches touch the same rooms
 * take the locks in the same order and cannot deadlock; within a room the
 * publishes keep the order they arrived in. */
static int by_room(const void *a, const void *b, void *ud)
{
    const srv_pending_pub *v = ud;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    int c = strcmp(v[i].room, v[j].room);
    return c ? c : (i > j) - (i < j);
}

size_t srv_flush(srv *s)
{
    size_t n = s->n_batch;
    assert(n <= s->cap_batch);
    if (!n) return 0;
    pub_result *res = calloc(n, sizeof *res);
    size_t *order = malloc(n * sizeof *order);
    if (order) {
        for (size_t i = 0; i < n; i++) order[i] = i;
        qsort_r(order, n, sizeof *order, by_room, s->batch);
    }
    int64_t now = clock_wall_ms();
    uint64_t t0 = clock_mono_ns();
    size_t stored = 0, dups = 0;
    parley_err be = res && order ? store_begin(s->db) : PARLEY_ERR_INTERNAL;
    int failed = be != PARLEY_OK;
    for (size_t k = 0; k < n && !failed; k++) {
        size_t i = order[k];
        srv_pending_pub *p = &s->batch[i];
        parley_author a = auth_author(&p->who);
        parley_msg m;
        int dup = 0;
        srv_grant g;
        /* Access is decided inside the commit's transaction, so a mute or
         * a mode change stored before it holds for every publish after. */
        parley_err e = srv_check(s, &p->who, p->room, ACCESS_POST, 0, &g);
        if (e == PARLEY_ERR_PERMISSION_DENIED) {
            /* A repeat of a publish stored before the rule came (a mute
             * while its ack was lost) is acked with the original, as any
             * repeat: a stored message is never reported refused. */
            parley_err f = store_find_client(s->db, p->room, p->who.id,
                                             p->client_msg_id, &m);
            if (f == PARLEY_OK) {
                dup = 1;
                e = PARLEY_OK;
            } else {
                res[i].err = e;
                res[i].rule = g.rule;
                res[i].st = g.st;
                continue;
            }
        }
        /* The author as the room knows them: their role there. */
        a.role = g.role;
        if (e == PARLEY_OK && !dup)
            e = store_append(s->db, p->room, &a, p->client_msg_id, p->body,
                             p->body_len, now, &m, &dup);
        if (e == PARLEY_ERR_INTERNAL || e == PARLEY_ERR_IO) {
            log_error("store", "append failed: %s", store_last_error(s->db));
            failed = 1;
            break;
        }
        res[i].err = e;
        if (e) continue;
        res[i].duplicate = dup;
        *(dup ? &dups : &stored) += 1;
        srv_pbmsg pm;
        srv_pb_message(&pm, &m);
        if (p->conn) {
            Parley__V1__Ack ack = PARLEY__V1__ACK__INIT;
            ack.client_msg_id = p->client_msg_id;
            ack.message = &pm.msg;
            ack.duplicate = dup ? 1 : 0;
            Parley__V1__ServerFrame f = PARLEY__V1__SERVER_FRAME__INIT;
            f.request_id = p->request_id;
            f.kind_case = PARLEY__V1__SERVER_FRAME__KIND_ACK;
            f.ack = &ack;
            res[i].reply = rpc_encode(&f.base);
        } else {
            Parley__V1__PublishResponse r = PARLEY__V1__PUBLISH_RESPONSE__INIT;
            r.message = &pm.msg;
            r.duplicate = dup ? 1 : 0;
            res[i].reply = rpc_encode(&r.base);
        }
        /* With a bus every event is encoded: other cores may watch. */
        if (!dup && (s->bus || hub_has_live(s->hub, m.room))) {
            res[i].event = srv_event_frame(
                PARLEY__V1__EVENT_TYPE__EVENT_TYPE_CREATED, &m, 0);
            res[i].rev = m.rev;
            res[i].has_event = 1;
        }
    }
    if (!failed && store_commit(s->db) != PARLEY_OK) {
        log_error("store", "commit failed: %s", store_last_error(s->db));
        failed = 1;
    }
    if (failed && be == PARLEY_OK) store_rollback(s->db);
    srv_metrics_commit(s->metrics, n, stored, dups, failed,
                       clock_mono_ns() - t0);
    /* From here on the batch is committed (or wholly failed): answers and
     * events go out in arrival order (a room's in commit order), never
     * before. */
    assert(s->n_batch == n); /* nothing joined the batch meanwhile */

    for (size_t i = 0; i < n; i++) {
        srv_pending_pub *p = &s->batch[i];
        if (failed) {
            answer_error(p, PARLEY_ERR_INTERNAL, PARLEY_RULE_NONE,
                         "storage failure; retry");
        } else if (res[i].err == PARLEY_ERR_PERMISSION_DENIED) {
            char detail[200];
            srv_rule_detail(res[i].rule, &res[i].st, detail, sizeof detail);
            answer_error(p, res[i].err, res[i].rule, detail);
        } else if (res[i].err) {
            answer_error(p, res[i].err, PARLEY_RULE_NONE,
                         parley_err_text(res[i].err));
        } else {
            if (p->conn)
                rpc_stream_send(p->call, res[i].reply);
            else
                rpc_reply_slice(p->call, res[i].reply);
            if (res[i].has_event)
                srv_deliver(s, p->room, res[i].rev, res[i].event);
        }
        if (res) {
            grpc_slice_unref(res[i].reply); /* no-op when never set */
            if (res[i].has_event) grpc_slice_unref(res[i].event);
        }
        if (p->conn) p->done(p->conn);
        rpc_call_unref(p->call);
        free(p->room);
    }
    free(res);
    free(order);
    s->n_batch = 0;
    return n;
}
