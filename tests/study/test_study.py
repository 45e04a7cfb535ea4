"""A tiny real study: Ray tasks, Optuna SQLite storage, real hls4ml compile, real MLflow store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from dse.config import load_experiment
from dse.exceptions import SearchSpaceError
from dse.store import TrialRecord
from dse.study import run_study
from tests.conftest import TINY_SPACE, write_experiment

pytestmark = pytest.mark.shared_ray  # in-process studies share one local Ray (tests/conftest.py)


def _runs(exp, summary):
    client = MlflowClient(exp.tracking_uri)
    children = client.search_runs(
        [client.get_run(summary.parent_run_id).info.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{summary.parent_run_id}'",
    )
    return client, {int(r.data.tags["trial_number"]): r for r in children}


def test_study_finishes_with_failures_recorded(tiny_study):
    exp, summary, study = tiny_study
    states = {t.number: t.state for t in study.trials}
    assert len(states) == exp.n_trials
    assert summary.n_complete + summary.n_failed == exp.n_trials
    for t in study.trials:
        if t.params["learning_rate"] == 1e30:
            assert t.state == optuna.trial.TrialState.FAIL
            assert t.user_attrs["fail_reason"].startswith("TrainingDivergedError: training diverged: loss became nan")
        else:
            assert t.state == optuna.trial.TrialState.COMPLETE, t.user_attrs.get("fail_reason")
    assert summary.n_failed >= 1 and summary.n_complete >= 1, "seed 3 should give both outcomes"
    pids = [t.user_attrs["tags"]["worker_pid"] for t in study.trials]
    assert len(set(pids)) == len(pids) and str(os.getpid()) not in pids, "each trial needs a fresh worker process"
    # each trial's seed is recorded (probe 23: nowhere but the parent run's experiment seed)
    assert [t.user_attrs["tags"]["seed"] for t in study.trials] == [str(exp.seed + t.number) for t in study.trials]


def test_invalid_reuse_factor_refused_before_any_trial(tmp_path):
    space = {"parameters": {"strategy": {"type": "categorical", "choices": ["Resource"]},
                            "reuse_factor": {"type": "categorical", "choices": [3, 5]}}}
    exp, sp = load_experiment(write_experiment(tmp_path, space=space))
    with pytest.raises(SearchSpaceError) as info:
        run_study(exp, sp, progress=False)
    assert "parameters.reuse_factor: none of [3, 5] is a valid hls4ml ReuseFactor for the 64x8 Dense layer" in str(info.value)
    assert "valid there: [1, 2, 4, 8, 16" in str(info.value)
    assert not (exp.resolved_run_dir / "optuna.db").exists()  # nothing started


def test_mlflow_runs_params_metrics_tags_artifacts(tiny_study):
    exp, summary, study = tiny_study
    client, runs = _runs(exp, summary)
    assert sorted(runs) == [t.number for t in study.trials]
    front_numbers = {t.number for t in study.best_trials}
    for t in study.trials:
        run = runs[t.number]
        rec = TrialRecord.of(t)
        logged = {k: v for k, v in run.data.params.items()}
        assert logged == {k: json.dumps(v) if isinstance(v, list) else str(v) for k, v in rec.params.model_dump(mode="json").items()}
        assert rec.params.learning_rate == t.params["learning_rate"] and rec.params.weight_bits == t.params["weight_bits"]
        assert run.data.tags["pinned"] == ",".join(rec.pinned)
        assert run.data.tags["state"] == t.state.name
        assert run.info.status == ("FINISHED" if t.state.name == "COMPLETE" else "FAILED")
        if t.state.name == "FAIL":
            assert "TrainingDivergedError" in run.data.tags["error"]
            assert "csim_accuracy" not in run.data.metrics  # nothing invented for a failed trial
            continue
        m = run.data.metrics
        for key in ("csim_val_accuracy", "keras_val_accuracy", "csim_accuracy", "keras_accuracy", "ebops", "lut", "dsp",
                    "seconds_train", "seconds_compile", "seconds_csim"):
            assert key in m, key
        assert 0.1 < m["csim_accuracy"] <= 1.0 and m["ebops"] > 0
        assert m["bit_exact_fraction"] == 1.0
        assert m["csim_accuracy"] == m["keras_accuracy"] and m["csim_val_accuracy"] == m["keras_val_accuracy"]
        assert run.data.tags["lut_source"] == run.data.tags["resource_source"] == "ebops-estimate"
        assert run.data.tags["pareto"] == ("true" if t.number in front_numbers else "false")
        arts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"model.keras", "hls4ml_config.yaml"} <= arts
        assert [v for v in t.values] == [m["csim_val_accuracy"], m["lut"]]  # designs are selected on the validation split
    parent_arts = {a.path for a in client.list_artifacts(summary.parent_run_id)}
    assert "pareto_front.csv" in parent_arts
    front = pd.read_csv(client.download_artifacts(summary.parent_run_id, "pareto_front.csv"))
    assert set(front["trial"]) == front_numbers
    assert {"csim_val_accuracy", "csim_accuracy", "lut", "lut_source", "mlflow_run_id"} <= set(front.columns)


def test_artifacts_rebuild_a_bit_exact_design(tiny_study, digits_splits, tmp_path):
    """Download a trial's model and hls4ml config, convert and compile again: C-sim == Keras on the test set."""
    import hgq  # noqa: F401  (registers the HGQ2 layers with Keras for load_model)
    import hls4ml
    import keras

    exp, summary, study = tiny_study
    client, runs = _runs(exp, summary)
    best = study.best_trials[0]
    run_id = runs[best.number].info.run_id
    model = keras.models.load_model(client.download_artifacts(run_id, "model.keras", str(tmp_path)))
    rec = yaml.safe_load(open(client.download_artifacts(run_id, "hls4ml_config.yaml", str(tmp_path))))
    hls_model = hls4ml.converters.convert_from_keras_model(
        model, output_dir=str(tmp_path / "prj"), backend=rec["Backend"], io_type=rec["IOType"], part=rec["Part"],
        clock_period=rec["ClockPeriod"], hls_config=rec["HLSConfig"],
    )
    hls_model.compile()
    x = np.ascontiguousarray(digits_splits.X_test)
    keras_out = model.predict(x, verbose=0)
    csim_out = hls_model.predict(x).reshape(keras_out.shape)
    np.testing.assert_array_equal(csim_out, keras_out)
    acc = float(np.mean(keras_out.argmax(1) == digits_splits.y_test))
    assert acc == pytest.approx(TrialRecord.of(best).metrics["csim_accuracy"])
    # the objective is the validation accuracy (probe 23: the test split chose the designs), the test's is reported
    x_val = np.ascontiguousarray(digits_splits.X_val)
    val_acc = float(np.mean(hls_model.predict(x_val).reshape(len(x_val), -1).argmax(1) == digits_splits.y_val))
    assert exp.objectives[0].metric == "csim_val_accuracy" and val_acc == pytest.approx(best.values[0])


