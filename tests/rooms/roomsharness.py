"""roomsharness: what the rooms tests share. A real parleyd (and, for the
WebSocket and REST cases, a real parley-gateway) from tests/gateway's
gwharness; tokens with a `rooms` claim; the parley.v1 Python classes
compiled by protoc at test time; a gRPC client on Debian's grpcio (unary
calls that return the status, the parley error code and the rule) and a
Connect stream read on a thread.

Environment (set by ctest): PARLEYD, PARLEY_GATEWAY, PARLEY_ROOT."""
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time

import grpc
import jwt

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "gateway"))
import gwharness  # noqa: E402

ROOT = gwharness.ROOT
_PB = None


def pb():
    """The parley.v1 message modules, compiled once per process."""
    global _PB
    if _PB is None:
        out = tempfile.mkdtemp(prefix="parley-rooms-py-")
        protos = ["parley/v1/%s.proto" % n for n in ("message", "history", "stream", "rooms")]
        subprocess.check_call(["protoc", "-I", os.path.join(ROOT, "proto"), "--python_out", out] + protos)
        sys.path.insert(0, out)
        from parley.v1 import history_pb2, message_pb2, rooms_pb2, stream_pb2  # noqa: E402

        class NS:
            M, H, S, R = message_pb2, history_pb2, stream_pb2, rooms_pb2
        _PB = NS
    return _PB


def token(stack, sub, rooms=None, role=None, name=None, exp_in=3600):
    """A user token: `rooms` (dict pattern -> role) and/or `role`."""
    claims = {"sub": sub, "name": name or sub.capitalize(), "exp": int(time.time()) + exp_in}
    if rooms is not None:
        claims["rooms"] = rooms
    if role is not None:
        claims["role"] = role
    return jwt.encode(claims, stack.secret, algorithm="HS256")


class Failed(Exception):
    pass


class Result:
    """A unary call's outcome: resp (on OK), code (grpc.StatusCode), the
    parley-error-code and parley-rule trailers, and the details."""

    def __init__(self, resp=None, code=grpc.StatusCode.OK, perr="", rule="", details=""):
        self.resp, self.code, self.perr, self.rule, self.details = resp, code, perr, rule, details

    def __repr__(self):
        return "Result(%s %s %s %r)" % (self.code.name, self.perr, self.rule, self.details)


class Client:
    """grpcio against parleyd's TCP port."""

    METHODS = {
        "History": {"ListMessages": "ListMessagesResponse", "GetMessage": "GetMessageResponse",
                    "EditMessage": "EditMessageResponse", "DeleteMessage": "DeleteMessageResponse",
                    "CreateRoom": "CreateRoomResponse", "GetRoom": "GetRoomResponse",
                    "ListRooms": "ListRoomsResponse"},
        "Stream": {"Publish": "PublishResponse"},
        "Rooms": {"UpdateRoom": "UpdateRoomResponse", "DeleteRoom": "DeleteRoomResponse",
                  "AddMember": "AddMemberResponse", "RemoveMember": "RemoveMemberResponse",
                  "ListMembers": "ListMembersResponse", "Moderate": "ModerateResponse",
                  "ListActions": "ListActionsResponse", "EraseUser": "EraseUserResponse",
                  "MarkRead": "MarkReadResponse"},
    }

    def __init__(self, stack):
        self.p = pb()
        self.ch = grpc.insecure_channel("127.0.0.1:%d" % stack.grpc_port)
        grpc.channel_ready_future(self.ch).result(timeout=10)

    def _module(self, svc):
        return {"History": self.p.H, "Stream": self.p.S, "Rooms": self.p.R}[svc]

    def call(self, svc, method, tok, **fields):
        mod = self._module(svc)
        resp_cls = getattr(mod, self.METHODS[svc][method])
        req_name = method + "Request" if svc != "Stream" else "PublishRequest"
        req = getattr(mod, req_name)(**fields)
        fn = self.ch.unary_unary("/parley.v1.%s/%s" % (svc, method),
                                 request_serializer=lambda m: m.SerializeToString(),
                                 response_deserializer=resp_cls.FromString)
        md = (("authorization", "Bearer " + tok),) if tok else ()
        try:
            return Result(fn(req, metadata=md, timeout=20))
        except grpc.RpcError as e:
            tr = dict(e.trailing_metadata() or ())
            return Result(None, e.code(), tr.get("parley-error-code", ""), tr.get("parley-rule", ""),
                          e.details())

    def ok(self, svc, method, tok, **fields):
        r = self.call(svc, method, tok, **fields)
        if r.code != grpc.StatusCode.OK:
            raise Failed("%s.%s failed: %r" % (svc, method, r))
        return r.resp

    def denied(self, rule, svc, method, tok, **fields):
        """Expects PERMISSION_DENIED naming rule (in trailer and detail)."""
        r = self.call(svc, method, tok, **fields)
        check(r.code == grpc.StatusCode.PERMISSION_DENIED and r.perr == "PERMISSION_DENIED"
              and r.rule == rule and ("rule %s" % rule) in r.details,
              "%s.%s refused with %s: %r" % (svc, method, rule, r))
        return r

    def publish(self, tok, room, cid, body):
        return self.call("Stream", "Publish", tok, room=room, client_msg_id=cid, body=body)

    def connect(self, tok):
        return Conn(self, tok)

    def close(self):
        self.ch.close()


