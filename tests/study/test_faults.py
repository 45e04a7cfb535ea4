"""What clusters do to a sweep, done for real: a worker SIGKILLed mid-trial, the driver SIGKILLed
mid-study and run again, two drivers on one study, an error inside the study loop.

Each driver is a real `dse run` process; Ray, SQLite and MLflow are real; nothing is mocked.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from dse.config import load_experiment
from dse.report import counts_line, study_counts
from dse.store import StudyRecords, TrialRecord
from dse.study import load_study, run_study
from dse.study._storage import rdb_storage
from tests.cluster._procs import descendants, pids_with
from tests.conftest import REPO, write_experiment

FAST_SPACE = {
    "parameters": {
        "strategy": {"type": "categorical", "choices": ["Latency"]},
        "weight_bits": {"type": "int", "low": 3, "high": 5},
    }
}


def _driver(path: Path, cwd: Path, log: Path, *options: str) -> subprocess.Popen:
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "dse.cli", "run", str(path), "--no-progress", *options],
        cwd=cwd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )


def _processes(needle: str, root: int) -> set[int]:
    """Live descendants of ``root`` whose command line (or an open file) contains ``needle``."""
    return pids_with(needle) & descendants(root)


def _wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None, log: Path | None = None):
    t0 = time.time()
    while time.time() - t0 < timeout:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"driver exited ({proc.returncode}) while waiting for {what}:\n{log.read_text() if log else ''}")
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}:\n{log.read_text()[-3000:] if log else ''}")


def _n_running(exp) -> int:
    """RUNNING trials of ``exp``'s study in its SQLite store; 0 before the store or the study exists."""
    if not (exp.resolved_run_dir / "optuna.db").exists():
        return 0
    try:
        st = optuna.load_study(study_name=exp.name, storage=rdb_storage(exp.storage_url))
    except KeyError:  # the study is not created yet
        return 0
    return len(st.get_trials(states=(optuna.trial.TrialState.RUNNING,)))


def _child_runs(exp) -> list:
    client = MlflowClient(exp.tracking_uri)
    mexp = client.get_experiment_by_name(exp.name)
    return client.search_runs([mexp.experiment_id], filter_string="tags.`dse.role` = 'trial'")


def test_worker_killed_is_retried_in_the_same_run_then_fails(tmp_path):
    """ray.max_retries 1: trial 0's worker killed once -> retried, COMPLETE; trial 1's killed twice -> FAIL WorkerLostError."""
    path = write_experiment(
        tmp_path, space=FAST_SPACE, name="wk", n_trials=3, training={"epochs": 8, "batch_size": 128, "learning_rate": 0.01}, hls4ml={"csim": "none"},
        ray={"num_cpus": 2, "max_concurrent_trials": 1, "max_retries": 1},
    )
    exp, _ = load_experiment(path)
    log = tmp_path / "driver.log"
    proc = _driver(path, tmp_path, log)
    try:
        killed: list[int] = []

        def training_worker(number: int) -> int | None:  # trial `number`'s worker, once it trains (dse.trial._progress)
            try:
                data = json.loads((exp.resolved_run_dir / "trials" / f"trial_{number:05d}" / "steps.json").read_text())
            except (OSError, ValueError):
                return None
            return data["pid"] if data["step"] == "train" and data["pid"] not in killed else None

        for n_kills in (1, 2):  # trial 0 once, trial 1 twice (in training: their records name that step)
            for _ in range(n_kills):
                pid = _wait_for(lambda: training_worker(n_kills - 1), 240, f"trial {n_kills - 1}'s worker in training", proc, log)
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            if n_kills == 1:  # wait until trial 0 is told before killing trial 1's workers
                _wait_for(lambda: len(optuna.load_study(study_name="wk", storage=exp.storage_url).get_trials(
                    states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL))) >= 1, 300, "trial 0 to finish", proc, log)
        assert proc.wait(timeout=600) == 0, log.read_text()
    finally:
        proc.kill()
    study = optuna.load_study(study_name="wk", storage=exp.storage_url)
    recs = {r.number: r for r in StudyRecords(study).trials()}
    assert recs[0].state == "COMPLETE", recs[0].fail_reason
    # the retry says so (probe 42: silent, though the trial took the lost attempt's time too)
    assert recs[0].tags["retried"] == f"its worker (pid {killed[0]}) was lost in step train; Ray retried it (ray.max_retries)", recs[0].tags
    assert MlflowClient(exp.tracking_uri).get_run(recs[0].run_id).data.tags["retried"] == recs[0].tags["retried"]
    assert recs[1].state == "FAIL" and recs[1].fail_reason.startswith("WorkerLostError: its worker process died"), recs[1].fail_reason
    assert "ray.memory_per_trial" in recs[1].fail_reason and "Ray said: " in recs[1].fail_reason  # probe 18: Ray's words alone before
    # the step its worker died in, from the trial's steps.json (before: nothing said where, e.g. training or a C build)
    assert "[in step train for " in recs[1].fail_reason and "(before it: setup " in recs[1].fail_reason, recs[1].fail_reason
    assert recs[1].tags["failed_step"] == "train" and recs[1].metrics["seconds_setup"] > 0, (recs[1].tags, recs[1].metrics)
    assert MlflowClient(exp.tracking_uri).get_run(recs[1].run_id).data.tags["failed_step"] == "train"
    assert recs[2].state == "COMPLETE", "the study goes on after a lost worker"
    runs = Counter(r.data.tags["trial_number"] for r in _child_runs(exp))
    assert runs == Counter({"0": 1, "1": 1, "2": 1}), "a retry logs into the same MLflow run"
    assert MlflowClient(exp.tracking_uri).get_run(recs[1].run_id).info.status == "FAILED"


