"""REST tests of parley-gateway with Python's urllib against a real parleyd:
paging (after/before/limit), get, edit, delete with permissions, create and
get room, status codes for bad input, unknown room, missing token; plus
/healthz, /metrics, static files, and the dev token endpoint.
Run: /usr/bin/python3 test_rest.py [case ...]."""
import json
import os
import sys
import time
import traceback
import urllib.request

import jwt

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gwharness  # noqa: E402


def publish(s, tok, n, room="lobby", prefix="m"):
    """Publishes n messages through the gateway's WebSocket (JSON)."""
    import asyncio
    import websockets

    async def run():
        async with websockets.connect(s.ws, subprotocols=["parley.v1.json"]) as ws:
            await ws.send(json.dumps({"requestId": "1", "authenticate": {"token": tok}}))
            json.loads(await ws.recv())
            out = []
            for i in range(n):
                await ws.send(json.dumps({"requestId": str(i + 2), "publish": {
                    "room": room, "clientMsgId": "%s%d" % (prefix, i), "body": "%s %d" % (prefix, i)}}))
                f = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert "ack" in f, f
                out.append(f["ack"]["message"])
            return out
    return asyncio.run(run())


def case_paging(s):
    ann = s.token("ann", "Ann")
    msgs = publish(s, ann, 12)
    st, r = s.jrequest("GET", "/v1/rooms/lobby/messages", token=ann)
    assert st == 200 and len(r["messages"]) == 12, (st, r)
    assert r["room"]["headSeq"] == "12" and r["room"]["headRev"] == "12", r["room"]
    assert [m["seq"] for m in r["messages"]] == [str(i) for i in range(1, 13)]
    st, r = s.jrequest("GET", "/v1/rooms/lobby/messages?limit=5", token=ann)
    assert st == 200 and [m["seq"] for m in r["messages"]] == ["8", "9", "10", "11", "12"], r
    assert r["hasMore"] is True
    st, r = s.jrequest("GET", "/v1/rooms/lobby/messages?before=8&limit=5", token=ann)
    assert st == 200 and [m["seq"] for m in r["messages"]] == ["3", "4", "5", "6", "7"], r
    st, r = s.jrequest("GET", "/v1/rooms/lobby/messages?after=9", token=ann)
    assert st == 200 and [m["rev"] for m in r["messages"]] == ["10", "11", "12"], r
    assert not r.get("hasMore"), r
    st, r = s.jrequest("GET", "/v1/rooms/lobby/messages?after=2&limit=3", token=ann)
    assert [m["rev"] for m in r["messages"]] == ["3", "4", "5"] and r["hasMore"] is True, r
    assert msgs[0]["author"]["id"] == "ann"


