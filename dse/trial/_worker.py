"""A warm worker process: the class that ``dse.study`` makes a Ray actor to run trial after trial."""

from __future__ import annotations

import os
from typing import Any, Callable

__all__ = ["TrialWorker", "rss_bytes"]


def rss_bytes() -> int:
    """This process's resident set size in bytes (``VmRSS`` of ``/proc/self/status``).

    Returns 0 where ``/proc`` does not exist (not Linux): the worker is then never replaced
    for its memory.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    return 0


class TrialWorker:
    """Runs trials one after another in one process (``ray.reuse_workers: true``).

    ``dse.study`` wraps it with ``ray.remote(...)`` (one CPU reservation per actor, as a trial
    task had) and replaces the actor when its memory has grown too much
    (:class:`dse.study._workers.WorkerPool`). Kept apart from :mod:`dse.study` so that a new
    worker process imports only :mod:`dse.trial`, not the driver's Optuna and report stack.

    Args:
        body: the trial body, ``body(spec, splits) -> TrialResult``
            (:func:`dse.trial._runner._execute`; benchmarks pass a trivial one).
    """

    def __init__(self, body: Callable[..., Any]):
        self._body = body

    def run(self, spec: Any, splits: Any) -> tuple[Any, int, int]:
        """Run one trial.

        Returns:
            ``(result, pid, rss)``: the body's :class:`~dse.trial.TrialResult`, this
            process's id and its resident memory after the trial, in bytes.
        """
        result = self._body(spec, splits)
        return result, os.getpid(), rss_bytes()
