# SPDX-License-Identifier: Apache-2.0
"""[Metrics]: a real Prometheus (Debian's prometheus package, the server itself, not a mock)
scrapes a node's endpoint through a full reboot cycle; promtool checks the endpoint's text and the
textfile; the endpoint through a socket systemd passes (systemd-socket-activate, the tool that
passes sockets exactly as a .socket unit does); an idle daemon with metrics on still never wakes
up; an address in use leaves the cycle alone."""

import os
import re
import socket
import subprocess
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import SLOW, VALGRIND, Bench, hold_slot, node_requests, wait_for  # noqa: E402
from prometheus import Prometheus, free_port  # noqa: E402

SLOT = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"


def fetch(url, method="GET"):
    req = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.status, r.headers.get("Content-Type"), r.read().decode()


def try_fetch(url):
    try:
        return fetch(url)
    except OSError:
        return None


def sample(text, name):
    """The value of the one sample called name (with its labels, as written) in an exposition."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"no sample {name} in:\n{text}")


def promtool_check(text):
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


class Metrics(unittest.TestCase):
    def test_a_real_prometheus_follows_a_cycle(self):
        """Prometheus scrapes n1 every second while its reboot is required (a slot held by
        another node keeps it pending), taken, done: nodereboot_reboot_required goes 0 → 1 → 0,
        nodereboot_lock_held was 1, nodereboot_reboots_total ends at 1, and kured's metric says
        what kured's would. The endpoint and the textfile carry the same text, which promtool
        accepts."""
        port = free_port()
        with Bench(["n1"]) as b:
            n1 = b.nodes["n1"]
            textfile = os.path.join(n1.dir, "nodereboot.prom")
            n1.write_config({"Metrics.ListenAddress": f"127.0.0.1:{port}", "Metrics.TextfilePath": textfile,
                             "Metrics.KuredCompatible": "yes"})
            n1.start()
            n1.wait_phase("idle", 15)
            url = f"http://127.0.0.1:{port}/metrics"
            status, ctype, text = wait_for(lambda: try_fetch(url), 10, "the metrics endpoint")
            self.assertEqual(status, 200)
            self.assertEqual(ctype, "text/plain; version=0.0.4; charset=utf-8")
            self.assertEqual(sample(text, "nodereboot_reboot_required"), 0)
            self.assertEqual(sample(text, 'nodereboot_state{state="idle"}'), 1)
            self.assertEqual(sample(text, 'kured_reboot_required{node="n1"}'), 0)
            self.assertRegex(text, r'nodereboot_info\{version="[^"]+",node="n1"\} 1')
            with open(textfile) as f:
                self.assertEqual(f.read(), text)
            self.assertEqual(os.stat(textfile).st_mode & 0o777, 0o644)
            for what, t in (("endpoint", text), ("textfile", open(textfile).read())):
                rc, out = promtool_check(t)
                self.assertEqual(rc, 0, f"promtool check metrics on the {what}: {out}")

            prom = Prometheus([f"127.0.0.1:{port}"])
            try:
                prom.wait_value('up{job="nodereboot"}', 1)
                prom.wait_value("nodereboot_reboot_required", 0)

                hold_slot(b)
                n1.touch_sentinel(["linux-image-amd64"])
                n1.wait_phase("pending", 15)
                prom.wait_value("nodereboot_reboot_required", 1)
                prom.wait_value('nodereboot_state{state="pending"}', 1)
                prom.wait_value('kured_reboot_required{node="n1"}', 1)
                self.assertEqual(prom.value("nodereboot_lock_held"), 0)

                b.api.api("DELETE", SLOT + "/nodereboot-0", expect=200)
                b.run_reboots(lambda: n1.reboots == 1 and n1.phase() == "idle", 120)
                prom.wait_value("nodereboot_reboots_total", 1)
                prom.wait_value("nodereboot_reboot_required", 0)
                prom.wait_value('nodereboot_state{state="idle"}', 1)
                # what the scrapes saw on the way
                self.assertEqual(prom.value("max_over_time(nodereboot_lock_held[10m])"), 1)
                self.assertEqual(prom.value("max_over_time(nodereboot_reboot_required[10m])"), 1)
                self.assertEqual(prom.value("nodereboot_lock_held"), 0)
                self.assertEqual(prom.value("nodereboot_cycles_failed_total"), 0)
                last = prom.value("nodereboot_last_reboot_timestamp_seconds")
                self.assertTrue(last and abs(last - time.time()) < 300, last)
                self.assertGreater(prom.value("nodereboot_lock_wait_seconds"), 0)
                print(f"Prometheus saw: reboots_total 1, last reboot {time.time() - last:.0f} s ago, "
                      f"lock wait {prom.value('nodereboot_lock_wait_seconds')} s, "
                      f"drain {prom.value('nodereboot_drain_duration_seconds')} s")
            finally:
                prom.close()
            # the textfile followed: the same text as the endpoint at the end
            status, _, text = fetch(url)
            with open(textfile) as f:
                self.assertEqual(f.read(), text)
            self.assertEqual(sample(text, "nodereboot_reboots_total"), 1)

    def test_the_endpoint_on_a_socket_systemd_passes(self):
        """nodereboot-metrics.socket passes a listening socket named "metrics"
        (FileDescriptorName=metrics); systemd-socket-activate passes one the same way
        (LISTEN_FDS, LISTEN_FDNAMES). The daemon serves on it with no ListenAddress=; HEAD,
        404 and 405 answer as HTTP says."""
        port = free_port()
        with Bench(["n1"]) as b:
            n1 = b.nodes["n1"]
            n1.wrapper = ["systemd-socket-activate", "-l", f"127.0.0.1:{port}", "--fdname=metrics"]
            n1.start()
            n1.wait_phase("idle", 15)
            url = f"http://127.0.0.1:{port}"
            status, _, text = wait_for(lambda: try_fetch(url + "/metrics"), 10, "the metrics endpoint")
            self.assertEqual(sample(text, 'nodereboot_state{state="idle"}'), 1)
            self.assertEqual(fetch(url + "/metrics", "HEAD")[0], 200)
            for path, method, code in (("/", "GET", 404), ("/metrics", "POST", 405)):
                with self.assertRaises(urllib.error.HTTPError) as e:
                    fetch(url + path, method)
                self.assertEqual(e.exception.code, code)
            self.assertIn("Serving the metrics at http://(the socket systemd passed)/metrics", n1.log_text())

    def test_idle_with_metrics_costs_nothing(self):
        """With the textfile, the endpoint and notifications on and no scraper, an idle daemon
        sends no request, does not wake up, and does not rewrite the textfile."""
        port = free_port()
        with Bench(["n1"]) as b:
            n1 = b.nodes["n1"]
            textfile = os.path.join(n1.dir, "nodereboot.prom")
            n1.write_config({"Metrics.ListenAddress": f"127.0.0.1:{port}", "Metrics.TextfilePath": textfile,
                             "Notify.URL": "https://127.0.0.1:9/hooks/SECRET"})
            n1.start()
            n1.wait_phase("idle", 15)
            wait_for(lambda: try_fetch(f"http://127.0.0.1:{port}/metrics"), 10, "the metrics endpoint")
            self.assertIn("Notifying 1 URL of", n1.log_text())
            time.sleep(1.5 * SLOW)
            before = len(node_requests(b.api.request_log(), "n1"))
            mtime = os.stat(textfile).st_mtime_ns
            pid = n1.proc.pid

            def switches():
                with open(f"/proc/{pid}/status") as f:
                    return sum(int(line.split()[1]) for line in f if "ctxt_switches" in line)
            s0 = switches()
            time.sleep(5)
            woken = switches() - s0
            print(f"idle with metrics and notifications on: {woken} wake-ups in 5 s")
            if not VALGRIND:            # whose scheduler wakes the process up on its own
                self.assertLessEqual(woken, 2)
            self.assertEqual(len(node_requests(b.api.request_log(), "n1")), before)
            self.assertEqual(os.stat(textfile).st_mtime_ns, mtime)

    def test_an_address_in_use_leaves_the_cycle_alone(self):
        """Another process has the port: the daemon says so and reboots the node all the same."""
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            with Bench(["n1"]) as b:
                n1 = b.nodes["n1"]
                n1.write_config({"Metrics.ListenAddress": f"127.0.0.1:{port}"})
                n1.start()
                n1.wait_phase("idle", 15)
                n1.touch_sentinel()
                b.run_reboots(lambda: n1.reboots == 1 and n1.phase() == "idle", 120)
                self.assertRegex(n1.log_text(), re.escape(f"Failed to serve the metrics on 127.0.0.1:{port}, "
                                                          "going on without the endpoint"))

    def test_a_listen_address_that_is_not_one(self):
        """A host name (never looked up) or a port out of range: the daemon refuses to start,
        naming the file, the line and what is expected."""
        with Bench(["n1"]) as b:
            n1 = b.nodes["n1"]
            for bad in ("localhost:9798", "127.0.0.1:70000"):
                n1.write_config({"Metrics.ListenAddress": bad})
                n1.start()
                n1.proc.wait(15)
                self.assertEqual(n1.proc.returncode, 78)
                text = n1.log_text()
                self.assertRegex(text, re.escape(n1.config_path) + r":\d+: .*ListenAddress")
                self.assertIn("127.0.0.1:9798", text)


if __name__ == "__main__":
    unittest.main(verbosity=2)
