"""Matplotlib renderers of the report's data (:mod:`dse.report._figures`): each writes one PNG.

Renderers take plain frames/dicts and a path; they compute nothing a test would need to check.
The Agg backend is used, so no display is needed.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from dse.config._experiment import COUNTED_METRICS, CSIM_ACCURACIES

__all__ = [
    "pair_figure",
    "plot_pair",
    "plot_hypervolume",
    "plot_importances",
    "plot_parallel",
    "plot_curves",
    "plot_failures",
    "compare_figure",
    "plot_compare",
]

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_SAVE = {"dpi": 110, "metadata": {"Software": None}, "bbox_inches": "tight"}
_LABELS = {
    "ebops": "EBOPs (HGQ2 effective bit operations)",
    "lut": "LUT",
    "dsp": "DSP",
    "ff": "FF",
    "latency_cycles": "latency (clock cycles)",
    "csim_val_accuracy": "validation accuracy, C simulation",
    "keras_val_accuracy": "validation accuracy, Keras",
    "csim_accuracy": "test accuracy, C simulation",
    "keras_accuracy": "test accuracy, Keras",
}


#: What gave a ``csim_accuracy`` (its tag ``csim_accuracy_source``), as an axis label names it.
_ACCURACY_SOURCES = {"csim": "C simulation", "da4ml": "da4ml bit-exact emulation", "keras": "Keras where not simulated"}


def accuracy_label(accuracy: str, sources: Sequence[str] = ()) -> str:
    """Axis label of the accuracy axis, naming its split and what gave ``csim_val_accuracy`` or ``csim_accuracy`` on it.

    ``sources``: the points' ``accuracy_source`` values (:func:`dse.report._figures.pair_points`). Before, the axis said
    "C simulation" also where ``hls4ml.csim: front`` or ``none`` left trials with their Keras accuracy.
    """
    found = sorted({s for s in sources if s}, key=lambda s: (list(_ACCURACY_SOURCES).index(s) if s in _ACCURACY_SOURCES else 9, s))
    if accuracy not in CSIM_ACCURACIES or not found or found == ["csim"]:
        return label(accuracy)
    return label(accuracy).split(", ")[0] + ", " + " / ".join(_ACCURACY_SOURCES.get(s, s) for s in found)


def _front_axes(ax, values: "pd.Series", sources: list[str], metric: str, accuracy: str, title: str,
                accuracy_sources: Sequence[str] = ()) -> None:
    """Axes of an accuracy-vs-resource plot: log x for ranges over 50x, the figure source in the x label
    (or a warning on the title when sources are mixed on one axis), what gave the accuracy in the y label
    (:func:`accuracy_label`), title, grid."""
    if len(values) and (values > 0).all() and values.max() / max(values.min(), 1e-12) > 50:
        ax.set_xscale("log")
    elif metric in COUNTED_METRICS:  # LUTs, DSPs, cycles count something whole: no 4.2 tick
        from matplotlib.ticker import FuncFormatter, MaxNLocator

        # at most 6 ticks with thousands separators (probe 42: "100000120000140000..." ran together at 6 digits)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        if len(values) and values.min() == values.max():  # one count (0 DSPs): matplotlib's +-5% span had no whole tick
            ax.set_xlim(max(float(values.min()) - 1, -0.5), float(values.max()) + 1)
    mixed = len(sources) > 1
    ax.set_xlabel(label(metric) + ("  (mixed sources, see legend)" if mixed else f"  [{sources[0]}]" if sources else ""))
    # wrapped: "validation accuracy, C simulation / da4ml bit-exact emulation / Keras where not simulated" ran past
    # the figure's height
    ax.set_ylabel(textwrap.fill(accuracy_label(accuracy, accuracy_sources), 44))
    ax.set_title(title + ("\nWARNING: points from different sources share this axis" if mixed else ""), fontsize=10)
    ax.grid(alpha=0.3)


def _legend_outside(ax) -> None:
    """The legend to the right of the axes, top-aligned, so that it never hides a point.

    The figure grows to hold it on saving (``bbox_inches="tight"`` in :data:`_SAVE`).
    """
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)


def _save(fig, path: Path) -> Path:
    """Write ``fig`` to ``path`` (PNG, :data:`_SAVE`) and close it."""
    fig.savefig(path, **_SAVE)
    _plt().close(fig)
    return path


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def label(metric: str) -> str:
    """Axis label of a metric."""
    return _LABELS.get(metric, metric)


def plot_pair(points: pd.DataFrame, accuracy: str, metric: str, path: Path, constraints: Sequence = ()) -> Path:
    """Write :func:`pair_figure` of ``points`` to ``path``; returns ``path``."""
    return _save(pair_figure(points, accuracy, metric, constraints), path)


def pair_figure(points: pd.DataFrame, accuracy: str, metric: str, constraints: Sequence = ()):
    """Accuracy vs one resource metric: one marker per source, the 2-D front joined by a step line.

    Dominated trials are faint, infeasible trials are red (crosses, or their source's marker where
    the points carry several sources), precise re-measurements are filled markers with a black
    edge and a thin line to their estimate. The bounds of ``constraints`` (the experiment's
    :class:`~dse.config.ConstraintConfig` list) on either axis's metric are dashed red lines: the
    budget. When the points carry more than one source, the title says the axis mixes sources.
    The legend is outside the axes (right), so it hides no trial.

    Returns:
        The matplotlib figure (the caller saves and closes it).
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    sources = sorted(points["source"].unique()) if not points.empty else []
    for i, src in enumerate(sources):
        sub = points[(points["source"] == src) & points["feasible"]]
        m = _MARKERS[i % len(_MARKERS)]
        dom = sub[~sub["on_front"]]
        front = sub[sub["on_front"]]
        precise = bool(sub["precise"].any())
        ax.scatter(dom["value"], dom["accuracy"], marker=m, color=f"C{i}", alpha=0.25, s=22, label=None)
        ax.scatter(front["value"], front["accuracy"], marker=m, color=f"C{i}", s=44, edgecolors="black" if precise else "none",
                   # no entry for a source whose points are all infeasible (probe 43: its marker was nowhere)
                   label=None if sub.empty else f"{metric} [{src}]" + (" (re-measured)" if precise else ""))
        if dom.empty and front.empty:
            continue
    for _, row in points[points["precise"] & points["estimate"].notna()].iterrows():
        ax.plot([row["estimate"], row["value"]], [row["accuracy"]] * 2, color="grey", lw=0.6, ls=":")
    inf = points[~points["feasible"]]
    for i, src in enumerate(sources):  # probe 43: a cross alone hid which source an infeasible point's figure came from
        sub = inf[inf["source"] == src]
        if not sub.empty:
            ax.scatter(sub["value"], sub["accuracy"], marker="x" if len(sources) == 1 else _MARKERS[i % len(_MARKERS)],
                       color="red", s=30, label=f"infeasible (constraint violated){f' [{src}]' if len(sources) > 1 else ''}")
    front = points[points["on_front"]].sort_values("value")
    if not front.empty:
        ax.step(front["value"], front["accuracy"], where="post", color="black", lw=0.8, alpha=0.6, label="Pareto front (these axes)")
    acc_sources = list(points["accuracy_source"]) if "accuracy_source" in points else []
    drawn = pd.concat([points["value"], points.loc[points["precise"], "estimate"].dropna()])  # the estimates' lines too
    _front_axes(ax, drawn, sources, metric, accuracy, f"{label(accuracy).split(', ')[0]} vs {metric}", acc_sources)
    _budget_lines(ax, constraints, metric, accuracy)
    if sources:
        _legend_outside(ax)
    return fig


