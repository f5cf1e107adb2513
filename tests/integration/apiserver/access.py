"""Authentication (bearer tokens, client certificates signed by the CA) and the optional RBAC
rule table. Verb and resource names follow the real authorizer's, so tests can grant a daemon
exactly what its packaged ClusterRole grants."""

import threading

from .errors import ApiError

ADMIN = "admin"


class Authenticator:
    def __init__(self):
        self._lock = threading.Lock()
        self._tokens = {}

    def add_token(self, token, user):
        with self._lock:
            self._tokens[token] = user

    def tokens(self):
        with self._lock:
            return dict(self._tokens)

    def user_for(self, headers, peercert):
        """Returns (user, presented): the user, or None with whether credentials were presented."""
        if peercert:
            for rdn in peercert.get("subject", ()):
                for k, v in rdn:
                    if k == "commonName":
                        return v, True
        auth = headers.get("Authorization", "")
        if auth:
            parts = auth.split(" ", 1)
            if len(parts) == 2 and parts[0].lower() == "bearer":
                with self._lock:
                    user = self._tokens.get(parts[1].strip())
                return user, True
            return None, True
        return None, False


class RBAC:
    def __init__(self, config=None):
        self.users = (config or {}).get("users", {}) if config else None

    def check(self, user, verb, group, resource, namespace, name):
        if self.users is None or user == ADMIN or user not in self.users:
            return
        for rule in self.users[user] or []:
            if not _has(rule.get("apiGroups", ["*"]), group):
                continue
            if not _has(rule.get("resources", ["*"]), resource):
                continue
            if not _has(rule.get("verbs", ["*"]), verb):
                continue
            nss = rule.get("namespaces", ["*"])
            if namespace and not _has(nss, namespace):
                continue
            if not namespace and not ("*" in nss or "" in nss):
                continue
            names = rule.get("resourceNames")
            if names and name not in names:
                continue
            return
        plural = resource.split("/")[0]
        qualified = plural + ("." + group if group else "")
        where = ('in the namespace "%s"' % namespace) if namespace else "at the cluster scope"
        subject = ('%s "%s"' % (qualified, name)) if name else qualified
        msg = '%s is forbidden: User "%s" cannot %s resource "%s" in API group "%s" %s' % (
            subject, user, verb, resource, group, where)
        details = {"kind": resource.split("/")[0]}
        if name:
            details["name"] = name
        if group:
            details["group"] = group
        raise ApiError(403, msg, "Forbidden", details)


def _has(allowed, value):
    return "*" in allowed or value in allowed
