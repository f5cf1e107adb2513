#!/usr/bin/env bash
# The demo: installs what it needs, builds, and rolls a reboot through a three-node test cluster
# on this machine (see tests/integration/demo.py).
set -euo pipefail
cd "$(dirname "$0")/.."
tests/install-deps.sh test >/dev/null
if [[ ! -d build-demo ]]; then
        meson setup build-demo >/dev/null
fi
ninja -C build-demo daemon/noderebootd >/dev/null
export BUILD_ROOT=$PWD/build-demo SOURCE_ROOT=$PWD
exec /usr/bin/python3 tests/integration/demo.py
