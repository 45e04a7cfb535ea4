"""The Vivado/Vitis HLS report parser on real report folders, its quirk handling, and the backends.

Fixtures: tests/fixtures/vivado_reports/ (real reports from public hls4ml projects; see each
SOURCE.txt). Every expected number below was read off the report files themselves; the
comments name the file (relative to the fixture folder) and the line.
"""

from __future__ import annotations

import os
import shutil
import stat
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from dse.config import ExperimentConfig, TrialParams
from dse.exceptions import MeasurementError, ReportParseError, ToolFailedError, ToolNotFoundError
from dse.resources import Design, sources
from dse.resources._vivado import HlsReport, VitisBackend, VivadoBackend, parse_hls_report, report_from_hls

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "vivado_reports"

_CSYNTH = "myproject_prj/solution1/syn/report/myproject_csynth.xml"
_AXI_CSYNTH = "myproject_prj/solution1/syn/report/myproject_axi_csynth.xml"
_COSIM = "myproject_prj/solution1/sim/report/myproject_cosim.rpt"
_TRANS = "myproject_prj/solution1/sim/verilog/myproject.performance.result.transaction.xml"

EXPECTED: dict[str, dict] = {
    # Vivado HLS 2019.2, xczu9eg, io_stream dataflow design.
    "conv2d_test": dict(
        backend="vivado",
        top_function="myproject",
        target_clock_ns=5.0,  # _CSYNTH line 12 <TargetClockPeriod>5.00
        estimated_clock_ns=3.770,  # _CSYNTH line 20 <EstimatedClockPeriod>3.770
        latency_best_cycles=243,  # _CSYNTH line 24 <Best-caseLatency>243
        latency_worst_cycles=2293,  # _CSYNTH line 26 <Worst-caseLatency>2293
        interval_min=227,  # _CSYNTH line 36 <Interval-min>227
        interval_max=2277,  # _CSYNTH line 37 <Interval-max>2277
        bram_18k=4,  # _CSYNTH line 43 <BRAM_18K>4 (myproject_csynth.rpt line 66 |Total| 4)
        dsp=8,  # _CSYNTH line 44 <DSP48E>8
        ff=4187,  # _CSYNTH line 45 <FF>4187
        lut=8722,  # _CSYNTH line 46 <LUT>8722
        uram=0,  # _CSYNTH line 47 <URAM>0
        # _CSYNTH lines 50-54 <AvailableResources>
        available={"BRAM_18K": 1824, "DSP": 2520, "FF": 548160, "LUT": 274080, "URAM": 0},
        synth_file=False,
        synth_lut=None,
        synth_ff=None,
        synth_dsp=None,
        synth_bram_tiles=None,
        synth_uram=None,
        cosim_status="Pass",  # _COSIM line 11 "| Verilog| Pass| 965| 965| 965| NA| NA| NA|"
        cosim_rtl="Verilog",  # _COSIM line 11
        cosim_latency_min=965,  # _TRANS line 2 "transaction 0: 965 0" (latency 965)
        cosim_latency_max=965,  # _TRANS line 2
        cosim_latency_avg=965.0,  # _TRANS line 2, the only transaction
        cosim_interval_min=None,  # _COSIM line 11 NA; _TRANS line 2 interval 0 = no next transaction
        cosim_interval_max=None,
    ),
    # Vivado HLS 2019.2.1, xcvu9p, with a Vivado 2019.2.1 logic-synthesis report.
    "example_hls4ml_vivado_synth": dict(
        backend="vivado",
        top_function="myproject",
        target_clock_ns=5.0,  # _CSYNTH line 13 <TargetClockPeriod>5.00
        estimated_clock_ns=3.985,  # _CSYNTH line 21 <EstimatedClockPeriod>3.985
        latency_best_cycles=10,  # _CSYNTH line 25 <Best-caseLatency>10
        latency_worst_cycles=10,  # _CSYNTH line 27 <Worst-caseLatency>10
        interval_min=1,  # _CSYNTH line 33 <Interval-min>1
        interval_max=1,  # _CSYNTH line 34 <Interval-max>1
        bram_18k=4,  # _CSYNTH line 40 <BRAM_18K>4
        dsp=3317,  # _CSYNTH line 41 <DSP48E>3317 (myproject_csynth.rpt line 71 |Total| 3317)
        ff=15168,  # _CSYNTH line 42 <FF>15168
        lut=112473,  # _CSYNTH line 43 <LUT>112473
        uram=0,  # _CSYNTH line 44 <URAM>0
        # _CSYNTH lines 47-51 <AvailableResources>
        available={"BRAM_18K": 4320, "DSP": 6840, "FF": 2364480, "LUT": 1182240, "URAM": 960},
        synth_file=True,
        synth_lut=60597,  # vivado_synth.rpt line 38 "| CLB LUTs* | 60597 |"
        synth_ff=14719,  # vivado_synth.rpt line 41 "| CLB Registers | 14719 |"
        synth_dsp=3306,  # vivado_synth.rpt line 92 "| DSPs | 3306 |"
        synth_bram_tiles=1.5,  # vivado_synth.rpt line 77 "| Block RAM Tile | 1.5 |"
        synth_uram=0,  # vivado_synth.rpt line 81 "| URAM | 0 |"
        cosim_status="Pass",  # _COSIM line 11 "| Verilog| Pass| 10| 10| 10| NA| NA| NA|"
        cosim_rtl="Verilog",
        cosim_latency_min=10,  # _TRANS line 2 "transaction 0: 10 0"
        cosim_latency_max=10,
        cosim_latency_avg=10.0,
        cosim_interval_min=None,  # _COSIM line 11 NA; _TRANS line 2 interval 0
        cosim_interval_max=None,
    ),
    # Vitis HLS 2023.1, xczu49dr; co-simulation failed (all NA).
    "hg_dream_vitis": dict(
        backend="vitis",
        top_function="myproject",
        target_clock_ns=5.0,  # _CSYNTH line 12 <TargetClockPeriod>5.00
        estimated_clock_ns=3.649,  # _CSYNTH line 21 <EstimatedClockPeriod>3.649
        latency_best_cycles=695,  # _CSYNTH line 25 <Best-caseLatency>695
        latency_worst_cycles=695,  # _CSYNTH line 27 <Worst-caseLatency>695
        interval_min=578,  # _CSYNTH line 32 <Interval-min>578
        interval_max=578,  # _CSYNTH line 33 <Interval-max>578
        bram_18k=332,  # _CSYNTH line 39 <BRAM_18K>332
        dsp=29,  # _CSYNTH line 40 <DSP>29 (Vitis tag; myproject_csynth.rpt line 78 |Total| 29)
        ff=65881,  # _CSYNTH line 41 <FF>65881
        lut=339116,  # _CSYNTH line 42 <LUT>339116
        uram=0,  # _CSYNTH line 43 <URAM>0
        # _CSYNTH lines 46-50 <AvailableResources>
        available={"BRAM_18K": 2160, "DSP": 4272, "FF": 850560, "LUT": 425280, "URAM": 80},
        synth_file=False,
        synth_lut=None,
        synth_ff=None,
        synth_dsp=None,
        synth_bram_tiles=None,
        synth_uram=None,
        cosim_status="Fail",  # _COSIM line 10 "| Verilog| Fail| NA| NA| NA| NA| NA| NA| NA|"
        cosim_rtl="Verilog",
        cosim_latency_min=None,  # _COSIM line 10 NA (no transaction file)
        cosim_latency_max=None,
        cosim_latency_avg=None,
        cosim_interval_min=None,
        cosim_interval_max=None,
    ),
    # Vivado HLS 2019.2, xc7z020, VivadoAccelerator project: the top is myproject_axi; over-utilised.
    "yolo_v3_tiny_accelerator": dict(
        backend="vivadoaccelerator",
        top_function="myproject_axi",
        target_clock_ns=5.0,  # _AXI_CSYNTH line 12 <TargetClockPeriod>5.00
        estimated_clock_ns=7.162,  # _AXI_CSYNTH line 20 <EstimatedClockPeriod>7.162
        latency_best_cycles=7788162,  # _AXI_CSYNTH line 24 (myproject_csynth.xml, the inner top, has 7788159)
        latency_worst_cycles=7861648,  # _AXI_CSYNTH line 26 <Worst-caseLatency>7861648
        interval_min=344066,  # _AXI_CSYNTH line 36 <Interval-min>344066
        interval_max=4123601,  # _AXI_CSYNTH line 37 <Interval-max>4123601
        bram_18k=366,  # _AXI_CSYNTH line 43 <BRAM_18K>366 (myproject_axi_csynth.rpt line 66 |Total| 366)
        dsp=42,  # _AXI_CSYNTH line 44 <DSP48E>42
        ff=132450,  # _AXI_CSYNTH line 45 <FF>132450
        lut=149767,  # _AXI_CSYNTH line 46 <LUT>149767
        uram=0,  # _AXI_CSYNTH line 47 <URAM>0
        # _AXI_CSYNTH lines 50-54 <AvailableResources>
        available={"BRAM_18K": 280, "DSP": 220, "FF": 106400, "LUT": 53200, "URAM": 0},
        synth_file=False,
        synth_lut=None,
        synth_ff=None,
        synth_dsp=None,
        synth_bram_tiles=None,
        synth_uram=None,
        cosim_status=None,  # no sim/ folder: co-simulation was not run
        cosim_rtl=None,
        cosim_latency_min=None,
        cosim_latency_max=None,
        cosim_latency_avg=None,
        cosim_interval_min=None,
        cosim_interval_max=None,
    ),
}

