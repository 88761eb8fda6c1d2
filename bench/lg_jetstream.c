/* lg_jetstream.c: JetStream over the NATS protocol on TCP, for the durable
 * publish load (see lg_jetstream.h). One non-blocking socket, poll(2), one
 * subscription for every reply inbox (_INBOX.lgjs.>): publish n answers on
 * _INBOX.lgjs.<n>, so an ack finds its publisher and send time in a table
 * indexed by n. */
#include "lg_jetstream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "lg_nats.h"
#include "lg_ws.h"

int lg_js_is_error(const char *json, size_t n, int *code, char *desc,
                   size_t desc_len)
{
    const char *e = memmem(json, n, "\"error\"", 7);
    *code = 0;
    if (desc_len) desc[0] = '\0';
    if (!e) return 0;
    size_t rest = n - (size_t)(e - json);
    const char *c = memmem(e, rest, "\"err_code\":", 11);
    if (c) *code = atoi(c + 11);
    const char *d = memmem(e, rest, "\"description\":\"", 15);
    if (d && desc_len) {
        d += 15;
        size_t k = 0;
        while (d < json + n && *d != '"' && k + 1 < desc_len) desc[k++] = *d++;
        desc[k] = '\0';
    }
    return 1;
}

uint64_t lg_js_ack_stream_seq(const char *reply, size_t n)
{
    /* $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>
     * (9 tokens), or with <domain>.<account hash> after ACK (12). */
    const char *tok[16];
    size_t len[16], k = 0;
    const char *p = reply, *end = reply + n;
    while (p < end && k < 16) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        const char *te = dot ? dot : end;
        tok[k] = p;
        len[k++] = (size_t)(te - p);
        p = dot ? dot + 1 : end;
    }
    if (k < 9 || len[0] != 3 || memcmp(tok[0], "$JS", 3) != 0) return 0;
    size_t i = k >= 11 ? 7 : 5;
    char num[24];
    if (len[i] == 0 || len[i] >= sizeof num) return 0;
    memcpy(num, tok[i], len[i]);
    num[len[i]] = '\0';
    return strtoull(num, NULL, 10);
}

/* ---- the publish load ---------------------------------------------------- */

typedef struct js_pending {
    uint64_t id; /* 0: free */
    uint64_t t0;
    unsigned pub;
} js_pending;

typedef struct js_conn {
    int fd;
    lg_buf rx, tx;
} js_conn;

static int js_flush(js_conn *c)
{
    while (c->tx.len > c->tx.off) {
        ssize_t w = send(c->fd, c->tx.p + c->tx.off, c->tx.len - c->tx.off,
                         MSG_NOSIGNAL);
        if (w < 0) return errno == EAGAIN || errno == EINTR ? 0 : -1;
        lg_buf_consume(&c->tx, (size_t)w);
    }
    return 0;
}

static int js_send(js_conn *c, const char *s, size_t n)
{
    return lg_buf_append(&c->tx, s, n);
}

/* One message delivered on our inbox: subject and payload. */
typedef void (*js_msg_fn)(void *ud, const char *subj, size_t sn,
                          const char *data, size_t dn);

/* Handles the complete commands in rx; -1 on -ERR or a broken stream. */
static int js_parse(js_conn *c, js_msg_fn fn, void *ud)
{
    lg_nats_cmd m;
    long n;
    while ((n = lg_nats_next(c->rx.p + c->rx.off, c->rx.len - c->rx.off, &m)) >
           0) {
        /* m points into rx: handled before it is consumed. */
        if (m.kind == LG_NATS_MSG) {
            fn(ud, m.subject, m.subject_len, m.payload, m.payload_len);
        } else if (m.kind == LG_NATS_PING) {
            if (js_send(c, "PONG\r\n", 6)) return -1;
        } else if (m.kind == LG_NATS_ERR) {
            fprintf(stderr, "jetstream: %.*s\n", (int)m.line_len, m.line);
            return -1;
        }
        lg_buf_consume(&c->rx, (size_t)n);
    }
    return n < 0 ? -1 : 0;
}

