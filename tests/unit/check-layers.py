#!/usr/bin/python3
"""daemon/ is built in layers: basic, then kube, host and integrations (each on basic only), then
core, then noderebootctl's commands (ctl), then the two programs. A file may include headers of its own folder and of the layers below it, never of one
above or beside it. Prints every include that breaks this and exits 1; a header that no folder
holds (a system header, build-config.h) is not ours to judge."""

import os
import re
import sys

# folder -> the folders it may use besides itself
ALLOWED = {
    "basic": set(),
    "kube": {"basic"},
    "host": {"basic"},
    "integrations": {"basic"},
    "core": {"basic", "kube", "host", "integrations"},
    "ctl": {"basic", "kube", "host", "integrations", "core"},   # noderebootctl's commands
    "": {"basic", "kube", "host", "integrations", "core", "ctl"},   # main.c, noderebootctl.c
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def main():
    root = os.path.join(os.environ.get("SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", "..")), "daemon")
    where = {}   # header name -> folder
    files = []
    for folder in ALLOWED:
        d = os.path.join(root, folder)
        for name in sorted(os.listdir(d)):
            if name.endswith((".c", ".h")):
                files.append((folder, os.path.join(d, name)))
                if name.endswith(".h"):
                    if name in where:
                        sys.exit(f"check-layers: {name} is in both daemon/{where[name]} and daemon/{folder}")
                    where[name] = folder
    unknown = {f for f in os.listdir(root) if os.path.isdir(os.path.join(root, f))} - set(ALLOWED)
    bad = [f"daemon/{f}/ is no known layer (add it to ALLOWED with the layers it may use)" for f in sorted(unknown)]
    for folder, path in files:
        with open(path, encoding="utf-8") as f:
            for header in INCLUDE.findall(f.read()):
                other = where.get(os.path.basename(header))
                if other is not None and other != folder and other not in ALLOWED[folder]:
                    bad.append(f"{os.path.relpath(path, os.path.dirname(root))}: includes {header} "
                               f"from daemon/{other}/, which daemon/{folder or '.'}/ may not use")
    for line in bad:
        print(line)
    print(f"check-layers: {len(files)} files, {len(bad)} includes across layers")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
