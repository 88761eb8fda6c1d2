/* errors.h: parley's error codes, shared by the core, the server and the
 * gateway. The numbers are those of parley.v1.ErrorCode (proto/parley/v1/
 * message.proto); errors.c checks the two agree at compile time and maps each
 * code to a gRPC status, an HTTP status and a readable name. */
#ifndef PARLEY_ERRORS_H
#define PARLEY_ERRORS_H

typedef enum parley_err {
    PARLEY_OK = 0,
    PARLEY_ERR_INTERNAL = 1,
    PARLEY_ERR_MALFORMED = 2,
    PARLEY_ERR_ROOM_INVALID = 3,
    PARLEY_ERR_ROOM_NOT_FOUND = 4,
    PARLEY_ERR_BODY_EMPTY = 5,
    PARLEY_ERR_BODY_TOO_LONG = 6,
    PARLEY_ERR_INVALID_UTF8 = 7,
    PARLEY_ERR_CLIENT_MSG_ID_INVALID = 8,
    PARLEY_ERR_MESSAGE_NOT_FOUND = 9,
    PARLEY_ERR_MESSAGE_DELETED = 10,
    PARLEY_ERR_PERMISSION_DENIED = 11,
    PARLEY_ERR_UNAUTHENTICATED = 12,
    PARLEY_ERR_RESOURCE_EXHAUSTED = 13,
    PARLEY_ERR_BAD_CURSOR = 14,
    PARLEY_ERR_SUBSCRIPTION_STATE = 15,
    PARLEY_ERR_AUTHOR_INVALID = 16,
    PARLEY_ERR_TOKEN_EXPIRED = 17,
    /* Not in the wire enum: store-level conditions. */
    PARLEY_ERR_SCHEMA_TOO_NEW = 100,
    PARLEY_ERR_IO = 101
} parley_err;

/* The access rule behind a PARLEY_ERR_PERMISSION_DENIED (core/access.h
 * decides them). The numbers are those of parley.v1.Rule; errors.c checks
 * the two agree. */
typedef enum parley_rule {
    PARLEY_RULE_NONE = 0, /* allowed */
    PARLEY_RULE_NOT_GRANTED = 1,
    PARLEY_RULE_MEMBERS_ONLY = 2,
    PARLEY_RULE_REMOVED = 3,
    PARLEY_RULE_MUTED = 4,
    PARLEY_RULE_ANNOUNCEMENTS = 5,
    PARLEY_RULE_ROOM_CLOSED = 6,
    PARLEY_RULE_ORGANIZER_ONLY = 7,
    PARLEY_RULE_SERVICE_READ_ONLY = 8
} parley_rule;
#define PARLEY_RULE_MAX PARLEY_RULE_SERVICE_READ_ONLY

/* "MUTED" and so on ("" for PARLEY_RULE_NONE, "UNKNOWN" for a number that
 * is no rule); never NULL. */
const char *parley_rule_name(parley_rule r);
/* The rule of a name, "MUTED" or "RULE_MUTED"; PARLEY_RULE_NONE for one it
 * does not know. */
parley_rule parley_rule_from_name(const char *name);
/* A short English sentence for humans, saying what the rule refuses. */
const char *parley_rule_text(parley_rule r);

/* "ROOM_NOT_FOUND" and so on; never NULL. */
const char *parley_err_name(parley_err e);
/* The wire error of a name, "ROOM_NOT_FOUND" or "ERROR_CODE_ROOM_NOT_FOUND"
 * (as a `parley-error-code` trailer carries it); PARLEY_ERR_INTERNAL for
 * a name it does not know. */
parley_err parley_err_from_name(const char *name);
/* A short English sentence for humans; never NULL. */
const char *parley_err_text(parley_err e);
/* The grpc_status_code number (INVALID_ARGUMENT = 3, ...). */
int parley_err_grpc_status(parley_err e);
/* The HTTP status a REST answer carries (400, 404, ...). */
int parley_err_http_status(parley_err e);

#endif
