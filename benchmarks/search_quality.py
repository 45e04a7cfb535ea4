"""Search quality per CPU-second: hypervolume of (accuracy, EBOPs) against CPU seconds, five ways, on digits.

Every method builds the quickstart network (digits, 64-32-16-10 ReLU MLP, batch 64, learning
rate 0.005, the same data split) and is judged on the same two figures: test accuracy
(``csim_accuracy``: hls4ml C simulation where it ran, else the bit-exact quantized Keras model,
as ``hls4ml.csim: front`` decides) and EBOPs (HGQ2 ``trace_minmax``). The dse studies optimize the validation
accuracy (``csim_val_accuracy``, as the shipped experiments do since 2026-12-07), so the test split judges designs
no method chose on it. EBOPs do not depend on
hls4ml's Strategy or ReuseFactor, so every method uses the Latency strategy.

Methods:
  ours-nsga2   ``dse run`` as shipped: NSGA-II (population 6), the default search space
               (granularity, beta and its ramp, L1/L2, initial bitwidths), 15 epochs per trial,
               ``--n-trials`` trials, 2 at a time, warm workers, ``csim: front``.
  ours-ramps   ``dse run`` with the same total epochs spent as few long trials that harvest:
               NSGA-II over ``search_spaces/ramps.yaml`` (where each ramp starts and ends,
               granularity, L1, initial bitwidths), ``--n-trials`` / 9 trials of 15 x 9 epochs
               each (2 x 135 at the defaults: one per core), each keeping up to 16 Pareto-optimal
               checkpoints of its beta ramp (``training.harvest_checkpoints: 16``); 2 at a time.
  ours-harvest the same as ours-nsga2 with ``training.harvest_checkpoints: 3`` (each trial also keeps up to 3
               Pareto-optimal checkpoints of its beta ramp).
  random       the same as ours-nsga2 with Optuna's RandomSampler.
  tpe          the same as ours-nsga2 with ``sampler.name: tpe`` (Optuna's multivariate multi-objective
               TPESampler, its first 10 trials random; ``--tpe-startup-trials`` sets how many:
               ``sampler.n_startup_trials``).
  uniform      what a user would otherwise run: the network trained in float (Keras, 15 epochs),
               converted with hls4ml at uniform ``ap_fixed<b,i>`` for b in 4..16 (weights and
               biases, inputs and activations; accumulators and Dense outputs ``auto``, i.e. full
               precision), integer bits i from profiling the float model (hls4ml tutorial part 2:
               the largest |weight| or |bias| for weights and biases, the largest |activation| for
               the data path), each C-simulated. Its EBOPs are HGQ2's, of an HGQ2 copy of the float
               weights with fixed ``kif`` quantizers of the same ap_fixed types (EBOPs count
               effective bits; the b x b BOPs are also reported). One integer width for the whole
               data path, from the largest activation, leaves no fractional bits below it (7 bits
               on digits), and at 4-5 bits the HGQ2 copy's accuracy differs from the C simulation's:
               see the README. ``--uniform-int-bits layer`` gives each Dense layer its own: the
               largest |weight| or |bias| of the layer, and the largest |input| of the layer (the
               features for the first, the ReLU output before it for the others).
  long-ramp    the HGQ authors' method: one HGQ2 training of 15 x ``--n-trials`` epochs (the
               epochs of a whole study) with beta rising log-linearly from 1e-7 to 1e-3, keeping
               every Pareto-optimal checkpoint (``harvest_checkpoints: --long-checkpoints``);
               ``long-ramp-final`` is the same run without the harvest (its final model only).

CPU seconds: user + system time of this process and of every process it starts (Ray's
processes, workers, g++), sampled from /proc every 0.5 s; a point counts from the CPU total at
the moment its trial completed. A method that ends before the others (the uniform grid) keeps
its last hypervolume: it has nothing more to spend.

Hypervolume: Optuna's (``optuna._hypervolume.compute_hypervolume``) of the points
(1 - accuracy, EBOPs / EBOPS_REF) with the reference point (1 - ACC_REF, 1): accuracy 0.80 and
EBOPs 150,000 (points outside the box add nothing). Larger is better; the largest possible is
0.2 (accuracy 1.0 at 0 EBOPs).

Usage: python benchmarks/search_quality.py [--n-trials 18] [--long-checkpoints 24] [--tpe-startup-trials N] [--ramp-trials 2] [--ramp-epochs 135]
       [--ramp-checkpoints 16] [--methods ...] [--out FILE] [--plot FILE]
"""

