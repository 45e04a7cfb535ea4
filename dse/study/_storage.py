"""Opening the Optuna study an experiment names."""

from __future__ import annotations

import logging
import os
import shutil
import time
import warnings
from pathlib import Path

import optuna

from dse.config import ExperimentConfig, journal_path, redact_url, sqlite_path, storage_file
from dse.exceptions import ConfigError, DiskFullError, StorageError, StudyNotFoundError

__all__ = ["open_study", "objectives_problem", "load_study", "reading_on_a_full_disk", "driver_storage", "rdb_storage", "journal_storage"]

log = logging.getLogger(__name__)


#: The default ``objectives`` of dse before 2026-12-07 (selected on the test split), for the refusal of a study made then.
_OLD_DEFAULT_OBJECTIVES = ["csim_accuracy", "lut"]


def objectives_problem(study: optuna.Study, exp: ExperimentConfig) -> str | None:
    """Why ``exp`` cannot continue the existing ``study`` whatever else may change, or ``None``.

    Optuna keeps each trial's objective values as a list, by position, and one direction per
    position: other directions, or other metrics (names or order) once a trial has finished,
    would read earlier trials' values under the wrong names (``--allow-changed`` does not change that).
    """
    where = f"study {exp.name!r} in {redact_url(exp.storage_url)}"
    have, want = [d.name.lower() for d in study.directions], [o.direction for o in exp.objectives]
    if have != want:
        return f"{where} has directions {have}, but objectives ask for {want}; give the experiment another name, or restore its objectives"
    stored, names = study.metric_names, [o.metric for o in exp.objectives]
    finished = (optuna.trial.TrialState.COMPLETE,)
    if stored is not None and stored != names and study.get_trials(deepcopy=False, states=finished):
        moved = next(f"{a} as {b}" for a, b in zip(stored, names) if a != b)
        default = [o.metric for o in ExperimentConfig.model_fields["objectives"].default]
        if stored == _OLD_DEFAULT_OBJECTIVES and names == default:  # (the experiment's own set is lost to revalidate)
            return (f"{where} has objectives {stored}, dse's default before 2026-12-07, but the experiment asks for "
                    f"{names}, the default since (selected on the validation split): Optuna keeps each trial's values by "
                    f"position, so earlier trials' {moved} would be read. To continue the study, write its objectives in "
                    f"the experiment file (objectives: [{{metric: {stored[0]}, direction: maximize}}, {{metric: {stored[1]}, "
                    "direction: minimize}]); or give the experiment another name for a new study (--allow-changed "
                    "cannot change objectives)")
        return (f"{where} has objectives {stored}, but the experiment asks for {names}: Optuna keeps each trial's values "
                f"by position, so earlier trials' {moved} would be read; give the experiment another name for a new study, "
                "or restore its objectives (--allow-changed cannot change objectives)")
    return None


def open_study(exp: ExperimentConfig, sampler: optuna.samplers.BaseSampler | None = None) -> optuna.Study:
    """Create the study ``exp.name`` in ``exp.storage_url``, or reuse it if it exists.

    Raises:
        ConfigError: an existing study of that name has other objectives (:func:`objectives_problem`).
        sqlalchemy.exc.SQLAlchemyError: the storage cannot be opened or created; :func:`dse.study.preflight`
            (which :func:`dse.study.run_study` calls first) names such a storage as a ``StorageError``.
    """
    directions = [o.direction for o in exp.objectives]
    study = optuna.create_study(
        study_name=exp.name, storage=driver_storage(exp.storage_url), directions=directions, sampler=sampler,
        load_if_exists=True,
    )
    if problem := objectives_problem(study, exp):
        raise ConfigError(problem)
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


def rdb_storage(url: str, attempts: int = 5) -> optuna.storages.RDBStorage:
    """``optuna.storages.RDBStorage(url)``, retried when another process creates the same schema at that moment.

    Creating the storage creates Optuna's tables and its ``alembic_version`` row if missing.
    Two processes doing it together on a new database (a driver starting while ``dse status``
    or a second driver opens it) can see the other's ``CREATE TABLE`` land in between
    ("table alembic_version already exists" or a UNIQUE constraint on SQLite, a duplicate key on PostgreSQL); the
    second attempt finds the tables made and just reads them.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: any other database error, or the race still lost after ``attempts``.
    """
    import sqlalchemy.exc

    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(url)
        except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError) as e:
            text = str(e).lower()
            if attempt == attempts - 1 or not any(w in text for w in ("already exists", "duplicate", "unique constraint")):
                raise
            log.info("storage %s: schema created concurrently by another process; retrying (%s)", redact_url(url), text[:120])
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def journal_storage(path: Path) -> optuna.storages.JournalStorage:
    """Optuna's ``JournalStorage`` over the append-only file ``path`` (``JournalFileBackend``), created if missing.

    Every operation is one JSON line appended under a lock file next to it (several drivers on
    one machine or on a shared POSIX file system may write it), and each process keeps the
    study in memory, reading only the lines added since its last read: about 2 ms of Optuna
    per trial where SQLite takes 20-36 ms (``benchmarks/orchestration_overhead.py``). No SQL:
    tools that need a database URL (``optuna-dashboard`` takes the file itself) cannot read it.
    """
    from optuna.storages.journal import JournalFileBackend

    path.parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(JournalFileBackend(str(path)))


