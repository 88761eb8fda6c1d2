/* ops_http.h: parleyd's operations listener, a small HTTP server on an
 * address of its own (--metrics-listen), apart from the gRPC port:
 *
 *   GET /metrics   the metrics registry as Prometheus text
 *   GET /healthz   200 "ok" while the core can commit, else 503
 *                  "not serving" (what grpc.health.v1 says, for probes
 *                  that speak only HTTP)
 *
 * Anything else is 404; a method other than GET (or HEAD) 405. It runs on
 * libwebsockets (the gateway's HTTP library) in a thread of its own, so a
 * scrape never waits for the gRPC loop and the loop never waits for a
 * scrape: it reads the registry (thread-safe) and the health callback
 * (which must be thread-safe too). */
#ifndef PARLEY_OPS_HTTP_H
#define PARLEY_OPS_HTTP_H

#include <stddef.h>

#include "metrics.h"

typedef struct ops_http ops_http;

typedef struct ops_http_opts {
    const char *listen; /* "HOST:PORT"; port 0 lets the OS pick */
    metrics *reg;
    int (*serving)(void *ud); /* 1: /healthz answers 200 */
    void *ud;
} ops_http_opts;

/* Binds and starts the thread. NULL with a message in err. */
ops_http *ops_http_start(const ops_http_opts *o, char *err, size_t errlen);
/* The port bound (the real one when asked for 0). */
int ops_http_port(const ops_http *h);
/* Stops the thread and closes the socket. NULL is a no-op. */
void ops_http_stop(ops_http *h);

#endif
