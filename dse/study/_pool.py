"""A small pool of Ray tasks (and actor calls) shared by trials and re-measurements: submit, wait, time out, cancel.

Failures come back as data (:class:`Done` carries a :class:`~dse.exceptions.DseError`), never
as strings to parse: a worker that died after its retries is a
:class:`~dse.exceptions.WorkerLostError`, a task past its limit a
:class:`~dse.exceptions.TrialTimeoutError`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from dse.exceptions import DseError, TrialTimeoutError, WorkerLostError

log = logging.getLogger(__name__)

__all__ = ["TaskPool", "Done"]


@dataclass
class _Task:
    ref: Any
    kind: str
    meta: Any
    started: float
    timeout_s: float | None
    actor: Any = None


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
        actor: the Ray actor that ran it, for an actor task (a warm trial worker).
    """

    kind: str
    meta: Any
    ref: Any
    result: Any = None
    error: DseError | None = None
    seconds: float = 0.0
    actor: Any = None


@dataclass
class TaskPool:
    """Ray tasks in flight, by kind.

    Ray itself retries a task whose worker died (``max_retries`` given to ``ray.remote``, or an
    actor's ``max_task_retries``); the pool sees only the final outcome.
    """

    _tasks: dict[Any, _Task] = field(default_factory=dict)

    def submit(self, ref: Any, kind: str, meta: Any = None, timeout_s: float | None = None, actor: Any = None) -> Any:
        """Track the task behind ``ref`` (already submitted with ``remote_fn.remote(...)``, or
        ``actor.method.remote(...)``: then pass ``actor``, which is killed if the task times out)."""
        self._tasks[ref] = _Task(ref, kind, meta, time.time(), timeout_s, actor)
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
        (``ray.cancel(force=True)``; an actor task's actor is killed, as Ray cannot force-cancel
        those) and comes back with a :class:`~dse.exceptions.TrialTimeoutError`.
        """
        import ray

        if not self._tasks:
            return []
        ready, _ = ray.wait(list(self._tasks), num_returns=1, timeout=timeout_s)
        out: list[Done] = []
        now = time.time()
        for ref in ready:
            task = self._tasks.pop(ref)
            done = Done(task.kind, task.meta, ref, seconds=now - task.started, actor=task.actor)
            try:
                done.result = ray.get(ref)
            except Exception as e:  # worker crash / OOM kill / node lost, after Ray's retries
                died = (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                        ray.exceptions.OutOfMemoryError)
                why = ("its worker process died (most often killed for memory, or a crash in native code; or its node was "
                       "lost), after the retries of ray.max_retries; give each trial more memory (ray.memory_per_trial) "
                       "or fewer concurrent trials. Ray said: " if isinstance(e, died) else "")
                done.error = WorkerLostError(f"{why}{type(e).__name__}: {e}"[:2000])
            out.append(done)
        for ref, task in list(self._tasks.items()):
            if task.timeout_s is not None and now - task.started > task.timeout_s:
                _stop(task)
                self._tasks.pop(ref)
                out.append(Done(task.kind, task.meta, ref, error=TrialTimeoutError(
                    f"ran past {task.timeout_s:g} s (trial_timeout_s); raise trial_timeout_s or shrink the trial"
                ), seconds=now - task.started, actor=task.actor))
        return out

    def flag_actor_calls(self) -> None:
        """``ray.cancel`` every actor call in flight, keeping it in the pool (for :meth:`cancel_all`).

        Ray cannot interrupt a call of a regular actor; the flag only tells it not to retry the call
        when its actor is killed next (else it prints "There are 1 retries remaining, so the task
        will be retried" for each, though nothing is retried).
        """
        import ray

        if not ray.is_initialized():
            return
        for ref, task in self._tasks.items():
            if task.actor is not None:
                try:
                    ray.cancel(ref)
                except Exception as e:  # already finished or gone
                    log.debug("flagging a call: %s", e)

    def cancel_all(self) -> list[Any]:
        """Cancel every task in flight (killing the actors of actor tasks); returns their ``meta``."""
        metas = []
        for task in list(self._tasks.values()):
            _stop(task)
            metas.append(task.meta)
        self._tasks.clear()
        return metas


def _stop(task: _Task) -> None:
    """Cancel ``task`` by force: kill its actor (``ray.kill``), or its worker process (``ray.cancel(force=True)``).

    Nothing to do once the Ray session has ended (the driver abandons its trials after
    :func:`~dse.study._ray_session.ray_session` exits): a local Ray's shutdown stopped every
    worker, and a cluster ends the tasks and actors of a driver that disconnected. ``ray.kill``
    and ``ray.cancel`` would start a new local Ray there (Ray's auto-init), with default settings
    and files in Ray's shared temp folder.
    """
    import ray

    if not ray.is_initialized():
        return
    try:
        if task.actor is not None:
            ray.cancel(task.ref)  # marks the call cancelled, so Ray does not offer to retry it when its actor dies
            ray.kill(task.actor, no_restart=True)
        else:
            ray.cancel(task.ref, force=True)
    except Exception as e:  # already gone
        log.debug("stopping a task: %s", e)
