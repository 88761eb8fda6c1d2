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
 * Appends, the hot path, do less: a room's id and head counters are read
 * once per transaction into `heads` (the write lock is held from BEGIN
 * IMMEDIATE, so no other handle can move them), each append is then one
 * INSERT that takes the next seq and rev from there and skips a duplicate
 * client id by the unique index (ON CONFLICT DO NOTHING; a statement that
 * fails undoes only itself, so no savepoint is needed), and the counters
 * are written back in one UPDATE per room before COMMIT, or before any
 * other statement of the transaction that reads or moves them.
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
/* How much of the file a reader handle maps (SQLite caps it at its
 * compile-time limit, 2 GiB in Debian's build). */
#define STORE_READER_MMAP "1073741824"

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
    /* 1 -> 2: room settings, members, sanctions, actions. A deleted room
     * keeps its row (deleted = 1, counters kept) so that creating the name
     * again goes on counting where it stopped. */
    "ALTER TABLE rooms ADD COLUMN title TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE rooms ADD COLUMN topic TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE rooms ADD COLUMN visibility INTEGER NOT NULL DEFAULT 1;"
    "ALTER TABLE rooms ADD COLUMN mode INTEGER NOT NULL DEFAULT 1;"
    "ALTER TABLE rooms ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE rooms ADD COLUMN head_action INTEGER NOT NULL DEFAULT 0;"
    /* seqs up to base_seq went with a deletion of the room */
    "ALTER TABLE rooms ADD COLUMN base_seq INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE room_members("
    "  room_id INTEGER NOT NULL REFERENCES rooms(id),"
    "  user_id TEXT NOT NULL,"
    "  role INTEGER NOT NULL,"
    "  added_by TEXT NOT NULL,"
    "  added_ms INTEGER NOT NULL,"
    "  PRIMARY KEY(room_id, user_id)) WITHOUT ROWID;"
    "CREATE TABLE room_sanctions("
    "  room_id INTEGER NOT NULL REFERENCES rooms(id),"
    "  user_id TEXT NOT NULL,"
    "  kind INTEGER NOT NULL,"
    "  until_ms INTEGER NOT NULL,"
    "  PRIMARY KEY(room_id, user_id, kind)) WITHOUT ROWID;"
    "CREATE TABLE room_actions("
    "  room_id INTEGER NOT NULL REFERENCES rooms(id),"
    "  id INTEGER NOT NULL,"
    "  kind INTEGER NOT NULL,"
    "  actor_id TEXT NOT NULL,"
    "  actor_name TEXT NOT NULL,"
    "  actor_role INTEGER NOT NULL,"
    "  target_user_id TEXT NOT NULL,"
    "  at_ms INTEGER NOT NULL,"
    "  until_ms INTEGER NOT NULL,"
    "  reason TEXT NOT NULL,"
    "  mode INTEGER NOT NULL,"
    "  visibility INTEGER NOT NULL,"
    "  role INTEGER NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  count INTEGER NOT NULL,"
    "  PRIMARY KEY(room_id, id)) WITHOUT ROWID;"
    "CREATE TABLE room_reads("
    "  room_id INTEGER NOT NULL REFERENCES rooms(id),"
    "  user_id TEXT NOT NULL,"
    "  last_read_seq INTEGER NOT NULL,"
    "  last_read_rev INTEGER NOT NULL,"
    "  at_ms INTEGER NOT NULL,"
    "  PRIMARY KEY(room_id, user_id)) WITHOUT ROWID;"
    "PRAGMA user_version = 2;",
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

/* A room's settings, after its counters in every statement that reads
 * both. */
#define ROOM_SETTINGS "title, topic, visibility, mode"
/* One user's standing in a room (the user id is parameter ?9, bound by
 * store_bind_user; NULL gives NULLs): the member role, the mute's and the
 * removal's end (NULL when none). */
#define STANDING_COLS \
    "m.role, mu.until_ms, rm.until_ms, rd.last_read_seq, rd.last_read_rev"
#define STANDING_JOINS                                      \
    " LEFT JOIN room_members m ON m.room_id = rooms.id"     \
    " AND m.user_id = ?9"                                   \
    " LEFT JOIN room_sanctions mu ON mu.room_id = rooms.id" \
    " AND mu.user_id = ?9 AND mu.kind = 1"                  \
    " LEFT JOIN room_sanctions rm ON rm.room_id = rooms.id" \
    " AND rm.user_id = ?9 AND rm.kind = 2"                  \
    " LEFT JOIN room_reads rd ON rd.room_id = rooms.id AND rd.user_id = ?9"
#define MEMBER_COLS "user_id, role, added_by, added_ms"
#define ACTION_COLS                                                      \
    "id, kind, actor_id, actor_name, actor_role, target_user_id, at_ms," \
    " until_ms, reason, mode, visibility, role, seq, count"

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
    STMT_ROOM_SET_HEADS,
    STMT_SNAPSHOT,
    STMT_MSG_BY_CLIENT_ID,
    STMT_MSG_GET,
    STMT_MSG_EDIT,
    STMT_MSG_DELETE,
    STMT_LIST_SEQ_RANGE,
    STMT_LIST_AFTER_REV,
    STMT_ROOM_UPDATE,
    STMT_ROOM_DELETE_MESSAGES,
    STMT_ROOM_DELETE_MEMBERS,
    STMT_ROOM_DELETE_SANCTIONS,
    STMT_ROOM_DELETE_ACTIONS,
    STMT_ROOM_MARK_DELETED,
    STMT_ROOM_ACCESS,
    STMT_ROOM_LIST_FOR,
    STMT_ROOM_IDS,
    STMT_MEMBER_UPSERT,
    STMT_MEMBER_GET,
    STMT_MEMBER_DELETE,
    STMT_MEMBER_LIST,
    STMT_SANCTION_PUT,
    STMT_SANCTION_DELETE,
    STMT_ACTION_BUMP,
    STMT_ACTION_INSERT,
    STMT_ACTION_LIST,
    STMT_ERASE_FIND,
    STMT_ERASE_ONE,
    STMT_READ_MARK,
    STMT_UNREAD,
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
    /* A deleted room's name is created again in its old row. */
    [STMT_ROOM_INSERT] =
        "INSERT INTO rooms(name, created_ms, title, topic, visibility, mode)"
        " VALUES(?1, ?2, ?3, ?4, ?5, ?6)"
        " ON CONFLICT(name) DO UPDATE SET deleted = 0,"
        " created_ms = excluded.created_ms, title = excluded.title,"
        " topic = excluded.topic, visibility = excluded.visibility,"
        " mode = excluded.mode WHERE deleted = 1",
    [STMT_ROOM_GET] =
        "SELECT id, name, head_seq, head_rev, base_seq, " ROOM_SETTINGS
        " FROM rooms WHERE name = ?1 AND deleted = 0",
    [STMT_ROOM_BUMP_SEQ] =
        "UPDATE rooms SET head_seq = head_seq + 1, head_rev = head_rev + 1"
        " WHERE id = ?1 RETURNING head_seq, head_rev",
    [STMT_ROOM_BUMP_REV] =
        "UPDATE rooms SET head_rev = head_rev + 1 WHERE id = ?1"
        " RETURNING head_rev",
    [STMT_MSG_INSERT] =
        "INSERT INTO messages(room_id, seq, rev, client_msg_id, author_id,"
        " author_name, author_role, body, created_ms)"
        " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
        " ON CONFLICT(room_id, author_id, client_msg_id) DO NOTHING",
    [STMT_ROOM_SET_HEADS] =
        "UPDATE rooms SET head_seq = ?2, head_rev = ?3 WHERE id = ?1",
    [STMT_SNAPSHOT] = "SELECT 1 FROM rooms LIMIT 1",
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
    [STMT_ROOM_UPDATE] = "UPDATE rooms SET title = ?2, topic = ?3,"
                         " visibility = ?4, mode = ?5 WHERE id = ?1",
    [STMT_ROOM_DELETE_MESSAGES] = "DELETE FROM messages WHERE room_id = ?1",
    [STMT_ROOM_DELETE_MEMBERS] = "DELETE FROM room_members WHERE room_id = ?1",
    [STMT_ROOM_DELETE_SANCTIONS] =
        "DELETE FROM room_sanctions WHERE room_id = ?1",
    [STMT_ROOM_DELETE_ACTIONS] = "DELETE FROM room_actions WHERE room_id = ?1",
    [STMT_ROOM_MARK_DELETED] =
        "UPDATE rooms SET deleted = 1, title = '', topic = '',"
        " visibility = 1, mode = 1, base_seq = head_seq WHERE id = ?1",
    [STMT_ROOM_ACCESS] =
        "SELECT " ROOM_SETTINGS ", " STANDING_COLS " FROM rooms" STANDING_JOINS
        " WHERE name = ?1 AND deleted = 0",
    /* name is UNIQUE: its index gives the order without a sort. The
     * prefix is a range of it: every name starting with ?2 sorts below ?2
     * followed by '~', above every character a room name may hold. */
    [STMT_ROOM_LIST_FOR] =
        "SELECT name, head_seq, head_rev, " ROOM_SETTINGS ", " STANDING_COLS
        " FROM rooms" STANDING_JOINS
        " WHERE name > ?1 AND name >= ?2 AND name < ?2 || '~'"
        " AND deleted = 0 ORDER BY name LIMIT ?3",
    [STMT_ROOM_IDS] =
        "SELECT id, name FROM rooms WHERE deleted = 0 ORDER BY name",
    /* An unchanged role is no change: no row comes back. */
    [STMT_MEMBER_UPSERT] =
        "INSERT INTO room_members(room_id, user_id, role, added_by, added_ms)"
        " VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(room_id, user_id) DO UPDATE"
        " SET role = excluded.role, added_by = excluded.added_by,"
        " added_ms = excluded.added_ms WHERE role != excluded.role"
        " RETURNING " MEMBER_COLS,
    [STMT_MEMBER_GET] = "SELECT " MEMBER_COLS " FROM room_members"
                        " WHERE room_id = ?1 AND user_id = ?2",
    [STMT_MEMBER_DELETE] =
        "DELETE FROM room_members WHERE room_id = ?1 AND user_id = ?2",
    [STMT_MEMBER_LIST] = "SELECT " MEMBER_COLS " FROM room_members"
                         " WHERE room_id = ?1 AND user_id > ?2"
                         " ORDER BY user_id LIMIT ?3",
    [STMT_SANCTION_PUT] =
        "INSERT INTO room_sanctions(room_id, user_id, kind, until_ms)"
        " VALUES(?1, ?2, ?3, ?4) ON CONFLICT(room_id, user_id, kind)"
        " DO UPDATE SET until_ms = excluded.until_ms",
    [STMT_SANCTION_DELETE] =
        "DELETE FROM room_sanctions"
        " WHERE room_id = ?1 AND user_id = ?2 AND kind = ?3",
    [STMT_ACTION_BUMP] = "UPDATE rooms SET head_action = head_action + 1"
                         " WHERE id = ?1 RETURNING head_action",
    [STMT_ACTION_INSERT] =
        "INSERT INTO room_actions(room_id, " ACTION_COLS ")"
        " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,"
        " ?15)",
    [STMT_ACTION_LIST] = "SELECT " ACTION_COLS " FROM room_actions"
                         " WHERE room_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
    /* (room_id, author_id, client_msg_id) is indexed: a prefix of it. */
    [STMT_ERASE_FIND] = "SELECT seq FROM messages WHERE room_id = ?1"
                        " AND author_id = ?2 AND deleted = 0 ORDER BY seq",
    [STMT_ERASE_ONE] =
        "UPDATE messages SET body = '', deleted = 1, author_name = '',"
        " rev = ?3, edited_ms = ?4 WHERE room_id = ?1 AND seq = ?2"
        " RETURNING " MSG_COLS,
    [STMT_READ_MARK] =
        "INSERT INTO room_reads(room_id, user_id, last_read_seq,"
        " last_read_rev, at_ms) VALUES(?1, ?2, ?3, ?4, ?5)"
        " ON CONFLICT(room_id, user_id) DO UPDATE SET"
        " last_read_seq = max(last_read_seq, excluded.last_read_seq),"
        " last_read_rev = max(last_read_rev, excluded.last_read_rev),"
        " at_ms = excluded.at_ms RETURNING last_read_seq, last_read_rev",
    /* A range of the primary key, counted up to a cap. */
    [STMT_UNREAD] = "SELECT count(*) FROM (SELECT 1 FROM messages"
                    " WHERE room_id = ?1 AND seq > ?2 AND deleted = 0"
                    " AND author_id != ?3 LIMIT ?4)",
};

