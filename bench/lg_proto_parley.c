/* lg_proto_parley.c: the load generator's adapter for parley-gateway's
 * binary subprotocol "parley.v1.proto": every WebSocket message is one
 * protobuf ClientFrame / ServerFrame (gen/parley/v1/stream.pb-c.h).
 * Authenticate first (with SessionOptions.batch right behind it, so the
 * gateway may send several frames as one ServerFrame{batch}, as the web
 * client does), then Subscribe{room, resumeAfterRev = last rev seen} (the
 * gateway replays what was missed, then Subscribed, then live events), and
 * Publish frames acked after commit. */
#include "lg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/v1/stream.pb-c.h"

enum { LGP_AUTH_WAIT = 0, LGP_SUB_WAIT = 1, LGP_LIVE = 2 };

/* ServerFrames are decoded into a bump arena reset before each frame, so a
 * delivery costs no malloc/free; a frame larger than the arena falls back to
 * the heap. One thread, one frame at a time. */
#define LGP_ARENA_BYTES (256u << 10)
static unsigned char lgp_arena[LGP_ARENA_BYTES] __attribute__((aligned(16)));
static size_t lgp_arena_used;

static void *lgp_alloc(void *ud, size_t n)
{
    (void)ud;
    size_t need = (n + 15) & ~(size_t)15;
    if (need <= LGP_ARENA_BYTES - lgp_arena_used) {
        void *p = lgp_arena + lgp_arena_used;
        lgp_arena_used += need;
        return p;
    }
    return malloc(n);
}

static void lgp_free(void *ud, void *p)
{
    (void)ud;
    unsigned char *c = p;
    if (c >= lgp_arena && c < lgp_arena + LGP_ARENA_BYTES) return;
    free(p);
}

static ProtobufCAllocator lgp_allocator = {lgp_alloc, lgp_free, NULL};

static void lgp_path(const lg_ctx *x, const lg_conn *c, char *out, size_t n)
{
    (void)x;
    (void)c;
    snprintf(out, n, "/v1/stream");
}

static int lgp_send(lg_conn *c, const Parley__V1__ClientFrame *f)
{
    uint8_t buf[4096];
    size_t need = parley__v1__client_frame__get_packed_size(f);
    if (need > sizeof buf) return -1;
    size_t n = parley__v1__client_frame__pack(f, buf);
    return lg_ws_send(&c->ws, LG_WS_BINARY, buf, n) ? -1 : 0;
}

static int lgp_on_open(lg_ctx *x, lg_conn *c)
{
    const char *tok = lg_token(x, c);
    if (!tok) return -1;
    Parley__V1__Authenticate a = PARLEY__V1__AUTHENTICATE__INIT;
    a.token = (char *)tok;
    Parley__V1__ClientFrame f = PARLEY__V1__CLIENT_FRAME__INIT;
    f.request_id = ++c->next_req;
    f.kind_case = PARLEY__V1__CLIENT_FRAME__KIND_AUTHENTICATE;
    f.authenticate = &a;
    c->pstate = LGP_AUTH_WAIT;
    if (lgp_send(c, &f) != 0) return -1;
    Parley__V1__SessionOptions o = PARLEY__V1__SESSION_OPTIONS__INIT;
    o.batch = 1;
    Parley__V1__ClientFrame of = PARLEY__V1__CLIENT_FRAME__INIT;
    of.request_id = ++c->next_req;
    of.kind_case = PARLEY__V1__CLIENT_FRAME__KIND_OPTIONS;
    of.options = &o;
    return lgp_send(c, &of);
}

static int lgp_subscribe(lg_ctx *x, lg_conn *c)
{
    char room[64];
    lg_room_name(x, c->room, room, sizeof room);
    Parley__V1__Subscribe s = PARLEY__V1__SUBSCRIBE__INIT;
    s.room = room;
    s.resume_after_rev = c->last_rev;
    Parley__V1__ClientFrame f = PARLEY__V1__CLIENT_FRAME__INIT;
    f.request_id = ++c->next_req;
    f.kind_case = PARLEY__V1__CLIENT_FRAME__KIND_SUBSCRIBE;
    f.subscribe = &s;
    c->pstate = LGP_SUB_WAIT;
    return lgp_send(c, &f);
}

