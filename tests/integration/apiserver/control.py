"""The control API (plain HTTP on loopback, no auth): what tests use to look behind the API and to
change the world around it. JSON in and out; the endpoints are the ROUTES table at the bottom:

  GET/DELETE /log [?since=SEQ]    API requests: seq, time (epoch s, real clock), method, path, query,
                                  user, user_agent, verb, resource, namespace, name, status
                                  (0 = dropped), content_type, body, fault, admission
                                  ({"admitted": ["policy/binding"]} or {"denied": message}: the
                                  ValidatingAdmissionPolicies that applied); watches logged when
                                  they start
  GET /denials                    every request the authorizer forbade (403): time, method, path,
                                  user_agent, user, verb, group, resource, namespace, name,
                                  message; DELETE /log does not clear it
  GET /rbac                       what --rbac-manifests loaded (names and counts)
  GET/POST/DELETE /faults         rules {match, method?, user?, action, count?, ...}: POST appends;
                                  actions status|delay|drop|conflict|throttle|eviction|truncate|
                                  huge-line|tls-stall (faults.py); their records of what happened
  GET/POST /outage {"seconds": N} close the API port for N s (0 = reopen now)
  POST /tokens {"token", "user"}; POST /client-cert {"user", "groups"?} -> {cert, key, ca}
  POST /nodes/NAME/ready {"ready": bool, "boot_id"?}
                                  the node's container runtime down or up: its kubelet keeps
                                  posting, Ready=False/True; with a boot_id other than the
                                  kubelet's, the node rebooted into that boot first
  GET /kubelets[/NAME]            kubelets {node, running, boot_id, started, stopped, serving, ...}
  POST /kubelets/NAME/stop        the machine went down: the kubelet posts nothing more (the Node
                                  keeps saying Ready with the old bootID)
  POST /kubelets/NAME/start {"boot_id"?, "new_boot"?, "not_ready_seconds"?, "kernel"?}
                                  the kubelet (re)starts, in boot boot_id (a new random one with
                                  new_boot; the same without either), reporting kernelVersion
                                  kernel from now on (uname -r of the new boot); creates it for a
                                  Node that does not exist yet
  POST /pods/NS/NAME/ready {"ready": bool}
                                  the pod's readiness probe fails (false: its kubelet reports it
                                  not ready, also after a reboot, while its containers run) or
                                  passes again (true)
  GET /pod-statuses               the pod statuses kubelets posted after a (re)start and through
                                  /pods/NS/NAME/ready: {time, node, pod: "ns/name", status:
                                  restarting|running|unready|ready}, in time order
  GET /timeline[?kubelets=1]      node schedulability changes {time, node, unschedulable, ...};
                                  with kubelets=1 also {time, node, kubelet: started|stopped|
                                  ready|notready, boot_id}, in time order
  GET /objects?kind=K[&namespace=NS][&name=N]; POST /objects (object or list: create or replace
                                  as given, status included); DELETE /objects/KIND/NS-or-_/NAME
  GET/POST /clock {"offset": S}; GET/POST /controllers {replicasets, deletion_scale, start_delay,
                                  node_monitor_grace_period, node_status_report_frequency,
                                  min_request_timeout, eviction_retry_duration, pod_status_delay
                                  (how long after a rebooted node's kubelet posts Node Ready it
                                  posts its pods' statuses; until then the API shows the stale
                                  ones from before the reboot)}
  GET /watches (open watch streams); GET /state (resourceVersion, history floor, API port state)
"""

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from . import resources
from .errors import ApiError


class ControlServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, ctx):
        self.ctx = ctx
        super().__init__(addr, ControlHandler)

    def start(self):
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1}, name="control",
                         daemon=True).start()


class _Bad(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


class ControlHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_GET

    def _reply(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError as e:
            raise _Bad(400, "invalid JSON: %s" % e)

    def _dispatch(self):
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query))
        path = url.path.rstrip("/") or "/"
        try:
            body = self._body()
            for (method, pattern), fn in ROUTES.items():
                if method != self.command:
                    continue
                m = re.fullmatch(pattern, path)
                if m:
                    code, obj = fn(self.server.ctx, body, query, *m.groups())
                    self._reply(code, obj)
                    return
            raise _Bad(404, "no such control endpoint: %s %s" % (self.command, path))
        except _Bad as e:
            self._reply(e.code, {"error": str(e)})
        except ApiError as e:
            self._reply(e.code, e.status)
        except (ValueError, KeyError, TypeError) as e:
            self._reply(400, {"error": "%s: %s" % (type(e).__name__, e)})


