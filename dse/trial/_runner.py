"""One trial, end to end: build, train, trace, convert, C-simulate, measure, log.

:func:`run_trial` runs inside a fresh Ray worker process. It logs everything to the trial's
MLflow child run itself and returns a small :class:`TrialResult` to the driver.
"""

from __future__ import annotations

import gc
import logging
import os
import shutil
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np

from dse._code import CodeIdentity, check_same_code
from dse.config import ExperimentConfig, TrialParams
from dse.exceptions import DseError, MeasurementError, WorkerCodeError, disk_full_cause, full_path

if TYPE_CHECKING:
    from dse.data import Splits
    from dse.trial._harvest import HarvestedResult

__all__ = ["TrialSpec", "TrialResult", "run_trial"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrialSpec:
    """What the driver sends to a worker for one trial.

    Attributes:
        experiment: the validated experiment.
        params: the sampled (and pinned) parameters.
        number: the Optuna trial number.
        run_id: the MLflow child run to log into.
        work_dir: a folder of this trial's own on the worker (created, removed unless ``keep_files``).
        num_threads: TensorFlow intra-op threads (the CPUs Ray gave this task).
        keep_files: keep the hls4ml project and saved model on the worker's disk.
        front: objective values of the study's feasible Pareto front at dispatch time, for
            ``hls4ml.csim: front`` (:func:`dse.trial._csim.csim_decision`); ``None``: unknown.
        import_folders: where the driver found ``resources.backend_modules``
            (:func:`dse.resources.backend_module_folders`), for the worker's ``sys.path``.
        code: the driver's ``dse`` code (:func:`dse._code.this_code`): a worker that imported other code fails the
            trial with :class:`~dse.exceptions.WorkerCodeError` before it trains; ``None`` checks nothing.
    """

    experiment: ExperimentConfig
    params: TrialParams
    number: int
    run_id: str
    work_dir: Path
    num_threads: int = 1
    keep_files: bool = False
    front: tuple[tuple[float, ...], ...] | None = None
    import_folders: tuple[str, ...] = ()
    code: CodeIdentity | None = None


#: Tag of a trial that failed because a disk it wrote to was full (its work folder, the MLflow store): the design was
#: not at fault, so the driver re-enqueues it and stops the study (every later trial would fail the same way).
DISK_FULL_TAG = "disk_full"

#: Tag of a trial whose worker imported other ``dse`` code than the driver's (:class:`~dse.exceptions.WorkerCodeError`):
#: the driver re-enqueues it and stops the study (every later trial would run that code too).
CODE_MISMATCH_TAG = "code_mismatch"


@dataclass
class TrialResult:
    """What a worker returns for one trial.

    Attributes:
        number: Optuna trial number.
        state: ``"COMPLETE"`` or ``"FAIL"``.
        metrics: every measured number (accuracy as a fraction, ebops, lut, dsp, ... ,
            ``seconds_<step>``). A failed measurement is absent, never filled in.
        tags: string tags, including ``<metric>_source`` for each resource figure.
        error: why the trial failed (``"TrainingDivergedError: ..."``), else ``None``.
        harvested: the checkpoints kept along the beta ramp (``training.harvest_checkpoints``),
            each measured and logged to its own MLflow run.
    """

    number: int
    state: str
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    harvested: list["HarvestedResult"] = field(default_factory=list)

    @classmethod
    def failed(cls, number: int, error: Exception) -> "TrialResult":
        """A FAIL result for a trial that ended without a worker result (lost worker, timeout, driver stop)."""
        return cls(number, "FAIL", tags={"error_type": type(error).__name__}, error=f"{type(error).__name__}: {error}"[:2000])


class _Steps:
    """Times named steps into ``metrics['seconds_<step>']`` (seconds of wall time).

    With ``work_dir``, each step's start is also written to the trial's ``steps.json``
    (:func:`dse.trial._progress.write_step_progress`, with the steps of ``before`` and those finished
    here), for the driver to name the step of a trial that timed out or whose worker died.
    """

    def __init__(self, metrics: dict[str, float], work_dir: Path | None = None, run_id: str = "", suffix: str = "",
                 before: dict[str, float] | None = None):
        self.metrics = metrics
        self.work_dir, self.run_id, self.suffix, self.before = work_dir, run_id, suffix, before or {}
        self.names: list[str] = []  # the steps timed here, in order (metrics also hold extras: seconds_synthesis)

    def finished(self) -> dict[str, float]:
        """The steps timed here so far, step -> wall seconds, in the order they ran."""
        return {n: self.metrics[f"seconds_{n}"] for n in self.names if f"seconds_{n}" in self.metrics}

    def note(self, name: str) -> None:
        """Write that step ``name`` starts, untimed (``log``: MLflow calls between the timed steps)."""
        if self.work_dir is not None:
            from dse.trial._progress import write_step_progress

            # a checkpoint's own steps carry the suffix: the trial's (in before) keep their names and seconds
            here = {k + self.suffix: v for k, v in self.finished().items()}
            write_step_progress(self.work_dir, self.run_id, name + self.suffix, {**self.before, **here})

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        self.note(name)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.metrics[f"seconds_{name}"] = time.perf_counter() - t0
            if name not in self.names:
                self.names.append(name)
            log.info("trial step %s: %.2f s", name, self.metrics[f"seconds_{name}"])


def _import_keras():
    """Import Keras (TensorFlow under it) without the scikit-learn it loads for its wrappers alone.

    ``import tensorflow`` loads ``keras._tf_keras``, and ``keras.wrappers`` imports scikit-learn
    where it is installed (``keras/src/wrappers/fixes.py``: ``try: import sklearn`` / ``except
    ImportError: sklearn = None``): 0.8-1.0 s of CPU per fresh worker process on this project's
    2-core machine, for the ``SKLearnClassifier`` wrappers that no trial uses. While Keras is
    imported, ``sys.modules["sklearn"]`` holds ``None`` (Python's way to make an import fail
    as if the package were absent); the entry is removed afterwards, so later code that imports
    scikit-learn gets it. Only Keras' scikit-learn wrappers stay disabled in this process.
    A process that has already imported Keras or scikit-learn (a driver, a test) is left as it is.

    Returns:
        The ``keras`` module.
    """
    import sys

    if "keras" not in sys.modules and "sklearn" not in sys.modules:
        sys.modules["sklearn"] = None  # type: ignore[assignment]
        try:
            import keras  # noqa: F401
        finally:
            if "sklearn" in sys.modules and sys.modules["sklearn"] is None:
                del sys.modules["sklearn"]
    import keras

    return keras


def _configure_threads(n: int) -> None:
    import tensorflow as tf

    if tf.config.threading.get_intra_op_parallelism_threads() == n:
        return  # a warm worker, configured by an earlier trial
    try:
        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # already initialized in this process; keep what is set
        log.warning("TensorFlow threads already configured in this process")


def _ray_node_tag() -> dict[str, str]:
    """``{"ray_node_id": <hex id>}`` of the Ray node running this trial, or ``{}`` outside Ray."""
    import sys

    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return {}
    return {"ray_node_id": ray.get_runtime_context().get_node_id()}


def _accuracy(out: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(out, axis=1) == y))


