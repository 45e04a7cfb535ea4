"""Two-fidelity search on a real study: Yosys re-measurement, cache, precise front, calibration."""

from __future__ import annotations

import math

import optuna
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from dse.cli import app
from dse.config import load_experiment
from dse.exceptions import ConfigError
from dse.store import StudyRecords, TrialRecord
from dse.study import calibrate, precise_front, run_study, synthesize
from tests.conftest import use_shared_ray, write_experiment

pytestmark = pytest.mark.shared_ray  # in-process studies share one local Ray (tests/conftest.py)

DA_SPACE = {
    "parameters": {
        "strategy": {"type": "categorical", "choices": ["distributed_arithmetic", "Latency"]},
        "beta": {"type": "float", "low": 1e-6, "high": 1e-4, "log": True, "include_zero": True},
        "weight_bits": {"type": "int", "low": 3, "high": 5},
    }
}


@pytest.fixture(scope="module")
def da_study(tmp_path_factory):
    """3 trials of a 64-8-10 MLP; seed 4 gives two distributed_arithmetic trials (one with beta = 0) and a Latency one.

    ``resources.backend: da4ml`` gives DA trials da4ml's LUT figure (well below EBOPs), so they
    reach the front, and ``synthesize_front: yosys`` re-measures them while the study runs.
    """
    exp, space = load_experiment(
        write_experiment(
            tmp_path_factory.mktemp("da"), space=DA_SPACE, name="da", n_trials=3, seed=4,
            resources={"backend": "da4ml", "synthesize_front": "yosys"},
        )
    )
    use_shared_ray(tmp_path_factory)
    summary = run_study(exp, space, progress=False)
    return exp, optuna.load_study(study_name="da", storage=exp.storage_url), summary


def _strategy(study, n):
    return TrialRecord.of(study.trials[n]).params.strategy


def test_synthesize_yosys_then_cache_hit(da_study):
    exp, study, summary = da_study
    numbers = [t.number for t in study.trials if t.state.name == "COMPLETE"]
    da = [n for n in numbers if _strategy(study, n) == "distributed_arithmetic"]
    other = [n for n in numbers if n not in da]
    assert da and other, "seed 4 should give both strategies"

    # synthesize_front measured every DA trial that joined the front while the study ran
    during_run = set(StudyRecords(study).measurements("yosys"))
    front_da = {t.number for t in study.best_trials if _strategy(study, t.number) == "distributed_arithmetic"}
    assert front_da and front_da <= during_run <= set(da)
    assert set(precise_front(study, "yosys")) <= during_run
    # the run's summary says what synthesize_front measured and where its front's CSV is (before: an INFO log line only)
    rm = summary.remeasured
    assert rm is not None and rm.backend == "yosys" and set(rm.launched) | set(rm.cached) == during_run
    assert rm.front_csv == exp.resolved_run_dir / "pareto_front_yosys.csv" and rm.front_csv.is_file()
    first = synthesize("da", exp.storage_url, "yosys", trials=numbers)
    assert sorted(first.cached) == sorted(during_run) and not first.failed
    assert sorted(first.launched) == sorted(set(da) - during_run)
    assert sorted(first.skipped) == other and "distributed_arithmetic" in first.skipped[other[0]]
    client = MlflowClient(exp.tracking_uri)
    for n in da:
        run = client.get_run(TrialRecord.of(study.trials[n]).run_id)
        m = run.data.metrics
        assert m["yosys_lut"] > 0 and m["yosys_ff"] > 0 and m["yosys_dsp"] == 0
        assert run.data.tags["yosys_lut_source"] == "yosys"
        assert run.data.tags["yosys_latency_cycles_source"] == "da4ml"  # da4ml's stages, not timed by Yosys (probe 31)
        assert abs(m["da4ml_cost"] - m["yosys_lut"]) / m["yosys_lut"] < 0.10
        assert m["lut"] == m["da4ml_cost"] and run.data.tags["lut_source"] == "da4ml"  # the estimate stays beside it
        assert run.data.tags["pareto_yosys"] == ("true" if n in first.front else "false")
    assert set(first.front) <= set(da) and first.front

    # second call: same designs -> cache, no Ray task, no Yosys process
    second = synthesize("da", exp.storage_url, "yosys", trials=da)
    assert second.launched == [] and sorted(second.cached) == da
    assert second.front == first.front

    result = CliRunner().invoke(app, ["status", "da", "--storage", exp.storage_url])
    assert result.exit_code == 0, result.output
    assert "Pareto front on yosys figures" in result.output and "yosys_lut" in result.output

    cal = calibrate("da", exp.storage_url, "yosys")
    by_est = {s.estimate: s for s in cal.stats}
    # 2 DA trials: no rank correlation, and the table says why instead of printing "nan"
    assert len(da) < 3 and math.isnan(by_est["lut"].spearman)
    result = CliRunner().invoke(app, ["calibrate", "da", "--storage", exp.storage_url, "--backend", "yosys"])
    text = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert "nan" not in text and " n/a " in text, text
    assert "Spearman n/a: a rank correlation needs at least 3 trials whose figures differ" in text, text
    # which trials to measure next, by number, or that none is left (before: `--trials N,M,...`, a placeholder)
    assert cal.unmeasured == [] and "every completed trial yosys can measure is measured: run more trials first" in text, text
    # the sign of the error and what scale is are said under the table (before: only in a docstring)
    assert "+ means the estimate is above the precise figure" in text and "precise = s x estimate" in text, text
    # Yosys' latency_cycles are da4ml's stage count of the RTL, the estimate's own computation: not compared with it
    # (probe 23: "+0.0% error, scale 1.000"); a backend that measures latency (Vivado, Vitis) gets the row
    assert "latency_cycles" not in by_est and "yosys_latency_cycles" in cal.csv.read_text().splitlines()[0].split(",")
    assert "latency_cycles in clock cycles" not in text, text  # probe 31: a unit note for a row the table lacks
    assert "dsp" in cal.csv.read_text().splitlines()[0].split(",")
    assert by_est["da4ml_cost"].n == len(da) and by_est["da4ml_cost"].max_abs_rel_error < 0.10
    assert by_est["lut"].n == len(da)  # the study's own LUT figure (da4ml here)
    assert by_est["ebops"].mean_rel_error > 0  # EBOPs is an upper bound on DA LUTs
    parent = StudyRecords(study).parent_run_id
    pm = client.get_run(parent).data.metrics
    assert pm["calibration_yosys_da4ml_cost_n"] == len(da)
    assert {"pareto_front_yosys.csv", "calibration_yosys.csv"} <= {a.path for a in client.list_artifacts(parent)}


