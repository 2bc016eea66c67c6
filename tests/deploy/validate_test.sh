#!/usr/bin/env bash
# tests/deploy/validate_test.sh: the deployment files, checked without a
# Docker engine and without starting anything.
#   - docker-compose.yml is valid for docker-compose (Debian's 1.29) and keeps
#     the node service scalable (no container_name, no host ports, a CPU limit,
#     a stop grace period longer than drain delay + grace period), and the
#     nodes' admin port is what HAProxy checks and is never published
#   - HAProxy 2.6 accepts lb/haproxy.cfg with the compose backend, and with
#     the local backend that deploy/local renders for 2 and 4 nodes (health
#     checks on each node's admin port), without a single warning
#   - the compose backend addresses at least 64 replicas, every "up to N
#     replicas" in the docs says the same N, and both backends bring a node
#     in gradually (slowstart)
#   - HAProxy's own error answers (lb/errors/*.http) carry the JSON envelope
#   - the Dockerfile's runtime stage runs as a non-root user, and its build
#     stage configures from what it copies
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"

FAILED=0
pass() { echo "ok   - $*"; }
fail() { echo "FAIL - $*"; FAILED=1; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# Installs a missing Debian package (root only; apt-get update only then).
need() {
  local cmd=$1 pkg=$2
  command -v "$cmd" >/dev/null && return 0
  [ "$(id -u)" = 0 ] || { echo "$cmd is missing and this is not root: apt-get install $pkg" >&2; exit 1; }
  echo "installing $pkg"
  DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$pkg" >/dev/null
}
need docker-compose docker-compose
need haproxy haproxy
need python3 python3

# ------------------------------------------------------------ compose

echo "# docker-compose.yml"
if out=$(docker-compose -f docker-compose.yml config -q 2>&1); then
  pass "docker-compose config -q accepts docker-compose.yml"
else
  echo "$out"
  fail "docker-compose config -q rejects docker-compose.yml"
fi

# The resolved configuration, checked for what scaling and draining need.
if docker-compose -f docker-compose.yml config >"$TMP/compose.yml" 2>"$TMP/compose.err"; then
  if python3 - "$TMP/compose.yml" lb/backend-compose.cfg <<'EOF'
import re, sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
backend = open(sys.argv[2]).read()
s = c["services"]
problems = []
def check(cond, what):
    print(("ok   - " if cond else "FAIL - ") + what)
    if not cond:
        problems.append(what)
check(set(s) >= {"postgres", "redis", "node", "lb"}, "services postgres, redis, node and lb exist")
node = s.get("node", {})
check("container_name" not in node, "node has no container_name (it can be scaled)")
check("ports" not in node, "node publishes no host ports (it can be scaled)")
check(float(node.get("cpus", 0) or 0) > 0, "node has a CPU limit (cpus)")
def seconds(v):
    m = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", str(v))
    return int(m.group(1) or 0) * 60 + int(m.group(2) or 0) if m else 0
env = node.get("environment", {})
drain = int(env.get("SHOAL_DRAIN_DELAY_MS", 5000)) + int(env.get("SHOAL_GRACE_PERIOD_MS", 10000))
check(seconds(node.get("stop_grace_period", "10s")) * 1000 > drain,
      "node stop_grace_period exceeds drain delay + grace period (%d ms)" % drain)
check(node.get("build", {}).get("dockerfile") == "deploy/Dockerfile", "node builds deploy/Dockerfile")
dep = node.get("depends_on", {})
check(isinstance(dep, dict) and dep.get("postgres", {}).get("condition") == "service_healthy",
      "node waits for a healthy postgres")
check("@postgres:" in env.get("DATABASE_URL", "") and "//redis:" in env.get("REDIS_URL", ""),
      "node reaches postgres and redis by service name")
pg = " ".join(map(str, s.get("postgres", {}).get("command", [])))
check("shared_preload_libraries=pg_stat_statements" in pg and "max_connections=" in pg,
      "postgres preloads pg_stat_statements and sets max_connections")
redis_cmd = " ".join(map(str, s.get("redis", {}).get("command", [])))
check("--appendonly yes" in redis_cmd, "redis appends only")
check("--maxmemory-policy noeviction" in redis_cmd, "redis never evicts (sessions live there)")
cache_cmd = " ".join(map(str, s.get("cache", {}).get("command", [])))
check("--maxmemory-policy allkeys-lru" in cache_cmd and "--appendonly no" in cache_cmd and "--maxmemory " in cache_cmd,
      "cache evicts with allkeys-lru under a maxmemory and does not persist")
check("//cache:" in env.get("SHOAL_CACHE_URL", ""), "node reaches the cache by service name")
lb = s.get("lb", {})
check(str(lb.get("image", "")).startswith("haproxy:2.6"), "lb runs haproxy:2.6")
# Long syntax (dict) or short ("[host_ip:]published:target[/proto]").
targets = {str(p["target"]) if isinstance(p, dict) else str(p).split("/")[0].rsplit(":", 1)[-1]
           for p in lb.get("ports", [])}
check({"8080", "8404"} <= targets, "lb publishes 8080 and 8404")
# The admin listener: checked by HAProxy, reachable on the compose network
# only (the node publishes no port at all, see above).
admin = str(env.get("SHOAL_ADMIN_PORT", ""))
check(admin.isdigit() and admin != str(env.get("SHOAL_PORT")), "node has an admin port of its own (SHOAL_ADMIN_PORT)")
check(admin in {str(p) for p in node.get("expose", [])}, "node exposes its admin port to the compose network")
check(re.search(r"^\s*default-server\s.*\bport %s\b" % re.escape(admin), backend, re.M) is not None,
      "lb/backend-compose.cfg checks the nodes on their admin port (%s)" % admin)
check(admin not in targets, "lb does not publish the nodes' admin port")
cmd = " ".join(map(str, lb.get("command", [])))
check("haproxy.cfg" in cmd and "backend-compose.cfg" in cmd, "lb loads haproxy.cfg and backend-compose.cfg")
sys.exit(1 if problems else 0)
EOF
  then :; else FAILED=1; fi
else
  cat "$TMP/compose.err"
  fail "docker-compose config could not resolve docker-compose.yml"
fi

# ------------------------------------------------------------ HAProxy

# haproxy_check NAME ENV... -- FILES...: valid, and not one warning.
haproxy_check() {
  local name=$1; shift
  local -a vars=() files=()
  while [ "$1" != -- ]; do vars+=("$1"); shift; done
  shift
  for f in "$@"; do files+=(-f "$f"); done
  local out rc=0
  out=$(env "${vars[@]}" haproxy -c "${files[@]}" 2>&1) || rc=$?
  if [ "$rc" -eq 0 ] && ! grep -qE '\[(WARNING|ALERT)\]' <<<"$out"; then
    pass "haproxy -c: $name"
  else
    grep -vE '^\[NOTICE\]' <<<"$out" || true
    fail "haproxy -c: $name (exit $rc or warnings above)"
  fi
}

echo "# HAProxy ($(haproxy -v | head -n 1))"
haproxy_check "compose (lb/haproxy.cfg + lb/backend-compose.cfg)" \
  SHOAL_LB_BIND=0.0.0.0 SHOAL_LB_PORT=8080 SHOAL_STATS_PORT=8404 \
  -- lb/haproxy.cfg lb/backend-compose.cfg
haproxy_check "defaults when no variable is set" -- lb/haproxy.cfg lb/backend-compose.cfg

for n in 2 4; do
  out_dir=$TMP/local-$n
  # A private state folder, so that a running local stack is not touched.
  if ! rendered=$(SHOAL_STATE=$TMP/state-$n deploy/local render-lb --nodes "$n" --out "$out_dir"); then
    fail "deploy/local render-lb --nodes $n"
    continue
  fi
  servers=$(grep -cE '^[[:space:]]*server node[0-9]+ 127\.0\.0\.1:[0-9]+' "$rendered" || true)
  if [ "$servers" = "$n" ]; then
    pass "render-lb --nodes $n writes $n server lines"
  else
    fail "render-lb --nodes $n writes $servers server lines, not $n"
  fi
  # nodeK: public port 8081+K-1, health checks on its admin port 9081+K-1.
  checked=$(awk '$1 == "server" && $2 ~ /^node[0-9]+$/ {
                   k = substr($2, 5) + 0
                   if ($3 == "127.0.0.1:" (8080 + k) && $4 == "port" && $5 == (9080 + k)) n++
                 } END { print n + 0 }' "$rendered")
  if [ "$checked" = "$n" ]; then
    pass "render-lb --nodes $n checks each node on its admin port (SHOAL_ADMIN_BASE_PORT + K - 1)"
  else
    fail "render-lb --nodes $n: $checked of $n server lines check the node's admin port: $(grep server "$rendered")"
  fi
  haproxy_check "local, $n nodes" \
    SHOAL_LB_BIND=127.0.0.1 SHOAL_LB_PORT=18080 SHOAL_STATS_PORT=18404 \
    -- lb/haproxy.cfg "$rendered"
done

# The backend settings the e2e behaviour depends on, in the shared file.
for want in 'balance leastconn' 'option httpchk GET /readyz' 'http-check expect status 200' \
            'inter 1s fall 2 rise 2' 'retries 3' 'option redispatch 1' 'http-reuse safe' \
            'option forwardfor' 'http-request disable-l7-retry' 'prometheus-exporter' 'stats uri /stats'; do
  if grep -qF -- "$want" lb/haproxy.cfg; then pass "lb/haproxy.cfg has '$want'"; else fail "lb/haproxy.cfg lacks '$want'"; fi
done

# How many replicas compose may run: one server slot each, and a replica
# without a slot gets no traffic, silently. The docs must name the same
# maximum wherever they give one. A node that comes up takes its share of
# requests gradually, in both backends.
echo "# node count and slowstart"
if python3 - <<'EOF'
import glob, re, sys
problems = []
def check(cond, what):
    print(("ok   - " if cond else "FAIL - ") + what)
    if not cond:
        problems.append(what)
compose = open("lb/backend-compose.cfg").read()
templates = re.findall(r"^\s*server-template\s+\S+\s+(\d+)-(\d+)\s", compose, re.M)
check(len(templates) == 1, "lb/backend-compose.cfg has one server-template")
slots = int(templates[0][1]) - int(templates[0][0]) + 1 if templates else 0
check(slots >= 64, f"the compose backend addresses at least 64 replicas ({slots})")
documented = 0
for path in ["README.md", "docker-compose.yml", "lb/backend-compose.cfg"] + sorted(glob.glob("docs/*.md")):
    text = re.sub(r"\s+", " ", open(path).read())
    for n in re.findall(r"[Uu]p to (\d+) (?:compose )?replicas", text):
        documented += 1
        check(int(n) == slots, f"{path}: 'up to {n} replicas' agrees with the template ({slots})")
check(documented >= 3, f"the maximum is documented (README, compose, operations): {documented} mentions")
for path in ["lb/backend-compose.cfg", "lb/backend-local.cfg.in"]:
    text = open(path).read()
    backend = text[text.index("backend nodes"):] if "backend nodes" in text else ""
    check(re.search(r"^\s*default-server\b.*\bslowstart\s+\d+s\b", backend, re.M) is not None,
          f"{path}: default-server slowstart in backend nodes")
sys.exit(1 if problems else 0)
EOF
then :; else FAILED=1; fi

# HAProxy's own answers (errorfile): whole HTTP responses with the nodes'
# JSON envelope and security headers, one per status HAProxy makes itself,
# each referenced by lb/haproxy.cfg (relative to it: default-path config),
# so that the compose container (./lb mounted whole) finds them too.
echo "# lb/errors"
if python3 - lb <<'EOF'
import json, os, re, sys
lb = sys.argv[1]
cfg = open(os.path.join(lb, "haproxy.cfg")).read()
problems = []
def check(cond, what):
    print(("ok   - " if cond else "FAIL - ") + what)
    if not cond:
        problems.append(what)
check(re.search(r"^\s*default-path config\s*$", cfg, re.M) is not None, "lb/haproxy.cfg: default-path config")
referenced = dict(re.findall(r"^\s*errorfile (\d{3}) (\S+)", cfg, re.M))
for status in ("400", "403", "408", "413", "425", "429", "500", "501", "502", "503", "504"):
    path = referenced.get(status)
    if not check(path is not None and not path.startswith("/"), f"errorfile {status} is set, relative to lb/"):
        continue
    raw = open(os.path.join(lb, path), "rb").read()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    check(lines[0].startswith(f"HTTP/1.1 {status} ".encode()), f"{path}: the status line says {status}")
    check(headers.get("content-length") == str(len(body)), f"{path}: Content-Length is the body's length")
    check(headers.get("content-type") == "application/json", f"{path}: Content-Type application/json")
    try:
        envelope = json.loads(body)
    except ValueError:
        envelope = None
    check(isinstance(envelope, dict) and isinstance(envelope.get("code"), str) and envelope["code"] != ""
          and isinstance(envelope.get("errors"), dict) and len(envelope["errors"]) > 0
          and all(isinstance(v, list) and v for v in envelope["errors"].values()),
          f"{path}: the body is the JSON error envelope")
    check(headers.get("x-content-type-options") == "nosniff" and "content-security-policy" in headers
          and headers.get("cache-control") == "no-store", f"{path}: the security headers")
    if status in ("429", "503"):
        check(headers.get("retry-after", "").isdigit(), f"{path}: Retry-After")
sys.exit(1 if problems else 0)
EOF
then :; else FAILED=1; fi

# ------------------------------------------------------------ Dockerfile

echo "# deploy/Dockerfile"
# The runtime stage is everything after the last FROM; its last USER wins.
runtime=$(awk 'toupper($1) == "FROM" { stage = "" } { stage = stage $0 "\n" } END { printf "%s", stage }' deploy/Dockerfile)
user=$(awk 'toupper($1) == "USER" { u = $2 } END { print u }' <<<"$runtime")
if [ -n "$user" ] && [[ ! $user =~ ^(root|0)(:|$) ]]; then
  pass "runtime stage runs as non-root USER $user"
else
  fail "runtime stage has no non-root USER (found '${user:-none}')"
fi
stages=$(grep -ciE '^FROM ' deploy/Dockerfile)
if [ "$stages" -ge 2 ] && grep -qiE '^FROM debian:12-slim' <<<"$runtime"; then
  pass "multi-stage build, runtime on debian:12-slim"
else
  fail "expected a build stage and a debian:12-slim runtime stage"
fi
for want in 'EXPOSE 8080' 'STOPSIGNAL SIGTERM' 'ENTRYPOINT'; do
  if grep -qE "^$want" <<<"$runtime"; then pass "runtime stage has $want"; else fail "runtime stage lacks $want"; fi
done
image_admin=$(grep -oE 'SHOAL_ADMIN_PORT=[0-9]+' <<<"$runtime" | tail -n 1 | cut -d= -f2)
if [ -n "$image_admin" ] && grep -qE "^EXPOSE .*\b$image_admin\b" <<<"$runtime"; then
  pass "runtime stage sets and exposes the admin port ($image_admin)"
else
  fail "runtime stage lacks SHOAL_ADMIN_PORT, or does not EXPOSE it"
fi

# The build stage configures from what it copies, nothing else: each COPY
# of the first stage (paths of the build context) into a bare folder, then
# CMake's configure and generate steps, which fail on any source file, test
# or folder the tree's CMakeLists.txt files name that the image lacks.
build_stage=$(awk 'toupper($1) == "FROM" { n++ } n == 1' deploy/Dockerfile)
context="$TMP/docker-context"
mkdir -p "$context"
copied=1
while read -r _ source destination; do
  [[ $source == --* ]] && continue
  destination=${destination%/}
  [ "$destination" = "." ] && destination=$source
  mkdir -p "$context/$(dirname "$destination")"
  cp -a "$source" "$context/$destination" || copied=0
done < <(grep -iE '^COPY ' <<<"$build_stage")
if [ "$copied" = 1 ] && cmake -S "$context" -B "$context/build" -DCMAKE_BUILD_TYPE=Release >"$TMP/docker-configure.log" 2>&1; then
  pass "the build stage's COPY lines hold everything CMake's configure reads"
else
  sed 's/^/    /' "$TMP/docker-configure.log" | grep -iE 'error|cannot|not find' | head -n 5 || true
  fail "the build stage does not configure from what it copies (COPY every folder the CMakeLists.txt files read)"
fi

# ------------------------------------------------------------ launcher

echo "# deploy/local"
if bash -n deploy/local; then pass "deploy/local parses"; else fail "deploy/local does not parse"; fi
if command -v shellcheck >/dev/null; then
  if shellcheck deploy/local tests/deploy/validate_test.sh tests/e2e/two_nodes_test.sh; then
    pass "shellcheck is clean"
  else
    fail "shellcheck found problems"
  fi
fi

if [ "$FAILED" -ne 0 ]; then
  echo "validate_test: FAILED"
  exit 1
fi
echo "validate_test: all checks passed"
