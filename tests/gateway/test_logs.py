#!/usr/bin/python3
"""The gateway's log lines: one line per event with a level, text by
default, JSON lines with --log-format json, only the lines at or above
--log-level, and never a token or a secret.

Each run starts a real parleyd and a real parley-gateway (the JWT secret
in the environment), then does what carries a token or makes the gateway
talk: REST calls with a valid and a forged token, a token as a room name,
a WebSocket session that authenticates (first with the forged token) and
publishes a body holding the token and the secret, then parleyd killed
with SIGKILL so that the gateway reports its core gone. The gateway's
stderr is then read line by line.

usage: test_logs.py  (PARLEYD, PARLEY_GATEWAY from the environment)
"""
import asyncio
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import jwt
import websockets

FAILS = []


def check(ok, what):
    print(("ok: " if ok else "FAIL: ") + what, flush=True)
    if not ok:
        FAILS.append(what)


def token(sub, secret, role="participant"):
    return jwt.encode({"sub": sub, "name": sub, "role": role, "exp": int(time.time()) + 3600},
                      secret, algorithm="HS256")


def line_of(proc, pattern, what, timeout=30):
    rx, deadline = re.compile(pattern), time.time() + timeout
    while time.time() < deadline:
        ln = proc.stdout.readline()
        if not ln and proc.poll() is not None:
            raise RuntimeError("%s exited before it was ready" % what)
        m = rx.search(ln or "")
        if m:
            return m
    raise RuntimeError("%s not ready" % what)


def http(base, path, tok=None):
    req = urllib.request.Request(base + path, headers={"Authorization": "Bearer " + tok} if tok else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


async def session(ws_url, good, forged, secret):
    async with websockets.connect(ws_url, subprotocols=["parley.v1.json"]) as c:
        await c.send(json.dumps({"requestId": "1", "authenticate": {"token": forged}}))
        first = json.loads(await asyncio.wait_for(c.recv(), 10))
        try:
            await c.send(json.dumps({"requestId": "2", "authenticate": {"token": good}}))
            await asyncio.wait_for(c.recv(), 10)
        except websockets.ConnectionClosed:
            pass
    async with websockets.connect(ws_url, subprotocols=["parley.v1.json"]) as c:
        await c.send(json.dumps({"requestId": "1", "authenticate": {"token": good}}))
        authed = json.loads(await asyncio.wait_for(c.recv(), 10))
        await c.send(json.dumps({"requestId": "2", "publish": {
            "room": "lobby", "clientMsgId": "m1", "body": "token %s secret %s" % (good, secret)}}))
        acked = json.loads(await asyncio.wait_for(c.recv(), 10))
    return first, authed, acked


def run(fmt, level):
    """One parleyd + gateway run; returns (gateway stderr, secret, tokens)."""
    d = tempfile.mkdtemp(prefix="parley-gw-logs-")
    secret = "gw-log-test-secret-" + secrets.token_hex(16)
    env = dict(os.environ, PARLEY_JWT_SECRET=secret)
    sock = os.path.join(d, "parleyd.sock")
    pd = subprocess.Popen([os.environ["PARLEYD"], "--listen", "127.0.0.1:0", "--unix", sock,
                           "--db", os.path.join(d, "parley.db"), "--rooms", "lobby", "--user-rate", "0"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=d)
    gw = None
    try:
        line_of(pd, r"parleyd listening on", "parleyd")
        gw = subprocess.Popen([os.environ["PARLEY_GATEWAY"], "--listen", "127.0.0.1:0",
                               "--upstream", "unix:" + sock, "--static", d,
                               "--log-format", fmt, "--log-level", level],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=d)
        port = int(line_of(gw, r"listening on http://127\.0\.0\.1:(\d+)/", "parley-gateway").group(1))
        base = "http://127.0.0.1:%d" % port
        deadline = time.time() + 30
        while http(base, "/healthz") != 200 and time.time() < deadline:
            time.sleep(0.05)
        good = token("ann", secret)
        forged = token("mallory", "not-the-secret-" + secrets.token_hex(16), role="organizer")
        check(http(base, "/v1/rooms/lobby/messages", good) == 200, "%s: REST with a good token" % fmt)
        check(http(base, "/v1/rooms/lobby/messages", forged) == 401, "%s: REST with a forged token: 401" % fmt)
        check(http(base, "/v1/rooms/%s/messages" % good, good) >= 400, "%s: a token as a room name is refused" % fmt)
        first, authed, acked = asyncio.run(session("ws://127.0.0.1:%d/v1/stream" % port, good, forged, secret))
        check("error" in first and "authenticated" in authed and "ack" in acked,
              "%s: WebSocket: forged token refused, good one authenticated, publish acked" % fmt)
        pd.send_signal(signal.SIGKILL)
        pd.wait(10)
        deadline = time.time() + 30
        while http(base, "/healthz") != 503 and time.time() < deadline:
            time.sleep(0.1)
        check(http(base, "/healthz") == 503, "%s: the gateway noticed its core gone" % fmt)
        gw.send_signal(signal.SIGTERM)
        _, err = gw.communicate(timeout=20)
        check(gw.returncode == 0, "%s: the gateway exits 0 on SIGTERM" % fmt)
        return err, secret, [good, forged]
    finally:
        for p in (gw, pd):
            if p and p.poll() is None:
                p.kill()
                p.wait()


def scan(name, text, secret, tokens):
    check(secret not in text, "%s: the secret never appears" % name)
    check(all(t not in text and t.rsplit(".", 1)[1] not in text for t in tokens),
          "%s: no token, not even a signature, appears" % name)
    check(re.search(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", text) is None, "%s: nothing shaped like a JWT" % name)


def main():
    err, secret, tokens = run("json", "info")
    lines = [ln for ln in err.splitlines() if ln]
    parsed = []
    for ln in lines:
        try:
            parsed.append(json.loads(ln))
        except ValueError:
            check(False, "not a JSON line: %r" % ln[:200])
    check(len(lines) >= 1 and len(parsed) == len(lines), "json: every line is one JSON object (%d)" % len(lines))
    check(all({"ts", "level", "program", "event", "msg"} <= set(o) and o["program"] == "parley-gateway"
              and o["level"] in ("debug", "info", "warn", "error") for o in parsed),
          "json: each has ts, level, program parley-gateway, event, msg")
    check(any(o["level"] == "warn" and o["event"] == "core" for o in parsed),
          "json: the core's loss is a warn line of event core (%s)" % [o.get("msg") for o in parsed][:4])
    scan("json", err, secret, tokens)

    err, secret, tokens = run("text", "warn")
    lines = [ln for ln in err.splitlines() if ln]
    textline = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARN|ERROR) parley-gateway [a-z_]+: ")
    check(lines and all(textline.match(ln) for ln in lines), "text: every line has time, level, program, event (%s)"
          % [ln for ln in lines if not textline.match(ln)][:2])
    check(any(" WARN parley-gateway core: " in ln for ln in lines), "text: the core's loss is a WARN core line")
    scan("text", err, secret, tokens)

    err, secret, tokens = run("text", "error")
    check(not any(" WARN " in ln or " INFO " in ln for ln in err.splitlines()),
          "text at --log-level error: no warn or info line")

    bad = subprocess.run([os.environ["PARLEY_GATEWAY"], "--log-format", "xml"], capture_output=True, text=True)
    check(bad.returncode == 2 and "--log-format" in bad.stderr, "a bad --log-format exits 2 and says why")
    print("%d failures" % len(FAILS))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
