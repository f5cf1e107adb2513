#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Scale harness: many real noderebootd processes against one test API server, rolled at once.

    /usr/bin/python3 tests/scale/scale.py --nodes N --concurrency C [--pods-per-node P]
        [--out FILE.json] [--check] [--timeout S] [--kubelet-delay S] [--config KEY=VALUE ...]
        [--server-arg ARG ...] [--log-level LEVEL] [--seed S] [--raise-inotify] [--keep]

It starts the test API server (tests/integration/kube-apiserver.py, through bench.ApiServer) with
RBAC and the admission policy enforced, seeded with N Nodes and P ReplicaSet pods per node (plus
the DaemonSet and mirror pod bench.seed_cluster puts on each); ONE private dbus-daemon with ONE
logind stand-in for all nodes (logind-standin.py: it tells the daemons apart by their pid); and N
noderebootd processes, each with its own configuration, kubeconfig and token, state folder,
sentinel, boot ID and boot time files. Once every daemon has talked to the server, it touches
every sentinel (in a shuffled order it records) and plays the machines: a daemon that asked
logind to reboot is killed, its node gets a new boot ID, its /run is emptied, the daemon starts
again, and --kubelet-delay seconds later the server's simulated kubelet of the new boot posts.
It runs until every node rebooted and its daemon is idle again, or --timeout, and always stops
every process it started.

It prints (and writes to --out as JSON) the figures README.md describes: requests per node cycle
by verb, lock hand-off latency, most nodes out of service at once, roll time against the physical
limit, API server CPU, daemon memory and fairness. With --check it exits 1 unless the safety
invariants held: never more than C nodes out of service at once, every node rebooted exactly once,
every Node schedulable at the end, no request of the ServiceAccount forbidden, no daemon crashed.
A roll that did not finish in --timeout prints the figures so far and always exits 1.

The daemon is $NODEREBOOTD or $BUILD_ROOT/daemon/noderebootd (default BUILD_ROOT: SOURCE_ROOT/build),
copied into the work folder first, so a rebuild during a run does not change it halfway.
"""

import argparse
import calendar
import collections
import hashlib
import heapq
import json
import math
import os
import random
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import bench  # noqa: E402
from bench import (PYTHON, RBAC_MANIFESTS, SERVICE_ACCOUNT, ApiServer, marks_of,  # noqa: E402
                   max_out_of_service_at_once, out_of_service_intervals, request_node, seed_cluster, wait_for)

CLK_TCK = os.sysconf("SC_CLK_TCK")
QUEUE_NAMESPACE = "nodereboot"     # [Lock] QueueNamespace= default: the lock queue's tickets
INOTIFY_INSTANCES = "/proc/sys/fs/inotify/max_user_instances"


class Aborted(Exception):
    pass


# ---- /proc ----------------------------------------------------------------------------------------

def proc_stat(pid):
    """(utime+stime in seconds, ppid) of a live process, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    fields = s[s.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK, int(fields[1])


def cpu_seconds(pid):
    st = proc_stat(pid)
    return st[0] if st else None


def children_of(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = proc_stat(int(d))
            if st and st[1] == pid:
                out.append(int(d))
    return out


def memory_kb(pid):
    """{"rss": kB, "private_dirty": kB} from /proc/PID/smaps_rollup, or None."""
    out = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("Rss", "Private_Dirty"):
                    out["rss" if key == "Rss" else "private_dirty"] = int(rest.split()[0])
    except OSError:
        return None
    return out if len(out) == 2 else None


# ---- statistics -----------------------------------------------------------------------------------

def percentile(values, p):
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    v = sorted(values)
    return v[max(0, min(len(v) - 1, math.ceil(p / 100.0 * len(v)) - 1))]


def summary(values, scale=1.0, digits=3):
    if not values:
        return None
    return {"n": len(values), "p50": round(percentile(values, 50) * scale, digits),
            "p99": round(percentile(values, 99) * scale, digits), "max": round(max(values) * scale, digits),
            "mean": round(statistics.fmean(values) * scale, digits)}


# ---- the shared logind ----------------------------------------------------------------------------

class SharedLogind:
    """One private dbus-daemon and one logind stand-in (logind-standin.py) for every node."""

    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "bus")
        os.makedirs(self.dir, exist_ok=True)
        self.socket = os.path.join(self.dir, "system_bus_socket")
        self.address = "unix:path=" + self.socket
        conf = os.path.join(self.dir, "bus.conf")
        # dbus-daemon's built-in limits (256 connections per user, 64 still authenticating, 2048 in
        # all) are a real system bus's; here every daemon runs as the same user.
        bench.write_bus_config(conf, self.address, limits="""\
  <limit name="max_completed_connections">100000</limit>
  <limit name="max_incomplete_connections">10000</limit>
  <limit name="max_connections_per_user">100000</limit>
  <limit name="max_replies_per_connection">100000</limit>
  <limit name="max_pending_service_starts">10000</limit>
  <limit name="auth_timeout">120000</limit>
""")
        self.bus_log = open(os.path.join(self.dir, "dbus-daemon.log"), "w")
        self.bus = subprocess.Popen(["dbus-daemon", "--config-file=" + conf, "--nofork", "--nopidfile"],
                                    stdout=self.bus_log, stderr=subprocess.STDOUT)
        self.standin = None
        wait_for(lambda: os.path.exists(self.socket) or self.bus.poll() is not None, 10, "the private bus")
        if self.bus.poll() is not None:
            raise RuntimeError("dbus-daemon exited; see " + self.bus_log.name)
        self.events_path = os.path.join(self.dir, "logind-events.jsonl")
        ready = os.path.join(self.dir, "logind.ready")
        self.log = open(os.path.join(self.dir, "logind-standin.log"), "w")
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.address)
        self.standin = subprocess.Popen([PYTHON, os.path.join(HERE, "logind-standin.py"),
                                         "--events", self.events_path, "--ready", ready],
                                        env=env, stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: os.path.exists(ready) or self.standin.poll() is not None, 20, "the logind stand-in")
        if self.standin.poll() is not None:
            raise RuntimeError("the logind stand-in exited; see " + self.log.name)
        self._events = open(self.events_path)
        self._partial = ""

    def poll(self):
        """The calls logind got since the last poll: [{"time", "pid", "method", "args"}]."""
        data = self._partial + self._events.read()
        lines = data.split("\n")
        self._partial = lines.pop()
        return [json.loads(line) for line in lines if line]

    def pids(self):
        return [p.pid for p in (self.bus, self.standin) if p is not None]

    def stop(self):
        for p in (self.standin, self.bus):
            if p is not None and p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.log.close()
        self.bus_log.close()


