#!/usr/bin/python3
"""tests/e2e/conduit_test.py: the RealWorld ("Conduit") API end to end.

Runs against a live stack of two nodes behind HAProxy (conduit_stack.sh up),
through HAProxy and against each node directly, and checks every endpoint of
issue 4 with its answers and error paths: 401, 403, 404, 422, 429, 201, 204,
the shapes of users, profiles, articles and comments, slugs, the list
filters and paging, the feed, favourites counted exactly under concurrency,
tags, CORS, per-viewer fields never shared through the cache, and writes
seen on the other node at once.

One line per check, TAP style ("ok N - ...", "not ok N - ... : why"); exit
status 1 when any check failed. Debian's /usr/bin/python3, standard library
only.

Environment:
  SHOAL_E2E_LB_URL      HAProxy (http://127.0.0.1:18180)
  SHOAL_E2E_NODE_URLS   the two nodes, comma-separated
                        (http://127.0.0.1:18181,http://127.0.0.1:18182)
  SHOAL_E2E_ADMIN_URLS  their admin listeners (/readyz), comma-separated
                        (http://127.0.0.1:18191,http://127.0.0.1:18192)
  SHOAL_E2E_SECTIONS    run only these sections, comma-separated (all)
  SHOAL_E2E_CORS_ORIGIN an origin the stack allows (http://e2e.example.org)
The stack's limits must be those conduit_stack.sh sets: 3 failed logins per
account and address, 6 per address, 10 registrations per address and hour,
a list limit of at most 100.

Rate limits are per client address. Every request that could count against
one goes out from its own loopback address (127.x.y.z, bound with
source_address): HAProxy forwards that address in X-Forwarded-For and the
nodes trust HAProxy's, so each check has limits of its own, and a second run
against the same stack starts afresh.
"""

import concurrent.futures
import http.client
import json
import os
import random
import re
import string
import sys
import threading
import time
import traceback
import urllib.parse

LB = os.environ.get("SHOAL_E2E_LB_URL", "http://127.0.0.1:18180").rstrip("/")
NODES = [u.rstrip("/") for u in
         os.environ.get("SHOAL_E2E_NODE_URLS", "http://127.0.0.1:18181,http://127.0.0.1:18182").split(",")]
ADMINS = [u.rstrip("/") for u in
          os.environ.get("SHOAL_E2E_ADMIN_URLS", "http://127.0.0.1:18191,http://127.0.0.1:18192").split(",")]
CORS_ORIGIN = os.environ.get("SHOAL_E2E_CORS_ORIGIN", "http://e2e.example.org")
SECTIONS = [s for s in os.environ.get("SHOAL_E2E_SECTIONS", "").split(",") if s]

LIMIT_DEFAULT = 20
LIMIT_MAX = 100
ACCOUNT_FAILURES = 3
ADDRESS_FAILURES = 6
REGISTRATIONS_PER_ADDRESS = 10
# SHOAL_TEST_TIME_SCALE (1; 3 in tests/run's sanitizer stage) stretches the
# time bounds below, and conduit_stack.sh stretches the nodes' L1 TTL with it.
TIME_SCALE = max(1.0, float(os.environ.get("SHOAL_TEST_TIME_SCALE") or 1))
# A write on one node must show on the other within this long (the measured
# invalidation window is about a millisecond; the L1 keeps an entry four
# times as long, 2 s times the scale, so a lost invalidation stays stale
# well past this).
VISIBLE_WITHIN_S = 0.5 * TIME_SCALE

RUN = "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(6))
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
USER_KEYS = {"email", "token", "username", "bio", "image"}
PROFILE_KEYS = {"username", "bio", "image", "following"}
ARTICLE_KEYS = {"slug", "title", "description", "body", "tagList", "createdAt", "updatedAt",
                "favorited", "favoritesCount", "author"}
LIST_ARTICLE_KEYS = ARTICLE_KEYS - {"body"}
COMMENT_KEYS = {"id", "createdAt", "updatedAt", "body", "author"}


# ------------------------------------------------------------------ output

class Report:
    def __init__(self):
        self.count = 0
        self.failed = []
        self.lock = threading.Lock()

    def check(self, condition, description, detail=""):
        with self.lock:
            self.count += 1
            if condition:
                print(f"ok {self.count} - {description}", flush=True)
            else:
                print(f"not ok {self.count} - {description}" + (f": {detail}" if detail else ""), flush=True)
                self.failed.append(f"{self.count} - {description}")
        return bool(condition)


report = Report()
check = report.check


def note(text):
    print(f"# {text}", flush=True)


# ------------------------------------------------------------------ HTTP

def random_address():
    """A loopback address of its own (127.0.0.1 is HAProxy's, trusted)."""
    return f"127.{random.randint(2, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


class Response:
    def __init__(self, status, headers, body, method, url):
        self.status = status
        self.headers = headers  # lower-case name -> list of values
        self.body = body
        self.method = method
        self.url = url
        self._json = None

    def header(self, name):
        values = self.headers.get(name.lower())
        return ", ".join(values) if values else None

    def json(self):
        if self._json is None:
            try:
                self._json = json.loads(self.body.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                self._json = {}
        return self._json

    def __str__(self):
        text = self.body.decode("utf-8", "replace")
        if len(text) > 400:
            text = text[:400] + "..."
        return f"{self.method} {self.url} -> {self.status} {text}"


def request(method, path, body=None, token=None, base=None, headers=None, scheme="Token",
            source=None, raw=None, timeout=30):
    """One request on a fresh connection. body: an object sent as JSON;
    raw: bytes sent as they are; source: the local address to send from."""
    url = (base or LB) + path
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout,
                                            source_address=(source, 0) if source else None)
    sent = {"Accept": "application/json", "Connection": "close"}
    payload = None
    if body is not None:
        payload = json.dumps(body).encode("utf-8")
        sent["Content-Type"] = "application/json"
    elif raw is not None:
        payload = raw
    if token is not None:
        sent["Authorization"] = f"{scheme} {token}" if scheme else token
    sent.update(headers or {})
    target = parts.path + ("?" + parts.query if parts.query else "")
    try:
        connection.request(method, target, body=payload, headers=sent)
        answer = connection.getresponse()
        received = {}
        for name, value in answer.getheaders():
            received.setdefault(name.lower(), []).append(value)
        return Response(answer.status, received, answer.read(), method, url)
    finally:
        connection.close()


def query(path, **params):
    return path + "?" + urllib.parse.urlencode(params) if params else path


def expect(response, status, description):
    return check(response.status == status, f"{description}: {status}",
                 f"got {response}")


def expect_error(response, status, description, field=None, code=None):
    """A 4xx with the error envelope {"errors": {"<field>": ["..."]}}."""
    body = response.json()
    errors = body.get("errors") if isinstance(body, dict) else None
    good = (response.status == status and isinstance(errors, dict) and len(errors) > 0 and
            all(isinstance(v, list) and v and all(isinstance(m, str) for m in v) for v in errors.values()))
    if field is not None:
        good = good and field in errors
    if code is not None:
        good = good and body.get("code") == code
    if status == 404:
        # The handler's own 404, not the router's "no such path".
        good = good and body.get("code") != "route.not_found"
    what = f"{status}" + (f" on {field}" if field else "") + (f" ({code})" if code else "")
    return check(good, f"{description}: {what}", f"got {response}")


def wait_until(predicate, seconds):
    """Seconds until predicate() held, or None when it never did."""
    start = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - start
        if time.monotonic() - start > seconds:
            return None
        time.sleep(0.005)


# ------------------------------------------------------------------ helpers

class User:
    def __init__(self, username, email, password, token):
        self.username = username
        self.email = email
        self.password = password
        self.token = token


