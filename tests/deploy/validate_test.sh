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
#     stage (the SDK: libshoal installed in /opt/shoal) configures from, and
#     installs, what it copies; the node image takes shoal-node from it
#   - examples/hello (a user's service) ships a Dockerfile on that SDK with
#     the same runtime rules, a compose file docker-compose accepts that
#     scales hello behind HAProxy, which finds the replicas by DNS and
#     checks their admin port (haproxy -c), and its black-box test script;
#     docs/guide.md shows its files as they are
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

# dockerfile_runtime FILE: its runtime stage (everything after the last
# FROM) runs as a numeric non-root user on debian:12-slim, after a build
# stage, and exposes, sets and stops what an orchestrator needs.
dockerfile_runtime() {
  local file=$1 runtime user stages image_admin
  runtime=$(awk 'toupper($1) == "FROM" { stage = "" } { stage = stage $0 "\n" } END { printf "%s", stage }' "$file")
  user=$(awk 'toupper($1) == "USER" { u = $2 } END { print u }' <<<"$runtime")
  if [[ $user =~ ^[0-9]+(:[0-9]+)?$ ]] && [[ ! $user =~ ^0(:|$) ]]; then
    pass "$file: runtime stage runs as non-root numeric USER $user"
  else
    fail "$file: runtime stage has no non-root numeric USER (found '${user:-none}')"
  fi
  stages=$(grep -ciE '^FROM ' "$file")
  if [ "$stages" -ge 2 ] && grep -qiE '^FROM debian:12-slim' <<<"$runtime"; then
    pass "$file: multi-stage build, runtime on debian:12-slim"
  else
    fail "$file: expected a build stage and a debian:12-slim runtime stage"
  fi
  for want in 'EXPOSE 8080' 'STOPSIGNAL SIGTERM' 'ENTRYPOINT'; do
    if grep -qE "^$want" <<<"$runtime"; then pass "$file: runtime stage has $want"; else fail "$file: runtime stage lacks $want"; fi
  done
  image_admin=$(grep -oE 'SHOAL_ADMIN_PORT=[0-9]+' <<<"$runtime" | tail -n 1 | cut -d= -f2)
  if [ -n "$image_admin" ] && grep -qE "^EXPOSE .*\b$image_admin\b" <<<"$runtime"; then
    pass "$file: runtime stage sets and exposes the admin port ($image_admin)"
  else
    fail "$file: runtime stage lacks SHOAL_ADMIN_PORT, or does not EXPOSE it"
  fi
  if grep -qE 'apt-get install' <<<"$runtime" && ! grep -qE -- '-dev\b|build-essential|cmake' <<<"$runtime"; then
    pass "$file: runtime stage installs runtime packages only (no -dev, compiler or cmake)"
  else
    fail "$file: runtime stage installs build packages, or nothing"
  fi
}

echo "# deploy/Dockerfile"
dockerfile_runtime deploy/Dockerfile
# The SDK: the first stage, named, libshoal installed where a service's
# build looks for it (examples/hello/Dockerfile, docs/guide.md).
sdk_stage=$(awk 'toupper($1) == "FROM" { n++ } n == 1' deploy/Dockerfile)
if grep -qE '^FROM debian:12 AS sdk$' <<<"$sdk_stage" &&
   grep -qE 'CMAKE_INSTALL_PREFIX=/opt/shoal' <<<"$sdk_stage" &&
   grep -qE 'cmake --install build' <<<"$sdk_stage" &&
   grep -qE '^ENV CMAKE_PREFIX_PATH=/opt/shoal' <<<"$sdk_stage"; then
  pass "deploy/Dockerfile: the first stage is 'sdk', with libshoal installed in /opt/shoal"
else
  fail "deploy/Dockerfile: no first stage 'FROM debian:12 AS sdk' that installs libshoal into /opt/shoal"
