"""Terminal renderers for study data (rich)."""

from __future__ import annotations

import io
import re
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd
from rich.console import Group
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


def front_table(front: pd.DataFrame, title: str = "Pareto front", width: int | None = None) -> Table | Group:
    """A rich table of the front: every objective first (``front.attrs["objectives"]``, which :func:`front_frame` sets;
    else the two columns after ``trial``), then the usual resource columns and sources.

    ``lut_source`` names what gave the resource figures; ``dsp_source`` and ``latency_cycles_source`` are shown beside
    it where some member's differs from its ``lut_source``.

    Args:
        front: one row per front member (:func:`dse.report.front_frame`).
        title: the table's title.
        width: the terminal's width in characters. Where the table (a column per figure) is wider, the front is
            given turned, a row per figure and a column per trial, in as many tables as the trials need; before,
            rich cut every cell of an 80-column terminal to ``0.…``.

    Returns:
        A ``rich`` renderable: the table, or a group of the turned tables.
    """
    pattern = _precise_columns()
    precise = [c for c in front.columns if pattern.fullmatch(c) and not c.startswith("ebops_")]
    objectives = [c for c in front.attrs.get("objectives", front.columns[1:3]) if c in front.columns]
    cols = list(dict.fromkeys(["trial", *objectives, *[c for c in _SHOW if c in front.columns], *precise]))
    for figure in ("dsp", "latency_cycles"):  # most often lut_source's: shown where some member's differs
        other = f"{figure}_source"
        # a figure not measured (no source) is no difference: a Latency trial's latency_cycles has none
        if other in front.columns and "lut_source" in front.columns and (
                front[other].notna() & (front[other] != front["lut_source"])).any():
            cols.insert(cols.index("lut_source") + 1, other)
    cells = [[format_value(row.get(c), c) for c in cols] for _, row in front.iterrows()]
    table = Table(title=title)
    for c in cols:
        table.add_column(c.removeprefix("params_"), justify="left" if "source" in c or "strategy" in c else "right")
    for row in cells:
        table.add_row(*[Text(v) for v in row])  # Text: values are never read as markup
    if width is None or not cells or _width(table) <= width:
        return table
    names = [c.removeprefix("params_") for c in cols[1:]]
    chunks: list[list[int]] = [[]]
    first = max(map(len, names)) + 4  # the names' column: its padding and the borders on both sides
    used = first
    for i, row in enumerate(cells):
        need = max(len(f"trial {row[0]}"), *map(len, row[1:])) + 3  # padding and the border on its right
        if chunks[-1] and used + need > width:
            chunks.append([])
            used = first
        chunks[-1].append(i)
        used += need
    tables = []
    for k, chunk in enumerate(chunks):
        turned = Table(title=title + (f" ({k + 1} of {len(chunks)})" if len(chunks) > 1 else ""))
        turned.add_column("")
        for i in chunk:
            turned.add_column(f"trial {cells[i][0]}", justify="right")
        for j, name in enumerate(names, start=1):
            turned.add_row(name, *[Text(cells[i][j]) for i in chunk])
        tables.append(turned)
    return Group(*tables)


def _width(table: Table) -> int:
    """Characters ``table`` needs to show every cell whole."""
    from rich.console import Console
    from rich.measure import Measurement

    # a file of its own, never a terminal: rich gives a dumb terminal (TERM=dumb) 80 columns whatever width it is
    # given, so a front measured on one was never turned, and its cells were cut
    console = Console(width=10_000, height=100, file=io.StringIO(), force_terminal=False)
    return Measurement.get(console, console.options, table).maximum


#: Columns whose numbers are identifiers (trial numbers), written plain: ``1938``, as ``dse export --trial`` and ``dse synthesize --trials`` take them.
ID_COLUMNS = ("trial", "harvested_from", "requeued_from")


def format_value(v: object, column: str | None = None) -> str:
    """A value for people, in the terminal and in the HTML report alike.

    ``0.9444`` (4 significant digits below 100), ``36,990`` (thousands separators from 100, and
    for whole numbers), ``1e+30`` (a magnitude of 1e9 or more), ``true``/``false``, ``-`` for
    missing (None, NaN). A number in an :data:`ID_COLUMNS` column is written plain (``1938``). NumPy scalars
    (a DataFrame's cells) are written as the Python numbers they hold.
    """
    if isinstance(v, np.generic) and not isinstance(v, (np.str_, np.bytes_)):  # probe 33: np.int64(36990) was '36990'
        v = v.item()
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return "-"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, (int, float)) and column in ID_COLUMNS and float(v).is_integer():
        return str(int(v))
    if isinstance(v, float):
        if abs(v) >= 1e9:
            return f"{v:.4g}"
        if v.is_integer() or abs(v) >= 100:  # half away from zero (probe 35: f-strings gave 1764.5 -> 1,764 but 987.5 -> 988)
            return f"{int(Decimal(repr(v)).quantize(Decimal(1), ROUND_HALF_UP)):,}"
        return f"{v:.4g}"
    if isinstance(v, int):
        return f"{v:,}" if abs(v) < 10**9 else f"{v:.4g}"
    return str(v)
