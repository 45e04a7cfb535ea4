"""Start (or join) Ray for a study, keeping every file Ray writes inside the run directory.

Local mode (``ray.address`` null and no ``RAY_ADDRESS`` in the environment) starts a Ray whose
every process (GCS server, raylet, workers, dashboard and runtime-env agents) listens on
127.0.0.1 only. Ray 2.60 on Linux turns ``_node_ip_address="127.0.0.1"`` into the machine's
network address (``services.resolve_ip_for_localhost``) unless
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` is set, so that setting is applied to the driver (and
thereby to every process it starts) for the duration of the session.

Ports a Ray node opens (all on its node IP; 127.0.0.1 in local mode):

* head only: the GCS server (``--port``, default 6379; the address drivers and workers join),
  the Ray client server (``--ray-client-server-port``, default 10001) and the dashboard
  (``--dashboard-port``, default 8265; dse starts no dashboard in local mode);
* every node: the raylet (``--node-manager-port``), the object manager
  (``--object-manager-port``), the runtime-env agent (``--runtime-env-agent-port``), the
  dashboard agent (``--dashboard-agent-grpc-port`` and ``--dashboard-agent-listen-port``,
  default 52365), the metrics exporter (``--metrics-export-port``) and one port per worker
  process in ``--min-worker-port``..``--max-worker-port`` (default 10002-19999). Ports without
  a default are picked at random; pin them with those ``ray start`` options to open a firewall.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import re
import shutil
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from dse._proc import proc_stat
from dse import MLFLOW_DEFAULTS
from dse.config import RayConfig
from dse.config._secrets import redact_url
from dse.exceptions import ClusterError, ClusterUnreachableError, DiskFullError

__all__ = ["ray_session", "trial_resources", "kill_ray_processes", "stop_leftover_ray", "WORKER_ENV", "LOOPBACK_ENV"]

log = logging.getLogger(__name__)

#: Environment every trial worker gets.
WORKER_ENV = {"KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore",
              **{k: os.environ.get(k, v) for k, v in MLFLOW_DEFAULTS.items()}}

#: Environment that keeps Ray 2.60 on 127.0.0.1 (node IP and every listening socket) on Linux.
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}

#: Free space (bytes) a local Ray's files need on the run directory's disk: a session takes 0.2-0.3 MB at its start
#: (measured, Ray 2.60) and grows by its workers' logs. With less, ``ray.init`` waits out its 30 s start timeout
#: ("The current node timed out during startup") instead of saying the disk is full.
RAY_MIN_FREE_BYTES = 16 * 2**20


def _check_room_for_ray(real: Path) -> None:
    """Raise :class:`DiskFullError` when the disk of ``real`` (``run_dir/ray``, or its first folder that exists) has
    under :data:`RAY_MIN_FREE_BYTES` free."""
    where = real
    while not where.exists() and where != where.parent:
        where = where.parent
    free = shutil.disk_usage(where).free
    if free < RAY_MIN_FREE_BYTES:
        raise DiskFullError(
            f"a disk is full: {real} has {free / 2**20:.1f} MB free, and a local Ray needs at least "
            f"{RAY_MIN_FREE_BYTES // 2**20} MB there for its session files and logs (the trials' files need more: a few MB "
            "each). Nothing was started; free space on that disk (`df -h` of the run directory), or set run_dir to "
            "another disk, and run the command again"
        )


# Ray puts Unix sockets under <temp>/session_<date>_<pid>/sockets/; AF_UNIX paths stop at 107 bytes.
_MAX_TEMP_LEN = 40
#: Where the short aliases of run directories too long for that go (:func:`_alias_of`).
_ALIAS_DIR = Path("/tmp")


def _alias_of(real: Path, pid: int | None = None) -> Path:
    """``/tmp/dse-ray-<hash of real>-<driver pid>``: one short alias per driver, so two drivers on one run dir never remove each other's."""
    return _ALIAS_DIR / f"dse-ray-{hashlib.sha1(str(real).encode()).hexdigest()[:10]}-{os.getpid() if pid is None else pid}"


def _aliases_of(real: Path) -> list[Path]:
    """Every driver's alias of ``real`` (see :func:`_alias_of`)."""
    return sorted(_ALIAS_DIR.glob(f"dse-ray-{hashlib.sha1(str(real).encode()).hexdigest()[:10]}-*"))


