"""``dse report``: one self-contained HTML page and its PNG figures for a study."""

from __future__ import annotations

import datetime
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import optuna

from dse._args import expect
from dse.config import make_output_dir, redact_secrets, redact_url, storage_file
from dse.report import _figures as F
from dse.report import _html as H
from dse.report import _plots as P
from dse.report._outputs import REPORT_FILES
from dse.report._pareto import study_counts
from dse.report._render import counts_line
from dse.store import StudyRecords

__all__ = ["ReportResult", "build_report"]

log = logging.getLogger(__name__)


@dataclass
class ReportResult:
    """What :func:`build_report` wrote.

    Attributes:
        html: the report page (self-contained).
        figures: the PNG files beside it.
        seconds: time taken to build it (s).
        parent_run_id: the MLflow run the files were logged to (``None`` when not logged).
        tracking_uri: the MLflow store used.
    """

    html: Path
    figures: list[Path] = field(default_factory=list)
    seconds: float = 0.0
    parent_run_id: str | None = None
    tracking_uri: str | None = None


def _pair_note(points) -> str:
    n_prec = int(points["precise"].sum()) if not points.empty else 0
    srcs = ", ".join(sorted(points["source"].unique())) if not points.empty else "-"
    keras = int((points["accuracy_source"] == "keras").sum()) if "accuracy_source" in points else 0
    unsimulated = (
        f" The accuracy of {keras} of these {len(points)} trials is Keras', not bit-exact: they were not C-simulated "
        "(hls4ml.csim: front simulates the trials that joined the front as they finished; none, no trial)."
    ) if keras else ""
    return (
        f'<p class="note">sources on this axis: {H.esc(srcs)}; {n_prec} trial(s) shown with a precise re-measurement '
        f"(black edge; dotted line to the estimate). Faint: dominated on these two axes.{unsimulated}</p>"
    )


