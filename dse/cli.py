"""The ``dse`` command line (typer)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from dse.exceptions import DseError

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

app = typer.Typer(help="Design-space exploration of HGQ2 networks on FPGAs: Optuna studies on Ray, logged to MLflow.", no_args_is_help=True)
console = Console(stderr=True, width=None if sys.stderr.isatty() else 200)
out = Console(width=None if sys.stdout.isatty() else 200)  # no truncated tables in logs and pipes


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("alembic", "mlflow", "ray", "absl", "tensorflow", "optuna"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _fail(e: DseError) -> None:
    console.print(f"[bold red]error:[/] {type(e).__name__}: {e}", highlight=False)
    raise typer.Exit(2)


@app.command()
def run(
    experiment: Path = typer.Argument(..., help="Experiment YAML file."),
    n_trials: Optional[int] = typer.Option(None, help="Override n_trials."),
    progress: bool = typer.Option(True, help="Show progress (a bar on a terminal, a line per trial elsewhere)."),
    keep_files: bool = typer.Option(False, help="Keep each trial's hls4ml project under <run_dir>/trials."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Run (or continue) the study an experiment file describes."""
    _setup_logging(verbose)
    from dse.config import load_experiment
    from dse.report import front_table
    from dse.study import run_study

    try:
        exp, space = load_experiment(experiment, n_trials=n_trials)
        summary = run_study(exp, space, progress=progress, keep_files=keep_files)
    except DseError as e:
        _fail(e)
    import pandas as pd

    from dse.config import redact_url

    out.print(f"study {summary.study_name}: {summary.n_complete} complete, {summary.n_failed} failed in {summary.wall_seconds:.0f} s")
    if summary.front:
        out.print(front_table(pd.DataFrame(summary.front)))
    out.print(f"Optuna storage:     {redact_url(summary.storage)}")
    out.print(f"MLflow tracking:    {redact_url(summary.tracking_uri)}  (parent run {summary.parent_run_id})")
    out.print(f"Pareto front CSV:   {summary.front_csv}  (also artifact pareto_front.csv of the parent run)")
    out.print(f"Browse:             mlflow ui --backend-store-uri {redact_url(summary.tracking_uri)}")


def _storage_for(study: str, storage: Optional[str], experiment: Optional[Path]) -> str:
    """Storage URL from --storage, else from --experiment, else sqlite:///runs/<study>/optuna.db."""
    if storage:
        return storage
    if experiment is not None:
        from dse.config import load_experiment

        return load_experiment(experiment)[0].storage_url
    return f"sqlite:///{(Path('runs') / study / 'optuna.db').resolve()}"


_STORAGE_HELP = "Optuna storage URL; default sqlite:///runs/<study>/optuna.db."
_EXPERIMENT_HELP = "Take the storage URL from this experiment file."


@app.command()
def status(
    study: str = typer.Argument(..., help="Study name (the experiment's `name`)."),
    storage: Optional[str] = typer.Option(None, help=_STORAGE_HELP),
    experiment: Optional[Path] = typer.Option(None, help=_EXPERIMENT_HELP),
) -> None:
    """Trials done/failed/running, the current Pareto front, and precise re-measurements of its members."""
    _setup_logging(False)
    from dse.config import redact_url
    from dse.report import counts_line, front_frame, front_table, study_counts
    from dse.study import load_study

    try:
        storage = _storage_for(study, storage, experiment)
        st = load_study(study, storage)
    except DseError as e:
        _fail(e)
    out.print(f"study {study} ({redact_url(storage)})")
    out.print(counts_line(study_counts(st)))
    front = front_frame(st)
    if front.empty:
        out.print("no completed trial yet: no Pareto front")
    else:
        out.print(front_table(front))
    from dse.report import measured_backends

    for backend in measured_backends(st):
        numbers = st.user_attrs.get(f"front:{backend}") or []
        if numbers:
            out.print(front_table(front_frame(st, numbers=numbers), title=f"Pareto front on {backend} figures"))


