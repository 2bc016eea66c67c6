#!/usr/bin/python3
"""docs/api.md's error table is the node's error codes, both ways.

`shoal-node errors` prints every code the node may answer, one line each:
status, code and module, from the tables the code declares them in
(node/lib/errors.c, node/lib/tiers.c, the standard extensions, the Conduit API's
node/services/conduit/api_errors.c). This test compares that listing with the table under
"## Errors" in docs/api.md: each code listed there, with the same status, and
nothing there that the node does not declare. It also reads every
`word.word` code quoted anywhere in docs/ and README.md: one that looks like
a code of the node's or HAProxy's (lb/errors/*.http) modules must be one.

Usage: error_codes_test.py SHOAL_NODE
"""
import glob
import os
import re
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
CODE = r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*"
QUOTED = re.compile(r"`(" + CODE + r")`")
# `store.h`, `api.md`: files, not codes.
FILE_SUFFIXES = {"c", "h", "md", "py", "sh", "sql", "yml", "yaml", "cfg", "json", "txt", "in", "cmake", "lua",
                 "http", "pc", "map", "conf", "so", "a", "o", "log", "csv", "png", "svg", "html", "js", "toml"}


def node_codes(binary):
    run = subprocess.run([binary, "errors"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, timeout=30)
    if run.returncode != 0:
        sys.exit("%s errors exited %d: %s" % (binary, run.returncode, run.stderr))
    codes = {}
    for line in run.stdout.splitlines():
        status, code, module = line.split("\t")
        if code in codes:
            sys.exit("%s errors lists %s twice" % (binary, code))
        codes[code] = (int(status), module)
    if len(codes) < 10:
        sys.exit("%s errors listed only %d codes:\n%s" % (binary, len(codes), run.stdout))
    return codes


def documented_codes(path):
    """(status, code) of each code in the table under "## Errors"."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    match = re.search(r"^## Errors\n(.*?)(?=^## )", text, re.MULTILINE | re.DOTALL)
    if match is None:
        sys.exit("%s has no '## Errors' section" % path)
    codes, problems = {}, []
    for line in match.group(1).splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not re.fullmatch(r"[1-5][0-9][0-9]", cells[0]):
            continue
        found = QUOTED.findall(cells[1])
        if not found:
            problems.append("docs/api.md: a row of status %s names no code: %s" % (cells[0], line))
        for code in found:
            if code in codes:
                problems.append("docs/api.md lists %s twice" % code)
            codes[code] = int(cells[0])
    return codes, problems


def balancer_codes():
    codes = set()
    for path in glob.glob(os.path.join(REPO, "lb", "errors", "*.http")):
        with open(path, encoding="utf-8") as f:
            codes.update(re.findall(r'"code":"(' + CODE + ')"', f.read()))
    return codes


def quoted_elsewhere(known):
    """Quoted codes in docs/ and README.md that look like known ones and are not."""
    prefixes = {code.split(".")[0] for code in known if "." in code}
    problems = []
    for path in sorted(glob.glob(os.path.join(REPO, "docs", "*.md")) + [os.path.join(REPO, "README.md")]):
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                for code in QUOTED.findall(line):
                    words = code.split(".")
                    if len(words) < 2 or words[0] not in prefixes or words[-1] in FILE_SUFFIXES:
                        continue
                    if code not in known:
                        problems.append("%s:%d: `%s` is no code the node or HAProxy answers"
                                        % (os.path.relpath(path, REPO), number, code))
    return problems


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    listed = node_codes(sys.argv[1])
    documented, problems = documented_codes(os.path.join(REPO, "docs", "api.md"))
    for code, (status, module) in sorted(listed.items()):
        if code not in documented:
            problems.append("docs/api.md's Errors table lacks %d %s (declared by %s)" % (status, code, module))
        elif documented[code] != status:
            problems.append("docs/api.md gives %s status %d; %s declares %d"
                            % (code, documented[code], module, status))
    for code, status in sorted(documented.items()):
        if code not in listed:
            problems.append("docs/api.md lists %d %s, which no table declares" % (status, code))
    problems += quoted_elsewhere(set(listed) | balancer_codes())
    for problem in problems:
        print(problem)
    if problems:
        sys.exit(1)
    print("%d codes: docs/api.md and the node's tables agree" % len(listed))


if __name__ == "__main__":
    main()