fi
# shoal-node comes out of the SDK's install, as a service's binary comes out
# of its build on the SDK: the runtime copies nothing else.
if [ "$(grep -ciE '^COPY --from=' deploy/Dockerfile)" = 1 ] &&
   grep -qE '^COPY --from=sdk /opt/shoal/bin/shoal-node ' deploy/Dockerfile; then
  pass "deploy/Dockerfile: the node image takes shoal-node from the SDK's install"
else
  fail "deploy/Dockerfile: the node image should copy only /opt/shoal/bin/shoal-node from the sdk stage"
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
  # `cmake --install` copies source files too (LICENSE, CHANGELOG.md, the
  # CMake modules): each must be in the context.
  missing=$(grep -rhoE "\"$context/[^\"]*\"" --include=cmake_install.cmake "$context/build" | tr -d '"' |
            grep -v "^$context/build/" | sort -u | while read -r f; do [ -e "$f" ] || printf "%s " "${f#"$context"/}"; done)
  if [ -z "$missing" ]; then
    pass "the build stage's COPY lines hold every source file cmake --install copies"
  else
    fail "cmake --install in the build stage would miss: $missing"
  fi
else
  sed 's/^/    /' "$TMP/docker-configure.log" | grep -iE 'error|cannot|not find' | head -n 5 || true
  fail "the build stage does not configure from what it copies (COPY every folder the CMakeLists.txt files read)"
fi

# ------------------------------------------------------------ examples/hello

# A user's service as a user ships it: its own image built on the SDK, its
# own compose file (PostgreSQL, Redis, the service scaled, HAProxy finding
# the replicas by DNS) and its own HAProxy configuration.
# (tests/deploy/hello_build_test.sh builds its image's build stage.)
echo "# examples/hello"
hello=examples/hello
for f in Dockerfile docker-compose.yml haproxy.cfg tests/hello_test.sh; do
  if [ -f "$hello/$f" ]; then pass "$hello/$f exists"; else fail "$hello/$f is missing"; fi
done
if [ -f "$hello/Dockerfile" ]; then
  dockerfile_runtime "$hello/Dockerfile"
  # The build stage is the SDK image (ARG SHOAL_SDK, default shoal-sdk:MAJOR.MINOR
  # of this tree), finding libshoal where the SDK installs it, linked in.
  version=$(sed -nE 's/^project\(shoal VERSION ([0-9]+\.[0-9]+)\..*/\1/p' CMakeLists.txt)
  first=$(awk 'toupper($1) == "FROM" { n++ } n == 1' "$hello/Dockerfile")
  if grep -qE "^ARG SHOAL_SDK=shoal-sdk:$version\$" "$hello/Dockerfile" &&
     grep -qE '^FROM \$\{SHOAL_SDK\} AS build$' <<<"$first"; then
    pass "$hello/Dockerfile: builds FROM the SDK image (ARG SHOAL_SDK=shoal-sdk:$version)"
  else
    fail "$hello/Dockerfile: the build stage should be 'FROM \${SHOAL_SDK} AS build' with ARG SHOAL_SDK=shoal-sdk:$version"
  fi
  if grep -qE -- '-DCMAKE_PREFIX_PATH=/opt/shoal\b' <<<"$first" && grep -qE -- '-DSHOAL_USE_STATIC=ON\b' <<<"$first"; then
    pass "$hello/Dockerfile: find_package(shoal) in /opt/shoal, libshoal.a linked in"
  else
    fail "$hello/Dockerfile: the build should pass -DCMAKE_PREFIX_PATH=/opt/shoal -DSHOAL_USE_STATIC=ON"
  fi
  if grep -qE '^(COPY|ADD) ' <<<"$first" && ! grep -qE '^(COPY|ADD) +\.\.' <<<"$first"; then
    pass "$hello/Dockerfile: copies from its own folder only (the build context is the service's folder)"
  else
    fail "$hello/Dockerfile: copies nothing, or from outside its folder"
  fi
