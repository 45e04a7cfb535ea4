"""The parameters one trial receives: every knob a search space may sample or pin."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["TrialParams", "STRATEGIES", "WEIGHT_GRANULARITIES", "ACTIVATION_GRANULARITIES"]

STRATEGIES = ("Latency", "Resource", "distributed_arithmetic")
WEIGHT_GRANULARITIES = ("per-weight", "per-channel", "per-layer")
ACTIVATION_GRANULARITIES = ("per-feature", "per-layer")


class TrialParams(BaseModel):
    """Knobs of one trial. Parameters a search space leaves out take these defaults.

    Attributes:
        strategy: hls4ml ``Strategy``.
        reuse_factor: hls4ml ``ReuseFactor`` as sampled; must be 1 for Latency and distributed_arithmetic.
        layer_reuse_factors: the ReuseFactor each Dense layer (input to output) is built with:
            the largest hls4ml-valid ReuseFactor not above ``reuse_factor`` for that layer's
            size (resolved by the driver, :func:`dse.trial.resolve_reuse_factors`); ``None``
            means ``reuse_factor`` for every layer.
        beta: HGQ2 EBOPs loss weight at epoch 0 (``beta0``), 0 disables the resource term.
        beta_end: beta at the last epoch; ``None`` keeps beta constant.
        beta_schedule: interpolation from ``beta`` to ``beta_end`` (HGQ2 ``PieceWiseSchedule``).
        weight_l1, weight_l2: L1/L2 factors on the weight bitwidths (kbi ``br``).
        activation_l1, activation_l2: L1/L2 factors on the activation bitwidths (kif ``ir``/``fr``).
        weight_granularity: bitwidth sharing of the weights (per-weight, per output channel, per layer).
        activation_granularity: bitwidth sharing of activations (per feature or per layer).
        weight_bits: initial weight bitwidth, excluding sign (kbi ``b0``).
        activation_bits: initial activation fractional bits (kif ``f0``).
        learning_rate: overrides ``training.learning_rate`` when set.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy: Literal["Latency", "Resource", "distributed_arithmetic"] = "Latency"
    reuse_factor: int = Field(default=1, ge=1)
    layer_reuse_factors: tuple[int, ...] | None = None
    beta: float = Field(default=1e-5, ge=0)
    beta_end: float | None = Field(default=None, ge=0)
    beta_schedule: Literal["constant", "linear", "log"] = "log"
    weight_l1: float = Field(default=1e-8, ge=0)
    weight_l2: float = Field(default=0.0, ge=0)
    activation_l1: float = Field(default=1e-8, ge=0)
    activation_l2: float = Field(default=0.0, ge=0)
    weight_granularity: Literal["per-weight", "per-channel", "per-layer"] = "per-weight"
    activation_granularity: Literal["per-feature", "per-layer"] = "per-feature"
    weight_bits: int = Field(default=6, ge=1, le=16)
    activation_bits: int = Field(default=6, ge=0, le=16)
    learning_rate: float | None = Field(default=None, gt=0)
