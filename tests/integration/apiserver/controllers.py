"""The rest of a cluster, simulated: the disruption controller (PDB status), the kubelet (starts
pods, confirms deletions after the scaled grace period), the scheduler, the ReplicaSet controller,
and a recorder of node schedulability for the tests' safety assertions.

Hooks run under the store lock on every event; anything that should happen "later" goes through
Timers so it runs asynchronously, as the real controllers do."""

import copy
import heapq
import itertools
import math
import sys
import threading
import time
import traceback

from .objects import random_suffix, ready_condition
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
    def __init__(self, store, objects, clock, deletion_scale=0.05):
        self.store = store
        self.objects = objects
        self.clock = clock
        self.timers = Timers()
        self.deletion_scale = deletion_scale
        self.start_delay = 0.3
        self.replicasets_enabled = True
        self.timeline = []
        self._last_unsched = {}
        self._replaced = set()
        self._finishing = set()
        self._starting = set()
        self.res_pod = by_kind("Pod")
        self.res_node = by_kind("Node")
        self.res_pdb = by_kind("PodDisruptionBudget")
        self.res_rs = by_kind("ReplicaSet")
        store.hooks.append(self._on_event)

    # -- event dispatch (under the store lock) ----------------------------------------------------
    def _on_event(self, ev):
        if ev.storage == self.res_node.storage:
            self._record_node(ev)
            if ev.type != DELETED and is_ready(ev.obj):
                self.timers.schedule(0, self._node_ready, ev.obj["metadata"]["name"])
            if ev.type != DELETED:
                self.timers.schedule(0, self._schedule_pending)
        elif ev.storage == self.res_pod.storage:
            self._pod_event(ev)
            self._recompute_pdbs(ev.obj["metadata"].get("namespace", ""))
        elif ev.storage == self.res_pdb.storage and ev.type != DELETED:
            self._recompute_pdbs(ev.obj["metadata"].get("namespace", ""))

    def _pod_event(self, ev):
        pod, md = ev.obj, ev.obj["metadata"]
        was_terminating = ev.old is not None and ev.old["metadata"].get("deletionTimestamp")
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
                self.timers.schedule(0, self._schedule_pending)
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

    # -- kubelet ---------------------------------------------------------------------------------
    def _node_ok(self, node_name):
        node = self.store.get(self.res_node.storage, "", node_name)
        return node is not None and is_ready(node)

    def _kubelet_finish(self, ns, name, uid):
        with self.store.lock:
            pod = self.store.get(self.res_pod.storage, ns, name)
            if pod is None or pod["metadata"]["uid"] != uid or not pod["metadata"].get("deletionTimestamp"):
                return
            node = (pod.get("spec") or {}).get("nodeName")
            # A kubelet that is down confirms nothing: the pod waits for its node to be Ready again.
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
            self.objects.replace_raw(self.res_pod, new)

    def _node_ready(self, node_name):
        """Work a kubelet catches up on when its node is Ready again."""
        with self.store.lock:
            if not self._node_ok(node_name):
                return
            pods, _ = self.store.list(self.res_pod.storage)
            for p in pods:
                if (p.get("spec") or {}).get("nodeName") != node_name:
                    continue
                md = p["metadata"]
                if md.get("deletionTimestamp"):
                    due = _deletion_due(p, self.deletion_scale)
                    self.timers.schedule(max(0.0, due - self.clock.now()), self._kubelet_finish,
                                         md["namespace"], md["name"], md["uid"])
                elif (p.get("status") or {}).get("phase") == "Pending" and md["uid"] not in self._starting:
                    self._starting.add(md["uid"])
                    self.timers.schedule(self.start_delay, self._kubelet_start, md["namespace"], md["name"],
                                         md["uid"])

    # -- scheduler -------------------------------------------------------------------------------
    def pick_node(self, pod, exclude=None):
        nodes, _ = self.store.list(self.res_node.storage)
        pods, _ = self.store.list(self.res_pod.storage)
        load = {}
        for p in pods:
            n = (p.get("spec") or {}).get("nodeName")
            if n and not p["metadata"].get("deletionTimestamp"):
                load[n] = load.get(n, 0) + 1
        best = None
        for n in nodes:
            name = n["metadata"]["name"]
            if name == exclude or not is_ready(n) or (n.get("spec") or {}).get("unschedulable"):
                continue
            if not all(tolerates(pod, t) for t in (n.get("spec") or {}).get("taints") or []):
                continue
            if best is None or load.get(name, 0) < load.get(best, 0):
                best = name
        return best

    def _schedule_pending(self):
        with self.store.lock:
            pods, _ = self.store.list(self.res_pod.storage)
            for p in pods:
                if (p.get("spec") or {}).get("nodeName") or p["metadata"].get("deletionTimestamp"):
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
            node = self.pick_node(pod, exclude=(old.get("spec") or {}).get("nodeName"))
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
        healthy = sum(1 for p in matching if pod_healthy(p))
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
        return {
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
    def set_node_ready(self, name, ready):
        with self.store.lock:
            node = self.store.get(self.res_node.storage, "", name)
            if node is None:
                return None
            new = copy.deepcopy(node)
            st = new.setdefault("status", {})
            old_conds = st.get("conditions") or []
            cond = ready_condition(ready, self.clock)
            for c in old_conds:
                if c.get("type") == "Ready" and (c.get("status") == "True") == bool(ready):
                    cond["lastTransitionTime"] = c.get("lastTransitionTime", cond["lastTransitionTime"])
            st["conditions"] = [cond] + [c for c in old_conds if c.get("type") != "Ready"]
            return self.objects.replace_raw(self.res_node, new)


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


def running_status(pod, clock):
    now = clock.rfc3339()
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
                               "restartCount": 0, "image": c.get("image", ""),
                               "imageID": "", "containerID": "containerd://%032x" % (i + 1),
                               "state": {"running": {"startedAt": now}}}
                              for i, c in enumerate(containers)],
    }
