#!/usr/bin/env bash
# The Debian package: packaging/build-deb.sh builds nodereboot_<version>_<arch>.deb from the tree,
# lintian finds no error and no warning in it, and it holds what a node needs: the daemon, the
# unit (enabled through debhelper), the sysusers file (applied in postinst), the configuration as
# a conffile, the man pages the tree has, library dependencies computed by dpkg-shlibdeps, and a
# postrm that removes the state folder on purge only.
# Usage: test-deb.sh SOURCE_ROOT          (as root, or with the build dependencies installed)
set -euo pipefail

root=$(cd "${1:?usage: test-deb.sh SOURCE_ROOT}" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nodereboot-test-deb.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

failed=0
fail() { echo "FAIL: $*"; failed=1; }

# Build.
if ! deb=$("$root/packaging/build-deb.sh" "$tmp/out" 2>"$tmp/build.log"); then
        tail -n 60 "$tmp/build.log"
        echo "FAIL: packaging/build-deb.sh failed"
        exit 1
fi
echo "built $deb"
version=$(sed -nE "s/^ *version *: *'([^']+)'.*/\1/p" "$root/meson.build" | head -n1)
arch=$(dpkg-architecture -q DEB_HOST_ARCH)
[[ $(basename "$deb") == "nodereboot_${version}_${arch}.deb" ]] ||
        fail "the package is $(basename "$deb"), expected nodereboot_${version}_${arch}.deb" \
             "(debian/changelog and meson.build must name the same version)"

# lintian: no E: and no W: (overrides, if any, are in packaging/debian/*.lintian-overrides with a
# comment saying why).
echo "--- lintian"
command -v lintian >/dev/null || { echo "FAIL: lintian is missing (tests/install-deps.sh system)"; exit 1; }
lintian_status=0
lintian --fail-on error,warning --display-info --tag-display-limit 0 "$deb" >"$tmp/lintian.log" 2>&1 ||
        lintian_status=$?
grep -v 'running with root privileges is not recommended' "$tmp/lintian.log" >"$tmp/lintian.tags" || true
cat "$tmp/lintian.tags"
[[ $lintian_status -eq 0 ]] || fail "lintian exited with $lintian_status: errors or warnings (above)"
grep -q . "$tmp/lintian.tags" || echo "(lintian: no tags)"
echo "---"

# Contents.
dpkg-deb --fsys-tarfile "$deb" | tar -tf - | sed -e 's|^\./|/|' -e 's|/$||' >"$tmp/contents"
has() { grep -qxE "$1" "$tmp/contents" || fail "the package has no $2 ($1)"; }
has '/usr/sbin/noderebootd' 'daemon'
has '(/usr)?/lib/systemd/system/nodereboot\.service' 'unit'
has '/usr/lib/sysusers\.d/nodereboot\.conf' 'sysusers file'
has '/etc/nodereboot/nodereboot\.conf' 'configuration file'
has '/usr/share/doc/nodereboot/copyright' 'copyright file'
has '/usr/share/polkit-1/rules\.d/nodereboot\.rules' 'polkit rule that lets the user reboot'
if [[ -f $root/daemon/noderebootctl.c ]]; then
        has '/usr/bin/noderebootctl' 'control tool'
fi
# Every man page the tree has (man/NAME.SECTION.scd) is in the package.
shopt -s nullglob
pages=("$root"/man/*.scd)
for scd in "${pages[@]}"; do
        page=$(basename "$scd" .scd)                 # noderebootd.8
        section=${page##*.}
        has "/usr/share/man/man${section}/${page//./\\.}(\\.gz)?" "man page $page"
done
echo "man pages in the tree: ${#pages[@]}"

# Control fields and maintainer scripts.
dpkg-deb -I "$deb" conffiles >"$tmp/conffiles" 2>/dev/null || true
grep -qx '/etc/nodereboot/nodereboot.conf' "$tmp/conffiles" ||
        fail "/etc/nodereboot/nodereboot.conf is not a conffile (conffiles: $(tr '\n' ' ' <"$tmp/conffiles"))"

depends=$(dpkg-deb -f "$deb" Depends)
echo "Depends: $depends"
for lib in libc6 libcurl4 libjson-c5 libinih1 libyaml-0-2 libsystemd0; do
        [[ ", $depends," == *", $lib "* || ", $depends," == *", $lib,"* ]] ||
                fail "Depends: has no $lib (expected from dpkg-shlibdeps)"
done
# The libraries come from ${shlibs:Depends}, never from a hand-written list.
control_depends=$(sed -nE 's/^Depends: *//p' "$root/packaging/debian/control")
[[ $control_depends == *'${shlibs:Depends}'* && $control_depends == *'${misc:Depends}'* ]] ||
        fail "packaging/debian/control has Depends: $control_depends, without \${shlibs:Depends}, \${misc:Depends}"
! [[ $control_depends =~ (^|[ ,])lib ]] ||
        fail "packaging/debian/control names libraries by hand: Depends: $control_depends"
# logind asks polkit whether the user nodereboot may reboot: without polkitd it never may.
[[ ", $depends," == *", polkitd"[\ ,]* ]] || fail "Depends: has no polkitd"

mkdir "$tmp/control"
dpkg-deb -e "$deb" "$tmp/control"
grep -q 'systemd-sysusers.*nodereboot\.conf' "$tmp/control/postinst" ||
        fail "postinst does not create the user with systemd-sysusers"
grep -q "deb-systemd-helper enable 'nodereboot.service'" "$tmp/control/postinst" ||
        fail "postinst does not enable nodereboot.service"
# The user must exist before the unit is (re)started.
awk '/systemd-sysusers/ { s = NR } /deb-systemd-invoke/ { i = NR } END { exit !(s && i && s < i) }' \
        "$tmp/control/postinst" || fail "postinst starts the unit before it creates the user"
grep -q '_dh_action=restart' "$tmp/control/postinst" ||
        fail "postinst does not restart the unit after an upgrade"
if [[ -f $tmp/control/prerm ]] && grep -q 'deb-systemd-invoke stop' "$tmp/control/prerm"; then
        grep -q '"$1" = remove' "$tmp/control/prerm" ||
                fail "prerm stops the unit on upgrade too (expected: restart after the upgrade)"
fi

# postrm: purge removes /var/lib/nodereboot, remove keeps it. Run the real script against a
# DPKG_ROOT so nothing outside the temporary folder is touched.
postrm_keeps() {        # ACTION -> 0 if the state folder survived
        local r=$tmp/root-$1
        mkdir -p "$r/var/lib/nodereboot"
        echo '{}' >"$r/var/lib/nodereboot/state"
        # deb-systemd-helper and systemctl must not act on this machine: hide them.
        mkdir -p "$tmp/fakebin"
        printf '#!/bin/sh\nexit 0\n' >"$tmp/fakebin/deb-systemd-helper"
        printf '#!/bin/sh\nexit 0\n' >"$tmp/fakebin/systemctl"
        chmod +x "$tmp/fakebin/"*
        PATH=$tmp/fakebin:$PATH DPKG_ROOT=$r sh "$tmp/control/postrm" "$1" >/dev/null
        [[ -d $r/var/lib/nodereboot ]]
}
postrm_keeps remove || fail "postrm remove deleted the state folder"
! postrm_keeps purge || fail "postrm purge kept the state folder"

[[ $failed -eq 0 ]] && echo "PASS"
exit $failed
