"""The one owner of what ``dse`` persists in an Optuna study.

Everything ``dse`` keeps in the Optuna storage (and so shares between drivers, workers and
later commands) is written and read here, nowhere else. The Optuna user-attribute keys are
private to this module:

Study level
    ``experiment`` (the experiment as JSON), ``search_space`` (the search space's contents),
    ``mlflow_parent_run_id``, ``mlflow_tracking_uri``, ``cache:<backend>:<design>:<settings>``
    (a precise measurement), ``measured:<backend>:<trial>`` (which cache entry a trial has).
    The front on a backend's figures is not stored: :func:`dse.study.precise_front` computes it
    from these (studies of an older dse hold a ``front:<backend>`` entry that nothing reads).
Trial level
    ``params`` (the resolved :class:`~dse.config.TrialParams` the trial trained with,
    ``model_dump()``), ``pinned`` (names pinned by a rule or a condition's default),
    ``metrics``, ``tags``, ``mlflow_run_id``, ``fail_reason``, ``heartbeat`` (``{"driver": id,
    "time": unix seconds}``, refreshed by the driver while the trial runs), ``harvested_from``
    and ``harvest_epoch`` (a checkpoint kept along trial N's beta ramp, added as its own
    trial: :func:`harvested_trial`); constraint values go through
    Optuna's own ``Trial.set_constraint`` so that samplers and ``best_trials`` see them.

Readers never rebuild parameters from Optuna's raw ``trial.params`` (which hold sampler
encodings such as ``beta_is_zero``); studies written before the ``params`` record existed
are read through a documented fallback (:func:`_legacy_params`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import optuna
from optuna.trial import FrozenTrial, TrialState
from pydantic import ValidationError

from dse._args import is_real_number
from dse.config import ConstraintConfig, ExperimentConfig, SearchSpace, TrialParams, redact_secrets
from dse.exceptions import ConfigError

__all__ = [
    "StudyRecords", "TrialRecord", "constraint_values", "current_source_labels", "objective_values", "harvested_trial", "is_harvested", "is_not_evaluated", "record_heartbeat", "record_trial_params",
    "record_trial_run", "record_trial_result", "within_constraints", "precise_broken", "TRIAL_DEFINING_FIELDS",
]

log = logging.getLogger(__name__)

#: (study name, problem) of stored experiments warned about in this process (:meth:`StudyRecords.experiment`)
_WARNED_STORED: set[tuple[str, str]] = set()

_EXPERIMENT = "experiment"
_SPACE = "search_space"
_DATASET = "dataset"  # digest and shape of the data the trials train on (dse.data.dataset_record)
_HISTORY = "experiment_history"  # the experiments --allow-changed replaced (StudyRecords.experiment_history)
_PARENT = "mlflow_parent_run_id"
_TRACKING = "mlflow_tracking_uri"
_CACHE = "cache:"
_MEASURED = "measured:"

_PARAMS = "params"
_PINNED = "pinned"
_METRICS = "metrics"
_TAGS = "tags"
_RUN_ID = "mlflow_run_id"
_FAIL = "fail_reason"
#: prefixes of the ``fail_reason`` of FAIL trials that were never evaluated and were re-enqueued
NOT_EVALUATED = ("DriverLostError", "TrialInterruptedError")
_HEARTBEAT = "heartbeat"
_HARVESTED_FROM = "harvested_from"
_HARVEST_EPOCH = "harvest_epoch"
_LEGACY_FIXED = "fixed_params"

#: Experiment fields that decide what a trial is; a rerun that changes one is refused
#: unless ``--allow-changed`` (Ray Tune refuses a changed search space on restore likewise).
#: ``constraints`` among them: Optuna stores each trial's constraint values when it finishes
#: and cannot change them later, so earlier trials would keep their feasibility under the old budget.
#: The ``resources`` settings that decide a trial's figures are among them (``resources.backend`` changed from
#: ``auto`` to ``ebops`` put EBOPs-estimated LUTs beside da4ml's on one front, without a word); its timeout, its
#: ``synthesize_front`` and its modules do not change a figure.
TRIAL_DEFINING_FIELDS = (
    "dataset", "model", "training", "search_space", "objectives", "constraints", "hls4ml",
    "resources.backend", "resources.dsp_threshold_bits", "resources.da4ml_latency_cutoff", "resources.vsynth",
)


# ---------------------------------------------------------------- trial writes (live trials)


def record_trial_params(trial: optuna.Trial, params: TrialParams, pinned: dict[str, Any]) -> None:
    """Store the resolved parameters a trial trains with, and which of them were pinned.

    Args:
        trial: the live trial (from ``study.ask()``).
        params: the parameters exactly as the worker receives them.
        pinned: parameters pinned by a rule or a condition's default (name -> value).
    """
    trial.set_user_attr(_PARAMS, params.model_dump(mode="json"))
    trial.set_user_attr(_PINNED, sorted(pinned))


def record_trial_run(trial: optuna.Trial, run_id: str) -> None:
    """Store the MLflow child run id of a trial."""
    trial.set_user_attr(_RUN_ID, run_id)


def record_heartbeat(trial: optuna.Trial, driver_id: str, now: float, process: Mapping[str, Any] | None = None) -> None:
    """Stamp a running trial with its driver's id and the time (unix seconds).

    Optuna's own heartbeat only runs inside ``study.optimize``; an ask/tell driver owns the
    equivalent (see :meth:`StudyRecords.stale_trials`).

    Args:
        trial: the running trial.
        driver_id: the id of the driver running it.
        now: the time, s since the epoch (``time.time()``).
        process: where the driver runs, stored with the stamp so that a driver on the same
            machine can tell at once that it died (:func:`dse.study._liveness.this_driver`).
    """
    trial.set_user_attr(_HEARTBEAT, {"driver": driver_id, "time": now, **(process or {})})


def objective_values(objectives: list, metrics: dict[str, Any]) -> list[float]:
    """The values to tell Optuna for a measured record, in objective order.

    Args:
        objectives: the experiment's objectives (:class:`dse.config.ObjectiveConfig`).
        metrics: the record's metrics.

    Raises:
        MeasurementError: an objective is missing from ``metrics``, not a number, or not finite
            (Optuna would fail such a trial with no reason, or rank it).
    """
    from dse.exceptions import MeasurementError

    values = []
    for o in objectives:
        if o.metric not in metrics:
            raise MeasurementError(f"objective {o.metric!r} missing from the trial's metrics")
        v = metrics[o.metric]
        if not is_real_number(v):
            raise MeasurementError(f"objective {o.metric!r} is {v!r} ({type(v).__name__}), not a number")
        if not math.isfinite(float(v)):
            raise MeasurementError(f"objective {o.metric!r} is {float(v)}, not a finite number")
        values.append(float(v))
    return values


def constraint_values(constraints: list[ConstraintConfig], metrics: dict[str, float]) -> dict[str, float]:
    """Optuna constraint values (feasible when <= 0) for a trial's metrics.

    ``max: M`` gives ``value - M``; ``min: m`` gives ``m - value``. A constraint on a metric
    the trial did not measure is violated with ``+inf``: a budget that cannot be shown to hold
    is not held.

    Returns:
        ``{"<metric>_max": v, "<metric>_min": v}`` for each bound given.
    """
    out: dict[str, float] = {}
    for c in constraints:
        value = metrics.get(c.metric)
        ok = value is not None and math.isfinite(float(value))
        if c.max is not None:
            out[f"{c.metric}_max"] = float(value) - c.max if ok else math.inf
        if c.min is not None:
            out[f"{c.metric}_min"] = c.min - float(value) if ok else math.inf
    return out


def within_constraints(constraints: list[ConstraintConfig], metrics: dict[str, float]) -> bool:
    """True when every constraint value of ``metrics`` is <= 0 (see :func:`constraint_values`); True without constraints."""
    return all(v <= 0 for v in constraint_values(constraints, metrics).values())


def precise_broken(entry: dict[str, Any], backend: str, constraints: list[ConstraintConfig]) -> list[str]:
    """The study's constraints that a trial's re-measurement by ``backend`` breaks, on the metrics it re-measured.

    Args:
        entry: the trial's measurement (``{"metrics": {"<backend>_lut": ...}, ...}``).
        backend: the precise backend.
        constraints: the study's constraints.

    Returns:
        ``["yosys_lut 3,697 > max 3,660"]``, one per bound broken; empty when every re-measured figure holds.
    """
    m, out = entry["metrics"], []
    for c in constraints:
        key = f"{backend}_{c.metric}"
        if key not in m:
            continue
        for bound_key, v in constraint_values([c], {c.metric: m[key]}).items():
            if v > 0:
                side = bound_key.rpartition("_")[2]
                out.append(_bound_text(key, float(m[key]) if math.isfinite(v) else None, side, getattr(c, side)))
    return out


def _bound_text(name: str, value: float | None, side: str, bound: float | None) -> str:
    """A broken bound as the messages give it: ``"lut 77,742 > max 50,000"``; ``"lut not measured"`` (``value`` None)."""
    if value is None:
        return f"{name} not measured"
    return f"{name} {value:,.6g} {'>' if side == 'max' else '<'} {side} {bound:,.6g}"


def record_trial_result(
    trial: optuna.Trial,
    metrics: dict[str, float],
    tags: dict[str, str],
    *,
    constraints: list[ConstraintConfig] = (),  # type: ignore[assignment]
    fail_reason: str | None = None,
) -> dict[str, float]:
    """Store a finished trial's metrics, tags, constraint values (if any) and failure reason.

    Call before ``study.tell``. Constraint values are set with ``Trial.set_constraint`` only
    for a trial that completes (Optuna requires constraints of every COMPLETE trial in a
    constrained study).

    Returns:
        The constraint values set (empty for a failed trial or an unconstrained study).
    """
    trial.set_user_attr(_METRICS, metrics)
    trial.set_user_attr(_TAGS, tags)
    if fail_reason is not None:
        trial.set_user_attr(_FAIL, fail_reason)
        return {}
    values = constraint_values(list(constraints), metrics)
    for key, v in values.items():
        trial.set_constraint(key, v)
    return values


def harvested_trial(
    parent: optuna.Trial | FrozenTrial,
    epoch: int,
    values: list[float],
    metrics: dict[str, float],
    tags: dict[str, str],
    run_id: str | None,
    constraints: list[ConstraintConfig] = (),  # type: ignore[assignment]
) -> FrozenTrial:
    """A COMPLETE trial for a checkpoint kept at ``epoch`` along trial ``parent``'s beta ramp, for ``study.add_trial``.

    It carries the parent's parameters and distributions (the checkpoint was trained with
    them, up to ``epoch``), its own metrics, tags, MLflow run and constraint values, and
    ``harvested_from`` / ``harvest_epoch``. Genetic samplers (NSGA-II) leave it out of their
    populations (it has no generation); TPE and random see it as one more observation.

    Args:
        parent: the trial the checkpoint comes from (live or frozen).
        epoch: 0-based epoch at whose end the checkpoint was saved.
        values: objective values, in objective order.
        metrics: the checkpoint's measured metrics.
        tags: its tags (sources, csim, ...).
        run_id: its MLflow run, or ``None`` without one.
        constraints: the study's constraints (its constraint values are computed from ``metrics``).
    """
    attrs = parent.user_attrs
    return optuna.trial.create_trial(
        values=values,
        params=dict(parent.params),
        distributions=dict(parent.distributions),
        user_attrs={
            _PARAMS: attrs.get(_PARAMS), _PINNED: attrs.get(_PINNED, []), _METRICS: metrics, _TAGS: tags, _RUN_ID: run_id,
            _HARVESTED_FROM: parent.number, _HARVEST_EPOCH: int(epoch),
        },
        constraints=constraint_values(list(constraints), metrics) or None,
    )


def is_harvested(t: FrozenTrial) -> bool:
    """True for a trial added by :func:`harvested_trial` (not asked from the sampler, not counted in ``n_trials``)."""
    return _HARVESTED_FROM in t.user_attrs


def is_not_evaluated(t: FrozenTrial) -> bool:
    """True for a FAIL trial that was never evaluated and was re-enqueued: its driver was lost
    (``DriverLostError``) or stopped while it ran (``TrialInterruptedError``). Such trials do not
    count towards ``n_trials``."""
    return t.state == TrialState.FAIL and str(t.user_attrs.get(_FAIL, "")).startswith(NOT_EVALUATED)


# ---------------------------------------------------------------- trial reads


def _legacy_params(t: FrozenTrial) -> TrialParams:
    """Parameters of a trial recorded before the ``params`` record existed.

    Optuna's raw ``params`` plus the pinned ``fixed_params``; ``<name>_is_zero = True``
    (the encoding of ``include_zero``) is read back as ``<name> = 0``.
    """
    values: dict[str, Any] = dict(t.user_attrs.get(_LEGACY_FIXED) or {})
    for k, v in t.params.items():
        if k.endswith("_is_zero"):
            if v:
                values[k.removesuffix("_is_zero")] = 0.0
            continue
        if values.get(k) != 0.0 or f"{k}_is_zero" not in t.params:
            values[k] = v
    return TrialParams(**{k: v for k, v in values.items() if k in TrialParams.model_fields and v is not None})


@dataclass(frozen=True)
class TrialRecord:
    """What ``dse`` recorded about one trial, read back from the study.

    Attributes:
        number: Optuna trial number.
        state: Optuna state name (``COMPLETE``, ``FAIL``, ``RUNNING``, ``WAITING``).
        values: objective values (COMPLETE trials), in objective order.
        params: the resolved parameters the trial trained with (``None`` if never recorded).
        pinned: names of parameters pinned by a rule or a condition's default.
        metrics: every number the trial measured (accuracies as fractions, LUTs, cycles, seconds).
        tags: string tags (``<metric>_source``, ``strategy``, ``design_hash``, ...).
        run_id: the trial's MLflow child run.
        fail_reason: why it failed (``"TrainingDivergedError: ..."``).
        constraints: Optuna constraint values (feasible when all are <= 0).
        harvested_from: for a checkpoint kept along another trial's beta ramp, that trial's number.
        harvest_epoch: the 0-based epoch of that checkpoint.
    """

    number: int
    state: str
    values: list[float] | None
    params: TrialParams | None
    pinned: list[str]
    metrics: dict[str, float]
    tags: dict[str, str]
    run_id: str | None
    fail_reason: str | None
    constraints: dict[str, float] = field(default_factory=dict)
    harvested_from: int | None = None
    harvest_epoch: int | None = None

    @property
    def trained_by(self) -> int:
        """The number of the trial whose training made this one's model: its own, or for a harvested checkpoint its
        parent's (whose seed, experiment version and training curves it shares)."""
        return self.number if self.harvested_from is None else self.harvested_from

    @property
    def feasible(self) -> bool:
        """True when every constraint holds (or there are none)."""
        return all(v <= 0 for v in self.constraints.values())

    def broken_constraints(self) -> list[str]:
        """The bounds this trial was told it broke when it finished, read back from its stored
        constraint values (``<metric>_max`` = value - max, ``<metric>_min`` = min - value; see
        :func:`constraint_values`), so they stay right after the study's constraints changed.

        Returns:
            ``["lut 77,742 > max 50,000", "latency_cycles not measured"]``, by key; empty when feasible.
        """
        return [_bound_text(metric, value, side, bound) for metric, side, value, bound, _ in self.bounds_broken()]

    def bounds_broken(self) -> list[tuple[str, str, float | None, float | None, float]]:
        """The bounds this trial was told it broke, as :meth:`broken_constraints` reads them, one tuple each.

        Returns:
            ``(metric, side ("max"/"min"), value (None: not measured), bound (None: not known), by how much (inf:
            not measured))``, by key; empty when feasible.
        """
        out = []
        for key, v in sorted(self.constraints.items()):
            if v <= 0:
                continue
            metric, _, side = key.rpartition("_")
            value = self.metrics.get(metric)
            if value is None or not math.isfinite(v):
                out.append((metric, side, None, None, math.inf))
            else:
                out.append((metric, side, float(value), value - v if side == "max" else value + v, v))
        return out

    @classmethod
    def of(cls, t: FrozenTrial) -> "TrialRecord":
        """Read the record of a frozen Optuna trial."""
        attrs = t.user_attrs
        raw = attrs.get(_PARAMS)
        if raw is not None:
            params: TrialParams | None = TrialParams.model_validate(raw)
        elif t.params or attrs.get(_LEGACY_FIXED):
            try:
                params = _legacy_params(t)
            except ValueError:  # raw parameters no design can be built from (such a trial failed before its record)
                params = None
        else:
            params = None
        pinned = attrs.get(_PINNED)
        if pinned is None:
            pinned = sorted(attrs.get(_LEGACY_FIXED) or {})
        return cls(
            number=t.number,
            state=t.state.name,
            values=list(t.values) if t.values is not None else None,
            params=params,
            pinned=list(pinned),
            metrics=dict(attrs.get(_METRICS) or {}),
            tags=current_source_labels(dict(attrs.get(_TAGS) or {})),
            run_id=attrs.get(_RUN_ID),
            fail_reason=attrs.get(_FAIL),
            constraints=dict(t.constraints),
            harvested_from=attrs.get(_HARVESTED_FROM),
            harvest_epoch=attrs.get(_HARVEST_EPOCH),
        )


