/* text.c: growable text buffers and the string pool (see text.h). */
#include "text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void text_init(text_buf *b)
{
    b->p = NULL;
    b->len = b->cap = 0;
    b->oom = 0;
}

void text_free(text_buf *b)
{
    free(b->p);
    text_init(b);
}

static int text_reserve(text_buf *b, size_t extra)
{
    if (b->oom) return 0;
    if (b->len + extra + 1 <= b->cap) return 1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) {
        if (cap > (size_t)-1 / 2) {
            b->oom = 1;
            return 0;
        }
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return 0;
    }
    b->p = p;
    b->cap = cap;
    return 1;
}

void text_puts(text_buf *b, const char *s)
{
    size_t n = strlen(s);
    if (!text_reserve(b, n)) return;
    memcpy(b->p + b->len, s, n + 1);
    b->len += n;
}

void text_putc(text_buf *b, char c)
{
    if (!text_reserve(b, 1)) return;
    b->p[b->len++] = c;
    b->p[b->len] = '\0';
}

static void text_vprintf(text_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        b->oom = 1;
        return;
    }
    if (!text_reserve(b, (size_t)n)) return;
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void text_printf(text_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    text_vprintf(b, fmt, ap);
    va_end(ap);
}

char *text_take(text_buf *b)
{
    if (b->oom) {
        text_free(b);
        return NULL;
    }
    char *p = b->p ? b->p : strdup("");
    text_init(b);
    return p;
}

void text_pool_init(text_pool *p)
{
    p->items = NULL;
    p->n = p->cap = 0;
    p->oom = 0;
}

void text_pool_free(text_pool *p)
{
    for (size_t i = 0; i < p->n; i++) free(p->items[i]);
    free(p->items);
    text_pool_init(p);
}

void *text_pool_own(text_pool *p, void *ptr)
{
    if (!ptr) {
        p->oom = 1;
        return NULL;
    }
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        void **items = realloc(p->items, cap * sizeof *items);
        if (!items) {
            free(ptr);
            p->oom = 1;
            return NULL;
        }
        p->items = items;
        p->cap = cap;
    }
    p->items[p->n++] = ptr;
    return ptr;
}

char *text_pool_strdup(text_pool *p, const char *s)
{
    return text_pool_own(p, strdup(s ? s : ""));
}

char *text_pool_printf(text_pool *p, const char *fmt, ...)
{
    text_buf b;
    text_init(&b);
    va_list ap;
    va_start(ap, fmt);
    text_vprintf(&b, fmt, ap);
    va_end(ap);
    return text_pool_own(p, text_take(&b));
}
