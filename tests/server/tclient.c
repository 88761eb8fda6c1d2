/* tclient.c: see tclient.h. The client uses one pluck completion queue per
 * call, so each helper waits for exactly the operation it started. The call
 * batches, metadata and byte buffers are the core library's rpc_client, the
 * same code the gateway runs. */
#include "tclient.h"
#include "rpc.h"
#include "rpc_client.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jwt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <grpc/byte_buffer.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <libpq-fe.h>

/* ---------- the store: SQLite file or PostgreSQL database ---------- */

static const char *pg_host, *pg_port, *pg_user;

void tc_use_postgres(const char *host, const char *port, const char *user) {
    pg_host = host;
    pg_port = port;
    pg_user = user;
}

int tc_using_postgres(void) { return pg_host != NULL; }

int tc_pg_target(const tc_server *s, char *out, size_t len) {
    if (!pg_host) return -1;
    const char *base = strrchr(s->dir, '/');
    base = base ? base + 1 : s->dir;
    snprintf(out, len, "postgres://%s@/%s?host=%s&port=%s&application_name=%s",
             pg_user, base, pg_host, pg_port, base);
    return 0;
}

int tc_pg_admin(const char *sql, char *out, size_t len) {
    char uri[512];
    snprintf(uri, sizeof uri, "postgres://%s@/postgres?host=%s&port=%s",
             pg_user, pg_host, pg_port);
    PGconn *c = PQconnectdb(uri);
    int rc = -1;
    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *r = PQexec(c, sql);
        int st = PQresultStatus(r);
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
            rc = 0;
            if (out && PQntuples(r) > 0)
                snprintf(out, len, "%s", PQgetvalue(r, 0, 0));
        } else if (state && !strcmp(state, "42P04")) {
            rc = 0; /* the database exists already: a restart */
        } else {
            fprintf(stderr, "tclient: %s: %s", sql, PQerrorMessage(c));
        }
        PQclear(r);
    } else {
        fprintf(stderr, "tclient: connect %s: %s", uri, PQerrorMessage(c));
    }
    PQfinish(c);
    return rc;
}

/* ---------- server process ---------- */

int tc_server_start(tc_server *s, const char *binary, const char *dir,
                    const char *const *extra) {
    return tc_server_start_opts(s, binary, dir, extra, NULL);
}

int tc_server_start_opts(tc_server *s, const char *binary, const char *dir,
                         const char *const *extra, const tc_server_opts *o) {
    memset(s, 0, sizeof *s);
    s->pid = -1;
    if (dir) {
        snprintf(s->dir, sizeof s->dir, "%s", dir);
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(s->dir, sizeof s->dir, "%s/parley-srvtest-XXXXXX",
                 tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(s->dir)) return -1;
    }
    char db[300], sock[300], log[300];
    snprintf(db, sizeof db, "%s/parley.db", s->dir);
    snprintf(sock, sizeof sock, "%s/p.sock", s->dir);
    snprintf(log, sizeof log, "%s/parleyd.log", s->dir);
    snprintf(s->unix_addr, sizeof s->unix_addr, "unix:%s", sock);
    const char *argv[64];
    int n = 0;
    argv[n++] = binary;
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--unix";
    argv[n++] = sock;
    argv[n++] = "--db";
    argv[n++] = db;
    /* load tests publish in bursts as one user; the core's per-user rate
     * is tested in tests/security */
    argv[n++] = "--user-rate";
    argv[n++] = "0";
    char target[1024];
    if (tc_pg_target(s, target, sizeof target) == 0) {
        /* A database of its own, named as the dir; kept across restarts. */
        char sql[400];
        snprintf(sql, sizeof sql, "CREATE DATABASE \"%s\"",
                 strrchr(s->dir, '/') ? strrchr(s->dir, '/') + 1 : s->dir);
        if (tc_pg_admin(sql, NULL, 0) != 0) return -1;
        argv[n++] = "--store";
        argv[n++] = target;
    }
    for (int i = 0; extra && extra[i] && n < 62; i++) argv[n++] = extra[i];
    argv[n] = NULL;
    int pfd[2];
    if (pipe(pfd) != 0) return -1;
    pid_t ppid = getpid();
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        /* Die with the test, whatever happens to it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != ppid) _exit(127);
        dup2(pfd[1], 1);
        int lf = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (lf >= 0) dup2(lf, 2);
        close(pfd[0]);
        if (extra && extra[0] && !strcmp(extra[0], "--dev"))
            unsetenv("PARLEY_JWT_SECRET");
        else
            setenv("PARLEY_JWT_SECRET", TC_SECRET, 1);
        if (o && o->fsize_limit > 0) {
            /* An ignored signal stays ignored across exec. */
            struct rlimit rl = {(rlim_t)o->fsize_limit, (rlim_t)o->fsize_limit};
            signal(SIGXFSZ, SIG_IGN);
            if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(126);
        }
        execv(binary, (char *const *)argv);
        _exit(127);
    }
    close(pfd[1]);
    s->pid = pid;
    char buf[4096];
    size_t len = 0;
    int64_t deadline = time(NULL) + 30;
    while (time(NULL) < deadline) {
        struct pollfd p = {pfd[0], POLLIN, 0};
        if (poll(&p, 1, 500) <= 0) continue;
        ssize_t r = read(pfd[0], buf + len, sizeof buf - 1 - len);
        if (r <= 0) break;
        len += (size_t)r;
        buf[len] = 0;
        char *l = strstr(buf, "parleyd listening on ");
        if (l && strchr(l, '\n')) {
            sscanf(l, "parleyd listening on %127s", s->addr);
            snprintf(s->banner, sizeof s->banner, "%s", buf);
            close(pfd[0]);
            return 0;
        }
        if (len >= sizeof buf - 1) len = 0;
    }
    close(pfd[0]);
    fprintf(stderr, "tclient: parleyd did not get ready; log in %s\n", log);
    tc_server_stop(s, 1);
    return -1;
}

