"""Every check ``dse run`` makes before it creates anything (``dse check`` runs the same ones).

Cheap checks first: the storage URL, the MLflow tracking URI, the Ray address and the run
directory; then the dataset; then the hls4ml settings the search space can produce. Nothing is
created on disk or in any store here: SQLite files and folders are only checked for being
creatable, servers are only probed with one TCP connection (or one ``GET /health``) to the
address the experiment names, with a short timeout.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

from dse._args import expect, is_real_number
from dse._stderr import native_stderr_to_debug_log
from dse.config import ExperimentConfig, Hls4mlConfig, RayConfig, SearchSpace, enqueued_params, journal_path, redact_url, revalidate, sqlite_path, storage_file
from dse.data import Splits
from dse.exceptions import ClusterUnreachableError, ConfigError, StorageError, TrackingError
from dse.study._ray_session import check_local_ray_folder, cluster_address
from dse.study._sqlite import damaged_sqlite
from dse.tracking._relocate import server_problem

__all__ = [
    "preflight",
    "changed_experiment_error",
    "constraints_error",
    "space_error",
    "stored_study_error",
    "check_storage_url",
    "check_tracking_uri",
    "check_cluster_token",
    "check_ray_address",
    "check_creatable",
    "sqlite_path",
    "CONNECT_TIMEOUT_S",
]

log = logging.getLogger(__name__)

#: Seconds to wait for a TCP connection or an HTTP answer from a server the experiment names.
CONNECT_TIMEOUT_S = 5.0

_DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306, "mssql": 1433, "oracle": 1521}
_DRIVER_PACKAGES = {
    "psycopg2": "psycopg2-binary", "psycopg": "psycopg[binary]", "pg8000": "pg8000", "asyncpg": "asyncpg",
    "pymysql": "pymysql", "mysqldb": "mysqlclient", "mysqlconnector": "mysql-connector-python",
    "pyodbc": "pyodbc", "oracledb": "oracledb", "cx_oracle": "cx_Oracle",
}
_STORAGE_EXAMPLES = ("sqlite:///runs/<name>/optuna.db, postgresql+psycopg://user:password@host:5432/db (the cluster extra installs psycopg 3), a journal file "
                     "runs/<name>/optuna.log (storage: journal in an experiment), or null for the default")


def _tcp_problem(host: str, port: int, timeout: float = CONNECT_TIMEOUT_S) -> str | None:
    """Open and close one TCP connection to ``host:port``; return why it failed, or None."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except socket.gaierror as e:
        return f"host name {host!r} does not resolve ({e.strerror or e})"
    except (socket.timeout, TimeoutError):
        return f"no answer from {host}:{port} within {timeout:.0f} s"
    except ConnectionRefusedError:
        return f"connection to {host}:{port} refused: nothing listens there"
    except OSError as e:
        return f"cannot connect to {host}:{port} ({e.strerror or e})"


def check_creatable(path: Path, *, field: str, kind: str, error: type[ConfigError] = ConfigError) -> None:
    """Refuse ``path`` if it could not be created (or, if it exists, written), creating nothing.

    Args:
        path: a file or folder that ``dse run`` will create.
        field: the field that names it, for the message.
        kind: ``"file"`` or ``"folder"``.
        error: exception class to raise.

    Raises:
        error: ``path`` exists as the wrong kind or is not writable, lies under a file, or its
            nearest existing folder is not writable.
    """
    path = Path(path).absolute()
    try:
        _check_creatable(path, field=field, kind=kind, error=error)
    except OSError as e:  # a name too long, a loop of links, ...: the path itself is unusable
        raise error(f"{field}: {path if len(str(path)) <= 200 else str(path)[:200] + '...'} cannot be used "
                    f"({e.strerror or e}); pick another path") from e


def _check_creatable(path: Path, *, field: str, kind: str, error: type[ConfigError]) -> None:
    if path.exists():
        if kind == "folder" and not path.is_dir():
            raise error(f"{field}: {path} is a file, but dse needs a folder there; pick another path or move the file")
        if kind == "file" and path.is_dir():
            raise error(f"{field}: {path} is a directory, but a database file is needed there; give a file path")
        if not os.access(path, os.W_OK | (os.X_OK if kind == "folder" else os.R_OK)):
            raise error(f"{field}: {path} exists but is not writable by this user; fix its permissions or pick another path")
        if kind == "folder" and (why := _takes_no_new_entries(path)):
            raise error(f"{field}: {path} exists but takes no new files ({why}); pick another path")
        return
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise error(f"{field}: {path} would lie under {parent}, which is a file, not a folder; pick another path")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise error(f"{field}: cannot create {path}: folder {parent} is not writable by this user; pick another path")
    if why := _takes_no_new_entries(parent):
        raise error(f"{field}: cannot create {path}: folder {parent} takes no new files ({why}); pick another path")


def _takes_no_new_entries(folder: Path) -> str | None:
    """Why an empty folder cannot be made in ``folder`` (made and removed at once), else None.

    ``os.access`` answers from permission bits alone for root, so it says yes for pseudo file
    systems such as ``/proc`` and ``/sys``, where nothing can be created.
    """
    import tempfile

    try:
        os.rmdir(tempfile.mkdtemp(prefix=".dse-check-", dir=folder))
    except OSError as e:
        return e.strerror or str(e)
    return None


def _check_run_dir_in_urls(exp: ExperimentConfig) -> None:
    """The run directory must name itself in the ``sqlite:///<run_dir>/...`` URLs of the default stores.

    SQLAlchemy reads ``?`` in such a URL as the start of its query and ``%xx`` as an escape, so a
    run directory holding either put the Optuna database in another folder than MLflow's store,
    or both stores in one file named after the text before ``?``, and every run failed.

    Raises:
        ConfigError: the run directory holds ``?`` or a ``%xx`` escape and a store is the default SQLite file in it.
    """
    import re

    run_dir = str(exp.resolved_run_dir)
    defaults = [f for f, given in (("storage", exp.storage), ("mlflow.tracking_uri", exp.mlflow.tracking_uri)) if not given]
    found = (["'?'"] if "?" in run_dir else []) + [repr(m) for m in dict.fromkeys(re.findall(r"%[0-9A-Fa-f]{2}", run_dir))]
    if defaults and found:  # a '%' that starts no escape (runs/100%) is read as written
        raise ConfigError(
            f"{'run_dir' if exp.run_dir else 'run_dir (default runs/<name>, in the current folder)'}: {run_dir} holds "
            f"{' and '.join(found)}, which the SQLite URL of the default {' and '.join(defaults)} "
            "(sqlite:///<run_dir>/...) reads as a query or an escape, not as part of the path; pick a folder without "
            "'?' and '%', or give storage and mlflow.tracking_uri URLs of your own"
        )


#: ``<run_dir>/RUN_DIR_OWNER`` names the study whose files the run directory holds (written by its first `dse run`).
RUN_DIR_OWNER = ".dse-study"


def check_run_dir_owner(exp: ExperimentConfig) -> None:
    """The run directory must be this study's: its ``pareto_front.csv``, ``trials/``, ``report/`` and ``synth/`` are
    named by the folder alone, so two studies in one folder overwrote each other's (probe 32: the front of one study
    replaced by the other's, a kept trial's ``hls4ml_prj/`` a mix of both).

    Raises:
        ConfigError: ``<run_dir>/.dse-study`` names another study.
    """
    marker = exp.resolved_run_dir / RUN_DIR_OWNER
    try:
        owner = marker.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):  # none yet (a new folder, or one of a dse before 2026-12-07), or unreadable
        return
    if owner and owner != exp.name:
        raise _owned_by(exp, owner)


def _owned_by(exp: ExperimentConfig, owner: str) -> ConfigError:
    field = "run_dir" if exp.run_dir else "run_dir (default runs/<name>)"
    own = f" (e.g. runs/{exp.name})" if exp.resolved_run_dir != (Path("runs") / exp.name).resolve() else ""
    run_dir = exp.resolved_run_dir
    # a study an earlier dse ran in a shared folder keeps its trials there only if its stores are named (probe 34: the
    # advice alone started it over, empty, in the new folder)
    stores = [f"{name}: sqlite:///{run_dir / file}" for name, given, file in
              (("storage", exp.storage, "optuna.db"), ("mlflow.tracking_uri", exp.mlflow.tracking_uri, "mlflow.db"))
              if given is None and (run_dir / file).is_file()]
    keep = (f"; if study {exp.name!r} already ran there (a dse before 2026-12-07 let studies share a folder), also give "
            f"{' and '.join(stores)}, so that it keeps its trials and runs" if stores else "")
    return ConfigError(
        f"{field}: {run_dir} holds the files of study {owner!r} ({RUN_DIR_OWNER}), and study {exp.name!r} "
        f"would overwrite them (pareto_front.csv, trials/, report/ are named by the folder); give this experiment a "
        f"run_dir of its own{own}{keep}, or remove that folder once study {owner!r} is no longer needed")


