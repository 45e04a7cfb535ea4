"""The resource-backend interface and the figures it returns, each tagged with its source."""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from dse._args import is_real_number

if TYPE_CHECKING:
    import keras
    import numpy as np

    from dse.config import Hls4mlConfig, ResourcesConfig, TrialParams

__all__ = ["Figure", "ResourceReport", "Design", "ResourceBackend", "keras_outputs"]


def keras_outputs(model: "keras.Model", x: "np.ndarray", batch_size: int = 4096) -> "np.ndarray":
    """The outputs of ``model`` on ``x``, shape (n, n_outputs), from eager calls in batches.

    The same numbers as ``model.predict(x)`` (the same layers in inference mode), without
    tracing a ``predict`` function for each new model: about 0.03 s instead of 0.3 s for the
    quickstart MLP on digits' 360 test samples (``benchmarks/trial_anatomy.py``).

    Args:
        model: a built Keras model.
        x: inputs, shape (n, ...) as the model takes them.
        batch_size: samples per call (bounds the memory of intermediate activations).
    """
    import numpy as np

    outs = [np.asarray(model(x[i : i + batch_size], training=False)) for i in range(0, len(x), batch_size)]
    return np.concatenate(outs) if outs else np.asarray(model(x[:0], training=False))


@dataclass(frozen=True)
class Figure:
    """One resource number and where it came from.

    Attributes:
        value: the number, in the unit of its metric (LUTs, DSPs, FFs, cycles).
        source: one of :func:`dse.resources.sources` (the ``sources`` a registered backend declares).

    Raises:
        ValueError: on construction, an unknown source, or a value that is not a finite number >= 0. A backend
            that cannot measure a figure raises :class:`~dse.exceptions.MeasurementError` instead of making one.
    """

    value: float
    source: str

    def __post_init__(self) -> None:
        """Check the source and the value: a count of LUTs, DSPs, FFs or cycles is a finite number >= 0.

        Raises:
            ValueError: an unknown source, or a value that is not a finite number >= 0 (``None``,
                a string, NaN, infinity, a negative number); the value is stored as a ``float``.
        """
        from dse.resources._registry import sources

        if self.source not in sources():
            raise ValueError(f"unknown resource source {self.source!r}; allowed: {sources()}")
        v = self.value
        if not is_real_number(v) or not math.isfinite(float(v)) or float(v) < 0:
            raise ValueError(f"Figure({v!r}, {self.source!r}): a resource figure (LUTs, DSPs, FFs, cycles) must be a finite "
                             "number >= 0; a backend that cannot measure it raises MeasurementError instead")
        object.__setattr__(self, "value", float(v))


@dataclass
class ResourceReport:
    """What a backend measured for one design.

    Attributes:
        backend: the backend's name.
        figures: metric name (``lut``, ``dsp``, ``ff``, ``latency_cycles``) -> :class:`Figure`.
        extras: backend-specific numbers logged as-is (e.g. ``da4ml_cost``, ``da4ml_adders``).
        seconds: wall time the measurement took, in seconds.

    Raises:
        ValueError: on construction, a figure that is not a :class:`Figure`, an extra that is not a number, or a name
            MLflow refuses as a metric name.
    """

    backend: str
    figures: dict[str, Figure] = field(default_factory=dict)
    extras: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    def __post_init__(self) -> None:
        """Check the types: each figure a :class:`Figure`, each extra a number (stored as ``float``).

        Raises:
            ValueError: a figure that is not a :class:`Figure`, an extra that is not a number, or a
                name MLflow refuses as a metric name (checked by MLflow's own validator); MLflow
                would refuse the whole batch of the trial's metrics.
        """
        from mlflow.exceptions import MlflowException
        from mlflow.utils.validation import _validate_metric_name

        for k in (*self.figures, *self.extras):
            try:
                _validate_metric_name(k)
            except MlflowException as e:
                raise ValueError(f"ResourceReport({self.backend!r}): {k!r} is no MLflow metric name ({e.message})") from e
        for k, f in self.figures.items():
            if not isinstance(f, Figure):
                raise ValueError(f"ResourceReport({self.backend!r}).figures[{k!r}] is {f!r} ({type(f).__name__}); "
                                 f"give Figure(value, source)")
        for k, v in self.extras.items():
            if not is_real_number(v):
                raise ValueError(f"ResourceReport({self.backend!r}).extras[{k!r}] is {v!r} ({type(v).__name__}); extras "
                                 "are numbers, logged as MLflow metrics")
        self.extras = {k: float(v) for k, v in self.extras.items()}

    def metrics(self) -> dict[str, float]:
        """Flat metric dict for MLflow / Optuna: figures by name plus extras."""
        return {**{k: f.value for k, f in self.figures.items()}, **self.extras}

    def source_tags(self) -> dict[str, str]:
        """``{"lut_source": "ebops-estimate", ...}``, one tag per figure."""
        return {f"{k}_source": f.source for k, f in self.figures.items()}


