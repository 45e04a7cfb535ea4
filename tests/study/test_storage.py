"""Opening one new Optuna database from several processes at once (a driver starting while `dse status` reads it)."""

from __future__ import annotations

import multiprocessing as mp

import optuna
import pytest

from dse.study._storage import rdb_storage

pytestmark = pytest.mark.shared_ray  # in-process studies share one local Ray (tests/conftest.py)


def _open(url: str, barrier) -> str | None:
    from dse.study._storage import driver_storage

    barrier.wait()
    try:
        driver_storage(url)
    except Exception as e:  # reported to the test, which names it
        return f"{type(e).__name__}: {e}"[:300]
    return None


def test_processes_creating_one_sqlite_store_at_once_all_succeed(tmp_path):
    # Without the retry, 4 processes released together lose the race on Optuna's alembic_version
    # table in about one round out of two here (IntegrityError / "table alembic_version already exists").
    ctx = mp.get_context("spawn")
    errors = []
    with ctx.Manager() as manager, ctx.Pool(4) as pool:
        for i in range(6):
            url = f"sqlite:///{tmp_path / f'race_{i}.db'}"
            barrier = manager.Barrier(4)
            errors += [e for e in pool.starmap(_open, [(url, barrier)] * 4) if e]
            study = optuna.create_study(study_name="s", storage=rdb_storage(url))
            assert study.study_name == "s"
    assert errors == []


#: What `mlflow ui` or a user's script does to a new study's store: open it with MLflow (which creates it and runs
#: MLflow's migrations where it is empty) and read it, again and again, until the file argv[2] exists (one more read
#: then, after whatever came before it); prints one line per read.
_MLFLOW_READER = """
import os, sys, time, warnings, logging
warnings.filterwarnings("ignore"); logging.disable(logging.WARNING)
from mlflow.tracking import MlflowClient
t0 = time.time()
while time.time() - t0 < 120:
    last = os.path.exists(sys.argv[2])
    try:
        MlflowClient(sys.argv[1]).search_experiments(max_results=1); print("ok", flush=True)
    except Exception as e:
        print("ERR", type(e).__name__, str(e)[:200], flush=True)
    if last:
        break
    time.sleep(0.05)
"""


