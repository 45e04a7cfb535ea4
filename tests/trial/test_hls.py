"""The hls4ml adapter and the Strategy/ReuseFactor checks made before training."""

import hls4ml
import pytest

from dse.config import Hls4mlConfig, ModelConfig, TrialParams
from dse.exceptions import InvalidHlsConfigError, SearchSpaceError
from dse.trial import beta_schedule, check_hls_settings, check_reuse_factor_choices, hls4ml_config, layer_sizes, resolve_reuse_factors, valid_reuse_factors

SIZES = layer_sizes(ModelConfig(hidden=[32, 16]), 64, 10)


def test_layer_sizes():
    assert SIZES == [(64, 32), (32, 16), (16, 10)]


@pytest.mark.parametrize("backend_name", ["Vitis", "Vivado"])
def test_valid_reuse_factors_are_hls4mls(backend_name):
    """hls4ml's own list, for shapes with few and many divisors, primes and n_in < / = / > n_out."""
    backend = hls4ml.backends.get_backend(backend_name)
    for n_in, n_out in [(64, 32), (32, 64), (13, 7), (1, 1), (1, 10), (10, 1), (36, 36), (97, 12), (120, 90), (784, 100)]:
        assert valid_reuse_factors(n_in, n_out, backend_name) == backend.get_valid_reuse_factors(n_in, n_out), (n_in, n_out)
    assert 3 not in valid_reuse_factors(64, 32) and 4 in valid_reuse_factors(64, 32)
    # probe 33: NumPy shapes give Python ints, a layer without inputs and an unknown backend are named (before: [],
    # np.int64 members, a raw KeyError)
    import numpy as np

    assert all(type(v) is int for v in valid_reuse_factors(np.int64(64), np.int64(32), backend_name))
    for n_in, n_out, name, match in ((0, 4, backend_name, "must be whole numbers >= 1, got 0 x 4"),
                                     (4, 4, "Quartus2", "backend 'Quartus2' is no hls4ml backend")):
        with pytest.raises(ValueError, match=match):
            valid_reuse_factors(n_in, n_out, name)


def test_valid_reuse_factors_of_a_huge_layer():
    """A 20000 x 20000 Dense layer (hls4ml's loop over 4e8 integers took over a minute in `dse check`): hls4ml's rule on the divisors."""
    backend = hls4ml.backends.get_backend("Vitis")
    valid = valid_reuse_factors(20000, 20000)
    assert valid[0] == 1 and valid == sorted(valid) and 20000 in valid and 3 not in valid
    assert all(backend._validate_reuse_factor(20000, 20000, rf) for rf in valid)
    assert not any(backend._validate_reuse_factor(20000, 20000, rf) for rf in (3, 7, 19999, 20001))


@pytest.mark.parametrize(
    "params, expected",
    [
        (TrialParams(strategy="Latency", reuse_factor=2), "Strategy Latency needs ReuseFactor 1, got 2"),
        (TrialParams(strategy="distributed_arithmetic", reuse_factor=4), "Strategy distributed_arithmetic needs ReuseFactor 1"),
        (TrialParams(strategy="Resource", reuse_factor=3), "ReuseFactor 3 is not valid for a 64x32 Dense layer"),
        (TrialParams(strategy="Latency", activation_granularity="per-feature"), "io_stream supports only per-layer activation"),
    ],
)
def test_invalid_combinations_refused(params, expected):
    io = "io_stream" if "io_stream" in expected else "io_parallel"
    with pytest.raises(InvalidHlsConfigError) as info:
        check_hls_settings(params, SIZES, Hls4mlConfig(io_type=io))
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


