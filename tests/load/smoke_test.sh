#!/usr/bin/env bash
# tests/load/smoke_test.sh: the load-test harness, bounded, so that it cannot
# rot. Runs tests/load/run for 1 s per workload on /json and /plaintext
# against a private stack it starts (one node), with the nginx and Flask
# peers and the pgbench and redis-benchmark ceilings, and checks that the
# table, the CSV files and the PNG chart are written and that the figures
# parse. About 30 s.
#
# SHOAL_BIN: the node binary (ctest passes it); without it deploy/local builds.
# Ports (override when taken): SHOAL_LOAD_SMOKE_PORT_BASE (28100: HAProxy,
# stats +1, nginx +2, Flask +3, node +10), SHOAL_LOAD_SMOKE_PG_PORT (25434),
# SHOAL_LOAD_SMOKE_REDIS_PORT (26381).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=$(mktemp -d "${TMPDIR:-/tmp}/shoal-load-smoke.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
unset DATABASE_URL REDIS_URL SHOAL_STATE SHOAL_NODES

fail() { echo "FAIL - $*"; exit 1; }
pass() { echo "ok   - $*"; }

start=$SECONDS
"$REPO/tests/load/run" --duration 1s --runs 1 --warmup 0 --workloads json,plaintext \
  --connections 16 --plaintext-connections 32 --pgbench-scale 1 \
  --port-base "${SHOAL_LOAD_SMOKE_PORT_BASE:-28100}" \
  --pg-port "${SHOAL_LOAD_SMOKE_PG_PORT:-25434}" \
  --redis-port "${SHOAL_LOAD_SMOKE_REDIS_PORT:-26381}" \
  --out "$OUT" >"$OUT/stdout.txt" 2>"$OUT/stderr.txt" \
  || { cat "$OUT/stdout.txt"; tail -n 30 "$OUT/stderr.txt"; fail "tests/load/run exited $?"; }
cat "$OUT/stdout.txt"
echo "# harness took $((SECONDS - start)) s"

for f in table.txt results.csv runs.csv chart.png; do
  [ -s "$OUT/$f" ] || fail "$f was not written"
done
pass "table.txt, results.csv, runs.csv and chart.png written"
[ "$(head -c 8 "$OUT/chart.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] \
  || fail "chart.png is not a PNG"
pass "chart.png is a PNG"
grep -q 'access log OFF' "$OUT/table.txt" || fail "the table does not say that the access log is off"
pass "the table says the access log is off"
grep -q 'rate limits OFF' "$OUT/table.txt" || fail "the table does not say that rate limits are off"
pass "the table says rate limits are off"

# Every median row: a positive rate and numbers (or empty) in the figures.
/usr/bin/python3 - "$OUT/results.csv" <<'PY' || fail "results.csv does not parse"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
def num(v):
    return None if v == "" else float(v)
seen = {}
for r in rows:
    assert num(r["rps"]) and num(r["rps"]) > 0, r
    for k, v in r.items():
        if k not in ("workload", "target"):
            num(v)
    seen[(r["workload"], r["target"])] = r
need = [("json", "nginx"), ("plaintext", "nginx"), ("json", "flask"), ("plaintext", "flask"),
        ("selects", "pgbench"), ("GET", "redis-get"), ("SET", "redis-set")]
missing = [k for k in need if k not in seen]
assert not missing, "missing rows: %s" % missing
for k in need[:4]:
    assert num(seen[k]["p99_ms"]) is not None and num(seen[k]["cpu_peer"]) is not None, k
    assert num(seen[k]["errors"]) == 0, k
print("# %d median rows parse" % len(rows))
PY
pass "results.csv parses: every row has a rate; the peers' rows have latency, CPU and no errors"

# shoal's own rows: present once the node serves /json and /plaintext; until
# then the table must say why they were skipped.
for w in json plaintext; do
  if grep -q "^$w,shoal," "$OUT/results.csv"; then
    pass "shoal $w measured"
  elif grep -Eq "^$w +shoal +skipped: " "$OUT/table.txt"; then
    pass "shoal $w skipped with a reason: $(grep -E "^$w +shoal +skipped" "$OUT/table.txt" | sed 's/.*skipped: //')"
  else
    fail "shoal $w neither measured nor skipped"
  fi
done
[ $((SECONDS - start)) -lt 60 ] || fail "the smoke test took $((SECONDS - start)) s (limit 60)"
pass "done in $((SECONDS - start)) s"
