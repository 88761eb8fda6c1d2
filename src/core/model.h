/* model.h: the chat model shared by every layer above base/: an author and
 * their role, a stored message and a room's head counters. Plain structs
 * whose strings are borrowed (each producer says for how long they stay
 * valid). The rules (rules.h) say which values are valid; the store
 * (store/store.h) hands them out; the server turns them into parley.v1
 * messages. */
#ifndef PARLEY_MODEL_H
#define PARLEY_MODEL_H

#include <stddef.h>
#include <stdint.h>

/* Roles use the numbers of parley.v1.Role. */
enum { PARLEY_ROLE_PARTICIPANT = 1, PARLEY_ROLE_ORGANIZER = 2 };

/* "organizer" / "participant" (as tokens and the dev endpoints spell
 * them); NULL for a number that is no role. */
const char *parley_role_name(int role);
/* The role of a name; 0 when it names none. */
int parley_role_parse(const char *name);

typedef struct parley_author {
    const char *id;
    const char *display_name;
    int role; /* PARLEY_ROLE_* */
} parley_author;

typedef struct parley_msg {
    const char *room;
    uint64_t seq;
    uint64_t rev;
    const char *client_msg_id;
    parley_author author;
    const char *body;
    size_t body_len;
    int64_t created_at_ms;
    int64_t edited_at_ms;
    int deleted;
} parley_msg;

/* Visibilities and modes use the numbers of parley.v1.Visibility and
 * parley.v1.RoomMode (0, UNSPECIFIED, is read as OPEN). */
enum { PARLEY_VIS_OPEN = 1, PARLEY_VIS_MEMBERS = 2 };
enum {
    PARLEY_MODE_OPEN = 1,
    PARLEY_MODE_ANNOUNCEMENTS = 2,
    PARLEY_MODE_CLOSED = 3
};

/* "open" / "members"; "open" / "announcements" / "closed"; NULL for a
 * number that is none. The parsers return 0 for a name that is none. */
const char *parley_visibility_name(int v);
int parley_visibility_parse(const char *name);
const char *parley_mode_name(int m);
int parley_mode_parse(const char *name);

typedef struct parley_room {
    const char *name;
    uint64_t head_seq;
    uint64_t head_rev;
    const char *title; /* "" when unset */
    const char *topic;
    int visibility; /* PARLEY_VIS_* */
    int mode;       /* PARLEY_MODE_* */
} parley_room;

/* The settings of a room being created or changed. For an update, NULL
 * texts and 0 numbers keep what the room has. */
typedef struct parley_room_settings {
    const char *title;
    const char *topic;
    int visibility;
    int mode;
} parley_room_settings;

/* One user's standing in one room, as stored: a membership and the
 * sanctions organizers placed (whether they still hold at a given time is
 * access.c's to decide). */
typedef struct parley_standing {
    int member_role;        /* PARLEY_ROLE_*, 0: no membership */
    int muted;              /* a mute was placed ... */
    int64_t muted_until_ms; /* ... ending then; 0: until lifted */
    int removed;
    int64_t removed_until_ms;
    uint64_t last_read_seq; /* read state (store_read_mark), 0 if none */
    uint64_t last_read_rev;
} parley_standing;

/* A membership. */
typedef struct parley_member {
    const char *user_id;
    int role;
    const char *added_by;
    int64_t added_at_ms;
} parley_member;

/* Kinds of room actions: the numbers of parley.v1.ActionKind. */
typedef enum parley_action_kind {
    PARLEY_ACTION_MUTE = 1,
    PARLEY_ACTION_UNMUTE = 2,
    PARLEY_ACTION_REMOVE = 3,
    PARLEY_ACTION_READMIT = 4,
    PARLEY_ACTION_SET_MODE = 5,
    PARLEY_ACTION_SET_VISIBILITY = 6,
    PARLEY_ACTION_UPDATE_ROOM = 7,
    PARLEY_ACTION_ADD_MEMBER = 8,
    PARLEY_ACTION_REMOVE_MEMBER = 9,
    PARLEY_ACTION_DELETE_MESSAGE = 10,
    PARLEY_ACTION_ERASE_USER = 11,
    PARLEY_ACTION_DELETE_ROOM = 12
} parley_action_kind;
#define PARLEY_ACTION_KIND_MAX PARLEY_ACTION_DELETE_ROOM

/* One stored room action (parley.v1.ModerationAction). id is assigned by
 * the store, dense from 1 per room. */
typedef struct parley_action {
    uint64_t id;
    const char *room;
    int kind; /* parley_action_kind */
    parley_author actor;
    const char *target_user_id; /* "" when none */
    int64_t at_ms;
    int64_t until_ms;
    const char *reason; /* "" when none */
    int mode, visibility, role;
    uint64_t seq, count;
} parley_action;

#endif
