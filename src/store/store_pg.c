/* store_pg.c: the PostgreSQL engine of the store (store_engine.h), on libpq.
 * Owns one connection per handle, the schema and its migrations (table
 * parley_schema), and every SQL statement it runs; the data statements are
 * prepared once per connection (again after a reconnect).
 *
 * The promises of store.h under concurrency SQLite never sees (several
 * cores writing one database at once):
 *
 * - Dense seq and rev. Every write takes its numbers with UPDATE rooms SET
 *   head_... = head_... + 1 ... RETURNING, in the statement (append) or the
 *   transaction (edit, delete) that stores the change. The UPDATE row-locks
 *   the room until commit; under READ COMMITTED a second writer of the room
 *   waits on that lock and then re-reads the committed row, so it takes the
 *   next number. A rolled-back write releases its numbers with its lock:
 *   nobody else can have seen them.
 * - Idempotency. An append first looks for (room, author, client id). Two
 *   connections may both miss it and both try to insert; the second one
 *   waits on the room lock until the first commits, then its INSERT meets
 *   the unique index messages_client_id (SQLSTATE 23505): the statement
 *   (the bump and the insert, one statement) is undone as a whole and the
 *   committed original, visible to the next statement under READ
 *   COMMITTED, is the answer, with *duplicate = 1. ON CONFLICT DO NOTHING
 *   would not do: the bump in the same statement would stay, leaving a gap.
 * - Edit and delete lock the room first (SELECT ... FOR NO KEY UPDATE), so
 *   the message they check is the committed latest one (a tombstone is
 *   never edited back to life by a writer that read it before the delete).
 * - One snapshot per page. Each list is one statement: the room's heads and
 *   the page are read together (a LATERAL join), inside or outside the
 *   caller's transaction.
 * - Group commit. store_begin opens a READ COMMITTED transaction; every
 *   write in it runs under a SAVEPOINT, so a refused or failed write is
 *   undone alone and the others commit. COMMIT is checked to have
 *   committed (an aborted transaction's COMMIT reports ROLLBACK).
 * - Durability. synchronous_commit is set per session (on for FULL, off for
 *   NORMAL) and read back with the server's fsync: store_synchronous is
 *   FULL only when a commit returns after its WAL is flushed to disk, and
 *   store_open refuses a server that cannot give the level asked for.
 * - Connection loss. A failure on a broken connection (or a server that is
 *   shutting down, out of resources, or chose us as a deadlock victim) is
 *   PARLEY_ERR_IO, "retry". Outside a transaction the next call reconnects
 *   (PQreset, session setup, statements prepared again), and a call whose
 *   first statement only reads, or is BEGIN, retries once on a connection
 *   that turned out dead, since nothing can have been written. Inside a
 *   transaction every call fails until the caller ends it; a COMMIT without
 *   an answer is reported failed, so nothing is acked that may not be
 *   stored (a retry with the same client id then finds it if it was).
 *
 * Returned strings: as in store_sqlite.c. list hands out pointers into the
 * PGresult, valid while the callback runs; the single-row calls copy into
 * one of two per-handle buffers used in turn. */
#include "store_engine.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "rules.h"

/* Serialises migrations of one database (pg_advisory_xact_lock key). */
#define PG_MIGRATE_LOCK "7318029463150421"
/* Defaults for libpq settings the target does not give. A server that
 * stops answering (a network partition) must not hold the loop for long:
 * parleyd's loop waits on its one connection, and TCP alone would wait
 * minutes (a write's retransmissions back off to tens of seconds apart;
 * the cluster test measured a core cut off for 30 s stuck 26 s after the
 * network came back). tcp_user_timeout ends a connection whose sent data
 * went unacknowledged that long (a slow query is not that: the server's
 * kernel acknowledges at once), connect_timeout bounds each reconnect. */
#define PG_CONNECT_TIMEOUT "5"
#define PG_TCP_USER_TIMEOUT_MS "5000"
/* Server-side limits of parleyd's sessions (pg_session). */
#define PG_IDLE_IN_TX "2s"
#define PG_LOCK_TIMEOUT "5s"

/* ---- schema ------------------------------------------------------------ */

/* pg_migrations[i] brings a database from version i to i + 1, inside the
 * migration transaction. Never edit a published step; add a new one. */
static const char *const pg_migrations[] = {
    /* 0 -> 1: rooms and messages, as in the SQLite engine. */
    "CREATE TABLE rooms("
    "  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    "  name text COLLATE \"C\" NOT NULL UNIQUE," /* byte order */
    "  head_seq bigint NOT NULL DEFAULT 0,"
    "  head_rev bigint NOT NULL DEFAULT 0,"
    "  created_ms bigint NOT NULL);"
    "CREATE TABLE messages("
    "  room_id bigint NOT NULL REFERENCES rooms(id),"
    "  seq bigint NOT NULL,"
    "  rev bigint NOT NULL,"
    "  client_msg_id text NOT NULL,"
    "  author_id text NOT NULL,"
    "  author_name text NOT NULL,"
    "  author_role integer NOT NULL,"
    "  body text NOT NULL,"
    "  created_ms bigint NOT NULL,"
    "  edited_ms bigint NOT NULL DEFAULT 0,"
    "  deleted boolean NOT NULL DEFAULT false,"
    "  PRIMARY KEY(room_id, seq));"
    "CREATE UNIQUE INDEX messages_rev ON messages(room_id, rev);"
    "CREATE UNIQUE INDEX messages_client_id"
    "  ON messages(room_id, author_id, client_msg_id);",
    /* 1 -> 2: room settings, members, sanctions, actions (as in the
     * SQLite engine). A deleted room keeps its row, counters included. */
    "ALTER TABLE rooms ADD COLUMN title text NOT NULL DEFAULT '',"
    "  ADD COLUMN topic text NOT NULL DEFAULT '',"
    "  ADD COLUMN visibility integer NOT NULL DEFAULT 1,"
    "  ADD COLUMN mode integer NOT NULL DEFAULT 1,"
    "  ADD COLUMN deleted boolean NOT NULL DEFAULT false,"
    "  ADD COLUMN head_action bigint NOT NULL DEFAULT 0,"
    "  ADD COLUMN base_seq bigint NOT NULL DEFAULT 0;"
    "CREATE TABLE room_members("
    "  room_id bigint NOT NULL REFERENCES rooms(id),"
    "  user_id text COLLATE \"C\" NOT NULL,"
    "  role integer NOT NULL,"
    "  added_by text NOT NULL,"
    "  added_ms bigint NOT NULL,"
    "  PRIMARY KEY(room_id, user_id));"
    "CREATE TABLE room_sanctions("
    "  room_id bigint NOT NULL REFERENCES rooms(id),"
    "  user_id text NOT NULL,"
    "  kind integer NOT NULL,"
    "  until_ms bigint NOT NULL,"
    "  PRIMARY KEY(room_id, user_id, kind));"
    "CREATE TABLE room_actions("
    "  room_id bigint NOT NULL REFERENCES rooms(id),"
    "  id bigint NOT NULL,"
    "  kind integer NOT NULL,"
    "  actor_id text NOT NULL,"
    "  actor_name text NOT NULL,"
    "  actor_role integer NOT NULL,"
    "  target_user_id text NOT NULL,"
    "  at_ms bigint NOT NULL,"
    "  until_ms bigint NOT NULL,"
    "  reason text NOT NULL,"
    "  mode integer NOT NULL,"
    "  visibility integer NOT NULL,"
    "  role integer NOT NULL,"
    "  seq bigint NOT NULL,"
    "  count bigint NOT NULL,"
    "  PRIMARY KEY(room_id, id));"
    "CREATE TABLE room_reads("
    "  room_id bigint NOT NULL REFERENCES rooms(id),"
    "  user_id text NOT NULL,"
    "  last_read_seq bigint NOT NULL,"
    "  last_read_rev bigint NOT NULL,"
    "  at_ms bigint NOT NULL,"
    "  PRIMARY KEY(room_id, user_id));",
};
#define PG_SCHEMA_VERSION \
    ((int)(sizeof pg_migrations / sizeof pg_migrations[0]))

/* ---- statements -------------------------------------------------------- */

/* Message columns, in this order, in every statement that yields a message
 * (after a statement's leading columns). */
#define MSG_COLS(p)                                                   \
    p "seq, " p "rev, " p "client_msg_id, " p "author_id, " p         \
      "author_name, " p "author_role, " p "body, " p "created_ms, " p \
      "edited_ms, " p "deleted::int"
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
    COL_DELETED,
    COL__COUNT
};

enum {
    ST_ROOM_INSERT,
    ST_ROOM_GET,
    ST_ROOM_LOCK,
    ST_APPEND_FIND,
    ST_APPEND_INSERT,
    ST_MSG_GET,
    ST_MSG_READ,
    ST_MSG_EDIT,
    ST_MSG_DELETE,
    ST_LIST_AFTER_REV,
    ST_LIST_SEQ,
    ST_PROBE,
    ST_ROOM_READ,
    ST_ROOM_READ_LOCK,
    ST_ROOM_UPDATE,
    ST_ROOM_DELETE,
    ST_ROOM_ACCESS,
    ST_ROOM_LIST_FOR,
    ST_MEMBER_UPSERT,
    ST_MEMBER_GET,
    ST_MEMBER_DELETE,
    ST_MEMBER_LIST,
    ST_SANCTION_PUT,
    ST_SANCTION_DELETE,
    ST_ACTION_INSERT,
    ST_ACTION_LIST,
    ST_ERASE_ROOMS,
    ST_ERASE,
    ST_READ_MARK,
    ST_UNREAD,
    ST__COUNT
};

/* A room's settings, after its counters in the statements that read both
 * (ROOM_READ's columns: id, head_seq, head_rev, then these). */
#define PG_ROOM_SETTINGS "title, topic, visibility, mode"
/* One user's standing (the user id is the last parameter, $U): member
 * role, the mute's and the removal's end, NULL when none. */
#define PG_STANDING_COLS \
    "m.role, mu.until_ms, rm.until_ms, rd.last_read_seq, rd.last_read_rev"
#define PG_STANDING_JOINS(u)                            \
    " LEFT JOIN room_members m ON m.room_id = r.id"     \
    " AND m.user_id = " u "::text"                      \
    " LEFT JOIN room_sanctions mu ON mu.room_id = r.id" \
    " AND mu.user_id = " u "::text AND mu.kind = 1"     \
    " LEFT JOIN room_sanctions rm ON rm.room_id = r.id" \
    " AND rm.user_id = " u "::text AND rm.kind = 2"     \
    " LEFT JOIN room_reads rd ON rd.room_id = r.id"     \
    " AND rd.user_id = " u "::text"
#define PG_MEMBER_COLS "user_id, role, added_by, added_ms"
#define PG_ACTION_COLS                                                   \
    "id, kind, actor_id, actor_name, actor_role, target_user_id, at_ms," \
    " until_ms, reason, mode, visibility, role, seq, count"