# ---------------------------------------------------------------- study level


class StudyRecords:
    """Reads and writes the study-level records of one Optuna study.

    Args:
        study: the study (any Optuna storage).
    """

    def __init__(self, study: optuna.Study):
        self.study = study
        self._warned_backends = False

    # experiment ------------------------------------------------------------
    def save_experiment(self, exp: ExperimentConfig, space: SearchSpace, dataset: dict[str, Any] | None = None,
                        changed: list[str] | None = None) -> None:
        """Store the experiment (storage URL redacted by the caller if needed), the search space contents and the dataset's digest.

        Args:
            exp: the experiment the study runs with.
            space: its search space (its contents are stored, not its path).
            dataset: a :func:`dse.data.dataset_record`; its ``digest``, ``inputs_digest`` and ``shape`` are kept.
            changed: what differs from the stored experiment (:meth:`experiment_diff`, accepted by
                ``--allow-changed``): the stored one is then kept in :meth:`experiment_history` (before
                2026-12-07 it was replaced, and what built the earlier trials was recorded nowhere).
        """
        if changed and _EXPERIMENT in self.study.user_attrs:
            attrs = self.study.user_attrs
            history = self.experiment_history()
            trials = self.study.get_trials(deepcopy=False)
            # the first trial the new experiment builds: an enqueued one still WAITING runs with it
            until = min([t.number for t in trials if t.state == TrialState.WAITING], default=len(trials))
            history.append({
                "version": len(history) + 1, "until_trial": until, "changed": list(changed),
                # passwords masked: the history is a record (after a password's rotation the old one stayed in it)
                "experiment": redact_secrets(attrs[_EXPERIMENT]), "search_space": attrs.get(_SPACE), "dataset": attrs.get(_DATASET),
            })
            self.study.set_user_attr(_HISTORY, history)
        self.study.set_user_attr(_EXPERIMENT, exp.model_dump(mode="json"))
        self.study.set_user_attr(_SPACE, space.model_dump(mode="json", exclude_defaults=False))
        if dataset is not None:
            self.study.set_user_attr(_DATASET, {"digest": dataset["digest"], "inputs_digest": dataset.get("inputs_digest"),
                                                "shape": list(dataset["shape"])})

    def experiment_history(self) -> list[dict[str, Any]]:
        """The experiments ``dse run --allow-changed`` replaced, oldest first.

        Returns:
            One dict per replaced experiment: ``version`` (1 for the study's first), ``until_trial`` (the first trial
            the next one built: the study's trial count when it was replaced, or its first WAITING trial; with one
            driver, trials numbered below it ran with this experiment or an earlier one; each trial run's tag
            ``dse.experiment_version`` says which, also with several drivers), ``changed``
            (the differences accepted, ``"training.epochs: 3 -> 4"``), and the stored ``experiment``, ``search_space``
            and ``dataset`` records as they were. Empty when the experiment never changed.
        """
        return list(self.study.user_attrs.get(_HISTORY) or [])

    def experiment_of_version(self, version: int | str | None, trial: int | None = None) -> tuple[ExperimentConfig, str | None]:
        """The experiment of ``version`` (a trial run's ``dse.experiment_version`` tag) and its dataset digest, read as
        :meth:`experiment` reads the current one; the current one where ``version`` is not a number or not an earlier
        version.

        Args:
            version: the trial run's ``dse.experiment_version`` tag; ``None`` where the run has none (a dse before
                that tag made the trial).
            trial: with ``version`` ``None``, the trial's number (a harvested checkpoint's: its parent's): the version
                is then the first replaced experiment whose ``until_trial`` is above it (:meth:`experiment_history`;
                exact with one driver), else the current one. Before, such a trial of a study continued with
                ``--allow-changed`` was read with the latest experiment (probe 39: an export's testbench from
                another split, its README with another epoch count).

        Raises:
            ConfigError: as :meth:`experiment`.
        """
        from dse.config import read_stored_experiment

        history = self.experiment_history()
        if version is None and trial is not None:
            version = next((i + 1 for i, h in enumerate(history) if isinstance(u := h.get("until_trial"), int) and trial < u), None)
        try:
            entry = history[int(version) - 1] if 1 <= int(version) <= len(history) else None  # type: ignore[arg-type]
        except (TypeError, ValueError):
            entry = None
        if entry is None:
            return self.experiment(reading=True), self.dataset_digest()
        from pydantic import ValidationError

        from dse.config._loading import format_validation_error

        try:
            exp, _ = read_stored_experiment(entry["experiment"])
        except ValidationError as e:  # as `experiment` words it (probe 33: pydantic's error escaped)
            raise ConfigError(
                f"experiment version {int(version)} stored with study {self.study.study_name!r} (before trial "
                f"{entry.get('until_trial')}) does not validate here (made by another dse version, or it names something "
                f"this process cannot load):\n{format_validation_error(e)}") from e
        return exp, (entry.get("dataset") or {}).get("digest")

    def experiment_version(self) -> int:
        """The number of the experiment the study runs with now: 1, plus one per change :meth:`experiment_history` holds."""
        return len(self.experiment_history()) + 1

    def update_experiment(self, exp: ExperimentConfig) -> None:
        """Store ``exp`` as the study's experiment, leaving its stored search space and dataset digest as they are."""
        self.study.set_user_attr(_EXPERIMENT, exp.model_dump(mode="json"))

    def has_experiment(self) -> bool:
        """Whether ``dse run`` stored its experiment with the study (a study it made)."""
        return _EXPERIMENT in self.study.user_attrs

    def experiment(self, reading: bool = False) -> ExperimentConfig:
        """The experiment the study was run with.

        Args:
            reading: to read the study's stored results (report, compare, export, status), not
                to measure with it: a ``resources.backend_modules`` module that does not import
                here is then warned about once, not an error (see
                :func:`dse.config.read_stored_experiment`).

        Raises:
            ConfigError: the study was not created by ``dse run``, or its stored experiment no longer validates.
        """
        from pydantic import ValidationError

        from dse.config import read_stored_experiment
        from dse.config._loading import format_validation_error

        data = self.study.user_attrs.get(_EXPERIMENT)
        if data is None:
            raise ConfigError(f"study {self.study.study_name!r} has no stored experiment; it was not created by `dse run`")
        try:
            if not reading:
                return ExperimentConfig.model_validate(data)
            exp, problem = read_stored_experiment(data)
            if problem and not self._warned_backends and (self.study.study_name, problem) not in _WARNED_STORED:
                self._warned_backends = True
                _WARNED_STORED.add((self.study.study_name, problem))  # once per process: readers build their own records
                log.warning("study %s: %s; its stored figures are read as they are%s", self.study.study_name, problem,
                            " (measuring with them, `dse synthesize` or `dse calibrate`, needs the module)"
                            if problem.startswith("its resource backends") else "")
            return exp
        except ValidationError as e:
            raise ConfigError(
                f"the experiment stored with study {self.study.study_name!r} does not validate here (made by another dse version, "
                f"or it names something this process cannot load):\n"
                f"{format_validation_error(e)}"
            ) from e

    def search_space(self) -> dict[str, Any] | None:
        """The stored search space contents (a dict), or ``None`` for studies of older ``dse`` versions."""
        return self.study.user_attrs.get(_SPACE)

    def stored_space_problem(self) -> str | None:
        """Why the stored search space does not validate with this dse (its rules changed since the study began), else None."""
        from pydantic import ValidationError

        from dse.config._loading import format_validation_error

        stored = self.search_space()
        if stored is None:
            return None
        try:
            SearchSpace.model_validate(stored)
        except ValidationError as e:
            return " ".join(format_validation_error(e).split())
        return None

    def experiment_diff(self, exp: ExperimentConfig, space: SearchSpace, dataset: dict[str, Any] | None = None) -> list[str]:
        """Differences in :data:`TRIAL_DEFINING_FIELDS` between the stored experiment and ``exp``.

        The search space is compared by contents, not by file path; the data, given ``dataset``
        (a :func:`dse.data.dataset_record`), by digest, so a dataset file replaced in place is a change.

        Returns:
            One line per differing leaf field, ``"training.epochs: 15 -> 20"``; empty when equal
            or when nothing was stored yet.
        """
        old = self.study.user_attrs.get(_EXPERIMENT)
        if old is None:
            return []
        try:  # fields added since the study was stored read as their defaults, not as changes
            old = ExperimentConfig.model_validate(old).model_dump(mode="json")
        except ValidationError:  # no longer validates: compare what was stored
            pass
        new = exp.model_dump(mode="json")
        lines: list[str] = []
        for key in TRIAL_DEFINING_FIELDS:
            if key == "search_space":
                before = self.search_space()
                if before is not None:
                    lines += _diff(before, space.model_dump(mode="json"), key)
            else:
                lines += _diff(_dotted(old, key), _dotted(new, key), key)
        stored = self.study.user_attrs.get(_DATASET)
        if dataset is not None and stored is not None and stored.get("digest") != dataset["digest"]:
            lines.append(f"dataset contents (digest of the data trials train on): {stored.get('digest')} -> {dataset['digest']}, "
                         f"shape {stored.get('shape')} -> {list(dataset['shape'])}")
        elif dataset is not None and stored is not None and stored.get("inputs_digest") not in (None, dataset.get("inputs_digest")):
            # a study stored before 2026-12-07 has no inputs digest: compared from its next run on
            lines.append(f"dataset inputs (digest of the feature names, class names and the standardization of raw features, "
                         f"e.g. a column in other units or renamed): {stored['inputs_digest']} -> {dataset.get('inputs_digest')}")
        return lines

    def dataset_digest(self) -> str | None:
        """The digest of the data the study's trials train and test on (:func:`dse.data.dataset_record`), if stored."""
        return (self.study.user_attrs.get(_DATASET) or {}).get("digest")

    # tracking --------------------------------------------------------------
    def set_tracking(self, parent_run_id: str, tracking_uri: str) -> None:
        """Store the MLflow parent run of the study and the tracking URI it lives in."""
        self.study.set_user_attr(_PARENT, parent_run_id)
        self.study.set_user_attr(_TRACKING, tracking_uri)

    @property
    def parent_run_id(self) -> str | None:
        """The study's MLflow parent run id, if stored (:meth:`set_tracking`)."""
        return self.study.user_attrs.get(_PARENT)

    @property
    def tracking_uri(self) -> str | None:
        """The tracking URI the study's parent run was created in (as the driver resolved it), if stored."""
        return self.study.user_attrs.get(_TRACKING)

    # trials ----------------------------------------------------------------
    def trials(self, states: tuple[TrialState, ...] | None = None) -> list[TrialRecord]:
        """Records of the study's trials (optionally of some states), by number."""
        return [TrialRecord.of(t) for t in self.study.get_trials(deepcopy=False, states=states)]

    def trial(self, number: int) -> TrialRecord:
        """Trial ``number``'s record (raises ``IndexError`` for a number the study does not have, negative ones too)."""
        trials = self.study.get_trials(deepcopy=False)  # ``study.trials`` deep-copies every trial for the one asked
        if not 0 <= number < len(trials):  # before, -1 was the last trial
            raise IndexError(f"study {self.study.study_name!r} has no trial {number} (it has trials 0 to {len(trials) - 1})")
        return TrialRecord.of(trials[number])

    def told_feasible_breaking(self, constraints: list[ConstraintConfig]) -> list[tuple[int, str]]:
        """COMPLETE trials Optuna holds as feasible whose recorded metrics break ``constraints``.

        A trial finished without constraints (or under looser ones) was told feasible, and
        Optuna keeps that; these are the trials that new or tightened ``constraints`` would
        leave on the front.

        Returns:
            ``(trial number, "lut 57184 > max 50000")`` for each such trial, by number; empty
            without ``constraints``.
        """
        out = []
        for r in self.trials((TrialState.COMPLETE,)) if constraints else []:
            if r.feasible and not within_constraints(constraints, r.metrics):
                broken = next(c for c in constraints if not within_constraints([c], r.metrics))
                value = r.metrics.get(broken.metric)
                shown = "not measured" if value is None else f"{value:g}"
                bound = (f"> max {broken.max:g}" if broken.max is not None and value is not None and value > broken.max
                         else f"< min {broken.min:g}" if value is not None else "")
                out.append((r.number, f"{broken.metric} {shown} {bound}".strip()))
        return out

    def told_infeasible_meeting(self, constraints: list[ConstraintConfig]) -> list[int]:
        """COMPLETE trials told infeasible when they finished whose recorded metrics meet ``constraints``.

        Optuna keeps a finished trial's constraint values, so after a budget was loosened these
        trials stay off the front although they now fit it.

        Returns:
            Their numbers, in order; empty without ``constraints``.
        """
        return [r.number for r in (self.trials((TrialState.COMPLETE,)) if constraints else [])
                if not r.feasible and within_constraints(constraints, r.metrics)]

    def stale_trials(
        self, grace_s: float, now: float, *, exclude_driver: str | None = None, dead: Callable[[Mapping[str, Any]], bool] | None = None,
    ) -> list[FrozenTrial]:
        """RUNNING trials whose driver stopped sending heartbeats more than ``grace_s`` seconds ago, or is known dead.

        A RUNNING trial without any heartbeat (an older ``dse``) counts as stale once it
        started more than ``grace_s`` ago. Trials of ``exclude_driver`` are never stale.

        Args:
            grace_s: seconds without a heartbeat after which a driver counts as gone.
            now: the current time, s since the epoch (``time.time()``).
            exclude_driver: the id of a driver whose trials are never stale (the caller's own).
            dead: called with a trial's heartbeat; ``True`` makes the trial stale at once
                (its driver's process is gone: :func:`dse.study._liveness.driver_is_dead`).
        """
        out = []
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            beat = t.user_attrs.get(_HEARTBEAT)
            if beat is not None:
                if beat.get("driver") == exclude_driver:
                    continue
                if dead is not None and dead(beat):
                    out.append(t)
                    continue
            if now - self.last_heartbeat_time(t) > grace_s:
                out.append(t)
        return out

    @staticmethod
    def last_heartbeat_time(t: FrozenTrial) -> float:
        """When ``t``'s driver last stamped it (s since the epoch); its start for a trial without a heartbeat (an older
        ``dse``), 0 without either."""
        beat = t.user_attrs.get(_HEARTBEAT)
        if beat is not None:
            return float(beat.get("time", 0))
        return t.datetime_start.timestamp() if t.datetime_start else 0.0

    @staticmethod
    def heartbeat_of(t: FrozenTrial) -> dict[str, Any]:
        """The last heartbeat stamped on ``t`` (:func:`record_heartbeat`), ``{}`` if none."""
        return dict(t.user_attrs.get(_HEARTBEAT) or {})

    def live_trial(self, t: FrozenTrial) -> optuna.Trial:
        """A writable handle on a trial another (dead) driver asked, to record and tell its end."""
        return optuna.trial.Trial(self.study, t._trial_id)

    # precise re-measurements ----------------------------------------------
    def cached_measurement(self, key: str) -> dict[str, Any] | None:
        """The cached measurement ``{"metrics": ..., "tags": ...}`` under ``key`` (see :func:`dse.resources._cache.cache_key`;
        tags as :func:`current_source_labels` reads them)."""
        return _relabelled(self.study.user_attrs.get(_CACHE + key))

    def store_measurement(self, key: str, entry: dict[str, Any]) -> None:
        """Cache a re-measurement under ``key`` (:func:`dse.resources._cache.cache_key`): ``entry`` holds its
        ``metrics`` and ``tags``, so the same design measured again with the same backend and settings is read back."""
        self.study.set_user_attr(_CACHE + key, entry)

    def mark_measured(self, backend: str, number: int, key: str) -> None:
        """Record that trial ``number``'s figures on ``backend`` are the cache entry ``key``."""
        self.study.set_user_attr(f"{_MEASURED}{backend}:{number}", key)

    def measured_backends(self) -> list[str]:
        """Backends that re-measured at least one trial."""
        return sorted({k.split(":")[1] for k in self.study.user_attrs if k.startswith(_MEASURED)})

    def measurements(self, backend: str) -> dict[int, dict[str, Any]]:
        """Trial number -> ``{"metrics": {"<backend>_lut": ...}, "tags": {"<backend>_lut_source": ...}}``."""
        attrs = self.study.user_attrs
        out: dict[int, dict[str, Any]] = {}
        for key, cache in attrs.items():
            if key.startswith(f"{_MEASURED}{backend}:"):
                entry = attrs.get(_CACHE + cache)
                if entry:
                    out[int(key.rsplit(":", 1)[1])] = _relabelled(entry)
        return out



