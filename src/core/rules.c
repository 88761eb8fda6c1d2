/* rules.c: the core's input rules (room names, author identity, client
 * message ids, message bodies, who may change a message). Pure functions
 * without state; the store calls them before it touches the database, so a
 * refused input never changes anything. */
#include "rules.h"

#include <assert.h>
#include <string.h>

/* Decodes one strictly well-formed UTF-8 sequence at s[i..len) (Unicode
 * table 3-7: no overlongs, no surrogates, nothing above U+10FFFF, no
 * truncation). Returns its length and stores the code point, or 0 if the
 * bytes are not well-formed. NUL is refused as well. */
static size_t utf8_next(const unsigned char *s, size_t i, size_t len,
                        unsigned *cp)
{
    unsigned c = s[i];
    size_t n;
    unsigned lo = 0x80, hi = 0xBF, v;

    if (c == 0) return 0;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        v = c & 0x0F;
        if (c == 0xE0)
            lo = 0xA0; /* overlong below U+0800 */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates U+D800..DFFF */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        v = c & 0x07;
        if (c == 0xF0)
            lo = 0x90; /* overlong below U+10000 */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        return 0; /* continuation byte, C0/C1 overlong lead, F5..FF */
    }
    if (len - i < n) return 0; /* truncated */
    for (size_t k = 1; k < n; k++) {
        unsigned b = s[i + k];
        if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return 0;
        v = (v << 6) | (b & 0x3F);
    }
    assert(n >= 2 && n <= 4 && v <= 0x10FFFF);
    *cp = v;
    return n;
}

int rules_utf8_valid(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    unsigned cp;

    if (len > 0 && s == NULL) return 0;
    while (i < len) {
        /* Fast path over plain ASCII. */
        if (u[i] != 0 && u[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = utf8_next(u, i, len, &cp);
        if (n == 0) return 0;
        i += n;
    }
    return 1;
}

/* White space a body may not consist of only: ASCII white space, the
 * Unicode White_Space characters, and the common invisible spacers
 * (zero width space, word joiner, byte order mark). */
static int rules_is_space(unsigned cp)
{
    switch (cp) {
    case 0x09:
    case 0x0A:
    case 0x0B:
    case 0x0C:
    case 0x0D:
    case 0x20:
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x200B:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x2060:
    case 0x3000:
    case 0xFEFF: return 1;
    default: return cp >= 0x2000 && cp <= 0x200A;
    }
}

/* C0 controls, DEL and C1 controls. */
static int rules_is_control(unsigned cp)
{
    return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F);
}

/* The bidirectional formatting characters that open or close a run:
 * embeddings and overrides (LRE RLE LRO RLO, closed by PDF) and isolates
 * (LRI RLI FSI, closed by PDI). +1 opens, -1 closes, 0 is neither; *iso
 * says which kind. The marks LRM, RLM and ALM change no run and are not
 * among them. */
static int rules_bidi(unsigned cp, int *iso)
{
    *iso = cp >= 0x2066;
    switch (cp) {
    case 0x202A: /* LRE */
    case 0x202B: /* RLE */
    case 0x202D: /* LRO */
    case 0x202E: /* RLO */
    case 0x2066: /* LRI */
    case 0x2067: /* RLI */
    case 0x2068: /* FSI */ return 1;
    case 0x202C: /* PDF */
    case 0x2069: /* PDI */ return -1;
    default: return 0;
    }
}

parley_err rules_room(const char *room)
{
    size_t len;

    if (room == NULL) return PARLEY_ERR_ROOM_INVALID;
    len = strnlen(room, RULES_ROOM_MAX + 1);
    if (len == 0 || len > RULES_ROOM_MAX) return PARLEY_ERR_ROOM_INVALID;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)room[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-')
            continue;
        return rules_utf8_valid(room, len) ? PARLEY_ERR_ROOM_INVALID
                                           : PARLEY_ERR_INVALID_UTF8;
    }
    return PARLEY_OK;
}

parley_err rules_client_msg_id(const char *id)
{
    size_t len;

    if (id == NULL) return PARLEY_ERR_CLIENT_MSG_ID_INVALID;
    len = strnlen(id, RULES_CLIENT_MSG_ID_MAX + 1);
    if (len == 0 || len > RULES_CLIENT_MSG_ID_MAX)
        return PARLEY_ERR_CLIENT_MSG_ID_INVALID;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)id[i];
        if (c > 0x20 && c < 0x7F) continue; /* printable, no space */
        return rules_utf8_valid(id, len) ? PARLEY_ERR_CLIENT_MSG_ID_INVALID
                                         : PARLEY_ERR_INVALID_UTF8;
    }
    return PARLEY_OK;
}

