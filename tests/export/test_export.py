"""A trial's design from MLflow alone: the model behind its recorded preprocessing, and `dse export`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from dse.cli import app
from dse.data import Preprocessing, load_raw_test_split
from dse.store import StudyRecords

pytestmark = pytest.mark.shared_ray  # in-process studies share one local Ray (tests/conftest.py)

runner = CliRunner()


def _best(study):
    return StudyRecords(study).trial(study.best_trials[0].number)


def test_model_and_preprocessing_from_mlflow_reproduce_keras_accuracy(tiny_study, tmp_path):
    import hgq  # noqa: F401  (registers the HGQ2 layers)
    import keras

    exp, _, study = tiny_study
    rec = _best(study)
    client = MlflowClient(exp.tracking_uri)
    model = keras.models.load_model(client.download_artifacts(rec.run_id, "model.keras", str(tmp_path)))
    pre = Preprocessing.from_json(json.loads(Path(client.download_artifacts(rec.run_id, "preprocessing.json", str(tmp_path))).read_text()))
    X_raw, y = load_raw_test_split(exp.dataset)
    assert X_raw.dtype == np.float64 and np.abs(X_raw).max() > 5  # raw digits pixels (0..16), not standardized
    out = model.predict(pre.apply(X_raw), verbose=0, batch_size=4096)
    logged = client.get_run(rec.run_id).data.metrics["keras_accuracy"]
    assert float(np.mean(out.argmax(1) == y)) == pytest.approx(logged, abs=0)


def test_export_compiles_and_reproduces_csim_accuracy(tiny_study, tmp_path):
    exp, _, study = tiny_study
    rec = _best(study)
    out = tmp_path / "design"
    result = runner.invoke(app, ["export", exp.name, "--trial", str(rec.number), "--storage", exp.storage_url, "--out", str(out)])
    assert result.exit_code == 0, result.output
    for name in ("model.keras", "hls4ml_config.yaml", "preprocessing.json", "README.md", "hls4ml_prj/firmware/myproject.cpp"):
        assert (out / name).is_file(), name
    readme = (out / "README.md").read_text()
    assert f"| csim_accuracy | {rec.metrics['csim_accuracy']:.4f} |" in readme
    assert f"| lut | {rec.metrics['lut']:,.0f} | ebops-estimate |" in readme and "vitis-run" in readme
    assert rec.run_id in readme
    # the input order by name (digits: pixel_<row>_<column>); before, only the vectors were recorded
    assert "Input index j is feature `feature_names[j]`: `pixel_0_0`, `pixel_0_1`," in readme and "(64 in all)" in readme
    assert len(json.loads((out / "preprocessing.json").read_text())["feature_names"]) == 64
    # the raw test rows' Python line names the study's storage (probe 40: a '<storage URL>' placeholder), and runs
    raw_line = readme.split("All raw test rows in Python: `", 1)[1].split("`", 1)[0]
    assert f"load_study('{exp.name}', '{exp.storage_url}')" in raw_line
    proc = subprocess.run([sys.executable, "-c", f"import dse.data, dse.store, dse.study\n{raw_line}\nprint(len(y))"],
                          cwd=out, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and proc.stdout.split()[-1] == str(len(load_raw_test_split(exp.dataset)[1])), proc.stderr[-2000:]

    # the README's Python C simulation check runs as written on the exported testbench vectors (all of digits' test
    # split), and its C simulation reproduces the trial's accuracy; before, tb_data was absent (the testbench ran zeros)
    X_raw, y = load_raw_test_split(exp.dataset)
    assert f"first {len(y)} rows of the study's test split" in readme and "testbench vectors of" in result.output
    x_tb = np.loadtxt(out / "hls4ml_prj/tb_data/tb_input_features.dat", dtype=np.float32, ndmin=2)
    pre = Preprocessing.from_json(json.loads((out / "preprocessing.json").read_text()))
    np.testing.assert_array_equal(x_tb, pre.apply(X_raw))
    assert np.loadtxt(out / "hls4ml_prj/tb_data/tb_output_predictions.dat", ndmin=2).shape == (len(y), 10)
    snippet = readme.split("```python\n", 1)[1].split("```", 1)[0]
    proc = subprocess.run([sys.executable, "-c", snippet + "np.save('csim.npy', csim)\n"], cwd=out, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"of {len(y)} rows" in proc.stdout
    csim = np.load(out / "csim.npy")
    assert float(np.mean(csim.argmax(1) == y)) == pytest.approx(rec.metrics["csim_accuracy"], abs=0)
    # the folder alone gives the recorded accuracy (before, it held no labels: only agreement with Keras was printed)
    np.testing.assert_array_equal(np.loadtxt(out / "hls4ml_prj/tb_data/tb_labels.dat", dtype=int), y)
    printed = float(proc.stdout.split("C simulation accuracy", 1)[1].split()[0])
    assert printed == pytest.approx(rec.metrics["csim_accuracy"], abs=0)
    assert f"the accuracy printed is the recorded `csim_accuracy` ({rec.metrics['csim_accuracy']:.4f})" in readme
    # what made it (before, no seed, commit, versions, data or training settings)
    flat = " ".join(readme.split())
    assert f"Trained with seed `{exp.seed + rec.number}`" in flat and "dse at git commit `" in flat, flat
    assert f"digest `{StudyRecords(study).dataset_digest()}`" in flat and "optuna " in flat and "hls4ml " in flat
    assert f"{exp.training.epochs} epochs, batch size {exp.training.batch_size}" in flat

    # the README's g++ testbench (hls4ml's <project>_test.cpp) builds as written and gives the same outputs (probe 16:
    # before, the README gave no command, and the obvious one ran without weights: "file weights/w3.txt does not exist")
    build = next(line for line in readme.splitlines() if line.startswith("g++ "))
    prj = out / "hls4ml_prj"
    done = subprocess.run(build, shell=True, cwd=prj, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    done = subprocess.run(["./csim_tb"], cwd=prj, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and "does not exist" not in done.stdout + done.stderr, done.stdout[-2000:]
    tb = np.loadtxt(prj / "tb_data/csim_results.log", ndmin=2)  # printed with 6 significant digits
    np.testing.assert_allclose(tb, csim, rtol=1e-5, atol=1e-6)
    assert (tb.argmax(1) == csim.argmax(1)).all()
    assert "Latency: not measured: the EBOPs estimate gives no cycles" in readme


def test_export_refuses_a_failed_trial(tiny_study, tmp_path):
    exp, _, study = tiny_study
    failed = next(t.number for t in study.trials if t.state.name == "FAIL")
    result = runner.invoke(app, ["export", exp.name, "--trial", str(failed), "--storage", exp.storage_url, "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "ExportError" in result.output and "export a COMPLETE trial" in result.output
    # from Python, a front_frame cell (a NumPy integer) is a trial number (probe 33: a TypeError); a bool is not
    from dse.exceptions import ExportError
    from dse.export import export_design

    with pytest.raises(ExportError, match="export a COMPLETE trial"):
        export_design(study, exp.storage_url, np.int64(failed), tmp_path / "py")
    with pytest.raises(TypeError, match="number: expected int, got bool"):
        export_design(study, exp.storage_url, True, tmp_path / "py")


FAILING_BACKEND = """
from dse.resources import Figure, ResourceBackend, ResourceReport, register_backend


