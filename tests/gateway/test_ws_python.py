"""End-to-end WebSocket tests of parley-gateway with the Python `websockets`
client (Debian python3-websockets), against a real parleyd. Each case starts
its own stack (gwharness.Stack). Run: /usr/bin/python3 test_ws_python.py
[case ...]; exits non-zero on the first failure."""
import asyncio
import base64
import json
import os
import socket
import sys
import time
import traceback

import websockets

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gwharness  # noqa: E402

JSON = "parley.v1.json"
BIN = "parley.v1.proto"
T = 10  # seconds any single wait may take


class Client:
    """A JSON-subprotocol session with small helpers."""

    def __init__(self, ws):
        self.ws = ws
        self.rid = 0
        self.backlog = []  # frames read by call() that answer nothing

    @classmethod
    async def open(cls, stack, token=None, **kw):
        kw.setdefault("subprotocols", [JSON])
        ws = await websockets.connect(stack.ws, open_timeout=T, **kw)
        c = cls(ws)
        if token:
            f = await c.call({"authenticate": {"token": token}})
            assert "authenticated" in f, f
        return c

    async def send(self, frame):
        self.rid += 1
        frame = dict(frame)
        frame.setdefault("requestId", str(self.rid))
        await self.ws.send(json.dumps(frame))
        return self.rid

    async def recv(self, timeout=T):
        if self.backlog:
            return self.backlog.pop(0)
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        return json.loads(raw)

    async def call(self, frame):
        rid = await self.send(frame)
        while True:
            raw = await asyncio.wait_for(self.ws.recv(), T)
            f = json.loads(raw)
            if f.get("requestId") == str(rid):
                return f
            self.backlog.append(f)

    async def subscribe(self, room, after=0):
        """Returns (replayed events, subscribed frame)."""
        rid = await self.send({"subscribe": {"room": room, "resumeAfterRev": str(after)}})
        events = []
        while True:
            f = await self.recv()
            if "event" in f:
                events.append(f["event"])
            elif f.get("requestId") == str(rid):
                return events, f

    async def publish(self, room, cid, body):
        return await self.call({"publish": {"room": room, "clientMsgId": cid, "body": body}})

    async def closed_code(self, timeout=T):
        """Waits for the server to close; returns the close code."""
        try:
            while True:
                await asyncio.wait_for(self.ws.recv(), timeout)
        except websockets.ConnectionClosed:
            pass
        return self.ws.close_code

    async def close(self):
        await self.ws.close()


def rev(ev):
    return int(ev["message"]["rev"])


async def case_basic_flow(s):
    ann = await Client.open(s, s.token("ann", "Ann"))
    bob = await Client.open(s, s.token("bob", "Bob"))
    # authenticated carries the user from the token
    c = await Client.open(s)
    f = await c.call({"authenticate": {"token": s.token("cy", "Cy", "organizer")}})
    assert f["authenticated"]["user"] == {"id": "cy", "displayName": "Cy", "role": "ROLE_ORGANIZER"}, f
    await c.close()
    ev, sub = await bob.subscribe("lobby")
    assert ev == [] and sub["subscribed"]["room"]["name"] == "lobby", (ev, sub)
    ack = await ann.publish("lobby", "m1", "hello")
    assert ack["ack"]["clientMsgId"] == "m1", ack
    msg = ack["ack"]["message"]
    assert msg["author"]["id"] == "ann" and msg["body"] == "hello" and msg["seq"] == "1", msg
    f = await bob.recv()
    assert f["event"]["type"] == "EVENT_TYPE_CREATED" and f["event"]["message"]["body"] == "hello", f
    assert "replay" not in f["event"] or f["event"]["replay"] is False
    # duplicate publish is acked with the original
    ack2 = await ann.publish("lobby", "m1", "hello again")
    assert ack2["ack"]["duplicate"] is True and ack2["ack"]["message"]["seq"] == "1", ack2
    # ping/pong
    f = await ann.call({"ping": {"nonce": "77"}})
    assert f["pong"]["nonce"] == "77", f
    # unknown room
    f = await ann.call({"subscribe": {"room": "nope"}})
    assert f["error"]["code"] == "ERROR_CODE_ROOM_NOT_FOUND", f
    f = await ann.publish("nope", "x1", "hi")
    assert f["error"]["code"] == "ERROR_CODE_ROOM_NOT_FOUND", f
    # bad body
    f = await ann.publish("lobby", "x2", "   ")
    assert f["error"]["code"] == "ERROR_CODE_BODY_EMPTY", f
    # the session continues after errors
    f = await ann.call({"ping": {"nonce": "1"}})
    assert "pong" in f
    # unsubscribe, twice
    f = await bob.call({"unsubscribe": {"room": "lobby"}})
    assert f["unsubscribed"]["room"] == "lobby", f
    f = await bob.call({"unsubscribe": {"room": "lobby"}})
    assert f["error"]["code"] == "ERROR_CODE_SUBSCRIPTION_STATE", f
    for x in (ann, bob):
        await x.close()


