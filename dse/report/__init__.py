"""Reports: study counts and Pareto fronts (data), and their terminal rendering."""

from dse.report._pareto import StudyCounts, front_frame, study_counts
from dse.report._render import counts_line, front_table

__all__ = ["StudyCounts", "front_frame", "study_counts", "counts_line", "front_table"]
