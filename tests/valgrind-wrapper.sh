#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The exe_wrapper of "meson test --setup valgrind", which meson puts in front of every test's
# command: a program built in the build tree (a unit test) runs under $NODEREBOOT_VALGRIND; an
# interpreter (python3, bash: the scripted tests) runs as it is, since valgrind would find Python's
# problems, not ours, and slow it 50-fold. Those tests put valgrind in front of the daemons and
# noderebootctl they start instead (tests/integration/bench.py).
# Usage: valgrind-wrapper.sh BUILD_ROOT COMMAND [ARGS...]
build_root=$1
shift
case $1 in
"$build_root"/*)
        # Word splitting intended (and no globbing): the valgrind command line of tests/meson.build.
        set -f
        # shellcheck disable=SC2086
        exec $NODEREBOOT_VALGRIND "$@" ;;
*)
        exec "$@" ;;
esac
