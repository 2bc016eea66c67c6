#!/usr/bin/env bash
# tests/load/user_stack_test.sh: tests/load/run as a new user drives it, on a
# stack started by hand (deploy/local up) that somebody has used already.
#
# 1. Seeding: loadseed009 was registered by hand with another password, and
#    the database is not shoal-node seed's data set, so the Conduit mix makes
#    its own users through the API. The mix must run (names unique to the run
#    for the one that is taken), where it used to be skipped with "could not
#    register or log in loadseed009 (401)".
# 2. Rate limits that refuse every registration and login: the mix is
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
    || { cat "$OUT/$name/stdout.txt"; tail -n 30 "$OUT/$name/stderr.txt"; fail "tests/load/run ($name) exited $?"; }
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

# --- 2. rate limits that refuse every registration and login ----------------
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