/* A room the open transaction appended to: its id and head counters as of
 * now in the transaction (see the top comment). */
typedef struct store_head {
    char name[RULES_ROOM_MAX + 1]; /* "" = a free slot */
    int64_t id;
    uint64_t seq, rev;
    int dirty; /* seq / rev not yet written back */
} store_head;

/* The engine's handle; `base` first, as store_engine.h asks. */
typedef struct store_sqlite {
    store base;
    sqlite3 *db;
    sqlite3_stmt *stmt[STMT__COUNT];
    /* heads: open addressing, a power of two in size, at most half full;
     * empty outside a write transaction. */
    store_head *heads;
    size_t heads_cap, heads_n;
    size_t log_pages; /* after store_own_checkpoints: the log's size */
    /* Two row buffers used in turn by the single-row calls. */
    store_rows rows; /* the strings of results (store_rows_take) */
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
    snprintf(s->err, sizeof s->err, "%.200s: %s (sqlite %d)", what,
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
    char *p = store_rows_take(&s->rows, lr + lc + la + ln + v.body_len + 5);
    if (p == NULL)
        return store_fail_msg(s, PARLEY_ERR_INTERNAL, "out of memory");
    *m = v;
    m->room = store_rows_put(&p, room, lr);
    m->client_msg_id = store_rows_put(&p, v.client_msg_id, lc);
    m->author.id = store_rows_put(&p, v.author.id, la);
    m->author.display_name = store_rows_put(&p, v.author.display_name, ln);
    m->body = store_rows_put(&p, v.body, v.body_len);
    return PARLEY_OK;
}

/* Column order of STMT_ROOM_GET: id, name, head_seq, head_rev, base_seq,
 * then the settings. */
enum { ROOM_COL_BASE = 4, ROOM_COL_SETTINGS = 5 };

/* The settings columns of stmt from col on, as views into its row. */
static void store_settings_view(sqlite3_stmt *stmt, int col, parley_room *r)
{
    size_t n;
    r->title = store_col_text(stmt, col, &n);
    r->topic = store_col_text(stmt, col + 1, &n);
    r->visibility = sqlite3_column_int(stmt, col + 2);
    r->mode = sqlite3_column_int(stmt, col + 3);
}

/* Copies room v (views into a row) into a row buffer as out. */
static parley_err store_room_keep(store_sqlite *s, const parley_room *v,
                                  parley_room *out)
{
    size_t ln = strlen(v->name), lt = strlen(v->title), lp = strlen(v->topic);
    char *p = store_rows_take(&s->rows, ln + lt + lp + 3);
    if (p == NULL)
        return store_fail_msg(s, PARLEY_ERR_INTERNAL, "out of memory");
    *out = *v;
    out->name = store_rows_put(&p, v->name, ln);
    out->title = store_rows_put(&p, v->title, lt);
    out->topic = store_rows_put(&p, v->topic, lp);
    return PARLEY_OK;
}

/* Reads the whole room (counters and settings) into a row buffer; its id
 * into *id if given. ROOM_NOT_FOUND for none (or a deleted one). */
static parley_err store_room_read(store_sqlite *s, const char *name,
                                  parley_room *out, int64_t *id)
{
    sqlite3_stmt *stmt = s->stmt[STMT_ROOM_GET];
    int rc = sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    if (rc != SQLITE_OK) return store_fail(s, rc, "bind room");
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(stmt);
        return rc == SQLITE_DONE ? PARLEY_ERR_ROOM_NOT_FOUND
                                 : store_fail(s, rc, "read room");
    }
    parley_room v;
    size_t n;
    if (id) *id = sqlite3_column_int64(stmt, 0);
    v.name = store_col_text(stmt, 1, &n);
    v.head_seq = (uint64_t)sqlite3_column_int64(stmt, 2);
    v.head_rev = (uint64_t)sqlite3_column_int64(stmt, 3);
    store_settings_view(stmt, ROOM_COL_SETTINGS, &v);
    parley_err e = store_room_keep(s, &v, out);
    parley_err f = store_finish(s, STMT_ROOM_GET);
    return e != PARLEY_OK ? e : f;
}

/* The standing columns of stmt from col on (STANDING_COLS). */
static void store_standing_view(sqlite3_stmt *stmt, int col,
                                parley_standing *st)
{
    memset(st, 0, sizeof *st);
    if (sqlite3_column_type(stmt, col) != SQLITE_NULL)
        st->member_role = sqlite3_column_int(stmt, col);
    if (sqlite3_column_type(stmt, col + 1) != SQLITE_NULL) {
        st->muted = 1;
        st->muted_until_ms = sqlite3_column_int64(stmt, col + 1);
    }
    if (sqlite3_column_type(stmt, col + 2) != SQLITE_NULL) {
        st->removed = 1;
        st->removed_until_ms = sqlite3_column_int64(stmt, col + 2);
    }
    st->last_read_seq = (uint64_t)sqlite3_column_int64(stmt, col + 3);
    st->last_read_rev = (uint64_t)sqlite3_column_int64(stmt, col + 4);
}

