#!/bin/sh
# CI's hardening steps, kept apart from .ci/run so they can be re-run
# alone: a fuzz smoke per target on the committed seed corpus, a short
# soak, and valgrind memcheck over the embedding tests and a sample of the
# Lua specs.  About 8 minutes on two cores.  Expects `make` to have built
# build/ (it builds build-fuzz/ itself).  Exits non-zero on the first
# failing step.
#   scripts/ci-hardening.sh            all three steps
#   FUZZ_SMOKE=60 SOAK_SMOKE=20 ...    longer runs
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
FUZZ_SMOKE=${FUZZ_SMOKE:-30}
SOAK_SMOKE=${SOAK_SMOKE:-10}
JOBS=${JOBS:-2}
BUILD=${BUILD:-build}

step() { printf '\n== %s\n' "$*"; }

step "fuzz smoke: ${FUZZ_SMOKE}s per target (build-fuzz, clang, ASan+UBSan)"
cmake -S . -B build-fuzz -DTIDE_FUZZ=ON -DCMAKE_C_COMPILER=clang \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz --target fuzz_all -j "$JOBS" >/dev/null
tests/fuzz/run.sh build-fuzz "$FUZZ_SMOKE"

step "soak: ${SOAK_SMOKE}s per load"
cmake --build "$BUILD" -j "$JOBS" >/dev/null
tests/soak/run.sh "$BUILD" "$SOAK_SMOKE"

step "valgrind memcheck"
VG="valgrind -q --error-exitcode=99 --leak-check=full \
  --errors-for-leak-kinds=definite,indirect \
  --show-leak-kinds=definite,indirect --track-fds=no"
# The embedding tests create and close runtimes, so any leak in tide's
# teardown is definite: run them as `make valgrind` does (the tests
# labelled "valgrind" in tests/tests.cmake).
(cd "$BUILD" && ctest --output-on-failure -L valgrind)
# A sample of the Lua specs, run by busted inside tide under valgrind.
SPECS="core coroutine fuzz_corpus queue sync fs net http_server http_client"
for s in $SPECS; do
  spec="tests/lua/${s}_spec.lua"
  [ -f "$spec" ] || continue
  printf '%-40s' "$spec"
  TIDE_BIN="$BUILD/tide" TIDE_BUILD="$BUILD" TIDE_ROOT="$ROOT" \
    $VG "$BUILD/tide" "$(command -v busted)" -o TAP \
    --helper=tests/lua/helper.lua "$spec" >"$BUILD/valgrind-$s.log" 2>&1 \
    || { echo FAILED; tail -50 "$BUILD/valgrind-$s.log"; exit 1; }
  echo ok
done
step "hardening: all steps passed"
