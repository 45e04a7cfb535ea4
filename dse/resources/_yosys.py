"""Open-source logic synthesis: da4ml RTL (Verilog) synthesized with Yosys ``synth_xilinx``."""

from __future__ import annotations

import os
import logging
import re
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

from dse.exceptions import MeasurementError, ToolFailedError, ToolNotFoundError
from dse.resources._registry import register_backend
from dse.resources._base import Design, Figure, ResourceBackend, ResourceReport
from dse.resources._da4ml import trace_da4ml

__all__ = ["YosysBackend", "yosys_family", "parse_yosys_stat", "write_da4ml_rtl", "run_yosys"]

log = logging.getLogger(__name__)

_TOP = "dse_top"


def yosys_family(part: str) -> str:
    """Yosys ``synth_xilinx -family`` for a Xilinx part number.

    ``xc7*`` -> ``xc7``; UltraScale+ (``xcvu..p``, ``xcku..p``, ``xczu``, ``xcau``, ``xcsu``, ``xck26``, and the
    Alveo cards' ``xcu50``/``xcu55c``/``xcu200``/``xcu250``/``xcu280``) -> ``xcup``; UltraScale (``xcvu``, ``xcku``
    without ``p``) -> ``xcu``. Versal (``xcv[cmpeh]...``) has no Yosys family.

    Raises:
        MeasurementError: not a Xilinx part Yosys can target.
    """
    p = part.lower()
    if p.startswith("xc7"):
        return "xc7"
    if re.match(r"xc(vu|ku)\d+p", p) or re.match(r"xcu\d+", p) or p.startswith(("xczu", "xcau", "xcsu", "xck26", "xck24")):
        return "xcup"
    if re.match(r"xc(vu|ku)\d+", p):
        return "xcu"
    versal = " (a Versal part: Yosys has no Versal family)" if re.match(r"xcv(?:[cmpeh]\d|\d)", p) else ""
    raise MeasurementError(
        f"hls4ml.part {part!r}{versal}: Yosys synth_xilinx targets 7-series (xc7...), UltraScale (xcvu/xcku) and "
        "UltraScale+ (xcvu..p, xcku..p, xczu..., Alveo xcu...) parts; pick one of those for the yosys backend, or measure "
        "with da4ml (its cost model needs no part) or vivado/vitis"
    )


_CELL = re.compile(r"^\s+(\S+)\s+(\d+)\s*$")


def parse_yosys_stat(log_text: str) -> dict[str, int]:
    """Cell counts of the last ``stat`` block in a Yosys log.

    Returns:
        ``{"LUT": sum of LUT1..LUT6, "FF": FDRE/FDSE/FDCE/FDPE, "CARRY": CARRY4/CARRY8,
        "DSP": DSP48E1/DSP48E2, "MUX": MUXF7/MUXF8/MUXF9, "BRAM": RAMB*}`` plus every raw cell type.

    Raises:
        MeasurementError: the log holds no ``stat`` output.
    """
    blocks = log_text.split("Number of cells:")
    if len(blocks) < 2:
        raise MeasurementError("Yosys log has no 'stat' output (no 'Number of cells:' line)")
    cells: Counter[str] = Counter()
    for line in blocks[-1].splitlines()[1:]:
        m = _CELL.match(line)
        if m:
            cells[m.group(1)] += int(m.group(2))
        elif line.strip() and not line.startswith(" "):
            break
    groups = {
        "LUT": lambda c: re.fullmatch(r"LUT[1-6]", c),
        "FF": lambda c: c in ("FDRE", "FDSE", "FDCE", "FDPE"),
        "CARRY": lambda c: c.startswith("CARRY"),
        "DSP": lambda c: c.startswith("DSP48"),
        "MUX": lambda c: re.fullmatch(r"MUXF[789]", c),
        "BRAM": lambda c: c.startswith("RAMB"),
    }
    out = {name: sum(n for c, n in cells.items() if pred(c)) for name, pred in groups.items()}
    out.update(cells)
    return out


def write_da4ml_rtl(design: Design, out_dir: Path) -> tuple[list[Path], int]:
    """Write the design's pipelined da4ml Verilog under ``out_dir``.

    Returns:
        The Verilog files to read (da4ml's static sources, without ``lookup_table.v`` when the
        design has no tables) and the number of pipeline stages.
    """
    from da4ml.codegen import RTLModel

    comb = trace_da4ml(design.model)
    res = design.resources
    rtl = RTLModel(
        comb,
        _TOP,
        out_dir,
        flavor="verilog",
        latency_cutoff=res.da4ml_latency_cutoff,
        print_latency=False,
        part_name=design.hls.part,
        clock_period=design.hls.clock_period,
    )
    rtl.write()
    has_tables = any((out_dir / "src" / "memfiles").glob("*"))
    static = sorted(p for p in (out_dir / "src" / "static").glob("*.v") if has_tables or p.name != "lookup_table.v")
    own = sorted((out_dir / "src").glob("*.v"))
    stages = len(rtl._pipe.solutions) if getattr(rtl, "_pipe", None) is not None else 1
    return static + own, stages


