"""The driver loop's bookkeeping when it stops or a trial fails: every trial of this driver ends failed and re-enqueued,
and no MLflow run of it stays RUNNING or reads as completed (a bug-hunting review, 2026-12-06).

The study loop (``dse.study._orchestrator._StudyLoop``) runs here on a real Optuna storage, a real MLflow store and,
where it waits on tasks, the shared local Ray with real tasks; only which tasks are in flight is set up by the test.
"""

from __future__ import annotations

import time

import optuna
import pytest
from mlflow.tracking import MlflowClient

from dse.config import load_experiment
from dse.exceptions import DiskFullError, TrialInterruptedError
from dse.report import StudyProgress
from dse.store import StudyRecords
from dse.study._orchestrator import _StudyLoop
from dse.tracking import StudyTracker
from dse.trial import TrialResult
from tests.conftest import write_experiment


def _loop(tmp_path, digits_splits, *, tracker: bool = False, **fields) -> _StudyLoop:
    exp, space = load_experiment(write_experiment(tmp_path / "exp", name="stopping", n_trials=2, **fields))
    exp.resolved_run_dir.mkdir(parents=True)
    study = optuna.create_study(study_name=exp.name, storage=exp.storage_url,
                                directions=[o.direction for o in exp.objectives])
    mlflow = StudyTracker(exp.tracking_uri, exp.name) if tracker else None
    parent = mlflow.study_run(exp.name, exp.model_dump(mode="json")) if mlflow else None
    loop = _StudyLoop(study, exp, space, mlflow, parent, digits_splits, exp.resolved_run_dir, False,
                      StudyProgress(False, exp.n_trials, 0))
    loop.tracking_lost = mlflow is None  # no MLflow store: the loop writes to Optuna only, as after an outage
    return loop


def _ask(loop: _StudyLoop) -> optuna.Trial:
    trial = loop.study.ask()
    loop.draw(trial)
    return trial


def _states(loop: _StudyLoop) -> list[str]:
    return [t.state.name for t in loop.study.get_trials(deepcopy=False)]


def test_stopping_with_a_remeasurement_in_flight_fails_and_requeues_the_trials(tmp_path, digits_splits):
    """`resources.synthesize_front` puts re-measurements (meta ``(number, key)``) in the pool beside trials. Before,
    Ctrl-C or SIGTERM while one ran raised AttributeError in `abandon` ('int' object has no attribute 'number'): exit
    status 1 instead of 130/143, and the trials after it stayed RUNNING, not re-enqueued."""
    loop = _loop(tmp_path, digits_splits)
    running = _ask(loop)
    # no Ray in this test: cancelling a task is a no-op once Ray is down (dse.study._pool._stop), as after a session ends
    loop.pool.submit("remeasurement", "remeasure", (0, "yosys:key"))
    loop.pool.submit("trial", "trial", (running, None))

    assert loop.abandon("SIGTERM") == [running.number]
    assert _states(loop) == ["FAIL", "WAITING"] and not len(loop.pool)
    reason = StudyRecords(loop.study).trial(running.number).fail_reason
    assert reason.startswith("TrialInterruptedError: the driver stopped (SIGTERM) while trial 0 ran"), reason


@pytest.mark.shared_ray
def test_results_that_came_back_with_the_one_that_stopped_the_loop_are_requeued(tmp_path, digits_splits):
    """One wait of the pool hands back every task that finished or timed out. Before, when recording the first stopped
    the loop (here a full disk), the others were out of the pool and out of `abandon`'s reach: RUNNING for good."""
    import ray

    @ray.remote(num_cpus=0)
    def returns(result):
        return result

    @ray.remote(num_cpus=0)
    def sleeps():
        time.sleep(60)

    loop = _loop(tmp_path, digits_splits)
    full, slow = _ask(loop), _ask(loop)
    disk_full = TrialResult(full.number, "FAIL", tags={"disk_full": str(tmp_path)}, error="OSError: [Errno 28] No space left on device")
    loop.pool.submit(returns.remote(disk_full), "trial", (full, None))
    loop.pool.submit(sleeps.remote(), "trial", (slow, None), timeout_s=0.5)
    time.sleep(1.0)  # the slow one is past its limit at the next wait: both come back in one batch

    with pytest.raises(DiskFullError):
        loop._loop(None, max_conc=2)
    # left for abandon, not lost; the one whose handling stopped the loop too (its result is taken off the list once
    # told: a stop while it is recorded abandons it), which abandon leaves as told (FAIL, re-enqueued already)
    assert [done.meta[0].number for done in loop.unhandled] == [full.number, slow.number]
    assert loop.abandon("DiskFullError: a disk is full") == [slow.number]
    assert _states(loop) == ["FAIL", "FAIL", "WAITING", "WAITING"], _states(loop)
    reason = StudyRecords(loop.study).trial(slow.number).fail_reason
    assert reason.startswith(f"TrialInterruptedError: the driver stopped (DiskFullError: a disk is full) as trial {slow.number}'s "
                             "result came back, before recording it"), reason


