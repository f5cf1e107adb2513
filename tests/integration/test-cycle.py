# SPDX-License-Identifier: Apache-2.0
"""One node through the reboot cycle, with the real daemon, the test API server and a logind
mock. Each test names the user story it proves."""

import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import Bench, node_requests, wait_for  # noqa: E402


def evictions(log, node_pods=None):
    return [e for e in log if e["method"] == "POST" and e["path"].endswith("/eviction")]


class OneNodeCycle(unittest.TestCase):
    def test_a_full_cycle_sentinel_to_uncordon(self):
        """A node that needs a reboot takes the lease, cordons, evicts its workload pods (leaving
        DaemonSet and mirror pods alone), reboots once through logind, and after the new boot is
        Ready it is uncordoned, the lease released and the state idle."""
        with Bench(["n1", "n2"]) as b:
            n1 = b.nodes["n1"]
            b.nodes["n2"].start()
            n1.start()
            n1.wait_phase("idle", 10)
            wait_for(lambda: n1.notified("READY=1"), 10, "READY=1")
            n1.touch_sentinel(["linux-image-6.1.0-28-amd64", "libc6"])
            n1.wait_phase(["draining", "rebooting"], 15)
            self.assertEqual(b.api.lease_holders().get("nodereboot-0"), "n1")
            wait_for(lambda: n1.logind.reboot_calls() == 1, 30, "the reboot request")
            self.assertTrue(b.api.node("n1")["spec"].get("unschedulable"))

            log = b.api.request_log()
            evicted = {e["path"].split("/")[-2] for e in evictions(log)}
            self.assertEqual(evicted, {"web-6d4cf56db6-00001", "web-6d4cf56db6-00002"})
            pods = b.get = b.api.get("/api/v1/pods?fieldSelector=spec.nodeName%3Dn1")["items"]
            names = sorted(p["metadata"]["name"] for p in pods)
            self.assertEqual(names, ["kube-proxy-n1", "node-exporter-n1"])
            self.assertEqual(n1.state()["reason"], "linux-image-6.1.0-28-amd64, libc6")

            time.sleep(0.5)
            self.assertEqual(n1.logind.reboot_calls(), 1, "exactly one reboot request")
            n1.reboot()
            n1.wait_phase("idle", 30)
            node = b.api.node("n1")
            self.assertFalse(node["spec"].get("unschedulable"))
            annotations = node["metadata"].get("annotations") or {}
            self.assertNotIn("nodereboot.io/cordoned", annotations)
            self.assertNotIn("nodereboot.io/reboot-in-progress", annotations)
            self.assertIn("nodereboot.io/last-reboot", annotations)
            self.assertFalse(b.api.lease_holders().get("nodereboot-0"))
            self.assertEqual(n1.logind.reboot_calls(), 0)   # cleared at the reboot; none since
            self.assertEqual(n1.reboots, 1)
            events = b.api.get("/api/v1/namespaces/default/events")["items"]
            reasons = {e["reason"] for e in events if e["involvedObject"]["name"] == "n1"}
            self.assertTrue({"Draining", "Rebooting", "Rebooted"} <= reasons, reasons)

    def test_a_reboot_loop_is_stopped(self):
        """The update did not take: right after the reboot the same package asks for one again
        (the sentinel reappears, as when the machine came back on the old kernel). The node goes
        pending but does not reboot again at once: it waits [Reboot] LoopGuardSec= (1 h), says so
        in STATUS=, a RebootLoopStopped Event and nodereboot_reboot_loops, and takes no slot."""
        with Bench(["n1"]) as b:
            n1 = b.nodes["n1"]
            n1.write_config({"Metrics.TextfilePath": os.path.join(n1.dir, "metrics.prom")})
            n1.start()
            n1.wait_phase("idle", 15)
            n1.touch_sentinel(["linux-image-amd64"])
            b.run_reboots(lambda: n1.reboots == 1 and n1.phase() == "idle", 120)
            n1.touch_sentinel(["linux-image-amd64"])
            wait_for(lambda: any("reboot loop stopped" in s for s in n1.statuses()), 20, "the loop guard")
            time.sleep(3)
            state = n1.state()
            self.assertEqual(state["phase"], "pending")
            self.assertEqual(state["reboot_loops"], 1)
            self.assertEqual(n1.logind.reboot_calls(), 0)
            self.assertFalse(any(b.api.lease_holders().values()), b.api.lease_holders())
            events = [e for e in b.api.get("/api/v1/namespaces/default/events")["items"]
                      if e.get("reason") == "RebootLoopStopped"]
            self.assertEqual(len(events), 1, events)
            metrics = open(os.path.join(n1.dir, "metrics.prom")).read()
            self.assertIn("nodereboot_reboot_loops 1\n", metrics)
            self.assertIn('nodereboot_reboot_blocked{reason="loop_guard"} 1\n', metrics)
            print(f"status: {n1.statuses()[-1]}")

    def test_d_admin_cordon_survives_the_reboot(self):
        """A node an admin cordoned beforehand is still cordoned after its reboot; the lease is
        released."""
        with Bench(["n1", "n2"]) as b:
            n1 = b.nodes["n1"]
            b.api.api("PATCH", "/api/v1/nodes/n1", {"spec": {"unschedulable": True}},
                      "application/merge-patch+json", expect=200)
            n1.start()
            n1.touch_sentinel()
            b.run_reboots(lambda: n1.reboots == 1, 40)
            n1.wait_phase("idle", 30)
            self.assertTrue(b.api.node("n1")["spec"].get("unschedulable"), "the admin's cordon was undone")
            self.assertFalse(b.api.lease_holders().get("nodereboot-0"))
            self.assertNotIn("nodereboot.io/cordoned", b.api.node("n1")["metadata"].get("annotations") or {})

    def test_i_sentinel_gone_while_waiting_means_idle_and_no_writes(self):
        """A node waiting for the lock whose sentinel disappears goes back to idle without
        writing anything to the API but the removal of its ticket in the lock queue."""
        with Bench(["n1", "n2"]) as b:
            n1 = b.nodes["n1"]
            # another node holds the only slot
            b.api.api("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases", {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": "nodereboot-0", "namespace": "kube-system",
                             "labels": {"nodereboot.io/lock": "nodereboot"}},
                "spec": {"holderIdentity": "n2", "leaseDurationSeconds": 3600,
                         "renewTime": time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())}}, expect=201)
            n1.start()
            n1.touch_sentinel()
            n1.wait_phase("pending", 10)
            wait_for(lambda: any(s.startswith("pending: waiting for the lock: nodereboot-0 held by n2")
                                 for s in n1.statuses()), 10, "STATUS= to name the holder")
            # and its published "pending" landed (STATUS= can be ahead of it, under valgrind)
            wait_for(lambda: (b.api.node("n1")["metadata"].get("labels") or {}).get("nodereboot.io/state")
                     == "pending", 10, "the published pending state")
            b.api.control("DELETE", "/log")
            n1.remove_sentinel()
            n1.wait_phase("idle", 10)
            time.sleep(1)
            writes = [f"{e['method']} {e['path']}" for e in node_requests(b.api.request_log(), "n1")
                      if e["method"] not in ("GET",)]
            # but for leaving the lock queue (its ticket goes) and the published status (idle again)
            self.assertEqual(sorted(writes), ["DELETE /apis/coordination.k8s.io/v1/namespaces/nodereboot/leases/nodereboot-q-n1",
                                              "PATCH /api/v1/nodes/n1"],
                             "no writes after the sentinel went away")
            node = b.api.node("n1")
            ours = {k for k in node["metadata"].get("annotations") or {} if k.startswith("nodereboot.io/")}
            self.assertEqual(ours, {"nodereboot.io/status"}, "no cycle marks, only the published status")
            self.assertEqual(json.loads(node["metadata"]["annotations"]["nodereboot.io/status"])["state"], "idle")
            self.assertEqual(node["metadata"]["labels"]["nodereboot.io/state"], "idle")
            self.assertFalse(b.api.node("n1")["spec"].get("unschedulable"))
            self.assertEqual(b.api.lease_holders()["nodereboot-0"], "n2")

    def test_blocking_pod_and_taint_while_waiting(self):
        """kured's blockers and taint: a running pod matching [Blockers] PodSelector= on this node
        holds the reboot before the lock is asked for; while the node waits for a lock held
        elsewhere it carries the PreferNoSchedule taint, removed once it moves on."""
        config = {"Blockers.PodSelector": "app=db", "Lock.RecheckSec": "1s",
                  "Marks.PreferNoScheduleTaint": "nodereboot.io/reboot-pending"}
        with Bench(["n1", "n2"], config=config) as b:
            n1 = b.nodes["n1"]
            b.api.api("POST", "/api/v1/namespaces/default/pods", {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "db-0", "namespace": "default", "labels": {"app": "db"}},
                "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "postgres"}]}}, expect=201)
            n1.start()
            n1.touch_sentinel()
            wait_for(lambda: any("reboot blocked: pod default/db-0 matches blocking selector app=db" in s
                                 for s in n1.statuses()), 15, "the blocker in STATUS=")
            self.assertNotIn("nodereboot-0", b.api.lease_holders(), "lock asked for while blocked")
            # the blocker goes; another node holds the lock now
            b.api.api("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases", {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": "nodereboot-0", "namespace": "kube-system",
                             "labels": {"nodereboot.io/lock": "nodereboot"}},
                "spec": {"holderIdentity": "n2", "leaseDurationSeconds": 3600,
                         "renewTime": time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())}}, expect=201)
            b.api.api("DELETE", "/api/v1/namespaces/default/pods/db-0?gracePeriodSeconds=0", expect=200)

            def taints():
                return [t["key"] for t in b.api.node("n1")["spec"].get("taints") or []]
            wait_for(lambda: "nodereboot.io/reboot-pending" in taints(), 15, "the PreferNoSchedule taint")
            # n2 gives the slot back: n1 takes it and the taint goes
            lease = b.api.get("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/nodereboot-0")
            lease["spec"]["holderIdentity"] = ""
            b.api.api("PUT", "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/nodereboot-0",
                      lease, expect=200)
            wait_for(lambda: b.api.lease_holders().get("nodereboot-0") == "n1", 15, "n1 to take the slot")
            wait_for(lambda: "nodereboot.io/reboot-pending" not in taints(), 15, "the taint to go")

    def test_k_block_inhibitor_holds_the_reboot(self):
        """A logind block inhibitor on shutdown: no reboot request while it is held, and the
        status says why; once released, the reboot goes ahead."""
        with Bench(["n1", "n2"]) as b:
            n1 = b.nodes["n1"]
            n1.logind.block_shutdown("fwupd", "firmware update")
            n1.start()
            n1.touch_sentinel()
            wait_for(lambda: any("reboot blocked by a shutdown inhibitor held by fwupd (firmware update)" in s
                                 for s in n1.statuses()), 30, "STATUS= to say why")
            time.sleep(1)
            self.assertEqual(n1.logind.reboot_calls(), 0)
            self.assertEqual(n1.phase(), "draining")
            n1.logind.unblock_shutdown()
            wait_for(lambda: n1.logind.reboot_calls() == 1, 30, "the reboot after the inhibitor went away")

    def test_f_reboot_that_never_happens_is_rolled_back(self):
        """logind refuses the reboot: it is retried with back-off; after MaxAttempts the node is
        uncordoned, the lease released, and the failure logged and shown in the state."""
        with Bench(["n1", "n2"], config={"Reboot.MaxAttempts": "2"}) as b:
            n1 = b.nodes["n1"]
            n1.logind.fail_reboots("Permission denied by test")
            n1.start()
            n1.touch_sentinel()
            wait_for(lambda: n1.phase() == "pending" and n1.state().get("failed_cycles") == 1, 90,
                     "the cycle to be given up")
            self.assertFalse(b.api.node("n1")["spec"].get("unschedulable"))
            self.assertFalse(b.api.lease_holders().get("nodereboot-0"))
            state = n1.state()
            self.assertIn("did not restart", state["last_error"])
            self.assertIn("Permission denied by test", n1.log_text())
            self.assertIn("Reboot request 2 of 2 failed", n1.log_text())
            self.assertIn("retry_after", state)

    def test_f_same_boot_after_restart_is_a_failed_reboot(self):
        """The daemon restarts in the same boot after asking for the reboot (the machine never went
        down): it asks again, and after MaxAttempts rolls back."""
        with Bench(["n1", "n2"], config={"Reboot.MaxAttempts": "1"}) as b:
            n1 = b.nodes["n1"]
            n1.start()
            n1.touch_sentinel()
            wait_for(lambda: n1.logind.reboot_calls() == 1, 30, "the reboot request")
            n1.kill()
            n1.start()          # same boot ID: the reboot did not happen
            wait_for(lambda: n1.phase() == "pending" and n1.state().get("failed_cycles") == 1, 30,
                     "the roll-back")
            self.assertFalse(b.api.node("n1")["spec"].get("unschedulable"))
            self.assertFalse(b.api.lease_holders().get("nodereboot-0"))
            self.assertEqual(n1.logind.reboot_calls(), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
