"""End-to-end tests of what the gateway's event path adds: batches on both
WebSocket subprotocols (SessionOptions.batch), the core's bytes passed
through to binary subscribers unchanged, replay then live without gap or
duplicate with batches on, and the slow-consumer cut with batches on. A real
parleyd and parley-gateway per case (gwharness.Stack), Python `websockets`
and grpcio as clients. Run: /usr/bin/python3 test_batch.py [case ...]."""
import asyncio
import json
import os
import queue
import socket
import sys
import threading
import time
import traceback

import grpc
import websockets

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gwharness  # noqa: E402
from test_ws_python import BIN, JSON, T, Client, rev  # noqa: E402


def flatten(f):
    """The frames of one JSON message: a batch's frames, else the frame."""
    if "batch" in f:
        frames = f["batch"]["frames"]
        assert all("batch" not in g for g in frames), f  # never nested
        return frames
    return [f]


class BatchClient(Client):
    """A JSON session that turned batches on; recv() yields single frames,
    in order, and counts the messages that were batches."""

    def __init__(self, ws):
        super().__init__(ws)
        self.batches = 0
        self.batched_frames = 0

    @classmethod
    async def open(cls, stack, token, **kw):
        c = await super().open(stack, token, **kw)
        f = await c.call({"options": {"batch": True}})
        assert f["options"] == {"batch": True}, f
        return c

    async def recv(self, timeout=T):
        if self.backlog:
            return self.backlog.pop(0)
        f = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        frames = flatten(f)
        if "batch" in f:
            self.batches += 1
            self.batched_frames += len(frames)
        self.backlog.extend(frames[1:])
        return frames[0]


async def publish_many(c, room, prefix, n, body=None):
    """Publishes n messages without waiting, then waits for every ack."""
    rids = set()
    for i in range(n):
        rids.add(str(await c.send({"publish": {"room": room, "clientMsgId": "%s%d" % (prefix, i),
                                               "body": body or "%s %d" % (prefix, i)}})))
    while rids:
        f = await c.recv()
        if f.get("requestId") in rids:
            assert "ack" in f, f
            rids.discard(f["requestId"])


async def case_json_batches(s):
    """A JSON session with batches on gets a replay of 50 events and its
    Subscribed in one text message {"batch":{"frames":[...]}}, in order; a
    session that did not opt in never sees a batch."""
    pub = await Client.open(s, s.token("p", "P"))
    await publish_many(pub, "lobby", "m", 50)
    b = await BatchClient.open(s, s.token("b", "B"))
    plain = await Client.open(s, s.token("q", "Q"))
    rid = await b.send({"subscribe": {"room": "lobby", "resumeAfterRev": "0"}})
    raw = json.loads(await asyncio.wait_for(b.ws.recv(), T))
    assert "batch" in raw, raw
    frames = raw["batch"]["frames"]
    assert [rev(f["event"]) for f in frames[:-1]] == list(range(1, 51)), frames[:3]
    assert all(f["event"]["replay"] is True for f in frames[:-1]), frames[0]
    assert frames[-1]["requestId"] == str(rid) and "subscribed" in frames[-1], frames[-1]
    assert frames[-1]["subscribed"]["room"]["headRev"] == "50", frames[-1]
    # the one that did not opt in: frame by frame
    await plain.ws.send(json.dumps({"requestId": "1", "subscribe": {"room": "lobby",
                                                                     "resumeAfterRev": "0"}}))
    for i in range(51):
        f = json.loads(await asyncio.wait_for(plain.ws.recv(), T))
        assert "batch" not in f, f
        if i < 50:
            assert rev(f["event"]) == i + 1, f
        else:
            assert "subscribed" in f, f
    # live: a burst reaches both, in order, once
    await publish_many(pub, "lobby", "n", 30)
    got = []
    while len(got) < 30:
        f = await b.recv()
        if "event" in f:
            got.append(rev(f["event"]))
            assert f["event"].get("replay", False) is False, f
    assert got == list(range(51, 81)), got
    for i in range(30):
        f = json.loads(await asyncio.wait_for(plain.ws.recv(), T))
        assert "batch" not in f and rev(f["event"]) == 51 + i, f
    m = s.metrics()
    assert m["parley_gateway_batches_out_total"] >= 1, m
    for c in (pub, b, plain):
        await c.close()