def test_a_failed_harvesting_trial_closes_its_checkpoint_runs_and_its_verdict(tmp_path, digits_splits):
    """A trial interrupted while its worker harvested checkpoints (Ctrl-C, a time limit, a lost worker). Before: the
    checkpoint being measured kept its MLflow run RUNNING for good; those measured before read as completed trials
    that Optuna does not hold (`dse compare --tracking-uri`); and the trial's run, told FAIL, kept the worker's
    `feasible=true`, so `tags.feasible = 'true'` found a failed run."""
    from dse.tracking import TrialRunLogger

    loop = _loop(tmp_path, digits_splits, tracker=True, constraints=[{"metric": "keras_accuracy", "min": 0.1}],
                 training={"epochs": 4, "batch_size": 128, "learning_rate": 0.01, "harvest_checkpoints": 3})
    trial = _ask(loop)
    params, pinned = loop.draw(trial)
    run_id = loop.tracker.trial_run(loop.parent, loop.exp.name, trial.number, params, sorted(pinned))
    worker = TrialRunLogger(loop.exp.tracking_uri, run_id)  # what the worker wrote before it was stopped
    worker.log_results({"keras_accuracy": 0.9, "ebops": 1000.0}, {"state": "COMPLETE", "feasible": "true"}, end=None)
    measured = worker.harvest_run(1)
    measured.log_results({"keras_accuracy": 0.8}, {"state": "COMPLETE", "feasible": "true"}, end="COMPLETE")
    measuring = worker.harvest_run(2)  # stopped halfway: RUNNING

    err = TrialInterruptedError(f"the driver stopped (Ctrl-C) while trial {trial.number} ran; its parameters were re-enqueued")
    loop.finish_trial(trial, run_id, TrialResult.failed(trial.number, err))

    client = MlflowClient(loop.exp.tracking_uri)
    run = client.get_run(run_id)
    assert run.info.status == "FAILED" and run.data.tags["state"] == "FAIL" and "feasible" not in run.data.tags, run.data.tags
    for checkpoint in (measured, measuring):
        run = client.get_run(checkpoint.run_id)
        assert run.info.status == "FAILED" and run.data.tags["state"] == "FAIL", (run.info.status, run.data.tags)
        assert run.data.tags["error_type"] == "TrialInterruptedError" and "feasible" not in run.data.tags
        assert f"trial {trial.number}, whose checkpoint this is, failed before its checkpoints were recorded" in run.data.tags["error"]


def test_two_drivers_recovering_one_lost_trial_at_once_leave_it_to_the_first(tmp_path, digits_splits):
    """Two live drivers both read a dead driver's trial as lost; the first fails and re-enqueues it. Before, the second's
    writes to the finished trial raised (UpdateFinishedTrialError), which stopped its loop and abandoned its own trials."""
    from dse.store import record_heartbeat
    from dse.study._liveness import this_driver

    first = _loop(tmp_path, digits_splits)
    second = _StudyLoop(first.study, first.exp, first.space, None, None, digits_splits, first.run_dir, False,
                        StudyProgress(False, first.exp.n_trials, 0))
    second.tracking_lost = True
    lost = _ask(first)
    record_heartbeat(lost, "gone", time.time(), {**this_driver(), "start": -1})  # a process of this machine, now gone
    read = second.records.stale_trials(60.0, time.time(), exclude_driver=second.driver_id,
                                       dead=lambda beat: beat.get("driver") == "gone")
    assert [t.number for t in read] == [lost.number]

    assert first.recover_lost(force=True) == [f"trial {lost.number} FAIL DriverLostError (driver lost); parameters re-enqueued"]
    second.records.stale_trials = lambda *args, **kwargs: read  # the second driver goes on from what it read before
    assert second.recover_lost(force=True) == []
    assert _states(first) == ["FAIL", "WAITING"]  # failed and re-enqueued once


