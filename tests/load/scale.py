#!/usr/bin/python3
"""tests/load/scale.py: the scale-out experiment of issue 6 (start it with tests/load/scale).

Brings up the local stack (deploy/local, through tests/load/harness.py's Stack)
with N = 1, 2, 3, 4 nodes behind HAProxy (`balance leastconn`, lb/haproxy.cfg),
each node capped in its own cgroup v1 CPU controller group with a fixed CFS
quota and a fixed number of worker threads, and drives it with wrk at 256
connections on the Conduit workloads and /db. For every N it records
throughput (2xx answers only), p50/p99, errors, the CPU each tier used and how
often the nodes were throttled; it prints a table with the scaling efficiency
X(N) / (N * X(1)), fits the Universal Scalability Law, and writes CSV and a
PNG. Standard library only.

A user's service: --binary PATH runs that program as the nodes instead of
shoal-node (deploy/local starts it, so it must read the settings shoal-node
reads from its environment and answer `PATH migrate`), and --scenario FILE
(tests/load/scenario.py's format) or --wrk-script FILE.lua drive it instead
of the Conduit workloads, with the same table, CSV and plots; latency.png
and timeline.png show the latency percentiles and the answers per second for
every N.
"""
import argparse
import datetime
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402  (the stack, CPU accounting and wrk parsing are shared)
import scenario  # noqa: E402  (a user's scenario file)

REPO = harness.REPO
CGROUP_CPU = "/sys/fs/cgroup/cpu"

# name -> (what it is, how wrk drives it). "mix" workloads run lua/conduit.lua
# with every other operation's weight set to 0; "path" ones run lua/tfb.lua.
CONDUIT_OPERATIONS = ["list_articles", "articles_by_tag", "articles_by_author",
                      "articles_favorited", "get_article", "get_comments", "get_tags",
                      "get_profile", "feed", "current_user", "add_comment", "favorite",
                      "unfavorite", "login", "register"]
WORKLOADS = {
    "article": ("cached read: GET /api/articles/:slug (2,000 sampled slugs)",
                {"mix": {"get_article": 1000}}),
    "list": ("uncached list: GET /api/articles?limit=20&offset=..",
             {"mix": {"list_articles": 1000}}),
    "user": ("authenticated read: GET /api/user", {"mix": {"current_user": 1000}}),
    "write": ("write mix: 50% comment, 25% favourite, 25% unfavourite",
              {"mix": {"add_comment": 500, "favorite": 250, "unfavorite": 250}}),
    "db": ("TechEmpower /db: one PostgreSQL select", {"path": "/db"}),
}
TIERS = ["node", "lb", "redis", "postgres", "client"]


def log(msg):
    print("scale: " + msg, file=sys.stderr, flush=True)


def die(msg):
    log("error: " + msg)
    sys.exit(1)


# ------------------------------------------------------------------ cgroups

