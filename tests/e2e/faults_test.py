#!/usr/bin/python3
"""tests/e2e/faults_test.py: faults under load, through HAProxy, 3 nodes.

    faults_test.py SCENARIO [SCENARIO...]    node_kill rolling_restart
                                              redis_restart postgres_restart
                                              slow_clients (or: all)

Runs against the stack of tests/e2e/faults_stack.sh, whose path file is
SHOAL_FAULTS_PATH_FILE. Each scenario drives a bounded load (threads, each
with its own keep-alive connection, no retries in the client: a request that
raised or got an answer the scenario does not allow is a failure), injects
its fault with deploy/local or a signal, checks the outcome, prints one
line per check (TAP style) and a summary line with the counts, and leaves
the stack whole for the next scenario. Debian's python, standard library
only. Exit 1 when a check failed.
"""

import http.client
import json
import os
import shlex
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
STACK = os.path.join(HERE, "faults_stack.sh")
PG_BIN = "/usr/lib/postgresql/15/bin"

# A request that takes longer than this is a hang, whatever it answers:
# the nodes give up on Redis after 1 s and on PostgreSQL after 2 s.
ANSWER_BOUND_S = 5.0
RECOVERY_BOUND_S = 5.0
# lb/haproxy.cfg's "timeout http-request".
HTTP_REQUEST_TIMEOUT_S = 10.0

failures = 0
checks = 0


def check(ok, text):
    global failures, checks
    checks += 1
    if ok:
        print("ok %d - %s" % (checks, text), flush=True)
    else:
        failures += 1
        print("not ok %d - %s" % (checks, text), flush=True)
    return ok


def note(text):
    print("# " + text, flush=True)


# ------------------------------------------------------------------ the stack

