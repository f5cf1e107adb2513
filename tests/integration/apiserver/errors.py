"""Status objects shaped exactly like the real API server's, so clients parse the same bytes."""

import json

REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}

# Messages the real server uses when only a code is known (k8s.io/apimachinery errors.go).
GENERIC_MESSAGES = {
    400: "the server rejected our request for an unknown reason",
    401: "Unauthorized",
    403: "forbidden",
    404: "the server could not find the requested resource",
    405: "the server does not allow this method on the requested resource",
    409: "the server reported a conflict",
    422: "the server rejected our request due to an error in our request",
    429: "the server has received too many requests and has asked us to try again later",
    500: "an error on the server has prevented the request from succeeding",
    503: "the server is currently unable to handle the request",
    504: "the server was unable to return a response in the time allotted, but may still be processing the request",
}


# reason=NO_REASON leaves "reason" out, as a handler-built metav1.Status without one does (the
# eviction subresource's 500 for a pod under two PodDisruptionBudgets, reference case 06).
NO_REASON = ""


def status_object(code, message=None, reason=None, details=None):
    st = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message if message is not None else GENERIC_MESSAGES.get(code, "unknown error"),
        "reason": reason if reason is not None else REASONS.get(code, "Unknown"),
        "code": code,
    }
    if st["reason"] == NO_REASON:
        del st["reason"]
    if details:
        st["details"] = details
    if code == 401:
        st.pop("details", None)
    return st


def success_status(code=200, details=None):
    st = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": code}
    if details:
        st["details"] = details
    return st


class ApiError(Exception):
    """Raised anywhere below the HTTP handler; the handler turns it into a Status response."""

    def __init__(self, code, message=None, reason=None, details=None, headers=None):
        super().__init__(message)
        self.code = code
        self.status = status_object(code, message, reason, details)
        self.headers = headers or {}

    def body(self):
        return json.dumps(self.status).encode()


def _details(resource, name):
    d = {}
    if name:
        d["name"] = name
    if resource.group:
        d["group"] = resource.group
    d["kind"] = resource.plural
    return d


def not_found(resource, name):
    return ApiError(404, '%s "%s" not found' % (resource.qualified, name), "NotFound",
                    _details(resource, name))


def already_exists(resource, name):
    return ApiError(409, '%s "%s" already exists' % (resource.qualified, name), "AlreadyExists",
                    _details(resource, name))


def conflict(resource, name, why="the object has been modified; please apply your changes "
                                  "to the latest version and try again"):
    return ApiError(409, 'Operation cannot be fulfilled on %s "%s": %s' % (resource.qualified, name, why),
                    "Conflict", _details(resource, name))


def precondition_conflict(resource, name, field, wanted, actual):
    """A DELETE (or eviction) whose preconditions do not hold. Unlike a stale update, the real server
    names the object by Kind here and puts the Kind in details (reference cases 03 and 15)."""
    why = {"UID": "The object might have been deleted and then recreated",
           "ResourceVersion": "The object might have been modified"}[field]
    qualified = resource.kind if not resource.group else resource.kind + "." + resource.group
    d = {"name": name}
    if resource.group:
        d["group"] = resource.group
    d["kind"] = resource.kind
    return ApiError(409, 'Operation cannot be fulfilled on %s "%s": the %s in the precondition (%s) does not '
                         'match the %s in record (%s). %s' % (qualified, name, field, wanted, field, actual, why),
                    "Conflict", d)


def forbidden_by(singular, group, name, why):
    """errors.NewForbidden with a singular resource, as eviction.go raises it for a PDB's state."""
    qualified = singular if not group else singular + "." + group
    d = {"name": name}
    if group:
        d["group"] = group
    d["kind"] = singular
    return ApiError(403, '%s "%s" is forbidden: %s' % (qualified, name, why), "Forbidden", d)


def too_many_requests(message, retry_after=0, causes=None):
    """errors.NewTooManyRequests: a Retry-After header and details.retryAfterSeconds only when the
    server suggests a delay (the PDB still being processed: 10 s; an exhausted budget: none)."""
    d = {}
    if causes:
        d["causes"] = causes
    headers = {}
    if retry_after:
        d["retryAfterSeconds"] = retry_after
        headers["Retry-After"] = str(retry_after)
    return ApiError(429, message, "TooManyRequests", d, headers)


def bad_request(message):
    return ApiError(400, message, "BadRequest")


def invalid(resource, name, message, causes=None):
    d = _details(resource, name)
    if causes:
        d["causes"] = causes
    kind = resource.kind
    return ApiError(422, '%s "%s" is invalid: %s' % (kind, name, message), "Invalid", d)


def unprocessable(message):
    return ApiError(422, message, "Invalid")


def method_not_allowed():
    return ApiError(405, "the server does not allow this method on the requested resource",
                    "MethodNotAllowed")


def unsupported_media(content_type):
    return ApiError(415, 'the body of the request was in an unknown format - accepted media types '
                         'include: application/json-patch+json, application/merge-patch+json, '
                         'application/apply-patch+yaml', "UnsupportedMediaType")
