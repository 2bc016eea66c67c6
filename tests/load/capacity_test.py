#!/usr/bin/python3
"""tests/load/capacity.py's arithmetic on a scale.csv written here (no stack)."""
import csv
import io
import os
import sys
import tempfile
import unittest
from contextlib import redirect_stdout

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import capacity  # noqa: E402

FIELDS = ["workload", "nodes", "run", "ok_rps", "cores_node", "cores_lb", "cores_redis",
          "cores_postgres", "cores_client"]


def write_csv(folder, rows):
    with open(os.path.join(folder, "scale.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        for r in rows:
            w.writerow(dict(zip(FIELDS, r)))


class CapacityTest(unittest.TestCase):
    def setUp(self):
        self.folder = tempfile.mkdtemp()
        write_csv(self.folder, [
            # article: 1000/s on 0.1 node cores = 100 us; N=2 runs 2x as
            # fast at the same cost. The slow run 1 of N=1 is not the median.
            ("article", 1, 1, 500, 0.1, 0.05, 0.02, 0.0, 0.01),
            ("article", 1, 2, 1000, 0.1, 0.05, 0.02, 0.0001, 0.01),
            ("article", 1, 3, 1100, 0.11, 0.055, 0.022, 0.0, 0.011),
            ("article", 2, 1, 2000, 0.2, 0.1, 0.04, 0.0, 0.02),
            # list: PostgreSQL costs 800 us against the node's 100.
            ("list", 1, 1, 1000, 0.1, 0.05, 0.01, 0.8, 0.01),
            ("list", 2, 1, 1000, 0.1, 0.05, 0.01, 0.8, 0.01),
            # a failed point (no answers) is left out, not divided by.
            ("list", 3, 1, 0, 0.1, 0.05, 0.01, 0.8, 0.01),
        ])
        self.costs = capacity.costs_by_workload(capacity.read_points(os.path.join(self.folder, "scale.csv")))

    def test_cost_is_cores_over_rate_at_the_median_run(self):
        self.assertAlmostEqual(self.costs["article"]["node"][0], 100.0)
        self.assertAlmostEqual(self.costs["article"]["redis"][0], 20.0)
        self.assertAlmostEqual(self.costs["list"]["postgres"][0], 800.0)
        self.assertEqual(set(self.costs), {"article", "list"})

    def test_feeds_counts_nodes_per_shared_core(self):
        f = capacity.feeds(self.costs["list"], node_cpus=1.0)
        self.assertAlmostEqual(f["node_rate"], 10000.0)
        rate, nodes = f["postgres"]
        self.assertAlmostEqual(rate, 1250.0)
        self.assertAlmostEqual(nodes, 0.125)
        # Half a CPU per node: twice the nodes per PostgreSQL core.
        self.assertAlmostEqual(capacity.feeds(self.costs["list"], node_cpus=0.5)["postgres"][1], 0.25)
        # A tier doing (almost) nothing feeds no finite number of nodes.
        self.assertIsNone(capacity.feeds(self.costs["article"], 1.0)["postgres"])

    def test_mix_weights_costs(self):
        mix = capacity.parse_mix("article=3,list=1", self.costs)
        self.assertEqual(mix, {"article": 0.75, "list": 0.25})
        cost = capacity.mix_cost(self.costs, mix)
        self.assertAlmostEqual(cost["postgres"][0], 0.75 * 0.05 + 0.25 * 800.0, places=3)
        self.assertAlmostEqual(cost["node"][0], 100.0)
        for bad in ("nosuch=1", "article=x", "article=-1", "article=0"):
            with self.assertRaises(ValueError, msg=bad):
                capacity.parse_mix(bad, self.costs)

    def test_connection_budget_matches_deploy_local(self):
        # docker-compose.yml: 11 nodes x (3 x 4 + 2) + 20 <= 180.
        self.assertEqual(capacity.connection_budget(180, 4), (14, 11))
        self.assertEqual(capacity.connection_budget(100, 4), (14, 5))
        self.assertEqual(capacity.connection_budget(10, 4), (14, 0))
        self.assertEqual(capacity.connection_budget(180, 8), (26, 6))

    def test_main_prints_every_workload_and_the_budget(self):
        out = io.StringIO()
        with redirect_stdout(out):
            capacity.main(["--results", self.folder, "--mix", "article=1,list=1"])
        text = out.getvalue()
        self.assertIn("article: CPU per answer", text)
        self.assertIn("list: CPU per answer", text)
        self.assertIn("PostgreSQL one core answers 1250/s: feeds 0.12 such nodes", text)
        self.assertIn("11 nodes fit under max_connections 180", text)


if __name__ == "__main__":
    unittest.main()
