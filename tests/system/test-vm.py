#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""One node in qemu, a real kernel reboot.

The user story: "nodereboot installed from the .deb on a node (a real kernel, real systemd and
logind) reboots the machine after an update, and puts the node back into service afterwards".

  - a Debian bookworm guest (tests/system/vm/vmimage.py: rootfs.py's tree plus a kernel, cached)
    with the .deb installed by apt-get, a kubeconfig for https://10.0.2.100:6443 (tls-server-name
    localhost: the test server's certificate names 127.0.0.1 and localhost), a drop-in
    `[Node] Name=vm-node`, and two small units from tests/system/vm/guest/: one writes markers to
    a virtio-serial port at every boot (boot ID, service active, the daemon's phase) and creates
    /run/reboot-required on the first boot only, once the service is active; one streams the
    journal (JSON) to a second port;
  - the test API server on the host's 127.0.0.1, enforcing packaging/kubernetes/rbac.yaml (the
    daemon uses a token of its ServiceAccount), seeded with vm-node (Ready) and node-b, two
    ReplicaSet pods, a DaemonSet pod and a mirror pod on each; qemu's restricted user network
    forwards 10.0.2.100:6443 to it (guestfwd, one socat relay per connection): nothing else;
  - qemu (software emulation) boots the Debian kernel directly with a reduced initrd; no
    -no-reboot, so the guest's reboot resets the VM and boots the same disk again.

Asserted from outside: qemu resets the VM once, and QMP's RESET events say reason guest-reset (the
guest's own reboot; the kernel's reboot code may knock twice within milliseconds, one reset); the
markers show two different boot IDs with the service active in both and the sentinel made once;
the API server's request log shows the node cordoned and its two ReplicaSet pods evicted before
the reset (DaemonSet and mirror pods untouched, still there, the ReplicaSet's pods now on node-b),
and after it uncordoned and the lease released (holder empty) only once the Node was Ready again
(it is NotReady from the reset until the new boot's service is up, as without a kubelet); the
Node ends schedulable; the journal streamed out has the daemon's reboot event (MESSAGE_ID,
NODEREBOOT_NODE=) and logind's "System is rebooting." in the first boot, the recovered and
lock-released events in the second, and no daemon errors; no request was forbidden by the
shipped RBAC.

Needs root, qemu-system-x86, socat, zstd, e2fsprogs, and debootstrap for the first build of the
cached base image (tests/install-deps.sh system); exits 77 (skipped) when not root. The first build
takes 5-15 minutes (debootstrap with a kernel): `tests/system/vm/vmimage.py` builds it alone.
Environment: SOURCE_ROOT, NODEREBOOT_DEB (use this .deb instead of building one),
NODEREBOOT_TEST_CACHE (default /var/cache/nodereboot-tests), NODEREBOOT_KEEP=1 (keep the work
folder on failure).
"""

import base64
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.environ.get("SOURCE_ROOT") or os.path.abspath(os.path.join(HERE, "..", ".."))
GUEST_FILES = os.path.join(HERE, "vm", "guest")
sys.path.insert(0, os.path.join(HERE, "vm"))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(SOURCE_ROOT, "tests", "integration"))
import vmimage  # noqa: E402
from bench import RBAC_MANIFESTS, SERVICE_ACCOUNT, ApiServer, seed_cluster  # noqa: E402
import nspawn  # noqa: E402
from nspawn import Checks, say  # noqa: E402

NODE = "vm-node"
OTHER = "node-b"
GUEST_API = "10.0.2.100"        # qemu's user network forwards it to the host's test API server
GUEST_API_PORT = 6443
MSG_REBOOTING = "a1bcab02030b4270969644c01193ec1b"      # daemon/basic/log.h MESSAGE_REBOOTING
MSG_RECOVERED = "4b7cbd21b94445cca9b9344bf3e89098"      # MESSAGE_RECOVERED
MSG_LOCK_RELEASED = "4e9447c6c09346a1a460daa2f40a15e9"  # MESSAGE_LOCK_RELEASED
BOOT_TIMEOUT = 300              # qemu start (or reset) -> the service active, under emulation
CYCLE_TIMEOUT = 300             # sentinel -> the guest's reset
RECOVER_TIMEOUT = 180           # Node Ready again -> uncordoned and the lease released
POWEROFF_TIMEOUT = 120          # ACPI power button -> qemu exits
JOURNAL_FIELDS = ("MESSAGE,MESSAGE_ID,PRIORITY,SYSLOG_IDENTIFIER,_SYSTEMD_UNIT,_COMM,_PID,"
                  "NODEREBOOT_NODE,NODEREBOOT_STATE")   # as tests/system/vm/guest/nodereboot-vm-journal
TEST_TIMEOUT = 1150             # hard limit for the whole test (meson's is 1200)

TEST_CONF = """# The VM test: this node's name; a lease that outlives a reboot under emulation (1-2 min)
# yet is short next to the default; quick drain and reboot limits.
[Node]
Name={name}

[Lock]
TTLSec=5min
RecheckSec=30s

[Drain]
TimeoutSec=120s

[Reboot]
TimeoutSec=5min

[Daemon]
LogLevel=debug
"""



def wait_for(predicate, timeout, what, interval=0.5, alive=None):
    return nspawn.wait_for(predicate, timeout, what, interval, alive)


class Qmp(threading.Thread):
    """qemu's QMP socket: negotiates, then records every event with the time it was received."""

    def __init__(self, path):
        super().__init__(name="qmp", daemon=True)
        self.path = path
        self.events = []            # (time.time(), event dict)
        self.sock = None
        self.lock = threading.Lock()

    def connect(self, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.path)
                break
            except OSError:
                s.close()
                if time.monotonic() > deadline:
                    raise AssertionError(f"no QMP socket at {self.path} after {timeout} s")
                time.sleep(0.1)
        self.sock = s
        self.file = s.makefile("rb")
        greeting = json.loads(self.file.readline())
        if "QMP" not in greeting:
            raise AssertionError(f"unexpected QMP greeting {greeting}")
        self.send("qmp_capabilities")
        while True:
            reply = json.loads(self.file.readline())
            if "return" in reply:
                break
            if "error" in reply:
                raise AssertionError(f"qmp_capabilities: {reply}")
            self._event(reply)
        self.start()

    def send(self, command):
        with self.lock:
            self.sock.sendall(json.dumps({"execute": command}).encode() + b"\n")

    def _event(self, msg):
        if "event" in msg:
            self.events.append((time.time(), msg))

    def run(self):
        try:
            for line in self.file:
                try:
                    self._event(json.loads(line))
                except ValueError:
                    pass
        except OSError:
            pass

    def named(self, name):
        return [(t, e) for t, e in self.events if e["event"] == name]

    def close(self):
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()


class Vm:
    """qemu under software emulation: the serial console, two virtio-serial ports and QMP go to
    files and a socket in the work folder."""

    def __init__(self, workdir, kernel, initrd, disk, api_port):
        self.dir = workdir
        self.kernel, self.initrd, self.disk = kernel, initrd, disk
        self.api_port = api_port
        self.serial = os.path.join(workdir, "serial.log")
        self.marker_path = os.path.join(workdir, "marker.log")
        self.journal = os.path.join(workdir, "journal.log")
        self.qmp_path = os.path.join(workdir, "qmp.sock")
        self.stderr = os.path.join(workdir, "qemu.log")
        self.proc = None
        self.qmp = None
        self.started = None

    def command(self):
        relay = f"socat STDIO TCP:127.0.0.1:{self.api_port}"
        # Two vCPUs: multi-threaded TCG runs them on two host threads; on a 2-core machine that
        # halved the boot times measured with one (first boot 61 -> 24 s, reboot 103 -> 50 s).
        return ["qemu-system-x86_64", "-M", "pc,accel=tcg", "-cpu", "max", "-m", "1024", "-smp", "2",
                # No default devices (VGA, floppy, CD-ROM, parallel port, NIC): less to probe at boot.
                "-nodefaults", "-nographic", "-monitor", "none",
                "-kernel", self.kernel, "-initrd", self.initrd,
                "-append", "console=ttyS0 root=/dev/vda rw quiet",
                "-drive", f"file={self.disk},format=raw,if=virtio",
                "-chardev", f"file,id=marker,path={self.marker_path}",
                "-chardev", f"file,id=journal,path={self.journal}",
                "-device", "virtio-serial-pci",
                "-device", "virtserialport,chardev=marker,name=nodereboot.marker",
                "-device", "virtserialport,chardev=journal,name=nodereboot.log",
                "-serial", f"file:{self.serial}",
                "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
                "-netdev", f"user,id=n0,restrict=on,guestfwd=tcp:{GUEST_API}:{GUEST_API_PORT}-cmd:{relay}",
                "-device", "virtio-net-pci,netdev=n0"]

    def start(self):
        cmd = self.command()
        with open(os.path.join(self.dir, "qemu.cmd"), "w") as f:
            f.write(" ".join(cmd) + "\n")
        self.err = open(self.stderr, "w")
        # A session of its own: the relays qemu starts per connection go with it at the end. And
        # qemu dies with this process, even if it is killed before it can clean up.
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.err, stderr=subprocess.STDOUT,
                                     start_new_session=True, preexec_fn=die_with_parent)
        self.started = time.time()
        self.qmp = Qmp(self.qmp_path)
        self.qmp.connect()

    def alive(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"qemu exited with {self.proc.returncode}: {tail(self.stderr, 20)}")

    def markers(self):
        """The marker lines, split: [["boot", ID], ["service", "active", ID], ...]."""
        try:
            with open(self.marker_path, errors="replace") as f:
                return [line.split() for line in f.read().splitlines() if line.strip()]
        except FileNotFoundError:
            return []

    def boot_ids(self):
        return [m[1] for m in self.markers() if m[0] == "boot" and len(m) == 2]

    def marker(self, *words):
        return any(m == list(words) for m in self.markers())

    def journal_entries(self):
        entries = []
        try:
            with open(self.journal, errors="replace") as f:
                for line in f:
                    try:
                        entries.append(json.loads(line))
                    except ValueError:
                        pass
        except FileNotFoundError:
            pass
        return entries

    def poweroff(self, timeout):
        """The ACPI power button (logind powers the guest off); True if qemu exited in time."""
        if self.proc is None or self.proc.poll() is not None:
            return False
        self.qmp.send("system_powerdown")
        try:
            self.proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def disk_journal(self, dest):
        """The guest's persistent journal, read from the disk image (qemu must have exited):
        debugfs copies /var/log/journal out, the host's journalctl reads it. Entries as dicts."""
        os.makedirs(dest, exist_ok=True)
        r = subprocess.run(["debugfs", "-R", f"rdump /var/log/journal {dest}", self.disk],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise AssertionError(f"debugfs rdump failed: {r.stderr.strip()}")
        r = subprocess.run(["journalctl", "--no-pager", "-D", os.path.join(dest, "journal"), "-o", "json",
                            "--output-fields=" + JOURNAL_FIELDS], capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise AssertionError(f"journalctl -D failed: {r.stderr.strip()}")
        entries = []
        for line in r.stdout.splitlines():
            try:
                entries.append(json.loads(line))
            except ValueError:
                pass
        return entries

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.qmp.send("quit")
                self.proc.wait(10)
            except Exception:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)     # relays that outlived qemu
        except ProcessLookupError:
            pass
        if self.qmp is not None:
            self.qmp.close()
        self.err.close()


def die_with_parent():
    """In a child before exec: SIGKILL when the parent dies (prctl PR_SET_PDEATHSIG)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)


def qmp_time(event):
    ts = event.get("timestamp") or {}
    return ts.get("seconds", 0) + ts.get("microseconds", 0) / 1e6


def tail(path, n):
    try:
        with open(path, errors="replace") as f:
            return "\n".join(f.read().splitlines()[-n:])
    except FileNotFoundError:
        return f"({os.path.basename(path)} missing)"


def journal_text(entries, n):
    out = []
    for e in entries[-n:]:
        ts = int(e.get("__REALTIME_TIMESTAMP", "0")) / 1e6
        who = e.get("SYSLOG_IDENTIFIER") or e.get("_COMM") or "?"
        msg = e.get("MESSAGE")
        if isinstance(msg, list):       # non-UTF-8 messages come as byte arrays
            msg = bytes(msg).decode(errors="replace")
        out.append(f"{time.strftime('%H:%M:%S', time.gmtime(ts))}.{int(ts * 1000) % 1000:03d} "
                   f"{e.get('_BOOT_ID', '')[:8]} {who}: {msg}")
    return "\n".join(out)


def build_deb(workdir):
    deb = os.environ.get("NODEREBOOT_DEB")
    if deb:
        if not os.path.isfile(deb):
            raise AssertionError(f"NODEREBOOT_DEB={deb} does not exist")
        say(f"using {deb}")
        return os.path.abspath(deb)
    started = time.monotonic()
    log = os.path.join(workdir, "build-deb.log")
    with open(log, "w") as f:
        r = subprocess.run([os.path.join(SOURCE_ROOT, "packaging", "build-deb.sh"), os.path.join(workdir, "deb")],
                           stdout=subprocess.PIPE, stderr=f, text=True, timeout=900)
    if r.returncode != 0:
        print(tail(log, 40))
        raise AssertionError(f"packaging/build-deb.sh failed with {r.returncode}")
    deb = r.stdout.strip().splitlines()[-1]
    say(f"built {os.path.basename(deb)} in {time.monotonic() - started:.0f} s")
    return deb


def kubeconfig(ca_pem, token):
    ca = base64.b64encode(ca_pem.encode()).decode()
    return f"""apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: https://{GUEST_API}:{GUEST_API_PORT}
    certificate-authority-data: {ca}
    # The test server's certificate is for 127.0.0.1 and localhost; the guest reaches it as {GUEST_API}.
    tls-server-name: localhost
users:
- name: {NODE}
  user:
    token: {token}
contexts:
- name: test
  context:
    cluster: test
    user: {NODE}
current-context: test
"""


def guest_files(api, token):
    def read(name):
        with open(os.path.join(GUEST_FILES, name)) as f:
            return f.read()
    with open(api.ca) as f:
        ca_pem = f.read()
    return {
        "/etc/nodereboot/kubeconfig": (kubeconfig(ca_pem, token), 0o640, "nodereboot"),
        "/etc/nodereboot/nodereboot.conf.d/50-vm-test.conf": (TEST_CONF.format(name=NODE), 0o644, None),
        "/etc/hostname": (NODE + "\n", 0o644, None),
        "/etc/machine-id": (os.urandom(16).hex() + "\n", 0o444, None),
        "/usr/local/sbin/nodereboot-vm-marker": (read("nodereboot-vm-marker"), 0o755, None),
        "/usr/local/sbin/nodereboot-vm-journal": (read("nodereboot-vm-journal"), 0o755, None),
        "/etc/systemd/system/nodereboot-vm-marker.service": (read("nodereboot-vm-marker.service"), 0o644, None),
        "/etc/systemd/system/nodereboot-vm-journal.service": (read("nodereboot-vm-journal.service"), 0o644, None),
    }


def node_requests(log, since=0.0, until=None):
    """The daemon's requests (the ServiceAccount; it is the only client using it) in [since, until)."""
    return [e for e in log if e.get("user") == SERVICE_ACCOUNT and e["time"] >= since
            and (until is None or e["time"] < until)]


def is_cordon(e, value):
    if e["method"] not in ("PATCH", "PUT") or e.get("resource") != "nodes" or e.get("name") != NODE:
        return False
    if not (200 <= (e.get("status") or 0) < 300):
        return False
    body = e.get("body")
    if isinstance(body, dict):
        spec = body.get("spec")
        if isinstance(spec, dict) and "unschedulable" in spec:
            return bool(spec["unschedulable"]) == value
    if isinstance(body, list):      # JSON patch
        return any(op.get("path") == "/spec/unschedulable" and bool(op.get("value")) == value
                   for op in body if isinstance(op, dict))
    return False


def lease_release(e):
    """A successful write of a Lease that leaves it without a holder (a PUT without
    holderIdentity, as the daemon sends, or with an empty one; a merge patch to null; a JSON
    patch removing it)."""
    if e["method"] not in ("PUT", "PATCH") or e.get("resource") != "leases":
        return False
    if not (200 <= (e.get("status") or 0) < 300):
        return False
    body = e.get("body")
    if isinstance(body, list):
        return any(isinstance(op, dict) and op.get("path") == "/spec/holderIdentity"
                   and (op.get("op") == "remove" or not op.get("value")) for op in body)
    spec = body.get("spec") if isinstance(body, dict) else None
    if e["method"] == "PATCH":
        return isinstance(spec, dict) and "holderIdentity" in spec and not spec["holderIdentity"]
    return isinstance(spec, dict) and not spec.get("holderIdentity")


def run(workdir, checks, state):
    if not shutil.which("socat"):
        raise AssertionError("socat is missing (tests/install-deps.sh system): qemu's guestfwd relay")
    if not shutil.which("qemu-system-x86_64"):
        raise AssertionError("qemu-system-x86_64 is missing (tests/install-deps.sh system)")

    # The .deb builds while the base image is found or built.
    deb_result = {}

    def deb_thread():
        try:
            deb_result["deb"] = build_deb(workdir)
        except BaseException as e:      # reported by the main thread
            deb_result["error"] = e
    t = threading.Thread(target=deb_thread, name="build-deb", daemon=True)
    t.start()
    started = time.monotonic()
    try:
        base = vmimage.ensure_base()
    finally:
        t.join()        # the work folder must outlive the build in it
    state["timings"]["base image and .deb"] = time.monotonic() - started
    say(f"base image {os.path.basename(base.tarball)} and .deb ready after {time.monotonic() - started:.0f} s")
    if "error" in deb_result:
        raise deb_result["error"]
    deb = deb_result["deb"]

    # The server enforces the RBAC the project ships; the daemon is its ServiceAccount.
    api = ApiServer(workdir, seed_cluster([NODE, OTHER], replicas_per_node=2),
                    ["--rbac-manifests", RBAC_MANIFESTS])
    state["api"] = api
    api_port = int(api.url.rsplit(":", 1)[1])
    token = "token-" + NODE
    api.add_token(token, SERVICE_ACCOUNT)
    say(f"test API server at {api.url}")

    started = time.monotonic()
    disk, timings = vmimage.make_disk(base, deb, workdir, guest_files(api, token),
                                      enable=("nodereboot-vm-marker.service", "nodereboot-vm-journal.service"),
                                      log_path=os.path.join(workdir, "image.log"))
    state["timings"]["disk image"] = time.monotonic() - started
    say("disk image: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))

    vm = Vm(workdir, base.kernel, base.initrd, disk, api_port)
    state["vm"] = vm
    vm.start()
    say("qemu started")

    # First boot: the service active, then the sentinel (created by the guest, first boot only).
    wait_for(lambda: vm.boot_ids(), BOOT_TIMEOUT, "the first boot's marker", alive=vm.alive)
    boot1 = vm.boot_ids()[0]
    say(f"boot 1: {boot1}")
    wait_for(lambda: any(m[0] == "service" and m[-1] == boot1 for m in vm.markers()), BOOT_TIMEOUT,
             "nodereboot.service in the first boot", alive=vm.alive)
    first_up = time.time() - vm.started
    state["timings"]["boot 1 (qemu start to service active)"] = first_up
    checks.check(vm.marker("service", "active", boot1), "nodereboot.service is active in the first boot",
                 " ".join(next(m for m in vm.markers() if m[0] == "service")))
    if not vm.marker("service", "active", boot1):
        raise AssertionError("the service did not start; nothing more to see")
    wait_for(lambda: vm.marker("sentinel", boot1), 60, "the sentinel in the first boot", alive=vm.alive)
    sentinel_at = time.time()
    say(f"service active {first_up:.0f} s after qemu started; /run/reboot-required created")

    # The cycle: cordon, drain, reboot through logind -> the VM resets.
    def progress():
        vm.alive()
        return vm.qmp.named("RESET")
    wait_for(progress, CYCLE_TIMEOUT, "the guest's reboot (QMP RESET)")
    _, reset = vm.qmp.named("RESET")[0]
    reset_at = qmp_time(reset)
    state["timings"]["sentinel to reset"] = reset_at - sentinel_at
    say(f"RESET {json.dumps(reset.get('data'))} {reset_at - sentinel_at:.0f} s after the sentinel")
    # A machine that is down has no kubelet. As in a real cluster its Node keeps Ready=True and
    # the previous boot ID until the kubelet of the new boot posts.
    api.kubelet_stop(NODE)

    # Second boot.
    wait_for(lambda: len(vm.boot_ids()) >= 2, BOOT_TIMEOUT, "the second boot's marker", alive=vm.alive)
    boot2 = vm.boot_ids()[1]
    say(f"boot 2: {boot2}")
    wait_for(lambda: any(m[0] == "service" and m[-1] == boot2 for m in vm.markers()), BOOT_TIMEOUT,
             "nodereboot.service in the second boot", alive=vm.alive)
    state["timings"]["reset to service active"] = time.time() - reset_at
    up_at = time.time()
    # The daemon must wait for the kubelet of this boot: let it read the Node (still Ready=True
    # with the first boot's ID) in the new boot, give it a few seconds more, and check it has not
    # moved yet.
    def saw_not_ready():
        vm.alive()
        seen = any(e["method"] == "GET" and e.get("resource") == "nodes" and e.get("name") == NODE
                   and e.get("status") == 200 for e in node_requests(api.request_log(), since=reset_at))
        return seen and vm.marker("state", "recovering", boot2)
    wait_for(saw_not_ready, 120, "the daemon to read the stale Node in the new boot")
    time.sleep(5)
    node = api.node(NODE)
    held = api.lease_holders()
    checks.check(node["spec"].get("unschedulable") and held.get("nodereboot-0") == NODE,
                 "while only the stale Ready of the first boot is on the Node it stays cordoned and the "
                 "lease held",
                 f"unschedulable {node['spec'].get('unschedulable')}, leases {held}")
    api.kubelet_start(NODE, boot_id=boot2)
    ready_at = time.time()
    say(f"service up {up_at - reset_at:.0f} s after the reset; Node {NODE} Ready again "
        f"{ready_at - up_at:.0f} s later")

    def recovered():
        vm.alive()
        node = api.node(NODE)
        holders = api.lease_holders()
        return not node["spec"].get("unschedulable") and holders and not any(holders.values())
    wait_for(recovered, RECOVER_TIMEOUT, "the node uncordoned and the lease released")
    recovered_at = time.time()
    state["timings"]["Ready to recovered"] = recovered_at - ready_at
    say(f"uncordoned and released {recovered_at - ready_at:.1f} s after Ready")
    wait_for(lambda: any(m[0] == "state" and m[1] in ("idle", "none") and m[-1] == boot2 for m in vm.markers()),
             30, "the daemon's state to be idle in the second boot", alive=vm.alive)
    # No second reboot: give a reboot that should not come a moment to show.
    time.sleep(10)
    vm.alive()

    # -- what the outside saw --
    # The kernel's reboot code may knock more than once (reset register, then the keyboard
    # controller) before qemu acts: RESET events within a few seconds of each other are one reset.
    resets = [(qmp_time(e), e) for _, e in vm.qmp.named("RESET")]
    bursts = []
    for t, e in resets:
        if not bursts or t - bursts[-1][-1][0] > 5:
            bursts.append([])
        bursts[-1].append((t, e))
    checks.check(len(bursts) == 1, "the VM was reset exactly once",
                 f"{len(bursts)} resets: {[[round(t - bursts[0][0][0], 2) for t, _ in b] for b in bursts]} s")
    reasons = [e.get("data") for _, e in resets]
    checks.check(all(d.get("reason") == "guest-reset" and d.get("guest") is True for d in reasons),
                 "the reset was the guest's own reboot (QMP RESET, reason guest-reset)", json.dumps(reasons))
    boots = vm.boot_ids()
    checks.check(len(boots) == 2 and boots[0] != boots[1], "two boots with different boot IDs", str(boots))
    checks.check(vm.marker("service", "active", boot2), "nodereboot.service is active in the second boot",
                 str([m for m in vm.markers() if m[0] == "service"]))
    checks.check(sum(1 for m in vm.markers() if m[0] == "sentinel") == 1, "the sentinel was created once")
    phases1 = [m[1] for m in vm.markers() if m[0] == "state" and m[-1] == boot1]
    phases2 = [m[1] for m in vm.markers() if m[0] == "state" and m[-1] == boot2]
    say(f"phases seen in boot 1: {phases1}; boot 2: {phases2}")
    # The marker samples the state file every 0.5 s and is stopped with the other units at the
    # shutdown, so it may miss a short "rebooting"; "recovering" first thing in the second boot is
    # only ever entered from a "rebooting" saved before the reset.
    checks.check("rebooting" in phases1 or (phases2[:1] == ["recovering"] and phases1[-1:] == ["draining"]),
                 "the daemon reached rebooting in the first boot (seen there, or resumed from it after the reset)",
                 f"boot 1: {phases1}; boot 2: {phases2}")

    log = api.request_log()
    mine = node_requests(log)
    before, after = node_requests(log, until=reset_at), node_requests(log, since=reset_at)
    cordons = [e for e in before if is_cordon(e, True)]
    checks.check(cordons, "the node was cordoned before the reboot",
                 str([(e["method"], e["path"], e.get("body")) for e in mine if e.get("resource") == "nodes"
                      and e["method"] != "GET"]))
    evictions = [e for e in mine if e["method"] == "POST" and e["path"].endswith("/eviction")]
    evicted = sorted({e["path"].split("/")[-2] for e in evictions if e.get("status") in (200, 201)})
    want = ["web-6d4cf56db6-00001", "web-6d4cf56db6-00002"]
    checks.check(evicted == want, "its two ReplicaSet pods were evicted", f"evicted {evicted}, expected {want}")
    checks.check(all(e["time"] < reset_at for e in evictions), "every eviction came before the reboot")
    checks.check(cordons and all(e["time"] > cordons[0]["time"] for e in evictions), "the evictions came after the cordon")
    untouched = [e["path"] for e in evictions if NODE in e["path"].split("/")[-2]]
    checks.check(not untouched, "no eviction of the DaemonSet or mirror pod", str(untouched))
    pods = api.get(f"/api/v1/pods?fieldSelector=spec.nodeName%3D{NODE}")["items"]
    names = sorted(p["metadata"]["name"] for p in pods)
    checks.check(names == [f"kube-proxy-{NODE}", f"node-exporter-{NODE}"],
                 "only the DaemonSet and mirror pods are left on the node", str(names))
    web = [p for p in api.get("/api/v1/namespaces/default/pods")["items"]
           if p["metadata"]["name"].startswith("web-") and not p["metadata"].get("deletionTimestamp")]
    checks.check(len(web) == 4 and all(p["spec"].get("nodeName") == OTHER for p in web),
                 f"the ReplicaSet's four pods run on {OTHER}", str([(p["metadata"]["name"], p["spec"].get("nodeName"))
                                                                  for p in web]))
    uncordons = [e for e in after if is_cordon(e, False)]
    checks.check(uncordons, "the node was uncordoned after the reboot")
    checks.check(uncordons and all(e["time"] >= ready_at for e in uncordons), "uncordoned only once the Node was Ready",
                 f"uncordons at {[round(e['time'] - ready_at, 1) for e in uncordons]} s after Ready")
    checks.check(not any(is_cordon(e, False) for e in before), "no uncordon before the reboot")
    releases = [e for e in after if lease_release(e)]
    checks.check(releases and all(e["time"] >= ready_at for e in releases),
                 "the lease was released after the reboot, once the Node was Ready",
                 str([(e["method"], e["path"], e.get("status")) for e in mine if e.get("resource") == "leases"
                      and e["method"] != "GET"]))
    checks.check(not any(lease_release(e) for e in before), "the lease was not released before the reboot")
    holders = api.lease_holders()
    checks.check(holders and not any(holders.values()), "every lease holder is empty at the end", str(holders))
    node = api.node(NODE)
    checks.check(not node["spec"].get("unschedulable"), "the Node ends schedulable")
    timeline = [c for c in api.timeline() if c["node"] == NODE]
    changes = [c["unschedulable"] for c in timeline]
    checks.check(changes == [False, True, False] or changes == [True, False],
                 "the Node's schedulability went cordoned once, then uncordoned", str(changes))

    denials = [d for d in api.denials() if d.get("user") == SERVICE_ACCOUNT]
    forbidden = [e for e in mine if e.get("status") == 403]
    checks.check(not denials and not forbidden,
                 f"no request was forbidden by {os.path.relpath(RBAC_MANIFESTS, SOURCE_ROOT)}",
                 str([(d.get("method"), d.get("path"), d.get("message")) for d in denials][:3] +
                     [(e["method"], e["path"]) for e in forbidden][:3]))
    agents = {e.get("user_agent") for e in mine}
    checks.check(agents and all(f"(node {NODE})" in (a or "") for a in agents),
                 "every request carries the daemon's User-Agent naming the node", str(agents))

    # The journal: the guest's own, from the disk after a clean power-off (complete, the first
    # boot's shutdown included); the copy streamed out while it ran if that fails.
    t = time.monotonic()
    clean = vm.poweroff(POWEROFF_TIMEOUT)
    checks.check(clean, f"the guest powers off cleanly (ACPI power button) within {POWEROFF_TIMEOUT} s")
    source = "the disk"
    try:
        entries = vm.disk_journal(os.path.join(workdir, "journal-disk")) if clean else None
    except AssertionError as e:
        say(f"reading the journal from the disk: {e}")
        entries = None
    if not entries:
        entries, source = vm.journal_entries(), "the stream"
    state["timings"]["power-off and journal"] = time.monotonic() - t
    say(f"{len(entries)} journal entries from {source}")
    in1 = [e for e in entries if e.get("_BOOT_ID") == boot1.replace("-", "")]
    in2 = [e for e in entries if e.get("_BOOT_ID") == boot2.replace("-", "")]
    rebooting = [e for e in in1 if e.get("MESSAGE_ID") == MSG_REBOOTING]
    checks.check(rebooting and rebooting[0].get("NODEREBOOT_NODE") == NODE,
                 "the first boot's journal has the daemon's reboot event with NODEREBOOT_NODE=" + NODE,
                 str(rebooting[:1]))
    checks.check(any(e.get("SYSLOG_IDENTIFIER") == "systemd-logind" and "System is rebooting" in str(e.get("MESSAGE"))
                     for e in in1), "logind rebooted the system in the first boot")
    checks.check(any(e.get("MESSAGE_ID") == MSG_RECOVERED for e in in2), "the second boot's journal has the recovered event")
    checks.check(any(e.get("MESSAGE_ID") == MSG_LOCK_RELEASED for e in in2),
                 "the second boot's journal has the lock-released event")
    errors = [e for e in in1 + in2 if e.get("_SYSTEMD_UNIT") == "nodereboot.service"
              and str(e.get("PRIORITY")) in ("0", "1", "2", "3")]
    checks.check(not errors, "the daemon logged no errors", journal_text(errors, 10))


def main():
    if os.geteuid() != 0:
        print("SKIP: needs root (qemu image building, chroot)")
        return 77
    checks = Checks()
    workdir = tempfile.mkdtemp(prefix="nodereboot-vm-")
    state = {"timings": {}}
    say(f"work folder {workdir}")
    # A hard limit: a wedged qemu or server must not hang the test past meson's timeout.
    def on_alarm(signum, frame):
        raise AssertionError(f"the whole test took longer than {TEST_TIMEOUT} s")
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TEST_TIMEOUT)
    # meson's timeout sends SIGTERM: clean up (qemu, the server) as on any failure.
    def on_term(signum, frame):
        raise AssertionError(f"terminated by signal {signum}")
    signal.signal(signal.SIGTERM, on_term)
    error = None
    try:
        run(workdir, checks, state)
    except Exception as e:
        error = e
        traceback.print_exc()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)     # let the cleanup finish
        failed = error is not None or checks.failed()
        vm = state.get("vm")
        if vm is not None:
            vm.stop()
            if failed:
                print("===== serial console (last 60 lines) =====")
                print(tail(vm.serial, 60))
                print("===== markers =====")
                print(tail(vm.marker_path, 40))
                print("===== guest journal (last 80 entries) =====")
                print(journal_text(vm.journal_entries(), 80))
                print("===== qemu =====")
                print(tail(vm.stderr, 20))
        api = state.get("api")
        if api is not None:
            if failed:
                print("===== API server: the daemon's writes =====")
                try:
                    for e in node_requests(api.request_log()):
                        if e["method"] != "GET":
                            print(f"{e['time']:.3f} {e['method']} {e['path']} {e.get('status')} {json.dumps(e.get('body'))[:200]}")
                except Exception as e:
                    print(f"(request log unavailable: {e})")
            api.stop()
        if failed and os.environ.get("NODEREBOOT_KEEP") == "1":
            print("work folder kept:", workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    say("timings: " + "; ".join(f"{k} {v:.0f} s" for k, v in state["timings"].items()))
    n_failed = len(checks.failed()) + (1 if error else 0)
    say(f"{len(checks.results) - len(checks.failed())} checks passed, {n_failed} failed")
    return 1 if n_failed else 0


if __name__ == "__main__":
    sys.exit(main())
