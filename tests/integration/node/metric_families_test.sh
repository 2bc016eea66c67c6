#!/usr/bin/env bash
# tests/integration/node/metric_families_test.sh: what shoal-node's
# GET /metrics offers, as a dashboard or an alert sees it, stays what
# metric_families.txt lists: every family's HELP and TYPE line, in order,
# and every series by its labels, with their values for the families of a
# fixed label set (cache read sources, session results, shed reasons) and
# the label names alone for the per-route families (their values follow
# the traffic). The text also passes `promtool check metrics`.
# Families moved from hand-written code to registrations (issue 15) must
# read exactly as before; a new family or label is added to the list on
# purpose (Conduit's own conduit_logins_total was, with its value checked).
#
#   metric_families_test.sh SHOAL_NODE EXPECTED_LIST [WRAPPER...]
set -euo pipefail
binary=$1
expected=$2
shift 2
wrapper=("$@")
# shellcheck source=SCRIPTDIR/../../support/node_checks.sh
source "$(dirname "$0")/../../support/node_checks.sh"
scale=$(time_scale)
: "${SHOAL_TEST_DATABASE_URL:?run by ctest with the tiers fixture}" "${SHOAL_TEST_REDIS_URL:?}"

node_pid=""
log=$(mktemp)
scrape=$(mktemp)
trap 'stop_pid "$node_pid" KILL; rm -f "$log" "$scrape"' EXIT

env DATABASE_URL="$SHOAL_TEST_DATABASE_URL" REDIS_URL="$SHOAL_TEST_REDIS_URL" SHOAL_PORT=0 SHOAL_ADMIN_PORT=0 \
  SHOAL_THREADS=2 SHOAL_NODE_NAME=metric-families SHOAL_PASSWORD_MEM_LIMIT=8m "${wrapper[@]}" "$binary" 2>"$log" &
node_pid=$!
wait_serving "$log" "$node_pid" || exit 1
port=$serving_port
admin_port=$serving_admin_port

# A route answered, so that the per-route families have series; and a
# login with an email nobody has, which Conduit counts as its own.
curl -s -o /dev/null --max-time $((5 * scale)) "http://127.0.0.1:$port/json" || true
login_status=$(curl -s -o /dev/null -w '%{http_code}' --max-time $((10 * scale)) -H 'Content-Type: application/json' \
  -d '{"user":{"email":"nobody-'"$$"'@example.com","password":"not-a-password"}}' \
  "http://127.0.0.1:$port/api/users/login" || true)
check "a login with an unknown email answers 401" [ "$login_status" = 401 ]
check "GET /metrics answers 200" \
  [ "$(curl -s -o "$scrape" -w '%{http_code}' --max-time $((5 * scale)) "http://127.0.0.1:$admin_port/metrics")" = 200 ]

# HELP and TYPE lines as they are; samples without their value, the
# per-route and per-worker ones without their label values; each shape once.
families=$(sed -E -e '/^#/b' -e 's/ [^ ]+$//' \
                  -e '/^shoal_http_(request(s_total|_duration_seconds_)|connections)/s/="([^"\\]|\\.)*"//g' "$scrape" |
           awk '!seen[$0]++')
if diff -u "$expected" <(printf '%s\n' "$families"); then
  check "the families, their help, types and label sets are the listed ones" true
else
  check "the families, their help, types and label sets are the listed ones (diff above: - listed, + served)" false
fi
check "promtool check metrics passes" promtool check metrics <"$scrape"
check "Conduit counted the login: conduit_logins_total{result=\"wrong_credentials\"} 1" \
  grep -qx 'conduit_logins_total{result="wrong_credentials"} 1' "$scrape"
check "and no other" grep -qx 'conduit_logins_total{result="succeeded"} 0' "$scrape"

stop_node
checks_summary
