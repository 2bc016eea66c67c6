#!/usr/bin/env bash
# tests/deploy/quick_start_test.sh SOURCE_DIR: the README's quick start as a
# new user types it, as root, from a clone in a folder the postgres user
# cannot enter (root's home is 0700 on Debian; so is a `mktemp -d` folder):
# `git clone` SOURCE_DIR into $(mktemp -d)/shoal, `deploy/local up` there with
# its default state folder (.state in the clone), /healthz through HAProxy
# and node1's admin /readyz,
# `deploy/local status` naming where PostgreSQL keeps its files, then
# `deploy/local down`: every process gone, and PostgreSQL's folder holding
# only what the design keeps (the cluster, an empty socket folder, the name
# of its state folder); `deploy/local down --purge` deletes that too.
#
# The clone is of SOURCE_DIR's commit, with the source's uncommitted changes
# to tracked files applied, so that what is tested is what is in the tree.
# SHOAL_BIN (ctest passes this build's shoal-node) spares the clone a build.
# Ports: SHOAL_QUICK_START_{LB,STATS,NODE_BASE,ADMIN_BASE,PG,REDIS}_PORT.
# Exit 77 (skipped) when not root: the postgres user only matters then.
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 SOURCE_DIR" >&2; exit 2; }
SOURCE=$1

if [ "$(id -u)" != 0 ]; then
  echo "skipped: run as root (as a user, PostgreSQL runs as that user and the state folder is its own)"
  exit 77
fi

unset SHOAL_STATE SHOAL_NODES DATABASE_URL REDIS_URL SHOAL_CACHE_URL SHOAL_SPLIT_CACHE
export SHOAL_LB_PORT=${SHOAL_QUICK_START_LB_PORT:-17480}
export SHOAL_STATS_PORT=${SHOAL_QUICK_START_STATS_PORT:-17484}
export SHOAL_NODE_BASE_PORT=${SHOAL_QUICK_START_NODE_BASE_PORT:-17481}
export SHOAL_ADMIN_BASE_PORT=${SHOAL_QUICK_START_ADMIN_BASE_PORT:-17491}
export SHOAL_PG_PORT=${SHOAL_QUICK_START_PG_PORT:-17433}
export SHOAL_REDIS_PORT=${SHOAL_QUICK_START_REDIS_PORT:-17380}
export SHOAL_DRAIN_DELAY_MS=200

START=$SECONDS
step() { echo "# [$((SECONDS - START))s] $*"; }
pass() { echo "ok   - $*"; }
fail() {
  echo "FAIL - $*"
  exit 1
}

alive() { kill -0 "$1" 2>/dev/null && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }
listening() { timeout 1 bash -c ": </dev/tcp/127.0.0.1/$1" 2>/dev/null; }

