#!/usr/bin/env bash
# tests/e2e/realworld_newman.sh: the official RealWorld Postman collection,
# run with newman against shoal, twice in a row on the same database; both
# runs must have zero failures.
#
#   realworld_newman.sh [--url http://HOST:PORT/api]
#
# With --url it runs against that API (ctest passes the conduit_stack
# fixture's HAProxy); without, it starts a stack of its own with two nodes
# behind HAProxy (conduit_stack.sh, ports from the SHOAL_E2E_* variables)
# and stops it afterwards.
#
# The collection is Conduit.postman_collection.json in SHOAL_REALWORLD_DIR,
# by default ../shared/realworld next to the repository. When it is not
# there, this says so and exits 77, which ctest shows as skipped.
#
# newman is installed with npm once per machine, outside the clone
# (tests/support/npm_tool: ~/.cache/shoal-tools/newman@VERSION, or
# SHOAL_TOOLS_CACHE), and every later run of any clone uses it as it is.
# SHOAL_NEWMAN_VERSION picks the version (6.2.2).
#
# Each run gets a fresh USERNAME, EMAIL and PASSWORD as --global-var, as
# upstream's run-api-tests.sh does, and waits SHOAL_NEWMAN_DELAY_MS (50)
# between requests (upstream waits 500). newman's reports land in
# $SHOAL_NEWMAN_REPORTS (a temporary folder, removed on success) as JSON.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SKIP=77
NEWMAN_VERSION=${SHOAL_NEWMAN_VERSION:-6.2.2}
DELAY_MS=${SHOAL_NEWMAN_DELAY_MS:-50}

say() { echo "realworld_newman: $*"; }
die() { echo "realworld_newman: error: $*" >&2; exit 1; }

url=""
while [ $# -gt 0 ]; do
  case $1 in
    --url) [ $# -ge 2 ] || die "--url needs a value"; url=$2; shift 2 ;;
    --url=*) url=${1#--url=}; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (usage: realworld_newman.sh [--url URL])" ;;
  esac
done

dir=${SHOAL_REALWORLD_DIR:-$REPO/../shared/realworld}
collection=$dir/Conduit.postman_collection.json
if [ ! -f "$collection" ]; then
  say "SKIPPED: the official collection is not there ($collection does not exist;"
  say "set SHOAL_REALWORLD_DIR to the folder that holds Conduit.postman_collection.json)"
  exit "$SKIP"
fi

# ------------------------------------------------------------ newman
if ! command -v npm >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    say "installing nodejs and npm (Debian packages)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs npm >/dev/null \
      || die "apt-get install nodejs npm failed"
  else
    die "npm is not installed; install nodejs and npm first"
  fi
fi
TOOLS=$("$REPO/tests/support/npm_tool" newman "$NEWMAN_VERSION") || die "newman $NEWMAN_VERSION could not be installed"
NEWMAN=$TOOLS/node_modules/.bin/newman
[ -x "$NEWMAN" ] || die "$NEWMAN is not there"
[ "$("$NEWMAN" --version 2>/dev/null || true)" = "$NEWMAN_VERSION" ] || die "$NEWMAN is not version $NEWMAN_VERSION"
say "newman $("$NEWMAN" --version) ($TOOLS)"

# ------------------------------------------------------------ the stack
stack_file=""
cleanup() {
  local rc=$?
  if [ -n "$stack_file" ]; then
    "$REPO/tests/e2e/conduit_stack.sh" down "$stack_file" >/dev/null || rc=1
    rm -f "$stack_file"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "$url" ]; then
  stack_file=$(mktemp "${TMPDIR:-/tmp}/shoal-newman-stack.XXXXXX")
  # The collection logs in with the right password only and registers two
  # users a run: no limit of ours should get in its way.
  SHOAL_RATE_LIMITS="" "$REPO/tests/e2e/conduit_stack.sh" up "$stack_file"
  url="http://127.0.0.1:${SHOAL_E2E_LB_PORT:-18180}/api"
fi
say "API at $url"

# ------------------------------------------------------------ two runs
reports=${SHOAL_NEWMAN_REPORTS:-}
keep_reports=1
if [ -z "$reports" ]; then
  reports=$(mktemp -d "${TMPDIR:-/tmp}/shoal-newman.XXXXXX")
  keep_reports=0
fi
mkdir -p "$reports"

failed=0
for run in 1 2; do
  stamp=$(date +%s%N)
  username="nm${stamp: -12}r$run"
  email="$username@mail.com"
  password="password-$stamp"
  say "run $run of 2: USERNAME=$username"
  if "$NEWMAN" run "$collection" \
    --delay-request "$DELAY_MS" \
    --global-var "APIURL=$url" \
    --global-var "USERNAME=$username" \
    --global-var "EMAIL=$email" \
    --global-var "PASSWORD=$password" \
    --reporters cli,json --reporter-json-export "$reports/run$run.json" \
    --color off --disable-unicode; then
    say "run $run of 2: zero failures"
  else
    say "run $run of 2: FAILED (newman exit $?; report $reports/run$run.json)"
    failed=1
  fi
done

if [ "$failed" = 0 ]; then
  say "both runs passed with zero failures"
  [ "$keep_reports" = 1 ] || rm -rf "$reports"
else
  say "reports kept in $reports"
fi
exit "$failed"
