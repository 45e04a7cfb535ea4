"""The study loop: Optuna ask/tell in Optuna storage, each trial a call to a warm worker actor or a Ray task in a fresh process.

:func:`run_study` checks and opens everything, then :class:`_StudyLoop` asks, dispatches
through a :class:`~dse.study._pool.TaskPool`, keeps heartbeats on its running trials, recovers
trials of a lost driver, shares the ``n_trials`` target with other drivers and tells results.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from dse._args import expect
from dse._code import this_code
from dse.config import ExperimentConfig, SearchSpace, TrialParams, enqueued_params, revalidate, sqlite_path, storage_file
from dse.data import dataset_record
from dse.config._secrets import redact_url
from dse.exceptions import (
    ConfigError, DiskFullError, DriverLostError, DriverTerminated, DseError, MeasurementError, SearchSpaceError, StorageUnavailableError, TrackingError, TrialInterruptedError, TrialTimeoutError,
    WorkerCodeError, WorkerLostError,
    disk_full_cause,
    disk_full_error,
)
from dse.report import StudyCounts, StudyProgress, failure_reasons, format_value, front_frame, study_counts
from dse.resources import backend_module_folders
from dse.store import StudyRecords, TrialRecord, harvested_trial, is_harvested, record_heartbeat, record_trial_params, record_trial_result, objective_values, record_trial_run, within_constraints
from dse.study._liveness import driver_is_dead, this_driver
from dse.study._pool import TaskPool
from dse.study._ray_session import cluster_address, ray_session, stop_leftover_ray, trial_resources
from dse.study._preflight import (claim_run_dir, nothing_to_run, preflight, stored_study_error, trial_shortfalls,
                                  warn_sampler_changed)
from dse.study._samplers import make_sampler
from dse.study._sqlite import create_mlflow_store, enable_wal, fold_write_ahead_logs
from dse.study._storage import journal_path, open_study
from dse.study._workers import WorkerPool
from dse.tracking import TRACKING_FAILED_TAG, StudyTracker, is_tracking_failure, server_problem
from dse.trial import TrialResult, TrialSpec, layer_sizes, resolve_reuse_factors
from dse.trial._csim import front_values, update_front
from dse.trial._runner import CODE_MISMATCH_TAG, DISK_FULL_TAG, _execute  # the Ray task body; a module global, so benchmarks can swap it

if TYPE_CHECKING:
    from dse.study._synthesize import SynthesisSummary

__all__ = ["StudySummary", "run_study"]

log = logging.getLogger(__name__)

#: The ``harvest`` tag of a trial whose ramp left nothing to harvest (``training.harvest_checkpoints`` on).
NO_CHECKPOINT = "HGQ2's ParetoFront kept no checkpoint besides the final epoch"

#: Seconds a stopping driver retries a storage write (SQLite's "database is locked" beside another driver), where a
#: running one retries for ``storage_retry_s``: Ctrl-C with the storage down does not wait a minute per trial.
STOPPING_RETRY_S = 2.0


def harvest_advice(exp: ExperimentConfig, space: SearchSpace) -> str:
    """Why a harvesting study kept no checkpoint, and the fix: a missing beta ramp, else too few epochs."""
    if "beta_end" not in space.parameters:
        return ("harvesting needs a beta ramp: add a `beta_end` parameter to the search space (as in "
                "search_spaces/ramps.yaml), so that beta grows over the training and the accuracy-EBOPs trade-off moves")
    return (f"the search space has a beta ramp (beta_end), so the training is likely too short for the trade-off to move: "
            f"raise training.epochs (now {exp.training.epochs}; the HGQ authors' ramps run for hundreds, "
            "experiments/long_ramp.yaml for 270), or widen beta_end")


@dataclass
class StudySummary:
    """What :func:`run_study` returns.

    Attributes:
        study_name: the Optuna study name.
        storage: Optuna storage URL, or with ``storage: journal`` the journal file's path (:func:`dse.study.load_study`
            opens either; ``optuna.load_study`` takes URLs only).
        tracking_uri: MLflow tracking URI.
        parent_run_id: the study's MLflow parent run.
        front_csv: local copy of the Pareto-front CSV (also an artifact of the parent run).
        n_complete, n_failed: trial counts at the end.
        wall_seconds: wall time of this call.
        front: the front as records (see :func:`dse.report.front_frame`).
        counts: trials per state at the end (feasible, harvested), as ``dse status`` counts them.
        nothing_to_run: the study already had ``n_trials`` evaluated trials and none running, so
            this call ran no trial (and started no Ray).
        failures: FAIL trials per reason type with the latest reason (:func:`dse.report.failure_reasons`).
        remeasured: what ``resources.synthesize_front`` measured in this call (``None`` when unset,
            or when the loop did not finish).
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
    failures: dict[str, tuple[int, str]] = field(default_factory=dict)
    counts: StudyCounts | None = None
    nothing_to_run: bool = False
    remeasured: "SynthesisSummary | None" = None


def _describe(number: int, state: str, result: TrialResult, exp: ExperimentConfig) -> str:
    """One line about a finished trial: its objectives, or why it failed."""
    retried = f" (retried: {result.tags['retried']})" if "retried" in result.tags else ""
    if state == "COMPLETE":
        vals = ", ".join(f"{o.metric}={format_value(result.metrics[o.metric])}" for o in exp.objectives)
        return f"trial {number} COMPLETE {vals} ({result.metrics.get('seconds_total', 0):.0f} s){retried}"
    return f"trial {number} FAIL {result.error}{retried}"


class _FrontRemeasurer:
    """``resources.synthesize_front``: measure each new front member with the precise backend while the study runs."""

    def __init__(self, study: optuna.Study, exp: ExperimentConfig, keep_files: bool):
        from dse.study._synthesize import Remeasurer

        self.rm = Remeasurer(study, exp, exp.resources.synthesize_front, keep_files=keep_files)
        self.study = study
        self.seen: set[int] = set()

    def submit_new_front_members(self, pool: TaskPool, splits_ref) -> None:
        new = [t for t in self.study.best_trials if t.number not in self.seen]
        self.seen.update(t.number for t in new)
        for t, key in self.rm.plan(new):
            pool.submit(self.rm.submit(t, splits_ref), "remeasure", (t.number, key))

    def collect(self, number: int, key: str, ref) -> None:
        self.rm.record(number, key, ref)

    def finish(self):
        return self.rm.finish()


def _tell(study: optuna.Study, trial: optuna.Trial, exp: ExperimentConfig, result: TrialResult) -> str:
    """Record ``result`` (metrics, tags, constraint values) and tell Optuna; returns the final state name."""
    if result.state == "COMPLETE":
        try:
            values = objective_values(exp.objectives, result.metrics)
        except MeasurementError as e:
            result.error = f"MeasurementError: {e}"
        else:
            record_trial_result(trial, result.metrics, result.tags, constraints=exp.constraints)
            study.tell(trial, values)
            return "COMPLETE"
    record_trial_result(trial, result.metrics, result.tags, fail_reason=result.error or "unknown")
    study.tell(trial, state=TrialState.FAIL)
    log.warning("trial %d failed: %s", trial.number, result.error)
    return "FAIL"


