/* lg_ws.c: WebSocket client connection on a plain non-blocking socket (see
 * lg_ws.h). RFC 6455 framing: client frames are masked, server frames are
 * not; control frames may arrive between fragments of a data message. */
#include "lg_ws.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LG_WS_MAX_MSG (16u << 20)

int lg_buf_reserve(lg_buf *b, size_t extra)
{
    if (b->off && b->off == b->len) b->off = b->len = 0;
    if (b->len + extra <= b->cap) return 0;
    if (b->off) {
        memmove(b->p, b->p + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        if (b->len + extra <= b->cap) return 0;
    }
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + extra) cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p) return -ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

int lg_buf_append(lg_buf *b, const void *p, size_t n)
{
    if (lg_buf_reserve(b, n)) return -ENOMEM;
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

void lg_buf_consume(lg_buf *b, size_t n)
{
    b->off += n;
    if (b->off >= b->len) b->off = b->len = 0;
}

void lg_buf_free(lg_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

int lg_ws_connect(lg_ws *w, const struct sockaddr_in *src,
                  const struct sockaddr_in *dst, const char *host_hdr,
                  const char *path, const char *subprotocol)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (src) {
        /* Let connect() pick the port so (src, port, dst) stays unique. */
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(fd, (const struct sockaddr *)src, sizeof *src) < 0) {
            int e = errno;
            close(fd);
            return -e;
        }
    }
    if (connect(fd, (const struct sockaddr *)dst, sizeof *dst) < 0 &&
        errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        return -e;
    }
    w->fd = fd;
    w->state = LG_WS_CONNECTING;
    w->close_code = 0;
    w->err = 0;
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\n"
                     "Host: %s\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n"
                     "Origin: http://%s\r\n"
                     "%s%s%s"
                     "\r\n",
                     path, host_hdr, host_hdr,
                     subprotocol ? "Sec-WebSocket-Protocol: " : "",
                     subprotocol ? subprotocol : "", subprotocol ? "\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof req) return -EINVAL;
    return lg_buf_append(&w->tx, req, (size_t)n);
}

static uint32_t lg_ws_next_mask(lg_ws *w)
{
    uint32_t x = w->mask_seed ? w->mask_seed : 0x9e3779b9u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    w->mask_seed = x;
    return x;
}

