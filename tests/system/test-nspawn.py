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
    unprivileged user nodereboot whose only capability is CAP_SYS_BOOT, allowed by logind through
    polkit and the package's rule (another user with CAP_SYS_BOOT is not allowed);
    a Node NotReady while its container is down is uncordoned only after it is Ready again.

Needs root, systemd-container, debootstrap (first run) and zstd; exits 77 (skipped) when not root.
Environment: SOURCE_ROOT, NODEREBOOT_DEB (use this .deb instead of building one),
NODEREBOOT_TEST_CACHE (rootfs cache, default /var/cache/nodereboot-tests), NODEREBOOT_KEEP=1
(keep the work folder on failure), NODEREBOOT_TEST_UNIT_DROPIN=FILE (a diagnostic aid: FILE is added
as a drop-in for nodereboot.service in both containers, to try a unit change without rebuilding
the package; the checks still assert the shipped privilege model).
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.environ.get("SOURCE_ROOT") or os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(SOURCE_ROOT, "tests", "integration"))
import rootfs  # noqa: E402
from bench import ApiServer, max_cordoned_at_once, seed_cluster  # noqa: E402

NODES = ["node-1", "node-2"]
MSG_REBOOTING = "a1bcab02030b4270969644c01193ec1b"      # daemon/log.h MESSAGE_REBOOTING
MSG_RECOVERED = "4b7cbd21b94445cca9b9344bf3e89098"      # MESSAGE_RECOVERED
MSG_LOCK_RELEASED = "4e9447c6c09346a1a460daa2f40a15e9"  # MESSAGE_LOCK_RELEASED
CAP_SYS_BOOT = 22
EXIT_REBOOT = 133           # systemd-nspawn's exit status when the container rebooted
MAX_STARTS = 4              # a container rebooting more often than this is not restarted again
TEST_TIMEOUT = 840          # hard limit for the whole test (meson's is 900)
ROLL_TIMEOUT = 240          # sentinel -> both nodes idle again
# A clean environment for commands run inside the containers.
INSIDE_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
              "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0", "TERM": "dumb"}

T0 = time.monotonic()


def say(msg):
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


