#!/usr/bin/python3
"""A client built from the PUBLISHED contract (proto/published/parley-v1.binpb,
the image buf breaking checks against) still works against this server:
protoc generates its Python classes from the image at test time, and with
Debian's grpcio it connects, subscribes (replay, Subscribed, live), publishes
(unary and on Connect, idempotent retry), reads history in every direction,
edits and deletes (ListRooms came after the image). What the server added since (Room.me and settings,
Error.rule, RoomEvent frames, the Rooms service) reaches it as unknown
fields it skips: a refusal is still a plain PERMISSION_DENIED, and a room
event is a frame with no kind it knows.

usage: test_published_client.py   (PARLEYD in the environment)"""
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time

import grpc

import roomsharness as H
from roomsharness import check, token

IMAGE = os.path.join(H.ROOT, "proto", "published", "parley-v1.binpb")


def published_classes():
    out = tempfile.mkdtemp(prefix="parley-published-py-")
    files = ["parley/v1/message.proto", "parley/v1/history.proto", "parley/v1/stream.proto"]
    subprocess.check_call(["protoc", "--descriptor_set_in=" + IMAGE, "--python_out", out] + files)
    sys.path.insert(0, out)
    from parley.v1 import history_pb2, message_pb2, stream_pb2  # noqa: E402
    # These are the published classes, not today's: no field of this work.
    assert "me" not in message_pb2.Room.DESCRIPTOR.fields_by_name
    assert "rule" not in stream_pb2.Error.DESCRIPTOR.fields_by_name
    return message_pb2, history_pb2, stream_pb2


