/* cli_cmds.c: the small commands of `parley`: rooms, send, edit, delete,
 * each one or a few unary calls, and token, which mints a token with the
 * dev secret and calls nothing. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "cli.h"
#include "defaults.h"
#include "parley/v1/history.pb-c.h"
#include "parley/v1/stream.pb-c.h"
#include "secrets.h"

/* ---- rooms -------------------------------------------------------------- */

static const char rooms_usage[] =
    "usage: parley rooms [--json]\n"
    "\n"
    "Lists every room, by name, one per line: NAME<TAB>HEAD_SEQ<TAB>HEAD_REV\n"
    "(--json: one parley.v1.Room per line). HEAD_SEQ is the newest message's\n"
    "seq, HEAD_REV the newest change's rev.\n";

int cli_cmd_rooms(cli *c, int argc, char **argv)
{
    int rc = cli_parse(c, argc, argv, rooms_usage, NULL, NULL, NULL);
    if (rc >= 0) return rc;
    if (optind != argc)
        return cli_usage_error(c, rooms_usage, "no arguments expected");
    char after[128] = "";
    for (;;) {
        Parley__V1__ListRoomsRequest req = PARLEY__V1__LIST_ROOMS_REQUEST__INIT;
        req.after_name = after;
        req.limit = 1000;
        ProtobufCMessage *out = NULL;
        rc = cli_unary(c, "/parley.v1.History/ListRooms", &req.base,
                       &parley__v1__list_rooms_response__descriptor, &out);
        if (rc) return rc;
        Parley__V1__ListRoomsResponse *r = (Parley__V1__ListRoomsResponse *)out;
        for (size_t i = 0; i < r->n_rooms && rc == CLI_OK; i++) {
            if (c->json)
                rc = cli_print_json(&r->rooms[i]->base);
            else
                printf("%s\t%llu\t%llu\n", r->rooms[i]->name,
                       (unsigned long long)r->rooms[i]->head_seq,
                       (unsigned long long)r->rooms[i]->head_rev);
        }
        int more = r->has_more && r->n_rooms > 0;
        if (more)
            snprintf(after, sizeof after, "%s", r->rooms[r->n_rooms - 1]->name);
        protobuf_c_message_free_unpacked(out, NULL);
        if (rc || !more) return rc;
    }
}

/* ---- send ---------------------------------------------------------------- */

static const char send_usage[] =
    "usage: parley send ROOM TEXT [--id CLIENT_MSG_ID] [--json]\n"
    "\n"
    "Publishes TEXT (\"-\": read it from stdin) to ROOM as the token's user, "
    "and\n"
    "prints SEQ REV once it is stored (\"SEQ REV duplicate\" when --id was\n"
    "stored before: sending again with the same --id never stores twice).\n"
    "Without --id a random one is used.\n";

static int send_opt(cli *c, int ch, const char *arg, void *ud)
{
    (void)c;
    if (ch != 'i') return -1;
    snprintf(ud, 65, "%s", arg);
    return 0;
}

static void random_id(char *out, size_t cap)
{
    unsigned char b[12];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, b, sizeof b) : -1;
    if (fd >= 0) close(fd);
    if (n != (ssize_t)sizeof b) { /* no urandom: time and pid still differ */
        unsigned long long t = (unsigned long long)time(NULL) ^
                               ((unsigned long long)getpid() << 32);
        memcpy(b, &t, sizeof t);
        memset(b + sizeof t, 0, sizeof b - sizeof t);
    }
    size_t o = (size_t)snprintf(out, cap, "cli-");
    for (size_t i = 0; i < sizeof b && o + 2 < cap; i++)
        o += (size_t)snprintf(out + o, cap - o, "%02x", b[i]);
}

