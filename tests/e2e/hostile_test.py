#!/usr/bin/python3
"""tests/e2e/hostile_test.py: hostile input to every endpoint, end to end.

Runs against a live stack of two nodes behind HAProxy (conduit_stack.sh up,
the ctest fixture hostile_stack) and sends every case of the corpus below to
every endpoint it applies to, once straight to a node and once through
HAProxy, each on a connection of its own, as raw bytes (so that invalid
UTF-8, NUL bytes, broken framing and duplicated headers go out as written).

Every answer must be:
  - a 4xx with the JSON error envelope {"errors": {"<field>": ["..."]},
    "code": "..."} (a few cases name the 2xx the spec wants instead: a
    filter nothing matches, TechEmpower's clamped `queries`);
  - never a 5xx, never a dropped connection;
  - with the security headers (X-Content-Type-Options, Content-Security-
    Policy, Referrer-Policy), also when HAProxy answers itself.
Afterwards: both node processes are the same PIDs and still serve, no log
holds a sanitizer report, every access log line is JSON, nothing was written
(row count and checksum of every table, the session keys in Redis), and no
token or password of the traffic (registrations, logins, a password change)
appears in any log of the stack.

The corpus is the FAMILIES table: a family is a function that, given an
endpoint, returns its cases (Case(...)); adding a case is adding a line to
one, adding a family is one function with @family. ENDPOINTS lists every
route the node serves.

One line per check, TAP style; exit status 1 when any check failed. Debian's
/usr/bin/python3, standard library only; psql and redis-cli for the
snapshots.

Environment (ctest sets them):
  SHOAL_E2E_LB_URL       HAProxy (http://127.0.0.1:18280)
  SHOAL_E2E_NODE_URLS    the two nodes, comma-separated
  SHOAL_E2E_STACK_FILE   the file conduit_stack.sh wrote the state folder to
  SHOAL_E2E_PG_PORT, SHOAL_E2E_REDIS_PORT   the stack's PostgreSQL and Redis
"""

import json
import os
import random
import re
import socket
import string
import subprocess
import sys
import time
import urllib.parse

LB = os.environ.get("SHOAL_E2E_LB_URL", "http://127.0.0.1:18280").rstrip("/")
NODES = [u.rstrip("/") for u in
         os.environ.get("SHOAL_E2E_NODE_URLS", "http://127.0.0.1:18281,http://127.0.0.1:18282").split(",")]
STACK_FILE = os.environ.get("SHOAL_E2E_STACK_FILE", "")
PG_PORT = os.environ.get("SHOAL_E2E_PG_PORT", "15633")
REDIS_PORT = os.environ.get("SHOAL_E2E_REDIS_PORT", "16580")

RUN = "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(6))
# The node's limits (node/lib/config.c defaults, which the stack keeps).
MAX_HEADER_BYTES = 16 * 1024
MAX_BODY_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 32
SECURITY_HEADERS = {"x-content-type-options": "nosniff",
                    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
                    "referrer-policy": "no-referrer"}

# ------------------------------------------------------------------ output

checks = 0
failures = []


def check(condition, description, detail=""):
    global checks
    checks += 1
    if condition:
        print(f"ok {checks} - {description}", flush=True)
    else:
        print(f"not ok {checks} - {description}" + (f": {detail}" if detail else ""), flush=True)
        failures.append(description)
    return bool(condition)


def note(text):
    print(f"# {text}", flush=True)


# ------------------------------------------------------------------ raw HTTP

class Answer:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lower-case name -> list of values
        self.body = body

    def header(self, name):
        values = self.headers.get(name.lower())
        return values[0] if values else None

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return None

    def __str__(self):
        text = self.body[:300].decode("utf-8", "replace")
        return f"{self.status} {text!r}"


def address_of(base):
    parts = urllib.parse.urlsplit(base)
    return parts.hostname, parts.port


