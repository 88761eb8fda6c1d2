/* store.c: the store interface (see store.h) in front of the engines. Picks
 * the engine that serves a target, checks every argument against the core's
 * rules before the engine sees it, keeps the group-commit state and what the
 * writes found out about the storage (store_write_status), and hands
 * engines non-NULL result pointers. Engine-neutral: no SQL here. */
#include "store_engine.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"

#define STORE_SYNC_INTERVAL_DEFAULT_MS 1000

/* SQLite binds lengths as int; far above any sane chat message. */
#define STORE_BODY_MAX_CAP ((size_t)1 << 30)
#define STORE_ROOM_LIST_DEFAULT 100

/* Records what a write (or a commit) found out about the storage, for
 * store_write_status: a storage failure sets it, success clears it, and a
 * refusal by the rules or the data (any other error) says nothing. */
static parley_err store_note_write(store *s, parley_err e)
{
    if (e == PARLEY_OK || e == PARLEY_ERR_IO) s->write_status = e;
    return e;
}

/* A write inside a group commit has not committed yet: only its failure
 * tells something (the commit's outcome is noted by store_commit). */
static parley_err store_note_write_outside(store *s, parley_err e)
{
    if (!s->in_txn || e == PARLEY_ERR_IO) store_note_write(s, e);
    return e;
}

/* Tried in order; the first that serves the target opens it. */
static const store_engine *const store_engines[] = {
    &store_engine_pg,
    &store_engine_sqlite, /* serves every target that is not a URI */
};

parley_err store_open(const char *target, const store_opts *opts, store **out,
                      char *errmsg, size_t errlen)
{
    char scratch[1];
    if (errmsg == NULL || errlen == 0) {
        errmsg = scratch;
        errlen = sizeof scratch;
    }
    errmsg[0] = '\0';
    *out = NULL;
    if (target == NULL) {
        snprintf(errmsg, errlen, "no database path");
        return PARLEY_ERR_INTERNAL;
    }
    const store_engine *engine = NULL;
    for (size_t i = 0; i < sizeof store_engines / sizeof store_engines[0]; i++)
        if (store_engines[i]->serves(target)) {
            engine = store_engines[i];
            break;
        }
    if (engine == NULL) {
        snprintf(errmsg, errlen, "no store engine serves \"%s\"", target);
        return PARLEY_ERR_INTERNAL;
    }
    store *s = NULL;
    parley_err e = engine->open(target, opts, &s, errmsg, errlen);
    if (e != PARLEY_OK) return e;
    assert(s != NULL);
    s->engine = engine;
    s->max_body = opts && opts->max_body_bytes ? opts->max_body_bytes
                                               : RULES_BODY_MAX_DEFAULT;
    if (s->max_body > STORE_BODY_MAX_CAP) s->max_body = STORE_BODY_MAX_CAP;
    s->in_txn = 0;
    s->read_only = 0;
    s->in_snapshot = 0;
    s->sync_interval_ms = 0;
    if (opts && !opts->synchronous_full)
        s->sync_interval_ms = opts->sync_interval_ms > 0
                                  ? opts->sync_interval_ms
                                  : STORE_SYNC_INTERVAL_DEFAULT_MS;
    s->commits = s->synced_commits = s->syncs = 0;
    s->last_sync_ms = -1;
    snprintf(s->shown, sizeof s->shown, "%s", target);
    s->write_status = PARLEY_OK;
    *out = s;
    return PARLEY_OK;
}

parley_err store_open_reader(store *s, store **out, char *errmsg, size_t errlen)
{
    char scratch[1];
    if (errmsg == NULL || errlen == 0) {
        errmsg = scratch;
        errlen = sizeof scratch;
    }
    errmsg[0] = '\0';
    *out = NULL;
    store *r = NULL;
    if (s->engine->open_reader == NULL) {
        snprintf(errmsg, errlen, "the %s engine has no reader handles",
                 s->engine->name);
        return PARLEY_ERR_INTERNAL;
    }
    parley_err e = s->engine->open_reader(s, &r, errmsg, errlen);
    if (e != PARLEY_OK) return e;
    assert(r != NULL);
    r->engine = s->engine;
    r->max_body = s->max_body;
    r->in_txn = 0;
    r->read_only = 1;
    r->in_snapshot = 0;
    r->sync_interval_ms = 0;
    r->commits = r->synced_commits = r->syncs = 0;
    r->last_sync_ms = -1;
    snprintf(r->shown, sizeof r->shown, "%s", s->shown);
    r->write_status = PARLEY_OK;
    *out = r;
    return PARLEY_OK;
}

