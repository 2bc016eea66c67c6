#!/usr/bin/env bash
# tests/e2e/two_nodes_test.sh: the local stack (deploy/local) with two nodes,
# through HAProxy, on private ports and in a private state folder.
#
# Checks readiness and its body, X-Request-ID handling, that HAProxy hides a
# node killed with SIGKILL (retries, then health checks) and takes it back
# once restarted, the 413 for an 8 MiB body, that Redis and PostgreSQL
# outages leave the nodes ready and are reported, that a second `up` changes
# nothing, that pg_stat_statements counts the statements of a TechEmpower
# route, and that `down` leaves nothing behind.
#
# SHOAL_BIN: the node binary (ctest passes it); without it deploy/local builds.
# Ports (override when these are taken): SHOAL_E2E_LB_PORT (18080),
# SHOAL_E2E_STATS_PORT (18404), SHOAL_E2E_NODE_BASE_PORT (18081, 18082),
# SHOAL_E2E_PG_PORT (15433), SHOAL_E2E_REDIS_PORT (16380).
# SHOAL_E2E_KEEP=1 keeps the state folder (logs) after a failure.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LOCAL=$REPO/deploy/local

# Only this test's settings reach deploy/local, whatever the caller's shell
# holds (for example after `eval "$(deploy/local env)"`).
unset SHOAL_NODES DATABASE_URL REDIS_URL
export SHOAL_LB_PORT=${SHOAL_E2E_LB_PORT:-18080}
export SHOAL_STATS_PORT=${SHOAL_E2E_STATS_PORT:-18404}
export SHOAL_NODE_BASE_PORT=${SHOAL_E2E_NODE_BASE_PORT:-18081}
export SHOAL_PG_PORT=${SHOAL_E2E_PG_PORT:-15433}
export SHOAL_REDIS_PORT=${SHOAL_E2E_REDIS_PORT:-16380}
SHOAL_STATE=$(mktemp -d "${TMPDIR:-/tmp}/shoal-e2e.XXXXXX")
export SHOAL_STATE
NODE1_PORT=$SHOAL_NODE_BASE_PORT
NODE2_PORT=$((SHOAL_NODE_BASE_PORT + 1))
PORTS=("$SHOAL_LB_PORT" "$SHOAL_STATS_PORT" "$NODE1_PORT" "$NODE2_PORT" "$SHOAL_PG_PORT" "$SHOAL_REDIS_PORT")
LB=http://127.0.0.1:$SHOAL_LB_PORT
STATS=http://127.0.0.1:$SHOAL_STATS_PORT
PIDS=$SHOAL_STATE/pids

START=$SECONDS
step() { echo "# [$((SECONDS - START))s] $*"; }
pass() { echo "ok   - $*"; }
fail() {
  echo "FAIL - $*"
  exit 1
}

