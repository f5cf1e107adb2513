"""The Kubernetes API over HTTPS: routing, authentication, RBAC, fault injection, verbs, watches,
evictions and discovery. Each connection runs in its own thread; the TLS handshake happens there
too, so a slow client never holds up the accept loop. An open watch stream is handed to the watch
pump (watchpump.py, one thread for all streams), and its connection back to a thread when the
stream ends."""

import base64
import collections
import copy
import functools
import json
import random
import select
import socket
import ssl
import sys
import threading
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from . import errors, resources, tables
from .admission import request_object
from .errors import ApiError
from .objects import check_preconditions
from .patches import APPLY_PATCH
from .selectors import FieldSelector, LabelSelector, selector_from_spec
from .store import Watcher, list_order
from .watchpump import WatchPump
from .tokens import PROTOBUF, token_request_from_protobuf

MAX_BODY = 3 * 1024 * 1024
BOOKMARK_INTERVAL = 5.0


_WIRE_LOCK = threading.Lock()
_WIRE = {}
_WIRE_MAX = 8192


def _wire_event(kind, obj, res):
    """A watch event's line, encoded once for every watch that sends the same stored object the
    same way (the real server's watch cache serializes an event once for all its watchers; a
    thousand nodes watching the same Leases would otherwise cost a thousand encodings each)."""
    # the resourceVersion too: a stored object written again in place gets a new one
    key = (id(obj), (obj.get("metadata") or {}).get("resourceVersion"), kind, res.api_version, res.kind)
    with _WIRE_LOCK:
        hit = _WIRE.get(key)
    if hit is not None and hit[0] is obj:
        return hit[1]
    data = json.dumps({"type": kind, "object": res.to_wire(obj)}, separators=(",", ":")).encode() + b"\n"
    with _WIRE_LOCK:
        if len(_WIRE) >= _WIRE_MAX:
            _WIRE.clear()
        _WIRE[key] = (obj, data)   # holding obj keeps its id from being reused
    return data


CONTINUE_TOO_OLD = ("The provided continue parameter is too old to display a consistent list result. You can "
                    "start a new list without the continue parameter, or use the continue token in this "
                    "response to retrieve the remainder of the results. Continuing with the provided token "
                    "results in an inconsistent list - objects that were created, modified, or deleted between "
                    "the time the first chunk was returned and now may show up in the list.")


def _continue_token(rv, after, list_ns):
    """The real server's token: base64url of {"v","rv","start"}, start the key after the last item,
    relative to the list's key prefix (a namespace's list: the name only)."""
    ns, name = after
    key = name if list_ns or not ns else ns + "/" + name
    tok = {"v": "meta.k8s.io/v1", "rv": int(rv), "start": key + "\u0000"}
    return base64.urlsafe_b64encode(json.dumps(tok, separators=(",", ":")).encode()).decode().rstrip("=")


def _parse_continue(token, list_ns):
    """(resourceVersion, (namespace, name) of the last item sent) of a continue token."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        tok = json.loads(raw)
        start = tok["start"]
        rv = int(tok["rv"])
        if tok.get("v") != "meta.k8s.io/v1" or not isinstance(start, str) or not start.endswith("\u0000"):
            raise ValueError("not a continue key")
    except (ValueError, KeyError, TypeError) as e:
        raise ApiError(400, "invalid continue token: continue key is not valid: %s" % e, "BadRequest")
    if list_ns:
        return rv, (list_ns, start[:-1])
    ns, _, name = start[:-1].rpartition("/")
    return rv, (ns, name)


def _wire_item(item, res):
    """A watch queue's item as the line the stream sends."""
    kind, obj = item
    if kind == "BOOKMARK":
        return json.dumps({"type": "BOOKMARK", "object": {
            "kind": res.kind, "apiVersion": res.api_version,
            "metadata": {"resourceVersion": str(obj)}}}, separators=(",", ":")).encode() + b"\n"
    return _wire_event(kind, obj, res)


def watch_lifetime(min_request_timeout):
    """How long the server keeps a watch open when the client sets no timeoutSeconds: like the real
    one (apiserver/pkg/endpoints/handlers/get.go, ListResource), a random time in
    [min-request-timeout, 2 x min-request-timeout], so no client may count on a watch lasting."""
    return min_request_timeout * (1.0 + random.random())


class RequestLog:
    """Every API request, bounded; tests read it through the control API."""

    def __init__(self, maxlen=100000):
        self._lock = threading.Lock()
        self._entries = collections.deque(maxlen=maxlen)
        self._seq = 0

    def add(self, entry):
        with self._lock:
            self._seq += 1
            entry["seq"] = self._seq
            self._entries.append(entry)

    def list(self):
        with self._lock:
            return list(self._entries)

    def clear(self):
        with self._lock:
            self._entries.clear()


