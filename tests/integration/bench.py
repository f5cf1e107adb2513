# SPDX-License-Identifier: Apache-2.0
"""The integration test bench: the test API server, one logind mock per node on a private bus,
and real noderebootd processes, one per simulated node.

A node's "reboot" is simulated the way the real one looks to the daemon: the process dies, the
boot ID changes, the sentinel (on /run, a tmpfs) is gone, the node's kubelet stops (the server's
simulated kubelet: the Node is left exactly as it was, Ready=True with the old bootID, as in a
real cluster), the daemon starts again from its state file, and a moment later the kubelet of the
new boot posts the new bootID and a fresh Ready heartbeat. If the kubelet stays away longer than
the server's --node-monitor-grace-period, the node lifecycle controller marks the Node Unknown.

Every daemon authenticates as the ServiceAccount of packaging/kubernetes/rbac.yaml, and the server
enforces that very file: a request it does not allow is a 403, and a bench that saw one fails its
test when it closes. The bench also applies packaging/kubernetes/admission-policy.yaml through the
API, its variables naming the labels and taint of the bench's [Marks], and the server evaluates
the policy's CEL on every Node write: a write of the daemon's that the policy refuses fails the test too. All nodes share that one user, so requests are told apart by the daemon's
User-Agent, "noderebootd/<version> (node <name>)": use node_requests(log, name).
"""

import json
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid

SOURCE_ROOT = os.environ.get("SOURCE_ROOT") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD_ROOT = os.environ.get("BUILD_ROOT") or os.path.join(SOURCE_ROOT, "build")
PYTHON = "/usr/bin/python3"
RBAC_MANIFESTS = os.path.join(SOURCE_ROOT, "packaging", "kubernetes", "rbac.yaml")
# The operators' role (noderebootctl pause/resume), bound to the group nodereboot-operators.
OPERATOR_RBAC_MANIFESTS = os.path.join(SOURCE_ROOT, "packaging", "kubernetes", "operator-rbac.yaml")
OPERATOR_GROUP = "nodereboot-operators"
ADMISSION_MANIFESTS = os.path.join(SOURCE_ROOT, "packaging", "kubernetes", "admission-policy.yaml")
ADMISSION_POLICY = "nodereboot-node-writes"
SERVICE_ACCOUNT = "system:serviceaccount:kube-system:nodereboot"
_NODE_IN_USER_AGENT = re.compile(r"\(node ([^()]+)\)")

# meson test --setup valgrind (tests/meson.build): the valgrind command line the daemons and
# noderebootctl run under, each with its own --log-file= that valgrind_problem() reads.
VALGRIND = shlex.split(os.environ.get("NODEREBOOT_VALGRIND", ""))
# How many times longer an assertion about speed allows (never one about order or safety): our
# code runs 10 to 50 times slower under valgrind.
SLOW = 10 if VALGRIND else 1


def valgrind_argv(log_path):
    """What goes right before our program's path: valgrind writing to log_path; nothing without
    valgrind."""
    return VALGRIND + ["--log-file=" + log_path] if VALGRIND else []


def valgrind_problem(log_path, returncode):
    """None if valgrind (when in use) found nothing in the process that wrote log_path and exited
    with returncode; else what it found. A process killed by a signal had no leak check: only the
    errors found until then count."""
    if not VALGRIND:
        return None
    try:
        with open(log_path, errors="replace") as f:
            text = f.read()
    except FileNotFoundError as e:
        if returncode is not None and returncode < 0:
            return None                 # killed before valgrind got going
        return f"no valgrind log {log_path}: {e}"
    summary = re.search(r"ERROR SUMMARY: (\d+) errors", text)
    if summary and summary.group(1) == "0":
        return None
    if not summary and returncode is not None and returncode < 0 and not _VALGRIND_ERROR.search(text):
        return None
    return f"valgrind found errors (exit code {returncode}), {log_path}:\n{text}"


# The headlines of memcheck's error reports, for a process that left no ERROR SUMMARY (killed).
_VALGRIND_ERROR = re.compile(r"^==\d+== (Invalid |Mismatched |Syscall param |Source and destination overlap|"
                             r"Conditional jump or move depends|Use of uninitialised|Argument '|"
                             r"Process terminating with default action of signal (?!9 |15 ))", re.M)


def make_node_folders(node, workdir, name):
    """A simulated node's folders and files, as attributes of node: dir, run_dir (its /run),
    state_dir, sentinel, dpkg_dir (PackageManagerLocks= point there), boot_id_file, boot_time_file."""
    node.dir = os.path.join(workdir, "nodes", name)
    node.run_dir = os.path.join(node.dir, "run")
    node.state_dir = os.path.join(node.dir, "state")
    for d in (node.run_dir, node.state_dir):
        os.makedirs(d, exist_ok=True)
    node.sentinel = os.path.join(node.run_dir, "reboot-required")
    node.dpkg_dir = os.path.join(node.dir, "dpkg")
    node.boot_id_file = os.path.join(node.dir, "boot_id")
    node.boot_time_file = os.path.join(node.dir, "boot_time")


def write_boot_files(node, boot_id, boot_time):
    """The files the daemon reads instead of /proc/sys/kernel/random/boot_id and the boot time
    (NODEREBOOT_BOOT_ID_FILE, NODEREBOOT_BOOT_TIME_FILE), in node's folders (make_node_folders)."""
    with open(node.boot_id_file, "w") as f:
        f.write(boot_id + "\n")
    with open(node.boot_time_file, "w") as f:
        f.write(f"{boot_time:.6f}\n")


def write_bus_config(path, address, limits=""):
    """A private system bus that lets anyone own and call anything (the daemons and the logind
    stand-in run as one user); limits: <limit> elements, as text."""
    with open(path, "w") as f:
        f.write(BUS_CONFIG.format(address=address, limits=limits))


BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>{address}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
    <allow user="*"/>
  </policy>
{limits}</busconfig>
"""


def _write_kubeconfig(path, api, user, credential):
    """A kubeconfig of the test API server (an ApiServer) for user, with credential (the YAML lines
    under users[].user), mode 0600 (the daemon refuses a credential others may read)."""
    with open(path, "w") as f:
        f.write(f"""apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: {api.url}
    certificate-authority: {api.ca}
users:
- name: {user}
  user:
{credential}
contexts:
- name: test
  context:
    cluster: test
    user: {user}
current-context: test
""")
    os.chmod(path, 0o600)
    return path


def write_token_kubeconfig(path, api, user, token):
    """A node's kubeconfig: a bearer token."""
    return _write_kubeconfig(path, api, user, f"    token: {token}")


def write_cert_kubeconfig(path, api, user, groups=()):
    """A person's kubeconfig: a client certificate of the test CA naming user and groups (as an
    identity provider's would)."""
    cert = api.control("POST", "/client-cert", {"user": user, "groups": list(groups)})   # file paths
    return _write_kubeconfig(path, api, user, f"    client-certificate: {cert['cert']}\n    client-key: {cert['key']}")


def write_node_config(path, name, kubeconfig, sentinel, dpkg_dir, overrides, log_level="debug"):
    """A simulated node's nodereboot.conf: the bench's defaults, then overrides ({"Section.Key":
    value})."""
    sections = {
        "Node": {"Name": name},
        "Kubernetes": {"Kubeconfig": kubeconfig},
        # SettleSec=0: the scenario tests time the cycle from the sentinel (test-host.py sets it).
        "Sentinel": {"Path": sentinel, "SettleSec": "0"},
        # The node's own dpkg locks: the host's apt, running or not, must not steer a test.
        "Blockers": {"PackageManagerLocks": f"{dpkg_dir}/lock-frontend {dpkg_dir}/lock"},
        "Lock": {"TTLSec": "30s", "RecheckSec": "30s"},
        "Drain": {"TimeoutSec": "60s"},
        "Reboot": {"TimeoutSec": "20s", "RetrySec": "1h"},
        "Daemon": {"LogLevel": log_level},
    }
    for key, value in (overrides or {}).items():
        section, k = key.split(".", 1)
        sections.setdefault(section, {})[k] = value
    with open(path, "w") as f:
        for section, items in sections.items():
            f.write(f"[{section}]\n")
            for k, v in items.items():
                f.write(f"{k}={v}\n")
            f.write("\n")


def request_node(entry):
    """The node a logged request came from, by its User-Agent; None for other clients."""
    m = _NODE_IN_USER_AGENT.search(entry.get("user_agent") or "")
    return m.group(1) if m else None


def node_requests(log, node):
    """The requests of one node's daemon in the server's request log."""
    return [e for e in log if request_node(e) == node]


def daemon_binary():
    path = os.environ.get("NODEREBOOTD") or os.path.join(BUILD_ROOT, "daemon", "noderebootd")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"noderebootd not found at {path}; build first or set NODEREBOOTD")
    return path


def ctl_binary():
    path = os.environ.get("NODEREBOOTCTL") or os.path.join(BUILD_ROOT, "daemon", "noderebootctl")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"noderebootctl not found at {path}; build first or set NODEREBOOTCTL")
    return path


def ctl(node, *args, config=True, timeout=60):
    """Runs noderebootctl with node's configuration and state folder, as an admin on that node."""
    env = dict(os.environ, NODEREBOOT_BOOT_ID_FILE=node.boot_id_file) if node else dict(os.environ)
    env.pop("JOURNAL_STREAM", None)
    env.pop("STATE_DIRECTORY", None)
    argv = [ctl_binary()]
    if node and config:
        argv += ["--config", node.config_path, "--state-dir", node.state_dir]
    started = time.monotonic()
    r = run_program(argv + list(args), timeout, env=env)
    r.elapsed = time.monotonic() - started
    return r


def run_program(argv, timeout, **kwargs):
    """subprocess.run() of one of our programs (argv[0]), its output captured as text; under
    valgrind, SLOW times the timeout, and an AssertionError if valgrind found errors in it."""
    if not VALGRIND:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kwargs)
    fd, vg_log = tempfile.mkstemp(prefix="valgrind-", suffix=".log")
    os.close(fd)
    try:
        r = subprocess.run(valgrind_argv(vg_log) + argv, capture_output=True, text=True, timeout=timeout * SLOW,
                           **kwargs)
        problem = valgrind_problem(vg_log, r.returncode)
        if problem:
            print(problem)
            raise AssertionError(f"{' '.join(argv)}: {problem.splitlines()[0]}")
    finally:
        os.unlink(vg_log)
    return r


