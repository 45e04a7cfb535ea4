"""One shared test runs against every resource backend; then each backend's own figures."""

import shutil

import numpy as np
import pytest

from dse.exceptions import ToolNotFoundError
from dse.resources import DSP_LUT_EQUIVALENT, Design, backend_names, count_dsp_multiplications, figure_backend, get_backend, sources

#: executable each tool-driven backend needs
_TOOLS = {"yosys": "yosys", "vivado": "vivado_hls", "vitis": "vitis-run"}


@pytest.fixture(scope="module")
def design(trained_design_parts, digits_splits, tmp_path_factory):
    exp, params, model, ebops = trained_design_parts
    return Design(model, params, exp.hls4ml, exp.resources, ebops, tmp_path_factory.mktemp("work"), digits_splits.X_test)


@pytest.fixture(scope="module")
def measured(design):
    """``measured(name)``: backend ``name``'s report of the module's design, measured once (Yosys takes about 15 s and
    two tests read its report)."""
    reports = {}

    def measure(name):
        if name not in reports:
            reports[name] = get_backend(name).measure(design)
        return reports[name]

    return measure


@pytest.mark.parametrize("name", backend_names())
def test_every_backend_returns_sourced_figures(design, measured, name):
    tool = _TOOLS.get(name)
    if tool and shutil.which(tool) is None:
        with pytest.raises(ToolNotFoundError, match=tool):
            get_backend(name).measure(design)
        return
    report = measured(name)
    assert report.backend == name
    assert report.figures["lut"].value > 0
    assert report.figures["dsp"].value == 0  # distributed arithmetic uses no DSP
    for metric, fig in report.figures.items():
        # a figure the backend reads off the design carries the source that computed it (Yosys' latency: da4ml's stages)
        own = type(get_backend(name)).sources if metric not in type(get_backend(name)).derived_figures else ("da4ml",)
        assert fig.source in sources() and fig.source in own, (metric, fig.source)
        assert report.source_tags()[f"{metric}_source"] == fig.source
    assert report.seconds >= 0


def test_ebops_relation(design):
    from dataclasses import replace

    from dse.config import TrialParams

    da = get_backend("ebops").measure(design)
    assert da.figures["lut"].value == design.ebops  # LUT ~ EBOPs for distributed arithmetic
    # Latency strategy with a low DSP threshold: LUT + 55 DSP == EBOPs (the HGQ docs' relation)
    lat = replace(design, params=TrialParams(strategy="Latency"), resources=design.resources.model_copy(update={"dsp_threshold_bits": 2}))
    r = get_backend("ebops").measure(lat)
    per_layer = count_dsp_multiplications(design.model, 2)
    n_dsp = sum(per_layer)
    assert len(per_layer) == 2 and r.figures["dsp"].value == n_dsp > 0
    assert r.figures["lut"].value == max(design.ebops - DSP_LUT_EQUIVALENT * n_dsp, 0)
    res = get_backend("ebops").measure(replace(lat, params=TrialParams(strategy="Resource", reuse_factor=4)))
    assert res.figures["dsp"].value == sum(np.ceil(n / 4) for n in per_layer)
    # the LUTs do not grow with the ReuseFactor: the wide multiplications leave them whole, however many DSPs share them
    # (probe 23: EBOPs - 55 * DSP rose 31x from ReuseFactor 1 to 8)
    assert res.figures["lut"].value == r.figures["lut"].value
    # a weight that quantizes to 0 has no multiplier, whatever its bitwidth (probe 23: counted where bits were shared)
    # and its EBOPs are no LUTs: zeroing a layer lowers the LUT figure (the review: with the zeros left out of the wide
    # multiplications but not of the EBOPs, it rose 2.5x)
    from dse.resources import zero_weight_ebops

    first = [layer for layer in design.model.layers if hasattr(layer, "qkernel")][0]
    saved = np.asarray(first.kernel)
    try:
        first.kernel.assign(np.zeros_like(saved))
        assert count_dsp_multiplications(design.model, 2) == [0, per_layer[1]]
        zeroed = get_backend("ebops").measure(replace(lat, ebops=design.ebops))  # the same EBOPs, as HGQ2 counts bitwidths
        assert zero_weight_ebops(design.model) > 0 and zeroed.figures["lut"].value <= r.figures["lut"].value
    finally:
        first.kernel.assign(saved)
    # per-layer ReuseFactors divide each layer's DSP count by its own factor
    mixed = get_backend("ebops").measure(replace(lat, params=TrialParams(strategy="Resource", reuse_factor=4, layer_reuse_factors=(1, 4))))
    assert mixed.figures["dsp"].value == per_layer[0] + np.ceil(per_layer[1] / 4)


def test_figure_backend_rule():
    """auto: da4ml for distributed_arithmetic, the EBOPs estimate for Latency/Resource; a named backend where it applies."""
    assert figure_backend("distributed_arithmetic", "auto") == "da4ml"
    assert figure_backend("Latency", "auto") == figure_backend("Resource", "auto") == "ebops"
    assert figure_backend("distributed_arithmetic", "ebops") == "ebops"
    assert figure_backend("Latency", "yosys") == "ebops" and figure_backend("distributed_arithmetic", "yosys") == "yosys"
    assert figure_backend("Resource", "vitis") == "vitis"


