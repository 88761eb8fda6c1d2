/* srv_commit.c: group commit. The writes a loop iteration received
 * (publishes from unary Stream.Publish and Connect streams, History's
 * edits and deletes, Rooms' read marks) are stored in one transaction,
 * sorted by room
 * (by_room); only after store_commit returned (fsync'd with durability
 * full) are they answered and their events delivered (srv_deliver: the
 * hub, and the bus to other cores), a room's in commit order. Each write
 * is checked against the access rules (srv_access.c) inside that
 * transaction, through the handle that commits it, so a mute, a removal
 * or a mode change stored before it holds for it. A write the rules or
 * the store refuse (muted, room not found, bad body, ...) gets its own
 * error and changes nothing; a failing commit fails the whole group. The
 * per-user write rate is taken on the loop, before a write joins a group.
 *
 * The writer thread. The commit itself (SQLite's fsync above all) runs on
 * a thread of its own that owns the caller's store handle, so the loop
 * goes on reading requests, sending acks and collecting the next group
 * while the disk works; a group's size then follows the load by itself
 * (what arrived during one fsync is the next group). The loop hands a
 * group over and takes it back, answered by the writer, in srv_flush; the
 * writer wakes the loop (rpc_server_wake) when a group is done:
 *
 *   loop:   collect --hand over--> [writer: begin, append..., commit]
 *           collect ...                          |
 *           answer + fan out <--- done ----------+   then hand over again
 *
 * What nobody may see: a commit whose events are not fanned out yet. A
 * subscriber that turned live after reading such a commit in its replay,
 * or that resumed after a page holding it, would get its events twice.
 *   - The loop's own reads (replays, subscribes) go through a read handle
 *     of its own (s->db) that holds a snapshot from the hand-over until
 *     the answers are out, so they see only what was fanned out.
 *   - History readers on other threads check what they read with
 *     srv_read_settled: the writer lists, before it commits, each room of
 *     the group with the rev the room had before it; a reader whose page
 *     shows a later rev of such a room waits until the loop fanned that
 *     commit out, and reads again.
 * A held snapshot keeps SQLite from starting its log afresh, so the writer
 * takes checkpoints over (store_own_checkpoints) and runs one, with no
 * snapshot held, whenever the log passed SRV_CHECKPOINT_PAGES.
 *
 * With interval durability a commit does not wait for the disk, so a small
 * group (SRV_INLINE_MAX) is not worth two thread switches: while the
 * writer is idle the loop commits it itself, and syncs on its ticks. A
 * loop without a second handle (an in-memory database, an engine that
 * cannot pin a snapshot) always commits itself. Either way commit, answers
 * and fan-out then happen in one go, before the loop reads any request
 * again, and the History readers' check has nothing to wait for. The
 * loop's rare writes outside a group (the Rooms service, CreateRoom) go
 * the same way: srv_write_now waits for the group in flight, answers it,
 * and lends the loop the writer's handle until the next hand-over. */
#include "srv.h"

#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rules.h"

/* Log pages (4 KiB) after which the loop asks for a checkpoint. */
#define SRV_CHECKPOINT_PAGES 4000

typedef struct srv_vis_room {
    char room[RULES_ROOM_MAX + 1];
    uint64_t pre_rev; /* the room's head rev before the commit */
} srv_vis_room;

struct srv_writer {
    srv *s;
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* work for the writer, or stop */
    pthread_cond_t done_cv; /* the writer finished its job (srv_write_now) */
    srv_ops job;    /* the group handed over (the writer's while busy) */
    int busy;       /* handed over, not yet taken back by the loop */
    int done;       /* the writer finished it */
    int checkpoint; /* the job is a checkpoint, no writes */
    int stop;
    int failed;          /* the job's transaction failed as a whole */
    uint64_t commit_ns;  /* how long it took */
    size_t log_pages;    /* the log's size after the job */
    int want_checkpoint; /* loop only: the next hand-over checkpoints */
    int inline_small;    /* interval durability: small groups on the loop */
    /* srv_read_settled: the rooms of the commit in flight */
    pthread_mutex_t vis_mu;
    pthread_cond_t vis_cv;
    uint64_t gen_inflight, gen_fanned; /* commits listed, fanned out */
    srv_vis_room *vis;
    size_t n_vis, cap_vis;
};

