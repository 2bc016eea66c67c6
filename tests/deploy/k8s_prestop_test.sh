#!/usr/bin/env bash
# tests/deploy/k8s_prestop_test.sh: deploy/k8s's preStop hook run against the
# real shoal-node, the way the kubelet runs it. The node is PID 1 of its own
# PID namespace (as in the container, where the image's ENTRYPOINT is PID 1),
# with the ConfigMap's settings and the Deployment's args; the hook's command
# is read from deployment.yaml and run inside that namespace with the same
# environment; then the "kubelet" sends SIGTERM. It checks that:
#   - the hook's SIGTERM reaches PID 1: /readyz turns 503 while /healthz
#     (liveness) and the listener stay up, on the admin port the probes use
#   - the hook returns 0 while the node is still draining (a hook that
#     outlived the container would be reported as failed), and the
#     kubelet's SIGTERM then ends the drain delay
#   - the node exits 0, and hook + shutdown fit terminationGracePeriodSeconds
# No PostgreSQL or Redis is needed: /readyz and /healthz answer without them.
#   k8s_prestop_test.sh SHOAL_NODE_BINARY PORT ADMIN_PORT
# Needs root (unshare --pid) and util-linux; otherwise exits 77 (skipped).
set -euo pipefail
binary=$1
port=$2
admin_port=$3
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
base="http://127.0.0.1:$port"
admin="http://127.0.0.1:$admin_port"

if [ "$(id -u)" != 0 ] || ! command -v unshare >/dev/null || ! command -v nsenter >/dev/null; then
  echo "skip: needs root, unshare and nsenter (util-linux)"
  exit 77
fi

failures=0
check() { # description, then a command that must succeed
  local description=$1; shift
  if "$@"; then echo "ok   - $description"; else failures=$((failures + 1)); echo "FAIL - $description"; fi
}

TMP=$(mktemp -d)
outer_pid=""
cleanup() {
  if [ -n "$outer_pid" ] && kill -0 "$outer_pid" 2>/dev/null; then
    # --kill-child: the node dies with unshare.
    kill -KILL "$outer_pid" 2>/dev/null || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT

# The Deployment's container as the kubelet would start it: the ConfigMap's
# variables, the args, and the preStop command.
/usr/bin/python3 - "$REPO/deploy/k8s" "$TMP" <<'PY'
import json, os, shlex, sys, yaml
directory, out = sys.argv[1], sys.argv[2]
configmap = yaml.safe_load(open(os.path.join(directory, "configmap.yaml")))
deployment = yaml.safe_load(open(os.path.join(directory, "deployment.yaml")))
pod = deployment["spec"]["template"]["spec"]
container = pod["containers"][0]
with open(os.path.join(out, "env"), "w") as f:
    for k, v in configmap["data"].items():
        f.write("%s=%s\n" % (k, v))
json.dump(container["lifecycle"]["preStop"]["exec"]["command"], open(os.path.join(out, "hook.json"), "w"))
open(os.path.join(out, "args"), "w").write("\n".join(container.get("args", [])) + "\n")
open(os.path.join(out, "termination"), "w").write(str(pod.get("terminationGracePeriodSeconds", 30)))
PY
mapfile -t settings <"$TMP/env"
mapfile -t args <"$TMP/args"
mapfile -t hook < <(/usr/bin/python3 -c 'import json, sys; print("\n".join(json.load(open(sys.argv[1]))))' "$TMP/hook.json")
termination=$(cat "$TMP/termination")

# Loopback for the test; tiers on port 1, where nothing listens: the node
# serves without them (its /readyz reports them down, and stays 200).
env -i PATH=/usr/bin:/bin "${settings[@]}" SHOAL_BIND=127.0.0.1 SHOAL_PORT="$port" SHOAL_ADMIN_PORT="$admin_port" \
  SHOAL_NODE_NAME=prestop \
  SHOAL_ACCESS_LOG_SAMPLE=0 DATABASE_URL="postgresql://shoal@127.0.0.1:1/shoal" REDIS_URL="redis://127.0.0.1:1/0" \
  SHOAL_CACHE_URL= \
  unshare --pid --fork --kill-child "$binary" "${args[@]}" >"$TMP/node.log" 2>&1 &
outer_pid=$!

# The probes' port (the Deployment names it "admin"), and the public one.
status_of() { curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$admin$1" || true; }
public_status_of() { curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$base$1" || true; }
for _ in $(seq 100); do
  [ "$(status_of /readyz)" = 200 ] && break
  sleep 0.1
done
check "the node serves with the ConfigMap's settings and args '${args[*]}'" [ "$(status_of /readyz)" = 200 ]
check "its public port serves /healthz and answers /readyz 404" \
  [ "$(public_status_of /healthz) $(public_status_of /readyz)" = "200 404" ]
node_pid=$(pgrep -P "$outer_pid" || true)
check "the node is PID 1 of its namespace" \
  grep -qE '^NSpid:[[:space:]]+[0-9]+[[:space:]]+1$' "/proc/${node_pid:-0}/status"
if [ "$failures" -ne 0 ]; then cat "$TMP/node.log"; exit 1; fi

# The hook, in the node's PID namespace, with the container's environment.
start=$(date +%s%N)
env -i PATH=/usr/bin:/bin "${settings[@]}" nsenter --target "$node_pid" --pid -- "${hook[@]}" &
hook_pid=$!
# The hook signals the node at once; the node turns /readyz 503 as soon as
# it handles the signal, well inside the hook's wait.
for _ in $(seq 60); do
  [ "$(status_of /readyz)" = 503 ] && break
  sleep 0.05
done
check "during the hook /readyz answers 503" [ "$(status_of /readyz)" = 503 ]
check "during the hook /healthz answers 200 (liveness holds, the listener is open)" [ "$(status_of /healthz)" = 200 ]
hook_rc=0
wait "$hook_pid" || hook_rc=$?
hook_ms=$(( ($(date +%s%N) - start) / 1000000 ))
check "the hook exits 0 (after $hook_ms ms)" [ "$hook_rc" = 0 ]
check "the node is still draining when the hook returns" kill -0 "$node_pid"
check "the hook waited most of the drain delay" [ "$hook_ms" -ge 1000 ]

# The kubelet's SIGTERM, once the hook has returned.
kill -TERM "$node_pid" 2>/dev/null || true
node_rc=0
wait "$outer_pid" || node_rc=$?
outer_pid=""
total_ms=$(( ($(date +%s%N) - start) / 1000000 ))
check "the node exits 0" [ "$node_rc" = 0 ]
check "the kubelet's SIGTERM ends the drain delay" grep -q 'cutting the drain delay short' "$TMP/node.log"
check "hook and shutdown ($total_ms ms) fit terminationGracePeriodSeconds (${termination}s)" \
  [ "$total_ms" -lt $(( termination * 1000 )) ]

if [ "$failures" -ne 0 ]; then
  echo "node log:"; cat "$TMP/node.log"
  echo "k8s_prestop_test: FAILED"
  exit 1
fi
echo "k8s_prestop_test: all checks passed"
