"""Harvesting (``training.harvest_checkpoints``): a real trial whose beta ramp leaves several Pareto-optimal checkpoints."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
from mlflow.tracking import MlflowClient

from dse.config import load_experiment
from dse.report import front_frame, study_counts
from dse.store import StudyRecords, TrialRecord
from dse.study import run_study
from dse.trial._harvest import select_checkpoints
from tests.conftest import use_shared_ray, write_experiment

pytestmark = pytest.mark.shared_ray  # in-process studies share one local Ray (tests/conftest.py)

RAMP_SPACE = {
    "parameters": {
        "strategy": {"type": "categorical", "choices": ["Latency"]},
        "beta": {"type": "float", "low": 1.0e-6, "high": 2.0e-6, "log": True},
        "beta_end": {"type": "float", "low": 1.0e-2, "high": 2.0e-2, "log": True},
        "weight_bits": {"type": "int", "low": 4, "high": 5},
    }
}


def test_select_checkpoints_spreads_over_ebops_and_leaves_out_the_final_epoch():
    paths = [Path(f"/x/epoch={e}.weights.h5") for e in (3, 5, 7, 9, 11, 15)]
    record = [(0.9 - 0.01 * i, 1000.0 - 100 * i) for i in range(6)]
    cb = SimpleNamespace(paths=paths, record=record)
    every = select_checkpoints(cb, 10, final_epoch=15)
    assert [c.epoch for c in every] == [11, 9, 7, 5, 3]  # sorted by EBOPs, ascending; epoch 15 is the trial itself
    assert [c.ebops for c in every] == sorted(c.ebops for c in every)
    three = select_checkpoints(cb, 3, final_epoch=15)
    assert [c.epoch for c in three] == [11, 7, 3]  # both extremes and the middle
    assert select_checkpoints(cb, 0, final_epoch=15) == []
    # ties survive HGQ2's ParetoFront (it drops a checkpoint only for one better in both): those another checkpoint, or
    # the final epoch, weakly dominates are left out, and of equal ones the latest (probe 23: epochs 5, 6 and 7 at the
    # same accuracy all became trials)
    paths = [Path(f"/x/epoch={e}.weights.h5") for e in (5, 6, 7, 8, 9, 12)]
    record = [(0.95, 1300.0), (0.95, 1290.0), (0.95, 1280.0), (0.90, 900.0), (0.90, 900.0), (0.91, 900.0)]
    kept = select_checkpoints(SimpleNamespace(paths=paths, record=record), 10, final_epoch=12)
    assert [c.epoch for c in kept] == [7], kept  # 8 and 9 are dominated by the final epoch 12 (more accurate, as small)
    record[-1] = (0.80, 2000.0)
    kept = select_checkpoints(SimpleNamespace(paths=paths, record=record), 10, final_epoch=12)
    assert [c.epoch for c in kept] == [9, 7], kept  # 9 and 8 equal: the later kept
    # the trial's own measured figures leave out a checkpoint they weakly dominate (probe 31: kept, as the final epoch's
    # logged figures did not dominate it)
    kept = select_checkpoints(SimpleNamespace(paths=paths, record=record), 10, final_epoch=12, final=(0.96, 1280.0))
    assert [c.epoch for c in kept] == [9], kept
    assert [c.epoch for c in select_checkpoints(SimpleNamespace(paths=paths, record=record), 10, final_epoch=12,
                                                final=(float("nan"), 1.0))] == [9, 7]  # unknown: as before


@pytest.fixture(scope="module")
def harvest_study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("harvest")
    path = write_experiment(
        tmp, space=RAMP_SPACE, name="harvest", n_trials=1, sampler={"name": "tpe"}, seed=1, model={"hidden": [16]},
        training={"epochs": 16, "batch_size": 128, "learning_rate": 0.03, "harvest_checkpoints": 3}, hls4ml={"csim": "all"},
        constraints=[{"metric": "keras_accuracy", "min": 0.2}],  # a budget: each run is tagged the verdict Optuna was told
    )
    exp, space = load_experiment(path)
    use_shared_ray(tmp_path_factory)
    summary = run_study(exp, space, progress=False)
    return exp, space, summary, optuna.load_study(study_name="harvest", storage=exp.storage_url)


def test_each_harvested_checkpoint_is_its_own_measured_record(harvest_study):
    exp, _, summary, study = harvest_study
    recs = StudyRecords(study).trials()
    trained = [r for r in recs if r.harvested_from is None]
    harvested = [r for r in recs if r.harvested_from is not None]
    assert len(trained) == 1 and trained[0].state == "COMPLETE"
    assert 1 <= len(harvested) <= 3, [r.number for r in recs]
    assert trained[0].tags["harvest"] == f"{len(harvested)} checkpoints measured, 0 failed"
    epochs = [r.harvest_epoch for r in harvested]
    assert len(set(epochs)) == len(epochs) and all(0 <= e < 15 for e in epochs)
    client = MlflowClient(exp.tracking_uri)
    parent_run = client.get_run(trained[0].run_id)
    # the README's child-run tag `harvest` (set by the driver after the worker's last write; before, Optuna alone held it)
    assert parent_run.data.tags.get("harvest") == trained[0].tags["harvest"], parent_run.data.tags
    for r in harvested:
        assert r.state == "COMPLETE" and r.harvested_from == 0
        assert r.params == trained[0].params  # trained with the trial's parameters, up to its epoch
        assert r.values == [r.metrics["csim_val_accuracy"], r.metrics["lut"]]
        assert r.tags["csim"] == "run" and r.tags["csim_accuracy_source"] == "csim"
        assert 0.5 < r.metrics["bit_exact_fraction"] <= 1.0
        assert r.metrics["harvest_epoch"] == r.harvest_epoch
        assert r.metrics["harvest_beta"] > trained[0].params.beta  # the ramp had risen by then
        assert r.metrics["ebops"] > 0 and r.metrics["ebops"] != trained[0].metrics["ebops"]
        run = client.get_run(r.run_id)
        assert run.info.status == "FINISHED"
        assert run.data.tags["harvested_from"] == "0" and run.data.tags["harvest_epoch"] == str(r.harvest_epoch)
        assert run.data.tags["dse.experiment_version"] == "1" and "dse.max_concurrent_trials" in run.data.tags  # its trial's
        assert run.data.tags["mlflow.parentRunId"] == summary.parent_run_id
        assert run.data.params == parent_run.data.params
        assert run.data.metrics["csim_accuracy"] == r.metrics["csim_accuracy"]
        assert {"model.keras", "hls4ml_config.yaml", "preprocessing.json"} <= {a.path for a in client.list_artifacts(r.run_id)}


def test_every_child_run_is_tagged_with_its_optuna_trial_number(harvest_study):
    """Harvested checkpoints' runs carry ``trial_number`` too, the number Optuna gave them when the driver added them
    (before: no tag, so ``tags.trial_number`` was NaN for them and `dse compare` from MLflow read trial -1)."""
    from dse.report._compare import load_mlflow_source

    exp, _, summary, study = harvest_study
    numbers = {r.run_id: r.number for r in StudyRecords(study).trials() if r.run_id}
    assert len(numbers) == len(study.trials) > 1
    client = MlflowClient(exp.tracking_uri)
    exp_id = client.get_run(summary.parent_run_id).info.experiment_id
    runs = client.search_runs([exp_id], filter_string="tags.`dse.role` = 'trial'")
    assert {run.info.run_id for run in runs} == set(numbers)
    assert {run.info.run_id: run.data.tags.get("trial_number") for run in runs} == {k: str(n) for k, n in numbers.items()}
    # and, in a constrained study, `feasible`: the verdict Optuna holds (before: no tag; compare computed it afresh)
    told = {r.run_id: str(r.feasible).lower() for r in StudyRecords(study).trials() if r.state == "COMPLETE"}
    assert {run.info.run_id: run.data.tags.get("feasible") for run in runs if run.info.run_id in told} == told
    complete = sorted(r.number for r in StudyRecords(study).trials() if r.state == "COMPLETE")
    assert sorted(load_mlflow_source("harvest", exp.tracking_uri).trials["trial"]) == complete


def test_harvested_checkpoints_do_not_count_towards_n_trials(harvest_study):
    exp, space, _, study = harvest_study
    counts = study_counts(study)
    assert counts.harvested == counts.complete - 1 and counts.trained == 1
    before = len(study.trials)
    run_study(exp, space, progress=False)  # n_trials: 1 is already reached; nothing new is trained
    assert len(optuna.load_study(study_name="harvest", storage=exp.storage_url).trials) == before


def test_a_harvested_member_shows_the_training_curves_of_its_ramp(harvest_study):
    """The report's curves of a harvested checkpoint are those of the trial it was harvested from. Before, they were read
    from the checkpoint's own run, which logs none: the figure said "no epoch_accuracy logged"."""
    from dse.report._figures import curve_runs, front_members_table, training_curves

    exp, _, _, study = harvest_study
    every = front_frame(study, numbers=[t.number for t in study.trials])
    runs = curve_runs(study, every)
    trained_run = TrialRecord.of(study.trials[0]).run_id
    harvested = [int(n) for n in every.loc[every["harvested_from"].notna(), "trial"]]
    assert harvested and all(runs[n] == trained_run for n in harvested), runs
    curves = training_curves(exp.tracking_uri, {n: runs[n] for n in harvested})
    assert all(len(curves[n]["accuracy"]) == exp.training.epochs for n in harvested), curves
    # what the report passes (probe 39: its members table had no harvested_from, so a harvested member drew no curve)
    members = front_members_table(study)
    on_front = [int(n) for n in members.loc[members["harvested_from"].notna(), "trial"]]
    assert on_front and all(curve_runs(study, members)[n] == trained_run for n in on_front), members


