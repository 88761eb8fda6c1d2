/* gw_session.h: the parley.v1 frames of one WebSocket connection
 * (gw_session.c): the gw_conn_handlers the connections report to. */
#ifndef GW_SESSION_H
#define GW_SESSION_H

#include "gw.h"

extern const gw_conn_handlers gw_session_handlers;

#endif