def test_driver_killed_then_run_again_recovers(tmp_path):
    """SIGKILL the driver with two trials running; `dse run` again at once fails them as DriverLost, re-evaluates them,
    reaches the target. The killed driver ran on this machine, so its trials are recovered without waiting for
    ``heartbeat_grace_s`` (600 s here; a driver elsewhere is judged by that grace: tests/study/test_liveness.py)."""
    path = write_experiment(
        tmp_path, space=FAST_SPACE, name="dk", n_trials=3, training={"epochs": 12, "batch_size": 128, "learning_rate": 0.01}, hls4ml={"csim": "none"},
        ray={"num_cpus": 2, "max_concurrent_trials": 2}, heartbeat_interval_s=1, heartbeat_grace_s=600,
    )
    exp, space = load_experiment(path)
    log = tmp_path / "driver.log"
    proc = _driver(path, tmp_path, log)
    try:
        two_running = lambda: _n_running(exp) == 2 and len(_processes("ray::TrialWorker", proc.pid)) == 2  # noqa: E731
        _wait_for(two_running, 240, "two running trials", proc, log)
        time.sleep(2)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    study = optuna.load_study(study_name="dk", storage=exp.storage_url)
    lost = {t.number: dict(t.params) for t in study.get_trials(states=(optuna.trial.TrialState.RUNNING,))}
    assert len(lost) == 2
    t0 = time.time()
    summary = run_study(exp, space, progress=False)  # the same command again, in this process, at once
    study = optuna.load_study(study_name="dk", storage=exp.storage_url)
    recs = StudyRecords(study).trials()
    assert not [r for r in recs if r.state == "RUNNING"], "no trial may stay RUNNING"
    for n in lost:
        assert recs[n].state == "FAIL" and recs[n].fail_reason.startswith("DriverLostError")
        assert "on this machine is gone" in recs[n].fail_reason, recs[n].fail_reason
        run = MlflowClient(exp.tracking_uri).get_run(recs[n].run_id)
        assert run.info.status == "FAILED" and "DriverLostError" in run.data.tags["error"]
    evaluated = [r for r in recs if r.state == "COMPLETE"]
    assert len(evaluated) == exp.n_trials, "the target counts evaluated trials, not lost ones"
    requeued = [dict(study.trials[r.number].params) for r in evaluated if "requeued_from" in study.trials[r.number].user_attrs]
    assert sorted(map(str, requeued)) == sorted(map(str, lost.values())), "the lost trials' parameters are evaluated again"
    assert summary.n_complete == exp.n_trials
    assert time.time() - t0 < exp.heartbeat_grace_s, "recovered without waiting for the grace"