fi
# docs/guide.md writes the service from an empty folder: each file it shows
# in full (a "<!-- file: PATH -->" line before the block) must be the
# skeleton's, which the suite builds and runs.
if python3 - docs/guide.md "$hello" <<'PY'
import os, re, sys
text = open(sys.argv[1]).read()
blocks = re.findall(r"<!-- file: (\S+) -->\n```[a-z]*\n(.*?)```", text, re.S)
problems = 0
for path, body in blocks:
    full = os.path.join(sys.argv[2], path)
    if os.path.exists(full) and open(full).read() != body:
        print("FAIL - docs/guide.md's %s differs from %s: copy the file into the guide" % (path, full))
        problems += 1
shown = {p for p, _ in blocks}
for need in ("CMakeLists.txt", "src/main.c", "migrations/0001_greetings.sql"):
    if need not in shown:
        print("FAIL - docs/guide.md does not show %s" % need)
        problems += 1
sys.exit(1 if problems else 0)
PY
then
  pass "docs/guide.md shows the skeleton's CMakeLists.txt, src/main.c and migration, as they are"
else
  fail "docs/guide.md's files are not the skeleton's"
fi
if [ -f "$hello/docker-compose.yml" ] && [ -f "$hello/haproxy.cfg" ]; then
  if out=$(docker-compose -f "$hello/docker-compose.yml" config -q 2>&1); then
    pass "docker-compose config -q accepts $hello/docker-compose.yml"
  else
    echo "$out"
    fail "docker-compose config -q rejects $hello/docker-compose.yml"
  fi
  haproxy_check "$hello/haproxy.cfg" -- "$hello/haproxy.cfg"
  haproxy_check "$hello/haproxy.cfg with its compose environment" HELLO_LB_PORT=8080 HELLO_STATS_PORT=8404 \
    -- "$hello/haproxy.cfg"
  if docker-compose -f "$hello/docker-compose.yml" config >"$TMP/hello-compose.yml" 2>"$TMP/hello-compose.err"; then
    if python3 - "$TMP/hello-compose.yml" "$hello" <<'PY'
import os, re, sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
folder = sys.argv[2]
cfg = open(os.path.join(folder, "haproxy.cfg")).read()
dockerfile = open(os.path.join(folder, "Dockerfile")).read()
runtime = re.split(r"(?im)^FROM ", dockerfile)[-1]
problems = []
def check(cond, what):
    print(("ok   - " if cond else "FAIL - ") + what)
    if not cond:
        problems.append(what)
s = c["services"]
check(set(s) >= {"postgres", "redis", "hello", "lb"}, "hello's compose: services postgres, redis, hello and lb")
h = s.get("hello", {})
check(os.path.realpath(h.get("build", {}).get("context", "")) == os.path.realpath(folder)
      and h.get("build", {}).get("dockerfile", "Dockerfile") == "Dockerfile",
      "hello builds its own folder's Dockerfile")
check("container_name" not in h, "hello has no container_name (--scale hello=N)")
ports = h.get("ports", [])
def published(p):
    return str(p.get("published", "")) if isinstance(p, dict) else (str(p).split(":")[-2] if str(p).count(":") >= 1 else "")
def host_ip(p):
    return str(p.get("host_ip", "")) if isinstance(p, dict) else (str(p).split(":")[0] if str(p).count(":") == 2 else "")
check(all(published(p) in ("", "None") for p in ports), "hello publishes no fixed host port (--scale hello=N)")
check(all(host_ip(p) == "127.0.0.1" for p in ports), "whatever hello publishes is on the host's loopback only")
check(float(h.get("cpus", 0) or 0) > 0, "hello has a CPU limit (cpus)")
env = h.get("environment", {})
def seconds(v):
    m = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", str(v))
    return int(m.group(1) or 0) * 60 + int(m.group(2) or 0) if m else 0
