"""`dse report` and `dse compare` on real studies; MLflow conventions; a moved run directory."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from dse.cli import app
from dse.store import StudyRecords
from tests.report.helpers import external_urls, screenshot

pytestmark = pytest.mark.shared_ray  # in-process studies share one local Ray (tests/conftest.py)

runner = CliRunner()


def _children(client: MlflowClient, parent_run_id: str):
    exp_id = client.get_run(parent_run_id).info.experiment_id
    return client.search_runs([exp_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent_run_id}'")


def test_report_is_self_contained_and_renders(tiny_study, tmp_path):
    exp, summary, study = tiny_study
    out = tmp_path / "report"
    result = runner.invoke(app, ["report", exp.name, "--storage", exp.storage_url, "--out", str(out)])
    assert result.exit_code == 0, result.output
    html_path = out / "report.html"
    html = html_path.read_text()
    assert external_urls(html) == []
    assert html.count('src="data:image/png;base64,') >= 6
    for needle in ("Pareto-front members", "Reference point", "TrainingDivergedError", "dse.version.hls4ml", "ebops-estimate"):
        assert needle in html, needle
    for t in study.best_trials:
        assert StudyRecords(study).trial(t.number).run_id in html
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert {"front_csim_val_accuracy_vs_lut.png", "front_csim_val_accuracy_vs_ebops.png", "hypervolume.png",
            "importances.png", "parallel_coordinates.png", "training_curves.png"} <= set(pngs)
    shot = screenshot(html_path, tmp_path / "shot.png", tmp_path)
    assert shot.size > 0 and shot.shape[0] >= 1000
    rgb = shot[..., :3].reshape(-1, 3)
    assert len(np.unique(rgb[:: max(1, len(rgb) // 200000)], axis=0)) > 50, "the screenshot is (nearly) one colour"
    client = MlflowClient(exp.tracking_uri)
    logged = {a.path for a in client.list_artifacts(summary.parent_run_id, "report")}
    assert "report/report.html" in logged and "report/hypervolume.png" in logged


def test_mlflow_conventions(tiny_study):
    exp, summary, study = tiny_study
    client = MlflowClient(exp.tracking_uri)
    parent = client.get_run(summary.parent_run_id)
    for run in [parent, *_children(client, summary.parent_run_id)]:
        tags = run.data.tags
        for pkg in ("dse", "hgq2", "hls4ml", "keras", "tensorflow", "da4ml", "optuna", "ray", "mlflow", "numpy", "scikit-learn"):
            assert tags.get(f"dse.version.{pkg}") not in (None, "missing"), (pkg, run.info.run_name)
        if shutil.which("yosys"):
            assert tags.get("dse.version.yosys", "").split(".")[0].isdigit(), tags.get("dse.version.yosys")
        assert len(tags.get("dse.git_commit", "")) == 40  # the tests run from a checkout
        assert tags.get("dse.git_dirty") in ("true", "false")
        if tags["dse.git_dirty"] == "true":  # the changes that ran are kept on the parent run
            diff = client.download_artifacts(summary.parent_run_id, f"source/{tags['dse.git_diff']}.diff")
            assert hashlib.sha256(Path(diff).read_bytes()).hexdigest()[:16] == tags["dse.git_diff"]
        else:
            assert "dse.git_diff" not in tags
    assert parent.data.tags["dse.storage"] == "default"
    for run in _children(client, summary.parent_run_id):  # what decided the trial's draw, and which experiment built it
        assert run.data.tags["dse.max_concurrent_trials"] == "2" and run.data.tags["dse.experiment_version"] == "1"
    space_text = Path(client.download_artifacts(summary.parent_run_id, "search_space.yaml")).read_text()
    assert space_text == exp.search_space.read_text()
    for run in _children(client, summary.parent_run_id):
        if run.data.tags["state"] != "COMPLETE":
            continue
        (ds_input,) = run.inputs.dataset_inputs
        ds = ds_input.dataset
        profile = json.loads(ds.profile)
        assert ds.name == "digits" and len(ds.digest) == 16
        assert profile["shape"] == [1797, 64] and sum(profile["class_counts"].values()) == 1797
        pre = json.loads(Path(client.download_artifacts(run.info.run_id, "preprocessing.json")).read_text())
        assert len(pre["feature_mean"]) == len(pre["feature_scale"]) == 64 and pre["class_names"] == [str(i) for i in range(10)]
        betas = client.get_metric_history(run.info.run_id, "epoch_beta")
        assert [m.step for m in sorted(betas, key=lambda m: m.step)] == list(range(exp.training.epochs))
        assert betas[0].value == float(run.data.params["beta"])


def _download_everything(tracking_uri: str, dst: Path) -> int:
    client = MlflowClient(tracking_uri)
    n = 0
    for e in client.search_experiments():
        for run in client.search_runs([e.experiment_id]):
            path = client.download_artifacts(run.info.run_id, "", str(dst / run.info.run_id))
            n += sum(1 for p in Path(path).rglob("*") if p.is_file())
    return n


def test_moved_run_dir_keeps_working(tiny_study, tmp_path):
    """Move the whole run directory away (original path gone): dse commands and MLflow still find every artifact."""
    import mlflow

    exp, summary, study = tiny_study
    old = exp.resolved_run_dir
    new = tmp_path / "moved" / old.name
    new.parent.mkdir()
    before = _download_everything(exp.tracking_uri, tmp_path / "before")
    shutil.move(old, new)
    try:
        assert not old.exists()
        storage = f"sqlite:///{new / 'optuna.db'}"
        result = runner.invoke(app, ["report", exp.name, "--storage", storage, "--out", str(tmp_path / "r")])
        assert result.exit_code == 0, result.output
        assert not old.exists(), "nothing may be written to the old place (MLflow caches artifact repos per run id)"
        uri = f"sqlite:///{new / 'mlflow.db'}"
        assert _download_everything(uri, tmp_path / "after") >= before > 0
        mlflow.set_tracking_uri(uri)
        runs = mlflow.search_runs(search_all_experiments=True)
        assert all(a.startswith((new / "mlartifacts").as_uri()) for a in runs["artifact_uri"])
        assert not old.exists()
    finally:
        shutil.move(new, old)
        from dse.tracking import default_store_paths, relocate_default_store

        relocate_default_store(*default_store_paths(old))  # what the next dse command would do; other tests read it directly


def test_compare_two_storages(tiny_study, tmp_path):
    """The tiny study and a copy in another folder (another SQLite storage and MLflow store)."""
    exp, summary, study = tiny_study
    copy = tmp_path / "elsewhere" / "run"
    shutil.copytree(exp.resolved_run_dir, copy, ignore=shutil.ignore_patterns("ray"))
    other = f"sqlite:///{copy / 'optuna.db'}"
    out = tmp_path / "cmp"
    result = runner.invoke(app, ["compare", f"{exp.name}@{exp.storage_url}", f"{exp.name}@{other}", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "hypervolume" in result.output and "CPU-hours" in result.output
    said = " ".join(result.output.split())
    # the same data: the one warning is that the second is a copy of the first (the same MLflow parent run)
    assert said.count("warning:") == 1 and "is a copy of study" in said, result.output
    import pandas as pd

    table = pd.read_csv(out / "compare.csv")
    assert len(table) == 2 and table["hypervolume"].iloc[0] > 0
    assert table["hypervolume"].iloc[0] == pytest.approx(table["hypervolume"].iloc[1])
    assert (table["front_size"] == len(study.best_trials)).all()
    assert (table["failed"] == summary.n_failed).all() and (table["trials"] == len(study.trials)).all()
    secs = sum(t.user_attrs["metrics"].get("seconds_total", 0) for t in study.trials)
    assert table["cpu_hours"].iloc[0] == pytest.approx(secs / 3600)
    html = (out / "compare.html").read_text()
    assert external_urls(html) == [] and html.count("data:image/png;base64,") >= 2
    # logged to both parent runs (same run id, copied store), each in its own folder; the copy's store points at the copy
    for run_dir in (exp.resolved_run_dir, copy):
        assert list((run_dir / "mlartifacts").rglob(f"{summary.parent_run_id}/artifacts/compare/compare.html")), run_dir
    copied = MlflowClient(f"sqlite:///{copy / 'mlflow.db'}").get_run(summary.parent_run_id)
    assert copied.info.artifact_uri.startswith((copy / "mlartifacts").as_uri())
    # the same study read from its MLflow experiment gives the same hypervolume
    result = runner.invoke(app, ["compare", exp.name, f"{exp.name}@{other}", "--tracking-uri", exp.tracking_uri,
                                 "--out", str(tmp_path / "cmp2"), "--no-mlflow"])
    assert result.exit_code == 0, result.output
    t2 = pd.read_csv(tmp_path / "cmp2" / "compare.csv")
    assert t2["hypervolume"].iloc[0] == pytest.approx(t2["hypervolume"].iloc[1])
    assert t2["failed"].iloc[0] == summary.n_failed


def test_report_on_a_study_without_mlflow_history(tmp_path):
    """A hand-made study written through dse.store (no trial ran): the report still renders."""
    from tests.report.synthetic import make_study

    study, storage, _ = make_study(tmp_path, n_trials=12)
    from dse.report import build_report

    res = build_report(study, storage, tmp_path / "rep", log_to_mlflow=False)
    assert external_urls(res.html.read_text()) == []

    from dse.report import front_frame

    assert sorted(front_frame(study, numbers=[11, 0])["trial"]) == [0, 11]
    with pytest.raises(ValueError, match=r"numbers: study 'synth' has no trial 12, -1; its trials are numbered 0..11"):
        front_frame(study, numbers=[0, 12, -1])  # before: an IndexError, and -1 silently the last trial


def test_report_without_the_mlflow_store_and_into_a_file(tiny_study, tmp_path, caplog):
    """A run directory copied without mlflow.db: the report renders from the Optuna study alone, warns, and creates no
    empty MLflow store; `--out` naming a file is one `error:` line."""
    exp, _, _ = tiny_study
    copy = tmp_path / "copy"
    copy.mkdir()
    import sqlite3

    src, dst = sqlite3.connect(exp.resolved_run_dir / "optuna.db"), sqlite3.connect(copy / "optuna.db")
    src.backup(dst)  # a consistent copy, whatever the WAL holds
    src.close()
    dst.close()
    storage = f"sqlite:///{copy / 'optuna.db'}"
    result = runner.invoke(app, ["report", exp.name, "--storage", storage, "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r" / "report.html").is_file() and "logged as artifacts" not in result.output
    assert not (copy / "mlflow.db").exists(), "reading a missing store must not create an empty one"
    assert "MLflow store" in caplog.text and "is missing" in caplog.text
    afile = tmp_path / "afile"
    afile.write_text("x")
    result = runner.invoke(app, ["report", exp.name, "--storage", storage, "--out", str(afile)])
    assert result.exit_code == 2 and "error:" in result.output and "is a file, not a folder" in result.output, result.output


def test_report_reads_a_moved_mlflow_store_given_by_tracking_uri(tmp_path, caplog):
    """A study whose `mlflow.tracking_uri` store was moved. Before: `dse report` created an empty store at the recorded path
    and wrote a page without curves, with no word of the fix; and no option read the store where it is now."""
    from tests.report.synthetic import make_study

    recorded, moved = tmp_path / "A" / "mlflow.db", tmp_path / "B" / "mlflow.db"
    recorded.parent.mkdir()
    _, url, exp = make_study(tmp_path, n_trials=6, name="movedstore", failures=False, mlflow={"tracking_uri": f"sqlite:///{recorded}"})
    moved.parent.mkdir()
    recorded.rename(moved)
    base = ["report", exp.name, "--storage", url]
    with caplog.at_level(logging.WARNING):
        result = runner.invoke(app, [*base, "--out", str(tmp_path / "r1")])
    assert result.exit_code == 0, result.output
    assert not recorded.exists(), "reading a missing store must not create an empty one"
    assert f"MLflow store {recorded} is missing" in caplog.text and "pass --tracking-uri" in caplog.text, caplog.text

    result = runner.invoke(app, [*base, "--out", str(tmp_path / "r2"), "--tracking-uri", f"sqlite:///{moved}"])
    assert result.exit_code == 0, result.output
    assert "logged as artifacts report/ of MLflow run " in result.output, result.output
    parent = MlflowClient(f"sqlite:///{moved}").get_run(result.output.split("MLflow run ")[1].split()[0])
    assert parent.data.tags.get("dse.role") == "study"
    assert [a.path for a in MlflowClient(f"sqlite:///{moved}").list_artifacts(parent.info.run_id, "report") if a.path.endswith(".html")]

    for wrong, said in ((tmp_path / "C" / "mlflow.db", f"no MLflow store at {tmp_path / 'C' / 'mlflow.db'}"),):
        result = runner.invoke(app, [*base, "--out", str(tmp_path / "r3"), "--tracking-uri", f"sqlite:///{wrong}"])
        assert result.exit_code == 2 and "error: ConfigError: --tracking-uri (Python: tracking_uri=):" in result.output, result.output
        assert said in " ".join(result.output.split()) and not wrong.exists(), result.output
    result = runner.invoke(app, [*base, "--out", str(tmp_path / "r3"), "--tracking-uri", str(tmp_path / "mlruns-typo")])
    assert result.exit_code == 2 and "no MLflow store at" in result.output and not (tmp_path / "mlruns-typo").exists(), result.output

    # a default store (mlflow.db beside mlartifacts/) moved while its Optuna storage stayed: read there, and its artifact
    # locations relocated as for a moved run directory (review of this change: the report's files went to the old place)
    import shutil

    d = tmp_path / "d"
    (tmp_path / "dopt").mkdir()
    _, d_url, d_exp = make_study(d, n_trials=3, name="dflt", failures=False, storage=f"sqlite:///{tmp_path / 'dopt' / 'optuna.db'}")
    moved_dir = tmp_path / "moved-run"
    shutil.move(str(d_exp.resolved_run_dir), moved_dir)
    result = runner.invoke(app, ["report", "dflt", "--storage", d_url, "--out", str(tmp_path / "r4"),
                                 "--tracking-uri", f"sqlite:///{moved_dir / 'mlflow.db'}"])
    assert result.exit_code == 0 and "logged as artifacts report/" in result.output, result.output
    assert not d_exp.resolved_run_dir.exists(), "nothing written at the store's old place"
    assert list((moved_dir / "mlartifacts").rglob("report.html"))

    other = tmp_path / "other"
    _, _, other_exp = make_study(other, n_trials=2, name="other", failures=False)
    result = runner.invoke(app, [*base, "--out", str(tmp_path / "r3"), "--tracking-uri", other_exp.tracking_uri])
    assert result.exit_code == 2 and "has no run" in result.output and "the study's MLflow parent run" in result.output, result.output
    assert not (tmp_path / "r3").exists()


def test_compare_refuses_a_study_given_twice(tiny_study, tmp_path):
    """`dse compare X X` names the repeated study instead of drawing one front over itself; nothing is written."""
    exp, _, _ = tiny_study
    out = tmp_path / "cmp"
    result = runner.invoke(app, ["compare", f"{exp.name}@{exp.storage_url}", f"{exp.name}@{exp.storage_url}", "--out", str(out)])
    text = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert f"study {exp.name} ({exp.storage_url}) is given twice; compare different studies" in text, text
    assert not out.exists()
    # the same file by another path (before: accepted, and the artifacts were logged twice to one run)
    db = exp.storage_url.removeprefix("sqlite:///")
    detour = f"sqlite:///{Path(db).parent}/../{Path(db).parent.name}/{Path(db).name}"
    result = runner.invoke(app, ["compare", f"{exp.name}@{exp.storage_url}", f"{exp.name}@{detour}", "--out", str(out)])
    assert result.exit_code == 2 and "is given twice" in " ".join(result.output.split()), result.output
    assert not out.exists()
    # from its Optuna storage and from its MLflow experiment (before: two rows of the same numbers, logged twice)
    result = runner.invoke(app, ["compare", f"{exp.name}@{exp.storage_url}", exp.name, "--tracking-uri", exp.tracking_uri,
                                 "--out", str(out)])
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and f"study {exp.name} is given twice ({exp.storage_url} and mlflow:{exp.name} are the " \
        "same study: MLflow parent run" in text, result.output
    assert not out.exists()


def test_compare_warns_of_a_copied_study(tmp_path):
    """Probe 20: a study copied into another storage (optuna.copy_study) was compared as a study of its own without a
    word, its trials counted in both fronts. It is still compared (a copy may have been continued), with a warning."""
    import optuna

    from dse.report._compare import compare_studies, load_optuna_source
    from tests.report.synthetic import make_study

    _, url, _ = make_study(tmp_path / "a", n_trials=6, name="a", failures=False)
    copy = f"sqlite:///{tmp_path}/copy.db"
    optuna.copy_study(from_study_name="a", from_storage=url, to_storage=copy)
    result = compare_studies([load_optuna_source("a", url), load_optuna_source("a", copy)], tmp_path / "cmp",
                             log_to_mlflow=False)
    assert len(result.table) == 2
    said = [w for w in result.warnings if "is a copy of study" in w]
    assert len(said) == 1 and f"study a ({copy}) is a copy of study a (" in said[0], result.warnings
    _, other, _ = make_study(tmp_path / "b", n_trials=6, name="b", failures=False)
    result = compare_studies([load_optuna_source("a", url), load_optuna_source("b", other)],
                             tmp_path / "cmp", log_to_mlflow=False)
    assert not [w for w in result.warnings if "copy" in w], result.warnings


def test_compare_warns_when_the_studies_tested_on_different_data(tiny_study, tmp_path):
    """Before, a digits study and one on a 5-feature CSV were compared side by side without a word."""
    import optuna

    exp, _, _ = tiny_study
    copy = tmp_path / "other" / "run"
    shutil.copytree(exp.resolved_run_dir, copy, ignore=shutil.ignore_patterns("ray"))
    other = f"sqlite:///{copy / 'optuna.db'}"
    st = optuna.load_study(study_name=exp.name, storage=other)
    stored = dict(st.user_attrs["experiment"])
    stored["dataset"] = {**stored["dataset"], "max_samples": 500}  # as if run on 500 samples
    st.set_user_attr("experiment", stored)
    st.set_user_attr("dataset", {**st.user_attrs["dataset"], "digest": "f" * 64})
    result = runner.invoke(app, ["compare", f"{exp.name}@{exp.storage_url}", f"{exp.name}@{other}", "--out", str(tmp_path / "c"),
                                 "--no-mlflow"])
    text = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert "warning: the studies were tested on different data" in text and "max_samples 500" in text, text
    assert "not comparable" in (tmp_path / "c" / "compare.html").read_text()
    # the same digest, named otherwise (a CSV of the same rows): the same data (before, warned of beside equal digests)
    st.set_user_attr("dataset", {**st.user_attrs["dataset"], "digest": optuna.load_study(
        study_name=exp.name, storage=exp.storage_url).user_attrs["dataset"]["digest"]})
    result = runner.invoke(app, ["compare", f"{exp.name}@{exp.storage_url}", f"{exp.name}@{other}", "--out", str(tmp_path / "c2"),
                                 "--no-mlflow"])
    assert result.exit_code == 0 and "different data" not in " ".join(result.output.split()), result.output



def test_report_of_a_study_without_a_completed_trial_says_its_fronts_are_empty(tmp_path):
    """Probe 35: the "Pareto fronts" section of a study with no completed trial was a heading over nothing."""
    import optuna

    from dse.report import build_report
    from tests.report.synthetic import make_study

    full, _, _ = make_study(tmp_path / "a", n_trials=2, seed=0, epochs=2, name="full", failures=False)
    storage = f"sqlite:///{tmp_path / 'none.db'}"
    none = optuna.create_study(study_name="none", storage=storage, directions=full.directions)
    for k in ("experiment", "search_space"):  # made by `dse run`, every trial failed
        none.set_user_attr(k, full.user_attrs[k])
    none.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL))
    html = " ".join(build_report(none, storage, tmp_path / "rep", log_to_mlflow=False).html.read_text().split())
    assert "Nothing to draw: no completed trial has an accuracy and a resource figure" in html
    # probe 36: a page made mid-study did not say so (and stayed on the parent run after the study ended)
    assert "Study short of its n_trials</b>: 1 of 2 trials evaluated and none running" in html and "in progress" not in html
    none.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.RUNNING))
    html = " ".join(build_report(none, storage, tmp_path / "rep", log_to_mlflow=False).html.read_text().split())
    assert "<b>Study in progress</b> when this page was made (" in html, html[:3000]
    assert "UTC): 1 trial(s) running, 1 of its n_trials 2 trials evaluated" in html and "page made (UTC)" in html
    html = " ".join(build_report(full, f"sqlite:///{tmp_path / 'a' / 'optuna.db'}", tmp_path / "rep2",
                                 log_to_mlflow=False).html.read_text().split())
    assert "in progress" not in html and "short of its n_trials" not in html  # a finished study


def test_report_clears_its_own_earlier_files_only(tmp_path, caplog, monkeypatch):
    """A folder used before: the earlier report's files that this one does not write (a front of a figure the study
    lacks, failures.png once nothing failed) go; the user's files stay; no failures figure when nothing failed."""
    from dse.report import build_report
    from tests.report.synthetic import make_study

    out = tmp_path / "rep"
    out.mkdir()
    # the user's own files, none named like a report's
    user = {"notes.txt": "mine", "my_plot.png": "mine", "front_summary.png": "mine", "failures.png.bak": "mine"}
    for name, text in user.items():
        (out / name).write_text(text)

    failing, storage, _ = make_study(tmp_path / "a", n_trials=10, seed=0, epochs=2)
    res = build_report(failing, storage, out, log_to_mlflow=False)
    assert (out / "failures.png").is_file() and out / "failures.png" in res.figures
    assert 'alt="failures"' in res.html.read_text()
    manifest = json.loads((out / ".dse-report.json").read_text())
    assert sorted(manifest["files"]) == sorted(p.name for p in [res.html, *res.figures])
    # as an earlier report of a study with latency_cycles (the synthetic studies have none) listed it
    stale = out / "front_csim_accuracy_vs_latency_cycles.png"
    stale.write_bytes(b"old png")
    # a manifest naming other files (by hand, or tampered) deletes only names the report writes, in this folder
    outside = tmp_path / "hypervolume.png"
    outside.write_text("not in the folder")
    manifest["files"] += [stale.name, "notes.txt", "../hypervolume.png", str(outside)]
    (out / ".dse-report.json").write_text(json.dumps(manifest))

    clean, storage_b, _ = make_study(tmp_path / "b", n_trials=6, seed=1, epochs=2, failures=False)
    with caplog.at_level(logging.WARNING, logger="dse.report._outputs"):
        res = build_report(clean, storage_b, out, log_to_mlflow=False)
    # another study's report replaced: said (before: without a word; probe 20)
    a_db, b_db = (tmp_path / x / "run" / "optuna.db" for x in ("a", "b"))
    assert f"held the output of study 'synth' in {a_db}; it is replaced by that of study 'synth' in {b_db}" in caplog.text, \
        caplog.text
    # the same study, its storage written another way: no warning (the review)
    caplog.clear()
    monkeypatch.chdir(tmp_path / "b")
    with caplog.at_level(logging.WARNING, logger="dse.report._outputs"):
        build_report(clean, "sqlite:///run/optuna.db", out, log_to_mlflow=False)
    assert "held the output" not in caplog.text, caplog.text
    html = res.html.read_text()
    assert not stale.exists()
    assert not (out / "failures.png").exists(), "the earlier report's failures.png must not outlive it"
    assert 'alt="failures"' not in html and "No failed trial." in html
    assert html.count('src="data:image/png;base64,') == len(res.figures)  # every figure shown, no other
    assert outside.read_text() == "not in the folder"
    for name, text in user.items():
        assert (out / name).read_text() == text, name
    pngs = {p.name for p in out.glob("*.png")}
    assert pngs == {p.name for p in res.figures} | {n for n in user if n.endswith(".png")}
    assert sorted(json.loads((out / ".dse-report.json").read_text())["files"]) == sorted(p.name for p in [res.html, *res.figures])


