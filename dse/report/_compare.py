"""``dse compare``: fronts of several studies on the same axes, hypervolume on one reference point.

A study comes from an Optuna storage (:func:`load_optuna_source`) or from an MLflow experiment
written by ``dse run`` (:func:`load_mlflow_source`); both become a :class:`StudySource`, a frame
of completed trials with their metrics and source tags, so the comparison itself
(:func:`compare_table`, :func:`compare_pairs`) does not care where the numbers live.
"""

from __future__ import annotations

import json
import logging
import math
import numbers
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from dse.config import make_output_dir, redact_url
from dse.exceptions import ConfigError, StudyNotFoundError
from dse.report._figures import (
    PRECISE_PREFERENCE, RESOURCE_METRICS, Objective, accuracy_source, hypervolume, pareto_mask, reference_point,
)
from dse.report._outputs import COMPARE_FILES
from dse.resources import backend_names
from dse.report._pareto import trial_numbers_text

__all__ = [
    "StudySource", "load_optuna_source", "load_mlflow_source", "compare_table", "compare_pairs", "figure_sources",
    "source_warnings", "study_differences", "compare_studies", "CompareResult",
]

log = logging.getLogger(__name__)


@dataclass
class StudySource:
    """One study's completed trials, wherever they are stored.

    Attributes:
        label: legend label (``name`` or ``name (folder)`` when names clash).
        objectives: the study's objectives in order.
        trials: one row per COMPLETE trial: ``trial``, ``feasible``, every metric, every
            ``*_source`` tag (precise re-measurements as ``<backend>_<metric>``).
        n_trials, n_failed: trials that started (enqueued trials still WAITING left out: before 2026-12-07 they
            were counted), failed designs (FAIL trials but the interrupted ones).
        n_interrupted: FAIL trials that were never evaluated and were re-enqueued (their driver
            was lost or stopped: ``DriverLostError``, ``TrialInterruptedError``), as ``dse status`` tells them apart.
        cpu_hours: sum of every trial's seconds (:func:`dse.report._figures.trial_seconds`; from an MLflow experiment,
            a FAIL run without ``seconds_total`` counts its start to its end) / 3600.
        tracking_uri, parent_run_id: the study's MLflow parent run (``None`` when unknown).
        origin: where it was read from (storage URL, password redacted, or ``mlflow:<experiment>``).
        dataset: the data its trials were tested on, from the ``dataset`` section (name or file,
            sample cap, split); ``None`` when unknown.
        dataset_digest: the digest of that data (:func:`dse.data.dataset_record`), from an Optuna storage.
        constraints: the study's constraints as text (``lut <= 20000, dsp <= 0``; ``none``);
            ``None`` when unknown.
        target: what its designs were built for (``Vitis xcvu13p-flga2577-2-e, 5 ns clock, io_parallel``: hls4ml's
            backend, part, clock period and IOType); ``None`` when unknown.
        clock_period: its ``hls4ml.clock_period`` (ns); ``None`` when unknown.
        n_harvested: completed trials that are checkpoints harvested along another trial's beta
            ramp (``training.harvest_checkpoints``), not trained trials of their own.
        experiment_problem: why the study's stored experiment could not be read (it does not
            validate here, or the study was not made by ``dse run``), which leaves ``dataset``,
            ``constraints`` and ``tracking_uri`` unknown; ``None`` when it was read.
    """

    label: str
    objectives: list[Objective]
    trials: pd.DataFrame
    n_trials: int
    n_failed: int
    cpu_hours: float
    tracking_uri: str | None = None
    parent_run_id: str | None = None
    origin: str = ""
    dataset: str | None = None
    dataset_digest: str | None = None
    constraints: str | None = None
    n_harvested: int = 0
    experiment_problem: str | None = None
    n_interrupted: int = 0
    target: str | None = None
    clock_period: float | None = None

    def dataset_text(self) -> str:
        """``dataset`` with its digest for messages; says why it is unknown instead of ``None``."""
        what = self.dataset or ("unknown" + (f" ({self.experiment_problem})" if self.experiment_problem else ""))
        return what + (f" (digest {self.dataset_digest[:12]})" if self.dataset_digest else "")


def _constraints_text(constraints) -> str:
    """``lut <= 20000, 0.9 <= csim_accuracy`` for a list of :class:`~dse.config.ConstraintConfig`; ``none`` without."""
    return ", ".join(c.text for c in constraints) or "none"


def _target_text(hls) -> str:
    """``Vitis xcvu13p-flga2577-2-e, 5 ns clock, io_parallel`` for an experiment's :class:`~dse.config.Hls4mlConfig`."""
    return f"{hls.backend} {hls.part}, {hls.clock_period:g} ns clock, {hls.io_type}"


