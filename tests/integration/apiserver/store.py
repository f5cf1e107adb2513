"""The object store: one lock, one global resourceVersion counter, a bounded event history per
resource for watch resumption, and per-watch queues fed under the lock (sockets are written outside
it, by the watch pump).

The history models the real server's watch cache: one per resource (all Leases share one, so the
kubelets' node Leases push the lock Lease's old events out), holding the last history_size events.
A watch from a resourceVersion older than the oldest one kept is answered with 410 Expired.

Stored objects are never mutated in place: every write stores a fresh dict, so readers may
serialize a stored object without copying it."""

import collections
import copy
import threading

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"


def list_order(obj):
    """Where an object stands in a list: (namespace, name), the order pages and continue keys use."""
    md = obj["metadata"]
    return md.get("namespace", ""), md["name"]


class Event:
    __slots__ = ("rv", "type", "storage", "obj", "old")

    def __init__(self, rv, type_, storage, obj, old):
        self.rv = rv
        self.type = type_
        self.storage = storage
        self.obj = obj
        self.old = old


class Watcher:
    """One watch stream's filter and queue. Items are (type, stored object) or ("BOOKMARK", rv),
    or ("CLOSE", None) when the server ends the stream. sink(watcher), when set, is told of every
    item put (the watch pump, which then drains items)."""

    MAX_QUEUE = 50000

    def __init__(self, resource, namespace, label_sel, field_sel, info=None):
        self.resource = resource
        self.namespace = namespace
        self.label_sel = label_sel
        self.field_sel = field_sel
        self.items = collections.deque()
        self.sink = None
        self.info = info or {}
        self.overflowed = False

    def put(self, item):
        self.items.append(item)
        sink = self.sink
        if sink is not None:
            sink(self)

    def matches(self, obj):
        md = obj.get("metadata", {})
        if self.namespace and md.get("namespace") != self.namespace:
            return False
        if self.label_sel and not self.label_sel.matches(md.get("labels")):
            return False
        if self.field_sel:
            view = obj
            if self.resource.group == "events.k8s.io":
                view = self.resource.to_wire(obj)
            if not self.field_sel.matches(view):
                return False
        return True

    def translate(self, ev):
        """The event as this watch sees it: objects leaving the selection are DELETED (with the
        previous content and the new resourceVersion, as the watch cache does)."""
        if ev.type == DELETED:
            return (DELETED, ev.obj) if self.matches(ev.obj) else None
        new_m = self.matches(ev.obj)
        old_m = ev.old is not None and self.matches(ev.old)
        if ev.type == ADDED or (new_m and not old_m):
            return (ADDED, ev.obj) if new_m else None
        if new_m:
            return (MODIFIED, ev.obj)
        if old_m:
            prev = copy.deepcopy(ev.old)
            prev.setdefault("metadata", {})["resourceVersion"] = str(ev.rv)
            return (DELETED, prev)
        return None

    def offer(self, ev):
        t = self.translate(ev)
        if t is None or self.overflowed:
            return
        if len(self.items) >= self.MAX_QUEUE:
            # A client that does not read gets its stream closed, as the real server does.
            self.overflowed = True
            self.put(("CLOSE", None))
            return
        self.put(t)


