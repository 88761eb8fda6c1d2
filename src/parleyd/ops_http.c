/* ops_http.c: the operations HTTP listener (see ops_http.h): one lws
 * context with one vhost and one HTTP protocol, served by its own thread
 * until ops_http_stop. Each answer is built whole when the request
 * arrives and written from the writable callback, the way the gateway's
 * gw_http.c does. */
#include "ops_http.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include "log.h"

struct ops_http {
    ops_http_opts o;
    struct lws_context *ctx;
    pthread_t thread;
    atomic_int stop;
    int port;
    char host[128];
};

/* One HTTP transaction's answer (lws per-session data). */
typedef struct ops_req {
    int status;
    const char *ctype;
    unsigned char *body; /* LWS_PRE + len */
    size_t len;
    int headers_sent, have;
} ops_req;

static void req_reset(ops_req *r)
{
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* Takes text (malloc'd) as the body. */
static int req_answer(struct lws *wsi, ops_req *r, int status,
                      const char *ctype, char *text, size_t len)
{
    req_reset(r);
    r->body = malloc(LWS_PRE + len + 1);
    if (!r->body) {
        free(text);
        return -1;
    }
    memcpy(r->body + LWS_PRE, text, len);
    free(text);
    r->len = len;
    r->status = status;
    r->ctype = ctype;
    r->have = 1;
    lws_callback_on_writable(wsi);
    return 0;
}

static int req_text(struct lws *wsi, ops_req *r, int status, const char *s)
{
    char *t = strdup(s);
    return t ? req_answer(wsi, r, status, "text/plain; charset=utf-8", t,
                          strlen(t))
             : -1;
}

static int route(struct lws *wsi, ops_req *r, const char *path)
{
    ops_http *h = lws_context_user(lws_get_context(wsi));
    int get = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0;
    int head = lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI) > 0;
    int known = !strcmp(path, "/metrics") || !strcmp(path, "/healthz");
    if (!known) return req_text(wsi, r, 404, "not found\n");
    if (!get && !head) return req_text(wsi, r, 405, "only GET\n");
    if (!strcmp(path, "/healthz")) {
        int ok = h->o.serving ? h->o.serving(h->o.ud) : 1;
        return req_text(wsi, r, ok ? 200 : 503, ok ? "ok\n" : "not serving\n");
    }
    size_t len = 0;
    char *text = metrics_render(h->o.reg, &len);
    if (!text) return req_text(wsi, r, 500, "out of memory\n");
    return req_answer(wsi, r, 200, "text/plain; version=0.0.4; charset=utf-8",
                      text, len);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason,
                    void *user, void *in, size_t len)
{
    ops_req *r = user;
    switch (reason) {
    case LWS_CALLBACK_HTTP:
        if (!r) return -1;
        return route(wsi, r, (const char *)in) ? -1 : 0;

    case LWS_CALLBACK_HTTP_BODY: /* ignored: only GET is served */
    case LWS_CALLBACK_HTTP_BODY_COMPLETION: return 0;

    case LWS_CALLBACK_HTTP_WRITEABLE: {
        if (!r || !r->have) return 0;
        if (!r->headers_sent) {
            unsigned char hb[LWS_PRE + 512];
            unsigned char *start = hb + LWS_PRE, *p = start,
                          *end = hb + sizeof hb - 1;
            if (lws_add_http_common_headers(wsi, (unsigned)r->status, r->ctype,
                                            r->len, &p, end) ||
                lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
                                             (const unsigned char *)"no-store",
                                             8, &p, end) ||
                lws_finalize_write_http_header(wsi, start, &p, end))
                return -1;
            r->headers_sent = 1;
            int head = lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI) > 0;
            if (r->len > 0 && !head) {
                lws_callback_on_writable(wsi);
                return 0;
            }
        } else if (lws_write(wsi, r->body + LWS_PRE, r->len,
                             LWS_WRITE_HTTP_FINAL) < (int)r->len) {
            return -1;
        }
        req_reset(r);
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    }

    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        if (r) req_reset(r);
        return 0;

    default: break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols protocols[] = {
    {"http", callback, sizeof(ops_req), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0}};

/* lws's own complaints go to the log as warnings. */
static void lws_to_log(int level, const char *line)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", line);
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) buf[--n] = 0;
    log_event(level & LLL_ERR ? LOG_ERROR : LOG_WARN, "http", NULL, "lws: %s",
              buf);
}

static void *serve(void *arg)
{
    ops_http *h = arg;
    while (!atomic_load(&h->stop))
        if (lws_service(h->ctx, 0) < 0) break;
    return NULL;
}

ops_http *ops_http_start(const ops_http_opts *o, char *err, size_t errlen)
{
    ops_http *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->o = *o;
    const char *colon = strrchr(o->listen, ':');
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || colon == o->listen || !*(colon + 1) || *end || port < 0 ||
        port > 65535 || (size_t)(colon - o->listen) >= sizeof h->host) {
        snprintf(err, errlen, "--metrics-listen wants HOST:PORT, not \"%s\"",
                 o->listen);
        free(h);
        return NULL;
    }
    memcpy(h->host, o->listen, (size_t)(colon - o->listen));
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_to_log);

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = (int)port;
    info.iface = h->host;
    info.protocols = protocols;
    info.user = h;
    info.vhost_name = "parleyd-ops";
    info.server_string = "parleyd";
    info.timeout_secs = 10;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
    h->ctx = lws_create_context(&info);
    if (!h->ctx) {
        snprintf(err, errlen, "cannot listen on %s (in use or bad address)",
                 o->listen);
        free(h);
        return NULL;
    }
    struct lws_vhost *vh = lws_get_vhost_by_name(h->ctx, "parleyd-ops");
    h->port = vh ? lws_get_vhost_listen_port(vh) : (int)port;
    if (pthread_create(&h->thread, NULL, serve, h) != 0) {
        snprintf(err, errlen, "cannot start the metrics thread");
        lws_context_destroy(h->ctx);
        free(h);
        return NULL;
    }
    return h;
}

int ops_http_port(const ops_http *h) { return h->port; }

void ops_http_stop(ops_http *h)
{
    if (!h) return;
    atomic_store(&h->stop, 1);
    lws_cancel_service(h->ctx);
    pthread_join(h->thread, NULL);
    lws_context_destroy(h->ctx);
    free(h);
}
