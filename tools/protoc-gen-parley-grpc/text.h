/* text.h: growable text buffers and a string pool for the plugin. Every
 * string the generator makes lives in one pool, freed at once at the end, so
 * the generator code need not track ownership. Out of memory is sticky: the
 * first failure marks the buffer or pool, later calls do nothing, and the
 * caller checks the flag once. */
#ifndef PGPG_TEXT_H
#define PGPG_TEXT_H

#include <stddef.h>

typedef struct text_buf {
    char *p; /* NUL-terminated once anything was appended */
    size_t len;
    size_t cap;
    int oom;
} text_buf;

void text_init(text_buf *b);
void text_free(text_buf *b);
void text_puts(text_buf *b, const char *s);
void text_putc(text_buf *b, char c);
void text_printf(text_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Hands the contents (malloc'd, "" if empty) to the caller; b is reset. */
char *text_take(text_buf *b);

typedef struct text_pool {
    void **items;
    size_t n;
    size_t cap;
    int oom;
} text_pool;

void text_pool_init(text_pool *p);
void text_pool_free(text_pool *p);
/* Takes ownership of ptr (freed with the pool); returns ptr, or NULL (and
 * frees ptr) when out of memory. ptr may be NULL (then the pool is marked). */
void *text_pool_own(text_pool *p, void *ptr);
char *text_pool_strdup(text_pool *p, const char *s);
char *text_pool_printf(text_pool *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
