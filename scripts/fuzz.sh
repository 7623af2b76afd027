#!/usr/bin/env bash
# Runs every fuzz target (tests/fuzz, docs/fuzzing.md) for SECONDS each (default 60), one at a time:
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      TARGET: stream entity suite http (default: all)
#
# Installs clang, libFuzzer and the sanitizer runtimes if missing, builds build-fuzz/ (clang,
# -DPB_FUZZ=ON: libFuzzer + ASan + UBSan), assembles the seed corpora, and runs each target with
# its seeds, its tracked corpus and regressions, and the corpus kept from earlier runs
# (build-fuzz/fuzz-work/corpus/<target>/). Exits non-zero if any target crashed, hung (> 10 s on
# one input) or ran out of memory (> 2048 MB); each such input is copied to
# tests/fuzz/regressions/<target>/ (replayed by ctest in every build from then on) and its path
# printed.
#
# Environment: PB_FUZZ_BUILD (build folder, default build-fuzz), PB_FUZZ_JOBS (build jobs,
# default nproc), PB_FUZZ_ARGS (extra libFuzzer flags for every target).
# The nightly job runs `scripts/fuzz.sh 600`, CI a smoke of `scripts/fuzz.sh 30`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

SECONDS_EACH=60
if [ $# -gt 0 ] && [[ $1 =~ ^[0-9]+$ ]]; then SECONDS_EACH=$1; shift; fi
ALL_TARGETS=(stream entity suite http)
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL_TARGETS[@]}")
for t in "${TARGETS[@]}"; do
  [[ " ${ALL_TARGETS[*]} " == *" $t "* ]] || { echo "fuzz: unknown target \"$t\" (expected: ${ALL_TARGETS[*]})" >&2; exit 2; }
done

BUILD=${PB_FUZZ_BUILD:-build-fuzz}
JOBS=${PB_FUZZ_JOBS:-$(nproc)}
WORK=$BUILD/fuzz-work

# ---------------------------------------------------------------- tools
# clang 14 with libFuzzer and the ASan/UBSan runtimes (libclang_rt.fuzzer-x86_64.a is in
# libclang-rt-14-dev), LLVM's OpenMP for clang, and what the project itself builds with.
APT_PACKAGES=(
  clang-14 libclang-rt-14-dev libomp-14-dev llvm-14
  g++ cmake make pkg-config python3
  libboost-dev libyaml-cpp-dev libdnnl-dev libcereal-dev nlohmann-json3-dev libcli11-dev zlib1g-dev libcpp-httplib-dev
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "fuzz: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
CLANG=$(command -v clang || command -v clang-14)
CLANGXX=$(command -v clang++ || command -v clang++-14)
SYMBOLIZER=$(command -v llvm-symbolizer-14 || command -v llvm-symbolizer || true)

# ---------------------------------------------------------------- build
t0=$(date +%s)
compilers=()  # named on the first configure only: naming them again would wipe the cache
[ -f "$BUILD/CMakeCache.txt" ] || compilers=(-DCMAKE_C_COMPILER="$CLANG" -DCMAKE_CXX_COMPILER="$CLANGXX")
cmake -S . -B "$BUILD" -DPB_FUZZ=ON -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo "${compilers[@]}" >/dev/null
cmake --build "$BUILD" --target pb_fuzz -j"$JOBS"
echo "fuzz: build-fuzz ready in $(( $(date +%s) - t0 )) s"

# ---------------------------------------------------------------- seeds
rm -rf "$WORK/seeds"
mkdir -p "$WORK/seeds" "$WORK/logs"
/usr/bin/env python3 tests/fuzz/make_seeds.py "$WORK/seeds" --planetbridge "$BUILD/bin/planetbridge" \
  --plugin-dir "$BUILD/lib/planetbridge/plugins"

# ---------------------------------------------------------------- run
export OMP_NUM_THREADS=1  # one input at a time: oneDNN's threads only add noise
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0:handle_abort=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
[ -z "$SYMBOLIZER" ] || export ASAN_SYMBOLIZER_PATH=$SYMBOLIZER

failed=()
summary=()
for t in "${TARGETS[@]}"; do
  corpus=$WORK/corpus/$t
  artifacts=$WORK/artifacts/$t
  log=$WORK/logs/$t.log
  mkdir -p "$corpus" "$artifacts"
  rm -f "$artifacts"/*
  args=(-max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$artifacts/" -close_fd_mask=1)
  case $t in
    stream) args+=(-dict=tests/fuzz/stream.dict) ;;
    suite) args+=(-dict=tests/fuzz/suite.dict) ;;
    http) args+=(-dict=tests/fuzz/http.dict -max_len=16384) ;;
  esac
  dirs=("$corpus" "$WORK/seeds/$t")
  for d in tests/fuzz/corpus/$t tests/fuzz/regressions/$t; do [ -d "$d" ] && dirs+=("$d"); done
  echo "fuzz: $t for ${SECONDS_EACH} s (log $log)"
  rc=0
  # shellcheck disable=SC2086
  "$BUILD/bin/fuzz_$t" "${args[@]}" ${PB_FUZZ_ARGS:-} "${dirs[@]}" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 || true)
  found=()
  for f in "$artifacts"/crash-* "$artifacts"/timeout-* "$artifacts"/oom-* "$artifacts"/leak-*; do
    [ -e "$f" ] || continue
    mkdir -p "tests/fuzz/regressions/$t"
    cp "$f" "tests/fuzz/regressions/$t/"
    found+=("tests/fuzz/regressions/$t/$(basename "$f")")
  done
  line="$t: exit $rc, ${execs:-?} runs, ${cov:-cov ?}, peak RSS ${rss:-?} MB"
  if [ "$rc" -ne 0 ] || [ ${#found[@]} -gt 0 ]; then
    failed+=("$t")
    line+=" -- FAILED"
    echo "fuzz: $t FAILED (exit $rc); the end of $log:" >&2
    tail -40 "$log" >&2
    for f in "${found[@]}"; do
      echo "fuzz: $t: the input is kept as $ROOT/$f; its full stack:" >&2
      ASAN_OPTIONS=$ASAN_OPTIONS:fast_unwind_on_malloc=0 "$BUILD/bin/fuzz_$t" -rss_limit_mb=2048 -timeout=10 -artifact_prefix="$WORK/replay-" "$f" 2>&1 | grep -E '^ +#[0-9]+ |ERROR|FINDING|runtime error' | head -40 >&2 || true
    done
    [ ${#found[@]} -gt 0 ] || echo "fuzz: $t: no input was written (see $log)" >&2
  fi
  summary+=("$line")
done

echo
printf 'fuzz: %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (inputs in tests/fuzz/regressions/; replay one with $BUILD/bin/fuzz_<target> FILE)" >&2
  exit 1
fi
echo "fuzz: every target ran ${SECONDS_EACH} s without a finding"
