#!/usr/bin/python3
"""tests/load/scenario_test.py: the scenario files of tests/load/run
--scenario (tests/load/scenario.py), without a stack: what a file may say,
the errors that name the line, and the Lua it compiles to. Under a second;
the scenario's requests reaching a node are load.user_stack_test's."""
import contextlib
import io
import os
import re
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import scenario  # noqa: E402


class ScenarioTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)

    def write(self, name, text, mode="w"):
        path = os.path.join(self.dir.name, name)
        with open(path, mode) as f:
            f.write(text)
        return path

    def test_requests_headers_bodies_variables(self):
        self.write("comment.json", '{"comment":{"body":"hi \\"there\\""}}\n')
        path = self.write("shop.txt", "# a comment\n\n"
                          "70 GET /articles?limit=20&offset=0\n"
                          "30 POST /articles/a-b/comments @comment.json\n"
                          "    Authorization: Token ${TOKEN}\n"
                          "\tX-Trace:  on  \n")
        reqs = scenario.parse(path, {"TOKEN": "abc.def"})
        self.assertEqual([(r["weight"], r["method"], r["path"]) for r in reqs],
                         [(70, "GET", "/articles?limit=20&offset=0"), (30, "POST", "/articles/a-b/comments")])
        self.assertEqual(reqs[0]["headers"], {})
        self.assertIsNone(reqs[0]["body"])
        self.assertEqual(reqs[1]["headers"], {"Authorization": "Token abc.def", "X-Trace": "on",
                                              "Content-Type": "application/json"})
        self.assertEqual(reqs[1]["body"], b'{"comment":{"body":"hi \\"there\\""}}\n')
        self.assertEqual(scenario.name_of(path), "shop")

    def test_named_content_type_is_kept(self):
        self.write("b.json", "{}")
        path = self.write("s.txt", "1 PUT /x @b.json\n  content-type: application/merge-patch+json\n")
        self.assertEqual(scenario.parse(path, {})[0]["headers"],
                         {"content-type": "application/merge-patch+json"})

    def test_errors_name_the_line(self):
        cases = [("1 GET /a\n0 GET /b\n", ":2: the weight '0'"),
                 ("x GET /a\n", ":1: the weight 'x'"),
                 ("1 get /a\n", ":1: the method 'get'"),
                 ("1 GET a\n", ":1: the path 'a' does not start"),
                 ("1 GET /a b\n", ":1: the fourth word names a body file"),
                 ("1 GET /a @missing.json\n", ":1: the body file"),
                 ("1 GET /a b c d\n", ":1: expected 'WEIGHT METHOD PATH"),
                 ("  Accept: x\n1 GET /a\n", ":1: a header line (indented) before any request"),
                 ("1 GET /a\n  not a header\n", ":2: an indented line is a header"),
                 ("1 GET /a\n  X: ${UNSET_FOR_THIS_TEST}\n", ":2: ${UNSET_FOR_THIS_TEST} is not set"),
                 ("# nothing\n\n", "no requests")]
        for text, message in cases:
            path = self.write("bad.txt", text)
            with self.assertRaises(scenario.ScenarioError, msg=text) as caught:
                scenario.parse(path, {})
            self.assertIn(message, str(caught.exception), text)

    def test_compiled_lua_escapes_every_odd_byte(self):
        self.write("b.bin", b'a"b\\c\nd\x00\xff]]', mode="wb")
        path = self.write("s.txt", "2 POST /p?q=\"1\" @b.bin\n  X-A: \"quoted\" \\ back\n1 GET /\n")
        lua = scenario.compile_lua(scenario.parse(path, {}), "/v1/")
        # Only printable ASCII in the file, quotes and backslashes only as
        # string delimiters and escapes: each string is one "..." run.
        self.assertTrue(all(32 <= ord(c) < 127 or c == "\n" for c in lua))
        strings = re.findall(r'"((?:[^"\\]|\\[0-9]{3})*)"', lua)
        self.assertIn("/v1/p?q=\\034" + "1\\034", strings)
        self.assertIn("/v1/", strings)

        def unescape(s):
            return re.sub(rb"\\([0-9]{3})", lambda m: bytes([int(m.group(1))]), s.encode())
        self.assertIn(b'a"b\\c\nd\x00\xff]]', [unescape(s) for s in strings])
        self.assertIn(b'"quoted" \\ back', [unescape(s) for s in strings])
        self.assertIn("weight = 2", lua)
        self.assertIn("body = nil", lua)


class ArgumentsTest(unittest.TestCase):
    def test_own_workloads_replace_the_built_in_ones(self):
        with tempfile.TemporaryDirectory() as d:
            s = os.path.join(d, "shop.txt")
            w = os.path.join(d, "mine.lua")
            open(s, "w").write("1 GET /\n")
            open(w, "w").write("-- nothing\n")
            a = harness.parse_args(["--url", "http://127.0.0.1:1", "--scenario", s, "--wrk-script", w,
                                    "--out", d])
            self.assertEqual(a.workloads, ["shop", "mine"])
            self.assertEqual(a.user_workloads["shop"]["kind"], "scenario")
            self.assertEqual(a.user_workloads["mine"]["kind"], "script")
            a = harness.parse_args(["--workloads", "json", "--scenario", s, "--out", d])
            self.assertEqual(a.workloads, ["json", "shop"])
            self.assertIn("nginx", a.peers)
            a = harness.parse_args(["--scenario", s, "--out", d])
            self.assertFalse(a.peers & {"flask", "nginx"})  # they serve none of it

    def test_rejects(self):
        with tempfile.TemporaryDirectory() as d:
            taken = os.path.join(d, "json.txt")
            open(taken, "w").write("1 GET /\n")
            bad = os.path.join(d, "bad.txt")
            open(bad, "w").write("1 GET nope\n")
            for argv in (["--scenario", taken], ["--scenario", bad], ["--wrk-script", os.path.join(d, "no.lua")]):
                with self.assertRaises(SystemExit), contextlib.redirect_stderr(io.StringIO()):
                    harness.parse_args(argv + ["--out", d])


class TimelineTest(unittest.TestCase):
    def test_parse(self):
        self.assertEqual(harness.parse_timeline("x\nLOAD_TIMELINE 0:10:1 1:12:0\n"), [(0, 10, 1), (1, 12, 0)])
        self.assertEqual(harness.parse_timeline("LOAD_TIMELINE \n"), [])
        self.assertIsNone(harness.parse_timeline("LOAD_RESULT requests=1\n"))


if __name__ == "__main__":
    unittest.main(verbosity=1)
