# SPDX-License-Identifier: Apache-2.0
"""The lock queue: slots in the order the reboots became required, a head that leaves a free slot
untaken (a stopped daemon) passed over, a blocked node stepping out of line, and the queue off
when its namespace is missing (a cluster that applied an older rbac.yaml)."""

import os
import random
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import SLOW, Bench, request_node, wait_for  # noqa: E402

QUEUE = "/apis/coordination.k8s.io/v1/namespaces/nodereboot/leases"


def takes(log):
    """(time, node) of every successful write that made a node the holder of a slot."""
    out = []
    for e in log:
        if "/namespaces/kube-system/leases" not in e["path"] or e["method"] not in ("PUT", "POST"):
            continue
        if e["status"] >= 300:
            continue
        holder = ((e.get("body") or {}).get("spec") or {}).get("holderIdentity")
        if holder and holder == request_node(e) and (e["method"] == "POST" or "acquireTime" in e["body"]["spec"]):
            out.append((e["time"], holder))
    # a renewal rewrites the same holder: keep the first write of each holding
    seen, first = set(), []
    for t, n in sorted(out):
        if n not in seen:
            seen.add(n)
            first.append((t, n))
    return first


def start_and_touch(b, nodes, order, gap):
    """Starts the daemons of nodes, waits until each is idle, then touches their sentinels in
    order, gap seconds apart: their reboots become required in that order."""
    for n in nodes:
        b.nodes[n].start()
    for n in nodes:
        b.nodes[n].wait_phase("idle", 15)
        # and watching its sentinel (a node with no state file says idle before its daemon runs)
        wait_for(lambda node=b.nodes[n]: node.notified("READY=1"), 15, f"{n}'s READY=1")
    for n in order:
        b.nodes[n].touch_sentinel()
        time.sleep(gap * SLOW)          # its daemon queues up before the next (slower under valgrind)


def ticket(holder, since):
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": f"nodereboot-q-{holder}", "namespace": "nodereboot",
                         "labels": {"nodereboot.io/queue": "nodereboot"}},
            "spec": {"holderIdentity": holder, "acquireTime": since}}


