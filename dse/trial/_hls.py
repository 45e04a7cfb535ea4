"""The one adapter between our typed settings and hls4ml's CamelCase configuration dict."""

from __future__ import annotations

import functools
import logging
import math
import numbers
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dse.config import Hls4mlConfig, TrialParams
from dse.exceptions import ConversionError, InvalidHlsConfigError

if TYPE_CHECKING:
    import keras

    from dse.config import SearchSpace

log = logging.getLogger(__name__)

__all__ = [
    "check_hls_settings",
    "check_search_space",
    "check_reuse_factor_choices",
    "valid_reuse_factors",
    "layer_reuse_factor",
    "resolve_reuse_factors",
    "hls4ml_config",
    "convert_and_compile",
    "build_csim_library",
    "compile_model",
]


def valid_reuse_factors(n_in: int, n_out: int, backend: str = "Vitis") -> list[int]:
    """ReuseFactors hls4ml accepts for a Dense layer of ``n_in`` x ``n_out`` multiplications.

    hls4ml's own rule (``FPGABackend._validate_reuse_factor``, which
    ``get_valid_reuse_factors`` applies to every integer from 1 to ``n_in * n_out``), applied
    to the divisors of ``n_in * n_out`` only: the rule accepts nothing else, and a 20000 x 20000
    layer then takes milliseconds instead of minutes. Remembered per shape (the driver asks for
    every trial). Falls back to ``get_valid_reuse_factors`` on a backend without that method.

    Args:
        n_in, n_out: the layer's inputs and outputs (at least 1 each).
        backend: an hls4ml backend name (``Vitis``, ``Vivado``, ...).

    Returns:
        The valid ReuseFactors, ascending (1 is always among them).

    Raises:
        ValueError: ``n_in`` or ``n_out`` is below 1, or ``backend`` is no hls4ml backend.
    """
    if not all(isinstance(n, numbers.Integral) and n >= 1 for n in (n_in, n_out)):  # probe 33: [] for 0
        raise ValueError(f"valid_reuse_factors: n_in and n_out must be whole numbers >= 1, got {n_in!r} x {n_out!r}")
    import hls4ml

    try:
        hls4ml.backends.get_backend(backend)
    except Exception as e:  # probe 33: a raw KeyError
        raise ValueError(f"valid_reuse_factors: backend {backend!r} is no hls4ml backend; use e.g. 'Vitis' or 'Vivado'") from e
    return list(_valid_reuse_factors(int(n_in), int(n_out), backend))


def _divisors(n: int) -> list[int]:
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


@functools.lru_cache(maxsize=256)
def _valid_reuse_factors(n_in: int, n_out: int, backend: str) -> tuple[int, ...]:
    import hls4ml

    be = hls4ml.backends.get_backend(backend)
    rule = getattr(be, "_validate_reuse_factor", None)
    if rule is None:
        return tuple(be.get_valid_reuse_factors(n_in, n_out))
    return tuple(rf for rf in _divisors(n_in * n_out) if rule(n_in, n_out, rf))


def layer_reuse_factor(rf: int, n_in: int, n_out: int, backend: str = "Vitis") -> int:
    """The ReuseFactor a Dense layer of ``n_in`` x ``n_out`` is built with when ``rf`` is asked for.

    The largest hls4ml-valid ReuseFactor not above ``rf`` (1 is always valid), so a search
    space's choices apply to every layer shape instead of being refused; hls4ml itself would
    silently substitute another value with a printed warning.

    Returns:
        A valid ReuseFactor in ``[1, rf]``; 1 where ``rf`` is below 1.

    Raises:
        ValueError: a layer size that is not a positive integer, or ``backend`` is no hls4ml backend
            (:func:`valid_reuse_factors`).
    """
    return max([v for v in valid_reuse_factors(n_in, n_out, backend) if v <= rf] or [1])


