#!/usr/bin/env bash
# tests/e2e/conduit_stack.sh: the local stack (deploy/local) with two nodes
# behind HAProxy, on private ports, set up for the RealWorld suites
# (conduit_test.py and realworld_newman.sh).
#
#   conduit_stack.sh up PATH_FILE     start it in a fresh state folder, whose
#                                     path goes into PATH_FILE
#   conduit_stack.sh down PATH_FILE   stop it by PID (deploy/local down), fail
#                                     when a node's log holds a sanitizer report,
#                                     remove the state folder
#   conduit_stack.sh env PATH_FILE    print the suites' variables (URLs, state)
#
# ctest runs `up` and `down` as the setup and cleanup of the conduit_stack
# fixture, so that both suites share one stack and one database.
#
# The nodes get settings that make the suites quick and their checks exact
# (exported here unless the caller set them; deploy/local hands SHOAL_*
# variables to the nodes):
#   login failures: 6 per address, 3 per account and address (per 15 min)
#   registrations: 10 per address per hour (the suite registers from many
#     loopback addresses; newman, from 127.0.0.1, registers 2 users a run)
#   logins: 100 per address per minute
#   CORS: http://e2e.example.org only
#   argon2id at its cheapest (1 pass, 1 MiB): the suite registers over a
#     hundred users, and the cost is not what it tests
#   a drain delay of 200 ms, so that `down` is quick
#   an L1 TTL of 2 s times SHOAL_TEST_TIME_SCALE (1): conduit_test.py's
#     bound on a write showing on the other node (0.5 s) stretches with the
#     scale, and must stay well below the time a lost invalidation would
#     leave an entry stale
#
# SHOAL_BIN: the node binary (ctest passes it); without it deploy/local builds.
# Ports: SHOAL_E2E_LB_PORT (18180), SHOAL_E2E_STATS_PORT (18184),
# SHOAL_E2E_NODE_BASE_PORT (18181, 18182), SHOAL_E2E_ADMIN_BASE_PORT (18191,
# 18192), SHOAL_E2E_PG_PORT (15533), SHOAL_E2E_REDIS_PORT (16480).
# SHOAL_E2E_KEEP=1 keeps the state folder.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LOCAL=$REPO/deploy/local
NODES=2

die() { echo "conduit_stack: $*" >&2; exit 1; }

[ $# -eq 2 ] || die "usage: conduit_stack.sh up|down|env PATH_FILE"
command=$1
path_file=$2

unset SHOAL_NODES DATABASE_URL REDIS_URL SHOAL_CACHE_URL SHOAL_SPLIT_CACHE
export SHOAL_LB_PORT=${SHOAL_E2E_LB_PORT:-18180}
export SHOAL_STATS_PORT=${SHOAL_E2E_STATS_PORT:-18184}
export SHOAL_NODE_BASE_PORT=${SHOAL_E2E_NODE_BASE_PORT:-18181}
export SHOAL_ADMIN_BASE_PORT=${SHOAL_E2E_ADMIN_BASE_PORT:-18191}
export SHOAL_PG_PORT=${SHOAL_E2E_PG_PORT:-15533}
export SHOAL_REDIS_PORT=${SHOAL_E2E_REDIS_PORT:-16480}
export SHOAL_THREADS=${SHOAL_THREADS:-4}
export SHOAL_LOGIN_FAILURES_PER_ADDRESS=${SHOAL_LOGIN_FAILURES_PER_ADDRESS-6/15min burst 6}
export SHOAL_LOGIN_FAILURES_PER_ACCOUNT=${SHOAL_LOGIN_FAILURES_PER_ACCOUNT-3/15min burst 3}
export SHOAL_RATE_LIMITS=${SHOAL_RATE_LIMITS-POST /api/users=10/h burst 10,POST /api/users/login=100/min burst 100}
export SHOAL_CORS_ORIGINS=${SHOAL_CORS_ORIGINS-http://e2e.example.org}
export SHOAL_PASSWORD_OPS_LIMIT=${SHOAL_PASSWORD_OPS_LIMIT:-1}
export SHOAL_PASSWORD_MEM_LIMIT=${SHOAL_PASSWORD_MEM_LIMIT:-1m}
export SHOAL_PASSWORD_QUEUE_TIMEOUT_MS=${SHOAL_PASSWORD_QUEUE_TIMEOUT_MS:-10000}
export SHOAL_DRAIN_DELAY_MS=${SHOAL_DRAIN_DELAY_MS:-200}
export SHOAL_L1_TTL_MS=${SHOAL_L1_TTL_MS:-$(awk -v s="${SHOAL_TEST_TIME_SCALE:-1}" 'BEGIN { if (s < 1) s = 1; printf "%d", 2000 * s }')}

STACK_NAME=conduit
PORT_VARIABLES='SHOAL_E2E_*_PORT'
# shellcheck source=tests/e2e/stack_common.sh
. "$REPO/tests/e2e/stack_common.sh"

case $command in
  up)
    stack_up
    echo "conduit_stack: up, state $SHOAL_STATE, http://127.0.0.1:$SHOAL_LB_PORT/api"
    ;;
  down)
    stack_down
    ;;
  env)
    state_from_file
    echo "SHOAL_STATE=$SHOAL_STATE"
    echo "SHOAL_E2E_LB_URL=http://127.0.0.1:$SHOAL_LB_PORT"
    echo "SHOAL_E2E_NODE_URLS=http://127.0.0.1:$SHOAL_NODE_BASE_PORT,http://127.0.0.1:$((SHOAL_NODE_BASE_PORT + 1))"
    echo "SHOAL_E2E_ADMIN_URLS=http://127.0.0.1:$SHOAL_ADMIN_BASE_PORT,http://127.0.0.1:$((SHOAL_ADMIN_BASE_PORT + 1))"
    ;;
  *) die "unknown command '$command' (up, down, env)" ;;
esac
