#!/usr/bin/python3
"""The bash completion of noderebootctl knows exactly the commands and options that
`noderebootctl --help` lists, and completes them in a real bash with bash-completion loaded.
Exits 1 naming what differs."""

import os
import re
import subprocess
import sys


def main():
    ctl = os.path.join(os.environ["BUILD_ROOT"], "daemon", "noderebootctl")
    src = os.environ.get("SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
    script = os.path.join(src, "packaging", "bash-completion", "noderebootctl")
    help_text = subprocess.run([ctl, "--help"], capture_output=True, text=True).stdout
    section = help_text.split("Commands:", 1)[1].split("Options:", 1)
    commands = {m.group(1) for m in re.finditer(r"^  ([a-z-]+)\b", section[0], re.M)}
    options = set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", section[1] + section[0]))
    text = open(script).read()
    listed = set(re.search(r'local commands="([^"]*)"', text).group(1).split())
    listed_options = set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", text.split("local commands=", 1)[1]
                                    .split("case $prev", 1)[0]))
    bad = []
    if listed != commands:
        bad.append(f"commands: completion has {sorted(listed)}, --help has {sorted(commands)}")
    if not options <= listed_options:
        bad.append(f"options in --help but not completed: {sorted(options - listed_options)}")

    # completed by a real bash with bash-completion's helpers
    if not os.path.exists("/usr/share/bash-completion/bash_completion"):
        bad.append("bash-completion is not installed (tests/install-deps.sh installs it)")
    else:
        probe = (f"source /usr/share/bash-completion/bash_completion; source {script}; "
                 "COMP_WORDS=(noderebootctl un); COMP_CWORD=1; COMP_LINE='noderebootctl un'; COMP_POINT=16; "
                 "_noderebootctl; echo \"${COMPREPLY[*]}\"; "
                 "COMP_WORDS=(noderebootctl status --j); COMP_CWORD=2; COMP_LINE='noderebootctl status --j'; "
                 "COMP_POINT=24; _noderebootctl; echo \"${COMPREPLY[*]}\"")
        out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True).stdout.split("\n")
        if out[:2] != ["unlock", "--json"]:
            bad.append(f"bash completed {out[:2]!r}, expected ['unlock', '--json']")
    for line in bad:
        print(line)
    print(f"check-completion: {len(commands)} commands, {len(options)} options, {len(bad)} problems")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
