"""``dse export``: one trial's design, ready for synthesis, from its MLflow artifacts alone."""

from dse.export._export import ExportError, ExportResult, export_design

__all__ = ["ExportError", "ExportResult", "export_design"]
