"""Shared helpers of the operations tests (reflection, health, metrics,
logs, the CLI): a real parleyd in a temp dir on OS-picked ports, with its
metrics listener, tokens minted with the test's secret, and a check()
that records failures and lets the test go on."""
import os
import re
import resource
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import jwt

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SECRET = "ops-test-secret-0123456789abcdef-xyz"

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)
    else:
        print("ok:", what, flush=True)
    return cond


def finish():
    """Exit status of the test: 1 if any check failed."""
    if failures:
        print("%d check(s) failed:" % len(failures))
        for f in failures:
            print("  -", f)
        return 1
    print("all checks passed")
    return 0


def token(sub, role="participant", name=None, exp_in=3600, secret=SECRET):
    claims = {"sub": sub, "name": name or sub.capitalize(), "role": role,
              "exp": int(time.time()) + exp_in}
    return jwt.encode(claims, secret, algorithm="HS256")


def md(tok):
    return (("authorization", "Bearer " + tok),)


def wait_for(pred, timeout, step=0.05):
    """Polls pred() until it is truthy (returns its value) or the time is up
    (returns the last falsy value): the caller's check() decides."""
    deadline = time.time() + timeout
    while True:
        v = pred()
        if v or time.time() > deadline:
            return v
        time.sleep(step)


class Parleyd:
    """parleyd --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 in dir (a
    fresh temp dir by default). fsize_limit: RLIMIT_FSIZE soft limit in
    bytes with SIGXFSZ ignored, a real full disk for SQLite (raise it later
    with set_fsize_limit)."""

    def __init__(self, binary, extra=(), env=None, dir=None, fsize_limit=None,
                 secret=SECRET, metrics=True, log_name="parleyd.log"):
        self.dir = dir or tempfile.mkdtemp(prefix="parley-ops-")
        self.db = os.path.join(self.dir, "parley.db")
        self.sock = os.path.join(self.dir, "parleyd.sock")
        self.log_path = os.path.join(self.dir, log_name)
        self.stdout_path = self.log_path + ".out"
        # load in bursts as one user: the core's per-user rate is tested in
        # tests/security
        args = [binary, "--listen", "127.0.0.1:0", "--unix", self.sock,
                "--db", self.db, "--rooms", "lobby,other", "--user-rate", "0"]
        if metrics:
            args += ["--metrics-listen", "127.0.0.1:0"]
        args += list(extra)
        e = dict(os.environ)
        for k in list(e):
            if k.startswith("PARLEY_"):
                del e[k]
        if secret is not None:
            e["PARLEY_JWT_SECRET"] = secret
        e.update(env or {})

        def pre():
            if fsize_limit is not None:
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
                hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
                resource.setrlimit(resource.RLIMIT_FSIZE, (fsize_limit, hard))

        self.log = open(self.log_path, "w")
        self.out = open(self.stdout_path, "w")
        self.p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log,
                                  env=e, text=True, preexec_fn=pre)
        self.addr = self.metrics_url = None
        deadline = time.time() + 30
        while time.time() < deadline:
            line = self.p.stdout.readline()
            if not line:
                raise RuntimeError("parleyd exited before it was ready:\n" +
                                   open(self.log_path).read())
            self.out.write(line)
            if line.startswith("parleyd listening on "):
                self.addr = line.split()[3]
                m = re.search(r"metrics on (http://\S+)/metrics", line)
                self.http = m.group(1) if m else None
                break
        if not self.addr:
            raise RuntimeError("parleyd not ready in time")
        self.out.flush()

    def set_fsize_limit(self, limit):
        resource.prlimit(self.p.pid, resource.RLIMIT_FSIZE,
                         (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    def get(self, path, method="GET"):
        """(status, body text) of an HTTP request to the metrics listener."""
        req = urllib.request.Request(self.http + path, method=method)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def metrics(self):
        st, text = self.get("/metrics")
        if st != 200:
            raise RuntimeError("/metrics answered %d" % st)
        return parse_metrics(text)

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                rc = self.p.wait(15)
            except subprocess.TimeoutExpired:
                self.p.kill()
                rc = self.p.wait()
        else:
            rc = self.p.returncode
        rest = self.p.stdout.read()
        self.out.write(rest or "")
        self.out.close()
        self.log.close()
        return rc

    def logs(self):
        return open(self.log_path).read()

    def stdout(self):
        return open(self.stdout_path).read()


LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def parse_metrics(text):
    """{(name, labels-string): float}, plus the set of families that have
    HELP and TYPE; raises on a line that is not Prometheus text."""
    values = {}
    typed = {}
    for ln in text.splitlines():
        if ln.startswith("# HELP "):
            continue
        if ln.startswith("# TYPE "):
            _, _, name, kind = ln.split(" ", 3)
            typed[name] = kind
            continue
        m = LINE.match(ln)
        if not m:
            raise ValueError("not a Prometheus sample line: %r" % ln)
        values[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return Metrics(values, typed)


class Metrics:
    def __init__(self, values, typed):
        self.values = values
        self.typed = typed

    def get(self, name, **labels):
        """The sample whose labels include the given ones (sum if several)."""
        total, found = 0.0, False
        for (n, l), v in self.values.items():
            if n != name:
                continue
            if all('%s="%s"' % (k, w) in l for k, w in labels.items()):
                total += v
                found = True
        return total if found else None

    def series(self, name):
        return {l: v for (n, l), v in self.values.items() if n == name}
