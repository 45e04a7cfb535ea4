"""Opening the Optuna study an experiment names."""

from __future__ import annotations

import warnings

import optuna

from dse.config import ExperimentConfig, redact_url
from dse.exceptions import ConfigError, StudyNotFoundError

__all__ = ["open_study", "load_study"]


def open_study(exp: ExperimentConfig, sampler: optuna.samplers.BaseSampler | None = None) -> optuna.Study:
    """Create the study ``exp.name`` in ``exp.storage_url``, or reuse it if it exists.

    Raises:
        ConfigError: an existing study of that name has other objective directions.
    """
    directions = [o.direction for o in exp.objectives]
    study = optuna.create_study(
        study_name=exp.name, storage=exp.storage_url, directions=directions, sampler=sampler, load_if_exists=True
    )
    have = [d.name.lower() for d in study.directions]
    if have != directions:
        raise ConfigError(
            f"study {exp.name!r} in {redact_url(exp.storage_url)} has directions {have}, but objectives ask for {directions}; "
            "give the experiment another name, or restore its objectives"
        )
    names = [o.metric for o in exp.objectives]
    if study.metric_names != names:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(names)
    return study


def load_study(name: str, storage: str) -> optuna.Study:
    """Load an existing study.

    Raises:
        StudyNotFoundError: no study ``name`` in ``storage``; the message lists those that exist.
    """
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError as e:
        try:
            names = optuna.get_all_study_names(storage)
        except Exception:
            names = []
        raise StudyNotFoundError(
            f"no study named {name!r} in {redact_url(storage)}; studies there: {names or 'none'}. "
            "Pass --storage (or --experiment) to look elsewhere"
        ) from e
