# SPDX-License-Identifier: Apache-2.0
"""Drains blocked by PodDisruptionBudgets, bad input of every kind, and the cost of idling."""

import os
import shutil
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import SLOW, VALGRIND, Bench, daemon_binary, node_requests, run_program, wait_for  # noqa: E402


class PdbBlocksDrain(unittest.TestCase):
    def test_h_pdb_blocks_until_timeout_then_rolls_back(self):
        """A PDB forbids every eviction until the drain timeout: the node is uncordoned, the lease
        released, and the reboot tried again later."""
        config = {"Drain.TimeoutSec": "3s", "Reboot.RetrySec": "4s"}
        with Bench(["n1", "n2"], config=config, pdb_min_available=4) as b:
            n1 = b.nodes["n1"]
            n1.start()
            n1.touch_sentinel()
            wait_for(lambda: n1.state().get("failed_cycles") == 1 and n1.phase() == "pending", 30,
                     "the drain to time out and be rolled back")
            self.assertFalse(b.api.node("n1")["spec"].get("unschedulable"))
            self.assertFalse(b.api.lease_holders().get("nodereboot-0"))
            self.assertIn("drain failed", n1.state()["last_error"])
            log = b.api.request_log()
            blocked = [e for e in log if e["path"].endswith("/eviction") and e["status"] == 429]
            self.assertGreaterEqual(len(blocked), 1)
            # retried later: a second cycle starts after RetrySec
            wait_for(lambda: n1.state().get("failed_cycles") == 2, 30, "the second attempt")
            self.assertEqual(n1.logind.reboot_calls(), 0)
            self.assertEqual(n1.reboots, 0)

    def test_h_force_reboot_reboots_anyway(self):
        """With ForceReboot=yes a drain that times out still ends in a reboot, and the node comes
        back uncordoned."""
        config = {"Drain.TimeoutSec": "3s", "Drain.ForceReboot": "yes"}
        with Bench(["n1", "n2"], config=config, pdb_min_available=4) as b:
            n1 = b.nodes["n1"]
            n1.start()
            n1.touch_sentinel()
            b.run_reboots(lambda: n1.reboots == 1 and n1.phase() == "idle", 60)
            self.assertFalse(b.api.node("n1")["spec"].get("unschedulable"))
            self.assertFalse(b.api.lease_holders().get("nodereboot-0"))