def test_synthesize_errors(da_study):
    exp, study, _ = da_study
    with pytest.raises(ConfigError, match="trial 99 is not a COMPLETE trial"):
        synthesize("da", exp.storage_url, "yosys", trials=[99])
    with pytest.raises(ConfigError, match="nothing to synthesize"):
        synthesize("da", exp.storage_url, "yosys")
    with pytest.raises(ConfigError, match=r"--backend \(Python: backend=\): unknown resource backend 'yosis'"):
        synthesize("da", exp.storage_url, "yosis", front=True)
    # the estimate every trial carries is no re-measurement: before, it "measured" the front again
    with pytest.raises(ConfigError, match=r"--backend \(Python: backend=\): 'ebops' is the estimate every trial already carries.*da4ml, yosys, vivado, vitis"):
        synthesize("da", exp.storage_url, "ebops", front=True)
    with pytest.raises(ConfigError, match=r"--backend \(Python: backend=\): 'ebops' is the estimate"):
        calibrate("da", exp.storage_url, "ebops")
    with pytest.raises(ConfigError, match="no trial of study 'da' was measured with 'vivado'"):
        calibrate("da", exp.storage_url, "vivado")


def test_profiling_plots_logged(da_study):
    """hls4ml numerical profiling of a re-measured trial lands in its MLflow run under profiling/, also when its
    figures come from the cache (before: a cached trial was silently not profiled)."""
    exp, study, _ = da_study
    n, cached = [t.number for t in study.trials if _strategy(study, t.number) == "distributed_arithmetic"][:2]
    synthesize("da", exp.storage_url, "da4ml", trials=[cached])  # measured (or already cached), not profiled
    # one call for both: `cached` is profiled from the cache; n is measured (or cached by another test) and profiled
    summary = synthesize("da", exp.storage_url, "da4ml", trials=[cached, n], profile=True)
    assert cached in summary.cached and cached not in summary.launched and sorted(summary.profiled) == sorted([cached, n]), summary
    client = MlflowClient(exp.tracking_uri)
    names = {a.path for a in client.list_artifacts(TrialRecord.of(study.trials[cached]).run_id, "profiling")}
    assert {"profiling/weights.png", "profiling/activations.png"} <= names

    assert n in summary.launched + summary.cached, summary
    run_id = TrialRecord.of(study.trials[n]).run_id
    names = {a.path for a in client.list_artifacts(run_id, "profiling")}
    assert {"profiling/weights.png", "profiling/activations.png"} <= names, client.get_run(run_id).data.tags.get("profiling_error")
    assert client.get_run(run_id).data.tags["profiling"] == "hls4ml"  # with hls4ml's type boxes
    metrics = client.get_run(run_id).data.metrics
    assert metrics["da4ml_lut"] > 0
    doubled = [k for k in metrics if k.startswith("da4ml_da4ml_")]
    assert not doubled, f"da4ml's extras (da4ml_cost, ...) were logged with a second prefix: {doubled}"


