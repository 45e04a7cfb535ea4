"""Two-fidelity search: re-measure finished trials with a precise backend, cached, on Ray."""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from dse._args import expect, expect_trial_numbers
from dse._code import this_code
from dse.config import ConstraintConfig, ExperimentConfig, redact_url
from dse.exceptions import ClusterError, ConfigError, DriverTerminated, MeasurementError, WorkerCodeError
from dse.resources import backend_module_folders, precise_backend_class, unlisted_backend_problem
from dse.resources._cache import cache_key, earlier_measurement_settings, measurement_settings
from dse.store import StudyRecords, TrialRecord, precise_broken
from dse.study._ray_session import cluster_address, ray_session, trial_resources
from dse.study._storage import load_study

__all__ = ["SynthesisSummary", "Remeasurer", "synthesize", "experiment_of", "located_experiment", "precise_front", "precise_feasible",
           "empty_precise_front_reason"]

log = logging.getLogger(__name__)



@dataclass
class SynthesisSummary:
    """What :func:`synthesize` did.

    Attributes:
        backend: the precise backend.
        launched: trials measured now (one Ray task each).
        cached: trials whose design was measured before (no tool started), ``own`` ones included.
        own: trials whose own figures came from this backend with the same settings when they
            ran (``resources.backend``), taken as its measurement (no tool started).
        skipped: trial number -> why it was not measured (backend does not apply).
        failed: trial number -> error.
        front: trial numbers of the front recomputed on the precise figures.
        front_csv: local path of ``pareto_front_<backend>.csv`` (also on the parent run).
        no_front: why ``front`` is empty (:func:`empty_precise_front_reason`); ``""`` when it is not.
        seconds: wall time.
        profiled: trials whose hls4ml profiling plots were logged (``profile=True``), cached ones included.
        kept: with ``keep_files``, the folder holding each measured trial's ``trial_<number>/`` (RTL, project, logs;
            on the machine that measured it); ``None`` otherwise or when nothing was measured.
    """

    backend: str
    launched: list[int] = field(default_factory=list)
    cached: list[int] = field(default_factory=list)
    own: list[int] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)
    front: list[int] = field(default_factory=list)
    front_csv: Path | None = None
    no_front: str = ""
    seconds: float = 0.0
    profiled: list[int] = field(default_factory=list)
    kept: Path | None = None


def experiment_of(study: optuna.Study) -> ExperimentConfig:
    """The experiment a study was run with (stored by ``dse run``).

    Raises:
        ConfigError: the study was not created by ``dse run``, or its stored experiment no longer validates.
    """
    return StudyRecords(study).experiment()


def located_experiment(study: optuna.Study, storage: str, tracking_uri: str | None = None,
                       ray_address: str | None = None) -> ExperimentConfig:
    """:func:`experiment_of`, with the run directory where the study is now (a moved default store is relocated).

    With the default MLflow store, the run directory is the folder of the Optuna database opened
    (:func:`dse.tracking.open_tracking`), so ``dse synthesize`` and ``dse calibrate`` on a moved
    run directory log into its ``mlflow.db`` and write their CSVs and scratch files there.

    Args:
        study: the study.
        storage: its Optuna storage URL.
        tracking_uri: where its MLflow runs are now (``--tracking-uri``: a port-forward to a cluster's
            server, a moved store), in place of the recorded one; checked to hold the study's parent run.
        ray_address: the Ray to measure on (``--ray-address``) in place of the stored ``ray.address``:
            ``local`` for a local Ray on this machine (a study run on a cluster that is gone).

    Raises:
        ConfigError: as :func:`experiment_of`; ``tracking_uri`` holds no store or not the study's parent run.
        TrackingError: ``tracking_uri`` is a server that does not answer (before Ray starts and tools run for hours).
    """
    from dse.exceptions import TrackingError
    from dse.tracking import open_tracking, server_problem

    exp = experiment_of(study)
    where = open_tracking(StudyRecords(study), storage, tracking_uri)  # checks its type, and a store that holds the study
    if tracking_uri is not None and (problem := server_problem(tracking_uri)):  # which a server that does not answer skips
        raise TrackingError(f"--tracking-uri (Python: tracking_uri=): the MLflow server at {redact_url(tracking_uri)} does not answer "
                            f"({problem}); check the address (a port-forward's local port) and that the server runs")
    if where.default_store and where.run_dir != exp.resolved_run_dir:
        exp = exp.model_copy(update={"run_dir": str(where.run_dir)})
    if tracking_uri is not None:
        exp = exp.model_copy(update={"mlflow": exp.mlflow.model_copy(update={"tracking_uri": where.tracking_uri})})
    if ray_address is not None:
        exp = exp.model_copy(update={"ray": exp.ray.model_copy(update={"address": ray_address})})
    return exp


