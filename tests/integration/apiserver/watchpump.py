"""One thread that sends every open watch stream its events (an event loop over epoll), instead of
one blocked thread per watch.

A thousand nodes each watching the lock queue's Leases make every ticket written a thousand
events. With a thread per watch, each event woke a thousand Python threads that then took turns for
the interpreter lock; the server spent most of its CPU switching between them, and the holders'
requests waited behind that (hand-offs of seconds at 1000 nodes). The real kube-apiserver serves
watches from goroutines fed by one watch cache; here a connection's thread sets the watch up
(authentication, authorization, the response headers, a 410 for a resourceVersion too old) and then
hands the connection to the pump, which:

- drains each ready watch's queue into one buffer and sends it with one non-blocking TLS write
  (a write that would block is retried with the same bytes when the socket is writable, as
  OpenSSL requires);
- notices at once a client that closes its end (the socket turns readable), where the old threads
  looked once a second;
- ends a stream at its deadline or when the store closes it (overflow, outage) with the chunked
  terminator, and hands a still-open keep-alive connection back to a thread that serves its next
  request, as a real server lets a client reuse the connection after a watch ends;
- sends BOOKMARKs to watches that asked for them after BOOKMARK_INTERVAL s without a write;
- plays the stream faults (faults.py): truncate cuts a stream in the middle of an event line,
  huge-line sends one endless line, made as the client reads it, FLOOD_BURST bytes at a time so
  that the other streams get their turn."""

import collections
import heapq
import itertools
import os
import selectors
import ssl
import sys
import threading
import time
import traceback

TICK = 1.0  # how often bookmarks are looked at (deadlines are kept to the millisecond)
FINISH_TIMEOUT = 10.0   # how long an ended stream's last bytes may wait for a client that reads slowly
FLOOD_BLOCK = b"x" * 65536
FLOOD_BURST = 1 << 20   # bytes of a huge line sent before the pump looks at its other streams
FLOOD_HEAD = b'{"type":"ADDED","object":{"apiVersion":"v1","kind":"Flood","metadata":{"name":"'


class Stream:
    __slots__ = ("server", "conn", "addr", "watcher", "encode", "deadline", "bookmarks", "last_write",
                 "pending", "waiting_write", "closed", "ending_since", "cut", "cut_events", "flood_left",
                 "close_when_sent")

    def __init__(self, server, conn, addr, watcher, encode, deadline, bookmarks, cut=None):
        self.server = server          # resume_connection(conn, addr), forget_connection(conn)
        self.conn = conn
        self.addr = addr
        self.watcher = watcher
        self.encode = encode          # item -> the event's line (bytes, newline included)
        self.deadline = deadline      # time.monotonic() at which the server ends the stream
        self.bookmarks = bookmarks
        self.last_write = time.monotonic()
        self.pending = b""            # bytes a write left behind; retried as they are
        self.waiting_write = False
        self.closed = False
        self.ending_since = None      # the stream has ended; its last bytes still wait for the socket
        self.cut = cut                # a truncate or huge-line fault (faults.py), or None
        self.cut_events = 0           # truncate: whole event lines sent so far
        self.flood_left = None        # huge-line: bytes of the line still to make; None before it starts
        self.close_when_sent = False  # the connection ends once pending is out (a cut, a flood's end)


