#!/usr/bin/env bash
# README command 2: set up, then run the test suite (real Ray, hls4ml compile, MLflow, Yosys).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# the report tests render the HTML report in headless Chromium (Debian package `chromium`)
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test: installing chromium (Debian package) for the report rendering tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "test: chromium not found; tests/report needs it: sudo apt-get install chromium" >&2
  fi
fi
export KERAS_BACKEND=tensorflow TF_CPP_MIN_LOG_LEVEL=2
# the tests marked slow (25-60 s each) run with SLOW=1, or when -m is given; CI leaves them out to stay under 30 minutes
if [ "${SLOW:-0}" != 1 ] && [[ " $* " != *" -m "* ]]; then
  set -- -m "not slow" "$@"
fi
exec .venv/bin/python -m pytest "$@"
