"""Start (or join) Ray for a study, keeping every file Ray writes inside the run directory."""

from __future__ import annotations

import hashlib
import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from dse.config import RayConfig

__all__ = ["ray_session", "WORKER_ENV"]

log = logging.getLogger(__name__)

#: Environment every trial worker gets.
WORKER_ENV = {"KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore"}

# Ray puts Unix sockets under <temp>/session_<date>_<pid>/sockets/; AF_UNIX paths stop at 107 bytes.
_MAX_TEMP_LEN = 40


def _short_temp_dir(run_dir: Path) -> str:
    """``<run_dir>/ray``, or a short symlink in /tmp pointing at it when the real path is too long for sockets."""
    real = run_dir / "ray"
    real.mkdir(parents=True, exist_ok=True)
    if len(str(real)) <= _MAX_TEMP_LEN:
        return str(real)
    link = Path("/tmp") / f"dse-ray-{hashlib.sha1(str(real).encode()).hexdigest()[:10]}"
    if link.is_symlink() and os.readlink(link) != str(real):
        link.unlink()
    if not link.exists():
        link.symlink_to(real, target_is_directory=True)
    return str(link)


@contextmanager
def ray_session(cfg: RayConfig, run_dir: Path) -> Iterator[None]:
    """Connect to Ray for the duration of the block.

    With ``cfg.address`` unset, starts a local Ray bound to 127.0.0.1 with ``cfg.num_cpus``
    CPUs (default: all), no dashboard, and its temp files under ``run_dir/ray``; it is shut
    down on exit. With an address, joins that cluster and only disconnects on exit.
    If Ray is already initialized in this process, uses it as is.
    """
    import ray

    if ray.is_initialized():
        yield
        return
    runtime_env = {"env_vars": WORKER_ENV}
    if cfg.address is None:
        temp = _short_temp_dir(run_dir)
        log.info("starting local Ray (127.0.0.1, files under %s)", run_dir / "ray")
        ray.init(
            num_cpus=cfg.num_cpus or os.cpu_count(),
            _node_ip_address="127.0.0.1",
            _temp_dir=temp,
            include_dashboard=False,
            runtime_env=runtime_env,
            log_to_driver=False,
            logging_level=logging.WARNING,
        )
    else:
        log.info("joining Ray cluster at %s", cfg.address)
        ray.init(address=cfg.address, runtime_env=runtime_env, log_to_driver=False, logging_level=logging.WARNING)
    try:
        yield
    finally:
        ray.shutdown()
        if cfg.address is None and Path(temp).is_symlink():
            Path(temp).unlink(missing_ok=True)  # the files stay in run_dir/ray; only the short alias goes