/* Binds the user of a statement with STANDING_JOINS (NULL: nobody). */
static int store_bind_user(sqlite3_stmt *stmt, const char *user_id)
{
    enum { USER_PARAM = 9 };
    assert(sqlite3_bind_parameter_count(stmt) == USER_PARAM);
    return user_id
               ? sqlite3_bind_text(stmt, USER_PARAM, user_id, -1, SQLITE_STATIC)
               : sqlite3_bind_null(stmt, USER_PARAM);
}

/* Looks a room up by name (already validated); base_seq (if given) is
 * the seq below which its messages went with a deletion of the room. */
static parley_err store_room_find_ex(store_sqlite *s, const char *name,
                                     int64_t *id, uint64_t *head_seq,
                                     uint64_t *head_rev, uint64_t *base_seq)
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
    if (base_seq)
        *base_seq = (uint64_t)sqlite3_column_int64(stmt, ROOM_COL_BASE);
    return store_finish(s, STMT_ROOM_GET);
}

static parley_err store_room_find(store_sqlite *s, const char *name,
                                  int64_t *id, uint64_t *head_seq,
                                  uint64_t *head_rev)
{
    return store_room_find_ex(s, name, id, head_seq, head_rev, NULL);
}

/* ---- the open transaction's room heads --------------------------------- */

static size_t store_head_slot(const store_sqlite *s, const char *name)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = name; *p; p++) {
        h ^= (unsigned char)*p;
        h *= 16777619u;
    }
    size_t mask = s->heads_cap - 1, i = h & mask;
    while (s->heads[i].name[0] && strcmp(s->heads[i].name, name) != 0)
        i = (i + 1) & mask;
    return i;
}

/* Doubles the table (or makes the first one). -1 out of memory. */
static int store_heads_grow(store_sqlite *s)
{
    size_t cap = s->heads_cap ? s->heads_cap * 2 : 16;
    store_head *old = s->heads, *nh = calloc(cap, sizeof *nh);
    if (nh == NULL) return -1;
    size_t old_cap = s->heads_cap;
    s->heads = nh;
    s->heads_cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].name[0]) s->heads[store_head_slot(s, old[i].name)] = old[i];
    free(old);
    return 0;
}

/* The room's entry, read from the rooms row on first use in this
 * transaction. ROOM_NOT_FOUND if there is no such room. */
static parley_err store_head_get(store_sqlite *s, const char *room,
                                 store_head **out)
{
    assert(strlen(room) <= RULES_ROOM_MAX); /* store.c checked it */
    if (s->heads_cap && s->heads[store_head_slot(s, room)].name[0]) {
        *out = &s->heads[store_head_slot(s, room)];
        return PARLEY_OK;
    }
    store_head h;
    memset(&h, 0, sizeof h);
    parley_err e = store_room_find(s, room, &h.id, &h.seq, &h.rev);
    if (e != PARLEY_OK) return e;
    if ((s->heads_n + 1) * 2 > s->heads_cap && store_heads_grow(s) != 0)
        return store_fail_msg(s, PARLEY_ERR_INTERNAL, "out of memory");
    memcpy(h.name, room, strlen(room) + 1);
    store_head *slot = &s->heads[store_head_slot(s, room)];
    assert(slot->name[0] == '\0');
    *slot = h;
    s->heads_n++;
    *out = slot;
    return PARLEY_OK;
}

/* Writes the moved counters back to their rooms rows. */
static parley_err store_heads_flush(store_sqlite *s)
{
    for (size_t i = 0; i < s->heads_cap && s->heads_n; i++) {
        store_head *h = &s->heads[i];
        if (!h->name[0] || !h->dirty) continue;
        sqlite3_stmt *stmt = s->stmt[STMT_ROOM_SET_HEADS];
        int rc = sqlite3_bind_int64(stmt, 1, h->id);
        if (rc == SQLITE_OK) rc = sqlite3_bind_int64(stmt, 2, (int64_t)h->seq);
        if (rc == SQLITE_OK) rc = sqlite3_bind_int64(stmt, 3, (int64_t)h->rev);
        if (rc != SQLITE_OK) return store_fail(s, rc, "bind room heads");
        parley_err e = store_exec(s, STMT_ROOM_SET_HEADS);
        if (e != PARLEY_OK) return e;
        h->dirty = 0;
    }
    return PARLEY_OK;
}

/* Forgets every entry (the transaction ended, or a statement is about to
 * read or move the counters in the table itself). */
static void store_heads_clear(store_sqlite *s)
{
    if (s->heads_n == 0) return;
    memset(s->heads, 0, s->heads_cap * sizeof *s->heads);
    s->heads_n = 0;
}

/* Before any statement but an append inside a transaction: the table holds
 * the counters again, and the entries are dropped (that statement may move
 * them). */
static parley_err store_heads_settle(store_sqlite *s)
{
    if (s->heads_n == 0) return PARLEY_OK;
    parley_err e = store_heads_flush(s);
    store_heads_clear(s);
    return e;
}

/* ---- transactions ------------------------------------------------------ */

/* Starts a write: joins the caller's transaction under a savepoint, or
 * begins an IMMEDIATE one (which takes the write lock at once, so the
 * head counters read next cannot be stale). */
static parley_err store_write_begin(store_sqlite *s)
{
    parley_err e = store_heads_settle(s);
    if (e != PARLEY_OK) return e;
    return store_exec(s, s->base.in_txn ? STMT_SAVEPOINT : STMT_BEGIN_WRITE);
}