def exchange(base, data, timeout=15):
    """Sends data on a new connection and reads the answer up to the end of
    its body or the close. None when the connection closed without one."""
    host, port = address_of(base)
    with socket.create_connection((host, port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered early (413, 431): the answer may be there
        received = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            except socket.timeout:
                break
            if not chunk:
                break
            received += chunk
            answer = parse(received, complete=False)
            if answer is not None:
                return answer
    return parse(received, complete=True)


def parse(data, complete):
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = data[:end].split(b"\r\n")
    match = re.match(rb"HTTP/1\.[01] (\d{3})", lines[0])
    if not match:
        return None
    if match.group(1).startswith(b"1"):
        return parse(data[end + 4:], complete)  # 100 Continue: the answer follows
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers.setdefault(name.strip().lower().decode("latin-1"), []).append(value.strip().decode("latin-1"))
    body = data[end + 4:]
    length = headers.get("content-length")
    if length is not None:
        if len(body) < int(length[0]):
            return None if not complete else Answer(int(match.group(1)), headers, body)
        body = body[:int(length[0])]
    elif "chunked" in ",".join(headers.get("transfer-encoding", [])).lower():
        decoded, rest = b"", body
        while True:
            size_end = rest.find(b"\r\n")
            if size_end < 0:
                return None if not complete else Answer(int(match.group(1)), headers, decoded)
            size = int(rest[:size_end].split(b";")[0], 16)
            if size == 0:
                break
            if len(rest) < size_end + 2 + size + 2:
                return None if not complete else Answer(int(match.group(1)), headers, decoded)
            decoded += rest[size_end + 2:size_end + 2 + size]
            rest = rest[size_end + 2 + size + 2:]
        body = decoded
    elif not complete:
        return None
    return Answer(int(match.group(1)), headers, body)


def build(base, method, target, headers=(), body=None, host=True):
    """A request as bytes. target, header names and values and body may be
    str or bytes; bytes go out as they are."""
    def raw(value):
        return value if isinstance(value, bytes) else value.encode("utf-8")
    lines = [raw(method) + b" " + raw(target) + b" HTTP/1.1"]
    if host:
        h, p = address_of(base)
        lines.append(f"Host: {h}:{p}".encode())
    lines.append(b"Connection: close")
    names = {raw(n).lower() for n, _ in headers}
    if body is not None and b"content-length" not in names and b"transfer-encoding" not in names:
        lines.append(b"Content-Length: " + str(len(raw(body))).encode())
    for name, value in headers:
        lines.append(raw(name) + b": " + raw(value))
    return b"\r\n".join(lines) + b"\r\n\r\n" + (raw(body) if body is not None else b"")


def envelope_of(answer):
    body = answer.json()
    if not isinstance(body, dict) or not isinstance(body.get("code"), str) or not body["code"]:
        return None
    errors = body.get("errors")
    if not isinstance(errors, dict) or not errors:
        return None
    if not all(isinstance(v, list) and v and all(isinstance(m, str) for m in v) for v in errors.values()):
        return None
    return body


def request_json(base, method, path, body=None, token=None):
    headers = [("Content-Type", "application/json")] if body is not None else []
    if token:
        headers.append(("Authorization", f"Token {token}"))
    answer = exchange(base, build(base, method, path, headers,
                                  json.dumps(body) if body is not None else None))
    return answer


# ------------------------------------------------------------------ the corpus

class Case:
    """One hostile request for one endpoint.

    expect: "4xx" (the default: a client error with the envelope), "any"
      (HTTP allows either answer: any status but a 5xx, a 4xx with the
      envelope), or a set of statuses the API's spec names for it (say {200}
      for a filter nothing matches), with `verify` a function of the
      answer's JSON for the rest.
    parsers: where an HTTP parser refuses the request itself with its own
      built-in 4xx page, which cannot carry the envelope: "node" when
      libmicrohttpd 0.9.75 does (a broken request line or framing, a request
      larger than a connection's memory), "haproxy" when HAProxy 2.6's H1
      parser does (its 400 for an unparsable or oversized request is
      compiled in: errorfile covers only the answers of a stream,
      haproxy/haproxy#3032, fixed in 3.2). Any other answer of that target
      must have the envelope.
    node_expect: the expectation straight to a node when it differs: a raw
      NUL ends libmicrohttpd's copy of the line, so the node sees a shorter,
      valid request (HAProxy refuses it).
    """

    def __init__(self, name, method, target, headers=(), body=None, expect="4xx", verify=None,
                 parsers=(), host=True, raw_header=None, node_expect=None):
        self.name = name
        self.method = method
        self.target = target
        self.headers = list(headers)
        self.body = body
        self.expect = expect
        self.verify = verify
        self.parsers = set(parsers)
        self.node_expect = node_expect
        self.host = host
        self.raw_header = raw_header  # a header line sent as it is


class Endpoint:
    def __init__(self, method, pattern, auth="none", body=None, query=()):
        self.method = method
        self.pattern = pattern
        self.auth = auth      # "none", "optional" or "required"
        self.body = body      # a valid body's template (dict), or None
        self.query = query    # paging parameters it reads

    def path(self, fixture):
        return self.pattern.format(**fixture.params)

    def __str__(self):
        return f"{self.method} {self.pattern}"


PAGING = ("limit", "offset")
BOTH = ("node", "haproxy")
HAPROXY = ("haproxy",)
ENDPOINTS = [
    Endpoint("POST", "/api/users", body={"user": {"username": "u", "email": "e", "password": "p"}}),
    Endpoint("POST", "/api/users/login", body={"user": {"email": "e", "password": "p"}}),
    Endpoint("POST", "/api/users/logout", "required"),
    Endpoint("GET", "/api/user", "required"),
    Endpoint("PUT", "/api/user", "required", body={"user": {"email": "e", "username": "u", "password": "p",
                                                            "bio": "b", "image": "i"}}),
    Endpoint("GET", "/api/profiles/{username}", "optional"),
    Endpoint("POST", "/api/profiles/{other}/follow", "required"),
    Endpoint("DELETE", "/api/profiles/{other}/follow", "required"),
    Endpoint("GET", "/api/articles", "optional", query=PAGING),
    Endpoint("GET", "/api/articles/feed", "required", query=PAGING),
    Endpoint("POST", "/api/articles", "required", body={"article": {"title": "t", "description": "d", "body": "b",
                                                                    "tagList": ["x"]}}),
    Endpoint("GET", "/api/articles/{slug}", "optional"),
    Endpoint("PUT", "/api/articles/{slug}", "required", body={"article": {"title": "t", "description": "d",
                                                                          "body": "b", "tagList": ["x"]}}),
    Endpoint("DELETE", "/api/articles/{slug}", "required"),
    Endpoint("POST", "/api/articles/{slug}/favorite", "required"),
    Endpoint("DELETE", "/api/articles/{slug}/favorite", "required"),
    Endpoint("GET", "/api/tags"),
    Endpoint("POST", "/api/articles/{slug}/comments", "required", body={"comment": {"body": "b"}}),
    Endpoint("GET", "/api/articles/{slug}/comments", "optional"),
    Endpoint("DELETE", "/api/articles/{slug}/comments/{comment}", "required"),
    Endpoint("GET", "/json"),
    Endpoint("GET", "/plaintext"),
    Endpoint("GET", "/db"),
    Endpoint("GET", "/queries", query=("queries",)),
    Endpoint("GET", "/updates", query=("queries",)),
    Endpoint("GET", "/fortunes"),
    Endpoint("GET", "/cached-queries", query=("count",)),
    Endpoint("GET", "/healthz"),
    # Served on the nodes' admin ports only: here (the public port and
    # HAProxy) they must answer like any path that does not exist.
    Endpoint("GET", "/readyz"),
    Endpoint("GET", "/metrics"),
]

FAMILIES = []


def family(function):
    FAMILIES.append(function)
    return function


def auth_headers(endpoint, fixture, who="author"):
    """A valid token where the endpoint reads one, so that the case reaches
    the handler instead of stopping at 401."""
    if endpoint.auth == "none":
        return []
    return [("Authorization", f"Token {fixture.tokens[who]}")]


SQL_INJECTIONS = ["' OR '1'='1", "'; DROP TABLE users; --", "\" OR 1=1 --", "1 UNION SELECT password_hash FROM users",
                  "$1", "x'); DELETE FROM articles; --", "\\'; SELECT pg_sleep(5); --"]
TRAVERSALS = ["../../../../etc/passwd", "..%2f..%2f..%2fetc%2fpasswd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
              "..\\..\\windows\\win.ini", "....//....//etc/passwd"]


@family
def transport(endpoint, fixture):
    """What the HTTP layer sees before any handler: sizes, bytes, framing,
    methods. Sent without a token: a route that needs one answers 401, and
    the rest answer before that."""
    path = endpoint.path(fixture)
    m = endpoint.method
    cases = [
        Case("a URL just over the header limit", m, path + "?pad=" + "a" * (MAX_HEADER_BYTES + 100), parsers=HAPROXY),
        Case("a URL of 100 kB", m, path + "?pad=" + "a" * 100_000, parsers=BOTH),
        Case("a header just over the limit", m, path, [("X-Pad", "a" * (MAX_HEADER_BYTES + 100))], parsers=HAPROXY),
        Case("a header of 100 kB", m, path, [("X-Pad", "a" * 100_000)], parsers=BOTH),
        Case("600 headers", m, path, [(f"X-Pad-{i}", "a" * 24) for i in range(600)], parsers=BOTH),
        Case("a NUL byte in the path", m, path.encode() + b"\x00x", parsers=HAPROXY, node_expect="any"),
        Case("%00 in the path", m, path + "%00"),
        Case("%00 inside the path", m, path.replace("/", "/%00", 2) if path.count("/") > 1 else path + "/%00"),
        Case("invalid UTF-8 in the path, raw", m, path.encode() + b"\xff\xfe\xc3", parsers=HAPROXY),
        Case("invalid UTF-8 in the path, escaped", m, path + "%ff%fe%c3"),
        Case("an overlong UTF-8 slash", m, path + "%c0%af..%c0%afetc%c0%afpasswd"),
        Case("a method the route does not take", "PATCH" if m != "PATCH" else "PUT", path),
        Case("an unknown method", "BREW", path),
        Case("a lower-case method", m.lower(), path, parsers=BOTH),
        Case("a body larger than the limit", m, path, [("Content-Type", "application/json")],
             b"{" + b" " * (MAX_BODY_BYTES + 10) + b"}"),
        Case("a Content-Length far over the limit, with Expect", m, path,
             [("Content-Length", str(MAX_BODY_BYTES * 64)), ("Expect", "100-continue")], b"",
             parsers=BOTH),
        Case("two different Content-Lengths", m, path, [("Content-Length", "2"), ("Content-Length", "3")], b"{}x",
             parsers=HAPROXY),
        # RFC 9112 6.3: equal values may be taken as one (HAProxy does); the
        # node refuses any second line.
        Case("two equal Content-Lengths", m, path, [("Content-Length", "2"), ("Content-Length", "2")], b"{}",
             expect="any", parsers=HAPROXY),
        Case("a Content-Length that is not a number", m, path, [("Content-Length", "abc")], b"{}",
             parsers=BOTH),
        Case("a negative Content-Length", m, path, [("Content-Length", "-1")], b"{}", parsers=BOTH),
        Case("an overflowing Content-Length", m, path, [("Content-Length", "184467440737095516160")], b"{}",
             parsers=BOTH),
        Case("a broken chunked body", m, path, [("Transfer-Encoding", "chunked")], b"zz\r\n{}\r\n0\r\n\r\n",
             parsers=BOTH),
        # RFC 9112 6.3: chunked wins (HAProxy drops the Content-Length), or
        # the request is refused: either is right.
        Case("Content-Length and chunked together", m, path,
             [("Content-Length", "4"), ("Transfer-Encoding", "chunked")], b"0\r\n\r\n", expect="any",
             parsers=BOTH),
        Case("no Host header", m, path, host=False),
        Case("two Host headers", m, path, [("Host", "evil.example")], parsers=HAPROXY),
        Case("a header without a colon", m, path, raw_header=b"X-Broken-Without-Colon", parsers=BOTH),
        Case("a control byte in a header", m, path, [("X-Ctl", b"a\x01b")], parsers=HAPROXY),
        # HAProxy 2.6 passes it on, and libmicrohttpd's copy of the value
        # ends at the NUL: the node sees a shorter, valid header.
        Case("a NUL in a header", m, path, [("X-Nul", b"a\x00b")], expect="any"),
    ]
    for traversal in TRAVERSALS:
        cases.append(Case(f"path traversal {traversal}", m, path + "/" + traversal))
        cases.append(Case(f"path traversal {traversal} before the route", m, "/" + traversal + path))
    return cases


@family
def tokens(endpoint, fixture):
    """Tokens that are almost valid: each must be refused (401) wherever a
    token is read, also where one is optional (a token sent must be valid).
    The rest of the request is valid, so a token taken for good would be
    answered 2xx (or write, which the snapshot catches)."""
    if endpoint.auth == "none":
        return []
    path = endpoint.path(fixture)
    body = json.dumps(fixture.valid_body(endpoint)) if endpoint.body else None
    content = [("Content-Type", "application/json")] if body else []
    good = fixture.tokens["author"]
    flipped = ("B" if good[0] != "B" else "C") + good[1:]
    variants = {
        "the token less its last character": f"Token {good[:-1]}",
        "the token and one character more": f"Token {good}A",
        "the token with its first character changed": f"Token {flipped}",
        "the token with a character that is not base64url": f"Token {good[:20]}+{good[21:]}",
        "the token padded with =": f"Token {good}=",
        "a revoked token (logout)": f"Token {fixture.tokens['revoked']}",
        "a token revoked by a password change": f"Token {fixture.tokens['changed']}",
        "a token of 10 kB": "Token " + "A" * 10_000,
        "Basic instead of Token": f"Basic {good}",
        "the scheme alone": "Token",
        "the scheme and spaces": "Token    ",
        "the token without a scheme": good,
        "two tokens": f"Token {good} {good}",
        "a token with %00": f"Token {good[:20]}%00{good[23:]}",
        "a token in UTF-8 letters": "Token " + "é" * 43,
        "SQL in the token": "Token ' OR '1'='1' --" + "A" * 22,
    }
    cases = [Case(name, endpoint.method, path, content + [("Authorization", value)], body)
             for name, value in variants.items()]
    # A second Authorization line: the first one counts, so a forged one in
    # front of a good one must not pass, and neither may the good one
    # smuggle anything through behind a forged one.
    cases.append(Case("a forged token before a good one", endpoint.method, path,
                      content + [("Authorization", f"Token {flipped}"), ("Authorization", f"Token {good}")], body))
    cases.append(Case("a raw NUL in the token", endpoint.method, path,
                      content + [("Authorization", b"Token " + good[:20].encode() + b"\x00" + good[21:].encode())],
                      body, parsers=HAPROXY))
    return cases


@family
def bodies(endpoint, fixture):
    """Bodies that are not what the endpoint takes, with a valid token."""
    if endpoint.body is None:
        return []
    path = endpoint.path(fixture)
    auth = auth_headers(endpoint, fixture)
    content = [("Content-Type", "application/json")]
    wrapper = next(iter(endpoint.body))
    # Valid but for one thing no case touches (fixture.spoiled), so that a
    # node that took a mangled body for good still has nothing to write.
    valid = fixture.spoiled(endpoint, fixture.valid_body(endpoint), None)
    raw_bodies = {
        "an empty body": b"",
        "a body of white space": b"   \r\n\t ",
        "truncated JSON": valid[: len(valid) // 2].encode(),
        "JSON cut inside a string": valid[: valid.index('"', valid.index(":") + 3) + 2].encode(),
        "an opening brace": b"{",
        "text, not JSON": b"hello world",
        "XML": b"<user><email>a@b.c</email></user>",
        "JSON with a trailing comma": valid[:-1].encode() + b",}",
        "two JSON values": (valid + valid).encode(),
        "JSON and garbage after it": valid.encode() + b"garbage",
        "single quotes": valid.replace('"', "'").encode(),
        f"nesting one deeper than {MAX_JSON_DEPTH}": ("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)).encode(),
        "nesting 100,000 deep, unclosed": b"[" * 100_000,
        "an object nested 50 deep in the wrapper": json.dumps({wrapper: nest(50)}).encode(),
        "invalid UTF-8 in a string": valid.encode().replace(b'"', b'"\xff\xfe', 4),
        "an overlong UTF-8 encoding": valid.encode().replace(b'"', b'"\xc0\xaf', 4),
        "a lone UTF-16 surrogate": valid.replace('"', '"\\ud800', 4).encode(),
        "a raw NUL in the body": valid.encode().replace(b":", b":\x00", 1),
        "\\u0000 in a string": valid.replace('"', '"\\u0000', 4).encode(),
        "a duplicated key": valid.replace("{", '{"' + wrapper + '": {},', 1).encode(),
        "a number too large for any type": valid.replace("{", '{"n": 1' + "0" * 400 + ",", 1).encode(),
        "a UTF-8 BOM before the JSON": b"\xef\xbb\xbf" + valid.encode(),
        "JSON that is null": b"null",
        "JSON that is a number": b"12",
        "JSON that is a string": b'"user"',
        "JSON that is an array": ("[" + valid + "]").encode(),
        "an empty object": b"{}",
        f"{wrapper} is null": json.dumps({wrapper: None}).encode(),
        f"{wrapper} is a string": json.dumps({wrapper: "x"}).encode(),
        f"{wrapper} is an array": json.dumps({wrapper: [fixture.valid_body(endpoint)[wrapper]]}).encode(),
        f"{wrapper} is a number": json.dumps({wrapper: 1}).encode(),
    }
    cases = [Case(name, endpoint.method, path, content + auth, body) for name, body in raw_bodies.items()]
    cases.append(Case("Content-Type text/plain", endpoint.method, path,
                      [("Content-Type", "text/plain")] + auth, valid))
    cases.append(Case("Content-Type form", endpoint.method, path,
                      [("Content-Type", "application/x-www-form-urlencoded")] + auth, "user=x"))
    cases.append(Case("Content-Type multipart", endpoint.method, path,
                      [("Content-Type", "multipart/form-data; boundary=x")] + auth,
                      "--x\r\nContent-Disposition: form-data; name=\"user\"\r\n\r\nx\r\n--x--\r\n"))
    # Every field of the wrapper with a wrong type, too long, or invalid.
    for field, value in fixture.valid_body(endpoint)[wrapper].items():
        wrong_types = [1, 1.5, True, [], {}, [1, 2]] if field != "tagList" else ["x", 1, {}, [1], [None], [[]]]
        if field not in fixture.nullable(endpoint):
            wrong_types.append(None)
        for wrong in wrong_types:
            cases.append(Case(f"{field} is {json.dumps(wrong)}", endpoint.method, path, content + auth,
                              fixture.body_with(endpoint, field, wrong)))
        for name, bad in fixture.invalid_values(endpoint, field):
            cases.append(Case(f"{field} {name}", endpoint.method, path, content + auth,
                              fixture.body_with(endpoint, field, bad)))
    for field in fixture.required(endpoint):
        cases.append(Case(f"{field} missing", endpoint.method, path, content + auth,
                          fixture.body_without(endpoint, field)))
    return cases


def nest(depth):
    value = {}
    for _ in range(depth):
        value = {"a": value}
    return value


@family
def queries(endpoint, fixture):
    """limit, offset, queries and count out of range, of the wrong type,
    duplicated; filters with SQL, traversals, NUL and invalid UTF-8."""
    path = endpoint.path(fixture)
    auth = auth_headers(endpoint, fixture)
    cases = []
    tfb = endpoint.pattern in ("/queries", "/updates", "/cached-queries")
    for name in endpoint.query:
        bad = ["-1", "-0", "1.5", "1e3", "0x10", "+1", "%201", "1%00", "%00", "abc", "", "99999999999999999999",
               "9223372036854775808", "18446744073709551616", "-9223372036854775809", "%ff", "1 OR 1=1", "１"]
        for value in bad:
            target = f"{path}?{name}={urllib.parse.quote(value, safe='%')}"
            if tfb:
                # TechEmpower's rule: anything that is not a number from 1 to
                # 500 is clamped into that range, and the answer is 200.
                # Invalid UTF-8 is a malformed request (400) before that.
                cases.append(Case(f"{name}={value} (clamped)", "GET", target, auth, expect={200, 400},
                                  verify=clamped_rows))
            else:
                cases.append(Case(f"{name}={value}", "GET", target, auth))
        if not tfb:
            # The first value counts, as for headers: a valid first value is
            # a valid request, a bad one a 422.
            cases.append(Case(f"{name} twice", "GET", f"{path}?{name}=1&{name}=-1", auth, expect={200},
                              verify=lambda b: isinstance(b, dict) and len(b.get("articles", [])) <= 1))
            cases.append(Case(f"{name} twice, the first bad", "GET", f"{path}?{name}=-1&{name}=1", auth))
            cases.append(Case(f"{name}[]", "GET", f"{path}?{name}[]=1", auth, expect={200}, verify=lambda b: True))
    if endpoint.pattern == "/api/articles":
        for name in ("tag", "author", "favorited"):
            for value in SQL_INJECTIONS + TRAVERSALS + ["%00", "a%00b", "%ff%fe", "%c0%af", "\u202e", "x" * 5000]:
                encoded = value if "%" in value else urllib.parse.quote(value, safe="")
                cases.append(Case(f"{name}={value[:40]}", "GET", f"{path}?{name}={encoded}", auth,
                                  expect={200, 400, 422}, verify=nothing_found))
    return cases


@family
def path_parameters(endpoint, fixture):
    """Slugs, usernames and comment ids with SQL, traversals, NUL bytes,
    invalid UTF-8 and sizes; answered 404 (or 401/403/422), never found."""
    if "{" not in endpoint.pattern:
        return []
    values = SQL_INJECTIONS + TRAVERSALS + ["%00", "a%00b", "%ff%fe", "%c0%af", "x" * 8000, "-1", "0",
                                            "99999999999999999999", "1e3", "%20", "."]
    cases = []
    for name in re.findall(r"{(\w+)}", endpoint.pattern):
        for value in values:
            encoded = value if "%" in value else urllib.parse.quote(value, safe="")
            params = dict(fixture.params)
            params[name] = encoded
            target = endpoint.pattern.format(**params)
            cases.append(Case(f"{{{name}}} = {value[:40]}", endpoint.method, target,
                              auth_headers(endpoint, fixture) +
                              ([("Content-Type", "application/json")] if endpoint.body else []),
                              json.dumps(fixture.valid_body(endpoint)) if endpoint.body else None))
    return cases


@family
def authorization(endpoint, fixture):
    """Only the author edits or deletes an article or a comment: another
    user's valid token, with a valid body, is refused (403) and writes
    nothing; nor may an article's author delete another user's comment."""
    owned = {("PUT", "/api/articles/{slug}"), ("DELETE", "/api/articles/{slug}"),
             ("DELETE", "/api/articles/{slug}/comments/{comment}")}
    if (endpoint.method, endpoint.pattern) not in owned:
        return []
    path = endpoint.path(fixture)
    content = [("Content-Type", "application/json")] if endpoint.body else []
    body = json.dumps(fixture.valid_body(endpoint)) if endpoint.body else None
    cases = [Case("by another user", endpoint.method, path, content + auth_headers(endpoint, fixture, "other"),
                  body, expect={403})]
    if "comments" in endpoint.pattern:
        theirs = endpoint.pattern.format(**dict(fixture.params, comment=fixture.params["other_comment"]))
        cases.append(Case("another user's comment, by the article's author", endpoint.method, theirs,
                          auth_headers(endpoint, fixture, "author"), expect={403}))
    return cases


def clamped_rows(body):
    return isinstance(body, list) and len(body) in (1, 500)


def nothing_found(body):
    if body is None:
        return True  # a 422 envelope: checked as such
    if "errors" in body:
        return True
    return body.get("articles") == [] and body.get("articlesCount") == 0


# ------------------------------------------------------------------ the fixture

class Fixture:
    """Users, an article and a comment made before the snapshot, and the
    values that make each endpoint's body valid, or invalid on purpose."""

    def __init__(self):
        self.tokens = {}
        self.params = {}
        self.passwords = []

    def setup(self):
        author = self.register("author")
        other = self.register("other")
        victim = self.register("victim")
        self.tokens["author"] = author
        self.tokens["other"] = other
        # A token that logout revoked.
        revoked = self.login("author")
        answer = request_json(LB, "POST", "/api/users/logout", None, revoked)
        check(answer is not None and answer.status == 204, "setup: logout", str(answer))
        self.tokens["revoked"] = revoked
        # A token that a password change revoked.
        new_password = f"changed-{RUN}-Secret!"
        answer = request_json(LB, "PUT", "/api/user", {"user": {"password": new_password}}, victim)
        check(answer is not None and answer.status == 200, "setup: a password change", str(answer))
        self.passwords.append(new_password)
        self.tokens["changed"] = victim
        self.tokens["after_change"] = (answer.json() or {}).get("user", {}).get("token", "") if answer else ""
        answer = request_json(LB, "POST", "/api/articles",
                              {"article": {"title": f"Hostile {RUN}", "description": "d", "body": "b",
                                           "tagList": [f"tag{RUN}"]}}, author)
        check(answer is not None and answer.status == 201, "setup: an article", str(answer))
        slug = (answer.json() or {}).get("article", {}).get("slug", "missing") if answer else "missing"
        answer = request_json(LB, "POST", f"/api/articles/{slug}/comments", {"comment": {"body": "c"}}, author)
        check(answer is not None and answer.status == 201, "setup: a comment", str(answer))
        comment = (answer.json() or {}).get("comment", {}).get("id", 0) if answer else 0
        answer = request_json(LB, "POST", f"/api/articles/{slug}/comments", {"comment": {"body": "o"}}, other)
        check(answer is not None and answer.status == 201, "setup: another user's comment", str(answer))
        other_comment = (answer.json() or {}).get("comment", {}).get("id", 0) if answer else 0
        self.params = {"username": f"author_{RUN}", "other": f"other_{RUN}", "slug": slug, "comment": comment,
                       "other_comment": other_comment}

    def register(self, name):
        password = f"pw-{name}-{RUN}-Secret!"
        self.passwords.append(password)
        answer = request_json(LB, "POST", "/api/users",
                              {"user": {"username": f"{name}_{RUN}", "email": f"{name}_{RUN}@example.org",
                                        "password": password}})
        check(answer is not None and answer.status == 201, f"setup: register {name}", str(answer))
        return (answer.json() or {}).get("user", {}).get("token", "") if answer else ""

    def login(self, name):
        password = f"pw-{name}-{RUN}-Secret!"
        answer = request_json(LB, "POST", "/api/users/login",
                              {"user": {"email": f"{name}_{RUN}@example.org", "password": password}})
        check(answer is not None and answer.status == 200, f"setup: log {name} in", str(answer))
        return (answer.json() or {}).get("user", {}).get("token", "") if answer else ""

    # The bodies are valid in every way but one the case names, so that the
    # answer tells whether that one thing was caught. Where a fully valid
    # body would write (the tokens family), the token is what is wrong.
    def valid_body(self, endpoint):
        wrapper = next(iter(endpoint.body))
        if endpoint.pattern == "/api/users":
            return {wrapper: {"username": f"new_{RUN}", "email": f"new_{RUN}@example.org", "password": "password1"}}
        if endpoint.pattern == "/api/users/login":
            return {wrapper: {"email": f"author_{RUN}@example.org", "password": f"pw-author-{RUN}-Secret!"}}
        if endpoint.pattern == "/api/user":
            return {wrapper: {"email": f"author_{RUN}@example.org", "username": f"author_{RUN}",
                              "password": f"pw-author-{RUN}-Secret!", "bio": "bio",
                              "image": "https://example.org/a.png"}}
        if "comments" in endpoint.pattern:
            return {wrapper: {"body": "a comment"}}
        return {wrapper: {"title": f"Hostile {RUN}", "description": "d", "body": "b", "tagList": [f"tag{RUN}"]}}

    def nullable(self, endpoint):
        return {"bio", "image"} if endpoint.pattern == "/api/user" else set()

    def required(self, endpoint):
        if endpoint.method == "PUT":
            return []
        return list(self.valid_body(endpoint)[next(iter(endpoint.body))].keys() - {"tagList"})

    def invalid_values(self, endpoint, field):
        """Values of the right type that the field's rules refuse."""
        too_long = {"email": 255, "username": 65, "password": 257, "bio": 4097, "image": 2049, "title": 256,
                    "description": 1025, "body": 65537 if "comments" in endpoint.pattern else None}
        out = []
        if field == "tagList":
            return [("with 33 tags", [f"t{i}" for i in range(33)]), ("with a tag of 65 characters", ["x" * 65]),
                    ("with a blank tag", ["  "]), ("with a huge tag", ["x" * 500_000])]
        if endpoint.pattern == "/api/users/login":
            # Every login must fail: wrong passwords, unknown or SQL emails.
            if field == "password":
                return [("wrong", "wrong-password"), ("SQL", "' OR '1'='1"), ("empty", ""),
                        ("huge", "p" * 900_000), ("NUL escaped", "pw\u0000x")]
            return [("SQL", "' OR '1'='1' --@example.org"), ("unknown", f"nobody_{RUN}@example.org"),
                    ("empty", ""), ("huge", "e" * 900_000 + "@example.org"), ("traversal", "../../etc/passwd")]
        if too_long.get(field):
            out.append((f"of {too_long[field]} characters", "x" * too_long[field]))
        if field in ("email", "username", "password", "title", "description", "body"):
            out.append(("blank", "   "))
        if field == "email":
            out += [("SQL", "' OR '1'='1"), ("without @", "nobody.example.org"), ("traversal", "../../etc/passwd"),
                    ("taken by another user", f"other_{RUN}@example.org")]
        if field == "username":
            out += [("SQL", "admin'--"), ("with a NUL escape", "a\u0000b"), ("traversal", "../../etc/passwd"),
                    ("taken by another user", f"other_{RUN}"), ("right-to-left override", "a\u202eb")]
        if field in ("title", "description", "body") and endpoint.method == "POST" and "comments" not in endpoint.pattern:
            out.append(("with a huge value", "x" * 1_100_000))
        return out

    def body_with(self, endpoint, field, value):
        body = self.valid_body(endpoint)
        body[next(iter(endpoint.body))][field] = value
        return self.spoiled(endpoint, body, field)

    def body_without(self, endpoint, field):
        body = self.valid_body(endpoint)
        del body[next(iter(endpoint.body))][field]
        return self.spoiled(endpoint, body, field)

    def spoiled(self, endpoint, body, field):
        """A body that stays invalid whatever the node makes of field: for
        an update, where every field is optional, another field is made
        invalid too (an email that another user holds), so that a node that
        accepted the value of field would still have nothing to write.
        Registration is made invalid by an email that is taken."""
        wrapper = next(iter(endpoint.body))
        if endpoint.pattern == "/api/users/login":
            if field != "password":
                body[wrapper]["password"] = "wrong-password"
        elif "comments" in endpoint.pattern:
            if field != "body":
                body[wrapper]["body"] = "   "
        elif endpoint.method == "PUT" or endpoint.pattern == "/api/users":
            if endpoint.pattern in ("/api/user", "/api/users") and field != "email":
                body[wrapper]["email"] = f"other_{RUN}@example.org"
            elif endpoint.pattern in ("/api/user", "/api/users"):
                body[wrapper]["username"] = f"other_{RUN}"
            elif field != "title":
                body[wrapper]["title"] = "   "
            else:
                body[wrapper]["body"] = "   "
        elif endpoint.pattern == "/api/articles" and field != "title":
            body[wrapper]["title"] = "   "
        elif endpoint.pattern == "/api/articles":
            body[wrapper]["body"] = "   "
        return json.dumps(body)


# ------------------------------------------------------------------ checks of the stack

def psql(sql):
    return subprocess.run(["psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql,
                           f"postgresql://shoal:shoal@127.0.0.1:{PG_PORT}/shoal"],
                          capture_output=True, text=True, check=True).stdout.strip()


def redis(*args):
    return subprocess.run(["redis-cli", "-p", REDIS_PORT, "--no-raw", *args],
                          capture_output=True, text=True, check=True).stdout.strip()


def snapshot():
    """Row counts and checksums of every table, and the session keys with
    their contents. world's randomNumber is left out: /updates writes it
    by design (TechEmpower's test), also for a clamped `queries`."""
    tables = psql("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename").split()
    state = {}
    for table in tables:
        if table == "world":
            state[table] = psql("SELECT count(*) || ' ' || sum(id) FROM world")
        else:
            state[table] = psql(f"SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), '')"
                                f" FROM \"{table}\" t")
    keys = sorted(k for k in redis("--scan", "--pattern", "session*").splitlines() if k)
    for key in keys:
        kind = redis("TYPE", key)
        if kind == "hash":
            fields = redis("HGETALL", key).splitlines()
            state[f"redis {key}"] = sorted(fields)
        elif kind == "set":
            state[f"redis {key}"] = sorted(redis("SMEMBERS", key).splitlines())
        else:
            state[f"redis {key}"] = kind
    state["redis session keys"] = len(keys)
    return state


def stack_state():
    if not STACK_FILE or not os.path.exists(STACK_FILE):
        return None
    with open(STACK_FILE) as f:
        return f.read().strip()


def node_pids(state):
    pids = {}
    for name in ("node1", "node2", "lb"):
        try:
            with open(os.path.join(state, "pids", f"{name}.pid")) as f:
                pids[name] = int(f.read().strip())
        except (OSError, ValueError):
            pids[name] = None
    return pids


def alive(pid):
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/status") as f:
            return not re.search(r"^State:\s*Z", f.read(), re.M)
    except OSError:
        return False


def logs(state):
    folder = os.path.join(state, "logs")
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), "rb") as f:
            yield name, f.read()


# ------------------------------------------------------------------ the run

BUILT_IN_PAGES = {"node": b"<html><head><title>", "haproxy": b"<html><body><h1>"}


def built_in_page(answer, parsers):
    """The page of a parser in parsers. libmicrohttpd 0.9.75 sends the
    status line and headers of some of its own answers twice (a bad
    Content-Length): the page then follows a second header block."""
    body = answer.body
    if body.startswith(b"HTTP/1.1 4") and b"\r\n\r\n" in body:
        body = body.split(b"\r\n\r\n", 1)[1]
    return any(body.startswith(BUILT_IN_PAGES[p]) for p in parsers)


def judge(case, answer, target_name, endpoint):
    label = f"{target_name}: {endpoint} {case.name}"
    expect = case.node_expect if target_name == "node" and case.node_expect else case.expect
    if answer is None:
        return check(False, label, "the connection closed without an answer")
    if answer.status >= 500:
        return check(False, label, f"a 5xx: {answer}")
    if 400 <= answer.status < 500:
        envelope = envelope_of(answer)
        if envelope is None:
            # Through HAProxy, the node's parser may answer too when HAProxy
            # let the request through (an overflowing Content-Length).
            parsers = case.parsers if target_name == "haproxy" else case.parsers & {"node"}
            if target_name in case.parsers and built_in_page(answer, parsers):
                # The parser's own page: nothing behind it saw the request.
                return check(True, label + f" ({answer.status}, the parser's own page)")
            return check(False, label, f"no JSON envelope: {answer}")
        what = f"{answer.status} {envelope['code']}"
    elif expect == "4xx":
        return check(False, label, f"not a 4xx: {answer}")
    else:
        what = f"{answer.status}"
    if isinstance(expect, set) and answer.status not in expect:
        return check(False, label, f"expected {sorted(expect)}: {answer}")
    missing = [n for n, v in SECURITY_HEADERS.items() if answer.header(n) != v]
    if missing:
        return check(False, label, f"{what} without {', '.join(missing)}")
    if case.verify is not None and answer.status < 400 and not case.verify(answer.json()):
        return check(False, label, f"unexpected content: {answer}")
    return check(True, label + f" ({what})")


def send_case(base, case):
    data = build(base, case.method, case.target, case.headers, case.body, host=case.host)
    if case.raw_header is not None:
        head, _, rest = data.partition(b"\r\n")
        data = head + b"\r\n" + case.raw_header + b"\r\n" + rest
    return exchange(base, data)


def main():
    state = stack_state()
    check(state is not None and os.path.isdir(state), "the stack's state folder is known",
          f"SHOAL_E2E_STACK_FILE={STACK_FILE!r}")
    fixture = Fixture()
    fixture.setup()
    if failures:
        note("the setup failed: nothing to attack")
        return 1
    pids_before = node_pids(state)
    before = snapshot()
    note(f"snapshot: {len([k for k in before if not k.startswith('redis')])} tables, "
         f"{before['redis session keys']} session keys")

    started = time.monotonic()
    sent = 0
    for endpoint in ENDPOINTS:
        for make in FAMILIES:
            for case in make(endpoint, fixture):
                # Straight to a node (both in turn, so both see the corpus),
                # then through HAProxy.
                node = NODES[(sent // 2) % len(NODES)]
                for target_name, base in (("node", node), ("haproxy", LB)):
                    judge(case, send_case(base, case), target_name, endpoint)
                    sent += 1
    note(f"{sent} hostile requests in {time.monotonic() - started:.1f} s")

    # Still there, still serving.
    pids_after = node_pids(state)
    for name in ("node1", "node2", "lb"):
        check(pids_before[name] is not None and pids_before[name] == pids_after[name] and alive(pids_after[name]),
              f"{name} is the same process and alive", f"{pids_before[name]} -> {pids_after[name]}")
    for base in NODES + [LB]:
        answer = exchange(base, build(base, "GET", "/api/tags"))
        check(answer is not None and answer.status == 200, f"{base} still serves GET /api/tags", str(answer))
        # Sessions are bound to their user: each token names its own.
        for who in ("author", "other"):
            answer = request_json(base, "GET", "/api/user", None, fixture.tokens[who])
            name = ((answer.json() or {}).get("user") or {}).get("username") if answer else None
            check(answer is not None and answer.status == 200 and name == f"{who}_{RUN}",
                  f"{base}: the {who}'s token is still the {who}'s session", str(answer))

    after = snapshot()
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    check(not changed, "nothing was written (every table, every session key)",
          "; ".join(f"{k}: {before.get(k)} -> {after.get(k)}" for k in changed))

    # The logs: no sanitizer report, access log lines are JSON, no secret.
    # The database's credentials too, as the nodes get them (DATABASE_URL).
    secrets = [t for t in fixture.tokens.values() if t] + fixture.passwords + [f"shoal:shoal@127.0.0.1:{PG_PORT}"]
    time.sleep(0.5)  # HAProxy's log lines are written asynchronously
    access = b"".join(c for n, c in logs(state) if n.startswith("node"))
    check(b'"/api/users/login"' in access and b'"/api/user"' in access,
          "the nodes' access log is on (it names the login and the password change)")
    for name, content in logs(state):
        reports = re.findall(rb"ERROR: (?:Address|Leak)Sanitizer|runtime error:", content)
        check(not reports, f"logs/{name} holds no sanitizer report", f"{len(reports)} found")
        leaked = [s[:6] + "..." for s in secrets if s.encode() in content]
        check(not leaked, f"logs/{name} holds no token or password of the traffic", ", ".join(leaked))
        if name.startswith("node"):
            bad = 0
            for line in content.splitlines():
                if line.startswith(b"{"):
                    try:
                        json.loads(line.decode("utf-8"))
                    except (ValueError, UnicodeDecodeError):
                        bad += 1
            check(bad == 0, f"logs/{name}: every JSON log line parses", f"{bad} do not")

    print(f"1..{checks}")
    if failures:
        note(f"{len(failures)} of {checks} checks failed")
        return 1
    note(f"all {checks} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