def test_compare_warns_when_resource_figures_come_from_different_sources(tmp_path, caplog):
    """Before, a study whose LUTs were estimated from EBOPs and one whose LUTs came from da4ml were compared without a
    word; the comparison also clears its own earlier files from a reused folder."""
    import pandas as pd

    from tests.report.synthetic import make_study

    _, est, _ = make_study(tmp_path / "a", n_trials=8, seed=0, epochs=2, name="estimated")
    _, syn, _ = make_study(tmp_path / "b", n_trials=8, seed=1, epochs=2, name="synthesized", lut_source="da4ml")
    out = tmp_path / "cmp"
    out.mkdir()
    (out / "compare.html").write_text("old")  # an earlier comparison, as its manifest lists it
    stale = out / "compare_csim_accuracy_vs_latency_cycles.png"
    stale.write_bytes(b"old png")
    (out / ".dse-compare.json").write_text(json.dumps({"written_by": "dse compare", "files": ["compare.html", stale.name]}))
    (out / "notes.txt").write_text("mine")
    caplog.set_level(logging.INFO, logger="dse.report._compare")
    result = runner.invoke(app, ["compare", f"estimated@{est}", f"synthesized@{syn}", "--out", str(out), "--no-mlflow"])
    text = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    expected = ("warning: the studies' lut figures come from different sources (estimated: ebops-estimate; "
                "synthesized: da4ml): they are not measured the same way, so their fronts and hypervolumes on lut are "
                "not comparable")
    assert expected in text, text
    assert "dsp figures" not in text and "ebops figures" not in text  # the same sources there
    # printed once: the library logs it at INFO only (before, a WARNING log line printed it a second time)
    assert [r.levelname for r in caplog.records if "lut figures come from different sources" in r.getMessage()] == ["INFO"]
    page = (out / "compare.html").read_text()
    assert "lut figures come from different sources" in page and "synthesized: da4ml" in page
    table = pd.read_csv(out / "compare.csv")
    assert list(table["lut_source"]) == ["ebops-estimate", "da4ml"]
    assert list(table["dsp_source"]) == ["ebops-estimate", "ebops-estimate"]
    assert not stale.exists() and (out / "notes.txt").read_text() == "mine"
    assert (out / "compare_csim_val_accuracy_vs_lut.png").is_file()