/* ---- collecting -------------------------------------------------------- */

/* A new op at the end of the batch with one allocation for its strings
 * (room, then client id, then body); NULL out of memory. */
static srv_op *op_push(srv *s, srv_op_kind kind, rpc_call *c, const char *room,
                       const char *cid, const char *body, size_t body_len)
{
    srv_ops *b = &s->batch;
    if (b->n == b->cap) {
        srv_op *nv = srv_grow(b->v, &b->cap, 64, sizeof *nv);
        if (!nv) return NULL;
        b->v = nv;
    }
    size_t rl = strlen(room) + 1, il = cid ? strlen(cid) + 1 : 1;
    char *mem = malloc(rl + il + body_len + 1);
    if (!mem) return NULL;
    srv_op *op = &b->v[b->n++];
    memset(op, 0, sizeof *op);
    op->kind = kind;
    op->call = c;
    op->room = mem;
    memcpy(op->room, room, rl);
    op->client_msg_id = mem + rl;
    memcpy(op->client_msg_id, cid ? cid : "", il);
    op->body = mem + rl + il;
    if (body_len) memcpy(op->body, body, body_len);
    op->body[body_len] = '\0';
    op->body_len = body_len;
    rpc_call_ref(c);
    return op;
}

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
    srv_op *op =
        op_push(s, SRV_OP_PUBLISH, c, p->room, p->client_msg_id, p->body, blen);
    if (!op) return PARLEY_ERR_INTERNAL;
    assert((conn == NULL) == (done == NULL));
    op->conn = conn;
    op->done = done;
    op->request_id = request_id;
    op->who = *who;
    return PARLEY_OK;
}

parley_err srv_enqueue_edit(srv *s, rpc_call *c, const auth_identity *who,
                            const char *room, uint64_t seq, const char *body)
{
    parley_err e = rules_room(room);
    size_t blen = strlen(body);
    if (!e) e = rules_body(body, blen, s->max_body);
    if (e) return e;
    srv_op *op = op_push(s, SRV_OP_EDIT, c, room, NULL, body, blen);
    if (!op) return PARLEY_ERR_INTERNAL;
    op->who = *who;
    op->seq = seq;
    return PARLEY_OK;
}

parley_err srv_enqueue_mark_read(srv *s, rpc_call *c, const auth_identity *who,
                                 const char *room, uint64_t seq, uint64_t rev)
{
    parley_err e = rules_room(room);
    if (e) return e;
    srv_op *op = op_push(s, SRV_OP_MARK_READ, c, room, NULL, "", 0);
    if (!op) return PARLEY_ERR_INTERNAL;
    op->who = *who;
    op->seq = seq;
    op->mark_rev = rev;
    return PARLEY_OK;
}

parley_err srv_enqueue_delete(srv *s, rpc_call *c, const auth_identity *who,
                              const char *room, uint64_t seq)
{
    parley_err e = rules_room(room);
    if (e) return e;
    srv_op *op = op_push(s, SRV_OP_DELETE, c, room, NULL, "", 0);
    if (!op) return PARLEY_ERR_INTERNAL;
    op->who = *who;
    op->seq = seq;
    return PARLEY_OK;
}

/* ---- committing (the writer thread, or the loop) ----------------------- */

/* Notes that room moved past pre_rev in the commit being built. */
static void vis_note(srv_writer *w, const char *room, uint64_t pre_rev)
{
    for (size_t i = 0; i < w->n_vis; i++)
        if (strcmp(w->vis[i].room, room) == 0) {
            if (pre_rev < w->vis[i].pre_rev) w->vis[i].pre_rev = pre_rev;
            return;
        }
    if (w->n_vis == w->cap_vis) {
        size_t nc = w->cap_vis ? w->cap_vis * 2 : 16;
        srv_vis_room *nv = realloc(w->vis, nc * sizeof *nv);
        if (!nv) {
            /* Cannot list it: list the room as "any rev", so readers of
             * it wait for the fan-out (slower, never wrong). */
            if (w->n_vis) w->vis[0].pre_rev = 0;
            return;
        }
        w->vis = nv;
        w->cap_vis = nc;
    }
    srv_vis_room *v = &w->vis[w->n_vis++];
    snprintf(v->room, sizeof v->room, "%s", room);
    v->pre_rev = pre_rev;
}

