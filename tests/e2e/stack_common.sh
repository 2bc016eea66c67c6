# tests/e2e/stack_common.sh: what the end-to-end stack scripts
# (conduit_stack.sh, faults_stack.sh) share, sourced by them. Each runs the
# local stack (deploy/local) on private ports in a state folder of its own,
# recorded in a PATH_FILE that ctest's fixture passes to `up` and `down`.
#
# The caller sets: STACK_NAME (its messages and the state folder's prefix,
# /tmp/shoal-STACK_NAME.XXXXXX), LOCAL (deploy/local), path_file, NODES,
# PORT_VARIABLES (which variables move its ports, for the message when one
# is taken), and defines die(). The tests that start a stack of their own
# (two_nodes_test.sh, overload_test.sh) use stack_stop_recorded alone.

listening() { timeout 1 bash -c ": </dev/tcp/127.0.0.1/$1" 2>/dev/null; }

state_from_file() {
  [ -s "$path_file" ] || die "no stack recorded in $path_file"
  SHOAL_STATE=$(cat "$path_file")
  export SHOAL_STATE
}

# Sanitizer reports in the nodes' logs: ASan and LeakSanitizer print
# "ERROR: ...Sanitizer", UBSan "runtime error:".
sanitizer_reports() {
  grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$SHOAL_STATE"/logs/node*.log 2>/dev/null || true
}

# stack_stop_recorded FILE NAME: a run that was killed (a ctest timeout,
# SIGKILL) never ran its `down` or its cleanup: stop the stack whose state
# folder (/tmp/shoal-NAME.XXXXXX) FILE records, by the PIDs in that folder
# (deploy/local checks each one's start time, so a reused PID is left
# alone), delete it, and forget it, before the ports are taken again.
stack_stop_recorded() {
  local file=$1 name=$2 left
  left=$(cat "$file" 2>/dev/null || true)
  case $left in
    */shoal-"$name".*)
      if [ -d "$left" ]; then
        echo "${name}: stopping the stack a previous run left in $left"
        SHOAL_STATE=$left "$LOCAL" down --purge || true
        rm -rf "$left"
      fi
      ;;
  esac
  rm -f "$file"
}

stack_up() {
  local port k
  stack_stop_recorded "$path_file" "$STACK_NAME"
  local -a ports=("$SHOAL_LB_PORT" "$SHOAL_STATS_PORT" "$SHOAL_PG_PORT" "$SHOAL_REDIS_PORT")
  for ((k = 0; k < NODES; k++)); do ports+=($((SHOAL_NODE_BASE_PORT + k)) $((SHOAL_ADMIN_BASE_PORT + k))); done
  for port in "${ports[@]}"; do
    if listening "$port"; then die "port $port is already in use; set the $PORT_VARIABLES variables"; fi
  done
  SHOAL_STATE=$(mktemp -d "${TMPDIR:-/tmp}/shoal-$STACK_NAME.XXXXXX")
  export SHOAL_STATE
  mkdir -p "$(dirname "$path_file")"
  echo "$SHOAL_STATE" >"$path_file"
  if ! "$LOCAL" up --nodes "$NODES"; then
    local f
    for f in "$SHOAL_STATE"/logs/*.log; do
      [ -f "$f" ] || continue
      echo "## $f"
      tail -n 15 "$f" | cut -c1-300
    done
    "$LOCAL" down >/dev/null 2>&1 || true
    die "deploy/local up --nodes $NODES failed (state $SHOAL_STATE)"
  fi
}

# Stops the stack by PID and exits: 1 when that failed or a node's log
# holds a sanitizer report (the state folder is then kept with
# SHOAL_E2E_KEEP=1), 0 otherwise.
stack_down() {
  # `up` failed before it started anything: nothing to stop.
  if [ ! -s "$path_file" ]; then
    echo "${STACK_NAME}_stack: no stack recorded in $path_file, nothing to stop"
    exit 0
  fi
  state_from_file
  local rc=0 reports f
  "$LOCAL" down || { echo "${STACK_NAME}_stack: deploy/local down failed" >&2; rc=1; }
  reports=$(sanitizer_reports)
  if [ -n "$reports" ]; then
    for f in $reports; do
      echo "## sanitizer report in $f"
      grep -n -A 30 -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$f" | head -n 80
    done
    rc=1
  fi
  if [ "$rc" -ne 0 ] && [ "${SHOAL_E2E_KEEP:-0}" = 1 ]; then
    echo "${STACK_NAME}_stack: state kept in $SHOAL_STATE"
  else
    # PostgreSQL's folder too, outside the state folder as root.
    "$LOCAL" down --purge >/dev/null || { echo "${STACK_NAME}_stack: deploy/local down --purge failed" >&2; rc=1; }
    rm -rf "$SHOAL_STATE"
    rm -f "$path_file"
  fi
  exit "$rc"
}
