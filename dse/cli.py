"""The ``dse`` command line (typer)."""

from __future__ import annotations

import logging
import math
import os
import shlex
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.text import Text

from dse.exceptions import ConfigError, DriverTerminated, DseError

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

_WRITING = ("An experiment file names the dataset, the network (model.hidden), the training, the search space file, the "
            "objectives and constraints; examples: experiments/quickstart.yaml and search_spaces/default.yaml of dse's "
            "source repository (an installed dse holds neither), whose README.md lists every field and search parameter. Start with: dse check FILE, then dse run FILE.")
_EXIT_CODES = ("Exit codes: 0 done (trials of the study may have failed or broken its constraints: its summary says so); "
               "1 nothing came of it (every trial of `dse run` failed; a re-measurement of `dse synthesize` failed); "
               "2 bad input (one error: line; nothing created); 130 and 143 stopped by Ctrl-C and SIGTERM.")
app = typer.Typer(help="Design-space exploration of HGQ2 networks on FPGAs: Optuna studies on Ray, logged to MLflow.",
                  epilog=f"{_WRITING}\n\n{_EXIT_CODES}", no_args_is_help=True)
console = Console(stderr=True, width=None if sys.stderr.isatty() else 200)
out = Console(width=None if sys.stdout.isatty() else 200)  # no truncated tables in logs and pipes


_VERBOSE = typer.Option(False, "--verbose", "-v", help="Log dse's steps (INFO) to stderr, not only warnings and errors.")
_READ_TRACKING = typer.Option(
    None, "--tracking-uri", help="The study's MLflow runs are at this tracking URI instead of the one it recorded: its server "
    "through another address (a port-forward to a cluster), or its store moved (sqlite:////new/place/mlflow.db).")


_VERBOSE_ALL = False  # `dse -v <command>`: the global flag (main below), as each command's own -v


def _version(value: bool) -> None:
    if value:
        from dse import __version__
        from dse.tracking import provenance_tags

        commit = provenance_tags().get("dse.git_commit")
        _say(f"dse {__version__}" + (f" (git {commit[:12]}{', with uncommitted changes' if provenance_tags().get('dse.git_dirty') == 'true' else ''})" if commit else ""))
        raise typer.Exit(0)


@app.callback()
def _main(
    verbose: bool = _VERBOSE,
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print dse's version (and git commit) and exit."),
) -> None:
    """The options every command shares (``-v`` also after the command's name), and ``--version``."""
    global _VERBOSE_ALL
    _VERBOSE_ALL = verbose


def _setup_logging(verbose: bool) -> None:
    verbose = verbose or _VERBOSE_ALL
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("alembic", "mlflow", "ray", "absl", "tensorflow", "optuna"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not verbose:  # Optuna and MLflow set their own loggers to INFO as they are imported ("A new study
        # created in RDB", "Creating initial MLflow database tables" on every run); -v keeps them
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
        # MLflow logs each SQLite error of its store with its traceback, then raises it, and dse reports what it raised
        # (a full disk: one line, where this logger added some 280)
        logging.getLogger("mlflow.store.db.utils").addFilter(_NO_STORE_TRACEBACKS)
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)


