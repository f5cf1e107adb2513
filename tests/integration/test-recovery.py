# SPDX-License-Identifier: Apache-2.0
"""The health gate before the uncordon, [Recovery] WaitForPodsSelector= and TimeoutSec=: after the
reboot, the node goes back into service only once the pods on it that match the selector are
Running and Ready as reported by the kubelet of this boot. Each test names the user story it
proves. The pods are DaemonSet pods (a CSI node plugin): the drain leaves them alone, so the same
Pod objects survive the reboot with the status the kubelet of the previous boot posted."""

import datetime
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import Bench, ctl, node_requests, seed_cluster, wait_for  # noqa: E402

NS = "kube-system"
SELECTOR = "app=csi-node"


def rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def parse_time(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def seed(nodes):
    """The bench's cluster plus a CSI node plugin DaemonSet: one pod per node, Running and Ready,
    its container started an hour ago (in the boot before the one the test reboots into)."""
    objs = seed_cluster(nodes)
    objs.append({"apiVersion": "apps/v1", "kind": "DaemonSet",
                 "metadata": {"name": "csi-node", "namespace": NS, "uid": "ds-uid-csi"},
                 "spec": {"selector": {"matchLabels": {"app": "csi-node"}}}})
    started = rfc3339(time.time() - 3600)
    for n in nodes:
        objs.append({"apiVersion": "v1", "kind": "Pod",
                     "metadata": {"name": f"csi-node-{n}", "namespace": NS, "labels": {"app": "csi-node"},
                                  "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet",
                                                       "name": "csi-node", "uid": "ds-uid-csi",
                                                       "controller": True}]},
                     "spec": {"nodeName": n, "containers": [{"name": "driver", "image": "csi-driver"}]},
                     "status": {"phase": "Running",
                                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": started},
                                               {"type": "ContainersReady", "status": "True",
                                                "lastTransitionTime": started}],
                                "containerStatuses": [{"name": "driver", "ready": True, "started": True,
                                                       "restartCount": 0, "image": "csi-driver",
                                                       "state": {"running": {"startedAt": started}}}]}})
    return objs


def config(**extra):
    c = {"Recovery.WaitForPodsSelector": SELECTOR, "Recovery.TimeoutSec": "5s", "Lock.TTLSec": "12s"}
    c.update(extra)
    return c


def lease(b):
    return b.api.get("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/nodereboot-0")


def uncordon_times(b, node):
    """When the node became schedulable again after the cycle's cordon."""
    changes = [e for e in b.api.timeline() if e["node"] == node and "unschedulable" in e]
    cordoned = [e["time"] for e in changes if e["unschedulable"]]
    assert cordoned, changes
    return [e["time"] for e in changes if not e["unschedulable"] and e["time"] > cordoned[0]]


def pod(b, node):
    return b.api.get(f"/api/v1/namespaces/{NS}/pods/csi-node-{node}")


def is_ready(p):
    return any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or [])


def reboot_once(b, n):
    """Takes node n through sentinel, drain and reboot request, then reboots it; returns when the
    kubelet of the new boot reported Ready (the time of that)."""
    n.start()
    n.wait_phase("idle", 15)
    n.touch_sentinel(["linux-image-amd64"])
    wait_for(lambda: n.logind.reboot_calls() == 1, 40, "the reboot request")
    n.reboot()
    n.wait_kubelet(30)
    return time.time()


