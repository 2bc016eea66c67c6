#!/usr/bin/python3
"""tests/load/harness.py: shoal's load-test harness (start it with tests/load/run).

Drives shoal and its peers with wrk at a fixed concurrency for a bounded time,
N runs each, and reports the medians: requests per second, p50/p90/p99
latency, errors, and the CPU seconds each process used per 1,000 requests;
shoal's ratio to each peer, of the medians and round by round.
Besides its built-in workloads it runs a user's own: a scenario file of
weighted requests (--scenario, tests/load/scenario.py) or a wrk Lua script
(--wrk-script). Writes results.csv (medians), runs.csv (every run),
timeline.csv (answers per second), table.txt, chart.png, latency.png and
timeline.png into the output folder. Standard library only.
"""
import argparse
import datetime
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scenario  # noqa: E402  (a user's scenario: parsed, checked, compiled to Lua)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
LOCAL = os.path.join(REPO, "deploy", "local")
LUA = os.path.join(HERE, "lua")
PEERS = os.path.join(HERE, "peers")
PG_BIN = os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin")
TICK = os.sysconf("SC_CLK_TCK")

# name -> (path, what it exercises). Query counts follow TechEmpower's
# 20-query level; /cached-queries takes TechEmpower's `count` parameter.
WORKLOADS = {
    "json": "/json",
    "plaintext": "/plaintext",
    "db": "/db",
    "queries": "/queries?queries=20",
    "fortunes": "/fortunes",
    "updates": "/updates?queries=20",
    "cached-queries": "/cached-queries?count=20",
    "session": "/api/user",
    "conduit": None,  # lua/conduit.lua's mix under /api
}
# PostgreSQL selects (or Redis GETs) one request costs, to compare a workload
# with the tier's ceiling: the share of the ceiling it uses.
TIER_COST = {"db": ("pgbench", 1), "fortunes": ("pgbench", 1),
             "queries": ("pgbench", 20), "session": ("redis-get", 1)}
CPU_GROUPS = ["node", "lb", "peer", "postgres", "redis", "client"]
NGINX_WORKLOADS = {"json", "plaintext"}
# tests/load/peers/ulfius_peer.c: the closest C peer (libmicrohttpd + jansson).
ULFIUS_WORKLOADS = {"json", "plaintext", "db"}
ULFIUS_TARGET = "ulfius-peer"
FLASK_WORKLOADS = {"json", "plaintext", "db", "queries", "fortunes", "updates",
                   "cached-queries", "session"}


def log(msg):
    print("load: " + msg, file=sys.stderr, flush=True)


def die(msg):
    log("error: " + msg)
    sys.exit(1)


# ------------------------------------------------------------------ CPU

def proc_table():
    """pid -> (ppid, CPU ticks of the process and of its reaped children)."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue
        # Fields after the command name, which may contain spaces and ')'.
        fields = stat[stat.rindex(")") + 2:].split()
        # state ppid ... utime(14) stime(15) cutime(16) cstime(17), 1-based
        # from pid; here index 0 is field 3 (state).
        ppid = int(fields[1])
        ticks = sum(int(x) for x in fields[11:15])
        table[int(name)] = (ppid, ticks)
    return table


def tree_ticks(table, root):
    """CPU ticks of ROOT and every live descendant, each with its reaped
    children: a backend or worker that exits moves its time into its parent's
    cutime/cstime, so the sum stays continuous across exits."""
    if root not in table:
        return 0
    children = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += table[pid][1]
        todo.extend(children.get(pid, []))
    return total


def cpu_sample(groups):
    """groups: label -> [root pids]. Returns label -> seconds."""
    table = proc_table()
    return {label: sum(tree_ticks(table, p) for p in pids) / TICK
            for label, pids in groups.items()}


# ------------------------------------------------------------------ processes

def run_measured(cmd, env=None, limit=None, out_path=None):
    """Run CMD, return (exit code, stdout text, CPU seconds it used)."""
    with open(out_path or os.devnull, "w+") as out:
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + (limit or 3600)
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                p.kill()
                pid, status, ru = os.wait4(p.pid, 0)
                break
            time.sleep(0.05)
        p.returncode = os.waitstatus_to_exitcode(status)
        text = ""
        if out_path:
            out.seek(0)
            text = out.read()
    return p.returncode, text, ru.ru_utime + ru.ru_stime


def http_get(url, headers=None, timeout=5):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, OSError) as e:
        return None, str(e).encode()


def wait_http(url, seconds, proc=None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        status, _ = http_get(url, timeout=1)
        if status is not None:
            return True
        time.sleep(0.1)
    return False


def stop_process(proc, sig, name):
    """Stop a process this harness started, by its PID, and wait for it."""
    if proc is None or proc.poll() is not None:
        return
    log("%s: stopping (PID %d, %s)" % (name, proc.pid, signal.Signals(sig).name))
    proc.send_signal(sig)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        log("%s: still running; SIGKILL" % name)
        proc.kill()
        proc.wait(timeout=5)


# ------------------------------------------------------------------ parsing

RESULT_RE = re.compile(r"^LOAD_RESULT (.*)$", re.M)
TIMELINE_RE = re.compile(r"^LOAD_TIMELINE ?(.*)$", re.M)


def parse_timeline(text):
    """[(second, 2xx answers, other answers)] of a run, or None when its
    script did not count them (lua/timeline.lua)."""
    m = TIMELINE_RE.search(text)
    if not m:
        return None
    return [tuple(int(x) for x in item.split(":")) for item in m.group(1).split()]


def parse_result(text):
    m = RESULT_RE.search(text)
    if not m:
        return None
    kv = dict(item.split("=", 1) for item in m.group(1).split())

    def num(k):
        v = kv.get(k, "-")
        return None if v == "-" else float(v)

    errors = sum(int(kv[k]) for k in ("connect", "read", "write", "timeout", "status"))
    return {"requests": int(kv["requests"]), "rps": num("rps"), "p50_ms": num("p50_ms"),
            "p90_ms": num("p90_ms"), "p99_ms": num("p99_ms"), "p999_ms": num("p999_ms"),
            "max_ms": num("max_ms"), "errors": errors,
            "non2xx": None if kv.get("non2xx", "-") == "-" else int(kv["non2xx"])}


# ------------------------------------------------------------------ the stack

class Stack:
    """The deploy/local stack: started privately, or one already running."""

    def __init__(self, args):
        self.args = args
        self.owned = False
        self.state = None
        self.env = {}
        self.pids = {}

    def launcher_env(self):
        env = dict(os.environ)
        for k in ("DATABASE_URL", "REDIS_URL", "SHOAL_NODES"):
            env.pop(k, None)
        env["SHOAL_STATE"] = self.state
        return env

    def up(self):
        a = self.args
        if a.stack:
            self.state = os.path.abspath(a.stack)
            if not os.path.isfile(os.path.join(self.state, "stack.env")):
                die("--stack %s: no deploy/local stack there (no stack.env)" % self.state)
            log("using the running stack in %s (left running)" % self.state)
        else:
            self.state = os.path.abspath(a.state) if a.state else tempfile.mkdtemp(prefix="shoal-load.")
            os.makedirs(self.state, exist_ok=True)
            env = self.launcher_env()
            base = a.port_base
            env.update({
                "SHOAL_NODES": str(a.nodes), "SHOAL_LB_PORT": str(base),
                "SHOAL_STATS_PORT": str(base + 1), "SHOAL_NODE_BASE_PORT": str(base + 10),
                # The nodes' admin listeners (/readyz, /metrics), past any node count run here.
                "SHOAL_ADMIN_BASE_PORT": str(base + 50),
                "SHOAL_PG_PORT": str(a.pg_port), "SHOAL_REDIS_PORT": str(a.redis_port),
                # Benchmarks run with the access log off, as nginx's ceiling does.
                "SHOAL_ACCESS_LOG_SAMPLE": "0",
                # And without rate limits: wrk is one client address, and the
                # default login and registration limits would answer it 429.
                "SHOAL_RATE_LIMITS": "",
            })
            if a.node_threads:
                env["SHOAL_THREADS"] = str(a.node_threads)
            log("starting the stack in %s (deploy/local up, %d node(s), access log off)"
                % (self.state, a.nodes))
            self.owned = True
            r = subprocess.run([LOCAL, "up"], env=env, stdout=sys.stderr, stderr=sys.stderr)
            if r.returncode != 0:
                die("deploy/local up failed (logs in %s/logs)" % self.state)
        out = subprocess.run([LOCAL, "env"], env=self.launcher_env(), capture_output=True,
                             text=True, check=True).stdout
        for line in out.splitlines():
            k, _, v = line.partition("=")
            self.env[k] = v.strip("'")
        self.pids = {}
        piddir = os.path.join(self.state, "pids")
        for f in sorted(os.listdir(piddir)):
            if f.endswith(".pid"):
                with open(os.path.join(piddir, f)) as fh:
                    self.pids[f[:-4]] = int(fh.read().strip())

    def node_names(self):
        return sorted((n for n in self.pids if n.startswith("node")), key=lambda n: int(n[4:]))

    def node_url(self, name):
        k = int(name[4:])
        return "http://127.0.0.1:%d" % (int(self.env["SHOAL_NODE_BASE_PORT"]) + k - 1)

    def lb_url(self):
        return "http://127.0.0.1:%s" % self.env["SHOAL_LB_PORT"]

    def down(self):
        if not self.owned:
            return
        log("stopping the stack (deploy/local down, by PID)")
        subprocess.run([LOCAL, "down"], env=self.launcher_env(), stdout=sys.stderr,
                       stderr=sys.stderr)
        if not self.args.state and not self.args.keep:
            self.purge()

    def purge(self):
        """The stack's data: PostgreSQL's folder (outside the state folder as
        root, where only deploy/local knows it) and the state folder."""
        subprocess.run([LOCAL, "down", "--purge"], env=self.launcher_env(),
                       stdout=subprocess.DEVNULL, stderr=sys.stderr)
        shutil.rmtree(self.state, ignore_errors=True)

    def psql_admin(self, db, sql):
        """psql as postgres through the stack's socket (deploy/local psql)."""
        cmd = [LOCAL, "psql", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql]
        return subprocess.run(cmd, env=self.launcher_env(), capture_output=True, text=True)


