"""Training with and without TensorFlow's graph optimizer (Grappler): same numbers, the option applied."""

from __future__ import annotations

import pytest

from dse.config import ModelConfig, TrainingConfig, TrialParams
from dse.trial._model import build_model
from dse.trial._train import train_model


def _fit(splits, graph_optimizer: bool) -> dict[str, list[float]]:
    import keras

    params = TrialParams(beta=1e-6, beta_end=1e-4, weight_bits=5, activation_bits=5)
    cfg = TrainingConfig(epochs=3, batch_size=128, learning_rate=0.01, graph_optimizer=graph_optimizer)
    keras.utils.set_random_seed(5)
    model = build_model(ModelConfig(hidden=[8]), params, splits.n_features, splits.n_classes)
    try:
        return train_model(model, splits, cfg, params, seed=5)
    finally:
        keras.backend.clear_session()


@pytest.mark.parametrize("first", [False, True])
def test_graph_optimizer_is_applied_and_changes_no_number(digits_splits, first: bool) -> None:
    import tensorflow as tf

    a = _fit(digits_splits, first)
    assert tf.config.optimizer.get_experimental_options().get("disable_meta_optimizer", False) is (not first)
    b = _fit(digits_splits, not first)
    assert tf.config.optimizer.get_experimental_options().get("disable_meta_optimizer", False) is first
    assert set(a) >= {"loss", "accuracy", "val_accuracy", "ebops"}
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "ebops"):
        assert a[key] == b[key], key  # the same to the last bit, either order


def test_training_default_keeps_tensorflows_graph_optimizer() -> None:
    assert TrainingConfig().graph_optimizer is True