class Conn:
    """A Connect stream: send(frame kwargs), recv(timeout) -> ServerFrame or
    None on timeout; ended holds the final status once the stream ends."""

    def __init__(self, client, tok):
        S = client.p.S
        self.S = S
        self.out = queue.Queue()
        self.inbox = queue.Queue()
        self.ended = None
        self.rid = 0

        def frames():
            while True:
                f = self.out.get()
                if f is None:
                    return
                yield f
        fn = client.ch.stream_stream("/parley.v1.Stream/Connect",
                                     request_serializer=S.ClientFrame.SerializeToString,
                                     response_deserializer=S.ServerFrame.FromString)
        self.call = fn(frames(), metadata=(("authorization", "Bearer " + tok),))

        def reader():
            try:
                for f in self.call:
                    self.inbox.put(f)
            except grpc.RpcError as e:
                self.ended = e.code()
            else:
                self.ended = grpc.StatusCode.OK
            self.inbox.put(None)
        self.t = threading.Thread(target=reader, daemon=True)
        self.t.start()

    def send(self, **kind):
        self.rid += 1
        self.out.put(self.S.ClientFrame(request_id=self.rid, **kind))
        return self.rid

    def subscribe(self, room, after=0):
        return self.send(subscribe=self.S.Subscribe(room=room, resume_after_rev=after))

    def publish(self, room, cid, body):
        return self.send(publish=self.S.PublishRequest(room=room, client_msg_id=cid, body=body))

    def recv(self, timeout=10):
        try:
            return self.inbox.get(timeout=timeout)
        except queue.Empty:
            return None

    def until(self, pred, timeout=10, what="a frame"):
        """Frames until pred(frame) holds; returns (that frame, the ones before)."""
        seen = []
        deadline = time.time() + timeout
        while time.time() < deadline:
            f = self.recv(max(0.05, deadline - time.time()))
            if f is None:
                break
            if pred(f):
                return f, seen
            seen.append(f)
        raise Failed("no %s within %ss; got %s" % (what, timeout, [kind(x) for x in seen]))

    def subscribed(self, room, after=0):
        rid = self.subscribe(room, after)
        f, before = self.until(lambda f: f.request_id == rid and kind(f) in ("subscribed", "error"),
                               what="answer to subscribe %s" % room)
        return f, before

    def close(self):
        self.out.put(None)
        self.call.cancel()


def kind(f):
    return f.WhichOneof("kind") if f is not None else None


failures = []


def check(cond, what):
    if cond:
        print("ok:", what, flush=True)
    else:
        failures.append(what)
        print("FAIL:", what, flush=True)
    return cond


