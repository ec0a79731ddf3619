#!/usr/bin/env bash
# Quick start, tests: set up, then run the lint checks and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
.venv/bin/ruff check .
.venv/bin/ruff format --check .
find csrc benchmarks -name '*.h' -o -name '*.cc' -o -name '*.cu' | xargs .venv/bin/clang-format --dry-run -Werror
# csrc/core's own C++ tests under AddressSanitizer + UndefinedBehaviorSanitizer.
.venv/bin/cmake -S . -B build/core-sanitize -DCORROPS_BUILD_TF=OFF -DCORROPS_BUILD_NUMPY=OFF \
  -DCORROPS_BUILD_CORE_TESTS=ON -DCORROPS_SANITIZE=ON -DPython3_EXECUTABLE="$PWD/.venv/bin/python" > /dev/null
.venv/bin/cmake --build build/core-sanitize -j 2 > /dev/null
(cd build/core-sanitize && ../../.venv/bin/ctest --output-on-failure)
.venv/bin/python -m pytest tests "$@"
# Benchmark smoke run (tiny shapes, one round): the suite must not rot. Not a
# speed check: timings live in benchmarks/REPORT.md (python benchmarks/report.py).
CORROPS_BENCH_SMOKE=1 .venv/bin/python -m pytest benchmarks -q -p no:cacheprovider --benchmark-disable-gc