def _dataset_text(cfg) -> str:
    """``digits``, ``file jets.csv (target label)``, plus the sample cap and split where not the defaults."""
    d = cfg.model_dump(mode="json", exclude={"data_home", "name", "path", "target"}, exclude_defaults=True)
    what = cfg.name if cfg.path is None else f"{cfg.name} {Path(cfg.path).name}" + (f" (target {cfg.target})" if cfg.target else "")
    return what + "".join(f", {k} {v}" for k, v in sorted(d.items()))


def load_optuna_source(name: str, storage: str) -> StudySource:
    """Read a study from an Optuna storage (precise re-measurements merged in as ``<backend>_*``).

    Raises:
        StudyNotFoundError: no such study in ``storage``.
        StorageError: ``storage`` is not a usable URL or journal file, or cannot be read (:func:`dse.study.load_study`).
        DiskFullError: its SQLite file's disk is full.
    """
    from optuna.trial import TrialState

    from dse.report._figures import objectives, trial_seconds
    from dse.store import NOT_EVALUATED, StudyRecords, precise_broken
    from dse.study import load_study

    study = load_study(name, storage)
    records = StudyRecords(study)
    measured = {b: records.measurements(b) for b in records.measured_backends()}
    tracking_uri = dataset = constraints = problem = target = clock = None
    budget: list = []
    try:
        from dse.tracking import open_tracking

        tracking_uri = open_tracking(records, storage).tracking_uri
        stored = records.experiment(reading=True)
        dataset, target, clock = _dataset_text(stored.dataset), _target_text(stored.hls4ml), stored.hls4ml.clock_period
        budget = list(stored.constraints)
        constraints = _constraints_text(budget)
    except ConfigError as e:  # its experiment does not validate here, or no dse run made it: compare without them
        problem = " ".join(str(e).split())
        log.warning("study %s: %s; its constraints and dataset are not compared with the other studies', and the "
                    "comparison is not attached to its MLflow parent run", name, problem)
    rows = []
    all_recs = records.trials()
    for r in all_recs:
        if r.state != TrialState.COMPLETE.name:
            continue
        row: dict = {"trial": r.number, "feasible": r.feasible, **r.metrics}
        row.update({k: v for k, v in r.tags.items() if k.endswith("_source")})
        for entry in (m[r.number] for m in measured.values() if r.number in m):
            row.update(entry["metrics"])
            row.update(entry["tags"])
        # feasible also on its re-measured figures, as `dse report` and `dse status` judge it (audit: compare drew a
        # trial over budget on its precise figures as a feasible front point, at them)
        row["feasible"] = r.feasible and not any(precise_broken(m[r.number], b, budget) for b, m in measured.items()
                                                 if r.number in m)
        rows.append(row)
    interrupted = sum(1 for r in all_recs if r.state == "FAIL" and (r.fail_reason or "").startswith(NOT_EVALUATED))
    return StudySource(
        name, objectives(study), pd.DataFrame(rows), sum(1 for r in all_recs if r.state != TrialState.WAITING.name), sum(1 for r in all_recs if r.state == "FAIL") - interrupted,
        sum(trial_seconds(t) for t in study.get_trials(deepcopy=False)) / 3600.0,
        tracking_uri, records.parent_run_id, redact_url(storage), dataset, records.dataset_digest(), constraints,
        n_harvested=sum(1 for r in all_recs if r.state == TrialState.COMPLETE.name and r.harvested_from is not None),
        experiment_problem=problem, n_interrupted=interrupted, target=target, clock_period=clock,
    )