def _short_temp_dir(run_dir: Path) -> str:
    """``<run_dir>/ray``, or a short symlink in /tmp pointing at it when the real path is too long for sockets.

    Raises:
        ClusterError: the path is too long and /tmp takes no symlink (read-only, full, not writable).
    """
    real = run_dir / "ray"
    real.mkdir(parents=True, exist_ok=True)
    if len(str(real)) <= _MAX_TEMP_LEN:
        return str(real)
    link = _alias_of(real)
    try:
        if link.is_symlink() and os.readlink(link) != str(real):
            link.unlink()
        if not link.is_symlink() and not os.path.lexists(link):
            link.symlink_to(real, target_is_directory=True)
        # only this user's link to this run directory (before, a folder another user put at the name was used as
        # Ray's, its sockets and logs with it)
        if not link.is_symlink() or os.lstat(link).st_uid != os.getuid() or os.readlink(link) != str(real):
            raise ClusterError(_alias_refused(real, f"{link} exists and is not this user's link to it; remove it"))
    except OSError as e:  # before: the OSError's traceback, after the stores were created
        raise ClusterError(_alias_refused(real, e)) from e
    return str(link)


def _alias_refused(real: Path, why: OSError | str) -> str:
    why = why if isinstance(why, str) else why.strerror or str(why)
    return (f"run_dir: a local Ray keeps its sockets under {real}, {len(str(real))} characters, too long for Unix sockets "
            f"(107 bytes with Ray's own folders), and the short link dse makes for it in /tmp could not be made "
            f"({why}); make /tmp writable, or pick a run_dir of at most {_MAX_TEMP_LEN - 4} characters")


def check_local_ray_folder(run_dir: Path) -> None:
    """What a local Ray needs of ``run_dir`` before anything is created: :data:`RAY_MIN_FREE_BYTES` free on its disk,
    and, where ``run_dir/ray`` is too long for Unix sockets, a writable /tmp for the short link to it.

    Raises:
        DiskFullError: too little free space (the message names the fix).
        ClusterError: the path is too long and /tmp takes no new entry.
    """
    from dse.study._preflight import _takes_no_new_entries  # imports this module: here, not at the top

    real = run_dir / "ray"
    _check_room_for_ray(real)
    if len(str(real)) > _MAX_TEMP_LEN and (why := _takes_no_new_entries(_ALIAS_DIR)):
        raise ClusterError(_alias_refused(real, why))


def trial_resources(cfg: RayConfig) -> dict[str, Any]:
    """Ray task options for one trial, from ``ray.cpus_per_trial``, ``gpus_per_trial`` and ``memory_per_trial``.

    Args:
        cfg: the experiment's ``ray`` section.

    Returns:
        Keyword arguments for ``ray.remote(...)`` / ``.options(...)``: ``num_cpus`` (CPUs),
        ``num_gpus`` (GPUs, fractions allowed) and, when set, ``memory`` (bytes; a scheduling
        reservation, not a hard limit).
    """
    opts: dict[str, Any] = {"num_cpus": cfg.cpus_per_trial, "num_gpus": cfg.gpus_per_trial}
    if cfg.memory_per_trial is not None:
        opts["memory"] = cfg.memory_per_trial
    return opts


