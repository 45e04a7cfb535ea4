"""Which trials run hls4ml's C simulation (``hls4ml.csim``), and the front that decides it.

With ``csim: front`` the driver sends each trial the objective values of the feasible Pareto
front it knows at dispatch time. A trial whose objectives (``csim_val_accuracy`` and ``csim_accuracy`` read as its
Keras accuracies on the same splits) are dominated by one of them, or that violates a constraint, cannot join the front
later either: the dominating trial stays in the study and fronts only improve. So skipping
the C simulation of exactly those trials leaves every trial that ever joins the front
C-simulated, while dominated trials save the g++ build (5-50 s of CPU each).

Under ``front``, every distributed_arithmetic design is instead emulated by da4ml
(:data:`EMULATED`): hls4ml generates that strategy's logic with da4ml, and da4ml's
``CombLogic.predict`` computes it bit-exactly in numpy in well under a second, where the g++
build of its C simulation takes 35-70 s on 2 cores. ``csim: all`` still builds it.
"""

from __future__ import annotations

import math
from typing import Sequence

from dse.config import ExperimentConfig
from dse.config._experiment import CSIM_ACCURACIES

__all__ = ["dominates", "update_front", "front_values", "csim_decision", "front_verdict", "SIMULATED", "EMULATED", "SKIPPED", "SKIPPED_DOMINATED", "SKIPPED_INFEASIBLE"]

#: Tag values of ``csim`` on a trial.
SIMULATED, SKIPPED_DOMINATED, SKIPPED_INFEASIBLE, SKIPPED = "run", "skipped-dominated", "skipped-infeasible", "skipped"
#: ``csim`` tag of a distributed_arithmetic design checked by da4ml's bit-exact emulation instead of the g++ build.
EMULATED = "da4ml"


def dominates(a: Sequence[float], b: Sequence[float], directions: Sequence[str]) -> bool:
    """True when objective vector ``a`` Pareto-dominates ``b`` (no worse in all, better in one).

    Args:
        a, b: objective values in the experiment's objective order.
        directions: ``"maximize"`` / ``"minimize"`` per objective.
    """
    better = False
    for x, y, d in zip(a, b, directions):
        if d == "maximize":
            x, y = -x, -y
        if x > y:
            return False
        if x < y:
            better = True
    return better


def update_front(front: list[tuple[float, ...]], values: Sequence[float], directions: Sequence[str]) -> list[tuple[float, ...]]:
    """``front`` with ``values`` added if not dominated, and the members it dominates removed."""
    v = tuple(float(x) for x in values)
    if any(dominates(f, v, directions) or f == v for f in front):
        return front
    return [f for f in front if not dominates(v, f, directions)] + [v]


def front_values(exp: ExperimentConfig, metrics: dict[str, float]) -> list[float] | None:
    """The objective values a measured record adds to the feasible front, or ``None`` when it
    violates a constraint or misses an objective."""
    from dse.exceptions import MeasurementError
    from dse.store import objective_values, within_constraints

    if not within_constraints(exp.constraints, metrics):
        return None
    try:
        return objective_values(exp.objectives, metrics)
    except MeasurementError:
        return None


def csim_decision(exp: ExperimentConfig, metrics: dict[str, float], front: Sequence[Sequence[float]] | None) -> str:
    """Whether a trial should build and run the C simulation.

    Args:
        exp: the experiment (``hls4ml.csim``, objectives, constraints).
        metrics: the trial's metrics so far (``keras_val_accuracy``, ``keras_accuracy`` and the resource figures).
        front: objective values of the feasible front at dispatch time (``None``: unknown).

    Returns:
        :data:`SIMULATED`; :data:`EMULATED` for every distributed_arithmetic design under ``front``
        (its da4ml emulation was measured: ``da4ml_accuracy`` in ``metrics``); or why not:
        :data:`SKIPPED` (``csim: none``), :data:`SKIPPED_INFEASIBLE`, :data:`SKIPPED_DOMINATED`.
    """
    mode = exp.hls4ml.csim
    if mode == "all":
        return SIMULATED
    if mode == "none":
        return SKIPPED
    if "da4ml_accuracy" in metrics:  # free and bit-exact: every distributed_arithmetic design gets it
        return EMULATED
    return front_verdict(exp, metrics, front)


def front_verdict(exp: ExperimentConfig, metrics: dict[str, float], front: Sequence[Sequence[float]] | None, *,
                  stand_in: bool = True) -> str:
    """Whether a trial's measured ``metrics`` could still join the feasible front (``csim: front``'s test).

    Args:
        exp: the experiment (objectives, constraints).
        metrics: the trial's metrics and resource figures.
        front: objective values of the feasible front at dispatch time (``None``: unknown).
        stand_in: the Keras accuracies stand in for the C-simulated ones (``keras_val_accuracy`` for
            ``csim_val_accuracy``, ``keras_accuracy`` for ``csim_accuracy``), for a trial not simulated yet; ``False``
            reads ``metrics``' own (a distributed_arithmetic design's emulated ones, as the driver will).

    Returns:
        :data:`SIMULATED` (it may join: no front member dominates it, or an objective is missing),
        :data:`SKIPPED_INFEASIBLE` or :data:`SKIPPED_DOMINATED`.
    """
    from dse.store import within_constraints

    proxy = {**metrics, **{c: metrics.get(k, math.nan) for c, k in CSIM_ACCURACIES.items()}} if stand_in else metrics
    if not within_constraints(exp.constraints, proxy):
        return SKIPPED_INFEASIBLE
    try:
        values = [float(proxy[o.metric]) for o in exp.objectives]
    except KeyError:  # an objective is missing: the trial fails later anyway; simulate to report what can be
        return SIMULATED
    directions = [o.direction for o in exp.objectives]
    if front and any(dominates(f, values, directions) for f in front):
        return SKIPPED_DOMINATED
    return SIMULATED
