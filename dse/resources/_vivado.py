"""Vivado HLS / Vitis HLS: C synthesis (and optionally Vivado logic synthesis) of the hls4ml project.

Two parts:

* :func:`parse_hls_report` reads an hls4ml HLS project folder into a typed :class:`HlsReport`.
  The parsing itself is hls4ml's (``hls4ml.report.parse_vivado_report``); this module adds
  what hls4ml lacks: it checks the folder first and names what is missing, works around the
  cases where hls4ml crashes, turns hls4ml's strings into ``int``/``float`` (``'NA'`` ->
  ``None``) and raises :class:`~dse.exceptions.ReportParseError` instead of printing.
* :class:`VivadoBackend` (``vivado``) and :class:`VitisBackend` (``vitis``) run
  ``hls_model.build(csim=False, synth=True, vsynth=...)`` and report the parsed figures with
  source ``vivado-csynth`` (HLS estimates) or ``vivado-synth`` (Vivado logic synthesis).

Quirks of hls4ml 1.3.0's ``parse_vivado_report`` handled here:

* ``project.tcl`` without ``set backend "..."`` (projects written before hls4ml added that
  line, or hand-written): hls4ml raises ``UnboundLocalError``. The backend is then taken from
  the ``backend`` argument or inferred from the ``.app`` file (``vivado_hls.app`` -> Vivado
  HLS, ``hls.app`` -> Vitis HLS; a ``top`` of ``<project>_axi`` -> an accelerator project), and
  hls4ml reads a temporary *view* of the folder (symbolic links to the original files plus a
  complete two-line ``project.tcl``). The user's folder is never modified. A missing
  ``project.tcl`` is handled the same way when exactly one ``<name>_prj`` folder exists.
* No ``vivado_hls.app``/``hls.app`` (hls4ml raises ``IndexError``): a ``ReportParseError``
  naming the folder.
* A co-simulation report whose rows all have status ``NA`` (hls4ml raises ``KeyError: 'RTL'``):
  parsed again without the co-simulation report; the cosim fields are ``None``.
* ``'NA'``/``'undef'`` strings (failed co-simulation, unbounded loops) -> ``None``.
* ``BRAM_18K`` of the logic-synthesis report is a Block RAM *tile* (36 Kb) count and may be
  fractional (``'1.5'``): kept as a ``float`` in :attr:`HlsReport.synth_bram_tiles`.
* A co-simulation transaction file with a single transaction gives an interval of ``0``
  cycles, and one with no measurable interval gives ``sys.maxsize``: neither is an initiation
  interval, so both become ``None``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

from dse._proc import proc_stat
from dse.exceptions import MeasurementError, ReportParseError, ToolFailedError, ToolNotFoundError
from dse.resources._base import Design, Figure, ResourceBackend, ResourceReport
from dse.resources._registry import register_backend

__all__ = ["HlsReport", "parse_hls_report", "report_from_hls", "VivadoBackend", "VitisBackend"]

log = logging.getLogger(__name__)

#: Strings hls4ml passes through for "no number here".
_PLACEHOLDERS = frozenset({"", "na", "n/a", "undef", "-", "?", "none"})

_TCL_SET = re.compile(r'^\s*set\s+(project_name|backend)\s+(?:"([^"]*)"|(\S+))\s*$')

_APP_FILES = (("vivado_hls.app", "vivado"), ("hls.app", "vitis"))


@dataclass(frozen=True, kw_only=True)
class HlsReport:
    """Typed numbers from one hls4ml HLS project folder. ``None`` where the report has no number.

    Attributes:
        project_dir: the hls4ml output folder that was parsed (holds ``project.tcl``).
        backend: the hls4ml backend the folder was parsed as, lower case (``vivado``, ``vitis``,
            ``vivadoaccelerator``); decides the top function.
        backend_origin: where :attr:`backend` came from: ``project.tcl``, ``argument`` or ``.app file``.
        top_function: the synthesized top function (``<project>`` or ``<project>_axi``).
        solution: the HLS solution read (the first one the ``.app`` file lists).
        csynth_file: the C-synthesis XML report read, or ``None`` when there is none.
        synth_file: the Vivado logic-synthesis report (``vivado_synth.rpt``) read, or ``None``.
        lut: C-synthesis estimate, LUTs.
        ff: C-synthesis estimate, flip-flops.
        dsp: C-synthesis estimate, DSP blocks (``DSP48E`` in Vivado HLS, ``DSP`` in Vitis HLS).
        bram_18k: C-synthesis estimate, 18 Kb block RAMs.
        uram: C-synthesis estimate, UltraRAMs.
        latency_best_cycles: best-case latency, clock cycles.
        latency_worst_cycles: worst-case latency, clock cycles.
        interval_min: smallest initiation interval, clock cycles.
        interval_max: largest initiation interval, clock cycles.
        target_clock_ns: the requested clock period, ns.
        estimated_clock_ns: the HLS tool's estimated clock period, ns.
        available: the part's resources, e.g. ``{"LUT": 274080, "DSP": 2520, "BRAM_18K": 1824}``.
        synth_lut: after Vivado logic synthesis, LUTs (``CLB LUTs``/``Slice LUTs``).
        synth_ff: after logic synthesis, flip-flops (``CLB Registers``/``Slice Registers``).
        synth_dsp: after logic synthesis, DSP blocks.
        synth_bram_tiles: after logic synthesis, Block RAM tiles (36 Kb each; may be fractional,
            a RAMB18 counts 0.5). Not comparable with :attr:`bram_18k` without a factor 2.
        synth_uram: after logic synthesis, UltraRAMs.
        cosim_status: RTL co-simulation status (``Pass``, ``Fail``), or ``None`` if not run.
        cosim_rtl: the RTL language co-simulated (``Verilog``, ``VHDL``).
        cosim_latency_min: co-simulated latency, smallest, clock cycles.
        cosim_latency_max: co-simulated latency, largest, clock cycles.
        cosim_latency_avg: co-simulated latency, mean over transactions, clock cycles.
        cosim_interval_min: co-simulated initiation interval, smallest, clock cycles.
        cosim_interval_max: co-simulated initiation interval, largest, clock cycles.
    """

    project_dir: Path
    backend: str
    backend_origin: str
    top_function: str
    solution: str
    csynth_file: Path | None = None
    synth_file: Path | None = None
    lut: int | None = None
    ff: int | None = None
    dsp: int | None = None
    bram_18k: int | None = None
    uram: int | None = None
    latency_best_cycles: int | None = None
    latency_worst_cycles: int | None = None
    interval_min: int | None = None
    interval_max: int | None = None
    target_clock_ns: float | None = None
    estimated_clock_ns: float | None = None
    available: dict[str, int | None] = field(default_factory=dict)
    synth_lut: int | None = None
    synth_ff: int | None = None
    synth_dsp: int | None = None
    synth_bram_tiles: float | None = None
    synth_uram: int | None = None
    cosim_status: str | None = None
    cosim_rtl: str | None = None
    cosim_latency_min: int | None = None
    cosim_latency_max: int | None = None
    cosim_latency_avg: float | None = None
    cosim_interval_min: int | None = None
    cosim_interval_max: int | None = None

    @property
    def has_logic_synthesis(self) -> bool:
        """Whether Vivado logic-synthesis numbers were found (``vivado_synth.rpt``)."""
        return self.synth_file is not None


# --------------------------------------------------------------------------- conversions


def _number(raw: Any, what: str, where: Path | str, *, integer: bool) -> int | float | None:
    """One hls4ml value (a string, or already a number) as int/float; placeholders -> None.

    Raises:
        ReportParseError: not a number and not a known placeholder, or a fractional count
            where a whole number is expected.
    """
    if raw is None:
        return None
    if isinstance(raw, bool):  # bool is an int subclass; never a count
        raise ReportParseError(f"{what} in {where} is {raw!r}, not a number")
    if isinstance(raw, (int, float)):
        value: float = raw
    else:
        text = str(raw).strip()
        if text.lower() in _PLACEHOLDERS:
            return None
        try:
            value = float(text)
        except ValueError as e:
            raise ReportParseError(
                f"{what} in {where} is {text!r}, neither a number nor a placeholder such as 'NA'; "
                "the report is malformed or from an unsupported tool version, re-run the HLS step"
            ) from e
    if not integer:
        return float(value)
    if float(value).is_integer():
        return int(value)
    raise ReportParseError(f"{what} in {where} is {raw!r}, expected a whole number; the report is malformed")


def _int(raw: Any, what: str, where: Path | str) -> int | None:
    return _number(raw, what, where, integer=True)  # type: ignore[return-value]


def _float(raw: Any, what: str, where: Path | str) -> float | None:
    return _number(raw, what, where, integer=False)  # type: ignore[return-value]


def _cosim_int(raw: Any, what: str, where: Path | str, *, interval: bool) -> int | None:
    """A co-simulation count; hls4ml's transaction-file sentinels (``sys.maxsize``, interval 0) -> None."""
    value = _int(raw, what, where)
    if value is None or value >= sys.maxsize:
        return None
    if interval and value <= 0:
        return None
    return value


