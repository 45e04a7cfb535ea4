"""Build the HGQ2 candidate for one trial from the architecture spec and the trial's knobs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dse.config import ModelConfig, TrialParams

if TYPE_CHECKING:
    import keras

__all__ = ["build_model", "layer_sizes", "granularity_axes", "bias_axes"]

_WEIGHT_AXES = {
    "per-weight": {"homogeneous_axis": ()},
    "per-channel": {"heterogeneous_axis": (1,)},
    "per-layer": {"homogeneous_axis": (0, 1)},
}
#: A Dense bias (shape (n_out,)) has one value per output channel: per-element under per-weight and per-channel,
#: one bitwidth for the layer under per-layer (before 2026-12-07 its bitwidths stayed per-element there).
_BIAS_AXES = {
    "per-weight": {"homogeneous_axis": ()},
    "per-channel": {"homogeneous_axis": ()},
    "per-layer": {"homogeneous_axis": (0,)},
}
_ACTIVATION_AXES = {
    "per-feature": {"homogeneous_axis": (0,)},
    "per-layer": {"heterogeneous_axis": ()},
}


def granularity_axes(params: TrialParams) -> tuple[dict, dict]:
    """HGQ2 quantizer axis arguments for the weight and activation granularity of ``params``.

    Per-weight: ``homogeneous_axis=()``; per output channel: ``heterogeneous_axis=(1,)``;
    per layer: ``homogeneous_axis=(0, 1)``. Activations per feature: ``homogeneous_axis=(0,)``
    (shared over the batch); per layer: ``heterogeneous_axis=()`` (HGQ2 quantizer docs). The
    biases follow the weight granularity (:func:`bias_axes`).
    """
    return _WEIGHT_AXES[params.weight_granularity], _ACTIVATION_AXES[params.activation_granularity]


def bias_axes(params: TrialParams) -> dict:
    """HGQ2 quantizer axis arguments of the Dense biases for the weight granularity of ``params``.

    A bias vector (shape ``(n_out,)``) has a bitwidth per element under ``per-weight`` and
    ``per-channel`` (one bias per output channel), and one for the layer under ``per-layer``
    (``homogeneous_axis=(0,)``), so a per-layer layer has one weight type and one bias type.
    """
    return _BIAS_AXES[params.weight_granularity]


def layer_sizes(model_cfg: ModelConfig, n_features: int, n_classes: int) -> list[tuple[int, int]]:
    """``(n_in, n_out)`` of each Dense layer, input to output."""
    widths = [n_features, *model_cfg.hidden, n_classes]
    return list(zip(widths[:-1], widths[1:]))


def build_model(model_cfg: ModelConfig, params: TrialParams, n_features: int, n_classes: int) -> "keras.Model":
    """Build a Dense/ReLU MLP of HGQ2 ``QDense`` layers.

    Weights use the ``kbi`` quantizer with ``SAT_SYM`` overflow, initial ``b0 = weight_bits``
    and 0 integer bits (``i0=0``: initial weights are below 1, and HGQ2's default of 2 integer
    bits would round them all to 0 at small ``b0``), L1/L2 on the bitwidths (``br``); biases ``kbi``/``SAT_SYM`` at ``b0 = weight_bits``
    (HGQ2's default integer bits) and the weights' ``br``, at the weights' granularity (:func:`bias_axes`); activations use ``kif`` with ``WRAP`` overflow (so
    ``trace_minmax`` must run before conversion), initial ``f0 = activation_bits``, L1/L2 on
    integer and fractional bits (``ir``, ``fr``; under ``WRAP`` HGQ2 does not train the integer bits, which
    ``trace_minmax`` sets, so only ``fr`` acts). EBOPs are in the loss with weight ``beta``.
    The last layer outputs logits: shape (batch, n_classes).
    """
    import keras
    from hgq.config import LayerConfigScope, QuantizerConfigScope
    from hgq.layers import QDense

    w_axes, a_axes = granularity_axes(params)
    w_reg = keras.regularizers.L1L2(params.weight_l1, params.weight_l2)
    a_reg = keras.regularizers.L1L2(params.activation_l1, params.activation_l2)
    with (
        QuantizerConfigScope(
            place="weight", default_q_type="kbi", overflow_mode="SAT_SYM", b0=params.weight_bits, i0=0, br=w_reg, **w_axes
        ),
        QuantizerConfigScope(
            place="bias", default_q_type="kbi", overflow_mode="SAT_SYM", b0=params.weight_bits, br=w_reg, **bias_axes(params)
        ),
        QuantizerConfigScope(
            place="datalane", default_q_type="kif", overflow_mode="WRAP", f0=params.activation_bits, ir=a_reg, fr=a_reg, **a_axes
        ),
        LayerConfigScope(enable_ebops=True, beta0=params.beta),
    ):
        inputs = keras.Input((n_features,), name="features")
        x = inputs
        for i, units in enumerate(model_cfg.hidden):
            x = QDense(units, activation=model_cfg.activation, name=f"dense_{i}")(x)
        outputs = QDense(n_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="hgq_mlp")