static void reply_message(srv_op *op, const parley_msg *m)
{
    srv_pbmsg pm;
    srv_pb_message(&pm, m);
    switch (op->kind) {
    case SRV_OP_PUBLISH:
        if (op->conn) {
            Parley__V1__Ack ack = PARLEY__V1__ACK__INIT;
            ack.client_msg_id = op->client_msg_id;
            ack.message = &pm.msg;
            ack.duplicate = op->duplicate ? 1 : 0;
            Parley__V1__ServerFrame f = PARLEY__V1__SERVER_FRAME__INIT;
            f.request_id = op->request_id;
            f.kind_case = PARLEY__V1__SERVER_FRAME__KIND_ACK;
            f.ack = &ack;
            op->reply = rpc_encode(&f.base);
        } else {
            Parley__V1__PublishResponse r = PARLEY__V1__PUBLISH_RESPONSE__INIT;
            r.message = &pm.msg;
            r.duplicate = op->duplicate ? 1 : 0;
            op->reply = rpc_encode(&r.base);
        }
        break;
    case SRV_OP_EDIT: {
        Parley__V1__EditMessageResponse r =
            PARLEY__V1__EDIT_MESSAGE_RESPONSE__INIT;
        r.message = &pm.msg;
        op->reply = rpc_encode(&r.base);
        break;
    }
    case SRV_OP_DELETE: {
        Parley__V1__DeleteMessageResponse r =
            PARLEY__V1__DELETE_MESSAGE_RESPONSE__INIT;
        r.message = &pm.msg;
        op->reply = rpc_encode(&r.base);
        break;
    }
    case SRV_OP_MARK_READ: assert(!"a read mark is no message"); return;
    }
    op->has_reply = 1;
}

/* A refusal by the access rules, kept for the answer. */
static void op_refuse(srv_op *op, const srv_grant *g)
{
    op->err = PARLEY_ERR_PERMISSION_DENIED;
    op->rule = g->rule;
    op->st = g->st;
}

/* The access check of an edit or delete of message seq (as History's):
 * the caller must read the room first (so no message's existence leaks),
 * then op is decided with whether the message is theirs (*own). */
static parley_err check_message(store *db, const auth_identity *who,
                                const char *room, uint64_t seq, access_op op,
                                srv_grant *g, int *own)
{
    parley_msg m;
    *own = 0;
    parley_err e = srv_check_on(db, who, room, ACCESS_READ, 0, g);
    if (e == PARLEY_OK) e = store_get(db, room, seq, &m);
    if (e != PARLEY_OK) return e;
    *own = strcmp(m.author.id, who->id) == 0;
    return srv_check_on(db, who, room, op, *own, g);
}

/* The rooms and standings a group read for its publishes. Nothing a group
 * runs changes a room's settings or anyone's standing (moderation and room
 * changes are written outside groups, srv_write_now; a group's read marks
 * change only the read state, which no decision looks at), so the rows of
 * (room, user) read once in the transaction hold for the rest of it; the
 * decision itself (op, clock) is taken again for every publish. The group
 * runs room by room (by_room), so this holds one room's users and starts
 * over at the next room; past GROUP_SEEN_MAX users a room's further users
 * are read each time. The strings are the ops' own, alive for the group. */
#define GROUP_SEEN_MAX 32
typedef struct group_seen {
    const char *room; /* the room of the entries; NULL: none yet */
    size_t n;
    struct {
        const char *user_id;
        parley_err found; /* store_room_access's answer */
        parley_room room; /* settings only: strings not kept */
        parley_standing st;
    } e[GROUP_SEEN_MAX];
} group_seen;