def beta_per_epoch(params: TrialParams, n_epochs: int, epochs: int) -> list[float]:
    """The beta HGQ2's ``BetaScheduler`` set at the start of each of the ``n_epochs`` epochs run.

    Evaluates ``PieceWiseSchedule(beta_schedule(params, epochs))`` at epochs 0..n_epochs-1, as
    the callback does in ``on_epoch_begin``.
    """
    from hgq.utils.sugar import PieceWiseSchedule

    from dse.trial._train import beta_schedule

    sched = PieceWiseSchedule(beta_schedule(params, epochs))
    return [float(sched(i)) for i in range(n_epochs)]


def _log_data_record(logger, exp: ExperimentConfig, splits: "Splits") -> None:
    """Log ``preprocessing.json`` (standardization and class names) and the MLflow dataset input."""
    from dse.data import dataset_record

    pre = splits.preprocessing
    if pre is not None:
        logger.log_dict({**pre.to_json(), "dataset": exp.dataset.name}, "preprocessing.json")
    logger.log_dataset(dataset_record(exp.dataset.name, splits))


def _measure(design, configured: str, metrics: dict[str, float], tags: dict[str, str], step: _Steps) -> None:
    """Measure ``design``; the figures of :func:`dse.resources.figure_backend` become its ``lut``/``dsp``/...

    The EBOPs estimate always runs (instant); for distributed_arithmetic designs da4ml's cost
    model always runs too (about 0.5 s), its numbers kept as ``da4ml_*`` extras. The chosen
    backend's figures replace the estimate's, each labelled by its ``<metric>_source`` tag, and
    ``resource_source`` names the source of ``lut``.

    Tags ``figure_backend`` (the chosen backend), ``figure_key`` (the cache key a re-measurement
    of this design with it would have: :func:`dse.resources._cache.cache_key`) and
    ``figure_metrics`` (the names of its report's metrics), so that ``dse synthesize`` with
    the same backend takes these figures instead of measuring the design again.
    """
    from dse.resources import figure_backend, get_backend
    from dse.resources._cache import cache_key, measurement_settings

    strategy = design.params.strategy
    chosen = figure_backend(strategy, configured)
    names = ["ebops"] + (["da4ml"] if strategy == "distributed_arithmetic" else []) + [chosen]
    for name in dict.fromkeys(names):
        backend = get_backend(name)
        with step(f"resources_{name}"):
            report = backend.measure_checked(design)
        if name == chosen and name != "ebops":  # a figure it declares but left out is absent, not the estimate's (the
            # review of stop 45: a user's backend without its declared dsp kept the EBOPs estimate's, unsaid)
            for figure in set(type(backend).figures or ()) - set(report.figures):
                if tags.get(f"{figure}_source") == "ebops-estimate":
                    metrics.pop(figure, None)
                    tags.pop(f"{figure}_source", None)
        if name in ("ebops", chosen):
            metrics.update(report.metrics())
            tags.update(report.source_tags())
            tags["resource_source"] = report.figures["lut"].source
        else:
            metrics.update(report.extras)
        if name == chosen:
            tags["figure_metrics"] = ",".join(sorted(report.metrics()))
    tags["figure_backend"] = chosen
    if "design_hash" in tags:
        tags["figure_key"] = cache_key(tags["design_hash"], chosen, measurement_settings(design.resources))


