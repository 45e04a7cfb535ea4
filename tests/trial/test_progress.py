"""The trial's steps.json: what a worker writes as each step starts, and what the driver reads back after a timeout."""

from __future__ import annotations

import json
import os
import time

from dse.trial._progress import STEPS_FILE, read_step_progress, write_step_progress


def test_the_last_step_written_is_read_back_with_the_steps_before_it(tmp_path):
    write_step_progress(tmp_path, "run-a", "setup", {})
    write_step_progress(tmp_path, "run-a", "train", {"setup": 3.94, "build": 0.06})
    time.sleep(0.05)
    progress = read_step_progress(tmp_path, "run-a")
    assert progress is not None
    assert progress.step == "train" and list(progress.finished) == ["setup", "build"]
    assert 0.04 < progress.seconds_in_step < 5
    assert progress.describe().startswith("in step train for 0 s (before it: setup 3.9 s, build 0.1 s)")
    data = json.loads((tmp_path / STEPS_FILE).read_text())
    assert data["pid"] == os.getpid()
    assert [p.name for p in tmp_path.iterdir()] == [STEPS_FILE], "no temporary file is left"
    write_step_progress(tmp_path, "run-a", "setup", {})
    assert read_step_progress(tmp_path, "run-a").describe() == "in step setup for 0 s", "no 'before it' for the first step"


def test_another_runs_file_a_broken_one_or_none_is_no_progress(tmp_path):
    assert read_step_progress(tmp_path, "run-a") is None  # the folder is on another node, or the worker never started
    assert read_step_progress(tmp_path / "absent", "run-a") is None
    write_step_progress(tmp_path, "run-b", "train", {"setup": 1.0})
    assert read_step_progress(tmp_path, "run-a") is None, "an earlier study's trial of the same number"
    for text in ("{", "[]", '{"run_id": "run-a"}', '{"run_id": "run-a", "step": "x", "started": "late"}'):
        (tmp_path / STEPS_FILE).write_text(text)
        assert read_step_progress(tmp_path, "run-a") is None, text


def test_a_folder_that_cannot_be_written_fails_nothing(tmp_path):
    write_step_progress(tmp_path / "absent", "run-a", "train", {})  # an OSError: ignored, the trial goes on
    assert not (tmp_path / "absent").exists()


def test_a_checkpoints_steps_are_its_own_and_mlflow_calls_are_a_step(tmp_path):
    """As run_trial and its harvest drive them: a checkpoint's steps (the same names as the trial's) carry its epoch,
    so the trial's seconds are not replaced by a checkpoint's (the review of this change: they were, and the
    metrics recorded for a timed-out harvesting trial mixed the two); time in MLflow's calls after the last timed
    step is its own step, `log`, not the last one's; a backend's seconds_synthesis extra is no step (the second
    review: listed as one, its time counted twice)."""
    from dse.trial._runner import _Steps

    trial: dict[str, float] = {}
    step = _Steps(trial, tmp_path, "run-a")
    with step("trace"):
        time.sleep(0.01)
    trial["seconds_synthesis"] = 4.2  # a backend's extra (Yosys', Vivado's), within its resources_ step: no step
    step.note("log")
    progress = read_step_progress(tmp_path, "run-a")
    assert progress.step == "log" and list(progress.finished) == ["trace"]
    checkpoint: dict[str, float] = {}
    cstep = _Steps(checkpoint, tmp_path, "run-a", " of the checkpoint of epoch 3", before=step.finished())
    with cstep("trace"):
        time.sleep(0.03)
    cstep.note("log")
    progress = read_step_progress(tmp_path, "run-a")
    assert progress.step == "log of the checkpoint of epoch 3"
    assert progress.finished == {"trace": trial["seconds_trace"], "trace of the checkpoint of epoch 3": checkpoint["seconds_trace"]}
    assert checkpoint["seconds_trace"] > trial["seconds_trace"]
