"""The HGQ2 model a trial trains: which quantities share a bitwidth under each granularity."""

import pytest

from dse.config import Hls4mlConfig, ModelConfig, TrainingConfig, TrialParams
from dse.trial import build_model, hls4ml_config, train_model


def _bit_shapes(layer) -> dict[str, tuple]:
    """The shape of the bitwidths of a QDense layer's quantizers: kernel (kq), bias (bq), input (iq)."""
    import numpy as np

    return {q: np.shape(getattr(layer, q).quantizer.bits) for q in ("kq", "bq", "iq")}


@pytest.mark.parametrize(("granularity", "kernel", "bias"), [
    ("per-weight", (64, 8), (8,)),
    ("per-channel", (1, 8), (8,)),
    ("per-layer", (1, 1), (1,)),  # before 2026-12-07 the biases stayed per-element, (8,)
])
def test_weight_granularity_sets_the_kernels_and_the_biases_bitwidths(granularity, kernel, bias):
    model = build_model(ModelConfig(hidden=[8]), TrialParams(strategy="Latency", weight_granularity=granularity), 64, 10)
    shapes = _bit_shapes(model.get_layer("dense_0"))
    assert shapes["kq"] == kernel and shapes["bq"] == bias, shapes
    assert shapes["iq"] == (1, 64)  # activations per feature (the default), whatever the weights' granularity


def test_a_per_layer_design_has_one_bias_type_per_layer_and_is_bit_exact(digits_splits, tmp_path):
    """Per-layer weights: each layer's biases hold one trained bitwidth, and the C simulation equals the model."""
    import numpy as np
    from hgq.utils import trace_minmax

    from dse.trial._hls import convert_and_compile

    params = TrialParams(strategy="Latency", weight_granularity="per-layer", weight_l1=1e-3)
    model = build_model(ModelConfig(hidden=[8]), params, 64, 10)
    train_model(model, digits_splits, TrainingConfig(epochs=1), params, seed=0)
    for layer in (model.get_layer("dense_0"), model.get_layer("logits")):
        bits = np.asarray(layer.bq.quantizer.bits)
        assert bits.size == 1, (layer.name, bits)  # before: one bitwidth per bias
    trace_minmax(model, digits_splits.X_train)
    hls = Hls4mlConfig()
    hls_model = convert_and_compile(model, hls4ml_config(model, params, hls), hls, tmp_path / "prj")
    x = np.ascontiguousarray(digits_splits.X_test[:200])
    ref = model.predict(x, verbose=0)
    np.testing.assert_array_equal(hls_model.predict(x).reshape(ref.shape), ref)
