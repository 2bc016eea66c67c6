# shellcheck shell=bash
# shellcheck disable=SC2154 # node_pid and log are the sourcing test's
# tests/support/node_checks.sh: what the shell tests that run shoal-node
# share; sourced, not run. The test sets node_pid (the running node, or "")
# and log (the file its stderr goes to).
#   check DESCRIPTION COMMAND...   one TAP-style line; counts passes and failures
#   stop_pid PID [SIGNAL]          SIGNAL (INT), then SIGKILL if it lingers 5 s
#   stop_node                      SIGINT to node_pid, then checks it exited 0
#                                  and its log holds no sanitizer report
#   checks_summary                 the counts; its status is the test's
#   time_scale                     SHOAL_TEST_TIME_SCALE as a whole number >= 1
#   wait_serving LOG PID [POLLS]   until the node writing LOG serves; sets
#                                  serving_port and serving_admin_port
failures=0
passes=0

check() {
  local description=$1; shift
  if "$@"; then passes=$((passes + 1)); echo "ok - $description"
  else failures=$((failures + 1)); echo "not ok - $description"; fi
}

# A node stops at once on SIGINT (no drain delay); helpers started with &
# ignore SIGINT (only the node unignores it, by blocking it): give them TERM.
stop_pid() {
  local pid=$1 signal=${2:-INT}
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -"$signal" "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# The ASan build runs these tests too: a report in the log fails them.
stop_node() {
  local pid=$node_pid rc=0
  node_pid=""
  [ -n "$pid" ] || return 0
  kill -INT "$pid" 2>/dev/null || true
  wait "$pid" || rc=$?
  check "the node exits 0 (got $rc)" [ "$rc" = 0 ]
  check "no sanitizer report in the node's log" \
    bash -c "! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' '$log'"
}

checks_summary() {
  echo "$passes passed, $failures failed"
  [ "$failures" = 0 ]
}

time_scale() {
  local scale=${SHOAL_TEST_TIME_SCALE:-1}
  scale=${scale%%.*}
  [ "$scale" -ge 1 ] 2>/dev/null || scale=1
  echo "$scale"
}

# A node started on port 0 says where it serves in its log's "serving on"
# line: wait for it (POLLS polls of 50 ms, 200 times the time scale by
# default) or for the node to exit. Prints the log and returns 1 when it
# never served.
wait_serving() {
  local log_file=$1 pid=$2 polls=${3:-$((200 * $(time_scale)))} line=""
  for _ in $(seq "$polls"); do
    line=$(grep -o '"message":"serving on [^"]*' "$log_file" || true)
    [ -n "$line" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  serving_port=$(sed -n 's/.*serving on [^ ]*:\([0-9]*\) with.*/\1/p' <<<"$line")
  serving_admin_port=$(sed -n 's/.*admin on [^ ]*:\([0-9]*\);.*/\1/p' <<<"$line")
  if [ -z "$serving_port" ] || [ -z "$serving_admin_port" ]; then
    echo "the node did not start serving; its log ($log_file):"
    cat "$log_file"
    return 1
  fi
}
