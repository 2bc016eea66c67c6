#!/usr/bin/env bash
# tests/e2e/two_nodes_test.sh: the local stack (deploy/local) with two nodes,
# through HAProxy, on private ports and in a private state folder.
#
# Checks that /readyz and /metrics are served on each node's admin port only
# (404 through HAProxy and on the nodes' public ports, where /healthz stays,
# naming no tier), readiness and its body there, X-Request-ID handling, that
# HAProxy hides a node killed with SIGKILL (retries, then health checks) and
# takes it back once restarted, that it takes out a draining node whose
# admin /readyz turned 503 while traffic flows through the other, the 413
# for an 8 MiB body, that Redis and PostgreSQL outages leave the nodes ready
# and are reported, that a second `up` changes nothing, that
# pg_stat_statements counts the statements of a TechEmpower route, and that
# `down` leaves nothing behind.
#
# SHOAL_BIN: the node binary (ctest passes it); without it deploy/local builds.
# Ports (override when these are taken): SHOAL_E2E_LB_PORT (18080),
# SHOAL_E2E_STATS_PORT (18404), SHOAL_E2E_NODE_BASE_PORT (18081, 18082),
# SHOAL_E2E_ADMIN_BASE_PORT (18091, 18092), SHOAL_E2E_PG_PORT (15433),
# SHOAL_E2E_REDIS_PORT (16380). SHOAL_TEST_TIME_SCALE (1) stretches the waits.
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
export SHOAL_ADMIN_BASE_PORT=${SHOAL_E2E_ADMIN_BASE_PORT:-18091}
export SHOAL_PG_PORT=${SHOAL_E2E_PG_PORT:-15433}
export SHOAL_REDIS_PORT=${SHOAL_E2E_REDIS_PORT:-16380}
# A SIGTERM drain long enough to watch HAProxy take the node out while it
# still runs; the test ends it early with SIGINT. Other stops skip it.
export SHOAL_DRAIN_DELAY_MS=20000
# SHOAL_E2E_STACK_RECORD (ctest passes a file in the build tree): where this
# run records its state folder, so that the next run stops what a killed one
# (ctest's timeout sends SIGKILL, and no cleanup runs) left on the ports.
# shellcheck disable=SC1091 # checked with the stack scripts; this uses stack_stop_recorded alone
. "$REPO/tests/e2e/stack_common.sh"
record=${SHOAL_E2E_STACK_RECORD:-}
if [ -n "$record" ]; then stack_stop_recorded "$record" e2e; fi
SHOAL_STATE=$(mktemp -d "${TMPDIR:-/tmp}/shoal-e2e.XXXXXX")
export SHOAL_STATE
if [ -n "$record" ]; then mkdir -p "$(dirname "$record")"; echo "$SHOAL_STATE" >"$record"; fi
NODE1_PORT=$SHOAL_NODE_BASE_PORT
NODE2_PORT=$((SHOAL_NODE_BASE_PORT + 1))
NODE1_ADMIN=$SHOAL_ADMIN_BASE_PORT
NODE2_ADMIN=$((SHOAL_ADMIN_BASE_PORT + 1))
PORTS=("$SHOAL_LB_PORT" "$SHOAL_STATS_PORT" "$NODE1_PORT" "$NODE2_PORT" "$NODE1_ADMIN" "$NODE2_ADMIN"
       "$SHOAL_PG_PORT" "$SHOAL_REDIS_PORT")
# Waits in seconds, times SHOAL_TEST_TIME_SCALE (1, or more on a slow machine).
scaled() { awk -v s="${SHOAL_TEST_TIME_SCALE:-1}" -v n="$1" 'BEGIN { v = n * s; printf "%d", v == int(v) ? v : int(v) + 1 }'; }
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
    if [ -n "$record" ]; then rm -f "$record"; fi
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

# The status of a server of backend "nodes" on HAProxy's stats CSV (field 18),
# and with it the result of its last health check (field 37: L7OK, L7STS, ...).
lb_status() {
  curl -s --max-time 2 "$STATS/stats;csv" | awk -F, -v s="$1" '$1 == "nodes" && $2 == s { print $18 }'
}
lb_check_status() {
  curl -s --max-time 2 "$STATS/stats;csv" | awk -F, -v s="$1" '$1 == "nodes" && $2 == s { print $37 }'
}