async def case_resume_after_cut(s):
    ann = await Client.open(s, s.token("ann", "Ann"))
    bob = await Client.open(s, s.token("bob", "Bob"))
    await bob.subscribe("lobby")
    for i in range(3):
        await ann.publish("lobby", "a%d" % i, "before %d" % i)
    seen = [rev((await bob.recv())["event"]) for _ in range(3)]
    last = seen[-1]
    await bob.close()  # the cut
    missed = []
    for i in range(5):
        ack = await ann.publish("lobby", "b%d" % i, "missed %d" % i)
        missed.append(int(ack["ack"]["message"]["rev"]))
    # an edit while away is a change too
    st, m = s.jrequest("PATCH", "/v1/rooms/lobby/messages/1", {"body": "edited"}, s.token("ann", "Ann"))
    assert st == 200, (st, m)
    missed.append(int(m["rev"]))
    bob = await Client.open(s, s.token("bob", "Bob"))
    ev, sub = await bob.subscribe("lobby", after=last)
    got = [rev(e) for e in ev]
    assert got == missed, (got, missed)
    assert all(e["replay"] is True for e in ev)
    assert ev[-1]["type"] == "EVENT_TYPE_EDITED" and ev[-1]["message"]["body"] == "edited", ev[-1]
    assert int(sub["subscribed"]["room"]["headRev"]) == missed[-1], sub
    # live continues with no duplicate
    ack = await ann.publish("lobby", "c0", "live")
    f = await bob.recv()
    assert rev(f["event"]) == int(ack["ack"]["message"]["rev"]) and not f["event"].get("replay"), f
    await ann.close()
    await bob.close()


async def case_resume_from_history(s):
    """Ring of 4: a resume further back pages History, then the ring."""
    ann = await Client.open(s, s.token("ann", "Ann"))
    watch = await Client.open(s, s.token("w", "W"))
    await watch.subscribe("lobby")  # keeps the upstream subscription
    revs = []
    for i in range(12):
        ack = await ann.publish("lobby", "h%d" % i, "m%d" % i)
        revs.append(int(ack["ack"]["message"]["rev"]))
    for _ in range(12):
        await watch.recv()
    for after in (0, 3, 7, 9, 12):
        bob = await Client.open(s, s.token("bob", "Bob"))
        ev, sub = await bob.subscribe("lobby", after=after)
        got = [rev(e) for e in ev]
        want = [r for r in revs if r > after]
        assert got == want, (after, got, want)
        await bob.close()
    m = s.metrics()
    assert m["parley_gateway_replay_history_total"] >= 1, m
    assert m["parley_gateway_replay_ring_total"] >= 1, m
    await ann.close()
    await watch.close()


async def case_resume_ring_start(s):
    """The ring starts where the room's first subscriber resumed (rev R0):
    a later resume from R0 - 1 needs rev R0, which the ring never held, so
    it pages History; a resume from R0 is served by the ring. Nothing is
    skipped at that edge."""
    ann = await Client.open(s, s.token("ann", "Ann"))
    revs = []
    for i in range(10):
        ack = await ann.publish("lobby", "e%d" % i, "m%d" % i)
        revs.append(int(ack["ack"]["message"]["rev"]))
    r0 = revs[7]
    first = await Client.open(s, s.token("w", "W"))
    ev, sub = await first.subscribe("lobby", after=r0)  # the ring starts at r0
    assert "subscribed" in sub and [rev(e) for e in ev] == revs[8:], (ev, sub)
    for after, path in ((r0 - 1, "history"), (r0, "ring"), (r0 - 3, "history")):
        m0 = s.metrics()
        bob = await Client.open(s, s.token("bob", "Bob"))
        ev, sub = await bob.subscribe("lobby", after=after)
        got = [rev(e) for e in ev]
        want = [r for r in revs if r > after]
        assert "subscribed" in sub and got == want, (after, got, want)
        m1 = s.metrics()
        for p in ("history", "ring"):
            k = "parley_gateway_replay_%s_total" % p
            assert m1[k] - m0[k] == (p == path), (after, path, k, m0[k], m1[k])
        await bob.close()
    await first.close()
    await ann.close()