def _res(kind):
    r = resources.by_kind(kind or "")
    if r is None:
        raise _Bad(400, "unknown kind %r" % kind)
    return r


def get_log(ctx, body, q):
    since = int(q.get("since") or 0)
    return 200, [{k: v for k, v in e.items() if not k.startswith("_")} for e in ctx.log.list()
                 if e["seq"] > since]


def clear_log(ctx, body, q):
    ctx.log.clear()
    return 200, {}


def get_denials(ctx, body, q):
    return 200, ctx.authz.denials()


def get_rbac(ctx, body, q):
    m = ctx.authz.manifests
    return 200, m.describe() if m is not None else None


def get_faults(ctx, body, q):
    return 200, ctx.faults.list()


def post_faults(ctx, body, q):
    ctx.faults.add(body)
    if any(isinstance(r, dict) and r.get("cut") for r in (body if isinstance(body, list) else [body])):
        ctx.listener.kill_connections()
    return 200, ctx.faults.list()


def clear_faults(ctx, body, q):
    ctx.faults.clear()
    return 200, {}


def post_outage(ctx, body, q):
    ctx.listener.outage(float((body or {}).get("seconds", 0)))
    return 200, ctx.listener.state()


def get_outage(ctx, body, q):
    return 200, ctx.listener.state()


def post_token(ctx, body, q):
    if not body or not body.get("token") or not body.get("user"):
        raise _Bad(400, "need token and user")
    ctx.auth.add_token(body["token"], body["user"])
    return 200, {"token": body["token"], "user": body["user"]}


def post_client_cert(ctx, body, q):
    if not body or not body.get("user"):
        raise _Bad(400, "need user")
    crt, key = ctx.pki.client_cert(body["user"], body.get("groups") or ())
    return 200, {"cert": crt, "key": key, "ca": ctx.pki.ca_crt}


def post_node_ready(ctx, body, q, name):
    body = body or {}
    node = ctx.cluster.set_node_ready(name, bool(body.get("ready", True)), body.get("boot_id"))
    if node is None:
        raise _Bad(404, "no node %s" % name)
    return 200, node


def _kubelet(ctx, name):
    k = ctx.cluster.kubelets.get(name)
    if k is None:
        raise _Bad(404, "no kubelet for node %s" % name)
    return k


def get_kubelets(ctx, body, q):
    with ctx.store.lock:
        return 200, [k.info() for _, k in sorted(ctx.cluster.kubelets.by_node.items())]


def get_kubelet(ctx, body, q, name):
    with ctx.store.lock:
        return 200, _kubelet(ctx, name).info()


def post_kubelet_stop(ctx, body, q, name):
    with ctx.store.lock:
        _kubelet(ctx, name)
        return 200, ctx.cluster.kubelets.stop(name).info()


def post_kubelet_start(ctx, body, q, name):
    body = body or {}
    k = ctx.cluster.kubelets.start(name, boot_id=body.get("boot_id"), new_boot=bool(body.get("new_boot")),
                                   not_ready_seconds=body.get("not_ready_seconds"), kernel=body.get("kernel"))
    with ctx.store.lock:
        return 200, k.info()


def post_pod_ready(ctx, body, q, ns, name):
    pod = ctx.cluster.set_pod_ready(ns, name, bool((body or {}).get("ready", True)))
    if pod is None:
        raise _Bad(404, "no pod %s/%s" % (ns, name))
    return 200, pod


def get_pod_statuses(ctx, body, q):
    with ctx.store.lock:
        return 200, list(ctx.cluster.pod_status_log)


def get_timeline(ctx, body, q):
    with ctx.store.lock:
        out = list(ctx.cluster.timeline)
        if q.get("kubelets") in ("1", "true"):
            out = sorted(out + ctx.cluster.kubelets.timeline, key=lambda e: e["time"])
        return 200, out


def get_objects(ctx, body, q):
    r = _res(q.get("kind"))
    ns = q.get("namespace")
    items, rv = ctx.store.list(r.storage, None if ns in (None, "", "_") else ns)
    if q.get("name"):
        items = [o for o in items if o["metadata"]["name"] == q["name"]]
    return 200, items


def post_objects(ctx, body, q):
    """Create or replace objects behind the API (no admission, no auth); status is kept as given."""
    objs = body if isinstance(body, list) else [body]
    out = []
    for obj in objs:
        if not isinstance(obj, dict):
            raise _Bad(400, "an object needs apiVersion, kind and metadata.name")
        r = resources.for_object(obj) or resources.by_kind(obj.get("kind", ""))
        if r is None:
            raise _Bad(400, "unknown kind %r" % obj.get("kind"))
        out.append(ctx.seed_object(r, obj))
    return 200, out if isinstance(body, list) else out[0]


