/* gw_conn.h: one WebSocket connection at /v1/stream (gw_conn.c): message
 * assembly with the size limit, the inbound rate, the send side (its own
 * queue plus the feeds it pulls from, written in as few socket writes as
 * possible), close codes and deadlines. What the frames mean is the
 * session's (gw_session.c), which gets each whole message through the
 * handlers below. */
#ifndef GW_CONN_H
#define GW_CONN_H

#include "gw.h"

/* A source of frames a connection pulls from whenever it can write, so
 * that a frame for many connections is stored once (a room's ring) and
 * copied only into each socket write. Embedded by its owner (gw_rooms.c's
 * subscription). */
typedef struct gw_feed {
    /* Adds the frames it has ready with gw_writer_add until it has no more
     * or the writer is full; 1 if frames are still waiting. */
    int (*pull)(struct gw_feed *fd, gw_writer *w);
    /* The connection's own queue fell below a quarter of its bound (a
     * History replay waiting for room goes on). May be NULL. */
    void (*drained)(struct gw_feed *fd);
    /* The write that carried what pull added went out: what was kept
     * alive for it may go. May be NULL. */
    void (*written)(struct gw_feed *fd);
    lws_dll2_t link; /* the connection's feeds */
} gw_feed;

/* Adds one encoded ServerFrame (in the connection's format) to the write
 * being built; the bytes must stay valid until the pull returns. 0, or -1
 * when the write is full (the frame waits for the next one). */
int gw_writer_add(gw_writer *w, const unsigned char *p, size_t n);

/* What a connection reports to the session; set once (gw_main.c). */
struct gw_conn_handlers {
    /* One whole WebSocket message, within the size and rate limits. */
    void (*on_message)(gw_conn *c, const unsigned char *p, size_t n,
                       int binary);
    /* The connection is gone; the session drops what it holds. */
    void (*on_close)(gw_conn *c);
    /* 1 once the session's token has expired (asked by the sweep, once a
     * second, of authenticated connections); then closed 4402. */
    int (*expired)(gw_conn *c);
};
void gw_conn_set_handlers(gw_server *s, const gw_conn_handlers *h);

extern const struct lws_protocols gw_conn_protocol_bin;
extern const struct lws_protocols gw_conn_protocol_json;

gw_server *gw_conn_server(const gw_conn *c);
/* A weak handle on c for answers that come later (cleared when c goes). */
gw_handle *gw_conn_handle(gw_conn *c);
int gw_conn_json(const gw_conn *c); /* parley.v1.json, else binary */
/* SessionOptions.batch: several frames of one write go as one
 * ServerFrame{batch} message. */
void gw_conn_set_batch(gw_conn *c, int on);
int gw_conn_batch(const gw_conn *c);

/* The session's own data (gw_session.c), NULL until it sets it. */
void *gw_conn_session(const gw_conn *c);
void gw_conn_set_session(gw_conn *c, void *session);

/* Takes n more messages from the inbound token bucket (a batch counts each
 * frame); -1 when over the rate: the connection is closed 4429. */
int gw_conn_rate_take(gw_conn *c, double n);

/* Queues a reference to b on the connection's own queue (answers, errors,
 * History replay). -1 if the connection is closing, or over its bound
 * (then closed 4508). */
int gw_conn_send(gw_conn *c, gw_buf *b);
/* Encodes m in the connection's format and queues it. */
int gw_conn_send_msg(gw_conn *c, const ProtobufCMessage *m);
/* Error{code, detail, fatal} answering request_id. */
void gw_conn_send_error(gw_conn *c, uint64_t request_id, parley_err code,
                        const char *detail, int fatal);
/* The same with the access rule of a PERMISSION_DENIED (Error.rule). */
void gw_conn_send_error_rule(gw_conn *c, uint64_t request_id, parley_err code,
                             parley_rule rule, const char *detail, int fatal);
/* Frames in the own queue; the session paces History replay by it. */
size_t gw_conn_queued(const gw_conn *c);
/* 1 while the own queue holds more than half its bound, or the socket
 * takes nothing more for now. */
int gw_conn_busy(const gw_conn *c);

void gw_conn_add_feed(gw_conn *c, gw_feed *fd);
void gw_conn_remove_feed(gw_conn *c, gw_feed *fd);
/* c's feeds in turn: the first with prev NULL; NULL after the last. */
gw_feed *gw_conn_next_feed(gw_conn *c, gw_feed *prev);
/* frames and bytes more (or, negative, fewer) wait in c's feeds. With
 * enforce, more than --sendq-frames / --sendq-bytes waiting in all closes
 * c 4508 (slow consumer) and returns -1. */
int gw_conn_charge(gw_conn *c, long frames, long bytes, int enforce);
/* Ask for a write callback (a feed has frames). */
void gw_conn_want_write(gw_conn *c);

/* Close with code after what is waiting was written (flush) or at once. */
void gw_conn_close(gw_conn *c, int code, int flush);
int gw_conn_closing(const gw_conn *c);
/* Every connection closes with code (shutdown). */
void gw_conn_close_all(gw_server *s, int code);
size_t gw_conn_count(const gw_server *s);

/* Start / stop the periodic sweep of every connection: authenticate
 * timeout, WS pings to idle peers, hang-up of dead ones. */
void gw_conn_sweep_start(gw_server *s);
void gw_conn_sweep_stop(gw_server *s);
/* The session says the peer authenticated (no authenticate timeout). */
void gw_conn_set_authed(gw_conn *c);

#endif
