#!/usr/bin/env bash
# tests/harness/tiers_test.sh TIERS PG_PORT REDIS_PORT: the integration tiers
# harness (TIERS, tests/harness/tiers) from a build tree the postgres user
# cannot enter, as when the suite runs from a clone in a `mktemp -d` folder
# or in root's home (both 0700). PostgreSQL must start, answer through the
# socket the harness names (as the tests' admin URL uses it) and over TCP,
# leave the build tree's folders as they were, and stop by PID; `stop`
# leaves nothing of it behind, also when a dead test left Redis or a backend
# SIGSTOPped; `start` refuses a Redis on its port that it did not start.
set -euo pipefail

[ $# -eq 3 ] || { echo "usage: $0 TIERS PG_PORT REDIS_PORT" >&2; exit 2; }
TIERS=$1
PG_PORT=$2
REDIS_PORT=$3
PSQL=/usr/lib/postgresql/15/bin/psql

pass() { echo "ok   - $*"; }
fail() {
  echo "FAIL - $*"
  exit 1
}

alive() { kill -0 "$1" 2>/dev/null && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }

TOP=$(mktemp -d)
STATE=$TOP/build/test-tiers
cleanup() {
  local rc=$?
  if [ "$rc" -ne 0 ]; then
    for f in "$STATE"/*.log; do
      [ -f "$f" ] || continue
      echo "## $f"
      tail -n 15 "$f" | cut -c1-300
    done
  fi
  "$TIERS" stop "$STATE" >/dev/null 2>&1 || true
  if [ -n "${foreign:-}" ] && alive "$foreign"; then kill -CONT "$foreign"; kill -TERM "$foreign"; fi
  rm -rf "$TOP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mode_before=$(stat -c '%a %U' "$TOP")
[ "${mode_before%% *}" = 700 ] || fail "mktemp -d made a 0700 folder (it is $mode_before)"
if [ "$(id -u)" = 0 ] && runuser -u postgres -- test -x "$TOP"; then
  fail "the postgres user cannot enter $TOP (else this test proves nothing)"
fi

out=$("$TIERS" start "$STATE" "$PG_PORT" "$REDIS_PORT" 2>&1) \
  || fail "tiers start with its state in a 0700 folder: $out"
pass "tiers start with its state folder under a 0700 folder"

home=$("$TIERS" pg-home "$STATE")
[ "$(cat "$STATE/pg-home" 2>/dev/null)" = "$home" ] \
  || fail "the state folder records PostgreSQL's folder ($STATE/pg-home: '$(cat "$STATE/pg-home" 2>/dev/null)', pg-home: '$home')"
case $home in
  "$TOP"/*) fail "PostgreSQL's folder $home is outside the build tree" ;;
esac
pass "PostgreSQL's folder is $home, recorded in $STATE/pg-home"

[ "$(stat -c '%a %U' "$TOP")" = "$mode_before" ] \
  || fail "the build tree's folder kept its mode and owner ($mode_before, now $(stat -c '%a %U' "$TOP"))"
pass "$TOP kept its mode and owner ($mode_before)"

pid=$(head -n 1 "$home/pg/postmaster.pid" 2>/dev/null || true)
if ! [[ $pid =~ ^[0-9]+$ ]] || ! alive "$pid"; then
  fail "a postmaster runs with its PID in $home/pg/postmaster.pid ('$pid')"
fi
redis_pid=$(cat "$STATE/redis.pid" 2>/dev/null || true)
if ! [[ $redis_pid =~ ^[0-9]+$ ]] || ! alive "$redis_pid"; then
  fail "Redis runs with its PID in $STATE/redis.pid ('$redis_pid')"
fi

# The admin URL of tests/integration/CMakeLists.txt, used as the tests use it.
admin="postgresql:///postgres?host=$home&port=$PG_PORT&user=postgres"
got=$("$PSQL" -X -At -v ON_ERROR_STOP=1 "$admin" -c "SELECT 'socket ' || current_user" 2>&1) \
  || fail "a query through the socket in $home: $got"
[ "$got" = "socket postgres" ] || fail "the socket answers as postgres (got '$got')"
pass "a query through the socket in $home"

got=$(PGCONNECT_TIMEOUT=5 "$PSQL" -X -At -v ON_ERROR_STOP=1 \
  "postgresql://shoal:shoal@127.0.0.1:$PG_PORT/shoal" -c "SELECT 'tcp ' || current_database()" 2>&1) \
  || fail "a query over TCP on 127.0.0.1:$PG_PORT: $got"
[ "$got" = "tcp shoal" ] || fail "TCP answers from the shoal database (got '$got')"
pass "a query over TCP as shoal on 127.0.0.1:$PG_PORT"

[ -s "$STATE/postgres.log" ] || fail "PostgreSQL logs to $STATE/postgres.log"
pass "PostgreSQL logs to $STATE/postgres.log"

# pg-stop and pg-start (the outage tests) keep the data.
"$TIERS" pg-stop "$STATE" || fail "tiers pg-stop"
alive "$pid" && fail "tiers pg-stop stops the postmaster (PID $pid)"
"$TIERS" pg-start "$STATE" "$PG_PORT" || fail "tiers pg-start"
got=$("$PSQL" -X -At "$admin" -c "SELECT count(*) FROM pg_database WHERE datname = 'shoal'" 2>&1) \
  || fail "a query after pg-start: $got"
[ "$got" = 1 ] || fail "the shoal database survives pg-stop and pg-start (got '$got')"
pid=$(head -n 1 "$home/pg/postmaster.pid")
pass "pg-stop and pg-start keep the cluster"

# A test that crashes, or that ctest kills at its timeout, while it holds
# Redis or a backend SIGSTOPped never resumes them: `stop` must still stop
# both, within its bound, and leave nothing (it once waited forever, or
# deleted PostgreSQL's folder under a running postmaster).
redis_pid=$(cat "$STATE/redis.pid")
"$PSQL" -X -At "$admin" -c "SELECT pg_sleep(600)" >/dev/null 2>&1 &
sleeper=$!
backend=""
for _ in $(seq 100); do
  backend=$("$PSQL" -X -At "$admin" -c "SELECT pid FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(600)'")
  [ -n "$backend" ] && break
  sleep 0.05
done
[ -n "$backend" ] || fail "a backend runs pg_sleep for this test"
kill -STOP "$redis_pid" "$backend"
timeout 60 "$TIERS" stop "$STATE" || fail "tiers stop with Redis and a backend SIGSTOPped (exit $?)"
wait "$sleeper" 2>/dev/null || true
for _ in $(seq 50); do alive "$pid" || alive "$redis_pid" || break; sleep 0.1; done
alive "$pid" && fail "tiers stop stops the postmaster (PID $pid) with a backend SIGSTOPped"
alive "$redis_pid" && fail "tiers stop stops Redis (PID $redis_pid) left SIGSTOPped"
alive "$backend" && fail "tiers stop stops the SIGSTOPped backend (PID $backend)"
[ ! -e "$home" ] || fail "tiers stop deletes $home"
pass "tiers stop stopped a SIGSTOPped Redis and a cluster with a SIGSTOPped backend, and deleted $home"

# A Redis that is not this state folder's holds the port (another clone's,
# or one a killed run left): `start` says so instead of handing the tests
# a server they do not know (and never blocks on a stopped one).
foreign_dir=$TOP/foreign
mkdir -p "$foreign_dir"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize yes --dir "$foreign_dir" \
  --pidfile "$foreign_dir/redis.pid" --logfile "$foreign_dir/redis.log" --save '' --appendonly no
foreign=""
for _ in $(seq 50); do foreign=$(cat "$foreign_dir/redis.pid" 2>/dev/null || true); [ -n "$foreign" ] && break; sleep 0.1; done
[ -n "$foreign" ] || fail "a Redis of the test's own runs on port $REDIS_PORT"
kill -STOP "$foreign"
out=$(timeout 60 "$TIERS" start "$STATE" "$PG_PORT" "$REDIS_PORT" 2>&1) && rc=0 || rc=$?
kill -CONT "$foreign"
kill -TERM "$foreign"
for _ in $(seq 50); do alive "$foreign" || break; sleep 0.1; done
if [ "$rc" = 0 ] || [ "$rc" = 124 ]; then
  fail "tiers start with a stopped Redis not its own on port $REDIS_PORT fails, at once (exit $rc): $out"
fi
case $out in
  *"held by another"*|*"not as the Redis started"*) ;;
  *) fail "tiers start names the Redis on port $REDIS_PORT as another's: $out" ;;
esac
pass "tiers start refuses a Redis on port $REDIS_PORT that it did not start: $(echo "$out" | tail -n 1)"
out=$("$TIERS" start "$STATE" "$PG_PORT" "$REDIS_PORT" 2>&1) || fail "tiers start once the port is free: $out"
pid=$(head -n 1 "$home/pg/postmaster.pid")
redis_pid=$(cat "$STATE/redis.pid")
pass "tiers start once the port is free again"

"$TIERS" stop "$STATE" || fail "tiers stop"
for _ in $(seq 50); do alive "$pid" || alive "$redis_pid" || break; sleep 0.1; done
alive "$pid" && fail "tiers stop stops the postmaster (PID $pid)"
alive "$redis_pid" && fail "tiers stop stops Redis (PID $redis_pid)"
pass "tiers stop stopped PostgreSQL (PID $pid) and Redis (PID $redis_pid)"
[ ! -e "$home" ] || fail "tiers stop deletes $home"
pass "tiers stop deleted $home"