static parley_err group_check(group_seen *gs, store *db,
                              const auth_identity *who, const char *room,
                              access_op op, srv_grant *g)
{
    if (gs->room == NULL || strcmp(gs->room, room) != 0) {
        gs->room = room;
        gs->n = 0;
    }
    for (size_t i = 0; i < gs->n; i++)
        if (strcmp(gs->e[i].user_id, who->id) == 0)
            return srv_check_rows(who, room, gs->e[i].found, &gs->e[i].room,
                                  &gs->e[i].st, op, 0, g);
    parley_room r;
    parley_standing st;
    memset(&r, 0, sizeof r);
    memset(&st, 0, sizeof st);
    parley_err found = store_room_access(db, room, who->id, &r, &st);
    if (found == PARLEY_OK || found == PARLEY_ERR_ROOM_NOT_FOUND) {
        if (gs->n < GROUP_SEEN_MAX) {
            gs->e[gs->n].user_id = who->id;
            gs->e[gs->n].found = found;
            gs->e[gs->n].room = r;
            gs->e[gs->n].room.name = room;
            gs->e[gs->n].room.title = "";
            gs->e[gs->n].room.topic = "";
            gs->e[gs->n].st = st;
            gs->n++;
        }
    }
    return srv_check_rows(who, room, found, &r, &st, op, 0, g);
}

/* Runs one op inside the open transaction; a store error that is not the
 * op's own (I/O, internal) is returned: it fails the whole group. */
static parley_err run_op(srv_op *op, store *db, int64_t now, srv_writer *w,
                         group_seen *gs)
{
    parley_author a = auth_author(&op->who);
    parley_msg m;
    srv_grant g;
    int own = 0;
    parley_err e = PARLEY_OK;
    op->now_ms = now;
    switch (op->kind) {
    case SRV_OP_PUBLISH: {
        int dup = 0;
        e = group_check(gs, db, &op->who, op->room, ACCESS_POST, &g);
        if (e == PARLEY_ERR_PERMISSION_DENIED) {
            /* A repeat of a publish stored before the rule came (a mute
             * while its ack was lost) is acked with the original, as any
             * repeat: a stored message is never reported refused. */
            parley_err f = store_find_client(db, op->room, op->who.id,
                                             op->client_msg_id, &m);
            if (f == PARLEY_OK) {
                op->duplicate = 1;
                reply_message(op, &m);
                return PARLEY_OK;
            }
            if (f == PARLEY_ERR_INTERNAL || f == PARLEY_ERR_IO) return f;
            op_refuse(op, &g);
            return PARLEY_OK;
        }
        if (e) break;
        /* The author as the room knows them: their role there. */
        a.role = g.role;
        e = store_append(db, op->room, &a, op->client_msg_id, op->body,
                         op->body_len, now, &m, &dup);
        if (e) break;
        op->duplicate = dup;
        if (!dup) {
            op->new_seq = m.seq;
            op->new_rev = m.rev;
            op->author_role = a.role;
            if (w) vis_note(w, op->room, m.rev - 1);
        }
        reply_message(op, &m);
        break;
    }
    case SRV_OP_EDIT:
        e = check_message(db, &op->who, op->room, op->seq, ACCESS_EDIT, &g,
                          &own);
        if (e == PARLEY_ERR_PERMISSION_DENIED) {
            op_refuse(op, &g);
            return PARLEY_OK;
        }
        if (e) break;
        a.role = g.role;
        e = store_edit(db, op->room, op->seq, &a, op->body, op->body_len, now,
                       &m);
        if (e) break;
        if (w) vis_note(w, op->room, m.rev - 1);
        reply_message(op, &m);
        op->new_rev = m.rev;
        op->event =
            srv_event_frame(PARLEY__V1__EVENT_TYPE__EVENT_TYPE_EDITED, &m, 0);
        op->has_event = 1;
        break;
    case SRV_OP_DELETE: {
        e = check_message(db, &op->who, op->room, op->seq, ACCESS_DELETE, &g,
                          &own);
        if (e == PARLEY_ERR_PERMISSION_DENIED) {
            op_refuse(op, &g);
            return PARLEY_OK;
        }
        if (e) break;
        a.role = g.role;
        /* Deleting a tombstone again changes nothing and fans nothing
         * out: the room's rev tells. */
        parley_room before;
        e = store_room_get(db, op->room, &before);
        if (e) break;
        uint64_t head_before = before.head_rev;
        e = store_delete(db, op->room, op->seq, &a, now, &m);
        if (e) break;
        reply_message(op, &m);
        if (m.rev <= head_before) break;
        if (w) vis_note(w, op->room, m.rev - 1);
        op->new_rev = m.rev;
        op->event =
            srv_event_frame(PARLEY__V1__EVENT_TYPE__EVENT_TYPE_DELETED, &m, 0);
        op->has_event = 1;
        if (own) break;
        /* An organizer deleting another's message is a moderation action,
         * stored with the deletion in this transaction. */
        char author_id[RULES_AUTHOR_ID_MAX + 1];
        snprintf(author_id, sizeof author_id, "%s", m.author.id);
        parley_action act = srv_action_of(
            op->room, PARLEY_ACTION_DELETE_MESSAGE, &a, author_id, now);
        act.seq = op->seq;
        op->action = malloc(sizeof *op->action);
        if (!op->action) return PARLEY_ERR_INTERNAL;
        e = srv_action_store(db, &act, op->action);
        /* The deletion must not be stored without its action: any
         * refusal here fails the group. */
        if (e) return e == PARLEY_ERR_IO ? e : PARLEY_ERR_INTERNAL;
        break;
    }
    case SRV_OP_MARK_READ: {
        e = srv_check_on(db, &op->who, op->room, ACCESS_READ, 0, &g);
        if (e == PARLEY_ERR_PERMISSION_DENIED) {
            op_refuse(op, &g);
            return PARLEY_OK;
        }
        if (e) break;
        uint64_t seq = 0, rev = 0;
        unsigned unread = 0;
        e = store_read_mark(db, op->room, op->who.id, op->seq, op->mark_rev,
                            now, &seq, &rev);
        if (e == PARLEY_OK)
            e = store_unread_count(db, op->room, op->who.id, seq,
                                   SRV_UNREAD_CAP, &unread);
        if (e) break;
        Parley__V1__MarkReadResponse r = PARLEY__V1__MARK_READ_RESPONSE__INIT;
        r.last_read_seq = seq;
        r.last_read_rev = rev;
        r.unread_count = unread;
        op->reply = rpc_encode(&r.base);
        op->has_reply = 1;
        break;
    }
    }
    if (e == PARLEY_ERR_INTERNAL || e == PARLEY_ERR_IO) return e;
    op->err = e;
    return PARLEY_OK;
}