# --------------------------------------------------------------------------- folder layout


@dataclass(frozen=True)
class _Layout:
    """What :func:`parse_hls_report` found in the folder before calling hls4ml."""

    project_dir: Path
    project_name: str
    prj_dir: Path
    app_file: Path
    backend: str
    backend_origin: str
    top_function: str
    solution: str
    tcl_ok: bool  # project.tcl has both lines in the quoted form hls4ml reads


def _read_project_tcl(project_dir: Path) -> tuple[str | None, str | None, bool]:
    """``(project_name, backend, hls4ml_can_read_it)`` from ``project.tcl``; ``None`` for a missing line.

    Raises:
        ReportParseError: the file exists but cannot be read.
    """
    tcl = project_dir / "project.tcl"
    if not tcl.is_file():
        return None, None, False
    try:
        text = tcl.read_text(errors="replace")
    except OSError as e:
        raise ReportParseError(f"cannot read {tcl}: {e}; check the file's permissions") from e
    found: dict[str, tuple[str, bool]] = {}
    for line in text.splitlines():
        m = _TCL_SET.match(line)
        if m:
            quoted = m.group(2) is not None
            found[m.group(1)] = (m.group(2) if quoted else m.group(3), quoted)
    name, name_q = found.get("project_name", (None, False))
    backend, backend_q = found.get("backend", (None, False))
    return name or None, backend or None, bool(name and backend and name_q and backend_q)


