#!/usr/bin/python3
"""tests/load/scenario.py: a user's scenario for tests/load/run --scenario
FILE and tests/load/scale --scenario FILE: read and checked here, compiled
to the Lua table lua/scenario.lua sends.

The file, one request a line, each request picked at random by weight:

    # comments and blank lines are ignored
    WEIGHT METHOD PATH [@BODY_FILE]
        Header-Name: value          (indented: a header of the request above)

    70 GET /articles?limit=20
    30 POST /articles @new-article.json
        Authorization: Token ${TOKEN}

WEIGHT is a whole number (the share of the requests is WEIGHT over the sum
of the weights); METHOD an HTTP method; PATH starts with '/' and is put
after the path of the URL under test (--url http://host:8080/v1 and /json
ask for /v1/json). BODY_FILE is sent as the body, read relative to the
scenario's folder; a .json body gets `Content-Type: application/json`
unless the request names a Content-Type. ${NAME} anywhere on a line is the
environment variable NAME (an unset one is an error): tokens and hosts stay
out of the file. Standard library only.
"""
import os
import re

METHOD_RE = re.compile(r"^[A-Z]+$")
HEADER_RE = re.compile(r"^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$")
VARIABLE_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ScenarioError(ValueError):
    pass


def expand(text, where, environ):
    def one(m):
        if m.group(1) not in environ:
            raise ScenarioError("%s: ${%s} is not set in the environment" % (where, m.group(1)))
        return environ[m.group(1)]
    return VARIABLE_RE.sub(one, text)


def parse(path, environ=None):
    """The requests of the scenario at PATH: a list of dicts with weight,
    method, path, headers (dict) and body (bytes or None)."""
    environ = os.environ if environ is None else environ
    folder = os.path.dirname(os.path.abspath(path))
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ScenarioError("%s: %s" % (path, e))
    requests = []
    for number, raw in enumerate(text.splitlines(), 1):
        where = "%s:%d" % (path, number)
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        line = expand(raw, where, environ)
        if raw[0] in " \t":
            if not requests:
                raise ScenarioError("%s: a header line (indented) before any request" % where)
            m = HEADER_RE.match(line.strip())
            if not m:
                raise ScenarioError("%s: an indented line is a header, 'Name: value', not %r" % (where, line.strip()))
            requests[-1]["headers"][m.group(1)] = m.group(2)
            continue
        words = line.split()
        if len(words) not in (3, 4):
            raise ScenarioError("%s: expected 'WEIGHT METHOD PATH [@BODY_FILE]', not %r" % (where, line.strip()))
        weight, method, target = words[:3]
        if not weight.isdigit() or int(weight) == 0:
            raise ScenarioError("%s: the weight %r is not a whole number above 0" % (where, weight))
        if not METHOD_RE.match(method):
            raise ScenarioError("%s: the method %r is not an HTTP method (GET, POST, ...)" % (where, method))
        if not target.startswith("/"):
            raise ScenarioError("%s: the path %r does not start with '/'" % (where, target))
        body = None
        body_file = None
        if len(words) == 4:
            if not words[3].startswith("@"):
                raise ScenarioError("%s: the fourth word names a body file, @FILE, not %r" % (where, words[3]))
            body_file = os.path.join(folder, words[3][1:])
            try:
                with open(body_file, "rb") as f:
                    body = f.read()
            except OSError as e:
                raise ScenarioError("%s: the body file: %s" % (where, e))
        requests.append({"weight": int(weight), "method": method, "path": target, "headers": {},
                         "body": body, "body_file": body_file})
    if not requests:
        raise ScenarioError("%s: no requests (lines 'WEIGHT METHOD PATH')" % path)
    for r in requests:
        named = {k.lower() for k in r["headers"]}
        if r["body_file"] and r["body_file"].endswith(".json") and "content-type" not in named:
            r["headers"]["Content-Type"] = "application/json"
    return requests


def lua_string(value):
    """A Lua string literal for VALUE (str or bytes), any byte escaped that
    is not plainly printable, so that the compiled file is always valid Lua."""
    if isinstance(value, str):
        value = value.encode()
    out = []
    for b in value:
        c = chr(b)
        out.append(c if (c.isalnum() or c in " /-_.:?=&,;+*@!~()[]{}<>|^%$#'") and b < 128 else "\\%03d" % b)
    return '"' + "".join(out) + '"'


def compile_lua(requests, prefix=""):
    """The Lua source lua/scenario.lua reads (LOAD_SCENARIO): the requests
    with PREFIX (the URL's own path) before each path."""
    prefix = prefix.rstrip("/")
    lines = ["-- compiled by tests/load/scenario.py; lua/scenario.lua sends these", "return {"]
    for r in requests:
        headers = ", ".join("[%s] = %s" % (lua_string(k), lua_string(v)) for k, v in r["headers"].items())
        lines.append("  { weight = %d, method = %s, path = %s, headers = { %s }, body = %s },"
                     % (r["weight"], lua_string(r["method"]), lua_string(prefix + r["path"]), headers,
                        "nil" if r["body"] is None else lua_string(r["body"])))
    lines.append("}")
    return "\n".join(lines) + "\n"


def name_of(path):
    """The workload name of a scenario or script file: its name without the
    extension, e.g. shop.txt or shop.lua: shop."""
    base = os.path.basename(path)
    return base.rsplit(".", 1)[0] if "." in base[1:] else base