async def case_binary(s):
    pb = gwharness.proto_classes(s.dir)
    ws = await websockets.connect(s.ws, subprotocols=[BIN], open_timeout=T)
    assert ws.subprotocol == BIN

    backlog = []

    async def call(cf):
        await ws.send(cf.SerializeToString())
        while True:
            raw = await asyncio.wait_for(ws.recv(), T)
            assert isinstance(raw, bytes)
            sf = pb.ServerFrame()
            sf.ParseFromString(raw)
            if sf.request_id == cf.request_id:
                return sf
            backlog.append(sf)

    cf = pb.ClientFrame(request_id=1)
    cf.authenticate.token = s.token("ann", "Ann")
    sf = await call(cf)
    assert sf.WhichOneof("kind") == "authenticated" and sf.authenticated.user.id == "ann"
    cf = pb.ClientFrame(request_id=2)
    cf.subscribe.room = "lobby"
    sf = await call(cf)
    assert sf.WhichOneof("kind") == "subscribed", sf
    # truncated protobuf: MALFORMED, the connection stays
    cf = pb.ClientFrame(request_id=3)
    cf.publish.room = "lobby"
    cf.publish.client_msg_id = "p1"
    cf.publish.body = "x" * 50
    raw = cf.SerializeToString()
    await ws.send(raw[:-10])
    sf = pb.ServerFrame()
    sf.ParseFromString(await asyncio.wait_for(ws.recv(), T))
    assert sf.WhichOneof("kind") == "error" and sf.error.code == pb.M.ERROR_CODE_MALFORMED, sf
    assert not sf.error.fatal
    # a text frame on the binary subprotocol is malformed too
    await ws.send("hello")
    sf = pb.ServerFrame()
    sf.ParseFromString(await asyncio.wait_for(ws.recv(), T))
    assert sf.error.code == pb.M.ERROR_CODE_MALFORMED, sf
    sf = await call(cf)
    assert sf.WhichOneof("kind") == "ack" and sf.ack.message.author.id == "ann", sf
    # the event arrives on the same (subscribed) connection, as protobuf
    # (before or after the ack)
    if backlog:
        sf = backlog.pop(0)
    else:
        sf = pb.ServerFrame()
        sf.ParseFromString(await asyncio.wait_for(ws.recv(), T))
    assert sf.event.message.client_msg_id == "p1" and sf.event.type == pb.EVENT_TYPE_CREATED, sf
    # no JSON session watches: the event was never encoded as JSON; the
    # binary watcher got the core's own bytes, not a second encoding
    m = s.metrics()
    assert m['parley_gateway_event_encodes_total{format="json"}'] == 0, m
    assert m['parley_gateway_event_encodes_total{format="proto"}'] == 0, m
    assert m['parley_gateway_event_passthrough_total'] == 1, m
    await ws.close()


async def case_mixed_formats(s):
    """A JSON and a binary watcher of one room get the same events."""
    pb = gwharness.proto_classes(s.dir)
    j = await Client.open(s, s.token("j", "J"))
    await j.subscribe("lobby")
    b = await websockets.connect(s.ws, subprotocols=[BIN], open_timeout=T)
    cf = pb.ClientFrame(request_id=1)
    cf.authenticate.token = s.token("b", "B")
    await b.send(cf.SerializeToString())
    await asyncio.wait_for(b.recv(), T)
    cf = pb.ClientFrame(request_id=2)
    cf.subscribe.room = "lobby"
    await b.send(cf.SerializeToString())
    await asyncio.wait_for(b.recv(), T)
    for i in range(3):
        await j.publish("lobby", "x%d" % i, "body %d" % i)
    jrevs, brevs = [], []
    while len(jrevs) < 3:
        f = await j.recv()
        if "event" in f:
            jrevs.append(rev(f["event"]))
    for _ in range(3):
        sf = pb.ServerFrame()
        sf.ParseFromString(await asyncio.wait_for(b.recv(), T))
        brevs.append(sf.event.message.rev)
    assert jrevs == brevs == [1, 2, 3], (jrevs, brevs)
    # more JSON watchers: still one encoding per event and format
    more = [await Client.open(s, s.token("m%d" % i, "M")) for i in range(4)]
    for c in more:
        await c.subscribe("lobby")
    await j.publish("lobby", "x3", "body 3")
    for c in more:
        f = await c.recv()
        assert f["event"]["message"]["clientMsgId"] == "x3", f
    m = s.metrics()
    assert m['parley_gateway_event_encodes_total{format="json"}'] == 4, m
    assert m['parley_gateway_event_encodes_total{format="proto"}'] == 0, m
    assert m['parley_gateway_event_passthrough_total'] == 4, m
    for c in more:
        await c.close()
    await j.close()
    await b.close()


async def case_auth(s):
    # no token: any other first frame
    c = await Client.open(s)
    await c.send({"subscribe": {"room": "lobby"}})
    f = await c.recv()
    assert f["error"]["code"] == "ERROR_CODE_UNAUTHENTICATED" and f["error"]["fatal"], f
    assert await c.closed_code() == 4401
    # bad signature
    c = await Client.open(s)
    await c.send({"authenticate": {"token": s.token(secret="x" * 40)}})
    f = await c.recv()
    assert f["error"]["code"] == "ERROR_CODE_UNAUTHENTICATED", f
    assert await c.closed_code() == 4401
    # expired: its own close code, so the client renews the token
    c = await Client.open(s)
    await c.send({"authenticate": {"token": s.token(exp_in=-60)}})
    assert await c.closed_code() == 4402
    # garbage
    c = await Client.open(s)
    await c.send({"authenticate": {"token": "not.a.jwt"}})
    assert await c.closed_code() == 4401


async def case_auth_timeout(s):
    c = await Client.open(s)
    t0 = time.time()
    code = await c.closed_code(timeout=10)
    assert code == 4401 and 1.5 < time.time() - t0 < 6, (code, time.time() - t0)


