#!/usr/bin/env bash
# tests/integration/node/redis_prefix_test.sh: services sharing one Redis
# (the fixture's), as whole nodes on free ports.
#
# prefix: shoal-node (prefix "", 0.1's layout), prefix-node
# (tests/integration/node/lib/prefix_node.c: default prefix "prefix-node:") and
# a second prefix-node with --redis-prefix other: --session-prefix ""
# (sharing the demo's sessions on purpose):
#   - a demo token is refused (401) by prefix-node and accepted by the one
#     that shares the demo's sessions; prefix-node's token is refused by
#     both others; its keys are prefix-node:session:<hex> and
#     prefix-node:session:user:<id>
#   - a rate limit spent on one service leaves the other's bucket alone
#   - an invalidation by prefix-node bumps prefix-node:shoal:cv:user and is
#     published on prefix-node:shoal:invalidate only: the demo's and the
#     other's versions of the family (shoal:cv:user, other:shoal:cv:user)
#     stay, their channels carry nothing
#   - --redis-prefix values that are not prefixes exit 2 naming the flag
# legacy: shoal-node with sessions written in 0.1's exact layout (a
# session:<hex> hash and the session:user:<id> set, made here by hand):
#   - GET /api/user answers 200 for the user, and the lookup slides both
#     TTLs; a login writes 0.1's layout (old nodes read it)
#   - logout deletes the key and takes it out of the user's set; a password
#     change revokes the rest (the set then holds the new session only)
#
#   redis_prefix_test.sh prefix|legacy SHOAL_NODE PREFIX_NODE [WRAPPER...]
set -euo pipefail
mode=$1
demo=$2
prefix_node=$3
shift 3
wrapper=("$@")
# shellcheck source=SCRIPTDIR/../../support/node_checks.sh
source "$(dirname "$0")/../../support/node_checks.sh"
scale=$(time_scale)
: "${SHOAL_TEST_DATABASE_URL:?run by ctest with the tiers fixture}" "${SHOAL_TEST_REDIS_URL:?}"

tmp=$(mktemp -d)
declare -A pids ports
subscriber=""
cleanup() {
  local name
  for name in "${!pids[@]}"; do stop_pid "${pids[$name]}" KILL; done
  stop_pid "$subscriber" TERM
  rm -rf "$tmp"
}
trap cleanup EXIT

redis() { redis-cli -u "$SHOAL_TEST_REDIS_URL" "$@"; }
db_psql() { psql "$SHOAL_TEST_DATABASE_URL" -XAtq -v ON_ERROR_STOP=1 "$@"; }

# start NAME BINARY [ARGS...]: a node on free ports; sets pids[NAME] and
# ports[NAME] once it serves.
start() {
  local name=$1 binary=$2
  shift 2
  local log="$tmp/$name.log"
  env DATABASE_URL="$SHOAL_TEST_DATABASE_URL" REDIS_URL="$SHOAL_TEST_REDIS_URL" SHOAL_PORT=0 SHOAL_ADMIN_PORT=0 \
    SHOAL_THREADS=2 SHOAL_NODE_NAME="$name" SHOAL_RATE_LIMITS= SHOAL_PASSWORD_MEM_LIMIT=8m \
    "${wrapper[@]}" "$binary" "$@" 2>"$log" &
  pids[$name]=$!
  wait_serving "$log" "${pids[$name]}" $((300 * scale)) || return 1
  ports[$name]=$serving_port
}

# stop NAME: SIGINT, exit 0, no sanitizer report.
stop() {
  local name=$1 rc=0
  kill -INT "${pids[$name]}" 2>/dev/null || true
  wait "${pids[$name]}" || rc=$?
  unset "pids[$name]"
  check "$name exits 0 (got $rc)" [ "$rc" = 0 ]
  check "no sanitizer report in $name's log" \
    bash -c "! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' '$tmp/$name.log'"
}