def case_published(s):
    M, Hs, S = published_classes()
    ch = grpc.insecure_channel("127.0.0.1:%d" % s.grpc_port)
    grpc.channel_ready_future(ch).result(timeout=10)

    def unary(svc, meth, req_cls, resp_cls):
        return ch.unary_unary("/parley.v1.%s/%s" % (svc, meth), request_serializer=req_cls.SerializeToString,
                              response_deserializer=resp_cls.FromString)
    create = unary("History", "CreateRoom", Hs.CreateRoomRequest, Hs.CreateRoomResponse)
    get_room = unary("History", "GetRoom", Hs.GetRoomRequest, Hs.GetRoomResponse)
    list_messages = unary("History", "ListMessages", Hs.ListMessagesRequest, Hs.ListMessagesResponse)
    edit = unary("History", "EditMessage", Hs.EditMessageRequest, Hs.EditMessageResponse)
    delete = unary("History", "DeleteMessage", Hs.DeleteMessageRequest, Hs.DeleteMessageResponse)
    publish = unary("Stream", "Publish", S.PublishRequest, S.PublishResponse)

    org = (("authorization", "Bearer " + token(s, "olga", role="organizer")),)
    pat = (("authorization", "Bearer " + token(s, "pat", role="participant")),)
    r = create(Hs.CreateRoomRequest(name="old-client"), metadata=org)
    check(r.created and r.room.name == "old-client", "CreateRoom")
    for i in range(3):
        publish(S.PublishRequest(room="old-client", client_msg_id="p%d" % i, body="hello %d" % i), metadata=pat)
    again = publish(S.PublishRequest(room="old-client", client_msg_id="p0", body="retry"), metadata=pat)
    check(again.duplicate and again.message.seq == 1, "Publish retry: duplicate, the original")
    room = get_room(Hs.GetRoomRequest(name="old-client"), metadata=pat).room
    check(room.head_seq == 3 and room.head_rev == 3, "GetRoom counters")
    page = list_messages(Hs.ListMessagesRequest(room="old-client", limit=2), metadata=pat)
    check([m.seq for m in page.messages] == [2, 3] and page.has_more, "ListMessages newest page")
    older = list_messages(Hs.ListMessagesRequest(room="old-client", before_seq=2), metadata=pat)
    check([m.seq for m in older.messages] == [1], "ListMessages before_seq")

    # Connect: subscribe with a resume point, replay, Subscribed, live.
    out = queue.Queue()
    inbox = queue.Queue()

    def frames():
        while True:
            f = out.get()
            if f is None:
                return
            yield f
    connect = ch.stream_stream("/parley.v1.Stream/Connect", request_serializer=S.ClientFrame.SerializeToString,
                               response_deserializer=S.ServerFrame.FromString)
    call = connect(frames(), metadata=pat)

    def reader():
        try:
            for f in call:
                inbox.put(f)
        except grpc.RpcError:
            pass
        inbox.put(None)
    threading.Thread(target=reader, daemon=True).start()

    def recv(pred, what):
        deadline = time.time() + 10
        seen = []
        while time.time() < deadline:
            try:
                f = inbox.get(timeout=max(0.05, deadline - time.time()))
            except queue.Empty:
                break
            if f is None:
                break
            if pred(f):
                return f, seen
            seen.append(f)
        raise H.Failed("no %s; got %s" % (what, seen))

    out.put(S.ClientFrame(request_id=1, subscribe=S.Subscribe(room="old-client", resume_after_rev=1)))
    f, replay = recv(lambda f: f.WhichOneof("kind") == "subscribed", "Subscribed")
    check([x.event.message.rev for x in replay] == [2, 3] and all(x.event.replay for x in replay),
          "replay after rev 1, then Subscribed")
    out.put(S.ClientFrame(request_id=2, publish=S.PublishRequest(room="old-client", client_msg_id="c1",
                                                                   body="live")))
    ack, before = recv(lambda f: f.WhichOneof("kind") == "ack", "Ack")
    check(ack.request_id == 2 and ack.ack.message.seq == 4, "publish on Connect acked")
    ev, _ = recv(lambda f: f.WhichOneof("kind") == "event" and not f.event.replay, "the live event")
    check(ev.event.message.seq == 4 and ev.event.type == S.EVENT_TYPE_CREATED, "live event")
    e = edit(Hs.EditMessageRequest(room="old-client", seq=4, body="live, edited"), metadata=pat)
    check(e.message.edited_at_ms > 0, "EditMessage")
    ev, _ = recv(lambda f: f.WhichOneof("kind") == "event", "the edit event")
    check(ev.event.type == S.EVENT_TYPE_EDITED, "edit event")
    # An organizer deletes pat's message: the old client sees the DELETED
    # event, then a frame whose kind it does not know (the RoomEvent).
    delete(Hs.DeleteMessageRequest(room="old-client", seq=1), metadata=org)
    ev, _ = recv(lambda f: f.WhichOneof("kind") == "event", "the delete event")
    check(ev.event.type == S.EVENT_TYPE_DELETED and ev.event.message.deleted, "delete event")
    unknown, _ = recv(lambda f: True, "the next frame")
    check(unknown.WhichOneof("kind") is None and unknown.request_id == 0,
          "a RoomEvent reaches the old client as a frame with no kind it knows (skipped)")
    out.put(S.ClientFrame(request_id=3, ping=S.Ping(nonce=7)))
    pong, _ = recv(lambda f: f.WhichOneof("kind") == "pong", "Pong")
    check(pong.pong.nonce == 7, "still pings after it")

    # A rule's refusal is a plain PERMISSION_DENIED to it.
    # (The backend mutes pat with today's contract; the old client has no
    # Rooms classes, so the request is encoded by hand: room = 1, user_id
    # = 2, action = 3 MUTE.)
    mute = ch.unary_unary("/parley.v1.Rooms/Moderate")
    req = b"\x0a\x0aold-client" + b"\x12\x03pat" + b"\x18\x01"
    mute(req, metadata=org)
    out.put(S.ClientFrame(request_id=4, publish=S.PublishRequest(room="old-client", client_msg_id="c2",
                                                                   body="muted?")))
    err, _ = recv(lambda f: f.WhichOneof("kind") == "error", "the refusal")
    check(err.request_id == 4 and err.error.code == M.ERROR_CODE_PERMISSION_DENIED and "MUTED" in err.error.detail,
          "the old client reads the refusal as PERMISSION_DENIED, the detail naming the rule")
    try:
        publish(S.PublishRequest(room="old-client", client_msg_id="u2", body="muted?"), metadata=pat)
        check(False, "unary publish while muted must fail")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.PERMISSION_DENIED, "unary: PERMISSION_DENIED")
    out.put(None)
    call.cancel()
    ch.close()


if __name__ == "__main__":
    sys.exit(H.run({"published": case_published}, sys.argv,
                   lambda name: H.gwharness.Stack(start_gateway=False)))
