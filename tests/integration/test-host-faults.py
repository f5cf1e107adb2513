# SPDX-License-Identifier: Apache-2.0
"""The host's faults: the disk under the state file full or failing at the moment a step must be
written ahead, and logind dropping off the bus in the middle of the reboot call. Every scenario
ends with the node back in service, with exactly one reboot, no cordon left behind and no Lease
held; each test names the real behaviour its world models."""

import errno
import glob
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import BUILD_ROOT, Bench, assert_rebooted_once_and_back, wait_for  # noqa: E402

# tests/integration/fault-inject.c: fails write, fsync or rename under $NODEREBOOT_FAULT_DIR
# while $NODEREBOOT_FAULT_DIR/.fault-on exists.
FAULT_SHIM = os.environ.get("NODEREBOOT_FAULT_INJECT") or \
    os.path.join(BUILD_ROOT, "tests", "integration", "fault-inject.so")
FAULT_OPS = ("write", "fsync", "rename")


def with_fault_shim(node, op, errno_name):
    """The node's daemon runs with the shim, armed for op and errno_name on its state folder but
    inactive until fault_on()."""
    # With an ASan build the sanitizer runtime must come first among the libraries the process
    # starts with; a preloaded shim comes before it. The shim does nothing ASan needs to see
    # first (it only wraps a few calls and passes on to whatever comes next: ASan's interceptors
    # or libc), so the check is turned off rather than the runtime preloaded too.
    asan = ":".join(o for o in (os.environ.get("ASAN_OPTIONS"), "verify_asan_link_order=0") if o)
    node.extra_env = {"LD_PRELOAD": FAULT_SHIM, "NODEREBOOT_FAULT_DIR": os.path.realpath(node.state_dir),
                      "NODEREBOOT_FAULT_OP": op, "NODEREBOOT_FAULT_ERRNO": errno_name, "ASAN_OPTIONS": asan}


def fault_on(node):
    with open(os.path.join(node.state_dir, ".fault-on"), "w"):
        pass


def fault_off(node):
    os.unlink(os.path.join(node.state_dir, ".fault-on"))


def state_bytes(node):
    with open(os.path.join(node.state_dir, "state"), "rb") as f:
        return f.read()


def leftovers(node):
    """Temporary or moved-aside state files: a failed save must leave neither."""
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(node.state_dir, "state.*")))


class StateFileFaults(unittest.TestCase):
    def setUp(self):
        if not os.path.exists(FAULT_SHIM):
            self.fail(f"{FAULT_SHIM} not built (ninja builds it with the tests)")

    def assert_save_failed(self, node, before, errno_name, phase):
        """The daemon, with the fault on, reached a step it must write ahead: it stopped with a
        failure status (systemd restarts it: Restart=on-failure), said which file and why, and left
        the previous state file exactly as it was."""
        wait_for(lambda: not node.running(), 20, f"{node.name} to stop on the failed save")
        rc = node.proc.returncode
        self.assertEqual(rc, 1, "exit status: a failure systemd restarts (not 78, not a signal)")
        with open(node.logs[-1], errors="replace") as f:
            log = f.read()
        path = os.path.join(node.state_dir, "state")
        self.assertIn(f"Failed to save the state to {path}", log)
        self.assertIn(os.strerror(getattr(errno, errno_name)), log)
        self.assertEqual(state_bytes(node), before, "the previous state file changed")
        self.assertEqual(node.phase(), phase)
        self.assertEqual(leftovers(node), [], "a temporary file left behind")

    def disk_fails_through_a_cycle(self, op, errno_name):
        config = {"Drain.DelaySec": "1500ms", "Reboot.DelaySec": "1500ms"}
        with Bench(["n1", "n2"], config=config) as b:
            n1 = b.nodes["n1"]
            with_fault_shim(n1, op, errno_name)
            n1.start()
            n1.touch_sentinel(["linux-image-amd64"])

            # 1. Holding the slot, before the cordon: the "draining" intent cannot be written.
            # The node is not cordoned (the cordon comes after the intent is on disk), and each
            # restart systemd makes while the disk is still full stops at the same step.
            n1.wait_phase("locked", 20)
            fault_on(n1)
            before = state_bytes(n1)
            for _ in range(2):
                self.assert_save_failed(n1, before, errno_name, "locked")
                self.assertFalse(b.api.node("n1")["spec"].get("unschedulable"), "cordoned without the intent on disk")
                self.assertEqual(b.api.lease_holders().get("nodereboot-0"), "n1")
                if n1.starts == 1:
                    n1.start()
            fault_off(n1)
            n1.start()

            # 2. Drained, before the reboot: "rebooting" (and the boot ID) cannot be written, so
            # logind is not asked.
            wait_for(lambda: n1.phase() == "draining" and n1.state().get("drained"), 30, "the drain")
            fault_on(n1)
            before = state_bytes(n1)
            self.assert_save_failed(n1, before, errno_name, "draining")
            self.assertEqual(n1.logind.reboot_calls(), 0, "asked logind to reboot without recording it")
            self.assertTrue(b.api.node("n1")["spec"].get("unschedulable"))
            self.assertEqual(b.api.lease_holders().get("nodereboot-0"), "n1")
            fault_off(n1)
            n1.start()

            # 3. After the boot, the disk still failing: "recovering" cannot be written; the node
            # stays cordoned (nothing is undone that was not recorded) and the slot held.
            wait_for(lambda: n1.logind.reboot_calls() == 1, 30, "the reboot request")
            fault_on(n1)
            before = state_bytes(n1)
            n1.reboot()
            self.assert_save_failed(n1, before, errno_name, "rebooting")
            self.assertTrue(b.api.node("n1")["spec"].get("unschedulable"))
            self.assertEqual(b.api.lease_holders().get("nodereboot-0"), "n1")
            fault_off(n1)
            n1.start()

            # The disk is back: the cycle completes, once.
            n1.wait_phase("idle", 30)
            assert_rebooted_once_and_back(self, b, n1)
            self.assertEqual(leftovers(n1), [])

    def test_disk_full(self):
        """The disk under /var/lib/nodereboot fills up (ENOSPC) in the middle of a cycle, failing
        the state file's write, its fsync or its rename: at each step the daemon must write ahead
        (the intent to cordon, the reboot, the new boot) it keeps the previous state file intact,
        says which file and why, and stops without taking that step; once space is freed the cycle
        completes with one reboot, the node uncordoned and the slot released."""
        for op in FAULT_OPS:
            with self.subTest(op=op):
                self.disk_fails_through_a_cycle(op, "ENOSPC")

    def test_disk_fails(self):
        """The disk under /var/lib/nodereboot fails (EIO: a dying disk, a lost iSCSI or cloud
        volume) on the state file's write, fsync or rename: same story as a full disk."""
        for op in FAULT_OPS:
            with self.subTest(op=op):
                self.disk_fails_through_a_cycle(op, "EIO")


