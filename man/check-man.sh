#!/bin/sh
# Usage: check-man.sh MANDOC PAGE...
# Runs "mandoc -Tlint -W warning" on each generated page and fails on any message (scdoc-man.sh
# already drops the paragraph macros scdoc writes where mandoc would skip them).
set -u

mandoc=$1
shift
status=0
for page in "$@"; do
        out=$("$mandoc" -Tlint -W warning "$page" 2>&1)
        rc=$?
        rest=$(printf '%s\n' "$out" | grep -v '^$')
        if [ -n "$rest" ] || [ "$rc" -gt 2 ]; then
                printf '%s: mandoc -Tlint -W warning (exit status %s):\n%s\n' "$page" "$rc" "$rest"
                status=1
        else
                echo "$page: clean"
        fi
done
exit $status
