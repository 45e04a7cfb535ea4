"""Helpers shared by the benchmark scripts (not part of the package)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's defaults in ``--help``, except a default of ``None``, whose help says what it means
    (``--out``: "(default benchmarks/results/<name>.json)" without a second "(default: None)")."""

    def _get_help_string(self, action):
        return action.help if action.default is None else super()._get_help_string(action)


def at_least(low: int, high: int | None = None):
    """An argparse ``type``: a whole number of ``low`` or more, and at most ``high`` where given (``--n-trials 0`` or
    ``--points abc`` refused before any run, with the option named by argparse; before, a traceback, some after minutes
    of work; ``--seed`` above 2**32-1, a pydantic traceback)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is below {low}; give {low} or more")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"{value} is above {high}; give {low}..{high}")
        return value
    parse.__name__ = f"a whole number >= {low}" if high is None else f"a whole number {low}..{high}"
    return parse


def counts(low: int):
    """An argparse ``type``: comma-separated whole numbers of ``low`` or more (``--points 50,200``), as a list."""
    one = at_least(low)

    def parse(text: str) -> list[int]:
        values = [one(x.strip()) for x in text.split(",") if x.strip()]
        if not values:
            raise argparse.ArgumentTypeError("give at least one number, comma-separated")
        return values
    parse.__name__ = f"comma-separated whole numbers >= {low}"
    return parse


def non_negative(text: str) -> float:
    """An argparse ``type``: a finite number >= 0 (``--rss-growth``)."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text} is not a finite number >= 0")
    return value


def use_this_checkout() -> None:
    """Import ``dse`` from this checkout, in the driver and (through PYTHONPATH) in Ray workers."""
    sys.path.insert(0, str(REPO))
    os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("PYTHONWARNINGS", "ignore")


def self_cpu() -> float:
    """CPU seconds (user + system) of this process alone (its children are sampled by :class:`TreeCpu`)."""
    a = resource.getrusage(resource.RUSAGE_SELF)
    return a.ru_utime + a.ru_stime


class TreeCpu:
    """CPU seconds of this process and all its descendants (Ray's raylet, workers, g++), sampled from /proc.

    Each descendant's own ``utime+stime`` is sampled every ``interval`` s and its
    largest value kept, so the CPU of a process that ends between samples is missed for at most
    ``interval`` s. Processes that are not our descendants (other users of the machine) are not counted.
    ``self_seconds`` is this process's own CPU (``RUSAGE_SELF``): until 2026-12-06 it also held
    ``RUSAGE_CHILDREN``, the CPU of children it had waited for (Ray's processes after ``ray.shutdown``),
    which the samples already counted, so "CPU s" figures before then are up to about 16% high
    (2.9 of 18.3 s in a journal overhead run, probe 17).
    """

    def __init__(self, interval: float = 0.5):
        self.interval, self.seen, self._stop = interval, {}, threading.Event()
        self.tick = os.sysconf("SC_CLK_TCK")
        self.root = os.getpid()

    def _sample(self) -> None:
        parent, cpu = {}, {}
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                raw = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            f = raw[raw.rindex(")") + 2:].split()
            parent[int(d)] = int(f[1])
            cpu[int(d)] = (int(f[11]) + int(f[12])) / self.tick  # own utime + stime: children are sampled themselves
        for pid, c in cpu.items():
            p, hops = pid, 0
            while p not in (0, 1, self.root) and hops < 50:
                p, hops = parent.get(p, 0), hops + 1
            if p == self.root and pid != self.root:
                self.seen[pid] = max(self.seen.get(pid, 0.0), c)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> "TreeCpu":
        self.t0_self = self_cpu()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self.thread.join()
        self.self_seconds = self_cpu() - self.t0_self

    @property
    def descendants_seconds(self) -> float:
        return sum(self.seen.values())


def run_main(main) -> None:
    """Run a benchmark's ``main``; Ctrl-C ends it with one line and exit code 130 (no traceback, no results written)."""
    try:
        main()
    except KeyboardInterrupt:
        print("interrupted (Ctrl-C): no results written; the runs' temporary folders are removed", file=sys.stderr)
        sys.exit(130)


def load_note() -> str:
    """Load average and core count, printed beside every table: numbers on a shared machine are noisy."""
    la = os.getloadavg()
    return f"{platform.node()}: {os.cpu_count()} cores, load average {la[0]:.2f} {la[1]:.2f} {la[2]:.2f} at {time.strftime('%Y-%m-%d %H:%M:%S')}"


def write_json(data: dict, out: str | None, default_name: str) -> Path:
    path = Path(out) if out else Path(__file__).resolve().parent / "results" / default_name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str))
    return path
