#!/usr/bin/python3
"""Outside the library, code includes only what is installed.

The demo services (node/services/), their composition (node/bin/) and the
examples are built as a user's service is, on libshoal's installed headers
(<shoal/x.h>); the library's private headers (node/lib/*.h, store/*.h,
cache/*.h) may change in any release. Their CMake targets link shoal_static
alone, so a private include fails their build already; this scan says so
by name, and also covers a quoted include that reaches a private header by
a relative path. Each #include must be

  - <shoal/...> naming a header of node/lib/include, store/include or
    cache/include (or version.h, made at build time), or
  - another <...> header that is not the library's private dependency
    (microhttpd.h, hiredis, libpq-fe.h, sodium.h are behind its headers), or
  - "..." resolving, from the including file's folder or node/services/,
    to a file of node/services/, node/bin/ or examples/.

It checks itself on examples of each kind first. No compiler, no servers.
"""
import os
import re
import unittest

import source_scan

REPO = source_scan.REPO
OUTSIDE = ["node/services", "node/bin", "examples"]
PUBLIC_ROOTS = ["node/lib/include", "store/include", "cache/include"]
GENERATED = {"shoal/version.h"}
PRIVATE_DEPENDENCIES = re.compile(r"^(?:microhttpd\.h|hiredis/.*|libpq-fe\.h|postgresql/.*|sodium\.h|sodium/.*)$")
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^">]+)[">]', re.M)


def public_header(name, repo):
    return name in GENERATED or any(os.path.isfile(os.path.join(repo, root, name)) for root in PUBLIC_ROOTS)


def problems_in(relative, text, repo):
    problems = []
    folder = os.path.dirname(relative)
    for match in INCLUDE.finditer(text):
        bracket, name = match.group(1), match.group(2)
        line = text.count("\n", 0, match.start()) + 1
        where = f"{relative}:{line}: #include {bracket}{name}{'>' if bracket == '<' else chr(34)}"
        if bracket == "<":
            if name.startswith("shoal/"):
                if not public_header(name, repo):
                    problems.append(f"{where}: not an installed header")
            elif PRIVATE_DEPENDENCIES.match(name):
                problems.append(f"{where}: the library's private dependency")
            continue
        for base in (folder, "node/services"):
            target = os.path.normpath(os.path.join(base, name))
            if os.path.isfile(os.path.join(repo, target)):
                if not any(target.startswith(outside + "/") for outside in OUTSIDE):
                    problems.append(f"{where}: reaches {target}, a private header of the library")
                break
        else:
            problems.append(f"{where}: found nowhere outside the library")
    return problems


class SelfCheck(unittest.TestCase):
    def test_public_header_passes(self):
        self.assertEqual(problems_in("node/services/x/a.c", "#include <shoal/shoal.h>\n", REPO), [])

    def test_private_paths_fail(self):
        for text in ('#include "../../lib/context.h"\n', '#include <shoal/context.h>\n',
                     '#include "../../../store/store_internal.h"\n', '#include <hiredis/hiredis.h>\n',
                     '#include "app_internal.h"\n'):
            self.assertEqual(len(problems_in("node/services/conduit/a.c", text, REPO)), 1, text)

    def test_service_headers_pass(self):
        self.assertEqual(problems_in("node/bin/main.c", '#include "conduit/api.h"\n#include <jansson.h>\n', REPO), [])


def main():
    source_scan.run(SelfCheck, OUTSIDE, lambda relative, text: problems_in(relative, text, REPO),
                    "%d files outside the library include only installed headers and their own")


if __name__ == "__main__":
    main()