void store_close(store *s)
{
    if (s == NULL) return;
    /* Interval mode: what was committed reaches the disk before we go. */
    if (s->sync_interval_ms && !s->in_txn && s->commits > s->synced_commits)
        if (s->engine->sync) (void)s->engine->sync(s);
    s->engine->close(s);
}

void store_get_stats(const store *s, store_stats *out)
{
    assert(s->synced_commits <= s->commits);
    out->commits = s->commits;
    out->syncs = s->syncs;
    out->unsynced = s->sync_interval_ms ? s->commits - s->synced_commits : 0;
}

int store_sync_due(store *s, int64_t now_ms)
{
    /* An engine without a sync op makes its commits durable itself. */
    if (!s->sync_interval_ms || s->in_txn || !s->engine->sync) return 0;
    if (s->last_sync_ms < 0) {
        s->last_sync_ms = now_ms;
        return 0;
    }
    if (s->commits == s->synced_commits ||
        now_ms - s->last_sync_ms < s->sync_interval_ms)
        return 0;
    uint64_t upto = s->commits;
    if (s->engine->sync(s) != PARLEY_OK) return -1;
    s->synced_commits = upto;
    s->syncs++;
    s->last_sync_ms = now_ms;
    return 1;
}

const char *store_last_error(const store *s)
{
    if (s == NULL) return "no store";
    return s->engine->last_error(s);
}

/* ---- snapshots and checkpoints ------------------------------------------ */

parley_err store_snapshot_begin(store *s)
{
    if (s->in_txn || s->in_snapshot || !s->engine->snapshot_begin)
        return PARLEY_ERR_INTERNAL;
    parley_err e = s->engine->snapshot_begin(s);
    if (e == PARLEY_OK) s->in_snapshot = 1;
    return e;
}

void store_snapshot_end(store *s)
{
    if (!s->in_snapshot) return;
    s->in_snapshot = 0;
    s->engine->snapshot_end(s);
}

void store_own_checkpoints(store *s)
{
    if (s->engine->own_checkpoints) s->engine->own_checkpoints(s);
}

size_t store_log_pages(const store *s)
{
    return s->engine->log_pages ? s->engine->log_pages(s) : 0;
}

parley_err store_checkpoint(store *s)
{
    if (s->in_txn || s->in_snapshot) return PARLEY_ERR_INTERNAL;
    return s->engine->checkpoint ? s->engine->checkpoint(s) : PARLEY_OK;
}

const char *store_engine_name(const store *s)
{
    return s == NULL ? "none" : s->engine->name;
}

const char *store_describe(const store *s)
{
    if (s == NULL) return "no store";
    return s->engine->describe ? s->engine->describe(s) : s->shown;
}

int store_synchronous(store *s)
{
    if (s == NULL) return -1;
    return s->engine->synchronous(s);
}

/* ---- transactions ------------------------------------------------------ */

parley_err store_begin(store *s)
{
    if (s->in_txn || s->read_only || s->in_snapshot) return PARLEY_ERR_INTERNAL;
    parley_err e = s->engine->begin(s);
    if (e == PARLEY_OK)
        s->in_txn = 1;
    else
        store_note_write(s, e);
    return e;
}

parley_err store_commit(store *s)
{
    if (!s->in_txn) return PARLEY_ERR_INTERNAL;
    /* Committed or not, the transaction is over: a failed commit is rolled
     * back by the engine. */
    s->in_txn = 0;
    return store_note_write(s, s->engine->commit(s));
}

parley_err store_write_status(const store *s) { return s->write_status; }

