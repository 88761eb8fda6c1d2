/* store_sqlite.c: the SQLite engine of the store (store_engine.h). Owns the
 * database file (WAL), its schema and migrations (PRAGMA user_version), and
 * every SQL statement parley runs; all statements are prepared once at open
 * and reset after each use.
 *
 * Writes (append, edit, delete, room create) run in one transaction: the
 * caller's (store_begin ... store_commit, group commit), inside a SAVEPOINT so
 * a refused write leaves the rest of the group intact, or else their own
 * BEGIN IMMEDIATE ... COMMIT. seq and rev are read and incremented in the
 * rooms row inside that transaction, so they stay dense across handles.
 *
 * Returned strings: store_list hands out pointers into SQLite's row memory,
 * valid while the callback runs. The single-row calls (room create/get,
 * append, get, edit, delete, and room_out of list) copy the row into one of
 * two per-handle buffers used in turn, so it stays valid until the next call
 * on the handle, and the caller may pass strings of the previous result back
 * in (for example store_edit with the author of a store_get). */
#include "store_engine.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "rules.h"

#define STORE_BUSY_TIMEOUT_MS 5000

/* ---- schema ------------------------------------------------------------ */

/* migrations[i] brings a database from user_version i to i + 1. Never edit
 * a published step; add a new one. */
static const char *const store_migrations[] = {
    /* 0 -> 1: rooms and messages. */
    "CREATE TABLE rooms("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  head_seq INTEGER NOT NULL DEFAULT 0,"
    "  head_rev INTEGER NOT NULL DEFAULT 0,"
    "  created_ms INTEGER NOT NULL);"
    "CREATE TABLE messages("
    "  room_id INTEGER NOT NULL REFERENCES rooms(id),"
    "  seq INTEGER NOT NULL,"
    "  rev INTEGER NOT NULL,"
    "  client_msg_id TEXT NOT NULL,"
    "  author_id TEXT NOT NULL,"
    "  author_name TEXT NOT NULL,"
    "  author_role INTEGER NOT NULL,"
    "  body TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  edited_ms INTEGER NOT NULL DEFAULT 0,"
    "  deleted INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY(room_id, seq)) WITHOUT ROWID;"
    "CREATE UNIQUE INDEX messages_rev ON messages(room_id, rev);"
    "CREATE UNIQUE INDEX messages_client_id"
    "  ON messages(room_id, author_id, client_msg_id);"
    "PRAGMA user_version = 1;",
};
#define STORE_SCHEMA_VERSION \
    ((int)(sizeof store_migrations / sizeof store_migrations[0]))

/* ---- statements -------------------------------------------------------- */

/* Message columns, in this order, in every statement that yields a message. */
#define MSG_COLS                                                           \
    "seq, rev, client_msg_id, author_id, author_name, author_role, body, " \
    "created_ms, edited_ms, deleted"
enum {
    COL_SEQ,
    COL_REV,
    COL_CLIENT_ID,
    COL_AUTHOR_ID,
    COL_AUTHOR_NAME,
    COL_AUTHOR_ROLE,
    COL_BODY,
    COL_CREATED,
    COL_EDITED,
    COL_DELETED
};

enum {
    STMT_BEGIN_READ,
    STMT_BEGIN_WRITE,
    STMT_COMMIT,
    STMT_ROLLBACK,
    STMT_SAVEPOINT,
    STMT_RELEASE,
    STMT_ROLLBACK_TO,
    STMT_ROOM_INSERT,
    STMT_ROOM_GET,
    STMT_ROOM_BUMP_SEQ,
    STMT_ROOM_BUMP_REV,
    STMT_MSG_INSERT,
    STMT_MSG_BY_CLIENT_ID,
    STMT_MSG_GET,
    STMT_MSG_EDIT,
    STMT_MSG_DELETE,
    STMT_LIST_SEQ_RANGE,
    STMT_LIST_AFTER_REV,
    STMT_ROOM_LIST,
    STMT__COUNT
};