_INT_FIELDS = ("lut", "ff", "dsp", "bram_18k", "uram", "latency_best_cycles", "latency_worst_cycles",
               "interval_min", "interval_max", "synth_lut", "synth_ff", "synth_dsp", "synth_uram",
               "cosim_latency_min", "cosim_latency_max", "cosim_interval_min", "cosim_interval_max")  # fmt: skip
_FLOAT_FIELDS = ("target_clock_ns", "estimated_clock_ns", "synth_bram_tiles", "cosim_latency_avg")


def _copy(name: str, tmp_path: Path) -> Path:
    dst = tmp_path / name
    shutil.copytree(FIXTURES / name, dst)
    return dst


def _check(rep: HlsReport, expected: dict) -> None:
    for key, want in expected.items():
        got = getattr(rep, key)
        if key == "synth_file":
            assert (got is not None) == want, key
        elif isinstance(want, float):
            assert got == pytest.approx(want), key
        else:
            assert got == want, key
    for key in _INT_FIELDS:
        v = getattr(rep, key)
        assert v is None or type(v) is int, (key, v)
    for key in _FLOAT_FIELDS:
        v = getattr(rep, key)
        assert v is None or type(v) is float, (key, v)
    assert all(v is None or type(v) is int for v in rep.available.values())


def test_fixtures_are_inside_the_project():
    assert sorted(p.name for p in FIXTURES.iterdir()) == sorted(EXPECTED)
    for name in EXPECTED:
        assert (FIXTURES / name / "SOURCE.txt").is_file()
    assert (FIXTURES.parent / "README.md").is_file()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_numbers_match_the_report_files(name):
    rep = parse_hls_report(FIXTURES / name)
    _check(rep, EXPECTED[name])
    assert rep.backend_origin == "project.tcl"
    assert rep.solution == "solution1"
    assert rep.csynth_file is not None and rep.csynth_file.name == f"{rep.top_function}_csynth.xml"


