"""da4ml's cost model: trace the HGQ2 model into distributed-arithmetic logic, read cost and latency."""

from __future__ import annotations

import time

import numpy as np

from dse.exceptions import MeasurementError
from dse.resources._registry import register_backend
from dse.resources._base import Design, Figure, ResourceBackend, ResourceReport

__all__ = ["Da4mlBackend", "trace_da4ml"]


def trace_da4ml(model):
    """Trace an HGQ2 model into a da4ml ``CombLogic`` (``HWConfig(1, -1, -1)``, ``hard_dc=2``).

    Raises:
        MeasurementError: da4ml cannot trace the model.
    """
    from da4ml.converter import trace_model
    from da4ml.trace import HWConfig, comb_trace

    try:
        inp, out = trace_model(model, HWConfig(1, -1, -1), {"hard_dc": 2})
        return comb_trace(inp, out)
    except Exception as e:
        raise MeasurementError(f"da4ml could not trace the model: {type(e).__name__}: {e}") from e


@register_backend
class Da4mlBackend(ResourceBackend):
    """LUT and latency from da4ml's cost model (source ``da4ml``).

    Figures: ``lut`` = ``comb.cost`` (da4ml's LUT estimate: 26,852 against Yosys' 27,035 LUTs for the same
    RTL of a digits 64-8-10 design, -0.7%, by ``dse calibrate --backend yosys`` on 2026-12-07), ``dsp`` = 0, ``latency_cycles`` = number of
    pipeline stages from ``da4ml.trace.pipeline.to_pipeline`` at ``resources.da4ml_latency_cutoff``.
    Extras: ``da4ml_cost``, ``da4ml_adders`` (operations in the graph), ``da4ml_latency``
    (combinational depth, da4ml delay units), ``da4ml_bit_exact_fraction`` (``comb.predict``
    against the Keras model on the test set) and, when the design carries ``y_test``,
    ``da4ml_accuracy``: the test accuracy of ``comb.predict``, da4ml's bit-exact emulation of the
    logic hls4ml's distributed_arithmetic strategy generates (with da4ml) for this model; when it
    carries ``x_val`` and ``y_val``, ``da4ml_val_accuracy``: the same on the validation split.

    Raises (from :meth:`measure`):
        MeasurementError: tracing failed.
    """

    name = "da4ml"
    needs_hls_model = False
    figures = ("lut", "dsp", "latency_cycles")
    sources = ("da4ml",)
    strategies = ("distributed_arithmetic",)

    def measure(self, design: Design) -> ResourceReport:
        from da4ml.trace.pipeline import to_pipeline

        t0 = time.perf_counter()
        comb = trace_da4ml(design.model)
        cutoff = design.resources.da4ml_latency_cutoff
        try:
            stages = len(to_pipeline(comb, cutoff, verbose=False).solutions)
        except Exception as e:
            raise MeasurementError(f"da4ml could not pipeline the design at cutoff {cutoff}: {e}") from e
        x = design.x_test
        ref = design.reference_outputs()
        got = np.asarray(comb.predict(x)).reshape(ref.shape)
        src = "da4ml"
        extras = {}
        if design.y_test is not None:
            extras["da4ml_accuracy"] = float(np.mean(np.argmax(got, axis=1) == np.asarray(design.y_test)))
        if design.x_val is not None and design.y_val is not None:
            val = np.asarray(comb.predict(np.asarray(design.x_val))).reshape(len(design.y_val), -1)
            extras["da4ml_val_accuracy"] = float(np.mean(np.argmax(val, axis=1) == np.asarray(design.y_val)))
        return ResourceReport(
            self.name,
            figures={
                "lut": Figure(float(comb.cost), src),
                "dsp": Figure(0.0, src),
                "latency_cycles": Figure(float(stages), src),
            },
            extras={
                "da4ml_cost": float(comb.cost),
                "da4ml_adders": float(len(comb.ops)),
                "da4ml_latency": float(max(comb.latency)),
                "da4ml_bit_exact_fraction": float(np.mean(got == ref)),
                **extras,
            },
            seconds=time.perf_counter() - t0,
        )
