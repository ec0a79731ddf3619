#!/usr/bin/env bash
# Quick start, main job: set up, train the demo sequence labeller with
# corrops.corr_loss, and print a fused-vs-fallback timing table.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
.venv/bin/python examples/train_demo.py "$@"