async def case_binary_batches(s):
    """The same on parley.v1.proto: one binary message ServerFrame{batch}
    holding the replayed events and Subscribed, each inner frame a complete
    ServerFrame."""
    pb = gwharness.proto_classes(s.dir)
    pub = await Client.open(s, s.token("p", "P"))
    await publish_many(pub, "lobby", "m", 20)
    ws = await websockets.connect(s.ws, subprotocols=[BIN], open_timeout=T)

    async def call(cf):
        await ws.send(cf.SerializeToString())
        while True:
            sf = pb.ServerFrame()
            sf.ParseFromString(await asyncio.wait_for(ws.recv(), T))
            if sf.request_id == cf.request_id:
                return sf

    cf = pb.ClientFrame(request_id=1)
    cf.authenticate.token = s.token("b", "B")
    assert (await call(cf)).WhichOneof("kind") == "authenticated"
    cf = pb.ClientFrame(request_id=2)
    cf.options.batch = True
    sf = await call(cf)
    assert sf.WhichOneof("kind") == "options" and sf.options.batch, sf
    cf = pb.ClientFrame(request_id=3)
    cf.subscribe.room = "lobby"
    await ws.send(cf.SerializeToString())
    sf = pb.ServerFrame()
    sf.ParseFromString(await asyncio.wait_for(ws.recv(), T))
    assert sf.WhichOneof("kind") == "batch", sf
    frames = list(sf.batch.frames)
    assert [f.event.message.rev for f in frames[:-1]] == list(range(1, 21)), frames[:2]
    assert all(f.event.replay for f in frames[:-1])
    assert frames[-1].WhichOneof("kind") == "subscribed" and frames[-1].request_id == 3
    assert frames[-1].subscribed.room.head_rev == 20
    await ws.close()
    await pub.close()


def grpc_subscriber(s, room, out, ready, stop):
    """A direct Stream.Connect subscriber of the core (no gateway): puts the
    raw bytes of every ServerFrame it gets into out."""
    pb = gwharness.proto_classes(s.dir)
    ch = grpc.insecure_channel("unix:" + s.sock)
    connect = ch.stream_stream("/parley.v1.Stream/Connect",
                               request_serializer=lambda m: m.SerializeToString(),
                               response_deserializer=lambda b: b)
    reqs = queue.Queue()
    cf = pb.ClientFrame(request_id=1)
    cf.subscribe.room = room
    reqs.put(cf)

    def gen():
        while True:
            m = reqs.get()
            if m is None:
                return
            yield m

    call = connect(gen(), metadata=[("authorization", "Bearer " + s.token("g", "G"))])
    try:
        for raw in call:
            f = pb.ServerFrame()
            f.ParseFromString(raw)
            if f.WhichOneof("kind") == "subscribed":
                ready.set()
            else:
                out.put(raw)
            if stop.is_set():
                break
    except grpc.RpcError:
        pass
    finally:
        reqs.put(None)
        call.cancel()
        ch.close()


async def case_passthrough(s):
    """A binary WebSocket subscriber gets each live event as exactly the
    bytes the core sent to a gRPC subscriber: the gateway passes the core's
    encoding through, it does not encode the event again."""
    out, ready, stop = queue.Queue(), threading.Event(), threading.Event()
    t = threading.Thread(target=grpc_subscriber, args=(s, "lobby", out, ready, stop), daemon=True)
    t.start()
    assert await asyncio.get_running_loop().run_in_executor(None, ready.wait, T)
    pb = gwharness.proto_classes(s.dir)
    ws = await websockets.connect(s.ws, subprotocols=[BIN], open_timeout=T)
    cf = pb.ClientFrame(request_id=1)
    cf.authenticate.token = s.token("w", "W")
    await ws.send(cf.SerializeToString())
    await asyncio.wait_for(ws.recv(), T)
    cf = pb.ClientFrame(request_id=2)
    cf.subscribe.room = "lobby"
    await ws.send(cf.SerializeToString())
    await asyncio.wait_for(ws.recv(), T)  # subscribed
    pub = await Client.open(s, s.token("p", "P"))
    await publish_many(pub, "lobby", "x", 5)
    for i in range(5):
        raw_ws = await asyncio.wait_for(ws.recv(), T)
        raw_grpc = await asyncio.get_running_loop().run_in_executor(None, out.get, True, T)
        assert raw_ws == raw_grpc, (raw_ws, raw_grpc)
        f = pb.ServerFrame()
        f.ParseFromString(raw_ws)
        assert f.event.message.rev == i + 1 and not f.event.replay, f
    m = s.metrics()
    assert m["parley_gateway_event_passthrough_total"] == 5, m
    assert m['parley_gateway_event_encodes_total{format="proto"}'] == 0, m
    assert m['parley_gateway_event_encodes_total{format="json"}'] == 0, m  # nobody in JSON
    stop.set()
    await pub.publish("lobby", "last", "wakes the gRPC reader so it stops")
    await ws.close()
    await pub.close()


