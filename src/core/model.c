/* model.c: the names of the model's enumerations (see model.h). */
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
