"""Opening the Optuna study an experiment names."""

from __future__ import annotations

import warnings

import optuna

from dse.config import ExperimentConfig, redact_url
from dse.exceptions import ConfigError, StorageError, StudyNotFoundError

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

    A SQLite storage whose file does not exist is reported as holding no study; the file is
    not created.

    Raises:
        StudyNotFoundError: no study ``name`` in ``storage``; the message lists those that exist.
        StorageError: ``storage`` is not a usable database URL, or the database cannot be read.
    """
    from dse.study._preflight import check_storage_url, sqlite_path

    check_storage_url(storage, field="storage")
    db = sqlite_path(storage)
    if db is not None and not db.is_file():
        raise StudyNotFoundError(
            f"no study named {name!r} in {storage}; studies there: none (the file {db} does not exist). "
            "Run `dse run <experiment>` first, or pass --storage (or --experiment) to look elsewhere"
        )
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
    except Exception as e:  # sqlalchemy OperationalError/DatabaseError, optuna's RuntimeError on a foreign schema
        raise StorageError(
            f"storage {storage}: cannot read it as an Optuna database ({type(e).__name__}: {' '.join(str(e).split())[:300]})"
        ) from e