/* The order a group is stored in: by room (byte order), then as it
 * arrived. Each append locks its room's row until the commit (PostgreSQL,
 * with several cores), so two cores whose groups touch the same rooms
 * take the locks in the same order and cannot deadlock; within a room the
 * writes keep the order they arrived in, which is the order they are
 * answered and delivered in. */
static int by_room(const void *a, const void *b, void *ud)
{
    const srv_op *v = ud;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    int c = strcmp(v[i].room, v[j].room);
    return c ? c : (i > j) - (i < j);
}

/* The group's transaction. Returns 1 if it failed as a whole (nothing of
 * it stored), 0 if it committed; *ns how long it took. */
static int commit_ops(store *db, srv_ops *ops, srv_writer *w, uint64_t *ns)
{
    int64_t now = clock_wall_ms();
    uint64_t t0 = clock_mono_ns();
    size_t n = ops->n;
    size_t *order = malloc((n ? n : 1) * sizeof *order);
    if (order) {
        for (size_t i = 0; i < n; i++) order[i] = i;
        qsort_r(order, n, sizeof *order, by_room, ops->v);
    }
    parley_err be = order ? store_begin(db) : PARLEY_ERR_INTERNAL;
    int failed = be != PARLEY_OK;
    group_seen gs = {NULL, 0, {{0}}};
    for (size_t k = 0; k < n && !failed; k++) {
        if (run_op(&ops->v[order[k]], db, now, w, &gs) != PARLEY_OK) {
            log_error("store", "write failed: %s", store_last_error(db));
            failed = 1;
        }
    }
    free(order);
    if (!failed && w) {
        /* List the group's rooms before the commit can be seen. */
        pthread_mutex_lock(&w->vis_mu);
        w->gen_inflight++;
        pthread_mutex_unlock(&w->vis_mu);
    }
    if (!failed && store_commit(db) != PARLEY_OK) {
        log_error("store", "commit failed: %s", store_last_error(db));
        failed = 1;
    }
    if (failed && be == PARLEY_OK) store_rollback(db);
    *ns = clock_mono_ns() - t0;
    return failed;
}