static const char *const store_sql[STMT__COUNT] = {
    [STMT_BEGIN_READ] = "BEGIN DEFERRED",
    [STMT_BEGIN_WRITE] = "BEGIN IMMEDIATE",
    [STMT_COMMIT] = "COMMIT",
    [STMT_ROLLBACK] = "ROLLBACK",
    [STMT_SAVEPOINT] = "SAVEPOINT store_write",
    [STMT_RELEASE] = "RELEASE store_write",
    [STMT_ROLLBACK_TO] = "ROLLBACK TO store_write",
    [STMT_ROOM_INSERT] = "INSERT INTO rooms(name, created_ms) VALUES(?1, ?2)"
                         " ON CONFLICT(name) DO NOTHING",
    [STMT_ROOM_GET] =
        "SELECT id, name, head_seq, head_rev FROM rooms WHERE name = ?1",
    [STMT_ROOM_BUMP_SEQ] =
        "UPDATE rooms SET head_seq = head_seq + 1, head_rev = head_rev + 1"
        " WHERE id = ?1 RETURNING head_seq, head_rev",
    [STMT_ROOM_BUMP_REV] =
        "UPDATE rooms SET head_rev = head_rev + 1 WHERE id = ?1"
        " RETURNING head_rev",
    [STMT_MSG_INSERT] =
        "INSERT INTO messages(room_id, seq, rev, client_msg_id, author_id,"
        " author_name, author_role, body, created_ms)"
        " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING " MSG_COLS,
    [STMT_MSG_BY_CLIENT_ID] =
        "SELECT " MSG_COLS " FROM messages"
        " WHERE room_id = ?1 AND author_id = ?2 AND client_msg_id = ?3",
    [STMT_MSG_GET] =
        "SELECT " MSG_COLS " FROM messages WHERE room_id = ?1 AND seq = ?2",
    [STMT_MSG_EDIT] = "UPDATE messages SET body = ?3, rev = ?4, edited_ms = ?5"
                      " WHERE room_id = ?1 AND seq = ?2 RETURNING " MSG_COLS,
    [STMT_MSG_DELETE] =
        "UPDATE messages SET body = '', deleted = 1, rev = ?3, edited_ms = ?4"
        " WHERE room_id = ?1 AND seq = ?2 RETURNING " MSG_COLS,
    /* seq is dense from 1, so a page by seq is a range of the primary key,
     * read in ascending order without a sort. */
    [STMT_LIST_SEQ_RANGE] =
        "SELECT " MSG_COLS " FROM messages"
        " WHERE room_id = ?1 AND seq >= ?2 AND seq <= ?3 ORDER BY seq",
    [STMT_LIST_AFTER_REV] =
        "SELECT " MSG_COLS " FROM messages INDEXED BY messages_rev"
        " WHERE room_id = ?1 AND rev > ?2 ORDER BY rev LIMIT ?3",
    /* name is UNIQUE: its index gives the order without a sort. */
    [STMT_ROOM_LIST] = "SELECT name, head_seq, head_rev FROM rooms"
                       " WHERE name > ?1 ORDER BY name LIMIT ?2",
};

/* The engine's handle; `base` first, as store_engine.h asks. */
typedef struct store_sqlite {
    store base;
    sqlite3 *db;
    sqlite3_stmt *stmt[STMT__COUNT];
    /* Two row buffers used in turn by the single-row calls. */
    char *buf[2];
    size_t cap[2];
    int cur;
    char err[512];
} store_sqlite;

/* ---- helpers ----------------------------------------------------------- */

static parley_err store_map_rc(int rc)
{
    switch (rc & 0xFF) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE: return PARLEY_OK;
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_PROTOCOL: return PARLEY_ERR_IO;
    default: return PARLEY_ERR_INTERNAL;
    }
}

/* Records SQLite's error for store_last_error and maps it. */
static parley_err store_fail(store_sqlite *s, int rc, const char *what)
{
    snprintf(s->err, sizeof s->err, "%s: %s (sqlite %d)", what,
             sqlite3_errmsg(s->db), rc);
    parley_err e = store_map_rc(rc);
    return e == PARLEY_OK ? PARLEY_ERR_INTERNAL : e;
}

static parley_err store_fail_msg(store_sqlite *s, parley_err e, const char *msg)
{
    snprintf(s->err, sizeof s->err, "%s", msg);
    return e;
}

/* Steps a statement that yields no row (or whose rows are ignored), then
 * resets it. */
static parley_err store_exec(store_sqlite *s, int id)
{
    sqlite3_stmt *stmt = s->stmt[id];
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    if (rc != SQLITE_DONE) return store_fail(s, rc, store_sql[id]);
    return PARLEY_OK;
}

/* After the last wanted row: the statement must be finished. Resets it. */
static parley_err store_finish(store_sqlite *s, int id)
{
    sqlite3_stmt *stmt = s->stmt[id];
    int rc = sqlite3_step(stmt);
    while (rc == SQLITE_ROW) rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    if (rc != SQLITE_DONE) return store_fail(s, rc, store_sql[id]);
    return PARLEY_OK;
}

static int64_t store_u64_to_i64(uint64_t v)
{
    return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
}

static const char *store_col_text(sqlite3_stmt *stmt, int col, size_t *len)
{
    const unsigned char *t = sqlite3_column_text(stmt, col);
    *len = (size_t)sqlite3_column_bytes(stmt, col);
    if (t == NULL) {
        *len = 0;
        return "";
    }
    return (const char *)t;
}

/* Points m into the current row of stmt (valid until stmt moves or resets). */
static void store_row_view(sqlite3_stmt *stmt, const char *room, parley_msg *m)
{
    size_t n;
    m->room = room;
    m->seq = (uint64_t)sqlite3_column_int64(stmt, COL_SEQ);
    m->rev = (uint64_t)sqlite3_column_int64(stmt, COL_REV);
    m->client_msg_id = store_col_text(stmt, COL_CLIENT_ID, &n);
    m->author.id = store_col_text(stmt, COL_AUTHOR_ID, &n);
    m->author.display_name = store_col_text(stmt, COL_AUTHOR_NAME, &n);
    m->author.role = sqlite3_column_int(stmt, COL_AUTHOR_ROLE);
    m->body = store_col_text(stmt, COL_BODY, &m->body_len);
    m->created_at_ms = sqlite3_column_int64(stmt, COL_CREATED);
    m->edited_at_ms = sqlite3_column_int64(stmt, COL_EDITED);
    m->deleted = sqlite3_column_int(stmt, COL_DELETED) != 0;
}

/* Switches to the other row buffer, with room for need bytes. The buffer of
 * the previous result is left alone, so its strings may be this call's
 * arguments. Grows only when a row is larger than any before. */
