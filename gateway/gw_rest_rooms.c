/* gw_rest_rooms.c: the REST routes of room management and moderation,
 * each one call of the Rooms service (or History.ListRooms) upstream with
 * the user's bearer token as `authorization`, so the core decides every
 * one of them as that user (gw_rest.c has the message routes). The gateway
 * checks the token first (401 without a call). Bodies are the proto3 JSON
 * of the request messages, whose path fields (room, user) come from the
 * path whatever the body says; answers are the proto3 JSON of the
 * responses. A refusal is the core's: 403 {"code":"PERMISSION_DENIED",
 * "rule":"ORGANIZER_ONLY","detail":"..."}.
 *
 *   GET    /v1/rooms?after=NAME&limit=N&prefix=P     History.ListRooms
 *   PATCH  /v1/rooms/{room}       UpdateRoomRequest  Rooms.UpdateRoom
 *   DELETE /v1/rooms/{room}                          Rooms.DeleteRoom
 *   GET    /v1/rooms/{room}/members?after=ID&limit=N Rooms.ListMembers
 *   POST   /v1/rooms/{room}/members {"userId","role"} Rooms.AddMember
 *   DELETE /v1/rooms/{room}/members/{user}           Rooms.RemoveMember
 *   POST   /v1/rooms/{room}/moderation {"userId","action","durationMs",
 *          "reason"}                                  Rooms.Moderate
 *   GET    /v1/rooms/{room}/actions?after=ID&limit=N Rooms.ListActions
 *   POST   /v1/rooms/{room}/read {"seq","rev"}       Rooms.MarkRead
 *   POST   /v1/users/{user}/erase {"room": ""}       Rooms.EraseUser */
#include "gw.h"
#include "gw_json.h"
#include "parley/v1/history.grpc.h"
#include "parley/v1/rooms.grpc.h"
#include "rules.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A call whose answer is the whole response. */
static void rooms_call(gw_http *h, const rpc_method_desc *m,
                       const ProtobufCMessage *req, const char *token)
{
    gw_rest_call(h, m, req, token, NULL);
}

#define ROOMS_M(name) (&parley_v1_Rooms_service.methods[PARLEY_V1_ROOMS_##name])

/* A decimal number of at most max, from query argument name; 1 if absent,
 * 0 if read, -1 (answered 400 BAD_CURSOR) if bad. */
static int query_u64(gw_http *h, const char *name, uint64_t max, uint64_t *out)
{
    char buf[64];
    const char *v =
        lws_get_urlarg_by_name(gw_http_wsi(h), name, buf, (int)sizeof buf);
    if (!v) return 1;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (!*v || *v < '0' || *v > '9' || errno || *end || x > max) {
        char detail[96];
        snprintf(detail, sizeof detail, "%.*s must be a decimal number",
                 (int)strcspn(name, "="), name);
        gw_http_respond_error(h, PARLEY_ERR_BAD_CURSOR, 400, detail);
        return -1;
    }
    *out = x;
    return 0;
}

/* The body decoded as desc's message; NULL after answering 400. */
static ProtobufCMessage *body_as(gw_http *h,
                                 const ProtobufCMessageDescriptor *desc,
                                 const char *body, size_t len)
{
    ProtobufCMessage *m = NULL;
    char detail[200] = "";
    /* An empty body is an empty message (every field at its default). */
    parley_err e = gw_json_decode(desc, len ? body : "{}", len ? len : 2, &m,
                                  detail, sizeof detail);
    if (e != PARLEY_OK) {
        gw_http_respond_error(h, e, 400, detail);
        return NULL;
    }
    return m;
}

int gw_rest_user_id(const char *raw, char *out, size_t cap)
{
    size_t o = 0;
    if (!*raw) return -1;
    for (size_t i = 0; raw[i]; i++) {
        if (o + 1 >= cap) return -1;
        if (raw[i] == '%') {
            unsigned v;
            if (!raw[i + 1] || !raw[i + 2] ||
                sscanf(raw + i + 1, "%2x", &v) != 1)
                return -1;
            if (v == 0) return -1; /* a NUL cuts nothing here */
            out[o++] = (char)v;
            i += 2;
        } else {
            out[o++] = raw[i];
        }
    }
    out[o] = '\0';
    return 0;
}

