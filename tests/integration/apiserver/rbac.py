"""Kubernetes RBAC from real manifests (--rbac-manifests FILE.yaml): ServiceAccount, ClusterRole,
Role, ClusterRoleBinding and RoleBinding documents, validated as the real API server validates them
on `kubectl apply`, and requests authorized as the real RBAC authorizer does
(plugin/pkg/auth/authorizer/rbac): a request is allowed when a rule of a role bound to the user or
one of its groups allows it, and forbidden otherwise. There are no deny rules.

  - ClusterRoleBinding: the ClusterRole's rules apply everywhere, cluster-scoped resources and
    requests across all namespaces included;
  - RoleBinding: the rules of its Role (same namespace) or ClusterRole apply only to namespaced
    requests in the binding's namespace;
  - a rule matches when verb, API group, resource and (if listed) resourceNames all match; "*"
    matches any verb, group or resource; "pods" does not match the subresource "pods/eviction",
    "*/eviction" does; resourceNames never match a request without a name (create, list, watch
    without a metadata.name field selector);
  - subjects: User, Group, ServiceAccount (user "system:serviceaccount:NS:NAME", in the groups
    "system:serviceaccounts", "system:serviceaccounts:NS" and "system:authenticated").

A role a binding names that does not exist grants nothing, as on a real cluster. Discovery and the
health endpoints stay open to every authenticated user (the real cluster's system:discovery and
system:public-info-viewer bindings), so rules here never need nonResourceURLs.
"""

RBAC_API = "rbac.authorization.k8s.io/v1"
RBAC_GROUP = "rbac.authorization.k8s.io"
SA_PREFIX = "system:serviceaccount:"


class ManifestError(Exception):
    pass


def groups_of(user, extra=()):
    """The groups the real authenticators put a user in: service-account tokens carry the
    service-account groups; node credentials system:nodes; every authenticated user
    system:authenticated."""
    groups = list(extra)
    if user.startswith(SA_PREFIX):
        parts = user[len(SA_PREFIX):].split(":")
        if len(parts) == 2:
            groups += ["system:serviceaccounts", "system:serviceaccounts:" + parts[0]]
    elif user.startswith("system:node:"):
        groups.append("system:nodes")
    groups.append("system:authenticated")
    return groups


def _where(doc, i):
    md = doc.get("metadata") or {}
    name = md.get("name", "?")
    ns = md.get("namespace")
    return "document %d (%s %s%s)" % (i + 1, doc.get("kind"), (ns + "/") if ns else "", name)


def _strings(value, what, where, required=True):
    if value is None:
        if required:
            raise ManifestError("%s: %s: Required value" % (where, what))
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ManifestError("%s: %s: must be a list of non-empty strings" % (where, what))
    if required and not value:
        raise ManifestError("%s: %s: Required value" % (where, what))
    return value


def _rules(doc, where, namespaced):
    rules = []
    for j, r in enumerate(doc.get("rules") or []):
        w = "%s: rules[%d]" % (where, j)
        if not isinstance(r, dict):
            raise ManifestError("%s: must be a mapping" % w)
        unknown = set(r) - {"apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"}
        if unknown:
            raise ManifestError("%s: unknown field(s) %s" % (w, ", ".join(sorted(unknown))))
        verbs = _strings(r.get("verbs"), "verbs", w)
        if r.get("nonResourceURLs"):
            if namespaced:
                raise ManifestError("%s: nonResourceURLs: Invalid value: namespaced rules cannot apply "
                                    "to non-resource URLs" % w)
            if r.get("apiGroups") or r.get("resources"):
                raise ManifestError("%s: rules cannot apply to both regular resources and non-resource "
                                    "URLs" % w)
            rules.append({"verbs": verbs, "nonResourceURLs": _strings(r["nonResourceURLs"], "nonResourceURLs", w)})
            continue
        groups = r.get("apiGroups")
        if groups is None:
            raise ManifestError("%s: apiGroups: Required value" % w)
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups) or not groups:
            raise ManifestError("%s: apiGroups: must be a non-empty list of strings (\"\" is the core group)" % w)
        rules.append({"verbs": verbs, "apiGroups": groups,
                      "resources": _strings(r.get("resources"), "resources", w),
                      "resourceNames": _strings(r.get("resourceNames"), "resourceNames", w, required=False)})
    return rules


def _role_ref(doc, where, namespaced):
    ref = doc.get("roleRef")
    if not isinstance(ref, dict):
        raise ManifestError("%s: roleRef: Required value" % where)
    if ref.get("apiGroup") != RBAC_GROUP:
        raise ManifestError('%s: roleRef.apiGroup: Unsupported value: %r: supported values: "%s"'
                            % (where, ref.get("apiGroup"), RBAC_GROUP))
    kinds = ("Role", "ClusterRole") if namespaced else ("ClusterRole",)
    if ref.get("kind") not in kinds:
        raise ManifestError("%s: roleRef.kind: Unsupported value: %r: supported values: %s"
                            % (where, ref.get("kind"), ", ".join('"%s"' % k for k in kinds)))
    if not ref.get("name"):
        raise ManifestError("%s: roleRef.name: Required value" % where)
    return ref["kind"], ref["name"]


