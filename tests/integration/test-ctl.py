# SPDX-License-Identifier: Apache-2.0
"""noderebootctl against the test API server and real noderebootd daemons: what an administrator
sees with `status`, and how `unlock` releases a stuck lock slot without ever overwriting a change
it did not see. Each test names the user story it proves."""

import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import (SERVICE_ACCOUNT, SLOW, Bench, ctl, ctl_binary, seed_cluster, valgrind_argv,  # noqa: E402
                   valgrind_problem, wait_for)

LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"
EX_USAGE = 64
EX_CONFIG = 78


def rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%06dZ" % int((t % 1) * 1e6)


def put_lease(b, slot, holder, duration=3600, renewed=None, labelled=True):
    """A lease as another node left it, put behind the API."""
    t = rfc3339(renewed if renewed is not None else time.time())
    md = {"name": slot, "namespace": "kube-system"}
    if labelled:
        md["labels"] = {"nodereboot.io/lock": "nodereboot"}
    b.api.control("POST", "/objects", {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": md,
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": duration, "acquireTime": t,
                 "renewTime": t, "leaseTransitions": 3}})


def from_tool(entry):
    """Whether a logged request came from noderebootctl (the daemons share its user)."""
    return (entry.get("user_agent") or "").startswith("noderebootctl/")


def writes(log, tool_only=False):
    return [e for e in log if e["method"] not in ("GET", "HEAD") and (not tool_only or from_tool(e))]