def load_mlflow_source(experiment: str, tracking_uri: str) -> StudySource:
    """Read a study from the MLflow experiment ``dse run`` logged it to.

    Objectives and constraints come from the parent run's ``experiment.json`` (the experiment
    the study last ran with); each child run of its study (tags ``dse.role = trial``,
    ``dse.study = <study>``) with tag ``state = COMPLETE`` is a completed trial, feasible as its
    ``feasible`` tag says (the verdict Optuna was told when it finished, under the constraints of
    that time), or, for a run without the tag, as computed under the last constraints.

    Raises:
        StudyNotFoundError: no such experiment, or no ``dse`` parent run in it.
        ConfigError: the experiment holds the parent runs of several studies
            (``mlflow.experiment_name`` shared); they are compared from their Optuna storages.
    """
    from mlflow.tracking import MlflowClient

    from dse.config import read_stored_experiment
    from dse.store import NOT_EVALUATED, current_source_labels, precise_broken, within_constraints
    from dse.tracking import EXPERIMENT_UPDATED_TAG, ROLE_TAG, STUDY_TAG

    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        names = [e.name for e in client.search_experiments()]
        raise StudyNotFoundError(f"no MLflow experiment {experiment!r} at {tracking_uri}; experiments there: {names}")
    parents = client.search_runs([exp.experiment_id], filter_string=f"tags.`{ROLE_TAG}` = 'study'",
                                 order_by=["attributes.start_time DESC"])
    if not parents:
        raise StudyNotFoundError(f"MLflow experiment {experiment!r} has no `dse run` parent run (tag {ROLE_TAG}=study)")
    studies = sorted({p.data.tags.get(STUDY_TAG, "") for p in parents})
    if len(studies) > 1:
        raise ConfigError(
            f"MLflow experiment {experiment!r} at {redact_url(tracking_uri)} holds the runs of {len(studies)} studies "
            f"({', '.join(map(repr, studies))}; their experiments set the same `mlflow.experiment_name`), so its trials are not one "
            "study's; compare them from their Optuna storages instead, as name@STORAGE_URL (each experiment's `storage`; "
            f"by default {studies[0]}@sqlite:///runs/{studies[0]}/optuna.db)"
        )
    parent, study = parents[0], studies[0]  # the latest
    if len(parents) > 1:  # an Optuna study deleted and created again got a parent run of its own
        log.warning("MLflow experiment %r holds %d parent runs of study %r (%s); the latest, %s, and its trials are read",
                    experiment, len(parents), study, ", ".join(p.info.run_id for p in parents), parent.info.run_id)
    with tempfile.TemporaryDirectory() as tmp:
        cfg, problem = read_stored_experiment(json.loads(Path(client.download_artifacts(parent.info.run_id, "experiment.json", tmp)).read_text()))
    if problem:
        log.warning("MLflow experiment %r: %s; its logged figures are read as they are", experiment, problem)
    objs = [Objective(o.metric, o.direction) for o in cfg.objectives]
    children = client.search_runs(
        [exp.experiment_id], max_results=50000,
        filter_string=f"tags.`{ROLE_TAG}` = 'trial' and tags.`{STUDY_TAG}` = '{study}' and tags.`mlflow.parentRunId` = '{parent.info.run_id}'",
    )
    rows, seconds, failed, interrupted, harvested, untagged = [], 0.0, 0, 0, 0, 0
    for run in children:
        m, tags = run.data.metrics, current_source_labels(run.data.tags)
        if "seconds_total" in m:
            seconds += float(m["seconds_total"])
        elif (tags.get("state") == "FAIL" and run.info.end_time and run.info.start_time
              and not tags.get("error", "").startswith("DriverLostError")):  # stopped by its live driver (trial_seconds);
            # a lost driver's trial was ended by a later one, maybe days on, and its run holds no heartbeat: 0
            seconds += max(run.info.end_time - run.info.start_time, 0) / 1000.0
        if tags.get("state") != "COMPLETE":
            if tags.get("state") == "FAIL":  # the tag ``error`` is the trial's fail reason
                lost = tags.get("error", "").startswith(NOT_EVALUATED)
                interrupted += lost
                failed += not lost
            continue
        row = {"trial": int(tags.get("trial_number", -1)), **{k: v for k, v in m.items() if not k.startswith("epoch_")}}
        row.update({k: v for k, v in tags.items() if k.endswith("_source")})
        if "feasible" in tags:  # the verdict Optuna was told when the trial finished
            row["feasible"] = tags["feasible"] == "true"
        else:  # a run of a dse before the tag, or of an unconstrained trial
            row["feasible"] = within_constraints(cfg.constraints, m)
            untagged += 1
        # and on its re-measured figures (`dse synthesize` logs <backend>_<figure> into the run), as the report judges
        row["feasible"] = row["feasible"] and not any(precise_broken({"metrics": m}, b, list(cfg.constraints))
                                                      for b in backend_names())
        harvested += bool(tags.get("harvested_from"))
        rows.append(row)
    if untagged and "constraints" in parent.data.tags.get(EXPERIMENT_UPDATED_TAG, "").split(", "):
        log.warning("MLflow experiment %r: study %s was continued with other constraints; the feasibility of %d completed "
                    "trial(s) without a `feasible` tag (runs of an earlier dse) is computed under the ones it last ran with "
                    "(%s), while Optuna keeps the verdict each trial was told when it finished: compare it as "
                    "%s@STORAGE_URL for those", experiment, study, untagged, _constraints_text(cfg.constraints), study)
    return StudySource(
        experiment, objs, pd.DataFrame(rows), len(children), failed, seconds / 3600.0, tracking_uri, parent.info.run_id,
        f"mlflow:{experiment}", _dataset_text(cfg.dataset), constraints=_constraints_text(cfg.constraints),
        n_harvested=harvested, n_interrupted=interrupted, target=_target_text(cfg.hls4ml), clock_period=cfg.hls4ml.clock_period,
    )


