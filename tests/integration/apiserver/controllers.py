"""The rest of a cluster, simulated: the disruption controller (PDB status), the kubelet's work
on pods (starts them, confirms deletions after the scaled grace period, restarts them after a
reboot), the scheduler, the ReplicaSet controller, and a recorder of node schedulability for the
tests' safety assertions. The kubelets' node status and the node lifecycle controller are in
nodes.py.

Hooks run under the store lock on every event; anything that should happen "later" goes through
Timers so it runs asynchronously, as the real controllers do."""

import collections
import copy
import heapq
import itertools
import math
import sys
import threading
import time
import traceback

from .clock import parse_time
from .nodes import TAINT_UNSCHEDULABLE, Kubelets, NodeLifecycleController, NodeTiming
from .objects import random_suffix
from .resources import by_kind
from .selectors import selector_from_spec
from .store import ADDED, DELETED

UNCOMPUTED_ANNOTATION = "test.nodereboot.io/uncomputed"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"


class Timers:
    def __init__(self):
        self._heap = []
        self._cv = threading.Condition()
        self._seq = itertools.count()
        self._thread = threading.Thread(target=self._run, name="timers", daemon=True)
        self._thread.start()

    def schedule(self, delay, fn, *args):
        with self._cv:
            heapq.heappush(self._heap, (time.monotonic() + max(0.0, delay), next(self._seq), fn, args))
            self._cv.notify()

    def _run(self):
        while True:
            with self._cv:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    self._cv.wait(None if not self._heap else self._heap[0][0] - time.monotonic())
                _, _, fn, args = heapq.heappop(self._heap)
            try:
                fn(*args)
            except Exception:
                traceback.print_exc(file=sys.stderr)


def is_ready(obj):
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def controller_ref(pod):
    for ref in pod.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def tolerates(pod, taint):
    if taint.get("effect") not in ("NoSchedule", "NoExecute"):
        return True
    for t in (pod.get("spec") or {}).get("tolerations") or []:
        if t.get("effect") and t.get("effect") != taint.get("effect"):
            continue
        if t.get("operator") == "Exists":
            if not t.get("key") or t.get("key") == taint.get("key"):
                return True
        elif t.get("key") == taint.get("key") and t.get("value", "") == taint.get("value", ""):
            return True
    return False


