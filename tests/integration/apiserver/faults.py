"""Fault injection rules posted by tests through the control API.

A rule: {match (regex on the path), method?, user?, verb? (get, list, watch, update, ...), action,
count? (how many requests it hits; unlimited without), duration? (s: the rule lapses that long
after it was posted), ...}. Actions:

  status     answer {status} with a generic Status ({message}? {retry_after}? adds Retry-After)
  delay      sleep {delay} s, then serve the request
  drop       close the connection without an answer
  conflict   answer 409 Conflict for the resource in the path
  throttle   the API Priority and Fairness rejection (maxinflight.go tooManyRequests): 429, a
             text/plain body, Retry-After {retry_after} (default 1), not a Status
  eviction   an eviction of a pod (match e.g. "/pods/web-1/eviction$") answered as the real
             eviction subresource answers in a state the simulated cluster rarely reaches
             (pkg/registry/core/pod/storage/eviction.go); {answer} is one of EVICTION_ANSWERS.
  truncate   serve the request (a write is applied), then cut its answer: a plain answer after
             the headers (with its full Content-Length) and {at} (a fraction, default 0.5) of its
             body, or after {bytes} bytes of it; a watch stream after {after} (default 0) whole
             event lines and {at} of the next one (a chunk announcing the whole line). Models a
             proxy or load balancer that resets the connection, an apiserver that restarts.
  huge-line  a watch (verb watch only) whose first event line never ends: {size} bytes (default
             1 GiB) without a newline, generated as the client reads, then the connection is
             closed. Models a corrupt or hostile apiserver, a broken proxy.
  tls-stall  a connection-level fault, taken when the server accepts a TCP connection, before
             any request is read (so match, method, user and verb do not apply): the server
             never answers the TLS handshake, and keeps the connection until the client closes
             it, at most {hold} s (default 120). With {cut}, posting the rule also cuts every open
             API connection (watches too), so that every request after it needs a new one.
             Models an overloaded apiserver, a load balancer that accepts and hangs, a half-dead
             replica.

truncate, huge-line and tls-stall rules record what happened in their "records" (GET /faults):
truncate {time, status, length, sent} or {time, watch: true, events, line, sent}; huge-line
{time, sent (bytes the client took before it closed), ended: client|complete|server}; tls-stall
{time, closed_after (s from the accept), by: client|server}.

Eviction rules are taken by the eviction handler itself, after authorization and only when their
answer can happen to that pod: the pdb-* answers need the pod Running under exactly one
PodDisruptionBudget, uid-conflict needs a UID precondition in the request. A rule that cannot
apply is left for a later eviction and its count is not used up."""

import copy
import re
import threading
import time

ACTIONS = ("status", "delay", "drop", "conflict", "throttle", "eviction", "truncate", "huge-line",
           "tls-stall")
_RECORD_KEYS = {
    "truncate": {"status": None, "length": None, "watch": False, "events": None, "line": None, "sent": None},
    "huge-line": {"sent": 0, "ended": None},
    "tls-stall": {"closed_after": None, "by": None},
}
# Taken elsewhere than by a request's first look: at accept time, or by the eviction handler.
_NOT_PER_REQUEST = ("eviction", "tls-stall")

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
            if r["action"] in ("truncate", "huge-line", "tls-stall"):
                rule["records"] = []
            if r.get("duration") is not None:
                rule["_until"] = time.monotonic() + float(r["duration"])
            compiled.append(rule)
        with self._lock:
            self._rules.extend(compiled)

    def clear(self):
        with self._lock:
            self._rules = []

    def list(self):
        with self._lock:
            return [copy.deepcopy({k: v for k, v in r.items() if not k.startswith("_")}) for r in self._rules]

    @staticmethod
    def _usable(r):
        if r.get("count") is not None and r["hits"] >= int(r["count"]):
            return False
        return r.get("_until") is None or time.monotonic() < r["_until"]

    def take(self, method, path, user, actions=None, accept=None, verb=None):
        """The first rule that matches, has one of the actions (all but eviction and tls-stall by
        default), is accepted by accept(rule) if given, and still has a count left; it is used up
        by one. A rule with "records" returns a record (a dict) to fill in as "_record"."""
        actions = actions or tuple(a for a in ACTIONS if a not in _NOT_PER_REQUEST)
        with self._lock:
            for r in self._rules:
                if r["action"] not in actions:
                    continue
                if r.get("method") and r["method"].upper() != method:
                    continue
                if r.get("user") is not None and r["user"] != user:
                    continue
                if r.get("verb") and r["verb"] != verb:
                    continue
                if r["action"] == "huge-line" and verb != "watch":
                    continue
                if not r["_re"].search(path):
                    continue
                if not self._usable(r):
                    continue
                if accept is not None and not accept(r):
                    continue
                r["hits"] += 1
                return self._taken(r)
        return None

    def take_connection(self):
        """The first tls-stall rule with a count (and time) left, used up by one; None if none."""
        with self._lock:
            for r in self._rules:
                if r["action"] == "tls-stall" and self._usable(r):
                    r["hits"] += 1
                    return self._taken(r)
        return None

    def _taken(self, r):
        out = {k: v for k, v in r.items() if not k.startswith("_") and k != "records"}
        if "records" in r:
            # every key there from the start: the watch pump fills them in without the lock,
            # while list() may be copying the record
            record = dict({"time": time.time()}, **_RECORD_KEYS[r["action"]])
            r["records"].append(record)
            out["_record"] = record
        return out

    def note(self, record, **values):
        """Fills in a record taken with a rule (its owner may read it through list() meanwhile)."""
        with self._lock:
            record.update(values)