def wait_for(predicate, timeout, what, interval=0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class Checks:
    """Assertions that are all evaluated and reported, not stopping at the first failure."""

    def __init__(self):
        self.results = []

    def check(self, ok, what, detail=""):
        self.results.append((bool(ok), what, detail))
        say(("PASS " if ok else "FAIL ") + what + (f": {detail}" if detail and not ok else ""))
        return bool(ok)

    def failed(self):
        return [r for r in self.results if not r[0]]


class Cgroup:
    """A cgroup of its own for each nspawn, in every hierarchy of this machine (PID 1 here is not
    systemd, so nobody else makes one): --keep-unit tells nspawn to use the cgroup it runs in, and
    two containers sharing one would manage the same cgroup tree."""

    def __init__(self, name):
        self.paths = []
        for hier in self._hierarchies():
            path = os.path.join(hier, f"nodereboot-test-{os.getpid()}", name)
            try:
                os.makedirs(path, exist_ok=True)
                self.paths.append(path)
            except OSError as e:
                say(f"cgroup {path}: {e}, ignoring")

    @staticmethod
    def _hierarchies():
        out = []
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                sep = fields.index("-")
                fstype, mnt = fields[sep + 1], fields[4]
                if fstype == "cgroup2" or (fstype == "cgroup" and "name=systemd" in fields[-1]):
                    out.append(mnt)
        return out

    def enter(self):
        """Moves the calling process in (used as preexec_fn: runs in the child)."""
        for path in self.paths:
            try:
                with open(os.path.join(path, "cgroup.procs"), "w") as f:
                    f.write("0\n")
            except OSError:
                pass

    def remove(self):
        for path in self.paths:
            # The container's systemd made sub-cgroups: remove the tree bottom-up.
            for dirpath, dirnames, _ in sorted(os.walk(path), key=lambda w: -w[0].count("/")):
                try:
                    os.rmdir(dirpath)
                except OSError:
                    pass
            try:
                os.rmdir(os.path.dirname(path))
            except OSError:
                pass


class Container:
    """One node: a root file system, systemd-nspawn --boot in a loop that restarts it after a
    reboot (exit 133), and commands run inside through nsenter."""

    def __init__(self, name, workdir, api):
        self.name = name
        self.api = api
        self.dir = os.path.join(workdir, name)
        self.root = os.path.join(self.dir, "root")
        self.shared = os.path.join(self.dir, "shared")
        os.makedirs(self.shared)
        self.cgroup = Cgroup(name)
        self.exits = []             # nspawn exit statuses, in order
        self.starts = 0
        self.proc = None
        self.stopping = False
        self.thread = None
        self.events = []            # (time.time(), what) seen from outside
        self.consoles = []

    # -- preparing the root file system (container not running) --
    def nspawn_run(self, *cmd, timeout=180):
        """A one-off command in the root file system (no boot)."""
        args = ["systemd-nspawn", "--quiet", "--keep-unit", "--register=no", "--directory=" + self.root,
                "--machine=" + self.name, "--setenv=DEBIAN_FRONTEND=noninteractive", "--"] + list(cmd)
        r = subprocess.run(args, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                           env=dict(INSIDE_ENV), preexec_fn=self.cgroup.enter)
        return r

    def path(self, p):
        return os.path.join(self.root, p.lstrip("/"))

    def write(self, p, text, mode=0o644, gid=None):
        full = self.path(p)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(text)
        os.chmod(full, mode)
        if gid is not None:
            os.chown(full, 0, gid)

    def group_id(self, group):
        with open(self.path("/etc/group")) as f:
            for line in f:
                fields = line.split(":")
                if fields[0] == group:
                    return int(fields[2])
        raise AssertionError(f"{self.name}: no group {group} in /etc/group")

    def user_id(self, user):
        with open(self.path("/etc/passwd")) as f:
            for line in f:
                fields = line.split(":")
                if fields[0] == user:
                    return int(fields[2])
        raise AssertionError(f"{self.name}: no user {user} in /etc/passwd")

    # -- running --
    def boot(self):
        self.thread = threading.Thread(target=self._supervise, name="nspawn-" + self.name, daemon=True)
        self.thread.start()

    def _supervise(self):
        while not self.stopping and self.starts < MAX_STARTS:
            self.starts += 1
            console = os.path.join(self.dir, f"console-{self.starts}.log")
            self.consoles.append(console)
            args = ["systemd-nspawn", "--quiet", "--boot", "--keep-unit", "--register=no",
                    "--directory=" + self.root, "--machine=" + self.name, "--hostname=" + self.name,
                    "--link-journal=no", "--resolv-conf=off", "--timezone=off", "--console=read-only",
                    "--bind=" + self.shared + ":/shared"]
            with open(console, "w") as out:
                self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                             env=dict(INSIDE_ENV), preexec_fn=self.cgroup.enter)
                self.events.append((time.time(), f"start {self.starts}"))
                if self.starts > 1:
                    self._ready_after_boot(self.proc)
                rc = self.proc.wait()
            self.exits.append(rc)
            self.events.append((time.time(), f"exit {rc}"))
            if rc != EXIT_REBOOT or self.stopping:
                return
            # A machine that is down has no kubelet: its Node goes NotReady until it is back.
            try:
                self.api.set_ready(self.name, False)
                self.events.append((time.time(), "NotReady"))
            except Exception as e:
                say(f"{self.name}: setting NotReady failed: {e}")

    def _ready_after_boot(self, proc):
        """The kubelet of the new boot: the Node is Ready again a moment after the boot."""
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None and not self.stopping:
            if len(self.boot_ids()) >= self.starts:
                time.sleep(2)
                try:
                    self.api.set_ready(self.name, True)
                    self.events.append((time.time(), "Ready"))
                except Exception as e:
                    say(f"{self.name}: setting Ready failed: {e}")
                return
            time.sleep(0.2)
        say(f"{self.name}: boot {self.starts} was not recorded; the Node stays NotReady")

    def event_time(self, what):
        return [t for t, w in self.events if w == what]

    def boot_ids(self):
        try:
            with open(os.path.join(self.shared, "boots")) as f:
                return [line.strip() for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def pid1(self):
        """The container's PID 1 (on the host), a child of the running nspawn; None while down."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return None
        try:
            children = []
            for task in os.listdir(f"/proc/{proc.pid}/task"):
                with open(f"/proc/{proc.pid}/task/{task}/children") as f:
                    children += f.read().split()
            for pid in children:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("NSpid:") and line.split()[-1] == "1" and len(line.split()) > 2:
                            return int(pid)
        except OSError:
            return None
        return None

    def sh(self, cmd, timeout=20, check=False):
        """Runs a shell command inside the running container; CompletedProcess, or None if down."""
        pid = self.pid1()
        if pid is None:
            if check:
                raise AssertionError(f"{self.name} is not running")
            return None
        try:
            r = subprocess.run(["nsenter", "--target", str(pid), "--all", "--root", "--wd", "/bin/sh", "-c", cmd],
                               capture_output=True, text=True, timeout=timeout, env=dict(INSIDE_ENV),
                               stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            if check:
                raise
            return None
        if check and r.returncode != 0:
            raise AssertionError(f"{self.name}: {cmd}: exit {r.returncode}: {r.stderr.strip()}")
        return r

    def out(self, cmd, timeout=20):
        r = self.sh(cmd, timeout)
        return r.stdout.strip() if r is not None and r.returncode == 0 else None

    def unit_props(self, *props):
        text = self.out("systemctl show --no-pager -p " + ",".join(props) + " nodereboot.service")
        if text is None:
            return None
        return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)

    def journal(self, args):
        text = self.out(f"journalctl --no-pager -o json {args}", timeout=30)
        entries = []
        for line in (text or "").splitlines():
            try:
                entries.append(json.loads(line))
            except ValueError:
                pass
        return entries

    def state(self):
        p = self.path("/var/lib/nodereboot/state")
        try:
            with open(p) as f:
                return json.load(f)
        except FileNotFoundError:
            return {"phase": "idle"}
        except (OSError, ValueError):
            return None

    def phase(self):
        s = self.state()
        return s.get("phase") if s else None

    def stop(self, timeout=20):
        """Power off (nspawn forwards SIGTERM as an orderly shutdown), then kill what is left."""
        self.stopping = True
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pid = self.pid1()
                if pid:
                    try:
                        os.kill(pid, signal.SIGKILL)   # PID 1 of a namespace: takes everything in it along
                    except OSError:
                        pass
                proc.kill()
                proc.wait(10)
        if self.thread is not None:
            self.thread.join(10)
        self.cgroup.remove()


class StatusPoller(threading.Thread):
    """Polls `systemctl show -p StatusText nodereboot` inside a container while it runs and keeps
    the distinct values in the order they first appeared."""

    def __init__(self, container):
        super().__init__(name="status-" + container.name, daemon=True)
        self.c = container
        self.stop_event = threading.Event()
        self.values = []        # (seconds since the poller started, boot number, text)

    def run(self):
        started = time.monotonic()
        last = None
        while not self.stop_event.is_set():
            # Stay out of a container that is going down: a command caught inside at the end of the
            # shutdown delays the reboot. timeout(1) bounds a systemctl call to a PID 1 that is exiting.
            if self.c.phase() == "rebooting":
                self.stop_event.wait(0.1)
                continue
            text = self.c.out("timeout -s KILL 3 systemctl show -p StatusText --value nodereboot.service", timeout=5)
            if text and text != last:
                self.values.append((time.monotonic() - started, self.c.starts, text))
                last = text
            self.stop_event.wait(0.1)

    def texts(self):
        return [v[2] for v in self.values]

    def stop(self):
        self.stop_event.set()
        self.join(10)


def build_deb(workdir):
    deb = os.environ.get("NODEREBOOT_DEB")
    if deb:
        if not os.path.isfile(deb):
            raise AssertionError(f"NODEREBOOT_DEB={deb} does not exist")
        say(f"using {deb}")
        return os.path.abspath(deb)
    say("building the .deb with packaging/build-deb.sh")
    log = os.path.join(workdir, "build-deb.log")
    with open(log, "w") as f:
        r = subprocess.run([os.path.join(SOURCE_ROOT, "packaging", "build-deb.sh"), os.path.join(workdir, "deb")],
                           stdout=subprocess.PIPE, stderr=f, text=True, timeout=600)
    if r.returncode != 0:
        with open(log) as f:
            print("".join(f.readlines()[-40:]))
        raise AssertionError(f"packaging/build-deb.sh failed with {r.returncode}")
    deb = r.stdout.strip().splitlines()[-1]
    say(f"built {os.path.basename(deb)}")
    return deb


def kubeconfig(api, name, token):
    return f"""apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: {api.url}
    certificate-authority: /etc/nodereboot/ca.crt
users:
- name: {name}
  user:
    token: {token}
contexts:
- name: test
  context:
    cluster: test
    user: {name}
current-context: test
"""


BOOT_RECORD_UNIT = """[Unit]
Description=Record this boot's ID for the nspawn test
DefaultDependencies=no
After=local-fs.target
RequiresMountsFor=/shared

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'cat /proc/sys/kernel/random/boot_id >>/shared/boots'

[Install]
WantedBy=multi-user.target
"""

# systemd-nspawn gives each container boot its own boot ID by mounting a file over
# /proc/sys/kernel/random/boot_id. A service with ProtectKernelTunables=yes, ProtectControlGroups=yes
# or ProtectProc=invisible gets a /proc without that mount (systemd 252) and reads the host kernel's
# boot ID, which a container reboot does not change: the daemon would take every reboot for one that
# did not happen. On a real machine (or the VM test) the kernel's boot ID is the right one, so this
# adaptation is for containers only; the test reports what the shipped sandbox sees.
NSPAWN_DROPIN = """# Added by tests/system/test-nspawn.py: in a container, see nspawn's per-container boot ID.
[Service]
ProtectKernelTunables=no
ProtectControlGroups=no
ProtectProc=default
"""
SANDBOX_BOOT_ID_PROBE = ("systemd-run --quiet --wait --pipe -p ProtectKernelTunables=yes -p ProtectControlGroups=yes "
                         "-p ProtectProc=invisible -p PrivateMounts=yes cat /proc/sys/kernel/random/boot_id")

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


def prepare(c, tarball, deb, api, checks):
    """Root file system, the .deb, the configuration, the boot recorder."""
    started = time.monotonic()
    rootfs.extract(tarball, c.root)
    say(f"{c.name}: root file system extracted in {time.monotonic() - started:.1f} s")

    # The .deb, installed with apt as on a node: offline, its dependencies already in the image.
    shutil.copy(deb, c.path("/var/tmp/" + os.path.basename(deb)))
    started = time.monotonic()
    r = c.nspawn_run("apt-get", "install", "-y", "-q", "-o", "Dpkg::Use-Pty=0",
                     "/var/tmp/" + os.path.basename(deb))
    with open(os.path.join(c.dir, "apt-install.log"), "w") as f:
        f.write(r.stdout + r.stderr)
    if r.returncode != 0:
        print(r.stdout[-3000:], r.stderr[-3000:])
        raise AssertionError(f"{c.name}: apt-get install of the .deb failed with {r.returncode}")
    os.unlink(c.path("/var/tmp/" + os.path.basename(deb)))
    say(f"{c.name}: apt-get install ./{os.path.basename(deb)} took {time.monotonic() - started:.1f} s")

    uid = c.user_id("nodereboot")
    gid = c.group_id("nodereboot")
    checks.check(0 < uid < 1000, f"{c.name}: the package created the system user nodereboot", f"uid {uid}")
    wants = c.path("/etc/systemd/system/multi-user.target.wants/nodereboot.service")
    enabled = os.path.lexists(wants)
    checks.check(enabled, f"{c.name}: the package enabled nodereboot.service")
    if not enabled:
        c.nspawn_run("systemctl", "enable", "nodereboot.service")

    token = "token-" + c.name
    api.add_token(token, "system:node:" + c.name)
    shutil.copy(api.ca, c.path("/etc/nodereboot/ca.crt"))
    os.chmod(c.path("/etc/nodereboot/ca.crt"), 0o644)
    c.write("/etc/nodereboot/kubeconfig", kubeconfig(api, c.name, token), 0o640, gid)
    c.write("/etc/nodereboot/nodereboot.conf.d/test.conf", TEST_CONF.format(name=c.name))
    c.write("/etc/hostname", c.name + "\n")
    c.write("/etc/machine-id", uuid.uuid4().hex + "\n", 0o444)
    c.write("/etc/systemd/system/boot-record.service", BOOT_RECORD_UNIT)
    os.makedirs(c.path("/etc/systemd/system/multi-user.target.wants"), exist_ok=True)
    os.symlink("/etc/systemd/system/boot-record.service",
               c.path("/etc/systemd/system/multi-user.target.wants/boot-record.service"))
    os.makedirs(c.path("/etc/systemd/system/nodereboot.service.d"), exist_ok=True)
    c.write("/etc/systemd/system/nodereboot.service.d/50-nspawn-boot-id.conf", NSPAWN_DROPIN)
    dropin = os.environ.get("NODEREBOOT_TEST_UNIT_DROPIN")
    if dropin:
        # A diagnostic aid: try a unit change without rebuilding the package. The test still asserts
        # the shipped privilege model, so checks about it may fail on purpose.
        say(f"{c.name}: NOTE: adding {dropin} as a drop-in for nodereboot.service (not what the package ships)")
        shutil.copy(dropin, c.path("/etc/systemd/system/nodereboot.service.d/zz-test-override.conf"))
    # Nothing in the image needs a login prompt on the console.
    os.symlink("/dev/null", c.path("/etc/systemd/system/console-getty.service"))


def wait_booted(c, n, timeout=90):
    """Boot number n recorded, systemd done starting up, nodereboot active."""
    wait_for(lambda: len(c.boot_ids()) >= n and c.pid1() is not None, timeout,
             f"{c.name}: boot {n} (exits so far {c.exits})")
    def system_state():
        r = c.sh("systemctl is-system-running --wait", timeout=60)
        state = r.stdout.strip() if r is not None else ""
        return state if state in ("running", "degraded", "maintenance", "stopping") else None
    state = wait_for(system_state, timeout, f"{c.name}: systemd to finish starting up")
    if state != "running":
        failed = c.out("systemctl --failed --no-legend --plain") or ""
        say(f"{c.name}: system state {state}; failed units: {failed.strip() or '-'}")
    props = wait_for(lambda: (lambda p: p if p and p.get("ActiveState") == "active" and p.get("StatusText") else None)(
                     c.unit_props("ActiveState", "SubState", "StatusText", "MainPID", "NRestarts")),
                     30, f"{c.name}: nodereboot.service active with a STATUS= text "
                         f"({c.out('systemctl status --no-pager -n 20 nodereboot.service')})")
    return props


def proc_status(c, pid):
    text = c.out(f"cat /proc/{pid}/status") or ""
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def dump(containers, api):
    for c in containers:
        print(f"===== {c.name}: exits {c.exits}, boots {c.boot_ids()}, state {c.state()}")
        print(f"events: {[(round(t - T0_WALL, 1), w) for t, w in c.events]}")
        if c.pid1():
            print(c.out("systemctl status --no-pager -n 0 nodereboot.service") or "")
            print(c.out("journalctl --no-pager -o short-monotonic -u nodereboot.service -p info -n 60") or "")
        for console in c.consoles[-2:]:
            try:
                with open(console, errors="replace") as f:
                    lines = f.read().splitlines()
                print(f"----- {os.path.basename(console)} (last 30 lines)")
                print("\n".join(lines[-30:]))
            except OSError:
                pass
    if api is not None:
        try:
            print("timeline:", api.timeline())
            print("leases:", api.lease_holders())
        except Exception as e:
            print("API server:", e)


T0_WALL = time.time()


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
        for c in containers:
            prepare(c, tarball, deb, api, checks)

        # -- first boot --
        for c in containers:
            c.boot()
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
            checks.check(unit["User"] == "nodereboot" and unit["AmbientCapabilities"] == "cap_sys_boot",
                         f"{c.name}: the unit runs as nodereboot with AmbientCapabilities=cap_sys_boot", str(unit))
            st = proc_status(c, props["MainPID"])
            uids = st.get("Uid", "").split()
            cap_eff = int(st.get("CapEff", "0").strip() or "0", 16)
            say(f"{c.name}: noderebootd PID {props['MainPID']}: Uid {uids}, CapEff {cap_eff:#x}, "
                f"CapBnd {st.get('CapBnd', '').strip()}")
            checks.check(uids and all(u == str(c.user_id("nodereboot")) for u in uids) and cap_eff == 1 << CAP_SYS_BOOT,
                         f"{c.name}: the running daemon is unprivileged (uid nodereboot) with CAP_SYS_BOOT only",
                         f"Uid {uids}, CapEff {cap_eff:#x}")
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
            # nodereboot is allowed by the package's polkit rule; another user with the same
            # CAP_SYS_BOOT is not, which shows that polkit decides, not the capability.
            uid = c.user_id("nodereboot")
            for who, probe_uid, expect_yes in (("nodereboot", uid, True), ("nobody", 65534, False)):
                probe = c.sh(f"setpriv --reuid={probe_uid} --regid={probe_uid} --clear-groups "
                             "--inh-caps=-all,+sys_boot --ambient-caps=+sys_boot --bounding-set=-all,+sys_boot "
                             "sh -c 'grep CapEff /proc/self/status; busctl call org.freedesktop.login1 "
                             "/org/freedesktop/login1 org.freedesktop.login1.Manager CanReboot'")
                answer = (probe.stdout + probe.stderr).strip().replace("\n", "; ") if probe else "container down"
                say(f"{c.name}: logind CanReboot for {who} (uid {probe_uid}) with only CAP_SYS_BOOT: {answer}")
                said_yes = probe is not None and probe.returncode == 0 and 's "yes"' in probe.stdout
                if expect_yes:
                    checks.check(said_yes, f"{c.name}: logind lets uid {probe_uid} (nodereboot) with only "
                                 "CAP_SYS_BOOT reboot (CanReboot says yes)", answer)
                else:
                    checks.check(probe is not None and not said_yes, f"{c.name}: logind does not let another "
                                 f"user (uid {probe_uid}) with CAP_SYS_BOOT reboot", answer)
        for c in containers:
            p = StatusPoller(c)
            p.start()
            pollers.append(p)

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
                raise AssertionError("a container stopped: exits " + ", ".join(f"{c.name} {c.exits}" for c in containers))
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
            pods = api.get(f"/api/v1/pods?fieldSelector=spec.nodeName%3D{c.name}")["items"]
            checks.check(not any(p["metadata"]["name"].startswith("web-") and
                                 p["metadata"].get("creationTimestamp", "") < time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(roll_started - 1))
                                 for p in pods),
                         f"{c.name}: its workload pods were evicted (DaemonSet and mirror pods stay)",
                         str(sorted(p["metadata"]["name"] for p in pods)))
            ds = [p for p in pods if p["metadata"]["name"] == f"node-exporter-{c.name}"]
            checks.check(len(ds) == 1, f"{c.name}: its DaemonSet pod was left alone")
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
            ready = c.event_time("Ready")
            notready = c.event_time("NotReady")
            if notready and ready and uncordons:
                checks.check(notready[0] < ready[0] <= uncordons[-1] + 0.05,
                             f"{c.name}: NotReady while down, uncordoned only after it was Ready again",
                             f"NotReady {notready[0] - roll_started:.2f}, Ready {ready[0] - roll_started:.2f}, "
                             f"uncordon {uncordons[-1] - roll_started:.2f} s after the sentinel")
            else:
                checks.check(False, f"{c.name}: NotReady/Ready/uncordon all observed",
                             f"NotReady {notready}, Ready {ready}, uncordons {uncordons}")

        # STATUS= texts seen from outside
        order = sorted(containers, key=lambda c: [e["time"] for e in timeline if e["node"] == c.name and e["unschedulable"]][:1] or [0])
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
                         f"{c.name}: STATUS= showed the cycle (locked/draining/rebooting) before the reboot", str(texts))
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
                say(f"{c.name}: NOTE: {first_state} daemon entries before the state was loaded have no NODEREBOOT_STATE=: "
                    + "; ".join(repr(e.get("MESSAGE")) for e in own[:first_state][:3]))
            checks.check(own and not lacking,
                         f"{c.name}: daemon entries in boot -1 carry NODEREBOOT_NODE={c.name} and (once the state is loaded) NODEREBOOT_STATE=",
                         f"{len(lacking)} of {len(own)} lack them, e.g. " +
                         "; ".join(json.dumps({k: v for k, v in e.items() if not k.startswith("__")})[:400] for e in lacking[:3]))
            checks.check(reboot_events and reboot_events[0].get("_BOOT_ID") == c.boot_ids()[0].replace("-", ""),
                         f"{c.name}: the reboot event belongs to the first boot ID recorded in /shared/boots")
            checks.check(reboot_events and reboot_events[0].get("_UID") == uid and
                         int(reboot_events[0].get("_CAP_EFFECTIVE") or "0", 16) == 1 << CAP_SYS_BOOT,
                         f"{c.name}: the reboot was asked for by uid {uid} (nodereboot) with only CAP_SYS_BOOT "
                         "(journald's trusted _UID/_CAP_EFFECTIVE)")
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


def main():
    if os.geteuid() != 0:
        print("SKIP: the nspawn test needs root")
        return 77
    missing = [t for t in ("systemd-nspawn", "nsenter", "zstd", "tar") if not shutil.which(t)]
    if missing:
        print(f"FAIL: missing {', '.join(missing)} (tests/install-deps.sh system)")
        return 1

    def on_alarm(signum, frame):
        raise TimeoutError(f"the nspawn test ran longer than {TEST_TIMEOUT} s")
    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, lambda s, f: (_ for _ in ()).throw(KeyboardInterrupt("SIGTERM")))
    signal.alarm(TEST_TIMEOUT)

    workdir = tempfile.mkdtemp(prefix="nodereboot-nspawn-", dir="/var/tmp")
    checks = Checks()
    ok = False
    try:
        run(workdir, checks)
        ok = not checks.failed()
    except BaseException as e:
        if not isinstance(e, (AssertionError, TimeoutError, KeyboardInterrupt)):
            raise
    finally:
        signal.alarm(0)
        failed = checks.failed()
        print()
        print(f"{len(checks.results) - len(failed)} checks passed, {len(failed)} failed "
              f"({time.monotonic() - T0:.0f} s)")
        for _, what, detail in failed:
            print(f"  FAIL {what}: {detail}")
        if not ok and os.environ.get("NODEREBOOT_KEEP") == "1":
            print("work folder kept:", workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
