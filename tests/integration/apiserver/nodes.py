"""The node side of the simulated cluster: a kubelet per Node and the node lifecycle controller,
modelled on the real components (Kubernetes 1.28) so a client sees what a real cluster shows when
a machine reboots:

  * while the machine is down its kubelet posts nothing, so the Node keeps saying Ready=True with
    the previous boot's bootID (kubelet_node_status.go posts from the node; nothing else does);
  * only after node-monitor-grace-period without a heartbeat does the node lifecycle controller
    set Ready=Unknown and taint the Node unreachable (node_lifecycle_controller.go);
  * the kubelet of the new boot posts the new bootID and Ready=True with a fresh heartbeat.

Periods are the real defaults divided by ten (NodeTiming). Kubelet timestamps come from the node's
clock (real time); the controller's from the control plane's (the server clock, which tests may
shift), as in a real cluster.

Everything here runs on the Cluster's timer thread or under the store lock."""

import copy
import time
import uuid

from .resources import by_kind

NODE_LEASE_NAMESPACE = "kube-node-lease"
TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"
TAINT_NOT_READY = "node.kubernetes.io/not-ready"

# nodeConditionToTaintKeyStatusMap (node_lifecycle_controller.go), for the Ready condition.
READY_TAINTS = {"False": TAINT_NOT_READY, "Unknown": TAINT_UNREACHABLE}
CONTROLLER_TAINT_KEYS = {TAINT_UNSCHEDULABLE, TAINT_UNREACHABLE, TAINT_NOT_READY}

# The conditions a kubelet posts (pkg/kubelet/nodestatus/setters.go) besides Ready, when healthy.
PRESSURE_CONDITIONS = (
    ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
)
# The conditions the lifecycle controller turns Unknown (NetworkUnavailable is not its business).
MONITORED_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")

STARTUP_NOT_READY_MESSAGE = "container runtime status check may not have completed yet"
RUNTIME_DOWN_MESSAGE = "container runtime is down"


class NodeTiming:
    """Real 1.28 defaults / 10: kubelet nodeStatusUpdateFrequency 10 s (also the node Lease's renew
    interval, a quarter of its 40 s duration), nodeStatusReportFrequency 5 min; controller
    node-monitor-period 5 s, node-monitor-grace-period 40 s, node-startup-grace-period 60 s."""

    def __init__(self, grace_period=4.0, monitor_period=0.5, status_update=1.0, status_report=30.0,
                 startup_not_ready=0.0):
        self.grace_period = grace_period
        self.startup_grace_period = grace_period * 1.5
        self.monitor_period = monitor_period
        self.status_update = status_update
        self.status_report = status_report
        # How long a freshly started kubelet reports Ready=False before its runtime check passes.
        self.startup_not_ready = startup_not_ready


def condition(obj, ctype):
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def dashed_boot_id():
    """A boot ID as /proc/sys/kernel/random/boot_id shows it, which the kubelet reports unchanged."""
    return str(uuid.uuid4())


def _without_heartbeats(conditions):
    return sorted(repr(sorted((k, v) for k, v in c.items() if k != "lastHeartbeatTime")) for c in conditions or [])


def status_changed(old, new):
    """nodeStatusHasChanged (kubelet_node_status.go): the heartbeat alone is no change."""
    if _without_heartbeats(old.get("conditions")) != _without_heartbeats(new.get("conditions")):
        return True
    rest = lambda st: {k: v for k, v in st.items() if k != "conditions"}  # noqa: E731
    return rest(old) != rest(new)


DEFAULT_KERNEL = "6.1.0-13-amd64"


