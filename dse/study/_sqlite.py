"""The SQLite files a study writes beside Optuna's: write-ahead-log mode, folding the log back in, creating MLflow's
default store whole, and telling a damaged file from a busy one.

Every function here takes the file's path and talks to SQLite directly (Python's ``sqlite3``), never through MLflow's
or Optuna's engines, so it can run before either opens the file.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from dse.exceptions import TrackingError
from dse.study._storage import reading_on_a_full_disk

__all__ = ["enable_wal", "fold_write_ahead_logs", "create_mlflow_store", "damaged_sqlite"]

log = logging.getLogger(__name__)

#: Seconds without a write after which a store another process created counts as finished (MLflow's migrations of a
#: new SQLite store take about 1.3 s).
_QUIET_S = 5.0


def enable_wal(db: Path, wait_s: float = 30.0) -> bool:
    """Put the SQLite file ``db`` (created if missing) in write-ahead-log mode; the mode stays with the file.

    A commit then appends to ``<db>-wal`` instead of rewriting pages behind a rollback
    journal: one fsync instead of several. Readers and writers of other processes on the
    same machine keep working (not on network file systems).

    Switching needs the file to itself for a moment: another process reading or writing it
    (``mlflow ui`` or a script's ``mlflow.search_runs`` on a new study's store) is waited for, up
    to ``wait_s`` seconds. Past that the file stays in its rollback-journal mode (slower commits,
    nothing else changes), with a warning; before 2026-12-07 the first ``dse run`` of a study
    ended there in a traceback (``database is locked``, probe 36).

    Returns:
        True when the file is in WAL mode, False when other processes held it for ``wait_s``.

    Raises:
        DiskFullError: the file's disk is (nearly) full (:func:`reading_on_a_full_disk`).
        sqlite3.OperationalError: any other failure to open the file.
    """
    import sqlite3

    db.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            con = sqlite3.connect(db, timeout=max(0.1, min(5.0, deadline - time.monotonic())))
            try:
                if con.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
                    return True  # already (another driver, or an earlier run, switched it): no lock needed
                if con.execute("PRAGMA journal_mode=WAL").fetchone()[0].lower() == "wal":
                    return True
            finally:
                con.close()
            busy = "the mode did not change"
        except sqlite3.OperationalError as e:  # "disk I/O error" with tens of KB free (probe 32: a traceback, exit 1)
            if (full := reading_on_a_full_disk(db, e)) is not None:
                raise full from e
            if not any(w in str(e).lower() for w in ("locked", "busy")):
                raise
            busy = str(e)
        if time.monotonic() >= deadline:
            log.warning("%s stays in SQLite's rollback-journal mode this run (slower commits): other processes held it "
                        "for %g s (%s), e.g. `mlflow ui` or a script reading it", db, wait_s, busy)
            return False
        time.sleep(0.2)


def fold_write_ahead_logs(files: list[Path | None]) -> None:
    """Copy the write-ahead log of each SQLite file in ``files`` into it (``PRAGMA wal_checkpoint(PASSIVE)``).

    SQLite folds the log in when the last connection to a database closes, as at the end of a ``dse run``; a driver
    stopped by Ctrl-C or SIGTERM leaves with connections open, and its ``optuna.db-wal`` (222 KB in probe 32) held
    the interrupted trials: a copy of ``optuna.db`` alone lacked them. After this the file alone is whole, whatever is
    left beside it. ``PASSIVE`` never waits for nor blocks another process (a second driver of the study, its
    workers): where one is reading, the part of the log it still reads stays in the log only, said at INFO (that
    process folds it in when it ends). ``None``, missing files and files without a log (a journal storage's) are
    skipped.
    """
    import sqlite3

    for db in files:
        if db is None or not db.is_file() or not db.with_name(db.name + "-wal").exists():
            continue
        try:
            con = sqlite3.connect(db, timeout=0)
            try:
                busy, frames, copied = con.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            finally:
                con.close()
        except sqlite3.Error as e:
            log.info("the write-ahead log of %s was not copied into it (%s); it is, when the last process using it ends", db, e)
            continue
        if busy or (frames >= 0 and copied < frames):
            log.info("the write-ahead log of %s was copied into it in part (%d of %d pages; another process reads it): "
                     "the rest is, when the last process using it ends", db, max(copied, 0), max(frames, 0))


def create_mlflow_store(db: Path, wait_s: float = 60.0) -> None:
    """Create a new default MLflow store at ``db`` under another name and link it into place once built.

    MLflow builds a new SQLite store by running its migrations (about 1.3 s), which SQLite cannot
    do atomically: a driver killed halfway (a SIGKILL while Ray starts beside it) left tables such
    as ``_alembic_tmp_experiments`` behind, and no later run could open the store. A store that
    exists, is not empty and that no process has written for 5 s is left alone. Call under the run directory's store lock: the
    ``.mlflow.db.creating-<pid>`` files found then are left by builds that were killed (or that
    failed, e.g. on a full disk) and are removed.

    The built store is hard-linked into place, which fails where a file already is: another process
    may have created ``db`` meanwhile (``mlflow ui`` or a script's ``mlflow.search_runs`` on the new
    study's store runs MLflow's migrations itself). That store is waited for, up to ``wait_s``
    seconds, until it holds MLflow's latest revision or nobody has written it for 5 s, and kept.
    Before 2026-12-07 the built store replaced a file another process had open, which then failed
    (``attempt to write a readonly database``, ``disk I/O error``) and could leave the store corrupt,
    and a store found mid-migration was migrated a second time beside it (probe 36). Only an empty
    file that nobody writes is replaced.

    Raises:
        TrackingError: another process has been writing the store for ``wait_s`` and it is still incomplete.
    """
    for stale in db.parent.glob(f".{db.name}.creating-*"):  # under the lock no other build runs
        stale.unlink(missing_ok=True)
    journal = db.with_name(db.name + "-journal")  # a write in progress in another process (rollback-journal mode)
    if db.exists() and db.stat().st_size > 0 and not journal.exists() and (
            _in_wal_mode(db) or time.time() - db.stat().st_mtime > _QUIET_S):  # WAL: switched by a driver, so complete
        return
    from mlflow.tracking import MlflowClient

    partial = db.with_name(f".{db.name}.creating-{os.getpid()}")
    try:
        MlflowClient(f"sqlite:///{partial}").search_experiments(max_results=1)  # runs MLflow's migrations
        try:
            os.link(partial, db)  # only where no file is: never in place of a file another process has open
            return
        except FileExistsError:
            pass
        except OSError:  # a file system without hard links
            if not db.exists():
                os.replace(partial, db)
                return
        head = _store_revision(partial)
        deadline = time.monotonic() + wait_s
        last, since = None, time.monotonic()
        while time.monotonic() < deadline:
            st, writing = db.stat(), journal.exists()
            revision = _store_revision(db) if st.st_size > 0 and not writing else None
            jst = journal.stat() if writing else None
            if (state := (st.st_size, st.st_mtime_ns, jst and (jst.st_size, jst.st_mtime_ns), revision)) != last:
                last, since = state, time.monotonic()
            if revision is not None and revision == head:
                log.info("MLflow store %s was created by another process meanwhile (e.g. `mlflow ui`); using it", db)
                return
            if time.monotonic() - since >= _QUIET_S:  # nobody has written it (nor its journal) for a while
                if writing:  # a write a killed process left: SQLite undoes it when the file is opened read-write
                    _open_read_write(db)
                elif st.st_size == 0:  # an empty file left behind
                    os.replace(partial, db)
                # else another MLflow's store, or no MLflow store at all: MLflow says which when it opens it
                return
            time.sleep(0.2)
        raise TrackingError(f"MLflow store {db}: another process has been writing it for {wait_s:g} s and it is still not "
                            "a complete MLflow store; stop what else opens it (`mlflow ui`, a script) and run again")
    finally:
        for left in (partial, partial.with_name(partial.name + "-journal")):
            left.unlink(missing_ok=True)


def _open_read_write(db: Path) -> None:
    """Open the SQLite file ``db`` read-write and read its schema, so SQLite rolls back a write a killed process left in
    its ``-journal`` (a hot journal); errors are left to the store's next user (MLflow), which names them."""
    import sqlite3

    try:
        _first_row(db, "SELECT count(*) FROM sqlite_master", read_only=False, timeout_s=5.0)
    except sqlite3.Error as e:
        log.info("MLflow store %s: %s", db, e)


def _in_wal_mode(db: Path) -> bool:
    """Whether the SQLite file ``db`` is in WAL mode, read from its header (bytes 18-19 are 2; SQLite's file format), without a lock."""
    try:
        with open(db, "rb") as f:
            header = f.read(20)
    except OSError:
        return False
    return len(header) == 20 and header[18] == 2 and header[19] == 2


def _store_revision(db: Path) -> str | None:
    """The Alembic revision MLflow's migrations left in the SQLite store ``db`` (None: none yet, or unreadable)."""
    import sqlite3

    try:
        row = _first_row(db, "SELECT version_num FROM alembic_version")
    except sqlite3.Error:
        return None
    return row[0] if row else None


def damaged_sqlite(db: Path) -> str | None:
    """SQLite's reason why the file ``db`` cannot be read as a database (its schema is read, read-only), or None.

    ``malformed database schema``, ``file is not a database`` and ``database disk image is malformed`` are damage.
    Anything else is not (None): a lock held by another process, a write a killed process left in a rollback journal
    (SQLite undoes it when the file is next opened read-write; a read-only open says ``attempt to write a readonly
    database``), a full disk.
    """
    import sqlite3

    try:
        _first_row(db, "SELECT count(*) FROM sqlite_master", timeout_s=5.0)
    except sqlite3.DatabaseError as e:
        text = str(e)
        return text if any(w in text.lower() for w in ("malformed", "not a database")) else None
    return None


def _first_row(db: Path, sql: str, read_only: bool = True, timeout_s: float = 1.0) -> tuple | None:
    """The first row of ``sql`` on the SQLite file ``db``, waiting up to ``timeout_s`` seconds for other processes' locks.

    Opened ``read_only``, nothing is written, not even the undoing of a write a killed process left in a hot journal;
    opened read-write, SQLite undoes that write first.

    Raises:
        sqlite3.Error: the file cannot be read (locked past ``timeout_s``, damaged, no such table, ...).
    """
    import sqlite3

    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=timeout_s) if read_only else sqlite3.connect(db, timeout=timeout_s)
    try:
        return con.execute(sql).fetchone()
    finally:
        con.close()
