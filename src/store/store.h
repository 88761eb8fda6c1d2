/* store.h: the history store, the one interface every storage engine sits
 * behind. Callers see rooms and messages (core/model.h), group commit and
 * paged reads; which engine serves them is chosen at store_open from the
 * target: SQLite for a file path (store_sqlite.c), PostgreSQL for a
 * postgres:// or postgresql:// URI (store_pg.c). An engine implements
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
 * SQLite, a file path; for PostgreSQL, a libpq URI of an existing database),
 * with the engine that serves it.
 * PARLEY_ERR_SCHEMA_TOO_NEW if the database was written by a newer parley.
 * On error *out is NULL and errmsg (if given, size errlen) says why. */
parley_err store_open(const char *target, const store_opts *opts, store **out,
                      char *errmsg, size_t errlen);
void store_close(store *s);

/* The engine's last error text on this handle, for logs. */
const char *store_last_error(const store *s);

/* The engine's name ("sqlite", "postgres") and the target it serves as it
 * may be logged (a URI without its password). */
const char *store_engine_name(const store *s);
const char *store_describe(const store *s);

/* The durability level the engine runs with now (for SQLite, PRAGMA
 * synchronous read back, not what was asked; for PostgreSQL, FULL when a
 * commit returns after its WAL is flushed: synchronous_commit not off and
 * the server's fsync on): STORE_SYNC_*, or -1 if it cannot be read. store_open already refuses a level other than the one
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

/* Rooms. create: *created = 1 if new. get: ROOM_NOT_FOUND if absent.
 * Both return the room with its settings (title, topic, visibility, mode). */
parley_err store_room_create(store *s, const char *name, int64_t now_ms,
                             parley_room *out, int *created);
parley_err store_room_get(store *s, const char *name, parley_room *out);

/* A message handed to a callback; its strings are valid while it runs. */
typedef int (*store_msg_fn)(const parley_msg *m, void *ud);

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

/* ---- rooms: settings, access, members, sanctions, actions ----
 *
 * A room's settings (title, topic, visibility, mode) live with its
 * counters; what one user may do there depends on their standing (a
 * membership, a mute, a removal), which the access decision in core/
 * access.h reads with the room in one call. Every change an organizer
 * makes is also stored as an action (parley_action) with a per-room id,
 * dense from 1. The calls below validate their arguments like the rest
 * (ROOM_INVALID, AUTHOR_INVALID for a user id, ...), and answer
 * ROOM_NOT_FOUND for a room that does not exist or was deleted. */

#define STORE_TITLE_MAX 200  /* bytes of UTF-8, no control characters */
#define STORE_TOPIC_MAX 1000 /* bytes of UTF-8 */
#define STORE_REASON_MAX 500 /* bytes of UTF-8 */

/* store_room_create with settings for a new room (NULL: "" texts, OPEN,
 * OPEN). A room that exists is returned unchanged. A deleted room's name
 * may be created again: its counters go on from where they were, so no
 * reader's rev ever goes back. */
parley_err store_room_create_with(store *s, const char *name,
                                  const parley_room_settings *settings,
                                  int64_t now_ms, parley_room *out,
                                  int *created);

/* What store_room_update changed. */
enum {
    STORE_CHANGED_TEXT = 1, /* title or topic */
    STORE_CHANGED_VISIBILITY = 2,
    STORE_CHANGED_MODE = 4
};
/* Applies the settings u holds (NULL texts and 0 numbers keep the room's);
 * out is the room after, *changed the STORE_CHANGED_* bits of what really
 * differs. Takes no rev: settings are not messages. */
parley_err store_room_update(store *s, const char *name,
                             const parley_room_settings *u, parley_room *out,
                             unsigned *changed);

/* Deletes the room's messages, members, sanctions and actions, and the
 * room; out is the room as it was, *messages how many went with it. */
parley_err store_room_delete(store *s, const char *name, parley_room *out,
                             uint64_t *messages);

/* The room's settings (its head counters are NOT read: 0 in out; this is
 * the call the group commit makes for every publish, and the counters are
 * the publishes' to move) and the standing of user_id there. */
parley_err store_room_access(store *s, const char *room, const char *user_id,
                             parley_room *out, parley_standing *st);

/* A page of store_room_list_for. */
typedef struct store_room_query {
    const char *after;   /* names after this one; "" or NULL: from the first */
    const char *prefix;  /* only names starting with it; "" or NULL: all */
    const char *user_id; /* whose standing comes with each room; NULL: none */
    unsigned limit;      /* 1..1000; 0: 100 */
} store_room_query;
/* Called once per room with its head counters, settings and the user's
 * standing (zero without user_id). Return nonzero to stop early. */
