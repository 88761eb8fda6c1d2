/* bus.h: live events between cores, on NATS (core NATS, the C client
 * nats.c). A core publishes each committed change of a room once, already
 * encoded, on the room's subject; it watches (subscribes to) the rooms its
 * own subscribers watch. Core NATS delivers at most once: a message may be
 * lost while a link is down or a consumer is slow, so the bus only carries
 * events fast; the store stays the truth and the caller (server/srv_bus.c)
 * fills any gap from it. This module knows nothing of the store, of gRPC or
 * of the event's encoding: it moves (room, rev, bytes).
 *
 * Threads. bus_* calls are made from one thread, the caller's loop. They
 * never wait on the network: publishes, watches and unwatches go through
 * a queue to the bus's own worker thread, which talks to nats.c (a publish
 * can block on a full socket, a subscription is confirmed with a ping
 * round trip). What arrives (nats.c's delivery thread, the worker) waits in
 * an inbound queue until the loop calls bus_poll, which runs the callbacks
 * on the loop; the first item queued after a bus_poll calls opts.wake once,
 * so a burst costs the loop one wake-up, not one per message.
 *
 * Subjects: PREFIX "." ROOM with every '.' of the room written as '~'. A
 * room name is [A-Za-z0-9._-]{1,64} (core/rules.h), so the room is one
 * token of the subject, never a wildcard, and the mapping is injective
 * ('~' never occurs in a room name): "team.a" -> "parley.room.team~a".
 *
 * Payload: one version byte (1), the rev as 8 bytes big-endian, then the
 * caller's bytes. */
#ifndef PARLEY_BUS_H
#define PARLEY_BUS_H

#include <stddef.h>
#include <stdint.h>

typedef struct bus bus;
typedef struct bus_sub bus_sub;

#define BUS_PREFIX_DEFAULT "parley.room"
#define BUS_PREFIX_MAX 100
/* Longest subject: prefix, '.', a room of 64 bytes. */
#define BUS_SUBJECT_MAX (BUS_PREFIX_MAX + 1 + 64)

typedef struct bus_cbs {
    /* A change of room at rev arrived from another core; bytes are the
     * publisher's, valid during the call. */
    void (*on_event)(void *ud, const char *room, uint64_t rev,
                     const uint8_t *bytes, size_t len);
    /* The NATS server confirmed the subscription bus_watch asked for:
     * every publish to the room from now on reaches this core (while the
     * link holds). What was published before may have been missed. */
    void (*on_watching)(void *ud, const char *room);
    /* The link went down (up = 0): events may be missed from now on. Or it
     * is back (up = 1) with every watch re-established at the server:
     * whatever was published meanwhile was missed. */
    void (*on_link)(void *ud, int up);
    /* Events may have been dropped while the link held (this core fell
     * behind: nats.c's slow-consumer limit or the inbound queue bound). */
    void (*on_loss)(void *ud);
} bus_cbs;

typedef struct bus_opts {
    const char *servers; /* "nats://h1:4222,nats://h2:4222" (one or more) */
    const char *prefix;  /* subject prefix; NULL or "": BUS_PREFIX_DEFAULT */
    const char *name;    /* connection name the NATS server shows; or NULL */
    /* Called from a bus thread when the inbound queue turns non-empty: the
     * loop should call bus_poll soon. NULL: the loop polls on its own. */
    void (*wake)(void *wake_ud);
    void *wake_ud;
    /* Tests only: drop this many of every 1000 events received, silently,
     * as a lost message would be (0: none). */
    unsigned test_drop_per_mille;
} bus_opts;

typedef struct bus_stats {
    uint64_t published;      /* handed to nats.c */
    uint64_t publish_failed; /* refused by nats.c, link down, queue full */
    uint64_t received;       /* events handed to on_event */
    uint64_t dropped;        /* received but dropped (test drops, bounds) */
    uint64_t reconnects;     /* times the link came back */
    int connected;           /* 1 while the link is up */
} bus_stats;

/* Connects (in the background: a bus whose servers are down starts
 * anyway and connects when they come up, reporting on_link(1)). NULL with
 * err on a bad option or out of memory. cbs and ud are kept. */
bus *bus_new(const bus_opts *opts, const bus_cbs *cbs, void *ud, char *err,
             size_t errlen);
/* Stops the worker, closes the connection, frees everything (loop).
 * Every watch must have been unwatched. */
void bus_free(bus *b);
/* Releases nats.c's process-wide threads and memory; once, at exit, after
 * the last bus_free (the process's own call: the library is shared). */
void bus_library_close(void);

/* Publishes one change of room (rev > 0): copied, then sent by the worker.
 * -1 if it cannot be queued (the queue is over its bound, or the link is
 * down: nobody would get it; the store has it anyway). */
int bus_publish(bus *b, const char *room, uint64_t rev, const void *bytes,
                size_t len);
/* Starts watching room; on_watching follows once the server confirmed.
 * NULL out of memory. At most one watch per room is the caller's rule. */
bus_sub *bus_watch(bus *b, const char *room);
/* Stops a watch (the handle is gone after this call). */
void bus_unwatch(bus *b, bus_sub *s);

/* Runs the callbacks for everything that arrived since the last call, on
 * the calling (loop) thread. Returns how many items it handled. */
size_t bus_poll(bus *b);

int bus_connected(const bus *b);
void bus_get_stats(const bus *b, bus_stats *out);

/* The subject of room under prefix, into out (BUS_SUBJECT_MAX + 1). -1
 * if prefix or room is not valid (room: core/rules.h; prefix: non-empty
 * tokens of [A-Za-z0-9_-], at most BUS_PREFIX_MAX bytes). */
int bus_subject(const char *prefix, const char *room, char *out, size_t outlen);
/* The inverse: the room of subject under prefix; -1 if it is none. */
int bus_subject_room(const char *prefix, const char *subject, char *room,
                     size_t roomlen);

#endif
