#!/usr/bin/python3
"""tests/load/harness_test.py: the harness's figures from its runs, without a
stack: the medians, the ratios to the peers (of the medians, and round by
round), and the table that prints them. Under a second."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def row(workload, target, run, rps):
    r = {"workload": workload, "target": target, "run": run, "connections": 64, "rps": rps,
         "p50_ms": 1.0, "p90_ms": 2.0, "p99_ms": 3.0, "p999_ms": 4.0, "errors": 0, "non2xx": None}
    for g in harness.CPU_GROUPS:
        r["cpu_" + g] = None
    return r


# Three rounds of /json, in the harness's order: each round runs every target once.
ROWS = [row("json", "shoal", 1, 90.0), row("json", "nginx", 1, 100.0), row("json", "ulfius", 1, 60.0),
        row("json", "shoal", 2, 80.0), row("json", "nginx", 2, 100.0), row("json", "ulfius", 2, 80.0),
        row("json", "shoal", 3, 120.0), row("json", "nginx", 3, 125.0), row("json", "ulfius", 3, 100.0)]


class RatioTest(unittest.TestCase):
    def test_ratio_of_medians(self):
        by = {(m["workload"], m["target"]): m for m in harness.Harness.medians(_Rows(ROWS))}
        shoal = by[("json", "shoal")]
        self.assertEqual(shoal["rps"], 90.0)
        self.assertAlmostEqual(shoal["vs_nginx"], 90.0 / 100.0)
        self.assertAlmostEqual(shoal["vs_ulfius"], 90.0 / 80.0)
        self.assertIsNone(shoal["vs_flask"])
        self.assertIsNone(by[("json", "nginx")]["vs_nginx"])

    def test_round_by_round_pairs_runs_of_the_same_round(self):
        got = {(w, t, p): rs for w, t, p, rs in harness.round_ratios(ROWS)}
        self.assertEqual(sorted(got), [("json", "shoal", "nginx"), ("json", "shoal", "ulfius")])
        for want, have in zip([0.9, 0.8, 0.96], got[("json", "shoal", "nginx")]):
            self.assertAlmostEqual(want, have)
        for want, have in zip([1.5, 1.0, 1.2], got[("json", "shoal", "ulfius")]):
            self.assertAlmostEqual(want, have)

    def test_a_round_the_peer_missed_is_left_out(self):
        rows = [r for r in ROWS if (r["target"], r["run"]) != ("nginx", 2)]
        got = {p: rs for _, _, p, rs in harness.round_ratios(rows)}
        self.assertEqual(len(got["nginx"]), 2)
        self.assertAlmostEqual(got["nginx"][1], 0.96)
        failed = [dict(r, rps=None) if (r["target"], r["run"]) == ("shoal", 1) else r for r in ROWS]
        self.assertEqual([len(rs) for _, _, _, rs in harness.round_ratios(failed)], [2, 2])

    def test_table_prints_the_rounds_under_the_medians(self):
        text = harness.table(harness.Harness.medians(_Rows(ROWS)), [], ["header"], harness.round_ratios(ROWS))
        lines = text.splitlines()
        shoal = next(line for line in lines if line.startswith("json") and " shoal " in line)
        self.assertIn("0.90x", shoal)
        self.assertIn("1.12x", shoal)
        rounds = lines[lines.index(next(line for line in lines if line.startswith("shoal's ratio round"))) + 1:]
        self.assertEqual(len(rounds), 2)
        self.assertRegex(rounds[0], r"^json +shoal +xnginx +0\.90x 0\.80x 0\.96x +\(median 0\.90x, from 0\.80x to 0\.96x\)$")
        self.assertRegex(rounds[1], r"^json +shoal +xulfius +1\.50x 1\.00x 1\.20x +\(median 1\.20x, from 1\.00x to 1\.50x\)$")

    def test_one_run_prints_no_rounds(self):
        one = [r for r in ROWS if r["run"] == 1]
        text = harness.table(harness.Harness.medians(_Rows(one)), [], ["header"], harness.round_ratios(one))
        self.assertNotIn("round by round", text)


class _Rows:
    """What Harness.medians reads of the harness: its rows."""
    def __init__(self, rows):
        self.rows = rows


if __name__ == "__main__":
    unittest.main()
