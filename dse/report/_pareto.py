"""Pareto-front data of a study, computed apart from any renderer."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import optuna
import pandas as pd
from optuna.trial import TrialState

from dse.report._measurements import measured_backends, measurements

__all__ = ["StudyCounts", "study_counts", "front_frame"]


@dataclass(frozen=True)
class StudyCounts:
    """Trials per state."""

    complete: int
    failed: int
    running: int
    waiting: int
    pruned: int

    @property
    def finished(self) -> int:
        return self.complete + self.failed + self.pruned


def study_counts(study: optuna.Study) -> StudyCounts:
    """Count the study's trials by state."""
    c = Counter(t.state for t in study.get_trials(deepcopy=False))
    return StudyCounts(
        c[TrialState.COMPLETE], c[TrialState.FAIL], c[TrialState.RUNNING], c[TrialState.WAITING], c[TrialState.PRUNED]
    )


def front_frame(study: optuna.Study, numbers: list[int] | None = None, with_measurements: bool = True) -> pd.DataFrame:
    """The study's Pareto front (Optuna's ``best_trials``), or the trials ``numbers``, one row per trial.

    Columns: ``trial``, one column per objective (named by the study's metric names),
    the other recorded metrics (``ebops``, ``dsp``, ...), ``<metric>_source`` for each
    resource figure, precise re-measurements (``yosys_lut``, ``yosys_ff``, ... and their
    ``yosys_lut_source`` tags) when ``with_measurements``, ``params_<name>`` for each sampled
    or rule-pinned parameter, and ``mlflow_run_id``. Rows are sorted by the first objective, best first.
    Empty when no trial completed.
    """
    names = study.metric_names or [f"objective_{i}" for i in range(len(study.directions))]
    extra = {b: measurements(study, b) for b in measured_backends(study)} if with_measurements else {}
    trials = study.best_trials if numbers is None else [study.trials[n] for n in numbers]
    rows = []
    for t in trials:
        row: dict[str, object] = {"trial": t.number}
        row.update(dict(zip(names, t.values)))
        for k, v in (t.user_attrs.get("metrics") or {}).items():
            if k not in row and not k.startswith("seconds_"):
                row[k] = v
        row.update({k: v for k, v in (t.user_attrs.get("tags") or {}).items() if k.endswith("_source")})
        for entry in (m[t.number] for m in extra.values() if t.number in m):
            row.update({k: v for k, v in entry["metrics"].items() if not k.startswith("seconds_")})
            row.update(entry["tags"])
        pinned = {k: v for k, v in (t.user_attrs.get("fixed_params") or {}).items() if v is not None}
        row.update({f"params_{k}": v for k, v in {**pinned, **t.params}.items() if not k.endswith("_is_zero")})
        row["mlflow_run_id"] = t.user_attrs.get("mlflow_run_id")
        rows.append(row)
    df = pd.DataFrame(rows)
    if not df.empty:
        df = df.sort_values(names[0], ascending=study.directions[0].name == "MINIMIZE", ignore_index=True)
    return df
