#!/usr/bin/python3
"""gRPC server reflection against a real parleyd, with a client that knows
only the reflection protocol: Debian's python3-grpcio plus message classes
made from reflection.proto alone (protoc --descriptor_set_out of the
vendored proto/grpc/reflection files, nothing of parley). Everything about
parley comes from the server: the client lists the services, asks for the
files that define them, loads the FileDescriptorProtos it received into a
fresh descriptor pool, builds message classes from them with
message_factory, and calls every method of History and Stream (Connect
included), then Health, the way grpcurl, Postman or Evans would.

Both protocol versions (v1 and v1alpha) are checked, the lookups by file
name and by symbol (services, methods, messages, fields, enum values), the
errors (unknown names, extensions), that the served descriptors are exactly
what protoc compiles from proto/, and that --no-reflection turns it off.

usage: test_reflection.py PARLEYD_BINARY
"""
import os
import queue
import subprocess
import sys
import tempfile
import threading

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from opsharness import ROOT, Parleyd, check, finish, md, token  # noqa: E402


def compile_set(files, include=os.path.join(ROOT, "proto")):
    """protoc's FileDescriptorSet of files (and their imports)."""
    out = os.path.join(tempfile.mkdtemp(prefix="parley-refl-"), "set.pb")
    subprocess.run(["protoc", "-I", include, "--include_imports",
                    "--descriptor_set_out", out] + files, check=True)
    fds = descriptor_pb2.FileDescriptorSet()
    with open(out, "rb") as f:
        fds.ParseFromString(f.read())
    return fds


def classes_from(fds):
    pool = descriptor_pool.DescriptorPool()
    for fd in fds.file:
        pool.Add(fd)
    return pool, message_factory.MessageFactory(pool)


class Reflection:
    """The reflection protocol of one version, and nothing else."""

    def __init__(self, ch, version):
        fds = compile_set(["grpc/reflection/%s/reflection.proto" % version])
        pool, factory = classes_from(fds)
        pkg = "grpc.reflection.%s." % version
        self.Req = factory.GetPrototype(pool.FindMessageTypeByName(pkg + "ServerReflectionRequest"))
        self.Resp = factory.GetPrototype(pool.FindMessageTypeByName(pkg + "ServerReflectionResponse"))
        self.Ext = factory.GetPrototype(pool.FindMessageTypeByName(pkg + "ExtensionRequest"))
        self.info = ch.stream_stream("/%sServerReflection/ServerReflectionInfo" % pkg,
                                     request_serializer=self.Req.SerializeToString,
                                     response_deserializer=self.Resp.FromString)

    def ask(self, *reqs):
        """Sends reqs on one stream; the answers, in order."""
        return list(self.info(iter(reqs), timeout=20))


def load_files(pool, blobs):
    """Adds FileDescriptorProtos (serialized) to pool, each after its
    imports, skipping files it already has. Returns their names."""
    todo = []
    for b in blobs:
        fd = descriptor_pb2.FileDescriptorProto()
        fd.ParseFromString(b)
        todo.append(fd)
    names = [fd.name for fd in todo]
    have = set()
    while todo:
        progress = False
        for fd in list(todo):
            try:
                pool.FindFileByName(fd.name)
                have.add(fd.name)
                todo.remove(fd)
                progress = True
                continue
            except KeyError:
                pass
            if all(d in have or _has(pool, d) for d in fd.dependency):
                pool.Add(fd)
                have.add(fd.name)
                todo.remove(fd)
                progress = True
        if not progress:
            raise RuntimeError("imports missing from the answer: %s" % [f.name for f in todo])
    return names


def _has(pool, name):
    try:
        pool.FindFileByName(name)
        return True
    except KeyError:
        return False


WANT_SERVICES = {"parley.v1.History", "parley.v1.Stream", "parley.v1.Rooms",
                 "grpc.health.v1.Health",
                 "grpc.reflection.v1.ServerReflection",
                 "grpc.reflection.v1alpha.ServerReflection"}


