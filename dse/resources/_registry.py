"""Resource backends by name, and the one rule that picks a trial's figures.

A new backend is one module with a :class:`~dse.resources.ResourceBackend` subclass decorated
with :func:`register_backend`: dse's own are imported in ``dse/resources/__init__.py``; a
user's module is named in the experiment's ``resources.backend_modules``, which the driver,
every Ray worker and every later command reading the study import (:func:`import_backend_modules`),
since the registry lives in each process. Config validation, the list of sources, the columns
renderers show and the choice per Strategy all derive from this registry (the model is
hls4ml's ``register_backend``).
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from dse.exceptions import BackendError

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
    "import_backend_modules",
    "backend_module_folders",
    "unlisted_backend_problem",
]

_REGISTRY: dict[str, type["ResourceBackend"]] = {}


def _is_dse(cls: type) -> bool:
    """Whether ``cls`` is one of dse's own (defined in ``dse`` or a module under it)."""
    return cls.__module__ == "dse" or cls.__module__.startswith("dse.")


def _same_class(a: type, b: type) -> bool:
    """``a`` is ``b``, or the same class defined again (its module reloaded, e.g. by Jupyter's autoreload)."""
    return a is b or (a.__module__, a.__qualname__) == (b.__module__, b.__qualname__)


def register_backend(cls: type["ResourceBackend"]) -> type["ResourceBackend"]:
    """Class decorator: make ``cls`` available under ``cls.name``.

    Registering a class again (its module reloaded) replaces the earlier definition.

    Raises:
        BackendError (a ConfigError and a ValueError): ``cls`` is not a :class:`~dse.resources.ResourceBackend` subclass, leaves
            ``measure`` unimplemented, has a ``name`` that is not a non-empty string, is ``auto``
            (the rule of :func:`figure_backend`) or is taken by another backend; or its ``sources``
            are not a tuple of non-empty strings, or name a source of dse's own backends (``yosys``,
            ``da4ml``, ...) that ``cls`` does not inherit. The message names the attribute and the fix.
    """
    import inspect

    from dse.resources._base import ResourceBackend

    label = getattr(cls, "__name__", repr(cls))
    if not (isinstance(cls, type) and issubclass(cls, ResourceBackend)):
        raise BackendError(f"@register_backend: {label} is not a subclass of dse.resources.ResourceBackend; subclass it")
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(cls.__abstractmethods__))
        raise BackendError(f"resource backend {label} does not implement {missing} (def measure(self, design) -> ResourceReport)")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name.strip():
        raise BackendError(f"resource backend {label}: `name` must be a non-empty string (the resources.backend value), got {name!r}")
    if name == "auto":
        raise BackendError(f"resource backend {label}: the name 'auto' is resources.backend's rule (the most faithful figure "
                         "per Strategy), so a backend of that name would never run; choose another `name`")
    if name in _REGISTRY and not _same_class(_REGISTRY[name], cls):
        raise BackendError(f"resource backend name {name!r} is taken by {_REGISTRY[name].__name__}")
    srcs = getattr(cls, "sources", None)
    if not srcs:
        raise BackendError(f"resource backend {label} must declare the sources of its figures in `sources`")
    if not isinstance(srcs, (tuple, list)) or not all(isinstance(x, str) and x.strip() for x in srcs):
        raise BackendError(f"resource backend {label}: `sources` must be a tuple of non-empty strings, e.g. sources = "
                         f"({name + '-fit'!r},), got {srcs!r}")
    if not _is_dse(cls):
        for other in _REGISTRY.values():
            taken = [x for x in srcs if x in other.sources]
            if taken and _is_dse(other) and not issubclass(cls, other):
                raise BackendError(f"resource backend {label}: source {taken[0]!r} is that of dse's {other.name!r} backend, and "
                                 "figures are compared by their source; name your own (e.g. "
                                 f"{name + '-' + taken[0]!r}), or subclass {other.__name__}")
    for old in [k for k, v in _REGISTRY.items() if _same_class(v, cls)]:
        del _REGISTRY[old]  # a reloaded class, perhaps renamed
    _REGISTRY[name] = cls
    return cls


def import_backend_modules(modules: Iterable[str], folders: Iterable[str] = ()) -> None:
    """Import the modules that register a user's resource backends (``resources.backend_modules``).

    Importing a module twice is free (Python keeps it in ``sys.modules``), so every reader of
    an experiment calls this before it looks a backend up: the driver, each Ray worker (before
    its trial starts) and later commands (``dse report``, ``export``, ``synthesize``, ...).

    Args:
        modules: import names (``mybackends``, ``lab.fpga.backends``).
        folders: folders to append to ``sys.path`` first where missing and present on this
            machine: those the driver imported the modules from (:func:`backend_module_folders`),
            since Ray gives a worker only the driver's script folder and current directory.

    Raises:
        BackendError (a ConfigError and a ValueError): a module cannot be imported, or raised while importing; the message names
            it, the error and the fix.
    """
    for folder in folders:
        if folder not in sys.path and os.path.isdir(folder):
            sys.path.append(folder)
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as e:
            missing = isinstance(e, ModuleNotFoundError) and e.name is not None and (name == e.name or name.startswith(e.name + "."))
            fix = ("install it, or put the folder that holds it on PYTHONPATH (Ray's workers import it too)" if missing
                   else "the module was found but raised while importing; fix it (run `python -c 'import " + name + "'` to see where)")
            raise BackendError(f"cannot import backend module {name!r} ({type(e).__name__}: {e}); {fix}") from e