def test_a_new_mlflow_store_another_process_creates_meanwhile_is_kept_and_both_go_on(tmp_path):
    """Probe 36: a script reading a new study's MLflow store while its first `dse run` started crashed the run
    (`database is locked` in enable_wal) or the reader (`attempt to write a readonly database`, `disk I/O error`: the
    driver's store replaced the file the reader had open), and once left the store corrupt. Now the driver keeps the
    store the other process made, waits for its migrations, and switches it to WAL beside the reader."""
    import sqlite3
    import subprocess
    import sys
    import time

    from mlflow.store.db.utils import _all_tables_exist
    from mlflow.tracking import MlflowClient
    from sqlalchemy import create_engine

    from dse.study._sqlite import create_mlflow_store
    from dse.study._sqlite import enable_wal

    readers = {}  # two stores, their readers started together (one import time for both)
    for name in ("migrating", "migrated"):  # the driver comes while the reader's MLflow migrates the file, then after
        db = tmp_path / name / "mlflow.db"
        db.parent.mkdir()
        readers[db] = subprocess.Popen([sys.executable, "-c", _MLFLOW_READER, f"sqlite:///{db}", str(db.parent / "stop")],
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for db, reader in readers.items():
        deadline = time.monotonic() + 30
        while not db.exists() and time.monotonic() < deadline:  # the reader's MLflow creates it (imports first: ~2 s)
            time.sleep(0.01)
        assert db.exists(), reader.communicate()[0]
        inode = db.stat().st_ino
        create_mlflow_store(db)  # as the driver's _open_tracking does
        assert enable_wal(db, wait_s=10)
        client = MlflowClient(f"sqlite:///{db}")
        client.create_run(client.create_experiment("study"))
        (db.parent / "stop").touch()  # the reader reads once more, after all of the above, and ends
        said = reader.communicate(timeout=120)[0]
        assert db.stat().st_ino == inode, "the reader's store was replaced under it"
        assert [line for line in said.splitlines() if line != "ok"] == [], said[-2000:]
        assert said.count("ok") >= 1
        with sqlite3.connect(db) as con:
            assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert _all_tables_exist(create_engine(f"sqlite:///{db}"))
        assert not list(db.parent.glob(".mlflow.db.creating-*"))


_KILLED_WRITER = """
import os, sqlite3, sys
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("PRAGMA cache_size=2")  # the change spills into the file: the journal holds what it overwrote
con.execute("BEGIN IMMEDIATE")
con.execute("CREATE TABLE filler (x BLOB)")
for _ in range(300):
    con.execute("INSERT INTO filler VALUES (randomblob(4000))")
os.kill(os.getpid(), 9)  # killed mid-write: a hot journal stays beside the store
"""


def test_a_store_a_killed_writer_left_mid_write_is_rolled_back_not_called_damaged(tmp_path, monkeypatch):
    """The review: a process killed while writing a store in rollback-journal mode leaves `mlflow.db-journal`, which
    SQLite undoes when the file is next opened read-write. The damaged-store check (a read-only open: `attempt to write
    a readonly database`) called such a store damaged, and the store's creation waited 60 s for a writer that was gone,
    then blamed another process."""
    import sqlite3
    import subprocess
    import sys

    from dse.study import _sqlite
    from dse.study._sqlite import create_mlflow_store
    from dse.study._sqlite import damaged_sqlite

    db = tmp_path / "mlflow.db"
    create_mlflow_store(db)  # an MLflow store, in MLflow's own rollback-journal mode
    subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(db)], timeout=60)
    journal = db.with_name("mlflow.db-journal")
    assert journal.exists() and journal.stat().st_size > 0
    assert damaged_sqlite(db) is None  # not damage
    monkeypatch.setattr(_sqlite, "_QUIET_S", 0.5)
    create_mlflow_store(db, wait_s=30)  # waits until the journal is quiet, then lets SQLite roll it back
    assert not journal.exists()
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert "filler" not in {r[0] for r in con.execute("SELECT name FROM sqlite_master")}  # the write was undone
    with open(db, "r+b") as f:  # a damaged one still is
        f.seek(100)
        f.write(b"\xff" * 3000)
    assert damaged_sqlite(db) is not None