def resolve_reuse_factors(params: TrialParams, sizes: list[tuple[int, int]], hls: Hls4mlConfig) -> TrialParams:
    """``params`` with ``layer_reuse_factors`` set: each Dense layer's :func:`layer_reuse_factor`.

    Args:
        params: the sampled parameters (``reuse_factor`` as sampled).
        sizes: ``(n_in, n_out)`` of each Dense layer, input to output.
        hls: the hls4ml settings (its ``backend`` decides which ReuseFactors are valid).

    Returns:
        A copy with ``layer_reuse_factors`` (one int per layer); the record of what the trial is built with.

    Raises:
        ValueError: a size that is not a positive integer, or ``hls.backend`` is no hls4ml backend.
    """
    rfs = tuple(layer_reuse_factor(params.reuse_factor, n_in, n_out, hls.backend) for n_in, n_out in sizes)
    return params.model_copy(update={"layer_reuse_factors": rfs})


def check_reuse_factor_choices(values: list[int], sizes: list[tuple[int, int]], hls: Hls4mlConfig) -> None:
    """Refuse, before a study starts, ReuseFactor choices that no Dense layer of some shape can use.

    Each layer takes the largest valid ReuseFactor not above the sampled one
    (:func:`layer_reuse_factor`), so a choice invalid for one layer is not an error; a space
    is refused only when, for some layer, none of its choices is a valid ReuseFactor.

    Args:
        values: every ReuseFactor the search space can produce.
        sizes: ``(n_in, n_out)`` of each Dense layer.
        hls: the hls4ml settings (its ``backend`` decides which ReuseFactors are valid).

    Raises:
        SearchSpaceError: for some layer no offered value is valid; the message lists that layer's valid values.
    """
    from dse.exceptions import SearchSpaceError

    for n_in, n_out in sizes:
        valid = valid_reuse_factors(n_in, n_out, hls.backend)
        if not any(v in valid for v in values):
            raise SearchSpaceError(
                f"parameters.reuse_factor: none of {sorted(values)} is a valid hls4ml ReuseFactor for the {n_in}x{n_out} "
                f"Dense layer; valid there: {valid[:16]}{' ...' if len(valid) > 16 else ''}. Add one of those to the choices "
                f"(e.g. {max(v for v in valid if v <= max(values)) if any(v <= max(values) for v in valid) else 1}, "
                "what the largest of yours would be built with there: each layer takes the largest valid ReuseFactor "
                "not above the sampled one)"
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
    from dse.resources import backend_class

    if hls.fifo_depth_optimization:
        exe = backend_class(hls.backend.lower()).executable
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
                "heterogeneous activation bitwidths only with io_parallel); "
                + _where_to_fix(space, "activation_granularity", bad, "declare it with choices: [per-layer]")
            )
        if "distributed_arithmetic" in space.possible_values("strategy"):
            raise SearchSpaceError(
                "parameters.strategy: distributed_arithmetic needs hls4ml.io_type io_parallel; "
                + _where_to_fix(space, "strategy", ["distributed_arithmetic"], "remove it from the choices")
            )
    _check_strategy_reuse_factors(space)
    # the ReuseFactors a Resource trial can get (the Latency default 1 counted as one, and passed [3, 5, 7])
    resource = [v for v, _ in space.values_given("reuse_factor", {"strategy": "Resource"}) if v is not None]
    if "Resource" in (space.possible_values("strategy") or ["Latency"]):
        check_reuse_factor_choices(resource or [1], sizes, hls)


def _where_to_fix(space: "SearchSpace", name: str, values: list, fix_in_parameters: str) -> str:
    """The fix for values of ``name`` the space must not produce: ``fix_in_parameters`` where the parameter's own
    choices or default give them (or it is undeclared, so its default does), and the rules that pin them, by index."""
    rules = [f"rules[{i}]" + (f" ({r.name})" if r.name else "") for i, r in enumerate(space.rules)
             if name in r.set and r.set[name] in values]
    spec = space.parameters.get(name)
    own = spec is None or any(v in values for v in spec.examples() + [spec.default])
    parts = ([fix_in_parameters] if own else []) + ([f"change {', '.join(rules)}, which set{'s' if len(rules) == 1 else ''} "
                                                     f"{name} to {values if len(values) > 1 else values[0]}"] if rules else [])
    return "; ".join(parts)