class Cluster:
    def __init__(self, store, objects, clock, deletion_scale=0.05, timing=None, disrupted_pod_timeout=12.0):
        self.store = store
        self.objects = objects
        self.clock = clock
        self.timers = Timers()
        self.deletion_scale = deletion_scale
        self.start_delay = 0.3
        # How long after a rebooted node's kubelet starts (and posts the Node Ready) it posts the
        # statuses of the pods that survived the reboot. The real kubelet posts pod statuses from
        # its status manager (pkg/kubelet/status/status_manager.go: syncBatch, after a pod worker
        # synced the pod), independently of the Node status loop that posts Ready
        # (kubelet_node_status.go): until then the API shows the previous boot's status, Running and
        # Ready=True, with container startedAt times from before the reboot. 0: at once.
        self.pod_status_delay = 0.0
        # (namespace, name) of pods whose readiness probe fails (control POST /pods/NS/NAME/ready):
        # their containers run but the kubelet reports them not ready until released.
        self.held_unready = set()
        # Every pod status a kubelet posted through the paths below: {time, node, pod, status}.
        self.pod_status_log = []
        # The disruption controller's DeletionTimeout (2 min, scaled): how long an eviction's entry
        # in status.disruptedPods keeps its pod out of the healthy count if the pod is not deleted.
        self.disrupted_pod_timeout = disrupted_pod_timeout
        self.replicasets_enabled = True
        self.timeline = []
        self._last_unsched = {}
        self._replaced = set()
        self._finishing = set()
        self._starting = set()
        self._pdb_rechecks = set()
        self._unscheduled = set()        # (namespace, name) of pods without a node, not being deleted
        # The scheduler's cache: pods on each node, and per controller, not being deleted.
        self._load = collections.Counter()
        self._siblings = collections.Counter()    # (controller uid, node) -> pods
        self._schedule_queued = False
        self.res_pod = by_kind("Pod")
        self.res_node = by_kind("Node")
        self.res_pdb = by_kind("PodDisruptionBudget")
        self.res_rs = by_kind("ReplicaSet")
        self.timing = timing or NodeTiming()
        self.kubelets = Kubelets(self, self.timing)
        self.node_lifecycle = NodeLifecycleController(self, self.timing)
        store.add_index(self.res_pod.storage, "spec.nodeName", lambda p: (p.get("spec") or {}).get("nodeName") or "")
        store.hooks.append(self._on_event)

    # -- event dispatch (under the store lock) ----------------------------------------------------
    def _on_event(self, ev):
        if ev.storage == self.res_node.storage:
            self._record_node(ev)
            if ev.type == ADDED:
                self.kubelets.node_added(ev.obj)
            if ev.type != DELETED:
                self.timers.schedule(0, self.node_lifecycle.no_schedule_pass, ev.obj["metadata"]["name"])
                self._queue_scheduling()
        elif ev.storage == self.res_pod.storage:
            self._count_placement(ev.old, -1)
            if ev.type != DELETED:
                self._count_placement(ev.obj, 1)
            self._pod_event(ev)
            self._recompute_pdbs(ev.obj["metadata"].get("namespace", ""))
        elif ev.storage == self.res_pdb.storage and ev.type != DELETED:
            self._recompute_pdbs(ev.obj["metadata"].get("namespace", ""))

    def _count_placement(self, pod, delta):
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            return
        node = (pod.get("spec") or {}).get("nodeName")
        if not node:
            return
        self._load[node] += delta
        ref = controller_ref(pod)
        if ref and ref.get("uid"):
            self._siblings[(ref["uid"], node)] += delta

    def _pod_event(self, ev):
        pod, md = ev.obj, ev.obj["metadata"]
        was_terminating = ev.old is not None and ev.old["metadata"].get("deletionTimestamp")
        key = (md.get("namespace", ""), md["name"])
        if ev.type != DELETED and not md.get("deletionTimestamp") and not (pod.get("spec") or {}).get("nodeName"):
            self._unscheduled.add(key)
        else:
            self._unscheduled.discard(key)
        if ev.type == DELETED:
            if not was_terminating:
                self._maybe_replace(pod)
            return
        if md.get("deletionTimestamp"):
            key = (md["uid"], md.get("deletionGracePeriodSeconds"))
            if key not in self._finishing:
                self._finishing.add(key)
                grace = md.get("deletionGracePeriodSeconds") or 0
                self.timers.schedule(grace * self.deletion_scale, self._kubelet_finish,
                                     md["namespace"], md["name"], md["uid"])
            if not was_terminating:
                self._maybe_replace(pod)
            return
        node = (pod.get("spec") or {}).get("nodeName")
        phase = (pod.get("status") or {}).get("phase")
        if not node:
            if ev.type == ADDED:
                self._queue_scheduling()
        elif phase == "Pending" and md["uid"] not in self._starting:
            self._starting.add(md["uid"])
            self.timers.schedule(self.start_delay, self._kubelet_start, md["namespace"], md["name"], md["uid"])

    # -- timeline --------------------------------------------------------------------------------
    def _record_node(self, ev):
        name = ev.obj["metadata"]["name"]
        if ev.type == DELETED:
            unsched = False
        else:
            unsched = bool((ev.obj.get("spec") or {}).get("unschedulable"))
        if self._last_unsched.get(name) == unsched and ev.type != DELETED:
            return
        entry = {"time": time.time(), "node": name, "unschedulable": unsched,
                 "resourceVersion": ev.obj["metadata"]["resourceVersion"]}
        if ev.type == DELETED:
            entry["deleted"] = True
            self._last_unsched.pop(name, None)
        else:
            self._last_unsched[name] = unsched
        self.timeline.append(entry)

    # -- kubelet: its pods -----------------------------------------------------------------------
    def _node_ok(self, node_name):
        """Whether the node's kubelet does pod work now. The Node's Ready condition says nothing
        here: it stays True while a rebooting machine's kubelet is gone."""
        k = self.kubelets.get(node_name)
        return k is not None and k.serving()

    def _kubelet_finish(self, ns, name, uid):
        with self.store.lock:
            pod = self.store.get(self.res_pod.storage, ns, name)
            if pod is None or pod["metadata"]["uid"] != uid or not pod["metadata"].get("deletionTimestamp"):
                return
            node = (pod.get("spec") or {}).get("nodeName")
            # A kubelet that is down confirms nothing: the pod waits for it to come back.
            # Pods of a node that no longer exists are collected (as pod GC does).
            if node and self.store.get(self.res_node.storage, "", node) is not None and not self._node_ok(node):
                return
            self.objects.terminate(self.res_pod, pod, 0)

    def _kubelet_start(self, ns, name, uid):
        with self.store.lock:
            self._starting.discard(uid)
            pod = self.store.get(self.res_pod.storage, ns, name)
            if pod is None or pod["metadata"]["uid"] != uid or pod["metadata"].get("deletionTimestamp"):
                return
            node = (pod.get("spec") or {}).get("nodeName")
            if not node or (pod.get("status") or {}).get("phase") != "Pending" or not self._node_ok(node):
                return
            new = copy.deepcopy(pod)
            new["status"] = running_status(pod, self.clock)
            if (ns, name) in self.held_unready:
                new["status"] = unready_status(new)
            self.objects.replace_raw(self.res_pod, new)

    def _post_pod_status(self, pod, status, what):
        """The kubelet posts a pod's status (logged for the tests: GET /pod-statuses)."""
        new = copy.deepcopy(pod)
        new["status"] = status
        self.pod_status_log.append({"time": time.time(), "node": (pod.get("spec") or {}).get("nodeName"),
                                    "pod": "%s/%s" % (pod["metadata"].get("namespace", ""), pod["metadata"]["name"]),
                                    "status": what})
        return self.objects.replace_raw(self.res_pod, new)

    def _kubelet_restarted(self, ns, name, uid, started):
        """The late first post of a pod's status by the kubelet of a new boot (pod_status_delay)."""
        with self.store.lock:
            pod = self.store.get(self.res_pod.storage, ns, name)
            k = self.kubelets.get((pod or {}).get("spec", {}).get("nodeName") or "")
            if pod is None or pod["metadata"]["uid"] != uid or k is None or not k.running or k.started != started:
                return
            self._post_pod_status(pod, restarting_status(pod, self.clock), "restarting")
            self.timers.schedule(self.start_delay, self._kubelet_resync, ns, name, uid)

    def set_pod_ready(self, ns, name, ready):
        """A pod's readiness probe starts failing (ready False: the kubelet reports it not ready from
        now on, also after a reboot, while its containers run) or passes again."""
        with self.store.lock:
            pod = self.store.get(self.res_pod.storage, ns, name)
            if pod is None:
                return None
            if ready:
                self.held_unready.discard((ns, name))
            else:
                self.held_unready.add((ns, name))
            node = (pod.get("spec") or {}).get("nodeName")
            if (pod.get("status") or {}).get("phase") != "Running" or not node or not self._node_ok(node):
                return pod
            running = all("running" in (c.get("state") or {}) for c in pod["status"].get("containerStatuses") or [])
            if not running:
                return pod  # the resync after the (re)start applies it
            if ready and not is_ready(pod):
                return self._post_pod_status(pod, ready_status(pod), "ready")
            if not ready and is_ready(pod):
                return self._post_pod_status(pod, unready_status(pod), "unready")
            return pod

    def _kubelet_resync(self, ns, name, uid):
        """A pod of a kubelet that came back runs (and is ready) again."""
        with self.store.lock:
            pod = self.store.get(self.res_pod.storage, ns, name)
            if pod is None or pod["metadata"]["uid"] != uid or pod["metadata"].get("deletionTimestamp"):
                return
            node = (pod.get("spec") or {}).get("nodeName")
            if not node or (pod.get("status") or {}).get("phase") != "Running" or not self._node_ok(node):
                return
            held = (ns, name) in self.held_unready
            running = all("running" in (c.get("state") or {}) for c in pod["status"].get("containerStatuses") or [])
            if is_ready(pod) and all(c.get("ready") for c in pod["status"].get("containerStatuses") or []):
                if not held:
                    return
            elif held and running and pod["status"].get("containerStatuses"):
                return
            st = running_status(pod, self.clock, restarts=_restarts(pod))
            if held:
                self._post_pod_status(pod, unready_status(dict(pod, status=st)), "unready")
            else:
                self._post_pod_status(pod, st, "running")

    def kubelet_started(self, node_name, rebooted):
        """What a kubelet catches up on when it starts (or its runtime is back). After a reboot its
        containers are gone: it reports its pods' containers not ready (restartCount + 1) until it
        has started them again."""
        with self.store.lock:
            pods, _ = self.store.list(self.res_pod.storage)
            for p in pods:
                if (p.get("spec") or {}).get("nodeName") != node_name:
                    continue
                md = p["metadata"]
                phase = (p.get("status") or {}).get("phase")
                if md.get("deletionTimestamp"):
                    due = _deletion_due(p, self.deletion_scale)
                    self.timers.schedule(max(0.0, due - self.clock.now()), self._kubelet_finish,
                                         md["namespace"], md["name"], md["uid"])
                elif phase == "Pending" and md["uid"] not in self._starting:
                    self._starting.add(md["uid"])
                    self.timers.schedule(self.start_delay, self._kubelet_start, md["namespace"], md["name"],
                                         md["uid"])
                elif phase == "Running":
                    if rebooted and self.pod_status_delay > 0:
                        k = self.kubelets.get(node_name)
                        self.timers.schedule(self.pod_status_delay, self._kubelet_restarted, md["namespace"],
                                             md["name"], md["uid"], k.started if k else None)
                        continue
                    if rebooted:
                        self._post_pod_status(p, restarting_status(p, self.clock), "restarting")
                    self.timers.schedule(self.start_delay, self._kubelet_resync, md["namespace"], md["name"],
                                         md["uid"])

    # -- scheduler -------------------------------------------------------------------------------
    def feasible(self, pod, node):
        """The scheduler's filters, which see only the Node object: NodeUnschedulable (a cordoned
        node takes pods that tolerate node.kubernetes.io/unschedulable:NoSchedule), TaintToleration
        (NoSchedule and NoExecute taints, among them the lifecycle controller's not-ready and
        unreachable ones), and a Ready condition. A node whose kubelet is down but whose Ready is
        still True gets pods, as in a real cluster; they stay Pending until the kubelet is back."""
        spec = node.get("spec") or {}
        if spec.get("unschedulable") and not tolerates(pod, {"key": TAINT_UNSCHEDULABLE, "effect": "NoSchedule"}):
            return False
        if not is_ready(node):
            return False
        return all(tolerates(pod, t) for t in spec.get("taints") or [])

    def pick_node(self, pod, exclude=None):
        """Among feasible nodes the one with the fewest pods of the same controller (the default
        PodTopologySpread by hostname), then the fewest pods. The node a replaced pod left is not
        avoided: a tolerating replacement may well go back to the cordoned node it was evicted from."""
        ref = controller_ref(pod)
        uid = (ref or {}).get("uid")
        best = None
        for n in self.store.data[self.res_node.storage].values():
            name = n["metadata"]["name"]
            if name == exclude or not self.feasible(pod, n):
                continue
            score = (self._siblings[(uid, name)] if uid else 0, self._load[name], name)   # ties: the first by name
            if best is None or score < best:
                best = score
        return best[2] if best else None

    def _queue_scheduling(self):
        """One scheduling pass queued at a time (every Node heartbeat asks for one)."""
        if self._schedule_queued or not self._unscheduled:
            return
        self._schedule_queued = True
        self.timers.schedule(0, self._schedule_pending)

    def _schedule_pending(self):
        with self.store.lock:
            self._schedule_queued = False
            pods = [self.store.get(self.res_pod.storage, ns, name) for ns, name in sorted(self._unscheduled)]
            for p in pods:
                if p is None or (p.get("spec") or {}).get("nodeName") or p["metadata"].get("deletionTimestamp"):
                    continue
                if (p.get("status") or {}).get("phase", "Pending") != "Pending":
                    continue
                node = self.pick_node(p)
                if node is None:
                    continue
                new = copy.deepcopy(p)
                new["spec"]["nodeName"] = node
                self.objects.replace_raw(self.res_pod, new)

    # -- ReplicaSet controller -------------------------------------------------------------------
    def _maybe_replace(self, pod):
        ref = controller_ref(pod)
        if not self.replicasets_enabled or not ref or ref.get("kind") != "ReplicaSet":
            return
        uid = pod["metadata"]["uid"]
        if uid in self._replaced:
            return
        self._replaced.add(uid)
        self.timers.schedule(0, self._replace, copy.deepcopy(pod), ref)

    def _replace(self, old, ref):
        with self.store.lock:
            if not self.replicasets_enabled:
                return
            ns = old["metadata"]["namespace"]
            rs = self.store.get(self.res_rs.storage, ns, ref["name"])
            template = (rs or {}).get("spec", {}).get("template") if rs else None
            md = old["metadata"]
            labels = dict((template or {}).get("metadata", {}).get("labels") or md.get("labels") or {})
            spec = copy.deepcopy((template or {}).get("spec") or old.get("spec") or {})
            spec.pop("nodeName", None)
            pod = {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": "%s-%s" % (ref["name"], random_suffix()), "namespace": ns,
                                "labels": labels,
                                "ownerReferences": copy.deepcopy(md.get("ownerReferences") or [])},
                   "spec": spec}
            if md.get("annotations"):
                pod["metadata"]["annotations"] = {k: v for k, v in md["annotations"].items()
                                                  if k != MIRROR_ANNOTATION}
            node = self.pick_node(pod)
            if node:
                spec["nodeName"] = node
            self.objects.create(self.res_pod, ns, pod, from_api=True)

    # -- disruption controller -------------------------------------------------------------------
    def _recompute_pdbs(self, ns):
        pdbs, _ = self.store.list(self.res_pdb.storage, ns)
        if not pdbs:
            return
        pods, _ = self.store.list(self.res_pod.storage, ns)
        for pdb in pdbs:
            status = self.pdb_status(pdb, pods)
            old = pdb.get("status") or {}
            if _status_key(old) == _status_key(status):
                continue
            new = copy.deepcopy(pdb)
            new["status"] = status
            self.objects.replace_raw(self.res_pdb, new)

    def pdb_status(self, pdb, pods):
        md = pdb["metadata"]
        old = pdb.get("status") or {}
        if (md.get("annotations") or {}).get(UNCOMPUTED_ANNOTATION) == "true":
            return {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0}
        spec = pdb.get("spec") or {}
        sel = selector_from_spec(spec.get("selector"))
        matching = [p for p in pods if sel(p["metadata"].get("labels"))]
        disrupted = self._disrupted_pods(pdb, matching)
        healthy = sum(1 for p in matching if pod_healthy(p) and p["metadata"]["name"] not in disrupted)
        expected = self._expected_pods(matching)
        min_av, max_un = spec.get("minAvailable"), spec.get("maxUnavailable")
        if min_av is not None:
            if isinstance(min_av, str) and min_av.endswith("%"):
                desired = math.ceil(int(min_av[:-1]) * expected / 100.0)
            else:
                desired = int(min_av)
                expected = len(matching)
        elif max_un is not None:
            if isinstance(max_un, str) and max_un.endswith("%"):
                unav = math.ceil(int(max_un[:-1]) * expected / 100.0)
            else:
                unav = int(max_un)
            desired = max(0, expected - unav)
        else:
            desired = expected
        allowed = max(0, healthy - desired)
        cond_status = "True" if allowed > 0 else "False"
        ltt = self.clock.rfc3339()
        for c in old.get("conditions") or []:
            if c.get("type") == "DisruptionAllowed" and c.get("status") == cond_status:
                ltt = c.get("lastTransitionTime", ltt)
        st = {
            "observedGeneration": md.get("generation", 1),
            "disruptionsAllowed": allowed,
            "currentHealthy": healthy,
            "desiredHealthy": desired,
            "expectedPods": expected,
            "conditions": [{"type": "DisruptionAllowed", "status": cond_status,
                            "reason": "SufficientPods" if allowed > 0 else "InsufficientPods",
                            "message": "", "observedGeneration": md.get("generation", 1),
                            "lastTransitionTime": ltt}],
        }
        if disrupted:
            st["disruptedPods"] = disrupted
        return st

    def _disrupted_pods(self, pdb, matching):
        """buildDisruptedPodMap: an eviction's entry counts its pod out of the healthy ones until the
        pod is terminating or gone, or the entry is older than DeletionTimeout (then the eviction
        evidently did not delete it; the budget is given back)."""
        entries = (pdb.get("status") or {}).get("disruptedPods") or {}
        alive = {p["metadata"]["name"] for p in matching if not p["metadata"].get("deletionTimestamp")}
        now = self.clock.now()
        out = {}
        for name, stamp in entries.items():
            t = parse_time(stamp)
            if name not in alive or t is None:
                continue
            if now >= t + self.disrupted_pod_timeout:
                continue
            out[name] = stamp
            # Look again when it expires: nothing else may change in the meantime.
            key = (pdb["metadata"]["namespace"], name, stamp)
            if key not in self._pdb_rechecks:
                self._pdb_rechecks.add(key)
                self.timers.schedule(t + self.disrupted_pod_timeout - now + 0.05, self._recheck_pdbs, key)
        return out

    def _recheck_pdbs(self, key):
        with self.store.lock:
            self._pdb_rechecks.discard(key)
            self._recompute_pdbs(key[0])

    def _expected_pods(self, matching):
        """The scale of the pods' controllers where known (as the disruption controller does),
        else one per pod that is not terminating."""
        total, seen = 0, set()
        for p in matching:
            ref = controller_ref(p)
            scale = None
            if ref and ref.get("kind") == "ReplicaSet":
                rs = self.store.get(self.res_rs.storage, p["metadata"]["namespace"], ref["name"])
                if rs is not None and "replicas" in (rs.get("spec") or {}):
                    scale = rs["spec"]["replicas"]
            if scale is not None:
                if ref["name"] not in seen:
                    seen.add(ref["name"])
                    total += int(scale)
            elif not p["metadata"].get("deletionTimestamp"):
                total += 1
        return total

    # -- control API helpers ---------------------------------------------------------------------
    def set_node_ready(self, name, ready, boot_id=None):
        """The node's container runtime down (ready False: its kubelet keeps posting, Ready=False) or
        back. With a boot_id other than the kubelet's, the machine rebooted into that boot first
        (for callers that only knew Ready: a running kubelet of that boot)."""
        with self.store.lock:
            if self.store.get(self.res_node.storage, "", name) is None:
                return None
            if boot_id:
                self.kubelets.start(name, boot_id=boot_id)
            self.kubelets.set_runtime_ready(name, ready)
            return self.store.get(self.res_node.storage, "", name)


