#!/usr/bin/env python3
"""bench/report.py: turns bench/run's result rows (JSON lines) into the
report: <out>.json (rows, machine, conditions), <out>.md (one table per
scenario) and <out>.plot.dat (gnuplot input for bench/plot.gp). With
--check-smoke it only checks a smoke run: every promise parley makes in
each scenario (SMOKE_CHECKS: no failed or bad call, nothing missing, lost
or duplicated, every ack stored), a row without error and without a failed
call for every other server a scenario runs on (PEER_CHECKS), and counts
the checks. Stdlib only."""
import argparse
import json
import os
import platform
import sys
import time

SERVERS = {"parley": "parley (gateway+parleyd)", "mqtt": "mosquitto (MQTT/WS)",
           "nats": "nats-server (NATS/WS)", "ws": "Node ws broadcast",
           "socketio": "Socket.IO 4.8 (recovery on)",
           "jetstream": "NATS JetStream (file storage)",
           "sqlite": "SQLite direct (store_list)"}

# What an ack means, per server of the durable and stream scenarios.
ACK = {"parley": "committed and fsync'd (synchronous=FULL): survives a power loss",
       "parley-interval": "committed to the OS, fsync'd within 1 s (--durability interval): "
                          "survives a crash of parleyd, not of the machine",
       "jetstream": "stored, written to the OS, synced on an interval of its own (2.9): "
                    "survives a crash of nats-server, not of the machine"}
DURABLE_NAMES = {"parley": "parleyd over gRPC, durability full",
                 "parley-interval": "parleyd over gRPC, durability interval",
                 "jetstream": "NATS JetStream over NATS/TCP"}

# Which servers each scenario runs on (bench/run), for the smoke check.
SCENARIO_SERVERS = {
    "fanout": ["parley", "mqtt", "nats", "ws", "socketio"],
    "rooms": ["parley", "mqtt", "nats", "ws", "socketio"],
    "idle": ["parley", "mqtt", "nats", "ws", "socketio"],
    "reconnect": ["parley", "mqtt", "nats", "ws", "socketio", "jetstream"],
    "history": ["parley", "sqlite"],
    "durable": ["parley", "parley-interval", "jetstream"],
    "stream": ["parley", "parley-interval", "jetstream"],
}


def machine():
    info = {"nproc": os.cpu_count(), "kernel": platform.release()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    info["mem_gib"] = round(int(line.split()[1]) / 1048576, 1)
        with open("/proc/loadavg") as f:
            info["loadavg_at_end"] = f.read().split()[:3]
    except OSError:
        pass
    return info


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    return rows


def ms(us):
    return "-" if us is None else f"{us / 1000:.2f}"


def num(v, fmt="{:,.0f}"):
    return "-" if v is None else fmt.format(v)


def mb(kb):
    return "-" if kb is None else f"{kb / 1024:.0f}"


def table(head, body):
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in body]
    return "\n".join(out)


def name(r):
    if r["scenario"] in ("durable", "stream"):
        return DURABLE_NAMES.get(r["server"], r["server"])
    if r["server"] == "parley" and r["scenario"] == "history":
        return "parleyd over gRPC"
    return SERVERS.get(r["server"], r["server"])


def cpu_per_op(r):
    """Server CPU (all its threads) per answered request, in microseconds:
    on a machine shared with other work the rate follows the CPU share a
    server got, this does not."""
    if not r.get("ok") or not r.get("srv_cpu_pct"):
        return "-"
    return "%.0f" % (r["srv_cpu_pct"] / 100.0 * r["wall_s"] * 1e6 / r["ok"])


def err_row(r, width):
    return [name(r), "error: " + r["error"][:80]] + ["-"] * (width - 2)