def _find_solutions(prj_dir: Path) -> list[str]:
    """Solution folders the ``.app`` file lists, via hls4ml's own helper."""
    from hls4ml.report.vivado_report import _find_solutions as hls4ml_find_solutions

    return hls4ml_find_solutions(str(prj_dir))


def _inspect(project_dir: Path, backend: str | None) -> _Layout:
    """Check the folder's layout and settle the project name, backend and top function.

    Raises:
        ReportParseError: a required folder or file is missing or unreadable.
    """
    if not project_dir.is_dir():
        raise ReportParseError(
            f"HLS project folder {project_dir} does not exist or is not a folder; pass the hls4ml "
            "output_dir (the folder holding project.tcl and <project>_prj/)"
        )
    name, tcl_backend, tcl_ok = _read_project_tcl(project_dir)
    if name is None:
        prjs = sorted(p for p in project_dir.glob("*_prj") if p.is_dir())
        if len(prjs) != 1:
            raise ReportParseError(
                f"{project_dir / 'project.tcl'} is missing or has no `set project_name \"...\"` line, and "
                f"{project_dir} holds {len(prjs)} '<name>_prj' folders ({', '.join(p.name for p in prjs) or 'none'}), "
                "so the project cannot be told; add the line `set project_name \"<name>\"` to project.tcl"
            )
        name = prjs[0].name[: -len("_prj")]
        log.info("%s: no project name in project.tcl; using %r from the folder %s", project_dir, name, prjs[0].name)
    prj_dir = project_dir / f"{name}_prj"
    if not prj_dir.is_dir():
        raise ReportParseError(
            f"{prj_dir} does not exist: the HLS tool has not run in {project_dir} (run the C synthesis, "
            f"e.g. hls_model.build(synth=True)), or project.tcl names the wrong project ({name!r})"
        )
    app_file, app_kind = next(((prj_dir / f, kind) for f, kind in _APP_FILES if (prj_dir / f).is_file()), (None, None))
    if app_file is None or app_kind is None:
        raise ReportParseError(
            f"{prj_dir} has no vivado_hls.app (Vivado HLS) or hls.app (Vitis HLS) project file, so the HLS "
            f"solution cannot be found in {project_dir}; the HLS run did not start or the folder is incomplete; "
            "re-run the C synthesis (hls_model.build(synth=True)) or copy the whole project folder"
        )
    try:
        xml = re.sub(' xmlns="[^"]+"', "", app_file.read_text(errors="replace"), count=1)
        app_top = ET.fromstring(xml).get("top")
        solutions = _find_solutions(prj_dir)
    except (OSError, ET.ParseError) as e:
        raise ReportParseError(f"cannot read the HLS project file {app_file}: {e}; re-run the C synthesis") from e
    if not solutions:
        raise ReportParseError(
            f"{app_file} lists no solution whose folder exists in {prj_dir}; re-run the C synthesis "
            "or copy the solution folder (e.g. solution1/) along with the project"
        )
    if len(solutions) > 1:
        log.warning("%s lists %d solutions; reading the first, %r", app_file, len(solutions), solutions[0])

    if tcl_backend is not None:
        chosen, origin = tcl_backend.lower(), "project.tcl"
        if backend is not None and ("accelerator" in backend.lower()) != ("accelerator" in chosen):
            log.warning(
                "%s says backend %r, the caller said %r; using project.tcl's", project_dir, tcl_backend, backend
            )
    elif backend is not None:
        chosen, origin = backend.lower(), "argument"
    else:
        accel = app_top is not None and app_top == f"{name}_axi"
        chosen, origin = app_kind + ("accelerator" if accel else ""), ".app file"
        log.info("%s: project.tcl has no `set backend`; inferred %r from %s", project_dir, chosen, app_file.name)
    top = name + "_axi" if "accelerator" in chosen else name
    if app_top is not None and app_top != top:
        log.warning(
            "%s: reading the reports of %r (backend %r from %s) but %s names the top function %r",
            project_dir, top, chosen, origin, app_file.name, app_top,
        )
    return _Layout(project_dir, name, prj_dir, app_file, chosen, origin, top, solutions[0], tcl_ok)


# --------------------------------------------------------------------------- calling hls4ml