def _check_strategy_reuse_factors(space: "SearchSpace") -> None:
    """Refuse a space that can give a Latency or distributed_arithmetic trial a ReuseFactor other than 1.

    Raises:
        SearchSpaceError: names the Strategy, the ReuseFactors, where they come from, and how to pin them.
    """
    from dse.exceptions import SearchSpaceError

    if "reuse_factor" not in space.parameters:
        return
    strategies = space.possible_values("strategy") or [TrialParams.model_fields["strategy"].default]
    for strategy in ("Latency", "distributed_arithmetic"):
        if strategy not in strategies:
            continue
        bad = [(rf, where) for rf, where in space.values_given("reuse_factor", {"strategy": strategy})
               if rf is not None and rf != 1]
        if bad:
            rfs = ", ".join(str(rf) for rf in dict.fromkeys(rf for rf, _ in bad))
            sources = ", ".join(dict.fromkeys(where for _, where in bad))
            if "strategy" in space.parameters:
                fix = ("make reuse_factor conditional, e.g. `when: {strategy: Resource}` with `default: 1`, and set no "
                       f"other value for {strategy} in rules")
            else:
                fix = ("strategy is not a parameter of the space, so every trial is Latency: declare `strategy: {type: "
                       "categorical, choices: [Resource]}` before reuse_factor (ReuseFactors above 1 need Strategy Resource)")
            raise SearchSpaceError(
                f"parameters.reuse_factor: Strategy {strategy} needs ReuseFactor 1, but this space can give a {strategy} "
                f"trial ReuseFactor {rfs} (from {sources}), and every such trial would fail; {fix}"
            )


