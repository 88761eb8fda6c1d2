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
    ST_ROOM_LIST,
    ST_PROBE,
    ST__COUNT
};

static const struct {
    const char *name;
    int n_params;
    const char *sql;
} pg_stmts[ST__COUNT] = {
    [ST_ROOM_INSERT] = {"parley_room_insert", 2,
                        "INSERT INTO rooms(name, created_ms)"
                        " VALUES($1::text, $2::bigint)"
                        " ON CONFLICT (name) DO NOTHING"},
    [ST_ROOM_GET] = {"parley_room_get", 1,
                     "SELECT id, head_seq, head_rev FROM rooms"
                     " WHERE name = $1::text"},
    [ST_ROOM_LOCK] = {"parley_room_lock", 1,
                      "SELECT id FROM rooms WHERE name = $1::text"
                      " FOR NO KEY UPDATE"},
    /* The room and, if stored before, the message of (author, client id). */
    [ST_APPEND_FIND] = {"parley_append_find", 3,
                        "SELECT r.id, " MSG_COLS(
                            "m.") " FROM rooms r"
                                  " LEFT JOIN messages m ON m.room_id = r.id"
                                  "  AND m.author_id = $2::text"
                                  "  AND m.client_msg_id = $3::text"
                                  " WHERE r.name = $1::text"},
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
                              " WHERE r.name = $1::text"},
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
         "SELECT r.head_seq, r.head_rev, " MSG_COLS(
             "m.") " FROM rooms r LEFT JOIN LATERAL ("
                   "  SELECT * FROM messages WHERE room_id = r.id"
                   "  AND rev > $2::bigint ORDER BY rev"
                   "  LIMIT $3::bigint) m ON true"
                   " WHERE r.name = $1::text ORDER BY m.rev"},
    /* seq is dense from 1: the page is the range ending at
     * least(cursor, head_seq), limit long. */
    [ST_LIST_SEQ] =
        {"parley_list_seq", 3,
         "SELECT r.head_seq, r.head_rev, " MSG_COLS(
             "m.") " FROM rooms r LEFT JOIN LATERAL ("
                   "  SELECT * FROM messages WHERE room_id = r.id"
                   "  AND seq <= least($2::bigint, r.head_seq)"
                   "  AND seq > least($2::bigint, r.head_seq) - $3::bigint"
                   "  ORDER BY seq) m ON true"
                   " WHERE r.name = $1::text ORDER BY m.seq"},
    /* name is COLLATE "C": its index gives byte order without a sort. */
    [ST_ROOM_LIST] = {"parley_room_list", 2,
                      "SELECT name, head_seq, head_rev FROM rooms"
                      " WHERE name > $1::text ORDER BY name LIMIT $2::bigint"},
    /* A committed write that changes no room and no message: a new row
     * version of the schema row, flushed like any commit. */
    [ST_PROBE] = {"parley_probe", 0,
                  "UPDATE parley_schema SET version = version"},
};

