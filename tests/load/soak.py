#!/usr/bin/python3
"""tests/load/soak.py: a node's resident memory under long mixed load.

    tests/load/soak [--duration 600] [--baseline-after 60] [--limit-mib 10] ...
    tests/load/soak --help

Starts the local stack (deploy/local, one node) in a private state folder on
private ports, fills its database with `shoal-node seed`, logs sessions in
(seed_conduit.py), and drives the node directly with wrk and the Conduit mix
(lua/conduit.lua: reads, writes, sessions, logins) for --duration seconds.
Meanwhile it reads the node's VmRSS from /proc/PID/status every --interval
seconds.

It passes when the node's memory after --baseline-after seconds grows by no
more than --limit-mib by the end: the floor (lowest sample) of the samples
within 15 s of the baseline moment against the floor of the last 30 s. Floors
rather than single samples, because a sample that lands in a password hash
sees its buffer, which is no leak; a leak raises the floor. For the same
reason the node hashes with --password-mem-limit 1m here (SHOAL_PASSWORD_MEM_LIMIT;
the default 64m is mmapped and unmapped around every hash, and with the mix's
logins and registrations one runs most of the time: single samples then swing
by up to 4 x 64 MiB and a 30 s window can hold no sample outside a hash). It prints RSS
at the baseline and at the end, the requests served and the verdict, and
writes every sample to samples.csv and the verdict to summary.json in --out.
Exit status 0 on pass, 1 on growth past the limit or a failed run.
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402  (the load harness: its stack and its result parsing)

FLOOR_WINDOW_S = 15  # either side of the baseline moment
END_WINDOW_S = 30


def log(msg):
    print("soak: " + msg, file=sys.stderr, flush=True)


def rss_kib(pid):
    """VmRSS of pid in KiB, or None when it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def verdict(samples, duration_s, baseline_after_s, limit_mib):
    """samples: [(seconds since the load started, KiB)]. Returns a dict."""
    base = [kib for t, kib in samples if abs(t - baseline_after_s) <= FLOOR_WINDOW_S]
    end = [kib for t, kib in samples if t >= duration_s - END_WINDOW_S and t > baseline_after_s + FLOOR_WINDOW_S]
    if not base or not end:
        return {"ok": False, "reason": "too few samples around the baseline or at the end"}
    at_base = min(samples, key=lambda s: abs(s[0] - baseline_after_s))[1]
    growth_mib = (min(end) - min(base)) / 1024.0
    return {
        "ok": growth_mib <= limit_mib,
        "rss_at_baseline_mib": at_base / 1024.0,
        "rss_at_end_mib": samples[-1][1] / 1024.0,
        "rss_max_mib": max(kib for _, kib in samples) / 1024.0,
        "baseline_median_mib": sorted(base)[len(base) // 2] / 1024.0,
        "end_median_mib": sorted(end)[len(end) // 2] / 1024.0,
        "baseline_floor_mib": min(base) / 1024.0,
        "end_floor_mib": min(end) / 1024.0,
        "growth_mib": growth_mib,
        "limit_mib": limit_mib,
    }


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="tests/load/soak", description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=int, default=600, help="seconds of load (600)")
    ap.add_argument("--baseline-after", type=int, default=60,
                    help="seconds into the load when memory is taken as the baseline (60)")
    ap.add_argument("--limit-mib", type=float, default=10.0, help="growth allowed after the baseline (10)")
    ap.add_argument("--interval", type=float, default=5.0, help="seconds between samples (5)")
    ap.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    ap.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (2)")
    ap.add_argument("--seed-users", type=int, default=1000, help="users `shoal-node seed` makes (1000)")
    ap.add_argument("--seed-articles", type=int, default=10000, help="articles it makes (10000)")
    ap.add_argument("--sessions", type=int, default=64, help="users the mix logs in (64)")
    ap.add_argument("--password-mem-limit", default="1m",
                    help="the node's argon2id memory per hash (1m; the node's default is 64m)")
    ap.add_argument("--node-threads", type=int, default=0, help="the node's worker threads (deploy/local's 8)")
    ap.add_argument("--port-base", type=int, default=28600,
                    help="HAProxy on it, stats on +1, the node on +10 (28600)")
    ap.add_argument("--pg-port", type=int, default=26034, help="PostgreSQL (26034)")
    ap.add_argument("--redis-port", type=int, default=26981, help="Redis (26981)")
    ap.add_argument("--out", help="folder for samples.csv and summary.json (a temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the stack's state folder (logs)")
    a = ap.parse_args(argv)
    if a.duration - END_WINDOW_S <= a.baseline_after + FLOOR_WINDOW_S:
        ap.error("--duration must leave room after --baseline-after for the end window (%d s)" % END_WINDOW_S)
    # What harness.Stack reads.
    a.stack, a.state, a.nodes = None, None, 1
    return a


def main(argv):
    a = parse_args(argv)
    out = a.out or tempfile.mkdtemp(prefix="shoal-soak.")
    os.makedirs(out, exist_ok=True)
    os.environ["SHOAL_PASSWORD_MEM_LIMIT"] = a.password_mem_limit
    stack = harness.Stack(a)
    try:
        stack.up()
        node = stack.node_names()[0]
        pid, url = stack.pids[node], stack.node_url(node)
        log("seeding %d users and %d articles" % (a.seed_users, a.seed_articles))
        r = subprocess.run([harness.LOCAL, "seed", "--users", str(a.seed_users), "--articles",
                            str(a.seed_articles), "--reset"], env=stack.launcher_env(),
                           capture_output=True, text=True)
        if r.returncode != 0:
            log("deploy/local seed failed: %s" % r.stderr.strip()[-400:])
            return 1
        seed = os.path.join(out, "seed.txt")
        r = subprocess.run(["/usr/bin/python3", os.path.join(HERE, "seed_conduit.py"), url, seed,
                            "--sessions", str(a.sessions), "--mode", "seeded"], capture_output=True, text=True)
        if r.returncode != 0:
            log("seed_conduit.py failed: %s" % r.stderr.strip()[-400:])
            return 1
        cmd = ["wrk", "-t%d" % a.wrk_threads, "-c%d" % a.connections, "-d%ds" % a.duration,
               "--timeout", "5s", "-s", os.path.join(HERE, "lua", "conduit.lua"), url]
        log("%s (node %s, PID %d): %d s of the Conduit mix, RSS every %g s"
            % (" ".join(cmd), node, pid, a.duration, a.interval))
        samples = []
        with open(os.path.join(out, "wrk.txt"), "w") as wrk_out:
            started = time.monotonic()
            wrk = subprocess.Popen(cmd, env=dict(os.environ, LOAD_SEED=seed), stdout=wrk_out,
                                   stderr=subprocess.STDOUT)
            next_sample = started
            while wrk.poll() is None:
                now = time.monotonic()
                if now >= next_sample:
                    kib = rss_kib(pid)
                    if kib is None:
                        log("the node (PID %d) is gone" % pid)
                        wrk.kill()
                        wrk.wait()
                        return 1
                    samples.append((now - started, kib))
                    next_sample += a.interval
                time.sleep(min(0.2, max(0.0, next_sample - time.monotonic())))
                if now - started > a.duration + 60:
                    log("wrk did not finish in time")
                    wrk.kill()
            kib = rss_kib(pid)
            if kib is not None:
                samples.append((time.monotonic() - started, kib))
        with open(os.path.join(out, "wrk.txt")) as f:
            result = harness.parse_result(f.read())
        with open(os.path.join(out, "samples.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["seconds", "rss_kib"])
            for t, kib in samples:
                w.writerow(["%.1f" % t, kib])
        summary = verdict(samples, a.duration, a.baseline_after, a.limit_mib)
        summary.update({"duration_s": a.duration, "baseline_after_s": a.baseline_after,
                        "password_mem_limit": a.password_mem_limit,
                        "samples": len(samples), "connections": a.connections,
                        "commit": harness.git_commit()})
        if result is None:
            summary.update({"ok": False, "reason": "wrk printed no result (see wrk.txt)"})
        else:
            summary.update({"requests": result["requests"], "rps": result["rps"],
                            "errors": result["errors"], "non2xx": result["non2xx"]})
            if result["requests"] == 0:
                summary.update({"ok": False, "reason": "no request was served"})
        with open(os.path.join(out, "summary.json"), "w") as f:
            json.dump(summary, f, indent=2, sort_keys=True)
        if "growth_mib" in summary:
            print("RSS at %d s: %.1f MiB, at the end (%d s): %.1f MiB, highest %.1f MiB"
                  % (a.baseline_after, summary["rss_at_baseline_mib"], a.duration, summary["rss_at_end_mib"],
                     summary["rss_max_mib"]))
            print("floors: %.1f MiB around %d s, %.1f MiB in the last %d s: growth %+.1f MiB (limit %g MiB)"
                  % (summary["baseline_floor_mib"], a.baseline_after, summary["end_floor_mib"], END_WINDOW_S,
                     summary["growth_mib"], a.limit_mib))
            print("medians: %.1f MiB around %d s, %.1f MiB in the last %d s"
                  % (summary["baseline_median_mib"], a.baseline_after, summary["end_median_mib"], END_WINDOW_S))
        if result is not None:
            print("requests: %d (%.0f/s), non-2xx: %s, socket errors and >= 400: %d"
                  % (result["requests"], result["rps"], result["non2xx"], result["errors"]))
        print("soak: %s%s (samples in %s)" % ("PASS" if summary["ok"] else "FAIL",
                                             "" if summary["ok"] or "reason" not in summary
                                             else ": " + summary["reason"], out))
        return 0 if summary["ok"] else 1
    finally:
        stack.down()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
