"""The server's notion of time. Tests shift it (--clock-offset, control /clock) to prove that a
client judges lease expiry by the server's clock, so every timestamp the server writes and the
Date header go through here."""

import email.utils
import threading
import time


class Clock:
    def __init__(self, offset=0.0):
        self._offset = float(offset)
        self._lock = threading.Lock()

    @property
    def offset(self):
        with self._lock:
            return self._offset

    def set_offset(self, offset):
        with self._lock:
            self._offset = float(offset)

    def now(self):
        return time.time() + self.offset

    def rfc3339(self, t=None):
        t = self.now() if t is None else t
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))

    def micro(self, t=None):
        t = self.now() if t is None else t
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%06dZ" % int((t % 1) * 1e6)

    def http_date(self):
        return email.utils.formatdate(self.now(), usegmt=True)


def parse_time(s):
    """RFC 3339 (with or without fraction) to epoch seconds; None when absent or malformed."""
    if not s or not isinstance(s, str):
        return None
    import datetime
    try:
        txt = s.replace("Z", "+00:00")
        return datetime.datetime.fromisoformat(txt).timestamp()
    except ValueError:
        return None


def human_duration(seconds):
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration, as the AGE column shows it."""
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    s = int(seconds)
    if s < 60 * 2:
        return "%ds" % s
    m = s // 60
    if m < 10:
        r = s % 60
        return "%dm%ds" % (m, r) if r else "%dm" % m
    if m < 60 * 3:
        return "%dm" % m
    h = m // 60
    if h < 8:
        r = m % 60
        return "%dh%dm" % (h, r) if r else "%dh" % h
    if h < 48:
        return "%dh" % h
    if h < 24 * 8:
        r = h % 24
        return "%dd%dh" % (h // 24, r) if r else "%dd" % (h // 24)
    if h < 24 * 365 * 2:
        return "%dd" % (h // 24)
    if h < 24 * 365 * 8:
        return "%dy%dd" % (h // (24 * 365), (h // 24) % 365)
    return "%dy" % (h // (24 * 365))