def _yosys_executable() -> str:
    """The path of ``yosys`` on PATH.

    Raises:
        ToolNotFoundError: it is not there (the message says how to install it).
    """
    exe = shutil.which("yosys")
    if exe is None:
        raise ToolNotFoundError(
            "the yosys backend needs the 'yosys' executable on PATH; install it with `apt-get install yosys` "
            "(Debian/Ubuntu), or use the da4ml backend for a cost-model estimate"
        )
    return exe


def run_yosys(files: list[Path], top: str, family: str, cwd: Path, timeout_s: float) -> str:
    """Run ``synth_xilinx -flatten`` and ``stat`` in a subprocess in ``cwd``.

    Returns:
        Yosys's log.

    Raises:
        ToolNotFoundError: ``yosys`` is not on PATH.
        ToolFailedError: non-zero exit or ``timeout_s`` exceeded (the log tail is in the message).
    """
    exe = _yosys_executable()
    names = " ".join(str(f.relative_to(cwd)) if f.is_relative_to(cwd) else str(f) for f in files)
    script = f"read_verilog -sv {names}; synth_xilinx -family {family} -flatten -noiopad -top {top}; stat"
    try:
        # without HOME: yosys writes (an empty) ~/.yosys_history at exit, into the user's home (probe 40)
        env = {k: v for k, v in os.environ.items() if k != "HOME"}
        proc = subprocess.run([exe, "-q", "-l", "yosys.log", "-p", script], cwd=cwd, capture_output=True, text=True,
                              timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired as e:
        raise ToolFailedError(f"yosys ran past resources.synthesis_timeout_s={timeout_s} s (working in {cwd}); raise the limit: "
                              "for `dse run`, resources.synthesis_timeout_s; for `dse synthesize` of COMPLETE trials, "
                              "--synthesis-timeout-s; a trial that failed on it can be exported with `dse export "
                              "--allow-failed` and its rtl/ synthesized as its README says") from e
    text = (cwd / "yosys.log").read_text() if (cwd / "yosys.log").exists() else proc.stdout
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or text).strip().splitlines()[-15:])
        raise ToolFailedError(f"yosys exited with {proc.returncode} in {cwd}:\n{tail}")
    return text


@register_backend
class YosysBackend(ResourceBackend):
    """Real LUT/FF/CARRY/DSP counts: da4ml RTL synthesized by Yosys (source ``yosys``; ``latency_cycles`` is da4ml's
    stage count of that RTL, source ``da4ml``).

    Only meaningful for ``distributed_arithmetic`` designs (the RTL is da4ml's). Figures:
    ``lut`` (LUT1-6), ``ff``, ``dsp``, ``latency_cycles`` (pipeline stages at
    ``resources.da4ml_latency_cutoff``); extras ``carry``, ``mux``, ``inv`` (Yosys's INV cells, which ``lut``
    leaves out: Xilinx implements an INV as a LUT1 where Vivado does not fold it into the logic it drives, UG953, so
    ``lut + inv`` bounds the LUTs from above), ``seconds_synthesis``.
    Runs ``yosys`` as a subprocess in ``<work_dir>/yosys`` with ``resources.synthesis_timeout_s``.
    """

    name = "yosys"
    needs_hls_model = False
    derived_figures = ("latency_cycles",)  # da4ml's stage count of the RTL; Yosys does no timing
    figures = ("lut", "ff", "dsp", "latency_cycles")
    sources = ("yosys",)
    strategies = ("distributed_arithmetic",)

    def check_tools(self, resources: Any = None) -> None:
        """Raises :class:`ToolNotFoundError` (with the install hint) when ``yosys`` is not on PATH (``resources``: unused)."""
        _yosys_executable()

    def check_target(self, hls: Any) -> None:
        """Raises :class:`MeasurementError` when Yosys has no family for ``hls.part`` (:func:`yosys_family`)."""
        yosys_family(hls.part)

    def measure(self, design: Design) -> ResourceReport:
        t0 = time.perf_counter()
        family = yosys_family(design.hls.part)
        self.check_tools()
        out = design.work_dir / "yosys"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        files, stages = write_da4ml_rtl(design, out)
        t_syn = time.perf_counter()
        text = run_yosys(files, _TOP, family, out, design.resources.synthesis_timeout_s)
        seconds_synth = time.perf_counter() - t_syn
        cells = parse_yosys_stat(text)
        if cells["LUT"] == 0 and cells["FF"] == 0:
            raise MeasurementError(f"Yosys reported no LUT and no FF for the design in {out}; see {out / 'yosys.log'}")
        src = "yosys"
        return ResourceReport(
            self.name,
            figures={
                "lut": Figure(float(cells["LUT"]), src),
                "ff": Figure(float(cells["FF"]), src),
                "dsp": Figure(float(cells["DSP"]), src),
                # da4ml's pipeline stages of the RTL Yosys reads (Yosys does no timing): labelled da4ml, not yosys (probe 31)
                "latency_cycles": Figure(float(stages), "da4ml"),
            },
            extras={"carry": float(cells["CARRY"]), "mux": float(cells["MUX"]), "inv": float(cells.get("INV", 0)),
                    "seconds_synthesis": seconds_synth},
            seconds=time.perf_counter() - t0,
        )