parley_err store_probe(store *s)
{
    if (s->in_txn) return PARLEY_ERR_INTERNAL;
    return store_note_write(s, s->engine->probe(s));
}

void store_rollback(store *s)
{
    if (!s->in_txn) return;
    s->in_txn = 0;
    s->engine->rollback(s);
}

/* ---- rooms ------------------------------------------------------------- */

/* Checks settings: texts within their limits, numbers known (0 allowed
 * when `partial`: an update that keeps them). */
static parley_err store_check_settings(const parley_room_settings *u,
                                       int partial)
{
    parley_err e;
    if ((e = rules_text(u->title, STORE_TITLE_MAX, 0)) != PARLEY_OK) return e;
    if ((e = rules_text(u->topic, STORE_TOPIC_MAX, 1)) != PARLEY_OK) return e;
    if (!(partial && u->visibility == 0) &&
        parley_visibility_name(u->visibility) == NULL)
        return PARLEY_ERR_MALFORMED;
    if (!(partial && u->mode == 0) && parley_mode_name(u->mode) == NULL)
        return PARLEY_ERR_MALFORMED;
    return PARLEY_OK;
}

parley_err store_room_create_with(store *s, const char *name,
                                  const parley_room_settings *settings,
                                  int64_t now_ms, parley_room *out,
                                  int *created)
{
    parley_room room_scratch;
    int created_scratch;
    parley_room_settings full = {"", "", PARLEY_VIS_OPEN, PARLEY_MODE_OPEN};
    parley_err e = rules_room(name);

    if (e != PARLEY_OK) return e;
    if (s->read_only) return PARLEY_ERR_INTERNAL;
    if (settings) {
        if (settings->title) full.title = settings->title;
        if (settings->topic) full.topic = settings->topic;
        if (settings->visibility) full.visibility = settings->visibility;
        if (settings->mode) full.mode = settings->mode;
    }
    if ((e = store_check_settings(&full, 0)) != PARLEY_OK) return e;
    return store_note_write_outside(
        s, s->engine->room_create(s, name, &full, now_ms,
                                  out ? out : &room_scratch,
                                  created ? created : &created_scratch));
}

parley_err store_room_create(store *s, const char *name, int64_t now_ms,
                             parley_room *out, int *created)
{
    return store_room_create_with(s, name, NULL, now_ms, out, created);
}

parley_err store_room_update(store *s, const char *name,
                             const parley_room_settings *u, parley_room *out,
                             unsigned *changed)
{
    parley_room room_scratch;
    unsigned changed_scratch;
    parley_err e;

    if (changed) *changed = 0;
    if ((e = rules_room(name)) != PARLEY_OK) return e;
    if (u == NULL) return PARLEY_ERR_MALFORMED;
    if ((e = store_check_settings(u, 1)) != PARLEY_OK) return e;
    if (s->read_only) return PARLEY_ERR_INTERNAL;
    return store_note_write_outside(
        s, s->engine->room_update(s, name, u, out ? out : &room_scratch,
                                  changed ? changed : &changed_scratch));
}

parley_err store_room_delete(store *s, const char *name, parley_room *out,
                             uint64_t *messages)
{
    parley_room room_scratch;
    uint64_t n_scratch;
    parley_err e = rules_room(name);

    if (messages) *messages = 0;
    if (e != PARLEY_OK) return e;
    if (s->read_only) return PARLEY_ERR_INTERNAL;
    return store_note_write_outside(
        s, s->engine->room_delete(s, name, out ? out : &room_scratch,
                                  messages ? messages : &n_scratch));
}

parley_err store_room_access(store *s, const char *room, const char *user_id,
                             parley_room *out, parley_standing *st)
{
    parley_room room_scratch;
    parley_standing st_scratch;
    parley_err e;

    if ((e = rules_room(room)) != PARLEY_OK) return e;
    if ((e = rules_user_id(user_id)) != PARLEY_OK) return e;
    return s->engine->room_access(s, room, user_id, out ? out : &room_scratch,
                                  st ? st : &st_scratch);
}