def render(rows, args):
    by = {}
    for r in rows:
        by.setdefault(r["scenario"], []).append(r)
    md = []
    if "fanout" in by:
        h = ["server", "delivered msgs/s", "p50 ms", "p99 ms", "p99.9 ms", "server CPU %",
             "server peak RSS MB", "loadgen CPU %", "missing", "lost", "duplicated"]
        b = []
        for r in by["fanout"]:
            if "error" in r:
                b.append(err_row(r, len(h)))
                continue
            b.append([name(r), num(r["delivered_per_s"]), ms(r["p50_us"]), ms(r["p99_us"]),
                      ms(r["p999_us"]), num(r["srv_cpu_pct"]), mb(r["srv_rss_peak_kb"]),
                      num(r["lg_cpu_pct"]), num(r["missing"]), num(r.get("lost")),
                      num(r.get("dup"))])
        s = by["fanout"][0]
        md += ["## 1. Fan-out: one room, %s subscribers, one publisher flat out" % s.get("subs", "?"),
               "", table(h, b), ""]
    if "rooms" in by:
        h = ["server", "connections", "published/s", "delivered/s", "p50 ms", "p99 ms",
             "p99.9 ms", "server CPU %", "loadgen CPU %", "missing", "lost", "duplicated"]
        b = []
        for r in by["rooms"]:
            if "error" in r:
                b.append(err_row(r, len(h)))
                continue
            b.append([name(r), num(r["ready"]), num(r["published_per_s"]), num(r["delivered_per_s"]),
                      ms(r["p50_us"]), ms(r["p99_us"]), ms(r["p999_us"]), num(r["srv_cpu_pct"]),
                      num(r["lg_cpu_pct"]), num(r["missing"]), num(r.get("lost")),
                      num(r.get("dup"))])
        md += ["## 2. Many rooms: connections in rooms of %s, each publishing at a fixed rate"
               % by["rooms"][0].get("room_size", "?"), "", table(h, b), ""]
    if "idle" in by:
        h = ["server", "idle connections held", "server RSS before MB", "after MB",
             "bytes per connection", "connect time s", "server CPU % while idle"]
        b = []
        for r in by["idle"]:
            if "error" in r:
                b.append(err_row(r, len(h)))
                continue
            short = r["ready"] < r["conns"]
            b.append([name(r), num(r["ready"]) + (" of %s" % num(r["conns"]) if short else ""),
                      mb(r["srv_rss_before_kb"]), mb(r["srv_rss_after_kb"]),
                      num(r["bytes_per_conn"]),
                      num(r["connect_s"], "{:.1f}") + (" (gave up waiting)" if short else ""),
                      num(r["srv_cpu_pct"], "{:.1f}") + (" (still connecting)" if short else "")])
        md += ["## 3. Idle connections (asked for %s; RLIMIT_NOFILE %s)" % (args.idle_n, args.nofile),
               "", table(h, b), ""]
    if "history" in by:
        h = ["path", "requests/s", "p50 ms", "p99 ms", "p99.9 ms", "server CPU %",
             "CPU us per page", "failed"]
        b = []
        for r in by["history"]:
            if "error" in r:
                b.append(err_row(r, len(h)))
                continue
            direct = r["server"] == "sqlite"
            b.append([name(r), num(r["per_s"]), ms(r["p50_us"]), ms(r["p99_us"]),
                      ms(r["p999_us"]), "-" if direct else num(r["srv_cpu_pct"]),
                      # the direct read's own CPU is the load generator's
                      "%.0f" % (r["lg_cpu_pct"] / 100.0 * r["wall_s"] * 1e6 / r["ok"])
                      if direct and r.get("ok") else cpu_per_op(r),
                      num(r["failed"] + r["bad"])])
        s = [r for r in by["history"] if "error" not in r]
        head = s[0]["head_seq"] if s else "?"
        md += ["## 4. History: ListMessages of 50 from a room of %s messages" % (
            f"{head:,}" if isinstance(head, int) else head), "", table(h, b), ""]
    for sc, title in (("durable", "## 5. Durable publish: each publisher waits for its ack"),
                      ("stream", "## 5b. Durable publish on a stream: many publishes in flight")):
        if sc not in by:
            continue
        h = ["server", "publishers x in flight", "acked publishes/s", "p50 ms", "p99 ms",
             "p99.9 ms", "server CPU %", "server CPU us per ack", "loadgen CPU %", "failed",
             "an ack means"]
        b = []
        for r in by[sc]:
            if "error" in r:
                b.append(err_row(r, len(h)))
                continue
            b.append([name(r), "%d x %d" % (r["concurrency"], r.get("window", 1)),
                      num(r["per_s"]), ms(r["p50_us"]), ms(r["p99_us"]), ms(r["p999_us"]),
                      num(r["srv_cpu_pct"]), cpu_per_op(r), num(r["lg_cpu_pct"]),
                      num(r["failed"] + r["bad"]), ACK.get(r["server"], "-")])
        md += [title, "", table(h, b), ""]
    if "reconnect" in by:
        h = ["server", "subscribers", "messages", "resume", "sessions recovered",
             "reconnect ms", "caught up ms", "all caught up", "lost", "duplicated"]
        b = []
        for r in by["reconnect"]:
            if "error" in r:
                b.append(err_row(r, len(h)))
                continue
            rec = r.get("recovered", 0) + r.get("not_recovered", 0)
            b.append([name(r), num(r["subs"]), "%d+%d" % (r["pre"], r["msgs"]),
                      "yes" if r["resume"] else "no",
                      "%s of %s" % (num(r.get("recovered", 0)), num(rec)) if rec else "-",
                      num(r["reconnect_ms"]),
                      num(r["catchup_ms"]) if r["all_caught_up"] else "never",
                      "yes" if r["all_caught_up"] else "no (%s of %s)" % (r["complete"], r["subs"]),
                      num(r["lost"]), num(r["dup"])])
        md += ["## 6. Mass reconnect: subscribers drop at once, messages published meanwhile",
               "", table(h, b), ""]
    if "cluster" in by:
        h = ["cores", "store", "acked publishes/s", "ack p50 ms", "ack p99 ms", "delivered/s",
             "same-core p50 ms", "p99 ms", "across the bus p50 ms", "p99 ms", "the bus adds (p50) ms",
             "missing", "gaps", "duplicated"]
        b = []
        for r in by["cluster"]:
            if "error" in r:
                b.append(err_row(r, len(h)))
                continue
            store, n = r["server"].split("-")
            remote = r.get("remote", 0) > 0
            b.append([n, "SQLite" if store == "sqlite" else "PostgreSQL + NATS", num(r["acked_per_s"]),
                      ms(r["ack_p50_us"]), ms(r["ack_p99_us"]), num(r["delivered_per_s"]),
                      ms(r["local_p50_us"]), ms(r["local_p99_us"]),
                      ms(r["remote_p50_us"]) if remote else "-", ms(r["remote_p99_us"]) if remote else "-",
                      ms(r["remote_p50_us"] - r["local_p50_us"]) if remote else "-",
                      num(r["missing"]), num(r["gaps"]), num(r["dup"])])
        s = next((r for r in by["cluster"] if "error" not in r), {})
        md += ["## 7. Cluster: cores on one store, events between them on NATS",
               "", "%s publishes kept in flight over %s rooms, spread over the cores; %s subscriber "
               "streams spread over the cores, each on every room. Same-core: events delivered by the "
               "core that committed them; across the bus: by another core." % (
                   s.get("pubs", "?"), s.get("rooms", "?"), s.get("subs", "?")),
               "", table(h, b), ""]
    return md