def test_a_store_held_by_another_process_stays_in_rollback_mode_with_a_warning(tmp_path, caplog):
    """Switching a SQLite file to WAL needs it to itself for a moment: a lock held past `wait_s` leaves the file in its
    rollback-journal mode with a warning (before: `database is locked`, a traceback ending the run); a lock let go in
    time is waited for."""
    import sqlite3
    import threading
    import time

    from dse.study._sqlite import enable_wal

    db = tmp_path / "mlflow.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE t (x)")

    def hold(seconds: float, held: threading.Event) -> None:
        other = sqlite3.connect(db, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        held.set()
        time.sleep(seconds)
        other.execute("COMMIT")
        other.close()

    held = threading.Event()
    holder = threading.Thread(target=hold, args=(2.0, held))
    holder.start()
    held.wait()
    with caplog.at_level("WARNING", logger="dse.study._sqlite"):
        assert enable_wal(db, wait_s=0.5) is False
    holder.join()
    assert "stays in SQLite's rollback-journal mode this run (slower commits): other processes held it for 0.5 s" in caplog.text
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    held = threading.Event()
    holder = threading.Thread(target=hold, args=(1.0, held))
    holder.start()
    held.wait()
    started = time.monotonic()
    assert enable_wal(db, wait_s=20) is True  # waits for the lock, then switches
    assert time.monotonic() - started >= 0.5
    holder.join()
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_study_in_a_journal_file_runs_continues_and_is_read_after_a_move(tmp_path, monkeypatch):
    """``storage: journal``: Optuna's journal file in the run directory, read by every command, also once moved."""
    import shutil

    from typer.testing import CliRunner

    from tests.conftest import TINY_SPACE, write_experiment

    from dse.cli import app
    from dse.config import load_experiment
    from dse.study import load_study, run_study

    space = {**TINY_SPACE, "parameters": {k: v for k, v in TINY_SPACE["parameters"].items() if k != "learning_rate"}}  # none diverges
    exp, space = load_experiment(write_experiment(tmp_path, space=space, storage="journal", n_trials=2, hls4ml={"csim": "none"}))
    assert exp.storage_url == str(tmp_path / "run" / "optuna.log")
    summary = run_study(exp, space, progress=False)
    assert summary.n_complete == 2 and summary.storage == exp.storage_url
    assert not (tmp_path / "run" / "optuna.db").exists()
    first = (tmp_path / "run" / "optuna.log").read_text().splitlines()[0]
    assert '"op_code"' in first and '"study_name":"tiny"' in first.replace(" ", "")

    summary = run_study(exp.model_copy(update={"n_trials": 3}), space, progress=False)  # continues the same study
    study = load_study("tiny", exp.storage_url)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    assert len({t.user_attrs["mlflow_run_id"] for t in study.trials}) == 3

    (tmp_path / "runs").mkdir()
    shutil.move(tmp_path / "run", tmp_path / "runs" / "tiny")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    status = runner.invoke(app, ["status", "tiny"])  # no optuna.db in runs/tiny: its optuna.log is the storage
    assert status.exit_code == 0, status.output
    assert "3 complete, 0 failed" in status.output and str(tmp_path / "runs" / "tiny" / "optuna.log") in "".join(status.output.split())
    report = runner.invoke(app, ["report", "tiny", "--storage", "runs/tiny/optuna.log", "--out", "rep"])
    assert report.exit_code == 0, report.output
    assert (tmp_path / "rep" / "report.html").is_file()
    moved = str(tmp_path / "runs" / "tiny" / "mlflow.db")
    assert moved in "".join(report.output.split())  # the moved MLflow store, found from the journal's folder


def test_a_draw_whose_storage_write_fails_is_retried_and_the_written_ones_are_kept(tmp_path, digits_splits):
    """The storage drops while a new trial's parameters are drawn (each suggest_* is a write): the driver retries
    the draws as it retries ask. Before, the error stopped the driver (seen once in test_brief_outage_is_retried)."""
    from optuna.exceptions import StorageInternalError
    from optuna.storages import RDBStorage

    from dse.config import load_experiment
    from dse.study._orchestrator import _StudyLoop
    from tests.conftest import write_experiment

    class Flaky(RDBStorage):
        failures = 1  # the second draw's write fails once, as a lost connection's commit does

        def _set_trial_param(self, trial_id, *args):  # what Optuna's storage cache calls for each suggest_*
            if self.failures and len(self.get_trial(trial_id).params) == 1:
                self.failures -= 1
                import sqlalchemy.exc  # as Optuna's RDB storage wraps the database driver's error

                gone = sqlalchemy.exc.OperationalError("UPDATE trials", {}, Exception("server closed the connection unexpectedly"))
                raise StorageInternalError("An exception is raised during the commit.") from gone
            super()._set_trial_param(trial_id, *args)

    exp, space = load_experiment(write_experiment(tmp_path, storage_retry_s=5))
    storage = Flaky(f"sqlite:///{tmp_path / 'o.db'}")
    study = optuna.create_study(storage=storage, directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=0))
    loop = _StudyLoop(study, exp, space, None, None, digits_splits, tmp_path, False, None)
    trial = study.ask()
    params, _ = loop.draw(trial)
    assert storage.failures == 0  # it did fail once
    stored = study.trials[0].params  # every draw written once, and the design is built from what was written
    assert {"strategy", "learning_rate", "weight_bits"} <= set(stored)
    assert (params.strategy, params.learning_rate, params.weight_bits) == (stored["strategy"], stored["learning_rate"], stored["weight_bits"])
    # a storage still gone after storage_retry_s: the driver stops with StorageUnavailableError (launch re-raises it),
    # not a FAIL of the trial as a point that makes no design
    from dse.exceptions import StorageUnavailableError

    storage.failures = 10**6
    loop.exp = exp.model_copy(update={"storage_retry_s": 0.5})
    with pytest.raises(StorageUnavailableError, match="lost the Optuna storage during sampling parameters for more than storage_retry_s=0.5 s") as info:
        loop.draw(study.ask())
    # the database's reason, not Optuna's "An exception is raised during the commit" (before: the only text shown)
    assert "OperationalError: (builtins.Exception) server closed the connection unexpectedly" in str(info.value), info.value


