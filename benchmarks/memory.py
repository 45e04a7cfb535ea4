"""Resident memory of one warm worker process over consecutive real trials.

Runs a small real study (digits, 64-8-10 MLP, 2 epochs, Latency/Resource with random
parameters, the default ``hls4ml.csim: front``, so the trials that may join the front also
build and load an hls4ml C simulation library) with
one CPU, so one warm worker at a time (``ray.reuse_workers: true``, replaced once its RSS exceeds
its RSS after its second trial by ``WORKER_RSS_GROWTH``) runs the trials, and samples the worker's
RSS from /proc every 0.5 s. ``--rss-growth 10`` keeps one worker for all 50 trials (shows the growth per trial). Reports the RSS at the end of each trial (the
sample closest before the trial's end), and the growth from the end of the 5th trial
(imports and first graphs done) to the last one, and the peak: the largest RSS at any trial end
after the 5th, against the same reference (with warm workers replaced as they grow, the last
trial's RSS depends on where it falls in its worker's life; the peak does not).

Usage: python benchmarks/memory.py [--n-trials 50] [--rss-growth F] [--out FILE]
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
from _common import load_note, use_this_checkout, write_json  # noqa: E402

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


def main() -> None:
    import optuna

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-trials", type=int, default=50)
    ap.add_argument("--rss-growth", type=float, help="override dse.study._workers.WORKER_RSS_GROWTH (a fraction: 0.2 = 20%%)")
    ap.add_argument("--out")
    args = ap.parse_args()
    print(load_note(), flush=True)
    from dse.config import load_experiment
    from dse.study import _ray_session, _workers, run_study

    if args.rss_growth is not None:
        _workers.WORKER_RSS_GROWTH = args.rss_growth

    with tempfile.TemporaryDirectory(prefix="dse-memory-", dir="/tmp") as tmp:
        tmp = Path(tmp)
        (tmp / "space.yaml").write_text(yaml.safe_dump(SPACE, sort_keys=False))
        (tmp / "exp.yaml").write_text(yaml.safe_dump({
            "name": "memory", "dataset": {"name": "digits"}, "model": {"hidden": [8]},
            "training": {"epochs": 2, "batch_size": 128, "learning_rate": 0.01}, "search_space": "space.yaml",
            "n_trials": args.n_trials, "seed": 1, "sampler": {"name": "random"}, "run_dir": str(tmp / "run"),
            "ray": {"num_cpus": 1, "reuse_workers": True},
        }, sort_keys=False))
        exp, space = load_experiment(tmp / "exp.yaml")
        marker = f"DSE_MEMORY_BENCH={tmp.name}"
        _ray_session.WORKER_ENV["DSE_MEMORY_BENCH"] = tmp.name
        sampler = RssSampler()
        sampler.marker = marker.encode()
        sampler.start()
        t0 = time.time()
        run_study(exp, space, progress=False)
        wall = time.time() - t0
        sampler.stop.set()
        sampler.join()
        study = optuna.load_study(study_name=exp.name, storage=exp.storage_url)
        ends = [(t.number, t.datetime_complete.timestamp(), t.user_attrs.get("tags", {}).get("worker_pid"), t.state.name) for t in study.trials]
    rows = []
    for number, end, pid, state in sorted(ends):
        before = [s for s in sampler.samples if s[0] <= end and str(s[1]) == pid]
        rows.append({"trial": number, "pid": pid, "state": state, "rss_mb": before[-1][2] / 1024 if before else None})
    print(load_note())
    print(f"{len(rows)} trials in {wall:.0f} s; worker processes: {len({r['pid'] for r in rows})}")
    print("trial | worker pid | RSS MB at trial end")
    for r in rows:
        if r["trial"] < 5 or r["trial"] % 5 == 4 or r["trial"] == len(rows) - 1:
            print(f"{r['trial']} | {r['pid']} | {r['rss_mb'] if r['rss_mb'] is None else round(r['rss_mb'], 1)}")
    have = [r for r in rows if r["rss_mb"] is not None]
    growth = peak_growth = None
    if len(have) > 5:
        ref, last = have[4], have[-1]
        peak = max(have[4:], key=lambda r: r["rss_mb"])
        growth = (last["rss_mb"] - ref["rss_mb"]) / ref["rss_mb"]
        peak_growth = (peak["rss_mb"] - ref["rss_mb"]) / ref["rss_mb"]
        print(f"RSS growth from trial {ref['trial']} ({ref['rss_mb']:.0f} MB) to trial {last['trial']} ({last['rss_mb']:.0f} MB): {growth:+.1%}")
        print(f"peak RSS after trial {ref['trial']}: {peak['rss_mb']:.0f} MB at trial {peak['trial']} ({peak_growth:+.1%})")
    out = write_json({'note': load_note(), 'argv': sys.argv, 'wall_s': wall, 'rows': rows, 'growth': growth, 'peak_growth': peak_growth,
                      'worker_rss_growth': _workers.WORKER_RSS_GROWTH}, args.out, 'memory.json')
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
