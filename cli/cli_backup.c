/* cli_backup.c: `parley backup FILE`, an online copy of a running core's
 * SQLite database, made on the core's host with SQLite's backup API while
 * parleyd goes on serving.
 *
 * Why a local-file operation and not an RPC: the backup is a copy of a
 * file, and whoever may read that file may copy it; the operating system
 * already says who (the service user, root), where an RPC would need a
 * credential of its own (no token role means "operator"), would have
 * parleyd write files wherever a caller asks (it runs with
 * ProtectSystem=strict and only its state directory writable) or stream
 * the whole database through the gRPC port, and would tie up the core's
 * one loop thread for the copy. Copied on the host, the backup costs the
 * core nothing but a reader: SQLite in WAL mode lets writers go on while a
 * reader holds its snapshot. (A PostgreSQL store would be backed up with
 * pg_dump instead.)
 *
 * Why one step: sqlite3_backup_step(-1) copies every page inside one read
 * transaction, so the copy is the database as of one commit, whatever
 * parleyd commits meanwhile. Copying a few pages per step instead would
 * let the core's commits in between, and SQLite restarts a backup whose
 * source another process wrote to: under a steady load it might never
 * finish.
 *
 * The copy is written to FILE.tmp-PID, checked (PRAGMA integrity_check),
 * synced, and renamed to FILE, so FILE is either absent or a whole,
 * consistent database. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>

#include "cli.h"
#include "defaults.h"

#define BACKUP_BUSY_MS 10000

static const char backup_usage[] =
    "usage: parley backup FILE [--db PATH] [--force]\n"
    "\n"
    "Copies the database of a running (or stopped) parleyd into FILE, on the\n"
    "same host, while it keeps serving: SQLite's online backup, one\n"
    "consistent snapshot (every commit before it, none after). Run it as a\n"
    "user who may read the database and its folder (the service's user, or\n"
    "root). --db: the database (env PARLEY_DB, default " PARLEY_DB_DEFAULT
    ").\n"
    "FILE must not exist unless --force. The copy is checked with\n"
    "PRAGMA integrity_check before it takes FILE's name. Prints the rooms and\n"
    "messages it holds.\n";

typedef struct backup_opts {
    char db[512];
    int force;
} backup_opts;

static int backup_opt(cli *c, int ch, const char *arg, void *ud)
{
    (void)c;
    backup_opts *o = ud;
    if (ch == 'd') {
        snprintf(o->db, sizeof o->db, "%s", arg);
        return 0;
    }
    if (ch == 'f') {
        o->force = 1;
        return 0;
    }
    return -1;
}

static int io_fail(const char *what, const char *path, const char *why)
{
    fprintf(stderr, "parley: IO: %s %s: %s\n", what, path, why);
    return CLI_FAIL;
}

/* fsync of a file, then of its folder (so the rename is durable too). */
static int sync_path(const char *path, int dir)
{
    char buf[1100];
    snprintf(buf, sizeof buf, "%s", path);
    const char *p = dir ? dirname(buf) : path;
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

/* One integer of a query on db (count, max), -1 on error. */
static long long query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    long long v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return -1;
    if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

int cli_cmd_backup(cli *c, int argc, char **argv)
{
    static const struct option own[] = {{"db", required_argument, NULL, 'd'},
                                        {"force", no_argument, NULL, 'f'},
                                        {0, 0, 0, 0}};
    backup_opts o;
    memset(&o, 0, sizeof o);
    const char *env = getenv("PARLEY_DB");
    snprintf(o.db, sizeof o.db, "%s", env && *env ? env : PARLEY_DB_DEFAULT);
    int rc = cli_parse(c, argc, argv, backup_usage, own, backup_opt, &o);
    if (rc >= 0) return rc;
    if (argc - optind != 1)
        return cli_usage_error(c, backup_usage, "want FILE");
    const char *dest = argv[optind];
    if (!o.force && access(dest, F_OK) == 0)
        return io_fail("refusing to overwrite", dest, "it exists (--force)");
    if (access(o.db, R_OK) != 0)
        return io_fail("cannot read the database", o.db, strerror(errno));

    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", dest, (long)getpid());
    sqlite3 *src = NULL, *dst = NULL;
    rc = CLI_FAIL;
    /* Read-only, but a WAL reader still needs the -shm beside the file. */
    if (sqlite3_open_v2(o.db, &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        io_fail("cannot open", o.db, src ? sqlite3_errmsg(src) : "no memory");
        goto out;
    }
    sqlite3_busy_timeout(src, BACKUP_BUSY_MS);
    long long version = query_int(src, "PRAGMA user_version");
    if (version < 1) {
        io_fail("not a parley database (or unreadable):", o.db,
                sqlite3_errmsg(src));
        goto out;
    }
    unlink(tmp);
    if (sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                        NULL) != SQLITE_OK) {
        io_fail("cannot create", tmp, dst ? sqlite3_errmsg(dst) : "no memory");
        goto out;
    }
    sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
    if (!b) {
        io_fail("cannot start the backup into", tmp, sqlite3_errmsg(dst));
        goto out;
    }
    int step;
    int waited = 0;
    /* One step: every page from one read snapshot (see the top comment).
     * BUSY / LOCKED only while another connection holds a lock that keeps
     * even readers out (a checkpoint truncating the WAL): wait and go on. */
    while ((step = sqlite3_backup_step(b, -1)) == SQLITE_BUSY ||
           step == SQLITE_LOCKED) {
        if (waited >= BACKUP_BUSY_MS || cli_stop) break;
        usleep(50 * 1000);
        waited += 50;
    }
    int pages = sqlite3_backup_pagecount(b);
    int fin = sqlite3_backup_finish(b);
    if (step != SQLITE_DONE || fin != SQLITE_OK) {
        io_fail("backup failed from", o.db,
                sqlite3_errstr(step != SQLITE_DONE ? step : fin));
        goto out;
    }
    /* The copy keeps the source's WAL mode; leave one self-contained file. */
    if (sqlite3_exec(dst, "PRAGMA journal_mode = DELETE", NULL, NULL, NULL) !=
        SQLITE_OK) {
        io_fail("cannot finish", tmp, sqlite3_errmsg(dst));
        goto out;
    }
    sqlite3_stmt *st;
    const char *ok = NULL;
    if (sqlite3_prepare_v2(dst, "PRAGMA integrity_check", -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        ok = (const char *)sqlite3_column_text(st, 0);
    int intact = ok && strcmp(ok, "ok") == 0;
    if (!intact)
        io_fail("the copy failed its integrity check:", tmp, ok ? ok : "?");
    sqlite3_finalize(st);
    if (!intact) goto out;
    long long rooms = query_int(dst, "SELECT count(*) FROM rooms");
    long long msgs = query_int(dst, "SELECT count(*) FROM messages");
    sqlite3_close(dst);
    dst = NULL;
    if (sync_path(tmp, 0) != 0 || rename(tmp, dest) != 0 ||
        sync_path(dest, 1) != 0) {
        io_fail("cannot put the copy in place at", dest, strerror(errno));
        goto out;
    }
    if (c->json) {
        json_t *j =
            json_pack("{s:s,s:s,s:i,s:I,s:I,s:I}", "file", dest, "db", o.db,
                      "pages", pages, "rooms", (json_int_t)rooms, "messages",
                      (json_int_t)msgs, "schemaVersion", (json_int_t)version);
        char *t = j ? json_dumps(j, JSON_COMPACT) : NULL;
        if (t) printf("%s\n", t);
        free(t);
        json_decref(j);
    } else
        printf("backup of %s in %s: %d pages, %lld rooms, %lld messages "
               "(schema %lld)\n",
               o.db, dest, pages, rooms, msgs, version);
    rc = CLI_OK;
out:
    if (dst) sqlite3_close(dst);
    if (src) sqlite3_close(src);
    if (rc != CLI_OK) unlink(tmp);
    return rc;
}