def test_compare_warns_when_the_studies_optimized_different_objectives(tmp_path):
    """Before, a study that optimized ebops was scored on another's lut objective without a word."""
    import html

    from tests.report.synthetic import make_study

    _, lut, _ = make_study(tmp_path / "a", n_trials=6, seed=0, epochs=2, name="on_lut")
    _, ebops, _ = make_study(tmp_path / "b", n_trials=6, seed=1, epochs=2, name="on_ebops", hls4ml={"clock_period": 2.0},
                             objectives=[{"metric": "csim_val_accuracy", "direction": "maximize"}, {"metric": "ebops", "direction": "minimize"}])
    result = runner.invoke(app, ["compare", f"on_lut@{lut}", f"on_ebops@{ebops}", "--out", str(tmp_path / "cmp"), "--no-mlflow"])
    text = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    expected = ("warning: the studies optimized different objectives (on_lut: csim_val_accuracy, lut; on_ebops: "
                "csim_val_accuracy, ebops): all are compared on on_lut's objectives")
    assert expected in text, text
    assert html.escape(expected[9:]) in " ".join((tmp_path / "cmp" / "compare.html").read_text().split())
    # another clock (probe 31: 5 cycles at 5 ns and at 2 ns were compared as equal latencies, without a word); neither
    # study has latency figures, so no clause about cycles (probe 34)
    assert ("warning: the studies' designs target different hls4ml settings (on_lut: Vitis xcvu13p-flga2577-2-e, 5 ns "
            "clock, io_parallel; on_ebops: Vitis xcvu13p-flga2577-2-e, 2 ns clock, io_parallel): their resource figures are "
            "of different builds, so compare those as such") in text, text


def test_compare_says_latency_cycles_of_different_clocks_are_not_comparable():
    """Studies built at 5 ns and 2 ns: their ``latency_cycles`` count different cycles, said once a study has latency
    figures (probe 31: 5 cycles at each were compared as equal latencies, unsaid); without any, only the builds differ."""
    import pandas as pd

    from dse.report._compare import StudySource, study_differences
    from dse.report._figures import Objective

    def source(label, clock, latency):
        trials = pd.DataFrame({"csim_accuracy": [0.9], "lut": [100.0], "latency_cycles": [latency], "feasible": [True]})
        return StudySource(label=label, objectives=[Objective("csim_accuracy", "maximize"), Objective("lut", "minimize")],
                           trials=trials, n_trials=1, n_failed=0, cpu_hours=0.0, dataset="digits", constraints="none",
                           target=f"Vitis xcvu13p-flga2577-2-e, {clock:g} ns clock, io_parallel", clock_period=clock)

    said = study_differences([source("at5", 5.0, 5.0), source("at2", 2.0, 5.0)])
    assert said == ["the studies' designs target different hls4ml settings (at5: Vitis xcvu13p-flga2577-2-e, 5 ns clock, "
                    "io_parallel; at2: Vitis xcvu13p-flga2577-2-e, 2 ns clock, io_parallel): their resource figures are of "
                    "different builds, and their latency_cycles count cycles of different clocks (da4ml's stages do not read "
                    "the clock period), so compare those as such"], said
    without = study_differences([source("at5", 5.0, float("nan")), source("at2", 2.0, float("nan"))])
    assert len(without) == 1 and "latency_cycles" not in without[0] and "of different builds, so compare" in without[0]
    assert study_differences([source("a", 5.0, 5.0), source("b", 5.0, 3.0)]) == []  # alike: nothing to say