typedef int (*store_room_access_fn)(const parley_room *r,
                                    const parley_standing *st, void *ud);
/* store_room_list with a prefix and each room's standing for one user. */
parley_err store_room_list_for(store *s, const store_room_query *q,
                               store_room_access_fn fn, void *ud,
                               int *has_more);

/* Makes user_id a member with role (or changes the role); added_by is the
 * user who did it. *changed = 0 when the member had that role already. */
parley_err store_member_set(store *s, const char *room, const char *user_id,
                            int role, const char *added_by, int64_t now_ms,
                            parley_member *out, int *changed);
/* Ends a membership; *removed = 0 when there was none. */
parley_err store_member_remove(store *s, const char *room, const char *user_id,
                               int *removed);
typedef int (*store_member_fn)(const parley_member *m, void *ud);
/* Members by user id (byte order) after `after`, up to limit (1..1000;
 * 0: 100). */
parley_err store_member_list(store *s, const char *room, const char *after,
                             unsigned limit, store_member_fn fn, void *ud,
                             int *has_more);

/* Sanctions organizers place on a user in a room. */
typedef enum store_sanction {
    STORE_SANCTION_MUTE = 1,
    STORE_SANCTION_REMOVE = 2
} store_sanction;
/* Places (active = 1; until_ms 0: until lifted, else when it ends) or lifts
 * (active = 0) a sanction. *changed = 0 when lifting one that is not there. */
parley_err store_sanction_set(store *s, const char *room, const char *user_id,
                              store_sanction kind, int active, int64_t until_ms,
                              int *changed);

/* Stores an action (a->room names the room; a->id is ignored) with the
 * room's next action id; out is the stored action. Validates the actor
 * (AUTHOR_INVALID), the kind, and the reason (UTF-8, STORE_REASON_MAX). */
parley_err store_action_append(store *s, const parley_action *a,
                               parley_action *out);
typedef int (*store_action_fn)(const parley_action *a, void *ud);
/* Actions with id > after_id, oldest first, up to limit (1..1000; 0: 100). */
parley_err store_action_list(store *s, const char *room, uint64_t after_id,
                             unsigned limit, store_action_fn fn, void *ud,
                             int *has_more);

/* Read state: user_id has read room up to message seq (and room rev).
 * Never goes back: a lower value keeps the stored one. out_seq / out_rev
 * (may be NULL) get what is stored after. */
parley_err store_read_mark(store *s, const char *room, const char *user_id,
                           uint64_t seq, uint64_t rev, int64_t now_ms,
                           uint64_t *out_seq, uint64_t *out_rev);
/* How many messages of room after seq after_seq are not deleted and not
 * user_id's, counted up to cap (1..1000). */
parley_err store_unread_count(store *s, const char *room, const char *user_id,
                              uint64_t after_seq, unsigned cap,
                              unsigned *count);

/* Turns every message user_id wrote in room (NULL: in every room) that is
 * not a tombstone yet into one, as store_delete does, and forgets the
 * author's display name on it: each takes a new rev of its room, so readers
 * converge as on any delete. fn (may be NULL) sees each tombstone, in
 * order of room and rev, while the strings are valid; it must not call
 * into the store. *count is how many were erased. */
parley_err store_erase_user(store *s, const char *room, const char *user_id,
                            int64_t now_ms, store_msg_fn fn, void *ud,
                            uint64_t *count);

/* Appends a message, assigning seq and rev. If (room, author id,
 * client_msg_id) was stored before, nothing is written, *duplicate = 1 and
 * out is the original. Validates room, author, id and body (rules.h). */
parley_err store_append(store *s, const char *room, const parley_author *author,
                        const char *client_msg_id, const char *body,
                        size_t body_len, int64_t now_ms, parley_msg *out,
                        int *duplicate);

parley_err store_get(store *s, const char *room, uint64_t seq, parley_msg *out);

/* The message author_id stored with client_msg_id in room (what a repeat
 * of that publish is acked with): MESSAGE_NOT_FOUND if there is none. */
parley_err store_find_client(store *s, const char *room, const char *author_id,
                             const char *client_msg_id, parley_msg *out);

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
 * tells whether messages after the last one delivered exist: store_msg_fn,
 * declared above. */

/* Lists up to limit (1..1000) messages. *has_more tells whether more exist in
 * the cursor's direction; room (if given) receives the head counters read in
 * the same transaction as the page. */
parley_err store_list(store *s, const char *room, store_dir dir,
                      uint64_t cursor, unsigned limit, store_msg_fn fn,
                      void *ud, parley_room *room_out, int *has_more);

#endif