def _mirror(src: Path, dst: Path, hidden: list[tuple[str, ...]]) -> None:
    """Make ``dst`` a tree of symbolic links to ``src``'s entries, leaving out the ``hidden`` relative paths."""
    dst.mkdir(parents=True, exist_ok=True)
    for child in src.iterdir():
        if (child.name,) in hidden:
            continue
        below = [h[1:] for h in hidden if len(h) > 1 and h[0] == child.name]
        if below and child.is_dir():
            _mirror(child, dst / child.name, below)
        else:
            (dst / child.name).symlink_to(child.resolve(), target_is_directory=child.is_dir())


@contextlib.contextmanager
def _view(layout: _Layout, hidden: list[tuple[str, ...]]) -> Iterator[Path]:
    """A temporary copy-by-links of the project with a complete ``project.tcl`` and ``hidden`` left out.

    Raises:
        ReportParseError: symbolic links cannot be made here.
    """
    with tempfile.TemporaryDirectory(prefix="dse-hls-report-") as tmp:
        view = Path(tmp) / layout.project_dir.name
        try:
            _mirror(layout.project_dir, view, [("project.tcl",), *hidden])
        except OSError as e:
            raise ReportParseError(
                f"cannot build a temporary view of {layout.project_dir} to work around hls4ml's parser "
                f"({e}); add the lines `set project_name \"{layout.project_name}\"` and "
                f"`set backend \"{layout.backend}\"` to {layout.project_dir / 'project.tcl'} instead"
            ) from e
        (view / "project.tcl").write_text(f'set project_name "{layout.project_name}"\nset backend "{layout.backend}"\n')
        yield view


def _call_hls4ml(folder: Path) -> dict[str, Any] | None:
    """``hls4ml.report.parse_vivado_report(folder)`` with its ``print`` output sent to the log (DEBUG)."""
    from hls4ml.report import parse_vivado_report

    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            return parse_vivado_report(str(folder))
    finally:
        for line in out.getvalue().splitlines():
            if line.strip():
                log.debug("hls4ml: %s", line)


def _raw_report(layout: _Layout) -> dict[str, Any]:
    """hls4ml's dict for the project, working around its crashes.

    Raises:
        ReportParseError: hls4ml failed for another reason, or returned nothing.
    """
    sln = layout.prj_dir / layout.solution
    csynth = sln / "syn" / "report" / f"{layout.top_function}_csynth.xml"
    cosim = sln / "sim" / "report" / f"{layout.top_function}_cosim.rpt"
    hidden: list[tuple[str, ...]] = []
    for attempt in range(2):
        try:
            if layout.tcl_ok and not hidden:
                raw = _call_hls4ml(layout.project_dir)
            else:
                with _view(layout, hidden) as view:
                    raw = _call_hls4ml(view)
        except KeyError as e:
            if e.args == ("RTL",) and attempt == 0 and cosim.is_file():
                log.warning(
                    "%s has no co-simulation row with a status (all 'NA'); ignoring it, cosim fields are None", cosim
                )
                hidden = [cosim.relative_to(layout.project_dir).parts]
                continue
            raise ReportParseError(
                f"hls4ml could not parse the reports in {layout.project_dir}: KeyError {e}; re-run the HLS step"
            ) from e
        except ET.ParseError as e:
            raise ReportParseError(
                f"{csynth} is not well-formed XML ({e}); the C synthesis was interrupted, re-run it"
            ) from e
        except ReportParseError:
            raise
        except Exception as e:
            raise ReportParseError(
                f"hls4ml could not parse the reports in {layout.project_dir} (C-synthesis report {csynth}): "
                f"{type(e).__name__}: {e}; check the report files are complete or re-run the HLS step"
            ) from e
        if raw is None:
            raise ReportParseError(
                f"hls4ml found no HLS project in {layout.project_dir}; check project.tcl and {layout.prj_dir}"
            )
        return raw
    raise AssertionError("unreachable")  # pragma: no cover


# --------------------------------------------------------------------------- public parser


