"""tests/cluster/harness.py: real processes for the cluster tests.

nats-server (alone or a cluster with routes), parleyd cores on one
PostgreSQL database (the cluster of tests/pg/pgtmp, named by the
PARLEY_PG_* variables `pgtmp exec` sets), parley-gateway, and clients on
the gRPC API that record every frame they receive. Each process may run
under a command prefix (["ip", "netns", "exec", NS]) so the cluster test
can put it in a network namespace of its own.

Nothing here decides what a test asserts: checks() lists the findings.
"""
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time

import grpc
import jwt

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SECRET = "cluster-test-secret-0123456789abcdefgh"
PSQL = "/usr/lib/postgresql/15/bin/psql"
NATS = "/usr/sbin/nats-server" if os.path.exists("/usr/sbin/nats-server") else "nats-server"


def gen_pb2(tmp):
    """protoc --python_out of the contract into tmp/py, importable."""
    out = os.path.join(tmp, "py")
    os.makedirs(out, exist_ok=True)
    protos = [os.path.join("parley", "v1", f) for f in os.listdir(os.path.join(ROOT, "proto", "parley", "v1"))
              if f.endswith(".proto")]
    subprocess.run(["protoc", "-I", os.path.join(ROOT, "proto"), "--python_out", out] + protos, check=True)
    sys.path.insert(0, out)


def token(sub, role="participant", exp_in=24 * 3600):
    claims = {"sub": sub, "name": sub.capitalize(), "role": role, "exp": int(time.time()) + exp_in}
    return jwt.encode(claims, SECRET, algorithm="HS256")


def md(tok):
    return (("authorization", "Bearer " + tok),)


class Proc:
    """A child process with its output in a log file."""

    def __init__(self, name, argv, tmp, prefix=(), env=None, ready=None, timeout=30):
        self.name = name
        self.argv = list(argv)
        self.prefix = list(prefix)
        self.logpath = os.path.join(tmp, name + ".log")
        self.env = dict(os.environ, **(env or {}))
        self.ready_re = ready
        self.timeout = timeout
        self.p = None
        self.match = None

    def start(self):
        log = open(self.logpath, "a")
        log.write("=== start %s: %s\n" % (time.strftime("%H:%M:%S"), " ".join(self.prefix + self.argv)))
        log.flush()
        self.p = subprocess.Popen(self.prefix + self.argv, stdout=subprocess.PIPE, stderr=log,
                                  env=self.env, text=True)
        log.close()
        if self.ready_re:
            self.match = self._wait_ready()
        # Keep draining stdout so the child never blocks on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()
        return self

    def _wait_ready(self):
        deadline = time.time() + self.timeout
        rx = re.compile(self.ready_re)
        out = []
        while time.time() < deadline:
            line = self.p.stdout.readline()
            if not line:
                raise RuntimeError("%s exited before it was ready: %s\n%s" % (
                    self.name, "".join(out[-20:]), self.tail()))
            out.append(line)
            with open(self.logpath, "a") as f:
                f.write(line)
            m = rx.search(line)
            if m:
                return m
        raise RuntimeError("%s not ready in %ss" % (self.name, self.timeout))

    def _drain(self):
        p = self.p
        try:
            for line in p.stdout:
                with open(self.logpath, "a") as f:
                    f.write(line)
        except (ValueError, OSError):
            pass

    def tail(self, n=30):
        try:
            with open(self.logpath) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def signal(self, sig):
        if self.alive():
            os.kill(self.p.pid, sig)

    def kill9(self):
        if self.alive():
            self.p.kill()
            self.p.wait()

    def stop(self, timeout=10):
        if not self.alive():
            return self.p.returncode if self.p else None
        self.p.send_signal(signal.SIGTERM)
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return self.p.wait()