def backend_module_folders(modules: Iterable[str]) -> tuple[str, ...]:
    """The ``sys.path`` folders this process imported ``modules`` from (those it has imported).

    A module ``a.b`` in ``/x/a/b.py`` (or ``/x/a/b/__init__.py``) gives ``/x``. Workers get
    these (:func:`import_backend_modules`) so that a module found through the driver's
    ``sys.path`` or ``PYTHONPATH`` is found there too.
    """
    out = []
    for name in modules:
        file = getattr(sys.modules.get(name), "__file__", None)
        if file:
            path = Path(file).resolve()
            depth = name.count(".") + (path.name == "__init__.py")
            out.append(str(path.parents[depth]))
    return tuple(dict.fromkeys(out))


def unlisted_backend_problem(name: str, modules: Iterable[str]) -> str | None:
    """Why backend ``name`` would be unknown to Ray's workers and later commands, or ``None``.

    dse's own backends are known everywhere; a user's must be defined in a module that
    ``modules`` (``resources.backend_modules``) lists by name, so that other processes import
    it. A class defined in the script being run (``__main__``) cannot be imported elsewhere.

    Raises:
        BackendError (a ConfigError and a ValueError): ``name`` is not registered (see :func:`backend_class`).
    """
    cls = backend_class(name)
    module = cls.__module__
    if _is_dse(cls) or module in set(modules):
        return None
    if module == "__main__":
        return (f"resource backend {name!r} ({cls.__name__}) is defined in the script being run (__main__), which Ray's workers "
                "and later dse commands cannot import; move the class into a module of its own and list that module in "
                "resources.backend_modules")
    return (f"resource backend {name!r} comes from module {module!r}, which resources.backend_modules does not list; add it "
            f"(backend_modules: [{module}]) so that Ray's workers and later dse commands (report, export, synthesize) load it too")


def backend_names() -> list[str]:
    """Registered backend names, cheapest first (registration order)."""
    import dse.resources  # noqa: F401  (registers the built-in backends)

    return list(_REGISTRY)


def backend_class(name: str) -> type["ResourceBackend"]:
    """The backend class registered as ``name``.

    Raises:
        BackendError (a ConfigError and a ValueError): unknown name; the message lists the known ones.
    """
    names = backend_names()
    if name not in _REGISTRY:
        raise BackendError(f"unknown resource backend {name!r}; known: {', '.join(names)}")
    return _REGISTRY[name]


def precise_backend_names() -> list[str]:
    """Registered backends that re-measure trials (``ResourceBackend.precise``), cheapest first."""
    names = backend_names()
    return [n for n in names if _REGISTRY[n].precise]


def precise_backend_class(name: str) -> type["ResourceBackend"]:
    """The backend class registered as ``name``, for a re-measurement (``dse synthesize``, ``dse calibrate``).

    Raises:
        BackendError (a ConfigError and a ValueError): unknown name, or an estimate every trial already carries (``ebops``); the
            message lists the precise backends.
    """
    allowed = ", ".join(precise_backend_names())
    if name not in _REGISTRY:  # the estimate is no choice here, so it is not offered
        raise BackendError(f"unknown resource backend {name!r}; the precise ones are: {allowed}")
    cls = backend_class(name)
    if not cls.precise:
        raise BackendError(
            f"{name!r} is the estimate every trial already carries (its lut/dsp figures), so there is nothing "
            f"to re-measure with it; choose a precise backend: {allowed}"
        )
    return cls


def get_backend(name: str) -> "ResourceBackend":
    """A new instance of the backend registered as ``name`` (see :func:`backend_class`).

    Raises:
        BackendError (a ConfigError and a ValueError): unknown name; the message lists the known ones.
    """
    return backend_class(name)()


def figure_backend(strategy: str, configured: str) -> str:
    """The backend whose figures become a trial's ``lut``/``dsp``/``ff``/``latency_cycles``.

    The rule, in one place:

    * ``auto``: the most faithful figure available at trial time. ``distributed_arithmetic``
      designs take da4ml's cost model (-0.7% and -0.2% against Yosys synthesis of the same RTL for two digits designs,
      where the EBOPs estimate, an upper bound, was +329% and +360%: ``dse calibrate --backend yosys``, 2026-12-07);
      ``Latency``/``Resource`` designs take the EBOPs estimate (HGQ docs: LUT + 55 DSP ~ BOPs),
      the best figure short of a Vivado/Vitis build.
    * a named backend: its figures where it supports the Strategy, else the EBOPs estimate.

    Args:
        strategy: hls4ml ``Strategy`` of the trial.
        configured: ``resources.backend`` (``auto`` or a registered name).

    Returns:
        A registered backend name.

    Raises:
        BackendError (a ConfigError and a ValueError): ``configured`` is neither ``auto`` nor a registered name.
    """
    if configured == "auto":
        return "da4ml" if strategy == "distributed_arithmetic" else "ebops"
    return configured if backend_class(configured)().supports(strategy) else "ebops"


def sources() -> tuple[str, ...]:
    """Every figure source the registered backends declare, cheapest first."""
    backend_names()
    return tuple(dict.fromkeys(s for cls in _REGISTRY.values() for s in cls.sources))