def test_reuse_factor_resolved_per_layer():
    """13 features, 3 classes: 2, 4, 8 are invalid for the 13x32 layer; each layer takes the largest valid one not above."""
    sizes = layer_sizes(ModelConfig(hidden=[32, 16]), 13, 3)
    assert 2 not in valid_reuse_factors(13, 32)
    p = resolve_reuse_factors(TrialParams(strategy="Resource", reuse_factor=8), sizes, Hls4mlConfig())
    assert p.reuse_factor == 8
    assert p.layer_reuse_factors == tuple(max(v for v in valid_reuse_factors(a, b) if v <= 8) for a, b in sizes)
    assert p.layer_reuse_factors[0] == 1 and p.layer_reuse_factors[1] == 8
    check_hls_settings(p, sizes, Hls4mlConfig())  # every layer valid now
    check_reuse_factor_choices([1, 2, 4, 8], sizes, Hls4mlConfig())  # the default space is accepted
    with pytest.raises(SearchSpaceError, match=r"none of \[3, 5\] is a valid hls4ml ReuseFactor for the 13x32 Dense layer"):
        check_reuse_factor_choices([3, 5], sizes, Hls4mlConfig())


def test_hls4ml_config_per_layer_reuse(trained_design_parts):
    _, _, model, _ = trained_design_parts
    cfg = hls4ml_config(model, TrialParams(strategy="Resource", reuse_factor=4, layer_reuse_factors=(2, 4)), Hls4mlConfig())
    assert cfg["LayerName"]["dense_0"]["ReuseFactor"] == 2 and cfg["LayerName"]["logits"]["ReuseFactor"] == 4
    assert cfg["LayerName"]["dense_0_relu"]["ReuseFactor"] == 2
    assert cfg["Model"]["ReuseFactor"] == 2


def test_beta_schedule():
    assert beta_schedule(TrialParams(beta=1e-5), 10) == [(0, 1e-5, "constant")]
    assert beta_schedule(TrialParams(beta=1e-6, beta_end=1e-4), 10) == [(0, 1e-6, "log"), (9, 1e-4, "constant")]
    assert beta_schedule(TrialParams(beta=0.0, beta_end=1e-4), 10)[0] == (0, 0.0, "linear")
    # and the recorded parameters say so (before: beta_schedule log, while the ramp trained linear)
    assert TrialParams(beta=0.0, beta_end=1e-4).beta_schedule == "linear"
    assert TrialParams(beta=1e-6, beta_end=0.0, beta_schedule="log").beta_schedule == "linear"
    assert TrialParams(beta=0.0, beta_end=1e-4, beta_schedule="constant").beta_schedule == "constant"
    # no ramp: constant, recorded so (probe 20: `log` was recorded for a constant beta, and a constant schedule
    # kept a beta_end it never reached)
    assert TrialParams(beta=0.0).beta_schedule == "constant" and TrialParams(beta=1e-5).beta_schedule == "constant"
    held = TrialParams(beta=1e-5, beta_end=1e-3, beta_schedule="constant")
    assert held.beta_end is None and beta_schedule(held, 10) == [(0, 1e-5, "constant")]
    assert TrialParams(beta=1e-5, beta_end=1e-3, beta_schedule="linear").beta_end == 1e-3


def test_io_stream_conversion_is_bit_exact(digits_splits, tmp_path):
    """IOType io_stream (per-layer activation bitwidths): C simulation equals the Keras model."""
    import numpy as np
    from hgq.utils import trace_minmax

    from dse.config import TrainingConfig
    from dse.trial import build_model, train_model
    from dse.trial._hls import convert_and_compile

    params = TrialParams(strategy="Latency", activation_granularity="per-layer")
    hls = Hls4mlConfig(io_type="io_stream")
    check_hls_settings(params, layer_sizes(ModelConfig(hidden=[8]), 64, 10), hls)
    model = build_model(ModelConfig(hidden=[8]), params, 64, 10)
    train_model(model, digits_splits, TrainingConfig(epochs=1), params, seed=0)
    trace_minmax(model, digits_splits.X_train)
    hls_model = convert_and_compile(model, hls4ml_config(model, params, hls), hls, tmp_path / "prj")
    x = np.ascontiguousarray(digits_splits.X_test[:200])
    ref = model.predict(x, verbose=0)
    np.testing.assert_array_equal(hls_model.predict(x).reshape(ref.shape), ref)