def claim_run_dir(exp: ExperimentConfig) -> None:
    """Write ``<run_dir>/.dse-study`` with ``exp.name`` where it is missing (see :func:`check_run_dir_owner`).

    Created exclusively: of two studies started at once in a new folder, the second finds the first's claim.

    Raises:
        ConfigError: the folder was claimed by another study meanwhile.
    """
    marker = exp.resolved_run_dir / RUN_DIR_OWNER
    try:
        with open(marker, "x", encoding="utf-8") as fh:
            fh.write(exp.name + "\n")
    except FileExistsError:
        check_run_dir_owner(exp)
    except OSError as e:  # a read-only folder was refused before; the claim is a guard, not a record
        log.debug("could not write %s: %s", marker, e)


def check_storage_url(url: str, *, field: str = "storage", error: type[ConfigError] = StorageError) -> None:
    """Check a SQLAlchemy database URL or an Optuna journal file without creating or changing anything.

    A journal file (:func:`dse.config.journal_path`: a path ending in ``.log``) must be creatable,
    or an existing file whose first line is an Optuna journal record. A URL is parsed, its
    dialect and driver imported, and then: for SQLite, the database file must be creatable (or
    a writable file); for a server, one TCP connection is opened to its host and port, then one
    login (user, password, database; nothing is created).

    Args:
        url: the URL, e.g. ``sqlite:////abs/optuna.db`` or ``postgresql+psycopg://u:p@host/db``.
        field: the field that holds it (``storage``, ``mlflow.tracking_uri``, ``--storage``).
        error: exception class to raise.

    Raises:
        error: the URL does not parse, names an unknown database or a driver that is not
            installed, an in-memory SQLite database, an uncreatable SQLite file, a server
            that does not accept connections, or one that refuses the login.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    journal = journal_path(url)
    if journal is not None:
        check_creatable(journal, field=field, kind="file", error=error)
        if journal.is_file() and journal.stat().st_size > 0:
            with open(journal, "rb") as fh:
                first = fh.readline(4096)
            try:
                record = json.loads(first)
            except ValueError:
                record = None
            if not (isinstance(record, dict) and "op_code" in record):
                raise error(f"{field}: {journal} exists but is not an Optuna journal file; move it away or point {field} elsewhere")
        return
    try:
        u = make_url(url)
    except (ArgumentError, ValueError) as e:
        if url.lower().endswith((".db", ".sqlite", ".sqlite3")) and "://" not in url:  # a bare SQLite file path
            raise error(f"{field}: {url!r} is not a database URL; an SQLite file is given as "
                        f"sqlite:///{Path(url).expanduser().absolute()} (three slashes, then the absolute path)") from e
        raise error(f"{field}: {redact_url(url)!r} is not a database URL; use e.g. {_STORAGE_EXAMPLES}") from e
    try:
        dialect = u.get_dialect()
    except NoSuchModuleError as e:
        raise error(f"{field}: {u.drivername!r} in {u.render_as_string(hide_password=True)!r} is not a database SQLAlchemy knows; use e.g. {_STORAGE_EXAMPLES}") from e
    driver = u.get_driver_name()
    shown = u.render_as_string(hide_password=True)
    try:
        dialect.import_dbapi()
    except ImportError as e:
        package = _DRIVER_PACKAGES.get(driver.lower(), driver)
        raise error(
            f"{field}: {shown!r} needs the Python database driver {driver!r}, which is not installed; "
            f"install it (pip install {package}) or use a sqlite:/// URL"
        ) from e
    if u.get_backend_name() == "sqlite":
        db = sqlite_path(url)
        if db is None:
            raise error(f"{field}: {url!r} is an in-memory SQLite database, lost when dse exits; give a file, e.g. sqlite:///runs/x/optuna.db")
        check_creatable(db, field=field, kind="file", error=error)
        if db.is_file() and db.stat().st_size > 0:
            with open(db, "rb") as fh:
                if fh.read(16) != b"SQLite format 3\x00":
                    raise error(f"{field}: {db} exists but is not an SQLite database; move it away or point {field} elsewhere")
        return
    if u.host:
        port = u.port or _DEFAULT_PORTS.get(u.get_backend_name())
        if port:
            problem = _tcp_problem(u.host, port)
            if problem:
                raise error(f"{field}: the database server of {shown} is not reachable: {problem}; "
                            "start it, or fix the host and port")
        _login_problem(url, u, field=field, shown=shown, error=error)


def _login_problem(url: str, u: Any, *, field: str, shown: str, error: type[ConfigError]) -> None:
    """Log in to a database server once (one connection, nothing created) and raise ``error`` if it refuses.

    A server that answers TCP may still refuse the user, the password or the database name
    (PostgreSQL: ``FATAL: database "x" does not exist``); without this, `dse check` passed
    and `dse run` stopped on SQLAlchemy's ``OperationalError``.
    """
    from sqlalchemy import create_engine

    connect_args = {"connect_timeout": int(CONNECT_TIMEOUT_S)} if u.get_backend_name() in ("postgresql", "mysql") else {}
    engine = create_engine(url, connect_args=connect_args)
    try:
        with engine.connect():
            pass
    except Exception as e:  # sqlalchemy OperationalError: wrong password, no such database or user
        why = " ".join(str(getattr(e, "orig", None) or e).split())[:300]
        if u.password:
            why = why.replace(str(u.password), "***")
        raise error(
            f"{field}: the database server of {shown} refused the login: {why}; check the user, password and "
            "database name (the database must exist: e.g. createdb -O <user> <database>)"
        ) from e
    finally:
        engine.dispose()


def check_tracking_uri(uri: str, *, field: str = "mlflow.tracking_uri") -> None:
    """Check an MLflow tracking URI without creating anything.

    ``http(s)://`` servers get one ``GET <uri>/health`` (timeout :data:`CONNECT_TIMEOUT_S`);
    database URIs get :func:`check_storage_url`; ``databricks`` is passed through; a ``file:``
    store or a bare path is accepted only with ``MLFLOW_ALLOW_FILE_STORE=true`` (MLflow 3 refuses it otherwise).

    Raises:
        TrackingError: not a tracking URI, a server that does not answer, or a bad database URI.
    """
    hint = "use http(s)://host:port of an MLflow server, sqlite:///path/mlflow.db, or null for sqlite:///<run_dir>/mlflow.db"
    shown = redact_url(uri)  # a password in the URI's user info is never printed (before: shown whole here)
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    backend = scheme.split("+")[0]
    if scheme in ("http", "https"):
        if not parts.hostname:
            raise TrackingError(f"{field}: {shown!r} names no host; {hint}")
        try:
            parts.port
        except ValueError as e:
            raise TrackingError(f"{field}: {shown!r} has an invalid port; {hint}") from e
        _check_mlflow_http_settings()
        problem = server_problem(uri, CONNECT_TIMEOUT_S)
        if problem:
            raise TrackingError(
                f"{field}: no MLflow server answers at {shown} ({problem}); start it (mlflow server --host ... --port ...), "
                "fix the address, or set mlflow.tracking_uri: null for a local SQLite store"
            )
        return
    if backend in ("sqlite", "postgresql", "mysql", "mssql"):
        check_storage_url(uri, field=field, error=TrackingError)
        return
    if scheme.startswith("databricks"):
        return
    file_store_ok = os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() in ("1", "true", "yes")
    if scheme in ("file", "") and file_store_ok:
        check_creatable(Path(parts.path if scheme == "file" else uri), field=field, kind="folder", error=TrackingError)
        return
    if scheme in ("file", ""):
        raise TrackingError(f"{field}: {shown!r} is a file store path, which MLflow 3 refuses unless MLFLOW_ALLOW_FILE_STORE=true; {hint}")
    raise TrackingError(f"{field}: {shown!r} is not a tracking URI MLflow serves (scheme {scheme!r}); {hint}")


def _check_mlflow_http_settings() -> None:
    """MLflow's ``MLFLOW_HTTP_REQUEST_*`` environment variables (dse sets their defaults, :data:`dse.MLFLOW_DEFAULTS`)
    must parse as MLflow reads them: before, ``MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR=0.5`` ended `dse run` in a traceback
    at its first request to the server.

    Raises:
        TrackingError: naming the variable, its value and the type MLflow expects.
    """
    from mlflow import environment_variables as mlflow_env

    from dse import MLFLOW_DEFAULTS

    for name in dir(mlflow_env):
        if name.startswith("MLFLOW_HTTP_REQUEST_") and name in os.environ:
            var = getattr(mlflow_env, name)
            try:
                var.get()
            except ValueError:
                kind = {int: "an integer", float: "a number", bool: "true or false"}.get(var.type, var.type.__name__)
                raise TrackingError(f"environment variable {name}={os.environ[name]!r}: MLflow reads {kind} there; "
                                    f"set it to {kind} (dse's default: {MLFLOW_DEFAULTS.get(name, 'none')}) or unset it") from None


def check_ray_address(address: str | None, *, field: str = "ray.address") -> None:
    """Check a Ray address with one TCP connection to it (nothing else is contacted).

    ``None`` (a local Ray started by dse) and ``local`` are left to Ray; ``auto`` is resolved as ``ray.init`` resolves it
    (``RAY_ADDRESS``, else a Ray started on this machine) and that address checked, or refused where there is none;
    ``host:port`` (the GCS, default port 6379) must accept a TCP connection within :data:`CONNECT_TIMEOUT_S`, then
    this driver's token (:func:`check_cluster_token`). ``ray://`` (Ray Client) is refused: dse's driver runs on a node
    of the cluster (such an address was never checked, and ``dse run`` created the study before it failed).

    Raises:
        ClusterUnreachableError: a malformed address, nothing listens there, or no GCS answers there.
        ClusterError: the cluster refuses this driver's token, or the driver has none.
    """
    if address is not None and address.strip().lower() == "auto":  # left to Ray, it failed after the stores
        from dse.study._ray_session import resolve_auto_address  # were made; resolved here as dse run resolves it

        found = resolve_auto_address(field)
        check_ray_address(found, field=f"{field} (auto: {found})")
        return
    if address is None or address.strip().lower() == "local":
        return
    hint = "use host:port of the head node's GCS (ray start --head prints it, port 6379 by default), auto, or null"
    text = address.strip()
    scheme = ""
    if "://" in text:
        scheme, _, text = text.partition("://")
        if scheme == "ray":
            raise ClusterUnreachableError(
                f"{field}: {address!r} is a Ray Client address, which dse does not use: its driver runs on a node of the "
                f"cluster (`dse run` there, as the README's cluster section does); {hint}")
        raise ClusterUnreachableError(f"{field}: {address!r} has scheme {scheme!r}; {hint}")
    try:
        parts = urlsplit(f"//{text}")
        host, port = parts.hostname, parts.port
    except ValueError as e:
        raise ClusterUnreachableError(f"{field}: {address!r} has an invalid port; {hint}") from e
    if not host or parts.path not in ("", "/"):
        raise ClusterUnreachableError(f"{field}: {address!r} is not host:port; {hint}")
    if port is None:
        raise ClusterUnreachableError(f"{field}: {address!r} names no port; {hint}")
    problem = _tcp_problem(host, port)
    if problem:
        raise ClusterUnreachableError(
            f"{field}: no Ray cluster reachable at {address} ({problem}); start it (ray start --head), "
            "fix the address, or set ray.address: null for a local Ray"
        )
    check_cluster_token(f"{host}:{port}", field=field)


def ray_auth_reason(error: BaseException) -> str:
    """Ray's first sentence of an ``AuthenticationError`` (``Authentication token is missing or incorrect``)."""
    return str(error).split(". ")[0].removeprefix("RPC error: ")


