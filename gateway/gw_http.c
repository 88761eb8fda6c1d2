/* gw_http.c: the HTTP side of the one lws context. Routes each request:
 * /healthz, /metrics, the dev token endpoint (--dev only), REST under
 * /v1/rooms (gw_rest.c), and static files from --static (the demo page and
 * the bundles). Answers are written from the writable callback, so REST
 * answers can come later from upstream.
 *
 * Static files are lws's: gw_http_mounts() mounts --static at "/" (lws
 * opens, stats and streams the file, picks its MIME type, answers ETag /
 * If-None-Match, appends index.html to a directory and keeps requests
 * inside the directory), and mounts this protocol's callback at /v1,
 * /healthz and /metrics. lws asks this protocol before serving a file
 * (LWS_CALLBACK_CHECK_ACCESS_RIGHTS: a refused origin, a preflight, a NUL
 * or an over-long target, a method other than GET/HEAD are answered here
 * instead) and while writing its headers (LWS_CALLBACK_ADD_HEADERS: the
 * CORS headers); a file it does not find comes back as LWS_CALLBACK_HTTP
 * and is answered 404. Also checks every WebSocket upgrade
 * before lws accepts it: path /v1/stream, a parley subprotocol offered (else
 * 400), the Origin allow-list (else 403) and the connection limit (else
 * 503).
 *
 * CORS. One allow-list (--origin, plus the gateway's own origin) decides
 * both who may open a WebSocket and which other origins may use HTTP:
 *   - a preflight (OPTIONS with Origin and Access-Control-Request-Method)
 *     from an allowed origin gets 204 with the methods and headers the REST
 *     routes take; from any other origin 403 with a JSON error;
 *   - any other request carrying a disallowed Origin is refused with 403
 *     and a JSON error (code ORIGIN_NOT_ALLOWED) before it is routed; that
 *     refusal is itself readable by the page (it holds nothing but the
 *     reason), so a chat embedded on a wrong origin can say why it is not
 *     working instead of retrying forever;
 *   - every answer to an allowed Origin carries Access-Control-Allow-Origin
 *     with that origin (REST, static bundles, health), and every answer
 *     carries Vary: Origin since it depends on the header.
 * Tokens travel in Authorization, never in cookies: no Allow-Credentials. */
#include "gw.h"

#include <assert.h>
#include <ctype.h>
#include <fnmatch.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GW_HTTP_BODY_MAX (64 * 1024)
/* The longest request target the gateway reads: path and query together,
 * and the path alone (REST paths and static files are short). Longer ones
 * are answered 414. lws holds a request head in GW_HTTP_HEADER_SPACE bytes
 * (gw_main.c); a head larger than that is dropped by lws unanswered. */
#define GW_URL_MAX 8192
#define GW_PATH_MAX 1024
#define GW_ORIGIN_MAX 256
/* How long a browser may reuse a preflight answer; Chromium caps it at 2 h.
 * A later refusal still holds: every request is checked again. */
#define GW_CORS_MAX_AGE "7200"
#define GW_CORS_METHODS "GET, POST, PATCH, DELETE"
#define GW_CORS_HEADERS "authorization, content-type"

/* The request's Origin header, as far as CORS is concerned. */
typedef enum {
    GW_ORIGIN_NONE = 0, /* no Origin header: not a cross-origin browser call */
    GW_ORIGIN_ALLOWED,
    GW_ORIGIN_REFUSED
} gw_origin_verdict;

/* What CORS makes of one request. */
typedef struct gw_cors {
    char origin[GW_ORIGIN_MAX]; /* the Origin header, "" when none */
    gw_origin_verdict verdict;
    int preflight; /* OPTIONS + Origin + A-C-Request-Method */
} gw_cors;

struct gw_http {
    struct lws *wsi;
    gw_server *srv;
    gw_handle *h;
    char method[8];
    char path[GW_PATH_MAX + 1];
    char allow[64]; /* Allow header of a 405, "" when none */
    char *body;
    size_t body_len;
    int body_too_big;
    char *bearer;
    gw_cors cors;
    /* the answer */
    int have_resp;
    int headers_sent;
    int status;
    const char *ctype;
    unsigned char *resp; /* LWS_PRE + len */
    size_t resp_len;
};