# call NAME METHOD PATH [TOKEN [BODY]]: sets status and body.
call() {
  local port=${ports[$1]} method=$2 path=$3 token=${4:-} data=${5:-}
  local args=(-s -o "$tmp/body" -w '%{http_code}' --max-time $((10 * scale)) -X "$method")
  [ -n "$token" ] && args+=(-H "Authorization: Token $token")
  [ -n "$data" ] && args+=(-H 'Content-Type: application/json' --data "$data")
  status=$(curl "${args[@]}" "http://127.0.0.1:$port$path" || true)
  body=$(cat "$tmp/body" 2>/dev/null || true)
}

# session_hex TOKEN: the 32 hex digits that name the token's session key
# (the first half of BLAKE2b-256 of its bytes; cache/session.h).
session_hex() {
  /usr/bin/python3 -c '
import base64, hashlib, sys
raw = base64.urlsafe_b64decode(sys.argv[1] + "=")
print(hashlib.blake2b(raw, digest_size=32).hexdigest()[:32])' "$1"
}

# register NAME: a demo user; sets token and user_id.
register() {
  local name=$1
  call demo POST /api/users "" \
    "{\"user\":{\"username\":\"$name\",\"email\":\"$name@example.com\",\"password\":\"password123\"}}"
  token=$(jq -r '.user.token // empty' <<<"$body" 2>/dev/null || true)
  user_id=$(db_psql -c "SELECT id FROM users WHERE username = '$name'")
  check "the demo registers $name (got $status)" bash -c "[ '$status' = 201 ] && [ -n '$token' ] && [ -n '$user_id' ]"
}

