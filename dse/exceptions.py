"""The ``DseError`` hierarchy.

Every error raised on purpose by ``dse`` derives from :class:`DseError` and says what was
wrong and how to fix it. Errors raised while handling another exception are chained with
``raise ... from e`` so the original traceback is kept.
"""

from __future__ import annotations

import errno as _errno

__all__ = [
    "DseError",
    "ConfigError",
    "SearchSpaceError",
    "BackendError",
    "DatasetError",
    "DatasetUnavailableError",
    "TrialError",
    "TrainingDivergedError",
    "InvalidHlsConfigError",
    "ConversionError",
    "MeasurementError",
    "ToolNotFoundError",
    "ToolFailedError",
    "ReportParseError",
    "StudyNotFoundError",
    "WorkerLostError",
    "TrialTimeoutError",
    "DriverLostError",
    "TrialInterruptedError",
    "DriverTerminated",
    "StorageUnavailableError",
    "StorageError",
    "TrackingError",
    "ClusterUnreachableError",
    "ClusterError",
    "WorkerCodeError",
    "DiskFullError",
    "ExportError",
    "disk_full_cause",
    "disk_full_error",
    "full_path",
]


class DseError(Exception):
    """Base class of every error ``dse`` raises on purpose."""


class ConfigError(DseError):
    """An experiment file is missing, unreadable or fails validation.

    The message names the field (dotted path), the bad value and what is allowed.
    """


class SearchSpaceError(ConfigError):
    """A search space file is invalid (unknown type, bad bounds, a rule on an unknown parameter)."""


class BackendError(ConfigError, ValueError):
    """A resource backend cannot be registered, imported or found by name (``resources.backend``, ``--backend``).

    Also a :class:`ValueError`, which pydantic turns into a field error where a config field names the backend.
    """


class DatasetError(DseError):
    """A dataset is malformed: NaN/inf values, wrong shapes, one class, labels out of range."""


class DatasetUnavailableError(DatasetError):
    """A dataset cannot be loaded (offline, missing file); the message says how to supply it."""


class TrialError(DseError):
    """A step of one trial failed; the trial is recorded as FAIL with this message."""


class TrainingDivergedError(TrialError):
    """Training produced a NaN or infinite loss."""


class InvalidHlsConfigError(TrialError):
    """A Strategy/ReuseFactor/IOType combination hls4ml cannot implement, refused before training."""


class ConversionError(TrialError):
    """hls4ml conversion, ``compile()`` or C simulation failed."""


class MeasurementError(TrialError):
    """A resource backend could not produce a figure. No number is invented in its place."""


class ToolNotFoundError(MeasurementError):
    """An external tool (g++, yosys, vitis-run, vivado_hls, vivado) is not on PATH; the message says how to install it."""


class ToolFailedError(MeasurementError):
    """An external tool exited non-zero or ran past its time limit."""


class ReportParseError(MeasurementError):
    """A tool's report folder or file is missing, incomplete or unreadable.

    The message names the folder or file, what is missing or malformed, and how to fix it.
    """


class StudyNotFoundError(DseError):
    """No study of that name exists in the given storage.

    Attributes:
        found: what was looked at and found (``"no study named 'x' in <URL>; studies there: ['a']"``),
            without the message's advice on where else to look, so that a command with other
            options can word its own; ``None`` when the message carries no such advice.
    """

    def __init__(self, message: str, found: str | None = None):
        super().__init__(message)
        self.found = found


class WorkerLostError(TrialError):
    """The Ray worker running a trial died (SIGKILL, OOM kill, node lost) after ``ray.max_retries`` retries."""


class TrialTimeoutError(TrialError):
    """A trial ran past ``trial_timeout_s`` and was cancelled."""


class DriverLostError(TrialError):
    """A trial was left RUNNING by a driver that stopped sending heartbeats; it was failed and re-enqueued."""


class TrialInterruptedError(TrialError):
    """A trial was running when its driver stopped (Ctrl-C, SIGTERM, an error in the study loop); it was failed and re-enqueued.

    Like :class:`DriverLostError`, such a trial was never evaluated, so it does not count towards
    ``n_trials``: the next ``dse run`` evaluates its parameters again.
    """