static parley_err store_write_end(store_sqlite *s, parley_err e)
{
    if (e == PARLEY_OK) {
        e = store_exec(s, s->base.in_txn ? STMT_RELEASE : STMT_COMMIT);
        if (e == PARLEY_OK) {
            if (!s->base.in_txn) s->base.commits++;
            return PARLEY_OK;
        }
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
    store_sqlite *s = (store_sqlite *)base;
    assert(s->heads_n == 0); /* cleared when the last transaction ended */
    return store_exec(s, STMT_BEGIN_WRITE);
}

/* store.c has already cleared base.in_txn: a failed COMMIT is rolled back
 * here, so the transaction is over either way. */
static parley_err store_sqlite_commit(store *base)
{
    store_sqlite *s = (store_sqlite *)base;
    parley_err e = store_heads_flush(s);
    store_heads_clear(s);
    if (e == PARLEY_OK) e = store_exec(s, STMT_COMMIT);
    if (e == PARLEY_OK) s->base.commits++;
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
    store_heads_clear(s); /* the counters' moves go with the rest */
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

/* Opens path (flags, no mutex: one thread per handle) with extended result
 * codes and the busy timeout, and reads its schema version. A failed open
 * says "open PATH<how>: why" in errmsg. */
static parley_err store_open_file(store_sqlite *s, const char *path, int flags,
                                  const char *how, int *version, char *errmsg,
                                  size_t errlen)
{
    int rc = sqlite3_open_v2(path, &s->db, flags | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(errmsg, errlen, "open %s%s: %s", path, how,
                 s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        return PARLEY_ERR_IO;
    }
    sqlite3_extended_result_codes(s->db, 1);
    rc = sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
    if (rc != SQLITE_OK) return store_fail(s, rc, "busy_timeout");
    rc = store_pragma_int(s->db, "PRAGMA user_version", version);
    if (rc != SQLITE_OK) return store_fail(s, rc, "read user_version");
    return PARLEY_OK;
}

/* Prepares every statement of store_sql (kept for the handle's life). */
static parley_err store_prepare_all(store_sqlite *s)
{
    for (int i = 0; i < STMT__COUNT; i++) {
        int rc =
            sqlite3_prepare_v3(s->db, store_sql[i], -1,
                               SQLITE_PREPARE_PERSISTENT, &s->stmt[i], NULL);
        if (rc != SQLITE_OK) return store_fail(s, rc, store_sql[i]);
    }
    return PARLEY_OK;
}

static parley_err store_setup(store_sqlite *s, const char *path,
                              const store_opts *opts, char *errmsg,
                              size_t errlen)
{
    int rc, on = 0, version = 0;
    parley_err e =
        store_open_file(s, path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, "",
                        &version, errmsg, errlen);
    if (e != PARLEY_OK) return e;

    /* Refuse a newer schema before changing anything in the file. */
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

    return store_prepare_all(s);
}

static void store_sqlite_close(store *base);

/* A reader's setup: the same file, read-only, at the schema version this
 * build writes (the writer's handle migrated it already). */
static parley_err store_setup_reader(store_sqlite *s, const char *path,
                                     char *errmsg, size_t errlen)
{
    int rc, version = 0;
    parley_err e = store_open_file(s, path, SQLITE_OPEN_READONLY,
                                   " for reading", &version, errmsg, errlen);
    if (e != PARLEY_OK) return e;
    if (version != STORE_SCHEMA_VERSION) {
        snprintf(errmsg, errlen,
                 "database schema version %d, this build reads %d", version,
                 STORE_SCHEMA_VERSION);
        return PARLEY_ERR_SCHEMA_TOO_NEW;
    }
    /* Pages straight from the page cache, no read(2) and copy each. */
    rc = sqlite3_exec(s->db, "PRAGMA mmap_size = " STORE_READER_MMAP, NULL,
                      NULL, NULL);
    if (rc != SQLITE_OK) return store_fail(s, rc, "mmap_size");
    return store_prepare_all(s);
}

/* A new handle on path: a reader's, or the writer's (with its opts). On an
 * error errmsg says why and nothing stays open. */
static parley_err store_sqlite_new(const char *path, int reader,
                                   const store_opts *opts, store **out,
                                   char *errmsg, size_t errlen)
{
    store_sqlite *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(errmsg, errlen, "out of memory");
        return PARLEY_ERR_INTERNAL;
    }
    parley_err e = reader ? store_setup_reader(s, path, errmsg, errlen)
                          : store_setup(s, path, opts, errmsg, errlen);
    if (e != PARLEY_OK) {
        if (errmsg[0] == '\0') snprintf(errmsg, errlen, "%s", s->err);
        store_sqlite_close(&s->base);
        return e;
    }
    *out = &s->base;
    return PARLEY_OK;
}

static parley_err store_sqlite_open_reader(store *base, store **out,
                                           char *errmsg, size_t errlen)
{
    store_sqlite *w = (store_sqlite *)base;
    const char *path = sqlite3_db_filename(w->db, "main");
    if (path == NULL || path[0] == '\0') {
        snprintf(errmsg, errlen,
                 "an in-memory database has no second handle to read with");
        return PARLEY_ERR_INTERNAL;
    }
    return store_sqlite_new(path, 1, NULL, out, errmsg, errlen);
}

/* ---- snapshots and checkpoints ------------------------------------------ */

static parley_err store_sqlite_snapshot_begin(store *base)
{
    store_sqlite *s = (store_sqlite *)base;
    parley_err e = store_exec(s, STMT_BEGIN_READ);
    /* BEGIN DEFERRED takes no snapshot yet: the first read does. */
    if (e == PARLEY_OK) e = store_finish(s, STMT_SNAPSHOT);
    if (e != PARLEY_OK && !sqlite3_get_autocommit(s->db))
        (void)store_exec(s, STMT_ROLLBACK);
    return e;
}

static void store_sqlite_snapshot_end(store *base)
{
    store_sqlite *s = (store_sqlite *)base;
    if (!sqlite3_get_autocommit(s->db)) (void)store_exec(s, STMT_COMMIT);
}

/* Counts the log's pages after each commit (sqlite3_wal_hook). */
static int store_wal_hook(void *ud, sqlite3 *db, const char *name, int pages)
{
    (void)db;
    (void)name;
    ((store_sqlite *)ud)->log_pages = pages > 0 ? (size_t)pages : 0;
    return SQLITE_OK;
}

static void store_sqlite_own_checkpoints(store *base)
{
    store_sqlite *s = (store_sqlite *)base;
    /* The hook replaces SQLite's automatic checkpoints (which use it). */
    sqlite3_wal_hook(s->db, store_wal_hook, s);
}

static size_t store_sqlite_log_pages(const store *base)
{
    return ((const store_sqlite *)base)->log_pages;
}

static parley_err store_sqlite_checkpoint(store *base)
{
    store_sqlite *s = (store_sqlite *)base;
    int log = 0, done = 0;
    int rc = sqlite3_wal_checkpoint_v2(s->db, "main", SQLITE_CHECKPOINT_PASSIVE,
                                       &log, &done);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
        return store_fail(s, rc, "checkpoint");
    return PARLEY_OK;
}

/* Interval durability: fsyncs the write-ahead log, which holds every
 * commit since the last checkpoint (the checkpoints sync themselves). */
static parley_err store_sqlite_sync(store *base)
{
    store_sqlite *s = (store_sqlite *)base;
    sqlite3_file *log = NULL;
    int rc =
        sqlite3_file_control(s->db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &log);
    if (rc != SQLITE_OK) return store_fail(s, rc, "find the log");
    if (log == NULL || log->pMethods == NULL) return PARLEY_OK; /* none yet */
    rc = log->pMethods->xSync(log, SQLITE_SYNC_NORMAL);
    if (rc != SQLITE_OK) return store_fail(s, rc, "sync the log");
    return PARLEY_OK;
}

/* Every target that is not a URI is a file path. */
static int store_sqlite_serves(const char *target)
{
    return strstr(target, "://") == NULL;
}

static parley_err store_sqlite_open(const char *path, const store_opts *opts,
                                    store **out, char *errmsg, size_t errlen)
{
    return store_sqlite_new(path, 0, opts, out, errmsg, errlen);
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
    store_rows_free(&s->rows);
    free(s->heads);
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
                                           const parley_room_settings *set,
                                           int64_t now_ms, parley_room *out,
                                           int *created)
{
    store_sqlite *s = (store_sqlite *)base;
    int fresh = 0;

    parley_err e = store_write_begin(s);
    if (e != PARLEY_OK) return e;

    sqlite3_stmt *stmt = s->stmt[STMT_ROOM_INSERT];
    int rc = sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(stmt, 2, now_ms);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 3, set->title, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 4, set->topic, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int(stmt, 5, set->visibility);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int(stmt, 6, set->mode);
    if (rc != SQLITE_OK) e = store_fail(s, rc, "bind room insert");
    if (e == PARLEY_OK) e = store_exec(s, STMT_ROOM_INSERT);
    if (e == PARLEY_OK) {
        fresh = sqlite3_changes(s->db) > 0;
        e = store_room_read(s, name, out, NULL);
    }
    e = store_write_end(s, e);
    if (e != PARLEY_OK) return e;
    *created = fresh;
    return PARLEY_OK;
}

static parley_err store_sqlite_room_get(store *base, const char *name,
                                        parley_room *out)
{
    store_sqlite *s = (store_sqlite *)base;
    parley_err e = store_heads_settle(s); /* counters back in the table */
    if (e != PARLEY_OK) return e;
    return store_room_read(s, name, out, NULL);
}

static parley_err store_sqlite_room_list_for(store *base,
                                             const store_room_query *q,
                                             store_room_access_fn fn, void *ud,
                                             int *has_more)
{
    store_sqlite *s = (store_sqlite *)base;
    sqlite3_stmt *stmt = s->stmt[STMT_ROOM_LIST_FOR];
    unsigned n = 0;
    int rc, more = 0;

    parley_err e = store_heads_settle(s); /* counters back in the table */
    if (e != PARLEY_OK) return e;

    /* One statement is one read transaction: the page is consistent. The
     * extra row asked for tells has_more. */
    rc = sqlite3_bind_text(stmt, 1, q->after, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 2, q->prefix, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 3, (int64_t)q->limit + 1);
    if (rc == SQLITE_OK) rc = store_bind_user(stmt, q->user_id);
    if (rc != SQLITE_OK) return store_fail(s, rc, "bind room list");
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (n == q->limit) {
            more = 1;
            break;
        }
        n++;
        parley_room r;
        parley_standing st;
        size_t len;
        r.name = store_col_text(stmt, 0, &len);
        r.head_seq = (uint64_t)sqlite3_column_int64(stmt, 1);
        r.head_rev = (uint64_t)sqlite3_column_int64(stmt, 2);
        store_settings_view(stmt, 3, &r);
        store_standing_view(stmt, 7, &st);
        if (fn && fn(&r, &st, ud) != 0) {
            rc = sqlite3_step(stmt);
            more = rc == SQLITE_ROW;
            break;
        }
    }
    sqlite3_reset(stmt);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return store_fail(s, rc, "step room list");
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

/* The row an append stored, from its own values, into a row buffer. */
static parley_err store_row_new(store_sqlite *s, const char *room, uint64_t seq,
                                uint64_t rev, const parley_author *author,
                                const char *client_msg_id, const char *body,
                                size_t body_len, int64_t now_ms, parley_msg *m)
{
    size_t lr = strlen(room), lc = strlen(client_msg_id);
    size_t la = strlen(author->id), ln = strlen(author->display_name);
    char *p = store_rows_take(&s->rows, lr + lc + la + ln + body_len + 5);
    if (p == NULL)
        return store_fail_msg(s, PARLEY_ERR_INTERNAL, "out of memory");
    m->room = store_rows_put(&p, room, lr);
    m->seq = seq;
    m->rev = rev;
    m->client_msg_id = store_rows_put(&p, client_msg_id, lc);
    m->author.id = store_rows_put(&p, author->id, la);
    m->author.display_name = store_rows_put(&p, author->display_name, ln);
    m->author.role = author->role;
    m->body = store_rows_put(&p, body, body_len);
    m->body_len = body_len;
    m->created_at_ms = now_ms;
    m->edited_at_ms = 0;
    m->deleted = 0;
    return PARLEY_OK;
}

/* One INSERT that takes the room's next seq and rev, or stores nothing for
 * a (room, author, client id) seen before (then *duplicate and the
 * original). Inside a transaction (see the top comment). */
static parley_err store_append_in_txn(store_sqlite *s, const char *room,
                                      const parley_author *author,
                                      const char *client_msg_id,
                                      const char *body, size_t body_len,
                                      int64_t now_ms, parley_msg *out,
                                      int *duplicate)
{
    store_head *h;
    parley_err e = store_head_get(s, room, &h);
    if (e != PARLEY_OK) return e;
    /* every message takes a rev too, so rev never trails seq */
    assert(h->rev >= h->seq);
    uint64_t seq = h->seq + 1, rev = h->rev + 1;
    sqlite3_stmt *stmt = s->stmt[STMT_MSG_INSERT];
    int rc = sqlite3_bind_int64(stmt, 1, h->id);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(stmt, 2, (int64_t)seq);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(stmt, 3, (int64_t)rev);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 4, client_msg_id, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 5, author->id, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc =
            sqlite3_bind_text(stmt, 6, author->display_name, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int(stmt, 7, author->role);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 8, body, (int)body_len, SQLITE_STATIC);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(stmt, 9, now_ms);
    if (rc != SQLITE_OK) return store_fail(s, rc, "bind message insert");
    e = store_exec(s, STMT_MSG_INSERT);
    if (e != PARLEY_OK) return e;
    if (sqlite3_changes(s->db) == 0) {
        /* The client id's unique index refused it: a repeat. */
        e = store_find_client_id(s, h->id, room, author, client_msg_id, out);
        if (e == PARLEY_ERR_MESSAGE_NOT_FOUND)
            e = store_fail_msg(s, PARLEY_ERR_INTERNAL,
                               "insert skipped, but no message has its id");
        if (e == PARLEY_OK) *duplicate = 1;
        return e;
    }
    h->seq = seq;
    h->rev = rev;
    h->dirty = 1;
    return store_row_new(s, room, seq, rev, author, client_msg_id, body,
                         body_len, now_ms, out);
}

static parley_err store_sqlite_find_client(store *base, const char *room,
                                           const char *author_id,
                                           const char *client_msg_id,
                                           parley_msg *out)
{
    store_sqlite *s = (store_sqlite *)base;
    int64_t room_id;
    parley_author a = {author_id, "", 0};
    parley_err e = store_room_find(s, room, &room_id, NULL, NULL);
    if (e != PARLEY_OK) return e;
    return store_find_client_id(s, room_id, room, &a, client_msg_id, out);
}

static parley_err store_sqlite_append(store *base, const char *room,
                                      const parley_author *author,
                                      const char *client_msg_id,
                                      const char *body, size_t body_len,
                                      int64_t now_ms, parley_msg *out,
                                      int *duplicate)
{
    store_sqlite *s = (store_sqlite *)base;
    if (s->base.in_txn)
        return store_append_in_txn(s, room, author, client_msg_id, body,
                                   body_len, now_ms, out, duplicate);
    /* On its own: a transaction of one. */
    parley_err e = store_exec(s, STMT_BEGIN_WRITE);
    if (e != PARLEY_OK) return e;
    e = store_append_in_txn(s, room, author, client_msg_id, body, body_len,
                            now_ms, out, duplicate);
    if (e == PARLEY_OK) e = store_heads_flush(s);
    store_heads_clear(s);
    if (e == PARLEY_OK) e = store_exec(s, STMT_COMMIT);
    if (e == PARLEY_OK) {
        s->base.commits++;
        return PARLEY_OK;
    }
    if (!sqlite3_get_autocommit(s->db)) {
        char keep[sizeof s->err];
        memcpy(keep, s->err, sizeof keep);
        (void)store_exec(s, STMT_ROLLBACK);
        memcpy(s->err, keep, sizeof keep);
    }
    return e;
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
    uint64_t head_seq = 0, head_rev = 0, base_seq = 0;
    int own, more = 0, rc, id;
    sqlite3_stmt *stmt;

    /* One read transaction for the heads and the page (unless the caller's
     * write transaction is open, which is just as consistent). */
    if ((e = store_heads_settle(s)) != PARLEY_OK) return e;
    own = sqlite3_get_autocommit(s->db);
    if (own && (e = store_exec(s, STMT_BEGIN_READ)) != PARLEY_OK) return e;

    e = store_room_find_ex(s, room, &room_id, &head_seq, &head_rev, &base_seq);
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
        /* seq is dense base_seq+1..head_seq: the page is [lo, hi]. */
        uint64_t hi = head_seq, lo, first = base_seq + 1;
        if (dir == STORE_BEFORE_SEQ) {
            if (cursor == 0)
                hi = 0;
            else if (cursor - 1 < hi)
                hi = cursor - 1;
        }
        if (hi < first) hi = 0;
        lo = hi > limit ? hi - limit + 1 : 1;
        if (lo < first) lo = first;
        assert(hi == 0 || (lo <= hi && hi - lo < limit));
        more = hi > 0 && lo > first;
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

    /* The room with its settings, in the same read transaction: the same
     * counters as the page. */
    if (e == PARLEY_OK && room_out)
        e = store_room_read(s, room, room_out, NULL);

done:
    if (own) {
        /* Ends the read transaction; on success COMMIT, else ROLLBACK. */
        parley_err f =
            store_exec(s, e == PARLEY_OK ? STMT_COMMIT : STMT_ROLLBACK);
        if (e == PARLEY_OK) e = f;
    }
    if (e != PARLEY_OK) return e;
    assert(room_out == NULL || room_out->head_seq == head_seq);
    *has_more = more;
    return PARLEY_OK;
}

/* ---- rooms: settings, access, members, sanctions, actions -------------- */

static parley_err store_sqlite_room_update(store *base, const char *name,
                                           const parley_room_settings *u,
                                           parley_room *out, unsigned *changed)
{
    store_sqlite *s = (store_sqlite *)base;
    parley_room cur;
    int64_t id;

    /* u's texts may point into the previous result's buffer: cur is read
     * into the other one, and the UPDATE binds u before the next read. */
    parley_err e = store_write_begin(s);
    if (e != PARLEY_OK) return e;
    e = store_room_read(s, name, &cur, &id);
    if (e == PARLEY_OK) {
        parley_room_settings v;
        unsigned c = store_settings_merge(&cur, u, &v);
        if (c) {
            sqlite3_stmt *stmt = s->stmt[STMT_ROOM_UPDATE];
            int rc = sqlite3_bind_int64(stmt, 1, id);
            if (rc == SQLITE_OK)
                rc = sqlite3_bind_text(stmt, 2, v.title, -1, SQLITE_TRANSIENT);
            if (rc == SQLITE_OK)
                rc = sqlite3_bind_text(stmt, 3, v.topic, -1, SQLITE_TRANSIENT);
            if (rc == SQLITE_OK) rc = sqlite3_bind_int(stmt, 4, v.visibility);
            if (rc == SQLITE_OK) rc = sqlite3_bind_int(stmt, 5, v.mode);
            e = rc == SQLITE_OK ? store_exec(s, STMT_ROOM_UPDATE)
                                : store_fail(s, rc, "bind room update");
        }
        if (e == PARLEY_OK) e = store_room_read(s, name, out, NULL);
        if (e == PARLEY_OK) *changed = c;
    }
    return store_write_end(s, e);
}

/* Steps statement id bound with room id ?1 (and nothing else). */
static parley_err store_exec_room(store_sqlite *s, int id, int64_t room_id)
{
    int rc = sqlite3_bind_int64(s->stmt[id], 1, room_id);
    if (rc != SQLITE_OK) return store_fail(s, rc, store_sql[id]);
    return store_exec(s, id);
}

static parley_err store_sqlite_room_delete(store *base, const char *name,
                                           parley_room *out, uint64_t *messages)
{
    store_sqlite *s = (store_sqlite *)base;
    int64_t id;

    parley_err e = store_write_begin(s);
    if (e != PARLEY_OK) return e;
    e = store_room_read(s, name, out, &id);
    if (e == PARLEY_OK) e = store_exec_room(s, STMT_ROOM_DELETE_MESSAGES, id);
    if (e == PARLEY_OK) *messages = (uint64_t)sqlite3_changes64(s->db);
    static const int rest[] = {
        STMT_ROOM_DELETE_MEMBERS, STMT_ROOM_DELETE_SANCTIONS,
        STMT_ROOM_DELETE_ACTIONS, STMT_ROOM_MARK_DELETED};
    for (size_t i = 0; e == PARLEY_OK && i < sizeof rest / sizeof rest[0]; i++)
        e = store_exec_room(s, rest[i], id);
    return store_write_end(s, e);
}

static parley_err store_sqlite_room_access(store *base, const char *room,
                                           const char *user_id,
                                           parley_room *out,
                                           parley_standing *st)
{
    store_sqlite *s = (store_sqlite *)base;
    sqlite3_stmt *stmt = s->stmt[STMT_ROOM_ACCESS];
    int rc = sqlite3_bind_text(stmt, 1, room, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK) rc = store_bind_user(stmt, user_id);
    if (rc != SQLITE_OK) return store_fail(s, rc, "bind room access");
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(stmt);
        return rc == SQLITE_DONE ? PARLEY_ERR_ROOM_NOT_FOUND
                                 : store_fail(s, rc, "read room access");
    }
    parley_room v;
    memset(&v, 0, sizeof v);
    v.name = room;
    store_settings_view(stmt, 0, &v);
    store_standing_view(stmt, 4, st);
    parley_err e = store_room_keep(s, &v, out);
    parley_err f = store_finish(s, STMT_ROOM_ACCESS);
    return e != PARLEY_OK ? e : f;
}

/* The columns of MEMBER_COLS as views. */
static void store_member_view(sqlite3_stmt *stmt, parley_member *m)
{
    size_t n;
    m->user_id = store_col_text(stmt, 0, &n);
    m->role = sqlite3_column_int(stmt, 1);
    m->added_by = store_col_text(stmt, 2, &n);
    m->added_at_ms = sqlite3_column_int64(stmt, 3);
}

/* Copies the current member row of stmt into a row buffer. */
static parley_err store_member_keep(store_sqlite *s, sqlite3_stmt *stmt,
                                    parley_member *out)
{
    parley_member v;
    store_member_view(stmt, &v);
    size_t lu = strlen(v.user_id), la = strlen(v.added_by);
    char *p = store_rows_take(&s->rows, lu + la + 2);
    if (p == NULL)
        return store_fail_msg(s, PARLEY_ERR_INTERNAL, "out of memory");
    *out = v;
    out->user_id = store_rows_put(&p, v.user_id, lu);
    out->added_by = store_rows_put(&p, v.added_by, la);
    return PARLEY_OK;
}

/* Steps member statement id (bound) for at most one row, kept in out;
 * *got tells whether there was one. */
static parley_err store_member_one(store_sqlite *s, int id, parley_member *out,
                                   int *got)
{
    sqlite3_stmt *stmt = s->stmt[id];
    int rc = sqlite3_step(stmt);
    *got = rc == SQLITE_ROW;
    if (rc != SQLITE_ROW) {
        sqlite3_reset(stmt);
        return rc == SQLITE_DONE ? PARLEY_OK : store_fail(s, rc, store_sql[id]);
    }
    parley_err e = store_member_keep(s, stmt, out);
    parley_err f = store_finish(s, id);
    return e != PARLEY_OK ? e : f;
}

static parley_err store_sqlite_member_set(store *base, const char *room,
                                          const char *user_id, int role,
                                          const char *added_by, int64_t now_ms,
                                          parley_member *out, int *changed)
{
    store_sqlite *s = (store_sqlite *)base;
    int64_t id;
    int got = 0;

    parley_err e = store_write_begin(s);
    if (e != PARLEY_OK) return e;
    e = store_room_find(s, room, &id, NULL, NULL);
    if (e == PARLEY_OK) {
        sqlite3_stmt *stmt = s->stmt[STMT_MEMBER_UPSERT];
        int rc = sqlite3_bind_int64(stmt, 1, id);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_text(stmt, 2, user_id, -1, SQLITE_STATIC);
        if (rc == SQLITE_OK) rc = sqlite3_bind_int(stmt, 3, role);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_text(stmt, 4, added_by, -1, SQLITE_STATIC);
        if (rc == SQLITE_OK) rc = sqlite3_bind_int64(stmt, 5, now_ms);
        e = rc == SQLITE_OK ? store_member_one(s, STMT_MEMBER_UPSERT, out, &got)
                            : store_fail(s, rc, "bind member");
    }
    if (e == PARLEY_OK) *changed = got;
    if (e == PARLEY_OK && !got) {
        /* The same role already: the stored membership. */
        sqlite3_stmt *stmt = s->stmt[STMT_MEMBER_GET];
        int rc = sqlite3_bind_int64(stmt, 1, id);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_text(stmt, 2, user_id, -1, SQLITE_STATIC);
        e = rc == SQLITE_OK ? store_member_one(s, STMT_MEMBER_GET, out, &got)
                            : store_fail(s, rc, "bind member get");
        if (e == PARLEY_OK && !got)
            e = store_fail_msg(s, PARLEY_ERR_INTERNAL, "member vanished");
    }
    return store_write_end(s, e);
}

static parley_err store_sqlite_member_remove(store *base, const char *room,
                                             const char *user_id, int *removed)
{
    store_sqlite *s = (store_sqlite *)base;
    int64_t id;

    parley_err e = store_write_begin(s);
    if (e != PARLEY_OK) return e;
    e = store_room_find(s, room, &id, NULL, NULL);
    if (e == PARLEY_OK) {
        sqlite3_stmt *stmt = s->stmt[STMT_MEMBER_DELETE];
        int rc = sqlite3_bind_int64(stmt, 1, id);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_text(stmt, 2, user_id, -1, SQLITE_STATIC);
        e = rc == SQLITE_OK ? store_exec(s, STMT_MEMBER_DELETE)
                            : store_fail(s, rc, "bind member delete");
        if (e == PARLEY_OK) *removed = sqlite3_changes(s->db) > 0;
    }
    return store_write_end(s, e);
}

/* Runs a bound page statement (limit + 1 rows asked for); row(stmt, ud)
 * per row up to limit; *has_more if the extra row came, or the callback
 * stopped early before the last. */
static parley_err store_page(store_sqlite *s, int id, unsigned limit,
                             int (*row)(sqlite3_stmt *, void *), void *ud,
                             int *has_more)
{
    sqlite3_stmt *stmt = s->stmt[id];
    unsigned n = 0;
    int rc, more = 0;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (n == limit) {
            more = 1;
            break;
        }
        n++;
        if (row(stmt, ud) != 0) {
            rc = sqlite3_step(stmt);
            more = rc == SQLITE_ROW;
            break;
        }
    }
    sqlite3_reset(stmt);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return store_fail(s, rc, store_sql[id]);
    *has_more = more;
    return PARLEY_OK;
}

