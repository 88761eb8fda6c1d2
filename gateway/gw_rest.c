/* gw_rest.c: the REST routes, each one History call upstream with the
 * user's bearer token forwarded as `authorization` metadata. The gateway
 * verifies the token first (401 without a call). Bodies and answers are the
 * proto3 JSON of the History messages (gw_json.c); a route that answers
 * with one field of the response (Message, Room) names it and the field is
 * found through the descriptor.
 * gw_rest_call makes and answers every REST call upstream, those of
 * gw_rest_rooms.c too.
 *
 *   GET    /v1/rooms/{room}/messages?after=REV|before=SEQ&limit=N  ListMessages
 *   GET    /v1/rooms/{room}/messages/{seq}                        GetMessage
 *   PATCH  /v1/rooms/{room}/messages/{seq}  {"body": "..."}       EditMessage
 *   DELETE /v1/rooms/{room}/messages/{seq}                        DeleteMessage
 *   POST   /v1/rooms  {"name": "..."}                             CreateRoom
 *   GET    /v1/rooms/{room}                                       GetRoom
 *   ... and the room management routes of gw_rest_rooms.c (Rooms)
 *
 * The table rest_routes is the one list; gw_route.c matches a request
 * against it: a path no route has is 404, a path with the wrong method 405
 * with an Allow header, both with code MALFORMED (docs/gateway.md). */
#include "gw.h"
#include "gw_json.h"
#include "gw_upstream.h"
#include "gw_route.h"
#include "parley/v1/history.grpc.h"
#include "rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rest_ctx {
    gw_handle *http;
    const char *unwrap; /* answer with this field of the response, or NULL */
} rest_ctx;

