"""Keep a default MLflow store working after its run directory is moved or copied.

The default store of a study is ``sqlite:///<run_dir>/mlflow.db`` with artifacts under
``<run_dir>/mlartifacts``. MLflow records *absolute* ``file://`` artifact locations: one per
experiment (``experiments.artifact_location``), one per run (``runs.artifact_uri``) and one per
logged model (``logged_models.artifact_location``). After ``mv runs/a /elsewhere/a`` those
still point at ``runs/a/mlartifacts``, so downloads fail (or, after a copy, silently read the
original).

:func:`relocate_default_store` rewrites every such location that starts with a recorded root
``.../mlartifacts`` other than the current ``<run_dir>/mlartifacts`` to the current one, in one
SQLite transaction. Every ``dse`` command that opens a default store calls it first (``dse
run`` through :class:`~dse.tracking.StudyTracker`, ``dse report``/``compare``/``export``
through :func:`open_tracking`), so a moved folder works again for ``mlflow ui`` and
``mlflow.search_runs`` once any ``dse`` command has opened it there. Stores given by
``mlflow.tracking_uri`` (a server, PostgreSQL) are never touched.
"""

from __future__ import annotations

import logging
import socket
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse, urlsplit, urlunsplit

from dse._args import expect
from dse.config import JOURNAL, redact_url, sqlite_path, storage_file

if TYPE_CHECKING:
    from dse.store import StudyRecords

__all__ = ["relocate_default_store", "default_store_paths", "open_tracking", "TrackingLocation", "log_files", "server_problem"]

log = logging.getLogger(__name__)

_ROOT_NAME = "mlartifacts"
#: (table, column) pairs holding absolute artifact locations in MLflow's SQL schema (MLflow 2-3).
_LOCATION_COLUMNS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("logged_models", "artifact_location"),
)


def default_store_paths(run_dir: Path) -> tuple[str, str]:
    """``(tracking_uri, artifact_root_uri)`` of the default store in ``run_dir``."""
    run_dir = Path(run_dir).resolve()
    return f"sqlite:///{run_dir / 'mlflow.db'}", (run_dir / _ROOT_NAME).as_uri()


def relocate_default_store(tracking_uri: str, artifact_root: str) -> int:
    """Point every artifact location recorded in a default SQLite store at ``artifact_root``.

    A location is rewritten when it is a ``file:`` URI (or plain path) whose path contains a
    folder named ``mlartifacts`` that is not ``artifact_root``: the part up to and including
    that folder is replaced by ``artifact_root``.

    Args:
        tracking_uri: ``sqlite:///<run_dir>/mlflow.db``; other URIs are left alone.
        artifact_root: ``file://<run_dir>/mlartifacts`` (where the artifacts now are).

    Returns:
        The number of rows rewritten (0 when the store is where it was made, is absent, or is read-only: then said in
        a warning).
    """
    db = sqlite_path(tracking_uri)
    if db is None or not db.is_file():
        return 0
    new_root = unquote(urlparse(artifact_root).path) if artifact_root.startswith("file:") else artifact_root
    new_root = new_root.rstrip("/")
    changed = 0
    con = sqlite3.connect(db, timeout=30)
    try:
        with con:  # one transaction
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            for table, column in _LOCATION_COLUMNS:
                if table not in tables:
                    continue
                key = "rowid"
                for rowid, loc in con.execute(f"SELECT {key}, {column} FROM {table}").fetchall():
                    new = _relocated(loc, new_root)
                    if new is not None:
                        con.execute(f"UPDATE {table} SET {column} = ? WHERE {key} = ?", (new, rowid))
                        changed += 1
    except sqlite3.OperationalError as e:  # a read-only archive (probe 32: report and export ended in a traceback)
        if "readonly" not in str(e).replace("-", "").replace(" ", "").lower():
            raise
        log.warning("MLflow store %s is read-only, so its artifact locations were not pointed at %s (it was moved or "
                    "copied): its runs and metrics are read, and artifacts only where their recorded folder still has "
                    "them; a writable copy (cp -r) is relocated in full", db, new_root)
        return 0
    finally:
        con.close()
    if changed:
        log.info("MLflow store %s was moved: %d artifact locations now under %s", db, changed, new_root)
        _forget_artifact_repos()
    return changed


def _forget_artifact_repos() -> None:
    """Drop MLflow's per-process cache of artifact repositories (run id -> repository at the old path).

    ``mlflow.tracking._tracking_service.utils._artifact_repos_cache`` is private (MLflow 3); a
    process that logged to a run before its store moved would otherwise keep writing to the old
    folder. Only this function touches it.
    """
    try:
        from mlflow.tracking._tracking_service import utils

        utils._artifact_repos_cache.clear()
    except (ImportError, AttributeError):  # another MLflow version: nothing cached there, or cached elsewhere
        log.debug("MLflow artifact repository cache not found; nothing to clear")