_OLD_PROJECT_TCL = """variable project_name
set project_name "myproject"
variable part
set part "xcvu9p-flga2104-2L-e"
variable clock_period
set clock_period 5
"""


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_project_tcl_without_set_backend(name, tmp_path):
    from hls4ml.report import parse_vivado_report

    d = _copy(name, tmp_path)
    (d / "project.tcl").write_text(_OLD_PROJECT_TCL)
    with pytest.raises(UnboundLocalError):  # the hls4ml 1.3.0 quirk this works around
        parse_vivado_report(str(d))
    rep = parse_hls_report(d)
    _check(rep, EXPECTED[name])  # backend (vivado / vitis / vivadoaccelerator) inferred from the .app file
    assert rep.backend_origin == ".app file"
    assert (d / "project.tcl").read_text() == _OLD_PROJECT_TCL  # the user's folder is left as it was
    assert rep.project_dir == d


def test_backend_argument_used_when_project_tcl_lacks_it(tmp_path):
    d = _copy("yolo_v3_tiny_accelerator", tmp_path)
    (d / "project.tcl").write_text(_OLD_PROJECT_TCL)
    rep = parse_hls_report(d, backend="VivadoAccelerator")
    assert rep.backend_origin == "argument"
    _check(rep, EXPECTED["yolo_v3_tiny_accelerator"])