def test_remeasurement_uses_recorded_beta_zero(da_study):
    """A trial that sampled beta = 0 (stored by Optuna only as beta_is_zero) is re-measured with beta = 0."""
    from dse.study._synthesize import Remeasurer

    exp, study, _ = da_study
    zero = [t for t in study.trials if t.params.get("beta_is_zero")]
    assert zero, "seed 4 should sample beta = 0 at least once"
    rm = Remeasurer(study, exp, "da4ml")
    for t in zero:
        assert "beta" not in t.params
        assert rm.spec(t).params.beta == 0.0 == TrialRecord.of(t).params.beta


def test_synthesize_and_calibrate_in_a_moved_run_directory(da_study, tmp_path):
    """A run directory moved elsewhere (README "Moving a run directory"): re-measurement and calibration log into the
    moved MLflow store and write there; before, they opened the recorded place and failed with "Run ... not found"."""
    import shutil

    exp, study, _ = da_study
    moved = tmp_path / "moved" / "da"
    shutil.copytree(exp.resolved_run_dir, moved, ignore=shutil.ignore_patterns("ray"))
    original = exp.resolved_run_dir
    away = original.with_name(original.name + "-away")
    original.rename(away)
    try:
        storage = f"sqlite:///{moved / 'optuna.db'}"
        n = next(t.number for t in study.trials if _strategy(study, t.number) == "distributed_arithmetic")
        summary = synthesize("da", storage, "da4ml", trials=[n])
        assert not summary.failed and n in summary.launched + summary.cached, summary
        assert summary.front_csv == moved / "pareto_front_da4ml.csv" and summary.front_csv.is_file()
        cal = calibrate("da", storage, "yosys")
        assert cal.csv == moved / "calibration_yosys.csv" and cal.csv.is_file()
        client = MlflowClient(f"sqlite:///{moved / 'mlflow.db'}")
        assert client.get_run(TrialRecord.of(study.trials[n]).run_id).data.metrics["da4ml_lut"] > 0
        parent = client.get_run(StudyRecords(study).parent_run_id)
        assert parent.data.metrics["calibration_yosys_da4ml_cost_n"] >= 1
        assert not original.exists(), sorted(p.name for p in original.iterdir())  # nothing written at the old place
    finally:
        if original.exists():
            shutil.rmtree(original)
        away.rename(original)


def test_measurements_an_earlier_dse_keyed_are_found_after_an_upgrade(da_study, tmp_path):
    """Until 2026-12-06 a measurement's key hashed every `resources` field, so a new field (backend_modules) changed every
    key and an upgraded dse measured every trial again (probe 15: `yosys: 2 measured, 0 from cache`, up to 30 min of Yosys
    a trial). Now the figures of a trial tagged with an earlier key, and an entry cached under one, are found."""
    import json
    import shutil
    import sqlite3
    from contextlib import closing

    from dse.resources._cache import cache_key, earlier_measurement_settings

    exp, study, _ = da_study
    copy = tmp_path / "da"
    shutil.copytree(exp.resolved_run_dir, copy, ignore=shutil.ignore_patterns("ray"))
    storage = f"sqlite:///{copy / 'optuna.db'}"
    a, b = [t.number for t in study.trials if t.state.name == "COMPLETE" and _strategy(study, t.number) == "distributed_arithmetic"][:2]
    full, before_modules = earlier_measurement_settings(exp.resources)
    dh = {n: TrialRecord.of(study.trials[n]).tags["design_hash"] for n in (a, b)}
    with closing(sqlite3.connect(copy / "optuna.db")) as db, db:  # the tags a dse of 2026-12-05 wrote (no way through Optuna)
        # and no measurement under today's keys (earlier tests of this module measure the shared study)
        db.execute("DELETE FROM study_user_attributes WHERE key LIKE 'cache:%' OR key LIKE 'measured:%'")
        for n, key in ((a, cache_key(dh[a], "da4ml", full)), (b, "da4ml:none")):
            (trial_id,) = db.execute("SELECT trial_id FROM trials WHERE number = ?", (n,)).fetchone()
            (value,) = db.execute("SELECT value_json FROM trial_user_attributes WHERE trial_id = ? AND key = 'tags'", (trial_id,)).fetchone()
            db.execute("UPDATE trial_user_attributes SET value_json = ? WHERE trial_id = ? AND key = 'tags'",
                       (json.dumps({**json.loads(value), "figure_key": key}), trial_id))
    entry = {"metrics": {"da4ml_lut": 123.0, "da4ml_cost": 123.0}, "tags": {"da4ml_lut_source": "da4ml"}}
    StudyRecords(optuna.load_study(study_name="da", storage=storage)).store_measurement(cache_key(dh[b], "da4ml", before_modules), entry)

    summary = synthesize("da", storage, "da4ml", trials=[a, b])
    assert summary.own == [a] and sorted(summary.cached) == sorted([a, b]) and not summary.launched, summary
    measured = StudyRecords(optuna.load_study(study_name="da", storage=storage)).measurements("da4ml")
    assert measured[b]["metrics"]["da4ml_lut"] == 123.0  # the earlier dse's entry, not a new measurement


