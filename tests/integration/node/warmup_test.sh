#!/usr/bin/env bash
# tests/integration/node/warmup_test.sh: a fresh node opens its workers'
# connections before it turns ready, and only start-up waits for them.
#   warmup_test.sh SHOAL_NODE_BINARY PORT ADMIN_PORT
#
#   - the moment /readyz first answers 200, the node holds one PostgreSQL
#     connection per worker thread, each with its statements prepared (its
#     last statement in pg_stat_activity is a prepared one), plus the tier
#     monitor's, and as many Redis connections (CLIENT LIST, matched to the
#     node's own sockets);
#   - requests afterwards open no more: each thread takes a warmed worker;
#   - a node whose PostgreSQL refuses, hangs, or whose Redis refuses still
#     turns ready within its startup timeout, and reaches PostgreSQL once
#     it is there.
# Needs the fixture's PostgreSQL and Redis (SHOAL_TEST_* variables).
set -euo pipefail
binary=$1
port=$2
admin_port=$3
base="http://127.0.0.1:$port"
# The one place that says where readiness is asked: the admin listener.
readyz_url="http://127.0.0.1:$admin_port/readyz"
threads=4
scale=${SHOAL_TEST_TIME_SCALE:-1}
scale=${scale%%.*}
[ "$scale" -ge 1 ] 2>/dev/null || scale=1