TOP=$(mktemp -d)
CLONE=$TOP/shoal
cleanup() {
  local rc=$?
  if [ "$rc" -ne 0 ] && [ -d "$CLONE/.state/logs" ]; then
    for f in "$CLONE"/.state/logs/*.log; do
      [ -f "$f" ] || continue
      echo "## $f"
      tail -n 15 "$f" | cut -c1-300
    done
  fi
  if [ -x "$CLONE/deploy/local" ]; then
    (cd "$CLONE" && deploy/local down --purge >/dev/null 2>&1) || echo "# deploy/local down --purge failed"
  fi
  rm -rf "$TOP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for port in "$SHOAL_LB_PORT" "$SHOAL_STATS_PORT" "$SHOAL_NODE_BASE_PORT" $((SHOAL_NODE_BASE_PORT + 1)) \
            "$SHOAL_PG_PORT" "$SHOAL_REDIS_PORT"; do
  if listening "$port"; then fail "port $port is free (set the SHOAL_QUICK_START_*_PORT variables)"; fi
done

step "git clone $SOURCE into $CLONE"
git clone -q "$SOURCE" "$CLONE" || fail "git clone $SOURCE"
if ! git -C "$SOURCE" diff --quiet HEAD --; then
  git -C "$SOURCE" diff --binary HEAD -- | git -C "$CLONE" apply --whitespace=nowarn \
    || fail "the source's uncommitted changes apply to the clone"
  echo "# applied the source's uncommitted changes to tracked files"
fi
top_mode=$(stat -c '%a %U' "$TOP")
clone_mode=$(stat -c '%a %U' "$CLONE")
[ "${top_mode%% *}" = 700 ] || fail "mktemp -d made a 0700 folder (it is $top_mode)"
if runuser -u postgres -- test -x "$CLONE"; then
  fail "the postgres user cannot enter $CLONE (else this test proves nothing)"
fi
pass "a clone the postgres user cannot enter ($TOP is $top_mode)"

step "deploy/local up (from the clone, its default state folder)"
cd "$CLONE"
deploy/local up || fail "deploy/local up from a clone under a 0700 folder"
pass "deploy/local up"

code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$SHOAL_LB_PORT/healthz" || true)
[ "$code" = 200 ] || fail "/healthz through HAProxy answers 200 (got $code)"
pass "/healthz through HAProxy answers 200"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$SHOAL_ADMIN_BASE_PORT/readyz" || true)
[ "$code" = 200 ] || fail "node1's admin /readyz answers 200 (got $code)"
pass "node1's admin /readyz answers 200"

[ "$(stat -c '%a %U' "$TOP")" = "$top_mode" ] || fail "$TOP kept its mode ($top_mode, now $(stat -c '%a %U' "$TOP"))"
[ "$(stat -c '%a %U' "$CLONE")" = "$clone_mode" ] \
  || fail "$CLONE kept its mode ($clone_mode, now $(stat -c '%a %U' "$CLONE"))"
pass "the user's folders kept their modes and owners"

status=$(deploy/local status) || fail "deploy/local status"
echo "$status"
data=$(sed -n 's/^postgres: data \([^,]*\), socket \([^,]*\), log .*/\1/p' <<<"$status")
socket=$(sed -n 's/^postgres: data \([^,]*\), socket \([^,]*\), log .*/\2/p' <<<"$status")
if [ -z "$data" ] || [ -z "$socket" ]; then fail "deploy/local status names PostgreSQL's data and socket folders"; fi
home=$(dirname "$data")
case $home in
  "$TOP"/*) fail "PostgreSQL's folder $home is outside the clone" ;;
esac
[ "$(dirname "$socket")" = "$home" ] || fail "the socket ($socket) is in PostgreSQL's folder ($home)"
[ "$(cat .state/pg-home 2>/dev/null)" = "$home" ] || fail "the state folder records PostgreSQL's folder in .state/pg-home"
[ "$(stat -c '%U %a' "$home")" = "postgres 700" ] \
  || fail "PostgreSQL's folder belongs to postgres, mode 0700 ($(stat -c '%a %U' "$home"))"
[ -S "$socket/.s.PGSQL.$SHOAL_PG_PORT" ] || fail "PostgreSQL's socket is in $socket"
pass "deploy/local status: PostgreSQL's data in $data, socket in $socket (postgres's, 0700, recorded in .state/pg-home)"

got=$(deploy/local psql -At -c "SELECT current_user || ' ' || current_database()" 2>&1) || fail "deploy/local psql: $got"
[ "$got" = "postgres shoal" ] || fail "deploy/local psql reaches the shoal database as postgres (got '$got')"
pass "deploy/local psql through the socket"

declare -A pids=()
for f in .state/pids/*.pid; do
  name=$(basename "$f" .pid)
  pids[$name]=$(cat "$f")
done
for name in postgres redis node1 node2 lb; do
  if [ -z "${pids[$name]:-}" ] || ! alive "${pids[$name]}"; then fail "$name runs with its PID in .state/pids"; fi
done

step "deploy/local down"
deploy/local down || fail "deploy/local down"
for name in "${!pids[@]}"; do
  alive "${pids[$name]}" && fail "$name (PID ${pids[$name]}) is gone after down"
done
pass "down stopped every process (${!pids[*]})"
left=$(cd "$home" && find . -mindepth 1 -maxdepth 1 -printf '%f\n' | sort | tr '\n' ' ')
[ "$left" = "pg pg-socket state-folder " ] || fail "PostgreSQL's folder holds pg, pg-socket and state-folder after down (it holds: $left)"
[ -z "$(ls -A "$home/pg-socket")" ] || fail "the socket folder is empty after down ($(ls -A "$home/pg-socket"))"
[ ! -e "$home/pg/postmaster.pid" ] || fail "no postmaster.pid after down"
[ "$(cat "$home/state-folder")" = "$(realpath -m "$CLONE/.state")" ] || fail "$home/state-folder names $CLONE/.state"
pass "after down, $home keeps the cluster, an empty socket folder and the name of its state folder"

step "deploy/local down --purge"
deploy/local down --purge || fail "deploy/local down --purge"
[ ! -e "$home" ] || fail "down --purge deletes $home"
[ ! -e .state ] || fail "down --purge deletes .state ($(ls -A .state))"
pass "down --purge deleted $home and .state"