def test_a_full_disk_stops_at_once_with_its_reason():
    """A full disk is no lost connection: before, the driver retried for storage_retry_s (twice: the tell, then closing
    the trial as it stopped), and said only that it "lost the Optuna storage"."""
    import sqlite3
    import time

    import sqlalchemy.exc

    from dse.exceptions import StorageUnavailableError
    from dse.study._orchestrator import _durable

    calls = []

    def full():
        calls.append(1)
        raise sqlalchemy.exc.OperationalError("INSERT INTO trial_values", {}, sqlite3.OperationalError("database or disk is full"))

    t0 = time.monotonic()
    with pytest.raises(StorageUnavailableError, match=r"could not write during tell: its disk is full .*database or disk is full.*"
                                                      r"free space on the disk that holds it"):
        _durable(full, retry_s=60, what="tell")
    assert time.monotonic() - t0 < 5 and len(calls) == 1


def test_a_run_made_by_a_driver_killed_before_recording_it_is_closed(tmp_path):
    """A driver killed between making a trial's MLflow run and storing its id in Optuna: the trial is recovered by
    number, and its run was RUNNING for good, since no trial named it. Now the next driver's opening closes it."""
    from mlflow.tracking import MlflowClient

    from dse.store import StudyRecords
    from dse.study._orchestrator import _close_finished_runs
    from dse.tracking import StudyTracker
    from tests.report.synthetic import make_study

    study, _, exp = make_study(tmp_path, n_trials=3, name="orphan", failures=False)
    records = StudyRecords(study)
    tracker = StudyTracker(exp.tracking_uri, exp.name)
    recorded = records.trial(0).run_id
    orphan = tracker.trial_run(records.parent_run_id, exp.name, 0, records.trial(0).params, [])
    _close_finished_runs(tracker, records, exp.name)
    client = MlflowClient(exp.tracking_uri)
    run = client.get_run(orphan)
    assert run.info.status == "FAILED" and run.data.tags["state"] == "FAIL", run.data.tags
    assert run.data.tags["error"].startswith("DriverLostError: the driver that made this run of trial 0 was lost")
    assert client.get_run(recorded).info.status == "FINISHED"  # the trial's own run is left as it was


