/* gw_rooms.h: the gateway's rooms (gw_rooms.c): one upstream subscription
 * per room however many connections watch it, a ring of its recent events
 * with a tail per subscriber, replay (ring or History), live fan-out. */
#ifndef GW_ROOMS_H
#define GW_ROOMS_H

#include "gw.h"

parley_err gw_rooms_new(gw_server *s);
/* Every room and subscription goes (shutdown). */
void gw_rooms_free(gw_server *s);
size_t gw_rooms_count(const gw_server *s);

/* Subscribe{room, resume_after_rev} from connection c, answered with
 * request_id; token is the user's (History paging runs as the user). */
void gw_rooms_subscribe(gw_server *s, gw_conn *c, uint64_t request_id,
                        const Parley__V1__Subscribe *req, const char *token);
void gw_rooms_unsubscribe(gw_server *s, gw_conn *c, uint64_t request_id,
                          const char *room);
/* Drops every subscription of c (it is closing). */
void gw_rooms_conn_gone(gw_server *s, gw_conn *c);

/* gw_up_handlers for the links: an event for some room, a link gone. */
void gw_rooms_on_event(gw_server *s, gw_link *l, Parley__V1__ServerFrame *f,
                       gw_buf *bytes);
void gw_rooms_on_link_down(gw_server *s, gw_link *l);
/* A room event, presence or typing of l's: sent to the room's
 * connections (typing: but the typist's); a room event that may take
 * reading away has them checked again (gw_rooms.c). */
void gw_rooms_on_room_frame(gw_server *s, gw_link *l,
                            Parley__V1__ServerFrame *f);
/* Typing from c's user in room: passed to the core (which rates it and
 * checks the right to post) with the user's token. */
void gw_rooms_typing(gw_server *s, gw_conn *c, const char *room,
                     const char *token);

/* The link a publish to room rides: the room's own while it has one (its
 * core), else the one gw_up_link picks. NULL if no core is usable. */
gw_link *gw_rooms_link(gw_server *s, const char *room);

/* The event type a stored message stands for (created, edited, deleted). */
Parley__V1__EventType gw_event_type_of(const Parley__V1__Message *m);

#endif
