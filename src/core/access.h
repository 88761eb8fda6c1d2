/* access.h: who may do what in which room. The one place parley decides
 * access, whatever path a request took (gRPC from a backend service, the
 * gateway's WebSocket sessions and REST, all of which end in the core's
 * calls): from what the caller's token grants, the room's visibility and
 * mode, and the caller's stored standing in the room (membership, mute,
 * removal). Pure functions without state; docs/api.md ("Access") has the
 * model and why.
 *
 * Grants. A token's `rooms` claim maps room patterns to roles:
 * {"event-42.*": "organizer", "event-7.*": "participant", "lobby":
 * "participant"}. A pattern is a room name, or a prefix of one followed by
 * `*` (a lone `*` matches every room). The most specific pattern that
 * matches a room decides the role: an exact name before any prefix, a
 * longer prefix before a shorter one. A token without the claim keeps the
 * meaning tokens had before rooms had rules: its `role` claim holds in
 * every room. */
#ifndef PARLEY_ACCESS_H
#define PARLEY_ACCESS_H

#include <stdint.h>
#include "errors.h"
#include "model.h"
#include "rules.h"

/* Patterns a token may list, and their length (a room name, or a prefix of
 * at most RULES_ROOM_MAX - 1 bytes and '*'). */
#define ACCESS_GRANTS_MAX 32
#define ACCESS_PATTERN_MAX RULES_ROOM_MAX

typedef struct access_grant {
    char pattern[ACCESS_PATTERN_MAX + 1];
    int role; /* PARLEY_ROLE_* */
} access_grant;

typedef struct access_grants {
    int present; /* the token had a `rooms` claim (even an empty one) */
    unsigned n;
    access_grant g[ACCESS_GRANTS_MAX];
} access_grants;

struct json_t;
/* Reads a `rooms` claim: a JSON object of at most ACCESS_GRANTS_MAX
 * pattern: role members, each pattern valid (access_pattern_valid) and
 * each role "organizer" or "participant". PARLEY_OK or
 * PARLEY_ERR_UNAUTHENTICATED (out is then empty). */
parley_err access_grants_parse(const struct json_t *rooms, access_grants *out);
/* 1 if p is a room name, or a prefix of one (possibly empty) and '*'. */
int access_pattern_valid(const char *p);
/* The role the most specific matching pattern gives in room; 0 for none. */
int access_grants_role(const access_grants *g, const char *room);

/* Who asks: what their token says about the room. */
typedef struct access_who {
    int token_role; /* the token's role in this room; 0 for none */
    int service;    /* a service credential: reads every room, writes none */
} access_who;

/* What the caller wants to do. */
typedef enum access_op {
    ACCESS_READ,     /* read history, subscribe, see the room */
    ACCESS_POST,     /* publish */
    ACCESS_EDIT,     /* edit a message (own: written by the caller) */
    ACCESS_DELETE,   /* delete a message */
    ACCESS_MODERATE, /* settings, members, mute, remove, erase */
    ACCESS_CREATE    /* create the room (room NULL: it does not exist) */
} access_op;

/* 1 while the standing's mute (removal) holds at now_ms. */
int access_muted(const parley_standing *st, int64_t now_ms);
int access_removed(const parley_standing *st, int64_t now_ms);

/* The caller's role in the room: the higher of the token's and the
 * membership's (st may be NULL: none). */
int access_role(const access_who *who, const parley_standing *st);

/* Decides op: PARLEY_RULE_NONE when allowed, else the rule that refuses it
 * (the caller answers PERMISSION_DENIED with it). room is NULL only for
 * ACCESS_CREATE; st NULL means no stored standing. own tells, for EDIT and
 * DELETE, that the message is the caller's.
 *
 *   read:     some role (token or membership); not removed; in a members
 *             room, a member or an organizer.
 *   post:     read, and: the room not closed; organizers only in
 *             announcements; not muted. Organizers are never muted or
 *             removed (they outrank the sanction).
 *   edit:     post's rules; another's message: organizers only.
 *   delete:   read; another's message: organizers only. Closed rooms and
 *             mutes do not stop deletions.
 *   moderate: organizers of the room.
 *   create:   the token's role in the name is organizer. */
parley_rule access_decide(const access_who *who, const parley_room *room,
                          const parley_standing *st, access_op op, int own,
                          int64_t now_ms);

/* The caller's own view of a room (parley.v1.RoomAccess). */
typedef struct access_view {
    int role;
    int member;
    int can_post;
    parley_rule post_rule; /* why not, when can_post is 0 */
    int muted;
    int64_t muted_until_ms;
    uint64_t last_read_seq, last_read_rev; /* from the standing */
    unsigned unread; /* not decided here: the caller counts it */
} access_view;
void access_view_of(const access_who *who, const parley_room *room,
                    const parley_standing *st, int64_t now_ms,
                    access_view *out);

#endif
