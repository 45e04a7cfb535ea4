"""Seconds per stage of real quickstart trials, and the fraction of trial wall time that is not training.

Runs ``experiments/quickstart.yaml`` (digits, 64-32-16-10 MLP, 15 epochs, default search space,
NSGA-II, seed 7) as a real study (warm Ray actors, or a fresh worker per trial in ``before``; SQLite Optuna and MLflow, hls4ml conversion, g++
C simulation) once per configuration, each in a fresh run directory. The default 12 trials are
the quickstart's: the first 6 (NSGA-II's first generation, population 6, seed 7) are the same
designs in every configuration; the second generation's depend on the order in which trials
finished, which may differ. ``--n-trials 6`` compares the first generation alone:

* ``before``: a fresh worker process per trial, C simulation of every trial, hls4ml's ``-O3``
  build (``build_lib.sh``: two objects and a link);
* ``after``: the defaults (warm workers, ``hls4ml.csim: front``, ``-O1``, one-call unity build);
* ``after-csim-none``: the defaults with ``hls4ml.csim: none`` (no g++ at all: the floor);
* optional single levers (``--configs``): ``warm``, ``warm+O1``, ``after-hls4ml-build``.

A trial's wall time is Optuna's ``datetime_start`` (ask) to ``datetime_complete`` (tell), so
worker start-up and imports count; "not training" is that minus ``seconds_train`` (Keras
``fit``, first-epoch graph building included). It is given two ways: over all trials (the sum of
their not-training seconds over the sum of their wall times: the cold starts and builds of a
few trials count in full) and per trial (the median trial's share, and how many trials are
under 20%). CPU seconds are summed over the driver and
every process it started (Ray, workers, g++), from /proc.

Usage: python benchmarks/trial_anatomy.py [--n-trials 12] [--configs before,after,after-csim-none] [--epochs N] [--out FILE]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, HelpFormatter, TreeCpu, load_note, run_main, use_this_checkout, write_json  # noqa: E402

use_this_checkout()

CONFIGS = {
    "before": dict(reuse_workers=False, csim="all", opt="-O3", build="hls4ml"),
    "warm": dict(reuse_workers=True, csim="all", opt="-O3", build="hls4ml"),
    "warm+O1": dict(reuse_workers=True, csim="all", opt="-O1", build="hls4ml"),
    "after-hls4ml-build": dict(reuse_workers=True, csim="front", opt="-O1", build="hls4ml"),
    "after": dict(reuse_workers=True, csim="front", opt="-O1", build="unity"),
    "after-csim-none": dict(reuse_workers=True, csim="none", opt="-O1", build="unity"),
}
STAGES = ["setup", "build", "train", "trace", "save", "convert", "resources_ebops", "resources_da4ml", "convert_hls4ml",
          "compile", "csim"]


def run_config(name: str, n_trials: int, root: Path, epochs: int | None = None) -> dict:
    import optuna

    from dse.config import load_experiment
    from dse.study import _ray_session, run_study
    from dse.store import TrialRecord

    cfg = CONFIGS[name]
    exp, space = load_experiment(REPO / "experiments" / "quickstart.yaml")
    exp = exp.model_copy(update={
        "name": f"anatomy-{name}".replace("+", "-"), "run_dir": root / name.replace("+", "-"), "n_trials": n_trials,
        "ray": exp.ray.model_copy(update={"reuse_workers": cfg["reuse_workers"]}),
        "hls4ml": exp.hls4ml.model_copy(update={"csim": cfg["csim"]}),
        "training": exp.training.model_copy(update={"epochs": epochs or exp.training.epochs}),
    })
    _ray_session.WORKER_ENV["DSE_CSIM_OPT_LEVEL"] = cfg["opt"]
    _ray_session.WORKER_ENV["DSE_CSIM_BUILD"] = cfg["build"]
    t0 = time.perf_counter()
    with TreeCpu() as cpu:
        summary = run_study(exp, space, progress=False)
    wall = time.perf_counter() - t0
    study = optuna.load_study(study_name=exp.name, storage=exp.storage_url)
    trials = []
    for t in study.trials:
        rec = TrialRecord.of(t)
        if t.datetime_complete is None:
            continue
        trials.append({
            "number": t.number, "state": rec.state, "strategy": rec.tags.get("strategy"), "csim_tag": rec.tags.get("csim", "run"),
            "wall": (t.datetime_complete - t.datetime_start).total_seconds(),
            **{s: rec.metrics.get(f"seconds_{s}", 0.0) for s in STAGES + ["total"]},
            "pid": rec.tags.get("worker_pid"),
            **{m: rec.metrics.get(m) for m in ("csim_accuracy", "keras_accuracy", "ebops")},
        })
    tw = sum(t["wall"] for t in trials)
    train = sum(t["train"] for t in trials)
    per_trial = [1 - t["train"] / t["wall"] for t in trials if t["wall"] > 0]
    return {
        "config": name, **cfg, "epochs": exp.training.epochs, "n_trials": len(trials), "n_complete": summary.n_complete, "study_wall_s": wall,
        "cpu_s": cpu.self_seconds + cpu.descendants_seconds, "driver_cpu_s": cpu.self_seconds,
        "trial_wall_sum_s": tw, "train_sum_s": train, "not_training_fraction": 1 - train / tw if tw else float("nan"),
        "per_trial_not_training_median": statistics.median(per_trial) if per_trial else float("nan"),
        "trials_under_20pct": sum(f < 0.2 for f in per_trial),
        "worker_processes": len({t["pid"] for t in trials}),
        "stage_mean_s": {s: statistics.fmean(t[s] for t in trials) for s in STAGES + ["total", "wall"]},
        "outside_run_trial_mean_s": statistics.fmean(t["wall"] - t["total"] for t in trials),
        "csim_run": sum(t["csim_tag"] == "run" for t in trials), "trials": trials,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=HelpFormatter)
    ap.add_argument("--n-trials", type=int, default=12,
                    help="12 = the quickstart's trials; 6 = NSGA-II's first generation alone (the same parameters in every configuration)")
    ap.add_argument("--configs", default="before,after,after-csim-none", help=f"comma-separated, of {', '.join(CONFIGS)}")
    ap.add_argument("--epochs", type=int, help="training epochs per trial (default: the quickstart's 15)")
    ap.add_argument("--out", help="the JSON of results (default benchmarks/results/trial_anatomy.json)")
    args = ap.parse_args()
    unknown = [c for c in args.configs.split(",") if c not in CONFIGS]
    if unknown:  # before: a KeyError after the earlier configurations had run
        ap.error(f"--configs: unknown {', '.join(unknown)}; choose from {', '.join(CONFIGS)}")
    if args.n_trials < 1 or (args.epochs is not None and args.epochs < 1):
        ap.error("--n-trials and --epochs must be at least 1")
    print(load_note(), flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="dse-anatomy-", dir="/tmp") as tmp:
        for name in args.configs.split(","):
            print(f"running {name}: {CONFIGS[name]} ...", flush=True)
            results.append(run_config(name, args.n_trials, Path(tmp), args.epochs))
    print(load_note())
    cols = ["config", "trials", "study wall s", "CPU s", "sum trial wall s", "sum train s", "not training (all trials)",
            "median trial not training", "trials under 20%", "workers", "C-sims"]
    print(" | ".join(cols))
    for r in results:
        print(f"{r['config']} | {r['n_trials']} | {r['study_wall_s']:.0f} | {r['cpu_s']:.0f} | {r['trial_wall_sum_s']:.0f} | "
              f"{r['train_sum_s']:.0f} | {r['not_training_fraction']:.0%} | {r['per_trial_not_training_median']:.0%} | "
              f"{r['trials_under_20pct']} of {r['n_trials']} | {r['worker_processes']} | {r['csim_run']}")
    print("\nmean seconds per trial and stage (wall); 'outside' = trial wall not inside run_trial (queue, worker start, imports, driver)")
    print("stage | " + " | ".join(r["config"] for r in results))
    for s in STAGES + ["total", "wall"]:
        print(f"{s} | " + " | ".join(f"{r['stage_mean_s'][s]:.2f}" for r in results))
    print("outside | " + " | ".join(f"{r['outside_run_trial_mean_s']:.2f}" for r in results))
    print(f"\nwrote {write_json({'note': load_note(), 'argv': sys.argv, 'results': results}, args.out, 'trial_anatomy.json')}")


if __name__ == "__main__":
    run_main(main)
