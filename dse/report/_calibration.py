"""How well a cheap resource estimate predicts a precise one, across re-measured trials."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import optuna
import pandas as pd

from dse.store import StudyRecords

__all__ = ["CalibrationStats", "calibration_pairs", "calibration_stats"]


@dataclass(frozen=True)
class CalibrationStats:
    """Agreement of ``estimate`` with ``precise`` over ``n`` trials.

    Attributes:
        estimate, precise: column names compared (e.g. ``lut`` from ``ebops-estimate``, ``yosys_lut``).
        n: number of trials.
        mean_rel_error, median_rel_error, max_abs_rel_error: of ``(estimate - precise) / precise``.
        spearman: Spearman rank correlation (scipy.stats.spearmanr); NaN with fewer than 3 trials or
            when either figure is the same for every trial (no ranking).
        scale: least-squares factor ``precise ~ scale * estimate`` (through the origin).
    """

    estimate: str
    precise: str
    n: int
    mean_rel_error: float
    median_rel_error: float
    max_abs_rel_error: float
    spearman: float
    scale: float

    def as_metrics(self, prefix: str) -> dict[str, float]:
        """Flat metrics ``<prefix>_<field>`` for MLflow."""
        fields = ("n", "mean_rel_error", "median_rel_error", "max_abs_rel_error", "spearman", "scale")
        return {f"{prefix}_{f}": float(getattr(self, f)) for f in fields}


def calibration_pairs(study: optuna.Study, backend: str) -> pd.DataFrame:
    """One row per re-measured trial: ``trial``, ``strategy``, the estimates (``lut`` and its
    ``lut_source``, raw ``ebops``; ``da4ml_cost``, ``dsp`` and ``latency_cycles`` (clock cycles) where the trial
    has them) and the precise figures ``<backend>_*``."""
    rows = []
    records = StudyRecords(study)
    by_number = {r.number: r for r in records.trials()}  # one read of the trials, not one per re-measured trial
    for number, entry in sorted(records.measurements(backend).items()):
        r = by_number[number]
        m, tags = r.metrics, r.tags
        row = {
            "trial": number,
            "strategy": tags.get("strategy"),
            "lut": m.get("lut"),
            "lut_source": tags.get("lut_source"),
            "ebops": m.get("ebops"),
        }
        row.update({k: m[k] for k in ("da4ml_cost", "dsp", "latency_cycles") if k in m})
        row.update({k: v for k, v in entry["metrics"].items() if not k.startswith("seconds_")})
        rows.append(row)
    return pd.DataFrame(rows)


def calibration_stats(pairs: pd.DataFrame, estimate: str, precise: str) -> CalibrationStats | None:
    """Relative error and rank correlation of column ``estimate`` against ``precise``.

    Rows whose ``precise`` figure is 0 or less are left out (their relative error is undefined: e.g. ``yosys_dsp`` 0),
    and ``n`` counts the rows kept.

    Returns:
        ``None`` when a column is missing or no row is kept.
    """
    from scipy.stats import spearmanr

    if estimate not in pairs or precise not in pairs:
        return None
    df = pairs[[estimate, precise]].dropna()
    df = df[df[precise] > 0]
    if df.empty:
        return None
    est, ref = df[estimate].to_numpy(float), df[precise].to_numpy(float)
    rel = (est - ref) / ref
    ranked = len(df) >= 3 and np.ptp(est) > 0 and np.ptp(ref) > 0  # else undefined (scipy warns and gives NaN)
    rho = float(spearmanr(est, ref).statistic) if ranked else float("nan")
    scale = float(np.dot(est, ref) / np.dot(est, est)) if np.dot(est, est) > 0 else float("nan")
    return CalibrationStats(estimate, precise, len(df), float(rel.mean()), float(np.median(rel)), float(np.abs(rel).max()), rho, scale)
