/* ring.c: the bounded growable FIFO (see ring.h). The array keeps a power
 * of two slots (or max, when max is not one and the array reached it), so
 * the oldest item sits at `head` and the i-th at (head + i) % cap. */
#include "ring.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

static void ring_check(const ring *r)
{
    assert(r->item_size > 0 && r->max > 0);
    assert(r->len <= r->cap && r->cap <= r->max);
    assert(r->cap == 0 || r->head < r->cap);
    assert((r->cap == 0) == (r->items == NULL));
}

void ring_init(ring *r, size_t item_size, size_t max)
{
    assert(item_size > 0 && max > 0);
    memset(r, 0, sizeof *r);
    r->item_size = item_size;
    r->max = max;
}

void ring_raise_max(ring *r, size_t max)
{
    assert(max >= r->max);
    r->max = max;
    ring_check(r);
}

void ring_free(ring *r)
{
    free(r->items);
    r->items = NULL;
    r->cap = r->head = r->len = 0;
}

static unsigned char *ring_slot(const ring *r, size_t i)
{
    return r->items + ((r->head + i) % r->cap) * r->item_size;
}

/* Moves the items into a larger array, oldest first at slot 0. */
static int ring_grow(ring *r)
{
    size_t cap = r->cap ? r->cap * 2 : RING_FIRST_CAP;
    if (cap > r->max || cap < r->cap) cap = r->max;
    if (cap > (size_t)-1 / r->item_size) return -1;
    unsigned char *items = malloc(cap * r->item_size);
    if (items == NULL) return -1;
    for (size_t i = 0; i < r->len; i++)
        memcpy(items + i * r->item_size, ring_slot(r, i), r->item_size);
    free(r->items);
    r->items = items;
    r->cap = cap;
    r->head = 0;
    return 0;
}

int ring_push(ring *r, const void *item)
{
    ring_check(r);
    if (r->len >= r->max) return -1;
    if (r->len == r->cap && ring_grow(r) != 0) return -1;
    memcpy(ring_slot(r, r->len), item, r->item_size);
    r->len++;
    ring_check(r);
    return 0;
}

int ring_pop(ring *r, void *out)
{
    ring_check(r);
    if (r->len == 0) return -1;
    if (out) memcpy(out, ring_slot(r, 0), r->item_size);
    r->head = (r->head + 1) % r->cap;
    r->len--;
    return 0;
}

void *ring_at(const ring *r, size_t i)
{
    ring_check(r);
    return i < r->len ? ring_slot(r, i) : NULL;
}
