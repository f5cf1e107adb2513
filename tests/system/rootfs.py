#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A Debian root file system for the system tests (nspawn containers, VM disk images), built once
with debootstrap and cached as a tar.zst, so later runs only extract it (under 2 s).

    tests/system/rootfs.py --output DIR [--extra-packages P,Q] [--cache-dir DIR] [--mirror URL]
        -> extracts the root file system to DIR (created; must not exist or be empty) and prints DIR
    tests/system/rootfs.py --tarball [--extra-packages P,Q]
        -> builds or finds the cached tar.zst and prints its path
    tests/system/rootfs.py --key [--extra-packages P,Q]
        -> prints the cache key (changes with the package list and the recipe)

The root file system is Debian bookworm (debootstrap --variant=minbase) with systemd as init, D-Bus,
and the runtime libraries noderebootd links, so `apt-get install ./nodereboot_*.deb` works inside
it without a network. The .deb is NOT installed. Also:
  - /var/log/journal exists (persistent journal, so `journalctl -b -1` shows the previous boot);
  - /etc/machine-id is empty and /etc/hostname says "localhost": set both per machine;
  - apt's package cache is emptied; /etc/apt/sources.list names the mirror it was built from.

The mirror is the one this machine's apt uses for bookworm (the "deb URL suite" lines of
/etc/apt/sources.list and sources.list.d/*.list, the "URIs:" of sources.list.d/*.sources), unless
--mirror or $NODEREBOOT_TEST_MIRROR says otherwise; with none of these the build fails and names
the files it looked at. The project names no mirror of its own. The cache folder is
$NODEREBOOT_TEST_CACHE, default /var/cache/nodereboot-tests; the tarball is named by a hash of the
suite, variant, architecture, package list and RECIPE_VERSION. Builds are serialised with a lock
file per tarball, so parallel tests wait for one build instead of starting two. Needs root and debootstrap
(tests/install-deps.sh system) for the first build, root and zstd to extract.

From Python (tests/system/ on sys.path): `import rootfs; rootfs.extract(rootfs.ensure_tarball(), DIR)`.
"""

import argparse
import fcntl
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

SUITE = "bookworm"
VARIANT = "minbase"
# systemd as PID 1 with logind and the system bus; everything nodereboot's Depends: pulls in, so the
# .deb installs offline: its libraries and polkitd (logind asks polkit whether the user nodereboot
# may reboot; libpam-systemd and xml-core named because debootstrap does not resolve polkitd's
# virtual dependency default-logind); ca-certificates for a normal node; procps for debugging.
PACKAGES = ("systemd", "systemd-sysv", "dbus", "libcurl4", "libjson-c5", "libinih1",
            "libyaml-0-2", "libmicrohttpd12", "libsystemd0", "polkitd", "libpam-systemd", "xml-core",
            "ca-certificates", "procps")
# Bump when the steps after debootstrap change what the tarball holds.
RECIPE_VERSION = 1
# Where apt keeps its sources: one-line "deb URL suite component…" files and deb822 stanzas.
APT_SOURCES_LIST = "/etc/apt/sources.list"
APT_SOURCES_DIR = "/etc/apt/sources.list.d"


def log(msg):
    print("rootfs: " + msg, file=sys.stderr, flush=True)


def cache_dir():
    return os.environ.get("NODEREBOOT_TEST_CACHE") or "/var/cache/nodereboot-tests"


def _arch():
    return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                          check=True).stdout.strip()


def package_list(extra=()):
    return sorted(set(PACKAGES) | {p.strip() for p in extra if p.strip()})


def cache_key(extra=()):
    desc = {"suite": SUITE, "variant": VARIANT, "arch": _arch(), "packages": package_list(extra),
            "recipe": RECIPE_VERSION}
    return hashlib.sha256(json.dumps(desc, sort_keys=True).encode()).hexdigest()[:16]


def tarball_path(extra=(), cache=None):
    return os.path.join(cache or cache_dir(), f"rootfs-{SUITE}-{_arch()}-{cache_key(extra)}.tar.zst")


def apt_source_files(etc_apt=None):
    """The files apt reads its sources from, in apt's order: sources.list, then sources.list.d/
    *.list and *.sources by name. etc_apt replaces /etc/apt (for tests)."""
    one_line = os.path.join(etc_apt, "sources.list") if etc_apt else APT_SOURCES_LIST
    folder = os.path.join(etc_apt, "sources.list.d") if etc_apt else APT_SOURCES_DIR
    parts = sorted(glob.glob(os.path.join(folder, "*.list")) + glob.glob(os.path.join(folder, "*.sources")),
                   key=os.path.basename)
    return [one_line] + parts


def _one_line_entries(text):
    """(types, uris, suites) of each "deb [options] URL suite [component…]" line."""
    entries = []
    for line in text.splitlines():
        words = re.sub(r"\[[^\]]*\]", " ", line.split("#", 1)[0]).split()
        if len(words) >= 3:
            entries.append(([words[0]], [words[1]], [words[2]]))
    return entries


def _deb822_entries(text):
    """(types, uris, suites) of each enabled deb822 stanza ("Types:", "URIs:", "Suites:")."""
    entries = []
    for stanza in re.split(r"\n[ \t]*\n", text):
        fields, key = {}, None
        for line in stanza.splitlines():
            if line.startswith("#"):
                continue
            if line[:1].isspace():          # a continuation line adds to the field above
                if key:
                    fields[key] += line.split()
                continue
            if ":" not in line:
                key = None
                continue
            key, value = line.split(":", 1)
            key = key.strip().lower()
            fields[key] = value.split()
        if (fields.get("enabled") or ["yes"])[0].lower() == "no":
            continue
        if fields.get("uris") and fields.get("suites"):
            entries.append((fields.get("types") or ["deb"], fields["uris"], fields["suites"]))
    return entries


def apt_sources(files):
    """(types, uris, suites) of every apt source entry in files; missing files are skipped."""
    entries = []
    for path in files:
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            continue
        entries += _deb822_entries(text) if path.endswith(".sources") else _one_line_entries(text)
    return entries


def mirror(etc_apt=None):
    """The Debian mirror this machine's apt uses for SUITE (a "deb" source, not deb-src), from
    $NODEREBOOT_TEST_MIRROR or the apt sources. The project names no archive host of its own: a
    machine without such a source must say which mirror to use."""
    env = os.environ.get("NODEREBOOT_TEST_MIRROR")
    if env:
        return env.rstrip("/")
    files = apt_source_files(etc_apt)
    for types, uris, suites in apt_sources(files):
        if "deb" in types and SUITE in suites:
            for uri in uris:
                if uri.startswith(("http://", "https://", "file:/")):
                    return uri.rstrip("/")
    looked = ", ".join(p if os.path.exists(p) else p + " (absent)" for p in files)
    raise RuntimeError(f"no Debian mirror for {SUITE} in this machine's apt sources (looked for a \"deb\" "
                       f"entry with suite {SUITE} and an http, https or file URI in: {looked}); "
                       "pass --mirror URL or set NODEREBOOT_TEST_MIRROR")


def _run(args, **kw):
    log("$ " + " ".join(args))
    subprocess.run(args, check=True, **kw)


def _build(root, extra, mirror_url):
    """debootstrap into root, then the finishing touches."""
    _run(["debootstrap", "--variant=" + VARIANT, "--components=main",
          "--include=" + ",".join(package_list(extra)), SUITE, root, mirror_url],
         stdout=sys.stderr, stderr=sys.stderr, timeout=1200)
    # Persistent journal: journald (Storage=auto) keeps it on disk when the folder exists.
    os.makedirs(os.path.join(root, "var/log/journal"), exist_ok=True)
    # Every machine made from this tree sets its own identity.
    with open(os.path.join(root, "etc/machine-id"), "w"):
        pass
    with open(os.path.join(root, "etc/hostname"), "w") as f:
        f.write("localhost\n")
    for p in glob.glob(os.path.join(root, "var/cache/apt/archives/*.deb")) + \
            glob.glob(os.path.join(root, "var/cache/apt/*.bin")):
        os.unlink(p)
    with open(os.path.join(root, "etc/apt/sources.list"), "w") as f:
        f.write(f"deb {mirror_url} {SUITE} main\n")


def _tar_create(root, out):
    tar = subprocess.Popen(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "--acls",
                            "-C", root, "-cf", "-", "."], stdout=subprocess.PIPE)
    with open(out, "wb") as f:
        zstd = subprocess.run(["zstd", "-q", "-T0", "-6", "-c"], stdin=tar.stdout, stdout=f)
    tar.stdout.close()
    if tar.wait() != 0 or zstd.returncode != 0:
        raise RuntimeError(f"packing {root} failed (tar {tar.returncode}, zstd {zstd.returncode})")


def ensure_tarball(extra=(), cache=None, mirror_url=None, force=False):
    """The cached tarball for this package list, built first if missing. Returns its path."""
    cache = cache or cache_dir()
    os.makedirs(cache, exist_ok=True)
    path = tarball_path(extra, cache)
    if os.path.exists(path) and not force:
        return path
    # One lock per tarball: a second process wanting the same one waits for it instead of building
    # it again; different package lists build side by side.
    with open(path[:-len(".tar.zst")] + ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"another process is building {os.path.basename(path)}; waiting for it")
            fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(path) and not force:   # another process built it meanwhile
            return path
        if os.geteuid() != 0:
            raise RuntimeError("building the root file system needs root")
        if not shutil.which("debootstrap"):
            raise RuntimeError("debootstrap is missing (tests/install-deps.sh system)")
        mirror_url = mirror_url or mirror()
        started = time.monotonic()
        log(f"building {os.path.basename(path)}: debootstrap {SUITE} from {mirror_url} (2-3 minutes)")
        work = tempfile.mkdtemp(prefix="rootfs-build-", dir=cache)
        try:
            root = os.path.join(work, "root")
            _build(root, extra, mirror_url)
            tmp = os.path.join(work, "rootfs.tar.zst")
            _tar_create(root, tmp)
            os.rename(tmp, path)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        log(f"built {path} ({os.path.getsize(path) >> 20} MiB) in {time.monotonic() - started:.0f} s")
        return path


def extract(tarball, dest):
    """Extracts the tarball into dest (created; must not exist or be empty). Returns dest."""
    os.makedirs(dest, exist_ok=True)
    if os.listdir(dest):
        raise RuntimeError(f"{dest} is not empty")
    zstd = subprocess.Popen(["zstd", "-q", "-d", "-c", tarball], stdout=subprocess.PIPE)
    tar = subprocess.run(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "--acls",
                          "-C", dest, "-xf", "-"], stdin=zstd.stdout)
    zstd.stdout.close()
    if zstd.wait() != 0 or tar.returncode != 0:
        raise RuntimeError(f"extracting {tarball} failed (zstd {zstd.returncode}, tar {tar.returncode})")
    return dest


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--output", metavar="DIR", help="extract the root file system to DIR, print DIR")
    what.add_argument("--tarball", action="store_true",
                      help="print the cached tarball's path (build it first if missing)")
    what.add_argument("--key", action="store_true", help="print the cache key")
    ap.add_argument("--extra-packages", default="", metavar="P,Q",
                    help="more packages for --include (a different cache entry)")
    ap.add_argument("--cache-dir", help="default: $NODEREBOOT_TEST_CACHE or /var/cache/nodereboot-tests")
    ap.add_argument("--mirror", help="default: the mirror of this machine's apt sources")
    ap.add_argument("--rebuild", action="store_true", help="build again even if cached")
    args = ap.parse_args()
    extra = [p for p in args.extra_packages.split(",") if p.strip()]
    try:
        if args.key:
            print(cache_key(extra))
            return 0
        tarball = ensure_tarball(extra, args.cache_dir, args.mirror, args.rebuild)
        if args.tarball:
            print(tarball)
            return 0
        started = time.monotonic()
        extract(tarball, args.output)
        log(f"extracted {os.path.basename(tarball)} to {args.output} in {time.monotonic() - started:.1f} s")
        print(os.path.abspath(args.output))
        return 0
    except (RuntimeError, OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
        log(f"error: {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