static const struct {
    const char *name;
    int n_params;
    const char *sql;
} pg_stmts[ST__COUNT] = {
    /* A deleted room's name is created again in its old row. */
    [ST_ROOM_INSERT] = {"parley_room_insert", 6,
                        "INSERT INTO rooms(name, created_ms, title, topic,"
                        " visibility, mode) VALUES($1::text, $2::bigint,"
                        " $3::text, $4::text, $5::integer, $6::integer)"
                        " ON CONFLICT (name) DO UPDATE SET deleted = false,"
                        " created_ms = excluded.created_ms,"
                        " title = excluded.title, topic = excluded.topic,"
                        " visibility = excluded.visibility,"
                        " mode = excluded.mode WHERE rooms.deleted"},
    [ST_ROOM_GET] = {"parley_room_get", 1,
                     "SELECT id, head_seq, head_rev, base_seq FROM rooms"
                     " WHERE name = $1::text AND NOT deleted"},
    [ST_ROOM_LOCK] = {"parley_room_lock", 1,
                      "SELECT id FROM rooms WHERE name = $1::text"
                      " AND NOT deleted FOR NO KEY UPDATE"},
    /* The room and, if stored before, the message of (author, client id). */
    [ST_APPEND_FIND] = {"parley_append_find", 3,
                        "SELECT r.id, " MSG_COLS(
                            "m.") " FROM rooms r"
                                  " LEFT JOIN messages m ON m.room_id = r.id"
                                  "  AND m.author_id = $2::text"
                                  "  AND m.client_msg_id = $3::text"
                                  " WHERE r.name = $1::text AND NOT r.deleted"},
    /* One statement: the bump and the insert stand or fall together. */
    [ST_APPEND_INSERT] = {"parley_append_insert", 7,
                          "WITH b AS (UPDATE rooms"
                          "  SET head_seq = head_seq + 1,"
                          "      head_rev = head_rev + 1"
                          "  WHERE id = $1::bigint"
                          "  RETURNING head_seq, head_rev)"
                          " INSERT INTO messages(room_id, seq, rev,"
                          "  client_msg_id, author_id, author_name,"
                          "  author_role, body, created_ms)"
                          " SELECT $1::bigint, b.head_seq, b.head_rev,"
                          "  $2::text, $3::text, $4::text, $5::integer,"
                          "  $6::text, $7::bigint FROM b"
                          " RETURNING " MSG_COLS("")},
    [ST_MSG_GET] = {"parley_msg_get", 2,
                    "SELECT r.id, " MSG_COLS(
                        "m.") " FROM rooms r"
                              " LEFT JOIN messages m ON m.room_id = r.id"
                              "  AND m.seq = $2::bigint"
                              " WHERE r.name = $1::text AND NOT r.deleted"},
    [ST_MSG_READ] =
        {"parley_msg_read", 2,
         "SELECT " MSG_COLS(
             "") " FROM messages"
                 " WHERE room_id = $1::bigint AND seq = $2::bigint"},
    [ST_MSG_EDIT] = {"parley_msg_edit", 4,
                     "WITH b AS (UPDATE rooms SET head_rev = head_rev + 1"
                     "  WHERE id = $1::bigint RETURNING head_rev)"
                     " UPDATE messages m SET body = $3::text,"
                     "  rev = b.head_rev, edited_ms = $4::bigint FROM b"
                     " WHERE m.room_id = $1::bigint AND m.seq = $2::bigint"
                     " RETURNING " MSG_COLS("m.")},
    [ST_MSG_DELETE] = {"parley_msg_delete", 3,
                       "WITH b AS (UPDATE rooms SET head_rev = head_rev + 1"
                       "  WHERE id = $1::bigint RETURNING head_rev)"
                       " UPDATE messages m SET body = '', deleted = true,"
                       "  rev = b.head_rev, edited_ms = $3::bigint FROM b"
                       " WHERE m.room_id = $1::bigint AND m.seq = $2::bigint"
                       " RETURNING " MSG_COLS("m.")},
    /* Heads and page in one statement, so in one snapshot. A room without
     * messages in range yields one row whose message columns are NULL. */
    [ST_LIST_AFTER_REV] =
        {"parley_list_after_rev", 3,
         "SELECT r.head_seq, r.head_rev, r.base_seq, " MSG_COLS(
             "m.") " FROM rooms r LEFT JOIN LATERAL ("
                   "  SELECT * FROM messages WHERE room_id = r.id"
                   "  AND rev > $2::bigint ORDER BY rev"
                   "  LIMIT $3::bigint) m ON true"
                   " WHERE r.name = $1::text AND NOT r.deleted"
                   " ORDER BY m.rev"},
    /* seq is dense from base_seq + 1: the page is the range ending at
     * least(cursor, head_seq), limit long. */
    [ST_LIST_SEQ] =
        {"parley_list_seq", 3,
         "SELECT r.head_seq, r.head_rev, r.base_seq, " MSG_COLS(
             "m.") " FROM rooms r LEFT JOIN LATERAL ("
                   "  SELECT * FROM messages WHERE room_id = r.id"
                   "  AND seq <= least($2::bigint, r.head_seq)"
                   "  AND seq > least($2::bigint, r.head_seq) - $3::bigint"
                   "  ORDER BY seq) m ON true"
                   " WHERE r.name = $1::text AND NOT r.deleted"
                   " ORDER BY m.seq"},
    /* A committed write that changes no room and no message: a new row
     * version of the schema row, flushed like any commit. */
    [ST_PROBE] = {"parley_probe", 0,
                  "UPDATE parley_schema SET version = version"},
    [ST_ROOM_READ] = {"parley_room_read", 1,
                      "SELECT id, head_seq, head_rev, " PG_ROOM_SETTINGS
                      " FROM rooms WHERE name = $1::text AND NOT deleted"},
    /* The same, locking the row until the transaction ends. */
    [ST_ROOM_READ_LOCK] = {"parley_room_read_lock", 1,
                           "SELECT id, head_seq, head_rev, " PG_ROOM_SETTINGS
                           " FROM rooms WHERE name = $1::text AND NOT deleted"
                           " FOR NO KEY UPDATE"},
    [ST_ROOM_UPDATE] = {"parley_room_update", 5,
                        "UPDATE rooms SET title = $2::text, topic = $3::text,"
                        " visibility = $4::integer, mode = $5::integer"
                        " WHERE id = $1::bigint"},
    /* Everything of the room in one statement; its row stays, deleted,
     * with its counters (so the name can come back going on from them). */
    [ST_ROOM_DELETE] =
        {"parley_room_delete", 1,
         "WITH dm AS (DELETE FROM messages WHERE room_id = $1::bigint"
         "  RETURNING 1),"
         " dr AS (DELETE FROM room_members WHERE room_id = $1::bigint),"
         " ds AS (DELETE FROM room_sanctions WHERE room_id = $1::bigint),"
         " da AS (DELETE FROM room_actions WHERE room_id = $1::bigint),"
         " u AS (UPDATE rooms SET deleted = true, title = '', topic = '',"
         "  visibility = 1, mode = 1, base_seq = head_seq"
         "  WHERE id = $1::bigint)"
         " SELECT count(*) FROM dm"},
    [ST_ROOM_ACCESS] = {"parley_room_access", 2,
                        "SELECT " PG_ROOM_SETTINGS ", " PG_STANDING_COLS
                        " FROM rooms r" PG_STANDING_JOINS(
                            "$2") " WHERE r.name = $1::text AND NOT r.deleted"},
    /* The prefix is a range of the name's index: every name starting with
     * $2 sorts below $2 followed by '~', above every character a room name
     * may hold. */
    [ST_ROOM_LIST_FOR] =
        {"parley_room_list_for", 4,
         "SELECT name, head_seq, head_rev, " PG_ROOM_SETTINGS
         ", " PG_STANDING_COLS " FROM rooms r" PG_STANDING_JOINS(
             "$4") " WHERE r.name > $1::text AND r.name >= $2::text"
                   " AND r.name < $2::text || '~' AND NOT r.deleted"
                   " ORDER BY r.name LIMIT $3::bigint"},
    /* An unchanged role is no change: no row comes back. */
    [ST_MEMBER_UPSERT] = {"parley_member_upsert", 5,
                          "INSERT INTO room_members(room_id, user_id, role,"
                          " added_by, added_ms) VALUES($1::bigint, $2::text,"
                          " $3::integer, $4::text, $5::bigint)"
                          " ON CONFLICT (room_id, user_id) DO UPDATE"
                          " SET role = excluded.role,"
                          " added_by = excluded.added_by,"
                          " added_ms = excluded.added_ms"
                          " WHERE room_members.role <> excluded.role"
                          " RETURNING " PG_MEMBER_COLS},
    [ST_MEMBER_GET] = {"parley_member_get", 2,
                       "SELECT " PG_MEMBER_COLS " FROM room_members"
                       " WHERE room_id = $1::bigint AND user_id = $2::text"},
    [ST_MEMBER_DELETE] = {"parley_member_delete", 2,
                          "DELETE FROM room_members WHERE room_id = $1::bigint"
                          " AND user_id = $2::text"},
    [ST_MEMBER_LIST] = {"parley_member_list", 3,
                        "SELECT " PG_MEMBER_COLS " FROM room_members"
                        " WHERE room_id = $1::bigint AND user_id > $2::text"
                        " ORDER BY user_id LIMIT $3::bigint"},
    [ST_SANCTION_PUT] = {"parley_sanction_put", 4,
                         "INSERT INTO room_sanctions(room_id, user_id, kind,"
                         " until_ms) VALUES($1::bigint, $2::text, $3::integer,"
                         " $4::bigint) ON CONFLICT (room_id, user_id, kind)"
                         " DO UPDATE SET until_ms = excluded.until_ms"},
    [ST_SANCTION_DELETE] = {"parley_sanction_delete", 3,
                            "DELETE FROM room_sanctions WHERE room_id ="
                            " $1::bigint AND user_id = $2::text"
                            " AND kind = $3::integer"},
    /* The id and the row in one statement, like an append's seq. */
    [ST_ACTION_INSERT] =
        {"parley_action_insert", 14,
         "WITH b AS (UPDATE rooms SET head_action = head_action + 1"
         "  WHERE id = $1::bigint RETURNING head_action)"
         " INSERT INTO room_actions(room_id, " PG_ACTION_COLS ")"
         " SELECT $1::bigint, b.head_action, $2::integer, $3::text, $4::text,"
         " $5::integer, $6::text, $7::bigint, $8::bigint, $9::text,"
         " $10::integer, $11::integer, $12::integer, $13::bigint,"
         " $14::bigint FROM b RETURNING id"},
    [ST_ACTION_LIST] = {"parley_action_list", 3,
                        "SELECT " PG_ACTION_COLS " FROM room_actions"
                        " WHERE room_id = $1::bigint AND id > $2::bigint"
                        " ORDER BY id LIMIT $3::bigint"},
    /* The rooms where user $1 has a message left to erase; each probe uses
     * the (room_id, author_id, ...) index. */
    [ST_ERASE_ROOMS] = {"parley_erase_rooms", 1,
                        "SELECT id, name FROM rooms r WHERE NOT deleted"
                        " AND EXISTS (SELECT 1 FROM messages m"
                        "  WHERE m.room_id = r.id AND m.author_id = $1::text"
                        "  AND NOT m.deleted) ORDER BY name"},
    /* Every live message of $2 in room $1 becomes a tombstone with its
     * own new rev, in seq order, in one statement (the room is locked by
     * the caller first, so t is the latest committed state). */
    [ST_ERASE] =
        {"parley_erase", 3,
         "WITH t AS (SELECT seq, row_number() OVER (ORDER BY seq) AS k"
         "  FROM messages WHERE room_id = $1::bigint"
         "  AND author_id = $2::text AND NOT deleted),"
         " b AS (UPDATE rooms SET head_rev = head_rev + (SELECT count(*)"
         "  FROM t) WHERE id = $1::bigint RETURNING head_rev),"
         " u AS (UPDATE messages m SET body = '', deleted = true,"
         "  author_name = '', edited_ms = $3::bigint,"
         "  rev = b.head_rev - (SELECT count(*) FROM t) + t.k"
         "  FROM t, b WHERE m.room_id = $1::bigint AND m.seq = t.seq"
         "  RETURNING m.*)"
         " SELECT " MSG_COLS("") " FROM u ORDER BY seq"},
    [ST_READ_MARK] = {"parley_read_mark", 5,
                      "INSERT INTO room_reads(room_id, user_id, last_read_seq,"
                      " last_read_rev, at_ms) VALUES($1::bigint, $2::text,"
                      " $3::bigint, $4::bigint, $5::bigint)"
                      " ON CONFLICT (room_id, user_id) DO UPDATE SET"
                      " last_read_seq = greatest(room_reads.last_read_seq,"
                      "  excluded.last_read_seq),"
                      " last_read_rev = greatest(room_reads.last_read_rev,"
                      "  excluded.last_read_rev), at_ms = excluded.at_ms"
                      " RETURNING last_read_seq, last_read_rev"},
    [ST_UNREAD] = {"parley_unread", 4,
                   "SELECT count(*) FROM (SELECT 1 FROM messages"
                   " WHERE room_id = $1::bigint AND seq > $2::bigint"
                   " AND NOT deleted AND author_id <> $3::text"
                   " LIMIT $4::bigint) t"},
};

