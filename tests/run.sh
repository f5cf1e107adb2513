#!/usr/bin/env bash
# The whole test run: installs what it needs, builds release (-O3) with gcc and clang (-Werror),
# runs the unit, fuzz and integration suites under ASan+UBSan (the fuzz corpora with clang's too),
# the unit and integration suites under valgrind, then the system suite, and ends with one line
# "N passed, N failed".
set -uo pipefail

cd "$(dirname "$0")/.."
root=$PWD
jobs=$(nproc)

tests/install-deps.sh system

fail() { echo "$*" >&2; echo "0 passed, 1 failed"; exit 1; }

# A release -Werror build with each compiler proves the code builds everywhere, at the optimisation
# level whose extra analysis (maybe-uninitialized, stringop-*, format-truncation) packagers meet; the
# sanitizer build (debugoptimized) is the one whose tests run.
for cc in gcc clang; do
        rm -rf "build-ci-$cc"
        CC=$cc meson setup "build-ci-$cc" --buildtype=release -Dwerror=true >/dev/null ||
                fail "meson setup (release) with $cc failed"
        ninja -C "build-ci-$cc" >/dev/null ||
                { ninja -C "build-ci-$cc"; fail "release build with $cc failed"; }
done

rm -rf build-ci-asan
meson setup build-ci-asan -Db_sanitize=address,undefined -Db_lundef=false >/dev/null || fail "meson setup (asan) failed"
ninja -C build-ci-asan >/dev/null || { ninja -C build-ci-asan; fail "asan build failed"; }

export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export NODEREBOOT_TEST_CACHE=${NODEREBOOT_TEST_CACHE:-/var/cache/nodereboot-tests}

meson test -C build-ci-asan --num-processes "$jobs" --print-errorlogs --logbase fast \
        --suite unit --suite fuzz --suite integration
status=$?

# The fuzz corpora again under ASan+UBSan built by clang (gcc's build above): each compiler's
# sanitizers catch what the other's miss. Only the fuzz targets are built.
rm -rf build-ci-asan-clang
CC=clang meson setup build-ci-asan-clang -Db_sanitize=address,undefined -Db_lundef=false >/dev/null ||
        fail "meson setup (asan, clang) failed"
mapfile -t fuzz_exes < <(sed -n "/^fuzz_targets = \[/,/\]/p" tests/fuzz/meson.build | grep -o "'[a-z0-9-]*'" |
                         tr -d "'" | sed 's|^|tests/fuzz/fuzz-|')
ninja -C build-ci-asan-clang "${fuzz_exes[@]}" >/dev/null ||
        { ninja -C build-ci-asan-clang "${fuzz_exes[@]}"; fail "fuzz targets' build with clang failed"; }
meson test -C build-ci-asan-clang --no-rebuild --num-processes "$jobs" --print-errorlogs --logbase fuzz-clang \
        --suite fuzz
status=$((status || $?))

# The unit and integration suites again under valgrind (meson test --setup valgrind, see
# tests/meson.build): memcheck finds what ASan does not, reads of uninitialised memory above all,
# in the binaries as built without instrumentation. A build of its own: valgrind cannot run ASan's
# binaries, and the release builds (-O3, no -g) would give stack traces without file and line.
rm -rf build-ci-valgrind
meson setup build-ci-valgrind --buildtype=debugoptimized >/dev/null || fail "meson setup (valgrind) failed"
ninja -C build-ci-valgrind >/dev/null || { ninja -C build-ci-valgrind; fail "valgrind build failed"; }
# (its log: testlog-valgrind.json, meson names it after the setup)
meson test -C build-ci-valgrind --setup valgrind --num-processes "$jobs" --print-errorlogs \
        --suite unit --suite integration --no-suite scale
status=$((status || $?))

# The system tests (the .deb, the hardened unit, real systemd in nspawn containers, a real kernel
# reboot in qemu) run after the others: they are heavy, and the integration tests include timing
# assertions (lock hand-off well under a second) that should not share two cores with an emulator.
meson test -C build-ci-asan --num-processes "$jobs" --print-errorlogs --logbase system --suite system
status=$((status || $?))

# Count every test meson ran (a Python scenario file counts once, its unittest cases are in its log).
read -r passed failed < <(/usr/bin/python3 - "$root"/build-ci-asan/meson-logs/{fast,system}.json \
                          "$root"/build-ci-asan-clang/meson-logs/fuzz-clang.json \
                          "$root"/build-ci-valgrind/meson-logs/testlog-valgrind.json <<'PY'
import json, os, sys
passed = failed = 0
for path in sys.argv[1:]:
    if not os.path.exists(path):
        failed += 1          # a suite that left no log did not run
        continue
    for line in open(path):
        r = json.loads(line)["result"]
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r != "SKIP":
            failed += 1
print(passed, failed)
PY
)
echo "${passed:-0} passed, ${failed:-1} failed"
[[ $status -eq 0 && ${failed:-1} -eq 0 ]]