/* Reads what is there (non-blocking); -1 when the peer closed. */
static int js_read(js_conn *c)
{
    for (;;) {
        if (lg_buf_reserve(&c->rx, 65536)) return -1;
        ssize_t r = recv(c->fd, c->rx.p + c->rx.len, c->rx.cap - c->rx.len, 0);
        if (r > 0) {
            c->rx.len += (size_t)r;
            continue;
        }
        if (r == 0) return -1;
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    }
}

typedef struct js_run {
    lg_js_load *l;
    js_conn c;
    js_pending *pend; /* cap entries, by id % cap */
    size_t cap;
    unsigned *inflight; /* per publisher */
    uint64_t next_id, seq;
    int created, create_failed;
} js_run;

static void js_on_msg(void *ud, const char *subj, size_t sn, const char *data,
                      size_t dn)
{
    js_run *r = ud;
    lg_js_load *l = r->l;
    static const char pre[] = "_INBOX.lgjs.";
    if (sn <= sizeof pre - 1 || memcmp(subj, pre, sizeof pre - 1) != 0) return;
    const char *tail = subj + sizeof pre - 1;
    size_t tn = sn - (sizeof pre - 1);
    int code;
    char desc[120];
    if (tn == 6 && memcmp(tail, "create", 6) == 0) {
        if (lg_js_is_error(data, dn, &code, desc, sizeof desc) &&
            code != LG_JS_ERR_STREAM_IN_USE) {
            snprintf(l->last_error, sizeof l->last_error,
                     "stream create: %d %s", code, desc);
            r->create_failed = 1;
        }
        r->created = 1;
        return;
    }
    uint64_t id = strtoull(tail, NULL, 10);
    js_pending *p = &r->pend[id % r->cap];
    if (!id || p->id != id) return; /* not ours, or answered twice */
    p->id = 0;
    r->inflight[p->pub]--;
    if (lg_js_is_error(data, dn, &code, desc, sizeof desc) ||
        !memmem(data, dn, "\"seq\":", 6)) {
        l->failed++;
        snprintf(l->last_error, sizeof l->last_error, "publish: %d %s", code,
                 desc);
        return;
    }
    l->ok++;
    uint64_t now = clock_mono_ns();
    hist_record(l->lat, now > p->t0 ? now - p->t0 : 0);
}

static int js_publish(js_run *r, unsigned pub)
{
    lg_js_load *l = r->l;
    uint64_t id = ++r->next_id;
    js_pending *p = &r->pend[id % r->cap];
    if (p->id) return -1; /* table full: cannot happen with cap >= P * W */
    char body[4096], head[256];
    size_t n =
        (size_t)snprintf(body, sizeof body, "lg %" PRIu64 " %u %" PRIu64 " ",
                         clock_mono_ns(), pub, r->seq++);
    while (n < l->body_size && n < sizeof body - 1) body[n++] = 'x';
    int h = snprintf(head, sizeof head,
                     "PUB " LG_JS_SUBJECT_PREFIX "%s _INBOX.lgjs.%" PRIu64
                     " %zu\r\n",
                     l->room, id, n);
    if (js_send(&r->c, head, (size_t)h) || js_send(&r->c, body, n) ||
        js_send(&r->c, "\r\n", 2))
        return -1;
    p->id = id;
    p->t0 = clock_mono_ns();
    p->pub = pub;
    r->inflight[pub]++;
    return 0;
}

