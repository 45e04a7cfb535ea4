"""Reports: study counts, Pareto fronts, calibration, report/compare pages (data first, renderers apart)."""

from dse.report._calibration import CalibrationStats, calibration_pairs, calibration_stats
from dse.report._pareto import (
    StudyCounts,
    failure_reasons,
    failures_by_reason,
    front_frame,
    no_front_advice,
    study_counts,
    trial_numbers_text,
)
from dse.report._progress import StudyProgress
from dse.report._render import counts_line, format_value, front_table

__all__ = [
    "CalibrationStats",
    "calibration_pairs",
    "calibration_stats",
    "StudyCounts",
    "front_frame",
    "no_front_advice",
    "failure_reasons",
    "failures_by_reason",
    "study_counts",
    "trial_numbers_text",
    "StudyProgress",
    "counts_line",
    "format_value",
    "front_table",
    "build_report",
    "ReportResult",
    "compare_studies",
    "CompareResult",
    "StudySource",
    "load_optuna_source",
    "load_mlflow_source",
]

#: Names that import matplotlib and MLflow, loaded on first use (the study loop imports this package).
_LAZY = {
    "build_report": "dse.report._study_report", "ReportResult": "dse.report._study_report",
    "compare_studies": "dse.report._compare", "CompareResult": "dse.report._compare", "StudySource": "dse.report._compare",
    "load_optuna_source": "dse.report._compare", "load_mlflow_source": "dse.report._compare",
}


def __getattr__(name: str):
    """The report and comparison names (:data:`_LAZY`) import matplotlib and MLflow lazily."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dse.report' has no attribute {name!r}")