def register(name, source=None, check_it=True):
    username = f"{name}_{RUN}"
    email = f"{username}@example.org"
    password = f"secret-{name}-{RUN}"
    response = request("POST", "/api/users",
                       {"user": {"username": username, "email": email, "password": password}},
                       source=source or random_address())
    if check_it:
        expect(response, 201, f"POST /api/users registers {username}")
    token = (response.json().get("user") or {}).get("token") if response.status == 201 else None
    if response.status != 201:
        raise RuntimeError(f"cannot register {username}: {response}")
    return User(username, email, password, token)


def login(email, password, source=None, base=None, headers=None):
    return request("POST", "/api/users/login", {"user": {"email": email, "password": password}},
                   source=source or random_address(), base=base, headers=headers)


def create_article(user, title, description="about it", body="the body", tags=None, base=None):
    article = {"title": title, "description": description, "body": body}
    if tags is not None:
        article["tagList"] = tags
    return request("POST", "/api/articles", {"article": article}, token=user.token, base=base)


def article_of(response):
    return response.json().get("article") or {}


def is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def check_user_shape(response, description, user=None):
    u = response.json().get("user")
    good = isinstance(u, dict) and set(u) == USER_KEYS and isinstance(u.get("token"), str) and u["token"] != ""
    if good and user is not None:
        good = u["username"] == user.username and u["email"].lower() == user.email.lower()
    check(good, f"{description}: user has exactly email, token, username, bio, image", f"got {response}")


def check_profile_shape(profile, description, username=None, following=None):
    good = isinstance(profile, dict) and set(profile) == PROFILE_KEYS
    if good and username is not None:
        good = profile["username"] == username
    if good and following is not None:
        good = profile["following"] is following
    check(good, f"{description}: profile has exactly username, bio, image, following"
          + (f" (following {str(following).lower()})" if following is not None else ""), f"got {profile}")


def check_article_shape(article, description, listed=False):
    keys = LIST_ARTICLE_KEYS if listed else ARTICLE_KEYS
    problems = []
    if not isinstance(article, dict):
        problems.append("not an object")
    else:
        if set(article) != keys:
            problems.append(f"keys {sorted(article)}")
        if not is_int(article.get("favoritesCount")):
            problems.append("favoritesCount not an integer")
        if not isinstance(article.get("favorited"), bool):
            problems.append("favorited not a boolean")
        tags = article.get("tagList")
        if not isinstance(tags, list) or tags != sorted(tags):
            problems.append(f"tagList not a sorted array: {tags}")
        for key in ("createdAt", "updatedAt"):
            if not TIMESTAMP.match(str(article.get(key))):
                problems.append(f"{key} {article.get(key)!r} not ISO 8601 UTC with milliseconds")
        author = article.get("author")
        if not isinstance(author, dict) or set(author) != PROFILE_KEYS:
            problems.append(f"author {author}")
    check(not problems, f"{description}: {'listed ' if listed else ''}article has "
          f"{'every field but body' if listed else 'every field'}, integer count, sorted tags, "
          "ISO 8601 UTC timestamps with milliseconds", "; ".join(problems) + f" in {article}")


def visible_on(base, predicate_on_response, path, token=None):
    """Polls GET path on base until predicate holds; the delay or None."""
    last = [None]

    def probe():
        last[0] = request("GET", path, token=token, base=base)
        return predicate_on_response(last[0])

    return wait_until(probe, VISIBLE_WITHIN_S), last[0]


def check_visible_everywhere(description, path, predicate, token=None):
    for number, base in enumerate(NODES, 1):
        delay, last = visible_on(base, predicate, path, token=token)
        check(delay is not None,
              f"{description}, on node {number} " + (f"(after {delay * 1000:.1f} ms)" if delay is not None else ""),
              f"not within {VISIBLE_WITHIN_S} s; last {last}")


# ------------------------------------------------------------------ users