def test_two_drivers_share_the_target(tmp_path, storage="journal"):
    """Two `dse run` on one study, 2 s apart, n_trials 3: at most one extra trial per driver, no duplicate trial or run,
    and no design sampled twice (before, both drivers found 0 trials and seeded their samplers alike).

    In Optuna's journal file (``storage: journal``), which the two drivers append to under its lock; two drivers on
    SQLite (the default) run in the takeover test below (about 50 s each: CI runs one of each).
    """
    space = {"parameters": {**FAST_SPACE["parameters"], "beta": {"type": "float", "low": 1e-6, "high": 1e-4, "log": True}}}
    path = write_experiment(
        tmp_path, space=space, name="two", n_trials=3, training={"epochs": 2, "batch_size": 128, "learning_rate": 0.01}, hls4ml={"csim": "none"},
        ray={"num_cpus": 1, "max_concurrent_trials": 1}, storage=storage,
    )
    exp, _ = load_experiment(path)
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    first = _driver(path, tmp_path, logs[0])
    time.sleep(2)
    second = _driver(path, tmp_path, logs[1])
    try:
        for p, log in zip((first, second), logs):
            assert p.wait(timeout=600) == 0, log.read_text()
    finally:
        first.kill()
        second.kill()
    study = load_study("two", exp.storage_url)
    recs = StudyRecords(study).trials()
    assert exp.n_trials <= len(recs) <= exp.n_trials + 2
    assert all(r.state == "COMPLETE" for r in recs), [r.fail_reason for r in recs]
    numbers = [r.data.tags["trial_number"] for r in _child_runs(exp)]
    assert len(numbers) == len(set(numbers)) == len(recs)
    drivers = {study.trials[r.number].user_attrs["heartbeat"]["driver"] for r in recs}
    assert len(drivers) == 2, "both drivers ran trials"
    betas = [study.trials[r.number].params["beta"] for r in recs]
    assert len(set(betas)) == len(betas), betas
    # the last driver to finish ended the shared parent run (the first left it RUNNING while the other's trials ran)
    assert MlflowClient(exp.tracking_uri).get_run(StudyRecords(study).parent_run_id).info.status == "FINISHED"


def test_the_first_of_two_drivers_to_finish_leaves_the_parent_run_to_the_other(tmp_path):
    """Two drivers share one MLflow parent run. Before, the first to finish ended it FINISHED while the other's trials
    still logged into it; now it stays RUNNING until no trial runs, and the last driver ends it."""
    from dse.store import record_heartbeat
    from dse.study._liveness import this_driver
    from dse.study._orchestrator import _finish
    from dse.tracking import StudyTracker
    from tests.report.synthetic import make_study

    study, _, exp = make_study(tmp_path, n_trials=4, name="shared", failures=False)
    client = MlflowClient(exp.tracking_uri)
    parent = StudyRecords(study).parent_run_id
    client.update_run(parent, "RUNNING")  # as while the two drivers run
    other = study.ask()  # the other driver's trial, still running (a live process: this one)
    record_heartbeat(other, "other", time.time(), this_driver())
    tracker = StudyTracker(exp.tracking_uri, exp.name)
    run_dir = exp.resolved_run_dir
    summary = _finish(study, exp, tracker, parent, run_dir, "FINISHED", time.time())
    assert summary.n_complete == 4 and (run_dir / "pareto_front.csv").exists()
    assert client.get_run(parent).info.status == "RUNNING"
    study.tell(other, state=optuna.trial.TrialState.FAIL)  # the other driver's last trial ends; then that driver finishes
    _finish(study, exp, tracker, parent, run_dir, "FINISHED", time.time())
    assert client.get_run(parent).info.status == "FINISHED"


