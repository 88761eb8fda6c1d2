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
        self.lines = []  # stdout lines read up to the ready line
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
                self.lines.append(line)
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


# ---- a test PKI, made with the openssl command at test time ----

def _ossl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True)


def make_pki(d):
    """A root CA, an intermediate, server leaves signed by the intermediate
    (SAN 127.0.0.1 and localhost; two, for reload tests) and a client
    certificate signed by the root (mutual TLS). Returns a dict of paths;
    keys are mode 600."""
    p = os.path.join(d, "pki")
    os.makedirs(p, exist_ok=True)
    ext = os.path.join(p, "ext.cnf")
    with open(ext, "w") as f:
        f.write("[ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
                "[leaf]\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
                "[client]\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=clientAuth\n")
    _ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
          "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=parley test root",
          "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
          cwd=p)

    def issue(name, signer, section, cn):
        _ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
              "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn, cwd=p)
        _ossl("x509", "-req", "-in", name + ".csr", "-CA", signer + ".pem", "-CAkey", signer + ".key",
              "-CAcreateserial", "-out", name + ".pem", "-days", "2", "-extfile", ext, "-extensions", section, cwd=p)
    issue("inter", "ca", "ca", "parley test intermediate")
    issue("server", "inter", "leaf", "parley test server 1")
    issue("server2", "inter", "leaf", "parley test server 2")
    issue("client", "ca", "client", "gateway")
    issue("stranger", "inter", "client", "stranger")  # signed, but not by the client CA root alone
    for f in os.listdir(p):
        if f.endswith(".key"):
            os.chmod(os.path.join(p, f), 0o600)
    # full chains (leaf + intermediate), as a certificate file may hold
    for n in ("server", "server2"):
        with open(os.path.join(p, n + "-full.pem"), "w") as out:
            out.write(open(os.path.join(p, n + ".pem")).read() + open(os.path.join(p, "inter.pem")).read())
    return {k: os.path.join(p, v) for k, v in {
        "ca": "ca.pem", "inter": "inter.pem", "server": "server.pem", "server_key": "server.key",
        "server_full": "server-full.pem", "server2": "server2.pem", "server2_key": "server2.key",
        "server2_full": "server2-full.pem", "client": "client.pem", "client_key": "client.key",
        "stranger": "stranger.pem", "stranger_key": "stranger.key"}.items()}


def cert_cn(pem_der_or_path):
    """The subject CN of a certificate (PEM path or DER bytes)."""
    if isinstance(pem_der_or_path, bytes):
        args = ["openssl", "x509", "-inform", "DER", "-noout", "-subject"]
        out = subprocess.run(args, input=pem_der_or_path, capture_output=True, check=True).stdout.decode()
    else:
        out = subprocess.run(["openssl", "x509", "-noout", "-subject", "-in", pem_der_or_path],
                             capture_output=True, check=True, text=True).stdout
    return out.split("CN", 1)[1].lstrip(" =").strip()


def peer_cn(host, port, ca, alpn=("h2",)):
    """Connects with TLS (verifying against ca) and returns the server
    certificate's CN."""
    import ssl
    ctx = ssl.create_default_context(cafile=ca)
    ctx.set_alpn_protocols(list(alpn))
    with socket_mod.create_connection((host, port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as t:
            return cert_cn(t.getpeercert(binary_form=True))


import socket as socket_mod  # noqa: E402
