"""The study loop: Optuna ask/tell in RDB storage, each trial a Ray task in a fresh worker process."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from dse.config import ExperimentConfig, SearchSpace
from dse.data import Splits
from dse.report import format_value, front_frame, study_counts
from dse.study._ray_session import ray_session
from dse.study._preflight import preflight
from dse.study._samplers import make_sampler
from dse.study._storage import open_study
from dse.tracking import StudyTracker
from dse.trial import TrialResult, TrialSpec

__all__ = ["StudySummary", "run_study"]

log = logging.getLogger(__name__)


@dataclass
class StudySummary:
    """What :func:`run_study` returns.

    Attributes:
        study_name: the Optuna study name.
        storage: Optuna storage URL.
        tracking_uri: MLflow tracking URI.
        parent_run_id: the study's MLflow parent run.
        front_csv: local copy of the Pareto-front CSV (also an artifact of the parent run).
        n_complete, n_failed: trial counts at the end.
        wall_seconds: wall time of this call.
        front: the front as records (see :func:`dse.report.front_frame`).
    """

    study_name: str
    storage: str
    tracking_uri: str
    parent_run_id: str
    front_csv: Path
    n_complete: int
    n_failed: int
    wall_seconds: float
    front: list[dict[str, Any]] = field(default_factory=list)


def _execute(spec: TrialSpec, splits: Splits) -> TrialResult:
    """Body of the Ray task (module level so workers import it by reference)."""
    import logging as _logging

    from dse.trial import run_trial

    _logging.basicConfig(level=_logging.INFO)
    return run_trial(spec, splits)


class _Progress:
    """Terminal progress on stderr: a rich bar on a terminal, one plain line per finished trial elsewhere.

    Shows trials done/failed/running, the front size and the elapsed time.
    """

    def __init__(self, enabled: bool, total: int, done: int):
        import sys

        from rich.console import Console

        self.enabled = enabled
        self.total = total
        self.t0 = time.time()
        self.console = Console(stderr=True, width=None if sys.stderr.isatty() else 200)
        self.bar = enabled and sys.stderr.isatty()
        if self.bar:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                TextColumn("{task.fields[info]}"), console=self.console,
            )
            self.task = self.progress.add_task("trials", total=total, completed=done, info="")
            self.progress.start()

    def update(self, done: int, failed: int, running: int, front: int, finished: list[str] | None = None) -> None:
        info = f"failed {failed} | running {running} | front {front}"
        if self.bar:
            self.progress.update(self.task, completed=done, info=info)
        elif self.enabled and finished:
            for line in finished:
                self.console.print(f"{line}  [{done}/{self.total} done, {info}, {time.time() - self.t0:.0f} s]", highlight=False, markup=False)
        log.info("progress: %d done (%d failed), %d running, front size %d, %.0f s", done, failed, running, front, time.time() - self.t0)

    def stop(self) -> None:
        if self.bar:
            self.progress.stop()


def _describe(number: int, state: str, result: TrialResult, exp: ExperimentConfig) -> str:
    """One line about a finished trial: its objectives, or why it failed."""
    if state == "COMPLETE":
        vals = ", ".join(f"{o.metric}={format_value(result.metrics[o.metric])}" for o in exp.objectives)
        return f"trial {number} COMPLETE {vals} ({result.metrics.get('seconds_total', 0):.0f} s)"
    return f"trial {number} FAIL {result.error}"


class _FrontRemeasurer:
    """``resources.synthesize_front``: measure each new front member with the precise backend while the study runs."""

    def __init__(self, study: optuna.Study, exp: ExperimentConfig, splits_ref, keep_files: bool):
        from dse.study._synthesize import Remeasurer

        self.rm = Remeasurer(study, exp, exp.resources.synthesize_front, keep_files=keep_files)
        self.study, self.splits_ref = study, splits_ref
        self.seen: set[int] = set()
        self.pending: dict[Any, tuple[int, str]] = {}

    def submit_new_front_members(self) -> None:
        new = [t for t in self.study.best_trials if t.number not in self.seen]
        self.seen.update(t.number for t in new)
        for t, key in self.rm.plan(new):
            self.pending[self.rm.submit(t, self.splits_ref)] = (t.number, key)

    def collect(self, ref) -> None:
        number, key = self.pending.pop(ref)
        self.rm.record(number, key, ref)

    def finish(self):
        return self.rm.finish()


def _tell(study: optuna.Study, trial: optuna.Trial, exp: ExperimentConfig, result: TrialResult) -> str:
    """Record ``result`` in Optuna; returns the final state name."""
    trial.set_user_attr("metrics", result.metrics)
    trial.set_user_attr("tags", result.tags)
    if result.state == "COMPLETE":
        try:
            values = [float(result.metrics[o.metric]) for o in exp.objectives]
        except KeyError as e:
            result.error = f"MeasurementError: objective {e.args[0]!r} missing from the trial's metrics"
        else:
            study.tell(trial, values)
            return "COMPLETE"
    trial.set_user_attr("fail_reason", result.error or "unknown")
    study.tell(trial, state=TrialState.FAIL)
    log.warning("trial %d failed: %s", trial.number, result.error)
    return "FAIL"


def run_study(exp: ExperimentConfig, space: SearchSpace, *, progress: bool = True, keep_files: bool = False) -> StudySummary:
    """Run (or continue) the study of ``exp`` until it has ``exp.n_trials`` finished trials.

    :func:`dse.study.preflight` checks addresses, data and hls4ml settings before anything
    is created (run directory, study, MLflow experiment). Each trial is an Optuna
    ``ask``, a Ray task in a fresh worker process (``max_calls=1``) with
    ``exp.ray.cpus_per_trial`` CPUs, and a ``tell``; as many run at once as the cluster has
    CPUs for (or ``ray.max_concurrent_trials``). A trial that raises, crashes its worker or
    runs past ``trial_timeout_s`` is recorded as FAIL with its reason and the study goes on.

    Returns:
        A :class:`StudySummary` with the front and where it is stored.

    Raises:
        StorageError, TrackingError, ClusterUnreachableError: see :func:`dse.study.preflight`.
        DatasetError: the data are unusable (before any trial).
        SearchSpaceError: the space offers a value hls4ml cannot implement (before any trial).
        ConfigError: the study exists with other objectives.
    """
    import ray

    t0 = time.time()
    splits = preflight(exp, space)
    run_dir = exp.resolved_run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    study = open_study(exp, make_sampler(exp.sampler, exp.seed))
    default_store = exp.mlflow.tracking_uri is None
    tracker = StudyTracker(
        exp.tracking_uri,
        exp.mlflow.experiment_name or exp.name,
        artifact_location=(run_dir / "mlartifacts").as_uri() if default_store else None,
    )
    parent = tracker.study_run(exp.name, exp.model_dump(mode="json"))
    study.set_user_attr("mlflow_parent_run_id", parent)
    study.set_user_attr("mlflow_tracking_uri", exp.tracking_uri)
    study.set_user_attr("experiment", exp.model_dump(mode="json"))

    counts = study_counts(study)
    to_run = max(exp.n_trials - counts.finished, 0)
    log.info("study %s: %d trials finished, %d to run", exp.name, counts.finished, to_run)
    bar = _Progress(progress, exp.n_trials, counts.finished)
    status = "FINISHED"
    try:
        with ray_session(exp.ray, run_dir):
            cpus = exp.ray.cpus_per_trial
            capacity = max(1, int(ray.cluster_resources().get("CPU", 1) // cpus))
            max_conc = min(exp.ray.max_concurrent_trials or capacity, capacity)
            remote = ray.remote(max_calls=1, num_cpus=cpus, max_retries=0)(_execute)
            splits_ref = ray.put(splits)
            pending: dict[Any, tuple[optuna.Trial, str, float]] = {}
            remeasurer = _FrontRemeasurer(study, exp, splits_ref, keep_files) if exp.resources.synthesize_front else None
            asked = 0
            while asked < to_run or pending or (remeasurer and remeasurer.pending):
                finished: list[str] = []
                asked_before = asked
                while asked < to_run and len(pending) < max_conc:
                    trial = study.ask()
                    params, fixed = space.suggest(trial)
                    run_id = tracker.trial_run(parent, exp.name, trial.number, trial.params, fixed)
                    trial.set_user_attr("mlflow_run_id", run_id)
                    spec = TrialSpec(
                        experiment=exp, params=params, number=trial.number, run_id=run_id,
                        work_dir=run_dir / "trials" / f"trial_{trial.number:05d}", num_threads=cpus, keep_files=keep_files,
                    )
                    pending[remote.remote(spec, splits_ref)] = (trial, run_id, time.time())
                    asked += 1
                waiting = list(pending) + (list(remeasurer.pending) if remeasurer else [])
                ready, _ = ray.wait(waiting, num_returns=1, timeout=5.0)
                for ref in ready:
                    if ref not in pending:
                        remeasurer.collect(ref)
                        continue
                    trial, run_id, _ = pending.pop(ref)
                    try:
                        result = ray.get(ref)
                    except Exception as e:  # worker crash, OOM kill, cancelled
                        result = TrialResult(trial.number, "FAIL", error=f"WorkerError: {type(e).__name__}: {e}"[:2000])
                    state = _tell(study, trial, exp, result)
                    tracker.finish_trial_run(run_id, state, result.error)
                    finished.append(_describe(trial.number, state, result, exp))
                now = time.time()
                for ref, (trial, run_id, started) in list(pending.items()):
                    if now - started > exp.trial_timeout_s:
                        ray.cancel(ref, force=True)
                        pending.pop(ref)
                        msg = f"TrialTimeout: ran past trial_timeout_s={exp.trial_timeout_s} s; raise it or shrink the trial"
                        _tell(study, trial, exp, TrialResult(trial.number, "FAIL", error=msg))
                        tracker.finish_trial_run(run_id, "FAIL", msg)
                        finished.append(f"trial {trial.number} FAIL {msg}")
                if finished or asked != asked_before:  # counts and front come from storage: read them on change only
                    c = study_counts(study)
                    bar.update(c.finished, c.failed, len(pending), len(study.best_trials) if c.complete else 0, finished)
                if remeasurer and finished:
                    remeasurer.submit_new_front_members()
            if remeasurer:
                s = remeasurer.finish()
                log.info("%s on the front: %d measured, %d cached, front %s", s.backend, len(s.launched), len(s.cached), s.front)
    except KeyboardInterrupt:
        status = "KILLED"
        for trial, run_id, _ in locals().get("pending", {}).values():
            _tell(study, trial, exp, TrialResult(trial.number, "FAIL", error="Interrupted: the driver was stopped"))
            tracker.finish_trial_run(run_id, "FAIL", "Interrupted: the driver was stopped")
        raise
    finally:
        bar.stop()
        summary = _finish(study, exp, tracker, parent, run_dir, status, t0)
    return summary


def _finish(study, exp, tracker: StudyTracker, parent: str, run_dir: Path, status: str, t0: float) -> StudySummary:
    """Tag the front, write its CSV to the parent run, end the parent run."""
    front = front_frame(study)
    csv = run_dir / "pareto_front.csv"
    front.to_csv(csv, index=False)
    run_ids = [t.user_attrs["mlflow_run_id"] for t in study.trials if "mlflow_run_id" in t.user_attrs and t.state == TrialState.COMPLETE]
    tracker.mark_pareto(set(front["mlflow_run_id"]) if not front.empty else set(), run_ids)
    counts = study_counts(study)
    tracker.log_study_artifact(
        parent, csv, {"n_complete": counts.complete, "n_failed": counts.failed, "front_size": len(front)}
    )
    tracker.end_study_run(parent, status)
    return StudySummary(
        exp.name, exp.storage_url, exp.tracking_uri, parent, csv, counts.complete, counts.failed,
        time.time() - t0, front.to_dict("records"),
    )
