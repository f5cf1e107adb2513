"""The resource types the server knows: how they are named in URLs and discovery, where they are
stored (policy/v1 and v1beta1 PDBs, core and events.k8s.io Events share one storage, as in the
real server), which field selectors they accept, and which have a status subresource."""

import copy

ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]

GENERIC_FIELDS = {"metadata.name", "metadata.namespace"}


class Resource:
    def __init__(self, group, version, plural, kind, namespaced, short=(), storage=None,
                 status_sub=False, generation=False, fields=(), categories=(), singular=None,
                 preferred=True):
        self.group = group
        self.version = version
        self.plural = plural
        self.kind = kind
        self.namespaced = namespaced
        self.short = list(short)
        # Storage key: versions of one resource share objects and the resourceVersion stream.
        self.storage = storage or (plural if not group else plural + "." + group)
        self.status_sub = status_sub
        self.generation = generation
        self.fields = GENERIC_FIELDS | set(fields)
        self.categories = list(categories)
        self.singular = singular or kind.lower()
        self.preferred = preferred

    @property
    def api_version(self):
        return self.version if not self.group else self.group + "/" + self.version

    @property
    def group_version(self):
        return self.api_version

    @property
    def qualified(self):
        """How the real server names the resource in messages: pods, leases.coordination.k8s.io."""
        return self.plural if not self.group else self.plural + "." + self.group

    def prefix(self):
        return "/api/v1" if not self.group else "/apis/%s/%s" % (self.group, self.version)

    def self_link(self, ns, name=None):
        p = self.prefix()
        if self.namespaced and ns:
            p += "/namespaces/" + ns
        p += "/" + self.plural
        if name:
            p += "/" + name
        return p

    # Conversions between the stored form and this version's wire form.
    def to_wire(self, obj):
        obj = dict(obj)
        obj["apiVersion"] = self.api_version
        obj["kind"] = self.kind
        if self.storage == "events" and self.group == "events.k8s.io":
            return core_event_to_events_v1(obj)
        return obj

    def from_wire(self, obj):
        if self.storage == "events" and self.group == "events.k8s.io":
            obj = events_v1_to_core_event(obj)
        storage_res = STORAGE_RESOURCE.get(self.storage, self)
        obj["apiVersion"] = storage_res.api_version
        obj["kind"] = storage_res.kind
        return obj


POD_FIELDS = ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
              "status.phase", "status.podIP", "status.nominatedNodeName")
EVENT_FIELDS = ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
                "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type")

RESOURCES = [
    Resource("", "v1", "namespaces", "Namespace", False, ["ns"], status_sub=True, fields=("status.phase",)),
    Resource("", "v1", "nodes", "Node", False, ["no"], status_sub=True, fields=("spec.unschedulable",)),
    Resource("", "v1", "pods", "Pod", True, ["po"], status_sub=True, fields=POD_FIELDS, categories=["all"]),
    Resource("", "v1", "events", "Event", True, ["ev"], fields=EVENT_FIELDS),
    Resource("", "v1", "configmaps", "ConfigMap", True, ["cm"]),
    Resource("", "v1", "secrets", "Secret", True, fields=("type",)),
    Resource("", "v1", "services", "Service", True, ["svc"], status_sub=True, categories=["all"]),
    Resource("", "v1", "serviceaccounts", "ServiceAccount", True, ["sa"]),
    Resource("coordination.k8s.io", "v1", "leases", "Lease", True),
    Resource("apps", "v1", "daemonsets", "DaemonSet", True, ["ds"], status_sub=True, generation=True,
             categories=["all"]),
    Resource("apps", "v1", "replicasets", "ReplicaSet", True, ["rs"], status_sub=True, generation=True,
             categories=["all"]),
    Resource("apps", "v1", "deployments", "Deployment", True, ["deploy"], status_sub=True,
             generation=True, categories=["all"]),
    Resource("apps", "v1", "statefulsets", "StatefulSet", True, ["sts"], status_sub=True,
             generation=True, categories=["all"]),
    Resource("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True, ["pdb"],
             status_sub=True, generation=True),
    Resource("policy", "v1beta1", "poddisruptionbudgets", "PodDisruptionBudget", True, ["pdb"],
             storage="poddisruptionbudgets.policy", status_sub=True, generation=True, preferred=False),
    Resource("admissionregistration.k8s.io", "v1", "validatingadmissionpolicies",
             "ValidatingAdmissionPolicy", False, status_sub=True, generation=True,
             categories=["api-extensions"]),
    Resource("admissionregistration.k8s.io", "v1", "validatingadmissionpolicybindings",
             "ValidatingAdmissionPolicyBinding", False, generation=True, categories=["api-extensions"]),
    Resource("events.k8s.io", "v1", "events", "Event", True, ["ev"], storage="events",
             fields=("regarding.kind", "regarding.namespace", "regarding.name", "regarding.uid",
                     "reason", "reportingController", "type")),
]

