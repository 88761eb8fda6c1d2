#!/usr/bin/python3
"""tests/cluster/report.py RESULTS.json: the cluster fault run as Markdown
(the table docs/deploy.md quotes)."""
import json
import sys
import time

r = json.load(open(sys.argv[1]))
c = r["config"]
print("# Cluster fault run (%s)\n" % r["mode"])
print("Taken %s on this repository's test machine (2 shared cores: other work ran beside it; "
      "re-take the numbers on a quiet machine before relying on them).\n" % r.get("taken", "?"))
print("PostgreSQL 15, three nats-server (one cluster), three parleyd, two parley-gateway, each in its "
      "own network namespace; %d chat clients on both gateways in %d rooms (3 rooms each, every room "
      "with clients on both gateways), each publishing about 10 messages/s, acked before the next.\n"
      % (c["clients"], c["rooms"]))
b = r.get("baseline")
if b:
    print("Without a fault, the longest any client waited: %.2f s for an ack, %.2f s for an event "
          "(%s).\n" % (b["publish_pause_s"], b["delivery_pause_s"], b["what"]))
print("| fault | what was done | longest wait for an ack | longest wait for an event | cluster whole again after the restore |")
print("|---|---|---|---|---|")
for f in r["faults"]:
    w = f["whole_after_restore_s"]
    print("| %s | %s | %.2f s | %.2f s | %s |" % (f["fault"], f["what"], f["publish_pause_s"],
                                                   f["delivery_pause_s"], "%.2f s" % w if w is not None else "never"))
ok = [x for x in r["checks"] if x["ok"]]
bad = [x for x in r["checks"] if not x["ok"]]
print("\nAfter every fault: every acked message stored once (seqs and revs dense), every client saw each "
      "rev of its rooms exactly once and in order, all clients converged. %d checks passed, %d failed; "
      "%d messages acked in all.\n" % (len(ok), len(bad), r.get("acked_total", 0)))
for x in bad:
    print("- FAILED: " + x["what"])