def test_a_complete_trial_whose_logging_failed_gets_its_figures_in_mlflow(tmp_path):
    """Probe 24: the MLflow server went down while a trial's worker logged; the trial was COMPLETE in Optuna (on the
    front), and the next driver closed its run FINISHED with no metric at all. It now logs the figures Optuna holds,
    tagged logging_error."""
    from mlflow.tracking import MlflowClient

    from dse.store import StudyRecords, record_trial_params, record_trial_result, record_trial_run
    from dse.study._orchestrator import _close_finished_runs
    from dse.tracking import StudyTracker
    from tests.report.synthetic import make_study

    study, _, exp = make_study(tmp_path, n_trials=2, name="lost", failures=False)
    records = StudyRecords(study)
    tracker = StudyTracker(exp.tracking_uri, exp.name)
    trial = study.ask()
    params = records.trial(0).params
    record_trial_params(trial, params, [])
    run_id = tracker.trial_run(records.parent_run_id, exp.name, trial.number, params, [])
    record_trial_run(trial, run_id)
    metrics = {"csim_val_accuracy": 0.91, "csim_accuracy": 0.9, "lut": 1234.0, "ebops": 1300.0}
    record_trial_result(trial, metrics, {"lut_source": "ebops-estimate"})  # the driver's record; the worker logged nothing
    study.tell(trial, [metrics[o.metric] for o in exp.objectives])
    _close_finished_runs(tracker, StudyRecords(study), exp.name)
    run = MlflowClient(exp.tracking_uri).get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.metrics["lut"] == 1234.0 and run.data.metrics["csim_accuracy"] == 0.9
    assert run.data.tags["lut_source"] == "ebops-estimate" and "restored from the Optuna record" in run.data.tags["logging_error"]
    # a run that holds its metrics is left as it was
    kept = MlflowClient(exp.tracking_uri).get_run(records.trial(0).run_id)
    assert "logging_error" not in kept.data.tags


def test_trial_runs_an_earlier_dse_left_without_a_number_are_numbered(tmp_path):
    """Harvested checkpoints' runs of an earlier dse had no `trial_number` tag, so `mlflow.search_runs` by trial number
    missed them, and continuing the study did not add it (probe 15). The next driver's opening tags them."""
    from mlflow.tracking import MlflowClient

    from dse.store import StudyRecords
    from dse.study._orchestrator import _number_trial_runs
    from dse.tracking import StudyTracker
    from tests.report.synthetic import make_study

    from dse.store import harvested_trial
    from dse.tracking import TrialRunLogger

    study, _, exp = make_study(tmp_path, n_trials=3, name="numbers", failures=False)
    records = StudyRecords(study)
    client = MlflowClient(exp.tracking_uri)
    tracker = StudyTracker(exp.tracking_uri, exp.name)
    _number_trial_runs(tracker, records, exp.name)  # a study without harvested checkpoints: nothing searched, nothing tagged
    parent = study.trials[0]
    run = TrialRunLogger(exp.tracking_uri, records.trial(0).run_id).harvest_run(epoch=1).run_id  # as an earlier dse left it
    r0 = records.trial(0)
    study.add_trial(harvested_trial(parent, 1, list(parent.values), r0.metrics, r0.tags, run))
    assert tracker.trial_runs_without_number(exp.name) == [run]
    # a server of an MLflow before `IS NULL` on tags (2026-03) refuses the filter: the runs are sorted here instead
    from mlflow.exceptions import MlflowException

    real = tracker.client.search_runs

    def older_server(*args, filter_string="", **kwargs):
        if "IS NULL" in filter_string:
            raise MlflowException("Invalid clause(s) in filter string: 'tags.trial_number IS NULL'")
        return real(*args, filter_string=filter_string, **kwargs)

    tracker.client.search_runs = older_server
    assert tracker.trial_runs_without_number(exp.name) == [run]
    _number_trial_runs(tracker, records, exp.name)
    assert client.get_run(run).data.tags["trial_number"] == "3"
    assert tracker.trial_runs_without_number(exp.name) == []


