#!/usr/bin/env bash
# tests/load/smoke_test.sh: the load-test harness, bounded, so that it cannot
# rot. Runs tests/load/run for 1 s per workload on /json, /plaintext and
# /db against a private stack it starts (one node), with the nginx, Flask and
# ulfius peers and the pgbench and redis-benchmark ceilings, and checks that
# the table, the CSV files and the PNG chart are written and that the figures
# parse. About 35 s.
#
# SHOAL_BIN: the node binary (ctest passes it); without it deploy/local builds.
# SHOAL_ULFIUS_BIN: the ulfius peer (ctest passes it where libulfius-dev is
# installed): its rows are then required; without it, the table's line that
# says why it was skipped.
# Ports (override when taken): SHOAL_LOAD_SMOKE_PORT_BASE (28100: HAProxy,
# stats +1, nginx +2, Flask +3, node +10, its admin port +50), SHOAL_LOAD_SMOKE_PG_PORT (25434),
# SHOAL_LOAD_SMOKE_REDIS_PORT (26381).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=$(mktemp -d "${TMPDIR:-/tmp}/shoal-load-smoke.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
unset DATABASE_URL REDIS_URL SHOAL_STATE SHOAL_NODES

fail() { echo "FAIL - $*"; exit 1; }
pass() { echo "ok   - $*"; }

start=$SECONDS
"$REPO/tests/load/run" --duration 1s --runs 1 --warmup 0 --workloads json,plaintext,db,conduit \
  --connections 16 --plaintext-connections 32 --pgbench-scale 1 \
  --seed-users 100 --seed-articles 500 --sessions 8 \
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
/usr/bin/python3 - "$OUT/results.csv" "${SHOAL_ULFIUS_BIN:-}" <<'PY' || fail "results.csv does not parse"
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
peers = [("json", "nginx"), ("plaintext", "nginx"), ("json", "flask"), ("plaintext", "flask"), ("db", "flask")]
if sys.argv[2]:
    peers += [("json", "ulfius"), ("plaintext", "ulfius"), ("db", "ulfius")]
need = peers + [("selects", "pgbench"), ("GET", "redis-get"), ("SET", "redis-set")]
missing = [k for k in need if k not in seen]
assert not missing, "missing rows: %s" % missing
for k in peers:
    assert num(seen[k]["p99_ms"]) is not None and num(seen[k]["cpu_peer"]) is not None, k
    assert num(seen[k]["errors"]) == 0, k
if sys.argv[2]:
    # The ulfius peer's /db reads PostgreSQL: its CPU is counted there too;
    # and each shoal row has its ratio to the peer.
    assert num(seen[("db", "ulfius")]["cpu_postgres"]) > 0, seen[("db", "ulfius")]
    for w in ("json", "plaintext", "db"):
        assert num(seen[(w, "shoal")]["vs_ulfius"]) > 0, (w, seen[(w, "shoal")])
print("# %d median rows parse" % len(rows))
PY
pass "results.csv parses: every row has a rate; the peers' rows have latency, CPU and no errors"
if [ -n "${SHOAL_ULFIUS_BIN:-}" ]; then
  grep -Eq '^db +ulfius ' "$OUT/table.txt" || fail "the table has no ulfius row for db"
  pass "ulfius measured on json, plaintext and db beside the node, with the ratio xulfius"
else
  grep -Eq '^json +ulfius +skipped: ' "$OUT/table.txt" \
    || fail "no ulfius peer, and the table does not say why: $(grep -E '^json' "$OUT/table.txt" || true)"
  pass "no ulfius peer here (libulfius-dev missing): the table says why"
fi

# shoal's own rows: the node serves /json and /plaintext, so a skipped row
# (the table says why) is a failure here.
for w in json plaintext db; do
  grep -q "^$w,shoal," "$OUT/results.csv" \
    || fail "shoal $w not measured: $(grep -E "^$w +shoal" "$OUT/table.txt" || echo 'no row')"
  pass "shoal $w measured"
done
# The Conduit mix: the stack was seeded by shoal-node seed; the mix ran
# against that data set, or the node has no article routes yet and the
# table says so.
grep -q 'seed: created 100 users, 40 tags, 500 articles' "$OUT/stderr.txt" \
  || { tail -n 20 "$OUT/stderr.txt"; fail "the harness did not seed the stack with shoal-node seed"; }
pass "the harness seeded its stack (100 users, 500 articles)"
if grep -q "^conduit,shoal," "$OUT/results.csv"; then
  grep -q 'seed: 100 seeded users (8 with sessions)' "$OUT/stderr.txt" \
    || fail "the mix did not run as the seeded users"
  pass "conduit measured as 8 of the 100 seeded users"
else
  grep -Eq '^conduit +shoal +skipped: no Conduit API yet' "$OUT/table.txt" \
    || fail "conduit neither measured nor skipped for a missing API: $(grep -E '^conduit' "$OUT/table.txt" || echo 'no row')"
  pass "conduit skipped: the node has no article routes yet"
fi
# No limit of its own on the wall time (a busy machine stretches it): ctest's
# TIMEOUT bounds the run.
pass "done in $((SECONDS - start)) s"