def _study_constraints(study: optuna.Study) -> list[ConstraintConfig]:
    """The constraints of the study's stored experiment; none when it has none stored or it does not validate here."""
    try:  # as stored (READING_STORED): a bound refused by a check added since still holds for the trials that ran with it
        return list(StudyRecords(study).experiment(reading=True).constraints)
    except ConfigError as e:
        log.debug("precise front of %r without constraints on the precise figures: %s", study.study_name, e)
        return []


def precise_feasible(record: TrialRecord, entry: dict[str, Any], backend: str, constraints: list[ConstraintConfig]) -> bool:
    """Whether a trial re-measured by ``backend`` may be on the precise front.

    It must have been told feasible when it finished (its stored constraint values,
    :attr:`dse.store.TrialRecord.feasible`), and each constraint on a metric that ``backend``
    re-measured (``<backend>_lut`` for a constraint on ``lut``) must hold on that precise figure.

    Args:
        record: the trial's record.
        entry: its measurement (``{"metrics": {"<backend>_lut": ...}, ...}``).
        backend: the precise backend.
        constraints: the study's constraints.
    """
    return record.feasible and not precise_broken(entry, backend, constraints)


def precise_front(study: optuna.Study, backend: str, constraints: list[ConstraintConfig] | None = None) -> list[int]:
    """Pareto front over the feasible trials measured by ``backend``, with its figures replacing the estimates.

    Each objective ``m`` takes ``<backend>_<m>`` where the backend measured it (e.g. ``lut``),
    else the trial's own value (e.g. ``csim_accuracy``). Only feasible trials take part
    (:func:`precise_feasible`): those told feasible when they finished, whose precise figures
    also hold the constraints on the metrics ``backend`` re-measured (a trial with ``lut`` 900
    under ``max: 1000`` whose ``yosys_lut`` is 1200 is left out). Computed by Optuna
    (``best_trials`` of an in-memory study with the same directions).

    Args:
        study: the study.
        backend: the precise backend.
        constraints: the study's constraints; ``None``: those of its stored experiment (none where it has none stored
            or it does not validate here).

    Returns:
        The trial numbers of that front, ascending; empty where ``backend`` measured no feasible trial.
    """
    if constraints is None:
        constraints = _study_constraints(study)
    measured = StudyRecords(study).measurements(backend)
    names = study.metric_names or []
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the scratch study is not news to the user
    try:
        scratch = optuna.create_study(directions=study.directions)
    finally:
        optuna.logging.set_verbosity(verbosity)
    trials = {t.number: t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}
    for number, entry in sorted(measured.items()):
        if number not in trials or not precise_feasible(TrialRecord.of(trials[number]), entry, backend, constraints):
            continue
        m = entry["metrics"]
        values = [m.get(f"{backend}_{name}", v) for name, v in zip(names, trials[number].values)]
        dists = {"trial": optuna.distributions.IntDistribution(0, 10**9)}
        scratch.add_trial(optuna.trial.create_trial(values=values, params={"trial": number}, distributions=dists))
    return sorted(t.params["trial"] for t in scratch.best_trials) if scratch.trials else []


def unmeasured_front_members(study: optuna.Study, backend: str) -> list[int]:
    """Members of the study's front (on its recorded figures) that ``backend`` supports but has not measured.

    A front re-measured with ``dse synthesize --front`` mid-study is the front of the trials finished then; trials that
    joined the front later have no precise figures, so the front on ``backend``'s figures leaves them out until
    ``dse synthesize --front`` runs again (probe 36: ``dse status`` showed that front unsaid).
    """
    from dse.exceptions import BackendError
    from dse.resources import backend_class

    try:
        cls = backend_class(backend)
    except BackendError:  # a user's backend whose module is not importable here: which Strategies it measures is unknown
        return []
    measured = StudyRecords(study).measurements(backend)
    out = []
    for t in study.best_trials:
        r = TrialRecord.of(t)
        if t.number not in measured and (cls.strategies is None or (r.params is not None and r.params.strategy in cls.strategies)):
            out.append(t.number)
    return sorted(out)