def case_get_edit_delete(s):
    ann = s.token("ann", "Ann")
    bob = s.token("bob", "Bob")
    org = s.token("olga", "Olga", "organizer")
    publish(s, ann, 2, prefix="a")
    publish(s, bob, 1, prefix="b")
    st, m = s.jrequest("GET", "/v1/rooms/lobby/messages/1", token=bob)
    assert st == 200 and m["body"] == "a 0" and m["author"]["displayName"] == "Ann", (st, m)
    st, m = s.jrequest("GET", "/v1/rooms/lobby/messages/99", token=bob)
    assert st == 404 and m["code"] == "MESSAGE_NOT_FOUND", (st, m)
    # edit own message
    st, m = s.jrequest("PATCH", "/v1/rooms/lobby/messages/1", {"body": "changed"}, ann)
    assert st == 200 and m["body"] == "changed" and m["rev"] == "4" and m["editedAtMs"] != "0", (st, m)
    # a participant may not edit or delete someone else's message
    st, m = s.jrequest("PATCH", "/v1/rooms/lobby/messages/1", {"body": "hijack"}, bob)
    assert st == 403 and m["code"] == "PERMISSION_DENIED", (st, m)
    st, m = s.jrequest("DELETE", "/v1/rooms/lobby/messages/1", token=bob)
    assert st == 403 and m["code"] == "PERMISSION_DENIED", (st, m)
    # an organizer may
    st, m = s.jrequest("DELETE", "/v1/rooms/lobby/messages/2", token=org)
    assert st == 200 and m["deleted"] is True and not m.get("body"), (st, m)
    st, m = s.jrequest("PATCH", "/v1/rooms/lobby/messages/2", {"body": "x"}, org)
    assert st == 409 and m["code"] == "MESSAGE_DELETED", (st, m)
    # bad bodies
    st, m = s.jrequest("PATCH", "/v1/rooms/lobby/messages/3", {"body": "  "}, bob)
    assert st == 400 and m["code"] == "BODY_EMPTY", (st, m)
    st, m = s.jrequest("PATCH", "/v1/rooms/lobby/messages/3", {"body": 5}, bob)
    assert st == 400 and m["code"] == "MALFORMED", (st, m)
    st, m = s.jrequest("PATCH", "/v1/rooms/lobby/messages/3", b"{nope", bob)
    assert st == 400 and m["code"] == "MALFORMED", (st, m)
    st, m = s.jrequest("PATCH", "/v1/rooms/lobby/messages/3", b'{"body":"\xff"}', bob)
    assert st == 400 and m["code"] == "INVALID_UTF8", (st, m)
    st, m = s.jrequest("PATCH", "/v1/rooms/lobby/messages/3", {"body": "x" * 5000}, bob)
    assert st in (400, 413) and m["code"] == "BODY_TOO_LONG", (st, m)
    st, m = s.jrequest("PATCH", "/v1/rooms/lobby/messages/3", {"body": "bob's edit"}, bob)
    assert st == 200 and m["body"] == "bob's edit", (st, m)
    # the changes are in the catch-up list, once each, by rev
    st, r = s.jrequest("GET", "/v1/rooms/lobby/messages?after=3", token=ann)
    assert [(m["seq"], m["rev"]) for m in r["messages"]] == [("1", "4"), ("2", "5"), ("3", "6")], r


def case_bad_input(s):
    ann = s.token("ann", "Ann")
    st, m = s.jrequest("GET", "/v1/rooms/nope/messages", token=ann)
    assert st == 404 and m["code"] == "ROOM_NOT_FOUND", (st, m)
    st, m = s.jrequest("GET", "/v1/rooms/nope", token=ann)
    assert st == 404 and m["code"] == "ROOM_NOT_FOUND", (st, m)
    st, m = s.jrequest("GET", "/v1/rooms/bad%20name/messages", token=ann)
    assert st == 400 and m["code"] == "ROOM_INVALID", (st, m)
    st, m = s.jrequest("GET", "/v1/rooms/lobby/messages?after=x", token=ann)
    assert st == 400 and m["code"] == "BAD_CURSOR", (st, m)
    st, m = s.jrequest("GET", "/v1/rooms/lobby/messages?after=1&before=3", token=ann)
    assert st == 400 and m["code"] == "BAD_CURSOR", (st, m)
    st, m = s.jrequest("GET", "/v1/rooms/lobby/messages?limit=5000", token=ann)
    assert st == 400 and m["code"] == "BAD_CURSOR", (st, m)
    st, m = s.jrequest("GET", "/v1/rooms/lobby/messages/abc", token=ann)
    assert st == 400 and m["code"] == "MALFORMED", (st, m)
    st, m = s.jrequest("PUT", "/v1/rooms/lobby/messages/1", {"body": "x"}, ann)
    assert st == 405 and m["code"] == "MALFORMED" and "not allowed" in m["detail"], (st, m)
    st, m = s.jrequest("POST", "/v1/rooms/lobby/messages", {"body": "x"}, ann)
    assert st == 405 and m["code"] == "MALFORMED" and "not allowed" in m["detail"], (st, m)
    st, m = s.jrequest("GET", "/v1/nothing", token=ann)
    # no route: 404 with a documented ErrorCode (docs/gateway.md)
    assert st == 404 and m["code"] == "MALFORMED" and "no route" in m["detail"], (st, m)
    st, m = s.jrequest("GET", "/v1/rooms/lobby/elsewhere", token=ann)
    # no route: 404 with a documented ErrorCode (docs/gateway.md)
    assert st == 404 and m["code"] == "MALFORMED" and "no route" in m["detail"], (st, m)
    # no token, bad token, expired token: 401 before any upstream call
    calls = s.metrics()["parley_gateway_upstream_unary_calls_total"]
    st, m = s.jrequest("GET", "/v1/rooms/lobby/messages")
    assert (st, m) == (401, {"code": "UNAUTHENTICATED",
                             "detail": "Authorization: Bearer <token> required"}), (st, m)
    bad = {"code": "UNAUTHENTICATED", "detail": "token invalid or expired"}
    st, m = s.jrequest("GET", "/v1/rooms/lobby/messages", token="garbage")
    assert (st, m) == (401, bad), (st, m)
    # an expired token has its own code, so the client renews it
    expired = {"code": "TOKEN_EXPIRED", "detail": "the token has expired; renew it"}
    st, m = s.jrequest("GET", "/v1/rooms/lobby/messages", token=s.token(exp_in=-10))
    assert (st, m) == (401, expired), (st, m)
    st, m = s.jrequest("GET", "/v1/rooms/lobby/messages", token=s.token(secret="k" * 40))
    assert (st, m) == (401, bad), (st, m)
    st, m = s.jrequest("PATCH", "/v1/rooms/lobby/messages/1", {"body": "x"}, s.token(exp_in=-10))
    assert (st, m) == (401, expired), (st, m)
    assert s.metrics()["parley_gateway_upstream_unary_calls_total"] == calls
    # a body over the limit
    st, m = s.jrequest("PATCH", "/v1/rooms/lobby/messages/1", b'{"body":"' + b"x" * 70000 + b'"}', ann)
    assert (st, m) == (413, {"code": "RESOURCE_EXHAUSTED", "detail": "body too large"}), (st, m)


