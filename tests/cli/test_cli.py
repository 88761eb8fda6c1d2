#!/usr/bin/python3
"""The `parley` CLI, each command against a real parleyd (started here in a
temp dir with its unix socket), checked through what a script sees: stdout,
stderr ("parley: CODE: detail") and the exit status (0 ok, 1 failure,
2 usage, 3 unreachable, 4 no token / not allowed, 5 not found, 6 refused).

- --help of every command; usage errors.
- token (dev mode only), rooms, send (duplicates, stdin), edit, delete,
  history (text, --json, --limit, --after-rev).
- history --follow: live events after the history, through a parleyd
  restart, each change printed once and in order, exit 0 on SIGINT.
- export then import into another room, twice (nothing stored twice).
- backup of a core being written to by several publishers at once: the
  copy is whole and consistent (dense seq/rev, heads that match), holds
  every publish acked before the backup began, and the core kept acking
  while it ran.

usage: test_cli.py PARLEYD PARLEY
"""
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

import grpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "server"))
from opsharness import ROOT, Parleyd, check, finish, md, token, wait_for  # noqa: E402

PARLEYD = PARLEY = None
DEV_SECRET = None  # the dev secret parleyd --dev wrote
ENV = {}


def run(*args, env=None, input=None, timeout=30):
    """Runs parley; (exit status, stdout, stderr)."""
    e = dict(os.environ)
    for k in list(e):
        if k.startswith("PARLEY_"):
            del e[k]
    e.update(ENV)
    e.update(env or {})
    p = subprocess.run([PARLEY] + list(args), capture_output=True, text=True, env=e,
                       input=input, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def expect(what, res, code, out=None, err=None):
    rc, so, se = res
    ok = rc == code and (out is None or re.search(out, so)) and (err is None or re.search(err, se))
    check(bool(ok), "%s: exit %d (got %d) %s %s" % (what, code, rc, so.strip()[:200], se.strip()[:200]))


def gen_pb2():
    out = tempfile.mkdtemp(prefix="parley-cli-py-")
    subprocess.run(["protoc", "-I", os.path.join(ROOT, "proto"), "--python_out", out,
                    "parley/v1/message.proto", "parley/v1/history.proto",
                    "parley/v1/stream.proto"], check=True)
    sys.path.insert(0, out)


def test_help():
    for cmd in ("rooms", "history", "send", "edit", "delete", "export", "import", "token", "backup"):
        expect("%s --help" % cmd, run(cmd, "--help"), 0, out=r"^usage: parley %s" % cmd)
    expect("parley --help", run("--help"), 0, out=r"Exit status: 0 ok")
    expect("no command", run(), 2, err=r"usage: parley")
    expect("unknown command", run("frobnicate"), 2, err=r"^parley: USAGE: unknown command")
    expect("missing argument", run("send", "lobby"), 2, err=r"^parley: USAGE: send: want ROOM and TEXT")
    expect("bad option", run("rooms", "--bogus"), 2, err=r"^parley: USAGE: rooms:")
    expect("bad seq", run("delete", "lobby", "x"), 2, err=r"SEQ is a number")


def test_token(srv):
    env = {"PARLEY_DB": srv.db}
    rc, tok, err = run("token", "olga", "--role", "organizer", "--name", "Olga O", env=env)
    check(rc == 0 and tok.count(".") == 2, "token mints with the dev secret (%s)" % err.strip())
    rc, rooms, _ = run("rooms", env={"PARLEY_TOKEN": tok.strip()})
    check(rc == 0 and "lobby\t" in rooms, "the minted token is accepted by parleyd")
    expect("token without a dev secret", run("token", "olga", env={"PARLEY_DB": "/nonexistent/x.db"}),
           4, err=r"^parley: UNAUTHENTICATED: no dev secret at /nonexistent/dev-secret")
    expect("token with a bad role", run("token", "olga", "--role", "king", env=env), 2, err="--role")
    return tok.strip()


def test_basic(srv, org, pat):
    T = lambda t: {"PARLEY_TOKEN": t}  # noqa: E731
    expect("rooms", run("rooms", env=T(pat)), 0, out=r"^lobby\t0\t0\nother\t0\t0\n$")
    rc, so, _ = run("rooms", "--json", env=T(pat))
    check(rc == 0 and [json.loads(ln)["name"] for ln in so.splitlines()] == ["lobby", "other"],
          "rooms --json: one Room per line")
    expect("send", run("send", "lobby", "hello world", "--id", "k1", env=T(pat)), 0, out=r"^1 1\n$")
    expect("send again: duplicate", run("send", "lobby", "hello world", "--id", "k1", env=T(pat)), 0,
           out=r"^1 1 duplicate\n$")
    expect("send from stdin", run("send", "lobby", "-", env=T(org), input="two\nlines\n"), 0, out=r"^2 2\n$")
    rc, so, _ = run("send", "lobby", "json please", "--json", env=T(pat))
    check(rc == 0 and json.loads(so)["message"]["seq"] == "3", "send --json: the PublishResponse")
    expect("send to a missing room", run("send", "nope", "x", env=T(pat)), 5, err=r"^parley: ROOM_NOT_FOUND: ")
    expect("send an empty body", run("send", "lobby", "   ", env=T(pat)), 6, err=r"^parley: BODY_EMPTY: ")
    expect("send without a token", run("send", "lobby", "x"), 4, err=r"^parley: UNAUTHENTICATED: no token")
    bad = token("pat", secret="another-secret-another-secret-0123")
    expect("send with a bad token", run("send", "lobby", "x", env=T(bad)), 4, err=r"^parley: UNAUTHENTICATED: ")
    d = tempfile.mkdtemp()
    tf = os.path.join(d, "tok")
    with open(tf, "w") as f:
        f.write(pat + "\n")
    os.chmod(tf, 0o600)  # a token file others can read is refused
    expect("--token-file", run("send", "lobby", "from a file", "--token-file", tf), 0, out=r"^4 4\n$")
    expect("edit", run("edit", "lobby", "1", "hello, edited", env=T(pat)), 0, out=r"^1 5\n$")
    expect("edit another's message", run("edit", "lobby", "2", "mine now", env=T(pat)), 4,
           err=r"^parley: PERMISSION_DENIED: ")
    expect("delete (organizer)", run("delete", "lobby", "3", env=T(org)), 0, out=r"^3 6\n$")
    expect("edit a deleted message", run("edit", "lobby", "3", "x", env=T(org)), 6,
           err=r"^parley: MESSAGE_DELETED: ")
    expect("delete a missing message", run("delete", "lobby", "99", env=T(org)), 5,
           err=r"^parley: MESSAGE_NOT_FOUND: ")
    rc, so, _ = run("history", "lobby", env=T(pat))
    lines = so.splitlines()
    check(rc == 0 and len(lines) == 4 and re.match(r"^#1 r5 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ pat: hello, edited \(edited\)$", lines[0])
          and lines[1].endswith("olga: two\\nlines") and lines[2].endswith("(deleted)"),
          "history: one line per message, in seq order (%s)" % lines)
    rc, so, _ = run("history", "lobby", "--json", "--limit", "2", env=T(pat))
    msgs = [json.loads(ln) for ln in so.splitlines()]
    check(rc == 0 and [m["seq"] for m in msgs] == ["3", "4"] and msgs[0].get("deleted") is True,
          "history --json --limit 2: the newest two, as parley.v1.Message")
    rc, so, _ = run("history", "lobby", "--after-rev", "4", "--json", env=T(pat))
    check(rc == 0 and [json.loads(ln)["rev"] for ln in so.splitlines()] == ["5", "6"],
          "history --after-rev: the changes after rev 4, by rev")
    expect("history of a missing room", run("history", "nope", env=T(pat)), 5, err=r"^parley: ROOM_NOT_FOUND")
    expect("parleyd unreachable", run("rooms", "--server", "unix:/nonexistent/p.sock", env=T(pat)), 3,
           err=r"^parley: UNAVAILABLE: ")


def test_follow(srv, pat, binary):
    """Returns the restarted server."""
    T = {"PARLEY_TOKEN": pat}
    e = dict(os.environ, **ENV, **T)
    f = subprocess.Popen([PARLEY, "history", "other", "--follow", "--json"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=e)
    lines = []
    t = threading.Thread(target=lambda: [lines.append(json.loads(ln)) for ln in f.stdout], daemon=True)
    t.start()
    for i in range(3):
        run("send", "other", "before %d" % i, env=T)
    check(wait_for(lambda: len(lines) >= 3, 10), "follow: live events arrive (%d)" % len(lines))
    run("edit", "other", "1", "before 0, edited", env=T)
    check(wait_for(lambda: len(lines) >= 4, 10), "follow: an edit arrives")
    # Cut: parleyd stops; meanwhile nobody can publish; it comes back on
    # the same database and socket; publishes after it are delivered too.
    rc = srv.stop()
    check(rc == 0, "parleyd stopped")
    srv2 = Parleyd(binary, dir=srv.dir, extra=["--dev"], secret=None, log_name="parleyd2.log")
    ENV["PARLEY_SERVER"] = "unix:" + srv2.sock
    for i in range(3):
        run("send", "other", "after %d" % i, env=T)
    run("delete", "other", "2", env={"PARLEY_TOKEN": pat})
    check(wait_for(lambda: len(lines) >= 8, 15), "follow: resumed after the restart (%d lines)" % len(lines))
    f.send_signal(signal.SIGINT)
    try:
        rc = f.wait(10)
    except subprocess.TimeoutExpired:
        f.kill()
        rc = f.wait()
    t.join(5)
    err = f.stderr.read()
    revs = [int(m["rev"]) for m in lines]
    check(revs == list(range(1, 9)), "follow: every change once, in rev order (%s)" % revs)
    check([m.get("body", "") for m in lines][-4:] == ["after 0", "after 1", "after 2", ""]
          and lines[-1].get("deleted") is True, "follow: the right messages after the cut")
    check(rc == 0, "follow: SIGINT ends it with exit 0 (%s)" % rc)
    check("stream cut" in err and "resuming after rev 4" in err, "follow: stderr says it resumed (%s)" % err.strip())
    return srv2


def test_export_import(org):
    T = {"PARLEY_TOKEN": org}
    rc, room_jsonl, err = run("export", "lobby", env=T)
    rows = [json.loads(ln) for ln in room_jsonl.splitlines()]
    check(rc == 0 and [r["seq"] for r in rows] == ["1", "2", "3", "4"] and rows[2].get("deleted")
          and "exported 4 messages of lobby" in err, "export: every message in seq order, tombstones too")
    rc, so, _ = run("history", "lobby", "--json", env=T)
    check([json.loads(ln) for ln in so.splitlines()] == rows, "export equals what history --json shows")
    d = tempfile.mkdtemp()
    path = os.path.join(d, "room.jsonl")
    with open(path, "w") as f:
        f.write(room_jsonl)
    expect("import into a new room", run("import", "copy", path, "--create", env=T), 0,
           err=r"imported 3 new, 0 already there, skipped 1 deleted")
    expect("the same import again", run("import", "copy", env=T, input=room_jsonl), 0,
           err=r"imported 0 new, 3 already there, skipped 1 deleted")
    rc, so, _ = run("history", "copy", "--json", env=T)
    got = [json.loads(ln) for ln in so.splitlines()]
    want = [r["body"] for r in rows if not r.get("deleted")]
    check(rc == 0 and [g["body"] for g in got] == want and all(g["author"]["id"] == "olga" for g in got),
          "import: the bodies, in order, by the importing user (%s)" % [g["body"] for g in got])
    expect("import a line that is no message", run("import", "copy", env=T, input='{"seq":"x"}\n'), 6,
           err=r"line 1 is not a message")
    expect("import into a missing room", run("import", "nowhere", path, env=T), 5, err=r"ROOM_NOT_FOUND")
    # A bigger room, more than one page and one window of publishes.
    big = "".join(json.dumps({"room": "big", "seq": str(i), "body": "m%d" % i}) + "\n" for i in range(1, 1501))
    expect("import 1500 messages", run("import", "big", "--create", env=T, input=big, timeout=120), 0,
           err=r"imported 1500 new")
    rc, so, err = run("export", "big", env=T)
    check(rc == 0 and [json.loads(ln)["body"] for ln in so.splitlines()] == ["m%d" % i for i in range(1, 1501)],
          "export of 1500 messages over two pages")


def test_backup(srv, pat, S):
    """Backup while three publishers keep the core busy."""
    ch = grpc.insecure_channel(srv.addr)
    publish = ch.unary_unary("/parley.v1.Stream/Publish", request_serializer=S.PublishRequest.SerializeToString,
                             response_deserializer=S.PublishResponse.FromString)
    acks = []  # (time acked, room, seq)
    stop = threading.Event()
    lock = threading.Lock()

    def publisher(n):
        tok = md(token("w%d" % n, secret=DEV_SECRET))
        i = 0
        while not stop.is_set():
            r = publish(S.PublishRequest(room="lobby" if n % 2 else "other", client_msg_id="b%d-%d" % (n, i),
                                         body="load %d %d " % (n, i) + "z" * 200), metadata=tok, timeout=10)
            with lock:
                acks.append((time.time(), r.message.room, r.message.seq))
            i += 1
    ts = [threading.Thread(target=publisher, args=(n,), daemon=True) for n in range(3)]
    for t in ts:
        t.start()
    wait_for(lambda: len(acks) > 300, 30)
    dest = os.path.join(tempfile.mkdtemp(), "backup.db")
    t0 = time.time()
    with lock:
        acked_before = list(acks)
    rc, so, err = run("backup", dest, "--db", srv.db)
    t1 = time.time()
    time.sleep(0.2)
    stop.set()
    for t in ts:
        t.join(10)
    during = [a for a in acks if t0 <= a[0] <= t1]
    check(rc == 0 and "backup of " in so, "backup exits 0 (%s %s)" % (so.strip(), err.strip()))
    check(len(during) > 0, "the core kept acking during the backup (%d acks in %.2f s)" % (len(during), t1 - t0))
    db = sqlite3.connect(dest)
    check(db.execute("PRAGMA integrity_check").fetchone()[0] == "ok", "backup: integrity_check ok")
    consistent = True
    for name, hs, hr in db.execute("SELECT name, head_seq, head_rev FROM rooms"):
        n, mx, mr = db.execute("SELECT count(*), coalesce(max(seq),0), coalesce(max(rev),0) FROM messages m "
                               "JOIN rooms r ON r.id = m.room_id WHERE r.name = ?", (name,)).fetchone()
        if not (n == hs == mx and mr == hr):
            consistent = False
            print("room %s: head_seq %d head_rev %d, %d rows, max seq %d, max rev %d" % (name, hs, hr, n, mx, mr))
    check(consistent, "backup: every room's heads match its rows (dense seq, rev at the head)")
    have = set(db.execute("SELECT r.name, m.seq FROM messages m JOIN rooms r ON r.id = m.room_id"))
    missing = [(room, seq) for _t, room, seq in acked_before if (room, seq) not in have]
    check(not missing, "backup: holds every publish acked before it began (%d, missing %s)"
          % (len(acked_before), missing[:5]))
    total = db.execute("SELECT count(*) FROM messages").fetchone()[0]
    check(re.search(r"%d messages" % total, so) is not None, "backup prints what it holds (%d)" % total)
    check(db.execute("PRAGMA journal_mode").fetchone()[0] == "delete", "backup: one self-contained file")
    db.close()
    expect("backup onto an existing file", run("backup", dest, "--db", srv.db), 1, err=r"^parley: IO: refusing")
    rc, so, _ = run("backup", dest, "--db", srv.db, "--force", "--json")
    check(rc == 0 and json.loads(so)["file"] == dest, "backup --force --json")
    expect("backup of a missing db", run("backup", dest + "2", "--db", "/nonexistent/p.db"), 1,
           err=r"^parley: IO: cannot read the database")
    check(not [f for f in os.listdir(os.path.dirname(dest)) if ".tmp-" in f], "no temporary file left behind")


def main():
    global PARLEYD, PARLEY, DEV_SECRET
    PARLEYD, PARLEY = sys.argv[1], sys.argv[2]
    gen_pb2()
    from parley.v1 import stream_pb2 as S
    test_help()
    srv = Parleyd(PARLEYD, extra=["--dev"], secret=None)
    ENV["PARLEY_SERVER"] = "unix:" + srv.sock
    try:
        org = test_token(srv)
        DEV_SECRET = open(os.path.join(srv.dir, "dev-secret")).read().strip()
        pat = token("pat", secret=DEV_SECRET)
        test_basic(srv, org, pat)
        srv = test_follow(srv, pat, PARLEYD)
        test_export_import(org)
        test_backup(srv, pat, S)
    finally:
        rc = srv.stop()
    check(rc == 0, "parleyd exits 0 (%s)" % rc)
    return finish()


if __name__ == "__main__":
    sys.exit(main())