class _NoStoreTracebacks(logging.Filter):
    """Drops MLflow's "SQLAlchemy database error" records (``mlflow.store.db.utils``), whose errors MLflow raises next."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("SQLAlchemy database error")


_NO_STORE_TRACEBACKS = _NoStoreTracebacks()  # one instance: logging adds a filter once


def _fail(e: DseError) -> None:
    """Print ``e`` as one ``error:`` message (user text verbatim, never read as rich markup) and exit with code 2."""
    console.print(Text.assemble(("error:", "bold red"), f" {type(e).__name__}: {e}"), highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _say(text: str) -> None:
    """Print ``text`` to stdout verbatim: paths and names may hold ``[...]``, which rich would read as markup."""
    out.print(text, markup=False, highlight=False, emoji=False, soft_wrap=True)


@app.command(epilog=_WRITING)
def run(
    experiment: Path = typer.Argument(..., help="Experiment YAML file."),
    n_trials: Optional[int] = typer.Option(None, help="Override n_trials."),
    progress: bool = typer.Option(True, help="Show progress (a bar on a terminal, a line per trial elsewhere)."),
    keep_files: bool = typer.Option(False, help="Keep each trial's hls4ml project under <run_dir>/trials."),
    allow_changed: bool = typer.Option(
        False, "--allow-changed", help="Continue an existing study even if its dataset, model, training, search space, constraints or hls4ml settings changed (not other objective metrics once a trial finished, nor constraints that trials told feasible now break: those are refused)."
    ),
    verbose: bool = _VERBOSE,
) -> None:
    """Run (or continue) the study an experiment file describes."""
    _setup_logging(verbose)
    from dse.config._loading import load_experiment_from_cli
    from dse.report import counts_line, front_table
    from dse.study import run_study

    try:
        exp, space = load_experiment_from_cli(experiment, n_trials=n_trials)
        summary = run_study(exp, space, progress=progress, keep_files=keep_files, allow_changed=allow_changed)
    except DseError as e:
        _fail(e)
    except (KeyboardInterrupt, DriverTerminated) as e:  # 130 / 143: 128 + SIGINT / SIGTERM, as a shell reports them
        what = "Ctrl-C" if isinstance(e, KeyboardInterrupt) else "SIGTERM"
        console.print(f"stopped ({what}): trials that were running, if any, are FAIL (TrialInterruptedError) and re-enqueued; "
                      f"`dse run {shlex.quote(str(experiment))}{f' --n-trials {n_trials}' if n_trials is not None else ''}` continues the study",
                      markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(130 if isinstance(e, KeyboardInterrupt) else 143) from None
    import pandas as pd

    from dse.config import redact_url

    if summary.nothing_to_run:
        c = summary.counts
        have = f"{c.evaluated} evaluated trials" if c is not None else "its evaluated trials"
        _say(f"nothing to run: the study already has {have}, and n_trials is {exp.n_trials}; raise n_trials "
             "(or pass --n-trials) to run more")
    if summary.counts is not None:  # as `dse status` counts: feasible / infeasible, harvested checkpoints
        _say(f"study {summary.study_name}: {counts_line(summary.counts).removeprefix('trials: ')} ({summary.wall_seconds:.0f} s)")
    else:
        _say(f"study {summary.study_name}: {summary.n_complete} complete, {summary.n_failed} failed in {summary.wall_seconds:.0f} s")
    c = summary.counts
    if exp.training.harvest_checkpoints and c is not None and c.complete and not c.harvested:
        from dse.study._orchestrator import NO_CHECKPOINT, harvest_advice

        _say(f"nothing harvested: training.harvest_checkpoints is {exp.training.harvest_checkpoints}, but in every "
             f"completed trial {NO_CHECKPOINT}; {harvest_advice(exp, space)}")
    if summary.front:
        feasible = summary.counts is not None and summary.counts.feasible is not None  # as `dse status` titles it
        frame = pd.DataFrame(summary.front)
        frame.attrs["objectives"] = [o.metric for o in exp.objectives]  # every objective shown, as `dse status` shows them
        out.print(front_table(frame, title="Pareto front (feasible trials)" if feasible else "Pareto front", width=out.width))
    elif summary.n_complete:
        from dse.report import no_front_advice
        from dse.study import load_study

        _say(no_front_advice(load_study(summary.study_name, summary.storage), exp.constraints))
    _say(f"Optuna storage:     {redact_url(summary.storage)}")
    _say(f"MLflow tracking:    {redact_url(summary.tracking_uri)}  (parent run {summary.parent_run_id})")
    _say(f"Pareto front CSV:   {summary.front_csv}  (also artifact pareto_front.csv of the parent run)")
    if keep_files and not summary.nothing_to_run:
        _say(f"Trial files:        {Path(summary.front_csv).parent / 'trials'}/trial_<5-digit number>/  (--keep-files: each trial's model, and its hls4ml project where one was written)")
    if summary.remeasured is not None:
        _say_synthesis(summary.remeasured, prefix="resources.synthesize_front ")
    if summary.tracking_uri.startswith(("http://", "https://")):  # a server: its own UI
        _say(f"Browse:             {redact_url(summary.tracking_uri)}  (the MLflow server's UI)")
    else:
        _say(f"Browse:             mlflow ui --backend-store-uri {shlex.quote(redact_url(summary.tracking_uri))}")  # a command to paste
    if summary.n_complete == 0 and summary.failures:
        # nothing to show for the run: a script or CI job must see it (Optuna's optimize would return quietly)
        reasons = "; ".join(f"{n} x {why[:300]}" for n, why in summary.failures.values())
        console.print(Text.assemble(("error:", "bold red"), f" no trial completed; every trial failed: {reasons}"),
                      highlight=False, soft_wrap=True)
        raise typer.Exit(1)


def _storage_for(study: str, storage: Optional[str]) -> str:
    """Storage from --storage, else sqlite:///runs/<study>/optuna.db (or the journal runs/<study>/optuna.log if only it exists)."""
    if storage:
        return storage
    from dse.config import JOURNAL_FILE

    run_dir = (Path("runs") / study).resolve()
    if not (run_dir / "optuna.db").exists() and (run_dir / JOURNAL_FILE).is_file():
        return str(run_dir / JOURNAL_FILE)
    return f"sqlite:///{run_dir / 'optuna.db'}"


