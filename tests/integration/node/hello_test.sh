#!/usr/bin/env bash
# tests/integration/node/hello_test.sh: services built on shoal_main
# (examples/hello and examples/minimal.c) as whole nodes against the
# fixture's real PostgreSQL and Redis, on free ports (--port 0
# --admin-port 0, read back from the start line of the log):
#   - hello's --help lists --greeting (HELLO_GREETING) beside the library's
#     --port, in a section of its own, and none of the demo's settings;
#     --version names hello and libshoal
#   - a bad --greeting exits 2 naming it; an unknown flag or command exits 2
#   - `migrate` in a database of hello's own applies its migration (the
#     row "hello 1 greetings" in shoal_migrations, the greetings table) and
#     creates no demo table (world, fortune, users, articles) nor 0.1's
#     schema_migrations; a second run applies nothing; minimal.c (no
#     migrations) says so and touches nothing
#   - serving: its route answers (the flag wins over HELLO_GREETING), with
#     the standard extensions' request id; /healthz, /readyz, /metrics
#     answer on the admin port and /readyz is 404 on the public one
#   - its own metrics on /metrics: hello_greetings_total{audience} counts
#     the greeting by audience (every value listed), the histogram
#     hello_name_bytes has its buckets, sum and count, and promtool (when
#     installed) accepts the text
#   - SIGTERM: /readyz turns 503, the node drains and exits 0
#   - minimal.c: --version, its route, /healthz, SIGTERM exits 0
#
#   hello_test.sh HELLO MINIMAL [WRAPPER...]
# WRAPPER (tests/valgrind's, for example) runs each node under it.
set -euo pipefail
hello=$1
minimal=$2
shift 2
wrapper=("$@")
# shellcheck source=SCRIPTDIR/../../support/node_checks.sh
source "$(dirname "$0")/../../support/node_checks.sh"
scale=$(time_scale)

node_pid=""
log=$(mktemp)
: "${SHOAL_TEST_DATABASE_URL:?run by ctest with the tiers fixture}" "${SHOAL_TEST_REDIS_URL:?}"
: "${SHOAL_TEST_ADMIN_DATABASE_URL:?}"

# hello's own database (the fixture's shoal database has the demo's
# tables); named after this run, so that deploy.hello_test may run beside.
hello_db=hello_test_$$
admin_psql() { psql "$SHOAL_TEST_ADMIN_DATABASE_URL" -XAtq -v ON_ERROR_STOP=1 "$@"; }
hello_url=$(sed -E "s#/shoal([?]|\$)#/$hello_db\\1#" <<<"$SHOAL_TEST_DATABASE_URL")
hello_psql() { psql "$hello_url" -XAtq -v ON_ERROR_STOP=1 "$@"; }
admin_psql -c "DROP DATABASE IF EXISTS $hello_db WITH (FORCE)" -c "CREATE DATABASE $hello_db OWNER shoal"
trap 'stop_pid "$node_pid" KILL; rm -f "$log"; admin_psql -c "DROP DATABASE IF EXISTS $hello_db WITH (FORCE)" || true' EXIT

# run_status COMMAND...: sets out (stdout and stderr) and rc.
run_status() {
  set +e
  out=$("$@" 2>&1)
  rc=$?
  set -e
}

# start BINARY [ARGS...]: the node on free ports against the fixture's
# tiers; sets node_pid, port and admin_port once it serves.
start() {
  local binary=$1
  shift
  : >"$log"
  env DATABASE_URL="$hello_url" REDIS_URL="$SHOAL_TEST_REDIS_URL" SHOAL_PORT=0 SHOAL_ADMIN_PORT=0 \
    SHOAL_THREADS=2 SHOAL_NODE_NAME=hello-test SHOAL_DRAIN_DELAY_MS=$((1500 * scale)) \
    SHOAL_GRACE_PERIOD_MS=2000 "${extra_env[@]}" "${wrapper[@]}" "$binary" "$@" 2>"$log" &
  node_pid=$!
  wait_serving "$log" "$node_pid" || return 1
  port=$serving_port
  admin_port=$serving_admin_port
}

# get PORT PATH: sets status and body.
get() {
  local answer
  answer=$(curl -s -i --max-time $((5 * scale)) "http://127.0.0.1:$1$2" || true)
  status=$(head -n 1 <<<"$answer" | awk '{print $2}')
  body=$(sed '1,/^\r$/d' <<<"$answer")
  headers=$(sed '/^\r$/q' <<<"$answer")
}

