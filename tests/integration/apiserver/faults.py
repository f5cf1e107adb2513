"""Fault injection rules posted by tests through the control API.

A rule: {match (regex on the path), method?, user?, action, count? (how many requests it hits;
unlimited without), ...}. Actions:

  status     answer {status} with a generic Status ({message}? {retry_after}? adds Retry-After)
  delay      sleep {delay} s, then serve the request
  drop       close the connection without an answer
  conflict   answer 409 Conflict for the resource in the path
  throttle   the API Priority and Fairness rejection (maxinflight.go tooManyRequests): 429, a
             text/plain body, Retry-After {retry_after} (default 1), not a Status
  eviction   an eviction of a pod (match e.g. "/pods/web-1/eviction$") answered as the real
             eviction subresource answers in a state the simulated cluster rarely reaches
             (pkg/registry/core/pod/storage/eviction.go); {answer} is one of EVICTION_ANSWERS.

Eviction rules are taken by the eviction handler itself, after authorization and only when their
answer can happen to that pod: the pdb-* answers need the pod Running under exactly one
PodDisruptionBudget, uid-conflict needs a UID precondition in the request. A rule that cannot
apply is left for a later eviction and its count is not used up."""

import re
import threading

ACTIONS = ("status", "delay", "drop", "conflict", "throttle", "eviction")

# What each eviction answer models (the messages are the real ones; api.py builds them):
EVICTION_ANSWERS = {
    # RetryOnConflict around the PDB status update gave up: 409 for the PDB, not the pod; nothing
    # changes. The real server retries 20 x 0.5 s before it answers ({delay} overrides).
    "pdb-conflict",
    # checkAndDecrement: a budget with disruptionsAllowed < 0 (403 Forbidden)
    "pdb-negative",
    # checkAndDecrement: more than 2000 evictions the disruption controller has not confirmed (403)
    "pdb-too-many-disrupted",
    # checkAndDecrement: disruptionsAllowed == 0 (429, no Retry-After), with the PDB's own numbers
    "pdb-budget",
    # checkAndDecrement: status.observedGeneration behind metadata.generation (429, Retry-After 10)
    "pdb-processing",
    # the pod was deleted and recreated under the same name since the client read it (409)
    "uid-conflict",
}


class FaultInjector:
    def __init__(self):
        self._lock = threading.Lock()
        self._rules = []

    def add(self, rules):
        if isinstance(rules, dict):
            rules = [rules]
        if not isinstance(rules, list):
            raise ValueError("expected a rule or a list of rules")
        compiled = []
        for r in rules:
            if not isinstance(r, dict) or r.get("action") not in ACTIONS:
                raise ValueError("each rule needs an action among %s" % ", ".join(ACTIONS))
            if r["action"] == "eviction" and r.get("answer") not in EVICTION_ANSWERS:
                raise ValueError("an eviction rule needs an answer among %s" % ", ".join(sorted(EVICTION_ANSWERS)))
            rule = dict(r)
            rule["_re"] = re.compile(r.get("match", ""))
            rule.setdefault("hits", 0)
            compiled.append(rule)
        with self._lock:
            self._rules.extend(compiled)

    def clear(self):
        with self._lock:
            self._rules = []

    def list(self):
        with self._lock:
            return [{k: v for k, v in r.items() if k != "_re"} for r in self._rules]

    def take(self, method, path, user, actions=None, accept=None):
        """The first rule that matches, has one of the actions (all but eviction by default), is
        accepted by accept(rule) if given, and still has a count left; it is used up by one."""
        actions = actions or tuple(a for a in ACTIONS if a != "eviction")
        with self._lock:
            for r in self._rules:
                if r["action"] not in actions:
                    continue
                if r.get("method") and r["method"].upper() != method:
                    continue
                if r.get("user") is not None and r["user"] != user:
                    continue
                if not r["_re"].search(path):
                    continue
                if r.get("count") is not None and r["hits"] >= int(r["count"]):
                    continue
                if accept is not None and not accept(r):
                    continue
                r["hits"] += 1
                return {k: v for k, v in r.items() if k != "_re"}
        return None