def parse_hls_report(project_dir: Path | str, backend: str | None = None) -> HlsReport:
    """Parse an hls4ml Vivado HLS / Vitis HLS project folder with hls4ml's parser, robustly.

    Reads the C-synthesis XML (``<project>_prj/<solution>/syn/report/<top>_csynth.xml``), the
    Vivado logic-synthesis report (``vivado_synth.rpt``, optional) and the co-simulation report
    (``.../sim/report/<top>_cosim.rpt`` and its transaction file, optional). A report that is
    absent leaves its fields ``None``; no number is invented.

    Args:
        project_dir: the hls4ml output folder (``hls_model.config.get_output_dir()``), holding
            ``project.tcl`` and ``<project>_prj/``.
        backend: hls4ml backend name (``Vivado``, ``Vitis``, ``VivadoAccelerator``), used only
            when ``project.tcl`` has no ``set backend`` line; without it the backend is inferred
            from the ``.app`` file.

    Returns:
        The typed numbers.

    Raises:
        ReportParseError: the folder, ``<project>_prj/``, the ``.app`` file or a solution folder
            is missing; a report is malformed; or hls4ml failed. The message names the path and
            the fix; the original exception is chained.
    """
    project_dir = Path(project_dir)
    layout = _inspect(project_dir, backend)
    raw = _raw_report(layout)
    sln = layout.prj_dir / layout.solution

    csynth_file = sln / "syn" / "report" / f"{layout.top_function}_csynth.xml"
    cs = raw.get("CSynthesisReport")
    values: dict[str, Any] = {}
    if cs is None:
        log.warning("%s: no C-synthesis report %s; the csynth fields are None", project_dir, csynth_file)
        csynth_file_found: Path | None = None
    else:
        csynth_file_found = csynth_file
        w = csynth_file
        values.update(
            lut=_int(cs.get("LUT"), "LUT", w),
            ff=_int(cs.get("FF"), "FF", w),
            dsp=_int(cs.get("DSP"), "DSP", w),
            bram_18k=_int(cs.get("BRAM_18K"), "BRAM_18K", w),
            uram=_int(cs.get("URAM"), "URAM", w),
            latency_best_cycles=_int(cs.get("BestLatency"), "Best-caseLatency", w),
            latency_worst_cycles=_int(cs.get("WorstLatency"), "Worst-caseLatency", w),
            interval_min=_int(cs.get("IntervalMin"), "Interval-min", w),
            interval_max=_int(cs.get("IntervalMax"), "Interval-max", w),
            target_clock_ns=_float(cs.get("TargetClockPeriod"), "TargetClockPeriod", w),
            estimated_clock_ns=_float(cs.get("EstimatedClockPeriod"), "EstimatedClockPeriod", w),
            available={
                k[len("Available") :]: _int(v, k, w) for k, v in cs.items() if k.startswith("Available")
            },
        )

    synth_file = project_dir / "vivado_synth.rpt"
    vs = raw.get("VivadoSynthReport")
    if vs is not None:
        if not vs:
            log.warning("%s has no utilization table hls4ml recognizes; the synth fields are None", synth_file)
        values.update(
            synth_lut=_int(vs.get("LUT"), "CLB/Slice LUTs", synth_file),
            synth_ff=_int(vs.get("FF"), "CLB/Slice Registers", synth_file),
            synth_dsp=_int(vs.get("DSP48E"), "DSPs", synth_file),
            synth_bram_tiles=_float(vs.get("BRAM_18K"), "Block RAM Tile", synth_file),
            synth_uram=_int(vs.get("URAM"), "URAM", synth_file),
        )

    cosim_file = sln / "sim" / "report" / f"{layout.top_function}_cosim.rpt"
    co = raw.get("CosimReport")
    if co:
        values.update(
            cosim_status=None if str(co.get("Status", "NA")).strip().lower() in _PLACEHOLDERS else str(co["Status"]),
            cosim_rtl=co.get("RTL"),
            cosim_latency_min=_cosim_int(co.get("LatencyMin"), "latency min", cosim_file, interval=False),
            cosim_latency_max=_cosim_int(co.get("LatencyMax"), "latency max", cosim_file, interval=False),
            cosim_interval_min=_cosim_int(co.get("IntervalMin"), "interval min", cosim_file, interval=True),
            cosim_interval_max=_cosim_int(co.get("IntervalMax"), "interval max", cosim_file, interval=True),
        )
        if values["cosim_latency_min"] is not None:
            values["cosim_latency_avg"] = _float(co.get("LatencyAvg"), "latency avg", cosim_file)

    return HlsReport(
        project_dir=project_dir,
        backend=layout.backend,
        backend_origin=layout.backend_origin,
        top_function=layout.top_function,
        solution=layout.solution,
        csynth_file=csynth_file_found,
        synth_file=synth_file if vs is not None else None,
        **values,
    )


# --------------------------------------------------------------------------- backends


