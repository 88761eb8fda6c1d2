/* store.h: the history store, the one interface every storage engine sits
 * behind. Callers see rooms and messages (core/model.h), group commit and
 * paged reads; which engine serves them is chosen at store_open from the
 * target: today SQLite (a file path; store_sqlite.c). An engine implements
 * store_engine.h; store.c checks every input against the core's rules before
 * an engine sees it, so a refused input never touches storage and every
 * engine refuses the same things.
 *
 * A store handle belongs to one thread at a time. Two handles (in two threads
 * or processes) may write the same database: sequence numbers are assigned
 * inside the committing transaction, so they stay dense and unique.
 *
 * Strings handed out in parley_msg / parley_room are valid only until the
 * callback returns (for list: they may point into the engine's row memory)
 * or until the next call on the same handle (for the single-row calls and
 * list's room: a copy in a per-handle buffer, so they may be passed back as
 * arguments of that next call). Copy what you keep. A list callback must not
 * call into the same handle. */
#ifndef PARLEY_STORE_H
#define PARLEY_STORE_H

#include <stddef.h>
#include <stdint.h>
#include "errors.h"
#include "model.h"

typedef struct store store;

/* Limits enforced by the core (rules.c); 0 in store_opts means the default. */
typedef struct store_opts {
    size_t max_body_bytes; /* default 4096 */
    /* 1 (the default when opts is NULL): fsync every commit */
    int synchronous_full;
} store_opts;

/* Opens (creating if needed) and migrates the database `target` names (for
 * SQLite, a file path), with the engine that serves it.
 * PARLEY_ERR_SCHEMA_TOO_NEW if the database was written by a newer parley.
 * On error *out is NULL and errmsg (if given, size errlen) says why. */
parley_err store_open(const char *target, const store_opts *opts, store **out,
                      char *errmsg, size_t errlen);
void store_close(store *s);

/* The engine's last error text on this handle, for logs. */
const char *store_last_error(const store *s);

/* The durability level the engine runs with now (for SQLite, PRAGMA
 * synchronous read back, not what was asked): STORE_SYNC_*, or -1 if it
 * cannot be read. store_open already refuses a level other than the one
 * asked for. */
enum { STORE_SYNC_OFF = 0, STORE_SYNC_NORMAL = 1, STORE_SYNC_FULL = 2 };
int store_synchronous(store *s);

/* Group commit: everything between begin and commit is one transaction.
 * Without an explicit transaction each write call commits by itself. A
 * begin inside a transaction or a commit outside one is a caller's bug:
 * PARLEY_ERR_INTERNAL and nothing changes; rollback outside one is a no-op. */
parley_err store_begin(store *s);
parley_err store_commit(store *s);
void store_rollback(store *s);

/* Whether the store can write, as far as its writes found out: PARLEY_OK
 * until a write or a commit fails for a storage reason (PARLEY_ERR_IO: disk
 * full, file read-only, I/O error, lock held too long), then that error
 * until a later write commits or store_probe succeeds. A write the rules or
 * the data refuse (ROOM_NOT_FOUND, ...) changes nothing here. */
parley_err store_write_status(const store *s);
/* Writes that reach the disk (appended and synced like any commit, about
 * as much as a group commit of a few dozen messages) but change no room
 * and no message, to learn whether the store can commit again. Updates
 * store_write_status. Outside a group commit only (INTERNAL inside one). */
parley_err store_probe(store *s);

/* Rooms. create: *created = 1 if new. get: ROOM_NOT_FOUND if absent. */
parley_err store_room_create(store *s, const char *name, int64_t now_ms,
                             parley_room *out, int *created);
parley_err store_room_get(store *s, const char *name, parley_room *out);

/* Called once per room, in ascending byte order of name; the strings are
 * valid while the callback runs. Return nonzero to stop early. */
typedef int (*store_room_fn)(const parley_room *r, void *ud);

/* Lists up to limit (1..1000; 0: 100) rooms whose name sorts after `after`
 * ("" or NULL: from the first), with their head counters, read in one
 * transaction. *has_more tells whether more rooms follow the last one
 * delivered. BAD_CURSOR for a limit over 1000, ROOM_INVALID for an after
 * that is no valid room name. */
parley_err store_room_list(store *s, const char *after, unsigned limit,
                           store_room_fn fn, void *ud, int *has_more);

/* Appends a message, assigning seq and rev. If (room, author id,
 * client_msg_id) was stored before, nothing is written, *duplicate = 1 and
 * out is the original. Validates room, author, id and body (rules.h). */
parley_err store_append(store *s, const char *room, const parley_author *author,
                        const char *client_msg_id, const char *body,
                        size_t body_len, int64_t now_ms, parley_msg *out,
                        int *duplicate);

parley_err store_get(store *s, const char *room, uint64_t seq, parley_msg *out);

/* Replaces the body and takes a new rev. PERMISSION_DENIED unless the actor
 * is the author or an organizer; MESSAGE_DELETED for a tombstone. */
parley_err store_edit(store *s, const char *room, uint64_t seq,
                      const parley_author *actor, const char *body,
                      size_t body_len, int64_t now_ms, parley_msg *out);

/* Turns the message into a tombstone (empty body, deleted = 1) that keeps
 * its seq and takes a new rev. Deleting a tombstone again is a no-op that
 * returns it unchanged. */
parley_err store_delete(store *s, const char *room, uint64_t seq,
                        const parley_author *actor, int64_t now_ms,
                        parley_msg *out);

typedef enum store_dir {
    STORE_LATEST = 0, /* the newest `limit` messages, by seq */
    STORE_AFTER_REV,  /* rev > cursor, ascending by rev (catch-up) */
    STORE_BEFORE_SEQ  /* seq < cursor, the newest `limit` of them */
} store_dir;

/* Called once per message, in ascending order (by rev for AFTER_REV, by seq
 * otherwise). Return nonzero to stop early; for AFTER_REV, has_more then
 * tells whether messages after the last one delivered exist. */
typedef int (*store_msg_fn)(const parley_msg *m, void *ud);

/* Lists up to limit (1..1000) messages. *has_more tells whether more exist in
 * the cursor's direction; room (if given) receives the head counters read in
 * the same transaction as the page. */
parley_err store_list(store *s, const char *room, store_dir dir,
                      uint64_t cursor, unsigned limit, store_msg_fn fn,
                      void *ud, parley_room *room_out, int *has_more);

#endif
