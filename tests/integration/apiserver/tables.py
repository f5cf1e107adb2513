"""Server-side printing: kubectl get asks for meta.k8s.io Table and prints its cells as given,
so the columns here mirror the real server's printers for the kinds tests look at."""

from .clock import human_duration, parse_time

CELL_DESC = "see the real printer"


def _col(name, type_="string", fmt="", priority=0):
    return {"name": name, "type": type_, "format": fmt, "description": CELL_DESC, "priority": priority}


def _age(obj, now):
    t = parse_time(obj["metadata"].get("creationTimestamp"))
    return human_duration(now - t) if t is not None else "<unknown>"


def _node_row(o, now):
    st = o.get("status") or {}
    ready = "Unknown"
    for c in st.get("conditions") or []:
        if c.get("type") == "Ready":
            ready = "Ready" if c.get("status") == "True" else "NotReady"
    status = ready + (",SchedulingDisabled" if (o.get("spec") or {}).get("unschedulable") else "")
    roles = sorted(k.split("/", 1)[1] for k in (o["metadata"].get("labels") or {})
                   if k.startswith("node-role.kubernetes.io/"))
    return [o["metadata"]["name"], status, ",".join(roles) or "<none>", _age(o, now),
            (st.get("nodeInfo") or {}).get("kubeletVersion", "")]


def _pod_row(o, now):
    spec, st = o.get("spec") or {}, o.get("status") or {}
    total = len(spec.get("containers") or [])
    ready = sum(1 for c in st.get("containerStatuses") or [] if c.get("ready"))
    restarts = sum(c.get("restartCount", 0) for c in st.get("containerStatuses") or [])
    reason = st.get("reason") or st.get("phase") or "Pending"
    if o["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    return [o["metadata"]["name"], "%d/%d" % (ready, total), reason, restarts, _age(o, now),
            st.get("podIP") or "<none>", spec.get("nodeName") or "<none>", "<none>", "<none>"]


def _lease_row(o, now):
    return [o["metadata"]["name"], (o.get("spec") or {}).get("holderIdentity") or "", _age(o, now)]


def _pdb_row(o, now):
    spec = o.get("spec") or {}
    return [o["metadata"]["name"], str(spec.get("minAvailable", "N/A")), str(spec.get("maxUnavailable", "N/A")),
            (o.get("status") or {}).get("disruptionsAllowed", 0), _age(o, now)]


def _event_row(o, now):
    io = o.get("involvedObject") or {}
    last = parse_time(o.get("lastTimestamp") or o.get("eventTime") or o["metadata"].get("creationTimestamp"))
    return [human_duration(now - last) if last else "<unknown>", o.get("type", ""), o.get("reason", ""),
            "%s/%s" % ((io.get("kind") or "").lower(), io.get("name", "")), o.get("message", "")]


def _ns_row(o, now):
    return [o["metadata"]["name"], (o.get("status") or {}).get("phase", "Active"), _age(o, now)]


def _workload_row(o, now):
    spec, st = o.get("spec") or {}, o.get("status") or {}
    if o.get("kind") == "DaemonSet":
        return [o["metadata"]["name"], st.get("desiredNumberScheduled", 0), st.get("currentNumberScheduled", 0),
                st.get("numberReady", 0), _age(o, now)]
    return [o["metadata"]["name"], spec.get("replicas", 1), st.get("replicas", 0), st.get("readyReplicas", 0),
            _age(o, now)]


PRINTERS = {
    "Node": ([_col("Name", fmt="name"), _col("Status"), _col("Roles"), _col("Age"), _col("Version")], _node_row),
    "Pod": ([_col("Name", fmt="name"), _col("Ready"), _col("Status"), _col("Restarts", "integer"), _col("Age"),
             _col("IP", priority=1), _col("Node", priority=1), _col("Nominated Node", priority=1),
             _col("Readiness Gates", priority=1)], _pod_row),
    "Lease": ([_col("Name", fmt="name"), _col("Holder"), _col("Age")], _lease_row),
    "PodDisruptionBudget": ([_col("Name", fmt="name"), _col("Min Available"), _col("Max Unavailable"),
                             _col("Allowed Disruptions", "integer"), _col("Age")], _pdb_row),
    "Event": ([_col("Last Seen"), _col("Type"), _col("Reason"), _col("Object"), _col("Message")], _event_row),
    "Namespace": ([_col("Name", fmt="name"), _col("Status"), _col("Age")], _ns_row),
    "DaemonSet": ([_col("Name", fmt="name"), _col("Desired", "integer"), _col("Current", "integer"),
                   _col("Ready", "integer"), _col("Age")], _workload_row),
    "ReplicaSet": ([_col("Name", fmt="name"), _col("Desired", "integer"), _col("Current", "integer"),
                    _col("Ready", "integer"), _col("Age")], _workload_row),
}


def to_table(kind, items, rv, now, include_object="Metadata"):
    cols, row_fn = PRINTERS.get(kind, ([_col("Name", fmt="name"), _col("Age")],
                                       lambda o, n: [o["metadata"]["name"], _age(o, n)]))
    rows = []
    for o in items:
        if include_object == "Object":
            embedded = o
        elif include_object == "None":
            embedded = None
        else:
            embedded = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]}
        row = {"cells": row_fn(o, now)}
        if embedded is not None:
            row["object"] = embedded
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": str(rv)},
            "columnDefinitions": cols, "rows": rows}