def section_users():
    alice = register("alice")
    response = request("POST", "/api/users",
                       {"user": {"username": f"bob_{RUN}", "email": f"bob_{RUN}@example.org",
                                 "password": "bob-password"}}, source=random_address())
    expect(response, 201, "POST /api/users (register)")
    check_user_shape(response, "register")
    u = response.json().get("user", {})
    check(u.get("bio") is None and u.get("image") is None, "register: bio and image are null",
          f"got {u}")
    bob = User(f"bob_{RUN}", f"bob_{RUN}@example.org", "bob-password", u.get("token"))

    # 422 on registration
    def register_body(**fields):
        base = {"username": f"x_{RUN}_{random.randint(0, 10**9)}",
                "email": f"x{random.randint(0, 10**9)}_{RUN}@example.org", "password": "password"}
        base.update(fields)
        return {"user": {k: v for k, v in base.items() if v is not None}}

    source = random_address()  # at most 10 registrations an hour from one address
    cases = [
        ("blank username", {"username": ""}, "username"),
        ("white-space username", {"username": "   "}, "username"),
        ("blank email", {"email": ""}, "email"),
        ("blank password", {"password": ""}, "password"),
        ("missing username", {"username": None}, "username"),
        ("bad email", {"email": "not-an-email"}, "email"),
        ("username of 65 characters", {"username": "u" * 65}, "username"),
        ("email of 255 characters", {"email": "e" * 243 + "@example.org"}, "email"),
        ("password of 257 characters", {"password": "p" * 257}, "password"),
    ]
    for index, (what, fields, field) in enumerate(cases):
        if index % 5 == 0:
            source = random_address()
        expect_error(request("POST", "/api/users", register_body(**fields), source=source), 422,
                     f"POST /api/users with a {what}", field)
    source = random_address()
    expect_error(request("POST", "/api/users", register_body(email=alice.email.upper()), source=source), 422,
                 "POST /api/users with a taken email in another case", "email")
    expect_error(request("POST", "/api/users", register_body(username=alice.username), source=source), 422,
                 "POST /api/users with a taken username", "username")
    expect_error(request("POST", "/api/users", {"username": "no-wrapper"}, source=source), 422,
                 "POST /api/users without the user object")
    expect_error(request("POST", "/api/users", raw=b"{not json", source=source,
                         headers={"Content-Type": "application/json"}), 400,
                 "POST /api/users with a body that is not JSON")

    # login
    response = login(alice.email, alice.password)
    expect(response, 200, "POST /api/users/login")
    check_user_shape(response, "login", alice)
    second = response.json().get("user", {}).get("token")
    check(second and second != alice.token, "login hands out a new token", f"{second} vs {alice.token}")
    expect(login(alice.email.upper(), alice.password), 200, "POST /api/users/login with the email in upper case")
    expect_error(login(alice.email, "wrong password"), 401, "POST /api/users/login with a wrong password")
    expect_error(login(f"nobody_{RUN}@example.org", "whatever"), 401, "POST /api/users/login with an unknown email")
    expect_error(login("", alice.password), 422, "POST /api/users/login with a blank email", "email")
    expect_error(login(alice.email, ""), 422, "POST /api/users/login with a blank password", "password")

    # current user, the schemes and the 401s
    response = request("GET", "/api/user", token=alice.token)
    expect(response, 200, "GET /api/user with Token")
    check_user_shape(response, "GET /api/user", alice)
    check(response.json().get("user", {}).get("token") == alice.token, "GET /api/user carries the request's token")
    expect(request("GET", "/api/user", token=alice.token, scheme="Bearer"), 200, "GET /api/user with Bearer")
    expect(request("GET", "/api/user", token=alice.token, headers={"Content-Type": "application/json"}), 200,
           "GET /api/user with Content-Type: application/json and no body")
    expect_error(request("GET", "/api/user"), 401, "GET /api/user without a token")
    expect_error(request("GET", "/api/user", token=alice.token, scheme="Basic"), 401,
                 "GET /api/user with the Basic scheme")
    expect_error(request("GET", "/api/user", token="not-a-token"), 401, "GET /api/user with a malformed token")
    unknown = "".join(random.choice(string.ascii_letters + string.digits) for _ in range(len(alice.token or "x" * 43)))
    expect_error(request("GET", "/api/user", token=unknown), 401, "GET /api/user with an unknown token")
    expect_error(request("PUT", "/api/user", {"user": {"bio": "x"}}), 401, "PUT /api/user without a token")

    # update, seen at once on both nodes (GET /api/user and the profile are cached)
    for base in NODES:
        request("GET", "/api/user", token=alice.token, base=base)
        request("GET", f"/api/profiles/{alice.username}", base=base)
    response = request("PUT", "/api/user", {"user": {"bio": "I like dragons", "image": "https://i.example/a.png"}},
                       token=alice.token, base=NODES[0])
    expect(response, 200, "PUT /api/user (bio, image) on node 1")
    check_user_shape(response, "PUT /api/user", alice)
    u = response.json().get("user", {})
    check(u.get("bio") == "I like dragons" and u.get("image") == "https://i.example/a.png",
          "PUT /api/user answers the new bio and image", f"got {u}")
    check_visible_everywhere("the new bio in GET /api/user", "/api/user",
                             lambda r: r.status == 200 and r.json()["user"].get("bio") == "I like dragons",
                             token=alice.token)
    check_visible_everywhere("the new bio in GET /api/profiles/:username", f"/api/profiles/{alice.username}",
                             lambda r: r.status == 200 and r.json()["profile"].get("bio") == "I like dragons")
    response = request("PUT", "/api/user", {"user": {"image": None}}, token=alice.token)
    check(response.status == 200 and response.json().get("user", {}).get("image") is None
          and response.json()["user"].get("bio") == "I like dragons",
          "PUT /api/user with image null clears the image and keeps the bio", f"got {response}")
    expect_error(request("PUT", "/api/user", {"user": {"email": bob.email.upper()}}, token=alice.token), 422,
                 "PUT /api/user with a taken email in another case", "email")
    expect_error(request("PUT", "/api/user", {"user": {"username": bob.username}}, token=alice.token), 422,
                 "PUT /api/user with a taken username", "username")
    expect_error(request("PUT", "/api/user", {"user": {"email": "bad@"}}, token=alice.token), 422,
                 "PUT /api/user with a bad email", "email")
    expect_error(request("PUT", "/api/user", {"user": {"username": " "}}, token=alice.token), 422,
                 "PUT /api/user with a blank username", "username")
    expect_error(request("PUT", "/api/user", {"user": {"bio": "b" * 4097}}, token=alice.token), 422,
                 "PUT /api/user with a bio of 4097 characters", "bio")
    expect_error(request("PUT", "/api/user", {"user": {"image": "i" * 2049}}, token=alice.token), 422,
                 "PUT /api/user with an image of 2049 characters", "image")
    # The failed updates changed nothing.
    response = request("GET", "/api/user", token=alice.token)
    check(response.status == 200 and response.json()["user"]["username"] == alice.username
          and response.json()["user"]["email"] == alice.email, "failed updates changed nothing", f"got {response}")

    # logout ends only the session it is sent with
    session = login(alice.email, alice.password).json().get("user", {}).get("token")
    response = request("POST", "/api/users/logout", token=session)
    expect(response, 204, "POST /api/users/logout")
    check(response.body == b"", "logout's 204 has no body", f"got {response.body!r}")
    for number, base in enumerate(NODES, 1):
        expect_error(request("GET", "/api/user", token=session, base=base), 401,
                     f"GET /api/user with the token revoked by logout, on node {number}")
    expect(request("GET", "/api/user", token=alice.token), 200, "logout left the user's other session alone")
    expect_error(request("POST", "/api/users/logout"), 401, "POST /api/users/logout without a token")
    expect_error(request("POST", "/api/users/logout", token=session), 401, "POST /api/users/logout again")

    # a new password ends every session; the answer carries a new one
    other = login(alice.email, alice.password).json().get("user", {}).get("token")
    new_password = alice.password + "-new"
    response = request("PUT", "/api/user", {"user": {"password": new_password}}, token=alice.token)
    expect(response, 200, "PUT /api/user with a new password")
    fresh = response.json().get("user", {}).get("token")
    check(fresh and fresh not in (alice.token, other), "the answer to a password change carries a new token")
    for number, base in enumerate(NODES, 1):
        expect_error(request("GET", "/api/user", token=alice.token, base=base), 401,
                     f"the caller's old token after the password change, on node {number}")
        expect_error(request("GET", "/api/user", token=other, base=base), 401,
                     f"another session after the password change, on node {number}")
        expect(request("GET", "/api/user", token=fresh, base=base), 200,
               f"the new token after the password change, on node {number}")
    expect_error(login(alice.email, alice.password), 401, "login with the old password")
    expect(login(alice.email, new_password), 200, "login with the new password")
    alice.token, alice.password = fresh, new_password
    return alice, bob


# ------------------------------------------------------------------ 429

def section_limits():
    victim = register("victim")
    other = register("other")

    # per account and address
    attacker = random_address()
    for attempt in range(1, ACCOUNT_FAILURES + 1):
        expect_error(login(victim.email, "guess", source=attacker), 401,
                     f"failed login {attempt} of {ACCOUNT_FAILURES} for one account from one address")
    response = login(victim.email, victim.password, source=attacker)
    expect_error(response, 429, "then the right password for that account from that address")
    check((response.header("Retry-After") or "").isdigit() and int(response.header("Retry-After")) > 0,
          "the 429 carries Retry-After in seconds", f"Retry-After: {response.header('Retry-After')}")
    expect(login(victim.email, victim.password), 200,
           "the same account from another address is not locked out")
    expect(login(other.email, other.password, source=attacker), 200,
           "another account from the attacker's address still logs in (the address limit is not reached)")
    # HAProxy adds the address it saw after whatever the client sent, and
    # the node takes the right-most address that is not a trusted proxy:
    # a made-up X-Forwarded-For changes nothing.
    expect_error(login(victim.email, victim.password, source=attacker,
                       headers={"X-Forwarded-For": "198.51.100.77"}), 429,
                 "the locked pair with a made-up X-Forwarded-For through HAProxy")
    for number, base in enumerate(NODES, 1):
        expect_error(login(victim.email, victim.password, source=attacker, base=base,
                           headers={"X-Forwarded-For": "198.51.100.78"}), 429,
                     f"the locked pair straight to node {number} with a made-up X-Forwarded-For "
                     "(an untrusted peer's header is ignored)")

    # per address, whatever the account
    flooder = random_address()
    for attempt in range(1, ADDRESS_FAILURES + 1):
        expect_error(login(f"nobody{attempt}_{RUN}@example.org", "guess", source=flooder), 401,
                     f"failed login {attempt} of {ADDRESS_FAILURES} from one address, each for another account")
    response = login(other.email, other.password, source=flooder)
    expect_error(response, 429, "then a right password from that address")
    check((response.header("Retry-After") or "").isdigit(), "with Retry-After",
          f"Retry-After: {response.header('Retry-After')}")
    expect(login(other.email, other.password), 200, "the same account from another address logs in")

    # A proxy in front of HAProxy on a trusted address (127.0.0.1 here)
    # forwards its client's address, and that address is what counts.
    relayed = f"203.0.113.{random.randint(1, 254)}"
    for attempt in range(1, ACCOUNT_FAILURES + 1):
        login(victim.email, "guess", source="127.0.0.1", headers={"X-Forwarded-For": relayed})
    expect_error(login(victim.email, victim.password, source="127.0.0.1", headers={"X-Forwarded-For": relayed}),
                 429, "failures relayed from a trusted proxy count for the address it forwards")
    expect(login(victim.email, victim.password, source="127.0.0.1",
                 headers={"X-Forwarded-For": f"203.0.113.{(int(relayed.rsplit('.', 1)[1]) % 254) + 1}"}), 200,
           "and not for another address it forwards")

    # the general limit on registrations (--rate-limits), per address
    source = random_address()
    for attempt in range(REGISTRATIONS_PER_ADDRESS):
        request("POST", "/api/users", {"user": {"username": "", "email": "", "password": ""}}, source=source)
    response = request("POST", "/api/users", {"user": {"username": f"late_{RUN}", "email": f"late_{RUN}@example.org",
                                                       "password": "password"}}, source=source)
    expect_error(response, 429, f"registration {REGISTRATIONS_PER_ADDRESS + 1} within the hour from one address",
                 code="rate.limited")
    check(response.header("Retry-After") is not None, "with Retry-After")


