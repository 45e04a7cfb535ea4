"""Native (C/C++) writes to standard error, sent to a Python logger instead of the terminal."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from contextlib import contextmanager
from typing import Iterator

__all__ = ["native_stderr_to_debug_log", "import_tensorflow_quietly"]


@contextmanager
def native_stderr_to_debug_log(logger: logging.Logger, prefix: str) -> Iterator[None]:
    """Send what native code writes to file descriptor 2 during the block to ``logger`` at DEBUG.

    Each line is logged as ``"<prefix>: <line>"`` when the block ends, also when it raises.
    Python's own ``sys.stderr`` is flushed first, so nothing written before the block is caught.

    Args:
        logger: The logger that receives the lines (shown with ``-v`` only if DEBUG is enabled).
        prefix: Names the native library in each logged line, e.g. ``"ray"``.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as f:
        os.dup2(f.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            f.seek(0)
            for line in f.read().decode(errors="replace").splitlines():
                logger.debug("%s: %s", prefix, line)


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with its start-up lines in the DEBUG log rather than on the terminal.

    TensorFlow 2.21 writes "All log messages before absl::InitializeLog() ..." and its oneDNN
    notice to file descriptor 2 before ``TF_CPP_MIN_LOG_LEVEL`` takes effect, so no environment
    variable silences them. A process that has already imported TensorFlow is left as it is;
    an import error still raises.
    """
    if "tensorflow" in sys.modules:
        return
    with native_stderr_to_debug_log(logging.getLogger("dse.tensorflow"), "tensorflow"):
        import tensorflow  # noqa: F401