/* The engine's handle; `base` first, as store_engine.h asks. */
typedef struct store_pg {
    store base;
    PGconn *conn;
    int sync_full; /* asked for: synchronous_commit on */
    int ready;     /* the session is set up on this connection */
    /* Two row buffers used in turn by the single-row calls. */
    store_rows rows; /* the strings of results (store_rows_take) */
    char shown[256]; /* the target without secrets, for logs */
    char err[512];
} store_pg;

/* ---- errors ------------------------------------------------------------ */

/* Classes of SQLSTATE that say "the database could not do it now" rather
 * than "this request is wrong": connection exceptions (08), transaction
 * rollbacks such as deadlocks (40), insufficient resources (53), operator
 * intervention such as a shutdown (57), system errors (58). */
static int pg_state_transient(const char *state)
{
    static const char *const classes[] = {"08", "40", "53", "57", "58"};
    if (state == NULL) return 0;
    for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++)
        if (strncmp(state, classes[i], 2) == 0) return 1;
    return 0;
}

/* Records why res (or the connection, when res says nothing) failed, and
 * maps it: IO for a lost connection or a transient state, else INTERNAL. */
static parley_err pg_fail(store_pg *s, const PGresult *res, const char *what)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorMessage(res) : "";
    if (msg == NULL || msg[0] == '\0') msg = PQerrorMessage(s->conn);
    int n = (int)strcspn(msg, "\n");
    snprintf(s->err, sizeof s->err, "%s: %.*s%s%s%s", what, n, msg,
             state ? " (sqlstate " : "", state ? state : "", state ? ")" : "");
    if (PQstatus(s->conn) != CONNECTION_OK || pg_state_transient(state))
        return PARLEY_ERR_IO;
    return PARLEY_ERR_INTERNAL;
}

static parley_err pg_fail_msg(store_pg *s, parley_err e, const char *msg)
{
    snprintf(s->err, sizeof s->err, "%s", msg);
    return e;
}

static int pg_ok(const PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

/* What a statement meant to read one row gave (res may be NULL: pg_read
 * could not reach the server): PARLEY_OK when it holds a row, none when
 * it holds none, else the failure, told with what. */
static parley_err pg_one(store_pg *s, const PGresult *res, const char *what,
                         parley_err none)
{
    if (!pg_ok(res)) return pg_fail(s, res, what);
    return PQntuples(res) == 0 ? none : PARLEY_OK;
}

/* The SQLSTATE of a failed result, or "". */
static const char *pg_state(const PGresult *res)
{
    const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    return st ? st : "";
}

/* A unique violation of the (room, author, client id) index. */
static int pg_is_client_id_conflict(const PGresult *res)
{
    const char *c = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
    return strcmp(pg_state(res), "23505") == 0 && c != NULL &&
           strcmp(c, "messages_client_id") == 0;
}

/* ---- running statements ------------------------------------------------ */

/* Runs fixed SQL (transaction control) and checks it succeeded. */
static parley_err pg_exec(store_pg *s, const char *sql)
{
    PGresult *res = PQexec(s->conn, sql);
    parley_err e = pg_ok(res) ? PARLEY_OK : pg_fail(s, res, sql);
    PQclear(res);
    return e;
}

/* Parameters of one statement: text, or (with a length) raw bytes of a
 * text value, which need no NUL at their end. */
#define PG_PARAMS_MAX 16
typedef struct pg_params {
    int n;
    const char *val[PG_PARAMS_MAX];
    int len[PG_PARAMS_MAX];
    int fmt[PG_PARAMS_MAX];
    char num[PG_PARAMS_MAX][24];
} pg_params;

static void pg_param_text(pg_params *p, const char *v)
{
    assert(p->n < PG_PARAMS_MAX);
    p->val[p->n] = v;
    p->len[p->n] = 0;
    p->fmt[p->n] = 0;
    p->n++;
}

static void pg_param_bytes(pg_params *p, const char *v, size_t len)
{
    assert(p->n < PG_PARAMS_MAX && len <= (size_t)INT32_MAX);
    p->val[p->n] = v;
    p->len[p->n] = (int)len;
    p->fmt[p->n] = 1; /* text's binary form is its bytes */
    p->n++;
}

static void pg_param_i64(pg_params *p, int64_t v)
{
    assert(p->n < PG_PARAMS_MAX);
    snprintf(p->num[p->n], sizeof p->num[p->n], "%" PRId64, v);
    pg_param_text(p, p->num[p->n]);
}

static int64_t pg_u64_to_i64(uint64_t v)
{
    return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
}

static PGresult *pg_run(store_pg *s, int id, const pg_params *p)
{
    assert(p->n == pg_stmts[id].n_params);
    return PQexecPrepared(s->conn, pg_stmts[id].name, p->n, p->val, p->len,
                          p->fmt, 0);
}

/* ---- session ----------------------------------------------------------- */

/* Reads one text value of a one-row query into out. */
static parley_err pg_query_text(store_pg *s, const char *sql, char *out,
                                size_t len)
{
    PGresult *res = PQexec(s->conn, sql);
    parley_err e = PARLEY_OK;
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        e = pg_fail(s, res, sql);
    else if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0))
        e = pg_fail_msg(s, PARLEY_ERR_INTERNAL, "query returned no value");
    else
        snprintf(out, len, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return e;
}

/* The level the session runs with: STORE_SYNC_FULL when a commit waits
 * for its WAL to be flushed (synchronous_commit other than off, and fsync
 * on), NORMAL when it does not wait (the WAL writer flushes it soon
 * after), OFF when the server does not flush at all (fsync off). */
static int pg_sync_level(store_pg *s)
{
    char commit[32], fsync[8];
    if (pg_query_text(s, "SELECT current_setting('synchronous_commit')", commit,
                      sizeof commit) != PARLEY_OK ||
        pg_query_text(s, "SELECT current_setting('fsync')", fsync,
                      sizeof fsync) != PARLEY_OK)
        return -1;
    if (strcmp(fsync, "on") != 0) return STORE_SYNC_OFF;
    return strcmp(commit, "off") == 0 ? STORE_SYNC_NORMAL : STORE_SYNC_FULL;
}

/* The schema version of the database; 0 if parley never ran on it. */
static parley_err pg_schema_version(store_pg *s, int *version)
{
    char v[32];
    parley_err e = pg_query_text(
        s, "SELECT to_regclass('parley_schema') IS NOT NULL", v, sizeof v);
    if (e != PARLEY_OK) return e;
    if (strcmp(v, "t") != 0) {
        *version = 0;
        return PARLEY_OK;
    }
    e = pg_query_text(s, "SELECT version FROM parley_schema", v, sizeof v);
    if (e != PARLEY_OK) return e;
    *version = atoi(v);
    return PARLEY_OK;
}

static parley_err pg_too_new(int version, char *errmsg, size_t errlen)
{
    snprintf(errmsg, errlen,
             "database schema version %d is newer than this parley "
             "supports (%d); upgrade parley",
             version, PG_SCHEMA_VERSION);
    return PARLEY_ERR_SCHEMA_TOO_NEW;
}

/* Runs the migrations the database lacks, in one transaction under an
 * advisory lock, so cores starting at once on a new database do not both
 * create the tables (DDL is transactional in PostgreSQL). */
static parley_err pg_migrate(store_pg *s, char *errmsg, size_t errlen)
{
    int version = 0;
    char sql[64];
    parley_err e = pg_exec(s, "BEGIN ISOLATION LEVEL READ COMMITTED");
    if (e != PARLEY_OK) return e;
    e = pg_exec(s, "SELECT pg_advisory_xact_lock(" PG_MIGRATE_LOCK ")");
    if (e == PARLEY_OK) e = pg_schema_version(s, &version);
    if (e == PARLEY_OK && version > PG_SCHEMA_VERSION) {
        (void)pg_exec(s, "ROLLBACK");
        return pg_too_new(version, errmsg, errlen);
    }
    if (e == PARLEY_OK && version == 0)
        e = pg_exec(s, "CREATE TABLE parley_schema("
                       "  one boolean PRIMARY KEY DEFAULT true CHECK (one),"
                       "  version integer NOT NULL);"
                       "INSERT INTO parley_schema(version) VALUES (0)");
    for (int v = version; e == PARLEY_OK && v < PG_SCHEMA_VERSION; v++) {
        e = pg_exec(s, pg_migrations[v]);
        if (e != PARLEY_OK)
            snprintf(errmsg, errlen, "migration %d -> %d failed: %s", v, v + 1,
                     s->err);
    }
    if (e == PARLEY_OK && version < PG_SCHEMA_VERSION) {
        snprintf(sql, sizeof sql, "UPDATE parley_schema SET version = %d",
                 PG_SCHEMA_VERSION);
        e = pg_exec(s, sql);
    }
    if (e == PARLEY_OK) e = pg_exec(s, "COMMIT");
    if (e != PARLEY_OK) {
        (void)PQclear(PQexec(s->conn, "ROLLBACK"));
        if (errmsg[0] == '\0') snprintf(errmsg, errlen, "%s", s->err);
    }
    return e;
}

/* What every new connection (the first, and each after a reset) runs:
 * the session's durability, the encoding check, the migrations (at open
 * only), the schema check, and the prepared statements (they live as long
 * as the connection). */
/* SET name = value unless the session already has it set (not 0, the
 * server's default of both timeouts parleyd sets). */
static parley_err pg_default_setting(store_pg *s, const char *name,
                                     const char *value)
{
    char cur[64], sql[160];
    snprintf(sql, sizeof sql, "SELECT current_setting('%s')", name);
    parley_err e = pg_query_text(s, sql, cur, sizeof cur);
    if (e != PARLEY_OK || strcmp(cur, "0") != 0) return e;
    snprintf(sql, sizeof sql, "SET %s = '%s'", name, value);
    return pg_exec(s, sql);
}