class WatchPump:
    def __init__(self, store, bookmark_interval):
        self.store = store
        self.bookmark_interval = bookmark_interval
        self.sel = selectors.DefaultSelector()
        self.wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.sel.register(self.wake_fd, selectors.EVENT_READ, None)
        self.lock = threading.Lock()
        self.ready = set()
        self.adopted = collections.deque()
        self.woken = False
        self.streams = set()
        self.deadlines = []               # heap of (deadline, seq, stream)
        self.seq = itertools.count()
        threading.Thread(target=self._run, name="watch-pump", daemon=True).start()

    # -- from other threads -------------------------------------------------------------------
    def adopt(self, server, conn, addr, watcher, encode, deadline, bookmarks, cut=None):
        """Send the watch's events on conn from now on. server: resume_connection(conn, addr)
        serves the connection's next requests (a thread), forget_connection(conn) drops a
        closed one. cut: a truncate or huge-line fault rule taken for this watch."""
        stream = Stream(server, conn, addr, watcher, encode, deadline, bookmarks, cut)
        with self.lock:
            self.adopted.append(stream)   # registered (non-blocking) before it is first pumped
        watcher.sink = lambda w, s=stream: self._mark_ready(s)
        self._mark_ready(stream)          # what was queued before the sink was set

    def _mark_ready(self, stream):
        """Called under the store's lock for every event a watch takes: cheap, one wake-up per burst."""
        with self.lock:
            self.ready.add(stream)
            if self.woken:
                return
            self.woken = True
        os.eventfd_write(self.wake_fd, 1)

    # -- the loop -----------------------------------------------------------------------------
    def _run(self):
        while True:
            try:
                self._loop()
            except Exception:   # a bug must not silence every watch for good
                traceback.print_exc(file=sys.stderr)

    def _loop(self):
        next_tick = time.monotonic() + TICK
        while True:
            wake = min(next_tick, self.deadlines[0][0]) if self.deadlines else next_tick
            timeout = max(0.0, wake - time.monotonic())
            for key, mask in self.sel.select(timeout):
                if key.data is None:
                    try:
                        os.eventfd_read(self.wake_fd)
                    except BlockingIOError:
                        pass
                    continue
                stream = key.data
                self._guarded(self._on_socket, stream, mask)
            with self.lock:
                adopted, self.adopted = self.adopted, collections.deque()
                ready, self.ready = self.ready, set()
                self.woken = False
            for stream in adopted:
                self._guarded(self._register, stream)
            for stream in ready:
                if not stream.closed:
                    self._guarded(self._pump, stream)
            now = time.monotonic()
            while self.deadlines and self.deadlines[0][0] <= now:
                self._end(heapq.heappop(self.deadlines)[2])
            if now >= next_tick:
                next_tick = now + TICK
                self._tick(now)

    def _guarded(self, fn, stream, *args):
        """One stream's trouble (a bug) closes that stream, not the batch the loop is working on."""
        try:
            fn(stream, *args)
        except Exception:
            traceback.print_exc(file=sys.stderr)
            try:
                self._close(stream)
            except Exception:
                pass

    def _on_socket(self, stream, mask):
        if mask & selectors.EVENT_READ and self._client_gone(stream):
            self._close(stream)
            return
        if mask & selectors.EVENT_WRITE:
            self._flush(stream)

    def _register(self, stream):
        try:
            stream.conn.setblocking(False)
            self.sel.register(stream.conn, selectors.EVENT_READ, stream)
        except (OSError, ValueError):
            self._close(stream)
            return
        self.streams.add(stream)
        heapq.heappush(self.deadlines, (stream.deadline, next(self.seq), stream))

    def _tick(self, now):
        for stream in list(self.streams):
            if stream.ending_since is not None:
                if now - stream.ending_since >= FINISH_TIMEOUT:
                    self._close(stream)     # it does not read: the connection goes
            elif stream.watcher.overflowed and stream.waiting_write:
                self._close(stream)         # its queue overflowed while it did not read
            elif stream.bookmarks and now - stream.last_write >= self.bookmark_interval:
                stream.last_write = now
                self.store.bookmark(stream.watcher)   # queued behind the events: marks it ready

    def _pump(self, stream):
        """Send what the watch has queued; end the stream on CLOSE. While a write waits for the
        socket, events stay in the watch's queue, where a client that does not read overflows it
        and has its stream closed (Watcher.MAX_QUEUE)."""
        if stream.waiting_write or stream.ending_since is not None or stream.close_when_sent:
            return
        if stream.cut is not None and stream.cut["action"] == "huge-line":
            if stream.flood_left is None:   # the line starts; nothing else goes out on this stream
                stream.flood_left = max(0, int(stream.cut.get("size", 1 << 30)) - len(FLOOD_HEAD))
                stream.pending = b"%x\r\n%s\r\n" % (len(FLOOD_HEAD), FLOOD_HEAD)
                stream.last_write = time.monotonic()
                self._flush(stream)
            return
        q = stream.watcher.items
        parts = []
        end = False
        while q:
            item = q.popleft()
            if item[0] == "CLOSE":
                end = True
                break
            line = stream.encode(item)
            if stream.cut is not None and stream.cut["action"] == "truncate":
                if stream.cut_events < int(stream.cut.get("after", 0)):
                    stream.cut_events += 1
                else:
                    # the chunk announces the whole line; half of it comes, then the connection ends
                    n = max(1, min(len(line) - 1, int(len(line) * float(stream.cut.get("at", 0.5)))))
                    parts.append(b"%x\r\n%s" % (len(line), line[:n]))
                    stream.cut["_record"].update(watch=True, events=stream.cut_events, line=len(line), sent=n)
                    stream.close_when_sent = True
                    end = False
                    break
            parts.append(b"%x\r\n%s\r\n" % (len(line), line))
        if parts:
            stream.last_write = time.monotonic()
            stream.pending = b"".join(parts)
            if not self._flush(stream):
                return
        if end:
            self._end(stream)

    def _refill(self, stream):
        """huge-line: the next piece of the endless line into pending; False once it is all out
        (the connection then ends) or for other streams."""
        if stream.flood_left is None:
            return False
        if stream.flood_left == 0:
            if not stream.close_when_sent:
                stream.close_when_sent = True
                stream.cut["_record"]["ended"] = "complete"
            return False
        data = FLOOD_BLOCK[:stream.flood_left]
        stream.flood_left -= len(data)
        stream.pending = b"%x\r\n%s\r\n" % (len(data), data)
        return True

    def _flush(self, stream):
        """Write what is pending as far as the socket takes it; False: the connection is closed."""
        burst = 0
        while stream.pending or self._refill(stream):
            if burst >= FLOOD_BURST:
                # the other streams' turn: go on when the socket is writable again
                if not stream.waiting_write:
                    stream.waiting_write = True
                    self._watch_write(stream, True)
                return True
            try:
                n = stream.conn.send(stream.pending)
            except (ssl.SSLWantWriteError, BlockingIOError, ssl.SSLWantReadError):
                # retried later with the same bytes, as OpenSSL requires
                if not stream.waiting_write:
                    stream.waiting_write = True
                    self._watch_write(stream, True)
                return True
            except (OSError, ssl.SSLError, ValueError, AttributeError):
                # AttributeError: an outage's kill_connections shut the TLS socket down meanwhile
                self._close(stream)
                return False
            stream.pending = stream.pending[n:]
            if stream.flood_left is not None:
                burst += n
                stream.cut["_record"]["sent"] += n
        if stream.close_when_sent:
            self._close(stream)
            return False
        if stream.waiting_write:
            stream.waiting_write = False
            self._watch_write(stream, False)
            if stream.ending_since is not None:
                self._hand_back(stream)
                return True
            self._pump(stream)       # what queued up meanwhile
        return True

    def _watch_write(self, stream, on):
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if on else 0)
        try:
            self.sel.modify(stream.conn, events, stream)
        except (KeyError, ValueError, OSError):
            pass

    def _client_gone(self, stream):
        """A watch client sends nothing: a readable socket means it went away (or broke HTTP)."""
        try:
            data = stream.conn.recv(4096)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            return False
        except (OSError, ssl.SSLError, ValueError, AttributeError):
            return True
        # EOF, or bytes in the middle of a watch (no client of ours sends any, and a request
        # pipelined behind a watch could not be answered in order): the connection is done.
        return data is not None

    def _unregister(self, stream):
        self.streams.discard(stream)
        self.store.unsubscribe(stream.watcher)
        stream.watcher.sink = None
        stream.watcher.items.clear()   # the deadline heap keeps the stream until its deadline
        try:
            self.sel.unregister(stream.conn)
        except (KeyError, ValueError, OSError):
            pass

    def _end(self, stream):
        """The server ends the stream: the chunked terminator after what is already on its way
        (a slow reader gets the rest, as from a real server), then the connection is the client's
        to reuse, served by a thread again."""
        if stream.closed or stream.ending_since is not None:
            return
        if stream.close_when_sent or stream.flood_left is not None:
            self._close(stream)     # a faulty stream has no orderly end
            return
        self.store.unsubscribe(stream.watcher)
        stream.watcher.sink = None
        stream.ending_since = time.monotonic()
        if stream.waiting_write:
            stream.pending += b"0\r\n\r\n"   # the unsent tail grows; OpenSSL takes a longer retry
            return
        stream.pending = b"0\r\n\r\n"
        if self._flush(stream) and not stream.waiting_write:
            self._hand_back(stream)

    def _hand_back(self, stream):
        self._unregister(stream)
        stream.closed = True
        try:
            stream.conn.settimeout(10)
        except (OSError, ValueError):
            self._close_conn(stream)
            return
        stream.server.resume_connection(stream.conn, stream.addr)

    def _close(self, stream):
        if stream.closed:
            return
        if stream.flood_left is not None and stream.cut["_record"].get("ended") is None:
            stream.cut["_record"]["ended"] = "client" if stream.flood_left > 0 else "server"
        self._unregister(stream)
        stream.closed = True
        self._close_conn(stream)

    def _close_conn(self, stream):
        try:
            stream.conn.close()
        except OSError:
            pass
        stream.server.forget_connection(stream.conn)

    def count(self):
        return len(self.streams)
