"""Service-account credentials, as packaging/kubernetes/make-kubeconfig.sh obtains them:

  - the token controller: a Secret of type kubernetes.io/service-account-token annotated with
    kubernetes.io/service-account.name gets data.token, data["ca.crt"] and data.namespace once the
    ServiceAccount exists (the long-lived token of clusters before 1.24, and of kubectl 1.20);
    the token stops working when the Secret is deleted;
  - TokenRequest, POST /api/v1/namespaces/NS/serviceaccounts/NAME/token (`kubectl create token`):
    a bound token that expires after spec.expirationSeconds (at least 600, default 3600); with
    spec.boundObjectRef naming a Node (`kubectl create token --bound-object-kind Node`, 1.31+) the
    token's user carries the extra info authentication.kubernetes.io/node-name and node-uid, as
    with ServiceAccountTokenNodeBinding, which admission policies can compare with the object.

Either token authenticates as system:serviceaccount:NS:NAME."""

import base64
import copy
import secrets

from . import errors
from .resources import by_kind
from .store import DELETED

SA_TOKEN_TYPE = "kubernetes.io/service-account-token"
SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"
SA_UID_ANNOTATION = "kubernetes.io/service-account.uid"
PROTOBUF = "application/vnd.kubernetes.protobuf"
MIN_EXPIRATION_SECONDS = 600
DEFAULT_EXPIRATION_SECONDS = 3600


def _b64(data):
    return base64.b64encode(data if isinstance(data, bytes) else data.encode()).decode()


class ServiceAccountTokens:
    def __init__(self, store, objects, auth, clock, ca_path, timers):
        self.store = store
        self.objects = objects
        self.auth = auth
        self.clock = clock
        self.ca_path = ca_path
        self.timers = timers
        self.res_secret = by_kind("Secret")
        self.res_sa = by_kind("ServiceAccount")
        store.hooks.append(self._on_event)

    # -- the token controller (hooks run under the store lock; the work happens later) ------------
    def _on_event(self, ev):
        if ev.storage == self.res_sa.storage and ev.type != DELETED:
            # Secrets made before their ServiceAccount are filled once it exists.
            ns = ev.obj["metadata"].get("namespace", "")
            for s in self.store.list(self.res_secret.storage, ns)[0]:
                self.timers.schedule(0, self._fill, ns, s["metadata"]["name"])
        if ev.storage != self.res_secret.storage:
            return
        old_token = ((ev.old or {}).get("data") or {}).get("token")
        if ev.type == DELETED:
            old_token = ((ev.obj or {}).get("data") or {}).get("token") or old_token
            if old_token:
                self.auth.remove_token(base64.b64decode(old_token).decode())
            return
        if ev.obj.get("type") == SA_TOKEN_TYPE and not (ev.obj.get("data") or {}).get("token"):
            self.timers.schedule(0, self._fill, ev.obj["metadata"].get("namespace", ""), ev.obj["metadata"]["name"])

    def _fill(self, ns, name):
        with self.store.lock:
            secret = self.store.get(self.res_secret.storage, ns, name)
            if secret is None or secret.get("type") != SA_TOKEN_TYPE or (secret.get("data") or {}).get("token"):
                return
            sa_name = (secret["metadata"].get("annotations") or {}).get(SA_NAME_ANNOTATION)
            sa = self.store.get(self.res_sa.storage, ns, sa_name) if sa_name else None
            if sa is None:
                return
            token = secrets.token_urlsafe(32)
            with open(self.ca_path, "rb") as f:
                ca = f.read()
            new = copy.deepcopy(secret)
            new["metadata"].setdefault("annotations", {})[SA_UID_ANNOTATION] = sa["metadata"].get("uid", "")
            new.setdefault("data", {}).update({"token": _b64(token), "ca.crt": _b64(ca), "namespace": _b64(ns)})
            self.auth.add_token(token, "system:serviceaccount:%s:%s" % (ns, sa_name))
            self.objects.replace_raw(self.res_secret, new)

    # -- TokenRequest ------------------------------------------------------------------------------
    def request(self, ns, name, body, dry=False):
        """Returns the TokenRequest to answer with (201)."""
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request was not a JSON object")
        if self.store.get(self.res_sa.storage, ns, name) is None:
            raise errors.not_found(self.res_sa, name)
        spec = dict(body.get("spec") or {})
        seconds = spec.get("expirationSeconds")
        if seconds in (None, 0):
            seconds = DEFAULT_EXPIRATION_SECONDS
        if not isinstance(seconds, int) or seconds < MIN_EXPIRATION_SECONDS:
            raise errors.invalid(self.res_sa, name, "spec.expirationSeconds: Invalid value: %r: may not "
                                 "specify a duration less than 10 minutes" % (seconds,))
        spec["expirationSeconds"] = seconds
        spec.setdefault("audiences", ["https://kubernetes.default.svc"])
        extra = {"authentication.kubernetes.io/credential-id": ["JTI=" + secrets.token_hex(16)]}
        bound = spec.get("boundObjectRef")
        if bound:
            if bound.get("kind") != "Node" or bound.get("apiVersion", "v1") != "v1":
                raise errors.invalid(self.res_sa, name, "spec.boundObjectRef.kind: Unsupported value: %r: "
                                     "this test server binds tokens to Nodes only" % (bound.get("kind"),))
            res_node = by_kind("Node")
            node = self.store.get(res_node.storage, "", bound.get("name", ""))
            if node is None:
                raise errors.not_found(res_node, bound.get("name", ""))
            if bound.get("uid") and bound["uid"] != node["metadata"]["uid"]:
                raise errors.conflict(res_node, bound["name"], "the UID in the bound object reference (%s) "
                                      "does not match the UID in record. The object might have been "
                                      "deleted and then recreated" % bound["uid"])
            extra["authentication.kubernetes.io/node-name"] = [node["metadata"]["name"]]
            extra["authentication.kubernetes.io/node-uid"] = [node["metadata"]["uid"]]
        token = secrets.token_urlsafe(32)
        expires = self.clock.now() + seconds
        if not dry:
            self.auth.add_token(token, "system:serviceaccount:%s:%s" % (ns, name), expires_at=expires,
                                extra=extra)
        ts = self.clock.rfc3339(expires)
        return {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
                "metadata": {"name": name, "namespace": ns, "creationTimestamp": None},
                "spec": spec, "status": {"token": token, "expirationTimestamp": ts}}