int tc_server_stop(tc_server *s, int kill9) {
    if (s->pid <= 0) return -1;
    kill(s->pid, kill9 ? SIGKILL : SIGTERM);
    int st = 0;
    for (int i = 0; i < 200; i++) { /* 20 s */
        pid_t r = waitpid(s->pid, &st, WNOHANG);
        if (r == s->pid) break;
        if (i == 199) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &st, 0);
        }
        usleep(100 * 1000);
    }
    s->pid = -1;
    int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (!kill9 && rc != 0) { /* show why */
        char log[300], line[1024];
        snprintf(log, sizeof log, "%s/parleyd.log", s->dir);
        FILE *f = fopen(log, "r");
        fprintf(stderr, "tclient: parleyd exited with %d; its log:\n", rc);
        while (f && fgets(line, sizeof line, f)) fputs(line, stderr);
        if (f) fclose(f);
    }
    return rc;
}

static int rm_one(const char *p, const struct stat *sb, int flag,
                  struct FTW *f) {
    (void)sb;
    (void)flag;
    (void)f;
    return remove(p);
}

void tc_server_cleanup(tc_server *s) {
    if (s->pid > 0) tc_server_stop(s, 1);
    if (getenv("PARLEY_TEST_KEEP")) { /* keep db and log for a post-mortem */
        fprintf(stderr, "tclient: kept %s\n", s->dir);
        return;
    }
    if (s->dir[0]) nftw(s->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    s->dir[0] = 0;
}

char *tc_token(const char *sub, const char *role, long ttl,
               const char *secret) {
    if (!secret) secret = TC_SECRET;
    jwt_t *j = NULL;
    if (jwt_new(&j)) return NULL;
    char name[64];
    snprintf(name, sizeof name, "User %s", sub);
    jwt_add_grant(j, "sub", sub);
    jwt_add_grant(j, "name", name);
    jwt_add_grant(j, "role", role);
    jwt_add_grant_int(j, "exp", (long)time(NULL) + ttl);
    jwt_set_alg(j, JWT_ALG_HS256, (const unsigned char *)secret,
                (int)strlen(secret));
    char *t = jwt_encode_str(j);
    jwt_free(j);
    return t;
}

char *tc_service_token(const char *name, long ttl) {
    jwt_t *j = NULL;
    if (jwt_new(&j)) return NULL;
    jwt_add_grant(j, "svc", name);
    jwt_add_grant_int(j, "exp", (long)time(NULL) + ttl);
    jwt_set_alg(j, JWT_ALG_HS256, (const unsigned char *)TC_SECRET,
                (int)strlen(TC_SECRET));
    char *t = jwt_encode_str(j);
    jwt_free(j);
    return t;
}

/* ---------- client ---------- */

grpc_channel *tc_channel(const char *addr) {
    grpc_channel_credentials *c = grpc_insecure_credentials_create();
    /* Each channel its own connection, like separate clients (grpc shares
     * connections between equal channels of a process otherwise). */
    grpc_arg a;
    a.type = GRPC_ARG_INTEGER;
    a.key = (char *)GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL;
    a.value.integer = 1;
    grpc_channel_args args = {1, &a};
    grpc_channel *ch = grpc_channel_create(addr, c, &args);
    grpc_channel_credentials_release(c);
    return ch;
}

grpc_channel *tc_channel_small_window(const char *addr) {
    grpc_channel_credentials *c = grpc_insecure_credentials_create();
    grpc_arg a[3];
    a[0].type = GRPC_ARG_INTEGER;
    a[0].key = (char *)GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL;
    a[0].value.integer = 1;
    a[1].type = GRPC_ARG_INTEGER;
    a[1].key = (char *)GRPC_ARG_HTTP2_BDP_PROBE;
    a[1].value.integer = 0;
    a[2].type = GRPC_ARG_INTEGER;
    a[2].key = (char *)GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES;
    a[2].value.integer = 64 * 1024;
    grpc_channel_args args = {3, a};
    grpc_channel *ch = grpc_channel_create(addr, c, &args);
    grpc_channel_credentials_release(c);
    return ch;
}

static gpr_timespec in_ms(int ms) {
    return gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
                        gpr_time_from_millis(ms, GPR_TIMESPAN));
}