class Kubelet:
    """One node's kubelet as the API sees it. running False is a machine that is down: the kubelet
    posts nothing, confirms nothing and starts nothing."""

    def __init__(self, node, boot_id, version):
        self.node = node
        self.boot_id = boot_id
        self.version = version or "v1.28.4"
        # uname -r of the running kernel, which the kubelet reads at its start: a reboot into an
        # updated kernel shows a new one
        self.kernel = DEFAULT_KERNEL
        self.machine_id = uuid.uuid4().hex
        self.system_uuid = str(uuid.uuid4())
        self.running = True
        self.runtime_ready = True
        self.started = time.time()
        self.stopped = None
        self.boots = 1
        self.not_ready_until = 0.0
        self.last_report = None          # monotonic time of the last status post in this run
        self.reported_ready = None       # what the last post in this run said of Ready
        # The stored Node and the kubelet's state when it last computed the status: while neither
        # changed and no report is due, the status it would compute differs only in heartbeats,
        # so it posts nothing (the same result as computing it, without copying the Node).
        self.checked_node = None
        self.checked_inputs = None

    def serving(self):
        """Whether it starts pods and confirms deletions: running, with a working runtime."""
        return self.running and self.runtime_ready and time.time() >= self.not_ready_until

    def info(self):
        return {"node": self.node, "running": self.running, "boot_id": self.boot_id,
                "runtime_ready": self.runtime_ready, "started": self.started, "stopped": self.stopped,
                "boots": self.boots, "machine_id": self.machine_id, "serving": self.serving(),
                "reported_ready": self.reported_ready}


