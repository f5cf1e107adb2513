"""Label selectors (equality and set-based, as in labels.Parse) and field selectors (equality only,
restricted per resource as the real server does)."""

import re

from .errors import bad_request
from .resources import field_value

_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                        r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


class LabelSelector:
    """Requirements ANDed together; each is (key, op, values)."""

    def __init__(self, text):
        self.text = text or ""
        self.reqs = _parse_labels(self.text)

    def __bool__(self):
        return bool(self.reqs)

    def matches(self, labels):
        labels = labels or {}
        for key, op, values in self.reqs:
            has = key in labels
            val = labels.get(key)
            if op in ("=", "==", "in"):
                if not has or val not in values:
                    return False
            elif op in ("!=", "notin"):
                if has and val in values:
                    return False
            elif op == "exists":
                if not has:
                    return False
            elif op == "!":
                if has:
                    return False
            elif op in ("gt", "lt"):
                try:
                    n = int(val)
                except (TypeError, ValueError):
                    return False
                if (op == "gt" and not n > int(values[0])) or (op == "lt" and not n < int(values[0])):
                    return False
        return True


def _tokenize(text):
    tokens = []
    i = 0
    while i < len(text):
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if text.startswith("==", i) or text.startswith("!=", i):
            tokens.append(text[i:i + 2])
            i += 2
            continue
        if c in "=(),!<>":
            tokens.append(c)
            i += 1
            continue
        j = i
        while j < len(text) and not text[j].isspace() and text[j] not in "=(),!<>":
            j += 1
        tokens.append(text[i:j])
        i = j
    return tokens


def _parse_labels(text):
    if not text.strip():
        return []
    toks = _tokenize(text)
    reqs = []
    i = 0

    def fail(why):
        raise bad_request("unable to parse requirement: %s" % why)

    def want_key(k):
        if not k or not _LABEL_KEY.match(k):
            fail('invalid label key "%s"' % k)
        return k

    def want_value(v):
        if not _LABEL_VALUE.match(v) or len(v) > 63:
            fail('invalid label value: "%s"' % v)
        return v

    while i < len(toks):
        if toks[i] == "!":
            if i + 1 >= len(toks):
                fail("missing key after '!'")
            reqs.append((want_key(toks[i + 1]), "!", []))
            i += 2
        else:
            key = want_key(toks[i])
            i += 1
            if i >= len(toks) or toks[i] == ",":
                reqs.append((key, "exists", []))
            elif toks[i] in ("=", "==", "!="):
                op = toks[i]
                i += 1
                val = ""
                if i < len(toks) and toks[i] not in (",",):
                    val = toks[i]
                    i += 1
                reqs.append((key, op, [want_value(val)]))
            elif toks[i] in ("in", "notin"):
                op = toks[i]
                i += 1
                if i >= len(toks) or toks[i] != "(":
                    fail("found '%s', expected: '('" % (toks[i] if i < len(toks) else ""))
                i += 1
                values = []
                while True:
                    if i >= len(toks):
                        fail("found '', expected: ')'")
                    t = toks[i]
                    if t == ")":
                        i += 1
                        break
                    if t == ",":
                        i += 1
                        continue
                    values.append(want_value(t))
                    i += 1
                if op == "in" and not values:
                    fail("for 'in' operator, values set can't be empty")
                reqs.append((key, op, values))
            elif toks[i] in (">", "<"):
                op = "gt" if toks[i] == ">" else "lt"
                i += 1
                if i >= len(toks) or not toks[i].lstrip("-").isdigit():
                    fail("for 'Gt', 'Lt' operators, exactly one integer value is required")
                reqs.append((key, op, [toks[i]]))
                i += 1
            else:
                fail("found '%s', expected: in, notin, =, ==, !=, gt, lt" % toks[i])
        if i < len(toks):
            if toks[i] != ",":
                fail("found '%s', expected: ','" % toks[i])
            i += 1
    return reqs


class FieldSelector:
    def __init__(self, text, resource):
        self.text = text or ""
        self.reqs = []
        for part in filter(None, (p.strip() for p in _split_unescaped(self.text))):
            for op in ("!=", "==", "="):
                idx = part.find(op)
                if idx > 0:
                    key, val = part[:idx].strip(), part[idx + len(op):].strip()
                    break
            else:
                raise bad_request('invalid selector: \'%s\'; can\'t understand \'%s\'' % (self.text, part))
            if key not in resource.fields:
                raise bad_request('field label not supported: %s' % key)
            self.reqs.append((key, "!=" if op == "!=" else "=", val.replace("\\,", ",").replace("\\=", "=")))

    def __bool__(self):
        return bool(self.reqs)

    def equals(self, key):
        """The value the selector requires key to equal, if it does."""
        for k, op, val in self.reqs:
            if k == key and op == "=":
                return val
        return None

    def single_name(self):
        for key, op, val in self.reqs:
            if key == "metadata.name" and op == "=":
                return val
        return None

    def matches(self, obj):
        for key, op, val in self.reqs:
            got = field_value(obj, key)
            if (op == "=") != (got == val):
                return False
        return True


def _split_unescaped(text):
    out, cur, esc = [], "", False
    for c in text:
        if esc:
            cur += "\\" + c
            esc = False
        elif c == "\\":
            esc = True
        elif c == ",":
            out.append(cur)
            cur = ""
        else:
            cur += c
    out.append(cur)
    return out


def selector_from_spec(sel):
    """A metav1.LabelSelector (matchLabels/matchExpressions) as a predicate on labels.
    A nil selector matches nothing; an empty one matches everything (policy/v1 semantics)."""
    if sel is None:
        return lambda labels: False
    ml = sel.get("matchLabels") or {}
    exprs = sel.get("matchExpressions") or []

    def pred(labels):
        labels = labels or {}
        for k, v in ml.items():
            if labels.get(k) != v:
                return False
        for e in exprs:
            k, op, vals = e.get("key"), e.get("operator"), e.get("values") or []
            if op == "In" and labels.get(k) not in vals:
                return False
            if op == "NotIn" and k in labels and labels[k] in vals:
                return False
            if op == "Exists" and k not in labels:
                return False
            if op == "DoesNotExist" and k in labels:
                return False
        return True
    return pred
