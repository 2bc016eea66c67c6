#!/usr/bin/env bash
# tests/integration/node/lifecycle_test.sh: the shoal-node binary's start,
# configuration errors and shutdown, against the fixture's real servers.
#   lifecycle_test.sh SHOAL_NODE_BINARY PORT ADMIN_PORT
set -euo pipefail
binary=$1
port=$2
admin_port=$3
base="http://127.0.0.1:$port"
admin="http://127.0.0.1:$admin_port"
# SHOAL_TEST_TIME_SCALE (1): the waits below stretch with it (the sanitizer
# build's node starts and answers slower).
scale=${SHOAL_TEST_TIME_SCALE:-1}
scale=${scale%%.*}
[ "$scale" -ge 1 ] 2>/dev/null || scale=1
failures=0
passes=0
node_pid=""

check() { # description, then a command that must succeed
  local description=$1; shift
  if "$@"; then passes=$((passes + 1)); echo "ok - $description"
  else failures=$((failures + 1)); echo "not ok - $description"; fi
}

cleanup() {
  if [ -n "$node_pid" ] && kill -0 "$node_pid" 2>/dev/null; then kill -KILL "$node_pid"; fi
}
trap cleanup EXIT

# status_of PATH: the public port's answer; admin_status_of PATH: the admin port's.
status_of() { curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$base$1" || true; }
admin_status_of() { curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$admin$1" || true; }

start_node() { # extra environment assignments
  env DATABASE_URL="$SHOAL_TEST_DATABASE_URL" REDIS_URL="$SHOAL_TEST_REDIS_URL" SHOAL_PORT="$port" \
    SHOAL_ADMIN_PORT="$admin_port" SHOAL_NODE_NAME=lifecycle SHOAL_THREADS=2 "$@" "$binary" 2>"$log" &
  node_pid=$!
  for _ in $(seq $((100 * scale))); do
    [ "$(admin_status_of /readyz)" = 200 ] && return 0
    sleep 0.1
  done
  echo "node did not become ready; its log:" >&2
  cat "$log" >&2
  return 1
}

wait_exit() { # pid, seconds; sets code to the exit status, or "running"
  local pid=$1 limit=$2
  code=running
  for _ in $(seq $((limit * 10))); do
    if ! kill -0 "$pid" 2>/dev/null; then
      code=0
      wait "$pid" || code=$?
      return
    fi
    sleep 0.1
  done
}

# until_true SECONDS COMMAND...: polls COMMAND every 50 ms until it
# succeeds, for SECONDS times the scale; its last status.
until_true() {
  local limit=$1; shift
  for _ in $(seq $((limit * scale * 20))); do
    "$@" && return 0
    sleep 0.05
  done
  "$@"
}
now_ms() { date +%s%3N; }

log=$(mktemp)

# Configuration errors exit 2 and name the setting.
set +e
out=$(SHOAL_THREADS=zero "$binary" 2>&1); rc=$?
set -e
check "a bad variable exits 2" [ "$rc" = 2 ]
check "the message names the variable" grep -q SHOAL_THREADS <<<"$out"
set +e
out=$("$binary" --no-such-flag 2>&1); rc=$?
set -e
check "an unknown flag exits 2" [ "$rc" = 2 ]
# Values that only fail later if nobody looks at them now.
for bad in "--bind nonsense" "--admin-bind nonsense" "--admin-port 8081" "--redis-url redis://127.0.0.1:notaport/0" "--database-url postgresql://[oops"; do
  set +e
  # shellcheck disable=SC2086 # the flag and its value are two words
  out=$("$binary" $bad 2>&1); rc=$?
  set -e
  check "'$bad' exits 2 (got $rc: $out)" [ "$rc" = 2 ]
  check "'$bad': the message names the setting" grep -q -- "${bad%% *}" <<<"$out"
done
help=$("$binary" --help)
for variable in SHOAL_PORT SHOAL_THREADS SHOAL_MAX_BODY_BYTES SHOAL_DRAIN_DELAY_MS DATABASE_URL REDIS_URL; do
  check "--help lists $variable" grep -q "$variable" <<<"$help"
done
# The README's configuration table must keep up with the binary.
readme="$(dirname "$0")/../../../README.md"
for flag in $(grep -oE '^  --[a-z0-9-]+ +[A-Z0-9_]+' <<<"$help" | awk '{print $1}'); do
  check "README documents $flag" grep -q -- "\`$flag\`" "$readme"
done

# SIGTERM: readiness turns 503 at once, serving goes on through the drain
# delay, then the listener closes and the process exits 0.
# A drain delay with room to spare: on a loaded machine each curl here can
# take a good part of a second longer than written; the checks inside it
# are timed from the signal, not from the sleeps.
drain_ms=6000
start_node SHOAL_DRAIN_DELAY_MS=$drain_ms SHOAL_GRACE_PERIOD_MS=3000
check "ready after start (admin port)" [ "$(admin_status_of /readyz)" = 200 ]
check "the admin port serves /metrics" [ "$(admin_status_of /metrics)" = 200 ]
check "the public port answers /readyz 404" [ "$(status_of /readyz)" = 404 ]
check "the public port answers /metrics 404" [ "$(status_of /metrics)" = 404 ]
check "the public port serves /healthz" [ "$(status_of /healthz)" = 200 ]
# The line is written once the answer has gone out, a moment after curl has it.
last_request_is_healthz() {
  grep '"event":"request"' "$log" | tail -n 1 | grep -q '"path":"/healthz"'
}
curl -s "$base/healthz" >/dev/null
until_true 2 last_request_is_healthz || true
check "the access log is JSON lines" bash -c "grep '\"event\":\"request\"' '$log' | tail -n 1 | jq -e '.path == \"/healthz\" and .status == 200 and (.request_id | length) == 32' >/dev/null"
# Two workers hold their access lines until their loop's turn ends: 200
# requests from 8 clients at once leave 200 more whole lines, none lost,
# none cut.
healthz_lines() { grep -c '"path":"/healthz"' "$log" || true; }
before_burst=$(healthz_lines)
seq 200 | xargs -P 8 -I{} curl -s -o /dev/null "$base/healthz"
all_burst_lines_written() { [ "$(healthz_lines)" -ge $((before_burst + 200)) ]; }
until_true 2 all_burst_lines_written || true
check "200 requests at once leave 200 access lines (got $(($(healthz_lines) - before_burst)))" \
  [ "$(healthz_lines)" = $((before_burst + 200)) ]
check "every line of the log is whole JSON" jq -e -s 'length > 0' "$log"
termed_ms=$(now_ms) # before the signal: the node's delay runs from a moment later
kill -TERM "$node_pid"
readyz_is_503() { [ "$(admin_status_of /readyz)" = 503 ]; }
check "readyz is 503 while draining" until_true 2 readyz_is_503
check "other requests are still served while draining" [ "$(status_of /healthz)" = 200 ]
waited_ms=$(($(now_ms) - termed_ms))
[ "$waited_ms" -ge 1500 ] || sleep "$(awk -v ms=$((1500 - waited_ms)) 'BEGIN { print ms / 1000 }')"
check "still serving 1.5 s into the $((drain_ms / 1000)) s drain delay" [ "$(status_of /healthz)" = 200 ]
check "still running 1.5 s into the drain delay" kill -0 "$node_pid"
wait_exit "$node_pid" $((drain_ms / 1000 + 4 * scale))
exited_ms=$(($(now_ms) - termed_ms))
check "exits 0 after the drain delay (got $code after $exited_ms ms)" [ "$code" = 0 ]
check "not before the drain delay had passed" [ "$exited_ms" -ge "$drain_ms" ]
check "nothing listens afterwards" [ "$(status_of /healthz)" = 000 ]
check "nothing listens on the admin port afterwards" [ "$(admin_status_of /healthz)" = 000 ]

# SIGINT skips the drain delay.
start_node SHOAL_DRAIN_DELAY_MS=60000
kill -INT "$node_pid"
wait_exit "$node_pid" $((3 * scale))
check "SIGINT stops at once with 0 (got $code)" [ "$code" = 0 ]
node_pid=""

rm -f "$log"
echo "$passes passed, $failures failed"
[ "$failures" = 0 ]