static void rest_done(gw_server *s, void *ud, parley_err e, const char *detail,
                      int unavailable, ProtobufCMessage *resp)
{
    rest_ctx *rc = ud;
    gw_http *h = rc->http->p;
    if (h) {
        if (e != PARLEY_OK) {
            /* A refusal names the core's rule (403 with "rule"). */
            gw_http_respond_error_rule(
                h, unavailable ? PARLEY_ERR_INTERNAL : e,
                unavailable ? PARLEY_RULE_NONE : gw_up_unary_rule(s),
                unavailable ? 503 : 0,
                unavailable ? "upstream core unavailable" : detail);
        } else {
            const ProtobufCMessage *out = resp;
            if (rc->unwrap) {
                const ProtobufCFieldDescriptor *f =
                    protobuf_c_message_descriptor_get_field_by_name(
                        resp->descriptor, rc->unwrap);
                out =
                    f ? *(ProtobufCMessage **)((char *)resp + f->offset) : NULL;
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
    if (resp) protobuf_c_message_free_unpacked(resp, NULL);
    gw_handle_unref(rc->http);
    free(rc);
}

void gw_rest_call(gw_http *h, const rpc_method_desc *m,
                  const ProtobufCMessage *req, const char *token,
                  const char *unwrap)
{
    rest_ctx *rc = malloc(sizeof *rc);
    if (!rc) {
        gw_http_respond_error(h, PARLEY_ERR_INTERNAL, 500, NULL);
        return;
    }
    rc->http = gw_handle_ref(gw_http_handle(h));
    rc->unwrap = unwrap;
    parley_err e = gw_up_unary(gw_http_server(h), m, req, token, rest_done, rc);
    if (e != PARLEY_OK) {
        gw_handle_unref(rc->http);
        free(rc);
        gw_http_respond_error(h, PARLEY_ERR_INTERNAL, 503,
                              "upstream core unavailable");
    }
}

/* A History call (its method's index). */
static void call(gw_http *h, int method, const ProtobufCMessage *req,
                 const char *token, const char *unwrap)
{
    gw_rest_call(h, &parley_v1_History_service.methods[method], req, token,
                 unwrap);
}

/* ---- the routes ---- */

typedef struct rest_req {
    gw_http *h;
    char room[RULES_ROOM_MAX + 1];
    char user[RULES_AUTHOR_ID_MAX + 1]; /* {user}, %-decoded */
    uint64_t seq;
    const char *body;
    size_t body_len;
    const char *token; /* the bearer token, without "Bearer " */
} rest_req;

typedef void (*rest_handler)(const rest_req *r);

static void h_create_room(const rest_req *r)
{
    char detail[200] = "";
    ProtobufCMessage *m = NULL;
    parley_err e =
        gw_json_decode(&parley__v1__create_room_request__descriptor, r->body,
                       r->body_len, &m, detail, sizeof detail);
    if (e != PARLEY_OK) {
        gw_http_respond_error(r->h, e, 400, detail);
        return;
    }
    call(r->h, PARLEY_V1_HISTORY_CREATE_ROOM, m, r->token, NULL);
    protobuf_c_message_free_unpacked(m, NULL);
}

static void h_get_room(const rest_req *r)
{
    Parley__V1__GetRoomRequest req = PARLEY__V1__GET_ROOM_REQUEST__INIT;
    req.name = (char *)r->room;
    call(r->h, PARLEY_V1_HISTORY_GET_ROOM, &req.base, r->token, "room");
}

static void h_list_messages(const rest_req *r)
{
    Parley__V1__ListMessagesRequest req =
        PARLEY__V1__LIST_MESSAGES_REQUEST__INIT;
    char b1[64], b2[64], b3[64], detail[100];
    struct lws *wsi = gw_http_wsi(r->h);
    const char *after = lws_get_urlarg_by_name(wsi, "after=", b1, sizeof b1);
    const char *before = lws_get_urlarg_by_name(wsi, "before=", b2, sizeof b2);
    const char *limit = lws_get_urlarg_by_name(wsi, "limit=", b3, sizeof b3);
    int cursor;
    uint64_t v;
    parley_err e = gw_route_paging(after, before, limit, &cursor, &v,
                                   &req.limit, detail, sizeof detail);
    if (e != PARLEY_OK) {
        gw_http_respond_error(r->h, e, 400, detail);
        return;
    }
    req.room = (char *)r->room;
    if (cursor == 1) {
        req.cursor_case = PARLEY__V1__LIST_MESSAGES_REQUEST__CURSOR_AFTER_REV;
        req.after_rev = v;
    } else if (cursor == 2) {
        req.cursor_case = PARLEY__V1__LIST_MESSAGES_REQUEST__CURSOR_BEFORE_SEQ;
        req.before_seq = v;
    }
    call(r->h, PARLEY_V1_HISTORY_LIST_MESSAGES, &req.base, r->token, NULL);
}

static void h_get_message(const rest_req *r)
{
    Parley__V1__GetMessageRequest req = PARLEY__V1__GET_MESSAGE_REQUEST__INIT;
    req.room = (char *)r->room;
    req.seq = r->seq;
    call(r->h, PARLEY_V1_HISTORY_GET_MESSAGE, &req.base, r->token, "message");
}

static void h_edit_message(const rest_req *r)
{
    char detail[200] = "";
    ProtobufCMessage *m = NULL;
    parley_err e =
        gw_json_decode(&parley__v1__edit_message_request__descriptor, r->body,
                       r->body_len, &m, detail, sizeof detail);
    if (e != PARLEY_OK) {
        gw_http_respond_error(r->h, e, 400, detail);
        return;
    }
    /* room and seq come from the path, whatever the body says */
    Parley__V1__EditMessageRequest *er = (Parley__V1__EditMessageRequest *)m;
    char *keep = er->room;
    er->room = (char *)r->room;
    er->seq = r->seq;
    call(r->h, PARLEY_V1_HISTORY_EDIT_MESSAGE, m, r->token, "message");
    er->room = keep;
    protobuf_c_message_free_unpacked(m, NULL);
}

static void h_delete_message(const rest_req *r)
{
    Parley__V1__DeleteMessageRequest req =
        PARLEY__V1__DELETE_MESSAGE_REQUEST__INIT;
    req.room = (char *)r->room;
    req.seq = r->seq;
    call(r->h, PARLEY_V1_HISTORY_DELETE_MESSAGE, &req.base, r->token,
         "message");
}

/* The REST API: one row per method and path. */
/* The room management and moderation routes: gw_rest_rooms.c. */
#define ROOMS_ROUTE(fn, which)                                             \
    static void fn(const rest_req *r)                                      \
    {                                                                      \
        gw_rest_rooms(r->h, which, r->room, r->user, r->body, r->body_len, \
                      r->token);                                           \
    }
ROOMS_ROUTE(h_list_rooms, GW_RR_LIST_ROOMS)
ROOMS_ROUTE(h_update_room, GW_RR_UPDATE_ROOM)
ROOMS_ROUTE(h_delete_room, GW_RR_DELETE_ROOM)
ROOMS_ROUTE(h_list_members, GW_RR_LIST_MEMBERS)
ROOMS_ROUTE(h_add_member, GW_RR_ADD_MEMBER)
ROOMS_ROUTE(h_remove_member, GW_RR_REMOVE_MEMBER)
ROOMS_ROUTE(h_moderate, GW_RR_MODERATE)
ROOMS_ROUTE(h_list_actions, GW_RR_LIST_ACTIONS)
ROOMS_ROUTE(h_mark_read, GW_RR_MARK_READ)
ROOMS_ROUTE(h_erase_user, GW_RR_ERASE_USER)

static const gw_route rest_routes[] = {
    {"POST", "/v1/rooms", (void (*)(void))h_create_room},
    {"GET", "/v1/rooms/{room}", (void (*)(void))h_get_room},
    {"GET", "/v1/rooms/{room}/messages", (void (*)(void))h_list_messages},
    {"GET", "/v1/rooms/{room}/messages/{seq}", (void (*)(void))h_get_message},
    {"PATCH", "/v1/rooms/{room}/messages/{seq}",
     (void (*)(void))h_edit_message},
    {"DELETE", "/v1/rooms/{room}/messages/{seq}",
     (void (*)(void))h_delete_message},
    /* room management (gw_rest_rooms.c) */
    {"GET", "/v1/rooms", (void (*)(void))h_list_rooms},
    {"PATCH", "/v1/rooms/{room}", (void (*)(void))h_update_room},
    {"DELETE", "/v1/rooms/{room}", (void (*)(void))h_delete_room},
    {"GET", "/v1/rooms/{room}/members", (void (*)(void))h_list_members},
    {"POST", "/v1/rooms/{room}/members", (void (*)(void))h_add_member},
    {"DELETE", "/v1/rooms/{room}/members/{user}",
     (void (*)(void))h_remove_member},
    {"POST", "/v1/rooms/{room}/moderation", (void (*)(void))h_moderate},
    {"GET", "/v1/rooms/{room}/actions", (void (*)(void))h_list_actions},
    {"POST", "/v1/rooms/{room}/read", (void (*)(void))h_mark_read},
    {"POST", "/v1/users/{user}/erase", (void (*)(void))h_erase_user},
};

void gw_rest_route(gw_http *h, const char *method, const char *path,
                   const char *body, size_t body_len, const char *bearer)
{
    gw_server *s = gw_http_server(h);
    gw_route_args args;
    char allow[64], detail[160];
    int i =
        gw_route_match(rest_routes, sizeof rest_routes / sizeof rest_routes[0],
                       method, path, &args, allow, sizeof allow);
    if (i == GW_ROUTE_NOT_FOUND) {
        snprintf(detail, sizeof detail, "no route %s %.100s (docs/gateway.md)",
                 method, path);
        gw_http_respond_error(h, PARLEY_ERR_MALFORMED, 404, detail);
        return;
    }
    if (i == GW_ROUTE_BAD_METHOD) {
        snprintf(detail, sizeof detail,
                 "method %s not allowed here; allowed: %s", method, allow);
        gw_http_set_allow(h, allow);
        gw_http_respond_error(h, PARLEY_ERR_MALFORMED, 405, detail);
        return;
    }

    rest_req r;
    memset(&r, 0, sizeof r);
    r.h = h;
    r.body = body;
    r.body_len = body_len;
    int too_long = 0;
    const char *room = gw_route_arg(&args, "room", &too_long);
    if (room) {
        parley_err e = too_long ? PARLEY_ERR_ROOM_INVALID : rules_room(room);
        if (e != PARLEY_OK) {
            gw_http_respond_error(h, e, 400, NULL);
            return;
        }
        snprintf(r.room, sizeof r.room, "%s", room);
    }
    const char *user = gw_route_arg(&args, "user", &too_long);
    if (user && (too_long || gw_rest_user_id(user, r.user, sizeof r.user))) {
        gw_http_respond_error(h, PARLEY_ERR_AUTHOR_INVALID, 400,
                              "the user id in the path is empty, too long or "
                              "badly escaped");
        return;
    }
    const char *seq = gw_route_arg(&args, "seq", &too_long);
    if (seq && (too_long || gw_route_u64(seq, &r.seq) < 0)) {
        gw_http_respond_error(h, PARLEY_ERR_MALFORMED, 400,
                              "seq must be a decimal number");
        return;
    }

    /* The gateway checks the token itself before any upstream call. */
    auth_identity who;
    parley_err ae = bearer ? auth_verify(s->auth, bearer, gw_now_s(), &who)
                           : PARLEY_ERR_UNAUTHENTICATED;
    if (ae != PARLEY_OK) {
        gw_http_respond_error(h, ae, 401,
                              !bearer ? "Authorization: Bearer <token> required"
                              : ae == PARLEY_ERR_TOKEN_EXPIRED
                                  ? "the token has expired; renew it"
                                  : "token invalid or expired");
        return;
    }
    r.token = bearer;
    if (strncasecmp(r.token, "Bearer ", 7) == 0) r.token += 7;
    ((rest_handler)rest_routes[i].handler)(&r);
}
