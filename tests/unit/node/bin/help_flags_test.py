#!/usr/bin/python3
"""tests/unit/node/bin/help_flags_test.py: shoal-node's --help lists the same
settings as 0.1 did: each flag with its variable and its default, as
recorded in help_flags.txt. Settings move between owners' tables (and so
between --help's sections); what users set must not change.

Usage: help_flags_test.py SHOAL_NODE [FIXTURE]   (--write FIXTURE records it anew)
"""
import os
import re
import subprocess
import sys

SETTING = re.compile(r"^  +--([a-z0-9-]+) +([A-Z][A-Z0-9_]*)$")  # flag and variable, help below
COMMAND_FLAG = re.compile(r"^    --([a-z0-9-]+) +.*\(default: (.*)\)$")  # a command's own flag: one line
DEFAULT = re.compile(r"\(default: (.*)\)$")


def settings(help_text):
    found, lines = set(), help_text.splitlines()
    for i, line in enumerate(lines):
        m = SETTING.match(line)
        if m:
            d = DEFAULT.search(lines[i + 1]) if i + 1 < len(lines) else None
            found.add("--%s %s default=%s" % (m.group(1), m.group(2), d.group(1) if d else "?"))
            continue
        m = COMMAND_FLAG.match(line)
        if m:
            found.add("--%s (command flag) default=%s" % (m.group(1), m.group(2)))
    return found


def main():
    args = sys.argv[1:]
    write = args and args[0] == "--write"
    if write:
        args = args[1:]
    binary = args[0]
    fixture = args[1] if len(args) > 1 else os.path.join(os.path.dirname(__file__), "help_flags.txt")
    run = subprocess.run([binary, "--help"], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    if run.returncode != 0:
        print("%s --help exited %d: %s" % (binary, run.returncode, run.stderr))
        return 1
    now = settings(run.stdout)
    if write:
        with open(fixture, "w") as out:
            out.write("".join(line + "\n" for line in sorted(now)))
        return 0
    with open(fixture) as f:
        want = {line.rstrip("\n") for line in f if line.strip()}
    missing, extra = sorted(want - now), sorted(now - want)
    for line in missing:
        print("missing from --help: " + line)
    for line in extra:
        print("new in --help: " + line)
    if missing or extra:
        return 1
    print("%d settings, as recorded" % len(now))
    return 0


if __name__ == "__main__":
    sys.exit(main())