class BadInput(unittest.TestCase):
    def run_daemon(self, args, timeout=10, env=None):
        r = run_program([daemon_binary()] + args, timeout, env=dict(os.environ, **(env or {})))
        return r.returncode, r.stdout + r.stderr

    def write(self, path, text, mode=None):
        with open(path, "w") as f:
            f.write(text)
        if mode is not None:
            os.chmod(path, mode)
        return path

    def test_l_bad_config_values(self):
        """Each malformed configuration stops the daemon before it touches anything, naming file,
        line, key and the expected form; an unknown key is only a warning."""
        d = self.tmp()
        cases = [
            ("[Lock]\nConcurrency=abc\n", r"nodereboot.conf:2: .*Concurrency=abc.*integer"),
            ("[Lock]\nTTLSec=soon\n", r"nodereboot.conf:2: .*TTLSec=soon"),
            ("[Drain]\nForceReboot=perhaps\n", r"nodereboot.conf:2: .*ForceReboot=perhaps.*(yes|boolean)"),
            ("[Bogus]\nA=b\n", r"nodereboot.conf:[12]: .*(?i:unknown section).*Bogus"),
            ("[Lock]\nName=Not_A_Name\n", r"nodereboot.conf:2: .*Name="),
            ("[Window]\nTimeZone=Mars/Base\n", r"TimeZone=\"Mars/Base\""),
        ]
        for text, pattern in cases:
            with self.subTest(config=text):
                path = self.write(os.path.join(d, "nodereboot.conf"), text)
                rc, out = self.run_daemon(["--config", path, "--check-config"])
                self.assertEqual(rc, 78, out)
                self.assertRegex(out, pattern)
        # --check-config also loads the kubeconfig: give it a good one
        kc = self.write(os.path.join(d, "kubeconfig"), self.kubeconfig_text("https://127.0.0.1:1"), 0o600)
        path = self.write(os.path.join(d, "nodereboot.conf"), f"[Kubernetes]\nKubeconfig={kc}\n[Lock]\nFrobnicate=1\n")
        rc, out = self.run_daemon(["--config", path, "--check-config"])
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"nodereboot.conf:4: .*Frobnicate")
        self.assertIn("Configuration OK.", out)

    def test_l_bad_command_line(self):
        """Unknown options and stray arguments are usage errors."""
        rc, out = self.run_daemon(["--frobnicate"])
        self.assertEqual(rc, 64, out)
        rc, out = self.run_daemon(["extra"])
        self.assertEqual(rc, 64, out)
        self.assertIn("extra", out)

    def tmp(self):
        import tempfile
        d = tempfile.mkdtemp(prefix="nodereboot-badinput-")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", d]))
        return d

    def daemon_with_kubeconfig(self, kubeconfig_text, expect_rc=78, mode=0o600, files=None, d=None,
                               prefix=()):
        """Runs the real daemon on a kubeconfig (mode: its access mode) and the files it names
        (files: {name: (text, mode)}, in the same folder); prefix runs it through another command."""
        d = d or self.tmp()
        for name, (text, file_mode) in (files or {}).items():
            self.write(os.path.join(d, name), text, file_mode)
        kc = self.write(os.path.join(d, "kubeconfig"), kubeconfig_text, mode) if kubeconfig_text is not None \
            else os.path.join(d, "missing-kubeconfig")
        conf = self.write(os.path.join(d, "nodereboot.conf"),
                          f"[Node]\nName=n1\n[Kubernetes]\nKubeconfig={kc}\n[Sentinel]\nPath={d}/reboot-required\n")
        os.makedirs(os.path.join(d, "state"), exist_ok=True)
        r = subprocess.run([*prefix, daemon_binary(), "--config", conf, "--state-dir", os.path.join(d, "state")],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, expect_rc, r.stdout + r.stderr)
        return r.stdout + r.stderr

    @staticmethod
    def kubeconfig_text(server, user="{token: tok-never-logged}"):
        return f"""apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {{server: "{server}"}}
users:
- name: u
  user: {user}
contexts:
- name: x
  context: {{cluster: c, user: u}}
current-context: x
"""

    def test_l_credentials_open_to_others_are_refused(self):
        """An admin who copied the kubeconfig with the default umask (0644), or left the token file
        or client key world-readable: the daemon does not start (78, so systemd does not restart it),
        naming the file, its mode and the fix, as ssh does for a key; the secret is never logged."""
        kc = self.kubeconfig_text("https://127.0.0.1:1")
        out = self.daemon_with_kubeconfig(kc, mode=0o644)
        self.assertRegex(out, r"kubeconfig (/\S+/kubeconfig): mode 0644 .*Fix: chmod 0640 \1; chgrp nodereboot \1")
        self.assertNotIn("tok-never-logged", out)

        out = self.daemon_with_kubeconfig(self.kubeconfig_text("https://127.0.0.1:1", "{tokenFile: token}"),
                                          files={"token": ("tok-never-logged\n", 0o644)})
        self.assertRegex(out, r"tokenFile (/\S+/token): mode 0644 .*Fix: chmod 0640 \1; chgrp nodereboot \1")
        self.assertNotIn("tok-never-logged", out)

        out = self.daemon_with_kubeconfig(
            self.kubeconfig_text("https://127.0.0.1:1", "{client-certificate: client.crt, client-key: client.key}"),
            files={"client.crt": ("not read here\n", 0o644), "client.key": ("key-never-logged\n", 0o604)})
        self.assertRegex(out, r"client-key (/\S+/client\.key): mode 0604 .*Fix: chmod 0640 \1; chgrp nodereboot \1")
        self.assertNotIn("key-never-logged", out)

    def test_l_unreadable_kubeconfig_exits_78(self):
        """The kubeconfig installed 0600 root:root (without -g nodereboot) for a daemon that runs as
        its own user: the daemon cannot open it (EACCES) and stops with 78 and the fix, rather than
        being restarted every 5 s forever. Modelled by running the daemon as nobody (tests run as
        root, who may read anything). A folder given as the kubeconfig is refused with 78 too."""
        if os.geteuid() != 0 or not shutil.which("setpriv"):
            self.skipTest("needs root and setpriv to run the daemon as another user")
        d = self.tmp()
        os.chmod(d, 0o755)
        os.makedirs(os.path.join(d, "state"))
        os.chmod(os.path.join(d, "state"), 0o777)
        out = self.daemon_with_kubeconfig(self.kubeconfig_text("https://127.0.0.1:1"), d=d,
                                          prefix=["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"])
        self.assertRegex(out, r"kubeconfig (/\S+/kubeconfig): Permission denied.*chmod 0640 \1; chgrp nodereboot \1")

        d = self.tmp()
        os.makedirs(os.path.join(d, "kubeconfig"))
        conf = self.write(os.path.join(d, "nodereboot.conf"),
                          f"[Node]\nName=n1\n[Kubernetes]\nKubeconfig={d}/kubeconfig\n[Sentinel]\nPath={d}/rr\n")
        r = run_program([daemon_binary(), "--config", conf, "--state-dir", d], 10)
        self.assertEqual(r.returncode, 78, r.stderr)
        self.assertIn("not a regular file", r.stderr)

    def test_l_http_with_a_token_is_refused(self):
        """A kubeconfig that would send the token in clear text (http://) is refused with 78; the log
        shows the server as scheme://host:port only, never its user information or path."""
        out = self.daemon_with_kubeconfig(self.kubeconfig_text("http://admin:pw-never-logged@127.0.0.1:8080/k8s"))
        self.assertIn("server http://127.0.0.1:8080 is plain http://", out)
        self.assertNotIn("pw-never-logged", out)
        self.assertNotIn("tok-never-logged", out)
        self.assertNotIn("/k8s", out)

    def test_l_check_config_lists_every_error(self):
        """--check-config reports every error in one run, not only the first: a bad configuration
        value, a world-readable kubeconfig, an http:// server with a token and an open token file,
        then exits 78."""
        d = self.tmp()
        self.write(os.path.join(d, "token"), "tok-never-logged\n", 0o644)
        kc = self.write(os.path.join(d, "kubeconfig"),
                        self.kubeconfig_text("http://127.0.0.1:8080", "{token: tok-never-logged, tokenFile: token}"),
                        0o644)
        conf = self.write(os.path.join(d, "nodereboot.conf"),
                          f"[Kubernetes]\nKubeconfig={kc}\n[Lock]\nConcurrency=abc\n")
        rc, out = self.run_daemon(["--config", conf, "--check-config"])
        self.assertEqual(rc, 78, out)
        self.assertRegex(out, r"nodereboot.conf:4: .*Concurrency=abc")
        self.assertRegex(out, r"kubeconfig \S+/kubeconfig: mode 0644")
        self.assertIn("is plain http://", out)
        self.assertRegex(out, r"tokenFile \S+/token: mode 0644")
        self.assertNotIn("Configuration OK", out)
        self.assertNotIn("tok-never-logged", out)

        # fixed, the same files pass
        os.chmod(kc, 0o640)
        os.chmod(os.path.join(d, "token"), 0o600)
        self.write(kc, self.kubeconfig_text("https://127.0.0.1:1", "{tokenFile: token}"))
        self.write(conf, f"[Kubernetes]\nKubeconfig={kc}\n")
        rc, out = self.run_daemon(["--config", conf, "--check-config"])
        self.assertEqual(rc, 0, out)
        self.assertIn("Configuration OK.", out)

    def test_l_missing_kubeconfig_is_waited_for(self):
        """A node image boots before provisioning drops the kubeconfig in place (at whatever path
        Kubeconfig= names): the daemon starts, says READY=1 and what it waits for, and neither
        fails nor crash-loops. A kubeconfig that appears unusable at first (provisioning still
        writing it, or fixing its mode a moment later) is reported and tried again, not a reason to
        exit for good; once it is whole the daemon joins, without a restart."""
        for broken_first in (True, False):
            with self.subTest(broken_first=broken_first):
                d = self.tmp()
                kc = os.path.join(d, "elsewhere", "node.kubeconfig")
                conf = self.write(os.path.join(d, "nodereboot.conf"),
                                  f"[Node]\nName=n1\n[Kubernetes]\nKubeconfig={kc}\n"
                                  f"[Sentinel]\nPath={d}/reboot-required\n")
                os.makedirs(os.path.join(d, "state"))
                notify = os.path.join(d, "notify")
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                sock.bind(notify)
                sock.settimeout(15)
                env = dict(os.environ, NOTIFY_SOCKET=notify)
                env.pop("JOURNAL_STREAM", None)
                p = subprocess.Popen([daemon_binary(), "--config", conf, "--state-dir", os.path.join(d, "state")],
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

                def wait_status(text):
                    messages = ""
                    while text not in messages:
                        messages += sock.recv(4096).decode()
                    return messages
                try:
                    messages = wait_status("waiting for the kubeconfig")
                    self.assertIn("READY=1", messages)
                    self.assertIn(kc, messages)
                    time.sleep(1)
                    self.assertIsNone(p.poll(), "the daemon gave up without a kubeconfig")
                    os.makedirs(os.path.dirname(kc))
                    if broken_first:
                        self.write(kc, "clusters:\n  - name: a\n   cluster: [\n", 0o600)
                        wait_status("is not usable yet")
                        self.assertIsNone(p.poll(), "the daemon exited on a kubeconfig still being written")
                    self.write(kc, self.kubeconfig_text("https://127.0.0.1:1"), 0o600)
                    out = ""
                    while "Joined the cluster" not in out:
                        line = p.stdout.readline()
                        self.assertTrue(line, "the daemon stopped: " + out)
                        out += line
                    self.assertIsNone(p.poll())
                    if broken_first:
                        self.assertRegex(out, r"kubeconfig .*:\d+:\d+")
                finally:
                    if p.poll() is None:
                        p.terminate()
                        p.wait(15)
                    p.stdout.close()
                    sock.close()

    def test_l_bad_kubeconfigs(self):
        """Invalid YAML and an exec user each stop the daemon with a message naming the file and
        what is wrong (a missing one is waited for: see above)."""
        out = self.daemon_with_kubeconfig("clusters:\n  - name: a\n   cluster: [\n")
        self.assertRegex(out, r"kubeconfig .*:\d+:\d+")
        out = self.daemon_with_kubeconfig("""apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:1"}
users:
- name: eks-user
  user:
    exec: {command: aws, apiVersion: client.authentication.k8s.io/v1beta1}
contexts:
- name: x
  context: {cluster: c, user: eks-user}
current-context: x
""")
        self.assertIn('"eks-user"', out)
        self.assertRegex(out, r"(?i)not supported")

    def test_l_wrong_ca_sends_nothing_and_touches_nothing(self):
        """A kubeconfig whose CA does not match the server: nothing is sent without verified TLS,
        and the node is never touched."""
        with Bench(["n1", "n2"]) as b:
            n1 = b.nodes["n1"]
            other_ca = os.path.join(n1.dir, "other-ca.crt")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                            "-nodes", "-keyout", os.path.join(n1.dir, "other-ca.key"), "-out", other_ca,
                            "-subj", "/CN=not-the-cluster-ca", "-days", "2"],
                           check=True, capture_output=True)
            with open(n1.kubeconfig) as f:
                text = f.read()
            self.write(n1.kubeconfig, text.replace(b.api.ca, other_ca))
            b.api.control("DELETE", "/log")
            n1.start()
            n1.touch_sentinel()
            # The first request a pending node makes: whether reboots are paused, before the lock.
            wait_for(lambda: "Failed to read ConfigMap nodereboot/nodereboot-pause" in n1.log_text(), 15,
                     "the TLS failure")
            time.sleep(1)
            self.assertEqual(node_requests(b.api.request_log(), "n1"), [])
            self.assertFalse(b.api.node("n1")["spec"].get("unschedulable"))
            self.assertNotIn("nodereboot-0", b.api.lease_holders())

    def test_l_rejected_token_touches_nothing(self):
        """A token the API server rejects: a clear error, retries, and the node is never touched."""
        with Bench(["n1", "n2"]) as b:
            n1 = b.nodes["n1"]
            with open(n1.kubeconfig) as f:
                text = f.read()
            self.write(n1.kubeconfig, text.replace("token: token-n1", "token: revoked-token"))
            n1.start()
            n1.touch_sentinel()
            wait_for(lambda: "Failed to read ConfigMap nodereboot/nodereboot-pause" in n1.log_text(), 15, "the 401")
            self.assertRegex(n1.log_text(), r"Permission denied|ermission")
            self.assertNotIn("revoked-token", n1.log_text(), "a secret reached the log")
            self.assertFalse(b.api.node("n1")["spec"].get("unschedulable"))
            self.assertNotIn("nodereboot-0", b.api.lease_holders())


