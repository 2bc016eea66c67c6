#!/usr/bin/env bash
# tests/load/user_stack_test.sh: tests/load/run as a new user drives it, on a
# stack started by hand (deploy/local up) that somebody has used already.
#
# 1. Seeding: loadseed009 was registered by hand with another password, and
#    the database is not shoal-node seed's data set, so the Conduit mix makes
#    its own users through the API. The mix must run (names unique to the run
#    for the one that is taken), where it used to be skipped with "could not
#    register or log in loadseed009 (401)".
# 2. A user's own workloads by URL: a two-line scenario file (weights, a
#    header from the environment) and a wrk Lua script of its own, with the
#    same table and CSV as the built-in workloads, p99.9, answers per second
#    (timeline.csv) and the charts; the node's counters (admin /metrics) show
#    that the requests reached its routes, in the scenario's proportions.
# 3. Rate limits that refuse every registration and login: the mix is
#    skipped, and the reason names the exact commands that fix the stack.
#
# One node, 1-second runs; about a minute. SHOAL_BIN: the node binary (ctest
# passes it). Ports: SHOAL_LOAD_USER_PORT_BASE (28200: HAProxy, stats +1,
# node +10, its admin port +50), SHOAL_LOAD_USER_PG_PORT (25435),
# SHOAL_LOAD_USER_REDIS_PORT (26382).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LOCAL=$REPO/deploy/local
OUT=$(mktemp -d "${TMPDIR:-/tmp}/shoal-load-user.XXXXXX")
STATE=$OUT/stack
unset DATABASE_URL REDIS_URL SHOAL_NODES SHOAL_RATE_LIMITS
BASE=${SHOAL_LOAD_USER_PORT_BASE:-28200}
export SHOAL_STATE=$STATE SHOAL_NODES=1 SHOAL_LB_PORT=$BASE SHOAL_STATS_PORT=$((BASE + 1)) \
  SHOAL_NODE_BASE_PORT=$((BASE + 10)) SHOAL_ADMIN_BASE_PORT=$((BASE + 50)) \
  SHOAL_PG_PORT=${SHOAL_LOAD_USER_PG_PORT:-25435} SHOAL_REDIS_PORT=${SHOAL_LOAD_USER_REDIS_PORT:-26382} \
  SHOAL_THREADS=2 SHOAL_ACCESS_LOG_SAMPLE=0 SHOAL_DRAIN_DELAY_MS=0
NODE=http://127.0.0.1:$SHOAL_NODE_BASE_PORT
ADMIN=http://127.0.0.1:$SHOAL_ADMIN_BASE_PORT

cleanup() {
  "$LOCAL" down --purge >/dev/null 2>&1 || true
  rm -rf "$OUT"
}
trap cleanup EXIT

fail() { echo "FAIL - $*"; exit 1; }
pass() { echo "ok   - $*"; }

# load NAME ARGS...: tests/load/run against the stack, 1 s per workload,
# output in $OUT/NAME (stdout.txt, stderr.txt and the harness's files).
load() {
  local name=$1; shift
  mkdir -p "$OUT/$name"
  "$REPO/tests/load/run" --stack "$STATE" --peers none --duration 1s --runs 1 --warmup 0 \
    --connections 8 --wrk-threads 2 --seed-users 100 --seed-articles 500 --sessions 10 \
    --out "$OUT/$name" "$@" >"$OUT/$name/stdout.txt" 2>"$OUT/$name/stderr.txt" \
    || { rc=$?; cat "$OUT/$name/stdout.txt"; tail -n 30 "$OUT/$name/stderr.txt"; fail "tests/load/run ($name) exited $rc"; }
}

register() { # USERNAME PASSWORD: as a person would, by hand
  curl -s -o /dev/null -w '%{http_code}' -X POST "$NODE/api/users" -H 'Content-Type: application/json' \
    -d "{\"user\":{\"username\":\"$1\",\"email\":\"$1@load.invalid\",\"password\":\"$2\"}}"
}

start=$SECONDS
# As a user starts it for load tests (docs/performance.md): rate limits off.
SHOAL_RATE_LIMITS= "$LOCAL" up >"$OUT/up.log" 2>&1 || { tail -n 30 "$OUT/up.log"; fail "deploy/local up failed"; }
pass "stack up in $((SECONDS - start)) s"

code=$(register loadseed009 "somebody-elses-password")
[ "$code" = 201 ] || [ "$code" = 200 ] || fail "registering loadseed009 by hand answered $code"
pass "loadseed009 registered by hand, with a password of its own"

