/* ring.h: a bounded FIFO queue of fixed-size items in one growable circular
 * array. It starts empty without memory, doubles its array when full (from
 * RING_FIRST_CAP items up to `max`) and refuses a push beyond `max`: the
 * caller decides what a full queue means (rpc.c cuts a slow stream).
 *
 * The struct is public so that it can be embedded; its fields are private to
 * ring.c. Items are copied in and out by value (memcpy of item_size bytes);
 * the ring never looks inside them, so freeing what they point to stays the
 * caller's job (drain with ring_pop before ring_free). Not thread-safe. */
#ifndef PARLEY_RING_H
#define PARLEY_RING_H

#include <stddef.h>

#define RING_FIRST_CAP 16

typedef struct ring {
    unsigned char *items; /* cap * item_size bytes, NULL until first push */
    size_t item_size;
    size_t cap;  /* slots allocated: 0 or a power of two up to max */
    size_t head; /* slot of the oldest item */
    size_t len;  /* items queued, <= cap */
    size_t max;  /* most items ever queued at once */
} ring;

/* An empty ring of items of item_size bytes (> 0), holding at most max
 * (> 0) of them. Allocates nothing. */
void ring_init(ring *r, size_t item_size, size_t max);
/* Lets the ring hold up to max items from now on (max >= the current
 * max; nothing is allocated until a push needs it). */
void ring_raise_max(ring *r, size_t max);
/* Frees the array (not what the items point to); the ring is empty and
 * usable again afterwards. */
void ring_free(ring *r);

/* Copies item in at the tail. 0, or -1 when the ring holds max items
 * already or the array cannot grow (nothing changes then). */
int ring_push(ring *r, const void *item);
/* Copies the oldest item into out (if not NULL) and removes it. 0, or -1
 * when the ring is empty. */
int ring_pop(ring *r, void *out);
/* The i-th oldest item in place (0 = the head), valid until the next push
 * or pop; NULL when i >= len. */
void *ring_at(const ring *r, size_t i);

static inline size_t ring_len(const ring *r) { return r->len; }
static inline int ring_is_full(const ring *r) { return r->len >= r->max; }
/* How many more pushes fit. */
static inline size_t ring_room(const ring *r) { return r->max - r->len; }

#endif
