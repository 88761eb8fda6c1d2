"""Limits on every path (docs/security.md): one write rate per user shared
by gRPC, WebSocket and REST and not reset by reconnecting; rooms per
Connect stream; history pages that fit the gRPC message limit on both hops
(a page of 1,000 bodies at the size limit must not fail).
Run: /usr/bin/python3 test_limits.py CASE."""
import asyncio
import json
import queue
import shutil
import sys
import tempfile
import time

import grpc
import jwt
import websockets

import sechelp
from sechelp import PB, Stubs, clean_env, expect, gateway, http, md, parleyd, rpc_error

SECRET = "l" * 40
ENV = clean_env(PARLEY_JWT_SECRET=SECRET)
T = 10


def token(sub, role="participant"):
    return jwt.encode({"sub": sub, "name": sub.title(), "role": role, "exp": int(time.time()) + 600},
                      SECRET, algorithm="HS256")


class Stack:
    def __init__(self, d, pd_args=(), gw_args=()):
        self.pd = parleyd(d, list(pd_args) + ["--rooms", "lobby,r1,r2,r3,r4"], ENV)
        self.grpc = "127.0.0.1:" + self.pd.match.group(1)
        self.gw = gateway(d, list(gw_args), ENV)
        self.http = "http://127.0.0.1:" + self.gw.match.group(1)
        self.ws = "ws://127.0.0.1:%s/v1/stream" % self.gw.match.group(1)
        deadline = time.time() + 20
        while http("GET", self.http + "/healthz")[0] != 200 and time.time() < deadline:
            time.sleep(0.05)

    def close(self):
        self.gw.stop()
        self.pd.stop()


async def ws_publish(url, tok, n, prefix):
    """Opens a session, publishes n messages; returns the answer kinds."""
    ws = await websockets.connect(url, subprotocols=["parley.v1.json"], open_timeout=T)
    await ws.send(json.dumps({"requestId": "1", "authenticate": {"token": tok}}))
    assert "authenticated" in json.loads(await asyncio.wait_for(ws.recv(), T))
    out = []
    for i in range(n):
        await ws.send(json.dumps({"requestId": str(10 + i), "publish": {
            "room": "lobby", "clientMsgId": "%s-%d" % (prefix, i), "body": "x"}}))
        f = json.loads(await asyncio.wait_for(ws.recv(), T))
        out.append("ack" if "ack" in f else f.get("error", {}).get("code", "?"))
    await ws.close()
    return out


def case_user_rate(d):
    # 5 writes at once, then 1 per second
    s = Stack(d, ["--user-rate", "1", "--user-burst", "5"])
    try:
        pb = PB(d)
        st = Stubs(grpc.insecure_channel(s.grpc), pb)
        S = pb.S
        ann = token("ann")
        for i in range(3):
            st.publish(S.PublishRequest(room="lobby", client_msg_id="g%d" % i, body="x"), metadata=md(ann))
        kinds = asyncio.run(ws_publish(s.ws, ann, 3, "w"))
        expect(kinds[:2] == ["ack", "ack"] and kinds[2] == "ERROR_CODE_RESOURCE_EXHAUSTED",
               "3 on gRPC + 2 on the WebSocket use the burst of 5; the 6th is refused (%s)" % kinds)
        kinds = asyncio.run(ws_publish(s.ws, ann, 1, "w2"))
        expect(kinds == ["ERROR_CODE_RESOURCE_EXHAUSTED"], "a new connection does not reset the bucket (%s)" % kinds)
        e = rpc_error(lambda: st.publish(S.PublishRequest(room="lobby", client_msg_id="g9", body="x"), metadata=md(ann)))
        expect(e is not None and e[0] == grpc.StatusCode.RESOURCE_EXHAUSTED and e[1] == "RESOURCE_EXHAUSTED",
               "gRPC Publish: RESOURCE_EXHAUSTED (%r)" % (e,))
        code, body, _ = http("PATCH", s.http + "/v1/rooms/lobby/messages/1", ann, {"body": "edited"})
        expect(code == 429 and body.get("code") == "RESOURCE_EXHAUSTED", "a REST edit counts too: 429 (%s %s)" % (code, body))
        bea = token("bea")
        r = st.publish(S.PublishRequest(room="lobby", client_msg_id="b1", body="x"), metadata=md(bea))
        expect(r.message.author.id == "bea", "another user is not slowed down")
        time.sleep(1.2)
        r = st.publish(S.PublishRequest(room="lobby", client_msg_id="g10", body="x"), metadata=md(ann))
        expect(r.message.seq > 0, "a second later one more write passes")
        page = st.list_messages(pb.H.ListMessagesRequest(room="lobby", limit=100), metadata=md(ann))
        ids = [m.client_msg_id for m in page.messages]
        expect(ids == ["g0", "g1", "g2", "w-0", "w-1", "b1", "g10"], "exactly the accepted writes are stored (%s)" % ids)
    finally:
        s.close()


