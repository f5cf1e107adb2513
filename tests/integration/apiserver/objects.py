"""API semantics on top of the store: defaulting, metadata rules, optimistic concurrency,
status subresources, generation, finalizers and graceful pod deletion. The HTTP layer, the
control API and the simulated controllers all write through here."""

import copy
import json
import random
import uuid

from . import errors, patches
from .resources import STORAGE_RESOURCE, by_kind
from .store import ADDED, MODIFIED

NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # what k8s uses for generated suffixes


def random_suffix(n=5):
    return "".join(random.choice(NAME_CHARS) for _ in range(n))


def _spec_of(obj):
    return json.dumps({k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")},
                      sort_keys=True)


class Objects:
    def __init__(self, store, clock):
        self.store = store
        self.clock = clock
        self.require_namespace = True

    # -- reads -----------------------------------------------------------------------------------
    def get(self, res, ns, name):
        obj = self.store.get(res.storage, ns if res.namespaced else "", name)
        if obj is None:
            raise errors.not_found(res, name)
        return obj

    def list(self, res, ns=None):
        return self.store.list(res.storage, ns if res.namespaced else None)

    # -- create ----------------------------------------------------------------------------------
    def create(self, res, ns, body, from_api=True, dry=False, admit=None):
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request was not a JSON object")
        obj = copy.deepcopy(body)
        obj = res.from_wire(obj)
        md = obj.setdefault("metadata", {})
        if not isinstance(md, dict):
            raise errors.bad_request("metadata must be an object")
        if res.namespaced:
            body_ns = md.get("namespace")
            if from_api and body_ns and ns and body_ns != ns:
                raise errors.bad_request("the namespace of the provided object does not match the "
                                         "namespace sent on the request")
            md["namespace"] = ns or body_ns or "default"
        else:
            md.pop("namespace", None)
        if not md.get("name"):
            if md.get("generateName"):
                md["name"] = md["generateName"] + random_suffix()
            else:
                raise errors.invalid(res, "", "metadata.name: Required value: name or generateName is required")
        name = md["name"]
        with self.store.lock:
            if res.namespaced:
                nsres = by_kind("Namespace")
                if self.store.get(nsres.storage, "", md["namespace"]) is None:
                    if from_api and self.require_namespace:
                        raise errors.not_found(nsres, md["namespace"])
                    self.create(nsres, "", {"apiVersion": "v1", "kind": "Namespace",
                                            "metadata": {"name": md["namespace"]}}, from_api=False)
            if self.store.get(res.storage, md.get("namespace", ""), name) is not None:
                raise errors.already_exists(res, name)
            for k in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
                md.pop(k, None)
            if from_api or not md.get("uid"):
                md["uid"] = str(uuid.uuid4())
            if from_api or not md.get("creationTimestamp"):
                md["creationTimestamp"] = self.clock.rfc3339()
            if res.generation:
                md["generation"] = 1
            self._default(res, obj, from_api)
            if admit:
                admit(None, obj)
            if dry:
                return obj
            return self.store.put(res.storage, obj, ADDED)

    def _default(self, res, obj, from_api):
        kind = STORAGE_RESOURCE[res.storage].kind
        if kind == "Pod":
            spec = obj.setdefault("spec", {})
            spec.setdefault("terminationGracePeriodSeconds", 30)
            spec.setdefault("restartPolicy", "Always")
            spec.setdefault("dnsPolicy", "ClusterFirst")
            spec.setdefault("schedulerName", "default-scheduler")
            spec.setdefault("containers", [])
            if from_api or "status" not in obj:
                # The real server drops a client's pod status on create; the kubelet fills it in.
                obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
        elif kind == "Node":
            obj.setdefault("spec", {})   # a Go struct: always serialized, even when empty
            st = obj.setdefault("status", {})
            if not st.get("conditions"):
                st["conditions"] = [ready_condition(True, self.clock)]
            st.setdefault("nodeInfo", {}).setdefault("kubeletVersion", "v1.20.2")
        elif kind == "Namespace":
            obj.setdefault("spec", {"finalizers": ["kubernetes"]})
            obj["status"] = {"phase": "Active"}
        elif kind == "Event":
            obj.setdefault("count", 1) if "series" not in obj else None

    # -- update ----------------------------------------------------------------------------------
    def update(self, res, ns, name, body, subresource=None, dry=False, admit=None):
        """PUT semantics: a stale metadata.resourceVersion is a 409; a missing one is unconditional."""
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request was not a JSON object")
        new = res.from_wire(copy.deepcopy(body))
        md = new.setdefault("metadata", {})
        if md.get("name") and md["name"] != name:
            raise errors.bad_request('the name of the object (%s) does not match the name on the URL (%s)'
                                     % (md["name"], name))
        if res.namespaced and md.get("namespace") and ns and md["namespace"] != ns:
            raise errors.bad_request("the namespace of the provided object does not match the "
                                     "namespace sent on the request")
        with self.store.lock:
            old = self.get(res, ns, name)
            rv = md.get("resourceVersion")
            if rv and rv != old["metadata"]["resourceVersion"]:
                raise errors.conflict(res, name)
            return self._commit(res, old, new, subresource, dry, admit)

    def patch(self, res, ns, name, content_type, patch, subresource=None, dry=False, admit=None):
        with self.store.lock:
            old = self.get(res, ns, name)
            wire_old = res.to_wire(copy.deepcopy(old))
            patched = patches.apply(content_type, wire_old, patch)
            if not isinstance(patched, dict):
                raise errors.bad_request("the patch produced something that is not an object")
            new = res.from_wire(patched)
            md = new.setdefault("metadata", {})
            if md.get("name") and md["name"] != name:
                raise errors.bad_request("metadata.name: Invalid value: the name of a patched object "
                                         "cannot change")
            rv = md.get("resourceVersion")
            # A patch that carries a resourceVersion is a precondition, as in the real server.
            if rv and rv != old["metadata"]["resourceVersion"]:
                raise errors.conflict(res, name)
            return self._commit(res, old, new, subresource, dry, admit)

    def _commit(self, res, old, new, subresource, dry=False, admit=None):
        """Stores new over old; admit(old, new), when given, sees the final object first (the
        validating admission stage of the real server) and may raise."""
        md = new.setdefault("metadata", {})
        omd = old["metadata"]
        if subresource == "status":
            merged = copy.deepcopy(old)
            if "status" in new:
                merged["status"] = new["status"]
            else:
                merged.pop("status", None)
            new = merged
            md = new["metadata"]
        else:
            if res.status_sub:
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
                else:
                    new.pop("status", None)
            for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                      "namespace", "name"):
                if k in omd:
                    md[k] = omd[k]
                else:
                    md.pop(k, None)
            if res.generation:
                gen = omd.get("generation", 1)
                md["generation"] = gen + 1 if _spec_of(new) != _spec_of(old) else gen
            elif "generation" in omd:
                md["generation"] = omd["generation"]
            else:
                md.pop("generation", None)
        md.pop("resourceVersion", None)
        if admit:
            admit(old, new)
        if dry:
            md["resourceVersion"] = omd["resourceVersion"]
            return new
        if md.get("deletionTimestamp") and not md.get("finalizers") and self._may_finish(res, new):
            return self.store.remove(res.storage, md.get("namespace", ""), md["name"])
        return self.store.put(res.storage, new, MODIFIED)

    def _may_finish(self, res, obj):
        """An object being deleted goes once its finalizers are gone; a pod only once its kubelet
        has also confirmed (deletionGracePeriodSeconds 0)."""
        if STORAGE_RESOURCE[res.storage].kind == "Pod":
            return obj["metadata"].get("deletionGracePeriodSeconds") == 0
        return True

    def replace_raw(self, res, obj):
        """For controllers and the control API: store obj as the new state of an existing object,
        keeping identity fields the caller left out."""
        with self.store.lock:
            md = obj["metadata"]
            old = self.store.get(res.storage, md.get("namespace", ""), md["name"])
            if old is None:
                return self.create(res, md.get("namespace", ""), obj, from_api=False)
            for k in ("uid", "creationTimestamp"):
                if k not in md and k in old["metadata"]:
                    md[k] = old["metadata"][k]
            md.pop("resourceVersion", None)
            return self.store.put(res.storage, obj, MODIFIED)

    # -- delete ----------------------------------------------------------------------------------
    def delete(self, res, ns, name, options=None, dry=False, admit=None):
        """Returns (object, finished). Pods on a node get a deletionTimestamp and wait for their
        kubelet; other objects go at once unless finalizers hold them."""
        options = options or {}
        with self.store.lock:
            old = self.get(res, ns, name)
            check_preconditions(res, old, options)
            if admit:
                admit(old, None)
            if dry:
                return old, False
            kind = STORAGE_RESOURCE[res.storage].kind
            md = old["metadata"]
            grace = options.get("gracePeriodSeconds")
            if kind == "Pod":
                if grace is None:
                    grace = old.get("spec", {}).get("terminationGracePeriodSeconds", 30)
                grace = max(0, int(grace))
                if not old.get("spec", {}).get("nodeName") or old.get("status", {}).get("phase") in (
                        "Succeeded", "Failed"):
                    grace = 0
                if md.get("deletionTimestamp"):
                    cur = md.get("deletionGracePeriodSeconds", 0)
                    if grace >= cur:
                        return old, False
                return self.terminate(res, old, grace)
            if md.get("finalizers"):
                if md.get("deletionTimestamp"):
                    return old, False
                new = copy.deepcopy(old)
                new["metadata"]["deletionTimestamp"] = self.clock.rfc3339()
                new["metadata"]["deletionGracePeriodSeconds"] = 0
                new["metadata"].pop("resourceVersion", None)
                return self.store.put(res.storage, new, MODIFIED), False
            if kind == "Namespace":
                self._purge_namespace(name)
            return self.store.remove(res.storage, ns if res.namespaced else "", name), True

    def terminate(self, res, pod, grace):
        """Mark a pod terminating with a grace period; grace 0 removes it (finalizers aside)."""
        new = copy.deepcopy(pod)
        md = new["metadata"]
        md["deletionTimestamp"] = self.clock.rfc3339(self.clock.now() + grace)
        md["deletionGracePeriodSeconds"] = grace
        md.pop("resourceVersion", None)
        if grace == 0 and not md.get("finalizers"):
            return self.store.remove(res.storage, md["namespace"], md["name"]), True
        return self.store.put(res.storage, new, MODIFIED), False

    def _purge_namespace(self, ns):
        for storage, res in STORAGE_RESOURCE.items():
            if not res.namespaced:
                continue
            items, _ = self.store.list(storage, ns)
            for o in items:
                self.store.remove(storage, ns, o["metadata"]["name"])


def check_preconditions(res, obj, options):
    """DeleteOptions.preconditions, checked as the real store does (UID first)."""
    pre = (options or {}).get("preconditions") or {}
    md = obj["metadata"]
    storage_res = STORAGE_RESOURCE[res.storage]
    if pre.get("uid") and pre["uid"] != md.get("uid"):
        raise errors.precondition_conflict(storage_res, md["name"], "UID", pre["uid"], md.get("uid"))
    if pre.get("resourceVersion") and pre["resourceVersion"] != md["resourceVersion"]:
        raise errors.precondition_conflict(storage_res, md["name"], "ResourceVersion", pre["resourceVersion"],
                                           md["resourceVersion"])


def ready_condition(ready, clock):
    now = clock.rfc3339()
    return {"type": "Ready", "status": "True" if ready else "False",
            "reason": "KubeletReady" if ready else "KubeletNotReady",
            "message": "kubelet is posting ready status" if ready else "container runtime is down",
            "lastHeartbeatTime": now, "lastTransitionTime": now}