# --- 1. the taken name ------------------------------------------------------
load taken --workloads json,conduit
cat "$OUT/taken/stdout.txt"
grep -q "^conduit,shoal," "$OUT/taken/results.csv" \
  || { grep -E '^conduit|seed' "$OUT/taken/stderr.txt" | tail -n 5
       fail "the Conduit mix did not run on a stack with loadseed009 taken: $(grep -E '^conduit' "$OUT/taken/table.txt" || echo 'no row')"; }
pass "the Conduit mix ran although loadseed009 was taken"
grep -Eq "seed: 10 users, 30 articles made through the API; loadseed009 is somebody else's .*so this run uses loadseed-[0-9a-f]+-009 instead" \
  "$OUT/taken/stderr.txt" || { grep seed "$OUT/taken/stderr.txt"; fail "the harness did not say which name it used instead of loadseed009"; }
pass "the harness said that loadseed009 is somebody else's and which name it used instead"
# The mix ran as the users it made: no 401 in its answers.
grep -q 'LOAD_NOTE unauthorized=0 ' "$OUT"/taken/raw/conduit-shoal-run1.txt \
  || fail "the mix got 401s: $(grep LOAD_NOTE "$OUT"/taken/raw/conduit-shoal-run1.txt)"
pass "the mix's sessions were accepted (no 401)"

# --- 2. a user's own workloads: a scenario file and a wrk script, by URL -----
# Two routes, one with a header from the environment; the node's own
# counters (admin /metrics) must show that the requests reached them.
mkdir -p "$OUT/own"
cat >"$OUT/own/two-routes.txt" <<'SCENARIO'
# two routes: /json three times as often as the current user
3 GET /json
1 GET /api/user
    Authorization: Token ${LOAD_TEST_TOKEN}
SCENARIO
cat >"$OUT/own/mine.lua" <<'LUA'
-- a user's wrk script: /plaintext and /json in turn, and a word of its own at the end
local paths = { "/plaintext", "/json" }
local sent = 0
function request()
  sent = sent + 1
  return wrk.format("GET", paths[sent % 2 + 1])
end
function done(summary, latency, requests)
  io.write("mine.lua done: ", summary.requests, " requests\n")
end
LUA
LOAD_TEST_TOKEN=$(awk '$1 == "user" { print $5; exit }' "$OUT/taken/seed-shoal.txt")
[ -n "$LOAD_TEST_TOKEN" ] || fail "no session token in the first run's seed file"
export LOAD_TEST_TOKEN
route_2xx() { # ROUTE: the node's count of 2xx answers on ROUTE
  curl -s "$ADMIN/metrics" | awk -v r="route=\"$1\"" \
    'index($0, "shoal_http_requests_total{") == 1 && index($0, r) && index($0, "status=\"2xx\"") { n += $NF } END { print n + 0 }'
}
json0=$(route_2xx /json); user0=$(route_2xx /api/user); plain0=$(route_2xx /plaintext)
SHOAL_LOAD_SKIP_DEPS=1 "$REPO/tests/load/run" --url "$NODE" --scenario "$OUT/own/two-routes.txt" \
  --wrk-script "$OUT/own/mine.lua" --duration 2s --runs 1 --warmup 0 --connections 8 --wrk-threads 2 \
  --out "$OUT/own" >"$OUT/own/stdout.txt" 2>"$OUT/own/stderr.txt" \
  || { rc=$?; cat "$OUT/own/stdout.txt"; tail -n 30 "$OUT/own/stderr.txt"; fail "tests/load/run --scenario --wrk-script exited $rc"; }
json1=$(route_2xx /json); user1=$(route_2xx /api/user); plain1=$(route_2xx /plaintext)
cat "$OUT/own/stdout.txt"
/usr/bin/python3 - "$OUT/own" $((json1 - json0)) $((user1 - user0)) $((plain1 - plain0)) <<'PY' \
  || fail "the user's workloads did not run as written"
import csv, os, sys
out, json_n, user_n, plain_n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rows = {r["workload"]: r for r in csv.DictReader(open(os.path.join(out, "results.csv")))}
assert set(rows) == {"two-routes", "mine"}, "workloads: %s" % sorted(rows)
runs = {r["workload"]: r for r in csv.DictReader(open(os.path.join(out, "runs.csv")))}
for name, r in rows.items():
    assert r["target"] == "target" and float(r["rps"]) > 0, r
    for k in ("p50_ms", "p90_ms", "p99_ms", "p999_ms"):
        assert float(r[k]) > 0, (name, k, r[k])
    assert float(r["p50_ms"]) <= float(r["p90_ms"]) <= float(r["p99_ms"]) <= float(r["p999_ms"]), r
    assert float(r["errors"]) == 0 and float(r["non2xx"]) == 0, ("answers outside 2xx", name, r)
