"""Data behind the study report's figures: plain frames and dicts, no rendering.

Every function here takes an Optuna study (read through :mod:`dse.store`) or MLflow run ids and
returns data a renderer (:mod:`dse.report._plots`, :mod:`dse.report._html`) draws. Objectives are
compared in *minimization space*: a maximized objective is negated (Optuna's convention for
``best_trials`` and its hypervolume).
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
import optuna
import pandas as pd
from optuna.trial import TrialState

from dse.config._experiment import CSIM_ACCURACIES
from dse.store import StudyRecords, TrialRecord

__all__ = [
    "RESOURCE_METRICS",
    "PRECISE_PREFERENCE",
    "Objective",
    "objectives",
    "accuracy_objective",
    "pareto_mask",
    "hypervolume",
    "reference_point",
    "hypervolume_history",
    "failure_counts",
    "NOT_EVALUATED_LABEL",
    "resource_metrics",
    "pair_points",
    "accuracy_source",
    "param_importances",
    "parallel_frame",
    "front_members_table",
    "training_curves",
    "study_timing",
]

log = logging.getLogger(__name__)

#: Resource metrics a report pairs with the accuracy objective, when the study has them.
RESOURCE_METRICS = ("ebops", "lut", "dsp", "latency_cycles")
#: Which precise re-measurement a figure uses when a trial has several (most precise first).
PRECISE_PREFERENCE = ("vivado", "vitis", "yosys", "da4ml")


@dataclass(frozen=True)
class Objective:
    """One objective of a study: the metric name and ``"maximize"``/``"minimize"``."""

    metric: str
    direction: str

    @property
    def sign(self) -> float:
        """+1 for minimize, -1 for maximize: ``sign * value`` is minimized."""
        return -1.0 if self.direction == "maximize" else 1.0


def objectives(study: optuna.Study) -> list[Objective]:
    """The study's objectives in order (names from ``study.metric_names``)."""
    names = study.metric_names or [f"objective_{i}" for i in range(len(study.directions))]
    return [Objective(n, d.name.lower()) for n, d in zip(names, study.directions)]


def accuracy_objective(objs: Sequence[Objective]) -> Objective:
    """The objective reports put on the vertical axis: the first maximized ``*accuracy`` one, else the first.

    The fallback may be minimized (a study of ``lut`` alone): pass its direction to :func:`pair_points`.
    """
    return next((o for o in objs if o.metric.endswith("accuracy") and o.direction == "maximize"), objs[0])


# ---------------------------------------------------------------- fronts and hypervolume


def pareto_mask(loss: np.ndarray) -> np.ndarray:
    """Non-dominated rows of ``loss`` (n_points, n_objectives), all minimized.

    Row ``i`` is dominated when some row ``j`` is ``<=`` in every column and ``<`` in one
    (the definition Optuna's ``best_trials`` uses; equal rows do not dominate each other).

    Returns:
        Boolean mask of shape (n_points,).
    """
    loss = np.asarray(loss, dtype=float)
    if len(loss) == 0:
        return np.ones(0, dtype=bool)
    # Optuna's own non-dominated sort (what best_trials uses; private, as compute_hypervolume below): O(n log n) in 2-D.
    # Before, a comparison of every row with every other: 0.2 s at 2,000 points, 3.4 s at 8,000 (probe 38).
    from optuna.study._multi_objective import _is_pareto_front

    loss = loss.reshape(len(loss), -1)
    mask = np.ones(len(loss), dtype=bool)  # a row holding NaN neither dominates nor is dominated (no comparison holds)
    finite = ~np.isnan(loss).any(axis=1)
    if finite.any():
        mask[finite] = _is_pareto_front(loss[finite], assume_unique_lexsorted=False)
    return mask


def _loss(record: TrialRecord, objs: Sequence[Objective]) -> np.ndarray:
    """A trial's objective values in minimization space (maximized ones negated)."""
    return np.array([o.sign * v for o, v in zip(objs, record.values or [])], dtype=float)