def check_cluster_token(address: str, *, field: str = "ray.address") -> None:
    """Ask a Ray cluster's GCS at ``host:port`` to accept this driver's token (one gRPC connection, about 0.1 s).

    Token authentication is on as for ``dse run`` (``RAY_AUTH_MODE=token`` unless the environment
    sets it). Uses Ray's private ``InnerGcsClient.standalone``; with a Ray that lacks it, nothing
    is checked and ``dse run`` reports the problem when it joins.

    Raises:
        ClusterError: this driver has no token, or the cluster refuses its token.
        ClusterUnreachableError: nothing answers there as a Ray GCS within about 3 x :data:`CONNECT_TIMEOUT_S`.
    """
    from dse.exceptions import ClusterError
    from dse.study._ray_session import TOKEN_HINT, _keep_token_auth

    _keep_token_auth()
    try:
        from ray._private.authentication.authentication_token_setup import ensure_token_if_auth_enabled
        from ray._raylet import InnerGcsClient
        from ray.exceptions import AuthenticationError, RpcError
    except ImportError as e:  # another Ray layout: ray.init tells when the run joins
        log.debug("Ray token not checked (%s)", e)
        return
    try:
        ensure_token_if_auth_enabled(create_token_if_missing=False)  # else Ray's C++ client aborts the process
        with native_stderr_to_debug_log(log, "ray"):  # the C++ client's own warning line repeats the error below
            InnerGcsClient.standalone(address, None, int(CONNECT_TIMEOUT_S * 1000))
    except AuthenticationError as e:
        raise ClusterError(f"{field}: the Ray cluster at {address} does not accept this driver: "
                           f"{ray_auth_reason(e)}; {TOKEN_HINT}") from e
    except RpcError as e:
        raise ClusterUnreachableError(
            f"{field}: {address} accepts connections but does not answer as a Ray cluster's GCS ({str(e).strip()}); "
            "give the head's GCS port (ray start --head prints it, 6379 by default)"
        ) from e


@contextmanager
def _existing_study(exp: ExperimentConfig) -> Iterator[Any]:
    """The study of ``exp`` if its storage already holds it (read-only: no table created), else ``None``.

    An SQLite or journal file, or a database server (PostgreSQL, MySQL; before, ``dse check`` compared no study
    there, and only ``dse run`` refused a changed experiment). A server database without Optuna's tables holds none.

    Raises:
        StorageError: the file exists but is not a readable Optuna database or journal.
        DiskFullError: the SQLite file's disk is (nearly) full, so SQLite cannot read it.
    """
    import optuna

    from dse.study._storage import journal_storage

    journal = journal_path(exp.storage_url)
    db = storage_file(exp.storage_url)
    if db is None and journal is None and sqlite_path(exp.storage_url) is None:  # a database server
        yield from _existing_server_study(exp)
        return
    if db is None or not db.is_file():
        yield None
        return
    storage = None
    try:
        storage = journal_storage(journal) if journal else optuna.storages.RDBStorage(exp.storage_url, skip_table_creation=True)
        study = optuna.load_study(study_name=exp.name, storage=storage)
    except KeyError:
        study = None
    except Exception as e:  # sqlalchemy DatabaseError ("file is not a database"), optuna's RuntimeError on an old schema
        if isinstance(storage, optuna.storages.RDBStorage):
            storage.engine.dispose()
        from dse.study._storage import reading_on_a_full_disk

        if not journal and (full := reading_on_a_full_disk(db, e)) is not None:  # probe 32: "move it away" on a full disk
            raise full from e
        raise StorageError(
            f"storage: {db} exists but cannot be read as an Optuna {'journal' if journal else 'database'} ({type(e).__name__}: {' '.join(str(e).split())[:200]}); "
            "move it away or point storage elsewhere"
        ) from e
    try:
        yield study
    finally:
        if isinstance(storage, optuna.storages.RDBStorage):
            storage.engine.dispose()


def _existing_server_study(exp: ExperimentConfig) -> Iterator[Any]:
    """:func:`_existing_study` on a database server: one read-only opening, with :data:`CONNECT_TIMEOUT_S` to connect."""
    import optuna
    from sqlalchemy import create_engine, inspect
    from sqlalchemy.engine import make_url

    backend = make_url(exp.storage_url).get_backend_name()
    connect_args = {"connect_timeout": int(CONNECT_TIMEOUT_S)} if backend in ("postgresql", "mysql") else {}
    storage = study = None
    try:
        engine = create_engine(exp.storage_url, connect_args=connect_args)
        try:
            tables = inspect(engine).has_table("studies")  # a new database: Optuna's tables come with the first run
        finally:
            engine.dispose()
        if tables:
            storage = optuna.storages.RDBStorage(exp.storage_url, skip_table_creation=True,
                                                 engine_kwargs={"connect_args": connect_args})
            study = optuna.load_study(study_name=exp.name, storage=storage)
    except KeyError:
        study = None
    except Exception as e:  # the login was checked before; an old schema (optuna's RuntimeError), a lost connection
        if storage is not None:
            storage.engine.dispose()
        raise StorageError(
            f"storage: {redact_url(exp.storage_url)} cannot be read as an Optuna database ({type(e).__name__}: "
            f"{' '.join(str(e).split())[:200]}); point storage at another database, or upgrade it (optuna storage upgrade)"
        ) from e
    try:
        yield study
    finally:
        if storage is not None:
            storage.engine.dispose()