def test_a_drivers_progress_beside_another_driver_counts_the_whole_study(tmp_path, digits_splits, caplog):
    """Probe 36: two drivers on one study each printed their own view ("4/6 done, running 0" when all 6 were complete,
    the other's trials running unsaid). While another driver's trials run, the progress reads the study's counts and
    front."""
    first = _loop(tmp_path, digits_splits)  # n_trials 2
    second = _StudyLoop(first.study, first.exp, first.space, None, None, digits_splits, first.run_dir, False,
                        StudyProgress(False, first.exp.n_trials, 0))
    second.tracking_lost = True
    theirs = [_ask(first), _ask(first)]  # the first driver's trials, running
    assert second.room() == 0 and second.others_running == 2
    first.study.tell(theirs[0], [0.9, 1000.0])  # they finish while the second driver's own view stands still
    first.study.tell(theirs[1], [0.95, 500.0])
    with caplog.at_level("INFO", logger="dse.report._progress"):
        second._progress(["trial 9 COMPLETE ..."])
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("progress:")]
    assert said and said[-1].startswith("progress: 2 done (0 failed), 0 running, front size 1"), said  # before: 0 done
    assert second.others_running == 0
    mine = _ask(second)  # the other driver gone quiet: this driver's own view again (no read per trial)
    second.pool.submit("trial", "trial", (mine, None))
    caplog.clear()
    with caplog.at_level("INFO", logger="dse.report._progress"):
        second._progress([])
    assert [r.getMessage() for r in caplog.records][-1].startswith("progress: 2 done (0 failed), 1 running, front size 1")


def _harvesting_loop(tmp_path, digits_splits) -> _StudyLoop:
    return _loop(tmp_path, digits_splits, tracker=True, constraints=[{"metric": "keras_accuracy", "min": 0.1}],
                 training={"epochs": 4, "batch_size": 128, "learning_rate": 0.01, "harvest_checkpoints": 3})


def _trial_run(loop: _StudyLoop):
    from dse.tracking import TrialRunLogger

    trial = _ask(loop)
    params, pinned = loop.draw(trial)
    run_id = loop.tracker.trial_run(loop.parent, loop.exp.name, trial.number, params, sorted(pinned))
    return trial, run_id, TrialRunLogger(loop.exp.tracking_uri, run_id)


@pytest.mark.parametrize("retry_harvested", [True, False])
def test_a_retried_harvesting_trial_closes_the_checkpoint_runs_of_its_lost_attempt(tmp_path, digits_splits, retry_harvested):
    """A worker lost while it harvested, and Ray's retry completed the trial: the first attempt's checkpoint runs belong
    to no trial. Before, they stayed RUNNING (the one being measured) or read as completed trials; the retry's are kept,
    and a retry that harvested nothing closes them too."""
    from dse.trial._harvest import HarvestedResult

    loop = _harvesting_loop(tmp_path, digits_splits)
    trial, run_id, worker = _trial_run(loop)
    lost_done, lost_running = worker.harvest_run(1), worker.harvest_run(2)  # the first attempt, its worker then lost
    lost_done.log_results({"keras_accuracy": 0.8}, {"state": "COMPLETE", "feasible": "true"}, end="COMPLETE")
    kept = worker.harvest_run(1)  # the retry's checkpoint, measured and ended by its worker
    metrics = {"keras_accuracy": 0.85, "csim_accuracy": 0.85, "csim_val_accuracy": 0.85, "ebops": 900.0, "lut": 450.0, "dsp": 0.0}
    kept.log_results(metrics, {"state": "COMPLETE"}, end="COMPLETE")
    worker.log_results({**metrics, "keras_accuracy": 0.9, "csim_accuracy": 0.9, "csim_val_accuracy": 0.9}, {"state": "COMPLETE", "feasible": "true"})
    harvested = [HarvestedResult(1, "COMPLETE", metrics, {"harvested_from": str(trial.number)}, kept.run_id)]
    result = TrialResult(trial.number, "COMPLETE", {**metrics, "keras_accuracy": 0.9, "csim_accuracy": 0.9, "csim_val_accuracy": 0.9},
                         {"state": "COMPLETE", "feasible": "true"}, harvested=harvested if retry_harvested else [])

    loop.finish_trial(trial, run_id, result)

    client = MlflowClient(loop.exp.tracking_uri)
    lost_runs = (lost_done, lost_running) if retry_harvested else (lost_done, lost_running, kept)
    if retry_harvested:
        assert client.get_run(kept.run_id).info.status == "FINISHED"
        assert client.get_run(kept.run_id).data.tags["state"] == "COMPLETE"
    for lost in lost_runs:
        run = client.get_run(lost.run_id)
        assert run.info.status == "FAILED" and run.data.tags["state"] == "FAIL", (run.info.status, run.data.tags)
        assert run.data.tags["error"] == (f"WorkerLostError: an attempt of trial {trial.number} that Ray retried (its worker "
                                          "was lost) made this checkpoint; the retry's checkpoints are the trial's")
    assert _states(loop) == (["COMPLETE", "COMPLETE"] if retry_harvested else ["COMPLETE"])  # with its recorded checkpoint


