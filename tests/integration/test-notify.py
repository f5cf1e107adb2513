# SPDX-License-Identifier: Apache-2.0
"""[Notify]: local HTTPS receivers (TLS with a test CA the daemon trusts through [Notify] CAFile=)
that check each service's payload as the service does: a Slack incoming webhook needs "text"
(and may carry "blocks"), a Teams workflow's "When a Teams webhook request is received" trigger
takes {"type": "message", "attachments": [an Adaptive Card]}, a generic webhook gets every fact.
Real daemons through real cycles: one message per configured event; a receiver that never
answers or answers 500 does not hold the cycle up; the secret part of a URL never reaches the
log; "failed" and "blocked-too-long" are sent when they happen."""

import http.server
import json
import os
import ssl
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apiserver.pki import PKI  # noqa: E402
from bench import SLOW, Bench, hold_slot, wait_for  # noqa: E402

SECRET = "XXXXSECRETTOKEN"


def slack_ok(body):
    """What Slack's incoming webhooks accept: a JSON object with a non-empty text (blocks optional,
    each with a type)."""
    return (isinstance(body, dict) and isinstance(body.get("text"), str) and body["text"]
            and all(isinstance(b, dict) and "type" in b for b in body.get("blocks", [])))


def teams_ok(body):
    """The envelope a Teams workflow webhook trigger takes: a message with Adaptive Card attachments."""
    if not (isinstance(body, dict) and body.get("type") == "message" and isinstance(body.get("attachments"), list)):
        return False
    return all(a.get("contentType") == "application/vnd.microsoft.card.adaptive"
               and a.get("content", {}).get("type") == "AdaptiveCard"
               and isinstance(a["content"].get("body"), list) for a in body["attachments"])


WEBHOOK_FIELDS = {"node", "event", "state", "message", "reason", "packages", "error", "waiting",
                  "kernel_before", "kernel_after", "time", "since"}


