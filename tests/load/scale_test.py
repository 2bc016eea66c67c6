#!/usr/bin/python3
"""tests/load/scale_test.py: the parts of tests/load/scale that need no stack:
the Universal Scalability Law fit, the node quota it chooses, its arguments.
Under a second; the experiment itself is run by hand (docs/scaling.md)."""
import contextlib
import io
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scale  # noqa: E402


class FitTest(unittest.TestCase):
    def test_recovers_known_parameters(self):
        for lam, sigma, kappa in ((1000, 0.0, 0.0), (2500, 0.05, 0.01), (800, 0.3, 0.0),
                                  (5000, 0.02, 0.08)):
            pts = [(n, scale.usl(n, lam, sigma, kappa)) for n in (1, 2, 3, 4)]
            fit = scale.fit_usl(pts)
            self.assertAlmostEqual(fit[0], lam, delta=lam * 0.002)
            self.assertAlmostEqual(fit[1], sigma, delta=0.002)
            self.assertAlmostEqual(fit[2], kappa, delta=0.002)
            self.assertLess(fit[3], lam * 0.001)

    def test_coefficients_never_negative(self):
        # Superlinear points would fit negative sigma; the law's sigma and
        # kappa are costs, so the fit stops at 0.
        fit = scale.fit_usl([(1, 1000), (2, 2100), (3, 3300), (4, 4500)])
        self.assertGreaterEqual(fit[1], 0.0)
        self.assertGreaterEqual(fit[2], 0.0)

    def test_too_few_points(self):
        self.assertIsNone(scale.fit_usl([(1, 1000), (2, 1900)]))
        self.assertIsNone(scale.fit_usl([(1, 1000), (2, 0), (3, None)]))


class ArgumentsTest(unittest.TestCase):
    def test_auto_quota_is_a_quarter_of_the_machine_at_the_largest_n(self):
        a = scale.parse_args(["--nodes", "4,1,2", "--out", "/nonexistent"])
        self.assertEqual(a.nodes, [1, 2, 4])
        cap = (os.cpu_count() or 1) / 4.0 / 4
        compose = scale.compose_cpus()
        self.assertEqual(compose, 1.0)  # docker-compose.yml's node service
        self.assertAlmostEqual(a.node_cpus, min(compose, cap))
        self.assertEqual(a.quota_us, int(round(a.node_cpus * 100000)))

    def test_explicit_quota(self):
        a = scale.parse_args(["--node-cpus", "0.2", "--cfs-period-us", "20000", "--out", "/x"])
        self.assertEqual(a.quota_us, 4000)

    def test_rejects(self):
        for argv in (["--nodes", "0"], ["--nodes", "a"], ["--workloads", "json"],
                     ["--node-cpus", "0.001"], ["--binary", "/nonexistent/service"],
                     ["--binary", __file__ + ".nope"], ["--scenario", "/nonexistent.txt"],
                     ["--wrk-script", "/nonexistent.lua"]):
            with self.assertRaises(SystemExit), contextlib.redirect_stderr(io.StringIO()):
                scale.parse_args(argv + ["--out", "/x"])

    def test_a_users_service_and_scenario(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "shop.txt")
            with open(path, "w") as f:
                f.write("3 GET /items\n1 POST /items @item.json\n")
            with open(os.path.join(d, "item.json"), "w") as f:
                f.write("{}")
            a = scale.parse_args(["--binary", "/bin/true", "--scenario", path, "--out", d])
            self.assertEqual(a.binary, "/bin/true")
            self.assertEqual(a.workloads, ["shop"])  # the Conduit ones only when asked
            self.assertIn("GET /items 75%, POST /items 25%", a.kinds["shop"][0])
            cmd, env = scale.wrk_command(a, "http://127.0.0.1:1", "shop", None, None)
            self.assertEqual(cmd[-3:], ["-s", os.path.join(scale.harness.LUA, "scenario.lua"),
                                        "http://127.0.0.1:1"])
            with open(env["LOAD_SCENARIO"]) as f:
                lua = f.read()
            self.assertIn('path = "/items", headers = { "Content-Type" = ', lua.replace("[", "").replace("]", ""))
            a = scale.parse_args(["--workloads", "db", "--scenario", path, "--out", d])
            self.assertEqual(a.workloads, ["db", "shop"])
            self.assertIsNone(a.binary)


if __name__ == "__main__":
    unittest.main(verbosity=1)