def _budget_lines(ax, constraints: Sequence, metric: str, accuracy: str) -> None:
    """Dashed red lines at the bounds of ``constraints`` on ``metric`` (x) and ``accuracy`` (y): the budget.

    Probe 43: not drawn, so a bound was read off the status text. A bound within one span of the
    points' axis range widens the axis to show it; one farther away (a budget the designs are far
    inside) keeps the axis on the points and says so in its legend entry.
    """
    for c in constraints:
        for bound, side in ((c.max, "<="), (c.min, ">=")):
            if bound is None or c.metric not in (metric, accuracy):
                continue
            vertical = c.metric == metric
            lo, hi = ax.get_xlim() if vertical else ax.get_ylim()
            log = (ax.get_xscale() if vertical else ax.get_yscale()) == "log"
            near = (bound > 0 and lo / (hi / lo) <= bound <= hi * (hi / lo)) if log else lo - (hi - lo) <= bound <= hi + (hi - lo)
            text = f"budget: {c.metric} {side} {bound:,.6g}" + ("" if near else " (off the axes)")
            if near:
                (ax.axvline if vertical else ax.axhline)(bound, color="red", ls="--", lw=0.8, alpha=0.7, label=text)
            else:  # a legend entry alone
                ax.plot([], [], color="red", ls="--", lw=0.8, alpha=0.7, label=text)