def _study_and_storage(study: Optional[str], storage: Optional[str], experiment: Optional[Path]) -> tuple[str, str]:
    """The study name (the STUDY argument, else the experiment's ``name``) and its storage: --storage, else the
    experiment's, else the default of :func:`_storage_for`. The experiment file is read only where one of them is needed.

    Raises:
        typer.BadParameter: neither a STUDY argument nor ``--experiment`` was given.
        ConfigError: the experiment file is invalid.
        StudyNotFoundError: the experiment's default storage is missing and its run directory is relative
            (:func:`_check_relative_run_dir`).
    """
    if study is not None and experiment is None and study.endswith((".yaml", ".yml")) and Path(study).is_file():
        study, experiment = None, Path(study)  # `dse status experiment.yaml`: the file, as --experiment (before: "no study
        # named 'experiment.yaml'")
    if study is not None and (storage or experiment is None):
        return study, _storage_for(study, storage)
    if experiment is None:
        raise typer.BadParameter("give the study name (the experiment's `name`), or --experiment FILE to take it from "
                                 "the experiment", param_hint="STUDY")
    from dse.config._loading import experiment_to_read

    exp = experiment_to_read(experiment)
    study = study or exp.name
    if not storage:
        _check_relative_run_dir(exp, experiment, study)
    return study, storage or exp.storage_url


def _check_relative_run_dir(exp, experiment: Path, study: str) -> None:
    """Refuse, with why, an experiment whose default storage is missing while its run directory is relative.

    ``run_dir`` (``runs/<name>`` when left out) is taken from the current folder, as ``dse run`` took it from the
    folder it ran in; from another folder, the study was said not to exist and ``--experiment`` to be passed, which was.
    """
    from dse.config import storage_file
    from dse.exceptions import StudyNotFoundError

    relative = exp.run_dir is None or not Path(exp.run_dir).expanduser().is_absolute()
    db = storage_file(exp.storage_url) if exp.storage is None or exp.storage == "journal" else None
    if relative and db is not None and not db.exists():
        where = f"run_dir {exp.run_dir}" if exp.run_dir else f"run_dir (default runs/{exp.name})"
        found = f"no study named {study!r} at {db} (it does not exist)"
        raise StudyNotFoundError(
            f"{found}: the {where} of {experiment} is relative, so it is taken from the current folder {Path.cwd()}, as "
            "`dse run` takes it from the folder it runs in. If the study ran, run this command from the folder it ran in, "
            f"or pass --storage; if it never ran, `dse run {shlex.quote(str(experiment))}` first", found)


_STORAGE_HELP = ("Optuna storage URL, or a journal file (a path ending in .log, as storage: journal writes); "
                 "default sqlite:///runs/<study>/optuna.db, or runs/<study>/optuna.log if only that exists.")
_EXPERIMENT_HELP = ("Take the storage URL, and the study name when STUDY is left out, from this experiment file; its other "
                    "fields are not read (the study's stored experiment is).")
_STUDY_HELP = "Study name (the experiment's `name`), or its experiment file (.yaml); may be left out when --experiment is given."