static parley_err pg_session(store_pg *s, int migrate, char *errmsg,
                             size_t errlen)
{
    char enc[32];
    int version = 0;
    parley_err e = pg_exec(s, s->sync_full ? "SET synchronous_commit = on"
                                           : "SET synchronous_commit = off");
    if (e == PARLEY_OK)
        e = pg_query_text(s, "SELECT current_setting('server_encoding')", enc,
                          sizeof enc);
    if (e == PARLEY_OK && strcmp(enc, "UTF8") != 0) {
        snprintf(errmsg, errlen,
                 "the database's encoding is %s; parley needs UTF8 "
                 "(CREATE DATABASE ... ENCODING 'UTF8')",
                 enc);
        return PARLEY_ERR_INTERNAL;
    }
    /* An ack promises durability: read the level back and refuse a
     * session that cannot give what was asked. */
    int want = s->sync_full ? STORE_SYNC_FULL : STORE_SYNC_NORMAL;
    int got = e == PARLEY_OK ? pg_sync_level(s) : -1;
    if (e == PARLEY_OK && got != want) {
        if (got == STORE_SYNC_OFF)
            snprintf(errmsg, errlen,
                     "the PostgreSQL server runs with fsync=off: a commit "
                     "would not survive a crash, so parley will not ack on "
                     "it");
        else
            snprintf(errmsg, errlen,
                     "synchronous level is %d after asking for %d", got, want);
        return PARLEY_ERR_INTERNAL;
    }
    if (e == PARLEY_OK && migrate) e = pg_migrate(s, errmsg, errlen);
    /* Several cores lock the same room rows in their group commits. A
     * core cut off the network in the middle of one leaves its session
     * "idle in transaction" on the server, holding those locks, and every
     * other core's commit to those rooms waits (the cluster test saw all
     * three cores stall behind one partitioned core). The server ends such
     * a session after PG_IDLE_IN_TX (parleyd never pauses inside a
     * transaction: its statements go back to back); lock_timeout bounds
     * any other wait. Set only where the operator did not (a role's or the
     * URI's options win). */
    if (e == PARLEY_OK)
        e = pg_default_setting(s, "idle_in_transaction_session_timeout",
                               PG_IDLE_IN_TX);
    if (e == PARLEY_OK)
        e = pg_default_setting(s, "lock_timeout", PG_LOCK_TIMEOUT);
    if (e == PARLEY_OK) e = pg_schema_version(s, &version);
    if (e == PARLEY_OK && version > PG_SCHEMA_VERSION)
        return pg_too_new(version, errmsg, errlen);
    if (e == PARLEY_OK && version < PG_SCHEMA_VERSION)
        return pg_fail_msg(s, PARLEY_ERR_INTERNAL,
                           "the database lost its parley schema");
    for (int i = 0; e == PARLEY_OK && i < ST__COUNT; i++) {
        PGresult *res = PQprepare(s->conn, pg_stmts[i].name, pg_stmts[i].sql,
                                  pg_stmts[i].n_params, NULL);
        if (!pg_ok(res)) e = pg_fail(s, res, pg_stmts[i].name);
        PQclear(res);
    }
    if (e != PARLEY_OK && errmsg[0] == '\0')
        snprintf(errmsg, errlen, "%s", s->err);
    return e;
}

/* Makes sure the connection is up and set up before a call. Outside a
 * transaction a broken one is reset (and set up again); inside one, the
 * transaction is lost and every call fails until the caller ends it. */
static parley_err pg_ready(store_pg *s)
{
    char msg[256] = "";
    if (PQstatus(s->conn) == CONNECTION_OK && s->ready) return PARLEY_OK;
    if (s->base.in_txn)
        return pg_fail_msg(s, PARLEY_ERR_IO,
                           "connection to PostgreSQL lost in a transaction");
    if (PQstatus(s->conn) != CONNECTION_OK) {
        s->ready = 0;
        PQreset(s->conn);
        if (PQstatus(s->conn) != CONNECTION_OK) {
            const char *m = PQerrorMessage(s->conn);
            snprintf(s->err, sizeof s->err, "reconnect: %.*s",
                     (int)strcspn(m, "\n"), m);
            return PARLEY_ERR_IO;
        }
    }
    parley_err e = pg_session(s, 0, msg, sizeof msg);
    if (e != PARLEY_OK) {
        if (msg[0]) snprintf(s->err, sizeof s->err, "%s", msg);
        return e == PARLEY_ERR_SCHEMA_TOO_NEW ? e : PARLEY_ERR_IO;
    }
    s->ready = 1;
    return PARLEY_OK;
}

/* A statement that only reads: on a connection found dead (the server
 * restarted while we were idle) it is run again once after a reconnect,
 * outside a transaction, since nothing can have been written. */
static PGresult *pg_read(store_pg *s, int id, const pg_params *p)
{
    PGresult *res = pg_run(s, id, p);
    if (pg_ok(res) || s->base.in_txn || PQstatus(s->conn) == CONNECTION_OK)
        return res;
    PQclear(res);
    s->ready = 0;
    if (pg_ready(s) != PARLEY_OK) return NULL;
    return pg_run(s, id, p);
}

/* ---- rows -------------------------------------------------------------- */

