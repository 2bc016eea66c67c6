#!/usr/bin/python3
"""tests/load/capacity.py: capacity on paper, from a tests/load/scale run.

Reads the scale.csv that tests/load/scale wrote and prints, for each workload
and for a mix of them:

- the CPU microseconds each tier spent per 2xx answer (the median over the
  run's points, with the smallest and largest);
- what one core of each shared tier answers per second, and how many nodes
  of --node-cpus CPU each shared tier feeds before it, not the nodes, is the
  limit (Redis is one thread, so one Redis is one core however many the host
  has; PostgreSQL and HAProxy use as many cores as they are given);
- the PostgreSQL connection budget: how many nodes of --threads workers fit
  under --max-connections, by the rule deploy/local and docker-compose.yml
  use (docs/operations.md), and, with --database-url, the connections a
  running stack actually holds per node.

Standard library only; docs/scaling.md explains how to read the output.
"""
import argparse
import csv
import glob
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TIERS = [("node", "node"), ("lb", "HAProxy"), ("redis", "Redis"), ("postgres", "PostgreSQL"),
         ("client", "wrk")]
SHARED = ["lb", "redis", "postgres"]
# Per worker at most: its pipe, its connection for transactions, and its
# pipe's spill lane while a slow statement stalls the pipe (docs/engine.md).
CONNECTIONS_PER_WORKER = 3
# Per node beyond its workers: the tier monitor behind /readyz and the
# migration connection at start (deploy/local's pg_max_connections).
CONNECTIONS_PER_NODE_BEYOND_THREADS = 2
SPARE_CONNECTIONS = 20


def latest_results():
    runs = sorted(glob.glob(os.path.join(REPO, "load-results", "scale-*", "scale.csv")))
    return os.path.dirname(runs[-1]) if runs else None


