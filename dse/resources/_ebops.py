"""Instant LUT/DSP estimate from HGQ2's per-multiplication bitwidths and EBOPs."""

from __future__ import annotations

import math
import time

import numpy as np

from dse.exceptions import MeasurementError
from dse.resources._registry import register_backend
from dse.resources._base import Design, Figure, ResourceBackend, ResourceReport

__all__ = ["EbopsBackend", "count_dsp_multiplications", "zero_weight_ebops", "DSP_LUT_EQUIVALENT"]

#: LUTs one DSP stands for in ``LUT + 55 * DSP ~ BOPs`` (HGQ documentation, "Resource
#: estimation"; the factor is rough, the order of magnitude holds).
DSP_LUT_EQUIVALENT = 55


def count_dsp_multiplications(model, threshold_bits: int) -> list[int]:
    """Count multiplications wide enough for HLS to map them to a DSP.

    For every quantized Dense layer, each (input, weight) pair whose input bitwidth and weight
    bitwidth both exceed ``threshold_bits`` counts once; a weight that quantizes to 0 (zero bits, or
    a zero under a per-layer or per-channel bitwidth) never does: hls4ml builds no multiplier for it.
    Uses the same bitwidth arrays HGQ2 uses for EBOPs (``iq.bits_``, ``kq.bits_``) and the
    quantized kernel (``qkernel``).

    Args:
        model: a trained HGQ2 model after ``trace_minmax``.
        threshold_bits: bitwidth above which an operand is "wide".

    Returns:
        The number of DSP-mapped multiplications of each Dense layer, input to output, at ReuseFactor 1.
    """
    per_layer: list[int] = []
    for bw_in, bw_ker, nonzero in _dense_operands(model):
        wide = (bw_in[:, None] > threshold_bits) & (bw_ker > threshold_bits) & nonzero  # zeros were counted
        per_layer.append(int(wide.sum()))
    return per_layer


def zero_weight_ebops(model) -> float:
    """The EBOPs HGQ2 counts for weights that quantize to 0, summed over the quantized Dense layers.

    HGQ2's EBOPs of a Dense layer are ``sum(bw_in @ bw_ker)``, from the bitwidths alone, so a zero weight under a
    per-layer or per-channel bitwidth still counts ``bw_in x bw_ker`` though hls4ml builds no multiplier for it (a
    per-weight bitwidth usually drops such a weight to 0 bits, which counts nothing). Returns EBOPs (bit operations).
    """
    return float(sum((bw_in[:, None] * bw_ker * ~nonzero).sum() for bw_in, bw_ker, nonzero in _dense_operands(model)))


def _dense_operands(model):
    """Per quantized Dense layer, input to output: ``(bw_in (n_in,), bw_ker (n_in, n_out), nonzero (n_in, n_out))``, the
    input and weight bitwidths HGQ2's EBOPs use (``iq.bits_``, ``kq.bits_``) and which quantized weights are not 0."""
    from hgq.layers import QDense

    for layer in model.layers:
        if not isinstance(layer, QDense):
            continue
        in_shape = (1,) + tuple(layer.input.shape[1:])
        bw_in = np.asarray(layer.iq.bits_(in_shape)).reshape(-1)
        kernel = tuple(layer.kernel.shape)
        bw_ker = np.broadcast_to(np.asarray(layer.kq.bits_(kernel)), kernel)
        yield bw_in, bw_ker, np.asarray(layer.qkernel) != 0


@register_backend
class EbopsBackend(ResourceBackend):
    """LUT and DSP from EBOPs, instantly.

    hls4ml strategies (Latency, Resource): ``DSP`` = multiplications with both operands wider
    than ``resources.dsp_threshold_bits``, divided by each layer's ReuseFactor (rounded up)
    and summed over layers, and
    ``LUT = max(EBOPs - Z - 55 * W, 0)``, where ``W`` is those wide multiplications at ReuseFactor 1 and ``Z`` the
    EBOPs of weights that quantize to 0 (:func:`zero_weight_ebops`: no multiplier is built for them), from
    ``LUT + 55 DSP ~ BOPs`` (HGQ documentation). EBOPs count every multiplication once, as a fully unrolled design
    builds it, so the wide ones are taken out of the LUTs whole, however many DSPs share them: the LUT figure does not
    model reuse (an upper bound for ReuseFactor > 1). Before, ``55 * DSP`` was taken out, so the LUT
    figure rose with the ReuseFactor (31x from ReuseFactor 1 to 8 for a digits design: probe 23).
    ``distributed_arithmetic``: ``LUT = EBOPs``, ``DSP = 0`` (EBOPs is an upper bound on the
    LUTs of a da4ml design, which uses no DSP). Source: ``ebops-estimate``. No latency figure:
    EBOPs says nothing about cycles.
    """

    name = "ebops"
    needs_hls_model = False
    sources = ("ebops-estimate",)
    figures = ("lut", "dsp")
    precise = False  # every trial already carries these figures

    def measure(self, design: Design) -> ResourceReport:
        t0 = time.perf_counter()
        if not math.isfinite(design.ebops) or design.ebops < 0:
            raise MeasurementError(f"EBOPs is {design.ebops}; cannot estimate resources from it")
        if design.params.strategy == "distributed_arithmetic":
            lut, dsp = float(design.ebops), 0.0
        else:
            counts = count_dsp_multiplications(design.model, design.resources.dsp_threshold_bits)
            rfs = design.params.layer_reuse_factors or (design.params.reuse_factor,) * len(counts)
            dsp = float(sum(math.ceil(n / rf) for n, rf in zip(counts, rfs)))
            zero = zero_weight_ebops(design.model)  # (the review: zeros left out of W, but their EBOPs became LUTs)
            lut = max(float(design.ebops) - zero - DSP_LUT_EQUIVALENT * sum(counts), 0.0)
        src = "ebops-estimate"
        return ResourceReport(
            self.name,
            figures={"lut": Figure(lut, src), "dsp": Figure(dsp, src)},
            seconds=time.perf_counter() - t0,
        )
