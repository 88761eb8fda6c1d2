/* rules.h: the input rules of the core, checked before anything is stored:
 * room names, author identity, client message ids, body text, permissions.
 * Each violation has its own error code. Pure functions, no state. */
#ifndef PARLEY_RULES_H
#define PARLEY_RULES_H

#include <stddef.h>
#include "errors.h"
#include "model.h"

#define RULES_ROOM_MAX 64
#define RULES_CLIENT_MSG_ID_MAX 64
#define RULES_AUTHOR_ID_MAX 128
#define RULES_DISPLAY_NAME_MAX 128
#define RULES_BODY_MAX_DEFAULT 4096
#define RULES_LIST_LIMIT_DEFAULT 50
#define RULES_LIST_LIMIT_MAX 1000

/* 1 if s[0..len) is well-formed UTF-8 (no overlongs, no surrogates, nothing
 * above U+10FFFF) without NUL bytes. */
int rules_utf8_valid(const char *s, size_t len);

/* [A-Za-z0-9._-], 1..RULES_ROOM_MAX bytes. */
parley_err rules_room(const char *room);
parley_err rules_client_msg_id(const char *id);
parley_err rules_author(const parley_author *a);
/* UTF-8, not only white space, at most max_bytes bytes. */
parley_err rules_body(const char *body, size_t len, size_t max_bytes);
/* May actor change a message written by author_id? */
parley_err rules_may_modify(const parley_author *actor, const char *author_id);

#endif