def _status_key(st):
    st = dict(st)
    conds = [{k: v for k, v in c.items() if k != "lastTransitionTime"} for c in st.pop("conditions", []) or []]
    return (sorted(st.items(), key=lambda kv: kv[0]).__repr__(), repr(conds))


def _deletion_due(pod, scale):
    from .clock import parse_time
    md = pod["metadata"]
    grace = md.get("deletionGracePeriodSeconds") or 0
    ts = parse_time(md.get("deletionTimestamp"))
    start = (ts - grace) if ts is not None else 0
    return start + grace * scale


def pod_healthy(pod):
    return (not pod["metadata"].get("deletionTimestamp")
            and (pod.get("status") or {}).get("phase") == "Running" and is_ready(pod))


def _restarts(pod):
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return max([c.get("restartCount", 0) for c in statuses] or [0])


def restarting_status(pod, clock):
    """A Running pod's status as its kubelet reports it right after a reboot: the containers are
    gone, restarted later (restartCount + 1), so the pod is not ready."""
    now = clock.rfc3339()
    st = copy.deepcopy(pod.get("status") or {})
    names = []
    for c in st.get("conditions") or []:
        if c.get("type") in ("Ready", "ContainersReady") and c.get("status") != "False":
            c.update(status="False", lastTransitionTime=now, reason="ContainersNotReady")
    for cs in st.get("containerStatuses") or []:
        names.append(cs.get("name", ""))
        cs.update(ready=False, started=False, restartCount=cs.get("restartCount", 0) + 1,
                  lastState={"terminated": {"exitCode": 255, "reason": "Unknown", "finishedAt": now}},
                  state={"waiting": {"reason": "ContainerCreating"}})
    for c in st.get("conditions") or []:
        if c.get("type") in ("Ready", "ContainersReady"):
            c["message"] = "containers with unready status: [%s]" % " ".join(names)
    return st