async def case_replay_live(s):
    """Batches on, a subscriber resumes from 0 while another client keeps
    publishing: every rev exactly once, in order, replay flags right,
    Subscribed once, at the boundary."""
    pub = await Client.open(s, s.token("p", "P"))
    await publish_many(pub, "lobby", "old", 200)
    LIVE = 300

    async def keep_publishing():
        for i in range(0, LIVE, 10):
            await publish_many(pub, "lobby", "live%d-" % i, 10)

    task = asyncio.create_task(keep_publishing())
    await asyncio.sleep(0.05)
    b = await BatchClient.open(s, s.token("b", "B"))
    rid = await b.send({"subscribe": {"room": "lobby", "resumeAfterRev": "0"}})
    nxt, subscribed, head = 1, 0, None
    while nxt <= 200 + LIVE:
        f = await b.recv()
        if "event" in f:
            assert rev(f["event"]) == nxt, (rev(f["event"]), nxt)
            assert f["event"].get("replay", False) == (subscribed == 0), (f, subscribed)
            nxt += 1
        elif "subscribed" in f:
            assert f["requestId"] == str(rid), f
            subscribed += 1
            head = int(f["subscribed"]["room"]["headRev"])
            assert head == nxt - 1, (head, nxt)
    await task
    assert subscribed == 1, subscribed
    assert b.batches >= 1, (b.batches, b.batched_frames)
    print("  boundary at rev %d; %d frames came in %d batches" % (head, b.batched_frames, b.batches))
    await b.close()
    await pub.close()


async def case_slow_consumer(s):
    """Batches on, a client that stops reading is still closed 4508 and the
    one that reads gets everything."""
    pub = await Client.open(s, s.token("p", "P"))
    fast = await BatchClient.open(s, s.token("f", "F"))
    await fast.subscribe("lobby")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", s.port))
    slow_ws = await websockets.connect(s.ws, subprotocols=[JSON], sock=sock,
                                       max_queue=1, read_limit=4096, open_timeout=T)
    slow = Client(slow_ws)
    f = await slow.call({"authenticate": {"token": s.token("s", "S")}})
    assert "authenticated" in f
    f = await slow.call({"options": {"batch": True}})
    assert f["options"]["batch"] is True, f
    await slow.subscribe("lobby")
    n, body = 160, "y" * 40000
    got = 0
    for i in range(0, n, 8):
        await publish_many(pub, "lobby", "s%d-" % i, 8, body)
        while got < i + 8:
            f = await fast.recv()
            got += "event" in f
    m = s.metrics()
    assert m['parley_gateway_drops_total{reason="slow_consumer"}'] == 1, m
    code = await slow.closed_code()
    assert code == 4508, code
    assert got == n
    await pub.close()
    await fast.close()


CASES = {
    "json_batches": (case_json_batches, ["--rate", "1000", "--burst", "1000"]),
    "binary_batches": (case_binary_batches, ["--rate", "1000", "--burst", "1000"]),
    "passthrough": (case_passthrough, ["--rate", "1000", "--burst", "1000"]),
    "replay_live": (case_replay_live, ["--rate", "1000", "--burst", "1000"]),
    "slow_consumer": (case_slow_consumer, ["--rate", "10000", "--burst", "10000",
                                           "--sendq-frames", "64"], ["--max-body", "50000"]),
}


def main():
    names = sys.argv[1:] or list(CASES)
    failed = []
    for name in names:
        fn, args, *rest = CASES[name]
        t0 = time.time()
        try:
            with gwharness.Stack(gw_args=args, pd_args=rest[0] if rest else ()) as s:
                asyncio.run(asyncio.wait_for(fn(s), 90))
            print("ok   %-22s %.1fs" % (name, time.time() - t0), flush=True)
        except Exception:
            traceback.print_exc()
            print("FAIL %s" % name, flush=True)
            failed.append(name)
    if failed:
        print("failed:", " ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