typedef struct store_member_page {
    store_member_fn fn;
    void *ud;
} store_member_page;

static int store_member_row(sqlite3_stmt *stmt, void *ud)
{
    store_member_page *p = ud;
    parley_member m;
    store_member_view(stmt, &m);
    return p->fn ? p->fn(&m, p->ud) : 0;
}

/* Binds ?1 room id, ?2 after (text or int64), ?3 limit + 1 of a page. */
static parley_err store_page_room(store_sqlite *s, const char *room, int id,
                                  const char *after_text, uint64_t after_int,
                                  unsigned limit)
{
    int64_t room_id;
    parley_err e = store_room_find(s, room, &room_id, NULL, NULL);
    if (e != PARLEY_OK) return e;
    sqlite3_stmt *stmt = s->stmt[id];
    int rc = sqlite3_bind_int64(stmt, 1, room_id);
    if (rc == SQLITE_OK)
        rc = after_text
                 ? sqlite3_bind_text(stmt, 2, after_text, -1, SQLITE_STATIC)
                 : sqlite3_bind_int64(stmt, 2, store_u64_to_i64(after_int));
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(stmt, 3, (int64_t)limit + 1);
    return rc == SQLITE_OK ? PARLEY_OK : store_fail(s, rc, "bind page");
}

static parley_err store_sqlite_member_list(store *base, const char *room,
                                           const char *after, unsigned limit,
                                           store_member_fn fn, void *ud,
                                           int *has_more)
{
    store_sqlite *s = (store_sqlite *)base;
    /* The room lookup and the page are two statements: rooms' ids never
     * change, so they need no common snapshot. */
    parley_err e = store_page_room(s, room, STMT_MEMBER_LIST, after, 0, limit);
    if (e != PARLEY_OK) return e;
    store_member_page p = {fn, ud};
    return store_page(s, STMT_MEMBER_LIST, limit, store_member_row, &p,
                      has_more);
}

