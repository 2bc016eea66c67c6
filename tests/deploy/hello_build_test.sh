#!/usr/bin/env bash
# tests/deploy/hello_build_test.sh PREFIX OUT [CMAKE]: services built out of
# the tree against the libshoal installed in PREFIX (deploy.install_test
# leaves it there), as a user builds them, into OUT for deploy.hello_test:
#   - examples/minimal.c with exactly `cc minimal.c $(pkg-config --cflags
#     --libs shoal)` (the issue's command)
#   - examples/hello with cc and pkg-config (C11, -Wall -Wextra -Werror),
#     its migrations embedded by the installed embed_migrations.cmake that
#     `pkg-config --variable=embed_migrations shoal` names
#   - examples/hello as its own CMake project, find_package(shoal 0.2):
#     shoal::shoal (libshoal.so) and -DSHOAL_USE_STATIC=ON (libshoal.a)
#   - each binary runs: --version names the service and libshoal, hello's
#     --help lists --greeting beside --port; the shared ones need
#     libshoal.so, the static one does not
#   - examples/hello/Dockerfile's build stage, without Docker: its COPY
#     lines and RUN lines on PREFIX as the SDK's /opt/shoal; and the
#     runtime stages of both Dockerfiles install the package of every
#     library their binary needs (hello, PREFIX/bin/shoal-node)
# shellcheck disable=SC2015 # "check && pass || fail": pass never fails
set -euo pipefail

PREFIX=$(cd "${1:?usage: hello_build_test.sh PREFIX OUT [CMAKE]}" && pwd)
OUT=${2:?usage: hello_build_test.sh PREFIX OUT [CMAKE]}
CMAKE=${3:-cmake}
SOURCE=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CC=${CC:-cc}

FAILED=0
pass() { echo "ok   - $*"; }
fail() { echo "FAIL - $*"; FAILED=1; }

rm -rf "$OUT"
mkdir -p "$OUT"
LIBDIR=$(dirname "$(find "$PREFIX" -name shoal.pc -path '*/pkgconfig/*' | head -n 1)")/..
LIBDIR=$(cd "$LIBDIR" && pwd)
export PKG_CONFIG_PATH="$LIBDIR/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export LD_LIBRARY_PATH="$LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# The examples are copied: built outside the tree, they see nothing of it.
cp -r "$SOURCE/examples" "$OUT/src"

needs_libshoal() { readelf -d "$1" | grep -q 'NEEDED.*\[libshoal\.so'; }

# runs NAME BINARY SERVICE_VERSION: --version, and --help for hello.
runs() {
  local name=$1 binary=$2 version=$3 out
  if out=$("$binary" --version 2>&1) && grep -qE "^$version \\(libshoal [0-9]+\\.[0-9]+\\.[0-9]+\\)$" <<<"$out"; then
    pass "$name: --version says '$out'"
  else
    fail "$name: --version said '$out', not '$version (libshoal ...)'"
  fi
  if [ "$version" = "hello 0.1.0" ]; then
    out=$("$binary" --help 2>&1 || true)
    grep -qE '^  --greeting +HELLO_GREETING$' <<<"$out" && grep -qE '^  --port +SHOAL_PORT$' <<<"$out" &&
      pass "$name: --help lists --greeting beside --port" || fail "$name: --help lacks --greeting or --port"
  fi
}

# ---- pkg-config ----------------------------------------------------------------
cd "$OUT/src"
# shellcheck disable=SC2046 # word splitting of pkg-config's answer is the point
if "$CC" minimal.c -o "$OUT/minimal-pc" $(pkg-config --cflags --libs shoal) 2>"$OUT/minimal.log"; then
  pass "cc minimal.c \$(pkg-config --cflags --libs shoal)"
  needs_libshoal "$OUT/minimal-pc" && pass "minimal: linked to libshoal.so" || fail "minimal: libshoal.so not NEEDED"
  runs minimal "$OUT/minimal-pc" "hello 1.0.0"
else
  cat "$OUT/minimal.log"
  fail "minimal.c does not build with pkg-config"
fi
embed=$(pkg-config --variable=embed_migrations shoal)
[ -f "$embed" ] && pass "pkg-config names the installed embed_migrations.cmake" ||
  fail "pkg-config --variable=embed_migrations shoal: '$embed' is not a file"
# shellcheck disable=SC2046
if "$CMAKE" -DDIR=hello/migrations -DCOMPONENT=hello -DOUTPUT="$OUT/hello_migrations.c" -P "$embed" \
     >"$OUT/hello.log" 2>&1 &&
   "$CC" -std=c11 -Wall -Wextra -Werror hello/src/main.c "$OUT/hello_migrations.c" -o "$OUT/hello-pc" \
     $(pkg-config --cflags --libs shoal) 2>>"$OUT/hello.log"; then
  pass "hello: cc -std=c11 -Wall -Wextra -Werror with pkg-config"
  runs "hello (pkg-config)" "$OUT/hello-pc" "hello 0.1.0"
else
  cat "$OUT/hello.log"
  fail "hello does not build with pkg-config"
fi