class Status(unittest.TestCase):
    def test_status_of_an_idle_node(self):
        """An admin asks an idle node what it is doing: phase idle, this boot's ID, the window open,
        the only lock slot free, the Node schedulable, and "waiting for nothing" — as text and as
        one JSON object."""
        with Bench(["node-a"]) as b:
            a = b.nodes["node-a"]
            a.start()
            a.wait_phase("idle", 10)
            wait_for(lambda: a.notified("READY=1"), 10, "READY=1")

            r = ctl(a, "status")
            self.assertEqual(r.returncode, 0, r.stderr)
            out = r.stdout
            self.assertRegex(out, r"(?m)^Node:\s+node-a$")
            self.assertRegex(out, r"(?m)^State:\s+idle ")
            self.assertRegex(out, r"(?m)^Boot ID:\s+recorded -, current " + a.boot_id() + "$")
            self.assertRegex(out, r"(?m)^Window:\s+every day .*: open now$")
            self.assertRegex(out, r"(?m)^Lock:\s+kube-system/nodereboot, Concurrency=1$")
            self.assertRegex(out, r"(?m)^  nodereboot-0  free")
            self.assertRegex(out, r"(?m)^Node object:\s+schedulable, Ready$")
            self.assertRegex(out, r"(?m)^Waiting for:\s+nothing: no reboot is required$")
            self.assertNotIn("Cluster:", out)

            r = ctl(a, "status", "--json")
            self.assertEqual(r.returncode, 0, r.stderr)
            st = json.loads(r.stdout)
            self.assertEqual(st["node"], "node-a")
            self.assertEqual(st["state"]["phase"], "idle")
            self.assertEqual(st["state"]["version"], 1)
            self.assertFalse(st["state"]["cordoned"])
            self.assertEqual(st["boot_id"]["current"], a.boot_id())
            self.assertIsNone(st["boot_id"]["recorded"])
            self.assertEqual(st["sentinel"], {"path": a.sentinel, "present": False})
            self.assertTrue(st["window"]["open"])
            self.assertEqual(st["lock"], {"namespace": "kube-system", "name": "nodereboot", "concurrency": 1,
                                          "queue": {"enabled": True, "namespace": "nodereboot", "in_line": False,
                                                    "place": None, "waiting": 0, "first": None}})
            cluster = st["cluster"]
            self.assertTrue(cluster["available"])
            self.assertIsNone(cluster["error"])
            self.assertEqual(cluster["server"], b.api.url)
            self.assertEqual([s["name"] for s in cluster["slots"]], ["nodereboot-0"])
            self.assertIn(cluster["slots"][0]["state"], ("missing", "vacant"))
            self.assertIsNone(cluster["slots"][0]["holder"])
            self.assertEqual(cluster["node"]["name"], "node-a")
            self.assertFalse(cluster["node"]["unschedulable"])
            self.assertTrue(cluster["node"]["ready"])
            # no cycle marks; only what the daemon publishes for noderebootctl list
            # (written once after the start, maybe not yet)
            self.assertLessEqual(set(cluster["node"]["annotations"]), {"nodereboot.io/status"})
            self.assertTrue(st["waiting_for"].startswith("nothing"))

    def test_status_names_the_holder_of_the_only_slot(self):
        """A node that needs a reboot waits while another node holds the only slot; status says
        what it waits for and names the holder, from the API, and shows the reboot's reason."""
        with Bench(["node-a", "node-b"]) as b:
            a, nb = b.nodes["node-a"], b.nodes["node-b"]
            nb.start()
            a.start()
            nb.touch_sentinel(["linux-image-amd64"])
            nb.wait_phase(["draining", "rebooting"], 15)     # node-b holds the slot, then waits for its reboot
            a.touch_sentinel(["libc6", "openssl"])
            a.wait_phase("pending", 10)
            wait_for(lambda: any("node-b" in s for s in a.statuses()), 10, "node-a to see node-b's hold")

            r = ctl(a, "status")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertRegex(r.stdout, r"(?m)^State:\s+pending since ")
            self.assertRegex(r.stdout, r"(?m)^Reason:\s+libc6, openssl$")
            self.assertRegex(r.stdout, r"(?m)^Sentinel:\s+.*\(present\)$")
            self.assertRegex(r.stdout, r"(?m)^  nodereboot-0  held by node-b since \d{4}-\d\d-\d\d .* UTC")
            self.assertRegex(r.stdout, r"(?m)^Waiting for:\s+the lock: nodereboot-0 held by node-b since ")

            # node-b's own view: it holds the slot, cordoned its node, and waits for the machine
            r = ctl(nb, "status")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertRegex(r.stdout, r"(?m)^Lease:\s+nodereboot-0$")
            self.assertRegex(r.stdout, r"(?m)^Cordoned:\s+yes, by nodereboot")
            self.assertRegex(r.stdout, r"(?m)^Node object:\s+unschedulable")
            self.assertRegex(r.stdout, r"(?m)^  nodereboot.io/cordoned=true$")

            st = json.loads(ctl(a, "status", "--json").stdout)
            self.assertEqual(st["state"]["phase"], "pending")
            self.assertEqual(st["state"]["reason"], "libc6, openssl")
            self.assertTrue(st["sentinel"]["present"])
            slot = st["cluster"]["slots"][0]
            self.assertEqual((slot["name"], slot["state"], slot["holder"], slot["this_node"]),
                             ("nodereboot-0", "held", "node-b", False))
            self.assertEqual(slot["lease_duration_sec"], 30)
            self.assertTrue(slot["resource_version"])
            self.assertIn("nodereboot-0 held by node-b", st["waiting_for"])

    def test_status_shows_the_place_in_the_lock_queue(self):
        """Three nodes wait behind a holder, in the order their reboots became required: status
        shows each one's place in the lock queue and who is first; the first in line waits for
        the lock itself."""
        with Bench(["node-a", "node-b", "node-c", "node-d"]) as b:
            for n in b.nodes.values():
                n.start()
            for n in b.nodes.values():
                n.wait_phase("idle", 15)
            b.nodes["node-d"].touch_sentinel()
            b.nodes["node-d"].wait_phase(["draining", "rebooting"], 15)   # holds the only slot
            for n in ("node-c", "node-a", "node-b"):
                b.nodes[n].touch_sentinel()
                b.nodes[n].wait_phase("pending", 10)
                time.sleep(0.3)
            wait_for(lambda: any("place 3 of 3" in s for s in b.nodes["node-b"].statuses()), 15,
                     "node-b third in line")

            r = ctl(b.nodes["node-a"], "status")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertRegex(r.stdout, r"(?m)^Queue:\s+nodereboot: place 2 of 3 \(1 ahead, first node-c\)$")
            self.assertRegex(r.stdout, r"(?m)^Waiting for:\s+its turn in the lock queue: place 2 of 3, 1 node ahead "
                                       r"\(first: node-c\)$")
            r = ctl(b.nodes["node-c"], "status")
            self.assertRegex(r.stdout, r"(?m)^Queue:\s+nodereboot: place 1 of 3 \(0 ahead\)$")
            self.assertRegex(r.stdout, r"(?m)^Waiting for:\s+the lock: nodereboot-0 held by node-d since ")
            st = json.loads(ctl(b.nodes["node-b"], "status", "--json").stdout)
            self.assertEqual(st["lock"]["queue"], {"enabled": True, "namespace": "nodereboot", "in_line": True,
                                                   "place": 3, "waiting": 3, "first": "node-c"})
            # the holder is out of line
            st = json.loads(ctl(b.nodes["node-d"], "status", "--json").stdout)
            self.assertEqual((st["lock"]["queue"]["in_line"], st["lock"]["queue"]["waiting"]), (False, 3))

    def test_status_says_why_an_expired_slot_is_stuck(self):
        """node-b rebooted into a bad kernel and never came back: its lease expired, but its Node
        is NotReady and mid-cycle, so no node takes the slot over. status says so, and how to let
        the fleet go on; once node-b is Ready and idle again, the slot reads as free to take."""
        with Bench(["node-a"], seed=seed_cluster(["node-a", "node-b"])) as b:
            a = b.nodes["node-a"]
            b.api.control("POST", "/objects", {
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": "node-b", "annotations": {
                    "nodereboot.io/reboot-in-progress": "2026-11-27T10:00:00Z"}},
                "status": {"conditions": [{"type": "Ready", "status": "False"}]}})
            b.api.control("POST", "/nodes/node-b/ready", {"ready": False})
            put_lease(b, "nodereboot-0", "node-b", duration=30, renewed=time.time() - 120)

            r = ctl(a, "status")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertRegex(r.stdout, r"(?m)^  nodereboot-0  held by node-b since .*, expired .* ago, STUCK: "
                             r"node-b is NotReady and mid-cycle; a waiting node does not take it over "
                             r"\(release it with 'noderebootctl unlock nodereboot-0' once node-b is dealt with\)$")
            slot = json.loads(ctl(a, "status", "--json").stdout)["cluster"]["slots"][0]
            self.assertEqual((slot["state"], slot["holder"], slot["stuck"]),
                             ("expired", "node-b", "node-b is NotReady and mid-cycle"))

            b.api.control("POST", "/objects", {
                "apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-b"},
                "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
            b.api.control("POST", "/nodes/node-b/ready", {"ready": True})
            r = ctl(a, "status")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertRegex(r.stdout, r"(?m)^  nodereboot-0  held by node-b since .*, expired .* ago "
                             r"\(free to take: node-b is Ready and idle\)$")
            slot = json.loads(ctl(a, "status", "--json").stdout)["cluster"]["slots"][0]
            self.assertIsNone(slot["stuck"])

    def test_status_with_the_api_down(self):
        """With the API server unreachable, status still shows this node's own state, says that the
        cluster part is unavailable and why, exits 0, and does not wait for the API to come back."""
        with Bench(["node-a"]) as b:
            a = b.nodes["node-a"]
            a.start()
            a.touch_sentinel(["linux-image-amd64"])
            a.wait_phase(["draining", "rebooting"], 15)
            # noderebootctl takes seconds to start under valgrind: an outage that outlasts both
            # runs below, and ends before the lease (TTL 30 s, renewed every 10 s) could expire
            outage, quick = (15, 12) if SLOW > 1 else (5, 4)
            b.api.outage(outage)

            r = ctl(a, "status")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertLess(r.elapsed, quick, "status waited for the outage to end")
            self.assertRegex(r.stdout, r"(?m)^State:\s+(draining|rebooting) since ")
            self.assertRegex(r.stdout, r"(?m)^Lease:\s+nodereboot-0$")
            self.assertRegex(r.stdout, r"(?m)^Cluster:\s+unavailable: .*" + b.api.url)
            self.assertNotIn("Node object:", r.stdout)
            self.assertIn("cluster part of the status is unavailable", r.stderr)

            r = ctl(a, "status", "--json")
            self.assertEqual(r.returncode, 0, r.stderr)
            st = json.loads(r.stdout)
            self.assertIn(st["state"]["phase"], ("draining", "rebooting"))
            self.assertFalse(st["cluster"]["available"])
            self.assertIn("Connection refused", st["cluster"]["error"])
            self.assertIsNone(st["cluster"]["slots"])
            self.assertIsNone(st["cluster"]["node"])
            self.assertTrue(st["waiting_for"])

    def test_status_never_touches_a_corrupt_state_file(self):
        """status reports a state file it cannot read and fails, but leaves the file exactly where
        and as it is (only the daemon moves a corrupt file aside)."""
        with Bench(["node-a"]) as b:
            a = b.nodes["node-a"]
            path = os.path.join(a.state_dir, "state")
            with open(path, "w") as f:
                f.write('{"version": 1, "phase": "sideways"}\n')
            r = ctl(a, "status")
            self.assertEqual(r.returncode, 1)
            self.assertRegex(r.stdout, r"(?m)^State file:\s+.*corrupt: field \"phase\"")
            self.assertRegex(r.stdout, r"(?m)^Waiting for:\s+unknown")
            self.assertIn("Cannot read the state file", r.stderr)
            with open(path) as f:
                self.assertEqual(f.read(), '{"version": 1, "phase": "sideways"}\n')
            self.assertEqual(sorted(os.listdir(a.state_dir)), ["state"])
            st = json.loads(ctl(a, "status", "--json").stdout)
            self.assertIsNone(st["state"])
            self.assertIn("corrupt", st["state_file"]["error"])


class Unlock(unittest.TestCase):
    def test_unlock_without_yes_writes_nothing(self):
        """Without --yes, unlock shows which slot it would release, who holds it and since when,
        asks for --yes, exits 1, and sends nothing but reads to the API."""
        with Bench(["node-a"], seed=seed_cluster(["node-a", "node-b"])) as b:
            a = b.nodes["node-a"]
            put_lease(b, "nodereboot-0", "node-b")
            b.api.control("DELETE", "/log")

            for args in (["unlock", "nodereboot-0"], ["unlock", "--all"]):
                r = ctl(a, *args)
                self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
                self.assertRegex(r.stdout, r"Would release kube-system/nodereboot-0: held by node-b since \d{4}-")
                self.assertIn("--yes", r.stderr)
            log = b.api.request_log()
            self.assertTrue(log, "unlock asked the API nothing")
            self.assertEqual(writes(log), [])
            self.assertEqual(b.api.lease_holders()["nodereboot-0"], "node-b")

            # a free slot needs no --yes: nothing to do
            put_lease(b, "nodereboot-0", "")
            r = ctl(a, "unlock", "nodereboot-0")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("nodereboot-0 is free; nothing to release", r.stdout)
            self.assertEqual(writes(b.api.request_log()), [])

    def test_unlock_frees_the_slot_for_a_waiting_daemon(self):
        """An admin releases the slot of a node that died mid-cycle (its lease would block the
        group for the whole TTL); the node waiting for the lock takes it at once."""
        with Bench(["node-a"], seed=seed_cluster(["node-a", "node-b"])) as b:
            a = b.nodes["node-a"]
            put_lease(b, "nodereboot-0", "node-b")
            rv = b.api.get(LEASES + "/nodereboot-0")["metadata"]["resourceVersion"]
            a.start()
            a.touch_sentinel(["linux-image-amd64"])
            a.wait_phase("pending", 10)
            wait_for(lambda: any("node-b" in s for s in a.statuses()), 10, "node-a to wait for node-b")
            time.sleep(0.5)
            self.assertEqual(a.phase(), "pending")
            b.api.control("DELETE", "/log")

            r = ctl(a, "unlock", "nodereboot-0", "--yes")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertRegex(r.stdout, r"Released nodereboot-0; it was held by node-b since ")
            a.wait_phase(["locked", "draining", "rebooting"], 5)
            self.assertEqual(b.api.lease_holders()["nodereboot-0"], "node-a")

            # exactly one write by the tool: the release, conditional on what it had just read
            log = b.api.request_log()
            self.assertTrue(all("(node node-a)" in e["user_agent"] for e in log if from_tool(e)))
            ctl_puts = writes(log, tool_only=True)
            self.assertEqual(len(ctl_puts), 1, ctl_puts)
            self.assertEqual((ctl_puts[0]["method"], ctl_puts[0]["path"]), ("PUT", LEASES + "/nodereboot-0"))
            self.assertNotIn("holderIdentity", ctl_puts[0]["body"]["spec"])
            self.assertEqual(ctl_puts[0]["status"], 200)
            self.assertEqual(ctl_puts[0]["body"]["metadata"]["resourceVersion"], rv)

    def test_unlock_never_overwrites_a_concurrent_change(self):
        """If the lease changes between the tool's read and its write (here: handed to node-c),
        the write fails with 409, the tool says so and exits 1, and node-c keeps the slot."""
        with Bench(["node-a"], seed=seed_cluster(["node-a", "node-b", "node-c"])) as b:
            a = b.nodes["node-a"]
            put_lease(b, "nodereboot-0", "node-b")
            b.api.control("DELETE", "/log")
            # hold the tool's write back long enough for another writer (here the admin user) to get
            # in first; no daemon runs, so the ServiceAccount's only client is the tool
            b.api.faults([{"match": "leases/nodereboot-0", "method": "PUT", "user": SERVICE_ACCOUNT,
                           "action": "delay", "delay": 2.0, "count": 1}])
            env = dict(os.environ, NODEREBOOT_BOOT_ID_FILE=a.boot_id_file)
            env.pop("JOURNAL_STREAM", None)
            vg_log = os.path.join(b.dir, "valgrind-ctl-unlock.log")
            p = subprocess.Popen(valgrind_argv(vg_log) +
                                 [ctl_binary(), "--config", a.config_path, "unlock", "nodereboot-0", "--yes"],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                wait_for(lambda: any(e["method"] == "GET" and e["path"] == LEASES + "/nodereboot-0"
                                     for e in b.api.request_log()), 10, "the tool to read the slot")
                lease = b.api.get(LEASES + "/nodereboot-0")
                lease["spec"]["holderIdentity"] = "node-c"
                lease["spec"]["acquireTime"] = lease["spec"]["renewTime"] = rfc3339(time.time())
                b.api.api("PUT", LEASES + "/nodereboot-0", lease, expect=200)
                out, err = p.communicate(timeout=30 * SLOW)
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            self.assertIsNone(valgrind_problem(vg_log, p.returncode))
            self.assertEqual(p.returncode, 1, out + err)
            self.assertIn("changed while it was being released (now held by node-c", err)
            self.assertIn("nothing was overwritten", err)
            self.assertEqual(b.api.lease_holders()["nodereboot-0"], "node-c")
            tool_puts = writes(b.api.request_log(), tool_only=True)
            self.assertEqual([e["status"] for e in tool_puts], [409])

    def test_unlock_touches_only_the_group(self):
        """unlock --all releases every held slot of the group, including a leftover of a larger
        Concurrency=, and never a lease outside the group, even one named like a slot."""
        with Bench(["node-a"], seed=seed_cluster(["node-a", "node-b"])) as b:
            a = b.nodes["node-a"]
            put_lease(b, "nodereboot-0", "node-b")
            put_lease(b, "nodereboot-3", "node-x", duration=60, renewed=time.time() - 3600)
            put_lease(b, "nodereboot-1", "someone", labelled=False)
            put_lease(b, "other-0", "node-b")

            r = ctl(a, "unlock", "nodereboot-1", "--yes")
            self.assertEqual(r.returncode, 1)
            self.assertIn("not labelled nodereboot.io/lock=nodereboot", r.stderr)
            r = ctl(a, "unlock", "--all", "--yes")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("Released nodereboot-0", r.stdout)
            self.assertIn("Released nodereboot-3", r.stdout)
            holders = b.api.lease_holders()
            self.assertEqual((holders["nodereboot-0"], holders["nodereboot-3"]), (None, None))
            self.assertEqual((holders["nodereboot-1"], holders["other-0"]), ("someone", "node-b"))
            r = ctl(a, "unlock", "--all", "--yes")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("nothing to release", r.stdout)


class Usage(unittest.TestCase):
    def test_bad_usage_and_bad_config(self):
        """Wrong command lines exit 64 with a message and touch nothing; a bad configuration
        exits 78 like the daemon; --help and --version exit 0."""
        with Bench(["node-a"]) as b:
            a = b.nodes["node-a"]
            b.api.control("DELETE", "/log")
            for args in ([], ["frobnicate"], ["unlock"], ["unlock", "nodereboot-0", "--all"],
                         ["unlock", "nodereboot-0", "nodereboot-1"], ["unlock", "--all", "--json"],
                         ["status", "--yes"], ["status", "--all"], ["status", "extra"], ["--bogus", "status"],
                         ["unlock", "other-0"], ["unlock", "nodereboot-x", "--yes"]):
                r = ctl(a, *args)
                self.assertEqual(r.returncode, EX_USAGE, f"{args}: {r.stdout} {r.stderr}")
                self.assertTrue(r.stderr.strip(), f"{args}: no message")
            self.assertEqual(writes(b.api.request_log()), [])

            r = ctl(a, "--help")
            self.assertEqual(r.returncode, 0)
            self.assertIn("unlock SLOT", r.stdout)
            r = ctl(a, "--version")
            self.assertEqual(r.returncode, 0)
            self.assertRegex(r.stdout, r"^noderebootctl \d+\.\d+")

            bad = os.path.join(b.dir, "bad.conf")
            with open(bad, "w") as f:
                f.write("[Lock]\nConcurrency=0\n")
            for args in (["--config", bad, "status"], ["--config", bad, "unlock", "--all"],
                         ["--config", os.path.join(b.dir, "missing.conf"), "status"]):
                r = ctl(a, *args, config=False)
                self.assertEqual(r.returncode, EX_CONFIG, f"{args}: {r.stderr}")
            self.assertIn("bad.conf:2: [Lock] Concurrency=0", ctl(a, "--config", bad, "status", config=False).stderr)

            # a kubeconfig that cannot be read: status shows the local part, unlock is a config error
            with open(a.config_path, "a") as f:
                f.write("[Kubernetes]\nKubeconfig=" + os.path.join(b.dir, "no-such-kubeconfig") + "\n")
            r = ctl(a, "status")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertRegex(r.stdout, r"(?m)^Cluster:\s+unavailable: cannot use kubeconfig ")
            self.assertEqual(ctl(a, "unlock", "--all").returncode, EX_CONFIG)


if __name__ == "__main__":
    unittest.main(verbosity=2)
