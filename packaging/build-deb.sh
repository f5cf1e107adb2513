#!/usr/bin/env bash
# Builds the Debian package from this tree:
#
#     packaging/build-deb.sh [OUTDIR]        # default OUTDIR: build-deb/ at the top of the tree
#
# Installs the build dependencies with apt-get (as root; otherwise they must be there already),
# copies the tree to a temporary folder with packaging/debian/ as debian/ (the project's top level
# has no debian/ of its own), runs dpkg-buildpackage -us -uc -b there, and copies the .deb files to
# OUTDIR. The build log goes to stderr; stdout gets one line, the path of nodereboot_<ver>_<arch>.deb.
# For tests, NODEREBOOT_DEB_VERSION=V builds the same tree as version V (see below).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/build-deb}
mkdir -p "$out"
out=$(cd "$out" && pwd)

log() { echo "build-deb: $*" >&2; }

export DEBIAN_FRONTEND=noninteractive

apt_install() {
        if ! apt-get "$@" >&2; then
                apt-get update -q >&2
                apt-get "$@" >&2
        fi
}

# dpkg-buildpackage and dpkg-checkbuilddeps themselves.
if ! command -v dpkg-buildpackage >/dev/null || ! command -v dpkg-checkbuilddeps >/dev/null; then
        [[ $EUID -eq 0 ]] || { log "dpkg-dev is missing; install it (apt-get install dpkg-dev)"; exit 1; }
        apt_install install -y -q --no-install-recommends dpkg-dev
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nodereboot-deb.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
src=$tmp/nodereboot

# The working tree as a clean clone would have it plus local changes: tracked and untracked files,
# not what .gitignore excludes (build folders). Without git, a copy without the build folders.
mkdir -p "$src"
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git -C "$root" ls-files -z --cached --others --exclude-standard |
                while IFS= read -r -d '' f; do
                        # A tracked file deleted in the working tree is left out.
                        [[ -e $root/$f || -L $root/$f ]] && printf '%s\0' "$f"
                done |
                tar -C "$root" --null --no-recursion -T - -cf - | tar -C "$src" -xf -
else
        tar -C "$root" --exclude='./build*' --exclude='./.git' -cf - . | tar -C "$src" -xf -
fi
rm -rf "$src/debian"
cp -a "$root/packaging/debian" "$src/debian"

# NODEREBOOT_DEB_VERSION=V (tests only, e.g. the upgrade test's N+1): the copy's changelog gets a
# new top entry with version V, so the package is this very tree under another version. The tree's
# own changelog is not touched; unset (the default), the changelog is used as it is.
if [[ -n ${NODEREBOOT_DEB_VERSION:-} ]]; then
        v=$NODEREBOOT_DEB_VERSION
        dpkg --validate-version -- "$v" >/dev/null 2>&1 ||
                { log "NODEREBOOT_DEB_VERSION=$v is not a valid Debian version"; exit 1; }
        cl=$src/debian/changelog
        prev=$(dpkg-parsechangelog -l "$cl" -S Version)
        {
                # The format is strict: "-- " with one space before the maintainer, two spaces
                # between the address and an RFC 2822 date.
                printf '%s (%s) %s; urgency=medium\n\n' \
                        "$(dpkg-parsechangelog -l "$cl" -S Source)" "$v" "$(dpkg-parsechangelog -l "$cl" -S Distribution)"
                printf '  * Test build: the %s tree as %s (packaging/build-deb.sh,\n' "$prev" "$v"
                printf '    NODEREBOOT_DEB_VERSION).\n\n'
                printf ' -- %s  %s\n\n' "$(dpkg-parsechangelog -l "$cl" -S Maintainer)" "$(LC_ALL=C date -R)"
                cat "$cl"
        } >"$cl.new"
        mv "$cl.new" "$cl"
        got=$(dpkg-parsechangelog -l "$cl" -S Version)
        [[ $got == "$v" ]] || { log "the new changelog entry says version '$got', not '$v'"; exit 1; }
        log "version $v (a changelog entry on top of $prev, in the copy only)"
fi

cd "$src"
# dpkg-checkbuilddeps leaves out build-essential (make, gcc), which Build-Depends never lists.
if ! dpkg-checkbuilddeps >/dev/null 2>&1 || ! dpkg-checkbuilddeps -d build-essential:native >/dev/null 2>&1; then
        if [[ $EUID -ne 0 ]]; then
                dpkg-checkbuilddeps || true
                log "build dependencies are missing; run as root to install them"
                exit 1
        fi
        log "installing the build dependencies"
        apt_install build-dep -y -q --no-install-recommends "$src"
        dpkg-checkbuilddeps
        dpkg-checkbuilddeps -d build-essential:native
fi

log "building in $src"
dpkg-buildpackage -us -uc -b -Jauto >&2

version=$(dpkg-parsechangelog -S Version)
arch=$(dpkg-architecture -q DEB_HOST_ARCH)
deb=nodereboot_${version}_${arch}.deb
[[ -f $tmp/$deb ]] || { log "dpkg-buildpackage made no $deb"; exit 1; }
cp "$tmp"/*.deb "$tmp"/*.buildinfo "$tmp"/*.changes "$out"/
log "done: $(cd "$out" && ls -- *.deb | tr '\n' ' ')"
echo "$out/$deb"
