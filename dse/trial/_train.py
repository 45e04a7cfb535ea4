"""Train one HGQ2 candidate with its beta schedule and bitwidth regularizers."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from dse.config import TrainingConfig, TrialParams
from dse.exceptions import TrainingDivergedError

if TYPE_CHECKING:
    import keras

    from dse.data import Splits

__all__ = ["beta_schedule", "train_model"]


def beta_schedule(params: TrialParams, epochs: int) -> list[tuple[int, float, str]]:
    """Key points for HGQ2's ``PieceWiseSchedule``: beta at epoch 0, ``beta_end`` at the last epoch.

    A ``log`` ramp from or to beta 0 is impossible: :class:`~dse.config.TrialParams` records such a
    ramp as ``linear`` when it is validated, so the schedule is the recorded one. With one epoch
    there is no last epoch after the first: the key point of ``beta_end`` sits at epoch 1, which
    is never trained, so the trial trains at ``beta`` (``PieceWiseSchedule`` needs two distinct
    key epochs).

    Returns:
        ``(epoch, beta, interpolation to the next key point)`` tuples, epochs ascending: one ``constant`` point
        without a ramp, else the ramp's start and ``(max(epochs - 1, 1), beta_end, "constant")``.
    """
    if params.beta_end is None or params.beta_schedule == "constant":
        return [(0, params.beta, "constant")]
    return [(0, params.beta, params.beta_schedule), (max(epochs - 1, 1), params.beta_end, "constant")]


def train_model(
    model: "keras.Model", splits: "Splits", cfg: TrainingConfig, params: TrialParams, seed: int, extra_callbacks: list | None = None,
) -> dict[str, list[float]]:
    """Compile and fit ``model`` (Adam, sparse categorical cross-entropy on logits).

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
