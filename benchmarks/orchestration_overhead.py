"""Per-trial driver overhead with a trivial trial body: our driver against Ray Tune + OptunaSearch.

Ours is the real :func:`dse.study.run_study` (quickstart experiment and default search space,
NSGA-II, preflight, Optuna storage, MLflow parent and child runs, heartbeats, trials on warm
worker actors, tell) with the trial body swapped for a trivial one that logs its metrics and
tags to the trial's MLflow run from the worker, as a real trial does, and returns fixed
objectives. Trials run one at a time, so the time from one trial's ask to the next one's ask
is the whole per-trial overhead (ask, sampler, records, MLflow run creation, dispatch, the
worker's MLflow logging, tell, closing the run). The curve is the median of that cycle over
windows of 50 trials ending at each point.

Ray Tune: ``Tuner`` with ``OptunaSearch`` (NSGA-II, two objectives, an equivalent 12-parameter
space, Optuna's in-memory storage), ``MLflowLoggerCallback`` (SQLite), ``reuse_actors=True``,
one trial at a time; per-trial cycle from the time each trial body ran (``time.time()`` in the
objective; Tune's own result timestamps are whole seconds).

Ours runs once per Optuna storage (``--storages``): the default SQLite file (WAL mode) and
``storage: journal`` (Optuna's ``JournalFileBackend``, a file in the run directory); MLflow is
the default SQLite store in both.

Usage: python benchmarks/orchestration_overhead.py [--points 50,200,500,1000] [--storages sqlite,journal] [--tune-points 50,200,500] [--skip-tune] [--out FILE]
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, HelpFormatter, TreeCpu, counts, load_note, run_main, use_this_checkout, write_json  # noqa: E402

use_this_checkout()


def trivial_trial(spec, splits):
    """A trial body with no work: log a few metrics and tags to MLflow as a real worker does."""
    from dse.tracking import TrialRunLogger
    from dse.trial import TrialResult

    p = spec.params
    acc = 0.5 + 0.01 * p.weight_bits  # both splits, as a real trial logs them (the objective is csim_val_accuracy)
    metrics = {"csim_val_accuracy": acc, "keras_val_accuracy": acc, "csim_accuracy": acc, "keras_accuracy": acc,
               "lut": 100.0 * p.weight_bits * (1 + p.activation_bits), "ebops": 1000.0, "dsp": 0.0, "seconds_total": 0.0}
    tags = {"strategy": p.strategy, "lut_source": "trivial", "csim": "skipped", "csim_accuracy_source": "keras", "state": "COMPLETE"}
    logger = TrialRunLogger(spec.experiment.tracking_uri, spec.run_id)
    logger.log_results(metrics, tags)
    return TrialResult(spec.number, "COMPLETE", metrics, tags)


def windows(cycles: list[float], points: list[int], width: int = 50) -> dict[int, dict[str, float]]:
    out = {}
    for n in points:
        w = cycles[max(0, n - width - 1): n - 1]
        if w:
            out[n] = {"median_ms": 1000 * statistics.median(w), "min_ms": 1000 * min(w)}
    return out


def run_ours(n: int, root: Path, storage: str) -> dict:
    """Our driver for ``n`` trivial trials with Optuna storage ``"sqlite"`` (the default) or ``"journal"``."""
    from dse.config import load_experiment
    from dse.study import _orchestrator, load_study, run_study

    exp, space = load_experiment(REPO / "experiments" / "quickstart.yaml")
    exp = exp.model_copy(update={
        "name": f"overhead-{storage}", "run_dir": root / f"ours-{storage}", "n_trials": n, "storage": None if storage == "sqlite" else storage,
        "ray": exp.ray.model_copy(update={"max_concurrent_trials": 1, "num_cpus": 2}),
    })
    _orchestrator._execute = trivial_trial  # private hook: the study loop looks it up when it starts
    t0 = time.perf_counter()
    with TreeCpu() as cpu:
        summary = run_study(exp, space, progress=False)
    wall = time.perf_counter() - t0
    if summary.n_complete != n:  # the review: a trial body missing an objective made every trial the failure path
        raise RuntimeError(f"{summary.n_complete} of {n} trivial trials completed ({summary.n_failed} failed): the timed "
                           "path must be a completed trial's")
    study = load_study(exp.name, exp.storage_url)
    starts = sorted(t.datetime_start.timestamp() for t in study.trials)
    cycles = [b - a for a, b in zip(starts, starts[1:])]
    return {"driver": f"dse run_study ({storage} Optuna, SQLite MLflow)", "storage": storage, "n": n, "wall_s": wall, "cycles": cycles,
            "driver_cpu_s": cpu.self_seconds, "all_cpu_s": cpu.self_seconds + cpu.descendants_seconds,
            "loop_s": starts[-1] - starts[0] if len(starts) > 1 else 0.0}


def run_tune(n: int, root: Path) -> dict:
    import optuna
    import ray
    from ray import tune
    from ray.air.integrations.mlflow import MLflowLoggerCallback
    from ray.tune.search.optuna import OptunaSearch

    from dse.study._ray_session import _local_token, _loopback_only

    D = optuna.distributions
    space = {
        "strategy": D.CategoricalDistribution(["Latency", "Resource", "distributed_arithmetic"]),
        "reuse_factor": D.CategoricalDistribution([1, 2, 4, 8]),
        "weight_granularity": D.CategoricalDistribution(["per-weight", "per-channel", "per-layer"]),
        "activation_granularity": D.CategoricalDistribution(["per-feature", "per-layer"]),
        **{k: D.FloatDistribution(1e-8, 1e-4, log=True) for k in ("beta", "beta_end", "weight_l1", "weight_l2", "activation_l1", "activation_l2")},
        "weight_bits": D.IntDistribution(3, 8), "activation_bits": D.IntDistribution(2, 8),
    }

    def objective(config):
        return {"csim_accuracy": 0.5 + 0.01 * config["weight_bits"], "lut": 100.0 * config["weight_bits"] * (1 + config["activation_bits"]),
                "t_start": time.time()}  # when the trial body ran: Tune's own timestamps are whole seconds

    search = OptunaSearch(space, metric=["csim_accuracy", "lut"], mode=["max", "min"], sampler=optuna.samplers.NSGAIISampler(seed=7))
    temp = tempfile.mkdtemp(prefix="tune-", dir="/tmp")  # short: Ray's socket paths stop at 107 bytes; removed below
    # on 127.0.0.1 only, as dse's own local Ray (Ray 2.60 on Linux otherwise listens on the machine's address: probe 17)
    loopback = ExitStack()
    loopback.enter_context(_loopback_only())
    loopback.enter_context(_local_token())
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING, _temp_dir=temp,
             _node_ip_address="127.0.0.1")
    try:
        t0 = time.perf_counter()
        with TreeCpu() as cpu:
            tuner = tune.Tuner(
                objective,
                tune_config=tune.TuneConfig(search_alg=search, num_samples=n, reuse_actors=True, max_concurrent_trials=1),
                run_config=tune.RunConfig(
                    storage_path=str(root / "tune"), name="overhead", verbose=0,
                    callbacks=[MLflowLoggerCallback(tracking_uri=f"sqlite:///{root / 'tune-mlflow.db'}", experiment_name="overhead")],
                ),
            )
            grid = tuner.fit()
        wall = time.perf_counter() - t0
    finally:
        ray.shutdown()
        loopback.close()
        shutil.rmtree(temp, ignore_errors=True)  # before: each Tune run left its Ray session folder in /tmp
    df = grid.get_dataframe()
    starts = sorted(float(t) for t in df["t_start"])
    cycles = [b - a for a, b in zip(starts, starts[1:])]
    return {"driver": "Ray Tune Tuner + OptunaSearch + MLflowLoggerCallback, reuse_actors=True", "n": n, "wall_s": wall,
            "cycles": cycles, "curve": windows(cycles, [n]), "driver_cpu_s": cpu.self_seconds,
            "all_cpu_s": cpu.self_seconds + cpu.descendants_seconds, "loop_s": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=HelpFormatter)
    ap.add_argument("--points", type=counts(2), default="50,200,500,1000", help="trial counts on the curve; the largest is run (2000 took 4 min on a quiet host, 2026-12-04)")
    ap.add_argument("--tune-points", type=counts(2), default="50,200,500", help="trial counts run with Ray Tune (one run each)")
    ap.add_argument("--storages", default="sqlite,journal",
                    help="Optuna storages for our driver, each run in turn: sqlite (the default storage, WAL mode), journal "
                    "(storage: journal, Optuna's JournalFileBackend in the run directory)")
    ap.add_argument("--skip-tune", action="store_true")
    ap.add_argument("--out", help="the JSON of results (default benchmarks/results/orchestration_overhead.json)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    points = args.points
    storages = [x for x in args.storages.split(",") if x]
    if set(storages) - {"sqlite", "journal"}:
        ap.error(f"--storages: {args.storages!r}; give sqlite and/or journal, comma-separated")
    print(load_note(), flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="dse-overhead-", dir="/tmp") as tmp:
        root = Path(tmp)
        for storage in storages:
            r = run_ours(max(points), root, storage)
            r["curve"] = windows(r["cycles"], points)
            results.append(r)
            print(f"{r['driver']}: {r['n']} trials, {r['wall_s']:.0f} s wall, {r['all_cpu_s']:.0f} CPU s", flush=True)
        if not args.skip_tune:
            for n in args.tune_points:
                r = run_tune(n, root / f"tune{n}")
                results.append(r)
                print(f"{r['driver']}: {n} trials, {r['wall_s']:.1f} s wall, {r['all_cpu_s']:.0f} CPU s", flush=True)
    print(load_note())
    ours = [r for r in results if "storage" in r]
    print("\nours: per-trial cycle (ask to next ask; serial trials), median and min over the 50 trials before each point")
    print("driver | " + " | ".join(f"n={p} median/min ms" for p in points) + " | total loop s")
    for r in ours:
        print(f"{r['driver']} | " + " | ".join(f"{r['curve'][p]['median_ms']:.1f} / {r['curve'][p]['min_ms']:.1f}" for p in points if p in r["curve"])
              + f" | {r['loop_s']:.1f}")
    print("\nevery cycle of each run (Ray Tune's from the time its trial body ran); a cycle over 1 s is one that waited for a new"
          " worker process (ours: a warm worker actor replaced when its memory grew, dse.study._workers; Tune reuses one actor)")
    print("driver | trials | median ms | mean ms | cycles > 1 s | mean of the others ms")
    for r in results:
        c = r["cycles"]
        short = [x for x in c if x <= 1.0]
        print(f"{r['driver']} | {r['n']} | {1000 * statistics.median(c):.1f} | {1000 * statistics.fmean(c):.1f} | {len(c) - len(short)} | "
              f"{1000 * statistics.fmean(short):.1f}")
    print("\nmean per-trial wall (total / trials), including start-up")
    print("driver | trials | wall s | per trial ms | driver CPU s | all CPU s")
    for r in results:
        print(f"{r['driver']} | {r['n']} | {r['wall_s']:.1f} | {1000 * r['wall_s'] / r['n']:.1f} | {r['driver_cpu_s']:.1f} | {r['all_cpu_s']:.1f}")
        if r in ours:
            for p in points:
                if p <= r["n"]:
                    tot = sum(r["cycles"][: p - 1])
                    print(f"   first {p} trials: loop {tot:.1f} s, {1000 * tot / max(p - 1, 1):.1f} ms per trial")
    print(f"\nwrote {write_json({'note': load_note(), 'argv': sys.argv, 'results': results}, args.out, 'orchestration_overhead.json')}")


if __name__ == "__main__":
    run_main(main)
