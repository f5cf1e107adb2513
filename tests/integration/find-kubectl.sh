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
        (cd "$cache/debs" && apt-get download kubernetes-client >&2)
        deb=$(ls -t "$cache"/debs/kubernetes-client_*.deb | head -n1)
        dpkg-deb -x "$deb" "$cache"
fi
if [[ ! -x "$kubectl" ]]; then
        echo "find-kubectl: $kubectl missing after unpacking kubernetes-client" >&2
        exit 1
fi
echo "$kubectl"
