#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The VM test's guest: a Debian bookworm root file system (tests/system/rootfs.py plus a kernel),
the kernel and a reduced initrd to boot it directly, and a disk image per run.

    tests/system/vm/vmimage.py   builds the cached base (first time: 5-15 minutes, mostly
                                 debootstrap and the kernel package's own initrd) and prints its paths

    ensure_base()  -> Base(tarball, kernel, initrd), cached in $NODEREBOOT_TEST_CACHE (default
                      /var/cache/nodereboot-tests) as vm-base-<suite>-<key>.{tar.zst,vmlinuz,initrd}
    make_disk(base, deb, workdir, files, enable) -> (ext4 image with the .deb installed, timings)

The base is rootfs.py's tree with udev, kmod, linux-image-amd64 and initramfs-tools added (a cache
entry of its own there), then: an initrd with only virtio_pci, virtio_blk and ext4 (MODULES=list:
6.5 MB instead of 36 MB, and a faster boot), the kernel modules no virtio guest needs removed,
/etc/fstab, systemd-networkd with a static 10.0.2.15/24 on the first Ethernet link (qemu's user
network; no DHCP wait), and a console-less guest's needless units masked. It holds no .deb, no
kubeconfig and no test units: those change per run and go in with make_disk(), which installs the
.deb with apt-get offline (no network inside: a dependency the image lacks is an error naming it).

Commands inside the tree run under chroot in private mount and network namespaces (/proc and /dev
mounted there, gone when the command ends); the host's PID 1 need not be systemd.
"""

import fcntl
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import rootfs  # noqa: E402

# udev loads the virtio drivers (network, console) and makes /dev/virtio-ports/NAME; kmod for
# modprobe; the kernel package brings initramfs-tools for the reduced initrd.
VM_PACKAGES = ("udev", "kmod", "linux-image-amd64", "initramfs-tools")
INITRD_MODULES = ("virtio_pci", "virtio_blk", "ext4")
# Kernel modules no qemu guest with virtio devices needs (about 250 of the 390 MB): a smaller image
# to pack and mkfs, and nothing for udev to load for hardware that is not there.
PRUNED_MODULES = ("sound", "drivers/gpu", "drivers/media", "drivers/infiniband", "drivers/iio",
                  "drivers/staging", "drivers/hwmon", "drivers/usb", "drivers/scsi", "drivers/net/ethernet",
                  "drivers/net/wireless", "drivers/bluetooth", "drivers/isdn", "drivers/mmc", "drivers/mtd",
                  "drivers/nfc", "drivers/pcmcia", "net/wireless", "net/mac80211", "net/bluetooth")
# Units a test guest does not need at boot (getty@tty1: the VM has no display).
MASKED_UNITS = ("e2scrub_reap.service", "getty@tty1.service")
# Bump when prepare_base() changes what the base holds.
RECIPE_VERSION = 2

NETWORK = """# qemu's user network: the guest is 10.0.2.15; 10.0.2.100 is forwarded to the host (guestfwd).
[Match]
Type=ether