from __future__ import annotations

import argparse
import math
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, HelpFormatter, TreeCpu, at_least, load_note, run_main, use_this_checkout, write_json  # noqa: E402

use_this_checkout()

ACC_REF = 0.80
EBOPS_REF = 150_000.0
#: What the studies optimize: the validation accuracy; each point is judged on its test accuracy (``csim_accuracy``).
OBJECTIVES = [{"metric": "csim_val_accuracy", "direction": "maximize"}, {"metric": "ebops", "direction": "minimize"}]


class CpuTimeline(TreeCpu):
    """:class:`TreeCpu` that also keeps ``(unix time, CPU seconds so far)`` at every sample.

    CPU so far = this process's own user + system time (``RUSAGE_SELF``; children are counted
    through their own /proc samples, not again when reaped) + every descendant's.
    """

    def _run(self) -> None:
        self.timeline: list[tuple[float, float]] = []
        while not self._stop.is_set():
            self._sample()
            self.timeline.append((time.time(), self.now()))
            self._stop.wait(self.interval)

    def now(self) -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime - self.t0_own + sum(self.seen.values())

    def __enter__(self) -> "CpuTimeline":
        r = resource.getrusage(resource.RUSAGE_SELF)
        self.t0_own = r.ru_utime + r.ru_stime
        return super().__enter__()

    def at(self, unix_time: float) -> float:
        """CPU seconds spent up to ``unix_time`` (the first sample at or after it)."""
        for t, c in self.timeline:
            if t >= unix_time:
                return c
        return self.timeline[-1][1]


def hypervolume(points: list[tuple[float, float]]) -> float:
    """Hypervolume of (accuracy, EBOPs) points against (ACC_REF, EBOPS_REF), in (error, EBOPs / EBOPS_REF) units."""
    from optuna._hypervolume import compute_hypervolume

    inside = [(1 - a, e / EBOPS_REF) for a, e in points if a > ACC_REF and e < EBOPS_REF]
    if not inside:
        return 0.0
    return float(compute_hypervolume(np.asarray(inside), np.asarray([1 - ACC_REF, 1.0])))


def _experiment(root: Path, name: str, space: dict, **over) -> Path:
    exp = yaml.safe_load((REPO / "experiments" / "quickstart.yaml").read_text())
    (root / f"{name}-space.yaml").write_text(yaml.safe_dump(space, sort_keys=False))
    exp.update(name=name, search_space=f"{name}-space.yaml", objectives=OBJECTIVES, run_dir=str(root / name),
               ray={"num_cpus": 2}, **over)
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(exp, sort_keys=False))
    return path


def _latency_space(name: str = "default.yaml") -> dict:
    """A shipped search space with Strategy pinned to Latency (and no ReuseFactor or rules)."""
    space = yaml.safe_load((REPO / "search_spaces" / name).read_text())
    space["parameters"]["strategy"]["choices"] = ["Latency"]
    space["parameters"].pop("reuse_factor", None)
    space["rules"] = []
    return space


