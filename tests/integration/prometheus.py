# SPDX-License-Identifier: Apache-2.0
"""A real Prometheus server for the tests (Debian's prometheus package), and a scrape target whose
metrics a test sets. Prometheus scrapes and evaluates its rules every second, keeps its data in a
temporary folder and listens on a free loopback port."""

import http.server
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import urllib.parse
import urllib.request

from bench import wait_for


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Prometheus:
    def __init__(self, targets, rules=None):
        """targets: "host:port" scraped as job "nodereboot"; rules: the text of a rule file."""
        self.dir = tempfile.mkdtemp(prefix="prometheus-")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = ("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
                  "scrape_configs:\n- job_name: nodereboot\n  static_configs:\n"
                  f"  - targets: [{', '.join(repr(t) for t in targets)}]\n")
        if rules:
            with open(os.path.join(self.dir, "rules.yml"), "w") as f:
                f.write(rules)
            config += "rule_files:\n- rules.yml\n"
        with open(os.path.join(self.dir, "prometheus.yml"), "w") as f:
            f.write(config)
        self.log = open(os.path.join(self.dir, "log"), "w")
        self.proc = subprocess.Popen(["prometheus", f"--config.file={self.dir}/prometheus.yml",
                                      f"--storage.tsdb.path={self.dir}/data",
                                      f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                                     stdout=self.log, stderr=subprocess.STDOUT, cwd=self.dir)
        wait_for(lambda: self.query("up") is not None, 30, "Prometheus to start")

    def query(self, q):
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": q})
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                body = json.load(r)
        except OSError:
            return None
        return [(x["metric"], float(x["value"][1])) for x in body["data"]["result"]]

    def value(self, q):
        r = self.query(q)
        return r[0][1] if r else None

    def wait_value(self, q, want, timeout=30):
        return wait_for(lambda: self.value(q) == want, timeout, f"Prometheus: {q} == {want} (now {self.value(q)})")

    def alerts(self):
        """{alertname: state} of Prometheus's own alerts API, as the daemon reads it."""
        with urllib.request.urlopen(f"{self.url}/api/v1/alerts", timeout=5) as r:
            return {a["labels"]["alertname"]: a["state"] for a in json.load(r)["data"]["alerts"]}

    def close(self):
        self.proc.terminate()
        self.proc.wait(15)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Target:
    """An HTTP scrape target serving the samples of self.values ({name: value})."""

    def __init__(self, **values):
        self.values = dict(values)
        target = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = "".join(f"{k} {v}\n" for k, v in target.values.items()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
