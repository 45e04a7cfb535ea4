"""Pareto-front data of a study, computed apart from any renderer."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
import shlex

import optuna
import pandas as pd
from optuna.trial import TrialState

from dse.config import ConstraintConfig
from dse.store import StudyRecords, TrialRecord, is_harvested, is_not_evaluated

__all__ = ["StudyCounts", "study_counts", "failure_reasons", "front_frame", "no_front_advice"]


@dataclass(frozen=True)
class StudyCounts:
    """Trials per state; ``feasible``/``infeasible`` split the complete trials of a constrained study.

    ``harvested`` counts the complete trials that are checkpoints kept along another trial's
    beta ramp (``training.harvest_checkpoints``); they are in ``complete`` but not in ``trained``.
    ``interrupted`` counts the failed trials that were never evaluated and were re-enqueued
    (``DriverLostError``, ``TrialInterruptedError``); they are in ``failed``.
    """

    complete: int
    failed: int
    running: int
    waiting: int
    pruned: int
    feasible: int | None = None
    infeasible: int | None = None
    harvested: int = 0
    interrupted: int = 0

    @property
    def finished(self) -> int:
        """Trials no longer running or waiting: complete, failed and pruned (harvested checkpoints included)."""
        return self.complete + self.failed + self.pruned

    @property
    def trained(self) -> int:
        """Finished trials that the sampler asked for (harvested checkpoints left out)."""
        return self.finished - self.harvested

    @property
    def evaluated(self) -> int:
        """Trained trials that were evaluated (``interrupted`` ones, never evaluated and re-enqueued, left out): what
        ``n_trials`` counts."""
        return self.trained - self.interrupted


def study_counts(study: optuna.Study) -> StudyCounts:
    """Count the study's trials by state, and complete trials by feasibility when any carries constraints."""
    trials = study.get_trials(deepcopy=False)
    c = Counter(t.state for t in trials)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    feasible = infeasible = None
    if any(t.constraints for t in complete):
        infeasible = sum(1 for t in complete if any(v > 0 for v in t.constraints.values()))
        feasible = len(complete) - infeasible
    return StudyCounts(
        c[TrialState.COMPLETE], c[TrialState.FAIL], c[TrialState.RUNNING], c[TrialState.WAITING], c[TrialState.PRUNED],
        feasible, infeasible, sum(1 for t in complete if is_harvested(t)), sum(1 for t in trials if is_not_evaluated(t)),
    )


def failures_by_reason(study: optuna.Study) -> list[tuple[str, list[int], str]]:
    """FAIL trials grouped by reason type (the ``fail_reason`` before its first ``:``, e.g. ``TrainingDivergedError``).

    Returns:
        ``(type, trial numbers, the reason of the latest such trial)`` per type, most common first.
    """
    seen: dict[str, list] = {}
    for r in StudyRecords(study).trials((TrialState.FAIL,)):
        reason = r.fail_reason or "unknown"
        entry = seen.setdefault(reason.split(":", 1)[0].strip(), [[], reason])
        entry[0].append(r.number)
        entry[1] = reason
    return [(k, numbers, why) for k, (numbers, why) in sorted(seen.items(), key=lambda kv: -len(kv[1][0]))]


def trial_numbers_text(numbers: list[int], limit: int = 12) -> str:
    """``"trial 3"`` or ``"trials 0, 4, 7"`` (``dse status``); the numbers as :func:`numbers_text` lists them."""
    return f"trial{'' if len(numbers) == 1 else 's'} {numbers_text(numbers, limit)}"


def numbers_text(numbers: list[int], limit: int = 12) -> str:
    """``"0, 4, 7"``; past ``limit`` numbers, ``", ... (N in all)"`` (``dse status``, ``dse report``'s failures table)."""
    more = f", ... ({len(numbers)} in all)" if len(numbers) > limit else ""
    return f"{', '.join(map(str, numbers[:limit]))}{more}"