class Nats(Proc):
    """One nats-server; a member of a cluster when given its routes."""

    def __init__(self, tmp, name="nats", addr="127.0.0.1", port=-1, cluster_port=None, routes=(), prefix=()):
        self.addr = addr
        self.port = port
        argv = [NATS, "-a", addr, "-p", str(port), "-n", name]
        if cluster_port:
            argv += ["--cluster_name", "parley-test", "--cluster", "nats://%s:%d" % (addr, cluster_port)]
            if routes:
                argv += ["--routes", ",".join(routes)]
        # nats-server logs to stderr; its readiness line is read from there.
        super().__init__(name, argv, tmp, prefix=prefix)

    def start(self):
        log = open(self.logpath, "a")
        log.write("=== start %s\n" % time.strftime("%H:%M:%S"))
        log.close()
        self.p = subprocess.Popen(self.prefix + self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  env=self.env, text=True)
        deadline = time.time() + 20
        rx = re.compile(r"Listening for client connections on [^\s]*:(\d+)")
        while time.time() < deadline:
            line = self.p.stderr.readline()
            if not line:
                raise RuntimeError("nats-server exited: " + self.tail())
            with open(self.logpath, "a") as f:
                f.write(line)
            m = rx.search(line)
            if m:
                self.port = int(m.group(1))
                break
        else:
            raise RuntimeError("nats-server not ready")
        # Fixed from now on: a restart comes back on the same port.
        i = self.argv.index("-p")
        self.argv[i + 1] = str(self.port)

        def drain(p=self.p):
            try:
                for line in p.stderr:
                    with open(self.logpath, "a") as f:
                        f.write(line)
            except (ValueError, OSError):
                pass
        threading.Thread(target=drain, daemon=True).start()
        return self

    def url(self):
        return "nats://%s:%d" % (self.addr, self.port)