@app.command()
def status(
    study: Optional[str] = typer.Argument(None, help=_STUDY_HELP, show_default=False),
    storage: Optional[str] = typer.Option(None, help=_STORAGE_HELP),
    experiment: Optional[Path] = typer.Option(None, help=_EXPERIMENT_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object for scripts (counts, failures, the fronts "
                                 "with every figure at full precision), nothing else."),
    verbose: bool = _VERBOSE,
) -> None:
    """Trials done/failed/running, the current Pareto front, and precise re-measurements of its members."""
    _setup_logging(verbose)
    from dse.config import redact_url
    from dse.report import (
        counts_line, failures_by_reason, front_frame, front_table, no_front_advice, study_counts, trial_numbers_text,
    )
    from dse.store import StudyRecords
    from dse.study import load_study, orphaned_trials, precise_front

    try:
        study, storage = _study_and_storage(study, storage, experiment)
        st = load_study(study, storage)
    except DseError as e:
        _fail(e)
    counts = study_counts(st)
    records = StudyRecords(st)
    if as_json:
        sys.stdout.write(_status_json(study, redact_url(storage), st, counts, records) + "\n")  # as written: no console
        return
    _say(f"study {study} ({redact_url(storage)})")
    _say(counts_line(counts))
    for h in records.experiment_history():  # before, nothing here said the study's trials ran with other settings
        changed = "; ".join(h["changed"][:3]) + (f"; ... ({len(h['changed'])} in all)" if len(h["changed"]) > 3 else "")
        _say(f"experiment changed (--allow-changed) from trial {h['until_trial']} on: {changed} (the earlier one: "
             "experiment_history.json of the parent run; each trial run's tag dse.experiment_version names its own)")
    for kind, numbers, why in failures_by_reason(st) if counts.failed else []:  # before: a count, and no reason anywhere here
        _say(f"  failed: {trial_numbers_text(numbers)}: {' '.join(why.split())[:300]}" + (" (the latest)" if len(numbers) > 1 else ""))
    orphans = orphaned_trials(st) if counts.running else []
    if orphans:
        _say(f"running trials {', '.join(map(str, orphans))} belong to a driver on this machine that is gone: "
             "`dse run` again fails them as DriverLostError and evaluates their parameters again")
    grace, silent = _silent_running(st, records) if counts.running else (None, {})
    silent = {n: s for n, s in silent.items() if n not in orphans}
    if silent:
        one = len(silent) == 1
        _say(f"running {trial_numbers_text(list(silent))}: no heartbeat from {'its driver' if one else 'their drivers'} for "
             f"{math.floor(min(silent.values()))} s or more, past the study's heartbeat_grace_s "
             f"({grace:g} s): {'the driver looks' if one else 'the drivers look'} "
             "gone (stopped on another machine, or a dse that recorded no process id; or a driver machine's clock is "
             "behind this one's); the next "
             f"`dse run` fails {'it' if one else 'them'} as DriverLostError and evaluates {'its' if one else 'their'} "
             "parameters again")
    front = front_frame(st)
    if front.empty:
        if counts.feasible is not None and counts.complete:  # each complete trial infeasible: why, and what to do
            try:  # the constraints now, to tell a loosened budget from one the trials still break
                constraints = records.experiment(reading=True).constraints
            except DseError:  # not made by `dse run`, or its experiment names a module not importable here
                constraints = None
            _say(no_front_advice(st, constraints))
        else:
            _say("no completed trial yet: no Pareto front" if counts.running or counts.waiting else "no completed trial: no Pareto front")
    else:
        out.print(front_table(front, title="Pareto front (feasible trials)" if counts.feasible is not None else "Pareto front",
                              width=out.width))
    from dse.study._synthesize import unmeasured_front_members

    for backend in records.measured_backends():
        numbers = precise_front(st, backend)  # recomputed from the stored measurements: feasible trials only
        if numbers:
            out.print(front_table(front_frame(st, numbers=numbers), title=f"Pareto front on {backend} figures", width=out.width))
        elif not front.empty:  # before: nothing said, beside a front whose members the precise figures put over budget
            from dse.study._synthesize import empty_precise_front_reason

            _say(f"Pareto front on {backend} figures: none: {empty_precise_front_reason(st, backend)}")
        if unmeasured := unmeasured_front_members(st, backend):  # joined the front after the last `dse synthesize`
            _say(f"Pareto front on {backend} figures leaves out {trial_numbers_text(unmeasured)} of the front, not "
                 f"measured by {backend}: `dse synthesize {study} --front --backend {backend}` measures them (or names "
                 "why it cannot)")


def _silent_running(st, records) -> tuple[float | None, dict[int, float]]:
    """The study's ``heartbeat_grace_s`` (s) and its RUNNING trials whose driver has sent no heartbeat for longer:
    trial number -> seconds (:func:`dse.study.silent_trials`). ``(None, {})`` for a study whose experiment is not
    stored or not readable here (no grace to judge by; heartbeats are dse's)."""
    from dse.study import silent_trials

    try:
        grace = records.experiment(reading=True).heartbeat_grace_s
    except DseError:
        return None, {}
    return grace, silent_trials(st, grace)


def _status_json(study: str, storage: str, st, counts, records) -> str:
    """``dse status --json``: ``study``, ``storage`` (password masked), ``counts`` (:class:`dse.report.StudyCounts`),
    ``failures`` (per reason type: trial numbers and the latest reason), ``orphaned_running`` (trials of a driver on
    this machine that is gone), ``silent_running`` (trial number -> seconds since its driver's last heartbeat, for
    RUNNING trials past the study's ``heartbeat_grace_s``; orphaned ones too, once their heartbeat is that old), ``experiment_history`` (what ``--allow-changed`` accepted, before which trial),
    ``front`` (the rows of ``pareto_front.csv``: :func:`dse.report.front_frame`, missing and infinite values ``null``) and
    ``precise_fronts`` (per re-measuring backend, its front's rows) and ``precise_fronts_unmeasured`` (per re-measuring
    backend, the members of ``front`` it supports but has not measured: they joined the front after its last
    ``dse synthesize --front``)."""
    import dataclasses
    import json

    from dse.report import failures_by_reason, front_frame
    from dse.study import orphaned_trials, precise_front
    from dse.study._synthesize import unmeasured_front_members

    def plain(v):  # numpy scalars as Python's; NaN and infinities (not JSON) as null; every float as it is stored
        v = v.item() if hasattr(v, "item") else v
        return None if isinstance(v, float) and not math.isfinite(v) else v

    def rows(frame) -> list[dict]:  # pandas' to_json rounds to 10 digits
        return [{k: plain(v) for k, v in row.items()} for row in frame.to_dict("records")]

    return json.dumps({
        "study": study, "storage": storage, "counts": dataclasses.asdict(counts),
        "failures": [{"type": kind, "trials": numbers, "latest_reason": why} for kind, numbers, why in failures_by_reason(st)],
        "orphaned_running": orphaned_trials(st) if counts.running else [],
        "silent_running": {str(n): round(s, 1) for n, s in _silent_running(st, records)[1].items()} if counts.running else {},
        "experiment_history": [{k: h[k] for k in ("version", "until_trial", "changed")} for h in records.experiment_history()],
        "front": rows(front_frame(st)),
        "precise_fronts": {b: rows(front_frame(st, numbers=n)) if (n := precise_front(st, b)) else []
                           for b in records.measured_backends()},
        "precise_fronts_unmeasured": {b: unmeasured_front_members(st, b) for b in records.measured_backends()},
    }, indent=2)


def _trial_list(text: Optional[str]) -> Optional[list[int]]:
    if not text:
        return None
    items = [x.strip() for x in text.split(",")]
    if all(x.isdigit() for x in items):  # "1 7" is two numbers run together, not 17; "4,,7" has a gap
        return [int(x) for x in items]
    raise typer.BadParameter(f"expected trial numbers separated by commas, like 3,7,9, got {text!r}", param_hint="--trials")


@app.command()
def synthesize(
    study: Optional[str] = typer.Argument(None, help=_STUDY_HELP, show_default=False),
    backend: str = typer.Option("yosys", help="Precise backend: da4ml, yosys, vivado or vitis."),
    front: bool = typer.Option(False, "--front", help="Re-measure the current Pareto front."),
    trials: Optional[str] = typer.Option(None, help="Comma-separated trial numbers to re-measure, e.g. 3,7,9."),
    profile: bool = typer.Option(False, help="Also log hls4ml numerical profiling plots for these trials."),
    storage: Optional[str] = typer.Option(None, help=_STORAGE_HELP),
    experiment: Optional[Path] = typer.Option(None, help=_EXPERIMENT_HELP),
    keep_files: bool = typer.Option(False, help="Keep RTL and synthesis logs under <run_dir>/synth."),
    synthesis_timeout_s: Optional[float] = typer.Option(
        None, help="Seconds per tool run (Yosys, Vivado HLS, Vitis); default: the study's resources.synthesis_timeout_s."),
    tracking_uri: Optional[str] = _READ_TRACKING,
    ray_address: Optional[str] = typer.Option(
        None, help="Ray to measure on: 'local' starts one on this machine (a study run on a cluster that is gone) "
                   "(default: the study's ray.address)."),
    verbose: bool = _VERBOSE,
) -> None:
    """Re-measure finished trials with a precise backend (cached), log to their MLflow runs, recompute the front."""
    _setup_logging(verbose)
    from dse.study import synthesize as run_synthesis

    numbers = _trial_list(trials)
    try:
        study, storage = _study_and_storage(study, storage, experiment)
        summary = run_synthesis(
            study, storage, backend, trials=numbers, front=front, profile=profile, keep_files=keep_files,
            synthesis_timeout_s=synthesis_timeout_s, tracking_uri=tracking_uri, ray_address=ray_address,
        )
    except (KeyboardInterrupt, DriverTerminated) as e:  # 130 / 143 with one line (probe 44: SIGTERM exited 1, silent)
        what = "Ctrl-C" if isinstance(e, KeyboardInterrupt) else "SIGTERM"
        console.print(f"stopped ({what}): the trials measured before it keep their {backend} figures (cached: running the "
                      "same command again takes them without measuring again and measures the rest)",
                      markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(130 if isinstance(e, KeyboardInterrupt) else 143) from None
    except DseError as e:
        _fail(e)
    _say_synthesis(summary)
    if summary.failed:  # on stderr too, as every exit code but 0 (before: on stdout only)
        console.print(Text.assemble(("error:", "bold red"), f" {len(summary.failed)} of {len(summary.failed) + len(summary.launched)} "
                                    f"re-measurements with {summary.backend} failed (trials {', '.join(map(str, summary.failed))}); "
                                    "the rest are logged and cached"), highlight=False, soft_wrap=True)
        raise typer.Exit(1)


def _say_synthesis(summary, prefix: str = "") -> None:
    """Print a :class:`dse.study.SynthesisSummary`: counts, each skipped or failed trial, the precise front and its CSV."""
    backend = summary.backend
    _say(
        f"{prefix}{backend}: {len(summary.launched)} measured, {len(summary.cached)} from cache, "
        f"{len(summary.skipped)} not applicable, {len(summary.failed)} failed in {summary.seconds:.0f} s"
    )
    for n, why in summary.skipped.items():
        _say(f"  trial {n}: skipped: {why}")
    for n, why in summary.failed.items():
        _say(f"  trial {n}: FAILED: {why}")
    if summary.profiled:
        _say(f"profiling plots logged (artifacts profiling/ of each trial's run): trials {summary.profiled}")
    if summary.kept:
        _say(f"files kept (--keep-files): {summary.kept}/trial_<5-digit number>/ of each measured trial, on the machine "
             "that measured it")
    if summary.front_csv:
        # before: "none (no measured trial is feasible)", also where a trial told infeasible meets its bound on these figures
        front = f"trials {summary.front}" if summary.front else f"none: {summary.no_front}"
        _say(f"front on {backend} figures: {front}; CSV {summary.front_csv} (also on the parent run)")
    elif not summary.launched and not summary.cached:
        _say(f"no trial was measured with {backend}, so there is no front on its figures and no CSV")


@app.command()
def calibrate(
    study: Optional[str] = typer.Argument(None, help=_STUDY_HELP, show_default=False),
    backend: str = typer.Option("yosys", help="The precise backend whose figures are the reference."),
    storage: Optional[str] = typer.Option(None, help=_STORAGE_HELP),
    experiment: Optional[Path] = typer.Option(None, help=_EXPERIMENT_HELP),
    tracking_uri: Optional[str] = _READ_TRACKING,
    verbose: bool = _VERBOSE,
) -> None:
    """How well the cheap estimates predict the precise figures (relative error, rank correlation)."""
    _setup_logging(verbose)
    from dse.study import calibrate as run_calibration

    try:
        study, storage = _study_and_storage(study, storage, experiment)
        result = run_calibration(study, storage, backend, tracking_uri=tracking_uri)
    except DseError as e:
        _fail(e)
    from rich.table import Table

    table = Table(title=f"estimates vs {backend} ({result.n_trials} trial{'' if result.n_trials == 1 else 's'})")
    for col in ("estimate", "precise", "n", "mean rel. error", "median rel. error", "max |rel. error|", "Spearman", "scale"):
        table.add_column(col, justify="right")
    for s in result.stats:
        table.add_row(
            s.estimate, s.precise, str(s.n), f"{s.mean_rel_error:+.1%}", f"{s.median_rel_error:+.1%}",
            f"{s.max_abs_rel_error:.1%}", "n/a" if math.isnan(s.spearman) else f"{s.spearman:.3f}", f"{s.scale:.3f}",
        )
    out.print(table)
    if result.stats:
        _say(
            "rel. error = (estimate - precise) / precise, per trial: + means the estimate is above the precise figure; "
            "scale: the factor s of precise = s x estimate that fits best (least squares through 0), to multiply an "
            "estimate by" + ("; latency_cycles in clock cycles" if any("latency" in s.estimate for s in result.stats) else "")
        )  # probe 31: the latency note beside a table without a latency row
    if any(math.isnan(s.spearman) for s in result.stats):
        _say(
            "Spearman n/a: a rank correlation needs at least 3 trials whose figures differ; "
            + (f"measure more trials with `dse synthesize {study} --trials {','.join(map(str, result.unmeasured[:10]))} "
               f"--backend {backend}`" if result.unmeasured else
               f"every completed trial {backend} can measure is measured: run more trials first (`dse run <experiment file> --n-trials N`)")
        )
    _say(f"pairs: {result.csv} (also artifact calibration_{backend}.csv of the parent run)")


@app.command(epilog=_WRITING)
def check(
    experiment: Path = typer.Argument(..., help="Experiment YAML file."),
    allow_changed: bool = typer.Option(False, "--allow-changed", help="Accept an existing study's changed experiment, as `dse run --allow-changed` does."),
    n_trials: Optional[int] = typer.Option(None, "--n-trials", min=1, help="Check for this n_trials, as `dse run --n-trials` would run it."),
    verbose: bool = _VERBOSE,
) -> None:
    """Make every check `dse run` makes before its first trial (config, addresses, data, hls4ml, an existing study's experiment); create nothing."""
    _setup_logging(verbose)
    from dse.config._loading import load_experiment_from_cli
    from dse.study._preflight import _preflight

    try:
        exp, space = load_experiment_from_cli(experiment, n_trials=n_trials)
        splits, finished = _preflight(exp, space, allow_changed=allow_changed, compare_stored=True)
    except DseError as e:
        _fail(e)
    n_params, n_rules = len(space.parameters), len(space.rules)
    _say(f"experiment {exp.name}: OK; search space {exp.search_space} with {n_params} parameter{'' if n_params == 1 else 's'}, "
         f"{n_rules} rule{'' if n_rules == 1 else 's'}")
    n = splits.summary()
    _say(f"dataset {exp.dataset.name}: {n['n_train']} training, {n['n_val']} validation and {n['n_test']} test samples, "
         f"{n['n_features']} features, {n['n_classes']} classes")
    from dse.study._preflight import mixed_figure_sources, unseen_reuse_factor

    if note := unseen_reuse_factor(exp, space):  # probe 31: a knob no objective could see, sampled unsaid
        _say(f"note: {note}")
    if note := mixed_figure_sources(exp, space):  # probe 41: one front of da4ml's and the estimate's LUTs, unsaid
        _say(f"note: {note}")
    if finished:  # `dse run` would start no trial: what one needs was not checked
        _say(f"study {exp.name} has nothing left to run (n_trials {exp.n_trials}), so what a trial needs (g++, resource "
             f"tools, room for Ray's files, a local Ray's CPUs) was not checked; `dse check {shlex.quote(str(experiment))} "
             "--n-trials N` checks it for more trials")


@app.command()
def report(
    study: Optional[str] = typer.Argument(None, help=_STUDY_HELP, show_default=False),
    storage: Optional[str] = typer.Option(None, help=_STORAGE_HELP),
    experiment: Optional[Path] = typer.Option(None, help=_EXPERIMENT_HELP),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Output folder; default <run_dir>/report."),
    log_to_mlflow: bool = typer.Option(True, "--mlflow/--no-mlflow", help="Attach the report to the study's MLflow parent run."),
    tracking_uri: Optional[str] = _READ_TRACKING,
    verbose: bool = _VERBOSE,
) -> None:
    """Write a self-contained HTML report (fronts, hypervolume, importances, parameters, curves) and its PNGs."""
    _setup_logging(verbose)
    from dse.report import build_report
    from dse.study import load_study

    try:
        study, storage = _study_and_storage(study, storage, experiment)
        result = build_report(load_study(study, storage), storage, out_dir, log_to_mlflow=log_to_mlflow, tracking_uri=tracking_uri)
    except DseError as e:
        _fail(e)
    _say(f"report: {result.html}  ({len(result.figures)} figures, {result.seconds:.1f} s)")
    if result.parent_run_id:
        from dse.config import redact_url

        _say(f"logged as artifacts report/ of MLflow run {result.parent_run_id} ({redact_url(result.tracking_uri)})")


def _compare_sources(studies: list[str], storages: list[str], tracking_uri: Optional[str]):
    """One source per argument: ``name@URL`` (Optuna), ``name`` with the matching ``--storage`` (by position),
    an MLflow experiment when ``--tracking-uri`` is given, else the default storage runs/<name>/optuna.db."""
    from dse.report._compare import load_mlflow_source, load_optuna_source

    if storages and len(storages) != len(studies):
        raise typer.BadParameter(
            f"give one --storage per study ({len(studies)} stud{'y' if len(studies) == 1 else 'ies'}, {len(storages)} "
            f"storage{'' if len(storages) == 1 else 's'}), or write name@URL", param_hint="--storage"
        )
    from dse.config import redact_url
    from dse.exceptions import StudyNotFoundError

    sources = []
    for i, arg in enumerate(studies):
        try:
            if "@" in arg:
                name, url = arg.split("@", 1)
                sources.append(load_optuna_source(name, url))
            elif storages:
                sources.append(load_optuna_source(arg, storages[i]))
            elif tracking_uri:
                sources.append(load_mlflow_source(arg, tracking_uri))
            else:
                sources.append(load_optuna_source(arg, _storage_for(arg, None)))
        except DseError as e:  # which of the arguments it was (its URL's password masked, as in the message itself)
            name, at, url = arg.partition("@")
            shown = f"{name}@{redact_url(url)}" if at else arg
            if isinstance(e, StudyNotFoundError) and e.found is not None:  # its advice names --experiment, which compare lacks
                raise StudyNotFoundError(f"study argument {shown!r}: {e.found}; give the study as name@STORAGE_URL, or its "
                                         "storage with --storage (once per study, in order)", e.found) from e
            raise type(e)(f"study argument {shown!r}: {e}") from e
    return sources


def _reference_point(text: str | None) -> dict[str, float] | None:
    """``--reference lut=20000,dsp=100`` as ``{"lut": 20000.0, "dsp": 100.0}``; ``None`` when not given.

    Raises:
        ConfigError: a pair that is not ``metric=number``, or a metric given twice.
    """
    if text is None:
        return None
    out: dict[str, float] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        name, eq, value = pair.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = None
        if not eq or not name.strip() or number is None or not math.isfinite(number):
            raise ConfigError(f"--reference: {pair!r} is not metric=number (a finite number, without thousands separators: "
                              "the comma separates pairs); give e.g. --reference lut=20000,csim_val_accuracy=0.5")
        if name.strip() in out:
            raise ConfigError(f"--reference: {name.strip()} is given twice; give each objective once")
        out[name.strip()] = number
    if not out:
        raise ConfigError("--reference: no metric=number given; give e.g. --reference lut=20000, or leave the option out")
    return out


@app.command()
def compare(
    studies: list[str] = typer.Argument(..., help="Studies: name, name@STORAGE_URL, or MLflow experiment names with --tracking-uri."),
    storage: Optional[list[str]] = typer.Option(None, help="Optuna storage URL of each study, in order (repeat the option)."),
    tracking_uri: Optional[str] = typer.Option(None, help="Read plain names as MLflow experiments at this tracking URI."),
    out_dir: Path = typer.Option(Path("compare"), "--out", help="Output folder."),
    log_to_mlflow: bool = typer.Option(True, "--mlflow/--no-mlflow", help="Attach the page to each study's MLflow parent run."),
    reference: Optional[str] = typer.Option(
        None, help="The hypervolume's reference point for some objectives, in their units: metric=value,... "
                   "(e.g. lut=20000,csim_val_accuracy=0.5); default: accuracy 0 and 1.1 x the worst resource value on "
                   "the studies' fronts."),
    verbose: bool = _VERBOSE,
) -> None:
    """Overlay the Pareto fronts of several studies and compare hypervolume (common reference point), size and cost."""
    _setup_logging(verbose)
    from rich.table import Table

    from dse.report import compare_studies

    if len(studies) < 2:
        raise typer.BadParameter("give at least two studies to compare", param_hint="STUDIES")
    try:
        result = compare_studies(_compare_sources(studies, storage or [], tracking_uri), out_dir, log_to_mlflow=log_to_mlflow,
                                 reference=_reference_point(reference))
    except DseError as e:
        _fail(e)
    ref = ", ".join(f"{k}={v:.4g}" for k, v in result.reference.items())
    if not (result.table["front_size"] > 0).any():  # a placeholder then, not a point to quote
        ref = "none: no study has a feasible completed trial"
    table = Table(title=f"studies (hypervolume reference point: {ref})")
    for col in ("study", "hypervolume", "front size", "trials", "complete", "harvested", "failed", "interrupted", "CPU-hours"):
        table.add_column(col, justify="left" if col == "study" else "right")
    for _, r in result.table.iterrows():
        table.add_row(
            Text(str(r["study"])), f"{r['hypervolume']:.6g}", str(r["front_size"]), str(r["trials"]), str(r["complete"]),
            str(r["harvested"]), str(r["failed"]), str(r["interrupted"]), f"{r['cpu_hours']:.3f}",
        )
    out.print(table)
    for w in result.warnings:
        console.print(Text.assemble(("warning:", "bold yellow"), f" {w}"), highlight=False, soft_wrap=True)
    _say(f"page: {result.html}; table: {result.csv}")
    if result.logged_to:
        _say(f"logged as artifacts compare/ of MLflow runs {', '.join(result.logged_to)}")


@app.command()
def export(
    study: Optional[str] = typer.Argument(None, help=_STUDY_HELP, show_default=False),
    trial: int = typer.Option(..., "--trial", help="Trial number to export (see `dse status`)."),
    out_dir: Path = typer.Option(..., "--out", help="Output folder."),
    storage: Optional[str] = typer.Option(None, help=_STORAGE_HELP),
    experiment: Optional[Path] = typer.Option(None, help=_EXPERIMENT_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier export in --out even when files "
                                   "were added to it since (an HLS build's outputs)."),
    tracking_uri: Optional[str] = _READ_TRACKING,
    allow_failed: bool = typer.Option(False, "--allow-failed", help="Also export a FAIL trial whose model reached "
                                      "conversion (it failed in a measurement or its C simulation); its README says so."),
    verbose: bool = _VERBOSE,
) -> None:
    """Write one trial's design ready for synthesis: hls4ml project with testbench vectors, da4ml RTL, Keras model, preprocessing, README."""
    _setup_logging(verbose)
    from dse.export import export_design
    from dse.study import load_study

    try:
        study, storage = _study_and_storage(study, storage, experiment)
        result = export_design(load_study(study, storage), storage, trial, out_dir, overwrite=overwrite, tracking_uri=tracking_uri,
                               allow_failed=allow_failed, notify=_say)
    except DseError as e:
        _fail(e)
    _say(f"exported trial {trial} to {result.out_dir}: hls4ml project {result.hls_project.name}/"
         + (f", RTL {result.rtl_dir.name}/" if result.rtl_dir else "")
         + (f", testbench vectors of {result.testbench_rows} test rows" if result.testbench_rows else ", no testbench vectors")
         + "; see README.md there")


def main() -> None:
    """The ``dse`` command: ``app`` with a full disk reported in one line (exit code 2) instead of a traceback.

    A disk can fill in any command that writes (a new study's stores, a report's PNGs, an export);
    what was written before is kept, and the command can be run again once there is space.
    """
    from dse.exceptions import disk_full_error

    for stream in (sys.stdout, sys.stderr):  # an ASCII terminal or PYTHONIOENCODING=ascii: a path such as runs/étude is
        # printed as runs/\xe9tude; before, the summary of a finished study raised UnicodeEncodeError (exit 1)
        if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        app()
    except SystemExit as e:
        if e.code in (130, 143) and "ray" in sys.modules:  # stopped by Ctrl-C / SIGTERM, every clean-up done
            # Ray's native code can abort at the interpreter's exit after a signal that landed in ray.init (SIGABRT,
            # exit status 134 instead of 143, seen under load): what dse had to do is done, so leave at once, once
            # threads that write (the MLflow opener) are through, as the interpreter would wait for them
            import threading

            for thread in threading.enumerate():
                if thread.name.startswith("dse-") and thread is not threading.current_thread():  # dse's own (a pool
                    thread.join(timeout=10)  # thread of a library, idle on its queue, would take the whole wait)
            logging.shutdown()
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except (OSError, ValueError):  # a closed pipe: nothing more can be said
                    pass
            os._exit(e.code)
        raise
    except Exception as e:
        full = disk_full_error(e, "What was written before is kept; free space on that disk (`df -h` of the run directory, "
                                  "the storage's folder or --out), or write elsewhere, and run the command again")
        if full is None:
            raise
        # the whole chain with -v: another error raised while handling the full disk would be shown as the full disk
        logging.getLogger("dse.cli").info("the command stopped on a full disk", exc_info=e)
        try:
            _fail(full)
        except typer.Exit as done:
            sys.exit(done.exit_code)


if __name__ == "__main__":
    main()