def empty_precise_front_reason(study: optuna.Study, backend: str, constraints: list[ConstraintConfig] | None = None) -> str:
    """Why no trial re-measured by ``backend`` is on the front of its figures (:func:`precise_front` is empty).

    Each re-measured trial is either over budget on the re-measured figures though its estimates
    were told feasible (:func:`precise_broken`), or was told infeasible on its estimates when it
    finished, which it stays (Optuna keeps the verdict a trial was told), also where the
    re-measured figures meet the bound it broke.

    Args:
        study: the study.
        backend: the precise backend.
        constraints: the study's constraints; ``None``: those of its stored experiment.

    Returns:
        e.g. ``"trial 1 is over budget on its yosys figures (yosys_lut 3,697 > max 3,660); trial 2 was told
        infeasible on its estimates (lut 3,387 > max 3,370), which it stays, though its yosys figures meet that bound"``.
    """
    if constraints is None:
        constraints = _study_constraints(study)
    complete = {t.number: TrialRecord.of(t) for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}
    parts = []
    for number, entry in sorted(StudyRecords(study).measurements(backend).items()):
        r = complete.get(number)
        if r is None:
            continue
        if r.feasible:
            if broken := precise_broken(entry, backend, constraints):
                parts.append(f"trial {number} is over budget on its {backend} figures ({', '.join(broken)})")
            continue
        # the bounds it broke as it was told them (stored), not the experiment's now (a review: removed or loosened
        # constraints made "meets" true of any figure)
        broke = r.bounds_broken()
        meets = bool(broke) and all(
            bound is not None and (precise := entry["metrics"].get(f"{backend}_{metric}")) is not None
            and (precise <= bound if side == "max" else precise >= bound) for metric, side, _, bound, _ in broke)
        parts.append(f"trial {number} was told infeasible on its estimates ({', '.join(r.broken_constraints())}), which it "
                     f"stays{f', though its {backend} figures meet that bound' if meets else ''}")
    return "; ".join(parts) or f"no completed trial was re-measured by {backend}"


def _select(study: optuna.Study, trials: list[int] | None, front: bool) -> list[optuna.trial.FrozenTrial]:
    complete = {t.number: t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}
    chosen: dict[int, optuna.trial.FrozenTrial] = {}
    if front:
        chosen.update({t.number: t for t in study.best_trials})
    for n in trials or []:
        if n not in complete:
            raise ConfigError(
                f"--trials (Python: trials=): trial {n} is not a COMPLETE trial of study {study.study_name!r}; complete trials: {sorted(complete)}"
            )
        chosen[n] = complete[n]
    if not chosen:
        if front:
            raise ConfigError(f"nothing to synthesize: study {study.study_name!r} has no Pareto front yet ({len(complete)} complete "
                              "trials; see `dse status`); run trials first, or pass --trials N,M (trials=[N, M])")
        raise ConfigError("nothing to synthesize: pass --front and/or --trials N,M (from Python: front=True and/or trials=[N, M])")
    return [chosen[n] for n in sorted(chosen)]


