"""A small pool of Ray tasks shared by trials and re-measurements: submit, wait, time out, cancel.

Failures come back as data (:class:`Done` carries a :class:`~dse.exceptions.DseError`), never
as strings to parse: a worker that died after its retries is a
:class:`~dse.exceptions.WorkerLostError`, a task past its limit a
:class:`~dse.exceptions.TrialTimeoutError`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from dse.exceptions import DseError, TrialTimeoutError, WorkerLostError

__all__ = ["TaskPool", "Done"]


@dataclass
class _Task:
    ref: Any
    kind: str
    meta: Any
    started: float
    timeout_s: float | None


@dataclass
class Done:
    """A finished task.

    Attributes:
        kind: what the caller called it at submission (``"trial"``, ``"remeasure"``).
        meta: the caller's data given at submission.
        ref: the Ray object ref.
        result: the task's return value (``None`` when ``error`` is set).
        error: why no result came (worker lost, timed out).
        seconds: wall time since submission.
    """

    kind: str
    meta: Any
    ref: Any
    result: Any = None
    error: DseError | None = None
    seconds: float = 0.0


@dataclass
class TaskPool:
    """Ray tasks in flight, by kind.

    Ray itself retries a task whose worker died (``max_retries`` given to ``ray.remote``);
    the pool sees only the final outcome.
    """

    _tasks: dict[Any, _Task] = field(default_factory=dict)

    def submit(self, ref: Any, kind: str, meta: Any = None, timeout_s: float | None = None) -> Any:
        """Track the task behind ``ref`` (already submitted with ``remote_fn.remote(...)``)."""
        self._tasks[ref] = _Task(ref, kind, meta, time.time(), timeout_s)
        return ref

    def count(self, kind: str | None = None) -> int:
        """Tasks in flight (of ``kind``)."""
        return sum(1 for t in self._tasks.values() if kind is None or t.kind == kind)

    def metas(self, kind: str | None = None) -> list[Any]:
        """The ``meta`` of each task in flight (of ``kind``)."""
        return [t.meta for t in self._tasks.values() if kind is None or t.kind == kind]

    def __len__(self) -> int:
        return len(self._tasks)

    def wait(self, timeout_s: float = 5.0) -> list[Done]:
        """Wait up to ``timeout_s`` seconds for at least one task; return those finished or timed out.

        A task whose worker died (after Ray's retries) comes back with a
        :class:`~dse.exceptions.WorkerLostError`; one past its ``timeout_s`` is cancelled
        (``ray.cancel(force=True)``) and comes back with a :class:`~dse.exceptions.TrialTimeoutError`.
        """
        import ray

        if not self._tasks:
            return []
        ready, _ = ray.wait(list(self._tasks), num_returns=1, timeout=timeout_s)
        out: list[Done] = []
        now = time.time()
        for ref in ready:
            task = self._tasks.pop(ref)
            done = Done(task.kind, task.meta, ref, seconds=now - task.started)
            try:
                done.result = ray.get(ref)
            except Exception as e:  # worker crash / OOM kill / node lost, after Ray's retries
                done.error = WorkerLostError(f"{type(e).__name__}: {e}"[:2000])
            out.append(done)
        for ref, task in list(self._tasks.items()):
            if task.timeout_s is not None and now - task.started > task.timeout_s:
                ray.cancel(ref, force=True)
                self._tasks.pop(ref)
                out.append(Done(task.kind, task.meta, ref, error=TrialTimeoutError(
                    f"ran past {task.timeout_s:g} s (trial_timeout_s); raise trial_timeout_s or shrink the trial"
                ), seconds=now - task.started))
        return out

    def cancel_all(self) -> list[Any]:
        """Cancel every task in flight; returns their ``meta``."""
        import ray

        metas = []
        for ref, task in list(self._tasks.items()):
            try:
                ray.cancel(ref, force=True)
            except Exception:  # already gone
                pass
            metas.append(task.meta)
        self._tasks.clear()
        return metas