@dataclass
class Design:
    """Everything a backend may read about one trained, traced candidate.

    Attributes:
        model: the trained HGQ2 Keras model, after ``trace_minmax``.
        params: the trial's parameters (Strategy, ReuseFactor per layer, ...).
        hls: the hls4ml settings (part, clock period in ns, IOType, backend).
        resources: the resource settings (thresholds, time limits, vsynth).
        ebops: EBOPs returned by ``trace_minmax`` on the calibration data.
        work_dir: a folder of this trial's own for files the backend writes.
        x_test: test features, shape (n, n_features), for bit-exactness checks.
        hls_model: the compiled hls4ml model, if conversion ran.
        y_test: test labels, shape (n,), integer classes; lets a backend that emulates the
            design bit-exactly report its accuracy (``None``: not given).
        keras_out: the Keras model's outputs on ``x_test``, shape (n, n_outputs), if already
            computed (``None``: :meth:`reference_outputs` computes them).
        x_val, y_val: validation features, shape (m, n_features), and labels, shape (m,); let a backend that
            emulates the design bit-exactly report its validation accuracy too (``None``: not given).
    """

    model: "keras.Model"
    params: "TrialParams"
    hls: "Hls4mlConfig"
    resources: "ResourcesConfig"
    ebops: float
    work_dir: Path
    x_test: "np.ndarray"
    hls_model: Any = None
    y_test: "np.ndarray | None" = None
    keras_out: "np.ndarray | None" = None
    x_val: "np.ndarray | None" = None
    y_val: "np.ndarray | None" = None

    def reference_outputs(self) -> "np.ndarray":
        """The Keras model's outputs on ``x_test`` (:attr:`keras_out`, computed once by :func:`keras_outputs`)."""
        if self.keras_out is None:
            self.keras_out = keras_outputs(self.model, self.x_test)
        return self.keras_out


class ResourceBackend(abc.ABC):
    """Measures LUT/DSP/FF/latency of a :class:`Design`. Subclass and implement :meth:`measure`.

    A backend that cannot produce a figure raises :class:`dse.exceptions.MeasurementError`
    (or a subclass); it never returns an invented number.
    """

    name: ClassVar[str]
    #: Sources (see :class:`Figure`) of the figures this backend returns.
    sources: ClassVar[tuple[str, ...]]
    #: Strategies whose designs this backend measures; ``None`` means all.
    strategies: ClassVar[tuple[str, ...] | None] = None
    #: Metrics its reports hold (``lut``, ``dsp``, ``ff``, ``latency_cycles``, ...); ``None``: not
    #: declared, so objectives on it are not checked before the study (:func:`dse.study.preflight`).
    figures: ClassVar[tuple[str, ...] | None] = None
    #: Whether :meth:`measure` reads :attr:`Design.hls_model`. A trial converts before it measures, except a
    #: distributed_arithmetic design under ``hls4ml.csim: front`` whose figure backend says ``False`` (its conversion
    #: then follows, where it may join the front: ``dse.trial._runner._conversion_deferred``). Where a design is
    #: re-measured from its artifacts (``dse synthesize``, ``resources.synthesize_front``) the conversion runs for a
    #: backend that says ``True`` (the default, so a user's backend gets the model it got in the trial) and is skipped
    #: for one that says ``False`` (da4ml and Yosys read the Keras model only).
    needs_hls_model: ClassVar[bool] = True
    #: Figures this backend reads off the design rather than measuring them with its tool (Yosys' ``latency_cycles``:
    #: da4ml's pipeline stages of the RTL it synthesizes, the computation the da4ml estimate makes too). ``dse
    #: calibrate`` does not compare them with the estimate, which would be the figure compared with itself.
    derived_figures: ClassVar[tuple[str, ...]] = ()
    #: Whether ``dse synthesize`` / ``dse calibrate`` / ``resources.synthesize_front`` may use it:
    #: ``False`` for an estimate every trial already carries (the EBOPs estimate).
    precise: ClassVar[bool] = True

    def supports(self, strategy: str) -> bool:
        """Whether this backend's figures describe a design built with hls4ml ``strategy``."""
        return self.strategies is None or strategy in self.strategies

    def check_tools(self, resources: Any = None) -> None:
        """Raise :class:`~dse.exceptions.ToolNotFoundError` when an executable this backend runs is not on this machine's PATH.

        Called before a local study or re-measurement starts Ray (whose workers share this PATH);
        the default checks nothing (backends that run no external tool).

        Args:
            resources: the experiment's resource settings (:class:`dse.config.ResourcesConfig`)
                that a measurement would read, where the backend's own settings leave them open
                (e.g. ``vsynth``); ``None`` for the backend's own.
        """

    def check_target(self, hls: Any) -> None:
        """Raise :class:`~dse.exceptions.MeasurementError` when this backend cannot measure for the target device.

        Called before a study or re-measurement starts (``dse check``, ``dse run``, ``dse synthesize``), so that a part
        the backend has no model of fails once, not in every trial. The default accepts every target.

        Args:
            hls: the experiment's hls4ml settings (:class:`dse.config.Hls4mlConfig`: ``part``, ``clock_period``, ...).
        """

    def measure_checked(self, design: Design) -> ResourceReport:
        """:meth:`measure`, its result checked: what trials and re-measurements call.

        Raises:
            MeasurementError: :meth:`measure` returned something other than a
                :class:`ResourceReport`, or a report without ``lut`` (the figure every trial
                records, and its ``resource_source``); the message names the backend. Other
                figures may be left out where a tool's report lacks them (never filled in).
        """
        from dse.exceptions import MeasurementError

        report = self.measure(design)
        if not isinstance(report, ResourceReport):
            raise MeasurementError(f"resource backend {self.name!r}: measure() returned {type(report).__name__} {str(report)[:80]!r}; "
                                   "it must return a ResourceReport (or raise MeasurementError)")
        if "lut" not in report.figures:
            raise MeasurementError(f"resource backend {self.name!r}: its report has no `lut` figure (it gave "
                                   f"{sorted(report.figures) or 'none'}); every report gives one, as Figure(value, source)")
        return report

    @abc.abstractmethod
    def measure(self, design: Design) -> ResourceReport:
        """Measure ``design``.

        Raises:
            MeasurementError: the measurement failed; the message says why.
        """