def _loss(src: StudySource, objs: list[Objective]) -> np.ndarray:
    """Feasible completed trials of ``src`` in minimization space, (n, len(objs)); trials lacking one of the
    figures (a Latency design's ``latency_cycles`` on the EBOPs estimate, in a study that did not optimize it) are
    left out, with a warning: before, their NaN made the common reference point NaN and every hypervolume 0."""
    df = src.trials
    if df.empty:
        return np.zeros((0, len(objs)))
    df = df[df["feasible"].astype(bool)]
    if not len(df):
        return np.zeros((0, len(objs)))
    loss = np.column_stack([o.sign * df[o.metric].to_numpy(float) for o in objs])
    lacking = ~np.isfinite(loss).all(axis=1)
    if lacking.any():
        names = [o.metric for i, o in enumerate(objs) if (~np.isfinite(loss[:, i])).any()]
        trials = sorted(int(n) for n in df.loc[lacking, "trial"])
        log.warning(
            "%s: %d of its %d feasible trials (%s) lack %s, so they are left out of its hypervolume and front size in "
            "this comparison", src.label, len(trials), len(df), trial_numbers_text(trials), " and ".join(names),
        )
    return loss[~lacking]


def compare_table(sources: list[StudySource], reference: dict[str, float] | None = None
                  ) -> tuple[pd.DataFrame, np.ndarray, list[Objective]]:
    """Hypervolume of each study against one reference point, front size, trials, failures, CPU-hours.

    The objectives are the first study's; every study must have measured them. The common
    reference point is :func:`~dse.report._figures.reference_point` over the union of the
    studies' fronts (their Pareto-optimal feasible completed trials: accuracy 0; 1.1 x the worst
    resource value among them), so a study's dominated trials do not move it (probe 35: before, over
    all feasible trials, one study's worst dominated design could reverse the ranking). Another
    study's front still moves it; ``reference`` fixes it.

    Args:
        sources: the studies (:class:`StudySource`).
        reference: objective metric -> its reference value in natural units (``{"lut": 20000}``), replacing the
            default for those objectives; a point not strictly better than it in every objective adds nothing.

    Returns:
        ``(table, ref, objectives)``; table columns ``study``, ``origin``, ``hypervolume``,
        ``front_size``, ``trials``, ``complete``, ``harvested`` (of the complete ones, checkpoints
        harvested along a trial's beta ramp), ``failed`` (failed designs), ``interrupted`` (FAIL trials
        never evaluated and re-enqueued, as ``dse status`` names them; not in ``failed``), ``cpu_hours``.

    Raises:
        ConfigError: a study lacks one of the objectives, or ``reference`` names a metric that is not one.
    """
    objs = sources[0].objectives
    unknown = sorted(set(reference or {}) - {o.metric for o in objs})
    if unknown:
        raise ConfigError(f"--reference (Python: reference=): {', '.join(unknown)} is not among the compared objectives "
                          f"{[o.metric for o in objs]}; give a reference value for those only")
    for s in sources[1:]:
        missing = [o.metric for o in objs if s.trials.empty or o.metric not in s.trials]
        if missing and not s.trials.empty:
            raise ConfigError(
                f"study {s.label} has no {missing} to compare with {sources[0].label}'s objectives "
                f"{[o.metric for o in objs]}; compare studies with the same objectives (put the study whose objectives to use first)"
            )
    losses = [_loss(s, objs) for s in sources]
    fronts = [loss[pareto_mask(loss)] for loss in losses if len(loss)]
    union = np.vstack(fronts) if fronts else np.zeros((0, len(objs)))
    natural = union * np.array([o.sign for o in objs]) if len(union) else union
    ref = reference_point(natural, objs)
    for i, o in enumerate(objs):
        if reference and o.metric in reference:
            ref[i] = o.sign * float(reference[o.metric])
    rows = []
    for s, loss in zip(sources, losses):
        rows.append({
            "study": s.label, "origin": s.origin, "hypervolume": hypervolume(loss, ref),
            "front_size": int(pareto_mask(loss).sum()) if len(loss) else 0,
            "trials": s.n_trials, "complete": len(s.trials), "harvested": s.n_harvested,
            "failed": s.n_failed, "interrupted": s.n_interrupted, "cpu_hours": s.cpu_hours,
        })
    return pd.DataFrame(rows), ref, objs


def _pair(df: pd.DataFrame, accuracy: str, metric: str, direction: str = "maximize") -> pd.DataFrame:
    """Accuracy vs ``metric`` of one study's trials, a precise re-measurement used where present.

    The 2-D front ``on_front`` minimizes ``metric`` and takes ``accuracy`` in its ``direction``.
    """
    rows = []
    for _, r in df.iterrows():
        if pd.isna(r.get(accuracy)):
            continue
        value, source = r.get(metric), r.get(f"{metric}_source", _default_source(metric))
        if metric != "ebops":  # the most precise re-measurement, as the report picks it (a user's backend's too)
            for b in dict.fromkeys([*PRECISE_PREFERENCE, *sorted(backend_names())]):
                if f"{b}_{metric}" in r and pd.notna(r[f"{b}_{metric}"]):
                    value, source = r[f"{b}_{metric}"], r.get(f"{b}_{metric}_source", b)
                    break
        if value is None or pd.isna(value):
            continue
        rows.append({"trial": int(r["trial"]), "accuracy": float(r[accuracy]), "value": float(value),
                     "source": str(source), "feasible": bool(r["feasible"]),
                     "accuracy_source": accuracy_source(accuracy, r.get("csim_accuracy_source"))})
    out = pd.DataFrame(rows, columns=["trial", "accuracy", "value", "source", "feasible", "accuracy_source"])
    out["on_front"] = False
    feas = out[out["feasible"]]
    if not feas.empty:
        y = Objective(accuracy, direction).sign * feas["accuracy"].to_numpy()
        mask = pareto_mask(np.column_stack([y, feas["value"].to_numpy()]))
        out.loc[feas.index[mask], "on_front"] = True
    return out[out["feasible"]]