static int js_connect(js_run *r)
{
    lg_js_load *l = r->l;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)l->port);
    if (inet_pton(AF_INET, l->host, &a.sin_addr) != 1) return -1;
    r->c.fd = socket(AF_INET, SOCK_STREAM, 0);
    if (r->c.fd < 0 || connect(r->c.fd, (struct sockaddr *)&a, sizeof a) != 0)
        return -1;
    int one = 1;
    setsockopt(r->c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(r->c.fd, F_SETFL, fcntl(r->c.fd, F_GETFL) | O_NONBLOCK);
    static const char hello[] =
        "CONNECT {\"verbose\":false,\"pedantic\":false,\"lang\":\"c\","
        "\"version\":\"0\",\"protocol\":1,\"headers\":false}\r\n"
        "SUB _INBOX.lgjs.> 1\r\n";
    char create[512];
    int n = snprintf(create, sizeof create,
                     "PUB $JS.API.STREAM.CREATE." LG_JS_STREAM
                     " _INBOX.lgjs.create %zu\r\n%s\r\n",
                     strlen(LG_JS_STREAM_CONFIG), LG_JS_STREAM_CONFIG);
    return js_send(&r->c, hello, sizeof hello - 1) ||
                   js_send(&r->c, create, (size_t)n)
               ? -1
               : 0;
}

/* Turns the loop until done(r) or the deadline; -1 if the connection
 * broke. */
static int js_pump(js_run *r, uint64_t deadline, int (*done)(js_run *),
                   int publishing)
{
    lg_js_load *l = r->l;
    while (!done(r) && clock_mono_ns() < deadline) {
        if (publishing && r->created)
            for (unsigned i = 0; i < l->publishers; i++)
                while (r->inflight[i] < l->window)
                    if (js_publish(r, i)) return -1;
        if (js_flush(&r->c)) return -1;
        struct pollfd p = {r->c.fd, POLLIN, 0};
        if (r->c.tx.len > r->c.tx.off) p.events |= POLLOUT;
        if (poll(&p, 1, 10) < 0 && errno != EINTR) return -1;
        if ((p.revents & (POLLIN | POLLHUP | POLLERR)) && js_read(&r->c))
            return -1;
        if (js_parse(&r->c, js_on_msg, r)) return -1;
    }
    return 0;
}

static int js_created(js_run *r) { return r->created; }
static int js_never(js_run *r)
{
    (void)r;
    return 0;
}
static int js_drained(js_run *r)
{
    for (unsigned i = 0; i < r->l->publishers; i++)
        if (r->inflight[i]) return 0;
    return 1;
}

int lg_js_publish_load(lg_js_load *l)
{
    js_run r;
    memset(&r, 0, sizeof r);
    r.l = l;
    r.c.fd = -1;
    r.cap = (size_t)l->publishers * l->window * 2 + 1;
    r.pend = calloc(r.cap, sizeof *r.pend);
    r.inflight = calloc(l->publishers, sizeof *r.inflight);
    int rc = -1;
    if (!r.pend || !r.inflight) {
        snprintf(l->last_error, sizeof l->last_error, "out of memory");
        goto out;
    }
    if (js_connect(&r) != 0) {
        snprintf(l->last_error, sizeof l->last_error, "cannot connect: %s",
                 strerror(errno));
        goto out;
    }
    uint64_t t = clock_mono_ns();
    if (js_pump(&r, t + 10000000000ULL, js_created, 0) || !r.created ||
        r.create_failed) {
        if (!l->last_error[0])
            snprintf(l->last_error, sizeof l->last_error,
                     "no answer to the stream create");
        goto out;
    }
    t = clock_mono_ns();
    if (js_pump(&r, t + (uint64_t)(l->duration * 1e9), js_never, 1) == 0)
        js_pump(&r, clock_mono_ns() + 30000000000ULL, js_drained, 0);
    /* A publish never answered is a failed one. */
    for (unsigned i = 0; i < l->publishers; i++) l->failed += r.inflight[i];
    rc = 0;
out:
    if (r.c.fd >= 0) close(r.c.fd);
    lg_buf_free(&r.c.rx);
    lg_buf_free(&r.c.tx);
    free(r.pend);
    free(r.inflight);
    return rc;
}