@pytest.fixture(scope="module")
def yosys_study(tmp_path_factory):
    """2 trials with ``resources.backend: yosys`` (a distributed_arithmetic one, whose lut/ff/dsp come from Yosys at trial
    time, and a Latency one), both infeasible: no 2-epoch model reaches the keras_accuracy floor of 0.999."""
    exp, space = load_experiment(
        write_experiment(
            tmp_path_factory.mktemp("yo"), space=DA_SPACE, name="yo", n_trials=2, seed=4,
            enqueue_trials=[{"strategy": "distributed_arithmetic", "beta": 0.0, "weight_bits": 4},
                            {"strategy": "Latency", "beta": 0.0, "weight_bits": 4}],
            resources={"backend": "yosys"}, constraints=[{"metric": "keras_accuracy", "min": 0.999}],
        )
    )
    use_shared_ray(tmp_path_factory)
    run_study(exp, space, progress=False)
    study = optuna.load_study(study_name="yo", storage=exp.storage_url)
    records = StudyRecords(study).trials((optuna.trial.TrialState.COMPLETE,))
    da = [r.number for r in records if r.params.strategy == "distributed_arithmetic"]
    other = [r.number for r in records if r.params.strategy != "distributed_arithmetic"]
    assert da and other and not any(r.feasible for r in records), records
    return exp, study, da, other


def test_synthesize_takes_figures_a_trial_measured_with_the_same_backend(yosys_study, caplog):
    """A trial whose lut/ff/dsp came from Yosys when it ran is not synthesized again: its own figures are its yosys
    measurement (before: Yosys ran again, "1 measured, 0 from cache", and calibrate compared yosys with itself)."""
    import logging

    exp, study, da, _ = yosys_study
    # before any synthesize: calibrate says the trials' figures are already yosys's and how to record them (before: only
    # "no trial was measured with 'yosys'")
    with pytest.raises(ConfigError, match=rf"run `dse synthesize yo --front --backend yosys` first; the lut of trial {da[0]} "
                       rf"is already yosys's own figure .*`dse synthesize yo --trials {da[0]} --backend yosys` records "
                       r"those as yosys figures in no time, without running yosys"):
        calibrate("yo", exp.storage_url, "yosys")
    caplog.set_level(logging.INFO, logger="dse.study")
    summary = synthesize("yo", exp.storage_url, "yosys", trials=da, keep_files=True)
    assert summary.launched == [] and sorted(summary.cached) == da == sorted(summary.own) and not summary.failed, summary
    assert summary.kept is None  # nothing measured, nothing kept
    measured = StudyRecords(study).measurements("yosys")
    client = MlflowClient(exp.tracking_uri)
    for n in da:
        r = StudyRecords(study).trial(n)
        assert r.tags["lut_source"] == "yosys" and r.tags["figure_key"].startswith("yosys:")
        m = measured[n]["metrics"]
        assert (m["yosys_lut"], m["yosys_ff"], m["yosys_dsp"]) == (r.metrics["lut"], r.metrics["ff"], r.metrics["dsp"])
        assert m["yosys_carry"] == r.metrics["carry"] and measured[n]["tags"]["yosys_lut_source"] == "yosys"
        run = client.get_run(r.run_id).data
        assert run.metrics["yosys_lut"] == r.metrics["lut"] and run.tags["yosys_lut_source"] == "yosys"
    # --keep-files on trials answered without a tool run says so (before: nothing kept, nothing said)
    assert not (exp.resolved_run_dir / "synth" / "yosys").exists()
    kept = [r for r in caplog.records if r.getMessage().startswith("--keep-files:")]
    assert len(kept) == 1 and kept[0].levelname == "WARNING" and str(da) in kept[0].getMessage(), caplog.text
    assert f"trials {da} already carry yosys figures from their own run" in caplog.text

    # calibrate says that the lut row compares yosys with itself
    caplog.clear()
    calibrate("yo", exp.storage_url, "yosys")
    assert f"yosys: the lut of trials {da} is already yosys's own figure" in caplog.text, caplog.text
    # and which rows still compare an estimate (probe 42: da4ml_cost was called one with --backend da4ml, where it is
    # da4ml's own figure)
    assert "; their da4ml_cost row compares da4ml's estimate; their ebops row still compares the estimate" in caplog.text