static parley_err store_sqlite_sanction_set(store *base, const char *room,
                                            const char *user_id,
                                            store_sanction kind, int active,
                                            int64_t until_ms, int *changed)
{
    store_sqlite *s = (store_sqlite *)base;
    int64_t id;
    int stmt_id = active ? STMT_SANCTION_PUT : STMT_SANCTION_DELETE;

    parley_err e = store_write_begin(s);
    if (e != PARLEY_OK) return e;
    e = store_room_find(s, room, &id, NULL, NULL);
    if (e == PARLEY_OK) {
        sqlite3_stmt *stmt = s->stmt[stmt_id];
        int rc = sqlite3_bind_int64(stmt, 1, id);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_text(stmt, 2, user_id, -1, SQLITE_STATIC);
        if (rc == SQLITE_OK) rc = sqlite3_bind_int(stmt, 3, (int)kind);
        if (rc == SQLITE_OK && active)
            rc = sqlite3_bind_int64(stmt, 4, until_ms);
        e = rc == SQLITE_OK ? store_exec(s, stmt_id)
                            : store_fail(s, rc, "bind sanction");
        if (e == PARLEY_OK) *changed = sqlite3_changes(s->db) > 0;
    }
    return store_write_end(s, e);
}

/* The columns of ACTION_COLS as views (room given). */
static void store_action_view(sqlite3_stmt *stmt, const char *room,
                              parley_action *a)
{
    size_t n;
    a->id = (uint64_t)sqlite3_column_int64(stmt, 0);
    a->room = room;
    a->kind = sqlite3_column_int(stmt, 1);
    a->actor.id = store_col_text(stmt, 2, &n);
    a->actor.display_name = store_col_text(stmt, 3, &n);
    a->actor.role = sqlite3_column_int(stmt, 4);
    a->target_user_id = store_col_text(stmt, 5, &n);
    a->at_ms = sqlite3_column_int64(stmt, 6);
    a->until_ms = sqlite3_column_int64(stmt, 7);
    a->reason = store_col_text(stmt, 8, &n);
    a->mode = sqlite3_column_int(stmt, 9);
    a->visibility = sqlite3_column_int(stmt, 10);
    a->role = sqlite3_column_int(stmt, 11);
    a->seq = (uint64_t)sqlite3_column_int64(stmt, 12);
    a->count = (uint64_t)sqlite3_column_int64(stmt, 13);
}