def ready_status(pod):
    """A running pod whose readiness probes pass (again): the containers keep their start times."""
    st = copy.deepcopy(pod.get("status") or {})
    for c in st.get("conditions") or []:
        if c.get("type") in ("Ready", "ContainersReady"):
            c.update(status="True", lastTransitionTime=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
            c.pop("reason", None)
            c.pop("message", None)
    for cs in st.get("containerStatuses") or []:
        cs["ready"] = True
    return st


def unready_status(pod):
    """A running pod whose readiness probe fails: containers running (since their start), not ready."""
    st = copy.deepcopy(pod.get("status") or {})
    names = [cs.get("name", "") for cs in st.get("containerStatuses") or []]
    for c in st.get("conditions") or []:
        if c.get("type") in ("Ready", "ContainersReady"):
            c.update(status="False", reason="ContainersNotReady",
                     message="containers with unready status: [%s]" % " ".join(names),
                     lastTransitionTime=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    for cs in st.get("containerStatuses") or []:
        cs["ready"] = False
    return st


def running_status(pod, clock, restarts=0):
    now = clock.rfc3339()
    # The container runtime stamps startedAt with the node's clock, not the control plane's.
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    containers = (pod.get("spec") or {}).get("containers") or []
    node = (pod.get("spec") or {}).get("nodeName", "")
    n = sum(ord(c) for c in pod["metadata"]["name"]) % 250 + 2
    return {
        "phase": "Running",
        "conditions": [
            {"type": "Initialized", "status": "True", "lastTransitionTime": now},
            {"type": "Ready", "status": "True", "lastTransitionTime": now},
            {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
        ],
        "hostIP": "10.0.0.%d" % (sum(ord(c) for c in node) % 250 + 2),
        "podIP": "10.244.%d.%d" % (sum(ord(c) for c in node) % 250, n),
        "startTime": now,
        "qosClass": (pod.get("status") or {}).get("qosClass", "BestEffort"),
        "containerStatuses": [{"name": c.get("name", "c%d" % i), "ready": True, "started": True,
                               "restartCount": restarts, "image": c.get("image", ""),
                               "imageID": "", "containerID": "containerd://%032x" % (i + 1),
                               "state": {"running": {"startedAt": started}}}
                              for i, c in enumerate(containers)],
    }