def _conversion_deferred(exp: ExperimentConfig, params: TrialParams) -> bool:
    """Whether a trial converts with hls4ml only after its measurement, and only where it may join the front.

    True for a distributed_arithmetic design under ``hls4ml.csim: front`` whose figures come from a backend that needs
    no hls4ml model (da4ml's, Yosys'): da4ml's emulation checks it bit-exactly and da4ml measures it, so the hls4ml
    model of a design that cannot join the front would serve nothing. Its conversion is then the step
    ``convert_hls4ml`` (``seconds_convert`` times the configuration alone), and its tag ``hls4ml_convert`` says
    ``run``, ``failed`` or why it was left to ``dse export`` (which converts every design it exports). A design judged
    at dispatch time can still reach a front unconverted: one left out as infeasible after ``--allow-changed``
    relaxed the constraints, or one on a front of re-measured figures (``dse synthesize``). hls4ml's
    distributed_arithmetic conversion solves each Dense layer's constant-matrix multiplication with da4ml again:
    0.8 s of a quickstart trial (64-32-16-10, 2026-12-07), 103 s of a 784-32-16-10 trial whose da4ml measurement
    took 98 s (probe 41).
    """
    if params.strategy != "distributed_arithmetic" or exp.hls4ml.csim != "front":
        return False
    from dse.resources import backend_class, figure_backend

    return not backend_class(figure_backend(params.strategy, exp.resources.backend)).needs_hls_model


