#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Does a node's cycle cost the same on a small fleet and a larger one?

    /usr/bin/python3 tests/scale/scale-compare.py --small 10 --large 50 --concurrency 5
        [--tolerance 0.2] [--out-dir DIR] [-- SCALE-ARGS ...]

Rolls --small nodes, then --large nodes, with scale.py --check (the safety invariants: never more
than Concurrency out of service, one reboot each, all back in service, nothing forbidden), and
compares the requests per node cycle: the larger fleet's must be within --tolerance of the
smaller one's (with a cost that grows with the fleet, as when every waiting node looked at the
slots after every release, 50 nodes cost about twice what 10 do). It also fails when a node got
its slot before one whose reboot became required earlier. Prints both sets of figures and one
line of verdict; exits 1 on any failure."""

import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def roll(nodes, concurrency, out, extra):
    cmd = [sys.executable, os.path.join(HERE, "scale.py"), "--nodes", str(nodes), "--concurrency", str(concurrency),
           "--check", "--out", out] + extra
    print("scale-compare: " + " ".join(cmd[1:]), flush=True)
    rc = subprocess.call(cmd)
    try:
        with open(out) as f:
            return rc, json.load(f)
    except (OSError, ValueError):
        return rc, None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", type=int, default=10)
    ap.add_argument("--large", type=int, default=50)
    ap.add_argument("--concurrency", type=int, default=5)
    ap.add_argument("--tolerance", type=float, default=0.2)
    ap.add_argument("--out-dir")
    ap.add_argument("scale_args", nargs="*", help="passed on to scale.py (after --)")
    args = ap.parse_args()
    out_dir = args.out_dir or tempfile.mkdtemp(prefix="nodereboot-scale-compare-")
    os.makedirs(out_dir, exist_ok=True)

    problems = []
    figures = {}
    for n in (args.small, args.large):
        rc, f = roll(n, args.concurrency, os.path.join(out_dir, f"scale-{n}.json"), args.scale_args)
        if rc != 0 or f is None:
            problems.append(f"the roll of {n} nodes failed (exit {rc})")
            continue
        figures[n] = f
        fa = f["fairness"]
        if fa["max_overtaken_by"]:
            problems.append(f"{n} nodes: {fa['worst_node']} was overtaken by {fa['max_overtaken_by']} nodes whose "
                            f"reboot became required after its own ({fa['judged_by']} order)")

    if len(figures) == 2:
        small, large = (figures[args.small]["requests"], figures[args.large]["requests"])
        a, b = small["per_node_cycle"], large["per_node_cycle"]
        change = b / a - 1 if a else float("inf")
        print(f"\nrequests per node cycle: {a} at {args.small} nodes, {b} at {args.large} nodes "
              f"({change:+.1%}; tolerance ±{args.tolerance:.0%})")
        for verb in sorted(set(small["by_verb_per_node_cycle"]) | set(large["by_verb_per_node_cycle"])):
            print(f"  {verb:8} {small['by_verb_per_node_cycle'].get(verb, 0):7} "
                  f"{large['by_verb_per_node_cycle'].get(verb, 0):7}")
        if abs(change) > args.tolerance:
            problems.append(f"requests per node cycle grew from {a} ({args.small} nodes) to {b} ({args.large} nodes): "
                            f"{change:+.1%}, more than ±{args.tolerance:.0%}")

    for p in problems:
        print("scale-compare: FAILED:", p)
    if not problems:
        print("scale-compare: OK")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