def test_front_shows_where_a_member_was_harvested(harvest_study):
    _, _, _, study = harvest_study
    every = front_frame(study, numbers=[t.number for t in study.trials])
    harvested = every[every["harvested_from"].notna()]
    assert not harvested.empty and set(harvested["harvested_from"]) == {0}


def test_compare_counts_the_harvested_checkpoints_of_each_study(harvest_study, tmp_path):
    """`dse compare` says how many of a study's complete trials are harvested checkpoints, read from Optuna or MLflow
    (before: its complete column counted them as trained trials without a word)."""
    from typer.testing import CliRunner

    from dse.cli import app

    from dse.report._compare import compare_table, load_mlflow_source, load_optuna_source

    exp, _, _, study = harvest_study
    n = sum(1 for r in StudyRecords(study).trials() if r.harvested_from is not None)
    table, _, _ = compare_table([load_optuna_source("harvest", exp.storage_url), load_mlflow_source("harvest", exp.tracking_uri)])
    assert list(table["harvested"]) == [n, n] and list(table["complete"]) == [n + 1, n + 1], table
    # the one study read both ways is one study given twice to `dse compare` (the same MLflow parent run and store)
    result = CliRunner().invoke(app, ["compare", f"harvest@{exp.storage_url}", "harvest", "--tracking-uri", exp.tracking_uri,
                                      "--out", str(tmp_path / "cmp"), "--no-mlflow"], terminal_width=200)
    assert result.exit_code == 2 and "study harvest is given twice" in " ".join(result.output.split()), result.output


