#!/usr/bin/env bash
# tests/deploy/install_test.sh BUILD_DIR [CMAKE] [DEMO_ARCHIVE...]: the library
# as a user gets it, from `cmake --install` into a temporary prefix other
# than the one the build was configured for (so the install must be
# relocatable):
#   - the libraries (libshoal.a; libshoal.so with its SONAME libshoal.so.0.MINOR),
#     shoal.pc, the CMake package, shoal-node, the LICENSE and the public
#     headers under include/shoal/ are installed, and no private header
#   - every installed header compiles on its own with `pkg-config --cflags
#     shoal` (C11, -Wall -Wextra -Werror), includes no header of the private
#     dependencies, and every function it declares is defined by both libraries
#   - the libraries define no symbol of the demo services (Conduit, the
#     TechEmpower routes, seed, the embedded migrations)
#   - tests/deploy/consumer builds with pkg-config (shared, and libshoal.a
#     with its dependencies shared, whose `pkg-config --static` names them)
#     and with find_package(shoal) (shoal::shoal, shared and
#     SHOAL_USE_STATIC), and each build serves and answers (it runs)
#   - no installed text file names the build directory, the source
#     directory or the configured prefix
# shellcheck disable=SC2015 # "check && pass || fail": pass never fails
set -euo pipefail

BUILD=$(cd "${1:?usage: install_test.sh BUILD_DIR [CMAKE] [DEMO_ARCHIVE...]}" && pwd)
CMAKE=${2:-cmake}
DEMO_ARCHIVES=("${@:3}")
SOURCE=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CC=${CC:-cc}

FAILED=0
pass() { echo "ok   - $*"; }
fail() { echo "FAIL - $*"; FAILED=1; }
finish() {
  [ "$FAILED" = 0 ] && echo "install: all checks passed" || echo "install: some checks FAILED"
  exit "$FAILED"
}

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
PREFIX=$TMP/p
# SHOAL_TEST_INSTALL_PREFIX: install there instead, emptied first and kept
# afterwards, for the tests that build on the install (deploy.hello_build).
if [ -n "${SHOAL_TEST_INSTALL_PREFIX:-}" ]; then
  PREFIX=$SHOAL_TEST_INSTALL_PREFIX
  rm -rf "$PREFIX"
fi

cache_value() { sed -n "s/^$1:[A-Z]*=//p" "$BUILD/CMakeCache.txt"; }
CONFIGURED=$(cache_value CMAKE_INSTALL_PREFIX)
LIBDIR_NAME=$(cache_value CMAKE_INSTALL_LIBDIR)
LIBDIR=$PREFIX/${LIBDIR_NAME:-lib}
[ -n "$CONFIGURED" ] && [ "$CONFIGURED" != "$PREFIX" ] || { echo "cannot read the configured prefix" >&2; exit 1; }
echo "# build configured for $CONFIGURED, installed into $PREFIX"

if "$CMAKE" --install "$BUILD" --prefix "$PREFIX" >"$TMP/install.log" 2>&1; then
  pass "cmake --install --prefix $PREFIX"
else
  cat "$TMP/install.log"
  fail "cmake --install"
fi

# ---- the files -----------------------------------------------------------------
for file in "$LIBDIR/libshoal.a" "$LIBDIR/libshoal.so" "$LIBDIR/pkgconfig/shoal.pc" \
            "$LIBDIR/cmake/shoal/shoal-config.cmake" "$LIBDIR/cmake/shoal/shoal-config-version.cmake" \
            "$PREFIX/bin/shoal-node" "$PREFIX/include/shoal/shoal.h" "$PREFIX/share/doc/shoal/LICENSE"; do
  [ -e "$file" ] && pass "installed ${file#"$PREFIX"/}" || fail "not installed: ${file#"$PREFIX"/}"
done
[ "$FAILED" = 0 ] || finish

