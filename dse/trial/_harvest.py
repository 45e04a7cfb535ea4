"""Harvesting: the Pareto-optimal checkpoints along a trial's beta ramp, each a front candidate of its own.

The HGQ authors train one model with a rising beta and keep every checkpoint that is
Pareto-optimal in (validation accuracy, EBOPs) (HGQ2's ``hgq.utils.sugar.ParetoFront``
callback). With ``training.harvest_checkpoints: N`` a trial does the same: the callback saves
the weights of each non-dominated epoch while training, and after the trial's own model has
been measured, up to N of those checkpoints are loaded back, traced, converted, measured and
logged as records of their own (:func:`dse.store.harvested_trial`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["Checkpoint", "HarvestedResult", "pareto_callback", "select_checkpoints"]

_EPOCH = re.compile(r"epoch=(\d+)")


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint HGQ2's ``ParetoFront`` kept.

    Attributes:
        epoch: 0-based epoch at whose end the weights were saved.
        path: the ``.weights.h5`` file.
        val_accuracy: validation accuracy at that epoch (a fraction).
        ebops: EBOPs at that epoch as HGQ2's ``FreeEBOPs`` reports it during training (before
            ``trace_minmax``; the record's ``ebops`` is re-measured after tracing).
    """

    epoch: int
    path: Path
    val_accuracy: float
    ebops: float


@dataclass
class HarvestedResult:
    """What a worker returns for one harvested checkpoint.

    Attributes:
        epoch: 0-based epoch of the checkpoint.
        state: ``"COMPLETE"`` or ``"FAIL"``.
        metrics: measured numbers, as for a trial (``harvest_epoch``, ``harvest_beta`` and ``harvest_val_accuracy`` included).
        tags: string tags, as for a trial (``harvested_from``, ``harvest_epoch`` included).
        run_id: its MLflow run (ended by the worker), or ``None`` if it could not be created.
        error: why it failed, else ``None``.
    """

    epoch: int
    state: str
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    run_id: str | None = None
    error: str | None = None


def pareto_callback(directory: Path):
    """HGQ2's ``ParetoFront`` callback saving the weights of each epoch non-dominated in (``val_accuracy`` up, ``ebops`` down).

    Must run after ``FreeEBOPs`` (which puts ``ebops`` in the epoch's logs). A checkpoint
    later dominated is deleted by the callback.
    """
    from hgq.utils.sugar import ParetoFront

    return ParetoFront(directory, ["val_accuracy", "ebops"], [1, -1], fname_format="epoch={epoch}.weights.h5")


def select_checkpoints(callback, n: int, final_epoch: int, final: tuple[float, float] | None = None) -> list[Checkpoint]:
    """Up to ``n`` of the callback's checkpoints, the final epoch's left out (it is the trial itself).

    Only Pareto-optimal ones in (validation accuracy, EBOPs): HGQ2's ``ParetoFront`` drops a checkpoint only when a
    later one is better in both, so ties survive it (epochs 5, 6 and 7 at the same accuracy, 7 with the
    fewest EBOPs, all became trials). A checkpoint another one, or the final epoch, weakly dominates is left out, and
    of equal ones the latest epoch is kept. When more than ``n`` remain, ``n`` spread evenly over EBOPs are kept (the
    extremes always).

    Args:
        callback: the trial's :func:`pareto_callback` after training.
        n: at most this many (``training.harvest_checkpoints``).
        final_epoch: the last epoch (0-based), the trial itself.
        final: the trial's own measured ``(keras_val_accuracy, ebops)``; a checkpoint it weakly dominates is left out too
            (probe 31: a beta-0 trial's epoch 4, 0.9472 at 295,632 EBOPs, was kept beside its final model's 0.9639 at
            295,620, whose logged epoch figures had not dominated it). These are measured after ``trace_minmax``, the
            checkpoints' during training: a checkpoint a few EBOPs from the final model may be left out for that
            difference alone, never one more accurate than it.

    Returns:
        Checkpoints sorted by EBOPs, ascending.
    """
    every = []
    for path, (acc, ebops) in zip(callback.paths, callback.record):
        m = _EPOCH.search(Path(path).name)
        if m is not None:
            every.append(Checkpoint(int(m.group(1)), Path(path), float(acc), float(ebops)))

    def dominated(c: Checkpoint) -> bool:
        return any(o is not c and o.val_accuracy >= c.val_accuracy and o.ebops <= c.ebops
                   and (o.val_accuracy > c.val_accuracy or o.ebops < c.ebops or o.epoch > c.epoch) for o in every)

    def beaten_by_the_trial(c: Checkpoint) -> bool:
        return final is not None and all(v == v for v in final) and final[0] >= c.val_accuracy and final[1] <= c.ebops

    found = sorted((c for c in every if c.epoch != final_epoch and not dominated(c) and not beaten_by_the_trial(c)),
                   key=lambda c: c.ebops)
    if n <= 0:
        return []
    if len(found) > n:
        idx = sorted(set(np.linspace(0, len(found) - 1, n).round().astype(int).tolist()))
        found = [found[i] for i in idx]
    return found