int tc_unary(grpc_channel *ch, const char *path, const char *token,
             const ProtobufCMessage *req, const void *raw, size_t raw_len,
             const ProtobufCMessageDescriptor *resp_desc, tc_result *out) {
    memset(out, 0, sizeof *out);
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    rpc_client_unary u;
    parley_err e =
        req ? rpc_client_unary_start(&u, ch, cq, path, token, req,
                                     in_ms(15000), (void *)1)
            : rpc_client_unary_start_bytes(&u, ch, cq, path, token, raw,
                                           raw_len, in_ms(15000), (void *)1);
    int rc = -1;
    if (e == PARLEY_OK) {
        grpc_event ev = grpc_completion_queue_pluck(cq, (void *)1,
                                                    in_ms(20000), NULL);
        if (ev.type == GRPC_OP_COMPLETE) {
            rc = 0;
            /* The raw status and trailer are the result; the parley error
             * the gateway would see is not needed here. */
            int unavailable;
            (void)rpc_client_unary_finish(&u, ev.success, resp_desc,
                                          &out->resp, out->details,
                                          sizeof out->details, &unavailable);
            out->status = u.status;
            rpc_metadata_get(&u.trail_md, "parley-error-code",
                             out->parley_code, sizeof out->parley_code);
        } else {
            grpc_call_cancel(u.call, NULL);
            grpc_completion_queue_pluck(cq, (void *)1,
                                        gpr_inf_future(GPR_CLOCK_REALTIME),
                                        NULL);
        }
        rpc_client_unary_free(&u);
    }
    grpc_completion_queue_shutdown(cq);
    grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME),
                                NULL);
    grpc_completion_queue_destroy(cq);
    return rc;
}

void tc_result_free(tc_result *r) {
    if (r->resp) protobuf_c_message_free_unpacked(r->resp, NULL);
    r->resp = NULL;
}

struct tc_stream {
    grpc_completion_queue *cq;
    grpc_call *call;
    grpc_metadata md;
    int has_md;
    grpc_metadata_array init_md, trail_md;
    grpc_status_code status;
    grpc_slice details;
    grpc_byte_buffer *recv;
    int tag_start, tag_status, tag_recv, tag_send;
    int start_pending, status_pending, recv_pending, status_done;
};