def write_control(path, value):
    """A shell echo, not Python's write: writing cpu.cfs_quota_us from Python
    failed here with EINVAL where echo succeeded (../shared/design.md)."""
    r = subprocess.run(["/bin/sh", "-c", 'echo "$1" > "$2"', "sh", str(value), path],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise OSError("writing %s to %s: %s" % (value, path, r.stderr.strip()))


def compose_cpus():
    """The `cpus:` docker-compose.yml gives the node service, or None."""
    try:
        with open(os.path.join(REPO, "docker-compose.yml")) as f:
            text = f.read()
    except OSError:
        return None
    m = re.search(r'^\s*cpus:\s*"?([0-9.]+)"?', text, re.M)
    return float(m.group(1)) if m else None


class NodeCgroups:
    """One cgroup v1 CPU group per node under shoal-scale-PID, removed at the end."""

    def __init__(self, quota_us, period_us):
        self.root = os.path.join(CGROUP_CPU, "shoal-scale-%d" % os.getpid())
        self.quota_us, self.period_us = quota_us, period_us
        self.made = []

    def check(self):
        if not os.path.isfile(os.path.join(CGROUP_CPU, "cpu.cfs_quota_us")):
            return "no cgroup v1 CPU controller at %s" % CGROUP_CPU
        if not os.access(CGROUP_CPU, os.W_OK):
            return "%s is not writable (run as root)" % CGROUP_CPU
        return None

    def group(self, name):
        path = os.path.join(self.root, name)
        if path not in self.made:
            for d in (self.root, path):
                if not os.path.isdir(d):
                    os.mkdir(d)
                    self.made.append(d)
            # The period first: a quota is checked against the period it is
            # written under.
            write_control(os.path.join(path, "cpu.cfs_period_us"), self.period_us)
            write_control(os.path.join(path, "cpu.cfs_quota_us"), self.quota_us)
        return path

    def place(self, name, root_pid):
        """Move ROOT_PID and its descendants, every thread (cgroup.procs)."""
        path = self.group(name)
        table = harness.proc_table()
        children = {}
        for pid, (ppid, _) in table.items():
            children.setdefault(ppid, []).append(pid)
        todo, moved = [root_pid], 0
        while todo:
            pid = todo.pop()
            todo.extend(children.get(pid, []))
            write_control(os.path.join(path, "cgroup.procs"), pid)
            moved += 1
        return moved

    def stat(self, name):
        """cpu.stat of the node's group: nr_periods, nr_throttled, throttled_time (ns)."""
        out = {}
        try:
            with open(os.path.join(self.root, name, "cpu.stat")) as f:
                for line in f:
                    k, _, v = line.partition(" ")
                    out[k] = int(v)
        except OSError:
            pass
        return out

    def remove(self):
        """rmdir, children first, once their processes are gone (deploy/local
        down stopped them; a group with a task in it cannot be removed)."""
        for d in reversed(self.made):
            for _ in range(50):
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)
            else:
                log("could not remove %s (a process is still in it)" % d)
        self.made = []


# ------------------------------------------------------------------ the fit

def usl(n, lam, sigma, kappa):
    return lam * n / (1 + sigma * (n - 1) + kappa * n * (n - 1))


def fit_usl(points):
    """Least squares of X(N) = lambda N / (1 + sigma (N-1) + kappa N (N-1)),
    sigma and kappa >= 0: for given sigma and kappa the best lambda is linear
    least squares, so a grid over sigma and kappa, refined around the best
    cell, finds the minimum. Returns (lambda, sigma, kappa, rms) or None."""
    pts = [(n, x) for n, x in points if x]
    if len(pts) < 3:
        return None

    def best(sigma, kappa):
        f = [n / (1 + sigma * (n - 1) + kappa * n * (n - 1)) for n, _ in pts]
        lam = sum(fi * x for fi, (_, x) in zip(f, pts)) / sum(fi * fi for fi in f)
        err = sum((lam * fi - x) ** 2 for fi, (_, x) in zip(f, pts))
        return err, lam

    s_lo, s_hi, k_lo, k_hi = 0.0, 1.0, 0.0, 0.5
    found = None
    for _ in range(6):
        steps = 60
        for i in range(steps + 1):
            s = s_lo + (s_hi - s_lo) * i / steps
            for j in range(steps + 1):
                k = k_lo + (k_hi - k_lo) * j / steps
                err, lam = best(s, k)
                if found is None or err < found[0]:
                    found = (err, lam, s, k)
        _, _, s, k = found
        ds, dk = (s_hi - s_lo) / steps * 2, (k_hi - k_lo) / steps * 2
        s_lo, s_hi = max(0.0, s - ds), s + ds
        k_lo, k_hi = max(0.0, k - dk), k + dk
    err, lam, s, k = found
    return lam, s, k, math.sqrt(err / len(pts))


# ------------------------------------------------------------------ the run