# sigterm_drains NAME: SIGTERM, /readyz 503 while draining, then exit 0 and
# nothing listens.
sigterm_drains() {
  local pid=$node_pid rc=0 drained=no
  node_pid=""
  kill -TERM "$pid"
  for _ in $(seq $((40 * scale))); do
    get "$admin_port" /readyz
    if [ "$status" = 503 ]; then drained=yes; break; fi
    sleep 0.05
  done
  check "$1: /readyz answers 503 after SIGTERM" [ "$drained" = yes ]
  wait "$pid" || rc=$?
  check "$1: exits 0 after draining (got $rc)" [ "$rc" = 0 ]
  check "$1: logged the drain and the stop" \
    bash -c "grep -q 'SIGTERM: draining' '$log' && grep -q '\"message\":\"stopped\"' '$log'"
  get "$port" /hello/world
  check "$1: nothing listens afterwards" [ -z "$status" ]
  check "$1: no sanitizer report in its log" \
    bash -c "! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' '$log'"
}

extra_env=()

# ---- hello: --help, --version, bad settings ----------------------------------
# Only --help runs under the wrapper: the parse, --version and the exits
# for bad settings are shoal_main's in-process paths, which unit.node.lib.settings
# already runs under valgrind and the sanitizers; each start under valgrind
# costs seconds.
run_status "${wrapper[@]}" "$hello" --help
check "hello --help exits 0" [ "$rc" = 0 ]
check "--help lists --greeting with HELLO_GREETING" grep -qE '^  --greeting +HELLO_GREETING$' <<<"$out"
check "--help lists the library's --port beside it" grep -qE '^  --port +SHOAL_PORT$' <<<"$out"
check "--help: hello's settings under their own heading, before the library's" \
  bash -c "grep -nE '^(hello|libshoal [0-9.]+ \\(every node\\)):$' <<<\"\$1\" | cut -d: -f2 | tr '\n' ' ' |
           grep -qE '^hello libshoal'" _ "$out"
check "--help names no demo setting (--api, --bench, --api-max-limit, --login-failures-*)" \
  bash -c "! grep -qE '^  --(api|bench|api-max-limit|login-failures-per-address|login-failures-per-account) ' <<<\"\$1\"" _ "$out"
check "--help names no password setting (hello hashes none)" \
  bash -c "! grep -qE '^  --password-' <<<\"\$1\"" _ "$out"
check "--help: --rate-limits defaults to none for hello (Conduit's rules are shoal-node's)" \
  bash -c "grep -A1 -E '^  --rate-limits +SHOAL_RATE_LIMITS$' <<<\"\$1\" | grep -qE '\\(default: empty\\)$'" _ "$out"
check "--help: the standard extensions' settings under their owners (rate limits, sessions)" \
  bash -c "grep -qx 'rate limits:' <<<\"\$1\" && grep -qx 'sessions:' <<<\"\$1\"" _ "$out"
check "--help offers no seed command" bash -c "! grep -q 'seed' <<<\"\$1\"" _ "$out"
run_status "$hello" --version
check "hello --version names hello and libshoal (got: $out)" \
  grep -qE '^hello 0\.1\.0 \(libshoal [0-9]+\.[0-9]+\.[0-9]+\)$' <<<"$out"
run_status "$hello" --greeting ''
check "an empty --greeting exits 2 (got $rc)" [ "$rc" = 2 ]
check "the message names --greeting" grep -q -- '--greeting' <<<"$out"
run_status env HELLO_GREETING= "$hello"
check "an empty HELLO_GREETING exits 2 naming it (got $rc: $out)" \
  bash -c "[ $rc = 2 ] && grep -q HELLO_GREETING <<<\"\$1\"" _ "$out"
run_status "$hello" --no-such-flag
check "an unknown flag exits 2 (got $rc)" [ "$rc" = 2 ]
run_status "$hello" seed
check "an unknown command exits 2 naming the commands (got $rc: $out)" \
  bash -c "[ $rc = 2 ] && grep -q \"unknown command 'seed' (commands: serve, migrate)\" <<<\"\$1\"" _ "$out"

# ---- hello's own migrations ------------------------------------------------------
run_status env DATABASE_URL="$hello_url" "${wrapper[@]}" "$hello" migrate
check "hello migrate exits 0 (got $rc: $out)" [ "$rc" = 0 ]
check "and logs its own component (got: $out)" grep -q '"message":"schema: hello 1 (1 applied now)"' <<<"$out"
check "its migration is recorded as component hello" \
  [ "$(hello_psql -c "SELECT string_agg(component || ' ' || version || ' ' || name, ',') FROM shoal_migrations")" \
    = "hello 1 greetings" ]
check "its table exists" [ "$(hello_psql -c "SELECT to_regclass('greetings') IS NOT NULL")" = t ]
check "no demo table exists (world, fortune, users, articles) nor schema_migrations" \
  [ "$(hello_psql -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'
                      AND tablename IN ('world', 'fortune', 'users', 'articles', 'schema_migrations')")" = 0 ]
