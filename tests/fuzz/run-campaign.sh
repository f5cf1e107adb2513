#!/usr/bin/env bash
# A fuzzing campaign: every fuzz target (or the ones named) for SECONDS each (default 600) under
# libFuzzer with ASan+UBSan, on all cores (libFuzzer's fork mode, one worker per core), growing
# tests/fuzz/corpus/<target>/. Afterwards each corpus is minimised (libFuzzer's merge: only inputs
# that add coverage stay; hand-written seeds, the files whose name is not a SHA-1, always stay) and a
# table gives per target the executions per second, the coverage (edges), the corpus size and the
# crashes. Crash inputs are kept in build-fuzz/campaign/<target>/ (crash-*, timeout-*, oom-*).
#
#   tests/fuzz/run-campaign.sh [SECONDS] [TARGET...]
#
# Needs clang; builds build-fuzz/ (meson, -Db_sanitize=address,undefined) when it is missing.
set -euo pipefail

cd "$(dirname "$0")/../.."
root=$PWD
seconds=${1:-600}
[[ $seconds =~ ^[0-9]+$ && $seconds -gt 0 ]] || { echo "SECONDS must be a positive integer, got '$seconds'" >&2; exit 2; }
shift || true
workers=${FUZZ_WORKERS:-$(nproc)}
build=${FUZZ_BUILD:-$root/build-fuzz}

if [[ ! -f $build/build.ninja ]]; then
        command -v clang >/dev/null || { echo "run-campaign.sh: clang is needed (apt-get install clang)" >&2; exit 1; }
        CC=clang meson setup "$build" --buildtype=debugoptimized \
                -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
fi
ninja -C "$build" fuzzers >/dev/null

mapfile -t all < <(sed -n "/^fuzz_targets = \[/,/\]/p" tests/fuzz/meson.build | grep -o "'[a-z0-9-]*'" | tr -d "'")
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=("${all[@]}")
for t in "${targets[@]}"; do
        [[ -x $build/tests/fuzz/fuzz-$t-libfuzzer ]] || { echo "No fuzz target '$t' (known: ${all[*]})" >&2; exit 2; }
done

export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

uptime_s() { cut -d. -f1 /proc/uptime; }

rows=()
for t in "${targets[@]}"; do
        exe=$build/tests/fuzz/fuzz-$t-libfuzzer
        corpus=tests/fuzz/corpus/$t
        out=$build/campaign/$t
        rm -rf "$out"
        mkdir -p "$corpus" "$out/work"
        dict=()
        [[ -f tests/fuzz/$t.dict ]] && dict=(-dict="tests/fuzz/$t.dict")
        echo "== $t: $seconds s on $workers workers" >&2
        # libFuzzer times -max_total_time on the wall clock, which a stepped clock cuts short or
        # stretches (the clock-jump tests step it): the time is counted here on the monotonic
        # clock, running the fuzzer again for what is left, with a watchdog (sleep is monotonic).
        start=$(uptime_s)
        elapsed=0 execs=0 cov="" runs=0
        while (( elapsed < seconds - 2 && runs < 20 )); do
                left=$((seconds - elapsed))
                runs=$((runs + 1))
                # -close_fd_mask=2: the parsers' own log lines would drown libFuzzer's.
                (cd "$out/work" && exec setsid "$exe" -fork="$workers" -ignore_crashes=1 -ignore_timeouts=1 \
                        -ignore_ooms=1 -max_total_time="$left" -timeout=20 -rss_limit_mb=2560 -close_fd_mask=2 \
                        -artifact_prefix="$out/" "${dict[@]}" "$root/$corpus") >"$out/fuzz-$runs.log" 2>&1 &
                pid=$!
                (sleep $((left + 30)); kill -INT -- "-$pid" 2>/dev/null; sleep 15; kill -KILL -- "-$pid" 2>/dev/null) &
                watchdog=$!
                wait "$pid" || true
                kill "$watchdog" 2>/dev/null || true
                wait "$watchdog" 2>/dev/null || true
                # Fork mode's status lines: "#N: cov: C ft: F corp: K exec/s E oom/timeout/crash: a/b/c ..."
                last=$(grep -E '^#[0-9]+: cov: ' "$out/fuzz-$runs.log" | tail -n1 || true)
                execs=$((execs + $(sed -nE 's/^#([0-9]+): .*/\1/p' <<<"$last" | grep . || echo 0)))
                cov=$(sed -nE 's/.* cov: ([0-9]+) .*/\1/p' <<<"$last" | grep . || echo "$cov")
                elapsed=$(($(uptime_s) - start))
        done
        eps=$(( elapsed > 0 ? execs / elapsed : 0 ))
        crashes=$(find "$out" -maxdepth 1 \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | wc -l)

        # Minimise: keep what adds coverage, plus every hand-written seed (their copies under SHA-1
        # names are dropped). Only a merge that ran to its end replaces anything.
        min=$out/min
        mkdir -p "$min"
        if "$exe" -merge=1 -close_fd_mask=2 -rss_limit_mb=2560 -timeout=20 "$min" "$corpus" >"$out/merge.log" 2>&1 &&
           grep -q "MERGE-OUTER: .* new files" "$out/merge.log" && compgen -G "$min/*" >/dev/null; then
                while IFS= read -r -d '' seed; do
                        rm -f "$min/$(sha1sum <"$seed" | cut -d' ' -f1)"
                done < <(find "$corpus" -maxdepth 1 -type f -regextype posix-extended ! -regex '.*/[0-9a-f]{40}' -print0)
                find "$corpus" -maxdepth 1 -type f -regextype posix-extended -regex '.*/[0-9a-f]{40}' -delete
                cp -n "$min"/* "$corpus"/ 2>/dev/null || true
        else
                echo "   $t: the corpus merge did not finish (see $out/merge.log); corpus left as it grew" >&2
        fi
        size=$(find "$corpus" -maxdepth 1 -type f | wc -l)
        rows+=("$(printf '%-22s %8s %12s %9s %7s %7s %8s' "$t" "${elapsed}s" "$execs" "$eps" "${cov:-?}" "$size" "$crashes")")
        [[ $crashes -eq 0 ]] || echo "   $t: $crashes crash input(s) in $out/" >&2
done

printf '%-22s %8s %12s %9s %7s %7s %8s\n' target time execs exec/s edges corpus crashes
printf '%s\n' "${rows[@]}"
