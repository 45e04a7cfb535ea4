"""Resource backends: EBOPs estimate, da4ml cost model, Yosys synthesis of da4ml RTL, Vivado/Vitis reports.

Every backend subclasses :class:`ResourceBackend` and is registered by name
(:func:`register_backend`); every figure it returns carries its source (:class:`Figure`),
logged as ``<metric>_source`` tags. :func:`figure_backend` is the one rule that picks which
backend's figures become a trial's objectives for each Strategy.
"""

from dse.resources._base import Design, Figure, ResourceBackend, ResourceReport, keras_outputs
from dse.resources._registry import (
    backend_class,
    backend_module_folders,
    backend_names,
    figure_backend,
    get_backend,
    import_backend_modules,
    precise_backend_class,
    precise_backend_names,
    register_backend,
    sources,
    unlisted_backend_problem,
)

# Built-in backends, cheapest first; importing a module registers its backend.
from dse.resources._ebops import DSP_LUT_EQUIVALENT, EbopsBackend, count_dsp_multiplications, zero_weight_ebops  # isort: skip
from dse.resources._da4ml import Da4mlBackend, trace_da4ml  # isort: skip
from dse.resources._yosys import YosysBackend, parse_yosys_stat, yosys_family  # isort: skip
from dse.resources._vivado import HlsReport, VitisBackend, VivadoBackend, parse_hls_report, report_from_hls  # isort: skip

__all__ = [
    "Design",
    "Figure",
    "ResourceBackend",
    "ResourceReport",
    "keras_outputs",
    "register_backend",
    "backend_class",
    "backend_names",
    "precise_backend_class",
    "precise_backend_names",
    "figure_backend",
    "get_backend",
    "sources",
    "import_backend_modules",
    "backend_module_folders",
    "unlisted_backend_problem",
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
    "DSP_LUT_EQUIVALENT",
    "count_dsp_multiplications",
    "zero_weight_ebops",
    "trace_da4ml",
]