def test_missing_project_tcl_uses_the_prj_folder(tmp_path):
    d = _copy("conv2d_test", tmp_path)
    (d / "project.tcl").unlink()
    _check(parse_hls_report(d), EXPECTED["conv2d_test"])


def test_no_app_file_names_the_folder(tmp_path):
    from hls4ml.report import parse_vivado_report

    d = _copy("conv2d_test", tmp_path)
    (d / "myproject_prj" / "vivado_hls.app").unlink()
    with pytest.raises(IndexError):  # the hls4ml 1.3.0 quirk
        parse_vivado_report(str(d))
    with pytest.raises(ReportParseError, match="vivado_hls.app") as info:
        parse_hls_report(d)
    assert str(d / "myproject_prj") in str(info.value)
    assert "re-run the C synthesis" in str(info.value)


def test_missing_folders_are_named(tmp_path):
    with pytest.raises(ReportParseError, match="does not exist"):
        parse_hls_report(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReportParseError, match="set project_name"):
        parse_hls_report(tmp_path / "empty")
    (tmp_path / "empty" / "project.tcl").write_text('set project_name "x"\nset backend "vivado"\n')
    with pytest.raises(ReportParseError, match="x_prj does not exist"):
        parse_hls_report(tmp_path / "empty")


def test_na_cosim_gives_none():
    rep = parse_hls_report(FIXTURES / "hg_dream_vitis")  # _COSIM line 10: Verilog Fail, all NA
    assert rep.cosim_status == "Fail"
    assert rep.cosim_latency_min is rep.cosim_latency_max is rep.cosim_interval_min is None
    assert rep.lut == 339116  # the rest of the report is unaffected


def test_cosim_without_any_status_row(tmp_path):
    """All rows NA (hls4ml 1.3.0 raises KeyError 'RTL'): parsed without the co-simulation report."""
    from hls4ml.report import parse_vivado_report

    d = _copy("hg_dream_vitis", tmp_path)
    rpt = d / _COSIM
    rpt.write_text(rpt.read_text().replace("Fail|", "  NA|"))
    with pytest.raises(KeyError, match="RTL"):
        parse_vivado_report(str(d))
    rep = parse_hls_report(d)
    assert rep.cosim_status is None and rep.cosim_latency_max is None
    assert rep.lut == 339116 and rep.latency_worst_cycles == 695


def test_fractional_bram_tiles_is_a_float():
    rep = parse_hls_report(FIXTURES / "example_hls4ml_vivado_synth")
    assert rep.synth_bram_tiles == 1.5 and type(rep.synth_bram_tiles) is float  # vivado_synth.rpt line 77
    assert rep.has_logic_synthesis


def test_undef_latency_is_none(tmp_path):
    d = _copy("conv2d_test", tmp_path)
    x = d / _CSYNTH
    x.write_text(x.read_text().replace("<Worst-caseLatency>2293<", "<Worst-caseLatency>undef<"))
    rep = parse_hls_report(d)
    assert rep.latency_worst_cycles is None and rep.latency_best_cycles == 243
    assert "latency_cycles" not in report_from_hls("vivado", rep).figures  # never invented


