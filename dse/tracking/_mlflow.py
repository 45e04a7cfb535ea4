"""MLflow logging: one parent run per study, one nested child run per trial.

The driver creates and ends runs (:class:`StudyTracker`); the Ray worker that runs a trial logs
its metrics, tags and artifacts straight to the tracking server (:class:`TrialRunLogger`), so
nothing travels through a disk shared by driver and workers.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from dse.config._secrets import redact_secrets

__all__ = ["StudyTracker", "TrialRunLogger", "STUDY_TAG"]

log = logging.getLogger(__name__)

#: Tag on every run holding the Optuna study name.
STUDY_TAG = "dse.study"
#: Tag telling a study's parent run ("study") from its trial runs ("trial").
ROLE_TAG = "dse.role"
_BATCH = 900  # MLflow's log_batch accepts at most 1000 metrics per call


def _client(tracking_uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=tracking_uri)


def _retrying(fn, *args, attempts: int = 5, **kwargs):
    """Call ``fn``, retrying briefly on SQLite 'database is locked' contention."""
    for i in range(attempts):
        try:
            return fn(*args, **kwargs)
        except Exception as e:  # MlflowException wraps sqlalchemy OperationalError
            if "locked" not in str(e) or i == attempts - 1:
                raise
            time.sleep(0.2 * (i + 1))


class TrialRunLogger:
    """Logs one trial's results into an existing MLflow run, from any process.

    Args:
        tracking_uri: MLflow tracking URI (``sqlite:///...``, ``http://127.0.0.1:5000``).
        run_id: the child run the driver created for this trial.
    """

    def __init__(self, tracking_uri: str, run_id: str):
        self.client = _client(tracking_uri)
        self.run_id = run_id

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        ts = int(time.time() * 1000)
        items = [Metric(k, float(v), ts, step) for k, v in metrics.items() if v is not None]
        for i in range(0, len(items), _BATCH):
            _retrying(self.client.log_batch, self.run_id, metrics=items[i : i + _BATCH])

    def log_history(self, history: dict[str, list[float]]) -> None:
        """Per-epoch training curves as metrics ``epoch_<name>`` with step = epoch."""
        ts = int(time.time() * 1000)
        items = [Metric(f"epoch_{k}", float(v), ts, i) for k, vs in history.items() for i, v in enumerate(vs)]
        for i in range(0, len(items), _BATCH):
            _retrying(self.client.log_batch, self.run_id, metrics=items[i : i + _BATCH])

    def set_tags(self, tags: dict[str, Any]) -> None:
        _retrying(self.client.log_batch, self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        _retrying(self.client.log_artifact, self.run_id, str(path), artifact_path)

    def log_dict(self, data: dict[str, Any], name: str) -> None:
        _retrying(self.client.log_dict, self.run_id, data, name)


class StudyTracker:
    """Driver-side MLflow bookkeeping for one study.

    Args:
        tracking_uri: MLflow tracking URI.
        experiment_name: MLflow experiment to log into (created if missing).
        artifact_location: where a newly created experiment stores artifacts
            (``None`` lets the tracking server decide).
    """

    def __init__(self, tracking_uri: str, experiment_name: str, artifact_location: str | None = None):
        self.tracking_uri = tracking_uri
        self.client = _client(tracking_uri)
        exp = self.client.get_experiment_by_name(experiment_name)
        self.experiment_id = (
            exp.experiment_id
            if exp is not None
            else self.client.create_experiment(experiment_name, artifact_location=artifact_location)
        )

    def study_run(self, study_name: str, config: dict[str, Any]) -> str:
        """Return the parent run of ``study_name``, reusing the one a previous ``dse run`` made.

        A new parent run gets ``config`` as flattened params and as ``experiment.json``, with
        every password inside a URL (e.g. the storage URL) masked by :func:`dse.config.redact_url`.
        """
        found = self.client.search_runs(
            [self.experiment_id], filter_string=f"tags.`{STUDY_TAG}` = '{study_name}' and tags.`{ROLE_TAG}` = 'study'",
            max_results=1,
        )
        if found:
            run_id = found[0].info.run_id
            self.client.update_run(run_id, status="RUNNING")
            return run_id
        run = self.client.create_run(self.experiment_id, run_name=study_name, tags={STUDY_TAG: study_name, ROLE_TAG: "study"})
        config = redact_secrets(config)  # a storage URL's database password must not reach MLflow
        params = [Param(k, str(v)[:6000]) for k, v in _flatten(config).items()]
        for i in range(0, len(params), 100):
            self.client.log_batch(run.info.run_id, params=params[i : i + 100])
        self.client.log_dict(run.info.run_id, config, "experiment.json")
        return run.info.run_id

    def trial_run(self, parent_run_id: str, study_name: str, number: int, params: dict[str, Any], fixed: dict[str, Any]) -> str:
        """Create the nested child run of trial ``number`` with its sampled and pinned params."""
        run = _retrying(
            self.client.create_run,
            self.experiment_id,
            run_name=f"trial-{number}",
            tags={"mlflow.parentRunId": parent_run_id, STUDY_TAG: study_name, ROLE_TAG: "trial", "trial_number": str(number), "state": "RUNNING"},
        )
        all_params = [Param(k, str(v)) for k, v in {**params, **{f"fixed.{k}": v for k, v in fixed.items()}}.items()]
        if all_params:
            _retrying(self.client.log_batch, run.info.run_id, params=all_params)
        return run.info.run_id

    def finish_trial_run(self, run_id: str, state: str, error: str | None = None) -> None:
        """Tag the Optuna state (``COMPLETE``/``FAIL``) and the error message, and end the run."""
        tags = [RunTag("state", state)]
        if error:
            tags.append(RunTag("error", error[:5000]))
        _retrying(self.client.log_batch, run_id, tags=tags)
        _retrying(self.client.set_terminated, run_id, "FINISHED" if state == "COMPLETE" else "FAILED")

    def mark_pareto(self, front_run_ids: set[str], all_run_ids: list[str], tag: str = "pareto") -> None:
        """Tag ``<tag>=true`` on front members and ``<tag>=false`` on the others."""
        for rid in all_run_ids:
            _retrying(self.client.set_tag, rid, tag, "true" if rid in front_run_ids else "false")

    def log_study_artifact(self, parent_run_id: str, path: Path, metrics: dict[str, float]) -> None:
        """Attach a study-level file (front or calibration CSV) and metrics to the parent run."""
        _retrying(self.client.log_artifact, parent_run_id, str(path))
        if metrics:
            _retrying(
                self.client.log_batch,
                parent_run_id,
                metrics=[Metric(k, float(v), int(time.time() * 1000), 0) for k, v in metrics.items()],
            )

    def end_study_run(self, parent_run_id: str, status: str = "FINISHED") -> None:
        _retrying(self.client.set_terminated, parent_run_id, status)


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = json.dumps(v) if isinstance(v, list) else v
    return out