static int origin_allowed(gw_server *s, struct lws *wsi, const char *origin);

gw_server *gw_http_server(gw_http *h) { return h->srv; }
gw_handle *gw_http_handle(gw_http *h) { return h->h; }
struct lws *gw_http_wsi(gw_http *h) { return h->wsi; }

static void http_reset(gw_http *h)
{
    free(h->body);
    free(h->resp);
    if (h->bearer) {
        memset(h->bearer, 0, strlen(h->bearer));
        free(h->bearer);
    }
    h->body = NULL;
    h->resp = NULL;
    h->bearer = NULL;
    h->body_len = 0;
    h->body_too_big = 0;
    h->have_resp = 0;
    h->headers_sent = 0;
    h->resp_len = 0;
    h->allow[0] = '\0';
}

void gw_http_set_allow(gw_http *h, const char *methods)
{
    snprintf(h->allow, sizeof h->allow, "%s", methods);
}

void gw_http_respond(gw_http *h, int status, const char *ctype,
                     const char *body, size_t len)
{
    free(h->resp);
    h->resp = malloc(LWS_PRE + len + 1);
    if (!h->resp) {
        len = 0;
        status = 500;
        h->resp = malloc(LWS_PRE + 1);
        if (!h->resp) return;
    } else if (len) {
        memcpy(h->resp + LWS_PRE, body, len);
    }
    h->resp_len = len;
    h->status = status;
    h->ctype = ctype;
    h->have_resp = 1;
    h->headers_sent = 0;
    lws_callback_on_writable(h->wsi);
}

void gw_http_respond_error(gw_http *h, parley_err e, int status,
                           const char *detail)
{
    gw_http_respond_error_rule(h, e, PARLEY_RULE_NONE, status, detail);
}

void gw_http_respond_error_rule(gw_http *h, parley_err e, parley_rule rule,
                                int status, const char *detail)
{
    json_t *j = json_pack("{s:s,s:s}", "code", parley_err_name(e), "detail",
                          detail && *detail ? detail : parley_err_text(e));
    if (j && e == PARLEY_ERR_PERMISSION_DENIED && rule != PARLEY_RULE_NONE)
        json_object_set_new(j, "rule", json_string(parley_rule_name(rule)));
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!status) status = parley_err_http_status(e);
    gw_http_respond(h, status, "application/json", s ? s : "{}",
                    s ? strlen(s) : 2);
    free(s);
}

static void respond_text(gw_http *h, int status, const char *text)
{
    gw_http_respond(h, status, "text/plain; charset=utf-8", text, strlen(text));
}

static void respond_json_error_name(gw_http *h, int status, const char *code,
                                    const char *detail)
{
    json_t *j = json_pack("{s:s,s:s}", "code", code, "detail", detail);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    gw_http_respond(h, status, "application/json", s ? s : "{}",
                    s ? strlen(s) : 2);
    free(s);
}

/* ---- CORS ---- */

/* An Origin is echoed back only if it is plain printable ASCII (as every
 * real origin is), so no header can be forged through it. */
static int origin_printable(const char *o)
{
    for (; *o; o++)
        if (*o < 0x21 || *o > 0x7e) return 0;
    return 1;
}

/* Reads a request's Origin and classifies it. */
static void cors_read(gw_cors *c, gw_server *s, struct lws *wsi,
                      const char *method)
{
    c->origin[0] = '\0';
    c->verdict = GW_ORIGIN_NONE;
    c->preflight = 0;
    if (lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) <= 0) return;
    if (lws_hdr_copy(wsi, c->origin, sizeof c->origin, WSI_TOKEN_ORIGIN) < 0 ||
        !origin_printable(c->origin)) {
        c->origin[0] = '\0'; /* refused, and never echoed */
        c->verdict = GW_ORIGIN_REFUSED;
    } else {
        c->verdict = origin_allowed(s, wsi, c->origin) ? GW_ORIGIN_ALLOWED
                                                       : GW_ORIGIN_REFUSED;
    }
    c->preflight =
        strcmp(method, "OPTIONS") == 0 &&
        lws_hdr_custom_length(wsi, "access-control-request-method:", 30) > 0;
}

