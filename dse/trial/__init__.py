"""One trial: build and train an HGQ2 candidate, convert it with hls4ml, measure it."""

from dse.trial._hls import (
    check_hls_settings,
    check_reuse_factor_choices,
    check_search_space,
    hls4ml_config,
    layer_reuse_factor,
    resolve_reuse_factors,
    valid_reuse_factors,
)
from dse.trial._model import build_model, layer_sizes
from dse.trial._runner import TrialResult, TrialSpec, run_trial
from dse.trial._train import beta_schedule, train_model

__all__ = [
    "TrialResult",
    "TrialSpec",
    "run_trial",
    "build_model",
    "layer_sizes",
    "train_model",
    "beta_schedule",
    "check_hls_settings",
    "check_reuse_factor_choices",
    "check_search_space",
    "hls4ml_config",
    "valid_reuse_factors",
    "layer_reuse_factor",
    "resolve_reuse_factors",
]
