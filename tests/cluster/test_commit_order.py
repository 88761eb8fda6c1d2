#!/usr/bin/python3
"""Two cores on one PostgreSQL database commit group-commit batches that
touch the same two rooms in opposite orders, many times at once. Each
append locks its room's row until the commit, so unsorted batches
deadlock: PostgreSQL aborts one of them after deadlock_timeout and its
publishes fail with "storage failure; retry". parleyd sorts every batch
by room (srv_commit.c), so none may fail, and each stream's publishes to
one room keep their order.

usage: test_commit_order.py PARLEYD   (under tests/pg/pgtmp exec)
"""
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

ROUNDS = 150


def run_stream(addr, user, rooms, out):
    """Sends ROUNDS pairs of publishes (rooms[0] then rooms[1]) on one
    Connect stream, each pair in one write burst so it lands in one
    batch, and waits for every answer."""
    from parley.v1 import stream_pb2 as S
    ch = grpc.insecure_channel(addr)
    connect = ch.stream_stream("/parley.v1.Stream/Connect", request_serializer=S.ClientFrame.SerializeToString,
                               response_deserializer=S.ServerFrame.FromString)
    q = queue.Queue()

    def frames():
        while True:
            f = q.get()
            if f is None:
                return
            yield f
    call = connect(frames(), metadata=h.md(h.token(user)))
    acks, errors, seqs = 0, [], {r: [] for r in rooms}
    rid = 0
    it = iter(call)
    for k in range(ROUNDS):
        for r in rooms:
            rid += 1
            q.put(S.ClientFrame(request_id=rid, publish=S.PublishRequest(
                room=r, client_msg_id="%s-%d-%s" % (user, k, r), body="round %d" % k)))
        got = 0
        while got < 2:
            f = next(it)
            kind = f.WhichOneof("kind")
            if kind == "ack":
                got += 1
                acks += 1
                seqs[f.ack.message.room].append((f.request_id, f.ack.message.seq))
            elif kind == "error":
                got += 1
                errors.append(f.error.detail)
    q.put(None)
    call.cancel()
    ch.close()
    out[user] = (acks, errors, seqs)


def main():
    binary = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="parley-order-")
    procs = []
    failures = []

    def check(cond, what):
        print(("ok: " if cond else "FAIL: ") + what, flush=True)
        if not cond:
            failures.append(what)
    try:
        h.gen_pb2(tmp)
        store = h.pg_database("order_" + str(os.getpid()))
        a = h.Core(binary, tmp, "coreA", store, rooms="ra,rb", metrics=False).start()
        b = h.Core(binary, tmp, "coreB", store, rooms="ra,rb", metrics=False).start()
        procs += [a, b]
        out = {}
        ths = [threading.Thread(target=run_stream, args=(a.addr, "ann", ["ra", "rb"], out)),
               threading.Thread(target=run_stream, args=(b.addr, "ben", ["rb", "ra"], out)),
               threading.Thread(target=run_stream, args=(a.addr, "cat", ["rb", "ra"], out)),
               threading.Thread(target=run_stream, args=(b.addr, "dan", ["ra", "rb"], out))]
        t0 = time.time()
        for t in ths:
            t.start()
        for t in ths:
            t.join(120)
        check(len(out) == 4, "all four streams finished (%.1fs)" % (time.time() - t0))
        for user, (acks, errors, seqs) in sorted(out.items()):
            check(not errors and acks == 2 * ROUNDS,
                  "%s: %d of %d publishes acked, no failed batch (errors: %s)" % (
                      user, acks, 2 * ROUNDS, errors[:2]))
            for room, got in seqs.items():
                by_request = [s for _, s in sorted(got)]
                check(by_request == sorted(by_request),
                      "%s: publishes to %s got seqs in the order they were sent" % (user, room))
        # A lock nobody releases (here a psql session holding the room's
        # row, as a core cut off mid-transaction would): parleyd's commit
        # gives up after its lock_timeout (5 s) and answers "retry" instead
        # of holding its loop (and every stream on the core) for good.
        psql = subprocess.Popen([h.PSQL, "-q", store], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        psql.stdin.write("BEGIN; SELECT id FROM rooms WHERE name = 'ra' FOR UPDATE; SELECT 'locked';\n")
        psql.stdin.flush()
        while "locked" not in psql.stdout.readline():
            pass
        api = h.Api(a.addr)
        t0 = time.time()
        try:
            api.publish("ra", "held-1", "behind a held lock", h.token("ann"), timeout=30)
            outcome = "stored"
        except grpc.RpcError as e:
            outcome = e.details()
        waited = time.time() - t0
        check(outcome == "storage failure; retry" and 4 <= waited < 15,
              "a publish behind a lock held elsewhere is refused after parleyd's lock_timeout "
              "(%s after %.1fs)" % (outcome, waited))
        psql.stdin.write("ROLLBACK;\n")
        psql.stdin.close()
        psql.wait(10)
        r = api.publish("ra", "held-1", "behind a held lock", h.token("ann"))
        check(not r.duplicate, "the retry once the lock is gone is stored (once)")
        for room in ("ra", "rb"):
            msgs = api.all_messages(room)
            n = 4 * ROUNDS + (room == "ra")
            check([m.seq for m in msgs] == list(range(1, n + 1)), "%s holds seqs 1..%d, dense" % (room, n))
        api.close()
    finally:
        for p in procs:
            p.stop()
        if failures:
            for p in procs:
                print("---- %s ----\n%s" % (p.name, p.tail(10)))
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d failures" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
