#!/usr/bin/python3
"""grpc.health.v1.Health of a real parleyd, with a real failure: parleyd
runs under RLIMIT_FSIZE (SIGXFSZ ignored), so once its files reach the
limit every write fails with EFBIG, as on a full disk. Checked:

- Check of "", parley.v1.History and parley.v1.Stream is SERVING; an
  unknown service is NOT_FOUND; no token is needed.
- Watch sends the status at once (SERVICE_UNKNOWN for an unknown service,
  without ending the call).
- The disk fills: publishes fail with INTERNAL, then Check says
  NOT_SERVING, every Watch gets NOT_SERVING, /healthz answers 503 and the
  metric parley_core_serving is 0.
- The limit is lifted (prlimit on the running process): without any
  client write, parleyd's probe finds the disk writable again within a few
  seconds, Watch gets SERVING, /healthz 200, and a publish is stored.
- SIGTERM: watchers are told NOT_SERVING before their calls end.

usage: test_health.py PARLEYD_BINARY
"""
import importlib.util
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from opsharness import ROOT, Parleyd, check, finish, md, token, wait_for  # noqa: E402


def gen_pb2():
    """parley's and health's message classes; health_pb2 is loaded from its
    file, since its package name (grpc.health.v1) would be looked up inside
    the grpc module."""
    out = tempfile.mkdtemp(prefix="parley-health-py-")
    subprocess.run(["protoc", "-I", os.path.join(ROOT, "proto"), "--python_out", out,
                    "grpc/health/v1/health.proto", "parley/v1/message.proto",
                    "parley/v1/stream.proto"], check=True)
    sys.path.insert(0, out)
    spec = importlib.util.spec_from_file_location(
        "health_pb2", os.path.join(out, "grpc", "health", "v1", "health_pb2.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class Watcher:
    """One Watch call, its statuses collected by a thread."""

    def __init__(self, watch, req):
        self.got = []
        self.ended = None
        self.call = watch(req, timeout=120)
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        try:
            for r in self.call:
                self.got.append(r.status)
        except grpc.RpcError as e:
            self.ended = e.code()


def main():
    HP = gen_pb2()
    from parley.v1 import stream_pb2 as S
    SERVING, NOT_SERVING = HP.HealthCheckResponse.SERVING, HP.HealthCheckResponse.NOT_SERVING
    binary = sys.argv[1]
    # Room for the schema and some messages, not for many 30 KB bodies.
    limit = 512 * 1024
    srv = Parleyd(binary, extra=["--max-body", "40000"], fsize_limit=limit)
    try:
        ch = grpc.insecure_channel(srv.addr)
        grpc.channel_ready_future(ch).result(timeout=10)
        check_fn = ch.unary_unary("/grpc.health.v1.Health/Check",
                                  request_serializer=HP.HealthCheckRequest.SerializeToString,
                                  response_deserializer=HP.HealthCheckResponse.FromString)
        watch = ch.unary_stream("/grpc.health.v1.Health/Watch",
                                request_serializer=HP.HealthCheckRequest.SerializeToString,
                                response_deserializer=HP.HealthCheckResponse.FromString)
        publish = ch.unary_unary("/parley.v1.Stream/Publish",
                                 request_serializer=S.PublishRequest.SerializeToString,
                                 response_deserializer=S.PublishResponse.FromString)
        for name in ("", "parley.v1.History", "parley.v1.Stream"):
            st = check_fn(HP.HealthCheckRequest(service=name), timeout=10).status
            check(st == SERVING, "Check(%r) is SERVING without a token" % name)
        try:
            check_fn(HP.HealthCheckRequest(service="no.such.Service"), timeout=10)
            check(False, "Check of an unknown service should fail")
        except grpc.RpcError as e:
            check(e.code() == grpc.StatusCode.NOT_FOUND, "unknown service: NOT_FOUND (%s)" % e.code())
        w_all = Watcher(watch, HP.HealthCheckRequest(service=""))
        w_stream = Watcher(watch, HP.HealthCheckRequest(service="parley.v1.Stream"))
        w_unknown = Watcher(watch, HP.HealthCheckRequest(service="no.such.Service"))
        check(wait_for(lambda: w_all.got == [SERVING] and w_stream.got == [SERVING], 10),
              "Watch sends SERVING at once (%s %s)" % (w_all.got, w_stream.got))
        check(wait_for(lambda: w_unknown.got == [HP.HealthCheckResponse.SERVICE_UNKNOWN], 10)
              and w_unknown.ended is None,
              "Watch of an unknown service: SERVICE_UNKNOWN, call stays open")
        check(srv.get("/healthz") == (200, "ok\n"), "/healthz 200 ok")

        # Fill the disk.
        tok = md(token("pat"))
        body = "x" * 30000
        acked, refused = 0, None
        for i in range(200):
            try:
                publish(S.PublishRequest(room="lobby", client_msg_id="f%d" % i, body=body),
                        metadata=tok, timeout=10)
                acked += 1
            except grpc.RpcError as e:
                refused = (e.code(), dict(e.trailing_metadata() or ()).get("parley-error-code"))
                break
        check(acked > 0 and refused == (grpc.StatusCode.INTERNAL, "INTERNAL"),
              "the disk fills: %d acked, then %s" % (acked, refused))
        st = wait_for(lambda: check_fn(HP.HealthCheckRequest(service=""), timeout=10).status
                      == NOT_SERVING, 5)
        check(st, "Check says NOT_SERVING once a commit failed")
        check(wait_for(lambda: w_all.got[-1:] == [NOT_SERVING] and w_stream.got[-1:] == [NOT_SERVING], 5),
              "every Watch gets NOT_SERVING (%s %s)" % (w_all.got, w_stream.got))
        check(w_unknown.got == [HP.HealthCheckResponse.SERVICE_UNKNOWN],
              "the unknown service's watcher hears nothing more")
        check(srv.get("/healthz")[0] == 503, "/healthz 503 while the store cannot commit")
        check(wait_for(lambda: srv.metrics().get("parley_core_serving") == 0, 5),
              "parley_core_serving 0")
        m = srv.metrics()
        check((m.get("parley_core_commits_total", result="failed") or 0) >= 1,
              "parley_core_commits_total{result=failed} counts the failure")
        # Still full a few probes later (each probe needs room for ~64 KiB).
        time.sleep(4.5)
        check(check_fn(HP.HealthCheckRequest(service=""), timeout=10).status == NOT_SERVING,
              "still NOT_SERVING while the disk stays full (probes fail)")
        check(w_all.got.count(SERVING) == 1, "no flapping: one SERVING so far (%s)" % w_all.got)

        # Room again: no client writes, the probe notices.
        srv.set_fsize_limit(resource.RLIM_INFINITY)
        t0 = time.time()
        check(wait_for(lambda: w_all.got[-1:] == [SERVING], 10),
              "Watch gets SERVING again after the disk has room (%s)" % w_all.got)
        print("recovered in %.1f s" % (time.time() - t0))
        check(w_all.got == [SERVING, NOT_SERVING, SERVING], "Watch saw exactly the changes (%s)" % w_all.got)
        check(check_fn(HP.HealthCheckRequest(service="parley.v1.History"), timeout=10).status == SERVING,
              "Check SERVING again")
        check(srv.get("/healthz") == (200, "ok\n"), "/healthz 200 again")
        r = publish(S.PublishRequest(room="lobby", client_msg_id="after", body="back"),
                    metadata=tok, timeout=10)
        check(r.message.seq == acked + 1, "a publish is stored after the recovery (seq %d)" % r.message.seq)
        logs = srv.logs()
        check("NOT_SERVING" in logs and "SERVING: the store commits again" in logs,
              "the log says when health changed")
    finally:
        rc = srv.stop()
    check(rc == 0, "parleyd exits 0 (%s)" % rc)
    w_all.t.join(10)
    check(w_all.got[-1:] == [NOT_SERVING] and w_all.ended == grpc.StatusCode.UNAVAILABLE,
          "SIGTERM: watchers get NOT_SERVING, then UNAVAILABLE (%s, %s)" % (w_all.got, w_all.ended))
    return finish()


if __name__ == "__main__":
    sys.exit(main())