static int lgp_on_frame(lg_ctx *x, lg_conn *c,
                        const Parley__V1__ServerFrame *f);

static int lgp_on_message(lg_ctx *x, lg_conn *c, int opcode, const uint8_t *d,
                          size_t n)
{
    if (opcode != LG_WS_BINARY) return -1;
    lgp_arena_used = 0;
    Parley__V1__ServerFrame *f =
        parley__v1__server_frame__unpack(&lgp_allocator, n, d);
    if (!f) {
        lg_on_error(x, c, -1, "undecodable ServerFrame");
        return -1;
    }
    int rc = 0;
    if (f->kind_case == PARLEY__V1__SERVER_FRAME__KIND_BATCH) {
        for (size_t i = 0; i < f->batch->n_frames && rc == 0; i++)
            rc = lgp_on_frame(x, c, f->batch->frames[i]);
    } else {
        rc = lgp_on_frame(x, c, f);
    }
    parley__v1__server_frame__free_unpacked(f, &lgp_allocator);
    return rc;
}

/* One ServerFrame, alone or out of a batch. */
static int lgp_on_frame(lg_ctx *x, lg_conn *c, const Parley__V1__ServerFrame *f)
{
    int rc = 0;
    switch (f->kind_case) {
    case PARLEY__V1__SERVER_FRAME__KIND_AUTHENTICATED:
        if (c->subscriber)
            rc = lgp_subscribe(x, c);
        else {
            c->pstate = LGP_LIVE;
            lg_on_ready(x, c);
        }
        break;
    case PARLEY__V1__SERVER_FRAME__KIND_EVENT: {
        const Parley__V1__Message *m = f->event->message;
        if (m && f->event->type == PARLEY__V1__EVENT_TYPE__EVENT_TYPE_CREATED) {
            lg_on_deliver(x, c, m->body, strlen(m->body), m->rev);
            if (m->rev > c->last_rev) c->last_rev = m->rev;
        }
        break;
    }
    case PARLEY__V1__SERVER_FRAME__KIND_SUBSCRIBED:
        if (f->subscribed->room && f->subscribed->room->head_rev > c->last_rev)
            c->last_rev = f->subscribed->room->head_rev;
        c->pstate = LGP_LIVE;
        lg_on_ready(x, c);
        break;
    case PARLEY__V1__SERVER_FRAME__KIND_ACK: lg_on_ack(x, c); break;
    case PARLEY__V1__SERVER_FRAME__KIND_ERROR:
        lg_on_error(x, c, (int)f->error->code, f->error->detail);
        if (f->error->fatal) rc = -1;
        break;
    default: break; /* pong, options */
    }
    return rc;
}

static int lgp_publish(lg_ctx *x, lg_conn *c, const char *body, size_t n)
{
    (void)n;
    char room[64], cid[64];
    lg_room_name(x, c->room, room, sizeof room);
    snprintf(cid, sizeof cid, "c%u-%u-%llu", c->id, c->epoch,
             (unsigned long long)c->pub_seq);
    Parley__V1__PublishRequest p = PARLEY__V1__PUBLISH_REQUEST__INIT;
    p.room = room;
    p.client_msg_id = cid;
    p.body = (char *)body;
    Parley__V1__ClientFrame f = PARLEY__V1__CLIENT_FRAME__INIT;
    f.request_id = ++c->next_req;
    f.kind_case = PARLEY__V1__CLIENT_FRAME__KIND_PUBLISH;
    f.publish = &p;
    return lgp_send(c, &f);
}

const lg_proto lg_proto_parley = {
    .name = "parley",
    .subprotocol = "parley.v1.proto",
    .path = lgp_path,
    .on_open = lgp_on_open,
    .on_message = lgp_on_message,
    .publish = lgp_publish,
    .has_ack = 1,
    .has_resume = 1,
};
