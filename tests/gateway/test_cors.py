"""CORS tests of parley-gateway: pages on other origins than the gateway's
use its REST API and load its bundles only if the --origin allow-list (the
same one that guards WebSocket upgrades) admits them.

Each case starts a real parleyd + parley-gateway (gwharness) and talks
HTTP/1.1 with http.client, the way a browser does: a preflight OPTIONS, then
the request itself, on one kept-alive connection where it can.
Run: /usr/bin/python3 test_cors.py [case ...]."""
import http.client
import json
import os
import socket
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gwharness  # noqa: E402

APP = "http://app.example:3000"          # admitted by --origin http://app.example:*
EVIL = "http://evil.example"             # admitted by nothing
ALLOWED_ARGS = ["--origin", "http://app.example:*"]
BUNDLE = "export const parley = 'bundle';\n"


class Http:
    """One HTTP/1.1 connection to the gateway (kept alive across requests)."""

    def __init__(self, s):
        self.c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=20)

    def __call__(self, method, path, headers=None, body=None):
        h = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        self.c.request(method, path, body=data, headers=h)
        r = self.c.getresponse()
        raw = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, raw

    def close(self):
        self.c.close()


def preflight(method, headers="authorization, content-type", origin=APP):
    return {"Origin": origin, "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": headers}


def vary_has_origin(h):
    return "origin" in [v.strip().lower() for v in h.get("vary", "").split(",")]


def assert_refusal(st, h, raw, origin):
    """A 403 whose body is a JSON error naming the rule and the origin."""
    assert st == 403, (st, raw)
    assert h.get("content-type", "").startswith("application/json"), h
    err = json.loads(raw)
    assert err["code"] == "ORIGIN_NOT_ALLOWED", err
    assert origin in err["detail"] and "--origin" in err["detail"], err
    assert vary_has_origin(h), h
    return err


def auth(tok, origin=None):
    h = {"Authorization": "Bearer " + tok}
    if origin:
        h["Origin"] = origin
    return h


def write_static(s):
    os.makedirs(os.path.join(s.dir, "static"), exist_ok=True)
    with open(os.path.join(s.dir, "static", "parley-chat.js"), "w") as f:
        f.write(BUNDLE)


def publish_one(s, tok, body="hello"):
    import asyncio
    import websockets

    async def run():
        async with websockets.connect(s.ws, subprotocols=["parley.v1.json"]) as ws:
            await ws.send(json.dumps({"requestId": "1", "authenticate": {"token": tok}}))
            json.loads(await asyncio.wait_for(ws.recv(), 10))
            await ws.send(json.dumps({"requestId": "2", "publish": {
                "room": "lobby", "clientMsgId": "c-" + body, "body": body}}))
            f = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert "ack" in f, f
            return f["ack"]["message"]
    return asyncio.run(run())


def upgrade_status(s, origin):
    """The status line's code of a WebSocket upgrade with this Origin."""
    with socket.create_connection(("127.0.0.1", s.port), timeout=20) as c:
        c.sendall(("GET /v1/stream HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nOrigin: %s\r\n"
                   "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Sec-WebSocket-Protocol: parley.v1.json\r\n\r\n" % (s.port, origin)).encode())
        head = b""
        while b"\r\n" not in head:
            chunk = c.recv(4096)
            assert chunk, "connection closed before a status line"
            head += chunk
        return int(head.split(b" ", 2)[1])


# ---- cases -------------------------------------------------------------------


def case_preflight_allowed(s):
    c = Http(s)
    for method in ("GET", "POST", "PATCH", "DELETE"):
        st, h, raw = c("OPTIONS", "/v1/rooms/lobby/messages/1", preflight(method))
        assert st in (200, 204), (method, st, raw)
        assert h.get("access-control-allow-origin") == APP, h
        methods = {m.strip() for m in h.get("access-control-allow-methods", "").split(",")}
        assert {"GET", "POST", "PATCH", "DELETE"} <= methods, h
        allowed = {x.strip().lower() for x in h.get("access-control-allow-headers", "").split(",")}
        assert {"authorization", "content-type"} <= allowed, h
        assert int(h.get("access-control-max-age", "0")) > 0, h
        assert vary_has_origin(h), h
        # bearer tokens, no cookies: credentials are never allowed
        assert "access-control-allow-credentials" not in h, h
    # the request itself follows on the same connection, as in a browser
    st, h, raw = c("GET", "/v1/rooms/lobby/messages", auth(s.token(), APP))
    assert st == 200, (st, raw)
    assert h.get("access-control-allow-origin") == APP, h
    assert json.loads(raw)["room"]["name"] == "lobby", raw
    c.close()