def test_a_harvested_trial_exports_like_any_other(harvest_study, tmp_path):
    from dse.export import export_design

    exp, _, _, study = harvest_study
    rec = next(r for r in StudyRecords(study).trials() if r.harvested_from is not None)
    result = export_design(study, exp.storage_url, rec.number, tmp_path / "export")
    readme = result.readme.read_text()
    assert f"harvested from trial 0 at epoch {rec.harvest_epoch}" in readme
    assert "hls4ml C simulation" in readme  # csim: all in this study
    assert result.model.is_file()


def test_a_ramp_that_leaves_nothing_to_harvest_says_so(tmp_path):
    """One epoch: HGQ2's ParetoFront keeps only the final epoch, which is the trial itself. Before, the
    run ended as if harvesting were off (an INFO line in the worker's log); now the trial line, its
    ``harvest`` tag and the run summary say that nothing was harvested, and why."""
    from typer.testing import CliRunner

    from dse.cli import app
    from dse.store import TrialRecord
    from dse.study._orchestrator import NO_CHECKPOINT

    path = write_experiment(
        tmp_path, space=RAMP_SPACE, name="noharvest", n_trials=1, model={"hidden": [8]}, ray={"num_cpus": 1},
        training={"epochs": 1, "harvest_checkpoints": 3}, hls4ml={"csim": "none"},
    )
    result = CliRunner().invoke(app, ["run", str(path), "--no-progress", "--keep-files"])
    text = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert "study noharvest: 1 complete" in text, text
    # where --keep-files kept them (probe 16: before, not said)
    assert f"Trial files: {tmp_path / 'run' / 'trials'}/trial_<5-digit number>/ (--keep-files" in text, text
    assert (tmp_path / "run" / "trials" / "trial_00000" / "model.keras").is_file()  # (csim: none writes no hls4ml project)
    assert "nothing harvested: training.harvest_checkpoints is 3, but in every completed trial" in text, text
    assert "the search space has a beta ramp (beta_end)" in text and "raise training.epochs (now 1;" in text, text
    study = optuna.load_study(study_name="noharvest", storage=f"sqlite:///{tmp_path / 'run' / 'optuna.db'}")
    (trial,) = study.trials
    assert TrialRecord.of(trial).tags["harvest"] == NO_CHECKPOINT


