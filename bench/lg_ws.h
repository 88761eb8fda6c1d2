/* lg_ws.h: the load generator's WebSocket client connection on a plain
 * non-blocking socket: connect from a chosen source address, the HTTP/1.1
 * upgrade, masked client frames, server frame parsing with reassembly of
 * fragmented messages, automatic pong for pings. No TLS, no extensions.
 * The event loop (loadgen.c) owns epoll; this module only moves bytes. */
#ifndef PARLEY_BENCH_LG_WS_H
#define PARLEY_BENCH_LG_WS_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

enum lg_ws_state {
    LG_WS_IDLE = 0,   /* no socket */
    LG_WS_CONNECTING, /* TCP connect in progress */
    LG_WS_UPGRADING,  /* request sent, waiting for 101 */
    LG_WS_OPEN,
    LG_WS_CLOSED /* peer closed, error, or local close */
};

/* LG_WS_OPENED is not a wire opcode: lg_ws_read passes it to the message
 * callback once, when the upgrade succeeded, before any frame. */
enum {
    LG_WS_OPENED = 256,
    LG_WS_TEXT = 1,
    LG_WS_BINARY = 2,
    LG_WS_CLOSE = 8,
    LG_WS_PING = 9,
    LG_WS_PONG = 10
};

typedef struct lg_buf {
    uint8_t *p;
    size_t len, off, cap;
} lg_buf;

typedef struct lg_ws {
    int fd;
    int state;
    int close_code; /* from a close frame, 0 if none */
    int err;        /* errno of the failure, 0 if none */
    uint32_t mask_seed;
    lg_buf rx;   /* raw bytes read, not yet parsed */
    lg_buf tx;   /* bytes to write */
    lg_buf frag; /* a fragmented message being reassembled */
    int frag_opcode;
} lg_ws;

/* Called for every complete data message (text or binary). Return nonzero to
 * stop reading (the connection is then closed by the caller). */
typedef int (*lg_ws_msg_fn)(void *ud, int opcode, const uint8_t *data,
                            size_t len);

int lg_buf_reserve(lg_buf *b, size_t extra);
int lg_buf_append(lg_buf *b, const void *p, size_t n);
void lg_buf_consume(lg_buf *b, size_t n);
void lg_buf_free(lg_buf *b);

/* Starts a non-blocking connect from src (port 0) to dst and queues the
 * upgrade request. Returns 0 or -errno. */
int lg_ws_connect(lg_ws *w, const struct sockaddr_in *src,
                  const struct sockaddr_in *dst, const char *host_hdr,
                  const char *path, const char *subprotocol);
/* Queues one masked frame. Returns 0 or -ENOMEM. */
int lg_ws_send(lg_ws *w, int opcode, const void *data, size_t len);
/* Writes what is queued. 0 when all written or EAGAIN, -errno on error. */
int lg_ws_flush(lg_ws *w);
/* Reads until EAGAIN and dispatches complete messages to fn. Returns 0 while
 * the connection lives, -1 once it is closed or failed (state CLOSED). */
int lg_ws_read(lg_ws *w, lg_ws_msg_fn fn, void *ud);
/* Closes the socket (no close frame: an abrupt drop) and frees buffers. */
void lg_ws_drop(lg_ws *w);
/* True if bytes are waiting to be written. */
int lg_ws_pending(const lg_ws *w);

#endif
