"""``dse export``: one trial's design, ready for synthesis, from its MLflow artifacts alone."""

from dse.export._export import EXPORT_NOTICE_S, ExportError, ExportResult, expected_export_seconds, export_design

__all__ = ["EXPORT_NOTICE_S", "ExportError", "ExportResult", "expected_export_seconds", "export_design"]