def test_compare_tells_re_measured_fronts_from_recorded_hypervolumes_and_draws_every_minimized_objective():
    """Probe 35: two studies of the same designs, one re-measured with Yosys, were told their "fronts and hypervolumes
    on lut are not comparable" beside two equal hypervolumes (computed on the recorded da4ml figures of both); and a
    minimized objective outside the usual resource figures (``ff``) had a hypervolume and no front drawn."""
    import pandas as pd

    from dse.report._compare import StudySource, compare_pairs, source_warnings
    from dse.report._figures import Objective

    objs = [Objective("csim_accuracy", "maximize"), Objective("lut", "minimize")]

    def source(label, **extra):
        trials = pd.DataFrame({"trial": [0, 1], "csim_accuracy": [0.9, 0.8], "lut": [100.0, 50.0],
                               "lut_source": ["da4ml", "da4ml"], "ff": [30.0, 20.0], "ff_source": ["yosys", "yosys"],
                               "feasible": [True, True], **extra})
        return StudySource(label=label, objectives=objs, trials=trials, n_trials=2, n_failed=0, cpu_hours=0.0)

    sources = [source("s3", yosys_lut=[110.0, 55.0], yosys_lut_source=["yosys", "yosys"]), source("s4")]
    warnings, columns = source_warnings(sources, compare_pairs(sources, "csim_accuracy"), objs)
    assert warnings == ["the studies' lut figures come from different sources (s3: da4ml, yosys; s4: da4ml): they are not "
                        "measured the same way, so their fronts on lut are not comparable; their hypervolumes are, being "
                        "computed on each study's recorded lut (s3: da4ml; s4: da4ml)"], warnings
    assert columns["lut_source"] == ["da4ml, yosys", "da4ml"]

    on_ff = [Objective("csim_accuracy", "maximize"), Objective("ff", "minimize")]
    for src in sources:
        src.objectives = on_ff
    pairs = compare_pairs(sources, "csim_accuracy")
    assert "ff" in pairs and list(pairs["ff"]["s4"]["value"]) == [30.0, 20.0], pairs.keys()
    said, columns = source_warnings(sources, pairs, on_ff)
    assert columns["ff_source"] == ["yosys", "yosys"] and not [w for w in said if "ff figures" in w], said
    # lut is no objective here: only its drawn points differ (s3's re-measured), and only the fronts are named
    assert said == ["the studies' lut figures come from different sources (s3: yosys; s4: da4ml): they are not measured "
                    "the same way, so their fronts on lut are not comparable"], said


def test_compare_reference_point_is_set_by_the_fronts_or_given(tmp_path):
    """Probe 35: the common reference point was 1.1 x the worst LUT of every feasible trial, so one study's dominated
    design could reverse the ranking of unchanged fronts (A [(0.9, 1000)] against B [(0.5, 100)]: B first, then A
    once A also held a dominated (0.2, 100000)). Now it is set by the fronts only, and ``reference`` fixes it."""
    import pandas as pd

    from dse.cli import _reference_point as parse_reference
    from dse.exceptions import ConfigError
    from dse.report._compare import StudySource, compare_table
    from dse.report._figures import Objective

    objs = [Objective("csim_accuracy", "maximize"), Objective("lut", "minimize")]

    def source(label, points):
        trials = pd.DataFrame({"trial": list(range(len(points))), "csim_accuracy": [a for a, _ in points],
                               "lut": [v for _, v in points], "feasible": [True] * len(points)})
        return StudySource(label=label, objectives=objs, trials=trials, n_trials=len(points), n_failed=0, cpu_hours=0.0)

    def hypervolumes(*sources, reference=None):
        table, ref, _ = compare_table(list(sources), reference)
        return dict(zip(table["study"], table["hypervolume"])), ref

    alone, ref = hypervolumes(source("A", [(0.9, 1000.0)]), source("B", [(0.5, 100.0)]))
    assert list(ref) == [-0.0, 1100.0] and alone == {"A": pytest.approx(90.0), "B": pytest.approx(500.0)}
    dominated, _ = hypervolumes(source("A", [(0.9, 1000.0), (0.2, 100000.0)]), source("B", [(0.5, 100.0)]))
    assert dominated == alone  # before: A 98,100 and B 54,950
    given, ref = hypervolumes(source("A", [(0.9, 1000.0)]), source("B", [(0.5, 100.0)]), reference={"lut": 2000})
    assert list(ref) == [-0.0, 2000.0] and given == {"A": pytest.approx(900.0), "B": pytest.approx(950.0)}
    with pytest.raises(ConfigError, match=r"--reference \(Python: reference=\): dsp is not among the compared objectives "
                                          r"\['csim_accuracy', 'lut'\]"):
        hypervolumes(source("A", [(0.9, 1000.0)]), source("B", [(0.5, 100.0)]), reference={"dsp": 1})

    # the page says which values were given; a given point no front point beats is said (a percent for a fraction)
    from dse.report import compare_studies

    res = compare_studies([source("A", [(0.9, 1000.0)]), source("B", [(0.5, 100.0)])], tmp_path / "cmp",
                          log_to_mlflow=False, reference={"lut": 2000, "csim_accuracy": 0.6})
    assert res.reference == {"csim_accuracy": 0.6, "lut": 2000.0} and list(res.table["hypervolume"]) == [pytest.approx(300.0), 0.0]
    assert res.warnings == ["study B: no point of its front is better than the given reference point (lut=2000, "
                            "csim_accuracy=0.6) in every objective, so its hypervolume is 0; check the values' units "
                            "(accuracies are fractions)"], res.warnings
    assert "given for lut, csim_accuracy;" in res.html.read_text()
    for bad in ({"lut": float("inf")}, {"lut": "20000"}, [("lut", 1)]):
        with pytest.raises(TypeError, match="reference: expected a dict of metric -> finite number"):
            compare_studies([source("A", [(0.9, 1000.0)]), source("B", [(0.5, 100.0)])], tmp_path / "c2", reference=bad)

    assert parse_reference("lut=20000, csim_val_accuracy=0.5") == {"lut": 20000.0, "csim_val_accuracy": 0.5}
    assert parse_reference(None) is None
    for bad, said in (("lut", "'lut' is not metric=number"), ("lut=big", "'lut=big' is not metric=number"),
                      ("lut=inf", "'lut=inf' is not metric=number"), ("lut=20,000", "'000' is not metric=number .a finite "
                                                                      "number, without thousands separators"),
                      ("lut=1,lut=2", "lut is given twice"), (",", "no metric=number given")):
        with pytest.raises(ConfigError, match=f"--reference: {said}"):
            parse_reference(bad)


def test_hypervolume_note_names_the_method_for_three_objectives(tmp_path):
    """Before, a 3-objective study's page said "Exact 2-D sweep for two objectives"."""
    from dse.report import build_report
    from tests.report.synthetic import make_study

    three = [{"metric": "csim_accuracy", "direction": "maximize"}, {"metric": "lut", "direction": "minimize"},
             {"metric": "dsp", "direction": "minimize"}]
    study, storage, _ = make_study(tmp_path / "a", n_trials=8, seed=0, epochs=2, name="three", objectives=three, failures=False)
    html = " ".join(build_report(study, storage, tmp_path / "rep", log_to_mlflow=False).html.read_text().split())
    assert "Optuna's hypervolume (WFG algorithm) for 3 objectives." in html and "2-D sweep" not in html
    assert "8 complete, 0 failed, 0 running" in html  # the states row, as `dse status` counts them


def test_compare_artifacts_in_mlflow_hold_this_comparison_only(tmp_path):
    """Before, an earlier comparison's figure stayed in the parent run's compare/ artifacts beside the new page."""
    from mlflow.tracking import MlflowClient

    from dse.store import StudyRecords
    from tests.report.synthetic import make_study

    a, a_url, a_exp = make_study(tmp_path / "a", n_trials=6, seed=0, epochs=2, name="first")
    _, b_url, _ = make_study(tmp_path / "b", n_trials=6, seed=1, epochs=2, name="second")
    client, parent = MlflowClient(a_exp.tracking_uri), StudyRecords(a).parent_run_id
    stale = tmp_path / "compare_csim_accuracy_vs_latency_cycles.png"  # as an earlier comparison with latency wrote it
    stale.write_bytes(b"old png")
    client.log_artifact(parent, str(stale), "compare")
    result = runner.invoke(app, ["compare", f"first@{a_url}", f"second@{b_url}", "--out", str(tmp_path / "cmp")])
    assert result.exit_code == 0, result.output
    logged = sorted(x.path.split("/")[-1] for x in client.list_artifacts(parent, "compare"))
    assert logged == sorted(p.name for p in (tmp_path / "cmp").iterdir() if not p.name.startswith(".")), logged
    assert stale.name not in logged


def test_interrupted_trials_are_told_apart_from_failed_designs(tmp_path):
    """A trial failed as TrialInterruptedError (its driver stopped; parameters re-enqueued) is no design failure:
    the failures table and chart label it so, and the page says why."""
    import optuna

    from dse.report import build_report
    from dse.report._figures import failure_counts
    from dse.store import record_trial_result
    from tests.report.synthetic import make_study

    study, storage, _ = make_study(tmp_path / "s", n_trials=10, seed=0, epochs=2)
    diverged = sum(1 for t in study.trials if t.state.name == "FAIL")
    assert diverged, "the synthetic study must hold design failures too"
    for why in ("TrialInterruptedError: the driver stopped (Ctrl-C) while trial 10 ran; its parameters were re-enqueued",
                "DriverLostError: the driver running trial 11 was lost: gone; its parameters were re-enqueued"):
        trial = study.ask()
        record_trial_result(trial, {}, {}, fail_reason=why)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)

    counts = failure_counts(study)
    assert counts["TrainingDivergedError"] == diverged
    assert counts["TrialInterruptedError (not evaluated, re-enqueued)"] == 1
    assert counts["DriverLostError (not evaluated, re-enqueued)"] == 1
    assert "TrialInterruptedError" not in counts and "DriverLostError" not in counts

    res = build_report(study, storage, tmp_path / "rep", log_to_mlflow=False)
    html = res.html.read_text()
    assert "TrialInterruptedError (not evaluated, re-enqueued)" in html
    # the Study table counts failed designs as dse compare does, the interrupted ones apart (before: failed = all 2 + diverged)
    assert (f'<th class="t">failed</th><td class="t">{diverged}</td>' in html
            and '<th class="t">interrupted (not evaluated, re-enqueued)</th><td class="t">2</td>' in html), \
        html.split("<h2>Study</h2>")[1][:1500]
    assert "never evaluated, so they are not failures of a design" in html

    # the table names which trials failed and why (before: a reason type and a count, so finding them took `dse status`)
    from dse.report._figures import failure_table

    table = failure_table(study).set_index("reason")
    numbers = [t.number for t in study.trials if t.state.name == "FAIL" and t.number < 10]
    assert table.loc["TrainingDivergedError", "trial numbers"] == ", ".join(map(str, numbers))
    assert table.loc["DriverLostError (not evaluated, re-enqueued)", "trial numbers"] == str(study.trials[-1].number)
    assert table.loc["DriverLostError (not evaluated, re-enqueued)", "latest reason"].startswith("DriverLostError: the driver")
    section = html.split("Failed trials by reason", 1)[1].split("<h2>", 1)[0]
    assert "<th>trial numbers</th>" in section and "<th>latest reason</th>" in section
    assert f"<td class=\"t\">{', '.join(map(str, numbers))}</td>" in section


