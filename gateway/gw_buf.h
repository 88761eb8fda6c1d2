/* gw_buf.h: refcounted encoded frames and weak handles (gw_buf.c). */
#ifndef GW_BUF_H
#define GW_BUF_H

#include <stddef.h>
#include <protobuf-c/protobuf-c.h>

/* One encoded ServerFrame (protobuf or JSON), shared by every connection
 * that sends it. Created by either thread, then used by the lws thread
 * only, so refs is a plain integer. */
typedef struct gw_buf {
    int refs;
    size_t len;
    unsigned char data[];
} gw_buf;

gw_buf *gw_buf_new(size_t len);
/* A copy of bytes already encoded (the core's, passed through). */
gw_buf *gw_buf_copy(const void *p, size_t len);
gw_buf *gw_buf_ref(gw_buf *b);
void gw_buf_unref(gw_buf *b);
/* m encoded as protobuf (json == 0) or proto3 JSON; NULL if out of memory. */
gw_buf *gw_buf_encode(const ProtobufCMessage *m, int json);

/* A weak handle: whoever owns p clears it when p dies; pending upstream
 * calls hold a reference and check p before using it. */
typedef struct gw_handle {
    int refs;
    void *p;
} gw_handle;

gw_handle *gw_handle_new(void *p);
gw_handle *gw_handle_ref(gw_handle *h);
void gw_handle_unref(gw_handle *h);

#endif