def test_malformed_reports_raise_chained_errors(tmp_path):
    d = _copy("conv2d_test", tmp_path)
    x = d / _CSYNTH
    text = x.read_text()
    x.write_text(text[: len(text) // 2])  # truncated
    with pytest.raises(ReportParseError, match="not well-formed") as info:
        parse_hls_report(d)
    assert isinstance(info.value.__cause__, ET.ParseError)
    assert str(x) in str(info.value)
    x.write_text(text.replace("<LUT>8722</LUT>", "<LUT>lots</LUT>"))
    with pytest.raises(ReportParseError, match="LUT in .*'lots'") as info:
        parse_hls_report(d)
    assert isinstance(info.value.__cause__, ValueError)
    x.write_text(text.replace("<EstimatedClockPeriod>3.770</EstimatedClockPeriod>", ""))
    with pytest.raises(ReportParseError, match="AttributeError") as info:
        parse_hls_report(d)
    assert isinstance(info.value.__cause__, AttributeError)


def test_missing_csynth_report_leaves_figures_out(tmp_path):
    d = _copy("yolo_v3_tiny_accelerator", tmp_path)
    (d / _AXI_CSYNTH).unlink()
    rep = parse_hls_report(d)
    assert rep.csynth_file is None and rep.lut is None and rep.latency_worst_cycles is None
    assert report_from_hls("vivado", rep).figures == {}


def test_report_sources():
    synth = report_from_hls("vivado", parse_hls_report(FIXTURES / "example_hls4ml_vivado_synth"))
    assert {k: (f.value, f.source) for k, f in synth.figures.items()} == {
        "lut": (60597, "vivado-synth"),
        "ff": (14719, "vivado-synth"),
        "dsp": (3306, "vivado-synth"),
        "bram_18k": (4, "vivado-csynth"),
        "latency_cycles": (10, "vivado-csynth"),
    }
    assert synth.extras["csynth_lut"] == 112473 and synth.extras["synth_bram_tiles"] == 1.5
    assert synth.extras["ii_cycles"] == 1 and synth.extras["estimated_clock_ns"] == pytest.approx(3.985)
    cs = report_from_hls("vitis", parse_hls_report(FIXTURES / "hg_dream_vitis"))
    assert {k: (f.value, f.source) for k, f in cs.figures.items()} == {
        "lut": (339116, "vivado-csynth"),
        "ff": (65881, "vivado-csynth"),
        "dsp": (29, "vivado-csynth"),
        "bram_18k": (332, "vivado-csynth"),
        "latency_cycles": (695, "vivado-csynth"),
    }
    assert "synth_bram_tiles" not in cs.extras
    assert all(f.source in sources() for f in cs.figures.values())


# --------------------------------------------------------------------------- backends


class _FakeHlsModel:
    """Stands in for hls4ml's ModelGraph: ``build()`` records its arguments and 'writes' a fixture's reports."""

    def __init__(self, out: Path, backend: str, fixture: str | None):
        self.config = SimpleNamespace(get_output_dir=lambda: str(out), backend=SimpleNamespace(name=backend))
        self.out, self.fixture, self.calls = out, fixture, []

    def build(self, **kwargs):
        self.calls.append(kwargs)
        if self.fixture is not None:  # shutil.copy: new mtimes, as a real run would give
            shutil.copytree(FIXTURES / self.fixture, self.out, copy_function=shutil.copy, dirs_exist_ok=True)
        return {}


def _design(tmp_path: Path, hls_model=None) -> Design:
    exp = ExperimentConfig(name="t", search_space=tmp_path / "space.yaml")
    return Design(None, TrialParams(), exp.hls4ml, exp.resources, 0.0, tmp_path, np.zeros((1, 4)), hls_model=hls_model)


def _fake_tools(tmp_path: Path, *names: str) -> str:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for n in names:
        exe = bin_dir / n
        exe.write_text("#!/bin/sh\nexit 1\n")
        exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return str(bin_dir)


@pytest.mark.parametrize(("backend", "exe"), [(VivadoBackend, "vivado_hls"), (VitisBackend, "vitis-run")])
def test_measure_without_tools_names_the_executable(backend, exe, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", _fake_tools(tmp_path))  # no Xilinx tools here, whatever the machine has
    with pytest.raises(ToolNotFoundError) as info:
        backend().measure(_design(tmp_path))
    msg = str(info.value)
    assert f"'{exe}'" in msg and "PATH" in msg and "settings64.sh" in msg
    assert "yosys" in msg and "da4ml" in msg
    assert backend.name in ("vivado", "vitis")


def test_vitis_hls_alone_is_not_enough(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", _fake_tools(tmp_path, "vitis_hls"))
    with pytest.raises(ToolNotFoundError, match="'vitis_hls' is at .* but hls4ml does not run it"):
        VitisBackend().measure(_design(tmp_path))


def test_vsynth_needs_vivado(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", _fake_tools(tmp_path, "vivado_hls"))
    with pytest.raises(ToolNotFoundError, match="'vivado' executable"):
        VivadoBackend(vsynth=True).measure(_design(tmp_path))


def test_measure_builds_then_parses(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", _fake_tools(tmp_path, "vivado_hls", "vitis-run"))
    out = tmp_path / "prj_vivado"
    model = _FakeHlsModel(out, "Vivado", "conv2d_test")
    r = VivadoBackend().measure(_design(tmp_path, model))
    assert model.calls == [{"csim": False, "synth": True, "vsynth": False}]
    assert r.backend == "vivado"
    assert {k: (f.value, f.source) for k, f in r.figures.items()} == {
        "lut": (8722, "vivado-csynth"),
        "ff": (4187, "vivado-csynth"),
        "dsp": (8, "vivado-csynth"),
        "bram_18k": (4, "vivado-csynth"),
        "latency_cycles": (2293, "vivado-csynth"),
    }
    assert r.extras["ii_cycles"] == 2277 and r.seconds >= 0

    out = tmp_path / "prj_vitis"
    model = _FakeHlsModel(out, "Vitis", "hg_dream_vitis")
    r = VitisBackend().measure(_design(tmp_path, model))
    assert model.calls == [{"csim": False, "synth": True, "vsynth": False, "log_to_stdout": False}]
    assert r.figures["lut"].value == 339116 and r.figures["latency_cycles"].value == 695

    out = tmp_path / "prj_synth"
    model = _FakeHlsModel(out, "Vivado", "example_hls4ml_vivado_synth")
    monkeypatch.setenv("PATH", _fake_tools(tmp_path, "vivado"))
    r = VivadoBackend(vsynth=True).measure(_design(tmp_path, model))
    assert model.calls[0]["vsynth"] is True
    assert r.figures["lut"].value == 60597 and r.figures["lut"].source == "vivado-synth"


def test_measure_refuses_stale_or_missing_reports(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", _fake_tools(tmp_path, "vivado_hls"))
    out = _copy("conv2d_test", tmp_path)
    for p in out.rglob("*"):
        os.utime(p, (1_000_000_000, 1_000_000_000))  # reports from an earlier run
    (out / "vivado_hls.log").write_text("ERROR: [HLS 200-70] Compilation errors found\n")
    model = _FakeHlsModel(out, "Vivado", None)  # the tool "fails": writes nothing
    with pytest.raises(ToolFailedError, match="no new C-synthesis report") as info:
        VivadoBackend().measure(_design(tmp_path, model))
    assert "vivado_hls.log" in str(info.value)

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ToolFailedError, match="no readable reports"):
        VivadoBackend().measure(_design(tmp_path, _FakeHlsModel(empty, "Vivado", None)))


def test_measure_checks_the_model(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", _fake_tools(tmp_path, "vivado_hls", "vitis-run"))
    with pytest.raises(MeasurementError, match="hls_model is None"):
        VivadoBackend().measure(_design(tmp_path))
    with pytest.raises(MeasurementError, match="converted for hls4ml backend 'Vitis'"):
        VivadoBackend().measure(_design(tmp_path, _FakeHlsModel(tmp_path / "o", "Vitis", None)))


def test_check_tools_reads_vsynth_from_the_experiment(tmp_path, monkeypatch):
    """`dse check` / `dse synthesize` check the tools before Ray starts; with `resources.vsynth: true` in the experiment
    and only vivado_hls on PATH, that check must name 'vivado' as the measurement would (before, `dse synthesize`
    checked with vsynth off and every worker then failed)."""
    from dse.config import ResourcesConfig

    monkeypatch.setenv("PATH", _fake_tools(tmp_path, "vivado_hls"))
    VivadoBackend().check_tools()
    VivadoBackend().check_tools(ResourcesConfig(vsynth=False))
    with pytest.raises(ToolNotFoundError, match="'vivado' executable"):
        VivadoBackend().check_tools(ResourcesConfig(vsynth=True))
    VivadoBackend(vsynth=False).check_tools(ResourcesConfig(vsynth=True))  # the backend's own setting wins
    with pytest.raises(ToolNotFoundError, match="'vivado' executable"):
        VivadoBackend(vsynth=True).check_tools()


class _HangingHlsModel(_FakeHlsModel):
    """``build()`` runs the tool as hls4ml 1.3 runs Vivado HLS: ``os.system`` in the project folder; the fake tool hangs."""

    def build(self, **kwargs):
        self.calls.append(kwargs)
        self.out.mkdir(parents=True, exist_ok=True)
        os.system(f"cd {self.out} && vivado_hls -f build_prj.tcl")
        return {}


def test_a_hung_tool_is_stopped_at_the_synthesis_timeout(tmp_path, monkeypatch):
    """The audit: hls4ml runs Vivado HLS with os.system and no time limit, so a hung tool held `dse synthesize` for ever
    (resources.synthesis_timeout_s bounded Yosys only). The build is now stopped at that limit, its processes killed."""
    import subprocess
    import time as _time

    bin_dir = Path(_fake_tools(tmp_path, "vitis-run"))
    tool = bin_dir / "vivado_hls"
    # a tool that ignores SIGTERM (the review: SIGKILL was never sent once the shell had died, and the tool ran on)
    tool.write_text(f"#!/bin/sh\necho $$ > {tmp_path / 'tool.pid'}\ntrap '' TERM\nexec sleep 300\n")
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    from dse.resources import _vivado

    monkeypatch.setattr(_vivado, "TOOL_STOP_GRACE_S", 1.0)  # SIGKILL 1 s after the ignored SIGTERM, not 10
    exp = ExperimentConfig(name="t", search_space=tmp_path / "space.yaml", resources={"synthesis_timeout_s": 2})
    design = Design(None, TrialParams(), exp.hls4ml, exp.resources, 0.0, tmp_path, np.zeros((1, 4)),
                    hls_model=_HangingHlsModel(tmp_path / "prj", "Vivado", None))
    import threading

    other: list[subprocess.Popen] = []  # a process another thread starts meanwhile, elsewhere: not the tool's
    starter = threading.Timer(0.5, lambda: other.append(subprocess.Popen(["sleep", "60"], cwd=tmp_path)))
    starter.start()
    t0 = _time.monotonic()
    try:
        with pytest.raises(ToolFailedError, match=r"vivado_hls did not finish within 2 s \(resources.synthesis_timeout_s"):
            VivadoBackend().measure(design)
        assert _time.monotonic() - t0 < 40
        assert other and other[0].poll() is None  # (the review: every new child of the process was signalled)
    finally:
        starter.join()
        for p in other:
            p.kill()
            p.wait()
    pid = int((tmp_path / "tool.pid").read_text())
    _time.sleep(0.5)
    alive = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True).stdout.strip()
    assert alive in ("", "Z"), alive  # stopped (a zombie at most, until os.system reaps it)