@contextmanager
def _store_lock(exp: ExperimentConfig, run_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``<run_dir>/.stores.lock`` while the stores are opened, if any is a local SQLite or journal file.

    Two drivers started together on a new study would otherwise both create the SQLite
    schemas, and MLflow's migrations fail on the second (``duplicate column name``). Servers
    (PostgreSQL, an MLflow server) serialize this themselves: no lock then.
    """
    import fcntl

    if not (exp.storage_url.startswith("sqlite") or journal_path(exp.storage_url) or exp.tracking_uri.startswith("sqlite")):
        yield
        return
    with open(run_dir / ".stores.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _durable(fn, *args, retry_s: float, what: str, setting: str = "storage_retry_s", **kwargs):
    """Call a storage operation, retrying a lost connection with exponential backoff for up to ``retry_s`` seconds.

    Retries only connection-level failures (``sqlalchemy.exc.OperationalError``, and Optuna's
    ``StorageInternalError`` that wraps them); a full disk is no outage and stops at once.

    Raises:
        StorageUnavailableError: still failing after ``retry_s`` seconds, or at once when the
            storage's disk is full.
    """
    import sqlalchemy.exc
    from optuna.exceptions import StorageInternalError

    deadline, delay = time.time() + retry_s, 0.5
    while True:
        try:
            return fn(*args, **kwargs)
        except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError, StorageInternalError) as e:
            if disk_full_cause(e) is not None:  # no connection to wait for: retrying only delays the stop
                text = f"{e} {e.__cause__ or ''}"
                raise StorageUnavailableError(
                    f"the Optuna storage could not write during {what}: its disk is full ({type(e).__name__}: "
                    f"{' '.join(text.split())[:200]}). Finished trials are kept; free space on the disk that holds it "
                    "(`df -h` of the run directory or the storage file's folder) and run `dse run` again"
                ) from e
            if time.time() + delay > deadline:
                # Optuna's StorageInternalError says only "An exception is raised during the commit ..."; the
                # database driver's error it wraps says why (the server shut down, the connection was refused)
                cause = e.__cause__ if isinstance(e, StorageInternalError) and e.__cause__ is not None else e
                raise StorageUnavailableError(
                    f"lost the Optuna storage during {what} for more than {setting}={retry_s:g} s: {type(cause).__name__}: "
                    f"{(str(cause).strip().splitlines() or [''])[0][:300]}. Finished trials are kept; run `dse run` again when "
                    "the storage is back (trials left RUNNING are recovered then)"
                ) from e
            log.warning("storage unavailable during %s (%s); retrying in %.1f s", what, type(e).__name__, delay)
            time.sleep(delay)
            delay = min(delay * 2, 8.0)


def _check_trial_fits(exp: ExperimentConfig, total: dict[str, float]) -> None:
    """One trial's CPUs, GPUs and memory must exist in the Ray cluster (Ray's ``cluster_resources()``: CPUs, GPUs, bytes).

    The preflight checked a local Ray's CPUs and GPUs and an upper bound of its memory
    (:func:`dse.study._preflight.trial_shortfalls`); this is the same check on what Ray offers.

    Raises:
        ConfigError: a local Ray lacks them, so no trial could ever start. On a cluster it is a
            warning: an autoscaler may still add such nodes.
    """
    from dse.exceptions import ConfigError

    have = {"CPU": total.get("CPU", 0), "GPU": total.get("GPU", 0), "memory": total.get("memory", 0)}
    short = trial_shortfalls(exp.ray, have, {}, "the Ray cluster")
    if not short:
        return
    if cluster_address(exp.ray) is None:
        raise ConfigError("; ".join(short) + "; no trial could ever start")
    log.warning("%s: trials wait until nodes with these resources join the cluster", "; ".join(short))


class _StudyLoop:
    """One driver's part of a study: ask, dispatch, heartbeat, recover, tell."""

    def __init__(self, study, exp, space, tracker, parent, splits, run_dir, keep_files, bar, experiment_version: int = 1):
        import uuid

        self.study, self.exp, self.space, self.tracker, self.parent = study, exp, space, tracker, parent
        self.splits, self.run_dir, self.keep_files, self.bar = splits, run_dir, keep_files, bar
        self.records = StudyRecords(study)
        self.sizes = layer_sizes(exp.model, splits.n_features, splits.n_classes)
        self.import_folders = backend_module_folders(exp.resources.backend_modules)  # for the workers' sys.path
        self.driver_id = uuid.uuid4().hex[:12]
        self.pool = TaskPool()
        self.workers: WorkerPool | None = None  # warm trial workers (ray.reuse_workers), made in run()
        self.max_conc: int | None = None  # the most trials run at once, set in run() from the cluster's CPUs
        self.capacity: int | None = None  # trials (or re-measurements) the cluster's CPUs hold at once, set in run()
        self.experiment_version = experiment_version  # tagged on each trial run
        self.launched: list[int] = []  # trials this driver handed to a worker (their folders are its own)
        self.recovered_here: list[int] = []  # trials of a dead driver of this machine that this one recovered
        self.taken_over: set[int] = set()  # trials of this driver recorded meanwhile by another (its recovery): not told here
        self.asking: tuple[optuna.Trial, str | None] | None = None  # asked, not yet in the pool
        self.unhandled: list = []  # finished tasks out of the pool, not yet recorded (:meth:`abandon` takes them)
        self.last_beat = self.last_recovery = 0.0
        self.directions = [o.direction for o in exp.objectives]
        self.front: list[tuple[float, ...]] = []  # feasible front known to this driver (hls4ml.csim: front, progress)
        self.read_front()
        self.counts, self.since = study_counts(study), [0, 0]
        self.others_running = 0  # as of the last room()
        self._said_no_checkpoint = False  # warned once that a trial's ramp left nothing to harvest
        self.tracking_lost = False  # MLflow failed: the driver stops, closing its trials in the Optuna storage only
        self.seeded = False  # the sampler is seeded by this driver's first trial number (seed_sampler)
        self.remeasured = None  # resources.synthesize_front's SynthesisSummary, once the loop finished

    # storage -------------------------------------------------------------
    def durable(self, fn, *args, what: str, stopping: bool = False, **kwargs):
        """:func:`_durable` for ``storage_retry_s``, or :data:`STOPPING_RETRY_S` at most for a driver that is ``stopping``."""
        if stopping:
            return _durable(fn, *args, retry_s=min(self.exp.storage_retry_s, STOPPING_RETRY_S), what=what,
                            setting="a stopping driver's retry", **kwargs)
        return _durable(fn, *args, retry_s=self.exp.storage_retry_s, what=what, **kwargs)

    def read_front(self) -> None:
        """Set :attr:`front` to the study's feasible front as the storage holds it (all drivers' trials)."""
        front: list[tuple[float, ...]] = []
        for t in self.durable(lambda: self.study.best_trials, what="reading the front"):
            front = update_front(front, t.values, self.directions)
        self.front = front

    def room(self) -> int:
        """Trials this driver may still start: ``n_trials`` minus finished and running ones (all drivers).

        Trials failed as ``DriverLostError`` were never evaluated (their parameters were
        re-enqueued), so they do not count as finished.
        """
        c = self.counts = self.durable(study_counts, self.study, what="counting trials")
        self.since = [0, 0]  # trials this driver finished (and failed) after these counts
        self.others_running = c.running - self.pool.count("trial")  # other drivers' trials (or a dead driver's)
        return self.exp.n_trials - c.evaluated - c.running

    # heartbeats and lost drivers ------------------------------------------------
    def heartbeat(self) -> None:
        """Stamp this driver's running trials, at most once per ``heartbeat_interval_s``."""
        now = time.time()
        if now - self.last_beat < self.exp.heartbeat_interval_s:
            return
        self.last_beat = now
        for trial, _run_id in self.pool.metas("trial"):
            try:
                self.durable(record_heartbeat, trial, self.driver_id, now, this_driver(), what="heartbeat")
            except UpdateFinishedTrialError:  # recovered by another driver that judged this one lost (finish_trial)
                if trial.number not in self.taken_over:
                    self.taken_over.add(trial.number)
                    log.warning("trial %d was failed as DriverLostError and re-enqueued by another driver, which judged this "
                                "one lost (no heartbeat for heartbeat_grace_s=%g s: a loop held up, a suspended machine, or "
                                "clocks apart); its result here will not be recorded", trial.number, self.exp.heartbeat_grace_s)

    def recover_lost(self, force: bool = False) -> list[str]:
        """Fail trials of drivers that stopped sending heartbeats (``DriverLost``), close their runs, re-enqueue them.

        Looks at most every ``heartbeat_grace_s / 2`` seconds, or every ``heartbeat_interval_s``
        while other drivers' trials are RUNNING (a driver on this machine that is gone is
        recovered at once, so a second driver picks up a killed driver's trials while it runs).
        """
        now = time.time()
        every = min(self.exp.heartbeat_interval_s, self.exp.heartbeat_grace_s / 2) if self.others_running > 0 else self.exp.heartbeat_grace_s / 2
        if not force and now - self.last_recovery < every:
            return []
        self.last_recovery = now
        lines = []
        stale = self.durable(self.records.stale_trials, self.exp.heartbeat_grace_s, now, exclude_driver=self.driver_id,
                             dead=driver_is_dead, what="recovery")
        for t in stale:
            beat = self.records.heartbeat_of(t)
            why = (f"its process {beat.get('pid')} on this machine is gone" if driver_is_dead(beat)
                   else f"it stopped sending heartbeats (none for > {self.exp.heartbeat_grace_s:g} s)")
            err = DriverLostError(f"the driver running trial {t.number} was lost: {why}; its parameters were re-enqueued")
            try:
                self.durable(record_trial_result, self.records.live_trial(t), {}, {"error_type": "DriverLostError"},
                             fail_reason=f"DriverLostError: {err}", what="recovery")
                self.durable(self.study.tell, t.number, state=TrialState.FAIL, what="recovery")
            except (UpdateFinishedTrialError, ValueError) as e:
                if not _finished_elsewhere(e):
                    raise
                # another live driver recovered it between the read and these writes (before: this driver's loop
                # stopped on the error and abandoned its own trials); that driver re-enqueued it
                log.info("trial %d: recovered by another driver meanwhile (%s)", t.number, e)
                continue
            run_id = TrialRecord.of(t).run_id
            if run_id:
                try:
                    self.tracker.finish_trial_run(run_id, "FAIL", f"DriverLostError: {err}")
                except Exception as e:  # the run may be gone; the Optuna record is what counts
                    log.warning("could not close MLflow run %s of lost trial %d: %s", run_id, t.number, e)
                if self.exp.training.harvest_checkpoints:
                    self.close_checkpoint_runs(t.number, _checkpoint_error(t.number, f"DriverLostError: {err}"))
            self.requeue(t.number, dict(t.params))
            if driver_is_dead(beat):  # its folder is on this machine, and no one else removes it (probe 32: kept for good)
                self.recovered_here.append(t.number)
            lines.append(f"trial {t.number} FAIL DriverLostError (driver lost); parameters re-enqueued")
            log.warning("trial %d: driver lost; failed and re-enqueued", t.number)
        return lines

    # trials --------------------------------------------------------------
    def launch(self, remote, splits_ref) -> None:
        exp = self.exp
        trial = self.durable(self.study.ask, what="ask")
        self.asking = (trial, None)
        if not self.seeded:
            self.seed_sampler(trial.number)
        try:
            params, pinned = self.draw(trial)
        except StorageUnavailableError:  # the storage, not the point (a DseError too): the driver stops, as when ask fails
            raise
        except (ValueError, DseError) as e:  # a point no trial can be built from (an enqueued or stored point; ValidationError is a ValueError): FAIL, go on
            why = " ".join(str(e).split())
            hint = ("; a point given to study.enqueue_trial is in Optuna's encoding of the space: a float with include_zero "
                    "at 0 is <name>_is_zero: True and no <name> (or list the point under the experiment's enqueue_trials, "
                    "which dse checks and encodes)") if _enqueued(trial) else ""
            err = SearchSpaceError(f"trial {trial.number}'s parameters {dict(trial.params)} make no valid design: {why[:500]}{hint}")
            self._progress([self.finish_trial(trial, None, TrialResult.failed(trial.number, err))])
            self.asking = None  # after it is told: a stop before then abandons it (abandon skips a trial told already)
            return
        if fixed := _enqueued(trial):
            _warn_enqueued_overrides(trial.number, fixed, pinned, self.space)
        self.durable(record_trial_params, trial, params, pinned, what="recording parameters")
        self.durable(record_heartbeat, trial, self.driver_id, time.time(), this_driver(), what="heartbeat")
        run_id = self.tracker.trial_run(self.parent, exp.name, trial.number, params, sorted(pinned), {
            "dse.max_concurrent_trials": self.max_conc, "dse.experiment_version": self.experiment_version})
        self.asking = (trial, run_id)
        self.durable(record_trial_run, trial, run_id, what="recording the run id")
        spec = TrialSpec(
            experiment=exp, params=params, number=trial.number, run_id=run_id,
            work_dir=_trial_folder(self.run_dir, trial.number), num_threads=exp.ray.cpus_per_trial,
            keep_files=self.keep_files, front=tuple(self.front) if exp.hls4ml.csim == "front" else None,
            import_folders=self.import_folders, code=this_code(),
        )
        if self.workers is not None:
            ref, actor = self.workers.submit(spec, splits_ref)
        else:
            ref, actor = remote.remote(spec, splits_ref), None
        self.pool.submit(ref, "trial", (trial, run_id), timeout_s=exp.trial_timeout_s, actor=actor)
        self.launched.append(trial.number)
        self.asking = None

    def draw(self, trial: optuna.Trial) -> tuple[TrialParams, dict[str, Any]]:
        """The trial's parameters from the search space, per-layer ReuseFactors resolved for the model's layers.

        Each ``suggest_*`` writes its draw to the storage, so a lost connection is retried as
        ``ask`` is (:meth:`durable`); a draw whose write failed is drawn again, written ones are kept.

        Returns:
            ``(params, pinned)`` as :meth:`dse.config.SearchSpace.suggest` gives them.

        Raises:
            ValueError, DseError: the point makes no valid design (an enqueued or stored point).
            StorageUnavailableError: the storage stayed unreachable past ``storage_retry_s``.
        """
        params, pinned = self.durable(self.space.suggest, trial, self.exp.sampler.name == "nsga2", what="sampling parameters")
        if params.learning_rate is None:  # recorded as trained (before: None in the trial's record and its MLflow params)
            params = params.model_copy(update={"learning_rate": self.exp.training.learning_rate})
        return resolve_reuse_factors(params, self.sizes, self.exp.hls4ml), pinned

    def seed_sampler(self, first: int) -> None:
        """Seed the sampler from ``seed`` and this driver's first trial's number, before it samples anything.

        Optuna samples lazily (at the first ``suggest``, after ``ask`` numbered the trial), so the
        trial's own draws already come from the new sampler. A new study's first driver keeps
        ``seed`` (trial 0), so a fresh run repeats exactly; a continued study, or a second driver
        started beside the first (both found 0 trials), samples past the draws already made
        instead of replaying them (NSGA-II's first generation, TPE's startup trials, random).
        """
        self.seeded = True
        if first:
            self.study.sampler = make_sampler(self.exp.sampler, self.exp.sampler_seed_for(first))
            log.info("study %s: this driver's first trial is %d: sampler seeded from (seed, %d) (ExperimentConfig.sampler_seed_for)",
                     self.exp.name, first, first)

    def trial_result(self, done) -> TrialResult:
        """The result of a finished trial task; returns its warm worker to :attr:`workers` (or kills it).

        A trial that timed out or lost its worker has no result; where its folder is on this
        machine, the step it was in is added to its reason and the seconds of the steps it finished
        are its ``seconds_<step>`` metrics (:func:`dse.trial._progress.read_step_progress`).
        """
        trial, run_id = done.meta
        if done.error is not None:
            if done.actor is not None:
                self.workers.discard(done.actor)
            result = TrialResult.failed(trial.number, done.error)
            if isinstance(done.error, (TrialTimeoutError, WorkerLostError)) and run_id:
                from dse.trial._progress import read_step_progress

                if (progress := read_step_progress(_trial_folder(self.run_dir, trial.number), run_id)) is not None:
                    result.error = f"{result.error[:1800]} [{progress.describe()}]"
                    # the trial's own steps (a checkpoint's carry " of the checkpoint of epoch N": in the reason only)
                    result.metrics.update({f"seconds_{k}": v for k, v in progress.finished.items() if " " not in k})
                    result.tags["failed_step"] = progress.step
            return result
        if done.actor is None:
            return done.result
        result, pid, rss = done.result
        # an idle worker would hold CPUs that a waiting re-measurement needs
        self.workers.release(done.actor, pid, rss, keep=not self.pool.count("remeasure"))
        return result

    def finish_trial(self, trial: optuna.Trial, run_id: str | None, result: TrialResult, retry: bool = True) -> str:
        """Tell Optuna ``result``, end the trial's MLflow run, record its harvested checkpoints; returns the progress line.

        Args:
            retry: retry the storage write for ``storage_retry_s`` (:meth:`durable`), or for
                :data:`STOPPING_RETRY_S` at most (a driver that is stopping, :meth:`abandon`).
        """
        measured, failed = self.sort_harvested(trial.number, result, trial.user_attrs.get("params"))
        # a driver that is stopping retries briefly (SQLite's "database is locked" beside another driver), not for
        # storage_retry_s per trial
        try:
            state = self.durable(_tell, self.study, trial, self.exp, result, what="tell", stopping=not retry)
        except (UpdateFinishedTrialError, ValueError) as e:  # the review of stop 45: this loop stopped, abandoning every
            # trial it ran; Optuna says "Cannot tell a FAIL trial." where the other tell came between attributes and tell
            if not _finished_elsewhere(e):
                raise
            self.taken_over.add(trial.number)  # not told here: abandon and not_evaluated re-enqueue nothing of it
            try:
                stored = self.records.trial(trial.number)
            except Exception as e:  # the storage answered the tell; a read failing now is told as the tell's error was
                raise StorageUnavailableError(f"trial {trial.number} was recorded meanwhile and cannot be read back: {e}") from e
            if stored.state == "FAIL" and (stored.fail_reason or "").startswith("DriverLostError"):
                return self.taken_over_result(trial, run_id, result)
            log.warning("trial %d was recorded already (%s), so this result (%s) is dropped", trial.number, stored.state,
                        result.state)  # not another driver's recovery: its MLflow run is left as it is
            return f"trial {trial.number}: recorded already ({stored.state}); this result not recorded"
        self.since[0] += 1
        self.since[1] += state == "FAIL"
        if state == "COMPLETE":
            self.join_front(result.metrics)
        lost_logging = result.tags.get("logging_error")
        if lost_logging:  # the worker's MLflow calls failed: its run may lack metrics, which Optuna keeps
            log.warning("trial %d: its MLflow run is incomplete (the worker's logging failed: %s); the Optuna storage "
                        "holds its results", trial.number, lost_logging)
        if run_id and not self.tracking_lost:
            tagged = None if lost_logging else result.tags.get("state")  # what the worker wrote to the run
            feasible = within_constraints(self.exp.constraints, result.metrics) if state == "COMPLETE" and self.exp.constraints else None
            if tagged == state and result.tags.get("feasible") == {True: "true", False: "false"}.get(feasible):
                feasible = None  # the worker tagged the same verdict with its results: the run's end is one MLflow call
            tags = {"logging_error": lost_logging} if lost_logging else {}
            if "harvest" in result.tags:  # set here (sort_harvested), after the worker's last write to the run
                tags["harvest"] = result.tags["harvest"]
            if "failed_step" in result.tags:  # a timed-out trial's or lost worker's step (trial_result)
                tags["failed_step"] = result.tags["failed_step"]
            # a trial the driver failed (interrupted, timed out, its worker lost: no result, so no `state` tag here)
            # after its worker logged a COMPLETE outcome holds that outcome's `feasible` verdict: deleted too
            stale_verdict = state != "COMPLETE" and not lost_logging and (
                "feasible" in result.tags or bool(self.exp.constraints) and "state" not in result.tags)
            relogged = True
            if lost_logging and state == "COMPLETE":  # the figures the worker could not log, from its result (before,
                # only a run left RUNNING got them; MLflow answering the driver, it ended
                # FINISHED with none). Logged again where some batches landed: the same values, at step 0
                from dse.tracking import TrialRunLogger

                try:
                    TrialRunLogger(self.exp.tracking_uri, run_id).log_results(result.metrics, {
                        k: v for k, v in result.tags.items() if k not in ("state", "feasible", "logging_error")})
                    tags["logging_error"] = f"{lost_logging} (its metrics and tags were logged by the driver)"[:5000]
                except Exception as e:  # left RUNNING: the next driver's _close_finished_runs restores it from Optuna
                    relogged = False
                    log.warning("trial %d: could not log its results to its MLflow run either (%s); it stays RUNNING "
                                "until the next `dse run` restores them from the Optuna storage", trial.number, e)
            if relogged:
                self.tracker.finish_trial_run(run_id, state, result.error, tagged=tagged, feasible=feasible,
                                              tags=tags or None, untag=("feasible",) if stale_verdict else ())
            if self.exp.training.harvest_checkpoints:
                # a FAIL trial's checkpoints were never recorded; a COMPLETE one's runs from an attempt that Ray
                # retried (its worker lost mid-harvest) are not its recorded checkpoints, whatever the retry harvested
                text = (_checkpoint_error(trial.number, result.error or "TrialInterruptedError: the trial failed")
                        if state == "FAIL" else
                        f"WorkerLostError: an attempt of trial {trial.number} that Ray retried (its worker was lost) made "
                        "this checkpoint; the retry's checkpoints are the trial's")
                self.close_checkpoint_runs(trial.number, text, keep={h.run_id for h in result.harvested if h.run_id})
        line = _describe(trial.number, state, result, self.exp)
        if result.harvested:
            for h, values in measured:
                frozen = harvested_trial(trial, h.epoch, values, h.metrics, h.tags, h.run_id, self.exp.constraints)
                self.durable(self.study.add_trial, frozen, what="adding a harvested checkpoint")
                self.join_front(h.metrics)
            self.tag_harvested_runs({h.run_id: h.metrics for h, _ in measured if h.run_id})
            line += f" (+{len(measured)} harvested checkpoint{'' if len(measured) == 1 else 's'}" + (f", {len(failed)} failed" if failed else "") + ")"
        elif result.tags.get("harvest") == NO_CHECKPOINT:
            line += " (no checkpoint to harvest)"
        return line

    def taken_over_result(self, trial: optuna.Trial, run_id: str | None, result: TrialResult) -> str:
        """Drop the result of a trial another driver failed and re-enqueued meanwhile (it judged this driver lost); returns the progress line.

        The Optuna record stays the other driver's (FAIL ``DriverLostError``; it runs the parameters
        again); the trial's MLflow run, which this driver's worker went on logging into, and its
        checkpoint runs end FAILED saying so, so no run reads as a result the study does not hold.
        """
        text = (f"DriverLostError: another driver judged this trial's driver lost (no heartbeat for heartbeat_grace_s="
                f"{self.exp.heartbeat_grace_s:g} s), failed it and re-enqueued its parameters while it ran; this result "
                f"({result.state}) was not recorded")
        log.warning("trial %d: %s", trial.number, text.split(": ", 1)[1])
        if run_id and not self.tracking_lost:
            try:
                self.tracker.finish_trial_run(run_id, "FAIL", text)
                if self.exp.training.harvest_checkpoints:
                    self.close_checkpoint_runs(trial.number, _checkpoint_error(trial.number, text))
            except Exception as e:  # the Optuna record is what counts
                log.warning("could not close MLflow run %s of trial %d: %s", run_id, trial.number, e)
        return f"trial {trial.number}: recovered by another driver meanwhile; this driver's result not recorded"

    def close_checkpoint_runs(self, number: int, error: str, keep: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        """Close the checkpoint runs of trial ``number`` that did not become trials, but for ``keep`` (those recorded):
        those a failed trial's worker made before it stopped (interrupted, timed out, lost), or an attempt Ray retried.
        FAIL, tagged ``error`` (``"<Type>: <why>"``, e.g. :func:`_checkpoint_error`; :meth:`StudyTracker.close_checkpoint_runs`).

        Before, the one being measured stayed RUNNING for good, and those measured before read as completed trials
        that Optuna does not hold. A failure to close them is logged; the trial's own record is what counts.
        """
        try:
            closed = self.tracker.close_checkpoint_runs(self.exp.name, number, error, keep)
        except Exception as e:  # the MLflow side only; a later `dse run` closes those still RUNNING (_close_finished_runs)
            log.warning("trial %d: could not close its harvested checkpoints' MLflow runs: %s", number, e)
            return
        if closed:
            log.info("trial %d: closed %d MLflow run(s) of its harvested checkpoints as FAIL", number, len(closed))

    def tag_harvested_runs(self, run_metrics: dict[str, dict[str, float]]) -> None:
        """Tag each harvested checkpoint's MLflow run ``trial_number``, as every trial's run is, and
        ``feasible`` in a constrained study (the verdict Optuna was told).

        Optuna numbers a harvested trial only when ``add_trial`` stores it, after its worker made
        and ended the run: the number is read back from the stored trial recording that run.
        Nothing is written once MLflow was lost (:attr:`tracking_lost`).

        Args:
            run_metrics: each checkpoint's MLflow run id -> its measured metrics.
        """
        run_ids = list(run_metrics)
        if not run_ids or self.tracking_lost:
            return
        trials = self.durable(self.study.get_trials, deepcopy=False, states=(TrialState.COMPLETE,), what="reading harvested trials")
        numbers = {r.run_id: r.number for r in map(TrialRecord.of, filter(is_harvested, trials)) if r.run_id in run_ids}
        for run_id in run_ids:
            if run_id in numbers:
                tags = {"trial_number": str(numbers[run_id])}
                if self.exp.constraints:
                    tags["feasible"] = "true" if within_constraints(self.exp.constraints, run_metrics[run_id]) else "false"
                self.tracker.tag_run(run_id, tags)

    def join_front(self, metrics: dict[str, float]) -> None:
        """Add a measured record to the feasible front this driver tracks, if it is feasible."""
        values = front_values(self.exp, metrics)
        if values is not None:
            self.front = update_front(self.front, values, self.directions)

    def sort_harvested(self, number: int, result: TrialResult, params: dict | None = None) -> tuple[list, list[str]]:
        """Split trial ``number``'s harvested checkpoints into (checkpoint, objective values) to add and failure reasons.

        Tags the trial ``harvest`` with the counts and the first reason (before ``tell``: a told
        trial cannot change) and logs each failure. ``params``: the trial's recorded parameters, to tell a trial that
        had no beta ramp (nothing to harvest, as a rule may decide) from one whose ramp was too short.
        """
        measured, failed = [], []
        for h in result.harvested:
            if h.state != "COMPLETE":
                failed.append(f"epoch {h.epoch}: {h.error}")
                continue
            try:
                measured.append((h, objective_values(self.exp.objectives, h.metrics)))
            except MeasurementError as e:
                failed.append(f"epoch {h.epoch}: {e}")
        for f in failed:
            log.warning("trial %d: harvested checkpoint failed (%s)", number, f)
        if result.harvested:
            result.tags["harvest"] = f"{len(measured)} checkpoints measured, {len(failed)} failed" + (f" ({failed[0]})"[:500] if failed else "")
        elif self.exp.training.harvest_checkpoints and result.state == "COMPLETE":
            result.tags["harvest"] = NO_CHECKPOINT
            try:
                p = TrialParams.model_validate(params) if params else None
            except ValueError:
                p = None
            if p is not None and p.beta_end is None:  # a Resource trial (beta 0 -> 0 is recorded constant)
                log.info("trial %d kept no checkpoint: it had no beta ramp (beta %g throughout)", number, p.beta)
            elif not self._said_no_checkpoint:
                self._said_no_checkpoint = True
                log.warning("trial %d: harvest_checkpoints is %d, but %s; %s", number,
                            self.exp.training.harvest_checkpoints, NO_CHECKPOINT, harvest_advice(self.exp, self.space))
        return measured, failed

    def check_worker_tracking(self, trial: optuna.Trial, run_id: str | None, result: TrialResult) -> None:
        """A trial failed because its worker's MLflow calls failed: if the MLflow server does not answer now, the
        design was never evaluated, so the trial is failed as :class:`TrialInterruptedError` (not counted towards
        ``n_trials``), its parameters re-enqueued, and the study stops (:class:`_WorkerLostTracking`).

        A server that answers (a passing hiccup) or a local store leaves the trial the FAIL it is.
        """
        problem = server_problem(self.exp.tracking_uri)
        if problem is None:
            return
        self.tracking_lost = True  # every further MLflow call would wait out its retries again
        err = TrialInterruptedError(f"trial {trial.number} was not evaluated: its worker lost MLflow tracking "
                                    f"({' '.join(str(result.error).split())[:300]}); its parameters were re-enqueued")
        self.not_evaluated(trial, run_id, err)
        raise _WorkerLostTracking(f"the server does not answer ({problem}), and trial {trial.number}'s worker failed on it")

    def stop_on_full_disk(self, trial: optuna.Trial, run_id: str | None, result: TrialResult) -> None:
        """A trial failed because a disk it wrote to was full (its work folder, the MLflow store): the design was never
        evaluated, so the trial is failed as :class:`TrialInterruptedError` (not counted towards ``n_trials``), its
        parameters re-enqueued, and the study stops, for every later trial would fail the same way.

        Before 2026-12-06 each trial was told FAIL in turn and the study went through its ``n_trials`` that way.

        Raises:
            DiskFullError: always (the other running trials are re-enqueued by the study's stop).
        """
        reason = " ".join(str(result.error).split())[:300]
        where = result.tags.get(DISK_FULL_TAG, "")
        on = f" ({where})" if where and where != "true" else ""
        err = TrialInterruptedError(f"trial {trial.number} was not evaluated: a disk it wrote to{on} is full ({reason}); "
                                    "its parameters were re-enqueued")
        params = dict(trial.params)
        told = True
        try:  # tell first: a design is queued again only once Optuna holds this trial as not evaluated
            self.finish_trial(trial, run_id, TrialResult.failed(trial.number, err))
        except Exception as e:
            if disk_full_cause(e) is None:
                raise
            told = is_tracking_failure(e)  # MLflow's store is full (the tell came first), else Optuna's: recovery re-runs it
            self.tracking_lost = self.tracking_lost or told
            log.warning("trial %d: could not be closed on the full disk: %s", trial.number, e)
        if told:
            self.requeue(trial.number, params)
        raise DiskFullError(f"a disk is full{on}: trial {trial.number} failed on it ({reason}). Finished trials are kept in the "
                            "Optuna storage, and trials that were running are re-enqueued (where the storage's own disk is the full one, the "
                            "next `dse run` recovers them); free space on that disk (`df -h` of "
                            f"{where if on else 'the run directory'}) and run `dse run` again")

    def stop_on_other_code(self, trial: optuna.Trial, run_id: str | None, result: TrialResult) -> None:
        """A trial's worker imported other ``dse`` code than this driver's (:func:`dse._code.check_same_code`, before
        it trained): the trial is failed as :class:`TrialInterruptedError` (not evaluated, not counted towards
        ``n_trials``), its parameters re-enqueued, and the study stops, for every later trial would run that code too.

        Before (probe 40), a driver started in a folder holding a ``dse`` package ran the installed ``dse`` while its
        workers trained with the folder's, and the study recorded the driver's version.

        Raises:
            WorkerCodeError: always, with the worker's message (both folders, the cause and the fix).
        """
        reason = " ".join(str(result.error).split())
        err = TrialInterruptedError(f"trial {trial.number} was not evaluated: its worker imported other dse code than "
                                    "the driver's; its parameters were re-enqueued")
        self.not_evaluated(trial, run_id, err)
        raise WorkerCodeError(reason.removeprefix("WorkerCodeError: ") + ". Finished trials are kept; run `dse run` "
                              "again once the driver and its workers import the same dse")

    def not_evaluated(self, trial: optuna.Trial, run_id: str | None, err: Exception) -> None:
        """Tell ``trial`` as failed with ``err`` (a :class:`TrialInterruptedError`: not evaluated, not counted towards
        ``n_trials``), then enqueue its parameters again."""
        params = dict(trial.params)
        self.finish_trial(trial, run_id, TrialResult.failed(trial.number, err))
        if trial.number not in self.taken_over:  # recorded meanwhile by another driver, which re-enqueued it
            self.requeue(trial.number, params)

    def requeue(self, number: int, params: dict[str, Any], retry: bool = True) -> bool:
        """Enqueue a trial's ``params`` again as a new WAITING trial, marked ``requeued_from=number``.

        Args:
            number: the trial that was not evaluated (failed as interrupted or lost).
            params: its parameters; empty (it failed before sampling) enqueues nothing.
            retry: retry the storage write for ``storage_retry_s`` (:meth:`durable`), or for :data:`STOPPING_RETRY_S` at
                most (a driver that is stopping).

        Returns:
            Whether a trial was enqueued.
        """
        if not params:
            return False
        kwargs = {"user_attrs": {"requeued_from": number}, "skip_if_exists": False}
        self.durable(self.study.enqueue_trial, params, what="re-enqueue", stopping=not retry, **kwargs)
        return True

    def abandon(self, why: str) -> list[int]:
        """Fail every trial of this driver as :class:`TrialInterruptedError` and re-enqueue its parameters (the loop is stopping).

        Such a trial was never evaluated, so, as a lost driver's, it does not count towards
        ``n_trials`` and the next ``dse run`` evaluates its parameters again.

        Args:
            why: what stopped the driver ("Ctrl-C", "SIGTERM", or the error), for the trials' reason.

        Returns:
            The numbers of the trials re-enqueued.
        """
        metas = [(meta, "ran") for meta in self.pool.metas("trial")]  # not the re-measurements': (number, key)
        self.pool.cancel_all()
        if self.asking is not None:
            metas.append((self.asking, "ran"))
        # results that came back with the one whose handling stopped the loop, not yet recorded (before: left RUNNING)
        metas += [(done.meta, "came back") for done in self.unhandled if done.kind == "trial"]
        self.unhandled = []
        requeued = []
        try:  # a trial told already (the stop came while its result was recorded after the tell) is left as told
            running = {t.number for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
        except Exception as e:  # the storage is gone: each tell below fails and says so
            log.debug("abandoning without the study's states: %s", e)
            running = None
        for (trial, run_id), how in metas:
            if running is not None and trial.number not in running:
                log.info("trial %d was recorded before the driver stopped%s: left as recorded", trial.number,
                         " (by another driver's recovery)" if trial.number in self.taken_over else "")
                continue
            err = TrialInterruptedError(
                f"the driver stopped ({why}) while trial {trial.number} ran; its parameters were re-enqueued" if how == "ran" else
                f"the driver stopped ({why}) as trial {trial.number}'s result came back, before recording it; its parameters "
                "were re-enqueued")
            finished = False
            try:
                params = dict(trial.params)
                self.finish_trial(trial, run_id, TrialResult.failed(trial.number, err), retry=False)
                finished = True
                if trial.number in self.taken_over:  # recorded already, not told here (finish_trial): no second re-enqueue
                    continue
                if self.requeue(trial.number, params, retry=False):  # a stopping driver does not wait out storage_retry_s
                    requeued.append(trial.number)
            except Exception as inner:  # storage gone too: a later run recovers it as DriverLost
                if finished:  # told, not re-enqueued: no later run evaluates these parameters (the review: "could not
                    # close", of a trial that was closed)
                    log.error("trial %d was failed as interrupted, but its parameters could not be re-enqueued (%s): no "
                              "later run evaluates them unless listed under the experiment's enqueue_trials: %s",
                              trial.number, _root_text(inner), params)
                else:
                    log.error("could not close trial %d: %s", trial.number, _root_text(inner))
                # its MLflow run need not wait for that (left RUNNING); not where finish_trial closed it
                # already (the review: a failed re-enqueue then blamed the storage for the close)
                if run_id and not finished and not self.tracking_lost and not _lost_tracking(inner):
                    try:
                        self.tracker.finish_trial_run(run_id, "FAIL", f"TrialInterruptedError: {err} (the Optuna storage "
                                                                      f"could not record it: {_root_text(inner)})")
                    except Exception as mlflow_error:
                        log.error("could not close trial %d's MLflow run: %s", trial.number, mlflow_error)
        return requeued

    def run(self) -> None:
        import ray

        exp = self.exp
        cpus = exp.ray.cpus_per_trial
        total = ray.cluster_resources()
        _check_trial_fits(exp, total)
        capacity = self.capacity = max(1, int(total.get("CPU", 1) // cpus))
        max_conc = self.max_conc = min(exp.ray.max_concurrent_trials or capacity, capacity)
        if exp.ray.reuse_workers:
            self.workers, remote = WorkerPool(_execute, trial_resources(exp.ray), exp.ray.max_retries), None
        else:  # a fresh worker process per trial (Ray max_calls=1)
            remote = ray.remote(max_calls=1, max_retries=exp.ray.max_retries, **trial_resources(exp.ray))(_execute)
        try:
            self._loop(remote, max_conc)
        finally:
            if self.workers is not None:
                log.info("warm workers started: %d", self.workers.started)
                self.pool.flag_actor_calls()  # calls still running (Ctrl-C, SIGTERM, an error) are not to be retried
                self.workers.shutdown()

    def slot_free(self, max_conc: int) -> bool:
        """Whether a trial may be dispatched now.

        Fewer than ``max_conc`` trials of this driver run, and its trials and ``synthesize_front``
        re-measurements (which take a trial's CPUs) hold fewer than :attr:`capacity`, the cluster's
        trial slots. A trial dispatched to a full cluster waited in Ray's queue while its
        ``trial_timeout_s`` clock ran (the review of stop 45: behind a Yosys re-measurement, it could
        time out without having run, and count towards ``n_trials``).
        """
        trials = self.pool.count("trial")
        return trials < max_conc and trials + self.pool.count("remeasure") < (self.capacity or max_conc)

    def _loop(self, remote, max_conc: int) -> None:
        import ray

        exp = self.exp
        splits_ref = ray.put(self.splits)
        remeasurer = _FrontRemeasurer(self.study, exp, self.keep_files) if exp.resources.synthesize_front else None
        first = self.recover_lost(force=True)
        if first:
            self._progress(first)
        others = self.durable(study_counts, self.study, what="counting trials").running
        if others:
            running = self.durable(self.study.get_trials, deepcopy=False, states=(TrialState.RUNNING,), what="counting trials")
            unchecked = sum(1 for t in running if (beat := self.records.heartbeat_of(t)) and "pid" not in beat)
            log.warning(
                "%d trial(s) of this study are RUNNING under another driver that is alive or on another machine%s; they count "
                "towards n_trials=%d. If that driver is gone, its trials are failed as DriverLostError and re-run once they have "
                "had no heartbeat for heartbeat_grace_s=%g s (run `dse run` again then)",
                others, (f" ({unchecked} of them stamped by an earlier dse, which did not record its process, so whether its "
                         "driver still runs cannot be checked)" if unchecked else ""),
                exp.n_trials, exp.heartbeat_grace_s,
            )
        while True:
            lines = self.recover_lost()
            launched = False
            while self.slot_free(max_conc) and self.room() > 0:
                self.launch(remote, splits_ref)
                launched = True
            if self.workers is not None and self.pool.count("trial") < max_conc:
                self.workers.trim()  # no room for another trial now: idle workers would only hold CPUs
            if not self.pool.count("trial") and not self.pool.count("remeasure"):
                recovered = self.recover_lost(force=True) if self.others_running > 0 else []
                if not recovered:
                    break
                self._progress(recovered)  # a dead driver's trials, re-enqueued: this driver runs them
                continue
            self.heartbeat()  # launch() stamped the new trials; the others are refreshed every heartbeat_interval_s
            self.unhandled = self.pool.wait(timeout_s=min(5.0, exp.heartbeat_interval_s))
            while self.unhandled:  # what is left when one raises is abandoned with the running trials
                done = self.unhandled[0]  # popped once told: Ctrl-C while it is recorded abandons it too (the review:
                # popped first, it was left RUNNING, and the parent run with it)
                if done.kind == "remeasure":
                    self.unhandled.pop(0)
                    remeasurer.collect(*done.meta, done.ref)
                    continue
                trial, run_id = done.meta
                result = self.trial_result(done)
                if result.tags.get(TRACKING_FAILED_TAG):
                    self.check_worker_tracking(trial, run_id, result)
                if result.tags.get(DISK_FULL_TAG):
                    self.stop_on_full_disk(trial, run_id, result)
                if result.tags.get(CODE_MISMATCH_TAG):
                    self.stop_on_other_code(trial, run_id, result)
                lines.append(self.finish_trial(trial, run_id, result))
                self.unhandled.pop(0)
            if lines or launched:
                self._progress(lines)
            if remeasurer and lines:
                remeasurer.submit_new_front_members(self.pool, splits_ref)
        if remeasurer:
            self.remeasured = remeasurer.finish()

    def _progress(self, lines: list[str]) -> None:
        # counts as of the last room() plus what this driver finished since; the front as this driver
        # knows it (tracked in finish_trial): no full read of the study per finished trial while this driver runs
        # alone (beside another driver's running trials, two reads: below)
        # (trials failed and re-enqueued as not evaluated count neither as done nor as failed)
        if self.others_running > 0:  # another driver's trials run too: the study's own counts and front, read now
            self.room()  # (probe 36: each driver printed its own view, "4/6 done, running 0" with all 6 complete)
            self.read_front()
        c = self.counts
        running = self.pool.count("trial") + max(self.others_running, 0)
        self.bar.update(c.evaluated + self.since[0], c.failed - c.interrupted + self.since[1], running,
                        len(self.front), lines)


_TERMINATED = threading.Event()  # set by the SIGTERM handler: the KeyboardInterrupt it raised was a SIGTERM


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """While inside, SIGTERM stops the study as Ctrl-C does (main thread only: signals are the main thread's).

    The handler raises ``KeyboardInterrupt`` (the one exception Ray's blocking calls pass on
    from a signal handler; another one inside ``ray.wait`` surfaces as a ``SystemError``) and
    sets :data:`_TERMINATED`, so :func:`run_study` raises :class:`DriverTerminated` instead.
    Ray's ``ray.init`` sets its own handler (``sys.exit(15)``), and its core worker a C++ one
    that aborts the process; :func:`_on_sigterm_raise` is called again after ``ray.init``. The
    handler from before is restored on the way out.
    """
    _TERMINATED.clear()
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.getsignal(signal.SIGTERM)
    _on_sigterm_raise()
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def _on_sigterm_raise() -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_terminated)


@contextmanager
def _sigterm_deferred() -> Iterator[None]:
    """Hold a SIGTERM that arrives inside (the study's wrap-up: its summary, front CSV and parent run's end, seconds)
    until the block ends, then stop as SIGTERM does (:data:`_TERMINATED`, ``KeyboardInterrupt``).

    Ray's shutdown leaves SIGTERM to the default action, so before, a SIGTERM there killed the driver without a word
    and left the MLflow parent run RUNNING and no ``pareto_front.csv``. A second SIGTERM stops at once. An
    error raised inside propagates as it is (with :data:`_TERMINATED` set, so a ``KeyboardInterrupt`` among them reads
    as SIGTERM). Main thread only.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    before = signal.getsignal(signal.SIGTERM)

    def hold(signum, frame) -> None:
        if held:  # a second SIGTERM: the supervisor insists (its grace period may end in SIGKILL): stop now
            _raise_terminated(signum, frame)
        held.append(signum)

    signal.signal(signal.SIGTERM, hold)
    try:
        yield
    except BaseException:
        if held:  # the error in flight wins (a full disk, a lost MLflow), but a KeyboardInterrupt reads as SIGTERM
            _TERMINATED.set()
        raise
    finally:
        signal.signal(signal.SIGTERM, before if before is not None else signal.SIG_DFL)
    if held:
        log.warning("SIGTERM while the study's summary was written: written first, now stopping")
        _raise_terminated(signal.SIGTERM, None)


def _raise_terminated(signum, frame) -> None:
    _TERMINATED.set()
    raise KeyboardInterrupt("SIGTERM")


def run_study(
    exp: ExperimentConfig, space: SearchSpace, *, progress: bool = True, keep_files: bool = False, allow_changed: bool = False
) -> StudySummary:
    """Run (or continue) the study of ``exp`` until it has ``exp.n_trials`` finished trials.

    :func:`dse.study.preflight` checks addresses, data and hls4ml settings before anything
    is created (run directory, study, MLflow experiment). The MLflow side (store, experiment,
    parent run) then opens in a thread while Ray starts; a study that already has ``n_trials``
    evaluated trials and nothing running starts no Ray. Each trial is an Optuna
    ``ask``, a Ray task (with ``ray.reuse_workers``, a call to a warm worker actor that runs
    trial after trial until its memory has grown by :data:`dse.study._workers.WORKER_RSS_GROWTH`;
    else a task in a fresh worker process) with
    ``exp.ray.cpus_per_trial`` CPUs, and a ``tell``; as many run at once as the cluster has
    CPUs for (or ``ray.max_concurrent_trials``). A trial that raises or runs past
    ``trial_timeout_s`` is recorded as FAIL with its reason and the study goes on; a trial
    whose worker dies is retried ``ray.max_retries`` times in a fresh worker (logging into the
    same MLflow run), then FAIL with ``WorkerLostError``.

    The points in ``exp.enqueue_trials`` are enqueued (Optuna's ``enqueue_trial``) when the
    study is opened, unless a trial already has those values, so they are the next trials asked.

    Each trial's resolved parameters (per-layer ReuseFactors included) are recorded before
    it starts (:func:`dse.store.record_trial_params`); with ``exp.constraints``, each
    completed trial's constraint values go to Optuna, so only feasible trials reach the front.

    Several drivers may run the same study (same storage): each counts finished plus running
    trials in storage before each ask, so together they stop at ``n_trials`` (overshooting
    by at most one trial per driver). The driver stamps a heartbeat on its running trials
    every ``heartbeat_interval_s``; trials left RUNNING by a driver silent for more than
    ``heartbeat_grace_s`` (killed, lost its node) are told FAIL with ``DriverLostError``,
    their MLflow runs closed FAILED, and their parameters re-enqueued, at start and while
    running. A lost storage connection is retried for ``storage_retry_s``. Ctrl-C, SIGTERM
    (raised as :class:`~dse.exceptions.DriverTerminated`) or any exception inside the loop fails
    every pending trial as :class:`~dse.exceptions.TrialInterruptedError` and re-enqueues its
    parameters (not counted towards ``n_trials``: the next ``dse run`` evaluates them), closes the
    MLflow parent run as KILLED (Ctrl-C, SIGTERM) or FAILED with the reason, and is raised again.

    ``exp`` and ``space`` are validated again first (:func:`dse.config.revalidate`): a config
    changed with pydantic's ``model_copy(update=...)`` was not. A Ray this process already
    initialized is used as it is and left running (:func:`dse.study._ray_session.ray_session`);
    otherwise a local one is started (or ``ray.address`` joined) and shut down at the end.

    Args:
        exp: the experiment (:func:`dse.config.load_experiment`).
        space: its search space.
        progress: show a progress bar on stderr (rich) while trials run.
        keep_files: keep each trial's hls4ml project and saved model in
            ``<run_dir>/trials/trial_<n>`` on the worker's machine (default: removed at the
            trial's end; MLflow has the model and the hls4ml config).
        allow_changed: continue an existing study even if its stored experiment differs in
            what defines the trials (:data:`dse.store.TRIAL_DEFINING_FIELDS`).

    Returns:
        A :class:`StudySummary` with the front and where it is stored. A study in which every
        trial failed returns normally too (``dse run`` then exits 1): check ``n_complete`` and
        ``failures``.

    Raises:
        TypeError: ``exp`` is not an ``ExperimentConfig`` or ``space`` not a ``SearchSpace``.
        StorageError, TrackingError, ClusterUnreachableError, ToolNotFoundError: see :func:`dse.study.preflight`.
        TrackingError: also MLflow lost during the study (finished trials are kept; running ones re-enqueued).
        ClusterError: a local Ray did not start, a cluster could not be joined or refused the token
            (:func:`dse.study._ray_session.ray_session`), or ``run_dir`` is too long for Ray's sockets.
        DiskFullError: the run directory's disk is full or too small for Ray's files (before any trial), or filled
            during the study (what finished is kept).
        DatasetError: the data are unusable (before any trial).
        SearchSpaceError: the space offers a value hls4ml cannot implement (before any trial).
        ConfigError: the study exists with other objectives (directions, or metrics once a trial
            finished), or with constraints that trials told feasible break (added or tightened), or
            (without ``allow_changed``) with another dataset, model, training, search space,
            constraints or hls4ml settings.
        StorageUnavailableError: the storage stayed unreachable past ``storage_retry_s``.
        DriverTerminated: the driver received SIGTERM (main thread only).
    """
    exp, space = revalidate(exp, space)
    for arg, value in (("progress", progress), ("keep_files", keep_files), ("allow_changed", allow_changed)):
        expect(arg, value, bool, f"pass {arg}=True or {arg}=False")
    with _sigterm_raises():
        try:
            return _run_study(exp, space, progress=progress, keep_files=keep_files, allow_changed=allow_changed)
        except KeyboardInterrupt:
            if _TERMINATED.is_set():
                raise DriverTerminated("the driver received SIGTERM") from None
            raise


def _run_study(exp: ExperimentConfig, space: SearchSpace, *, progress: bool, keep_files: bool, allow_changed: bool) -> StudySummary:
    t0 = time.time()
    splits = preflight(exp, space, compare_stored=False)  # the stored experiment is compared below, under the store lock
    dataset = dataset_record(exp.dataset.name, splits)
    run_dir = exp.resolved_run_dir
    # the folders of the run, of a SQLite or journal storage and of a SQLite MLflow store elsewhere (`dse check`
    # passed a storage in a folder that did not exist yet, and `dse run` then died in a traceback)
    folders = [("run_dir" if exp.run_dir else "run_dir (default runs/<name>)", run_dir)]
    folders += [(name, f.parent) for name, f in (("storage", storage_file(exp.storage_url)),
                                                   ("mlflow.tracking_uri", sqlite_path(exp.tracking_uri))) if f is not None]
    for name, folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:  # what the preflight cannot foresee (root writes anywhere os.access is asked about)
            raise ConfigError(f"{name}: cannot create {folder} ({e.strerror or e}); pick another path") from e
    claim_run_dir(exp)  # another study's run is refused from now on (check_run_dir_owner)
    with _store_lock(exp, run_dir):  # two drivers creating one SQLite store at once race in its schema's creation
        study = open_study(exp, make_sampler(exp.sampler, exp.seed))
        records = StudyRecords(study)
        changed = records.experiment_diff(exp, space, dataset)
        if error := stored_study_error(study, exp, space, changed, allow_changed=allow_changed, records=records):
            raise error
        counts = study_counts(study)
        # nothing to run or recover, nothing to re-measure: no Ray (its start is 3-8 s)
        idle = nothing_to_run(exp, counts)
        if not idle:
            warn_sampler_changed(records, exp)  # before the experiment saved below becomes the stored one
        if changed and not idle:  # accepted without a word (an idle run says why its records keep the old)
            log.warning("--allow-changed: study %s continues with its experiment changed (%s); the trials before keep what "
                        "they ran with", exp.name, "; ".join(changed[:6]) + (f"; ... ({len(changed)} in all)" if len(changed) > 6 else ""))
        recorded = exp  # the experiment the study's records (Optuna, MLflow's experiment.json) say it ran with
        if idle and records.has_experiment():  # no trial runs with this one: the records keep what built the trials
            recorded = _idle_record(exp, space, dataset, records, changed)
        else:
            records.save_experiment(exp, space, dataset, changed)
            for params in enqueued_params(exp, space):  # under the lock: two drivers starting together enqueue once
                study.enqueue_trial(params, skip_if_exists=True)  # Optuna logs it when a trial already has these values
        version = records.experiment_version()  # under the lock: another driver's --allow-changed comes before or after

    # MLflow's side opens in a thread while Ray starts in this one (ray.init must run in the main
    # thread, and mostly waits for Ray's processes): a new SQLite store's migrations take about 1.3 s.
    opener = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dse-tracking")
    opening = opener.submit(_open_tracking, exp, records, dataset, run_dir, recorded)
    opener.shutdown(wait=False)
    session = ExitStack()
    start_error: BaseException | None = None
    try:
        try:
            if not idle:
                session.enter_context(ray_session(exp.ray, run_dir))
                _on_sigterm_raise()  # ray.init replaced it
        except BaseException as e:  # recorded in the parent run below, as a failure of the loop would be
            start_error = e
        tracker, parent = opening.result()
    except BaseException:  # MLflow could not be opened: stop the Ray just started, nothing else exists yet
        if start_error is not None:  # raised is MLflow's error; Ray's would otherwise go unreported
            log.error("Ray did not start either: %s: %s", type(start_error).__name__, start_error)
        session.close()
        _fold_stores(exp)  # a Ctrl-C here too: the study's records are written by now
        raise

    if idle:
        if cluster_address(exp.ray) is None:
            stop_leftover_ray(run_dir)  # no Ray starts, whose start would stop what a killed driver left
        log.info("study %s already has n_trials=%d evaluated trials and none running: nothing to run (raise n_trials, "
                 "or pass --n-trials, to run more)", exp.name, exp.n_trials)
    evaluated = counts.evaluated  # trials failed as not evaluated do not count (as room() and the bar's updates)
    log.info("study %s: %d trials finished, %d to run", exp.name, evaluated, max(exp.n_trials - evaluated, 0))
    bar = StudyProgress(progress, exp.n_trials, evaluated)
    status = "FINISHED"
    loop = _StudyLoop(study, exp, space, tracker, parent, splits, run_dir, keep_files, bar, version)
    try:
        with session:
            if start_error is not None:
                raise start_error
            if not idle:
                loop.run()
    except BaseException as e:  # Ctrl-C, SIGTERM, or a bug/outage in the loop: nothing of ours may stay RUNNING
        status = "KILLED" if isinstance(e, KeyboardInterrupt) else "FAILED"
        why = ("SIGTERM" if _TERMINATED.is_set() else "Ctrl-C") if status == "KILLED" else f"{type(e).__name__}: {e}"
        lost_tracking = _lost_tracking(e)
        loop.tracking_lost = loop.tracking_lost or lost_tracking  # then each MLflow call would wait out MLflow's retries again: skip them
        requeued = loop.abandon(why)
        if requeued:
            log.warning("trial(s) %s failed as TrialInterruptedError and re-enqueued: the next `dse run` evaluates them",
                        ", ".join(map(str, requeued)))
        if status == "FAILED" and not lost_tracking:
            try:
                tracker.tag_run(parent, {"error": f"{type(e).__name__}: {e}"})
            except Exception as inner:
                log.error("could not tag the parent run: %s", inner)
        full = None if isinstance(e, DseError) or status != "FAILED" else disk_full_error(
            e, "Finished trials are kept in the Optuna storage, and trials that were running are re-enqueued (where the "
               "storage's own disk is the full one, the next `dse run` recovers them); free space on that disk "
               "(`df -h` of the run directory, or of the storage's or the MLflow store's folder) and run `dse run` again")
        if full is not None:  # an MLflow store's or a file's full disk: not "when MLflow is back", nothing is down
            raise full from e
        if lost_tracking:
            detail = str(e) if isinstance(e, _WorkerLostTracking) else f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"
            raise TrackingError(
                f"MLflow tracking at {redact_url(exp.tracking_uri)} failed during the study ({detail}); "
                "finished trials are kept in the Optuna storage and "
                "running ones were re-enqueued: run `dse run` again when MLflow is back"
            ) from e
        raise
    finally:
        bar.stop()
        with _sigterm_deferred():
            try:
                if not keep_files:
                    _remove_trial_folders(study, run_dir, loop.launched, loop.recovered_here)
                try:
                    summary = _finish(study, exp, None if loop.tracking_lost else tracker, parent, run_dir, status, t0)
                    summary.remeasured = loop.remeasured
                    summary.nothing_to_run = idle
                except Exception as inner:
                    if status != "FINISHED":  # the loop's own error is raised; this one is only said
                        log.error("could not write the study summary: %s", _root_text(inner))
                    if not loop.tracking_lost:  # the parent run ends all the same (RUNNING, the storage down),
                        try:  # FAILED where the summary of a finished loop failed
                            tracker.end_study_run(parent, "FAILED" if status == "FINISHED" else status)
                        except Exception as mlflow_error:
                            log.error("could not end the study's MLflow parent run: %s", mlflow_error)
                    if status == "FINISHED":
                        raise
            finally:
                _fold_stores(exp)
    return summary


def _fold_stores(exp: ExperimentConfig) -> None:
    """Copy the write-ahead logs of the study's SQLite stores into them (probe 32: after Ctrl-C the logs were left
    beside them, and a copy of optuna.db alone lacked the study's trials)."""
    fold_write_ahead_logs([storage_file(exp.storage_url), sqlite_path(exp.tracking_uri)])


def _root_text(e: BaseException) -> str:
    """``e`` in one line, with what caused it: Optuna wraps a lost database in "An exception is raised during the commit.
    This typically happens due to invalid data in the commit", whose cause is the refused connection."""
    text = " ".join(f"{type(e).__name__}: {e}".split())[:300]
    cause = e.__cause__ or e.__context__
    return text if cause is None else text + f" (caused by {' '.join(f'{type(cause).__name__}: {cause}'.split())[:300]})"


class _WorkerLostTracking(Exception):
    """A trial's worker lost the MLflow server (it does not answer): the study stops as when the driver loses it."""


def _lost_tracking(e: BaseException) -> bool:
    """Whether ``e`` is MLflow's (its store or server failed, after MLflow's own HTTP retries), not dse's."""
    return isinstance(e, _WorkerLostTracking) or is_tracking_failure(e)


#: What builds, chooses and measures trials: a run with nothing to run keeps the stored values (no trial ran with new ones).
_TRIAL_BUILDING = ("dataset", "model", "training", "search_space", "hls4ml", "resources", "seed", "sampler", "n_trials", "enqueue_trials")


def _idle_record(exp: ExperimentConfig, space: SearchSpace, dataset: dict, records: StudyRecords, changed: list[str]) -> ExperimentConfig:
    """The experiment a run with nothing to run records: ``exp``, with the stored values of :data:`_TRIAL_BUILDING`.

    The constraints (``--allow-changed``: a relaxed budget) and where things run are taken from
    ``exp``; a changed field that builds trials is named in a warning and not recorded, since no
    trial ran with it. A stored experiment that does not validate here is replaced by ``exp``.
    """
    try:
        stored = records.experiment(reading=True)
    except ConfigError:
        records.save_experiment(exp, space, dataset)
        return exp
    kept = [c for c in changed if re.split(r"[.:\[ ]", c, maxsplit=1)[0] in _TRIAL_BUILDING]
    if kept:
        log.warning("nothing runs with the changed %s, so the study's records keep the values its trials ran with; raise "
                    "n_trials (or pass --n-trials) to run trials with them", "; ".join(kept))
    recorded = exp.model_copy(update={k: getattr(stored, k) for k in _TRIAL_BUILDING})
    records.update_experiment(recorded)
    return recorded


def _warn_unproxied_artifacts(tracker: StudyTracker, exp: ExperimentConfig) -> None:
    """Warn where a cluster's workers would write artifacts to their own disks: an MLflow server that does not proxy
    them (``mlflow server --no-serve-artifacts``, or an experiment made with a local artifact location) hands each
    worker a path to write to (accepted without a word; it works only where every process shares one disk)."""
    if cluster_address(exp.ray) is None or not exp.tracking_uri.startswith(("http://", "https://")):
        return
    try:
        location = tracker.client.get_experiment(tracker.experiment_id).artifact_location or ""
    except Exception:  # the warning is advice; the study goes on without it
        return
    if location.startswith("file:") or location.startswith("/"):
        log.warning("MLflow experiment %s keeps its artifacts at %s, a path on each machine: the cluster's workers write "
                    "their models and hls4ml configs to their own disks there, where the server and `dse export` on other "
                    "machines cannot read them; start the server with --artifacts-destination (it then proxies artifacts, "
                    "mlflow-artifacts:/...) and use a new mlflow.experiment_name", tracker.experiment_id, location)


def _enqueued(trial: optuna.Trial) -> dict[str, Any]:
    """The point ``trial`` was enqueued with (``study.enqueue_trial``, or the experiment's ``enqueue_trials``), else ``{}``.

    A trial dse re-enqueued (``requeued_from``) holds an earlier trial's draws, not a point of the user's: all of them,
    also those a rule pinned (NSGA-II draws every parameter), so ``{}`` too. Optuna keeps the point in the trial's
    system attribute ``fixed_params``, which a running ``Trial`` exposes only as ``_fixed_params``.
    """
    if "requeued_from" in trial.user_attrs:
        return {}
    return dict(getattr(trial, "_fixed_params", None) or {})


def _warn_enqueued_overrides(number: int, fixed: dict[str, Any], pinned: dict[str, Any], space: SearchSpace) -> None:
    """Warn of an enqueued point's values the trial does not train with: names the space lacks (Optuna ignores them) and
    values a rule or a condition's default replaced. The experiment's ``enqueue_trials`` are refused for both by
    ``dse check``; a point given to ``study.enqueue_trial`` from Python was run otherwise without a word."""
    known = set(space.parameters) | {f"{name}_is_zero" for name in space.parameters}
    unknown = sorted(k for k in fixed if k not in known)
    given = {k: v for k, v in fixed.items() if not k.endswith("_is_zero")}
    given.update({k.removesuffix("_is_zero"): 0.0 for k, v in fixed.items() if k.endswith("_is_zero") and v is True})
    replaced = {k: (given[k], pinned[k]) for k in given if k in pinned and pinned[k] != given[k]}
    if unknown:
        log.warning("trial %d: the enqueued point names %s, which the search space does not have; ignored", number,
                    ", ".join(unknown))
    if replaced:
        log.warning("trial %d: the enqueued %s replaced by the search space's rules or conditions, so the trial trains "
                    "with %s", number, ", ".join(f"{k}={a!r}" for k, (a, _) in replaced.items()),
                    ", ".join(f"{k}={b!r}" for k, (_, b) in replaced.items()))


def _open_tracking(exp: ExperimentConfig, records: StudyRecords, dataset: dict, run_dir: Path,
                   recorded: ExperimentConfig | None = None) -> tuple[StudyTracker, str]:
    """Open the study's MLflow side: the store, its experiment, the parent run, and the dataset record.

    Args:
        recorded: the experiment the parent run's ``experiment.json`` is to hold, when not ``exp``
            (a run with nothing to run keeps the one the trials ran with).

    Returns:
        ``(tracker, parent_run_id)``; the parent run is also stored in the study (``records.set_tracking``).

    Raises:
        TrackingError: the MLflow experiment is deleted (:class:`dse.tracking.StudyTracker`); MLflow's
            own errors pass through as MLflow raises them.
    """
    with _store_lock(exp, run_dir):  # MLflow's migrations of a new SQLite store, one driver at a time
        default_store = exp.mlflow.tracking_uri is None
        if default_store:
            create_mlflow_store(run_dir / "mlflow.db")
            enable_wal(run_dir / "mlflow.db")  # fewer fsyncs per MLflow write, for the driver and the workers
        # a SQLite store's artifacts beside it (audit: a tracking_uri of one's own left MLflow's ./mlruns, in whatever
        # folder dse was started from); a server decides its own
        local_db = run_dir / "mlflow.db" if default_store else sqlite_path(exp.tracking_uri)
        try:
            tracker = StudyTracker(
                exp.tracking_uri,
                exp.mlflow.experiment_name or exp.name,
                artifact_location=(local_db.parent / "mlartifacts").as_uri() if local_db is not None else None,
                parent_run_id=records.parent_run_id,
            )
        except Exception as e:
            if "_alembic_tmp_" not in str(e):
                raise
            db = run_dir / "mlflow.db" if default_store else exp.tracking_uri
            raise TrackingError(
                f"the MLflow store {db} was left half-migrated by a process stopped while it built or upgraded its tables "
                f"({' '.join(str(e).split())[:200]}); MLflow cannot open it. If the study never finished a trial, delete "
                f"{db} (and its -wal and -shm files) and run again; else restore it from a copy"
            ) from e
        parent = tracker.study_run(exp.name, (recorded or exp).model_dump(mode="json"))
    _warn_unproxied_artifacts(tracker, exp)
    records.set_tracking(parent, exp.tracking_uri)
    tracker.log_dataset(parent, dataset)
    if history := records.experiment_history():  # what built the earlier trials, as experiment.json now holds the latest
        tracker.log_experiment_history(parent, history)
    _close_finished_runs(tracker, records, exp.name, harvests=bool(exp.training.harvest_checkpoints))
    _number_trial_runs(tracker, records, exp.name)
    return tracker, parent


def _number_trial_runs(tracker: StudyTracker, records: StudyRecords, study_name: str) -> None:
    """Tag ``trial_number`` on the study's trial runs that lack it and that an Optuna trial records (harvested
    checkpoints of an earlier dse), so ``mlflow.search_runs`` by trial number finds every trial."""
    harvested = [TrialRecord.of(t) for t in records.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if is_harvested(t)]
    numbers = {r.run_id: r.number for r in harvested if r.run_id}
    if not numbers:  # only harvested checkpoints' runs were ever left without one: no search for other studies
        return
    untagged = tracker.trial_runs_without_number(study_name)
    for run_id in untagged:
        if run_id in numbers:
            tracker.tag_run(run_id, {"trial_number": str(numbers[run_id])})


def _checkpoint_error(number: int, error: str) -> str:
    """The ``error`` tag of a checkpoint run of trial ``number``, which failed with ``error`` (``"<Type>: <why>"``)
    before its checkpoints were recorded: the trial's error type (``TrialInterruptedError``: not a failed design)."""
    kind, _, reason = " ".join(error.split()).partition(": ")
    return f"{kind}: trial {number}, whose checkpoint this is, failed before its checkpoints were recorded ({reason[:300]})"


def _close_finished_runs(tracker: StudyTracker, records: StudyRecords, study_name: str, harvests: bool = False) -> None:
    """End the MLflow runs still RUNNING of trials Optuna holds as finished, in the state Optuna holds.

    A driver that lost its MLflow server fails its running trials in Optuna only (the server
    does not answer), so their runs stayed RUNNING; the next driver to open the store closes them (a COMPLETE trial's
    run that holds no metric, its worker's logging having failed, gets the metrics and tags Optuna holds, and the
    tag ``logging_error`` saying so),
    and, where trials ``harvests`` checkpoints, the checkpoint runs of such a FAIL trial
    (:meth:`StudyTracker.close_checkpoint_runs`).
    A driver killed after it made a trial's run but before Optuna recorded the run's id left a
    run that no trial names: it is closed FAILED when its ``trial_number`` is a finished trial
    that records another run. Runs of trials still RUNNING in Optuna (another driver's) are left alone.
    """
    running = tracker.running_trial_runs(study_name)
    if not running:
        return
    finished = {r.number: r for r in records.trials((TrialState.COMPLETE, TrialState.FAIL))}
    recorded = {r.run_id: r for r in finished.values() if r.run_id}  # a harvested checkpoint's trial records its run
    for run_id, (number, harvested_from) in running.items():
        origin = finished.get(int(harvested_from)) if not number and harvested_from.isdigit() else None
        if origin is not None and run_id not in recorded:  # a checkpoint's run left RUNNING that became no trial
            why = (_checkpoint_error(origin.number, origin.fail_reason or "unknown") if origin.state == "FAIL" else
                   f"TrialInterruptedError: the worker measuring this checkpoint of trial {origin.number} stopped; the "
                   "trial finished without it")
            tracker.finish_trial_run(run_id, "FAIL", why)
            log.info("closed MLflow run %s of a checkpoint of trial %d, left RUNNING", run_id, origin.number)
            continue
        r = recorded.get(run_id) if not number else finished.get(int(number)) if number.isdigit() else None
        if r is None:
            continue
        if r.run_id == run_id:
            if r.state == "COMPLETE" and r.metrics and not tracker.client.get_run(run_id).data.metrics:
                # its worker's logging failed (MLflow lost): the figures Optuna holds, so the run does not read as a
                # finished trial without them (a front member's run FINISHED, pareto=true, 0 metrics)
                from dse.tracking import TrialRunLogger

                TrialRunLogger(tracker.tracking_uri, run_id).log_results(r.metrics, {**r.tags, "logging_error": (
                    "the worker's MLflow logging failed; its metrics and tags were restored from the Optuna record "
                    "(no per-epoch curves, no artifacts)")})
            tracker.finish_trial_run(run_id, r.state, r.fail_reason if r.state == "FAIL" else None)
            if harvests and r.state == "FAIL":
                tracker.close_checkpoint_runs(study_name, r.number, _checkpoint_error(r.number, r.fail_reason or "unknown"))
        else:  # made by a driver killed before it recorded the run
            tracker.finish_trial_run(run_id, "FAIL", f"DriverLostError: the driver that made this run of trial {r.number} was "
                                                     "lost before it recorded the run; the trial was recovered without it")
        log.info("closed MLflow run %s of trial %d, left RUNNING by an earlier driver", run_id, r.number)


def _finished_elsewhere(e: Exception) -> bool:
    """Whether ``e``, raised writing to a trial, says another handle finished it first: Optuna's
    ``UpdateFinishedTrialError``, or the ``ValueError`` "Cannot tell a FAIL trial." of a tell that came second."""
    return isinstance(e, UpdateFinishedTrialError) or isinstance(e, ValueError) and "Cannot tell a" in str(e)


def _trial_folder(run_dir: Path, number: int) -> Path:
    """Trial ``number``'s folder (``TrialSpec.work_dir``): ``<run_dir>/trials/trial_<number, 5 digits>``."""
    return run_dir / "trials" / f"trial_{number:05d}"


def _remove_trial_folders(study: optuna.Study, run_dir: Path, launched: list[int], recovered: list[int] = ()) -> None:
    """Remove ``run_dir/trials/trial_<n>`` of the trials this driver ``launched`` that are not RUNNING any more: a worker
    removes its own at the trial's end, but one stopped mid-trial (a time limit, Ctrl-C, a lost worker) left it behind.
    Of the trials it ``recovered`` from a dead driver of this machine, only folders that hold no file (that driver was
    killed before its trial wrote one; probe 32: left for good): one that does may be what a ``--keep-files`` run
    kept (the worker's ``steps.json``, :mod:`dse.trial._progress`, does not count). Folders of other runs (kept with
    ``--keep-files``) and of other drivers are left alone."""
    from dse.trial._progress import STEPS_FILE

    folders = {n: _trial_folder(run_dir, n) for n in [*launched, *recovered]}
    if not any(f.is_dir() for f in folders.values()):
        return
    try:
        running = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    except Exception as e:  # the storage is gone: left for the next run
        log.debug("trial folders left in place: %s", e)
        return
    for n, folder in folders.items():
        if n in running or (n not in launched and any(p.is_file() and STEPS_FILE not in p.name for p in folder.rglob("*"))):
            continue
        shutil.rmtree(folder, ignore_errors=True)


def _finish(study, exp, tracker: StudyTracker | None, parent: str, run_dir: Path, status: str, t0: float) -> StudySummary:
    """Write the front's CSV; with a ``tracker`` (``None``: MLflow was lost), also tag the front, attach the CSV to the parent run and end it.

    The parent run is left RUNNING while trials of another driver on the study still run (this
    driver's own are finished or failed by now): that driver ends it, with the front then.
    """
    front = front_frame(study)
    csv = run_dir / "pareto_front.csv"
    partial = csv.with_name(f".{csv.name}.{os.getpid()}")  # whole or not at all (probe 32: 0 bytes left on a full disk)
    try:
        front.to_csv(partial, index=False)
        os.replace(partial, csv)
    finally:
        partial.unlink(missing_ok=True)
    counts = study_counts(study)
    if tracker is not None:
        run_ids = [r.run_id for r in StudyRecords(study).trials((TrialState.COMPLETE,)) if r.run_id]
        tracker.mark_pareto(set(front["mlflow_run_id"]) if not front.empty else set(), run_ids, parent_run_id=parent)
        tracker.log_study_artifact(
            parent, csv, {"n_complete": counts.complete, "n_failed": counts.failed, "front_size": len(front)}
        )
        if counts.running:  # before, the first of two drivers to finish ended the run the other still logs into
            log.info("the MLflow parent run stays RUNNING: %d trial(s) of another driver still run, and the last driver "
                     "to finish ends it with the front then", counts.running)
        else:
            tracker.end_study_run(parent, status)
    return StudySummary(
        exp.name, exp.storage_url, exp.tracking_uri, parent, csv, counts.complete, counts.failed,
        time.time() - t0, front.to_dict("records"), failure_reasons(study), counts,
    )