DOWN_DONE=0
BODY=$(mktemp)
cleanup() {
  local rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "# failed; the last lines of each log:"
    for f in "$SHOAL_STATE"/logs/*.log; do
      [ -f "$f" ] || continue
      echo "## $f"
      tail -n 15 "$f" | cut -c1-300
    done
  fi
  if [ "$DOWN_DONE" = 0 ]; then "$LOCAL" down >/dev/null 2>&1 || echo "# deploy/local down failed"; fi
  rm -f "$BODY"
  if [ "$rc" -ne 0 ] && [ "${SHOAL_E2E_KEEP:-0}" = 1 ]; then
    echo "# state kept in $SHOAL_STATE"
  else
    # --purge: PostgreSQL's folder too, outside the state folder as root.
    "$LOCAL" down --purge >/dev/null 2>&1 || echo "# deploy/local down --purge failed"
    rm -rf "$SHOAL_STATE"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

listening() { timeout 1 bash -c ": </dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# A zombie (exited, not yet reaped by init) is not alive.
pid_alive() { kill -0 "$1" 2>/dev/null && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }

# get URL [curl args...]: the status code; the body lands in $BODY.
get() {
  local url=$1; shift
  curl -s -o "$BODY" -w '%{http_code}' --max-time 10 "$@" "$url" || true
}

# The status of a server of backend "nodes" on HAProxy's stats CSV (field 18).
lb_status() {
  curl -s --max-time 2 "$STATS/stats;csv" | awk -F, -v s="$1" '$1 == "nodes" && $2 == s { print $18 }'
}

# wait_for SECONDS DESCRIPTION COMMAND...: poll until COMMAND succeeds.
wait_for() {
  local secs=$1 what=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || fail "$what (waited ${secs} s)"
    sleep 0.2
  done
  pass "$what"
}

for port in "${PORTS[@]}"; do
  if listening "$port"; then
    fail "port $port is already in use; set the SHOAL_E2E_*_PORT variables"
  fi
done

# ------------------------------------------------------------ up
step "deploy/local up --nodes 2 (state $SHOAL_STATE)"
"$LOCAL" up --nodes 2 || fail "deploy/local up --nodes 2"
pass "deploy/local up --nodes 2"
for name in postgres redis node1 node2 lb; do
  if ! { [ -s "$PIDS/$name.pid" ] && pid_alive "$(cat "$PIDS/$name.pid")"; }; then
    fail "$name has a live PID in $PIDS/$name.pid"
  fi
done
pass "every service has a live PID in its pid file"
"$LOCAL" status

# ------------------------------------------------------------ up again
step "deploy/local up --nodes 2, again"
before=$(cat "$PIDS"/*.pid | sort | tr '\n' ' ')
"$LOCAL" up --nodes 2 >/dev/null || fail "a second deploy/local up"
after=$(cat "$PIDS"/*.pid | sort | tr '\n' ' ')
[ "$before" = "$after" ] || fail "a second up restarted something ($before -> $after)"
pass "a second up is safe and changes nothing"

# ------------------------------------------------------------ readiness
step "readiness through HAProxy"
code=$(get "$LB/readyz")
[ "$code" = 200 ] || fail "GET /readyz through HAProxy is $code, not 200: $(cat "$BODY")"
pass "GET /readyz through HAProxy is 200"
if ! { grep -qE '"postgres" *: *"up"' "$BODY" && grep -qE '"redis" *: *"up"' "$BODY"; }; then
  fail "/readyz body reports postgres and redis up: $(cat "$BODY")"
fi
pass "/readyz body reports postgres and redis up: $(cat "$BODY")"

# ------------------------------------------------------------ TechEmpower, counted
# deploy/local preloads pg_stat_statements and creates it in the shoal
# database (a superuser's job, so the launcher does it, not a migration),
# which is how the TechEmpower verifier counts statements.
step "TechEmpower routes through HAProxy, counted by pg_stat_statements"
admin_sql() {
  "$LOCAL" psql -q -At -v ON_ERROR_STOP=1 -c "$1"
}
world_selects() {
  admin_sql "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements
             WHERE query = 'SELECT id, randomnumber FROM world WHERE id = \$1'"
}
before=$(world_selects) || fail "pg_stat_statements is queryable in the stack's shoal database"
code=$(get "$LB/queries?queries=20")
[ "$code" = 200 ] || fail "GET /queries?queries=20 through HAProxy is $code: $(cat "$BODY")"
count=$(jq length "$BODY")
[ "$count" = 20 ] || fail "GET /queries?queries=20 answers 20 worlds (got $count)"
after=$(world_selects)
[ $((after - before)) = 20 ] || fail "/queries?queries=20 ran the world select 20 times (got $((after - before)))"
pass "/queries?queries=20 answered 20 worlds with 20 selects, counted by pg_stat_statements"

# ------------------------------------------------------------ X-Request-ID
step "X-Request-ID"
rid=$(curl -s --max-time 5 -o /dev/null -D - -H 'X-Request-ID: e2e-client-id-42' "$LB/healthz" \
  | tr -d '\r' | awk -F': ' 'tolower($1) == "x-request-id" { print $2 }')
[ "$rid" = e2e-client-id-42 ] || fail "the client's X-Request-ID comes back unchanged (got '$rid')"
pass "the client's X-Request-ID comes back unchanged"
rid1=$(curl -s --max-time 5 -o /dev/null -D - "$LB/healthz" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-request-id" { print $2 }')
rid2=$(curl -s --max-time 5 -o /dev/null -D - "$LB/healthz" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-request-id" { print $2 }')
if [ -z "$rid1" ] || [ -z "$rid2" ] || [ "$rid1" = "$rid2" ]; then
  fail "a request without X-Request-ID gets a fresh one (got '$rid1', '$rid2')"
fi
pass "a request without X-Request-ID gets a fresh one ($rid1)"

# ------------------------------------------------------------ a node killed
step "kill -9 node1"
node1_pid=$(cat "$PIDS/node1.pid")
kill -KILL "$node1_pid"
bad=0
for i in $(seq 50); do
  code=$(get "$LB/readyz")
  if [ "$code" != 200 ]; then
    bad=$((bad + 1))
    echo "  request $i: $code $(cat "$BODY")"
  fi
done
[ "$bad" = 0 ] || fail "50 sequential GETs after killing node1: $bad were not 200"
pass "50 sequential GETs after killing node1 all answer 200"
node1_is() { [ "$(lb_status node1)" = "$1" ]; }
wait_for 10 "HAProxy marks node1 DOWN (stats CSV)" node1_is DOWN

step "deploy/local start node1"
"$LOCAL" start node1 || fail "deploy/local start node1"
wait_for 15 "HAProxy marks node1 UP again (stats CSV)" node1_is UP
seen=""
for i in $(seq 20); do
  get "$LB/readyz" >/dev/null
  grep -q '"node" *: *"node1"' "$BODY" && seen=yes && break
done
[ "$seen" = yes ] || fail "requests reach node1 again"
pass "requests reach node1 again"

# ------------------------------------------------------------ 413
step "an 8 MiB body"
big=$(mktemp)
head -c $((8 * 1024 * 1024)) /dev/zero >"$big"
check_413() {
  local what=$1; shift
  local code
  code=$(get "$LB/readyz" -X POST -H 'Content-Type: application/json' --data-binary @"$big" "$@")
  if [ "$code" = 413 ] && grep -q '"errors"' "$BODY"; then
    pass "$what: 413 with $(head -c 120 "$BODY")"
  else
    rm -f "$big"
    fail "$what: got $code $(head -c 200 "$BODY"), not 413 with an errors body"
  fi
}
check_413 "8 MiB POST, curl's default Expect: 100-continue"
check_413 "8 MiB POST without Expect" -H 'Expect:'
check_413 "8 MiB chunked POST" -H 'Transfer-Encoding: chunked'
rm -f "$big"

# ------------------------------------------------------------ a tier down
# tier_reported TIER STATE: /readyz through HAProxy is 200 and says so.
tier_reported() {
  local tier=$1 want=$2 code
  code=$(get "$LB/readyz")
  [ "$code" = 200 ] && grep -qE "\"$tier\" *: *\"$want\"" "$BODY"
}
# Both nodes see it, not only the one that answered first (asked directly).
both_report() {
  local tier=$1 want=$2 port
  for port in "$NODE1_PORT" "$NODE2_PORT"; do
    [ "$(get "http://127.0.0.1:$port/readyz")" = 200 ] && grep -qE "\"$tier\" *: *\"$want\"" "$BODY" || return 1
  done
}
for tier in redis postgres; do
  step "deploy/local stop $tier"
  "$LOCAL" stop "$tier" || fail "deploy/local stop $tier"
  wait_for 10 "with $tier stopped, /readyz is still 200 and reports it down" tier_reported "$tier" down
  echo "  $(cat "$BODY")"
  step "deploy/local start $tier"
  "$LOCAL" start "$tier" || fail "deploy/local start $tier"
  wait_for 10 "with $tier back, /readyz reports it up" tier_reported "$tier" up
  wait_for 10 "both nodes report $tier up (asked directly)" both_report "$tier" up
done

# ------------------------------------------------------------ down
step "deploy/local down"
pids=""
for f in "$PIDS"/*.pid; do pids="$pids $(cat "$f")"; done
"$LOCAL" down || fail "deploy/local down"
DOWN_DONE=1
pass "deploy/local down exits 0"
for port in "${PORTS[@]}"; do
  ! listening "$port" || fail "port $port still accepts connections after down"
done
pass "nothing listens on ${PORTS[*]}"
left=""
deadline=$((SECONDS + 5))
for pid in $pids; do
  while pid_alive "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
  if pid_alive "$pid"; then left="$left $pid"; fi
done
[ -z "$left" ] || fail "processes still alive after down:$left"
pass "no process from the pid files is alive ($pids )"
ls "$PIDS"/*.pid >/dev/null 2>&1 && fail "pid files remain after down: $(ls "$PIDS")"
pass "no pid file remains"
"$LOCAL" down >/dev/null || fail "a second deploy/local down exits 0"
pass "a second deploy/local down exits 0"

echo "two_nodes_test: all checks passed in $((SECONDS - START)) s"
