/* gw_buf.c: refcounted encoded frames (one encoding shared by every
 * connection that sends it) and the weak handles that pending upstream
 * calls hold on HTTP requests and subscriptions. */
#include "gw_buf.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "gw_json.h"

gw_buf *gw_buf_new(size_t len)
{
    gw_buf *b = malloc(sizeof *b + len + 1);
    if (!b) return NULL;
    b->refs = 1;
    b->len = len;
    return b;
}

gw_buf *gw_buf_copy(const void *p, size_t len)
{
    gw_buf *b = gw_buf_new(len);
    if (b) memcpy(b->data, p, len);
    return b;
}

gw_buf *gw_buf_ref(gw_buf *b)
{
    assert(b->refs > 0);
    b->refs++;
    return b;
}

void gw_buf_unref(gw_buf *b)
{
    if (!b) return;
    assert(b->refs > 0);
    if (--b->refs == 0) free(b);
}

gw_buf *gw_buf_encode(const ProtobufCMessage *m, int json)
{
    if (json) {
        size_t len;
        char *s = gw_json_encode(m, &len);
        if (!s) return NULL;
        gw_buf *b = gw_buf_copy(s, len);
        free(s);
        return b;
    }
    gw_buf *b = gw_buf_new(protobuf_c_message_get_packed_size(m));
    if (b) protobuf_c_message_pack(m, b->data);
    return b;
}

gw_handle *gw_handle_new(void *p)
{
    gw_handle *h = malloc(sizeof *h);
    if (h) {
        h->refs = 1;
        h->p = p;
    }
    return h;
}

gw_handle *gw_handle_ref(gw_handle *h)
{
    h->refs++;
    return h;
}

void gw_handle_unref(gw_handle *h)
{
    if (h && --h->refs == 0) free(h);
}
