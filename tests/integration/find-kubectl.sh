#!/bin/bash
# Prints the path of a kubectl from Debian's kubernetes-client package (1.20), the real client the
# test API server is checked against. /usr/bin/kubectl may belong to another, conflicting package,
# so unless kubernetes-client itself is installed, its .deb is unpacked into a cache folder once.
set -euo pipefail

if dpkg-query -W -f='${Status}' kubernetes-client 2>/dev/null | grep -q '^install ok installed$'; then
        echo /usr/bin/kubectl
        exit 0
fi

cache="${NODEREBOOT_TEST_CACHE:-/var/cache/nodereboot-tests}"
kubectl="$cache/usr/bin/kubectl"
if [[ -x "$kubectl" ]]; then
        echo "$kubectl"
        exit 0
fi

mkdir -p "$cache/debs"
# A lock keeps parallel test runs from unpacking over each other.
exec 9>"$cache/.find-kubectl.lock"
flock 9
if [[ ! -x "$kubectl" ]]; then
        # The sandbox user _apt may not write into the cache; the download itself needs no privilege.
        (cd "$cache/debs" && apt-get -q -o APT::Sandbox::User=root download kubernetes-client >&2)
        for deb in "$cache"/debs/kubernetes-client_*.deb; do
                dpkg-deb -x "$deb" "$cache"
        done
fi
if [[ ! -x "$kubectl" ]]; then
        echo "find-kubectl: $kubectl missing after unpacking kubernetes-client" >&2
        exit 1
fi
echo "$kubectl"