static int add_header(struct lws *wsi, const char *name, const char *value,
                      unsigned char **p, unsigned char *end)
{
    return lws_add_http_header_by_name(wsi, (const unsigned char *)name,
                                       (const unsigned char *)value,
                                       (int)strlen(value), p, end);
}

/* The CORS headers of an answer. Vary: Origin on every answer (each one
 * depends on the header); Access-Control-Allow-Origin for an allowed origin
 * and on the refusal of a disallowed one (so the page can read why), never
 * on a refused preflight; the grants only on an allowed preflight. */
static int cors_headers(const gw_cors *c, struct lws *wsi, unsigned char **p,
                        unsigned char *end)
{
    if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_VARY,
                                     (const unsigned char *)"Origin", 6, p,
                                     end))
        return -1;
    if (c->verdict == GW_ORIGIN_NONE || !c->origin[0] ||
        (c->verdict == GW_ORIGIN_REFUSED && c->preflight))
        return 0;
    if (lws_add_http_header_by_token(
            wsi, WSI_TOKEN_HTTP_ACCESS_CONTROL_ALLOW_ORIGIN,
            (const unsigned char *)c->origin, (int)strlen(c->origin), p, end))
        return -1;
    if (c->verdict != GW_ORIGIN_ALLOWED || !c->preflight) return 0;
    if (add_header(wsi, "access-control-allow-methods:", GW_CORS_METHODS, p,
                   end) ||
        add_header(wsi, "access-control-allow-headers:", GW_CORS_HEADERS, p,
                   end) ||
        add_header(wsi, "access-control-max-age:", GW_CORS_MAX_AGE, p, end))
        return -1;
    return 0;
}

/* Answers a preflight, or refuses a request from a disallowed origin.
 * 1 if answered, 0 if the request goes on to its route. */
static int cors_gate(gw_http *h)
{
    const gw_cors *c = &h->cors;
    if (c->verdict == GW_ORIGIN_REFUSED) {
        char detail[GW_ORIGIN_MAX + 128];
        h->srv->m.refused_origin++;
        snprintf(detail, sizeof detail,
                 "origin %s is not in this gateway's --origin allow-list",
                 c->origin[0] ? c->origin : "(unreadable)");
        respond_json_error_name(h, 403, "ORIGIN_NOT_ALLOWED", detail);
        return 1;
    }
    if (c->preflight) {
        assert(c->verdict == GW_ORIGIN_ALLOWED);
        gw_http_respond(h, 204, "text/plain", "", 0);
        return 1;
    }
    return 0;
}

/* ---- static files (lws mounts) ---- */

/* MIME types lws's own table lacks; lws matches these first. */
static const struct lws_protocol_vhost_options mime_any = {
    NULL, NULL, "*", "application/octet-stream"};
static const struct lws_protocol_vhost_options mime_wasm = {
    &mime_any, NULL, ".wasm", "application/wasm"};
static const struct lws_protocol_vhost_options mime_map = {
    &mime_wasm, NULL, ".map", "application/json"};
static const struct lws_protocol_vhost_options mime_mjs = {
    &mime_map, NULL, ".mjs", "text/javascript"};

/* The paths this protocol answers itself; every other one is a file. */
static const char *const own_roots[] = {"/v1", "/healthz", "/metrics"};

int gw_http_mounts(gw_server *s, struct lws_http_mount *m, size_t n)
{
    size_t k = sizeof own_roots / sizeof own_roots[0];
    if (n < k + 1) return -1;
    memset(m, 0, (k + 1) * sizeof *m);
    for (size_t i = 0; i < k; i++) {
        m[i].mount_next = &m[i + 1];
        m[i].mountpoint = own_roots[i];
        m[i].mountpoint_len = (unsigned char)strlen(own_roots[i]);
        m[i].origin = gw_http_protocol.name;
        m[i].origin_protocol = LWSMPRO_CALLBACK;
    }
    m[k].mountpoint = "/";
    m[k].mountpoint_len = 1;
    m[k].origin = s->cfg.static_dir;
    m[k].origin_protocol = LWSMPRO_FILE;
    m[k].def = "index.html";
    /* lws asks this protocol before and while serving a file */
    m[k].protocol = gw_http_protocol.name;
    m[k].extra_mimetypes = &mime_mjs;
    return (int)(k + 1);
}

