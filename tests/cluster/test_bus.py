#!/usr/bin/python3
"""The bus between cores (issue 11, phase 1): two and three parleyd on one
PostgreSQL database (tests/pg/pgtmp) and a real nats-server.

  1. a subscriber on core A sees what core B commits, exactly once and in
     order; publishers on all three cores at once into one room: every
     subscriber on every core sees 1..N once, in order;
  2. a subscriber joining while the others publish (replay, then live
     from another core's events) still gets each rev once;
  3. gaps forced by a core that drops 30 % of what the bus brings
     (--bus-test-drop) are filled from the store, and a core that drops
     everything still delivers everything (the sweep);
  4. nats-server stopped while the cores commit, then started again: the
     subscribers get every change (from the store meanwhile), once, in
     order, and live events flow through the bus again afterwards.

usage: test_bus.py PARLEYD   (under tests/pg/pgtmp exec)
"""
import os
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

failures = []


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what, flush=True)
    if not cond:
        failures.append(what)


def publish_many(api, room, n, prefix, user, errors):
    tok = h.token(user)
    for i in range(n):
        for attempt in range(50):
            try:
                api.publish(room, "%s-%d" % (prefix, i), "%s says %d" % (user, i), tok)
                break
            except Exception as e:  # retried with the same id: stored once
                if attempt == 49:
                    errors.append(repr(e))
                time.sleep(0.1)


def settle(subs, room, last, timeout=20):
    for s in subs:
        s.wait_rev(room, last, timeout)


