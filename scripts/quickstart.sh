#!/usr/bin/env bash
# README command 1: set up, then run the quickstart study on the embedded defaults
# (local Ray on 127.0.0.1, SQLite Optuna storage and MLflow store under runs/quickstart/).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export KERAS_BACKEND=tensorflow
exec .venv/bin/dse run experiments/quickstart.yaml "$@"