/* ---- answering (the loop) ---------------------------------------------- */

static void answer_error(srv_op *op, parley_err e, parley_rule rule,
                         const char *detail)
{
    if (op->conn)
        srv_send_error_rule(op->call, op->request_id, e, rule, detail, 0);
    else
        rpc_fail_rule(op->call, e, rule, detail);
}

/* Answers every op of a group in arrival order (a room's in commit order)
 * and delivers its events, then forgets the ops; the commit (ns long) goes
 * into the metrics. */
static size_t answer_ops(srv *s, srv_ops *ops, int failed, uint64_t ns)
{
    size_t n = ops->n, stored = 0, dups = 0;
    for (size_t i = 0; i < n; i++) {
        const srv_op *op = &ops->v[i];
        if (op->kind != SRV_OP_PUBLISH || op->err) continue;
        if (op->duplicate)
            dups++;
        else
            stored++;
    }
    srv_metrics_commit(s->metrics, n, stored, dups, failed, ns);
    for (size_t i = 0; i < n; i++) {
        srv_op *op = &ops->v[i];
        if (failed) {
            answer_error(op, PARLEY_ERR_INTERNAL, PARLEY_RULE_NONE,
                         "storage failure; retry");
        } else if (op->err == PARLEY_ERR_PERMISSION_DENIED) {
            char detail[200];
            srv_rule_detail(op->rule, &op->st, detail, sizeof detail);
            answer_error(op, op->err, op->rule, detail);
        } else if (op->err) {
            answer_error(op, op->err, PARLEY_RULE_NONE,
                         parley_err_text(op->err));
        } else {
            assert(op->has_reply);
            if (op->conn)
                rpc_stream_send(op->call, op->reply);
            else
                rpc_reply_slice(op->call, op->reply);
            /* A new message's event is encoded here, on the loop, and
             * only when someone may watch (with a bus: other cores). */
            if (op->kind == SRV_OP_PUBLISH && op->new_rev &&
                (s->bus || hub_has_live(s->hub, op->room))) {
                parley_author au = auth_author(&op->who);
                au.role = op->author_role;
                parley_msg m = {
                    .room = op->room,
                    .seq = op->new_seq,
                    .rev = op->new_rev,
                    .client_msg_id = op->client_msg_id,
                    .author = au,
                    .body = op->body,
                    .body_len = op->body_len,
                    .created_at_ms = op->now_ms,
                };
                grpc_slice ev = srv_event_frame(
                    PARLEY__V1__EVENT_TYPE__EVENT_TYPE_CREATED, &m, 0);
                srv_deliver(s, op->room, op->new_rev, ev);
                grpc_slice_unref(ev);
            }
            if (op->has_event) srv_deliver(s, op->room, op->new_rev, op->event);
            if (op->action) srv_room_event(s, &op->action->a, NULL);
        }
        if (op->has_reply) grpc_slice_unref(op->reply);
        if (op->has_event) grpc_slice_unref(op->event);
        free(op->action);
        if (op->conn) op->done(op->conn);
        rpc_call_unref(op->call);
        free(op->room);
    }
    ops->n = 0;
    return n;
}

/* ---- the writer thread -------------------------------------------------- */

static void *writer_main(void *arg)
{
    srv_writer *w = arg;
    srv *s = w->s;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        /* Idle, the handle is the loop's to use (its small groups, its
         * interval syncs): this thread touches it only with a job. */
        while (!w->stop && !(w->busy && !w->done))
            pthread_cond_wait(&w->cv, &w->mu);
        if (!(w->busy && !w->done)) break; /* stop, nothing left */
        pthread_mutex_unlock(&w->mu);
        int failed = 0;
        uint64_t ns = 0;
        if (w->checkpoint) {
            if (store_checkpoint(s->wdb) != PARLEY_OK)
                log_error("store", "checkpoint failed: %s",
                          store_last_error(s->wdb));
        } else {
            failed = commit_ops(s->wdb, &w->job, w, &ns);
        }
        if (store_sync_due(s->wdb, clock_mono_ms()) < 0)
            log_error("store", "sync failed: %s", store_last_error(s->wdb));
        size_t pages = store_log_pages(s->wdb);
        pthread_mutex_lock(&w->mu);
        w->failed = failed;
        w->commit_ns = ns;
        w->log_pages = pages;
        w->done = 1;
        pthread_cond_broadcast(&w->done_cv);
        /* The loop may be asleep in its poll: its answers are ready. */
        if (s->rs) rpc_server_wake(s->rs);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int srv_writer_start(srv *s, char *err, size_t errlen)
{
    srv_writer *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    w->s = s;
    w->inline_small = store_synchronous(s->wdb) != STORE_SYNC_FULL;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    pthread_cond_init(&w->done_cv, NULL);
    pthread_mutex_init(&w->vis_mu, NULL);
    pthread_cond_init(&w->vis_cv, NULL);
    store_own_checkpoints(s->wdb);
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        snprintf(err, errlen, "cannot start the writer thread");
        free(w);
        return -1;
    }
    w->started = 1;
    s->wr = w;
    return 0;
}

