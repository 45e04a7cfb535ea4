"""One process's line of Linux's ``/proc/<pid>/stat``, read the one way every part of dse needs it.

The study's driver liveness (:mod:`dse.study._liveness`), the Ray clean-up
(:mod:`dse.study._ray_session`) and the time limit of the HLS tools (:mod:`dse.resources._vivado`)
each tell processes apart by their parent, state and start time. Field numbers follow
``proc_pid_stat(5)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

__all__ = ["ProcStat", "proc_stat"]


class ProcStat(NamedTuple):
    """Fields 3, 4 and 22 of ``/proc/<pid>/stat``.

    Attributes:
        state: one letter (``R``, ``S``, ``D``, ``Z`` for a zombie, ...).
        ppid: the parent's process id.
        start: start time in clock ticks after boot; with the pid, it names a process even once its pid is reused.
    """

    state: str
    ppid: int
    start: int


def proc_stat(pid: int) -> ProcStat | None:
    """Read ``/proc/<pid>/stat``.

    The command name (field 2) may hold spaces and parentheses, so the fields are counted from its last ``)``.

    Returns:
        The process's :class:`ProcStat`, or ``None`` where there is no such process, no ``/proc``
        (not Linux), or ``/proc`` hides it (``hidepid``).
    """
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = text.rsplit(")", 1)[-1].split()
    try:
        return ProcStat(rest[0], int(rest[1]), int(rest[19]))
    except (IndexError, ValueError):
        return None