def check_protocol(r, version):
    """Every kind of request, on one stream (as grpcurl does)."""
    R = r.Req
    answers = r.ask(
        R(host="h1", list_services=""),
        R(file_by_filename="parley/v1/stream.proto"),
        R(file_containing_symbol="parley.v1.History.ListMessages"),
        R(file_containing_symbol="parley.v1.Message"),
        R(file_containing_symbol=".parley.v1.Room"),
        R(file_containing_symbol="parley.v1.Message.body"),
        R(file_containing_symbol="parley.v1.ROLE_ORGANIZER"),
        R(file_containing_symbol="grpc.health.v1.HealthCheckResponse.ServingStatus"),
        R(file_containing_symbol="parley.v1.NoSuchThing"),
        R(file_by_filename="parley/v9/nope.proto"),
        R(all_extension_numbers_of_type="parley.v1.Message"),
        R(all_extension_numbers_of_type="parley.v1.Nope"),
        R(file_containing_extension=r.Ext(containing_type="parley.v1.Message", extension_number=100)),
        R(),
    )
    check(len(answers) == 14, "%s: one answer per request (%d)" % (version, len(answers)))
    if len(answers) != 14:
        return
    ls = answers[0]
    got = {s.name for s in ls.list_services_response.service}
    check(got == WANT_SERVICES, "%s: list_services names the served services: %s" % (version, sorted(got)))
    check(ls.valid_host == "h1" and ls.original_request.list_services == "",
          "%s: valid_host and original_request are echoed" % version)

    def files_of(a):
        out = []
        for b in a.file_descriptor_response.file_descriptor_proto:
            fd = descriptor_pb2.FileDescriptorProto()
            fd.ParseFromString(b)
            out.append(fd.name)
        return out

    check(files_of(answers[1]) == ["parley/v1/stream.proto", "parley/v1/message.proto"],
          "%s: file_by_filename sends the file then its imports: %s" % (version, files_of(answers[1])))
    check(answers[1].original_request.file_by_filename == "parley/v1/stream.proto",
          "%s: the request is echoed" % version)
    for i, want in ((2, "parley/v1/history.proto"), (3, "parley/v1/message.proto"),
                    (4, "parley/v1/message.proto"), (5, "parley/v1/message.proto"),
                    (6, "parley/v1/message.proto"), (7, "grpc/health/v1/health.proto")):
        got = files_of(answers[i])
        check(got and got[0] == want,
              "%s: file_containing_symbol %s -> %s (got %s)" % (
                  version, answers[i].original_request.file_containing_symbol, want, got))
    for i in (8, 9, 11, 12):
        e = answers[i].error_response
        check(answers[i].WhichOneof("message_response") == "error_response" and e.error_code == 5,
              "%s: request %d is NOT_FOUND (%d %s)" % (version, i, e.error_code, e.error_message))
    en = answers[10].all_extension_numbers_response
    check(answers[10].WhichOneof("message_response") == "all_extension_numbers_response"
          and en.base_type_name == "parley.v1.Message" and list(en.extension_number) == [],
          "%s: all_extension_numbers_of_type: none declared" % version)
    check(answers[13].error_response.error_code == 3,
          "%s: a request with nothing set is INVALID_ARGUMENT" % version)


def check_same_as_protoc(r):
    """The served descriptors are protoc's, byte for byte in meaning."""
    want = {fd.name: fd for fd in compile_set(
        ["parley/v1/history.proto", "parley/v1/stream.proto", "grpc/health/v1/health.proto",
         "grpc/reflection/v1/reflection.proto", "grpc/reflection/v1alpha/reflection.proto"]).file}
    served = {}
    for name in want:
        a = r.ask(r.Req(file_by_filename=name))[0]
        for b in a.file_descriptor_response.file_descriptor_proto:
            fd = descriptor_pb2.FileDescriptorProto()
            fd.ParseFromString(b)
            served[fd.name] = fd
    check(set(served) == set(want), "every file of proto/ is served: %s" % sorted(served))
    check(all(served.get(n) == want[n] for n in want),
          "each served FileDescriptorProto equals protoc's compilation of proto/")


