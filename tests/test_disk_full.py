"""A full disk: each command says so in one line and keeps what it wrote; no half-built store is left behind.

The disk is a real tmpfs of a few hundred KB, mounted by the test (root only, as in CI; skipped elsewhere).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from dse.exceptions import disk_full_cause


@pytest.fixture
def small_disk():
    """Mount a tmpfs of the asked size at a fresh folder; unmounted after the test."""
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        where = Path(f"/tmp/dse-full-{uuid.uuid4().hex[:8]}")
        where.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True, text=True)
        if done.returncode != 0:
            where.rmdir()
            pytest.skip(f"cannot mount a tmpfs here (root only): {done.stderr.strip()}")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:  # lazy: MLflow's cached engine of this process may still hold a file there open
        subprocess.run(["umount", "-l", str(where)], check=False)
        where.rmdir()


def test_disk_full_cause_finds_the_innermost_reason():
    import sqlite3

    import sqlalchemy.exc

    inner = sqlite3.OperationalError("database or disk is full")
    wrapped = sqlalchemy.exc.OperationalError("CREATE TABLE x (...)", {}, inner)
    assert disk_full_cause(wrapped) is inner  # the driver's words, not SQLAlchemy's SQL
    try:
        try:
            raise OSError(28, "No space left on device", "/x/y.png")
        except OSError as e:
            raise RuntimeError("saving the figure failed") from e
    except RuntimeError as e:
        assert disk_full_cause(e).filename == "/x/y.png"
    assert disk_full_cause(OSError(13, "Permission denied")) is None
    assert disk_full_cause(ValueError("full of beans")) is None


def test_dse_report_on_a_full_disk_says_so_in_one_line(tmp_path, small_disk):
    """Before: exit 1 and a 200-line traceback from PIL's PNG writer."""
    from tests.report.synthetic import make_study

    _, url, _ = make_study(tmp_path, n_trials=12, name="full")
    out = small_disk("200k") / "report"
    done = subprocess.run([sys.executable, "-m", "dse", "report", "full", "--storage", url, "--out", str(out), "--no-mlflow"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "╭" not in done.stderr, done.stderr[-2000:]
    error = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and error[0].startswith("error: DiskFullError: a disk is full"), done.stderr[-2000:]
    assert "No space left on device" in error[0] and "run the command again" in error[0]
    assert any(p.suffix == ".png" for p in out.iterdir())  # what was written before the disk filled is kept


def test_a_new_mlflow_store_that_does_not_fit_leaves_no_partial_file(tmp_path, small_disk):
    """Before: a build that failed (a full disk) or was killed left its `.mlflow.db.creating-<pid>` in the run directory for good."""
    from dse.study._sqlite import create_mlflow_store

    disk = small_disk("300k")  # the Optuna-less MLflow store needs about 1 MB
    with pytest.raises(Exception) as info:
        create_mlflow_store(disk / "mlflow.db")
    assert disk_full_cause(info.value) is not None, info.value
    assert sorted(p.name for p in disk.iterdir()) == [], list(disk.iterdir())

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    stale = run_dir / ".mlflow.db.creating-999999"  # a killed build's
    stale.write_bytes(b"x" * 1000)
    create_mlflow_store(run_dir / "mlflow.db")
    assert (run_dir / "mlflow.db").stat().st_size > 0 and not stale.exists()
    assert not list(run_dir.glob(".mlflow.db.creating-*")), os.listdir(run_dir)


@pytest.mark.shared_ray
def test_a_trial_on_a_full_disk_stops_the_study_and_is_re_enqueued(tmp_path, small_disk):
    """Before: each trial failed in turn on the full disk (FAIL, counted), the study went through all its n_trials and
    ended "no trial completed". Now the first such trial stops the study with DiskFullError, and no design is lost:
    the trials that ran are failed as interrupted (not counted) with their parameters re-enqueued."""
    import optuna

    from dse.config import load_experiment
    from dse.exceptions import DiskFullError
    from dse.study import run_study
    from tests.conftest import write_experiment

    run_dir = small_disk("400k") / "run"  # the trials' hls4ml projects (MBs of headers) do not fit; the stores are elsewhere
    exp, space = load_experiment(write_experiment(
        tmp_path, space={"parameters": {"strategy": {"type": "categorical", "choices": ["Latency"]},
                                        "beta": {"type": "float", "low": 1e-6, "high": 1e-5, "log": True}}},
        name="fulltrials", n_trials=6, run_dir=str(run_dir), storage=f"sqlite:///{tmp_path}/optuna.db",
        mlflow={"tracking_uri": f"sqlite:///{tmp_path}/mlflow.db"}, ray={"num_cpus": 2, "max_concurrent_trials": 1}))
    with pytest.raises(DiskFullError, match=rf"a disk is full \({run_dir}/trials/trial_00000/.*\): trial 0 failed on it .*No space left on device.*run `dse run` again"):
        run_study(exp, space, progress=False)
    trials = optuna.load_study(study_name="fulltrials", storage=exp.storage_url).trials
    failed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    waiting = [t for t in trials if t.state == optuna.trial.TrialState.WAITING]
    assert len(failed) == 1 and failed[0].number == 0, [(t.number, t.state.name) for t in trials]  # the study stopped there
    assert f"was not evaluated: a disk it wrote to ({run_dir}/trials/trial_00000/" in failed[0].user_attrs.get("fail_reason", str(failed[0].system_attrs)), failed[0].user_attrs
    assert [t.user_attrs.get("requeued_from") for t in waiting] == [0] and waiting[0].system_attrs["fixed_params"] == failed[0].params


def test_dse_run_with_no_room_for_ray_says_so_at_once(tmp_path, small_disk):
    """Before: `ray.init` waited out its 30 s start timeout on a full run directory, and `dse run` ended in a traceback
    ("The current node timed out during startup"). Then `dse run` refused before starting Ray, in one line, but after
    creating the stores, and `dse check` passed. Now both refuse before anything is created."""
    from tests.conftest import write_experiment

    disk = small_disk("1m")
    run_dir = disk / "run"
    path = write_experiment(tmp_path, name="noroom", run_dir=str(run_dir), storage=f"sqlite:///{tmp_path}/optuna.db",
                            mlflow={"tracking_uri": f"sqlite:///{tmp_path}/mlflow.db"})
    for command in ("check", "run"):
        done = subprocess.run([sys.executable, "-m", "dse", command, str(path), *(["--no-progress"] if command == "run" else [])],
                              capture_output=True, text=True, cwd=tmp_path, timeout=300)
        assert done.returncode == 2, done.stdout + done.stderr[-3000:]
        error = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        assert len(error) == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
        assert error[0].startswith(f"error: DiskFullError: a disk is full: {run_dir / 'ray'} has ") and "Nothing was started" in error[0]
        assert not run_dir.exists() and not (tmp_path / "optuna.db").exists() and not (tmp_path / "mlflow.db").exists()


_STUDY_FILE = """
import sys
import optuna
from dse.study._sqlite import enable_wal
db, wal = sys.argv[1], sys.argv[2] == "wal"
if wal:
    from pathlib import Path
    enable_wal(Path(db))
study = optuna.create_study(study_name="s", storage=f"sqlite:///{db}", directions=["maximize", "minimize"])
study.add_trial(optuna.trial.create_trial(values=[0.9, 100.0], params={"x": 1.0},
                                          distributions={"x": optuna.distributions.FloatDistribution(0, 2)}))
"""


def _study_file(db: Path, wal: bool = True) -> None:
    """A one-trial study in the SQLite file ``db``, in write-ahead-log mode as a driver leaves it (``wal``), made by a
    process of its own: it closes every connection, so SQLite removes the log's files beside it, as after `dse run`."""
    subprocess.run([sys.executable, "-c", _STUDY_FILE, str(db), "wal" if wal else "plain"], check=True, timeout=120,
                   env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert not db.with_name(db.name + "-shm").exists()


def test_dse_status_in_a_read_only_folder_says_why_and_what_to_do(tmp_path):
    """Before: "exists but is not writable by this user; fix its permissions or pick another path", from a command that
    only reads. A database in write-ahead-log mode (as dse leaves its stores) cannot be read there, and that is said
    with what to do; one without the log is read."""
    from typer.testing import CliRunner

    from dse.cli import app

    src, ro = tmp_path / "src", tmp_path / "ro"
    src.mkdir()
    ro.mkdir()
    _study_file(src / "optuna.db")
    _study_file(src / "plain.db", wal=False)
    mounted = subprocess.run(["mount", "--bind", str(src), str(ro)], capture_output=True).returncode == 0
    try:
        if not mounted or subprocess.run(["mount", "-o", "remount,ro,bind", str(ro)], capture_output=True).returncode:
            pytest.skip("cannot mount a read-only folder here (root only)")
        wal = CliRunner().invoke(app, ["status", "s", "--storage", f"sqlite:///{ro / 'optuna.db'}"])
        plain = CliRunner().invoke(app, ["status", "s", "--storage", f"sqlite:///{ro / 'plain.db'}"])
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(ro)], check=False)
    text = " ".join(wal.output.split())
    assert wal.exit_code == 2 and f"{ro} is read-only, and SQLite writes beside a database in write-ahead-log mode even to read it" in text, text
    assert "copy the study's run directory to a folder you can write (cp -r) and pass --storage with the copy" in text, text
    assert plain.exit_code == 0 and "trials: 1 complete" in plain.output, plain.output


def test_a_study_on_a_full_disk_is_not_called_unreadable(tmp_path, small_disk):
    """Probe 32: on a full disk `dse check` (and `dse run`) said the study's optuna.db "cannot be read as an Optuna
    database ...; move it away", advice that would have started an empty study; with tens of KB free, `dse run` ended in
    a traceback from enable_wal. Both are a DiskFullError now."""
    from typer.testing import CliRunner

    from dse.cli import app
    from dse.exceptions import DiskFullError
    from dse.study._sqlite import enable_wal
    from tests.conftest import write_experiment

    disk = small_disk("2m")
    _study_file(disk / "optuna.db")
    subprocess.run(["dd", "if=/dev/zero", f"of={disk / 'fill'}", "bs=4k"], capture_output=True)  # until ENOSPC
    path = write_experiment(tmp_path, name="s", storage=f"sqlite:///{disk / 'optuna.db'}")
    result = CliRunner().invoke(app, ["check", str(path)])
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and f"error: DiskFullError: a disk is full: {disk} has 0 KB free, and SQLite needs room " \
        "beside optuna.db" in text, text
    assert "move it away" not in text
    with pytest.raises(DiskFullError, match=rf"a disk is full: {disk} has 0 KB free"):
        enable_wal(disk / "mlflow.db")


def test_a_read_only_archive_of_a_moved_study_is_reported(tmp_path, caplog):
    """Probe 32: a run directory copied to an archive (journal mode DELETE, mounted read-only) was read by `dse status`,
    but `dse report` and `dse export` ended in a traceback: the moved MLflow store's artifact locations could not be
    rewritten ("attempt to write a readonly database"). Now the report is written, with a warning."""
    import logging
    import shutil
    import sqlite3

    from typer.testing import CliRunner

    from dse.cli import app
    from tests.report.synthetic import make_study

    _, _, exp = make_study(tmp_path / "a", n_trials=4, name="arch", failures=False)
    src, ro = tmp_path / "copy", tmp_path / "ro"
    shutil.copytree(exp.resolved_run_dir, src)
    for db in ("optuna.db", "mlflow.db"):
        con = sqlite3.connect(src / db)
        con.execute("PRAGMA journal_mode=DELETE")
        con.close()
    ro.mkdir()
    mounted = subprocess.run(["mount", "--bind", str(src), str(ro)], capture_output=True).returncode == 0
    try:
        if not mounted or subprocess.run(["mount", "-o", "remount,ro,bind", str(ro)], capture_output=True).returncode:
            pytest.skip("cannot mount a read-only folder here (root only)")
        with caplog.at_level(logging.WARNING, logger="dse.tracking._relocate"):
            result = CliRunner().invoke(app, ["report", "arch", "--storage", f"sqlite:///{ro / 'optuna.db'}",
                                              "--out", str(tmp_path / "rep"), "--no-mlflow"])
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(ro)], check=False)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "rep" / "report.html").is_file()
    assert f"MLflow store {ro / 'mlflow.db'} is read-only, so its artifact locations were not pointed at" in caplog.text, caplog.text
