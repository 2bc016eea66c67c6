#!/usr/bin/env bash
# tests/load/hello_scale_test.sh: the guide's scale-out step (docs/guide.md,
# step 7) with a user's service: tests/load/scale --binary with the in-tree
# examples/hello and a one-line scenario, N = 1 and 2, 2 s each. Both
# points must have served the scenario's route (2xx answers per second
# above 0, no answer outside 2xx, no socket error: shoal-node has no
# /hello route, so every answer would be a 404 had deploy/local started it
# instead), and the table, CSV and chart must be written. The figures
# themselves are not judged: the test shares the machine.
#
#   hello_scale_test.sh HELLO PORT_BASE PG_PORT REDIS_PORT
# Root only (cgroups, PostgreSQL through runuser); skipped (77) otherwise.
# Without the cgroup v1 CPU controller at /sys/fs/cgroup/cpu (inside `ip
# netns exec`), it mounts one in a mount namespace of its own.
set -euo pipefail
hello=$(readlink -f "$1")
port_base=$2 pg_port=$3 redis_port=$4
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

[ "$(id -u)" = 0 ] || { echo "skipped: needs root (cgroups, PostgreSQL)"; exit 77; }
if [ ! -f /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]; then
  if [ -z "${SHOAL_HELLO_SCALE_UNSHARED:-}" ] && command -v unshare >/dev/null; then
    # shellcheck disable=SC2016 # expanded by the inner shell
    exec env SHOAL_HELLO_SCALE_UNSHARED=1 unshare --mount --propagation private sh -c \
      'mount -t tmpfs tmpfs /sys/fs/cgroup && mkdir /sys/fs/cgroup/cpu &&
       mount -t cgroup -o cpu cgroup /sys/fs/cgroup/cpu && exec "$0" "$@"' "$0" "$@"
  fi
  echo "skipped: no cgroup v1 CPU controller at /sys/fs/cgroup/cpu"
  exit 77
fi

OUT=$(mktemp -d "${TMPDIR:-/tmp}/shoal-hello-scale.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
printf '# docs/guide.md, step 7\n1 GET /hello/world\n' >"$OUT/greet.txt"

start=$SECONDS
if ! "$REPO/tests/load/scale" --binary "$hello" --scenario "$OUT/greet.txt" --nodes 1,2 --duration 2 --warmup 0 \
     --connections 16 --wrk-threads 2 --port-base "$port_base" --pg-port "$pg_port" --redis-port "$redis_port" \
     --out "$OUT/results" >"$OUT/stdout.txt" 2>"$OUT/stderr.txt"; then
  cat "$OUT/stdout.txt"
  tail -n 30 "$OUT/stderr.txt"
  echo "FAIL - tests/load/scale --binary $hello exited non-zero"
  exit 1
fi
cat "$OUT/stdout.txt"
echo "# tests/load/scale took $((SECONDS - start)) s"

/usr/bin/python3 - "$OUT/results" <<'PY'
import csv, os, sys
out = sys.argv[1]
problems = []
def check(cond, what):
    print(("ok   - " if cond else "FAIL - ") + what)
    if not cond:
        problems.append(what)
rows = {int(r["nodes"]): r for r in csv.DictReader(open(os.path.join(out, "scale.csv"))) if r["workload"] == "greet"}
check(sorted(rows) == [1, 2], "scale.csv has the scenario's points for N = 1 and 2 (%s)" % sorted(rows))
for n, r in sorted(rows.items()):
    check(float(r["ok_rps"]) > 0 and int(r["non2xx"]) == 0 and int(r["socket_errors"]) == 0,
          "N=%d: hello served GET /hello/world (%s 2xx/s, %s non-2xx, %s socket errors)"
          % (n, r["ok_rps"], r["non2xx"], r["socket_errors"]))
for f in ("table.txt", "scale.png", "latency.png", "timeline.csv"):
    check(os.path.getsize(os.path.join(out, f)) > 0 if os.path.exists(os.path.join(out, f)) else False, "%s written" % f)
sys.exit(1 if problems else 0)
PY
