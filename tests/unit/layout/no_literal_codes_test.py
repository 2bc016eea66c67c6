#!/usr/bin/python3
"""Error codes are declared in tables, not scattered as literals.

Every code a node answers is a shoal_error_code in its module's table
(node/lib/errors.c, node/lib/tiers.c, node/lib/password.c, node/lib/ext/*.c,
node/services/conduit/api_errors.c; docs/extending.md#error-codes), answered with
shoal_fail or shoal_fail_with, so that `shoal-node errors` lists them all and
unit.docs.error_codes can hold docs/api.md to them. This scan of the tree's
own C code (node/, cache/, store/, examples/) finds what would slip past:

- a string literal as the code of shoal_error(ctx, status, code, ...) or
  shoal_ctx_reject(ctx, status, code, ...);
- outside SQL (store/ and the services' sql/ folders hold SQL, "a.id"), any literal
  shaped like a code ("word.word", or "internal") outside a shoal_error_code
  initializer;
- a shoal_error_code defined in a file but in none of its tables.

It checks itself on examples of each kind first. No compiler, no servers.
"""
import re
import unittest

import source_scan

SCANNED = ["node", "cache", "store", "examples"]
# SQL has names shaped like codes ("a.id"): the tier engine and the
# services' SQL modules are scanned for calls only.
SQL_FOLDERS = re.compile(r"^(?:store/|node/services/[^/]+/sql/)")
CODE_LITERAL = re.compile(r'^(?:[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+|internal)$')
CALLS = {"shoal_error": 2, "shoal_ctx_reject": 2}  # the code's argument index
DEFINITION = re.compile(r"\bshoal_error_code\s+(\w+)\s*=\s*\{")
TABLE = re.compile(r"\bshoal_error_table\s+\w+\s*=\s*\{")


def strip_comments(text):
    """The text with comments blanked (newlines kept), strings intact."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def literals(text):
    """(offset, value) of each string literal; #include lines are not code."""
    found = []
    for match in re.finditer(r'"((?:[^"\\\n]|\\.)*)"', text):
        line_start = text.rfind("\n", 0, match.start()) + 1
        if re.match(r"\s*#\s*include\b", text[line_start:match.start()]):
            continue
        found.append((match.start(), match.group(1)))
    return found


def balanced(text, open_at):
    """The offset just past the bracket that closes text[open_at]."""
    pairs = {"(": ")", "{": "}", "[": "]"}
    stack, i = [], open_at
    while i < len(text):
        c = text[i]
        if c == '"':
            i = re.compile(r'"(?:[^"\\]|\\.)*"').match(text, i).end()
            continue
        if c in pairs:
            stack.append(pairs[c])
        elif stack and c == stack[-1]:
            stack.pop()
            if not stack:
                return i + 1
        i += 1
    return len(text)


def arguments(text, open_at):
    """The top-level arguments of the call whose '(' is at open_at."""
    end = balanced(text, open_at)
    inner, args, depth, start, i = text[open_at + 1:end - 1], [], 0, 0, 0
    while i < len(inner):
        c = inner[i]
        if c == '"':
            i = re.compile(r'"(?:[^"\\]|\\.)*"').match(inner, i).end()
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "," and depth == 0:
            args.append(inner[start:i].strip())
            start = i + 1
        i += 1
    args.append(inner[start:].strip())
    return args


def line_of(text, offset):
    return text.count("\n", 0, offset) + 1


def problems_in(path, source, code_literals_banned):
    text = strip_comments(source)
    problems = []
    for name, index in CALLS.items():
        for match in re.finditer(r"\b%s\s*\(" % name, text):
            before = text[max(0, match.start() - 80):match.start()]
            if re.search(r"(int|void)\s*$", before):  # its declaration or definition
                continue
            args = arguments(text, match.end() - 1)
            if len(args) > index and args[index].startswith('"'):
                problems.append("%s:%d: %s with the literal code %s: declare it in a table and use shoal_fail"
                                % (path, line_of(text, match.start()), name, args[index]))
    initializers = []
    for match in DEFINITION.finditer(text):
        initializers.append((match.end() - 1, balanced(text, match.end() - 1), match.group(1)))
    if code_literals_banned:
        for offset, value in literals(text):
            if CODE_LITERAL.match(value) and not any(start <= offset < end for start, end, _ in initializers):
                problems.append('%s:%d: "%s" looks like an error code outside a table'
                                % (path, line_of(text, offset), value))
    tables = "".join(text[m.end() - 1:balanced(text, m.end() - 1)] for m in TABLE.finditer(text))
    for start, _, name in initializers:
        if not re.search(r"&\s*%s\b" % re.escape(name), tables):
            problems.append("%s:%d: %s is in none of this file's shoal_error_table"
                            % (path, line_of(text, start), name))
    return problems


class SelfCheck(unittest.TestCase):
    def problems(self, source, banned=True):
        return problems_in("x.c", source, banned)

    def test_literal_code_of_shoal_error(self):
        self.assertEqual(len(self.problems('int f(shoal_ctx *ctx)\n{\n    return shoal_error(ctx, 404,\n'
                                           '        "thing.gone", "body", "gone");\n}\n', banned=False)), 1)
        self.assertEqual(len(self.problems('void g(void) { shoal_ctx_reject(ctx, 413, "internal", m); }')), 2)
        self.assertEqual(self.problems("int f(shoal_ctx *ctx) { return shoal_error(ctx, e->status, e->code, "
                                       'e->field, "a, b"); }'), [])

    def test_code_shaped_literal_outside_a_table(self):
        self.assertEqual(len(self.problems('static const char *c = "api.blank";')), 1)
        self.assertEqual(self.problems('static const char *c = "api.blank";', banned=False), [])
        self.assertEqual(self.problems('#include "api.h"\n/* "api.blank" in a comment */\n'
                                       'static const char *s = "a sentence. Two";'), [])

    def test_table_entries(self):
        listed = ('static const shoal_error_code gone = {404, "thing.gone", NULL, "gone"};\n'
                  'const shoal_error_table t = {"m", (const shoal_error_code *const[]){&gone, NULL}};\n')
        self.assertEqual(self.problems(listed), [])
        unlisted = listed + 'const shoal_error_code lost = {404, "thing.lost", NULL, "lost"};\n'
        self.assertEqual(len(self.problems(unlisted)), 1)


def main():
    source_scan.run(SelfCheck, SCANNED,
                    lambda relative, source: problems_in(relative, source, not SQL_FOLDERS.match(relative)),
                    "%d files: every error code is declared in a table")


if __name__ == "__main__":
    main()