run_status env DATABASE_URL="$hello_url" "${wrapper[@]}" "$hello" migrate
check "a second migrate applies nothing (got: $out)" grep -q '"message":"schema: hello 1 (0 applied now)"' <<<"$out"
run_status env DATABASE_URL="$hello_url" "${wrapper[@]}" "$minimal" migrate
check "minimal migrate (no migrations) exits 0 (got $rc)" [ "$rc" = 0 ]
check "and says it has none" grep -q 'hello has no migrations' <<<"$out"

# ---- hello serving -------------------------------------------------------------
extra_env=(HELLO_GREETING=Hey)
if start "$hello" --greeting Hi; then
  get "$port" /hello/world
  check "GET /hello/world answers 200 (got $status)" [ "$status" = 200 ]
  check "the flag wins over HELLO_GREETING (got $body)" [ "$body" = '{"message":"Hi, world!"}' ]
  check "with a request id (the standard extensions are on)" grep -qi '^X-Request-ID: ' <<<"$headers"
  check "and the security headers" grep -qi '^X-Content-Type-Options: nosniff' <<<"$headers"
  get "$admin_port" /healthz
  check "admin /healthz answers 200 (got $status)" [ "$status" = 200 ]
  get "$admin_port" /readyz
  check "admin /readyz answers 200 (got $status: $body)" [ "$status" = 200 ]
  check "and sees both tiers up" bash -c "jq -e '.postgres == \"up\" and .redis == \"up\"' >/dev/null <<<\"\$1\"" _ "$body"
  get "$admin_port" /metrics
  check "admin /metrics answers 200 (got $status)" [ "$status" = 200 ]
  check "and counts hello's route" grep -q 'route="/hello/:name"' <<<"$body"
  check "hello's own counter: one greeting of the world" grep -qx 'hello_greetings_total{audience="world"} 1' <<<"$body"
  check "every audience listed, before anyone is greeted" grep -qx 'hello_greetings_total{audience="someone"} 0' <<<"$body"
  check "with its help and type" bash -c "grep -qx '# TYPE hello_greetings_total counter' <<<\"\$1\" &&
    grep -q '^# HELP hello_greetings_total Greetings answered' <<<\"\$1\"" _ "$body"
  check "hello's histogram: \"world\" (5 bytes) in the le=8 bucket, none in le=4" \
    bash -c "grep -qx 'hello_name_bytes_bucket{le=\"4\"} 0' <<<\"\$1\" &&
             grep -qx 'hello_name_bytes_bucket{le=\"8\"} 1' <<<\"\$1\" &&
             grep -qx 'hello_name_bytes_bucket{le=\"+Inf\"} 1' <<<\"\$1\" &&
             grep -qx 'hello_name_bytes_sum 5' <<<\"\$1\" && grep -qx 'hello_name_bytes_count 1' <<<\"\$1\"" _ "$body"
  if command -v promtool >/dev/null; then
    check "promtool check metrics accepts hello's /metrics" bash -c 'promtool check metrics <<<"$1"' _ "$body"
  else
    echo "# promtool is not installed: hello's /metrics text is not linted"
  fi
  get "$port" /hello/someone-else
  get "$admin_port" /metrics
  check "another name counts as someone" grep -qx 'hello_greetings_total{audience="someone"} 1' <<<"$body"
  check "and the world's count stays" grep -qx 'hello_greetings_total{audience="world"} 1' <<<"$body"
  check "no name becomes a label" bash -c "! grep -q 'someone-else' <<<\"\$1\"" _ "$body"
  get "$port" /readyz
  check "the public port answers /readyz 404 (got $status)" [ "$status" = 404 ]
  check "the log names the service and the library" grep -q '"message":"hello 0.1.0 (libshoal ' "$log"
  sigterm_drains hello
else
  check "hello serves" false
fi

# ---- minimal.c -----------------------------------------------------------------
extra_env=()
run_status "$minimal" --version
check "minimal --version (got: $out)" grep -qE '^hello 1\.0\.0 \(libshoal [0-9.]+\)$' <<<"$out"
if start "$minimal"; then
  get "$port" /hello/world
  check "minimal: GET /hello/world (got $status $body)" \
    bash -c "[ '$status' = 200 ] && [ \"\$1\" = '{\"hello\":\"world\"}' ]" _ "$body"
  get "$admin_port" /healthz
  check "minimal: admin /healthz answers 200 (got $status)" [ "$status" = 200 ]
  sigterm_drains minimal
else
  check "minimal serves" false
fi

checks_summary