class RecoveryGate(unittest.TestCase):
    def test_a_pod_that_stays_unready_keeps_the_node_cordoned_and_the_slot_held(self):
        """The new boot breaks the CSI node plugin (its readiness probe fails): past TimeoutSec=
        the node stays cordoned, the lock slot stays held and renewed (the rollout stops, no other
        node reboots into the broken image), a RecoveryTimedOut Event names the pod and why, and
        STATUS= and noderebootctl status say so. When the pod becomes Ready the node heals itself:
        uncordoned and the slot released within a few seconds."""
        with Bench(["n1"], config=config(), seed=seed(["n1"])) as b:
            n1 = b.nodes["n1"]
            n1.start()
            n1.wait_phase("idle", 15)
            n1.touch_sentinel(["linux-image-amd64"])
            wait_for(lambda: n1.logind.reboot_calls() == 1, 40, "the reboot request")
            b.api.set_pod_ready(NS, "csi-node-n1", False)
            n1.reboot()
            n1.wait_kubelet(30)
            back = time.time()

            wait_for(lambda: any("recovery timed out" in s for s in n1.statuses()), 20, "the recovery timeout")
            self.assertGreaterEqual(time.time() - back, 4.5, "timed out before TimeoutSec=5s")
            status = [s for s in n1.statuses() if "recovery timed out" in s][-1]
            self.assertIn("WaitForPodsSelector=app=csi-node", status)
            self.assertIn("kube-system/csi-node-n1 (not Ready: containers with unready status: [driver])", status)
            self.assertEqual(n1.phase(), "recovering")
            self.assertTrue(b.api.node("n1")["spec"].get("unschedulable"), "uncordoned though the pod is not Ready")
            self.assertEqual(lease(b)["spec"]["holderIdentity"], "n1")

            # the slot is renewed while the gate holds the node (TTLSec=12s: every 4 s)
            renewed = parse_time(lease(b)["spec"]["renewTime"])
            wait_for(lambda: parse_time(lease(b)["spec"]["renewTime"]) > renewed, 10, "a renewal of the slot")

            events = [e for e in b.api.get("/api/v1/namespaces/default/events")["items"]
                      if e["involvedObject"]["name"] == "n1" and e["reason"] == "RecoveryTimedOut"]
            self.assertEqual(len(events), 1, events)
            self.assertEqual(events[0]["type"], "Warning")
            self.assertIn("kube-system/csi-node-n1", events[0]["message"])
            self.assertIn("not Ready: containers with unready status", events[0]["message"])

            r = ctl(n1, "status")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("WaitForPodsSelector=app=csi-node", r.stdout)
            # noderebootctl list reads "recovering" from the Node's new bootID (the daemon does not
            # write it): the kubelet of this boot reported, the node is not back in service
            listed = json.loads(ctl(n1, "list", "--json").stdout)
            self.assertEqual([(e["name"], e["state"], e["slot"]) for e in listed["nodes"]],
                             [("n1", "recovering", "nodereboot-0")])

            # still held a while later, and the Event was posted once
            time.sleep(2)
            self.assertTrue(b.api.node("n1")["spec"].get("unschedulable"))
            self.assertEqual(n1.phase(), "recovering")

            healed = time.time()
            b.api.set_pod_ready(NS, "csi-node-n1", True)
            n1.wait_phase("idle", 10)
            self.assertLess(time.time() - healed, 5.0)
            self.assertFalse(b.api.node("n1")["spec"].get("unschedulable"))
            self.assertFalse(b.api.lease_holders().get("nodereboot-0"))
            events = [e for e in b.api.get("/api/v1/namespaces/default/events")["items"]
                      if e["involvedObject"]["name"] == "n1"]
            self.assertEqual(len([e for e in events if e["reason"] == "RecoveryTimedOut"]), 1)
            self.assertIn("Rebooted", {e["reason"] for e in events})

    def test_the_stale_ready_status_from_before_the_reboot_does_not_pass(self):
        """The kubelet of the new boot posts Node Ready seconds before it posts the statuses of the
        pods that survived the reboot: meanwhile the API shows the CSI pod Running and Ready=True, as
        the kubelet of the previous boot left it. The node is not uncordoned on that status, only
        after the kubelet of this boot reported the pod Running and Ready."""
        with Bench(["n1"], config=config(**{"Recovery.TimeoutSec": "1min"}), seed=seed(["n1"])) as b:
            b.api.controllers(pod_status_delay=4.0)
            n1 = b.nodes["n1"]
            back = reboot_once(b, n1)

            # the stale window is real: Node Ready in this boot, the pod still Ready from before it
            stale = pod(b, "n1")
            self.assertTrue(is_ready(stale))
            self.assertLess(parse_time(stale["status"]["containerStatuses"][0]["state"]["running"]["startedAt"]),
                            back - 60)
            time.sleep(2)
            self.assertTrue(b.api.node("n1")["spec"].get("unschedulable"), "uncordoned on the stale pod status")
            self.assertTrue(any("runs since" in s and "before this boot" in s for s in n1.statuses()),
                            n1.statuses()[-5:])

            n1.wait_phase("idle", 30)
            posts = [e for e in b.api.pod_statuses() if e["pod"] == f"{NS}/csi-node-n1" and e["time"] > back - 1]
            first = min(e["time"] for e in posts)
            running = min(e["time"] for e in posts if e["status"] == "running")
            self.assertGreaterEqual(first - back, 3.0, "the model did not delay the pod statuses")
            uncordoned = uncordon_times(b, "n1")
            self.assertEqual(len(uncordoned), 1, uncordoned)
            self.assertGreaterEqual(uncordoned[0], running,
                                    f"uncordoned {running - uncordoned[0]:.2f} s before the kubelet of this boot "
                                    "reported the pod Running and Ready")
            self.assertFalse(b.api.lease_holders().get("nodereboot-0"))

    def test_a_selector_that_matches_nothing_here_holds_the_reboot_not_the_cordon(self):
        """A typo in the selector (or a DaemonSet that does not run on this node): the gate would
        wait for a pod that never comes, and the node would stay cordoned after its reboot. The
        daemon looks before it takes the slot: no slot, no cordon, and STATUS= says why."""
        with Bench(["n1"], config=config(**{"Recovery.WaitForPodsSelector": "app=csi-nod"}), seed=seed(["n1"])) as b:
            n1 = b.nodes["n1"]
            n1.start()
            n1.wait_phase("idle", 15)
            n1.touch_sentinel(["linux-image-amd64"])
            wait_for(lambda: any("WaitForPodsSelector=app=csi-nod matches no pod on this node" in s
                                 for s in n1.statuses()), 15, "the held reboot")
            time.sleep(1)
            self.assertEqual(n1.phase(), "pending")
            self.assertFalse(b.api.lease_holders().get("nodereboot-0"))
            self.assertFalse(b.api.node("n1")["spec"].get("unschedulable"))
            self.assertEqual(n1.logind.reboot_calls(), 0)

    def test_without_the_key_nothing_changes(self):
        """Without [Recovery] WaitForPodsSelector= the node is uncordoned as soon as the kubelet
        of this boot reports the Node Ready, whatever its pods say (here: before their statuses of
        this boot are even posted), and the daemon watches no pods for it."""
        with Bench(["n1"], config={"Lock.TTLSec": "12s"}, seed=seed(["n1"])) as b:
            b.api.controllers(pod_status_delay=6.0)
            n1 = b.nodes["n1"]
            b.api.control("DELETE", "/log")
            back = reboot_once(b, n1)
            n1.wait_phase("idle", 30)
            uncordoned = uncordon_times(b, "n1")
            self.assertEqual(len(uncordoned), 1, uncordoned)
            posts = [e["time"] for e in b.api.pod_statuses() if e["pod"] == f"{NS}/csi-node-n1" and e["time"] > back - 1]
            self.assertTrue(not posts or uncordoned[0] < min(posts), (uncordoned, posts))
            selected = [e for e in node_requests(b.api.request_log(), "n1")
                        if e["path"].endswith("/pods") and "labelSelector" in (e.get("query") or {})]
            self.assertEqual(selected, [])
            self.assertFalse(any("WaitForPodsSelector" in s for s in n1.statuses()))


if __name__ == "__main__":
    unittest.main()
