/* gw_upstream.h: the gateway's gRPC client of parleyd (gw_upstream.c):
 * unary calls (REST, History paging) and links, the shared Connect streams
 * that carry every room subscription and every session's publishes. */
#ifndef GW_UPSTREAM_H
#define GW_UPSTREAM_H

#include "gw.h"

parley_err gw_up_new(gw_server *s, gw_upstream **out);
/* Cancels every call, waits for their ends, stops the grpc thread, frees. */
void gw_up_free(gw_upstream *u);
/* Runs what the grpc thread handed over: completions, and every frame the
 * core sent, in order (lws thread only; gw_main.c's loop calls it). */
void gw_up_drain(gw_server *s);
/* 1 if some core is connected and usable (not failed, not NOT_SERVING). */
int gw_up_healthy(gw_server *s);
/* How many cores there are, and (*usable) how many may be chosen now. */
int gw_up_cores(gw_server *s, int *usable);
const char *gw_up_state_name(gw_server *s);

/* ---- unary calls ---- */

/* The answer of a unary call: resp is owned by the callback (free with
 * protobuf_c_message_free_unpacked). unavailable is set when the core could
 * not be reached. */
typedef void (*gw_unary_cb)(gw_server *s, void *ud, parley_err e,
                            const char *detail, int unavailable,
                            ProtobufCMessage *resp);

/* While a gw_unary_cb runs: the access rule of its refusal (the
 * `parley-rule` trailer of a PERMISSION_DENIED), else PARLEY_RULE_NONE. */
parley_rule gw_up_unary_rule(const gw_server *s);

/* Start a unary call of method m with token as `authorization` metadata. */
parley_err gw_up_unary(gw_server *s, const rpc_method_desc *m,
                       const ProtobufCMessage *req, const char *token,
                       gw_unary_cb cb, void *ud);

/* ---- links ---- */

/* What the links report upward; set once by gw_main.c (the rooms). */
typedef struct gw_up_handlers {
    /* A frame the core sent on l with request_id 0 (an event), decoded, and
     * its own encoding (to pass through; take a reference to keep it). */
    void (*on_event)(gw_server *s, gw_link *l, Parley__V1__ServerFrame *f,
                     gw_buf *bytes);
    /* A frame about a room other than an event the core sent on l: a room
     * event (moderation, settings, members), presence or typing. */
    void (*on_room_frame)(gw_server *s, gw_link *l, Parley__V1__ServerFrame *f);
    /* l ended (core gone, cancelled); every call on it was answered with
     * NULL before. The next gw_up_link opens a fresh one. */
    void (*on_down)(gw_server *s, gw_link *l);
} gw_up_handlers;
void gw_up_set_handlers(gw_server *s, const gw_up_handlers *h);

/* The link that carries `key` (a room name): on the room's core (by
 * rendezvous hashing over the usable cores, see gw_upstream.c), chosen by
 * hash among that core's --upstream-links streams and opened on first use
 * (service token, batches asked for). NULL if no core is usable or the
 * link cannot be opened. */
gw_link *gw_up_link(gw_server *s, const char *key);
/* The index (in --upstream) of the core l goes to. */
int gw_link_core(const gw_link *l);

/* The answer to one call: the ServerFrame carrying its request_id
 * (Subscribed, Ack, Error, ...), or NULL when the link went down first.
 * f is freed after the callback returns. */
typedef void (*gw_reply_cb)(gw_server *s, void *ud, Parley__V1__ServerFrame *f);

/* The most bytes one message on a link may take: parleyd takes messages
 * of at least 64 KiB (more with a larger --max-body), and a message it
 * refuses would end the link for every room on it. */
#define GW_LINK_MSG_MAX (60 * 1024)
/* An upper bound of f's size on a link with user_token; a caller checks it
 * against GW_LINK_MSG_MAX before gw_link_call. */
size_t gw_link_frame_size(const Parley__V1__ClientFrame *f,
                          const char *user_token);

/* Sends f on l with a request_id of the link's own (f->request_id is
 * overwritten) and, if not NULL, user_token (the user the frame acts for).
 * cb runs once with the answer; cb NULL: nobody waits. Frames queued while
 * one is on its way leave together as one ClientFrame{batch} once the core
 * agreed to batches. NULL if the link cannot take it (cb never runs). */
gw_call *gw_link_call(gw_link *l, Parley__V1__ClientFrame *f,
                      const char *user_token, gw_reply_cb cb, void *ud);
/* Sends f on l like gw_link_call, for a frame the core answers only when
 * it refuses it (presence, typing): nothing is kept for an answer, which
 * is dropped. -1 if the link cannot take it. */
int gw_link_send(gw_link *l, Parley__V1__ClientFrame *f,
                 const char *user_token);
/* The caller went away: its answer will be dropped. */
void gw_call_forget(gw_call *c);

/* The service token was renewed (s->service_token): every open link gets
 * it as an Authenticate frame, so the core does not end the link at the
 * old token's expiry. */
void gw_up_renew(gw_server *s);

#endif
