"""dse.trial._remeasure: one finished trial measured again from its MLflow artifacts, as `dse synthesize` does."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import write_experiment


def test_a_remeasurement_uses_the_settings_the_trial_was_built_for(trained_design_parts, digits_splits, tmp_path):
    """A study continued with --allow-changed after hls4ml.part changed holds trials built for the earlier part. Before
    (the review of stop 45), `dse synthesize` converted and synthesized such a trial for the study's current part (Yosys
    took that part's family), while caching the figures under the trial's own design hash, computed from the recorded
    part. Now the trial's recorded backend, part, clock and IOType are used."""
    assert shutil.which("yosys"), "yosys must be installed for this test (scripts/setup.sh installs it)"
    from dse.config import load_experiment
    from dse.resources import yosys_family
    from dse.tracking import StudyTracker, TrialRunLogger
    from dse.trial import hls4ml_config, layer_sizes, resolve_reuse_factors
    from dse.trial._hls import conversion_record
    from dse.trial._remeasure import RemeasureSpec, remeasure_trial

    _, params, model, ebops = trained_design_parts
    built, _ = load_experiment(write_experiment(tmp_path / "exp", name="built"))
    params = resolve_reuse_factors(params, layer_sizes(built.model, 64, 10), built.hls4ml)
    built.resolved_run_dir.mkdir(parents=True)
    tracker = StudyTracker(built.tracking_uri, built.name, artifact_location=(built.resolved_run_dir / "mlartifacts").as_uri())
    parent = tracker.study_run(built.name, built.model_dump(mode="json"))
    run_id = tracker.trial_run(parent, built.name, 0, params, [])
    logger = TrialRunLogger(built.tracking_uri, run_id)
    model.save(tmp_path / "model.keras")
    logger.log_artifact(tmp_path / "model.keras")
    logger.log_dict(conversion_record(hls4ml_config(model, params, built.hls4ml), built.hls4ml), "hls4ml_config.yaml")
    logger.log_results({"ebops": ebops}, {})

    now = built.model_copy(update={"hls4ml": built.hls4ml.model_copy(update={"part": "xc7a35tcpg236-1", "clock_period": 10.0})})
    assert yosys_family(now.hls4ml.part) != yosys_family(built.hls4ml.part)
    work = tmp_path / "work"
    result = remeasure_trial(RemeasureSpec(now, "yosys", 0, run_id, params, work, keep_files=True), digits_splits)
    assert result.error is None, result.error
    log = (work / "yosys" / "yosys.log").read_text()
    assert f"-family {yosys_family(built.hls4ml.part)} " in log, log[:2000]
    assert f"-family {yosys_family(now.hls4ml.part)} " not in log
    assert result.metrics["yosys_lut"] > 0
    xdc = (work / "yosys" / "src" / "dse_top.xdc").read_text()  # da4ml's constraints carry the clock it was given
    assert f"set clock_period {built.hls4ml.clock_period}\n" in xdc, xdc[:300]


@pytest.mark.parametrize("record, field, expected", [
    ({"Part": "xcu250-figd2104-2L-e", "ClockPeriod": 3.2, "IOType": "io_stream", "Backend": "Vivado"}, "part", "xcu250-figd2104-2L-e"),
    ({}, "part", None),  # a record without them keeps the experiment's
])
def test_recorded_settings(record, field, expected):
    from dse.config import Hls4mlConfig
    from dse.trial._hls import recorded_settings

    now = Hls4mlConfig(part="xc7a35tcpg236-1", clock_period=10.0)
    got = recorded_settings(record, now)
    assert getattr(got, field) == (expected or getattr(now, field))
    if record:
        assert (got.clock_period, got.io_type, got.backend) == (3.2, "io_stream", "Vivado")
