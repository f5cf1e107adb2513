#!/usr/bin/python3
"""A faithful fake Kubernetes API server for nodereboot's integration, demo and system tests.

    /usr/bin/python3 tests/integration/kube-apiserver.py --state-dir DIR [--port N]
        [--control-port N] [--seed FILE.json] [--token TOKEN=USER ...] [--clock-offset SECONDS]
        [--deletion-scale F] [--rbac FILE.json] [--rbac-manifests FILE.yaml ...]
        [--node-monitor-grace-period S] [--node-monitor-period S] [--node-status-update-frequency S]
        [--node-status-report-frequency S] [--kubelet-startup-not-ready S] [--min-request-timeout S]
        [--watch-cache-size N] [--eviction-retry-duration S] [--disrupted-pod-timeout S]

It writes DIR/ready.json last (atomically) once both ports listen:
    {"url", "control_url", "pid", "ca", "admin_token", "kubeconfig", "cert_kubeconfig"}
and removes it again on SIGTERM/SIGINT. A test starts it, waits for ready.json, talks HTTPS to
"url" (DIR/admin.kubeconfig, DIR/admin-cert.kubeconfig, or its own --token) and steers the world
through "control_url" (endpoints: apiserver/control.py).

--rbac-manifests loads real ServiceAccount/ClusterRole/Role/(Cluster)RoleBinding YAML (needs
python3-yaml), creates its ServiceAccounts, and from then on forbids every request its bindings do
not allow, except admin's (apiserver/rbac.py, apiserver/access.py). Tokens for a ServiceAccount
come from --token TOKEN=system:serviceaccount:NS:NAME, from a token Secret, or from TokenRequest
(apiserver/tokens.py), as make-kubeconfig.sh gets them.

apiserver/ holds the parts; test-apiserver.py and test-kubectl-fidelity.sh show what it
guarantees. ValidatingAdmissionPolicies and their bindings, created through the API, are enforced
on every write (apiserver/admission.py), their CEL evaluated by @bufbuild/cel under Node.js.

The cluster around the API is as unkind as a real one, with the real periods divided by ten
(apiserver/nodes.py, apiserver/controllers.py): every Node has a kubelet that heartbeats and posts
its boot ID; a stopped kubelet (a rebooting machine) leaves the Node as it was, Ready=True with
the old boot ID, until the node lifecycle controller marks it Unknown after the grace period;
watches end after a random [T, 2T] of --min-request-timeout; a watch from a resourceVersion that
left the per-resource history gets 410 Expired."""