async def case_bad_frames(s):
    c = await Client.open(s, s.token())
    # malformed JSON and wrong types: MALFORMED, the session continues
    await c.ws.send("{not json")
    f = await c.recv()
    assert f["error"]["code"] == "ERROR_CODE_MALFORMED" and not f["error"].get("fatal"), f
    await c.ws.send(json.dumps({"requestId": "9", "publish": {"room": 5}}))
    f = await c.recv()
    assert f["error"]["code"] == "ERROR_CODE_MALFORMED", f
    f = await c.call({"ping": {"nonce": "3"}})
    assert f["pong"]["nonce"] == "3"
    # unknown fields are ignored
    f = await c.call({"ping": {"nonce": "4", "future": 1}, "alsoFuture": [1]})
    assert f["pong"]["nonce"] == "4"
    # oversized: 1009
    await c.ws.send("x" * (70 * 1024))
    assert await c.closed_code() == 1009
    # invalid UTF-8 in a text frame: 1007 (raw frame, the library would
    # refuse to send it as str)
    c = await Client.open(s, s.token())
    await c.ws.write_frame(True, websockets.frames.Opcode.TEXT, b'{"ping":{"nonce":"\xff\xfe"}}')
    assert await c.closed_code() == 1007


async def case_rate_limit(s):
    c = await Client.open(s, s.token())
    for i in range(200):
        try:
            await c.ws.send(json.dumps({"requestId": str(i + 10), "ping": {"nonce": "1"}}))
        except websockets.ConnectionClosed:
            break
    code = await c.closed_code()
    assert code == 4429, code
    assert s.metrics()['parley_gateway_drops_total{reason="rate"}'] >= 1


async def case_limits(s):
    """The session learns what it must stay inside: the gateway's frame and
    rate limits in Authenticated, the core's body limit with every Room."""
    c = await Client.open(s)
    f = await c.call({"authenticate": {"token": s.token()}})
    assert f["authenticated"]["limits"] == {"maxFrameBytes": 20000, "frameRate": 5,
                                            "frameBurst": 10}, f
    _, sub = await c.subscribe("lobby")
    assert sub["subscribed"]["room"]["maxBodyBytes"] == 3000, sub
    st, page = s.jrequest("GET", "/v1/rooms/lobby/messages?limit=1", token=s.token())
    assert st == 200 and page["room"]["maxBodyBytes"] == 3000, (st, page)
    st, room = s.jrequest("GET", "/v1/rooms/lobby", token=s.token())
    assert st == 200 and room["maxBodyBytes"] == 3000, (st, room)
    # the stated limit is the enforced one, to the byte
    f = await c.publish("lobby", "at", "\u00e9" * 1500)
    assert "ack" in f, f
    f = await c.publish("lobby", "over", "\u00e9" * 1500 + "x")
    assert f["error"]["code"] == "ERROR_CODE_BODY_TOO_LONG", f
    await c.close()


async def case_slow_consumer(s):
    """A client that stops reading is closed 4508; another receives all."""
    pub = await Client.open(s, s.token("p", "P"))
    fast = await Client.open(s, s.token("f", "F"))
    await fast.subscribe("lobby")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", s.port))
    slow_ws = await websockets.connect(s.ws, subprotocols=[JSON], sock=sock,
                                       max_queue=1, read_limit=4096, open_timeout=T)
    slow = Client(slow_ws)
    f = await slow.call({"authenticate": {"token": s.token("s", "S")}})
    assert "authenticated" in f
    await slow.subscribe("lobby")
    # slow now reads nothing more
    n = 160
    body = "y" * 40000
    got = acks = 0
    for i in range(n):
        await pub.send({"publish": {"room": "lobby", "clientMsgId": "s%d" % i, "body": body}})
        if i % 8 == 7:  # at most 8 in flight, so the reading client keeps up
            while acks <= i:
                f = await pub.recv()
                acks += "ack" in f
            while got <= i:
                f = await fast.recv()
                got += "event" in f
    while acks < n:
        f = await pub.recv()
        acks += "ack" in f
    while got < n:
        f = await fast.recv()
        got += "event" in f
    m = s.metrics()
    assert m['parley_gateway_drops_total{reason="slow_consumer"}'] == 1, m
    # now the slow client drains: it got a prefix, then the close 4508
    code = await slow.closed_code()
    assert code == 4508, code
    await pub.close()
    await fast.close()


async def case_origin(s):
    try:
        await websockets.connect(s.ws, subprotocols=[JSON], origin="http://evil.example",
                                 open_timeout=T)
        raise AssertionError("evil origin accepted")
    except websockets.InvalidStatusCode as e:
        assert e.status_code == 403, e.status_code
    c = await Client.open(s, origin="http://localhost:5173")
    await c.close()
    c = await Client.open(s, origin="http://127.0.0.1:%d" % s.port)
    await c.close()
    # no subprotocol: 400
    try:
        await websockets.connect(s.ws, open_timeout=T)
        raise AssertionError("no subprotocol accepted")
    except websockets.InvalidStatusCode as e:
        assert e.status_code == 400, e.status_code


async def case_max_conns(s):
    a = await Client.open(s)
    b = await Client.open(s)
    try:
        await websockets.connect(s.ws, subprotocols=[JSON], open_timeout=T)
        raise AssertionError("third connection accepted")
    except websockets.InvalidStatusCode as e:
        assert e.status_code == 503, e.status_code
    await a.close()
    await b.close()


