/* tclient.h: test helpers for the server tests: start and stop a real
 * parleyd, mint tokens, and a small client on the grpc C core (unary calls
 * and Connect streams), all with bounded timeouts. */
#ifndef PARLEY_TCLIENT_H
#define PARLEY_TCLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>

#define TC_SECRET "server-test-secret-0123456789abcdef!"

typedef struct tc_server {
    pid_t pid;
    char dir[256];   /* temp dir holding db, socket and log */
    char addr[128];  /* "127.0.0.1:PORT" */
    char unix_addr[320];
    char banner[4096]; /* what parleyd printed up to its ready line */
} tc_server;

/* After tc_use_postgres, every parleyd started runs its store on a database
 * of its own on that PostgreSQL (--store), named as its temp dir and
 * created on its first start; its connections carry that name as
 * application_name. tc_pg_target writes the URI; tc_pg_admin runs sql as
 * the admin (the first value into out), 0 on success. */
void tc_use_postgres(const char *host, const char *port, const char *user);
int tc_using_postgres(void);
int tc_pg_target(const tc_server *s, char *out, size_t len);
int tc_pg_admin(const char *sql, char *out, size_t len);

/* Starts parleyd with its db in a new temp dir (or in dir if given) and
 * extra args (NULL-terminated), and waits for its ready line. 0 on success.
 * PARLEY_JWT_SECRET is TC_SECRET unless extra[0] is "--dev" (then unset). */
int tc_server_start(tc_server *s, const char *binary, const char *dir,
                    const char *const *extra);
/* What tc_server_start_opts can change about the process. */
typedef struct tc_server_opts {
    /* RLIMIT_FSIZE of parleyd in bytes (0: none), with SIGXFSZ ignored: a
     * write past it fails with EFBIG, so SQLite meets a real full disk at
     * the commit that crosses it, without root or a small filesystem. */
    long long fsize_limit;
} tc_server_opts;
int tc_server_start_opts(tc_server *s, const char *binary, const char *dir,
                         const char *const *extra, const tc_server_opts *o);
/* SIGTERM (or SIGKILL if kill9) and wait; returns the exit status, or
 * 128+signal. */
int tc_server_stop(tc_server *s, int kill9);
void tc_server_cleanup(tc_server *s); /* removes the temp dir */

/* A token signed with TC_SECRET (or secret), exp = now + ttl. */
char *tc_token(const char *sub, const char *role, long ttl,
               const char *secret);

/* A service token {svc: name} signed with TC_SECRET (no service secret
 * set: the user secret signs them), exp = now + ttl. */
char *tc_service_token(const char *name, long ttl);

typedef struct tc_result {
    grpc_status_code status;
    char details[256];
    char parley_code[64]; /* trailing metadata parley-error-code, or "" */
    ProtobufCMessage *resp; /* decoded response (free with tc_result_free) */
} tc_result;

/* A unary call. req_bytes/len (raw) or req (encoded here). token NULL: no
 * authorization metadata. */
int tc_unary(grpc_channel *ch, const char *path, const char *token,
             const ProtobufCMessage *req, const void *raw, size_t raw_len,
             const ProtobufCMessageDescriptor *resp_desc, tc_result *out);
void tc_result_free(tc_result *r);

grpc_channel *tc_channel(const char *addr);
/* A channel whose per-stream receive window stays at 64 KB (no BDP probing
 * growing it): a stream the test does not read holds the server back after
 * that much, whatever the machine's speed. */
grpc_channel *tc_channel_small_window(const char *addr);

/* A Connect stream (or any bidi call). */
typedef struct tc_stream tc_stream;
tc_stream *tc_stream_open(grpc_channel *ch, const char *path,
                          const char *token);
int tc_stream_send(tc_stream *st, const ProtobufCMessage *msg);
int tc_stream_send_raw(tc_stream *st, const void *p, size_t n);
/* Next message decoded as desc within timeout_ms: 1 got one, 0 the stream
 * ended (status in *status), -1 timeout. */
int tc_stream_recv(tc_stream *st, const ProtobufCMessageDescriptor *desc,
                   int timeout_ms, ProtobufCMessage **out);
/* Half-close. */
int tc_stream_close_send(tc_stream *st);
/* Waits for the final status (after reading everything). */
int tc_stream_status(tc_stream *st, int timeout_ms, grpc_status_code *status,
                     char *details, size_t dlen);
void tc_stream_free(tc_stream *st); /* cancels if still open */

#endif
