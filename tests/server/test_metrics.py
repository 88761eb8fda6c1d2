#!/usr/bin/python3
"""parleyd's Prometheus metrics, scraped from its --metrics-listen HTTP
listener while real clients (python3-grpcio) use it. Checked:

- the exposition parses (every sample line, HELP and TYPE for each family,
  every name parley_core_*), GET only, 404 elsewhere;
- a publish moves the counters: calls by service/method/code, messages
  stored, commits, the batch-size histogram; a refused publish counts under
  its gRPC code; a duplicate under duplicates;
- histograms have their buckets: cumulative, +Inf equal to _count, _sum;
- gauges follow the state: open Connect streams and subscriptions (sampled
  once a second), the store's size on disk;
- a slow consumer that stops reading is cut and counted.

usage: test_metrics.py PARLEYD_BINARY
"""
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from opsharness import ROOT, Parleyd, check, finish, md, token, wait_for  # noqa: E402


def gen_pb2():
    out = tempfile.mkdtemp(prefix="parley-metrics-py-")
    subprocess.run(["protoc", "-I", os.path.join(ROOT, "proto"), "--python_out", out,
                    "parley/v1/message.proto", "parley/v1/history.proto",
                    "parley/v1/stream.proto"], check=True)
    sys.path.insert(0, out)


PUB = dict(service="parley.v1.Stream", method="Publish")


def check_histogram(m, name, **labels):
    """Cumulative buckets ending in +Inf == _count; returns _count."""
    lab = ",".join('%s="%s"' % kv for kv in labels.items())
    buckets = []
    for l, v in m.series(name + "_bucket").items():
        if all('%s="%s"' % kv in l for kv in labels.items()):
            le = l.split('le="')[1].split('"')[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), v))
    buckets.sort()
    count = m.get(name + "_count", **labels)
    ok = (len(buckets) >= 5 and buckets[-1][0] == float("inf")
          and all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:]))
          and buckets[-1][1] == count and m.get(name + "_sum", **labels) is not None)
    check(ok, "%s{%s}: %d cumulative buckets, +Inf == _count == %s" % (name, lab, len(buckets), count))
    return count or 0