redis_port=${SHOAL_TEST_REDIS_URL#redis://*:}
redis_port=${redis_port%%/*}
admin_psql() { psql "$SHOAL_TEST_ADMIN_DATABASE_URL" -XAtq -v ON_ERROR_STOP=1 "$@"; }

# shellcheck source=SCRIPTDIR/../../support/node_checks.sh
source "$(dirname "$0")/../../support/node_checks.sh"
node_pid=""
helper_pid=""
log=$(mktemp)

cleanup() {
  stop_pid "$node_pid"
  stop_pid "$helper_pid" TERM
  rm -f "$log"
}
trap cleanup EXIT

now_ms() { date +%s%3N; }
readyz_status() { curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$readyz_url" || true; }

start_node() { # name, extra environment assignments
  local name=$1; shift
  env DATABASE_URL="$SHOAL_TEST_DATABASE_URL" REDIS_URL="$SHOAL_TEST_REDIS_URL" SHOAL_PORT="$port" SHOAL_ADMIN_PORT="$admin_port" \
    SHOAL_NODE_NAME="$name" SHOAL_THREADS=$threads SHOAL_L1_ENTRIES=0 SHOAL_ACCESS_LOG_SAMPLE=0 "$@" \
    "$binary" 2>"$log" &
  node_pid=$!
  started_ms=$(now_ms)
}

# Polls without pausing, so that what is counted next is the node as it is
# when readiness first turns 200. Sets ready_ms (ms after the start).
wait_ready() { # limit in seconds
  local deadline=$(($(now_ms) + $1 * 1000))
  ready_ms=""
  while [ "$(now_ms)" -lt "$deadline" ]; do
    if [ "$(readyz_status)" = 200 ]; then ready_ms=$(($(now_ms) - started_ms)); return 0; fi
    kill -0 "$node_pid" 2>/dev/null || break
  done
  echo "node not ready within $1 s; its log:" >&2
  cat "$log" >&2
  return 1
}

# The node's PostgreSQL sessions: all of them, and those whose last
# statement was a prepared one (the monitor's is the empty ping).
postgres_sessions() { admin_psql -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$1'"; }
prepared_sessions() {
  admin_psql -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$1' AND query <> ''"
}
# The node's migration and its budget check, under its name too, close
# their sessions just before the warm-up, and a closed session leaves
# pg_stat_activity a moment after its client. at_most WANTED COMMAND...
# re-reads the count while it is above WANTED (for 1 s, scaled): those only
# go away. A count below WANTED is final at once.
at_most() {
  local wanted=$1 n; shift
  for _ in $(seq $((20 * scale))); do
    n=$("$@")
    [ "$n" -gt "$wanted" ] || break
    sleep 0.05
  done
  echo "$n"
}
# The node's Redis connections: the clients Redis lists whose address is a
# socket of the node's process.
redis_sessions() {
  local own
  own=$(ss -Htnp state established "( dport = :$redis_port )" | grep "pid=$node_pid," | awk '{print $3}' || true)
  redis-cli -p "$redis_port" CLIENT LIST | grep -oE 'addr=[^ ]+' | cut -d= -f2 | grep -cxF -f <(echo "$own") || true
}

# ---- warm at the first 200

name=warmup-$$
start_node "$name"
check "the node turns ready" wait_ready $((10 * scale))
pg=$(at_most $((2 * threads + 1)) postgres_sessions "$name"); prepared=$(at_most $((2 * threads)) prepared_sessions "$name")
redis=$(redis_sessions)
echo "# at the first 200 (after $ready_ms ms): $pg PostgreSQL sessions ($prepared with prepared statements), $redis Redis connections"
check "PostgreSQL: $threads workers x 2 (pipe, transactions) + 1 monitor = $((2 * threads + 1)) sessions at the first 200 (got $pg)" \
  [ "$pg" = $((2 * threads + 1)) ]
check "every worker's statements are prepared on both at the first 200 ($prepared of $((2 * threads)))" \
  [ "$prepared" = $((2 * threads)) ]
check "Redis: $threads workers x 2 (blocking, loop) + 1 monitor = $((2 * threads + 1)) connections at the first 200 (got $redis)" \
  [ "$redis" = $((2 * threads + 1)) ]
check "the log says the workers connected" grep -q '"event":"warm".*'"$threads"' workers connected' "$log"

# Requests on every thread take the warmed workers: no connection is added.
codes=$(seq 200 | xargs -P 8 -I{} curl -s -o /dev/null -w '%{http_code}\n' --max-time 5 "$base/db" | sort | uniq -c)
check "200 concurrent /db requests answer 200 ($(echo $codes))" [ "$(echo $codes)" = "200 200" ]
pg=$(postgres_sessions "$name"); redis=$(redis_sessions)
check "no thread opened a PostgreSQL connection of its own ($pg sessions)" [ "$pg" = $((2 * threads + 1)) ]
check "no thread opened a Redis connection of its own ($redis connections)" [ "$redis" = $((2 * threads + 1)) ]
stop_node

# ---- only start-up waits: a tier that is not there

# A port nothing listens on: refused at once.
closed_port=$((port + 1)) # SHOAL_TEST_WARMUP_PORT + 1 is left free for this
timeout=6
start_node "warmup-refused-$$" DATABASE_URL="postgresql://shoal:shoal@127.0.0.1:$closed_port/shoal" \
  SHOAL_MIGRATE=false SHOAL_STARTUP_TIMEOUT=$timeout
check "PostgreSQL refusing: ready within the startup timeout" wait_ready $((timeout * scale))
echo "# ready after $ready_ms ms"
check "PostgreSQL refusing: /readyz reports it down" \
  bash -c "curl -s --max-time 1 '$readyz_url' | jq -e '.postgres == \"down\"' >/dev/null"
check "PostgreSQL refusing: the budget check says it was skipped" \
  grep -q '"event":"budget".*not checked' "$log"
# PostgreSQL comes (a forwarder to the fixture's appears on that port): the
# workers reach it on their own.
pg_port=$(sed -E 's|.*@[^:/]+:([0-9]+)/.*|\1|' <<<"$SHOAL_TEST_DATABASE_URL")
/usr/bin/python3 - "$closed_port" "$pg_port" <<'EOF' &
import socket, sys, threading
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", int(sys.argv[1])))
listener.listen(64)
def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
while True:
    client, _ = listener.accept()
    upstream = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
    threading.Thread(target=pump, args=(client, upstream), daemon=True).start()
    threading.Thread(target=pump, args=(upstream, client), daemon=True).start()
EOF
helper_pid=$!
reached=no
for _ in $(seq $((50 * scale))); do
  if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$base/db")" = 200 ]; then reached=yes; break; fi
  sleep 0.1
done
check "PostgreSQL arriving later: /db answers 200 without a restart" [ "$reached" = yes ]
stop_node
stop_pid "$helper_pid" TERM; helper_pid=""

# A port that accepts and never answers: every connection attempt waits for
# the connect timeout (2 s), and start-up must not wait for each worker's.
/usr/bin/python3 - "$closed_port" <<'EOF' &
import socket, sys, time
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", int(sys.argv[1])))
listener.listen(128)
held = []
while True:
    held.append(listener.accept()[0])
EOF
helper_pid=$!
for _ in $(seq 50); do ss -Hltn "( sport = :$closed_port )" | grep -q . && break; sleep 0.1; done
start_node "warmup-hung-$$" DATABASE_URL="postgresql://shoal:shoal@127.0.0.1:$closed_port/shoal" \
  SHOAL_MIGRATE=false SHOAL_STARTUP_TIMEOUT=$timeout SHOAL_DATABASE_CONNECT_TIMEOUT=2 SHOAL_THREADS=8
check "PostgreSQL hanging: ready within the startup timeout ($timeout s)" wait_ready $((timeout * scale))
echo "# ready after $ready_ms ms"
stop_node
stop_pid "$helper_pid" TERM; helper_pid=""

start_node "warmup-noredis-$$" REDIS_URL="redis://127.0.0.1:$closed_port/0" SHOAL_STARTUP_TIMEOUT=$timeout
check "Redis refusing: ready within the startup timeout" wait_ready $((timeout * scale))
echo "# ready after $ready_ms ms"
check "Redis refusing: PostgreSQL is warmed all the same (both connections of each worker)" \
  [ "$(at_most $((2 * threads)) prepared_sessions "warmup-noredis-$$")" = $((2 * threads)) ]
stop_node

checks_summary
