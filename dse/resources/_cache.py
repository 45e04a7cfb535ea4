"""Content hashes that key cached resource measurements."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

__all__ = ["design_hash", "cache_key", "measurement_settings", "earlier_measurement_settings"]


def design_hash(model, conversion_record: dict[str, Any]) -> str:
    """Hash of a trained design: every weight and quantizer variable plus the hls4ml conversion settings.

    Args:
        model: the trained HGQ2 model after ``trace_minmax`` (its variables include the
            quantizers' bitwidths and traced ranges).
        conversion_record: backend, part, clock period, IOType and hls4ml config
            (:func:`dse.trial._hls.conversion_record`).

    Returns:
        20 hex digits; equal designs give equal hashes.
    """
    h = hashlib.sha256()
    for var in model.variables:
        h.update(var.path.encode())
        h.update(np.ascontiguousarray(np.asarray(var)).tobytes())
    h.update(json.dumps(conversion_record, sort_keys=True, default=str).encode())
    return h.hexdigest()[:20]


#: Fields of ``resources`` that change no figure, so no measurement's key: which backend gives the objectives, a
#: time limit, the modules that register backends, and which backend re-measures the front after a run.
_NOT_FIGURES = frozenset({"backend", "synthesis_timeout_s", "backend_modules", "synthesize_front"})


def measurement_settings(resources: Any) -> dict[str, Any]:
    """The resource settings that key a measurement (:func:`cache_key`): ``resources`` less the fields that change no figure.

    Args:
        resources: a :class:`dse.config.ResourcesConfig`.
    """
    return resources.model_dump(exclude=set(_NOT_FIGURES))


def earlier_measurement_settings(resources: Any) -> list[dict[str, Any]]:
    """The settings by which earlier dse versions keyed the same measurement, to find what they cached.

    Until 2026-12-06 a key held every field of ``resources`` but ``backend`` and
    ``synthesis_timeout_s``, so a new field (``backend_modules``, 2026-12-05) changed every key
    and an upgrade measured everything again; the forms before and after that field are tried.
    """
    full = resources.model_dump(exclude={"backend", "synthesis_timeout_s"})
    before_modules = {k: v for k, v in full.items() if k != "backend_modules"}
    return [full, before_modules]


def cache_key(design: str, backend: str, settings: dict[str, Any]) -> str:
    """Key of one measurement: design hash, backend name and the resource settings that change its result."""
    s = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{backend}:{design}:{s}"