def check_hls_settings(params: TrialParams, sizes: list[tuple[int, int]], hls: Hls4mlConfig) -> None:
    """Refuse a Strategy/ReuseFactor/IOType combination before any training is spent on it.

    Raises:
        InvalidHlsConfigError: Latency or distributed_arithmetic with ReuseFactor != 1,
            distributed_arithmetic with io_stream, io_stream with an activation granularity other than
            per-layer, ``layer_reuse_factors`` with another number of entries than Dense layers, or a layer
            ReuseFactor that is not valid for that layer's size (hls4ml would silently change it).
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
    rfs = params.layer_reuse_factors or (rf,) * len(sizes)
    if len(rfs) != len(sizes):
        raise InvalidHlsConfigError(f"layer_reuse_factors {list(rfs)} has {len(rfs)} entries for {len(sizes)} Dense layers")
    for (n_in, n_out), layer_rf in zip(sizes, rfs):
        valid = valid_reuse_factors(n_in, n_out, hls.backend)
        if layer_rf not in valid:
            raise InvalidHlsConfigError(
                f"ReuseFactor {layer_rf} is not valid for a {n_in}x{n_out} Dense layer; hls4ml allows {valid[:12]}"
                f"{' ...' if len(valid) > 12 else ''}. Resolve per-layer ReuseFactors with dse.trial.resolve_reuse_factors"
            )


def hls4ml_config(model: "keras.Model", params: TrialParams, hls: Hls4mlConfig) -> dict[str, Any]:
    """hls4ml ``hls_config`` for ``model``: per-layer precisions from HGQ2, Strategy and per-layer ReuseFactor from the trial.

    Each Dense layer (and its activation, ``<dense>_relu``) gets its entry of
    ``params.layer_reuse_factors``; the model-level ``ReuseFactor`` is the smallest of them.

    Returns:
        The CamelCase dict hls4ml's ``convert_from_keras_model(hls_config=...)`` takes.
    """
    import hls4ml

    from hgq.layers import QDense

    cfg = hls4ml.utils.config_from_keras_model(model, granularity="name", backend=hls.backend)
    dense = [layer.name for layer in model.layers if isinstance(layer, QDense)]
    rfs = params.layer_reuse_factors or (params.reuse_factor,) * len(dense)
    per_layer = dict(zip(dense, rfs))
    cfg["Model"]["Strategy"] = params.strategy
    cfg["Model"]["ReuseFactor"] = min(rfs, default=params.reuse_factor)
    if hls.fifo_depth_optimization:
        cfg["Flows"] = [f"{hls.backend.lower()}:fifo_depth_optimization"]
    for name, layer_cfg in cfg.get("LayerName", {}).items():
        owner = name if name in per_layer else next((d for d in dense if name.startswith(f"{d}_")), None)
        if "ReuseFactor" in layer_cfg:
            layer_cfg["ReuseFactor"] = per_layer.get(owner, cfg["Model"]["ReuseFactor"])
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


def recorded_settings(record: dict[str, Any], hls: Hls4mlConfig) -> Hls4mlConfig:
    """``hls`` with the backend, part, clock period and IOType a trial was converted with (its :func:`conversion_record`).

    A study continued with ``--allow-changed`` after a change of ``hls4ml.part`` (or clock, backend,
    IOType) holds trials built for the earlier settings; re-measuring or exporting one must use
    those, which its design hash (the cache key) was computed from. Fields the record lacks keep ``hls``'s.
    """
    recorded = {"backend": record.get("Backend"), "part": record.get("Part"), "clock_period": record.get("ClockPeriod"),
                "io_type": record.get("IOType")}
    return hls.model_copy(update={k: v for k, v in recorded.items() if v is not None})


def convert(model: "keras.Model", hls_cfg: dict[str, Any], hls: Hls4mlConfig, output_dir: Path,
            input_data_tb: Path | None = None, output_data_tb: Path | None = None):
    """Convert with hls4ml (no compile).

    Args:
        input_data_tb, output_data_tb: ``.npy`` files of testbench inputs (n, n_features) and expected
            outputs (n, n_classes); hls4ml's ``write()`` turns them into ``tb_data/tb_input_features.dat``
            and ``tb_data/tb_output_predictions.dat``. Without them its testbench runs on zeros.

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
            input_data_tb=str(input_data_tb) if input_data_tb else None,
            output_data_tb=str(output_data_tb) if output_data_tb else None,
        )
    except Exception as e:
        raise ConversionError(f"hls4ml conversion failed: {type(e).__name__}: {e}") from e


#: g++ optimization level of the C simulation library (hls4ml's build_lib.sh uses -O3; -O1 builds
#: distributed_arithmetic designs about 20% faster, simulates as fast, bit-exact; benchmarks/trial_anatomy.py).
#: ``DSE_CSIM_OPT_LEVEL`` in a worker's environment overrides it (private: for benchmarks).
CSIM_OPT_LEVEL = os.environ.get("DSE_CSIM_OPT_LEVEL", "-O1")

#: How the C simulation library is built: ``"unity"`` (default: :func:`build_csim_library`, one g++
#: call) or ``"hls4ml"`` (hls4ml's own ``build_lib.sh``: two objects then a link).
#: ``DSE_CSIM_BUILD`` in a worker's environment overrides it (private: for benchmarks).
CSIM_BUILD = os.environ.get("DSE_CSIM_BUILD", "unity")

#: Wall-clock limit of one C simulation build, seconds (large distributed_arithmetic designs take minutes).
CSIM_BUILD_TIMEOUT_S = 1800.0

_UNITY_SOURCE = "dse_csim_unity.cpp"
_NEEDS_CXX23 = re.compile(r"\b(half|bfloat16|float16_t|bfloat16_t|_Float16|__bf16)\b")