def nothing_to_run(exp: ExperimentConfig, counts: Any) -> bool:
    """Whether ``dse run`` of ``exp`` would start no trial and no Ray: the study already has ``exp.n_trials`` evaluated
    trials (:class:`dse.report.StudyCounts`: trained, less those failed as not evaluated), none running (a lost
    driver's would be recovered) and no ``resources.synthesize_front`` to re-measure with."""
    return (not counts.running and not exp.resources.synthesize_front
            and exp.n_trials - counts.evaluated <= 0)


def _check_existing_study(exp: ExperimentConfig) -> bool:
    """If the storage already holds this study (read-only, :func:`_existing_study`), its objectives must match
    (:func:`dse.study._storage.objectives_problem`; ``--allow-changed`` cannot change that).

    Returns:
        Whether the study has nothing left to run (:func:`nothing_to_run`); ``False`` for a new study.
    """
    from dse.report import study_counts
    from dse.study._storage import objectives_problem

    with _existing_study(exp) as study:
        if study is None:
            return False
        if problem := objectives_problem(study, exp):
            raise ConfigError(problem)
        try:
            counts = study_counts(study)
        except Exception as e:  # its trials unreadable (a lost server, a damaged file), as reading it above
            raise StorageError(f"storage: the trials of study {exp.name!r} in {redact_url(exp.storage_url)} cannot be read "
                               f"({type(e).__name__}: {' '.join(str(e).split())[:200]})") from e
        _check_mlflow_store_kept(study, exp)
        return nothing_to_run(exp, counts)


def _check_mlflow_store_kept(study: Any, exp: ExperimentConfig) -> None:
    """A study that logged to a SQLite MLflow store must find it: opening a missing one creates an empty store, and the
    study went on into a new parent run while its trials' runs, models and curves were gone from reports and exports
    (probe 32: `rm mlflow.db`, then `dse check` said OK and `dse run` advised `mlflow runs restore` for runs that no
    longer existed).

    A study whose runs were recorded on an MLflow server, or an ``mlflow.tracking_uri`` that names another SQLite file
    than the recorded one, is a store chosen on purpose: not refused.

    Raises:
        TrackingError: the study has an MLflow parent run in a SQLite store (or none recorded), and ``exp.tracking_uri``
            is a SQLite file that does not exist.
    """
    from dse.store import StudyRecords

    records = StudyRecords(study)
    db = sqlite_path(exp.tracking_uri)
    if db is not None and db.is_file() and (damage := damaged_sqlite(db)):
        raise TrackingError(
            f"mlflow.tracking_uri: the MLflow store {db} cannot be read ({damage}): the file is damaged. Put back a copy "
            "from a backup (with the mlartifacts/ folder beside it); or, to go on with the study's trials in Optuna and "
            "a new MLflow store, move the file aside and set mlflow.tracking_uri to a new file (sqlite:////path/new.db; "
            "the earlier trials' runs, models and curves stay in the damaged file)")
    if records.parent_run_id is None or db is None or db.is_file():
        return
    recorded = sqlite_path(records.tracking_uri) if records.tracking_uri else None
    if records.tracking_uri and recorded is None:  # its runs are on a server: a store in run_dir now is a choice
        return
    if exp.mlflow.tracking_uri and recorded is not None and recorded != db:  # a new store, asked for by name
        return
    field = "mlflow.tracking_uri" if exp.mlflow.tracking_uri else "mlflow.tracking_uri (default, in run_dir)"
    was = recorded or db
    raise TrackingError(
        f"{field}: study {exp.name!r} logged its MLflow runs (parent run {records.parent_run_id}) to {was}, and {db} does "
        "not exist (deleted or moved); a run would start an empty store without the trials' runs, models and curves. "
        f"Put the store back ({db.name} with the mlartifacts/ folder beside it), or set mlflow.tracking_uri to where it is "
        "now (sqlite:////path/mlflow.db; a new file there starts a new store on purpose); to start over, delete the study "
        f"too (optuna delete-study --study-name {exp.name} --storage ...) or give the experiment another name")


def constraints_error(study: Any, exp: ExperimentConfig) -> ConfigError | None:
    """The error for continuing ``study`` with constraints that finished trials told feasible break, or ``None``.

    Optuna keeps the feasibility each trial was told when it finished, and NSGA-II, TPE and
    ``best_trials`` read it; a finished trial cannot be told again. Constraints added to a
    study that had none, or tightened, would leave trials over the new budget on the front that
    ``constraints`` promise to keep them off. Relaxed constraints only leave trials infeasible
    that would now be feasible, as :func:`changed_experiment_error` says.
    """
    from dse.store import StudyRecords

    breaking = StudyRecords(study).told_feasible_breaking(exp.constraints)
    if not breaking:
        return None
    first, why = breaking[0]
    one = len(breaking) == 1
    rest = [str(n) for n, _ in breaking[1:9]] + (["..."] if len(breaking) > 9 else [])
    others = "" if one else f"; also trial{'' if len(breaking) == 2 else 's'} " + ", ".join(rest)
    return ConfigError(
        f"constraints: {len(breaking)} finished {'trial' if one else 'trials'} of study {exp.name!r} {'was' if one else 'were'} "
        f"told feasible under the study's earlier constraints and {'breaks' if one else 'break'} these (trial {first}: {why}{others}). "
        f"Optuna keeps a finished trial's feasibility, so {'it' if one else 'they'} would stay feasible, on the Pareto front unless dominated; give the "
        "experiment another name for a new study (enqueue_trials can rerun chosen designs there), or keep constraints "
        f"{'that trial meets' if one else 'those trials meet'} (--allow-changed cannot change this)"
    )


def space_error(study: Any, space: SearchSpace) -> ConfigError | None:
    """The error for continuing ``study`` with a search space whose parameters Optuna cannot store beside its trials'.

    Optuna refuses, for a parameter name its trials already hold, another kind of distribution
    (int, float, categorical), another ``log``, or other categorical ``choices``
    (:func:`optuna.distributions.check_distribution_compatibility`): every trial drawing it would fail. Ranges may
    change (Optuna accepts another ``low``/``high``).
    """
    from optuna.distributions import check_distribution_compatibility

    new = space.distributions()
    stored = {(name, old) for t in study.get_trials(deepcopy=False) for name, old in t.distributions.items() if name in new}
    for name, old in stored:  # each distinct distribution once (Optuna's are hashable by value)
        try:
            check_distribution_compatibility(old, new[name])
        except ValueError as e:
            param = name.removesuffix("_is_zero")
            return ConfigError(
                f"search space: parameter {param!r} was drawn by the study's trials from {_distribution_text(old)} and "
                f"the space now gives {_distribution_text(new[name])}, which Optuna cannot store in this study "
                f"({e}): every trial drawing it would fail. Keep its type, log and choices (a rule or a `when` can "
                "keep trials off a choice), or give the experiment another name for a new study "
                "(--allow-changed cannot change this)"
            )
    return None


def _distribution_text(d: Any) -> str:
    """``categorical [1, 2, 4, 8]``, ``int 1..8``, ``float 1e-07..0.0001 (log)``."""
    from optuna.distributions import CategoricalDistribution

    if isinstance(d, CategoricalDistribution):
        return f"categorical {list(d.choices)}"
    kind = "int" if type(d).__name__.startswith("Int") else "float"
    return f"{kind} {d.low:g}..{d.high:g}" + (" (log)" if d.log else "")


