#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Least privilege beyond RBAC: packaging/kubernetes/admission-policy.yaml, applied with the real
kubectl to the test API server, which evaluates the policy's own CEL text the way kube-apiserver
1.30's ValidatingAdmissionPolicy plugin does (apiserver/admission.py, @bufbuild/cel).

What the real world does that these tests model: a cluster admin edits the policy's two variables
and applies the file with kubectl; the API server runs the policy on every Node write of
nodereboot's ServiceAccount, after RBAC allowed it; a node's credential that leaks is used to
relabel or taint Nodes (or, with a token bound to a Node, another Node); an admin forgets to list a
configured label; a stricter policy of the cluster's own refuses nodereboot's cordon."""

import json
import os
import subprocess
import sys
import tempfile
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import yaml  # noqa: E402

from bench import (ADMISSION_POLICY, SERVICE_ACCOUNT, SOURCE_ROOT, Bench, admission_manifests,  # noqa: E402
                   node_requests, wait_for)

POLICY = "nodereboot-node-writes/nodereboot-node-writes"
MARKS = {"Marks.PreRebootLabels": "example.com/rebooting=true",
         "Marks.PostRebootLabels": "example.com/rebooting=false example.com/rebooted=yes",
         "Marks.PreferNoScheduleTaint": "nodereboot.io/reboot-pending"}
MERGE = "application/merge-patch+json"


def kubectl():
    return subprocess.run(["bash", os.path.join(SOURCE_ROOT, "tests", "integration", "find-kubectl.sh")],
                          check=True, capture_output=True, text=True).stdout.strip()


def call(api, token, method, path, body=None, content_type=MERGE):
    """A request with a node's credential: (status, parsed body)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(api.url + path, data=data, method=method)
    req.add_header("Authorization", "Bearer " + token)
    if data is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, context=api.ssl, timeout=20) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def node_bound_token(api, node):
    """`kubectl create token nodereboot --bound-object-kind Node --bound-object-name NODE`."""
    uid = api.node(node)["metadata"]["uid"]
    _, tr = api.api("POST", "/api/v1/namespaces/kube-system/serviceaccounts/nodereboot/token", {
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {"expirationSeconds": 3600,
                 "boundObjectRef": {"kind": "Node", "apiVersion": "v1", "name": node, "uid": uid}}}, expect=201)
    return tr["status"]["token"]


