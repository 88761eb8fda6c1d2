/* errors.c: names, texts, gRPC and HTTP statuses of parley's error codes,
 * and the names and texts of the access rules that a PERMISSION_DENIED
 * carries. The numbers of the wire codes and rules are checked against the
 * generated parley.v1.ErrorCode and parley.v1.Rule enums at compile time,
 * so the proto and errors.h can never drift apart silently. */
#include "errors.h"

#include <string.h>

#include "parley/v1/message.pb-c.h"

#define PARLEY_WIRE_EQ(name)                                           \
    _Static_assert((int)PARLEY_ERR_##name ==                           \
                       (int)PARLEY__V1__ERROR_CODE__ERROR_CODE_##name, \
                   "PARLEY_ERR_" #name " differs from parley.v1.ErrorCode")

PARLEY_WIRE_EQ(INTERNAL);
PARLEY_WIRE_EQ(MALFORMED);
PARLEY_WIRE_EQ(ROOM_INVALID);
PARLEY_WIRE_EQ(ROOM_NOT_FOUND);
PARLEY_WIRE_EQ(BODY_EMPTY);
PARLEY_WIRE_EQ(BODY_TOO_LONG);
PARLEY_WIRE_EQ(INVALID_UTF8);
PARLEY_WIRE_EQ(CLIENT_MSG_ID_INVALID);
PARLEY_WIRE_EQ(MESSAGE_NOT_FOUND);
PARLEY_WIRE_EQ(MESSAGE_DELETED);
PARLEY_WIRE_EQ(PERMISSION_DENIED);
PARLEY_WIRE_EQ(UNAUTHENTICATED);
PARLEY_WIRE_EQ(RESOURCE_EXHAUSTED);
PARLEY_WIRE_EQ(BAD_CURSOR);
PARLEY_WIRE_EQ(SUBSCRIPTION_STATE);
PARLEY_WIRE_EQ(AUTHOR_INVALID);
PARLEY_WIRE_EQ(TOKEN_EXPIRED);
_Static_assert((int)PARLEY_OK ==
                   (int)PARLEY__V1__ERROR_CODE__ERROR_CODE_UNSPECIFIED,
               "PARLEY_OK must be the wire enum's zero");

/* grpc_status_code numbers (grpc/status.h); spelled out so that this file
 * does not need the gRPC headers. */
enum {
    GRPC_OK = 0,
    GRPC_INVALID_ARGUMENT = 3,
    GRPC_NOT_FOUND = 5,
    GRPC_PERMISSION_DENIED = 7,
    GRPC_RESOURCE_EXHAUSTED = 8,
    GRPC_FAILED_PRECONDITION = 9,
    GRPC_INTERNAL = 13,
    GRPC_UNAUTHENTICATED = 16
};

typedef struct err_info {
    const char *name;
    const char *text;
    int grpc;
    int http;
} err_info;

static const err_info err_unknown = {"UNKNOWN", "unknown error", GRPC_INTERNAL,
                                     500};

static const err_info *err_lookup(parley_err e)
{
    static const err_info wire[] = {
        [PARLEY_OK] = {"OK", "ok", GRPC_OK, 200},
        [PARLEY_ERR_INTERNAL] = {"INTERNAL", "internal server error",
                                 GRPC_INTERNAL, 500},
        [PARLEY_ERR_MALFORMED] = {"MALFORMED",
                                  "the request could not be decoded",
                                  GRPC_INVALID_ARGUMENT, 400},
        [PARLEY_ERR_ROOM_INVALID] =
            {"ROOM_INVALID",
             "room name must be 1..64 characters of [A-Za-z0-9._-]",
             GRPC_INVALID_ARGUMENT, 400},
        [PARLEY_ERR_ROOM_NOT_FOUND] = {"ROOM_NOT_FOUND",
                                       "the room does not exist",
                                       GRPC_NOT_FOUND, 404},
        [PARLEY_ERR_BODY_EMPTY] = {"BODY_EMPTY",
                                   "message body is empty or only white space",
                                   GRPC_INVALID_ARGUMENT, 400},
        [PARLEY_ERR_BODY_TOO_LONG] = {"BODY_TOO_LONG",
                                      "message body is longer than the limit",
                                      GRPC_INVALID_ARGUMENT, 400},
        [PARLEY_ERR_INVALID_UTF8] = {"INVALID_UTF8",
                                     "text is not valid UTF-8 or holds a NUL",
                                     GRPC_INVALID_ARGUMENT, 400},
        [PARLEY_ERR_CLIENT_MSG_ID_INVALID] =
            {"CLIENT_MSG_ID_INVALID",
             "client message id must be 1..64 printable ASCII characters",
             GRPC_INVALID_ARGUMENT, 400},
        [PARLEY_ERR_MESSAGE_NOT_FOUND] =
            {"MESSAGE_NOT_FOUND", "no message with that seq in the room",
             GRPC_NOT_FOUND, 404},
        [PARLEY_ERR_MESSAGE_DELETED] = {"MESSAGE_DELETED",
                                        "the message was deleted",
                                        GRPC_FAILED_PRECONDITION, 409},
        [PARLEY_ERR_PERMISSION_DENIED] = {"PERMISSION_DENIED",
                                          "you may not change this message",
                                          GRPC_PERMISSION_DENIED, 403},
        [PARLEY_ERR_UNAUTHENTICATED] = {"UNAUTHENTICATED",
                                        "missing, invalid or expired token",
                                        GRPC_UNAUTHENTICATED, 401},
        [PARLEY_ERR_RESOURCE_EXHAUSTED] = {"RESOURCE_EXHAUSTED",
                                           "too many requests",
                                           GRPC_RESOURCE_EXHAUSTED, 429},
        [PARLEY_ERR_BAD_CURSOR] = {"BAD_CURSOR",
                                   "paging arguments are out of range",
                                   GRPC_INVALID_ARGUMENT, 400},
        [PARLEY_ERR_SUBSCRIPTION_STATE] =
            {"SUBSCRIPTION_STATE", "room already subscribed, or not subscribed",
             GRPC_FAILED_PRECONDITION, 409},
        [PARLEY_ERR_AUTHOR_INVALID] =
            {"AUTHOR_INVALID", "author id, display name or role invalid",
             GRPC_INVALID_ARGUMENT, 400},
        [PARLEY_ERR_TOKEN_EXPIRED] = {"TOKEN_EXPIRED",
                                      "the token has expired; renew it",
                                      GRPC_UNAUTHENTICATED, 401},
    };
    /* Every wire code has its row (a missing one would read as zeros). */
    _Static_assert(sizeof wire / sizeof wire[0] == PARLEY_ERR_TOKEN_EXPIRED + 1,
                   "errors.c: a wire error code lacks its row");
    static const err_info schema_too_new = {
        "SCHEMA_TOO_NEW", "the database was written by a newer parley",
        GRPC_FAILED_PRECONDITION, 500};
    static const err_info io = {"IO", "storage input/output error",
                                GRPC_INTERNAL, 500};

    if ((int)e >= 0 && (size_t)e < sizeof wire / sizeof wire[0])
        return &wire[e];
    if (e == PARLEY_ERR_SCHEMA_TOO_NEW) return &schema_too_new;
    if (e == PARLEY_ERR_IO) return &io;
    return &err_unknown;
}

const char *parley_err_name(parley_err e) { return err_lookup(e)->name; }
const char *parley_err_text(parley_err e) { return err_lookup(e)->text; }
int parley_err_grpc_status(parley_err e) { return err_lookup(e)->grpc; }
int parley_err_http_status(parley_err e) { return err_lookup(e)->http; }

parley_err parley_err_from_name(const char *name)
{
    if (strncmp(name, "ERROR_CODE_", 11) == 0) name += 11;
    for (int e = 1; e <= PARLEY_ERR_TOKEN_EXPIRED; e++)
        if (strcmp(parley_err_name((parley_err)e), name) == 0)
            return (parley_err)e;
    return PARLEY_ERR_INTERNAL;
}

/* ---- access rules ------------------------------------------------------ */

#define PARLEY_RULE_EQ(name)                               \
    _Static_assert((int)PARLEY_RULE_##name ==              \
                       (int)PARLEY__V1__RULE__RULE_##name, \
                   "PARLEY_RULE_" #name " differs from parley.v1.Rule")

PARLEY_RULE_EQ(NOT_GRANTED);
PARLEY_RULE_EQ(MEMBERS_ONLY);
PARLEY_RULE_EQ(REMOVED);
PARLEY_RULE_EQ(MUTED);
PARLEY_RULE_EQ(ANNOUNCEMENTS);
PARLEY_RULE_EQ(ROOM_CLOSED);
PARLEY_RULE_EQ(ORGANIZER_ONLY);
PARLEY_RULE_EQ(SERVICE_READ_ONLY);

typedef struct rule_info {
    const char *name;
    const char *text;
} rule_info;

static const rule_info rule_rows[] = {
    [PARLEY_RULE_NONE] = {"", "allowed"},
    [PARLEY_RULE_NOT_GRANTED] = {"NOT_GRANTED",
                                 "your token grants no role in this room"},
    [PARLEY_RULE_MEMBERS_ONLY] = {"MEMBERS_ONLY",
                                  "this room is for its members only"},
    [PARLEY_RULE_REMOVED] = {"REMOVED",
                             "an organizer removed you from this room"},
    [PARLEY_RULE_MUTED] = {"MUTED", "an organizer muted you in this room"},
    [PARLEY_RULE_ANNOUNCEMENTS] = {"ANNOUNCEMENTS",
                                   "only organizers post in this room"},
    [PARLEY_RULE_ROOM_CLOSED] = {"ROOM_CLOSED",
                                 "this room is closed: it is read-only"},
    [PARLEY_RULE_ORGANIZER_ONLY] = {"ORGANIZER_ONLY",
                                    "only the room's organizers may do this"},
    [PARLEY_RULE_SERVICE_READ_ONLY] = {"SERVICE_READ_ONLY",
                                       "a service credential only reads"},
};
_Static_assert(sizeof rule_rows / sizeof rule_rows[0] == PARLEY_RULE_MAX + 1,
               "errors.c: a rule lacks its row");

const char *parley_rule_name(parley_rule r)
{
    if ((int)r < 0 || (int)r > PARLEY_RULE_MAX) return "UNKNOWN";
    return rule_rows[r].name;
}

const char *parley_rule_text(parley_rule r)
{
    if ((int)r < 0 || (int)r > PARLEY_RULE_MAX) return "unknown rule";
    return rule_rows[r].text;
}

parley_rule parley_rule_from_name(const char *name)
{
    if (name == NULL) return PARLEY_RULE_NONE;
    if (strncmp(name, "RULE_", 5) == 0) name += 5;
    for (int r = 1; r <= PARLEY_RULE_MAX; r++)
        if (strcmp(rule_rows[r].name, name) == 0) return (parley_rule)r;
    return PARLEY_RULE_NONE;
}