prefix_checks() {
  # ---- settings ----------------------------------------------------------------
  local rc=0 out
  out=$("${wrapper[@]}" "$prefix_node" --redis-prefix 'two words' --version 2>&1) || rc=$?
  check "--redis-prefix 'two words' exits 2 naming the flag (got $rc: $out)" \
    bash -c "[ $rc = 2 ] && grep -q -- '--redis-prefix' <<<\"\$1\"" _ "$out"
  rc=0
  out=$(SHOAL_REDIS_PREFIX=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa "${wrapper[@]}" "$prefix_node" --version 2>&1) || rc=$?
  check "a SHOAL_REDIS_PREFIX of 41 bytes exits 2 naming it (got $rc: $out)" \
    bash -c "[ $rc = 2 ] && grep -q 'SHOAL_REDIS_PREFIX (--redis-prefix).*longer than 40 bytes' <<<\"\$1\"" _ "$out"
  out=$("${wrapper[@]}" "$prefix_node" --help)
  check "prefix-node --help: --redis-prefix defaults to 'prefix-node:'" \
    grep -q '(default: prefix-node:)$' <<<"$out"

  local rule='GET /limited=2/min burst 2'
  start demo "$demo"
  start own "$prefix_node" --rate-limits "$rule"
  start other "$prefix_node" --redis-prefix other: --session-prefix '' --rate-limits "$rule"

  # ---- sessions ------------------------------------------------------------------
  register "prefix$$"
  local demo_token=$token demo_user=$user_id
  call own GET /whoami "$demo_token"
  check "prefix-node refuses the demo's token: 401 (got $status $body)" [ "$status" = 401 ]
  call other GET /whoami "$demo_token"
  check "the service sharing the demo's sessions on purpose accepts it (got $status $body)" \
    [ "$status $body" = "200 {\"user\":$demo_user}" ]
  call demo GET /api/user "$demo_token"
  check "and the demo still does (got $status)" [ "$status" = 200 ]

  local id=$((900000000 + $$))
  call own POST "/login/$id"
  local own_token
  own_token=$(jq -r '.token // empty' <<<"$body" 2>/dev/null || true)
  check "prefix-node makes a session (got $status)" bash -c "[ '$status' = 200 ] && [ -n '$own_token' ]"
  call own GET /whoami "$own_token"
  check "and accepts it (got $status $body)" [ "$status $body" = "200 {\"user\":$id}" ]
  call demo GET /api/user "$own_token"
  check "the demo refuses prefix-node's token: 401 (got $status)" [ "$status" = 401 ]
  call other GET /whoami "$own_token"
  check "so does the other prefix-node (got $status)" [ "$status" = 401 ]
  local hex
  hex=$(session_hex "$own_token")
  check "its session key is prefix-node:session:<hex>" [ "$(redis EXISTS "prefix-node:session:$hex")" = 1 ]
  check "in prefix-node:session:user:<id>" \
    [ "$(redis SISMEMBER "prefix-node:session:user:$id" "prefix-node:session:$hex")" = 1 ]
  check "and nothing under 0.1's names" \
    [ "$(redis EXISTS "session:$hex" "session:user:$id" "other:session:user:$id")" = 0 ]

  # ---- rate limits ------------------------------------------------------------------
  local seen=""
  for _ in 1 2 3; do call own GET /limited; seen="$seen $status"; done
  check "prefix-node's bucket: 200 200 429 (got$seen)" [ "$seen" = " 200 200 429" ]
  call other GET /limited
  check "the other service's bucket is its own: 200 (got $status)" [ "$status" = 200 ]
  check "the buckets are prefix-node:rl:route:* and other:rl:route:*" \
    bash -c "[ -n \"\$(redis-cli -u '$SHOAL_TEST_REDIS_URL' --scan --pattern 'prefix-node:rl:route:*')\" ] &&
             [ -n \"\$(redis-cli -u '$SHOAL_TEST_REDIS_URL' --scan --pattern 'other:rl:route:*')\" ]"

  # ---- invalidation ------------------------------------------------------------------
  # The demo's GET /api/user above read through family "user"; the other
  # service's version of it is made before anyone listens.
  local family="user"
  call other POST "/invalidate/$family"
  local channels=(shoal:invalidate prefix-node:shoal:invalidate other:shoal:invalidate) subscribed=no
  for _ in $(seq $((100 * scale))); do
    # NUMSUB answers channel, count, channel, count...
    if redis PUBSUB NUMSUB "${channels[@]}" | awk 'NR % 2 == 0 && $1 < 1 {missing = 1} END {exit missing}'; then
      subscribed=yes
      break
    fi
    sleep 0.05
  done
  check "each service's node subscribes to its own channel (${channels[*]})" [ "$subscribed" = yes ]
  stdbuf -oL redis-cli -u "$SHOAL_TEST_REDIS_URL" SUBSCRIBE "${channels[@]}" >"$tmp/messages" 2>&1 &
  subscriber=$!
  for _ in $(seq $((100 * scale))); do
    [ "$(grep -c '^subscribe$' "$tmp/messages")" = 3 ] && break
    sleep 0.05
  done
  check "a listener on the three channels" [ "$(grep -c '^subscribe$' "$tmp/messages")" = 3 ]
  local demo_version other_version
  demo_version=$(redis GET "shoal:cv:$family")
  other_version=$(redis GET "other:shoal:cv:$family")
  check "the demo and the other service have versions of $family ($demo_version, $other_version)" \
    bash -c "[ -n '$demo_version' ] && [ -n '$other_version' ] && [ '$demo_version' != '$other_version' ]"
  call own POST "/invalidate/$family"
  check "prefix-node invalidates $family (got $status)" [ "$status" = 204 ]
  local own_version
  own_version=$(redis GET "prefix-node:shoal:cv:$family")
  for _ in $(seq $((100 * scale))); do
    grep -q "^F $own_version $family\$" "$tmp/messages" && break
    sleep 0.05
  done
  call other POST /invalidate/tags # a message after it on another channel: all came in order
  for _ in $(seq $((100 * scale))); do
    grep -q "^F [0-9]* tags\$" "$tmp/messages" && break
    sleep 0.05
  done
  stop_pid "$subscriber" TERM
  subscriber=""
  local published
  published=$(awk 'previous == "message" {printf "%s ", $0} {previous = $0}' "$tmp/messages")
  check "published on prefix-node:shoal:invalidate, and the other's on its own (got: $published)" \
    [ "$published" = "prefix-node:shoal:invalidate other:shoal:invalidate " ]
  check "the message names prefix-node's new version $own_version" grep -q "^F $own_version $family\$" "$tmp/messages"
  check "the demo's version of $family is untouched" [ "$(redis GET "shoal:cv:$family")" = "$demo_version" ]
  check "the other service's too" [ "$(redis GET "other:shoal:cv:$family")" = "$other_version" ]

  stop other
  stop own
  stop demo
}

legacy_checks() {
  start demo "$demo"
  register "legacy$$"
  local id=$user_id name="legacy$$"
  # A session as 0.1 wrote it: token, then its key and verifier by hand.
  local made token key verifier
  made=$(/usr/bin/python3 -c '
import base64, hashlib, os
raw = os.urandom(32)
digest = hashlib.blake2b(raw, digest_size=32).hexdigest()
print(base64.urlsafe_b64encode(raw).decode().rstrip("="), "session:" + digest[:32], digest[32:])')
  read -r token key verifier <<<"$made"
  redis HSET "$key" user "$id" created "$(date +%s)" verifier "$verifier" >/dev/null
  redis EXPIRE "$key" 3600 >/dev/null
  redis SADD "session:user:$id" "$key" >/dev/null
  redis EXPIRE "session:user:$id" 3600 >/dev/null
  call demo GET /api/user "$token"
  check "GET /api/user with a session in 0.1's layout: 200 (got $status $body)" [ "$status" = 200 ]
  check "for its user" [ "$(jq -r '.user.username' <<<"$body" 2>/dev/null)" = "$name" ]
  check "the lookup slid the session's TTL" [ "$(redis TTL "$key")" -gt 3600 ]
  check "and its user's set's" [ "$(redis TTL "session:user:$id")" -gt 3600 ]

  call demo POST /api/users/login "" "{\"user\":{\"email\":\"$name@example.com\",\"password\":\"password123\"}}"
  local second
  second=$(jq -r '.user.token // empty' <<<"$body" 2>/dev/null || true)
  check "a login on the new node (got $status)" bash -c "[ '$status' = 200 ] && [ -n '$second' ]"
  local second_key
  second_key="session:$(session_hex "$second")"
  check "writes 0.1's layout: session:<hex> in session:user:<id>" \
    bash -c "[ \"\$(redis-cli -u '$SHOAL_TEST_REDIS_URL' SISMEMBER 'session:user:$id' '$second_key')\" = 1 ] &&
             [ \"\$(redis-cli -u '$SHOAL_TEST_REDIS_URL' HGET '$second_key' user)\" = '$id' ]"

  call demo POST /api/users/logout "$token"
  check "logout of the 0.1 session answers 2xx (got $status)" [ "${status:0:1}" = 2 ]
  check "deletes its key" [ "$(redis EXISTS "$key")" = 0 ]
  check "and takes it out of the user's set" [ "$(redis SISMEMBER "session:user:$id" "$key")" = 0 ]
  call demo GET /api/user "$token"
  check "the token is refused afterwards (got $status)" [ "$status" = 401 ]
  call demo GET /api/user "$second"
  check "the other session lives on (got $status)" [ "$status" = 200 ]
  call demo PUT /api/user "$second" '{"user":{"password":"password456"}}'
  local third
  third=$(jq -r '.user.token // empty' <<<"$body" 2>/dev/null || true)
  check "a password change (got $status)" bash -c "[ '$status' = 200 ] && [ -n '$third' ]"
  check "revokes the user's sessions (the second key is gone)" [ "$(redis EXISTS "$second_key")" = 0 ]
  check "and leaves only the new one in the user's set" \
    [ "$(redis SMEMBERS "session:user:$id")" = "session:$(session_hex "$third")" ]
  stop demo
}

case $mode in
prefix) prefix_checks ;;
legacy) legacy_checks ;;
*) echo "unknown mode $mode"; exit 2 ;;
esac
checks_summary
