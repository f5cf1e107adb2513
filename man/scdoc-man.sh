#!/bin/sh
# Usage: scdoc-man.sh < page.scd > page.N
# scdoc (1.11) writes paragraph macros where mandoc -Tlint reports "skipping paragraph macro":
# right after a section header, right before another block macro, and just before the end of an
# indented block. Here the first two are dropped and the last is moved after the .RE (where it
# separates the list items as the rendering already shows), so the lint can reject every message.
set -eu
scdoc | awk '
        function flush() { if (held) { print ".P"; held = 0 } }
        /^\.(PP|P|LP)$/ {
                if (prev ~ /^\.(SH|SS)( |$)/) next      # right after a header
                held = 1; next
        }
        /^\.RE( |$)/ { print; prev = $0; next }     # a held paragraph break moves past the .RE
        /^\.(SH|SS|TP|IP)( |$)/ { held = 0 }        # right before a header or list item: empty
        { flush(); print; prev = $0 }
'
