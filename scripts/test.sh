#!/usr/bin/env bash
# Quick start, tests: set up, then run the lint checks, the engine's C++
# tests, the test suite and a benchmark smoke run. Every stage runs even when
# one before it failed; the last line sums up what each counted, failures
# included, and the exit status is 1 when anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/quiet.sh
bash scripts/bootstrap.sh || {
  echo "corrops: setup failed, nothing tested"
  echo "corrops: 0 passed, 1 failed, 0 skipped"
  exit 1
}
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
start=$SECONDS
failed=0 # failed checks of stages that count no tests (lint, builds)
since() { echo "$((SECONDS - $1)) s"; }

echo "== lint: ruff, clang-format"
t=$SECONDS
lint=clean
.venv/bin/ruff check . || { lint=FAILED; failed=$((failed + 1)); }
.venv/bin/ruff format --check . > /dev/null || {
  .venv/bin/ruff format --check . | grep -v 'already formatted'
  lint=FAILED
  failed=$((failed + 1))
}
find csrc benchmarks -name '*.h' -o -name '*.cc' -o -name '*.cu' |
  xargs .venv/bin/clang-format --dry-run -Werror || { lint=FAILED; failed=$((failed + 1)); }
echo "   lint $lint ($(since $t))"

echo "== C++ tests: csrc/core and the CUDA kernels' host execution, under AddressSanitizer + UBSan"
t=$SECONDS
# Progress lines shown, the whole build log in build/core-sanitize.log.
sanitize_build() {
  .venv/bin/cmake -S . -B build/core-sanitize -DCORROPS_BUILD_TF=OFF -DCORROPS_BUILD_NUMPY=OFF \
    -DCORROPS_JAX=off -DCORROPS_TORCH=off -DCORROPS_BUILD_CORE_TESTS=ON -DCORROPS_SANITIZE=ON \
    -DPython3_EXECUTABLE="$PWD/.venv/bin/python" > build/core-sanitize.log &&
    .venv/bin/cmake --build build/core-sanitize -j 2 2>&1 | cmake_progress build/core-sanitize.log
}
if heartbeat "building" sanitize_build; then
  (cd build/core-sanitize && ../../.venv/bin/ctest --output-on-failure) | tee "$logs/ctest.txt"
else
  echo "   the sanitizer build failed (log: build/core-sanitize.log)"
  failed=$((failed + 1))
fi
echo "   ($(since $t))"

echo "== pytest: tests/"
t=$SECONDS
tf_quiet .venv/bin/python -m pytest tests "$@" | tee "$logs/tests.txt"
echo "   ($(since $t))"

# Benchmark smoke run (tiny shapes, one round): the suite must not rot. Not a
# speed check: timings live in benchmarks/REPORT.md (python benchmarks/report.py).
echo "== benchmark smoke run: benchmarks/ (full output: build/benchmark-smoke.log)"
t=$SECONDS
CORROPS_BENCH_SMOKE=1 tf_quiet .venv/bin/python -m pytest benchmarks -q -p no:cacheprovider \
  --benchmark-disable-gc > build/benchmark-smoke.log 2>&1
tail -n 1 build/benchmark-smoke.log | tee "$logs/bench.txt"
echo "   ($(since $t))"

# The summary: counts from each runner's closing line.
count() { # count WORD FILE: the number before WORD on FILE's last pytest summary line
  local n
  n=$(grep -E '[0-9]+ (passed|failed|skipped|error)' "$2" 2> /dev/null | tail -n 1 |
    grep -oE "[0-9]+ $1" | grep -oE '[0-9]+')
  echo "${n:-0}"
}
ctest_total=$(grep -oE 'out of [0-9]+' "$logs/ctest.txt" 2> /dev/null | grep -oE '[0-9]+' || echo 0)
ctest_failed=$(grep -oE '[0-9]+ tests failed' "$logs/ctest.txt" 2> /dev/null | grep -oE '^[0-9]+' || echo 0)
[ -s "$logs/ctest.txt" ] || ctest_total=0
tests_passed=$(count passed "$logs/tests.txt")
tests_failed=$(($(count failed "$logs/tests.txt") + $(count error "$logs/tests.txt")))
tests_skipped=$(count skipped "$logs/tests.txt")
bench_passed=$(count passed "$logs/bench.txt")
bench_failed=$(($(count failed "$logs/bench.txt") + $(count error "$logs/bench.txt")))
[ "$tests_passed" -gt 0 ] || tests_failed=$((tests_failed + 1)) # no test ran: a failure
[ "$bench_passed" -gt 0 ] || bench_failed=$((bench_failed + 1))
all_failed=$((failed + ctest_failed + tests_failed + bench_failed))
echo "== summary ($(since $start)): lint $lint; C++ tests $((ctest_total - ctest_failed)) of $ctest_total;" \
  "tests $tests_passed passed, $tests_failed failed, $tests_skipped skipped;" \
  "benchmark smoke $bench_passed passed, $bench_failed failed"
echo "corrops: $((ctest_total - ctest_failed + tests_passed + bench_passed)) passed, $all_failed failed, $tests_skipped skipped"
[ "$all_failed" -eq 0 ]