def case_max_subs(d):
    s = Stack(d, ["--max-subs", "3"])
    try:
        pb = PB(d)
        st = Stubs(grpc.insecure_channel(s.grpc), pb)
        S = pb.S
        q = queue.Queue()
        for i, room in enumerate(["r1", "r2", "r3", "r4"], 1):
            q.put(S.ClientFrame(request_id=i, subscribe=S.Subscribe(room=room)))
        call = st.connect(iter(q.get, None), metadata=md(token("ann")))
        got = {}
        for f in call:
            got[f.request_id] = f.WhichOneof("kind"), f
            if len(got) == 4:
                break
        q.put(None)
        call.cancel()
        expect([got[i][0] for i in (1, 2, 3)] == ["subscribed"] * 3, "three rooms followed")
        expect(got[4][0] == "error" and got[4][1].error.code == pb.M.ERROR_CODE_RESOURCE_EXHAUSTED,
               "the fourth is refused RESOURCE_EXHAUSTED")
        # A service's stream (a gateway's shared link) carries the rooms of
        # many users and is not held to a user's limit.
        svc = jwt.encode({"svc": "gateway", "exp": int(time.time()) + 600}, SECRET, algorithm="HS256")
        q = queue.Queue()
        rooms = ["lobby", "r1", "r2", "r3", "r4"]
        for i, room in enumerate(rooms, 1):
            q.put(S.ClientFrame(request_id=i, subscribe=S.Subscribe(room=room)))
        call = st.connect(iter(q.get, None), metadata=md(svc))
        got = {}
        for f in call:
            got[f.request_id] = f.WhichOneof("kind")
            if len(got) == len(rooms):
                break
        q.put(None)
        call.cancel()
        expect([got.get(i) for i in range(1, 6)] == ["subscribed"] * 5,
               "a service stream follows 5 rooms past --max-subs 3 (%s)" % got)
    finally:
        s.close()


async def ws_follow(url, tok, rooms):
    """One session subscribes to each room; returns the answer kinds."""
    ws = await websockets.connect(url, subprotocols=["parley.v1.json"], open_timeout=T)
    await ws.send(json.dumps({"requestId": "1", "authenticate": {"token": tok}}))
    assert "authenticated" in json.loads(await asyncio.wait_for(ws.recv(), T))
    out = {}
    for i, room in enumerate(rooms):
        await ws.send(json.dumps({"requestId": str(10 + i), "subscribe": {"room": room}}))
    while len(out) < len(rooms):
        f = json.loads(await asyncio.wait_for(ws.recv(), T))
        rid = f.get("requestId")
        if rid and int(rid) >= 10:
            out[rooms[int(rid) - 10]] = "subscribed" if "subscribed" in f else f.get("error", {}).get("code", "?")
    await ws.close()
    return out


def case_gateway_rooms(d):
    # One upstream link and a core that lets a user's stream follow 3
    # rooms: the gateway still follows the 5 its users watch.
    s = Stack(d, ["--max-subs", "3"], ["--upstream-links", "1"])
    try:
        got = asyncio.run(ws_follow(s.ws, token("ann"), ["lobby", "r1", "r2", "r3", "r4"]))
        expect(list(got.values()) == ["subscribed"] * 5,
               "a gateway on one link follows 5 rooms past the core's --max-subs 3 (%s)" % got)
    finally:
        s.close()