async def case_dead_peer(s):
    """A peer that stops answering WS pings is hung up on."""
    c = await Client.open(s, s.token())
    f = await c.call({"ping": {"nonce": "1"}})
    assert "pong" in f
    # pause reading at the transport: pings stay unanswered
    c.ws.transport.pause_reading()
    t0 = time.time()
    deadline = t0 + 15
    while time.time() < deadline and s.metrics()["parley_gateway_connections"] > 0:
        await asyncio.sleep(0.2)
    took = time.time() - t0
    assert s.metrics()["parley_gateway_connections"] == 0, "dead peer not dropped"
    assert took < 8, took
    c.ws.transport.abort()


async def _raw_frame(reader):
    """Reads one unmasked server frame: (opcode, payload); None at EOF."""
    try:
        h = await reader.readexactly(2)
    except (asyncio.IncompleteReadError, ConnectionResetError):
        return None
    n = h[1] & 0x7F
    if n == 126:
        n = int.from_bytes(await reader.readexactly(2), "big")
    elif n == 127:
        n = int.from_bytes(await reader.readexactly(8), "big")
    return h[0] & 0x0F, await reader.readexactly(n)


def _raw_text(payload):
    """A masked, final text frame (client to server)."""
    data = payload.encode()
    mask = os.urandom(4)
    head = bytes([0x81])
    head += bytes([0x80 | len(data)]) if len(data) < 126 else bytes([0x80 | 126]) + len(data).to_bytes(2, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


async def case_dead_peer_raw(s):
    """The dead-peer hang-up seen from the peer, independently of the
    gateway's metrics: a raw TCP client does the WebSocket handshake,
    authenticates, then reads everything and answers nothing. The gateway
    pings it and then drops the TCP connection without a close frame (a dead
    peer would never answer one); a live idle client is kept meanwhile."""
    alive = await Client.open(s, s.token("liv", "Liv"), ping_interval=None)
    reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(("GET /v1/stream HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                  "Sec-WebSocket-Protocol: %s\r\n\r\n" % (s.port, key, JSON)).encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), T)
    assert head.startswith(b"HTTP/1.1 101"), head
    writer.write(_raw_text(json.dumps({"requestId": "1", "authenticate": {"token": s.token("dee", "Dee")}})))
    op, payload = await asyncio.wait_for(_raw_frame(reader), T)
    assert op == 1 and "authenticated" in json.loads(payload), (op, payload)
    opcodes = []
    while True:  # until the gateway hangs up; a timeout fails the case
        f = await asyncio.wait_for(_raw_frame(reader), 15)
        if f is None:
            break
        opcodes.append(f[0])
    writer.close()
    assert 0x9 in opcodes, opcodes  # it was pinged
    assert 0x8 not in opcodes, opcodes  # and dropped, not closed
    f = await alive.call({"ping": {"nonce": "3"}})
    assert f["pong"]["nonce"] == "3", f
    assert s.metrics()["parley_gateway_connections"] == 1
    await alive.close()


async def case_idle_alive(s):
    """An idle peer that answers the gateway's WS pings (the library does)
    and sends nothing else outlives --hangup-secs several times over."""
    c = await Client.open(s, s.token(), ping_interval=None)  # no client pings
    await asyncio.sleep(7)  # hang-up after 3 s without the pongs
    assert s.metrics()["parley_gateway_connections"] == 1, "live idle peer dropped"
    f = await c.call({"ping": {"nonce": "2"}})
    assert f["pong"]["nonce"] == "2", f
    await c.ws.close()


async def case_shutdown(s):
    c = await Client.open(s, s.token())
    s.gw.send_signal(15)
    assert await c.closed_code() == 1001
    assert s.gw.wait(timeout=10) == 0


async def case_upstream_lost(s):
    """The core goes away: subscribed sockets close 4503; a publish gets an
    Error and the session stays; once the core is back, resume works."""
    ann = await Client.open(s, s.token("ann", "Ann"))
    bob = await Client.open(s, s.token("bob", "Bob"))
    await bob.subscribe("lobby")
    ack = await ann.publish("lobby", "u1", "before")
    last = int(ack["ack"]["message"]["rev"])
    await bob.recv()
    s.pd.terminate()
    s.pd.wait(timeout=10)
    assert await bob.closed_code() == 4503
    f = await ann.publish("lobby", "u2", "while down")
    assert "error" in f and not f["error"].get("fatal"), f
    f = await ann.call({"ping": {"nonce": "9"}})
    assert f["pong"]["nonce"] == "9"
    s._start_parleyd()  # same database and socket
    deadline = time.time() + 20
    while s.get("/healthz")[0] != 200:
        assert time.time() < deadline, "gateway did not reconnect"
        await asyncio.sleep(0.1)
    ack = await ann.publish("lobby", "u2", "while down")  # the retry is stored once
    assert not ack["ack"].get("duplicate"), ack
    bob = await Client.open(s, s.token("bob", "Bob"))
    ev, sub = await bob.subscribe("lobby", after=last)
    assert [e["message"]["clientMsgId"] for e in ev] == ["u2"], ev
    await ann.close()
    await bob.close()


async def case_multi_upstream(s):
    """--upstream with a dead first address uses the healthy second one."""
    s.start_gateway(upstream="unix:%s/absent.sock,unix:%s" % (s.dir, s.sock))
    ann = await Client.open(s, s.token("ann", "Ann"))
    await ann.subscribe("lobby")
    ack = await ann.publish("lobby", "x", "via the second upstream")
    assert "ack" in ack, ack
    f = await ann.recv()
    assert f["event"]["message"]["body"] == "via the second upstream", f
    await ann.close()


async def case_replay_paged(s):
    """Ring of 4, History pages of 10, a send queue of 16 frames: a resume
    from 0 over 120 changes pages History at the client's pace and still
    delivers every change once, in order, then goes live."""
    ann = await Client.open(s, s.token("ann", "Ann"))
    watch = await Client.open(s, s.token("w", "W"))
    await watch.subscribe("lobby")
    revs = []
    for i in range(120):
        ack = await ann.publish("lobby", "p%d" % i, "m%d" % i)
        revs.append(int(ack["ack"]["message"]["rev"]))
    st, m = s.jrequest("DELETE", "/v1/rooms/lobby/messages/5", token=s.token("olga", "O", "organizer"))
    assert st == 200, (st, m)
    revs = [r for r in revs if r != 5] + [int(m["rev"])]
    for _ in range(121):  # the watcher reads what it was sent
        await watch.recv()
    bob = await Client.open(s, s.token("bob", "Bob"))
    ev, sub = await bob.subscribe("lobby", after=0)
    assert [rev(e) for e in ev] == revs, [rev(e) for e in ev]
    assert ev[-1]["type"] == "EVENT_TYPE_DELETED", ev[-1]
    assert int(sub["subscribed"]["room"]["headRev"]) == revs[-1]
    ack = await ann.publish("lobby", "live", "live")
    f = await bob.recv()
    assert f["event"]["message"]["clientMsgId"] == "live", f
    assert s.metrics()["parley_gateway_replay_history_total"] >= 1
    for c in (ann, watch, bob):
        await c.close()


async def case_replay_handover(s):
    """A subscriber resumes from rev 0 over a backlog far bigger than the
    ring while another client keeps publishing: it receives every seq
    exactly once, in order, replay then Subscribed then live, across the
    History paging -> ring -> live handover. Synchronised on events: the
    subscriber reads one replayed event and then nothing (a 4 KB receive
    buffer and a one-message client queue hold the gateway's paging back)
    until K more publishes are acked, so those K are committed while its
    replay cannot have ended; the publisher stops only after the subscriber
    has seen Subscribed and LIVE live events.

    The backlog is sized so that it cannot fit in what sits between the
    gateway and the stalled reader: the kernel's largest TCP send buffer
    (net.ipv4.tcp_wmem max), the gateway's send queue (--sendq-frames 64)
    and the client library's buffers. Smaller backlogs let a fast gateway
    finish the replay into buffers before the K publishes were acked."""
    body = "h" * 4000
    with open("/proc/sys/net/ipv4/tcp_wmem") as f:
        wmem_max = int(f.read().split()[2])
    in_between = wmem_max + 64 * (len(body) + 256) + (1 << 20)
    backlog, k, live = in_between // len(body) + 100, 20, 10
    pub = await Client.open(s, s.token("pub", "Pub"))
    watch = await Client.open(s, s.token("w", "W"))
    await watch.subscribe("lobby")  # the room's upstream stays, the ring fills
    watched = []
    watch_want = [None]
    watch_done = asyncio.Event()

    async def watcher():
        while True:
            f = await watch.recv(timeout=60)
            if "event" in f:
                watched.append(int(f["event"]["message"]["rev"]))
            if watch_want[0] is not None and len(watched) >= watch_want[0]:
                watch_done.set()
    wtask = asyncio.create_task(watcher())  # live all along: reads as it goes

    window = 32  # acks in flight, well under --sendq-frames
    for start in range(0, backlog, window):
        n = min(window, backlog - start)
        for i in range(start, start + n):
            await pub.send({"publish": {"room": "lobby", "clientMsgId": "old%d" % i,
                                        "body": body}})
        for _ in range(n):
            f = await pub.recv()
            assert "ack" in f, f

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", s.port))
    b = Client(await websockets.connect(s.ws, subprotocols=[JSON], sock=sock, max_queue=1,
                                       read_limit=4096, open_timeout=T))
    f = await b.call({"authenticate": {"token": s.token("bob", "Bob")}})
    assert "authenticated" in f, f
    sub_rid = str(await b.send({"subscribe": {"room": "lobby", "resumeAfterRev": "0"}}))
    f = await b.recv()
    assert f["event"]["replay"] is True and f["event"]["message"]["rev"] == "1", f

    acked = []
    k_acked = asyncio.Event()
    stop = asyncio.Event()

    async def publisher():
        i = 0
        while not stop.is_set():
            a = await pub.publish("lobby", "new%d" % i, "new %d" % i)
            assert "ack" in a, a
            acked.append(int(a["ack"]["message"]["rev"]))
            if len(acked) == k:
                k_acked.set()
            i += 1
    ptask = asyncio.create_task(publisher())
    await asyncio.wait_for(k_acked.wait(), 30)

    revs, seqs, bad_flags = [1], [1], 0
    head = None
    lives = 0
    final = None
    while final is None or revs[-1] < final:
        f = await b.recv()
        if f.get("requestId") == sub_rid:
            assert "subscribed" in f and head is None, f
            head = int(f["subscribed"]["room"]["headRev"])
            assert head == revs[-1], (head, revs[-1])
            continue
        assert "event" in f, f
        ev = f["event"]
        revs.append(int(ev["message"]["rev"]))
        seqs.append(int(ev["message"]["seq"]))
        bad_flags += bool(ev.get("replay")) != (head is None)
        if head is not None:
            lives += 1
            if lives == live and not stop.is_set():
                stop.set()
                await ptask
                final = acked[-1]
    total = backlog + len(acked)
    assert final == total, (final, total)
    assert revs == list(range(1, total + 1)), [r for i, r in enumerate(revs) if r != i + 1][:10]
    assert seqs == revs, "every seq once, in order"
    assert bad_flags == 0, bad_flags
    assert head >= backlog + k, (head, backlog + k)  # K were committed mid-replay
    assert s.metrics()["parley_gateway_replay_history_total"] >= 1
    watch_want[0] = total  # the watcher, live all along, saw the same
    if len(watched) < total:
        await asyncio.wait_for(watch_done.wait(), T)
    wtask.cancel()
    assert watched == list(range(1, total + 1)), watched[:5]
    print("  handover at rev %d of %d; %d published during the resume" % (head, total, len(acked)))
    for c in (pub, watch, b):
        await c.close()


async def case_room_linger(s):
    """One upstream subscription per room however many watch it; a room
    nobody watches drops it after --room-linger."""
    cs = [await Client.open(s, s.token("u%d" % i, "U")) for i in range(5)]
    for c in cs:
        await c.subscribe("lobby")
    await cs[0].subscribe("other")
    m = s.metrics()
    assert m["parley_gateway_rooms"] == 2, m
    for c in cs:
        await c.call({"unsubscribe": {"room": "lobby"}})
    m = s.metrics()
    assert m["parley_gateway_rooms"] == 2, m  # lingers (--room-linger 2)
    deadline = time.time() + 10
    while s.metrics()["parley_gateway_rooms"] != 1 and time.time() < deadline:
        await asyncio.sleep(0.1)
    m = s.metrics()
    assert m["parley_gateway_rooms"] == 1, m  # "other" is still watched
    ev, sub = await cs[1].subscribe("lobby")  # and comes back on demand
    assert sub["subscribed"]["room"]["name"] == "lobby"
    assert s.metrics()["parley_gateway_rooms"] == 2
    for c in cs:
        await c.close()


async def case_publish_stream(s):
    """Publishes ride the shared upstream links (Stream.Connect streams the
    room's name picks; no unary call and no stream per publish or session),
    each as its user (the author is the token's), answers map back to each
    requestId, per-publish errors keep the link; a core killed mid-stream
    fails the outstanding publishes with INTERNAL "upstream core
    unavailable", and after the restart the retries (same clientMsgIds) are
    stored once on a fresh link."""
    import signal

    def mc():
        m = s.metrics()
        return (m["parley_gateway_upstream_links_total"],
                m["parley_gateway_upstream_publish_frames_total"],
                m["parley_gateway_upstream_unary_calls_total"])

    ann = await Client.open(s, s.token("ann", "Ann"))
    st0, fr0, un0 = mc()
    assert st0 == 0, st0
    for i in range(20):
        f = await ann.publish("lobby", "s%d" % i, "one by one %d" % i)
        assert f["ack"]["clientMsgId"] == "s%d" % i, f
        assert f["ack"]["message"]["author"]["id"] == "ann", f
    # a burst without waiting: every requestId gets its own ack
    rids = {}
    for i in range(30):
        rid = await ann.send({"publish": {"room": "lobby", "clientMsgId": "b%d" % i,
                                          "body": "burst %d" % i}})
        rids[str(rid)] = "b%d" % i
    bad_room = await ann.send({"publish": {"room": "nope", "clientMsgId": "x1", "body": "x"}})
    empty = await ann.send({"publish": {"room": "lobby", "clientMsgId": "x2", "body": ""}})
    got = {}
    while len(got) < 32:
        f = await ann.recv()
        got[f["requestId"]] = f
    for rid, cid in rids.items():
        assert got[rid]["ack"]["clientMsgId"] == cid, got[rid]
        assert not got[rid]["ack"].get("duplicate"), got[rid]
    assert got[str(bad_room)]["error"]["code"] == "ERROR_CODE_ROOM_NOT_FOUND", got[str(bad_room)]
    assert not got[str(bad_room)]["error"].get("fatal"), got[str(bad_room)]
    assert got[str(empty)]["error"]["code"] == "ERROR_CODE_BODY_EMPTY", got[str(empty)]
    again = await ann.publish("lobby", "s3", "one by one 3")  # idempotent retry
    assert again["ack"].get("duplicate") is True, again
    st1, fr1, un1 = mc()
    # 53 publishes, one link for "lobby" (and perhaps one more for "nope")
    assert (fr1 - fr0, un1 - un0) == (53, 0), (fr1 - fr0, un1 - un0)
    assert 1 <= st1 - st0 <= 2, st1 - st0

    bob = await Client.open(s, s.token("bob", "Bob"))
    f = await bob.publish("lobby", "bob1", "hi")
    assert f["ack"]["message"]["author"]["id"] == "bob", f
    assert mc()[0] == st1  # bob's publish rides the same link

    # The core stops reading, publishes go up and stay outstanding, the core
    # dies: each is answered INTERNAL, the session stays.
    old = s.pd
    old.send_signal(signal.SIGSTOP)
    try:
        pend = {}
        for i in range(5):
            rid = await ann.send({"publish": {"room": "lobby", "clientMsgId": "k%d" % i,
                                              "body": "killed %d" % i}})
            pend[str(rid)] = "k%d" % i
        deadline = time.time() + T
        while mc()[1] < fr1 + 5:  # all five are on the upstream stream
            assert time.time() < deadline, mc()
            await asyncio.sleep(0.05)
    finally:
        old.kill()
    old.wait(timeout=10)
    s.procs.remove(old)
    got = {}
    while len(got) < 5:
        f = await ann.recv()
        got[f["requestId"]] = f
    for rid in pend:
        e = got[rid].get("error")
        assert e and e["code"] == "ERROR_CODE_INTERNAL" and not e.get("fatal"), got[rid]
        assert e["detail"] == "upstream core unavailable", got[rid]
    f = await ann.call({"ping": {"nonce": "7"}})
    assert f["pong"]["nonce"] == "7", f
    st2 = mc()[0]
    s._start_parleyd()  # same database and socket
    deadline = time.time() + 20
    while s.get("/healthz")[0] != 200:
        assert time.time() < deadline, "gateway did not reconnect"
        await asyncio.sleep(0.1)
    for rid, cid in pend.items():
        f = await ann.publish("lobby", cid, "killed %s" % cid[1:])
        assert "ack" in f and not f["ack"].get("duplicate"), f
    f = await ann.publish("lobby", "after", "after the restart")
    assert "ack" in f, f
    assert mc()[0] == st2 + 1, (mc(), st2)  # one fresh link for "lobby"
    assert mc()[2] == un0, mc()  # still no unary publish
    await ann.close()
    await bob.close()


CASES = {
    "basic_flow": (case_basic_flow, []),
    "resume_after_cut": (case_resume_after_cut, []),
    "resume_from_history": (case_resume_from_history, ["--ring", "4"]),
    "resume_ring_start": (case_resume_ring_start, ["--ring", "4"]),
    "replay_paged": (case_replay_paged, ["--ring", "4", "--replay-page", "10", "--sendq-frames", "16",
                                         "--rate", "1000", "--burst", "1000"]),
    "replay_handover": (case_replay_handover, ["--ring", "8", "--replay-page", "10",
                                               "--sendq-frames", "64",
                                               "--rate", "100000", "--burst", "100000"]),
    "room_linger": (case_room_linger, ["--room-linger", "2"]),
    "binary": (case_binary, []),
    "mixed_formats": (case_mixed_formats, []),
    "auth": (case_auth, []),
    "auth_timeout": (case_auth_timeout, ["--auth-timeout", "2"]),
    "bad_frames": (case_bad_frames, []),
    "rate_limit": (case_rate_limit, ["--rate", "5", "--burst", "10"]),
    "limits": (case_limits, ["--rate", "5", "--burst", "10", "--max-frame", "20000"],
               ["--max-body", "3000"]),
    "slow_consumer": (case_slow_consumer, ["--rate", "10000", "--burst", "10000",
                                           "--sendq-frames", "64"], ["--max-body", "50000"]),
    "origin": (case_origin, []),
    "max_conns": (case_max_conns, ["--max-conns", "2"]),
    "dead_peer": (case_dead_peer, ["--ping-secs", "1", "--hangup-secs", "3"]),
    "dead_peer_raw": (case_dead_peer_raw, ["--ping-secs", "1", "--hangup-secs", "3"]),
    "idle_alive": (case_idle_alive, ["--ping-secs", "1", "--hangup-secs", "3"]),
    "shutdown": (case_shutdown, []),
    "upstream_lost": (case_upstream_lost, []),
    "publish_stream": (case_publish_stream, ["--rate", "1000", "--burst", "1000"]),
    "multi_upstream": (case_multi_upstream, [], (), False),
}


def main():
    names = sys.argv[1:] or list(CASES)
    failed = []
    for name in names:
        fn, args, *rest = CASES[name]
        pd_args = rest[:1]
        start_gw = rest[1] if len(rest) > 1 else True
        t0 = time.time()
        try:
            with gwharness.Stack(gw_args=args, pd_args=pd_args[0] if pd_args else (),
                                 start_gateway=start_gw) as s:
                asyncio.run(asyncio.wait_for(fn(s), 90))
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
