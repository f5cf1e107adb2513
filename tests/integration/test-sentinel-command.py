# SPDX-License-Identifier: Apache-2.0
"""[Sentinel] Command=: a program that says whether a reboot is required (as `needs-restarting -r`
does on RPM systems: exit 1 required, 0 not), run at start and every CommandIntervalSec=. Real
daemons, real child processes: "required" runs a full cycle; 127 (not found), a timeout and a
crash are errors that never reboot (kured reboots in a loop on 127); the file and the command
together; a daemon restarted while the command's cycle waits keeps its place."""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import Bench, hold_slot, wait_for  # noqa: E402

SLOT = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"


def flag_command(flag):
    """Says "required" (exit 1) while flag exists, like needs-restarting -r before the reboot."""
    return f"/bin/sh -c 'test -e {flag} && exit 1; exit 0'"


class SentinelCommand(unittest.TestCase):
    def test_required_runs_a_cycle(self):
        """No sentinel file; the command says "required": the node goes through a full cycle
        with the command as its reason, and the reboot (which "installs" the update: the flag
        goes) ends it, the command saying "not required" in the new boot."""
        with Bench(["n1"]) as b:
            n1 = b.nodes["n1"]
            flag = os.path.join(n1.dir, "update-pending")
            open(flag, "w").close()
            n1.write_config({"Sentinel.Command": flag_command(flag)})
            n1.start()
            b.run_reboots(lambda: n1.reboots == 1 and n1.phase() == "idle", 120,
                          on_reboot=lambda n: os.path.exists(flag) and os.unlink(flag))
            text = n1.log_text()
            self.assertIn("says a reboot is required", text)
            self.assertIn("says a reboot is not required", text)
            node = b.api.get("/api/v1/nodes/n1")
            reasons = [e for e in b.api.get("/api/v1/namespaces/default/events")["items"]
                       if "[Sentinel] Command=" in (e.get("message") or "")]
            print(f"reason on the Events: {reasons[0]['message'] if reasons else None!r}")
            self.assertTrue(reasons, "no Event names the command as the reason")
            self.assertFalse(node["spec"].get("unschedulable"))

    def test_errors_never_reboot(self):
        """Three nodes whose command fails: not found (127), killed by a signal, and too slow
        (CommandTimeoutSec=1s). None takes a slot or cordons; each says why in STATUS= and the
        journal."""
        commands = {
            "n1": "needs-restarting-not-installed -r",
            "n2": "/bin/sh -c 'kill -SEGV $$'",
            "n3": "/bin/sh -c 'sleep 30; exit 1'",
            # exit 1 is also what Python and dnf exit with on an error (needs-restarting -r that
            # cannot read /proc/1 under ProtectProc=invisible, say): without the words, not believed
            "n4": "/bin/sh -c 'echo \"Traceback (most recent call last):\"; exit 1'",
        }
        with Bench(list(commands)) as b:
            for name, command in commands.items():
                n = b.nodes[name]
                n.write_config({"Sentinel.Command": command, "Sentinel.CommandTimeoutSec": "1s",
                                "Sentinel.RequiredOutputRegex": "^Reboot is required"})
                n.start()
            expect = {"n1": "exit status 127: the command was not found", "n2": "killed by signal SEGV",
                      "n3": "it did not finish in time and was killed",
                      "n4": "exit status 1, but what it printed does not match RequiredOutputRegex="}
            for name, why in expect.items():
                n = b.nodes[name]
                wait_for(lambda: any(f"[Sentinel] Command= failed: {why}" in s for s in n.statuses()), 15,
                         f"{name} to say {why}")
                self.assertIn("failed: " + why, n.log_text())
            time.sleep(2)
            for n in b.nodes.values():
                self.assertEqual(n.phase(), "idle")
                self.assertEqual(n.logind.reboot_calls(), 0)
            self.assertEqual(b.api.lease_holders(), {})
            self.assertTrue(all(not b.api.get(f"/api/v1/nodes/{n}")["spec"].get("unschedulable")
                                for n in commands))

    def test_file_and_command_together(self):
        """The command says "not required" and the sentinel file appears: the file alone starts
        the cycle, with the packages as its reason."""
        with Bench(["n1"]) as b:
            n1 = b.nodes["n1"]
            n1.write_config({"Sentinel.Command": "true"})
            n1.start()
            wait_for(lambda: "says a reboot is not required" in n1.log_text(), 15, "the command's first answer")
            n1.touch_sentinel(["linux-image-amd64"])
            b.run_reboots(lambda: n1.reboots == 1 and n1.phase() == "idle", 120)
            self.assertIn("Reboot required (reason: linux-image-amd64)", n1.log_text())

    def test_a_restart_keeps_the_commands_cycle(self):
        """Pending because of the command (a slot held by another node), the daemon is killed
        and started again: it stays pending (a restart must not drop the cycle, nor take a slot
        before the command has answered again), and goes on once the slot is free."""
        with Bench(["n1", "busy"]) as b:
            n1 = b.nodes["n1"]
            flag = os.path.join(n1.dir, "update-pending")
            open(flag, "w").close()
            n1.write_config({"Sentinel.Command": flag_command(flag)})
            hold_slot(b)
            n1.start()
            n1.wait_phase("pending", 15)
            since = n1.state().get("pending_since")
            n1.kill()
            n1.start()
            wait_for(lambda: n1.log_text().count("says a reboot is required") >= 2, 15,
                     "the command's answer after the restart")
            self.assertEqual(n1.phase(), "pending")
            self.assertEqual(n1.state().get("pending_since"), since, "the restart lost the node's place")
            b.api.api("DELETE", SLOT + "/nodereboot-0", expect=200)
            b.run_reboots(lambda: n1.reboots == 1 and n1.phase() == "idle", 120,
                          on_reboot=lambda n: os.path.exists(flag) and os.unlink(flag))


if __name__ == "__main__":
    unittest.main(verbosity=2)