def main():
    binary = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="parley-bus-")
    procs = []
    subs = []
    try:
        h.gen_pb2(tmp)
        nats = h.Nats(tmp).start()
        procs.append(nats)
        store = h.pg_database("bus_" + str(os.getpid()))
        cores = []
        for i, extra in enumerate([[], [], []]):
            c = h.Core(binary, tmp, "core%d" % i, store, bus=nats.url(), rooms="lobby,r1,r2,r3,r4",
                       extra=extra + ["--bus-sweep", "300"]).start()
            procs.append(c)
            cores.append(c)
        a, b, c = cores
        apis = [h.Api(x.addr) for x in cores]
        time.sleep(0.5)  # every core linked to NATS

        # 1a. A sees B's commits.
        sa = h.Subscriber(a.addr)
        subs.append(sa)
        sa.subscribe("r1")
        errors = []
        publish_many(apis[1], "r1", 50, "b", "bob", errors)
        settle([sa], "r1", 50)
        check(not errors, "50 publishes on core B acked (%s)" % errors[:3])
        why = h.exactly_once_in_order(sa.revs("r1"), 50)
        check(why is None, "subscriber on A saw B's 50 changes once, in order (%s)" % why)
        deadline = time.time() + 5  # the series are sampled at the sweep's pace
        while time.time() < deadline and a.metric("parley_core_bus_events_total", 'result="received"') < 50:
            time.sleep(0.2)
        check(a.metric("parley_core_bus_events_total", 'result="received"') >= 50,
              "they came over the bus (A counts 50 received events)")

        # 1b. Publishers on all three cores, subscribers on all three.
        ss = [h.Subscriber(x.addr) for x in cores]
        subs.extend(ss)
        for s in ss:
            s.subscribe("r2")
        errors = []
        per = 120
        ths = [threading.Thread(target=publish_many, args=(apis[i], "r2", per, "p%d" % i, "user%d" % i, errors))
               for i in range(3)]
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        total = 3 * per
        settle(ss, "r2", total)
        check(not errors, "%d publishes over three cores acked" % total)
        stored = apis[0].all_messages("r2")
        check([m.rev for m in stored] == list(range(1, total + 1)) and len({m.client_msg_id for m in stored}) == total,
              "the store holds revs 1..%d, each client id once" % total)
        for i, s in enumerate(ss):
            why = h.exactly_once_in_order(s.revs("r2"), total)
            check(why is None, "subscriber on core %d saw 1..%d once, in order (%s)" % (i, total, why))

        # 2. Joining while others publish: replay then live, no gap, no duplicate.
        errors = []
        t = threading.Thread(target=publish_many, args=(apis[1], "r3", 300, "j", "jo", errors))
        t.start()
        time.sleep(0.3)
        late = h.Subscriber(a.addr)
        subs.append(late)
        late.subscribe("r3", after=0)
        t.join()
        settle([late], "r3", 300)
        why = h.exactly_once_in_order(late.revs("r3"), 300)
        check(why is None, "a subscriber on A joining mid-stream saw 1..300 once, in order (%s)" % why)

        # 3. Dropped bus messages: core D drops 30 %, core E drops all.
        d = h.Core(binary, tmp, "core-drop30", store, bus=nats.url(), rooms="lobby",
                   extra=["--bus-test-drop", "300", "--bus-sweep", "300"]).start()
        e = h.Core(binary, tmp, "core-drop100", store, bus=nats.url(), rooms="lobby",
                   extra=["--bus-test-drop", "1000", "--bus-sweep", "300"]).start()
        procs += [d, e]
        sd, se = h.Subscriber(d.addr), h.Subscriber(e.addr)
        subs += [sd, se]
        sd.subscribe("r4")
        se.subscribe("r4")
        time.sleep(0.3)
        errors = []
        ths = [threading.Thread(target=publish_many, args=(apis[i], "r4", 100, "d%d" % i, "dd%d" % i, errors))
               for i in range(2)]
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        settle([sd, se], "r4", 200)
        why = h.exactly_once_in_order(sd.revs("r4"), 200)
        check(why is None, "a core dropping 30%% of the bus still delivered 1..200 once, in order (%s)" % why)
        check(d.metric("parley_core_bus_fill_rows_total") > 0 and d.metric("parley_core_bus_gaps_total") > 0,
              "... its gaps were seen and filled from the store (gaps %d, rows from the store %d)" % (
                  d.metric("parley_core_bus_gaps_total"), d.metric("parley_core_bus_fill_rows_total")))
        why = h.exactly_once_in_order(se.revs("r4"), 200)
        check(why is None, "a core dropping everything still delivered 1..200 once, in order (%s)" % why)

        # 4. The bus goes away and comes back.
        errors = []
        base = len(apis[0].all_messages("lobby"))
        check(base == 0, "lobby starts empty")
        sl = [h.Subscriber(x.addr) for x in cores]
        subs.extend(sl)
        for s in sl:
            s.subscribe("lobby")
        publish_many(apis[1], "lobby", 20, "before", "eve", errors)
        settle(sl, "lobby", 20)
        nats.stop()
        t_down = time.time()
        ths = [threading.Thread(target=publish_many, args=(apis[i], "lobby", 40, "down%d" % i, "dn%d" % i, errors))
               for i in range(3)]
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        settle(sl, "lobby", 140, timeout=15)
        ok_down = all(s.revs("lobby")[-1:] == [140] for s in sl)
        check(ok_down, "with NATS down, every subscriber got the other cores' changes from the store "
                       "(%.1fs after the stop)" % (time.time() - t_down))
        nats.start()
        deadline = time.time() + 15
        while time.time() < deadline and not all(x.metric("parley_core_bus_up") == 1 for x in cores):
            time.sleep(0.2)
        check(all(x.metric("parley_core_bus_up") == 1 for x in cores),
              "every core linked again after NATS came back (%.1fs after the restart)" % (time.time() - deadline + 15))
        rx_before = a.metric("parley_core_bus_events_total", 'result="received"')
        publish_many(apis[2], "lobby", 30, "after", "fay", errors)
        settle(sl, "lobby", 170)
        check(not errors, "every publish acked across the outage (%s)" % errors[:3])
        for i, s in enumerate(sl):
            why = h.exactly_once_in_order(s.revs("lobby"), 170)
            check(why is None, "subscriber on core %d saw 1..170 once, in order across the outage (%s)" % (i, why))
        deadline = time.time() + 5  # the series are sampled at the sweep's pace
        while time.time() < deadline and a.metric("parley_core_bus_events_total", 'result="received"') <= rx_before:
            time.sleep(0.2)
        check(a.metric("parley_core_bus_events_total", 'result="received"') > rx_before,
              "after the outage A receives over the bus again")
        for s in subs:
            s.close()
        subs.clear()
        for x in procs:
            if isinstance(x, h.Core):
                check(x.alive(), "%s still running" % x.name)
                rc = x.stop()
                check(rc == 0, "%s stops cleanly on SIGTERM (exit %s; sanitizers report here)" % (x.name, rc))
    finally:
        for s in subs:
            try:
                s.close()
            except Exception:
                pass
        for p in reversed(procs):
            p.stop()
        if failures:
            for p in procs:
                print("---- %s ----\n%s" % (p.name, p.tail(15)))
        if not failures:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("logs kept in", tmp)
    print("%d failures" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
