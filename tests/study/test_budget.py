"""A user dataset of a shape the project was never tuned on, the shipped default space, and a budget.

Wine (scikit-learn's bundled copy: 178 samples, 13 features, 3 classes) saved as a user
``.npz``; the shipped ``search_spaces/default.yaml`` offers ReuseFactors 2, 4, 8 that are
invalid for a 13x8 Dense layer, so each layer takes its own. Constraints make Latency/Resource
designs infeasible (the EBOPs estimate has no latency figure) and keep distributed_arithmetic
designs feasible, so the front must hold distributed_arithmetic trials only.
"""

from __future__ import annotations

import io
import json
import logging

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from dse.cli import app
from dse.config import load_experiment
from dse.exceptions import ConfigError
from dse.store import StudyRecords, TrialRecord
from dse.study import run_study
from dse.trial import valid_reuse_factors
from tests.conftest import REPO, use_shared_ray, write_experiment

pytestmark = pytest.mark.shared_ray  # in-process studies share one local Ray (tests/conftest.py)

CONSTRAINTS = [{"metric": "lut", "max": 20000}, {"metric": "latency_cycles", "max": 1000}]


@pytest.fixture(scope="module")
def wine_study(tmp_path_factory):
    from sklearn.datasets import load_wine

    tmp = tmp_path_factory.mktemp("wine")
    X, y = load_wine(return_X_y=True)
    np.savez(tmp / "wine.npz", X=X, y=y)
    path = write_experiment(
        tmp, name="wine", dataset={"name": "file", "path": "wine.npz"}, search_space=str(REPO / "search_spaces" / "default.yaml"),
        n_trials=4, seed=6, training={"epochs": 3, "batch_size": 32, "learning_rate": 0.01}, constraints=CONSTRAINTS,
    )
    exp, space = load_experiment(path)
    use_shared_ray(tmp_path_factory)
    batches = DRIVER_TAG_BATCHES
    batches.clear()
    log_batch = MlflowClient.log_batch

    def counted(self, run_id, *args, **kwargs):  # this (the driver's) process only: the workers are Ray's processes
        batches.append((run_id, sorted(t.key for t in kwargs.get("tags") or ())))
        return log_batch(self, run_id, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(MlflowClient, "log_batch", counted)
        summary = run_study(exp, space, progress=False)
    return path, exp, summary, optuna.load_study(study_name="wine", storage=exp.storage_url)


#: (run id, tag keys) of each ``log_batch`` call the driver made while ``wine_study`` ran.
DRIVER_TAG_BATCHES: list[tuple[str, list[str]]] = []


def test_default_space_runs_on_13_features_3_classes(wine_study):
    _, exp, summary, study = wine_study
    assert summary.n_complete == 4, [TrialRecord.of(t).fail_reason for t in study.trials]
    records = [TrialRecord.of(t) for t in study.trials]
    strategies = {r.params.strategy for r in records}
    assert strategies == {"Latency", "Resource", "distributed_arithmetic"}, "seed 6 samples every Strategy"
    sizes = [(13, 8), (8, 3)]
    for r in records:
        rfs = r.params.layer_reuse_factors
        assert len(rfs) == 2
        for (n_in, n_out), rf in zip(sizes, rfs):
            assert rf in valid_reuse_factors(n_in, n_out) and rf <= r.params.reuse_factor
            assert rf == max(v for v in valid_reuse_factors(n_in, n_out) if v <= r.params.reuse_factor)
    wide = [r for r in records if r.params.reuse_factor >= 4]
    assert wide and all(r.params.layer_reuse_factors == (1, r.params.reuse_factor) for r in wide)
    # the per-layer factors are what hls4ml was given
    client = MlflowClient(exp.tracking_uri)
    for r in wide:
        cfg = client.download_artifacts(r.run_id, "hls4ml_config.yaml")
        layers = yaml.safe_load(open(cfg))["HLSConfig"]["LayerName"]
        assert layers["dense_0"]["ReuseFactor"] == 1 and layers["logits"]["ReuseFactor"] == r.params.reuse_factor


def test_figure_per_strategy(wine_study):
    """auto: distributed_arithmetic trials' objective is da4ml's cost, Latency/Resource the EBOPs estimate."""
    _, _, _, study = wine_study
    for r in (TrialRecord.of(t) for t in study.trials):
        if r.params.strategy == "distributed_arithmetic":
            assert r.tags["lut_source"] == "da4ml" and r.metrics["lut"] == r.metrics["da4ml_cost"]
            assert r.metrics["lut"] <= r.metrics["ebops"]
            # csim: front (the default): da4ml's bit-exact emulation instead of the g++ build
            assert r.tags["csim"] == "da4ml" and r.tags["csim_accuracy_source"] == "da4ml", r.tags
            assert r.metrics["csim_accuracy"] == r.metrics["da4ml_accuracy"] and "seconds_compile" not in r.metrics
            assert r.metrics["bit_exact_fraction"] == r.metrics["da4ml_bit_exact_fraction"] == 1.0
        else:
            assert r.tags["lut_source"] == "ebops-estimate"


def test_only_feasible_trials_on_the_front(wine_study, tmp_path):
    path, exp, summary, study = wine_study
    records = [TrialRecord.of(t) for t in study.trials]
    feasible = {r.number for r in records if r.feasible}
    assert feasible == {r.number for r in records if r.params.strategy == "distributed_arithmetic"}
    assert all(set(r.constraints) == {"lut_max", "latency_cycles_max"} for r in records)
    front = {t.number for t in study.best_trials}
    assert front and front <= feasible
    csv = pd.read_csv(summary.front_csv)
    assert set(csv["trial"]) == front and csv["feasible"].all()
    client = MlflowClient(exp.tracking_uri)
    assert {r.number: client.get_run(r.run_id).data.tags["feasible"] for r in records} == {
        r.number: "true" if r.feasible else "false" for r in records}
    result = CliRunner().invoke(app, ["status", "wine", "--storage", exp.storage_url])
    assert result.exit_code == 0, result.output
    n_inf = len(records) - len(feasible)
    assert f"4 complete ({len(feasible)} feasible, {n_inf} infeasible)" in result.output
    assert "Pareto front (feasible trials)" in result.output


def test_the_driver_ends_each_constrained_trial_run_in_one_call(wine_study):
    """The worker tags its trial's `feasible` verdict with its results, so the driver only ends the run (set_terminated).
    Before, the driver wrote `state` and `feasible` in a log_batch of its own: one MLflow call more per trial."""
    _, exp, _, study = wine_study
    records = [r for r in map(TrialRecord.of, study.trials) if r.state == "COMPLETE"]
    assert records and all(r.run_id for r in records)
    client = MlflowClient(exp.tracking_uri)
    for r in records:
        assert client.get_run(r.run_id).data.tags["feasible"] == ("true" if r.feasible else "false")
    runs = {r.run_id for r in records}
    assert [b for b in DRIVER_TAG_BATCHES if b[0] in runs and b[1]] == [], DRIVER_TAG_BATCHES  # (its params: tags [])


def test_changed_budget_is_a_change(wine_study):
    """A new budget would leave earlier trials feasible under the old one (Optuna keeps each trial's constraint values): refused."""
    from dse.config import ConstraintConfig

    path, exp, _, study = wine_study
    _, space = load_experiment(path)
    tighter = exp.model_copy(update={"constraints": [ConstraintConfig(metric="lut", max=500), *exp.constraints[1:]]})
    with pytest.raises(ConfigError) as info:
        run_study(tighter, space, progress=False)
    msg = " ".join(str(info.value).split())
    assert "constraints: [{'metric': 'lut', 'max': 20000.0" in msg and "-> [{'metric': 'lut', 'max': 500.0" in msg, msg
    assert "earlier trials keep the feasibility they were told with" in msg and "--allow-changed" in msg, msg
    assert len(optuna.load_study(study_name="wine", storage=exp.storage_url).trials) == len(study.trials)


def test_a_tighter_budget_is_refused_even_with_allow_changed_where_a_trial_told_feasible_breaks_it(wine_study):
    """Optuna keeps a finished trial's feasibility: a tighter budget would leave trials over it on the front."""
    from dse.config import ConstraintConfig
    from dse.study import preflight

    path, exp, _, study = wine_study
    exp, space = load_experiment(path)
    stored = study.user_attrs["experiment"]["training"]["epochs"]  # an earlier test may have changed the stored experiment
    exp = exp.model_copy(update={"training": exp.training.model_copy(update={"epochs": stored})})
    feasible = {r.number: r.metrics["lut"] for r in map(TrialRecord.of, study.trials) if r.state == "COMPLETE" and r.feasible}
    assert feasible, "seed 6 gives feasible distributed_arithmetic trials"
    first = min(feasible)
    tighter = exp.model_copy(update={"constraints": [ConstraintConfig(metric="lut", max=min(feasible.values()) - 1), *exp.constraints[1:]]})
    told = "trial of study 'wine' was" if len(feasible) == 1 else "trials of study 'wine' were"
    pattern = (rf"constraints: {len(feasible)} finished {told} told feasible under the study's earlier "
               rf"constraints and breaks? these \(trial {first}: lut {feasible[first]:g} > max .*Optuna keeps a finished trial's "
               r"feasibility, so (it|they) would stay feasible, on the Pareto front unless dominated; give the experiment another name")
    with pytest.raises(ConfigError, match=pattern):
        preflight(tighter, space, allow_changed=True)  # what `dse check --allow-changed` runs
    with pytest.raises(ConfigError, match=pattern):
        run_study(tighter, space, progress=False, allow_changed=True)
    assert len(optuna.load_study(study_name="wine", storage=exp.storage_url).trials) == len(study.trials)
    # a relaxed budget leaves no trial on the front that breaks it: accepted with allow_changed (as the diff note says)
    looser = exp.model_copy(update={"constraints": [ConstraintConfig(metric="lut", max=10**9), *exp.constraints[1:]]})
    preflight(looser, space, allow_changed=True)


def test_a_space_optuna_cannot_store_beside_the_trials_is_refused_even_with_allow_changed(wine_study):
    """Optuna refuses other categorical choices, another kind or another log for a parameter its trials hold. Before,
    --allow-changed let it through and every trial drawing that parameter failed as "make no valid design" and counted
    towards n_trials (probe 21)."""
    from dse.config import SearchSpace
    from dse.study import preflight

    path, exp, _, study = wine_study
    exp, space = load_experiment(path)
    stored = study.user_attrs["experiment"]["training"]["epochs"]  # an earlier test may have changed the stored experiment
    exp = exp.model_copy(update={"training": exp.training.model_copy(update={"epochs": stored}), "n_trials": 6})
    raw = space.model_dump(mode="json")
    fewer = json.loads(json.dumps(raw))
    fewer["parameters"]["strategy"]["choices"] = ["Latency", "distributed_arithmetic"]
    fewer["rules"] = []
    del fewer["parameters"]["reuse_factor"]  # Resource only
    pattern = (r"search space: parameter 'strategy' was drawn by the study's trials from categorical \['Latency', 'Resource', "
               r"'distributed_arithmetic'\] and the space now gives categorical \['Latency', 'distributed_arithmetic'\], which "
               r"Optuna cannot store in this study .*every trial drawing it would fail.*--allow-changed cannot change this")
    changed = SearchSpace.model_validate(fewer)
    with pytest.raises(ConfigError, match=pattern):  # also without --allow-changed, before the diff, which would advise it
        preflight(exp, changed)  # (probe 22)
    with pytest.raises(ConfigError, match=pattern):
        run_study(exp, changed, progress=False)
    with pytest.raises(ConfigError, match=pattern):
        preflight(exp, changed, allow_changed=True)  # what `dse check --allow-changed` runs
    with pytest.raises(ConfigError, match=pattern):
        run_study(exp, changed, progress=False, allow_changed=True)
    assert len(optuna.load_study(study_name="wine", storage=exp.storage_url).trials) == len(study.trials)
    # an int made categorical: another kind
    kind = json.loads(json.dumps(raw))
    kind["parameters"]["weight_bits"] = {"type": "categorical", "choices": [3, 4, 5]}
    with pytest.raises(ConfigError, match=r"parameter 'weight_bits' was drawn .* from int 3\.\.8 and the space now gives categorical"):
        preflight(exp, SearchSpace.model_validate(kind), allow_changed=True)
    # a narrower range is accepted (Optuna stores it)
    narrower = json.loads(json.dumps(raw))
    narrower["parameters"]["weight_bits"]["high"] = 6
    preflight(exp, SearchSpace.model_validate(narrower), allow_changed=True)


def test_constraints_added_or_objectives_renamed_are_refused_on_a_study_with_trials(tiny_study):
    """A study run without constraints told every trial feasible; objectives are stored by position."""
    from dse.config import ConstraintConfig, ObjectiveConfig
    from dse.study import preflight
    from dse.study._storage import open_study

    exp, summary, study = tiny_study
    _, space = load_experiment(exp.resolved_run_dir.parent / "experiment.yaml")
    assert summary.n_complete and not exp.constraints
    budget = exp.model_copy(update={"constraints": [ConstraintConfig(metric="lut", max=1)]})
    with pytest.raises(ConfigError, match=rf"constraints: {summary.n_complete} finished trials? of study 'tiny' (was|were) told feasible"):
        preflight(budget, space, allow_changed=True)
    names = [o.metric for o in exp.objectives]
    assert names[1] == "lut"
    renamed = exp.model_copy(update={"objectives": [exp.objectives[0], ObjectiveConfig(metric="ebops", direction="minimize")]})
    pattern = (rf"study 'tiny' in .* has objectives \['{names[0]}', 'lut'\], but the experiment asks for \['{names[0]}', 'ebops'\]: "
               r"Optuna keeps each trial's values by position, so earlier trials' lut as ebops would be read")
    with pytest.raises(ConfigError, match=pattern):
        preflight(renamed, space, allow_changed=True)
    with pytest.raises(ConfigError, match=pattern):
        open_study(renamed)  # the run's own check (a server storage has no read-only preflight)
    assert optuna.load_study(study_name="tiny", storage=exp.storage_url).metric_names == names


def test_export_readme_says_where_the_trial_stands(wine_study, tmp_path):
    """Before, the README of an exported infeasible trial never said it broke the study's budget."""
    from dse.export import export_design

    _, exp, _, study = wine_study
    records = [r for r in map(TrialRecord.of, study.trials) if r.state == "COMPLETE"]
    infeasible = next(r for r in records if not r.feasible)
    on_front = next(t.number for t in study.best_trials)
    budget = "the study's constraints (lut <= 20000, latency_cycles <= 1000)"
    text = export_design(study, exp.storage_url, infeasible.number, tmp_path / "bad").readme.read_text()
    assert ("**Infeasible**: when it finished it broke the study's constraints: latency_cycles not measured (the study's "
            "constraints now: lut <= 20000, latency_cycles <= 1000). It is not on the study's Pareto front.") in text
    text = export_design(study, exp.storage_url, on_front, tmp_path / "good").readme.read_text()
    assert f"On the study's Pareto front; it meets {budget}." in text


def test_dataset_file_replaced_in_place_is_a_change(wine_study):
    """The same `dataset.path` with other contents is refused by `dse check` and `dse run`, naming the digests."""
    from dse.study import preflight

    path, exp, _, study = wine_study
    exp, space = load_experiment(path)
    data = exp.dataset.path
    original = data.read_bytes()
    stored = study.user_attrs["experiment"]["training"]["epochs"]  # an earlier test may have changed the stored experiment
    exp = exp.model_copy(update={"training": exp.training.model_copy(update={"epochs": stored})})
    preflight(exp, space)  # the stored experiment and data: accepted
    try:
        with np.load(data) as z:
            np.savez(data, X=z["X"][:150], y=z["y"][:150])
        with pytest.raises(ConfigError) as info:
            preflight(exp, space)
        assert "dataset contents (digest of the data trials train on)" in str(info.value)
        assert "shape [178, 13] -> [150, 13]" in str(info.value)
        with pytest.raises(ConfigError, match="dataset contents"):
            run_study(exp, space, progress=False)
        assert len(optuna.load_study(study_name="wine", storage=exp.storage_url).trials) == len(study.trials)
        with np.load(io.BytesIO(original)) as z:  # one column in other units: the same standardized data, before accepted
            X = z["X"].astype(np.float64)
            X[:, 0] *= 1024.0  # a power of two: its standardized values are exactly the same
            np.savez(data, X=X, y=z["y"])
        with pytest.raises(ConfigError) as info:
            preflight(exp, space)
        assert "dataset inputs (digest of the feature names, class names and the standardization" in str(info.value)
        assert "dataset contents" not in str(info.value)
    finally:
        data.write_bytes(original)


def test_constraint_some_strategies_never_measure_is_warned(tmp_path, caplog):
    """A budget on latency_cycles with Latency and distributed_arithmetic on `auto`: only da4ml reports it, so every
    Latency trial is infeasible; `dse check` says so (a warning: the DA trials can still be feasible)."""
    path = write_experiment(
        tmp_path, constraints=[{"metric": "latency_cycles", "max": 100}],
        space={"parameters": {"strategy": {"type": "categorical", "choices": ["Latency", "distributed_arithmetic"]}}},
    )
    with caplog.at_level("WARNING", logger="dse.study._preflight"):
        result = CliRunner().invoke(app, ["check", str(path)])
    assert result.exit_code == 0, result.output
    text = " ".join(" ".join(r.getMessage() for r in caplog.records).split())
    assert "constraints: 'latency_cycles' is not measured for Strategy Latency by resources.backend 'auto'" in text, text
    assert "every such trial is infeasible" in text and "distributed_arithmetic by" not in text


@pytest.mark.parametrize("objectives, constraints, warned", [
    ([{"metric": "lut", "direction": "minimize"}, {"metric": "dsp", "direction": "minimize"}], [], True),
    ([{"metric": "csim_accuracy", "direction": "maximize"}, {"metric": "dsp", "direction": "minimize"}],
     [{"metric": "dsp", "max": 0}], False),
    ([{"metric": "lut", "direction": "minimize"}], [{"metric": "csim_accuracy", "max": 0.99}], True),
    ([{"metric": "lut", "direction": "minimize"}], [{"metric": "csim_accuracy", "min": 0.9}], False),
    ([{"metric": "keras_accuracy", "direction": "maximize"}, {"metric": "ebops", "direction": "minimize"}], [], False),
])
def test_objectives_without_accuracy_are_warned(tmp_path, caplog, objectives, constraints, warned):
    """Resources alone are minimized by the smallest networks, whatever they predict: `dse check` warns unless an
    objective is an accuracy or a constraint sets an accuracy floor."""
    path = write_experiment(tmp_path, objectives=objectives, constraints=constraints)
    with caplog.at_level("WARNING", logger="dse.study._preflight"):
        result = CliRunner().invoke(app, ["check", str(path)])
    assert result.exit_code == 0, result.output
    text = " ".join(" ".join(r.getMessage() for r in caplog.records).split())
    assert ("hold no accuracy and no constraint sets an accuracy floor" in text) == warned, text
    if warned:
        assert "{metric: csim_val_accuracy, direction: maximize}" in text
    # probe 23: an objective or constraint on a test-split accuracy selects designs on the test split
    tested = [m for m in [*(o["metric"] for o in objectives), *(c["metric"] for c in constraints)] if m in ("csim_accuracy", "keras_accuracy")]
    assert (f"{tested[0]} is measured on the test split" in text if tested else "test split" not in text), text
    # probe 19: an accuracy with a max alone is a cap where a floor is meant (before: not a word)
    capped = any(c["metric"].endswith("accuracy") and "min" not in c for c in constraints)
    assert ("csim_accuracy <= 0.99 caps accuracy" in text and "{metric: csim_accuracy, min: 0.99}" in text) == capped, text
    # probe 19: a dsp objective with {metric: dsp, max: 0} leaves one value to minimize (before: not a word)
    pinned = any(c == {"metric": "dsp", "max": 0} for c in constraints)
    assert ("objectives: dsp is minimized, but the constraint dsp <= 0 leaves every feasible trial at dsp = 0" in text) == pinned, text


def test_run_summary_says_when_nothing_fits_the_budget(tmp_path, caplog):
    """`dse run` where every trial is infeasible: the summary counts them as `dse status` does and says there is no front."""
    path = write_experiment(
        tmp_path, n_trials=1, constraints=[{"metric": "lut", "max": 1}], ray={"num_cpus": 1}, hls4ml={"csim": "none"},
        space={"parameters": {"strategy": {"type": "categorical", "choices": ["Latency"]}}},
    )
    result = CliRunner().invoke(app, ["run", str(path), "--no-progress"])
    text = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert "study tiny: 1 complete (0 feasible, 1 infeasible), 0 failed, 0 running" in text, text
    # which bound, by how many trials, and the closest trial (before: "breaks a constraint; ... see `dse report`", which
    # does not say either)
    lut = StudyRecords(optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'run' / 'optuna.db'}")).trial(0).metrics["lut"]
    assert ("no Pareto front: every completed trial breaks a constraint (infeasible): lut max 1 broken by 1 of 1 trial "
            f"(closest: trial 0 at {lut:,.6g}). Loosen the budget") in text, text
    assert "da4ml_latency_cutoff" not in text and "`dse export tiny --trial N --out <folder>`" in text
    # the budget loosened afterwards: trial 0 fits it now, but Optuna keeps its verdict; loosening again would not help
    write_experiment(
        tmp_path, n_trials=1, constraints=[{"metric": "lut", "max": 10**6}], ray={"num_cpus": 1}, hls4ml={"csim": "none"},
        space={"parameters": {"strategy": {"type": "categorical", "choices": ["Latency"]}}},
    )
    told = ("no Pareto front: every completed trial was told infeasible when it finished, and Optuna keeps that; trial 0 "
            "meets the constraints now (lut <= 1e+06)")
    again = CliRunner().invoke(app, ["run", str(path), "--no-progress", "--allow-changed"])
    assert again.exit_code == 0, again.output
    assert "nothing to run" in again.output and told in " ".join(again.output.split()), again.output
    status = CliRunner().invoke(app, ["status", "--experiment", str(path)])
    assert status.exit_code == 0 and told in " ".join(status.output.split()), status.output
    assert "loosen" not in status.output
    # MLflow keeps the same verdict: the run is tagged feasible=false, so compare from MLflow reads what Optuna holds
    # (before: computed under the loosened budget, feasible, with a warning to read the Optuna storage instead)
    from dse.report._compare import load_mlflow_source

    exp, _ = load_experiment(path)
    run_id = TrialRecord.of(optuna.load_study(study_name="tiny", storage=exp.storage_url).trials[0]).run_id
    assert MlflowClient(exp.tracking_uri).get_run(run_id).data.tags["feasible"] == "false"
    with caplog.at_level(logging.WARNING, logger="dse.report._compare"):
        source = load_mlflow_source("tiny", exp.tracking_uri)
    assert list(source.trials["feasible"]) == [False] and source.constraints == "lut <= 1e+06"
    assert "continued with other constraints" not in caplog.text
    report = CliRunner().invoke(app, ["report", "tiny", "--storage", f"sqlite:///{tmp_path / 'run' / 'optuna.db'}",
                                      "--out", str(tmp_path / "rep"), "--no-mlflow"])
    assert report.exit_code == 0, report.output
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "No feasible completed trial: no front, so the hypervolume is 0" in html and "1.1 x the worst" not in html


def test_a_one_epoch_ramp_is_warned(tmp_path, caplog):
    """With training.epochs 1, the only epoch trains at beta and beta_end is never reached (probe 21: accepted unsaid)."""
    space = {"parameters": {"beta": {"type": "float", "low": 1e-6, "high": 1e-5, "log": True},
                            "beta_end": {"type": "float", "low": 1e-4, "high": 1e-3, "log": True}}}
    for epochs, warned in ((1, True), (2, False)):
        caplog.clear()
        path = write_experiment(tmp_path, space=space, training={"epochs": epochs})
        with caplog.at_level("WARNING", logger="dse.study._preflight"):
            result = CliRunner().invoke(app, ["check", str(path)])
        assert result.exit_code == 0, result.output
        assert ("training.epochs is 1, so no trial reaches its beta_end" in caplog.text) == warned, caplog.text


def test_a_reuse_factor_no_objective_sees_is_noted(tmp_path):
    """Probe 31: Resource trials differing only in reuse_factor measured the same under the EBOPs estimate (LUT does not
    model it; DSP, divided by it, was no objective or constraint), and `dse check` said only OK."""
    note = "note: reuse_factor (1, 2, 4 for Resource trials) is seen by no objective or constraint"
    space = {"parameters": {"strategy": {"type": "categorical", "choices": ["Latency", "Resource"]},
                            "reuse_factor": {"type": "categorical", "choices": [1, 2, 4], "when": {"strategy": "Resource"},
                                             "default": 1}}}
    from dse.study._preflight import unseen_reuse_factor

    result = CliRunner().invoke(app, ["check", str(write_experiment(tmp_path, space=space))])
    assert result.exit_code == 0 and note in " ".join(result.output.split()), result.output
    for fields in ({"constraints": [{"metric": "dsp", "max": 10}]}, {"resources": {"backend": "vitis"}}):  # it is seen
        assert unseen_reuse_factor(*load_experiment(write_experiment(tmp_path, space=space, **fields))) is None, fields


def test_a_front_of_two_lut_sources_is_noted(tmp_path):
    """Probe 41: the default space put distributed_arithmetic designs (da4ml's cost) and Latency designs (the EBOPs
    estimate) on one LUT front, 104,949 against 1,642,952 LUTs for one network, and `dse check` said only OK."""
    from dse.study._preflight import mixed_figure_sources

    both = {"parameters": {"strategy": {"type": "categorical", "choices": ["Latency", "distributed_arithmetic"]}}}
    result = CliRunner().invoke(app, ["check", str(write_experiment(tmp_path, space=both))])
    said = " ".join(result.output.split())
    assert result.exit_code == 0 and "note: lut ranks designs by two sources: distributed_arithmetic by da4ml's" in said, said
    assert "Latency by the EBOPs estimate" in said and "--backend vitis" in said, said
    one = {"parameters": {"strategy": {"type": "categorical", "choices": ["Latency", "Resource"]}}}
    for space, fields in ((one, {}), (both, {"resources": {"backend": "vitis"}}),
                          (both, {"objectives": [{"metric": "csim_val_accuracy", "direction": "maximize"},
                                                 {"metric": "ebops", "direction": "minimize"}]})):
        assert mixed_figure_sources(*load_experiment(write_experiment(tmp_path, space=space, **fields))) is None, fields


def test_a_samplers_random_start_covering_a_short_study_is_warned(tmp_path, caplog):
    """NSGA-II's default generation is 50 trials, drawn at random: a 12-trial study without sampler.population_size was
    random sampling under NSGA-II's name, without a word."""
    for sampler, warned in (({"name": "nsga2"}, True), ({"name": "nsga2", "population_size": 4}, False), ({"name": "tpe"}, False),
                            ({"name": "nsga2", "population_size": 50}, True)):  # set as large: the same (probe 22)
        caplog.clear()
        path = write_experiment(tmp_path, n_trials=12, sampler=sampler)
        with caplog.at_level("WARNING", logger="dse.study._preflight"):
            result = CliRunner().invoke(app, ["check", str(path)])
        assert result.exit_code == 0, result.output
        said = "50) at random and breeds only from the second, and n_trials is 12, so the whole study is random"
        assert (said in caplog.text) == warned, (sampler, caplog.text)
        if warned:
            assert "set sampler.population_size to about n_trials / 4 (e.g. 3;" in caplog.text
    # TPE's first 10 trials (Optuna's default n_startup_trials) are random: a study of 10 or fewer was the random
    # sampler's study of the same seed, unsaid (probe 35); n_startup_trials sets them, and reaches Optuna's sampler
    from dse.config import SamplerConfig
    from dse.study._samplers import make_sampler

    for sampler, warned in (({"name": "tpe"}, True), ({"name": "tpe", "n_startup_trials": 3}, False)):
        caplog.clear()
        path = write_experiment(tmp_path, n_trials=8, sampler=sampler)
        with caplog.at_level("WARNING", logger="dse.study._preflight"):
            result = CliRunner().invoke(app, ["check", str(path)])
        assert result.exit_code == 0, result.output
        said = ("TPE draws its first 10 trials (sampler.n_startup_trials, Optuna's default) at random and models the "
                "results only after them, and n_trials is 8, so the whole study is random sampling; set "
                "sampler.n_startup_trials to about n_trials / 3 (e.g. 2)")
        assert (said in " ".join(caplog.text.split())) == warned, (sampler, caplog.text)
    assert make_sampler(SamplerConfig(name="tpe", n_startup_trials=3), 0)._n_startup_trials == 3
    assert make_sampler(SamplerConfig(name="tpe"), 0)._n_startup_trials == 10
    for name in ("nsga2", "random"):
        with pytest.raises(ValueError, match=f"sampler.n_startup_trials is TPE's .* sampler.name is '{name}'; remove "
                                             "n_startup_trials, or set sampler.name: tpe"):
            SamplerConfig(name=name, n_startup_trials=3)


def test_a_continued_study_whose_sampler_changed_is_warned(wine_study, tmp_path, caplog):
    """Probe 35: a study drawn by TPE, continued with NSGA-II, was accepted unsaid, and NSGA-II's first new generation
    was random draws that ignored the trials before. The sampler may change (it is no trial-defining field); it is said."""
    import optuna

    from dse.store import StudyRecords
    from dse.study._preflight import warn_sampler_changed

    tpe, _ = load_experiment(write_experiment(tmp_path / "a", sampler={"name": "tpe"}))
    nsga, _ = load_experiment(write_experiment(tmp_path / "b", sampler={"name": "nsga2", "population_size": 4}))
    study = optuna.create_study()
    study.set_user_attr("experiment", tpe.model_dump(mode="json"))  # as StudyRecords.save_experiment stores it
    with caplog.at_level("WARNING", logger="dse.study._preflight"):
        warn_sampler_changed(StudyRecords(study), nsga)  # no trial yet: nothing was drawn by TPE
        assert "sampler:" not in caplog.text
        study.add_trial(optuna.trial.create_trial(value=1.0))
        warn_sampler_changed(StudyRecords(study), tpe)  # the same sampler
        assert "sampler:" not in caplog.text
        warn_sampler_changed(StudyRecords(study), nsga)
    said = " ".join(caplog.text.split())
    assert ("sampler: study tiny's trials so far were drawn by tpe and this run samples with nsga2, population_size 4; "
            "the trials before stay (NSGA-II draws its first generation in this run at random; it breeds only from the "
            "trials it drew)") in said, said
    # `dse check` of a stored study says it (and `dse run` calls the same function before it stores the new experiment)
    path, _, _, _ = wine_study
    fields = yaml.safe_load(path.read_text())
    changed = path.with_name("tpe.yaml")  # beside it: its dataset and search space paths hold
    changed.write_text(yaml.safe_dump({**fields, "sampler": {"name": "tpe", "n_startup_trials": 2}}, sort_keys=False))
    caplog.clear()
    with caplog.at_level("WARNING", logger="dse.study._preflight"):
        result = CliRunner().invoke(app, ["check", str(changed)])
    assert result.exit_code == 0, result.output
    assert "sampler: study wine's trials so far were drawn by random and this run samples with tpe, n_startup_trials 2; " \
           "the trials before stay" in " ".join(caplog.text.split()), caplog.text


@pytest.mark.own_ray  # asserts that no Ray session starts
def test_changed_experiment_refused_with_a_diff(wine_study, caplog):
    path, exp, _, study = wine_study
    _, space = load_experiment(path)
    changed = exp.model_copy(update={"training": exp.training.model_copy(update={"epochs": 5})})
    sessions = set((exp.resolved_run_dir / "ray").glob("session_2*"))
    with pytest.raises(ConfigError) as info:
        run_study(changed, space, progress=False)
    msg = str(info.value)
    assert "training.epochs: 3 -> 5" in msg and "--allow-changed" in msg
    assert set((exp.resolved_run_dir / "ray").glob("session_2*")) == sessions  # refused before Ray started
    assert len(study.trials) == 4
    client = MlflowClient(exp.tracking_uri)
    study_metrics = ("n_complete", "n_failed", "front_size")
    history = {k: len(client.get_metric_history(wine_study[2].parent_run_id, k)) for k in study_metrics}
    with caplog.at_level(logging.WARNING, logger="dse.study._orchestrator"):
        again = run_study(changed, space, progress=False, allow_changed=True)  # target reached: runs nothing
    assert again.n_complete == 4
    # no trial trained 5 epochs, so the records keep 3 (before: the stored experiment and MLflow's experiment.json
    # said 5, and the next `dse run` of the unchanged file was refused as a change)
    assert "nothing runs with the changed training.epochs: 3 -> 5, so the study's records keep" in caplog.text
    assert StudyRecords(study).experiment().training.epochs == 3
    parent = MlflowClient(exp.tracking_uri).get_run(again.parent_run_id)
    assert json.loads(open(MlflowClient(exp.tracking_uri).download_artifacts(parent.info.run_id, "experiment.json")).read())["training"]["epochs"] == 3
    assert "experiment_updated" not in parent.data.tags
    result = CliRunner().invoke(app, ["run", str(path)])  # the file is what the trials ran with: nothing to run
    assert result.exit_code == 0 and "nothing to run" in result.output and "Traceback" not in result.output, result.output
    # two reruns that changed no count add no row to the parent run's metric histories (before: one per metric and rerun)
    assert again.parent_run_id == wine_study[2].parent_run_id
    assert {k: len(client.get_metric_history(again.parent_run_id, k)) for k in study_metrics} == history == dict.fromkeys(study_metrics, 1)
    with pytest.raises(ConfigError, match="training.epochs: 3 -> 5"):  # and a run that would train is still refused
        run_study(changed.model_copy(update={"n_trials": 5}), space, progress=False)
    result = CliRunner().invoke(app, ["check", str(path)])  # "check passes" means "run will start"
    assert result.exit_code == 0, result.output
    # the resource settings that decide a figure are a change too (probe 21: another backend's LUTs, or DSPs counted at
    # another threshold, joined the earlier trials' front without a word); a longer synthesis timeout is not
    figures = exp.model_copy(update={"n_trials": 5, "resources": exp.resources.model_copy(
        update={"da4ml_latency_cutoff": 10.0, "dsp_threshold_bits": 4, "synthesis_timeout_s": 60})})
    with pytest.raises(ConfigError) as info:
        run_study(figures, space, progress=False)
    assert "resources.da4ml_latency_cutoff: 5.0 -> 10.0" in str(info.value), str(info.value)
    assert "resources.dsp_threshold_bits: 9 -> 4" in str(info.value), str(info.value)
    assert "synthesis_timeout_s" not in str(info.value)
