"""Optuna samplers by name."""

from __future__ import annotations

import optuna

from dse.config import SamplerConfig

__all__ = ["make_sampler"]


def make_sampler(cfg: SamplerConfig, seed: int) -> optuna.samplers.BaseSampler:
    """NSGA-II (default), TPE (multivariate) or random, seeded with ``seed``.

    ``cfg.population_size`` and ``cfg.n_startup_trials``, where set, are given to NSGA-II and TPE; else
    Optuna's defaults hold (50 and 10).
    """
    if cfg.name == "nsga2":
        kwargs = {"population_size": cfg.population_size} if cfg.population_size else {}
        return optuna.samplers.NSGAIISampler(seed=seed, **kwargs)
    if cfg.name == "tpe":
        kwargs = {"n_startup_trials": cfg.n_startup_trials} if cfg.n_startup_trials else {}
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, **kwargs)
    return optuna.samplers.RandomSampler(seed=seed)