import argparse
import copy
import json
import os
import secrets
import signal
import ssl
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from apiserver import resources  # noqa: E402
from apiserver.access import ADMIN, RBAC, Authenticator, Authorizer  # noqa: E402
from apiserver.admission import PolicyAdmission  # noqa: E402
from apiserver.api import ApiListener, RequestLog  # noqa: E402
from apiserver.cel import Cel  # noqa: E402
from apiserver.clock import Clock  # noqa: E402
from apiserver.control import ControlServer  # noqa: E402
from apiserver.controllers import Cluster, running_status  # noqa: E402
from apiserver.errors import ApiError  # noqa: E402
from apiserver.faults import FaultInjector  # noqa: E402
from apiserver.nodes import NodeTiming  # noqa: E402
from apiserver import profiling  # noqa: E402
from apiserver.objects import Objects  # noqa: E402
from apiserver.pki import PKI, kubeconfig, write_atomic  # noqa: E402
from apiserver.rbac import ManifestError, ManifestRBAC  # noqa: E402
from apiserver.store import Store  # noqa: E402
from apiserver.tokens import ServiceAccountTokens  # noqa: E402

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class Context:
    """Everything the API and control handlers share."""

    def __init__(self, args):
        self.state_dir = os.path.abspath(args.state_dir)
        self.clock = Clock(args.clock_offset)
        self.store = Store(self.clock, history_size=args.watch_cache_size)
        self.objects = Objects(self.store, self.clock)
        timing = NodeTiming(grace_period=args.node_monitor_grace_period, monitor_period=args.node_monitor_period,
                            status_update=args.node_status_update_frequency,
                            status_report=args.node_status_report_frequency,
                            startup_not_ready=args.kubelet_startup_not_ready)
        self.cluster = Cluster(self.store, self.objects, self.clock, args.deletion_scale, timing,
                               args.disrupted_pod_timeout)
        self.min_request_timeout = args.min_request_timeout
        self.eviction_retry_duration = args.eviction_retry_duration
        self.auth = Authenticator(self.clock)
        self.faults = FaultInjector()
        self.log = RequestLog()
        self.pki = PKI(self.state_dir)
        self.tokens = ServiceAccountTokens(self.store, self.objects, self.auth, self.clock, self.pki.ca_crt,
                                           self.cluster.timers)
        self.rbac = RBAC(_load_json(args.rbac) if args.rbac else None)
        manifests = None
        self.service_accounts = []
        if args.rbac_manifests:
            docs = []
            for path in args.rbac_manifests:
                docs += _load_yaml(path)
            manifests = ManifestRBAC(docs, ", ".join(args.rbac_manifests))
            # Namespaces first: the ServiceAccounts may live in one of them.
            self.service_accounts = [d for kind in ("Namespace", "ServiceAccount") for d in docs
                                     if isinstance(d, dict) and d.get("kind") == kind]
        self.authz = Authorizer(self.rbac, manifests)
        # ValidatingAdmissionPolicies are API objects: any client may create them (kubectl apply);
        # CEL runs in a Node.js process started at the first policy (apiserver/cel.py).
        self.admission = PolicyAdmission(self.store, Cel())
        self.tls = None
        self.listener = None

    def seed_object(self, res, obj):
        """Put an object into the world as it is (status included), creating or replacing it."""
        obj = copy.deepcopy(obj)
        obj = res.from_wire(obj)
        md = obj.setdefault("metadata", {})
        if not md.get("name"):
            raise ApiError(400, "seed objects need metadata.name", "BadRequest")
        storage_res = resources.STORAGE_RESOURCE[res.storage]
        if storage_res.namespaced:
            md.setdefault("namespace", "default")
        if storage_res.kind == "Pod" and "status" not in obj and (obj.get("spec") or {}).get("nodeName"):
            obj["status"] = running_status(obj, self.clock)
        with self.store.lock:
            if self.store.get(res.storage, md.get("namespace", ""), md["name"]) is None:
                return self.objects.create(storage_res, md.get("namespace", ""), obj, from_api=False)
            return self.objects.replace_raw(storage_res, obj)


def _load_json(path):
    with open(path) as f:
        return json.load(f)