def case_preflight_refused(s):
    c = Http(s)
    st, h, raw = c("OPTIONS", "/v1/rooms/lobby/messages", preflight("GET", origin=EVIL))
    assert_refusal(st, h, raw, EVIL)
    # a refused preflight grants nothing
    for k in ("access-control-allow-origin", "access-control-allow-methods",
              "access-control-allow-headers", "access-control-max-age"):
        assert k not in h, (k, h)
    # and the connection is still usable (no hang, no half-read body)
    st, h, raw = c("OPTIONS", "/v1/rooms/lobby/messages", preflight("DELETE"))
    assert st in (200, 204) and h.get("access-control-allow-origin") == APP, (st, h)
    # a look-alike of an allowed origin is refused too
    for near in ("https://app.example:3000", "http://app.example.evil.example",
                 "http://evil.example/http://app.example:3000"):
        st, h, raw = c("OPTIONS", "/v1/rooms/lobby", preflight("GET", origin=near))
        assert_refusal(st, h, raw, near)
    m = s.metrics()
    assert m.get('parley_gateway_drops_total{reason="origin"}', 0) >= 4, m
    c.close()


def case_rest_origins(s):
    ann = s.token("ann", "Ann")
    msg = publish_one(s, ann)
    c = Http(s)
    # no Origin (curl, a backend): answered, no CORS grant, Vary still says why
    st, h, raw = c("GET", "/v1/rooms/lobby/messages", auth(ann))
    assert st == 200 and [m["body"] for m in json.loads(raw)["messages"]] == ["hello"], raw
    assert "access-control-allow-origin" not in h and vary_has_origin(h), h
    # an allowed origin: the same answer, readable by the page
    st, h, raw2 = c("GET", "/v1/rooms/lobby/messages", auth(ann, APP))
    assert st == 200 and json.loads(raw2) == json.loads(raw), raw2
    assert h.get("access-control-allow-origin") == APP and vary_has_origin(h), h
    # errors too must be readable, or the page only sees "failed to fetch"
    st, h, raw = c("GET", "/v1/rooms/lobby/messages", {"Origin": APP})
    assert st == 401 and json.loads(raw)["code"] == "UNAUTHENTICATED", raw
    assert h.get("access-control-allow-origin") == APP, h
    st, h, raw = c("PUT", "/v1/rooms/lobby", auth(ann, APP))
    assert st == 405 and json.loads(raw)["code"] == "MALFORMED" and h.get("allow") == "GET, PATCH, DELETE", (raw, h)
    assert h.get("access-control-allow-origin") == APP, h
    st, h, raw = c("GET", "/v1/rooms/nowhere", auth(ann, APP))
    assert st == 404 and json.loads(raw)["code"] == "ROOM_NOT_FOUND", raw
    assert h.get("access-control-allow-origin") == APP, h
    # a disallowed origin: refused before any route, with a JSON reason the
    # page can read (Access-Control-Allow-Origin on the refusal only)
    st, h, raw = c("GET", "/v1/rooms/lobby/messages", auth(ann, EVIL))
    assert_refusal(st, h, raw, EVIL)
    assert "messages" not in json.loads(raw)
    assert h.get("access-control-allow-origin") == EVIL, h
    # ... and it changes nothing, even with an organizer's token and a body
    org = s.token("olga", "Olga", "organizer")
    st, h, raw = c("DELETE", "/v1/rooms/lobby/messages/%s" % msg["seq"], auth(org, EVIL))
    assert_refusal(st, h, raw, EVIL)
    st, h, raw = c("POST", "/v1/rooms", auth(org, EVIL), body={"name": "sneaky"})
    assert_refusal(st, h, raw, EVIL)
    st, _, raw = c("GET", "/v1/rooms/lobby/messages/%s" % msg["seq"], auth(ann))
    assert st == 200 and not json.loads(raw).get("deleted"), raw
    st, _, raw = c("GET", "/v1/rooms/sneaky", auth(ann))
    assert st == 404, raw
    # the allowed origin can do the same
    st, h, raw = c("POST", "/v1/rooms", auth(org, APP), body={"name": "fine"})
    assert st == 200 and h.get("access-control-allow-origin") == APP, (st, raw)
    st, h, raw = c("DELETE", "/v1/rooms/lobby/messages/%s" % msg["seq"], auth(org, APP))
    assert st == 200 and json.loads(raw)["deleted"] is True, raw
    assert h.get("access-control-allow-origin") == APP, h
    c.close()


