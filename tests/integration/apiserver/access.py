"""Authentication (bearer tokens, client certificates signed by the CA) and authorization: the
optional JSON rule table (--rbac FILE.json) and real RBAC manifests (--rbac-manifests FILE.yaml,
apiserver/rbac.py). Verb and resource names follow the real authorizer's, so tests can grant a
daemon exactly what its packaged ClusterRole grants.

The authorizers form a chain, as in the real API server: "admin" and the group system:masters are
never restricted; the JSON table judges the users it lists; the manifests, when given, judge every
other user (no binding, no access); without manifests an unlisted user may do anything."""

import collections
import threading

from .errors import ApiError
from .rbac import groups_of

ADMIN = "admin"
MASTERS = "system:masters"


class Authenticator:
    def __init__(self, clock=None):
        self._lock = threading.Lock()
        self._tokens = {}
        self._expiry = {}
        self._extra = {}
        self._clock = clock

    def add_token(self, token, user, expires_at=None, extra=None):
        """expires_at: server-clock epoch seconds after which the token is refused (bound tokens);
        extra: the user's extra info ({key: [values]}), e.g. the Node a token is bound to."""
        with self._lock:
            self._tokens[token] = user
            self._expiry.pop(token, None)
            self._extra.pop(token, None)
            if expires_at is not None:
                self._expiry[token] = expires_at
            if extra:
                self._extra[token] = extra

    def remove_token(self, token):
        with self._lock:
            self._tokens.pop(token, None)
            self._expiry.pop(token, None)
            self._extra.pop(token, None)

    def extra_of(self, headers):
        """The extra info of the request's bearer token ({} for other credentials)."""
        parts = headers.get("Authorization", "").split(" ", 1)
        if len(parts) != 2 or parts[0].lower() != "bearer":
            return {}
        with self._lock:
            return dict(self._extra.get(parts[1].strip()) or {})

    def tokens(self):
        with self._lock:
            return dict(self._tokens)

    def _user_of_token(self, token):
        with self._lock:
            user = self._tokens.get(token)
            expires = self._expiry.get(token)
        if user is not None and expires is not None and self._clock is not None and self._clock.now() >= expires:
            return None
        return user

    def user_for(self, headers, peercert):
        """Returns (user, presented): the user, or None with whether credentials were presented."""
        user, _, presented = self.identify(headers, peercert)
        return user, presented

    def identify(self, headers, peercert):
        """Returns (user, groups, presented). A client certificate names the user in CN and its
        groups in O; a token's user gets the groups its kind of credential carries."""
        if peercert:
            cn, orgs = None, []
            for rdn in peercert.get("subject", ()):
                for k, v in rdn:
                    if k == "commonName":
                        cn = v
                    elif k == "organizationName":
                        orgs.append(v)
            if cn:
                return cn, groups_of(cn, orgs), True
        auth = headers.get("Authorization", "")
        if auth:
            parts = auth.split(" ", 1)
            if len(parts) == 2 and parts[0].lower() == "bearer":
                user = self._user_of_token(parts[1].strip())
                return user, (groups_of(user) if user else []), True
            return None, [], True
        return None, [], False


class RBAC:
    """The JSON rule table: {"users": {USER: [{apiGroups, resources, verbs, namespaces,
    resourceNames}]}}; missing keys mean "*"."""

    def __init__(self, config=None):
        self.users = (config or {}).get("users", {}) if config else None

    def check(self, user, verb, group, resource, namespace, name):
        if self.decide(user, verb, group, resource, namespace, name) is False:
            raise forbidden(user, verb, group, resource, namespace, name)

    def decide(self, user, verb, group, resource, namespace, name):
        """True (allowed), False (forbidden) or None (not a user the table lists)."""
        if self.users is None or user == ADMIN or user not in self.users:
            return None
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
            return True
        return False


class Authorizer:
    """The chain described at the top. Keeps every denial (not cleared with the request log) so a
    test can prove that a client never hit one."""

    def __init__(self, table=None, manifests=None):
        self.table = table or RBAC(None)
        self.manifests = manifests
        self._lock = threading.Lock()
        self._denials = collections.deque(maxlen=10000)

    def check(self, user, groups, verb, group, resource, namespace, name, info=None):
        if user == ADMIN or MASTERS in (groups or ()):
            return
        allowed = self.table.decide(user, verb, group, resource, namespace, name)
        if allowed is None:
            allowed = True if self.manifests is None else self.manifests.allows(
                user, groups or groups_of(user), verb, group, resource, namespace, name)
        if allowed:
            return
        err = forbidden(user, verb, group, resource, namespace, name)
        with self._lock:
            self._denials.append(dict(info or {}, user=user, verb=verb, group=group, resource=resource,
                                      namespace=namespace, name=name, message=err.status["message"]))
        raise err

    def denials(self):
        with self._lock:
            return list(self._denials)


def forbidden(user, verb, group, resource, namespace, name):
    """The 403 Status the real RBAC authorizer's denial turns into."""
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
    return ApiError(403, msg, "Forbidden", details)


def _has(allowed, value):
    return "*" in allowed or value in allowed