class Remeasurer:
    """Re-measures trials of one study with one backend: plan (cache lookup), submit (Ray), record, finish.

    :func:`synthesize` drives it in one batch; the study loop drives it trial by trial for
    ``resources.synthesize_front`` (each new front member is measured while the study runs).

    Args:
        study: the study (its storage holds the cache).
        exp: the study's experiment.
        backend: resource backend name.
        profile: also log hls4ml profiling plots.
        keep_files: keep RTL and logs under ``<run_dir>/synth``.

    Raises:
        ConfigError: unknown backend, or ``ebops`` (no re-measurement).
    """

    def __init__(self, study: optuna.Study, exp: ExperimentConfig, backend: str, *, profile: bool = False, keep_files: bool = False):
        try:
            self.impl = precise_backend_class(backend)()
        except ValueError as e:
            raise ConfigError(f"--backend (Python: backend=): {e}") from e
        module = type(self.impl).__module__
        unlisted = unlisted_backend_problem(backend, exp.resources.backend_modules)
        if unlisted and module == "__main__":
            raise ConfigError(f"--backend (Python: backend=): {unlisted}")
        #: what the workers import: ``resources.backend_modules``, and the module of a user's backend they do not list
        self.backend_modules = (*exp.resources.backend_modules, *([module] if unlisted else []))
        self.import_folders = backend_module_folders(self.backend_modules)  # where this process found them
        self.study, self.exp, self.backend = study, exp, backend
        self.records = StudyRecords(study)
        self.profile, self.keep_files = profile, keep_files
        self.settings = measurement_settings(exp.resources)
        self.earlier_settings = earlier_measurement_settings(exp.resources)
        self.summary = SynthesisSummary(backend)
        self._remote = None
        self._t0 = time.time()
        self.profile_only: list[optuna.trial.FrozenTrial] = []  # cached trials to profile (``profile=True``)

    def plan(self, trials: list[optuna.trial.FrozenTrial]) -> list[tuple[optuna.trial.FrozenTrial, str]]:
        """Sort ``trials`` into cached, not applicable or to measure; returns those to measure with their cache keys.

        A trial whose own figures came from this backend with the same settings (its ``figure_key``
        tag is the cache key here: ``resources.backend`` is this backend) has them stored as this
        backend's measurement and counts as cached (and as ``own``): measuring it again would
        give the same numbers.
        """
        s, todo = self.summary, []
        for t in trials:
            record = TrialRecord.of(t)
            params = record.params
            if params is None or not self.impl.supports(params.strategy):
                what = params.strategy if params else "a trial without recorded parameters"
                s.skipped[t.number] = f"{self.backend} measures {', '.join(self.impl.strategies or ())} designs; this is {what}"
                continue
            dh = record.tags.get("design_hash")
            if dh is None:
                s.failed[t.number] = "no design_hash recorded for this trial (made by an older dse)"
                continue
            key = cache_key(dh, self.backend, self.settings)
            earlier = [cache_key(dh, self.backend, e) for e in self.earlier_settings]
            if self.records.cached_measurement(key) is None:  # measured by an earlier dse: its entry, under today's key
                found = next((entry for k in earlier if (entry := self.records.cached_measurement(k)) is not None), None)
                if found is not None:
                    self.records.store_measurement(key, found)
            own = self.records.cached_measurement(key) is None and self._own_figures(record, (key, *earlier))
            if own:
                self.records.store_measurement(key, own)
                s.own.append(t.number)
            if self.records.cached_measurement(key) is not None:
                self.records.mark_measured(self.backend, t.number, key)
                s.cached.append(t.number)
                if self.profile:  # its figures come from the cache; its profiling plots still need a worker
                    self.profile_only.append(t)
            else:
                todo.append((t, key))
        return todo

    def _own_figures(self, record: TrialRecord, keys: tuple[str, ...]) -> dict[str, Any] | None:
        """The trial's own figures as this backend's measurement, or ``None`` when they are not that.

        They are when the trial ran with this backend as its figure backend and the same resource
        settings (tag ``figure_key`` one of ``keys``: today's key, or the key an earlier dse gave
        the same measurement; trials of a dse before 2026-12-06 have none) and every
        metric of that report (tag ``figure_metrics``) is recorded. Named as a re-measurement names
        them: ``<backend>_<metric>`` (extras that carry the prefix keep their name), with
        ``<backend>_<metric>_source`` tags.
        """
        tags, b = record.tags, self.backend
        names = [n for n in tags.get("figure_metrics", "").split(",") if n]
        if tags.get("figure_key") not in keys or not names or any(n not in record.metrics for n in names):
            return None
        metrics = {n if n.startswith(f"{b}_") else f"{b}_{n}": record.metrics[n] for n in names}
        if f"seconds_resources_{b}" in record.metrics:
            metrics[f"seconds_resources_{b}"] = record.metrics[f"seconds_resources_{b}"]
        # each figure's own source (Yosys' latency_cycles is da4ml's stage count, source da4ml)
        sources = {f"{b}_{n}_source": tags[f"{n}_source"] for n in names if f"{n}_source" in tags}
        return {"metrics": metrics, "tags": sources}

    def spec(self, t: optuna.trial.FrozenTrial, *, measure: bool = True):
        """The :class:`~dse.trial._remeasure.RemeasureSpec` for trial ``t``: its recorded parameters, run and scratch folder."""
        from dse.trial._remeasure import RemeasureSpec

        work = self.exp.resolved_run_dir / "synth" / self.backend / f"trial_{t.number:05d}"
        r = TrialRecord.of(t)
        return RemeasureSpec(self.exp, self.backend, t.number, r.run_id, r.params, work, self.profile, self.keep_files, measure,
                             self.backend_modules, self.import_folders, this_code())

    def submit(self, t: optuna.trial.FrozenTrial, splits_ref, *, measure: bool = True):
        """Start the Ray task measuring ``t`` (or, ``measure=False``, only profiling it; Ray must be initialized);
        returns its object ref."""
        import ray

        from dse.trial._remeasure import remeasure_trial

        if self._remote is None:
            self._remote = ray.remote(max_calls=1, max_retries=self.exp.ray.max_retries, **trial_resources(self.exp.ray))(remeasure_trial)
        return self._remote.remote(self.spec(t, measure=measure), splits_ref)

    def record_profile(self, number: int, ref) -> None:
        """Collect a profile-only task (a cached trial): a failure is a warning, its figures stand."""
        import ray

        try:
            error = ray.get(ref).error
        except Exception as e:
            error = f"WorkerError: {type(e).__name__}: {e}"
        if error:
            log.warning("could not profile trial %d: %s", number, error)
        else:
            self.summary.profiled.append(number)

    def record(self, number: int, key: str, ref) -> None:
        """Collect a finished task: store its figures in the cache, or its error in the summary."""
        import ray

        from dse.trial._remeasure import RemeasureResult

        try:
            res: RemeasureResult = ray.get(ref)
        except Exception as e:
            res = RemeasureResult(number, self.backend, error=f"WorkerError: {type(e).__name__}: {e}")
        if res.error and res.error.startswith("WorkerCodeError: "):  # every later task would run that code too
            raise WorkerCodeError(res.error.removeprefix("WorkerCodeError: ") + "; measurements made before are kept")
        if res.error:
            self.summary.failed[number] = res.error
            log.warning("%s could not measure trial %d: %s", self.backend, number, res.error)
            return
        self.records.store_measurement(key, {"metrics": res.metrics, "tags": res.tags})
        self.records.mark_measured(self.backend, number, key)
        self.summary.launched.append(number)
        if self.profile:
            self.summary.profiled.append(number)

    def finish(self) -> SynthesisSummary:
        """Log cache hits into their runs, recompute the precise front and publish it."""
        s = self.summary
        measured = self.records.measurements(self.backend)
        for n in s.cached:  # a design measured under another trial number still belongs in this run
            _log_cached(self.study, self.exp, self.backend, n, measured[n])
        s.front = precise_front(self.study, self.backend, list(self.exp.constraints))
        if not s.front:
            s.no_front = empty_precise_front_reason(self.study, self.backend, list(self.exp.constraints))
        s.front_csv = _publish(self.study, self.exp, self.backend, s.front)
        s.seconds = time.time() - self._t0
        return s