def test_compare_warns_about_a_study_without_a_feasible_trial(tmp_path, caplog):
    """Before, a study whose every trial broke its budget was compared without a word: hypervolume 0 and '-' sources."""
    import pandas as pd

    from tests.report.synthetic import make_study

    _, ok, _ = make_study(tmp_path / "a", n_trials=6, seed=0, epochs=2, name="fits")
    _, over, _ = make_study(tmp_path / "b", n_trials=6, seed=1, epochs=2, name="over", failures=False,
                            constraints=[{"metric": "lut", "max": 1}])
    out = tmp_path / "cmp"
    result = runner.invoke(app, ["compare", f"fits@{ok}", f"over@{over}", "--out", str(out), "--no-mlflow"])
    text = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    expected = ("warning: study over has no feasible trial (all 6 completed trials break a constraint): it has no front "
                "and its hypervolume is 0")
    assert expected in text, text
    assert "study fits" not in text
    assert expected[9:] in " ".join((out / "compare.html").read_text().split())
    budgets = ("warning: the studies have different constraints (fits: none; over: lut <= 1): each front holds only the "
               "trials feasible under its own constraints")  # before: compared without a word
    assert budgets in text, text
    assert budgets[9:].replace("<", "&lt;") in " ".join((out / "compare.html").read_text().split())
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and "no feasible trial" in r.getMessage()]
    table = pd.read_csv(out / "compare.csv")
    assert list(table["hypervolume"] > 0) == [True, False]
    assert table["front_size"].iloc[0] > 0 and table["front_size"].iloc[1] == 0
    # no study with a feasible trial: no reference point is quoted (before: the placeholder "csim_accuracy=0, lut=0.1")
    _, also, _ = make_study(tmp_path / "c", n_trials=4, seed=2, epochs=2, name="also", failures=False,
                            constraints=[{"metric": "lut", "max": 1}])
    none = runner.invoke(app, ["compare", f"over@{over}", f"also@{also}", "--out", str(tmp_path / "cmp2"), "--no-mlflow"])
    said = " ".join(none.output.split())
    assert none.exit_code == 0 and "reference point: none: no study has a feasible completed trial" in said, said
    assert "common reference point: none: no study has a feasible completed trial" in (tmp_path / "cmp2" / "compare.html").read_text()


def test_report_and_compare_refuse_a_folder_holding_files_named_like_theirs(tmp_path):
    """Before, `--out mine` overwrote the user's report.html and deleted their front_custom_vs_me.png (and compare's
    results/compare.csv) without a word; now nothing is written and one `error:` line names the files and the fix.
    The default folder written twice, and a folder whose earlier run stopped half-way, still work."""
    from dse.report import build_report
    from dse.report._outputs import REPORT_FILES
    from tests.report.synthetic import make_study

    study, a_url, a_exp = make_study(tmp_path / "a", n_trials=6, seed=0, epochs=2, name="first")
    _, b_url, _ = make_study(tmp_path / "b", n_trials=6, seed=1, epochs=2, name="second")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "report.html").write_text("keep")
    (mine / "front_custom_vs_me.png").write_text("k")
    (mine / "notes.txt").write_text("mine")
    before = {p.name: p.read_text() for p in mine.iterdir()}
    result = runner.invoke(app, ["report", "first", "--storage", a_url, "--out", str(mine), "--no-mlflow"])
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and text.count("error:") == 1, result.output
    assert "front_custom_vs_me.png, report.html" in text and "no .dse-report.json" in text, text
    assert "choose another folder with --out, or move or delete those files" in text, text
    assert {p.name: p.read_text() for p in mine.iterdir()} == before  # nothing written, nothing deleted

    results = tmp_path / "results"
    results.mkdir()
    (results / "compare.csv").write_text("my numbers")
    result = runner.invoke(app, ["compare", f"first@{a_url}", f"second@{b_url}", "--out", str(results), "--no-mlflow"])
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and text.count("error:") == 1 and "holds compare.csv" in text, result.output
    assert [p.name for p in results.iterdir()] == ["compare.csv"] and (results / "compare.csv").read_text() == "my numbers"

    # the default folder <run_dir>/report, written twice: the second run finds the first one's manifest
    first = build_report(study, a_url, log_to_mlflow=False)
    again = build_report(study, a_url, log_to_mlflow=False)
    assert again.html == first.html == a_exp.resolved_run_dir / "report" / "report.html"
    # a run that stopped after clearing the folder leaves it marked as the report's: the next run clears it
    half = tmp_path / "half"
    half.mkdir()
    REPORT_FILES.clear_previous(half)
    (half / "front_csim_accuracy_vs_latency_cycles.png").write_bytes(b"half-written")
    res = build_report(study, a_url, half, log_to_mlflow=False)
    assert not (half / "front_csim_accuracy_vs_latency_cycles.png").exists()
    assert sorted(json.loads((half / ".dse-report.json").read_text())["files"]) == sorted(p.name for p in [res.html, *res.figures])


def test_fronts_follow_the_direction_of_an_objective_that_is_not_an_accuracy(tmp_path, monkeypatch):
    """A study that minimizes lut alone: before, its fronts were drawn as if lut were maximized (through dominated
    trials, on report and compare pages alike) under a title claiming accuracy."""
    import numpy as np

    from dse.report import _plots as P
    from dse.report import build_report
    from dse.report._figures import pareto_mask
    from tests.report.synthetic import make_study

    lean, lean_url, _ = make_study(tmp_path / "a", n_trials=8, seed=0, epochs=2, name="lean", failures=False,
                                   objectives=[{"metric": "lut", "direction": "minimize"}])
    _, other_url, _ = make_study(tmp_path / "b", n_trials=6, seed=1, epochs=2, name="other", failures=False)
    drawn: list[tuple[str, str, object]] = []  # (vertical axis, horizontal axis, points) of every front drawn
    real_pair, real_compare = P.plot_pair, P.plot_compare

    def plot_pair(pts, y, x, path, constraints=()):
        drawn.append((y, x, pts))
        return real_pair(pts, y, x, path, constraints)

    def plot_compare(fronts, y, x, path):
        drawn.extend((y, x, pts) for pts in fronts.values())
        return real_compare(fronts, y, x, path)

    monkeypatch.setattr(P, "plot_pair", plot_pair)
    monkeypatch.setattr(P, "plot_compare", plot_compare)

    def minimal(pts) -> set[int]:  # both axes minimized
        feas = pts[pts["feasible"]]
        return set(feas["trial"][pareto_mask(np.column_stack([feas["accuracy"], feas["value"]]))])

    res = build_report(lean, lean_url, tmp_path / "rep", log_to_mlflow=False)
    html = res.html.read_text()
    assert "Pareto fronts: lut vs each resource figure" in html and "Pareto fronts: accuracy" not in html
    assert not (tmp_path / "rep" / "front_lut_vs_lut.png").exists()  # lut against itself says nothing
    assert drawn and {x for _, x, _ in drawn} == {"ebops", "dsp"}
    for y, x, pts in drawn:
        assert y == "lut" and set(pts.loc[pts["on_front"], "trial"]) == minimal(pts), x
        if x == "ebops":  # lut and ebops grow together: few trials are on that front (before: every one)
            assert 0 < pts["on_front"].sum() < len(pts)

    drawn.clear()
    result = runner.invoke(app, ["compare", f"lean@{lean_url}", f"other@{other_url}", "--out", str(tmp_path / "cmp"), "--no-mlflow"])
    assert result.exit_code == 0, result.output
    assert drawn and all(y == "lut" and x != "lut" for y, x, _ in drawn)
    for _, x, pts in drawn:
        assert set(pts.loc[pts["on_front"], "trial"]) == minimal(pts), x


def test_compare_says_when_a_studys_experiment_does_not_validate_here(tmp_path, caplog):
    """Before, a study whose stored experiment names a backend module not importable here was compared silently: its
    data read `None`, the different-constraints warning vanished and the page was not attached to its MLflow run."""
    import optuna

    from tests.report.synthetic import make_study

    _, ok, _ = make_study(tmp_path / "a", n_trials=6, seed=0, epochs=2, name="fits", failures=False,
                          constraints=[{"metric": "lut", "max": 1e9}])
    _, pb, _ = make_study(tmp_path / "b", n_trials=6, seed=1, epochs=2, name="pb", failures=False)
    st = optuna.load_study(study_name="pb", storage=pb)
    stored = dict(st.user_attrs["experiment"])
    stored["resources"] = {**stored.get("resources", {}), "backend_modules": ["no_such_backends_module_here"]}
    stored["hls4ml"] = {**stored.get("hls4ml", {}), "field_of_a_later_dse": 1}  # fails with the module missing, too
    st.set_user_attr("experiment", stored)
    st.set_user_attr("dataset", {"digest": "f" * 64})  # and tested on other data, as the data line says
    optuna.load_study(study_name="fits", storage=ok).set_user_attr("dataset", {"digest": "0" * 64})
    caplog.set_level(logging.WARNING, logger="dse.report._compare")
    result = runner.invoke(app, ["compare", f"fits@{ok}", f"pb@{pb}", "--out", str(tmp_path / "cmp")])
    text = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.getMessage().startswith("study pb:")]
    assert len(said) == 1, caplog.text
    assert "does not validate here" in said[0] and "field_of_a_later_dse" in said[0], said
    assert "its constraints and dataset are not compared" in said[0] and "not attached to its MLflow parent run" in said[0]
    assert "pb: None" not in text and "pb: unknown (the experiment stored with study 'pb' does not validate here" in text, text
    assert "warning: the studies were tested on different data (fits: digits (digest 000000000000); pb: unknown (" in text, text
    assert "(digest ffffffffffff)" in text, text

    # the module alone missing (a study measured where it is installed): its stored figures, data and constraints are
    # compared all the same, with a warning naming the module (before: compared without them, as above)
    del stored["hls4ml"]["field_of_a_later_dse"]
    st.set_user_attr("experiment", stored)
    caplog.clear()
    result = runner.invoke(app, ["compare", f"fits@{ok}", f"pb@{pb}", "--out", str(tmp_path / "cmp")])
    text = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    said = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "study pb: its resource backends do not load here" in said and "no_such_backends_module_here" in said, said
    assert "does not validate here" not in said and "unknown (" not in text, text
    assert "fits: lut <= 1e+09; pb: none" in text, text  # its constraints are compared


