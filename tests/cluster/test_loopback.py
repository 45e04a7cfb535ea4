"""Local mode: every Ray process listens on loopback only, and a SIGKILLed driver leaves no Ray behind."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cluster._procs import descendants, is_loopback, listening, pids_with

REPO = Path(__file__).resolve().parents[2]

_DRIVER = r"""
import logging, sys, time
from pathlib import Path
import ray
from dse.config import RayConfig
from dse.study import ray_session
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
with ray_session(RayConfig(num_cpus=1), Path(sys.argv[1])):
    assert ray.get(ray.remote(lambda: 41).remote()) == 41
    print("READY", flush=True)
    if sys.argv[2] == "hang":
        time.sleep(600)
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    return {**env, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}


def _ray_marks(run_dir: Path) -> list[str]:
    from dse.study._ray_session import _alias_of

    real = run_dir / "ray"
    any_driver = str(_alias_of(real, pid=0))[: -len("0")]  # /tmp/dse-ray-<hash>-: every driver's alias
    return [f"{real}/session_", any_driver]


def _ray_pids(run_dir: Path) -> set[int]:
    return set().union(*(pids_with(m) for m in _ray_marks(run_dir)))


def test_local_ray_listens_on_loopback_only(tmp_path):
    """Start the local Ray of ray_session, run a task, and check every socket its processes listen on."""
    import ray

    from dse.config import RayConfig
    from dse.study import ray_session

    with ray_session(RayConfig(num_cpus=1), tmp_path / "run"):
        assert ray.get(ray.remote(lambda: os.getpid()).remote()) > 0
        nodes = [n for n in ray.nodes() if n["Alive"]]
        assert [n["NodeManagerAddress"] for n in nodes] == ["127.0.0.1"]
        time.sleep(2)  # agents open their ports shortly after start
        socks = listening(descendants(os.getpid()))
        names = {line.split('(("', 1)[1].split('"', 1)[0] for *_, line in socks}
        assert {"gcs_server", "raylet"} <= names, socks  # not vacuous: Ray's own servers are in the list
        outside = [line for addr, _, _, line in socks if not is_loopback(addr)]
        assert not outside, "Ray sockets listening beyond loopback:\n" + "\n".join(outside)
    assert os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") is None  # the setting does not leak past the session


def test_local_workers_get_worker_env_without_runtime_env(tmp_path, monkeypatch):
    """A local session's workers see WORKER_ENV (no runtime_env), and the driver's environment stays as it was."""
    import ray

    from dse.config import RayConfig
    from dse.study import ray_session
    from dse.study._ray_session import WORKER_ENV

    monkeypatch.setitem(WORKER_ENV, "DSE_TEST_WORKER_MARK", "seen")
    monkeypatch.delenv("DSE_TEST_WORKER_MARK", raising=False)
    with ray_session(RayConfig(num_cpus=1), tmp_path / "run"):
        seen = ray.get(ray.remote(lambda keys: {k: os.environ.get(k) for k in keys}).remote(list(WORKER_ENV)))
        assert seen == WORKER_ENV
        assert ray.get_runtime_context().runtime_env.get("env_vars") is None
        assert "DSE_TEST_WORKER_MARK" not in os.environ
    assert "DSE_TEST_WORKER_MARK" not in os.environ


def test_a_session_stops_at_its_end_what_a_driver_killed_meanwhile_left(tmp_path, caplog):
    """Two drivers on one run dir, the other one kill -9'ed while this one runs: its Ray agents (here a stand-in naming
    its session folder) are stopped when this session ends, not left idling (before: only the next start stopped them)."""
    import ray

    from dse.config import RayConfig
    from dse.study import ray_session

    run_dir = tmp_path / "run"
    orphan = None
    try:
        with caplog.at_level(logging.WARNING, logger="dse.study._ray_session"):
            with ray_session(RayConfig(num_cpus=1), run_dir):
                assert ray.is_initialized()
                orphan = subprocess.Popen(
                    [sys.executable, "-c", "import time; time.sleep(600)", f"--session-dir={_ray_marks(run_dir)[0]}stale"],
                    cwd=REPO, start_new_session=True,
                )
                time.sleep(0.5)
                assert orphan.poll() is None
        assert orphan.wait(timeout=10) == -signal.SIGTERM
        assert "a previous dse driver left running" in caplog.text and "python" in caplog.text
    finally:
        if orphan is not None and orphan.poll() is None:
            orphan.kill()
    assert not _ray_pids(run_dir) - {os.getpid()}


