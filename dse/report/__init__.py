"""Reports: study counts, Pareto fronts and calibration (data), and their terminal rendering."""

from dse.report._calibration import CalibrationStats, calibration_pairs, calibration_stats
from dse.report._pareto import StudyCounts, front_frame, study_counts
from dse.report._progress import StudyProgress
from dse.report._render import counts_line, format_value, front_table

__all__ = [
    "CalibrationStats",
    "calibration_pairs",
    "calibration_stats",
    "StudyCounts",
    "front_frame",
    "study_counts",
    "StudyProgress",
    "counts_line",
    "format_value",
    "front_table",
]
