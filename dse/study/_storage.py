"""Opening the Optuna study an experiment names."""

from __future__ import annotations

import warnings
from pathlib import Path

import optuna

from dse.config import ExperimentConfig, redact_url
from dse.exceptions import ConfigError, StorageError, StudyNotFoundError

__all__ = ["open_study", "load_study", "driver_storage", "enable_wal"]


def open_study(exp: ExperimentConfig, sampler: optuna.samplers.BaseSampler | None = None) -> optuna.Study:
    """Create the study ``exp.name`` in ``exp.storage_url``, or reuse it if it exists.

    Raises:
        ConfigError: an existing study of that name has other objective directions.
    """
    directions = [o.direction for o in exp.objectives]
    study = optuna.create_study(
        study_name=exp.name, storage=driver_storage(exp.storage_url), directions=directions, sampler=sampler,
        load_if_exists=True,
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


def _fast_sqlite(dbapi_connection, _record) -> None:
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def enable_wal(db: Path) -> None:
    """Put the SQLite file ``db`` (created if missing) in write-ahead-log mode; the mode stays with the file.

    A commit then appends to ``<db>-wal`` instead of rewriting pages behind a rollback
    journal: one fsync instead of several. Readers and writers of other processes on the
    same machine keep working (not on network file systems).
    """
    import sqlite3

    db.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(db)
    try:
        con.execute("PRAGMA journal_mode=WAL")
    finally:
        con.close()


def driver_storage(url: str) -> str | optuna.storages.RDBStorage:
    """The Optuna storage a driver writes through: ``url``, or for SQLite a storage in WAL mode with ``synchronous=NORMAL``.

    Each ask, suggest, user attribute and tell is a commit; with SQLite's default rollback
    journal every commit costs several fsyncs (about 7 ms each here, 40+ commits per trial).
    WAL with ``synchronous=NORMAL`` syncs at checkpoints only: a crash of the driver or the
    machine's OS loses nothing committed before it; a power cut may lose the last commits,
    never the database (SQLite documentation, "Write-Ahead Logging"). Measured by
    ``benchmarks/orchestration_overhead.py``. Other URLs are returned unchanged.
    """
    from dse.study._preflight import sqlite_path

    if sqlite_path(url) is None:
        return url
    import sqlalchemy

    storage = optuna.storages.RDBStorage(url)
    sqlalchemy.event.listen(storage.engine, "connect", _fast_sqlite)
    storage.engine.dispose()  # connections opened while creating tables lack the pragmas
    return storage


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
