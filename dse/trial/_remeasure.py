"""Re-measure a finished trial with a more precise resource backend, in a Ray worker.

The worker downloads the trial's ``model.keras`` and ``hls4ml_config.yaml`` from its MLflow
run (no disk shared with the driver), measures, and logs the figures back to the same run as
``<backend>_<metric>`` metrics with ``<backend>_<metric>_source`` tags.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from dse._code import CodeIdentity, check_same_code
from dse.config import ExperimentConfig, Hls4mlConfig, TrialParams
from dse.exceptions import DseError, WorkerCodeError

if TYPE_CHECKING:
    from dse.data import Splits

__all__ = ["RemeasureSpec", "RemeasureResult", "remeasure_trial"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RemeasureSpec:
    """One re-measurement.

    Attributes:
        experiment: the study's experiment.
        backend: resource backend name (``da4ml``, ``yosys``, ``vivado``, ``vitis``).
        number: Optuna trial number.
        run_id: the trial's MLflow child run.
        params: the trial's parameters.
        work_dir: scratch folder on the worker (removed afterwards unless ``keep_files``).
        profile: also log hls4ml's numerical profiling plots as artifacts under ``profiling/``.
        keep_files: keep ``work_dir``.
        measure: run the backend (``False``: profile only, for a design whose figures are cached).
        backend_modules: the modules the worker imports first: ``resources.backend_modules``, plus
            the module of a user's ``backend`` they do not list (registered by the driver's script
            from an importable module).
        import_folders: where the driver found those modules
            (:func:`dse.resources.backend_module_folders`), for the worker's ``sys.path``.
        code: the driver's ``dse`` code (:func:`dse._code.this_code`): a worker that imported other code measures
            nothing and says so (:class:`~dse.exceptions.WorkerCodeError`); ``None`` checks nothing.
    """

    experiment: ExperimentConfig
    backend: str
    number: int
    run_id: str
    params: TrialParams
    work_dir: Path
    profile: bool = False
    keep_files: bool = False
    measure: bool = True
    backend_modules: tuple[str, ...] = ()
    import_folders: tuple[str, ...] = ()
    code: CodeIdentity | None = None


@dataclass
class RemeasureResult:
    """Figures measured for one trial: ``metrics`` as ``<backend>_<metric>``, ``tags`` with their sources."""

    number: int
    backend: str
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    error: str | None = None


def _profile(model, hls_cfg: dict, hls: "Hls4mlConfig", x, out: Path, logger) -> str:
    """hls4ml's numerical profiling (weights and activations against their types) as PNG artifacts.

    Converts a copy of the design with ``Trace: True`` on every layer (hls4ml needs it to
    profile activations; this compiles the C simulation once more). hls4ml cannot profile a
    distributed_arithmetic graph, so such designs are profiled as Latency: the numeric types
    are HGQ2's in both. If hls4ml still fails, the Keras-only profile (no type boxes) is logged.

    Returns:
        ``"hls4ml"`` or ``"keras-only: <why>"``.
    """
    import copy

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from hls4ml.model.profiling import numerical

    from dse.trial._hls import convert

    out.mkdir(parents=True, exist_ok=True)
    traced = copy.deepcopy(hls_cfg)
    traced["Model"]["Strategy"] = "Latency" if traced["Model"].get("Strategy") == "distributed_arithmetic" else traced["Model"]["Strategy"]
    for layer_cfg in traced.get("LayerName", {}).values():
        layer_cfg["Trace"] = True
        if layer_cfg.get("Strategy") == "distributed_arithmetic":
            layer_cfg["Strategy"] = "Latency"
    try:
        hls_model = convert(model, traced, hls, out / "hls4ml_prj")
        figs = numerical(model=model, hls_model=hls_model, X=x)
        names = ("weights_before_optimization", "weights", "activations_before_optimization", "activations")
        kind = "hls4ml"
    except Exception as e:
        plt.close("all")
        figs = numerical(model=model, X=x)
        names = ("weights", "", "activations", "")
        kind = f"keras-only: {type(e).__name__}: {e}"
    for name, fig in zip(names, figs):
        if fig is not None and name:
            fig.savefig(out / f"{name}.png", dpi=80, bbox_inches="tight")
            logger.log_artifact(out / f"{name}.png", "profiling")
    plt.close("all")
    return kind


def remeasure_trial(spec: RemeasureSpec, splits: "Splits") -> RemeasureResult:
    """Measure one finished trial with ``spec.backend`` and log the figures to its MLflow run.

    Returns:
        The result; ``error`` is set (and nothing invented) when the measurement fails.
    """
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import yaml

    from dse.resources import Design, get_backend, import_backend_modules
    from dse.tracking import TrialRunLogger
    from dse.trial._hls import convert, recorded_settings

    exp, name = spec.experiment, spec.backend
    result = RemeasureResult(spec.number, name)
    logger = TrialRunLogger(exp.tracking_uri, spec.run_id)
    work = spec.work_dir
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    t0 = time.perf_counter()
    try:
        check_same_code(spec.code)
        import hgq  # noqa: F401  (registers HGQ2 layers for load_model)
        import keras

        import_backend_modules(spec.backend_modules, spec.import_folders)
        client = logger.client
        model = keras.models.load_model(client.download_artifacts(spec.run_id, "model.keras", str(work)))
        record = yaml.safe_load(Path(client.download_artifacts(spec.run_id, "hls4ml_config.yaml", str(work))).read_text())
        # the part, clock, backend and IOType the trial was built for (the review of stop 45: the study's current ones,
        # after an --allow-changed change, while the figures were cached under the trial's own design hash)
        hls = recorded_settings(record, exp.hls4ml)
        if spec.measure:
            ebops = client.get_run(spec.run_id).data.metrics["ebops"]
            hls_model = None
            if type(get_backend(name)).needs_hls_model:  # (audit: a user's backend got None here, a model in the trial)
                hls_model = convert(model, record["HLSConfig"], hls, work / "hls4ml_prj")
                hls_model.write()
            design = Design(model, spec.params, hls, exp.resources, float(ebops), work, splits.X_test, hls_model)
            report = get_backend(name).measure_checked(design)
            # figures get the backend's prefix (da4ml_lut beside the estimate's lut); extras that carry it already
            # keep their name (da4ml_cost, not da4ml_da4ml_cost)
            result.metrics = {k if k.startswith(f"{name}_") else f"{name}_{k}": v for k, v in report.metrics().items()}
            result.metrics[f"seconds_resources_{name}"] = time.perf_counter() - t0
            result.tags = {f"{name}_{k}": v for k, v in report.source_tags().items()}
            logger.log_results(result.metrics, result.tags)
        if spec.profile:
            try:
                kind = _profile(model, record["HLSConfig"], hls, splits.X_test[:1000], work / "profiling", logger)
                logger.set_tags({"profiling": kind[:500]})
            except Exception as e:  # profiling is a convenience: report, do not fail the measurement
                log.warning("trial %d: profiling failed: %s", spec.number, e)
                logger.set_tags({"profiling_error": f"{type(e).__name__}: {e}"[:500]})
    except Exception as e:
        result.error = f"{type(e).__name__}: {e}"
        tags = {f"{name}_error": result.error[:5000]}
        if not isinstance(e, DseError):  # hls4ml's, a tool's or a bug: keep the traceback (as a trial does)
            text = traceback.format_exc()
            log.warning("re-measuring trial %d failed with %s, which dse did not raise itself:\n%s", spec.number,
                        type(e).__name__, text)
            tags[f"{name}_error_traceback"] = text[-5000:]
        try:
            if not isinstance(e, WorkerCodeError):  # not the design's: the driver stops on it, the run keeps no tag
                logger.set_tags(tags)
        except Exception as logging_error:  # the result still goes back to the driver, which reports the error
            log.warning("re-measuring trial %d: could not tag its MLflow run with the error: %s", spec.number, logging_error)
    if not spec.keep_files:
        shutil.rmtree(work, ignore_errors=True)
    return result