class Route:
    """What a path names. kind: root|api|apis|group|resources|resource|other."""

    def __init__(self, kind, **kw):
        self.kind = kind
        self.group = kw.get("group", "")
        self.version = kw.get("version", "")
        self.namespace = kw.get("namespace")
        self.plural = kw.get("plural")
        self.name = kw.get("name")
        self.sub = kw.get("sub")
        self.watch_prefix = kw.get("watch_prefix", False)
        self.resource = None
        if kind == "resource":
            self.resource = resources.lookup(self.group, self.version, self.plural)


def parse_path(path):
    segs = [s for s in path.split("/") if s]
    if not segs:
        return Route("root")
    if segs[0] == "api":
        if len(segs) == 1:
            return Route("api")
        group, version, rest = "", segs[1], segs[2:]
    elif segs[0] == "apis":
        if len(segs) == 1:
            return Route("apis")
        if len(segs) == 2:
            return Route("group", group=segs[1])
        group, version, rest = segs[1], segs[2], segs[3:]
    else:
        return Route("other")
    if not rest:
        return Route("resources", group=group, version=version)
    watch_prefix = False
    if rest[0] == "watch":
        watch_prefix = True
        rest = rest[1:]
    ns = None
    if rest and rest[0] == "namespaces" and len(rest) >= 3 and not (len(rest) == 3 and rest[2] in ("status", "finalize")):
        ns, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        return Route("other")
    return Route("resource", group=group, version=version, namespace=ns, plural=rest[0],
                 name=rest[1] if len(rest) > 1 else None, sub=rest[2] if len(rest) > 2 else None,
                 watch_prefix=watch_prefix)


def verb_of(method, route, query):
    if route.kind != "resource":
        return method.lower()
    if method == "GET":
        if route.watch_prefix or query.get("watch") in ("1", "true", "True"):
            return "watch"
        return "get" if route.name else "list"
    if method == "POST":
        return "create"
    if method == "PUT":
        return "update"
    if method == "PATCH":
        return "patch"
    if method == "DELETE":
        return "delete" if route.name else "deletecollection"
    return method.lower()


def authz_name(verb, query):
    """The name a list or watch is authorized with: like the real RequestInfoFactory, a field
    selector that requires exactly one metadata.name names the object, so resourceNames rules
    can allow watching a single object."""
    if verb not in ("list", "watch"):
        return ""
    names = []
    for term in (query.get("fieldSelector") or "").split(","):
        for op in ("==", "="):
            key, sep, value = term.partition(op)
            if sep and not key.endswith("!"):
                if key.strip() == "metadata.name":
                    names.append(value.strip())
                break
    return names[0] if len(names) == 1 else ""


class ApiHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, ctx):
        self.ctx = ctx
        self._conns = set()
        self._conns_lock = threading.Lock()
        self._watches_to_adopt = {}   # connection -> a watch its handler set up for the pump
        super().__init__(addr, ApiHandler)

    def finish_request(self, request, client_address):
        # Headers and body leave as separate writes; without NODELAY, Nagle and delayed ACKs would
        # add 40 ms to every keep-alive request.
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        stall = self.ctx.faults.take_connection()
        if stall is not None:
            self._stall_handshake(request, stall)
            return
        request.settimeout(10)
        try:
            conn = self.ctx.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        with self._conns_lock:
            self._conns.add(conn)
        self._serve_connection(conn, client_address)

    def _stall_handshake(self, sock, stall):
        """A tls-stall fault: the connection is accepted and its ClientHello never answered (nor
        read) until the client gives up, or stall["hold"] s pass. socketserver closes it after."""
        started = time.monotonic()
        deadline = started + float(stall.get("hold", 120))
        poller = select.poll()
        poller.register(sock, select.POLLRDHUP | select.POLLHUP | select.POLLERR)
        by = "server"
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if poller.poll(min(left, 0.5) * 1000):
                by = "client"
                break
        self.ctx.faults.note(stall["_record"], closed_after=round(time.monotonic() - started, 3), by=by)

    def _serve_connection(self, conn, client_address):
        served = False
        try:
            self.RequestHandlerClass(conn, client_address, self)
            served = True
        except (OSError, ssl.SSLError):
            pass
        with self._conns_lock:
            adopt = self._watches_to_adopt.pop(conn, None)
        if adopt is not None:
            if served:
                # The stream is the pump's now; the connection stays open.
                self.ctx.watch_pump.adopt(self, conn, client_address, *adopt)
                return
            self.ctx.store.unsubscribe(adopt[0])
        self.forget_connection(conn)
        try:
            conn.close()
        except OSError:
            pass

    def set_watch_to_adopt(self, conn, watch):
        """Called by the handler of a watch: once it returns, the pump takes the connection."""
        with self._conns_lock:
            self._watches_to_adopt[conn] = watch

    def resume_connection(self, conn, client_address):
        """A watch ended and its connection is open: serve the client's next requests on it."""
        threading.Thread(target=self._serve_connection, args=(conn, client_address),
                         name="api-conn", daemon=True).start()

    def forget_connection(self, conn):
        with self._conns_lock:
            self._conns.discard(conn)

    def handle_error(self, request, client_address):
        pass

    def kill_connections(self):
        """A real outage cuts open connections too (watches included)."""
        with self._conns_lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class ApiListener:
    """Owns the listening socket so an outage can close it and re-open the same port later."""

    def __init__(self, ctx, port):
        self.ctx = ctx
        self.port = port
        self.server = None
        ctx.watch_pump = WatchPump(ctx.store, BOOKMARK_INTERVAL)
        self._lock = threading.Lock()
        self._reopen_at = None
        self._timer = None

    def start(self):
        with self._lock:
            self._start_locked()

    def _start_locked(self):
        if self.server is not None:
            return
        deadline = time.monotonic() + 5
        while True:
            try:
                self.server = ApiHTTPServer(("127.0.0.1", self.port), self.ctx)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         name="api-accept", daemon=True).start()

    def stop(self):
        with self._lock:
            self._stop_locked()

    def _stop_locked(self):
        srv, self.server = self.server, None
        if srv is None:
            return
        srv.shutdown()
        srv.server_close()
        srv.kill_connections()
        self.ctx.store.close_all_watches()

    def outage(self, seconds):
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if seconds <= 0:
                self._reopen_at = None
                self._start_locked()
                return
            self._stop_locked()
            self._reopen_at = time.time() + seconds
            self._timer = threading.Timer(seconds, self._end_outage)
            self._timer.daemon = True
            self._timer.start()

    def _end_outage(self):
        with self._lock:
            self._timer = None
            self._reopen_at = None
            self._start_locked()

    def state(self):
        with self._lock:
            return {"up": self.server is not None, "reopen_at": self._reopen_at}

    def kill_connections(self):
        """Cuts every open API connection, watches included (a tls-stall fault with cut)."""
        with self._lock:
            if self.server is not None:
                self.server.kill_connections()


class ApiHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120
    wbufsize = 64 * 1024  # one TLS record per response; every response path flushes

    def log_message(self, fmt, *args):
        pass

    def send_response(self, code, message=None):
        self.send_response_only(code, message)
        self.send_header("Date", self.server.ctx.clock.http_date())

    def do_GET(self):
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    # -- plumbing --------------------------------------------------------------------------------
    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline(16)
                if len(data) > MAX_BODY:
                    raise ApiError(413, "Request entity too large", "RequestEntityTooLarge")
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            raise ApiError(413, "Request entity too large", "RequestEntityTooLarge")
        return self.rfile.read(n) if n else b""

    def _record(self, code):
        """Log the request before its answer leaves, so a test that has the answer finds the entry."""
        entry = getattr(self, "_entry", None)
        if entry is not None and not entry.get("_logged"):
            entry["status"] = code
            entry["_logged"] = True
            self.server.ctx.log.add(entry)

    def _send_json(self, code, obj, headers=None):
        body = json.dumps(obj, separators=(",", ":")).encode()
        self._record(code)
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", str(uuid.uuid4()))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        for w in getattr(self, "_warnings", ()):
            self.send_header("Warning", '299 - "%s"' % w.replace('"', "'"))
        self.end_headers()
        cut = getattr(self, "_cut", None)
        if cut is not None and cut["action"] == "truncate":
            # the full Content-Length went out; part of the body follows, then the connection ends
            self._cut = None
            n = int(cut["bytes"]) if cut.get("bytes") is not None else int(len(body) * float(cut.get("at", 0.5)))
            n = max(0, min(n, len(body) - 1))
            self.wfile.write(body[:n])
            self.wfile.flush()
            self.server.ctx.faults.note(cut["_record"], status=code, length=len(body), sent=n)
            self._drop()
            return
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def _send_text(self, code, text):
        body = text.encode()
        self._record(code)
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_throttled(self, retry_after):
        """API Priority and Fairness turned the request away (tooManyRequests in maxinflight.go):
        http.Error's plain text, not a Status, and a Retry-After header (always "1" there)."""
        body = b"Too many requests, please try again later.\n"
        self._record(429)
        self.send_response(429)
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Retry-After", str(retry_after))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Kubernetes-Pf-Flowschema-Uid", "db87a960-5a40-4553-a3fe-1d6247ba4085")
        self.send_header("X-Kubernetes-Pf-Prioritylevel-Uid", "ee7f4f11-01fe-414d-ac41-cfef30cb87e6")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def _drop(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # -- the request -----------------------------------------------------------------------------
    def _dispatch(self):
        ctx = self.server.ctx
        started = time.time()
        url = urlsplit(self.path)
        path = url.path
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        method = self.command
        route = parse_path(path)
        verb = verb_of(method, route, query)
        entry = {"seq": 0, "time": started, "method": method, "path": path, "query": query, "user": None,
                 "verb": verb, "status": None, "content_type": self.headers.get("Content-Type"), "body": None,
                 "user_agent": self.headers.get("User-Agent")}
        self._entry = entry
        self._warnings = []
        self._cut = None
        if route.kind == "resource":
            entry["resource"] = route.plural + ("/" + route.sub if route.sub else "")
            entry["namespace"] = route.namespace
            entry["name"] = route.name
        status = 500
        try:
            raw = self._read_body()
            if raw:
                try:
                    entry["body"] = json.loads(raw)
                except ValueError:
                    entry["body"] = None
            peer = None
            try:
                peer = self.connection.getpeercert()
            except (ValueError, AttributeError):
                peer = None
            user, groups, presented = ctx.auth.identify(self.headers, peer)
            entry["user"] = user
            self._groups = groups

            fault = ctx.faults.take(method, path, user, verb=verb)
            if fault:
                entry["fault"] = fault["action"]
                if fault["action"] in ("truncate", "huge-line"):
                    # served as usual (a write is applied), then its answer is cut (_send_json,
                    # _serve_watch)
                    self._cut = fault
                elif fault["action"] == "delay":
                    time.sleep(float(fault.get("delay", 1.0)))
                elif fault["action"] == "drop":
                    status = 0
                    self._record(0)
                    self._drop()
                    return
                elif fault["action"] == "status":
                    code = int(fault.get("status", 503))
                    st = fault.get("body") or errors.status_object(code, fault.get("message"))
                    hdrs = dict(fault.get("headers") or {})
                    if fault.get("retry_after") is not None:
                        hdrs["Retry-After"] = str(fault["retry_after"])
                    status = code
                    self._send_json(code, st, hdrs)
                    return
                elif fault["action"] == "throttle":
                    status = 429
                    self._send_throttled(fault.get("retry_after", 1))
                    return
                elif fault["action"] == "conflict":
                    status = 409
                    if route.resource is not None:
                        err = errors.conflict(route.resource, route.name or "")
                    else:
                        err = ApiError(409, None, "Conflict")
                    self._send_json(409, err.status)
                    return

            if user is None:
                raise ApiError(401, "Unauthorized", "Unauthorized")
            status = self._serve(ctx, method, route, verb, query, raw, entry, user)
        except ApiError as e:
            status = e.code
            try:
                self._send_json(e.code, e.status, e.headers)
            except OSError:
                status = 0
        except (OSError, ssl.SSLError):
            status = 0
            self.close_connection = True
        except Exception as e:  # a bug here must not look like a dropped connection
            traceback.print_exc(file=sys.stderr)
            status = 500
            try:
                self._send_json(500, errors.status_object(500, "internal error in the test server: %r" % e))
            except OSError:
                pass
        finally:
            if not entry.get("_logged"):
                self._record(status)
            self._entry = None

    def _serve(self, ctx, method, route, verb, query, raw, entry, user):
        if route.kind != "resource":
            return self._serve_discovery(ctx, method, route, user)
        # Authorization comes before routing, as on the real server: a forbidden request learns
        # nothing, not even whether the resource exists.
        ctx.authz.check(user, self._groups, verb, route.group,
                        route.plural + ("/" + route.sub if route.sub else ""), route.namespace or "",
                        route.name or authz_name(verb, query),
                        {"time": entry["time"], "method": self.command, "path": entry["path"],
                         "user_agent": entry["user_agent"]})
        res = route.resource
        if res is None:
            raise ApiError(404, "the server could not find the requested resource", "NotFound",
                           {})
        ns = route.namespace
        if not res.namespaced and ns is not None:
            raise ApiError(404, "the server could not find the requested resource", "NotFound", {})
        sub = route.sub
        if sub not in (None, "status", "eviction", "token") or (sub == "eviction" and res.plural != "pods") or (
                sub == "status" and not res.status_sub) or (sub == "token" and res.plural != "serviceaccounts"):
            raise ApiError(404, "the server could not find the requested resource", "NotFound", {})
        if sub in ("eviction", "token") and verb != "create":
            raise errors.method_not_allowed()
        dry = query.get("dryRun") == "All"
        if res.namespaced and ns is None and method != "GET":
            raise errors.method_not_allowed()

        body = None
        if raw and self.headers.get("Content-Type", "").startswith(PROTOBUF):
            # kubectl >= 1.24 sends `create token` as protobuf; nothing else here speaks it.
            if sub != "token":
                raise ApiError(415, "this test server accepts protobuf only for TokenRequest",
                               "UnsupportedMediaType")
            body = token_request_from_protobuf(raw)
        elif raw:
            try:
                body = json.loads(raw)
            except ValueError as e:
                raise errors.bad_request("error decoding request body: %s" % e)

        if verb == "watch":
            return self._serve_watch(ctx, res, ns, route, query, entry)
        if verb == "list":
            return self._serve_list(ctx, res, ns, query)
        if verb == "get":
            obj = ctx.objects.get(res, ns, route.name)
            return self._reply_object(200, res, obj)
        if verb == "create":
            if route.name and sub == "eviction":
                return self._evict(ctx, res, ns, route.name, body or {}, dry)
            if route.name and sub == "token":
                self._send_json(201, ctx.tokens.request(ns, route.name, body or {}, dry))
                return 201
            if route.name:
                raise errors.method_not_allowed()
            if body is None:
                raise errors.bad_request("the body of the request was empty")
            self._check_kind(res, body)
            obj = ctx.objects.create(res, ns, body, dry=dry,
                                     admit=self._admitter(ctx, res, sub, ns, "CREATE", dry, user))
            return self._reply_object(201, res, obj)
        if verb == "update":
            if body is None:
                raise errors.bad_request("the body of the request was empty")
            self._check_kind(res, body)
            obj = ctx.objects.update(res, ns, route.name, body, subresource=sub, dry=dry,
                                     admit=self._admitter(ctx, res, sub, ns, "UPDATE", dry, user))
            return self._reply_object(200, res, obj)
        if verb == "patch":
            ct = self.headers.get("Content-Type", "")
            if ct.split(";")[0].strip() == APPLY_PATCH:
                raise ApiError(415, "server-side apply is not supported by this test server",
                               "UnsupportedMediaType")
            if body is None:
                raise errors.bad_request("the body of the request was empty")
            obj = ctx.objects.patch(res, ns, route.name, ct, body, subresource=sub, dry=dry,
                                    admit=self._admitter(ctx, res, sub, ns, "UPDATE", dry, user))
            return self._reply_object(200, res, obj)
        if verb == "delete":
            opts = dict(body or {})
            if "gracePeriodSeconds" in query:
                try:
                    opts["gracePeriodSeconds"] = int(query["gracePeriodSeconds"])
                except ValueError:
                    raise errors.bad_request("gracePeriodSeconds must be an integer")
            obj, finished = ctx.objects.delete(res, ns, route.name, opts, dry=dry,
                                               admit=self._admitter(ctx, res, sub, ns, "DELETE", dry, user))
            if resources.STORAGE_RESOURCE[res.storage].kind == "Pod" or not finished:
                return self._reply_object(200, res, obj)
            details = {"name": route.name, "kind": res.plural, "uid": obj["metadata"].get("uid")}
            if res.group:
                details["group"] = res.group
            self._send_json(200, errors.success_status(200, details) | {"status": "Success"})
            return 200
        if verb == "deletecollection":
            items, _ = ctx.objects.list(res, ns)
            ls = LabelSelector(query.get("labelSelector"))
            fs = FieldSelector(query.get("fieldSelector"), res)
            deleted = []
            for o in items:
                if ls.matches(o["metadata"].get("labels")) and fs.matches(o):
                    try:
                        d, _ = ctx.objects.delete(res, o["metadata"].get("namespace"), o["metadata"]["name"],
                                                  dict(body or {}), dry=dry)
                        deleted.append(d)
                    except ApiError:
                        pass
            return self._reply_list(res, deleted, ctx.store.current_rv())
        raise errors.method_not_allowed()

    def _admitter(self, ctx, res, sub, ns, operation, dry, user):
        """The validating admission stage for one write: admit(old, new) with the stored forms,
        called by Objects once the object is final; it checks policy objects themselves too."""
        def admit(old, new):
            wire_new = res.to_wire(copy.deepcopy(new)) if new is not None else None
            wire_old = res.to_wire(copy.deepcopy(old)) if old is not None else None
            if wire_new is not None:
                ctx.admission.check_policy(res, wire_new)
            name = ((new or old or {}).get("metadata") or {}).get("name", "")
            a = {"group": res.group, "version": res.version, "kind": res.kind, "resource": res.plural,
                 "subresource": sub or "", "namespace": ns or "", "namespaced": res.namespaced,
                 "name": name, "operation": operation, "object": wire_new, "oldObject": wire_old}
            ns_obj = ctx.store.get("namespaces", "", ns) if res.namespaced and ns else None
            a["namespaceObject"] = resources.by_kind("Namespace").to_wire(copy.deepcopy(ns_obj)) if ns_obj else None
            a["request"] = request_object(a, user, self._groups, ctx.auth.extra_of(self.headers), dry)
            try:
                warnings, applied = ctx.admission.admit(a)
            except ApiError as e:
                self._entry["admission"] = {"denied": e.status["message"]}
                raise
            if applied:
                self._entry["admission"] = {"admitted": applied}
            self._warnings += warnings
        return admit

    def _check_kind(self, res, body):
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request was not a JSON object")
        kind, api_version = body.get("kind"), body.get("apiVersion")
        if api_version and api_version != res.api_version:
            raise errors.bad_request("the API version in the data (%s) does not match the expected API "
                                     "version (%s)" % (api_version, res.api_version))
        if kind and kind != res.kind:
            raise errors.bad_request("the kind in the data (%s) does not match the expected kind (%s)"
                                     % (kind, res.kind))

    def _wants_table(self):
        return "as=Table" in self.headers.get("Accept", "")

    def _reply_object(self, code, res, obj):
        wire = res.to_wire(obj)
        if self._wants_table() and self.command == "GET":
            wire = tables.to_table(res.kind, [wire], obj["metadata"].get("resourceVersion", ""),
                                   self.server.ctx.clock.now())
        self._send_json(code, wire)
        return code

    def _reply_list(self, res, items, rv, cont=None, remaining=None):
        if self._wants_table():
            wired = [res.to_wire(o) for o in items]
            table = tables.to_table(res.kind, wired, rv, self.server.ctx.clock.now())
            if cont:
                table["metadata"]["continue"] = cont
            self._send_json(200, table)
            return 200
        out_items = []
        for o in items:
            w = res.to_wire(o)
            # Items of typed lists carry no apiVersion/kind on the real server.
            w.pop("apiVersion", None)
            w.pop("kind", None)
            out_items.append(w)
        md = {"resourceVersion": str(rv)}
        if cont:
            md["continue"] = cont
            if remaining is not None:
                md["remainingItemCount"] = remaining
        self._send_json(200, {"kind": res.kind + "List", "apiVersion": res.api_version, "metadata": md,
                              "items": out_items})
        return 200

    def _serve_list(self, ctx, res, ns, query):
        """A list as kube-apiserver 1.28 answers it (reference case 26): pages in (namespace, name)
        order, every page of one list the same snapshot at the first page's resourceVersion (the
        continue token carries it; a token older than the history is 410 Expired), and
        resourceVersion=0 served whole from the watch cache, limit ignored. A list whose pages
        showed the store as it was at each page's time would hide the objects created meanwhile
        from a client that then watches from the last page's resourceVersion."""
        ls = LabelSelector(query.get("labelSelector"))
        fs = FieldSelector(query.get("fieldSelector"), res)
        token = query.get("continue")
        after = None
        if token:
            if query.get("resourceVersion"):
                raise ApiError(400, "specifying resource version is not allowed when using continue",
                               "BadRequest")
            snap_rv, after = _parse_continue(token, ns)
            if snap_rv < 0:
                # the token of a 410: go on from the key, at the current state (inconsistent, as
                # the real server says)
                items, rv = ctx.objects.list(res, ns)
            else:
                items = ctx.store.snapshot(res.storage, ns if res.namespaced else None, snap_rv)
                if items is None:
                    err = ApiError(410, CONTINUE_TOO_OLD, "Expired")
                    err.status["metadata"] = {"continue": _continue_token(-1, after, ns)}
                    raise err
                rv = snap_rv
        else:
            listed = None
            if res.kind == "Pod" and fs.equals("spec.nodeName") is not None:
                listed = ctx.store.list_indexed(res.storage, "spec.nodeName", fs.equals("spec.nodeName"), ns)
            items, rv = listed if listed is not None else ctx.objects.list(res, ns)

        def fmatch(o):
            if not fs:
                return True
            return fs.matches(res.to_wire(o) if res.group == "events.k8s.io" else o)
        items = [o for o in items if ls.matches(o["metadata"].get("labels")) and fmatch(o)]
        if after is not None:
            items = [o for o in items if list_order(o) > after]
        try:
            limit = int(query.get("limit") or 0)
        except ValueError:
            raise errors.bad_request("limit must be an integer")
        if query.get("resourceVersion") == "0":
            limit = 0   # the watch cache does not paginate (1.28)
        cont = remaining = None
        if limit > 0 and len(items) > limit:
            last = items[limit - 1]["metadata"]
            cont = _continue_token(rv, (last.get("namespace", ""), last["name"]), ns)
            # unknown to the real server when a selector filtered the items (reference case 16)
            remaining = None if (ls or fs) else len(items) - limit
            items = items[:limit]
        return self._reply_list(res, items, rv, cont, remaining)

    # -- watch -----------------------------------------------------------------------------------
    def _serve_watch(self, ctx, res, ns, route, query, entry):
        ls = LabelSelector(query.get("labelSelector"))
        fs = FieldSelector(query.get("fieldSelector"), res)
        if route.name:
            fs = FieldSelector(",".join(filter(None, [query.get("fieldSelector"), "metadata.name=" + route.name])), res)
        rv_param = query.get("resourceVersion", "")
        since = None
        if rv_param not in ("", "0"):
            try:
                since = int(rv_param)
            except ValueError:
                raise ApiError(400, 'resourceVersion: Invalid value: "%s": must be a number' % rv_param,
                               "BadRequest")
        timeout = 0.0
        if query.get("timeoutSeconds"):
            try:
                timeout = float(query["timeoutSeconds"])
            except ValueError:
                raise errors.bad_request("timeoutSeconds must be a number")
        if timeout <= 0:
            timeout = watch_lifetime(ctx.min_request_timeout)
        bookmarks = query.get("allowWatchBookmarks") in ("1", "true", "True")
        watcher = Watcher(res, ns, ls, fs, info={"path": self.path, "user": entry["user"], "started": time.time(),
                                                 "ends": time.time() + timeout})
        ok = ctx.store.subscribe(watcher, since)
        try:
            self._record(200)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Cache-Control", "no-cache, private")
            self.send_header("Audit-Id", str(uuid.uuid4()))
            self.end_headers()
            self.wfile.flush()
            if not ok:
                err = errors.status_object(410, "too old resource version: %d (%d)"
                                           % (since, ctx.store.floor(res.storage)),
                                           "Expired")
                self._chunk({"type": "ERROR", "object": err})
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
                return 200
        except BaseException:
            ctx.store.unsubscribe(watcher)
            raise
        # The pump sends the events from here on; this thread lets go of the connection. A
        # truncate or huge-line fault rides along: the pump cuts or floods the stream.
        cut, self._cut = getattr(self, "_cut", None), None
        self.server.set_watch_to_adopt(self.connection, (watcher, functools.partial(_wire_item, res=res),
                                                          time.monotonic() + timeout, bookmarks, cut))
        self.close_connection = True
        return 200

    def _chunk(self, ev):
        self._write_chunk(json.dumps(ev, separators=(",", ":")).encode() + b"\n")

    def _write_chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    # -- eviction --------------------------------------------------------------------------------
    # pkg/registry/core/pod/storage/eviction.go (1.28), answer for answer: reference cases 01-10.
    EVICTION_REFUSED = "Cannot evict pod as it would violate the pod's disruption budget."
    MAX_DISRUPTED_PODS = 2000

    def _evict(self, ctx, res, ns, name, body, dry):
        if body.get("metadata", {}).get("name") not in (None, "", name):
            raise errors.bad_request("name in URL does not match name in Eviction object")
        opts = dict(body.get("deleteOptions") or {})
        retry = ctx.eviction_retry_duration
        try:
            with ctx.store.lock:
                self._evict_locked(ctx, res, ns, name, opts, dry)
        except _AfterRetries as e:
            # The real handler retries conflicts (20 x 0.5 s) before it gives up: answer that late.
            time.sleep(e.delay if e.delay is not None else retry)
            raise e.error
        self._send_json(201, errors.success_status(201))
        return 201

    def _evict_locked(self, ctx, res, ns, name, opts, dry):
        pod = ctx.objects.get(res, ns, name)
        recreated = self._eviction_fault(ctx, pod, None, opts)
        if _can_ignore_pdb(pod):
            # Terminal, Pending or already terminating: deleted without looking at budgets. A
            # conflict is retried unless the client set a resourceVersion precondition.
            self._evict_delete(ctx, res, pod, opts, dry, not _rv_precondition(opts), recreated)
            return
        pdb_res = resources.by_kind("PodDisruptionBudget")
        pdbs, _ = ctx.store.list(pdb_res.storage, ns)
        labels = pod["metadata"].get("labels")
        pdbs = [p for p in pdbs if ((p.get("spec") or {}).get("selector") or {})
                and selector_from_spec(p["spec"]["selector"])(labels)]
        if len(pdbs) > 1:
            raise ApiError(500, "This pod has more than one PodDisruptionBudget, which the eviction subresource "
                                "does not support.", errors.NO_REASON)
        if pdbs:
            pdb = pdbs[0]
            st = pdb.get("status") or {}
            fault = self._eviction_fault(ctx, pod, pdb, opts)
            # An unready pod under a satisfied budget goes without touching the budget.
            unready_ok = (not _pod_ready(pod) and st.get("currentHealthy", 0) >= st.get("desiredHealthy", 0)
                          and st.get("desiredHealthy", 0) > 0)
            if fault is not None or not unready_ok:
                self._check_and_decrement(ctx, pdb_res, pod, pdb, dry, fault)
        # The budget is already decremented if the delete fails now, as on the real server.
        self._evict_delete(ctx, res, pod, opts, dry, False, recreated)

    def _eviction_fault(self, ctx, pod, pdb, opts):
        """An injected answer for this eviction (faults.py): the pdb-* ones once the pod's one PDB
        is known, uid-conflict only for a request with a UID precondition."""
        def applies(rule):
            if rule["answer"] == "uid-conflict":
                return pdb is None and bool((opts.get("preconditions") or {}).get("uid"))
            return pdb is not None
        path = "/api/v1/namespaces/%s/pods/%s/eviction" % (pod["metadata"]["namespace"], pod["metadata"]["name"])
        fault = ctx.faults.take("POST", path, self._entry["user"], actions=("eviction",), accept=applies)
        if fault is not None:
            self._entry["fault"] = "eviction:" + fault["answer"]
        return fault

    def _check_and_decrement(self, ctx, pdb_res, pod, pdb, dry, fault):
        """checkAndDecrement: refuse, or take one disruption from the budget and note the pod in
        status.disruptedPods (the disruption controller drops the entry once the pod goes)."""
        md, st = pdb["metadata"], copy.deepcopy(pdb.get("status") or {})
        answer = fault["answer"] if fault else None
        cause = [{"reason": "DisruptionBudget", "message": "The disruption budget %s is still being processed by the "
                                                           "server." % md["name"]}]
        if answer == "pdb-conflict":
            raise _AfterRetries(errors.conflict(pdb_res, md["name"]), fault.get("delay"))
        if answer == "pdb-processing" or st.get("observedGeneration", 0) < md.get("generation", 1):
            raise errors.too_many_requests(self.EVICTION_REFUSED, 10, cause)
        if answer == "pdb-negative" or st.get("disruptionsAllowed", 0) < 0:
            raise errors.forbidden_by("poddisruptionbudget", "policy", md["name"],
                                      "pdb disruptions allowed is negative")
        if answer == "pdb-too-many-disrupted" or len(st.get("disruptedPods") or {}) > self.MAX_DISRUPTED_PODS:
            raise errors.forbidden_by("poddisruptionbudget", "policy", md["name"],
                                      "DisruptedPods map too big - too many evictions not confirmed by PDB "
                                      "controller")
        if answer == "pdb-budget" or st.get("disruptionsAllowed", 0) == 0:
            raise errors.too_many_requests(self.EVICTION_REFUSED, 0, [{
                "reason": "DisruptionBudget",
                "message": "The disruption budget %s needs %d healthy pods and has %d currently"
                           % (md["name"], st.get("desiredHealthy", 0), st.get("currentHealthy", 0))}])
        if dry:
            return
        st["disruptionsAllowed"] -= 1
        if st["disruptionsAllowed"] == 0:
            for c in st.get("conditions") or []:
                if c.get("type") == "DisruptionAllowed" and c.get("status") != "False":
                    c.update(status="False", reason="InsufficientPods", lastTransitionTime=ctx.clock.rfc3339())
        st.setdefault("disruptedPods", {})[pod["metadata"]["name"]] = ctx.clock.rfc3339()
        new = copy.deepcopy(pdb)
        new["status"] = st
        ctx.objects.replace_raw(pdb_res, new)

    def _evict_delete(self, ctx, res, pod, opts, dry, retried, recreated=None):
        """addConditionAndDeletePod: the preconditions, the pod's DisruptionTarget condition
        (PodDisruptionConditions is on in 1.28), then the delete. recreated: an injected
        uid-conflict, as if the pod had been deleted and recreated since the client read it."""
        md = pod["metadata"]
        try:
            if recreated is not None:
                raise errors.precondition_conflict(res, md["name"], "UID", opts["preconditions"]["uid"],
                                                   str(uuid.uuid4()))
            check_preconditions(res, pod, opts)
        except ApiError as e:
            if retried and e.code == 409:
                raise _AfterRetries(e, (recreated or {}).get("delay"))
            raise
        if dry:
            return
        new = copy.deepcopy(pod)
        conds = new.setdefault("status", {}).setdefault("conditions", [])
        if not any(c.get("type") == "DisruptionTarget" and c.get("status") == "True" for c in conds):
            conds[:] = [c for c in conds if c.get("type") != "DisruptionTarget"] + [{
                "type": "DisruptionTarget", "status": "True", "lastProbeTime": None,
                "lastTransitionTime": ctx.clock.rfc3339(), "reason": "EvictionByEvictionAPI",
                "message": "Eviction API: evicting"}]
            pod = ctx.objects.replace_raw(res, new)
        opts.pop("preconditions", None)  # checked above; the condition's write changed the resourceVersion
        ctx.objects.delete(res, md["namespace"], md["name"], opts)

    # -- discovery and the rest ------------------------------------------------------------------
    def _serve_discovery(self, ctx, method, route, user):
        if method != "GET":
            raise errors.method_not_allowed()
        p = urlsplit(self.path).path.rstrip("/")
        if route.kind == "api":
            self._send_json(200, resources.api_versions("127.0.0.1:%d" % self.server.server_address[1]))
        elif route.kind == "apis":
            self._send_json(200, resources.api_group_list())
        elif route.kind == "group":
            g = resources.api_group(route.group)
            if g is None:
                raise ApiError(404, "the server could not find the requested resource", "NotFound", {})
            self._send_json(200, g)
        elif route.kind == "resources":
            rl = resources.api_resource_list(route.group, route.version)
            if rl is None:
                raise ApiError(404, "the server could not find the requested resource", "NotFound", {})
            self._send_json(200, rl)
        elif p == "/version":
            self._send_json(200, resources.VERSION_INFO)
        elif p in ("/healthz", "/livez", "/readyz"):
            self._send_text(200, "ok")
            return 200
        elif route.kind == "root":
            self._send_json(200, {"paths": ["/api", "/api/v1", "/apis", "/healthz", "/livez", "/readyz",
                                            "/version"]})
        else:
            raise ApiError(404, "the server could not find the requested resource", "NotFound", {})
        return 200


class _AfterRetries(Exception):
    """An eviction error the real handler answers only after its conflict retries."""

    def __init__(self, error, delay):
        super().__init__(str(error))
        self.error = error
        self.delay = delay


def _can_ignore_pdb(pod):
    """eviction.go canIgnorePDB."""
    return ((pod.get("status") or {}).get("phase") in ("Succeeded", "Failed", "Pending")
            or bool(pod["metadata"].get("deletionTimestamp")))


def _rv_precondition(opts):
    return bool((opts.get("preconditions") or {}).get("resourceVersion"))


def _pod_ready(pod):
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])