def unseen_reuse_factor(exp: ExperimentConfig, space: SearchSpace) -> str | None:
    """Why the ReuseFactors the space samples for Resource trials cannot tell those trials apart, or ``None``.

    Resource designs get the EBOPs estimate under ``resources.backend: auto`` (or a backend that does not measure
    them): its LUT count does not model ReuseFactor, and its DSP count, divided by it, matters only as an objective or
    a constraint. Then two Resource trials that differ only in ``reuse_factor`` measure the same (probe 31: LUT
    137,075 and 136,055 at ReuseFactor 1 and 8, DSP 0 and 0). ``dse check`` says so; it is no error, since the
    built designs do differ (an HLS report, ``dse synthesize --backend vitis``, tells them apart).
    """
    from dse.resources import figure_backend

    rfs = [v for v, _ in space.values_given("reuse_factor", {"strategy": "Resource"})]
    if ("Resource" not in space.possible_values("strategy") or len(set(rfs)) < 2
            or figure_backend("Resource", exp.resources.backend) != "ebops"):
        return None
    if "dsp" in {o.metric for o in exp.objectives} | {c.metric for c in exp.constraints}:
        return None
    return (f"reuse_factor ({', '.join(map(str, sorted(set(rfs))))} for Resource trials) is seen by no objective or constraint: "
            f"Resource designs get the EBOPs estimate (resources.backend: {exp.resources.backend}), whose LUT count does not "
            "model ReuseFactor, and its DSP count (divided by it) is no objective or constraint here, so Resource trials "
            "that differ only in reuse_factor measure the same. To choose it by resources, add dsp to the objectives or "
            "constraints (the estimate counts multiplications whose operands are both wider than "
            f"resources.dsp_threshold_bits = {exp.resources.dsp_threshold_bits} bits), or pin reuse_factor and compare ReuseFactors with "
            "`dse synthesize --backend vitis` (or vivado) on the front")


def mixed_figure_sources(exp: ExperimentConfig, space: SearchSpace) -> str | None:
    """Why one front would rank designs by figures of different sources, or ``None``.

    Under ``resources.backend: auto`` a distributed_arithmetic design's ``lut`` is da4ml's cost (within a few % of
    Yosys on its RTL), a Latency or Resource design's the EBOPs estimate (an upper bound: +329% and +360% above Yosys on
    two distributed_arithmetic designs, 2026-12-07, and not calibrated against an HLS build on this machine). A front of
    ``lut`` (or a constraint on it) across both then compares the two sources (probe 41: 104,949 da4ml against 1,642,952
    estimated LUTs for one 784-32-16-10 network). ``dse check`` says so; it is no error, since which Strategy is
    cheaper is what the study asks.
    """
    from dse.resources import figure_backend

    source = {s: figure_backend(s, exp.resources.backend) for s in space.possible_values("strategy")}
    used = {o.metric for o in exp.objectives} | {c.metric for c in exp.constraints}
    if "lut" not in used or not {"da4ml", "ebops"} <= set(source.values()):
        return None
    estimated = sorted(s for s, b in source.items() if b == "ebops")
    return (f"lut ranks designs by two sources: distributed_arithmetic by da4ml's cost model (within a few % of "
            f"synthesis of its RTL), {' and '.join(estimated)} by the EBOPs estimate (an upper bound, not calibrated "
            "against an HLS build here), so the front may favour distributed_arithmetic by the estimators' difference. "
            "Re-measure the front where Vivado/Vitis exist (`dse synthesize <study> --front --backend vitis`), set "
            "resources.backend: vitis (or vivado) for one source, or compare Strategies in studies of their own")


def _check_objectives_measured(exp: ExperimentConfig, space: SearchSpace) -> None:
    """Every objective must be a figure that ``resources.backend`` reports for every Strategy the space can produce.

    Accuracies and EBOPs are always measured; a resource figure comes from
    :func:`dse.resources.figure_backend` of each Strategy (a backend that declares no
    ``figures`` is not checked). Constraints may name a figure a Strategy lacks: those trials are
    infeasible, not failed, which is logged as a warning.

    Raises:
        ConfigError: an objective no trial of some Strategy could report (every such trial would fail),
            or a constraint on a figure no Strategy of the space reports (no trial could be feasible).
    """
    from dse.config import TrialParams
    from dse.config._experiment import MAXIMIZED_METRICS
    from dse.resources import backend_class, backend_names, figure_backend

    strategies = space.possible_values("strategy") or [TrialParams.model_fields["strategy"].default]

    def unmeasured(metric: str) -> list[tuple[str, str, tuple[str, ...]]]:
        """``(strategy, figure backend, its figures)`` for each Strategy whose figure backend declares no ``metric``."""
        if metric in MAXIMIZED_METRICS or metric == "ebops":  # every trial measures the accuracies and EBOPs
            return []
        found = []
        for strategy in strategies:
            name = figure_backend(strategy, exp.resources.backend)
            figures = backend_class(name).figures
            if figures is not None and metric not in figures:
                found.append((strategy, name, figures))
        return found

    def measuring(metric: str, lacking: list[str]) -> str:
        """Which backends measure ``metric``: for every Strategy in ``lacking``, or for some of them (before: always
        "vivado or vitis", though auto, da4ml and yosys measure latency_cycles of distributed_arithmetic designs)."""
        by_cover: dict[tuple[str, ...], list[str]] = {}
        for name in ["auto", *backend_names()]:
            if name != exp.resources.backend:
                covered = tuple(s for s in lacking if metric in (backend_class(figure_backend(s, name)).figures or (metric,)))
                if covered:
                    by_cover.setdefault(covered, []).append(name)

        def names(xs: list[str]) -> str:
            return xs[0] if len(xs) == 1 else f"{', '.join(xs[:-1])} and {xs[-1]}"

        return "; ".join(f"{names(by)} {'measures' if len(by) == 1 else 'measure'} it for {names(list(covered))}"
                         for covered, by in sorted(by_cover.items(), key=lambda kv: -len(kv[0])))

    for o in exp.objectives:
        if lacking := unmeasured(o.metric):
            which = " and ".join(strategy for strategy, _, _ in lacking)
            sources = "; ".join(f"{strategy}: {name!r} ({', '.join(figures)})" for strategy, name, figures in lacking)
            raise ConfigError(
                f"objectives: {o.metric!r} is not measured for Strategy {which} (the search space offers "
                f"{'them' if len(lacking) > 1 else 'it'}) by resources.backend {exp.resources.backend!r}, whose figures "
                f"come from {sources}, so every such trial would fail; choose another objective, remove {which} from the "
                f"space's strategy choices, or set resources.backend to one that measures it "
                f"({measuring(o.metric, [s for s, _, _ in lacking]) or 'none of the registered backends does'})"
            )
    for c in exp.constraints:
        lacking = [strategy for strategy, _, _ in unmeasured(c.metric)]
        if not lacking:
            continue
        what = (f"constraints: {c.metric!r} is not measured for Strategy {', '.join(lacking)} by resources.backend "
                f"{exp.resources.backend!r}, so every such trial is infeasible (never on the front)")
        if len(lacking) == len(strategies):
            raise ConfigError(f"{what}, and the search space offers no other Strategy: the study could have no front; "
                              "constrain another metric, or set resources.backend to one that measures it "
                              f"({measuring(c.metric, lacking) or 'none of the registered backends does'})")
        log.warning("%s; remove %s from the space's strategy choices if that is not meant", what, " and ".join(lacking))
    _warn_without_accuracy(exp)
    _warn_test_split_selection(exp)
    _warn_pinned_objectives(exp)


def _warn_pinned_objectives(exp: ExperimentConfig) -> None:
    """Warn of an objective whose constraint leaves its feasible trials one value (``{metric: dsp, max: 0}`` beside a
    ``dsp`` objective, or ``min`` equal to ``max``): it cannot tell feasible trials apart, so it adds nothing to the
    front but a dimension (NSGA-II's crowding, the hypervolume's reference point) and a figure of one column."""
    from dse.config._experiment import COUNTED_METRICS

    for o in exp.objectives:
        for c in exp.constraints:
            if c.metric != o.metric:
                continue
            one = c.min if c.min is not None and c.min == c.max else 0 if (
                o.metric in COUNTED_METRICS and c.max == 0) else None
            if one is not None:  # a dsp objective with {metric: dsp, max: 0} passed without a word
                log.warning(
                    "objectives: %s is %sd, but the constraint %s leaves every feasible trial at %s = %g, so this "
                    "objective cannot tell them apart; remove it from objectives (the constraint keeps the budget)",
                    o.metric, o.direction, c.text, o.metric, one,
                )


#: Above this, HGQ2's EBOPs loss term outweighs the task loss of the networks dse builds (the HGQ authors' ramps: 1e-7..1e-3).
BETA_WARN_ABOVE = 1e-2