# The version whose form is stored: the first one listed for each storage key.
STORAGE_RESOURCE = {}
for _r in RESOURCES:
    STORAGE_RESOURCE.setdefault(_r.storage, _r)

BY_GV = {}
for _r in RESOURCES:
    BY_GV.setdefault((_r.group, _r.version), {})[_r.plural] = _r

GROUP_ORDER = []
for _r in RESOURCES:
    if _r.group and _r.group not in GROUP_ORDER:
        GROUP_ORDER.append(_r.group)


def lookup(group, version, plural):
    return BY_GV.get((group, version), {}).get(plural)


def by_kind(name):
    """For the control API: a kind (Pod), a plural (pods) or storage key, case-insensitive."""
    n = name.lower()
    for r in RESOURCES:
        if not r.preferred:
            continue
        if n in (r.kind.lower(), r.plural, r.storage, r.singular) or n in r.short:
            return STORAGE_RESOURCE[r.storage]
    return None


def for_object(obj):
    """The resource of an object by its apiVersion and kind (seed files, control API)."""
    api_version = obj.get("apiVersion", "")
    group, _, version = api_version.rpartition("/")
    for r in RESOURCES:
        if r.group == group and r.version == version and r.kind == obj.get("kind"):
            return r
    return None


# ---------------------------------------------------------------------------------------------
# Discovery documents, shaped like kube-apiserver 1.2x's so kubectl 1.20 accepts them.

def _verbs_for(r):
    return list(ALL_VERBS)


def api_resource_list(group, version):
    res = BY_GV.get((group, version))
    if res is None:
        return None
    out = []
    for r in res.values():
        out.append({
            "name": r.plural, "singularName": "", "namespaced": r.namespaced, "kind": r.kind,
            "verbs": _verbs_for(r), **({"shortNames": r.short} if r.short else {}),
            **({"categories": r.categories} if r.categories else {}),
            "storageVersionHash": "",
        })
        if r.status_sub:
            out.append({"name": r.plural + "/status", "singularName": "", "namespaced": r.namespaced,
                        "kind": r.kind, "verbs": ["get", "patch", "update"]})
        if r.plural == "pods" and not group:
            out.append({"name": "pods/eviction", "singularName": "", "namespaced": True,
                        "group": "policy", "version": "v1", "kind": "Eviction", "verbs": ["create"]})
        if r.plural == "serviceaccounts" and not group:
            out.append({"name": "serviceaccounts/token", "singularName": "", "namespaced": True,
                        "group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest",
                        "verbs": ["create"]})
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": version if not group else group + "/" + version, "resources": out}


def api_group(group):
    versions = []
    preferred = None
    for r in RESOURCES:
        if r.group != group:
            continue
        gv = {"groupVersion": r.api_version, "version": r.version}
        if gv not in versions:
            versions.append(gv)
        if r.preferred and preferred is None:
            preferred = gv
    if not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": versions,
            "preferredVersion": preferred or versions[0]}


def api_group_list():
    groups = []
    for g in GROUP_ORDER:
        d = api_group(g)
        d.pop("kind")
        d.pop("apiVersion")
        groups.append(d)
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_versions(server_address):
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


VERSION_INFO = {
    "major": "1", "minor": "20", "gitVersion": "v1.20.2-nodereboot-test", "gitCommit": "0" * 40,
    "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.15.5",
    "compiler": "gc", "platform": "linux/amd64",
}


# ---------------------------------------------------------------------------------------------
# Field access for field selectors.

def field_value(obj, path):
    cur = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        # The real server's field sets show absent booleans as "false" and absent strings as "".
        return "false" if path == "spec.unschedulable" else ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    if isinstance(cur, dict):
        # "source" on core Events is the component name.
        return cur.get("component", "")
    return str(cur)


# ---------------------------------------------------------------------------------------------
# Event conversion: events.k8s.io/v1 is another view of the same stored core/v1 Events.

_EV_MAP = [  # (core/v1 field, events.k8s.io/v1 field)
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("source", "deprecatedSource"),
]


def core_event_to_events_v1(obj):
    out = copy.deepcopy(obj)
    for core, new in _EV_MAP:
        if core in out:
            out[new] = out.pop(core)
    if "reportingComponent" in out:
        out["reportingController"] = out.pop("reportingComponent")
    if "reportingInstance" in out:
        out["reportingInstance"] = out["reportingInstance"]
    return out


def events_v1_to_core_event(obj):
    out = copy.deepcopy(obj)
    for core, new in _EV_MAP:
        if new in out:
            out[core] = out.pop(new)
    if "reportingController" in out:
        out["reportingComponent"] = out.pop("reportingController")
    return out