parley_err store_member_set(store *s, const char *room, const char *user_id,
                            int role, const char *added_by, int64_t now_ms,
                            parley_member *out, int *changed)
{
    parley_member m_scratch;
    int changed_scratch;
    parley_err e;

    if (changed) *changed = 0;
    if ((e = rules_room(room)) != PARLEY_OK) return e;
    if ((e = rules_user_id(user_id)) != PARLEY_OK) return e;
    if ((e = rules_user_id(added_by)) != PARLEY_OK) return e;
    if (parley_role_name(role) == NULL) return PARLEY_ERR_MALFORMED;
    if (s->read_only) return PARLEY_ERR_INTERNAL;
    return store_note_write_outside(
        s, s->engine->member_set(s, room, user_id, role, added_by, now_ms,
                                 out ? out : &m_scratch,
                                 changed ? changed : &changed_scratch));
}

parley_err store_member_remove(store *s, const char *room, const char *user_id,
                               int *removed)
{
    int removed_scratch;
    parley_err e;

    if (removed) *removed = 0;
    if ((e = rules_room(room)) != PARLEY_OK) return e;
    if ((e = rules_user_id(user_id)) != PARLEY_OK) return e;
    if (s->read_only) return PARLEY_ERR_INTERNAL;
    return store_note_write_outside(
        s, s->engine->member_remove(s, room, user_id,
                                    removed ? removed : &removed_scratch));
}

/* limit 0 -> the default; over the maximum -> BAD_CURSOR. */
static parley_err store_page_limit(unsigned *limit)
{
    if (*limit == 0) *limit = STORE_ROOM_LIST_DEFAULT;
    return *limit > RULES_LIST_LIMIT_MAX ? PARLEY_ERR_BAD_CURSOR : PARLEY_OK;
}

parley_err store_member_list(store *s, const char *room, const char *after,
                             unsigned limit, store_member_fn fn, void *ud,
                             int *has_more)
{
    int more_scratch;
    parley_err e;

    if (has_more) *has_more = 0;
    if ((e = rules_room(room)) != PARLEY_OK) return e;
    if (after == NULL) after = "";
    if (*after && (e = rules_user_id(after)) != PARLEY_OK) return e;
    if ((e = store_page_limit(&limit)) != PARLEY_OK) return e;
    return s->engine->member_list(s, room, after, limit, fn, ud,
                                  has_more ? has_more : &more_scratch);
}

parley_err store_sanction_set(store *s, const char *room, const char *user_id,
                              store_sanction kind, int active, int64_t until_ms,
                              int *changed)
{
    int changed_scratch;
    parley_err e;

    if (changed) *changed = 0;
    if ((e = rules_room(room)) != PARLEY_OK) return e;
    if ((e = rules_user_id(user_id)) != PARLEY_OK) return e;
    if (kind != STORE_SANCTION_MUTE && kind != STORE_SANCTION_REMOVE)
        return PARLEY_ERR_MALFORMED;
    if (until_ms < 0) return PARLEY_ERR_MALFORMED;
    if (s->read_only) return PARLEY_ERR_INTERNAL;
    return store_note_write_outside(
        s, s->engine->sanction_set(s, room, user_id, kind, active != 0,
                                   active ? until_ms : 0,
                                   changed ? changed : &changed_scratch));
}

parley_err store_action_append(store *s, const parley_action *a,
                               parley_action *out)
{
    parley_action scratch;
    parley_err e;

    if (a == NULL || a->kind < 1 || a->kind > PARLEY_ACTION_KIND_MAX)
        return PARLEY_ERR_MALFORMED;
    if ((e = rules_room(a->room)) != PARLEY_OK) return e;
    if ((e = rules_author(&a->actor)) != PARLEY_OK) return e;
    if (a->target_user_id && *a->target_user_id &&
        (e = rules_user_id(a->target_user_id)) != PARLEY_OK)
        return e;
    if ((e = rules_text(a->reason, STORE_REASON_MAX, 1)) != PARLEY_OK) return e;
    if (s->read_only) return PARLEY_ERR_INTERNAL;
    return store_note_write_outside(
        s, s->engine->action_append(s, a, out ? out : &scratch));
}

