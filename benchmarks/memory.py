"""Resident memory of one warm worker process over consecutive real trials.

Runs a small real study (digits, 64-8-10 MLP, 2 epochs, Latency/Resource with random
parameters, the default ``hls4ml.csim: front``, so the trials that may join the front also
build and load an hls4ml C simulation library) with
one CPU, so one warm worker at a time (``ray.reuse_workers: true``, replaced once its RSS exceeds
its RSS after its second trial by ``WORKER_RSS_GROWTH``) runs the trials, and samples the worker's
RSS from /proc every 0.5 s. Two configurations in one run (``--configs``): ``before``, one warm worker kept for all the
trials (the growth per trial of a worker that is never replaced), and ``after``, dse's default
(replaced at ``WORKER_RSS_GROWTH``). Reports, for each, the RSS at the end of each trial (the
sample closest before the trial's end), and the growth from the end of the 5th trial
(imports and first graphs done) to the last one, and the peak: the largest RSS at any trial end
after the 5th, against the same reference (with warm workers replaced as they grow, the last
trial's RSS depends on where it falls in its worker's life; the peak does not).

Usage: python benchmarks/memory.py [--n-trials 50] [--configs before,after] [--rss-growth F] [--out FILE]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import HelpFormatter, at_least, load_note, run_main, use_this_checkout, write_json, non_negative  # noqa: E402

use_this_checkout()

SPACE = {
    "parameters": {
        "strategy": {"type": "categorical", "choices": ["Latency", "Resource"]},
        "reuse_factor": {"type": "categorical", "choices": [2, 4], "when": {"strategy": "Resource"}, "default": 1},
        "beta": {"type": "float", "low": 1e-6, "high": 1e-5, "log": True},
        "weight_bits": {"type": "int", "low": 3, "high": 6},
        "weight_granularity": {"type": "categorical", "choices": ["per-weight", "per-channel", "per-layer"]},
    },
    "rules": [{"name": "tip", "when": {"strategy": "Resource"}, "set": {"beta": 0.0}}],
}


class RssSampler(threading.Thread):
    """Samples the RSS (kB) of every process whose command line is a Ray worker running our trials."""

    def __init__(self):
        super().__init__(daemon=True)
        self.samples: list[tuple[float, int, int]] = []  # (time, pid, rss kB)
        self.stop = threading.Event()

    def run(self) -> None:
        import os

        me = os.getuid()
        while not self.stop.is_set():
            for d in os.listdir("/proc"):
                if not d.isdigit():
                    continue
                try:
                    if os.stat(f"/proc/{d}").st_uid != me:
                        continue
                    cmd = Path(f"/proc/{d}/cmdline").read_bytes()
                    if b"ray::TrialWorker" not in cmd and b"ray::IDLE" not in cmd:
                        continue
                    env = Path(f"/proc/{d}/environ").read_bytes()
                    if self.marker not in env:
                        continue
                    rss = next(int(line.split()[1]) for line in Path(f"/proc/{d}/status").read_text().splitlines() if line.startswith("VmRSS"))
                    self.samples.append((time.time(), int(d), rss))
                except (OSError, StopIteration):
                    continue
            self.stop.wait(0.5)


#: Configurations compared in one run: ``before`` keeps one warm worker for every trial (the
#: growth a warm worker has when it is never replaced); ``after`` is dse's default
#: (:data:`dse.study._workers.WORKER_RSS_GROWTH`, or ``--rss-growth``).
CONFIGS = ("before", "after")
NEVER_REPLACE = 10.0  # 1,000%: no worker of these trials grows that much


def run_config(name: str, rss_growth: float, n_trials: int, root: Path) -> dict:
    """One study of ``n_trials`` with warm workers replaced at ``rss_growth``; RSS of each trial's worker at its end."""
    import optuna

    from dse.config import load_experiment
    from dse.study import _ray_session, _workers, run_study

    _workers.WORKER_RSS_GROWTH = rss_growth
    tmp = root / name
    tmp.mkdir()
    (tmp / "space.yaml").write_text(yaml.safe_dump(SPACE, sort_keys=False))
    (tmp / "exp.yaml").write_text(yaml.safe_dump({
        "name": f"memory-{name}", "dataset": {"name": "digits"}, "model": {"hidden": [8]},
        "training": {"epochs": 2, "batch_size": 128, "learning_rate": 0.01}, "search_space": "space.yaml",
        "n_trials": n_trials, "seed": 1, "sampler": {"name": "random"}, "run_dir": str(tmp / "run"),
        "ray": {"num_cpus": 1, "reuse_workers": True},
    }, sort_keys=False))
    exp, space = load_experiment(tmp / "exp.yaml")
    marker = f"{root.name}-{name}"
    _ray_session.WORKER_ENV["DSE_MEMORY_BENCH"] = marker
    sampler = RssSampler()
    sampler.marker = f"DSE_MEMORY_BENCH={marker}".encode()
    sampler.start()
    t0 = time.time()
    try:
        run_study(exp, space, progress=False)
    finally:
        wall = time.time() - t0
        sampler.stop.set()
        sampler.join()
    study = optuna.load_study(study_name=exp.name, storage=exp.storage_url)
    ends = [(t.number, t.datetime_complete.timestamp(), t.user_attrs.get("tags", {}).get("worker_pid"), t.state.name) for t in study.trials]
    rows = []
    for number, end, pid, state in sorted(ends):
        before = [s for s in sampler.samples if s[0] <= end and str(s[1]) == pid]
        rows.append({"trial": number, "pid": pid, "state": state, "rss_mb": before[-1][2] / 1024 if before else None})
    have = [r for r in rows if r["rss_mb"] is not None]
    res = {"config": name, "worker_rss_growth": rss_growth, "wall_s": wall, "workers": len({r["pid"] for r in rows}), "rows": rows,
           "growth": None, "peak_growth": None}
    if len(have) > 5:
        ref, last = have[4], have[-1]
        peak = max(have[4:], key=lambda r: r["rss_mb"])
        res.update(ref_trial=ref["trial"], ref_mb=ref["rss_mb"], last_mb=last["rss_mb"], peak_mb=peak["rss_mb"], peak_trial=peak["trial"],
                   growth=(last["rss_mb"] - ref["rss_mb"]) / ref["rss_mb"], peak_growth=(peak["rss_mb"] - ref["rss_mb"]) / ref["rss_mb"])
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=HelpFormatter)
    ap.add_argument("--n-trials", type=at_least(6), default=50, help="consecutive trials per configuration (6 or more: the growth is measured from the fifth)")
    ap.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated, of before (one worker for every trial), after (the default)")
    ap.add_argument("--rss-growth", type=non_negative,
                    help="the after configuration's replacement threshold, a fraction (0.2 = 20%%; default dse.study._workers.WORKER_RSS_GROWTH)")
    ap.add_argument("--out", help="the JSON of results (default benchmarks/results/memory.json)")
    args = ap.parse_args()
    print(load_note(), flush=True)
    from dse.study import _workers

    growth = {"before": NEVER_REPLACE, "after": _workers.WORKER_RSS_GROWTH if args.rss_growth is None else args.rss_growth}
    results = []
    with tempfile.TemporaryDirectory(prefix="dse-memory-", dir="/tmp") as tmp:
        for name in args.configs.split(","):
            if name not in growth:
                ap.error(f"--configs: unknown configuration {name!r}; use before and/or after")
            print(f"running {name}: workers replaced at +{growth[name]:.0%} RSS over their second trial ...", flush=True)
            results.append(run_config(name, growth[name], args.n_trials, Path(tmp)))
    print(load_note())
    for r in results:
        print(f"\n{r['config']}: {len(r['rows'])} trials in {r['wall_s']:.0f} s; worker processes: {r['workers']}")
        print("trial | worker pid | RSS MB at trial end")
        for row in r["rows"]:
            if row["trial"] < 5 or row["trial"] % 5 == 4 or row["trial"] == len(r["rows"]) - 1:
                print(f"{row['trial']} | {row['pid']} | {row['rss_mb'] if row['rss_mb'] is None else round(row['rss_mb'], 1)}")
    print("\nconfig | replaced at | workers | study wall s | RSS after trial 5 MB | last MB | growth | peak MB | peak growth")
    for r in results:
        if r["growth"] is None:
            print(f"{r['config']} | - | {r['workers']} | {r['wall_s']:.0f} | too few trials with an RSS sample")
            continue
        print(f"{r['config']} | +{r['worker_rss_growth']:.0%} | {r['workers']} | {r['wall_s']:.0f} | {r['ref_mb']:.0f} | {r['last_mb']:.0f} | "
              f"{r['growth']:+.1%} | {r['peak_mb']:.0f} (trial {r['peak_trial']}) | {r['peak_growth']:+.1%}")
    out = write_json({"note": load_note(), "argv": sys.argv, "results": results}, args.out, "memory.json")
    print(f"wrote {out}")


if __name__ == "__main__":
    run_main(main)
