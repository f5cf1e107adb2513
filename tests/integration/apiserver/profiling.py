"""--profile FILE: where the test server's CPU goes, for the scale benchmark. Every thread runs
under its own cProfile that counts CPU time (time.thread_time), so threads waiting for a socket or
for the interpreter lock cost nothing; at exit the profiles are merged and written as pstats
(read with `python3 -m pstats FILE`)."""

import cProfile
import pstats
import threading
import time

_profiles = []
_lock = threading.Lock()


def _start_in_thread(*_args):
    prof = cProfile.Profile(time.thread_time)
    with _lock:
        _profiles.append(prof)
    prof.enable()   # replaces this hook as the thread's profiler


def start():
    threading.setprofile(_start_in_thread)
    _start_in_thread()


def dump(path):
    with _lock:
        profs = list(_profiles)
    stats = None
    for prof in profs:
        try:
            prof.create_stats()
        except Exception:
            continue
        if not prof.stats:
            continue
        if stats is None:
            stats = pstats.Stats(prof)
        else:
            stats.add(prof)
    if stats is not None:
        stats.dump_stats(path)