def _warn_unusual_beta(space: SearchSpace) -> None:
    """Warn when the space can give ``beta`` or ``beta_end`` above :data:`BETA_WARN_ABOVE` (a range meant in other units).

    Such trials run and complete, but train towards the smallest network whatever its accuracy,
    so a study of them spends its CPU on one corner of the front.
    """
    for name in ("beta", "beta_end"):
        if name not in space.parameters:
            continue
        top = max((v for v in space.possible_values(name) if is_real_number(v)), default=0.0)
        if top > BETA_WARN_ABOVE:
            log.warning("parameters.%s reaches %g: HGQ2's EBOPs term weighs about 1e-7..1e-3 in the HGQ authors' recipes, and above "
                        "%g it outweighs the task loss, so such trials train towards the smallest network whatever its accuracy; "
                        "lower the range if that is not meant", name, top, BETA_WARN_ABOVE)


#: Clock periods (ns) outside this range are warned of: 2 GHz and 20 MHz, beyond any FPGA fabric clock an HLS design targets.
CLOCK_PERIOD_USUAL_NS = (0.5, 50.0)


def _warn_unusual_clock(hls: Hls4mlConfig) -> None:
    """Warn when ``hls4ml.clock_period`` is outside :data:`CLOCK_PERIOD_USUAL_NS` (a frequency in MHz written as a period)."""
    low, high = CLOCK_PERIOD_USUAL_NS
    period = hls.clock_period
    if period > high:  # likely a frequency in MHz
        log.warning("hls4ml.clock_period is %g ns, a %g MHz clock: the period is in ns (5.0 = 200 MHz); for a %g MHz clock "
                    "write clock_period: %g", period, 1000 / period, period, 1000 / period)
    elif period < low:
        log.warning("hls4ml.clock_period is %g ns, a %g MHz clock, beyond any FPGA fabric: the period is in ns (5.0 = 200 MHz, "
                    "2.5 = 400 MHz); check its unit", period, 1000 / period)


def _warn_without_accuracy(exp: ExperimentConfig) -> None:
    """Warn when neither an objective nor a ``min`` constraint is an accuracy (:data:`MAXIMIZED_METRICS`), and of an
    accuracy constraint with a ``max`` alone (a cap where a floor is meant).

    Resources alone are minimized by the smallest networks, whatever they predict; with an
    accuracy floor (``{metric: csim_accuracy, min: 0.95}``) that is a meaningful question, so no warning.
    """
    from dse.config._experiment import MAXIMIZED_METRICS

    for c in exp.constraints:  # `{metric: csim_accuracy, max: 0.8}` passed `dse check` without a word
        if c.metric in MAXIMIZED_METRICS and c.max is not None and c.min is None:
            log.warning("constraints: %s caps accuracy, so every trial more accurate than %g is infeasible (never on the "
                        "front); for a floor write {metric: %s, min: %g}", c.text, c.max, c.metric, c.max)
    if any(o.metric in MAXIMIZED_METRICS for o in exp.objectives):
        return
    if any(c.metric in MAXIMIZED_METRICS and c.min is not None for c in exp.constraints):
        return
    names = ", ".join(o.metric for o in exp.objectives)
    log.warning(
        "objectives (%s) hold no accuracy and no constraint sets an accuracy floor, so the best designs are the "
        "smallest whatever their accuracy; add {metric: csim_val_accuracy, direction: maximize} to objectives, or a "
        "constraint such as {metric: csim_val_accuracy, min: 0.9}", names,
    )


def _warn_test_split_selection(exp: ExperimentConfig) -> None:
    """Warn of an objective or constraint on a test-split accuracy (:data:`dse.config._experiment.TEST_ACCURACIES`).

    The sampler, the Pareto front and feasibility then read the test split, so the front's test accuracies are
    biased upwards (chosen for them) and no data is left to tell how the chosen designs do on new data (a
    design was found on the front for its test accuracy alone). The validation accuracies select instead, and the
    test accuracies of the designs they choose stay an unbiased estimate (the report and ``dse status`` show both).
    """
    from dse.config._experiment import TEST_ACCURACIES

    used = [(f"objectives[{i}]", o.metric) for i, o in enumerate(exp.objectives) if o.metric in TEST_ACCURACIES]
    used += [(f"constraints[{i}]", c.metric) for i, c in enumerate(exp.constraints) if c.metric in TEST_ACCURACIES]
    if used:
        where, metric = used[0]
        log.warning(
            "%s: %s is measured on the test split, so the study selects its designs on the data meant to tell how they "
            "do on new data: the front's test accuracies come out optimistic, and nothing is held out; select on the "
            "validation split with %s (the report and dse status show the test accuracy of each design beside it; a "
            "study begun with %s keeps it: a changed objective needs a new study name)%s",
            where, metric, TEST_ACCURACIES[metric], metric,
            f" (also {', '.join(w for w, _ in used[1:])})" if len(used) > 1 else "",
        )


def _check_resource_tools(exp: ExperimentConfig, space: SearchSpace, *, local_tools: bool = True) -> None:
    """``resources.backend`` and ``resources.synthesize_front`` must run here and apply to some Strategy of the space.

    * Their external tools (yosys; vitis_hls or vivado_hls, and vivado with ``vsynth``), and g++ where
      ``hls4ml.csim`` builds a C simulation, must be on PATH when Ray is local, whose workers share this PATH. A cluster's workers have their own
      PATH, so that is not checked for a remote ``ray.address``, nor with ``local_tools`` false (a study with
      nothing left to run).
    * ``synthesize_front`` must support some Strategy the space offers, or it would measure
      nothing (yosys and da4ml measure distributed_arithmetic only); one that supports only some
      is a warning, and so is one that already gives the figures of every Strategy it measures
      (``resources.backend: yosys`` with ``synthesize_front: yosys``, or ``auto`` with ``da4ml``). A ``resources.backend`` that supports none is a warning: the EBOPs estimate
      gives every figure then.

    Raises:
        ToolNotFoundError: a tool is missing (the message names the field and how to install it).
        ConfigError: ``synthesize_front`` supports no Strategy of the space, or a backend cannot measure for
            ``hls4ml.part`` (:meth:`~dse.resources.ResourceBackend.check_target`: Yosys has no family for a Versal part).
    """
    from dse.config import TrialParams
    from dse.exceptions import MeasurementError, ToolNotFoundError
    from dse.resources import backend_class, figure_backend

    strategies = space.possible_values("strategy") or [TrialParams.model_fields["strategy"].default]
    local = local_tools and cluster_address(exp.ray) is None
    csim = exp.hls4ml.csim
    built = [s for s in strategies if csim == "all" or csim == "front" and s != "distributed_arithmetic"]
    if local and built and shutil.which("g++") is None:  # before: every trial failed on it, after the whole study's training
        raise ToolNotFoundError(
            f"hls4ml.csim: {csim} builds the C simulation of {' and '.join(built)} trials with g++, which is not on PATH; "
            "install it (apt-get install g++) or set hls4ml.csim: none (accuracies from the bit-exact Keras model)"
        )
    front = exp.resources.synthesize_front
    own = [s for s in strategies if front is not None and backend_class(front)().supports(s)]
    if own and all(figure_backend(s, exp.resources.backend) == front for s in own):
        log.warning(
            "resources.synthesize_front: %r already gives the figures of every trial it measures (%s trials take theirs from "
            "resources.backend %r), so it adds no precise figure: the front's own figures are taken as its measurement; "
            "remove synthesize_front, or choose a backend that measures otherwise (e.g. vivado or vitis)",
            front, " and ".join(own), exp.resources.backend,
        )
    for field, name in (("resources.backend", exp.resources.backend), ("resources.synthesize_front", exp.resources.synthesize_front)):
        if name is None or name == "auto":
            continue
        impl = backend_class(name)()
        supported = [s for s in strategies if impl.supports(s)]
        if supported:
            try:
                impl.check_target(exp.hls4ml)
            except MeasurementError as e:  # every trial it measures would fail so
                raise ConfigError(f"{field} {name!r}: {e}") from e
        if local and supported:
            try:
                impl.check_tools(exp.resources)
            except ToolNotFoundError as e:
                raise ToolNotFoundError(f"{field} {name!r}: {e}") from e
        if supported == strategies:
            continue
        offers = ", ".join(strategies)
        measures = ", ".join(impl.strategies or ())
        if field == "resources.synthesize_front" and not supported:
            raise ConfigError(
                f"resources.synthesize_front: {name!r} measures {measures} designs only, and the search space offers "
                f"Strategy {offers}, so it would measure no front member; add distributed_arithmetic to the space's strategy "
                "choices, choose vivado or vitis (every Strategy), or remove synthesize_front"
            )
        log.warning("%s %r measures %s designs only; the space's %s trials get %s", field, name, measures,
                    " and ".join(s for s in strategies if s not in supported),
                    "no precise figures" if field == "resources.synthesize_front" else "the EBOPs estimate's figures")