@register_backend
class LicenceDown(ResourceBackend):
    \"\"\"A user's backend whose tool is down: every measurement fails, after the trial's conversion.\"\"\"
    name = "licence_down"
    sources = ("licence-down",)
    figures = ("lut",)

    def measure(self, design):
        raise RuntimeError("the licence server at 127.0.0.1:1 does not answer")
"""


def test_export_of_a_failed_trial_whose_model_reached_conversion(tiny_study, tmp_path, user_modules):
    """A trial that failed after its conversion (here its resource measurement) has a good model: `--allow-failed` exports
    it, its README opening with the failure (left out by probe 16: before, every FAIL trial was refused). A trial that
    failed in training has no model, and says so."""
    import optuna

    from dse.config import load_experiment
    from dse.study import run_study
    from tests.conftest import write_experiment

    user_modules("licence_down_backend", FAILING_BACKEND)
    exp, space = load_experiment(write_experiment(
        tmp_path / "exp", name="measurement_fails", n_trials=1, hls4ml={"csim": "none"},
        space={"parameters": {"strategy": {"type": "categorical", "choices": ["Latency"]}}},
        resources={"backend": "licence_down", "backend_modules": ["licence_down_backend"]}))
    summary = run_study(exp, space, progress=False)
    assert summary.n_complete == 0 and "licence server" in " ".join(map(str, summary.failures.values())), summary.failures
    study = optuna.load_study(study_name=exp.name, storage=exp.storage_url)
    args = ["export", exp.name, "--trial", "0", "--storage", exp.storage_url, "--out", str(tmp_path / "design")]
    refused = runner.invoke(app, args)
    said = " ".join(refused.output.split())
    assert refused.exit_code == 2 and "trial 0 is FAIL: " in said and "licence server" in said, said
    assert "export a COMPLETE trial (see `dse status`) or, as it failed after its conversion" in said and "--allow-failed" in said
    assert not (tmp_path / "design").exists()

    done = runner.invoke(app, [*args, "--allow-failed"])
    assert done.exit_code == 0, done.output
    out = tmp_path / "design"
    for name in ("model.keras", "hls4ml_config.yaml", "preprocessing.json", "hls4ml_prj/firmware/myproject.cpp"):
        assert (out / name).is_file(), name
    readme = (out / "README.md").read_text()
    reason = StudyRecords(study).trial(0).fail_reason
    assert f"**Failed**: this trial is FAIL ({reason})" in readme and "licence server" in reason
    # what it measured before the failure (the EBOPs estimate), nothing from the backend that failed
    assert "| keras_accuracy |" in readme and "| ebops |" in readme and "licence-down" not in readme
    assert "Pareto front (other trials dominate it)" not in readme

    # a trial that failed in training (diverged) logged no model: --allow-failed cannot help, and says why (before: "missing
    # from its artifact store ... copy the study's run directory's mlartifacts/", as if the store were incomplete)
    exp, _, study = tiny_study
    diverged = next(t.number for t in study.trials if t.state.name == "FAIL")
    result = runner.invoke(app, ["export", exp.name, "--trial", str(diverged), "--storage", exp.storage_url,
                                 "--out", str(tmp_path / "diverged"), "--allow-failed"])
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and "it stopped before its conversion, so it logged no model to export" in said, said
    assert "TrainingDivergedError" in said and "--allow-failed" not in said  # probe 18: before, it suggested the option
    assert "copy the study's run directory" not in said, said


def test_export_folder_is_new_empty_or_an_earlier_export(tiny_study, tmp_path, caplog):
    """Exporting into an earlier export replaces all of it (no `rtl/` of another trial stays); a folder of the user's
    files or a file is refused with a one-line error, and nothing in it is touched."""
    import logging

    exp, _, study = tiny_study
    complete = [t.number for t in study.trials if t.state.name == "COMPLETE"][:2]
    out = tmp_path / "design"
    args = ["export", exp.name, "--storage", exp.storage_url, "--out", str(out)]
    assert runner.invoke(app, [*args, "--trial", str(complete[0])]).exit_code == 0
    (out / "rtl").mkdir()  # as a distributed_arithmetic trial's export leaves it
    (out / "rtl" / "myproject.v").write_text("module m; endmodule\n")
    (out / "notes.txt").write_text("mine\n")
    # files added inside the export since (a build's outputs) are not deleted unasked; before, they went silently
    result = runner.invoke(app, [*args, "--trial", str(complete[-1])])
    assert result.exit_code == 2, result.output
    assert "with 1 file(s) added since (rtl/myproject.v)" in result.output and "--overwrite" in result.output
    assert (out / "rtl" / "myproject.v").is_file()
    result = runner.invoke(app, [*args, "--trial", str(complete[-1]), "--overwrite"])
    assert result.exit_code == 0, result.output
    assert not (out / "rtl").exists(), "an earlier export's RTL must not stay beside another trial's design"
    assert (out / "notes.txt").read_text() == "mine\n", "files an export does not write are left alone"
    marker = (out / ".dse-export").read_text().splitlines()
    assert marker[0] == f"{exp.name} trial {complete[-1]}"
    assert any(line.endswith("  hls4ml_prj/tb_data/tb_input_features.dat") for line in marker), marker
    # an unchanged export is replaced without --overwrite, and another trial's is named (probe 16: before, silently)
    with caplog.at_level(logging.WARNING, logger="dse.export._export"):
        assert runner.invoke(app, [*args, "--trial", str(complete[0])]).exit_code == 0
    assert f"replacing the export of {exp.name} trial {complete[-1]} in {out} with {exp.name} trial {complete[0]}" in caplog.text

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("x")
    result = runner.invoke(app, ["export", exp.name, "--storage", exp.storage_url, "--out", str(mine), "--trial", str(complete[0])])
    assert result.exit_code == 2 and "ExportError" in result.output and "is not empty (thesis.tex)" in result.output, result.output
    assert sorted(p.name for p in mine.iterdir()) == ["thesis.tex"]
    result = runner.invoke(app, ["export", exp.name, "--storage", exp.storage_url, "--out", str(mine / "thesis.tex"),
                                 "--trial", str(complete[0])])
    assert result.exit_code == 2 and "is a file, not a folder" in result.output, result.output


def test_export_distributed_arithmetic_writes_rtl_yosys_reads(trained_design_parts, digits_splits, tmp_path):
    """A one-trial study recorded as `dse run` records it (the trained DA design of conftest, its artifacts in MLflow)."""
    import shutil
    import subprocess

    import numpy as np
    import optuna

    from dse.config import load_experiment
    from dse.export import export_design
    from dse.store import StudyRecords, record_trial_params, record_trial_result, record_trial_run
    from dse.study._storage import open_study
    from dse.tracking import StudyTracker, TrialRunLogger
    from dse.trial import layer_sizes, resolve_reuse_factors
    from dse.trial._hls import conversion_record, hls4ml_config
    from tests.conftest import write_experiment

    _, params, model, ebops = trained_design_parts
    exp, space = load_experiment(write_experiment(tmp_path / "exp", name="da", n_trials=1))  # finished: its front is final
    params = resolve_reuse_factors(params, layer_sizes(exp.model, 64, 10), exp.hls4ml)
    exp.resolved_run_dir.mkdir(parents=True)
    study = open_study(exp, optuna.samplers.RandomSampler(seed=0))
    tracker = StudyTracker(exp.tracking_uri, exp.name, artifact_location=(exp.resolved_run_dir / "mlartifacts").as_uri())
    parent = tracker.study_run(exp.name, exp.model_dump(mode="json"))
    records = StudyRecords(study)
    records.set_tracking(parent, exp.tracking_uri)
    records.save_experiment(exp, space)
    trial = study.ask()
    record_trial_params(trial, params, {})
    run_id = tracker.trial_run(parent, exp.name, trial.number, params, [])
    record_trial_run(trial, run_id)
    logger = TrialRunLogger(exp.tracking_uri, run_id)
    model.save(tmp_path / "model.keras")
    logger.log_artifact(tmp_path / "model.keras")
    logger.log_dict(conversion_record(hls4ml_config(model, params, exp.hls4ml), exp.hls4ml), "hls4ml_config.yaml")
    logger.log_dict(digits_splits.preprocessing.to_json(), "preprocessing.json")
    acc = float(np.mean(model.predict(digits_splits.X_test, verbose=0).argmax(1) == digits_splits.y_test))
    # the seconds a trial of a large design records on a slow machine: the export announces its two da4ml solves
    metrics = {"keras_accuracy": acc, "csim_accuracy": acc, "ebops": ebops, "lut": ebops, "dsp": 0.0,
               "seconds_convert": 0.4, "seconds_resources_da4ml": 30.0}
    tags = {"lut_source": "da4ml", "dsp_source": "da4ml", "strategy": params.strategy}
    record_trial_result(trial, metrics, tags)
    study.tell(trial, [acc, ebops])
    tracker.finish_trial_run(run_id, "COMPLETE")

    result = export_design(study, exp.storage_url, 0, tmp_path / "design")
    assert result.rtl_dir is not None
    files = (result.rtl_dir / "files.txt").read_text().split()
    assert files and all((result.rtl_dir / f).is_file() for f in files)
    readme = result.readme.read_text()
    assert "synth_xilinx -family xcup" in readme and "-top dse_top" in readme and "| lut | " in readme
    assert "Ports: `dse_top` is the pipelined logic (clock `clk`); `dse_top_wrapper` takes all inputs packed in one bus `model_inp[" in readme
    assert "`build_vivado_prj.tcl` (Vivado" in readme and "Yosys has no family" not in readme
    assert "On the study's Pareto front." in readme and "re-measured" not in readme
    # which design the LUTs describe (probe 43: read as the figures of the HLS project the Build section builds)
    assert "The LUTs of da4ml and Yosys describe `rtl/` (da4ml's logic of the whole network); `hls4ml_prj/` is hls4ml's own" in readme
    assert "checked against the Keras model as `da4ml_bit_exact_fraction`" in readme
    # re-measured by `dse synthesize`: the README names the precise front it is on too (before: only the estimates' front)
    records.store_measurement("da4ml:x", {"metrics": {"da4ml_lut": 100.0}, "tags": {"da4ml_lut_source": "da4ml"}})
    records.mark_measured("da4ml", 0, "da4ml:x")
    from typer.testing import CliRunner

    from dse.cli import app
    from dse.export import expected_export_seconds
    from dse.store import TrialRecord

    assert expected_export_seconds(TrialRecord.of(study.trials[0])) == pytest.approx(30.4)
    import dataclasses

    rec = TrialRecord.of(study.trials[0])
    latency = dataclasses.replace(rec, params=rec.params.model_copy(update={"strategy": "Latency"}))
    assert expected_export_seconds(latency) is None, "hls4ml converts a Latency design in seconds: nothing to announce"
    done = CliRunner().invoke(app, ["export", "da", "--storage", exp.storage_url, "--trial", "0", "--out", str(tmp_path / "design2")])
    assert done.exit_code == 0, done.output
    # before, nothing was said until the export ended (minutes for a design of many inputs: probe 41)
    assert " ".join(done.output.split()).startswith(
        "trial 0 is a distributed_arithmetic design: its export solves it with da4ml twice (hls4ml's conversion, then its "
        "RTL), about 30 s by the trial's own timings"), done.output
    again = (tmp_path / "design2" / "README.md").read_text()
    assert "On the study's Pareto front, and on the front of its re-measured da4ml figures." in again, again[:600]
    if shutil.which("yosys"):
        done = subprocess.run(
            ["yosys", "-q", "-p", f"read_verilog -sv {' '.join(files)}; hierarchy -check -top dse_top"],
            cwd=result.rtl_dir, capture_output=True, text=True, timeout=300, check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]


def test_export_standing_gives_the_bound_a_trial_broke_when_it_finished():
    """After a budget was relaxed (lut <= 50000 -> 100000), a trial told infeasible stays so: the README gives the bound it
    broke, from Optuna's stored constraint value, not the current one (which it meets)."""
    from dse.config import ConstraintConfig
    from dse.export._export import _standing
    from dse.store import TrialRecord

    r = TrialRecord(number=0, state="COMPLETE", values=[0.9, 77742.0], params=None, pinned=[], metrics={"lut": 77742.0},
                    tags={}, run_id=None, fail_reason=None, constraints={"lut_max": 27742.0})
    assert _standing(None, r, [ConstraintConfig(metric="lut", max=100000)]) == (
        "**Infeasible**: when it finished it broke the study's constraints: lut 77,742 > max 50,000 (the study's constraints "
        "now: lut <= 100000). It is not on the study's Pareto front.")