[Network]
Address=10.0.2.15/24
Gateway=10.0.2.2
LinkLocalAddressing=no
IPv6AcceptRA=no
"""

FSTAB = "/dev/vda / ext4 rw,errors=remount-ro 0 1\n"

INSIDE_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
              "DEBIAN_FRONTEND": "noninteractive", "TERM": "dumb"}


def log(msg):
    print("vmimage: " + msg, file=sys.stderr, flush=True)


class ChrootError(RuntimeError):
    def __init__(self, message, output):
        super().__init__(message)
        self.output = output


class Base:
    def __init__(self, tarball, kernel, initrd):
        self.tarball, self.kernel, self.initrd = tarball, kernel, initrd


def chroot(root, *cmd, timeout=600, log_path=None):
    """Runs cmd inside root (chroot, private mount namespace with /proc and /dev). Raises on failure."""
    script = ('set -e; mount -t proc proc "$1/proc"; mount --rbind /dev "$1/dev"; root=$1; shift; '
              'exec chroot "$root" "$@"')
    # --net: no network inside (only a loopback that is down), so "offline" is not a hope: an
    # apt-get that would need to download something fails.
    args = ["unshare", "--mount", "--propagation", "private", "--net", "--fork", "/bin/sh", "-c", script, "sh",
            root] + list(cmd)
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=dict(INSIDE_ENV),
                       stdin=subprocess.DEVNULL)
    if log_path:
        with open(log_path, "a") as f:
            f.write(f"$ {' '.join(cmd)}\n{r.stdout}{r.stderr}(exit {r.returncode})\n")
    if r.returncode != 0:
        raise ChrootError(f"in {root}: {' '.join(cmd)}: exit {r.returncode}\n{r.stdout[-2000:]}{r.stderr[-2000:]}",
                          r.stdout + r.stderr)
    return r


def base_key():
    desc = {"rootfs": rootfs.cache_key(VM_PACKAGES), "modules": INITRD_MODULES, "pruned": PRUNED_MODULES,
            "masked": MASKED_UNITS, "network": NETWORK, "fstab": FSTAB, "recipe": RECIPE_VERSION}
    return hashlib.sha256(json.dumps(desc, sort_keys=True).encode()).hexdigest()[:16]


def base_paths(cache=None):
    stem = os.path.join(cache or rootfs.cache_dir(), f"vm-base-{rootfs.SUITE}-{base_key()}")
    return Base(stem + ".tar.zst", stem + ".vmlinuz", stem + ".initrd")


def kernel_version(root):
    kernels = sorted(glob.glob(os.path.join(root, "boot", "vmlinuz-*")))
    if len(kernels) != 1:
        raise RuntimeError(f"expected one kernel in {root}/boot, found {kernels}")
    return os.path.basename(kernels[0])[len("vmlinuz-"):]


def prepare_base(root, kernel_out, initrd_out):
    """The VM-specific steps on a fresh rootfs.py tree; the kernel and initrd are copied out."""
    kver = kernel_version(root)
    moddir = os.path.join(root, "lib/modules", kver, "kernel")
    for sub in PRUNED_MODULES:
        shutil.rmtree(os.path.join(moddir, sub), ignore_errors=True)
    chroot(root, "depmod", "-a", kver)
    conf = os.path.join(root, "etc/initramfs-tools/initramfs.conf")
    with open(conf) as f:
        lines = f.read().splitlines()
    # MODULES=list: only the modules named in /etc/initramfs-tools/modules. gzip: the tree has no zstd.
    lines = [("MODULES=list" if l.startswith("MODULES=") else "COMPRESS=gzip" if l.startswith("COMPRESS=") else l)
             for l in lines]
    with open(conf, "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(root, "etc/initramfs-tools/modules"), "a") as f:
        f.write("".join(m + "\n" for m in INITRD_MODULES))
    started = time.monotonic()
    chroot(root, "mkinitramfs", "-o", "/boot/initrd.vm", kver)
    log(f"reduced initrd for {kver} in {time.monotonic() - started:.0f} s")
    shutil.copyfile(os.path.join(root, "boot", "vmlinuz-" + kver), kernel_out)
    shutil.copyfile(os.path.join(root, "boot", "initrd.vm"), initrd_out)
    # The VM boots the kernel and initrd given to qemu; the disk needs neither initrd.
    for p in glob.glob(os.path.join(root, "boot", "initrd*")):
        os.unlink(p)

    with open(os.path.join(root, "etc/fstab"), "w") as f:
        f.write(FSTAB)
    os.makedirs(os.path.join(root, "etc/systemd/network"), exist_ok=True)
    with open(os.path.join(root, "etc/systemd/network/10-vm.network"), "w") as f:
        f.write(NETWORK)
    chroot(root, "systemctl", "enable", "systemd-networkd.service")
    chroot(root, "systemctl", "mask", *MASKED_UNITS)


def _tar_create(root, out):
    """root as a tar.zst that rootfs.extract() unpacks (same tar options as rootfs.py)."""
    with open(out, "wb") as f:
        tar = subprocess.Popen(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "--acls",
                                "-C", root, "-cf", "-", "."], stdout=subprocess.PIPE)
        zstd = subprocess.run(["zstd", "-q", "-T0", "-6", "-c"], stdin=tar.stdout, stdout=f)
        tar.stdout.close()
    if tar.wait() != 0 or zstd.returncode != 0:
        raise RuntimeError(f"packing {root} failed (tar {tar.returncode}, zstd {zstd.returncode})")


def ensure_base(cache=None):
    """The cached base (tarball, kernel, initrd), built first if missing."""
    cache = cache or rootfs.cache_dir()
    os.makedirs(cache, exist_ok=True)
    base = base_paths(cache)
    done = lambda: all(os.path.exists(p) for p in (base.tarball, base.kernel, base.initrd))  # noqa: E731
    if done():
        return base
    with open(os.path.join(cache, "vm-base.lock"), "w") as lock:
        log(f"waiting for the build lock in {cache}")
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done():
            return base
        started = time.monotonic()
        tarball = rootfs.ensure_tarball(VM_PACKAGES, cache)
        log(f"building {os.path.basename(base.tarball)} from {os.path.basename(tarball)}")
        work = tempfile.mkdtemp(prefix="vm-base-build-", dir=cache)
        try:
            root = rootfs.extract(tarball, os.path.join(work, "root"))
            prepare_base(root, os.path.join(work, "vmlinuz"), os.path.join(work, "initrd"))
            _tar_create(root, os.path.join(work, "base.tar.zst"))
            # The tarball last: it is what done() looks for first.
            os.rename(os.path.join(work, "vmlinuz"), base.kernel)
            os.rename(os.path.join(work, "initrd"), base.initrd)
            os.rename(os.path.join(work, "base.tar.zst"), base.tarball)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        log(f"built the VM base in {time.monotonic() - started:.0f} s")
        return base


def _ids(root, name):
    ids = {}
    for db in ("passwd", "group"):
        with open(os.path.join(root, "etc", db)) as f:
            for line in f:
                fields = line.split(":")
                if fields[0] == name:
                    ids[db] = int(fields[2])
    return ids


def make_disk(base, deb, workdir, files, enable=(), size="2G", log_path=None):
    """An ext4 disk image from the base with the .deb installed (apt-get, offline) and files added.

    files: {path in the guest: (text, mode, group name or None)}; enable: unit names under
    /etc/systemd/system to add to multi-user.target.wants. Returns (image path, timings)."""
    timings = {}
    root = os.path.join(workdir, "root")
    t = time.monotonic()
    rootfs.extract(base.tarball, root)
    timings["extract"] = time.monotonic() - t

    t = time.monotonic()
    inside = "/var/tmp/" + os.path.basename(deb)
    shutil.copyfile(deb, os.path.join(root, inside.lstrip("/")))
    try:
        chroot(root, "apt-get", "install", "-y", "-q", "--no-install-recommends", "-o", "Dpkg::Use-Pty=0", inside,
               log_path=log_path)
    except ChrootError as e:
        # Offline: a dependency missing from the image cannot be downloaded. Say which.
        lines = e.output.splitlines()
        new = []
        for i, line in enumerate(lines):
            if line.startswith("The following NEW packages will be installed"):
                for more in lines[i + 1:]:
                    if not more.startswith(" "):
                        break
                    new += more.split()
        missing = [p for p in new if p != "nodereboot"]
        if missing:
            raise RuntimeError(f"apt-get install of {os.path.basename(deb)} needs packages the image lacks "
                               f"(no network inside): {' '.join(missing)}; add them to rootfs.py's PACKAGES "
                               f"(or vmimage.VM_PACKAGES)") from None
        raise
    os.unlink(os.path.join(root, inside.lstrip("/")))
    timings["install"] = time.monotonic() - t

    for path, (text, mode, group) in files.items():
        full = os.path.join(root, path.lstrip("/"))
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(text)
        os.chmod(full, mode)
        if group:
            gid = _ids(root, group).get("group")
            if gid is None:
                raise RuntimeError(f"no group {group} in the image")
            os.chown(full, 0, gid)
    wants = os.path.join(root, "etc/systemd/system/multi-user.target.wants")
    os.makedirs(wants, exist_ok=True)
    for unit in enable:
        os.symlink("/etc/systemd/system/" + unit, os.path.join(wants, unit))

    t = time.monotonic()
    image = os.path.join(workdir, "disk.ext4")
    r = subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "vmroot", "-d", root, image, size],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError(f"mkfs.ext4 failed: {r.stderr}")
    timings["mkfs"] = time.monotonic() - t
    shutil.rmtree(root)
    return image, timings


def main():
    import argparse
    ap = argparse.ArgumentParser(description="Builds (or finds) the VM test's cached base image and prints "
                                             "the paths of its tarball, kernel and initrd.")
    ap.add_argument("--cache-dir", help="default: $NODEREBOOT_TEST_CACHE or /var/cache/nodereboot-tests")
    args = ap.parse_args()
    base = ensure_base(args.cache_dir)
    print(base.tarball)
    print(base.kernel)
    print(base.initrd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
