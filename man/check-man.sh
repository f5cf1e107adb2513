#!/bin/sh
# Usage: check-man.sh MANDOC PAGE...
# Runs "mandoc -Tlint -W warning" on each generated page and fails on any message, with one
# exception: scdoc (1.11) writes a paragraph macro after every section header and before every
# header and indented block, which mandoc reports as "skipping paragraph macro: PP empty" or
# "... PP after SH". Those come from the generator, not from our text, and change nothing in the
# output; every other message fails the check.
set -u

mandoc=$1
shift
status=0
for page in "$@"; do
        out=$("$mandoc" -Tlint -W warning "$page" 2>&1)
        rc=$?
        rest=$(printf '%s\n' "$out" |
               grep -Ev '^mandoc: [^ ]+:[0-9]+:[0-9]+: WARNING: skipping paragraph macro: PP (empty|after SH)$' |
               grep -v '^$')
        if [ -n "$rest" ] || [ "$rc" -gt 2 ]; then
                printf '%s: mandoc -Tlint -W warning (exit status %s):\n%s\n' "$page" "$rc" "$rest"
                status=1
        else
                echo "$page: clean"
        fi
done
exit $status