class Kubelets:
    """All kubelets, and their status loop (Kubelet.syncNodeStatus / tryUpdateNodeStatus and the node
    lease controller). A Node that appears gets a running kubelet, in the boot its
    status.nodeInfo.bootID names if it has one."""

    def __init__(self, cluster, timing):
        self.cluster = cluster
        self.store = cluster.store
        self.objects = cluster.objects
        self.clock = cluster.clock
        self.timing = timing
        self.by_node = {}
        self.timeline = []
        self.res_node = by_kind("Node")
        self.res_lease = by_kind("Lease")
        cluster.timers.schedule(timing.status_update, self._tick)

    # -- lifecycle (control API; under the store lock) ---------------------------------------------
    def get(self, node):
        return self.by_node.get(node)

    def node_added(self, node):
        """Hook: a Node appeared. Its kubelet is the one already known, or a new one: running, or
        stopped when the Node arrives with a Ready condition that is not True (a node that is
        down: nothing posts for it, so the seeded status stays until the lifecycle controller
        marks it Unknown)."""
        name = node["metadata"]["name"]
        k = self.by_node.get(name)
        if k is None:
            info = (node.get("status") or {}).get("nodeInfo") or {}
            k = Kubelet(name, info.get("bootID") or dashed_boot_id(), info.get("kubeletVersion"))
            self.by_node[name] = k
            ready = [c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"]
            if ready and ready[0].get("status") != "True":
                k.running = False
                k.stopped = time.time()
                self._record(k, "stopped")
            else:
                self._record(k, "started")
        if k.running:
            self.cluster.timers.schedule(0, self.sync, name, True)
            # Pods bound to the node before it existed wait for this.
            self.cluster.timers.schedule(0, self.cluster.kubelet_started, name, False)

    def start(self, name, boot_id=None, new_boot=False, not_ready_seconds=None, kernel=None):
        """Start the kubelet of a node (creating it for a Node that does not exist yet). A boot ID
        other than the current one is a reboot: the node's containers are gone."""
        with self.store.lock:
            k = self.by_node.get(name)
            if k is None:
                k = Kubelet(name, boot_id or dashed_boot_id(), None)
                self.by_node[name] = k
                rebooted = False
            else:
                if new_boot and not boot_id:
                    boot_id = dashed_boot_id()
                rebooted = bool(boot_id) and boot_id != k.boot_id
                if k.running and not rebooted:
                    return k
                if k.running:
                    self.stop(name)
                k.boot_id = boot_id or k.boot_id
                k.boots += rebooted
            k.running = True
            if kernel:
                k.kernel = kernel
            k.started = time.time()
            k.last_report = None
            k.reported_ready = None
            wait = self.timing.startup_not_ready if not_ready_seconds is None else float(not_ready_seconds)
            k.not_ready_until = k.started + wait
            self._record(k, "started")
            # The kubelet's first sync posts at once (lastStatusReportTime is zero), renews its
            # Lease, and catches up on its pods.
            self.sync(name, True)
            self.cluster.kubelet_started(name, rebooted)
            if wait > 0:
                self.cluster.timers.schedule(wait, self._runtime_checked, name, k.started)
            return k

    def _runtime_checked(self, name, started):
        """The end of a slow start: Ready=True, and the pod work held back until now."""
        with self.store.lock:
            k = self.by_node.get(name)
            if k is None or not k.running or k.started != started:
                return
            k.not_ready_until = min(k.not_ready_until, time.time())  # the timer, not the clocks, says when
            self.sync(name)
            if k.serving():
                self.cluster.kubelet_started(name, False)

    def stop(self, name):
        """The machine went down. Nothing is written: that is the point."""
        with self.store.lock:
            k = self.by_node.get(name)
            if k is None or not k.running:
                return k
            k.running = False
            k.stopped = time.time()
            self._record(k, "stopped")
            return k

    def set_runtime_ready(self, name, ready):
        """The container runtime went down or came back: the kubelet keeps posting, Ready follows."""
        with self.store.lock:
            k = self.by_node.get(name)
            if k is None:
                return None
            was = k.serving()
            k.runtime_ready = bool(ready)
            if k.running:
                self.sync(name)
                if k.serving() and not was:
                    self.cluster.kubelet_started(name, False)
            return k

    def _record(self, k, what):
        self.timeline.append({"time": time.time(), "node": k.node, "kubelet": what, "boot_id": k.boot_id})

    # -- the status loop ---------------------------------------------------------------------------
    def _tick(self):
        try:
            with self.store.lock:
                for name, k in list(self.by_node.items()):
                    if k.running:
                        self.sync(name)
        finally:
            self.cluster.timers.schedule(self.timing.status_update, self._tick)

    def sync(self, name, force=False):
        """One round of syncNodeStatus and of the node lease controller."""
        with self.store.lock:
            k = self.by_node.get(name)
            if k is None or not k.running:
                return
            node = self.store.get(self.res_node.storage, "", name)
            if node is None:
                return  # this kubelet does not register Nodes; it waits for one
            self._renew_lease(k, node)
            now = time.time()
            due = (k.last_report is None or force
                   or time.monotonic() >= k.last_report + self.timing.status_report)
            inputs = (k.boot_id, k.version, k.kernel, k.runtime_ready, now < k.not_ready_until)
            if not due and node is k.checked_node and inputs == k.checked_inputs:
                return
            k.checked_node, k.checked_inputs = node, inputs
            new = copy.deepcopy(node)
            st = new.setdefault("status", {})
            self._set_status(k, st, now)
            if not due and not status_changed(node.get("status") or {}, st):
                return
            k.checked_node = self.objects.replace_raw(self.res_node, new)
            k.last_report = time.monotonic()
            ready = (condition(new, "Ready") or {}).get("status") == "True"
            if ready != k.reported_ready:
                k.reported_ready = ready
                self._record(k, "ready" if ready else "notready")

    def _set_status(self, k, st, now):
        """The kubelet's setters (pkg/kubelet/nodestatus/setters.go), for what a client reads."""
        info = st.setdefault("nodeInfo", {})
        info.update({"machineID": k.machine_id, "systemUUID": k.system_uuid, "bootID": k.boot_id,
                     "kernelVersion": k.kernel, "osImage": "Debian GNU/Linux 12 (bookworm)",
                     "containerRuntimeVersion": "containerd://1.7.2", "kubeletVersion": k.version,
                     "kubeProxyVersion": k.version, "operatingSystem": "linux", "architecture": "amd64"})
        for key in ("capacity", "allocatable"):
            st.setdefault(key, {"cpu": "4", "memory": "8Gi", "pods": "110"})
        st.setdefault("addresses", [{"type": "InternalIP",
                                     "address": "10.0.0.%d" % (sum(ord(c) for c in k.node) % 250 + 2)},
                                    {"type": "Hostname", "address": k.node}])
        st["daemonEndpoints"] = {"kubeletEndpoint": {"Port": 10250}}
        stamp = self.clock.rfc3339(now)
        conds = st.setdefault("conditions", [])
        for ctype, reason, message in PRESSURE_CONDITIONS:
            _set_condition(conds, ctype, "False", reason, message, stamp)
        if not k.runtime_ready:
            _set_condition(conds, "Ready", "False", "KubeletNotReady", RUNTIME_DOWN_MESSAGE, stamp)
        elif now < k.not_ready_until:
            _set_condition(conds, "Ready", "False", "KubeletNotReady", STARTUP_NOT_READY_MESSAGE, stamp)
        else:
            _set_condition(conds, "Ready", "True", "KubeletReady", "kubelet is posting ready status", stamp)

    def _renew_lease(self, k, node):
        """pkg/kubelet/nodelease: the node's heartbeat the lifecycle controller watches most."""
        lease = self.store.get(self.res_lease.storage, NODE_LEASE_NAMESPACE, k.node)
        spec = {"holderIdentity": k.node, "leaseDurationSeconds": 40, "renewTime": self.clock.micro(time.time())}
        if lease is None:
            obj = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                   "metadata": {"name": k.node, "namespace": NODE_LEASE_NAMESPACE,
                                "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": k.node,
                                                     "uid": node["metadata"].get("uid", "")}]},
                   "spec": spec}
            self.objects.create(self.res_lease, NODE_LEASE_NAMESPACE, obj, from_api=False)
            return
        # A new object that shares the unchanged parts (stored objects are never changed in place).
        new = dict(lease, metadata=dict(lease["metadata"]), spec=dict(lease.get("spec") or {}, **spec))
        self.objects.replace_raw(self.res_lease, new)