parley_err store_action_list(store *s, const char *room, uint64_t after_id,
                             unsigned limit, store_action_fn fn, void *ud,
                             int *has_more)
{
    int more_scratch;
    parley_err e;

    if (has_more) *has_more = 0;
    if ((e = rules_room(room)) != PARLEY_OK) return e;
    if ((e = store_page_limit(&limit)) != PARLEY_OK) return e;
    return s->engine->action_list(s, room, after_id, limit, fn, ud,
                                  has_more ? has_more : &more_scratch);
}

parley_err store_read_mark(store *s, const char *room, const char *user_id,
                           uint64_t seq, uint64_t rev, int64_t now_ms,
                           uint64_t *out_seq, uint64_t *out_rev)
{
    uint64_t seq_scratch, rev_scratch;
    parley_err e;

    if ((e = rules_room(room)) != PARLEY_OK) return e;
    if ((e = rules_user_id(user_id)) != PARLEY_OK) return e;
    if (seq > INT64_MAX || rev > INT64_MAX) return PARLEY_ERR_BAD_CURSOR;
    if (s->read_only) return PARLEY_ERR_INTERNAL;
    return store_note_write_outside(
        s, s->engine->read_mark(s, room, user_id, seq, rev, now_ms,
                                out_seq ? out_seq : &seq_scratch,
                                out_rev ? out_rev : &rev_scratch));
}

parley_err store_unread_count(store *s, const char *room, const char *user_id,
                              uint64_t after_seq, unsigned cap, unsigned *count)
{
    unsigned scratch;
    parley_err e;

    if ((e = rules_room(room)) != PARLEY_OK) return e;
    if ((e = rules_user_id(user_id)) != PARLEY_OK) return e;
    if (cap == 0 || cap > RULES_LIST_LIMIT_MAX) return PARLEY_ERR_BAD_CURSOR;
    if (after_seq > INT64_MAX) after_seq = INT64_MAX;
    return s->engine->unread_count(s, room, user_id, after_seq, cap,
                                   count ? count : &scratch);
}

parley_err store_erase_user(store *s, const char *room, const char *user_id,
                            int64_t now_ms, store_msg_fn fn, void *ud,
                            uint64_t *count)
{
    uint64_t count_scratch;
    parley_err e;

    if (count) *count = 0;
    if (room && (e = rules_room(room)) != PARLEY_OK) return e;
    if ((e = rules_user_id(user_id)) != PARLEY_OK) return e;
    if (s->read_only) return PARLEY_ERR_INTERNAL;
    return store_note_write_outside(
        s, s->engine->erase_user(s, room, user_id, now_ms, fn, ud,
                                 count ? count : &count_scratch));
}

parley_err store_room_get(store *s, const char *name, parley_room *out)
{
    parley_room scratch;
    parley_err e = rules_room(name);

    if (e != PARLEY_OK) return e;
    return s->engine->room_get(s, name, out ? out : &scratch);
}

parley_err store_room_list_for(store *s, const store_room_query *q,
                               store_room_access_fn fn, void *ud, int *has_more)
{
    int more_scratch;
    parley_err e;
    store_room_query v = *q;

    if (has_more) *has_more = 0;
    if (v.after == NULL) v.after = "";
    if (*v.after && (e = rules_room(v.after)) != PARLEY_OK) return e;
    if (v.prefix == NULL) v.prefix = "";
    /* A prefix is the start of a room name: the name rules, any length. */
    if (*v.prefix && strlen(v.prefix) <= RULES_ROOM_MAX &&
        (e = rules_room(v.prefix)) != PARLEY_OK)
        return e;
    if (strlen(v.prefix) > RULES_ROOM_MAX) return PARLEY_ERR_ROOM_INVALID;
    if (v.user_id && (e = rules_user_id(v.user_id)) != PARLEY_OK) return e;
    if ((e = store_page_limit(&v.limit)) != PARLEY_OK) return e;
    return s->engine->room_list_for(s, &v, fn, ud,
                                    has_more ? has_more : &more_scratch);
}

/* store_room_list through store_room_list_for: the callback without the
 * standing. */
