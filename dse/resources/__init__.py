"""Resource backends: EBOPs estimate, da4ml cost model, Yosys synthesis of da4ml RTL, Vivado/Vitis reports.

Every backend subclasses :class:`ResourceBackend`; every figure it returns carries its
source (:class:`Figure`), logged as ``<metric>_source`` tags.
"""

from dse.resources._base import SOURCES, Design, Figure, ResourceBackend, ResourceReport
from dse.resources._da4ml import Da4mlBackend, trace_da4ml
from dse.resources._ebops import DSP_LUT_EQUIVALENT, EbopsBackend, count_dsp_multiplications
from dse.resources._vivado import HlsReport, VitisBackend, VivadoBackend, parse_hls_report, report_from_hls
from dse.resources._yosys import YosysBackend, parse_yosys_stat, yosys_family

__all__ = [
    "SOURCES",
    "Design",
    "Figure",
    "ResourceBackend",
    "ResourceReport",
    "Da4mlBackend",
    "EbopsBackend",
    "YosysBackend",
    "VivadoBackend",
    "VitisBackend",
    "HlsReport",
    "parse_hls_report",
    "report_from_hls",
    "parse_yosys_stat",
    "yosys_family",
    "BACKENDS",
    "DSP_LUT_EQUIVALENT",
    "count_dsp_multiplications",
    "trace_da4ml",
    "get_backend",
]

#: Backends by name, cheapest first.
BACKENDS: dict[str, type[ResourceBackend]] = {
    "ebops": EbopsBackend, "da4ml": Da4mlBackend, "yosys": YosysBackend,
    "vivado": VivadoBackend,
    "vitis": VitisBackend,
}


def get_backend(name: str) -> ResourceBackend:
    """Return a backend instance by name.

    Raises:
        ValueError: unknown name; the message lists the known ones.
    """
    try:
        return BACKENDS[name]()
    except KeyError:
        raise ValueError(f"unknown resource backend {name!r}; known: {', '.join(BACKENDS)}") from None