def reference_point(values: np.ndarray, objs: Sequence[Objective], margin: float = 0.1) -> np.ndarray:
    """A hypervolume reference point (minimization space) for points ``values`` (n, n_objectives) in natural units.

    Accuracy objectives (maximized, name ending in ``accuracy``) take accuracy 0 (loss 0.0);
    the others ``worst * (1 + margin)`` over the given points (``worst + margin`` when the
    worst is 0). Studies compared on one reference point pass the union of their fronts (``dse compare``).

    Returns:
        Shape (n_objectives,), minimization space.
    """
    values = np.asarray(values, dtype=float)
    ref = []
    for i, o in enumerate(objs):
        if o.direction == "maximize" and o.metric.endswith("accuracy"):
            ref.append(-0.0)
            continue
        col = o.sign * values[:, i] if len(values) else np.array([0.0])
        worst = float(np.max(col))
        ref.append(worst + (abs(worst) * margin if worst != 0 else margin))
    return np.array(ref, dtype=float)


def hypervolume(loss: np.ndarray, ref: np.ndarray) -> float:
    """Hypervolume dominated by ``loss`` (n, k), minimized, bounded by ``ref`` (k,).

    Points not strictly better than ``ref`` in every objective add nothing. Units: product of
    the objectives' units (e.g. accuracy x LUT).
    """
    loss = np.asarray(loss, dtype=float).reshape(-1, len(ref))
    loss = loss[np.all(loss < ref, axis=1)]
    if len(loss) == 0:
        return 0.0
    # Optuna's, in every dimension (its exact 2-D sweep; WFG above): before, a sweep of our own served 2-D (audit)
    from optuna._hypervolume import compute_hypervolume  # private: Optuna 5.0 has no public hypervolume function

    return float(compute_hypervolume(loss, np.asarray(ref, dtype=float)))


