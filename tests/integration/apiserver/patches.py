"""The three patch types the real server accepts on built-in resources.

Strategic merge patch is a JSON merge patch plus merging of the few lists clients commonly patch
by key (conditions by type, containers by name, ...) and the $patch/$deleteFromPrimitiveList
directives; $retainKeys and $setElementOrder only affect ordering or pruning and are dropped."""

import copy
import json

from .errors import ApiError, bad_request, unprocessable

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

# Lists merged by key in the built-in types (patchMergeKey in k8s.io/api).
MERGE_KEYS = {
    "conditions": "type",
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "env": "name",
    "ownerReferences": "uid",
    "addresses": "type",
    "imagePullSecrets": "name",
    "tolerations": None,  # atomic
    "taints": None,  # atomic (no patchStrategy on NodeSpec.Taints)
}
# Lists of scalars merged as sets.
MERGE_SCALAR_LISTS = {"finalizers"}


def merge_patch(target, patch):
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    out = dict(target)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def strategic_merge_patch(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if not k.startswith("$")}
    if patch.get("$patch") == "delete":
        return None
    if not isinstance(target, dict):
        target = {}
    out = dict(target)
    for k, v in patch.items():
        if k.startswith("$setElementOrder/") or k in ("$retainKeys", "$patch"):
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            field = k.split("/", 1)[1]
            if isinstance(out.get(field), list) and isinstance(v, list):
                out[field] = [x for x in out[field] if x not in v]
            continue
        if v is None:
            out.pop(k, None)
        elif isinstance(v, list) and isinstance(out.get(k), list):
            out[k] = _merge_list(k, out[k], v)
        elif isinstance(v, dict):
            merged = strategic_merge_patch(out.get(k), v)
            if merged is None:
                out.pop(k, None)
            else:
                out[k] = merged
        else:
            out[k] = copy.deepcopy(v)
    return out