static char *store_buf_take(store_sqlite *s, size_t need)
{
    assert(s->cur == 0 || s->cur == 1);
    int i = s->cur ^ 1;
    if (s->cap[i] < need) {
        size_t cap = s->cap[i] ? s->cap[i] : 1024;
        while (cap < need) cap *= 2;
        char *p = realloc(s->buf[i], cap);
        if (p == NULL) return NULL;
        s->buf[i] = p;
        s->cap[i] = cap;
    }
    s->cur = i;
    return s->buf[i];
}

static char *store_put(char **at, const char *src, size_t len)
{
    char *dst = *at;
    memcpy(dst, src, len);
    dst[len] = '\0';
    *at += len + 1;
    return dst;
}

/* Copies the current row of stmt, and the room name, into a row buffer. */
static parley_err store_row_copy(store_sqlite *s, sqlite3_stmt *stmt,
                                 const char *room, parley_msg *m)
{
    parley_msg v;
    size_t lr = strlen(room), lc, la, ln;
    store_row_view(stmt, room, &v);
    lc = strlen(v.client_msg_id);
    la = strlen(v.author.id);
    ln = strlen(v.author.display_name);
    char *p = store_buf_take(s, lr + lc + la + ln + v.body_len + 5);
    if (p == NULL)
        return store_fail_msg(s, PARLEY_ERR_INTERNAL, "out of memory");
    *m = v;
    m->room = store_put(&p, room, lr);
    m->client_msg_id = store_put(&p, v.client_msg_id, lc);
    m->author.id = store_put(&p, v.author.id, la);
    m->author.display_name = store_put(&p, v.author.display_name, ln);
    m->body = store_put(&p, v.body, v.body_len);
    return PARLEY_OK;
}

static parley_err store_room_copy(store_sqlite *s, const char *name,
                                  uint64_t seq, uint64_t rev, parley_room *out)
{
    size_t len = strlen(name);
    char *p = store_buf_take(s, len + 1);
    if (p == NULL)
        return store_fail_msg(s, PARLEY_ERR_INTERNAL, "out of memory");
    out->name = store_put(&p, name, len);
    out->head_seq = seq;
    out->head_rev = rev;
    return PARLEY_OK;
}

/* Looks a room up by name (already validated). */
static parley_err store_room_find(store_sqlite *s, const char *name,
                                  int64_t *id, uint64_t *head_seq,
                                  uint64_t *head_rev)
{
    sqlite3_stmt *stmt = s->stmt[STMT_ROOM_GET];
    int rc = sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    if (rc != SQLITE_OK) return store_fail(s, rc, "bind room");
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(stmt);
        return PARLEY_ERR_ROOM_NOT_FOUND;
    }
    if (rc != SQLITE_ROW) {
        sqlite3_reset(stmt);
        return store_fail(s, rc, "read room");
    }
    *id = sqlite3_column_int64(stmt, 0);
    if (head_seq) *head_seq = (uint64_t)sqlite3_column_int64(stmt, 2);
    if (head_rev) *head_rev = (uint64_t)sqlite3_column_int64(stmt, 3);
    return store_finish(s, STMT_ROOM_GET);
}

/* ---- transactions ------------------------------------------------------ */

/* Starts a write: joins the caller's transaction under a savepoint, or
 * begins an IMMEDIATE one (which takes the write lock at once, so the
 * head counters read next cannot be stale). */
static parley_err store_write_begin(store_sqlite *s)
{
    return store_exec(s, s->base.in_txn ? STMT_SAVEPOINT : STMT_BEGIN_WRITE);
}

static parley_err store_write_end(store_sqlite *s, parley_err e)
{
    if (e == PARLEY_OK) {
        e = store_exec(s, s->base.in_txn ? STMT_RELEASE : STMT_COMMIT);
        if (e == PARLEY_OK) return PARLEY_OK;
    }
    /* Undo. A failed COMMIT or an I/O error may have ended the transaction
     * already; then there is nothing left to undo. */
    if (sqlite3_get_autocommit(s->db)) return e;
    char keep[sizeof s->err];
    memcpy(keep, s->err, sizeof keep);
    if (s->base.in_txn) {
        if (store_exec(s, STMT_ROLLBACK_TO) == PARLEY_OK)
            (void)store_exec(s, STMT_RELEASE);
    } else {
        (void)store_exec(s, STMT_ROLLBACK);
    }
    /* The first error is the one worth reporting. */
    memcpy(s->err, keep, sizeof keep);
    return e;
}

static parley_err store_sqlite_begin(store *base)
{
    return store_exec((store_sqlite *)base, STMT_BEGIN_WRITE);
}

/* store.c has already cleared base.in_txn: a failed COMMIT is rolled back
 * here, so the transaction is over either way. */
static parley_err store_sqlite_commit(store *base)
{
    store_sqlite *s = (store_sqlite *)base;
    parley_err e = store_exec(s, STMT_COMMIT);
    if (e != PARLEY_OK && !sqlite3_get_autocommit(s->db)) {
        char keep[sizeof s->err];
        memcpy(keep, s->err, sizeof keep);
        (void)store_exec(s, STMT_ROLLBACK);
        memcpy(s->err, keep, sizeof keep);
    }
    return e;
}

static void store_sqlite_rollback(store *base)
{
    store_sqlite *s = (store_sqlite *)base;
    /* An I/O error may have rolled the transaction back already. */
    if (!sqlite3_get_autocommit(s->db)) (void)store_exec(s, STMT_ROLLBACK);
}

