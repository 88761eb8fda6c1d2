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

typedef struct parley_room {
    const char *name;
    uint64_t head_seq;
    uint64_t head_rev;
} parley_room;

#endif