def _pids_and_cmdlines() -> Iterator[tuple[int, str, list[str]]]:
    """``(pid, command line, targets of its open files)`` of every process this user may inspect."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
        except OSError:  # gone, or not ours to read
            continue
        if not raw:  # kernel thread or zombie
            continue
        files = []
        try:
            for fd in (entry / "fd").iterdir():
                try:
                    files.append(os.readlink(fd))
                except OSError:
                    continue
        except OSError:
            pass
        yield int(entry.name), raw.replace(b"\0", b" ").decode(errors="replace"), files


def _ancestors() -> set[int]:
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        stat = proc_stat(pid)
        if stat is None:
            break
        pid = stat.ppid
    return pids


def kill_ray_processes(
    temp_dirs: list[str | Path], timeout_s: float = 10.0, *, orphaned_only: bool = False, created_by: int | None = None
) -> list[tuple[int, str]]:
    """Stop the Ray processes whose command line names a session under one of ``temp_dirs``.

    A Ray process names its session folder (``<temp>/session_...``) in its arguments or, when
    it renamed itself (``ray::RuntimeEnvAgent``, ``ray::DashboardAgent``, ``ray::IDLE``), keeps
    its log files there open; so this finds exactly the processes of the Ray instances that
    used those temp folders and leaves any other Ray on the machine alone. Sends SIGTERM, then
    SIGKILL to those still alive after ``timeout_s`` seconds. Linux only (reads ``/proc``).

    Args:
        temp_dirs: Ray temp folders (``--temp-dir`` / ``_temp_dir``), real paths or aliases.
        timeout_s: seconds to wait after SIGTERM before SIGKILL.
        orphaned_only: spare the sessions whose creator is still running (a session folder is
            named ``session_<date>_<pid of the process that started it>``), e.g. another live
            driver on the same run dir.
        created_by: only the sessions this process id started (this driver's own Ray).

    Returns:
        ``(pid, command line)`` of each process signalled.
    """
    roots = {str(t).rstrip("/") for t in temp_dirs}
    roots |= {os.path.realpath(r) for r in roots}
    marks = [f"{r}/session_" for r in roots]
    skip = _ancestors()
    owner = re.compile("(?:" + "|".join(re.escape(m) for m in marks) + r")[0-9_-]+_(\d+)(?:/|\s|$)")

    def wanted(cmd: str, files: list[str]) -> bool:
        if not any(m in cmd or any(f.startswith(m) for f in files) for m in marks):
            return False
        if not orphaned_only and created_by is None:
            return True
        owners = {int(o) for text in [cmd, *files] for o in owner.findall(text)}
        if created_by is not None:
            return created_by in owners
        return not any(_alive(o) for o in owners)

    found = [(pid, cmd) for pid, cmd, files in _pids_and_cmdlines() if pid not in skip and wanted(cmd, files)]
    for pid, _ in found:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout_s
    alive = [pid for pid, _ in found]
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [pid for pid in alive if _alive(pid)]
    for pid in alive:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return found


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (exists and is no zombie)."""
    return Path(f"/proc/{pid}").exists() and not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    stat = proc_stat(pid)
    return stat is None or stat.state == "Z"


def stop_leftover_ray(run_dir: Path, *, prune: bool = True) -> None:
    """Kill what a killed driver left running under ``run_dir/ray`` (local mode only); prune old session folders.

    Called when a local session starts and (with ``prune=False``, so the newest
    :data:`KEEP_RAY_SESSIONS` earlier sessions stay beside this run's own) when it ends: a
    driver killed while this one ran leaves Ray's agents behind, which would otherwise idle for
    about a minute. Also called by a ``dse run`` that has nothing to run and starts no Ray.
    Sessions of live drivers are spared.

    Args:
        run_dir: the study's run directory (Ray's files are in ``run_dir/ray``).
        prune: also delete old session folders (:func:`prune_ray_sessions`).
    """
    real = run_dir / "ray"
    # a killed driver's Ray agents ignore SIGTERM: after 2 s, SIGKILL (before: 10 s, a pause of every resume after a kill)
    left = kill_ray_processes([real, *_aliases_of(real)], timeout_s=2.0, orphaned_only=True)
    for alias in _aliases_of(real):  # aliases of drivers that are gone (or killed and not yet reaped: zombies)
        pid = alias.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            alias.unlink(missing_ok=True)
    if left:
        log.warning(
            "stopped %d Ray process(es) a previous dse driver left running under %s: %s",
            len(left), real, ", ".join(f"{pid} ({cmd.split()[0].rsplit('/', 1)[-1]})" for pid, cmd in left),
        )
    if prune:
        prune_ray_sessions(real)


#: Ray session folders (``run_dir/ray/session_*``: that session's logs) a local run keeps, newest first
KEEP_RAY_SESSIONS = 5


def prune_ray_sessions(temp_dir: Path, keep: int = KEEP_RAY_SESSIONS) -> list[Path]:
    """Delete all but the newest ``keep`` session folders under a local Ray's temp folder.

    Each ``dse run`` with a local Ray leaves one ``session_<date>_<time>_<pid>`` folder (its
    logs, about 0.2 MB); without this, a run directory gains one per resume. A session whose
    creator (the pid ending its name) is still running, such as another live driver's on the
    same run directory, is kept whatever its age, as is the folder ``session_latest`` points to.

    Args:
        temp_dir: the Ray temp folder (``run_dir/ray``).
        keep: how many of the newest finished sessions to keep (their logs stay for a post-mortem).

    Returns:
        The folders deleted, oldest first.
    """
    sessions = sorted(p for p in temp_dir.glob("session_*") if p.is_dir() and not p.is_symlink()
                      and p.name != "session_latest")
    latest = temp_dir / "session_latest"
    current = Path(os.path.realpath(latest)).name if latest.is_symlink() else None
    deleted = []
    for folder in sessions[:-keep] if keep > 0 else sessions:
        creator = folder.name.rsplit("_", 1)[-1]
        if folder.name == current or (creator.isdigit() and _alive(int(creator))):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        deleted.append(folder)
    if deleted:
        log.info("deleted %d old Ray session folder(s) under %s (keeping the newest %d)", len(deleted), temp_dir, keep)
    return deleted


@contextmanager
def _signals_held() -> Iterator[None]:
    """Hold a Ctrl-C (SIGINT) or SIGTERM that arrives while ``ray.init`` runs, and deliver it at the block's end.

    ``ray.init`` builds the driver's core worker in Cython (``ray._raylet.CoreWorker``); a
    ``KeyboardInterrupt`` raised halfway through it left a half-built core worker whose C++ side
    crashed the process at exit (SIGSEGV, exit status 139: 4 of 26 Ctrl-Cs sent 5.5-9 s after
    ``dse run`` started, 2026-12-05). A SIGTERM did the same through the handler ``ray.init``
    installs first (``sys.exit(15)``): exit status 15 without dse's stop line, or 134 (SIGABRT),
    and the study's parent run closed FAILED with ``SystemExit: 15`` (a probe, 2026-12-06). Held,
    either signal stops the study as soon as Ray is up (the caller's ``finally`` shuts it down):
    it is raised again once the handlers are back, so the handler in place before (``dse run``'s:
    :class:`~dse.exceptions.DriverTerminated` for SIGTERM) or, where there was none, the one
    ``ray.init`` asked for receives it. A second signal of the same kind acts at once. Main thread
    only (signals are the main thread's); elsewhere the block runs as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    from ray._private import utils as ray_utils

    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    held: list[int] = []
    asked: list[Any] = []  # the SIGTERM handler ray.init installs (sys.exit), kept back while held

    def hold(signum: int, frame: Any) -> None:
        held.append(signum)
        signal.signal(signum, after(signum))  # a second one is not held
        what = "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"
        again = "press Ctrl-C again" if signum == signal.SIGINT else "send it again"
        log.warning("%s: stopping as soon as Ray has started (%s to stop at once)", what, again)

    def after(signum: int) -> Any:
        if signum == signal.SIGTERM and not callable(before[signum]) and asked:
            return asked[-1]
        return before[signum] if before[signum] is not None else signal.SIG_DFL

    holding = [sig for sig, h in before.items() if callable(h) or sig == signal.SIGTERM and h != signal.SIG_IGN]
    set_sigterm_handler = ray_utils.set_sigterm_handler
    ray_utils.set_sigterm_handler = asked.append  # ray.init's own, called first thing: held until the end
    for sig in holding:
        signal.signal(sig, hold)
    try:
        yield
    finally:
        ray_utils.set_sigterm_handler = set_sigterm_handler
        for sig in holding:
            signal.signal(sig, after(sig))
    for sig in dict.fromkeys(held):
        signal.raise_signal(sig)  # to the handler now in place, outside ray.init


@contextmanager
def _env(values: dict[str, str]) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextmanager
def _loopback_only() -> Iterator[None]:
    """Keep this process's Ray (and every process it starts) on 127.0.0.1 for the block.

    Sets :data:`LOOPBACK_ENV` (read by the processes Ray starts) and Ray's cached copy of it in
    ``ray._private.ray_constants`` (read once when ray is imported, maybe before this block).
    """
    from ray._private import ray_constants

    old = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        with _env(LOOPBACK_ENV):
            yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = old


@contextmanager
def _local_token() -> Iterator[None]:
    """Token authentication for a local Ray, without Ray's warning or a file in the home folder.

    Left to itself, ``ray.init`` turns token authentication on for a cluster it starts, logs a
    warning saying so ("Set RAY_AUTH_MODE=disabled to opt out") on every run, and writes a token
    it generates to ``~/.ray/auth_token``, outside the run directory. Here a new token
    (:func:`secrets.token_hex`, 256 bits) goes into this process's environment for the session
    (``RAY_AUTH_TOKEN``, which every Ray process it starts inherits) with ``RAY_AUTH_MODE=token``.
    Nothing is changed when the user set ``RAY_AUTH_MODE``, ``RAY_AUTH_TOKEN`` or
    ``RAY_AUTH_TOKEN_PATH``: Ray then does what they say.
    """
    import secrets

    if any(os.environ.get(k) is not None for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")):
        yield
        return
    try:
        with _env({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}):
            _refresh_auth()
            yield
    finally:
        _refresh_auth()  # a later session of this process (a cluster's) reads its own token


def _refresh_auth() -> None:
    """Make Ray re-read ``RAY_AUTH_MODE`` and the token (it caches both)."""
    from ray._raylet import AuthenticationTokenLoader, Config

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


#: What to do when a cluster refuses this driver's token (or it has none).
TOKEN_HINT = ("give this driver the cluster's token: RAY_AUTH_TOKEN=<token>, RAY_AUTH_TOKEN_PATH=<file>, or the file "
              "~/.ray/auth_token (`ray get-auth-token` on the head prints it); or set RAY_AUTH_MODE=disabled if the "
              "cluster runs without token authentication")


def _refuse_a_token_the_cluster_refuses(address: str) -> None:
    """Ask the cluster's GCS at ``address`` to accept this driver's token before ``ray.init`` joins it.

    One gRPC call (:func:`dse.study._preflight.check_cluster_token`, about 0.1 s): a missing or refused token is
    said at once, where ``ray.init`` says it only after its retries (about 20 s with a 5 s GCS connect timeout).
    Anything else the call meets (nothing answers, another Ray layout, an address that is not ``host:port``) is
    left to ``ray.init``, which says why it cannot join in its own words.

    Raises:
        ClusterError: the cluster does not accept this driver's token, or the driver has none.
    """
    from dse.study._preflight import check_cluster_token, ray_auth_reason

    if "://" in address:
        return
    try:
        check_cluster_token(address)
    except ClusterError as e:  # the token (ClusterUnreachableError is not a ClusterError)
        reason = ray_auth_reason(e.__cause__ or e)  # Ray's own words, as check_cluster_token read them
        if "no authentication token" in reason.lower():  # none at all: not "refused" (the review)
            raise ClusterError(f"cannot join the Ray cluster at {redact_url(address)}: this driver has no authentication "
                               f"token ({reason}); {TOKEN_HINT}") from e
        raise ClusterError(f"cannot join the Ray cluster at {redact_url(address)}: it does not accept this "
                           f"driver's token; {TOKEN_HINT} (Ray said: {reason})") from e
    except Exception as e:  # noqa: BLE001 -- ray.init below tells why it cannot join
        log.debug("Ray token not checked before joining %s: %s: %s", redact_url(address), type(e).__name__, e)


def _keep_token_auth() -> None:
    """Join clusters with token authentication unless ``RAY_AUTH_MODE`` says otherwise.

    Ray enables token auth by itself only for the clusters it starts; a driver joining an
    explicit address sends no token unless ``RAY_AUTH_MODE=token``. Sets it for this process
    (as ``ray.init`` does for a local cluster) and refreshes Ray's cached config.
    """
    mode = os.environ.get("RAY_AUTH_MODE")
    if mode is None:
        os.environ["RAY_AUTH_MODE"] = "token"
        from ray._raylet import Config

        Config.initialize("")  # Ray reads RAY_AUTH_MODE once; make it see the new value
    elif mode.lower() != "token":
        log.warning("RAY_AUTH_MODE=%s: joining the Ray cluster without token authentication", mode)


def _is_loopback_address(address: str) -> bool:
    host = address.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cluster_address(cfg: RayConfig) -> str | None:
    """The Ray cluster to join: ``ray.address``, else ``RAY_ADDRESS`` from the environment; ``None`` for a local Ray
    (also for ``ray.address: local``, whatever ``RAY_ADDRESS`` says, as ``ray.init(address="local")`` starts one)."""
    if cfg.address is not None and cfg.address.strip().lower() == "local":
        return None
    return cfg.address or os.environ.get("RAY_ADDRESS") or None


def resolve_auto_address(field: str = "ray.address") -> str:
    """The cluster ``auto`` means, as ``ray.init("auto")`` finds it, but never a guess among several.

    ``RAY_ADDRESS`` from the environment; else the cluster of the last ``ray start`` on this machine (Ray's
    ``ray_current_cluster`` file in its default temp folder); else the one Ray GCS process running on this machine.
    Ray itself takes any one of several such processes (an unordered set, so ``dse check`` and ``dse run`` could join
    different clusters: another user's local Ray was taken in one run of two); that is refused here.

    Returns:
        ``host:port`` (or whatever ``RAY_ADDRESS`` says).

    Raises:
        ClusterUnreachableError: no cluster is found, or several and nothing says which.
    """
    from ray._private.services import find_bootstrap_address, find_gcs_addresses

    env = os.environ.get("RAY_ADDRESS", "").strip()
    if env and env.lower() != "auto":
        return env
    found = find_bootstrap_address(None)
    if found:
        return found
    running = sorted(find_gcs_addresses())
    if len(running) == 1:
        return running[0]
    fix = ("give the head's host:port as ray.address (or RAY_ADDRESS), or set ray.address: null for a local Ray that dse "
           "starts")
    if not running:
        raise ClusterUnreachableError(
            f"{field}: auto found no Ray cluster (no RAY_ADDRESS in the environment, and no Ray started with `ray start` "
            f"on this machine); start one (ray start --head), {fix}")
    raise ClusterUnreachableError(
        f"{field}: auto found {len(running)} Ray clusters on this machine ({', '.join(running)}; none started by "
        f"`ray start` with its default temp folder, which would settle it) and will not guess among them; {fix}")


@contextmanager
def ray_session(cfg: RayConfig, run_dir: Path) -> Iterator[None]:
    """Connect to Ray for the duration of the block.

    With neither ``cfg.address`` nor ``RAY_ADDRESS`` set, starts a local Ray with
    ``cfg.num_cpus`` CPUs (default: all), no dashboard, every process listening on 127.0.0.1
    only, and its temp files under ``run_dir/ray``; it is shut down on exit. Ray processes a
    killed driver left running under the same ``run_dir/ray`` are stopped first, and again on
    exit (:func:`stop_leftover_ray`, logged). With an address (``cfg.address``, else the ``RAY_ADDRESS`` environment variable),
    joins that cluster, starts nothing, and only disconnects on exit; token authentication
    stays on (``RAY_AUTH_MODE=token`` unless the environment sets it), so the driver needs the
    cluster's token in ``RAY_AUTH_TOKEN``, the file ``RAY_AUTH_TOKEN_PATH`` or
    ``~/.ray/auth_token``. A loopback address (``127.0.0.1:<port>``) is joined as is, with the
    driver on 127.0.0.1. If Ray is already initialized in this process, uses it as is. A local
    Ray also has token authentication on, with a token of its own in its processes' environment
    (:func:`_local_token`), unless ``RAY_AUTH_MODE`` or a token of the user's is set.

    Every worker of a Ray started or joined here gets :data:`WORKER_ENV`: a local Ray's through
    the environment its processes start with (set only while ``ray.init`` runs, so this
    process's own stays as it was), a cluster's through the job's ``runtime_env``. A Ray this
    process had already initialized keeps the environment it was given (its workers then log
    TensorFlow's INFO lines, for one, unless its ``runtime_env`` sets :data:`WORKER_ENV`).

    Args:
        cfg: the experiment's ``ray`` section.
        run_dir: the study's run directory (local mode puts Ray's files in ``run_dir/ray``).

    Raises:
        ClusterError: the cluster cannot be joined (unreachable, or no/wrong auth token), a local Ray did not start,
            or ``run_dir`` is too long for Ray's sockets and /tmp takes no short link to it.
        DiskFullError: a local Ray's folder (``<run_dir>/ray``) has too little free space for Ray's files.
        OSError: ``<run_dir>/ray`` cannot be created (:func:`dse.study.preflight` checks ``run_dir`` first).
    """
    import ray

    if ray.is_initialized():
        yield
        return
    address = cluster_address(cfg)
    temp = None
    if address is None:
        stop_leftover_ray(run_dir)
        temp = _short_temp_dir(run_dir)
        _check_room_for_ray(run_dir / "ray")
        log.info("starting local Ray (127.0.0.1 only, files under %s)", run_dir / "ray")
        with _loopback_only(), _local_token():
            # A local Raylet starts its workers with its own environment, which it copies from this
            # process when ``ray.init`` starts it: WORKER_ENV set for that call reaches every worker
            # without a ``runtime_env``, whose agent adds 0.4-0.7 s to each new worker process.
            try:  # ray.init inside: a Ctrl-C while Ray starts must not leave its processes running
                with _env(WORKER_ENV), _signals_held():
                    ray.init(
                        address="local",  # a new local Ray: never RAY_ADDRESS's cluster, nor one found in the temp dir
                        num_cpus=cfg.num_cpus or os.cpu_count(),
                        _node_ip_address="127.0.0.1",
                        _temp_dir=temp,
                        include_dashboard=False,
                        log_to_driver=False,
                        logging_level=logging.WARNING,
                    )
                yield
            except Exception as e:
                if not ray.is_initialized():  # ray.init failed: Ray's own words say little ("timed out during startup")
                    _check_room_for_ray(run_dir / "ray")  # a disk that filled while it started
                    raise ClusterError(f"could not start a local Ray: {type(e).__name__}: {' '.join(str(e).split())[:300]}. "
                                       f"Its logs are in {run_dir / 'ray'}/session_latest/logs (raylet.out, gcs_server.out)") from e
                raise
            finally:
                ray.shutdown()
                # what outlived shutdown (an interrupted start; the agents, which may ignore SIGTERM): this
                # driver's own session only (its temp alias), never another driver's on the same run_dir
                left = kill_ray_processes([temp], timeout_s=3.0, created_by=os.getpid())
                if left:
                    log.info("stopped %d Ray process(es) that outlived ray.shutdown: %s", len(left),
                             ", ".join(f"{pid} ({cmd.split()[0].rsplit('/', 1)[-1]})" for pid, cmd in left))
                if Path(temp).is_symlink():
                    Path(temp).unlink(missing_ok=True)  # the files stay in run_dir/ray; only the short alias goes
                stop_leftover_ray(run_dir, prune=False)  # another driver on this run dir killed meanwhile (kill -9) left its agents
        return
    if address.strip().lower() == "auto":  # resolved as `dse check` resolves it, never a guess among several clusters
        try:
            address = resolve_auto_address()
        except ClusterUnreachableError as e:  # at run time, a cluster that cannot be joined (as ray.init's own error)
            raise ClusterError(str(e)) from e
    _keep_token_auth()
    _refuse_a_token_the_cluster_refuses(address)
    loopback = _is_loopback_address(address)
    log.info("joining Ray cluster at %s%s", redact_url(address), " (loopback)" if loopback else "")
    with _loopback_only() if loopback else _env({}):
        try:
            with _signals_held():
                ray.init(
                    address=address,
                    _node_ip_address="127.0.0.1" if loopback else None,
                    runtime_env={"env_vars": WORKER_ENV},  # a cluster's workers do not share this process's environment
                    log_to_driver=False,
                    logging_level=logging.WARNING,
                )
        except KeyboardInterrupt:  # a held Ctrl-C: Ray is connected by now
            ray.shutdown()
            raise
        except Exception as e:  # ConnectionError (from AuthenticationError / timeout), RuntimeError("...token...")
            text = " ".join(f"{e} {e.__cause__ or ''}".split())
            if "InvalidAuthToken" in text or "no authentication token was found" in text:
                raise ClusterError(f"cannot join the Ray cluster at {redact_url(address)}: it does not accept this "
                                   f"driver's token; {TOKEN_HINT}") from e
            cause = e.__cause__ or e
            why = f"{type(e).__name__}: {e}"
            if cause is not e:
                why += f" ({type(cause).__name__}: {str(cause).splitlines()[-1]})"
            raise ClusterError(
                f"cannot join the Ray cluster at {redact_url(address)}: {why}. Check that the head "
                "is running (`ray status --address <address>`), that its GCS port is reachable from here, and that "
                "this driver has the cluster's token (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token)"
            ) from e
        try:
            yield
        finally:
            ray.shutdown()