def _load_yaml(path):
    try:
        import yaml
    except ImportError:
        sys.exit("--rbac-manifests needs python3-yaml (tests/install-deps.sh installs it)")
    try:
        with open(path) as f:
            return list(yaml.safe_load_all(f))
    except (OSError, yaml.YAMLError) as e:
        sys.exit("--rbac-manifests %s: %s" % (path, e))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--control-port", type=int, default=0)
    ap.add_argument("--seed")
    ap.add_argument("--profile", metavar="FILE",
                    help="profile every thread's CPU time; write the merged pstats to FILE at exit")
    ap.add_argument("--token", action="append", default=[], metavar="TOKEN=USER")
    ap.add_argument("--clock-offset", type=float, default=0.0)
    ap.add_argument("--deletion-scale", type=float, default=0.05)
    ap.add_argument("--rbac", metavar="FILE.json")
    ap.add_argument("--rbac-manifests", action="append", default=[], metavar="FILE.yaml",
                    help="RBAC manifests to enforce (repeatable; multi-document YAML)")
    # The real defaults are ten times these (1.28: 40 s, 5 s, 10 s, 5 min; 1800 s; 10 s; 2 min).
    ap.add_argument("--node-monitor-grace-period", type=float, default=4.0, metavar="S",
                    help="no heartbeat for this long: the Node goes Ready=Unknown and unreachable")
    ap.add_argument("--node-monitor-period", type=float, default=0.5, metavar="S")
    ap.add_argument("--node-status-update-frequency", type=float, default=1.0, metavar="S",
                    help="how often a kubelet syncs its node status and renews its node Lease")
    ap.add_argument("--node-status-report-frequency", type=float, default=30.0, metavar="S",
                    help="how often a kubelet posts an unchanged status (a fresh lastHeartbeatTime)")
    ap.add_argument("--kubelet-startup-not-ready", type=float, default=0.0, metavar="S",
                    help="how long a started kubelet reports Ready=False before its runtime check passes")
    ap.add_argument("--min-request-timeout", type=float, default=5.0, metavar="S",
                    help="a watch without timeoutSeconds ends after a random time in [S, 2S]")
    ap.add_argument("--watch-cache-size", type=int, default=1000, metavar="N",
                    help="events kept per resource for watch resumption; older ones get 410 Expired")
    ap.add_argument("--eviction-retry-duration", type=float, default=1.0, metavar="S",
                    help="how long an eviction retries conflicts before answering 409 (real: 20 x 0.5 s)")
    ap.add_argument("--disrupted-pod-timeout", type=float, default=12.0, metavar="S",
                    help="how long an eviction's status.disruptedPods entry counts if the pod is not deleted")
    args = ap.parse_args()
    if args.profile:
        profiling.start()

    os.makedirs(args.state_dir, exist_ok=True)
    ready_path = os.path.join(args.state_dir, "ready.json")
    try:
        os.unlink(ready_path)
    except FileNotFoundError:
        pass

    try:
        ctx = Context(args)
    except ManifestError as e:
        sys.exit("--rbac-manifests: %s" % e)
    ctx.pki.ensure()

    token_file = os.path.join(ctx.state_dir, "admin.token")
    try:
        with open(token_file) as f:
            admin_token = f.read().strip()
    except FileNotFoundError:
        admin_token = ""
    if not admin_token:
        admin_token = secrets.token_hex(24)
        write_atomic(token_file, admin_token + "\n", private=True)
    ctx.auth.add_token(admin_token, ADMIN)
    for spec in args.token:
        token, sep, user = spec.partition("=")
        if not sep or not token or not user:
            ap.error("--token wants TOKEN=USER, got %r" % spec)
        ctx.auth.add_token(token, user)

    ns_res = resources.by_kind("Namespace")
    for ns in DEFAULT_NAMESPACES:
        ctx.objects.create(ns_res, "", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
                           from_api=False)
    # The manifests' Namespaces and ServiceAccounts exist, as after `kubectl apply`: tokens can be
    # made for the accounts, and objects created in the namespaces.
    for obj in ctx.service_accounts:
        ctx.seed_object(resources.by_kind(obj["kind"]), obj)
    if args.seed:
        seed = _load_json(args.seed)
        if isinstance(seed, dict):
            seed = seed.get("items", [seed])
        for obj in seed:
            res = resources.for_object(obj)
            if res is None:
                sys.exit("seed: unknown apiVersion/kind %s/%s" % (obj.get("apiVersion"), obj.get("kind")))
            ctx.seed_object(res, obj)

    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(ctx.pki.server_crt, ctx.pki.server_key)
    tls.load_verify_locations(ctx.pki.ca_crt)
    tls.verify_mode = ssl.CERT_OPTIONAL
    ctx.tls = tls

    ctx.listener = ApiListener(ctx, args.port)
    ctx.listener.start()
    control = ControlServer(("127.0.0.1", args.control_port), ctx)
    control.start()
    port = ctx.listener.port
    cport = control.server_address[1]
    url = "https://127.0.0.1:%d" % port

    admin_crt, admin_key = ctx.pki.client_cert(ADMIN, ["system:masters"], reuse=True)
    write_atomic(os.path.join(ctx.state_dir, "admin.kubeconfig"),
                 kubeconfig(url, ctx.pki.ca_crt, ADMIN, token=admin_token), private=True)
    write_atomic(os.path.join(ctx.state_dir, "admin-cert.kubeconfig"),
                 kubeconfig(url, ctx.pki.ca_crt, ADMIN, cert=admin_crt, key=admin_key), private=True)

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    write_atomic(ready_path, json.dumps({
        "url": url, "control_url": "http://127.0.0.1:%d" % cport, "pid": os.getpid(),
        "ca": ctx.pki.ca_crt, "admin_token": admin_token,
        "kubeconfig": os.path.join(ctx.state_dir, "admin.kubeconfig"),
        "cert_kubeconfig": os.path.join(ctx.state_dir, "admin-cert.kubeconfig"),
    }, indent=1) + "\n")

    # Short waits: the kernel may hand SIGTERM to any thread, and Python runs its handler in the
    # main thread only once that thread wakes up (a wait of an hour ignored SIGTERM for that long).
    while not stop.wait(0.5):
        pass
    if args.profile:
        profiling.dump(args.profile)
    # Watch and connection threads are daemons; nothing needs flushing, so leave at once.
    try:
        os.unlink(ready_path)
    except OSError:
        pass
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
