"""sechelp: what the security tests share. The stack itself is the gateway
tests' harness (tests/gateway/gwharness.py: a real parleyd and
parley-gateway on OS-picked ports in a temp dir); this adds the parley.v1
Python classes, grpcio stubs by method path, and the check helpers."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "gateway"))
import gwharness  # noqa: E402,F401

import grpc  # noqa: E402


class PB:
    """The generated message modules: PB(dir).S (stream), .H (history),
    .M (message)."""

    def __init__(self, tmpdir):
        S = gwharness.proto_classes(tmpdir)
        from parley.v1 import history_pb2, message_pb2  # noqa: E402
        self.S, self.H, self.M = S, history_pb2, message_pb2


class Stubs:
    """grpcio callables for every parley.v1 method on a channel."""

    def __init__(self, ch, pb):
        H, S = pb.H, pb.S

        def u(svc, meth, req, resp):
            return ch.unary_unary("/parley.v1.%s/%s" % (svc, meth),
                                  request_serializer=req.SerializeToString,
                                  response_deserializer=resp.FromString)
        self.list_messages = u("History", "ListMessages", H.ListMessagesRequest, H.ListMessagesResponse)
        self.get_message = u("History", "GetMessage", H.GetMessageRequest, H.GetMessageResponse)
        self.edit_message = u("History", "EditMessage", H.EditMessageRequest, H.EditMessageResponse)
        self.delete_message = u("History", "DeleteMessage", H.DeleteMessageRequest, H.DeleteMessageResponse)
        self.create_room = u("History", "CreateRoom", H.CreateRoomRequest, H.CreateRoomResponse)
        self.get_room = u("History", "GetRoom", H.GetRoomRequest, H.GetRoomResponse)
        self.publish = u("Stream", "Publish", S.PublishRequest, S.PublishResponse)
        self.connect = ch.stream_stream("/parley.v1.Stream/Connect",
                                        request_serializer=S.ClientFrame.SerializeToString,
                                        response_deserializer=S.ServerFrame.FromString)
        self.raw_publish = ch.unary_unary("/parley.v1.Stream/Publish")


def md(tok):
    return (("authorization", "Bearer " + tok),)


def rpc_error(fn):
    """Runs fn; returns (grpc status code, parley-error-code trailer, details)
    of the error it raised, or None if it succeeded."""
    try:
        fn()
    except grpc.RpcError as e:
        trail = dict(e.trailing_metadata() or ())
        return e.code(), trail.get("parley-error-code"), e.details()
    return None


def expect(cond, what):
    if not cond:
        raise AssertionError(what)
    print("ok:", what, flush=True)


# ---- processes with a chosen environment (no shared secret by default) ----

import re  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

PARLEYD = os.environ.get("PARLEYD")
GATEWAY = os.environ.get("PARLEY_GATEWAY")


def clean_env(**extra):
    """os.environ without any PARLEY_* setting, plus extra."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    e.update({k: str(v) for k, v in extra.items()})
    return e


class Proc:
    """One parleyd or parley-gateway; stop() sends SIGTERM and returns the
    exit status. stderr is kept in a file (self.err_text())."""

    def __init__(self, argv, env, cwd, ready=None, timeout=30, name="proc"):
        self.name = name
        self.errpath = os.path.join(cwd, "%s.%d.err" % (name, int(time.time() * 1000) % 100000000))
        self.errf = open(self.errpath, "w")
        self.p = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE,
                                  stderr=self.errf, text=True)
        self.match = None
        if ready:
            rx = re.compile(ready)
            deadline = time.time() + timeout
            while time.time() < deadline:
                line = self.p.stdout.readline()
                if not line:
                    if self.p.poll() is not None:
                        raise RuntimeError("%s exited %s before it was ready: %s"
                                           % (name, self.p.returncode, self.err_text()))
                    continue
                m = rx.search(line)
                if m:
                    self.match = m
                    return
            raise RuntimeError("%s not ready in %ss" % (name, timeout))

    def err_text(self):
        if not self.errf.closed:
            self.errf.flush()
        with open(self.errpath) as f:
            return f.read()

    def wait_exit(self, timeout=30):
        try:
            return self.p.wait(timeout)
        finally:
            self.errf.close()

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(15)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        if self.p.stdout:
            self.p.stdout.close()
        self.errf.close()
        return self.p.returncode


def parleyd(d, args=(), env=None, ready=True, name="parleyd"):
    argv = [PARLEYD, "--listen", "127.0.0.1:0", "--unix", os.path.join(d, "parleyd.sock"),
            "--db", os.path.join(d, "db", "parley.db"), "--rooms", "lobby"] + list(args)
    return Proc(argv, env if env is not None else clean_env(), d,
                r"parleyd listening on 127\.0\.0\.1:(\d+)" if ready else None, name=name)


def gateway(d, args=(), env=None, ready=True, name="gateway", scheme="http"):
    argv = [GATEWAY, "--listen", "127.0.0.1:0", "--upstream", "unix:" + os.path.join(d, "parleyd.sock"),
            "--static", d] + list(args)
    return Proc(argv, env if env is not None else clean_env(), d,
                r"parley-gateway listening on %s://[^:]+:(\d+)/" % scheme if ready else None, name=name)


def write_private(path, text, mode=0o600):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def http(method, url, token=None, body=None, headers=None, context=None):
    """(status, parsed JSON or raw bytes, headers)."""
    import json
    import urllib.error
    import urllib.request
    h = dict(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    if token:
        h["Authorization"] = "Bearer " + token
    req = urllib.request.Request(url, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=20, context=context) as r:
            raw, st, hd = r.read(), r.status, dict(r.headers)
    except urllib.error.HTTPError as e:
        raw, st, hd = e.read(), e.code, dict(e.headers)
    try:
        return st, json.loads(raw), hd
    except ValueError:
        return st, raw, hd