void srv_writer_stop(srv *s)
{
    srv_writer *w = s->wr;
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (w->started) pthread_join(w->thread, NULL);
    /* A group the loop never took back (parleyd flushes until nothing is
     * pending, so only after a failed shutdown): its calls are gone with
     * the rpc server; only its memory is left to free. */
    for (size_t i = 0; w->busy && !w->checkpoint && i < w->job.n; i++) {
        srv_op *op = &w->job.v[i];
        if (op->has_reply) grpc_slice_unref(op->reply);
        if (op->has_event) grpc_slice_unref(op->event);
        free(op->action);
        free(op->room);
    }
    free(w->job.v);
    free(w->vis);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    pthread_cond_destroy(&w->done_cv);
    pthread_mutex_destroy(&w->vis_mu);
    pthread_cond_destroy(&w->vis_cv);
    free(w);
    s->wr = NULL;
}

int srv_read_settled(srv *s, const char *room, uint64_t head_rev)
{
    srv_writer *w = s->wr;
    if (!w) return 1;
    uint64_t wait_for = 0;
    pthread_mutex_lock(&w->vis_mu);
    if (w->gen_inflight > w->gen_fanned)
        for (size_t i = 0; i < w->n_vis; i++)
            if (head_rev > w->vis[i].pre_rev &&
                strcmp(w->vis[i].room, room) == 0) {
                wait_for = w->gen_inflight;
                break;
            }
    while (wait_for && w->gen_fanned < wait_for)
        pthread_cond_wait(&w->vis_cv, &w->vis_mu);
    pthread_mutex_unlock(&w->vis_mu);
    return wait_for == 0;
}

/* ---- the loop's side ---------------------------------------------------- */

/* Takes back a finished job: answers it, lets readers on, drops the
 * snapshot. Returns how many ops it answered. */
static size_t take_back(srv *s)
{
    srv_writer *w = s->wr;
    pthread_mutex_lock(&w->mu);
    int finished = w->busy && w->done;
    pthread_mutex_unlock(&w->mu);
    if (!finished) return 0;
    /* The writer is idle now: the job and its results are the loop's. */
    size_t n = 0;
    if (!w->checkpoint) {
        /* The loop reads nothing else until the answers are out, so its
         * view may move on first: a room event of the group (a moderated
         * delete) reads the room as committed. */
        store_snapshot_end(s->db);
        n = answer_ops(s, &w->job, w->failed, w->commit_ns);
        pthread_mutex_lock(&w->vis_mu);
        w->gen_fanned = w->gen_inflight;
        w->n_vis = 0;
        pthread_cond_broadcast(&w->vis_cv);
        pthread_mutex_unlock(&w->vis_mu);
    }
    w->want_checkpoint = !w->checkpoint && w->log_pages > SRV_CHECKPOINT_PAGES;
    pthread_mutex_lock(&w->mu);
    w->busy = 0;
    pthread_mutex_unlock(&w->mu);
    return n;
}

/* Groups this small are committed by the loop itself when a commit does
 * not wait for the disk (interval durability): two thread switches cost
 * more than the commit. */
#define SRV_INLINE_MAX 16

/* Hands the collected ops (or a checkpoint) to the idle writer, or
 * commits a small group itself; returns how many ops it answered. */