def main():
    gen_pb2()
    from parley.v1 import history_pb2 as H, stream_pb2 as S
    binary = sys.argv[1]
    srv = Parleyd(binary, extra=["--max-queue", "16", "--max-body", "16000"])
    try:
        st, text = srv.get("/metrics")
        check(st == 200, "/metrics answers 200")
        m0 = srv.metrics()
        check(all(n.startswith("parley_core_") for (n, _l) in m0.values),
              "every series is parley_core_*")
        fams = {n.rsplit("_bucket", 1)[0].rsplit("_count", 1)[0].rsplit("_sum", 1)[0]
                for (n, _l) in m0.values}
        check(fams <= set(m0.typed), "every family has HELP and TYPE (%s)" % sorted(fams - set(m0.typed)))
        check(m0.typed.get("parley_core_calls_total") == "counter"
              and m0.typed.get("parley_core_call_duration_seconds") == "histogram"
              and m0.typed.get("parley_core_streams") == "gauge", "types are declared")
        check(m0.get("parley_core_calls_total", code="OK", **PUB) == 0,
              "each method is there from the start, at 0")
        check(m0.get("parley_core_build_info") == 1, "build_info")
        check(srv.get("/nope")[0] == 404, "404 for another path")
        check(srv.get("/metrics", method="POST")[0] == 405, "405 for POST")

        ch = grpc.insecure_channel(srv.addr)
        grpc.channel_ready_future(ch).result(timeout=10)
        tok = md(token("pat"))
        publish = ch.unary_unary("/parley.v1.Stream/Publish",
                                 request_serializer=S.PublishRequest.SerializeToString,
                                 response_deserializer=S.PublishResponse.FromString)
        publish(S.PublishRequest(room="lobby", client_msg_id="m1", body="hello"), metadata=tok, timeout=10)
        # A call is counted once grpc reports it over on the server, which
        # may be a moment after the client has its answer.
        m1 = wait_for(lambda: (lambda m: m if m.get("parley_core_calls_total", code="OK", **PUB) else None)(
            srv.metrics()), 5) or srv.metrics()
        d = lambda name, **l: (m1.get(name, **l) or 0) - (m0.get(name, **l) or 0)  # noqa: E731
        check(d("parley_core_calls_total", code="OK", **PUB) == 1, "a publish: calls_total{Publish,OK} +1")
        check(d("parley_core_messages_stored_total") == 1, "messages_stored_total +1")
        check(d("parley_core_commits_total", result="ok") == 1, "commits_total{ok} +1")
        check(d("parley_core_commit_batch_size_count") == 1 and d("parley_core_commit_batch_size_sum") == 1,
              "commit_batch_size observed one batch of 1")
        check(d("parley_core_call_duration_seconds_count", **PUB) == 1, "call duration observed")
        check_histogram(m1, "parley_core_call_duration_seconds", **PUB)
        check_histogram(m1, "parley_core_commit_duration_seconds")
        check_histogram(m1, "parley_core_commit_batch_size")
        check(m1.get("parley_core_call_duration_seconds_sum", **PUB) > 0, "a publish took some time")

        # A duplicate, a refusal, an unknown method.
        publish(S.PublishRequest(room="lobby", client_msg_id="m1", body="hello"), metadata=tok, timeout=10)
        for req in (S.PublishRequest(room="nope", client_msg_id="m2", body="x"),
                    S.PublishRequest(room="lobby", client_msg_id="m3", body="   ")):
            try:
                publish(req, metadata=tok, timeout=10)
            except grpc.RpcError:
                pass
        try:
            ch.unary_unary("/parley.v1.History/NoSuchMethod")(b"", timeout=10)
        except grpc.RpcError:
            pass
        m2 = wait_for(lambda: (lambda m: m if m.get("parley_core_calls_total", service="unknown") else None)(
            srv.metrics()), 5) or srv.metrics()
        check((m2.get("parley_core_publish_duplicates_total") or 0) == 1, "a duplicate is counted")
        check(m2.get("parley_core_calls_total", code="NOT_FOUND", **PUB) == 1
              and m2.get("parley_core_calls_total", code="INVALID_ARGUMENT", **PUB) == 1,
              "refusals count under their gRPC code")
        check(m2.get("parley_core_calls_total", service="unknown", code="UNIMPLEMENTED") == 1,
              "an unknown method counts as service=unknown, UNIMPLEMENTED")
        check(m2.get("parley_core_messages_stored_total") == 1, "nothing else was stored")

        # Streams and subscriptions (sampled once a second).
        out = queue.Queue()

        def frames():
            while (f := out.get()) is not None:
                yield f
        connect = ch.stream_stream("/parley.v1.Stream/Connect",
                                   request_serializer=S.ClientFrame.SerializeToString,
                                   response_deserializer=S.ServerFrame.FromString)
        call = connect(frames(), metadata=tok, timeout=60)
        out.put(S.ClientFrame(request_id=1, subscribe=S.Subscribe(room="lobby")))
        out.put(S.ClientFrame(request_id=2, subscribe=S.Subscribe(room="other")))
        got = []
        for f in call:
            got.append(f.WhichOneof("kind"))
            if got.count("subscribed") == 2:
                break
        check(wait_for(lambda: srv.metrics().get("parley_core_streams") == 1
                       and srv.metrics().get("parley_core_subscriptions") == 2
                       and srv.metrics().get("parley_core_rooms_watched") == 2, 5),
              "gauges: 1 stream, 2 subscriptions, 2 rooms watched")
        out.put(None)
        call.cancel()
        check(wait_for(lambda: srv.metrics().get("parley_core_streams") == 0
                       and srv.metrics().get("parley_core_subscriptions") == 0, 5),
              "gauges back to 0 after the stream ends")
        check(wait_for(lambda: srv.metrics().get("parley_core_calls_total",
                                                 service="parley.v1.Stream", method="Connect",
                                                 code="CANCELLED") == 1, 5),
              "a cancelled stream counts as CANCELLED")
        check((srv.metrics().get("parley_core_store_bytes", file="db") or 0) > 0
              and (srv.metrics().get("parley_core_store_bytes", file="wal") or 0) > 0,
              "store_bytes of the db and its WAL")

        # A slow consumer: a subscriber that never reads, on a channel whose
        # window stays small, falls --max-queue (16) frames behind.
        slow_ch = grpc.insecure_channel(srv.addr, options=[
            ("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", 16384),
            ("grpc.use_local_subchannel_pool", 1)])
        sconn = slow_ch.stream_stream("/parley.v1.Stream/Connect",
                                      request_serializer=S.ClientFrame.SerializeToString,
                                      response_deserializer=S.ServerFrame.FromString)
        sq = queue.Queue()

        def sframes():
            while (f := sq.get()) is not None:
                yield f
        scall = sconn(sframes(), metadata=tok, timeout=60)
        sq.put(S.ClientFrame(request_id=1, subscribe=S.Subscribe(room="other")))
        first = next(scall)  # subscribed (room empty), then it stops reading
        check(first.WhichOneof("kind") == "subscribed", "slow subscriber subscribed")
        body = "y" * 15000
        for i in range(120):
            publish(S.PublishRequest(room="other", client_msg_id="s%d" % i, body=body),
                    metadata=tok, timeout=10)
            if (srv.metrics().get("parley_core_slow_consumers_total") or 0) >= 1:
                break
        check(wait_for(lambda: srv.metrics().get("parley_core_slow_consumers_total") == 1, 5),
              "the slow consumer is cut and counted")
        check(wait_for(lambda: srv.metrics().get("parley_core_calls_total", service="parley.v1.Stream",
                                                 method="Connect", code="RESOURCE_EXHAUSTED") == 1, 5),
              "its call ended RESOURCE_EXHAUSTED")
        sq.put(None)
        scall.cancel()
        check(srv.metrics().get("parley_core_send_queue_max_frames") is not None, "queue depth gauges exist")

        # The Grafana dashboard (docs/) asks only for series that exist: the
        # core's from this scrape, the gateway's from its renderer.
        import json
        import re
        dash = json.load(open(os.path.join(ROOT, "docs", "grafana-parley.json")))
        exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
        names = set(re.findall(r"\b(parley_(?:core|gateway)_[a-z_]+)", " ".join(exprs)))
        have = set(srv.metrics().typed)
        gw_src = open(os.path.join(ROOT, "gateway", "gw_metrics.c")).read()
        unknown = [n for n in sorted(names)
                   if not (n.startswith("parley_core_") and re.sub(r"_bucket$", "", n) in have)
                   and not (n.startswith("parley_gateway_") and '"%s' % n in gw_src)]
        check(len(exprs) >= 20 and not unknown, "the dashboard's series all exist (unknown: %s)" % unknown)
    finally:
        rc = srv.stop()
    check(rc == 0, "parleyd exits 0 (%s)" % rc)
    return finish()


if __name__ == "__main__":
    sys.exit(main())