# ------------------------------------------------------------------ profiles

def section_profiles(alice, bob, carol):
    response = request("GET", f"/api/profiles/{bob.username}")
    expect(response, 200, "GET /api/profiles/:username without a token")
    check_profile_shape(response.json().get("profile"), "GET profile", bob.username, False)
    expect_error(request("GET", f"/api/profiles/nobody_{RUN}"), 404, "GET /api/profiles/:username unknown")
    expect_error(request("GET", f"/api/profiles/{bob.username}", token="garbage"), 401,
                 "GET /api/profiles/:username with an invalid token")

    # per-viewer following is never served from another viewer's cache entry
    for base in NODES:
        request("GET", f"/api/profiles/{bob.username}", base=base)
    response = request("POST", f"/api/profiles/{bob.username}/follow", token=alice.token)
    expect(response, 200, "POST /api/profiles/:username/follow")
    check_profile_shape(response.json().get("profile"), "follow", bob.username, True)
    expect(request("POST", f"/api/profiles/{bob.username}/follow", token=alice.token), 200,
           "following again is no change")
    for number, base in enumerate(NODES, 1):
        r = request("GET", f"/api/profiles/{bob.username}", token=alice.token, base=base)
        check(r.status == 200 and r.json()["profile"]["following"] is True,
              f"the follower sees following true on node {number}", f"got {r}")
        r = request("GET", f"/api/profiles/{bob.username}", token=carol.token, base=base)
        check(r.status == 200 and r.json()["profile"]["following"] is False,
              f"another viewer sees following false on node {number}", f"got {r}")
        r = request("GET", f"/api/profiles/{bob.username}", base=base)
        check(r.status == 200 and r.json()["profile"]["following"] is False,
              f"an anonymous viewer sees following false on node {number}", f"got {r}")
    # The other order: the follower is the first to read after bob's
    # profile changed (which drops it from every cache), so that any cached
    # copy is filled by the follower's read; the others still see false.
    response = request("PUT", "/api/user", {"user": {"bio": f"bio {RUN}"}}, token=bob.token, base=NODES[1])
    expect(response, 200, "the followed user changes his bio")
    check_visible_everywhere("the new bio, read first by the follower (following true)",
                             f"/api/profiles/{bob.username}",
                             lambda r: r.status == 200 and r.json()["profile"]["bio"] == f"bio {RUN}"
                             and r.json()["profile"]["following"] is True, token=alice.token)
    for number, base in enumerate(NODES, 1):
        for viewer, token in (("another viewer", carol.token), ("an anonymous viewer", None)):
            r = request("GET", f"/api/profiles/{bob.username}", token=token, base=base)
            check(r.status == 200 and r.json()["profile"]["following"] is False,
                  f"after the follower's read, {viewer} sees following false on node {number}", f"got {r}")
    expect_error(request("POST", f"/api/profiles/{bob.username}/follow"), 401, "follow without a token")
    expect_error(request("POST", f"/api/profiles/nobody_{RUN}/follow", token=alice.token), 404,
                 "follow an unknown profile")
    expect_error(request("POST", f"/api/profiles/{alice.username}/follow", token=alice.token), 422,
                 "follow oneself")
    response = request("DELETE", f"/api/profiles/{bob.username}/follow", token=alice.token,
                       headers={"Content-Type": "application/json"})
    expect(response, 200, "DELETE /api/profiles/:username/follow with Content-Type: application/json")
    check_profile_shape(response.json().get("profile"), "unfollow", bob.username, False)
    check_visible_everywhere("the unfollow", f"/api/profiles/{bob.username}",
                             lambda r: r.status == 200 and r.json()["profile"]["following"] is False,
                             token=alice.token)
    expect_error(request("DELETE", f"/api/profiles/{bob.username}/follow"), 401, "unfollow without a token")
    expect_error(request("DELETE", f"/api/profiles/nobody_{RUN}/follow", token=alice.token), 404,
                 "unfollow an unknown profile")


# ------------------------------------------------------------------ articles