/* Copies action v's strings into a row buffer as out. */
static parley_err store_action_keep(store_sqlite *s, const parley_action *v,
                                    parley_action *out)
{
    size_t lr = strlen(v->room), li = strlen(v->actor.id);
    size_t ln = strlen(v->actor.display_name);
    size_t lt = strlen(v->target_user_id), lw = strlen(v->reason);
    char *p = store_rows_take(&s->rows, lr + li + ln + lt + lw + 5);
    if (p == NULL)
        return store_fail_msg(s, PARLEY_ERR_INTERNAL, "out of memory");
    *out = *v;
    out->room = store_rows_put(&p, v->room, lr);
    out->actor.id = store_rows_put(&p, v->actor.id, li);
    out->actor.display_name = store_rows_put(&p, v->actor.display_name, ln);
    out->target_user_id = store_rows_put(&p, v->target_user_id, lt);
    out->reason = store_rows_put(&p, v->reason, lw);
    return PARLEY_OK;
}

static parley_err store_sqlite_action_append(store *base,
                                             const parley_action *a,
                                             parley_action *out)
{
    store_sqlite *s = (store_sqlite *)base;
    int64_t id;
    parley_action v = *a;

    if (v.target_user_id == NULL) v.target_user_id = "";
    if (v.reason == NULL) v.reason = "";
    parley_err e = store_write_begin(s);
    if (e != PARLEY_OK) return e;
    e = store_room_find(s, a->room, &id, NULL, NULL);
    if (e == PARLEY_OK) {
        sqlite3_stmt *stmt = s->stmt[STMT_ACTION_BUMP];
        int rc = sqlite3_bind_int64(stmt, 1, id);
        if (rc == SQLITE_OK) rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW) {
            v.id = (uint64_t)sqlite3_column_int64(stmt, 0);
            assert(v.id >= 1);
            e = store_finish(s, STMT_ACTION_BUMP);
        } else {
            sqlite3_reset(stmt);
            e = store_fail(s, rc, "take an action id");
        }
    }
    if (e == PARLEY_OK) {
        sqlite3_stmt *stmt = s->stmt[STMT_ACTION_INSERT];
        int rc = sqlite3_bind_int64(stmt, 1, id);
        if (rc == SQLITE_OK) rc = sqlite3_bind_int64(stmt, 2, (int64_t)v.id);
        if (rc == SQLITE_OK) rc = sqlite3_bind_int(stmt, 3, v.kind);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_text(stmt, 4, v.actor.id, -1, SQLITE_STATIC);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_text(stmt, 5, v.actor.display_name, -1,
                                   SQLITE_STATIC);
        if (rc == SQLITE_OK) rc = sqlite3_bind_int(stmt, 6, v.actor.role);
        if (rc == SQLITE_OK)
            rc =
                sqlite3_bind_text(stmt, 7, v.target_user_id, -1, SQLITE_STATIC);
        if (rc == SQLITE_OK) rc = sqlite3_bind_int64(stmt, 8, v.at_ms);
        if (rc == SQLITE_OK) rc = sqlite3_bind_int64(stmt, 9, v.until_ms);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_text(stmt, 10, v.reason, -1, SQLITE_STATIC);
        if (rc == SQLITE_OK) rc = sqlite3_bind_int(stmt, 11, v.mode);
        if (rc == SQLITE_OK) rc = sqlite3_bind_int(stmt, 12, v.visibility);
        if (rc == SQLITE_OK) rc = sqlite3_bind_int(stmt, 13, v.role);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(stmt, 14, store_u64_to_i64(v.seq));
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(stmt, 15, store_u64_to_i64(v.count));
        e = rc == SQLITE_OK ? store_exec(s, STMT_ACTION_INSERT)
                            : store_fail(s, rc, "bind action");
    }
    /* Copied before the statement's strings (the caller's) can go. */
    if (e == PARLEY_OK) e = store_action_keep(s, &v, out);
    return store_write_end(s, e);
}

typedef struct store_action_page {
    const char *room;
    store_action_fn fn;
    void *ud;
} store_action_page;

static int store_action_row(sqlite3_stmt *stmt, void *ud)
{
    store_action_page *p = ud;
    parley_action a;
    store_action_view(stmt, p->room, &a);
    return p->fn ? p->fn(&a, p->ud) : 0;
}

static parley_err store_sqlite_action_list(store *base, const char *room,
                                           uint64_t after_id, unsigned limit,
                                           store_action_fn fn, void *ud,
                                           int *has_more)
{
    store_sqlite *s = (store_sqlite *)base;
    parley_err e =
        store_page_room(s, room, STMT_ACTION_LIST, NULL, after_id, limit);
    if (e != PARLEY_OK) return e;
    store_action_page p = {room, fn, ud};
    return store_page(s, STMT_ACTION_LIST, limit, store_action_row, &p,
                      has_more);
}

/* A growable array of int64 (seqs to erase, rooms to visit). */
typedef struct store_ids {
    int64_t *v;
    size_t n, cap;
} store_ids;

static int store_ids_push(store_ids *ids, int64_t x)
{
    if (ids->n == ids->cap) {
        size_t cap = ids->cap ? ids->cap * 2 : 64;
        int64_t *nv = realloc(ids->v, cap * sizeof *nv);
        if (nv == NULL) return -1;
        ids->v = nv;
        ids->cap = cap;
    }
    ids->v[ids->n++] = x;
    return 0;
}

