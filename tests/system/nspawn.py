#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Shared by the nspawn system tests (test-nspawn.py, test-upgrade.py): nodes as systemd-nspawn
containers with systemd as PID 1, built from rootfs.py's cached root file system, the .deb from
packaging/build-deb.sh installed with apt-get, commands run inside through nsenter.

  Container(name, workdir, api)   one node: boot() in a loop that starts it again after a reboot
                                  (exit 133), sh()/out() inside, state(), unit_props(), journal()
  prepare(c, tarball, deb, api, checks, conf)
                                  root file system, the .deb, kubeconfig, configuration, the boot
                                  recorder and the container drop-in, before the first boot
  build_deb(workdir, version)     packaging/build-deb.sh (NODEREBOOT_DEB_VERSION=version if given)
  main(run, name, timeout)        root and tool checks, a hard time limit, the work folder, the
                                  summary of the Checks; returns the exit status

Tests import it with tests/system/ on sys.path (as rootfs.py).
"""

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.environ.get("SOURCE_ROOT") or os.path.abspath(os.path.join(HERE, "..", ".."))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(SOURCE_ROOT, "tests", "integration"))
import bench  # noqa: E402
import rootfs  # noqa: E402

EXIT_REBOOT = 133           # systemd-nspawn's exit status when the container rebooted
MAX_STARTS = 4              # a container rebooting more often than this is not restarted again
# A clean environment for commands run inside the containers.
INSIDE_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
              "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0", "TERM": "dumb"}

T0 = time.monotonic()
LIBC = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def say(msg):
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


def wait_for(predicate, timeout, what, interval=0.2, alive=None):
    return bench.wait_for(predicate, timeout, what, interval, alive)


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
        self._sweep()
        for hier, own in self._hierarchies():
            path = os.path.join(hier + own, f"nodereboot-test-{os.getpid()}", name)
            try:
                os.makedirs(path, exist_ok=True)
                self.paths.append(path)
            except OSError as e:
                say(f"cgroup {path}: {e}, ignoring")

    @staticmethod
    def _hierarchies():
        """(mount point, this process's cgroup in it) of the unified and the name=systemd hierarchy."""
        own = {}
        with open("/proc/self/cgroup") as f:
            for line in f:
                hid, controllers, path = line.rstrip("\n").split(":", 2)
                own["cgroup2" if hid == "0" else controllers] = path.rstrip("/")
        out = []
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                sep = fields.index("-")
                fstype, mnt = fields[sep + 1], fields[4]
                if fstype == "cgroup2" and "cgroup2" in own:
                    out.append((mnt, own["cgroup2"]))
                elif fstype == "cgroup" and "name=systemd" in fields[-1].split(",") and "name=systemd" in own:
                    out.append((mnt, own["name=systemd"]))
        return out

    @classmethod
    def _sweep(cls):
        """Removes what a killed earlier run left: nodereboot-test-PID trees of dead PIDs (empty
        cgroups only; rmdir refuses the others)."""
        for hier, own in cls._hierarchies():
            parent = hier + own
            for d in os.listdir(parent):
                if not d.startswith("nodereboot-test-") or os.path.exists("/proc/" + d[len("nodereboot-test-"):]):
                    continue
                for dirpath, _, _ in sorted(os.walk(os.path.join(parent, d)), key=lambda w: -w[0].count("/")):
                    try:
                        os.rmdir(dirpath)
                    except OSError:
                        pass

    def enter(self):
        """Runs in the child before exec (preexec_fn): moves it into the cgroup, and has it get
        SIGTERM if the test dies (nspawn then powers the container off), so no container outlives
        the test."""
        LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
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
            # A machine that is down has no kubelet. As in a real cluster its Node is left as it
            # was (Ready=True, the previous boot ID) until the kubelet of the new boot posts.
            try:
                self.api.kubelet_stop(self.name)
                self.events.append((time.time(), "kubelet stopped"))
            except Exception as e:
                say(f"{self.name}: stopping the kubelet failed: {e}")

    def _ready_after_boot(self, proc):
        """The kubelet of the new boot starts a while after the boot (after the daemon) and posts
        the container's boot ID and Ready."""
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None and not self.stopping:
            boots = self.boot_ids()
            if len(boots) >= self.starts:
                time.sleep(3)
                try:
                    self.api.kubelet_start(self.name, boot_id=boots[self.starts - 1])
                    self.events.append((time.time(), "kubelet started"))
                except Exception as e:
                    say(f"{self.name}: starting the kubelet failed: {e}")
                return
            time.sleep(0.2)
        say(f"{self.name}: boot {self.starts} was not recorded; its kubelet stays down")

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


def build_deb(workdir, version=None, env_var="NODEREBOOT_DEB"):
    """The .deb of this tree: $NODEREBOOT_DEB (or env_var) if set, else built with
    packaging/build-deb.sh into workdir, as `version` (NODEREBOOT_DEB_VERSION=) if given."""
    deb = os.environ.get(env_var)
    if deb:
        if not os.path.isfile(deb):
            raise AssertionError(f"{env_var}={deb} does not exist")
        say(f"using {deb}")
        return os.path.abspath(deb)
    say("building the .deb with packaging/build-deb.sh" + (f" as version {version}" if version else ""))
    tag = "deb" + (f"-{version}" if version else "")
    log = os.path.join(workdir, f"build-{tag}.log")
    env = dict(os.environ)
    env.pop("NODEREBOOT_DEB_VERSION", None)
    if version:
        env["NODEREBOOT_DEB_VERSION"] = version
    with open(log, "w") as f:
        r = subprocess.run([os.path.join(SOURCE_ROOT, "packaging", "build-deb.sh"), os.path.join(workdir, tag)],
                           stdout=subprocess.PIPE, stderr=f, text=True, timeout=600, env=env)
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
Description=Record this boot's ID for the nspawn system tests
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
NSPAWN_DROPIN = """# Added by the nspawn system tests (tests/system/nspawn.py): in a container, see nspawn's per-container boot ID.
[Service]
ProtectKernelTunables=no
ProtectControlGroups=no
ProtectProc=default
"""
SANDBOX_BOOT_ID_PROBE = ("systemd-run --quiet --wait --pipe -p ProtectKernelTunables=yes -p ProtectControlGroups=yes "
                         "-p ProtectProc=invisible -p PrivateMounts=yes cat /proc/sys/kernel/random/boot_id")



def prepare(c, tarball, deb, api, checks, conf, with_kubeconfig=True):
    """Root file system, the .deb, the configuration (conf: a drop-in; {name} is the node), the boot
    recorder, the container drop-in. Without with_kubeconfig the node boots like a freshly baked
    image: install_kubeconfig() later does what first-boot provisioning does."""
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
    c.kubeconfig_text, c.kubeconfig_gid = kubeconfig(api, c.name, token), gid
    if with_kubeconfig:
        install_kubeconfig(c)
    c.write("/etc/nodereboot/nodereboot.conf.d/test.conf", conf.format(name=c.name))
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


def install_kubeconfig(c, path="/etc/nodereboot/kubeconfig"):
    """What first-boot provisioning does (README, "Install on a node image"): the kubeconfig,
    mode 0640, group nodereboot, at path ([Kubernetes] Kubeconfig=)."""
    c.write(path, c.kubeconfig_text, 0o640, c.kubeconfig_gid)


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


def pod_names(api, node):
    return {p["metadata"]["name"] for p in api.get(f"/api/v1/pods?fieldSelector=spec.nodeName%3D{node}")["items"]}


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



def main(run, name, timeout):
    """Runs run(workdir, checks) as root with a hard time limit (SIGALRM) and prints the summary of
    the checks; returns the exit status (77: not root, skipped)."""
    if os.geteuid() != 0:
        print(f"SKIP: the {name} test needs root")
        return 77
    missing = [t for t in ("systemd-nspawn", "nsenter", "zstd", "tar") if not shutil.which(t)]
    if missing:
        print(f"FAIL: missing {', '.join(missing)} (tests/install-deps.sh system)")
        return 1

    def on_alarm(signum, frame):
        raise TimeoutError(f"the {name} test ran longer than {timeout} s")
    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, lambda s, f: (_ for _ in ()).throw(KeyboardInterrupt("SIGTERM")))
    signal.alarm(timeout)

    workdir = tempfile.mkdtemp(prefix=f"nodereboot-{name}-", dir="/var/tmp")
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