def case_page_bytes(d):
    s = Stack(d, ["--user-rate", "0"])
    try:
        pb = PB(d)
        st = Stubs(grpc.insecure_channel(s.grpc), pb)
        S, H = pb.S, pb.H
        olga = token("olga", "organizer")
        body = "é" * 2048  # 4096 bytes: the default body limit
        q = queue.Queue()
        for i in range(1000):
            q.put(S.ClientFrame(request_id=i + 1, publish=S.PublishRequest(room="lobby", client_msg_id="p%d" % i,
                                                                          body=body)))
        call = st.connect(iter(q.get, None), metadata=md(olga))
        acks = 0
        for f in call:
            if f.WhichOneof("kind") == "ack":
                acks += 1
            if acks == 1000:
                break
        q.put(None)
        call.cancel()
        expect(acks == 1000, "1,000 bodies of 4,096 bytes stored")
        page = st.list_messages(H.ListMessagesRequest(room="lobby", limit=1000), metadata=md(olga))
        n0 = len(page.messages)
        expect(0 < n0 < 1000 and page.has_more and page.messages[-1].seq == 1000,
               "gRPC: the newest page fits the message limit: %d newest rows, has_more" % n0)
        seen = [m.seq for m in page.messages]
        while page.has_more:
            page = st.list_messages(H.ListMessagesRequest(room="lobby", limit=1000, before_seq=seen[0]),
                                    metadata=md(olga))
            seen = [m.seq for m in page.messages] + seen
        expect(seen == list(range(1, 1001)), "paging back before_seq yields all 1,000, each once")
        seen, after = [], 0
        while True:
            page = st.list_messages(H.ListMessagesRequest(room="lobby", limit=1000, after_rev=after),
                                    metadata=md(olga))
            seen += [m.rev for m in page.messages]
            if not page.has_more:
                break
            after = seen[-1]
        expect(seen == list(range(1, 1001)), "paging after_rev yields all 1,000, each once")
        code, j, _ = http("GET", s.http + "/v1/rooms/lobby/messages?limit=1000", olga)
        expect(code == 200 and j["hasMore"] and len(j["messages"]) == n0,
               "REST through the gateway: 200 with the same page (%s)" % code)

        async def replay():
            ws = await websockets.connect(s.ws, subprotocols=["parley.v1.proto"], open_timeout=T, max_size=None)
            cf = S.ClientFrame(request_id=1)
            cf.authenticate.token = olga
            await ws.send(cf.SerializeToString())
            await asyncio.wait_for(ws.recv(), T)
            cf = S.ClientFrame(request_id=2)
            cf.subscribe.room = "lobby"
            await ws.send(cf.SerializeToString())
            revs = []
            while True:
                f = S.ServerFrame()
                f.ParseFromString(await asyncio.wait_for(ws.recv(), 30))
                if f.WhichOneof("kind") == "event":
                    revs.append(f.event.message.rev)
                elif f.WhichOneof("kind") == "subscribed":
                    break
            await ws.close()
            return revs
        revs = asyncio.run(replay())
        expect(revs == list(range(1, 1001)), "a WebSocket subscribe from rev 0 replays all 1,000 (%d)" % len(revs))
    finally:
        s.close()


CASES = {"user_rate": case_user_rate, "max_subs": case_max_subs, "gateway_rooms": case_gateway_rooms,
         "page_bytes": case_page_bytes}


def main():
    for name in sys.argv[1:] or list(CASES):
        d = tempfile.mkdtemp(prefix="parley-lim-")
        t0 = time.time()
        try:
            CASES[name](d)
        finally:
            shutil.rmtree(d, ignore_errors=True)
        print("ok   %-20s %.1fs" % (name, time.time() - t0), flush=True)


if __name__ == "__main__":
    main()
