#!/usr/bin/python3
"""tests/unit/store/sql_parameters_test.py: SQL goes to PostgreSQL only as
constant text, with values as parameters.

Reads every C file of store/ (the only folder that includes libpq-fe.h)
and of the demo services (node/services/, whose SQL reaches PostgreSQL
through store/'s calls: statements added to a registry, store_admin) and
finds each call that hands SQL text to PostgreSQL: libpq's PQexec,
PQexecParams, PQsendQuery, PQsendQueryParams, PQprepare and PQsendPrepare,
and every function of ours that passes one of its own parameters on to such
a call (store_exec, store_registry_add, ...: found here, to a fixed point,
not listed by hand). The SQL argument of each call must be

  - constant: string literals and macros (VIEW("$2") "WHERE a.slug = $1"),
    or the name of a file-level `static const char NAME[]` made of those,
    so no value can be in it; or
  - the calling function's own parameter: the function is then a sink
    itself, and its callers are checked the same way; or
  - one of REVIEWED below: SQL put together from constant pieces only, each
    entry with why. An entry that no longer matches a call fails too, so
    that the list stays true.

Anything else (a buffer filled from input, a string from a request) fails
the test and names the call. Standard library only, no compiler needed.
"""

import os
import re
import sys

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
# Where SQL is written: the tier engine, and the services on top of it.
SCANNED = ["store", "node/services"]

# libpq's functions and the position (from 0) of their SQL text.
LIBPQ_SINKS = {"PQexec": 1, "PQexecParams": 1, "PQsendQuery": 1, "PQsendQueryParams": 1,
               "PQprepare": 2, "PQsendPrepare": 2}
# Ours that keep SQL for later: the registry's statements are prepared on
# every connection (store.c, prepare_statements), so its SQL is checked
# where it is added.
DEFERRED_SINKS = {"store_registry_add": 2}

# (file, function, SQL argument) -> why its text holds no value from outside.
REVIEWED = {
    ("store/migrate.c", "apply_one", "migration->sql"):
        "a service's migrations (node/services/*/migrations, a user's folder), embedded in the binary at "
        "build time by shoal_add_migrations; what a program hands store_migrate[_sets] is its own schema",
    ("store/migrate.c", "run_params", "statement->sql"):
        "a record_statement's SQL: string literals in migrate.c (the rows that record a migration, "
        "LEGACY_TABLE); components, versions and names travel as $N parameters",
    ("store/store.c", "prepare_statements", "store_registry_sql(registry, i)"):
        "the registry's statements, each added through store_registry_add, whose callers this test checks",
    ("store/pipe.c", "begin_session", "store_registry_sql(registry, i)"):
        "the registry's statements, prepared on the pipelined connection as store.c prepares them on a "
        "worker's: each added through store_registry_add, whose callers this test checks",
    ("store/pipe.c", "send_queued", "store_registry_sql(registry, w->statement)"):
        "the registry's statements, sent with their text on the pipe's spill lane (which prepares nothing), "
        "their values as $N parameters: each added through store_registry_add, whose callers this test checks",
    ("store/run.c", "run_transaction", "begin_statement(isolation)"):
        "begin_statement returns one of three constant BEGIN statements, chosen by an enum",
    ("node/services/conduit/seed.c", "fill", "unit_function"):
        "snprintf of a constant function definition with one %d: the seed command's --seed, an int "
        "(a function body takes no parameters, and a constant lets PostgreSQL inline it); not a node's path",
    ("node/services/conduit/sql/article.c", "add_page_of", "sql"):
        "snprintf of a constant format with `page`, which add_page and register_lists build from "
        "constant text only: list_filters[] (a static table) and $N placeholder numbers",
    ("node/services/conduit/sql/article.c", "add_count", "sql"):
        "snprintf of a constant format with `filter`: list_filters[] and $N numbers (variant_filter), "
        "or FEED_FILTER",
}

CALL = re.compile(r"\b([A-Za-z_]\w*)\s*\(")
CONSTANT_TOKEN = re.compile(r'\s*(?:"(?:[^"\\\n]|\\.)*"|[A-Z_][A-Z0-9_]*|[(),]|\s+)')


def strip_comments(text):
    """Comments become spaces (line breaks kept); strings stay."""
    out, i, n = [], 0, len(text)
    while i < n:
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append(re.sub(r"[^\n]", " ", text[i:end]))
            i = end
        elif text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            out.append(" " * (end - i))
            i = end
        elif text[i] in "\"'":
            quote, j = text[i], i + 1
            while j < n and text[j] != quote:
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def matching(text, start, open_char, close_char):
    """Index just past the bracket that closes the one at start."""
    depth, i = 0, start
    while i < len(text):
        c = text[i]
        if c in "\"'":
            j = i + 1
            while j < len(text) and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            i = j + 1
            continue
        if c == open_char:
            depth += 1
        elif c == close_char:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return len(text)