def test_a_study_run_with_a_bound_since_refused_is_still_read(tmp_path, caplog):
    """A study run before 2026-12-06 with `{metric: csim_accuracy, min: 90}` (accuracy in percent: refused for new
    experiments since). Its stored experiment still reads, with a warning that says which check it breaks; before the
    reading exemption, status, report and export refused the study as "does not validate here" (review of this change)."""
    from tests.report.synthetic import make_study

    study, url, exp = make_study(tmp_path, n_trials=4, name="percent", failures=False, constraints=[{"metric": "csim_accuracy", "min": 0.5}])
    stored = exp.model_dump(mode="json")
    stored["constraints"] = [{"metric": "csim_accuracy", "min": 90.0, "max": None}]
    study.set_user_attr("experiment", stored)  # as the earlier dse stored it
    result = runner.invoke(app, ["status", "percent", "--storage", url])
    said = " ".join(result.output.split())
    assert result.exit_code == 0 and "trials: 4 complete" in said, result.output
    result = runner.invoke(app, ["report", "percent", "--storage", url, "--out", str(tmp_path / "rep"), "--no-mlflow"])
    assert result.exit_code == 0 and (tmp_path / "rep" / "report.html").is_file(), result.output
    said = " ".join(caplog.text.split())
    assert "study percent: it breaks checks this dse added since (constraints.0" in said and "min 90 is above 1" in said, said


def test_compare_counts_interrupted_trials_apart_from_failed_designs(tmp_path):
    """Before, trials failed as TrialInterruptedError or DriverLostError (never evaluated, re-enqueued) counted as
    `failed` in `dse compare`, unlike `dse status`; read from Optuna and from MLflow alike."""
    import optuna
    import pandas as pd

    from dse.store import record_trial_result
    from dse.tracking import StudyTracker
    from tests.report.synthetic import make_study

    study, url, exp = make_study(tmp_path / "a", n_trials=10, seed=0, epochs=2, name="stopped")
    _, other, _ = make_study(tmp_path / "b", n_trials=6, seed=1, epochs=2, name="other", failures=False)
    diverged = sum(1 for t in study.trials if t.state.name == "FAIL")
    assert diverged, "the synthetic study must hold design failures too"
    records = StudyRecords(study)
    tracker = StudyTracker(exp.tracking_uri, exp.name)
    params = records.trial(0).params
    for why in ("TrialInterruptedError: the driver stopped (Ctrl-C) while trial 10 ran; its parameters were re-enqueued",
                "DriverLostError: the driver running trial 11 was lost: gone; its parameters were re-enqueued"):
        trial = study.ask()
        run_id = tracker.trial_run(records.parent_run_id, exp.name, trial.number, params, [])
        record_trial_result(trial, {}, {}, fail_reason=why)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        tracker.finish_trial_run(run_id, "FAIL", why)

    result = runner.invoke(app, ["compare", f"stopped@{url}", f"other@{other}", "--out", str(tmp_path / "cmp"), "--no-mlflow"])
    assert result.exit_code == 0, result.output
    assert "interrupted" in result.output
    table = pd.read_csv(tmp_path / "cmp" / "compare.csv")
    assert list(table["failed"]) == [diverged, 0] and list(table["interrupted"]) == [2, 0]
    assert list(table["trials"]) == [12, 6]
    page = " ".join((tmp_path / "cmp" / "compare.html").read_text().split())
    assert "interrupted: trials whose driver stopped or was lost" in page

    result = runner.invoke(app, ["compare", "stopped", f"other@{other}", "--tracking-uri", exp.tracking_uri,
                                 "--out", str(tmp_path / "cmp2"), "--no-mlflow"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "cmp2" / "compare.csv")
    assert table["failed"].iloc[0] == diverged and table["interrupted"].iloc[0] == 2


def test_compare_from_mlflow_reads_the_experiment_a_continued_study_last_ran_with(tmp_path, caplog):
    """A study whose parent run was made under ``lut <= 600`` and that ran on under ``lut <= 6000`` (``dse run
    --allow-changed``): the reused parent run's ``experiment.json`` is the later experiment, so `dse compare` from MLflow
    finds the front Optuna holds. Before, it kept the first run's constraints: every trial infeasible, hypervolume 0."""
    from dse.config import load_experiment
    from dse.report._compare import compare_table, load_mlflow_source, load_optuna_source
    from dse.tracking import StudyTracker
    from tests.conftest import write_experiment
    from tests.report.synthetic import make_study

    first, _ = load_experiment(write_experiment(tmp_path, name="relaxed", n_trials=12, seed=0, training={"epochs": 5},
                                                constraints=[{"metric": "lut", "max": 600}]))  # make_study's, but the budget
    first.resolved_run_dir.mkdir(parents=True)
    tracker = StudyTracker(first.tracking_uri, first.name, artifact_location=(first.resolved_run_dir / "mlartifacts").as_uri())
    parent = tracker.study_run(first.name, first.model_dump(mode="json"))  # a first `dse run`, stopped before a trial ended
    study, url, exp = make_study(tmp_path, 12, "relaxed", 0, 5, failures=False, constraints=[{"metric": "lut", "max": 6000}])
    assert StudyRecords(study).parent_run_id == parent  # the second run reused the parent run

    optuna_src = load_optuna_source("relaxed", url)
    with caplog.at_level(logging.WARNING, logger="dse.report._compare"):
        mlflow_src = load_mlflow_source("relaxed", exp.tracking_uri)
    assert mlflow_src.constraints == optuna_src.constraints == "lut <= 6000"
    assert "continued with other constraints" in caplog.text and "relaxed@STORAGE_URL" in caplog.text
    feasible = {src.origin: dict(zip(src.trials["trial"], src.trials["feasible"])) for src in (optuna_src, mlflow_src)}
    assert feasible[optuna_src.origin] == feasible[mlflow_src.origin]
    assert 0 < sum(feasible[optuna_src.origin].values()) < 12, "lut <= 6000 keeps some synthetic trials, not all"
    table, _, _ = compare_table([optuna_src, mlflow_src])
    assert table["hypervolume"].iloc[0] > 0 and table["hypervolume"].iloc[1] == pytest.approx(table["hypervolume"].iloc[0])
    run = MlflowClient(exp.tracking_uri).get_run(parent)
    assert run.data.tags["experiment_updated"] == "constraints"
    assert "600.0" in run.data.params["constraints"]  # MLflow params cannot change: they keep the first run's


def test_compare_from_mlflow_refuses_an_experiment_two_studies_share(tmp_path):
    """Two studies logging to one MLflow experiment (``mlflow.experiment_name`` the same): `dse compare --tracking-uri`
    refuses, naming both and the way to compare them. Before, it took one parent run's objectives and every study's trials.
    With the other study's parent run deleted, only the remaining study's trials are read."""
    from dse.report._compare import load_mlflow_source, load_optuna_source
    from dse.tracking import StudyTracker, TrialRunLogger
    from tests.report.synthetic import make_study

    study, url, exp = make_study(tmp_path, n_trials=6, name="first", failures=False)
    tracker = StudyTracker(exp.tracking_uri, "first")  # a second study with mlflow.experiment_name: first
    parent = tracker.study_run("second", {**exp.model_dump(mode="json"), "name": "second"})
    run_id = tracker.trial_run(parent, "second", 0, StudyRecords(study).trial(0).params, [])
    TrialRunLogger(exp.tracking_uri, run_id).log_metrics({"csim_accuracy": 0.999, "lut": 1.0, "ebops": 1.0})
    tracker.finish_trial_run(run_id, "COMPLETE")
    tracker.end_study_run(parent)

    out = tmp_path / "cmp"
    result = runner.invoke(app, ["compare", "first", f"first@{url}", "--tracking-uri", exp.tracking_uri, "--out", str(out),
                                 "--no-mlflow"], terminal_width=200)
    text = " ".join(result.output.split())
    assert result.exit_code != 0 and "Traceback" not in result.output, result.output
    assert "holds the runs of 2 studies ('first', 'second';" in text and "name@STORAGE_URL" in text, text
    assert not out.exists()

    MlflowClient(exp.tracking_uri).delete_run(parent)  # one study's parent run left: its own trials only
    src, own = load_mlflow_source("first", exp.tracking_uri), load_optuna_source("first", url)
    assert sorted(src.trials["trial"]) == sorted(own.trials["trial"]) and src.n_trials == len(study.trials)


def test_compare_that_fails_on_objectives_leaves_the_earlier_comparison(tmp_path):
    """A study without one of the objectives stops `compare_studies` before it touches --out. Before, the folder was
    cleared of the earlier comparison's files first, and then the comparison failed: nothing was left."""
    from dse.exceptions import ConfigError
    from dse.report._compare import compare_studies, load_optuna_source
    from tests.report.synthetic import make_study

    _, a, _ = make_study(tmp_path / "a", n_trials=6, seed=0, epochs=2, name="sa", failures=False)
    _, b, _ = make_study(tmp_path / "b", n_trials=6, seed=1, epochs=2, name="sb", failures=False)
    out = tmp_path / "cmp"
    compare_studies([load_optuna_source("sa", a), load_optuna_source("sb", b)], out, log_to_mlflow=False)
    before = sorted(p.name for p in out.iterdir())
    assert "compare.html" in before and "compare.csv" in before
    lacking = load_optuna_source("sb", b)
    lacking.trials = lacking.trials.drop(columns=["lut"])  # as a study that never measured lut
    with pytest.raises(ConfigError, match=r"study sb has no \['lut'\] to compare with"):
        compare_studies([load_optuna_source("sa", a), lacking], out, log_to_mlflow=False)
    assert sorted(p.name for p in out.iterdir()) == before


def test_a_study_with_a_relative_run_dir_is_found_from_another_folder(tmp_path, monkeypatch):
    """A study whose storage lies outside its run directory (two studies in one database) and whose run_dir is the
    default runs/<name>: read from another folder, its MLflow store is the one the driver recorded. Before, the run
    directory was taken relative to the current folder: `dse report` wrote a report without MLflow's parts into a new
    sub/runs/<name>/report, and `dse export` told the user to copy the store there."""
    from dse.store import StudyRecords
    from dse.tracking import open_tracking
    from tests.report.synthetic import make_study

    monkeypatch.chdir(tmp_path)
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    study, _, _ = make_study(tmp_path, n_trials=4, seed=0, epochs=2, name="rel", failures=False, run_dir=None, storage=storage)
    assert (tmp_path / "runs" / "rel" / "mlflow.db").is_file()
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    where = open_tracking(StudyRecords(study), storage)
    assert where.run_dir == tmp_path / "runs" / "rel" and where.missing_store is None
    result = runner.invoke(app, ["report", "rel", "--storage", storage])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "runs" / "rel" / "report" / "report.html").is_file()
    assert not (tmp_path / "sub" / "runs").exists()


