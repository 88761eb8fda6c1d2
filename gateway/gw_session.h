/* gw_session.h: the parley.v1 frames of one WebSocket connection
 * (gw_session.c): the gw_conn_handlers the connections report to. */
#ifndef GW_SESSION_H
#define GW_SESSION_H

#include "gw.h"

extern const gw_conn_handlers gw_session_handlers;

/* The token and user id of c's session (its latest authenticate), NULL
 * before one: the rooms check access as that user with them. */
const char *gw_session_token(const gw_conn *c);
const char *gw_session_user(const gw_conn *c);
/* SessionOptions.presence / .typing: the session asked for those frames. */
int gw_session_wants_presence(const gw_conn *c);
int gw_session_wants_typing(const gw_conn *c);

#endif
