#!/usr/bin/env bash
# tests/e2e/faults_stack.sh: the local stack (deploy/local) with three nodes
# behind HAProxy (lb/haproxy.cfg, as the launcher runs it), on private ports,
# for the fault scenarios of tests/e2e/faults_test.py.
#
#   faults_stack.sh up PATH_FILE      start it in a fresh state folder, whose
#                                     path goes into PATH_FILE
#   faults_stack.sh down PATH_FILE    stop it by PID (deploy/local down), fail
#                                     when a node's log holds a sanitizer report,
#                                     remove the state folder
#   faults_stack.sh env PATH_FILE     print the scenarios' variables
#   faults_stack.sh local PATH_FILE ARGS...
#                                     deploy/local ARGS on that stack, with the
#                                     same node settings (start node2, stop
#                                     redis, ...)
#
# ctest runs `up` and `down` as the setup and cleanup of the faults_stack
# fixture; every scenario leaves the stack whole again for the next.
#
# The nodes get the shipped settings except (each can be overridden by
# setting the variable):
#   4 threads per node (3 nodes x 6 PostgreSQL connections)
#   rate limits on registration and login far above what the scenarios do
#   argon2id at its cheapest: the cost is not what is tested
#   a drain delay of 3 s: HAProxy takes a node out after two failed checks
#     one second apart (about 2 s), and a rolling restart is what is tested
#
# SHOAL_BIN: the node binary (ctest passes it); without it deploy/local builds.
# Ports: SHOAL_FAULTS_LB_PORT (19180), SHOAL_FAULTS_STATS_PORT (19184),
# SHOAL_FAULTS_NODE_BASE_PORT (19181..19183), SHOAL_FAULTS_ADMIN_BASE_PORT
# (19191..19193), SHOAL_FAULTS_PG_PORT (15833), SHOAL_FAULTS_REDIS_PORT (16880). SHOAL_E2E_KEEP=1 keeps the state folder
# when `down` fails.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LOCAL=$REPO/deploy/local
NODES=3

die() { echo "faults_stack: $*" >&2; exit 1; }

[ $# -ge 2 ] || die "usage: faults_stack.sh up|down|env PATH_FILE, or local PATH_FILE ARGS..."
command=$1
path_file=$2
shift 2

unset SHOAL_NODES DATABASE_URL REDIS_URL SHOAL_CACHE_URL SHOAL_SPLIT_CACHE
export SHOAL_LB_PORT=${SHOAL_FAULTS_LB_PORT:-19180}
export SHOAL_STATS_PORT=${SHOAL_FAULTS_STATS_PORT:-19184}
export SHOAL_NODE_BASE_PORT=${SHOAL_FAULTS_NODE_BASE_PORT:-19181}
export SHOAL_ADMIN_BASE_PORT=${SHOAL_FAULTS_ADMIN_BASE_PORT:-19191}
export SHOAL_PG_PORT=${SHOAL_FAULTS_PG_PORT:-15833}
export SHOAL_REDIS_PORT=${SHOAL_FAULTS_REDIS_PORT:-16880}
export SHOAL_THREADS=${SHOAL_THREADS:-4}
export SHOAL_RATE_LIMITS=${SHOAL_RATE_LIMITS-POST /api/users=10000/min burst 1000,POST /api/users/login=10000/min burst 1000}
export SHOAL_PASSWORD_OPS_LIMIT=${SHOAL_PASSWORD_OPS_LIMIT:-1}
export SHOAL_PASSWORD_MEM_LIMIT=${SHOAL_PASSWORD_MEM_LIMIT:-1m}
export SHOAL_DRAIN_DELAY_MS=${SHOAL_DRAIN_DELAY_MS:-3000}

STACK_NAME=faults
PORT_VARIABLES='SHOAL_FAULTS_*_PORT'
# shellcheck source=tests/e2e/stack_common.sh
. "$REPO/tests/e2e/stack_common.sh"

case $command in
  up)
    stack_up
    echo "faults_stack: up, state $SHOAL_STATE, http://127.0.0.1:$SHOAL_LB_PORT"
    ;;
  down)
    stack_down
    ;;
  env)
    state_from_file
    echo "SHOAL_STATE=$SHOAL_STATE"
    echo "SHOAL_LB_PORT=$SHOAL_LB_PORT"
    echo "SHOAL_STATS_PORT=$SHOAL_STATS_PORT"
    echo "SHOAL_NODE_BASE_PORT=$SHOAL_NODE_BASE_PORT"
    echo "SHOAL_ADMIN_BASE_PORT=$SHOAL_ADMIN_BASE_PORT"
    echo "SHOAL_NODES=$NODES"
    echo "SHOAL_PG_PORT=$SHOAL_PG_PORT"
    echo "SHOAL_REDIS_PORT=$SHOAL_REDIS_PORT"
    echo "SHOAL_DRAIN_DELAY_MS=$SHOAL_DRAIN_DELAY_MS"
    ;;
  local)
    state_from_file
    exec "$LOCAL" "$@"
    ;;
  *) die "unknown command '$command' (up, down, env, local)" ;;
esac
