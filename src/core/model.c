/* model.c: the names of the model's enumerations (see model.h): roles,
 * visibilities and modes as tokens, settings and REST spell them. */
#include "model.h"

#include <string.h>

const char *parley_role_name(int role)
{
    switch (role) {
    case PARLEY_ROLE_ORGANIZER: return "organizer";
    case PARLEY_ROLE_PARTICIPANT: return "participant";
    default: return NULL;
    }
}

int parley_role_parse(const char *name)
{
    if (name == NULL) return 0;
    if (strcmp(name, "organizer") == 0) return PARLEY_ROLE_ORGANIZER;
    if (strcmp(name, "participant") == 0) return PARLEY_ROLE_PARTICIPANT;
    return 0;
}

const char *parley_visibility_name(int v)
{
    switch (v) {
    case PARLEY_VIS_OPEN: return "open";
    case PARLEY_VIS_MEMBERS: return "members";
    default: return NULL;
    }
}

int parley_visibility_parse(const char *name)
{
    if (name == NULL) return 0;
    if (strcmp(name, "open") == 0) return PARLEY_VIS_OPEN;
    if (strcmp(name, "members") == 0) return PARLEY_VIS_MEMBERS;
    return 0;
}

const char *parley_mode_name(int m)
{
    switch (m) {
    case PARLEY_MODE_OPEN: return "open";
    case PARLEY_MODE_ANNOUNCEMENTS: return "announcements";
    case PARLEY_MODE_CLOSED: return "closed";
    default: return NULL;
    }
}

int parley_mode_parse(const char *name)
{
    if (name == NULL) return 0;
    if (strcmp(name, "open") == 0) return PARLEY_MODE_OPEN;
    if (strcmp(name, "announcements") == 0) return PARLEY_MODE_ANNOUNCEMENTS;
    if (strcmp(name, "closed") == 0) return PARLEY_MODE_CLOSED;
    return 0;
}