def test_a_driver_judged_lost_while_alive_drops_that_trials_result_and_goes_on(tmp_path, caplog):
    """Another driver fails this driver's running trial as DriverLostError and re-enqueues it (as recover_lost does when
    heartbeats stop for heartbeat_grace_s: a loop held up, a suspended machine, clocks apart) while the trial trains.
    Before (the review of stop 45), this driver's next heartbeat or its tell raised UpdateFinishedTrialError: its loop
    stopped and every other trial it ran was abandoned. Now it drops that result, closes the trial's MLflow run FAILED
    saying why, and goes on; the re-enqueued parameters are run as a new trial."""
    import logging
    import threading

    from dse.store import record_trial_result

    path = write_experiment(tmp_path, space=FAST_SPACE, name="taken", n_trials=1, hls4ml={"csim": "none"},
                            training={"epochs": 25, "batch_size": 128, "learning_rate": 0.01}, heartbeat_interval_s=1,
                            ray={"num_cpus": 1, "max_concurrent_trials": 1})
    exp, space = load_experiment(path)
    steps = exp.resolved_run_dir / "trials" / "trial_00000" / "steps.json"
    taken: list[dict] = []

    def other_driver() -> None:  # what a second driver's recover_lost writes, once trial 0 trains
        t0 = time.time()
        while time.time() - t0 < 240:
            try:
                training = json.loads(steps.read_text())["step"] == "train"
            except (OSError, ValueError, KeyError):
                training = False
            if training:
                study = optuna.load_study(study_name="taken", storage=exp.storage_url)
                trial = study.trials[0]
                record_trial_result(optuna.trial.Trial(study, trial._trial_id), {}, {"error_type": "DriverLostError"},
                                    fail_reason="DriverLostError: the driver running trial 0 was lost: it stopped sending "
                                                "heartbeats; its parameters were re-enqueued")
                study.tell(0, state=optuna.trial.TrialState.FAIL)
                study.enqueue_trial(dict(trial.params))
                taken.append(dict(trial.params))
                return
            time.sleep(0.1)

    thread = threading.Thread(target=other_driver, daemon=True)
    thread.start()
    caplog.set_level(logging.WARNING, logger="dse.study")
    summary = run_study(exp, space, progress=False)
    thread.join(timeout=5)
    assert taken, "trial 0 never trained"
    study = optuna.load_study(study_name="taken", storage=exp.storage_url)
    recs = StudyRecords(study).trials()
    assert recs[0].state == "FAIL" and recs[0].fail_reason.startswith("DriverLostError: the driver running trial 0"), recs[0]
    assert recs[1].params.model_dump(include=set(taken[0])) == taken[0] and recs[1].state == "COMPLETE", recs[1]
    assert summary.n_complete == 1 and [r.state for r in recs] == ["FAIL", "COMPLETE"], recs
    run = MlflowClient(exp.tracking_uri).get_run(recs[0].run_id)
    assert run.info.status == "FAILED" and "this result (COMPLETE) was not recorded" in run.data.tags["error"], run.data.tags
    assert "another driver judged this trial's driver lost" in caplog.text, caplog.text


def test_error_in_the_loop_fails_pending_trials_and_the_parent_run(tmp_path, monkeypatch):
    """An MLflow outage while creating trial 1's run: trial 0 (running) and trial 1 (asked) are FAIL, the parent run FAILED."""
    from dse.tracking import StudyTracker

    exp, space = load_experiment(write_experiment(tmp_path, space=FAST_SPACE, name="err", n_trials=3, ray={"num_cpus": 2},
                                                 hls4ml={"csim": "none"}))
    real = StudyTracker.trial_run
    calls = []

    def flaky(self, *args, **kwargs):  # the tracking server goes away after the first trial's run exists
        calls.append(1)
        if len(calls) > 1:
            raise ConnectionError("tracking server went away")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(StudyTracker, "trial_run", flaky)
    with pytest.raises(ConnectionError):
        run_study(exp, space, progress=False)
    import ray

    assert not ray.is_initialized(), "abandoning the trials after the Ray session must not start a new Ray (auto-init)"
    study = optuna.load_study(study_name="err", storage=exp.storage_url)
    recs = StudyRecords(study).trials()
    assert [r.state for r in recs] == ["FAIL", "FAIL", "WAITING", "WAITING"], "both re-enqueued, to be evaluated by the next run"
    for r in recs[:2]:
        assert r.fail_reason.startswith(f"TrialInterruptedError: the driver stopped (ConnectionError: tracking server went away) "
                                        f"while trial {r.number} ran; its parameters were re-enqueued"), r.fail_reason
    assert [study.trials[n].user_attrs["requeued_from"] for n in (2, 3)] == [0, 1]
    assert [study.trials[n].system_attrs["fixed_params"] for n in (2, 3)] == [study.trials[0].params, study.trials[1].params]
    assert study_counts(study).interrupted == 2, "interrupted trials do not count towards n_trials"
    client = MlflowClient(exp.tracking_uri)
    parent = client.get_run(StudyRecords(study).parent_run_id)
    assert parent.info.status == "FAILED" and "tracking server went away" in parent.data.tags["error"]
    assert client.get_run(recs[0].run_id).info.status == "FAILED"
    assert TrialRecord.of(study.trials[0]).tags.get("error_type") == "TrialInterruptedError"