void gw_rest_rooms(gw_http *h, gw_rooms_route r, const char *room,
                   const char *user, const char *body, size_t body_len,
                   const char *token)
{
    ProtobufCMessage *m = NULL;
    uint64_t v = 0;
    int q;
    switch (r) {
    case GW_RR_LIST_ROOMS: {
        Parley__V1__ListRoomsRequest req = PARLEY__V1__LIST_ROOMS_REQUEST__INIT;
        char after[RULES_ROOM_MAX + 2], prefix[RULES_ROOM_MAX + 2];
        struct lws *wsi = gw_http_wsi(h);
        const char *a =
            lws_get_urlarg_by_name(wsi, "after=", after, (int)sizeof after);
        const char *pr =
            lws_get_urlarg_by_name(wsi, "prefix=", prefix, (int)sizeof prefix);
        if ((q = query_u64(h, "limit=", UINT32_MAX, &v)) < 0) return;
        req.after_name = (char *)(a ? a : "");
        req.prefix = (char *)(pr ? pr : "");
        req.limit = q == 0 ? (uint32_t)v : 0;
        rooms_call(
            h, &parley_v1_History_service.methods[PARLEY_V1_HISTORY_LIST_ROOMS],
            &req.base, token);
        return;
    }
    case GW_RR_UPDATE_ROOM: {
        if (!(m = body_as(h, &parley__v1__update_room_request__descriptor, body,
                          body_len)))
            return;
        Parley__V1__UpdateRoomRequest *req = (Parley__V1__UpdateRoomRequest *)m;
        char *keep = req->name;
        req->name = (char *)room;
        rooms_call(h, ROOMS_M(UPDATE_ROOM), m, token);
        req->name = keep;
        break;
    }
    case GW_RR_DELETE_ROOM: {
        Parley__V1__DeleteRoomRequest req =
            PARLEY__V1__DELETE_ROOM_REQUEST__INIT;
        req.name = (char *)room;
        rooms_call(h, ROOMS_M(DELETE_ROOM), &req.base, token);
        return;
    }
    case GW_RR_LIST_MEMBERS: {
        Parley__V1__ListMembersRequest req =
            PARLEY__V1__LIST_MEMBERS_REQUEST__INIT;
        char after[RULES_AUTHOR_ID_MAX + 2];
        const char *a = lws_get_urlarg_by_name(gw_http_wsi(h), "after=", after,
                                               (int)sizeof after);
        if ((q = query_u64(h, "limit=", UINT32_MAX, &v)) < 0) return;
        req.room = (char *)room;
        req.after_user_id = (char *)(a ? a : "");
        req.limit = q == 0 ? (uint32_t)v : 0;
        rooms_call(h, ROOMS_M(LIST_MEMBERS), &req.base, token);
        return;
    }
    case GW_RR_ADD_MEMBER: {
        if (!(m = body_as(h, &parley__v1__add_member_request__descriptor, body,
                          body_len)))
            return;
        Parley__V1__AddMemberRequest *req = (Parley__V1__AddMemberRequest *)m;
        char *keep = req->room;
        req->room = (char *)room;
        rooms_call(h, ROOMS_M(ADD_MEMBER), m, token);
        req->room = keep;
        break;
    }
    case GW_RR_REMOVE_MEMBER: {
        Parley__V1__RemoveMemberRequest req =
            PARLEY__V1__REMOVE_MEMBER_REQUEST__INIT;
        req.room = (char *)room;
        req.user_id = (char *)user;
        rooms_call(h, ROOMS_M(REMOVE_MEMBER), &req.base, token);
        return;
    }
    case GW_RR_MODERATE: {
        if (!(m = body_as(h, &parley__v1__moderate_request__descriptor, body,
                          body_len)))
            return;
        Parley__V1__ModerateRequest *req = (Parley__V1__ModerateRequest *)m;
        char *keep = req->room;
        req->room = (char *)room;
        rooms_call(h, ROOMS_M(MODERATE), m, token);
        req->room = keep;
        break;
    }
    case GW_RR_LIST_ACTIONS: {
        Parley__V1__ListActionsRequest req =
            PARLEY__V1__LIST_ACTIONS_REQUEST__INIT;
        uint64_t after = 0;
        if ((q = query_u64(h, "after=", UINT64_MAX, &after)) < 0) return;
        if ((q = query_u64(h, "limit=", UINT32_MAX, &v)) < 0) return;
        req.room = (char *)room;
        req.after_id = after;
        req.limit = q == 0 ? (uint32_t)v : 0;
        rooms_call(h, ROOMS_M(LIST_ACTIONS), &req.base, token);
        return;
    }
    case GW_RR_MARK_READ: {
        if (!(m = body_as(h, &parley__v1__mark_read_request__descriptor, body,
                          body_len)))
            return;
        Parley__V1__MarkReadRequest *req = (Parley__V1__MarkReadRequest *)m;
        char *keep = req->room;
        req->room = (char *)room;
        rooms_call(h, ROOMS_M(MARK_READ), m, token);
        req->room = keep;
        break;
    }
    case GW_RR_ERASE_USER: {
        if (!(m = body_as(h, &parley__v1__erase_user_request__descriptor, body,
                          body_len)))
            return;
        Parley__V1__EraseUserRequest *req = (Parley__V1__EraseUserRequest *)m;
        char *keep = req->user_id;
        req->user_id = (char *)user;
        rooms_call(h, ROOMS_M(ERASE_USER), m, token);
        req->user_id = keep;
        break;
    }
    }
    if (m) protobuf_c_message_free_unpacked(m, NULL);
}
