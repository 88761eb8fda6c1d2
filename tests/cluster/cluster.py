#!/usr/bin/python3
"""The cluster under faults (issue 11, phase 3), every process on an address
of its own in a network namespace of its own (netns.py):

  db        PostgreSQL 15 (tests/pg/pgtmp)                 10.77.0.10
  n1..n3    three nats-server, one cluster (routes)         10.77.0.21-23
  c1..c3    three parleyd on the database and the bus       10.77.0.31-33
  g1, g2    two parley-gateway in front of all three cores  10.77.0.41-42
  cl        this driver and the chat clients (wsclient.py)  10.77.0.50

Chat clients on both gateways share the rooms (each room has clients on
both) and publish all the time. Faults, one after the other, under that
load:

  core-kill9       kill -9 of the core with the most rooms, restarted later
  gateway-kill9    kill -9 of a gateway: its clients move to the other one
  nats-down        all three nats-server stopped for 10 s, then started
  pg-restart       PostgreSQL stopped (fast) and started again
  core-partition   a core's traffic dropped (its namespace cut off the
                   bridge) for a while, then healed

After each fault the clients stop publishing until every publish is acked,
then: every acked message is stored once (seqs and revs dense), every
client saw each rev of its rooms exactly once and in order, and all
clients converged on the rooms' heads. How long each fault took to heal is
measured from the clients' side: the longest time any client waited for an
ack (publish pause) and for an event (delivery pause) from the fault on,
and, after a restore, how long until the cluster was whole again (every
core on the bus, every core usable by both gateways).

usage: cluster.py [--long] [--results FILE.json] BUILD_DIR
Needs root (network namespaces). Short by default (about a minute and a
half, ctest label cluster); --long: more clients and longer faults, the
committed run of tests/cluster/run --long.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import netns  # noqa: E402

ROOT = h.ROOT
PGTMP = os.path.join(ROOT, "tests", "pg", "pgtmp")

NODES = {"db": "10.77.0.10", "n1": "10.77.0.21", "n2": "10.77.0.22", "n3": "10.77.0.23",
         "c1": "10.77.0.31", "c2": "10.77.0.32", "c3": "10.77.0.33",
         "g1": "10.77.0.41", "g2": "10.77.0.42", "cl": "10.77.0.50"}

SHORT = dict(clients=8, rooms=8, load=3, kill_hold=4, gw_hold=3, nats_down=10, pg_down=2, partition=10, settle=2)
LONG = dict(clients=24, rooms=24, load=10, kill_hold=15, gw_hold=10, nats_down=10, pg_down=5, partition=30, settle=5)


class Cluster:
    def __init__(self, args, net, tmp):
        self.args = args
        self.net = net
        self.tmp = tmp
        self.build = args.build
        self.cores, self.gws, self.nats = [], [], []
        self.pg_state = os.path.join(tmp, "pg.state")

    def pg_start(self):
        subprocess.run(self.net.exec_prefix("db") + [PGTMP, "start", self.pg_state, "--tcp", NODES["db"],
                                                     "--hba", netns.SUBNET], check=True)
        env = {}
        for line in open(self.pg_state):
            k, _, v = line.strip().partition("=")
            env[k] = v.strip("'")
        self.pg_port = int(env["PGTMP_PORT"])
        admin = "postgres://parley@%s:%d/postgres" % (NODES["db"], self.pg_port)
        subprocess.run([h.PSQL, "-q", admin, "-c", "CREATE DATABASE cluster"], check=True)
        self.store = "postgres://parley@%s:%d/cluster" % (NODES["db"], self.pg_port)

    def start(self, rooms):
        self.pg_start()
        routes = ["nats://%s:6222" % NODES[n] for n in ("n1", "n2", "n3")]
        for n in ("n1", "n2", "n3"):
            self.nats.append(h.Nats(self.tmp, "nats-" + n, addr=NODES[n], port=4222, cluster_port=6222,
                                    routes=[r for r in routes if NODES[n] not in r],
                                    prefix=self.net.exec_prefix(n)).start())
        bus = ",".join("nats://%s:4222" % NODES[n] for n in ("n1", "n2", "n3"))
        for c in ("c1", "c2", "c3"):
            core = h.Core(os.path.join(self.build, "src", "parleyd"), self.tmp, "core-" + c, self.store, bus=bus,
                          listen=NODES[c] + ":7400", rooms=",".join(rooms), prefix=self.net.exec_prefix(c))
            core.node = c
            self.cores.append(core.start())
        upstream = [NODES[c] + ":7400" for c in ("c1", "c2", "c3")]
        for g in ("g1", "g2"):
            gw = h.Gateway(os.path.join(self.build, "gateway", "parley-gateway"), self.tmp, "gateway-" + g, upstream,
                           listen=NODES[g] + ":7480", extra=["--upstream-links", "2"],
                           prefix=self.net.exec_prefix(g))
            gw.node = g
            self.gws.append(gw.start())

    def procs(self):
        return self.nats + self.cores + self.gws

    def whole(self):
        """Every core running and on the bus, both gateways running and
        seeing three usable cores."""
        try:
            if not all(c.alive() and c.metric("parley_core_bus_up") == 1 for c in self.cores):
                return False
            return all(g.alive() and g.metrics().get("parley_gateway_cores_usable") == 3 for g in self.gws)
        except Exception:  # noqa: BLE001: a metrics endpoint not answering yet
            return False

    def wait_whole(self, timeout):
        t0 = time.time()
        while time.time() - t0 < timeout:
            if self.whole():
                return time.time()
            time.sleep(0.1)
        return None

    def busiest_core(self):
        return max(self.cores, key=lambda c: c.metric("parley_core_bus_rooms"))

    def api(self):
        for c in self.cores:
            if c.alive():
                return h.Api(c.addr)
        raise RuntimeError("no core running")

    def stop(self):
        for p in reversed(self.procs()):
            p.stop()
        subprocess.run(self.net.exec_prefix("db") + [PGTMP, "stop", self.pg_state])


def pauses(clients, t0, t1):
    """The longest any client waited for an ack, and for an event, in [t0, t1]."""
    pub = max(h.longest_pause(c.ack_times, t0, t1) for c in clients)
    dlv = max(h.longest_pause(c.event_times, t0, t1) for c in clients)
    return pub, dlv


def run(args):
    import wsclient
    cfg = dict(LONG if args.long else SHORT)
    for kv in args.set or []:
        k, _, v = kv.partition("=")
        cfg[k] = type(cfg[k])(v)
    tmp = tempfile.mkdtemp(prefix="parley-cluster-")
    net = netns.Net(args.prefix)
    net.nodes = dict(NODES)  # created by the parent; this process runs in cl
    results = {"mode": "long" if args.long else "short", "config": cfg, "faults": [], "checks": [],
               "taken": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    failures = []

    def check(cond, what):
        print(("ok: " if cond else "FAIL: ") + what, flush=True)
        results["checks"].append({"ok": bool(cond), "what": what})
        if not cond:
            failures.append(what)

    rooms = ["room%02d" % i for i in range(cfg["rooms"])]
    cl = Cluster(args, net, tmp)
    fleet = None
    try:
        h.gen_pb2(tmp)
        cl.start(rooms)
        check(cl.wait_whole(30) is not None, "cluster up: 3 nats, 3 cores on the bus, 2 gateways seeing them")
        clients = []
        for i in range(cfg["clients"]):
            mine = [rooms[(i + k) % len(rooms)] for k in range(3)]
            gws = [cl.gws[i % 2].ws, cl.gws[(i + 1) % 2].ws]
            clients.append(wsclient.ChatClient("u%02d" % i, gws, mine, h.token("u%02d" % i), publish_every=0.1))
        fleet = wsclient.Fleet(clients)
        fleet.start()
        time.sleep(1)
        tb = time.time()
        time.sleep(cfg["load"])
        check(all(c.sessions >= 1 for c in clients), "%d clients on two gateways, publishing" % len(clients))
        pub, dlv = pauses(clients, tb, time.time())
        results["baseline"] = {"publish_pause_s": round(pub, 2), "delivery_pause_s": round(dlv, 2),
                               "what": "longest pauses over %ds without a fault" % cfg["load"]}
        print("BASELINE: publish pause %.2fs, delivery pause %.2fs" % (pub, dlv), flush=True)

        def verify(name):
            ok = fleet.quiet(60)
            time.sleep(cfg["settle"])
            api = cl.api()
            acked = {(c.name, cid): v for c in clients for cid, v in c.acked.items()}
            bad, heads = h.store_check(api, rooms, acked)
            api.close()
            bad2 = h.client_check(clients, heads)
            check(ok, "%s: every publish acked in the end" % name)
            check(not bad, "%s: %d acked messages stored once each, seqs and revs dense %s" % (
                name, len(acked), bad[:3]))
            check(not bad2, "%s: every client saw each rev of its rooms once, in order, and converged %s" % (
                name, bad2[:3]))
            fleet.set_publishing(True)
            time.sleep(cfg["load"])
            return len(acked)

        def record(name, what, t_fault, t_restore, t_whole, extra=None):
            t_end = t_whole or time.time()
            pub, dlv = pauses(clients, t_fault - 0.5, t_end + 1)
            r = {"fault": name, "what": what, "publish_pause_s": round(pub, 2), "delivery_pause_s": round(dlv, 2),
                 "restored_after_s": round(t_restore - t_fault, 2) if t_restore else None,
                 "whole_after_restore_s": round(t_whole - (t_restore or t_fault), 2) if t_whole else None}
            if extra:
                r.update(extra)
            results["faults"].append(r)
            print("HEAL %s: publish pause %.2fs, delivery pause %.2fs, whole again %s after the restore" % (
                name, pub, dlv, r["whole_after_restore_s"]), flush=True)

        # 1. kill -9 of a core
        victim = cl.busiest_core()
        t0 = time.time()
        victim.kill9()
        time.sleep(cfg["kill_hold"])
        t1 = time.time()
        victim.start()
        tw = cl.wait_whole(60)
        check(tw is not None, "core-kill9: %s back, the cluster whole again" % victim.name)
        lost = [(c.name, why) for c in clients for t, why in c.closes if t >= t0]
        check(not lost, "core-kill9: no client lost its session %s" % lost[:3])
        record("core-kill9", "kill -9 of %s (the most rooms), restarted after %ds" % (victim.name, cfg["kill_hold"]),
               t0, t1, tw)
        verify("core-kill9")

        # 2. kill -9 of a gateway
        gw = cl.gws[0]
        on_it = [c for c in clients if c.gateways[c.gw_index % 2] == gw.ws]
        t0 = time.time()
        gw.kill9()
        time.sleep(cfg["gw_hold"])
        t1 = time.time()
        gw.start()
        tw = cl.wait_whole(60)
        check(tw is not None, "gateway-kill9: %s back" % gw.name)
        moved = [c for c in on_it if c.closes and c.closes[-1][0] >= t0]
        check(len(moved) == len(on_it), "gateway-kill9: its %d clients reconnected to the other gateway" % len(on_it))
        record("gateway-kill9", "kill -9 of %s (%d clients on it), restarted after %ds" % (
            gw.name, len(on_it), cfg["gw_hold"]), t0, t1, tw)
        verify("gateway-kill9")

        # 3. the bus goes away for a while
        t0 = time.time()
        for n in cl.nats:
            n.stop()
        time.sleep(cfg["nats_down"])
        t1 = time.time()
        for n in cl.nats:
            n.start()
        tw = cl.wait_whole(60)
        check(tw is not None, "nats-down: every core on the bus again")
        record("nats-down", "all three nats-server stopped for %ds" % cfg["nats_down"], t0, t1, tw)
        verify("nats-down")

        # 4. PostgreSQL restarted
        t0 = time.time()
        subprocess.run(net.exec_prefix("db") + [PGTMP, "restart", cl.pg_state, "--down", str(cfg["pg_down"])],
                       check=True)
        t1 = time.time()
        tw = cl.wait_whole(60)
        check(tw is not None, "pg-restart: the cluster whole again")
        record("pg-restart", "PostgreSQL stopped (fast) and started after %ds" % cfg["pg_down"], t0, t1, tw)
        verify("pg-restart")

        # 5. a core cut off the network
        victim = cl.busiest_core()
        t0 = time.time()
        net.partition(victim.node)
        time.sleep(cfg["partition"])
        t1 = time.time()
        net.heal(victim.node)
        tw = cl.wait_whole(120)
        check(tw is not None, "core-partition: %s back in the cluster after the heal" % victim.name)
        lost = [(c.name, why) for c in clients for t, why in c.closes if t >= t0]
        check(not lost, "core-partition: no client lost its session %s" % lost[:3])
        record("core-partition", "%s's traffic dropped for %ds (its namespace off the bridge)" % (
            victim.name, cfg["partition"]), t0, t1, tw)
        total = verify("core-partition")

        fleet.stop()
        results["acked_total"] = total
        for p in cl.procs():
            check(p.alive(), "%s running at the end" % p.name)
        for p in cl.gws + cl.cores:
            rc = p.stop()
            check(rc == 0, "%s stops cleanly on SIGTERM (exit %s; sanitizers report here)" % (p.name, rc))
    finally:
        if fleet:
            fleet.stop()
        cl.stop()
        if failures:
            for p in cl.procs():
                print("---- %s ----\n%s" % (p.name, p.tail(15)))
            print("logs kept in", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    results["failures"] = len(failures)
    if args.results:
        with open(args.results, "w") as f:
            json.dump(results, f, indent=1)
    print("%d failures" % len(failures))
    return 1 if failures else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--long", action="store_true")
    ap.add_argument("--results")
    ap.add_argument("--set", action="append", help="override a setting of the run, e.g. partition=30")
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--prefix", default="pc%d" % os.getpid(), help=argparse.SUPPRESS)
    ap.add_argument("build")
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)
    if args.inside:
        return run(args)
    if os.geteuid() != 0:
        print("cluster.py needs root: it makes network namespaces (ip netns)", file=sys.stderr)
        return 1
    net = netns.Net(args.prefix)
    try:
        net.create(NODES)
        argv = net.exec_prefix("cl") + [sys.executable, os.path.abspath(__file__), "--inside", "--prefix", args.prefix]
        if args.long:
            argv.append("--long")
        if args.results:
            argv += ["--results", os.path.abspath(args.results)]
        for kv in args.set or []:
            argv += ["--set", kv]
        argv.append(args.build)
        return subprocess.call(argv)
    finally:
        net.destroy()


if __name__ == "__main__":
    sys.exit(main())