# ---- find_package ----------------------------------------------------------------
for kind in shared static; do
  use_static=OFF
  [ "$kind" = static ] && use_static=ON
  dir=$OUT/hello-cmake-$kind
  if "$CMAKE" -S "$OUT/src/hello" -B "$dir" -DCMAKE_PREFIX_PATH="$PREFIX" -DSHOAL_USE_STATIC=$use_static \
       -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS=-Werror >"$OUT/cmake-$kind.log" 2>&1 &&
     "$CMAKE" --build "$dir" >>"$OUT/cmake-$kind.log" 2>&1; then
    pass "hello: find_package(shoal 0.2), $kind"
    if [ "$kind" = shared ]; then
      needs_libshoal "$dir/hello" && pass "hello (find_package): linked to libshoal.so" ||
        fail "hello (find_package): libshoal.so not NEEDED"
    else
      ! needs_libshoal "$dir/hello" && pass "hello (find_package, SHOAL_USE_STATIC): libshoal.a linked in" ||
        fail "hello (find_package, SHOAL_USE_STATIC): still needs libshoal.so"
    fi
    runs "hello (find_package, $kind)" "$dir/hello" "hello 0.1.0"
  else
    cat "$OUT/cmake-$kind.log"
    fail "hello: find_package(shoal 0.2), $kind: does not build"
  fi
done

# ---- the Dockerfiles' build and runtime stages -----------------------------------
# examples/hello/Dockerfile's build stage, run without Docker: its COPY
# lines into a bare folder (the image's /src), then its RUN lines with the
# SDK's /opt/shoal as this PREFIX and /usr/local/bin inside OUT. It must
# build from exactly what it copies. Then each runtime stage must install
# the Debian package of every library its binary needs (hello, and the
# shoal-node that the SDK's `cmake --install` put in PREFIX/bin).
image=$OUT/hello-image
mkdir -p "$image/src" "$image/usr/local/bin"
dockerfile=$SOURCE/examples/hello/Dockerfile
build_stage=$(awk 'toupper($1) == "FROM" { n++ } n == 1' "$dockerfile")
copied=1
while read -r _ source destination; do
  destination=${destination%/}
  [ "$destination" = . ] && destination=$source
  mkdir -p "$image/src/$(dirname "$destination")"
  cp -a "$SOURCE/examples/hello/$source" "$image/src/$destination" || copied=0
done < <(grep -E '^COPY ' <<<"$build_stage")
# RUN lines, continuations joined; nproc, the SDK's prefix and the install
# folder are the only things replaced.
run=$(awk '/^RUN / { on = 1; sub(/^RUN /, "") } on { line = line $0; if ($0 !~ /\\$/) { print line; line = ""; on = 0 } else sub(/\\$/, "", line) }' \
        <<<"$build_stage" | sed -e "s#/opt/shoal#$PREFIX#g" -e "s#/usr/local/bin/#$image/usr/local/bin/#g")
if [ "$copied" = 1 ] && [ -n "$run" ] &&
   (cd "$image/src" && PATH="$(dirname "$CMAKE"):$PATH" bash -euo pipefail -c "$run") >"$OUT/image.log" 2>&1 &&
   [ -x "$image/usr/local/bin/hello" ]; then
  pass "examples/hello/Dockerfile: the build stage builds from exactly its COPY lines on the SDK's install"
  ! needs_libshoal "$image/usr/local/bin/hello" && pass "examples/hello/Dockerfile: libshoal linked in" ||
    fail "examples/hello/Dockerfile: the image's hello needs libshoal.so, which its runtime stage lacks"
  runs "hello (its Dockerfile's build stage)" "$image/usr/local/bin/hello" "hello 0.1.0"
else
  tail -n 20 "$OUT/image.log" 2>/dev/null || true
  fail "examples/hello/Dockerfile: the build stage does not build from what it copies"
fi

# runtime_packages DOCKERFILE BINARY: every shared library BINARY needs comes
# from a package the runtime stage installs, or from debian:12-slim itself.
runtime_packages() {
  local dockerfile=$1 binary=$2 runtime wanted missing="" lib path pkg
  runtime=$(awk 'toupper($1) == "FROM" { stage = "" } { stage = stage $0 "\n" } END { printf "%s", stage }' "$dockerfile")
  wanted=" $(tr -s ' \\\n' ' ' <<<"$runtime") "
  for lib in $(readelf -d "$binary" | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p'); do
    path=$(ldd "$binary" | awk -v lib="$lib" '$1 == lib { print $3 }')
    pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -n 1 | cut -d: -f1) || pkg=""
    [ -z "$pkg" ] && pkg=$(dpkg -S "$path" 2>/dev/null | head -n 1 | cut -d: -f1)
    case $pkg in
      libc6 | libgcc-s1) continue ;;   # in every Debian image
      "") missing="$missing $lib(no Debian package: ${path:-not found})"; continue ;;
    esac
    [[ $wanted == *" $pkg "* ]] || missing="$missing $lib($pkg)"
  done
  [ -z "$missing" ] && pass "$dockerfile: the runtime stage installs every library $(basename "$binary") needs" ||
    fail "$dockerfile: the runtime stage lacks the packages of:$missing"
}
[ -x "$image/usr/local/bin/hello" ] && runtime_packages "$dockerfile" "$image/usr/local/bin/hello"
runtime_packages "$SOURCE/deploy/Dockerfile" "$PREFIX/bin/shoal-node"

[ "$FAILED" = 0 ] && echo "hello_build: all checks passed" || echo "hello_build: some checks FAILED"
exit "$FAILED"
