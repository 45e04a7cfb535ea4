"""Real services on 127.0.0.1 for the cluster tests: PostgreSQL, an MLflow server, a two-node Ray cluster.

Each is started once for the tests/cluster package on a free port, checked with ``ss -ltnp`` to listen on
loopback only, and stopped (with its files removed) after the last test of the package. A missing tool
skips only where it cannot be installed (not root, or no apt-get); ``scripts/setup.sh`` installs
it as root, so CI runs these tests.
"""

from __future__ import annotations

import glob
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cluster._procs import descendants, is_loopback, listening, pids_with

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def missing_tool(what: str, how: str) -> None:
    """Skip where the tool cannot be installed here; fail where setup.sh (root + apt) should have installed it."""
    if os.geteuid() == 0 and shutil.which("apt-get"):
        pytest.fail(f"{what} is missing although this machine can install it: run scripts/setup.sh ({how})")
    pytest.skip(f"{what} is not installed and cannot be installed without root/apt-get: {how}")


def assert_loopback_only(pids: set[int], what: str, expect: int = 1) -> list[str]:
    """Every TCP socket ``pids`` listen on is on 127.0.0.0/8; at least ``expect`` of them. Returns the ss lines."""
    socks = listening(pids)
    lines = [line for *_, line in socks]
    assert len(socks) >= expect, f"{what}: expected at least {expect} listening socket(s), found {lines}"
    outside = [line for addr, _, _, line in socks if not is_loopback(addr)]
    assert not outside, f"{what} listens beyond loopback:\n" + "\n".join(outside)
    return lines


def _wait(check, timeout_s: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            said = proc.stdout.read()[-3000:] if proc.stdout is not None and not proc.stdout.closed else ""
            raise RuntimeError(f"{what} exited early with status {proc.returncode}" + (f":\n{said}" if said else ""))
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{what} not ready within {timeout_s} s")


def _stop_group(proc: subprocess.Popen, timeout_s: float = 20) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout_s)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


# --------------------------------------------------------------------------------------------- PostgreSQL


@dataclass(frozen=True)
class Postgres:
    url: str  #: postgresql+psycopg://dse:<password>@127.0.0.1:<port>/optuna
    password: str
    port: int
    sockets: list[str]
    pg_ctl: tuple[str, ...] = ()  #: pg_ctl (as the postgres user) with -D <data dir>
    options: str = ""  #: the server options (-k, -h 127.0.0.1, -p) for a restart
    cwd: str = "/"

    def stop(self) -> None:
        """Stop the server (fast shutdown: open connections are cut), as an outage would."""
        subprocess.run([*self.pg_ctl, "-m", "fast", "-w", "-t", "30", "stop"], cwd=self.cwd, check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        """Start it again on the same loopback port."""
        subprocess.run([*self.pg_ctl, "-w", "-t", "60", "-l", f"{self.cwd}/restart.log", "-o", self.options, "start"],
                       cwd=self.cwd, check=True, capture_output=True, timeout=90)


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    return found[-1] if found else shutil.which(name)


@pytest.fixture(scope="package")
def postgres():
    """A PostgreSQL server on 127.0.0.1:<free port> with database ``optuna`` owned by user ``dse`` (password auth)."""
    initdb, server, pg_ctl = _pg_bin("initdb"), _pg_bin("postgres"), _pg_bin("pg_ctl")
    if not (initdb and server and pg_ctl):
        missing_tool("PostgreSQL (initdb, postgres)", "apt-get install postgresql")
    pytest.importorskip("psycopg", reason="the cluster extra: pip install -e '.[cluster]'")
    as_user: list[str] = []
    base = Path(tempfile.mkdtemp(prefix="dse-pg-"))  # short: the server's Unix socket lives here too
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(base, "postgres")
    password = "pw-" + secrets.token_hex(12)
    port = free_port()
    pwfile = base / "pw"
    pwfile.write_text(password + "\n")
    if as_user:
        shutil.chown(pwfile, "postgres")
    data = base / "data"
    subprocess.run(
        [*as_user, initdb, "-D", str(data), "-U", "dse", f"--pwfile={pwfile}", "--auth=scram-sha-256", "-E", "UTF8"],
        cwd=base, check=True, capture_output=True, timeout=120,
    )
    pwfile.unlink()
    logf = open(base / "server.log", "wb")
    proc = subprocess.Popen(
        [*as_user, server, "-D", str(data), "-k", str(base), "-h", "127.0.0.1", "-p", str(port), "-c", "fsync=off"],
        cwd=base, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"postgresql+psycopg://dse:{password}@127.0.0.1:{port}/optuna"
    try:
        import psycopg

        def ready() -> bool:
            with psycopg.connect(host="127.0.0.1", port=port, user="dse", password=password, dbname="postgres", connect_timeout=3) as c:
                return c.execute("select 1").fetchone() == (1,)

        _wait(ready, 60, "PostgreSQL", proc)
        with psycopg.connect(host="127.0.0.1", port=port, user="dse", password=password, dbname="postgres", autocommit=True) as c:
            c.execute("create database optuna")
        lines = assert_loopback_only({proc.pid} | descendants(proc.pid), "PostgreSQL")
        options = f"-k {base} -h 127.0.0.1 -p {port} -c fsync=off"
        yield Postgres(url, password, port, lines, (*as_user, pg_ctl, "-D", str(data)), options, str(base))
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "fast", "-w", "-t", "30", "stop"], cwd=base, capture_output=True, timeout=60)
        _stop_group(proc)
        logf.close()
        shutil.rmtree(base, ignore_errors=True)


