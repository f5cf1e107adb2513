"""Fault injection rules posted by tests through the control API."""

import re
import threading

ACTIONS = ("status", "delay", "drop", "conflict")


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

    def take(self, method, path, user):
        """The first rule that matches and still has a count left; it is used up by one."""
        with self._lock:
            for r in self._rules:
                if r.get("method") and r["method"].upper() != method:
                    continue
                if r.get("user") is not None and r["user"] != user:
                    continue
                if not r["_re"].search(path):
                    continue
                if r.get("count") is not None and r["hits"] >= int(r["count"]):
                    continue
                r["hits"] += 1
                return {k: v for k, v in r.items() if k != "_re"}
        return None