def test_a_storage_lost_at_the_end_still_ends_the_mlflow_parent_run(tmp_path, monkeypatch, caplog):
    """Probe 24: PostgreSQL down past storage_retry_s; the loop stopped with StorageUnavailableError and the summary could
    not be read from the storage, so the MLflow parent run stayed RUNNING, and the log quoted Optuna's generic "An
    exception is raised during the commit" without its cause. The parent run now ends FAILED, and the cause is quoted.
    (The outage is simulated: the loop and the summary raise what a lost PostgreSQL raises there.)"""
    import logging
    import sqlite3

    import sqlalchemy
    from mlflow.tracking import MlflowClient

    from dse.config import load_experiment
    from dse.exceptions import StorageUnavailableError
    from dse.store import StudyRecords
    from dse.study import _orchestrator, run_study
    from tests.conftest import write_experiment

    def lost(self):
        raise StorageUnavailableError("could not write during tell: Connection refused")

    def summary(*args, **kwargs):
        try:
            raise sqlalchemy.exc.OperationalError("SELECT", {}, sqlite3.OperationalError("Connection refused"))
        except sqlalchemy.exc.OperationalError as e:
            raise RuntimeError("An exception is raised during the commit. This typically happens due to invalid data") from e

    monkeypatch.setattr(_orchestrator._StudyLoop, "run", lost)
    monkeypatch.setattr(_orchestrator, "_finish", summary)
    exp, sp = load_experiment(write_experiment(tmp_path, n_trials=1))
    with caplog.at_level(logging.ERROR, logger="dse.study._orchestrator"), pytest.raises(StorageUnavailableError):
        run_study(exp, sp, progress=False)
    study = optuna.load_study(study_name=exp.name, storage=exp.storage_url)
    parent = MlflowClient(exp.tracking_uri).get_run(StudyRecords(study).parent_run_id)
    assert parent.info.status == "FAILED", parent.info.status
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "could not write the study summary: RuntimeError: An exception is raised during the commit" in said, said
    assert "(caused by OperationalError: (sqlite3.OperationalError) Connection refused" in said, said
    # the storage lost after the last trial, as the summary is read (the review): the parent run ends FAILED too
    monkeypatch.setattr(_orchestrator._StudyLoop, "run", lambda self: None)
    exp, sp = load_experiment(write_experiment(tmp_path / "after", n_trials=1))
    with pytest.raises(RuntimeError, match="An exception is raised during the commit"):
        run_study(exp, sp, progress=False)
    study = optuna.load_study(study_name=exp.name, storage=exp.storage_url)
    assert MlflowClient(exp.tracking_uri).get_run(StudyRecords(study).parent_run_id).info.status == "FAILED"


def test_a_study_of_the_old_default_objectives_is_told_how_to_continue(tmp_path):
    """Probe 39: a study begun by a dse whose default objectives were (csim_accuracy, lut), continued from an experiment
    file that writes no objectives, was told to "restore its objectives", which the user never wrote. `dse check` (and
    `dse run`) now say the default changed and what to write; other objectives get the plain refusal."""
    import optuna
    import yaml
    from typer.testing import CliRunner

    from dse.cli import app
    from dse.config import ObjectiveConfig, load_experiment
    from dse.study._storage import objectives_problem
    from tests.conftest import write_experiment

    path = write_experiment(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw.pop("objectives", None)  # the file as the quick start wrote it then: the default objectives
    path.write_text(yaml.safe_dump(raw))
    exp, _ = load_experiment(path)
    exp.resolved_run_dir.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(study_name=exp.name, storage=exp.storage_url, directions=["maximize", "minimize"])
    study.set_metric_names(["csim_accuracy", "lut"])
    study.add_trial(optuna.trial.create_trial(values=[0.9, 100.0]))
    result = CliRunner().invoke(app, ["check", str(path)])
    said = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert "has objectives ['csim_accuracy', 'lut'], dse's default before 2026-12-07, but the experiment asks for " \
           "['csim_val_accuracy', 'lut'], the default since" in said, said
    assert "write its objectives in the experiment file (objectives: [{metric: csim_accuracy, direction: maximize}, " \
           "{metric: lut, direction: minimize}])" in said, said
    raw["objectives"] = [{"metric": "csim_accuracy", "direction": "maximize"}, {"metric": "lut", "direction": "minimize"}]
    path.write_text(yaml.safe_dump(raw))  # as the message says: the study's own objectives continue it
    assert objectives_problem(study, load_experiment(path)[0]) is None
    other = exp.model_copy(update={"objectives": [ObjectiveConfig(metric="csim_val_accuracy", direction="maximize"),
                                                  ObjectiveConfig(metric="ebops", direction="minimize")]})
    assert "default" not in objectives_problem(study, other)