class Stack:
    def __init__(self, path_file):
        self.path_file = path_file
        out = subprocess.run([STACK, "env", path_file], check=True, capture_output=True, text=True).stdout
        env = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        self.state = env["SHOAL_STATE"]
        self.lb_port = int(env["SHOAL_LB_PORT"])
        self.stats_port = int(env["SHOAL_STATS_PORT"])
        self.node_base_port = int(env["SHOAL_NODE_BASE_PORT"])
        self.nodes = int(env["SHOAL_NODES"])
        self.pg_port = int(env["SHOAL_PG_PORT"])
        self.redis_port = int(env["SHOAL_REDIS_PORT"])

    def node_names(self):
        return ["node%d" % k for k in range(1, self.nodes + 1)]

    def node_port(self, name):
        return self.node_base_port + int(name[4:]) - 1

    def local(self, *args):
        """deploy/local ARGS on this stack; its output is kept for failures."""
        result = subprocess.run([STACK, "local", self.path_file] + list(args),
                                capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError("deploy/local %s failed: %s%s" % (" ".join(args), result.stdout, result.stderr))
        return result.stdout

    def pid(self, name):
        with open(os.path.join(self.state, "pids", name + ".pid")) as f:
            return int(f.read().strip())

    def lb_servers(self):
        """{server: row} of backend nodes from HAProxy's stats CSV."""
        conn = http.client.HTTPConnection("127.0.0.1", self.stats_port, timeout=2)
        try:
            conn.request("GET", "/stats;csv")
            text = conn.getresponse().read().decode()
        finally:
            conn.close()
        lines = text.splitlines()
        header = lines[0].lstrip("# ").split(",")
        rows = {}
        for line in lines[1:]:
            row = dict(zip(header, line.split(",")))
            if row.get("pxname") == "nodes" and row.get("svname") not in ("BACKEND", "FRONTEND"):
                rows[row["svname"]] = row
        return rows

    def wait_lb_status(self, name, wanted, seconds):
        """Seconds until HAProxy reports server `name` as `wanted`, or None."""
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            try:
                if self.lb_servers()[name]["status"].startswith(wanted):
                    return time.monotonic() - start
            except (OSError, KeyError, http.client.HTTPException):
                pass
            time.sleep(0.1)
        return None

    def psql(self, sql):
        """Rows of a query, as the stack's own database user, over TCP."""
        result = subprocess.run(
            [PG_BIN + "/psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
             "postgresql://shoal:shoal@127.0.0.1:%d/shoal" % self.pg_port, "-c", sql],
            capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise RuntimeError("psql failed: " + result.stderr)
        return [line for line in result.stdout.splitlines() if line != ""]

    def pg_data(self):
        """The cluster's folder: outside the state folder as root, where
        `deploy/local env` names it."""
        for line in self.local("env").splitlines():
            key, _, value = line.partition("=")
            if key == "SHOAL_PG_DATA":
                return shlex.split(value)[0]
        raise RuntimeError("deploy/local env names no SHOAL_PG_DATA")

    def as_postgres(self, argv):
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--"] + argv
        return subprocess.run(argv, cwd="/", capture_output=True, text=True, timeout=60)

    def whole(self):
        """Every service running and every node UP in HAProxy: what each
        scenario starts from and leaves behind."""
        self.local("up", "--nodes", str(self.nodes))
        for name in self.node_names():
            if self.wait_lb_status(name, "UP", 20) is None:
                raise RuntimeError("%s is not UP in HAProxy" % name)


# ------------------------------------------------------------------ HTTP

def call(port, method, path, body=None, token=None, timeout=10.0):
    """One request on its own connection: (status, headers, parsed body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = "Token " + token
        conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        response = conn.getresponse()
        data = response.read()
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = None
        return response.status, response, parsed
    finally:
        conn.close()


def register(port, tag):
    name = "f%s%s" % (tag, uuid.uuid4().hex[:10])
    status, _, body = call(port, "POST", "/api/users",
                           {"user": {"username": name, "email": name + "@faults.example.org",
                                     "password": "faults-password-1"}})
    if status != 201:
        raise RuntimeError("registration answered %s: %s" % (status, body))
    return name, body["user"]["token"]


def create_article(port, token, title):
    status, _, body = call(port, "POST", "/api/articles",
                           {"article": {"title": title, "description": "faults", "body": "faults under load",
                                        "tagList": ["faults"]}}, token=token)
    if status != 201:
        raise RuntimeError("article creation answered %s: %s" % (status, body))
    return body["article"]["slug"]


class Load:
    """`threads` clients, each with its own keep-alive connection to
    127.0.0.1:port, sending what next_request(thread, n) returns until
    stop() or `max_requests` in all. Every request is recorded as
    (kind, start, end, status, retry_after, error, marker), times in
    seconds since the load began."""

    def __init__(self, port, threads, next_request, max_requests=200000, pause_s=0.0):
        self.port = port
        self.threads = threads
        self.next_request = next_request
        self.max_requests = max_requests
        self.pause_s = pause_s
        self.results = []
        self.stopping = threading.Event()
        self.started = None
        self.workers = []

    def now(self):
        return time.monotonic() - self.started

    def start(self):
        self.started = time.monotonic()
        for index in range(self.threads):
            worker = threading.Thread(target=self.run, args=(index,), daemon=True)
            worker.start()
            self.workers.append(worker)
        return self

    def stop(self):
        self.stopping.set()
        for worker in self.workers:
            worker.join(ANSWER_BOUND_S * 3)
        return self.results

    def run(self, index):
        conn = None
        n = 0
        while not self.stopping.is_set() and len(self.results) < self.max_requests:
            kind, method, path, body, headers, marker = self.next_request(index, n)
            n += 1
            status = retry_after = error = None
            start = self.now()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=ANSWER_BOUND_S * 2)
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
                retry_after = response.getheader("Retry-After")
                if response.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                error = "%s: %s" % (type(e).__name__, e)
                if conn is not None:
                    conn.close()
                conn = None
            self.results.append((kind, start, self.now(), status, retry_after, error, marker))
            if self.pause_s > 0:
                time.sleep(self.pause_s)
        if conn is not None:
            conn.close()


def summarize(results, allowed):
    """Counts, and the requests that failed: an error, or a status that
    allowed(kind, status, retry_after, start) refuses."""
    failed = [r for r in results if r[5] is not None or not allowed(r[0], r[3], r[4], r[1])]
    counts = {}
    for r in results:
        key = "error" if r[5] is not None else str(r[3])
        counts[key] = counts.get(key, 0) + 1
    return failed, counts


def show_failed(failed, limit=8):
    for r in failed[:limit]:
        note("  failed: %s at %.2f s (%.3f s): status %s retry-after %s error %s" %
             (r[0], r[1], r[2] - r[1], r[3], r[4], r[5]))


def longest(results):
    return max((r[2] - r[1] for r in results), default=0.0)


def json_request(method, path, body, token):
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = "Token " + token
    return headers, None if body is None else json.dumps(body)


def comments_in_database(stack, prefix):
    return set(stack.psql("SELECT body FROM comments WHERE body LIKE '%s%%'" % prefix))


# ------------------------------------------------------------------ scenarios

def scenario_node_kill(stack):
    """kill -9 of one node during a read load: HAProxy's retries and
    redispatch hide it, health checks take it out; restarted, it gets
    traffic again."""
    _, token = register(stack.lb_port, "k")
    slug = create_article(stack.lb_port, token, "kill " + uuid.uuid4().hex)
    reads = [("article", "/api/articles/" + slug, None), ("user", "/api/user", token),
             ("list", "/api/articles?limit=5", None), ("tags", "/api/tags", None)]

    def next_request(index, n):
        kind, path, auth = reads[(index + n) % len(reads)]
        headers, _ = json_request("GET", path, None, auth)
        return kind, "GET", path, None, headers, None

    victim = "node2"
    load = Load(stack.lb_port, 8, next_request).start()
    time.sleep(2)
    killed_at = load.now()
    os.kill(stack.pid(victim), signal.SIGKILL)
    down_after = stack.wait_lb_status(victim, "DOWN", 10)
    check(down_after is not None, "HAProxy marks %s DOWN after kill -9 (%s s)" %
          (victim, "%.1f" % down_after if down_after is not None else "never"))
    time.sleep(1)
    stack.local("start", victim)
    restarted_at = load.now()
    up_after = stack.wait_lb_status(victim, "UP", 15)
    check(up_after is not None, "HAProxy marks %s UP after its restart (%s s)" %
          (victim, "%.1f" % up_after if up_after is not None else "never"))
    sessions_before = int(stack.lb_servers()[victim]["stot"])
    time.sleep(2)
    sessions_after = int(stack.lb_servers()[victim]["stot"])
    results = load.stop()

    failed, counts = summarize(results, lambda kind, status, retry_after, start: status == 200)
    show_failed(failed)
    note("node_kill: %d requests %s, killed at %.1f s, restarted at %.1f s, longest %.3f s" %
         (len(results), counts, killed_at, restarted_at, longest(results)))
    check(len(results) > 200, "the read load sent %d requests" % len(results))
    check(not failed, "no failed requests during kill -9 of %s (%d failed of %d)" %
          (victim, len(failed), len(results)))
    check(sessions_after > sessions_before,
          "the restarted %s gets traffic again (HAProxy sessions %d -> %d in 2 s)" %
          (victim, sessions_before, sessions_after))
    return "requests %d, failed %d, down after %.1f s, up %.1f s after restart" % (
        len(results), len(failed), down_after or -1, up_after or -1)


def scenario_rolling_restart(stack):
    """SIGTERM to every node in turn, each restarted before the next,
    during reads and writes: the drain loses nothing."""
    _, token = register(stack.lb_port, "r")
    slug = create_article(stack.lb_port, token, "rolling " + uuid.uuid4().hex)
    prefix = "rolling-%s-" % uuid.uuid4().hex[:12]

    def next_request(index, n):
        if n % 3 == 0:
            marker = "%s%d-%d" % (prefix, index, n)
            headers, body = json_request("POST", "", {"comment": {"body": marker}}, token)
            return "write", "POST", "/api/articles/%s/comments" % slug, body, headers, marker
        path = "/api/articles/" + slug if n % 3 == 1 else "/api/user"
        headers, _ = json_request("GET", path, None, token)
        return "read", "GET", path, None, headers, None

    load = Load(stack.lb_port, 8, next_request).start()
    time.sleep(1)
    timings = []
    for name in stack.node_names():
        began = time.monotonic()
        stack.local("stop", name)  # SIGTERM; returns once the node has exited
        stopped = time.monotonic() - began
        stack.local("start", name)
        up_after = stack.wait_lb_status(name, "UP", 15)
        check(up_after is not None, "%s stopped with SIGTERM in %.1f s, restarted, UP again after %s s" %
              (name, stopped, "%.1f" % up_after if up_after is not None else "never"))
        timings.append(stopped)
    time.sleep(1)
    results = load.stop()

    def allowed(kind, status, retry_after, start):
        return status == (201 if kind == "write" else 200)

    failed, counts = summarize(results, allowed)
    show_failed(failed)
    writes = [r for r in results if r[0] == "write"]
    acknowledged = {r[6] for r in writes if r[3] == 201}
    stored = comments_in_database(stack, prefix)
    note("rolling_restart: %d requests (%d writes) %s, longest %.3f s" %
         (len(results), len(writes), counts, longest(results)))
    check(len(writes) > 50, "the load sent %d writes" % len(writes))
    check(not failed, "no failed requests, writes included, over a rolling restart of %d nodes (%d failed of %d)" %
          (stack.nodes, len(failed), len(results)))
    check(acknowledged <= stored, "every acknowledged write is in PostgreSQL (%d acknowledged, %d stored, %d missing)" %
          (len(acknowledged), len(stored), len(acknowledged - stored)))
    check(len(stored) <= len(writes), "no write was stored twice or made up (%d stored of %d sent)" %
          (len(stored), len(writes)))
    return "requests %d (writes %d), failed %d, all %d acknowledged writes stored" % (
        len(results), len(writes), len(failed), len(acknowledged))


def outage_window(results, down_at, up_at, what):
    """Checks shared by the tier outages; returns (503 count, recovery s)."""
    unavailable = [r for r in results if r[3] == 503]
    early = [r for r in unavailable if r[2] < down_at]
    check(not early, "no 503 before %s went down (%d)" % (what, len(early)))
    late = [r for r in unavailable if r[1] > up_at + RECOVERY_BOUND_S]
    check(not late, "no 503 started more than %.0f s after %s was back (%d)" % (RECOVERY_BOUND_S, what, len(late)))
    without = [r for r in unavailable if not r[4]]
    check(not without, "every 503 carries Retry-After (%d without)" % len(without))
    recovered = max([r[2] for r in unavailable if r[2] >= up_at] + [up_at]) - up_at
    after = [r for r in results if r[1] > up_at + RECOVERY_BOUND_S]
    check(len(after) > 20, "requests went on after the recovery bound (%d)" % len(after))
    if unavailable:
        note("%s down at %.2f s, back at %.2f s; 503 answers from %.2f s to %.2f s" % (
            what, down_at, up_at, min(r[1] for r in unavailable), max(r[2] for r in unavailable)))
    return len(unavailable), recovered


# ------------------------------------------------------------------ the tiers, seen directly

class Resp:
    """One connection to Redis speaking RESP: enough for the probe and for
    filling a spare database."""

    def __init__(self, port, timeout):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buffer = b""

    def close(self):
        self.sock.close()

    def line(self):
        while b"\r\n" not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("Redis closed the connection")
            self.buffer += data
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def exactly(self, count):
        while len(self.buffer) < count + 2:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("Redis closed the connection")
            self.buffer += data
        value, self.buffer = self.buffer[:count], self.buffer[count + 2:]
        return value

    def reply(self):
        """('+', text), ('-', text), (':', int), ('$', bytes or None) or ('*', list)."""
        line = self.line()
        kind, rest = chr(line[0]), line[1:]
        if kind in "+-":
            return kind, rest.decode()
        if kind == ":":
            return kind, int(rest)
        if kind == "$":
            return kind, None if int(rest) < 0 else self.exactly(int(rest))
        return kind, [self.reply() for _ in range(max(int(rest), 0))]

    def command(self, *args):
        parts = [b"*%d\r\n" % len(args)]
        for arg in args:
            data = str(arg).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
        self.sock.sendall(b"".join(parts))
        return self.reply()

    def expect(self, *args):
        kind, value = self.command(*args)
        if kind == "-":
            raise RuntimeError("Redis %s: %s" % (" ".join(str(a) for a in args[:2]), value))
        return value


# Enough keys that Redis, started on its append-only file, loads for a second
# or more (about 2 s on the 2-core development machine) and answers LOADING
# meanwhile; the keys go to database 15, which shoal does not use.
LOADING_KEYS = 500000


def make_loading_slow(stack):
    """Fills database 15 and rewrites the AOF as commands (no RDB preamble,
    which would load faster). Filled with the AOF off: appended key by key
    it would take much longer."""
    redis = Resp(stack.redis_port, 120)
    try:
        redis.expect("CONFIG", "SET", "appendonly", "no")
        redis.expect("SELECT", "15")
        redis.expect("EVAL", "for i = 1, tonumber(ARGV[1]) do redis.call('SET', 'fill:' .. i, 'x') end return 1",
                     "0", LOADING_KEYS)
        redis.expect("CONFIG", "SET", "aof-use-rdb-preamble", "no")
        redis.expect("CONFIG", "SET", "appendonly", "yes")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            info = redis.expect("INFO", "persistence").decode()
            if "aof_enabled:1" in info and "aof_rewrite_in_progress:0" in info and "aof_rewrite_scheduled:0" in info:
                return "aof_last_bgrewrite_status:ok" in info
            time.sleep(0.05)
        return False
    finally:
        redis.close()


def make_loading_fast(stack):
    """Empties database 15 again, and the AOF with it, for the restarts after."""
    redis = Resp(stack.redis_port, 60)
    try:
        redis.expect("SELECT", "15")
        redis.expect("FLUSHDB")
        redis.expect("BGREWRITEAOF")
    finally:
        redis.close()


class Probe:
    """Asks a tier what a new client gets, every few milliseconds, on a
    connection of its own each time, and counts the answers."""

    def __init__(self, ask, interval=0.005):
        self.ask = ask
        self.interval = interval
        self.counts = {}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def run(self):
        while not self.stopping.wait(self.interval):
            try:
                answer = self.ask()
            except OSError as e:
                answer = "refused" if isinstance(e, ConnectionRefusedError) else type(e).__name__
            self.counts[answer] = self.counts.get(answer, 0) + 1

    def stop(self):
        self.stopping.set()
        self.thread.join()
        return self.counts


def redis_ping(port):
    """PONG, or the error's code word (LOADING, ...)."""
    redis = Resp(port, 1)
    try:
        _, text = redis.command("PING")
        return text.split(" ", 1)[0]
    finally:
        redis.close()


def postgres_hello(port):
    """'up' when PostgreSQL asks a new connection to authenticate; else the
    SQLSTATE it refuses it with (57P03: starting up or shutting down)."""
    body = struct.pack("!I", 196608) + b"user\0shoal\0database\0shoal\0\0"
    conn = socket.create_connection(("127.0.0.1", port), timeout=1)
    try:
        conn.sendall(struct.pack("!I", len(body) + 4) + body)
        kind = conn.recv(1)
        if kind == b"R":
            return "up"
        if kind != b"E":
            return "closed" if kind == b"" else "other"
        data = b""
        while len(data) < 4:
            chunk = conn.recv(4 - len(data))
            if not chunk:
                return "closed"
            data += chunk
        length = struct.unpack("!I", data)[0] - 4
        data = b""
        while len(data) < length:
            chunk = conn.recv(length - len(data))
            if not chunk:
                break
            data += chunk
        for field in data.split(b"\0"):
            if field[:1] == b"C":
                return field[1:].decode()
        return "error"
    finally:
        conn.close()


# ------------------------------------------------------------------ what a client does meanwhile

class Mix:
    """What the tier scenarios send, each thread in turn: a session read
    (GET /api/user), a cached read (the article, the tags), a write with an
    Idempotency-Key (a comment with a unique body), a login (the
    rate-limited route, every other turn) and the article list. Writes are checked against
    PostgreSQL afterwards."""

    PASSWORD = "faults-password-1"

    def __init__(self, stack, tag):
        self.users = [register(stack.lb_port, tag) for _ in range(4)]
        self.slug = create_article(stack.lb_port, self.users[0][1], "%s %s" % (tag, uuid.uuid4().hex))
        self.prefix = "%s-%s-" % (tag, uuid.uuid4().hex[:12])
        self.round = 0

    def next_round(self, fresh=None):
        """A new marker prefix; fresh: a session made just before the fault."""
        self.round += 1
        self.sessions = self.users + ([fresh] if fresh is not None else [])

    def next_request(self, index, n):
        name, token = self.sessions[(index + n) % len(self.sessions)]
        step = n % 6
        # A login every 12th request: about 100/s for the 8 threads, under
        # the stack's login limit (10,000/min, burst 1000), so that a 429 is
        # a failure here too.
        if step == 0 or (step == 4 and (n // 6) % 2 == 1):
            headers, _ = json_request("GET", "/api/user", None, token)
            return "session", "GET", "/api/user", None, headers, None
        if step in (1, 3):
            path = "/api/articles/" + self.slug if step == 1 else "/api/tags"
            headers, _ = json_request("GET", path, None, None)
            return "cached", "GET", path, None, headers, None
        if step == 2:
            marker = "%s%d-%d-%d" % (self.prefix, self.round, index, n)
            headers, body = json_request("POST", "", {"comment": {"body": marker}}, token)
            headers["Idempotency-Key"] = marker
            return "write", "POST", "/api/articles/%s/comments" % self.slug, body, headers, marker
        if step == 4:
            headers, body = json_request("POST", "", {"user": {"email": name + "@faults.example.org",
                                                              "password": self.PASSWORD}}, None)
            return "login", "POST", "/api/users/login", body, headers, None
        headers, _ = json_request("GET", "/api/articles?limit=5", None, None)
        return "list", "GET", "/api/articles?limit=5", None, headers, None

    @staticmethod
    def allowed(kind, status, retry_after, start):
        """2xx, or 503 with Retry-After: never a 500, never an error."""
        if status == 503:
            return retry_after is not None
        return status == (201 if kind == "write" else 200)

    def check_writes(self, stack, results, what):
        writes = [r for r in results if r[0] == "write"]
        acknowledged = {r[6] for r in writes if r[3] == 201}
        refused = {r[6] for r in writes if r[3] != 201}
        stored = comments_in_database(stack, "%s%d-" % (self.prefix, self.round))
        check(acknowledged <= stored, "%s: every acknowledged write is in PostgreSQL (%d acknowledged, %d stored, "
              "%d missing)" % (what, len(acknowledged), len(stored), len(acknowledged - stored)))
        check(stored <= acknowledged | refused, "%s: nothing stored that was not sent (%d)" %
              (what, len(stored - acknowledged - refused)))
        return len(acknowledged), len(stored & refused)


def tier_outage(stack, mix, what, fault, recover, probe=None):
    """Load, fault, recovery; the checks every tier outage shares. Returns
    (results, 503 count, recovery s, probe counts)."""
    load = Load(stack.lb_port, 8, mix.next_request, pause_s=0.002).start()
    time.sleep(1.5)
    probe = probe.start() if probe is not None else None
    down_at = load.now()
    fault()
    recover()
    up_at = load.now()
    counts = probe.stop() if probe is not None else {}
    time.sleep(RECOVERY_BOUND_S + 1.5)
    results = load.stop()
    failed, statuses = summarize(results, mix.allowed)
    show_failed(failed)
    kinds = {}
    for r in results:
        kinds[r[0]] = kinds.get(r[0], 0) + 1
    note("%s: %d requests %s %s, down at %.1f s, back at %.1f s, longest %.3f s; probe %s" %
         (what, len(results), kinds, statuses, down_at, up_at, longest(results), counts))
    check(not failed, "%s: every answer is 2xx or 503 with Retry-After, no errors (%d failed of %d)" %
          (what, len(failed), len(results)))
    check(longest(results) < ANSWER_BOUND_S, "%s: every request answered within %.0f s (longest %.3f s)" %
          (what, ANSWER_BOUND_S, longest(results)))
    unavailable, recovered = outage_window(results, down_at, up_at, what)
    check(unavailable > 0, "%s: the outage was seen (%d answers 503)" % (what, unavailable))
    check(recovered <= RECOVERY_BOUND_S, "%s: recovered %.2f s after it was back" % (what, recovered))
    return results, unavailable, recovered, counts


def scenario_redis_restart(stack):
    """Redis killed (SIGKILL), stopped (SIGTERM), and restarted on an AOF
    that takes seconds to load (LOADING), each during a load of session
    reads, cached reads, writes with Idempotency-Key and logins: 503 with
    Retry-After while Redis cannot serve, never a 500; answers within a
    bound; sessions and acknowledged writes kept; recovery within 5 s."""
    mix = Mix(stack, "s")
    summary = []
    for how in ("SIGKILL", "SIGTERM", "LOADING"):
        # A session made just before the fault: acknowledged, so it must survive.
        fresh = register(stack.lb_port, "s")
        mix.next_round(fresh)
        probe = None
        if how == "LOADING":
            check(make_loading_slow(stack), "LOADING: %d keys in database 15, the AOF rewritten" % LOADING_KEYS)
            probe = Probe(lambda: redis_ping(stack.redis_port))

        def fault(how=how):
            if how == "SIGKILL":
                os.kill(stack.pid("redis"), signal.SIGKILL)
            else:
                stack.local("stop", "redis")
            if how != "LOADING":
                time.sleep(2)

        # deploy/local start returns once Redis answers PING: after loading.
        results, unavailable, recovered, counts = tier_outage(
            stack, mix, "Redis " + how, fault, lambda: stack.local("start", "redis"), probe)
        if how == "LOADING":
            make_loading_fast(stack)
            check(counts.get("LOADING", 0) > 0, "LOADING: the probe saw Redis answer LOADING %d times "
                  "(the window existed)" % counts.get("LOADING", 0))
        valid = 0
        for name, token in mix.sessions:
            status, _, body = call(stack.lb_port, "GET", "/api/user", token=token)
            if status == 200 and body["user"]["username"] == name:
                valid += 1
        check(valid == len(mix.sessions), "Redis %s: %d of %d sessions still valid, the newest included" %
              (how, valid, len(mix.sessions)))
        acknowledged, _ = mix.check_writes(stack, results, "Redis " + how)
        summary.append("%s: requests %d, 503 %d, recovery %.2f s, sessions %d/%d, %d acknowledged writes stored%s" % (
            how, len(results), unavailable, recovered, valid, len(mix.sessions), acknowledged,
            ", LOADING seen %d times" % counts.get("LOADING", 0) if how == "LOADING" else ""))
    return "; ".join(summary)


def scenario_postgres_restart(stack):
    """PostgreSQL shut down (fast: its sessions get 57P01) and crashed
    (immediate: crash recovery at start, 57P03 meanwhile), each during the
    same load: 503 with Retry-After only while it is down, never a 500,
    recovery within 5 s, and every acknowledged write is in the database."""
    mix = Mix(stack, "p")
    summary = []
    starting = 0
    for how in ("fast", "immediate"):
        mix.next_round()
        # A session of its own, idle until the shutdown ends it, says what
        # PostgreSQL tells its clients (57P01); the probe, what a new
        # connection gets while it stops and starts (57P03).
        idle = subprocess.Popen(
            [PG_BIN + "/psql", "-X", "-q", "-v", "VERBOSITY=verbose",
             "postgresql://shoal:shoal@127.0.0.1:%d/shoal" % stack.pg_port, "-c", "SELECT pg_sleep(60)"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

        def fault(how=how):
            if how == "fast":
                stack.local("stop", "postgres")  # pg_ctl stop -m fast
            else:
                # A crash: no checkpoint, the WAL replays at start.
                result = stack.as_postgres([PG_BIN + "/pg_ctl", "-D", stack.pg_data(),
                                            "-m", "immediate", "-w", "-t", "30", "stop"])
                check(result.returncode == 0, "pg_ctl stop -m immediate: %s" % (result.stderr.strip() or "done"))
            time.sleep(2)

        # pg_ctl start -w: returns once it accepts connections.
        results, unavailable, recovered, counts = tier_outage(
            stack, mix, "PostgreSQL " + how, fault, lambda: stack.local("start", "postgres"),
            Probe(lambda: postgres_hello(stack.pg_port)))
        try:
            _, told = idle.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            idle.kill()
            _, told = idle.communicate()
        if how == "fast":
            check("57P01" in told, "PostgreSQL fast: its sessions were told 57P01 (%s)" % told.strip()[:120])
        acknowledged, refused_stored = mix.check_writes(stack, results, "PostgreSQL " + how)
        note("PostgreSQL %s: new connections got %s; %d writes refused with 503 stored all the same "
             "(their commit's fate was unknown to the node)" % (how, counts, refused_stored))
        starting += counts.get("57P03", 0)
        summary.append("%s: requests %d, 503 %d, recovery %.2f s, %d acknowledged writes stored, 57P03 seen %d times"
                       % (how, len(results), unavailable, recovered, acknowledged, counts.get("57P03", 0)))
    check(starting > 0, "PostgreSQL: the probe saw it refuse new connections while stopping or starting (57P03, "
          "%d times): the window existed" % starting)
    return "; ".join(summary)


class Slowloris:
    """`count` connections to port, each sending its request a byte every
    `interval` s: the header, or (bodies) a POST whose declared body comes
    a byte at a time. Returns how many connections were open at the end."""

    def __init__(self, port, count, bodies, interval=0.5):
        self.port = port
        self.count = count
        self.bodies = bodies
        self.interval = interval
        self.sockets = []
        self.stopping = threading.Event()
        self.thread = None
        self.refused = 0

    def payload(self):
        if self.bodies:
            head = ("POST /api/users/login HTTP/1.1\r\nHost: slow\r\nContent-Type: application/json\r\n"
                    "Content-Length: 100000\r\n\r\n")
            return head.encode(), b'{"user": {"email": "' + b"x" * 99970
        return b"GET /api/tags HTTP/1.1\r\nHost: slow\r\n", b"X-Slow: " + b"a" * 100000

    def start(self):
        head, trickle = self.payload()
        for _ in range(self.count):
            try:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=2)
                s.sendall(head)
                self.sockets.append(s)
            except OSError:
                self.refused += 1
        self.thread = threading.Thread(target=self.run, args=(trickle,), daemon=True)
        self.thread.start()
        return self

    def run(self, trickle):
        position = 0
        while not self.stopping.wait(self.interval) and position < len(trickle):
            for s in list(self.sockets):
                try:
                    s.send(trickle[position:position + 1])
                except OSError:
                    self.sockets.remove(s)
            position += 1

    def stop(self):
        self.stopping.set()
        self.thread.join()
        still_open = len(self.sockets)
        for s in self.sockets:
            s.close()
        return still_open


def scenario_slow_clients(stack):
    """Slow headers and slow bodies, many connections at once, directly
    against a node and through HAProxy: the others are served as before."""
    slug = create_article(stack.lb_port, register(stack.lb_port, "w")[1], "slow " + uuid.uuid4().hex)
    path = "/api/articles/" + slug

    def next_request(index, n):
        return "read", "GET", path, None, {}, None

    def measure(port, seconds):
        load = Load(port, 4, next_request, pause_s=0.005).start()
        time.sleep(seconds)
        results = load.stop()
        latencies = sorted(r[2] - r[1] for r in results)
        p99 = latencies[int(len(latencies) * 0.99)] if latencies else float("inf")
        failed, _ = summarize(results, lambda kind, status, retry_after, start: status == 200)
        return results, failed, p99

    # A few that never finish their head, left to HAProxy's timeout
    # http-request (10 s) while the rest of the scenario runs.
    lingering = Slowloris(stack.lb_port, 10, False).start()
    lingering_sockets = list(lingering.sockets)
    lingering_since = time.monotonic()

    summary = []
    victim = "node1"
    targets = [("node1 directly", stack.node_port(victim)), ("HAProxy", stack.lb_port)]
    for label, port in targets:
        _, _, baseline = measure(port, 1.5)
        for bodies in (False, True):
            what = "slow bodies" if bodies else "slow headers"
            attack = Slowloris(port, 300, bodies).start()
            time.sleep(0.5)
            sessions = int(stack.lb_servers()[victim]["scur"]) if port == stack.lb_port else None
            results, failed, p99 = measure(port, 4)
            still_open = attack.stop()
            show_failed(failed)
            note("%s, %s: %d attack connections (%d refused, %d open at the end), %d requests, p99 %.1f ms "
                 "(baseline %.1f ms)" % (label, what, attack.count, attack.refused, still_open, len(results),
                                         p99 * 1000, baseline * 1000))
            check(len(results) > 100 and not failed,
                  "%s, %s: others served, %d requests, %d failed" % (label, what, len(results), len(failed)))
            # Tolerant: the machine is shared, and the attack itself costs CPU.
            check(p99 < max(0.5, baseline * 20), "%s, %s: p99 %.1f ms against a baseline of %.1f ms" %
                  (label, what, p99 * 1000, baseline * 1000))
            if sessions is not None:
                # HAProxy holds an unfinished request itself (timeout
                # http-request); nothing of it reaches a node.
                check(sessions < 20, "%s, %s: %s holds %d connections from HAProxy during the attack" %
                      (label, what, victim, sessions))
            summary.append("%s %s: %d requests, %d failed, p99 %.1f ms (baseline %.1f ms)" % (
                label, what, len(results), len(failed), p99 * 1000, baseline * 1000))

    time.sleep(max(0.0, HTTP_REQUEST_TIMEOUT_S + 1.0 - (time.monotonic() - lingering_since)))
    cut = 0
    for s in lingering_sockets:
        try:
            s.settimeout(2)
            answer = s.recv(4096)
            if answer == b"" or answer.startswith(b"HTTP/1.1 408"):
                cut += 1
        except socket.timeout:
            pass  # still open: not cut
        except OSError:
            cut += 1  # reset: closed all the same
    lingering.stop()
    check(cut == len(lingering_sockets) and cut > 0,
          "HAProxy answered 408 or closed %d of %d requests whose head was still coming after %.0f s" %
          (cut, len(lingering_sockets), HTTP_REQUEST_TIMEOUT_S))
    summary.append("unfinished heads cut by HAProxy after %.0f s: %d of %d" % (
        HTTP_REQUEST_TIMEOUT_S, cut, len(lingering_sockets)))
    return "; ".join(summary)


SCENARIOS = {
    "node_kill": scenario_node_kill,
    "rolling_restart": scenario_rolling_restart,
    "redis_restart": scenario_redis_restart,
    "postgres_restart": scenario_postgres_restart,
    "slow_clients": scenario_slow_clients,
}


def main(argv):
    names = argv[1:] or ["all"]
    if names == ["all"]:
        names = list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print("faults_test: unknown scenario %s (%s)" % (", ".join(unknown), ", ".join(SCENARIOS)), file=sys.stderr)
        return 2
    path_file = os.environ.get("SHOAL_FAULTS_PATH_FILE")
    if not path_file:
        print("faults_test: SHOAL_FAULTS_PATH_FILE names the stack (tests/e2e/faults_stack.sh up FILE)",
              file=sys.stderr)
        return 2
    stack = Stack(path_file)
    for name in names:
        began = time.monotonic()
        note("scenario %s" % name)
        stack.whole()
        before = failures
        try:
            summary = SCENARIOS[name](stack)
        except Exception as e:  # a scenario that cannot go on is a failure, and the next one still runs
            check(False, "%s raised %s: %s" % (name, type(e).__name__, e))
            summary = "raised"
        try:
            stack.whole()
        except Exception as e:
            check(False, "the stack is whole again after %s: %s" % (name, e))
        print("# result %s: %s (%.1f s, %s)" % (name, summary, time.monotonic() - began,
                                                "passed" if failures == before else "FAILED"), flush=True)
    print("1..%d" % checks)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