def wait_for(predicate, timeout, what, interval=0.05, alive=None):
    """Polls predicate until it returns something true; alive() (if given) is called between polls
    and may raise to give up early. Under valgrind it waits SLOW times longer."""
    timeout *= SLOW
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if alive is not None:
            alive()
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class ApiServer:
    """The test Kubernetes API server (tests/integration/kube-apiserver.py) as a child process."""

    def __init__(self, workdir, seed=None, extra_args=()):
        self.dir = os.path.join(workdir, "apiserver")
        os.makedirs(self.dir, exist_ok=True)
        args = [PYTHON, os.path.join(SOURCE_ROOT, "tests", "integration", "kube-apiserver.py"),
                "--state-dir", self.dir]
        if seed is not None:
            seed_path = os.path.join(self.dir, "seed.json")
            with open(seed_path, "w") as f:
                json.dump(seed, f)
            args += ["--seed", seed_path]
        args += list(extra_args)
        self.log = open(os.path.join(self.dir, "server.log"), "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        ready = os.path.join(self.dir, "ready.json")
        wait_for(lambda: os.path.exists(ready) or self.proc.poll() is not None, 20, "the API server")
        if self.proc.poll() is not None:
            raise RuntimeError("the test API server exited; see " + self.log.name)
        with open(ready) as f:
            info = json.load(f)
        self.url = info["url"]
        self.control_url = info["control_url"]
        self.ca = info["ca"]
        self.admin_token = info["admin_token"]
        self.ssl = ssl.create_default_context(cafile=self.ca)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    # -- the Kubernetes API, as admin --
    def api(self, method, path, body=None, content_type="application/json", expect=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", "Bearer " + self.admin_token)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, context=self.ssl, timeout=20) as resp:
                status, text = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read()
        if expect is not None and status not in (expect if isinstance(expect, (list, tuple)) else [expect]):
            raise AssertionError(f"{method} {path}: HTTP {status}: {text[:500]!r}")
        return status, (json.loads(text) if text else None)

    def get(self, path):
        return self.api("GET", path, expect=200)[1]

    def create_or_replace(self, obj):
        """What `kubectl apply` does for a new object, and a replace for an existing one."""
        group, _, version = obj["apiVersion"].rpartition("/")
        plural = MANIFEST_PLURALS[obj["kind"]]
        md = obj["metadata"]
        base = (f"/apis/{group}/{version}" if group else "/api/v1") + \
            (f"/namespaces/{md['namespace']}" if md.get("namespace") else "") + "/" + plural
        status, cur = self.api("GET", f"{base}/{md['name']}")
        if status == 404:
            return self.api("POST", base, obj, expect=201)[1]
        obj = dict(obj, metadata=dict(md, resourceVersion=cur["metadata"]["resourceVersion"]))
        return self.api("PUT", f"{base}/{md['name']}", obj, expect=200)[1]

    def apply_admission_policy(self, labels=(), taint=""):
        """Applies ADMISSION_MANIFESTS, its variables naming these label keys and taint key."""
        for doc in admission_manifests(labels, taint):
            self.create_or_replace(doc)

    def node(self, name):
        return self.get(f"/api/v1/nodes/{name}")

    def leases(self, namespace="kube-system"):
        return self.get(f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases")["items"]

    def lease_holders(self, namespace="kube-system"):
        return {l["metadata"]["name"]: (l.get("spec") or {}).get("holderIdentity") or None
                for l in self.leases(namespace)}

    # -- the control API --
    def control(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.control_url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=20) as resp:
            text = resp.read()
        return json.loads(text) if text else None

    def request_log(self):
        return self.control("GET", "/log")

    def denials(self):
        """Every request the authorizer forbade since the server started (DELETE /log keeps them)."""
        return self.control("GET", "/denials")

    def timeline(self, kubelets=False):
        """Schedulability changes; with kubelets also the kubelets' starts, stops and Ready reports
        (for out_of_service_intervals)."""
        return self.control("GET", "/timeline" + ("?kubelets=1" if kubelets else ""))

    def set_ready(self, node, ready, boot_id=None):
        """The node's container runtime down (ready False: the kubelet posts Ready=False) or back.
        A boot_id other than the kubelet's first restarts the kubelet in that boot."""
        body = {"ready": ready}
        if boot_id:
            body["boot_id"] = boot_id
        self.control("POST", f"/nodes/{node}/ready", body)

    # -- the simulated kubelets --
    def kubelet(self, node):
        """The node's kubelet {node, running, boot_id, started, stopped, serving, ...}; None if none."""
        try:
            return self.control("GET", f"/kubelets/{node}")
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise

    def kubelet_stop(self, node):
        """The machine went down: the kubelet stops posting; nothing on the Node changes."""
        return self.control("POST", f"/kubelets/{node}/stop")

    def kubelet_start(self, node, boot_id=None, not_ready_seconds=None, kernel=None):
        """The kubelet starts, in boot boot_id (dashed, as /proc/sys/kernel/random/boot_id); it
        posts that bootID and Ready=True (Ready=False for not_ready_seconds first, if given), and
        kernel as nodeInfo.kernelVersion when given (the kernel this boot runs)."""
        body = {}
        if boot_id:
            body["boot_id"] = boot_id
        if kernel:
            body["kernel"] = kernel
        if not_ready_seconds is not None:
            body["not_ready_seconds"] = not_ready_seconds
        return self.control("POST", f"/kubelets/{node}/start", body)

    def set_pod_ready(self, namespace, name, ready):
        """The pod's readiness probe fails (ready False: its kubelet reports it not ready, across
        reboots too) or passes again."""
        return self.control("POST", f"/pods/{namespace}/{name}/ready", {"ready": ready})

    def pod_statuses(self):
        """The pod statuses the simulated kubelets posted: {time, node, pod, status}."""
        return self.control("GET", "/pod-statuses")

    def controllers(self, **settings):
        """Read or change the simulated controllers' settings (control.py post_controllers)."""
        if settings:
            return self.control("POST", "/controllers", settings)
        return self.control("GET", "/controllers")

    def eviction_faults(self, pod, answer, count=1, namespace=None, **extra):
        """The next count evictions of pod are answered as the real server does in the state
        answer names (faults.py EVICTION_ANSWERS): pdb-conflict, pdb-negative,
        pdb-too-many-disrupted, pdb-budget, pdb-processing, uid-conflict."""
        ns = re.escape(namespace) if namespace else "[^/]+"
        self.faults([dict({"match": f"/namespaces/{ns}/pods/{re.escape(pod)}/eviction$", "method": "POST",
                           "action": "eviction", "answer": answer, "count": count}, **extra)])

    def throttle(self, match, count=1, retry_after=1, method=None):
        """The next count requests whose path matches are turned away by API Priority and
        Fairness: 429 with Retry-After and a plain-text body."""
        rule = {"match": match, "action": "throttle", "count": count, "retry_after": retry_after}
        if method:
            rule["method"] = method
        self.faults([rule])

    def add_token(self, token, user):
        self.control("POST", "/tokens", {"token": token, "user": user})

    def faults(self, rules):
        self.control("POST", "/faults", rules)

    def clear_faults(self):
        self.control("DELETE", "/faults")

    def outage(self, seconds):
        self.control("POST", "/outage", {"seconds": seconds})


MANIFEST_PLURALS = {"ConfigMap": "configmaps", "ValidatingAdmissionPolicy": "validatingadmissionpolicies",
                    "ValidatingAdmissionPolicyBinding": "validatingadmissionpolicybindings"}


def cel_string(s):
    """A CEL string literal (JSON's escapes are CEL's)."""
    return json.dumps(s)


def admission_manifests(labels=(), taint=""):
    """The documents of ADMISSION_MANIFESTS with the two variables marked EDIT set as an operator
    would: allowedLabels and taintKey."""
    import yaml
    with open(ADMISSION_MANIFESTS) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    edits = {"allowedLabels": "[" + ", ".join(cel_string(k) for k in labels) + "]",
             "taintKey": cel_string(taint)}
    for d in docs:
        if d["kind"] == "ValidatingAdmissionPolicy" and d["metadata"]["name"] == ADMISSION_POLICY:
            for v in d["spec"]["variables"]:
                if v["name"] in edits:
                    v["expression"] = edits.pop(v["name"])
    if edits:
        raise AssertionError(f"{ADMISSION_MANIFESTS} has no variable(s) {', '.join(edits)} to edit")
    return docs


def marks_of(config):
    """The label keys and the taint key a nodereboot.conf override dict makes the daemon write."""
    config = config or {}
    labels = []
    for key in ("Marks.PreRebootLabels", "Marks.PostRebootLabels"):
        for item in (config.get(key) or "").split():
            k = item.split("=", 1)[0]
            if k not in labels:
                labels.append(k)
    return labels, config.get("Marks.PreferNoScheduleTaint", "")


def max_cordoned_at_once(timeline, nodes):
    """The largest number of the given nodes that were unschedulable at the same time."""
    state = {}
    worst = 0
    for change in timeline:
        if change["node"] in nodes and "unschedulable" in change:
            state[change["node"]] = bool(change["unschedulable"])
            worst = max(worst, sum(1 for v in state.values() if v))
    return worst


def out_of_service_intervals(timeline, nodes, now=None):
    """{node: [(start, end)]}: when each node was out of service, from the server's timeline with
    kubelet entries (ApiServer.timeline(kubelets=True)). A node is out of service while it is
    cordoned, or its kubelet is stopped or has not yet reported Ready in its current boot. An
    interval still open ends at now (default: the time of the call)."""
    now = time.time() if now is None else now
    cordoned, kubelet_ok, since, out = {}, {}, {}, {n: [] for n in nodes}
    for change in timeline:
        node = change["node"]
        if node not in nodes:
            continue
        if "unschedulable" in change:
            cordoned[node] = bool(change["unschedulable"]) and not change.get("deleted")
        if "kubelet" in change:
            # Out of service from the kubelet's stop (or a NotReady report) until it reports Ready;
            # a start alone changes nothing (the kubelets a bench starts with are in service).
            if change["kubelet"] == "ready":
                kubelet_ok[node] = True
            elif change["kubelet"] in ("stopped", "notready"):
                kubelet_ok[node] = False
        down = cordoned.get(node, False) or not kubelet_ok.get(node, True)
        if down and node not in since:
            since[node] = change["time"]
        elif not down and node in since:
            out[node].append((since.pop(node), change["time"]))
    for node, start in since.items():
        out[node].append((start, now))
    return out


def max_out_of_service_at_once(timeline, nodes):
    """The largest number of the given nodes out of service at the same time (see
    out_of_service_intervals): the safety bound a rolling reboot must keep."""
    edges = []
    for intervals in out_of_service_intervals(timeline, nodes).values():
        for start, end in intervals:
            edges += [(start, 1), (end, -1)]
    worst = current = 0
    for _, step in sorted(edges, key=lambda e: (e[0], e[1])):  # an end before a start at the same time
        current += step
        worst = max(worst, current)
    return worst


class LogindMock:
    """python3-dbusmock's logind template on a private dbus-daemon."""

    def __init__(self, workdir, with_reboot_with_flags=True):
        self.dir = os.path.join(workdir, "bus")
        os.makedirs(self.dir, exist_ok=True)
        self.socket = os.path.join(self.dir, "system_bus_socket")
        self.address = "unix:path=" + self.socket
        self.conf = os.path.join(self.dir, "bus.conf")
        write_bus_config(self.conf, self.address)
        self.with_reboot_with_flags = with_reboot_with_flags
        self._start_bus()
        self.log = open(os.path.join(self.dir, "dbusmock.log"), "w")
        self._start_logind()

    def _start_bus(self):
        self.bus = subprocess.Popen(["dbus-daemon", "--config-file=" + self.conf, "--nofork", "--nopidfile"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: os.path.exists(self.socket), 10, "the private bus")

    def _start_logind(self):
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.address)
        self.mock = subprocess.Popen([PYTHON, "-m", "dbusmock", "--system", "--template", "logind"],
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(self._ready, 15, "the logind mock")
        # The template lacks the inhibitor properties every real logind has.
        for prop in ("BlockInhibited", "DelayInhibited"):
            self.mock_call("AddProperty", "ssv", "org.freedesktop.login1.Manager", prop, "s", "")
        if self.with_reboot_with_flags:
            self.add_method("RebootWithFlags", "t", "", "")

    def crash(self, bus=False):
        """logind dies (SIGKILL, as a crash), and with bus the system bus too (dbus-daemon
        restarted: every connection to it drops). Calls pending on logind are never answered."""
        for p in ([self.bus] if bus else []) + [self.mock]:     # the bus first: connections drop
            if p.poll() is None:
                p.kill()
            p.wait()

    def start_again(self):
        """What crash() stopped starts again, as systemd restarts it: a fresh logind that remembers
        no calls (and a fresh bus on the same socket when the bus was stopped)."""
        if self.bus.poll() is not None:
            if os.path.exists(self.socket):
                os.unlink(self.socket)
            self._start_bus()
        self._start_logind()

    def busctl(self, *args, check=True):
        r = subprocess.run(["busctl", "--address=" + self.address, "--json=short"] + list(args),
                           capture_output=True, text=True, timeout=20)
        if check and r.returncode != 0:
            raise AssertionError(f"busctl {' '.join(args)}: {r.stderr.strip()}")
        return r

    def _ready(self):
        r = self.busctl("introspect", "org.freedesktop.login1", "/org/freedesktop/login1", check=False)
        return r.returncode == 0

    def mock_call(self, method, signature="", *args):
        return self.busctl("call", "org.freedesktop.login1", "/org/freedesktop/login1",
                           "org.freedesktop.DBus.Mock", method, *([signature] + [str(a) for a in args] if signature else []))

    def add_method(self, name, in_sig, out_sig, code):
        self.mock_call("AddMethod", "sssss", "org.freedesktop.login1.Manager", name, in_sig, out_sig, code)

    def fail_reboots(self, message="Access denied"):
        code = f"raise dbus.exceptions.DBusException('{message}', name='org.freedesktop.DBus.Error.AccessDenied')"
        self.add_method("RebootWithFlags", "t", "", code)

    def allow_reboots(self):
        self.add_method("RebootWithFlags", "t", "", "")

    def block_shutdown(self, who="maintenance-tool", why="firmware update in progress"):
        self.busctl("call", "org.freedesktop.login1", "/org/freedesktop/login1",
                    "org.freedesktop.DBus.Properties", "Set", "ssv", "org.freedesktop.login1.Manager",
                    "BlockInhibited", "s", "shutdown:sleep")
        self.add_method("ListInhibitors", "", "a(ssssuu)",
                        f"ret = [('shutdown:sleep', '{who}', '{why}', 'block', 0, 1234)]")

    def unblock_shutdown(self):
        self.busctl("call", "org.freedesktop.login1", "/org/freedesktop/login1",
                    "org.freedesktop.DBus.Properties", "Set", "ssv", "org.freedesktop.login1.Manager",
                    "BlockInhibited", "s", "")
        self.add_method("ListInhibitors", "", "a(ssssuu)", "ret = []")

    def reboot_calls(self):
        """Number of reboot requests (RebootWithFlags or Reboot) logind received."""
        n = 0
        for method in ("RebootWithFlags", "Reboot"):
            r = self.mock_call("GetMethodCalls", "s", method)
            data = json.loads(r.stdout)["data"]
            n += len(data[0])
        return n

    def stop(self):
        for p in (self.mock, self.bus):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.log.close()


class NodeDaemon:
    """One simulated node: its folders, its logind, and a real noderebootd."""

    def __init__(self, bench, name, config=None):
        self.bench = bench
        self.name = name
        make_node_folders(self, bench.dir, name)
        self._kubelet_timer = None
        # A command the daemon runs under (e.g. systemd-socket-activate ... : it passes sockets
        # as a .socket unit does, then execs the daemon in the same process).
        self.wrapper = []
        # The kernel the next boot runs (the kubelet reports it); None: the same as before.
        self.next_kernel = None
        self._adopt_boot()
        self.logind = LogindMock(self.dir)
        self.proc = None
        self._valgrind_checked = set()  # the runs _check_valgrind() read the log of
        self.extra_env = {}
        # sd_notify messages: the daemon's READY=1 / STATUS= / STOPPING=1, as systemd would get them
        self.notify_path = os.path.join(self.dir, "notify")
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(self.notify_path)
        self.notify.settimeout(0.2)
        self.notifications = []
        # Read continuously, as systemd does: a full socket queue would block the daemon's sendmsg().
        self.notify_thread = threading.Thread(target=self._read_notifications, daemon=True)
        self.notify_thread.start()
        self.starts = 0
        self.reboots = 0
        self.logs = []
        token = "token-" + name
        bench.api.add_token(token, SERVICE_ACCOUNT)
        self.kubeconfig = os.path.join(self.dir, "kubeconfig")
        write_token_kubeconfig(self.kubeconfig, bench.api, name, token)
        self.config_path = os.path.join(self.dir, "nodereboot.conf")
        self.write_config(config or {})

    def write_config(self, overrides):
        write_node_config(self.config_path, self.name, self.kubeconfig, self.sentinel, self.dpkg_dir, overrides)

    def _adopt_boot(self):
        """The machine is in the boot its kubelet reports (a seeded Node has a running kubelet in
        the server); without one, a new boot with a kubelet waiting for its Node to appear."""
        kubelet = self.bench.api.kubelet(self.name)
        if kubelet is not None:
            # The kubelet started a moment after the machine booted.
            self._write_boot(kubelet["boot_id"], kubelet["started"] - 1.0)
        else:
            self._write_boot(str(uuid.uuid4()), time.time())
            self.bench.api.kubelet_start(self.name, self.kubelet_boot_id())

    def new_boot(self, kubelet_delay=None):
        """The machine booted again, for tests that play a reboot step by step (reboot() does it
        all): the kubelet of the old boot stops at once, leaving the Node as it was; a new boot ID
        (dashed, as /proc/sys/kernel/random/boot_id shows it) and boot time; and kubelet_delay s
        later (default: the Bench's) the kubelet of the new boot posts."""
        self.cancel_kubelet()
        self.bench.api.kubelet_stop(self.name)
        self._write_boot(str(uuid.uuid4()), time.time())
        self._schedule_kubelet(kubelet_delay)

    def _write_boot(self, boot_id, boot_time):
        self.boot_time = boot_time
        write_boot_files(self, boot_id, boot_time)

    def boot_id(self):
        """The boot ID as the daemon records and prints it: 32 lowercase hex digits, no dashes."""
        return self.kubelet_boot_id().replace("-", "").lower()

    def kubelet_boot_id(self):
        """The boot ID as the kernel shows it and the kubelet reports it in nodeInfo.bootID."""
        with open(self.boot_id_file) as f:
            return f.read().strip()

    def start(self):
        assert self.proc is None or self.proc.poll() is not None
        if self.proc is not None and not self.log.closed:
            self.log.close()
        self._check_valgrind()          # the run before, should it have exited on its own
        self.starts += 1
        log_path = os.path.join(self.dir, f"daemon-{self.starts}.log")
        self.logs.append(log_path)
        env = dict(os.environ,
                   NODEREBOOT_BOOT_ID_FILE=self.boot_id_file,
                   NODEREBOOT_BOOT_TIME_FILE=self.boot_time_file,
                   DBUS_SYSTEM_BUS_ADDRESS=self.logind.address,
                   NOTIFY_SOCKET=self.notify_path, **self.extra_env)
        env.pop("JOURNAL_STREAM", None)
        self.log = open(log_path, "w")
        # valgrind after self.wrapper, which execs what follows it, right before the daemon
        self.valgrind_log = os.path.join(self.dir, f"valgrind-{self.starts}.log")
        argv = [daemon_binary(), "--config", self.config_path, "--state-dir", self.state_dir]
        self.proc = subprocess.Popen(self.wrapper + valgrind_argv(self.valgrind_log) + argv,
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig=signal.SIGKILL):
        if self.running():
            self.proc.send_signal(sig)
            self.proc.wait(15 * SLOW)
        if self.proc is not None:
            self.log.close()
            self._check_valgrind()
        return self.proc.returncode if self.proc else None

    def _check_valgrind(self):
        """Fails the test (and the bench when it closes) if valgrind found errors or definite
        leaks in the daemon's last run; once per run, after it exited."""
        if not VALGRIND or self.proc is None or self.proc.poll() is None:
            return
        if self.proc in self._valgrind_checked:
            return
        self._valgrind_checked.add(self.proc)
        problem = valgrind_problem(self.valgrind_log, self.proc.returncode)
        if problem:
            print(f"===== {self.name}: {problem}")
            self.bench.valgrind_failures.append(f"{self.name}: {problem.splitlines()[0]}")
            raise AssertionError(f"{self.name}: {problem.splitlines()[0]}")

    def _read_notifications(self):
        while True:
            try:
                msg = self.notify.recv(65536).decode(errors="replace")
            except socket.timeout:
                continue
            except OSError:
                return
            self.notifications.append(msg)

    def statuses(self):
        """Every STATUS= text the daemon sent so far, in order."""
        return [line[7:] for m in self.notifications for line in m.split("\n") if line.startswith("STATUS=")]

    def notified(self, text):
        return any(text in m for m in self.notifications)

    def log_text(self):
        text = ""
        for p in self.logs:
            with open(p, errors="replace") as f:
                text += f.read()
        return text

    def touch_sentinel(self, packages=None):
        if packages:
            with open(self.sentinel + ".pkgs", "w") as f:
                f.write("\n".join(packages) + "\n")
        with open(self.sentinel, "w") as f:
            f.write("*** System restart required ***\n")

    def remove_sentinel(self):
        for p in (self.sentinel, self.sentinel + ".pkgs"):
            if os.path.exists(p):
                os.unlink(p)

    def state(self):
        path = os.path.join(self.state_dir, "state")
        if not os.path.exists(path):
            return {"phase": "idle"}
        with open(path) as f:
            return json.load(f)

    def phase(self):
        try:
            return self.state().get("phase")
        except (ValueError, OSError):
            return None

    def wait_phase(self, phase, timeout=30):
        phases = phase if isinstance(phase, (list, tuple)) else [phase]
        return wait_for(lambda: self.phase() in phases, timeout, f"{self.name} to reach {phase} (now {self.phase()})")

    def reboot(self, kubelet_delay=None, ready_delay=None):
        """What a real reboot does to the daemon's world: the daemon dies, the kubelet stops (the
        Node keeps its stale Ready=True and old bootID), a new boot ID, /run emptied, the daemon
        starts in the new boot, and kubelet_delay seconds later (default: the Bench's) the kubelet
        of the new boot posts. Returns at once; wait_kubelet() waits for that post.
        ready_delay is the old name of kubelet_delay."""
        if kubelet_delay is None:
            kubelet_delay = ready_delay
        self.cancel_kubelet()
        self.kill(signal.SIGKILL)
        self.reboots += 1
        self.bench.api.kubelet_stop(self.name)
        self._write_boot(str(uuid.uuid4()), time.time())
        self.remove_sentinel()           # /run is a tmpfs
        self.logind.mock_call("ClearCalls")
        self.start()
        self._schedule_kubelet(kubelet_delay)

    def power_off(self):
        """The machine goes down and stays down: the daemon dies with its kubelet, so the Node
        keeps its last status until the lifecycle controller marks it Unknown. new_boot() and
        start() bring it back."""
        self.cancel_kubelet()
        self.kill(signal.SIGKILL)
        self.bench.api.kubelet_stop(self.name)

    def _schedule_kubelet(self, delay):
        """The kubelet of the current boot starts delay s from now (default: the Bench's)."""
        delay = self.bench.kubelet_delay if delay is None else delay
        boot = self.kubelet_boot_id()
        if delay <= 0:
            self._start_kubelet(boot)
            return
        self._kubelet_timer = threading.Timer(delay, self._start_kubelet, (boot,))
        self._kubelet_timer.daemon = True
        self._kubelet_timer.start()

    def _start_kubelet(self, boot):
        try:
            self.bench.api.kubelet_start(self.name, boot, kernel=self.next_kernel)
        except Exception as e:  # the bench is closing; a test waiting for it fails on its own
            print(f"{self.name}: starting the kubelet of boot {boot} failed: {e}")

    def wait_kubelet(self, timeout=30):
        """Waits until the kubelet of the current boot runs and has reported Ready."""
        boot = self.kubelet_boot_id()

        def back():
            k = self.bench.api.kubelet(self.name)
            return k is not None and k["running"] and k["boot_id"] == boot and k["reported_ready"]
        return wait_for(back, timeout, f"the kubelet of {self.name}'s boot {boot}")

    def cancel_kubelet(self):
        if self._kubelet_timer is not None:
            self._kubelet_timer.cancel()
            self._kubelet_timer = None

    def stop(self):
        self.cancel_kubelet()
        try:
            self.kill(signal.SIGTERM)
        finally:
            self.logind.stop()
            self.notify.close()


def assert_rebooted_once_and_back(test, bench, node):
    """A fault scenario's end as it must be: the node rebooted exactly once, asked for no reboot
    after it, is schedulable again, and no slot is held."""
    time.sleep(0.5)
    test.assertEqual(node.reboots, 1)
    test.assertEqual(node.logind.reboot_calls(), 0, "a reboot request after the reboot")
    test.assertFalse(bench.api.node(node.name)["spec"].get("unschedulable"), "node left cordoned")
    test.assertFalse(any(bench.api.lease_holders().values()), "a lease leaked")


def hold_slot(bench, holder="busy", slot="nodereboot-0", seconds=3600):
    """A lock slot held by a node of no daemon (renewed now, for seconds): the bench's nodes wait
    for it until a test deletes it."""
    renew = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
    bench.api.api("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases", {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": slot, "namespace": "kube-system", "labels": {"nodereboot.io/lock": "nodereboot"}},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": seconds, "renewTime": renew}}, expect=201)


def seed_cluster(nodes, replicas_per_node=2, pdb_min_available=None, namespace="default"):
    """Nodes, a DaemonSet pod and a mirror pod on each, a Deployment's ReplicaSet pods spread over
    the nodes, and optionally a PodDisruptionBudget over them."""
    objs = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in (namespace, "kube-system")]
    for n in nodes:
        objs.append({"apiVersion": "v1", "kind": "Node", "metadata": {"name": n, "labels": {"kubernetes.io/hostname": n}},
                     "spec": {},
                     "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    objs.append({"apiVersion": "apps/v1", "kind": "DaemonSet",
                 "metadata": {"name": "node-exporter", "namespace": "kube-system", "uid": "ds-uid-1"},
                 "spec": {"selector": {"matchLabels": {"app": "node-exporter"}}}})
    objs.append({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                 "metadata": {"name": "web-6d4cf56db6", "namespace": namespace, "uid": "rs-uid-1"},
                 "spec": {"replicas": replicas_per_node * len(nodes), "selector": {"matchLabels": {"app": "web"}}}})
    running = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    i = 0
    for n in nodes:
        objs.append({"apiVersion": "v1", "kind": "Pod",
                     "metadata": {"name": f"node-exporter-{n}", "namespace": "kube-system", "labels": {"app": "node-exporter"},
                                  "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "node-exporter",
                                                       "uid": "ds-uid-1", "controller": True}]},
                     "spec": {"nodeName": n, "containers": [{"name": "c", "image": "node-exporter"}]}, "status": running})
        objs.append({"apiVersion": "v1", "kind": "Pod",
                     "metadata": {"name": f"kube-proxy-{n}", "namespace": "kube-system",
                                  "annotations": {"kubernetes.io/config.mirror": "abc"}},
                     "spec": {"nodeName": n, "containers": [{"name": "c", "image": "kube-proxy"}]}, "status": running})
        for _ in range(replicas_per_node):
            i += 1
            objs.append({"apiVersion": "v1", "kind": "Pod",
                         "metadata": {"name": f"web-6d4cf56db6-{i:05d}", "namespace": namespace, "labels": {"app": "web"},
                                      "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-6d4cf56db6",
                                                           "uid": "rs-uid-1", "controller": True}]},
                         "spec": {"nodeName": n, "terminationGracePeriodSeconds": 30,
                                  "containers": [{"name": "c", "image": "nginx"}]}, "status": running})
    if pdb_min_available is not None:
        objs.append({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                     "metadata": {"name": "web-pdb", "namespace": namespace},
                     "spec": {"minAvailable": pdb_min_available, "selector": {"matchLabels": {"app": "web"}}}})
    return objs


