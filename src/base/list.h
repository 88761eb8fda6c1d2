/* list.h: an intrusive doubly-linked list (in the manner of lws_dll2).
 * A struct that can be on a list embeds a list_node; the list owns no
 * memory, so adding and removing never fail and never allocate.
 *
 * Each node knows the list it is on (`owner`), which gives removal without
 * the list at hand and a checkable invariant: a node is on at most one list,
 * and is only removed from the one it is on. A zeroed list is empty and a
 * zeroed node is on none, so calloc'd structs need no init. Not thread-safe. */
#ifndef PARLEY_LIST_H
#define PARLEY_LIST_H

#include <assert.h>
#include <stddef.h>

typedef struct list list;

typedef struct list_node {
    struct list_node *prev, *next;
    list *owner; /* NULL when on no list */
} list_node;

struct list {
    list_node *first, *last;
    size_t len;
};

/* The struct holding node, from its embedded member. */
#define list_entry(node, type, member) \
    ((type *)((char *)(node)-offsetof(type, member)))

/* Walks l from first to last; the body may remove `node` (and only it). */
#define list_for_each(l, node, next_node)                                     \
    for (list_node *node = (l)->first, *next_node = node ? node->next : NULL; \
         node != NULL; node = next_node, next_node = node ? node->next : NULL)

static inline int list_node_is_linked(const list_node *n)
{
    return n->owner != NULL;
}

static inline void list_push_front(list *l, list_node *n)
{
    assert(n->owner == NULL);
    n->owner = l;
    n->prev = NULL;
    n->next = l->first;
    if (l->first)
        l->first->prev = n;
    else
        l->last = n;
    l->first = n;
    l->len++;
}

static inline void list_push_back(list *l, list_node *n)
{
    assert(n->owner == NULL);
    n->owner = l;
    n->next = NULL;
    n->prev = l->last;
    if (l->last)
        l->last->next = n;
    else
        l->first = n;
    l->last = n;
    l->len++;
}

/* Takes n off the list it is on; n must be on one. */
static inline void list_remove(list_node *n)
{
    list *l = n->owner;
    assert(l != NULL && l->len > 0);
    if (n->prev)
        n->prev->next = n->next;
    else
        l->first = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        l->last = n->prev;
    n->prev = n->next = NULL;
    n->owner = NULL;
    l->len--;
    assert((l->len == 0) == (l->first == NULL && l->last == NULL));
}

/* Removes and returns the first node, or NULL when l is empty. */
static inline list_node *list_pop_front(list *l)
{
    list_node *n = l->first;
    if (n) list_remove(n);
    return n;
}

#endif
