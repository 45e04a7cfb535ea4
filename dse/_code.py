"""Which ``dse`` code a process runs, so that a Ray worker that imported another ``dse`` than its driver is told so.

Ray puts the folder a driver was started in on its local workers' import path, ahead of the installed packages
(``ray._private.worker.connect``: ``job_config._py_driver_sys_path``). A driver started from a folder that holds a
``dse`` package (a checkout, while ``dse`` is installed from a wheel) then ran its own ``dse`` while its workers trained
with the folder's, and the study recorded the driver's version (probe 40). A cluster's nodes may likewise have another
``dse`` installed than the driver's machine.
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CodeIdentity", "NO_SOURCES", "this_code", "check_same_code"]


#: The fingerprint of a ``dse`` installed without its ``.py`` sources (compiled files only): compared by version alone.
NO_SOURCES = "no-sources"


@dataclass(frozen=True)
class CodeIdentity:
    """The ``dse`` code one process runs.

    Attributes:
        fingerprint: the first 16 hex digits of the SHA-256 of the package's Python sources (each ``*.py`` file's path
            in the package and its bytes, in path order): equal for the same code wherever it is installed;
            :data:`NO_SOURCES` for an install without them.
        folder: the folder of the ``dse`` package the process imported.
        version: ``dse.__version__``.
        cwd: the process's working folder when this was first computed (a driver's: Ray puts it on local workers'
            import path).
    """

    fingerprint: str
    folder: str
    version: str
    cwd: str


@functools.cache
def this_code() -> CodeIdentity:
    """This process's :class:`CodeIdentity`, computed once (about 70 files: a few ms)."""
    import dse

    folder = Path(dse.__file__).resolve().parent
    digest, sources = hashlib.sha256(), 0
    for path in sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts):
        try:
            data = path.read_bytes()
        except OSError:  # a dangling editor lock file (.#x.py), a file removed meanwhile: not code that runs
            continue
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + data + b"\0")
        sources += 1
    return CodeIdentity(digest.hexdigest()[:16] if sources else NO_SOURCES, str(folder), dse.__version__, os.getcwd())


def check_same_code(driver: CodeIdentity | None) -> None:
    """Raise unless this process runs the same ``dse`` code as ``driver`` (a trial's or re-measurement's first step).

    Args:
        driver: the driver's :func:`this_code`, sent with the trial; ``None`` (a caller that sends none) checks nothing.

    Raises:
        WorkerCodeError: the sources differ; the message names both folders, the likely cause and the fix.
    """
    if driver is None:
        return
    mine = this_code()
    if mine.fingerprint == driver.fingerprint:
        return
    if NO_SOURCES in (mine.fingerprint, driver.fingerprint) and mine.version == driver.version:
        return  # an install without sources: its version is all there is to compare
    from dse.exceptions import WorkerCodeError

    if mine.folder == driver.folder:
        cause = (f"the sources in {mine.folder} changed after the driver read them (edited while the study ran; on a "
                 "cluster, another dse at the same path on the worker's node): run `dse run` again to continue with the "
                 "sources as they are now, or install the driver's dse on every node")
    elif Path(mine.folder).parent == Path(driver.cwd):
        cause = (f"Ray puts the folder the driver was started in ({driver.cwd}) first on its workers' import path, and it "
                 "holds a `dse` package: start `dse` from another folder (the experiment file's path may be given from "
                 f"anywhere), or install that folder's dse for the driver too (`pip install -e {driver.cwd}`)")
    else:
        cause = (f"install the driver's dse (version {driver.version}, the same sources) where Ray's workers run, on every "
                 "node of a cluster, or start the driver with the workers' dse")
    raise WorkerCodeError(
        f"this Ray worker imported dse from {mine.folder} (version {mine.version}, sources {mine.fingerprint}), the "
        f"driver from {driver.folder} (version {driver.version}, sources {driver.fingerprint}): the trial would run other "
        f"code than the study records; {cause}")
