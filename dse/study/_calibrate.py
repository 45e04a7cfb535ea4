"""``dse calibrate``: estimate-vs-precise statistics, stored on the study's MLflow parent run."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from optuna.trial import TrialState

from dse.exceptions import ConfigError
from dse.report import CalibrationStats, calibration_pairs, calibration_stats, trial_numbers_text
from dse.store import StudyRecords
from dse.study._storage import load_study
from dse.study._synthesize import located_experiment

__all__ = ["CalibrationResult", "calibrate"]

log = logging.getLogger(__name__)

#: (estimate column, precise column suffix) pairs compared when present.
_COMPARISONS = (
    ("lut", "lut"), ("ebops", "lut"), ("da4ml_cost", "lut"), ("dsp", "dsp"), ("latency_cycles", "latency_cycles"),
)


@dataclass
class CalibrationResult:
    """Statistics per compared pair and the CSV of per-trial pairs.

    Attributes:
        backend: the precise backend compared against.
        n_trials: the re-measured trials compared (the CSV's rows), not the study's trial count.
        stats: one :class:`~dse.report.CalibrationStats` per (estimate, precise figure) pair with numbers.
        csv: the CSV of per-trial pairs (also logged to the parent MLflow run).
        unmeasured: the completed trials ``backend`` could measure and has not (a Strategy it measures), to name in
            ``dse synthesize --trials``.
    """

    backend: str
    n_trials: int
    stats: list[CalibrationStats]
    csv: Path
    unmeasured: list[int] = field(default_factory=list)


def calibrate(study_name: str, storage: str, backend: str = "yosys", tracking_uri: str | None = None) -> CalibrationResult:
    """Compare the trials' estimates with ``backend``'s figures across re-measured trials.

    Logs ``calibration_<backend>_<estimate>_<stat>`` metrics and ``calibration_<backend>.csv``
    to the parent MLflow run.

    Args:
        study_name: the study's name.
        storage: its Optuna storage URL.
        backend: the precise backend whose re-measurements (``dse synthesize``) are the reference.
        tracking_uri: where the study's MLflow runs are now, in place of the recorded URI (as ``dse export``'s).

    Returns:
        The statistics of each compared pair (estimate against ``backend``'s figure, per metric) and the CSV of per-trial pairs.

    Raises:
        StudyNotFoundError: no such study.
        StorageError: ``storage`` is not a usable URL or journal file, or cannot be read.
        TrackingError: ``tracking_uri`` (or the recorded one) names no MLflow store that holds the study's runs.
        ConfigError: unknown or non-precise ``backend`` (``ebops``); no trial was re-measured with
            ``backend`` (run ``dse synthesize`` first).
    """
    from dse.resources import precise_backend_class
    from dse.tracking import StudyTracker

    study = load_study(study_name, storage)
    exp = located_experiment(study, storage, tracking_uri)
    try:
        cls = precise_backend_class(backend)
    except ValueError as e:  # as `dse synthesize --backend` words it
        raise ConfigError(f"--backend (Python: backend=): {e}") from e
    pairs = calibration_pairs(study, backend)
    if pairs.empty:
        completed = StudyRecords(study).trials((TrialState.COMPLETE,))
        strategies = sorted({r.params.strategy for r in completed if r.params})
        if strategies and cls.strategies is not None and not set(strategies) & set(cls.strategies):
            raise ConfigError(
                f"{backend!r} measures {', '.join(cls.strategies)} designs only, and study {study_name!r} has none "
                f"(its completed trials are {', '.join(strategies)}), so there is nothing to calibrate against it; "
                "calibrate against vivado or vitis reports (`dse synthesize --backend vivado`, with Vivado or Vitis on PATH)"
            )
        if not strategies:  # nothing completed: `dse synthesize --front` would have nothing to measure either
            raise ConfigError(
                f"study {study_name!r} has no completed trial, so there is nothing to calibrate; `dse status "
                f"{study_name}` shows why its trials failed; fix that and `dse run` again"
            )
        own = [r.number for r in completed if r.tags.get("lut_source") in cls.sources]
        own_text = (
            f"; the lut of {trial_numbers_text(own)} is already {backend}'s own figure (the study's "
            f"resources.backend gave it when they ran): `dse synthesize {study_name} --trials "
            f"{','.join(map(str, own[:50]))} --backend {backend}` records those as {backend} figures in no time, without "
            f"running {backend}, and calibrate then compares their ebops with them"
        ) if own else ""
        raise ConfigError(
            f"no trial of study {study_name!r} was measured with {backend!r}; "
            f"run `dse synthesize {study_name} --front --backend {backend}` first{own_text}"
        )
    same = sorted(pairs.loc[pairs["lut_source"].isin(cls.sources), "trial"]) if "lut_source" in pairs else []
    if same:
        log.warning(
            "%s: the lut of trials %s is already %s's own figure (the study's resources.backend gave it when they ran), so "
            "their lut row compares %s with itself (0%% error, scale 1.000)%s; their ebops row still compares the "
            "estimate, or calibrate against another backend", backend, [int(n) for n in same], backend, backend,
            # da4ml's cost is da4ml's lut (probe 42: called an estimate that the da4ml_cost row compares)
            ", as does their da4ml_cost row" if backend == "da4ml" else "; their da4ml_cost row compares da4ml's estimate",
        )
    derived = set(cls.derived_figures)  # the figure compared with itself (latency +0.0%, scale 1.000)
    if derived & {ref for _, ref in _COMPARISONS} and any(f"{backend}_{ref}" in pairs for ref in derived):
        log.info("%s's %s %s read off the design, not measured by the tool (the estimate's own computation): not "
                 "compared", backend, ", ".join(sorted(derived)), "is" if len(derived) == 1 else "are")
    stats = [s for est, ref in _COMPARISONS if ref not in derived
             and (s := calibration_stats(pairs, est, f"{backend}_{ref}")) is not None]
    csv = exp.resolved_run_dir / f"calibration_{backend}.csv"
    csv.parent.mkdir(parents=True, exist_ok=True)
    pairs.to_csv(csv, index=False)
    parent = StudyRecords(study).parent_run_id
    if parent:
        tracker = StudyTracker(exp.tracking_uri, exp.mlflow.experiment_name or exp.name, parent_run_id=parent)
        metrics = {}
        for s in stats:
            metrics.update(s.as_metrics(f"calibration_{backend}_{s.estimate}"))
        tracker.log_study_artifact(parent, csv, metrics)
    paired = set(pairs["trial"])
    unmeasured = [r.number for r in StudyRecords(study).trials((TrialState.COMPLETE,)) if r.number not in paired
                  and (cls.strategies is None or (r.params is not None and r.params.strategy in cls.strategies))]
    return CalibrationResult(backend, len(pairs), stats, csv, unmeasured)
