"""ValidatingAdmissionPolicy (admissionregistration.k8s.io/v1), as kube-apiserver >= 1.30 runs it
(k8s.io/apiserver/pkg/admission/plugin/policy/validating): policies and bindings are ordinary API
objects, read from the store at every request like the real plugin's informers; a write that a
bound policy matches is checked after the object is final and before it is stored, dry runs
included. CEL runs in @bufbuild/cel (cel.py): the policy's own expression text is evaluated.

What is modelled, with the real plugin's behaviour:
  - matchConstraints and a binding's matchResources: resourceRules (apiGroups, apiVersions,
    operations, resources with "*", "*/*", "x/*" and "x/sub", resourceNames, scope),
    excludeResourceRules, namespaceSelector (not applied to cluster-scoped objects), objectSelector
    (old or new labels);
  - paramKind + paramRef (name or selector, namespace, parameterNotFoundAction);
  - matchConditions (all true, or the policy does not apply; an error follows failurePolicy);
  - variables (in order, variables.NAME), validations with message, messageExpression and reason;
  - failurePolicy (Fail by default): an expression that fails to evaluate denies;
  - validationActions Deny, Warn (a Warning header) and Audit (ignored here);
  - the denial: the first failed validation of the first denying binding, as
    `<resource> "<name>" is forbidden: ValidatingAdmissionPolicy '<p>' with binding '<b>' denied
    request: <message>`, code and reason from the validation's reason (Invalid, 422, by default),
    the message repeated in details.causes;
  - creating or updating a policy whose expressions do not compile is a 422 naming the field: a
    syntax error, an undeclared name, variables.X for a variable the policy lacks, request.X for
    a field AdmissionRequest lacks (what the real compiler checks without the object's schema).
Not modelled: type checking when a policy is written (here a validation that is not bool, or a
misspelt field, is found only when evaluated, as an error), the object's OpenAPI schema
(status.typeChecking), the authorizer variable, cost budgets, auditAnnotations. Like the real
plugin, params are looked up before matchConditions run, so a missing parameter object denies
requests the matchConditions would have excluded."""

import copy
import uuid

from . import errors, resources
from .errors import ApiError
from .selectors import selector_from_spec

GROUP = "admissionregistration.k8s.io"
POLICIES = "validatingadmissionpolicies." + GROUP
BINDINGS = "validatingadmissionpolicybindings." + GROUP

REASON_CODES = {"Unauthorized": 401, "Forbidden": 403, "Invalid": 422, "RequestEntityTooLarge": 413}


def _everything(sel):
    """A nil selector in a policy's match rules means "all" (it defaults to {})."""
    return selector_from_spec(sel if sel is not None else {})


def _rule_matches(rule, a):
    def listed(values, value):
        values = values or []
        return "*" in values or value in values

    if not listed(rule.get("apiGroups"), a["group"]) or not listed(rule.get("apiVersions"), a["version"]):
        return False
    if not listed(rule.get("operations"), a["operation"]):
        return False
    scope = rule.get("scope") or "*"
    if scope == "Cluster" and a["namespaced"] or scope == "Namespaced" and not a["namespaced"]:
        return False
    names = rule.get("resourceNames") or []
    if names and a["name"] not in names:
        return False
    plural, sub = a["resource"], a["subresource"]
    for r in rule.get("resources") or []:
        res, _, rsub = r.partition("/")
        if res not in ("*", plural):
            continue
        if not rsub and not sub:
            return True
        if rsub == "*" or (rsub and rsub == sub):
            return True
    return False


def _labels(obj):
    return ((obj or {}).get("metadata") or {}).get("labels") or {}