def section_articles(alice, bob, carol):
    title = f"How to Train Your Dragon {RUN}!"
    tags = [f"zeta{RUN}", f"alpha{RUN}", f"Mid{RUN}"]
    response = create_article(alice, title, "Ever wonder how?", "Very carefully.", tags)
    expect(response, 201, "POST /api/articles")
    article = article_of(response)
    check_article_shape(article, "POST /api/articles")
    check(article.get("tagList") == sorted(tags), "tagList comes back sorted", f"got {article.get('tagList')}")
    check(article.get("favorited") is False and article.get("favoritesCount") == 0,
          "a new article: favorited false, favoritesCount 0", f"got {article}")
    check(article.get("author", {}).get("username") == alice.username and
          article.get("author", {}).get("following") is False, "the author is the caller, following false")
    check(article.get("title") == title and article.get("body") == "Very carefully."
          and article.get("description") == "Ever wonder how?", "title, description and body as sent")
    check(article.get("createdAt") == article.get("updatedAt"), "a new article: updatedAt equals createdAt",
          f"{article.get('createdAt')} vs {article.get('updatedAt')}")
    slug = article.get("slug", "")
    check(slug.startswith(f"how-to-train-your-dragon-{RUN}") and re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", slug),
          "the slug comes from the title", f"slug {slug!r}")

    twin = article_of(create_article(alice, title, "again", "again"))
    check(twin.get("slug") and twin.get("slug") != slug, "the same title again gets another slug",
          f"{twin.get('slug')} vs {slug}")
    # The same title at once on both nodes: every article gets a slug of its own.
    racers = 20
    barrier = threading.Barrier(racers, timeout=60)

    def race(index):
        barrier.wait()
        return create_article(bob, f"Same Title {RUN}", base=NODES[index % len(NODES)])

    with concurrent.futures.ThreadPoolExecutor(max_workers=racers) as pool:
        answers = list(pool.map(race, range(racers)))
    raced = [article_of(r).get("slug") for r in answers]
    check(all(r.status == 201 for r in answers) and len(set(raced)) == racers,
          f"{racers} articles of one title created at once over both nodes: all 201, {racers} distinct slugs",
          f"statuses {sorted(r.status for r in answers)}, {len(set(raced))} distinct slugs")
    response = create_article(bob, f"No tags {RUN}")
    expect(response, 201, "POST /api/articles without tagList")
    check(article_of(response).get("tagList") == [], "without tagList, tagList is []", f"got {response}")
    bare_slug = article_of(response).get("slug")

    expect_error(request("POST", "/api/articles", {"article": {"title": "t", "description": "d", "body": "b"}}), 401,
                 "POST /api/articles without a token")
    for field in ("title", "description", "body"):
        fields = {"title": "t", "description": "d", "body": "b"}
        fields[field] = "  "
        expect_error(request("POST", "/api/articles", {"article": fields}, token=alice.token), 422,
                     f"POST /api/articles with a blank {field}", field)
        del fields[field]
        expect_error(request("POST", "/api/articles", {"article": fields}, token=alice.token), 422,
                     f"POST /api/articles without {field}", field)
    expect_error(request("POST", "/api/articles", {"article": {"title": "t" * 256, "description": "d", "body": "b"}},
                         token=alice.token), 422, "POST /api/articles with a title of 256 characters", "title")
    expect_error(request("POST", "/api/articles", {"title": "t"}, token=alice.token), 422,
                 "POST /api/articles without the article object")

    # read
    for number, base in enumerate(NODES, 1):
        response = request("GET", f"/api/articles/{slug}", base=base)
        expect(response, 200, f"GET /api/articles/:slug on node {number}")
        check(article_of(response) == article, f"node {number} answers the article as created",
              f"{article_of(response)} vs {article}")
    expect(request("GET", f"/api/articles/{slug}", headers={"Content-Type": "application/json"}), 200,
           "GET /api/articles/:slug with Content-Type: application/json")
    expect_error(request("GET", f"/api/articles/nothing-{RUN}"), 404, "GET /api/articles/:slug unknown")
    expect_error(request("GET", f"/api/articles/{slug}", token="garbage"), 401,
                 "GET /api/articles/:slug with an invalid token")

    # update: the body keeps the slug, the title changes it, seen on the other node
    time.sleep(0.002)  # so that updatedAt can move past createdAt
    response = request("PUT", f"/api/articles/{slug}", {"article": {"body": "With two hands"}},
                       token=alice.token, base=NODES[0])
    expect(response, 200, "PUT /api/articles/:slug (body) on node 1")
    updated = article_of(response)
    check_article_shape(updated, "PUT /api/articles/:slug")
    check(updated.get("slug") == slug, "a body change keeps the slug", f"got {updated.get('slug')}")
    check(updated.get("body") == "With two hands" and updated.get("title") == title,
          "the body changed, the title stayed", f"got {updated}")
    check(updated.get("updatedAt", "") > updated.get("createdAt", ""), "updatedAt moved past createdAt",
          f"{updated.get('createdAt')} -> {updated.get('updatedAt')}")
    check_visible_everywhere("the new body", f"/api/articles/{slug}",
                             lambda r: r.status == 200 and article_of(r).get("body") == "With two hands")
    new_title = f"Dragons Revisited {RUN}"
    response = request("PUT", f"/api/articles/{slug}", {"article": {"title": new_title}}, token=alice.token,
                       base=NODES[1])
    expect(response, 200, "PUT /api/articles/:slug (title) on node 2")
    new_slug = article_of(response).get("slug", "")
    check(new_slug.startswith(f"dragons-revisited-{RUN}") and new_slug != slug, "a new title gives a new slug",
          f"{slug} -> {new_slug}")
    check(article_of(response).get("body") == "With two hands", "the title change kept the body")
    check_visible_everywhere("the old slug answers 404", f"/api/articles/{slug}", lambda r: r.status == 404)
    check_visible_everywhere("the new slug answers the article", f"/api/articles/{new_slug}",
                             lambda r: r.status == 200 and article_of(r).get("title") == new_title)
    response = request("PUT", f"/api/articles/{new_slug}", {"article": {"tagList": ["b" + RUN, "a" + RUN]}},
                       token=alice.token)
    check(response.status == 200 and article_of(response).get("tagList") == ["a" + RUN, "b" + RUN]
          and article_of(response).get("slug") == new_slug, "PUT with tagList replaces the tags, sorted, same slug",
          f"got {response}")

    expect_error(request("PUT", f"/api/articles/{new_slug}", {"article": {"body": "mine"}}, token=bob.token), 403,
                 "PUT somebody else's article")
    expect_error(request("DELETE", f"/api/articles/{new_slug}", token=bob.token), 403,
                 "DELETE somebody else's article")
    expect_error(request("PUT", f"/api/articles/{new_slug}", {"article": {"body": "x"}}), 401,
                 "PUT /api/articles/:slug without a token")
    expect_error(request("DELETE", f"/api/articles/{new_slug}"), 401, "DELETE /api/articles/:slug without a token")
    expect_error(request("PUT", f"/api/articles/nothing-{RUN}", {"article": {"body": "x"}}, token=alice.token), 404,
                 "PUT /api/articles/:slug unknown")
    expect_error(request("DELETE", f"/api/articles/nothing-{RUN}", token=alice.token), 404,
                 "DELETE /api/articles/:slug unknown")
    expect_error(request("PUT", f"/api/articles/{new_slug}", {"article": {"title": " "}}, token=alice.token), 422,
                 "PUT /api/articles/:slug with a blank title", "title")
    response = request("GET", f"/api/articles/{new_slug}")
    check(response.status == 200 and article_of(response).get("body") == "With two hands",
          "the refused updates changed nothing", f"got {response}")

    # delete, seen on both nodes
    for base in NODES:
        request("GET", f"/api/articles/{bare_slug}", base=base)
    response = request("DELETE", f"/api/articles/{bare_slug}", token=bob.token,
                       headers={"Content-Type": "application/json"})
    expect(response, 204, "DELETE /api/articles/:slug with Content-Type: application/json")
    check(response.body == b"", "the 204 has no body", f"got {response.body!r}")
    check_visible_everywhere("the deleted article answers 404", f"/api/articles/{bare_slug}",
                             lambda r: r.status == 404)
    expect_error(request("DELETE", f"/api/articles/{bare_slug}", token=bob.token), 404, "DELETE it again")

    # A new title whose slug another article holds gets a slug of its own.
    taken = article_of(create_article(bob, f"Taken Title {RUN}", body="bob's")).get("slug")
    response = request("PUT", f"/api/articles/{twin.get('slug')}", {"article": {"title": f"Taken Title {RUN}"}},
                       token=alice.token)
    moved = article_of(response).get("slug", "")
    check(response.status == 200 and moved != taken and moved.startswith(f"taken-title-{RUN}"),
          "a title change to a title whose slug is taken gets another slug", f"{taken} and {response}")
    response = request("GET", f"/api/articles/{taken}")
    check(article_of(response).get("body") == "bob's" and article_of(response).get("author", {}).get("username")
          == bob.username, "and the article that held the slug is untouched", f"got {response}")
    return new_slug


# ------------------------------------------------------------------ lists and feed

