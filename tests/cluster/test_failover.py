#!/usr/bin/python3
"""Gateways and cores (issue 11, phase 2): three parleyd on one PostgreSQL
with a nats-server between them, two parley-gateway in front of all three,
and chat clients (wsclient.py) on both gateways in the same rooms,
publishing all the time.

  1. kill -9 of the core that carries the most rooms: the gateways move its
     rooms to the other cores (resuming from the last rev they had); no
     client loses its session, none sees a gap or a duplicate, every
     publish is acked in the end (retried with its id) and stored once,
     and presence still counts every user of both gateways in every room;
  2. the core comes back; then another core is stopped with SIGTERM (its
     health turns NOT_SERVING first): the same again.

usage: test_failover.py PARLEYD PARLEY_GATEWAY   (under tests/pg/pgtmp exec)
"""
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import wsclient  # noqa: E402

ROOMS = ["f%d" % i for i in range(8)]
failures = []


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what, flush=True)
    if not cond:
        failures.append(what)


def busiest(cores):
    """The running core whose bus watches the most rooms (the gateways'
    subscriptions), with that count."""
    best = max((c for c in cores if c.alive()), key=lambda c: c.metric("parley_core_bus_rooms"))
    return best, best.metric("parley_core_bus_rooms")


def moved(gws):
    return sum(g.metrics().get("parley_gateway_rooms_moved_total", 0) for g in gws)


def presence_counts(url, rooms, tok, secs=3):
    """A session that asks for presence and subscribes to rooms: each
    room's last Presence count seen within secs."""
    import asyncio
    import json
    import websockets

    async def go():
        counts = {}
        async with websockets.connect(url, subprotocols=["parley.v1.json"], max_size=None) as ws:
            await ws.send(json.dumps({"requestId": "1", "authenticate": {"token": tok}}))
            await ws.send(json.dumps({"requestId": "2", "options": {"presence": True}}))
            for i, r in enumerate(rooms):
                await ws.send(json.dumps({"requestId": str(3 + i), "subscribe": {"room": r}}))
            deadline = time.time() + secs
            while time.time() < deadline:
                try:
                    f = json.loads(await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.time())))
                except asyncio.TimeoutError:
                    break
                if "presence" in f:
                    counts[f["presence"]["room"]] = f["presence"].get("count", 0)
        return counts
    return asyncio.run(go())


def main():
    parleyd, gateway = sys.argv[1], sys.argv[2]
    tmp = tempfile.mkdtemp(prefix="parley-failover-")
    procs, fleet = [], None
    try:
        h.gen_pb2(tmp)
        nats = h.Nats(tmp).start()
        procs.append(nats)
        store = h.pg_database("failover_" + str(os.getpid()))
        cores = []
        for i in range(3):
            c = h.Core(parleyd, tmp, "core%d" % i, store, bus=nats.url(), rooms=",".join(ROOMS)).start()
            # a restart comes back on the same address (the gateways' list)
            c.argv[c.argv.index("--listen") + 1] = c.addr
            procs.append(c)
            cores.append(c)
        addrs = [c.addr for c in cores]
        gws = [h.Gateway(gateway, tmp, "gw%d" % i, addrs, extra=["--upstream-links", "2"]).start()
               for i in range(2)]
        procs += gws
        clients = [wsclient.ChatClient("u%d" % i, [gws[i % 2].ws, gws[(i + 1) % 2].ws], ROOMS,
                                       h.token("u%d" % i), publish_every=0.1)
                   for i in range(6)]
        fleet = wsclient.Fleet(clients)
        fleet.start()
        time.sleep(3)
        check(all(c.sessions == 1 for c in clients), "six clients on two gateways, publishing")

        # 1. kill -9 of the busiest core
        victim, n = busiest(cores)
        check(n > 0, "%s watches %d rooms for the gateways" % (victim.name, n))
        before = moved(gws)
        t_kill = time.time()
        victim.kill9()
        time.sleep(4)
        t_mid = time.time()
        check(moved(gws) > before, "the gateways moved rooms off the killed core (%d moves)" % (moved(gws) - before))
        pause = h.longest_pause([t for c in clients for t in c.ack_times], t_kill, t_mid)
        dpause = h.longest_pause([t for c in clients for t in c.event_times], t_kill, t_mid)
        print("kill -9 %s: longest stretch without an ack %.2fs, without an event %.2fs" % (
            victim.name, pause, dpause), flush=True)
        check(dpause < 4, "events flowed again within the 4 s after the kill (longest pause %.2fs)" % dpause)
        # Presence after the moves (the killed core still down, so both
        # gateways chose the same next core for each room): every room
        # counts the clients of both gateways and the watcher, also those
        # that moved (their new core was told who is here).
        counts = presence_counts(gws[0].ws, ROOMS, h.token("watcher"))
        want = {r: len(clients) + 1 for r in ROOMS}
        check(counts == want, "presence after the rooms moved: every room counts the %d clients and the "
              "watcher (%s)" % (len(clients), {r: counts.get(r) for r in ROOMS if counts.get(r) != want[r]}))
        victim.start()
        time.sleep(2)

        # 2. SIGTERM of another core: NOT_SERVING, then its streams end
        other, n2 = busiest([c for c in cores if c is not victim])
        before = moved(gws)
        t_term = time.time()
        rc = other.stop()
        check(rc == 0, "%s stopped cleanly on SIGTERM while serving gateways (exit %s)" % (other.name, rc))
        time.sleep(3)
        check(moved(gws) > before or n2 == 0, "rooms moved off the stopped core (%d moves)" % (moved(gws) - before))
        dpause = h.longest_pause([t for c in clients for t in c.event_times], t_term, time.time())
        print("SIGTERM %s: longest stretch without an event %.2fs" % (other.name, dpause), flush=True)
        other.start()
        time.sleep(1)

        check(fleet.quiet(30), "every publish acked in the end")
        time.sleep(2)  # the last events reach every client
        fleet.stop()
        acked = {(c.name, cid): v for c in clients for cid, v in c.acked.items()}
        api = h.Api(cores[0].addr)
        bad, heads = h.store_check(api, ROOMS, acked)
        check(not bad, "%d acked messages stored once each, seqs and revs dense (%s)" % (len(acked), bad[:3]))
        bad = h.client_check(clients, heads)
        check(not bad, "every client saw each rev of its rooms once, in order, and converged (%s)" % bad[:3])
        lost = [(c.name, c.closes) for c in clients if c.closes]
        check(not lost, "no client lost its session while cores failed (%s)" % lost[:2])
        check(sum(len(a) for a in acked) and sum(heads.values()) == len(acked),
              "the rooms hold exactly the %d acked messages" % len(acked))
        api.close()
        for g in gws:
            rc = g.stop()
            check(rc == 0, "%s stops cleanly (exit %s)" % (g.name, rc))
    finally:
        if fleet:
            fleet.stop()
        for p in reversed(procs):
            p.stop()
        if failures:
            for p in procs:
                print("---- %s ----\n%s" % (p.name, p.tail(12)))
            print("logs kept in", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print("%d failures" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
