# SPDX-License-Identifier: Apache-2.0
"""Proxies between the node and the API server ([Kubernetes] Proxy=, NoProxy=, and HTTPS_PROXY /
NO_PROXY in the environment), with the real daemon and noderebootctl, the test API server and a
small HTTP CONNECT proxy on loopback that records where each tunnel went. Each test names the user
story it proves."""

import base64
import os
import select
import socket
import socketserver
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import Bench, ctl, node_requests, wait_for  # noqa: E402

PROXY_ENV = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy",
             "ALL_PROXY", "all_proxy")


class ConnectProxy:
    """An HTTP proxy that only tunnels (CONNECT), as corporate proxies for TLS do. It records every
    connection, every CONNECT target and the Proxy-Authorization it came with; with credentials
    set, a CONNECT without them gets a 407."""

    def __init__(self, credentials=None):
        self.lock = threading.Lock()
        self.connections = 0
        self.targets = []
        self.authorizations = []
        self.refused = 0
        self.expected_auth = ("Basic " + base64.b64encode(credentials.encode()).decode()) if credentials else None
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                proxy._handle(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _handle(self, client):
        with self.lock:
            self.connections += 1
        head = b""
        while b"\r\n\r\n" not in head:
            data = client.recv(4096)
            if not data or len(head) > 65536:
                return
            head += data
        head, _, rest = head.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = (lines[0].split(" ") + ["", ""])[:3]
        auth = None
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "proxy-authorization":
                auth = value.strip()
        with self.lock:
            self.targets.append(f"{method} {target}")
            self.authorizations.append(auth)
        if method != "CONNECT":
            client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        if self.expected_auth and auth != self.expected_auth:
            with self.lock:
                self.refused += 1
            client.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                           b"Proxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n")
            return
        host, _, port = target.rpartition(":")
        try:
            upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
        except (OSError, ValueError):
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        upstream.settimeout(None)
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        if rest:
            upstream.sendall(rest)
        try:
            socks = [client, upstream]
            while True:
                readable, _, _ = select.select(socks, [], [], 1.0)
                for s in readable:
                    data = s.recv(65536)
                    if not data:
                        return
                    (upstream if s is client else client).sendall(data)
        except OSError:
            return
        finally:
            upstream.close()

    def tunnels(self):
        with self.lock:
            return [t for t in self.targets if t.startswith("CONNECT ")]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def api_hostport(bench):
    return bench.api.url.split("://", 1)[1].split("/", 1)[0]


def clean_environment():
    for k in PROXY_ENV:
        os.environ.pop(k, None)