def _evaluate(model, spec: TrialSpec, splits: "Splits", logger, work: Path, metrics: dict[str, float], tags: dict[str, str],
              step: _Steps, front) -> None:
    """Trace, save, convert, measure and (as ``hls4ml.csim`` decides) C-simulate a trained ``model``, filling ``metrics``/``tags``.

    Raises:
        MeasurementError: an objective was not measured; any exception of a step.
    """
    from hgq.utils import trace_minmax

    from dse.resources import Design, keras_outputs
    from dse.resources._cache import design_hash
    from dse.trial._csim import EMULATED, SIMULATED, csim_decision, front_verdict
    from dse.trial._hls import compile_model, conversion_record, convert, hls4ml_config, release

    exp, params = spec.experiment, spec.params
    work.mkdir(parents=True, exist_ok=True)
    with step("trace"):
        calib = splits.X_train[: exp.training.calibration_samples]
        ebops = float(trace_minmax(model, calib))
        metrics["ebops"] = ebops
        keras_out = keras_outputs(model, splits.X_test)
        metrics["keras_accuracy"] = _accuracy(keras_out, splits.y_test)
        # the validation split's, which the objectives select on (the test split judges them: README, which split selects)
        keras_val_out = keras_outputs(model, splits.X_val)
        metrics["keras_val_accuracy"] = _accuracy(keras_val_out, splits.y_val)
    with step("save"):
        model_path = work / "model.keras"
        model.save(model_path)
        logger.log_artifact(model_path)
        _log_data_record(logger, exp, splits)
    with step("convert"):
        hls_cfg = hls4ml_config(model, params, exp.hls4ml)
        record = conversion_record(hls_cfg, exp.hls4ml)
        logger.log_dict(record, "hls4ml_config.yaml")
        tags["design_hash"] = design_hash(model, record)
        deferred = _conversion_deferred(exp, params)
        hls_model = None if deferred else convert(model, hls_cfg, exp.hls4ml, work / "hls4ml_prj")
    design = Design(model, params, exp.hls4ml, exp.resources, ebops, work, splits.X_test, hls_model, y_test=splits.y_test,
                    keras_out=keras_out, x_val=splits.X_val, y_val=splits.y_val)
    _measure(design, exp.resources.backend, metrics, tags, step)
    tags["csim"] = csim_decision(exp, metrics, front)
    if tags["csim"] == EMULATED:  # distributed_arithmetic: da4ml's bit-exact emulation, measured by _measure
        metrics["csim_accuracy"] = metrics["da4ml_accuracy"]
        metrics["csim_val_accuracy"] = metrics["da4ml_val_accuracy"]
        metrics["bit_exact_fraction"] = metrics["da4ml_bit_exact_fraction"]
        tags["csim_accuracy_source"] = "da4ml"
    elif tags["csim"] == SIMULATED:
        with step("compile"):
            compile_model(hls_model)
        with step("csim"):
            try:
                csim_out = np.asarray(hls_model.predict(np.ascontiguousarray(splits.X_test))).reshape(keras_out.shape)
                metrics["csim_accuracy"] = _accuracy(csim_out, splits.y_test)
                csim_val_out = np.asarray(hls_model.predict(np.ascontiguousarray(splits.X_val))).reshape(keras_val_out.shape)
                metrics["csim_val_accuracy"] = _accuracy(csim_val_out, splits.y_val)
                metrics["bit_exact_fraction"] = float(np.mean(csim_out == keras_out))  # on the test split, as da4ml's
            finally:  # also when a prediction fails: a warm worker would keep the library loaded (the review)
                release(hls_model)
        tags["csim_accuracy_source"] = "csim"
    else:  # not C-simulated: the Keras accuracy stands in, labelled as such
        metrics["csim_accuracy"] = metrics["keras_accuracy"]
        metrics["csim_val_accuracy"] = metrics["keras_val_accuracy"]
        tags["csim_accuracy_source"] = "keras"
    if deferred:  # (always EMULATED) converted where its emulated figures may join the front at dispatch time
        tags["hls4ml_convert"] = front_verdict(exp, metrics, front, stand_in=False)
        if tags["hls4ml_convert"] == SIMULATED:
            try:
                with step("convert_hls4ml"):
                    convert(model, hls_cfg, exp.hls4ml, work / "hls4ml_prj")
            except Exception:
                tags["hls4ml_convert"] = "failed"  # what `dse export` reads: no hls4ml project can be made of it
                raise
    missing = [o.metric for o in exp.objectives if o.metric not in metrics]
    if missing:
        from dse.resources import backend_class
        from dse.resources._registry import _is_dse

        chosen = tags.get("figure_backend", exp.resources.backend)
        cls = backend_class(chosen)
        declared = [m for m in missing if m in (cls.figures or ())]  # figures None: not declared
        if declared and not _is_dse(cls):  # a user's backend whose report left out a declared figure
            others = [m for m in missing if m not in declared]
            raise MeasurementError(
                f"objective(s) {declared} not in the report of resource backend {chosen!r} for Strategy {params.strategy}, "
                f"although the backend declares them in its `figures`; its measure() must report every declared figure "
                "(or leave it out of `figures`)" + (f"; and {others} are not measured by it: choose objectives that "
                                                   "backend measures" if others else "")
            )
        raise MeasurementError(
            f"objective(s) {missing} not measured by resource backend {exp.resources.backend!r} "
            f"for Strategy {params.strategy}; choose objectives that backend measures"
        )