def run_dse(root: Path, name: str, space: dict, **over) -> dict:
    """Run a ``dse`` study; return its points with the CPU seconds at which each completed."""
    import optuna

    from dse.config import load_experiment
    from dse.store import StudyRecords
    from dse.study import run_study

    exp, sp = load_experiment(_experiment(root, name, space, **over))
    with CpuTimeline() as cpu:
        t0 = time.perf_counter()
        summary = run_study(exp, sp, progress=False)
        wall = time.perf_counter() - t0
    study = optuna.load_study(study_name=name, storage=exp.storage_url)
    by_number = {t.number: t for t in study.trials}
    points = []
    for r in StudyRecords(study).trials():
        if r.state != "COMPLETE":
            continue
        done = by_number[r.number].datetime_complete.timestamp()
        points.append({"trial": r.number, "cpu_s": cpu.at(done), "accuracy": r.metrics["csim_accuracy"], "ebops": r.values[1],
                       "harvested_from": r.harvested_from, "csim": r.tags.get("csim")})
    points.sort(key=lambda p: p["cpu_s"])
    return {"method": name, "points": points, "cpu_s": cpu.now(), "wall_s": wall, "n_complete": summary.n_complete,
            "n_failed": summary.n_failed}


def _profiled_int_bits(values: list[np.ndarray]) -> int:
    """ap_fixed integer bits (sign included) holding the largest |value|: ceil(log2(max)) + 1."""
    top = max(float(np.max(np.abs(v))) for v in values)
    return max(1, math.ceil(math.log2(top)) + 1) if top > 0 else 1