class _HlsToolBackend(ResourceBackend):
    """Shared body of :class:`VivadoBackend` and :class:`VitisBackend`."""

    figures = ("lut", "ff", "dsp", "latency_cycles", "bram_18k")

    #: hls4ml backend names (lower case) whose ``build()`` runs this tool.
    hls4ml_backends: ClassVar[tuple[str, ...]]
    #: the executable hls4ml's ``build()`` runs (and checks) for this backend.
    executable: ClassVar[str]
    #: what to tell a user who lacks :attr:`executable`.
    install_hint: ClassVar[str]
    #: extra keyword arguments for ``build()``.
    build_kwargs: ClassVar[dict[str, Any]] = {}
    #: log files the tool leaves in the project folder, named in error messages.
    log_files: ClassVar[tuple[str, ...]] = ()
    #: executables a user may have instead, which hls4ml's ``build()`` does not run.
    near_misses: ClassVar[tuple[str, ...]] = ()

    def __init__(self, vsynth: bool | None = None) -> None:
        """Configure the backend.

        Args:
            vsynth: also run Vivado logic synthesis (``vivado_synth.rpt``; needs ``vivado`` on
                PATH, takes much longer). ``None`` reads ``design.resources.vsynth`` when
                that setting exists, else ``False``.
        """
        self.vsynth = vsynth

    def check_tools(self, resources: Any = None) -> None:
        """The HLS executable, and ``vivado`` when ``vsynth`` is on: this backend's own setting, else ``resources.vsynth``."""
        self._check_tools(self._vsynth(resources))

    def _vsynth(self, resources: Any) -> bool:
        """``self.vsynth``, or where that is ``None``, ``resources.vsynth`` (``False`` when ``resources`` has none)."""
        return bool(self.vsynth if self.vsynth is not None else getattr(resources, "vsynth", False))

    def _check_tools(self, vsynth: bool) -> None:
        """Raises :class:`ToolNotFoundError` naming the first missing executable."""
        if shutil.which(self.executable) is None:
            near = [f"'{n}' is at {shutil.which(n)} but hls4ml does not run it. " for n in self.near_misses
                    if shutil.which(n)]  # fmt: skip
            raise ToolNotFoundError(
                f"the {self.name} resource backend needs the '{self.executable}' executable on PATH, and it is not "
                f"there. {''.join(near)}{self.install_hint} Without them, yosys or da4ml (resources.backend, or "
                "`dse synthesize --backend`) need no Xilinx tools, but measure distributed_arithmetic designs only"
            )
        if vsynth and shutil.which("vivado") is None:
            raise ToolNotFoundError(
                f"logic synthesis (vsynth) in the {self.name} resource backend needs the 'vivado' executable on PATH; "
                "source Vivado's settings64.sh, or turn vsynth off to keep the C-synthesis estimates"
            )

    def _logs(self, out: Path) -> str:
        found = [str(out / n) for n in self.log_files if (out / n).is_file()]
        return f"see {', '.join(found)}" if found else f"no tool log found in {out}"

    def measure(self, design: Design) -> ResourceReport:
        """Run C synthesis (and logic synthesis if ``vsynth``) on ``design.hls_model``; parse the reports.

        Figures: ``lut``, ``ff``, ``dsp`` (source ``vivado-synth`` where logic synthesis gave
        them, else ``vivado-csynth``), ``bram_18k`` (18 Kb BRAMs) and ``latency_cycles``
        (worst-case latency, cycles), both ``vivado-csynth``. Extras: ``ii_cycles`` (largest
        initiation interval), ``latency_best_cycles``, ``estimated_clock_ns``,
        ``target_clock_ns``, ``uram``, ``csynth_lut``/``csynth_ff``/``csynth_dsp``,
        ``synth_bram_tiles``, ``synth_uram``, ``seconds_synthesis``. A number the reports lack
        is left out. hls4ml's ``build()`` runs the tool, in a thread of this process, for at most
        ``resources.synthesis_timeout_s`` seconds: past it, the tool's processes are stopped (:func:`bounded_build`).

        Raises:
            ToolNotFoundError: the tool's executable (or ``vivado`` for vsynth) is not on PATH.
            MeasurementError: no hls4ml model, or one converted for another backend.
            ToolFailedError: the tool failed or left no new C-synthesis report.
        """
        t0 = time.perf_counter()
        vsynth = self._vsynth(getattr(design, "resources", None))
        self._check_tools(vsynth)

        hls_model = design.hls_model
        if hls_model is None:
            raise MeasurementError(
                f"the {self.name} resource backend needs the converted hls4ml model, but Design.hls_model is None; "
                "convert the model with hls4ml before measuring"
            )
        model_backend = getattr(getattr(hls_model.config, "backend", None), "name", None)
        if model_backend is not None and model_backend.lower() not in self.hls4ml_backends:
            raise MeasurementError(
                f"the {self.name} resource backend runs '{self.executable}', but the model was converted for hls4ml "
                f"backend {model_backend!r}; set hls4ml.backend to {self.hls4ml_backends[0].capitalize()!r} or "
                f"resources.backend to {model_backend.lower()!r}"
            )
        out = Path(hls_model.config.get_output_dir())
        started = time.time()
        build_error: Exception | None = None
        log.info("%s: C synthesis%s of %s", self.executable, " + logic synthesis" if vsynth else "", out)
        resources = getattr(design, "resources", None)
        limit = float(getattr(resources, "synthesis_timeout_s", 0) or 0) or None
        try:
            bounded_build(hls_model, limit, self.executable, csim=False, synth=True, vsynth=vsynth, **self.build_kwargs)
        except ToolFailedError:
            raise
        except Exception as e:  # hls4ml raises bare Exception; its own report parsing may also crash
            build_error = e
        seconds_synth = time.perf_counter() - t0

        try:
            rep = parse_hls_report(out)
        except ReportParseError as e:
            raise ToolFailedError(
                f"{self.executable} left no readable reports in {out} ({e}); {self._logs(out)}"
            ) from (build_error or e)
        fresh = rep.csynth_file is not None and rep.csynth_file.stat().st_mtime >= started - 2
        if not fresh:
            what = "no" if rep.csynth_file is None else "no new"
            raise ToolFailedError(
                f"{self.executable} produced {what} C-synthesis report for {rep.top_function} in {out}"
                f"{f' (hls4ml: {type(build_error).__name__}: {build_error})' if build_error else ''}; {self._logs(out)}"
            ) from build_error
        if build_error is not None:
            log.warning(
                "hls4ml's build() raised %s: %s; using the fresh reports in %s",
                type(build_error).__name__, build_error, out,
            )
        if rep.synth_file is not None and (not vsynth or rep.synth_file.stat().st_mtime < started - 2):
            if vsynth:
                log.warning("%s is older than this run; ignoring its logic-synthesis numbers", rep.synth_file)
            rep = replace(rep, synth_file=None, synth_lut=None, synth_ff=None, synth_dsp=None,
                          synth_bram_tiles=None, synth_uram=None)  # fmt: skip
        elif vsynth and rep.synth_file is None:
            log.warning(
                "vsynth was requested but %s has no vivado_synth.rpt; lut/ff/dsp are C-synthesis estimates", out
            )
        return report_from_hls(self.name, rep, seconds=time.perf_counter() - t0, seconds_synthesis=seconds_synth)


