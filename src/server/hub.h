/* hub.h: room fan-out. Maps room names to the subscriptions watching them
 * (a hash table of rooms, each with its own subscriber list), so a publish
 * touches only its room. An event frame is encoded once by the caller and
 * the same refcounted slice is queued to every live subscriber. Runs on the
 * loop thread only. */
#ifndef PARLEY_HUB_H
#define PARLEY_HUB_H

#include <stddef.h>
#include <stdint.h>
#include <grpc/slice.h>
#include "list.h"
#include "rpc.h"

typedef struct hub hub;
typedef struct hub_room hub_room;

/* One stream's subscription to one room; embedded by its owner. A
 * subscription that is not live (still replaying) is skipped by
 * hub_publish. */
typedef struct hub_sub {
    rpc_call *call;
    int live;
    unsigned wants; /* HUB_WANT_*: the optional frames it asked for */
    uint64_t rev;   /* hub_publish_rev: changes up to here were sent */
    list_node link; /* on its room's list while added */
} hub_sub;

hub *hub_new(void);
/* All subscriptions must have been removed. */
void hub_free(hub *h);

/* Attaches s (call and live set by the caller; not attached yet) to room.
 * -1 on OOM. */
int hub_add(hub *h, const char *room, hub_sub *s);
/* Detaches s; a no-op when it is not attached. */
void hub_remove(hub *h, hub_sub *s);

/* 1 if some live subscription watches room (worth encoding an event). */
int hub_has_live(const hub *h, const char *room);
/* Queues frame to every live subscriber of room; a subscriber whose queue
 * is full is cancelled by rpc (slow consumer) and the others go on. Returns
 * the number of subscribers that took the frame. */
size_t hub_publish(hub *h, const char *room, grpc_slice frame);
/* Optional frames a subscriber asks for (SessionOptions). */
enum { HUB_WANT_PRESENCE = 1, HUB_WANT_TYPING = 2 };
/* hub_publish to the live subscribers whose wants include want. */
size_t hub_publish_to(hub *h, const char *room, grpc_slice frame,
                      unsigned want);
/* The same for the change rev of room, to the live subscribers that were
 * not sent it yet (s->rev < rev), whose rev then moves to it: with several
 * cores (srv_bus.c) a subscriber may turn live past what the room has
 * delivered. */
size_t hub_publish_rev(hub *h, const char *room, uint64_t rev,
                       grpc_slice frame);

size_t hub_room_count(const hub *h);
/* Subscriptions attached, live or replaying. */
size_t hub_sub_count(const hub *h);

#endif
