"""Terminal renderers for study data (rich)."""

from __future__ import annotations

import re

import pandas as pd
from rich.table import Table
from rich.text import Text

from dse.report._pareto import StudyCounts

__all__ = ["front_table", "counts_line", "format_value"]

_SHOW = (
    "trial", "csim_val_accuracy", "csim_accuracy", "csim_accuracy_source", "keras_val_accuracy", "keras_accuracy", "lut", "dsp", "ebops", "latency_cycles", "lut_source",
    "params_strategy", "params_reuse_factor", "params_layer_reuse_factors", "feasible", "harvested_from", "harvest_epoch",
)


def _precise_columns() -> re.Pattern[str]:
    """``<backend>_<figure>`` columns of precise re-measurements, for every registered backend."""
    from dse.resources import backend_names

    return re.compile(rf"({'|'.join(map(re.escape, backend_names()))})_(lut|ff|dsp|latency_cycles)")


def counts_line(counts: StudyCounts) -> str:
    """``trials: 10 complete (7 feasible, 3 infeasible), 2 failed, 0 running``; failed trials that were
    interrupted and re-enqueued are named as such."""
    feas = f" ({counts.feasible} feasible, {counts.infeasible} infeasible)" if counts.feasible is not None else ""
    lost = (f" ({counts.interrupted} of them interrupted or lost and re-enqueued, so not counted towards n_trials)"
            if counts.interrupted else "")
    return (
        f"trials: {counts.complete} complete{feas}, {counts.failed} failed{lost}"
        + (f", {counts.pruned} pruned" if counts.pruned else "")
        + f", {counts.running} running"
        + (f", {counts.waiting} waiting" if counts.waiting else "")
        + (f" ({counts.harvested} of the complete "
           + ("ones are harvested checkpoints)" if counts.harvested > 1 else "ones is a harvested checkpoint)") if counts.harvested else "")
    )


def front_table(front: pd.DataFrame, title: str = "Pareto front") -> Table:
    """A rich table of the front: objectives first, then the usual resource columns and sources."""
    table = Table(title=title)
    pattern = _precise_columns()
    precise = [c for c in front.columns if pattern.fullmatch(c) and not c.startswith("ebops_")]
    cols = list(dict.fromkeys(["trial", *front.columns[1:3], *[c for c in _SHOW if c in front.columns], *precise]))
    for c in cols:
        table.add_column(c.removeprefix("params_"), justify="left" if "source" in c or "strategy" in c else "right")
    for _, row in front.iterrows():
        table.add_row(*[Text(format_value(row.get(c), c)) for c in cols])  # Text: values are never read as markup
    return table


#: Columns whose numbers are identifiers (trial numbers), written plain: ``1938``, as ``dse export --trial`` and ``dse synthesize --trials`` take them.
ID_COLUMNS = ("trial", "harvested_from", "requeued_from")


def format_value(v: object, column: str | None = None) -> str:
    """A value for people, in the terminal and in the HTML report alike.

    ``0.9444`` (4 significant digits below 100), ``36,990`` (thousands separators from 100, and
    for whole numbers), ``1e+30`` (a magnitude of 1e9 or more), ``true``/``false``, ``-`` for
    missing (None, NaN). A number in an :data:`ID_COLUMNS` column is written plain (``1938``).
    """
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return "-"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, (int, float)) and column in ID_COLUMNS and float(v).is_integer():
        return str(int(v))
    if isinstance(v, float):
        if abs(v) >= 1e9:
            return f"{v:.4g}"
        if v.is_integer() or abs(v) >= 100:
            return f"{v:,.0f}"
        return f"{v:.4g}"
    if isinstance(v, int):
        return f"{v:,}" if abs(v) < 10**9 else f"{v:.4g}"
    return str(v)