def test_profile_names_the_trials_the_backend_skips(yosys_study, caplog):
    """--profile on a trial the backend does not measure says it was not profiled (before: no plots, nothing said)."""
    exp, study, _, other = yosys_study
    summary = synthesize("yo", exp.storage_url, "yosys", trials=other, profile=True)
    assert sorted(summary.skipped) == other and summary.profiled == []
    said = [r for r in caplog.records if r.getMessage().startswith("--profile:")]
    assert len(said) == 1 and said[0].levelname == "WARNING", caplog.text
    assert f"trials {other} were not profiled: yosys does not measure their Strategy" in said[0].getMessage()
    assert "this is Latency" in said[0].getMessage()


def test_status_names_front_members_that_joined_after_the_last_synthesize(tmp_path):
    """Probe 36: a front re-measured mid-study stayed the front on those figures after later trials joined the
    estimates' front, unsaid by `dse status` (and its --json). Now the members the backend supports but has not
    measured are named, with the command that measures them."""
    import json

    from dse.study._synthesize import unmeasured_front_members
    from tests.report.synthetic import make_study

    study, url, _ = make_study(tmp_path, n_trials=12, seed=0, epochs=2, failures=False, name="late")
    front = sorted(t.number for t in study.best_trials)
    assert len(front) >= 3
    records = StudyRecords(study)
    first = front[1]  # measured by vitis (Latency and Resource designs) before the others joined, say
    records.store_measurement("k1", {"metrics": {"vitis_lut": 1000.0}, "tags": {"vitis_lut_source": "vitis"}})
    records.mark_measured("vitis", first, "k1")
    late = [n for n in front if n != first]
    assert unmeasured_front_members(study, "vitis") == late
    result = CliRunner().invoke(app, ["status", "late", "--storage", url])
    said = " ".join(result.output.split())
    assert result.exit_code == 0 and (f"Pareto front on vitis figures leaves out trials {', '.join(map(str, late))} of "
                                      "the front, not measured by vitis: "
                                      "`dse synthesize late --front --backend vitis` measures them") in said, said
    result = CliRunner().invoke(app, ["status", "late", "--storage", url, "--json"])
    assert json.loads(result.output)["precise_fronts_unmeasured"] == {"vitis": late}
    assert unmeasured_front_members(study, "yosys") == []  # no distributed_arithmetic member: nothing yosys could measure


def test_precise_front_holds_feasible_trials_only(yosys_study, da_study):
    """A trial told infeasible is not on the precise front, not tagged pareto_yosys=true, not in pareto_front_yosys.csv,
    nor in `dse status`'s precise front (before: all of these, with feasible=False in the CSV)."""
    from dse.config import ConstraintConfig

    exp, study, da, _ = yosys_study
    summary = synthesize("yo", exp.storage_url, "yosys", trials=da)
    assert set(StudyRecords(study).measurements("yosys")) == set(da)
    assert summary.front == [] == precise_front(study, "yosys")
    client = MlflowClient(exp.tracking_uri)
    for n in da:
        assert client.get_run(StudyRecords(study).trial(n).run_id).data.tags["pareto_yosys"] == "false"
    rows = summary.front_csv.read_text().strip().splitlines()[1:]  # below the header: none
    assert rows == [], rows
    result = CliRunner().invoke(app, ["status", "yo", "--storage", exp.storage_url])
    assert result.exit_code == 0, result.output
    assert "Pareto front on yosys figures" not in result.output

    # a trial told feasible whose precise figure breaks a constraint on a metric the backend re-measured is left out too
    dexp, dstudy, _ = da_study
    measured = StudyRecords(dstudy).measurements("yosys")
    front = precise_front(dstudy, "yosys")
    assert front and set(front) <= set(measured)
    luts = {n: measured[n]["metrics"]["yosys_lut"] for n in front}
    worst = max(luts, key=luts.get)
    below = ConstraintConfig(metric="lut", max=luts[worst] - 1)
    assert worst not in precise_front(dstudy, "yosys", [below])
    assert precise_front(dstudy, "yosys", [ConstraintConfig(metric="lut", max=max(luts.values()))]) == front


def test_check_warns_when_synthesize_front_already_gives_the_figures(tmp_path, caplog):
    """`dse check`'s resource checks warn when resources.synthesize_front is the backend that gives the figures of every
    trial it can measure (before: accepted silently, and every front member went through Yosys a second time)."""
    said = "already gives the figures of every trial it measures"
    for i, (resources, redundant) in enumerate([({"backend": "yosys", "synthesize_front": "yosys"}, True),
                                                 ({"synthesize_front": "da4ml"}, True),
                                                 ({"synthesize_front": "yosys"}, False),
                                                 ({"backend": "da4ml", "synthesize_front": "yosys"}, False)]):
        warned = " ".join(_warned(tmp_path / str(i), resources, caplog))
        assert (said in warned) == redundant, (resources, warned)
    warned = " ".join(_warned(tmp_path / "y", {"backend": "yosys", "synthesize_front": "yosys"}, caplog))
    assert ("resources.synthesize_front: 'yosys' already gives the figures of every trial it measures (distributed_arithmetic "
            "trials take theirs from resources.backend 'yosys')") in warned, warned


