"""The one adapter between our typed settings and hls4ml's CamelCase configuration dict."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from dse.config import Hls4mlConfig, TrialParams
from dse.exceptions import ConversionError, InvalidHlsConfigError

if TYPE_CHECKING:
    import keras

    from dse.config import SearchSpace

__all__ = ["check_hls_settings", "check_search_space", "check_reuse_factor_choices", "valid_reuse_factors", "hls4ml_config", "convert_and_compile"]


def valid_reuse_factors(n_in: int, n_out: int, backend: str = "Vitis") -> list[int]:
    """ReuseFactors hls4ml accepts for a Dense layer of ``n_in`` x ``n_out`` multiplications.

    Uses hls4ml's own ``FPGABackend.get_valid_reuse_factors``.
    """
    import hls4ml

    return hls4ml.backends.get_backend(backend).get_valid_reuse_factors(n_in, n_out)


def check_reuse_factor_choices(values: list[int], sizes: list[tuple[int, int]], hls: Hls4mlConfig) -> None:
    """Refuse, before a study starts, ReuseFactors that some Dense layer cannot use.

    Args:
        values: every ReuseFactor the search space can produce.
        sizes: ``(n_in, n_out)`` of each Dense layer.

    Raises:
        SearchSpaceError: a value is invalid for some layer; the message lists the values valid for all layers.
    """
    from dse.exceptions import SearchSpaceError

    valid_all = set.intersection(*(set(valid_reuse_factors(n_in, n_out, hls.backend)) for n_in, n_out in sizes))
    bad = [v for v in values if v not in valid_all]
    if bad:
        shapes = ", ".join(f"{a}x{b}" for a, b in sizes)
        raise SearchSpaceError(
            f"parameters.reuse_factor: {bad} not valid hls4ml ReuseFactors for every Dense layer ({shapes}); "
            f"valid for all layers: {sorted(valid_all)[:16]}{' ...' if len(valid_all) > 16 else ''}"
        )


def check_search_space(space: "SearchSpace", sizes: list[tuple[int, int]], hls: Hls4mlConfig) -> None:
    """Refuse, before a study starts, what :func:`check_hls_settings` would refuse in some trial.

    Checks every value the space can produce: ReuseFactors against each layer's size,
    io_stream against heterogeneous activation bitwidths and distributed_arithmetic, and
    FIFO depth optimization against the Vivado/Vitis executable on PATH.

    Raises:
        SearchSpaceError: the space offers a value hls4ml cannot implement here.
        ConfigError: FIFO depth optimization asked for without the Vivado/Vitis executable.
    """
    import shutil

    from dse.exceptions import ConfigError, SearchSpaceError
    from dse.resources import BACKENDS

    if hls.fifo_depth_optimization:
        exe = BACKENDS[hls.backend.lower()].executable
        if shutil.which(exe) is None:
            raise ConfigError(
                f"hls4ml.fifo_depth_optimization runs RTL co-simulation in {hls.backend} and needs '{exe}' on PATH, "
                "which is not there; source the Xilinx settings script, or set hls4ml.fifo_depth_optimization: false"
            )
    if hls.io_type == "io_stream":
        bad = [v for v in space.possible_values("activation_granularity") or ["per-feature"] if v != "per-layer"]
        if bad:
            raise SearchSpaceError(
                f"parameters.activation_granularity: {bad} not supported with hls4ml.io_type io_stream (hls4ml allows "
                "heterogeneous activation bitwidths only with io_parallel); declare it with choices: [per-layer]"
            )
        if "distributed_arithmetic" in space.possible_values("strategy"):
            raise SearchSpaceError(
                "parameters.strategy: distributed_arithmetic needs hls4ml.io_type io_parallel; remove it from the choices"
            )
    check_reuse_factor_choices(space.possible_values("reuse_factor") or [1], sizes, hls)


def check_hls_settings(params: TrialParams, sizes: list[tuple[int, int]], hls: Hls4mlConfig) -> None:
    """Refuse a Strategy/ReuseFactor/IOType combination before any training is spent on it.

    Raises:
        InvalidHlsConfigError: Latency or distributed_arithmetic with ReuseFactor != 1,
            distributed_arithmetic with io_stream, or a ReuseFactor that is not valid for
            some layer's size (hls4ml would silently change it).
    """
    rf = params.reuse_factor
    if params.strategy in ("Latency", "distributed_arithmetic") and rf != 1:
        raise InvalidHlsConfigError(
            f"Strategy {params.strategy} needs ReuseFactor 1, got {rf}; pin reuse_factor to 1 for this strategy "
            "in the search space (e.g. `when: {strategy: Resource}` with `default: 1`)"
        )
    if params.strategy == "distributed_arithmetic" and hls.io_type != "io_parallel":
        raise InvalidHlsConfigError("Strategy distributed_arithmetic needs hls4ml.io_type io_parallel")
    if hls.io_type == "io_stream" and params.activation_granularity != "per-layer":
        raise InvalidHlsConfigError(
            f"hls4ml.io_type io_stream supports only per-layer activation bitwidths, got activation_granularity "
            f"{params.activation_granularity}; pin activation_granularity to per-layer in the search space"
        )
    for n_in, n_out in sizes:
        valid = valid_reuse_factors(n_in, n_out, hls.backend)
        if rf not in valid:
            raise InvalidHlsConfigError(
                f"ReuseFactor {rf} is not valid for a {n_in}x{n_out} Dense layer; hls4ml allows {valid[:12]}"
                f"{' ...' if len(valid) > 12 else ''}. Offer only ReuseFactors valid for every layer"
            )


def hls4ml_config(model: "keras.Model", params: TrialParams, hls: Hls4mlConfig) -> dict[str, Any]:
    """hls4ml ``hls_config`` for ``model``: per-layer precisions from HGQ2, Strategy and ReuseFactor from the trial.

    Returns:
        The CamelCase dict hls4ml's ``convert_from_keras_model(hls_config=...)`` takes.
    """
    import hls4ml

    cfg = hls4ml.utils.config_from_keras_model(model, granularity="name", backend=hls.backend)
    cfg["Model"]["Strategy"] = params.strategy
    cfg["Model"]["ReuseFactor"] = params.reuse_factor
    if hls.fifo_depth_optimization:
        cfg["Flows"] = [f"{hls.backend.lower()}:fifo_depth_optimization"]
    for layer_cfg in cfg.get("LayerName", {}).values():
        if "ReuseFactor" in layer_cfg:
            layer_cfg["ReuseFactor"] = params.reuse_factor
        if "Strategy" in layer_cfg:
            layer_cfg["Strategy"] = params.strategy
    return cfg


def conversion_record(hls_cfg: dict[str, Any], hls: Hls4mlConfig) -> dict[str, Any]:
    """Everything passed to hls4ml, as one dict for the ``hls4ml_config.yaml`` artifact."""
    return {
        "Backend": hls.backend,
        "Part": hls.part,
        "ClockPeriod": hls.clock_period,
        "IOType": hls.io_type,
        "HLSConfig": hls_cfg,
    }


def convert(model: "keras.Model", hls_cfg: dict[str, Any], hls: Hls4mlConfig, output_dir: Path):
    """Convert with hls4ml (no compile).

    Raises:
        ConversionError: hls4ml refused the model or the configuration.
    """
    import hls4ml

    try:
        return hls4ml.converters.convert_from_keras_model(
            model,
            output_dir=str(output_dir),
            backend=hls.backend,
            io_type=hls.io_type,
            part=hls.part,
            clock_period=hls.clock_period,
            hls_config=hls_cfg,
        )
    except Exception as e:
        raise ConversionError(f"hls4ml conversion failed: {type(e).__name__}: {e}") from e


def compile_model(hls_model) -> None:
    """Write the HLS project and build the C simulation library (g++).

    Raises:
        ConversionError: the C++ did not compile.
    """
    try:
        hls_model.compile()
    except Exception as e:
        raise ConversionError(f"hls4ml compile (C simulation build) failed: {type(e).__name__}: {e}") from e


def convert_and_compile(model, hls_cfg, hls: Hls4mlConfig, output_dir: Path):
    """:func:`convert` then :func:`compile_model`; returns the compiled ``ModelGraph``."""
    hls_model = convert(model, hls_cfg, hls, output_dir)
    compile_model(hls_model)
    return hls_model