def test_export_standing_of_a_running_study_says_the_front_is_as_it_stood(tmp_path):
    """Probe 36: an export made while the study ran said "On the study's Pareto front." of a trial the finished study
    dominates. A study with trials running, or fewer evaluated than its n_trials, is said to be so."""
    import optuna

    from dse.config import load_experiment
    from dse.export._export import _standing
    from dse.store import StudyRecords, TrialRecord
    from tests.conftest import write_experiment

    exp, _ = load_experiment(write_experiment(tmp_path, n_trials=3))
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.set_user_attr("experiment", exp.model_dump(mode="json"))  # as StudyRecords.save_experiment stores it
    study.add_trial(optuna.trial.create_trial(values=[0.9, 100.0]))
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.RUNNING))
    first = TrialRecord.of(study.trials[0])
    assert _standing(study, first, []) == ("On the study's Pareto front as it stood at this export (1 of its n_trials 3 "
                                           "trials evaluated, 1 running).")
    study.add_trial(optuna.trial.create_trial(values=[0.95, 90.0]))  # the running one's result, say
    study.add_trial(optuna.trial.create_trial(values=[0.8, 10.0]))
    assert StudyRecords(study).experiment().n_trials == 3
    said = _standing(study, first, [])
    assert said == "Not on the study's Pareto front as it stood at this export (3 of its n_trials 3 trials evaluated, " \
                   "1 running) (other trials dominate it).", said
    study = optuna.create_study(directions=["maximize", "minimize"])  # finished: no clause
    study.set_user_attr("experiment", exp.model_dump(mode="json"))
    for values in ([0.9, 100.0], [0.95, 90.0], [0.8, 10.0]):
        study.add_trial(optuna.trial.create_trial(values=values))
    assert _standing(study, TrialRecord.of(study.trials[1]), []) == "On the study's Pareto front."


