#!/usr/bin/env bash
# Installs what building and testing nodereboot needs, from Debian's archive only.
# Usage: tests/install-deps.sh [build|test|system]   (each level includes the ones before)
set -euo pipefail

level=${1:-test}

packages=(meson ninja-build pkg-config gcc clang libc6-dev
          libsystemd-dev libcurl4-openssl-dev libjson-c-dev libinih-dev libyaml-dev libmicrohttpd-dev
          scdoc mandoc)
if [[ $level != build ]]; then
        # python3-yaml: the test API server reads packaging/kubernetes/rbac.yaml (--rbac-manifests).
        packages+=(dbus python3-dbusmock python3-dbus python3-yaml openssl systemd curl)
        # test-metrics.py: a real Prometheus scrapes the endpoint; promtool checks the format.
        packages+=(prometheus)
        # check-completion.py: noderebootctl's completion in a real bash with its helpers.
        packages+=(bash-completion)
        # meson test --setup valgrind (tests/meson.build); it also ships valgrind/valgrind.h.
        packages+=(valgrind)
        # The test API server evaluates ValidatingAdmissionPolicies' CEL with @bufbuild/cel under
        # Node.js (tests/integration/cel); a machine that has node and npm already keeps its own.
        command -v node >/dev/null || packages+=(nodejs)
        command -v npm >/dev/null || packages+=(npm)
fi
if [[ $level == system ]]; then
        # build-essential: dpkg-buildpackage runs debian/rules with make (packaging/build-deb.sh).
        packages+=(systemd-container debootstrap qemu-system-x86 dpkg-dev debhelper lintian zstd
                   build-essential
                   # test-vm.py: socat relays qemu's guestfwd to the test API server; mkfs.ext4 -d.
                   socat e2fsprogs)
fi

missing=()
for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
        echo "Installing: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        if ! apt-get install -y -q --no-install-recommends "${missing[@]}"; then
                apt-get update -q
                apt-get install -y -q --no-install-recommends "${missing[@]}"
        fi
        # The tests run their own Prometheus on a free port; the package's service (enabled and
        # started on a machine that runs systemd) would only listen on :9090 for nothing.
        if [[ " ${missing[*]} " == *" prometheus "* ]] && [[ -d /run/systemd/system ]]; then
                systemctl disable --now prometheus.service >/dev/null 2>&1 || true
        fi
fi

if [[ $level != build ]]; then
        # The CEL evaluator's npm packages, exactly as package-lock.json pins them (npm ci), again
        # only when the lock file changed since the last install.
        cel="$(cd "$(dirname "$0")" && pwd)/integration/cel"
        if ! cmp -s "$cel/package-lock.json" "$cel/node_modules/.installed-lock.json"; then
                echo "Installing the CEL evaluator's npm packages in $cel"
                (cd "$cel" && npm ci --no-audit --no-fund --loglevel=error) ||
                        { echo "npm ci in $cel failed: the npm registry must be reachable" >&2; exit 1; }
                cp "$cel/package-lock.json" "$cel/node_modules/.installed-lock.json"
        fi
fi
