#!/usr/bin/env bash
# tests/integration/node/hello_user_test.sh: examples/hello/tests/hello_test.sh,
# the black-box script a user runs against a running hello, run here against
# a real one (the in-tree build of examples/hello, on free ports, in a
# database of its own on the fixture's PostgreSQL, with the fixture's Redis):
#   - it passes against hello's public and admin ports, and against the
#     public port alone (the admin checks skipped, and it says so)
#   - it fails, naming the check, when the admin URL is not an admin port
#     (the public one), and when nothing listens
#
#   hello_user_test.sh HELLO
set -euo pipefail
hello=$1
here=$(cd "$(dirname "$0")" && pwd)
script=$here/../../../examples/hello/tests/hello_test.sh
# shellcheck source=SCRIPTDIR/../../support/node_checks.sh
source "$here/../../support/node_checks.sh"
: "${SHOAL_TEST_DATABASE_URL:?run by ctest with the tiers fixture}" "${SHOAL_TEST_REDIS_URL:?}"
: "${SHOAL_TEST_ADMIN_DATABASE_URL:?}"
scale=$(time_scale)

node_pid=""
log=$(mktemp)
hello_db=hello_user_test_$$
admin_psql() { psql "$SHOAL_TEST_ADMIN_DATABASE_URL" -XAtq -v ON_ERROR_STOP=1 "$@"; }
hello_url=$(sed -E "s#/shoal([?]|\$)#/$hello_db\\1#" <<<"$SHOAL_TEST_DATABASE_URL")
admin_psql -c "DROP DATABASE IF EXISTS $hello_db WITH (FORCE)" -c "CREATE DATABASE $hello_db OWNER shoal"
trap 'stop_pid "$node_pid" KILL; rm -f "$log"; admin_psql -c "DROP DATABASE IF EXISTS $hello_db WITH (FORCE)" || true' EXIT

# hello on free ports; it applies its migration at start.
env DATABASE_URL="$hello_url" REDIS_URL="$SHOAL_TEST_REDIS_URL" SHOAL_PORT=0 SHOAL_ADMIN_PORT=0 \
  SHOAL_THREADS=2 SHOAL_NODE_NAME=hello-user-test "$hello" 2>"$log" &
node_pid=$!
wait_serving "$log" "$node_pid" || exit 1
port=$serving_port
admin_port=$serving_admin_port
# Readiness turns 200 once the workers' connections are open.
for _ in $(seq $((100 * scale))); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$admin_port/readyz")" = 200 ] && break
  sleep 0.05
done

# run_script ARGS...: sets out and rc.
run_script() {
  set +e
  out=$("$script" "$@" 2>&1)
  rc=$?
  set -e
}

run_script "http://127.0.0.1:$port" "http://127.0.0.1:$admin_port"
check "the script passes against hello's public and admin ports (exit $rc)" [ "$rc" = 0 ]
check "its admin checks ran too, and none failed" \
  bash -c "grep -q '^ok     - counting GET /hello/:name\$' <<<\"\$1\" && grep -qE '^# [0-9]+ passed, 0 failed\$' <<<\"\$1\"" _ "$out"
[ "$rc" = 0 ] || echo "$out"
run_script "http://127.0.0.1:$port/"
check "it passes against the public port alone (exit $rc)" [ "$rc" = 0 ]
check "and says the admin checks were skipped" grep -q '^# no ADMIN_URL' <<<"$out"

run_script "http://127.0.0.1:$port" "http://127.0.0.1:$port"
check "it fails when the admin URL is the public port (exit $rc)" [ "$rc" = 1 ]
check "naming admin /readyz" grep -q '^not ok - admin /readyz answers 200 (got 404' <<<"$out"
stop_pid "$node_pid" INT
node_pid=""
run_script "http://127.0.0.1:$port" "http://127.0.0.1:$admin_port"
check "it fails when nothing listens (exit $rc)" [ "$rc" = 1 ]
check "naming the route" grep -q '^not ok - GET /hello/world answers 200 (got no answer)' <<<"$out"

checks_summary