def test_export_readme_of_a_failed_trial_says_what_it_lacks_and_why(tiny_study):
    """Probe 18: a failed trial's README said "the EBOPs estimate gives no cycles" whatever was missing, left out
    da4ml's emulation accuracy (measured before a Yosys timeout), and showed an empty table, unexplained, for a trial
    stopped before it logged its figures; a trial whose conversion failed was exported (and failed half-way)."""
    from dse.export._export import _conversion_failed, _readme
    from dse.store import TrialRecord

    exp, _, study = tiny_study
    records = StudyRecords(study)

    def readme(state, metrics, tags):
        r = TrialRecord(number=0, state=state, values=None, params=None, pinned=[], metrics=metrics, tags=tags, run_id="r0",
                        fail_reason="ToolFailedError: yosys ran past ..." if state == "FAIL" else None, constraints={})
        return " ".join(_readme("s", r, records, exp.hls4ml, None, None, 0).split())

    yosys_timeout = readme("FAIL", {"ebops": 9000.0, "lut": 4500.0, "da4ml_accuracy": 0.6389, "da4ml_bit_exact_fraction": 1.0},
                           {"lut_source": "ebops-estimate"})
    assert "| da4ml_accuracy | 0.6389 | test split (da4ml's bit-exact emulation) |" in yosys_timeout
    assert "Latency: not measured: the trial failed before a resource backend reported it" in yosys_timeout
    assert "EBOPs estimate gives no cycles" not in yosys_timeout
    assert "the study recorded no figure of this trial" in readme("FAIL", {}, {})
    # a trial whose measurements all succeeded (figure_backend is tagged then) and that failed later: the usual reason
    after = readme("FAIL", {"ebops": 9000.0, "lut": 4500.0}, {"lut_source": "ebops-estimate", "figure_backend": "ebops"})
    assert "Latency: not measured: the EBOPs estimate gives no cycles" in after
    users = readme("COMPLETE", {"lut": 6229.0}, {"lut_source": "partial-fit", "figure_backend": "partial"})
    assert "Latency: not measured: its resource backend (partial) reported none" in users
    assert "Latency: not measured: the EBOPs estimate gives no cycles" in readme("COMPLETE", {"lut": 1.0}, {"lut_source": "ebops-estimate"})
    # da4ml's stages are cut by its delay cutoff, not by the clock (probe 31: "5 cycles = 10.0 ns at 2.0 ns", unqualified)
    r = TrialRecord(number=0, state="COMPLETE", values=None, params=None, pinned=[], metrics={"lut": 900.0, "latency_cycles": 5.0},
                    tags={"lut_source": "da4ml", "latency_cycles_source": "da4ml"}, run_id="r0", fail_reason=None, constraints={})
    da = " ".join(_readme("s", r, records, exp.hls4ml.model_copy(update={"clock_period": 2.0}), Path("rtl"), None, 0,
                          latency_cutoff=3.0).split())
    assert ("Latency: 5 cycles = 10.0 ns at 2.0 ns: the pipeline stages of the da4ml RTL below (`rtl/`; the HLS project's "
            "latency comes from the HLS report). da4ml cuts a stage every 3 of its delay units "
            "(`resources.da4ml_latency_cutoff`) and does not read the clock period, so the ns hold only if each stage meets "
            "the clock.") in da, da

    # under the EBOPs estimate, a ReuseFactor above 1 divides the DSP count only: the LUT figure may overstate the
    # built design's, and the README says so (the review of probe 31: it said the DSP count ignored it too)
    from dse.config import TrialParams

    def with_rf(strategy, reuse_factor, lut_source="ebops-estimate"):
        r = TrialRecord(number=0, state="COMPLETE", values=None, params=TrialParams(strategy=strategy, reuse_factor=reuse_factor),
                        pinned=[], metrics={"lut": 900.0}, tags={"lut_source": lut_source}, run_id="r0", fail_reason=None,
                        constraints={})
        return " ".join(_readme("s", r, records, exp.hls4ml, None, None, 0).split())

    assert ("The EBOPs estimate's LUT count does not model ReuseFactor (its DSP count is divided by it): with ReuseFactor 4, "
            "each multiplier serves several products, so the HLS report's LUT count may be well below the estimate "
            "above.") in with_rf("Resource", 4)
    assert "does not model ReuseFactor" not in with_rf("Latency", 1)
    assert "does not model ReuseFactor" not in with_rf("Resource", 4, lut_source="vitis")  # a report's own LUT count
    # the figures as the report's tables write them: da4ml's half LUT rounds as there (the review: 1,764 here, 1,765 there)
    assert "| lut | 1,765 | da4ml |" in readme("COMPLETE", {"lut": 1764.5}, {"lut_source": "da4ml"})

    # the step times a trial logs (seconds_<step>, even of a step that raised) tell a conversion that failed
    assert _conversion_failed({"seconds_train": 3.0, "seconds_save": 0.1, "seconds_convert": 0.2})
    assert not _conversion_failed({"seconds_train": 3.0, "seconds_convert": 0.2, "seconds_resources_ebops": 0.0})
    assert not _conversion_failed({"seconds_train": 3.0}) and not _conversion_failed({})
    assert not _conversion_failed({"seconds_convert": 0.2, "seconds_compile": 2.0})  # trials before 2026-11-21: csim first