/* The engine's handle; `base` first, as store_engine.h asks. */
typedef struct store_pg {
    store base;
    PGconn *conn;
    int sync_full; /* asked for: synchronous_commit on */
    int ready;     /* the session is set up on this connection */
    /* Two row buffers used in turn by the single-row calls. */
    char *buf[2];
    size_t cap[2];
    int cur;
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
typedef struct pg_params {
    int n;
    const char *val[8];
    int len[8];
    int fmt[8];
    char num[8][24];
} pg_params;

static void pg_param_text(pg_params *p, const char *v)
{
    assert(p->n < 8);
    p->val[p->n] = v;
    p->len[p->n] = 0;
    p->fmt[p->n] = 0;
    p->n++;
}

static void pg_param_bytes(pg_params *p, const char *v, size_t len)
{
    assert(p->n < 8 && len <= (size_t)INT32_MAX);
    p->val[p->n] = v;
    p->len[p->n] = (int)len;
    p->fmt[p->n] = 1; /* text's binary form is its bytes */
    p->n++;
}

static void pg_param_i64(pg_params *p, int64_t v)
{
    assert(p->n < 8);
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

/* Switches to the other row buffer, with room for need bytes; the buffer
 * of the previous result stays, so its strings may be this call's
 * arguments. */
static char *pg_buf_take(store_pg *s, size_t need)
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

static char *pg_put(char **at, const char *src, size_t len)
{
    char *dst = *at;
    memcpy(dst, src, len);
    dst[len] = '\0';
    *at += len + 1;
    return dst;
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
    char *p = pg_buf_take(s, lr + lc + la + ln + v.body_len + 5);
    if (p == NULL) return pg_fail_msg(s, PARLEY_ERR_INTERNAL, "out of memory");
    *m = v;
    m->room = pg_put(&p, room, lr);
    m->client_msg_id = pg_put(&p, v.client_msg_id, lc);
    m->author.id = pg_put(&p, v.author.id, la);
    m->author.display_name = pg_put(&p, v.author.display_name, ln);
    m->body = pg_put(&p, v.body, v.body_len);
    return PARLEY_OK;
}

static parley_err pg_room_copy(store_pg *s, const char *name, uint64_t seq,
                               uint64_t rev, parley_room *out)
{
    size_t len = strlen(name);
    char *p = pg_buf_take(s, len + 1);
    if (p == NULL) return pg_fail_msg(s, PARLEY_ERR_INTERNAL, "out of memory");
    out->name = pg_put(&p, name, len);
    out->head_seq = seq;
    out->head_rev = rev;
    return PARLEY_OK;
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
    store_pg *s = (store_pg *)base;
    parley_err e = pg_ready(s);
    if (e != PARLEY_OK) return e;
    /* store.c sets in_txn after this returns: this is an own BEGIN. */
    return pg_write_begin(s);
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
    free(s->buf[0]);
    free(s->buf[1]);
    free(s);
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
    if (PQstatus(s->conn) != CONNECTION_OK) {
        const char *m = PQerrorMessage(s->conn);
        snprintf(errmsg, errlen, "connect: %.*s", (int)strcspn(m, "\n"), m);
        pg_close(&s->base);
        return PARLEY_ERR_IO;
    }
    const char *host = PQhost(s->conn);
    snprintf(s->shown, sizeof s->shown, "postgres://%s@%s%s%s:%s/%s",
             PQuser(s->conn), host && host[0] == '/' ? "[" : "",
             host ? host : "", host && host[0] == '/' ? "]" : "",
             PQport(s->conn), PQdb(s->conn));
    parley_err e = pg_session(s, 1, errmsg, errlen);
    if (e != PARLEY_OK) {
        if (errmsg[0] == '\0') snprintf(errmsg, errlen, "%s", s->err);
        pg_close(&s->base);
        return e;
    }
    s->ready = 1;
    *out = &s->base;
    return PARLEY_OK;
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
static parley_err pg_room_find(store_pg *s, const char *name, int64_t *id,
                               uint64_t *head_seq, uint64_t *head_rev)
{
    pg_params p = {0};
    pg_param_text(&p, name);
    PGresult *res = pg_read(s, ST_ROOM_GET, &p);
    parley_err e = PARLEY_OK;
    if (res == NULL) return PARLEY_ERR_IO;
    if (!pg_ok(res))
        e = pg_fail(s, res, "read room");
    else if (PQntuples(res) == 0)
        e = PARLEY_ERR_ROOM_NOT_FOUND;
    else {
        *id = pg_i64(res, 0, 0);
        if (head_seq) *head_seq = (uint64_t)pg_i64(res, 0, 1);
        if (head_rev) *head_rev = (uint64_t)pg_i64(res, 0, 2);
    }
    PQclear(res);
    return e;
}

static parley_err pg_room_create(store *base, const char *name, int64_t now_ms,
                                 parley_room *out, int *created)
{
    store_pg *s = (store_pg *)base;
    pg_params p = {0};
    int64_t id;
    uint64_t seq = 0, rev = 0;
    parley_err e = pg_ready(s);
    if (e != PARLEY_OK) return e;

    /* One statement: ON CONFLICT waits for a concurrent creator and then
     * does nothing; the read after it sees the committed room. */
    if (s->base.in_txn && (e = pg_write_begin(s)) != PARLEY_OK) return e;
    pg_param_text(&p, name);
    pg_param_i64(&p, now_ms);
    PGresult *res = pg_run(s, ST_ROOM_INSERT, &p);
    if (!pg_ok(res))
        e = pg_fail(s, res, "insert room");
    else
        *created = strcmp(PQcmdTuples(res), "1") == 0;
    PQclear(res);
    if (s->base.in_txn) e = pg_write_end(s, e);
    if (e == PARLEY_OK) e = pg_room_find(s, name, &id, &seq, &rev);
    if (e != PARLEY_OK) return e;
    return pg_room_copy(s, name, seq, rev, out);
}

static parley_err pg_room_get(store *base, const char *name, parley_room *out)
{
    store_pg *s = (store_pg *)base;
    int64_t id;
    uint64_t seq, rev;
    parley_err e = pg_ready(s);
    if (e == PARLEY_OK) e = pg_room_find(s, name, &id, &seq, &rev);
    if (e != PARLEY_OK) return e;
    return pg_room_copy(s, name, seq, rev, out);
}

static parley_err pg_room_list(store *base, const char *after, unsigned limit,
                               store_room_fn fn, void *ud, int *has_more)
{
    store_pg *s = (store_pg *)base;
    pg_params p = {0};
    parley_err e = pg_ready(s);
    if (e != PARLEY_OK) return e;
    /* One statement, one snapshot; the extra row tells has_more. */
    pg_param_text(&p, after);
    pg_param_i64(&p, (int64_t)limit + 1);
    PGresult *res = pg_read(s, ST_ROOM_LIST, &p);
    if (res == NULL) return PARLEY_ERR_IO;
    if (!pg_ok(res)) {
        e = pg_fail(s, res, "room list");
        PQclear(res);
        return e;
    }
    int n = PQntuples(res), more = (unsigned)n > limit;
    if (more) n = (int)limit;
    for (int i = 0; i < n; i++) {
        parley_room r;
        r.name = PQgetvalue(res, i, 0);
        r.head_seq = (uint64_t)pg_i64(res, i, 1);
        r.head_rev = (uint64_t)pg_i64(res, i, 2);
        if (fn && fn(&r, ud) != 0) {
            more = more || i + 1 < n;
            break;
        }
    }
    PQclear(res);
    *has_more = more;
    return PARLEY_OK;
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
    if (res == NULL) return PARLEY_ERR_IO;
    if (!pg_ok(res))
        e = pg_fail(s, res, "read client id");
    else if (PQntuples(res) == 0)
        e = PARLEY_ERR_ROOM_NOT_FOUND;
    else {
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
    if (res == NULL) return PARLEY_ERR_IO;
    if (!pg_ok(res))
        e = pg_fail(s, res, "read message");
    else if (PQntuples(res) == 0)
        e = PARLEY_ERR_ROOM_NOT_FOUND;
    else if (PQgetisnull(res, 0, 1 + COL_SEQ))
        e = PARLEY_ERR_MESSAGE_NOT_FOUND;
    else
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
    if (!pg_ok(res))
        e = pg_fail(s, res, "lock room");
    else if (PQntuples(res) == 0)
        e = PARLEY_ERR_ROOM_NOT_FOUND;
    else
        *room_id = pg_i64(res, 0, 0);
    PQclear(res);
    if (e != PARLEY_OK) return e;

    pg_params q = {0};
    pg_param_i64(&q, *room_id);
    pg_param_i64(&q, pg_u64_to_i64(seq));
    res = pg_run(s, ST_MSG_READ, &q);
    if (!pg_ok(res))
        e = pg_fail(s, res, "read message");
    else if (PQntuples(res) == 0)
        e = PARLEY_ERR_MESSAGE_NOT_FOUND;
    else
        e = pg_row_copy(s, res, 0, 0, room, out);
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
    parley_err e = pg_ready(s);
    if (e == PARLEY_OK) e = pg_write_begin(s);
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
    parley_err e = pg_ready(s);
    if (e == PARLEY_OK) e = pg_write_begin(s);
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
    /* A room with nothing in range: one row of NULL message columns. */
    if (n == 1 && PQgetisnull(res, 0, 2 + COL_SEQ)) n = 0;
    assert((unsigned)n <= limit + 1);
    if (dir == STORE_AFTER_REV) {
        more = (unsigned)n > limit;
        if (more) n = (int)limit;
    } else {
        /* The page is [lo, hi] with hi = min(cursor, head_seq). */
        if (hi > head_seq) hi = head_seq;
        uint64_t lo = hi > limit ? hi - limit + 1 : 1;
        assert(hi == 0 || (uint64_t)n == hi - lo + 1);
        more = hi > 0 && lo > 1;
    }
    for (int i = 0; i < n; i++) {
        parley_msg m;
        pg_row_view(res, i, 2, room, &m);
        if (fn && fn(&m, ud) != 0) {
            if (dir == STORE_AFTER_REV) more = more || i + 1 < n;
            break;
        }
    }
    PQclear(res);
    *has_more = more;
    if (room_out) return pg_room_copy(s, room, head_seq, head_rev, room_out);
    return PARLEY_OK;
}

const store_engine store_engine_pg = {
    .name = "postgres",
    .serves = pg_serves,
    .open = pg_open,
    .close = pg_close,
    .last_error = pg_last_error,
    .describe = pg_describe,
    .synchronous = pg_synchronous,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .room_create = pg_room_create,
    .room_get = pg_room_get,
    .room_list = pg_room_list,
    .probe = pg_probe,
    .append = pg_append,
    .get = pg_get,
    .edit = pg_edit,
    .remove = pg_delete,
    .list = pg_list,
};
