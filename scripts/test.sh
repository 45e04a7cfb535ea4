#!/usr/bin/env bash
# README command 2: set up, then run the test suite (real Ray, hls4ml compile, MLflow, Yosys).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export KERAS_BACKEND=tensorflow TF_CPP_MIN_LOG_LEVEL=2
exec .venv/bin/python -m pytest "$@"