def _copy_sqlite(src: Path, dst: Path) -> None:
    """A consistent copy of the SQLite database ``src``, whatever its WAL holds."""
    import sqlite3

    a, b = sqlite3.connect(src), sqlite3.connect(dst)
    a.backup(b)
    a.close()
    b.close()


def test_export_without_the_study_mlflow_store_is_one_error_line(tiny_study, tmp_path):
    """A run directory copied without (all of) its MLflow store: one `error:` line naming the store or artifact store it
    looked in and the fix, no empty mlflow.db created, no --out; before, a MlflowException traceback ("Run with id=...
    not found") and an empty mlflow.db beside the copied optuna.db, or "only trials that reached conversion can be
    exported" for a trial that did convert."""
    exp, _, study = tiny_study
    rec = _best(study)
    copy = tmp_path / "copy"
    copy.mkdir()
    _copy_sqlite(exp.resolved_run_dir / "optuna.db", copy / "optuna.db")
    out = tmp_path / "design"
    args = ["export", exp.name, "--trial", str(rec.number), "--storage", f"sqlite:///{copy / 'optuna.db'}", "--out", str(out)]

    result = runner.invoke(app, args)  # optuna.db alone
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ExportError:") and "Traceback" not in result.output, result.output
    said = " ".join(result.output.split())
    assert f"MLflow store {copy / 'mlflow.db'} is missing" in said and "copy mlflow.db and mlartifacts/" in said, said
    assert rec.run_id in said
    assert not (copy / "mlflow.db").exists(), "a missing store must not be created empty"
    assert not out.exists()

    # the store read where it is (--tracking-uri): the export works from the copied optuna.db alone
    result = runner.invoke(app, [*args, "--tracking-uri", f"sqlite:///{exp.resolved_run_dir / 'mlflow.db'}"])
    assert result.exit_code == 0, result.output
    assert (out / "model.keras").is_file() and not (copy / "mlflow.db").exists()
    shutil.rmtree(out)

    _copy_sqlite(exp.resolved_run_dir / "mlflow.db", copy / "mlflow.db")  # the store without mlartifacts/
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert "are missing from its artifact store at " + str(copy / "mlartifacts") in said, said
    assert "copy the study's run directory's mlartifacts/" in said and "only trials that reached conversion" not in said
    assert not out.exists()

    other = tmp_path / "other"  # an MLflow store that is not the study's (an incomplete copy): the run is not in it
    other.mkdir()
    _copy_sqlite(copy / "optuna.db", other / "optuna.db")
    MlflowClient(f"sqlite:///{other / 'mlflow.db'}").search_experiments()
    result = runner.invoke(app, [*args[:4], "--storage", f"sqlite:///{other / 'optuna.db'}", "--out", str(out)])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    said = " ".join(result.output.split())
    assert f"the MLflow store sqlite:///{other / 'mlflow.db'} has no run {rec.run_id}" in said, said
    assert not out.exists()


