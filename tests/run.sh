#!/usr/bin/env bash
# The whole test run: installs what it needs, builds with gcc and clang (-Werror), runs the unit,
# fuzz and integration suites under ASan+UBSan, and ends with one line "N passed, N failed".
set -uo pipefail

cd "$(dirname "$0")/.."
root=$PWD
jobs=$(nproc)

tests/install-deps.sh test

fail() { echo "$*" >&2; echo "0 passed, 1 failed"; exit 1; }

# A plain -Werror build with each compiler proves the code builds everywhere; the sanitizer build
# is the one whose tests run.
for cc in gcc clang; do
        rm -rf "build-ci-$cc"
        CC=$cc meson setup "build-ci-$cc" -Dwerror=true >/dev/null || fail "meson setup with $cc failed"
        ninja -C "build-ci-$cc" >/dev/null || { ninja -C "build-ci-$cc"; fail "build with $cc failed"; }
done

rm -rf build-ci-asan
meson setup build-ci-asan -Db_sanitize=address,undefined -Db_lundef=false >/dev/null || fail "meson setup (asan) failed"
ninja -C build-ci-asan >/dev/null || { ninja -C build-ci-asan; fail "asan build failed"; }

export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export NODEREBOOT_TEST_CACHE=${NODEREBOOT_TEST_CACHE:-/var/cache/nodereboot-tests}

meson test -C build-ci-asan --num-processes "$jobs" --print-errorlogs \
        --suite unit --suite fuzz --suite integration
status=$?

# Count every test meson ran (a Python scenario file counts once, its unittest cases are in its log).
read -r passed failed < <(/usr/bin/python3 - "$root/build-ci-asan/meson-logs/testlog.json" <<'PY'
import json, sys
passed = failed = 0
for line in open(sys.argv[1]):
    r = json.loads(line)["result"]
    if r in ("OK", "EXPECTEDFAIL", "SKIP"):
        passed += r != "SKIP"
    else:
        failed += 1
print(passed, failed)
PY
)
echo "${passed:-0} passed, ${failed:-1} failed"
[[ $status -eq 0 && ${failed:-1} -eq 0 ]]
