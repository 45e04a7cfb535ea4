"""Keras ``fit`` of a quickstart HGQ2 trial with and without TensorFlow's graph optimizer (Grappler): a lever measured, not kept.

One thread per process (as a trial with ``cpus_per_trial: 1``): the quickstart network
(digits, 64-32-16-10 MLP, batch 64, learning rate 0.005) with two designs of the default space
(per-weight/per-feature bitwidths, beta 1e-6 -> 1e-4; per-channel/per-layer, beta 1e-7 -> 1e-3),
trained by :func:`dse.trial._train.train_model` with Grappler off
(``tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})``) and on
(TensorFlow's default, what dse runs), after one warm-up fit (a process's first ``fit`` also builds what
later ones reuse), each setting in two processes of its own, set before TensorFlow's context starts
(set later, it applies only to the steps traced after it). Per fit: wall and CPU seconds, the first epoch (Keras traces its train and
test steps there) and the mean of the others; and whether both settings gave the same loss,
accuracy, validation accuracy and EBOPs at every epoch (compared exactly).

Not kept (README, Performance): in real studies a warm worker without Grappler grew about 80 MB
per quickstart trial instead of 30, so it was replaced for its memory after 5 trials instead of
9 or more, and a 270-epoch harvested ramp did not repeat its results with it off.

Usage: python benchmarks/training_speed.py [--epochs 15,60] [--reps 2] [--out FILE]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, HelpFormatter, load_note, run_main, use_this_checkout, write_json  # noqa: E402

use_this_checkout()


def child(graph_optimizer: bool, epochs_list: list[int], reps: int) -> dict:
    """Fits in this process, with Grappler set before TensorFlow's context starts."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": not graph_optimizer})
    import keras

    from dse.config import TrialParams, load_experiment
    from dse.data import load_dataset
    from dse.trial._model import build_model
    from dse.trial._train import train_model

    exp, _ = load_experiment(REPO / "experiments" / "quickstart.yaml")
    splits = load_dataset(exp.dataset)
    designs = [
        TrialParams(beta=1e-6, beta_end=1e-4, weight_bits=6, activation_bits=6),
        TrialParams(beta=1e-7, beta_end=1e-3, weight_bits=4, activation_bits=5,
                    weight_granularity="per-channel", activation_granularity="per-layer"),
    ]

    class EpochTimes(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.t = [time.perf_counter()]

        def on_epoch_end(self, epoch, logs=None):
            self.t.append(time.perf_counter())

    def fit(params: TrialParams, epochs: int) -> dict:
        cfg = exp.training.model_copy(update={"epochs": epochs})
        keras.utils.set_random_seed(exp.seed)
        model = build_model(exp.model, params, splits.n_features, splits.n_classes)
        times = EpochTimes()
        w, c = time.perf_counter(), time.process_time()
        history = train_model(model, splits, cfg, params, exp.seed, extra_callbacks=[times])
        wall, cpu = time.perf_counter() - w, time.process_time() - c
        keras.backend.clear_session()
        epoch_s = [b - a for a, b in zip(times.t, times.t[1:])]
        return {"wall_s": wall, "cpu_s": cpu, "first_epoch_s": epoch_s[0], "epoch_s": statistics.mean(epoch_s[1:]),
                "history": {k: history[k] for k in ("loss", "accuracy", "val_accuracy", "ebops")}}

    fit(designs[0], 2)  # warm-up: a process's first fit also builds what later ones reuse
    return {f"{e}|{i}|{r}": fit(p, e) for e in epochs_list for r in range(reps) for i, p in enumerate(designs)}


def main() -> None:
    import json
    import subprocess

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=HelpFormatter)
    ap.add_argument("--epochs", default="15,60", help="comma-separated epoch counts")
    ap.add_argument("--reps", type=int, default=2, help="fits per design, setting and epoch count (in each of 2 processes per setting)")
    ap.add_argument("--child", choices=["off", "on"], help=argparse.SUPPRESS)
    ap.add_argument("--out", help="the JSON of results (default benchmarks/results/training_speed.json)")
    args = ap.parse_args()
    epochs_list = [int(e) for e in args.epochs.split(",")]
    if min(epochs_list) < 2 or args.reps < 1:  # before: the child failed on a mean of no later epochs, its error swallowed
        ap.error("--epochs: each count must be at least 2 (the first epoch traces; later ones are timed), --reps at least 1")
    if args.child:
        print("RESULT " + json.dumps(child(args.child == "on", epochs_list, args.reps)), flush=True)
        return
    print(load_note(), flush=True)
    results: dict[str, list[dict]] = {"off": [], "on": []}
    for mode in ("off", "on", "on", "off"):  # two processes per setting, interleaved against drift
        r = subprocess.run([sys.executable, __file__, "--child", mode, "--epochs", args.epochs, "--reps", str(args.reps)],
                           capture_output=True, text=True, check=True)
        fits = json.loads(next(line for line in r.stdout.splitlines() if line.startswith("RESULT "))[7:])
        results[mode].append(fits)
        print(f"Grappler {mode}: {len(fits)} fits, median {statistics.median(f['wall_s'] for f in fits.values()):.2f} s", flush=True)
    same = all(a[k]["history"] == b[k]["history"] for a in results["off"] for b in results["on"] for k in a)

    print(f"\n{load_note()}")
    print("epochs | Grappler | fits | fit wall s (median) | fit CPU s | first epoch s | later epochs s (mean) | fit time saved")
    rows = []
    for e in epochs_list:
        for mode in ("off", "on"):
            fits = [f for run in results[mode] for k, f in run.items() if k.startswith(f"{e}|")]
            rows.append({"epochs": e, "graph_optimizer": mode == "on", "fits": len(fits),
                         **{k: statistics.median(f[k] for f in fits) for k in ("wall_s", "cpu_s", "first_epoch_s", "epoch_s")}})
    for row in rows:
        on = next(o for o in rows if o["epochs"] == row["epochs"] and o["graph_optimizer"])
        saved = "" if row["graph_optimizer"] else f"{1 - row['wall_s'] / on['wall_s']:.0%}"
        print(f"{row['epochs']} | {'on (default)' if row['graph_optimizer'] else 'off'} | {row['fits']} | {row['wall_s']:.2f} | "
              f"{row['cpu_s']:.2f} | {row['first_epoch_s']:.2f} | {row['epoch_s']:.3f} | {saved}")
    print(f"same loss, accuracy, val_accuracy and EBOPs at every epoch with and without: {same}")
    for run in (run for runs in results.values() for run in runs):
        for f in run.values():
            f.pop("history")
    path = write_json({"note": load_note(), "argv": sys.argv, "rows": rows, "same_numbers": same, "runs": results}, args.out, "training_speed.json")
    print(f"wrote {path}")


if __name__ == "__main__":
    run_main(main)