/* ---- small endpoints ---- */

/* 1 if the request came from this machine's loopback (127.0.0.0/8, ::1,
 * or either mapped into IPv6). Development endpoints answer nobody else,
 * whatever address the gateway listens on. */
static int peer_is_loopback(struct lws *wsi)
{
    char ip[64] = "";
    lws_get_peer_simple(wsi, ip, sizeof ip);
    const char *v4 = strncmp(ip, "::ffff:", 7) == 0 ? ip + 7 : ip;
    return strncmp(v4, "127.", 4) == 0 || strcmp(ip, "::1") == 0;
}

static void dev_token(gw_http *h)
{
    char ub[160], nb[160], rb[64];
    const char *user = lws_get_urlarg_by_name(h->wsi, "user=", ub, sizeof ub);
    const char *name = lws_get_urlarg_by_name(h->wsi, "name=", nb, sizeof nb);
    const char *role = lws_get_urlarg_by_name(h->wsi, "role=", rb, sizeof rb);
    auth_identity id;
    memset(&id, 0, sizeof id);
    if (!user || !*user) {
        respond_json_error_name(h, 400, "AUTHOR_INVALID", "user is required");
        return;
    }
    snprintf(id.id, sizeof id.id, "%s", user);
    snprintf(id.display_name, sizeof id.display_name, "%s",
             name && *name ? name : user);
    id.role = role && *role ? parley_role_parse(role) : PARLEY_ROLE_PARTICIPANT;
    if (!id.role) {
        respond_json_error_name(h, 400, "AUTHOR_INVALID",
                                "role is participant or organizer");
        return;
    }
    parley_author a = auth_author(&id);
    parley_err e = rules_author(&a);
    if (e != PARLEY_OK) {
        gw_http_respond_error(h, e, 400, NULL);
        return;
    }
    char *tok = auth_mint(h->srv->auth, &id, gw_now_s(), 24 * 3600);
    if (!tok) {
        gw_http_respond_error(h, PARLEY_ERR_INTERNAL, 500, NULL);
        return;
    }
    json_t *j = json_pack("{s:s}", "token", tok);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    memset(tok, 0, strlen(tok));
    free(tok);
    gw_http_respond(h, 200, "application/json", s ? s : "{}",
                    s ? strlen(s) : 2);
    free(s);
}

static int dispatch(gw_http *h)
{
    gw_server *s = h->srv;
    const char *p = h->path;
    int ops = strcmp(p, "/healthz") == 0 || strcmp(p, "/metrics") == 0;
    s->m.http_requests++;
    /* With --admin-listen, health and metrics answer there and only there,
     * and the admin listener answers nothing else. */
    if (s->admin_vh && (lws_get_vhost(h->wsi) == s->admin_vh) != ops) {
        respond_text(h, 404, "not found\n");
        return 0;
    }
    if (cors_gate(h)) return 0;
    if (h->body_too_big) {
        respond_json_error_name(h, 413, "RESOURCE_EXHAUSTED", "body too large");
        return 0;
    }
    if (strcmp(p, "/healthz") == 0) {
        if (gw_up_healthy(s))
            respond_text(h, 200, "ok\n");
        else
            respond_text(h, 503, "upstream unavailable\n");
        return 0;
    }
    if (strcmp(p, "/metrics") == 0) {
        size_t len;
        char *txt = gw_metrics_render(s, &len);
        if (!txt) {
            respond_text(h, 500, "out of memory\n");
            return 0;
        }
        gw_http_respond(h, 200, "text/plain; version=0.0.4", txt, len);
        free(txt);
        return 0;
    }
    if (strcmp(p, "/v1/dev/token") == 0) {
        if (!s->cfg.dev)
            respond_text(h, 404, "not found\n");
        else if (!peer_is_loopback(h->wsi))
            respond_json_error_name(h, 403, "PERMISSION_DENIED",
                                    "development endpoints answer on "
                                    "loopback only");
        else if (strcmp(h->method, "GET") != 0)
            respond_text(h, 405, "method not allowed\n");
        else
            dev_token(h);
        return 0;
    }
    if (strncmp(p, "/v1/", 4) == 0 || strcmp(p, "/v1") == 0) {
        gw_rest_route(h, h->method, p, h->body ? h->body : "", h->body_len,
                      h->bearer);
        return 0;
    }
    /* a file lws did not find (or the admin listener, which has none) */
    if (strcmp(h->method, "GET") != 0 && strcmp(h->method, "HEAD") != 0)
        respond_text(h, 405, "method not allowed\n");
    else
        respond_text(h, 404, "not found\n");
    return 0;
}