/* 1..max bytes of valid UTF-8 without control characters or bidi
 * embedding, override and isolate controls: a name is shown inside other
 * text, and "\u202Eevil" would turn what follows it around. */
static int rules_name_ok(const char *s, size_t max)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t len, i = 0;
    unsigned cp;
    int iso;

    if (s == NULL) return 0;
    len = strnlen(s, max + 1);
    if (len == 0 || len > max) return 0;
    while (i < len) {
        size_t n = utf8_next(u, i, len, &cp);
        if (n == 0 || rules_is_control(cp) || rules_bidi(cp, &iso) != 0)
            return 0;
        i += n;
    }
    return 1;
}

parley_err rules_author(const parley_author *a)
{
    if (a == NULL) return PARLEY_ERR_AUTHOR_INVALID;
    if (!rules_name_ok(a->id, RULES_AUTHOR_ID_MAX))
        return PARLEY_ERR_AUTHOR_INVALID;
    if (!rules_name_ok(a->display_name, RULES_DISPLAY_NAME_MAX))
        return PARLEY_ERR_AUTHOR_INVALID;
    if (a->role != PARLEY_ROLE_PARTICIPANT && a->role != PARLEY_ROLE_ORGANIZER)
        return PARLEY_ERR_AUTHOR_INVALID;
    return PARLEY_OK;
}

parley_err rules_user_id(const char *id)
{
    return rules_name_ok(id, RULES_AUTHOR_ID_MAX) ? PARLEY_OK
                                                  : PARLEY_ERR_AUTHOR_INVALID;
}

parley_err rules_text(const char *s, size_t max, int multiline)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t len, i = 0;
    unsigned cp;

    if (s == NULL) return PARLEY_OK; /* absent: nothing to check */
    len = strnlen(s, max + 1);
    if (len > max) return PARLEY_ERR_MALFORMED;
    while (i < len) {
        size_t n = utf8_next(u, i, len, &cp);
        if (n == 0) return PARLEY_ERR_INVALID_UTF8;
        if (rules_is_control(cp) && !(multiline && cp == '\n'))
            return PARLEY_ERR_INVALID_UTF8;
        i += n;
    }
    return PARLEY_OK;
}

parley_err rules_body(const char *body, size_t len, size_t max_bytes)
{
    const unsigned char *u = (const unsigned char *)body;
    size_t i = 0;
    int blank = 1, iso;
    unsigned cp;
    /* open embeddings/overrides and isolates, each at most
     * RULES_BIDI_DEPTH_MAX deep */
    int depth[2] = {0, 0};

    if (max_bytes == 0) max_bytes = RULES_BODY_MAX_DEFAULT;
    if (len == 0 || body == NULL) return PARLEY_ERR_BODY_EMPTY;
    if (len > max_bytes) return PARLEY_ERR_BODY_TOO_LONG;
    while (i < len) {
        /* Printable ASCII, most of any chat: no control, no bidi, and
         * nothing but the space is white space. */
        if (u[i] >= 0x20 && u[i] < 0x7F) {
            if (u[i] != ' ') blank = 0;
            i++;
            continue;
        }
        size_t n = utf8_next(u, i, len, &cp);
        if (n == 0) return PARLEY_ERR_INVALID_UTF8;
        if (rules_is_control(cp) && cp != '\t' && cp != '\n' && cp != '\r')
            return PARLEY_ERR_INVALID_UTF8;
        int b = rules_bidi(cp, &iso);
        if (b != 0) {
            depth[iso] += b;
            if (depth[iso] < 0 || depth[iso] > RULES_BIDI_DEPTH_MAX)
                return PARLEY_ERR_INVALID_UTF8;
        }
        if (blank && !rules_is_space(cp)) blank = 0;
        i += n;
    }
    if (depth[0] != 0 || depth[1] != 0) return PARLEY_ERR_INVALID_UTF8;
    return blank ? PARLEY_ERR_BODY_EMPTY : PARLEY_OK;
}

parley_err rules_may_modify(const parley_author *actor, const char *author_id)
{
    parley_err e = rules_author(actor);

    if (e != PARLEY_OK) return e;
    if (actor->role == PARLEY_ROLE_ORGANIZER) return PARLEY_OK;
    if (author_id != NULL && strcmp(actor->id, author_id) == 0)
        return PARLEY_OK;
    return PARLEY_ERR_PERMISSION_DENIED;
}
