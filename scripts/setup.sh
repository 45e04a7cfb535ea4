#!/usr/bin/env bash
# Idempotent setup: a virtualenv in .venv with the pinned stack and fpga-dse installed (editable),
# plus Yosys, PostgreSQL and docker-compose from Debian's packages (as root). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11), f"fpga-dse needs Python 3.11, found {sys.version.split()[0]}"'
command -v g++ >/dev/null 2>&1 || { echo "setup: g++ is needed for hls4ml's C simulation (apt-get install g++)" >&2; exit 1; }
# Debian packages: yosys (yosys resource backend), postgresql (server binaries for tests/cluster;
# the package's own cluster is not started), docker-compose (`docker-compose config` in tests/docker).
missing=()
command -v yosys >/dev/null 2>&1 || missing+=(yosys)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${missing[*]} (Debian packages)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: ${missing[*]} not found; the yosys backend and the cluster/docker tests need them: sudo apt-get install ${missing[*]}" >&2
  fi
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.dse-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[test,cluster]'
  .venv/bin/python -m pip check
  echo "$want" > "$stamp"
fi
echo "setup: ready (.venv, $(.venv/bin/dse --help >/dev/null && echo 'dse OK'))"
