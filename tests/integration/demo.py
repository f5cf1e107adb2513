# SPDX-License-Identifier: Apache-2.0
"""The demo: a three-node cluster on this machine (the test API server with real-looking
workloads, one logind mock per node) and three real noderebootd daemons. All three nodes need a
reboot at once; watch them roll through one at a time, then read the per-node summary.

A reboot is simulated by what a real one does to the daemon: it dies, the boot ID changes, the
sentinel on /run is gone, the node's kubelet is away (its Node keeps saying Ready with the old boot
ID, as a real one does) until two seconds after the daemon is back, and the daemon starts again from
its state file; it puts the node back into service only once the kubelet of the new boot reports."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import Bench, max_cordoned_at_once, seed_cluster  # noqa: E402

NODES = ["node-a", "node-b", "node-c"]
PACKAGES = {
    "node-a": ["linux-image-6.1.0-28-amd64", "libc6"],
    "node-b": ["linux-image-6.1.0-28-amd64"],
    "node-c": ["openssl", "libssl3"],
}


def main():
    seed = seed_cluster(NODES, replicas_per_node=2, pdb_min_available=4)
    config = {"Lock.TTLSec": "60s", "Daemon.LogLevel": "info"}
    t0 = time.monotonic()

    def say(text):
        print(f"[{time.monotonic() - t0:5.1f}s] {text}", flush=True)

    print("nodereboot demo: 3 nodes, Concurrency=1, a Deployment of 6 pods behind a PodDisruptionBudget "
          "(minAvailable 4), a DaemonSet and static pods on every node.\n", flush=True)
    with Bench(NODES, config=config, seed=seed) as b:
        say(f"test API server at {b.api.url}; starting {len(NODES)} daemons")
        b.start_all()
        for n in b.nodes.values():
            n.wait_phase("idle", 15)
        for name, n in b.nodes.items():
            n.touch_sentinel(PACKAGES[name])
        say("apt wrote /run/reboot-required on every node")

        last = {}
        stats = {name: {"pending": None, "drain": None, "down": None, "idle": None} for name in NODES}

        def observe():
            holders = b.api.lease_holders()
            holder = holders.get("nodereboot-0") or "nobody"
            for name, n in b.nodes.items():
                phase = n.phase()
                schedulable = not b.api.node(name)["spec"].get("unschedulable")
                key = (phase, schedulable)
                if last.get(name) != key:
                    now = time.monotonic() - t0
                    pods = len(b.api.get(f"/api/v1/pods?fieldSelector=spec.nodeName%3D{name}")["items"])
                    say(f"{name}: {phase:<11} {'schedulable' if schedulable else 'CORDONED':<11} "
                        f"pods={pods}  lock held by {holder}")
                    last[name] = key
                    s = stats[name]
                    if phase == "pending" and s["pending"] is None:
                        s["pending"] = now
                    if phase == "draining" and s["drain"] is None:
                        s["drain"] = now
                    if phase == "idle" and s["down"] is not None and s["idle"] is None:
                        s["idle"] = now

        def on_reboot(n):
            stats[n.name]["down"] = time.monotonic() - t0
            say(f"{n.name}: logind got the reboot request -> rebooting (new boot ID)")

        def done():
            observe()
            return all(n.reboots == 1 and n.phase() == "idle" for n in b.nodes.values())

        b.run_reboots(done, timeout=120, on_reboot=on_reboot)
        observe()

        timeline = b.api.timeline()
        worst = max_cordoned_at_once(timeline, set(NODES))
        out = b.max_out_of_service()
        print("\nSummary", flush=True)
        print(f"{'node':<8} {'reboots':>7} {'waited for lock':>16} {'drain+reboot':>13} {'back in service at':>19}  reason")
        for name, n in b.nodes.items():
            s = stats[name]
            waited = (s["drain"] or 0) - (s["pending"] or 0)
            busy = (s["idle"] or 0) - (s["drain"] or 0)
            print(f"{name:<8} {n.reboots:>7} {waited:>15.1f}s {busy:>12.1f}s {s['idle'] or 0:>18.1f}s  "
                  f"{', '.join(PACKAGES[name])}")
        print(f"\nAt most {worst} node cordoned, and {out} out of service (cordoned, or rebooted with the "
              f"kubelet of its new boot not up yet), at any time; every node is schedulable again and the "
              f"lock is free: {not any(b.api.lease_holders().values())}.")
        print(f"Whole roll: {time.monotonic() - t0:.1f}s")
        if worst > 1 or out > 1:
            sys.exit("safety invariant violated")


if __name__ == "__main__":
    main()
