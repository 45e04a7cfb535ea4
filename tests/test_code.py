"""The driver and its Ray workers run the same dse code (dse._code), or the study stops saying why (probe 40)."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import dse
from dse._code import NO_SOURCES, check_same_code, this_code
from dse.exceptions import WorkerCodeError


def test_other_sources_are_refused_naming_both_folders_and_the_fix(tmp_path):
    mine = this_code()
    check_same_code(None)  # a caller that sends no identity checks nothing
    check_same_code(dataclasses.replace(mine, folder="/elsewhere/dse", cwd="/elsewhere"))  # the same sources elsewhere
    other = dataclasses.replace(mine, fingerprint="0" * 16, folder="/opt/venv/site-packages/dse", cwd="/home/u")
    with pytest.raises(WorkerCodeError, match=rf"this Ray worker imported dse from {mine.folder} .* the driver from "
                                              r"/opt/venv/site-packages/dse .*install the driver's dse"):
        check_same_code(other)
    # the worker's package sits in the folder the driver was started in: Ray's import path, and the way out
    started_in = dataclasses.replace(other, cwd=str(Path(mine.folder).parent))
    with pytest.raises(WorkerCodeError, match=r"Ray puts the folder the driver was started in .* start `dse` from another folder"):
        check_same_code(started_in)
    # the same folder, other sources: edited while the study ran (the review: "install the driver's dse" there)
    with pytest.raises(WorkerCodeError, match=rf"the sources in {mine.folder} changed after the driver read them"):
        check_same_code(dataclasses.replace(mine, fingerprint="0" * 16))
    # an install without sources on one side: the version is all there is to compare
    check_same_code(dataclasses.replace(mine, fingerprint=NO_SOURCES))
    with pytest.raises(WorkerCodeError, match="version 0.0.1"):
        check_same_code(dataclasses.replace(mine, fingerprint=NO_SOURCES, version="0.0.1"))


@pytest.mark.slow  # 25-60 s on a 2-core host: SLOW=1 bash scripts/test.sh (README, Testing)
def test_a_dse_package_in_the_drivers_folder_stops_the_study_before_a_worker_trains(tmp_path):
    """Before: `dse run` started in a folder holding a `dse` package (a checkout, with dse installed from a wheel) ran
    the installed dse while Ray's workers, whose import path starts with that folder, trained with the folder's, and the
    study recorded the driver's version. Now the first trial stops the study with WorkerCodeError, its parameters
    re-enqueued, and a run from another folder evaluates them."""
    import optuna

    from tests.conftest import write_experiment

    shadow = tmp_path / "checkout"
    shutil.copytree(Path(dse.__file__).parent, shadow / "dse", ignore=shutil.ignore_patterns("__pycache__"))
    with open(shadow / "dse" / "__init__.py", "a") as fh:
        fh.write("# a local change, not installed\n")
    space = {"parameters": {"strategy": {"type": "categorical", "choices": ["Latency"]},
                            "beta": {"type": "float", "low": 1e-6, "high": 1e-5, "log": True}}}
    path = write_experiment(tmp_path / "exp", space=space, name="shadowed", n_trials=1,
                            storage=f"sqlite:///{tmp_path}/optuna.db", ray={"num_cpus": 2, "max_concurrent_trials": 1})
    cli = Path(sys.executable).parent / "dse"  # the console script: its own folder, not the working one, on sys.path
    env = {"PATH": f"{cli.parent}:/usr/bin:/bin", "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2",
           "HOME": str(tmp_path)}
    done = subprocess.run([str(cli), "run", str(path), "--no-progress"], cwd=shadow, capture_output=True, text=True,
                          timeout=600, env=env)
    assert done.returncode == 2, done.stderr[-3000:]  # dse's exit code for an error it names
    said = " ".join(done.stderr.split())
    assert f"WorkerCodeError: this Ray worker imported dse from {shadow / 'dse'}" in said, said[-3000:]
    assert f"the driver from {Path(dse.__file__).parent}" in said and "start `dse` from another folder" in said, said[-3000:]
    trials = optuna.load_study(study_name="shadowed", storage=f"sqlite:///{tmp_path}/optuna.db").trials
    assert [(t.number, t.state.name) for t in trials] == [(0, "FAIL"), (1, "WAITING")]
    assert "its worker imported other dse code than the driver's" in trials[0].user_attrs["fail_reason"]
    from mlflow import MlflowClient

    run = MlflowClient(f"sqlite:///{tmp_path}/exp/run/mlflow.db").get_run(trials[0].user_attrs["mlflow_run_id"])
    assert "seconds_setup" in run.data.metrics and "seconds_train" not in run.data.metrics  # stopped before training
    assert trials[1].user_attrs.get("requeued_from") == 0
    again = subprocess.run([str(cli), "run", str(path), "--no-progress"], cwd=tmp_path, capture_output=True, text=True,
                           timeout=600, env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    trials = optuna.load_study(study_name="shadowed", storage=f"sqlite:///{tmp_path}/optuna.db").trials
    assert trials[1].state.name == "COMPLETE" and trials[1].params == trials[0].params
