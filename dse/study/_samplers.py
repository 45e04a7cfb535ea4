"""Optuna samplers by name."""

from __future__ import annotations

import optuna

from dse.config import SamplerConfig

__all__ = ["make_sampler"]


def make_sampler(cfg: SamplerConfig, seed: int) -> optuna.samplers.BaseSampler:
    """NSGA-II (default), TPE (multivariate) or random, seeded with ``seed``."""
    if cfg.name == "nsga2":
        kwargs = {"population_size": cfg.population_size} if cfg.population_size else {}
        return optuna.samplers.NSGAIISampler(seed=seed, **kwargs)
    if cfg.name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True)
    return optuna.samplers.RandomSampler(seed=seed)