class PolicyAdmission:
    def __init__(self, store, cel):
        self.store = store
        self.cel = cel

    # -- validation of the policy objects themselves --------------------------------------------
    def check_policy(self, res, obj):
        """On create or update of a policy: every expression must parse (the real server compiles
        them and answers 422 naming the field)."""
        if res.storage != POLICIES:
            return
        spec = obj.get("spec") or {}
        fields = []
        for i, v in enumerate(spec.get("validations") or []):
            fields.append(("spec.validations[%d].expression" % i, v.get("expression")))
            if v.get("messageExpression"):
                fields.append(("spec.validations[%d].messageExpression" % i, v["messageExpression"]))
        for i, v in enumerate(spec.get("variables") or []):
            fields.append(("spec.variables[%d].expression" % i, v.get("expression")))
        for i, v in enumerate(spec.get("matchConditions") or []):
            fields.append(("spec.matchConditions[%d].expression" % i, v.get("expression")))
        problems = []
        for path, text in fields:
            if not isinstance(text, str) or not text.strip():
                problems.append((path, "Required value"))
        if not spec.get("validations") and not spec.get("auditAnnotations"):
            problems.append(("spec.validations", "Required value: validations or auditAnnotations "
                                                 "must contain at least one item"))
        texts = [(p, t) for p, t in fields if isinstance(t, str) and t.strip()]
        names = [v.get("name") for v in spec.get("variables") or []]
        for (path, text), err in zip(texts, self.cel.parse_errors([t for _, t in texts], names)):
            if err:
                problems.append((path, "Invalid value: %r: compilation failed: ERROR: %s" % (text, err)))
        if problems:
            name = (obj.get("metadata") or {}).get("name", "")
            raise errors.invalid(res, name, ", ".join("%s: %s" % p for p in problems),
                                 [{"reason": "FieldValueInvalid", "message": m, "field": f}
                                  for f, m in problems])

    # -- admission ------------------------------------------------------------------------------
    def admit(self, a):
        """a: the request's attributes (see api.py). Returns (warnings to send, the policies that
        applied, as "policy/binding"); raises the denial."""
        bindings, _ = self.store.list(BINDINGS)
        denied, warnings, applied = [], [], []
        for binding in sorted(bindings, key=lambda b: b["metadata"]["name"]):
            bspec = binding.get("spec") or {}
            policy = self.store.get(POLICIES, "", bspec.get("policyName", ""))
            if policy is None:
                continue
            pspec = policy.get("spec") or {}
            if not self._matches(pspec.get("matchConstraints") or {}, a, require_rules=True):
                continue
            if bspec.get("matchResources") and not self._matches(bspec["matchResources"], a,
                                                                 require_rules=False):
                continue
            decisions = self._decisions(policy, binding, a)
            if decisions is None:
                continue
            applied.append("%s/%s" % (policy["metadata"]["name"], binding["metadata"]["name"]))
            for decision in decisions:
                actions = bspec.get("validationActions") or []
                if "Deny" in actions:
                    denied.append((policy, binding, decision))
                if "Warn" in actions:
                    warnings.append("Validation failed for ValidatingAdmissionPolicy '%s' with binding "
                                    "'%s': %s" % (policy["metadata"]["name"], binding["metadata"]["name"],
                                                  decision["message"]))
        if denied:
            policy, binding, d = denied[0]
            message = "ValidatingAdmissionPolicy '%s' with binding '%s' denied request: %s" % (
                policy["metadata"]["name"], binding["metadata"]["name"], d["message"])
            reason = d.get("reason") or "Invalid"
            details = {}
            if a["name"]:
                details["name"] = a["name"]
            if a["group"]:
                details["group"] = a["group"]
            details["kind"] = a["resource"]
            details["causes"] = [{"message": message}]
            qualified = a["resource"] if not a["group"] else a["resource"] + "." + a["group"]
            raise ApiError(REASON_CODES.get(reason, 400), '%s "%s" is forbidden: %s' % (
                qualified, a["name"], message), reason, details)
        return warnings, applied

    def _matches(self, m, a, require_rules):
        rules = m.get("resourceRules") or []
        if rules or require_rules:
            if not any(_rule_matches(r, a) for r in rules):
                return False
        if any(_rule_matches(r, a) for r in m.get("excludeResourceRules") or []):
            return False
        if a["namespaced"] or a["resource"] == "namespaces":
            ns_obj = self.store.get("namespaces", "", a["namespace"] or a["name"])
            if not _everything(m.get("namespaceSelector"))(_labels(ns_obj)):
                return False
        osel = _everything(m.get("objectSelector"))
        if not (osel(_labels(a["object"])) if a["object"] is not None else False) and \
                not (osel(_labels(a["oldObject"])) if a["oldObject"] is not None else False):
            return False
        return True

    def _params(self, policy, binding, a):
        """[params] to evaluate with ([None] without paramKind), or a decision to return."""
        kind = (policy.get("spec") or {}).get("paramKind")
        if not kind:
            return [None], None
        ref = (binding.get("spec") or {}).get("paramRef")
        if not ref:
            return None, {"action": "deny", "message": "failed to configure binding: no paramRef "
                                                       "given for a policy with paramKind"}
        res = resources.for_object({"apiVersion": kind.get("apiVersion"), "kind": kind.get("kind")})
        if res is None:
            return None, {"action": "deny", "message": "failed to configure policy: paramKind %s %s "
                                                       "is not served" % (kind.get("apiVersion"), kind.get("kind"))}
        ns = ""
        if res.namespaced:
            ns = ref.get("namespace") or (a["namespace"] if a["namespaced"] else "")
            if not ns:
                return None, {"action": "deny", "message": "failed to configure binding: paramRef.namespace "
                                                           "is required for a cluster-scoped request"}
        if ref.get("name"):
            p = self.store.get(res.storage, ns, ref["name"])
            found = [p] if p is not None else []
        else:
            items, _ = self.store.list(res.storage, ns or None)
            sel = _everything(ref.get("selector"))
            found = [p for p in items if sel(_labels(p))]
        if not found:
            if ref.get("parameterNotFoundAction") == "Allow":
                return [], None
            return None, {"action": "deny", "message": "failed to configure binding: no params found for "
                                                       "policy binding with `Deny` parameterNotFoundAction"}
        return [res.to_wire(copy.deepcopy(p)) for p in found], None

    def _decisions(self, policy, binding, a):
        """The denying decisions of one policy under one binding: [{message, reason}], or None when
        its matchConditions exclude the request (or no params apply)."""
        spec = policy.get("spec") or {}
        fail_closed = spec.get("failurePolicy", "Fail") != "Ignore"
        params_list, early = self._params(policy, binding, a)
        if early:
            return [{"message": early["message"]}]
        out, applied = [], False
        for params in params_list:
            activation = {"object": a["object"], "oldObject": a["oldObject"], "request": a["request"],
                          "params": params, "namespaceObject": a["namespaceObject"]}
            conditions = spec.get("matchConditions") or []
            results = self.cel.evaluate([], [c["expression"] for c in conditions], activation) if conditions else []
            applies, failed = True, None
            for c, (kind, value) in zip(conditions, results):
                if kind == "error":
                    failed = "failed to evaluate matchCondition '%s': %s" % (c.get("name"), value)
                elif value is not True:
                    applies = False
            if not applies:
                continue
            applied = True
            if failed:
                if fail_closed:
                    out.append({"message": failed})
                continue
            variables = [(v["name"], v["expression"]) for v in spec.get("variables") or []]
            validations = spec.get("validations") or []
            texts = [v["expression"] for v in validations]
            msg_texts = [v.get("messageExpression") for v in validations]
            results = self.cel.evaluate(variables, texts + [t for t in msg_texts if t], activation)
            messages = iter(results[len(texts):])
            for v, (kind, value), mtext in zip(validations, results, msg_texts):
                mresult = next(messages) if mtext else None
                if kind == "value" and not isinstance(value, bool):
                    # The real server type-checks a validation as bool when the policy is written;
                    # this one finds out at run time and treats it as an evaluation error.
                    kind, value = "error", "the expression must evaluate to bool, not %r" % (value,)
                if kind == "error":
                    if fail_closed:
                        out.append({"message": "expression '%s' resulted in error: %s" % (
                            v["expression"].strip(), value)})
                    continue
                if value is True:
                    continue
                message = ""
                if mresult and mresult[0] == "value" and isinstance(mresult[1], str) and "\n" not in mresult[1]:
                    message = mresult[1].strip()
                if not message and v.get("message"):
                    message = v["message"].strip()
                if not message:
                    message = "failed expression: %s" % v["expression"].strip()
                out.append({"message": message, "reason": v.get("reason") or "Invalid"})
        return out if applied else None


def request_object(a, user, groups, extra, dry):
    """The `request` variable: admission.k8s.io/v1 AdmissionRequest as the plugin builds it,
    empty fields left out (omitempty)."""
    r = {"uid": str(uuid.uuid4()),
         "kind": {"group": a["group"], "version": a["version"], "kind": a["kind"]},
         "resource": {"group": a["group"], "version": a["version"], "resource": a["resource"]},
         "requestKind": {"group": a["group"], "version": a["version"], "kind": a["kind"]},
         "requestResource": {"group": a["group"], "version": a["version"], "resource": a["resource"]},
         "name": a["name"], "operation": a["operation"],
         "userInfo": {"username": user, "groups": list(groups)}, "dryRun": bool(dry)}
    if extra:
        r["userInfo"]["extra"] = copy.deepcopy(extra)
    if a["subresource"]:
        r["subResource"] = a["subresource"]
        r["requestSubResource"] = a["subresource"]
    if a["namespace"]:
        r["namespace"] = a["namespace"]
    if not r["name"]:
        del r["name"]
    return r