@pytest.mark.slow  # 25-60 s on a 2-core host: SLOW=1 bash scripts/test.sh (README, Testing)
def test_sigterm_fails_running_trials_as_interrupted_and_a_rerun_evaluates_them(tmp_path):
    """SIGTERM (what `kill`, batch schedulers and Kubernetes send) mid-trial: exit 143 with one line, the running trials
    FAIL as TrialInterruptedError and re-enqueued, the parent run KILLED, nothing of Ray left; the next run reaches n_trials
    evaluated trials and clears nothing it should keep."""
    path = write_experiment(
        tmp_path, space=FAST_SPACE, name="term", n_trials=3, training={"epochs": 12, "batch_size": 128, "learning_rate": 0.01}, hls4ml={"csim": "none"},
        ray={"num_cpus": 2, "max_concurrent_trials": 2},
    )
    exp, space = load_experiment(path)
    log = tmp_path / "driver.log"
    proc = _driver(path, tmp_path, log, "--n-trials", "3")
    try:
        two_running = lambda: _n_running(exp) == 2 and len(_processes("ray::TrialWorker", proc.pid)) == 2  # noqa: E731
        _wait_for(two_running, 240, "two running trials", proc, log)
        ray_pids = _processes(str(exp.resolved_run_dir), proc.pid)
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=120) == 143, log.read_text()
    finally:
        proc.kill()
    # the storage file alone holds the interrupted trials and their re-enqueued points (probe 32: they were in the
    # write-ahead log left beside it, so a backup of optuna.db alone lacked them)
    import shutil
    import sqlite3

    shutil.copy(exp.resolved_run_dir / "optuna.db", tmp_path / "alone.db")
    con = sqlite3.connect(tmp_path / "alone.db")
    states = sorted(r[0] for r in con.execute("SELECT state FROM trials"))
    con.close()
    assert states.count("FAIL") == 2 and states.count("WAITING") == 2, states
    text = log.read_text()
    assert "stopped (SIGTERM)" in text and "Traceback" not in text and "Aborted" not in text, text[-3000:]
    # the command that continues it repeats --n-trials (before: without it, a run that had raised n_trials did nothing)
    assert f"`dse run {path} --n-trials 3` continues the study" in " ".join(text.split()), text[-3000:]
    assert "retries remaining" not in text, text[-3000:]  # Ray announced a retry of each killed trial worker
    _wait_for(lambda: not (ray_pids & pids_with(str(exp.resolved_run_dir))), 30, "the driver's Ray processes to go")
    study = optuna.load_study(study_name="term", storage=exp.storage_url)
    recs = StudyRecords(study).trials()
    interrupted = [r for r in recs if r.state == "FAIL"]
    assert len(interrupted) == 2 and not [r for r in recs if r.state == "RUNNING"]
    for r in interrupted:
        assert r.fail_reason.startswith(f"TrialInterruptedError: the driver stopped (SIGTERM) while trial {r.number} ran"), r.fail_reason
        assert MlflowClient(exp.tracking_uri).get_run(r.run_id).info.status == "FAILED"
    parent = MlflowClient(exp.tracking_uri).get_run(StudyRecords(study).parent_run_id)
    assert parent.info.status == "KILLED"
    # `dse status` names them: before, "2 failed" read as 2 designs that failed
    assert "2 failed (2 of them interrupted or lost and re-enqueued, so not counted towards n_trials)" in counts_line(study_counts(study))

    summary = run_study(exp, space, progress=False)
    study = optuna.load_study(study_name="term", storage=exp.storage_url)
    recs = StudyRecords(study).trials()
    assert summary.n_complete == exp.n_trials == len([r for r in recs if r.state == "COMPLETE"])
    requeued = sorted(str(dict(study.trials[r.number].params)) for r in recs
                      if r.state == "COMPLETE" and "requeued_from" in study.trials[r.number].user_attrs)
    assert requeued == sorted(str(dict(study.trials[r.number].params)) for r in interrupted)