# ---- one node -------------------------------------------------------------------------------------

class Node:
    """One simulated machine: its folders and files, and its noderebootd process."""

    def __init__(self, harness, name, boot_id, boot_time):
        self.h = harness
        self.name = name
        bench.make_node_folders(self, harness.dir, name)
        self.write_boot(boot_id, boot_time)
        self.proc = None
        self.starts = 0
        self.reboots = 0
        self.crashes = []
        self.done = False
        self.samples = []   # {"when", "rss", "private_dirty", "cpu"} per daemon run, taken before it ends
        token = "token-" + name
        harness.api.add_token(token, SERVICE_ACCOUNT)
        self.kubeconfig = os.path.join(self.dir, "kubeconfig")
        bench.write_token_kubeconfig(self.kubeconfig, harness.api, name, token)
        self.config_path = os.path.join(self.dir, "nodereboot.conf")
        self.write_config(harness.config)

    def write_config(self, overrides):
        # As bench.NodeDaemon.write_config, at a quieter log level.
        bench.write_node_config(self.config_path, self.name, self.kubeconfig, self.sentinel, self.dpkg_dir,
                                overrides, log_level="info")

    def write_boot(self, boot_id, boot_time):
        self.boot_id = boot_id
        bench.write_boot_files(self, boot_id, boot_time)

    def start(self):
        self.starts += 1
        env = dict(self.h.daemon_env, NODEREBOOT_BOOT_ID_FILE=self.boot_id_file,
                   NODEREBOOT_BOOT_TIME_FILE=self.boot_time_file)
        with open(os.path.join(self.dir, f"daemon-{self.starts}.log"), "wb") as log:
            self.proc = subprocess.Popen([self.h.daemon, "--config", self.config_path, "--state-dir", self.state_dir],
                                         env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.h.by_pid[self.proc.pid] = self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def sample(self, when):
        mem = memory_kb(self.proc.pid)
        cpu = cpu_seconds(self.proc.pid)
        if mem is not None and cpu is not None:
            self.samples.append(dict(mem, when=when, cpu=cpu))

    def kill(self, sig=signal.SIGKILL):
        if self.running():
            self.proc.send_signal(sig)
            self.proc.wait(15)

    def phase(self):
        try:
            with open(os.path.join(self.state_dir, "state")) as f:
                return json.load(f).get("phase")
        except FileNotFoundError:
            return "idle"
        except (OSError, ValueError):
            return None

    def touch_sentinel(self):
        with open(self.sentinel, "w") as f:
            f.write("*** System restart required ***\n")

    def log_tail(self, lines=40):
        try:
            with open(os.path.join(self.dir, f"daemon-{self.starts}.log"), errors="replace") as f:
                return "\n".join(line[:300] for line in f.read().splitlines()[-lines:])
        except OSError as e:
            return str(e)


# ---- the request log ------------------------------------------------------------------------------

def reduce_entry(e):
    """What the figures need of one request log entry (the bodies would take gigabytes)."""
    body = e.get("body") if isinstance(e.get("body"), dict) else {}
    spec = body.get("spec") if isinstance(body.get("spec"), dict) else {}
    r = {"seq": e["seq"], "time": e["time"], "method": e["method"], "path": e.get("path"), "verb": e.get("verb"),
         "resource": e.get("resource"), "name": e.get("name"), "namespace": e.get("namespace"),
         "status": e.get("status"), "user": e.get("user"), "user_agent": e.get("user_agent"),
         "node": request_node(e), "fault": bool(e.get("fault")),
         "denied": (e.get("admission") or {}).get("denied")}
    if r["resource"] == "nodes" and e["method"] == "PATCH" and "unschedulable" in spec:
        r["unschedulable"] = spec["unschedulable"]
    if r["resource"] == "leases" and e["method"] in ("PUT", "POST"):
        r["holder"] = spec.get("holderIdentity") or ""
        if r["namespace"] == QUEUE_NAMESPACE:
            # a ticket in the lock queue: dated when the node's daemon saw its reboot required
            r["since"] = spec.get("acquireTime")
    return r


def parse_time(s):
    """An RFC 3339 time with or without fractions, as seconds since the epoch; None when unreadable."""
    try:
        head, _, frac = s.rstrip("Z").partition(".")
        return calendar.timegm(time.strptime(head, "%Y-%m-%dT%H:%M:%S")) + (float("0." + frac) if frac else 0.0)
    except (AttributeError, ValueError):
        return None


def overtaken_counts(asked, got):
    """For each node that got a slot: how many nodes that asked after it got theirs before it.
    asked and got map node -> a sortable time; O(n log n) with a Fenwick tree over slot ranks."""
    nodes = [n for n in got if n in asked]
    rank = {n: i for i, n in enumerate(sorted(nodes, key=lambda n: got[n]))}
    tree = [0] * (len(nodes) + 1)
    out = {}
    # walk from the latest asker back: count those already seen (asked later) with a lower slot rank
    for n in sorted(nodes, key=lambda n: asked[n], reverse=True):
        i, c = rank[n], 0
        while i > 0:
            c += tree[i]
            i -= i & -i
        out[n] = c
        i = rank[n] + 1
        while i <= len(nodes):
            tree[i] += 1
            i += i & -i
    return out


# ---- the harness ----------------------------------------------------------------------------------

class Harness:
    def __init__(self, args):
        self.args = args
        self.n = args.nodes
        self.c = args.concurrency
        self.names = [f"node-{i:04d}" for i in range(1, self.n + 1)]
        self.config = {"Lock.Concurrency": str(self.c), "Daemon.LogLevel": args.log_level}
        for kv in args.config:
            k, sep, v = kv.partition("=")
            if not sep or "." not in k:
                raise SystemExit(f"--config wants SECTION.KEY=VALUE, got {kv!r}")
            self.config[k] = v
        self.dir = args.workdir or tempfile.mkdtemp(prefix="nodereboot-scale-")
        os.makedirs(self.dir, exist_ok=True)
        self.api = None
        self.logind = None
        self.nodes = {}
        self.by_pid = {}
        self.log = []
        self.log_seq = 0
        self.log_gaps = 0
        self.logind_calls = collections.Counter()
        self.stale_reboot_calls = 0
        self.kubelets_due = []
        self.timed_out = None
        self.inotify_restore = None
        self.notes = []

    # -- setup --
    def note(self, text):
        print("scale:", text, flush=True)
        self.notes.append(text)

    def raise_limits(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        self.fd_limit = hard
        try:
            with open(INOTIFY_INSTANCES) as f:
                limit = int(f.read())
        except (OSError, ValueError):
            return
        self.inotify_limit = limit
        need = 2 * self.n + 64   # two inotify instances per daemon: the sentinel and the request file
        if limit >= need:
            return
        if self.args.raise_inotify:
            try:
                with open(INOTIFY_INSTANCES, "w") as f:
                    f.write(str(need))
                self.inotify_restore = limit
                self.inotify_limit = need
                self.note(f"raised {INOTIFY_INSTANCES} from {limit} to {need} (restored at exit)")
                return
            except OSError as e:
                self.note(f"cannot raise {INOTIFY_INSTANCES}: {e}")
        self.note(f"{INOTIFY_INSTANCES} is {limit}: beyond ~{limit - 8} daemons the sentinel is polled every "
                  "10 s instead of watched (two inotify instances per daemon, all as one user); "
                  "--raise-inotify raises it")

    def check_rbac(self):
        """The packaged Role grants get/update on the slot Leases by name; a slot beyond those names
        can be created (create cannot be narrowed by name) but never renewed or released."""
        import yaml
        with open(RBAC_MANIFESTS) as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        names = set()
        for d in docs:
            if d.get("kind") == "Role":
                for rule in d.get("rules") or []:
                    if "leases" in (rule.get("resources") or []) and "update" in (rule.get("verbs") or []):
                        names.update(rule.get("resourceNames") or [])
        if names and self.c > len(names):
            self.note(f"Concurrency={self.c} but {os.path.relpath(RBAC_MANIFESTS, bench.SOURCE_ROOT)} lets the "
                      f"daemons update only {len(names)} slot Leases by name: the other slots will be created, "
                      "then every renew and release is forbidden (403)")

    def setup(self):
        self.raise_limits()
        self.check_rbac()
        src = bench.daemon_binary()
        os.makedirs(os.path.join(self.dir, "bin"), exist_ok=True)
        self.daemon = os.path.join(self.dir, "bin", "noderebootd")
        shutil.copy2(src, self.daemon)
        self.daemon_source = src
        with open(self.daemon, "rb") as f:
            self.daemon_sha256 = hashlib.sha256(f.read()).hexdigest()
        self.daemon_mtime = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(os.stat(self.daemon).st_mtime))
        try:
            self.source_commit = subprocess.run(["git", "-C", bench.SOURCE_ROOT, "rev-parse", "--short", "HEAD"],
                                                capture_output=True, text=True, timeout=10).stdout.strip() or None
        except OSError:
            self.source_commit = None
        print(f"scale: daemon {src} (built {self.daemon_mtime}, sha256 {self.daemon_sha256[:12]}); "
              f"source HEAD {self.source_commit}", flush=True)
        server_args = ["--rbac-manifests", RBAC_MANIFESTS] + self.timing_args() + list(self.args.server_arg)
        self.server_args = server_args
        t = time.monotonic()
        self.api = ApiServer(self.dir, seed_cluster(self.names, replicas_per_node=self.args.pods_per_node), server_args)
        self.server_pid = self.api.proc.pid
        if not self.args.no_admission:
            self.api.apply_admission_policy(*marks_of(self.config))
        self.logind = SharedLogind(self.dir)
        self.daemon_env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.logind.address)
        for k in ("JOURNAL_STREAM", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "STATE_DIRECTORY",
                  "INVOCATION_ID", "LISTEN_FDS", "LISTEN_PID"):
            self.daemon_env.pop(k, None)
        kubelets = {k["node"]: k for k in self.api.control("GET", "/kubelets")}
        for name in self.names:
            k = kubelets[name]
            # The machine is in the boot its kubelet reports; it started a moment before the kubelet.
            self.nodes[name] = Node(self, name, k["boot_id"], k["started"] - 1.0)
        self.setup_seconds = time.monotonic() - t
        print(f"scale: server, bus and {self.n} node folders ready in {self.setup_seconds:.1f} s "
              f"(work folder {self.dir})", flush=True)

    def timing_args(self):
        """The simulated kubelets post every node's status and Lease every
        --node-status-update-frequency s, all under one lock on the server's timer thread; with
        hundreds of nodes that alone fills a core, the heartbeats fall behind and the lifecycle
        controller marks healthy Nodes Unknown. Stretch the periods with the fleet (at most
        the real defaults: 10 s, grace 40 s, monitor 5 s)."""
        f = min(10.0, max(1.0, self.n / 100.0))
        if f == 1.0:
            return []
        return ["--node-status-update-frequency", f"{f:g}", "--node-monitor-grace-period", f"{4 * f:g}",
                "--node-monitor-period", f"{0.5 * f:g}", "--watch-cache-size", str(max(1000, 20 * self.n))]

    def overtaken_detail(self, counts, asked, got, most=50):
        t0 = self.touch_time
        rel = lambda t: round(t - t0, 3) if isinstance(t, float) else t  # noqa: E731
        out = []
        for n in sorted((n for n, c in counts.items() if c), key=lambda n: got[n])[:most]:
            later = sorted((m for m in got if m in asked and asked[m] > asked[n] and got[m] < got[n]),
                           key=lambda m: got[m])
            out.append([n, rel(asked[n]), rel(got[n]), [[m, rel(asked[m]), rel(got[m])] for m in later[:5]]])
        return out

    # -- the request log --
    def pull_log(self):
        entries = self.api.control("GET", f"/log?since={self.log_seq}")
        if entries:
            if entries[0]["seq"] != self.log_seq + 1:
                self.log_gaps += entries[0]["seq"] - self.log_seq - 1
            self.log_seq = entries[-1]["seq"]
            self.log.extend(reduce_entry(e) for e in entries)
        return len(entries)

    def start_daemons(self):
        t = time.monotonic()
        for i, node in enumerate(self.nodes.values()):
            node.start()
            if i % 50 == 49:
                time.sleep(0.05)
        started = time.monotonic() - t
        # Until every daemon has talked to the server, then a quiet moment.
        deadline = time.monotonic() + 120 + 0.3 * self.n
        seen = set()
        while True:
            self.pull_log()
            seen.update(e["node"] for e in self.log if e["node"])
            self.check_exits()
            if len(seen) >= self.n:
                break
            if time.monotonic() > deadline:
                raise Aborted(f"only {len(seen)} of {self.n} daemons reached the API server in time")
            time.sleep(0.5)
        time.sleep(3)
        self.pull_log()
        print(f"scale: {self.n} daemons started in {started:.1f} s, all reached the server "
              f"{time.monotonic() - t:.1f} s after the first start", flush=True)

    # -- an idle fleet --
    def idle(self, seconds):
        """No reboot required anywhere: for seconds, what the daemons ask the API server and how
        often their processes wake up (context switches, from /proc/PID/status)."""
        def switches(pid):
            n = 0
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                            n += int(line.split()[1])
            except OSError:
                return None
            return n

        self.pull_log()
        seq = self.log_seq
        before = {name: switches(node.proc.pid) for name, node in self.nodes.items()}
        time.sleep(seconds)
        self.pull_log()
        self.check_exits()
        after = {name: switches(node.proc.pid) for name, node in self.nodes.items()}
        requests = [e for e in self.log if e["seq"] > seq and e["node"]]
        woke = {n: after[n] - before[n] for n in self.nodes
                if before[n] is not None and after[n] is not None and after[n] != before[n]}
        return {"nodes": self.n, "seconds": seconds, "requests": len(requests),
                "requests_by_verb": dict(collections.Counter(e["verb"] for e in requests)),
                "daemons_that_woke": len(woke), "wakeups": sum(woke.values()),
                "wakeups_max": max(woke.values(), default=0),
                "crashed": sum(1 for n in self.nodes.values() if n.crashes)}

    # -- the machines --
    def check_exits(self):
        for node in self.nodes.values():
            if node.proc is not None and node.proc.poll() is not None:
                rc = node.proc.returncode
                node.crashes.append(rc)
                print(f"scale: {node.name}: daemon exited on its own (status {rc}); last log lines:\n"
                      f"{node.log_tail(15)}", flush=True)
                if len(node.crashes) > 3:
                    raise Aborted(f"{node.name}'s daemon keeps exiting")
                node.start()   # as systemd's Restart=on-failure would

    def reboot(self, node):
        node.sample("before-reboot")
        node.kill(signal.SIGKILL)
        node.reboots += 1
        node.done = False
        self.api.kubelet_stop(node.name)
        node.write_boot(str(uuid.uuid4()), time.time())
        for p in (node.sentinel, node.sentinel + ".pkgs"):     # /run is a tmpfs
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass
        node.start()
        heapq.heappush(self.kubelets_due, (time.monotonic() + self.args.kubelet_delay, node.name, node.boot_id))

    def roll(self):
        order = list(self.names)
        random.Random(self.args.seed).shuffle(order)
        self.cpu_before = self.cpu_snapshot()
        self.seq_touch = self.log_seq
        self.touch_time = time.time()
        self.touch_order = {}
        t0 = time.monotonic()
        touches = collections.deque((t0 + i * self.args.touch_interval, name) for i, name in enumerate(order))

        def touch_due(now):
            while touches and touches[0][0] <= now:
                _, name = touches.popleft()
                self.nodes[name].touch_sentinel()
                self.touch_order[name] = len(self.touch_order)
        touch_due(t0)
        print(f"scale: touching {self.n} sentinels in a shuffled order, {self.args.touch_interval * 1000:g} ms apart "
              f"(the first {len(self.touch_order)} in {(time.monotonic() - t0) * 1000:.0f} ms); rolling "
              f"(Concurrency={self.c}, timeout {self.args.timeout:.0f} s)", flush=True)
        deadline = time.monotonic() + self.args.timeout
        next_check = next_log = next_progress = time.monotonic()
        last = (0.0, 0)
        while True:
            now = time.monotonic()
            touch_due(now)
            for ev in self.logind.poll():
                self.logind_calls[ev["method"]] += 1
                if ev["method"] not in ("RebootWithFlags", "Reboot"):
                    continue
                node = self.by_pid.get(ev["pid"])
                if node is not None and node.running() and node.proc.pid == ev["pid"]:
                    self.reboot(node)
                else:
                    self.stale_reboot_calls += 1
            while self.kubelets_due and self.kubelets_due[0][0] <= now:
                _, name, boot = heapq.heappop(self.kubelets_due)
                if self.nodes[name].boot_id == boot:
                    self.api.kubelet_start(name, boot)
            if now >= next_check:
                next_check = now + 0.5
                self.check_exits()
                for node in self.nodes.values():
                    if node.reboots >= 1 and not node.done and node.phase() == "idle":
                        node.done = True
                if not touches and all(n.done for n in self.nodes.values()):
                    break
            if now >= next_log:
                next_log = now + 5.0
                self.pull_log()
            if now >= next_progress:
                next_progress = now + 30.0
                rebooted = sum(1 for n in self.nodes.values() if n.reboots)
                done = sum(1 for n in self.nodes.values() if n.done)
                cpu = (cpu_seconds(self.server_pid) or 0.0) - self.cpu_before["server"]
                reqs = self.log_seq - self.seq_touch
                print(f"scale: {now - t0:6.0f} s: {rebooted} rebooted, {done} back and idle; server CPU {cpu:.0f} s "
                      f"({cpu - last[0]:.0f} s in the last 30 s), {reqs} requests ({(reqs - last[1]) / 30:.0f}/s)",
                      flush=True)
                last = (cpu, reqs)
            if now > deadline:
                phases = collections.Counter(n.phase() for n in self.nodes.values() if not n.done)
                self.timed_out = (f"timed out after {self.args.timeout:.0f} s: "
                                  f"{sum(1 for n in self.nodes.values() if n.reboots)} of {self.n} rebooted, "
                                  f"{sum(1 for n in self.nodes.values() if n.done)} back and idle; "
                                  f"the others' phases: {dict(phases)}")
                print("scale:", self.timed_out, flush=True)
                break
            time.sleep(0.02)
        self.roll_seconds = time.monotonic() - t0
        self.done_time = time.time()
        if not self.timed_out:
            print(f"scale: every node rebooted and idle after {self.roll_seconds:.1f} s", flush=True)

    def cpu_snapshot(self):
        out = {"server": cpu_seconds(self.server_pid) or 0.0,
               "server_children": sum(cpu_seconds(p) or 0.0 for p in children_of(self.server_pid)),
               "bus": sum(cpu_seconds(p) or 0.0 for p in self.logind.pids()),
               "harness": sum(resource.getrusage(resource.RUSAGE_SELF)[:2])}
        return out

    # -- the end --
    def collect(self):
        time.sleep(1.0)   # the last releases and uncordons reach the log
        for node in self.nodes.values():
            if node.running():
                node.sample("end")
        if self.timed_out:   # a quiet server for the reading, and no more changes to read
            for node in self.nodes.values():
                node.kill(signal.SIGKILL)
        self.pull_log()
        self.cpu_after = self.cpu_snapshot()
        self.timeline = self.api.timeline(kubelets=True)
        self.final_nodes = {n["metadata"]["name"]: n for n in self.api.get("/api/v1/nodes")["items"]}
        self.final_kubelets = {k["node"]: k for k in self.api.control("GET", "/kubelets")}
        self.holders = {k: v for k, v in self.api.lease_holders().items() if v}
        self.denials = [d for d in self.api.denials() if d["user"] == SERVICE_ACCOUNT]

    def forbidden(self):
        """As bench.Bench.forbidden: the authorizer's denials, unexplained 403s, admission refusals."""
        out = [f"{d['method']} {d['path']} ({d.get('user_agent')}): {d['message']}" for d in self.denials]
        seen = {(d["time"], d["path"]) for d in self.denials}
        for e in self.log:
            if e["user"] != SERVICE_ACCOUNT:
                continue
            if e["denied"]:
                out.append(f"{e['method']} {e['path']} ({e['user_agent']}): HTTP {e['status']}: {e['denied']}")
            elif e["status"] == 403 and not e["fault"] and (e["time"], e.get("path")) not in seen:
                out.append(f"{e['method']} {e['path']} ({e['user_agent']}): HTTP 403")
        return out

    def figures(self):
        a = self.args
        names = set(self.names)
        f = {"nodes": self.n, "concurrency": self.c, "pods_per_node": a.pods_per_node,
             "kubelet_delay_s": a.kubelet_delay, "touch_interval_s": a.touch_interval, "daemon": self.daemon_source,
             "daemon_built": self.daemon_mtime, "daemon_sha256": self.daemon_sha256,
             "source_commit": self.source_commit,
             "config": self.config,
             "server_args": self.server_args, "seed": a.seed, "inotify_instances": getattr(self, "inotify_limit", None),
             "fd_limit": self.fd_limit, "setup_s": round(self.setup_seconds, 1), "notes": self.notes}

        # Per node cycle: per reboot played (N, unless the roll timed out).
        cycles_done = max(1, sum(n.reboots for n in self.nodes.values()))
        f["node_cycles"] = cycles_done
        # Requests: the daemons' (by User-Agent), from the touch on; watches apart.
        mine = [e for e in self.log if e["node"] in names]
        cycle = [e for e in mine if e["seq"] > self.seq_touch]
        startup = [e for e in mine if e["seq"] <= self.seq_touch]
        watches = [e for e in cycle if e["verb"] == "watch"]
        calls = [e for e in cycle if e["verb"] != "watch"]
        by_verb = collections.Counter(e["verb"] for e in calls)
        # "nodes (own)": a node's requests about its own Node; "nodes": about other Nodes.
        by_kind = collections.Counter(f"{e['verb']} {e['resource']}"
                                      + (" (own)" if e["resource"] == "nodes" and e["name"] == e["node"] else "")
                                      + (" (queue)" if e["resource"] == "leases" and e["namespace"] == QUEUE_NAMESPACE
                                         else "")
                                      for e in cycle)
        by_status = collections.Counter(str(e["status"]) for e in cycle)
        per_node = collections.Counter(e["node"] for e in calls)
        f["requests"] = {
            "per_node_cycle": round(len(calls) / cycles_done, 2),
            "watches_per_node_cycle": round(len(watches) / cycles_done, 2),
            "by_verb_per_node_cycle": {k: round(v / cycles_done, 2) for k, v in sorted(by_verb.items())},
            "by_verb_and_resource_per_node_cycle": {k: round(v / cycles_done, 2) for k, v in by_kind.most_common()},
            "by_status": dict(sorted(by_status.items())),
            "per_node": {"p50": percentile(list(per_node.values()), 50), "max": max(per_node.values(), default=0)},
            "startup_per_node": round(len(startup) / self.n, 2),
            "total_in_roll": len(cycle), "log_entries_lost": self.log_gaps,
            # every request that was refused in the roll: [s after the touch, node, method, namespace/name, status]
            "refused": [[round(e["time"] - self.touch_time, 3), e["node"], e["method"],
                         f"{e['resource']} {e['namespace'] or ''}/{e['name'] or ''}", e["status"]]
                        for e in cycle if (e["status"] or 0) >= 400][:200],
        }
        f["logind_calls_per_node_cycle"] = {k: round(v / cycles_done, 2) for k, v in sorted(self.logind_calls.items())}

        # Lock hand-off: a release (PUT of a lease with an empty holder) to the next cordon.
        cordons = sorted((c["time"], c["node"]) for c in self.timeline
                         if c["node"] in names and c.get("unschedulable") is True)
        releases = sorted(e["time"] for e in cycle if e["resource"] == "leases" and e["method"] == "PUT"
                          and e.get("holder") == "" and (e["status"] or 0) < 300)
        gaps, j = [], 0
        for t in releases:   # each cordon answers at most one release
            while j < len(cordons) and cordons[j][0] < t:
                j += 1
            if j < len(cordons):
                gaps.append(cordons[j][0] - t)
                j += 1
        f["handoff_ms"] = summary(gaps, 1000, 1)
        f["releases"] = len(releases)

        # Out of service, cycle times, roll time against the limit.
        intervals = out_of_service_intervals(self.timeline, names, now=time.time())
        f["max_out_of_service"] = max_out_of_service_at_once(self.timeline, names)
        # Nodes that came back only: an unfinished roll leaves others out of service until now.
        cycles = [max(e - s for s, e in iv) for n, iv in intervals.items() if iv and self.nodes[n].done]
        f["cycle_s"] = summary(cycles, 1, 2)
        f["nodes_with_several_outages"] = sum(1 for iv in intervals.values() if len(iv) > 1)
        last_back = max((e for iv in intervals.values() for _, e in iv), default=self.done_time)
        roll = last_back - self.touch_time
        limit = cycles_done / self.c * statistics.median(cycles) if cycles else None
        if self.timed_out:
            roll = self.done_time - self.touch_time
        # The cycles as they ran (slowed down by a loaded server, for one) fill the C slots for
        # at least their sum / C: what the roll took beyond that, the slots stood idle.
        busy = sum(cycles) / self.c if cycles else None
        f["roll"] = {"timed_out": self.timed_out, "seconds": round(roll, 1),
                     "limit_seconds": round(limit, 1) if limit else None,
                     "ratio": round(roll / limit, 2) if limit else None,
                     "busy_seconds": round(busy, 1) if busy else None,
                     "busy_ratio": round(roll / busy, 3) if busy else None,
                     "harness_seconds": round(self.roll_seconds, 1)}

        # CPU during the roll.
        d = {k: round(self.cpu_after[k] - self.cpu_before[k], 1) for k in self.cpu_before}
        daemon_cpu = sum(s["cpu"] for n in self.nodes.values() for s in n.samples)
        served = sum(1 for e in self.log if e["seq"] > self.seq_touch)   # every client's
        f["cpu_s"] = dict(d, server_total=round(self.cpu_after["server"], 1),
                          server_per_node_cycle_ms=round(d["server"] / cycles_done * 1000, 1),
                          server_share_of_roll=round(d["server"] / roll, 2) if roll > 0 else None,
                          daemons_total=round(daemon_cpu, 1),
                          daemons_per_node_ms=round(daemon_cpu / self.n * 1000, 1),
                          server_requests_per_cpu_s=round(served / d["server"]) if d["server"] else None)

        # Daemon memory, before the reboot (after waiting through the queue) and idle at the end.
        mem = {}
        for when in ("before-reboot", "end"):
            ss = [s for n in self.nodes.values() for s in n.samples if s["when"] == when]
            if ss:
                mem[when] = {k: {"p50_kb": percentile([s[k] for s in ss], 50), "max_kb": max(s[k] for s in ss)}
                             for k in ("rss", "private_dirty")}
                mem[when]["n"] = len(ss)
        f["daemon_memory"] = mem

        # Fairness: the order nodes got a slot against the order their reboots became required. A
        # daemon dates its ticket in the lock queue with the moment it saw its sentinel; without a
        # ticket (the queue off) the harness's own touch order stands in.
        got = {}
        for e in cycle:
            if (e["resource"] == "leases" and e["namespace"] != QUEUE_NAMESPACE and e["method"] in ("PUT", "POST")
                    and (e["status"] or 0) < 300 and e.get("holder") == e["node"] and e["node"] not in got):
                got[e["node"]] = e["time"]
        for t, node in cordons:
            got.setdefault(node, t)
        required = {}
        for e in cycle:
            if e.get("since") and e["node"] not in required and (e["status"] or 0) < 300:
                t = parse_time(e["since"])
                if t is not None:
                    required[e["node"]] = t
        by_touch = overtaken_counts(self.touch_order, got)
        by_required = overtaken_counts(required, got) if len(required) == len(got) else None
        judged = by_required if by_required is not None else by_touch
        worst = max(judged, key=judged.get) if judged else None
        pairs = max(1, len(judged) * (len(judged) - 1) / 2)
        f["fairness"] = {"judged_by": "ticket" if by_required is not None else "touch",
                         "max_overtaken_by": judged.get(worst, 0), "worst_node": worst,
                         "nodes_overtaken": sum(1 for v in judged.values() if v),
                         "mean_overtaken_by": round(statistics.fmean(judged.values()), 2) if judged else None,
                         "inverted_pairs": round(sum(judged.values()) / pairs, 4),
                         "by_touch_order": {"max_overtaken_by": max(by_touch.values(), default=0),
                                            "inverted_pairs": round(sum(by_touch.values()) / pairs, 4)},
                         # each overtaken node: [node, when it asked, when it got its slot (s after the
                         # touch), and the nodes that asked later and got theirs earlier, likewise]
                         "first_slots_s": [round(t - self.touch_time, 3) for t in sorted(got.values())[:2 * self.c]],
                         "overtaken": self.overtaken_detail(judged, required if by_required is not None
                                                            else self.touch_order, got),
                         # [node, touch rank, slot rank] in touch order
                         "order": [[n, self.touch_order[n], sorted(got, key=got.get).index(n) if n in got else None]
                                   for n in sorted(self.touch_order, key=self.touch_order.get)]}

        # Safety.
        reboots = collections.Counter(n.reboots for n in self.nodes.values())
        cordoned = sorted(n for n, o in self.final_nodes.items()
                          if n in names and (o.get("spec") or {}).get("unschedulable"))
        wrong_boot = sorted(n for n, node in self.nodes.items()
                            if (self.final_kubelets.get(n) or {}).get("boot_id") != node.boot_id)
        forbidden = self.forbidden()
        f["safety"] = {"reboots_per_node": {str(k): v for k, v in sorted(reboots.items())},
                       "cordoned_at_end": cordoned, "kubelet_not_in_new_boot": wrong_boot,
                       "lease_holders_at_end": self.holders, "forbidden": forbidden[:20],
                       "forbidden_count": len(forbidden),
                       "daemon_crashes": {n.name: n.crashes for n in self.nodes.values() if n.crashes},
                       "stale_reboot_calls": self.stale_reboot_calls}
        return f

    def check(self, f):
        s = f["safety"]
        problems = []
        if self.timed_out:
            problems.append(self.timed_out)
        if f["max_out_of_service"] > self.c:
            problems.append(f"{f['max_out_of_service']} nodes out of service at once (Concurrency={self.c})")
        if s["reboots_per_node"] != {"1": self.n}:
            problems.append(f"reboots per node {s['reboots_per_node']}, want each node once")
        if s["cordoned_at_end"]:
            problems.append(f"cordoned at the end: {s['cordoned_at_end'][:10]}")
        if s["kubelet_not_in_new_boot"]:
            problems.append(f"kubelet not in the new boot: {s['kubelet_not_in_new_boot'][:10]}")
        if s["forbidden_count"]:
            problems.append(f"{s['forbidden_count']} forbidden request(s); first: {s['forbidden'][0]}")
        if s["daemon_crashes"]:
            problems.append(f"daemons exited on their own: {s['daemon_crashes']}")
        return problems

    def close(self, keep=False):
        alive = [n for n in self.nodes.values() if n.running()]
        for n in alive:
            n.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for n in alive:
            try:
                n.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                n.proc.kill()
                n.proc.wait()
        if self.logind is not None:
            self.logind.stop()
        if self.api is not None:
            self.api.stop()
        if self.inotify_restore is not None:
            try:
                with open(INOTIFY_INSTANCES, "w") as f:
                    f.write(str(self.inotify_restore))
            except OSError as e:
                print(f"scale: cannot restore {INOTIFY_INSTANCES}: {e}")
        if keep:
            print("scale: work folder kept in", self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def print_figures(f):
    r = f["requests"]
    print(f"\n===== scale: {f['nodes']} nodes, Concurrency={f['concurrency']}, "
          f"{f['pods_per_node']} pods per node =====")
    print(f"requests per node cycle: {r['per_node_cycle']} (+ {r['watches_per_node_cycle']} watches); "
          f"startup {r['startup_per_node']} per node; {r['total_in_roll']} in the roll"
          + (f"; {r['log_entries_lost']} LOST from the server's log" if r["log_entries_lost"] else ""))
    print("  by verb:      " + ", ".join(f"{k} {v}" for k, v in r["by_verb_per_node_cycle"].items()))
    print("  by resource:  " + ", ".join(f"{k} {v}" for k, v in r["by_verb_and_resource_per_node_cycle"].items()))
    print("  by status:    " + ", ".join(f"{k}: {v}" for k, v in r["by_status"].items()))
    print(f"  per node:     p50 {r['per_node']['p50']}, max {r['per_node']['max']}")
    print("logind calls per node cycle: " + ", ".join(f"{k} {v}" for k, v in f["logind_calls_per_node_cycle"].items()))
    h = f["handoff_ms"]
    print("hand-off release -> next cordon: " + (f"p50 {h['p50']} ms, p99 {h['p99']} ms, max {h['max']} ms "
                                                 f"({h['n']} of {f['releases']} releases)" if h else "none"))
    print(f"most nodes out of service at once: {f['max_out_of_service']} (Concurrency {f['concurrency']})")
    c = f["cycle_s"]
    if c:
        print(f"cycle (cordon -> back in service): p50 {c['p50']} s, p99 {c['p99']} s, max {c['max']} s")
    ro = f["roll"]
    print(f"roll: {'TIMED OUT, ' if ro['timed_out'] else ''}{ro['seconds']} s; "
          f"limit {f['node_cycles']} node cycles / C "
          f"x median cycle = {ro['limit_seconds']} s; ratio {ro['ratio']}")
    if ro.get("busy_seconds"):
        print(f"      against the cycles as they ran: sum of cycles / C = {ro['busy_seconds']} s; "
              f"ratio {ro['busy_ratio']} (the rest the slots stood idle)")
    cpu = f["cpu_s"]
    print(f"CPU in the roll: API server {cpu['server']} s ({cpu['server_per_node_cycle_ms']} ms per node cycle, "
          f"{cpu['server_share_of_roll']} of a core, {cpu['server_requests_per_cpu_s']} requests per CPU s), "
          f"its CEL helper {cpu['server_children']} s, bus + logind "
          f"{cpu['bus']} s, harness {cpu['harness']} s, daemons {cpu['daemons_total']} s "
          f"({cpu['daemons_per_node_ms']} ms per node)")
    for when, m in f["daemon_memory"].items():
        print(f"daemon memory ({when}, {m['n']} daemons): RSS p50 {m['rss']['p50_kb']} kB max {m['rss']['max_kb']} kB; "
              f"Private_Dirty p50 {m['private_dirty']['p50_kb']} kB max {m['private_dirty']['max_kb']} kB")
    fa = f["fairness"]
    asked = "whose reboot became required later" if fa["judged_by"] == "ticket" else "touched later"
    print(f"fairness: at most {fa['max_overtaken_by']} nodes {asked} got a slot earlier ({fa['worst_node']}); "
          f"{fa['nodes_overtaken']} nodes overtaken at all; {fa['inverted_pairs']} of all pairs inverted "
          f"(against the harness's touch order: at most {fa['by_touch_order']['max_overtaken_by']}, "
          f"{fa['by_touch_order']['inverted_pairs']} of pairs)")
    s = f["safety"]
    print(f"safety: reboots per node {s['reboots_per_node']}; cordoned at end {len(s['cordoned_at_end'])}; "
          f"forbidden {s['forbidden_count']}; crashes {len(s['daemon_crashes'])}; lease holders at end "
          f"{len(s['lease_holders_at_end'])}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, required=True)
    ap.add_argument("--concurrency", type=int, required=True)
    ap.add_argument("--pods-per-node", type=int, default=2, help="ReplicaSet pods per node (bench.seed_cluster)")
    ap.add_argument("--out", help="write the figures here as JSON")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 unless the safety invariants held (an unfinished roll always exits 1)")
    ap.add_argument("--timeout", type=float, default=1200, help="for the roll, in s")
    ap.add_argument("--kubelet-delay", type=float, default=2.0,
                    help="s from a rebooted node's daemon start to its kubelet's post")
    ap.add_argument("--config", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="nodereboot.conf override for every node")
    ap.add_argument("--server-arg", action="append", default=[], metavar="ARG",
                    help="passed on to kube-apiserver.py (use --server-arg=--flag --server-arg=VALUE)")
    ap.add_argument("--touch-interval", type=float, default=0.0,
                    help="s between two sentinels (default 0: all at once, in a shuffled order)")
    ap.add_argument("--log-level", default="info")
    ap.add_argument("--seed", type=int, default=1, help="for the order the sentinels are touched in")
    ap.add_argument("--no-admission", action="store_true", help="do not apply the admission policy")
    ap.add_argument("--raise-inotify", action="store_true",
                    help=f"raise {INOTIFY_INSTANCES} for the run if it is below N + 64 (root only)")
    ap.add_argument("--workdir", help="default: a new folder under $TMPDIR")
    ap.add_argument("--idle", type=float, metavar="SECONDS",
                    help="touch no sentinel: count the daemons' requests and wake-ups for SECONDS once they "
                         "all started (with --check: fail unless both are 0)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (always kept on failure "
                    "when NODEREBOOT_KEEP_BENCH=1)")
    args = ap.parse_args()
    if args.nodes < 1 or args.concurrency < 1:
        ap.error("--nodes and --concurrency must be positive")

    def on_signal(signum, frame):
        raise Aborted(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    h = Harness(args)
    failed = True
    try:
        h.setup()
        h.start_daemons()
        if args.idle is not None:
            f = h.idle(args.idle)
            print(f"idle fleet: {f['nodes']} daemons, {f['seconds']:g} s: {f['requests']} requests "
                  f"{f['requests_by_verb']}, {f['daemons_that_woke']} daemons woke up "
                  f"({f['wakeups']} context switches in all, at most {f['wakeups_max']}), "
                  f"{f['crashed']} crashed", flush=True)
            if args.out:
                with open(args.out, "w") as out:
                    json.dump(f, out, indent=1)
                    out.write("\n")
            failed = args.check and (f["requests"] or f["wakeups"] or f["crashed"])
            return 1 if failed else 0
        h.roll()
        h.collect()
        f = h.figures()
        print_figures(f)
        problems = h.check(f)
        f["problems"] = problems
        if args.out:
            with open(args.out, "w") as out:
                json.dump(f, out, indent=1)
                out.write("\n")
        for p in problems:
            print("SAFETY:", p)
        failed = bool(problems) and (args.check or h.timed_out is not None)
        return 1 if failed else 0
    except (Aborted, AssertionError, RuntimeError, OSError, urllib.error.URLError) as e:
        print(f"scale: FAILED: {type(e).__name__}: {e}", flush=True)
        stuck = [n for n in h.nodes.values() if not n.done][:5]
        for n in stuck:
            print(f"===== {n.name} (phase {n.phase()}, reboots {n.reboots}): last daemon log lines =====")
            print(n.log_tail(30))
        return 1
    finally:
        h.close(keep=args.keep or (failed and os.environ.get("NODEREBOOT_KEEP_BENCH") == "1"))


if __name__ == "__main__":
    sys.exit(main())