def store_args(name):
    """parleyd's store for one case: with PARLEY_ROOMS_STORE=postgres, a
    fresh database of the PostgreSQL that PARLEY_PG_URI names (tests/pg
    pgtmp exec); else nothing (an SQLite file in the stack's temp dir)."""
    if os.environ.get("PARLEY_ROOMS_STORE") != "postgres":
        return []
    db = "rooms_%d_%s" % (os.getpid(), name.lower())
    psql = "/usr/lib/postgresql/15/bin/psql"
    subprocess.run([psql, "-q", "-v", "ON_ERROR_STOP=1", os.environ["PARLEY_PG_URI"], "-c",
                    "CREATE DATABASE " + db], check=True)
    return ["--store", "postgres://%s@/%s?host=%s&port=%s" % (
        os.environ["PARLEY_PG_USER"], db, os.environ["PARLEY_PG_HOST"], os.environ["PARLEY_PG_PORT"])]


def run(cases, argv, make_stack):
    """Runs the named cases (all by default), each on its own stack."""
    names = argv[1:] or list(cases)
    for name in names:
        print("== %s" % name, flush=True)
        stack = make_stack(name)
        try:
            cases[name](stack)
        except Exception as e:  # a failed expectation or a crash: both count
            import traceback
            traceback.print_exc()
            failures.append("%s: %s" % (name, e))
        finally:
            stack.close()
    if failures:
        print("%d failure(s):" % len(failures))
        for f in failures:
            print("  -", f)
        return 1
    print("all passed")
    return 0


# ---- WebSocket (the gateway), proto3 JSON or binary ----

class WS:
    """One WebSocket session on the gateway (Python websockets), JSON
    (parley.v1.json, frames as dicts) or binary (parley.v1.proto, frames
    as ServerFrame messages turned into the same dicts)."""

    def __init__(self, stack, tok, json_proto=True):
        self.stack, self.tok, self.json = stack, tok, json_proto
        self.rid = 0
        self.ws = None

    async def open(self):
        import websockets
        sub = "parley.v1.json" if self.json else "parley.v1.proto"
        self.ws = await websockets.connect(self.stack.ws, subprotocols=[sub])
        f = await self.request(authenticate={"token": self.tok})
        if "authenticated" not in f:
            raise Failed("authenticate failed: %s" % f)
        return self

    async def send(self, **kind):
        self.rid += 1
        frame = dict(requestId=str(self.rid), **kind)
        if self.json:
            import json
            await self.ws.send(json.dumps(frame))
        else:
            from google.protobuf import json_format
            p = pb()
            await self.ws.send(json_format.ParseDict(frame, p.S.ClientFrame()).SerializeToString())
        return str(self.rid)

    async def recv(self, timeout=10):
        import asyncio
        import json
        try:
            raw = await asyncio.wait_for(self.ws.recv(), timeout)
        except asyncio.TimeoutError:
            return None
        if self.json:
            return json.loads(raw)
        from google.protobuf import json_format
        f = pb().S.ServerFrame.FromString(raw)
        return json_format.MessageToDict(f)

    async def until(self, pred, timeout=10, what="a frame"):
        import time as _t
        deadline = _t.time() + timeout
        seen = []
        while _t.time() < deadline:
            f = await self.recv(max(0.05, deadline - _t.time()))
            if f is None:
                break
            if pred(f):
                return f, seen
            seen.append(f)
        raise Failed("no %s within %ss; got %s" % (what, timeout, seen))

    async def request(self, **kind):
        rid = await self.send(**kind)
        f, _ = await self.until(lambda f: f.get("requestId") == rid, what="answer to %s" % list(kind))
        return f

    async def subscribe(self, room, after=0):
        rid = await self.send(subscribe={"room": room, "resumeAfterRev": str(after)})
        f, before = await self.until(lambda f: f.get("requestId") == rid
                                     and ("subscribed" in f or "error" in f),
                                     what="answer to subscribe %s" % room)
        return f, before

    async def publish(self, room, cid, body):
        return await self.request(publish={"room": room, "clientMsgId": cid, "body": body})

    async def close(self):
        if self.ws is not None:
            await self.ws.close()


def wkind(f):
    """The kind of a ServerFrame dict."""
    for k in ("event", "subscribed", "ack", "error", "pong", "unsubscribed", "authenticated",
              "roomEvent", "presence", "typing", "batch", "options"):
        if k in f:
            return k
    return None
