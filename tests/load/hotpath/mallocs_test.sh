#!/usr/bin/env bash
# tests/load/hotpath/mallocs_test.sh: the hot routes allocate no more than
# they did when their budget was last set.
#
#   mallocs_test.sh NODE MALLOC_COUNT_SO PORT PATH=BUDGET...
#
# Runs NODE (hotpath_node) with MALLOC_COUNT_SO preloaded, warms each PATH
# up, then counts malloc + calloc + realloc calls over exactly 2000
# keep-alive GETs (4 connections) and fails when a path makes more per
# request than its BUDGET. The counts are deterministic: a failure means the
# request path gained a heap allocation (or a leak-shaped imbalance of
# mallocs and frees), not that the machine was busy. Budgets are whole
# calls; the connections' own setup adds a fraction of one.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
node=$1
preload=$2
port=$3
shift 3
requests=2000
work=$(mktemp -d)
pid=
stop() { [ -n "$pid" ] && kill -INT "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; pid=; }
trap 'stop; rm -rf "$work"' EXIT

LD_PRELOAD="$preload" "$node" --port "$port" --admin-port 0 --threads 2 --access-log-sample 0 2>"$work/node.log" &
pid=$!
ready=no
for _ in $(seq 100); do
    if "$here/drive" "$port" /plaintext 4 2>/dev/null; then ready=yes; break; fi
    sleep 0.1
done
if [ "$ready" != yes ]; then
    echo "the node did not answer on port $port within 10 s; its log:" >&2
    cat "$work/node.log" >&2
    exit 1
fi

snapshot() {
    local before
    before=$(grep -c '^malloc_count:' "$work/node.log" || true)
    kill -USR2 "$pid"
    for _ in $(seq 100); do
        if [ "$(grep -c '^malloc_count:' "$work/node.log" || true)" -gt "$before" ]; then
            grep '^malloc_count:' "$work/node.log" | tail -1
            return 0
        fi
        sleep 0.05
    done
    # The last line would be the previous snapshot's: a count of nothing.
    echo "no new malloc_count line from the node within 5 s of SIGUSR2" >&2
    return 1
}

failed=0
for spec in "$@"; do
    path=${spec%=*}
    budget=${spec#*=}
    "$here/drive" "$port" "$path" 200
    first=$(snapshot)
    "$here/drive" "$port" "$path" "$requests"
    second=$(snapshot)
    read -r allocations frees < <(printf '%s\n%s\n' "$first" "$second" | awk '
        { for (i = 2; i <= NF; i++) { split($i, kv, "="); v[NR, kv[1]] = kv[2] } }
        END {
            a = (v[2, "malloc"] - v[1, "malloc"]) + (v[2, "calloc"] - v[1, "calloc"]) + (v[2, "realloc"] - v[1, "realloc"])
            print a, v[2, "free"] - v[1, "free"]
        }')
    verdict=ok
    if ! awk -v a="$allocations" -v n="$requests" -v b="$budget" 'BEGIN { exit !(a / n < b + 0.5) }'; then
        verdict="FAILED: over the budget of $budget"
        failed=1
    fi
    # Every allocation of a finished request is freed: the counts match to
    # within the connections' own buffers.
    if ! awk -v a="$allocations" -v f="$frees" -v n="$requests" 'BEGIN { d = a - f; if (d < 0) d = -d; exit !(d / n < 0.05) }'; then
        verdict="FAILED: $allocations allocations but $frees frees"
        failed=1
    fi
    awk -v p="$path" -v a="$allocations" -v f="$frees" -v n="$requests" -v verdict="$verdict" \
        'BEGIN { printf "%-12s %.2f allocations and %.2f frees per request: %s\n", p, a / n, f / n, verdict }'
done
exit "$failed"
