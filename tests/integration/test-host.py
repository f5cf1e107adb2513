# SPDX-License-Identifier: Apache-2.0
"""Host safety: the package manager, the sentinel as Debian writes it, and input that must not
cost the state file. Each test names the user story it proves and the real behaviour its world
models."""

import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import SLOW, Bench, wait_for  # noqa: E402

# What dpkg and apt do: fcntl(F_SETLK) write locks on the whole of each file, held by the process
# for as long as it runs (apt takes lock-frontend, then dpkg takes lock). A separate process, so
# its PID is not ours; it unlocks on a line on stdin, as dpkg does when it finishes.
HOLDER = r"""
import fcntl, sys
files = [open(p, "a+") for p in sys.argv[1:]]
for f in files:
    fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
print("locked", flush=True)
sys.stdin.readline()
for f in files:
    fcntl.lockf(f, fcntl.LOCK_UN)
print("released", flush=True)
sys.stdin.readline()
"""


class PackageManager:
    """A running dpkg/apt as the daemon sees it: the lock files of PackageManagerLocks= held."""

    def __init__(self, node):
        os.makedirs(node.dpkg_dir, exist_ok=True)
        self.proc = subprocess.Popen([sys.executable, "-c", HOLDER, os.path.join(node.dpkg_dir, "lock-frontend"),
                                      os.path.join(node.dpkg_dir, "lock")],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "locked"
        self.pid = self.proc.pid

    def release(self):
        """The upgrade ends: returns the monotonic time the locks were released."""
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "released"
        return time.monotonic()

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc.stdin.close()
        self.proc.stdout.close()


def corrupt_files(node):
    return [f for f in os.listdir(node.state_dir) if f.startswith("state.corrupt")]


class Host(unittest.TestCase):
    def test_a1_pending_node_waits_for_the_package_manager(self):
        """An admin runs apt full-upgrade; the kernel's postinst hook creates the sentinel while
        dpkg still holds its locks. The node takes no slot while they are held, says who holds
        them in STATUS=, and takes the slot within a second of dpkg releasing them."""
        with Bench(["n1", "n2"]) as b:
            n1 = b.nodes["n1"]
            n1.start()
            wait_for(lambda: n1.notified("READY=1"), 10, "the start")
            apt = PackageManager(n1)
            try:
                n1.touch_sentinel(["linux-image-6.1.0-28-amd64"])
                want = f"waiting for the package manager (pid {apt.pid})"
                wait_for(lambda: any(want in s for s in n1.statuses()), 10, f"STATUS= to say {want!r}")
                time.sleep(2)
                self.assertEqual(n1.phase(), "pending")
                self.assertFalse(b.api.lease_holders().get("nodereboot-0"), "a slot taken during the upgrade")
                self.assertFalse(b.api.node("n1")["spec"].get("unschedulable"))

                released = apt.release()
                wait_for(lambda: b.api.lease_holders().get("nodereboot-0") == "n1", 10, "the slot")
                took = time.monotonic() - released
                print(f"slot taken {took:.2f} s after the package manager released its locks")
                self.assertLess(took, 1.0 * SLOW)
                wait_for(lambda: n1.logind.reboot_calls() == 1, 30, "the reboot request")
            finally:
                apt.close()

    def test_a2_holding_node_does_not_reboot_under_dpkg(self):
        """unattended-upgrades starts dpkg after the node took its slot and drained (a second
        upgrade run, or apt started by hand): the drained node does not ask logind to reboot
        while dpkg holds its locks, and goes on within a second of the release. While it waits
        it makes no API calls for this (the lock is looked at locally)."""
        with Bench(["n1", "n2"], config={"Reboot.DelaySec": "3s"}) as b:
            n1 = b.nodes["n1"]
            n1.start()
            n1.touch_sentinel(["linux-image-6.1.0-28-amd64"])
            n1.wait_phase("draining", 20)
            apt = PackageManager(n1)
            try:
                want = f"drained; waiting for the package manager (pid {apt.pid})"
                wait_for(lambda: any(want in s for s in n1.statuses()), 20, f"STATUS= to say {want!r}")
                time.sleep(2)
                self.assertEqual(n1.logind.reboot_calls(), 0, "rebooted while dpkg held its lock")
                self.assertEqual(b.api.lease_holders().get("nodereboot-0"), "n1")

                released = apt.release()
                wait_for(lambda: n1.logind.reboot_calls() == 1, 10, "the reboot request")
                took = time.monotonic() - released
                print(f"reboot requested {took:.2f} s after the package manager released its locks")
                self.assertLess(took, 1.0 * SLOW)
            finally:
                apt.close()
            n1.reboot()
            n1.wait_kubelet(15)
            n1.wait_phase("idle", 30)

    def test_b_sentinel_touched_before_the_package_list_gets_the_full_reason(self):
        """unattended-upgrades' kernel hook (/etc/kernel/postinst.d/unattended-upgrades) touches
        /var/run/reboot-required and only then appends the package to reboot-required.pkgs. With
        SettleSec=2s the node acts on the sentinel only after it existed 2 s, and the reason it
        records, logs and puts on the Node names the package."""
        with Bench(["n1", "n2"], config={"Sentinel.SettleSec": "2s"}) as b:
            n1 = b.nodes["n1"]
            n1.start()
            wait_for(lambda: n1.notified("READY=1"), 10, "the start")
            with open(n1.sentinel, "w") as f:
                f.write("*** System restart required ***\n")
            t0 = time.monotonic()
            time.sleep(0.5)
            with open(n1.sentinel + ".pkgs", "a") as f:
                f.write("linux-image-6.1.0-28-amd64\n")
            time.sleep(1.0)
            self.assertEqual(n1.phase(), "idle", "acted on the sentinel before it settled")
            wait_for(lambda: n1.phase() != "idle", 10, "the cycle to start")
            self.assertGreaterEqual(time.monotonic() - t0, 2.0)
            self.assertEqual(n1.state().get("reason"), "linux-image-6.1.0-28-amd64")
            wait_for(lambda: n1.logind.reboot_calls() == 1, 30, "the reboot request")
            annotations = b.api.node("n1")["metadata"].get("annotations", {})
            self.assertEqual(annotations.get("nodereboot.io/reboot-reason"), "linux-image-6.1.0-28-amd64")
            self.assertIn("reason: linux-image-6.1.0-28-amd64", n1.log_text())

    def test_c_junk_in_the_package_list_never_costs_the_state_file(self):
        """A reboot-required.pkgs of 1 MiB with binary junk, invalid UTF-8 and lines of 64 KiB (a
        broken hook, a disk error, a hostile package): the cycle runs, the reason holds only
        package names and at most 1 KiB, nothing that is not UTF-8 reaches STATUS=, the log or
        the Node, and the state file written on the way loads again after a restart, not moved
        aside as corrupt."""
        with Bench(["n1", "n2"]) as b:
            n1 = b.nodes["n1"]
            junk = bytearray()
            junk += b"linux-image-6.1.0-28-amd64\n\xff\xfe\xc0\xaf caf\xe9\n" + bytes(range(256)) + b"\nlibc6:amd64\n"
            # the line that made the state file too large to load: a reason of 64000 bytes
            junk += b"x" * 64000 + b"\n"
            junk += b"".join(b"package-%05d\n" % i for i in range(3000))
            junk += os.urandom(1024 * 1024 - len(junk))
            with open(n1.sentinel + ".pkgs", "wb") as f:
                f.write(junk)
            n1.start()
            n1.touch_sentinel()
            wait_for(lambda: n1.logind.reboot_calls() == 1, 40, "the reboot request")

            reason = n1.state().get("reason")
            self.assertTrue(reason.startswith("linux-image-6.1.0-28-amd64, libc6:amd64, package-00000, "), reason)
            self.assertRegex(reason, r", and \d+ more$")
            self.assertLess(len(reason.encode()), 1024)
            self.assertTrue(reason.isascii())
            for s in n1.statuses():
                self.assertNotIn("\ufffd", s, "STATUS= with bytes that are not UTF-8")
            with open(n1.logs[-1], "rb") as f:
                f.read().decode("utf-8")   # raises on anything that is not UTF-8
            self.assertIn("Ignored", n1.log_text())
            annotations = b.api.node("n1")["metadata"].get("annotations", {})
            self.assertEqual(annotations.get("nodereboot.io/reboot-reason"), reason)

            # The daemon stops and starts again (a package upgrade restarts it): same state.
            n1.kill()
            n1.start()
            wait_for(lambda: n1.notified("READY=1") and "Resuming in state" in n1.log_text(), 10, "the restart")
            self.assertEqual(corrupt_files(n1), [])
            self.assertNotIn("is corrupt", n1.log_text())
            self.assertEqual(n1.state().get("reason"), reason)

            # And the cycle ends as usual after the reboot.
            n1.reboot()
            n1.wait_kubelet(15)
            n1.wait_phase("idle", 30)
            self.assertEqual(corrupt_files(n1), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