class Proxies(unittest.TestCase):
    def setUp(self):
        # The daemons inherit this environment: only what a test sets may name a proxy.
        clean_environment()
        self.proxy = ConnectProxy(credentials="nodes:s3cret-pw")
        self.addCleanup(self.proxy.stop)

    def proxy_url(self, credentials=True):
        return f"http://{'nodes:s3cret-pw@' if credentials else ''}127.0.0.1:{self.proxy.port}"

    def assert_reaches_api(self, bench, node):
        wait_for(lambda: node_requests(bench.api.request_log(), node.name), 15,
                 f"{node.name}'s requests at the API server")
        node.wait_phase("idle", 10)
        wait_for(lambda: node.notified("READY=1"), 10, "READY=1")

    def test_a_full_cycle_through_the_configured_proxy(self):
        """A node whose only way out is an HTTP proxy ([Kubernetes] Proxy= with credentials) runs
        the whole cycle through it: every tunnel goes to the API server's address, with the
        credentials; the journal names the proxy without them."""
        with Bench(["n1", "n2"], config={"Kubernetes.Proxy": self.proxy_url()}) as b:
            n1 = b.nodes["n1"]
            n1.start()
            self.assert_reaches_api(b, n1)
            n1.touch_sentinel(["linux-image-6.1.0-28-amd64"])
            wait_for(lambda: n1.logind.reboot_calls() == 1, 30, "the reboot request")
            self.assertTrue(b.api.node("n1")["spec"].get("unschedulable"))
            n1.reboot()
            n1.wait_phase("idle", 30)
            self.assertFalse(b.api.node("n1")["spec"].get("unschedulable"))
            self.assertEqual(n1.reboots, 1)

            tunnels = self.proxy.tunnels()
            self.assertGreaterEqual(len(tunnels), 2, "the daemon's connections before and after the reboot")
            self.assertEqual(set(tunnels), {"CONNECT " + api_hostport(b)})
            self.assertEqual(self.proxy.refused, 0, "every CONNECT carried the credentials")
            log = n1.log_text()
            self.assertIn(f"through proxy http://127.0.0.1:{self.proxy.port} (from [Kubernetes] Proxy=)", log)
            self.assertNotIn("s3cret-pw", log)

    def test_b_no_proxy_bypasses_it(self):
        """NoProxy= naming the server's address (as an address or as a CIDR) connects directly:
        the proxy sees no connection at all, and the node works."""
        for no_proxy in ("127.0.0.1", "example.com, 127.0.0.0/8", "*"):
            with self.subTest(no_proxy=no_proxy):
                before = self.proxy.connections
                config = {"Kubernetes.Proxy": self.proxy_url(), "Kubernetes.NoProxy": no_proxy}
                with Bench(["n1"], config=config) as b:
                    n1 = b.nodes["n1"]
                    n1.start()
                    self.assert_reaches_api(b, n1)
                    self.assertIn("Connecting to the API server directly: [Kubernetes] NoProxy= matches its host.",
                                  n1.log_text())
                    time.sleep(0.5)
                    self.assertEqual(self.proxy.connections, before, "the proxy saw a connection")

    def test_c_environment_proxy_never_for_a_node_local_api_server(self):
        """Without Proxy=, a proxy from the daemon's environment (HTTPS_PROXY, https_proxy, as a
        site-wide DefaultEnvironment= sets it) is not used for a loopback API server — the
        node-local load balancer on 127.0.0.1 that kubespray, k3s and rke2 set up — exactly as
        kubectl and the kubelet on the same node behave (Go's http.ProxyFromEnvironment exempts
        localhost and loopback). For other servers the environment and NO_PROXY are honoured
        (unit test proxy); Proxy= in the configuration is used even for loopback (test a)."""
        cases = [
            {"HTTPS_PROXY": self.proxy_url()},
            {"https_proxy": self.proxy_url()},
            {"HTTPS_PROXY": self.proxy_url(), "NO_PROXY": "other.example"},
        ]
        for env in cases:
            with self.subTest(env=sorted(env)):
                before_conn = self.proxy.connections
                with Bench(["n1"]) as b:
                    n1 = b.nodes["n1"]
                    n1.extra_env = env
                    n1.start()
                    self.assert_reaches_api(b, n1)
                    time.sleep(0.3)
                    self.assertEqual(self.proxy.connections, before_conn, "the proxy saw a connection")
                    self.assertNotIn("through proxy", n1.log_text())
                    self.assertNotIn("s3cret-pw", n1.log_text())

    def test_d_no_proxy_matches_the_real_address_with_tls_server_name(self):
        """With tls-server-name in the kubeconfig (the TLS name differs from the address),
        NoProxy= is matched against the server's real address, not the TLS name: NoProxy=127.0.0.1
        bypasses the proxy, while NoProxy=localhost (the TLS name) does not, and the tunnel goes
        to the real address."""
        for no_proxy, proxied in (("127.0.0.1", False), ("localhost", True)):
            with self.subTest(no_proxy=no_proxy):
                before_conn, before_tunnels = self.proxy.connections, len(self.proxy.tunnels())
                config = {"Kubernetes.Proxy": self.proxy_url(), "Kubernetes.NoProxy": no_proxy}
                with Bench(["n1"], config=config) as b:
                    n1 = b.nodes["n1"]
                    with open(n1.kubeconfig) as f:
                        text = f.read()
                    text = text.replace("    certificate-authority:", "    tls-server-name: localhost\n"
                                        "    certificate-authority:", 1)
                    self.assertIn("tls-server-name: localhost", text)
                    with open(n1.kubeconfig, "w") as f:
                        f.write(text)
                    n1.start()
                    self.assert_reaches_api(b, n1)
                    time.sleep(0.3)
                    if proxied:
                        tunnels = self.proxy.tunnels()[before_tunnels:]
                        self.assertTrue(tunnels)
                        self.assertEqual(set(tunnels), {"CONNECT " + api_hostport(b)})
                    else:
                        self.assertEqual(self.proxy.connections, before_conn, "the proxy saw a connection")

    def test_e_noderebootctl_uses_the_same_proxy(self):
        """noderebootctl, reading the daemon's configuration, reaches the API server through the
        same proxy, and bypasses it per NoProxy= as the daemon does."""
        with Bench(["n1"], config={"Kubernetes.Proxy": self.proxy_url()}) as b:
            n1 = b.nodes["n1"]
            before = len(self.proxy.tunnels())
            r = ctl(n1, "status")
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertGreater(len(self.proxy.tunnels()), before, "noderebootctl bypassed the proxy")
            self.assertNotIn("s3cret-pw", r.stdout + r.stderr)

            n1.write_config({"Kubernetes.Proxy": self.proxy_url(), "Kubernetes.NoProxy": "127.0.0.0/8"})
            before = self.proxy.connections
            r = ctl(n1, "status")
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertEqual(self.proxy.connections, before, "noderebootctl used the proxy despite NoProxy=")

    def test_f_a_bad_proxy_url_is_a_configuration_error(self):
        """A proxy URL that cannot work stops the daemon with exit 78 (no restart loop), and the
        message does not repeat the password it held."""
        with Bench(["n1"], config={"Kubernetes.Proxy": "ftp://nodes:s3cret-pw@127.0.0.1:21"}) as b:
            n1 = b.nodes["n1"]
            n1.start()
            n1.proc.wait(20)
            self.assertEqual(n1.proc.returncode, 78)
            self.assertIn("[Kubernetes] Proxy=: expected a proxy URL", n1.log_text())
            self.assertNotIn("s3cret-pw", n1.log_text())


if __name__ == "__main__":
    unittest.main(verbosity=2)