class Idle(unittest.TestCase):
    def test_o_idle_costs_nothing(self):
        """While no reboot is required the daemon sends no API requests and does not wake up
        periodically. Prints its resident memory."""
        with Bench(["n1", "n2"]) as b:
            n1 = b.nodes["n1"]
            n1.start()
            n1.wait_phase("idle", 10)
            time.sleep(1.5 * SLOW)      # let the start-up look-up finish
            before = len(node_requests(b.api.request_log(), "n1"))
            pid = n1.proc.pid

            def status(field):
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith(field + ":"):
                            return int(line.split()[1])
            switches = status("voluntary_ctxt_switches") + status("nonvoluntary_ctxt_switches")
            time.sleep(5)
            after = len(node_requests(b.api.request_log(), "n1"))
            switches_after = status("voluntary_ctxt_switches") + status("nonvoluntary_ctxt_switches")
            rss = status("VmRSS")
            print(f"idle: {after - before} API requests and {switches_after - switches} wake-ups in 5 s; "
                  f"VmRSS {rss} kB")
            self.assertEqual(after, before, "API requests while idle")
            if not VALGRIND:            # whose scheduler wakes the process up on its own
                self.assertLessEqual(switches_after - switches, 2, "periodic wake-ups while idle")
            self.assertTrue(n1.running())


if __name__ == "__main__":
    unittest.main(verbosity=2)