def split_arguments(text):
    """Top-level comma-separated arguments of a call's inside."""
    args, depth, current, i = [], 0, [], 0
    while i < len(text):
        c = text[i]
        if c in "\"'":
            j = i + 1
            while j < len(text) and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            current.append(text[i:j + 1])
            i = j + 1
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        if c == "," and depth == 0:
            args.append("".join(current).strip())
            current = []
        else:
            current.append(c)
        i += 1
    if "".join(current).strip():
        args.append("".join(current).strip())
    return args


FUNCTION = re.compile(r"^[A-Za-z_][\w \t\*]*?\b([A-Za-z_]\w*)\s*\(([^;{}]*?)\)\s*\{", re.M)


def functions(path):
    """(name, parameter names, body) of every function defined in path."""
    text = strip_comments(open(path, encoding="utf-8").read())
    found = []
    for match in FUNCTION.finditer(text):
        name = match.group(1)
        if name in ("if", "for", "while", "switch"):
            continue
        parameters = []
        for parameter in split_arguments(match.group(2)):
            words = re.findall(r"[A-Za-z_]\w*", parameter.split("[")[0])
            if words and words != ["void"]:
                parameters.append(words[-1])
        body_start = match.end() - 1
        found.append((name, parameters, text[body_start:matching(text, body_start, "{", "}")]))
    return found


def calls(body, name):
    for match in re.finditer(r"\b" + re.escape(name) + r"\s*\(", body):
        open_at = match.end() - 1
        yield split_arguments(body[open_at + 1:matching(body, open_at, "(", ")") - 1])


CONSTANT_ARRAY = re.compile(r"^static const char ([A-Za-z_]\w*)\[\] =((?:\s|\"(?:[^\"\\\n]|\\.)*\"|[A-Z_][A-Z0-9_]*|[(),])+);",
                            re.M)


def constant_arrays(path):
    """Names of the file's `static const char NAME[] = "..." ...;`."""
    return {m.group(1) for m in CONSTANT_ARRAY.finditer(strip_comments(open(path, encoding="utf-8").read()))}


def constant(expression, arrays=frozenset()):
    if expression in arrays:
        return True
    position = 0
    while position < len(expression):
        match = CONSTANT_TOKEN.match(expression, position)
        if not match or match.end() == position:
            return False
        position = match.end()
    return True


def main():
    sources = sorted(os.path.relpath(os.path.join(root, name), REPO)
                     for folder in SCANNED for root, _, names in os.walk(os.path.join(REPO, folder))
                     for name in names if name.endswith(".c"))
    defined = [(source, name, parameters, body)
               for source in sources for name, parameters, body in functions(os.path.join(REPO, source))]
    arrays = {source: constant_arrays(os.path.join(REPO, source)) for source in sources}
    sinks = dict(LIBPQ_SINKS, **DEFERRED_SINKS)
    failures, seen_reviewed, checked = [], set(), 0
    changed = True
    while changed:
        changed = False
        for source, function, parameters, body in defined:
            for sink, position in list(sinks.items()):
                for arguments in calls(body, sink):
                    if len(arguments) <= position:
                        continue
                    sql = arguments[position]
                    if sql in parameters and function not in sinks:
                        sinks[function] = parameters.index(sql)
                        changed = True
    for source, function, parameters, body in defined:
        for sink, position in sinks.items():
            for arguments in calls(body, sink):
                if len(arguments) <= position:
                    failures.append(f"{source}: {function}: {sink} with too few arguments: {arguments}")
                    continue
                sql = arguments[position]
                checked += 1
                shown = re.sub(r"\s+", " ", sql)
                where = f"{source}: {function}() -> {sink}(..., {shown[:70] + '...' if len(shown) > 70 else shown}, ...)"
                if constant(sql, arrays[source]):
                    print(f"ok - {where}: constant text")
                elif sql in parameters and sinks.get(function) == parameters.index(sql):
                    print(f"ok - {where}: the caller's SQL, checked at each call of {function}")
                elif (source, function, sql) in REVIEWED:
                    seen_reviewed.add((source, function, sql))
                    print(f"ok - {where}: reviewed: {REVIEWED[(source, function, sql)]}")
                else:
                    failures.append(f"{where}: SQL that is neither constant nor reviewed")
    for entry in sorted(set(REVIEWED) - seen_reviewed):
        failures.append(f"REVIEWED entry {entry} matches no call any more: update the list")
    if checked < 20:
        failures.append(f"only {checked} calls found: the scan no longer sees store/'s calls")
    # Only store/ may talk to PostgreSQL (services go through it), or the
    # scan would miss calls.
    for folder in ("node", "cache"):
        for root, _, files in os.walk(os.path.join(REPO, folder)):
            for name in files:
                if name.endswith((".c", ".h")) and re.search(r'#\s*include\s*[<"]libpq-fe\.h', open(
                        os.path.join(root, name), encoding="utf-8").read()):
                    failures.append(f"{os.path.relpath(os.path.join(root, name), REPO)} includes libpq-fe.h")
    for failure in failures:
        print(f"not ok - {failure}")
    print(f"# {checked} calls that send SQL, through {len(sinks)} functions "
          f"({', '.join(sorted(set(sinks) - set(LIBPQ_SINKS)))} are ours)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