def build_report(study: optuna.Study, storage_url: str, out_dir: Path | None = None, *, log_to_mlflow: bool = True,
                 tracking_uri: str | None = None) -> ReportResult:
    """Write ``report.html`` and its PNGs for ``study`` and attach them to the study's parent run.

    The files an earlier report wrote to the same folder are deleted first (listed in its
    ``.dse-report.json``; see :mod:`dse.report._outputs`), so no figure of another study or
    an earlier state remains beside the page; other files in the folder are left alone. A folder
    without that manifest holding files named like the report's is refused before anything is
    written. No failures figure is drawn when no trial failed.

    Args:
        study: a study made by ``dse run``.
        storage_url: the Optuna storage it was opened from (locates a moved run directory).
        out_dir: output folder; default ``<run_dir>/report``.
        log_to_mlflow: attach the folder as artifacts ``report/`` of the parent run. Skipped, with a
            warning, when the study's default MLflow store (``<run_dir>/mlflow.db``) is missing or
            the run cannot be written; the page is written either way.
        tracking_uri: read the study's MLflow runs (curves, versions) at this tracking URI instead
            of the one it recorded (its server seen through another address, a moved store);
            the report is logged there too.

    Returns:
        What was written.

    Raises:
        ConfigError: the study was not made by ``dse run``, ``out_dir`` is a file or cannot be created, or it holds
            files named like the report's that no earlier report wrote; ``tracking_uri`` names a SQLite
            store that does not exist or a store without the study's parent run.
        TypeError: ``study`` is not an ``optuna.Study`` (a name: load it with :func:`dse.study.load_study`).
    """
    from dse.tracking import open_tracking

    expect("study", study, optuna.Study, "load it with dse.study.load_study(name, storage)")
    t0 = time.perf_counter()
    records = StudyRecords(study)
    exp = records.experiment(reading=True)
    where = open_tracking(records, storage_url, tracking_uri)
    db = where.missing_store
    no_store = db is not None  # opening it would create an empty store
    if no_store:
        log.warning("the study's MLflow store %s is missing: the report has no training curves or recorded versions, "
                    "and is not logged to MLflow%s", db,
                    "" if where.default_store else "; if it was moved, pass --tracking-uri sqlite:///<where it is now>")
    else:
        from dse.tracking import server_problem

        problem = server_problem(where.tracking_uri)  # else every MLflow call below retries for a while
        if problem:
            no_store = True
            log.warning("the study's MLflow server %s does not answer (%s): the report has no training curves or "
                        "recorded versions, and is not logged to MLflow", redact_url(where.tracking_uri), problem)
    out = make_output_dir(Path(out_dir) if out_dir is not None else where.run_dir / "report")
    file = storage_file(storage_url)  # one study however its storage is written (a relative or absolute path)
    subject = f"study {study.study_name!r} in {file.resolve() if file else redact_url(storage_url)}"
    REPORT_FILES.clear_previous(out, subject)  # an earlier report's files this one may not write again
    objs = F.objectives(study)
    acc = F.accuracy_objective(objs)
    figures: list[Path] = []
    body: list[str] = []

    timing = F.study_timing(study)
    states = study_counts(study)
    counts = [
        # failed as `dse compare` counts them: designs that failed, apart from trials interrupted and re-enqueued
        # (before: "failed 2" here where compare said "failed 0, interrupted 2")
        ("trials", timing.n_trials), ("complete", timing.n_complete), ("failed", timing.n_failed - states.interrupted),
        ("interrupted (not evaluated, re-enqueued)", states.interrupted),
        # as `dse status` counts them: running and waiting trials, feasibility, harvested checkpoints
        ("states", counts_line(states).removeprefix("trials: ")),
        ("objectives", ", ".join(f"{o.metric} ({o.direction})" for o in objs)),
        ("first trial start (UTC)", timing.first_start), ("last trial end (UTC)", timing.last_end),
        ("wall time (first trial start to last trial end)", f"{timing.wall_seconds:.0f} s = {timing.wall_seconds / 3600:.2f} h"),
        ("CPU-hours (sum of trial seconds_total / 3600; a trial stopped before it reported: its start to its end)",
         f"{timing.cpu_hours:.3f}"),
        # the page is mailed and attached to MLflow: no password (a PostgreSQL storage's was printed)
        ("Optuna storage", redact_url(storage_url)), ("MLflow tracking", redact_url(where.tracking_uri)),
        ("MLflow parent run", records.parent_run_id),
    ]
    made = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    counts.append(("page made (UTC)", made))
    evaluated = states.evaluated
    in_progress = ""
    if states.running:  # probe 36: a page made mid-study read as the study's end
        in_progress = (f'<p class="note"><b>Study in progress</b> when this page was made ({made} UTC): '
                       f"{states.running} trial(s) running, {evaluated} of its n_trials {exp.n_trials} trials evaluated. "
                       "The fronts, hypervolume and figures below are those of the trials finished then; make the report "
                       "again once the study ends.</p>")
    elif evaluated < exp.n_trials:
        in_progress = (f'<p class="note"><b>Study short of its n_trials</b>: {evaluated} of {exp.n_trials} trials '
                       "evaluated and none running (stopped before its end; `dse run` continues it).</p>")
    body.append(H.section("Study", in_progress + H.kv_table(counts)))

    # fronts per pair
    pair_parts = []
    n_complete = sum(1 for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
    crossed: set[int] = set()  # red crosses: told infeasible, or over budget on re-measured figures
    for metric in F.resource_metrics(study):
        if metric == acc.metric:  # no accuracy objective: the vertical axis is this resource
            continue
        pts = F.pair_points(study, acc.metric, metric, acc.direction)
        if pts.empty:
            continue
        crossed.update(int(n) for n in pts.loc[~pts["feasible"].astype(bool), "trial"])
        png = P.plot_pair(pts, acc.metric, metric, out / f"front_{acc.metric}_vs_{metric}.png", exp.constraints)
        figures.append(png)
        missing = n_complete - len(pts)  # e.g. Latency designs without latency_cycles, dropped unsaid
        lacking = (f'<p class="note">{missing} of the {n_complete} completed trials lack {H.esc(metric)} and are not '
                   "drawn here.</p>") if missing > 0 else ""
        pair_parts.append(f"<div>{H.img(png, f'{acc.metric} vs {metric}')}{_pair_note(pts)}{lacking}</div>")
    told = {r.number for r in records.trials() if r.state == "COMPLETE" and not r.feasible}
    over = len(crossed - told)
    infeasible = f"{len(told)}" + (f" (and {over} over budget on re-measured figures)" if over else "")
    body.append(H.section(
        f"Pareto fronts: {'accuracy' if acc.metric.endswith('accuracy') and acc.direction == 'maximize' else acc.metric} "
        "vs each resource figure",
        f'<p class="note">Each point is a completed trial that has both figures; the step line joins the trials no other trial beats on '
        f"these two axes. Infeasible trials (constraint violated): {infeasible}, in red (crosses, or their source's marker "
        "where an axis holds several sources)" + ("; the budget's bounds on an axis are dashed red lines" if exp.constraints
                                                  else "") + ". "
        "Markers tell resource sources apart; a precise re-measurement (dse synthesize) replaces the estimate where it exists.</p>",
        '<div class="grid">' + "".join(pair_parts) + "</div>" if pair_parts else
        '<p class="note">Nothing to draw: no completed trial has an accuracy and a resource figure'
        + (" (the failures below say why)" if timing.failures else "") + ".</p>",  # probe 35: an empty section before
    ))

    # failures (no figure when none failed)
    if timing.failures:
        png = P.plot_failures(timing.failures, out / "failures.png")
        figures.append(png)
        fail_table = H.table(F.failure_table(study))  # before: reason and count; now also which trials, and why
        note = ""
        if any(kind.endswith(F.NOT_EVALUATED_LABEL) for kind in timing.failures):
            note = ('<p class="note">Grey: trials that were running when their driver stopped or was lost. They were '
                    "never evaluated, so they are not failures of a design; their parameters were re-enqueued for a "
                    "later trial, and they do not count towards n_trials.</p>")
        body.append(H.section("Failed trials by reason", fail_table, note + H.img(png, "failures")))
    else:
        body.append(H.section("Failed trials by reason", '<p class="note">No failed trial.</p>'))

    # hypervolume
    hv, ref = F.hypervolume_history(study)
    ref_natural = [(-v if o.direction == "maximize" else v) + 0.0 for o, v in zip(objs, ref)]
    members = F.front_members_table(study)  # also the "Pareto-front members" section below
    png = P.plot_hypervolume(hv, ref_natural, [o.metric for o in objs], out / "hypervolume.png", no_front=members.empty)
    figures.append(png)
    ref_txt = ", ".join(f"{o.metric} = {v:.6g}" for o, v in zip(objs, ref_natural))
    how = {1: "The best value's distance to it, for one objective (Optuna's hypervolume).",
           2: "Optuna's hypervolume: an exact 2-D sweep for two objectives."}.get(
        len(objs), f"Optuna's hypervolume (WFG algorithm) for {len(objs)} objectives.")
    if members.empty:  # reference_point over no trials is a placeholder, not "1.1 x the worst"
        hv_note = ("No feasible completed trial: no front, so the hypervolume is 0 and has no reference point "
                   "(the plot's axes use a placeholder).")
    else:
        hv_note = (f"Reference point (natural units): {H.esc(ref_txt)}. Accuracy objectives use accuracy 0, "
                   f"resource objectives 1.1 x the worst feasible completed trial (0.1 where that is 0). {how}")
    body.append(H.section("Hypervolume over trials", H.img(png, "hypervolume"), f'<p class="note">{hv_note}</p>'))

    # importances
    imp = F.param_importances(study)
    png = P.plot_importances(imp, {o.metric: o.direction for o in objs}, out / "importances.png")
    figures.append(png)
    body.append(H.section(
        "Parameter importances per objective", H.img(png, "importances"),
        '<p class="note">Optuna\'s default importance evaluator on the sampled parameters of completed trials; '
        "maximized objectives negated so that each is read in its own direction.</p>",
    ))

    # parallel coordinates
    par = F.parallel_frame(study)
    png = P.plot_parallel(par, acc.metric, out / "parallel_coordinates.png",
                          front=set(members["trial"]) if "trial" in members else None)
    figures.append(png)
    body.append(H.section("Parameters each trial used", H.img(png, "parallel coordinates")))

    # front table and curves
    body.append(H.section("Pareto-front members", H.table(members)))
    run_ids = F.curve_runs(study, members)
    curves = F.training_curves(where.tracking_uri, run_ids) if run_ids and not no_store else {}
    why_empty = ("no Pareto-front member (no feasible completed trial)" if members.empty
                 else "MLflow's store was not read" if no_store else "the front members have no MLflow run" if not run_ids else None)
    png = P.plot_curves(curves, out / "training_curves.png", why_empty)
    figures.append(png)
    body.append(H.section("Training curves of the front members", H.img(png, "training curves")))

    # settings and versions
    versions = _versions(where.tracking_uri, None if no_store else records.parent_run_id)
    body.append(H.section("Versions", H.kv_table(sorted(versions.items()))))
    body.append(H.section("Experiment settings", f"<pre>{H.esc(json.dumps(redact_secrets(exp.model_dump(mode='json')), indent=2))}</pre>"))
    space = records.search_space()
    if space is not None:
        body.append(H.section("Search space", f"<pre>{H.esc(json.dumps(space, indent=2))}</pre>"))

    elapsed = time.perf_counter() - t0
    body.append(f'<p class="note">report built in {elapsed:.1f} s by dse report</p>')
    html_path = out / "report.html"
    html_path.write_text(H.page(f"dse study {study.study_name}", body), encoding="utf-8")
    REPORT_FILES.record(out, [html_path, *figures], subject)
    result = ReportResult(html_path, figures, time.perf_counter() - t0, None, where.tracking_uri)
    if log_to_mlflow and records.parent_run_id and not no_store:
        from dse.tracking import log_files

        try:
            log_files(where.tracking_uri, records.parent_run_id, [html_path, *figures], "report")
            result.parent_run_id = records.parent_run_id
        except Exception as e:  # the page is written; MLflow's copy is a convenience
            log.warning("report written to %s but not logged to MLflow run %s (%s): %s", out, records.parent_run_id,
                        where.tracking_uri, e)
    result.seconds = time.perf_counter() - t0
    return result


def _versions(tracking_uri: str, parent_run_id: str | None) -> dict[str, str]:
    """Versions and commit recorded on the parent run (``dse.version.*``, ``dse.git_commit``), else this process's."""
    from dse.tracking import provenance_tags

    tags: dict[str, str] = {}
    if parent_run_id:
        from mlflow.tracking import MlflowClient

        try:
            run_tags = MlflowClient(tracking_uri).get_run(parent_run_id).data.tags
            tags = {k: v for k, v in run_tags.items() if k.startswith("dse.version.") or k.startswith("dse.git_")}
        except Exception as e:  # store unreachable: fall back to this process's versions
            log.warning("parent run %s not readable: %s", parent_run_id, e)
    if not tags:
        tags = {f"{k} (this process; not recorded by the study)": v for k, v in provenance_tags().items() if not k.startswith("mlflow.")}
    return tags
