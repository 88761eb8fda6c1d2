#!/usr/bin/python3
"""parleyd's log lines: one line per event with a level, text by default,
JSON lines with --log-format json, and never a token or the secret.

Two real parleyd runs at --log-level debug (a line per call): one with the
secret in a file and JSON logs, one with the secret in the environment and
text logs. Clients then do everything that carries a token or could make
parleyd talk about one: calls with a valid token, a badly signed one, an
expired one, an Authenticate frame on Connect, a token used as a room
name, and bodies holding the token and the secret. Then the logs (and
stdout) are searched for the secret, for every token, and for anything
shaped like a JWT.

usage: test_logs.py PARLEYD_BINARY
"""
import json
import os
import queue
import re
import subprocess
import sys
import tempfile

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from opsharness import ROOT, Parleyd, check, finish, md, token  # noqa: E402

SECRET_FILE_VALUE = "file-secret-of-the-log-test-0123456789abcdef"
SECRET_ENV_VALUE = "env-secret-of-the-log-test-0123456789abcdef!"


def gen_pb2():
    out = tempfile.mkdtemp(prefix="parley-logs-py-")
    subprocess.run(["protoc", "-I", os.path.join(ROOT, "proto"), "--python_out", out,
                    "parley/v1/message.proto", "parley/v1/history.proto",
                    "parley/v1/stream.proto"], check=True)
    sys.path.insert(0, out)


def exercise(srv, secret, H, S):
    """Calls that carry tokens; returns every token used."""
    ch = grpc.insecure_channel(srv.addr)
    grpc.channel_ready_future(ch).result(timeout=10)

    def unary(path, Req, Resp):
        return ch.unary_unary(path, request_serializer=Req.SerializeToString,
                              response_deserializer=Resp.FromString)
    publish = unary("/parley.v1.Stream/Publish", S.PublishRequest, S.PublishResponse)
    create = unary("/parley.v1.History/CreateRoom", H.CreateRoomRequest, H.CreateRoomResponse)
    list_messages = unary("/parley.v1.History/ListMessages", H.ListMessagesRequest, H.ListMessagesResponse)
    good = token("olga", role="organizer", secret=secret)
    pat = token("pat", secret=secret)
    forged = token("mallory", role="organizer", secret="not-the-secret-0123456789abcdefgh")
    expired = token("pat", exp_in=-60, secret=secret)
    tokens = [good, pat, forged, expired]
    create(H.CreateRoomRequest(name="logs"), metadata=md(good), timeout=10)
    publish(S.PublishRequest(room="logs", client_msg_id="a", body="token " + pat + " secret " + secret),
            metadata=md(pat), timeout=10)
    for bad in (forged, expired, "not-a-jwt", ""):
        try:
            list_messages(H.ListMessagesRequest(room="logs"), metadata=md(bad), timeout=10)
            check(False, "a bad token should be refused")
        except grpc.RpcError as e:
            check(e.code() == grpc.StatusCode.UNAUTHENTICATED, "bad token refused")
    for room in (pat, good[:64]):
        try:
            list_messages(H.ListMessagesRequest(room=room), metadata=md(pat), timeout=10)
        except grpc.RpcError:
            pass
    out = queue.Queue()

    def frames():
        while (f := out.get()) is not None:
            yield f
    connect = ch.stream_stream("/parley.v1.Stream/Connect",
                               request_serializer=S.ClientFrame.SerializeToString,
                               response_deserializer=S.ServerFrame.FromString)
    call = connect(frames(), metadata=md(pat), timeout=20)
    out.put(S.ClientFrame(request_id=1, authenticate=S.Authenticate(token=forged)))
    out.put(S.ClientFrame(request_id=2, authenticate=S.Authenticate(token=pat)))
    out.put(S.ClientFrame(request_id=3, publish=S.PublishRequest(room="logs", client_msg_id="b",
                                                                 body=secret)))
    kinds = []
    for f in call:
        kinds.append(f.WhichOneof("kind"))
        if len(kinds) == 3:
            break
    out.put(None)
    call.cancel()
    check(sorted(kinds) == ["ack", "authenticated", "error"], "Connect answered (%s)" % kinds)
    # The unauthenticated stream.
    try:
        list(connect(iter([]), metadata=md(forged), timeout=10))
    except grpc.RpcError:
        pass
    return tokens


