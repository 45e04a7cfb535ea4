"""The hls4ml adapter and the Strategy/ReuseFactor checks made before training."""

import hls4ml
import pytest

from dse.config import Hls4mlConfig, ModelConfig, TrialParams
from dse.exceptions import InvalidHlsConfigError
from dse.trial import beta_schedule, check_hls_settings, hls4ml_config, layer_sizes, valid_reuse_factors

SIZES = layer_sizes(ModelConfig(hidden=[32, 16]), 64, 10)


def test_layer_sizes():
    assert SIZES == [(64, 32), (32, 16), (16, 10)]


def test_valid_reuse_factors_are_hls4mls():
    backend = hls4ml.backends.get_backend("Vitis")
    assert valid_reuse_factors(64, 32) == backend.get_valid_reuse_factors(64, 32)
    assert 3 not in valid_reuse_factors(64, 32) and 4 in valid_reuse_factors(64, 32)


@pytest.mark.parametrize(
    "params, expected",
    [
        (TrialParams(strategy="Latency", reuse_factor=2), "Strategy Latency needs ReuseFactor 1, got 2"),
        (TrialParams(strategy="distributed_arithmetic", reuse_factor=4), "Strategy distributed_arithmetic needs ReuseFactor 1"),
        (TrialParams(strategy="Resource", reuse_factor=3), "ReuseFactor 3 is not valid for a 64x32 Dense layer"),
    ],
)
def test_invalid_combinations_refused(params, expected):
    with pytest.raises(InvalidHlsConfigError) as info:
        check_hls_settings(params, SIZES, Hls4mlConfig())
    assert expected in str(info.value)


def test_valid_combinations_pass():
    for p in (TrialParams(strategy="Resource", reuse_factor=4), TrialParams(strategy="Latency"), TrialParams(strategy="distributed_arithmetic")):
        check_hls_settings(p, SIZES, Hls4mlConfig())
    with pytest.raises(InvalidHlsConfigError, match="io_parallel"):
        check_hls_settings(TrialParams(strategy="distributed_arithmetic"), SIZES, Hls4mlConfig(io_type="io_stream"))


def test_hls4ml_config_carries_strategy_and_reuse(trained_design_parts):
    _, _, model, _ = trained_design_parts
    cfg = hls4ml_config(model, TrialParams(strategy="Resource", reuse_factor=2), Hls4mlConfig())
    assert cfg["Model"]["Strategy"] == "Resource" and cfg["Model"]["ReuseFactor"] == 2
    dense = [v for v in cfg["LayerName"].values() if "ReuseFactor" in v]
    assert dense and all(v["ReuseFactor"] == 2 for v in dense)


def test_beta_schedule():
    assert beta_schedule(TrialParams(beta=1e-5), 10) == [(0, 1e-5, "constant")]
    assert beta_schedule(TrialParams(beta=1e-6, beta_end=1e-4), 10) == [(0, 1e-6, "log"), (9, 1e-4, "constant")]
    assert beta_schedule(TrialParams(beta=0.0, beta_end=1e-4), 10)[0] == (0, 0.0, "linear")