/* ---- upgrade checks ---- */

static int origin_allowed(gw_server *s, struct lws *wsi, const char *origin)
{
    char host[256], own[300];
    const char *scheme = s->cfg.tls_cert[0] ? "https" : "http";
    if (lws_hdr_copy(wsi, host, sizeof host, WSI_TOKEN_HOST) > 0) {
        snprintf(own, sizeof own, "%s://%s", scheme, host);
        if (strcasecmp(origin, own) == 0) return 1;
    }
    snprintf(own, sizeof own, "%s://%s:%d", scheme, s->cfg.listen_host,
             s->cfg.listen_port);
    if (strcasecmp(origin, own) == 0) return 1;
    for (int i = 0; i < s->cfg.n_origins; i++)
        if (fnmatch(s->cfg.origins[i], origin, FNM_CASEFOLD) == 0) return 1;
    return 0;
}

static int offers_parley_protocol(struct lws *wsi)
{
    char list[256];
    if (lws_hdr_copy(wsi, list, sizeof list, WSI_TOKEN_PROTOCOL) <= 0) return 0;
    for (char *save = NULL, *t = strtok_r(list, ", ", &save); t;
         t = strtok_r(NULL, ", ", &save))
        if (strcmp(t, GW_PROTO_BIN) == 0 || strcmp(t, GW_PROTO_JSON) == 0)
            return 1;
    return 0;
}

/* Refuses an upgrade with a plain HTTP/1.1 answer (lws's own helper says
 * HTTP/1.0 at this stage, which WebSocket clients reject). */
static int refuse(struct lws *wsi, int status, const char *why)
{
    unsigned char buf[LWS_PRE + 512];
    const char *text = status == 400   ? "Bad Request"
                       : status == 403 ? "Forbidden"
                       : status == 404 ? "Not Found"
                       : status == 429 ? "Too Many Requests"
                                       : "Service Unavailable";
    int n = snprintf((char *)buf + LWS_PRE, sizeof buf - LWS_PRE,
                     "HTTP/1.1 %d %s\r\ncontent-type: text/plain\r\n"
                     "content-length: %zu\r\nconnection: close\r\n\r\n%s\n",
                     status, text, strlen(why) + 1, why);
    if (n <= 0 || n >= (int)(sizeof buf - LWS_PRE)) return -1;
    if (lws_write(wsi, buf + LWS_PRE, (size_t)n, LWS_WRITE_HTTP_HEADERS) < n)
        return -1;
    return 1;
}

static int confirm_upgrade(gw_server *s, struct lws *wsi)
{
    char uri[256], origin[256];
    if (lws_get_vhost(wsi) == s->admin_vh ||
        lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) <= 0 ||
        strcmp(uri, "/v1/stream") != 0)
        return refuse(wsi, 404, "no WebSocket here; use /v1/stream");
    if (!offers_parley_protocol(wsi))
        return refuse(wsi, 400,
                      "offer subprotocol " GW_PROTO_BIN " or " GW_PROTO_JSON);
    /* An Origin too long to read is refused like any unknown one. */
    if (lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) > 0 &&
        (lws_hdr_copy(wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN) <= 0 ||
         !origin_allowed(s, wsi, origin))) {
        s->m.refused_origin++;
        return refuse(wsi, 403, "origin not in the --origin allow-list");
    }
    if (s->shutting_down || (int)gw_conn_count(s) >= s->cfg.max_conns) {
        s->m.refused_full++;
        return refuse(wsi, 503, "too many connections");
    }
    char ip[48] = "";
    lws_get_peer_simple(wsi, ip, sizeof ip);
    if (gw_ip_count(s, ip) >= s->cfg.max_conns_per_ip) {
        s->m.refused_ip++;
        return refuse(wsi, 429, "too many connections from this address");
    }
    return 0;
}