def plot_data(rows, path):
    """Three blocks for bench/plot.gp (gnuplot `index`): fan-out rate and
    p99s of fan-out and many rooms; the durable peers' acked publishes/s
    (64 x 1 and 16 x 128); the time until every subscriber caught up after
    a mass reconnect, for the servers that keep what was missed."""
    def ok(r):
        return "error" not in r
    fan = {r["server"]: r for r in rows if r["scenario"] == "fanout" and ok(r)}
    rooms = {r["server"]: r for r in rows if r["scenario"] == "rooms" and ok(r)}
    dur = {r["server"]: r for r in rows if r["scenario"] == "durable" and ok(r)}
    strm = {r["server"]: r for r in rows if r["scenario"] == "stream" and ok(r)}
    rec = {r["server"]: r for r in rows if r["scenario"] == "reconnect" and ok(r)}
    names = {"mqtt": "mosquitto", "nats": "nats-server", "ws": "node-ws",
             "socketio": "socket.io", "jetstream": "jetstream",
             "parley": "parley", "parley-interval": "parley-interval"}
    servers = [s for s in ("parley", "mqtt", "nats", "ws", "socketio")
               if s in fan or s in rooms]
    durable = [s for s in ("parley", "parley-interval", "jetstream") if s in dur or s in strm]
    kept = [s for s in ("parley", "socketio", "jetstream")
            if s in rec and rec[s].get("all_caught_up")]
    if not servers and not durable and not kept:
        return False
    with open(path, "w") as f:
        f.write("# server fanout_delivered_per_s fanout_p99_ms rooms_p99_ms\n")
        for s in servers or ["none"]:
            fr, rr = fan.get(s, {}), rooms.get(s, {})
            f.write('"%s" %s %s %s\n' % (names.get(s, s), fr.get("delivered_per_s", 0),
                                         fr.get("p99_us", 0) / 1000, rr.get("p99_us", 0) / 1000))
        f.write("\n\n# server durable_64x1_acked_per_s stream_16x128_acked_per_s\n")
        for s in durable or ["none"]:
            f.write('"%s" %s %s\n' % (names.get(s, s), dur.get(s, {}).get("per_s", 0),
                                      strm.get(s, {}).get("per_s", 0)))
        f.write("\n\n# server reconnect_caught_up_s\n")
        for s in kept or ["none"]:
            f.write('"%s" %s\n' % (names.get(s, s), rec[s].get("catchup_ms", 0) / 1000))
    return True