soname=$(readelf -d "$LIBDIR/libshoal.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
version=$("$PREFIX/bin/shoal-node" --version | awk '{print $2}')
minor=$(echo "$version" | cut -d. -f1,2)
[ "$soname" = "libshoal.so.$minor" ] && [ -e "$LIBDIR/libshoal.so.$minor" ] && [ -e "$LIBDIR/libshoal.so.$version" ] &&
  pass "SONAME $soname for $version, with its links" ||
  fail "SONAME '$soname' for shoal-node $version (want libshoal.so.$minor, libshoal.so.$version)"

# ---- headers -------------------------------------------------------------------
export PKG_CONFIG_PATH="$LIBDIR/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
[ "$(realpath "$(pkg-config --variable=includedir shoal)")" = "$(realpath "$PREFIX/include")" ] &&
  [ "$(realpath "$(pkg-config --variable=libdir shoal)")" = "$(realpath "$LIBDIR")" ] &&
  pass "shoal.pc points into the prefix it was installed in" ||
  fail "shoal.pc: includedir $(pkg-config --variable=includedir shoal), libdir $(pkg-config --variable=libdir shoal)"
CFLAGS_SHOAL=$(pkg-config --cflags shoal)

mapfile -t headers < <(cd "$PREFIX/include" && find shoal -name '*.h' | sort)
echo "# ${#headers[@]} headers: ${headers[*]}"
private=$(printf '%s\n' "${headers[@]}" | grep -E '(_internal|/context|/cache_script|/proxy|/url|/seed|/seed_command|/builtin_migrations|/demo_migrations|/api|/bench|/world|/fortune|/user|/profile|/article|/tag|/comment|/timestamp)\.h$' || true)
[ -z "$private" ] && pass "no private or demo header installed" || fail "private or demo headers installed: $private"
for header in "${headers[@]}"; do
  # shellcheck disable=SC2086
  if printf '#include <%s>\n' "$header" |
     "$CC" -std=c11 -Wall -Wextra -Werror -fsyntax-only $CFLAGS_SHOAL -x c - 2>"$TMP/header.log"; then
    pass "<$header> compiles on its own"
  else
    cat "$TMP/header.log"
    fail "<$header> does not compile on its own"
  fi
done
leaks=$(grep -lE '#include *[<"](microhttpd|hiredis/|libpq-fe|postgresql/|sodium)' "$PREFIX/include/shoal" -r || true)
[ -z "$leaks" ] && pass "no installed header includes microhttpd, hiredis, libpq or libsodium" ||
  fail "headers include a private dependency: $leaks"

# Every function the headers declare (gcc's -aux-info lists each
# prototype with the file it came from) must be in both libraries: a
# declaration whose definition stayed in the demo, or was removed, fails
# a user's link only when they call it.
printf '#include <%s>\n' "${headers[@]}" >"$TMP/all.c"
# shellcheck disable=SC2086
"$CC" -std=c11 $CFLAGS_SHOAL -aux-info "$TMP/aux.txt" -c "$TMP/all.c" -o "$TMP/all.o"
grep -E '^/\* [^:]*/include/shoal/' "$TMP/aux.txt" | grep -v '^/\*[^*]*\*/ *static ' |
  sed -E 's/\(.*//; s/.*[ *]([A-Za-z_][A-Za-z0-9_]*) *$/\1/' | sort -u >"$TMP/declared"
nm -g --defined-only "$LIBDIR/libshoal.a" 2>/dev/null | awk 'NF == 3 {print $3}' | sort -u >"$TMP/static.syms"
nm -D --defined-only "$LIBDIR/libshoal.so" | awk 'NF == 3 {print $3}' | sort -u >"$TMP/shared.syms"
# and the objects they declare (extern tables, extensions, error codes).
cat "$PREFIX/include/shoal"/*.h "$PREFIX/include/shoal/ext"/*.h | grep -E '^extern [^;(]*;' |
  sed -E 's/\[[^]]*\]//; s/^([^;]*[ *])?([A-Za-z_][A-Za-z0-9_]*) *;.*/\2/' >>"$TMP/declared"
sort -u -o "$TMP/declared" "$TMP/declared"
missing_static=$(comm -23 "$TMP/declared" "$TMP/static.syms" | tr '\n' ' ')
missing_shared=$(comm -23 "$TMP/declared" "$TMP/shared.syms" | tr '\n' ' ')
[ -s "$TMP/declared" ] && [ -z "$missing_static$missing_shared" ] &&
  pass "all $(wc -l <"$TMP/declared") declared functions and objects are exported by libshoal.a and libshoal.so" ||
  fail "declared but not exported: libshoal.a: ${missing_static:-none}; libshoal.so: ${missing_shared:-none}"
# and the shared library exports nothing else: what the library keeps
# for itself (shoal_app_dispatch, cache_session_lookup, ...) is no promise.
extra_shared=$(comm -13 "$TMP/declared" "$TMP/shared.syms" | tr '\n' ' ')
[ -z "$extra_shared" ] && pass "libshoal.so exports only what the headers declare" ||
  fail "libshoal.so exports what no installed header declares: $extra_shared"

# ---- no demo code in the library ----------------------------------------------
demo_pattern='^(api_|bench_|shoal_api_|shoal_bench_|shoal_seed|store_(user|profile|article|tag|comment|world|fortune)_|store_seed|store_builtin_migration|shoal_demo_|shoal_(conduit|techempower)_migrations)'
demo=$(cat "$TMP/static.syms" "$TMP/shared.syms" | grep -E "$demo_pattern" | sort -u | tr '\n' ' ' || true)
[ -z "$demo" ] && pass "the libraries define no api_, bench_, store_<demo>_, seed or migration symbol" ||
  fail "demo symbols in the library: $demo"
if [ "${#DEMO_ARCHIVES[@]}" -gt 0 ]; then
  nm -g --defined-only "${DEMO_ARCHIVES[@]}" 2>/dev/null | awk 'NF == 3 {print $3}' | sort -u >"$TMP/demo.syms"
  both=$(cat "$TMP/static.syms" "$TMP/shared.syms" | sort -u | comm -12 - "$TMP/demo.syms" | tr '\n' ' ')
  [ -s "$TMP/demo.syms" ] && [ -z "$both" ] &&
    pass "none of the demo libraries' $(wc -l <"$TMP/demo.syms") symbols is in libshoal" ||
    fail "demo symbols also in libshoal: ${both:-(no demo symbols read from ${DEMO_ARCHIVES[*]})}"
fi

# ---- a consumer, four ways ---------------------------------------------------------
needs_libshoal() { readelf -d "$1" | grep -q 'NEEDED.*\[libshoal\.so'; }
run_consumer() { # name binary [environment...]
  local name=$1 binary=$2
  shift 2
  if env "$@" "$binary" >"$TMP/run.out" 2>"$TMP/run.err"; then
    pass "$name: $(cat "$TMP/run.out")"
  else
    cat "$TMP/run.out" "$TMP/run.err"
    fail "$name: the consumer failed"
  fi
}
CONSUMER=$SOURCE/tests/deploy/consumer

# shellcheck disable=SC2046
if "$CC" -std=c11 -Wall -Wextra -Werror "$CONSUMER/consumer.c" -o "$TMP/consumer-pc" $(pkg-config --cflags --libs shoal); then
  needs_libshoal "$TMP/consumer-pc" && pass "pkg-config: linked to $soname" || fail "pkg-config: libshoal.so not NEEDED"
  run_consumer "pkg-config, shared" "$TMP/consumer-pc" LD_LIBRARY_PATH="$LIBDIR"
else
  fail "pkg-config: the consumer does not build"
fi

# A static link: `pkg-config --static` must name what libshoal.a needs
# (Requires.private, Libs.private), but its full answer is not linkable on
# Debian (it adds libpq's and GnuTLS's own private libraries, -lpgcommon
# -lunistring ..., which Debian ships for no link). So the static build
# takes libshoal.a by name (-lshoal finds the .so beside it) and its
# dependencies shared, as docs/extending.md shows.
static_all=" $(pkg-config --static --libs shoal) "
missing=""
for lib in -lshoal -lmicrohttpd -lhiredis -lpq -lsodium -ljansson -lpthread -lm; do
  [[ "$static_all" == *" $lib "* ]] || missing+=" $lib"
done
[ -z "$missing" ] && pass "pkg-config --static names libshoal.a's dependencies" ||
  fail "pkg-config --static --libs shoal lacks$missing"
static_libs="$(pkg-config --libs shoal libmicrohttpd hiredis libpq libsodium | sed 's/-lshoal\b/-l:libshoal.a/') -lpthread -lm"
# shellcheck disable=SC2086
if "$CC" -std=c11 -Wall -Wextra -Werror "$CONSUMER/consumer.c" -o "$TMP/consumer-pc-static" $CFLAGS_SHOAL $static_libs; then
  ! needs_libshoal "$TMP/consumer-pc-static" && pass "pkg-config, libshoal.a: linked in" ||
    fail "pkg-config, libshoal.a: still needs libshoal.so"
  run_consumer "pkg-config, static" "$TMP/consumer-pc-static"
else
  fail "pkg-config, libshoal.a: the consumer does not build"
fi

for kind in shared static; do
  use_static=OFF
  [ "$kind" = static ] && use_static=ON
  dir=$TMP/consumer-cmake-$kind
  if "$CMAKE" -S "$CONSUMER" -B "$dir" -DCMAKE_PREFIX_PATH="$PREFIX" -DSHOAL_USE_STATIC=$use_static \
       -DCMAKE_BUILD_TYPE=Release >"$TMP/cmake.log" 2>&1 &&
     "$CMAKE" --build "$dir" >>"$TMP/cmake.log" 2>&1; then
    if [ "$kind" = shared ]; then
      needs_libshoal "$dir/consumer" && pass "find_package: shoal::shoal is $soname" || fail "find_package: libshoal.so not NEEDED"
    else
      ! needs_libshoal "$dir/consumer" && pass "find_package, SHOAL_USE_STATIC: libshoal.a linked in" ||
        fail "find_package, SHOAL_USE_STATIC: still needs libshoal.so"
    fi
    run_consumer "find_package, $kind" "$dir/consumer"
  else
    cat "$TMP/cmake.log"
    fail "find_package, $kind: the consumer does not build"
  fi
done

# ---- relocatable ---------------------------------------------------------------
found=$(grep -rIl -F -e "$BUILD" -e "$SOURCE" -e "$CONFIGURED" "$PREFIX" || true)
[ -z "$found" ] && pass "no installed text file names $BUILD, $SOURCE or $CONFIGURED" ||
  fail "installed files name the build, the source or the configured prefix: $found"

finish