class Receivers:
    """One HTTPS server; the path says which service it plays and how it answers:
    /slack/... 200 "ok", /teams/... 202, /hook/... 200, /hang/... never, /error/... 500."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="notify-")
        self.pki = PKI(self.dir)
        self.pki.ensure()
        self.got = []                      # (time, kind, body, headers)
        self.lock = threading.Lock()
        receivers = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                kind = self.path.split("/")[1]
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                with receivers.lock:
                    receivers.got.append((time.time(), kind, body, dict(self.headers)))
                if kind == "hang":
                    time.sleep(60)
                    return
                status, text = {"slack": (200, b"ok"), "teams": (202, b""), "hook": (200, b"{}"),
                                "error": (500, b"oops")}[kind]
                if kind == "slack" and not slack_ok(body):
                    status, text = 400, b"invalid_payload"
                if kind == "teams" and not teams_ok(body):
                    status, text = 400, b"bad card"
                self.send_response(status)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.pki.server_crt, self.pki.server_key)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.base = f"https://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def messages(self, kind):
        with self.lock:
            return [(t, b) for t, k, b, _ in self.got if k == kind]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Notify(unittest.TestCase):
    def setUp(self):
        self.rx = Receivers()

    def tearDown(self):
        self.rx.close()

    def test_each_service_gets_its_format(self):
        """Slack (by its URL scheme slack+https), Teams (teams+https) and a generic webhook (its
        URL read from a URLFile=, as from a systemd credential) get drain-start, reboot and
        back-in-service, once each, in that order, each in its own format."""
        with Bench(["n1"]) as b:
            n1 = b.nodes["n1"]
            url_file = os.path.join(n1.dir, "webhook-url")
            with open(url_file, "w") as f:
                f.write(f"# the generic receiver\n{self.rx.base}/hook/{SECRET}\n")
            n1.write_config({"Notify.URL": f"slack+{self.rx.base}/slack/services/T0/B0/{SECRET}",
                             "Notify.URLFile": url_file, "Notify.CAFile": self.rx.pki.ca_crt,
                             "Notify.MessageDrainStart": "Draining %node% because of %reason%"})
            # a second URL= appends
            with open(n1.config_path, "a") as f:
                f.write(f"[Notify]\nURL=teams+{self.rx.base}/teams/workflows/{SECRET}\n")
            n1.start()
            n1.wait_phase("idle", 15)
            n1.touch_sentinel(["linux-image-amd64"])
            b.run_reboots(lambda: n1.reboots == 1 and n1.phase() == "idle", 120)
            wait_for(lambda: all(len(self.rx.messages(k)) == 3 for k in ("slack", "teams", "hook")), 15,
                     "three messages at each receiver")
            time.sleep(1)
            for kind in ("slack", "teams", "hook"):
                self.assertEqual(len(self.rx.messages(kind)), 3, kind)
            slack = [b for _, b in self.rx.messages("slack")]
            self.assertTrue(all(slack_ok(m) for m in slack), slack)
            self.assertEqual(slack[0]["text"], "Draining n1 because of linux-image-amd64")
            self.assertEqual(slack[1]["text"], "Rebooting node n1 (reason: linux-image-amd64)")
            self.assertEqual(slack[2]["text"], "Node n1 is back in service after its reboot")
            self.assertTrue(all(teams_ok(b) for _, b in self.rx.messages("teams")))
            hooks = [b for _, b in self.rx.messages("hook")]
            self.assertEqual([h["event"] for h in hooks], ["drain-start", "reboot", "back-in-service"])
            for h in hooks:
                self.assertEqual(set(h), WEBHOOK_FIELDS)
                self.assertEqual(h["node"], "n1")
            self.assertEqual(hooks[0]["reason"], "linux-image-amd64")
            self.assertNotIn(SECRET, n1.log_text())
            print("payloads: slack " + json.dumps(slack[0])[:120] + " ...")

    def test_a_dead_receiver_does_not_hold_the_cycle_up(self):
        """One receiver never answers, one answers 500: the cycle goes on at once (the cordon
        follows the daemon's read of its Node as closely as without notifications), the failures
        are logged after the retries and counted in nodereboot_notifications_failed_total."""
        with Bench(["n1"]) as b:
            n1 = b.nodes["n1"]
            n1.write_config({"Notify.URL": f"{self.rx.base}/hang/{SECRET}", "Notify.CAFile": self.rx.pki.ca_crt,
                             "Notify.TimeoutSec": "2s", "Notify.Retries": "1",
                             "Metrics.TextfilePath": os.path.join(n1.dir, "metrics.prom")})
            with open(n1.config_path, "a") as f:
                f.write(f"[Notify]\nURL={self.rx.base}/error/{SECRET}\n")
            n1.start()
            n1.wait_phase("idle", 15)
            n1.touch_sentinel()
            b.run_reboots(lambda: n1.reboots == 1 and n1.phase() == "idle", 120)
            log = b.api.request_log()
            reads = [e["time"] for e in log if e["method"] == "GET" and e["path"] == "/api/v1/nodes/n1"]
            cordon = next(e["time"] for e in log if e["method"] == "PATCH" and e["path"] == "/api/v1/nodes/n1"
                          and "unschedulable" in json.dumps(e.get("body")))
            last_read = max(t for t in reads if t < cordon)
            gap = (cordon - last_read) * 1000
            print(f"drain-start notified to two dead receivers: Node read -> cordon {gap:.1f} ms")
            self.assertLess(gap, 100 * SLOW)
            wait_for(lambda: "Failed to notify" in n1.log_text(), 30, "the failures to be logged")
            self.assertIn(f"Failed to notify {self.rx.base}", n1.log_text())
            self.assertNotIn(SECRET, n1.log_text())
            wait_for(lambda: "nodereboot_notifications_failed_total 0" not in open(os.path.join(n1.dir, "metrics.prom")).read(),
                     30, "the failures to be counted")

    def test_failed_and_blocked_too_long(self):
        """A node pending longer than BlockedTooLongSec= (a slot held elsewhere) says so once; a
        cycle given up (logind refuses every reboot, MaxAttempts=1) says "failed" with the error."""
        with Bench(["n1", "busy"]) as b:
            n1 = b.nodes["n1"]
            n1.write_config({"Notify.URL": f"{self.rx.base}/hook/{SECRET}", "Notify.CAFile": self.rx.pki.ca_crt,
                             "Notify.BlockedTooLongSec": "5s", "Reboot.MaxAttempts": "1",
                             "Notify.Events": "failed blocked-too-long"})
            hold_slot(b)
            n1.start()
            n1.wait_phase("idle", 15)
            n1.touch_sentinel()
            wait_for(lambda: self.rx.messages("hook"), 20, "the blocked-too-long message")
            time.sleep(6)
            hooks = [h for _, h in self.rx.messages("hook")]
            self.assertEqual([h["event"] for h in hooks], ["blocked-too-long"])
            self.assertIn("waiting", hooks[0]["waiting"] or "")
            n1.logind.fail_reboots()
            b.api.api("DELETE", "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/nodereboot-0", expect=200)
            wait_for(lambda: len(self.rx.messages("hook")) == 2, 60, "the failed message")
            failed = self.rx.messages("hook")[1][1]
            self.assertEqual(failed["event"], "failed")
            self.assertTrue(failed["error"], failed)
            print(f"failed: {failed['message']}")


if __name__ == "__main__":
    unittest.main(verbosity=2)