/* ---- open / close ------------------------------------------------------ */

static int store_pragma_int(sqlite3 *db, const char *sql, int *out)
{
    sqlite3_stmt *stmt;
    int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, NULL);
    if (rc != SQLITE_OK) return rc;
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int(stmt, 0);
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_ERROR;
    }
    sqlite3_finalize(stmt);
    return rc;
}

/* Runs the migrations the file lacks, in one IMMEDIATE transaction so two
 * processes opening a new file at once do not both create the tables. */
static parley_err store_migrate(store_sqlite *s, char *errmsg, size_t errlen)
{
    int version = 0, rc;
    char *msg = NULL;

    rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK) return store_fail(s, rc, "begin migration");
    rc = store_pragma_int(s->db, "PRAGMA user_version", &version);
    if (rc != SQLITE_OK) {
        parley_err e = store_fail(s, rc, "read user_version");
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return e;
    }
    if (version > STORE_SCHEMA_VERSION) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        snprintf(errmsg, errlen,
                 "database schema version %d is newer than this parley "
                 "supports (%d); upgrade parley",
                 version, STORE_SCHEMA_VERSION);
        return PARLEY_ERR_SCHEMA_TOO_NEW;
    }
    for (int v = version; v < STORE_SCHEMA_VERSION; v++) {
        rc = sqlite3_exec(s->db, store_migrations[v], NULL, NULL, &msg);
        if (rc != SQLITE_OK) {
            snprintf(errmsg, errlen, "migration %d -> %d failed: %s", v, v + 1,
                     msg ? msg : sqlite3_errstr(rc));
            sqlite3_free(msg);
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            return store_map_rc(rc) == PARLEY_ERR_IO ? PARLEY_ERR_IO
                                                     : PARLEY_ERR_INTERNAL;
        }
    }
    rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        parley_err e = store_fail(s, rc, "commit migration");
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return e;
    }
    return PARLEY_OK;
}

static parley_err store_setup(store_sqlite *s, const char *path,
                              const store_opts *opts, char *errmsg,
                              size_t errlen)
{
    int rc, on = 0;
    parley_err e;

    rc = sqlite3_open_v2(
        path, &s->db,
        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(errmsg, errlen, "open %s: %s", path,
                 s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        return PARLEY_ERR_IO;
    }
    sqlite3_extended_result_codes(s->db, 1);
    rc = sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
    if (rc != SQLITE_OK) return store_fail(s, rc, "busy_timeout");

    /* Refuse a newer schema before changing anything in the file. */
    int version = 0;
    rc = store_pragma_int(s->db, "PRAGMA user_version", &version);
    if (rc != SQLITE_OK) return store_fail(s, rc, "read user_version");
    if (version > STORE_SCHEMA_VERSION) {
        snprintf(errmsg, errlen,
                 "database schema version %d is newer than this parley "
                 "supports (%d); upgrade parley",
                 version, STORE_SCHEMA_VERSION);
        return PARLEY_ERR_SCHEMA_TOO_NEW;
    }

    sqlite3_stmt *stmt;
    rc =
        sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &stmt, NULL);
    if (rc != SQLITE_OK) return store_fail(s, rc, "journal_mode");
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        const char *mode = (const char *)sqlite3_column_text(stmt, 0);
        /* An in-memory database (tests) has no WAL; files must. */
        if (mode == NULL ||
            (strcmp(mode, "wal") != 0 && strcmp(mode, "memory") != 0)) {
            snprintf(s->err, sizeof s->err, "journal_mode is %s, not wal",
                     mode ? mode : "?");
            sqlite3_finalize(stmt);
            return PARLEY_ERR_IO;
        }
        rc = SQLITE_OK;
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_OK) return store_fail(s, rc, "journal_mode");

    /* An ack promises durability: read the level back and refuse to run
     * with anything but what was asked (a build or a setting that quietly
     * weakened it would otherwise go unnoticed). */
    int full = opts == NULL || opts->synchronous_full != 0;
    int want = full ? STORE_SYNC_FULL : STORE_SYNC_NORMAL, got = -1;
    rc = sqlite3_exec(s->db,
                      full ? "PRAGMA synchronous = FULL"
                           : "PRAGMA synchronous = NORMAL",
                      NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = store_pragma_int(s->db, "PRAGMA synchronous", &got);
    if (rc != SQLITE_OK) return store_fail(s, rc, "synchronous");
    if (got != want) {
        snprintf(errmsg, errlen, "PRAGMA synchronous is %d after asking for %d",
                 got, want);
        return PARLEY_ERR_INTERNAL;
    }
    rc = sqlite3_exec(s->db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
    if (rc != SQLITE_OK) return store_fail(s, rc, "foreign_keys");
    rc = store_pragma_int(s->db, "PRAGMA foreign_keys", &on);
    if (rc != SQLITE_OK) return store_fail(s, rc, "foreign_keys");
    if (!on)
        return store_fail_msg(s, PARLEY_ERR_INTERNAL,
                              "foreign keys are not supported");

    e = store_migrate(s, errmsg, errlen);
    if (e != PARLEY_OK) return e;

    for (int i = 0; i < STMT__COUNT; i++) {
        rc = sqlite3_prepare_v3(s->db, store_sql[i], -1,
                                SQLITE_PREPARE_PERSISTENT, &s->stmt[i], NULL);
        if (rc != SQLITE_OK) return store_fail(s, rc, store_sql[i]);
    }
    return PARLEY_OK;
}

static void store_sqlite_close(store *base);

/* Every target that is not a URI is a file path. */
static int store_sqlite_serves(const char *target)
{
    return strstr(target, "://") == NULL;
}

static parley_err store_sqlite_open(const char *path, const store_opts *opts,
                                    store **out, char *errmsg, size_t errlen)
{
    store_sqlite *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(errmsg, errlen, "out of memory");
        return PARLEY_ERR_INTERNAL;
    }
    parley_err e = store_setup(s, path, opts, errmsg, errlen);
    if (e != PARLEY_OK) {
        if (errmsg[0] == '\0') snprintf(errmsg, errlen, "%s", s->err);
        store_sqlite_close(&s->base);
        return e;
    }
    *out = &s->base;
    return PARLEY_OK;
}