static int64_t pg_i64(const PGresult *res, int row, int col)
{
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* Points m into row `row` of res, whose message columns start at col0. */
static void pg_row_view(const PGresult *res, int row, int col0,
                        const char *room, parley_msg *m)
{
    m->room = room;
    m->seq = (uint64_t)pg_i64(res, row, col0 + COL_SEQ);
    m->rev = (uint64_t)pg_i64(res, row, col0 + COL_REV);
    m->client_msg_id = PQgetvalue(res, row, col0 + COL_CLIENT_ID);
    m->author.id = PQgetvalue(res, row, col0 + COL_AUTHOR_ID);
    m->author.display_name = PQgetvalue(res, row, col0 + COL_AUTHOR_NAME);
    m->author.role = (int)pg_i64(res, row, col0 + COL_AUTHOR_ROLE);
    m->body = PQgetvalue(res, row, col0 + COL_BODY);
    m->body_len = (size_t)PQgetlength(res, row, col0 + COL_BODY);
    m->created_at_ms = pg_i64(res, row, col0 + COL_CREATED);
    m->edited_at_ms = pg_i64(res, row, col0 + COL_EDITED);
    m->deleted = pg_i64(res, row, col0 + COL_DELETED) != 0;
}

/* Copies row `row` of res (message columns from col0) and the room name
 * into a row buffer. */
static parley_err pg_row_copy(store_pg *s, const PGresult *res, int row,
                              int col0, const char *room, parley_msg *m)
{
    parley_msg v;
    pg_row_view(res, row, col0, room, &v);
    size_t lr = strlen(room), lc = strlen(v.client_msg_id),
           la = strlen(v.author.id), ln = strlen(v.author.display_name);
    char *p = store_rows_take(&s->rows, lr + lc + la + ln + v.body_len + 5);
    if (p == NULL) return pg_fail_msg(s, PARLEY_ERR_INTERNAL, "out of memory");
    *m = v;
    m->room = store_rows_put(&p, room, lr);
    m->client_msg_id = store_rows_put(&p, v.client_msg_id, lc);
    m->author.id = store_rows_put(&p, v.author.id, la);
    m->author.display_name = store_rows_put(&p, v.author.display_name, ln);
    m->body = store_rows_put(&p, v.body, v.body_len);
    return PARLEY_OK;
}

/* The settings columns of row `row` of res from col on, as views. */
static void pg_settings_view(const PGresult *res, int row, int col,
                             parley_room *r)
{
    r->title = PQgetvalue(res, row, col);
    r->topic = PQgetvalue(res, row, col + 1);
    r->visibility = (int)pg_i64(res, row, col + 2);
    r->mode = (int)pg_i64(res, row, col + 3);
}

/* Copies room v (views) into a row buffer as out. */
static parley_err pg_room_keep(store_pg *s, const parley_room *v,
                               parley_room *out)
{
    size_t ln = strlen(v->name), lt = strlen(v->title), lp = strlen(v->topic);
    char *p = store_rows_take(&s->rows, ln + lt + lp + 3);
    if (p == NULL) return pg_fail_msg(s, PARLEY_ERR_INTERNAL, "out of memory");
    *out = *v;
    out->name = store_rows_put(&p, v->name, ln);
    out->title = store_rows_put(&p, v->title, lt);
    out->topic = store_rows_put(&p, v->topic, lp);
    return PARLEY_OK;
}

/* The standing columns of row `row` from col on (PG_STANDING_COLS). */
static void pg_standing_view(const PGresult *res, int row, int col,
                             parley_standing *st)
{
    memset(st, 0, sizeof *st);
    if (!PQgetisnull(res, row, col))
        st->member_role = (int)pg_i64(res, row, col);
    if (!PQgetisnull(res, row, col + 1)) {
        st->muted = 1;
        st->muted_until_ms = pg_i64(res, row, col + 1);
    }
    if (!PQgetisnull(res, row, col + 2)) {
        st->removed = 1;
        st->removed_until_ms = pg_i64(res, row, col + 2);
    }
    if (!PQgetisnull(res, row, col + 3)) {
        st->last_read_seq = (uint64_t)pg_i64(res, row, col + 3);
        st->last_read_rev = (uint64_t)pg_i64(res, row, col + 4);
    }
}

/* ---- transactions ------------------------------------------------------ */

/* A write joins the caller's transaction under a savepoint, or runs in a
 * transaction of its own (own = 1) when it takes more than one statement. */
static parley_err pg_write_begin(store_pg *s)
{
    if (s->base.in_txn) return pg_exec(s, "SAVEPOINT parley_write");
    parley_err e = pg_exec(s, "BEGIN ISOLATION LEVEL READ COMMITTED");
    if (e == PARLEY_ERR_IO && PQstatus(s->conn) != CONNECTION_OK) {
        /* Found dead at BEGIN: nothing was written; reconnect once. */
        s->ready = 0;
        e = pg_ready(s);
        if (e == PARLEY_OK)
            e = pg_exec(s, "BEGIN ISOLATION LEVEL READ COMMITTED");
    }
    return e;
}

/* Readies the connection and begins a write; on an error no write is open
 * (nothing for pg_write_end to end). */
static parley_err pg_write_open(store_pg *s)
{
    parley_err e = pg_ready(s);
    if (e == PARLEY_OK) e = pg_write_begin(s);
    return e;
}

/* Checks that COMMIT committed: in an aborted transaction PostgreSQL
 * answers COMMIT with the tag ROLLBACK. */
static parley_err pg_commit_now(store_pg *s)
{
    PGresult *res = PQexec(s->conn, "COMMIT");
    parley_err e = PARLEY_OK;
    if (!pg_ok(res))
        e = pg_fail(s, res, "COMMIT");
    else if (strcmp(PQcmdStatus(res), "COMMIT") != 0)
        e = pg_fail_msg(s, PARLEY_ERR_INTERNAL,
                        "COMMIT rolled back an aborted transaction");
    PQclear(res);
    return e;
}

/* Keeps the first error's text across the clean-up statements. */
static void pg_quiet(store_pg *s, const char *sql)
{
    char keep[sizeof s->err];
    memcpy(keep, s->err, sizeof keep);
    if (PQstatus(s->conn) == CONNECTION_OK) PQclear(PQexec(s->conn, sql));
    memcpy(s->err, keep, sizeof keep);
}

static parley_err pg_write_end(store_pg *s, parley_err e)
{
    if (s->base.in_txn) {
        if (e == PARLEY_OK) {
            e = pg_exec(s, "RELEASE parley_write");
            if (e == PARLEY_OK) return PARLEY_OK;
        }
        pg_quiet(s, "ROLLBACK TO parley_write");
        pg_quiet(s, "RELEASE parley_write");
        return e;
    }
    if (e == PARLEY_OK) return pg_commit_now(s);
    pg_quiet(s, "ROLLBACK");
    return e;
}

static parley_err pg_begin(store *base)
{
    /* store.c sets in_txn after this returns: this is an own BEGIN. */
    return pg_write_open((store_pg *)base);
}

/* store.c has already cleared base.in_txn. */
static parley_err pg_commit(store *base)
{
    store_pg *s = (store_pg *)base;
    if (PQstatus(s->conn) != CONNECTION_OK)
        return pg_fail_msg(s, PARLEY_ERR_IO,
                           "connection to PostgreSQL lost in a transaction");
    parley_err e = pg_commit_now(s);
    if (e != PARLEY_OK) pg_quiet(s, "ROLLBACK");
    return e;
}

static void pg_rollback(store *base) { pg_quiet((store_pg *)base, "ROLLBACK"); }

/* ---- open / close ------------------------------------------------------ */

static void pg_close(store *base)
{
    store_pg *s = (store_pg *)base;
    PQfinish(s->conn); /* an open transaction is rolled back by the server */
    store_rows_free(&s->rows);
    free(s);
}

/* Another connection with the parameters the first one uses (PQconninfo:
 * the password included), for a reader thread (store_open_reader); its
 * application_name says "/reader". */
/* Fails an open whose connection did not come up: errmsg says why (libpq's
 * first line) and s is closed. */
static parley_err pg_open_failed(store_pg *s, char *errmsg, size_t errlen)
{
    const char *m = s->conn ? PQerrorMessage(s->conn) : "out of memory";
    snprintf(errmsg, errlen, "connect: %.*s", (int)strcspn(m, "\n"), m);
    pg_close(&s->base);
    return PARLEY_ERR_IO;
}

/* Ends an open on a live connection: the session (with migrate, the
 * schema brought up to date), then s in *out; on an error errmsg says why
 * and s is closed. */
static parley_err pg_open_end(store_pg *s, int migrate, store **out,
                              char *errmsg, size_t errlen)
{
    parley_err e = pg_session(s, migrate, errmsg, errlen);
    if (e != PARLEY_OK) {
        if (errmsg[0] == '\0') snprintf(errmsg, errlen, "%s", s->err);
        pg_close(&s->base);
        return e;
    }
    s->ready = 1;
    *out = &s->base;
    return PARLEY_OK;
}

static parley_err pg_open_reader(store *base, store **out, char *errmsg,
                                 size_t errlen)
{
    store_pg *w = (store_pg *)base;
    PQconninfoOption *info = PQconninfo(w->conn);
    store_pg *s = info ? calloc(1, sizeof *s) : NULL;
    size_t n = 0;
    for (PQconninfoOption *o = info; o && o->keyword; o++) n++;
    const char **keys = s ? calloc(n + 1, sizeof *keys) : NULL;
    const char **vals = s ? calloc(n + 1, sizeof *vals) : NULL;
    if (!keys || !vals) {
        free(keys);
        free(vals);
        free(s);
        if (info) PQconninfoFree(info);
        snprintf(errmsg, errlen, "out of memory");
        return PARLEY_ERR_INTERNAL;
    }
    /* The same application name with "/reader": pg_stat_activity tells
     * the readers' connections from the one that writes. */
    char app[64];
    size_t k = 0;
    for (PQconninfoOption *o = info; o->keyword; o++) {
        if (!o->val || !o->val[0]) continue;
        keys[k] = o->keyword;
        vals[k++] = o->val;
        if (strcmp(o->keyword, "application_name") == 0) {
            snprintf(app, sizeof app, "%.56s/reader", o->val);
            vals[k - 1] = app;
        }
    }
    s->sync_full = w->sync_full;
    s->conn = PQconnectdbParams(keys, vals, 0);
    free(keys);
    free(vals);
    PQconninfoFree(info);
    if (s->conn == NULL || PQstatus(s->conn) != CONNECTION_OK)
        return pg_open_failed(s, errmsg, errlen);
    snprintf(s->shown, sizeof s->shown, "%s", w->shown);
    return pg_open_end(s, 0, out, errmsg, errlen);
}

/* postgres://... or postgresql://... (libpq's URI forms). */
static int pg_serves(const char *target)
{
    return strncmp(target, "postgres://", 11) == 0 ||
           strncmp(target, "postgresql://", 13) == 0;
}

static parley_err pg_open(const char *target, const store_opts *opts,
                          store **out, char *errmsg, size_t errlen)
{
    store_pg *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(errmsg, errlen, "out of memory");
        return PARLEY_ERR_INTERNAL;
    }
    s->sync_full = opts == NULL || opts->synchronous_full != 0;
    /* Defaults first: what the target says wins over them. */
    const char *const keys[] = {"connect_timeout",
                                "application_name",
                                "client_encoding",
                                "keepalives_idle",
                                "keepalives_interval",
                                "keepalives_count",
                                "tcp_user_timeout",
                                "dbname",
                                NULL};
    const char *const vals[] = {
        PG_CONNECT_TIMEOUT,     "parley", "UTF8", "30", "10", "3",
        PG_TCP_USER_TIMEOUT_MS, target,   NULL};
    s->conn = PQconnectdbParams(keys, vals, 1);
    if (s->conn == NULL) {
        free(s);
        snprintf(errmsg, errlen, "out of memory");
        return PARLEY_ERR_INTERNAL;
    }
    if (PQstatus(s->conn) != CONNECTION_OK)
        return pg_open_failed(s, errmsg, errlen);
    const char *host = PQhost(s->conn);
    snprintf(s->shown, sizeof s->shown, "postgres://%s@%s%s%s:%s/%s",
             PQuser(s->conn), host && host[0] == '/' ? "[" : "",
             host ? host : "", host && host[0] == '/' ? "]" : "",
             PQport(s->conn), PQdb(s->conn));
    return pg_open_end(s, 1, out, errmsg, errlen);
}

static int pg_synchronous(store *base)
{
    store_pg *s = (store_pg *)base;
    if (pg_ready(s) != PARLEY_OK) return -1;
    return pg_sync_level(s);
}

static const char *pg_last_error(const store *base)
{
    const store_pg *s = (const store_pg *)base;
    return s->err[0] ? s->err : "no error";
}

static const char *pg_describe(const store *base)
{
    return ((const store_pg *)base)->shown;
}

/* ---- rooms ------------------------------------------------------------- */

/* Reads the room's id and heads: ROOM_NOT_FOUND if absent. */
static parley_err pg_room_find_ex(store_pg *s, const char *name, int64_t *id,
                                  uint64_t *head_seq, uint64_t *head_rev,
                                  uint64_t *base_seq)
{
    pg_params p = {0};
    pg_param_text(&p, name);
    PGresult *res = pg_read(s, ST_ROOM_GET, &p);
    parley_err e = PARLEY_OK;
    e = pg_one(s, res, "read room", PARLEY_ERR_ROOM_NOT_FOUND);
    if (e == PARLEY_OK) {
        *id = pg_i64(res, 0, 0);
        if (head_seq) *head_seq = (uint64_t)pg_i64(res, 0, 1);
        if (head_rev) *head_rev = (uint64_t)pg_i64(res, 0, 2);
        if (base_seq) *base_seq = (uint64_t)pg_i64(res, 0, 3);
    }
    PQclear(res);
    return e;
}

static parley_err pg_room_find(store_pg *s, const char *name, int64_t *id,
                               uint64_t *head_seq, uint64_t *head_rev)
{
    return pg_room_find_ex(s, name, id, head_seq, head_rev, NULL);
}

/* Begins a write on room, its row id in *id. On success the caller ends
 * the write with pg_write_end; on an error none is open (a missing room
 * has ended it already). */
static parley_err pg_write_room(store_pg *s, const char *room, int64_t *id)
{
    parley_err e = pg_write_open(s);
    if (e != PARLEY_OK) return e;
    e = pg_room_find(s, room, id, NULL, NULL);
    if (e != PARLEY_OK) return pg_write_end(s, e);
    return PARLEY_OK;
}

/* Reads the whole room (counters and settings) into a row buffer, its id
 * into *id if given; with lock, the row stays locked until the end of the
 * transaction. ROOM_NOT_FOUND for none (or a deleted one). */
static parley_err pg_room_read(store_pg *s, const char *name, int lock,
                               parley_room *out, int64_t *id)
{
    pg_params p = {0};
    pg_param_text(&p, name);
    int st = lock ? ST_ROOM_READ_LOCK : ST_ROOM_READ;
    PGresult *res = lock ? pg_run(s, st, &p) : pg_read(s, st, &p);
    parley_err e = PARLEY_OK;
    e = pg_one(s, res, "read room", PARLEY_ERR_ROOM_NOT_FOUND);
    if (e == PARLEY_OK) {
        parley_room v;
        v.name = name;
        if (id) *id = pg_i64(res, 0, 0);
        v.head_seq = (uint64_t)pg_i64(res, 0, 1);
        v.head_rev = (uint64_t)pg_i64(res, 0, 2);
        pg_settings_view(res, 0, 3, &v);
        e = pg_room_keep(s, &v, out);
    }
    PQclear(res);
    return e;
}

static parley_err pg_room_create(store *base, const char *name,
                                 const parley_room_settings *set,
                                 int64_t now_ms, parley_room *out, int *created)
{
    store_pg *s = (store_pg *)base;
    pg_params p = {0};
    parley_err e = pg_ready(s);
    if (e != PARLEY_OK) return e;

    /* One statement: ON CONFLICT waits for a concurrent creator and then
     * does nothing; the read after it sees the committed room. */
    if (s->base.in_txn && (e = pg_write_begin(s)) != PARLEY_OK) return e;
    pg_param_text(&p, name);
    pg_param_i64(&p, now_ms);
    pg_param_text(&p, set->title);
    pg_param_text(&p, set->topic);
    pg_param_i64(&p, set->visibility);
    pg_param_i64(&p, set->mode);
    PGresult *res = pg_run(s, ST_ROOM_INSERT, &p);
    if (!pg_ok(res))
        e = pg_fail(s, res, "insert room");
    else
        *created = strcmp(PQcmdTuples(res), "1") == 0;
    PQclear(res);
    if (s->base.in_txn) e = pg_write_end(s, e);
    if (e == PARLEY_OK) e = pg_room_read(s, name, 0, out, NULL);
    return e;
}

static parley_err pg_room_get(store *base, const char *name, parley_room *out)
{
    store_pg *s = (store_pg *)base;
    parley_err e = pg_ready(s);
    if (e == PARLEY_OK) e = pg_room_read(s, name, 0, out, NULL);
    return e;
}

