# SPDX-License-Identifier: Apache-2.0
"""Operators in control: pause and resume (kept in the cluster, enforced by the shipped RBAC),
a reboot requested by hand and cancelled, the fleet at a glance (noderebootctl list).

The API server is the test kube-apiserver enforcing packaging/kubernetes/rbac.yaml and
operator-rbac.yaml as the real RBAC authorizer does (resourceNames match a list or watch only with
a metadata.name field selector); the operator authenticates with a client certificate naming the
group nodereboot-operators, as a person's credential from an identity provider would."""

import json
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import (OPERATOR_GROUP, SERVICE_ACCOUNT, SLOW, Bench, ctl, node_requests, wait_for,  # noqa: E402
                   write_cert_kubeconfig)


PAUSE_CM = "/api/v1/namespaces/nodereboot/configmaps/nodereboot-pause"
LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"


def read_text(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def operator_kubeconfig(b):
    return write_cert_kubeconfig(os.path.join(b.dir, "operator.kubeconfig"), b.api, "alice", [OPERATOR_GROUP])


def events_of(b, node, reason):
    items = b.api.get("/api/v1/namespaces/default/events")["items"]
    return [e for e in items if e["involvedObject"]["name"] == node and e["reason"] == reason]


def hold_slot(b, holder="other-node"):
    b.api.api("POST", LEASES, {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "nodereboot-0", "namespace": "kube-system",
                     "labels": {"nodereboot.io/lock": "nodereboot"}},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 3600,
                 "renewTime": time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())}}, expect=201)