def synthesize(
    study_name: str,
    storage: str,
    backend: str,
    *,
    trials: list[int] | None = None,
    front: bool = False,
    profile: bool = False,
    keep_files: bool = False,
    synthesis_timeout_s: float | None = None,
    tracking_uri: str | None = None,
    ray_address: str | None = None,
) -> SynthesisSummary:
    """Re-measure finished trials with ``backend`` and recompute the front on its figures.

    Each selected trial whose design (hash of weights, quantizers and hls4ml config) was
    measured before with the same backend and settings is taken from the cache in the study
    storage; the others run as Ray tasks in parallel. Figures go to each trial's MLflow run as
    ``<backend>_<metric>``; the precise front goes to the parent run as
    ``pareto_front_<backend>.csv`` and as ``pareto_<backend>`` tags.

    Args:
        study_name: the study's name.
        storage: its Optuna storage URL (``sqlite:///runs/<name>/optuna.db``, ...).
        backend: a precise resource backend (:func:`dse.resources.precise_backend_names`:
            ``da4ml``, ``yosys``, ``vivado``, ``vitis``, or a user's).
        trials: numbers of COMPLETE trials to re-measure (``[0, 3]``).
        front: re-measure the study's Pareto front too (with ``trials``: both).
        profile: also log hls4ml's profiling plots of each selected trial to its MLflow run.
        keep_files: keep each measurement's RTL, project and logs under ``<run_dir>/synth``.
        synthesis_timeout_s: seconds per tool run (Yosys, Vivado HLS, Vitis), in place of the study's ``resources.synthesis_timeout_s``;
            not part of a measurement's cache key.
        tracking_uri: where the study's MLflow runs are now, in place of the recorded URI (as ``dse export``'s).
        ray_address: the Ray to measure on in place of the stored ``ray.address``; ``"local"`` starts a local
            Ray on this machine whatever ``RAY_ADDRESS`` says (a study run on a cluster that is gone).

    Returns:
        What was measured, taken from the cache or the trials' own figures, and what failed.

    Raises:
        TypeError: ``trials`` is not a list of ints, ``front``, ``profile`` or ``keep_files`` not a bool,
            ``synthesis_timeout_s`` not a number or ``ray_address`` not a string.
        StudyNotFoundError: no such study.
        StorageError: ``storage`` is not a usable URL or journal file, or cannot be read (:func:`load_study`).
        ConfigError: unknown trial numbers, nothing selected, unknown backend or one that is no
            re-measurement (``ebops``), ``synthesis_timeout_s`` not above 0, a part the backend cannot target.
        TrackingError: ``tracking_uri`` (or the recorded one) names no MLflow store that holds the study's runs.
        ClusterUnreachableError: nothing listens at ``ray_address``.
        ClusterError: the Ray to measure on did not start or could not be joined.
        ToolNotFoundError: with a local Ray, the backend's executable is not on PATH (nothing is measured).
        DatasetUnavailableError: the study's dataset cannot be fetched or its file is missing (``dataset.path``).
        DatasetError: the study's dataset is malformed (:func:`dse.data.load_dataset`).
        DriverTerminated: SIGTERM (as ``KeyboardInterrupt`` is Ctrl-C): the trials measured before it keep their figures
            (cached: a rerun takes them without measuring again).
    """
    from dse.data import load_dataset

    if trials is not None:
        trials = expect_trial_numbers("trials", trials)
    for arg, value in (("front", front), ("profile", profile), ("keep_files", keep_files)):  # probe 33: front="yes" passed
        expect(arg, value, bool, f"pass {arg}=True or {arg}=False")
    if synthesis_timeout_s is not None:
        expect("synthesis_timeout_s", synthesis_timeout_s, (int, float), "give seconds > 0, e.g. 3600")
        if not synthesis_timeout_s > 0:
            raise ConfigError(f"--synthesis-timeout-s (Python: synthesis_timeout_s=): {synthesis_timeout_s!r} is not > 0; give seconds, e.g. 3600")
    if ray_address is not None:
        from dse.study._preflight import check_ray_address

        expect("ray_address", ray_address, str, "give 'local', 'auto' or host:port")
        check_ray_address(ray_address, field="--ray-address (Python: ray_address=)")  # one TCP connection: a typo fails here, not in ray.init
    study = load_study(study_name, storage)
    exp = located_experiment(study, storage, tracking_uri, ray_address)
    if synthesis_timeout_s is not None:
        exp = exp.model_copy(update={"resources": exp.resources.model_copy(update={"synthesis_timeout_s": float(synthesis_timeout_s)})})
    rm = Remeasurer(study, exp, backend, profile=profile, keep_files=keep_files)
    todo = rm.plan(_select(study, trials, front))
    _say_unused_options(rm)
    if todo:
        try:
            rm.impl.check_target(exp.hls4ml)
        except MeasurementError as e:  # every trial would fail so, after Ray's start
            raise ConfigError(f"--backend (Python: backend=): {backend!r} cannot measure this study's designs: {e}") from e
    if todo or rm.profile_only:
        if todo and cluster_address(exp.ray) is None:  # a local Ray's workers share this PATH
            rm.impl.check_tools(exp.resources)  # a missing tool now, not after Ray's start on every worker
        splits = load_dataset(exp.dataset)
        from dse.study._orchestrator import _TERMINATED, _on_sigterm_raise, _sigterm_raises

        with ExitStack() as stack:
            # SIGTERM stops as Ctrl-C does, as DriverTerminated (probe 44: Ray's own handler exited 1, the status of a
            # failed measurement, without a word)
            stack.enter_context(_sigterm_raises())
            try:
                _enter_ray(stack, exp, stored_address=ray_address is None)
                _on_sigterm_raise()  # ray.init replaced it
                _measure_all(rm, exp, splits, todo)
            except KeyboardInterrupt:
                if _TERMINATED.is_set():
                    raise DriverTerminated("dse synthesize received SIGTERM") from None
                raise
    summary = rm.finish()
    if keep_files and summary.launched:
        summary.kept = exp.resolved_run_dir / "synth" / backend
    return summary


