/* gw_rest.c: the REST routes, each one History call upstream with the
 * user's bearer token forwarded as `authorization` metadata. The gateway
 * verifies the token first (401 without a call). Bodies and answers are the
 * proto3 JSON of the History messages (gw_json.c); a route that answers
 * with one field of the response (Message, Room) names it and the field is
 * found through the descriptor.
 *
 *   GET    /v1/rooms/{room}/messages?after=REV|before=SEQ&limit=N  ListMessages
 *   GET    /v1/rooms/{room}/messages/{seq}                        GetMessage
 *   PATCH  /v1/rooms/{room}/messages/{seq}  {"body": "..."}       EditMessage
 *   DELETE /v1/rooms/{room}/messages/{seq}                        DeleteMessage
 *   POST   /v1/rooms  {"name": "..."}                             CreateRoom
 *   GET    /v1/rooms/{room}                                       GetRoom */
#include "gw.h"
#include "gw_json.h"
#include "parley/v1/history.grpc.h"
#include "rules.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rest_ctx {
    gw_handle *http;
    const char *unwrap; /* answer with this field of the response, or NULL */
} rest_ctx;

static void rest_done(gw_server *s, void *ud, parley_err e,
                      const char *detail, int unavailable,
                      ProtobufCMessage *resp)
{
    rest_ctx *rc = ud;
    gw_http *h = rc->http->p;
    (void)s;
    if (h) {
        if (e != PARLEY_OK) {
            gw_http_respond_error(h, unavailable ? PARLEY_ERR_INTERNAL : e,
                                  unavailable ? 503 : 0,
                                  unavailable ? "upstream core unavailable"
                                              : detail);
        } else {
            const ProtobufCMessage *out = resp;
            if (rc->unwrap) {
                const ProtobufCFieldDescriptor *f =
                    protobuf_c_message_descriptor_get_field_by_name(
                        resp->descriptor, rc->unwrap);
                out = f ? *(ProtobufCMessage **)((char *)resp + f->offset)
                        : NULL;
            }
            size_t len = 0;
            char *txt = out ? gw_json_encode(out, &len) : NULL;
            if (txt)
                gw_http_respond(h, 200, "application/json", txt, len);
            else
                gw_http_respond_error(h, PARLEY_ERR_INTERNAL, 500,
                                      "empty answer from the core");
            free(txt);
        }
    }
    if (resp)
        protobuf_c_message_free_unpacked(resp, NULL);
    gw_handle_unref(rc->http);
    free(rc);
}

static void call(gw_http *h, int method, const ProtobufCMessage *req,
                 const char *token, const char *unwrap)
{
    rest_ctx *rc = malloc(sizeof *rc);
    if (!rc) {
        gw_http_respond_error(h, PARLEY_ERR_INTERNAL, 500, NULL);
        return;
    }
    rc->http = gw_handle_ref(gw_http_handle(h));
    rc->unwrap = unwrap;
    parley_err e = gw_up_unary(gw_http_server(h),
                               &parley_v1_History_service.methods[method], req,
                               token, rest_done, rc);
    if (e != PARLEY_OK) {
        gw_handle_unref(rc->http);
        free(rc);
        gw_http_respond_error(h, PARLEY_ERR_INTERNAL, 503,
                              "upstream core unavailable");
    }
}