def hypervolume_history(study: optuna.Study, ref: np.ndarray | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """Hypervolume of the (feasible) front after each finished trial.

    Args:
        ref: reference point in minimization space; default :func:`reference_point` over all
            COMPLETE (feasible) trials.

    Returns:
        ``(frame, ref)``: frame with columns ``trial`` and ``hypervolume`` (one row per
        finished trial, by number; failed trials repeat the previous value), and the reference.
    """
    objs = objectives(study)
    recs = [r for r in StudyRecords(study).trials() if r.state in ("COMPLETE", "FAIL", "PRUNED")]
    constrained = any(r.constraints for r in recs)
    usable = [r for r in recs if r.state == "COMPLETE" and r.values and (r.feasible or not constrained)]
    if ref is None:
        ref = reference_point(np.array([r.values for r in usable]).reshape(-1, len(objs)), objs)
    # the front so far and its hypervolume, recomputed only when a point joins the front (a dominated point, or one
    # outside the reference box, changes nothing); before, the hypervolume of every point so far after each trial:
    # quadratic, 1.3 s at 2,000 trials and about 23 s at 8,000 (probe 38)
    rows, front, hv = [], np.empty((0, len(ref))), 0.0
    usable_ids = {r.number for r in usable}
    for r in recs:
        if r.number in usable_ids:
            p = _loss(r, objs)
            if np.all(p < ref) and not np.any(np.all(front <= p, axis=1)):
                front = np.vstack([front[~np.all(p <= front, axis=1)], p])
                hv = hypervolume(front, ref)
        rows.append({"trial": r.number, "hypervolume": hv})
    return pd.DataFrame(rows, columns=["trial", "hypervolume"]), ref


#: appended to a reason type whose trials were never evaluated (driver lost or stopped) and were re-enqueued
NOT_EVALUATED_LABEL = " (not evaluated, re-enqueued)"


def failure_counts(study: optuna.Study) -> dict[str, int]:
    """Failed trials per reason type: the ``fail_reason`` prefix before ``:`` (``TrainingDivergedError``), most common first.

    Trials that were never evaluated (``DriverLostError``, ``TrialInterruptedError``: the driver was
    lost or stopped while they ran, and their parameters were re-enqueued) are not failures of a
    design; their type carries :data:`NOT_EVALUATED_LABEL` so that tables and the failures chart
    tell them apart.
    """
    table = failure_table(study)
    return {str(kind): int(n) for kind, n in zip(table["reason"], table["trials"])}


def failure_table(study: optuna.Study) -> pd.DataFrame:
    """One row per failure reason type, most common first: the report's "Failed trials by reason" table.

    Columns: ``reason`` (the type, as :func:`failure_counts` names it, not-evaluated trials
    labelled), ``trials`` (count), ``trial numbers`` (up to 12, then the count; ``dse status``
    gives the same), ``latest reason`` (the whole ``fail_reason`` of the latest such trial,
    whitespace collapsed, cut at 300 characters). No rows when no trial failed.
    """
    from dse.report._pareto import failures_by_reason, numbers_text
    from dse.store import NOT_EVALUATED

    rows = [{
        "reason": kind + (NOT_EVALUATED_LABEL if kind in NOT_EVALUATED else ""),
        "trials": len(numbers),
        "trial numbers": numbers_text(numbers),
        "latest reason": " ".join(why.split())[:300],
    } for kind, numbers, why in failures_by_reason(study)]
    return pd.DataFrame(rows, columns=["reason", "trials", "trial numbers", "latest reason"])


# ---------------------------------------------------------------- accuracy vs resources


def resource_metrics(study: optuna.Study) -> list[str]:
    """The :data:`RESOURCE_METRICS` some COMPLETE trial measured, plus minimized objectives not among them."""
    recs = StudyRecords(study).trials((TrialState.COMPLETE,))
    have = [m for m in RESOURCE_METRICS if any(m in r.metrics for r in recs)]
    extra = [o.metric for o in objectives(study) if o.direction == "minimize" and o.metric not in have]
    return have + extra


def _precise(number: int, metric: str, measured: dict[str, dict[int, dict[str, Any]]]) -> tuple[float, str, str] | None:
    """``(value, source, backend)`` of the most precise re-measurement of ``metric`` for a trial."""
    for backend in [*PRECISE_PREFERENCE, *sorted(measured)]:
        entry = measured.get(backend, {}).get(number)
        if entry is None:
            continue
        value = entry["metrics"].get(f"{backend}_{metric}")
        if value is not None:
            return float(value), str(entry["tags"].get(f"{backend}_{metric}_source", backend)), backend
    return None


def accuracy_source(accuracy: str, tag: object) -> str:
    """What gave a trial's ``accuracy``: for ``csim_val_accuracy`` and ``csim_accuracy`` its ``csim_accuracy_source`` tag
    ``tag`` (one tag for both splits: ``csim``, ``da4ml``, ``keras``; ``csim`` for trials of a dse that wrote no such
    tag), ``""`` for any other metric."""
    if accuracy not in CSIM_ACCURACIES:
        return ""
    return tag if isinstance(tag, str) and tag else "csim"


def pair_points(study: optuna.Study, accuracy: str, metric: str, direction: str = "maximize") -> pd.DataFrame:
    """Points of one accuracy-vs-resource figure: every COMPLETE trial that has both numbers.

    A trial re-measured by a precise backend (``dse synthesize``) shows that figure instead of
    its estimate (``precise`` True, ``source`` the precise source, e.g. ``yosys``), and is
    ``feasible`` only where its re-measured figures also hold the study's constraints
    (:func:`dse.store.precise_broken`, as the fronts on precise figures). The 2-D
    front ``on_front`` is computed on the values shown, among feasible trials: ``metric``
    minimized, ``accuracy`` (the vertical axis; another objective when the study has no accuracy
    one, see :func:`accuracy_objective`) in its ``direction`` (``"maximize"``/``"minimize"``).

    Returns:
        Columns ``trial``, ``accuracy`` (fraction), ``value`` (the resource, its natural unit),
        ``source`` (the ``<metric>_source`` tag, ``"hgq-ebops"`` for EBOPs which have none),
        ``precise`` (bool), ``estimate`` (the trial's own estimate when ``precise``), ``feasible``,
        ``accuracy_source`` (what gave ``csim_accuracy``: its tag ``csim_accuracy_source``, ``csim``, ``da4ml`` or
        ``keras`` where the trial was not simulated; ``""`` for other accuracies), ``on_front``. Sorted by ``value``.
    """
    from dse.exceptions import DseError
    from dse.store import precise_broken

    records = StudyRecords(study)
    measured = {b: records.measurements(b) for b in records.measured_backends()}
    try:  # for a re-measured trial, whether its precise figures still hold the budget (as dse status's precise front)
        constraints = list(records.experiment(reading=True).constraints) if measured else []
    except DseError:  # no stored experiment, or one that does not validate here: the trials' stored verdicts alone
        constraints = []
    rows = []
    for r in records.trials((TrialState.COMPLETE,)):
        acc = r.metrics.get(accuracy)
        own = r.metrics.get(metric)
        if acc is None:
            continue
        precise = _precise(r.number, metric, measured) if metric != "ebops" else None
        if precise is None and own is None:
            continue
        source = r.tags.get(f"{metric}_source", "hgq-ebops" if metric == "ebops" else "unknown")
        rows.append({
            "trial": r.number,
            "accuracy": float(acc),
            "value": precise[0] if precise else float(own),
            "source": precise[1] if precise else source,
            "precise": precise is not None,
            "estimate": float(own) if precise and own is not None else math.nan,
            # before, a trial over budget on its re-measured figures was drawn (at them) as a feasible front point
            "feasible": r.feasible and not any(precise_broken(entries[r.number], b, constraints)
                                               for b, entries in measured.items() if r.number in entries),
            "accuracy_source": accuracy_source(accuracy, r.tags.get("csim_accuracy_source")),
        })
    df = pd.DataFrame(rows, columns=["trial", "accuracy", "value", "source", "precise", "estimate", "feasible",
                                     "accuracy_source"])
    df["on_front"] = False
    feas = df[df["feasible"]]
    if not feas.empty:
        y = Objective(accuracy, direction).sign * feas["accuracy"].to_numpy()
        mask = pareto_mask(np.column_stack([y, feas["value"].to_numpy()]))
        df.loc[feas.index[mask], "on_front"] = True
    return df.sort_values("value", ignore_index=True)


# ---------------------------------------------------------------- parameters


def _used_draws(study: optuna.Study, complete: list["optuna.trial.FrozenTrial"]) -> optuna.Study:
    """An in-memory copy of ``study``'s ``complete`` trials holding only the draws each used (:func:`param_importances`)."""
    view = optuna.create_study(directions=study.directions)
    for t in complete:
        unused = set(TrialRecord.of(t).pinned or ())
        unused |= {f"{k}_is_zero" for k in unused}  # a pinned float's include_zero draw is unused too
        unused |= {k.removesuffix("_is_zero") for k, v in t.params.items() if k.endswith("_is_zero") and v is True}
        if t.params.get("beta_schedule") == "constant":  # no ramp: its beta_end draw is never reached
            unused |= {"beta_end", "beta_end_is_zero"}
        # and a value outside its distribution (a point a user enqueued with study.enqueue_trial, which Optuna runs with
        # a warning): create_trial refuses it, and the report raised ValueError
        params = {k: v for k, v in t.params.items() if k not in unused and _inside(t.distributions[k], v)}
        view.add_trial(optuna.trial.create_trial(values=t.values, params=params,
                                                 distributions={k: t.distributions[k] for k in params}))
    return view


def _inside(dist: "optuna.distributions.BaseDistribution", value: Any) -> bool:
    """Whether ``value`` is one ``dist`` can give (Optuna's own check of ``create_trial``)."""
    try:
        return bool(dist._contains(dist.to_internal_repr(value)))
    except (TypeError, ValueError):
        return False


def param_importances(study: optuna.Study, n_min: int = 4) -> dict[str, dict[str, float]]:
    """Parameter importances per objective (Optuna's default evaluator), directions respected.

    Each objective is passed as ``target=`` in minimization form (a maximized objective is
    negated: Optuna 5's default evaluator treats lower as better). Importances are over the
    parameters as Optuna sampled them (its distributions), COMPLETE trials only, and only over draws a trial used:
    NSGA-II draws every parameter in every trial (:meth:`dse.config.SearchSpace.suggest`), and a draw a rule pinned
    (the trial's ``pinned``), a ``beta`` where ``beta_is_zero`` was drawn, or a ``beta_end`` where ``beta_schedule`` ``constant`` was, is left out of that trial, as Optuna
    left it out before (the unused beta draws of trials that trained at beta 0 ranked second). Optuna's
    evaluator then rates each parameter over the trials that used it.

    Returns:
        objective metric -> {parameter: importance (sums to 1)}; an objective is absent when
        fewer than ``n_min`` trials completed or Optuna could not evaluate it.
    """
    out: dict[str, dict[str, float]] = {}
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < n_min:
        return out
    objs = objectives(study)
    study = _used_draws(study, complete)
    for i, o in enumerate(objs):
        sign = o.sign
        try:
            with warnings.catch_warnings(record=True) as said:
                warnings.simplefilter("always")
                imp = optuna.importance.get_param_importances(
                    study, target=lambda t, i=i, sign=sign: sign * t.values[i], normalize=True
                )
        except (RuntimeError, ValueError, ZeroDivisionError) as e:
            log.info("importances of %s not available: %s", o.metric, e)
            continue
        # PedAnova warns that it favours low targets (the sign above sees to that) and, per parameter, that a value was
        # drawn by fewer than 2 trials: at INFO, not 16 lines on stderr for a small study
        for w in said:
            if "achieve low `target` values" not in str(w.message):
                log.info("importances of %s: %s", o.metric, w.message)
        out[o.metric] = {k: float(v) for k, v in imp.items()}
    return out


def parallel_frame(study: optuna.Study) -> pd.DataFrame:
    """The parameters each COMPLETE trial actually trained with (``TrialRecord.params``) and its objectives.

    Only parameters that vary between trials are kept. Per-layer ReuseFactors are strings
    (``"2,1"``); ``layer_reuse_factors`` replaces ``reuse_factor`` when present.

    Returns:
        Columns ``trial``, the varying parameter names, then the objective metrics.
    """
    objs = objectives(study)
    rows = []
    for r in StudyRecords(study).trials((TrialState.COMPLETE,)):
        if r.params is None:
            continue
        row: dict[str, Any] = {"trial": r.number}
        for k, v in r.params.model_dump(mode="json").items():
            row[k] = ",".join(map(str, v)) if isinstance(v, list) else v
        for o, v in zip(objs, r.values or []):
            row[o.metric] = v
        rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    names = [o.metric for o in objs]
    params = [c for c in df.columns if c not in ("trial", *names) and df[c].astype(str).nunique() > 1]
    return df[["trial", *params, *[n for n in names if n in df]]]


def front_members_table(study: optuna.Study) -> pd.DataFrame:
    """The front members with what a talk needs (one row per trial, best accuracy first).

    Columns: ``trial``, ``strategy``, ``reuse_factor`` (per layer, input to output, ``"2,1"``),
    ``keras_val_accuracy``, ``csim_val_accuracy`` (validation split), ``keras_accuracy``, ``csim_accuracy`` (test
    split) and ``csim_accuracy_source`` (``csim``, ``da4ml`` or ``keras``: what gave both C-simulation accuracies),
    every resource figure present as
    ``<figure>`` with ``<figure>_source`` beside it (precise re-measurements as
    ``<backend>_<figure>``), the other parameters any member has as ``params_<name>`` (constant ones too: a
    one-member front has nothing that varies), ``harvested_from`` and ``harvest_epoch`` where the front has a
    harvested checkpoint (the trial whose beta ramp it was taken from, and the epoch), ``mlflow_run_id``. Before, those
    two were left out, and :func:`curve_runs` drew no curve for a harvested member (probe 39).
    """
    from dse.report._pareto import front_frame

    front = front_frame(study)
    if front.empty:
        return front
    cols = ["trial"]
    front = front.rename(columns={"params_strategy": "strategy"})
    front["reuse_factor"] = front.get("params_layer_reuse_factors", front.get("params_reuse_factor"))
    cols += ["strategy", "reuse_factor"]
    cols += [c for c in ("keras_val_accuracy", "csim_val_accuracy", "keras_accuracy", "csim_accuracy", "csim_accuracy_source")
             if c in front]  # both splits, and what gave them
    figures = ["ebops", "lut", "dsp", "ff", "latency_cycles", "da4ml_cost"]
    for f in figures:
        if f in front:
            cols.append(f)
            if f"{f}_source" in front:
                cols.append(f"{f}_source")
    precise = [c for c in front.columns if c.split("_", 1)[0] in PRECISE_PREFERENCE and c.split("_", 1)[-1] in ("lut", "dsp", "ff", "latency_cycles")]
    for c in precise:
        if c not in cols:
            cols.append(c)
            if f"{c}_source" in front:
                cols.append(f"{c}_source")
    skip = {"params_strategy", "params_reuse_factor", "params_layer_reuse_factors"}
    cols += [c for c in front.columns if c.startswith("params_") and c not in skip and front[c].notna().any()]
    cols += ["harvested_from", "harvest_epoch"]  # where the front has checkpoints: whose training curves they are
    cols.append("mlflow_run_id")
    return front[[c for c in dict.fromkeys(cols) if c in front]]


# ---------------------------------------------------------------- MLflow and timing


#: Per-epoch curves a report draws for front members (MLflow metric ``epoch_<name>``, step = epoch).
CURVES = ("accuracy", "val_accuracy", "ebops", "beta")


def curve_runs(study: optuna.Study, members: pd.DataFrame) -> dict[int, str]:
    """The MLflow run holding each front member's training curves, for :func:`training_curves`.

    A trial's own run, except for a checkpoint harvested along another trial's beta ramp
    (``harvested_from``): it logged no curves of its own, and its training is that trial's
    run (up to its ``harvest_epoch``).

    Args:
        study: the study.
        members: :func:`dse.report.front_frame` rows (``trial``, ``mlflow_run_id``, and
            ``harvested_from`` where the front has harvested checkpoints).

    Returns:
        trial number -> MLflow run id; members without a run are left out.
    """
    runs: dict[int, str] = {}
    for _, r in members.iterrows():
        harvested = r.get("harvested_from")
        rid = TrialRecord.of(study.trials[int(harvested)]).run_id if pd.notna(harvested) else r.get("mlflow_run_id")
        if isinstance(rid, str) and rid:
            runs[int(r["trial"])] = rid
    return runs


def training_curves(tracking_uri: str, run_ids: dict[int, str], names: Iterable[str] = CURVES) -> dict[int, dict[str, list[tuple[int, float]]]]:
    """Per-epoch training curves of some trials from MLflow metric history.

    Args:
        run_ids: trial number -> MLflow child run id.
        names: curve names; read from metrics ``epoch_<name>``.

    Returns:
        trial -> curve name -> ``[(epoch, value), ...]`` sorted by epoch; curves a run did
        not log are absent (``epoch_beta`` exists for trials run by dse >= this version).
    """
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    out: dict[int, dict[str, list[tuple[int, float]]]] = {}
    for number, rid in run_ids.items():
        curves: dict[str, list[tuple[int, float]]] = {}
        for name in names:
            try:
                hist = client.get_metric_history(rid, f"epoch_{name}")
            except Exception as e:  # a run deleted or a store unreachable: report without it
                log.warning("trial %d: no metric history epoch_%s: %s", number, name, e)
                continue
            if hist:
                curves[name] = sorted((int(m.step), float(m.value)) for m in hist)
        out[number] = curves
    return out


@dataclass(frozen=True)
class StudyTiming:
    """When a study ran and what it cost.

    Attributes:
        first_start, last_end: ISO timestamps of the first trial start and last trial end.
        wall_seconds: last end - first start (s), across all ``dse run`` invocations.
        cpu_hours: sum of the trials' seconds (:func:`trial_seconds`) / 3600 (worker seconds; each
            trial holds ``ray.cpus_per_trial`` CPUs).
        n_trials, n_complete, n_failed: trial counts.
    """

    first_start: str | None
    last_end: str | None
    wall_seconds: float
    cpu_hours: float
    n_trials: int
    n_complete: int
    n_failed: int
    failures: dict[str, int] = field(default_factory=dict)


def trial_seconds(t: "optuna.trial.FrozenTrial") -> float:
    """Seconds a trial held its worker: its ``seconds_total`` metric, or, for a FAIL trial that reported none (stopped by
    the driver: a time limit, Ctrl-C, a lost worker), its start to its end. Before, such trials counted 0 in CPU-hours
    (six trials stopped at 15 s each made "CPU-hours 0.000"). A trial whose driver was lost
    (``DriverLostError``) is told FAIL by a later driver, so it counts its start to its last heartbeat. A harvested
    checkpoint without one counts 0: its time is its trial's."""
    record = TrialRecord.of(t)
    seconds = record.metrics.get("seconds_total")
    if seconds is not None:
        return float(seconds)
    if t.state != TrialState.FAIL or not t.datetime_start or not t.datetime_complete:
        return 0.0
    if (record.fail_reason or "").startswith("DriverLostError"):  # told FAIL by a later driver, maybe days on: its
        beat = StudyRecords.heartbeat_of(t).get("time")          # last heartbeat is when it last ran
        return max(float(beat) - t.datetime_start.timestamp(), 0.0) if beat else 0.0
    return max((t.datetime_complete - t.datetime_start).total_seconds(), 0.0)


def study_timing(study: optuna.Study) -> StudyTiming:
    """Wall time, CPU-hours (:func:`trial_seconds`) and counts of a study from its trials' timestamps and figures."""
    trials = study.get_trials(deepcopy=False)
    starts = [t.datetime_start for t in trials if t.datetime_start]
    ends = [t.datetime_complete for t in trials if t.datetime_complete]
    recs = StudyRecords(study).trials()
    seconds = sum(trial_seconds(t) for t in trials)
    return StudyTiming(
        min(starts).isoformat(timespec="seconds") if starts else None,
        max(ends).isoformat(timespec="seconds") if ends else None,
        (max(ends) - min(starts)).total_seconds() if starts and ends else 0.0,
        seconds / 3600.0,
        len(trials),
        sum(1 for r in recs if r.state == "COMPLETE"),
        sum(1 for r in recs if r.state == "FAIL"),
        failure_counts(study),
    )