static size_t hand_over(srv *s)
{
    srv_writer *w = s->wr;
    int checkpoint = w->want_checkpoint;
    if (!checkpoint && s->batch.n == 0) return 0;
    if (!checkpoint && w->inline_small && s->batch.n <= SRV_INLINE_MAX) {
        /* The writer is idle: the handle is the loop's, and commit,
         * answers and fan-out happen before the loop reads again. */
        uint64_t ns;
        int failed = commit_ops(s->wdb, &s->batch, NULL, &ns);
        size_t n = answer_ops(s, &s->batch, failed, ns);
        if (store_log_pages(s->wdb) > SRV_CHECKPOINT_PAGES)
            w->want_checkpoint = 1;
        return n;
    }
    if (!checkpoint) {
        /* Pin the loop's view to what has been fanned out, before the
         * writer can commit anything more. */
        parley_err e = store_snapshot_begin(s->db);
        if (e != PARLEY_OK) {
            /* Without the pin the loop must not let the writer run: it
             * commits this group itself (the writer is idle). */
            log_warn("store", "snapshot failed (%s); committing on the loop",
                     store_last_error(s->db));
            uint64_t ns;
            int failed = commit_ops(s->wdb, &s->batch, NULL, &ns);
            return answer_ops(s, &s->batch, failed, ns);
        }
    }
    /* Swap the arrays: the batch's ops become the job, the job's (empty)
     * array collects the next batch. */
    assert(w->job.n == 0);
    srv_ops t = w->job;
    if (!checkpoint) {
        w->job = s->batch;
        s->batch = t;
    }
    pthread_mutex_lock(&w->mu);
    w->checkpoint = checkpoint;
    w->want_checkpoint = 0;
    w->busy = 1;
    w->done = 0;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

size_t srv_flush(srv *s)
{
    if (!s->wr) {
        if (!s->batch.n) return 0;
        uint64_t ns;
        int failed = commit_ops(s->wdb, &s->batch, NULL, &ns);
        return answer_ops(s, &s->batch, failed, ns);
    }
    size_t n = take_back(s);
    pthread_mutex_lock(&s->wr->mu);
    int busy = s->wr->busy;
    pthread_mutex_unlock(&s->wr->mu);
    if (!busy) n += hand_over(s);
    return n;
}

size_t srv_pending(const srv *s)
{
    size_t n = s->batch.n;
    if (s->wr) {
        pthread_mutex_lock(&s->wr->mu);
        if (s->wr->busy) n += s->wr->checkpoint ? 1 : s->wr->job.n;
        pthread_mutex_unlock(&s->wr->mu);
    }
    return n;
}

int srv_poll_ms(const srv *s, int idle_ms)
{
    if (!s->wr) return idle_ms;
    pthread_mutex_lock(&s->wr->mu);
    int busy = s->wr->busy;
    pthread_mutex_unlock(&s->wr->mu);
    /* Registered, the writer wakes the loop when it is done; else look
     * again soon while it works. */
    return (busy || s->batch.n) && !s->rs ? 1 : idle_ms;
}

void srv_commit_tick(srv *s, int64_t now_ms)
{
    /* The writer syncs after each of its groups; the loop while it is
     * idle. */
    store *wdb = srv_write_store(s);
    if (wdb && store_sync_due(wdb, now_ms) < 0)
        log_error("store", "sync failed: %s", store_last_error(wdb));
}

void srv_detach(srv *s)
{
    if (!s->wr) {
        s->rs = NULL;
        return;
    }
    /* The writer wakes the loop under its mutex. */
    pthread_mutex_lock(&s->wr->mu);
    s->rs = NULL;
    pthread_mutex_unlock(&s->wr->mu);
}

store *srv_write_now(srv *s)
{
    srv_writer *w = s->wr;
    if (!w) return s->wdb;
    pthread_mutex_lock(&w->mu);
    while (w->busy && !w->done) pthread_cond_wait(&w->done_cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
    take_back(s); /* answers it (nothing when the writer was idle) */
    return s->wdb;
}

store *srv_write_store(srv *s)
{
    if (!s->wr) return s->wdb;
    pthread_mutex_lock(&s->wr->mu);
    int busy = s->wr->busy;
    pthread_mutex_unlock(&s->wr->mu);
    return busy ? NULL : s->wdb;
}