def compare_pairs(sources: list[StudySource], accuracy: str, direction: str = "maximize") -> dict[str, dict[str, pd.DataFrame]]:
    """For each resource metric every study with completed trials has, but ``accuracy``: study label -> its points (see :func:`_pair`).

    The metrics are :data:`~dse.report._figures.RESOURCE_METRICS` and the first study's minimized objectives (the compared
    ones: ``ff``, a user backend's figure), as ``dse report`` draws them.

    A study without a completed trial has no points, and no say in which metrics are drawn (it
    is warned about apart: :func:`_no_front_reason`).

    ``direction`` is ``accuracy``'s (``"minimize"`` when the vertical axis is a resource objective,
    in a study without an accuracy objective).
    """
    present = [s for s in sources if not s.trials.empty]
    # the compared (first study's) minimized objectives too, as `dse report` draws them (probe 35: an ff objective had
    # a hypervolume and no front)
    candidates = dict.fromkeys([*RESOURCE_METRICS, *(o.metric for o in sources[0].objectives if o.direction == "minimize")])
    metrics = [m for m in candidates if m != accuracy and present and all(m in s.trials for s in present)]
    return {m: {s.label: _pair(s.trials, accuracy, m, direction) for s in present} for m in metrics}


def _default_source(metric: str) -> str:
    """The source of a figure whose trial has no ``<metric>_source`` tag (as :func:`_pair` reads it)."""
    return "hgq-ebops" if metric == "ebops" else "unknown"


def figure_sources(src: StudySource, metric: str, points: pd.DataFrame | None, objective: bool) -> list[str]:
    """Where one study's ``metric`` figures come from, as the comparison uses them.

    Args:
        src: the study.
        metric: a resource figure (``lut``, ``ebops``, ...).
        points: its points on the fronts overlay (:func:`_pair`: precise re-measurements
            preferred), or ``None`` when ``metric`` is not drawn.
        objective: ``metric`` is an objective, so its recorded figure (tag ``<metric>_source``)
            of each feasible completed trial also enters the hypervolume.

    Returns:
        The sources, sorted (empty when the study has no such figure).
    """
    found = set(points["source"]) if points is not None and not points.empty else set()
    df = src.trials
    if objective and not df.empty and metric in df:
        feas = df[df["feasible"].astype(bool) & df[metric].notna()]
        col = feas[f"{metric}_source"] if f"{metric}_source" in feas else pd.Series([None] * len(feas), dtype=object)
        found |= {str(v) if isinstance(v, str) else _default_source(metric) for v in col}
    return sorted(found)


def source_warnings(
    sources: list[StudySource], pairs: dict[str, dict[str, pd.DataFrame]], objs: list[Objective]
) -> tuple[list[str], dict[str, list[str]]]:
    """A warning per resource figure whose sources differ between the studies.

    A LUT count estimated from EBOPs (``ebops-estimate``) and one from synthesis (``yosys``,
    ``da4ml``, ...) are not measured the same way, so fronts (and hypervolumes, for an
    objective) built on them do not compare like for like. The fronts are drawn with precise
    re-measurements where a study has them, the hypervolumes computed on the recorded figures; a
    warning names which of the two differ, and says so when the hypervolumes' figures agree.

    Args:
        sources: the studies.
        pairs: :func:`compare_pairs` of them.
        objs: the compared objectives.

    Returns:
        ``(warnings, columns)``: one message per figure with differing sources, naming each
        study's sources; and ``<metric>_source`` -> each study's sources (comma-joined, ``-``
        for none), in the order of ``sources``, for the table.
    """
    objective = {o.metric for o in objs if o.direction == "minimize"}
    metrics = list(dict.fromkeys([*pairs, *(o.metric for o in objs if o.metric in objective)]))

    def differ(lists: list[list[str]]) -> bool:
        return len({tuple(p) for p in lists if p}) > 1

    warnings, columns = [], {}
    for m in metrics:
        plotted = [figure_sources(s, m, pairs.get(m, {}).get(s.label), False) for s in sources]
        scored = [figure_sources(s, m, None, True) if m in objective else [] for s in sources]  # the hypervolume's
        per = [sorted(set(p) | set(q)) for p, q in zip(plotted, scored)]
        columns[f"{m}_source"] = [", ".join(p) or "-" for p in per]
        if not differ(per):
            continue
        what = " and ".join(w for w, d in (("fronts", differ(plotted)), ("hypervolumes", differ(scored))) if d)
        text = (f"the studies' {m} figures come from different sources ("
                + "; ".join(f"{s.label}: {', '.join(p) or '-'}" for s, p in zip(sources, per))
                + f"): they are not measured the same way, so their {what or 'fronts and hypervolumes'} on {m} are not "
                "comparable")  # no `what`: one study's list is empty where another's is not
        if what and m in objective and not differ(scored):  # probe 35: re-measured points only; the hypervolumes compare
            text += (f"; their hypervolumes are, being computed on each study's recorded {m} ("
                     + "; ".join(f"{s.label}: {', '.join(q) or '-'}" for s, q in zip(sources, scored)) + ")")
        warnings.append(text)
    return warnings, columns


