"""Train one HGQ2 candidate with its beta schedule and bitwidth regularizers."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from dse.config import TrainingConfig, TrialParams
from dse.exceptions import TrainingDivergedError

if TYPE_CHECKING:
    import keras

    from dse.data import Splits

__all__ = ["beta_schedule", "set_graph_optimizer", "train_model"]


def beta_schedule(params: TrialParams, epochs: int) -> list[tuple[int, float, str]]:
    """Key points for HGQ2's ``PieceWiseSchedule``: beta at epoch 0, ``beta_end`` at the last epoch.

    A ``log`` ramp from beta 0 is impossible, so it falls back to ``linear``.
    """
    if params.beta_end is None or params.beta_schedule == "constant":
        return [(0, params.beta, "constant")]
    interp = params.beta_schedule
    if interp == "log" and (params.beta == 0 or params.beta_end == 0):
        interp = "linear"
    return [(0, params.beta, interp), (max(epochs - 1, 1), params.beta_end, "constant")]


def set_graph_optimizer(enabled: bool) -> None:
    """Turn TensorFlow's graph optimizer (Grappler) on or off in this process.

    ``tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": not enabled})``.
    Set before TensorFlow's eager context is initialized (a worker's first trial sets it next to
    the thread counts, before the model is built), it applies to everything the process runs;
    set later, only to functions traced from then on (Keras' train and test steps of the next
    ``fit``). Off from the start, a quickstart trial's ``fit`` (one thread; medians of 8 fits in
    2 processes per setting) took 3.5 s instead of 4.0 s at 15 epochs and 6.6 s instead of 7.9 s
    at 60: each epoch after the first (which traces the steps) 0.065-0.071 s instead of
    0.087-0.090 s. Turned off after a first ``fit``, only the first epoch gains. Losses, accuracies and EBOPs are the same at every
    epoch to the last bit (``benchmarks/training_speed.py``).
    """
    import tensorflow as tf

    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": not enabled})


def train_model(
    model: "keras.Model", splits: "Splits", cfg: TrainingConfig, params: TrialParams, seed: int, extra_callbacks: list | None = None,
) -> dict[str, list[float]]:
    """Compile and fit ``model`` (Adam, sparse categorical cross-entropy on logits).

    Applies ``cfg.graph_optimizer`` (:func:`set_graph_optimizer`; a trial's worker sets it
    earlier, before the model is built, so that it applies in full).
    The loss includes ``beta * EBOPs``, so it may rise while accuracy improves.
    ``extra_callbacks`` run after HGQ2's ``FreeEBOPs`` and ``BetaScheduler``, so they see
    ``logs["ebops"]`` at each epoch's end (e.g. HGQ2's ``ParetoFront``).

    Returns:
        Keras history: per-epoch ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``, ``ebops``.

    Raises:
        TrainingDivergedError: the loss became NaN or infinite.
    """
    import keras
    from hgq.utils.sugar import BetaScheduler, FreeEBOPs, PieceWiseSchedule

    set_graph_optimizer(cfg.graph_optimizer)
    keras.utils.set_random_seed(seed)
    lr = params.learning_rate or cfg.learning_rate
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    callbacks = [
        FreeEBOPs(),
        BetaScheduler(PieceWiseSchedule(beta_schedule(params, cfg.epochs))),
        keras.callbacks.TerminateOnNaN(),
        *(extra_callbacks or []),
    ]
    hist = model.fit(
        splits.X_train,
        splits.y_train,
        validation_data=(splits.X_val, splits.y_val),
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        callbacks=callbacks,
        verbose=0,
    )
    history = {k: [float(x) for x in v] for k, v in hist.history.items()}
    losses = history.get("loss", [])
    if not losses or not all(math.isfinite(x) for x in losses):
        raise TrainingDivergedError(
            f"training diverged: loss became {losses[-1] if losses else 'undefined'} at epoch {len(losses)} "
            f"(learning_rate={lr}, beta={params.beta}); lower the learning rate or beta"
        )
    return history