/* Erases user_id's messages in one room (id room_id, named room). */
static parley_err store_erase_in(store_sqlite *s, int64_t room_id,
                                 const char *room, const char *user_id,
                                 int64_t now_ms, store_msg_fn fn, void *ud,
                                 uint64_t *count)
{
    store_ids seqs = {NULL, 0, 0};
    sqlite3_stmt *stmt = s->stmt[STMT_ERASE_FIND];
    parley_err e = PARLEY_OK;
    int rc = sqlite3_bind_int64(stmt, 1, room_id);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 2, user_id, -1, SQLITE_STATIC);
    if (rc != SQLITE_OK) return store_fail(s, rc, "bind erase");
    /* The seqs first (in seq order, so the revs they take follow it): the
     * updates below must not run under this scan. */
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
        if (store_ids_push(&seqs, sqlite3_column_int64(stmt, 0)) != 0) {
            e = store_fail_msg(s, PARLEY_ERR_INTERNAL, "out of memory");
            break;
        }
    sqlite3_reset(stmt);
    if (e == PARLEY_OK && rc != SQLITE_DONE)
        e = store_fail(s, rc, "erase scan");
    for (size_t i = 0; e == PARLEY_OK && i < seqs.n; i++) {
        uint64_t rev;
        e = store_room_bump(s, room_id, NULL, &rev);
        if (e != PARLEY_OK) break;
        stmt = s->stmt[STMT_ERASE_ONE];
        rc = sqlite3_bind_int64(stmt, 1, room_id);
        if (rc == SQLITE_OK) rc = sqlite3_bind_int64(stmt, 2, seqs.v[i]);
        if (rc == SQLITE_OK) rc = sqlite3_bind_int64(stmt, 3, (int64_t)rev);
        if (rc == SQLITE_OK) rc = sqlite3_bind_int64(stmt, 4, now_ms);
        if (rc == SQLITE_OK) rc = sqlite3_step(stmt);
        if (rc != SQLITE_ROW) {
            sqlite3_reset(stmt);
            e = store_fail(s, rc, "erase message");
            break;
        }
        parley_msg m;
        store_row_view(stmt, room, &m);
        assert(m.deleted && m.rev == rev);
        if (fn) fn(&m, ud);
        (*count)++;
        e = store_finish(s, STMT_ERASE_ONE);
    }
    free(seqs.v);
    return e;
}

static parley_err store_sqlite_read_mark(store *base, const char *room,
                                         const char *user_id, uint64_t seq,
                                         uint64_t rev, int64_t now_ms,
                                         uint64_t *out_seq, uint64_t *out_rev)
{
    store_sqlite *s = (store_sqlite *)base;
    int64_t id;
    parley_err e = store_write_begin(s);
    if (e != PARLEY_OK) return e;
    e = store_room_find(s, room, &id, NULL, NULL);
    if (e == PARLEY_OK) {
        sqlite3_stmt *stmt = s->stmt[STMT_READ_MARK];
        int rc = sqlite3_bind_int64(stmt, 1, id);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_text(stmt, 2, user_id, -1, SQLITE_STATIC);
        if (rc == SQLITE_OK) rc = sqlite3_bind_int64(stmt, 3, (int64_t)seq);
        if (rc == SQLITE_OK) rc = sqlite3_bind_int64(stmt, 4, (int64_t)rev);
        if (rc == SQLITE_OK) rc = sqlite3_bind_int64(stmt, 5, now_ms);
        if (rc == SQLITE_OK) rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW) {
            *out_seq = (uint64_t)sqlite3_column_int64(stmt, 0);
            *out_rev = (uint64_t)sqlite3_column_int64(stmt, 1);
            e = store_finish(s, STMT_READ_MARK);
        } else {
            sqlite3_reset(stmt);
            e = store_fail(s, rc, "mark read");
        }
    }
    return store_write_end(s, e);
}

static parley_err store_sqlite_unread_count(store *base, const char *room,
                                            const char *user_id,
                                            uint64_t after_seq, unsigned cap,
                                            unsigned *count)
{
    store_sqlite *s = (store_sqlite *)base;
    store_unread_key k = {
        .user_id = user_id, .after_seq = after_seq, .cap = cap};
    parley_err e = store_room_find_ex(s, room, &k.room_id, &k.head_seq,
                                      &k.head_rev, &k.base_seq);
    if (e != PARLEY_OK) return e;
    if (store_unread_recall(base, &k, count)) return PARLEY_OK;
    sqlite3_stmt *stmt = s->stmt[STMT_UNREAD];
    int rc = sqlite3_bind_int64(stmt, 1, k.room_id);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(stmt, 2, (int64_t)after_seq);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 3, user_id, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(stmt, 4, (int64_t)cap);
    if (rc == SQLITE_OK) rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(stmt);
        return store_fail(s, rc, "count unread");
    }
    *count = (unsigned)sqlite3_column_int64(stmt, 0);
    assert(*count <= cap);
    e = store_finish(s, STMT_UNREAD);
    if (e == PARLEY_OK) store_unread_keep(base, &k, *count);
    return e;
}

static parley_err store_sqlite_erase_user(store *base, const char *room,
                                          const char *user_id, int64_t now_ms,
                                          store_msg_fn fn, void *ud,
                                          uint64_t *count)
{
    store_sqlite *s = (store_sqlite *)base;
    parley_err e = store_write_begin(s);
    if (e != PARLEY_OK) return e;
    if (room) {
        int64_t id;
        e = store_room_find(s, room, &id, NULL, NULL);
        if (e == PARLEY_OK)
            e = store_erase_in(s, id, room, user_id, now_ms, fn, ud, count);
        return store_write_end(s, e);
    }
    /* Every room: their ids and names first (the names copied, since the
     * erasing statements run after the scan). The index on (room_id,
     * author_id, ...) finds the user's messages in each. */
    store_ids ids = {NULL, 0, 0};
    char *names = NULL;
    size_t names_len = 0, names_cap = 0;
    sqlite3_stmt *stmt = s->stmt[STMT_ROOM_IDS];
    int rc;
    while (e == PARLEY_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        size_t n;
        const char *name = store_col_text(stmt, 1, &n);
        if (names_len + n + 1 > names_cap) {
            size_t cap = names_cap ? names_cap * 2 : 4096;
            while (cap < names_len + n + 1) cap *= 2;
            char *nn = realloc(names, cap);
            if (nn == NULL) {
                e = store_fail_msg(s, PARLEY_ERR_INTERNAL, "out of memory");
                break;
            }
            names = nn;
            names_cap = cap;
        }
        memcpy(names + names_len, name, n + 1);
        names_len += n + 1;
        if (store_ids_push(&ids, sqlite3_column_int64(stmt, 0)) != 0)
            e = store_fail_msg(s, PARLEY_ERR_INTERNAL, "out of memory");
    }
    sqlite3_reset(stmt);
    if (e == PARLEY_OK && rc != SQLITE_DONE) e = store_fail(s, rc, "room scan");
    const char *name = names;
    for (size_t i = 0; e == PARLEY_OK && i < ids.n; i++) {
        e = store_erase_in(s, ids.v[i], name, user_id, now_ms, fn, ud, count);
        name += strlen(name) + 1;
    }
    free(ids.v);
    free(names);
    return store_write_end(s, e);
}

const store_engine store_engine_sqlite = {
    .name = "sqlite",
    .serves = store_sqlite_serves,
    .open = store_sqlite_open,
    .open_reader = store_sqlite_open_reader,
    .sync = store_sqlite_sync,
    .snapshot_begin = store_sqlite_snapshot_begin,
    .snapshot_end = store_sqlite_snapshot_end,
    .own_checkpoints = store_sqlite_own_checkpoints,
    .log_pages = store_sqlite_log_pages,
    .checkpoint = store_sqlite_checkpoint,
    .close = store_sqlite_close,
    .last_error = store_sqlite_last_error,
    .synchronous = store_sqlite_synchronous,
    .begin = store_sqlite_begin,
    .commit = store_sqlite_commit,
    .rollback = store_sqlite_rollback,
    .room_create = store_sqlite_room_create,
    .room_get = store_sqlite_room_get,
    .room_list_for = store_sqlite_room_list_for,
    .room_update = store_sqlite_room_update,
    .room_delete = store_sqlite_room_delete,
    .room_access = store_sqlite_room_access,
    .member_set = store_sqlite_member_set,
    .member_remove = store_sqlite_member_remove,
    .member_list = store_sqlite_member_list,
    .sanction_set = store_sqlite_sanction_set,
    .action_append = store_sqlite_action_append,
    .action_list = store_sqlite_action_list,
    .erase_user = store_sqlite_erase_user,
    .read_mark = store_sqlite_read_mark,
    .unread_count = store_sqlite_unread_count,
    .probe = store_sqlite_probe,
    .append = store_sqlite_append,
    .get = store_sqlite_get,
    .find_client = store_sqlite_find_client,
    .edit = store_sqlite_edit,
    .remove = store_sqlite_delete,
    .list = store_sqlite_list,
};
