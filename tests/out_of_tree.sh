#!/bin/sh
# A plugin built out of tree against an installed planetbridge (docs/writing-a-plugin.md):
# installs this build into a temporary prefix, checks the installed binary finds its core and
# its plugins there, builds plugins/template as a project of its own with find_package(planetbridge),
# loads it into the installed binary with --plugin-dir, checks its stream, and runs its ctest.
#   tests/out_of_tree.sh <build dir> <source dir> [cmake] [ctest]
set -eu
build=$1 src=$2 cmake=${3:-cmake} ctest=${4:-ctest}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pb_out_of_tree_XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
unset PLANETBRIDGE_PLUGIN_PATH  # only --plugin-dir and the prefix's own plugins
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }
# Checks that the dynamic loader resolves file's libplanetbridge_core to the prefix's copy.
core_in_prefix() {
  core=$(ldd "$1" | sed -n 's/^[[:space:]]*libplanetbridge_core[^ ]* => \([^ ]*\) .*/\1/p')
  [ -n "$core" ] && [ "$(dirname "$(realpath "$core")")" = "$(realpath "$prefix/lib")" ] ||
    { ldd "$1"; fail "$1 does not load $prefix/lib/libplanetbridge_core"; }
}

step "install $build into $prefix"
"$cmake" --install "$build" --prefix "$prefix" >"$tmp/install.log" || { cat "$tmp/install.log"; fail "cmake --install"; }
pb=$prefix/bin/planetbridge
for f in "$pb" "$prefix/lib/libplanetbridge_core.so" "$prefix/lib/libplanetbridge_sdk.a" \
         "$prefix/lib/cmake/planetbridge/planetbridgeConfig.cmake" "$prefix/include/planetbridge/plugin.h" \
         "$prefix/include/planetbridge/decoder.h" "$prefix/include/planetbridge/version.h"; do
  [ -e "$f" ] || fail "not installed: $f"
done
[ ! -e "$prefix/lib/planetbridge/plugins/libplanet_template.so" ] || fail "the template plugin is installed"

step "the installed binary and plugins find the installed core (RUNPATH)"
readelf -d "$pb" | grep -q 'R.*PATH.*\[\$ORIGIN/\.\./lib\]' || { readelf -d "$pb" | grep PATH; fail "$pb: RUNPATH is not \$ORIGIN/../lib"; }
core_in_prefix "$pb"
installed=0
for so in "$prefix"/lib/planetbridge/plugins/libplanet_*.so; do
  [ -e "$so" ] || continue
  core_in_prefix "$so"
  installed=$((installed + 1))
done
[ "$installed" -gt 0 ] || fail "no plugin installed in $prefix/lib/planetbridge/plugins"
"$pb" plugins >"$tmp/plugins0.txt" || { cat "$tmp/plugins0.txt"; fail "planetbridge plugins"; }
[ "$(grep -c "^  [a-z0-9_]* .*  $prefix/lib/planetbridge/plugins/libplanet_" "$tmp/plugins0.txt")" -eq "$installed" ] ||
  { cat "$tmp/plugins0.txt"; fail "the installed binary does not load its $installed installed plugins"; }

step "configure and build plugins/template against $prefix"
"$cmake" -S "$src/plugins/template" -B "$tmp/b" -DCMAKE_PREFIX_PATH="$prefix" -DBUILD_TESTING=ON \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF >"$tmp/configure.log" 2>&1 ||
  { cat "$tmp/configure.log"; fail "configure"; }
grep -q "^planetbridge_DIR:PATH=$prefix/lib/cmake/planetbridge$" "$tmp/b/CMakeCache.txt" ||
  { grep planetbridge_DIR "$tmp/b/CMakeCache.txt"; fail "find_package(planetbridge) did not find $prefix"; }
"$cmake" --build "$tmp/b" --parallel 2 >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; fail "build"; }
plugin_dir=$tmp/b/lib/planetbridge/plugins
[ -f "$plugin_dir/libplanet_template.so" ] || fail "no $plugin_dir/libplanet_template.so"

step "the installed planetbridge loads it with --plugin-dir"
"$pb" --plugin-dir "$plugin_dir" plugins >"$tmp/plugins.txt" || { cat "$tmp/plugins.txt"; fail "planetbridge plugins"; }
cat "$tmp/plugins.txt"
grep -q "^  template [^ ]*  $plugin_dir/libplanet_template.so$" "$tmp/plugins.txt" || fail "template is not loaded from $plugin_dir"
! grep -q "^refused" "$tmp/plugins.txt" || fail "a plugin was refused"

step "planetbridge check plugins/template/tests/streams/two_layers.json"
"$pb" --plugin-dir "$plugin_dir" check "$src/plugins/template/tests/streams/two_layers.json" --data "$tmp/runs" \
  >"$tmp/check.txt" 2>&1 || { cat "$tmp/check.txt"; fail "planetbridge check"; }
cat "$tmp/check.txt"
grep -q "EXACT" "$tmp/check.txt" || fail "the check is not EXACT"

step "the out-of-tree project's own tests"
"$ctest" --test-dir "$tmp/b" --output-on-failure || fail "ctest in $tmp/b"
[ "$("$ctest" --test-dir "$tmp/b" -N | sed -n 's/^Total Tests: //p')" -ge 1 ] || fail "the out-of-tree project registered no tests"
echo "out of tree: OK"