def test_fifo_depth_optimization_needs_stream_and_tools(tmp_path):
    from dse.config import load_experiment
    from dse.exceptions import ConfigError
    from dse.study import run_study
    from tests.conftest import write_experiment

    with pytest.raises(ConfigError, match="hls4ml.fifo_depth_optimization sizes io_stream FIFOs; set hls4ml.io_type: io_stream"):
        load_experiment(write_experiment(tmp_path / "a", hls4ml={"fifo_depth_optimization": True}))
    exp, space = load_experiment(
        write_experiment(tmp_path / "b", hls4ml={"fifo_depth_optimization": True, "io_type": "io_stream"})
    )
    with pytest.raises(ConfigError, match="needs 'vitis-run' on PATH, which is not there"):
        run_study(exp, space, progress=False)


def _tiny_converted(digits_splits, out, strategy="Latency"):
    from hgq.utils import trace_minmax

    from dse.config import TrainingConfig
    from dse.trial import build_model, train_model
    from dse.trial._hls import convert

    params = TrialParams(strategy=strategy)
    hls = Hls4mlConfig()
    model = build_model(ModelConfig(hidden=[8]), params, 64, 10)
    train_model(model, digits_splits, TrainingConfig(epochs=1), params, seed=0)
    trace_minmax(model, digits_splits.X_train)
    return model, convert(model, hls4ml_config(model, params, hls), hls, out)


def test_unity_build_equals_hls4mls_build(digits_splits, tmp_path):
    """The one-call C simulation build gives the same outputs as hls4ml's build_lib.sh, and leaves no extra source behind."""
    import numpy as np

    from dse.trial._hls import _UNITY_SOURCE, compile_model, release

    x = np.ascontiguousarray(digits_splits.X_test[:300])
    model, unity = _tiny_converted(digits_splits, tmp_path / "unity")
    compile_model(unity, build="unity")
    lib_path = unity._top_function_lib._name
    got = np.asarray(unity.predict(x))
    release(unity)
    from dse.trial._hls import convert

    hls = Hls4mlConfig()
    ref_prj = convert(model, hls4ml_config(model, TrialParams(strategy="Latency"), hls), hls, tmp_path / "hls4ml")
    compile_model(ref_prj, build="hls4ml")
    ref = np.asarray(ref_prj.predict(x))
    release(ref_prj)
    assert lib_path.startswith(str((tmp_path / "unity" / "firmware").resolve()))
    assert not (tmp_path / "unity" / _UNITY_SOURCE).exists()
    keras_out = model.predict(x, verbose=0)
    np.testing.assert_array_equal(got.reshape(keras_out.shape), keras_out)
    np.testing.assert_array_equal(got, ref)


def test_broken_csim_source_names_gxx_and_falls_back(digits_splits, tmp_path, caplog):
    """A C++ error: build_csim_library raises ConversionError quoting g++; compile_model tries hls4ml's build, then raises."""
    from dse.exceptions import ConversionError
    from dse.trial._hls import build_csim_library, compile_model

    _, prj = _tiny_converted(digits_splits, tmp_path / "prj")
    prj.write()
    out = tmp_path / "prj"
    (out / "firmware" / "myproject.cpp").write_text("this is not C++;\n")
    with pytest.raises(ConversionError, match=r"C simulation build failed \(g\+\+ exit"):
        build_csim_library(out, "myproject", prj.config.get_config_value("Stamp"), "-O1")
    prj.write = lambda: None  # keep the broken source: compile_model writes the project first
    with pytest.raises(ConversionError, match="hls4ml compile") as e:
        compile_model(prj, build="unity")
    assert "building with hls4ml's build_lib.sh instead" in caplog.text
    # g++'s own words travel with the error (probe 18: before, only hls4ml's `Failed to compile project "myproject"`,
    # g++'s cause in the worker's log alone)
    assert "; the one-call g++ build before it: C simulation build failed (g++ exit" in str(e.value), str(e.value)
    assert "error" in str(e.value).split("the one-call g++ build before it:", 1)[1]