def _warned(folder, resources, caplog) -> list[str]:
    """The warnings of the resource checks of `dse check` on a DA_SPACE experiment with ``resources``."""
    from dse.study._preflight import _check_resource_tools

    exp, space = load_experiment(write_experiment(folder, space=DA_SPACE, resources=resources))
    caplog.clear()
    _check_resource_tools(exp, space)
    return [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]


def test_a_part_yosys_cannot_target_is_refused_before_the_study(tmp_path):
    """Before: `dse check` passed and every distributed_arithmetic trial then failed on a Versal part; Alveo cards
    (xcu250, UltraScale+) were refused outright though the export README gave a working Yosys command for them."""
    from dse.resources import yosys_family
    from dse.study import preflight

    from dse.export._export import _yosys_knows

    assert yosys_family("xcu250-figd2104-2L-e") == "xcup" and yosys_family("xcu55c-fsvh2892-2L-e") == "xcup"
    assert _yosys_knows("xcu250-figd2104-2L-e") and not _yosys_knows("xcvc1902-vsva2197-2MP-e-S")  # the export README says so
    exp, space = load_experiment(write_experiment(tmp_path, space=DA_SPACE, name="versal", resources={"backend": "yosys"},
                                                  hls4ml={"part": "xcvc1902-vsva2197-2MP-e-S"}))
    with pytest.raises(ConfigError, match=r"resources.backend 'yosys': hls4ml.part 'xcvc1902-vsva2197-2MP-e-S' \(a Versal part"):
        preflight(exp, space)


def test_an_empty_precise_front_says_why_and_an_over_budget_design_is_not_said_to_fit(tmp_path):
    """Probe 19: a trial whose estimates meet `lut <= M` but whose Yosys LUTs do not. Before, `dse status` printed no
    precise front and no word why, `dse synthesize` said "no measured trial is feasible" also where a trial told
    infeasible meets the bound on Yosys's figures, and `dse export`'s README said the trial "meets the study's
    constraints"."""
    from dse.config import ConstraintConfig
    from dse.export._export import _standing
    from dse.study._synthesize import empty_precise_front_reason
    from tests.report.synthetic import make_study

    first, _, _ = make_study(tmp_path / "a", n_trials=8, failures=False)  # the same seeded trials, to pick a budget
    luts = sorted(TrialRecord.of(t).metrics["lut"] for t in first.trials)
    budget = (luts[0] + luts[-1]) / 2  # some trials within it, some not
    study2, storage2, exp2 = make_study(tmp_path / "b", n_trials=8, failures=False, constraints=[{"metric": "lut", "max": budget}])
    recs = {r.number: r for r in StudyRecords(study2).trials()}
    fits = min((r for r in recs.values() if r.feasible), key=lambda r: r.metrics["lut"])
    over, still_over = sorted((r for r in recs.values() if not r.feasible), key=lambda r: r.metrics["lut"])[:2]
    records = StudyRecords(study2)
    # Yosys says the opposite of the estimates for the first two; the third is over budget on both
    for r, yosys_lut in ((fits, budget + 100.0), (over, budget - 100.0), (still_over, budget + 500.0)):
        records.store_measurement(f"k{r.number}", {"metrics": {"yosys_lut": yosys_lut}, "tags": {"yosys_lut_source": "yosys"}})
        records.mark_measured("yosys", r.number, f"k{r.number}")

    reason = empty_precise_front_reason(study2, "yosys")
    for constraints in (None, []):  # the bound it broke as it was told it (a review: removed constraints made any figure "meet")
        said = empty_precise_front_reason(study2, "yosys", constraints)
        assert f"trial {still_over.number} was told infeasible on its estimates ({still_over.broken_constraints()[0]}), which it stays;" in said + ";", said
    assert f"trial {fits.number} is over budget on its yosys figures (yosys_lut {budget + 100:,.6g} > max {budget:,.6g})" in reason
    assert (f"trial {over.number} was told infeasible on its estimates ({over.broken_constraints()[0]}), which it stays, "
            "though its yosys figures meet that bound") in reason, reason
    status = CliRunner().invoke(app, ["status", exp2.name, "--storage", storage2])
    assert status.exit_code == 0, status.output
    said = " ".join(status.output.split())
    assert f"Pareto front on yosys figures: none: trial {min(fits.number, over.number, still_over.number)} " in said, said
    assert f"trial {fits.number} is over budget on its yosys figures" in said and f"trial {over.number} was told infeasible" in said

    # the report's accuracy-vs-LUT figure draws it at its Yosys LUTs as infeasible (before: a feasible front point)
    from dse.report._figures import pair_points

    points = pair_points(study2, "csim_accuracy", "lut").set_index("trial")
    assert points.loc[fits.number, "precise"] and not points.loc[fits.number, "feasible"]
    assert not points.loc[fits.number, "on_front"] and points.loc[over.number, "value"] == budget - 100.0
    # and `dse compare` judges it the same (audit: it kept the estimate's verdict and drew the trial as a feasible front
    # point at its Yosys LUTs)
    from dse.report._compare import _pair, load_optuna_source

    src = load_optuna_source(exp2.name, storage2)
    row = src.trials.set_index("trial").loc[fits.number]
    assert not row["feasible"] and row["yosys_lut"] == budget + 100.0
    assert fits.number not in set(_pair(src.trials, "csim_accuracy", "lut")["trial"])

    from dse.report import build_report
    from dse.store import precise_broken

    page = build_report(study2, storage2, tmp_path / "report", log_to_mlflow=False).html.read_text()
    assert f"Infeasible trials (constraint violated): {len([r for r in recs.values() if not r.feasible])} (and 1 over budget " \
           "on re-measured figures), in red (crosses, or their source's marker where an axis holds several sources); the " \
           "budget's bounds on an axis are dashed red lines" in " ".join(page.split())
    assert precise_broken({"metrics": {"yosys_lut": math.inf}}, "yosys", [ConstraintConfig(metric="lut", max=10)]) == [
        "yosys_lut not measured"]  # (before: "yosys_lut not measured > max 10")

    readme = _standing(study2, fits, [ConstraintConfig(metric="lut", max=budget)])
    assert readme.startswith(f"**Over budget on its re-measured figures**: yosys_lut {budget + 100:,.6g} > max {budget:,.6g}")
    assert "meets the study's constraints" not in readme and "it is not on the front of its yosys figures" in readme, readme