int cli_cmd_send(cli *c, int argc, char **argv)
{
    static const struct option own[] = {{"id", required_argument, NULL, 'i'},
                                        {0, 0, 0, 0}};
    char id[65] = "";
    int rc = cli_parse(c, argc, argv, send_usage, own, send_opt, id);
    if (rc >= 0) return rc;
    if (argc - optind != 2)
        return cli_usage_error(c, send_usage, "want ROOM and TEXT");
    if (!id[0]) random_id(id, sizeof id);
    char *text = cli_text_arg(argv[optind + 1]);
    if (!text) return cli_fail(c, PARLEY_ERR_INTERNAL, 0, "cannot read stdin");
    Parley__V1__PublishRequest req = PARLEY__V1__PUBLISH_REQUEST__INIT;
    req.room = argv[optind];
    req.client_msg_id = id;
    req.body = text;
    ProtobufCMessage *out = NULL;
    rc = cli_unary(c, "/parley.v1.Stream/Publish", &req.base,
                   &parley__v1__publish_response__descriptor, &out);
    free(text);
    if (rc) return rc;
    Parley__V1__PublishResponse *r = (Parley__V1__PublishResponse *)out;
    if (c->json)
        rc = cli_print_json(out);
    else
        printf("%llu %llu%s\n", (unsigned long long)r->message->seq,
               (unsigned long long)r->message->rev,
               r->duplicate ? " duplicate" : "");
    protobuf_c_message_free_unpacked(out, NULL);
    return rc;
}

/* ---- edit, delete ----------------------------------------------------------- */

static const char edit_usage[] =
    "usage: parley edit ROOM SEQ TEXT [--json]\n"
    "\n"
    "Replaces the body of message SEQ with TEXT (\"-\": from stdin); the\n"
    "author or an organizer only. Prints SEQ REV (the change's new rev).\n";

static const char delete_usage[] =
    "usage: parley delete ROOM SEQ [--json]\n"
    "\n"
    "Deletes message SEQ: it stays as a tombstone with its seq and an empty\n"
    "body; the author or an organizer only. Prints SEQ REV.\n";

/* Prints the message a change answered with. */
static int print_changed(cli *c, const Parley__V1__Message *m)
{
    if (c->json) return cli_print_json(&m->base);
    printf("%llu %llu\n", (unsigned long long)m->seq,
           (unsigned long long)m->rev);
    return CLI_OK;
}

int cli_cmd_edit(cli *c, int argc, char **argv)
{
    int rc = cli_parse(c, argc, argv, edit_usage, NULL, NULL, NULL);
    if (rc >= 0) return rc;
    if (argc - optind != 3)
        return cli_usage_error(c, edit_usage, "want ROOM, SEQ and TEXT");
    long long seq = cli_number(argv[optind + 1], (long long)1 << 62);
    if (seq < 0) return cli_usage_error(c, edit_usage, "SEQ is a number >= 1");
    char *text = cli_text_arg(argv[optind + 2]);
    if (!text) return cli_fail(c, PARLEY_ERR_INTERNAL, 0, "cannot read stdin");
    Parley__V1__EditMessageRequest req = PARLEY__V1__EDIT_MESSAGE_REQUEST__INIT;
    req.room = argv[optind];
    req.seq = (uint64_t)seq;
    req.body = text;
    ProtobufCMessage *out = NULL;
    rc = cli_unary(c, "/parley.v1.History/EditMessage", &req.base,
                   &parley__v1__edit_message_response__descriptor, &out);
    free(text);
    if (rc) return rc;
    rc = print_changed(c, ((Parley__V1__EditMessageResponse *)out)->message);
    protobuf_c_message_free_unpacked(out, NULL);
    return rc;
}

int cli_cmd_delete(cli *c, int argc, char **argv)
{
    int rc = cli_parse(c, argc, argv, delete_usage, NULL, NULL, NULL);
    if (rc >= 0) return rc;
    if (argc - optind != 2)
        return cli_usage_error(c, delete_usage, "want ROOM and SEQ");
    long long seq = cli_number(argv[optind + 1], (long long)1 << 62);
    if (seq < 0)
        return cli_usage_error(c, delete_usage, "SEQ is a number >= 1");
    Parley__V1__DeleteMessageRequest req =
        PARLEY__V1__DELETE_MESSAGE_REQUEST__INIT;
    req.room = argv[optind];
    req.seq = (uint64_t)seq;
    ProtobufCMessage *out = NULL;
    rc = cli_unary(c, "/parley.v1.History/DeleteMessage", &req.base,
                   &parley__v1__delete_message_response__descriptor, &out);
    if (rc) return rc;
    rc = print_changed(c, ((Parley__V1__DeleteMessageResponse *)out)->message);
    protobuf_c_message_free_unpacked(out, NULL);
    return rc;
}