class Store:
    def __init__(self, clock, history_size=2000, first_rv=100):
        self.lock = threading.RLock()
        self.clock = clock
        self.rv = first_rv
        self.first_rv = first_rv
        self.data = collections.defaultdict(dict)  # storage -> {(ns, name): obj}
        self.history = collections.defaultdict(collections.deque)  # storage -> events, oldest first
        self.history_size = history_size
        self.floors = {}  # storage -> a watch may resume from any rv >= floor
        self.watchers = collections.defaultdict(set)
        # storage -> namespace ("" for every namespace) -> watchers: an event is offered only to
        # the watches of its namespace and the cluster-wide ones (a thousand nodes each watching
        # their lease group must not each be asked about every other namespace's events).
        self.watchers_by_ns = collections.defaultdict(lambda: collections.defaultdict(set))
        self.hooks = []
        # storage -> field -> value -> {(ns, name)}: the real watch cache's indexers (pods by
        # spec.nodeName), so a node's pod list does not read every pod of the cluster.
        self.indexes = {}

    # -- reads -----------------------------------------------------------------------------------
    def get(self, storage, ns, name):
        with self.lock:
            return self.data[storage].get((ns or "", name))

    def list(self, storage, ns=None):
        with self.lock:
            items = [o for (ons, _), o in self.data[storage].items() if ns is None or ons == ns]
            return sorted(items, key=list_order), self.rv

    def add_index(self, storage, field, value_of):
        with self.lock:
            idx = self.indexes.setdefault(storage, {})[field] = (value_of, collections.defaultdict(set))
            for key, obj in self.data[storage].items():
                idx[1][value_of(obj)].add(key)

    def list_indexed(self, storage, field, value, ns=None):
        """list() of the objects whose field equals value, or None without an index for field."""
        with self.lock:
            idx = self.indexes.get(storage, {}).get(field)
            if idx is None:
                return None
            objs = self.data[storage]
            items = [objs[k] for k in idx[1].get(value, ()) if ns is None or k[0] == ns]
            return sorted(items, key=list_order), self.rv

    def _reindex(self, storage, key, old, new):
        for value_of, by_value in self.indexes.get(storage, {}).values():
            if old is not None:
                keys = by_value.get(value_of(old))
                if keys is not None:
                    keys.discard(key)
            if new is not None:
                by_value[value_of(new)].add(key)

    def snapshot(self, storage, ns, rv):
        """list() as the store was at resourceVersion rv, undone from the history; None when the
        history no longer reaches back that far (or rv is ahead of the store)."""
        with self.lock:
            if rv < self.floor(storage) or rv > self.rv:
                return None
            objs = dict(self.data[storage])
            for ev in reversed(self.history[storage]):
                if ev.rv <= rv:
                    break
                md = ev.obj["metadata"]
                key = (md.get("namespace", ""), md["name"])
                if ev.old is not None:
                    objs[key] = ev.old        # modified or deleted since: as it was
                else:
                    objs.pop(key, None)       # created since: not there yet
            items = [o for (ons, _), o in objs.items() if ns is None or ons == ns]
            return sorted(items, key=list_order)

    def current_rv(self):
        with self.lock:
            return self.rv

    # -- writes (callers prepare metadata; the store stamps resourceVersion) ----------------------
    def put(self, storage, obj, type_):
        """Store obj (a fresh dict owned by the store from now on) and fire the event."""
        with self.lock:
            self.rv += 1
            md = obj["metadata"]
            md["resourceVersion"] = str(self.rv)
            key = (md.get("namespace", ""), md["name"])
            old = self.data[storage].get(key)
            self.data[storage][key] = obj
            self._reindex(storage, key, old, obj)
            self._emit(Event(self.rv, type_, storage, obj, old))
            return obj

    def remove(self, storage, ns, name):
        with self.lock:
            key = (ns or "", name)
            old = self.data[storage].pop(key, None)
            if old is None:
                return None
            self._reindex(storage, key, old, None)
            self.rv += 1
            final = copy.deepcopy(old)
            final["metadata"]["resourceVersion"] = str(self.rv)
            self._emit(Event(self.rv, DELETED, storage, final, old))
            return final

    def floor(self, storage=None):
        """The oldest resourceVersion a watch of storage may resume from (of all, without one)."""
        with self.lock:
            if storage is None:
                return max(self.floors.values(), default=self.first_rv)
            return self.floors.get(storage, self.first_rv)

    def _emit(self, ev):
        hist = self.history[ev.storage]
        hist.append(ev)
        while len(hist) > self.history_size:
            self.floors[ev.storage] = hist.popleft().rv
        by_ns = self.watchers_by_ns.get(ev.storage)
        if by_ns:
            ns = (ev.obj.get("metadata") or {}).get("namespace") or ""
            for w in list(by_ns.get("", ())) + (list(by_ns.get(ns, ())) if ns else []):
                w.offer(ev)
        for hook in self.hooks:
            hook(ev)

    # -- watches ---------------------------------------------------------------------------------
    def subscribe(self, watcher, since):
        """Register a watch. since=None: start with ADDED for every current object (what the real
        server does for resourceVersion unset or "0"). Otherwise replay history after since;
        returns False when since is older than the history (the caller answers 410)."""
        storage = watcher.resource.storage
        with self.lock:
            if since is None:
                items, _ = self.list(storage, watcher.namespace)
                for o in items:
                    if watcher.matches(o):
                        watcher.put((ADDED, o))
            else:
                if since < self.floor(storage):
                    return False
                for ev in self.history[storage]:
                    if ev.rv > since:
                        watcher.offer(ev)
            self.watchers[storage].add(watcher)
            self.watchers_by_ns[storage][watcher.namespace or ""].add(watcher)
            return True

    def unsubscribe(self, watcher):
        with self.lock:
            self.watchers[watcher.resource.storage].discard(watcher)
            self.watchers_by_ns[watcher.resource.storage][watcher.namespace or ""].discard(watcher)

    def bookmark(self, watcher):
        """Queue a BOOKMARK behind every event already queued, so its rv never skips one."""
        with self.lock:
            watcher.put(("BOOKMARK", self.rv))

    def all_watchers(self):
        with self.lock:
            return [w for ws in self.watchers.values() for w in ws]

    def close_all_watches(self):
        with self.lock:
            for w in self.all_watchers():
                w.put(("CLOSE", None))
