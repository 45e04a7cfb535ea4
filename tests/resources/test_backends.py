"""One shared test runs against every resource backend; then each backend's own figures."""

import numpy as np
import pytest

from dse.resources import SOURCES, DSP_LUT_EQUIVALENT, Design, count_dsp_multiplications, get_backend


@pytest.fixture(scope="module")
def design(trained_design_parts, digits_splits, tmp_path_factory):
    exp, params, model, ebops = trained_design_parts
    return Design(model, params, exp, ebops, tmp_path_factory.mktemp("work"), digits_splits.X_test)


@pytest.mark.parametrize("name", ["ebops", "da4ml"])
def test_every_backend_returns_sourced_figures(design, name):
    report = get_backend(name).measure(design)
    assert report.backend == name
    assert report.figures["lut"].value > 0
    assert report.figures["dsp"].value == 0  # distributed arithmetic uses no DSP
    for metric, fig in report.figures.items():
        assert fig.source in SOURCES
        assert report.source_tags()[f"{metric}_source"] == fig.source
    assert report.seconds >= 0


def test_ebops_relation(design):
    from dataclasses import replace

    from dse.config import TrialParams

    da = get_backend("ebops").measure(design)
    assert da.figures["lut"].value == design.ebops  # LUT ~ EBOPs for distributed arithmetic
    # Latency strategy with a low DSP threshold: LUT + 55 DSP == EBOPs (the HGQ docs' relation)
    exp = design.experiment.model_copy(update={"resources": design.experiment.resources.model_copy(update={"dsp_threshold_bits": 2})})
    lat = replace(design, params=TrialParams(strategy="Latency"), experiment=exp)
    r = get_backend("ebops").measure(lat)
    n_dsp = count_dsp_multiplications(design.model, 2)
    assert r.figures["dsp"].value == n_dsp > 0
    assert r.figures["lut"].value == max(design.ebops - DSP_LUT_EQUIVALENT * n_dsp, 0)
    res = get_backend("ebops").measure(replace(lat, params=TrialParams(strategy="Resource", reuse_factor=4)))
    assert res.figures["dsp"].value == np.ceil(n_dsp / 4)


def test_da4ml_cost_latency_and_bit_exact(design):
    r = get_backend("da4ml").measure(design)
    assert r.figures["lut"].source == "da4ml"
    assert r.extras["da4ml_bit_exact_fraction"] == 1.0
    assert r.figures["latency_cycles"].value >= 1
    assert 0 < r.extras["da4ml_cost"] <= design.ebops  # EBOPs is an upper bound on DA LUTs


def test_unknown_backend_named():
    with pytest.raises(ValueError, match="unknown resource backend 'vivid'; known: ebops, da4ml"):
        get_backend("vivid")