/* Decimal u64 or -1. */
static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (!s || !*s || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

/* The value of query arg name ("after="), or NULL. */
static const char *arg(gw_http *h, struct lws *wsi, const char *name,
                       char *buf, int len)
{
    (void)h;
    return lws_get_urlarg_by_name(wsi, name, buf, len);
}

int gw_rest_route(gw_http *h, const char *method, const char *path,
                  const char *body, size_t body_len, const char *bearer)
{
    gw_server *s = gw_http_server(h);
    char room[RULES_ROOM_MAX + 2] = "", rest[128] = "";
    const char *p;
    int kind; /* 0 /v1/rooms, 1 room, 2 messages, 3 message */
    uint64_t seq = 0;

    if (strcmp(path, "/v1/rooms") == 0 || strcmp(path, "/v1/rooms/") == 0) {
        kind = 0;
    } else if (strncmp(path, "/v1/rooms/", 10) == 0) {
        p = path + 10;
        size_t n = strcspn(p, "/");
        if (n == 0 || n > RULES_ROOM_MAX) {
            gw_http_respond_error(h, PARLEY_ERR_ROOM_INVALID, 400, NULL);
            return 0;
        }
        memcpy(room, p, n);
        room[n] = '\0';
        p += n;
        if (!*p) {
            kind = 1;
        } else if (strcmp(p, "/messages") == 0 || strcmp(p, "/messages/") == 0) {
            kind = 2;
        } else if (strncmp(p, "/messages/", 10) == 0) {
            snprintf(rest, sizeof rest, "%s", p + 10);
            if (parse_u64(rest, &seq) < 0) {
                gw_http_respond_error(h, PARLEY_ERR_MALFORMED, 400,
                                      "seq must be a decimal number");
                return 0;
            }
            kind = 3;
        } else {
            return -1;
        }
    } else {
        return -1;
    }

    /* Which methods each route takes. */
    int ok = (kind == 0 && !strcmp(method, "POST")) ||
             (kind == 1 && !strcmp(method, "GET")) ||
             (kind == 2 && !strcmp(method, "GET")) ||
             (kind == 3 && (!strcmp(method, "GET") || !strcmp(method, "PATCH") ||
                            !strcmp(method, "DELETE")));
    if (!ok) {
        gw_http_respond_error(h, PARLEY_ERR_MALFORMED, 405,
                              "method not allowed");
        return 0;
    }

    /* The gateway checks the token itself before any upstream call. */
    auth_identity who;
    if (!bearer || auth_verify(s->auth, bearer, gw_now_s(), &who) != PARLEY_OK) {
        gw_http_respond_error(h, PARLEY_ERR_UNAUTHENTICATED, 401,
                              bearer ? "token invalid or expired"
                                     : "Authorization: Bearer <token> required");
        return 0;
    }
    const char *token = bearer;
    if (strncasecmp(token, "Bearer ", 7) == 0)
        token += 7;

    if (kind != 0) {
        parley_err e = rules_room(room);
        if (e != PARLEY_OK) {
            gw_http_respond_error(h, e, 400, NULL);
            return 0;
        }
    }

    char detail[200] = "";
    switch (kind) {
    case 0: {
        ProtobufCMessage *m = NULL;
        parley_err e = gw_json_decode(&parley__v1__create_room_request__descriptor,
                                      body, body_len, &m, detail, sizeof detail);
        if (e != PARLEY_OK) {
            gw_http_respond_error(h, e, 400, detail);
            return 0;
        }
        call(h, PARLEY_V1_HISTORY_CREATE_ROOM, m, token, NULL);
        protobuf_c_message_free_unpacked(m, NULL);
        return 0;
    }
    case 1: {
        Parley__V1__GetRoomRequest req = PARLEY__V1__GET_ROOM_REQUEST__INIT;
        req.name = room;
        call(h, PARLEY_V1_HISTORY_GET_ROOM, &req.base, token, "room");
        return 0;
    }
    case 2: {
        Parley__V1__ListMessagesRequest req =
            PARLEY__V1__LIST_MESSAGES_REQUEST__INIT;
        char b1[64], b2[64], b3[64];
        struct lws *wsi = gw_http_wsi(h);
        const char *after = arg(h, wsi, "after=", b1, sizeof b1);
        const char *before = arg(h, wsi, "before=", b2, sizeof b2);
        const char *limit = arg(h, wsi, "limit=", b3, sizeof b3);
        uint64_t v;
        req.room = room;
        if (after && before) {
            gw_http_respond_error(h, PARLEY_ERR_BAD_CURSOR, 400,
                                  "give after or before, not both");
            return 0;
        }
        if (after) {
            if (parse_u64(after, &v) < 0) {
                gw_http_respond_error(h, PARLEY_ERR_BAD_CURSOR, 400,
                                      "after must be a decimal rev");
                return 0;
            }
            req.cursor_case = PARLEY__V1__LIST_MESSAGES_REQUEST__CURSOR_AFTER_REV;
            req.after_rev = v;
        } else if (before) {
            if (parse_u64(before, &v) < 0) {
                gw_http_respond_error(h, PARLEY_ERR_BAD_CURSOR, 400,
                                      "before must be a decimal seq");
                return 0;
            }
            req.cursor_case = PARLEY__V1__LIST_MESSAGES_REQUEST__CURSOR_BEFORE_SEQ;
            req.before_seq = v;
        }
        if (limit) {
            if (parse_u64(limit, &v) < 0 || v > UINT32_MAX) {
                gw_http_respond_error(h, PARLEY_ERR_BAD_CURSOR, 400,
                                      "limit must be a decimal number");
                return 0;
            }
            req.limit = (uint32_t)v;
        }
        call(h, PARLEY_V1_HISTORY_LIST_MESSAGES, &req.base, token, NULL);
        return 0;
    }
    case 3:
        if (!strcmp(method, "GET")) {
            Parley__V1__GetMessageRequest req =
                PARLEY__V1__GET_MESSAGE_REQUEST__INIT;
            req.room = room;
            req.seq = seq;
            call(h, PARLEY_V1_HISTORY_GET_MESSAGE, &req.base, token, "message");
        } else if (!strcmp(method, "DELETE")) {
            Parley__V1__DeleteMessageRequest req =
                PARLEY__V1__DELETE_MESSAGE_REQUEST__INIT;
            req.room = room;
            req.seq = seq;
            call(h, PARLEY_V1_HISTORY_DELETE_MESSAGE, &req.base, token,
                 "message");
        } else {
            ProtobufCMessage *m = NULL;
            parley_err e = gw_json_decode(
                &parley__v1__edit_message_request__descriptor, body, body_len,
                &m, detail, sizeof detail);
            if (e != PARLEY_OK) {
                gw_http_respond_error(h, e, 400, detail);
                return 0;
            }
            /* room and seq come from the path, whatever the body says */
            Parley__V1__EditMessageRequest *er =
                (Parley__V1__EditMessageRequest *)m;
            char *keep = er->room;
            er->room = room;
            er->seq = seq;
            call(h, PARLEY_V1_HISTORY_EDIT_MESSAGE, m, token, "message");
            er->room = keep;
            protobuf_c_message_free_unpacked(m, NULL);
        }
        return 0;
    }
    return -1;
}
