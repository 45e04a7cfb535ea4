"""Resource backends by name, and the one rule that picks a trial's figures.

A new backend is one module with a :class:`~dse.resources.ResourceBackend` subclass decorated
with :func:`register_backend`, imported in ``dse/resources/__init__.py``. Config validation,
the list of sources, the columns renderers show and the choice per Strategy all derive from
this registry (the model is hls4ml's ``register_backend``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dse.resources._base import ResourceBackend

__all__ = [
    "register_backend",
    "backend_names",
    "precise_backend_names",
    "backend_class",
    "precise_backend_class",
    "get_backend",
    "figure_backend",
    "sources",
]

_REGISTRY: dict[str, type["ResourceBackend"]] = {}


def register_backend(cls: type["ResourceBackend"]) -> type["ResourceBackend"]:
    """Class decorator: make ``cls`` available under ``cls.name``.

    Raises:
        ValueError: another backend already has that name, or ``cls`` declares no ``sources``.
    """
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"resource backend name {cls.name!r} is taken by {_REGISTRY[cls.name].__name__}")
    if not getattr(cls, "sources", None):
        raise ValueError(f"resource backend {cls.__name__} must declare the sources of its figures in `sources`")
    _REGISTRY[cls.name] = cls
    return cls


def backend_names() -> list[str]:
    """Registered backend names, cheapest first (registration order)."""
    import dse.resources  # noqa: F401  (registers the built-in backends)

    return list(_REGISTRY)


def backend_class(name: str) -> type["ResourceBackend"]:
    """The backend class registered as ``name``.

    Raises:
        ValueError: unknown name; the message lists the known ones.
    """
    names = backend_names()
    if name not in _REGISTRY:
        raise ValueError(f"unknown resource backend {name!r}; known: {', '.join(names)}")
    return _REGISTRY[name]


def precise_backend_names() -> list[str]:
    """Registered backends that re-measure trials (``ResourceBackend.precise``), cheapest first."""
    names = backend_names()
    return [n for n in names if _REGISTRY[n].precise]


def precise_backend_class(name: str) -> type["ResourceBackend"]:
    """The backend class registered as ``name``, for a re-measurement (``dse synthesize``, ``dse calibrate``).

    Raises:
        ValueError: unknown name, or an estimate every trial already carries (``ebops``); the
            message lists the precise backends.
    """
    allowed = ", ".join(precise_backend_names())
    cls = backend_class(name)
    if not cls.precise:
        raise ValueError(
            f"{name!r} is the estimate every trial already carries (its lut/dsp figures), so there is nothing "
            f"to re-measure with it; choose a precise backend: {allowed}"
        )
    return cls


def get_backend(name: str) -> "ResourceBackend":
    """A new instance of the backend registered as ``name`` (see :func:`backend_class`)."""
    return backend_class(name)()


def figure_backend(strategy: str, configured: str) -> str:
    """The backend whose figures become a trial's ``lut``/``dsp``/``ff``/``latency_cycles``.

    The rule, in one place:

    * ``auto``: the most faithful figure available at trial time. ``distributed_arithmetic``
      designs take da4ml's cost model (within a few % of Yosys synthesis of the same RTL,
      while the EBOPs estimate is an upper bound, +194% on the quickstart's DA front);
      ``Latency``/``Resource`` designs take the EBOPs estimate (HGQ docs: LUT + 55 DSP ~ BOPs),
      the best figure short of a Vivado/Vitis build.
    * a named backend: its figures where it supports the Strategy, else the EBOPs estimate.

    Args:
        strategy: hls4ml ``Strategy`` of the trial.
        configured: ``resources.backend`` (``auto`` or a registered name).

    Returns:
        A registered backend name.
    """
    if configured == "auto":
        return "da4ml" if strategy == "distributed_arithmetic" else "ebops"
    return configured if backend_class(configured)().supports(strategy) else "ebops"


def sources() -> tuple[str, ...]:
    """Every figure source the registered backends declare, cheapest first."""
    backend_names()
    return tuple(dict.fromkeys(s for cls in _REGISTRY.values() for s in cls.sources))
