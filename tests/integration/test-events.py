# SPDX-License-Identifier: Apache-2.0
"""The Events the daemon posts, as an admin sees them: `kubectl describe node` (Debian's kubectl,
found by find-kubectl.sh) against the test API server, after one node's full reboot cycle. kubectl
finds a Node's Events with a field selector on involvedObject (kind=Node, name, namespace="" and
uid = the node's name, the kubelet's convention), so an Event that the API server stores but whose
involvedObject does not match is never shown. Each test names the user story it proves."""

import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench import Bench, wait_for  # noqa: E402

CYCLE_REASONS = {"Draining", "Rebooting", "Rebooted"}


def find_kubectl():
    r = subprocess.run([os.path.join(HERE, "find-kubectl.sh")], capture_output=True, text=True)
    if r.returncode != 0 or not r.stdout.strip():
        raise AssertionError("no kubectl (tests/integration/find-kubectl.sh): " + r.stderr.strip()[-500:])
    return r.stdout.strip()


def events_section(describe_output):
    """The Events table of `kubectl describe` as (type, reason, from, message) rows; [] for
    "Events: <none>". Fails when there is no Events section at all."""
    lines = describe_output.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Events:")]
    if not starts:
        raise AssertionError("no Events section in:\n" + describe_output)
    head = lines[starts[-1]]
    if head.split(":", 1)[1].strip() == "<none>":
        return []
    table = lines[starts[-1] + 1:]
    # "  Type  Reason  Age  From  Message", a dashes line, then one row per Event until the
    # indented block ends.
    if len(table) < 2 or table[0].split()[:2] != ["Type", "Reason"]:
        raise AssertionError("unexpected Events table header in:\n" + describe_output)
    header = table[0]
    cols = [header.index(c) for c in ("Type", "Reason", "Age", "From", "Message")]
    rows = []
    for line in table[2:]:
        if not line.startswith("  "):
            break
        cell = [line[cols[i]:cols[i + 1]].strip() for i in range(4)] + [line[cols[4]:].strip()]
        rows.append((cell[0], cell[1], cell[3], cell[4]))
    return rows


class EventsInKubectlDescribe(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.kubectl = find_kubectl()
        # kubectl keeps a discovery cache under $HOME: a private one keeps runs independent.
        cls.home = tempfile.TemporaryDirectory(prefix="nodereboot-kubectl-home-")

    @classmethod
    def tearDownClass(cls):
        cls.home.cleanup()

    def describe_node(self, bench, node):
        kubeconfig = os.path.join(bench.api.dir, "admin.kubeconfig")
        self.assertTrue(os.path.exists(kubeconfig), f"the test API server wrote no {kubeconfig}")
        r = subprocess.run([self.kubectl, "--kubeconfig", kubeconfig, "describe", "node", node],
                           capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, HOME=self.home.name))
        self.assertEqual(r.returncode, 0, f"kubectl describe node {node} failed:\n{r.stdout}{r.stderr}")
        return r.stdout

    def test_reboot_cycle_events_show_in_kubectl_describe_node(self):
        """An admin who runs `kubectl describe node` after a reboot sees what nodereboot did to that
        node and why: its Draining, Rebooting and Rebooted Events in the node's Events section, from
        nodereboot, and none of them under another node; Rebooted names the kernel before and
        after (the Node's nodeInfo.kernelVersion, as the kubelet of each boot reports it)."""
        with Bench(["n1", "n2"]) as b:
            n1, n2 = b.nodes["n1"], b.nodes["n2"]
            n2.start()
            n1.start()
            # the update installed a new kernel: the kubelet of the new boot reports it
            n1.next_kernel = "6.1.0-28-amd64"
            n1.touch_sentinel(["linux-image-6.1.0-28-amd64"])
            b.run_reboots(lambda: n1.reboots == 1, 60)
            n1.wait_phase("idle", 30)
            state = n1.state()
            self.assertEqual((state.get("kernel_before"), state.get("kernel_after")),
                             ("6.1.0-13-amd64", "6.1.0-28-amd64"))
            self.assertIn("kernel 6.1.0-13-amd64 → 6.1.0-28-amd64", n1.log_text())

            # Events are posted best effort, after the state change: wait until the server has
            # them all, so that what follows tests kubectl's view and not a race.
            def stored_reasons():
                items = b.api.get("/api/v1/events")["items"]
                return {e["reason"] for e in items if (e.get("involvedObject") or {}).get("name") == "n1"}
            wait_for(lambda: CYCLE_REASONS <= stored_reasons(), 15,
                     f"the API server to store Events {sorted(CYCLE_REASONS)} on n1")

            out = self.describe_node(b, "n1")
            rows = events_section(out)
            shown = {reason for _, reason, _, _ in rows}
            self.assertTrue(CYCLE_REASONS <= shown,
                            f"kubectl describe node n1 shows Events {sorted(shown)}, missing "
                            f"{sorted(CYCLE_REASONS - shown)} that the server stores "
                            f"({sorted(stored_reasons())}); kubectl selects involvedObject.kind=Node, "
                            f"name=n1, namespace=\"\", uid=n1:\n{out}")
            rebooted = [m for _, reason, _, m in rows if reason == "Rebooted"]
            self.assertTrue(rebooted and "kernel 6.1.0-13-amd64 → 6.1.0-28-amd64" in rebooted[0], rows)
            for type_, reason, source, message in rows:
                if reason in CYCLE_REASONS:
                    self.assertEqual(type_, "Normal", f"Event {reason}")
                    self.assertTrue(source.startswith("nodereboot"), f"Event {reason} from {source!r}")
                    self.assertTrue(message, f"Event {reason} has no message")

            other = {reason for _, reason, _, _ in events_section(self.describe_node(b, "n2"))}
            self.assertFalse(CYCLE_REASONS & other, f"n1's Events shown under n2: {sorted(other)}")


if __name__ == "__main__":
    unittest.main(verbosity=2)
