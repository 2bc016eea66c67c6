#!/usr/bin/env bash
# tests/unit/node/lib/ext/setup_failures_node_test.sh: shoal-node refuses to
# start, with a last log line that names the extension and why, when an
# extension's init fails; and it leaks nothing on the way out.
#
#   setup_failures_node_test.sh NODE [WRAPPER...]
#
# NODE is node/bin/main.c linked with the failure injector
# (setup_failures_node.c). Each run must exit with 1 and without a
# sanitizer's report (the ASan build's node checks for leaks at exit). WRAPPER,
# when given (tests/valgrind passes valgrind and its options), runs the
# node for the last allocation of idempotency and of rate-limit, the hook
# each registers after creating its instance: a few seconds each under
# memcheck, where the whole walk would take minutes (the unit test
# setup_failures walks every allocation under it in-process). No server is
# needed: migrations are off and the tiers are on port 1, where nothing
# listens (the tier monitor's first probe is refused at once).
set -euo pipefail

node=$1
shift
wrapper=("$@")
# A whole number for the shell's arithmetic ("1.5" counts as 1).
time_scale=${SHOAL_TEST_TIME_SCALE:-1}
time_scale=${time_scale%%.*}
[ "$time_scale" -ge 1 ] 2>/dev/null || time_scale=1
problems=0

# run EXTENSION N [WRAPPER...]: starts the node with the Nth allocation of
# EXTENSION's loading failing; sets output and status.
run() {
  local extension=$1 nth=$2
  shift 2
  set +e
  # Only what is set here, and the sanitizers' options (tests/run sets them).
  local sanitizers=()
  for name in ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS; do
    if [ -n "${!name:-}" ]; then sanitizers+=("$name=${!name}"); fi
  done
  output=$(env -i PATH="$PATH" "${sanitizers[@]}" SHOAL_MIGRATE=false SHOAL_PORT=0 SHOAL_NODE_NAME=setup-failures \
    DATABASE_URL=postgresql://127.0.0.1:1/none REDIS_URL=redis://127.0.0.1:1/0 \
    SHOAL_TEST_FAIL_EXTENSION="$extension" SHOAL_TEST_FAIL_ALLOCATION="$nth" \
    timeout $((60 * time_scale)) "$@" "$node" 2>&1)
  status=$?
  set -e
}

problem() {
  echo "FAIL: $*"
  echo "$output" | tail -n 40 | sed 's/^/    /'
  problems=$((problems + 1))
}

# expect_refusal EXTENSION N [WRAPPER...]: the node exits with 1, and its
# last "start" line says that setup failed in EXTENSION, for lack of memory.
expect_refusal() {
  run "$@"
  local last
  last=$(echo "$output" | grep '"event":"start"' | tail -n 1 || true)
  if [ "$status" -ne 1 ]; then
    problem "$1, allocation $2: exit status $status, not 1"
  elif echo "$output" | grep -q 'ERROR: [A-Za-z]*Sanitizer\|runtime error:'; then
    # ASan exits with 1 too when it finds leaks at exit.
    problem "$1, allocation $2: a sanitizer report"
  elif echo "$output" | grep -q '"message":"serving on'; then
    problem "$1, allocation $2: the node served"
  elif ! echo "$last" | grep -q "\"level\":\"error\".*\"message\":\"setup failed, not serving: extension $1: .*out of memory"; then
    problem "$1, allocation $2: the last start line does not name the extension and why: $last"
  else
    return 0
  fi
  return 1
}

# walk EXTENSION: every allocation of loading EXTENSION, one at a time;
# sets allocations to their number.
walk() {
  allocations=0
  while :; do
    run "$1" $((allocations + 1))
    if echo "$output" | grep -q "setup_failures_node: $1 made fewer than $((allocations + 1)) allocations"; then
      break
    fi
    expect_refusal "$1" $((allocations + 1)) || return 0
    allocations=$((allocations + 1))
  done
  echo "$1: refused at each of its $allocations allocations"
}

# The first allocation of every extension's init (node/bin/main.c's order).
for extension in request-id security_headers cors rate-limit session idempotency health metrics techempower realworld; do
  expect_refusal "$extension" 2 || true
done
echo "every extension: refused at the first allocation of its init"
# The two that leaked or dangled (issue 14), at every step, and their last
# step once more under the wrapper.
for extension in idempotency rate-limit; do
  walk "$extension"
  if [ ${#wrapper[@]} -gt 0 ] && [ "$allocations" -gt 0 ]; then
    expect_refusal "$extension" "$allocations" "${wrapper[@]}" && echo "$extension: the same under ${wrapper[0]}"
  fi
done

if [ "$problems" -gt 0 ]; then
  echo "$problems problems"
  exit 1
fi