# --------------------------------------------------------------------------------------------- MLflow server


@dataclass(frozen=True)
class MlflowServer:
    uri: str  #: http://127.0.0.1:<port>
    artifacts: Path  #: --artifacts-destination (only the server reads and writes it)
    sockets: list[str]


@pytest.fixture(scope="package")
def mlflow_server(tmp_path_factory):
    """``mlflow server`` on 127.0.0.1:<free port>, SQLite backend, proxied artifacts, one worker."""
    base = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    logf = open(base / "server.log", "wb")
    proc = subprocess.Popen(
        [
            str(VENV_BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            "--backend-store-uri", f"sqlite:///{base / 'mlflow.db'}", "--artifacts-destination", str(base / "artifacts"),
        ],
        cwd=base, env=env, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: urllib.request.urlopen(f"{uri}/health", timeout=3).read().strip() == b"OK", 120, "mlflow server", proc)
        lines = assert_loopback_only({proc.pid} | descendants(proc.pid), "mlflow server")
        yield MlflowServer(uri, base / "artifacts", lines)
    finally:
        _stop_group(proc)
        logf.close()


# --------------------------------------------------------------------------------------------- Ray cluster


@dataclass(frozen=True)
class RayCluster:
    address: str  #: 127.0.0.1:<GCS port>
    temp_dirs: tuple[Path, Path]  #: head, worker
    sockets: list[str]


def _ray_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(
        RAY_AUTH_MODE="token", KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        RAY_USAGE_STATS_ENABLED="0",
    )
    return env


def _alive_nodes(address: str) -> int:
    """Active nodes per ``ray status`` (run with the loopback setting, so 127.0.0.1 stays 127.0.0.1)."""
    out = subprocess.run(
        [str(VENV_BIN / "ray"), "status", "--address", address],
        cwd=REPO, env={**_ray_env(), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}, capture_output=True, text=True, timeout=60,
    )
    active = out.stdout.split("Active:", 1)[-1].split("Pending:", 1)[0] if out.returncode == 0 else ""
    return sum(1 for line in active.splitlines() if " node_" in line)


@pytest.fixture(scope="package")
def ray_cluster():
    """Two Ray nodes on 127.0.0.1 (head + worker, 1 CPU each, the worker with resource ``node2``), token auth on.

    The head is ``ray start --head`` with ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``; the worker is
    ``ray start --address`` through ``_ray_loopback_node.py`` (see there why). Both use short
    temp folders ``/tmp/dse-r[hw]-*`` that are removed afterwards.
    """
    ray = str(VENV_BIN / "ray")
    env = _ray_env()
    # the cluster and this test's driver share the default token file ~/.ray/auth_token
    subprocess.run([ray, "get-auth-token", "--generate"], cwd=REPO, env=env, capture_output=True, timeout=60, check=True)
    head_tmp = Path(tempfile.mkdtemp(prefix="dse-rh-"))
    worker_tmp = Path(tempfile.mkdtemp(prefix="dse-rw-"))
    port = free_port()
    address = f"127.0.0.1:{port}"
    common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats", "--include-log-monitor=false"]
    try:
        subprocess.run(
            [
                ray, "start", "--head", f"--port={port}", f"--temp-dir={head_tmp}", *common, "--include-dashboard=false",
                f"--ray-client-server-port={free_port()}", f"--dashboard-agent-listen-port={free_port()}",
            ],
            cwd=REPO, env={**env, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}, check=True, capture_output=True, timeout=180,
        )
        subprocess.run(
            [
                sys.executable, str(Path(__file__).with_name("_ray_loopback_node.py")), "start", f"--address={address}",
                f"--temp-dir={worker_tmp}", *common, f"--dashboard-agent-listen-port={free_port()}",
                '--resources={"node2": 1}',
            ],
            cwd=REPO, env=env, check=True, capture_output=True, timeout=180,
        )
        _wait(lambda: _alive_nodes(address) == 2, 120, "two alive Ray nodes")
        time.sleep(2)  # agents open their ports shortly after the raylet
        pids = pids_with(f"{head_tmp}/session_") | pids_with(f"{worker_tmp}/session_")
        lines = assert_loopback_only(pids, "Ray cluster", expect=3)
        yield RayCluster(address, (head_tmp, worker_tmp), lines)
    finally:
        from dse.study._ray_session import kill_ray_processes

        kill_ray_processes([head_tmp, worker_tmp])
        shutil.rmtree(head_tmp, ignore_errors=True)
        shutil.rmtree(worker_tmp, ignore_errors=True)
