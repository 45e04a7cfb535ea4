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
console = Console(stderr=True)
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
    progress: bool = typer.Option(True, help="Show a progress bar."),
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
        summary = run_study(exp, space, progress=progress and sys.stderr.isatty(), keep_files=keep_files)
    except DseError as e:
        _fail(e)
    import pandas as pd

    out.print(f"study {summary.study_name}: {summary.n_complete} complete, {summary.n_failed} failed in {summary.wall_seconds:.0f} s")
    if summary.front:
        out.print(front_table(pd.DataFrame(summary.front)))
    out.print(f"Optuna storage:     {summary.storage}")
    out.print(f"MLflow tracking:    {summary.tracking_uri}  (parent run {summary.parent_run_id})")
    out.print(f"Pareto front CSV:   {summary.front_csv}  (also artifact pareto_front.csv of the parent run)")
    out.print(f"Browse:             mlflow ui --backend-store-uri {summary.tracking_uri}")


@app.command()
def status(
    study: str = typer.Argument(..., help="Study name (the experiment's `name`)."),
    storage: Optional[str] = typer.Option(None, help="Optuna storage URL; default sqlite:///runs/<study>/optuna.db."),
    experiment: Optional[Path] = typer.Option(None, help="Take the storage URL from this experiment file."),
) -> None:
    """Trials done/failed/running and the current Pareto front."""
    _setup_logging(False)
    from dse.report import counts_line, front_frame, front_table, study_counts
    from dse.study import load_study

    try:
        if experiment is not None:
            from dse.config import load_experiment

            storage = load_experiment(experiment)[0].storage_url
        storage = storage or f"sqlite:///{(Path('runs') / study / 'optuna.db').resolve()}"
        st = load_study(study, storage)
    except DseError as e:
        _fail(e)
    out.print(f"study {study} ({storage})")
    out.print(counts_line(study_counts(st)))
    front = front_frame(st)
    if front.empty:
        out.print("no completed trial yet: no Pareto front")
    else:
        out.print(front_table(front))


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