def call_everything(ch, r):
    """The client discovers parley and calls each method with classes made
    from the received descriptors."""
    pool = descriptor_pool.DescriptorPool()
    factory = message_factory.MessageFactory(pool)
    services = [s.name for s in r.ask(r.Req(list_services="*"))[0].list_services_response.service]
    for name in services:
        a = r.ask(r.Req(file_containing_symbol=name))[0]
        load_files(pool, a.file_descriptor_response.file_descriptor_proto)
    cls = lambda full: factory.GetPrototype(pool.FindMessageTypeByName(full))  # noqa: E731

    def stub(svc, m):
        d = pool.FindServiceByName(svc).FindMethodByName(m)
        In, Out = cls(d.input_type.full_name), cls(d.output_type.full_name)
        path = "/%s/%s" % (svc, m)
        if d.client_streaming and d.server_streaming:
            return In, ch.stream_stream(path, request_serializer=In.SerializeToString,
                                        response_deserializer=Out.FromString)
        if d.server_streaming:
            return In, ch.unary_stream(path, request_serializer=In.SerializeToString,
                                       response_deserializer=Out.FromString)
        return In, ch.unary_unary(path, request_serializer=In.SerializeToString,
                                  response_deserializer=Out.FromString)

    org = md(token("olga", role="organizer"))
    pat = md(token("pat"))
    called = set()

    def call(svc, m, meta, **fields):
        In, fn = stub(svc, m)
        called.add("%s/%s" % (svc, m))
        return fn(In(**fields), metadata=meta, timeout=10)

    H, S = "parley.v1.History", "parley.v1.Stream"
    r1 = call(H, "CreateRoom", org, name="refl")
    check(r1.created and r1.room.name == "refl", "CreateRoom through reflected classes")
    p1 = call(S, "Publish", pat, room="refl", client_msg_id="c1", body="hello")
    p2 = call(S, "Publish", pat, room="refl", client_msg_id="c2", body="second")
    check(p1.message.seq == 1 and p2.message.seq == 2 and p1.message.author.id == "pat",
          "Publish (seq %d, %d)" % (p1.message.seq, p2.message.seq))
    lm = call(H, "ListMessages", pat, room="refl", limit=10)
    check([m.body for m in lm.messages] == ["hello", "second"] and lm.room.head_rev == 2,
          "ListMessages")
    check(call(H, "GetMessage", pat, room="refl", seq=2).message.body == "second", "GetMessage")
    check(call(H, "EditMessage", pat, room="refl", seq=1, body="hello!").message.rev == 3, "EditMessage")
    check(call(H, "DeleteMessage", pat, room="refl", seq=2).message.deleted, "DeleteMessage")
    check(call(H, "GetRoom", pat, name="refl").room.head_rev == 4, "GetRoom")
    lr = call(H, "ListRooms", pat, limit=2)
    check([x.name for x in lr.rooms] == ["lobby", "other"] and lr.has_more, "ListRooms page 1")
    lr2 = call(H, "ListRooms", pat, after_name="other")
    check([x.name for x in lr2.rooms] == ["refl"] and not lr2.has_more
          and lr2.rooms[0].head_seq == 2, "ListRooms page 2")

    # Connect: subscribe from rev 0 (replay), then publish on the stream.
    Frame, connect = stub(S, "Connect")
    called.add(S + "/Connect")
    Sub = cls("parley.v1.Subscribe")
    Pub = cls("parley.v1.PublishRequest")
    out = queue.Queue()

    def frames():
        while (f := out.get()) is not None:
            yield f
    stream = connect(frames(), metadata=pat, timeout=20)
    out.put(Frame(request_id=1, subscribe=Sub(room="refl", resume_after_rev=0)))
    seen = []
    acked = threading.Event()
    for f in stream:
        kind = f.WhichOneof("kind")
        seen.append((kind, f.event.message.rev if kind == "event" else f.request_id))
        if kind == "subscribed":
            out.put(Frame(request_id=2, publish=Pub(room="refl", client_msg_id="c3", body="live")))
        if kind == "ack":
            acked.set()
        if kind == "event" and not f.event.replay:
            break
    out.put(None)
    stream.cancel()
    check(seen[:3] == [("event", 3), ("event", 4), ("subscribed", 1)] and acked.is_set()
          and ("event", 5) in seen,
          "Connect: replay by rev, subscribed, ack, live event (%s)" % seen)

    # Health, also discovered.
    In, check_fn = stub("grpc.health.v1.Health", "Check")
    st = check_fn(In(service=""), timeout=10).status
    check(pool.FindEnumTypeByName("grpc.health.v1.HealthCheckResponse.ServingStatus")
          .values_by_number[st].name == "SERVING", "Health.Check through reflection")

    every = {"%s/%s" % (s, m.name) for s in (H, S) for m in pool.FindServiceByName(s).methods}
    check(every <= called, "every method of History and Stream was called: missing %s"
          % sorted(every - called))


def main():
    binary = sys.argv[1]
    srv = Parleyd(binary, metrics=False)
    off = None
    try:
        ch = grpc.insecure_channel(srv.addr)
        grpc.channel_ready_future(ch).result(timeout=10)
        for version in ("v1", "v1alpha"):
            check_protocol(Reflection(ch, version), version)
        r = Reflection(ch, "v1")
        check_same_as_protoc(r)
        call_everything(ch, r)
        # v1alpha only clients (older grpcurl) find the same.
        ra = Reflection(ch, "v1alpha")
        a = ra.ask(ra.Req(file_containing_symbol="parley.v1.Stream"))[0]
        check(len(a.file_descriptor_response.file_descriptor_proto) == 2,
              "v1alpha: Stream's file and its import")

        off = Parleyd(binary, extra=["--no-reflection"], metrics=False)
        ch2 = grpc.insecure_channel(off.addr)
        try:
            Reflection(ch2, "v1").ask(Reflection(ch2, "v1").Req(list_services=""))
            check(False, "--no-reflection should leave reflection unimplemented")
        except grpc.RpcError as e:
            check(e.code() == grpc.StatusCode.UNIMPLEMENTED,
                  "--no-reflection: UNIMPLEMENTED (%s)" % e.code())
    finally:
        rc = srv.stop()
        check(rc == 0, "parleyd exits 0 on SIGTERM (%s)" % rc)
        if off:
            off.stop()
    return finish()


if __name__ == "__main__":
    sys.exit(main())