# ------------------------------------------------------------------ peers

def ulfius_binary(args):
    """(path of the ulfius peer, None) or (None, why there is none). Found
    like the node: --ulfius-bin or SHOAL_ULFIUS_BIN; else in the build tree of
    SHOAL_BIN (BUILD/node/shoal-node: BUILD/tests/load/peers/); else in the
    repository's build/, where it is built when missing, as deploy/local
    builds shoal-node there."""
    if args.ulfius_bin:
        if os.path.isfile(args.ulfius_bin) and os.access(args.ulfius_bin, os.X_OK):
            return args.ulfius_bin, None
        return None, "no ulfius peer at %s (--ulfius-bin or SHOAL_ULFIUS_BIN)" % args.ulfius_bin
    build = os.path.join(REPO, "build")
    builds = [build]
    node = os.environ.get("SHOAL_BIN")
    if node:
        builds.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(node))))
    paths = [os.path.join(b, "tests", "load", "peers", ULFIUS_TARGET) for b in builds]
    for path in paths:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path, None
    if not os.path.isfile(os.path.join(build, "CMakeCache.txt")):
        return None, ("no ulfius peer at %s (build the %s target; it needs libulfius-dev, "
                      "deploy/local deps --load)" % (" or ".join(paths), ULFIUS_TARGET))
    log("ulfius: building the %s target in %s" % (ULFIUS_TARGET, build))
    r = subprocess.run(["cmake", "--build", build, "--target", ULFIUS_TARGET],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0 or not os.path.isfile(paths[-1]):
        why = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "no binary"
        return None, ("building %s in %s failed (is libulfius-dev installed? deploy/local deps --load): %s"
                      % (ULFIUS_TARGET, build, why))
    return paths[-1], None


class Peers:
    def __init__(self, args, stack, workdir):
        self.args, self.stack, self.workdir = args, stack, workdir
        self.nginx = self.flask = self.ulfius = None
        self.nginx_url = self.flask_url = self.ulfius_url = None
        self.flask_token = None
        self.ulfius_missing = None  # why there is no ulfius peer, for the table

    def start_nginx(self):
        if not shutil.which("nginx"):
            log("nginx: not installed; no HTTP ceiling")
            return
        port = self.args.port_base + 2
        d = os.path.join(self.workdir, "nginx")
        os.makedirs(os.path.join(d, "nginx-tmp"), exist_ok=True)
        with open(os.path.join(PEERS, "nginx.conf.in")) as f:
            conf = f.read()
        conf = (conf.replace("@PORT@", str(port)).replace("@STATE@", d)
                .replace("@WORKERS@", str(os.cpu_count() or 1)))
        path = os.path.join(d, "nginx.conf")
        with open(path, "w") as f:
            f.write(conf)
        errlog = os.path.join(d, "nginx-error.log")
        log("nginx: starting on 127.0.0.1:%d (the HTTP ceiling)" % port)
        self.nginx = subprocess.Popen(["nginx", "-c", path, "-e", errlog],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session=True)
        self.nginx_url = "http://127.0.0.1:%d" % port
        if not wait_http(self.nginx_url + "/json", 10, self.nginx):
            log("nginx: did not start (see %s)" % errlog)
            stop_process(self.nginx, signal.SIGTERM, "nginx")
            self.nginx = self.nginx_url = None

    def start_flask(self):
        port = self.args.port_base + 3
        env = dict(os.environ)
        env["DATABASE_URL"] = self.stack.env["DATABASE_URL"]
        env["REDIS_URL"] = self.stack.env["REDIS_URL"]
        errlog = os.path.join(self.workdir, "flask.log")
        log("flask: starting gunicorn with %d sync workers on 127.0.0.1:%d"
            % (self.args.flask_workers, port))
        self.flask = subprocess.Popen(
            ["/usr/bin/python3", "-m", "gunicorn", "--workers", str(self.args.flask_workers),
             "--worker-class", "sync", "--bind", "127.0.0.1:%d" % port, "--chdir", PEERS,
             "--log-level", "warning", "--error-logfile", errlog, "flask_app:app"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        self.flask_url = "http://127.0.0.1:%d" % port
        if not wait_http(self.flask_url + "/json", 20, self.flask):
            log("flask: did not start (see %s)" % errlog)
            stop_process(self.flask, signal.SIGTERM, "flask")
            self.flask = self.flask_url = None
            return
        # A session for GET /api/user, the peer's simple layout: a Redis key
        # named after the token's SHA-256, holding the user.
        self.flask_token = secrets.token_urlsafe(32)
        key = "loadpeer:session:" + hashlib.sha256(self.flask_token.encode()).hexdigest()
        user = '{"email":"peer@load.invalid","username":"peer","bio":"","image":null}'
        subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", self.stack.env["SHOAL_REDIS_PORT"],
                        "SET", key, user, "EX", "3600"], capture_output=True, check=False)

    def start_ulfius(self):
        binary, why = ulfius_binary(self.args)
        if binary is None:
            self.ulfius_missing = why
            log("ulfius: skipped: " + why)
            return
        port = self.args.port_base + 4
        errlog = os.path.join(self.workdir, "ulfius.log")
        threads = self.args.ulfius_threads
        log("ulfius: starting %s with a pool of %d threads on 127.0.0.1:%d" % (binary, threads, port))
        with open(errlog, "w") as out:
            self.ulfius = subprocess.Popen(
                [binary, "--port", str(port), "--threads", str(threads),
                 "--database-url", self.stack.env["DATABASE_URL"]],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.ulfius_url = "http://127.0.0.1:%d" % port
        if not wait_http(self.ulfius_url + "/json", 10, self.ulfius):
            self.ulfius_missing = "%s did not start (see %s)" % (binary, errlog)
            log("ulfius: " + self.ulfius_missing)
            stop_process(self.ulfius, signal.SIGTERM, "ulfius")
            self.ulfius = self.ulfius_url = None

    def stop(self):
        stop_process(self.flask, signal.SIGTERM, "flask")
        stop_process(self.nginx, signal.SIGQUIT, "nginx")
        stop_process(self.ulfius, signal.SIGTERM, "ulfius")
        if self.ulfius is not None and self.ulfius.returncode != 0:
            log("ulfius: exited %d (see %s)" % (self.ulfius.returncode,
                                              os.path.join(self.workdir, "ulfius.log")))


# ------------------------------------------------------------------ the run

def wrk_cmd(args, url, workload, connections, token=None):
    threads = min(args.wrk_threads, connections)
    cmd = ["wrk", "-t%d" % threads, "-c%d" % connections, "-d%ds" % args.duration_s,
           "--timeout", "%ds" % max(2, args.duration_s), "--latency"]
    user = args.user_workloads.get(workload)
    if user:
        script = "scenario.lua" if user["kind"] == "scenario" else "user_script.lua"
        cmd += ["-s", os.path.join(LUA, script), url]
    elif workload == "conduit":
        cmd += ["-s", os.path.join(LUA, "conduit.lua"), url]
    else:
        cmd += ["-s", os.path.join(LUA, "tfb.lua")]
        if token:
            cmd += ["-H", "Authorization: Token " + token]
        cmd.append(url + WORKLOADS[workload])
    return cmd


def median(values):
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


class Harness:
    def __init__(self, args):
        self.args = args
        self.rows = []       # every run: dicts
        self.skipped = []    # (target, workload, reason)
        self.notes = []
        self.out = args.out

    # -- targets: name -> dict(url, groups, token, seed)
    def targets(self, stack, peers):
        a = self.args
        ts = []
        common = {}
        if stack:
            common = {"postgres": [stack.pids["postgres"]] if "postgres" in stack.pids else [],
                      "redis": [stack.pids["redis"]] if "redis" in stack.pids else []}
        if a.url:
            groups = {}
            for spec in a.pid:
                label, _, pid = spec.partition("=")
                groups.setdefault(label if label in CPU_GROUPS else "node", []).append(int(pid))
            groups.update(common)
            ts.append({"name": "target", "url": a.url.rstrip("/"), "groups": groups})
        else:
            nodes = stack.node_names()
            if "direct" in a.via:
                ts.append({"name": "shoal", "url": stack.node_url(nodes[0]),
                           "groups": dict(common, node=[stack.pids[nodes[0]]])})
            if "lb" in a.via:
                ts.append({"name": "shoal-lb", "url": stack.lb_url(),
                           "groups": dict(common, node=[stack.pids[n] for n in nodes],
                                          lb=[stack.pids["lb"]])})
        if peers and peers.flask_url:
            ts.append({"name": "flask", "url": peers.flask_url, "token": peers.flask_token,
                       "groups": dict(common, peer=[peers.flask.pid]),
                       "only": FLASK_WORKLOADS})
        if peers and peers.nginx_url:
            ts.append({"name": "nginx", "url": peers.nginx_url,
                       "groups": {"peer": [peers.nginx.pid]}, "only": NGINX_WORKLOADS})
        if peers and peers.ulfius_url:
            ts.append({"name": "ulfius", "url": peers.ulfius_url,
                       "groups": dict(common, peer=[peers.ulfius.pid]), "only": ULFIUS_WORKLOADS})
        return ts

    def compiled_scenario(self, t, workload, user):
        """The Lua table of a user's scenario for target T: its paths under
        the path of T's URL."""
        path = os.path.join(self.out, "scenario-%s-%s.lua" % (workload, t["name"]))
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write(scenario.compile_lua(user["requests"], urllib.parse.urlsplit(t["url"]).path))
        return path

    def preflight(self, t, workload):
        """None when TARGET can run WORKLOAD, else the reason it cannot."""
        if "only" in t and workload not in t["only"]:
            return "n/a"
        if workload in self.args.user_workloads:
            # A user's requests may write: nothing is sent before the run
            # but a connection, to tell a wrong URL from a slow service.
            status, body = http_get(t["url"] + "/", timeout=5)
            return None if status is not None else "%s does not answer: %s" % (t["url"], body.decode()[:80])
        if workload in ("conduit", "session") and "token" not in t:
            seed = self.seed(t)
            if seed is None and workload == "session":
                # The full data set needs the article routes; a session read
                # needs only an account, so log one in directly.
                token = self.login_one(t)
                if token is not None:
                    t["token"] = token
            if seed is None and "token" not in t:
                return t["seed_reason"]
        if workload == "conduit":
            return None
        headers = {}
        if workload == "session":
            headers["Authorization"] = "Token " + t["token"]
        status, body = http_get(t["url"] + WORKLOADS[workload], headers)
        if status != 200:
            return "%s answered %s" % (WORKLOADS[workload], status if status else body.decode()[:60])
        return None

    def login_one(self, t):
        """A session token from registering (or logging in) one load user
        through the target's /api/users, or None."""
        user = {"username": "loadsession", "email": "loadsession@load.invalid",
                "password": "load-session-password"}
        for path in ("/api/users", "/api/users/login"):
            body = json.dumps({"user": user if path == "/api/users" else
                               {"email": user["email"], "password": user["password"]}}).encode()
            req = urllib.request.Request(t["url"] + path, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    return json.loads(r.read())["user"]["token"]
            except (urllib.error.URLError, OSError, ValueError, KeyError):
                continue
        return None

    def seed(self, t):
        """The seed file of the Conduit mix for target T, prepared once:
        sessions of users seeded by `shoal-node seed` (or, on a target
        without that data set, a small one made through the API)."""
        if "seed" in t:
            return t["seed"]
        path = os.path.join(self.out, "seed-%s.txt" % t["name"])
        r = subprocess.run(["/usr/bin/python3", os.path.join(HERE, "seed_conduit.py"), t["url"],
                            path, "--sessions", str(self.args.sessions)],
                           capture_output=True, text=True)
        if r.returncode == 0:
            t["seed"] = path
            with open(path) as f:
                t["token"] = next(line.split()[4] for line in f if line.startswith("user "))
            log("%s: %s" % (t["name"], r.stdout.strip()))
        else:
            t["seed"] = None
            msg = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "seeding failed"
            if r.returncode == 3:
                msg = "no Conduit API yet (%s)" % msg.split(": ", 1)[-1].split(": no Conduit")[0]
            elif r.returncode == 4 and getattr(self.args, "stack", None) and t["name"] in ("shoal", "shoal-lb"):
                # The stack is ours to name: the commands that fix it, exactly.
                env = "SHOAL_STATE=" + os.path.abspath(self.args.stack)
                msg += (". For this stack, keeping its data: %s %s down && %s SHOAL_RATE_LIMITS= %s up; "
                        "or replace its users by the seeded data set: %s %s seed --reset --users %d --articles %d"
                        % (env, LOCAL, env, LOCAL, env, LOCAL, self.args.seed_users, self.args.seed_articles))
            t["seed_reason"] = msg
            log("%s: no seeded data set, so no conduit mix (the session read logs one user in instead): %s" % (t["name"], msg))
        return t["seed"]

    def seed_stack(self, stack):
        """Fills the stack's database with `shoal-node seed` (deploy/local
        seed), before any workload: an empty database only, unless --reseed."""
        a = self.args
        cmd = [LOCAL, "seed", "--users", str(a.seed_users), "--articles", str(a.seed_articles)]
        log("seeding the stack's database: %d users, %d articles (deploy/local seed)"
            % (a.seed_users, a.seed_articles))
        r = subprocess.run(cmd + (["--reset"] if a.reseed else []), env=stack.launcher_env(),
                           capture_output=True, text=True)
        for line in r.stdout.splitlines():
            if line.startswith("seed: created") or line.startswith("seed: removed"):
                log(line)
        if r.returncode == 3:
            log("the stack's database already has users: the mix uses what is there "
                "(--reseed replaces it)")
        elif r.returncode != 0:
            log("deploy/local seed failed (exit %d): %s" % (r.returncode, r.stderr.strip()[-300:]))

    def measure(self, t, workload, run, warmup=False):
        a = self.args
        conns = a.plaintext_connections if workload == "plaintext" else a.connections
        env = dict(os.environ)
        pipeline = a.pipeline if workload == "plaintext" else 1
        env["LOAD_PIPELINE"] = str(pipeline)
        if workload == "conduit":
            env["LOAD_SEED"] = t["seed"]
        env["LOAD_TIMELINE"] = "1" if a.timeline else "0"
        user = a.user_workloads.get(workload)
        if user and user["kind"] == "scenario":
            env["LOAD_SCENARIO"] = self.compiled_scenario(t, workload, user)
        elif user:
            env["LOAD_USER_SCRIPT"] = user["file"]
        cmd = wrk_cmd(a, t["url"], workload, conns, t.get("token"))
        if warmup:
            cmd[3] = "-d%ds" % a.warmup_s
            run_measured(cmd, env=env, limit=a.warmup_s + 30)
            return
        raw = os.path.join(self.out, "raw", "%s-%s-run%d.txt" % (workload, t["name"], run))
        before = cpu_sample(t["groups"])
        rc, text, client_cpu = run_measured(cmd, env=env, limit=a.duration_s + 60, out_path=raw)
        after = cpu_sample(t["groups"])
        res = parse_result(text)
        if rc != 0 or res is None:
            log("%s %s run %d: wrk failed (exit %d, see %s)" % (workload, t["name"], run, rc, raw))
            return
        if pipeline > 1:
            # wrk times a pipelined batch, not a request: no per-request latency.
            res["p50_ms"] = res["p90_ms"] = res["p99_ms"] = res["p999_ms"] = res["max_ms"] = None
        row = {"workload": workload, "target": t["name"], "run": run, "connections": conns,
               "timeline": parse_timeline(text)}
        row.update(res)
        k = res["requests"] / 1000.0 if res["requests"] else None
        for g in CPU_GROUPS:
            if g == "client":
                used = client_cpu
            elif g in t["groups"] and t["groups"][g]:
                used = after[g] - before[g]
            else:
                used = None
            row["cpu_" + g] = None if used is None or not k else used / k
        self.rows.append(row)
        log("%-14s %-8s run %d: %9.0f req/s, p99 %s ms, errors %d"
            % (workload, t["name"], run, res["rps"],
               "-" if res["p99_ms"] is None else "%.2f" % res["p99_ms"], res["errors"]))

    def ceilings(self, stack, run):
        a = self.args
        groups = {"postgres": [stack.pids["postgres"]], "redis": [stack.pids["redis"]]}
        env = dict(os.environ, PGPASSWORD="shoal")
        port = stack.env["SHOAL_PG_PORT"]
        if "pgbench" in a.peers and self.pgbench_ready:
            raw = os.path.join(self.out, "raw", "pgbench-run%d.txt" % run)
            cmd = [os.path.join(PG_BIN, "pgbench"), "-h", "127.0.0.1", "-p", port, "-U", "shoal",
                   "-n", "-S", "-M", "prepared", "-c", "16", "-j", str(a.wrk_threads),
                   "-T", str(a.duration_s), "loadbench"]
            before = cpu_sample(groups)
            rc, text, client = run_measured(cmd, env=env, limit=a.duration_s + 60, out_path=raw)
            after = cpu_sample(groups)
            m = re.search(r"^tps = ([0-9.]+)", text, re.M)
            n = re.search(r"number of transactions actually processed: (\d+)", text)
            if rc == 0 and m and n:
                self.tier_row("pgbench", "selects", 16, float(m.group(1)), int(n.group(1)),
                              None, None, None, before, after, client, run, "postgres")
            else:
                log("pgbench run %d failed (see %s)" % (run, raw))
        if "redis" in a.peers:
            for test in ("get", "set"):
                raw = os.path.join(self.out, "raw", "redis-%s-run%d.txt" % (test, run))
                n = max(10000, 100000 * a.duration_s)
                cmd = ["redis-benchmark", "-h", "127.0.0.1", "-p", stack.env["SHOAL_REDIS_PORT"],
                       "-c", "50", "-n", str(n), "-t", test, "--dbnum", "15", "--csv"]
                before = cpu_sample(groups)
                rc, text, client = run_measured(cmd, limit=a.duration_s * 10 + 60, out_path=raw)
                after = cpu_sample(groups)
                m = re.search(r'^"%s","([0-9.]+)","[0-9.]+","[0-9.]+","([0-9.]+)","[0-9.]+","([0-9.]+)"'
                              % test.upper(), text, re.M)
                if rc == 0 and m:
                    self.tier_row("redis-" + test, test.upper(), 50, float(m.group(1)), n,
                                  float(m.group(2)), None, float(m.group(3)),
                                  before, after, client, run, "redis")
                else:
                    log("redis-benchmark %s run %d failed (see %s)" % (test, run, raw))

    def tier_row(self, target, workload, conns, rps, requests, p50, p90, p99, before, after,
                 client, run, tier):
        k = requests / 1000.0
        row = {"workload": workload, "target": target, "run": run, "connections": conns,
               "requests": requests, "rps": rps, "p50_ms": p50, "p90_ms": p90, "p99_ms": p99,
               "p999_ms": None, "max_ms": None, "errors": 0, "non2xx": None, "timeline": None}
        for g in CPU_GROUPS:
            row["cpu_" + g] = None
        row["cpu_" + tier] = (after[tier] - before[tier]) / k
        row["cpu_client"] = client / k
        self.rows.append(row)
        log("%-14s %-8s run %d: %9.0f ops/s" % (workload, target, run, rps))

    def prepare_pgbench(self, stack):
        self.pgbench_ready = False
        if "pgbench" not in self.args.peers:
            return
        r = stack.psql_admin("postgres", "SELECT 1 FROM pg_database WHERE datname = 'loadbench'")
        if r.returncode != 0:
            log("pgbench: cannot reach PostgreSQL as postgres: %s" % r.stderr.strip())
            return
        if r.stdout.strip() != "1":
            stack.psql_admin("postgres", "CREATE DATABASE loadbench OWNER shoal")
        r = stack.psql_admin("loadbench", "SELECT count(*) FROM pgbench_branches")
        scale = self.args.pgbench_scale
        if r.returncode != 0 or r.stdout.strip() != str(scale):
            log("pgbench: initialising database loadbench at scale %d" % scale)
            r = subprocess.run([os.path.join(PG_BIN, "pgbench"), "-i", "-q", "-s", str(scale),
                                "-h", "127.0.0.1", "-p", stack.env["SHOAL_PG_PORT"], "-U", "shoal",
                                "loadbench"], env=dict(os.environ, PGPASSWORD="shoal"),
                               capture_output=True, text=True)
            if r.returncode != 0:
                log("pgbench -i failed: %s" % r.stderr.strip()[-300:])
                return
        self.pgbench_ready = True

    def medians(self):
        keyed = {}
        order = []
        for r in self.rows:
            key = (r["workload"], r["target"])
            if key not in keyed:
                keyed[key] = []
                order.append(key)
            keyed[key].append(r)
        out = []
        for key in order:
            rs = keyed[key]
            m = {"workload": key[0], "target": key[1], "connections": rs[0]["connections"],
                 "runs": len(rs)}
            for f in ["rps", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "errors", "non2xx"] + \
                     ["cpu_" + g for g in CPU_GROUPS]:
                m[f] = median([r[f] for r in rs])
            out.append(m)
        by = {(m["workload"], m["target"]): m for m in out}
        for m in out:
            m["vs_flask"] = m["vs_nginx"] = m["vs_ulfius"] = m["tier_share"] = None
            if m["target"] not in SHOAL_TARGETS or not m["rps"]:
                continue
            for peer in RATIO_PEERS:
                p = by.get((m["workload"], peer))
                if p and p["rps"]:
                    m["vs_" + peer] = m["rps"] / p["rps"]
            if m["workload"] in TIER_COST:
                tier, cost = TIER_COST[m["workload"]]
                ceil = next((x for x in out if x["target"] == tier), None)
                if ceil and ceil["rps"]:
                    m["tier_share"] = m["rps"] * cost / ceil["rps"]
        return out


def round_ratios(rows):
    """shoal's ratio to each peer round by round: (workload, target, peer,
    [the ratio in round 1, round 2, ...]), each of shoal's runs over the
    peer's run of the same round (seconds apart), in the order the rows came. The
    table's ratio columns are the ratio of the medians; these show how far a
    single round moves, which on a shared machine can be more than the
    difference a goal asks about."""
    rps = {(r["workload"], r["target"], r["run"]): r["rps"] for r in rows}
    out = []
    for key in dict.fromkeys((r["workload"], r["target"]) for r in rows if r["target"] in SHOAL_TARGETS):
        runs = sorted(n for (w, t, n) in rps if (w, t) == key)
        for peer in RATIO_PEERS:
            ratios = [rps[key + (n,)] / rps[(key[0], peer, n)] for n in runs
                      if rps[key + (n,)] and rps.get((key[0], peer, n))]
            if ratios:
                out.append((key[0], key[1], peer, ratios))
    return out


# ------------------------------------------------------------------ output

FIELDS = ["workload", "target", "connections", "runs", "rps", "p50_ms", "p90_ms", "p99_ms",
          "p999_ms", "errors", "non2xx"] + ["cpu_" + g for g in CPU_GROUPS] + \
         ["vs_flask", "vs_nginx", "vs_ulfius", "tier_share"]


def fmt(v, spec, width=0):
    return ("-" if v is None else spec % v).rjust(width)


def write_csv(path, rows, fields):
    with open(path, "w") as f:
        f.write(",".join(fields) + "\n")
        for r in rows:
            vals = []
            for k in fields:
                v = r.get(k)
                vals.append("" if v is None else (("%.6g" % v) if isinstance(v, float) else str(v)))
            f.write(",".join(vals) + "\n")


def table(meds, skipped, header, ratios=()):
    lines = list(header)
    cols = ("%-14s %-9s %5s %10s %7s %7s %7s %7s %7s | %6s %6s %6s %6s %6s %6s | %6s %6s %7s %6s"
            % ("workload", "target", "conns", "req/s", "p50ms", "p90ms", "p99ms", "p99.9ms", "errors",
               "node", "lb", "peer", "pg", "redis", "client", "xflask", "xnginx", "xulfius", "tier"))
    lines.append("%-83s | %-41s | %s" % ("", "CPU seconds per 1,000 requests", "shoal's ratio"))
    lines.append(cols)
    lines.append("-" * len(cols))
    for m in meds:
        cpu = " ".join(fmt(m["cpu_" + g], "%.3f", 6) for g in CPU_GROUPS)
        errs = m["errors"]
        if m["non2xx"] is not None:
            errs = max(errs or 0, m["non2xx"])
        lines.append("%-14s %-9s %5s %10s %7s %7s %7s %7s %7s | %s | %6s %6s %7s %6s" % (
            m["workload"], m["target"], m["connections"], fmt(m["rps"], "%.0f"),
            fmt(m["p50_ms"], "%.2f"), fmt(m["p90_ms"], "%.2f"), fmt(m["p99_ms"], "%.2f"),
            fmt(m["p999_ms"], "%.2f"), fmt(errs, "%d"), cpu, fmt(m["vs_flask"], "%.2fx"), fmt(m["vs_nginx"], "%.2fx"),
            fmt(m.get("vs_ulfius"), "%.2fx"),
            fmt(m["tier_share"] * 100 if m["tier_share"] is not None else None, "%.0f%%")))
    for target, workload, reason in skipped:
        lines.append("%-14s %-9s skipped: %s" % (workload, target, reason))
    if any(len(r) > 1 for _, _, _, r in ratios):
        lines.append("")
        lines.append("shoal's ratio round by round (each run over the peer's run of the same round; "
                     "the columns above are the ratio of the medians):")
        for workload, target, peer, rs in ratios:
            lines.append("%-14s %-9s x%-7s %s   (median %.2fx, from %.2fx to %.2fx)" % (
                workload, target, peer, " ".join("%.2fx" % x for x in rs), median(rs), min(rs), max(rs)))
    return "\n".join(lines) + "\n"


def chart(out, meds, workloads):
    """chart.png: requests/s (log scale) and server CPU per 1,000 requests,
    per workload, one bar per target."""
    if not shutil.which("gnuplot"):
        log("gnuplot is missing: no chart")
        return
    targets = [t for t in HTTP_TARGETS if any(m["target"] == t for m in meds)]
    ws = [w for w in workloads if any(m["workload"] == w for m in meds)]
    if not targets or not ws:
        return
    by = {(m["workload"], m["target"]): m for m in meds}
    dat = os.path.join(out, "chart.dat")
    with open(dat, "w") as f:
        f.write("workload " + " ".join(targets) + " " + " ".join(targets) + "\n")
        for w in ws:
            rps, cpu = [], []
            for t in targets:
                m = by.get((w, t))
                rps.append("-" if not m or not m["rps"] else "%.1f" % m["rps"])
                server = None
                if m:
                    parts = [m["cpu_" + g] for g in CPU_GROUPS if g != "client" and m["cpu_" + g] is not None]
                    server = sum(parts) if parts else None
                cpu.append("-" if server is None else "%.5f" % server)
            f.write(w + " " + " ".join(rps) + " " + " ".join(cpu) + "\n")
    n = len(targets)
    # The CPU panel only when some server CPU is known (not with --url alone).
    has_cpu = any(m["cpu_" + g] is not None for m in meds for g in CPU_GROUPS if g != "client")
    script = """set terminal pngcairo size 1200,%(height)d font ",10" noenhanced
set output '%(png)s'
set datafile missing '-'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key outside right top
set grid ytics
set xtics rotate by -30
set multiplot layout %(panels)d,1 title "%(title)s"
set title "requests per second (median of runs, log scale)"
set logscale y
plot for [i=2:%(last)d] '%(dat)s' using i:xtic(1) title columnheader(i)
"""
    if has_cpu:
        script += """set title "server CPU seconds per 1,000 requests (node + lb + peer + PostgreSQL + Redis; log scale, lower is better)"
plot for [i=%(first2)d:%(last2)d] '%(dat)s' using i:xtic(1) title columnheader(i)
"""
    script += "unset multiplot\n"
    gp = os.path.join(out, "chart.gp")
    with open(gp, "w") as f:
        f.write(script % {
            "png": os.path.join(out, "chart.png"), "dat": dat, "last": n + 1,
            "first2": n + 2, "last2": 2 * n + 1, "panels": 2 if has_cpu else 1,
            "height": 900 if has_cpu else 480,
            "title": "shoal load test, %s" % datetime.datetime.now().strftime("%Y-%m-%d %H:%M")})
    r = subprocess.run(["gnuplot", gp], capture_output=True, text=True)
    if r.returncode != 0:
        log("gnuplot failed: %s" % r.stderr.strip()[-300:])


SHOAL_TARGETS = ("shoal", "shoal-lb", "target")
RATIO_PEERS = ("flask", "nginx", "ulfius")
HTTP_TARGETS = SHOAL_TARGETS + RATIO_PEERS
# Where each percentile sits on the latency chart's x axis: its "nines",
# -log10(1 - p), so that p99 and p99.9 are as far apart as p90 and p99.
PERCENTILES = [("p50", "p50_ms", 0.30103), ("p90", "p90_ms", 1.0), ("p99", "p99_ms", 2.0),
               ("p99.9", "p999_ms", 3.0)]


def panels(count):
    """(columns, rows) of a multiplot with COUNT panels."""
    columns = 1 if count == 1 else 2
    return columns, (count + columns - 1) // columns


def run_gnuplot(out, name, script):
    gp = os.path.join(out, name + ".gp")
    with open(gp, "w") as f:
        f.write(script)
    r = subprocess.run(["gnuplot", gp], capture_output=True, text=True)
    if r.returncode != 0:
        log("gnuplot failed on %s: %s" % (gp, r.stderr.strip()[-300:]))


def gp_text(text):
    return text.replace("\\", "\\\\").replace('"', '\\"')


def latency_chart(out, meds, workloads, title, targets=HTTP_TARGETS):
    """latency.png: per workload, the latency percentiles p50 to p99.9 of
    every target (median of the runs; the HTTP ones unless TARGETS names
    them), on log scales."""
    if not shutil.which("gnuplot"):
        return
    by = {(m["workload"], m["target"]): m for m in meds}
    targets = [t for t in targets if any(m["target"] == t for m in meds)]
    ws = [w for w in workloads if any(by.get((w, t)) and by[(w, t)]["p50_ms"] for t in targets)]
    if not ws:
        return
    dat = os.path.join(out, "latency.dat")
    plots = []
    index = 0
    with open(dat, "w") as f:
        for w in ws:
            series = []
            for k, t in enumerate(targets):
                m = by.get((w, t))
                if not m or not m["p50_ms"]:
                    continue
                f.write("# %s %s\n" % (w, t))
                for _, field, x in PERCENTILES:
                    if m[field]:
                        f.write("%g %g\n" % (x, m[field]))
                f.write("\n\n")
                series.append("'%s' index %d using 1:2 with linespoints lw 2 pt 7 lc %d title \"%s\""
                              % (dat, index, k + 1, t))
                index += 1
            plots.append((w, series))
    columns, rows = panels(len(ws))
    script = """set terminal pngcairo size %(width)d,%(height)d font ",10" noenhanced
set output '%(png)s'
set logscale y
set grid xtics ytics mytics
set xrange [0:3.3]
set xtics ("p50" 0.30103, "p90" 1, "p99" 2, "p99.9" 3)
set ylabel "latency, ms (log scale)"
set key top left Left reverse
set multiplot layout %(rows)d,%(columns)d title "%(title)s"
""" % {"png": os.path.join(out, "latency.png"), "width": 600 * columns, "height": 80 + 340 * rows,
       "rows": rows, "columns": columns, "title": gp_text(title)}
    for w, series in plots:
        script += 'set title "%s: latency percentiles (median of runs)"\nplot %s\n' % (gp_text(w), ", ".join(series))
    script += "unset multiplot\n"
    run_gnuplot(out, "latency", script)


def median_run(rows):
    """The run whose requests per second are the median of ROWS."""
    ranked = sorted(rows, key=lambda r: r["rps"] or 0)
    return ranked[(len(ranked) - 1) // 2]


def timeline_rows(rows):
    """timeline.csv's rows: every second of every run that counted them."""
    out = []
    for r in rows:
        for second, ok, other in r.get("timeline") or []:
            out.append({"workload": r["workload"], "target": r["target"], "run": r["run"],
                        "second": second, "ok": ok, "other": other})
    return out


def timeline_chart(out, rows, workloads, duration_s, title, targets=HTTP_TARGETS):
    """timeline.png: per workload, 2xx answers per second over the run of
    every target (its median run) and, on the right axis, the answers
    outside 2xx; the last, partial second is left out."""
    if not shutil.which("gnuplot"):
        return
    runs = {}
    for r in rows:
        if r.get("timeline"):
            runs.setdefault((r["workload"], r["target"]), []).append(r)
    targets = [t for t in targets if any(k[1] == t for k in runs)]
    ws = [w for w in workloads if any((w, t) in runs for t in targets)]
    if not ws:
        return
    dat = os.path.join(out, "timeline.dat")
    plots = []
    index = 0
    with open(dat, "w") as f:
        for w in ws:
            series = []
            for k, t in enumerate(targets):
                if (w, t) not in runs:
                    continue
                r = median_run(runs[(w, t)])
                f.write("# %s %s run %d\n" % (w, t, r["run"]))
                for second, ok, other in r["timeline"]:
                    if second < duration_s:
                        f.write("%d %d %d\n" % (second, ok, other))
                f.write("\n\n")
                series.append("'%s' index %d using ($1+0.5):2 axes x1y1 with linespoints lw 2 pt 7 ps 0.6 "
                              "lc %d title \"%s 2xx/s\"" % (dat, index, k + 1, t))
                series.append("'%s' index %d using ($1+0.5):3 axes x1y2 with linespoints lw 1 dt 2 pt 6 "
                              "ps 0.6 lc %d title \"%s other/s\"" % (dat, index, k + 1, t))
                index += 1
            plots.append((w, series))
    columns, rows_ = panels(len(ws))
    script = """set terminal pngcairo size %(width)d,%(height)d font ",10" noenhanced
set output '%(png)s'
set grid
set xrange [0:%(duration)d]
set xlabel "second of the run"
set ylabel "2xx answers per second (solid)"
set y2label "answers outside 2xx per second (dashed)"
set yrange [0:*]
set y2range [0:*]
set y2tics
set ytics nomirror
set key bottom left Left reverse opaque box
set multiplot layout %(rows)d,%(columns)d title "%(title)s"
""" % {"png": os.path.join(out, "timeline.png"), "width": 640 * columns, "height": 80 + 340 * rows_,
       "rows": rows_, "columns": columns, "duration": duration_s, "title": gp_text(title)}
    for w, series in plots:
        script += 'set title "%s: throughput and errors per second (median run)"\nplot %s\n' % (
            gp_text(w), ", ".join(series))
    script += "unset multiplot\n"
    run_gnuplot(out, "timeline", script)


# ------------------------------------------------------------------ main

def parse_seconds(text, zero=False):
    m = re.fullmatch(r"(\d+)(s|m)?", text)
    if not m or (int(m.group(1)) == 0 and not zero):
        raise argparse.ArgumentTypeError("a whole number of seconds (10s) or minutes (1m), not %r" % text)
    return int(m.group(1)) * (60 if m.group(2) == "m" else 1)


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="tests/load/run",
        description="Drive shoal and its peers with wrk; print a table, write CSV and a PNG chart.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--url", help="drive this deployment instead of starting a stack "
                    "(peers only with --stack); e.g. http://my-lb:8080")
    ap.add_argument("--stack", metavar="DIR", help="use the deploy/local stack running with "
                    "SHOAL_STATE=DIR and leave it running")
    ap.add_argument("--state", metavar="DIR", help="state folder for the private stack "
                    "(default: a new temporary folder, removed afterwards)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary state folder")
    ap.add_argument("--via", default="direct", help="shoal through: direct (one node), lb "
                    "(HAProxy over --nodes nodes), or direct,lb")
    ap.add_argument("--nodes", type=int, default=1, help="nodes of the private stack")
    ap.add_argument("--binary", metavar="PATH",
                    help="the private stack's nodes run this program instead of shoal-node (SHOAL_BIN): "
                    "your service, reading shoal-node's settings from the environment and answering "
                    "`PATH migrate`")
    ap.add_argument("--node-threads", type=int, help="SHOAL_THREADS of the private stack's nodes")
    ap.add_argument("--duration", type=parse_seconds, default=parse_seconds("10s"),
                    dest="duration_s", help="length of each run")
    ap.add_argument("--warmup", type=lambda t: parse_seconds(t, zero=True), default=2, dest="warmup_s",
                    help="an unrecorded run before the first, per target and workload (0: none)")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--plaintext-connections", type=int, default=256)
    ap.add_argument("--pipeline", type=int, default=1,
                    help="HTTP pipelining depth for plaintext (TechEmpower uses 16)")
    ap.add_argument("--wrk-threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workloads", default=None,
                    help="comma-separated, from: " + ", ".join(WORKLOADS) +
                    " (default: all of them; none when --scenario or --wrk-script is given)")
    ap.add_argument("--scenario", action="append", default=[], metavar="FILE",
                    help="a workload of your own: weighted requests, one a line, "
                    "'WEIGHT METHOD PATH [@BODY_FILE]' with indented 'Header: value' lines "
                    "(docs/performance.md); named after the file; repeatable")
    ap.add_argument("--wrk-script", action="append", default=[], metavar="FILE.lua",
                    help="a workload of your own: a wrk Lua script, run as wrk runs it, with "
                    "the harness's counting added; named after the file; repeatable")
    ap.add_argument("--timeline", action="store_true",
                    help="count answers per second for the built-in TechEmpower workloads too "
                    "(a Lua callback per answer, which costs wrk CPU; the Conduit mix, "
                    "scenarios and wrk scripts always count)")
    ap.add_argument("--peers", default="flask,nginx,ulfius,pgbench,redis",
                    help="side-by-side peers: flask, nginx, ulfius, pgbench, redis, or none")
    ap.add_argument("--flask-workers", type=int, default=4)
    ap.add_argument("--ulfius-bin", metavar="PATH", default=os.environ.get("SHOAL_ULFIUS_BIN") or None,
                    help="the ulfius peer (tests/load/peers/ulfius_peer.c; default: SHOAL_ULFIUS_BIN, else "
                    "tests/load/peers/ulfius-peer in SHOAL_BIN's build tree, else in build/, built when missing)")
    ap.add_argument("--ulfius-threads", type=int, default=os.cpu_count() or 1,
                    help="the ulfius peer's libmicrohttpd thread pool")
    ap.add_argument("--pgbench-scale", type=int, default=10)
    ap.add_argument("--seed-users", type=int, default=10000,
                    help="conduit: users `shoal-node seed` makes in the stack's database")
    ap.add_argument("--seed-articles", type=int, default=100000,
                    help="conduit: articles `shoal-node seed` makes in the stack's database")
    ap.add_argument("--reseed", action="store_true",
                    help="conduit: seed a stack whose database has users anyway (--reset: deletes them)")
    ap.add_argument("--sessions", type=int, default=100,
                    help="conduit: seeded users the mix logs in and sends requests as")
    ap.add_argument("--out", help="output folder (default load-results/DATE-TIME)")
    ap.add_argument("--port-base", type=int, default=int(os.environ.get("SHOAL_LOAD_PORT_BASE", 28080)),
                    help="HAProxy BASE, stats BASE+1, nginx BASE+2, Flask BASE+3, ulfius BASE+4, nodes BASE+10...")
    ap.add_argument("--pg-port", type=int, default=int(os.environ.get("SHOAL_LOAD_PG_PORT", 25433)))
    ap.add_argument("--redis-port", type=int,
                    default=int(os.environ.get("SHOAL_LOAD_REDIS_PORT", 26380)))
    ap.add_argument("--pid", action="append", default=[], metavar="GROUP=PID",
                    help="with --url: a process to account CPU for (GROUP: node, lb, peer, "
                    "postgres, redis); repeatable")
    a = ap.parse_args(argv)
    own = a.scenario or a.wrk_script
    if a.workloads is None:
        a.workloads = "" if own else ",".join(WORKLOADS)
    a.workloads = [w for w in a.workloads.split(",") if w]
    for w in a.workloads:
        if w not in WORKLOADS:
            ap.error("unknown workload %r (known: %s)" % (w, ", ".join(WORKLOADS)))
    a.user_workloads = {}
    for kind, files in (("scenario", a.scenario), ("script", a.wrk_script)):
        for path in files:
            name = scenario.name_of(path)
            if name in WORKLOADS or name in a.user_workloads:
                ap.error("%s: its name %r is taken by another workload; rename the file" % (path, name))
            user = {"kind": kind, "file": os.path.abspath(path)}
            if kind == "scenario":
                try:
                    user["requests"] = scenario.parse(path)
                except scenario.ScenarioError as e:
                    ap.error(str(e))
            elif not os.path.isfile(path):
                ap.error("--wrk-script %s: no such file" % path)
            a.user_workloads[name] = user
            a.workloads.append(name)
    if not a.workloads:
        ap.error("no workloads")
    if a.binary:
        if not (os.path.isfile(a.binary) and os.access(a.binary, os.X_OK)):
            ap.error("--binary %s: not an executable file" % a.binary)
        a.binary = os.path.abspath(a.binary)
    a.peers = set() if a.peers == "none" else set(p for p in a.peers.split(",") if p)
    unknown = a.peers - {"flask", "nginx", "ulfius", "pgbench", "redis"}
    if unknown:
        ap.error("unknown peers: %s" % ", ".join(sorted(unknown)))
    a.via = set(a.via.split(","))
    if not a.via or a.via - {"direct", "lb"}:
        ap.error("--via takes direct, lb or direct,lb")
    if "lb" in a.via and not a.url and a.nodes < 1:
        ap.error("--nodes must be at least 1")
    if a.url and a.stack is None and a.peers:
        a.peers_note = "peers need the stack's PostgreSQL and Redis: none with --url alone (add --stack DIR)"
        a.peers = set()
    if not set(a.workloads) & (FLASK_WORKLOADS | NGINX_WORKLOADS | ULFIUS_WORKLOADS):
        # They serve only the built-in workloads: none of them here.
        a.peers -= {"flask", "nginx", "ulfius"}
    elif not set(a.workloads) & ULFIUS_WORKLOADS:
        a.peers.discard("ulfius")
    if not a.out:
        a.out = os.path.join(os.getcwd(), "load-results",
                             datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))
    return a


def git_commit():
    r = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                       capture_output=True, text=True)
    return r.stdout.strip() or "?"


def main(argv):
    a = parse_args(argv)
    for tool in ("wrk",):
        if not shutil.which(tool):
            die("%s is missing (deploy/local deps --load installs it)" % tool)
    os.makedirs(os.path.join(a.out, "raw"), exist_ok=True)
    if a.binary:
        # deploy/local starts this instead of building shoal-node.
        os.environ["SHOAL_BIN"] = a.binary
    h = Harness(a)
    stack = peers = None
    # SIGTERM should clean up like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        if not a.url or a.stack:
            stack = Stack(a)
            stack.up()
        if a.url:
            access = "access log: as the target is configured (unknown to the harness)"
        elif a.stack:
            access = ("access log and rate limits: as the running stack was started "
                      "(SHOAL_ACCESS_LOG_SAMPLE=0 SHOAL_RATE_LIMITS= for benchmarks)")
        else:
            access = ("access log OFF (SHOAL_ACCESS_LOG_SAMPLE=0), as nginx's ceiling runs with access_log off; "
                      "rate limits OFF (SHOAL_RATE_LIMITS=), since the load generator is one client")
        log(access)
        if stack and (a.peers & {"flask", "nginx", "ulfius"}):
            peers = Peers(a, stack, stack.state if not a.stack else a.out)
            if "nginx" in a.peers:
                peers.start_nginx()
            if "flask" in a.peers:
                peers.start_flask()
            if "ulfius" in a.peers:
                peers.start_ulfius()
                if peers.ulfius_missing:
                    h.skipped += [("ulfius", w, peers.ulfius_missing)
                                  for w in a.workloads if w in ULFIUS_WORKLOADS]
        if stack:
            h.prepare_pgbench(stack)
        if stack and "conduit" in a.workloads:
            h.seed_stack(stack)
        targets = h.targets(stack, peers)
        plan = []
        for w in a.workloads:
            for t in targets:
                reason = h.preflight(t, w)
                if reason is None:
                    plan.append((t, w))
                elif reason != "n/a":
                    h.skipped.append((t["name"], w, reason))
                    log("%s %s: skipped: %s" % (w, t["name"], reason))
        loadavg = open("/proc/loadavg").read().split()[:3]
        for run in range(1, a.runs + 1):
            for t, w in plan:
                if run == 1 and a.warmup_s:
                    h.measure(t, w, 0, warmup=True)
                h.measure(t, w, run)
            if stack:
                h.ceilings(stack, run)
    except KeyboardInterrupt:
        log("interrupted; stopping what this run started")
        loadavg = open("/proc/loadavg").read().split()[:3]
    finally:
        if peers:
            peers.stop()
        if stack:
            stack.down()

    meds = h.medians()
    header = [
        "shoal load test  %s  commit %s  %d cores  load average at start %s"
        % (datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S"), git_commit(),
           os.cpu_count() or 0, " ".join(loadavg)),
        "wrk -t%d, %d connections (%d for plaintext%s), %d s per run, median of %d run(s); %s"
        % (a.wrk_threads, a.connections, a.plaintext_connections,
           ", pipelined x%d" % a.pipeline if a.pipeline > 1 else "", a.duration_s, a.runs, access),
        "shoal: %s" % (a.url if a.url else ", ".join(sorted(a.via)) + (" (%d nodes behind HAProxy)" % a.nodes if "lb" in a.via else "")),
        "errors: socket errors + answers >= 400 (conduit, scenarios, wrk scripts: every answer outside 2xx); "
        "CPU: utime+stime from /proc per process tree; client = wrk, pgbench or redis-benchmark",
    ]
    for name, user in a.user_workloads.items():
        if user["kind"] == "scenario":
            total = sum(r["weight"] for r in user["requests"])
            header.append("%s: scenario %s: %s" % (name, user["file"], ", ".join(
                "%s %s %.0f%%" % (r["method"], r["path"], 100.0 * r["weight"] / total) for r in user["requests"])))
        else:
            header.append("%s: wrk script %s" % (name, user["file"]))
    if getattr(a, "peers_note", None):
        header.append("peers: " + a.peers_note)
    text = table(meds, h.skipped, header, round_ratios(h.rows))
    sys.stdout.write("\n" + text)
    with open(os.path.join(a.out, "table.txt"), "w") as f:
        f.write(text)
    write_csv(os.path.join(a.out, "results.csv"), meds, FIELDS)
    write_csv(os.path.join(a.out, "runs.csv"), h.rows,
              ["workload", "target", "run", "connections", "requests", "rps", "p50_ms", "p90_ms",
               "p99_ms", "p999_ms", "max_ms", "errors", "non2xx"] + ["cpu_" + g for g in CPU_GROUPS])
    timeline = timeline_rows(h.rows)
    write_csv(os.path.join(a.out, "timeline.csv"), timeline,
              ["workload", "target", "run", "second", "ok", "other"])
    chart(a.out, meds, a.workloads)
    title = "shoal load test, %s, %d connections" % (
        datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), a.connections)
    latency_chart(a.out, meds, a.workloads, title)
    timeline_chart(a.out, h.rows, a.workloads, a.duration_s, title)
    written = ["table.txt", "results.csv", "runs.csv", "chart.png", "latency.png"]
    if timeline:
        written += ["timeline.csv", "timeline.png"]
    print("\nwritten: %s/{%s}" % (a.out, ",".join(f for f in written if os.path.exists(os.path.join(a.out, f)))))
    return 0 if meds else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
