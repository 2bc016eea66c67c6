#!/usr/bin/env bash
# tests/load/hotpath/instructions_test.sh: the hot routes execute no more
# instructions per request than their budget allows.
#
#   instructions_test.sh NODE BUDGETS PLATFORM            check (ctest load.hotpath_instructions)
#   instructions_test.sh --record NODE BUDGETS PLATFORM   measure, and write the figures into BUDGETS
#
# NODE is a Release build's hotpath_node, BUDGETS the file of budgets
# (tests/load/hotpath/instruction_budgets: the tolerance, the platform they
# were measured on, one route and its instructions per request a line, and
# "access-log ROUTE N" lines for routes measured again with the access log
# on, shoal-node's default), and
# PLATFORM names the build's compiler (CMake passes "GNU-12.2.0"); the
# versions of valgrind and of the libraries on the request path are added
# here. Environment: REQUESTS (N below, default 200).
#
# Runs NODE under callgrind with an empty environment, the defaults of every
# setting but these: one worker thread, the access log off, the port the
# kernel picks, no admin listener, and a fixed node name (/healthz's body
# holds it; the default is the host's name). For each route of BUDGETS:
# warms it up, zeroes the counters, sends N keep-alive GETs over one
# connection (drive), dumps; zeroes again, sends 2N, dumps. The second total minus the first,
# over N, is what one request costs: start-up, warm-up and the connection's
# accept and close (once per run of drive) cancel out. Callgrind counts the
# instructions executed in user space (libmicrohttpd, shoal, jansson, libc;
# not the kernel) on valgrind's own synthetic CPU, so a busy machine gives
# the same count as an idle one. One connection and one thread, because
# with more, how many connections one epoll_wait returns (and so shares its
# cost between) depends on timing: 2 threads and 4 connections wandered by
# about 1 % from run to run, 1 and 1 by under 0.07 %, with N 200 as with
# 1,000 (most of the run is valgrind starting the node). The access-log
# lines are measured the same way on a second node run with
# --access-log-sample 1 (every request logged, its lines to a file): what the
# log adds to a request is the difference from the route's own line.
#
# With CALLGRIND_KEEP=DIR, each route's second dump (its 2N requests) is
# kept as DIR/callgrind_ROUTE.out (callgrind_access-log-ROUTE.out), for
# callgrind_annotate --inclusive=yes: divide by 2N for one request.
#
# Fails when a route costs more than its budget plus the tolerance, or less
# than half of it (the measurement broke, or the route got much cheaper and
# its budget should follow). Exits 77 (skipped) when BUDGETS was recorded on
# another platform (compiler, libraries, valgrind, or a host without AVX2,
# whose valgrind shows glibc another CPU): the counts are not comparable
# there; --record makes budgets for it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
record=no
if [ "${1:-}" = --record ]; then record=yes; shift; fi
if [ $# -ne 3 ]; then
    echo "usage: instructions_test.sh [--record] NODE BUDGETS PLATFORM" >&2
    exit 2
fi
node=$1
budgets=$2
compiler=$3
requests=${REQUESTS:-200}
for tool in valgrind callgrind_control dpkg-query; do
    command -v "$tool" >/dev/null || { echo "$tool is missing (deploy/local deps --tests)" >&2; exit 1; }
done

# What the counts depend on besides shoal's code: the compiler, the
# libraries a request runs through, valgrind, and the CPU valgrind shows
# (with AVX2 on the host, the same Haswell-like one everywhere).
versions=$(dpkg-query -W -f '${Package}=${Version} ' libc6 libmicrohttpd12 libjansson4 valgrind 2>/dev/null || true)
cpu=no-avx2
grep -qw avx2 /proc/cpuinfo && cpu=avx2
platform="$(uname -m) $cpu $compiler ${versions% }"

work=$(mktemp -d)
pid=
failed=0
stop() { [ -n "$pid" ] && kill -INT "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; pid=; }
# An error that is not a verdict (drive, callgrind_control, a dump) shows
# what the node and valgrind said.
finish() {
    local status=$?
    stop
    if [ "$status" -ne 0 ] && [ "$status" -ne 77 ] && [ "$failed" -eq 0 ]; then
        echo "--- the node's log:" >&2
        tail -20 "$work/node.log" >&2 2>/dev/null || true
        echo "--- valgrind's log:" >&2
        tail -20 "$work/valgrind.log" >&2 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap finish EXIT

# Starts NODE under callgrind with the given access-log sample and waits
# for its port (sets pid and port).
start_node() {
    local sample=$1
    # Made here, not by the redirection below: the background job may open it
    # after the first look for the port line, and sed on a missing file fails.
    : >"$work/node.log"
    # TMPDIR is kept: callgrind_control reaches the node through vgdb's pipes there.
    env -i PATH=/usr/bin:/bin TMPDIR="${TMPDIR:-/tmp}" \
        valgrind --tool=callgrind --log-file="$work/valgrind.log" --callgrind-out-file="$work/cg.%p" \
        "$node" --port 0 --admin-port 0 --threads 1 --access-log-sample "$sample" --node-name hotpath \
        2>"$work/node.log" &
    pid=$!
    dumps=0
    port=
    for _ in $(seq 600); do
        port=$(sed -n 's/^hotpath_node: serving on port \([0-9]*\)$/\1/p' "$work/node.log")
        [ -n "$port" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$port" ]; then
        echo "hotpath_node did not start under callgrind within 60 s" >&2
        exit 1
    fi
}

# callgrind_control talks on stderr even when all is well: shown on failure only.
control() {
    if ! callgrind_control "$1" "$pid" >"$work/control.log" 2>&1; then
        echo "callgrind_control $1 $pid failed:" >&2
        cat "$work/control.log" >&2
        return 1
    fi
}

total=
# Sets total to the instructions executed since the last zero, from
# callgrind's next dump (a global: a $(...) subshell would lose the count
# of dumps). The dump's "summary:" line is that count; its "totals:" line,
# the sum of its cost lines, can hold more: in the first dump after a
# route's warm-up it was 46,000 higher (costs of calls still on the stack at
# the zero, it seems), which a run of 20 requests spreads as 2,300 a request.
dump_total() {
    control -d
    dumps=$((dumps + 1))
    local file="$work/cg.$pid.$dumps"
    for _ in $(seq 100); do
        # totals: comes last, so the dump is complete.
        if [ -s "$file" ] && grep -q '^totals:' "$file"; then
            total=$(awk '/^summary:/ { print $2; exit }' "$file")
            return 0
        fi
        sleep 0.1
    done
    echo "callgrind wrote no dump $file within 10 s" >&2
    return 1
}

# Sets per_request to the instructions one request of PATH costs, from the
# totals of N and 2N requests.
per_request=
measure_route() {
    local path=$1 first
    "$here/drive" "$port" "$path" 200 1
    control -z
    "$here/drive" "$port" "$path" "$requests" 1
    dump_total
    first=$total
    control -z
    "$here/drive" "$port" "$path" $((2 * requests)) 1
    dump_total
    per_request=$(((total - first) / requests))
}

tolerance=$(awk '$1 == "tolerance_percent" { print $2 }' "$budgets")
recorded_on=$(sed -n 's/^platform //p' "$budgets")
mapfile -t routes < <(awk '$1 ~ /^\// { print $1 }' "$budgets")
mapfile -t logged_routes < <(awk '$1 == "access-log" && $2 ~ /^\// { print $2 }' "$budgets")
if [ -z "$tolerance" ] || [ ${#routes[@]} -eq 0 ]; then
    echo "$budgets holds no tolerance_percent line or no routes" >&2
    exit 1
fi

# Measures each route of the arguments on the node running now, and checks
# it against its budget (the line KEY ROUTE of BUDGETS; KEY empty for the
# routes' own lines). Fills measured[KEY ROUTE].
declare -A measured
measure_all() {
    local key=$1 path label budget verdict
    shift
    for path in "$@"; do
        label="${key:+$key }$path"
        measure_route "$path"
        measured[$label]=$per_request
        if [ -n "${CALLGRIND_KEEP:-}" ]; then
            mkdir -p "$CALLGRIND_KEEP"
            cp "$work/cg.$pid.$dumps" "$CALLGRIND_KEEP/callgrind_${key:+$key-}${path//\//}.out"
        fi
        [ "$record" = yes ] && { echo "$label ${measured[$label]}"; continue; }
        if [ -n "$key" ]; then
            budget=$(awk -v k="$key" -v p="$path" '$1 == k && $2 == p { print $3 }' "$budgets")
        else
            budget=$(awk -v p="$path" '$1 == p { print $2 }' "$budgets")
        fi
        verdict=$(awk -v m="${measured[$label]}" -v b="$budget" -v t="$tolerance" 'BEGIN {
            limit = int(b * (1 + t / 100))
            change = sprintf("%+.2f %%", (m - b) * 100 / b)
            if (m > limit) printf "FAILED: %s, over the budget of %d by more than %s %% (limit %d)", change, b, t, limit
            else if (m < b / 2) printf "FAILED: %s, under half the budget of %d: the measurement broke, or re-record", change, b
            else if (m < b * (1 - t / 100)) printf "ok (%s against %d: lower the budget with --record to keep the gain)", change, b
            else printf "ok (%s against %d)", change, b
        }')
        printf '%-23s %7d instructions per request: %s\n' "$label" "${measured[$label]}" "$verdict"
        case $verdict in FAILED*) failed=1 ;; esac
    done
}

start_node 0
measure_all "" "${routes[@]}"
stop
if [ ${#logged_routes[@]} -gt 0 ]; then
    start_node 1
    measure_all access-log "${logged_routes[@]}"
    stop
fi

if [ "$record" = yes ]; then
    awk -v platform="$platform" -v figures="$(for k in "${!measured[@]}"; do echo "$k ${measured[$k]}"; done)" '
        BEGIN {
            n = split(figures, lines, "\n")
            for (i = 1; i <= n; i++) { m = split(lines[i], f, " "); value[m == 3 ? f[1] " " f[2] : f[1]] = f[m] }
        }
        /^platform / { print "platform " platform; next }
        $1 == "access-log" && ($1 " " $2) in value { print $1, $2, value[$1 " " $2]; next }
        $1 in value { print $1, value[$1]; next }
        { print }' "$budgets" >"$work/budgets"
    grep -q '^platform ' "$work/budgets" || echo "platform $platform" >>"$work/budgets"
    cat "$work/budgets" >"$budgets"
    echo "recorded in $budgets (platform $platform)"
    exit 0
fi
if [ "$recorded_on" != "$platform" ]; then
    echo "skipped: the budgets were measured on \"$recorded_on\", this is \"$platform\";" >&2
    echo "instruction counts differ between the two. Record budgets here with" >&2
    echo "  $0 --record $node $budgets $compiler" >&2
    exit 77
fi
exit "$failed"