def scan(name, text, secret, tokens):
    check(secret not in text, "%s: the secret never appears" % name)
    check(all(t not in text for t in tokens), "%s: no token appears" % name)
    for t in tokens:  # not even the signature alone
        check(t.rsplit(".", 1)[1] not in text, "%s: no token signature appears" % name)
    check(re.search(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", text) is None,
          "%s: nothing shaped like a JWT" % name)


def main():
    gen_pb2()
    from parley.v1 import history_pb2 as H, stream_pb2 as S
    binary = sys.argv[1]

    # 1. JSON lines, secret in a file.
    d = tempfile.mkdtemp(prefix="parley-logs-")
    sf = os.path.join(d, "secret")
    with open(sf, "w") as f:
        f.write(SECRET_FILE_VALUE + "\n")
    os.chmod(sf, 0o600)
    srv = Parleyd(binary, dir=d, secret=None, metrics=False,
                  extra=["--jwt-secret-file", sf, "--log-format", "json", "--log-level", "debug"])
    try:
        tokens = exercise(srv, SECRET_FILE_VALUE, H, S)
    finally:
        rc = srv.stop()
    check(rc == 0, "json run exits 0")
    logs = srv.logs()
    lines = [ln for ln in logs.splitlines() if ln]
    parsed = []
    for ln in lines:
        try:
            parsed.append(json.loads(ln))
        except ValueError:
            check(False, "not a JSON line: %r" % ln[:200])
    check(len(parsed) == len(lines) and len(lines) >= 10, "every log line is one JSON object (%d)" % len(lines))
    check(all({"ts", "level", "program", "event", "msg"} <= set(o) and o["program"] == "parleyd"
              and o["level"] in ("debug", "info", "warn", "error") for o in parsed),
          "each has ts, level, program, event, msg")
    calls = [o for o in parsed if o["event"] == "call"]
    check(any(o.get("method") == "/parley.v1.History/ListMessages" and o.get("status") == "UNAUTHENTICATED"
              for o in calls) and any(o.get("method") == "/parley.v1.Stream/Publish" and o.get("status") == "OK"
                                      for o in calls),
          "debug: a line per call with method and status (%d call lines)" % len(calls))
    check(any(o["event"] == "listening" and o["level"] == "info" for o in parsed), "the ready event is logged")
    check(any(o["event"] == "shutdown" for o in parsed), "the shutdown is logged")
    scan("json log", logs, SECRET_FILE_VALUE, tokens)
    scan("json stdout", srv.stdout(), SECRET_FILE_VALUE, tokens)

    # 2. Text lines, secret in the environment.
    srv = Parleyd(binary, secret=SECRET_ENV_VALUE, metrics=False, extra=["--log-level", "debug"])
    try:
        tokens = exercise(srv, SECRET_ENV_VALUE, H, S)
    finally:
        rc = srv.stop()
    check(rc == 0, "text run exits 0")
    logs = srv.logs()
    lines = [ln for ln in logs.splitlines() if ln]
    textline = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARN|ERROR) parleyd [a-z_]+: ")
    check(lines and all(textline.match(ln) for ln in lines),
          "every text line: time, level, program, event (%s)" % [ln for ln in lines if not textline.match(ln)][:2])
    check(any(" DEBUG parleyd call: call ended method=/parley.v1.Stream/Publish status=OK us=" in ln
              for ln in lines), "debug call lines in text")
    scan("text log", logs, SECRET_ENV_VALUE, tokens)
    scan("text stdout", srv.stdout(), SECRET_ENV_VALUE, tokens)

    # 3. Info (the default) has no per-call lines.
    srv = Parleyd(binary, metrics=False)
    srv.stop()
    check("call ended" not in srv.logs() and " INFO parleyd listening: " in srv.logs(),
          "at info: the ready line, no per-call lines")
    bad = subprocess.run([binary, "--log-format", "xml"], capture_output=True, text=True)
    check(bad.returncode == 2 and "--log-format" in bad.stderr, "a bad --log-format exits 2 and says why")
    return finish()


if __name__ == "__main__":
    sys.exit(main())
