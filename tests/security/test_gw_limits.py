"""The gateway's own limits (docs/security.md): sessions per peer address,
rooms per session, replies counted against the send queue bound, and a
session's end at its token's expiry (renewed by a new authenticate).
Run: /usr/bin/python3 test_gw_limits.py CASE."""
import asyncio
import json
import socket
import sys
import time

import websockets

import sechelp
from sechelp import expect, gwharness

T = 10


async def session(s, token=None, **kw):
    ws = await websockets.connect(s.ws, subprotocols=["parley.v1.json"], open_timeout=T, **kw)
    if token:
        await ws.send(json.dumps({"requestId": "1", "authenticate": {"token": token}}))
        f = json.loads(await asyncio.wait_for(ws.recv(), T))
        assert "authenticated" in f, f
    return ws


async def closed_code(ws, timeout=T):
    try:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    except websockets.ConnectionClosed:
        pass
    return ws.close_code


async def case_per_ip(s):
    a = [await session(s) for _ in range(3)]
    try:
        await session(s)
        expect(False, "a fourth session from the same address is refused")
    except websockets.InvalidStatusCode as e:
        expect(e.status_code == 429, "the fourth session from 127.0.0.1: HTTP 429 (got %s)" % e.status_code)
    await a[0].close()
    await asyncio.sleep(0.3)
    b = await session(s)
    expect(b.open, "after one closes, a new one is accepted")
    m = s.metrics()
    expect(m['parley_gateway_drops_total{reason="max_connections_per_ip"}'] == 1, "counted in /metrics")
    for w in a[1:] + [b]:
        await w.close()


async def case_max_rooms(s):
    ws = await session(s, s.token("ann"))
    got = []
    for i, room in enumerate(["lobby", "other", "third"], 2):
        await ws.send(json.dumps({"requestId": str(i), "subscribe": {"room": room}}))
        while True:
            f = json.loads(await asyncio.wait_for(ws.recv(), T))
            if f.get("requestId") == str(i):
                got.append(f)
                break
    expect("subscribed" in got[0] and "subscribed" in got[1], "two rooms followed")
    expect(got[2].get("error", {}).get("code") == "ERROR_CODE_RESOURCE_EXHAUSTED",
           "the third room: RESOURCE_EXHAUSTED (%s)" % got[2])
    await ws.close()


async def case_replies_bounded(s):
    """A client that publishes and never reads its acks: the acks are
    replies, and they count against the queue bound like events."""
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect(("127.0.0.1", s.port))
    ws = await websockets.connect(s.ws, subprotocols=["parley.v1.json"], open_timeout=T, sock=raw,
                                  max_queue=1, read_limit=4096)
    await ws.send(json.dumps({"requestId": "1", "authenticate": {"token": s.token("ann")}}))
    body = "x" * 3000
    t0 = time.time()
    closed = None
    for i in range(40000):
        try:
            await ws.send(json.dumps({"requestId": str(10 + i), "publish": {
                "room": "lobby", "clientMsgId": "m%d" % i, "body": body}}))
        except websockets.ConnectionClosed:
            closed = ws.close_code
            break
        if i % 500 == 0:
            await asyncio.sleep(0)
        if time.time() - t0 > 60:
            break
    if closed is None:
        closed = await closed_code(ws, 30)
    # the close frame (4508) waits behind the unread data, so the client may
    # only see the connection dropped (1006); the gateway's count says why
    m = s.metrics()
    expect(closed in (4508, 1006) and m['parley_gateway_drops_total{reason="slow_consumer"}'] >= 1,
           "the session is cut as a slow consumer once its unread replies pass the bound (close %s)" % closed)
    # let the gateway's side of the socket go before it is asked to stop
    await ws.close()
    raw.close()
    deadline = time.time() + 20
    while s.metrics()["parley_gateway_connections"] > 0 and time.time() < deadline:
        await asyncio.sleep(0.2)
    expect(s.metrics()["parley_gateway_connections"] == 0, "the session is gone")


async def case_session_expiry(s):
    ws = await session(s, s.token("ann", exp_in=3))
    t0 = time.time()
    code = await closed_code(ws, 15)
    took = time.time() - t0
    expect(code == 4402, "at its token's expiry the session closes 4402 (got %s)" % code)
    expect(2 <= took <= 7, "at the expiry, not before (%.1f s)" % took)
    # renewed in time: an authenticate with a fresh token of the same user
    ws = await session(s, s.token("bob", exp_in=3))
    await ws.send(json.dumps({"requestId": "2", "publish": {"room": "lobby", "clientMsgId": "b1", "body": "before"}}))
    f = json.loads(await asyncio.wait_for(ws.recv(), T))
    expect("ack" in f, "a publish opens the session's upstream stream")
    await ws.send(json.dumps({"requestId": "3", "authenticate": {"token": s.token("bob", exp_in=600)}}))
    f = json.loads(await asyncio.wait_for(ws.recv(), T))
    expect("authenticated" in f, "renewed")
    await asyncio.sleep(5)
    await ws.send(json.dumps({"requestId": "4", "publish": {"room": "lobby", "clientMsgId": "b2", "body": "after"}}))
    f = json.loads(await asyncio.wait_for(ws.recv(), T))
    expect("ack" in f, "past the first token's expiry the session and its upstream stream go on (%s)" % f)
    await ws.send(json.dumps({"requestId": "5", "authenticate": {"token": s.token("eve", exp_in=600)}}))
    code = await closed_code(ws)
    expect(code == 4401, "another user's token on the session: 4401 (got %s)" % code)


async def case_service_renewal(s):
    """The gateway's service token (10 s here) is renewed on its upstream
    room subscriptions: a room followed for longer stays live."""
    ws = await session(s, s.token("ann"))
    await ws.send(json.dumps({"requestId": "2", "subscribe": {"room": "lobby"}}))
    while "subscribed" not in json.loads(await asyncio.wait_for(ws.recv(), T)):
        pass
    await asyncio.sleep(13)
    pub = await session(s, s.token("bob"))
    await pub.send(json.dumps({"requestId": "2", "publish": {"room": "lobby", "clientMsgId": "late", "body": "late"}}))
    got = None
    deadline = time.time() + T
    while time.time() < deadline:
        f = json.loads(await asyncio.wait_for(ws.recv(), T))
        if "event" in f:
            got = f["event"]["message"]["body"]
            break
    expect(got == "late", "13 s after the subscribe (token life 10 s) live events still arrive")
    await ws.close()
    await pub.close()


CASES = {
    "per_ip": (case_per_ip, ["--max-conns-per-ip", "3"]),
    "max_rooms": (case_max_rooms, ["--max-rooms", "2"]),
    "replies_bounded": (case_replies_bounded, ["--sendq-frames", "8", "--sendq-bytes", "65536",
                                               "--rate", "1000000", "--burst", "1000000"]),
    "ws_session_expiry": (case_session_expiry, []),
    "service_renewal": (case_service_renewal, ["--service-token-ttl", "10"]),
}


def main():
    for name in sys.argv[1:] or list(CASES):
        fn, args = CASES[name]
        t0 = time.time()
        with gwharness.Stack(gw_args=args) as s:
            asyncio.run(asyncio.wait_for(fn(s), 120))
        print("ok   %-20s %.1fs" % (name, time.time() - t0), flush=True)


if __name__ == "__main__":
    main()