def plot_hypervolume(history: pd.DataFrame, ref: Sequence[float], names: Sequence[str], path: Path, *, no_front: bool = False) -> Path:
    """Hypervolume of the front after each trial, with the reference point (natural units, ``ref``) in the title.

    ``no_front``: no feasible completed trial, so ``ref`` is a placeholder; the title says so instead of naming it.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.step(history["trial"], history["hypervolume"], where="post", color="C0")
    ax.plot(history["trial"], history["hypervolume"], "o", ms=3, color="C0")
    ref_txt = ", ".join(f"{n}={v:.4g}" for n, v in zip(names, ref))
    ax.set_title("hypervolume of the front: 0, no feasible completed trial (so no reference point)" if no_front
                 else f"hypervolume of the front (reference point: {ref_txt})", fontsize=9)
    ax.set_xlabel("trial number")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # trial numbers are whole (probe 35: 0.25, 0.5 ... ticks)
    ax.set_ylabel("hypervolume (" + " x ".join(names) + ")")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_importances(importances: dict[str, dict[str, float]], directions: dict[str, str], path: Path) -> Path:
    """One horizontal bar chart per objective (its direction in the title)."""
    plt = _plt()
    n = max(len(importances), 1)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.4), squeeze=False)
    if not importances:
        axes[0, 0].text(0.5, 0.5, "too few completed trials for importances", ha="center", va="center")
        axes[0, 0].axis("off")
    for ax, (metric, imp) in zip(axes[0], importances.items()):
        items = sorted(imp.items(), key=lambda kv: kv[1])
        ax.barh([k for k, _ in items], [v for _, v in items], color="C2")
        ax.set_title(f"{metric} ({directions.get(metric, '?')})", fontsize=10)
        ax.set_xlabel("importance (Optuna, normalized)")
        ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    return _save(fig, path)


def _axis(col: pd.Series) -> tuple[np.ndarray, list[tuple[float, str]]]:
    """Values of one parallel-coordinates axis scaled to [0, 1], and its tick labels.

    Numbers spanning more than two decades are drawn on a log scale with 0 at the bottom;
    anything else non-numeric is categorical (categories in sorted order).
    """
    num = pd.to_numeric(col, errors="coerce")
    if num.notna().all() and not col.map(lambda v: isinstance(v, str)).any():
        v = num.to_numpy(float)
        pos = v[v > 0]
        if len(pos) and (v >= 0).all() and pos.max() / pos.min() > 100:
            lo, hi = math.log10(pos.min()), math.log10(pos.max())
            t = np.where(v > 0, np.log10(np.where(v > 0, v, 1.0)), lo - 0.5 * max(hi - lo, 1))
            tmin = t.min()
            span = (hi - tmin) or 1.0
            ticks = [((math.log10(pos.min()) - tmin) / span, f"{pos.min():.2g}"), (1.0, f"{pos.max():.2g}")]
            if (v == 0).any():
                ticks.append((0.0, "0"))
            return (t - tmin) / span, ticks
        lo, hi = float(v.min()), float(v.max())
        span = (hi - lo) or 1.0
        return (v - lo) / span, [(0.0, f"{lo:.3g}"), (1.0, f"{hi:.3g}")]
    # a missing value (a trial a user added with study.add_trial has no per-layer ReuseFactors) is its own category:
    # before, pandas kept it as NaN through astype(str), and sorting it among the strings raised TypeError
    labels = col.map(lambda v: "none" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))
    cats = sorted(labels.unique())
    pos = {c: (i / (len(cats) - 1) if len(cats) > 1 else 0.5) for i, c in enumerate(cats)}
    return labels.map(pos).to_numpy(float), [(p, c) for c, p in pos.items()]


#: Above this many trials the parallel-coordinates plot draws the trials off the front faint and grey, the front in colour.
PARALLEL_FAINT_ABOVE = 150


def plot_parallel(frame: pd.DataFrame, color_by: str, path: Path, front: set[int] | None = None) -> Path:
    """Parallel coordinates of the parameters each trial used, one line per trial coloured by ``color_by``.

    With more than :data:`PARALLEL_FAINT_ABOVE` trials and ``front`` (trial numbers) given, the other trials are drawn
    thin, grey and faint under the front members' coloured lines: at 2,000 trials every line in colour made one solid
    band (probe 38). The lines are one ``LineCollection`` (one ``plot`` call per trial took 2.6 s at 2,000 trials).
    """
    from matplotlib.collections import LineCollection

    plt = _plt()
    cols = [c for c in frame.columns if c != "trial"]
    fig, ax = plt.subplots(figsize=(max(6.4, 1.3 * len(cols)), 4.2))
    if frame.empty or not cols:
        ax.text(0.5, 0.5, "no completed trial", ha="center")
        ax.axis("off")
    else:
        scaled = {}
        for j, c in enumerate(cols):
            scaled[c], ticks = _axis(frame[c])
            for y, txt in ticks:
                ax.text(j, y, f" {txt}", fontsize=7, va="center", zorder=3,  # above the lines, legible on them
                        bbox={"facecolor": "white", "alpha": 0.75, "edgecolor": "none", "pad": 0.5})
        color = frame[color_by].to_numpy(float) if color_by in frame else np.zeros(len(frame))
        cmap = plt.get_cmap("viridis")
        lo, hi = float(np.nanmin(color)), float(np.nanmax(color))
        xs = np.arange(len(cols))
        lines = np.stack([np.column_stack([xs, [scaled[c][i] for c in cols]]) for i in range(len(frame))])
        colours = cmap((color - lo) / ((hi - lo) or 1.0))
        faint = front is not None and len(frame) > PARALLEL_FAINT_ABOVE
        on_front = frame["trial"].isin(front or ()).to_numpy() if faint else np.ones(len(frame), dtype=bool)
        if faint:
            ax.add_collection(LineCollection(lines[~on_front], colors="0.6", alpha=0.12, linewidths=0.5))
        ax.add_collection(LineCollection(lines[on_front], colors=colours[on_front], alpha=0.7 if not faint else 0.9,
                                         linewidths=1.2))
        ax.set_xlim(-0.2, len(cols) - 0.8)
        ax.set_ylim(-0.05, 1.05)
        ax.set_xticks(range(len(cols)))
        ax.set_xticklabels(cols, rotation=30, ha="right", fontsize=8)
        ax.set_yticks([])
        for j in range(len(cols)):
            ax.axvline(j, color="grey", lw=0.5)
        sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(lo, hi))
        fig.colorbar(sm, ax=ax, label=color_by)
        ax.set_title("parameters each completed trial trained with (resolved, pinned included)" + (
            f"; {int(on_front.sum())} front members in colour, the other {int((~on_front).sum())} grey" if faint else ""),
            fontsize=9)
    return _save(fig, path)


#: The most front members whose training curves :func:`plot_curves` draws.
MAX_CURVES = 10


def plot_curves(curves: dict[int, dict[str, list[tuple[int, float]]]], path: Path, why_empty: str | None = None) -> Path:
    """Accuracy (train and validation), EBOPs and beta per epoch of the front members.

    ``why_empty``: shown once, across the panels, when ``curves`` is empty (no front member, MLflow not read);
    otherwise a panel without its curve says that the curve was not logged. Of more than
    :data:`MAX_CURVES` members, that many are drawn, spread evenly over them in trial order, and
    the figure says so (47 curves and their legend covered the panels).
    """
    plt = _plt()
    panels = (("accuracy", "accuracy per epoch (solid: train, dashed: validation)"), ("ebops", "EBOPs per epoch"), ("beta", "beta per epoch"))
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    shown = sorted(curves.items())
    if len(shown) > MAX_CURVES:
        picks = sorted({round(i * (len(shown) - 1) / (MAX_CURVES - 1)) for i in range(MAX_CURVES)})
        fig.suptitle(f"{len(picks)} of the {len(shown)} front members, spread over them in trial order", fontsize=9)
        shown = [shown[i] for i in picks]
    for k, (number, cs) in enumerate(shown):
        color = f"C{k % 10}"
        for ax, (name, _) in zip(axes, panels):
            if name in cs:
                e, v = zip(*cs[name])
                ax.plot(e, v, color=color, label=f"trial {number}")
            if name == "accuracy" and "val_accuracy" in cs:
                e, v = zip(*cs["val_accuracy"])
                ax.plot(e, v, color=color, ls="--")
    from matplotlib.ticker import MaxNLocator

    for ax, (name, title) in zip(axes, panels):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if name == "ebops" and any("ebops" in c for c in curves.values()):
            ax.set_yscale("log")
        if not curves and why_empty:
            continue  # said once, across the panels (below): one panel's copy ran over its neighbours
        if not any(name in c for c in curves.values()):
            ax.text(0.5, 0.5, f"no epoch_{name} logged", ha="center", transform=ax.transAxes)
    if curves:
        axes[0].legend(fontsize=7)
    fig.tight_layout()
    if not curves and why_empty:
        fig.text(0.5, 0.55, why_empty, ha="center", va="center", wrap=True, fontsize=9,
                 bbox={"facecolor": "white", "alpha": 0.9, "edgecolor": "grey"})
    return _save(fig, path)


def plot_failures(failures: dict[str, int], path: Path) -> Path:
    """Failed trials per reason type (:func:`dse.report.failure_counts`): design failures in red,
    trials that were interrupted or lost and re-enqueued (never evaluated) in grey."""
    from matplotlib.ticker import MaxNLocator

    from dse.report._figures import NOT_EVALUATED_LABEL

    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 0.5 + 0.45 * max(len(failures), 1)))
    if failures:
        grey = [kind.endswith(NOT_EVALUATED_LABEL) for kind in failures]
        ax.barh(list(failures), list(failures.values()), color=["0.6" if g else "C3" for g in grey])
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("failed trials" + (" (grey: not evaluated, re-enqueued)" if any(grey) else ""))
    else:
        ax.text(0.5, 0.5, "no failed trial", ha="center", va="center")
        ax.axis("off")
    return _save(fig, path)


def plot_compare(fronts: dict[str, pd.DataFrame], accuracy: str, metric: str, path: Path) -> Path:
    """Write :func:`compare_figure` of ``fronts`` to ``path``; returns ``path``."""
    return _save(compare_figure(fronts, accuracy, metric), path)


def compare_figure(fronts: dict[str, pd.DataFrame], accuracy: str, metric: str):
    """Fronts of several studies on one axes; ``fronts`` label -> frame of ``accuracy``, ``value``, ``source``, ``on_front``.

    The legend is outside the axes (right), so it hides no trial.

    Returns:
        The matplotlib figure (the caller saves and closes it).
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.8, 4.6))
    all_sources = sorted({s for df in fronts.values() for s in df["source"].unique()})
    for i, (name, df) in enumerate(fronts.items()):
        color = f"C{i % 10}"
        for src in sorted(df["source"].unique()):
            sub = df[df["source"] == src]
            m = _MARKERS[all_sources.index(src) % len(_MARKERS)]
            ax.scatter(sub.loc[~sub["on_front"], "value"], sub.loc[~sub["on_front"], "accuracy"], marker=m, color=color, alpha=0.2, s=16)
            ax.scatter(sub.loc[sub["on_front"], "value"], sub.loc[sub["on_front"], "accuracy"], marker=m, color=color, s=40,
                       label=f"{name} [{src}]")
        f = df[df["on_front"]].sort_values("value")
        ax.step(f["value"], f["accuracy"], where="post", color=color, lw=1)
    vals = pd.concat([d["value"] for d in fronts.values()]) if fronts else pd.Series(dtype=float)
    acc_sources = [s for d in fronts.values() if "accuracy_source" in d for s in d["accuracy_source"]]
    _front_axes(ax, vals, all_sources, metric, accuracy, f"Pareto fronts: {label(accuracy).split(', ')[0]} vs {metric}",
                acc_sources)
    if ax.get_legend_handles_labels()[0]:
        _legend_outside(ax)
    return fig