def test_the_next_driver_closes_checkpoint_runs_left_running_in_their_state(tmp_path, digits_splits):
    """Checkpoint runs left RUNNING after their trial's own run was closed (closing them failed; MLflow lost as the
    worker ended them): the next `dse run` closes one that became no trial as FAIL, and one that Optuna records as a
    harvested trial as COMPLETE. Before, runs without a `trial_number` were not looked at, so both stayed RUNNING."""
    from dse.store import harvested_trial, record_trial_run
    from dse.study._orchestrator import _close_finished_runs, _tell

    loop = _harvesting_loop(tmp_path, digits_splits)
    trial, run_id, worker = _trial_run(loop)
    record_trial_run(trial, run_id)
    left, recorded = worker.harvest_run(2), worker.harvest_run(1)
    metrics = {"keras_accuracy": 0.85, "csim_accuracy": 0.85, "csim_val_accuracy": 0.85, "ebops": 900.0, "lut": 450.0, "dsp": 0.0}
    loop.study.add_trial(harvested_trial(trial, 1, [0.85, 450.0], metrics, {}, recorded.run_id, loop.exp.constraints))
    err = TrialInterruptedError(f"the driver stopped (Ctrl-C) while trial {trial.number} ran; its parameters were re-enqueued")
    _tell(loop.study, trial, loop.exp, TrialResult.failed(trial.number, err))
    loop.tracker.finish_trial_run(run_id, "FAIL", f"TrialInterruptedError: {err}")  # its own run closed, the others not

    _close_finished_runs(loop.tracker, StudyRecords(loop.study), loop.exp.name, harvests=True)
    client = MlflowClient(loop.exp.tracking_uri)
    run = client.get_run(left.run_id)
    assert run.info.status == "FAILED" and run.data.tags["error_type"] == "TrialInterruptedError", run.data.tags
    assert f"trial {trial.number}, whose checkpoint this is, failed before its checkpoints were recorded" in run.data.tags["error"]
    run = client.get_run(recorded.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["state"] == "COMPLETE", (run.info.status, run.data.tags)


def test_a_trial_whose_worker_could_not_log_gets_its_figures_from_the_driver(tmp_path, digits_splits):
    """The review of probe 24's mend: a worker whose MLflow calls failed returns its results with `logging_error`; the
    driver, MLflow answering it, ended the run FINISHED with no metric (only a run left RUNNING got them, from the next
    driver). The driver now logs the result's metrics and tags into the run."""
    loop = _loop(tmp_path, digits_splits, tracker=True)
    trial, run_id, _ = _trial_run(loop)  # the worker logged nothing
    metrics = {"keras_accuracy": 0.8, "csim_accuracy": 0.8, "keras_val_accuracy": 0.82, "csim_val_accuracy": 0.82,
               "ebops": 900.0, "lut": 450.0, "dsp": 0.0}
    result = TrialResult(trial.number, "COMPLETE", metrics, {"lut_source": "ebops-estimate", "csim_accuracy_source": "keras",
                                                           "logging_error": "MlflowException: connection refused"})
    loop.finish_trial(trial, run_id, result)
    run = MlflowClient(loop.exp.tracking_uri).get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.tags["state"] == "COMPLETE"
    assert run.data.metrics["csim_val_accuracy"] == 0.82 and run.data.metrics["lut"] == 450.0, run.data.metrics
    assert run.data.tags["lut_source"] == "ebops-estimate"
    assert run.data.tags["logging_error"] == "MlflowException: connection refused (its metrics and tags were logged by the driver)"


def test_abandon_blames_the_storage_only_where_it_failed_the_trial(tmp_path, digits_splits, monkeypatch):
    """A stopping driver whose storage is lost: a trial Optuna could not fail gets its MLflow run closed FAILED all the
    same (probe 24: left RUNNING); one that Optuna did fail, whose re-enqueue then failed, keeps the reason it was closed
    with (the review: it was closed again, blaming the storage)."""
    loop = _loop(tmp_path, digits_splits, tracker=True)
    trial, run_id, _ = _trial_run(loop)
    loop.pool.submit("trial", "trial", (trial, run_id))

    def lost(*args, **kwargs):
        raise RuntimeError("the storage is gone")

    monkeypatch.setattr(loop, "requeue", lost)
    assert loop.abandon("SIGTERM") == []
    run = MlflowClient(loop.exp.tracking_uri).get_run(run_id)
    assert run.info.status == "FAILED" and "could not record it" not in run.data.tags["error"], run.data.tags["error"]
    assert run.data.tags["error"].startswith("TrialInterruptedError: the driver stopped (SIGTERM) while trial 0 ran")

    trial, run_id, _ = _trial_run(loop)
    loop.pool.submit("trial", "trial", (trial, run_id))
    monkeypatch.setattr(loop, "finish_trial", lost)  # Optuna cannot record the FAIL
    loop.abandon("SIGTERM")
    run = MlflowClient(loop.exp.tracking_uri).get_run(run_id)
    assert run.info.status == "FAILED" and "(the Optuna storage could not record it: RuntimeError: the storage is gone)" \
        in run.data.tags["error"], run.data.tags


def test_a_run_the_driver_cannot_log_either_stays_running_for_the_next_driver(tmp_path, digits_splits, monkeypatch):
    """The second review: where the driver's own logging of a COMPLETE result failed too, the run was ended FINISHED with
    no metric, and the next driver, which repairs RUNNING runs only, never saw it. It is left RUNNING, and the next
    driver's opening restores it from the Optuna record."""
    from dse.study._orchestrator import _close_finished_runs
    from dse.tracking import TrialRunLogger

    from dse.store import record_trial_run

    loop = _loop(tmp_path, digits_splits, tracker=True)
    trial, run_id, _ = _trial_run(loop)
    record_trial_run(trial, run_id)  # as the driver records it at dispatch
    metrics = {"keras_accuracy": 0.8, "csim_accuracy": 0.8, "keras_val_accuracy": 0.82, "csim_val_accuracy": 0.82,
               "ebops": 900.0, "lut": 450.0, "dsp": 0.0}
    result = TrialResult(trial.number, "COMPLETE", metrics, {"logging_error": "MlflowException: connection refused"})

    def refused(self, *args, **kwargs):
        raise RuntimeError("MlflowException: 503")

    with monkeypatch.context() as m:
        m.setattr(TrialRunLogger, "log_results", refused)
        loop.finish_trial(trial, run_id, result)
    client = MlflowClient(loop.exp.tracking_uri)
    assert client.get_run(run_id).info.status == "RUNNING"
    _close_finished_runs(loop.tracker, StudyRecords(loop.study), loop.exp.name)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.metrics["csim_val_accuracy"] == 0.82, run.data.metrics


def test_a_remeasurement_holds_a_trial_slot(tmp_path, digits_splits):
    """The review of stop 45: `synthesize_front` re-measurements take a trial's CPUs, but the loop dispatched trials up to
    max_concurrent_trials beside them, so a trial waited in Ray's queue (behind Yosys, up to synthesis_timeout_s) while
    its trial_timeout_s clock ran, and could time out without having run. A trial is dispatched only into a free slot."""
    loop = _loop(tmp_path, digits_splits)
    loop.capacity = 2  # two trial slots of CPUs, as run() sets from the cluster
    assert loop.slot_free(max_conc=2)
    loop.pool.submit("trial", "trial", (_ask(loop), None))
    assert loop.slot_free(max_conc=2)
    loop.pool.submit("remeasurement", "remeasure", (0, "yosys:key"))
    assert not loop.slot_free(max_conc=2), "the re-measurement holds the second slot"
    assert not loop.slot_free(max_conc=1), "max_concurrent_trials still bounds the trials"
    loop.capacity = 3  # a larger cluster: room for a trial beside both
    assert loop.slot_free(max_conc=2)


def test_a_trial_told_but_not_requeued_as_the_driver_stops_is_named_with_its_parameters(tmp_path, digits_splits, caplog):
    """The review of stop 45: when the stopping driver told a trial FAIL but the storage then refused its re-enqueue, the
    log said "could not close trial N" (it was closed) and nothing of the parameters no later run would evaluate."""
    import logging

    loop = _loop(tmp_path, digits_splits)
    running = _ask(loop)
    loop.pool.submit("trial", "trial", (running, None))

    def refused(*args, **kwargs):
        raise OSError("the storage went away")

    loop.requeue = refused
    caplog.set_level(logging.ERROR, logger="dse.study")
    assert loop.abandon("SIGTERM") == []
    assert _states(loop) == ["FAIL"]
    text = " ".join(caplog.text.split())
    assert (f"trial {running.number} was failed as interrupted, but its parameters could not be re-enqueued (OSError: the "
            "storage went away): no later run evaluates them unless listed under the experiment's enqueue_trials: {") in text, text
    assert "could not close trial" not in text


def test_the_progress_line_says_a_trial_was_retried(tmp_path, digits_splits):
    """Probe 42: a trial that Ray retried after its worker was lost printed as any other (its tag `retried`, set by the
    retry from the lost attempt's steps.json, is asserted in tests/study/test_faults.py)."""
    from dse.study._orchestrator import _describe

    loop = _loop(tmp_path, digits_splits)
    why = "its worker (pid 123) was lost in step train; Ray retried it (ray.max_retries)"
    metrics = {o.metric: 1.0 for o in loop.exp.objectives} | {"seconds_total": 9.0}
    line = _describe(3, "COMPLETE", TrialResult(3, "COMPLETE", metrics, {"retried": why}), loop.exp)
    assert line.endswith(f"(9 s) (retried: {why})"), line
    assert "retried" not in _describe(3, "COMPLETE", TrialResult(3, "COMPLETE", metrics, {}), loop.exp)


def test_a_result_for_a_trial_recorded_already_is_dropped_and_named(tmp_path, digits_splits, caplog):
    """The review of this session's mend: a trial told already (not by another driver's recovery, whose case
    tests/study/test_faults.py runs for real) keeps its record and its MLflow run; the result is dropped with a warning,
    not read as another driver's recovery (its run closed FAILED as DriverLostError) and not an error that stops the loop."""
    import logging

    loop = _loop(tmp_path, digits_splits)
    trial = _ask(loop)
    loop.study.tell(trial, state=optuna.trial.TrialState.FAIL)
    caplog.set_level(logging.WARNING, logger="dse.study")
    line = loop.finish_trial(trial, None, TrialResult.failed(trial.number, RuntimeError("late")))
    assert line == f"trial {trial.number}: recorded already (FAIL); this result not recorded", line
    assert "was recorded already (FAIL), so this result (FAIL) is dropped" in caplog.text
    # not told here, so a stop re-enqueues nothing of it (the review: abandon, not knowing which trials ran, told it
    # again, got the line back and re-enqueued a recorded trial's parameters)
    assert trial.number in loop.taken_over
    loop.pool.submit("trial", "trial", (trial, None))
    real, calls = loop.study.get_trials, []

    def blinking(*args, **kwargs):  # abandon's read of the running trials fails once; finish_trial's read-back works
        calls.append(1)
        if len(calls) == 1:
            raise OSError("the storage blinked")
        return real(*args, **kwargs)

    loop.study.get_trials = blinking
    try:
        assert loop.abandon("SIGTERM") == []
    finally:
        loop.study.get_trials = real
    assert len(calls) >= 2 and _states(loop) == ["FAIL"], _states(loop)  # no WAITING copy of a recorded trial
