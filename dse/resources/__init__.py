"""Resource backends: EBOPs estimate, da4ml cost model (Yosys and Vivado/Vitis to come).

Every backend subclasses :class:`ResourceBackend`; every figure it returns carries its
source (:class:`Figure`), logged as ``<metric>_source`` tags.
"""

from dse.resources._base import SOURCES, Design, Figure, ResourceBackend, ResourceReport
from dse.resources._da4ml import Da4mlBackend, trace_da4ml
from dse.resources._ebops import DSP_LUT_EQUIVALENT, EbopsBackend, count_dsp_multiplications

__all__ = [
    "SOURCES",
    "Design",
    "Figure",
    "ResourceBackend",
    "ResourceReport",
    "Da4mlBackend",
    "EbopsBackend",
    "DSP_LUT_EQUIVALENT",
    "count_dsp_multiplications",
    "trace_da4ml",
    "get_backend",
]

_BACKENDS: dict[str, type[ResourceBackend]] = {"ebops": EbopsBackend, "da4ml": Da4mlBackend}


def get_backend(name: str) -> ResourceBackend:
    """Return a backend instance by name.

    Raises:
        ValueError: unknown name; the message lists the known ones.
    """
    try:
        return _BACKENDS[name]()
    except KeyError:
        raise ValueError(f"unknown resource backend {name!r}; known: {', '.join(_BACKENDS)}") from None