int lg_ws_send(lg_ws *w, int opcode, const void *data, size_t len)
{
    if (lg_buf_reserve(&w->tx, len + 14)) return -ENOMEM;
    uint8_t *p = w->tx.p + w->tx.len;
    size_t h = 0;
    p[h++] = (uint8_t)(0x80 | opcode);
    if (len < 126) {
        p[h++] = (uint8_t)(0x80 | len);
    } else if (len <= 0xffff) {
        p[h++] = 0x80 | 126;
        p[h++] = (uint8_t)(len >> 8);
        p[h++] = (uint8_t)len;
    } else {
        p[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            p[h++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    uint32_t m = lg_ws_next_mask(w);
    uint8_t mk[4] = {(uint8_t)(m >> 24), (uint8_t)(m >> 16), (uint8_t)(m >> 8),
                     (uint8_t)m};
    memcpy(p + h, mk, 4);
    h += 4;
    const uint8_t *s = data;
    for (size_t i = 0; i < len; i++) p[h + i] = s[i] ^ mk[i & 3];
    w->tx.len += h + len;
    return 0;
}

int lg_ws_pending(const lg_ws *w) { return w->tx.len > w->tx.off; }

int lg_ws_flush(lg_ws *w)
{
    if (w->fd < 0) return -EBADF;
    if (w->state == LG_WS_CONNECTING) {
        int err = 0;
        socklen_t sl = sizeof err;
        if (getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0) err = errno;
        if (err == EINPROGRESS || err == EALREADY) return 0;
        if (err) {
            w->err = err;
            w->state = LG_WS_CLOSED;
            return -err;
        }
        w->state = LG_WS_UPGRADING;
    }
    while (w->tx.len > w->tx.off) {
        ssize_t n = send(w->fd, w->tx.p + w->tx.off, w->tx.len - w->tx.off,
                         MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            if (errno == EINTR) continue;
            if (errno == ENOTCONN) return 0; /* connect still in progress */
            w->err = errno;
            w->state = LG_WS_CLOSED;
            return -w->err;
        }
        lg_buf_consume(&w->tx, (size_t)n);
    }
    return 0;
}

/* Parses the 101 answer. 1 when done, 0 when more bytes are needed, -1 bad. */
static int lg_ws_parse_upgrade(lg_ws *w)
{
    const char *s = (const char *)w->rx.p + w->rx.off;
    size_t n = w->rx.len - w->rx.off;
    const char *end = memmem(s, n, "\r\n\r\n", 4);
    if (!end) return n > 8192 ? -1 : 0;
    if (n < 12 || memcmp(s, "HTTP/1.1 101", 12) != 0) {
        int status = 0;
        sscanf(s, "HTTP/1.%*d %d", &status);
        w->close_code = status; /* an HTTP refusal: 400, 403, 503 ... */
        return -1;
    }
    lg_buf_consume(&w->rx, (size_t)(end + 4 - s));
    w->state = LG_WS_OPEN;
    return 1;
}

/* Parses complete frames in rx. 0 to go on, -1 to close. */
static int lg_ws_parse_frames(lg_ws *w, lg_ws_msg_fn fn, void *ud)
{
    for (;;) {
        const uint8_t *p = w->rx.p + w->rx.off;
        size_t n = w->rx.len - w->rx.off;
        if (n < 2) return 0;
        int fin = p[0] & 0x80;
        int op = p[0] & 0x0f;
        int masked = p[1] & 0x80;
        uint64_t len = p[1] & 0x7f;
        size_t h = 2;
        if (len == 126) {
            if (n < 4) return 0;
            len = ((uint64_t)p[2] << 8) | p[3];
            h = 4;
        } else if (len == 127) {
            if (n < 10) return 0;
            len = 0;
            for (int i = 0; i < 8; i++) len = (len << 8) | p[2 + i];
            h = 10;
        }
        if (len > LG_WS_MAX_MSG) return -1;
        uint8_t mk[4] = {0, 0, 0, 0};
        if (masked) {
            if (n < h + 4) return 0;
            memcpy(mk, p + h, 4);
            h += 4;
        }
        if (n < h + len) {
            if (lg_buf_reserve(&w->rx, h + len - n)) return -1;
            return 0;
        }
        uint8_t *d = w->rx.p + w->rx.off + h;
        if (masked)
            for (uint64_t i = 0; i < len; i++) d[i] ^= mk[i & 3];
        int rc = 0;
        if (op == LG_WS_PING) {
            rc = lg_ws_send(w, LG_WS_PONG, d, (size_t)len);
        } else if (op == LG_WS_CLOSE) {
            w->close_code = len >= 2 ? (d[0] << 8) | d[1] : 1005;
            rc = -1;
        } else if (op == LG_WS_PONG) {
            /* nothing */
        } else if (op == 0 || !fin) {
            if (op != 0) {
                w->frag.len = w->frag.off = 0;
                w->frag_opcode = op;
            }
            if (lg_buf_append(&w->frag, d, (size_t)len) ||
                w->frag.len > LG_WS_MAX_MSG)
                rc = -1;
            else if (fin) {
                rc = fn(ud, w->frag_opcode, w->frag.p, w->frag.len);
                w->frag.len = w->frag.off = 0;
            }
        } else {
            rc = fn(ud, op, d, (size_t)len);
        }
        if (w->state == LG_WS_CLOSED || w->fd < 0) return -1;
        lg_buf_consume(&w->rx, h + (size_t)len);
        if (rc) return -1;
    }
}

int lg_ws_read(lg_ws *w, lg_ws_msg_fn fn, void *ud)
{
    if (w->fd < 0 || w->state == LG_WS_CLOSED) return -1;
    for (;;) {
        if (lg_buf_reserve(&w->rx, 16384)) goto fail;
        ssize_t n = recv(w->fd, w->rx.p + w->rx.len, w->rx.cap - w->rx.len, 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            if (errno == EINTR) continue;
            w->err = errno;
            goto fail;
        }
        if (n == 0) goto fail;
        size_t asked = w->rx.cap - (w->rx.len);
        w->rx.len += (size_t)n;
        if (w->state == LG_WS_UPGRADING || w->state == LG_WS_CONNECTING) {
            w->state = LG_WS_UPGRADING;
            int u = lg_ws_parse_upgrade(w);
            if (u < 0) goto fail;
            if (u == 0) continue;
            if (fn(ud, LG_WS_OPENED, NULL, 0)) goto fail;
            if (w->fd < 0) return -1;
        }
        if (lg_ws_parse_frames(w, fn, ud) < 0) goto fail;
        /* Edge-triggered: a short read drained the socket; new data will
         * raise a new edge, so skip the recv that would say EAGAIN. */
        if ((size_t)n < asked) break;
    }
    if (lg_ws_pending(w) && lg_ws_flush(w) < 0) goto fail;
    return 0;
fail:
    w->state = LG_WS_CLOSED;
    return -1;
}

void lg_ws_drop(lg_ws *w)
{
    if (w->fd >= 0) close(w->fd);
    w->fd = -1;
    w->state = LG_WS_IDLE;
    lg_buf_free(&w->rx);
    lg_buf_free(&w->tx);
    lg_buf_free(&w->frag);
}