def _measure_all(rm: "Remeasurer", exp: ExperimentConfig, splits, todo) -> None:
    """Run ``todo``'s re-measurements and ``rm``'s profile-only tasks on the Ray now running, recording each as it ends."""
    import ray

    if cluster_address(exp.ray) is None:  # a local Ray must hold one task's resources, or ray.get waits for ever
        from dse.study._orchestrator import _check_trial_fits

        _check_trial_fits(exp, ray.cluster_resources())
    splits_ref = ray.put(splits)
    refs = [(t.number, key, rm.submit(t, splits_ref)) for t, key in todo]
    profiles = [(t.number, rm.submit(t, splits_ref, measure=False)) for t in rm.profile_only]
    log.info("%s: measuring %d trials, profiling %d cached ones on Ray", rm.backend, len(refs), len(profiles))
    for number, key, ref in refs:
        rm.record(number, key, ref)
    for number, ref in profiles:
        rm.record_profile(number, ref)


def _enter_ray(stack: ExitStack, exp: ExperimentConfig, stored_address: bool) -> None:
    """Enter :func:`ray_session` on ``stack``; the study's stored cluster that cannot be joined (gone since the study ran)
    names ``--ray-address local`` (``stored_address``: no ``--ray-address`` was given)."""
    try:
        stack.enter_context(ray_session(exp.ray, exp.resolved_run_dir))
    except ClusterError as e:
        if not stored_address or exp.ray.address is None or cluster_address(exp.ray) is None:
            raise
        raise ClusterError(f"{e}. The study ran on that cluster (ray.address {exp.ray.address!r}); to measure on this machine "
                           "instead, pass --ray-address local (ray_address='local')") from e


