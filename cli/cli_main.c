/* cli_main.c: `parley`'s entry point: the common options before the
 * command, the table of commands, --help, signals (SIGINT / SIGTERM end a
 * --follow cleanly), grpc's start and stop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "defaults.h"

volatile sig_atomic_t cli_stop;

static void on_signal(int sig)
{
    (void)sig;
    cli_stop = 1;
}

typedef struct command {
    const char *name;
    int (*run)(cli *c, int argc, char **argv);
    int needs_grpc;
    const char *what;
} command;

static const command commands[] = {
    {"rooms", cli_cmd_rooms, 1, "list the rooms with their head counters"},
    {"history", cli_cmd_history, 1,
     "print a room's messages; --follow goes on with live events"},
    {"send", cli_cmd_send, 1, "publish a message"},
    {"edit", cli_cmd_edit, 1, "replace a message's body"},
    {"delete", cli_cmd_delete, 1, "delete a message (it leaves a tombstone)"},
    {"export", cli_cmd_export, 1, "write a room's messages as JSON lines"},
    {"import", cli_cmd_import, 1,
     "publish JSON lines (from export) into a room"},
    {"token", cli_cmd_token, 0, "mint a token with the dev secret (dev mode)"},
    {"backup", cli_cmd_backup, 0,
     "copy a running core's database, consistently, on its host"},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static const char usage_top[] =
    "usage: parley [OPTIONS] COMMAND [ARGS]\n"
    "\n"
    "parley's command-line client: talks to parleyd over gRPC.\n"
    "\n"
    "Options (also accepted after the command):\n"
    "  --server ADDR      parleyd's gRPC address (env PARLEY_SERVER; default\n"
    "                     unix:" PARLEY_SOCKET_DEFAULT ")\n"
    "  --token-file FILE  the token (JWT) to call with (env "
    "PARLEY_TOKEN_FILE);\n"
    "                     or put the token itself in PARLEY_TOKEN\n"
    "  --json             one JSON object per line (proto3 JSON) on stdout\n"
    "  --timeout SECONDS  per call (default 10)\n"
    "  --help             this text; `parley COMMAND --help` for a command\n"
    "\n"
    "Commands:\n";

static void print_usage(FILE *out)
{
    fputs(usage_top, out);
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].what);
    fputs("\nExit status: 0 ok, 1 failure, 2 usage, 3 parleyd unreachable, "
          "4 no token or\nnot allowed, 5 room or message not found, 6 input "
          "refused by the server.\nErrors go to stderr as "
          "\"parley: CODE: detail\".\n",
          out);
}

int main(int argc, char **argv)
{
    cli c;
    memset(&c, 0, sizeof c);
    const char *env = getenv("PARLEY_SERVER");
    snprintf(c.server, sizeof c.server, "%s",
             env && *env ? env : "unix:" PARLEY_SOCKET_DEFAULT);
    c.timeout_s = 10;

    static const struct option common[] = {CLI_COMMON_LONG, {0, 0, 0, 0}};
    int ch, rc, done;
    opterr = 0;
    /* "+": stop at the command; its own options are its business. */
    while ((ch = getopt_long(argc, argv, "+" CLI_COMMON_SHORT, common, NULL)) !=
           -1) {
        if (ch == 'h') {
            print_usage(stdout);
            return CLI_OK;
        }
        rc = cli_common_opt(&c, ch, optarg, usage_top, &done);
        if (done || rc) return rc ? rc : CLI_USAGE;
    }
    if (optind >= argc) {
        print_usage(stderr);
        return CLI_USAGE;
    }
    const char *name = argv[optind];
    if (!strcmp(name, "help")) {
        print_usage(stdout);
        return CLI_OK;
    }
    const command *cmd = NULL;
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(name, commands[i].name)) cmd = &commands[i];
    if (!cmd) {
        fprintf(stderr,
                "parley: USAGE: unknown command \"%s\" (see parley "
                "--help)\n",
                name);
        return CLI_USAGE;
    }
    c.cmd = cmd->name;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int first = optind;
    optind = 0; /* the command parses its own argv from the start */
    if (cmd->needs_grpc) grpc_init();
    rc = cmd->run(&c, argc - first, argv + first);
    cli_close(&c);
    if (cmd->needs_grpc) grpc_shutdown();
    if (fflush(stdout) != 0 && rc == CLI_OK) {
        fprintf(stderr, "parley: IO: cannot write the output\n");
        rc = CLI_FAIL;
    }
    return rc;
}