def _subjects(doc, where, namespaced):
    out = []
    for j, s in enumerate(doc.get("subjects") or []):
        w = "%s: subjects[%d]" % (where, j)
        if not isinstance(s, dict) or not s.get("name"):
            raise ManifestError("%s: name: Required value" % w)
        kind = s.get("kind")
        if kind == "ServiceAccount":
            if s.get("apiGroup", ""):
                raise ManifestError('%s: apiGroup: Unsupported value: %r: supported values: ""' % (w, s["apiGroup"]))
            ns = s.get("namespace") or (doc["metadata"].get("namespace") if namespaced else None)
            if not ns:
                raise ManifestError("%s: namespace: Required value" % w)
            out.append(("User", SA_PREFIX + ns + ":" + s["name"]))
        elif kind in ("User", "Group"):
            if s.get("apiGroup") != RBAC_GROUP:
                raise ManifestError('%s: apiGroup: Unsupported value: %r: supported values: "%s"'
                                    % (w, s.get("apiGroup"), RBAC_GROUP))
            out.append((kind, s["name"]))
        else:
            raise ManifestError('%s: kind: Unsupported value: %r: supported values: "ServiceAccount", '
                                '"User", "Group"' % (w, kind))
    return out


class ManifestRBAC:
    def __init__(self, documents, source="manifests"):
        self.source = source
        self.service_accounts = set()
        self.cluster_roles = {}
        self.roles = {}                 # (namespace, name) -> rules
        self.cluster_bindings = []      # (subjects, role kind, role name)
        self.bindings = []              # (namespace, subjects, role kind, role name)
        for i, doc in enumerate(self._flatten(documents)):
            self._add(doc, i)

    @staticmethod
    def _flatten(documents):
        for doc in documents:
            if doc is None:
                continue
            if isinstance(doc, dict) and doc.get("kind") == "List":
                yield from (d for d in doc.get("items") or [] if d is not None)
            else:
                yield doc

    def _add(self, doc, i):
        if not isinstance(doc, dict):
            raise ManifestError("%s: document %d is not a mapping" % (self.source, i + 1))
        kind = doc.get("kind")
        where = "%s: %s" % (self.source, _where(doc, i))
        md = doc.get("metadata")
        if not isinstance(md, dict) or not md.get("name"):
            raise ManifestError("%s: metadata.name: Required value" % where)
        name, ns = md["name"], md.get("namespace")
        if kind == "ServiceAccount":
            if doc.get("apiVersion") != "v1":
                raise ManifestError("%s: apiVersion must be v1" % where)
            self.service_accounts.add((ns or "default", name))
            return
        if kind not in ("ClusterRole", "Role", "ClusterRoleBinding", "RoleBinding"):
            return      # Namespaces, Secrets and the like: not this module's business
        if doc.get("apiVersion") != RBAC_API:
            raise ManifestError("%s: apiVersion must be %s, not %r" % (where, RBAC_API, doc.get("apiVersion")))
        namespaced = kind in ("Role", "RoleBinding")
        if namespaced and not ns:
            raise ManifestError("%s: metadata.namespace: Required value (kubectl would use the "
                                "current context's namespace; the manifest must say)" % where)
        if not namespaced and ns:
            raise ManifestError("%s: metadata.namespace: a %s is cluster-scoped" % (where, kind))
        if kind == "ClusterRole":
            if doc.get("aggregationRule"):
                raise ManifestError("%s: aggregationRule is not supported by the test server" % where)
            self.cluster_roles[name] = _rules(doc, where, False)
        elif kind == "Role":
            self.roles[(ns, name)] = _rules(doc, where, True)
        elif kind == "ClusterRoleBinding":
            role = _role_ref(doc, where, False)
            self.cluster_bindings.append((_subjects(doc, where, False),) + role)
        else:
            role = _role_ref(doc, where, True)
            self.bindings.append((ns, _subjects(doc, where, True)) + role)

    # -- authorization -----------------------------------------------------------------------------
    def _rules_of(self, kind, name, namespace):
        if kind == "ClusterRole":
            return self.cluster_roles.get(name, [])
        return self.roles.get((namespace, name), [])

    def allows(self, user, groups, verb, group, resource, namespace, name):
        """resource may carry a subresource ("pods/eviction"); namespace "" is a cluster-scoped
        request or one across all namespaces."""
        def applies(subjects):
            return any((k == "User" and n == user) or (k == "Group" and n in groups) for k, n in subjects)

        for subjects, kind, role in self.cluster_bindings:
            if applies(subjects) and any(rule_allows(r, verb, group, resource, name)
                                         for r in self._rules_of(kind, role, None)):
                return True
        if namespace:
            for ns, subjects, kind, role in self.bindings:
                if ns == namespace and applies(subjects) and any(
                        rule_allows(r, verb, group, resource, name) for r in self._rules_of(kind, role, ns)):
                    return True
        return False

    def describe(self):
        return {"service_accounts": sorted("%s/%s" % sa for sa in self.service_accounts),
                "cluster_roles": sorted(self.cluster_roles), "roles": sorted("%s/%s" % r for r in self.roles),
                "cluster_role_bindings": len(self.cluster_bindings), "role_bindings": len(self.bindings)}


def rule_allows(rule, verb, group, resource, name):
    if "resources" not in rule:
        return False    # a nonResourceURLs rule; resource requests never match it
    if "*" not in rule["verbs"] and verb not in rule["verbs"]:
        return False
    if "*" not in rule["apiGroups"] and group not in rule["apiGroups"]:
        return False
    if not _resource_matches(rule["resources"], resource):
        return False
    if rule["resourceNames"] and name not in rule["resourceNames"]:
        return False
    return True


def _resource_matches(allowed, resource):
    sub = resource.split("/", 1)[1] if "/" in resource else ""
    for r in allowed:
        if r == "*" or r == resource:
            return True
        if sub and r == "*/" + sub:
            return True
    return False