def section_lists(carol):
    author1, author2, reader = register("lister1"), register("lister2"), register("reader")
    tag_x, tag_y = f"x{RUN}", f"y{RUN}"
    # Created in this order, the authors interleaved, so that a feed page
    # must merge both authors' articles.
    plan = [("a1", author1, [tag_x, tag_y]), ("b1", author2, [tag_y, tag_x]), ("a2", author1, [tag_x]),
            ("b2", author2, [tag_y])]
    slugs = {}
    for name, author, tags in plan:
        response = create_article(author, f"List {name} {RUN}", f"{name} description", f"{name} body", tags)
        slugs[name] = article_of(response).get("slug")
        time.sleep(0.003)  # distinct createdAt, so that "newest first" has one answer
    for name in ("a1", "b1"):
        expect(request("POST", f"/api/articles/{slugs[name]}/favorite", token=carol.token), 200,
               f"{carol.username} favourites {name}")

    def listed(params, token=None, base=None):
        response = request("GET", query("/api/articles", **params), token=token, base=base)
        body = response.json()
        names = [next((n for n, s in slugs.items() if s == a.get("slug")), a.get("slug"))
                 for a in body.get("articles", [])] if response.status == 200 else None
        return response, names, body.get("articlesCount")

    cases = [
        ({"tag": tag_x}, ["a2", "b1", "a1"]),
        ({"tag": tag_y}, ["b2", "b1", "a1"]),
        ({"author": author1.username}, ["a2", "a1"]),
        ({"favorited": carol.username, "tag": tag_x}, ["b1", "a1"]),
        ({"tag": tag_x, "author": author1.username}, ["a2", "a1"]),
        ({"tag": tag_y, "author": author1.username}, ["a1"]),
        ({"tag": tag_x, "author": author2.username, "favorited": carol.username}, ["b1"]),
        ({"tag": tag_y, "author": author1.username, "favorited": carol.username}, ["a1"]),
        ({"tag": tag_x, "author": author1.username, "favorited": author2.username}, []),
        ({"tag": f"none{RUN}"}, []),
        ({"author": f"nobody_{RUN}"}, []),
        ({"favorited": f"nobody_{RUN}"}, []),
    ]
    for params, expected in cases:
        response, names, count = listed(params)
        check(response.status == 200 and names == expected and count == len(expected),
              f"GET /api/articles?{urllib.parse.urlencode(params)}: {expected or 'none'}, articlesCount "
              f"{len(expected)}, newest first", f"got {names}, articlesCount {count}: {response}")
    response, _, _ = listed({"tag": tag_x})
    articles = response.json().get("articles", [])
    for article in articles[:1]:
        check_article_shape(article, "GET /api/articles", listed=True)
    check(all("body" not in a for a in articles), "no listed article has a body")
    check(is_int(response.json().get("articlesCount")), "articlesCount is an integer")
    for viewer, token, want in (("the fan", carol.token, True), ("another viewer", reader.token, False),
                                ("an anonymous viewer", None, False)):
        for number, base in enumerate(NODES, 1):
            response = request("GET", query("/api/articles", favorited=carol.username, tag=tag_x), token=token,
                               base=base)
            flags = [a.get("favorited") for a in response.json().get("articles", [])]
            check(response.status == 200 and flags == [want, want],
                  f"listed favorited is {str(want).lower()} for {viewer} on node {number}", f"got {flags}")
    expect(request("GET", "/api/articles", headers={"Content-Type": "application/json"}), 200,
           "GET /api/articles with Content-Type: application/json")
    expect_error(request("GET", "/api/articles", token="garbage"), 401, "GET /api/articles with an invalid token")

    # the feed
    expect_error(request("GET", "/api/articles/feed"), 401, "GET /api/articles/feed without a token")
    response = request("GET", "/api/articles/feed", token=reader.token)
    check(response.status == 200 and response.json().get("articles") == [] and response.json().get("articlesCount") == 0,
          "the feed of somebody who follows nobody is empty, articlesCount 0", f"got {response}")
    for author in (author1, author2):
        request("POST", f"/api/profiles/{author.username}/follow", token=reader.token)
    response = request("GET", "/api/articles/feed", token=reader.token)
    feed = [a.get("slug") for a in response.json().get("articles", [])]
    check(response.status == 200 and feed == [slugs[n] for n in ("b2", "a2", "b1", "a1")]
          and response.json().get("articlesCount") == 4,
          "GET /api/articles/feed: the followed authors' articles, newest first, articlesCount 4",
          f"got {feed} (want {[slugs[n] for n in ('b2', 'a2', 'b1', 'a1')]}): {response}")
    for article in response.json().get("articles", [])[:1]:
        check_article_shape(article, "the feed", listed=True)
        check(article.get("author", {}).get("following") is True, "the feed's authors are followed (following true)")
    response = request("GET", query("/api/articles/feed", limit=2, offset=1), token=reader.token)
    feed = [a.get("slug") for a in response.json().get("articles", [])]
    check(feed == [slugs["a2"], slugs["b1"]] and response.json().get("articlesCount") == 4,
          "the feed pages with limit and offset across both authors, articlesCount stays 4", f"got {feed}: {response}")
    response = request("GET", query("/api/articles/feed", limit=5, offset=3), token=reader.token)
    feed = [a.get("slug") for a in response.json().get("articles", [])]
    check(feed == [slugs["a1"]] and response.json().get("articlesCount") == 4,
          "the feed's last page (offset=3, limit=5) holds the oldest only", f"got {feed}: {response}")
    response = request("GET", query("/api/articles/feed", limit=1000), token=reader.token)
    check(response.status == 200 and len(response.json().get("articles", [])) == 4,
          "the feed with limit=1000 (cut to the maximum) holds all 4", f"got {response}")
    request("DELETE", f"/api/profiles/{author2.username}/follow", token=reader.token)
    response = request("GET", "/api/articles/feed", token=reader.token)
    feed = [a.get("slug") for a in response.json().get("articles", [])]
    check(feed == [slugs["a2"], slugs["a1"]] and response.json().get("articlesCount") == 2,
          "after an unfollow the feed holds the other author's only", f"got {feed}")

    # paging: 105 articles by one author
    pager = register("pager")
    total = LIMIT_MAX + 5
    created = []
    for index in range(total):
        response = create_article(pager, f"Page {index} {RUN}", "paging", "paging")
        if response.status != 201:
            check(False, f"create article {index} for paging", f"got {response}")
            return
        created.append(article_of(response).get("slug"))
    newest_first = list(reversed(created))
    response, _, count = listed({"author": pager.username})
    page = [a.get("slug") for a in response.json().get("articles", [])]
    check(len(page) == LIMIT_DEFAULT and count == total,
          f"without limit: {LIMIT_DEFAULT} articles, articlesCount {total}", f"got {len(page)}, {count}")
    times = [a.get("createdAt") for a in response.json().get("articles", [])]
    check(times == sorted(times, reverse=True), "newest first (createdAt does not increase)", f"got {times}")
    check(page and page[0] == newest_first[0], "the first is the last created", f"{page[:1]} vs {newest_first[:1]}")
    response, _, count = listed({"author": pager.username, "limit": 1000})
    page = [a.get("slug") for a in response.json().get("articles", [])]
    check(len(page) == LIMIT_MAX and count == total, f"limit=1000 is cut to {LIMIT_MAX}, articlesCount {total}",
          f"got {len(page)}, {count}")
    full = page
    response, _, _ = listed({"author": pager.username, "limit": 10, "offset": 10})
    page = [a.get("slug") for a in response.json().get("articles", [])]
    check(page == full[10:20], "limit=10&offset=10 is the second page of ten", f"got {page}")
    response, _, count = listed({"author": pager.username, "limit": 10, "offset": total - 3})
    page = [a.get("slug") for a in response.json().get("articles", [])]
    check(page == newest_first[-3:] and count == total, f"offset={total - 3} gives the 3 oldest",
          f"got {page} vs {newest_first[-3:]}")
    response, _, count = listed({"author": pager.username, "offset": total})
    check(response.status == 200 and response.json().get("articles") == [] and count == total,
          "an offset past the end gives [] and the total", f"got {response}")
    # The feed over an author with more than a page, merged with another.
    request("POST", f"/api/profiles/{pager.username}/follow", token=reader.token)
    response = request("GET", "/api/articles/feed", token=reader.token)
    feed = [a.get("slug") for a in response.json().get("articles", [])]
    check(feed == newest_first[:LIMIT_DEFAULT] and response.json().get("articlesCount") == total + 2,
          f"a feed over {total + 2} articles: the newest {LIMIT_DEFAULT}, articlesCount {total + 2}",
          f"got {len(feed)} articles, articlesCount {response.json().get('articlesCount')}")
    response = request("GET", query("/api/articles/feed", limit=10, offset=total - 5), token=reader.token)
    feed = [a.get("slug") for a in response.json().get("articles", [])]
    check(feed == newest_first[-5:] + [slugs["a2"], slugs["a1"]],
          f"the feed at offset={total - 5}: the pager's 5 oldest, then the other author's 2", f"got {feed}")


# ------------------------------------------------------------------ comments