def _trial_list(text: Optional[str]) -> Optional[list[int]]:
    if not text:
        return None
    try:
        return [int(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError:
        raise typer.BadParameter(f"expected trial numbers like 3,7,9, got {text!r}", param_hint="--trials") from None


@app.command()
def synthesize(
    study: str = typer.Argument(..., help="Study name."),
    backend: str = typer.Option("yosys", help="Precise backend: da4ml, yosys, vivado or vitis."),
    front: bool = typer.Option(False, "--front", help="Re-measure the current Pareto front."),
    trials: Optional[str] = typer.Option(None, help="Comma-separated trial numbers to re-measure, e.g. 3,7,9."),
    profile: bool = typer.Option(False, help="Also log hls4ml numerical profiling plots for these trials."),
    storage: Optional[str] = typer.Option(None, help=_STORAGE_HELP),
    experiment: Optional[Path] = typer.Option(None, help=_EXPERIMENT_HELP),
    keep_files: bool = typer.Option(False, help="Keep RTL and synthesis logs under <run_dir>/synth."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Re-measure finished trials with a precise backend (cached), log to their MLflow runs, recompute the front."""
    _setup_logging(verbose)
    from dse.study import synthesize as run_synthesis

    numbers = _trial_list(trials)
    try:
        summary = run_synthesis(
            study, _storage_for(study, storage, experiment), backend, trials=numbers, front=front, profile=profile, keep_files=keep_files
        )
    except DseError as e:
        _fail(e)
    out.print(
        f"{backend}: {len(summary.launched)} measured, {len(summary.cached)} from cache, "
        f"{len(summary.skipped)} not applicable, {len(summary.failed)} failed in {summary.seconds:.0f} s"
    )
    for n, why in summary.skipped.items():
        out.print(f"  trial {n}: skipped: {why}")
    for n, why in summary.failed.items():
        out.print(f"  trial {n}: FAILED: {why}")
    if summary.front_csv:
        out.print(f"front on {backend} figures: trials {summary.front}; CSV {summary.front_csv} (also on the parent run)")
    if summary.failed:
        raise typer.Exit(1)


@app.command()
def calibrate(
    study: str = typer.Argument(..., help="Study name."),
    backend: str = typer.Option("yosys", help="The precise backend whose figures are the reference."),
    storage: Optional[str] = typer.Option(None, help=_STORAGE_HELP),
    experiment: Optional[Path] = typer.Option(None, help=_EXPERIMENT_HELP),
) -> None:
    """How well the cheap estimates predict the precise figures (relative error, rank correlation)."""
    _setup_logging(False)
    from dse.study import calibrate as run_calibration

    try:
        result = run_calibration(study, _storage_for(study, storage, experiment), backend)
    except DseError as e:
        _fail(e)
    from rich.table import Table

    table = Table(title=f"estimates vs {backend} ({result.n_trials} trials)")
    for col in ("estimate", "precise", "n", "mean rel. error", "median rel. error", "max |rel. error|", "Spearman", "scale"):
        table.add_column(col, justify="right")
    for s in result.stats:
        table.add_row(
            s.estimate, s.precise, str(s.n), f"{s.mean_rel_error:+.1%}", f"{s.median_rel_error:+.1%}",
            f"{s.max_abs_rel_error:.1%}", f"{s.spearman:.3f}", f"{s.scale:.3f}",
        )
    out.print(table)
    out.print(f"pairs: {result.csv} (also artifact calibration_{backend}.csv of the parent run)")


@app.command()
def check(experiment: Path = typer.Argument(..., help="Experiment YAML file.")) -> None:
    """Validate an experiment, its search space and its dataset without running anything."""
    _setup_logging(False)
    from dse.config import load_experiment
    from dse.data import load_dataset

    try:
        exp, space = load_experiment(experiment)
        splits = load_dataset(exp.dataset)
    except DseError as e:
        _fail(e)
    out.print(f"experiment {exp.name}: OK; search space {exp.search_space} with {len(space.parameters)} parameters, {len(space.rules)} rules")
    out.print(f"dataset {exp.dataset.name}: {splits.summary()}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