class Bench:
    """A cluster of simulated nodes. Use as a context manager; the folder is kept on failure when
    NODEREBOOT_KEEP_BENCH=1. With rbac (the default) the server enforces RBAC_MANIFESTS; with
    admission (the default) the bench applies ADMISSION_MANIFESTS for the labels and taint of config;
    leaving the context fails the test if any daemon request was forbidden by either. kubelet_delay: how
    long after a rebooted node's daemon starts its kubelet posts the new boot (NodeDaemon.reboot);
    server_args reach kube-apiserver.py (e.g. --node-monitor-grace-period)."""

    def __init__(self, nodes, config=None, seed=None, server_args=(), rbac=True, kubelet_delay=2.0,
                 admission=True, expect_forbidden=(), **seed_args):
        self.dir = tempfile.mkdtemp(prefix="nodereboot-bench-")
        # Paths (regular expressions) whose refusals the test provokes on purpose.
        self.expect_forbidden = [re.compile(p) for p in expect_forbidden]
        # How long after the daemon of a new boot starts its kubelet posts (NodeDaemon.reboot).
        self.kubelet_delay = kubelet_delay
        if rbac:
            server_args = ["--rbac-manifests", RBAC_MANIFESTS, "--rbac-manifests", OPERATOR_RBAC_MANIFESTS] + list(server_args)
        self.api = ApiServer(self.dir, seed if seed is not None else seed_cluster(nodes, **seed_args), server_args)
        self.nodes = {}
        self.valgrind_failures = []     # NodeDaemon._check_valgrind(): fails the test on exit
        try:
            if admission:
                self.api.apply_admission_policy(*marks_of(config))
            for n in nodes:
                self.nodes[n] = NodeDaemon(self, n, config)
        except Exception:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            forbidden = self.forbidden()
            problem = (f"{len(forbidden)} request(s) of the ServiceAccount were forbidden by "
                       f"{os.path.relpath(RBAC_MANIFESTS, SOURCE_ROOT)}; first: {forbidden[0]}"
                       if forbidden else None)
        except (OSError, ValueError) as e:
            forbidden, problem = [], f"cannot read the server's request log to look for 403s: {e}"
        failed = exc_type is not None or problem is not None
        if failed:
            self.dump()
        for line in forbidden[:20]:
            print("FORBIDDEN:", line)
        if len(forbidden) > 20:
            print(f"FORBIDDEN: … and {len(forbidden) - 20} more")
        self.close(keep=failed and os.environ.get("NODEREBOOT_KEEP_BENCH") == "1")
        if problem and exc_type is None:
            raise AssertionError(problem)
        if self.valgrind_failures and exc_type is None:
            raise AssertionError("valgrind: " + "; ".join(self.valgrind_failures))
        return False

    def forbidden(self):
        """The ServiceAccount's requests that got a 403: the authorizer's denials (kept even when a
        test clears the request log) and any 403 in the log that no fault rule injected."""
        denials = self.api.denials()
        log = self.api.request_log()
        denials = [d for d in denials if not any(p.search(d["path"]) for p in self.expect_forbidden)]
        log = [e for e in log if not any(p.search(e["path"]) for p in self.expect_forbidden)]
        out = [f"{d['method']} {d['path']} ({d.get('user_agent')}): {d['message']}"
               for d in denials if d["user"] == SERVICE_ACCOUNT]
        seen = {(d["time"], d["path"]) for d in denials}
        out += [f"{e['method']} {e['path']} ({e.get('user_agent')}): HTTP 403" for e in log
                if e["status"] == 403 and e["user"] == SERVICE_ACCOUNT and not e.get("fault")
                and (e["time"], e["path"]) not in seen and not (e.get("admission") or {}).get("denied")]
        out += [f"{e['method']} {e['path']} ({e.get('user_agent')}): HTTP {e['status']}: {e['admission']['denied']}"
                for e in log if e["user"] == SERVICE_ACCOUNT and (e.get("admission") or {}).get("denied")]
        return out

    def dump(self):
        for n in self.nodes.values():
            print(f"===== {n.name}: daemon log (last 60 lines) =====")
            print("\n".join(n.log_text().splitlines()[-60:]))
            print(f"===== {n.name}: state {n.state()}")

    def close(self, keep=False):
        for n in self.nodes.values():
            try:
                n.stop()
            except Exception as e:  # keep cleaning up the others
                print(f"stopping {n.name}: {e}")
        self.api.stop()
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            print("bench kept in", self.dir)

    def start_all(self):
        for n in self.nodes.values():
            n.start()

    def out_of_service(self, nodes=None):
        """out_of_service_intervals over the server's timeline, for the bench's nodes by default."""
        return out_of_service_intervals(self.api.timeline(kubelets=True), set(nodes or self.nodes))

    def max_out_of_service(self, nodes=None):
        """How many of the nodes (default: all) were out of service at once, so far."""
        return max_out_of_service_at_once(self.api.timeline(kubelets=True), set(nodes or self.nodes))

    def roll_all(self, timeout_per_node=40):
        """Every node needs a reboot at once: starts the daemons, touches every sentinel and plays
        the machines until each node rebooted once and is idle again."""
        self.start_all()
        for n in self.nodes.values():
            n.wait_phase("idle", 10)
        for n in self.nodes.values():
            n.touch_sentinel()
        self.run_reboots(lambda: all(n.reboots == 1 and n.phase() == "idle" for n in self.nodes.values()),
                         timeout=timeout_per_node * len(self.nodes))

    def run_reboots(self, until, timeout=60, on_reboot=None):
        """Plays the machines: whenever a node's logind got a reboot request, reboot that node.
        Runs until until() is true (SLOW times longer under valgrind)."""
        deadline = time.monotonic() + timeout * SLOW
        while not until():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s; phases: " +
                                     ", ".join(f"{n.name}={n.phase()}" for n in self.nodes.values()))
            for n in self.nodes.values():
                if n.running() and n.logind.reboot_calls() > 0:
                    if on_reboot:
                        on_reboot(n)
                    n.reboot()
            time.sleep(0.05)
