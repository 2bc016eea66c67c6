#!/usr/bin/env bash
# tests/integration/node/budget_test.sh: the PostgreSQL connection budget a
# node checks at start, against a PostgreSQL of its own with room for few
# connections (max_connections 10, 3 of them reserved for superusers: 7 for
# the role shoal).
#   budget_test.sh SHOAL_NODE_BINARY TIERS_SCRIPT STATE_DIR NODE_PORT PG_PORT REDIS_PORT ADMIN_PORT
#
#   - a node that fits logs the numbers and serves, with --strict too;
#   - sessions already open count, the role's own and a superuser's (whose
#     kind an ordinary role cannot see) alike, and background processes do
#     not;
#   - past the budget a node logs a warning naming the numbers and the
#     fixes, and serves (its warm-up stops at the first refused worker);
#     with --strict it exits 1 without serving.
set -euo pipefail
binary=$1
tiers=$2
state=$3
port=$4
pg_port=$5
redis_port=$6
admin_port=$7
# The one place that says where readiness is asked: the admin listener.
readyz_url="http://127.0.0.1:$admin_port/readyz"
scale=${SHOAL_TEST_TIME_SCALE:-1}
scale=${scale%%.*}
[ "$scale" -ge 1 ] 2>/dev/null || scale=1

database_url="postgresql://shoal:shoal@127.0.0.1:$pg_port/shoal"

# shellcheck source=SCRIPTDIR/../../support/node_checks.sh
source "$(dirname "$0")/../../support/node_checks.sh"
node_pid=""
holders=()
log=$(mktemp)

cleanup() {
  stop_pid "$node_pid"
  for pid in "${holders[@]}"; do stop_pid "$pid" TERM; done
  "$tiers" stop "$state" || true
  rm -f "$log"
}
trap cleanup EXIT

SHOAL_TIERS_PG_MAX_CONNECTIONS=10 "$tiers" start "$state" "$pg_port" "$redis_port"
# The superuser connects through the socket, in the folder the harness chose.
admin_url="postgresql:///shoal?host=$("$tiers" pg-home "$state")&port=$pg_port&user=postgres"

# The schema once, here: a node that migrated would close that connection
# just before it counts the sessions in use, and a closed session leaves
# pg_stat_activity a moment after its client.
DATABASE_URL="$database_url" "$binary" migrate >/dev/null 2>&1

# Client sessions in pg_stat_activity besides the query's own, as the node
# counts them. A session that just closed (the node stopped a moment ago,
# psql) is still listed until its backend has exited: settle waits until only
# the sessions this test holds remain, so that each start counts exactly them.
sessions() {
  psql "$admin_url" -XAtq -c "SELECT count(*) FROM pg_stat_activity
                              WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'"
}
settle() { # the number of sessions the test holds
  local n=""
  for _ in $(seq $((100 * scale))); do
    n=$(sessions)
    [ "$n" = "$1" ] && return 0
    sleep 0.05
  done
  echo "# $n client sessions, not $1" >&2
  return 1
}

start_node() { # extra arguments
  env DATABASE_URL="$database_url" REDIS_URL="redis://127.0.0.1:$redis_port/0" SHOAL_PORT="$port" SHOAL_ADMIN_PORT="$admin_port" \
    SHOAL_NODE_NAME=budget SHOAL_L1_ENTRIES=0 SHOAL_ACCESS_LOG_SAMPLE=0 SHOAL_MIGRATE=false "$binary" "$@" 2>"$log" &
  node_pid=$!
}

# Ready within limit seconds, or exited (code set, "running" otherwise).
wait_ready_or_exit() { # limit in seconds
  code=running
  for _ in $(seq $(($1 * 20))); do
    if ! kill -0 "$node_pid" 2>/dev/null; then
      code=0
      wait "$node_pid" || code=$?
      node_pid=""
      return 0
    fi
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$readyz_url" || true)" = 200 ] && return 0
    sleep 0.05
  done
}

budget_line() { grep '"event":"budget"' "$log" || true; }

# ---- room for the node

check "no session is open before the node starts" settle 0
start_node --threads 2
wait_ready_or_exit $((10 * scale))
line=$(budget_line)
echo "# $line"
check "2 threads with 7 free: it serves" [ "$code" = running ]
check "the budget line names the node's 7 connections at most (the spill lane's too) and the server's numbers" \
  grep -q 'holds 7 PostgreSQL connections (3 for each of 2 worker threads, the third while its pipe spills + 1 tier monitor); the server has 7 free (max_connections 10 - 3 reserved for superusers - 0 in use)' <<<"$line"
check "it fits: no warning" bash -c "! grep -q '\"level\":\"warning\"' <<<'$line'"
stop_node

check "the last node's sessions are gone" settle 0
start_node --threads 2 --strict
wait_ready_or_exit $((10 * scale))
check "2 threads with 7 free and --strict: it serves" [ "$code" = running ]
stop_node

# ---- sessions in use: two of the role's own, two of a superuser's

for url in "$database_url" "$database_url" "$admin_url" "$admin_url"; do
  psql "$url" -XAtq -c "SELECT pg_sleep(60)" >/dev/null 2>&1 &
  holders+=("$!")
done
for _ in $(seq 100); do
  held=$(psql "$admin_url" -XAtq -c "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)'")
  [ "$held" = 4 ] && break
  sleep 0.05
done
check "four sessions are held open ($held)" [ "$held" = 4 ]

check "only the four held sessions are open" settle 4
start_node --threads 3 --strict
wait_ready_or_exit $((10 * scale))
line=$(budget_line)
echo "# $line"
check "3 threads with 3 free and --strict: it exits 1 (got $code)" [ "$code" = 1 ]
check "the error names the node's 10 connections, the 3 free and the 4 in use" \
  grep -q '"level":"error".*exceeded (--strict: not starting).*holds 10 PostgreSQL connections (3 for each of 3 worker threads, the third while its pipe spills + 1 tier monitor); the server has 3 free (max_connections 10 - 3 reserved for superusers - 4 in use)' <<<"$line"
check "the error names the fixes" \
  grep -q 'Raise max_connections.*fewer --threads.*PgBouncer' <<<"$line"
check "it never served" bash -c "! grep -q '\"event\":\"start\"' '$log'"

check "only the four held sessions are open, again" settle 4
start_node --threads 3
wait_ready_or_exit $((10 * scale))
line=$(budget_line)
echo "# $line"
check "3 threads with 3 free, without --strict: it serves all the same" [ "$code" = running ]
check "the warning names the numbers and how many workers will fail" \
  grep -q '"level":"warning".*exceeded: this node holds 10 PostgreSQL connections.*3 free.*4 in use.*7 of its connections will fail to open' <<<"$line"
warm=$(grep '"event":"warm"' "$log" || true)
echo "# $warm"
check "the warm-up connected the 2 workers there was room for and left the third" \
  grep -q 'of 3 workers 2 connected to PostgreSQL' <<<"$warm"
stop_node

checks_summary