def failure_reasons(study: optuna.Study) -> dict[str, tuple[int, str]]:
    """FAIL trials per reason type (:func:`failures_by_reason`).

    Returns:
        ``{type: (count, the reason of the latest such trial)}``, most common first.
    """
    return {k: (len(numbers), why) for k, numbers, why in failures_by_reason(study)}


def front_frame(study: optuna.Study, numbers: list[int] | None = None, with_measurements: bool = True) -> pd.DataFrame:
    """The study's Pareto front (Optuna's ``best_trials``), or the trials ``numbers``, one row per trial.

    Columns: ``trial``, one column per objective (named by the study's metric names),
    the other recorded metrics (``ebops``, ``dsp``, ...), ``<metric>_source`` for each
    resource figure, precise re-measurements (``yosys_lut``, ``yosys_ff``, ... and their
    ``yosys_lut_source`` tags) when ``with_measurements``, ``params_<name>`` for each parameter
    the trial trained with (its recorded :class:`~dse.config.TrialParams`; per-layer
    ReuseFactors as ``"1,8"``), ``pinned`` (names pinned by a rule), ``feasible`` (constrained
    studies only; Optuna's front holds feasible trials only) and ``mlflow_run_id``. Rows are
    sorted by the first objective, best first; a trial of ``numbers`` without values (FAIL, RUNNING) has in its
    objective cells what it measured before it stopped (empty, NaN, where nothing), and without the first objective it
    comes last. No rows (the columns ``trial``, the objectives,
    ``pinned``, ``feasible`` in a constrained study, ``mlflow_run_id``) when no trial completed
    or none is feasible.

    Raises:
        ValueError: ``numbers`` names a trial the study does not have (a negative number included).
    """
    names = study.metric_names or [f"objective_{i}" for i in range(len(study.directions))]
    if numbers is not None:
        n_trials = len(study.trials)
        if unknown := [n for n in numbers if not 0 <= n < n_trials]:
            have = f"its trials are numbered 0..{n_trials - 1}" if n_trials else "it has no trial yet"
            raise ValueError(f"numbers: study {study.study_name!r} has no trial {', '.join(map(str, unknown))}; {have}")
    records = StudyRecords(study)
    extra = {b: records.measurements(b) for b in records.measured_backends()} if with_measurements else {}
    trials = study.best_trials if numbers is None else [study.trials[n] for n in numbers]
    # as study_counts: once a trial carries constraints, every row says whether it is feasible (a trial
    # finished before the study had constraints was told feasible, and Optuna keeps that)
    constrained = any(t.constraints for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    rows = []
    for t in trials:
        r = TrialRecord.of(t)
        row: dict[str, object] = {"trial": r.number}
        row.update(dict(zip(names, r.values or [])))
        for k, v in r.metrics.items():
            if k not in row and not k.startswith("seconds_"):
                row[k] = v
        row.update({k: v for k, v in r.tags.items() if k.endswith("_source")})
        for entry in (m[r.number] for m in extra.values() if r.number in m):
            row.update({k: v for k, v in entry["metrics"].items() if not k.startswith("seconds_")})
            row.update(entry["tags"])
        if r.params is not None:
            for k, v in r.params.model_dump(mode="json").items():
                if v is not None:
                    row[f"params_{k}"] = ",".join(map(str, v)) if isinstance(v, list) else v
        row["pinned"] = ",".join(r.pinned)
        if r.harvested_from is not None:
            row["harvested_from"], row["harvest_epoch"] = r.harvested_from, r.harvest_epoch
        if constrained:
            row["feasible"] = r.feasible
        row["mlflow_run_id"] = r.run_id
        rows.append(row)
    if not rows:  # the columns every front has, so a CSV of an empty front still has its header
        df = pd.DataFrame(columns=["trial", *names, "pinned", *(["feasible"] if constrained else []), "mlflow_run_id"])
    else:
        df = pd.DataFrame(rows)
        lead = ["trial", *names]
        if list(df.columns[:len(lead)]) != lead:  # a first row without values: the objectives added (before: a KeyError)
            df = df.reindex(columns=[*lead, *(c for c in df.columns if c not in lead)])
        df = df.sort_values(names[0], ascending=study.directions[0].name == "MINIMIZE", ignore_index=True)
    df.attrs["objectives"] = list(names)  # front_table shows them all, first (before: two, whatever the study had)
    return df


def no_front_advice(study: optuna.Study, constraints: list[ConstraintConfig] | None) -> str:
    """Why a study whose trials completed has no Pareto front (every one infeasible), and what to do.

    Args:
        study: the study; every COMPLETE trial was told infeasible.
        constraints: the experiment's constraints now (``None``: not known), to tell a budget
            that was loosened after the trials finished from one they still break.

    Returns:
        One sentence for the console, starting ``no Pareto front:``.
    """
    meeting = StudyRecords(study).told_infeasible_meeting(constraints or [])
    if meeting:
        shown = ", ".join(map(str, meeting[:10])) + (", ..." if len(meeting) > 10 else "")
        budget = ", ".join(c.text for c in constraints or [])
        return (f"no Pareto front: every completed trial was told infeasible when it finished, and Optuna keeps that; "
                f"trial{'s' if len(meeting) > 1 else ''} {shown} meet{'' if len(meeting) > 1 else 's'} the constraints now "
                f"({budget}): later trials are judged by them, or give the experiment another name and list those "
                "trials' values of the search space's own parameters (of the `params.*` of their MLflow runs) in "
                "enqueue_trials to have them on a front")
    broken = broken_bounds(StudyRecords(study).trials((TrialState.COMPLETE,)), constraints)
    cutoff = (" (a distributed_arithmetic design's latency_cycles count da4ml's pipeline stages: a larger "
              "resources.da4ml_latency_cutoff makes fewer, longer stages, so check timing then)" if "latency_cycles" in broken else "")
    return (f"no Pareto front: every completed trial breaks a constraint (infeasible): {'; '.join(broken.values())}{cutoff}. "
            "Loosen the budget (later trials are judged by it, finished ones keep their verdict), or take the closest trial "
            f"as it is (`dse export {shlex.quote(study.study_name)} --trial N --out <folder>`, N from `dse status`)")


def broken_bounds(records: list[TrialRecord], constraints: list[ConstraintConfig] | None = None) -> dict[str, str]:
    """Which bounds the infeasible ones of ``records`` broke when they finished, from their stored constraint values.

    Args:
        records: the trials.
        constraints: the experiment's constraints, for the bound of a metric no trial measured (its stored
            value is infinite); ``None``: that bound is not given.

    Returns:
        Per metric, most often broken first: ``{"lut": "lut max 3,000 broken by 2 of 5 trials (closest: trial 1 at 3,636)"}``;
        ``"latency_cycles max broken by 5 of 5 trials (none of them measured it)"``.
    """
    tally: dict[tuple[str, str], list[tuple[float, int, float | None, float | None]]] = {}
    for r in records:
        for metric, side, value, bound, over in r.bounds_broken():
            tally.setdefault((metric, side), []).append((over, r.number, value, bound))
    out: dict[str, str] = {}
    for (metric, side), hits in sorted(tally.items(), key=lambda kv: -len(kv[1])):
        over, number, value, bound = min(hits, key=lambda h: h[0])
        if bound is None:  # no trial measured it: the experiment's bound, where known
            bound = next((getattr(c, side) for c in constraints or [] if c.metric == metric), None)
        closest = f"closest: trial {number} at {value:,.6g}" if value is not None else "none of them measured it"
        text = (f"{metric} {side}{f' {bound:,.6g}' if bound is not None else ''} broken by {len(hits)} of {len(records)} "
                f"trial{'s' if len(records) > 1 else ''} ({closest})")
        out[metric] = f"{out[metric]}; {text}" if metric in out else text
    return out
