# SPDX-License-Identifier: Apache-2.0
"""Crash safety: the daemon killed with SIGKILL at every persisted state and right after every
side effect, an API outage after the reboot, and a corrupt state file. In every case the cycle
completes with exactly one reboot and the node back in service."""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import SLOW, Bench, wait_for  # noqa: E402

# Points where the daemon kills itself (NODEREBOOT_TEST_CRASH_AT): after saving each state, and
# right after each side effect that is not itself followed by a save.
CRASH_POINTS = [
    "saved:pending",
    "lock-acquired",          # the lease is ours in the API, the state file does not know yet
    "saved:locked",
    "saved:draining",         # intent saved, node not cordoned yet
    "saved:rebooting",        # boot ID saved, logind not asked yet
    "reboot-requested",       # logind said yes; the machine goes down
    "saved:recovering",
    "uncordoned",             # node uncordoned, lease still held
    "released",               # lease released, state still says recovering
]


class Crashes(unittest.TestCase):
    def cycle_with_crash(self, point):
        with Bench(["n1", "n2"]) as b:
            n1 = b.nodes["n1"]
            # The crash point stays armed until the daemon has crashed there once (some points are
            # only reached in the boot after the reboot).
            n1.extra_env = {"NODEREBOOT_TEST_CRASH_AT": point}
            n1.start()
            n1.touch_sentinel()
            marker = f"Crash point {point} reached"

            def step():
                if not n1.running():
                    n1.extra_env = {}
                    if n1.logind.reboot_calls() > 0:
                        n1.reboot()          # the machine went down after the request
                    else:
                        n1.start()           # systemd restarts us in the same boot
                elif n1.logind.reboot_calls() > 0:
                    n1.reboot()
                return n1.reboots >= 1 and n1.phase() == "idle" and marker in n1.log_text()

            wait_for(step, 60, f"the cycle to complete after a crash at {point}", interval=0.05)
            self.assertIn(f"Crash point {point} reached", n1.log_text())
            self.assertEqual(n1.reboots, 1, "exactly one reboot")
            time.sleep(0.3)
            self.assertEqual(n1.logind.reboot_calls(), 0, "no reboot request after the reboot")
            self.assertFalse(b.api.node("n1")["spec"].get("unschedulable"), "node left cordoned")
            self.assertFalse(b.api.lease_holders().get("nodereboot-0"), "lease leaked")

    def test_e_sigkill_at_every_step(self):
        """SIGKILL at every persisted state and right after every side effect, then restart: the
        cycle completes with exactly one reboot call and the node uncordoned."""
        for point in CRASH_POINTS:
            with self.subTest(point=point):
                self.cycle_with_crash(point)

    def test_e_sigkill_during_eviction(self):
        """SIGKILL while pods are being evicted: the restarted daemon redoes the drain (the
        cordon is idempotent), reboots once, and uncordons."""
        with Bench(["n1", "n2"]) as b:
            n1 = b.nodes["n1"]
            n1.start()
            n1.touch_sentinel()
            wait_for(lambda: any(e["path"].endswith("/eviction") for e in b.api.request_log()), 20,
                     "the first eviction")
            n1.kill()
            self.assertTrue(b.api.node("n1")["spec"].get("unschedulable"))
            n1.start()
            b.run_reboots(lambda: n1.reboots == 1 and n1.phase() == "idle", 60)
            self.assertFalse(b.api.node("n1")["spec"].get("unschedulable"))
            self.assertFalse(b.api.lease_holders().get("nodereboot-0"))

    def test_sigterm_stops_cleanly_and_resumes(self):
        """SIGTERM at any point (while waiting, draining, after the reboot request, while
        recovering) stops the daemon at once with status 0, and the next start resumes."""
        import signal as sig
        with Bench(["n1", "n2"]) as b:
            n1 = b.nodes["n1"]
            n1.start()
            n1.touch_sentinel()
            stops = 0
            seen = set()

            def step():
                nonlocal stops
                phase = n1.phase()
                if n1.running() and phase not in seen and phase in ("pending", "draining", "rebooting", "recovering"):
                    seen.add(phase)
                    t = time.monotonic()
                    rc = n1.kill(sig.SIGTERM)
                    self.assertEqual(rc, 0, f"exit status after SIGTERM in {phase}")
                    self.assertLess(time.monotonic() - t, 3 * SLOW, "slow stop")
                    self.assertTrue(n1.notified("STOPPING=1"))
                    stops += 1
                    if n1.logind.reboot_calls() > 0:
                        n1.reboot()
                    else:
                        n1.start()
                elif n1.running() and n1.logind.reboot_calls() > 0:
                    n1.reboot()
                return n1.reboots == 1 and n1.phase() == "idle"

            wait_for(step, 90, "the cycle to complete across stops")
            # The phases are sampled every 50 ms: "pending" and "rebooting" can pass between two
            # samples; the long ones, draining and recovering (kubelet of the new boot not up
            # yet), are always stopped in.
            self.assertTrue({"draining", "recovering"} <= seen, seen)
            self.assertGreaterEqual(stops, 2, seen)
            self.assertFalse(b.api.node("n1")["spec"].get("unschedulable"))
            self.assertFalse(b.api.lease_holders().get("nodereboot-0"))

    def test_g_api_outage_after_the_reboot(self):
        """The API server is unreachable right after the reboot: the daemon keeps trying, and once
        the API is back the node is uncordoned and the lease released."""
        with Bench(["n1", "n2"]) as b:
            n1 = b.nodes["n1"]
            n1.start()
            n1.touch_sentinel()
            wait_for(lambda: n1.logind.reboot_calls() == 1, 30, "the reboot request")
            n1.kill()
            b.api.outage(12)
            n1.new_boot()
            n1.remove_sentinel()
            n1.logind.mock_call("ClearCalls")
            n1.reboots += 1
            n1.start()
            n1.wait_phase("recovering", 10)
            time.sleep(6)
            self.assertEqual(n1.phase(), "recovering")
            self.assertIn("after the reboot, retrying", n1.log_text())
            wait_for(lambda: n1.phase() == "idle", 60, "recovery after the outage")
            self.assertFalse(b.api.node("n1")["spec"].get("unschedulable"))
            self.assertFalse(b.api.lease_holders().get("nodereboot-0"))
            self.assertEqual(n1.logind.reboot_calls(), 0)

    def test_l_corrupt_state_file_is_moved_aside_and_reconciled(self):
        """A state file destroyed mid-cycle (node cordoned by us, lease held): it is moved aside
        with a loud error, and the daemon reconciles from the cluster: it undoes the cordon,
        releases the lease, and completes a fresh cycle."""
        with Bench(["n1", "n2"]) as b:
            n1 = b.nodes["n1"]
            n1.write_config({"Reboot.DelaySec": "30s"})       # hold it drained, before the reboot
            n1.start()
            n1.touch_sentinel()
            wait_for(lambda: n1.state().get("drained"), 30, "the drain")
            n1.kill()
            with open(os.path.join(n1.state_dir, "state"), "w") as f:
                f.write('{"version": 1, "phase": "drain')
            n1.write_config({})
            n1.start()
            wait_for(lambda: any(f.startswith("state.corrupt-") for f in os.listdir(n1.state_dir)), 10,
                     "the corrupt file to be moved aside")
            b.run_reboots(lambda: n1.reboots == 1 and n1.phase() == "idle", 60)
            self.assertFalse(b.api.node("n1")["spec"].get("unschedulable"))
            self.assertFalse(b.api.lease_holders().get("nodereboot-0"))
            self.assertRegex(n1.log_text(), r"(?i)corrupt")


if __name__ == "__main__":
    unittest.main(verbosity=2)