def driver_storage(url: str) -> optuna.storages.BaseStorage:
    """The Optuna storage a driver writes through: ``url``, or for SQLite a storage in WAL mode with ``synchronous=NORMAL``.

    A journal file (:func:`journal_path`) gets :func:`journal_storage`.

    Each ask, suggest, user attribute and tell is a commit; with SQLite's default rollback
    journal every commit costs several fsyncs (about 7 ms each here, 40+ commits per trial).
    WAL with ``synchronous=NORMAL`` syncs at checkpoints only: a crash of the driver or the
    machine's OS loses nothing committed before it; a power cut may lose the last commits,
    never the database (SQLite documentation, "Write-Ahead Logging"). Measured by
    ``benchmarks/orchestration_overhead.py``. Other URLs get a plain storage (:func:`rdb_storage`).
    """
    journal = journal_path(url)
    if journal is not None:
        return journal_storage(journal)
    if sqlite_path(url) is None:
        return rdb_storage(url)
    import sqlalchemy

    storage = rdb_storage(url)
    sqlalchemy.event.listen(storage.engine, "connect", _fast_sqlite)
    storage.engine.dispose()  # connections opened while creating tables lack the pragmas
    return storage


def reading_on_a_full_disk(db: Path, e: BaseException) -> DiskFullError | None:
    """A :class:`DiskFullError` when reading the SQLite file ``db`` failed with ``e`` because its disk is (nearly) full.

    SQLite needs room beside a database even to read it (its write-ahead log and shared-memory files), and says
    ``disk I/O error`` when it has none: not a damaged database, which the advice to move the file away would have
    lost (probe 32). Under 1 MB free, or a disk-full error in ``e``'s chain, is a full disk.
    """
    from dse.exceptions import disk_full_error

    try:
        free = shutil.disk_usage(db.parent).free
    except OSError:
        free = None
    if free is None or free >= 2**20:  # room here: full only where the error says so (SQLite's temporary folder, ...)
        return disk_full_error(e, "Free space on that disk and run the command again")
    shown = f"has {free / 1024:.0f} KB free"
    return DiskFullError(f"a disk is full: {db.parent} {shown}, and SQLite needs room beside {db.name} even to read it "
                         f"({type(e).__name__}); free space on that disk (`df -h {db.parent}`) and run the command again")


def load_study(name: str, storage: str) -> optuna.Study:
    """Load an existing study from an RDB URL or a journal file (:func:`journal_path`).

    A SQLite or journal storage whose file does not exist is reported as holding no study; the
    file is not created.

    Raises:
        StudyNotFoundError: no study ``name`` in ``storage``; the message lists those that exist.
        StorageError: ``storage`` is not a usable database URL or journal file, or it cannot be read (also where its
            file or folder is read-only and reading needs to write: SQLite in write-ahead-log mode, Optuna's journal).
        DiskFullError: the SQLite file's disk has under 1 MB free and the read failed.
    """
    from dse.study._preflight import check_storage_url

    journal = journal_path(storage)
    db = storage_file(storage)
    # a file that exists in a read-only place is tried as it is (a journal, or SQLite without a write-ahead log, reads);
    # before, "not writable by this user; fix its permissions" refused it unread
    read_only = db is not None and db.is_file() and not (
        os.access(db, os.W_OK) and (journal is not None or os.access(db.parent, os.W_OK | os.X_OK)))
    if not read_only:
        check_storage_url(storage, field="storage")
    if db is not None and not db.is_file():
        found = f"no study named {name!r} in {redact_url(storage)}; studies there: none (the file {db} does not exist)"
        raise StudyNotFoundError(f"{found}. Run `dse run <experiment>` first, or pass --storage (or --experiment) to look elsewhere", found)
    if db is not None and journal is None and db.stat().st_size == 0:  # opening it would write Optuna's schema into it
        found = f"no study named {name!r} in {redact_url(storage)}; studies there: none (the file {db} is empty)"
        raise StudyNotFoundError(f"{found}. Pass the --storage (or --experiment) of the study's run directory", found)
    try:
        opened = journal_storage(journal) if journal is not None else rdb_storage(storage)
        return optuna.load_study(study_name=name, storage=opened)
    except KeyError as e:
        try:
            there = f"studies there: {optuna.get_all_study_names(opened) or 'none'}"
        except Exception as listing:  # the load's KeyError is the news; say only that the list is unknown
            log.debug("listing the studies of %s failed", redact_url(storage), exc_info=True)
            there = f"the studies there could not be listed ({type(listing).__name__})"
        found = f"no study named {name!r} in {redact_url(storage)}; {there}"
        raise StudyNotFoundError(f"{found}. Give one of those names, or pass --storage (or --experiment) to look elsewhere", found) from e
    except Exception as e:  # sqlalchemy OperationalError/DatabaseError, optuna's RuntimeError on a foreign schema, bad JSON
        cause = f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"
        if read_only:
            raise StorageError(
                f"storage {redact_url(storage)}: {db if journal or os.access(db.parent, os.W_OK) else db.parent} is "
                f"read-only, and {'Optuna opens a journal file for appending' if journal else 'SQLite writes beside a database in write-ahead-log mode'} "
                f"even to read it ({cause}); copy the study's run directory to a folder you can write (cp -r) and pass "
                "--storage with the copy") from e
        if db is not None and journal is None and (full := reading_on_a_full_disk(db, e)) is not None:
            raise full from e
        raise StorageError(
            f"storage {redact_url(storage)}: cannot read it as an Optuna {'journal' if journal else 'database'} ({cause})"
        ) from e