sent = int(runs["two-routes"]["requests"]) + int(runs["mine"]["requests"])
# Every answer wrk counted, the node counted too; the node may have answered
# a few more that wrk stopped reading (one per connection and run at most).
assert sent <= json_n + user_n + plain_n <= sent + 2 * 8, (sent, json_n, user_n, plain_n)
# mine.lua sends as many /json as /plaintext: the rest of /json is the scenario's.
scenario_json = json_n - plain_n
share = scenario_json / float(scenario_json + user_n)
assert user_n > 0 and 0.6 <= share <= 0.9, "the scenario's /json share %.2f, not about 3 in 4" % share
print("# the node counted %d /json, %d /api/user, %d /plaintext for the %d requests wrk sent; "
      "the scenario's /json share %.2f" % (json_n, user_n, plain_n, sent, share))
per = {}
for r in csv.DictReader(open(os.path.join(out, "timeline.csv"))):
    per.setdefault(r["workload"], []).append((int(r["second"]), int(r["ok"]), int(r["other"])))
for name in ("two-routes", "mine"):
    secs = sorted(per.get(name, []))
    assert [s for s, _, _ in secs][:2] == [0, 1], (name, secs)
    assert all(ok > 0 and other == 0 for _, ok, other in secs[:2]), (name, secs)
    total = sum(ok for _, ok, _ in secs)
    assert total == int(runs[name]["requests"]), (name, total, runs[name]["requests"])
print("# timeline.csv: answers per second of both workloads, summing to wrk's requests")
PY
pass "--scenario and --wrk-script reached the node's routes as weighted; table, CSV, p99.9, timeline"
grep -q "mine.lua done: " "$OUT/own/raw/mine-target-run1.txt" || fail "the user's own done() did not run"
pass "the user's wrk script ran its own done() too"
for f in chart.png latency.png timeline.png; do
  [ "$(head -c 8 "$OUT/own/$f" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || fail "$f is not a PNG"
done
pass "chart.png, latency.png and timeline.png written"
if [ -n "${SHOAL_LOAD_USER_KEEP:-}" ]; then cp -r "$OUT/own" "$SHOAL_LOAD_USER_KEEP"; fi

# --- 3. rate limits that refuse every registration and login ----------------
# node1 again, with limits of one an hour, used up by hand.
"$LOCAL" stop node1 >>"$OUT/up.log" 2>&1 || fail "deploy/local stop node1 failed"
SHOAL_RATE_LIMITS="POST /api/users/login=1/h burst 1,POST /api/users=1/h burst 1" \
  "$LOCAL" start node1 >>"$OUT/up.log" 2>&1 || { tail -n 20 "$OUT/up.log"; fail "deploy/local start node1 failed"; }
register byhand "a-password" >/dev/null
code=$(register byhand2 "a-password")
[ "$code" = 429 ] || fail "the registration limit did not answer 429 (got $code)"
curl -s -o /dev/null -X POST "$NODE/api/users/login" -H 'Content-Type: application/json' \
  -d '{"user":{"email":"byhand@load.invalid","password":"a-password"}}'
pass "node1 restarted with limits of one registration and one login an hour, both used"
load limited --workloads json,conduit
grep -q "^json,shoal," "$OUT/limited/results.csv" || fail "json was not measured beside the skipped mix"
row=$(grep -E '^conduit +shoal +skipped:' "$OUT/limited/table.txt") \
  || fail "the mix was not skipped: $(grep -E '^conduit' "$OUT/limited/table.txt" || echo 'no row')"
echo "$row"
for want in "answered 429" "SHOAL_STATE=$STATE $LOCAL down && SHOAL_STATE=$STATE SHOAL_RATE_LIMITS= $LOCAL up" \
    "SHOAL_STATE=$STATE $LOCAL seed --reset --users 100 --articles 500"; do
  case $row in *"$want"*) ;; *) fail "the reason does not say: $want" ;; esac
done
pass "skipped, and the reason gives the exact commands (rate limits off, or seed --reset)"

"$LOCAL" down >/dev/null 2>&1 || fail "deploy/local down failed"
pass "done in $((SECONDS - start)) s"