def case_rooms(s):
    org = s.token("olga", "Olga", "organizer")
    ann = s.token("ann", "Ann")
    st, r = s.jrequest("POST", "/v1/rooms", {"name": "new-room"}, org)
    assert st == 200 and r["created"] is True and r["room"]["name"] == "new-room", (st, r)
    st, r = s.jrequest("POST", "/v1/rooms", {"name": "new-room"}, org)
    assert st == 200 and not r.get("created"), (st, r)
    st, r = s.jrequest("POST", "/v1/rooms", {"name": "p-room"}, ann)
    assert st == 403 and r["code"] == "PERMISSION_DENIED", (st, r)
    st, r = s.jrequest("POST", "/v1/rooms", {"name": "bad name!"}, org)
    assert st == 400 and r["code"] == "ROOM_INVALID", (st, r)
    st, r = s.jrequest("POST", "/v1/rooms", {"name": ["x"]}, org)
    assert st == 400 and r["code"] == "MALFORMED", (st, r)
    st, r = s.jrequest("POST", "/v1/rooms", b"", org)  # an empty body
    assert st == 400 and r["code"] == "MALFORMED", (st, r)
    publish(s, ann, 2, room="new-room")
    st, r = s.jrequest("GET", "/v1/rooms/new-room", token=ann)
    assert st == 200 and (r["name"], r["headSeq"], r["headRev"]) == ("new-room", "2", "2"), (st, r)
    assert r["mode"] == "ROOM_MODE_OPEN" and r["me"]["canPost"] is True, r
    assert r["maxBodyBytes"] == 4096, r


def case_misc(s):
    st, body = s.get("/healthz")
    assert st == 200 and body == b"ok\n", (st, body)
    m = s.metrics()
    for k in ("parley_gateway_connections", "parley_gateway_rooms",
              "parley_gateway_messages_in_total", "parley_gateway_messages_out_total",
              'parley_gateway_drops_total{reason="slow_consumer"}',
              'parley_gateway_drops_total{reason="rate"}'):
        assert k in m, k
    assert m['parley_gateway_upstream_up{state="ready"}'] == 1, m
    # static files from --static
    os.makedirs(os.path.join(s.dir, "static", "assets"), exist_ok=True)
    with open(os.path.join(s.dir, "static", "index.html"), "w") as f:
        f.write("<!doctype html><title>parley</title>")
    with open(os.path.join(s.dir, "static", "assets", "app.js"), "w") as f:
        f.write("console.log(1)")
    req = urllib.request.urlopen(s.http + "/", timeout=10)
    assert req.status == 200 and b"<title>parley</title>" in req.read()
    assert req.headers["Content-Type"].startswith("text/html")
    req = urllib.request.urlopen(s.http + "/assets/app.js", timeout=10)
    assert req.headers["Content-Type"].startswith("text/javascript"), req.headers
    st, body = s.get("/missing.js")
    assert (st, body) == (404, b"not found\n"), (st, body)
    st, body = s.get("/../../etc/passwd")
    assert (st, body) == (404, b"not found\n"), (st, body)
    st, body = s.request("POST", "/index.html", b"x")
    assert (st, body) == (405, b"method not allowed\n"), (st, body)
    # the dev token endpoint exists only with --dev
    st, body = s.get("/v1/dev/token?user=ann")
    assert (st, body) == (404, b"not found\n"), (st, body)