def test_the_mlflow_run_alone_tells_why_a_failed_trial_has_nothing_to_export(tmp_path):
    """Where a trial's Optuna record lacks its step times (the Python API's ``load_trial_model`` with a run id), its MLflow
    run's tags and step times decide, in a real store: failed in its conversion (its Keras model named), stopped before
    it, and a run whose artifact folder is gone (a store copied without mlartifacts/, told to copy it)."""
    from dse.export import ExportError
    from dse.export._export import _run_artifacts

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("e", artifact_location=(tmp_path / "mlartifacts").as_uri())
    (tmp_path / "model.keras").write_text("a model")

    def run(metrics: dict, artifacts: tuple = (), state: str = "FAIL") -> str:
        run_id = client.create_run(experiment, tags={"state": state, "error": "ConversionError: no such layer"}).info.run_id
        for key, value in metrics.items():
            client.log_metric(run_id, key, value)
        for name in artifacts:
            client.log_artifact(run_id, str(tmp_path / name))
        return run_id

    failed_in_conversion = run({"seconds_train": 3.0, "seconds_convert": 0.2}, ("model.keras",))
    with pytest.raises(ExportError) as e:
        _run_artifacts(client, failed_in_conversion)
    said = str(e.value)
    assert f"MLflow run {failed_in_conversion}'s trial failed in its conversion (ConversionError: no such layer)" in said
    assert f"mlflow artifacts download --run-id {failed_in_conversion} --artifact-path model.keras" in said, said

    stopped_before = run({"seconds_train": 3.0}, ("model.keras",))
    with pytest.raises(ExportError, match="its trial stopped before its conversion, which logs them"):
        _run_artifacts(client, stopped_before)

    diverged = run({"seconds_train": 3.0})  # nothing logged, so no artifact folder at all: still no model, no copy to make
    with pytest.raises(ExportError, match="its trial stopped before its conversion, which logs them"):
        _run_artifacts(client, diverged)
    untimed = run({"seconds_total": 9.0})  # an earlier dse logged no step times: its folder may be lost in a copy
    with pytest.raises(ExportError, match="that folder does not exist.*copy the study's run directory's mlartifacts/"):
        _run_artifacts(client, untimed)

    # a trial the driver stopped (time limit, Ctrl-C, a lost worker) reported nothing: no step times, no folder. Before,
    # it was told to copy mlartifacts/ (probe 20)
    for error in ("TrialTimeoutError: trial 0 ran past ray.trial_timeout_s=12",
                  "TrialInterruptedError: the driver stopped (SIGTERM) while trial 8 ran; its parameters were re-enqueued"):
        timed_out = client.create_run(experiment, tags={"state": "FAIL", "error": error,
                                                        "error_type": error.split(":")[0]}).info.run_id
        with pytest.raises(ExportError) as e:
            _run_artifacts(client, timed_out)
        assert f"its trial was stopped before its conversion, which logs them ({error})" in str(e.value)
        assert "mlartifacts" not in str(e.value)

    measured = run({"seconds_train": 3.0, "seconds_convert": 0.2, "seconds_resources_ebops": 0.0}, ("model.keras",))
    with pytest.raises(ExportError, match=r"hls4ml_config.yaml of MLflow run .* is missing .*the run reached conversion"):
        _run_artifacts(client, measured)  # a FAIL trial measured after its conversion: its store lost a file


