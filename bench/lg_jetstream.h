/* lg_jetstream.h: what the load generators know of NATS JetStream, the
 * durable peer of the benchmark (nats-server -js, file storage). One stream,
 * LG_JS_STREAM, holds every subject LG_JS_SUBJECTS covers; a room R is the
 * subject "parley.R". A publish is `PUB subject reply-inbox` and JetStream
 * answers on the inbox once the message is stored: a JSON PubAck
 * {"stream":..,"seq":N}, or {"error":{..}}.
 *
 * lg_js_publish_load is the durable publish load over the NATS protocol on
 * TCP, the same shape as loadgen-grpc's against parleyd: P publishers on
 * one connection, each keeping W publishes in flight (W = 1: each waits for
 * its ack), counted when acked. lg_proto_jetstream.c (loadgen) speaks the
 * same over WebSocket for the reconnect scenario, with consumers. */
#ifndef PARLEY_BENCH_LG_JETSTREAM_H
#define PARLEY_BENCH_LG_JETSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "hist.h"

#define LG_JS_STREAM "PARLEY"
#define LG_JS_SUBJECT_PREFIX "parley."
/* The stream's configuration: file storage, everything kept. */
#define LG_JS_STREAM_CONFIG                                              \
    "{\"name\":\"" LG_JS_STREAM "\",\"subjects\":[\"parley.>\"],"        \
    "\"storage\":\"file\",\"retention\":\"limits\",\"discard\":\"old\"," \
    "\"num_replicas\":1}"
/* JetStream's error code for "stream name already in use": creating the
 * stream again with another configuration. Creating it again with the
 * same one answers like the first time. */
#define LG_JS_ERR_STREAM_IN_USE 10058

/* 1 if a JetStream API answer (JSON) is an error; its code in *code and
 * description in desc. */
int lg_js_is_error(const char *json, size_t n, int *code, char *desc,
                   size_t desc_len);
/* The stream sequence of a JetStream delivery, from its reply subject
 * ($JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>...); 0 if none. */
uint64_t lg_js_ack_stream_seq(const char *reply, size_t n);

typedef struct lg_js_load {
    /* in */
    const char *host;
    int port;
    const char *room;
    unsigned publishers, window;
    double duration;
    size_t body_size;
    /* out */
    hist *lat;
    uint64_t ok, failed;
    char last_error[160];
} lg_js_load;

/* Runs the load (creating the stream first). 0, or -1 if it could not
 * start (last_error says why). */
int lg_js_publish_load(lg_js_load *l);

#endif