static void store_sqlite_close(store *base)
{
    store_sqlite *s = (store_sqlite *)base;
    if (s->db) {
        if (!sqlite3_get_autocommit(s->db))
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        for (int i = 0; i < STMT__COUNT; i++) sqlite3_finalize(s->stmt[i]);
        int rc = sqlite3_close(s->db);
        if (rc != SQLITE_OK) {
            /* Only a statement we failed to finalize could cause this. */
            fprintf(stderr, "store_close: %s\n", sqlite3_errmsg(s->db));
            sqlite3_close_v2(s->db);
        }
    }
    free(s->buf[0]);
    free(s->buf[1]);
    free(s);
}

static int store_sqlite_synchronous(store *base)
{
    store_sqlite *s = (store_sqlite *)base;
    int level = -1;
    if (store_pragma_int(s->db, "PRAGMA synchronous", &level) != SQLITE_OK)
        return -1;
    return level;
}

static const char *store_sqlite_last_error(const store *base)
{
    const store_sqlite *s = (const store_sqlite *)base;
    return s->err[0] ? s->err : "no error";
}

/* ---- rooms ------------------------------------------------------------- */

static parley_err store_sqlite_room_create(store *base, const char *name,
                                           int64_t now_ms, parley_room *out,
                                           int *created)
{
    store_sqlite *s = (store_sqlite *)base;
    int64_t id;
    uint64_t seq = 0, rev = 0;
    int fresh = 0;

    parley_err e = store_write_begin(s);
    if (e != PARLEY_OK) return e;

    sqlite3_stmt *stmt = s->stmt[STMT_ROOM_INSERT];
    int rc = sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(stmt, 2, now_ms);
    if (rc != SQLITE_OK) e = store_fail(s, rc, "bind room insert");
    if (e == PARLEY_OK) e = store_exec(s, STMT_ROOM_INSERT);
    if (e == PARLEY_OK) {
        fresh = sqlite3_changes(s->db) > 0;
        e = store_room_find(s, name, &id, &seq, &rev);
    }
    e = store_write_end(s, e);
    if (e != PARLEY_OK) return e;
    *created = fresh;
    return store_room_copy(s, name, seq, rev, out);
}

static parley_err store_sqlite_room_get(store *base, const char *name,
                                        parley_room *out)
{
    store_sqlite *s = (store_sqlite *)base;
    int64_t id;
    uint64_t seq, rev;

    parley_err e = store_room_find(s, name, &id, &seq, &rev);
    if (e != PARLEY_OK) return e;
    return store_room_copy(s, name, seq, rev, out);
}

static parley_err store_sqlite_room_list(store *base, const char *after,
                                         unsigned limit, store_room_fn fn,
                                         void *ud, int *has_more)
{
    store_sqlite *s = (store_sqlite *)base;
    sqlite3_stmt *stmt = s->stmt[STMT_ROOM_LIST];
    unsigned n = 0;
    int rc, more = 0;

    /* One statement is one read transaction: the page is consistent. The
     * extra row asked for tells has_more. */
    rc = sqlite3_bind_text(stmt, 1, after, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(stmt, 2, (int64_t)limit + 1);
    if (rc != SQLITE_OK) return store_fail(s, rc, "bind room list");
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (n == limit) {
            more = 1;
            break;
        }
        n++;
        parley_room r;
        size_t len;
        r.name = store_col_text(stmt, 0, &len);
        r.head_seq = (uint64_t)sqlite3_column_int64(stmt, 1);
        r.head_rev = (uint64_t)sqlite3_column_int64(stmt, 2);
        if (fn && fn(&r, ud) != 0) {
            rc = sqlite3_step(stmt);
            more = rc == SQLITE_ROW;
            break;
        }
    }
    sqlite3_reset(stmt);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return store_fail(s, rc, store_sql[STMT_ROOM_LIST]);
    *has_more = more;
    return PARLEY_OK;
}

/* How many commits a probe makes (store_sqlite_probe). */
#define STORE_PROBE_COMMITS 16

/* Rewrites the schema version with the value it has, in a write
 * transaction of its own, STORE_PROBE_COMMITS times: each commit appends
 * the database header page to the WAL and syncs it like any commit, so the
 * probe succeeds only if about 64 KiB more fit after the last commit (the
 * size of a group commit of a few dozen messages; one page alone would
 * still fit where a failed commit had begun to write). No room, message or
 * version changes. (An UPDATE that sets a column to its own value would
 * not do: SQLite writes nothing for it.) */