typedef struct store_room_plain {
    store_room_fn fn;
    void *ud;
} store_room_plain;

static int store_room_plain_row(const parley_room *r, const parley_standing *st,
                                void *ud)
{
    (void)st;
    store_room_plain *p = ud;
    return p->fn ? p->fn(r, p->ud) : 0;
}

parley_err store_room_list(store *s, const char *after, unsigned limit,
                           store_room_fn fn, void *ud, int *has_more)
{
    store_room_query q = {after, NULL, NULL, limit};
    store_room_plain p = {fn, ud};
    return store_room_list_for(s, &q, store_room_plain_row, &p, has_more);
}

/* ---- messages ---------------------------------------------------------- */

parley_err store_append(store *s, const char *room, const parley_author *author,
                        const char *client_msg_id, const char *body,
                        size_t body_len, int64_t now_ms, parley_msg *out,
                        int *duplicate)
{
    parley_msg scratch;
    int dup_scratch;
    parley_err e;

    if (duplicate) *duplicate = 0;
    if ((e = rules_room(room)) != PARLEY_OK) return e;
    if ((e = rules_author(author)) != PARLEY_OK) return e;
    if ((e = rules_client_msg_id(client_msg_id)) != PARLEY_OK) return e;
    if ((e = rules_body(body, body_len, s->max_body)) != PARLEY_OK) return e;
    if (duplicate == NULL) duplicate = &dup_scratch;
    if (s->read_only) return PARLEY_ERR_INTERNAL;
    return store_note_write_outside(
        s, s->engine->append(s, room, author, client_msg_id, body, body_len,
                             now_ms, out ? out : &scratch, duplicate));
}

parley_err store_get(store *s, const char *room, uint64_t seq, parley_msg *out)
{
    parley_msg scratch;
    parley_err e = rules_room(room);

    if (e != PARLEY_OK) return e;
    return s->engine->get(s, room, seq, out ? out : &scratch);
}

parley_err store_find_client(store *s, const char *room, const char *author_id,
                             const char *client_msg_id, parley_msg *out)
{
    parley_msg scratch;
    parley_err e;

    if ((e = rules_room(room)) != PARLEY_OK) return e;
    if ((e = rules_user_id(author_id)) != PARLEY_OK) return e;
    if ((e = rules_client_msg_id(client_msg_id)) != PARLEY_OK) return e;
    return s->engine->find_client(s, room, author_id, client_msg_id,
                                  out ? out : &scratch);
}

parley_err store_edit(store *s, const char *room, uint64_t seq,
                      const parley_author *actor, const char *body,
                      size_t body_len, int64_t now_ms, parley_msg *out)
{
    parley_msg scratch;
    parley_err e;

    if ((e = rules_room(room)) != PARLEY_OK) return e;
    if ((e = rules_author(actor)) != PARLEY_OK) return e;
    if ((e = rules_body(body, body_len, s->max_body)) != PARLEY_OK) return e;
    if (s->read_only) return PARLEY_ERR_INTERNAL;
    return store_note_write_outside(s, s->engine->edit(s, room, seq, actor,
                                                       body, body_len, now_ms,
                                                       out ? out : &scratch));
}

parley_err store_delete(store *s, const char *room, uint64_t seq,
                        const parley_author *actor, int64_t now_ms,
                        parley_msg *out)
{
    parley_msg scratch;
    parley_err e;

    if ((e = rules_room(room)) != PARLEY_OK) return e;
    if ((e = rules_author(actor)) != PARLEY_OK) return e;
    if (s->read_only) return PARLEY_ERR_INTERNAL;
    return store_note_write_outside(
        s,
        s->engine->remove(s, room, seq, actor, now_ms, out ? out : &scratch));
}

/* ---- list -------------------------------------------------------------- */