def section_comments(alice, bob, carol, slug):
    other = article_of(create_article(carol, f"Other {RUN}")).get("slug")
    response = request("POST", f"/api/articles/{slug}/comments", {"comment": {"body": "Thank you so much!"}},
                       token=bob.token, base=NODES[0])
    expect(response, 201, "POST /api/articles/:slug/comments")
    comment = response.json().get("comment") or {}
    check(isinstance(comment, dict) and set(comment) == COMMENT_KEYS and is_int(comment.get("id"))
          and comment.get("body") == "Thank you so much!" and TIMESTAMP.match(str(comment.get("createdAt")))
          and TIMESTAMP.match(str(comment.get("updatedAt"))),
          "the comment has id (an integer), createdAt, updatedAt (ISO 8601 UTC, milliseconds), body, author",
          f"got {comment}")
    check_profile_shape(comment.get("author"), "the comment's author", bob.username, False)
    comment_id = comment.get("id")
    other_comment = (request("POST", f"/api/articles/{other}/comments", {"comment": {"body": "elsewhere"}},
                             token=bob.token).json().get("comment") or {}).get("id")

    def comment_ids(response):
        return [c.get("id") for c in response.json().get("comments", [])] if response.status == 200 else None

    check_visible_everywhere("the new comment in GET /api/articles/:slug/comments",
                             f"/api/articles/{slug}/comments", lambda r: comment_ids(r) == [comment_id])
    response = request("GET", f"/api/articles/{slug}/comments", token=carol.token)
    expect(response, 200, "GET /api/articles/:slug/comments with a token")
    comments = response.json().get("comments", [])
    check(len(comments) == 1 and set(comments[0]) == COMMENT_KEYS, "the list holds the comment with every field",
          f"got {comments}")
    request("POST", f"/api/profiles/{bob.username}/follow", token=carol.token)
    for viewer, token, want in (("a follower", carol.token, True), ("another viewer", alice.token, False),
                                ("an anonymous viewer", None, False)):
        for number, base in enumerate(NODES, 1):
            response = request("GET", f"/api/articles/{slug}/comments", token=token, base=base)
            flags = [c.get("author", {}).get("following") for c in response.json().get("comments", [])]
            check(flags == [want], f"the comment's author.following is {str(want).lower()} for {viewer} on node {number}",
                  f"got {flags}")
    request("DELETE", f"/api/profiles/{bob.username}/follow", token=carol.token)

    expect_error(request("POST", f"/api/articles/{slug}/comments", {"comment": {"body": "x"}}), 401,
                 "POST comment without a token")
    expect_error(request("POST", f"/api/articles/{slug}/comments", {"comment": {"body": "  "}}, token=bob.token), 422,
                 "POST comment with a blank body", "body")
    expect_error(request("POST", f"/api/articles/nothing-{RUN}/comments", {"comment": {"body": "x"}},
                         token=bob.token), 404, "POST comment on an unknown article")
    expect_error(request("GET", f"/api/articles/nothing-{RUN}/comments"), 404, "GET comments of an unknown article")
    expect_error(request("DELETE", f"/api/articles/{slug}/comments/{comment_id}"), 401,
                 "DELETE comment without a token")
    expect_error(request("DELETE", f"/api/articles/{slug}/comments/{comment_id}", token=carol.token), 403,
                 "DELETE somebody else's comment")
    expect_error(request("DELETE", f"/api/articles/{slug}/comments/999999999", token=bob.token), 404,
                 "DELETE an unknown comment id")
    expect_error(request("DELETE", f"/api/articles/{slug}/comments/{other_comment}", token=bob.token), 404,
                 "DELETE a comment of another article through this one's slug")
    expect_error(request("DELETE", f"/api/articles/nothing-{RUN}/comments/{comment_id}", token=bob.token), 404,
                 "DELETE a comment through an unknown slug")
    response = request("DELETE", f"/api/articles/{slug}/comments/{comment_id}", token=bob.token,
                       headers={"Content-Type": "application/json"})
    expect(response, 204, "DELETE /api/articles/:slug/comments/:id by its author")
    check_visible_everywhere("the deleted comment is gone", f"/api/articles/{slug}/comments",
                             lambda r: comment_ids(r) == [])
    expect_error(request("DELETE", f"/api/articles/{slug}/comments/{comment_id}", token=bob.token), 404,
                 "DELETE the comment again")
    response = request("GET", f"/api/articles/{other}/comments")
    check(comment_ids(response) == [other_comment], "the other article's comment is still there", f"got {response}")
    expect(request("DELETE", f"/api/articles/{other}", token=carol.token), 204, "DELETE an article with a comment")
    check_visible_everywhere("its comments answer 404", f"/api/articles/{other}/comments", lambda r: r.status == 404)


# ------------------------------------------------------------------ favourites

