"""A study written through dse.store and dse.tracking without training anything (for report tests and timing).

Trials are asked from Optuna and sampled from the tiny search space exactly as ``dse run`` does;
their metrics are made up from the parameters (a smooth accuracy/EBOPs trade-off) and logged to
a real MLflow store with per-epoch curves, so every part of the report has data.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import optuna

from tests.conftest import write_experiment


def make_study(tmp: Path, n_trials: int = 50, name: str = "synth", seed: int = 0, epochs: int = 5, *,
               failures: bool = True, lut_source: str = "ebops-estimate", constraints: list[dict] | None = None,
               objectives: list[dict] | None = None, csim_sources: tuple[str, ...] = (), carry_inactive: bool = False,
               **fields):
    """Returns ``(study, storage_url, experiment)``; about 15 % of trials fail as diverged (none when not ``failures``).

    ``fields`` override the experiment's other fields (e.g. ``run_dir``, ``storage``).

    ``lut_source`` is the ``lut_source`` tag of every completed trial (as if ``resources.backend``
    were that backend); ``constraints`` are the experiment's (each trial's constraint values recorded);
    ``objectives`` replace the default (csim_accuracy, lut); ``csim_sources``, where given, are the completed trials'
    ``csim_accuracy_source`` tags in turn (``csim``, ``da4ml``, ``keras``; none by default, as a dse before that tag).
    ``carry_inactive``: every parameter drawn in every trial, as ``dse run`` draws them for NSGA-II.
    """
    from dse.config import load_experiment
    from dse.store import StudyRecords, record_trial_params, record_trial_result, record_trial_run
    from dse.study._storage import open_study
    from dse.tracking import StudyTracker, TrialRunLogger
    from dse.trial import resolve_reuse_factors

    exp, space = load_experiment(write_experiment(tmp, name=name, n_trials=n_trials, seed=seed, training={"epochs": epochs},
                                                 constraints=constraints or [],
                                                 **({"objectives": objectives} if objectives else {}), **fields))
    run_dir = exp.resolved_run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    study = open_study(exp, optuna.samplers.RandomSampler(seed=seed))
    records = StudyRecords(study)
    tracker = StudyTracker(exp.tracking_uri, exp.name, artifact_location=(run_dir / "mlartifacts").as_uri())
    parent = tracker.study_run(exp.name, exp.model_dump(mode="json"))
    records.set_tracking(parent, exp.tracking_uri)
    records.save_experiment(exp, space)
    rng = np.random.default_rng(seed)
    for _ in range(n_trials):
        trial = study.ask()
        params, pinned = space.suggest(trial, carry_inactive=carry_inactive)
        params = resolve_reuse_factors(params, [(64, 8), (8, 10)], exp.hls4ml)
        record_trial_params(trial, params, pinned)
        run_id = tracker.trial_run(parent, exp.name, trial.number, params, sorted(pinned))
        record_trial_run(trial, run_id)
        logger = TrialRunLogger(exp.tracking_uri, run_id)
        secs = float(rng.uniform(20, 60))
        if failures and params.learning_rate == 1e30 and rng.random() < 0.3:
            msg = "TrainingDivergedError: training diverged: loss became nan at epoch 1"
            logger.log_metrics({"seconds_total": secs})
            record_trial_result(trial, {"seconds_total": secs}, {}, fail_reason=msg)
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            tracker.finish_trial_run(run_id, "FAIL", msg)
            continue
        ebops = 2000.0 * params.weight_bits * (1 + rng.random()) / (1 + 1e5 * params.beta)
        acc = float(np.clip(0.97 - 2.0 / math.sqrt(ebops) - 0.02 * rng.random(), 0.1, 1.0))
        dsp = 0.0 if params.strategy == "Latency" else float(rng.integers(0, 5))
        metrics = {
            "ebops": ebops, "lut": ebops - 55 * dsp, "dsp": dsp, "keras_accuracy": acc, "csim_accuracy": acc,
            "keras_val_accuracy": acc, "csim_val_accuracy": acc,  # the same: the fronts do not depend on the split
            "bit_exact_fraction": 1.0, "seconds_total": secs,
        }
        tags = {"lut_source": lut_source, "dsp_source": "ebops-estimate", "strategy": params.strategy}
        if csim_sources:
            tags["csim_accuracy_source"] = csim_sources[trial.number % len(csim_sources)]
        logger.log_metrics(metrics)
        logger.log_history({
            "accuracy": [acc * (1 - 0.5 ** (e + 1)) for e in range(epochs)],
            "val_accuracy": [acc * (1 - 0.6 ** (e + 1)) for e in range(epochs)],
            "ebops": [ebops * (1 + 2 * 0.5 ** e) for e in range(epochs)],
            "beta": [params.beta] * epochs,
        })
        logger.set_tags(tags)
        record_trial_result(trial, metrics, tags, constraints=exp.constraints)
        study.tell(trial, [metrics[o.metric] for o in exp.objectives])
        tracker.finish_trial_run(run_id, "COMPLETE")
    tracker.end_study_run(parent)
    return study, exp.storage_url, exp
