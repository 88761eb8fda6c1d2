"""sechelp: what the security tests share. The stack itself is the gateway
tests' harness (tests/gateway/gwharness.py: a real parleyd and
parley-gateway on OS-picked ports in a temp dir); this adds the parley.v1
Python classes, grpcio stubs by method path, and the check helpers."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "gateway"))
import gwharness  # noqa: E402,F401

import grpc  # noqa: E402


class PB:
    """The generated message modules: PB(dir).S (stream), .H (history),
    .M (message)."""

    def __init__(self, tmpdir):
        S = gwharness.proto_classes(tmpdir)
        from parley.v1 import history_pb2, message_pb2  # noqa: E402
        self.S, self.H, self.M = S, history_pb2, message_pb2


class Stubs:
    """grpcio callables for every parley.v1 method on a channel."""

    def __init__(self, ch, pb):
        H, S = pb.H, pb.S

        def u(svc, meth, req, resp):
            return ch.unary_unary("/parley.v1.%s/%s" % (svc, meth),
                                  request_serializer=req.SerializeToString,
                                  response_deserializer=resp.FromString)
        self.list_messages = u("History", "ListMessages", H.ListMessagesRequest, H.ListMessagesResponse)
        self.get_message = u("History", "GetMessage", H.GetMessageRequest, H.GetMessageResponse)
        self.edit_message = u("History", "EditMessage", H.EditMessageRequest, H.EditMessageResponse)
        self.delete_message = u("History", "DeleteMessage", H.DeleteMessageRequest, H.DeleteMessageResponse)
        self.create_room = u("History", "CreateRoom", H.CreateRoomRequest, H.CreateRoomResponse)
        self.get_room = u("History", "GetRoom", H.GetRoomRequest, H.GetRoomResponse)
        self.publish = u("Stream", "Publish", S.PublishRequest, S.PublishResponse)
        self.connect = ch.stream_stream("/parley.v1.Stream/Connect",
                                        request_serializer=S.ClientFrame.SerializeToString,
                                        response_deserializer=S.ServerFrame.FromString)
        self.raw_publish = ch.unary_unary("/parley.v1.Stream/Publish")


def md(tok):
    return (("authorization", "Bearer " + tok),)


def rpc_error(fn):
    """Runs fn; returns (grpc status code, parley-error-code trailer, details)
    of the error it raised, or None if it succeeded."""
    try:
        fn()
    except grpc.RpcError as e:
        trail = dict(e.trailing_metadata() or ())
        return e.code(), trail.get("parley-error-code"), e.details()
    return None


def expect(cond, what):
    if not cond:
        raise AssertionError(what)
    print("ok:", what, flush=True)
