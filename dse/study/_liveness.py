"""Whether the driver that stamped a heartbeat is still alive, when it ran on this machine.

A driver stamps its running trials with its id and the time (``heartbeat_interval_s``); a
driver that stops stamping for ``heartbeat_grace_s`` is taken as lost, wherever it ran. A
driver that ran on this machine can be checked at once instead: its heartbeat also carries
where its process id is valid (the kernel's boot id and the PID namespace) and the process's
start time, so a later ``dse run`` after a ``kill -9``, an out-of-memory kill or a closed
terminal recovers that driver's trials immediately, not ``heartbeat_grace_s`` later. The start
time tells a reused process id from the driver's own. Outside Linux (no ``/proc``) nothing is
recorded and only the grace applies.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from dse._proc import proc_stat

__all__ = ["this_driver", "driver_is_dead", "orphaned_trials", "silent_trials"]


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _pid_space() -> str | None:
    """``<boot id>/<PID namespace>``: process ids are comparable only between processes that share it."""
    boot = _read("/proc/sys/kernel/random/boot_id")
    try:
        ns = os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
    return f"{boot}/{ns}" if boot else None


@lru_cache(maxsize=1)
def this_driver() -> dict[str, Any]:
    """What a heartbeat records of this process: ``{"pid_space", "pid", "start"}``; empty where ``/proc`` is missing."""
    space, stat = _pid_space(), proc_stat(os.getpid())
    if space is None or stat is None:
        return {}
    return {"pid_space": space, "pid": os.getpid(), "start": stat.start}


def driver_is_dead(beat: Mapping[str, Any]) -> bool:
    """True when ``beat`` (a trial's heartbeat) was stamped by a process of this machine that no longer runs.

    Args:
        beat: the heartbeat user attribute: ``driver`` and ``time``, and from drivers that
            record them, ``pid_space``, ``pid`` and ``start`` (:func:`this_driver`).

    Returns:
        ``True`` if the heartbeat's process shares this process's PID space and that process id
        is gone, a zombie, or now another process (another start time). A process that exists
        but that ``/proc`` hides (``hidepid``, another user's) counts as alive. ``False`` otherwise,
        including for heartbeats of other machines or containers and of older ``dse`` versions:
        those wait for ``heartbeat_grace_s``.
    """
    me = this_driver()
    if not me or beat.get("pid_space") != me["pid_space"]:
        return False
    try:
        pid, start = int(beat["pid"]), int(beat["start"])
    except (KeyError, TypeError, ValueError):
        return False
    if pid <= 0:  # not a process id (0 and -1 would name process groups to the kernel)
        return False
    stat = proc_stat(pid)
    if stat is None:  # no /proc entry: gone, unless /proc hides other users' processes (hidepid)
        return not _exists(pid)
    return stat.state == "Z" or stat.start != start


def _exists(pid: int) -> bool:
    """Whether a process ``pid`` exists, asked of the kernel (signal 0), which answers for other users' processes too."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by another user
        return True
    return True


def orphaned_trials(study: Any) -> list[int]:
    """Numbers of the study's RUNNING trials whose driver ran on this machine and is gone.

    The next ``dse run`` fails them as ``DriverLostError`` and evaluates their parameters
    again; until then they stay RUNNING (``dse status`` says so).

    Args:
        study: an ``optuna.Study``.
    """
    import math
    import time

    from dse.store import StudyRecords

    return [t.number for t in StudyRecords(study).stale_trials(math.inf, time.time(), dead=driver_is_dead)]


def silent_trials(study: Any, grace_s: float, now: float | None = None) -> dict[int, float]:
    """The study's RUNNING trials whose driver has sent no heartbeat for more than ``grace_s`` seconds.

    What :func:`orphaned_trials` cannot tell: a driver on another machine, or a dse before heartbeats carried a process
    id (probe 39: ``dse status`` said "2 running" of a killed driver's trials for minutes, unexplained). The next
    ``dse run`` fails them as ``DriverLostError`` (its ``heartbeat_grace_s``). A trial without any heartbeat counts
    from its start. A heartbeat's time is its driver machine's clock: a clock behind this machine's by more than the
    grace makes a live driver look silent.

    Args:
        study: an ``optuna.Study``.
        grace_s: seconds without a heartbeat after which a driver counts as gone (the study's ``heartbeat_grace_s``).
        now: the time, seconds since the epoch (default ``time.time()``).

    Returns:
        trial number -> seconds since its last heartbeat (or its start), trial numbers ascending.
    """
    import time

    from dse.store import StudyRecords

    now = time.time() if now is None else now
    out = {}
    for t in StudyRecords(study).stale_trials(grace_s, now):
        out[t.number] = now - StudyRecords.last_heartbeat_time(t)
    return dict(sorted(out.items()))