parley_err store_list(store *s, const char *room, store_dir dir,
                      uint64_t cursor, unsigned limit, store_msg_fn fn,
                      void *ud, parley_room *room_out, int *has_more)
{
    int more_scratch;
    parley_err e = rules_room(room);

    if (has_more) *has_more = 0;
    if (e != PARLEY_OK) return e;
    if (limit == 0) limit = RULES_LIST_LIMIT_DEFAULT;
    if (limit > RULES_LIST_LIMIT_MAX) return PARLEY_ERR_BAD_CURSOR;
    if (dir != STORE_LATEST && dir != STORE_AFTER_REV &&
        dir != STORE_BEFORE_SEQ)
        return PARLEY_ERR_BAD_CURSOR;
    return s->engine->list(s, room, dir, cursor, limit, fn, ud, room_out,
                           has_more ? has_more : &more_scratch);
}

/* ---- unread counts remembered (store_unread_key in store_engine.h) ---- */

static struct store_unread_slot *store_unread_slot(store *s,
                                                   const store_unread_key *k)
{
    uint64_t h = 14695981039346656037u; /* FNV-1a 64 */
    for (int i = 0; i < 8; i++) {
        h ^= (uint64_t)k->room_id >> (8 * i) & 0xff;
        h *= 1099511628211u;
    }
    for (const char *p = k->user_id; *p; p++) {
        h ^= (unsigned char)*p;
        h *= 1099511628211u;
    }
    return &s->unread[h % STORE_UNREAD_SLOTS];
}

int store_unread_recall(store *s, const store_unread_key *k, unsigned *count)
{
    assert(k->head_rev >= k->head_seq && k->base_seq <= k->head_seq);
    if (k->after_seq >= k->head_seq) {
        *count = 0;
        return 1;
    }
    if (s->in_txn) return 0;
    const struct store_unread_slot *u = store_unread_slot(s, k);
    if (u->user[0] == '\0' || u->room_id != k->room_id ||
        u->head_rev != k->head_rev || u->base_seq != k->base_seq ||
        u->after_seq != k->after_seq || u->cap != k->cap ||
        strcmp(u->user, k->user_id) != 0)
        return 0;
    assert(u->count <= u->cap);
    *count = u->count;
    return 1;
}

void store_unread_keep(store *s, const store_unread_key *k, unsigned count)
{
    assert(count <= k->cap);
    size_t len = strlen(k->user_id);
    if (s->in_txn || len >= sizeof s->unread[0].user) return;
    struct store_unread_slot *u = store_unread_slot(s, k);
    u->room_id = k->room_id;
    u->head_rev = k->head_rev;
    u->base_seq = k->base_seq;
    u->after_seq = k->after_seq;
    u->cap = k->cap;
    u->count = count;
    memcpy(u->user, k->user_id, len + 1);
}

unsigned store_settings_merge(const parley_room *cur,
                              const parley_room_settings *u,
                              parley_room_settings *out)
{
    out->title = u->title ? u->title : cur->title;
    out->topic = u->topic ? u->topic : cur->topic;
    out->visibility = u->visibility ? u->visibility : cur->visibility;
    out->mode = u->mode ? u->mode : cur->mode;
    unsigned c = 0;
    if (strcmp(out->title, cur->title) != 0 ||
        strcmp(out->topic, cur->topic) != 0)
        c |= STORE_CHANGED_TEXT;
    if (out->visibility != cur->visibility) c |= STORE_CHANGED_VISIBILITY;
    if (out->mode != cur->mode) c |= STORE_CHANGED_MODE;
    return c;
}

/* ---- row buffers of the engines ---- */

char *store_rows_take(store_rows *r, size_t need)
{
    assert(r->cur == 0 || r->cur == 1);
    int i = r->cur ^ 1;
    if (r->cap[i] < need) {
        size_t cap = r->cap[i] ? r->cap[i] : 1024;
        while (cap < need) cap *= 2;
        char *p = realloc(r->buf[i], cap);
        if (p == NULL) return NULL;
        r->buf[i] = p;
        r->cap[i] = cap;
    }
    r->cur = i;
    return r->buf[i];
}

char *store_rows_put(char **at, const char *src, size_t len)
{
    char *dst = *at;
    memcpy(dst, src, len);
    dst[len] = '\0';
    *at += len + 1;
    return dst;
}

void store_rows_free(store_rows *r)
{
    free(r->buf[0]);
    free(r->buf[1]);
    memset(r, 0, sizeof *r);
}
