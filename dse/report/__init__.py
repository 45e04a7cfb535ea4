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
    "compare_studies",
]


def __getattr__(name: str):
    """``build_report``/``compare_studies`` import matplotlib and MLflow lazily (the study loop imports this package)."""
    if name == "build_report":
        from dse.report._study_report import build_report

        return build_report
    if name == "compare_studies":
        from dse.report._compare import compare_studies

        return compare_studies
    raise AttributeError(name)
