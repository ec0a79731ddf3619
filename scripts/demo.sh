#!/usr/bin/env bash
# Quick start, main job: set up, train the demo sequence labeller with
# corrops.corr_loss, and print a fused-vs-fallback timing table.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/quiet.sh
bash scripts/bootstrap.sh
tf_quiet .venv/bin/python examples/train_demo.py "$@"