def _set_condition(conds, ctype, status, reason, message, stamp):
    """The setters' rule: the heartbeat is always new; the transition time only when the status
    changes (so a node back from a short reboot keeps the old lastTransitionTime)."""
    new = {"type": ctype, "status": status, "lastHeartbeatTime": stamp, "lastTransitionTime": stamp,
           "reason": reason, "message": message}
    for i, c in enumerate(conds):
        if c.get("type") == ctype:
            if c.get("status") == status and c.get("lastTransitionTime"):
                new["lastTransitionTime"] = c["lastTransitionTime"]
            conds[i] = new
            return
    conds.append(new)


class NodeLifecycleController:
    """pkg/controller/nodelifecycle: monitorNodeHealth (Ready=Unknown after the grace period, pods
    marked not ready, the NoExecute taints) and doNoScheduleTaintingPass (the NoSchedule taints
    that mirror the Ready condition and spec.unschedulable: TaintNodeByCondition). The taint-based
    eviction of pods (after their 300 s tolerations) and zone disruption modes are not modelled."""

    def __init__(self, cluster, timing):
        self.cluster = cluster
        self.store = cluster.store
        self.objects = cluster.objects
        self.clock = cluster.clock
        self.timing = timing
        self.health = {}  # node -> {"probe": monotonic, "heartbeat": str, "renew": str}
        self.res_node = by_kind("Node")
        self.res_lease = by_kind("Lease")
        self.res_pod = by_kind("Pod")
        cluster.timers.schedule(timing.monitor_period, self._tick)

    def _tick(self):
        try:
            with self.store.lock:
                nodes, _ = self.store.list(self.res_node.storage)
                for node in nodes:
                    self.monitor(node["metadata"]["name"])
                for name in set(self.health) - {n["metadata"]["name"] for n in nodes}:
                    del self.health[name]
        finally:
            self.cluster.timers.schedule(self.timing.monitor_period, self._tick)

    def monitor(self, name):
        """tryUpdateNodeHealth, then processTaintBaseEviction."""
        node = self.store.get(self.res_node.storage, "", name)
        if node is None:
            return
        ready = condition(node, "Ready")
        lease = self.store.get(self.res_lease.storage, NODE_LEASE_NAMESPACE, name)
        heartbeat = (ready or {}).get("lastHeartbeatTime")
        renew = ((lease or {}).get("spec") or {}).get("renewTime")
        now = time.monotonic()
        h = self.health.get(name)
        if h is None:
            h = self.health[name] = {"probe": now, "heartbeat": heartbeat, "renew": renew}
        # The controller times heartbeats by when it saw them change, on its own clock: the node's
        # clock does not matter.
        if heartbeat != h["heartbeat"]:
            h["heartbeat"], h["probe"] = heartbeat, now
        if renew and renew != h["renew"]:
            h["renew"], h["probe"] = renew, now
        grace = self.timing.grace_period if ready is not None else self.timing.startup_grace_period
        observed = (ready or {}).get("status", "Unknown")
        if now > h["probe"] + grace:
            node = self._mark_unknown(node)
            if observed == "True":
                self._mark_pods_not_ready(name)
        self._no_execute_taints(node)

    def _mark_unknown(self, node):
        stamp = self.clock.rfc3339()
        new = copy.deepcopy(node)
        conds = new.setdefault("status", {}).setdefault("conditions", [])
        changed = False
        for ctype in MONITORED_CONDITIONS:
            c = next((c for c in conds if c.get("type") == ctype), None)
            if c is None:
                conds.append({"type": ctype, "status": "Unknown", "reason": "NodeStatusNeverUpdated",
                              "message": "Kubelet never posted node status.",
                              "lastHeartbeatTime": node["metadata"].get("creationTimestamp"),
                              "lastTransitionTime": stamp})
                changed = True
            elif c.get("status") != "Unknown":
                c.update(status="Unknown", reason="NodeStatusUnknown",
                         message="Kubelet stopped posting node status.", lastTransitionTime=stamp)
                changed = True
        if not changed:
            return node
        return self.objects.replace_raw(self.res_node, new)

    def _mark_pods_not_ready(self, name):
        """controllerutil.MarkPodsNotReady: the pods of an unreachable node stop counting as ready
        (so their PodDisruptionBudgets see them unhealthy)."""
        pods, _ = self.store.list(self.res_pod.storage)
        stamp = self.clock.rfc3339()
        for p in pods:
            if (p.get("spec") or {}).get("nodeName") != name:
                continue
            conds = (p.get("status") or {}).get("conditions") or []
            if not any(c.get("type") == "Ready" and c.get("status") != "False" for c in conds):
                continue
            new = copy.deepcopy(p)
            for c in new["status"]["conditions"]:
                if c.get("type") == "Ready":
                    c.update(status="False", lastTransitionTime=stamp)
            self.objects.replace_raw(self.res_pod, new)

    def _no_execute_taints(self, node):
        """processTaintBaseEviction: the NoExecute taint of Ready=False/Unknown, gone when Ready."""
        status = (condition(node, "Ready") or {}).get("status")
        want = {"False": TAINT_NOT_READY, "Unknown": TAINT_UNREACHABLE}.get(status)
        self._swap(node, "NoExecute", {want} if want else set())

    def no_schedule_pass(self, name):
        """doNoScheduleTaintingPass, run on every Node change."""
        with self.store.lock:
            node = self.store.get(self.res_node.storage, "", name)
            if node is None:
                return
            want = set()
            status = (condition(node, "Ready") or {}).get("status")
            if status in READY_TAINTS:
                want.add(READY_TAINTS[status])
            if (node.get("spec") or {}).get("unschedulable"):
                want.add(TAINT_UNSCHEDULABLE)
            self._swap(node, "NoSchedule", want)

    def _swap(self, node, effect, want):
        """SwapNodeControllerTaint: the controller's taints of one effect become want; other taints
        (an administrator's, the daemon's) are left alone."""
        taints = (node.get("spec") or {}).get("taints") or []
        mine = [t for t in taints if t.get("effect") == effect and t.get("key") in CONTROLLER_TAINT_KEYS]
        have = {t.get("key") for t in mine}
        if have == want:
            return node
        stamp = self.clock.rfc3339()
        new = copy.deepcopy(node)
        spec = new.setdefault("spec", {})
        spec["taints"] = [t for t in spec.get("taints") or []
                          if not (t.get("effect") == effect and t.get("key") in CONTROLLER_TAINT_KEYS - want)]
        spec["taints"] += [{"key": k, "effect": effect, "timeAdded": stamp} for k in sorted(want - have)]
        if not spec["taints"]:
            del spec["taints"]
        return self.objects.replace_raw(self.res_node, new)