# wait_for SECONDS DESCRIPTION COMMAND...: poll until COMMAND succeeds.
wait_for() {
  local secs what=$2
  secs=$(scaled "$1")
  shift 2
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

# ------------------------------------------------------------ internal endpoints
step "/readyz and /metrics are not public"
for base in "$LB" "http://127.0.0.1:$NODE1_PORT" "http://127.0.0.1:$NODE2_PORT"; do
  for path in /readyz /metrics; do
    code=$(get "$base$path")
    if [ "$code" != 404 ] || ! jq -e '.code == "route.not_found" and (.errors | type) == "object"' "$BODY" >/dev/null 2>&1; then
      fail "GET $base$path is $code $(head -c 200 "$BODY"), not 404 route.not_found"
    fi
    if grep -qE '"postgres"|shoal_http' "$BODY"; then fail "GET $base$path tells about the node: $(head -c 200 "$BODY")"; fi
  done
done
pass "GET /readyz and /metrics answer 404 route.not_found through HAProxy and on both nodes' public ports"
code=$(get "$LB/healthz")
if [ "$code" != 200 ] || ! jq -e '.status == "alive" and (has("postgres") or has("redis") | not)' "$BODY" >/dev/null; then
  fail "GET /healthz through HAProxy is $code $(cat "$BODY"), not 200 alive without tier details"
fi
pass "GET /healthz through HAProxy is 200 without tier details: $(cat "$BODY")"

# ------------------------------------------------------------ readiness
step "readiness and metrics on the nodes' admin ports"
for k in 1 2; do
  admin=$((SHOAL_ADMIN_BASE_PORT + k - 1))
  code=$(get "http://127.0.0.1:$admin/readyz")
  [ "$code" = 200 ] || fail "GET /readyz on node$k's admin port $admin is $code, not 200: $(cat "$BODY")"
  if ! jq -e --arg n "node$k" '.status == "ready" and .node == $n and .postgres == "up" and .redis == "up"' \
      "$BODY" >/dev/null; then
    fail "node$k's /readyz reports itself ready with postgres and redis up: $(cat "$BODY")"
  fi
  pass "node$k's admin port $admin: /readyz is 200 and reports postgres and redis up: $(cat "$BODY")"
  code=$(get "http://127.0.0.1:$admin/metrics")
  if [ "$code" != 200 ] || ! grep -q '^shoal_http_requests_total{' "$BODY"; then
    fail "GET /metrics on node$k's admin port is $code without shoal_http_requests_total"
  fi
  pass "node$k's admin port $admin: /metrics is 200"
done
status_admin=$("$LOCAL" status | awk '$1 == "node2" { print $4 }')
[ "$status_admin" = "$NODE2_ADMIN" ] || fail "deploy/local status shows node2's admin port $NODE2_ADMIN (got '$status_admin')"
pass "deploy/local status shows each node's admin port"

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
  code=$(get "$LB/healthz")
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
  get "$LB/healthz" >/dev/null
  grep -q '"node" *: *"node1"' "$BODY" && seen=yes && break
done
[ "$seen" = yes ] || fail "requests reach node1 again"
pass "requests reach node1 again"

# ------------------------------------------------------------ a node drains
# What takes a draining node out is its admin /readyz: HAProxy's checks ask
# nowhere else, and the node still accepts connections on both ports.
step "SIGTERM to node1 (deploy/local stop node1): a drain of ${SHOAL_DRAIN_DELAY_MS} ms"
node1_pid=$(cat "$PIDS/node1.pid")
"$LOCAL" stop node1 >"$SHOAL_STATE/logs/stop-node1.out" 2>&1 &
stopper=$!
node1_draining() {
  [ "$(get "http://127.0.0.1:$NODE1_ADMIN/readyz")" = 503 ] && jq -e '.status == "draining"' "$BODY" >/dev/null
}
wait_for 5 "node1's admin /readyz answers 503 (draining)" node1_draining
node1_taken_out() { [ "$(lb_status node1)" = DOWN ] && [ "$(lb_check_status node1)" = L7STS ]; }
wait_for 10 "HAProxy marks node1 DOWN on its /readyz answer (L7STS)" node1_taken_out
pid_alive "$node1_pid" || fail "node1 was still draining when HAProxy took it out"
[ "$(get "http://127.0.0.1:$NODE1_PORT/healthz")" = 200 ] || fail "node1 still serves on its public port while draining"
pass "node1 was taken out while still serving (its drain goes on)"
bad=0
for i in $(seq 30); do
  code=$(get "$LB/healthz")
  if [ "$code" != 200 ] || ! grep -q '"node" *: *"node2"' "$BODY"; then
    bad=$((bad + 1))
    echo "  request $i: $code $(cat "$BODY")"
  fi
done
[ "$bad" = 0 ] || fail "30 GETs through HAProxy with node1 out: $bad were not 200 from node2"
pass "30 GETs through HAProxy with node1 out: all 200, all from node2"
# SIGINT cuts what is left of the drain delay short.
kill -INT "$node1_pid" 2>/dev/null || true
wait "$stopper" || fail "deploy/local stop node1: $(cat "$SHOAL_STATE/logs/stop-node1.out")"
pass "node1 stopped"
"$LOCAL" start node1 || fail "deploy/local start node1 after its drain"
wait_for 15 "HAProxy marks node1 UP again after the drain (stats CSV)" node1_is UP

# ------------------------------------------------------------ 413
step "an 8 MiB body"
big=$(mktemp)
head -c $((8 * 1024 * 1024)) /dev/zero >"$big"
check_413() {
  local what=$1; shift
  local code
  code=$(get "$LB/healthz" -X POST -H 'Content-Type: application/json' --data-binary @"$big" "$@")
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
# both_report TIER STATE: both nodes' admin /readyz is 200 and says so.
both_report() {
  local tier=$1 want=$2 port
  for port in "$NODE1_ADMIN" "$NODE2_ADMIN"; do
    [ "$(get "http://127.0.0.1:$port/readyz")" = 200 ] && grep -qE "\"$tier\" *: *\"$want\"" "$BODY" || return 1
  done
}
# And HAProxy keeps both in: a shared tier down is no reason to take a node out.
both_up() { [ "$(lb_status node1)" = UP ] && [ "$(lb_status node2)" = UP ]; }
for tier in redis postgres; do
  step "deploy/local stop $tier"
  "$LOCAL" stop "$tier" || fail "deploy/local stop $tier"
  wait_for 10 "with $tier stopped, both nodes' /readyz is still 200 and reports it down" both_report "$tier" down
  echo "  $(cat "$BODY")"
  both_up || fail "with $tier stopped, HAProxy keeps both nodes UP"
  pass "with $tier stopped, HAProxy keeps both nodes UP"
  step "deploy/local start $tier"
  "$LOCAL" start "$tier" || fail "deploy/local start $tier"
  wait_for 10 "with $tier back, both nodes report it up" both_report "$tier" up
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