/* One committed write (its own transaction, flushed as synchronous_commit
 * says) that changes no visible data: can the database commit again? */
static parley_err pg_probe(store *base)
{
    store_pg *s = (store_pg *)base;
    pg_params p = {0};
    parley_err e = pg_ready(s);
    if (e != PARLEY_OK) return e;
    PGresult *res = pg_run(s, ST_PROBE, &p);
    if (!pg_ok(res))
        e = pg_fail(s, res, "probe write");
    else if (strcmp(PQcmdTuples(res), "1") != 0)
        e = pg_fail_msg(s, PARLEY_ERR_INTERNAL, "probe: no schema row");
    PQclear(res);
    return e;
}

/* ---- messages ---------------------------------------------------------- */

/* The room and (if stored before) the message of (author, client id):
 * ROOM_NOT_FOUND, or PARLEY_OK with *found = 1 and a copy in out. */
static parley_err pg_append_find(store_pg *s, const char *room,
                                 const parley_author *author,
                                 const char *client_msg_id, int64_t *room_id,
                                 int *found, parley_msg *out)
{
    pg_params p = {0};
    pg_param_text(&p, room);
    pg_param_text(&p, author->id);
    pg_param_text(&p, client_msg_id);
    PGresult *res = pg_read(s, ST_APPEND_FIND, &p);
    parley_err e = PARLEY_OK;
    *found = 0;
    e = pg_one(s, res, "read client id", PARLEY_ERR_ROOM_NOT_FOUND);
    if (e == PARLEY_OK) {
        assert(PQntuples(res) == 1); /* the index is unique */
        *room_id = pg_i64(res, 0, 0);
        if (!PQgetisnull(res, 0, 1 + COL_SEQ)) {
            *found = 1;
            e = pg_row_copy(s, res, 0, 1, room, out);
        }
    }
    PQclear(res);
    return e;
}

static parley_err pg_find_client(store *base, const char *room,
                                 const char *author_id,
                                 const char *client_msg_id, parley_msg *out)
{
    store_pg *s = (store_pg *)base;
    int64_t room_id = 0;
    int found = 0;
    parley_author a = {author_id, "", 0};
    parley_err e = pg_ready(s);
    if (e == PARLEY_OK)
        e = pg_append_find(s, room, &a, client_msg_id, &room_id, &found, out);
    if (e == PARLEY_OK && !found) e = PARLEY_ERR_MESSAGE_NOT_FOUND;
    return e;
}

static parley_err pg_append(store *base, const char *room,
                            const parley_author *author,
                            const char *client_msg_id, const char *body,
                            size_t body_len, int64_t now_ms, parley_msg *out,
                            int *duplicate)
{
    store_pg *s = (store_pg *)base;
    int64_t room_id = 0;
    int found = 0;
    parley_err e = pg_ready(s);
    if (e == PARLEY_OK)
        e = pg_append_find(s, room, author, client_msg_id, &room_id, &found,
                           out);
    if (e != PARLEY_OK) return e;
    if (found) {
        *duplicate = 1;
        return PARLEY_OK;
    }

    /* The bump and the insert are one statement, so outside a transaction
     * it needs none of its own; inside one, a savepoint keeps a failure
     * from aborting the caller's other writes. */
    if (s->base.in_txn && (e = pg_exec(s, "SAVEPOINT parley_write"))) return e;
    pg_params p = {0};
    pg_param_i64(&p, room_id);
    pg_param_text(&p, client_msg_id);
    pg_param_text(&p, author->id);
    pg_param_text(&p, author->display_name);
    pg_param_i64(&p, author->role);
    pg_param_bytes(&p, body, body_len);
    pg_param_i64(&p, now_ms);
    PGresult *res = pg_run(s, ST_APPEND_INSERT, &p);
    int conflict = 0;
    if (!pg_ok(res)) {
        conflict = pg_is_client_id_conflict(res);
        e = pg_fail(s, res, "append");
    } else if (PQntuples(res) != 1) {
        e = pg_fail_msg(s, PARLEY_ERR_INTERNAL, "room vanished");
    } else {
        e = pg_row_copy(s, res, 0, 0, room, out);
        assert(out->seq >= 1 && out->rev >= out->seq);
    }
    PQclear(res);
    if (s->base.in_txn) e = pg_write_end(s, e);
    if (!conflict) return e;

    /* Another connection stored (room, author, client id) between our look
     * and our insert, and committed (we waited on its room lock): ours was
     * undone whole; the original is the answer. */
    e = pg_append_find(s, room, author, client_msg_id, &room_id, &found, out);
    if (e != PARLEY_OK) return e;
    if (!found)
        return pg_fail_msg(s, PARLEY_ERR_INTERNAL,
                           "client id conflict without a stored message");
    *duplicate = 1;
    return PARLEY_OK;
}

static parley_err pg_get(store *base, const char *room, uint64_t seq,
                         parley_msg *out)
{
    store_pg *s = (store_pg *)base;
    pg_params p = {0};
    parley_err e = pg_ready(s);
    if (e != PARLEY_OK) return e;
    pg_param_text(&p, room);
    pg_param_i64(&p, pg_u64_to_i64(seq));
    PGresult *res = pg_read(s, ST_MSG_GET, &p);
    e = pg_one(s, res, "read message", PARLEY_ERR_ROOM_NOT_FOUND);
    if (e == PARLEY_OK && PQgetisnull(res, 0, 1 + COL_SEQ))
        e = PARLEY_ERR_MESSAGE_NOT_FOUND;
    else if (e == PARLEY_OK)
        e = pg_row_copy(s, res, 0, 1, room, out);
    PQclear(res);
    return e;
}

/* Shared start of edit and delete, inside their transaction: locks the
 * room (so the message read next is the latest committed one and stays
 * so), reads the message into out, checks the permission. */
static parley_err pg_modify_check(store_pg *s, const char *room, uint64_t seq,
                                  const parley_author *actor, int64_t *room_id,
                                  parley_msg *out)
{
    pg_params p = {0};
    parley_err e = PARLEY_OK;
    pg_param_text(&p, room);
    PGresult *res = pg_run(s, ST_ROOM_LOCK, &p);
    e = pg_one(s, res, "lock room", PARLEY_ERR_ROOM_NOT_FOUND);
    if (e == PARLEY_OK) *room_id = pg_i64(res, 0, 0);
    PQclear(res);
    if (e != PARLEY_OK) return e;

    pg_params q = {0};
    pg_param_i64(&q, *room_id);
    pg_param_i64(&q, pg_u64_to_i64(seq));
    res = pg_run(s, ST_MSG_READ, &q);
    e = pg_one(s, res, "read message", PARLEY_ERR_MESSAGE_NOT_FOUND);
    if (e == PARLEY_OK) e = pg_row_copy(s, res, 0, 0, room, out);
    PQclear(res);
    if (e == PARLEY_OK) e = rules_may_modify(actor, out->author.id);
    return e;
}

/* Runs an edit or delete statement (bound already) and copies its row. */
static parley_err pg_modify_write(store_pg *s, int id, const pg_params *p,
                                  const char *room, parley_msg *out)
{
    parley_err e;
    PGresult *res = pg_run(s, id, p);
    if (!pg_ok(res))
        e = pg_fail(s, res, pg_stmts[id].name);
    else if (PQntuples(res) != 1)
        e = pg_fail_msg(s, PARLEY_ERR_INTERNAL, "message vanished");
    else
        e = pg_row_copy(s, res, 0, 0, room, out);
    PQclear(res);
    return e;
}

static parley_err pg_edit(store *base, const char *room, uint64_t seq,
                          const parley_author *actor, const char *body,
                          size_t body_len, int64_t now_ms, parley_msg *out)
{
    store_pg *s = (store_pg *)base;
    int64_t room_id = 0;
    parley_msg cur;
    parley_err e = pg_write_open(s);
    if (e != PARLEY_OK) return e;
    /* The arguments may point into the previous result's buffer; the read
     * below fills the other one, and the write's copy is made after the
     * statement has consumed them. */
    e = pg_modify_check(s, room, seq, actor, &room_id, &cur);
    if (e == PARLEY_OK && cur.deleted) e = PARLEY_ERR_MESSAGE_DELETED;
    if (e == PARLEY_OK) {
        pg_params p = {0};
        pg_param_i64(&p, room_id);
        pg_param_i64(&p, (int64_t)cur.seq);
        pg_param_bytes(&p, body, body_len);
        pg_param_i64(&p, now_ms);
        e = pg_modify_write(s, ST_MSG_EDIT, &p, cur.room, out);
    }
    return pg_write_end(s, e);
}

static parley_err pg_delete(store *base, const char *room, uint64_t seq,
                            const parley_author *actor, int64_t now_ms,
                            parley_msg *out)
{
    store_pg *s = (store_pg *)base;
    int64_t room_id = 0;
    parley_err e = pg_write_open(s);
    if (e != PARLEY_OK) return e;
    e = pg_modify_check(s, room, seq, actor, &room_id, out);
    if (e == PARLEY_OK && out->deleted)
        return pg_write_end(s, PARLEY_OK); /* a tombstone: unchanged */
    if (e == PARLEY_OK) {
        pg_params p = {0};
        pg_param_i64(&p, room_id);
        pg_param_i64(&p, (int64_t)out->seq);
        pg_param_i64(&p, now_ms);
        e = pg_modify_write(s, ST_MSG_DELETE, &p, out->room, out);
    }
    return pg_write_end(s, e);
}

/* ---- list -------------------------------------------------------------- */

static parley_err pg_list(store *base, const char *room, store_dir dir,
                          uint64_t cursor, unsigned limit, store_msg_fn fn,
                          void *ud, parley_room *room_out, int *has_more)
{
    store_pg *s = (store_pg *)base;
    pg_params p = {0};
    uint64_t hi = 0;
    int id, more = 0;
    parley_err e = pg_ready(s);
    if (e != PARLEY_OK) return e;

    pg_param_text(&p, room);
    if (dir == STORE_AFTER_REV) {
        id = ST_LIST_AFTER_REV;
        pg_param_i64(&p, pg_u64_to_i64(cursor));
        pg_param_i64(&p, (int64_t)limit + 1); /* one more tells has_more */
    } else {
        id = ST_LIST_SEQ;
        hi = dir == STORE_LATEST ? UINT64_MAX : cursor == 0 ? 0 : cursor - 1;
        pg_param_i64(&p, pg_u64_to_i64(hi));
        pg_param_i64(&p, (int64_t)limit);
    }
    PGresult *res = pg_read(s, id, &p);
    if (res == NULL) return PARLEY_ERR_IO;
    if (!pg_ok(res)) {
        e = pg_fail(s, res, pg_stmts[id].name);
        PQclear(res);
        return e;
    }
    int n = PQntuples(res);
    if (n == 0) {
        PQclear(res);
        return PARLEY_ERR_ROOM_NOT_FOUND;
    }
    uint64_t head_seq = (uint64_t)pg_i64(res, 0, 0);
    uint64_t head_rev = (uint64_t)pg_i64(res, 0, 1);
    uint64_t first = (uint64_t)pg_i64(res, 0, 2) + 1; /* base_seq + 1 */
    /* A room with nothing in range: one row of NULL message columns. */
    if (n == 1 && PQgetisnull(res, 0, 3 + COL_SEQ)) n = 0;
    assert((unsigned)n <= limit + 1);
    if (dir == STORE_AFTER_REV) {
        more = (unsigned)n > limit;
        if (more) n = (int)limit;
    } else {
        /* The page is [lo, hi] with hi = min(cursor, head_seq). */
        if (hi > head_seq) hi = head_seq;
        if (hi < first) hi = 0; /* below the seqs a deletion took */
        uint64_t lo = hi > limit ? hi - limit + 1 : 1;
        if (lo < first) lo = first;
        assert(hi == 0 || (uint64_t)n == hi - lo + 1);
        more = hi > 0 && lo > first;
    }
    for (int i = 0; i < n; i++) {
        parley_msg m;
        pg_row_view(res, i, 3, room, &m);
        if (fn && fn(&m, ud) != 0) {
            if (dir == STORE_AFTER_REV) more = more || i + 1 < n;
            break;
        }
    }
    PQclear(res);
    *has_more = more;
    if (room_out) {
        /* The settings from a second read; the counters stay the page's
         * (one snapshot with it). */
        e = pg_room_read(s, room, 0, room_out, NULL);
        if (e != PARLEY_OK) return e;
        room_out->head_seq = head_seq;
        room_out->head_rev = head_rev;
    }
    return PARLEY_OK;
}