/* ---- a request's head ---- */

static const struct {
    enum lws_token_indexes tok;
    const char *name;
} methods[] = {
    {WSI_TOKEN_GET_URI, "GET"},     {WSI_TOKEN_POST_URI, "POST"},
    {WSI_TOKEN_PATCH_URI, "PATCH"}, {WSI_TOKEN_DELETE_URI, "DELETE"},
    {WSI_TOKEN_PUT_URI, "PUT"},     {WSI_TOKEN_OPTIONS_URI, "OPTIONS"},
    {WSI_TOKEN_HEAD_URI, "HEAD"},
};

/* 1 if uri is under one of the mounts this protocol answers itself. */
static int own_root(const char *uri)
{
    for (size_t i = 0; i < sizeof own_roots / sizeof own_roots[0]; i++) {
        size_t n = strlen(own_roots[i]);
        if (strncmp(uri, own_roots[i], n) == 0 &&
            (uri[n] == '\0' || uri[n] == '/'))
            return 1;
    }
    return 0;
}

/* Reads a request's head into h: the method, the whole path from the
 * request line (lws hands a mount's callback only the part past the
 * mountpoint, and only for some methods), the Origin and the bearer. A
 * NUL in the path and an over-long target are answered here, before any
 * route and with any body unread. 0: go on; 1: answered; -1: close. */
static int begin(gw_http *h, gw_server *s, struct lws *wsi)
{
    if (!h->h) {
        h->wsi = wsi;
        h->srv = s;
        if (!(h->h = gw_handle_new(h))) return -1;
    }
    http_reset(h);
    h->method[0] = h->path[0] = '\0';
    int ulen = 0;
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        if ((ulen = lws_hdr_total_length(wsi, methods[i].tok)) > 0) {
            snprintf(h->method, sizeof h->method, "%s", methods[i].name);
            if (ulen <= GW_PATH_MAX &&
                lws_hdr_copy(wsi, h->path, sizeof h->path, methods[i].tok) < 0)
                return -1;
            break;
        }
    }
    cors_read(&h->cors, s, wsi, h->method);
    int qlen = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS);
    if (ulen > GW_PATH_MAX || ulen + (qlen > 0 ? qlen : 0) > GW_URL_MAX) {
        s->m.http_requests++;
        respond_json_error_name(h, 414, "MALFORMED", "request target too long");
        return 1;
    }
    /* lws decodes %00 after a '/' into the path, which then reads cut at
     * the NUL ("/v1/rooms/lobby/%00" would read as GET room lobby): a path
     * whose stored length is longer than its string is refused whole. (A
     * %00 elsewhere in the target makes lws 4.1 drop the connection before
     * any callback: docs/security.md.) */
    if (ulen > 0 && (size_t)ulen != strlen(h->path)) {
        s->m.http_requests++;
        respond_json_error_name(h, 400, "INVALID_UTF8",
                                "the path holds a NUL (%00)");
        return 1;
    }
    int alen = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
    if (alen > 0) {
        h->bearer = malloc((size_t)alen + 1);
        if (!h->bearer || lws_hdr_copy(wsi, h->bearer, alen + 1,
                                       WSI_TOKEN_HTTP_AUTHORIZATION) < 0)
            return -1;
    }
    return 0;
}

/* ---- the protocol callback ---- */