def report_from_hls(
    backend: str, rep: HlsReport, *, seconds: float = 0.0, seconds_synthesis: float | None = None
) -> ResourceReport:
    """The :class:`ResourceReport` of an :class:`HlsReport`.

    Figures ``lut``/``ff``/``dsp`` (source ``vivado-synth`` where logic synthesis gave them, else
    ``vivado-csynth``), ``bram_18k`` and ``latency_cycles`` (worst case), extras as listed in
    :meth:`VivadoBackend.measure`. A number ``rep`` lacks is left out, never filled in.

    Args:
        backend: the backend name to record (``vivado`` or ``vitis``).
        rep: the parsed reports.
        seconds: wall time of the whole measurement, s.
        seconds_synthesis: wall time of the tool run, s, recorded as an extra when given.
    """
    figures: dict[str, Figure] = {}
    for metric, synth_value, csynth_value in (
        ("lut", rep.synth_lut, rep.lut),
        ("ff", rep.synth_ff, rep.ff),
        ("dsp", rep.synth_dsp, rep.dsp),
    ):
        if synth_value is not None:
            figures[metric] = Figure(float(synth_value), "vivado-synth")
        elif csynth_value is not None:
            figures[metric] = Figure(float(csynth_value), "vivado-csynth")
    if rep.bram_18k is not None:
        figures["bram_18k"] = Figure(float(rep.bram_18k), "vivado-csynth")
    if rep.latency_worst_cycles is not None:
        figures["latency_cycles"] = Figure(float(rep.latency_worst_cycles), "vivado-csynth")
    extras_src = {
        "ii_cycles": rep.interval_max,
        "latency_best_cycles": rep.latency_best_cycles,
        "estimated_clock_ns": rep.estimated_clock_ns,
        "target_clock_ns": rep.target_clock_ns,
        "uram": rep.uram,
        "csynth_lut": rep.lut,
        "csynth_ff": rep.ff,
        "csynth_dsp": rep.dsp,
        "synth_bram_tiles": rep.synth_bram_tiles,
        "synth_uram": rep.synth_uram,
        "seconds_synthesis": seconds_synthesis,
    }
    extras = {k: float(v) for k, v in extras_src.items() if v is not None}
    return ResourceReport(backend, figures=figures, extras=extras, seconds=seconds)


#: Seconds an HLS tool stopped at its time limit gets between SIGTERM and SIGKILL.
TOOL_STOP_GRACE_S = 10.0


def bounded_build(hls_model: Any, timeout_s: float | None, executable: str, **kwargs: Any) -> None:
    """``hls_model.build(**kwargs)`` (hls4ml's, which runs the HLS tool in the foreground), for at most ``timeout_s``.

    hls4ml 1.3 starts Vivado HLS with ``os.system`` (after ``os.chdir`` into the project) and Vitis with
    ``Popen(shell=True, cwd=<project>)``, without a time limit (audit: a hung tool held ``dse synthesize`` for ever; a
    trial is bounded by ``trial_timeout_s``). The build runs in a thread; past ``timeout_s`` the tool's processes
    are stopped: the processes started since the build began whose working directory is in the project folder, and
    every process below them, each known by its pid and start time (so a reused pid is never signalled): SIGTERM, then
    SIGKILL for those still there :data:`TOOL_STOP_GRACE_S` later. Without ``timeout_s``, or without Linux's ``/proc``, the build runs as
    hls4ml runs it.

    Raises:
        ToolFailedError: the build ran past ``timeout_s`` seconds (the message names ``resources.synthesis_timeout_s``).
        Exception: what ``build()`` raised, as it raised it.
    """
    if not timeout_s or not Path("/proc/self/stat").is_file():
        hls_model.build(**kwargs)
        return
    project = Path(hls_model.config.get_output_dir()).resolve()
    before = {p for p, _ in _processes_below(os.getpid())}
    box: dict[str, BaseException] = {}

    def run() -> None:
        try:
            hls_model.build(**kwargs)
        except BaseException as e:  # handed to the caller's thread
            box["error"] = e

    worker = threading.Thread(target=run, name="dse-hls-build", daemon=True)
    worker.start()
    try:
        worker.join(timeout_s)
    except BaseException:  # Ctrl-C, a cancelled task: the tool must not outlive the wait
        _stop_tool(project, before)
        raise
    if worker.is_alive():
        stopped = _stop_tool(project, before)
        worker.join(10.0)
        raise ToolFailedError(
            f"{executable} did not finish within {timeout_s:g} s (resources.synthesis_timeout_s; `dse synthesize "
            f"--synthesis-timeout-s` raises it for a re-measurement), so its {stopped} process(es) were stopped")
    if "error" in box:
        raise box["error"]