def _relocated(loc: str | None, new_root: str) -> str | None:
    """``loc`` moved under ``new_root``, or ``None`` when it needs no change."""
    if not loc:
        return None
    if loc.startswith("file:"):
        path = unquote(urlparse(loc).path)
    elif loc.startswith("/"):
        path = loc
    else:
        return None
    parts = path.split("/")
    if _ROOT_NAME not in parts:
        return None
    i = len(parts) - 1 - parts[::-1].index(_ROOT_NAME)
    old_root = "/".join(parts[: i + 1])
    if old_root == new_root:
        return None
    rest = "/".join(parts[i + 1 :])
    moved = new_root + ("/" + rest if rest else "")
    return Path(moved).as_uri() if loc.startswith("file:") else moved


@dataclass(frozen=True)
class TrackingLocation:
    """Where a study's MLflow runs are now.

    Attributes:
        tracking_uri: the MLflow tracking URI to open.
        run_dir: the study's run directory as found now (where reports go by default).
        default_store: True for ``sqlite:///<run_dir>/mlflow.db`` stores (relocated if moved).
    """

    tracking_uri: str
    run_dir: Path
    default_store: bool

    @property
    def missing_store(self) -> Path | None:
        """The SQLite store's file (the default ``mlflow.db`` or a recorded ``sqlite:///`` URI's) when it does not exist
        (opening it would create an empty store), else ``None``."""
        db = sqlite_path(self.tracking_uri)
        return db if db is not None and not db.is_file() else None


def open_tracking(records: "StudyRecords", storage_url: str, tracking_uri: str | None = None) -> TrackingLocation:
    """Find a study's MLflow store where it is now, relocating a moved default store.

    With a default store (``mlflow.tracking_uri: null``) and the Optuna storage in the run
    directory (default SQLite, or ``storage: journal``), the run directory is the folder of the
    Optuna database actually opened, so a moved run directory is found by
    ``--storage sqlite:///<new place>/optuna.db`` (or ``--storage <new place>/optuna.log``). Otherwise the stored
    experiment's run directory and tracking URI are used as recorded; a relative ``run_dir`` (the default
    ``runs/<name>``) resolves against the current folder, so where the store the driver recorded
    (:attr:`dse.store.StudyRecords.tracking_uri`) still exists, its folder is the run directory.

    ``tracking_uri`` (``--tracking-uri`` of ``dse report`` and ``dse export``) replaces the recorded
    URI: the study's MLflow server seen through another address (a port-forward to a cluster's
    in-cluster service), or its store moved to where its recorded path no longer leads. Its runs
    are read there by their recorded ids.

    Raises:
        ConfigError: the study was not made by ``dse run`` (no stored experiment), or ``tracking_uri``
            holds no store or not the study's parent run.
        TypeError: ``tracking_uri`` is not a string.
    """
    exp = records.experiment(reading=True)
    if tracking_uri is not None:
        expect("tracking_uri", tracking_uri, str, "give a URI such as http://127.0.0.1:5000 or sqlite:////abs/mlflow.db")
        db = _check_holds_study(tracking_uri, records)
        if db is not None and (db.parent / _ROOT_NAME).is_dir():  # a default store moved with its artifacts beside it
            uri, root = default_store_paths(db.parent)
            relocate_default_store(uri, root)
            return TrackingLocation(uri, db.parent, True)
        return TrackingLocation(tracking_uri, exp.resolved_run_dir, False)
    if exp.mlflow.tracking_uri is not None:
        return TrackingLocation(exp.mlflow.tracking_uri, exp.resolved_run_dir, False)
    run_dir = exp.resolved_run_dir
    db = storage_file(storage_url)
    if exp.storage in (None, JOURNAL) and db is not None:
        run_dir = db.resolve().parent
    elif exp.run_dir is None or not Path(exp.run_dir).expanduser().is_absolute():
        # a relative run_dir resolves against the current folder: read from another one, the store the driver
        # recorded is the study's, where it still exists
        recorded = sqlite_path(records.tracking_uri) if records.tracking_uri else None
        if recorded is not None and recorded.is_file() and recorded.parent != run_dir:
            run_dir = recorded.parent
    tracking_uri, root = default_store_paths(run_dir)
    relocate_default_store(tracking_uri, root)
    return TrackingLocation(tracking_uri, run_dir, True)