def test_harvest_advice_names_the_missing_ramp_or_the_short_training(tmp_path):
    """Without beta_end the advice is to add the ramp; with it, to train longer (before, one sentence blamed both,
    so a space that had beta_end was told to add it)."""
    from dse.config import load_experiment
    from dse.study._orchestrator import harvest_advice

    exp, with_ramp = load_experiment(write_experiment(tmp_path / "a", space=RAMP_SPACE, training={"epochs": 5, "harvest_checkpoints": 3}))
    assert "raise training.epochs (now 5;" in harvest_advice(exp, with_ramp)
    no_ramp = {"parameters": {k: v for k, v in RAMP_SPACE["parameters"].items() if k != "beta_end"}}
    no_ramp["rules"] = [r for r in RAMP_SPACE.get("rules", []) if "beta_end" not in r.get("set", {}) and "beta_end" not in r.get("when", {})]
    exp, without = load_experiment(write_experiment(tmp_path / "b", space=no_ramp, training={"epochs": 5, "harvest_checkpoints": 3}))
    advice = harvest_advice(exp, without)
    assert "add a `beta_end` parameter to the search space" in advice and "training.epochs" not in advice


def test_a_trial_without_a_ramp_is_not_told_its_ramp_was_too_short(tmp_path, caplog):
    """Probe 23: a Resource trial, whose rule pins beta and beta_end to 0, kept no checkpoint and was warned that "the
    search space has a beta ramp ... the training is likely too short". It had no ramp: that is said at INFO."""
    import logging

    from dse.config import load_experiment
    from dse.study import run_study

    space = {"parameters": {**RAMP_SPACE["parameters"], "strategy": {"type": "categorical", "choices": ["Resource"]}},
             "rules": [{"when": {"strategy": "Resource"}, "set": {"beta": 0.0, "beta_end": 0.0}}]}
    exp, sp = load_experiment(write_experiment(tmp_path, space=space, name="flat", n_trials=1, model={"hidden": [8]},
                                               ray={"num_cpus": 1}, training={"epochs": 1, "harvest_checkpoints": 3},
                                               hls4ml={"csim": "none"}))
    with caplog.at_level(logging.INFO, logger="dse.study._orchestrator"):
        assert run_study(exp, sp, progress=False).n_complete == 1
    said = [r for r in caplog.records if r.name == "dse.study._orchestrator" and "checkpoint" in r.getMessage()]
    assert [r.levelno for r in said] == [logging.INFO] and "trial 0 kept no checkpoint: it had no beta ramp (beta 0 throughout)" \
        in said[0].getMessage(), [r.getMessage() for r in said]