drain = int(env.get("SHOAL_DRAIN_DELAY_MS", 5000)) + int(env.get("SHOAL_GRACE_PERIOD_MS", 10000))
check(seconds(h.get("stop_grace_period", "10s")) * 1000 > drain,
      "hello's stop_grace_period exceeds drain delay + grace period (%d ms)" % drain)
dep = h.get("depends_on", {})
check(isinstance(dep, dict) and all(dep.get(t, {}).get("condition") == "service_healthy" for t in ("postgres", "redis")),
      "hello waits for a healthy postgres and redis")
check("@postgres:" in env.get("DATABASE_URL", "") and "//redis:" in env.get("REDIS_URL", ""),
      "hello reaches postgres and redis by service name")
for tier in ("postgres", "redis"):
    check("healthcheck" in s.get(tier, {}), "%s has a healthcheck" % tier)
# The image's ports, unless the compose file overrides them.
def image_env(name):
    m = re.findall(r"\b%s=(\d+)" % name, runtime)
    return m[-1] if m else ""
port = str(env.get("SHOAL_PORT", image_env("SHOAL_PORT")))
admin = str(env.get("SHOAL_ADMIN_PORT", image_env("SHOAL_ADMIN_PORT")))
check(port.isdigit() and admin.isdigit() and port != admin, "hello has a public port (%s) and an admin port (%s)" % (port, admin))
check({port, admin} <= {str(p) for p in h.get("expose", [])}, "hello exposes both to the compose network")
templates = re.findall(r"^\s*server-template\s+\S+\s+(\d+)-(\d+)\s+(\S+):(\d+)\s.*\bresolvers docker\b", cfg, re.M)
check(len(templates) == 1 and templates[0][2] == "hello" and templates[0][3] == port,
      "haproxy.cfg finds the replicas by DNS: server-template on hello:%s with resolvers docker" % port)
check(re.search(r"^\s*nameserver\s+\S+\s+127\.0\.0\.11:53\s*$", cfg, re.M) is not None,
      "haproxy.cfg asks Docker's embedded DNS (127.0.0.11)")
check(re.search(r"^\s*default-server\s.*\bcheck\b.*\bport %s\b" % re.escape(admin), cfg, re.M) is not None
      and re.search(r"^\s*option httpchk GET /readyz\s*$", cfg, re.M) is not None,
      "haproxy.cfg checks each replica's /readyz on the admin port (%s)" % admin)
check("balance leastconn" in cfg, "haproxy.cfg balances on outstanding requests (leastconn)")
lb = s.get("lb", {})
check(str(lb.get("image", "")).startswith("haproxy:2.6"), "lb runs haproxy:2.6")
mounts = [str(v) for v in lb.get("volumes", [])]
check(any(v.startswith(os.path.realpath(os.path.join(folder, "haproxy.cfg")) + ":") for v in mounts),
      "lb mounts the folder's haproxy.cfg")
targets = {str(p["target"]) if isinstance(p, dict) else str(p).split("/")[0].rsplit(":", 1)[-1] for p in lb.get("ports", [])}
check(port in targets, "lb publishes the public port")
check("--scale hello=" in open(os.path.join(folder, "docker-compose.yml")).read(),
      "the compose file says how to scale (--scale hello=N)")
sys.exit(1 if problems else 0)
PY
    then :; else FAILED=1; fi
  else
    cat "$TMP/hello-compose.err"
    fail "docker-compose config could not resolve $hello/docker-compose.yml"
  fi
fi

# ------------------------------------------------------------ launcher

echo "# deploy/local"
if bash -n deploy/local; then pass "deploy/local parses"; else fail "deploy/local does not parse"; fi
if command -v shellcheck >/dev/null; then
  if shellcheck deploy/local tests/deploy/validate_test.sh tests/e2e/two_nodes_test.sh examples/hello/tests/hello_test.sh; then
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