def current_source_labels(tags: dict[str, Any]) -> dict[str, Any]:
    """``tags`` with source labels a dse before 2026-12-07 wrote mislabelled read as they are meant.

    Yosys' ``latency_cycles`` is da4ml's pipeline-stage count of the RTL it synthesizes (Yosys does no timing); it was
    tagged ``yosys`` (``latency_cycles_source`` of a trial measured with ``resources.backend: yosys``,
    ``yosys_latency_cycles_source`` of a re-measurement), so a comparison with a da4ml-measured study called the two
    equal computations "not comparable". Read as ``da4ml``. A copy; ``tags`` is left as stored.
    """
    legacy = [k for k in ("latency_cycles_source", "yosys_latency_cycles_source") if tags.get(k) == "yosys"]
    return {**tags, **{k: "da4ml" for k in legacy}} if legacy else tags


def _relabelled(entry: dict[str, Any] | None) -> dict[str, Any] | None:
    """A cached measurement ``entry`` with its tags read by :func:`current_source_labels` (``None`` stays ``None``)."""
    return {**entry, "tags": current_source_labels(entry.get("tags") or {})} if entry else entry


def _dotted(d: Any, key: str) -> Any:
    """``d["resources"]["backend"]`` for ``"resources.backend"``; ``None`` where a level is missing."""
    for part in key.split("."):
        d = d.get(part) if isinstance(d, dict) else None
    return d


def _diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    """Leaf differences between two JSON values, as ``"path: old -> new"`` lines."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for k in list(dict.fromkeys([*a, *b])):
            out += _diff(a.get(k), b.get(k), f"{prefix}.{k}" if prefix else str(k))
        return out
    if a != b:
        return [f"{prefix}: {a!r} -> {b!r}"]
    return []