def machine_ticks():
    """(busy, all) clock ticks of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def wrk_command(a, url, workload, seed_file, token):
    kind = a.kinds[workload][1]
    env = dict(os.environ)
    cmd = ["wrk", "-t%d" % a.wrk_threads, "-c%d" % a.connections, "-d%ds" % a.duration,
           "--timeout", "%ds" % max(2, a.duration), "--latency"]
    if "scenario" in kind:
        compiled = os.path.join(a.out, "scenario-%s.lua" % workload)
        with open(compiled, "w") as f:
            f.write(scenario.compile_lua(kind["scenario"]))
        env["LOAD_SCENARIO"] = compiled
        cmd += ["-s", os.path.join(harness.LUA, "scenario.lua"), url]
    elif "script" in kind:
        env["LOAD_USER_SCRIPT"] = kind["script"]
        cmd += ["-s", os.path.join(harness.LUA, "user_script.lua"), url]
    elif "mix" in kind:
        weights = {op: kind["mix"].get(op, 0) for op in CONDUIT_OPERATIONS}
        env["LOAD_CONDUIT_MIX"] = ",".join("%s=%d" % kv for kv in weights.items())
        env["LOAD_SEED"] = seed_file
        cmd += ["-s", os.path.join(harness.LUA, "conduit.lua"), url]
    else:
        env["LOAD_PIPELINE"] = "1"
        cmd += ["-s", os.path.join(harness.LUA, "tfb.lua"), url + kind["path"]]
    return cmd, env


def measure(a, stack, cgroups, n, workload, seed_file, token, out):
    nodes = ["node%d" % k for k in range(1, n + 1)]
    groups = {"node": [stack.pids[x] for x in nodes], "lb": [stack.pids["lb"]],
              "redis": [stack.pids["redis"]], "postgres": [stack.pids["postgres"]]}
    cmd, env = wrk_command(a, stack.lb_url(), workload, seed_file, token)
    if a.warmup:
        warm = list(cmd)
        warm[3] = "-d%ds" % a.warmup
        harness.run_measured(warm, env=env, limit=a.warmup + 30)
    rows = []
    for run in range(1, a.runs + 1):
        raw = os.path.join(out, "raw", "%s-n%d-run%d.txt" % (workload, n, run))
        throttle_before = {x: cgroups.stat(x) for x in nodes}
        before = harness.cpu_sample(groups)
        busy_before = machine_ticks()
        t0 = time.monotonic()
        rc, text, client_cpu = harness.run_measured(cmd, env=env, limit=a.duration + 60,
                                                    out_path=raw)
        wall = time.monotonic() - t0
        after = harness.cpu_sample(groups)
        busy_after = machine_ticks()
        throttle_after = {x: cgroups.stat(x) for x in nodes}
        res = harness.parse_result(text)
        if rc != 0 or res is None:
            log("%s N=%d run %d: wrk failed (exit %d, see %s)" % (workload, n, run, rc, raw))
            continue
        m = re.search(r"duration_s=([0-9.]+)", text)
        secs = float(m.group(1)) if m else a.duration
        # wrk's `status` counts answers >= 400; the Conduit script counts
        # every answer outside 2xx itself (non2xx).
        bad = res["non2xx"] if res["non2xx"] is not None else \
            int(re.search(r"status=(\d+)", text).group(1))
        sockets = res["errors"] - int(re.search(r"status=(\d+)", text).group(1))
        good = res["requests"] - bad
        periods = sum(throttle_after[x].get("nr_periods", 0) - throttle_before[x].get("nr_periods", 0)
                      for x in nodes)
        throttled = sum(throttle_after[x].get("nr_throttled", 0) - throttle_before[x].get("nr_throttled", 0)
                        for x in nodes)
        row = {"workload": workload, "nodes": n, "run": run, "connections": a.connections,
               "requests": res["requests"], "ok_rps": good / secs, "non2xx": bad,
               "socket_errors": sockets, "p50_ms": res["p50_ms"], "p90_ms": res["p90_ms"],
               "p99_ms": res["p99_ms"], "p999_ms": res["p999_ms"],
               "throttled_share": throttled / periods if periods else None,
               "timeline": harness.parse_timeline(text)}
        for g in TIERS:
            used = client_cpu if g == "client" else after[g] - before[g]
            row["cores_" + g] = used / wall
        # Every process on the machine, other people's too: when this is
        # near the core count, the machine is what saturates.
        row["cores_machine"] = (busy_after[0] - busy_before[0]) / harness.TICK / wall
        rows.append(row)
        log("%-8s N=%d run %d: %8.0f 2xx/s  p99 %s ms  non-2xx %d  socket errors %d  "
            "node cores %.2f (quota %.2f)  pg %.2f  redis %.2f  lb %.2f  wrk %.2f  machine %.2f"
            % (workload, n, run, row["ok_rps"], "-" if row["p99_ms"] is None else "%.1f" % row["p99_ms"],
               bad, sockets, row["cores_node"], n * a.node_cpus, row["cores_postgres"],
               row["cores_redis"], row["cores_lb"], row["cores_client"], row["cores_machine"]))
    return rows


def median_rows(rows):
    """One row per (workload, N): the run with the median throughput."""
    out = {}
    for key in sorted({(r["workload"], r["nodes"]) for r in rows}):
        rs = sorted((r for r in rows if (r["workload"], r["nodes"]) == key), key=lambda r: r["ok_rps"])
        out[key] = dict(rs[len(rs) // 2], runs=len(rs))
    return out


def fmt(v, spec):
    return "-" if v is None else spec % v


def report(a, meds, fits, header):
    lines = list(header)
    cols = ("%-8s %2s %9s %6s %8s %8s %8s %7s %7s | %5s %5s %5s %5s %5s %5s %5s" %
            ("workload", "N", "2xx/s", "eff", "p50ms", "p99ms", "p99.9ms", "non2xx", "sockerr",
             "node", "thr%", "lb", "redis", "pg", "wrk", "all"))
    lines.append("%-79s | %s" % ("", "CPU cores used (node: all nodes; thr%: node periods throttled; all: the whole machine)"))
    lines.append(cols)
    lines.append("-" * len(cols))
    for w in a.workloads:
        base = meds.get((w, a.nodes[0]))
        for n in a.nodes:
            m = meds.get((w, n))
            if not m:
                lines.append("%-8s %2d  (no result)" % (w, n))
                continue
            m["efficiency"] = None
            if base and base["ok_rps"] and 1 in a.nodes:
                x1 = meds.get((w, 1))
                if x1 and x1["ok_rps"]:
                    m["efficiency"] = m["ok_rps"] / (n * x1["ok_rps"])
            lines.append("%-8s %2d %9.0f %6s %8s %8s %8s %7d %7d | %5.2f %5s %5.2f %5.2f %5.2f %5.2f %5.2f" % (
                w, n, m["ok_rps"], fmt(m["efficiency"], "%.2f"), fmt(m["p50_ms"], "%.2f"),
                fmt(m["p99_ms"], "%.2f"), fmt(m.get("p999_ms"), "%.2f"), m["non2xx"], m["socket_errors"], m["cores_node"],
                fmt(None if m["throttled_share"] is None else 100 * m["throttled_share"], "%.0f"),
                m["cores_lb"], m["cores_redis"], m["cores_postgres"], m["cores_client"],
                m["cores_machine"]))
        fit = fits.get(w)
        if fit:
            lines.append("%-8s USL: lambda %.0f/s, sigma %.4f, kappa %.4f, rms %.0f/s%s" % (
                w, fit[0], fit[1], fit[2], fit[3],
                "" if fit[2] <= 0 else ", peak at N = %.1f" % math.sqrt((1 - fit[1]) / fit[2])
                if fit[1] < 1 else ""))
        lines.append("")
    lines.extend(cost_table(a, meds))
    return "\n".join(lines) + "\n"


def cost_table(a, meds):
    """CPU microseconds each tier spent per 2xx answer: the per-request
    costs that capacity planning divides a tier's cores by. Read down a
    workload's rows to see whether a tier's cost depends on N."""
    cols = "%-8s %2s | %6s %6s %6s %6s %6s" % ("workload", "N", "node", "lb", "redis", "pg", "wrk")
    lines = ["CPU microseconds per 2xx answer, by tier (cores used / 2xx per second)", cols,
             "-" * len(cols)]
    for w in a.workloads:
        for n in a.nodes:
            m = meds.get((w, n))
            if not m or not m["ok_rps"]:
                continue
            lines.append("%-8s %2d | %s" % (w, n, " ".join(
                "%6.0f" % (1e6 * m["cores_" + g] / m["ok_rps"]) for g in TIERS)))
    lines.append("")
    return lines


CSV_FIELDS = ["workload", "nodes", "run", "connections", "requests", "ok_rps", "efficiency",
              "non2xx", "socket_errors", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "throttled_share"] + \
             ["cores_" + g for g in TIERS] + ["cores_machine"]


def plot(a, out, meds, fits):
    if not shutil.which("gnuplot"):
        log("gnuplot is missing: no plot")
        return
    dat = os.path.join(out, "scale.dat")
    ws = [w for w in a.workloads if any((w, n) in meds for n in a.nodes)]
    with open(dat, "w") as f:
        for w in ws:
            f.write('"%s"\n' % w)
            for n in a.nodes:
                m = meds.get((w, n))
                if m:
                    f.write("%d %.1f %s\n" % (n, m["ok_rps"], fmt(m.get("efficiency"), "%.4f")))
            f.write("\n\n")
    usl_plots = []
    for i, w in enumerate(ws):
        fit = fits.get(w)
        if fit:
            usl_plots.append("%.3f*x/(1+%.6f*(x-1)+%.6f*x*(x-1)) with lines dt 2 lc %d notitle"
                             % (fit[0], fit[1], fit[2], i + 1))
    script = """set terminal pngcairo size 1000,900 font ",10" noenhanced