/* ---- rooms: settings, access, members, sanctions, actions -------------- */

/* Runs a bound write statement that yields no rows we need. */
static parley_err pg_write_stmt(store_pg *s, int id, const pg_params *p,
                                int *changed)
{
    PGresult *res = pg_run(s, id, p);
    parley_err e = PARLEY_OK;
    if (!pg_ok(res))
        e = pg_fail(s, res, pg_stmts[id].name);
    else if (changed)
        *changed = strcmp(PQcmdTuples(res), "0") != 0;
    PQclear(res);
    return e;
}

static parley_err pg_room_update(store *base, const char *name,
                                 const parley_room_settings *u,
                                 parley_room *out, unsigned *changed)
{
    store_pg *s = (store_pg *)base;
    parley_room cur;
    int64_t id = 0;
    parley_err e = pg_write_open(s);
    if (e != PARLEY_OK) return e;
    /* u's texts may be in the previous result's buffer: cur goes to the
     * other one, and the UPDATE is bound before the next read. */
    e = pg_room_read(s, name, 1, &cur, &id);
    if (e == PARLEY_OK) {
        parley_room_settings v;
        unsigned c = store_settings_merge(&cur, u, &v);
        if (c) {
            pg_params p = {0};
            pg_param_i64(&p, id);
            pg_param_text(&p, v.title);
            pg_param_text(&p, v.topic);
            pg_param_i64(&p, v.visibility);
            pg_param_i64(&p, v.mode);
            e = pg_write_stmt(s, ST_ROOM_UPDATE, &p, NULL);
        }
        if (e == PARLEY_OK) e = pg_room_read(s, name, 0, out, NULL);
        if (e == PARLEY_OK) *changed = c;
    }
    return pg_write_end(s, e);
}

static parley_err pg_room_delete(store *base, const char *name,
                                 parley_room *out, uint64_t *messages)
{
    store_pg *s = (store_pg *)base;
    int64_t id = 0;
    parley_err e = pg_write_open(s);
    if (e != PARLEY_OK) return e;
    e = pg_room_read(s, name, 1, out, &id);
    if (e == PARLEY_OK) {
        pg_params p = {0};
        pg_param_i64(&p, id);
        PGresult *res = pg_run(s, ST_ROOM_DELETE, &p);
        if (!pg_ok(res))
            e = pg_fail(s, res, "delete room");
        else
            *messages = (uint64_t)pg_i64(res, 0, 0);
        PQclear(res);
    }
    return pg_write_end(s, e);
}

static parley_err pg_room_access(store *base, const char *room,
                                 const char *user_id, parley_room *out,
                                 parley_standing *st)
{
    store_pg *s = (store_pg *)base;
    pg_params p = {0};
    parley_err e = pg_ready(s);
    if (e != PARLEY_OK) return e;
    pg_param_text(&p, room);
    pg_param_text(&p, user_id);
    PGresult *res = pg_read(s, ST_ROOM_ACCESS, &p);
    e = pg_one(s, res, "read room access", PARLEY_ERR_ROOM_NOT_FOUND);
    if (e == PARLEY_OK) {
        parley_room v;
        memset(&v, 0, sizeof v);
        v.name = room;
        pg_settings_view(res, 0, 0, &v);
        pg_standing_view(res, 0, 4, st);
        e = pg_room_keep(s, &v, out);
    }
    PQclear(res);
    return e;
}

/* One row of a page to its caller: nonzero stops the walk. */
typedef int (*pg_row_fn)(const PGresult *res, int row, void *ctx);

/* Walks the first `limit` rows of a page read with limit + 1 (the extra
 * row tells has_more, as does a stop before the last row); clears res. */
static parley_err pg_page_walk(PGresult *res, unsigned limit, pg_row_fn row,
                               void *ctx, int *has_more)
{
    int n = PQntuples(res), more = (unsigned)n > limit;
    if (more) n = (int)limit;
    for (int i = 0; i < n; i++) {
        if (row(res, i, ctx) != 0) {
            more = more || i + 1 < n;
            break;
        }
    }
    PQclear(res);
    *has_more = more;
    return PARLEY_OK;
}

/* The caller's function and data, for the page rows' adapters below. */
typedef struct pg_page_to {
    const char *room;
    union {
        store_room_access_fn room_access;
        store_member_fn member;
        store_action_fn action;
    } fn;
    void *ud;
} pg_page_to;

static int pg_room_access_row(const PGresult *res, int i, void *ctx)
{
    const pg_page_to *to = ctx;
    parley_room r;
    parley_standing st;
    r.name = PQgetvalue(res, i, 0);
    r.head_seq = (uint64_t)pg_i64(res, i, 1);
    r.head_rev = (uint64_t)pg_i64(res, i, 2);
    pg_settings_view(res, i, 3, &r);
    pg_standing_view(res, i, 7, &st);
    return to->fn.room_access ? to->fn.room_access(&r, &st, to->ud) : 0;
}

static parley_err pg_room_list_for(store *base, const store_room_query *q,
                                   store_room_access_fn fn, void *ud,
                                   int *has_more)
{
    store_pg *s = (store_pg *)base;
    pg_params p = {0};
    parley_err e = pg_ready(s);
    if (e != PARLEY_OK) return e;
    /* One statement, one snapshot; the extra row tells has_more. */
    pg_param_text(&p, q->after);
    pg_param_text(&p, q->prefix);
    pg_param_i64(&p, (int64_t)q->limit + 1);
    pg_param_text(&p, q->user_id); /* NULL: no one's standing */
    PGresult *res = pg_read(s, ST_ROOM_LIST_FOR, &p);
    if (res == NULL) return PARLEY_ERR_IO;
    if (!pg_ok(res)) {
        e = pg_fail(s, res, "room list");
        PQclear(res);
        return e;
    }
    pg_page_to to = {.fn.room_access = fn, .ud = ud};
    return pg_page_walk(res, q->limit, pg_room_access_row, &to, has_more);
}

/* The member row `row` of res as views. */
static void pg_member_view(const PGresult *res, int row, parley_member *m)
{
    m->user_id = PQgetvalue(res, row, 0);
    m->role = (int)pg_i64(res, row, 1);
    m->added_by = PQgetvalue(res, row, 2);
    m->added_at_ms = pg_i64(res, row, 3);
}

/* Runs a member statement (bound) for at most one row, kept in out. */
static parley_err pg_member_one(store_pg *s, int id, const pg_params *p,
                                parley_member *out, int *got)
{
    PGresult *res = pg_run(s, id, p);
    parley_err e = PARLEY_OK;
    *got = 0;
    if (!pg_ok(res)) {
        e = pg_fail(s, res, pg_stmts[id].name);
    } else if (PQntuples(res) == 1) {
        parley_member v;
        pg_member_view(res, 0, &v);
        size_t lu = strlen(v.user_id), la = strlen(v.added_by);
        char *b = store_rows_take(&s->rows, lu + la + 2);
        if (b == NULL) {
            e = pg_fail_msg(s, PARLEY_ERR_INTERNAL, "out of memory");
        } else {
            *out = v;
            out->user_id = store_rows_put(&b, v.user_id, lu);
            out->added_by = store_rows_put(&b, v.added_by, la);
            *got = 1;
        }
    }
    PQclear(res);
    return e;
}

static parley_err pg_member_set(store *base, const char *room,
                                const char *user_id, int role,
                                const char *added_by, int64_t now_ms,
                                parley_member *out, int *changed)
{
    store_pg *s = (store_pg *)base;
    int64_t id = 0;
    int got = 0;
    parley_err e = pg_write_room(s, room, &id);
    if (e != PARLEY_OK) return e;
    pg_params p = {0};
    pg_param_i64(&p, id);
    pg_param_text(&p, user_id);
    pg_param_i64(&p, role);
    pg_param_text(&p, added_by);
    pg_param_i64(&p, now_ms);
    e = pg_member_one(s, ST_MEMBER_UPSERT, &p, out, &got);
    if (e == PARLEY_OK) *changed = got;
    if (e == PARLEY_OK && !got) {
        /* The same role already: the stored membership. */
        pg_params p = {0};
        pg_param_i64(&p, id);
        pg_param_text(&p, user_id);
        e = pg_member_one(s, ST_MEMBER_GET, &p, out, &got);
        if (e == PARLEY_OK && !got)
            e = pg_fail_msg(s, PARLEY_ERR_INTERNAL, "member vanished");
    }
    return pg_write_end(s, e);
}

static parley_err pg_member_remove(store *base, const char *room,
                                   const char *user_id, int *removed)
{
    store_pg *s = (store_pg *)base;
    int64_t id = 0;
    parley_err e = pg_write_room(s, room, &id);
    if (e != PARLEY_OK) return e;
    pg_params p = {0};
    pg_param_i64(&p, id);
    pg_param_text(&p, user_id);
    e = pg_write_stmt(s, ST_MEMBER_DELETE, &p, removed);
    return pg_write_end(s, e);
}

/* A page statement bound with ($1 room id, $2 after, $3 limit + 1). */
static PGresult *pg_page(store_pg *s, const char *room, int id,
                         const char *after_text, uint64_t after_int,
                         unsigned limit, parley_err *e)
{
    int64_t room_id = 0;
    *e = pg_ready(s);
    if (*e == PARLEY_OK) *e = pg_room_find(s, room, &room_id, NULL, NULL);
    if (*e != PARLEY_OK) return NULL;
    pg_params p = {0};
    pg_param_i64(&p, room_id);
    if (after_text)
        pg_param_text(&p, after_text);
    else
        pg_param_i64(&p, pg_u64_to_i64(after_int));
    pg_param_i64(&p, (int64_t)limit + 1);
    PGresult *res = pg_read(s, id, &p);
    if (res == NULL) {
        *e = PARLEY_ERR_IO;
    } else if (!pg_ok(res)) {
        *e = pg_fail(s, res, pg_stmts[id].name);
        PQclear(res);
        res = NULL;
    }
    return res;
}

static int pg_member_row(const PGresult *res, int i, void *ctx)
{
    const pg_page_to *to = ctx;
    parley_member m;
    pg_member_view(res, i, &m);
    return to->fn.member ? to->fn.member(&m, to->ud) : 0;
}

