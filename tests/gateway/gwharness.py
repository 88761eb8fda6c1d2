"""gwharness: starts a real parleyd and a real parley-gateway for one test
(temp dir, temp SQLite file, ports picked by the OS, shared JWT secret),
waits until both are ready, and stops them (SIGTERM, then SIGKILL) at the
end even when the test fails. Also mints tokens (PyJWT) and builds the
parley.v1 Python classes with protoc for binary-frame tests.

Binary paths come from the environment: PARLEYD and PARLEY_GATEWAY (set by
ctest from $<TARGET_FILE:...>); the repo root from PARLEY_ROOT."""
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import jwt

ROOT = os.environ.get("PARLEY_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))


def _read_line_matching(proc, pattern, timeout, what):
    """Reads proc's stdout until a line matches; returns the match."""
    deadline = time.time() + timeout
    rx = re.compile(pattern)
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                raise RuntimeError("%s exited (%s) before it was ready" % (what, proc.returncode))
            continue
        m = rx.search(line)
        if m:
            return m
    raise RuntimeError("%s not ready within %ss" % (what, timeout))


class Stack:
    """parleyd + parley-gateway. Extra gateway flags via gw_args."""

    def __init__(self, gw_args=(), rooms="lobby,other", start_gateway=True, pd_args=()):
        self.dir = tempfile.mkdtemp(prefix="parley-gw-test-")
        self.secret = secrets.token_hex(32)
        # A gateway in --dev runs beside a parleyd --dev: neither may be
        # given a real secret; they share the dev secret var/dev-secret.
        self.dev = "--dev" in gw_args
        self.procs = []
        self.rooms = rooms
        self.gw_args = list(gw_args)
        self.pd_args = list(pd_args)
        self.pd = None
        self.gw = None
        try:
            self._start_parleyd()
            if start_gateway:
                self.start_gateway()
        except BaseException:
            self.close()
            raise

    def env(self):
        e = dict(os.environ)
        if not self.dev:
            e["PARLEY_JWT_SECRET"] = self.secret
        return e

    def _start_parleyd(self):
        self.sock = os.path.join(self.dir, "parleyd.sock")
        db = os.path.join("var", "parley.db") if self.dev else os.path.join(self.dir, "parley.db")
        self.pd = subprocess.Popen(
            [os.environ["PARLEYD"], "--listen", "127.0.0.1:0", "--unix", self.sock,
             "--db", db, "--rooms", self.rooms,
             # the gateway tests publish in bursts as one user; the core's
             # per-user rate is tested in tests/security
             "--user-rate", "0"] + self.pd_args + (["--dev"] if self.dev else []),
            stdout=subprocess.PIPE, stderr=sys.stderr, text=True, env=self.env(),
            cwd=self.dir)
        self.procs.append(self.pd)
        m = _read_line_matching(self.pd, r"parleyd listening on 127\.0\.0\.1:(\d+)", 30, "parleyd")
        self.grpc_port = int(m.group(1))
        if self.dev:
            with open(os.path.join(self.dir, "var", "dev-secret")) as f:
                self.secret = f.read().strip()

    def start_gateway(self, upstream=None):
        up = upstream or "unix:" + self.sock
        self.gw = subprocess.Popen(
            [os.environ["PARLEY_GATEWAY"], "--listen", "127.0.0.1:0",
             "--upstream", up, "--static", os.path.join(self.dir, "static")] + self.gw_args,
            stdout=subprocess.PIPE, stderr=sys.stderr, text=True, env=self.env(),
            cwd=self.dir)
        self.procs.append(self.gw)
        m = _read_line_matching(self.gw, r"parley-gateway listening on http://127\.0\.0\.1:(\d+)/",
                                30, "parley-gateway")
        self.port = int(m.group(1))
        self.http = "http://127.0.0.1:%d" % self.port
        self.ws = "ws://127.0.0.1:%d/v1/stream" % self.port
        deadline = time.time() + 30
        while True:
            st, _ = self.get("/healthz")
            if st == 200:
                break
            if time.time() > deadline:
                raise RuntimeError("gateway /healthz never became 200")
            time.sleep(0.05)

    def token(self, sub="ann", name="Ann", role="participant", exp_in=3600, secret=None):
        return jwt.encode({"sub": sub, "name": name, "role": role,
                           "exp": int(time.time()) + exp_in},
                          secret or self.secret, algorithm="HS256")

    def request(self, method, path, body=None, token=None, headers=None):
        h = dict(headers or {})
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        if token:
            h["Authorization"] = "Bearer " + token
        req = urllib.request.Request(self.http + path, data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=20) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def get(self, path, token=None):
        return self.request("GET", path, token=token)

    def jrequest(self, method, path, body=None, token=None):
        st, raw = self.request(method, path, body, token)
        try:
            return st, json.loads(raw)
        except ValueError:
            return st, raw

    def metrics(self):
        st, raw = self.get("/metrics")
        assert st == 200
        out = {}
        for line in raw.decode().splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out

    def close(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        bad = []
        for p in reversed(self.procs):
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                bad.append("%s did not stop on SIGTERM" % p.args[0])
            if p.stdout:
                p.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        # The gateway must exit 0 on SIGTERM (under ASan: no leak, no error).
        if self.gw is not None and self.gw.returncode != 0 and not bad:
            bad.append("parley-gateway exited %s" % self.gw.returncode)
        for p in self.procs:
            if p is not self.gw and p.returncode is not None and p.returncode < 0 \
                    and p.returncode != -signal.SIGTERM:
                bad.append("parleyd died of signal %d" % -p.returncode)
        if bad and sys.exc_info()[0] is None:
            raise RuntimeError("; ".join(bad))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def proto_classes(tmpdir):
    """Compiles proto/parley/v1 with protoc --python_out; returns stream_pb2."""
    out = os.path.join(tmpdir, "py")
    os.makedirs(out, exist_ok=True)
    protos = ["parley/v1/message.proto", "parley/v1/stream.proto", "parley/v1/history.proto"]
    subprocess.check_call(["protoc", "-I", os.path.join(ROOT, "proto"), "--python_out", out] + protos)
    sys.path.insert(0, out)
    from parley.v1 import message_pb2, stream_pb2  # noqa: E402
    stream_pb2.M = message_pb2
    return stream_pb2