def test_sigkilled_driver_leaves_no_ray_behind(tmp_path, caplog):
    """SIGKILL a real driver process; the next ray_session on the same run dir stops what survived, and logs it."""
    run_dir = tmp_path / "run"
    drv = subprocess.Popen(
        [sys.executable, "-c", _DRIVER, str(run_dir), "hang"], cwd=REPO, env=_env(),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True,
    )
    try:
        assert drv.stdout.readline().strip() == "READY"
        before = _ray_pids(run_dir)
        assert before, "the driver's Ray processes were not found by their session folder"
        # while its driver lives, a session is no leftover: the clean-up signals none of its processes
        # (compared through the clean-up's own report: Ray's idle workers may exit by themselves meanwhile)
        from dse.study._ray_session import stop_leftover_ray

        with caplog.at_level(logging.WARNING, logger="dse.study._ray_session"):
            stop_leftover_ray(run_dir)
        assert "previous dse driver left running" not in caplog.text, caplog.text
        assert drv.poll() is None and _ray_pids(run_dir) & before
        os.kill(drv.pid, signal.SIGKILL)
        drv.wait(timeout=30)
    finally:
        if drv.poll() is None:
            drv.kill()
    time.sleep(3)
    survivors = _ray_pids(run_dir)
    print(f"Ray processes: {len(before)} before SIGKILL, {len(survivors)} alive 3 s after: {sorted(survivors)}")
    # Ray 2.60's agents (ray::RuntimeEnvAgent, ray::DashboardAgent) outlive a SIGKILLed driver as
    # orphans; in case a Ray version stops leaving any, also plant a real stand-in process naming
    # the session folder, so the clean-up path is always exercised.
    nxt = None
    orphan = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)", f"--session-dir={_ray_marks(run_dir)[0]}stale"],
        cwd=REPO, start_new_session=True,
    )
    try:
        nxt = subprocess.run(
            [sys.executable, "-c", _DRIVER, str(run_dir), "exit"], cwd=REPO, env=_env(),
            capture_output=True, text=True, timeout=240,
        )
    finally:
        if orphan.poll() is None and nxt is None:
            orphan.kill()
    assert nxt.returncode == 0, nxt.stderr[-3000:]
    assert "a previous dse driver left running" in nxt.stderr, nxt.stderr[-3000:]
    assert orphan.wait(timeout=10) == -signal.SIGTERM
    deadline = time.monotonic() + 20
    while _ray_pids(run_dir) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _ray_pids(run_dir), "Ray processes still running after the next session ended"


_TOKEN_DRIVER = r"""
import os, sys
from pathlib import Path
import ray
from dse.config import RayConfig
from dse.study import ray_session
with ray_session(RayConfig(num_cpus=1), Path(sys.argv[1])):
    env = ray.get(ray.remote(lambda: (os.environ.get("RAY_AUTH_MODE"), len(os.environ.get("RAY_AUTH_TOKEN", "")))).remote())
    print("WORKER", *env, flush=True)
print("AFTER", os.environ.get("RAY_AUTH_MODE"), "RAY_AUTH_TOKEN" in os.environ, flush=True)
"""


def test_local_ray_has_token_auth_without_a_file_in_home_or_a_warning(tmp_path):
    """Before, each local session logged Ray's "Token authentication is enabled ... Set RAY_AUTH_MODE=disabled
    to opt out" and wrote a token to ~/.ray/auth_token, outside the run directory. Now the session's own token
    is in its processes' environment: token auth stays on, nothing lands in the home folder, no warning."""
    home = tmp_path / "home"
    home.mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", _TOKEN_DRIVER, str(tmp_path / "run")], env={**_env(), "HOME": str(home)},
        capture_output=True, text=True, timeout=180, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "WORKER token 64" in proc.stdout, proc.stdout  # the workers run with token auth, a 256-bit token
    assert "AFTER None False" in proc.stdout, proc.stdout  # the driver's environment is as it was
    assert "Token authentication" not in proc.stderr, proc.stderr[-3000:]
    assert not (home / ".ray").exists(), list(home.rglob("*"))


def test_old_ray_session_folders_are_pruned_but_a_live_drivers_is_kept(tmp_path):
    """Each local run leaves a session folder (its logs) in run_dir/ray; a run keeps the newest KEEP_RAY_SESSIONS,
    and never one whose creator still runs (another driver on the same run dir)."""
    import ray

    from dse.config import RayConfig
    from dse.study import ray_session
    from dse.study._ray_session import KEEP_RAY_SESSIONS

    run_dir = tmp_path / "run"
    temp = run_dir / "ray"
    gone = next(p for p in range(4_000_000, 4_100_000) if not Path(f"/proc/{p}").exists())
    old = [temp / f"session_2026-01-{day:02d}_10-00-00_000000_{gone}" for day in range(1, 9)]
    live = temp / f"session_2025-12-31_10-00-00_000000_{os.getpid()}"  # the oldest, but its creator runs
    for folder in [*old, live]:
        (folder / "logs").mkdir(parents=True)
        (folder / "logs" / "raylet.out").write_text("log")
    with ray_session(RayConfig(num_cpus=1), run_dir):
        assert ray.get(ray.remote(lambda: 41).remote()) == 41
    left = sorted(p.name for p in temp.glob("session_*") if p.is_dir() and not p.is_symlink())
    assert live.name in left
    assert [p.name for p in old if p.name in left] == [p.name for p in old[-KEEP_RAY_SESSIONS:]]
    assert len(left) == KEEP_RAY_SESSIONS + 2, left  # the kept old ones, the live driver's, this run's own


def test_the_short_ray_link_is_used_only_when_it_is_this_users_link(tmp_path):
    """A run directory too long for Ray's sockets gets a link in /tmp. Before, whatever had the link's name (a folder
    another user made, guessing the driver's pid) was used as Ray's folder, its sockets and logs with it."""
    import shutil

    from dse.exceptions import ClusterError
    from dse.study._ray_session import _alias_of, _short_temp_dir

    run_dir = tmp_path / ("deep" * 20)
    link = _alias_of(run_dir / "ray")
    try:
        assert _short_temp_dir(run_dir) == str(link) and os.readlink(link) == str(run_dir / "ray")
        link.unlink()
        link.mkdir()  # someone else's folder at the name
        with pytest.raises(ClusterError, match="exists and is not this user's link to it; remove it"):
            _short_temp_dir(run_dir)
    finally:
        if link.is_symlink():
            link.unlink()
        elif link.exists():
            shutil.rmtree(link)