static parley_err pg_member_list(store *base, const char *room,
                                 const char *after, unsigned limit,
                                 store_member_fn fn, void *ud, int *has_more)
{
    store_pg *s = (store_pg *)base;
    parley_err e;
    PGresult *res = pg_page(s, room, ST_MEMBER_LIST, after, 0, limit, &e);
    if (res == NULL) return e;
    pg_page_to to = {.fn.member = fn, .ud = ud};
    return pg_page_walk(res, limit, pg_member_row, &to, has_more);
}

static parley_err pg_sanction_set(store *base, const char *room,
                                  const char *user_id, store_sanction kind,
                                  int active, int64_t until_ms, int *changed)
{
    store_pg *s = (store_pg *)base;
    int64_t id = 0;
    parley_err e = pg_write_room(s, room, &id);
    if (e != PARLEY_OK) return e;
    pg_params p = {0};
    pg_param_i64(&p, id);
    pg_param_text(&p, user_id);
    pg_param_i64(&p, (int64_t)kind);
    if (active) pg_param_i64(&p, until_ms);
    e = pg_write_stmt(s, active ? ST_SANCTION_PUT : ST_SANCTION_DELETE, &p,
                      changed);
    return pg_write_end(s, e);
}

/* Copies action v's strings into a row buffer as out. */
static parley_err pg_action_keep(store_pg *s, const parley_action *v,
                                 parley_action *out)
{
    size_t lr = strlen(v->room), li = strlen(v->actor.id);
    size_t ln = strlen(v->actor.display_name);
    size_t lt = strlen(v->target_user_id), lw = strlen(v->reason);
    char *p = store_rows_take(&s->rows, lr + li + ln + lt + lw + 5);
    if (p == NULL) return pg_fail_msg(s, PARLEY_ERR_INTERNAL, "out of memory");
    *out = *v;
    out->room = store_rows_put(&p, v->room, lr);
    out->actor.id = store_rows_put(&p, v->actor.id, li);
    out->actor.display_name = store_rows_put(&p, v->actor.display_name, ln);
    out->target_user_id = store_rows_put(&p, v->target_user_id, lt);
    out->reason = store_rows_put(&p, v->reason, lw);
    return PARLEY_OK;
}

static parley_err pg_action_append(store *base, const parley_action *a,
                                   parley_action *out)
{
    store_pg *s = (store_pg *)base;
    int64_t id = 0;
    parley_action v = *a;
    if (v.target_user_id == NULL) v.target_user_id = "";
    if (v.reason == NULL) v.reason = "";
    parley_err e = pg_write_room(s, a->room, &id);
    if (e != PARLEY_OK) return e;
    pg_params p = {0};
    pg_param_i64(&p, id);
    pg_param_i64(&p, v.kind);
    pg_param_text(&p, v.actor.id);
    pg_param_text(&p, v.actor.display_name);
    pg_param_i64(&p, v.actor.role);
    pg_param_text(&p, v.target_user_id);
    pg_param_i64(&p, v.at_ms);
    pg_param_i64(&p, v.until_ms);
    pg_param_text(&p, v.reason);
    pg_param_i64(&p, v.mode);
    pg_param_i64(&p, v.visibility);
    pg_param_i64(&p, v.role);
    pg_param_i64(&p, pg_u64_to_i64(v.seq));
    pg_param_i64(&p, pg_u64_to_i64(v.count));
    PGresult *res = pg_run(s, ST_ACTION_INSERT, &p);
    if (!pg_ok(res))
        e = pg_fail(s, res, "store action");
    else if (PQntuples(res) != 1)
        e = pg_fail_msg(s, PARLEY_ERR_INTERNAL, "room vanished");
    else
        v.id = (uint64_t)pg_i64(res, 0, 0);
    PQclear(res);
    if (e == PARLEY_OK) {
        assert(v.id >= 1);
        e = pg_action_keep(s, &v, out);
    }
    return pg_write_end(s, e);
}

static int pg_action_row(const PGresult *res, int i, void *ctx)
{
    const pg_page_to *to = ctx;
    parley_action a;
    a.id = (uint64_t)pg_i64(res, i, 0);
    a.room = to->room;
    a.kind = (int)pg_i64(res, i, 1);
    a.actor.id = PQgetvalue(res, i, 2);
    a.actor.display_name = PQgetvalue(res, i, 3);
    a.actor.role = (int)pg_i64(res, i, 4);
    a.target_user_id = PQgetvalue(res, i, 5);
    a.at_ms = pg_i64(res, i, 6);
    a.until_ms = pg_i64(res, i, 7);
    a.reason = PQgetvalue(res, i, 8);
    a.mode = (int)pg_i64(res, i, 9);
    a.visibility = (int)pg_i64(res, i, 10);
    a.role = (int)pg_i64(res, i, 11);
    a.seq = (uint64_t)pg_i64(res, i, 12);
    a.count = (uint64_t)pg_i64(res, i, 13);
    return to->fn.action ? to->fn.action(&a, to->ud) : 0;
}

static parley_err pg_action_list(store *base, const char *room,
                                 uint64_t after_id, unsigned limit,
                                 store_action_fn fn, void *ud, int *has_more)
{
    store_pg *s = (store_pg *)base;
    parley_err e;
    PGresult *res = pg_page(s, room, ST_ACTION_LIST, NULL, after_id, limit, &e);
    if (res == NULL) return e;
    pg_page_to to = {.room = room, .fn.action = fn, .ud = ud};
    return pg_page_walk(res, limit, pg_action_row, &to, has_more);
}

/* Erases in one room, already validated (its name in room). */
static parley_err pg_erase_in(store_pg *s, const char *room,
                              const char *user_id, int64_t now_ms,
                              store_msg_fn fn, void *ud, uint64_t *count)
{
    /* Lock the room first: the statement then reads the latest committed
     * messages and takes revs no other writer can take meanwhile. */
    int64_t id = 0;
    pg_params l = {0};
    pg_param_text(&l, room);
    PGresult *res = pg_run(s, ST_ROOM_LOCK, &l);
    parley_err e = PARLEY_OK;
    e = pg_one(s, res, "lock room", PARLEY_ERR_ROOM_NOT_FOUND);
    if (e == PARLEY_OK) id = pg_i64(res, 0, 0);
    PQclear(res);
    if (e != PARLEY_OK) return e;
    pg_params p = {0};
    pg_param_i64(&p, id);
    pg_param_text(&p, user_id);
    pg_param_i64(&p, now_ms);
    res = pg_run(s, ST_ERASE, &p);
    if (!pg_ok(res)) {
        e = pg_fail(s, res, "erase");
    } else {
        int n = PQntuples(res);
        for (int i = 0; i < n; i++) {
            parley_msg m;
            pg_row_view(res, i, 0, room, &m);
            assert(m.deleted);
            if (fn) fn(&m, ud);
            (*count)++;
        }
    }
    PQclear(res);
    return e;
}

static parley_err pg_read_mark(store *base, const char *room,
                               const char *user_id, uint64_t seq, uint64_t rev,
                               int64_t now_ms, uint64_t *out_seq,
                               uint64_t *out_rev)
{
    store_pg *s = (store_pg *)base;
    int64_t id = 0;
    parley_err e = pg_write_room(s, room, &id);
    if (e != PARLEY_OK) return e;
    pg_params p = {0};
    pg_param_i64(&p, id);
    pg_param_text(&p, user_id);
    pg_param_i64(&p, (int64_t)seq);
    pg_param_i64(&p, (int64_t)rev);
    pg_param_i64(&p, now_ms);
    PGresult *res = pg_run(s, ST_READ_MARK, &p);
    if (!pg_ok(res) || PQntuples(res) != 1) {
        e = pg_fail(s, res, "mark read");
    } else {
        *out_seq = (uint64_t)pg_i64(res, 0, 0);
        *out_rev = (uint64_t)pg_i64(res, 0, 1);
    }
    PQclear(res);
    return pg_write_end(s, e);
}

static parley_err pg_unread_count(store *base, const char *room,
                                  const char *user_id, uint64_t after_seq,
                                  unsigned cap, unsigned *count)
{
    store_pg *s = (store_pg *)base;
    store_unread_key k = {
        .user_id = user_id, .after_seq = after_seq, .cap = cap};
    parley_err e = pg_ready(s);
    if (e == PARLEY_OK)
        e = pg_room_find_ex(s, room, &k.room_id, &k.head_seq, &k.head_rev,
                            &k.base_seq);
    if (e != PARLEY_OK) return e;
    if (store_unread_recall(base, &k, count)) return PARLEY_OK;
    pg_params p = {0};
    pg_param_i64(&p, k.room_id);
    pg_param_i64(&p, (int64_t)after_seq);
    pg_param_text(&p, user_id);
    pg_param_i64(&p, (int64_t)cap);
    PGresult *res = pg_read(s, ST_UNREAD, &p);
    if (res == NULL) return PARLEY_ERR_IO;
    if (!pg_ok(res) || PQntuples(res) != 1)
        e = pg_fail(s, res, "count unread");
    else {
        *count = (unsigned)pg_i64(res, 0, 0);
        store_unread_keep(base, &k, *count);
    }
    PQclear(res);
    return e;
}

static parley_err pg_erase_user(store *base, const char *room,
                                const char *user_id, int64_t now_ms,
                                store_msg_fn fn, void *ud, uint64_t *count)
{
    store_pg *s = (store_pg *)base;
    parley_err e = pg_write_open(s);
    if (e != PARLEY_OK) return e;
    if (room) {
        e = pg_erase_in(s, room, user_id, now_ms, fn, ud, count);
        return pg_write_end(s, e);
    }
    pg_params p = {0};
    pg_param_text(&p, user_id);
    PGresult *rooms = pg_run(s, ST_ERASE_ROOMS, &p);
    if (!pg_ok(rooms)) {
        e = pg_fail(s, rooms, "erase: rooms");
    } else {
        for (int i = 0; e == PARLEY_OK && i < PQntuples(rooms); i++)
            e = pg_erase_in(s, PQgetvalue(rooms, i, 1), user_id, now_ms, fn, ud,
                            count);
    }
    PQclear(rooms);
    return pg_write_end(s, e);
}

const store_engine store_engine_pg = {
    .name = "postgres",
    .serves = pg_serves,
    .open = pg_open,
    .open_reader = pg_open_reader,
    .close = pg_close,
    .last_error = pg_last_error,
    .describe = pg_describe,
    .synchronous = pg_synchronous,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .room_create = pg_room_create,
    .room_get = pg_room_get,
    .room_list_for = pg_room_list_for,
    .room_update = pg_room_update,
    .room_delete = pg_room_delete,
    .room_access = pg_room_access,
    .member_set = pg_member_set,
    .member_remove = pg_member_remove,
    .member_list = pg_member_list,
    .sanction_set = pg_sanction_set,
    .action_append = pg_action_append,
    .action_list = pg_action_list,
    .erase_user = pg_erase_user,
    .read_mark = pg_read_mark,
    .unread_count = pg_unread_count,
    .probe = pg_probe,
    .append = pg_append,
    .get = pg_get,
    .find_client = pg_find_client,
    .edit = pg_edit,
    .remove = pg_delete,
    .list = pg_list,
};