def _set_opt_level(output_dir: Path, level: str) -> bool:
    """Replace the ``-O3`` of hls4ml's ``build_lib.sh`` with ``level``; False when the script has no such line."""
    script = Path(output_dir) / "build_lib.sh"
    text = script.read_text()
    new = text.replace('CFLAGS="-O3 -fPIC"', f'CFLAGS="{level} -fPIC"', 1)
    if new == text:
        return False
    script.write_text(new)
    return True


@functools.lru_cache(maxsize=None)
def _cxx_supports(flag: str) -> bool:
    """Whether ``g++`` accepts ``flag`` (hls4ml's build_lib.sh makes the same probe)."""
    import subprocess

    try:
        r = subprocess.run(["g++", "-Werror", "-fsyntax-only", flag, "-xc++", "-", "-o", "/dev/null"], input="",
                           capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


def csim_cxx_standard(output_dir: Path) -> str:
    """The C++ standard the C simulation of the hls4ml project in ``output_dir`` builds with: ``"c++11"``, or
    ``"c++23"`` where its generated types need it (``half``/``bfloat16``, as hls4ml's ``build_lib.sh`` decides) and g++ has it."""
    defines = Path(output_dir) / "firmware" / "defines.h"
    text = defines.read_text() if defines.exists() else ""
    return "c++23" if _NEEDS_CXX23.search(text) and _cxx_supports("-std=c++23") else "c++11"


def build_csim_library(output_dir: Path, project: str, stamp: str, opt_level: str) -> Path:
    """Build hls4ml's C simulation library of the project in ``output_dir`` with one g++ call.

    hls4ml's ``build_lib.sh`` compiles ``firmware/<project>.cpp`` and ``<project>_bridge.cpp``
    as two objects, each parsing the same ``ap_fixed`` and ``nnet_utils`` headers, then links
    them. This compiles one translation unit that includes both files (a unity build) straight
    to the shared library, with the same sources, defines and include paths. The language
    standard is C++11 unless the generated types need C++23 (``half``/``bfloat16``, which
    build_lib.sh enables when g++ has it); ``ap_fixed`` arithmetic is the same under both, so
    the library's outputs are too (asserted bit-exact against the Keras model in tests/trial).
    On the quickstart MLP this takes 2.8 s instead of 5.2 s at ``-O1``; a distributed_arithmetic
    design 10.6 s instead of 17.8 s (benchmarks/trial_anatomy.py).

    Args:
        output_dir: the hls4ml project (after ``ModelGraph.write()``).
        project: hls4ml's ``ProjectName``.
        stamp: hls4ml's ``Stamp`` (part of the library's file name hls4ml loads).
        opt_level: g++ optimization flag, ``"-O0"`` ... ``"-O3"``.

    Returns:
        ``<output_dir>/firmware/<project>-<stamp>.so``, the path hls4ml's own build writes.

    Raises:
        ConversionError: g++ is missing, failed (its last output lines quoted) or ran past
            :data:`CSIM_BUILD_TIMEOUT_S`.
    """
    import subprocess

    out = Path(output_dir).resolve()
    lib = out / "firmware" / f"{project}-{stamp}.so"
    std = f"-std={csim_cxx_standard(out)}"
    weights = str(out / "firmware" / "weights").replace("\\", "\\\\").replace('"', '\\"')
    (out / _UNITY_SOURCE).write_text(
        f'#include "firmware/{project}.cpp"\n#include "{project}_bridge.cpp"\n'
    )
    cmd = ["g++", opt_level, "-fPIC", std, "-w", "-Ifirmware/ap_types/", f'-DWEIGHTS_DIR="{weights}"']
    if _cxx_supports("-fno-gnu-unique"):
        cmd.append("-fno-gnu-unique")
    cmd += ["-shared", _UNITY_SOURCE, "-o", str(lib)]
    try:
        r = subprocess.run(cmd, cwd=out, capture_output=True, text=True, timeout=CSIM_BUILD_TIMEOUT_S)
    except FileNotFoundError as e:
        raise ConversionError("g++ not found on PATH; the C simulation needs it (apt-get install g++), or set hls4ml.csim: none") from e
    except subprocess.TimeoutExpired as e:
        raise ConversionError(f"C simulation build ran past {CSIM_BUILD_TIMEOUT_S:g} s in {out}") from e
    finally:
        (out / _UNITY_SOURCE).unlink(missing_ok=True)
    if r.returncode != 0:
        tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-15:])
        raise ConversionError(f"C simulation build failed (g++ exit {r.returncode}) in {out}:\n{tail}")
    return lib