def _stop_tool(project: Path, before: set[int]) -> int:
    """SIGTERM, then SIGKILL after :data:`TOOL_STOP_GRACE_S`, the processes of the tool running in ``project`` (see :func:`bounded_build`):
    the new ones (not in ``before``) whose working directory is in ``project``, and all below them. Returns how many
    were signalled."""
    below = _processes_below(os.getpid())
    tops = [p for p, _ in below if p not in before and _cwd_in(p, project)]
    found: dict[int, int | None] = {}
    for top in tops:
        found[top] = _start_time(top)
        found.update(_processes_below(top))
    targets = {p: t for p, t in found.items() if t is not None}
    for sig in (signal.SIGTERM, getattr(signal, "SIGKILL", signal.SIGTERM)):
        for pid, started in targets.items():
            if _start_time(pid) == started:  # the same process, not a reused pid
                with contextlib.suppress(OSError):
                    os.kill(pid, sig)
        deadline = time.monotonic() + TOOL_STOP_GRACE_S
        while time.monotonic() < deadline and any(_start_time(p) == t for p, t in targets.items()):
            time.sleep(0.1)
    return len(targets)


def _processes_below(pid: int) -> list[tuple[int, int | None]]:
    """``(pid, start time)`` of every process below ``pid`` (children, theirs, ...), from ``/proc``."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := proc_stat(int(entry.name))) is not None:  # None: gone meanwhile
            children.setdefault(stat.ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append((child, _start_time(child)))
            todo.append(child)
    return out


def _start_time(pid: int) -> int | None:
    """Start time of process ``pid`` in clock ticks after boot, ``None`` where the process is gone or a zombie."""
    stat = proc_stat(pid)
    return None if stat is None or stat.state == "Z" else stat.start


def _cwd_in(pid: int, folder: Path) -> bool:
    """Whether process ``pid`` works in ``folder`` or below it."""
    try:
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return False
    return cwd == folder or folder in cwd.parents


@register_backend
class VivadoBackend(_HlsToolBackend):
    """Vivado HLS C synthesis of the hls4ml project (hls4ml ``Vivado`` backend), ``vivado_hls`` on PATH.

    See :meth:`measure` for figures and errors.
    """

    name = "vivado"
    sources = ("vivado-csynth", "vivado-synth")
    hls4ml_backends = ("vivado", "vivadoaccelerator")
    executable = "vivado_hls"
    install_hint = (
        "hls4ml's Vivado backend runs `vivado_hls -f build_prj.tcl`: install Vivado HLS (shipped with Vivado up to "
        "2020.1) and source <Xilinx>/Vivado/<version>/settings64.sh so that vivado_hls is on PATH."
    )
    log_files = ("vivado_hls.log",)


@register_backend
class VitisBackend(_HlsToolBackend):
    """Vitis HLS C synthesis of the hls4ml project (hls4ml ``Vitis`` backend), ``vitis-run`` on PATH.

    hls4ml 1.3.0's Vitis ``build()`` runs ``vitis-run --tcl build_prj.tcl --mode hls``; a
    ``vitis_hls`` executable alone is not enough. Tool output goes to ``build_stdout.log`` and
    ``build_stderr.log`` in the project folder (``log_to_stdout=False``).
    See :meth:`measure` for figures and errors.
    """

    name = "vitis"
    sources = ("vivado-csynth", "vivado-synth")
    hls4ml_backends = ("vitis",)
    executable = "vitis-run"
    install_hint = (
        "hls4ml 1.3.0's Vitis backend runs `vitis-run --tcl build_prj.tcl --mode hls` (vitis_hls alone is not "
        "enough): install AMD Vitis and source <Xilinx>/Vitis/<version>/settings64.sh so that vitis-run is on PATH."
    )
    build_kwargs = {"log_to_stdout": False}
    log_files = ("build_stdout.log", "build_stderr.log", "vitis_hls.log")
    near_misses = ("vitis_hls",)