def pg_database(name):
    """A fresh database on the pgtmp cluster; its URI for parleyd."""
    admin = os.environ["PARLEY_PG_URI"]
    subprocess.run([PSQL, "-q", "-v", "ON_ERROR_STOP=1", admin, "-c", "DROP DATABASE IF EXISTS " + name],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run([PSQL, "-q", "-v", "ON_ERROR_STOP=1", admin, "-c", "CREATE DATABASE " + name],
                   check=True, stdout=subprocess.DEVNULL)
    return pg_uri(name)


def pg_uri(name, host=None, port=None):
    return "postgres://%s@/%s?host=%s&port=%s" % (
        os.environ["PARLEY_PG_USER"], name, host or os.environ["PARLEY_PG_HOST"],
        port or os.environ["PARLEY_PG_PORT"])


def psql(uri, sql):
    r = subprocess.run([PSQL, "-qAt", "-v", "ON_ERROR_STOP=1", uri, "-c", sql], check=True,
                       stdout=subprocess.PIPE, text=True)
    return r.stdout


class Core(Proc):
    """A parleyd on a PostgreSQL store, on the bus when given NATS URLs."""

    def __init__(self, binary, tmp, name, store, bus=None, listen="127.0.0.1:0", rooms="lobby",
                 extra=(), prefix=(), metrics=True):
        # Load tests: no per-user write rate. Plaintext gRPC also beyond
        # loopback: the cluster test's private namespaces (production puts
        # TLS there, docs/deploy.md).
        argv = [binary, "--listen", listen, "--unix", "none", "--store", store, "--rooms", rooms,
                "--db", os.path.join(tmp, name, "unused.db"), "--user-rate", "0", "--allow-plaintext"]
        if bus:
            argv += ["--bus", bus, "--bus-name", name]
        if metrics:
            host = listen.rsplit(":", 1)[0]
            argv += ["--metrics-listen", host + ":0"]
        argv += list(extra)
        super().__init__(name, argv, tmp, prefix=prefix, env={"PARLEY_JWT_SECRET": SECRET},
                         ready=r"parleyd listening on (\S+)(?:.*metrics on (\S+))?")

    def start(self):
        super().start()
        self.addr = self.match.group(1)
        self.metrics_url = self.match.group(2)
        return self

    def metric(self, name, labels=""):
        """The value of one series on /metrics (0 when absent)."""
        import urllib.request
        text = urllib.request.urlopen(self.metrics_url, timeout=5).read().decode()
        want = name + ("{" + labels + "}" if labels else "")
        for line in text.splitlines():
            if line.startswith(want + " "):
                return float(line.split()[1])
        return 0.0


class Api:
    """Unary calls on one core."""

    def __init__(self, addr):
        from parley.v1 import history_pb2 as H, stream_pb2 as S
        self.H, self.S = H, S
        self.ch = grpc.insecure_channel(addr)
        self._pub = self.ch.unary_unary("/parley.v1.Stream/Publish", request_serializer=S.PublishRequest.SerializeToString,
                                        response_deserializer=S.PublishResponse.FromString)
        self._create = self.ch.unary_unary("/parley.v1.History/CreateRoom",
                                           request_serializer=H.CreateRoomRequest.SerializeToString,
                                           response_deserializer=H.CreateRoomResponse.FromString)
        self._list = self.ch.unary_unary("/parley.v1.History/ListMessages",
                                         request_serializer=H.ListMessagesRequest.SerializeToString,
                                         response_deserializer=H.ListMessagesResponse.FromString)

    def publish(self, room, cid, body, tok, timeout=10):
        return self._pub(self.S.PublishRequest(room=room, client_msg_id=cid, body=body), metadata=md(tok),
                         timeout=timeout)

    def create_room(self, name, timeout=10):
        return self._create(self.H.CreateRoomRequest(name=name), metadata=md(token("olga", "organizer")),
                            timeout=timeout)

    def all_messages(self, room, timeout=10):
        """Every message of room by rev (catch-up from 0, paged)."""
        out, after = [], 0
        while True:
            r = self._list(self.H.ListMessagesRequest(room=room, after_rev=after, limit=1000),
                           metadata=md(token("audit")), timeout=timeout)
            out += list(r.messages)
            if not r.has_more or not r.messages:
                return out
            after = r.messages[-1].rev

    def close(self):
        self.ch.close()


class Subscriber:
    """One Connect stream on a core, subscribed to rooms; records every
    event (room -> list of (rev, seq, replay)) and each Subscribed."""

    def __init__(self, addr, user="watcher"):
        from parley.v1 import stream_pb2 as S
        self.S = S
        self.ch = grpc.insecure_channel(addr)
        self.outq = queue.Queue()
        self.events = {}
        self.subscribed = {}
        self.errors = []
        self.ended = None
        self.lock = threading.Lock()
        self.cv = threading.Condition(self.lock)
        connect = self.ch.stream_stream("/parley.v1.Stream/Connect",
                                        request_serializer=S.ClientFrame.SerializeToString,
                                        response_deserializer=S.ServerFrame.FromString)

        def frames():
            while True:
                f = self.outq.get()
                if f is None:
                    return
                yield f
        self.call = connect(frames(), metadata=md(token(user)))
        self.rid = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            for f in self.call:
                k = f.WhichOneof("kind")
                with self.cv:
                    if k == "event":
                        m = f.event.message
                        self.events.setdefault(m.room, []).append((m.rev, m.seq, f.event.replay))
                    elif k == "subscribed":
                        self.subscribed[f.subscribed.room.name] = f.subscribed.room.head_rev
                    elif k == "error":
                        self.errors.append(f.error.detail)
                    self.cv.notify_all()
        except grpc.RpcError as e:
            with self.cv:
                self.ended = e
                self.cv.notify_all()
        with self.cv:
            if self.ended is None:
                self.ended = "finished"
            self.cv.notify_all()

    def subscribe(self, room, after=0, wait=True):
        self.rid += 1
        self.outq.put(self.S.ClientFrame(request_id=self.rid, subscribe=self.S.Subscribe(room=room, resume_after_rev=after)))
        if wait:
            with self.cv:
                if not self.cv.wait_for(lambda: room in self.subscribed or self.ended, 20):
                    raise RuntimeError("no Subscribed for " + room)
                if room not in self.subscribed:
                    raise RuntimeError("stream ended: %r" % (self.ended,))

    def revs(self, room):
        with self.lock:
            return [e[0] for e in self.events.get(room, [])]

    def wait_rev(self, room, rev, timeout):
        """Waits until an event of room with rev >= rev arrived; True if so."""
        with self.cv:
            return self.cv.wait_for(lambda: any(e[0] >= rev for e in self.events.get(room, [])[-1:]) or self.ended,
                                    timeout) and not self.ended

    def close(self):
        self.outq.put(None)
        self.call.cancel()
        self.ch.close()


def exactly_once_in_order(revs, last):
    """Why revs is not exactly 1..last in order, or None."""
    if revs == list(range(1, last + 1)):
        return None
    seen, dups, order = set(), [], []
    for i, r in enumerate(revs):
        if r in seen:
            dups.append(r)
        seen.add(r)
        if i and r <= revs[i - 1]:
            order.append((revs[i - 1], r))
    missing = sorted(set(range(1, last + 1)) - seen)
    return "missing %s, duplicates %s, out of order %s (got %d events)" % (
        missing[:10], dups[:10], order[:10], len(revs))


class Gateway(Proc):
    """A parley-gateway in front of the given cores (gRPC addresses)."""

    def __init__(self, binary, tmp, name, cores, listen="127.0.0.1:0", extra=(), prefix=()):
        static = os.path.join(tmp, "static")
        os.makedirs(static, exist_ok=True)
        argv = [binary, "--listen", listen, "--upstream", ",".join(cores), "--static", static,
                "--allow-plaintext"] + list(extra)
        super().__init__(name, argv, tmp, prefix=prefix, env={"PARLEY_JWT_SECRET": SECRET},
                         ready=r"parley-gateway listening on http://([^/]+)/")

    def start(self):
        super().start()
        self.hostport = self.match.group(1)
        i = self.argv.index("--listen")
        self.argv[i + 1] = self.hostport  # a restart comes back on the same port
        self.ws = "ws://%s/v1/stream" % self.hostport
        return self

    def metrics(self):
        import urllib.request
        text = urllib.request.urlopen("http://%s/metrics" % self.hostport, timeout=5).read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out


def store_check(api, rooms, acked):
    """Every acked message is stored once, seqs and revs dense: the list of
    what is wrong (empty if nothing) and the head of each room."""
    bad, heads = [], {}
    stored = {}
    for r in rooms:
        msgs = api.all_messages(r)
        heads[r] = msgs[-1].rev if msgs else 0
        seqs = [m.seq for m in msgs]
        if seqs != list(range(1, len(msgs) + 1)):
            bad.append("%s: seqs not dense" % r)
        if [m.rev for m in msgs] != list(range(1, len(msgs) + 1)):
            bad.append("%s: revs not dense" % r)
        for m in msgs:
            key = m.author.id + "/" + m.client_msg_id
            if key in stored:
                bad.append("%s: %s stored twice" % (r, key))
            stored[key] = (r, m.seq)
    for (author, cid), (room, seq) in acked.items():
        if stored.get(author + "/" + cid) != (room, seq):
            bad.append("acked %s/%s (%s #%d) is not stored as acked: %s" % (
                author, cid, room, seq, stored.get(author + "/" + cid)))
    return bad, heads


def client_check(clients, heads):
    """Each client saw every rev of its rooms exactly once, in order, and
    ends at the head: the list of what is wrong."""
    bad = []
    for c in clients:
        if c.dups:
            bad.append("%s: duplicates %s" % (c.name, c.dups[:5]))
        if c.gaps:
            bad.append("%s: gaps %s" % (c.name, c.gaps[:5]))
        for r in c.rooms:
            if c.last[r] != heads[r] or c.count[r] != heads[r]:
                bad.append("%s: %s at rev %d with %d events, head %d" % (
                    c.name, r, c.last[r], c.count[r], heads[r]))
    return bad


def longest_pause(times, t0, t1):
    """The longest stretch without a timestamp in [t0, t1]."""
    ts = sorted(t for t in times if t0 <= t <= t1)
    if not ts:
        return t1 - t0
    gaps = [ts[0] - t0] + [b - a for a, b in zip(ts, ts[1:])] + [t1 - ts[-1]]
    return max(gaps)
