#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Two nodes of a cluster as two real systemd containers (systemd-nspawn), really rebooting.

The user story: "nodereboot installed from the .deb on two nodes of a cluster reboots both after
an update, one at a time, under the real systemd and logind, and puts them back into service".

  - a Debian bookworm root file system (tests/system/rootfs.py, cached as tar.zst) per node, the
    .deb installed inside with apt-get, a kubeconfig and a drop-in configuration;
  - the test API server on the host's 127.0.0.1, seeded with node-1 and node-2, workload pods
    (ReplicaSet) and a DaemonSet pod on each; the containers share the host's network;
  - each container boots with systemd as PID 1 (systemd-nspawn --boot) in a loop that starts it
    again when it exits with 133 (a reboot); a unit inside appends each boot's ID to /shared/boots;
  - /run/reboot-required appears on both nodes at once; the test watches from outside (nsenter)
    and asserts: each node rebooted exactly once (two boot IDs, one exit 133), the service came
    back by itself and uncordoned its Node, released the lease and went idle; never both Nodes
    cordoned at once; STATUS= showed "pending: waiting for the lock" on the waiting node and
    "idle" at the end; the journal of the boot before the reboot has the reboot event
    (MESSAGE_ID) with NODEREBOOT_NODE= and NODEREBOOT_STATE=; the reboot was asked for by the
    unprivileged user nodereboot with no capabilities at all (empty bounding set), allowed by
    logind through polkit and the package's rule (another user, even with CAP_SYS_BOOT, is not);
    a Node whose kubelet is down across the reboot (its stale Ready=True left in place, as in a
    real cluster) is uncordoned only after the kubelet of the new boot has posted.

Needs root, systemd-container, debootstrap (first run) and zstd; exits 77 (skipped) when not root.
Environment: SOURCE_ROOT, NODEREBOOT_DEB (use this .deb instead of building one),
NODEREBOOT_TEST_CACHE (rootfs cache, default /var/cache/nodereboot-tests), NODEREBOOT_KEEP=1
(keep the work folder on failure), NODEREBOOT_TEST_UNIT_DROPIN=FILE (a diagnostic aid: FILE is added
as a drop-in for nodereboot.service in both containers, to try a unit change without rebuilding
the package; the checks still assert the shipped privilege model).
"""

import json
import os
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
from bench import ApiServer, max_cordoned_at_once, seed_cluster  # noqa: E402
from nspawn import (EXIT_REBOOT, SANDBOX_BOOT_ID_PROBE, Container, StatusPoller, build_deb, dump,  # noqa: E402
                    install_kubeconfig, pod_names, prepare, proc_status, say, wait_booted, wait_for)

NODES = ["node-1", "node-2"]
MSG_REBOOTING = "a1bcab02030b4270969644c01193ec1b"      # daemon/basic/log.h MESSAGE_REBOOTING
MSG_RECOVERED = "4b7cbd21b94445cca9b9344bf3e89098"      # MESSAGE_RECOVERED
MSG_LOCK_RELEASED = "4e9447c6c09346a1a460daa2f40a15e9"  # MESSAGE_LOCK_RELEASED
TEST_TIMEOUT = 840          # hard limit for the whole test (meson's is 900)
ROLL_TIMEOUT = 240          # sentinel -> both nodes idle again


# Where the first node's provisioning puts its kubeconfig: not the default path.
ELSEWHERE_KUBECONFIG = "/etc/kubernetes/nodereboot.kubeconfig"

TEST_CONF = """# The nspawn test: this node's name, short lock timings, a quick reboot timeout.
[Node]
Name={name}

[Lock]
TTLSec=30s
# Short, so the safety-net re-check fires (more than once) while the second node waits.
RecheckSec=3s

[Drain]
TimeoutSec=60s

[Reboot]
TimeoutSec=60s