class AdmissionPolicyTest(unittest.TestCase):
    def apply_with_kubectl(self, bench, labels, taint):
        """The operator's step: the packaged file, its two variables edited, through kubectl apply."""
        path = os.path.join(bench.dir, "admission-policy.yaml")
        with open(path, "w") as f:
            yaml.safe_dump_all(admission_manifests(labels, taint), f)
        r = subprocess.run([kubectl(), "--kubeconfig", os.path.join(bench.api.dir, "admin.kubeconfig"),
                            "apply", "--validate=false", "-f", path], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("validatingadmissionpolicy.admissionregistration.k8s.io/nodereboot-node-writes created",
                      r.stdout)

    def test_full_cycle_passes_the_policy_applied_with_kubectl(self):
        """Two nodes with labels and the PreferNoSchedule taint configured, one of them on a token
        bound to its Node: every Node write of the daemons is checked by the policy and allowed,
        and the roll completes."""
        with Bench(["n1", "n2"], config=dict(MARKS, **{"Lock.RecheckSec": "1s"}), admission=False) as b:
            self.apply_with_kubectl(b, ["example.com/rebooting", "example.com/rebooted"],
                                    "nodereboot.io/reboot-pending")
            token = node_bound_token(b.api, "n1")
            with open(b.nodes["n1"].kubeconfig) as f:
                text = f.read()
            with open(b.nodes["n1"].kubeconfig, "w") as f:
                f.write(text.replace("token: token-n1", "token: " + token))
            b.roll_all()
            log = b.api.request_log()
            writes = [e for e in log if e["user"] == SERVICE_ACCOUNT and e["method"] in ("PATCH", "PUT")
                      and e["path"].startswith("/api/v1/nodes/")]
            self.assertTrue(writes, "the daemons wrote their Nodes")
            for e in writes:
                self.assertFalse((e.get("admission") or {}).get("denied"), e)
                if e["status"] == 200:
                    self.assertEqual((e.get("admission") or {}).get("admitted"), [POLICY],
                                     f"{e['method']} {e['path']}: stored without the policy: {e}")
                else:
                    # a taint patch whose resourceVersion test lost a race with the node lifecycle
                    # controller: refused before admission, and retried
                    self.assertIn(e["status"], (409, 422), e)
            taints = [e for e in writes if e["content_type"] == "application/json-patch+json"]
            self.assertTrue(taints, "the waiting node set its PreferNoSchedule taint through the policy")
            self.assertTrue(node_requests(writes, "n1") and node_requests(writes, "n2"))
            for n in ("n1", "n2"):
                labels = b.api.node(n)["metadata"]["labels"]
                self.assertEqual((labels.get("example.com/rebooting"), labels.get("example.com/rebooted")),
                                 ("false", "yes"), n)

    def test_a_node_credential_cannot_relabel_or_taint(self):
        """A leaked node credential (the shared ServiceAccount's token) may cordon and write
        nodereboot's own marks, but no other label, taint, annotation or spec field."""
        with Bench(["n1", "n2"], config=MARKS) as b:
            token = "token-n1"   # the bench's kubeconfig token of n1: the ServiceAccount
            path = "/api/v1/nodes/n2"

            def denied(body, content_type=MERGE, why=None):
                st, obj = call(b.api, token, "PATCH", path, body, content_type)
                self.assertEqual(st, 403, f"{body}: {obj}")
                self.assertIn("ValidatingAdmissionPolicy 'nodereboot-node-writes' with binding "
                              "'nodereboot-node-writes' denied request", obj["message"])
                if why:
                    self.assertIn(why, obj["message"])

            def allowed(body, content_type=MERGE):
                st, obj = call(b.api, token, "PATCH", path, body, content_type)
                self.assertEqual(st, 200, f"{body}: {obj}")

            def taints_patch(change):
                """What the daemon sends: the whole list, fenced by the resourceVersion just read."""
                node = b.api.node("n2")
                taints = change(list(node["spec"].get("taints") or []))
                return [{"op": "test", "path": "/metadata/resourceVersion",
                         "value": node["metadata"]["resourceVersion"]},
                        {"op": "add", "path": "/spec/taints", "value": taints}]

            ours = {"key": "nodereboot.io/reboot-pending", "effect": "PreferNoSchedule"}
            JSON = "application/json-patch+json"
            denied({"metadata": {"labels": {"node-role.kubernetes.io/control-plane": ""}}},
                   why="not node-role.kubernetes.io/control-plane")
            denied({"metadata": {"labels": {"kubernetes.io/hostname": None}}}, why="not kubernetes.io/hostname")
            denied({"metadata": {"annotations": {"example.com/owner": "me"}}}, why="not example.com/owner")
            denied({"metadata": {"annotations": {"nodereboot.io/padding": "x" * 1000}}},
                   why="not nodereboot.io/padding")
            denied(taints_patch(lambda t: t + [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]), JSON,
                   why="no other taint")
            denied(taints_patch(lambda t: t + [dict(ours, effect="NoExecute")]), JSON, why="no other taint")
            denied({"spec": {"providerID": "aws:///x/i-0"}}, why="spec.unschedulable")
            denied({"metadata": {"finalizers": ["example.com/hold"]}}, why="finalizers")
            # what the daemon does is allowed
            allowed(taints_patch(lambda t: t + [ours]), JSON)
            allowed({"spec": {"unschedulable": True}, "metadata": {"annotations": {"nodereboot.io/cordoned": "true"}}})
            allowed({"metadata": {"labels": {"example.com/rebooting": "true"}}})
            # the node lifecycle controller taints a cordoned Node (node.kubernetes.io/unschedulable):
            # a merge patch of the whole list would drop that taint, and is refused
            wait_for(lambda: len(b.api.node("n2")["spec"].get("taints") or []) > 1, 10,
                     "the controller's unschedulable taint")
            denied({"spec": {"taints": [ours]}}, why="no other taint")
            allowed(taints_patch(lambda t: [x for x in t if x.get("key") != ours["key"]]), JSON)
            allowed({"spec": {"unschedulable": None},
                     "metadata": {"labels": {"example.com/rebooting": None},
                                  "annotations": {"nodereboot.io/cordoned": None}}})
            # the same label with the cluster admin's credential: the policy is for nodereboot only
            b.api.api("PATCH", path, {"metadata": {"labels": {"dedicated": "gpu"}}}, MERGE, expect=200)
            b.api.control("DELETE", "/log")   # these refusals were the test's own requests

    def test_a_token_bound_to_a_node_changes_that_node_only(self):
        """Per-node credentials: a token bound to n1 (ServiceAccountTokenNodeBinding) cordons n1,
        and the policy refuses it on n2; the shared token is not so narrowed."""
        with Bench(["n1", "n2"]) as b:
            token = node_bound_token(b.api, "n1")
            cordon = {"spec": {"unschedulable": True}}
            self.assertEqual(call(b.api, token, "PATCH", "/api/v1/nodes/n1", cordon)[0], 200)
            st, obj = call(b.api, token, "PATCH", "/api/v1/nodes/n2", cordon)
            self.assertEqual(st, 403, obj)
            self.assertIn("a token bound to a Node may change that Node only", obj["message"])
            self.assertEqual(call(b.api, "token-n1", "PATCH", "/api/v1/nodes/n2", cordon)[0], 200)
            b.api.control("DELETE", "/log")

    def test_a_configured_label_the_policy_does_not_list_is_refused_and_reported(self):
        """The admin listed no labels in the policy, the nodes set PreRebootLabels=: the label write
        is refused; the cycle goes on without it, and the daemon warns with the server's words."""
        with Bench(["n1"], config={"Marks.PreRebootLabels": "example.com/rebooting=true"}, admission=False) as b:
            b.api.apply_admission_policy(labels=[])
            b.roll_all()
            self.assertNotIn("example.com/rebooting", b.api.node("n1")["metadata"].get("labels") or {})
            self.assertIn("The API server refused an update of Node n1 (its marks, labels, taint or an Event), "
                          "going on without it: nodes \"n1\" is forbidden: ValidatingAdmissionPolicy "
                          "'nodereboot-node-writes' with binding 'nodereboot-node-writes' denied request: nodereboot "
                          "may change only the labels its admission policy lists (allowedLabels), not "
                          "example.com/rebooting", b.nodes["n1"].log_text())
            b.api.control("DELETE", "/log")

    def test_a_refused_cordon_reboots_no_node_and_gives_the_slot_back(self):
        """A policy of the cluster's own (a change freeze) refuses every Node write of nodereboot's:
        the cordon is refused, so the node does not drain or reboot; the uncordon of the roll-back
        is refused too, but the Node is schedulable, so there is nothing to undo and the slot is
        given back; once the freeze is lifted the next try goes through."""
        with Bench(["n1"], config={"Reboot.RetrySec": "2s"}) as b:
            n1 = b.nodes["n1"]
            group = "/apis/admissionregistration.k8s.io/v1"
            b.api.create_or_replace({
                "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
                "metadata": {"name": "change-freeze"},
                "spec": {"matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                                                                 "operations": ["UPDATE"], "resources": ["nodes"]}]},
                         "matchConditions": [{"name": "nodereboot", "expression":
                                              f"request.userInfo.username == '{SERVICE_ACCOUNT}'"}],
                         "validations": [{"expression": "false", "message": "change freeze until Monday",
                                          "reason": "Forbidden"}]}})
            b.api.create_or_replace({
                "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
                "metadata": {"name": "change-freeze"},
                "spec": {"policyName": "change-freeze", "validationActions": ["Deny"]}})
            n1.start()
            n1.wait_phase("idle", 10)
            n1.touch_sentinel()
            # (its first refusal is of the published status, before the slot: said once, no harm)
            wait_for(lambda: "Node n1 is schedulable already; nothing to uncordon." in n1.log_text(), 20,
                     "the policy's refusal of the cordon, then of the uncordon")
            wait_for(lambda: not b.api.lease_holders().get("nodereboot-0"), 20, "the slot given back")
            self.assertEqual(n1.logind.reboot_calls(), 0, "rebooted although the cordon was refused")
            self.assertFalse(b.api.node("n1")["spec"].get("unschedulable"))
            log = n1.log_text()
            self.assertIn("Node n1 is schedulable already; nothing to uncordon.", log)
            self.assertIn("The API server refused to remove our marks from Node n1, leaving them", log)
            b.api.api("DELETE", group + "/validatingadmissionpolicybindings/change-freeze", expect=200)
            b.run_reboots(lambda: n1.reboots == 1 and n1.phase() == "idle", timeout=60)
            b.api.control("DELETE", "/log")

class OlderPolicyTest(unittest.TestCase):
    def test_a_policy_older_than_the_status_keeps_the_cycle_whole(self):
        """The cluster still runs the admission policy of the previous version, which does not
        know nodereboot.io/status or the nodereboot.io/state label (the daemons were upgraded
        first): the cordon and the uncordon go without them, the cycle's marks are still set and
        removed, the node is back in service, and the refusal is said in the journal."""
        with Bench(["n1"], admission=False, expect_forbidden=[r"/api/v1/nodes/"]) as b:
            docs = admission_manifests()
            for d in docs:
                if d["kind"] == "ValidatingAdmissionPolicy" and d["metadata"]["name"] == ADMISSION_POLICY:
                    for v in d["spec"]["variables"]:
                        if v["name"] == "ownAnnotations":
                            v["expression"] = v["expression"].replace(", 'nodereboot.io/status'", "")
                    for v in d["spec"]["validations"]:
                        for k in ("expression", "messageExpression"):
                            if k in v:
                                v[k] = v[k].replace(" || k == 'nodereboot.io/state'", "")
            for d in docs:
                b.api.create_or_replace(d)
            n1 = b.nodes["n1"]
            n1.start()
            n1.wait_phase("idle", 10)
            n1.touch_sentinel()
            b.run_reboots(lambda: n1.reboots == 1 and n1.phase() == "idle", timeout=60)
            node = b.api.node("n1")
            ours = {k for k in node["metadata"].get("annotations") or {} if k.startswith("nodereboot.io/")}
            self.assertFalse(node["spec"].get("unschedulable"))
            self.assertEqual(ours, {"nodereboot.io/last-reboot"})
            self.assertIn("refused the status annotation", n1.log_text())


if __name__ == "__main__":
    unittest.main(verbosity=2)
