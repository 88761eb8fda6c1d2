/* lg_nats.h: the commands a NATS server sends, split off a byte stream
 * (protocol lines ending in CRLF; MSG carries a payload and a CRLF after
 * its line). Shared by the NATS and JetStream adapters of loadgen and by
 * loadgen-grpc's JetStream client. Only splits: what a command means is
 * each caller's. */
#ifndef PARLEY_LG_NATS_H
#define PARLEY_LG_NATS_H

#include <stddef.h>
#include <stdint.h>

typedef enum lg_nats_kind {
    LG_NATS_OTHER = 0, /* +OK and anything else: skipped */
    LG_NATS_MSG,       /* MSG <subject> <sid> [reply] <size> */
    LG_NATS_PING,
    LG_NATS_PONG,
    LG_NATS_INFO,
    LG_NATS_ERR /* -ERR '...' */
} lg_nats_kind;

typedef struct lg_nats_cmd {
    lg_nats_kind kind;
    const char *line; /* the command line without its CRLF */
    size_t line_len;
    /* MSG only; reply is "" (length 0) when the message has none. */
    const char *subject, *reply, *payload;
    size_t subject_len, reply_len, payload_len;
    int sid;
} lg_nats_cmd;

/* The command at p[0..len): the bytes it takes (its line, and a MSG's
 * payload, CRLFs included) with *out filled, 0 when it is not all there
 * yet, -1 when a MSG line is malformed. out's pointers point into p. */
long lg_nats_next(const uint8_t *p, size_t len, lg_nats_cmd *out);

#endif
