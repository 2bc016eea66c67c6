#!/usr/bin/env bash
# tests/deploy/k8s_validate_test.sh: the Kubernetes manifests in deploy/k8s,
# checked without a cluster and without starting anything.
#   - yamllint (Debian) accepts every file, warnings included
#   - k8s_check.py builds the objects as `kubectl apply -k` would and checks
#     the rules the deployment depends on (probes, preStop drain, grace
#     period, resources, non-root security context, selectors, the migration
#     Job, the Secret's example values, TLS); then it breaks each rule in
#     memory and must catch every break
#   - every object validates against the Kubernetes OpenAPI schema, as the
#     npm package kubernetes-models compiles it (installed with npm once per
#     machine, outside the clone: tests/support/npm_tool), and a broken
#     object does not
#   - where a kubectl is installed, `kubectl kustomize` builds the same
#     objects (Debian has none recent enough, so this step is optional)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
HERE=tests/deploy
MODELS_VERSION=5.1.0

FAILED=0
pass() { echo "ok   - $*"; }
fail() { echo "FAIL - $*"; FAILED=1; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# Installs missing Debian packages (root only), as `deploy/local deps --tests` does.
need() {
  local probe=$1; shift
  eval "$probe" >/dev/null 2>&1 && return 0
  [ "$(id -u)" = 0 ] || { echo "missing, and this is not root: apt-get install $*" >&2; exit 1; }
  echo "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null
}
need 'command -v yamllint' yamllint
need '/usr/bin/python3 -c "import yaml"' python3-yaml
need 'command -v npm' nodejs npm

echo "# yamllint ($(yamllint --version))"
if yamllint -s -c "$HERE/yamllint.yaml" deploy/k8s; then
  pass "yamllint -s accepts deploy/k8s"
else
  fail "yamllint -s rejects deploy/k8s"
fi

echo "# the rules (k8s_check.py)"
if /usr/bin/python3 "$HERE/k8s_check.py" --render "$TMP/objects.json"; then :; else FAILED=1; fi
echo "# every rule can fail (k8s_check.py --self-test)"
if /usr/bin/python3 "$HERE/k8s_check.py" --self-test; then :; else FAILED=1; fi

echo "# schema (kubernetes-models $MODELS_VERSION)"
TOOLS=$("$HERE/../support/npm_tool" kubernetes-models "$MODELS_VERSION") \
  || { fail "npm install kubernetes-models@$MODELS_VERSION"; exit 1; }
MODELS=$TOOLS/node_modules
grep -q "\"version\": \"$MODELS_VERSION\"" "$MODELS/kubernetes-models/package.json" \
  || { fail "$MODELS holds kubernetes-models $MODELS_VERSION"; exit 1; }
if [ -s "$TMP/objects.json" ] && node "$HERE/k8s_schema.mjs" "$MODELS" "$TMP/objects.json"; then
  pass "every object matches its schema"
else
  fail "schema validation"
fi
# The validator must be able to say no: a string where an integer belongs.
/usr/bin/python3 - "$TMP/objects.json" "$TMP/broken.json" <<'PY'
import json, sys
objects = json.load(open(sys.argv[1]))
for o in objects:
    if o["kind"] == "Deployment":
        o["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["periodSeconds"] = "2s"
json.dump(objects, open(sys.argv[2], "w"))
PY
if node "$HERE/k8s_schema.mjs" "$MODELS" "$TMP/broken.json" >"$TMP/broken.out" 2>&1; then
  cat "$TMP/broken.out"
  fail "the schema check accepts periodSeconds: \"2s\""
elif grep -q 'periodSeconds must be integer' "$TMP/broken.out"; then
  pass "the schema check rejects periodSeconds: \"2s\""
else
  cat "$TMP/broken.out"
  fail "the schema check failed on the broken Deployment for another reason"
fi

echo "# kubectl kustomize"
if command -v kubectl >/dev/null && kubectl kustomize --help >/dev/null 2>&1; then
  if kubectl kustomize deploy/k8s >"$TMP/kustomized.yaml" 2>"$TMP/kustomize.err"; then
    pass "kubectl kustomize deploy/k8s builds ($(kubectl version --client 2>/dev/null | head -n 1))"
    # The same objects, names, namespaces and images as k8s_check.py built.
    if /usr/bin/python3 - "$TMP/objects.json" "$TMP/kustomized.yaml" <<'PY'
import json, sys, yaml
def key(o):
    containers = o.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
    return (o["kind"], o["metadata"]["name"], o["metadata"].get("namespace"),
            tuple(c.get("image") for c in containers))
ours = sorted(map(key, json.load(open(sys.argv[1]))))
theirs = sorted(map(key, [d for d in yaml.safe_load_all(open(sys.argv[2])) if d]))
if ours != theirs:
    print("k8s_check.py:    ", ours)
    print("kubectl kustomize:", theirs)
    sys.exit(1)
PY
    then
      pass "kubectl kustomize builds the objects k8s_check.py checked"
    else
      fail "kubectl kustomize and k8s_check.py build different objects"
    fi
  else
    cat "$TMP/kustomize.err"
    fail "kubectl kustomize deploy/k8s"
  fi
else
  echo "skip - no kubectl with kustomize here (optional)"
fi

if command -v shellcheck >/dev/null; then
  if shellcheck "$HERE/k8s_validate_test.sh" "$HERE/k8s_prestop_test.sh"; then pass "shellcheck is clean"; else fail "shellcheck found problems"; fi
fi

if [ "$FAILED" -ne 0 ]; then
  echo "k8s_validate_test: FAILED"
  exit 1
fi
echo "k8s_validate_test: all checks passed"
