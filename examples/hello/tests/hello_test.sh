#!/usr/bin/env bash
# examples/hello/tests/hello_test.sh: black-box checks of a running hello,
# from outside, with curl only. Run it against one replica, or through
# HAProxy, wherever hello runs (a shell, deploy/local's tiers, compose):
#
#   tests/hello_test.sh [URL [ADMIN_URL]]
#     URL        the public port, or HAProxy in front (default http://127.0.0.1:8080)
#     ADMIN_URL  one replica's admin port (--admin-port, SHOAL_ADMIN_PORT);
#                left out: the admin checks are skipped, and the script says so
#
#   tests/hello_test.sh http://127.0.0.1:8090 http://127.0.0.1:9090      # one hello by hand
#   tests/hello_test.sh http://127.0.0.1:8080 "http://$(docker-compose port --index=1 hello 9080)"
#
# What it checks:
#   - GET /hello/world: 200, JSON {"message":"<greeting>, world!"}, a
#     request id, the security headers
#   - an unknown path: 404 with the JSON error envelope (route.not_found)
#   - the public port: /healthz 200, /readyz 404 (served on the admin port only)
#   - the admin port: /healthz 200; /readyz 200 with PostgreSQL and Redis up;
#     /metrics in the Prometheus text format, counting GET /hello/:name
#     and hello's own hello_greetings_total
#     (through a load balancer: after up to 64 more greetings, until that
#     replica has had one)
# Exit status: 0 when every check passed, 1 otherwise. It writes nothing
# but requests: safe against a deployment people use.
set -uo pipefail

URL=${1:-http://127.0.0.1:8080}
URL=${URL%/}
ADMIN_URL=${2:-}
ADMIN_URL=${ADMIN_URL%/}

passed=0
failed=0
check() { # DESCRIPTION COMMAND...
  local description=$1; shift
  if "$@"; then passed=$((passed + 1)); echo "ok     - $description"
  else failed=$((failed + 1)); echo "not ok - $description"; fi
}

# get URL: sets status, headers and body (status empty: no answer).
get() {
  local answer
  answer=$(curl -s -i --max-time 5 "$1") || answer=""
  status=$(head -n 1 <<<"$answer" | awk '{print $2}')
  headers=$(sed '/^\r$/q' <<<"$answer")
  body=$(sed '1,/^\r$/d' <<<"$answer")
}
has_header() { grep -qi "^$1" <<<"$headers"; }
body_matches() { grep -qE -- "$1" <<<"$body"; }

echo "# hello at $URL"
get "$URL/hello/world"
check "GET /hello/world answers 200 (got ${status:-no answer})" [ "$status" = 200 ]
check "as JSON" has_header 'Content-Type: application/json'
check "with the greeting: {\"message\":\"<greeting>, world!\"} (got: $body)" \
  body_matches '^\{"message": ?"[^"]+, world!"\}$'
check "with a request id (X-Request-ID)" has_header 'X-Request-ID: [A-Za-z0-9._:@/+=-]'
check "with the security headers (X-Content-Type-Options: nosniff)" has_header 'X-Content-Type-Options: nosniff'

get "$URL/hello/world/and/more"
check "an unknown path answers 404 (got ${status:-no answer})" [ "$status" = 404 ]
check "with the JSON error envelope, code route.not_found (got: $body)" body_matches '"code": ?"route\.not_found"'

get "$URL/healthz"
check "public /healthz answers 200 (got ${status:-no answer})" [ "$status" = 200 ]
get "$URL/readyz"
check "public /readyz answers 404: readiness is on the admin port only (got ${status:-no answer})" [ "$status" = 404 ]

if [ -n "$ADMIN_URL" ]; then
  echo "# the admin port at $ADMIN_URL"
  get "$ADMIN_URL/healthz"
  check "admin /healthz answers 200 (got ${status:-no answer})" [ "$status" = 200 ]
  get "$ADMIN_URL/readyz"
  check "admin /readyz answers 200 (got ${status:-no answer}: $body)" [ "$status" = 200 ]
  check "and sees PostgreSQL and Redis up" body_matches '"postgres": ?"up".*"redis": ?"up"|"redis": ?"up".*"postgres": ?"up"'
  get "$ADMIN_URL/metrics"
  check "admin /metrics answers 200 (got ${status:-no answer})" [ "$status" = 200 ]
  check "in the Prometheus text format" body_matches '^# TYPE shoal_http_requests_total counter$'
  # Behind a load balancer, URL's requests may all have gone to other
  # replicas: greet through URL until this one has counted one (64 at most).
  for _ in $(seq 64); do
    [ "$status" = 200 ] || break
    body_matches '^shoal_http_requests_total\{.*route="/hello/:name".*\} [1-9][0-9]*$' && break
    curl -s -o /dev/null --max-time 5 "$URL/hello/world" || true
    get "$ADMIN_URL/metrics"
  done
  check "counting GET /hello/:name" body_matches '^shoal_http_requests_total\{.*route="/hello/:name".*\} [1-9][0-9]*$'
  check "and hello's own counter, hello_greetings_total{audience=\"world\"}" \
    body_matches '^hello_greetings_total\{audience="world"\} [1-9][0-9]*$'
else
  echo "# no ADMIN_URL: /healthz, /readyz and /metrics on the admin port not checked"
fi

echo "# $passed passed, $failed failed"
[ "$failed" = 0 ]