def _check_holds_study(tracking_uri: str, records: "StudyRecords") -> Path | None:
    """Refuse a ``--tracking-uri`` that does not hold the study's parent run (a server that does not answer is left to the caller).

    Returns:
        The SQLite store's file, for a ``sqlite:///`` URI; else None.

    Raises:
        ConfigError: a SQLite store or a file store's folder that does not exist (opening it would
            create an empty one), or a store without the study's parent run.
    """
    from dse.exceptions import ConfigError

    recorded = f" (the study recorded {redact_url(records.tracking_uri)})" if records.tracking_uri else ""
    parts = urlparse(tracking_uri)
    if parts.scheme in ("", "file"):  # a file store: MLflow would create the folder and an experiment in it
        folder = Path(unquote(parts.path) if parts.scheme else tracking_uri).expanduser()
        if not folder.is_dir():
            raise ConfigError(f"--tracking-uri (Python: tracking_uri=): no MLflow store at {folder}{recorded}; give the study's "
                              "tracking URI (sqlite:////path/mlflow.db, http://host:port), or leave --tracking-uri out")
    try:
        db = sqlite_path(tracking_uri)
    except Exception:  # not a URL SQLAlchemy parses: MLflow names it below
        db = None
    if db is not None and not db.is_file():
        raise ConfigError(f"--tracking-uri (Python: tracking_uri=): no MLflow store at {db}{recorded}; give the path of the study's mlflow.db, "
                          "or leave --tracking-uri out to use the recorded one")
    if server_problem(tracking_uri) is not None or records.parent_run_id is None:
        return db
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        MlflowClient(tracking_uri).get_run(records.parent_run_id)
    except MlflowException as e:
        raise ConfigError(f"--tracking-uri (Python: tracking_uri=): {redact_url(tracking_uri)} has no run {records.parent_run_id}, the study's MLflow "
                          f"parent run{recorded}; give the tracking URI of the store the study logged to") from e
    return db


def log_files(tracking_uri: str, run_id: str, files: list[Path], artifact_path: str) -> None:
    """Log ``files`` as artifacts ``<artifact_path>/<name>`` of ``run_id`` in the store at ``tracking_uri``.

    The folder then holds these files only: files an earlier page logged there that ``files``
    lacks (a figure the new page no longer draws) are deleted, as the page writers clear their
    output folder (:mod:`dse.report._outputs`), where the artifact store allows deleting
    (MLflow's local and ``mlflow-artifacts`` stores do); elsewhere they stay, with a warning.

    MLflow caches one artifact repository per run id and process; two stores holding the same
    run id (a copied run directory) would share it, so the cache is dropped first.
    """
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
    from mlflow.tracking import MlflowClient

    _forget_artifact_repos()
    client = MlflowClient(tracking_uri)
    keep = {f.name for f in files}
    stale = [a.path for a in client.list_artifacts(run_id, artifact_path)
             if not a.is_dir and a.path.rsplit("/", 1)[-1] not in keep]
    if stale:
        repo = get_artifact_repository(client.get_run(run_id).info.artifact_uri)
        for path in stale:
            try:
                repo.delete_artifacts(path)
            except Exception as e:  # a store without deletion: the new files are still logged
                log.warning("could not delete the earlier artifact %s of run %s (%s: %s); it stays beside the new %s/",
                            path, run_id, type(e).__name__, e, artifact_path)
    for f in files:
        client.log_artifact(run_id, str(f), artifact_path)


def server_problem(uri: str, timeout_s: float = 5.0) -> str | None:
    """``GET <uri>/health`` once (``timeout_s`` seconds); return why the MLflow server did not answer, or None
    (any HTTP answer counts; a tracking URI that is no ``http(s)://`` server, e.g. a SQLite store, is not asked)."""
    import ipaddress
    import urllib.error
    import urllib.request

    parts = urlsplit(uri)
    if parts.scheme.lower() not in ("http", "https"):
        return None
    host = parts.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    handlers = [urllib.request.ProxyHandler({})] if loopback else []  # a proxy would never reach our own loopback
    opener = urllib.request.build_opener(*handlers)
    netloc = parts.netloc.rpartition("@")[2]  # user info is no part of a host urllib connects to (before: "does not
    # resolve" for http://user:pw@host); it goes as basic authentication, as MLflow's client sends it
    request = urllib.request.Request(urlunsplit((parts.scheme, netloc, parts.path.rstrip("/") + "/health", "", "")))
    if parts.username is not None:
        import base64

        token = base64.b64encode(f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with opener.open(request, timeout=timeout_s) as response:
            response.read(256)
        return None
    except urllib.error.HTTPError as e:
        log.warning("mlflow.tracking_uri %s: GET /health answered HTTP %s; going on, since a server answers", redact_url(uri), e.code)
        return None
    except urllib.error.URLError as e:
        reason = e.reason
        if isinstance(reason, ConnectionRefusedError):
            return "connection refused: nothing listens there"
        if isinstance(reason, (socket.timeout, TimeoutError)):
            return f"no answer within {timeout_s:.0f} s"
        if isinstance(reason, socket.gaierror):
            return f"host name {host!r} does not resolve"
        return str(getattr(reason, "strerror", None) or reason)
    except (socket.timeout, TimeoutError):
        return f"no answer within {timeout_s:.0f} s"
    except (OSError, ValueError) as e:
        return f"{type(e).__name__}: {e}"