def section_favourites(alice, bob, carol):
    slug = article_of(create_article(alice, f"Favourite me {RUN}")).get("slug")
    expect_error(request("POST", f"/api/articles/{slug}/favorite"), 401, "POST favorite without a token")
    expect_error(request("POST", f"/api/articles/nothing-{RUN}/favorite", token=bob.token), 404,
                 "POST favorite of an unknown article")
    expect_error(request("DELETE", f"/api/articles/{slug}/favorite"), 401, "DELETE favorite without a token")
    expect_error(request("DELETE", f"/api/articles/nothing-{RUN}/favorite", token=bob.token), 404,
                 "DELETE favorite of an unknown article")

    # per-viewer favorited: warm both nodes' caches as the fan, then read as others
    for base in NODES:
        request("GET", f"/api/articles/{slug}", base=base)
    response = request("POST", f"/api/articles/{slug}/favorite", token=bob.token, base=NODES[0])
    expect(response, 200, "POST /api/articles/:slug/favorite on node 1")
    check(article_of(response).get("favorited") is True and article_of(response).get("favoritesCount") == 1,
          "favorited true, favoritesCount 1", f"got {response}")
    # The fan is the first to read after the favourite (which drops the
    # article from the caches), so any cached copy is filled by his read.
    check_visible_everywhere("favoritesCount 1, read first by the fan (favorited true)", f"/api/articles/{slug}",
                             lambda r: r.status == 200 and article_of(r).get("favoritesCount") == 1
                             and article_of(r).get("favorited") is True, token=bob.token)
    for number, base in enumerate(NODES, 1):
        for viewer, token in (("another viewer", carol.token), ("the author", alice.token),
                              ("an anonymous viewer", None)):
            response = request("GET", f"/api/articles/{slug}", token=token, base=base)
            check(response.status == 200 and article_of(response).get("favorited") is False
                  and article_of(response).get("favoritesCount") == 1,
                  f"{viewer} sees favorited false (count 1) on node {number}", f"got {response}")
        response = request("GET", f"/api/articles/{slug}", token=bob.token, base=base)
        check(article_of(response).get("favorited") is True, f"and the fan still sees true on node {number}")
    # The other order: after the author's edit, anonymous readers fill
    # the caches first, and the fan must still see his own flag.
    expect(request("PUT", f"/api/articles/{slug}", {"article": {"body": f"edited {RUN}"}}, token=alice.token,
                   base=NODES[1]), 200, "the author edits the favourited article")
    check_visible_everywhere("the edit, read first anonymously (favorited false)", f"/api/articles/{slug}",
                             lambda r: r.status == 200 and article_of(r).get("body") == f"edited {RUN}"
                             and article_of(r).get("favorited") is False)
    for number, base in enumerate(NODES, 1):
        response = request("GET", f"/api/articles/{slug}", token=bob.token, base=base)
        check(article_of(response).get("favorited") is True and article_of(response).get("favoritesCount") == 1,
              f"after anonymous reads, the fan sees favorited true on node {number}", f"got {response}")
    expect(request("POST", f"/api/articles/{slug}/favorite", token=bob.token), 200, "favouriting again")
    response = request("GET", f"/api/articles/{slug}")
    check(article_of(response).get("favoritesCount") == 1, "favouriting again counts once", f"got {response}")
    # author.following per viewer inside an article
    request("POST", f"/api/profiles/{alice.username}/follow", token=carol.token)
    for number, base in enumerate(NODES, 1):
        for viewer, token, want in (("a follower", carol.token, True), ("another viewer", bob.token, False),
                                    ("an anonymous viewer", None, False)):
            response = request("GET", f"/api/articles/{slug}", token=token, base=base)
            check(article_of(response).get("author", {}).get("following") is want,
                  f"the article's author.following is {str(want).lower()} for {viewer} on node {number}",
                  f"got {response}")
    request("DELETE", f"/api/profiles/{alice.username}/follow", token=carol.token)
    response = request("DELETE", f"/api/articles/{slug}/favorite", token=bob.token, base=NODES[1],
                       headers={"Content-Type": "application/json"})
    expect(response, 200, "DELETE /api/articles/:slug/favorite on node 2")
    check(article_of(response).get("favorited") is False and article_of(response).get("favoritesCount") == 0,
          "favorited false, favoritesCount 0", f"got {response}")
    check_visible_everywhere("favoritesCount 0", f"/api/articles/{slug}",
                             lambda r: r.status == 200 and article_of(r).get("favoritesCount") == 0)
    expect(request("DELETE", f"/api/articles/{slug}/favorite", token=bob.token), 200, "unfavouriting again")

    # 100 users favourite one article at once, half through each node
    fans_wanted = 100
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        sources = [random_address() for _ in range(fans_wanted)]
        fans = list(pool.map(lambda i: register(f"fan{i}", source=sources[i], check_it=False), range(fans_wanted)))
    check(len(fans) == fans_wanted and all(f.token for f in fans), f"{fans_wanted} fans registered")
    barrier = threading.Barrier(fans_wanted, timeout=60)

    def favourite(index):
        barrier.wait()
        return request("POST", f"/api/articles/{slug}/favorite", token=fans[index].token,
                       base=NODES[index % len(NODES)])

    with concurrent.futures.ThreadPoolExecutor(max_workers=fans_wanted) as pool:
        answers = list(pool.map(favourite, range(fans_wanted)))
    statuses = {}
    for answer in answers:
        statuses[answer.status] = statuses.get(answer.status, 0) + 1
    check(statuses == {200: fans_wanted}, f"{fans_wanted} parallel favourites over both nodes all answer 200",
          f"got {statuses}; e.g. {next((a for a in answers if a.status != 200), '')}")
    check(all(article_of(a).get("favorited") is True for a in answers), "each answers favorited true")
    check_visible_everywhere(f"favoritesCount {fans_wanted} after {fans_wanted} parallel favourites",
                             f"/api/articles/{slug}",
                             lambda r: r.status == 200 and article_of(r).get("favoritesCount") == fans_wanted)
    response = request("GET", query("/api/articles", favorited=fans[7].username))
    check([a.get("slug") for a in response.json().get("articles", [])] == [slug],
          "?favorited=<a fan> lists the article", f"got {response}")
    counts = [a.get("favoritesCount") for a in response.json().get("articles", [])]
    check(counts == [fans_wanted], f"and the list says favoritesCount {fans_wanted}", f"got {counts}")
    # half of them unfavourite at once
    barrier = threading.Barrier(fans_wanted // 2, timeout=60)

    def unfavourite(index):
        barrier.wait()
        return request("DELETE", f"/api/articles/{slug}/favorite", token=fans[index].token,
                       base=NODES[index % len(NODES)])

    with concurrent.futures.ThreadPoolExecutor(max_workers=fans_wanted // 2) as pool:
        answers = list(pool.map(unfavourite, range(fans_wanted // 2)))
    check(all(a.status == 200 for a in answers), f"{fans_wanted // 2} parallel unfavourites all answer 200")
    check_visible_everywhere(f"favoritesCount {fans_wanted // 2} after {fans_wanted // 2} parallel unfavourites",
                             f"/api/articles/{slug}",
                             lambda r: r.status == 200 and article_of(r).get("favoritesCount") == fans_wanted // 2)


# ------------------------------------------------------------------ tags

def section_tags(alice):
    for base in NODES:
        request("GET", "/api/tags", base=base)
    tag = f"fresh{RUN}"
    response = create_article(alice, f"Tagged {RUN}", tags=[tag, f"another{RUN}"], base=NODES[0])
    expect(response, 201, "POST an article with new tags")
    response = request("GET", "/api/tags")
    expect(response, 200, "GET /api/tags")
    tags = response.json().get("tags")
    check(isinstance(tags, list) and all(isinstance(t, str) for t in tags) and len(tags) == len(set(tags)),
          "tags is an array of distinct strings", f"got {tags}")
    check_visible_everywhere("the new tags in GET /api/tags", "/api/tags",
                             lambda r: r.status == 200 and tag in r.json().get("tags", []))
    expect(request("GET", "/api/tags", headers={"Content-Type": "application/json"}), 200,
           "GET /api/tags with Content-Type: application/json")


# ------------------------------------------------------------------ CORS

def section_cors():
    for path, method in (("/api/articles", "POST"), ("/api/user", "PUT"), ("/api/articles/some-slug", "DELETE")):
        response = request("OPTIONS", path, headers={"Origin": CORS_ORIGIN, "Access-Control-Request-Method": method,
                                                     "Access-Control-Request-Headers": "authorization,content-type"})
        allow_origin = response.header("Access-Control-Allow-Origin")
        methods = (response.header("Access-Control-Allow-Methods") or "").upper()
        allow_headers = (response.header("Access-Control-Allow-Headers") or "").lower()
        check(response.status in (200, 204) and allow_origin in (CORS_ORIGIN, "*") and method in methods
              and "authorization" in allow_headers and "content-type" in allow_headers,
              f"preflight OPTIONS {path} for {method}: 2xx with Access-Control-Allow-Origin, -Methods, -Headers",
              f"got {response.status}, {dict(response.headers)}")
    response = request("GET", "/api/tags", headers={"Origin": CORS_ORIGIN})
    check(response.status == 200 and response.header("Access-Control-Allow-Origin") in (CORS_ORIGIN, "*"),
          "a GET with an allowed Origin gets Access-Control-Allow-Origin", f"got {dict(response.headers)}")
    response = request("GET", "/api/tags", headers={"Origin": "http://elsewhere.example"})
    check(response.status == 200 and response.header("Access-Control-Allow-Origin") is None,
          "an Origin not configured gets no Access-Control-Allow-Origin", f"got {dict(response.headers)}")
    response = request("OPTIONS", "/api/articles", headers={"Origin": "http://elsewhere.example",
                                                            "Access-Control-Request-Method": "POST"})
    check(response.header("Access-Control-Allow-Origin") is None,
          "a preflight from an Origin not configured is not allowed", f"got {response}")


# ------------------------------------------------------------------ main

def main():
    note(f"run {RUN}: HAProxy {LB}, nodes {', '.join(NODES)}")
    # Ready as the nodes say on their admin ports; reachable through HAProxy
    # and on their public ports.
    for base, path in [(LB, "/healthz")] + [(b, "/healthz") for b in NODES] + [(b, "/readyz") for b in ADMINS]:
        try:
            response = request("GET", path, base=base, timeout=5)
        except OSError as error:
            print(f"Bail out! {base}{path}: {error}")
            return 1
        if response.status != 200:
            print(f"Bail out! {base}{path} is {response}")
            return 1
    started = time.monotonic()
    context = {}

    def run(name, function, *needs):
        if SECTIONS and name not in SECTIONS:
            return
        missing = [n for n in needs if n not in context]
        if missing:
            check(False, f"section {name}", f"skipped: it needs {', '.join(missing)}, which failed")
            return
        note(f"section {name}")
        begun = time.monotonic()
        try:
            result = function(*[context[n] for n in needs])
            if result is not None:
                context[name] = result
        except Exception as error:  # a check's prerequisite failed: say where, go on
            check(False, f"section {name} ran to its end",
                  f"{type(error).__name__}: {error}\n" + "".join(traceback.format_exc().splitlines(True)[-6:]))
        note(f"section {name}: {time.monotonic() - begun:.1f} s")

    def users():
        alice, bob = section_users()
        context["alice"], context["bob"] = alice, bob
        context["carol"] = register("carol")

    run("users", users)
    run("limits", section_limits)
    run("profiles", section_profiles, "alice", "bob", "carol")
    run("articles", lambda a, b, c: context.__setitem__("slug", section_articles(a, b, c)), "alice", "bob", "carol")
    run("lists", section_lists, "carol")
    run("comments", section_comments, "alice", "bob", "carol", "slug")
    run("favourites", section_favourites, "alice", "bob", "carol")
    run("tags", section_tags, "alice")
    run("cors", section_cors)

    print(f"1..{report.count}")
    note(f"{report.count} checks in {time.monotonic() - started:.1f} s, {len(report.failed)} failed")
    for failure in report.failed:
        note(f"failed: {failure}")
    return 1 if report.failed or report.count == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