# What parley promises in each scenario, as (what, test) pairs over its
# result row: every check must hold in a smoke run.
def _common(r):
    return [("every connection ready", r.get("ready") == r.get("conns") and r.get("gave_up") == 0),
            ("no connection dropped", r.get("drops") == 0),
            ("no error frame", r.get("errors") == 0)]


def _delivery(r):
    return _common(r) + [
        ("published something", r.get("published", 0) > 0),
        ("every publish acked", r.get("acked") == r.get("published")),
        ("delivered something", r.get("delivered", 0) > 0),
        ("nothing missing", r.get("missing") == 0),
        ("nothing lost", r.get("lost") == 0),
        ("nothing duplicated", r.get("dup") == 0)]


SMOKE_CHECKS = {
    "fanout": _delivery,
    "rooms": _delivery,
    "idle": _common,
    "history": lambda r: [("answered", r.get("ok", 0) > 0), ("no failed call", r.get("failed") == 0),
                          ("no bad answer", r.get("bad") == 0)],
    "durable": lambda r: [("acked something", r.get("ok", 0) > 0), ("no failed call", r.get("failed") == 0),
                          ("no bad answer", r.get("bad") == 0), ("no duplicate", r.get("dup") == 0),
                          ("every ack stored once", r.get("stored") == r.get("ok"))],
    "stream": lambda r: SMOKE_CHECKS["durable"](r),
    "cluster": lambda r: [("acked something", r.get("acked", 0) > 0), ("no failed call", r.get("failed") == 0),
                          ("delivered something", r.get("delivered", 0) > 0),
                          ("every acked change delivered to every stream", r.get("missing") == 0),
                          ("no gap", r.get("gaps") == 0), ("no duplicate", r.get("dup") == 0),
                          ("no bad frame", r.get("bad_frames") == 0)],
    "reconnect": lambda r: _common(r) + [
        ("everyone had the first messages", r.get("pre_ok") == 1),
        ("the witness had every message", r.get("witness_ok") == 1),
        ("every subscriber caught up", r.get("all_caught_up") == 1),
        ("nothing lost", r.get("lost") == 0), ("nothing duplicated", r.get("dup") == 0)],
}