def test_reexport_refuses_to_overwrite_edited_files(tiny_study, tmp_path):
    """The export's README says to edit hls4ml_prj/build_opt.tcl: a re-export without --overwrite refuses when a file it
    wrote was changed since (the manifest's SHA-256 differs), naming it; with --overwrite it replaces it. Before, the
    edits were silently lost (only added files were noticed)."""
    exp, _, study = tiny_study
    rec = _best(study)
    out = tmp_path / "design"
    args = ["export", exp.name, "--trial", str(rec.number), "--storage", exp.storage_url, "--out", str(out)]
    assert runner.invoke(app, args).exit_code == 0
    tcl, readme = out / "hls4ml_prj" / "build_opt.tcl", out / "README.md"
    original_readme = readme.read_text()
    with tcl.open("a") as f:
        f.write("# my edit\n")
    with readme.open("a") as f:
        f.write("notes\n")
    edited_tcl = tcl.read_text()
    (out / "mine.txt").write_text("kept\n")  # a file of the user's at the top: never deleted

    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert "with 2 file(s) changed since (README.md, hls4ml_prj/build_opt.tcl)" in said, said
    assert "--overwrite" in said and "another --out" in said
    assert tcl.read_text() == edited_tcl and readme.read_text().endswith("notes\n")

    result = runner.invoke(app, [*args, "--overwrite"])
    assert result.exit_code == 0, result.output
    assert "# my edit" not in tcl.read_text() and readme.read_text() == original_readme
    assert (out / "mine.txt").read_text() == "kept\n"
    assert runner.invoke(app, args).exit_code == 0, "an unchanged export is replaced without --overwrite"

    # an export by an earlier dse: its manifest lists bare paths, or nothing (probe 15: edits were then lost unasked)
    import os

    marker = out / ".dse-export"
    first, *manifest = marker.read_text().splitlines()
    for older in ([first, *(line.partition("  ")[2] for line in manifest)], [first]):
        marker.write_text("\n".join(older) + "\n")
        t = marker.stat().st_mtime
        with tcl.open("a") as f:
            f.write("# my edit\n")
        os.utime(tcl, (t + 5, t + 5))  # edited after the export
        result = runner.invoke(app, args)
        said = " ".join(result.output.split())
        assert result.exit_code == 2 and "1 file(s) changed since (hls4ml_prj/build_opt.tcl)" in said, said
        assert "# my edit" in tcl.read_text()
        assert runner.invoke(app, [*args, "--overwrite"]).exit_code == 0
    # an export of a dse that marked nothing is named as such
    marker.unlink()
    result = runner.invoke(app, args)
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and "looks like the export of a dse before 2026-12-04" in said and "move it away" in said, said


