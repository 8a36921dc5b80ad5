#!/usr/bin/env bash
# The test command: installs what is missing, builds Release and ASan+UBSan, runs every test.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# A CA bundle meant for real endpoints must not leak into tests of local servers.
unset AWS_CA_BUNDLE
JOBS="$(nproc)"
STARTED=$SECONDS
FAILED=()

step() { echo "==> [$((SECONDS - STARTED))s] $*" >&2; }

# Runs ctest, keeping its output for the summary; a failure is remembered, not fatal,
# so one run's failures never hide the other's.
run_ctest() {
  local name="$1" log="$2"
  shift 2
  step "ctest: $name"
  if ! ctest "$@" 2>&1 | tee "$log"; then
    FAILED+=("$name")
  fi
}

print_summary() {
  local name="$1" log="$2"
  echo "==> summary: $name"
  # ctest ends with "N% tests passed, …", the total time and the failed tests.
  sed -n '/tests passed/,$p' "$log"
}

step "dependencies"
bash ops/install-deps.sh

step "Release build in build/"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$JOBS"

step "ASan+UBSan build of the unit tests in build-asan/"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DBLOBFERRY_SANITIZE=ON
# Plus migrate_drain_test: `migrate` cancelling and joining copies stuck on a
# stalled target is a use-after-free only a sanitizer sees reliably.
cmake --build build-asan --target unit_tests migrate_drain_test -j"$JOBS"

step "libFuzzer targets of the parsers (clang) in build-fuzz/"
cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DBLOBFERRY_FUZZ=ON -DBLOBFERRY_TESTS=OFF
cmake --build build-fuzz --target fuzzers -j"$JOBS"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
run_ctest "unit tests under ASan+UBSan" build-asan/ctest.log --test-dir build-asan \
  -R '^unit\.|^integration\.migrate_drain_test$' --output-on-failure -j"$JOBS"
run_ctest "fuzz targets, smoke budget" build-fuzz/ctest.log --test-dir build-fuzz -L fuzz --output-on-failure -j"$JOBS"
run_ctest "all tests, Release" build/ctest.log --test-dir build --output-on-failure -j2

# Only that the harness still runs end to end (tiny data, one round); no timing is asserted.
step "bench smoke: bench/run.sh --smoke"
bash bench/run.sh --smoke --build-dir build --out build/bench-smoke || FAILED+=("bench smoke")

if [[ "${CI:-}" == "true" ]]; then
  print_summary "unit tests under ASan+UBSan" build-asan/ctest.log
  print_summary "fuzz targets, smoke budget" build-fuzz/ctest.log
  print_summary "all tests, Release" build/ctest.log
fi

step "done in $((SECONDS - STARTED))s"
if [[ ${#FAILED[@]} -gt 0 ]]; then
  printf 'FAILED: %s\n' "${FAILED[@]}" >&2
  exit 1
fi
