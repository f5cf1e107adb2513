#!/usr/bin/python3
"""Every configuration key the daemon knows (the ITEM table of daemon/core/config.c, which
--check-config reads with) is in the shipped conf/nodereboot.conf and described in
nodereboot.conf(5), and neither names a key the daemon does not know. Exits 1 naming each gap."""

import os
import re
import sys


def main():
    root = os.environ.get("SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
    src = open(os.path.join(root, "daemon", "core", "config.c")).read()
    conf = open(os.path.join(root, "conf", "nodereboot.conf")).read()
    man = open(os.path.join(root, "man", "nodereboot.conf.5.scd")).read()
    items = re.findall(r'ITEM\("(\w+)", "(\w+)"', src)
    known = {k for _, k in items}
    bad = []
    section = None
    in_conf = set()
    for line in conf.splitlines():
        m = re.match(r"^\[(\w+)\]", line)
        if m:
            section = m.group(1)
            continue
        m = re.match(r"^#?([A-Z]\w*)=", line)
        if m:
            in_conf.add((section, m.group(1)))
    for sec, key in items:
        if (sec, key) not in in_conf:
            bad.append(f"conf/nodereboot.conf: no [{sec}] {key}=")
        if f"*{key}=*" not in man:
            bad.append(f"nodereboot.conf(5): no *{key}=*")
    for sec, key in sorted(in_conf):
        if (sec, key) not in set(items):
            bad.append(f"conf/nodereboot.conf: [{sec}] {key}= is not a key the daemon knows")
    for key in sorted(set(re.findall(r"^\*([A-Z]\w*)=\*", man, re.M)) - known):
        bad.append(f"nodereboot.conf(5): *{key}=* is not a key the daemon knows")
    for line in bad:
        print(line)
    print(f"check-config-docs: {len(items)} keys, {len(bad)} problems")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