def test_compare_draws_the_fronts_when_one_study_has_no_completed_trial(tmp_path):
    """Before, one study without a completed trial removed every figure from the page: no PNG was written, and the
    figures' source columns vanished, without a word."""
    import optuna
    import pandas as pd

    from tests.report.synthetic import make_study

    full, url, _ = make_study(tmp_path / "a", n_trials=8, seed=0, epochs=2, name="full", failures=False)
    empty_url = f"sqlite:///{tmp_path / 'empty.db'}"
    empty = optuna.create_study(study_name="empty", storage=empty_url, directions=full.directions)
    for k in ("experiment", "search_space"):  # made by `dse run` (its experiment stored), stopped before a trial finished
        empty.set_user_attr(k, full.user_attrs[k])
    result = runner.invoke(app, ["compare", f"full@{url}", f"empty@{empty_url}", "--out", str(tmp_path / "cmp"), "--no-mlflow"])
    assert result.exit_code == 0, result.output
    pngs = sorted(p.name for p in (tmp_path / "cmp").glob("compare_*_vs_*.png"))
    assert "compare_csim_val_accuracy_vs_lut.png" in pngs and "compare_csim_val_accuracy_vs_ebops.png" in pngs, pngs
    table = pd.read_csv(tmp_path / "cmp" / "compare.csv")
    assert list(table["lut_source"]) == ["ebops-estimate", "-"], table.to_dict("list")
    said = " ".join(result.output.split())
    assert "empty has no completed trial (0 of 0 failed): it has no front" in said, result.output
    # probe 36: a study whose one trial was running was "0 of 1 failed", sent to `dse report`'s failures chart
    empty.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.RUNNING))
    result = runner.invoke(app, ["compare", f"full@{url}", f"empty@{empty_url}", "--out", str(tmp_path / "cmp2"), "--no-mlflow"])
    said = " ".join(result.output.split())
    assert ("empty has no completed trial (0 of 1 failed, 1 running): it has no front and its hypervolume is 0 (compare "
            "it again once a trial has completed)") in said, result.output
    # a study stopped in its first trial (failed as interrupted, re-enqueued): nothing runs (the review: "1 running")
    stopped_url = f"sqlite:///{tmp_path / 'stopped.db'}"
    stopped = optuna.create_study(study_name="stopped", storage=stopped_url, directions=full.directions)
    for k in ("experiment", "search_space"):
        stopped.set_user_attr(k, full.user_attrs[k])
    stopped.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL, user_attrs={
        "fail_reason": "TrialInterruptedError: the driver stopped (Ctrl-C) while trial 0 ran; its parameters were re-enqueued"}))
    stopped.enqueue_trial({})
    result = runner.invoke(app, ["compare", f"full@{url}", f"stopped@{stopped_url}", "--out", str(tmp_path / "cmp3"), "--no-mlflow"])
    said = " ".join(result.output.split())
    assert "stopped has no completed trial (0 of 1 failed, 1 interrupted or lost): it has no front" in said, result.output


def test_no_front_advice_names_the_bounds_broken_and_the_closest_trial(tmp_path):
    """Probe 19: "every completed trial breaks a constraint ... see the trials with `dse report`", which says neither
    which bound nor how close a trial came. Now: each bound, how many trials broke it and the closest one; for a latency
    budget, the da4ml setting that sets a distributed_arithmetic design's cycles."""
    from dse.report import no_front_advice
    from dse.store import StudyRecords
    from tests.report.synthetic import make_study

    study, _, exp = make_study(tmp_path, n_trials=6, failures=False,
                               constraints=[{"metric": "lut", "max": 1}, {"metric": "latency_cycles", "max": 2}])
    recs = StudyRecords(study).trials()
    closest = min(recs, key=lambda r: r.metrics["lut"])
    said = no_front_advice(study, exp.constraints)
    assert said.startswith("no Pareto front: every completed trial breaks a constraint (infeasible): "), said
    assert f"lut max 1 broken by 6 of 6 trials (closest: trial {closest.number} at {closest.metrics['lut']:,.6g})" in said, said
    assert "latency_cycles max 2 broken by 6 of 6 trials (none of them measured it)" in said, said
    assert "resources.da4ml_latency_cutoff" in said and f"`dse export {study.study_name} --trial N --out <folder>`" in said


def test_the_budget_is_drawn_and_an_infeasible_point_keeps_its_source(tmp_path):
    """Probe 43: the report's front plots drew no bound, so the budget was read off the status text, and an infeasible
    point was a red cross whatever its figure's source (a legend listing `lut [ebops-estimate]` showed no such marker)."""
    from dse.config import ConstraintConfig
    from dse.report._figures import pair_points
    from dse.report._plots import pair_figure
    from tests.report.synthetic import make_study

    study, _, _ = make_study(tmp_path, n_trials=8, name="budget", failures=False)
    pts = pair_points(study, "csim_accuracy", "lut")
    luts = sorted(pts["value"])
    bound = (luts[3] + luts[4]) / 2  # inside the points' range: drawn where it is
    budget = [ConstraintConfig(metric="lut", max=bound), ConstraintConfig(metric="csim_accuracy", min=0.5),
              ConstraintConfig(metric="dsp", max=0)]  # dsp is on neither axis: not drawn here
    ax = pair_figure(pts, "csim_accuracy", "lut", budget).axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert f"budget: lut <= {bound:,.6g}" in labels and not [t for t in labels if "dsp" in t], labels
    dashed = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--" and len(ln.get_xdata())]
    assert any(list(ln.get_xdata()) == [bound, bound] for ln in dashed), [ln.get_xdata() for ln in dashed]
    assert any(list(ln.get_ydata()) == [0.5, 0.5] for ln in dashed) or "budget: csim_accuracy >= 0.5 (off the axes)" in labels
    lo, hi = ax.get_xlim()
    far = pair_figure(pts, "csim_accuracy", "lut", [ConstraintConfig(metric="lut", max=luts[-1] * 1e6)]).axes[0]
    assert far.get_xlim() == (lo, hi), "a budget far beyond the points keeps the axis on them"
    assert any(t.get_text().endswith("(off the axes)") for t in far.get_legend().get_texts())
    none_feasible = pair_figure(pts.assign(feasible=False, on_front=False), "csim_accuracy", "lut").axes[0]
    assert [t.get_text() for t in none_feasible.get_legend().get_texts()] == ["infeasible (constraint violated)"], \
        "no legend entry for a source none of whose points is drawn in its marker"
    # two sources on one axis: each infeasible point in its source's marker, red, labelled with the source
    mixed, _, _ = make_study(tmp_path / "m", n_trials=8, name="mixed", failures=False, lut_source="da4ml",
                             constraints=[{"metric": "lut", "max": bound}])
    mpts = pair_points(mixed, "csim_accuracy", "lut")
    assert (~mpts["feasible"]).sum() >= 2, mpts
    mpts["source"] = ["yosys" if i % 2 else "da4ml" for i in range(len(mpts))]  # as a study re-measured in part
    texts = [t.get_text() for t in pair_figure(mpts, "csim_accuracy", "lut").axes[0].get_legend().get_texts()]
    infeasible = set(mpts.loc[~mpts["feasible"], "source"])
    assert {f"infeasible (constraint violated) [{s}]" for s in infeasible} <= set(texts), texts


