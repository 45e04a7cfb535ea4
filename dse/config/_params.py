"""The parameters one trial receives: every knob a search space may sample or pin."""

from __future__ import annotations

import types
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

__all__ = ["TrialParams", "no_bool_for_number", "STRATEGIES", "WEIGHT_GRANULARITIES", "ACTIVATION_GRANULARITIES"]

#: hls4ml ``Strategy`` values a trial can be built with, and HGQ2 bitwidth granularities: the one spelling of each,
#: which :class:`TrialParams` annotates its fields with.
Strategy = Literal["Latency", "Resource", "distributed_arithmetic"]
WeightGranularity = Literal["per-weight", "per-channel", "per-layer"]
ActivationGranularity = Literal["per-feature", "per-layer"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)
WEIGHT_GRANULARITIES: tuple[str, ...] = get_args(WeightGranularity)
ACTIVATION_GRANULARITIES: tuple[str, ...] = get_args(ActivationGranularity)


def _numeric_only(annotation: Any) -> bool:
    """True when ``annotation`` is int/float (optionally ``| None``) and admits no bool or str."""
    if annotation in (int, float):
        return True
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return bool(args) and all(a in (int, float) for a in args)
    return False


def no_bool_for_number(cls: type[BaseModel], value: Any, info: ValidationInfo) -> Any:
    """A ``mode="before"`` field validator: refuse ``true``/``false`` where a number is expected.

    Pydantic would read ``True`` as 1; in YAML that is almost always a typo.

    Raises:
        ValueError: ``value`` is a bool and the field is an int or float.
    """
    annotation = cls.model_fields[info.field_name].annotation if info.field_name else None
    if isinstance(value, bool) and _numeric_only(annotation):
        raise ValueError(f"a number is expected, not the boolean {str(value).lower()}")
    if isinstance(value, list) and get_origin(annotation) is list and _numeric_only(get_args(annotation)[0]):
        if any(isinstance(v, bool) for v in value):
            raise ValueError("numbers are expected, not booleans (true/false)")
    return value


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
        beta_end: beta at the last epoch; ``None`` keeps beta constant (and is what a ``constant``
            schedule records: the ``beta_end`` it was given is never reached).
        beta_schedule: interpolation from ``beta`` to ``beta_end`` (HGQ2 ``PieceWiseSchedule``);
            ``constant`` where ``beta_end`` is ``None``; ``log`` from or to 0 is impossible, so such a
            ramp is ``linear``, as it is trained (Optuna's ``trial.params`` keep the sampled values).
        weight_l1, weight_l2: L1/L2 factors on the weight bitwidths (kbi ``br``).
        activation_l1, activation_l2: L1/L2 factors on the activation bitwidths (kif ``ir``/``fr``; under ``WRAP``
            overflow HGQ2 trains the fractional bits only, so ``ir`` has no effect).
        weight_granularity: bitwidth sharing of the weights (per-weight, per output channel, per layer).
        activation_granularity: bitwidth sharing of activations (per feature or per layer).
        weight_bits: initial weight bitwidth, excluding sign (kbi ``b0``).
        activation_bits: initial activation fractional bits (kif ``f0``).
        learning_rate: overrides ``training.learning_rate`` when set.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    _no_bool = field_validator("*", mode="before")(classmethod(no_bool_for_number))

    @model_validator(mode="before")
    @classmethod
    def _schedule_as_trained(cls, data: Any) -> Any:
        """The schedule as :func:`dse.trial.beta_schedule` trains it, recorded so: the one place that decides it.

        No ramp (``beta_end`` ``None`` or equal to ``beta``, or ``beta_schedule`` ``constant``) is ``constant`` without a ``beta_end``
        (a space without ``beta_end`` recorded ``log`` for a constant beta, and a ``constant`` trial kept a
        ``beta_end`` it never reached); a ``log`` ramp from or to beta 0 is impossible, so it is ``linear``.
        """
        if not isinstance(data, dict):
            return data
        schedule = data.get("beta_schedule", cls.model_fields["beta_schedule"].default)
        try:  # a ramp to where it starts is no ramp (probe 31: the Resource rule's beta 0 -> 0 was recorded `linear`)
            flat = data.get("beta_end") is not None and float(data["beta_end"]) == float(data.get("beta", cls.model_fields["beta"].default))
        except (TypeError, ValueError):  # field validation names the bad value
            flat = False
        if data.get("beta_end") is None or schedule == "constant" or flat:
            return {**data, "beta_schedule": "constant", "beta_end": None} if schedule in ("constant", "linear", "log") else data
        if schedule != "log":
            return data
        try:
            at_zero = float(data.get("beta", cls.model_fields["beta"].default)) == 0 or float(data["beta_end"]) == 0
        except (TypeError, ValueError):  # field validation names the bad value
            return data
        return {**data, "beta_schedule": "linear"} if at_zero else data

    strategy: Strategy = "Latency"
    reuse_factor: int = Field(default=1, ge=1)
    layer_reuse_factors: tuple[int, ...] | None = None
    beta: float = Field(default=1e-5, ge=0)
    beta_end: float | None = Field(default=None, ge=0)
    beta_schedule: Literal["constant", "linear", "log"] = "log"
    weight_l1: float = Field(default=1e-8, ge=0)
    weight_l2: float = Field(default=0.0, ge=0)
    activation_l1: float = Field(default=1e-8, ge=0)
    activation_l2: float = Field(default=0.0, ge=0)
    weight_granularity: WeightGranularity = "per-weight"
    activation_granularity: ActivationGranularity = "per-feature"
    weight_bits: int = Field(default=6, ge=1, le=16)
    activation_bits: int = Field(default=6, ge=0, le=16)
    learning_rate: float | None = Field(default=None, gt=0)