class Pause(unittest.TestCase):
    def test_group_pause_holds_a_node_and_resume_lets_it_go_within_a_second(self):
        """An SRE pauses the fleet during an incident: a node whose sentinel appears stays pending,
        takes no slot, and says why (STATUS=, the RebootPaused Event, the metric). On resume the
        waiting node, watching the pause, takes the slot within a second."""
        with Bench(["n1", "n2"]) as b:
            op = operator_kubeconfig(b)
            n1 = b.nodes["n1"]
            textfile = os.path.join(n1.dir, "metrics.prom")
            n1.write_config({"Metrics.TextfilePath": textfile})
            n1.start()
            n1.wait_phase("idle", 10)
            r = ctl(n1, "pause", "--reason", "incident 42", "--kubeconfig", op)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("Paused reboots of lock group nodereboot", r.stdout)
            cm = b.api.get(PAUSE_CM)
            self.assertEqual(cm["metadata"]["labels"], {"nodereboot.io/lock": "nodereboot"})
            entry = json.loads(cm["data"]["group"])
            self.assertEqual(entry["reason"], "incident 42")
            self.assertRegex(entry["by"], r"^\S+@\S+$")

            n1.touch_sentinel()
            n1.wait_phase("pending", 10)
            wait_for(lambda: any("reboots of lock group nodereboot are paused" in s and "incident 42" in s
                                 for s in n1.statuses()), 10, "STATUS= to say the group is paused")
            wait_for(lambda: events_of(b, "n1", "RebootPaused"), 10, "the RebootPaused Event")
            wait_for(lambda: 'nodereboot_reboot_blocked{reason="pause"} 1' in read_text(textfile),
                     10, "the metric to say pause")
            time.sleep(2)
            self.assertEqual(n1.phase(), "pending")
            self.assertFalse(b.api.lease_holders().get("nodereboot-0"), "no slot taken while paused")
            r = ctl(n1, "status")
            self.assertRegex(r.stdout, r"(?m)^Paused:\s+reboots of lock group nodereboot are paused by \S+ since .*: incident 42$")
            self.assertRegex(r.stdout, r"(?m)^Waiting for:\s+noderebootctl resume: ")
            st = json.loads(ctl(n1, "status", "--json").stdout)
            self.assertTrue(st["paused"]["group"])
            listed = json.loads(ctl(n1, "list", "--json").stdout)
            self.assertEqual(listed["paused"]["reason"], "incident 42")
            self.assertEqual(listed["nodes"][0]["blocked"], "pause")
            self.assertEqual(len(events_of(b, "n1", "RebootPaused")), 1, "one Event per pause")

            r = ctl(n1, "resume", "--kubeconfig", op)
            resumed = time.monotonic()
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("Resumed reboots of lock group nodereboot", r.stdout)
            wait_for(lambda: b.api.lease_holders().get("nodereboot-0") == "n1", 5, "n1 to take the slot")
            took = time.monotonic() - resumed
            print(f"slot taken {took * 1000:.0f} ms after noderebootctl resume returned")
            self.assertLess(took, 1.0 * SLOW)
            self.assertEqual(_status(b, PAUSE_CM), 404, "the last key's removal deletes the ConfigMap")
            n1.wait_phase(["draining", "rebooting"], 15)
            wait_for(lambda: n1.logind.reboot_calls() == 1, 30, "the reboot request")
            n1.reboot()
            n1.wait_phase("idle", 30)

    def test_a_node_pause_holds_only_that_node(self):
        """pause --node n1: n1 waits out of line with its reason while n2 reboots; resume --node n1
        lets n1 go."""
        with Bench(["n1", "n2"]) as b:
            op = operator_kubeconfig(b)
            n1, n2 = b.nodes["n1"], b.nodes["n2"]
            b.start_all()
            n1.wait_phase("idle", 10)
            n2.wait_phase("idle", 10)
            r = ctl(n1, "pause", "--node", "n1", "--reason", "disk swap", "--kubeconfig", op)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(sorted(b.api.get(PAUSE_CM)["data"]), ["node.n1"])
            n1.touch_sentinel()
            wait_for(lambda: any("reboots of this node are paused" in s and "disk swap" in s
                                 for s in n1.statuses()), 10, "n1 to say it is paused")
            n2.touch_sentinel()
            b.run_reboots(lambda: n2.reboots == 1 and n2.phase() == "idle", timeout=60)
            self.assertEqual(n1.phase(), "pending")
            self.assertEqual(n1.reboots, 0)
            r = ctl(n1, "resume", "--node", "n1", "--kubeconfig", op)
            self.assertEqual(r.returncode, 0, r.stderr)
            b.run_reboots(lambda: n1.reboots == 1 and n1.phase() == "idle", timeout=60)
            r = ctl(n1, "resume", "--node", "n1", "--kubeconfig", op)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("were not paused", r.stdout)

    def test_a_pause_while_the_slot_is_taken_gives_it_back_untouched(self):
        """The API server is slow (a Lease write of the nodes takes 3 s, as under load in an
        incident): the node read "not paused", then its slot write hangs while the operator
        pauses. Having taken the slot it reads the pause again before touching the Node, gives the
        slot back, never cordons, and waits; after resume its cycle runs."""
        with Bench(["n1", "n2"]) as b:
            op = operator_kubeconfig(b)
            n1 = b.nodes["n1"]
            n1.start()
            n1.wait_phase("idle", 10)
            # the slot's write (a create for a slot never taken, else an update) hangs 3 s
            b.api.faults([{"match": "/namespaces/kube-system/leases", "method": m, "user": SERVICE_ACCOUNT,
                           "action": "delay", "delay": 3.0, "count": 1} for m in ("POST", "PUT")])
            n1.touch_sentinel()
            wait_for(lambda: "GET /api/v1/namespaces/nodereboot/configmaps/nodereboot-pause" in n1.log_text(),
                     10, "the read before the slot")
            self.assertEqual(ctl(n1, "pause", "--reason", "incident", "--kubeconfig", op).returncode, 0)
            wait_for(lambda: "giving lock slot nodereboot-0 back" in n1.log_text(), 20, "the slot given back")
            wait_for(lambda: n1.phase() == "pending" and not b.api.lease_holders().get("nodereboot-0"), 15,
                     "pending again, the slot free")
            self.assertFalse(b.api.node("n1")["spec"].get("unschedulable"), "never cordoned")
            self.assertNotIn("Draining", {e["reason"] for e in b.api.get("/api/v1/namespaces/default/events")["items"]})
            b.api.clear_faults()
            self.assertEqual(ctl(n1, "resume", "--kubeconfig", op).returncode, 0)
            wait_for(lambda: n1.logind.reboot_calls() == 1, 30, "the reboot after resume")
            n1.reboot()
            n1.wait_phase("idle", 30)

    def test_nobody_passes_over_the_head_of_a_paused_group(self):
        """Three nodes in line while the group is paused: the head leaves the free slot untaken for
        as long as the pause lasts, and the next in line, which has not read the pause, reads it
        when it would pass the head over (20 s), and does not. On resume the head goes at once."""
        with Bench(["n1", "n2", "n3"]) as b:
            op = operator_kubeconfig(b)
            nodes = [b.nodes[n] for n in ("n1", "n2", "n3")]
            b.start_all()
            for n in nodes:
                n.wait_phase("idle", 10)
            self.assertEqual(ctl(nodes[0], "pause", "--kubeconfig", op).returncode, 0)
            for n in nodes:
                n.touch_sentinel()
                time.sleep(0.3)
            wait_for(lambda: any("reboots of lock group nodereboot are paused" in s for s in nodes[0].statuses()),
                     10, "the head to say paused")
            time.sleep(30)      # beyond the 20 s after which the second in line would pass the head over
            text = "".join(n.log_text() for n in nodes)
            self.assertNotIn("Passing over", text)
            deletes = [e for e in b.api.request_log() if e["method"] == "DELETE" and "/leases/nodereboot-q-" in e["path"]]
            self.assertEqual(deletes, [], "no ticket deleted")
            self.assertIn("GET /api/v1/namespaces/nodereboot/configmaps/nodereboot-pause", nodes[1].log_text(),
                          "the second in line read the pause before passing over")
            self.assertTrue(all(n.phase() == "pending" for n in nodes))
            self.assertEqual(ctl(nodes[0], "resume", "--kubeconfig", op).returncode, 0)
            resumed = time.monotonic()
            wait_for(lambda: b.api.lease_holders().get("nodereboot-0") == "n1", 5, "the head to take the slot")
            print(f"head took the slot {1000 * (time.monotonic() - resumed):.0f} ms after resume")

    def test_a_pause_that_cannot_be_watched_is_read_every_30_s(self):
        """A Role that lets the nodes read the pause but not list or watch it (a hand-edited RBAC:
        modelled by answering the list 403 as the real authorizer would): the paused node reads it
        again every 30 s instead, so the resume is not missed."""
        with Bench(["n1", "n2"]) as b:
            op = operator_kubeconfig(b)
            n1 = b.nodes["n1"]
            n1.start()
            n1.wait_phase("idle", 10)
            b.api.faults([{"match": r"/namespaces/nodereboot/configmaps$", "method": "GET", "action": "status",
                           "status": 403, "message": 'configmaps is forbidden: User "system:serviceaccount:'
                           'kube-system:nodereboot" cannot list resource "configmaps"'}])
            self.assertEqual(ctl(n1, "pause", "--kubeconfig", op).returncode, 0)
            n1.touch_sentinel()
            wait_for(lambda: any("reboots of lock group nodereboot are paused" in s for s in n1.statuses()), 15,
                     "the node to say paused")
            self.assertEqual(ctl(n1, "resume", "--kubeconfig", op).returncode, 0)
            resumed = time.monotonic()
            wait_for(lambda: b.api.lease_holders().get("nodereboot-0") == "n1", 45, "the slot after the resume")
            took = time.monotonic() - resumed
            print(f"resume seen by reading after {took:.1f} s (no watch)")
            self.assertLess(took, 40)

    def test_the_nodes_service_account_cannot_pause_or_resume(self):
        """The node's own credential (the shipped rbac.yaml) may read the pause, not change it:
        403, and noderebootctl says which role is needed."""
        with Bench(["n1"], expect_forbidden=[r"/configmaps"]) as b:
            n1 = b.nodes["n1"]
            r = ctl(n1, "pause", "--reason", "from a node")
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertIn("nodereboot-operator", r.stderr)
            self.assertEqual(_status(b, PAUSE_CM), 404)
            # An operator's pause is there; the node cannot lift it either.
            self.assertEqual(ctl(n1, "pause", "--kubeconfig", operator_kubeconfig(b)).returncode, 0)
            r = ctl(n1, "resume")
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertIn("nodereboot-operator", r.stderr)
            self.assertIn("group", b.api.get(PAUSE_CM)["data"])
            denied = [d for d in b.api.denials() if "configmaps" in d["path"]]
            self.assertTrue(denied, "the authorizer refused the ServiceAccount")