def hang_reboots(logind, marker):
    """logind takes the reboot call and never answers it (stuck on polkit, on a D-Bus call of its
    own, or dying): each call appends a line to marker, then the mock sleeps, deaf to everything."""
    logind.add_method("RebootWithFlags", "t", "",
                      f"with open({marker!r}, 'a') as f:\n    f.write('call\\n')\n__import__('time').sleep(600)")


def hung_calls(marker):
    if not os.path.exists(marker):
        return 0
    with open(marker) as f:
        return len(f.readlines())


class LogindDrops(unittest.TestCase):
    def logind_gone_mid_call(self, bus):
        with Bench(["n1", "n2"]) as b:
            n1 = b.nodes["n1"]
            marker = os.path.join(n1.dir, "hung-reboot-calls")
            hang_reboots(n1.logind, marker)
            n1.start()
            n1.touch_sentinel(["linux-image-amd64"])
            wait_for(lambda: hung_calls(marker) == 1, 30, "the reboot call to reach logind")
            self.assertEqual(n1.phase(), "rebooting")
            time.sleep(0.5)                   # the call pending on logind
            n1.logind.crash(bus=bus)
            # The daemon hears of it (an error for the call in flight), and asks nothing while
            # logind is away: no second call to the dead one.
            wait_for(lambda: "Reboot request 1 of 3 failed" in n1.log_text(), 10,
                     "the daemon to see the call fail")
            time.sleep(1)
            self.assertTrue(n1.running(), "the daemon died with the bus")
            self.assertEqual(n1.phase(), "rebooting", "gave up the cycle on a lost call")
            self.assertEqual(hung_calls(marker), 1)
            n1.logind.start_again()
            # The retry (after REBOOT_RETRY_USEC, 10 s) reaches the new logind, which accepts it.
            wait_for(lambda: n1.logind.reboot_calls() == 1, 30, "the retried reboot request")
            time.sleep(0.5)
            self.assertEqual(n1.logind.reboot_calls(), 1, "asked the new logind twice")
            self.assertEqual(hung_calls(marker), 1, "asked the dead logind again")
            n1.reboot()
            n1.wait_kubelet(15)
            n1.wait_phase("idle", 30)
            assert_rebooted_once_and_back(self, b, n1)
            log = n1.log_text()
            print(next(line for line in log.splitlines() if "Reboot request 1 of 3 failed" in line))
            return log

    def test_logind_crashes_during_the_reboot_call(self):
        """logind crashes while it handles RebootWithFlags (systemd restarts it): the daemon's
        call is answered by the bus with an error, the node stays drained and cordoned with its
        slot, nothing more is asked of the dead logind, and the request retried after the
        back-off reaches the restarted logind: one reboot, then back in service."""
        log = self.logind_gone_mid_call(bus=False)
        # dbus-daemon answers for the recipient that left (org.freedesktop.DBus.Error.NoReply).
        self.assertIn("Reboot request 1 of 3 failed: reboot request failed: Message recipient disconnected", log)

    def test_dbus_daemon_restarted_during_the_reboot_call(self):
        """dbus-daemon is restarted (an upgrade of dbus, its crash) while logind handles
        RebootWithFlags: the daemon's connection drops with the call in flight; it connects again
        for the retry, and the restarted logind reboots the node once."""
        log = self.logind_gone_mid_call(bus=True)
        # sd-bus answers the calls in flight on a connection that dropped.
        self.assertIn("Reboot request 1 of 3 failed: reboot request failed: Connection terminated", log)


if __name__ == "__main__":
    unittest.main(verbosity=2)