tc_stream *tc_stream_open(grpc_channel *ch, const char *path,
                          const char *token) {
    tc_stream *st = calloc(1, sizeof *st);
    st->cq = grpc_completion_queue_create_for_pluck(NULL);
    st->call = grpc_channel_create_call(
        ch, NULL, GRPC_PROPAGATE_DEFAULTS, st->cq,
        grpc_slice_from_static_string(path), NULL,
        gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    grpc_metadata_array_init(&st->init_md);
    grpc_metadata_array_init(&st->trail_md);
    st->details = grpc_empty_slice();
    if (token) {
        rpc_client_auth_md(&st->md, token);
        st->has_md = 1;
    }
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = st->has_md;
    ops[0].data.send_initial_metadata.metadata = st->has_md ? &st->md : NULL;
    ops[1].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[1].data.recv_initial_metadata.recv_initial_metadata = &st->init_md;
    if (grpc_call_start_batch(st->call, ops, 2, &st->tag_start, NULL) ==
        GRPC_CALL_OK)
        st->start_pending = 1;
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[0].data.recv_status_on_client.trailing_metadata = &st->trail_md;
    ops[0].data.recv_status_on_client.status = &st->status;
    ops[0].data.recv_status_on_client.status_details = &st->details;
    if (grpc_call_start_batch(st->call, ops, 1, &st->tag_status, NULL) ==
        GRPC_CALL_OK)
        st->status_pending = 1;
    return st;
}

static int pluck(tc_stream *st, void *tag, int timeout_ms) {
    grpc_event ev = grpc_completion_queue_pluck(
        st->cq, tag,
        timeout_ms < 0 ? gpr_inf_future(GPR_CLOCK_REALTIME) : in_ms(timeout_ms),
        NULL);
    if (ev.type == GRPC_QUEUE_TIMEOUT) return -1;
    return ev.success ? 1 : 0;
}

/* Sends bb (and destroys it). */
static int send_bb(tc_stream *st, grpc_byte_buffer *bb) {
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = bb;
    int rc = -1;
    if (grpc_call_start_batch(st->call, &op, 1, &st->tag_send, NULL) ==
        GRPC_CALL_OK)
        rc = pluck(st, &st->tag_send, -1) == 1 ? 0 : -1;
    grpc_byte_buffer_destroy(bb);
    return rc;
}

int tc_stream_send_raw(tc_stream *st, const void *p, size_t n) {
    return send_bb(st, rpc_client_pack_bytes(p, n));
}

int tc_stream_send(tc_stream *st, const ProtobufCMessage *msg) {
    return send_bb(st, rpc_client_pack(msg));
}

int tc_stream_recv(tc_stream *st, const ProtobufCMessageDescriptor *desc,
                   int timeout_ms, ProtobufCMessage **out) {
    *out = NULL;
    if (!st->recv_pending) {
        grpc_op op;
        memset(&op, 0, sizeof op);
        op.op = GRPC_OP_RECV_MESSAGE;
        op.data.recv_message.recv_message = &st->recv;
        if (grpc_call_start_batch(st->call, &op, 1, &st->tag_recv, NULL) !=
            GRPC_CALL_OK)
            return 0;
        st->recv_pending = 1;
    }
    int r = pluck(st, &st->tag_recv, timeout_ms);
    if (r < 0) return -1;
    st->recv_pending = 0;
    if (!st->recv) return 0;
    *out = rpc_decode(desc, st->recv);
    grpc_byte_buffer_destroy(st->recv);
    st->recv = NULL;
    return *out ? 1 : 0;
}

int tc_stream_close_send(tc_stream *st) {
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    if (grpc_call_start_batch(st->call, &op, 1, &st->tag_send, NULL) !=
        GRPC_CALL_OK)
        return -1;
    return pluck(st, &st->tag_send, -1) == 1 ? 0 : -1;
}

int tc_stream_status(tc_stream *st, int timeout_ms, grpc_status_code *status,
                     char *details, size_t dlen) {
    if (st->status_pending) {
        if (pluck(st, &st->tag_status, timeout_ms) < 0) return -1;
        st->status_pending = 0;
        st->status_done = 1;
    }
    if (!st->status_done) return -1;
    *status = st->status;
    if (details) rpc_client_slice_str(st->details, details, dlen);
    return 0;
}

void tc_stream_free(tc_stream *st) {
    if (!st) return;
    grpc_call_cancel(st->call, NULL);
    if (st->start_pending) pluck(st, &st->tag_start, -1);
    if (st->recv_pending) pluck(st, &st->tag_recv, -1);
    if (st->status_pending) pluck(st, &st->tag_status, -1);
    if (st->recv) grpc_byte_buffer_destroy(st->recv);
    grpc_call_unref(st->call);
    grpc_completion_queue_shutdown(st->cq);
    grpc_completion_queue_pluck(st->cq, NULL,
                                gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    grpc_completion_queue_destroy(st->cq);
    if (st->has_md) grpc_slice_unref(st->md.value);
    grpc_slice_unref(st->details);
    grpc_metadata_array_destroy(&st->init_md);
    grpc_metadata_array_destroy(&st->trail_md);
    free(st);
}