#: MLflow tag of a FAIL run whose error dse did not raise itself: the traceback's last characters.
TRACEBACK_TAG = "error_traceback"


def _error_text(spec: TrialSpec, e: Exception, tags: dict[str, str]) -> str:
    """``"<ExceptionName>: <message>"``, the trial's ``fail_reason``. An error dse did not raise itself (hls4ml's, Keras',
    or a bug) also keeps its traceback in ``tags`` (:data:`TRACEBACK_TAG`) and the worker's log (audit: it was logged
    at DEBUG only, below the workers' level, so a bug in dse read as a failed design with nothing to trace it)."""
    if not isinstance(e, DseError):
        text = traceback.format_exc()
        log.warning("trial %d failed with %s, which dse did not raise itself:\n%s", spec.number, type(e).__name__, text)
        tags[TRACEBACK_TAG] = text[-5000:]
    return f"{type(e).__name__}: {e}"


def _log_outcome(logger, what: str, state: str, error: str | None, metrics: dict[str, float], tags: dict[str, str],
                 history: dict[str, list[float]] | None = None, end_run: bool = False) -> None:
    """Tag ``state`` (and ``error_type``), log metrics, curves and tags to ``logger``'s run, and end it if ``end_run``.

    MLflow trouble is logged and kept as the tag ``logging_error``, never raised: the driver
    still needs the result.
    """
    tags["state"] = state  # the MLflow run's state tag; the driver rewrites it only if its verdict differs
    from dse.tracking._mlflow import error_type  # the logger's module: MLflow is imported already

    if error and (kind := error_type(error)):
        tags["error_type"] = kind
    try:
        logger.log_results(metrics, tags, history, end=state if end_run else None, error=error)
    except Exception as e:
        log.error("%s: MLflow logging failed: %s", what, e)
        tags["logging_error"] = str(e)[:500]


def _harvest(model, spec: TrialSpec, splits: "Splits", logger, callback, history: dict[str, list[float]],
             trial_metrics: dict[str, float], base_tags: dict[str, str], trial_steps: dict[str, float] | None = None
             ) -> list["HarvestedResult"]:
    """Measure and log the Pareto-optimal checkpoints HGQ2's ``ParetoFront`` kept while the trial trained.

    ``trial_steps``: the trial's timed steps (step -> seconds), written before each checkpoint's own in the trial's
    ``steps.json``. Each checkpoint's weights are loaded into ``model`` and evaluated as a trial is
    (:func:`_evaluate`), into its own MLflow run (:meth:`~dse.tracking.TrialRunLogger.harvest_run`),
    which is ended here. A checkpoint that fails is returned as ``FAIL`` with its reason; the
    others go on. With ``hls4ml.csim: front``, the front a checkpoint is compared with includes
    the trial and the checkpoints measured before it.
    """
    from dse.trial._csim import front_values, update_front
    from dse.trial._harvest import HarvestedResult, select_checkpoints

    exp = spec.experiment
    directions = [o.direction for o in exp.objectives]
    front = list(spec.front) if spec.front is not None else None

    def join(metrics: dict[str, float]) -> None:
        nonlocal front
        values = front_values(exp, metrics)
        if front is not None and values is not None:
            front = update_front(front, values, directions)

    join(trial_metrics)
    n_epochs = len(history.get("loss", []))
    betas = history.get("beta", [])
    out: list[HarvestedResult] = []
    log.info("trial %d: ParetoFront kept %s", spec.number, ", ".join(
        f"{Path(p).name} (val_accuracy {float(a):.4f}, EBOPs {float(e):.0f})" for p, (a, e) in zip(callback.paths, callback.record)
    ) or "no checkpoint")
    final = (trial_metrics.get("keras_val_accuracy"), trial_metrics.get("ebops"))
    for cp in select_checkpoints(callback, exp.training.harvest_checkpoints, n_epochs - 1,
                                 final if None not in final else None):
        metrics: dict[str, float] = {"harvest_epoch": float(cp.epoch), "harvest_val_accuracy": cp.val_accuracy}
        if cp.epoch < len(betas):
            metrics["harvest_beta"] = betas[cp.epoch]
        tags = {**base_tags, "harvested_from": str(spec.number), "harvest_epoch": str(cp.epoch)}
        step = _Steps(metrics, spec.work_dir, spec.run_id, f" of the checkpoint of epoch {cp.epoch}",
                      before=trial_steps)
        error: str | None = None
        run_logger = None
        t0 = time.perf_counter()
        try:
            step.note("log")  # its MLflow run
            run_logger = logger.harvest_run(cp.epoch)
            with step("load"):
                model.load_weights(cp.path)
            _evaluate(model, spec, splits, run_logger, spec.work_dir / f"epoch_{cp.epoch:04d}", metrics, tags, step, front)
        except Exception as e:  # one checkpoint must not lose the others
            error = _error_text(spec, e, tags)
        metrics["seconds_total"] = time.perf_counter() - t0
        state = "FAIL" if error else "COMPLETE"
        if state == "COMPLETE":
            join(metrics)
        if run_logger is not None:
            step.note("log")
            _log_outcome(run_logger, f"trial {spec.number}, checkpoint of epoch {cp.epoch}", state, error, metrics, tags, end_run=True)
        elif error:
            from dse.tracking._mlflow import error_type

            if kind := error_type(error):  # always: _error_text writes "<ExceptionName>: <message>"
                tags["error_type"] = kind
        log.info("trial %d: checkpoint of epoch %d %s", spec.number, cp.epoch, state)
        out.append(HarvestedResult(cp.epoch, state, metrics, tags, run_logger.run_id if run_logger else None, error))
    return out


