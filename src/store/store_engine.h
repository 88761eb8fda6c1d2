/* store_engine.h: what a storage engine implements behind store.h. For
 * engines only; everyone else includes store.h.
 *
 * An engine's handle embeds `store` as its first member (the way an SQLite
 * VFS file embeds sqlite3_file), and every operation receives that handle.
 * store.c has already checked the arguments against the core's rules (room,
 * author, client id, body, list limit and direction), made every result
 * pointer non-NULL (but list's room_out, which is optional) and keeps the
 * transaction state in `in_txn`; an engine only stores and reads. The
 * promises of store.h (dense seq and rev per room taken inside the
 * committing transaction, idempotent appends, the lifetime of returned
 * strings) are each engine's to keep.
 *
 * A new engine: one file store_<name>.c exporting a `store_engine`, listed
 * in store.c's engine table and in src/CMakeLists.txt. */
#ifndef PARLEY_STORE_ENGINE_H
#define PARLEY_STORE_ENGINE_H

#include "rules.h"
#include "store.h"

/* Unread counts remembered per handle: every History or Subscribed answer
 * carries the caller's count, and a page reader asks again and again. */
#define STORE_UNREAD_SLOTS 64

typedef struct store_engine store_engine;

struct store {
    const store_engine *engine;
    size_t max_body; /* validated body limit (store.c) */
    int in_txn;      /* between store_begin and store_commit / rollback */
    int read_only;   /* a store_open_reader handle: writes are refused */
    int in_snapshot; /* between store_snapshot_begin and _end */
    /* Durability (store.c): interval mode, and its counters. The engine
     * counts commits (every write transaction that committed: a group or
     * a single write); store.c counts syncs. */
    int sync_interval_ms; /* 0: synchronous_full, every commit fsync'd */
    uint64_t commits, synced_commits, syncs;
    int64_t last_sync_ms;    /* -1 before store_sync_due's first call */
    parley_err write_status; /* store_write_status: OK or PARLEY_ERR_IO */
    char shown[256]; /* the target for logs, when the engine has no describe */
    /* Unread counts this handle took, by room and user (store_unread_*):
     * direct-mapped, an empty slot has user[0] == 0. */
    struct store_unread_slot {
        int64_t room_id;
        uint64_t head_rev, base_seq, after_seq;
        unsigned cap, count;
        char user[RULES_AUTHOR_ID_MAX + 1];
    } unread[STORE_UNREAD_SLOTS];
};

/* A room's counters as an engine read them for an unread count, and what
 * is counted. Messages only come and go with a new head_rev (append, edit,
 * delete, erase) or, when a room is deleted, a new base_seq (its counters
 * go on; room ids are never reused), so while both stay the same a count
 * taken before is still exact. */
typedef struct store_unread_key {
    int64_t room_id;
    uint64_t head_seq, head_rev, base_seq;
    const char *user_id;
    uint64_t after_seq;
    unsigned cap;
} store_unread_key;
/* 1 with *count set when k is answered without reading messages: nothing
 * after after_seq, or a count this handle took at the same counters. Never
 * inside a transaction, whose writes may still roll back. */
int store_unread_recall(store *s, const store_unread_key *k, unsigned *count);
/* Keeps the count an engine read for k (not inside a transaction). */
void store_unread_keep(store *s, const store_unread_key *k, unsigned count);

/* The settings a room gets from update u over what it has (cur): u's NULL
 * texts and 0 numbers keep cur's. Returns what changed
 * (STORE_CHANGED_* bits, 0: nothing to write). */
unsigned store_settings_merge(const parley_room *cur,
                              const parley_room_settings *u,
                              parley_room_settings *out);

/* Two row buffers an engine copies a result's strings into, in turn: the
 * buffer of the previous result is left alone, so its strings may be this
 * call's arguments (store.h's promise on how long returned strings live).
 * Zeroed is empty. */
typedef struct store_rows {
    char *buf[2];
    size_t cap[2];
    int cur;
} store_rows;
/* Switches to the other buffer, with room for need bytes (grown only when
 * a row is larger than any before); NULL when out of memory. */
char *store_rows_take(store_rows *r, size_t need);
/* Copies len bytes of src and a NUL to *at, moves *at past them, and
 * returns where they went. */
char *store_rows_put(char **at, const char *src, size_t len);
void store_rows_free(store_rows *r);