def delete_object(ctx, body, q, kind, ns, name):
    r = _res(kind)
    ns = "" if ns == "_" else ns
    obj = ctx.store.remove(r.storage, ns if r.namespaced else "", name)
    if obj is None:
        raise _Bad(404, "no %s %s/%s" % (kind, ns, name))
    return 200, obj


def post_clock(ctx, body, q):
    ctx.clock.set_offset(float((body or {}).get("offset", 0)))
    return 200, {"offset": ctx.clock.offset}


def get_clock(ctx, body, q):
    return 200, {"offset": ctx.clock.offset, "now": ctx.clock.now()}


def post_controllers(ctx, body, q):
    body = body or {}
    if "replicasets" in body:
        ctx.cluster.replicasets_enabled = bool(body["replicasets"])
    if "deletion_scale" in body:
        ctx.cluster.deletion_scale = float(body["deletion_scale"])
    if "start_delay" in body:
        ctx.cluster.start_delay = float(body["start_delay"])
    if "pod_status_delay" in body:
        ctx.cluster.pod_status_delay = float(body["pod_status_delay"])
    timing = ctx.cluster.timing
    if "node_monitor_grace_period" in body:
        timing.grace_period = float(body["node_monitor_grace_period"])
        timing.startup_grace_period = timing.grace_period * 1.5
    if "node_status_report_frequency" in body:
        timing.status_report = float(body["node_status_report_frequency"])
    if "min_request_timeout" in body:
        ctx.min_request_timeout = float(body["min_request_timeout"])
    if "eviction_retry_duration" in body:
        ctx.eviction_retry_duration = float(body["eviction_retry_duration"])
    return 200, get_controllers(ctx, None, q)[1]


def get_controllers(ctx, body, q):
    c = ctx.cluster
    return 200, {"replicasets": c.replicasets_enabled, "deletion_scale": c.deletion_scale,
                 "start_delay": c.start_delay, "pod_status_delay": c.pod_status_delay,
                 "node_monitor_grace_period": c.timing.grace_period,
                 "node_status_report_frequency": c.timing.status_report,
                 "min_request_timeout": ctx.min_request_timeout,
                 "eviction_retry_duration": ctx.eviction_retry_duration}


def get_watches(ctx, body, q):
    return 200, [dict(w.info, resource=w.resource.qualified, namespace=w.namespace)
                 for w in ctx.store.all_watchers()]


def get_state(ctx, body, q):
    return 200, {"resourceVersion": str(ctx.store.current_rv()), "history_floor": ctx.store.floor(),
                 "api": ctx.listener.state(), "clock_offset": ctx.clock.offset}


ROUTES = {
    ("GET", r"/log"): get_log,
    ("DELETE", r"/log"): clear_log,
    ("GET", r"/denials"): get_denials,
    ("GET", r"/rbac"): get_rbac,
    ("GET", r"/faults"): get_faults,
    ("POST", r"/faults"): post_faults,
    ("DELETE", r"/faults"): clear_faults,
    ("GET", r"/outage"): get_outage,
    ("POST", r"/outage"): post_outage,
    ("POST", r"/tokens"): post_token,
    ("POST", r"/client-cert"): post_client_cert,
    ("POST", r"/nodes/([^/]+)/ready"): post_node_ready,
    ("GET", r"/kubelets"): get_kubelets,
    ("GET", r"/kubelets/([^/]+)"): get_kubelet,
    ("POST", r"/kubelets/([^/]+)/stop"): post_kubelet_stop,
    ("POST", r"/kubelets/([^/]+)/start"): post_kubelet_start,
    ("POST", r"/pods/([^/]+)/([^/]+)/ready"): post_pod_ready,
    ("GET", r"/pod-statuses"): get_pod_statuses,
    ("GET", r"/timeline"): get_timeline,
    ("GET", r"/objects"): get_objects,
    ("POST", r"/objects"): post_objects,
    ("DELETE", r"/objects/([^/]+)/([^/]+)/([^/]+)"): delete_object,
    ("GET", r"/clock"): get_clock,
    ("POST", r"/clock"): post_clock,
    ("GET", r"/controllers"): get_controllers,
    ("POST", r"/controllers"): post_controllers,
    ("GET", r"/watches"): get_watches,
    ("GET", r"/state"): get_state,
}