def _status(b, path):
    return b.api.api("GET", path)[0]


def closed_window():
    """A one-minute window six hours from now (UTC): closed for the whole test."""
    h = (time.gmtime().tm_hour + 6) % 24
    return {"Window.StartTime": "%02d:00" % h, "Window.EndTime": "%02d:01" % h, "Window.TimeZone": "UTC"}


class Request(unittest.TestCase):
    def test_a_requested_reboot_runs_a_full_cycle(self):
        """noderebootctl request on a node without the sentinel: a full cycle with reason
        "requested: …", and after the reboot the request is done and gone."""
        with Bench(["n1", "n2"]) as b:
            n1 = b.nodes["n1"]
            n1.start()
            n1.wait_phase("idle", 10)
            r = ctl(n1, "request", "--reason", "firmware update")
            self.assertEqual(r.returncode, 0, r.stderr)
            n1.wait_phase(["locked", "draining", "rebooting"], 15)
            self.assertEqual(n1.state()["reason"], "requested: firmware update")
            wait_for(lambda: n1.logind.reboot_calls() == 1, 30, "the reboot request")
            self.assertTrue(b.api.node("n1")["spec"].get("unschedulable"))
            n1.reboot()
            n1.wait_phase("idle", 30)
            self.assertFalse(os.path.exists(os.path.join(n1.state_dir, "request")), "a done request is removed")
            self.assertFalse(b.api.node("n1")["spec"].get("unschedulable"))
            time.sleep(1)
            self.assertEqual(n1.phase(), "idle", "no second reboot")
            self.assertEqual(n1.reboots, 1)

    def test_cancel_before_the_drain_returns_to_idle_without_touching_the_node(self):
        """A request waiting for the lock is cancelled: idle again, no cordon, no marks, nothing
        written to the Node; only its ticket in the lock queue goes."""
        with Bench(["n1", "n2"]) as b:
            n1 = b.nodes["n1"]
            hold_slot(b, "n2")
            n1.start()
            n1.wait_phase("idle", 10)
            self.assertEqual(ctl(n1, "request").returncode, 0)
            n1.wait_phase("pending", 10)
            self.assertEqual(n1.state()["reason"], "requested")
            wait_for(lambda: any("nodereboot-0 held by n2" in s for s in n1.statuses()), 10, "waiting for the slot")
            # and its published "pending" landed (STATUS= can be ahead of it, under valgrind)
            wait_for(lambda: (b.api.node("n1")["metadata"].get("labels") or {}).get("nodereboot.io/state")
                     == "pending", 10, "the published pending state")
            b.api.control("DELETE", "/log")
            r = ctl(n1, "cancel")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("Cancelled the reboot requested", r.stdout)
            n1.wait_phase("idle", 10)
            time.sleep(1)
            node_writes = [f"{e['method']} {e['path']}" for e in node_requests(b.api.request_log(), "n1")
                           if e["method"] != "GET" and "/nodes/" in e["path"]]
            # The one write: the published status, idle again (noderebootctl list); no cordon, no marks.
            self.assertEqual(node_writes, ["PATCH /api/v1/nodes/n1"])
            node = b.api.node("n1")
            self.assertFalse(node["spec"].get("unschedulable"))
            ours = {k for k in node["metadata"].get("annotations") or {} if k.startswith("nodereboot.io/")}
            self.assertEqual(ours, {"nodereboot.io/status"})
            self.assertEqual(json.loads(node["metadata"]["annotations"]["nodereboot.io/status"])["state"], "idle")
            self.assertEqual(b.api.lease_holders()["nodereboot-0"], "n2")
            r = ctl(n1, "cancel")
            self.assertEqual(r.returncode, 0)
            self.assertIn("No reboot of this node was requested", r.stdout)

    def test_a_request_made_while_recovering_runs_one_more_cycle(self):
        """A request made after the reboot, while the node waits for its kubelet, is not lost in
        the ending cycle nor taken for a reboot loop: one more cycle runs at once."""
        with Bench(["n1", "n2"]) as b:
            n1 = b.nodes["n1"]
            n1.start()
            n1.wait_phase("idle", 10)
            n1.touch_sentinel()
            wait_for(lambda: n1.logind.reboot_calls() == 1, 30, "the first reboot request")
            n1.remove_sentinel()
            n1.reboot(kubelet_delay=4)
            n1.wait_phase("recovering", 10)
            r = ctl(n1, "request", "--reason", "second kernel")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("starts a new one after it", r.stdout)
            wait_for(lambda: n1.phase() in ("pending", "locked", "draining", "rebooting"), 30, "a new cycle")
            self.assertEqual(n1.state()["reason"], "requested: second kernel")
            self.assertEqual(n1.state()["reboot_loops"], 0, "no loop guard for a request")
            wait_for(lambda: n1.logind.reboot_calls() == 1, 30, "the second reboot request")
            n1.reboot()
            n1.wait_phase("idle", 30)
            self.assertEqual(n1.reboots, 2)
            self.assertFalse(os.path.exists(os.path.join(n1.state_dir, "request")))

    def test_cancel_is_refused_once_the_node_drains_and_ignore_window(self):
        """Outside the window a request waits; --ignore-window goes at once; cancel after the
        drain began is refused (the cycle finishes)."""
        with Bench(["n1", "n2"], config=closed_window()) as b:
            n1 = b.nodes["n1"]
            n1.start()
            n1.wait_phase("idle", 10)
            self.assertEqual(ctl(n1, "request").returncode, 0)
            wait_for(lambda: any("outside the maintenance window" in s for s in n1.statuses()), 10,
                     "the window to hold the request")
            self.assertEqual(ctl(n1, "cancel").returncode, 0)
            n1.wait_phase("idle", 10)
            r = ctl(n1, "request", "--ignore-window", "--reason", "kernel CVE")
            self.assertEqual(r.returncode, 0, r.stderr)
            n1.wait_phase(["draining", "rebooting"], 15)
            r = ctl(n1, "cancel")
            self.assertEqual(r.returncode, 1)
            self.assertIn("Too late to cancel", r.stderr)
            wait_for(lambda: n1.logind.reboot_calls() == 1, 30, "the reboot request")
            n1.reboot()
            n1.wait_phase("idle", 30)
            self.assertEqual(n1.reboots, 1)