static parley_err store_sqlite_probe(store *base)
{
    store_sqlite *s = (store_sqlite *)base;
    char sql[64];
    int version = 0;

    for (int i = 0; i < STORE_PROBE_COMMITS; i++) {
        parley_err e = store_exec(s, STMT_BEGIN_WRITE);
        if (e != PARLEY_OK) return e;
        int rc = store_pragma_int(s->db, "PRAGMA user_version", &version);
        if (rc == SQLITE_OK) {
            snprintf(sql, sizeof sql, "PRAGMA user_version = %d", version);
            rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
        }
        if (rc != SQLITE_OK) e = store_fail(s, rc, "probe write");
        if (e == PARLEY_OK) e = store_exec(s, STMT_COMMIT);
        if (e != PARLEY_OK) {
            if (!sqlite3_get_autocommit(s->db)) {
                char keep[sizeof s->err];
                memcpy(keep, s->err, sizeof keep);
                (void)store_exec(s, STMT_ROLLBACK);
                memcpy(s->err, keep, sizeof keep);
            }
            return e;
        }
    }
    return PARLEY_OK;
}

/* ---- messages ---------------------------------------------------------- */

/* Steps statement id (bound already) for at most one message row and copies
 * it into out: MESSAGE_NOT_FOUND when there is none. */
static parley_err store_msg_one(store_sqlite *s, int id, const char *room,
                                parley_msg *out, const char *what)
{
    sqlite3_stmt *stmt = s->stmt[id];
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(stmt);
        return PARLEY_ERR_MESSAGE_NOT_FOUND;
    }
    if (rc != SQLITE_ROW) {
        sqlite3_reset(stmt);
        return store_fail(s, rc, what);
    }
    parley_err e = store_row_copy(s, stmt, room, out);
    parley_err f = store_finish(s, id);
    return e != PARLEY_OK ? e : f;
}

/* Reads message (room_id, seq) into the row buffer. */
static parley_err store_msg_read(store_sqlite *s, int64_t room_id, uint64_t seq,
                                 const char *room, parley_msg *out)
{
    sqlite3_stmt *stmt = s->stmt[STMT_MSG_GET];
    int rc = sqlite3_bind_int64(stmt, 1, room_id);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 2, store_u64_to_i64(seq));
    if (rc != SQLITE_OK) return store_fail(s, rc, "bind message get");
    return store_msg_one(s, STMT_MSG_GET, room, out, "read message");
}

/* Runs a write statement with RETURNING MSG_COLS (bound already) and copies
 * the returned row. */
static parley_err store_msg_write(store_sqlite *s, int id, const char *room,
                                  parley_msg *out)
{
    sqlite3_stmt *stmt = s->stmt[id];
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(stmt);
        if (rc == SQLITE_DONE)
            return store_fail_msg(s, PARLEY_ERR_INTERNAL,
                                  "write returned no row");
        return store_fail(s, rc, store_sql[id]);
    }
    parley_err e = store_row_copy(s, stmt, room, out);
    parley_err f = store_finish(s, id);
    return e != PARLEY_OK ? e : f;
}

/* Takes the room's next rev (and next seq if seq_out is given). */
static parley_err store_room_bump(store_sqlite *s, int64_t room_id,
                                  uint64_t *seq_out, uint64_t *rev_out)
{
    int id = seq_out ? STMT_ROOM_BUMP_SEQ : STMT_ROOM_BUMP_REV;
    sqlite3_stmt *stmt = s->stmt[id];
    int rc = sqlite3_bind_int64(stmt, 1, room_id);
    if (rc != SQLITE_OK) return store_fail(s, rc, "bind room bump");
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(stmt);
        if (rc == SQLITE_DONE)
            return store_fail_msg(s, PARLEY_ERR_INTERNAL, "room vanished");
        return store_fail(s, rc, store_sql[id]);
    }
    if (seq_out) {
        *seq_out = (uint64_t)sqlite3_column_int64(stmt, 0);
        *rev_out = (uint64_t)sqlite3_column_int64(stmt, 1);
        /* every message takes a rev too, so rev never trails seq */
        assert(*seq_out >= 1 && *rev_out >= *seq_out);
    } else {
        *rev_out = (uint64_t)sqlite3_column_int64(stmt, 0);
        assert(*rev_out >= 1);
    }
    return store_finish(s, id);
}

/* Looks for (room, author, client id); PARLEY_OK with a copy in out if it
 * exists, MESSAGE_NOT_FOUND if not. */
static parley_err store_find_client_id(store_sqlite *s, int64_t room_id,
                                       const char *room,
                                       const parley_author *author,
                                       const char *client_msg_id,
                                       parley_msg *out)
{
    sqlite3_stmt *stmt = s->stmt[STMT_MSG_BY_CLIENT_ID];
    int rc = sqlite3_bind_int64(stmt, 1, room_id);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 2, author->id, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 3, client_msg_id, -1, SQLITE_STATIC);
    if (rc != SQLITE_OK) return store_fail(s, rc, "bind client id");
    return store_msg_one(s, STMT_MSG_BY_CLIENT_ID, room, out, "read client id");
}

