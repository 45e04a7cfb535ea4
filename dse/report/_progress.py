"""Live study progress on a terminal: a rich bar, or one plain line per finished trial elsewhere."""

from __future__ import annotations

import logging
import os
import time

from rich.console import Console  # dse.report's terminal renderers import rich already

__all__ = ["StudyProgress"]

log = logging.getLogger(__name__)


class _QuietWhenClosed(Console):
    """A rich ``Console`` that goes quiet when the reader of its pipe is gone (``dse run ... 2>&1 | head``).

    rich's own ``on_broken_pipe`` raises ``SystemExit(1)``: from a progress line, that stopped the study and recorded
    ``SystemExit: 1`` as its trials' reason (a finished study's parent run FAILED). Now the study goes on without
    progress lines, what is written to that pipe goes to ``/dev/null`` (rich documents the method for subclassing).
    """

    def on_broken_pipe(self) -> None:
        self.quiet = True
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self.file.fileno())
        os.close(devnull)


class StudyProgress:
    """Terminal progress on stderr: a rich bar on a terminal, one plain line per finished trial elsewhere.

    Shows trials done/failed/running, the front size and the elapsed time.

    Args:
        enabled: show anything at all (``--no-progress``: nothing).
        total: the ``n_trials`` the bar counts to.
        done: trials already evaluated when the run starts (a continued study).
    """

    def __init__(self, enabled: bool, total: int, done: int):
        import sys

        self.enabled = enabled
        self.total = total
        self.t0 = time.time()
        self.console = _QuietWhenClosed(stderr=True, width=None if sys.stderr.isatty() else 200)
        # a dumb terminal (TERM=dumb) gets the plain lines: rich draws no live bar there, only its last state at the end
        self.bar = enabled and sys.stderr.isatty() and not self.console.is_dumb_terminal
        if self.bar:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                TextColumn("{task.fields[info]}"), console=self.console,
            )
            self.task = self.progress.add_task("trials", total=total, completed=done, info="")
            self.progress.start()

    def update(self, done: int, failed: int, running: int, front: int, finished: list[str] | None = None) -> None:
        """Show the study's state: the bar on a terminal, else one line per trial in ``finished``.

        Args:
            done: trials evaluated so far (towards ``n_trials``).
            failed: of those, failed.
            running: trials running now.
            front: size of the Pareto front.
            finished: one line per trial finished since the last call (:func:`_describe`).
        """
        info = f"failed {failed} | running {running} | front {front}"
        if self.bar:
            self.progress.update(self.task, completed=done, info=info)
        elif self.enabled and finished:
            for line in finished:
                self.console.print(f"{line}  [{done}/{self.total} done, {info}, {time.time() - self.t0:.0f} s]", highlight=False, markup=False)
        log.info("progress: %d done (%d failed), %d running, front size %d, %.0f s", done, failed, running, front, time.time() - self.t0)

    def stop(self) -> None:
        """Stop the bar (a no-op without one)."""
        if self.bar:
            self.progress.stop()