@pytest.mark.slow  # 25-60 s on a 2-core host: SLOW=1 bash scripts/test.sh (README, Testing)
def test_a_second_driver_takes_over_a_killed_drivers_trials(tmp_path):
    """Two drivers on one study; the first is SIGKILLed with its trials running. The second, still running, fails them as
    DriverLostError at once (same machine), runs their parameters itself and ends with n_trials evaluated trials."""
    path = write_experiment(
        tmp_path, space=FAST_SPACE, name="takeover", n_trials=4, training={"epochs": 16, "batch_size": 128, "learning_rate": 0.01}, hls4ml={"csim": "none"},
        ray={"num_cpus": 1, "max_concurrent_trials": 1}, heartbeat_interval_s=1, heartbeat_grace_s=600,
    )
    exp, _ = load_experiment(path)
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    first = _driver(path, tmp_path, logs[0])
    second = None
    try:
        _wait_for(lambda: _n_running(exp) == 1, 240, "the first driver's trial", first, logs[0])
        second = _driver(path, tmp_path, logs[1])
        _wait_for(lambda: "RUNNING under another driver" in logs[1].read_text(), 240, "the second driver's start", second, logs[1])
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
        assert second.wait(timeout=600) == 0, logs[1].read_text()
    finally:
        first.kill()
        if second is not None:
            second.kill()
    study = load_study("takeover", exp.storage_url)
    recs = StudyRecords(study).trials()
    assert not [r for r in recs if r.state in ("RUNNING", "WAITING")], [(r.number, r.state) for r in recs]
    lost = [r for r in recs if r.state == "FAIL"]
    assert lost and all(r.fail_reason.startswith("DriverLostError") and "on this machine is gone" in r.fail_reason for r in lost)
    assert len([r for r in recs if r.state == "COMPLETE"]) >= exp.n_trials, logs[1].read_text()[-3000:]
    for r in lost:
        assert MlflowClient(exp.tracking_uri).get_run(r.run_id).info.status == "FAILED"
    numbers = [r.data.tags["trial_number"] for r in _child_runs(exp)]  # two drivers on SQLite: no trial or run twice
    assert len(numbers) == len(set(numbers)) == len([r for r in recs if r.run_id])
    # the killed driver's empty trial folders are removed by the driver that recovered them (probe 32: left for good);
    # one holding files is left, as it may be what a --keep-files driver kept
    left = [p for p in (exp.resolved_run_dir / "trials").glob("trial_*") if not any(f.is_file() for f in p.rglob("*"))]
    assert not left, left


#: First lines of the scripts below: Ctrl-C raises KeyboardInterrupt, as at a terminal, even when pytest runs as a
#: background job of a shell without job control, which starts it (and so these scripts) with SIGINT ignored.
_AS_AT_A_TERMINAL = """
import signal
signal.signal(signal.SIGINT, signal.default_int_handler)
"""

_INTERRUPT_START = _AS_AT_A_TERMINAL + """
import os, signal, sys, threading
from pathlib import Path
from dse.config import RayConfig
from dse.study import ray_session
threading.Timer(float(sys.argv[2]), lambda: os.kill(os.getpid(), signal.SIGINT)).start()
try:
    with ray_session(RayConfig(num_cpus=1), Path(sys.argv[1])):
        import time
        time.sleep(60)
except KeyboardInterrupt:
    print("INTERRUPTED", flush=True)
"""