@dataclass
class CompareResult:
    """What :func:`compare_studies` wrote: the table, the page, the figures, the runs it was logged to."""

    table: pd.DataFrame
    reference: dict[str, float]
    html: Path
    csv: Path
    figures: list[Path] = field(default_factory=list)
    logged_to: list[str] = field(default_factory=list)
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)


def _same_place(origin: str) -> str:
    """``origin`` with a SQLite or journal file's path resolved (``runs/../runs/x.db`` is ``runs/x.db``), else as given."""
    import os

    from dse.config import storage_file

    path = storage_file(origin)
    return os.path.realpath(path) if path is not None else origin


def _no_front_reason(src: StudySource) -> str | None:
    """Why ``src`` has no feasible completed trial (``"has no completed trial (3 of 3 failed)"``), or ``None`` when it has one."""
    df = src.trials
    if df.empty:
        lost = f", {src.n_interrupted} interrupted or lost" if src.n_interrupted else ""
        # started but neither complete nor failed: running (probe 36: "0 of 1 failed" of a study whose one trial ran)
        unfinished = src.n_trials - src.n_failed - src.n_interrupted  # n_failed leaves the interrupted trials out
        running = f", {unfinished} running" if unfinished > 0 else ""
        return f"has no completed trial ({src.n_failed} of {src.n_trials} failed{lost}{running})"
    if not df["feasible"].astype(bool).any():
        return f"has no feasible trial (all {len(df)} completed trials break a constraint)"
    return None


def study_differences(sources: list[StudySource]) -> list[str]:
    """What makes compared studies answer different questions, one sentence each (``dse compare`` prints them).

    A study copied from another (both hold one MLflow parent run), studies tested on different data (their dataset
    digests, else their dataset names), with different constraints, built for different hls4ml settings (backend,
    part, clock period, IOType; with a clause on ``latency_cycles`` where clocks differ and a study has latency
    figures), that optimized different objectives, and each study without a front (no feasible completed trial).
    Each is also logged at INFO.

    Args:
        sources: the compared studies (:class:`StudySource`), the first one's objectives being the compared ones.

    Returns:
        The warnings, in that order; empty when the studies are alike in all these.
    """
    warnings = []
    copies: dict[str, StudySource] = {}
    for s in sources:  # a study copied into another storage (optuna.copy_study, a copied run directory)
        if s.parent_run_id and (first := copies.setdefault(s.parent_run_id, s)) is not s:
            warnings.append(
                f"study {s.label} is a copy of study {first.label}, or they are copies of one study: both hold MLflow "
                f"parent run {s.parent_run_id} (a copied run directory, or optuna.copy_study), so the trials they held "
                "when copied are the same designs, counted in both fronts and hypervolumes; compare what each ran since "
                "in `dse report`"
            )
            log.info("warning: %s", warnings[-1])
    digests = {s.dataset_digest for s in sources if s.dataset_digest}
    # the same digest for every study is the same data, however each named it (a CSV of digits against `digits`; before,
    # warned of as different data beside two equal digests); the names decide only where a digest is unknown
    same_data = len(digests) == 1 and all(s.dataset_digest for s in sources)
    if not same_data and (len({s.dataset for s in sources if s.dataset}) > 1 or len(digests) > 1):
        warnings.append(
            "the studies were tested on different data ("
            + "; ".join(f"{s.label}: {s.dataset_text()}" for s in sources)
            + "): their accuracies, fronts and hypervolumes are not comparable"
        )
        log.info("warning: %s", warnings[-1])
    if len({s.constraints for s in sources if s.constraints is not None}) > 1:
        warnings.append(
            "the studies have different constraints (" + "; ".join(f"{s.label}: {s.constraints}" for s in sources
                                                             if s.constraints is not None)
            + "): each front holds only the trials feasible under its own constraints, so the fronts and hypervolumes "
            "answer different questions"
        )
        log.info("warning: %s", warnings[-1])
    if len({s.target for s in sources if s.target is not None}) > 1:  # probe 31: 5 cycles at 5 ns and at 2 ns compared as equal
        warnings.append(
            "the studies' designs target different hls4ml settings (" + "; ".join(
                f"{s.label}: {s.target}" for s in sources if s.target is not None)
            + "): their resource figures are of different builds"
            + (", and their latency_cycles count cycles of different clocks (da4ml's stages do not read the clock period)"
               if len({s.clock_period for s in sources if s.clock_period is not None}) > 1
               and any("latency_cycles" in s.trials and s.trials["latency_cycles"].notna().any() for s in sources) else "")
            + ", so compare those as such"
        )
        log.info("warning: %s", warnings[-1])
    if len({tuple((o.metric, o.direction) for o in s.objectives) for s in sources}) > 1:
        warnings.append(
            "the studies optimized different objectives (" + "; ".join(
                f"{s.label}: {', '.join(o.metric for o in s.objectives)}" for s in sources)
            + f"): all are compared on {sources[0].label}'s objectives, which the others' samplers did not aim at, "
            "so their fronts and hypervolumes there understate them (the first study given sets the objectives)"
        )
        log.info("warning: %s", warnings[-1])
    for s in sources:
        if no_front := _no_front_reason(s):
            see = ("`dse report` plots its trials, infeasible ones as red crosses" if not s.trials.empty
                   else "`dse report` charts its failed trials by reason" if s.n_failed
                   else "compare it again once a trial has completed")
            warnings.append(f"study {s.label} {no_front}: it has no front and its hypervolume is 0 ({see})")
            log.info("warning: %s", warnings[-1])
    return warnings