def test_da4ml_cost_latency_and_bit_exact(design):
    r = get_backend("da4ml").measure(design)
    assert r.figures["lut"].source == "da4ml"
    assert r.extras["da4ml_bit_exact_fraction"] == 1.0
    assert r.figures["latency_cycles"].value >= 1
    assert 0 < r.extras["da4ml_cost"] <= design.ebops  # EBOPs is an upper bound on DA LUTs


def test_yosys_synthesizes_da4ml_rtl(design, measured):
    """Real Yosys synthesis (yosys is installed by scripts/setup.sh): LUT > 0, no DSP, da4ml within 10%."""
    assert shutil.which("yosys"), "yosys must be installed for this test (scripts/setup.sh installs it)"
    y = measured("yosys")
    d = measured("da4ml")
    assert y.figures["lut"].source == "yosys" and y.figures["lut"].value > 0
    assert y.figures["dsp"].value == 0 and y.figures["ff"].value > 0
    assert abs(d.figures["lut"].value - y.figures["lut"].value) / y.figures["lut"].value < 0.10
    assert y.figures["latency_cycles"].value == d.figures["latency_cycles"].value
    # the same computation, labelled as such (probe 31: tagged yosys, so `dse compare` called two equal figures
    # "not comparable" and the export credited Yosys with a latency it does not time)
    assert y.figures["latency_cycles"].source == d.figures["latency_cycles"].source == "da4ml"
    assert (design.work_dir / "yosys" / "yosys.log").is_file()
    # Yosys's INV cells, which lut (LUT1-6) leaves out, are recorded beside it (probe 43: 162 INV beside 3,447 LUTs,
    # counted nowhere before): the count in the log's last stat block
    import re

    stat = (design.work_dir / "yosys" / "yosys.log").read_text().split("Number of cells:")[-1]
    inv = re.search(r"^\s+INV\s+(\d+)", stat, re.M)
    assert y.extras["inv"] == (int(inv.group(1)) if inv else 0), stat[:2000]


def test_unknown_backend_named():
    with pytest.raises(ValueError, match="unknown resource backend 'vivid'; known: ebops, da4ml, yosys, vivado, vitis"):
        get_backend("vivid")


def test_precise_backends_exclude_the_estimate():
    from dse.resources import precise_backend_class, precise_backend_names

    assert precise_backend_names() == ["da4ml", "yosys", "vivado", "vitis"]
    assert precise_backend_class("yosys").name == "yosys"
    with pytest.raises(ValueError, match="'ebops' is the estimate every trial already carries"):
        precise_backend_class("ebops")
    # the estimate is no choice for a re-measurement, so an unknown name is not told it is one (before: "known: ebops, ...")
    with pytest.raises(ValueError, match="unknown resource backend 'vivid'; the precise ones are: da4ml, yosys, vivado, vitis$"):
        precise_backend_class("vivid")


def test_yosys_stat_parser_and_family():
    from dse.exceptions import MeasurementError
    from dse.resources import parse_yosys_stat, yosys_family

    log = """
=== dse_top ===

   Number of wires:                 10
   Number of cells:                 17
     CARRY8                          2
     FDRE                            5
     LUT2                            3
     LUT6                            4
     MUXF7                           1
     DSP48E2                         2

"""
    cells = parse_yosys_stat(log)
    assert (cells["LUT"], cells["FF"], cells["CARRY"], cells["MUX"], cells["DSP"]) == (7, 5, 2, 1, 2)
    with pytest.raises(MeasurementError, match="no 'stat' output"):
        parse_yosys_stat("ERROR: syntax error")
    assert yosys_family("xcvu13p-flga2577-2-e") == "xcup"
    assert yosys_family("xczu7ev-ffvc1156-2-e") == "xcup"
    assert yosys_family("xcku115-flvb2104-2-e") == "xcu"
    assert yosys_family("xc7z020clg400-1") == "xc7"
    with pytest.raises(MeasurementError, match="hls4ml.part 'agfb014r24a2e2v'"):
        yosys_family("agfb014r24a2e2v")


def test_keras_outputs_equal_predict(design):
    """The eager, batched forward pass gives Keras ``predict``'s numbers exactly, in any batch size."""
    from dse.resources import keras_outputs

    x = design.x_test
    ref = np.asarray(design.model.predict(x, verbose=0))
    for batch in (4096, 7):  # one call; many calls and a ragged last batch
        got = keras_outputs(design.model, x, batch_size=batch)
        assert got.shape == ref.shape and np.array_equal(got, ref)
    assert keras_outputs(design.model, x[:0]).shape == (0, ref.shape[1])
    from dataclasses import replace

    fresh = replace(design, keras_out=None)
    assert np.array_equal(fresh.reference_outputs(), ref) and fresh.keras_out is not None


def test_yosys_leaves_nothing_in_the_home_folder(tmp_path, monkeypatch):
    """Probe 40: each synthesis left an empty ~/.yosys_history in the user's home (yosys writes its shell history at exit)."""
    from dse.resources._yosys import run_yosys

    assert shutil.which("yosys"), "yosys must be installed for this test (scripts/setup.sh installs it)"
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir(), work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    (work / "top.v").write_text("module top(input [3:0] a, input [3:0] b, output [3:0] y); assign y = a & b; endmodule\n")
    log = run_yosys([work / "top.v"], "top", "xc7", work, timeout_s=120)
    assert "LUT" in log and list(home.iterdir()) == []