static parley_err store_sqlite_append(store *base, const char *room,
                                      const parley_author *author,
                                      const char *client_msg_id,
                                      const char *body, size_t body_len,
                                      int64_t now_ms, parley_msg *out,
                                      int *duplicate)
{
    store_sqlite *s = (store_sqlite *)base;
    parley_err e;
    int64_t room_id;
    uint64_t seq, rev;

    if ((e = store_write_begin(s)) != PARLEY_OK) return e;
    e = store_room_find(s, room, &room_id, NULL, NULL);
    if (e == PARLEY_OK) {
        e = store_find_client_id(s, room_id, room, author, client_msg_id, out);
        if (e == PARLEY_OK) {
            *duplicate = 1;
            return store_write_end(s, PARLEY_OK);
        }
        if (e == PARLEY_ERR_MESSAGE_NOT_FOUND) e = PARLEY_OK;
    }
    if (e == PARLEY_OK) e = store_room_bump(s, room_id, &seq, &rev);
    if (e == PARLEY_OK) {
        sqlite3_stmt *stmt = s->stmt[STMT_MSG_INSERT];
        int rc = sqlite3_bind_int64(stmt, 1, room_id);
        if (rc == SQLITE_OK) rc = sqlite3_bind_int64(stmt, 2, (int64_t)seq);
        if (rc == SQLITE_OK) rc = sqlite3_bind_int64(stmt, 3, (int64_t)rev);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_text(stmt, 4, client_msg_id, -1, SQLITE_STATIC);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_text(stmt, 5, author->id, -1, SQLITE_STATIC);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_text(stmt, 6, author->display_name, -1,
                                   SQLITE_STATIC);
        if (rc == SQLITE_OK) rc = sqlite3_bind_int(stmt, 7, author->role);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_text(stmt, 8, body, (int)body_len, SQLITE_STATIC);
        if (rc == SQLITE_OK) rc = sqlite3_bind_int64(stmt, 9, now_ms);
        if (rc != SQLITE_OK)
            e = store_fail(s, rc, "bind message insert");
        else
            e = store_msg_write(s, STMT_MSG_INSERT, room, out);
    }
    return store_write_end(s, e);
}

static parley_err store_sqlite_get(store *base, const char *room, uint64_t seq,
                                   parley_msg *out)
{
    store_sqlite *s = (store_sqlite *)base;
    int64_t room_id;

    /* Rooms are never removed, so the two reads need no common snapshot. */
    parley_err e = store_room_find(s, room, &room_id, NULL, NULL);
    if (e != PARLEY_OK) return e;
    return store_msg_read(s, room_id, seq, room, out);
}

/* Shared start of edit and delete: the room, the message, the permission.
 * The message is left in out. */
static parley_err store_modify_check(store_sqlite *s, const char *room,
                                     uint64_t seq, const parley_author *actor,
                                     int64_t *room_id, parley_msg *out)
{
    parley_err e = store_room_find(s, room, room_id, NULL, NULL);
    if (e == PARLEY_OK) e = store_msg_read(s, *room_id, seq, room, out);
    if (e == PARLEY_OK) e = rules_may_modify(actor, out->author.id);
    return e;
}

static parley_err store_sqlite_edit(store *base, const char *room, uint64_t seq,
                                    const parley_author *actor,
                                    const char *body, size_t body_len,
                                    int64_t now_ms, parley_msg *out)
{
    store_sqlite *s = (store_sqlite *)base;
    parley_err e;
    int64_t room_id;
    uint64_t rev;
    parley_msg cur;

    /* The arguments may point into the previous result's buffer; the reads
     * below fill the other one, so they stay valid until the write. */
    if ((e = store_write_begin(s)) != PARLEY_OK) return e;
    e = store_modify_check(s, room, seq, actor, &room_id, &cur);
    if (e == PARLEY_OK && cur.deleted) e = PARLEY_ERR_MESSAGE_DELETED;
    if (e == PARLEY_OK) e = store_room_bump(s, room_id, NULL, &rev);
    if (e == PARLEY_OK) {
        sqlite3_stmt *stmt = s->stmt[STMT_MSG_EDIT];
        int rc = sqlite3_bind_int64(stmt, 1, room_id);
        if (rc == SQLITE_OK) rc = sqlite3_bind_int64(stmt, 2, (int64_t)cur.seq);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_text(stmt, 3, body, (int)body_len, SQLITE_STATIC);
        if (rc == SQLITE_OK) rc = sqlite3_bind_int64(stmt, 4, (int64_t)rev);
        if (rc == SQLITE_OK) rc = sqlite3_bind_int64(stmt, 5, now_ms);
        if (rc != SQLITE_OK) e = store_fail(s, rc, "bind message edit");
        /* cur (the read) is in one buffer; the write's copy goes to the
         * other, which the caller's arguments may live in: they have been
         * consumed by the first step before the copy is made. */
        else
            e = store_msg_write(s, STMT_MSG_EDIT, cur.room, out);
    }
    return store_write_end(s, e);
}

static parley_err store_sqlite_delete(store *base, const char *room,
                                      uint64_t seq, const parley_author *actor,
                                      int64_t now_ms, parley_msg *out)
{
    store_sqlite *s = (store_sqlite *)base;
    parley_err e;
    int64_t room_id;
    uint64_t rev;

    if ((e = store_write_begin(s)) != PARLEY_OK) return e;
    e = store_modify_check(s, room, seq, actor, &room_id, out);
    if (e == PARLEY_OK && out->deleted) {
        /* Already a tombstone: unchanged, no new rev. */
        return store_write_end(s, PARLEY_OK);
    }
    if (e == PARLEY_OK) e = store_room_bump(s, room_id, NULL, &rev);
    if (e == PARLEY_OK) {
        sqlite3_stmt *stmt = s->stmt[STMT_MSG_DELETE];
        int rc = sqlite3_bind_int64(stmt, 1, room_id);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(stmt, 2, (int64_t)out->seq);
        if (rc == SQLITE_OK) rc = sqlite3_bind_int64(stmt, 3, (int64_t)rev);
        if (rc == SQLITE_OK) rc = sqlite3_bind_int64(stmt, 4, now_ms);
        if (rc != SQLITE_OK)
            e = store_fail(s, rc, "bind message delete");
        else
            e = store_msg_write(s, STMT_MSG_DELETE, out->room, out);
    }
    return store_write_end(s, e);
}