def read_points(path):
    """One point per (workload, N): the run with the median throughput, as
    tests/load/scale's table shows it."""
    by_key = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if not row["ok_rps"] or float(row["ok_rps"]) <= 0:
                continue
            by_key.setdefault((row["workload"], int(row["nodes"])), []).append(row)
    points = {}
    for key, rows in by_key.items():
        rows.sort(key=lambda r: float(r["ok_rps"]))
        points[key] = rows[len(rows) // 2]
    return points


def costs_by_workload(points):
    """workload -> tier -> (median, smallest, largest) microseconds per 2xx
    answer, over the workload's points (one per N)."""
    costs = {}
    for (workload, _nodes), row in points.items():
        rate = float(row["ok_rps"])
        for tier, _name in TIERS:
            value = row.get("cores_" + tier)
            if value in (None, ""):
                continue
            costs.setdefault(workload, {}).setdefault(tier, []).append(1e6 * float(value) / rate)
    return {w: {t: (statistics.median(v), min(v), max(v)) for t, v in tiers.items()}
            for w, tiers in costs.items()}


def parse_mix(text, workloads):
    mix = {}
    for part in text.split(","):
        name, _, weight = part.partition("=")
        name = name.strip()
        if name not in workloads:
            raise ValueError("unknown workload %r in --mix (the run has: %s)" % (name, ", ".join(sorted(workloads))))
        try:
            value = float(weight)
        except ValueError:
            raise ValueError("--mix wants workload=weight, got %r" % part) from None
        if value < 0:
            raise ValueError("a weight in --mix is negative: %r" % part)
        mix[name] = mix.get(name, 0.0) + value
    total = sum(mix.values())
    if total <= 0:
        raise ValueError("the weights in --mix add up to 0")
    return {name: value / total for name, value in mix.items()}


def mix_cost(costs, mix):
    """The per-request cost of a mix is the weighted sum of its workloads'
    costs: each request costs what its kind costs, whatever else runs."""
    out = {}
    for tier, _name in TIERS:
        if all(tier in costs[w] for w in mix):
            out[tier] = tuple(sum(share * costs[w][tier][k] for w, share in mix.items()) for k in range(3))
    return out


def feeds(cost, node_cpus):
    """Answers per second per core of each shared tier, a node's answers per
    second at node_cpus, and how many such nodes one core of each shared
    tier keeps busy (None where the tier does no work for the workload)."""
    node_rate = node_cpus * 1e6 / cost["node"][0]
    out = {"node_rate": node_rate}
    for tier in SHARED:
        if tier not in cost:
            continue
        per_request = cost[tier][0]
        # Under half a microsecond is accounting noise (a tier the
        # workload does not use), not a capacity.
        out[tier] = None if per_request < 0.5 else (1e6 / per_request, 1e6 / per_request / node_rate)
    return out


def connection_budget(max_connections, threads, spare=SPARE_CONNECTIONS):
    per_node = CONNECTIONS_PER_WORKER * threads + CONNECTIONS_PER_NODE_BEYOND_THREADS
    return per_node, max(0, (max_connections - spare) // per_node)


def live_connections(database_url):
    """Client connections a running stack holds, by application_name: a
    node names its libpq connections after itself (SHOAL_NODE_NAME,
    node/lib/config.c), so each node's count shows apart from psql and tools."""
    sql = ("SELECT coalesce(nullif(application_name, ''), '(unnamed)'), count(*) FROM pg_stat_activity "
           "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() GROUP BY 1 ORDER BY 1; "
           "SHOW max_connections")
    out = subprocess.run(["psql", "-X", "-At", "-F", " ", "-d", database_url, "-c", sql],
                         capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise RuntimeError("psql failed: " + out.stderr.strip())
    lines = out.stdout.split("\n")
    lines = [line for line in lines if line.strip()]
    limit = int(lines[-1])
    held = {}
    for line in lines[:-1]:
        name, _, count = line.rpartition(" ")
        held[name] = int(count)
    return held, limit


def cost_lines(title, cost):
    lines = [title]
    for tier, name in TIERS:
        if tier in cost:
            median, low, high = cost[tier]
            lines.append("  %-10s %7.0f us  (%.0f to %.0f over the run's points)" % (name, median, low, high))
    return lines


def feed_lines(cost, node_cpus):
    f = feeds(cost, node_cpus)
    lines = ["  a node at %.2f CPU answers about %.0f/s" % (node_cpus, f["node_rate"])]
    names = dict(TIERS)
    for tier in SHARED:
        if tier not in f:
            continue
        if f[tier] is None:
            lines.append("  %-10s no work per request" % names[tier])
            continue
        rate, nodes = f[tier]
        unit = "one Redis (one thread)" if tier == "redis" else "one core"
        lines.append("  %-10s %s answers %.0f/s: feeds %.2f such nodes" % (names[tier], unit, rate, nodes))
    return lines


def parse_args(argv):
    p = argparse.ArgumentParser(prog="tests/load/capacity",
                                description="Capacity on paper from a tests/load/scale run (docs/scaling.md).")
    p.add_argument("--results", help="a load-results/scale-* folder (default: the latest)")
    p.add_argument("--node-cpus", type=float, default=1.0,
                   help="CPU of one node, as docker-compose.yml's cpus: (default 1.0)")
    p.add_argument("--mix", default="article=60,user=25,list=10,write=5",
                   help="workload=weight,... for the mixed figure (default: article=60,user=25,list=10,write=5)")
    p.add_argument("--threads", type=int, default=4, help="SHOAL_THREADS per node (default 4)")
    p.add_argument("--max-connections", type=int, default=180,
                   help="PostgreSQL max_connections (default 180, docker-compose.yml's)")
    p.add_argument("--database-url", help="also count the connections a running stack holds, per node")
    a = p.parse_args(argv)
    if a.node_cpus <= 0 or a.threads < 1 or a.max_connections < 1:
        p.error("--node-cpus, --threads and --max-connections must be positive")
    return a


def main(argv):
    a = parse_args(argv)
    results = a.results or latest_results()
    if not results or not os.path.exists(os.path.join(results, "scale.csv")):
        sys.exit("capacity: no scale.csv (run tests/load/scale first, or give --results)")
    costs = costs_by_workload(read_points(os.path.join(results, "scale.csv")))
    try:
        mix = parse_mix(a.mix, costs)
    except ValueError as error:
        sys.exit("capacity: %s" % error)

    print("capacity on paper from %s" % os.path.relpath(results, os.getcwd()))
    print("CPU per 2xx answer is cores used / 2xx per second at each N; the median is used below.")
    for workload in sorted(costs):
        print()
        print("\n".join(cost_lines("%s: CPU per answer" % workload, costs[workload])))
        print("\n".join(feed_lines(costs[workload], a.node_cpus)))
    print()
    print("\n".join(cost_lines("mix %s: CPU per answer" % ", ".join(
        "%s %.0f%%" % (w, 100 * s) for w, s in sorted(mix.items())), mix_cost(costs, mix))))
    print("\n".join(feed_lines(mix_cost(costs, mix), a.node_cpus)))

    per_node, nodes = connection_budget(a.max_connections, a.threads)
    print()
    print("PostgreSQL connections: %d per node (%d workers x %d + %d), %d spare: %d nodes fit under "
          "max_connections %d" % (per_node, a.threads, CONNECTIONS_PER_WORKER, CONNECTIONS_PER_NODE_BEYOND_THREADS,
                                  SPARE_CONNECTIONS, nodes, a.max_connections))
    if a.database_url:
        held, limit = live_connections(a.database_url)
        print("running stack: max_connections %d, client connections by application_name (a node opens "
              "two per worker before it turns ready, plus its tier monitor's):" % limit)
        for name, count in sorted(held.items()):
            print("  %-20s %d" % (name, count))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
