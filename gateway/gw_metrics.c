/* gw_metrics.c: the gateway's counters as Prometheus text (GET /metrics):
 * connections, rooms, messages in and out, drops by reason, upstream state. */
#include "gw.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

char *gw_metrics_render(gw_server *s, size_t *len)
{
    char *out = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&out, &n);
    if (!f) return NULL;
    const gw_metrics *m = &s->m;
#define G(name, help, v)                                             \
    fprintf(f,                                                       \
            "# HELP " name " " help "\n# TYPE " name " gauge\n" name \
            " %" PRIu64 "\n",                                        \
            (uint64_t)(v))
#define C(name, help, v)                                               \
    fprintf(f,                                                         \
            "# HELP " name " " help "\n# TYPE " name " counter\n" name \
            " %" PRIu64 "\n",                                          \
            (uint64_t)(v))
    G("parley_gateway_connections", "Open WebSocket sessions.",
      gw_conn_count(s));
    C("parley_gateway_connections_total", "WebSocket sessions accepted.",
      m->ws_accepted);
    G("parley_gateway_rooms", "Rooms with an upstream subscription.",
      gw_rooms_count(s));
    C("parley_gateway_messages_in_total", "WebSocket messages received.",
      m->msgs_in);
    C("parley_gateway_messages_out_total",
      "ServerFrames sent on WebSockets (alone or in a batch).", m->msgs_out);
    C("parley_gateway_socket_writes_total",
      "Socket writes on WebSockets (each carries every frame that was "
      "waiting).",
      m->writes);
    C("parley_gateway_batches_out_total",
      "ServerFrame{batch} messages sent (SessionOptions.batch).",
      m->batches_out);
    C("parley_gateway_bytes_out_total", "WebSocket payload bytes sent.",
      m->bytes_out);
    C("parley_gateway_upstream_events_total", "Events received from the core.",
      m->upstream_events);
    C("parley_gateway_upstream_errors_total", "Upstream calls that failed.",
      m->upstream_errors);
    C("parley_gateway_upstream_unary_calls_total",
      "Unary calls to the core finished.", m->upstream_unary);
    C("parley_gateway_upstream_links_total",
      "Shared Stream.Connect streams (links) opened.", m->upstream_links);
    C("parley_gateway_upstream_messages_in_total",
      "gRPC messages read on the links.", m->upstream_msgs_in);
    C("parley_gateway_upstream_frames_in_total",
      "ServerFrames in those messages.", m->upstream_frames_in);
    C("parley_gateway_upstream_messages_out_total",
      "gRPC messages sent on the links.", m->upstream_msgs_out);
    C("parley_gateway_upstream_frames_out_total",
      "ClientFrames in those messages.", m->upstream_frames_out);
    C("parley_gateway_upstream_publish_frames_total",
      "Publishes sent upstream.", m->pub_frames);
    C("parley_gateway_replay_ring_total",
      "Subscriptions replayed from the ring.", m->replay_ring);
    C("parley_gateway_replay_history_total",
      "Subscriptions replayed through History.", m->replay_history);
    C("parley_gateway_http_requests_total", "HTTP requests.", m->http_requests);
    C("parley_gateway_access_checks_total",
      "Times the core was asked whether a user may read a room.",
      m->access_checks);
    C("parley_gateway_access_refused_total",
      "Subscriptions the core refused, or ended after a room event.",
      m->access_refused);
    C("parley_gateway_room_events_total",
      "Room events (moderation, settings, members) fanned out.",
      m->room_events);
    fprintf(f, "# HELP parley_gateway_drops_total Sessions closed or refused "
               "by a limit.\n"
               "# TYPE parley_gateway_drops_total counter\n");
    fprintf(
        f, "parley_gateway_drops_total{reason=\"slow_consumer\"} %" PRIu64 "\n",
        m->drops_slow);
    fprintf(f, "parley_gateway_drops_total{reason=\"rate\"} %" PRIu64 "\n",
            m->drops_rate);
    fprintf(f, "parley_gateway_drops_total{reason=\"too_big\"} %" PRIu64 "\n",
            m->drops_big);
    fprintf(f,
            "parley_gateway_drops_total{reason=\"unauthenticated\"} %" PRIu64
            "\n",
            m->drops_unauth);
    fprintf(f, "parley_gateway_drops_total{reason=\"origin\"} %" PRIu64 "\n",
            m->refused_origin);
    fprintf(f,
            "parley_gateway_drops_total{reason=\"max_connections\"} %" PRIu64
            "\n",
            m->refused_full);
    fprintf(f,
            "parley_gateway_drops_total{reason=\"max_connections_per_ip\"} "
            "%" PRIu64 "\n",
            m->refused_ip);
    fprintf(
        f, "parley_gateway_drops_total{reason=\"token_expired\"} %" PRIu64 "\n",
        m->drops_expired);
    fprintf(
        f,
        "# HELP parley_gateway_event_encodes_total Live events encoded, per "
        "wire format (once per event, whatever the number of sockets).\n"
        "# TYPE parley_gateway_event_encodes_total counter\n"
        "parley_gateway_event_encodes_total{format=\"proto\"} %" PRIu64 "\n"
        "parley_gateway_event_encodes_total{format=\"json\"} %" PRIu64 "\n",
        m->encodes[0], m->encodes[1]);
    C("parley_gateway_event_passthrough_total",
      "Live events sent to binary sessions in the core's own encoding, not "
      "encoded again.",
      m->passthrough);
    C("parley_gateway_core_failures_total",
      "Times a core was found failed (stream ended, health check "
      "unanswered); its rooms moved.",
      m->core_failures);
    C("parley_gateway_rooms_moved_total",
      "Room subscriptions moved to another core (resumed from the last rev).",
      m->rooms_moved);
    int usable = 0, n_cores = gw_up_cores(s, &usable);
    G("parley_gateway_cores", "Cores in --upstream.", (uint64_t)n_cores);
    G("parley_gateway_cores_usable",
      "Cores that may be given rooms now (not failed, SERVING).",
      (uint64_t)usable);
    fprintf(f,
            "# HELP parley_gateway_upstream_up 1 if the core is reachable.\n"
            "# TYPE parley_gateway_upstream_up gauge\n"
            "parley_gateway_upstream_up{state=\"%s\"} %d\n",
            gw_up_state_name(s), gw_up_healthy(s));
#undef G
#undef C
    if (fclose(f) != 0) {
        free(out);
        return NULL;
    }
    *len = n;
    return out;
}
