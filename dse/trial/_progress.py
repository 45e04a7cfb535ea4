"""Which step a trial's worker is in, kept in a small file of the trial's folder, for the driver to read.

A trial that runs past ``trial_timeout_s`` is cancelled and a worker killed for memory leaves no
result, so the driver would know neither where the time went nor what was running when it died.
The worker rewrites ``<work_dir>/steps.json`` as each step starts (under 2 ms, a dozen times a
trial); the driver reads it after such a failure (:func:`read_step_progress`), where the trial's
folder is on its own machine (a local Ray, or a run directory that the cluster's nodes share).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["STEPS_FILE", "StepProgress", "read_step_progress", "write_step_progress"]

STEPS_FILE = "steps.json"
"""The file of a trial's ``work_dir`` that :func:`write_step_progress` keeps."""


@dataclass(frozen=True)
class StepProgress:
    """The step a trial's worker was in when it last wrote its progress.

    Attributes:
        step: the step's name (``setup``, ``train``, ``compile``, ... as in the trial's
            ``seconds_<step>`` metrics; ``<step> of the checkpoint of epoch N`` while it harvests).
        seconds_in_step: wall seconds from the step's start to the read.
        finished: wall seconds of each step the trial finished before it, in order.
        pid: the process id of the worker that wrote it (``None`` in a file without one).
    """

    step: str
    seconds_in_step: float
    finished: dict[str, float]
    pid: int | None = None

    def describe(self) -> str:
        """One sentence for a failure's reason, e.g. ``in step train for 412 s (before it: setup 3.9 s, build 0.1 s)``."""
        before = ", ".join(f"{k} {v:.1f} s" for k, v in self.finished.items())
        return f"in step {self.step} for {self.seconds_in_step:.0f} s" + (f" (before it: {before})" if before else "")


def write_step_progress(work_dir: Path, run_id: str, step: str, finished: dict[str, float]) -> None:
    """Record that the trial of MLflow run ``run_id`` started ``step``, after ``finished`` (step -> wall seconds).

    Written (with the worker's process id, ``pid``) to a temporary file and renamed, so a reader never sees half of it. An ``OSError``
    (a full disk, a removed folder) is ignored: the progress is a diagnostic and never fails a trial.
    """
    path = Path(work_dir) / STEPS_FILE
    tmp = path.with_name(f".{STEPS_FILE}.{os.getpid()}")
    try:
        tmp.write_text(json.dumps({"run_id": run_id, "pid": os.getpid(), "step": step, "started": time.time(),
                                   "finished": finished}))
        os.replace(tmp, path)
    except OSError:
        pass


def read_step_progress(work_dir: Path, run_id: str) -> StepProgress | None:
    """The progress the trial of MLflow run ``run_id`` last wrote to ``work_dir``, or ``None``.

    ``None`` where the file is absent (the trial's folder is on another node, or the worker died
    before its first step), unreadable, or written for another run (an earlier study's trial of the
    same number in the same run directory).
    """
    try:
        data = json.loads((Path(work_dir) / STEPS_FILE).read_text())
        if data.get("run_id") != run_id:
            return None
        finished = {str(k): float(v) for k, v in data.get("finished", {}).items()}
        pid = int(data["pid"]) if data.get("pid") is not None else None
        return StepProgress(str(data["step"]), max(0.0, time.time() - float(data["started"])), finished, pid)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
