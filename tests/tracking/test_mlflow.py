"""TrialRunLogger against a real SQLite MLflow store."""

import json
import os
import shutil
import sys

import mlflow
import pytest
from mlflow import MlflowClient

from dse.tracking import TrialRunLogger


@pytest.fixture()
def run(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp_id = client.create_experiment("t", artifact_location=(tmp_path / "art").as_uri())
    return uri, client, client.create_run(exp_id).info.run_id


def _count_batches(logger, monkeypatch):
    calls = []
    real = logger.client.log_batch

    def spy(*a, **k):
        calls.append({key: len(v) for key, v in k.items() if v})
        return real(*a, **k)

    monkeypatch.setattr(logger.client, "log_batch", spy)
    return calls


def test_log_results_one_call_for_a_trial(run, monkeypatch):
    uri, client, run_id = run
    logger = TrialRunLogger(uri, run_id)
    calls = _count_batches(logger, monkeypatch)
    history = {"loss": [1.0, 0.5, 0.25], "val_accuracy": [0.5, 0.7, 0.9]}
    logger.log_results({"csim_accuracy": 0.9, "lut": 1200.0, "skipped": None}, {"state": "COMPLETE", "csim": "run"}, history)
    assert calls == [{"metrics": 8, "tags": 2}]
    data = client.get_run(run_id).data
    assert data.metrics["csim_accuracy"] == 0.9 and data.metrics["lut"] == 1200.0 and "skipped" not in data.metrics
    assert data.tags["state"] == "COMPLETE" and data.tags["csim"] == "run"
    steps = [(m.step, m.value) for m in client.get_metric_history(run_id, "epoch_loss")]
    assert sorted(steps) == [(0, 1.0), (1, 0.5), (2, 0.25)]


def test_log_results_splits_at_mlflow_limits(run, monkeypatch):
    """More than 1000 entities or 100 tags in all: several calls within MLflow's limits, nothing lost."""
    uri, client, run_id = run
    logger = TrialRunLogger(uri, run_id)
    calls = _count_batches(logger, monkeypatch)
    metrics = {f"m{i}": float(i) for i in range(50)}
    history = {"loss": [float(i) for i in range(1000)]}
    tags = {f"t{i}": str(i) for i in range(150)}
    logger.log_results(metrics, tags, history)
    for c in calls:
        assert c.get("metrics", 0) <= 1000 and c.get("tags", 0) <= 100 and sum(c.values()) <= 1000
    assert sum(c.get("metrics", 0) for c in calls) == 1050 and sum(c.get("tags", 0) for c in calls) == 150
    data = client.get_run(run_id).data
    assert len(data.tags.keys() & tags.keys()) == 150 and data.metrics["m49"] == 49.0
    assert len(client.get_metric_history(run_id, "epoch_loss")) == 1000


def test_log_results_then_finish_writes_state_once(run, monkeypatch):
    uri, client, run_id = run
    logger = TrialRunLogger(uri, run_id)
    calls = _count_batches(logger, monkeypatch)
    logger.log_results({"lut": 1.0}, {"csim": "run"}, end="FAIL", error="MeasurementError: x")
    assert calls == [{"metrics": 1, "tags": 4}]  # the end tags (state, error, error_type) ride with the results
    r = client.get_run(run_id)
    assert r.info.status == "FAILED" and r.data.tags["state"] == "FAIL" and r.data.tags["error"] == "MeasurementError: x"
    assert r.data.tags["error_type"] == "MeasurementError"
    assert mlflow.get_tracking_uri() != uri  # the logger never touched the global tracking URI


def test_finish_trial_run_writes_a_lost_loggings_tag_with_the_end(run, monkeypatch):
    """A trial whose worker's MLflow logging failed: the driver tags `logging_error` in the same call as the run's end tags
    (before, one more MLflow call per such trial)."""
    from dse.tracking import StudyTracker

    uri, client, run_id = run
    tracker = StudyTracker(uri, "t")
    calls = _count_batches(tracker, monkeypatch)
    tracker.finish_trial_run(run_id, "COMPLETE", tagged=None, feasible=True, tags={"logging_error": "MlflowException: x"})
    assert calls == [{"tags": 3}]  # state, feasible, logging_error
    r = client.get_run(run_id)
    assert r.info.status == "FINISHED" and r.data.tags["logging_error"] == "MlflowException: x"
    assert r.data.tags["state"] == "COMPLETE" and r.data.tags["feasible"] == "true"


def test_finish_trial_run_deletes_a_worker_verdict_that_no_longer_holds(run):
    """A constrained trial the worker tagged feasible, which the driver then failed (an objective it could not read):
    the run ends FAIL without the worker's `feasible` tag, as a run that failed in the worker has none."""
    from dse.tracking import StudyTracker

    uri, client, run_id = run
    logger = TrialRunLogger(uri, run_id)
    logger.log_results({"lut": 1.0}, {"state": "COMPLETE", "feasible": "true"}, None)
    StudyTracker(uri, "t").finish_trial_run(run_id, "FAIL", "MeasurementError: objective 'csim_accuracy' was not measured",
                                            tagged="COMPLETE", untag=("feasible",))
    r = client.get_run(run_id)
    assert r.info.status == "FAILED" and r.data.tags["state"] == "FAIL" and "feasible" not in r.data.tags
    # a tag that is not there (the worker's logging failed before writing it) is nothing to delete, not an MLflow error
    StudyTracker(uri, "t").finish_trial_run(run_id, "FAIL", "MeasurementError: x", tagged="COMPLETE", untag=("feasible",))


def test_a_study_run_by_an_earlier_dse_is_not_told_changed_by_fields_it_lacked(tmp_path):
    """An upgraded dse continuing a study: the parent run's params lack the fields added since (resources.backend_modules).
    Before, `experiment_updated` named them though no one changed them (probe 15); now only a field off its default is
    named. The parent run keeps every commit that ran the study (`dse.git_commits`), not only the last."""
    from dse.config import load_experiment
    from dse.tracking import EXPERIMENT_UPDATED_TAG, StudyTracker, provenance_tags
    from tests.conftest import write_experiment

    exp, _ = load_experiment(write_experiment(tmp_path))
    config = exp.model_dump(mode="json")
    older = {**config, "resources": {k: v for k, v in config["resources"].items() if k != "backend_modules"}}
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = StudyTracker(uri, "t")
    parent = tracker.study_run("tiny", older)  # the first driver, of a dse without the field
    client = MlflowClient(uri)
    client.set_tag(parent, "dse.git_commit", "0123abc")  # the earlier dse's commit
    assert tracker.study_run("tiny", config) == parent
    tags = client.get_run(parent).data.tags
    assert EXPERIMENT_UPDATED_TAG not in tags, tags[EXPERIMENT_UPDATED_TAG]
    if "dse.git_commit" in provenance_tags():  # a git checkout, as in CI
        assert tags["dse.git_commits"] == f"0123abc,{provenance_tags()['dse.git_commit']}"
    changed = {**config, "resources": {**config["resources"], "backend_modules": ["mybackends"]}}
    tracker.study_run("tiny", changed)
    assert client.get_run(parent).data.tags[EXPERIMENT_UPDATED_TAG] == "resources.backend_modules"


def test_a_copy_of_the_study_in_another_storage_is_warned_of(tmp_path, caplog):
    """`optuna.copy_study` into another storage, then `dse run` from the same run directory: the copy records the
    original's parent run and logs into it; before, without a word (only the experiment_updated tag listed storage)."""
    import logging

    from dse.config import load_experiment
    from dse.tracking import StudyTracker
    from tests.conftest import write_experiment

    exp, _ = load_experiment(write_experiment(tmp_path))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    parent = StudyTracker(uri, "t").study_run("tiny", exp.model_dump(mode="json"))
    copy = {**exp.model_dump(mode="json"), "storage": f"sqlite:///{tmp_path / 'copy.db'}"}
    with caplog.at_level(logging.WARNING, logger="dse.tracking"):
        assert StudyTracker(uri, "t", parent_run_id=parent).study_run("tiny", copy) == parent
    said = " ".join(caplog.text.split())
    assert f"MLflow parent run {parent} was last used by a run of study 'tiny' with storage the default (in run_dir), and this run's storage is sqlite:///" in said, said
    assert "give the copy a run_dir or mlflow.tracking_uri of its own" in said
    caplog.clear()  # a study moved to that storage is told once (the review: MLflow params cannot change)
    with caplog.at_level(logging.WARNING, logger="dse.tracking"):
        assert StudyTracker(uri, "t", parent_run_id=parent).study_run("tiny", copy) == parent
    assert "was last used by" not in caplog.text


def test_a_renamed_experiment_keeps_the_study_and_a_new_name_in_the_file_moves_it(tmp_path, caplog):
    """The parent run the study records is kept after its experiment was renamed in MLflow (a warning says so); a new
    `mlflow.experiment_name` in the experiment file moves the study to that experiment, as before (the review: the
    recorded parent overrode it, and the warning said "renamed")."""
    import logging

    from dse.config import load_experiment
    from dse.tracking import StudyTracker
    from tests.conftest import write_experiment

    exp, _ = load_experiment(write_experiment(tmp_path, name="ren"))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    parent = StudyTracker(uri, "ren").study_run("ren", exp.model_dump(mode="json"))
    client = MlflowClient(uri)
    client.rename_experiment(client.get_run(parent).info.experiment_id, "ren-old")
    with caplog.at_level(logging.WARNING, logger="dse.tracking"):
        kept = StudyTracker(uri, "ren", parent_run_id=parent)
        assert kept.study_run("ren", exp.model_dump(mode="json")) == parent and client.get_experiment_by_name("ren") is None
    assert "is named 'ren-old' now (renamed in MLflow)" in caplog.text
    caplog.clear()
    moved = exp.model_copy(update={"mlflow": exp.mlflow.model_copy(update={"experiment_name": "ren-new"})})
    with caplog.at_level(logging.WARNING, logger="dse.tracking"):
        new = StudyTracker(uri, "ren-new", parent_run_id=parent).study_run("ren", moved.model_dump(mode="json"))
    assert new != parent and client.get_run(new).info.experiment_id == client.get_experiment_by_name("ren-new").experiment_id
    assert "renamed" not in caplog.text


def _readme_search_runs_snippet() -> str:
    """The README's `mlflow.search_runs` example (section "MLflow names (stable)"), as written."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    start = text.index("```python\nimport mlflow\nmlflow.set_tracking_uri(")
    return text[start + len("```python\n"): text.index("```", start + 10)]


@pytest.mark.parametrize("lut_limit, expect", [("1e12", "metrics.csim_val_accuracy"), ("1", "no Pareto-front trial under")])
def test_readme_search_runs_example_runs_on_a_real_study(tiny_study, lut_limit, expect):
    """The README's MLflow query runs as written on a study's store, when front runs match and when none does
    (search_runs then returns a table without columns: the example indexed it and raised KeyError)."""
    import subprocess
    import sys

    exp, _, _ = tiny_study
    code = (_readme_search_runs_snippet()
            .replace("sqlite:///runs/quickstart/mlflow.db", exp.tracking_uri)
            .replace('experiment_names=["quickstart"]', f'experiment_names=["{exp.mlflow.experiment_name or exp.name}"]')
            .replace("metrics.lut < 20000", f"metrics.lut < {lut_limit}"))
    assert exp.tracking_uri in code and lut_limit in code
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert expect in proc.stdout, proc.stdout


def test_uncommitted_changes_are_read_with_untracked_package_files(tmp_path):
    """`dse.git_dirty` missed untracked files in the package (`-uno`), and no run kept what the changes were."""
    import subprocess

    from dse.tracking._mlflow import _git_changes

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "dse").mkdir()
    (tmp_path / "dse" / "a.py").write_text("x = 1\n")
    (tmp_path / "notes.txt").write_text("scratch\n")
    git("add", "dse/a.py")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "a")
    assert _git_changes(tmp_path) == ""  # an untracked file outside the package is not the code that ran
    (tmp_path / "dse" / "b.py").write_text("y = 2\n")
    assert _git_changes(tmp_path) == "# untracked file in the package: dse/b.py\ny = 2\n"
    (tmp_path / "dse" / "a.py").write_bytes(b"x = 3  # \xe9\n")  # not UTF-8: replaced, not an error
    (tmp_path / "notes.txt").write_text("password\n")
    git("add", "notes.txt")  # tracked, changed, but not code
    changes = _git_changes(tmp_path)
    assert "-x = 1\n+x = 3  # \ufffd\n" in changes and changes.endswith("dse/b.py\ny = 2\n") and "password" not in changes
    assert _git_changes(tmp_path / "nowhere") is None


def test_an_experiment_allow_changed_replaces_is_kept_with_the_trial_count(tmp_path):
    """`dse run --allow-changed` replaced the stored experiment and search space: what built the earlier trials was
    recorded nowhere, and `experiment_updated` left out a search space changed in place. Now the replaced ones are kept
    (Optuna's study and the parent run's experiment_history.json), with the trial count at the change; `dse status` says so."""
    import json

    import optuna
    from typer.testing import CliRunner

    from dse.cli import app
    from dse.config import load_experiment
    from dse.store import StudyRecords
    from dse.tracking import EXPERIMENT_UPDATED_TAG, StudyTracker
    from tests.conftest import write_experiment

    exp, space = load_experiment(write_experiment(tmp_path, training={"epochs": 3}))
    exp = exp.model_copy(update={"storage": "postgresql+psycopg://dse:OLDPW@127.0.0.1:9/optuna"})  # rotated since
    db = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name="tiny", storage=db, directions=["maximize", "minimize"])
    records = StudyRecords(study)
    records.save_experiment(exp, space, {"digest": "d1", "shape": [10, 64]})
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL))
    study.enqueue_trial({})  # trial 1, WAITING: it runs with the experiment that replaces this one
    assert records.experiment_version() == 1 and records.experiment_history() == []
    later = exp.model_copy(update={"training": exp.training.model_copy(update={"epochs": 4})})
    changed = records.experiment_diff(later, space)
    assert changed == ["training.epochs: 3 -> 4"]
    records.save_experiment(later, space, {"digest": "d1", "shape": [10, 64]}, changed + ["search_space.parameters: x"])
    history = StudyRecords(optuna.load_study(study_name="tiny", storage=db)).experiment_history()
    assert [(h["version"], h["until_trial"], h["experiment"]["training"]["epochs"]) for h in history] == [(1, 1, 3)]
    assert history[0]["search_space"] == space.model_dump(mode="json") and records.experiment_version() == 2
    assert history[0]["experiment"]["storage"] == "postgresql+psycopg://dse:***@127.0.0.1:9/optuna"  # a record, no password
    records.save_experiment(later, space)  # no change: no new version
    assert records.experiment_version() == 2

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = StudyTracker(uri, "tiny")
    parent = tracker.study_run("tiny", later.model_dump(mode="json"))
    tracker.log_experiment_history(parent, history)
    client = MlflowClient(uri)
    assert json.load(open(client.download_artifacts(parent, "experiment_history.json")))[0]["changed"][0] == "training.epochs: 3 -> 4"
    assert client.get_run(parent).data.tags[EXPERIMENT_UPDATED_TAG] == "search_space (contents)"
    result = CliRunner().invoke(app, ["status", "tiny", "--storage", db])
    assert result.exit_code == 0, result.output
    assert "experiment changed (--allow-changed) from trial 1 on: training.epochs: 3 -> 4" in " ".join(result.output.split())


def test_pareto_tags_are_not_rewritten_when_the_front_and_the_runs_are_the_same(tmp_path, monkeypatch):
    """Probe 38: a rerun of a finished 2,000-trial study rewrote all 1,698 `pareto` tags (5.6 s, one SQLite transaction
    each) though nothing had changed. A digest of the marking is kept on the parent run (beside the tags, so a store put
    back from a backup is judged by its own); the same front and runs write nothing, a changed front or a new run
    writes them all, as before."""
    from dse.config import TrialParams
    from dse.tracking import StudyTracker

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = StudyTracker(uri, "tags")
    parent = tracker.study_run("tags", {})
    runs = [tracker.trial_run(parent, "tags", n, TrialParams(), []) for n in range(4)]
    writes = []
    set_tag = MlflowClient.set_tag
    monkeypatch.setattr(MlflowClient, "set_tag", lambda self, rid, key, value, **kw: (writes.append((rid, key, value)),
                                                                                       set_tag(self, rid, key, value, **kw))[1])
    client = MlflowClient(uri)
    tracker.mark_pareto({runs[0]}, runs, parent_run_id=parent)
    assert len(writes) == 5 and writes[-1][:2] == (parent, "dse.marked.pareto")  # 4 runs, then the digest
    assert [client.get_run(r).data.tags["pareto"] for r in runs] == ["true", "false", "false", "false"]
    writes.clear()
    tracker.mark_pareto({runs[0]}, runs, parent_run_id=parent)
    assert writes == []  # nothing changed: nothing written
    tracker.mark_pareto({runs[1]}, runs, parent_run_id=parent)  # the front moved: all written again
    assert len(writes) == 5 and [client.get_run(r).data.tags["pareto"] for r in runs] == ["false", "true", "false", "false"]
    writes.clear()
    tracker.mark_pareto({runs[1]}, runs[:3], parent_run_id=parent)  # one run fewer
    assert len(writes) == 4
    client.set_tag(parent, "dse.marked.pareto", "from a backup")  # a store whose digest is another marking's
    writes.clear()
    tracker.mark_pareto({runs[1]}, runs[:3], parent_run_id=parent)
    assert len(writes) == 4
    writes.clear()
    tracker.mark_pareto({runs[1]}, runs[:3])  # no parent run given: every tag, as before
    assert len(writes) == 3


def test_a_study_whose_mlflow_store_is_gone_is_refused(tmp_path):
    """Probe 32: `rm mlflow.db`, then `dse check` said OK and `dse run` went on into a new, empty store, advising
    `mlflow runs restore` for runs that were gone with the file."""
    from typer.testing import CliRunner

    from dse.cli import app
    from tests.report.synthetic import make_study

    _, _, exp = make_study(tmp_path, n_trials=2, name="gone", failures=False)
    assert CliRunner().invoke(app, ["check", str(tmp_path / "experiment.yaml")]).exit_code == 0
    # probe 36: a damaged store (here its schema page overwritten) passed `dse check`; `dse run` ended in a traceback
    store = exp.resolved_run_dir / "mlflow.db"
    with open(store, "r+b") as f:
        f.seek(100)  # past SQLite's 100-byte file header: page 1's b-tree of the schema
        f.write(b"\xff" * 3000)
    for command in ("check", "run"):
        result = CliRunner().invoke(app, [command, str(tmp_path / "experiment.yaml")])
        text = " ".join(result.output.split())
        assert result.exit_code == 2 and "Traceback" not in result.output, text
        assert f"error: TrackingError: mlflow.tracking_uri: the MLflow store {store} cannot be read (" in text, text
        assert "the file is damaged. Put back a copy from a backup" in text, text
    store.unlink()
    for command in ("check", "run"):
        result = CliRunner().invoke(app, [command, str(tmp_path / "experiment.yaml")])
        text = " ".join(result.output.split())
        assert result.exit_code == 2 and (
            "error: TrackingError: mlflow.tracking_uri (default, in run_dir): study 'gone' logged its MLflow runs "
            "(parent run ") in text and (f"to {exp.resolved_run_dir / 'mlflow.db'}, and {exp.resolved_run_dir / 'mlflow.db'} "
                                         "does not exist (deleted or moved)") in text, text
        assert not (exp.resolved_run_dir / "mlflow.db").exists()  # no empty store made
    # a new store named on purpose is the user's choice (the review: no way past the refusal)
    from dse.config import load_experiment
    from dse.study import preflight

    fresh, space = load_experiment(tmp_path / "experiment.yaml", mlflow={"tracking_uri": f"sqlite:///{tmp_path / 'new.db'}"})
    preflight(fresh, space, compare_stored=False)


def test_a_commit_is_recorded_only_for_dses_own_code(tmp_path):
    """Probe 40: dse installed into a virtual environment inside another git repository recorded that repository's
    commit, and its whole installed package as uncommitted changes (a 0.9 MB diff on every parent run). Now the commit
    is that of dse's own checkout, or the one pip recorded for an install from a git URL, and nothing else."""
    import subprocess

    from tests.conftest import REPO

    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True)
    if head.returncode or not (REPO / ".git").exists():
        pytest.skip("dse is not run from a git checkout here: nothing to install from a git URL")
    project = tmp_path / "project"  # the user's own repository, their environment inside it
    project.mkdir()
    for args in (["init", "-q"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "x"]):
        subprocess.run(["git", *args], cwd=project, check=True, capture_output=True)
    site = project / "env" / "site-packages"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(site),
                    f"git+file://{REPO}"], check=True, capture_output=True, timeout=300)
    show = ("import json; from dse.tracking import provenance_tags; t = provenance_tags(); import dse; "
            "print(json.dumps([dse.__file__, {k: v for k, v in t.items() if 'git' in k}]))")
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run([sys.executable, "-c", show], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    where, tags = json.loads(out.stdout.strip().splitlines()[-1])
    assert where == str(site / "dse" / "__init__.py")
    assert tags == {"dse.git_commit": head.stdout.strip(), "mlflow.source.git.commit": head.stdout.strip()}, tags
    # the same package copied in as a plain folder (a wheel, a Docker image's COPY): no commit at all
    (direct_url,) = site.glob("fpga_dse-*.dist-info/direct_url.json")
    direct_url.unlink()
    out = subprocess.run([sys.executable, "-c", show], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert json.loads(out.stdout.strip().splitlines()[-1])[1] == {}, out.stdout
    # dse's sources as a tracked folder of a larger repository (a monorepo): that repository's commit, and clean
    shutil.copytree(site / "dse", project / "tools" / "dse", ignore=shutil.ignore_patterns("__pycache__"))
    for args in (["add", "tools"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "dse"]):
        subprocess.run(["git", *args], cwd=project, check=True, capture_output=True)
    mono = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project, capture_output=True, text=True).stdout.strip()
    out = subprocess.run([sys.executable, "-c", show], cwd=tmp_path, env={**env, "PYTHONPATH": str(project / "tools")},
                         capture_output=True, text=True, timeout=300)
    where, tags = json.loads(out.stdout.strip().splitlines()[-1])
    assert where == str(project / "tools" / "dse" / "__init__.py")
    assert tags == {"dse.git_commit": mono, "mlflow.source.git.commit": mono, "dse.git_dirty": "false"}, tags