def _check_local_resources(exp: ExperimentConfig) -> None:
    """A local Ray (no ``ray.address``, no ``RAY_ADDRESS``) must have one trial's CPUs, GPUs and memory, or no trial would start.

    The figures are those the local Ray will have: ``ray.num_cpus`` or the machine's CPUs; the
    GPUs Ray detects (``CUDA_VISIBLE_DEVICES``, else NVML, through Ray's own accelerator
    manager), read only when ``ray.gpus_per_trial`` > 0; and this machine's physical memory,
    an upper bound of Ray's ``memory`` resource (which leaves out the object store), so a
    ``ray.memory_per_trial`` between the two is still refused when Ray has started
    (:func:`dse.study._orchestrator._check_trial_fits`). When this process has already
    initialized Ray (a script that called ``ray.init`` first), dse reuses that Ray, so its
    resources count.

    Raises:
        ConfigError: naming each field that asks for more than the local Ray has, and the most it may ask.
    """
    if cluster_address(exp.ray) is not None:
        return
    r = exp.ray
    ray = sys.modules.get("ray")  # not imported: not initialized either (and importing it costs a second)
    if ray is not None and ray.is_initialized():  # a Ray this process started (dse reuses it): its own resources count
        total = ray.cluster_resources()
        have = {"CPU": int(total.get("CPU", 0)), "GPU": int(total.get("GPU", 0)), "memory": total.get("memory", 0)}
        where, bound = dict.fromkeys(have, "the Ray this process already started"), ""
    else:
        bound = "at most "  # the machine's memory: Ray keeps part of it for its object store
        have = {"CPU": r.num_cpus or os.cpu_count() or 1, "GPU": 0, "memory": None}
        where = {"CPU": "ray.num_cpus" if r.num_cpus else "this machine's CPUs (ray.num_cpus unset)",
                 "GPU": "the GPUs Ray detects here", "memory": "this machine's memory in all"}
        if r.gpus_per_trial > 0:
            from ray._private.accelerators import get_accelerator_manager_for_resource  # Ray's own detection, as ray.init's

            gpus = get_accelerator_manager_for_resource("GPU")
            visible = gpus.get_current_process_visible_accelerator_ids()
            have["GPU"] = len(visible) if visible is not None else gpus.get_current_node_num_accelerators()
        if r.memory_per_trial:
            have["memory"] = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if short := trial_shortfalls(r, have, where, "the local Ray", bound):
        raise ConfigError("; ".join(short) + "; no trial could ever start")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    at_once = min(r.max_concurrent_trials or have["CPU"] // r.cpus_per_trial, int(have["CPU"] // r.cpus_per_trial))
    if where.get("CPU") == "ray.num_cpus" and at_once * r.cpus_per_trial > cores:  # probe 42: passed unsaid
        log.warning("ray.num_cpus: %d, but this process may use %d CPU(s): %d trials run at once (ray.cpus_per_trial %d "
                    "each), sharing cores, each slower; leave ray.num_cpus unset to take the machine's CPUs (or set "
                    "ray.max_concurrent_trials)", r.num_cpus, cores, at_once, r.cpus_per_trial)


def trial_shortfalls(r: RayConfig, have: dict[str, Any], where: dict[str, str], ray_name: str, bound: str = "") -> list[str]:
    """One line per resource of a trial (``ray.cpus_per_trial``, ``gpus_per_trial``, ``memory_per_trial``) beyond what a Ray has.

    Args:
        r: the experiment's Ray settings.
        have: ``"CPU"``, ``"GPU"`` (counts) and ``"memory"`` (bytes; ``None``: not known) of that Ray,
            as Ray's ``cluster_resources()`` names them.
        where: per resource, where its figure comes from (said in parentheses; left out when absent).
        ray_name: the Ray, for the message (``"the local Ray"``, ``"the Ray cluster"``).
        bound: ``"at most "`` when the memory figure is an upper bound.

    Returns:
        Each shortfall with the most the field may ask; empty when one trial fits.
    """
    def said(key: str) -> str:
        return f" ({where[key]})" if key in where else ""

    short = []
    if r.cpus_per_trial > have["CPU"]:
        short.append(f"ray.cpus_per_trial: {r.cpus_per_trial} CPUs per trial, but {ray_name} has {have['CPU']:g}{said('CPU')}; "
                     f"set ray.cpus_per_trial to at most {have['CPU']:g}")
    if r.gpus_per_trial > have["GPU"]:
        short.append(f"ray.gpus_per_trial: {r.gpus_per_trial:g} GPUs per trial, but {ray_name} has {have['GPU']:g}{said('GPU')}; "
                     f"set ray.gpus_per_trial to at most {have['GPU']:g} (0 trains on the CPUs)")
    if r.memory_per_trial and have["memory"] is not None and r.memory_per_trial > have["memory"]:
        short.append(f"ray.memory_per_trial: {r.memory_per_trial:,} bytes per trial, but {ray_name} has {bound}"
                     f"{int(have['memory']):,}{said('memory')}; lower ray.memory_per_trial, or leave it out")
    return short


def changed_experiment_error(exp: ExperimentConfig, changed: list[str], records: Any = None) -> ConfigError:
    """The error for an existing study run with another experiment; ``changed`` from :meth:`dse.store.StudyRecords.experiment_diff`
    of ``records``, which says (:meth:`~dse.store.StudyRecords.stored_space_problem`) when a changed stored space cannot be restored."""
    space_problem = records.stored_space_problem() if records is not None and any(c.startswith("search_space") for c in changed) else None
    stale = (f"\n(the stored search space does not validate with this dse, whose checks changed since the study began: "
             f"{space_problem[:400]}; so its fields cannot be restored, and --allow-changed continues the study with the space "
             "as it is now)" if space_problem else "")
    return ConfigError(
        f"study {exp.name!r} in {redact_url(exp.storage_url)} was run with another experiment; these fields differ "
        "(stored -> now):\n  " + "\n  ".join(changed) + "\nGive the experiment another name for a new study, "
        "restore those fields, or pass --allow-changed (allow_changed=True in Python) to continue this study anyway" + stale
        + ("\n(constraints: earlier trials keep the feasibility they were told with, under the old budget; "
           "Optuna stores it per trial and NSGA-II and the front read it. So constraints may be relaxed, not added or "
           "tightened where a trial told feasible would break them)" if any(c.startswith("constraints") for c in changed) else "")
    )


def stored_study_error(study: Any, exp: ExperimentConfig, space: SearchSpace, changed: list[str], *, allow_changed: bool,
                       records: Any = None) -> ConfigError | None:
    """The error for continuing ``study`` with ``exp``, or ``None``; what ``dse check`` and ``dse run`` both say.

    ``changed`` is :meth:`dse.store.StudyRecords.experiment_diff` of the study's records; nothing is refused
    where it is empty. In order: a search space Optuna cannot store beside the trials' draws
    (:func:`space_error`: said before the diff, whose advice, ``--allow-changed``, could not mend it); the
    changed fields, unless ``allow_changed`` (:func:`changed_experiment_error`); constraints that
    finished trials told feasible break (:func:`constraints_error`, also with ``allow_changed``).
    """
    if not changed:
        return None
    if error := space_error(study, space):
        return error
    if not allow_changed:
        return changed_experiment_error(exp, changed, records)
    return constraints_error(study, exp)


def warn_sampler_changed(records: Any, exp: ExperimentConfig) -> None:
    """Warn when ``exp.sampler`` is not the sampler the study's trials so far were drawn with.

    A sampler is no trial-defining field (a study may switch to another), but a switch is worth a word: NSGA-II
    starts a new first generation, drawn at random, whatever the trials before (probe 35: accepted unsaid), and
    TPE starts modelling only after ``n_startup_trials`` trials of the whole study.
    """
    from optuna.trial import TrialState

    if not records.has_experiment():
        return
    try:
        before = records.experiment().sampler
    except ConfigError:  # a stored experiment that no longer validates: what differs is said elsewhere
        return
    if before == exp.sampler or not records.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return
    show = lambda c: c.name + "".join(f", {k} {v}" for k, v in c.model_dump(exclude={"name"}, exclude_none=True).items())  # noqa: E731
    log.warning("sampler: study %s's trials so far were drawn by %s and this run samples with %s; the trials before "
                "stay%s", exp.name, show(before), show(exp.sampler),
                " (NSGA-II draws its first generation in this run at random; it breeds only from the trials it drew)"
                if exp.sampler.name == "nsga2" and before.name != "nsga2" else "")


def _check_stored(exp: ExperimentConfig, space: SearchSpace, splits: Splits, *, allow_changed: bool) -> None:
    """Compare with the study the storage already holds (read-only, one opening): :func:`stored_study_error`."""
    from dse.data import dataset_record
    from dse.store import StudyRecords

    with _existing_study(exp) as study:
        if study is None:
            return
        records = StudyRecords(study)
        changed = records.experiment_diff(exp, space, dataset_record(exp.dataset.name, splits))
        if error := stored_study_error(study, exp, space, changed, allow_changed=allow_changed, records=records):
            raise error
        warn_sampler_changed(records, exp)


def preflight(exp: ExperimentConfig, space: SearchSpace, *, allow_changed: bool = False, compare_stored: bool = True) -> Splits:
    """Run every check ``dse run`` makes before its first trial; create nothing.

    In order: the points of ``enqueue_trials`` (in the search space?), the run directory (``run_dir``: could it be created?), the Optuna storage URL
    (``storage``: parses, driver installed; SQLite: the file could be created; a server: one
    TCP connection), the MLflow tracking URI (``mlflow.tracking_uri``: an http(s) server must
    answer ``GET /health``), the Ray address (``ray.address``: one TCP connection), an existing
    study's objective directions (read-only); then loads and validates the
    dataset; then checks that every Strategy/ReuseFactor/IOType the search space can produce is
    one hls4ml can implement for this model. Servers get at most :data:`CONNECT_TIMEOUT_S` seconds each.

    Last, for a study that already exists in the storage (a file or a database server): what differs from the
    experiment it was run with (dataset contents included), as ``dse run`` refuses it; and,
    even with ``allow_changed``, constraints that finished trials told feasible break
    (:func:`constraints_error`).

    Args:
        exp: the validated experiment.
        space: its search space.
        allow_changed: accept an existing study's changed experiment (``--allow-changed``).
        compare_stored: compare with an existing study's stored experiment and trials (the last
            checks above); ``dse run`` passes ``False`` and compares under its store lock instead.

    Returns:
        The dataset splits (so the caller need not load them again).

    Raises:
        StorageError: ``storage`` is malformed, lacks its driver, or cannot be reached or created.
        TrackingError: ``mlflow.tracking_uri`` is malformed or its server does not answer.
        ClusterUnreachableError: ``ray.address`` is malformed or nothing listens there.
        TypeError: ``exp`` or ``space`` is not a config object (see :func:`dse.config.revalidate`).
        ConfigError: a field of ``exp`` is invalid (it is validated again: a ``model_copy`` is not); an ``enqueue_trials`` point is not in the search space; ``run_dir`` cannot be created; the existing study has other directions,
            or other objective metrics once a trial finished, or (without ``allow_changed``) was run with another
            experiment or data, or constraints that trials told feasible break; ``ray.cpus_per_trial`` exceeds a local Ray's CPUs;
            an objective that ``resources.backend`` does not measure for a Strategy the space offers;
            FIFO depth optimization without the Vivado/Vitis executable.
        DatasetError: the data are missing, unreadable or malformed.
        SearchSpaceError: the space offers a value hls4ml cannot implement here.
        ToolNotFoundError: with a local Ray, ``resources.backend`` or ``resources.synthesize_front`` needs a tool not on PATH, or ``hls4ml.csim`` needs g++.
        DiskFullError: with a local Ray, the run directory's disk has too little free space for Ray's files.
        ClusterError: with a local Ray, ``run_dir`` is too long for Ray's sockets and /tmp takes no short link to it.
            These three, and a local Ray's lack of one trial's CPUs, GPUs or memory, are not checked for a study with
            nothing left to run (:func:`nothing_to_run`), which starts neither Ray nor a trial.
    """
    return _preflight(exp, space, allow_changed=allow_changed, compare_stored=compare_stored)[0]


def _preflight(exp: ExperimentConfig, space: SearchSpace, *, allow_changed: bool, compare_stored: bool) -> tuple[Splits, bool]:
    """:func:`preflight`, and whether the study has nothing left to run (:func:`nothing_to_run`; what a trial needs
    was then not checked), which `dse check` says."""
    from dse.data import load_dataset
    from dse.trial import check_search_space, layer_sizes

    exp, space = revalidate(exp, space)
    for arg, value in (("allow_changed", allow_changed), ("compare_stored", compare_stored)):
        expect(arg, value, bool, f"pass {arg}=True or {arg}=False")
    enqueued_params(exp, space)
    check_creatable(exp.resolved_run_dir, field="run_dir" if exp.run_dir else "run_dir (default runs/<name>)", kind="folder")
    _check_run_dir_in_urls(exp)
    check_run_dir_owner(exp)
    check_storage_url(exp.storage_url, field="storage" if exp.storage else "storage (default, in run_dir)")
    if exp.mlflow.tracking_uri:
        check_tracking_uri(exp.mlflow.tracking_uri)
    else:
        check_storage_url(exp.tracking_uri, field="mlflow.tracking_uri (default, in run_dir)", error=TrackingError)
    if exp.ray.address is None and os.environ.get("RAY_ADDRESS"):
        check_ray_address(os.environ["RAY_ADDRESS"], field="RAY_ADDRESS (environment; ray.address is null)")
    else:
        check_ray_address(exp.ray.address)
    idle = _check_existing_study(exp)  # a finished study's `dse run` starts no Ray and no trial: what those need is not checked
    if not idle:
        _check_local_resources(exp)
    ray = sys.modules.get("ray")
    if not idle and cluster_address(exp.ray) is None and not (ray and ray.is_initialized()):  # dse will start a local Ray:
        check_local_ray_folder(exp.resolved_run_dir)  # before, refused by `dse run` only, after it had created the stores
    splits = load_dataset(exp.dataset)
    check_search_space(space, layer_sizes(exp.model, splits.n_features, splits.n_classes), exp.hls4ml)
    _warn_unusual_beta(space)
    # NSGA-II's first generation is random sampling: warned where it is most of a study meant to search (Optuna's default
    # 50 under 100 trials; a population set to n_trials or more from 4 trials up)
    population = exp.sampler.population_size or 50
    unset = exp.sampler.population_size is None
    if exp.sampler.name == "nsga2" and (2 <= exp.n_trials < 2 * population if unset else 4 <= exp.n_trials <= population):
        log.warning("sampler: NSGA-II draws its first generation (sampler.population_size, %s %d) at random and breeds "
                    "only from the second, and n_trials is %d, so %s; set sampler.population_size to about n_trials / 4 "
                    "(e.g. %d; the shipped quickstart: 6 for 12 trials)", "Optuna's default" if unset else "set to",
                    population, exp.n_trials,
                    "the whole study is random sampling" if exp.n_trials <= population else "most of the study is random sampling",
                    max(exp.n_trials // 4, 2))
    # TPE's first n_startup_trials (Optuna's default 10) are random too (probe 35: a 10-trial TPE study was the random
    # sampler's study of the same seed, unsaid)
    startup = exp.sampler.n_startup_trials or 10
    if exp.sampler.name == "tpe" and 2 <= exp.n_trials <= startup:
        log.warning("sampler: TPE draws its first %d trials (sampler.n_startup_trials, %s) at random and models the "
                    "results only after them, and n_trials is %d, so the whole study is random sampling; set "
                    "sampler.n_startup_trials to about n_trials / 3 (e.g. %d)", startup,
                    "Optuna's default" if exp.sampler.n_startup_trials is None else "as set", exp.n_trials,
                    max(exp.n_trials // 3, 1))
    if exp.training.epochs == 1 and "beta_end" in space.parameters:  # the ramp never left beta, unsaid
        log.warning("training.epochs is 1, so no trial reaches its beta_end: a ramp from beta to beta_end spans the epochs, "
                    "and the only epoch trains at beta; give training.epochs 2 or more, or drop beta_end from the space")
    _warn_unusual_clock(exp.hls4ml)
    _check_objectives_measured(exp, space)
    _check_resource_tools(exp, space, local_tools=not idle)
    if compare_stored:
        _check_stored(exp, space, splits, allow_changed=allow_changed)
    return splits, idle