def _merge_list(field, current, patch):
    if field in MERGE_SCALAR_LISTS:
        res = list(current)
        for x in patch:
            if x not in res:
                res.append(x)
        return res
    key = MERGE_KEYS.get(field)
    if not key or not all(isinstance(x, dict) for x in patch + current):
        if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch):
            return [x for x in patch if not (isinstance(x, dict) and "$patch" in x)]
        return copy.deepcopy(patch)
    if any(x.get("$patch") == "replace" for x in patch):
        return [copy.deepcopy(x) for x in patch if "$patch" not in x]
    res = [copy.deepcopy(x) for x in current]
    for item in patch:
        idx = next((i for i, x in enumerate(res) if x.get(key) == item.get(key)), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                res.pop(idx)
            continue
        if idx is None:
            res.append({k: v for k, v in item.items() if not k.startswith("$")})
        else:
            res[idx] = strategic_merge_patch(res[idx], item)
    return res


# ---------------------------------------------------------------------------------------------
# RFC 6902 JSON patch.

class _PatchFailed(Exception):
    pass


def _unescape(token):
    return token.replace("~1", "/").replace("~0", "~")


def _pointer(path):
    if path == "":
        return []
    if not path.startswith("/"):
        raise _PatchFailed('invalid JSON pointer "%s"' % path)
    return [_unescape(t) for t in path[1:].split("/")]


def _resolve_parent(doc, tokens, path):
    cur = doc
    for t in tokens[:-1]:
        if isinstance(cur, dict):
            if t not in cur:
                raise _PatchFailed("doc is missing path: \"%s\": missing value" % path)
            cur = cur[t]
        elif isinstance(cur, list):
            try:
                cur = cur[int(t)]
            except (ValueError, IndexError):
                raise _PatchFailed("doc is missing path: \"%s\": missing value" % path)
        else:
            raise _PatchFailed("doc is missing path: \"%s\": missing value" % path)
    return cur


def _get(doc, path):
    tokens = _pointer(path)
    if not tokens:
        return doc
    parent = _resolve_parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _PatchFailed("doc is missing path: \"%s\": missing value" % path)
        return parent[last]
    if isinstance(parent, list):
        try:
            return parent[int(last)]
        except (ValueError, IndexError):
            raise _PatchFailed("doc is missing path: \"%s\": missing value" % path)
    raise _PatchFailed("doc is missing path: \"%s\": missing value" % path)


def _add(doc, path, value):
    tokens = _pointer(path)
    if not tokens:
        return value
    parent = _resolve_parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        else:
            try:
                i = int(last)
            except ValueError:
                raise _PatchFailed("add operation index %s is not a number" % last)
            if i < 0 or i > len(parent):
                raise _PatchFailed("add operation does not apply: doc is missing path: \"%s\": missing value" % path)
            parent.insert(i, value)
    else:
        raise _PatchFailed("add operation does not apply: doc is missing path: \"%s\": missing value" % path)
    return doc


def _remove(doc, path):
    tokens = _pointer(path)
    if not tokens:
        raise _PatchFailed("cannot remove the whole document")
    parent = _resolve_parent(doc, tokens, path)
    last = tokens[-1]
    try:
        if isinstance(parent, dict):
            del parent[last]
        elif isinstance(parent, list):
            del parent[int(last)]
        else:
            raise KeyError
    except (KeyError, ValueError, IndexError):
        raise _PatchFailed("remove operation does not apply: doc is missing path: \"%s\": missing value" % path)
    return doc


def json_patch(target, ops):
    if not isinstance(ops, list):
        raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(target)
    try:
        for op in ops:
            if not isinstance(op, dict) or "op" not in op:
                raise _PatchFailed("unexpected kind of operation")
            kind = op["op"]
            path = op.get("path")
            if path is None:
                raise _PatchFailed("operation missing path")
            if kind == "add":
                doc = _add(doc, path, copy.deepcopy(op.get("value")))
            elif kind == "remove":
                doc = _remove(doc, path)
            elif kind == "replace":
                _get(doc, path)
                tokens = _pointer(path)
                if not tokens:
                    doc = copy.deepcopy(op.get("value"))
                else:
                    parent = _resolve_parent(doc, tokens, path)
                    if isinstance(parent, list):
                        parent[int(tokens[-1])] = copy.deepcopy(op.get("value"))
                    else:
                        parent[tokens[-1]] = copy.deepcopy(op.get("value"))
            elif kind == "move":
                val = _get(doc, op.get("from", ""))
                doc = _remove(doc, op.get("from", ""))
                doc = _add(doc, path, val)
            elif kind == "copy":
                val = copy.deepcopy(_get(doc, op.get("from", "")))
                doc = _add(doc, path, val)
            elif kind == "test":
                try:
                    got = _get(doc, path)
                except _PatchFailed:
                    got = None
                if json.dumps(got, sort_keys=True) != json.dumps(op.get("value"), sort_keys=True):
                    raise _PatchFailed("testing value %s failed: test failed" % path)
            else:
                raise _PatchFailed("Unexpected kind: %s" % kind)
    except _PatchFailed as e:
        raise unprocessable("the server rejected our request due to an error in our request: %s" % e)
    return doc


def apply(content_type, target, patch):
    ct = (content_type or "").split(";")[0].strip().lower()
    if ct == MERGE_PATCH:
        if not isinstance(patch, dict):
            raise bad_request("the patch is not a JSON object")
        return merge_patch(target, patch)
    if ct == STRATEGIC_PATCH:
        if not isinstance(patch, dict):
            raise bad_request("the patch is not a JSON object")
        return strategic_merge_patch(target, patch)
    if ct == JSON_PATCH:
        return json_patch(target, patch)
    raise ApiError(415, "the body of the request was in an unknown format - accepted media types "
                        "include: application/json-patch+json, application/merge-patch+json, "
                        "application/apply-patch+yaml", "UnsupportedMediaType")