def test_rerun_continues_the_same_study(tiny_study, monkeypatch):
    """A second `run` with the same n_trials runs nothing new, starts no Ray and reuses the parent run."""
    import dse.study._orchestrator as orchestrator

    exp, summary, study = tiny_study
    space = load_experiment(exp.search_space.parent / "experiment.yaml")[1]

    def no_ray(*args, **kwargs):
        raise AssertionError("a study with nothing to run must not start Ray")

    monkeypatch.setattr(orchestrator, "ray_session", no_ray)
    # a stand-in for the agents a kill -9'ed driver leaves (they name its session folder): stopped though no Ray starts
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)",
                               f"--session-dir={exp.resolved_run_dir / 'ray'}/session_stale"], start_new_session=True)
    t0 = time.time()
    try:
        again = run_study(exp, space, progress=False)
        took = time.time() - t0
        assert orphan.wait(timeout=10) == -signal.SIGTERM
    finally:
        if orphan.poll() is None:
            orphan.kill()
    assert again.parent_run_id == summary.parent_run_id
    assert len(optuna.load_study(study_name=exp.name, storage=exp.storage_url).trials) == exp.n_trials
    assert took < 30, took
    assert again.nothing_to_run and not summary.nothing_to_run
    from typer.testing import CliRunner

    from dse.cli import app

    result = CliRunner().invoke(app, ["run", str(exp.search_space.parent / "experiment.yaml"), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert f"nothing to run: the study already has {exp.n_trials} evaluated trials, and n_trials is {exp.n_trials}" in " ".join(result.output.split())
    # fewer than it has (before: "already has n_trials=2 evaluated trials", the asked number, not the study's)
    result = CliRunner().invoke(app, ["run", str(exp.search_space.parent / "experiment.yaml"), "--no-progress", "--n-trials", "2"])
    assert result.exit_code == 0, result.output
    assert f"already has {exp.n_trials} evaluated trials, and n_trials is 2" in " ".join(result.output.split())
    # nothing to run needs no g++ for its C simulations (before, `dse check` and `dse run` refused the finished study)
    bare = exp.resolved_run_dir.parent / "bare-bin"
    bare.mkdir(exist_ok=True)
    monkeypatch.setenv("PATH", str(bare))
    for args in (["check"], ["run", "--no-progress"]):
        result = CliRunner().invoke(app, [args[0], str(exp.search_space.parent / "experiment.yaml"), *args[1:]])
        assert result.exit_code == 0, result.output
    result = CliRunner().invoke(app, ["check", str(exp.search_space.parent / "experiment.yaml")])
    assert "what a trial needs (g++, resource tools, room for Ray's files, a local Ray's CPUs) was not checked" in " ".join(result.output.split())
    for command in ("check", "run"):  # a trial to run needs it again
        result = CliRunner().invoke(app, [command, str(exp.search_space.parent / "experiment.yaml"), "--n-trials", str(exp.n_trials + 1)])
        assert result.exit_code == 2 and "hls4ml.csim: all builds the C simulation" in " ".join(result.output.split()), result.output
    # another study in this run directory would overwrite its files (probe 32: pareto_front.csv and trials/ of both mixed)
    monkeypatch.undo()
    other = write_experiment(exp.resolved_run_dir.parent / "other", name="other", run_dir=str(exp.resolved_run_dir))
    for command in ("check", "run"):
        result = CliRunner().invoke(app, [command, str(other)])
        assert result.exit_code == 2, result.output
        assert (f"run_dir: {exp.resolved_run_dir} holds the files of study {exp.name!r} (.dse-study), and study 'other' "
                "would overwrite them") in " ".join(result.output.split()), result.output
        # how a study that already ran there keeps its records (probe 34: the advice alone started it over, empty)
        assert (f"also give storage: sqlite:///{exp.resolved_run_dir / 'optuna.db'} and mlflow.tracking_uri: "
                f"sqlite:///{exp.resolved_run_dir / 'mlflow.db'}, so that it keeps its trials and runs") in " ".join(result.output.split())
    assert (exp.resolved_run_dir / ".dse-study").read_text() == f"{exp.name}\n"


def test_a_continued_study_samples_new_designs(tmp_path):
    """`dse run` again with more trials (or after Ctrl-C): the sampler must not replay the first run's draws.

    Before, each run seeded NSGA-II with ``seed`` again, so its first generation repeated: trials 2 and
    3 had exactly the parameters of trials 0 and 1 (a newcomer's probe found 2 distinct designs in 4
    complete trials after two interruptions).

    With NSGA-II every parameter is drawn in every trial (``carry_inactive``): a Latency trial keeps a reuse_factor
    draw and a Resource one a beta draw, each trained with the pinned value or the default."""
    space = {"parameters": {"strategy": {"type": "categorical", "choices": ["Latency", "Resource"]},
                            "reuse_factor": {"type": "categorical", "choices": [2], "when": {"strategy": "Resource"},
                                             "default": 1},
                            "beta": {"type": "float", "low": 1e-6, "high": 1e-4, "log": True}},
             "rules": [{"when": {"strategy": "Resource"}, "set": {"beta": 0.0}}]}
    path = write_experiment(tmp_path, space=space, n_trials=2, sampler={"name": "nsga2", "population_size": 8},
                            training={"epochs": 1, "batch_size": 128, "learning_rate": 0.01}, hls4ml={"csim": "none"})
    exp, sp = load_experiment(path)
    run_study(exp, sp, progress=False)
    more, _ = load_experiment(path, n_trials=4)
    run_study(more, sp, progress=False)
    trials = optuna.load_study(study_name=exp.name, storage=exp.storage_url).trials
    betas = [t.params["beta"] for t in trials]
    assert len(betas) == 4 and len(set(betas)) == 4, betas
    for t in trials:
        assert t.state.name == "COMPLETE" and t.params["reuse_factor"] == 2, (t.params, t.user_attrs)
        trained = TrialRecord.of(t).params
        assert trained.learning_rate == 0.01  # training.learning_rate, recorded as trained (before: None; probe 21)
        if t.params["strategy"] == "Resource":
            assert trained.beta == 0.0 and trained.reuse_factor == 2
        else:
            assert trained.beta == t.params["beta"] and trained.reuse_factor == 1
    # (a fresh study with the same seed still repeats its first trials: test_the_same_seed_gives_the_same_trials)


def test_io_stream_space_refused_before_any_trial(tmp_path):
    exp, sp = load_experiment(write_experiment(tmp_path, hls4ml={"io_type": "io_stream"}))
    with pytest.raises(SearchSpaceError, match=r"parameters.activation_granularity: \['per-feature'\] not supported with hls4ml.io_type io_stream"):
        run_study(exp, sp, progress=False)


@pytest.mark.slow  # 25-60 s on a 2-core host: SLOW=1 bash scripts/test.sh (README, Testing)
def test_warm_workers_replaced_when_their_memory_grows_and_csim_front(tmp_path, monkeypatch):
    """reuse_workers: trials share worker processes, and a warm worker is replaced once its RSS grows past
    WORKER_RSS_GROWTH over its second trial's; csim: front C-simulates every trial that joins the front.

    With the fraction set to 0, any growth counts: a TensorFlow worker grows by about 20 MB per
    trial (benchmarks/memory.py), so trials 0, 1 and 2 share a process (the second sets the
    reference, the third grew past it) and trial 3 gets a new one.
    """
    from dse.study import _workers

    monkeypatch.setattr(_workers, "WORKER_RSS_GROWTH", 0.0)
    exp, sp = load_experiment(write_experiment(
        tmp_path, n_trials=4, ray={"num_cpus": 1, "max_concurrent_trials": 1, "reuse_workers": True}, hls4ml={"csim": "front"},
        space={**TINY_SPACE, "parameters": {**TINY_SPACE["parameters"], "learning_rate": {"type": "categorical", "choices": [0.01]}}},
    ))
    summary = run_study(exp, sp, progress=False)
    assert summary.n_complete == 4
    study = optuna.load_study(study_name=exp.name, storage=exp.storage_url)
    recs = [TrialRecord.of(t) for t in sorted(study.trials, key=lambda t: t.number)]
    pids = [r.tags["worker_pid"] for r in recs]
    assert pids[0] == pids[1] == pids[2] != pids[3], pids
    front = {t.number for t in study.best_trials}
    for r in recs:
        assert r.tags["csim"] in ("run", "skipped-dominated"), r.tags
        if r.tags["csim"] == "run":
            assert r.tags["csim_accuracy_source"] == "csim" and r.metrics["bit_exact_fraction"] == 1.0
            assert "seconds_compile" in r.metrics
        else:
            assert r.tags["csim_accuracy_source"] == "keras" and "seconds_compile" not in r.metrics
            assert r.number not in front
        assert r.metrics["csim_accuracy"] == r.metrics["keras_accuracy"]
    assert all(recs[n].tags["csim"] == "run" for n in front)
    assert recs[0].tags["csim"] == "run"  # an empty front dominates nothing
    # (csim: none: test_enqueued_points_run_first_and_once_and_a_bad_one_fails_alone)


def test_trial_past_its_timeout_fails_and_the_study_goes_on(tmp_path, capfd):
    """trial_timeout_s: the warm worker running the trial is killed, the trial is FAIL TrialTimeoutError, the next one runs.

    Ray does not announce a retry that will not happen: before, killing the worker printed "Task
    TrialWorker.run failed. There are 1 retries remaining, so the task will be retried" per trial."""
    path = write_experiment(
        tmp_path, n_trials=2, trial_timeout_s=2, ray={"num_cpus": 1, "reuse_workers": True},
        space={"parameters": {"strategy": {"type": "categorical", "choices": ["Latency"]}}},
    )
    exp, _ = load_experiment(path)
    # through the CLI: a run in which no trial completed must not look like a success to a script (exit 1, one error line)
    from typer.testing import CliRunner

    from dse.cli import app

    # a folder an earlier run kept (--keep-files) must stay (review of stop 39: before, a plain run removed every folder
    # of a trial not RUNNING, an earlier run's kept files too)
    kept = exp.resolved_run_dir / "trials" / "trial_00007"
    kept.mkdir(parents=True)
    (kept / "model.keras").write_bytes(b"kept")
    result = CliRunner().invoke(app, ["run", str(path), "--no-progress"])  # a new worker needs more than 2 s to import TensorFlow
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert "error: no trial completed; every trial failed: 2 x TrialTimeoutError: ran past 2 s (trial_timeout_s)" in text, text
    assert "Traceback" not in result.output
    captured = capfd.readouterr()
    assert "retries remaining" not in result.output + captured.out + captured.err, result.output
    # the killed workers' folders are removed too (before, an empty trials/trial_0000N was left per trial); the kept
    # one stays
    left = sorted(p.name for p in (exp.resolved_run_dir / "trials").glob("trial_*"))
    assert left == ["trial_00007"], left
    study = optuna.load_study(study_name=exp.name, storage=exp.storage_url)
    for t in study.trials:
        rec = TrialRecord.of(t)
        assert rec.fail_reason.startswith("TrialTimeoutError: ran past 2 s (trial_timeout_s)"), rec.fail_reason
        run = MlflowClient(exp.tracking_uri).get_run(rec.run_id)
        assert run.info.status == "FAILED"
        # the README's tag table: a failure the driver records is tagged with its kind too (before, only the worker's were)
        assert run.data.tags.get("error_type") == "TrialTimeoutError", run.data.tags
    # calibrating a study with nothing completed points at its failures, not at `dse synthesize --front` (which has
    # no front to measure either)
    calib = CliRunner().invoke(app, ["calibrate", "--experiment", str(path), "--backend", "da4ml"])
    text = " ".join(calib.output.split())
    assert calib.exit_code == 2 and "has no completed trial, so there is nothing to calibrate" in text, text
    assert "dse synthesize" not in text


@pytest.mark.slow  # 25-60 s on a 2-core host: SLOW=1 bash scripts/test.sh (README, Testing)
def test_a_timed_out_trial_names_the_step_it_was_in(tmp_path):
    """A trial past trial_timeout_s in its training: the reason names the step and the seconds of those before it
    (from the trial's steps.json, dse.trial._progress), recorded as its seconds_<step> metrics and a failed_step tag.
    Before, the reason said only "ran past N s", whether training, a C-simulation build or da4ml took the time."""
    path = write_experiment(
        tmp_path, n_trials=1, trial_timeout_s=25, training={"epochs": 100000, "batch_size": 128, "learning_rate": 0.01},
        space={"parameters": {"strategy": {"type": "categorical", "choices": ["Latency"]}}},
    )
    exp, space = load_experiment(path)
    summary = run_study(exp, space, progress=False)
    assert summary.n_failed == 1
    rec = TrialRecord.of(optuna.load_study(study_name=exp.name, storage=exp.storage_url).trials[0])
    assert rec.fail_reason.startswith("TrialTimeoutError: ran past 25 s (trial_timeout_s)"), rec.fail_reason
    # a cold worker imports TensorFlow in setup (4-10 s here), so 25 s leaves it in training, but for a host so loaded
    # that setup took longer (the review: flaky otherwise); test_faults.py names the step of a lost worker exactly
    step = rec.tags["failed_step"]
    assert step in ("setup", "build", "train") and f"[in step {step} for " in rec.fail_reason, rec.fail_reason
    if step == "train":
        assert "(before it: setup " in rec.fail_reason and {"seconds_setup", "seconds_build"} <= set(rec.metrics), rec
    assert MlflowClient(exp.tracking_uri).get_run(rec.run_id).data.tags["failed_step"] == step
    assert not (exp.resolved_run_dir / "trials" / "trial_00000").exists(), "the killed worker's folder is removed"


def test_the_same_seed_gives_the_same_trials(tiny_study, tmp_path):
    """Re-running the experiment with its seed, in warm (reused) workers, gives the tiny study's first trials again:
    the same parameters and the same measured values (the initial weights are seeded as well as the training)."""
    exp, _, study = tiny_study
    again_exp, space = load_experiment(write_experiment(tmp_path, n_trials=2, ray={"num_cpus": 2, "reuse_workers": True},
                                                        hls4ml={"csim": "all"}))
    run_study(again_exp, space, progress=False)
    again = {t.number: t for t in optuna.load_study(study_name=again_exp.name, storage=again_exp.storage_url).trials}
    first = {t.number: t for t in study.trials}
    for n in (0, 1):
        assert again[n].params == first[n].params and again[n].state == first[n].state
        assert again[n].values == first[n].values, f"trial {n}"
        if first[n].state == optuna.trial.TrialState.COMPLETE:
            a, b = again[n].user_attrs["metrics"], first[n].user_attrs["metrics"]
            assert a["keras_accuracy"] == b["keras_accuracy"] and a["ebops"] == b["ebops"]


@pytest.mark.own_ray  # asserts that the Ray run_study started is stopped
def test_deleted_mlflow_experiment_refused_and_ray_stopped(tmp_path):
    """A deleted MLflow experiment: a TrackingError that says how to restore it, and the Ray started meanwhile is shut down."""
    import ray

    from dse.exceptions import TrackingError
    from tests.cluster._procs import pids_with

    exp, space = load_experiment(write_experiment(tmp_path, n_trials=1, hls4ml={"csim": "none"}))
    exp.resolved_run_dir.mkdir(parents=True)
    client = MlflowClient(exp.tracking_uri)
    client.delete_experiment(client.create_experiment(exp.name))
    with pytest.raises(TrackingError) as info:
        run_study(exp, space, progress=False)
    msg = str(info.value)
    assert "is deleted" in msg and "mlflow experiments restore --experiment-id" in msg and "mlflow.experiment_name" in msg
    assert not ray.is_initialized()
    assert list((exp.resolved_run_dir / "ray").glob("session_2*")), "Ray was started while MLflow opened"
    assert not pids_with(str(exp.resolved_run_dir / "ray")) - {os.getpid()}  # nothing of it is left running
    assert optuna.load_study(study_name=exp.name, storage=exp.storage_url).trials == []
    client.restore_experiment(client.get_experiment_by_name(exp.name).experiment_id)  # what the message says to do
    again = run_study(exp, space, progress=False)
    assert again.n_complete + again.n_failed == 1  # the tiny space diverges on purpose at some learning rates


def test_enqueued_points_run_first_and_once_and_a_bad_one_fails_alone(tmp_path, caplog):
    """Points enqueued by the experiment (``enqueue_trials``) and from Python (``study.enqueue_trial``), in one study.

    - ``enqueue_trials``: the first trial is the enqueued point (rule pins applied); continuing the study does not
      enqueue it again. With the largest seed, trial 1's seed + 1 wraps to 0 (before: trial 1 failed with NumPy's
      "Seed must be between 0 and 2**32 - 1"), and the second driver's sampler seed is in range too.
    - A WAITING trial whose parameters make no valid TrialParams (weight_bits 40, enqueued by hand; a space with a float
      weight_bits used to re-enqueue such points) is a FAIL with its reason, and the study goes on. Before, `dse run`
      crashed with a ValidationError traceback, re-enqueued the point, and every later run crashed on it again.
    - From Python (``dse check`` refuses both cases in ``enqueue_trials``): a value a rule replaces and a name the space
      lacks were dropped without a word; a float at 0 given as 0.0 (dse encodes include_zero's 0 as ``<name>_is_zero``)
      failed with Optuna's words only.
    """
    import logging

    point = {"strategy": "Resource", "reuse_factor": 4, "learning_rate": 0.01}
    path = write_experiment(tmp_path, n_trials=2, enqueue_trials=[point], hls4ml={"csim": "none"},
                            ray={"num_cpus": 2, "reuse_workers": True}, seed=2**32 - 1)
    exp, sp = load_experiment(path)
    assert (exp.seed_for(0), exp.seed_for(1), exp.seed_for(2)) == (2**32 - 1, 0, 1)
    run_study(exp, sp, progress=False)
    study = optuna.load_study(study_name=exp.name, storage=exp.storage_url)
    study.enqueue_trial({"strategy": "Latency", "weight_bits": 40})  # trial 2: no valid design
    study.enqueue_trial({"strategy": "Resource", "reuse_factor": 2, "learning_rate": 0.01, "beta": 5e-6, "weight_bits": 4,
                         "foo": 3})  # trial 3: a name the space lacks, a value a rule replaces
    study.enqueue_trial({"strategy": "Latency", "learning_rate": 0.01, "beta": 0.0, "weight_bits": 4})  # trial 4
    more, _ = load_experiment(path, n_trials=6)
    with caplog.at_level(logging.WARNING, logger="dse"):
        summary = run_study(more, sp, progress=False)
    trials = optuna.load_study(study_name=exp.name, storage=exp.storage_url).trials
    failed = sum(t.state.name == "FAIL" for t in trials)
    assert summary.n_failed == failed >= 2 and summary.n_complete + summary.n_failed == 6, summary  # the bad points count
    assert len(trials) == 6 and trials[0].state.name == "COMPLETE"  # the others may draw the diverging learning rate
    assert {k: trials[0].params[k] for k in point} == point and 3 <= trials[0].params["weight_bits"] <= 5  # left out: sampled
    rec = TrialRecord.of(trials[0])
    assert (rec.params.strategy, rec.params.reuse_factor, rec.params.beta) == ("Resource", 4, 0.0)
    assert [t.number for t in trials if "fixed_params" in t.system_attrs] == [0, 2, 3, 4]  # the point not enqueued again
    reasons = [TrialRecord.of(t).fail_reason or "" for t in trials]
    assert not [r for r in reasons if "Seed" in r or "seed" in r], reasons

    assert [t.state.name for t in trials[2:5]] == ["FAIL", "COMPLETE", "FAIL"], [t.user_attrs for t in trials]
    why = reasons[2]
    assert why.startswith("SearchSpaceError: trial 2's parameters {") and "make no valid design" in why, why
    assert "'weight_bits': 40" in why and "weight_bits" in why.split("make no valid design", 1)[1], why
    assert "requeued_from" not in trials[5].user_attrs  # not re-enqueued: it would fail again
    said = " ".join(caplog.text.split())
    assert "trial 3: the enqueued point names foo, which the search space does not have; ignored" in said, said
    assert "trial 3: the enqueued beta=5e-06 replaced by the search space's rules or conditions, so the trial trains with beta=0.0" in said, said
    assert "a float with include_zero at 0 is <name>_is_zero: True" in reasons[4], reasons[4]
    for t in trials:  # csim: none skips every build; the Keras accuracy stands in, and says so
        rec = TrialRecord.of(t)
        if rec.state == "COMPLETE":
            assert rec.tags["csim"] == "skipped" and rec.tags["csim_accuracy_source"] == "keras"
            assert "seconds_compile" not in rec.metrics and rec.values[0] == rec.metrics["keras_val_accuracy"]
            assert rec.metrics["csim_accuracy"] == rec.metrics["keras_accuracy"]


def test_an_enqueued_zero_a_rule_replaces_is_warned_of(caplog):
    """A float's 0 is enqueued as ``<name>_is_zero: True``; a rule that pins another value replaces it (the review: only
    values given under their own name were compared)."""
    import logging

    from dse.config import SearchSpace
    from dse.study._orchestrator import _warn_enqueued_overrides

    space = SearchSpace.model_validate({"parameters": {"beta": {"type": "float", "low": 1e-6, "high": 1e-4, "log": True,
                                                                "include_zero": True}}})
    with caplog.at_level(logging.WARNING, logger="dse"):
        _warn_enqueued_overrides(4, {"beta_is_zero": True}, {"beta": 1e-5}, space)
        _warn_enqueued_overrides(5, {"beta_is_zero": True}, {"beta": 0.0}, space)  # the same value: nothing to say
    said = " ".join(caplog.text.split())
    assert "trial 4: the enqueued beta=0.0 replaced by the search space's rules or conditions, so the trial trains with beta=1e-05" in said, said
    assert "trial 5" not in said


@pytest.mark.slow  # 25-60 s on a 2-core host: SLOW=1 bash scripts/test.sh (README, Testing)
def test_mlflow_experiment_renamed_a_run_deleted_and_a_trial_left_running_then_optuna_study_deleted(tmp_path, caplog):
    """What users do to a study's records between runs, in one study:

    - The MLflow experiment renamed by the user: the study goes on logging into it (before: a new experiment of the old
      name was made and the study's runs were split between the two).
    - A trial left RUNNING by a dse that recorded no process id in its heartbeat (probe 15: a killed older driver): the
      next run cannot tell whether that driver lives, and says why (before: "under another driver that is alive").
    - Trial 0's run deleted in the MLflow UI: before, every later run ended in MlflowException ("must be in the 'active'
      state") when it tagged the front, the parent run FAILED.
    - The Optuna study deleted and created again: it gets a parent run of its own (before: it logged into the deleted
      study's parent run, beside that study's trial runs).
    """
    import logging

    from dse.store import StudyRecords, record_heartbeat

    exp, space = load_experiment(write_experiment(tmp_path, name="ren", n_trials=1, hls4ml={"csim": "none"},
                                                  space={"parameters": {"weight_bits": {"type": "int", "low": 3, "high": 4}}}))
    first = run_study(exp, space, progress=False)
    client = MlflowClient(exp.tracking_uri)
    old = client.get_experiment_by_name("ren")
    client.rename_experiment(old.experiment_id, "ren-old")
    study = optuna.load_study(study_name="ren", storage=exp.storage_url)
    record_heartbeat(study.ask(), "older-driver", time.time(), None)  # {driver, time}: as dse before 2026-12-04 stamped it
    deleted = TrialRecord.of(study.trials[0]).run_id
    client.delete_run(deleted)
    with caplog.at_level(logging.WARNING, logger="dse"):
        second = run_study(exp.model_copy(update={"n_trials": 3}), space, progress=False)
    said = " ".join(caplog.text.split())
    assert f"holds this study's parent run {first.parent_run_id}, and the experiment is named 'ren-old' now" in said, said
    assert second.parent_run_id == first.parent_run_id and client.get_experiment_by_name("ren") is None
    runs = client.search_runs([old.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{first.parent_run_id}'")
    assert sorted(r.info.run_name for r in runs) == ["trial-2"]  # trial 0's deleted, trial 1 running elsewhere
    assert f"1 trial run(s) deleted in MLflow were not tagged pareto=true/false ({deleted})" in said, said
    assert second.n_complete == 2, second  # trial 1 RUNNING counts towards the 3; the new trial 2 is tagged
    assert "pareto" in client.get_run(runs[0].info.run_id).data.tags
    assert "1 trial(s) of this study are RUNNING under another driver" in said, said
    assert "(1 of them stamped by an earlier dse, which did not record its process, so whether its driver still runs cannot be checked)" in said, said

    optuna.delete_study(study_name="ren", storage=exp.storage_url)
    caplog.clear()
    renamed = exp.model_copy(update={"mlflow": exp.mlflow.model_copy(update={"experiment_name": "ren-old"})})
    with caplog.at_level(logging.WARNING, logger="dse"):
        third = run_study(renamed, space, progress=False)
    said = " ".join(caplog.text.split())
    assert f"holds parent run {first.parent_run_id} of a study named 'ren', which this Optuna study does not record" in said, said
    assert third.parent_run_id != first.parent_run_id
    study = optuna.load_study(study_name="ren", storage=exp.storage_url)
    assert StudyRecords(study).parent_run_id == third.parent_run_id and third.n_complete == 1
    from dse.report._compare import load_mlflow_source  # `dse compare --tracking-uri`: the latest study's trials only

    assert len(load_mlflow_source("ren-old", exp.tracking_uri).trials) == 1
    # a new mlflow.experiment_name in the file: tests/tracking/test_mlflow.py (no study needed)
