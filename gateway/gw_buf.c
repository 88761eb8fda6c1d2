/* gw_buf.c: refcounted frame buffers (one encoding shared by every socket
 * that sends it, LWS_PRE headroom included once) and the weak handles that
 * pending upstream calls hold on sessions and subscriptions. Used only on the
 * lws thread, so counts are plain integers. */
#include "gw.h"
#include "gw_json.h"

#include <stdlib.h>
#include <string.h>

gw_buf *gw_buf_new(size_t len, int binary)
{
    gw_buf *b = malloc(sizeof *b + LWS_PRE + len + 1);
    if (!b)
        return NULL;
    b->refs = 1;
    b->binary = binary;
    b->len = len;
    return b;
}

gw_buf *gw_buf_ref(gw_buf *b)
{
    b->refs++;
    return b;
}

void gw_buf_unref(gw_buf *b)
{
    if (b && --b->refs == 0)
        free(b);
}

gw_buf *gw_buf_encode(const ProtobufCMessage *m, int json)
{
    if (json) {
        size_t len;
        char *s = gw_json_encode(m, &len);
        if (!s)
            return NULL;
        gw_buf *b = gw_buf_new(len, 0);
        if (b)
            memcpy(b->data + LWS_PRE, s, len);
        free(s);
        return b;
    }
    size_t len = protobuf_c_message_get_packed_size(m);
    gw_buf *b = gw_buf_new(len, 1);
    if (b)
        protobuf_c_message_pack(m, b->data + LWS_PRE);
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
    if (h && --h->refs == 0)
        free(h);
}