static int http_callback(struct lws *wsi, enum lws_callback_reasons reason,
                         void *user, void *in, size_t len)
{
    gw_http *h = user;
    gw_server *s = gw_server_of(wsi);

    switch (reason) {
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: return confirm_upgrade(s, wsi);

    case LWS_CALLBACK_CHECK_ACCESS_RIGHTS: {
        /* lws is about to serve a file (the "/" mount) or to call
         * LWS_CALLBACK_HTTP (this protocol's own mounts). */
        struct lws_process_html_args *args = in;
        if (!h) return -1;
        if (own_root(args->p)) return 0;
        int rc = begin(h, s, wsi);
        if (rc) {
            args->final = 1; /* answered (or rc < 0: close) */
            return rc < 0 ? -1 : 0;
        }
        if (h->cors.verdict != GW_ORIGIN_REFUSED && !h->cors.preflight &&
            (strcmp(h->method, "GET") == 0 || strcmp(h->method, "HEAD") == 0))
            return 0; /* lws serves it, or calls back if there is none */
        if (strcmp(h->method, "POST") == 0)
            return 0; /* LWS_CALLBACK_HTTP follows, then the body */
        args->final = 1;
        return dispatch(h);
    }

    case LWS_CALLBACK_ADD_HEADERS: {
        /* lws is writing the headers of a file it serves; the request
         * state of the access check is gone (lws binds the protocol again,
         * with fresh user space), so the Origin is read again. */
        struct lws_process_html_args *args = in;
        gw_cors c;
        cors_read(&c, s, wsi, "GET");
        unsigned char *p = (unsigned char *)args->p, *end = p + args->max_len;
        if (cors_headers(&c, wsi, &p, end)) return -1;
        args->max_len -= (int)(p - (unsigned char *)args->p);
        args->p = (char *)p;
        s->m.http_requests++;
        return 0;
    }

    case LWS_CALLBACK_HTTP: {
        if (!h) return -1;
        int rc = begin(h, s, wsi);
        if (rc) return rc < 0 ? -1 : 0;
        char cl[32];
        long long clen = 0;
        if (lws_hdr_copy(wsi, cl, sizeof cl, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0)
            clen = atoll(cl);
        if (clen > 0) return 0; /* wait for the body */
        return dispatch(h);
    }

    case LWS_CALLBACK_HTTP_BODY:
        if (len == 0 || !in)
            return 0; /* lws reports an empty body (Content-Length: 0) */
        if (h->body_too_big || h->body_len + len > GW_HTTP_BODY_MAX) {
            h->body_too_big = 1;
            return 0;
        }
        {
            char *nb = realloc(h->body, h->body_len + len + 1);
            if (!nb) return -1;
            h->body = nb;
            if (len) /* an empty body comes as (NULL, 0) */
                memcpy(h->body + h->body_len, in, len);
            h->body_len += len;
            h->body[h->body_len] = '\0';
        }
        return 0;

    case LWS_CALLBACK_HTTP_BODY_COMPLETION: return dispatch(h);

    case LWS_CALLBACK_HTTP_WRITEABLE: {
        if (!h || !h->have_resp) return 0;
        if (!h->headers_sent) {
            unsigned char hb[LWS_PRE + 1024];
            unsigned char *start = hb + LWS_PRE, *p = start,
                          *end = hb + sizeof hb - 1;
            if (lws_add_http_common_headers(wsi, (unsigned)h->status, h->ctype,
                                            h->resp_len, &p, end) ||
                lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
                                             (const unsigned char *)"no-store",
                                             8, &p, end) ||
                cors_headers(&h->cors, wsi, &p, end) ||
                (h->allow[0] && add_header(wsi, "allow:", h->allow, &p, end)) ||
                lws_finalize_write_http_header(wsi, start, &p, end))
                return -1;
            h->headers_sent = 1;
            if (h->resp_len > 0) {
                lws_callback_on_writable(wsi);
                return 0;
            }
        } else if (lws_write(wsi, h->resp + LWS_PRE, h->resp_len,
                             LWS_WRITE_HTTP_FINAL) < (int)h->resp_len) {
            return -1;
        }
        http_reset(h);
        if (lws_http_transaction_completed(wsi)) return -1;
        return 0;
    }

    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        if (h && h->h) {
            http_reset(h);
            h->h->p = NULL;
            gw_handle_unref(h->h);
            h->h = NULL;
        }
        return 0;

    default: break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

const struct lws_protocols gw_http_protocol = {
    "http", http_callback, sizeof(gw_http), 0, 0, NULL, 0};
