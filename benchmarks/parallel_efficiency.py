"""Parallel efficiency on 2 cores: the same trials with 1 and with 2 running at once.

The quickstart experiment (digits, 64-32-16-10 MLP, 15 epochs, 1 CPU per trial, warm
workers) with its search space restricted to the Latency and Resource strategies and
``hls4ml.csim: all``, so both runs do the same work: distributed_arithmetic's single-threaded
40-100 s g++ build would make the figure mostly about g++, and ``csim: front`` decides by the
front known at dispatch, which depends on the concurrency. Random sampler, seed 7: both runs
train the same ``--n-trials`` designs. Efficiency = T1 / (2 x T2) (T: wall time of the study,
Ray start-up included); CPU utilisation = CPU seconds of the driver and all it started / (wall x 2).

The host's speed drifts between runs minutes apart (the same 12 serial trials took 119 and 154
CPU s in two runs on 2026-12-04), so ``--rounds`` runs the pair more than once in alternating
order (1, 2, 2, 1, ...: ABBA) and the efficiency is median(T1) / (2 x median(T2)); each round's
own T1 / (2 x T2) is printed beside it.

Usage: python benchmarks/parallel_efficiency.py [--n-trials 12] [--rounds 2] [--out FILE]   (12: the quickstart's n_trials)
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, HelpFormatter, TreeCpu, load_note, run_main, use_this_checkout, write_json  # noqa: E402

use_this_checkout()


def run(conc: int, n: int, root: Path) -> dict:
    from dse.config import load_experiment
    from dse.study import run_study

    space = yaml.safe_load((REPO / "search_spaces" / "default.yaml").read_text())
    space["parameters"]["strategy"]["choices"] = ["Latency", "Resource"]
    (root / "space.yaml").write_text(yaml.safe_dump(space, sort_keys=False))
    exp = yaml.safe_load((REPO / "experiments" / "quickstart.yaml").read_text())
    exp.update(name=f"parallel-{conc}", search_space="space.yaml", n_trials=n, sampler={"name": "random"},
               run_dir=str(root / f"run{conc}"), ray={"num_cpus": 2, "max_concurrent_trials": conc, "reuse_workers": True},
               hls4ml={**exp["hls4ml"], "csim": "all"})
    (root / f"exp{conc}.yaml").write_text(yaml.safe_dump(exp, sort_keys=False))
    e, s = load_experiment(root / f"exp{conc}.yaml")
    t0 = time.perf_counter()
    with TreeCpu() as cpu:
        summary = run_study(e, s, progress=False)
    wall = time.perf_counter() - t0
    cpu_s = cpu.self_seconds + cpu.descendants_seconds
    from dse.store import StudyRecords
    from dse.study import load_study

    pids = [r.tags.get("worker_pid") for r in StudyRecords(load_study(e.name, e.storage_url)).trials()]
    return {"concurrency": conc, "n_trials": n, "n_complete": summary.n_complete, "wall_s": wall, "cpu_s": cpu_s,
            "cpu_utilisation": cpu_s / (wall * 2), "workers": len(set(pids)), "worker_pids": pids}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=HelpFormatter)
    ap.add_argument("--n-trials", type=int, default=12, help="trials per run (the quickstart's count; few trials weigh start-up and the last lone trial)")
    ap.add_argument("--rounds", type=int, default=2, help="pairs of runs, in ABBA order (1 for the single pair of earlier runs)")
    ap.add_argument("--out", help="the JSON of results (default benchmarks/results/parallel_efficiency.json)")
    args = ap.parse_args()
    if args.rounds < 1 or args.n_trials < 2:
        ap.error("--rounds must be at least 1 and --n-trials at least 2 (two trials at a time)")
    print(load_note(), flush=True)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("dse.study._workers").setLevel(logging.INFO)  # each worker replaced for its memory
    runs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="dse-parallel-", dir="/tmp") as tmp:
        for k in range(args.rounds):
            root = Path(tmp) / f"round{k}"
            root.mkdir()
            for conc in ((1, 2) if k % 2 == 0 else (2, 1)):
                r = {**run(conc, args.n_trials, root), "round": k}
                runs.append(r)
                print(f"round {k}, {conc} at a time: {r['wall_s']:.0f} s, {r['cpu_s']:.0f} CPU s", flush=True)
    wall = {(r["round"], r["concurrency"]): r["wall_s"] for r in runs}
    t1 = statistics.median(wall[k, 1] for k in range(args.rounds))
    t2 = statistics.median(wall[k, 2] for k in range(args.rounds))
    eff = t1 / (2 * t2)
    per_round = [wall[k, 1] / (2 * wall[k, 2]) for k in range(args.rounds)]
    print(load_note())
    print("round | concurrent trials | trials | wall s | CPU s | CPU utilisation (of 2 cores) | worker processes")
    for r in runs:
        print(f"{r['round']} | {r['concurrency']} | {r['n_complete']} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['cpu_utilisation']:.0%} | {r['workers']}")
    print(f"efficiency median(T1) / (2 x median(T2)) = {t1:.1f} / (2 x {t2:.1f}) = {eff:.2f}; "
          f"each round: {', '.join(f'{e:.2f}' for e in per_round)}")
    out = write_json({'note': load_note(), 'argv': sys.argv, 'runs': runs, 'efficiency': eff, 'per_round': per_round},
                     args.out, 'parallel_efficiency.json')
    print(f"wrote {out}")


if __name__ == "__main__":
    run_main(main)