def compile_model(hls_model, opt_level: str | None = None, build: str | None = None) -> None:
    """Write the HLS project and build and load the C simulation library (g++).

    Args:
        hls_model: the converted hls4ml ``ModelGraph``.
        opt_level: g++ optimization flag for the library (``"-O0"`` ... ``"-O3"``); default
            :data:`CSIM_OPT_LEVEL`. The C simulation is integer (``ap_fixed``) arithmetic, so the
            level changes build and simulation seconds, not results.
        build: ``"unity"`` (:func:`build_csim_library`; if it fails, hls4ml's build runs, with a
            warning) or ``"hls4ml"`` (``build_lib.sh``); default :data:`CSIM_BUILD`.

    Raises:
        ConversionError: the C++ did not compile.
    """
    import ctypes

    level = opt_level or CSIM_OPT_LEVEL
    build = build or CSIM_BUILD
    try:
        hls_model.write()
        out = Path(hls_model.config.get_output_dir())
        if level != "-O3" and not _set_opt_level(out, level):
            log.warning("hls4ml's build_lib.sh has no 'CFLAGS=\"-O3 -fPIC\"' line; building with its own flags")
    except Exception as e:
        raise ConversionError(f"hls4ml could not write the HLS project: {type(e).__name__}: {e}") from e
    unity_error = None
    if build == "unity":
        try:
            lib = build_csim_library(out, hls_model.config.get_project_name(), hls_model.config.get_config_value("Stamp"), level)
        except ConversionError as e:
            unity_error = e
            log.warning("%s; building with hls4ml's build_lib.sh instead", e)
        else:
            release(hls_model)
            hls_model._top_function_lib = ctypes.cdll.LoadLibrary(str(lib))  # what ModelGraph._compile() does after its build
            return
    try:
        hls_model._compile()  # ModelGraph.compile() is write() + _compile() in hls4ml 1.3.0
    except Exception as e:
        # hls4ml's own error names no cause (`Failed to compile project "myproject"`): g++'s, from the build before it
        before = f"; the one-call g++ build before it: {unity_error}" if unity_error is not None else ""
        raise ConversionError(f"hls4ml compile (C simulation build) failed: {type(e).__name__}: {e}{before}") from e


def release(hls_model) -> None:
    """Unload the C simulation library of ``hls_model`` (``dlclose``), so a warm worker does not keep one per trial."""
    import ctypes

    lib = getattr(hls_model, "_top_function_lib", None)
    if lib is None:
        return
    try:
        dlclose = ctypes.CDLL("libdl.so.2").dlclose
        dlclose.argtypes = [ctypes.c_void_p]
        dlclose(lib._handle)
    except OSError:  # no libdl (not Linux): the library stays loaded until the process ends
        return
    hls_model._top_function_lib = None


def convert_and_compile(model, hls_cfg, hls: Hls4mlConfig, output_dir: Path):
    """:func:`convert` then :func:`compile_model`; returns the compiled ``ModelGraph``."""
    hls_model = convert(model, hls_cfg, hls, output_dir)
    compile_model(hls_model)
    return hls_model