class DriverTerminated(BaseException):
    """The driver received SIGTERM (``kill``, a batch scheduler, Kubernetes) while a study ran.

    Raised in the driver's main thread so the study stops as it does on Ctrl-C: running trials
    are failed as :class:`TrialInterruptedError` and re-enqueued, the MLflow parent run ends
    KILLED. A ``BaseException`` (like ``KeyboardInterrupt``), so no ``except Exception`` swallows it;
    ``dse run`` exits with code 143 (128 + SIGTERM).
    """


class StorageUnavailableError(DseError):
    """The Optuna storage stayed unreachable longer than ``storage_retry_s``; finished trials are kept."""


class StorageError(ConfigError):
    """The Optuna storage URL (``storage``) is malformed, its driver is missing, or its database cannot be reached or created."""


class TrackingError(ConfigError):
    """``mlflow.tracking_uri`` is malformed, or the MLflow server it names does not answer."""


class ClusterUnreachableError(ConfigError):
    """``ray.address`` is malformed, or nothing listens at that address."""


class ClusterError(DseError):
    """A Ray cluster cannot be joined (unreachable head, missing or wrong auth token)."""


class WorkerCodeError(DseError):
    """A Ray worker imported other ``dse`` code than the driver's (:func:`dse._code.check_same_code`): a ``dse``
    package in the folder the driver was started in, which Ray puts first on a local worker's import path, or another
    ``dse`` installed on a cluster's node. The study stops; its trial is re-enqueued."""


class ExportError(DseError):
    """A trial cannot be exported (not complete, no MLflow run, artifacts missing): :func:`dse.export.export_design`."""


class DiskFullError(DseError):
    """A disk that dse writes to (the run directory, the Optuna storage, the MLflow store, a report's folder) is full.

    What was written before it filled is kept: completed trials, earlier reports' files.
    """


#: What the OS, SQLite and PostgreSQL say when a disk is full (ENOSPC; sqlite3: SQLITE_FULL; PostgreSQL: SQLSTATE 53100).
DISK_FULL_TEXTS = ("database or disk is full", "No space left on device", "could not extend file")


def disk_full_cause(e: BaseException) -> BaseException | None:
    """The exception in ``e``'s chain (``e``, its ``__cause__``, ``__context__``, SQLAlchemy's ``orig``) that says a disk is full, else None.

    An ``OSError`` with ``errno.ENOSPC`` (a file write: a PNG, a CSV, an artifact) or an error whose
    text is one of :data:`DISK_FULL_TEXTS` (SQLite's ``database or disk is full`` through SQLAlchemy,
    PostgreSQL's ``could not extend file``). Where several in the chain say so, the innermost
    (the database driver's own error rather than SQLAlchemy's wrapper of it).
    """
    seen: set[int] = set()
    found, todo = None, [e]
    while todo:
        x = todo.pop()
        if id(x) in seen:
            continue
        seen.add(id(x))
        if (isinstance(x, OSError) and x.errno == _errno.ENOSPC) or any(t in str(x) for t in DISK_FULL_TEXTS):
            found = x  # the innermost that says so: the driver's own words, without SQLAlchemy's SQL and links
        todo += [c for c in (x.__cause__, x.__context__, getattr(x, "orig", None)) if isinstance(c, BaseException)]
    return found


def disk_full_error(e: BaseException, kept: str) -> DiskFullError | None:
    """A :class:`DiskFullError` for ``e`` if a disk being full is in its chain (:func:`disk_full_cause`), else None.

    Args:
        e: the exception that stopped a command.
        kept: what was kept and how to go on, appended to the message (``"What was written before is kept; ..."``).

    Returns:
        ``a disk is full (<file>): <the innermost error's type>: <its text>. <kept>``, or None.
    """
    full = disk_full_cause(e)
    if full is None:
        return None
    path = full_path(full)
    where = f" ({path})" if path else ""
    text = " ".join(str(full).split())[:300]
    return DiskFullError(f"a disk is full{where}: {type(full).__name__}: {text}. {kept}")


def full_path(full: BaseException) -> str | None:
    """The file a disk-full ``OSError`` was writing: the destination of a copy (``filename2``), else ``filename``; else None."""
    path = (full.filename2 or full.filename) if isinstance(full, OSError) else None
    return str(path) if path else None
