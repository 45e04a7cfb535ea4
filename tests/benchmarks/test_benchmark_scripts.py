"""The benchmark scripts' own helpers and option checks (their numbers are printed by the scripts, never asserted here)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO

BENCH = REPO / "benchmarks"


def test_tree_cpu_counts_a_childs_cpu_once():
    """Until 2026-12-06 `self_seconds` also held RUSAGE_CHILDREN, which the /proc samples already counted: a child burning
    2 s of CPU gave 4.04 s (probe 17), so every "CPU s" the scripts printed counted Ray's processes twice."""
    sys.path.insert(0, str(BENCH))
    try:
        from _common import TreeCpu
    finally:
        sys.path.remove(str(BENCH))
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 1.5: pass\n"
    with TreeCpu(interval=0.1) as cpu:
        subprocess.run([sys.executable, "-c", burn], check=True, timeout=120)
    total = cpu.self_seconds + cpu.descendants_seconds
    assert 1.3 < total < 2.4, (cpu.self_seconds, cpu.descendants_seconds)  # once (plus the interpreter's start), not twice


@pytest.mark.parametrize("script, args, said", [
    ("search_quality.py", ["--methods", "ours-nsga2,long_ramp"], "--methods: unknown long_ramp; choose from"),
    ("trial_anatomy.py", ["--configs", "Before"], "--configs: unknown Before; choose from before,"),
    ("parallel_efficiency.py", ["--rounds", "0"], "--rounds must be at least 1"),
    ("training_speed.py", ["--epochs", "1"], "--epochs: each count must be at least 2"),
    # this session's probe of the scripts' options: a traceback before, for search_quality.py's a zero taken as the default
    ("orchestration_overhead.py", ["--points", "50,abc"], "argument --points: 'abc' is not a whole number"),
    ("orchestration_overhead.py", ["--tune-points", "0"], "argument --tune-points: 0 is below 2; give 2 or more"),
    ("memory.py", ["--n-trials", "0"], "argument --n-trials: 0 is below 6; give 6 or more"),
    ("search_quality.py", ["--ramp-epochs", "0"], "argument --ramp-epochs: 0 is below 1; give 1 or more"),
    # a seed above NumPy's and Optuna's range was a pydantic traceback from the first method's experiment
    ("search_quality.py", ["--seed", str(2**32)], "argument --seed: 4294967296 is above 4294967295; give 0..4294967295"),
])
def test_a_mistyped_option_is_refused_before_any_run(script, args, said):
    """Before: a KeyError or StatisticsError traceback, for search_quality.py after the earlier methods' minutes of work."""
    done = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and said in done.stderr and "Traceback" not in done.stderr, done.stderr[-2000:]


@pytest.mark.parametrize("script", ["memory.py", "orchestration_overhead.py", "parallel_efficiency.py", "search_quality.py",
                                    "training_speed.py", "trial_anatomy.py"])
def test_help_shows_each_default_once(script):
    """Before: `--out`'s help said "(default benchmarks/results/<name>.json) (default: None)", and two scripts' `--out`
    had no help at all."""
    done = subprocess.run([sys.executable, str(BENCH / script), "--help"], capture_output=True, text=True, timeout=300)
    text = " ".join(done.stdout.split())
    assert done.returncode == 0 and "(default: None)" not in text, text
    assert "--out OUT the JSON of results (default benchmarks/results/" in text and "(default: " in text, text
