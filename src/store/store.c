/* store.c: the store interface (see store.h) in front of the engines. Picks
 * the engine that serves a target, checks every argument against the core's
 * rules before the engine sees it, keeps the group-commit state and what the
 * writes found out about the storage (store_write_status), and hands
 * engines non-NULL result pointers. Engine-neutral: no SQL here. */
#include "store_engine.h"

#include <assert.h>
#include <stdio.h>

#include "rules.h"

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
    &store_engine_sqlite,
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
    s->write_status = PARLEY_OK;
    *out = s;
    return PARLEY_OK;
}

void store_close(store *s)
{
    if (s == NULL) return;
    s->engine->close(s);
}

const char *store_last_error(const store *s)
{
    if (s == NULL) return "no store";
    return s->engine->last_error(s);
}

int store_synchronous(store *s)
{
    if (s == NULL) return -1;
    return s->engine->synchronous(s);
}

/* ---- transactions ------------------------------------------------------ */

parley_err store_begin(store *s)
{
    if (s->in_txn) return PARLEY_ERR_INTERNAL;
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

parley_err store_room_create(store *s, const char *name, int64_t now_ms,
                             parley_room *out, int *created)
{
    parley_room room_scratch;
    int created_scratch;
    parley_err e = rules_room(name);

    if (e != PARLEY_OK) return e;
    return store_note_write_outside(
        s, s->engine->room_create(s, name, now_ms, out ? out : &room_scratch,
                                  created ? created : &created_scratch));
}

parley_err store_room_get(store *s, const char *name, parley_room *out)
{
    parley_room scratch;
    parley_err e = rules_room(name);

    if (e != PARLEY_OK) return e;
    return s->engine->room_get(s, name, out ? out : &scratch);
}

parley_err store_room_list(store *s, const char *after, unsigned limit,
                           store_room_fn fn, void *ud, int *has_more)
{
    int more_scratch;
    parley_err e;

    if (has_more) *has_more = 0;
    if (after == NULL) after = "";
    if (*after && (e = rules_room(after)) != PARLEY_OK) return e;
    if (limit == 0) limit = STORE_ROOM_LIST_DEFAULT;
    if (limit > RULES_LIST_LIMIT_MAX) return PARLEY_ERR_BAD_CURSOR;
    return s->engine->room_list(s, after, limit, fn, ud,
                                has_more ? has_more : &more_scratch);
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

parley_err store_edit(store *s, const char *room, uint64_t seq,
                      const parley_author *actor, const char *body,
                      size_t body_len, int64_t now_ms, parley_msg *out)
{
    parley_msg scratch;
    parley_err e;

    if ((e = rules_room(room)) != PARLEY_OK) return e;
    if ((e = rules_author(actor)) != PARLEY_OK) return e;
    if ((e = rules_body(body, body_len, s->max_body)) != PARLEY_OK) return e;
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