[Daemon]
LogLevel=debug
"""


def run(workdir, checks):
    deb = build_deb(workdir)
    started = time.monotonic()
    tarball = rootfs.ensure_tarball()
    say(f"root file system tarball {os.path.basename(tarball)} ready in {time.monotonic() - started:.1f} s")

    api = ApiServer(workdir, seed_cluster(NODES, replicas_per_node=2))
    containers = []
    pollers = []
    try:
        say(f"test API server at {api.url}")
        containers = [Container(n, workdir, api) for n in NODES]
        # The first node boots as a freshly baked image, before it has a kubeconfig, and its
        # provisioning puts the kubeconfig at a path of its own ([Kubernetes] Kubeconfig=): the
        # daemon must start, say it waits (no failure, no restart loop), and join by itself once
        # the file is there.
        for c in containers:
            baked_conf = TEST_CONF + "\n[Kubernetes]\nKubeconfig=" + ELSEWHERE_KUBECONFIG + "\n"
            prepare(c, tarball, deb, api, checks, baked_conf if c is containers[0] else TEST_CONF,
                    with_kubeconfig=c is not containers[0])

        # -- first boot --
        for c in containers:
            c.boot()
        baked = containers[0]
        wait_for(lambda: len(baked.boot_ids()) >= 1 and baked.pid1() is not None, 90, f"{baked.name}: first boot")
        wait_for(lambda: (lambda r: r is not None and r.stdout.strip() in ("running", "degraded"))(
                 baked.sh("systemctl is-system-running --wait", timeout=60)), 90, f"{baked.name}: boot to finish")
        unit = wait_for(lambda: (lambda u: u if u and "waiting for the kubeconfig" in u.get("StatusText", "") else None)(
                        baked.unit_props("ActiveState", "NRestarts", "Result", "StatusText")), 60,
                        f"{baked.name}: STATUS= to say it waits for the kubeconfig")
        say(f"{baked.name}: without a kubeconfig: {unit}")
        checks.check(unit.get("ActiveState") == "active" and unit.get("NRestarts") == "0" and
                     ELSEWHERE_KUBECONFIG in unit.get("StatusText", ""),
                     f"{baked.name}: without a kubeconfig (Kubeconfig= elsewhere) the unit is up and waits for "
                     "it, not failed, skipped or restarting", str(unit))
        install_kubeconfig(baked, ELSEWHERE_KUBECONFIG)
        first_boot = {}
        for c in containers:
            props = wait_booted(c, 1)
            first_boot[c.name] = c.boot_ids()[0]
            say(f"{c.name}: booted ({first_boot[c.name]}), nodereboot {props['ActiveState']}/{props['SubState']}: "
                f"{props['StatusText']!r}")
            checks.check(props["StatusText"].startswith("idle"), f"{c.name}: STATUS= says idle after the first boot",
                         props["StatusText"])
            unit = c.unit_props("User", "Group", "AmbientCapabilities", "CapabilityBoundingSet", "NoNewPrivileges")
            say(f"{c.name}: {unit}")
            checks.check(unit.get("User") == "nodereboot" and unit.get("AmbientCapabilities") == "" and
                         unit.get("CapabilityBoundingSet") == "",
                         f"{c.name}: the unit runs as nodereboot with no ambient capabilities and an empty "
                         "bounding set", str(unit))
            st = proc_status(c, props["MainPID"])
            uids = st.get("Uid", "").split()
            caps = {k: int(st.get(k, "").strip() or "-1", 16) for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}
            say(f"{c.name}: noderebootd PID {props['MainPID']}: Uid {uids}, " +
                ", ".join(f"{k} {v:#x}" for k, v in caps.items()))
            checks.check(uids and all(u == str(c.user_id("nodereboot")) for u in uids) and
                         all(v == 0 for v in caps.values()),
                         f"{c.name}: the running daemon is unprivileged (uid nodereboot) with no capabilities "
                         "(CapEff, CapPrm, CapBnd, CapAmb all 0)", f"Uid {uids}, {caps}")
            container_boot = c.boot_ids()[0]
            sandboxed = c.out(SANDBOX_BOOT_ID_PROBE)
            say(f"{c.name}: NOTE: boot ID in the container {container_boot}; a service with the shipped "
                f"ProtectKernelTunables/ProtectControlGroups/ProtectProc reads {sandboxed} "
                f"({'the host kernel' + chr(39) + 's' if sandboxed != container_boot else 'the same'}); "
                "the test's drop-in 50-nspawn-boot-id.conf turns these three off")
            daemon_boot = c.out(f"cat /proc/{props['MainPID']}/root/proc/sys/kernel/random/boot_id")
            checks.check(daemon_boot == container_boot, f"{c.name}: the daemon sees the container's boot ID",
                         f"daemon {daemon_boot}, container {container_boot}")
            checks.check(os.path.exists(c.path("/usr/share/polkit-1/rules.d/nodereboot.rules")) and
                         os.path.exists(c.path("/usr/lib/polkit-1/polkitd")),
                         f"{c.name}: polkitd and the package's rule nodereboot.rules are installed")
            # What logind answers, without rebooting: CanReboot goes through the same authorisation as
            # RebootWithFlags (a capability the bus vouches for, or the UID, then polkit). The user
            # nodereboot with no capabilities, as the daemon runs, is allowed by the package's polkit
            # rule; another user is not, even with CAP_SYS_BOOT: polkit decides, not a capability
            # (dbus-daemon vouches for none), so the unit grants none.
            uid = c.user_id("nodereboot")
            for who, probe_uid, caps_arg, expect_yes in (
                    ("nodereboot", uid, "--inh-caps=-all --bounding-set=-all", True),
                    ("nobody", 65534, "--inh-caps=-all,+sys_boot --ambient-caps=+sys_boot --bounding-set=-all,+sys_boot",
                     False)):
                probe = c.sh(f"setpriv --reuid={probe_uid} --regid={probe_uid} --clear-groups {caps_arg} "
                             "sh -c 'grep CapEff /proc/self/status; busctl call org.freedesktop.login1 "
                             "/org/freedesktop/login1 org.freedesktop.login1.Manager CanReboot'")
                answer = (probe.stdout + probe.stderr).strip().replace("\n", "; ") if probe else "container down"
                with_caps = "no capabilities" if expect_yes else "CAP_SYS_BOOT"
                say(f"{c.name}: logind CanReboot for {who} (uid {probe_uid}) with {with_caps}: {answer}")
                said_yes = probe is not None and probe.returncode == 0 and 's "yes"' in probe.stdout
                if expect_yes:
                    checks.check(said_yes, f"{c.name}: logind lets uid {probe_uid} (nodereboot) with no "
                                 "capabilities reboot (CanReboot says yes: the polkit rule)", answer)
                else:
                    checks.check(probe is not None and not said_yes, f"{c.name}: logind does not let another "
                                 f"user (uid {probe_uid}) reboot, even with CAP_SYS_BOOT", answer)
        for c in containers:
            p = StatusPoller(c)
            p.start()
            pollers.append(p)

        workload = {c.name: {n for n in pod_names(api, c.name) if n.startswith("web-")} for c in containers}

        # -- the update: both nodes need a reboot at the same moment --
        barrier = threading.Barrier(len(containers))
        results = {}

        def touch(c):
            barrier.wait(10)
            results[c.name] = c.sh("printf 'linux-image-6.1.0-99-amd64\\nlibc6\\n' >/run/reboot-required.pkgs && "
                                   "echo '*** System restart required ***' >/run/reboot-required", check=False)
        threads = [threading.Thread(target=touch, args=(c,)) for c in containers]
        roll_started = time.time()
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        for c in containers:
            r = results.get(c.name)
            if r is None or r.returncode != 0:
                raise AssertionError(f"{c.name}: creating /run/reboot-required failed: {r and r.stderr}")
        say("created /run/reboot-required on both nodes")

        def done():
            for c in containers:
                if len(c.boot_ids()) < 2 or c.pid1() is None or c.phase() != "idle":
                    return False
            if any(api.lease_holders().values()):
                return False
            return all(not api.node(n)["spec"].get("unschedulable") for n in NODES)

        deadline = time.monotonic() + ROLL_TIMEOUT
        last_report = ""
        while not done():
            if time.monotonic() > deadline:
                raise AssertionError(f"the roll did not finish in {ROLL_TIMEOUT} s")
            if any(c.thread and not c.thread.is_alive() for c in containers):
                raise AssertionError("a container stopped: exits " +
                                     ", ".join(f"{c.name} {c.exits}" for c in containers))
            for c in containers:
                err = (c.state() or {}).get("last_error") or ""
                if "reboot request failed" in err or "did not restart" in err:
                    checks.check(False, f"{c.name}: logind carried out the daemon's reboot request", err)
                    raise AssertionError(f"{c.name}: the reboot request failed: {err}")
            report = ", ".join(f"{c.name}: boots {len(c.boot_ids())} phase {c.phase()}" for c in containers)
            if report != last_report:
                say(report)
                last_report = report
            time.sleep(0.5)
        roll_seconds = time.time() - roll_started
        say(f"both nodes rebooted and idle again, {roll_seconds:.1f} s after the sentinel")

        # No second reboot and no late change: watch a few seconds more.
        time.sleep(5)
        for p in pollers:
            p.stop()

        # -- assertions --
        for c in containers:
            ids = c.boot_ids()
            checks.check(len(ids) == 2 and len(set(ids)) == 2 and c.exits == [EXIT_REBOOT] and c.starts == 2,
                         f"{c.name}: rebooted exactly once (two boot IDs, nspawn exited {EXIT_REBOOT} once)",
                         f"boot IDs {ids}, nspawn exits {c.exits}, starts {c.starts}")
            props = c.unit_props("ActiveState", "SubState", "StatusText", "NRestarts", "ExecMainStartTimestamp",
                                 "InvocationID") or {}
            say(f"{c.name}: after the reboot: {props}")
            checks.check(props.get("ActiveState") == "active" and props.get("NRestarts") == "0",
                         f"{c.name}: the service came back by itself after the boot (active, no restarts)", str(props))
            checks.check((props.get("StatusText") or "").startswith("idle"),
                         f"{c.name}: STATUS= says idle at the end", props.get("StatusText"))
            checks.check(c.phase() == "idle", f"{c.name}: state file says idle", str(c.state()))
            node = api.node(c.name)
            ann = node["metadata"].get("annotations") or {}
            checks.check(not node["spec"].get("unschedulable") and "nodereboot.io/reboot-in-progress" not in ann
                         and "nodereboot.io/cordoned" not in ann and "nodereboot.io/last-reboot" in ann,
                         f"{c.name}: Node uncordoned, marks removed, last-reboot recorded",
                         json.dumps({"unschedulable": node["spec"].get("unschedulable"), "annotations": ann}))
            names = pod_names(api, c.name)
            evicted = {e["path"].split("/")[-2] for e in api.request_log()
                       if e.get("method") == "POST" and e["path"].endswith("/eviction")
                       and e.get("user") == "system:node:" + c.name and e.get("status") == 201}
            # The first node's replacement pods may land on the second one before its turn: it evicts
            # those too. Every pod it evicted is gone from the node.
            checks.check(workload[c.name] <= evicted and not (names & evicted),
                         f"{c.name}: its workload pods were evicted and are gone",
                         f"before {sorted(workload[c.name])}, evicted {sorted(evicted)}, now {sorted(names)}")
            checks.check({f"node-exporter-{c.name}", f"kube-proxy-{c.name}"} <= names,
                         f"{c.name}: its DaemonSet and mirror pods were left alone", str(sorted(names)))
        holders = api.lease_holders()
        checks.check(holders and not any(holders.values()), "the lease exists and nobody holds it", str(holders))
        # Waiting is watching: a waiting node lists the Leases when the watch says a slot changed and
        # at each RecheckSec= (3 s here), not in a loop.
        requests = api.request_log()
        for c in containers:
            lists = [e for e in requests if e.get("user") == "system:node:" + c.name and e.get("verb") == "list"
                     and e.get("resource") == "leases" and e.get("time", 0) >= roll_started]
            limit = 10 + 2 * int(roll_seconds / 3)
            checks.check(len(lists) <= limit, f"{c.name}: listed the Leases {len(lists)} times during the "
                         f"{roll_seconds:.0f} s roll (at most {limit}: watch events plus RecheckSec=3s)",
                         f"{len(lists)} LIST requests")

        timeline = api.timeline()
        worst = max_cordoned_at_once(timeline, set(NODES))
        checks.check(worst == 1, "never both Nodes cordoned at once (and each was cordoned)",
                     f"max cordoned at once {worst}; timeline {timeline}")
        for c in containers:
            changes = [e for e in timeline if e["node"] == c.name]
            cordons = [e["time"] for e in changes if e["unschedulable"]]
            uncordons = [e["time"] for e in changes if not e["unschedulable"]]
            checks.check(len(cordons) == 1 and len(uncordons) >= 1 and uncordons[-1] > cordons[0],
                         f"{c.name}: cordoned once, uncordoned after", str(changes))
            ready = c.event_time("kubelet started")
            notready = c.event_time("kubelet stopped")
            if notready and ready and uncordons:
                checks.check(notready[0] < ready[0] <= uncordons[-1] + 0.05,
                             f"{c.name}: kubelet gone across the reboot, uncordoned only after the kubelet "
                             "of the new boot posted",
                             f"kubelet stopped {notready[0] - roll_started:.2f}, started "
                             f"{ready[0] - roll_started:.2f}, uncordon {uncordons[-1] - roll_started:.2f} s "
                             "after the sentinel")
            else:
                checks.check(False, f"{c.name}: kubelet stop/start and uncordon all observed",
                             f"kubelet stopped {notready}, started {ready}, uncordons {uncordons}")

        # STATUS= texts seen from outside
        def first_cordon(c):
            return min([e["time"] for e in timeline if e["node"] == c.name and e["unschedulable"]] or [0])
        order = sorted(containers, key=first_cordon)
        first, second = order[0], order[1]
        say(f"reboot order: {first.name}, then {second.name}")
        for c, p in zip(containers, pollers):
            say(f"{c.name}: STATUS= values seen by polling systemctl show -p StatusText:")
            for t, boot, text in p.values:
                print(f"      {t:6.2f}s boot {boot}: {text}")
        polled = {c.name: p.texts() for c, p in zip(containers, pollers)}
        checks.check(any(t.startswith("pending: waiting for the lock") for t in polled[second.name]),
                     f"{second.name} (the node that waited): STATUS= showed 'pending: waiting for the lock…'",
                     str(polled[second.name]))
        for c in containers:
            texts = polled[c.name]
            checks.check(texts and texts[-1].startswith("idle"), f"{c.name}: the last STATUS= seen is idle",
                         str(texts[-1:]))
            checks.check(any(t.startswith(("draining", "rebooting", "locked")) for t in texts),
                         f"{c.name}: STATUS= showed the cycle (locked/draining/rebooting) before the reboot",
                         str(texts))
        statuses = first.out("systemctl status --no-pager -n 0 nodereboot.service") or ""
        say(f"{first.name}: systemctl status nodereboot:\n" + statuses)
        checks.check("Status: \"idle" in statuses, f"{first.name}: systemctl status shows the STATUS= line")

        # The journal: the boot before the reboot has the reboot event; the current one the recovery.
        for c in containers:
            boots = c.out("journalctl --no-pager --list-boots") or ""
            say(f"{c.name}: journalctl --list-boots:\n{boots}")
            listed = [line for line in boots.splitlines() if line.split()[:1] and line.split()[0].lstrip("-").isdigit()]
            checks.check(len(listed) == 2, f"{c.name}: the persistent journal has two boots", boots)
            prev = c.journal("-b -1 -u nodereboot.service")
            cur = c.journal("-b 0 -u nodereboot.service")
            uid = str(c.user_id("nodereboot"))
            reboot_events = [e for e in prev if e.get("MESSAGE_ID") == MSG_REBOOTING]
            for e in reboot_events:
                say(f"{c.name}: boot -1: {e.get('MESSAGE')!r} NODEREBOOT_NODE={e.get('NODEREBOOT_NODE')} "
                    f"NODEREBOOT_STATE={e.get('NODEREBOOT_STATE')} _UID={e.get('_UID')} "
                    f"_CAP_EFFECTIVE={e.get('_CAP_EFFECTIVE')} _BOOT_ID={e.get('_BOOT_ID')}")
            checks.check(len(reboot_events) == 1, f"{c.name}: one reboot event (MESSAGE_ID={MSG_REBOOTING}) in boot -1",
                         f"{len(reboot_events)} of {len(prev)} entries")
            # Every entry names the node; every entry from the moment the daemon knows its state (the
            # first one with NODEREBOOT_STATE=, just after reading the state file) names the state.
            own = [e for e in prev if e.get("_COMM") == "noderebootd"]
            first_state = next((i for i, e in enumerate(own) if e.get("NODEREBOOT_STATE")), len(own))
            lacking = [e for i, e in enumerate(own) if e.get("NODEREBOOT_NODE") != c.name or
                       (i >= first_state and not e.get("NODEREBOOT_STATE"))]
            if first_state:
                say(f"{c.name}: NOTE: {first_state} daemon entries before the state was loaded have no "
                    "NODEREBOOT_STATE=: " + "; ".join(repr(e.get("MESSAGE")) for e in own[:first_state][:3]))
            checks.check(own and not lacking,
                         f"{c.name}: daemon entries in boot -1 carry NODEREBOOT_NODE={c.name} and (once the "
                         "state is loaded) NODEREBOOT_STATE=",
                         f"{len(lacking)} of {len(own)} lack them, e.g. " +
                         "; ".join(json.dumps({k: v for k, v in e.items() if not k.startswith("__")})[:400]
                                   for e in lacking[:3]))
            checks.check(reboot_events and reboot_events[0].get("_BOOT_ID") == c.boot_ids()[0].replace("-", ""),
                         f"{c.name}: the reboot event belongs to the first boot ID recorded in /shared/boots")
            # The proof that the capability is not needed: the reboot that happened was asked for by a
            # process without any.
            checks.check(reboot_events and reboot_events[0].get("_UID") == uid and
                         reboot_events[0].get("_CAP_EFFECTIVE") is not None and
                         int(reboot_events[0]["_CAP_EFFECTIVE"], 16) == 0,
                         f"{c.name}: the reboot was asked for by uid {uid} (nodereboot) with no capabilities "
                         "(journald's trusted _UID/_CAP_EFFECTIVE=0)",
                         str({k: reboot_events[0].get(k) for k in ("_UID", "_CAP_EFFECTIVE")} if reboot_events else None))
            states_cur = [e.get("NODEREBOOT_STATE") for e in cur if e.get("NODEREBOOT_STATE")]
            ids_cur = {e.get("MESSAGE_ID") for e in cur}
            checks.check(MSG_RECOVERED in ids_cur and MSG_LOCK_RELEASED in ids_cur and "recovering" in states_cur,
                         f"{c.name}: the new boot's journal has recovering, the recovery and the lock release events",
                         f"states {sorted(set(states_cur))}")
            # logind's side of the reboot, and who asked
            logind = c.journal("-b -1 -u systemd-logind.service")
            said = [e.get("MESSAGE", "") for e in logind]
            say(f"{c.name}: systemd-logind in boot -1: {said}")
            checks.check(any("reboot" in m.lower() for m in said),
                         f"{c.name}: logind itself logged the reboot in boot -1")

        # noderebootctl request and cancel with the real unit: root writes the request, the daemon
        # (user nodereboot, no capabilities) reads it. A closed window keeps the node pending.
        c = first
        hour = (time.gmtime().tm_hour + 6) % 24
        c.write("/etc/nodereboot/nodereboot.conf.d/zz-closed-window.conf",
                f"[Window]\nStartTime={hour:02d}:00\nEndTime={hour:02d}:01\nTimeZone=UTC\n")
        c.sh("systemctl restart nodereboot.service", check=True)
        r = c.sh("noderebootctl request --reason system-test", check=False)
        say(f"{c.name}: noderebootctl request: {(r.stdout + r.stderr).strip() if r else 'container down'}")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not (c.phase() == "pending" and
                                                   (c.state() or {}).get("reason") == "requested: system-test"):
            time.sleep(0.2)
        checks.check(c.phase() == "pending" and (c.state() or {}).get("reason") == "requested: system-test",
                     f"{c.name}: the daemon (user nodereboot) read the request root wrote: pending, reason "
                     "'requested: system-test'", str(c.state()))
        r = c.sh("noderebootctl cancel", check=False)
        say(f"{c.name}: noderebootctl cancel: {(r.stdout + r.stderr).strip() if r else 'container down'}")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and c.phase() != "idle":
            time.sleep(0.2)
        checks.check(r is not None and r.returncode == 0 and c.phase() == "idle" and
                     not os.path.exists(c.path("/var/lib/nodereboot/request")),
                     f"{c.name}: noderebootctl cancel took the node back to idle", str(c.state()))
        c.sh("rm -f /etc/nodereboot/nodereboot.conf.d/zz-closed-window.conf && systemctl restart nodereboot.service")

        say(f"roll: {roll_seconds:.1f} s from /run/reboot-required on both nodes to both idle again")
        for c in containers:
            say(f"{c.name}: events " + ", ".join(f"{t - roll_started:+.2f}s {w}" for t, w in c.events))
    except BaseException:
        traceback.print_exc()
        checks.check(False, "the scenario ran to the end")
        dump(containers, api)
        raise
    finally:
        for p in pollers:
            p.stop_event.set()
        stop_threads = [threading.Thread(target=c.stop) for c in containers]
        for t in stop_threads:
            t.start()
        for t in stop_threads:
            t.join(40)
        for c in containers:
            say(f"{c.name}: stopped (nspawn exits {c.exits})")
        api.stop()


if __name__ == "__main__":
    sys.exit(nspawn.main(run, "nspawn", TEST_TIMEOUT))