def run_uniform(root: Path, widths: list[int], int_bits: str = "global", **over) -> dict:
    """The uniform-precision baseline (see the module docstring); ``int_bits``: ``global`` or ``layer``."""
    import keras
    from hgq.config import LayerConfigScope, QuantizerConfigScope
    from hgq.layers import QDense
    from hgq.utils import trace_minmax

    import hls4ml
    from dse.config import load_experiment
    from dse.data import load_dataset

    exp, _ = load_experiment(_experiment(root, "uniform", _latency_space(), **over))
    points = []
    with CpuTimeline() as cpu:
        t0 = time.perf_counter()
        sp = load_dataset(exp.dataset)
        keras.utils.set_random_seed(exp.seed)
        inp = keras.Input((sp.n_features,), name="features")
        x = inp
        for i, units in enumerate(exp.model.hidden):
            x = keras.layers.Dense(units, activation="relu", name=f"dense_{i}")(x)
        float_model = keras.Model(inp, keras.layers.Dense(sp.n_classes, name="logits")(x))
        float_model.compile(keras.optimizers.Adam(exp.training.learning_rate),
                            keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        float_model.fit(sp.X_train, sp.y_train, epochs=exp.training.epochs, batch_size=exp.training.batch_size, verbose=0)
        dense = [layer for layer in float_model.layers if isinstance(layer, keras.layers.Dense)]
        float_acc = float(np.mean(np.argmax(float_model.predict(sp.X_test, verbose=0), 1) == sp.y_test))
        acts = [sp.X_train] + [keras.Model(float_model.inputs, d.output).predict(sp.X_train, verbose=0) for d in dense[:-1]]
        # profiled per layer (hls4ml tutorial part 2): layer k's weights and biases, and its input (the features for the
        # first, the ReLU output of the one before for the others)
        i_w = [_profiled_int_bits(d.get_weights()) for d in dense]
        i_a = [_profiled_int_bits([a]) for a in acts]
        if int_bits == "global":  # the largest of the layers' for every layer: one width for weights, one for the data path
            i_w, i_a = [max(i_w)] * len(i_w), [max(i_a)] * len(i_a)
        n_mult = sum(int(np.count_nonzero(d.get_weights()[0])) for d in dense)
        for b in widths:
            iw, ia = [min(i, b) for i in i_w], [min(i, b) for i in i_a]
            wts, ats = [f"ap_fixed<{b},{i}>" for i in iw], [f"ap_fixed<{b},{i}>" for i in ia]
            cfg = hls4ml.utils.config_from_keras_model(float_model, granularity="name", default_precision=ats[0], backend="Vitis")
            for name, lc in cfg["LayerName"].items():
                p = lc["Precision"] if isinstance(lc.get("Precision"), dict) else lc.setdefault("Precision", {})
                k = next((k for k, d in enumerate(dense) if name == d.name or name.startswith(d.name + "_")), None)
                if "weight" in p:  # Dense k: ap_fixed weights and bias, full-precision accumulator and output
                    p.update(weight=wts[k], bias=wts[k], accum="auto", result="auto")
                elif k is None:  # the input layer: the first Dense's input
                    p["result"] = ats[0]
                elif k + 1 < len(ats):  # Dense k's ReLU: the next Dense's input
                    p["result"] = ats[k + 1]
                else:  # an activation after the output layer (none in this network): full precision
                    p["result"] = "auto"
            hls_model = hls4ml.converters.convert_from_keras_model(
                float_model, hls_config=cfg, output_dir=str(root / f"uniform_{b}"), backend="Vitis", io_type="io_parallel",
                part=exp.hls4ml.part, clock_period=exp.hls4ml.clock_period,
            )
            hls_model.compile()
            out = np.asarray(hls_model.predict(np.ascontiguousarray(sp.X_test))).reshape(-1, sp.n_classes)
            acc = float(np.mean(np.argmax(out, 1) == sp.y_test))
            # EBOPs of the same design, counted by HGQ2: an HGQ2 copy with fixed kif quantizers of those types, layer by layer
            def kif(place, i, axis):
                return QuantizerConfigScope(place=place, default_q_type="kif", k0=1, i0=i - 1, f0=b - i, round_mode="TRN",
                                            overflow_mode="WRAP", homogeneous_axis=axis)

            with LayerConfigScope(enable_ebops=True, beta0=0.0):
                q_in = keras.Input((sp.n_features,))
                y = q_in
                for k, units in enumerate([*exp.model.hidden, sp.n_classes]):
                    with kif("weight", iw[k], (0, 1)), kif("bias", iw[k], (0,)), kif("datalane", ia[k], (0, 1)):
                        y = QDense(units, activation="relu" if k < len(exp.model.hidden) else None)(y)
                mirror = keras.Model(q_in, y)
            for q, d in zip([la for la in mirror.layers if isinstance(la, QDense)], dense):
                q.kernel.assign(d.kernel)
                q.bias.assign(d.bias)
            ebops = float(trace_minmax(mirror, sp.X_train))
            mirror_acc = float(np.mean(np.argmax(mirror.predict(sp.X_test, verbose=0), 1) == sp.y_test))
            points.append({"bits": b, "weight_types": wts, "data_types": ats, "cpu_s": cpu.now(), "accuracy": acc, "ebops": ebops,
                           "bops": float(n_mult * b * b), "hgq_copy_accuracy": mirror_acc})
            print(f"  uniform {b} bits, integer bits per layer: weights {iw}, inputs {ia}: accuracy {acc:.4f} "
                  f"(HGQ2 copy {mirror_acc:.4f}), EBOPs {ebops:,.0f}, "
                  f"BOPs {n_mult * b * b:,}", flush=True)
        wall = time.perf_counter() - t0
    return {"method": "uniform", "points": points, "cpu_s": cpu.now(), "wall_s": wall, "float_accuracy": float_acc,
            "int_bits": {"mode": int_bits, "weights": i_w, "data": i_a}}


def long_ramp_space() -> dict:
    """One fixed design, ``search_spaces/long_ramp.yaml``: Latency, per-weight / per-feature bitwidths, beta 1e-7 -> 1e-3 (log)."""
    return yaml.safe_load((REPO / "search_spaces" / "long_ramp.yaml").read_text())


def long_ramp_point(space: dict) -> dict:
    """The long ramp's design (``search_spaces/long_ramp.yaml``) as a point of ``space``: its values of the parameters ``space`` has."""
    return {k: v["choices"][0] for k, v in long_ramp_space()["parameters"].items() if k in space["parameters"]}


def curve(points: list[dict], grid: list[float]) -> list[float]:
    """Hypervolume of the points completed by each CPU budget in ``grid``."""
    return [hypervolume([(p["accuracy"], p["ebops"]) for p in points if p["cpu_s"] <= c]) for c in grid]


def plot(results: list[dict], grid: list[float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for r in results:
        ax1.step(grid, r["hv_curve"], where="post", label=r["method"])
        pts = [p for p in r["points"]]
        ax2.scatter([p["ebops"] for p in pts], [p["accuracy"] for p in pts], s=12, label=r["method"])
    ax1.set(xlabel="CPU seconds", ylabel=f"hypervolume (ref: accuracy {ACC_REF}, EBOPs {EBOPS_REF:,.0f})",
            title="Search quality per CPU-second (digits)")
    ax2.set(xscale="log", xlabel="EBOPs (HGQ2 trace_minmax)", ylabel="test accuracy", ylim=(ACC_REF - 0.1, 1.0),
            title="All points")
    ax1.legend()
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=HelpFormatter)
    ap.add_argument("--n-trials", type=at_least(1), default=18, help="ours-nsga2, ours-harvest, random, tpe: trials of 15 epochs (the budget)")
    ap.add_argument("--long-checkpoints", type=at_least(1), default=24, help="long-ramp: harvest_checkpoints")
    ap.add_argument("--widths", default="4,5,6,7,8,10,12,16", help="uniform: the total bits b of ap_fixed<b,i>, comma-separated")
    ap.add_argument("--uniform-int-bits", choices=("global", "layer"), default="global",
                    help="uniform: the integer bits i, one for all weights and one for the whole data path (the largest "
                         "layer's), or each layer's own (layer: 0.063 against 0.070 at seed 7, see the README)")
    ap.add_argument("--ramp-trials", type=at_least(1), help="ours-ramps: trials (default n-trials / 9: 2, one per core)")
    ap.add_argument("--ramp-epochs", type=at_least(1), help="ours-ramps: epochs per trial (default: 15 x n-trials / ramp-trials)")
    ap.add_argument("--ramp-checkpoints", type=at_least(1), default=16, help="ours-ramps: harvest_checkpoints per trial")
    ap.add_argument("--ramps-enqueue-long-ramp", action="store_true",
                    help="ours-ramps: enqueue the long ramp's design (search_spaces/long_ramp.yaml) as its first trial (enqueue_trials)")
    ap.add_argument("--long-epochs", type=at_least(1), help="long-ramp: epochs (default: 15 x n-trials, the epochs of a whole study)")
    ap.add_argument("--methods", default="ours-nsga2,ours-ramps,random,uniform,long-ramp",
                    help="comma-separated, from: ours-nsga2, ours-ramps, ours-harvest, random, tpe, uniform, long-ramp")
    ap.add_argument("--tpe-startup-trials", type=at_least(1),
                    help="tpe: sampler.n_startup_trials, the random trials before TPE models (default: Optuna's 10)")
    ap.add_argument("--seed", type=at_least(0, 2**32 - 1), help="seed of every method's experiment (default: the quickstart's 7)")
    ap.add_argument("--out", help="the JSON of results (default benchmarks/results/search_quality.json)")
    ap.add_argument("--plot", help="the PNG of the curves (default: beside --out, else benchmarks/results/search_quality.png)")
    args = ap.parse_args()
    known = ("ours-nsga2", "ours-ramps", "ours-harvest", "random", "tpe", "uniform", "long-ramp")
    unknown = [m for m in args.methods.split(",") if m not in known]
    if unknown:  # before: a KeyError when the loop reached it, after the earlier methods' minutes of work
        ap.error(f"--methods: unknown {', '.join(unknown)}; choose from {', '.join(known)}")
    print(load_note(), flush=True)
    n = args.n_trials
    ramp_trials = args.ramp_trials or max(1, n // 9)
    ramp_epochs = args.ramp_epochs or 15 * n // ramp_trials
    seed = {} if args.seed is None else {"seed": args.seed}  # every method's experiment; else the quickstart's 7
    tpe = {"name": "tpe"} if args.tpe_startup_trials is None else {"name": "tpe", "n_startup_trials": args.tpe_startup_trials}
    results = []
    with tempfile.TemporaryDirectory(prefix="dse-quality-", dir="/tmp") as tmp:
        root = Path(tmp)
        space = _latency_space()
        ramps = _latency_space("ramps.yaml")
        ramps_enqueue = {"enqueue_trials": [long_ramp_point(ramps)]} if args.ramps_enqueue_long_ramp else {}
        train = {"batch_size": 64, "learning_rate": 0.005}
        studies = {
            "ours-nsga2": lambda: run_dse(root, "ours-nsga2", space, n_trials=n, **seed),
            "ours-ramps": lambda: run_dse(root, "ours-ramps", ramps, n_trials=ramp_trials, **seed, **ramps_enqueue,
                                          training={**train, "epochs": ramp_epochs, "harvest_checkpoints": args.ramp_checkpoints}),
            "ours-harvest": lambda: run_dse(root, "ours-harvest", space, n_trials=n, **seed,
                                            training={**train, "epochs": 15, "harvest_checkpoints": 3}),
            "random": lambda: run_dse(root, "random", space, n_trials=n, sampler={"name": "random"}, **seed),
            "tpe": lambda: run_dse(root, "tpe", space, n_trials=n, sampler=tpe, **seed),
            "uniform": lambda: run_uniform(root, [int(w) for w in args.widths.split(",")], args.uniform_int_bits, **seed),
            "long-ramp": lambda: run_dse(root, "long-ramp", long_ramp_space(), n_trials=1, **seed,
                                         training={**train, "epochs": args.long_epochs or 15 * n, "harvest_checkpoints": args.long_checkpoints}),
        }
        for name in args.methods.split(","):
            results.append(studies[name]())
            print(f"{name}: {len(results[-1]['points'])} points, {results[-1]['cpu_s']:.0f} CPU s", flush=True)
            if name == "long-ramp":
                final = [p for p in results[-1]["points"] if p["harvested_from"] is None]
                results.append({**results[-1], "method": "long-ramp-final", "points": final})
    budget = max((r["cpu_s"] for r in results if r["method"] == "ours-nsga2"), default=max(r["cpu_s"] for r in results))
    whose = "ours-nsga2's" if any(r["method"] == "ours-nsga2" for r in results) else "the largest method's (no ours-nsga2 here)"
    grid = [budget * k / 20 for k in range(1, 21)]
    for r in results:
        r["hv_curve"] = curve(r["points"], grid)
        r["hv_at_budget"] = r["hv_curve"][-1]
    print(load_note())
    print(f"hypervolume (reference: accuracy {ACC_REF}, EBOPs {EBOPS_REF:,.0f}; max 0.2) by CPU seconds "
          f"(budget = {whose} {budget:.0f} CPU s)")
    cols = [4, 9, 14, 19]
    print("method | points | CPU s used | " + " | ".join(f"HV @ {grid[c]:.0f} s" for c in cols) + " | best accuracy | min EBOPs at acc >= 0.95")
    for r in sorted(results, key=lambda r: -r["hv_at_budget"]):
        good = [p["ebops"] for p in r["points"] if p["accuracy"] >= 0.95]
        print(f"{r['method']} | {len(r['points'])} | {r['cpu_s']:.0f} | " + " | ".join(f"{r['hv_curve'][c]:.4f}" for c in cols)
              + f" | {max((p['accuracy'] for p in r['points']), default=float('nan')):.4f} | "
              + (f"{min(good):,.0f}" if good else "-"))
    winner = max(results, key=lambda r: r["hv_at_budget"])["method"]
    print(f"highest hypervolume at the full budget: {winner}")
    # beside --out when given: before, a run with --out still overwrote the committed results/search_quality.png (probe 17)
    plot_path = (Path(args.plot) if args.plot else Path(args.out).with_suffix(".png") if args.out
                 else Path(__file__).resolve().parent / "results" / "search_quality.png")
    plot(results, grid, plot_path)
    out = write_json({"note": load_note(), "argv": sys.argv, "reference": {"accuracy": ACC_REF, "ebops": EBOPS_REF},
                      "budget_cpu_s": budget, "grid_cpu_s": grid, "results": results, "winner": winner}, args.out,
                     "search_quality.json")
    print(f"wrote {out} and {plot_path}")


if __name__ == "__main__":
    run_main(main)