# -- protobuf, just enough for a TokenRequest --------------------------------------------------------
def _fields(data):
    """(field number, wire type, value) of one protobuf message: varints as int, the rest as bytes."""
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            value, i = _varint(data, i)
        elif wt == 2:
            n, i = _varint(data, i)
            value, i = data[i:i + n], i + n
            if i > len(data):
                raise ValueError("truncated field %d" % num)
        elif wt == 1:
            value, i = data[i:i + 8], i + 8
        elif wt == 5:
            value, i = data[i:i + 4], i + 4
        else:
            raise ValueError("wire type %d" % wt)
        yield num, wt, value


def _varint(data, i):
    shift = value = 0
    while True:
        if i >= len(data) or shift > 63:
            raise ValueError("bad varint")
        b = data[i]
        i += 1
        value |= (b & 0x7f) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def token_request_from_protobuf(raw):
    """The spec of a TokenRequest sent as application/vnd.kubernetes.protobuf: the "k8s\\0" magic,
    a runtime.Unknown (typeMeta = 1, raw = 2), and in raw the TokenRequest (spec = 2: audiences = 1,
    expirationSeconds = 4)."""
    if not raw.startswith(b"k8s\x00"):
        raise errors.bad_request("protobuf body without the k8s magic")
    try:
        inner = next((v for n, wt, v in _fields(raw[4:]) if n == 2 and wt == 2), b"")
        spec = {"audiences": []}
        for n, wt, v in _fields(inner):
            if n == 2 and wt == 2:
                for sn, swt, sv in _fields(v):
                    if sn == 1 and swt == 2:
                        spec["audiences"].append(sv.decode())
                    elif sn == 4 and swt == 0:
                        spec["expirationSeconds"] = sv
    except (ValueError, UnicodeDecodeError) as e:
        raise errors.bad_request("error decoding the protobuf TokenRequest: %s" % e)
    if not spec["audiences"]:
        del spec["audiences"]
    return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