struct store_engine {
    const char *name; /* "sqlite", "postgres" */
    /* 1 if this engine serves target (a path or a URI). */
    int (*serves)(const char *target);
    /* Opens target; *out is the engine's handle, whose `store` member the
     * engine leaves zeroed (store.c fills it). errmsg is never NULL. */
    parley_err (*open)(const char *target, const store_opts *opts, store **out,
                       char *errmsg, size_t errlen);
    /* Another handle on s's database that only reads (store_open_reader);
     * its `store` member left zeroed like open's. The ops from here to
     * checkpoint may be NULL: store.c then says the engine cannot
     * (open_reader), or does nothing (sync, snapshots, checkpoints). */
    parley_err (*open_reader)(store *s, store **out, char *errmsg,
                              size_t errlen);
    void (*close)(store *s);
    /* Interval durability: makes every commit so far durable (fsync of
     * the log); called between transactions. */
    parley_err (*sync)(store *s);
    /* store_snapshot_begin / _end; begin is called outside any
     * transaction, end only after a successful begin. */
    parley_err (*snapshot_begin)(store *s);
    void (*snapshot_end)(store *s);
    /* store_own_checkpoints, store_log_pages, store_checkpoint. */
    void (*own_checkpoints)(store *s);
    size_t (*log_pages)(const store *s);
    parley_err (*checkpoint)(store *s);
    const char *(*last_error)(const store *s);
    /* The target as it may be logged (no password); NULL: the target as
     * given to open is shown. */
    const char *(*describe)(const store *s);
    /* The durability level in effect, read back from the engine now:
     * STORE_SYNC_*, or -1 if it cannot be read. */
    int (*synchronous)(store *s);

    /* The transaction of a group commit; store.c calls begin only outside
     * one and commit / rollback only inside one. */
    parley_err (*begin)(store *s);
    parley_err (*commit)(store *s);
    void (*rollback)(store *s);

    parley_err (*room_create)(store *s, const char *name,
                              const parley_room_settings *settings,
                              int64_t now_ms, parley_room *out, int *created);
    parley_err (*room_get)(store *s, const char *name, parley_room *out);
    /* A write transaction that changes no visible data (store_probe);
     * called outside a transaction only. */
    parley_err (*probe)(store *s);
    parley_err (*append)(store *s, const char *room,
                         const parley_author *author, const char *client_msg_id,
                         const char *body, size_t body_len, int64_t now_ms,
                         parley_msg *out, int *duplicate);
    parley_err (*get)(store *s, const char *room, uint64_t seq,
                      parley_msg *out);
    parley_err (*find_client)(store *s, const char *room, const char *author_id,
                              const char *client_msg_id, parley_msg *out);
    parley_err (*edit)(store *s, const char *room, uint64_t seq,
                       const parley_author *actor, const char *body,
                       size_t body_len, int64_t now_ms, parley_msg *out);
    parley_err (*remove)(store *s, const char *room, uint64_t seq,
                         const parley_author *actor, int64_t now_ms,
                         parley_msg *out);
    /* Rooms' settings, access, members, sanctions and actions (store.h);
     * store.c validated every argument, settings included, and gives
     * limits in 1..RULES_LIST_LIMIT_MAX, after / prefix as "" when absent.
     * room_create's settings are complete (texts non-NULL, numbers set). */
    parley_err (*room_update)(store *s, const char *name,
                              const parley_room_settings *u, parley_room *out,
                              unsigned *changed);
    parley_err (*room_delete)(store *s, const char *name, parley_room *out,
                              uint64_t *messages);
    parley_err (*room_access)(store *s, const char *room, const char *user_id,
                              parley_room *out, parley_standing *st);
    parley_err (*room_list_for)(store *s, const store_room_query *q,
                                store_room_access_fn fn, void *ud,
                                int *has_more);
    parley_err (*member_set)(store *s, const char *room, const char *user_id,
                             int role, const char *added_by, int64_t now_ms,
                             parley_member *out, int *changed);
    parley_err (*member_remove)(store *s, const char *room, const char *user_id,
                                int *removed);
    parley_err (*member_list)(store *s, const char *room, const char *after,
                              unsigned limit, store_member_fn fn, void *ud,
                              int *has_more);
    parley_err (*sanction_set)(store *s, const char *room, const char *user_id,
                               store_sanction kind, int active,
                               int64_t until_ms, int *changed);
    parley_err (*action_append)(store *s, const parley_action *a,
                                parley_action *out);
    parley_err (*action_list)(store *s, const char *room, uint64_t after_id,
                              unsigned limit, store_action_fn fn, void *ud,
                              int *has_more);
    parley_err (*read_mark)(store *s, const char *room, const char *user_id,
                            uint64_t seq, uint64_t rev, int64_t now_ms,
                            uint64_t *out_seq, uint64_t *out_rev);
    parley_err (*unread_count)(store *s, const char *room, const char *user_id,
                               uint64_t after_seq, unsigned cap,
                               unsigned *count);
    /* room NULL: every room. */
    parley_err (*erase_user)(store *s, const char *room, const char *user_id,
                             int64_t now_ms, store_msg_fn fn, void *ud,
                             uint64_t *count);

    /* limit is 1..RULES_LIST_LIMIT_MAX, dir one of store_dir. */
    parley_err (*list)(store *s, const char *room, store_dir dir,
                       uint64_t cursor, unsigned limit, store_msg_fn fn,
                       void *ud, parley_room *room_out, int *has_more);
};

/* The engines parley is built with. */
extern const store_engine store_engine_sqlite;
extern const store_engine store_engine_pg;

#endif