class List(unittest.TestCase):
    def test_list_mid_roll_shows_every_nodes_true_state_the_holder_and_the_queue(self):
        """Four nodes, three need a reboot: while the first reboots, list (read from the cluster
        only) shows it rebooting with the slot, the other two pending at places 1 and 2 of 2, the
        fourth idle, and the slot's holder; after the roll, every node idle with its last reboot,
        result and kernels; the state label works with kubectl get nodes -L."""
        with Bench(["n1", "n2", "n3", "n4"]) as b:
            nodes = [b.nodes[n] for n in ("n1", "n2", "n3", "n4")]
            b.start_all()
            for n in nodes:
                n.wait_phase("idle", 10)
            for n in nodes[:3]:
                n.next_kernel = "6.1.0-99-amd64"
                n.touch_sentinel(["linux-image-6.1.0-99-amd64"])
                time.sleep(0.3)         # a known order in line
            wait_for(lambda: any(n.logind.reboot_calls() == 1 for n in nodes), 40, "a reboot request")
            holder = next(n for n in nodes if n.logind.reboot_calls() == 1)
            waiting = [n for n in nodes[:3] if n is not holder]

            def listed():
                r = ctl(nodes[3], "list", "--json")
                self.assertEqual(r.returncode, 0, r.stderr)
                return {e["name"]: e for e in json.loads(r.stdout)["nodes"]}, json.loads(r.stdout)

            def consistent():
                got, _ = listed()
                return (set(got) == {"n1", "n2", "n3", "n4"} and got[holder.name]["state"] == "rebooting" and
                        all(got[n.name]["state"] == "pending" and got[n.name]["queue_place"] for n in waiting) and
                        got["n4"]["state"] == "idle")
            wait_for(consistent, 15, "list to show the roll as it is")
            got, whole = listed()
            self.assertEqual(got[holder.name]["slot"], "nodereboot-0")
            self.assertTrue(got[holder.name]["unschedulable"])
            self.assertEqual(got[holder.name]["reason"], "linux-image-6.1.0-99-amd64")
            self.assertEqual(sorted(got[n.name]["queue_place"] for n in waiting), [1, 2])
            self.assertTrue(all(got[n.name]["queue_total"] == 2 for n in waiting))
            for n in nodes:
                self.assertEqual(got[n.name]["state"], n.phase(), n.name)
            self.assertEqual([(s["name"], s["holder"]) for s in whole["slots"]], [("nodereboot-0", holder.name)])
            self.assertIsNone(whole["paused"])
            text = ctl(nodes[3], "list").stdout
            self.assertRegex(text, r"(?m)^%s\s+rebooting\s+.*nodereboot-0" % holder.name)
            self.assertRegex(text, r"(?m)^n4\s+idle\s")
            self.assertRegex(text, r"(?m)^  nodereboot-0\s+held by %s" % holder.name)
            self.assertRegex(text, r"(?m)^Paused:\s+no$")
            labels = {n.name: b.api.node(n.name)["metadata"]["labels"].get("nodereboot.io/state") for n in nodes}
            self.assertEqual(labels[holder.name], "rebooting")

            b.run_reboots(lambda: all(n.reboots == 1 and n.phase() == "idle" for n in nodes[:3]), timeout=120)
            wait_for(lambda: all(e["state"] == "idle" for e in listed()[0].values()), 10, "every node idle")
            got, _ = listed()
            for n in nodes[:3]:
                self.assertEqual(got[n.name]["result"], "rebooted")
                self.assertIsNotNone(got[n.name]["last_reboot"])
                self.assertEqual(got[n.name]["kernel_after"], "6.1.0-99-amd64")
            self.assertIsNone(got["n4"]["last_reboot"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