@pytest.mark.parametrize("delay_s", [1.5, 2.2])
def test_ctrl_c_while_ray_starts_leaves_no_ray_process(tmp_path, delay_s):
    """Ctrl-C during `ray.init` (Ray takes about 3 s to start here). Before, ray.init ran outside the try/finally that
    shuts Ray down, and ray::DashboardAgent and ray::RuntimeEnvAgent stayed running, holding files under run_dir/ray."""
    run = tmp_path / "run"
    out = subprocess.run([sys.executable, "-c", _INTERRUPT_START, str(run), str(delay_s)], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert "INTERRUPTED" in out.stdout, out.stdout + out.stderr[-2000:]
    _assert_no_ray_left(run / "ray")


def _signal_inside_ray_init(name: str) -> str:
    """Script lines that send this process signal ``name`` from the first Python code Ray runs while it builds its core
    worker (inside ``ray._raylet.CoreWorker(...)``, halfway through ``ray.init``)."""
    return f"""
import os, signal
import ray._private.gc_collect_manager as gc_manager
build = gc_manager.PythonGCThread.__init__
def build_signalled(self, *args, **kwargs):
    os.kill(os.getpid(), signal.{name})
    build(self, *args, **kwargs)
gc_manager.PythonGCThread.__init__ = build_signalled
"""


def _assert_no_ray_left(ray_dir: Path) -> None:
    """No process names ``ray_dir`` (a run directory's Ray files) a second after the driver ended; kills any it finds."""
    time.sleep(1.0)
    left = pids_with(str(ray_dir))
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, left


_INTERRUPT_CORE_WORKER = _AS_AT_A_TERMINAL + _signal_inside_ray_init("SIGINT") + """
import sys, time
from pathlib import Path
from dse.config import RayConfig
from dse.study import ray_session
try:
    with ray_session(RayConfig(num_cpus=1), Path(sys.argv[1])):
        time.sleep(2)
        print("NOT INTERRUPTED", flush=True)
except KeyboardInterrupt:
    print("INTERRUPTED", flush=True)
    sys.exit(130)
"""


def test_ctrl_c_while_ray_builds_its_core_worker_stops_cleanly(tmp_path):
    """A Ctrl-C that lands inside ray.init's core-worker construction (the SIGINT is sent from the first Python code
    Ray runs there). Before, the KeyboardInterrupt left a half-built core worker and the process died of SIGSEGV at exit
    (status -11, every time; 4 of 26 Ctrl-Cs of `dse run` at 5.5-9 s). Now it is held until
    ray.init returns: KeyboardInterrupt, status 130, no Ray process left."""
    run = tmp_path / "run"
    out = subprocess.run([sys.executable, "-c", _INTERRUPT_CORE_WORKER, str(run)], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 130, f"exit status {out.returncode}\n{out.stdout}{out.stderr[-2000:]}"
    assert "INTERRUPTED" in out.stdout and "NOT INTERRUPTED" not in out.stdout
    assert "stopping as soon as Ray has started" in out.stderr
    _assert_no_ray_left(run / "ray")


_SIGTERM_CORE_WORKER = _signal_inside_ray_init("SIGTERM") + """
import sys
from dse.cli import main
sys.argv = ["dse", "run", sys.argv[1], "--no-progress"]
main()
"""


def _sigtermed_run(tmp_path: Path, name: str, n_trials: int, script: str, **fields):
    """``dse run`` of a tiny study through ``script`` (which sends the SIGTERM); asserts exit status 143.

    Returns:
        ``(experiment, stdout + stderr)``.
    """
    path = write_experiment(tmp_path, space=FAST_SPACE, name=name, n_trials=n_trials, hls4ml={"csim": "none"}, ray={"num_cpus": 1},
                            **fields)
    exp, _ = load_experiment(path)
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", script, str(path)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    text = out.stdout + out.stderr
    assert out.returncode == 143, f"exit status {out.returncode}\n{text[-3000:]}"
    return exp, text


def test_sigterm_while_ray_starts_stops_as_sigterm(tmp_path):
    """A SIGTERM that lands inside ray.init (sent from the first Python code Ray runs in its core worker's construction).
    Before, ray.init's own handler (sys.exit(15)) took it: exit status 15 (or 134, SIGABRT) without dse's stop line, and
    the parent run closed FAILED with 'SystemExit: 15'. Now it is held until ray.init returns and then stops the study as
    any SIGTERM does: exit 143 with one line, the parent run KILLED, no Ray process left."""
    exp, text = _sigtermed_run(tmp_path, "termstart", 2, _SIGTERM_CORE_WORKER)
    assert "SIGTERM: stopping as soon as Ray has started" in text, text[-3000:]
    assert "stopped (SIGTERM)" in text and "Traceback" not in text, text[-3000:]
    study = optuna.load_study(study_name="termstart", storage=exp.storage_url)
    parent = MlflowClient(exp.tracking_uri).get_run(StudyRecords(study).parent_run_id)
    assert parent.info.status == "KILLED" and "error" not in parent.data.tags, parent.data.tags
    assert not [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    _assert_no_ray_left(exp.resolved_run_dir / "ray")


_SIGTERM_IN_WRAP_UP = """
import os, signal, sys, time
import dse.study._orchestrator as orchestrator
finish = orchestrator._finish
def finish_signalled(*args, **kwargs):  # a SIGTERM as the wrap-up begins, after Ray's shutdown
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.3)
    return finish(*args, **kwargs)
orchestrator._finish = finish_signalled
from dse.cli import main
sys.argv = ["dse", "run", sys.argv[1], "--no-progress"]
main()
"""


@pytest.mark.slow  # 25-60 s on a 2-core host: SLOW=1 bash scripts/test.sh (README, Testing)
def test_sigterm_while_the_summary_is_written_writes_it_and_stops(tmp_path):
    """A SIGTERM after the last trial, while the study's summary is written (Ray already shut down, which leaves SIGTERM
    to its default action). Before, it killed the driver without a word: exit 143, the MLflow parent run RUNNING, no
    pareto_front.csv (probe 20). Now the summary is written first, then dse stops as on any SIGTERM."""
    # its stores in folders that do not exist yet: `dse run` creates them, as `dse check` promised (probe 22: before, the
    # SQLite file's missing folder ended `dse run` in a traceback)
    exp, text = _sigtermed_run(tmp_path, "termend", 1, _SIGTERM_IN_WRAP_UP, storage=f"sqlite:///{tmp_path}/stores/a/optuna.db",
                               mlflow={"tracking_uri": f"sqlite:///{tmp_path}/stores/b/mlflow.db"})
    assert (tmp_path / "stores" / "a" / "optuna.db").is_file() and (tmp_path / "stores" / "b" / "mlflow.db").is_file()
    # a SQLite MLflow store of one's own keeps its artifacts beside it (audit: MLflow's ./mlruns in the folder dse ran in)
    assert list((tmp_path / "stores" / "b" / "mlartifacts").rglob("model.keras")) and not (tmp_path / "mlruns").exists()
    # Optuna's and MLflow's INFO lines stay out of a run without -v (probe 22: "Using an existing study ..." on every run)
    again = subprocess.run([sys.executable, "-m", "dse", "run", str(tmp_path / "experiment.yaml"), "--no-progress"],
                           cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "nothing to run" in again.stdout, again.stdout + again.stderr[-3000:]
    assert "Using an existing study" not in again.stderr and "INFO" not in again.stderr, again.stderr[-3000:]
    assert "SIGTERM while the study's summary was written: written first, now stopping" in text, text[-3000:]
    assert "stopped (SIGTERM)" in text and "Traceback" not in text, text[-3000:]
    study = optuna.load_study(study_name="termend", storage=exp.storage_url)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE]
    parent = MlflowClient(exp.tracking_uri).get_run(StudyRecords(study).parent_run_id)
    assert parent.info.status == "FINISHED", parent.info.status  # the study had finished its trials
    assert (exp.resolved_run_dir / "pareto_front.csv").is_file()


_SIGTERM_AS_A_RESULT_IS_RECORDED = """
import os, signal, sys
import dse.study._orchestrator as orchestrator
trial_result = orchestrator._StudyLoop.trial_result
def signalled(self, done):  # a SIGTERM as the first result is being recorded, before Optuna is told
    os.kill(os.getpid(), signal.SIGTERM)
    return trial_result(self, done)
orchestrator._StudyLoop.trial_result = signalled
from dse.cli import main
sys.argv = ["dse", "run", sys.argv[1], "--no-progress"]
main()
"""


def test_a_sigterm_while_a_result_is_recorded_abandons_that_trial_too(tmp_path):
    """The review of stop 45: the loop took a result off its list before recording it, so a stop in between (Ctrl-C,
    SIGTERM, an error) left that trial RUNNING, unrecorded and not re-enqueued, and the parent run RUNNING ("trial(s) of
    another driver still run"). Now it is abandoned as the running trials are: FAIL TrialInterruptedError, re-enqueued."""
    exp, text = _sigtermed_run(tmp_path, "termresult", 1, _SIGTERM_AS_A_RESULT_IS_RECORDED)
    assert "stopped (SIGTERM)" in text and "Traceback" not in text, text[-3000:]
    study = optuna.load_study(study_name="termresult", storage=exp.storage_url)
    states = [t.state for t in study.trials]
    assert states == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.WAITING], states
    assert TrialRecord.of(study.trials[0]).fail_reason.startswith("TrialInterruptedError: the driver stopped (SIGTERM) as "
                                                                  "trial 0's result came back"), study.trials[0].user_attrs
    assert study.trials[1].system_attrs["fixed_params"] == study.trials[0].params  # its parameters, for the next `dse run`
    parent = MlflowClient(exp.tracking_uri).get_run(StudyRecords(study).parent_run_id)
    assert parent.info.status == "KILLED", parent.info.status


def test_a_held_sigterm_never_hides_an_error_and_a_second_one_stops_at_once():
    """The review of the wrap-up's SIGTERM hold: an error raised while a SIGTERM was held propagates as it is (before this
    fix, it was replaced by the SIGTERM, or the SIGTERM lost), and a second SIGTERM does not wait for the wrap-up."""
    from dse.study import _orchestrator as orchestrator

    before = signal.signal(signal.SIGTERM, orchestrator._raise_terminated)
    try:
        orchestrator._TERMINATED.clear()
        with pytest.raises(RuntimeError, match="disk full"):
            with orchestrator._sigterm_deferred():
                os.kill(os.getpid(), signal.SIGTERM)
                raise RuntimeError("disk full")
        assert orchestrator._TERMINATED.is_set()
        orchestrator._TERMINATED.clear()
        reached = []
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
            with orchestrator._sigterm_deferred():
                os.kill(os.getpid(), signal.SIGTERM)
                os.kill(os.getpid(), signal.SIGTERM)
                reached.append(True)
        assert not reached and orchestrator._TERMINATED.is_set()
        assert signal.getsignal(signal.SIGTERM) is orchestrator._raise_terminated  # restored on the way out
    finally:
        signal.signal(signal.SIGTERM, before)
        orchestrator._TERMINATED.clear()