/* ---- token --------------------------------------------------------------- */

static const char token_usage[] =
    "usage: parley token USER [--name NAME] [--role participant|organizer]\n"
    "                    [--ttl SECONDS] [--dev-secret FILE]\n"
    "\n"
    "Development only: prints a token for USER signed with the dev secret "
    "that\n"
    "`parleyd --dev` writes beside its database (default var/dev-secret, or\n"
    "dev-secret beside $PARLEY_DB). It never reads a production secret: with\n"
    "no dev secret it refuses (exit 4). Default role participant, name USER,\n"
    "ttl 86400. Use it as: export PARLEY_TOKEN=$(parley token olga --role\n"
    "organizer)\n";

typedef struct token_opts {
    char name[128];
    char role[32];
    long long ttl;
    char secret_file[512];
} token_opts;

static int token_opt(cli *c, int ch, const char *arg, void *ud)
{
    token_opts *o = ud;
    switch (ch) {
    case 'n': snprintf(o->name, sizeof o->name, "%s", arg); return 0;
    case 'r': snprintf(o->role, sizeof o->role, "%s", arg); return 0;
    case 's':
        snprintf(o->secret_file, sizeof o->secret_file, "%s", arg);
        return 0;
    case 't':
        o->ttl = cli_number(arg, 366LL * 24 * 3600);
        return o->ttl < 0 ? cli_usage_error(c, token_usage,
                                            "--ttl wants 1..31622400 seconds")
                          : 0;
    default: return -1;
    }
}

int cli_cmd_token(cli *c, int argc, char **argv)
{
    static const struct option own[] = {
        {"name", required_argument, NULL, 'n'},
        {"role", required_argument, NULL, 'r'},
        {"ttl", required_argument, NULL, 't'},
        {"dev-secret", required_argument, NULL, 's'},
        {0, 0, 0, 0}};
    token_opts o = {"", "participant", 86400, ""};
    int rc = cli_parse(c, argc, argv, token_usage, own, token_opt, &o);
    if (rc >= 0) return rc;
    if (argc - optind != 1) return cli_usage_error(c, token_usage, "want USER");
    int role = parley_role_parse(o.role);
    if (!role)
        return cli_usage_error(c, token_usage,
                               "--role is participant or organizer");
    if (!o.secret_file[0]) {
        const char *db = getenv("PARLEY_DB");
        if (secrets_dev_path(db && *db ? db : PARLEY_DB_DEFAULT, o.secret_file,
                             sizeof o.secret_file) != 0)
            return cli_usage_error(c, token_usage, "PARLEY_DB is too long");
    }
    char secret[1024];
    if (access(o.secret_file, F_OK) != 0 ||
        secrets_read_file(o.secret_file, secret, sizeof secret) != 0) {
        fprintf(stderr,
                "parley: UNAUTHENTICATED: no dev secret at %s: parley token "
                "works only beside a parleyd started with --dev\n",
                o.secret_file);
        return CLI_DENIED;
    }
    auth *au = NULL;
    parley_err e = auth_new(secret, strlen(secret), &au);
    memset(secret, 0, sizeof secret);
    if (e != PARLEY_OK)
        return cli_fail(c, e, 0, "the dev secret is shorter than 32 bytes");
    auth_identity id;
    memset(&id, 0, sizeof id);
    snprintf(id.id, sizeof id.id, "%s", argv[optind]);
    snprintf(id.display_name, sizeof id.display_name, "%s",
             o.name[0] ? o.name : argv[optind]);
    id.role = role;
    char *tok = auth_mint(au, &id, (int64_t)time(NULL), o.ttl);
    auth_free(au);
    if (!tok)
        return cli_fail(c, PARLEY_ERR_AUTHOR_INVALID, 0,
                        "cannot mint a token for that user");
    printf("%s\n", tok);
    memset(tok, 0, strlen(tok));
    free(tok);
    return CLI_OK;
}