def case_static(s):
    write_static(s)
    c = Http(s)
    # <script type="module" src="GATEWAY/parley-chat.js"> from another origin
    st, h, raw = c("GET", "/parley-chat.js", {"Origin": APP})
    assert st == 200 and raw.decode() == BUNDLE, (st, raw)
    assert h.get("content-type", "").startswith("text/javascript"), h
    assert h.get("access-control-allow-origin") == APP and vary_has_origin(h), h
    # a classic <script> or a navigation sends no Origin: served as before
    st, h, raw = c("GET", "/parley-chat.js")
    assert st == 200 and raw.decode() == BUNDLE, (st, raw)
    assert "access-control-allow-origin" not in h and vary_has_origin(h), h
    # a missing file is a readable 404 for the allowed origin
    st, h, raw = c("GET", "/nope.js", {"Origin": APP})
    assert st == 404 and h.get("access-control-allow-origin") == APP, (st, h)
    # a disallowed origin gets the refusal, not the bundle
    st, h, raw = c("GET", "/parley-chat.js", {"Origin": EVIL})
    assert_refusal(st, h, raw, EVIL)
    assert BUNDLE.encode() not in raw
    c.close()


def case_defaults(s):
    """No --origin: local development origins only, and the gateway's own."""
    write_static(s)
    c = Http(s)
    for o in ("http://localhost:5173", "http://127.0.0.1:8080",
              "http://127.0.0.1:%d" % s.port):
        st, h, raw = c("OPTIONS", "/v1/rooms/lobby/messages", preflight("GET", origin=o))
        assert st in (200, 204) and h.get("access-control-allow-origin") == o, (o, st, h)
        st, h, raw = c("GET", "/parley-chat.js", {"Origin": o})
        assert st == 200 and h.get("access-control-allow-origin") == o, (o, st, h)
    for o in ("https://localhost:5173", "http://localhost.evil.example", EVIL):
        st, h, raw = c("OPTIONS", "/v1/rooms/lobby/messages", preflight("GET", origin=o))
        assert_refusal(st, h, raw, o)
    c.close()


def case_own_origin(s):
    """--origin replaces the defaults, but the gateway's own origin stays."""
    c = Http(s)
    own = "http://127.0.0.1:%d" % s.port
    st, h, raw = c("GET", "/v1/rooms/lobby/messages", auth(s.token(), own))
    assert st == 200 and h.get("access-control-allow-origin") == own, (st, h)
    st, h, raw = c("GET", "/v1/rooms/lobby/messages", auth(s.token(), "http://localhost:5173"))
    assert_refusal(st, h, raw, "http://localhost:5173")
    c.close()


def case_dev_token(s):
    """The example apps sign in through /v1/dev/token from their own origin."""
    c = Http(s)
    st, h, raw = c("GET", "/v1/dev/token?user=olga&name=Olga&role=organizer", {"Origin": APP})
    assert st == 200 and h.get("access-control-allow-origin") == APP, (st, h)
    assert json.loads(raw)["token"].count(".") == 2, raw
    st, h, raw = c("GET", "/v1/dev/token?user=eve", {"Origin": EVIL})
    assert_refusal(st, h, raw, EVIL)
    assert "token" not in json.loads(raw)
    c.close()


def case_odd_origins(s):
    """Origins a browser never sends are refused and never echoed back."""
    c = Http(s)
    long_origin = "http://app.example:3000" + "0" * 400
    st, h, raw = c("GET", "/v1/rooms/lobby/messages", {"Origin": long_origin})
    assert st == 403 and json.loads(raw)["code"] == "ORIGIN_NOT_ALLOWED", raw
    assert "access-control-allow-origin" not in h, h
    st, h, raw = c("GET", "/v1/rooms/lobby/messages", {"Origin": "null"})
    assert_refusal(st, h, raw, "null")
    c.close()
    # nor does a long one slip through the WebSocket upgrade check
    for origin, want in ((long_origin, 403), (APP, 101)):
        assert upgrade_status(s, origin) == want, origin[:40]


CASES = {
    "preflight_allowed": (case_preflight_allowed, ALLOWED_ARGS),
    "preflight_refused": (case_preflight_refused, ALLOWED_ARGS),
    "rest_origins": (case_rest_origins, ALLOWED_ARGS),
    "static": (case_static, ALLOWED_ARGS),
    "defaults": (case_defaults, []),
    "own_origin": (case_own_origin, ALLOWED_ARGS),
    "dev_token": (case_dev_token, ALLOWED_ARGS + ["--dev"]),
    "odd_origins": (case_odd_origins, ALLOWED_ARGS),
}


def main():
    names = sys.argv[1:] or list(CASES)
    failed = []
    for name in names:
        fn, args = CASES[name]
        t0 = time.time()
        try:
            with gwharness.Stack(gw_args=args) as s:
                fn(s)
            print("ok   %-22s %.1fs" % (name, time.time() - t0), flush=True)
        except Exception:
            traceback.print_exc()
            print("FAIL %s" % name, flush=True)
            failed.append(name)
    if failed:
        print("failed:", " ".join(failed))
        sys.exit(1)


if __name__ == "__main__":
    main()