class Queue(unittest.TestCase):
    def test_slots_go_in_the_order_reboots_became_required(self):
        """Six nodes, Concurrency=1, their sentinels appearing in a random order half a second
        apart: the slot goes to them in exactly that order (without the queue, whoever's random
        delay was shortest after each release took it), and every ticket is gone at the end."""
        nodes = [f"n{i}" for i in range(1, 7)]
        order = nodes[:]
        random.Random(7).shuffle(order)
        with Bench(nodes, config={"Lock.Concurrency": "1"}) as b:
            start_and_touch(b, nodes, order, 0.5)
            b.run_reboots(lambda: all(n.reboots == 1 and n.phase() == "idle" for n in b.nodes.values()), 180)
            got = [n for _, n in takes(b.api.request_log())]
            print(f"sentinels in the order {order}; slots taken in the order {got}")
            self.assertEqual(got, order)
            self.assertEqual(b.api.get(QUEUE)["items"], [])

    def test_only_the_front_of_the_line_follows_the_slots(self):
        """Six nodes wait behind a holder that renews on time (Concurrency=1): the two at the
        front watch the slot Leases, the four behind them do not (every take, renewal and release
        would be sent to each of them: thousands of watch events per node cycle in a large
        fleet); each node follows the tickets only."""
        nodes = [f"n{i}" for i in range(1, 7)]
        with Bench(nodes + ["busy"]) as b:
            renew = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
            b.api.api("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases", {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": "nodereboot-0", "namespace": "kube-system",
                             "labels": {"nodereboot.io/lock": "nodereboot"}},
                "spec": {"holderIdentity": "busy", "leaseDurationSeconds": 3600, "renewTime": renew}},
                expect=201)
            start_and_touch(b, nodes, nodes, 0.3)
            wait_for(lambda: any("place 6 of 6" in s for s in b.nodes["n6"].statuses()), 15, "n6 sixth in line")
            time.sleep(3)                      # past every node's first 2 s in line
            log = b.api.request_log()

            def watches(n, ns):
                return [e for e in log if request_node(e) == n and e["verb"] == "watch"
                        and f"/namespaces/{ns}/leases" in e["path"] and "labelSelector" in e["query"]]
            following = [n for n in nodes if watches(n, "kube-system")]
            print(f"following the slots: {following}")
            self.assertEqual(following, ["n1", "n2"])
            self.assertTrue(all(watches(n, "nodereboot") for n in nodes))
            self.assertEqual(b.api.lease_holders().get("nodereboot-0"), "busy")

    def test_a_stopped_head_is_passed_over(self):
        """A ticket of a node whose daemon stopped while it waited (created here dated an hour ago,
        so it is first in line): the slot is free and it does not take it. The next in line
        deletes that ticket after the pass-over period and takes the slot; a live node at the head
        keeps its place."""
        with Bench(["n1", "n2"]) as b:
            since = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(time.time() - 3600))
            b.api.api("POST", QUEUE, ticket("n2", since), expect=201)
            n1 = b.nodes["n1"]
            n1.start()
            n1.touch_sentinel()
            wait_for(lambda: any("place 2 of 2" in s for s in n1.statuses()), 15, "n1 second in line")
            t0 = time.monotonic()
            time.sleep(5)
            self.assertNotIn("nodereboot-0", b.api.lease_holders(), "n1 took the slot out of turn")
            wait_for(lambda: b.api.lease_holders().get("nodereboot-0") == "n1", 40, "n1 to take the slot")
            took = time.monotonic() - t0
            print(f"stopped head passed over after {took:.1f} s")
            self.assertGreater(took, 15)
            self.assertIn("Passing over n2 at the head of the lock queue", n1.log_text())
            deletes = [e for e in b.api.request_log() if e["method"] == "DELETE" and e["path"].endswith("/nodereboot-q-n2")]
            self.assertEqual(len(deletes), 1, deletes)
            self.assertEqual(deletes[0]["status"], 200)
            pre = (deletes[0].get("body") or {}).get("preconditions") or {}
            self.assertTrue(pre.get("uid") and pre.get("resourceVersion"), deletes[0].get("body"))

    def test_a_live_head_is_not_passed_over_for_an_outage(self):
        """The slot comes free as the API server goes away: the head (n1) cannot take it (its
        writes fail with 503, then the server is unreachable for 26 s, longer than the pass-over
        period), and n2 behind it saw the slot free. What n2 saw before and during the outage says
        nothing about n1, so n2's pass-over clock counts only from when both its watches are back:
        n1 takes the slot after the outage, its ticket is never deleted."""
        with Bench(["n1", "n2", "busy"], config={"Lock.Concurrency": "1"}) as b:
            renew = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
            slot = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"
            b.api.api("POST", slot, {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": "nodereboot-0", "namespace": "kube-system",
                             "labels": {"nodereboot.io/lock": "nodereboot"}},
                "spec": {"holderIdentity": "busy", "leaseDurationSeconds": 3600, "renewTime": renew}},
                expect=201)
            start_and_touch(b, ["n1", "n2"], ["n1", "n2"], 0.5)
            n2 = b.nodes["n2"]
            wait_for(lambda: any("place 2 of 2" in s for s in n2.statuses()), 15, "n2 second in line")
            time.sleep(3)                      # past n2's 2 s of settling
            # only the head writes slot Leases: these fail its take
            b.api.faults([{"match": "/namespaces/kube-system/leases", "method": m, "action": "status",
                           "status": 503} for m in ("POST", "PUT")])
            b.api.api("DELETE", slot + "/nodereboot-0", expect=200)
            time.sleep(2)
            b.api.outage(26)
            b.api.clear_faults()
            time.sleep(27)
            wait_for(lambda: b.api.lease_holders().get("nodereboot-0") == "n1", 40, "n1 to take the slot")
            self.assertNotIn("Passing over n1", n2.log_text())
            # (n1 deletes its own ticket once it holds the slot)
            deletes = [e for e in b.api.request_log() if e["method"] == "DELETE"
                       and e["path"].endswith("/nodereboot-q-n1") and request_node(e) != "n1"]
            self.assertEqual(deletes, [])

    def test_a_line_of_stopped_heads_is_passed_over(self):
        """Two tickets of stopped daemons at the front (Concurrency=1: as many as the front of the
        line that follows the slots): the first live node is too far back to follow the slots, so
        it would never see the free slot. The line does not move, so after (2+1) pass-over periods
        it follows them anyway, passes both over one after the other, and takes the slot."""
        with Bench(["n1", "n2", "n3"]) as b:
            for i, n in enumerate(("n2", "n3")):
                since = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(time.time() - 3600 + i))
                b.api.api("POST", QUEUE, ticket(n, since), expect=201)
            n1 = b.nodes["n1"]
            n1.start()
            n1.touch_sentinel()
            wait_for(lambda: any("place 3 of 3" in s for s in n1.statuses()), 15, "n1 third in line")
            wait_for(lambda: b.api.lease_holders().get("nodereboot-0") == "n1", 200, "n1 to take the slot")
            text = n1.log_text()
            self.assertIn("Passing over n2", text)
            self.assertIn("Passing over n3", text)
            # n1 deletes its own ticket once it holds the slot (a request after the take)
            wait_for(lambda: b.api.get(QUEUE)["items"] == [], 10, "the queue to be empty")

    def test_a_blocked_node_steps_out_of_line(self):
        """The first in line has a pod matching [Blockers] PodSelector=: it steps out of line at
        once (its ticket goes), so the next node takes the free slot without waiting for a
        pass-over; when the blocker goes it comes back at its old place."""
        config = {"Blockers.PodSelector": "app=db", "Lock.RecheckSec": "2s"}
        with Bench(["n1", "n2"], config=config) as b:
            b.api.api("POST", "/api/v1/namespaces/default/pods", {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "db-0", "namespace": "default", "labels": {"app": "db"}},
                "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "postgres"}]}}, expect=201)
            n1, n2 = b.nodes["n1"], b.nodes["n2"]
            n1.start()
            n1.touch_sentinel()
            wait_for(lambda: any("reboot blocked" in s for s in n1.statuses()), 15, "n1 blocked")
            wait_for(lambda: not b.api.get(QUEUE)["items"], 10, "n1's ticket to go")
            n2.start()
            t0 = time.monotonic()
            n2.touch_sentinel()
            wait_for(lambda: b.api.lease_holders().get("nodereboot-0") == "n2", 15, "n2 to take the slot")
            self.assertLess(time.monotonic() - t0, 10)
            # n2 holds the slot (logind never reboots it here); n1's blocker goes: it is back in line
            b.api.api("DELETE", "/api/v1/namespaces/default/pods/db-0?gracePeriodSeconds=0", expect=200)
            wait_for(lambda: [t["spec"]["holderIdentity"] for t in b.api.get(QUEUE)["items"]] == ["n1"], 15,
                     "n1 back in line")
            wait_for(lambda: any("waiting for the lock" in s for s in n1.statuses()[-1:]), 15, "n1 first in line")

    def test_without_its_namespace_the_queue_is_off(self):
        """A cluster whose rbac.yaml predates the queue has no namespace nodereboot: the daemons say
        so once and roll as before, one at a time."""
        with Bench(["n1", "n2", "n3"]) as b:
            b.api.api("DELETE", "/api/v1/namespaces/nodereboot", expect=200)
            wait_for(lambda: b.api.api("GET", "/api/v1/namespaces/nodereboot", expect=None)[0] == 404, 10,
                     "the namespace to go")
            b.roll_all()
            self.assertLessEqual(b.max_out_of_service(), 1)
            for n in b.nodes.values():
                self.assertEqual(n.reboots, 1, n.name)
                self.assertIn("The lock queue is off", n.log_text())
                self.assertIn("namespace nodereboot does not exist", n.log_text())


if __name__ == "__main__":
    unittest.main(verbosity=2)