@pytest.mark.own_ray  # asserts that no Ray session starts
def test_synthesize_with_the_tool_missing_stops_before_ray(da_study):
    """vivado_hls is not on this machine's PATH: with a local Ray the error comes at once, before Ray starts and before
    any trial is marked or a front CSV written (before, every trial failed on a worker after Ray's start)."""
    import shutil

    from dse.exceptions import ToolNotFoundError

    exp, study, _ = da_study
    assert shutil.which("vivado_hls") is None
    sessions = set((exp.resolved_run_dir / "ray").glob("session_2*"))
    before = StudyRecords(study).measurements("vivado")
    with pytest.raises(ToolNotFoundError, match="'vivado_hls' executable on PATH"):
        synthesize("da", exp.storage_url, "vivado", front=True)
    assert set((exp.resolved_run_dir / "ray").glob("session_2*")) == sessions
    assert StudyRecords(study).measurements("vivado") == before
    assert not (exp.resolved_run_dir / "pareto_front_vivado.csv").exists()


@pytest.mark.own_ray  # the stored cluster must be joined (and fail), not the shared local Ray
@pytest.mark.slow  # 25-60 s on a 2-core host: SLOW=1 bash scripts/test.sh (README, Testing)
def test_synthesize_a_cluster_study_here_with_its_store_elsewhere(da_study, tmp_path, monkeypatch):
    """A study run on a cluster that is gone, its MLflow store copied apart from its Optuna database (probe 16).

    Before: `dse synthesize` joined the stored `ray.address` and failed (`RAY_ADDRESS` does not override it), and had no
    `--tracking-uri`; a Yosys timeout too small could be raised only by running another trial. Now `--ray-address local`,
    `--tracking-uri` and `--synthesis-timeout-s` do each, and the failed join names the first."""
    import json
    import shutil
    import sqlite3
    from contextlib import closing

    from dse.exceptions import ClusterError, TrackingError

    exp, study, _ = da_study
    db_dir, store = tmp_path / "optuna", tmp_path / "store"
    db_dir.mkdir()
    for f in exp.resolved_run_dir.glob("optuna.db*"):  # with its WAL
        shutil.copy(f, db_dir / f.name)
    shutil.copytree(exp.resolved_run_dir, store, ignore=shutil.ignore_patterns("ray", "optuna.db*", "synth", "trials"))
    storage, tracking = f"sqlite:///{db_dir / 'optuna.db'}", f"sqlite:///{store / 'mlflow.db'}"
    with closing(sqlite3.connect(db_dir / "optuna.db")) as db, db:  # as a cluster's study stores it; nothing measured yet
        db.execute("DELETE FROM study_user_attributes WHERE key LIKE 'cache:%' OR key LIKE 'measured:%'")
        (value,) = db.execute("SELECT value_json FROM study_user_attributes WHERE key = 'experiment'").fetchone()
        stored = json.loads(value)
        stored["ray"]["address"] = "auto"
        stored["mlflow"]["tracking_uri"] = "http://127.0.0.1:9"  # the in-cluster server, unreachable from here
        db.execute("UPDATE study_user_attributes SET value_json = ? WHERE key = 'experiment'", (json.dumps(stored),))
    n = next(t.number for t in study.trials if t.state.name == "COMPLETE" and _strategy(study, t.number) == "distributed_arithmetic")

    with pytest.raises(ClusterError, match=r"ray.address 'auto'.*pass --ray-address local"):
        synthesize("da", storage, "yosys", trials=[n], tracking_uri=tracking)
    with pytest.raises(TrackingError, match=r"--tracking-uri \(Python: tracking_uri=\): the MLflow server at http://127.0.0.1:9 does not answer"):
        synthesize("da", storage, "yosys", trials=[n], tracking_uri="http://127.0.0.1:9")  # before Ray and hours of tools
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:9")  # left from the cluster: `local` is a local Ray whatever it says
    from typer.testing import CliRunner

    from dse.cli import app

    tight = CliRunner().invoke(app, ["synthesize", "da", "--storage", storage, "--backend", "yosys", "--trials", str(n),
                                     "--tracking-uri", tracking, "--ray-address", "local", "--synthesis-timeout-s", "0.001"])
    said = " ".join(tight.output.split())
    assert tight.exit_code == 1 and f"trial {n}: FAILED:" in said and "synthesis_timeout_s=0.001 s" in said, said
    assert "--synthesis-timeout-s" in said and f"error: 1 of 1 re-measurements with yosys failed (trials {n})" in said, said
    done = synthesize("da", storage, "yosys", trials=[n], tracking_uri=tracking, ray_address="local", synthesis_timeout_s=600,
                      keep_files=True)
    assert done.launched == [n] and not done.failed, done
    assert done.kept == store / "synth" / "yosys" and (done.kept / f"trial_{n:05d}").is_dir()  # printed by the command
    run = MlflowClient(tracking).get_run(TrialRecord.of(study.trials[n]).run_id)
    assert run.data.metrics["yosys_lut"] > 0  # logged into the store given, by a local Ray's worker
    cal = calibrate("da", storage, "yosys", tracking_uri=tracking)
    assert cal.n_trials == 1
    da = [t.number for t in study.trials if t.state.name == "COMPLETE" and _strategy(study, t.number) == "distributed_arithmetic"]
    assert cal.unmeasured == [m for m in da if m != n]  # the trials to name in `dse synthesize --trials`
    with pytest.raises(ConfigError, match=r"--synthesis-timeout-s \(Python: synthesis_timeout_s=\): 0 is not > 0"):
        synthesize("da", storage, "yosys", trials=[n], synthesis_timeout_s=0)
    from dse.exceptions import ClusterUnreachableError

    with pytest.raises(ClusterUnreachableError, match=r"--ray-address \(Python: ray_address=\): no Ray cluster reachable at 127.0.0.1:9"):
        synthesize("da", storage, "yosys", trials=[n], ray_address="127.0.0.1:9")