def compare_studies(sources: list[StudySource], out_dir: Path, *, log_to_mlflow: bool = True,
                    reference: dict[str, float] | None = None) -> CompareResult:
    """Overlay the fronts, tabulate hypervolumes, write ``compare.html``/``compare.csv``/PNGs to ``out_dir``.

    The page is logged as artifacts ``compare/`` of every study's parent run that is known. The
    table has a ``<metric>_source`` column per resource figure; studies that differ in what they answer
    (:func:`study_differences`: a copy of another, other data, constraints, hls4ml settings or objectives, no
    feasible completed trial), whose resource figures come from different sources (:func:`source_warnings`), or
    whose whole front a given ``reference`` leaves out get a warning (on the page and in
    :attr:`CompareResult.warnings`, which ``dse compare`` prints; logged at INFO only, so it is
    not printed twice). The files an earlier comparison wrote to ``out_dir`` are deleted first
    (see :mod:`dse.report._outputs`); other files there are left alone. A folder without that
    list holding files named like the comparison's is refused before anything is written.

    Args:
        sources: the studies, in the order of the table and the legend, each read with :func:`load_optuna_source`
            (``name``, storage URL or journal file) or :func:`load_mlflow_source` (an MLflow experiment without its
            Optuna storage); the first study's objectives are the ones compared.
        out_dir: folder for ``compare.html``, ``compare.csv`` and the PNGs (created).
        log_to_mlflow: also log the page as artifacts ``compare/`` of each study's known parent run.
        reference: objective metric -> the hypervolume's reference value in natural units, for some or all objectives
            (:func:`compare_table`); the others keep the default over the studies' fronts.

    Returns:
        A :class:`CompareResult`: the table (one row per study: hypervolume, front size, trial counts, CPU-hours,
        figure sources), the hypervolume's reference point per objective, the files written and the runs logged to.

    Raises:
        TypeError: ``sources`` is not a non-empty list of :class:`StudySource`, ``out_dir`` is not a path, or
            ``reference`` is not a dict of metric names to numbers.
        ConfigError: a study lacks one of the objectives or is given twice, ``reference`` names a metric that is not
            one, or ``out_dir`` is a file, cannot be created, or holds files named like the comparison's that no
            earlier comparison wrote.
    """
    from dse._args import expect

    if not isinstance(sources, (list, tuple)) or not sources or not all(isinstance(s, StudySource) for s in sources):
        got = type(sources).__name__ if not isinstance(sources, (list, tuple)) else (
            "an empty list" if not sources else f"a list holding {type(next(s for s in sources if not isinstance(s, StudySource))).__name__}")
        raise TypeError(f"sources: expected a non-empty list of StudySource, got {got}; read each study with "
                        "dse.report.load_optuna_source(name, storage)")  # probe 33: before, an IndexError or AttributeError
    expect("out_dir", out_dir, (str, Path), "give the folder to write the comparison to")
    out_dir = Path(out_dir)
    expect("log_to_mlflow", log_to_mlflow, bool, "pass log_to_mlflow=True or log_to_mlflow=False")
    from dse.report import _html as H
    from dse.report import _plots as P
    from dse.report._figures import accuracy_objective

    t0 = time.perf_counter()
    seen: set[tuple[str, str]] = set()
    for s in sources:
        if (s.label, _same_place(s.origin)) in seen:
            raise ConfigError(
                f"study {s.label} ({s.origin}) is given twice; compare different studies, or see one study with "
                "`dse report`"
            )
        seen.add((s.label, _same_place(s.origin)))
    runs: dict[tuple[str, str], StudySource] = {}
    for s in sources:  # one study read twice: from its Optuna storage and from its MLflow experiment (a copy of a run
        # directory keeps the parent run's id in its own MLflow store: a study of its own, by its tracking URI)
        if s.parent_run_id and s.tracking_uri and \
                (first := runs.setdefault((s.parent_run_id, _same_place(s.tracking_uri.rstrip("/"))), s)) is not s:
            raise ConfigError(
                f"study {s.label} is given twice ({first.origin} and {s.origin} are the same study: MLflow parent run "
                f"{s.parent_run_id}); compare different studies, or see one study with `dse report`"
            )
    labels = [s.label for s in sources]
    for s in sources:
        if labels.count(s.label) > 1:
            s.label = f"{s.label} ({s.origin})"
    warnings = study_differences(sources)
    if reference is not None and (not isinstance(reference, dict) or not all(
            isinstance(k, str) and isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) and math.isfinite(v)
            for k, v in reference.items())):
        raise TypeError(f"reference: expected a dict of metric -> finite number (e.g. {{'lut': 20000}}), got {reference!r}")
    table, ref, objs = compare_table(sources, reference)  # before the folder is touched: a study lacking an objective stops here
    for row in table.itertuples():
        if reference and row.front_size > 0 and row.hypervolume == 0:  # e.g. csim_val_accuracy=90 (percent) or lut=10
            warnings.append(f"study {row.study}: no point of its front is better than the given reference point "
                            f"({', '.join(f'{k}={v:g}' for k, v in reference.items())}) in every objective, so its "
                            "hypervolume is 0; check the values' units (accuracies are fractions)")
            log.info("warning: %s", warnings[-1])
    out = make_output_dir(out_dir)
    COMPARE_FILES.clear_previous(out)  # an earlier comparison's files this one may not write again
    ref_natural = {o.metric: float(-v if o.direction == "maximize" else v) for o, v in zip(objs, ref)}
    acc = accuracy_objective(objs)
    pairs = compare_pairs(sources, acc.metric, acc.direction)
    mixed, source_columns = source_warnings(sources, pairs, objs)
    for w in mixed:
        warnings.append(w)
        log.info("warning: %s", w)
    for col, values in source_columns.items():
        table[col] = values
    csv = out / "compare.csv"
    table.to_csv(csv, index=False)
    figures, parts = [], []
    for metric, fronts in pairs.items():
        png = P.plot_compare(fronts, acc.metric, metric, out / f"compare_{acc.metric}_vs_{metric}.png")
        figures.append(png)
        parts.append(H.img(png, f"{acc.metric} vs {metric}"))
    ref_txt = (", ".join(f"{k} = {v:.6g}" for k, v in ref_natural.items()) if (table["front_size"] > 0).any()
               else "none: no study has a feasible completed trial")  # a placeholder then
    body = [f'<p class="note"><b>Warning:</b> {H.esc(w)}</p>' for w in warnings] + [
        H.section("Studies", H.table(table), f'<p class="note">Hypervolume over the objectives {H.esc([o.metric for o in objs])}, '
                  f"feasible completed trials, common reference point: {H.esc(ref_txt)} ("
                  + ("given for " + H.esc(", ".join(reference)) + "; " if reference else "")
                  + "by default accuracy 0 and 1.1 x the worst resource value on the studies' fronts: another study's front "
                  "moves it, `dse compare --reference metric=value,...` fixes it). harvested: of the complete trials, checkpoints kept along a trial's beta ramp "
                  "(training.harvest_checkpoints). failed: failed designs; interrupted: trials whose driver stopped or was lost "
                  "while they ran, never evaluated and re-enqueued (not in failed). CPU-hours: sum of trial seconds_total (a trial stopped before it reported: its start to its end) / 3600. "
                  "<i>metric</i>_source: where each study's figures come from (a precise re-measurement where one is drawn).</p>"),
        H.section("Pareto fronts (feasible trials; faint: dominated on these axes)", '<div class="grid">' + "".join(parts) + "</div>"),
    ]
    html = out / "compare.html"
    html.write_text(H.page("dse compare: " + ", ".join(s.label for s in sources), body), encoding="utf-8")
    COMPARE_FILES.record(out, [html, csv, *figures])
    result = CompareResult(table, ref_natural, html, csv, figures, warnings=warnings)
    if log_to_mlflow:
        from dse.tracking import log_files

        for s in sources:
            if s.tracking_uri and s.parent_run_id:
                try:
                    log_files(s.tracking_uri, s.parent_run_id, [html, csv, *figures], "compare")
                    result.logged_to.append(s.parent_run_id)
                except Exception as e:  # one unreachable store must not lose the comparison
                    log.warning("could not log the comparison to %s's parent run: %s", s.label, e)
    result.seconds = time.perf_counter() - t0
    return result
