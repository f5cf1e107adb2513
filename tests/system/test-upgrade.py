#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A package upgrade in the middle of a reboot cycle, in a real systemd container (systemd-nspawn).

The user story: "install version N, start a cycle, upgrade to N+1 mid-cycle, the cycle completes".

  - two packages of this tree from packaging/build-deb.sh: N (the changelog's version) and N+1
    (NODEREBOOT_DEB_VERSION=N+upgradetest1: the same tree under a new top changelog entry); N+1 is
    built while the container boots;
  - one node, node-1, as in test-nspawn.py (tests/system/nspawn.py): a container from rootfs.py's
    cached root file system, N installed with apt-get, systemd as PID 1, restarted after exit 133;
  - the test API server seeded with node-1, two ReplicaSet pods on it and a PodDisruptionBudget
    over them with minAvailable 2: every eviction gets 429, so the drain is held;
  - /run/reboot-required appears; once the state file says draining (cordoned) and the server has
    answered the daemon's evictions with 429, `apt-get install -y /var/tmp/nodereboot_<N+1>.deb`
    runs inside the running container (nsenter), as an operator's unattended upgrade would.

It asserts that the upgrade restarted the daemon (debhelper's restart-after-upgrade: a new main
PID, "Resuming in state draining" in its journal, evictions and a STATUS= naming the budget again),
that the state file kept the cycle (phase, lease, cordoned, node_was_unschedulable, version,
reason), that the Lease stayed held by node-1 the whole time (sampled from outside and every lease
write in the server's request log) and the Node stayed cordoned; then, once the budget is deleted,
that the cycle completes: exactly one reboot (nspawn exit 133, a new boot ID), the service back by
itself, the Node uncordoned, the Lease released, the state idle, and `dpkg -s nodereboot` says
N+1. Last, `apt-get remove` keeps /var/lib/nodereboot and `apt-get purge` deletes it.

Needs root, systemd-container, debootstrap (first run) and zstd; exits 77 (skipped) when not root.
Environment: SOURCE_ROOT, NODEREBOOT_DEB and NODEREBOOT_DEB_NEXT (use these .debs for N and N+1
instead of building them; N+1 must have the higher version), NODEREBOOT_TEST_CACHE,
NODEREBOOT_KEEP=1 (keep the work folder on failure).
"""

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.environ.get("SOURCE_ROOT") or os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(SOURCE_ROOT, "tests", "integration"))
import nspawn  # noqa: E402
import rootfs  # noqa: E402
from bench import ApiServer, seed_cluster  # noqa: E402
from nspawn import EXIT_REBOOT, Container, build_deb, dump, prepare, say, wait_booted, wait_for  # noqa: E402

NODE = "node-1"
SLOT = "nodereboot-0"                                   # [Lock] Name=nodereboot, Concurrency=1
PDB_PATH = "/apis/policy/v1/namespaces/default/poddisruptionbudgets/web-pdb"
MSG_REBOOTING = "a1bcab02030b4270969644c01193ec1b"      # daemon/basic/log.h MESSAGE_REBOOTING
NEXT_SUFFIX = "+upgradetest1"
TEST_TIMEOUT = 540          # hard limit for the whole test (meson's is 600)
# The fields of the state file that make the cycle: the upgrade must not change them.
KEPT_FIELDS = ("version", "phase", "lease", "cordoned", "node_was_unschedulable", "drained", "boot_id",
               "reason", "pending_since", "reboot_attempts", "failed_cycles")

UPGRADE_CONF = """# The upgrade test: this node's name, short lock timings, a drain timeout far longer than the
# upgrade, so the held drain is still going on when the new daemon takes over.
[Node]
Name={name}

[Lock]
TTLSec=30s
RecheckSec=3s

[Drain]
TimeoutSec=10min

[Reboot]
TimeoutSec=60s

[Daemon]
LogLevel=debug
"""


def deb_version(deb):
    return subprocess.run(["dpkg-deb", "-f", deb, "Version"], capture_output=True, text=True,
                          check=True).stdout.strip()


def installed(c):
    """(version, status) of the package nodereboot in the container, per dpkg."""
    text = c.out("dpkg-query -W -f='${Version}|${Status}' nodereboot") or ""
    version, _, status = text.partition("|")
    return version or None, status or None


def apt(c, args, log, timeout=240):
    """apt-get inside the running container (nsenter), as on a node; its output goes to log."""
    started = time.monotonic()
    r = c.sh(f"DEBIAN_FRONTEND=noninteractive apt-get -y -q -o Dpkg::Use-Pty=0 {args} </dev/null", timeout=timeout)
    with open(log, "w") as f:
        f.write((r.stdout + r.stderr) if r is not None else "(container down)")
    if r is None or r.returncode != 0:
        print((r.stdout[-3000:] + r.stderr[-3000:]) if r is not None else "")
        raise AssertionError(f"apt-get {args} failed" + (f" with {r.returncode}" if r is not None else ""))
    return time.monotonic() - started


def own_evictions(api, status=None, since=0):
    return [e for e in api.request_log()
            if e.get("method") == "POST" and (e.get("path") or "").endswith("/eviction")
            and e.get("user") == "system:node:" + NODE and e.get("time", 0) >= since
            and (status is None or e.get("status") == status)]


def lease_writes(api, since, until, status=None):
    """Writes to the Lease (PUT, PATCH, DELETE) logged by the server between since and until."""
    return [e for e in api.request_log()
            if e.get("resource") == "leases" and e.get("name") == SLOT and e.get("method") in ("PUT", "PATCH", "DELETE")
            and since <= e.get("time", 0) <= until and (status is None or e.get("status") == status)]


class LeaseWatch(threading.Thread):
    """Samples the Lease's holder and the Node's spec.unschedulable from outside, every 0.25 s."""

    def __init__(self, api):
        super().__init__(name="lease-watch", daemon=True)
        self.api = api
        self.samples = []       # (time.time(), holder or None, unschedulable)
        self.errors = 0
        self.stop_event = threading.Event()

    def run(self):
        while not self.stop_event.is_set():
            try:
                holder = self.api.lease_holders().get(SLOT)
                unschedulable = bool(self.api.node(NODE)["spec"].get("unschedulable"))
                self.samples.append((time.time(), holder, unschedulable))
            except Exception:
                self.errors += 1
            self.stop_event.wait(0.25)

    def between(self, start, end):
        return [s for s in self.samples if start <= s[0] <= end]

    def stop(self):
        self.stop_event.set()
        self.join(10)


def run(workdir, checks):
    changelog = os.path.join(SOURCE_ROOT, "packaging", "debian", "changelog")
    version_n = subprocess.run(["dpkg-parsechangelog", "-l", changelog, "-S", "Version"], capture_output=True,
                               text=True, check=True).stdout.strip()
    version_next = version_n + NEXT_SUFFIX
    deb_n = build_deb(workdir)
    # N+1 is needed only at the upgrade: build it while the container boots and starts the cycle.
    next_result = {}

    def build_next():
        try:
            next_result["deb"] = build_deb(workdir, version_next, env_var="NODEREBOOT_DEB_NEXT")
        except BaseException as e:      # reported when the upgrade needs it
            next_result["error"] = e
    next_builder = threading.Thread(target=build_next, name="build-next", daemon=True)
    next_builder.start()

    started = time.monotonic()
    tarball = rootfs.ensure_tarball()
    say(f"root file system tarball {os.path.basename(tarball)} ready in {time.monotonic() - started:.1f} s")

    api = ApiServer(workdir, seed_cluster([NODE], replicas_per_node=2, pdb_min_available=2))
    c = None
    watch = LeaseWatch(api)
    timings = {}
    try:
        say(f"test API server at {api.url}")
        c = Container(NODE, workdir, api)
        version_n = deb_version(deb_n)
        prepare(c, tarball, deb_n, api, checks, UPGRADE_CONF)
        c.boot()
        props = wait_booted(c, 1)
        say(f"{NODE}: booted ({c.boot_ids()[0]}), nodereboot {props['ActiveState']}: {props['StatusText']!r}")
        checks.check(installed(c) == (version_n, "install ok installed"), f"{NODE}: version N ({version_n}) installed",
                     str(installed(c)))
        checks.check(props["StatusText"].startswith("idle"), f"{NODE}: STATUS= says idle after the boot",
                     props["StatusText"])

        # -- start a cycle; the PodDisruptionBudget holds the drain --
        pdb = api.get(PDB_PATH)
        say(f"PodDisruptionBudget web-pdb: spec {pdb['spec']}, status {pdb.get('status')}")
        watch.start()
        cycle_started = time.time()
        c.sh("printf 'libc6\\n' >/run/reboot-required.pkgs && echo '*** System restart required ***' "
             ">/run/reboot-required", check=True)
        say(f"{NODE}: created /run/reboot-required")
        wait_for(lambda: (c.state() or {}).get("phase") == "draining" and (c.state() or {}).get("cordoned"), 60,
                 f"{NODE}: state draining and cordoned (state {c.state()})")
        wait_for(lambda: own_evictions(api, 429), 60, "the server answering the daemon's evictions with 429")
        timings["sentinel_to_held"] = time.time() - cycle_started
        # A second 429 of the same daemon: it is retrying, not stuck.
        wait_for(lambda: len(own_evictions(api, 429)) >= 3, 30, "the daemon retrying its evictions")
        before = c.state()
        old = c.unit_props("MainPID", "ExecMainStartTimestamp", "InvocationID", "StatusText")
        holders = api.lease_holders()
        say(f"{NODE}: held: {len(own_evictions(api, 429))} evictions answered 429; STATUS= {old['StatusText']!r}; "
            f"main PID {old['MainPID']}; lease {holders}; state {json.dumps(before)}")
        checks.check(before.get("lease") == SLOT and holders.get(SLOT) == NODE,
                     f"{NODE}: holds {SLOT} while the drain is held", f"state lease {before.get('lease')}, {holders}")
        checks.check(api.node(NODE)["spec"].get("unschedulable") is True, f"{NODE}: the Node is cordoned")
        checks.check("PodDisruptionBudget" in old["StatusText"],
                     f"{NODE}: STATUS= says the drain is blocked by a PodDisruptionBudget", old["StatusText"])

        # -- the upgrade, mid-cycle --
        next_builder.join(300)
        if "error" in next_result:
            raise next_result["error"]
        if "deb" not in next_result:
            raise AssertionError("building version N+1 did not finish")
        deb_next = next_result["deb"]
        version_next = deb_version(deb_next)
        newer = subprocess.run(["dpkg", "--compare-versions", version_next, "gt", version_n]).returncode == 0
        checks.check(newer, f"N+1 ({version_next}) is newer than N ({version_n})")
        shutil.copy(deb_next, c.path("/var/tmp/" + os.path.basename(deb_next)))
        upgrade_started = time.time()
        say(f"{NODE}: apt-get install /var/tmp/{os.path.basename(deb_next)} (upgrade {version_n} -> {version_next})")
        timings["upgrade"] = apt(c, "install /var/tmp/" + os.path.basename(deb_next),
                                 os.path.join(c.dir, "apt-upgrade.log"))
        upgrade_ended = time.time()
        say(f"{NODE}: the upgrade took {timings['upgrade']:.1f} s")
        checks.check(installed(c) == (version_next, "install ok installed"),
                     f"{NODE}: version N+1 ({version_next}) installed", str(installed(c)))

        new = wait_for(lambda: (lambda p: p if p and p.get("ActiveState") == "active" and
                                p.get("MainPID") not in (None, "0", old["MainPID"]) else None)(
            c.unit_props("MainPID", "ActiveState", "ExecMainStartTimestamp", "InvocationID", "NRestarts",
                         "StatusText")), 30, f"{NODE}: nodereboot.service active with a new main PID")
        say(f"{NODE}: after the upgrade: {new}")
        checks.check(new["InvocationID"] != old["InvocationID"] and new["NRestarts"] == "0",
                     f"{NODE}: the upgrade restarted the daemon (main PID {old['MainPID']} -> {new['MainPID']}, a new "
                     "invocation, no failure restarts)", str(new))
        journal = c.journal(f"-u nodereboot.service _PID={new['MainPID']}")
        resumed = [e.get("MESSAGE", "") for e in journal if e.get("MESSAGE", "").startswith("Resuming in state")]
        say(f"{NODE}: the new daemon: {resumed}")
        checks.check(any(m.startswith("Resuming in state draining (") and "sentinel present" in m for m in resumed),
                     f"{NODE}: the new daemon logged \"Resuming in state draining (..., sentinel present)\"",
                     str(resumed))
        # The old daemon stopped by itself within TimeoutStopSec= (no SIGKILL), as the unit asks.
        old_journal = c.journal(f"-u nodereboot.service _PID={old['MainPID']}")
        killed = [e.get("MESSAGE") for e in c.journal("_PID=1 UNIT=nodereboot.service")
                  if "Killing" in e.get("MESSAGE", "") or "timed out" in e.get("MESSAGE", "")]
        checks.check(old_journal and not killed, f"{NODE}: the old daemon stopped in time (no SIGKILL)", str(killed))
        after = c.state()
        changed = {k: (before.get(k), after.get(k)) for k in KEPT_FIELDS if before.get(k) != after.get(k)}
        checks.check(not changed and after.get("phase") == "draining" and after.get("cordoned") is True and
                     after.get("node_was_unschedulable") is False and after.get("lease") == SLOT,
                     f"{NODE}: the state file kept the cycle across the upgrade (draining, lease {SLOT}, cordoned, "
                     "node_was_unschedulable false, same version, reason, pending_since)",
                     f"changed {changed}; now {json.dumps(after)}")
        # The new daemon goes on draining: more 429s, and STATUS= names the budget again.
        wait_for(lambda: own_evictions(api, 429, since=upgrade_ended), 30,
                 "the new daemon's evictions (answered 429)")
        status = wait_for(lambda: (lambda t: t if t and "PodDisruptionBudget" in t else None)(
            c.out("systemctl show -p StatusText --value nodereboot.service")), 30,
            f"{NODE}: STATUS= of the new daemon naming the budget")
        checks.check(True, f"{NODE}: the new daemon goes on evicting (429 again) and says so: {status!r}")
        # Held is not enough: the new daemon must renew the lease (every third of TTLSec=30s), or it
        # expires and another node takes the slot while this one is cordoned.
        renewal = wait_for(lambda: lease_writes(api, upgrade_ended, time.time() + 1, status=200), 30,
                           "the new daemon renewing the lease")
        say(f"{NODE}: the new daemon renewed {SLOT} {renewal[0]['time'] - upgrade_ended:.1f} s after the upgrade")
        checks.check(True, f"{NODE}: the new daemon renews {SLOT}")

        # -- let the drain through: the cycle completes --
        api.api("DELETE", PDB_PATH, expect=[200, 202])
        pdb_deleted = time.time()
        say("deleted the PodDisruptionBudget")

        def done():
            if len(c.boot_ids()) < 2 or c.pid1() is None or c.phase() != "idle":
                return False
            if api.lease_holders().get(SLOT):
                return False
            return not api.node(NODE)["spec"].get("unschedulable")
        deadline = time.monotonic() + 180
        last = None
        while not done():
            if time.monotonic() > deadline:
                raise AssertionError("the cycle did not complete within 180 s of deleting the budget")
            if c.thread and not c.thread.is_alive():
                raise AssertionError(f"the container stopped: nspawn exits {c.exits}")
            report = f"boots {len(c.boot_ids())}, exits {c.exits}, phase {c.phase()}"
            if report != last:
                say(f"{NODE}: {report}")
                last = report
            time.sleep(0.5)
        timings["pdb_to_idle"] = time.time() - pdb_deleted
        say(f"{NODE}: rebooted and idle again {timings['pdb_to_idle']:.1f} s after the budget was deleted")
        time.sleep(4)       # no second reboot, no late change
        watch.stop()

        # -- assertions: the lease and the cordon across the upgrade --
        reboot_at = min([t for t, w in c.events if w.startswith("exit")] or [time.time()])
        held = watch.between(upgrade_started - 1, reboot_at)
        not_ours = [s for s in held if s[1] != NODE]
        say(f"lease samples from 1 s before the upgrade to the reboot: {len(held)}, "
            f"{len(not_ours)} not held by {NODE}; {watch.errors} sampling errors")
        checks.check(len(held) >= 20 and not not_ours,
                     f"{NODE}: {SLOT} held by {NODE} in every sample from before the upgrade to the reboot",
                     f"{len(held)} samples, not ours: {not_ours[:5]}")
        uncordoned = [s for s in watch.between(cycle_started, reboot_at) if s[0] > upgrade_started - 1 and not s[2]]
        checks.check(not uncordoned, f"{NODE}: the Node stayed cordoned across the upgrade", str(uncordoned[:5]))
        writes = lease_writes(api, cycle_started, pdb_deleted)
        bad = [(e["method"], e.get("status"), ((e.get("body") or {}).get("spec") or {}).get("holderIdentity"))
               for e in writes if e["method"] == "DELETE" or
               ((e.get("body") or {}).get("spec") or {}).get("holderIdentity") != NODE]
        renewals_after = [e for e in writes if e.get("time", 0) >= upgrade_ended and e.get("status") == 200]
        say(f"lease writes from the sentinel to the budget's deletion: {len(writes)} "
            f"({len(renewals_after)} after the upgrade)")
        checks.check(writes and not bad, f"{NODE}: every lease write until the budget went away kept holderIdentity "
                     f"{NODE} (no release during the upgrade)", str(bad))
        # The server records every change of the Node; keep those that flip spec.unschedulable.
        flips = []
        for e in api.timeline():
            if e["node"] == NODE and e["time"] >= cycle_started and \
                    bool(e["unschedulable"]) != (flips[-1]["unschedulable"] if flips else False):
                flips.append(e)
        checks.check([bool(e["unschedulable"]) for e in flips] == [True, False] and flips[1]["time"] > reboot_at,
                     f"{NODE}: cordoned once, uncordoned once, after the reboot", str(flips))

        # -- assertions: the cycle completed, once --
        ids = c.boot_ids()
        checks.check(len(ids) == 2 and len(set(ids)) == 2 and c.exits == [EXIT_REBOOT] and c.starts == 2,
                     f"{NODE}: rebooted exactly once (two boot IDs, nspawn exited {EXIT_REBOOT} once)",
                     f"boot IDs {ids}, exits {c.exits}, starts {c.starts}")
        props = c.unit_props("ActiveState", "StatusText", "NRestarts") or {}
        checks.check(props.get("ActiveState") == "active" and (props.get("StatusText") or "").startswith("idle"),
                     f"{NODE}: the service came back by itself after the boot and says idle", str(props))
        node = api.node(NODE)
        ann = node["metadata"].get("annotations") or {}
        checks.check(not node["spec"].get("unschedulable") and "nodereboot.io/reboot-in-progress" not in ann
                     and "nodereboot.io/cordoned" not in ann and "nodereboot.io/last-reboot" in ann,
                     f"{NODE}: Node uncordoned, marks removed, last-reboot recorded", json.dumps(ann))
        checks.check(api.lease_holders().get(SLOT) is None, f"{NODE}: {SLOT} released", str(api.lease_holders()))
        checks.check(c.phase() == "idle", f"{NODE}: state file says idle", str(c.state()))
        reboots = [e for e in c.journal("-b -1 -u nodereboot.service") if e.get("MESSAGE_ID") == MSG_REBOOTING]
        checks.check(len(reboots) == 1 and reboots[0].get("_PID") == new["MainPID"],
                     f"{NODE}: one reboot event in boot -1, from the upgraded daemon (PID {new['MainPID']})",
                     str([(e.get("_PID"), e.get("MESSAGE")) for e in reboots]))
        checks.check(installed(c) == (version_next, "install ok installed"),
                     f"{NODE}: dpkg -s nodereboot says {version_next} after the reboot", str(installed(c)))

        # -- remove keeps the state folder, purge deletes it --
        state_dir = c.path("/var/lib/nodereboot")

        def snapshot():
            if not os.path.isdir(state_dir):
                return None
            out = {}
            for name in sorted(os.listdir(state_dir)):
                with open(os.path.join(state_dir, name), "rb") as f:
                    out[name] = f.read()
            return out
        kept = snapshot()
        say(f"{NODE}: /var/lib/nodereboot holds {sorted(kept or {})}")
        timings["remove"] = apt(c, "remove nodereboot", os.path.join(c.dir, "apt-remove.log"))
        checks.check(installed(c)[1] == "deinstall ok config-files" and snapshot() == kept and kept is not None,
                     f"{NODE}: apt-get remove keeps /var/lib/nodereboot as it was",
                     f"dpkg {installed(c)}, folder {sorted(snapshot() or {}) if snapshot() is not None else 'gone'}")
        active = c.out("systemctl is-active nodereboot.service; true")
        checks.check(active in ("inactive", "unknown"), f"{NODE}: apt-get remove stopped the service", active)
        timings["purge"] = apt(c, "purge nodereboot", os.path.join(c.dir, "apt-purge.log"))
        checks.check(installed(c) == (None, None) and not os.path.lexists(state_dir),
                     f"{NODE}: apt-get purge deletes /var/lib/nodereboot", f"dpkg {installed(c)}")

        say("timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
        say(f"{NODE}: events " + ", ".join(f"{t - cycle_started:+.2f}s {w}" for t, w in c.events))
    except BaseException:
        traceback.print_exc()
        checks.check(False, "the scenario ran to the end")
        dump([c] if c else [], api)
        raise
    finally:
        watch.stop_event.set()
        if c is not None:
            c.stop()
            say(f"{NODE}: stopped (nspawn exits {c.exits})")
        api.stop()


if __name__ == "__main__":
    sys.exit(nspawn.main(run, "upgrade", TEST_TIMEOUT))