def test_sigterm_stops_synthesize_with_143_and_one_line(da_study, monkeypatch):
    """Probe 44: `dse synthesize` stopped by SIGTERM exited 1 (the status of a failed re-measurement) without a word: Ray's
    driver handler took the signal. Now it stops as `dse run` does, 143 and one line saying what is kept. (The tasks
    are stand-ins: what is tested is the signal's path through Ray's session, not a measurement.)"""
    import os
    import signal
    import time

    import ray

    from dse.study import _synthesize

    exp, study, _ = da_study
    cached = sorted(StudyRecords(study).measurements("yosys"))  # measured while the study ran: --profile profiles them
    assert cached
    signalled: list[int] = []

    def terminated(self, number, ref):  # a SIGTERM while the command waits on Ray
        signalled.append(number)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(2)  # the handler raises in here

    monkeypatch.setattr(_synthesize.Remeasurer, "submit", lambda self, t, splits_ref, measure=True: ray.put(None))
    monkeypatch.setattr(_synthesize.Remeasurer, "record_profile", terminated)
    safety = signal.signal(signal.SIGTERM, lambda *a: None)  # never pytest's death, should dse's handler be missing
    try:
        result = CliRunner().invoke(app, ["synthesize", "da", "--storage", exp.storage_url, "--backend", "yosys",
                                          "--trials", ",".join(map(str, cached)), "--profile"])
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL  # the handler from before is back
    finally:
        signal.signal(signal.SIGTERM, safety)
    assert signalled and result.exit_code == 143, (result.exit_code, result.output)
    assert "stopped (SIGTERM): the trials measured before it keep their yosys figures (cached" in " ".join(result.output.split())
