/* cli.h: `parley`, the command-line client of parleyd, on the same
 * generated stubs (gen/) and client calls (src/rpc/rpc_client.h) as the
 * gateway. cli_main.c reads the common options and runs a command;
 * cli_rpc.c owns the connection, unary calls, streams, errors and exit
 * codes; cli_cmds.c the small commands (rooms, send, edit, delete, token);
 * cli_history.c history (and --follow), export and import; cli_backup.c
 * the online backup of a running core's SQLite file.
 *
 * Output is for people by default and for programs with --json (one JSON
 * object per line, proto3 JSON as the gateway speaks it). Errors go to
 * stderr as "parley: CODE: detail", CODE being the parley error code
 * (ROOM_NOT_FOUND, ...) or UNAVAILABLE / USAGE / IO, and the exit status
 * says which kind of failure it was (CLI_* below, docs/operations.md). */
#ifndef PARLEY_CLI_H
#define PARLEY_CLI_H

#include <getopt.h>
#include <signal.h>
#include <stddef.h>
#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>

#include "errors.h"
#include "parley/v1/message.pb-c.h"

/* Exit statuses, a documented contract. */
enum {
    CLI_OK = 0,
    CLI_FAIL = 1,        /* anything else: INTERNAL, I/O, a failed backup */
    CLI_USAGE = 2,       /* bad command line */
    CLI_UNAVAILABLE = 3, /* parleyd not reachable, or no answer in time */
    CLI_DENIED = 4,      /* no token, bad token, or not allowed */
    CLI_NOT_FOUND = 5,   /* no such room or message */
    CLI_REFUSED = 6      /* the server refused the input (bad room name,
                            empty or long body, deleted message, ...) */
};

typedef struct cli {
    char server[512]; /* grpc target: "unix:var/parleyd.sock", "h:7400" */
    char token[8192]; /* "" until cli_need_token */
    char token_file[512];
    int json;                  /* --json */
    int timeout_s;             /* per unary call */
    const char *cmd;           /* the command running, for messages */
    grpc_channel *ch;          /* opened by cli_connect */
    grpc_completion_queue *cq; /* a pluck queue, this thread only */
} cli;

/* The options every command takes (they may come before or after the
 * command): --server, --token-file, --json, --timeout, --help. */
#define CLI_COMMON_SHORT "h"
#define CLI_COMMON_LONG                                \
    {"server", required_argument, NULL, 1000},         \
        {"token-file", required_argument, NULL, 1001}, \
        {"json", no_argument, NULL, 1002},             \
        {"timeout", required_argument, NULL, 1003},    \
    {                                                  \
        "help", no_argument, NULL, 'h'                 \
    }
/* Handles one of the common options (getopt's ch and optarg): 0 done, 1
 * not a common option, or an exit status (--help printed usage: CLI_OK
 * through *exit_now = 1; a bad value: CLI_USAGE). */
int cli_common_opt(cli *c, int ch, const char *arg, const char *usage,
                   int *exit_now);
/* Parses a command's argv: its own options (own, ending with a zero
 * entry; each is given to own_fn) and the common ones. -1 to go on, the
 * positional arguments being argv[optind..argc); else an exit status
 * (after --help, or a bad option). */
int cli_parse(cli *c, int argc, char **argv, const char *usage,
              const struct option *own,
              int (*own_fn)(cli *c, int ch, const char *arg, void *ud),
              void *ud);
/* "-": all of stdin, one trailing newline dropped; else a copy of arg.
 * NULL when stdin cannot be read. Caller frees. */
char *cli_text_arg(const char *arg);
/* A whole number 1..max for a positional argument; -1 if it is not. */
long long cli_number(const char *s, long long max);
/* Prints "parley CMD: msg" and the usage hint; returns CLI_USAGE. */
int cli_usage_error(const cli *c, const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "parley: CODE: detail" on stderr; returns the exit status for e
 * (unavailable: the server was not reached or did not answer). */
int cli_fail(const cli *c, parley_err e, int unavailable, const char *detail);
int cli_exit_code(parley_err e, int unavailable);

/* The token, from PARLEY_TOKEN or --token-file (PARLEY_TOKEN_FILE); never
 * from the command line, where the process list would show it. CLI_OK, or
 * CLI_DENIED after saying how to give one. */
int cli_need_token(cli *c);
/* Opens the channel (once). */
int cli_connect(cli *c);
void cli_close(cli *c);

/* One unary call with the token. CLI_OK and *resp (free with
 * protobuf_c_message_free_unpacked), or the exit status after printing the
 * error. */
int cli_unary(cli *c, const char *path, const ProtobufCMessage *req,
              const ProtobufCMessageDescriptor *resp_desc,
              ProtobufCMessage **resp);

/* ---- a bidirectional stream (Stream.Connect) ---- */

typedef struct cli_stream cli_stream;
/* NULL only when out of memory; a stream that fails shows it at recv. */
cli_stream *cli_stream_open(cli *c, const char *path);
/* 0, or -1 when the stream is over (see cli_stream_end). */
int cli_stream_send(cli_stream *s, const ProtobufCMessage *m);
/* The next message within timeout_ms: 1 with *out (free it), 0 on timeout
 * (call again: the same receive goes on), -1 when the stream is over. */
int cli_stream_recv(cli_stream *s, const ProtobufCMessageDescriptor *d,
                    ProtobufCMessage **out, int timeout_ms);
/* After -1 (or to give up): cancels if still open, waits for the status;
 * its parley error, *unavailable, and the detail. Frees s. */
parley_err cli_stream_end(cli_stream *s, int *unavailable, char *detail,
                          size_t cap);

/* ---- output ---- */

/* m as one line of proto3 JSON on stdout. CLI_OK or CLI_FAIL. */
int cli_print_json(const ProtobufCMessage *m);
/* "#SEQ rREV TIME AUTHOR: BODY [edited] [deleted]" on stdout. */
void cli_print_message(const Parley__V1__Message *m);
/* A message in the format chosen (--json or text). */
int cli_print_msg(const cli *c, const Parley__V1__Message *m);

/* Set by SIGINT / SIGTERM (cli_main.c); long commands stop cleanly. */
extern volatile sig_atomic_t cli_stop;

/* The commands: argv[0] is the command's name. Each returns an exit
 * status. */
int cli_cmd_rooms(cli *c, int argc, char **argv);
int cli_cmd_send(cli *c, int argc, char **argv);
int cli_cmd_edit(cli *c, int argc, char **argv);
int cli_cmd_delete(cli *c, int argc, char **argv);
int cli_cmd_token(cli *c, int argc, char **argv);
int cli_cmd_history(cli *c, int argc, char **argv);
int cli_cmd_export(cli *c, int argc, char **argv);
int cli_cmd_import(cli *c, int argc, char **argv);
int cli_cmd_backup(cli *c, int argc, char **argv);

#endif