# What every other server's row must show in a smoke run: it ran, and
# nothing it was asked failed (the peers promise less than parley; what
# they lose is reported, not checked). parley-interval keeps parley's
# promises.
def _peer(sc, r):
    if sc in ("history", "durable", "stream"):
        return [("acked something", r.get("ok", 0) > 0), ("no failed call", r.get("failed") == 0),
                ("no bad answer", r.get("bad") == 0)]
    return [("every connection ready", r.get("ready") == r.get("conns") and r.get("gave_up") == 0),
            ("no error frame", r.get("errors") == 0)]


def check_smoke(rows, scenarios, servers):
    """Checks every parley row of a smoke run against SMOKE_CHECKS and every
    other server's against _peer; prints each failure and a closing line
    counting what was really checked."""
    passed = failed = 0
    asked = set(servers.split())
    for sc in scenarios.split():
        for srv in SCENARIO_SERVERS.get(sc, []):
            if srv in ("parley", "sqlite") or srv.split("-")[0] not in asked:
                continue
            rs = [r for r in rows if r["scenario"] == sc and r["server"] == srv]
            if not rs or any("error" in r for r in rs):
                print("smoke: %s %s: no result: %s" % (sc, srv, rs[0].get("error") if rs else "missing"))
                failed += 1
                continue
            checks = SMOKE_CHECKS[sc](rs[0]) if srv == "parley-interval" else _peer(sc, rs[0])
            for what, ok in checks:
                if ok:
                    passed += 1
                else:
                    failed += 1
                    print("smoke: %s %s: %s fails" % (sc, srv, what))
        if "parley" not in asked:
            continue
        pr = [r for r in rows if r["scenario"] == sc and (r["server"] in ("parley", "sqlite")
                                                           or sc == "cluster")]
        if not pr or any("error" in r for r in pr):
            print("smoke: %s: no parley result: %s" % (sc, pr[0].get("error") if pr else "missing"))
            failed += 1
            continue
        for r in pr:
            if sc == "history" and r["server"] == "sqlite":
                checks = [("read something", r.get("ok", 0) > 0), ("no bad page", r.get("bad") == 0)]
            else:
                checks = SMOKE_CHECKS[sc](r)
            for what, ok in checks:
                if ok:
                    passed += 1
                else:
                    failed += 1
                    print("smoke: %s %s: %s fails: %s" % (sc, r["server"], what, json.dumps(
                        {k: v for k, v in r.items() if not k.endswith("_us") and not k.endswith("_pct")})))
    print("smoke: %d checks passed, %d failed, over %d scenarios (%s)" % (
        passed, failed, len(scenarios.split()), scenarios))
    return failed == 0 and passed > 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", required=True)
    ap.add_argument("--out")
    ap.add_argument("--elapsed", type=int, default=0)
    ap.add_argument("--smoke", default="0")
    ap.add_argument("--idle-n", default="?")
    ap.add_argument("--nofile", default="?")
    ap.add_argument("--check-smoke")
    ap.add_argument("--servers", default="parley mqtt nats ws socketio jetstream")
    args = ap.parse_args()
    rows = load(args.rows)
    if args.check_smoke is not None:
        return 0 if check_smoke(rows, args.check_smoke, args.servers) else 1
    m = machine()
    doc = {"generated_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "smoke": args.smoke == "1", "elapsed_s": args.elapsed, "machine": m,
           "rlimit_nofile": args.nofile, "rows": rows}
    with open(args.out + ".json", "w") as f:
        json.dump(doc, f, indent=1)
    md = ["# parley benchmark %s" % doc["generated_utc"], "",
          "Machine: %s cores, %s GiB, kernel %s, CPU %s. Run took %ss; load average at the end %s." % (
              m.get("nproc"), m.get("mem_gib"), m.get("kernel"), m.get("cpu"), args.elapsed,
              " ".join(m.get("loadavg_at_end", []))),
          "Latencies are end-to-end (publish to delivery, one clock); CPU is percent of one core "
          "over the measured window; RSS is resident memory of the server processes (parley: "
          "gateway + parleyd).", ""]
    md += render(rows, args)
    with open(args.out + ".md", "w") as f:
        f.write("\n".join(md) + "\n")
    plot_data(rows, args.out + ".plot.dat")
    return 0


if __name__ == "__main__":
    sys.exit(main())