def test_the_readme_seed_of_a_trial_without_a_seed_tag_is_worked_out_and_says_so(tmp_path):
    """Probe 39: a trial of a dse before the `seed` tag was exported with seed `-`, and a harvested checkpoint's README
    said its seed was the study's plus its own number (it trains with its parent's)."""
    from dse.config import load_experiment
    from dse.export._export import _seed_text
    from dse.store import TrialRecord
    from tests.conftest import write_experiment

    def record(number, harvested_from, tags):
        return TrialRecord(number=number, state="COMPLETE", values=None, params=None, pinned=[], metrics={}, tags=tags,
                           run_id=None, fail_reason=None, harvested_from=harvested_from)

    exp, _ = load_experiment(write_experiment(tmp_path, seed=7))
    tagged = record(3, None, {"seed": "10"})
    assert _seed_text(exp, tagged) == "`10` (the study's `seed` plus the trial's number)"
    old = record(3, None, {})
    assert _seed_text(exp, old).startswith("`10` (the study's `seed` plus the trial's number; worked out from the experiment")
    harvested = record(6, 0, {})
    assert harvested.trained_by == 0 and old.trained_by == 3
    assert _seed_text(exp, harvested).startswith("`7` (the study's `seed` plus the number of trial 0, whose checkpoint this is;")


def test_the_readme_reads_the_experiment_the_trial_was_built_with(tmp_path):
    """Probe 39: the README's Python line for the raw test rows read the study's latest experiment, which after a change
    of `dataset` (--allow-changed) is another split than the one the trial was measured on."""
    import optuna

    from dse.config import load_experiment
    from dse.export._export import _experiment_call
    from tests.conftest import write_experiment

    exp, space = load_experiment(write_experiment(tmp_path))
    study = optuna.create_study(study_name="calls", directions=["maximize", "minimize"])
    records = StudyRecords(study)
    records.save_experiment(exp, space)
    assert _experiment_call(records, None, 0) == ".experiment()"  # never changed: the plain call, as before
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL))
    later = exp.model_copy(update={"dataset": exp.dataset.model_copy(update={"test_fraction": 0.3})})
    records.save_experiment(later, space, None, records.experiment_diff(later, space))
    for version, trial, want in (("1", 0, 0.2), (None, 0, 0.2), (None, 1, 0.3), ("2", 0, 0.3)):
        call = _experiment_call(records, version, trial)
        assert eval(f"records{call}").dataset.test_fraction == want, (call, want)  # the line, run as a user runs it