_imports_frozen = False


def _freeze_imports() -> None:
    """Once per process: move every object alive now (the modules of TensorFlow, Keras, HGQ2 and
    hls4ml, about 430,000 objects) to Python's permanent GC generation (:func:`gc.freeze`).

    Each trial of a warm worker starts with ``keras.backend.clear_session(free_memory=True)``,
    a full garbage collection; with the imports frozen it scans only what earlier trials left:
    0.04-0.15 s instead of 0.23-0.36 s for quickstart trials (measured here). The frozen
    objects live as long as the process anyway.
    """
    global _imports_frozen
    if not _imports_frozen:
        gc.collect()
        gc.freeze()
        _imports_frozen = True


def run_trial(spec: TrialSpec, splits: "Splits") -> TrialResult:
    """Run one trial and log it to MLflow run ``spec.run_id``.

    Steps (each timed as ``seconds_<step>``): check the hls4ml settings, build, train,
    ``trace_minmax`` (EBOPs), save the model, convert with hls4ml, measure resources, then
    (as ``hls4ml.csim`` decides, :func:`dse.trial._csim.csim_decision`) compile and
    C-simulate on the test and validation splits. Any exception makes the trial ``FAIL`` with its message;
    metrics measured before the failure are kept. Keras state is cleared first, so a warm
    worker process can run trial after trial; the initial weights and the training are
    seeded with ``experiment.seed + number`` (:meth:`~dse.config.ExperimentConfig.seed_for`), so a trial repeats on the same machine. With ``training.harvest_checkpoints``, the
    Pareto-optimal checkpoints along the beta ramp are then measured too
    (``TrialResult.harvested``).

    Args:
        spec: the trial's settings.
        splits: the dataset (Ray passes it from the object store).

    Returns:
        The result; never raises for a trial-level failure.
    """
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    from dse.tracking import TRACKING_FAILED_TAG, TrialRunLogger, is_tracking_failure

    exp, params = spec.experiment, spec.params
    metrics: dict[str, float] = {}
    base_tags: dict[str, str] = {
        "resource_backend": exp.resources.backend,
        "strategy": params.strategy,
        "worker_pid": str(os.getpid()),
        # the seed of its initial weights and training (experiment seed + trial number; a harvested checkpoint's is its
        # parent's), to rerun it (recorded nowhere but in the parent run's experiment seed)
        "seed": str(exp.seed_for(spec.number)),
        **_ray_node_tag(),
    }
    tags = dict(base_tags)
    logger = TrialRunLogger(exp.tracking_uri, spec.run_id)
    work = spec.work_dir
    work.mkdir(parents=True, exist_ok=True)
    from dse.trial._progress import read_step_progress

    earlier = read_step_progress(work, spec.run_id)  # another process's steps of this run: Ray retries a lost worker's
    if earlier is not None and earlier.pid != os.getpid():  # trial (probe 42: silently, its time and cause unsaid)
        tags["retried"] = f"its worker (pid {earlier.pid}) was lost in step {earlier.step}; Ray retried it (ray.max_retries)"
        log.warning("trial %d: %s", spec.number, tags["retried"])
    step = _Steps(metrics, work, spec.run_id)  # each step's start in work/steps.json, for a driver whose trial timed out
    error: str | None = None
    history: dict[str, list[float]] = {}
    callback = model = None
    t_start = time.perf_counter()
    try:
        with step("setup"):
            check_same_code(spec.code)  # before anything of this worker's dse trains, converts or logs
            if exp.resources.backend_modules:  # a user's backends register in this worker too, before it trains
                from dse.resources import import_backend_modules

                import_backend_modules(exp.resources.backend_modules, spec.import_folders)
            keras = _import_keras()
            keras.backend.clear_session(free_memory=True)  # a warm worker: drop the previous trial's graphs
            _configure_threads(spec.num_threads)
            import hgq.utils  # noqa: F401  (imported here so that setup, not trace, pays for it)
            import hls4ml  # noqa: F401  (likewise for convert)

            from dse.trial._hls import check_hls_settings
            from dse.trial._model import build_model, layer_sizes
            from dse.trial._train import train_model

            if exp.ray.reuse_workers:  # a single-use worker has no later collection to spare
                _freeze_imports()

            sizes = layer_sizes(exp.model, splits.n_features, splits.n_classes)
            check_hls_settings(params, sizes, exp.hls4ml)
        seed = exp.seed_for(spec.number)  # the trial's seed: its initial weights, then its training (train_model re-seeds)
        with step("build"):
            keras.utils.set_random_seed(seed)
            model = build_model(exp.model, params, splits.n_features, splits.n_classes)
        with step("train"):
            if exp.training.harvest_checkpoints:
                from dse.trial._harvest import pareto_callback

                callback = pareto_callback(work / "checkpoints")
            history = train_model(model, splits, exp.training, params, seed=seed,
                                  extra_callbacks=[callback] if callback is not None else None)
            history["beta"] = beta_per_epoch(params, len(history.get("loss", [])), exp.training.epochs)
        _evaluate(model, spec, splits, logger, work, metrics, tags, step, spec.front)
    except Exception as e:  # a trial must never take the study down
        error = _error_text(spec, e, tags)
        if is_tracking_failure(e):  # MLflow failed, not the design: the driver decides whether it was evaluated
            tags[TRACKING_FAILED_TAG] = "true"
        if (full := disk_full_cause(e)) is not None:  # nor is a full disk the design's fault; the tag names its file
            tags[DISK_FULL_TAG] = str(full_path(full) or "true")
        if isinstance(e, WorkerCodeError):  # nor the worker's import path
            tags[CODE_MISMATCH_TAG] = "true"
    metrics["seconds_total"] = time.perf_counter() - t_start
    state = "FAIL" if error else "COMPLETE"
    if state == "COMPLETE" and exp.constraints:  # the verdict the driver tells Optuna: tagged with the results, no call of its own
        from dse.store import within_constraints  # imported already by the C-simulation decision (dse.trial._csim)

        tags["feasible"] = "true" if within_constraints(exp.constraints, metrics) else "false"
    step.note("log")  # else a timeout in MLflow's calls would read as one in the last timed step
    _log_outcome(logger, f"trial {spec.number}", state, error, metrics, tags, history)
    harvested = []
    if callback is not None and state == "COMPLETE":
        harvested = _harvest(model, spec, splits, logger, callback, history, metrics, base_tags, step.finished())
    if not spec.keep_files:
        shutil.rmtree(work, ignore_errors=True)
    return TrialResult(spec.number, state, metrics, tags, error, harvested)


def _execute(spec: TrialSpec, splits: "Splits") -> TrialResult:
    """Body of the trial's Ray task: :func:`run_trial` with INFO logging.

    Defined here, not in :mod:`dse.study`, because Ray pickles it by reference: a new worker
    process imports only this module's package to run it, not the driver's (Optuna, the
    report stack), which saves about 1 s per new worker. The study loop looks it up as
    ``dse.study._orchestrator._execute`` when it starts (benchmarks swap in a trivial body there).
    """
    logging.basicConfig(level=logging.INFO)
    return run_trial(spec, splits)