def case_dev_token(s):
    st, r = s.jrequest("GET", "/v1/dev/token?user=zoe&name=Zoe&role=organizer")
    assert st == 200 and r["token"], (st, r)
    st, room = s.jrequest("POST", "/v1/rooms", {"name": "devroom"}, r["token"])
    assert st == 200 and room["created"] is True, (st, room)
    st, r = s.jrequest("GET", "/v1/dev/token?user=zoe&role=king")
    assert (st, r) == (400, {"code": "AUTHOR_INVALID",
                             "detail": "role is participant or organizer"}), (st, r)
    st, r = s.jrequest("GET", "/v1/dev/token?name=Zoe")
    assert (st, r) == (400, {"code": "AUTHOR_INVALID", "detail": "user is required"}), (st, r)
    st, body = s.request("POST", "/v1/dev/token?user=zoe", b"")
    assert (st, body) == (405, b"method not allowed\n"), (st, body)
    st, r = s.jrequest("GET", "/v1/dev/token?user=zoe&role=participant")
    assert st == 200 and jwt.decode(r["token"], options={"verify_signature": False})["role"] == "participant", r


def case_upstream_down(s):
    """The core stops: /healthz 503, REST 503 with a clear error; the core
    comes back on the same address: /healthz 200 and REST answers 200 with
    the history, including what was published before the stop."""
    ann = s.token("ann", "Ann")
    publish(s, ann, 2, prefix="before")
    s.pd.terminate()
    assert s.pd.wait(timeout=10) == 0
    deadline = time.time() + 10
    while time.time() < deadline and s.get("/healthz")[0] != 503:
        time.sleep(0.1)
    assert s.get("/healthz") == (503, b"upstream unavailable\n")
    st, m = s.jrequest("GET", "/v1/rooms/lobby/messages", token=ann)
    assert (st, m) == (503, {"code": "INTERNAL", "detail": "upstream core unavailable"}), (st, m)
    st, m = s.jrequest("PATCH", "/v1/rooms/lobby/messages/1", {"body": "x"}, ann)
    assert (st, m) == (503, {"code": "INTERNAL", "detail": "upstream core unavailable"}), (st, m)
    up = [v for k, v in s.metrics().items() if k.startswith("parley_gateway_upstream_up")]
    assert up == [0], up

    s._start_parleyd()  # the same database and unix socket the gateway dials
    deadline = time.time() + 20
    while time.time() < deadline and s.get("/healthz")[0] != 200:
        time.sleep(0.1)
    assert s.get("/healthz") == (200, b"ok\n")
    st, r = s.jrequest("GET", "/v1/rooms/lobby/messages", token=ann)
    assert st == 200, (st, r)
    assert [m["clientMsgId"] for m in r["messages"]] == ["before0", "before1"], r
    st, m = s.jrequest("PATCH", "/v1/rooms/lobby/messages/1", {"body": "after"}, ann)
    assert st == 200 and m["body"] == "after" and m["rev"] == "3", (st, m)
    assert s.metrics()['parley_gateway_upstream_up{state="ready"}'] == 1


CASES = {
    "paging": (case_paging, []),
    "get_edit_delete": (case_get_edit_delete, []),
    "bad_input": (case_bad_input, []),
    "rooms": (case_rooms, []),
    "misc": (case_misc, []),
    "dev_token": (case_dev_token, ["--dev"]),
    "upstream_down": (case_upstream_down, []),
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
