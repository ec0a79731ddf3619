#!/usr/bin/env bash
# Quick start, tests: set up, then run the lint checks, the engine's C++
# tests, the test suite and a benchmark smoke run; the last line sums them up.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

echo "== lint: ruff, clang-format"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
find csrc benchmarks -name '*.h' -o -name '*.cc' -o -name '*.cu' | xargs .venv/bin/clang-format --dry-run -Werror

echo "== C++ tests: csrc/core under AddressSanitizer + UndefinedBehaviorSanitizer"
.venv/bin/cmake -S . -B build/core-sanitize -DCORROPS_BUILD_TF=OFF -DCORROPS_BUILD_NUMPY=OFF -DCORROPS_JAX=off \
  -DCORROPS_BUILD_CORE_TESTS=ON -DCORROPS_SANITIZE=ON -DPython3_EXECUTABLE="$PWD/.venv/bin/python" > /dev/null
.venv/bin/cmake --build build/core-sanitize -j 2 > /dev/null
(cd build/core-sanitize && ../../.venv/bin/ctest --output-on-failure) | tee "$logs/ctest.txt"

echo "== pytest: tests/"
.venv/bin/python -m pytest tests "$@" | tee "$logs/tests.txt"

# Benchmark smoke run (tiny shapes, one round): the suite must not rot. Not a
# speed check: timings live in benchmarks/REPORT.md (python benchmarks/report.py).
echo "== benchmark smoke run: benchmarks/"
CORROPS_BENCH_SMOKE=1 .venv/bin/python -m pytest benchmarks -q -p no:cacheprovider \
  --benchmark-disable-gc | tee "$logs/bench.txt"

# The summary: counts from each runner's closing line.
count() { # count WORD FILE: the number before WORD on FILE's last pytest summary line
  grep -E '[0-9]+ (passed|failed|skipped)' "$2" | tail -n 1 | grep -oE "[0-9]+ $1" | grep -oE '[0-9]+' || echo 0
}
ctest_total=$(grep -oE 'out of [0-9]+' "$logs/ctest.txt" | grep -oE '[0-9]+' || echo 0)
ctest_failed=$(grep -oE '[0-9]+ tests failed' "$logs/ctest.txt" | grep -oE '^[0-9]+' || echo 0)
tests_passed=$(count passed "$logs/tests.txt")
tests_skipped=$(count skipped "$logs/tests.txt")
bench_passed=$(count passed "$logs/bench.txt")
echo "== summary: lint clean; C++ tests $((ctest_total - ctest_failed)) of $ctest_total;" \
  "tests $tests_passed passed, $tests_skipped skipped;" \
  "benchmark smoke $bench_passed passed"
echo "corrops: $((ctest_total - ctest_failed + tests_passed + bench_passed)) passed, 0 failed, $tests_skipped skipped"
