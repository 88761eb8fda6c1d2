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
/* id and display name: 1..128 bytes of UTF-8 without control characters
 * or bidi embedding/override/isolate controls; a known role. */
parley_err rules_author(const parley_author *a);
/* Bidi runs a body may nest (embeddings and isolates, each). */
#define RULES_BIDI_DEPTH_MAX 16

/* At most max_bytes bytes (BODY_TOO_LONG), not only white space
 * (BODY_EMPTY), and INVALID_UTF8 unless all of: well-formed UTF-8; no
 * control character but TAB, LF and CR (no NUL, ESC, DEL, C1); every bidi
 * embedding, override or isolate it opens closed again within the body, so
 * that none can reach the text shown after it (docs/security.md). */
parley_err rules_body(const char *body, size_t len, size_t max_bytes);
/* A user id as tokens carry it in `sub` (1..RULES_AUTHOR_ID_MAX bytes of
 * UTF-8 without control characters): AUTHOR_INVALID if not. */
parley_err rules_user_id(const char *id);
/* A room's title, topic or an organizer's reason: at most max bytes of
 * UTF-8 (empty allowed), without control characters but, when multiline,
 * line feeds. INVALID_UTF8 for bad text, MALFORMED when too long. */
parley_err rules_text(const char *s, size_t max, int multiline);
/* May actor change a message written by author_id? */
parley_err rules_may_modify(const parley_author *actor, const char *author_id);

#endif
