"""Warm trial workers: Ray actors that run trial after trial, replaced when their memory grows."""

from __future__ import annotations

import logging
from typing import Any, Callable

__all__ = ["WorkerPool", "WORKER_RSS_GROWTH"]

log = logging.getLogger(__name__)

#: A warm worker is replaced once its resident memory after a trial exceeds its memory after its
#: second trial by this fraction. A TensorFlow worker grows 21-35 MB per trial even with
#: ``keras.backend.clear_session()`` (from 890-915 MB after the first trial of
#: ``benchmarks/memory.py`` and the quickstart): each ``model.fit`` traces a new train step whose
#: graph and its ~60 branch functions stay in TensorFlow's eager context after the model is gone
#: (plain Keras leaks 4 MB per fit the same way; ``run_eagerly`` does not leak but trains several
#: times slower). The second trial is the reference because the first ``fit`` of a process also
#: builds what later ones reuse (+45-67 MB from the first trial to the second). 15% lets such a
#: worker run 7-9 trials, its RSS at every trial end within 10% of its 5th trial's; a worker
#: whose trials do not grow is never replaced.
WORKER_RSS_GROWTH = 0.15


class WorkerPool:
    """Trial workers (Ray actors of :class:`dse.trial._worker.TrialWorker`), one per running trial.

    A worker that finishes a trial waits, idle, for the next one, unless its resident memory
    grew by more than :data:`WORKER_RSS_GROWTH` since its second trial; then it is killed
    and the next trial gets a new one. Each actor reserves the trial's resources
    (``ray.cpus_per_trial`` ...) for its whole life, so idle workers are killed
    (:meth:`trim`) when no trial is about to start. A worker that dies during a trial is
    restarted by Ray and the trial retried in the new process, ``max_retries`` times
    (``max_restarts=-1``, ``max_task_retries``); then its call raises ``RayActorError``.

    Args:
        body: the trial body given to each actor (``body(spec, splits) -> TrialResult``).
        options: Ray resource options per actor (:func:`dse.study._ray_session.trial_resources`).
        max_retries: ``ray.max_retries``.
    """

    def __init__(self, body: Callable[..., Any], options: dict[str, Any], max_retries: int):
        import ray

        from dse.trial._worker import TrialWorker

        self._body = body
        self._cls = ray.remote(max_restarts=-1, max_task_retries=max_retries, **options)(TrialWorker)
        self._idle: list[Any] = []
        self._live: list[Any] = []
        self._trials: dict[int, int] = {}  # pid -> trials finished
        self._settled_rss: dict[int, int] = {}  # pid -> RSS after its second trial
        self.started = 0  # actors created, for logs and tests

    def submit(self, spec: Any, splits_ref: Any) -> tuple[Any, Any]:
        """Start ``spec`` on an idle worker, or on a new one; returns ``(object ref, actor)``."""
        if self._idle:
            actor = self._idle.pop()
        else:
            actor = self._cls.remote(self._body)
            self._live.append(actor)
            self.started += 1
        return actor.run.remote(spec, splits_ref), actor

    def release(self, actor: Any, pid: int, rss: int, keep: bool = True) -> bool:
        """Return a worker whose trial finished (``pid`` and ``rss`` in bytes from its result).

        Args:
            keep: ``False`` kills it whatever its memory (its CPUs are wanted by other tasks).

        Returns:
            Whether it was kept for the next trial.
        """
        n = self._trials[pid] = self._trials.get(pid, 0) + 1
        if n == 2:
            self._settled_rss[pid] = rss
        ref = self._settled_rss.get(pid)
        log.debug("worker %d: RSS %.0f MB after trial %d in it (%s MB after its second)", pid, rss / 2**20, n,
                  "-" if ref is None else f"{ref / 2**20:.0f}")
        if keep and (ref is None or rss <= ref * (1 + WORKER_RSS_GROWTH)):
            self._idle.append(actor)
            return True
        if keep:
            log.info("worker %d: RSS %.0f MB is %.0f%% above its %.0f MB after its second trial; replacing it",
                     pid, rss / 2**20, 100 * (rss / ref - 1), ref / 2**20)
        self._trials.pop(pid, None)
        self._settled_rss.pop(pid, None)
        self.discard(actor)
        return False

    def discard(self, actor: Any) -> None:
        """Kill ``actor`` (its trial failed, timed out or was abandoned); the next trial gets a new worker."""
        import ray

        if actor in self._idle:
            self._idle.remove(actor)
        if actor in self._live:
            self._live.remove(actor)
        try:
            ray.kill(actor, no_restart=True)
        except Exception as e:  # already dead
            log.debug("killing a worker: %s", e)

    def trim(self) -> None:
        """Kill the idle workers (no trial is about to start: free their CPUs)."""
        for actor in list(self._idle):
            self.discard(actor)

    def shutdown(self) -> None:
        """Kill every worker, idle or busy."""
        for actor in list(self._live):
            self.discard(actor)
