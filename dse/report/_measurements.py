"""Precise re-measurements stored in a study (written by :func:`dse.study.synthesize`).

Layout in the study's user attributes (durable in the Optuna storage, shared by all workers):
``cache:<backend>:<design hash>:<settings hash>`` -> ``{"metrics": {...}, "tags": {...}}`` and
``measured:<backend>:<trial number>`` -> that cache key.
"""

from __future__ import annotations

import optuna

__all__ = ["CACHE_PREFIX", "MEASURED_PREFIX", "measurements", "measured_backends"]

CACHE_PREFIX = "cache:"
MEASURED_PREFIX = "measured:"


def measured_backends(study: optuna.Study) -> list[str]:
    """Backends that re-measured at least one trial of ``study``."""
    return sorted({k.split(":")[1] for k in study.user_attrs if k.startswith(MEASURED_PREFIX)})


def measurements(study: optuna.Study, backend: str) -> dict[int, dict[str, object]]:
    """Trial number -> ``{"metrics": {"<backend>_lut": ...}, "tags": {"<backend>_lut_source": ...}}``."""
    attrs = study.user_attrs
    out: dict[int, dict[str, object]] = {}
    for key, cache in attrs.items():
        if key.startswith(f"{MEASURED_PREFIX}{backend}:"):
            entry = attrs.get(CACHE_PREFIX + cache)
            if entry:
                out[int(key.rsplit(":", 1)[1])] = entry
    return out