def test_the_accuracy_axis_says_which_trials_were_not_c_simulated(tmp_path):
    """With `hls4ml.csim: front` (the default) or `none`, a trial not C-simulated reports its Keras accuracy as
    csim_accuracy (tag csim_accuracy_source=keras). Before, the report's and compare's axes said "accuracy, C simulation"
    for every point; now they name each source and the report's note counts the Keras ones."""
    from dse.report import build_report
    from dse.report._figures import pair_points
    from dse.report._plots import compare_figure, pair_figure
    from tests.report.synthetic import make_study

    mixed, storage, _ = make_study(tmp_path / "m", n_trials=8, name="mixed", failures=False, csim_sources=("csim", "keras"))
    pts = pair_points(mixed, "csim_accuracy", "lut")
    assert set(pts["accuracy_source"]) == {"csim", "keras"}
    keras = int((pts["accuracy_source"] == "keras").sum())
    fig = pair_figure(pts, "csim_accuracy", "lut")
    assert " ".join(fig.axes[0].get_ylabel().split()) == "test accuracy, C simulation / Keras where not simulated"
    # a count's ticks: few, with thousands separators (probe 42: "100000120000140000..." ran together)
    fig.canvas.draw()
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert fig.axes[0].get_xscale() == "linear" and len(ticks) <= 7 and all(re.fullmatch(r"-?\d{1,3}(,\d{3})*", t) for t in ticks), ticks
    val = pair_figure(pair_points(mixed, "csim_val_accuracy", "lut"), "csim_val_accuracy", "lut")  # the objective's split
    assert " ".join(val.axes[0].get_ylabel().split()) == "validation accuracy, C simulation / Keras where not simulated"
    dsp = pair_figure(pair_points(mixed, "csim_accuracy", "dsp"), "csim_accuracy", "dsp")  # a count: whole ticks (probe 20)
    assert all(float(t).is_integer() for t in dsp.axes[0].get_xticks()), dsp.axes[0].get_xticks()
    res = build_report(mixed, storage, tmp_path / "rep", log_to_mlflow=False)
    html = " ".join(res.html.read_text().split())
    assert f"The accuracy of {keras} of these {len(pts)} trials is Keras', not bit-exact" in html, html
    from dse.report._figures import front_members_table

    members = front_members_table(mixed)  # the front table names it too (probe 20)
    assert list(members.columns).index("csim_accuracy_source") == list(members.columns).index("csim_accuracy") + 1
    assert set(members["csim_accuracy_source"]) <= {"csim", "keras"}

    # every trial simulated (or a study of a dse without the tag): the label as before, and no note
    plain, storage2, _ = make_study(tmp_path / "p", n_trials=4, name="plain", failures=False)
    pts2 = pair_points(plain, "csim_accuracy", "lut")
    assert set(pts2["accuracy_source"]) == {"csim"}
    assert " ".join(pair_figure(pts2, "csim_accuracy", "lut").axes[0].get_ylabel().split()) == "test accuracy, C simulation"

    from dse.report._compare import _pair, load_optuna_source

    fronts = {s.label: _pair(s.trials, "csim_accuracy", "lut") for s in
              (load_optuna_source("mixed", storage), load_optuna_source("plain", storage2))}
    assert " ".join(compare_figure(fronts, "csim_accuracy", "lut").axes[0].get_ylabel().split()) == \
        "test accuracy, C simulation / Keras where not simulated"


def test_compare_leaves_out_trials_lacking_an_objective_figure(tmp_path, caplog):
    """A study whose trials lack a figure of the first study's objectives (probe 20: Latency designs without
    latency_cycles, compared on a study of distributed_arithmetic designs that optimized it): before, their NaN made the
    reference point NaN, every study's hypervolume 0 and the front sizes wrong. Now those trials are left out, said."""
    import math

    from dse.report._compare import compare_table, load_optuna_source
    from dse.report._figures import hypervolume, pareto_mask
    from tests.report.synthetic import make_study

    _, url_a, _ = make_study(tmp_path / "a", n_trials=8, name="a", failures=False)
    _, url_b, _ = make_study(tmp_path / "b", n_trials=8, name="b", seed=1, failures=False)
    a, b = load_optuna_source("a", url_a), load_optuna_source("b", url_b)
    lacking = sorted(int(n) for n in b.trials["trial"][:2])
    b.trials.loc[b.trials.index[:2], "lut"] = math.nan  # as a trial without that figure reads
    with caplog.at_level(logging.WARNING, logger="dse.report._compare"):
        table, ref, objs = compare_table([a, b])
    assert np.isfinite(ref).all(), ref
    kept = b.trials.iloc[2:]
    loss = np.column_stack([o.sign * kept[o.metric].to_numpy(float) for o in objs])
    by = table.set_index("study")
    assert by.loc["b", "hypervolume"] == pytest.approx(hypervolume(loss, ref)) and by.loc["b", "hypervolume"] > 0
    assert by.loc["b", "front_size"] == int(pareto_mask(loss).sum())
    assert by.loc["a", "hypervolume"] > 0
    assert f"b: 2 of its 8 feasible trials (trials {', '.join(map(str, lacking))}) lack lut" in caplog.text, caplog.text


def test_cpu_hours_and_figures_count_trials_stopped_or_without_a_figure(tmp_path):
    """A trial the driver stopped (a time limit, Ctrl-C) reports no seconds_total. Before, it counted 0 in the report's and
    compare's CPU-hours (probe 20: six trials stopped at 15 s each, "CPU-hours 0.000"); now its start to its end."""
    import datetime

    import optuna

    from dse.report._compare import load_optuna_source
    from dse.report._figures import study_timing
    from tests.report.synthetic import make_study

    study, storage, _ = make_study(tmp_path / "s", n_trials=4, name="s", failures=False)
    before = study_timing(study).cpu_hours
    start = datetime.datetime(2026, 12, 6, 12, 0, 0)
    dist = optuna.distributions.IntDistribution(3, 5)
    study.add_trial(optuna.trial.FrozenTrial(
        number=-1, state=optuna.trial.TrialState.FAIL, value=None, datetime_start=start,
        datetime_complete=start + datetime.timedelta(seconds=90), params={"weight_bits": 3}, distributions={"weight_bits": dist},
        user_attrs={"fail_reason": "TrialTimeoutError: trial 4 ran past ray.trial_timeout_s=90"}, system_attrs={},
        intermediate_values={}, trial_id=-1,
    ))
    assert study_timing(study).cpu_hours == pytest.approx(before + 90 / 3600)
    assert load_optuna_source("s", storage).cpu_hours == pytest.approx(before + 90 / 3600)
    # a lost driver's trial, told FAIL three days on by the next driver: its start to its last heartbeat (the review)
    study.add_trial(optuna.trial.FrozenTrial(
        number=-1, state=optuna.trial.TrialState.FAIL, value=None, datetime_start=start,
        datetime_complete=start + datetime.timedelta(days=3), params={"weight_bits": 3}, distributions={"weight_bits": dist},
        user_attrs={"fail_reason": "DriverLostError: the driver running trial 5 was lost: gone",
                    "heartbeat": {"driver": "x", "time": start.timestamp() + 40}}, system_attrs={},
        intermediate_values={}, trial_id=-1,
    ))
    assert study_timing(study).cpu_hours == pytest.approx(before + 130 / 3600)

    # a trial without one of the figures (a Latency design's latency_cycles on the EBOPs estimate) is not drawn in that
    # pair's figure; before, the page said "each point is a completed trial" and nothing of the missing ones (probe 20)
    n = sum(1 for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE)
    first = study.trials[0]
    metrics = {k: v for k, v in first.user_attrs["metrics"].items() if k != "dsp"}  # this trial has no dsp figure
    study.add_trial(optuna.trial.create_trial(
        values=list(first.values), params=dict(first.params), distributions=dict(first.distributions),
        user_attrs={**first.user_attrs, "metrics": metrics},
    ))
    from dse.report import build_report

    html = " ".join(build_report(study, storage, tmp_path / "rep", log_to_mlflow=False).html.read_text().split())
    assert f"1 of the {n + 1} completed trials lack dsp and are not drawn here" in html, html
    assert "lack lut" not in html and "Each point is a completed trial that has both figures" in html


def test_importances_read_only_the_draws_a_trial_used(tmp_path):
    """With NSGA-II every parameter is drawn in every trial; a Resource trial's beta draw is pinned to 0 by the rule and
    not used. Before, Optuna's importances scored those unused draws (probe 22: beta ranked second in a study whose every
    trial trained at beta 0); now the report leaves them out, as it did before NSGA-II drew them."""
    from dse.report._figures import param_importances
    from tests.report.synthetic import make_study

    from tests.conftest import TINY_SPACE

    space = {**TINY_SPACE, "parameters": {**TINY_SPACE["parameters"], "strategy": {"type": "categorical", "choices": ["Resource"]}}}
    carried, _, _ = make_study(tmp_path / "c", n_trials=12, name="c", failures=False, carry_inactive=True, space=space)
    assert all("beta" in t.params for t in carried.trials)  # drawn in every trial, and pinned to 0 by the rule in each
    imp = param_importances(carried)
    assert set(imp) == {"csim_val_accuracy", "lut"}, imp
    assert all("beta" not in per for per in imp.values()) and all("weight_bits" in per for per in imp.values()), imp


def test_a_report_reads_trials_a_user_added_with_optuna(tmp_path):
    """A point a user enqueued with ``study.enqueue_trial`` outside the space (Optuna runs it, with a warning) and a trial
    added with ``study.add_trial``: before, the report raised ValueError (the importances rebuilt each trial with
    create_trial, which refuses the value) and TypeError (the missing per-layer ReuseFactors among strings)."""
    import warnings

    import optuna

    from dse.report import build_report
    from tests.report.synthetic import make_study

    study, storage, _ = make_study(tmp_path / "s", n_trials=8, name="s", failures=False)
    study.enqueue_trial({"weight_bits": 12})
    trial = study.ask()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna's "Fixed parameter weight_bits with value 12 is out of range"
        assert trial.suggest_int("weight_bits", 3, 5) == 12
    study.tell(trial, [0.9, 30000.0])
    dists = {"strategy": optuna.distributions.CategoricalDistribution(["Latency", "Resource"]),
             "weight_bits": optuna.distributions.IntDistribution(3, 5)}
    study.add_trial(optuna.trial.create_trial(values=[0.91, 20000.0], params={"strategy": "Latency", "weight_bits": 4},
                                              distributions=dists))
    res = build_report(study, storage, tmp_path / "rep", log_to_mlflow=False)
    assert res.html.is_file()


def test_importances_leave_out_beta_end_where_the_schedule_is_constant(tmp_path):
    """A trial whose ``beta_schedule`` draw is ``constant`` never reaches its ``beta_end`` draw: the importances leave it
    out of that trial, as the record does (its ``beta_end`` is None)."""
    from dse.report._figures import _used_draws
    from dse.store import TrialRecord
    from tests.report.synthetic import make_study

    from tests.conftest import TINY_SPACE

    params = {**TINY_SPACE["parameters"], "beta_end": {"type": "float", "low": 1e-5, "high": 1e-4, "log": True},
              "beta_schedule": {"type": "categorical", "choices": ["constant", "log"]}}
    study, _, _ = make_study(tmp_path / "s", n_trials=12, name="s", failures=False, carry_inactive=True,
                             space={**TINY_SPACE, "parameters": params})
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    constant = [t.number for t in complete if t.params["beta_schedule"] == "constant"]
    assert 0 < len(constant) < len(complete) and all("beta_end" in t.params for t in complete)
    assert all(TrialRecord.of(study.trials[n]).params.beta_end is None for n in constant)
    view = _used_draws(study, complete)
    assert [t.number for t in view.trials if "beta_end" not in t.params] == [complete.index(study.trials[n]) for n in constant]
