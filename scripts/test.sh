#!/usr/bin/env bash
# Quick start, tests: set up, then run the lint checks and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
.venv/bin/ruff check .
.venv/bin/ruff format --check .
find csrc -name '*.h' -o -name '*.cc' -o -name '*.cu' | xargs .venv/bin/clang-format --dry-run -Werror
.venv/bin/python -m pytest tests "$@"