set output '%(png)s'
set datafile missing '-'
set key outside right top
set grid
set xrange [0.5:%(nmax).1f]
set xtics 1
set multiplot layout 2,1 title "%(title)s"
set title "throughput through HAProxy (2xx/s; dashed: the USL fit)"
set ylabel "2xx answers per second"
plot for [i=0:%(last)d] '%(dat)s' index i using 1:2 with linespoints lw 2 lc i+1 title columnheader(1)%(usl)s
set title "scaling efficiency X(N) / (N X(1))"
set ylabel "efficiency"
set yrange [0:1.3]
plot for [i=0:%(last)d] '%(dat)s' index i using 1:3 with linespoints lw 2 lc i+1 title columnheader(1), 1 with lines lc "gray" notitle, 0.8 with lines dt 3 lc "gray" notitle
unset multiplot
""" % {"png": os.path.join(out, "scale.png"), "dat": dat, "last": len(ws) - 1,
       "nmax": max(a.nodes) + 0.5, "usl": "".join(", " + p for p in usl_plots),
       "title": "shoal scale-out, %s, %.3g CPU per node (CFS period %g ms), %d connections, leastconn"
       % (datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), a.node_cpus, a.cfs_period_us / 1000.0,
          a.connections)}
    gp = os.path.join(out, "scale.gp")
    with open(gp, "w") as f:
        f.write(script)
    r = subprocess.run(["gnuplot", gp], capture_output=True, text=True)
    if r.returncode != 0:
        log("gnuplot failed: %s" % r.stderr.strip()[-300:])


def percentile_plots(a, out, meds, rows, title):
    """latency.png and timeline.png of harness.py, one line per node count:
    latency percentiles p50 to p99.9, answers per second over the median
    run (workloads whose script counts them: the Conduit ones, scenarios,
    wrk scripts)."""
    targets = ["N=%d" % n for n in a.nodes]
    as_targets = []
    for (w, n), m in sorted(meds.items()):
        as_targets.append({"workload": w, "target": "N=%d" % n, "p50_ms": m["p50_ms"],
                           "p90_ms": m.get("p90_ms"), "p99_ms": m["p99_ms"], "p999_ms": m.get("p999_ms")})
    harness.latency_chart(out, as_targets, a.workloads, title, targets)
    runs = [{"workload": r["workload"], "target": "N=%d" % r["nodes"], "run": r["run"],
             "rps": r["ok_rps"], "timeline": r.get("timeline")} for r in rows]
    harness.timeline_chart(out, runs, a.workloads, a.duration, title, targets)
    harness.write_csv(os.path.join(out, "timeline.csv"), harness.timeline_rows(runs),
                      ["workload", "target", "run", "second", "ok", "other"])


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="tests/load/scale",
        description="Scale-out experiment: N capped nodes behind HAProxy, wrk through it; "
        "table, efficiency, USL fit, CSV and PNG.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--nodes", default="1,2,3,4", help="node counts, comma-separated")
    ap.add_argument("--workloads", default=None,
                    help="comma-separated, from: " + ", ".join(WORKLOADS) +
                    " (default: all of them; none with --scenario or --wrk-script)")
    ap.add_argument("--binary", metavar="PATH",
                    help="your service's binary as the nodes, instead of shoal-node (SHOAL_BIN): "
                    "it reads shoal-node's settings from the environment and answers `PATH migrate`")
    ap.add_argument("--scenario", action="append", default=[], metavar="FILE",
                    help="a workload of your own, in tests/load/run's scenario format; repeatable")
    ap.add_argument("--wrk-script", action="append", default=[], metavar="FILE.lua",
                    help="a workload of your own: a wrk Lua script; repeatable")
    ap.add_argument("--duration", type=int, default=10, help="seconds per run")
    ap.add_argument("--warmup", type=int, default=2, help="unrecorded seconds before each point (0: none)")
    ap.add_argument("--runs", type=int, default=1, help="runs per point (the median is reported)")
    ap.add_argument("--connections", type=int, default=256)
    ap.add_argument("--wrk-threads", type=int, default=2)
    ap.add_argument("--node-cpus", default="auto",
                    help="CFS quota per node in CPUs; auto: docker-compose.yml's cpus:, capped "
                    "at a quarter of this machine's cores over the largest N")
    ap.add_argument("--cfs-period-us", type=int, default=100000)
    # A worker per CPU, as a node sizes itself: a node capped under one CPU
    # runs one (it reads its quota at start, before this moves it into the
    # capped group, so it is told).
    ap.add_argument("--node-threads", type=int, default=1, help="SHOAL_THREADS per node")
    ap.add_argument("--seed-users", type=int, default=2000)
    ap.add_argument("--seed-articles", type=int, default=20000)
    ap.add_argument("--sessions", type=int, default=100)
    ap.add_argument("--port-base", type=int, default=int(os.environ.get("SHOAL_LOAD_PORT_BASE", 28180)),
                    help="HAProxy BASE, stats BASE+1, nodes BASE+10...")
    ap.add_argument("--pg-port", type=int, default=int(os.environ.get("SHOAL_LOAD_PG_PORT", 25533)))
    ap.add_argument("--redis-port", type=int, default=int(os.environ.get("SHOAL_LOAD_REDIS_PORT", 26480)))
    ap.add_argument("--state", metavar="DIR", help="state folder (default: a temporary one, removed)")
    ap.add_argument("--keep", action="store_true", help="keep the state folder")
    ap.add_argument("--out", help="output folder (default load-results/scale-DATE-TIME)")
    a = ap.parse_args(argv)
    try:
        a.nodes = sorted({int(x) for x in a.nodes.split(",") if x})
    except ValueError:
        ap.error("--nodes takes numbers, e.g. 1,2,3,4")
    if not a.nodes or a.nodes[0] < 1:
        ap.error("--nodes must be at least 1")
    if a.workloads is None:
        a.workloads = "" if a.scenario or a.wrk_script else ",".join(WORKLOADS)
    a.workloads = [w for w in a.workloads.split(",") if w]
    for w in a.workloads:
        if w not in WORKLOADS:
            ap.error("unknown workload %r (known: %s)" % (w, ", ".join(WORKLOADS)))
    # name -> (what it is, how wrk drives it), the built-in ones and the user's.
    a.kinds = dict(WORKLOADS)
    for key, files in (("scenario", a.scenario), ("script", a.wrk_script)):
        for path in files:
            name = scenario.name_of(path)
            if name in a.kinds:
                ap.error("%s: its name %r is taken by another workload; rename the file" % (path, name))
            if key == "scenario":
                try:
                    requests = scenario.parse(path)
                except scenario.ScenarioError as e:
                    ap.error(str(e))
                total = sum(r["weight"] for r in requests)
                a.kinds[name] = ("scenario %s: %s" % (path, ", ".join(
                    "%s %s %.0f%%" % (r["method"], r["path"], 100.0 * r["weight"] / total) for r in requests)),
                    {"scenario": requests})
            else:
                if not os.path.isfile(path):
                    ap.error("--wrk-script %s: no such file" % path)
                a.kinds[name] = ("wrk script %s" % path, {"script": os.path.abspath(path)})
            a.workloads.append(name)
    if not a.workloads:
        ap.error("no workloads")
    if a.binary:
        if not (os.path.isfile(a.binary) and os.access(a.binary, os.X_OK)):
            ap.error("--binary %s: not an executable file" % a.binary)
        a.binary = os.path.abspath(a.binary)
    cores = os.cpu_count() or 1
    compose = compose_cpus()
    if a.node_cpus == "auto":
        # HAProxy, PostgreSQL or Redis and wrk together use about 2 to 2.5
        # times a node's CPU per request here (docs/scaling.md), so the nodes
        # may take about a quarter of the machine at the largest N before
        # the shared tiers run out of cores rather than the nodes.
        cap = cores / 4.0 / max(a.nodes)
        a.node_cpus = min(compose or cap, cap)
        a.cpus_note = ("%.3f CPU per node: docker-compose.yml gives %s, capped at a quarter of %d cores "
                       "over N=%d so that HAProxy, PostgreSQL, Redis and wrk keep the rest"
                       % (a.node_cpus, compose, cores, max(a.nodes)))
    else:
        a.node_cpus = float(a.node_cpus)
        a.cpus_note = "%.2f CPU per node (--node-cpus; docker-compose.yml gives %s)" % (a.node_cpus, compose)
    a.quota_us = int(round(a.node_cpus * a.cfs_period_us))
    if a.quota_us < 1000:
        ap.error("--node-cpus gives a quota under 1 ms per period, which the kernel refuses")
    if not a.out:
        a.out = os.path.join(os.getcwd(), "load-results",
                             "scale-" + datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))
    return a


def main(argv):
    a = parse_args(argv)
    if not shutil.which("wrk"):
        die("wrk is missing (deploy/local deps --load installs it)")
    cgroups = NodeCgroups(a.quota_us, a.cfs_period_us)
    reason = cgroups.check()
    if reason:
        die(reason + ": the nodes cannot be capped, and uncapped nodes on one machine "
            "measure the machine, not the scale-out")
    os.makedirs(os.path.join(a.out, "raw"), exist_ok=True)
    if a.binary:
        # deploy/local starts this instead of building shoal-node.
        os.environ["SHOAL_BIN"] = a.binary
    state = os.path.abspath(a.state) if a.state else tempfile.mkdtemp(prefix="shoal-scale.")
    # harness.Stack's settings: a fixed state folder, so that each `up`
    # changes the node count of the same stack.
    sa = argparse.Namespace(stack=None, state=state, keep=True, port_base=a.port_base,
                            nodes=a.nodes[0], pg_port=a.pg_port, redis_port=a.redis_port,
                            node_threads=a.node_threads)
    stack = harness.Stack(sa)
    rows = []
    loadavg = open("/proc/loadavg").read().split()[:3]
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    started = time.monotonic()
    try:
        seed_file = token = None
        for n in a.nodes:
            sa.nodes = n
            stack.up()
            if seed_file is None and any("mix" in a.kinds[w][1] for w in a.workloads):
                h = harness.Harness(argparse.Namespace(
                    seed_users=a.seed_users, seed_articles=a.seed_articles, reseed=False,
                    sessions=a.sessions, out=a.out))
                h.seed_stack(stack)
                t = {"name": "scale", "url": stack.lb_url()}
                seed_file = h.seed(t)
                if seed_file is None:
                    die("no Conduit data set: %s" % t.get("seed_reason"))
                token = t.get("token")
            # After seeding: the seed logs users in (argon2id, tens of ms of
            # CPU each), which under the quota would take minutes.
            for k in range(1, n + 1):
                name = "node%d" % k
                moved = cgroups.place(name, stack.pids[name])
                log("%s (PID %d, %d process(es)) in %s: quota %d us per %d us"
                    % (name, stack.pids[name], moved, os.path.join(cgroups.root, name),
                       a.quota_us, a.cfs_period_us))
            for w in a.workloads:
                rows.extend(measure(a, stack, cgroups, n, w, seed_file, token, a.out))
    except KeyboardInterrupt:
        log("interrupted; stopping what this run started")
    finally:
        stack.down()
        cgroups.remove()
        if not a.state and not a.keep:
            stack.purge()

    meds = median_rows(rows)
    fits = {}
    for w in a.workloads:
        fits[w] = fit_usl([(n, meds[(w, n)]["ok_rps"]) for n in a.nodes if (w, n) in meds])
    header = [
        "shoal scale-out  %s  commit %s  %d cores  load average at start %s  %.0f s in all"
        % (datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S"), harness.git_commit(),
           os.cpu_count() or 0, " ".join(loadavg), time.monotonic() - started),
        "nodes: %s; CFS quota %d us per %d us period; SHOAL_THREADS=%d; HAProxy balance leastconn"
        % (a.cpus_note, a.quota_us, a.cfs_period_us, a.node_threads),
        "node binary: %s" % (a.binary + " (--binary)" if a.binary else
                             os.environ.get("SHOAL_BIN") or "shoal-node, built by deploy/local"),
        "wrk -t%d -c%d, %d s per run (+%d s warm-up), median of %d run(s); access log and rate limits off"
        % (a.wrk_threads, a.connections, a.duration, a.warmup, a.runs),
        "throughput: 2xx answers only; non2xx and socket errors reported apart; eff = X(N)/(N X(1))",
        "",
    ]
    for w in a.workloads:
        header.append("  %-8s %s" % (w, a.kinds[w][0]))
    header.append("")
    text = report(a, meds, fits, header)
    sys.stdout.write("\n" + text)
    with open(os.path.join(a.out, "table.txt"), "w") as f:
        f.write(text)
    harness.write_csv(os.path.join(a.out, "scale.csv"), [meds[k] for k in sorted(meds)], CSV_FIELDS)
    harness.write_csv(os.path.join(a.out, "runs.csv"), rows, [f for f in CSV_FIELDS if f != "efficiency"])
    with open(os.path.join(a.out, "usl.csv"), "w") as f:
        f.write("workload,lambda,sigma,kappa,rms\n")
        for w, fit in fits.items():
            if fit:
                f.write("%s,%.6g,%.6g,%.6g,%.6g\n" % ((w,) + fit))
    plot(a, a.out, meds, fits)
    percentile_plots(a, a.out, meds, rows, "%s scale-out, %s, %.3g CPU per node, %d connections" % (
        os.path.basename(a.binary) if a.binary else "shoal", datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        a.node_cpus, a.connections))
    print("written: %s/{table.txt,scale.csv,runs.csv,usl.csv,scale.png,latency.png,timeline.csv,timeline.png}"
          % a.out)
    return 0 if meds else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