def _say_unused_options(rm: Remeasurer) -> None:
    """Log the trials that ``profile`` / ``keep_files`` could not apply to (before: silently nothing)."""
    s = rm.summary
    if s.own:
        log.info("%s: trials %s already carry %s figures from their own run (resources.backend %r, same settings); "
                 "taken as their %s measurement, no tool run", rm.backend, s.own, rm.backend, rm.exp.resources.backend, rm.backend)
    if rm.keep_files and s.cached:
        log.warning("--keep-files: trials %s were answered from the cache (their designs were measured before, or by their own "
                    "run), so %s did not run for them and there are no RTL or logs to keep", sorted(s.cached), rm.backend)
    if rm.profile and s.skipped:
        log.warning("--profile: trials %s were not profiled: %s does not measure their Strategy, so they were not converted "
                    "for it (%s)", sorted(s.skipped), rm.backend, "; ".join(f"{n}: {why}" for n, why in sorted(s.skipped.items())))


def _log_cached(study: optuna.Study, exp: ExperimentConfig, backend: str, number: int, entry: dict[str, Any]) -> None:
    from dse.tracking import TrialRunLogger

    logger = TrialRunLogger(exp.tracking_uri, StudyRecords(study).trial(number).run_id)
    if f"{backend}_lut" not in logger.client.get_run(logger.run_id).data.metrics:
        logger.log_results(entry["metrics"], entry["tags"])


def _publish(study: optuna.Study, exp: ExperimentConfig, backend: str, front: list[int]) -> Path | None:
    """Tag ``pareto_<backend>`` on measured runs and attach the precise front CSV to the parent run.

    Returns:
        The CSV written, or ``None`` when the study has no MLflow parent run or no trial was
        measured with ``backend`` (no front on its figures, so no file).
    """
    from dse.report import front_frame
    from dse.tracking import StudyTracker

    records = StudyRecords(study)
    parent = records.parent_run_id
    if parent is None or not records.measurements(backend):
        return None
    tracker = StudyTracker(exp.tracking_uri, exp.mlflow.experiment_name or exp.name, parent_run_id=parent)
    measured = records.measurements(backend)
    ids = {r.number: r.run_id for r in records.trials() if r.number in measured}  # one read of the trials, not one per trial
    tracker.mark_pareto({ids[n] for n in front}, list(ids.values()), tag=f"pareto_{backend}", parent_run_id=parent)
    path = exp.resolved_run_dir / f"pareto_front_{backend}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    front_frame(study, numbers=front, with_measurements=True).to_csv(path, index=False)
    tracker.log_study_artifact(parent, path, {})
    return path
