#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""One logind stand-in for every simulated node of the scale harness (scale.py).

    DBUS_SYSTEM_BUS_ADDRESS=unix:path=... /usr/bin/python3 logind-standin.py --events FILE --ready FILE

Owns org.freedesktop.login1 on a private bus and answers what noderebootd calls on
org.freedesktop.login1.Manager (daemon/host/logind.c): RebootWithFlags(t), Reboot(b) (the fallback of
logind < 248), ListInhibitors() and Properties.Get of BlockInhibited / PreparingForShutdown (and
DelayInhibited, GetAll, for busctl). No inhibitor is ever held and no shutdown is in progress.

Callers are told apart by their bus credentials: the sender's unique name is mapped to its Unix
process ID with org.freedesktop.DBus.GetConnectionUnixProcessID (cached: unique names are never
reused). Every call is appended to --events as one JSON line {"time", "pid", "method", "args"},
flushed at once, so the harness can tail the file to see which daemon (by pid) asked to reboot.
--ready is written once the name is owned.
"""

import argparse
import json
import os
import signal
import sys
import time

import dbus
import dbus.mainloop.glib
import dbus.service
from gi.repository import GLib

SERVICE = "org.freedesktop.login1"
PATH = "/org/freedesktop/login1"
MANAGER = "org.freedesktop.login1.Manager"
PROPERTIES = "org.freedesktop.DBus.Properties"


class Manager(dbus.service.Object):
    def __init__(self, bus, events):
        super().__init__(bus, PATH)
        self.bus = bus
        self.events = events
        self.pids = {}

    def _pid(self, sender):
        pid = self.pids.get(sender)
        if pid is None:
            try:
                pid = int(self.bus.call_blocking("org.freedesktop.DBus", "/org/freedesktop/DBus",
                                                 "org.freedesktop.DBus", "GetConnectionUnixProcessID", "s",
                                                 (sender,)))
            except dbus.exceptions.DBusException:
                pid = 0
            self.pids[sender] = pid
        return pid

    def _record(self, sender, method, *args):
        line = json.dumps({"time": time.time(), "pid": self._pid(sender), "method": method,
                           "args": [a if isinstance(a, (bool, int, str)) else str(a) for a in args]})
        self.events.write(line + "\n")
        self.events.flush()

    def _properties(self):
        return {"BlockInhibited": dbus.String("", variant_level=1),
                "DelayInhibited": dbus.String("", variant_level=1),
                "PreparingForShutdown": dbus.Boolean(False, variant_level=1)}

    @dbus.service.method(MANAGER, in_signature="t", out_signature="", sender_keyword="sender")
    def RebootWithFlags(self, flags, sender=None):
        self._record(sender, "RebootWithFlags", int(flags))

    @dbus.service.method(MANAGER, in_signature="b", out_signature="", sender_keyword="sender")
    def Reboot(self, interactive, sender=None):
        self._record(sender, "Reboot", bool(interactive))

    @dbus.service.method(MANAGER, in_signature="", out_signature="a(ssssuu)", sender_keyword="sender")
    def ListInhibitors(self, sender=None):
        self._record(sender, "ListInhibitors")
        return dbus.Array([], signature="(ssssuu)")

    @dbus.service.method(PROPERTIES, in_signature="ss", out_signature="v", sender_keyword="sender")
    def Get(self, interface, prop, sender=None):
        self._record(sender, "Get", str(prop))
        props = self._properties() if interface == MANAGER else {}
        if prop not in props:
            raise dbus.exceptions.DBusException(f"no property {interface}.{prop}",
                                                name="org.freedesktop.DBus.Error.UnknownProperty")
        return props[prop]

    @dbus.service.method(PROPERTIES, in_signature="s", out_signature="a{sv}", sender_keyword="sender")
    def GetAll(self, interface, sender=None):
        self._record(sender, "GetAll", str(interface))
        return dbus.Dictionary(self._properties() if interface == MANAGER else {}, signature="sv")

    @dbus.service.method(PROPERTIES, in_signature="ssv", out_signature="")
    def Set(self, interface, prop, value):
        raise dbus.exceptions.DBusException("read-only", name="org.freedesktop.DBus.Error.PropertyReadOnly")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", required=True)
    ap.add_argument("--ready", required=True)
    args = ap.parse_args()
    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    bus = dbus.SystemBus()
    events = open(args.events, "a")
    # Both stay referenced until the loop ends: the object stays exported, the name owned.
    exported = (Manager(bus, events), dbus.service.BusName(SERVICE, bus, do_not_queue=True))
    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_HIGH, sig, loop.quit)
    with open(args.ready + ".tmp", "w") as f:
        f.write(str(os.getpid()) + "\n")
    os.rename(args.ready + ".tmp", args.ready)
    loop.run()
    del exported
    events.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