/* ---- list -------------------------------------------------------------- */

/* Runs the bound page statement, calling fn per row. For AFTER_REV it was
 * bound with limit + 1 rows so the extra one tells has_more. */
static parley_err store_list_rows(store_sqlite *s, int id, const char *room,
                                  unsigned limit, store_msg_fn fn, void *ud,
                                  int *more_rows)
{
    sqlite3_stmt *stmt = s->stmt[id];
    unsigned n = 0;
    int rc;
    parley_msg m;

    *more_rows = 0;
    assert(limit >= 1);
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (n == limit) {
            *more_rows = 1;
            break;
        }
        n++;
        store_row_view(stmt, room, &m);
        if (fn && fn(&m, ud) != 0) {
            /* Stopped early: is there anything after this row? */
            rc = sqlite3_step(stmt);
            if (rc == SQLITE_ROW) *more_rows = 1;
            break;
        }
    }
    sqlite3_reset(stmt);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return store_fail(s, rc, store_sql[id]);
    return PARLEY_OK;
}

static parley_err store_sqlite_list(store *base, const char *room,
                                    store_dir dir, uint64_t cursor,
                                    unsigned limit, store_msg_fn fn, void *ud,
                                    parley_room *room_out, int *has_more)
{
    store_sqlite *s = (store_sqlite *)base;
    parley_err e;
    int64_t room_id;
    uint64_t head_seq = 0, head_rev = 0;
    int own, more = 0, rc, id;
    sqlite3_stmt *stmt;

    /* One read transaction for the heads and the page (unless the caller's
     * write transaction is open, which is just as consistent). */
    own = sqlite3_get_autocommit(s->db);
    if (own && (e = store_exec(s, STMT_BEGIN_READ)) != PARLEY_OK) return e;

    e = store_room_find(s, room, &room_id, &head_seq, &head_rev);
    if (e != PARLEY_OK) goto done;

    if (dir == STORE_AFTER_REV) {
        id = STMT_LIST_AFTER_REV;
        stmt = s->stmt[id];
        rc = sqlite3_bind_int64(stmt, 1, room_id);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(stmt, 2, store_u64_to_i64(cursor));
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(stmt, 3, (int64_t)limit + 1);
        if (rc != SQLITE_OK) {
            e = store_fail(s, rc, "bind list");
            goto done;
        }
        e = store_list_rows(s, id, room, limit, fn, ud, &more);
    } else {
        /* seq is dense 1..head_seq: the page is [lo, hi]. */
        uint64_t hi = head_seq, lo;
        if (dir == STORE_BEFORE_SEQ) {
            if (cursor == 0)
                hi = 0;
            else if (cursor - 1 < hi)
                hi = cursor - 1;
        }
        lo = hi > limit ? hi - limit + 1 : 1;
        assert(hi == 0 || (lo <= hi && hi - lo < limit));
        more = hi > 0 && lo > 1;
        if (hi > 0) {
            int more_rows;
            id = STMT_LIST_SEQ_RANGE;
            stmt = s->stmt[id];
            rc = sqlite3_bind_int64(stmt, 1, room_id);
            if (rc == SQLITE_OK) rc = sqlite3_bind_int64(stmt, 2, (int64_t)lo);
            if (rc == SQLITE_OK) rc = sqlite3_bind_int64(stmt, 3, (int64_t)hi);
            if (rc != SQLITE_OK) {
                e = store_fail(s, rc, "bind list");
                goto done;
            }
            e = store_list_rows(s, id, room, limit, fn, ud, &more_rows);
        }
    }

done:
    if (own) {
        /* Ends the read transaction; on success COMMIT, else ROLLBACK. */
        parley_err f =
            store_exec(s, e == PARLEY_OK ? STMT_COMMIT : STMT_ROLLBACK);
        if (e == PARLEY_OK) e = f;
    }
    if (e != PARLEY_OK) return e;
    *has_more = more;
    if (room_out) return store_room_copy(s, room, head_seq, head_rev, room_out);
    return PARLEY_OK;
}

const store_engine store_engine_sqlite = {
    .name = "sqlite",
    .serves = store_sqlite_serves,
    .open = store_sqlite_open,
    .close = store_sqlite_close,
    .last_error = store_sqlite_last_error,
    .synchronous = store_sqlite_synchronous,
    .begin = store_sqlite_begin,
    .commit = store_sqlite_commit,
    .rollback = store_sqlite_rollback,
    .room_create = store_sqlite_room_create,
    .room_get = store_sqlite_room_get,
    .room_list = store_sqlite_room_list,
    .probe = store_sqlite_probe,
    .append = store_sqlite_append,
    .get = store_sqlite_get,
    .edit = store_sqlite_edit,
    .remove = store_sqlite_delete,
    .list = store_sqlite_list,
};
