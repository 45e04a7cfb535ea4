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
from typing import TYPE_CHECKING, Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from dse.config._secrets import redact_secrets, redact_url
from dse.exceptions import TrackingError

if TYPE_CHECKING:
    from dse.config import TrialParams

__all__ = ["StudyTracker", "TrialRunLogger", "STUDY_TAG", "ROLE_TAG", "EXPERIMENT_UPDATED_TAG", "provenance_tags", "dataset_input"]

log = logging.getLogger(__name__)

#: Tag on every run holding the Optuna study name.
STUDY_TAG = "dse.study"
#: Tag telling a study's parent run ("study") from its trial runs ("trial").
ROLE_TAG = "dse.role"
#: Tag on a reused parent run listing the experiment's fields whose value differs from its params.
EXPERIMENT_UPDATED_TAG = "experiment_updated"
_BATCH = 900  # MLflow's log_batch accepts at most 1000 metrics per call
_MAX_TAGS = 100  # ... and at most 100 tags


#: Distributions whose versions every run records as ``dse.version.<key>`` tags.
VERSION_PACKAGES = {
    "dse": ("fpga-dse",),
    "hgq2": ("hgq2",),
    "hls4ml": ("hls4ml",),
    "keras": ("keras",),
    "tensorflow": ("tensorflow", "tensorflow-cpu"),
    "da4ml": ("da4ml",),
    "optuna": ("optuna",),
    "ray": ("ray",),
    "mlflow": ("mlflow", "mlflow-skinny"),
    "numpy": ("numpy",),
    "scikit-learn": ("scikit-learn",),
}
#: External tools whose version every run records as ``dse.version.<key>`` where they are on PATH: the command that
#: prints it (the first line's second word is kept: ``Yosys 0.23 (git sha1 ...)`` -> ``0.23``). Vivado and Vitis are
#: left out: their ``-version`` starts the tool (seconds); their reports name their version.
VERSION_TOOLS = {"yosys": ("yosys", "-V")}
_PROVENANCE: dict[str, str] | None = None
_SOURCE_DIFF: str | None = None


def _git(cwd: Path, *args: str, strip: bool = True) -> str | None:
    """Stdout of ``git <args>`` run in ``cwd`` (10 s limit), stripped unless ``strip`` is false, bytes that are not
    UTF-8 replaced; ``None`` when git is missing or fails."""
    import subprocess

    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    out = done.stdout.decode("utf-8", errors="replace")
    return out.strip() if strip else out


def _git_commit(cwd: Path) -> str | None:
    """``git rev-parse HEAD`` of the checkout that tracks ``cwd``'s ``dse/__init__.py``: dse's own checkout (also as a
    folder of a larger repository). ``None`` otherwise (also where git is missing): before (probe 40), a ``dse``
    installed into a virtual environment inside another git repository (``site-packages``' enclosing project, a
    dotfiles repository in ``$HOME``), where the package is no tracked file, recorded that repository's commit, and
    its whole installed package as "uncommitted changes"."""
    if _git(cwd, "ls-files", "--error-unmatch", "dse/__init__.py") is None:
        return None
    commit = _git(cwd, "rev-parse", "HEAD")
    return commit if commit is not None and len(commit) == 40 else None


def _installed_commit(package: Path) -> str | None:
    """The git commit pip recorded for a ``dse`` installed from a git URL (``pip install git+https://...@<rev>``:
    ``vcs_info.commit_id`` of the distribution's ``direct_url.json``, PEP 610), where that distribution holds the
    imported ``package`` folder; ``None`` for any other install (a wheel or folder records no commit)."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution("fpga-dse")
        if Path(str(dist.locate_file("dse/__init__.py"))).resolve() != (package / "__init__.py").resolve():
            return None
        info = json.loads(dist.read_text("direct_url.json") or "{}").get("vcs_info") or {}
    except (PackageNotFoundError, ValueError, OSError, AttributeError):
        return None
    commit = info.get("commit_id")
    return commit if info.get("vcs") == "git" and isinstance(commit, str) and len(commit) == 40 else None


#: What of the checkout is the code that ran: the package and its metadata (experiment files, data and notes elsewhere
#: in it are not: a shared MLflow server is no place for them).
_CODE_PATHS = ("dse", "pyproject.toml")


def _git_changes(cwd: Path) -> str | None:
    """How the code of the checkout (:data:`_CODE_PATHS`) differs from its commit: ``git diff HEAD`` of its tracked
    files, then each untracked file in the package with its contents (before 2026-12-07 those went unnoticed); ``""``
    when it does not, ``None`` when git fails."""
    diff = _git(cwd, "diff", "HEAD", "--no-color", "--no-ext-diff", "--", *_CODE_PATHS, strip=False)
    untracked = _git(cwd, "ls-files", "--others", "--exclude-standard", "--", "dse")
    if diff is None or untracked is None:
        return None
    for f in [f for f in untracked.splitlines() if "__pycache__" not in f]:
        try:
            text = (cwd / f).read_bytes().decode("utf-8", errors="replace")
        except OSError:
            text = ""
        diff += f"# untracked file in the package: {f}\n{text}" + ("" if text.endswith("\n") or not text else "\n")
    return diff


def _tool_version(command: tuple[str, ...]) -> str | None:
    """The version a tool prints (:data:`VERSION_TOOLS`), ``None`` when it is not on PATH or fails (10 s limit)."""
    import shutil
    import subprocess

    if shutil.which(command[0]) is None:
        return None
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=10, check=True).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    return out[1] if len(out) > 1 else None


def source_diff() -> str | None:
    """The uncommitted changes of the checkout ``dse`` runs from (:func:`provenance_tags` sets ``dse.git_dirty``
    and ``dse.git_diff`` from them), ``None`` when it is clean or not a checkout. The parent run keeps each as the
    artifact ``source/<dse.git_diff>.diff``."""
    provenance_tags()
    return _SOURCE_DIFF


def provenance_tags() -> dict[str, str]:
    """Tags every ``dse`` run carries: package and tool versions and the project's git commit.

    ``dse.version.<name>`` for dse, hgq2, hls4ml, keras, tensorflow, da4ml, optuna, ray, mlflow,
    numpy, scikit-learn (``"missing"`` when not installed) and for Yosys where it is on PATH
    (:data:`VERSION_TOOLS`); ``dse.git_commit`` and MLflow's own ``mlflow.source.git.commit`` when
    the ``dse`` package is imported from a git checkout that tracks it (:func:`_git_commit`), or was installed by pip from a git
    URL (:func:`_installed_commit`: the commit only), with ``dse.git_dirty`` (a checkout's code,
    :data:`_CODE_PATHS`, differs from the commit, untracked files in the package included; before
    2026-12-07: any tracked file) and, when dirty, ``dse.git_diff``: the first 16 hex
    digits of the SHA-256 of those changes (:func:`source_diff`). Computed once per process.
    """
    global _PROVENANCE, _SOURCE_DIFF
    if _PROVENANCE is None:
        import hashlib
        from importlib.metadata import PackageNotFoundError, version

        tags: dict[str, str] = {}
        for key, dists in VERSION_PACKAGES.items():
            tags[f"dse.version.{key}"] = "missing"
            for dist in dists:
                try:
                    tags[f"dse.version.{key}"] = version(dist)
                    break
                except PackageNotFoundError:
                    continue
        for key, command in VERSION_TOOLS.items():
            if (found := _tool_version(command)) is not None:
                tags[f"dse.version.{key}"] = found
        checkout = Path(__file__).resolve().parents[2]
        in_checkout = _git_commit(checkout)
        if commit := in_checkout or _installed_commit(checkout / "dse"):
            tags["dse.git_commit"] = commit
            tags["mlflow.source.git.commit"] = commit
        if in_checkout:
            changes = _git_changes(checkout)
            if changes is not None:
                tags["dse.git_dirty"] = str(bool(changes)).lower()
            if changes:
                _SOURCE_DIFF = changes
                tags["dse.git_diff"] = hashlib.sha256(changes.encode()).hexdigest()[:16]
        _PROVENANCE = tags
    return dict(_PROVENANCE)


def dataset_input(record: dict[str, Any], context: str = "training"):
    """An MLflow ``DatasetInput`` for a :func:`dse.data.dataset_record`.

    The dataset's ``profile`` (JSON) holds shape, class counts and split sizes; ``digest`` the
    record's digest; ``source`` ``dse:<name>``.
    """
    from mlflow.entities import Dataset, DatasetInput, InputTag

    profile = {k: record[k] for k in ("shape", "class_counts", "splits") if k in record}
    ds = Dataset(
        name=record["name"], digest=record["digest"], source_type="code",
        source=json.dumps({"dse_dataset": record["name"]}), profile=json.dumps(profile),
    )
    return DatasetInput(ds, tags=[InputTag("mlflow.data.context", context)])


TRACKING_FAILED_TAG = "tracking_failed"
"""Tag a worker sets on a trial that failed because MLflow failed (its store or server), not the design."""


def is_tracking_failure(e: BaseException) -> bool:
    """Whether ``e`` is MLflow's own failure (its store or server, after MLflow's HTTP retries), not dse's.

    True for :class:`mlflow.exceptions.MlflowException` and ``requests``' exceptions that are not
    a :class:`~dse.exceptions.DseError`; such a failure says nothing about the trial's design.
    """
    from mlflow.exceptions import MlflowException
    from requests.exceptions import RequestException

    from dse.exceptions import DseError

    return not isinstance(e, DseError) and isinstance(e, (MlflowException, RequestException))


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


#: Parent-run tag: the storage (password masked) of the last ``dse run`` of the study, ``default`` for the SQLite file
#: in its run directory; a run with another one is warned of.
STORAGE_TAG = "dse.storage"


def _storage_text(storage: str | None) -> str:
    """A ``storage`` param or :data:`STORAGE_TAG` value as the tag holds it: ``default`` for the default (tagged
    ``None`` before 2026-12-07, as the param still is)."""
    return "default" if storage in (None, "None", "default") else storage


def run_is_gone(e: Exception) -> bool:
    """Whether ``e`` (an ``MlflowException``) says its run was deleted: still in the store, or removed by ``mlflow gc``."""
    code = getattr(e, "error_code", "")
    text = str(e)
    return (code == "INVALID_PARAMETER_VALUE" and "Current state is deleted" in text) or (
        code == "RESOURCE_DOES_NOT_EXIST" and "Run" in text and "not found" in text)


def _log_params(client: MlflowClient, run_id: str, params: list[Param]) -> None:
    """Log ``params`` in batches of 100 (MLflow's ``log_batch`` limit for params)."""
    for i in range(0, len(params), 100):
        _retrying(client.log_batch, run_id, params=params[i : i + 100])


def error_type(error: str) -> str | None:
    """The exception name of an error recorded as ``"<ExceptionName>: <message>"`` (every error dse records), else ``None``."""
    kind, sep, _ = error.partition(":")
    return kind if sep and kind.isidentifier() else None


def _end_tags(state: str, error: str | None, feasible: bool | None = None) -> dict[str, str]:
    """The tags a run is ended with: the Optuna ``state`` (``COMPLETE``/``FAIL``) and the ``error`` message, if any.

    An error written ``"<ExceptionName>: <message>"`` (every error dse records) also gives
    ``error_type``, as a trial's worker tags it, so a failure the driver records (a timeout, a
    lost worker or driver, a missing objective) carries it too. ``feasible`` (``true``/``false``)
    is the verdict Optuna was told under the constraints of the time, when there are any.
    """
    tags = {"state": state}
    if feasible is not None:
        tags["feasible"] = "true" if feasible else "false"
    if error:
        tags["error"] = error[:5000]
        if kind := error_type(error):
            tags["error_type"] = kind
    return tags


def _finish_run(client: MlflowClient, run_id: str, state: str, error: str | None, tags_set: bool = False,
                feasible: bool | None = None, tags: dict[str, str] | None = None, untag: tuple[str, ...] = ()) -> None:
    if not tags_set or feasible is not None or tags:
        end = {**(tags or {}), **_end_tags(state, error, feasible)}
        _retrying(client.log_batch, run_id, tags=[RunTag(k, v) for k, v in end.items()])
    from mlflow.exceptions import MlflowException

    for key in untag:
        try:
            _retrying(client.delete_tag, run_id, key)
        except MlflowException as e:  # not there: nothing to delete
            if e.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
    _retrying(client.set_terminated, run_id, "FINISHED" if state == "COMPLETE" else "FAILED")


def _metric_items(metrics: dict[str, float], history: dict[str, list[float]] | None = None, step: int = 0) -> list[Metric]:
    """``metrics`` at ``step`` (``None`` values left out), then each ``history`` curve as ``epoch_<name>`` with step = epoch."""
    ts = int(time.time() * 1000)
    items = [Metric(k, float(v), ts, step) for k, v in metrics.items() if v is not None]
    items += [Metric(f"epoch_{k}", float(v), ts, i) for k, vs in (history or {}).items() for i, v in enumerate(vs)]
    return items


class TrialRunLogger:
    """Logs one trial's results into an existing MLflow run, from any process.

    Args:
        tracking_uri: MLflow tracking URI (``sqlite:///...``, ``http://127.0.0.1:5000``).
        run_id: the child run the driver created for this trial.
    """

    def __init__(self, tracking_uri: str, run_id: str):
        self.tracking_uri = tracking_uri
        self.client = _client(tracking_uri)
        self.run_id = run_id

    def harvest_run(self, epoch: int) -> "TrialRunLogger":
        """Create the run of a checkpoint kept at ``epoch`` (0-based) along this trial's beta ramp.

        A sibling of this run: same MLflow experiment and study parent run, the same params,
        named ``trial-<n>-epoch-<epoch>``, tagged ``harvested_from`` (this trial's number) and
        ``harvest_epoch``, and with this run's ``dse.experiment_version`` and ``dse.max_concurrent_trials``. End it
        with :meth:`finish`.
        """
        run = _retrying(self.client.get_run, self.run_id)
        tags = run.data.tags
        child = _retrying(
            self.client.create_run,
            run.info.experiment_id,
            run_name=f"{run.info.run_name}-epoch-{epoch}",
            tags={
                "mlflow.parentRunId": tags.get("mlflow.parentRunId", ""), STUDY_TAG: tags.get(STUDY_TAG, ""), ROLE_TAG: "trial",
                "harvested_from": tags.get("trial_number", ""), "harvest_epoch": str(epoch), "state": "RUNNING",
                "pinned": tags.get("pinned", ""), **provenance_tags(),
                **{k: tags[k] for k in ("dse.experiment_version", "dse.max_concurrent_trials") if k in tags},  # its trial's
            },
        )
        _log_params(self.client, child.info.run_id, [Param(k, v) for k, v in run.data.params.items()])
        return TrialRunLogger(self.tracking_uri, child.info.run_id)

    def finish(self, state: str, error: str | None = None) -> None:
        """Tag the Optuna state (``COMPLETE``/``FAIL``) and the error message, and end the run."""
        _finish_run(self.client, self.run_id, state, error)

    def _log_metric_items(self, items: list[Metric]) -> None:
        for i in range(0, len(items), _BATCH):
            _retrying(self.client.log_batch, self.run_id, metrics=items[i : i + _BATCH])

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        """Log ``metrics`` at ``step`` (``None`` values left out), in one batch."""
        self._log_metric_items(_metric_items(metrics, step=step))

    def log_history(self, history: dict[str, list[float]]) -> None:
        """Per-epoch training curves as metrics ``epoch_<name>`` with step = epoch."""
        self._log_metric_items(_metric_items({}, history))

    def set_tags(self, tags: dict[str, Any]) -> None:
        """Set ``tags`` on the run (values as strings), in one batch."""
        _retrying(self.client.log_batch, self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_results(self, metrics: dict[str, float], tags: dict[str, Any], history: dict[str, list[float]] | None = None, *,
                    end: str | None = None, error: str | None = None) -> None:
        """Log ``metrics`` (step 0), per-epoch ``history`` (as :meth:`log_history`) and ``tags`` in as few calls as MLflow allows.

        One ``log_batch`` per 900 metrics; the tags ride in the last one when it has room
        (MLflow takes at most 1000 entities and 100 tags per call), so a quickstart trial's
        results are one call instead of three, and its tags land with or after its metrics.

        Args:
            metrics: name -> value (``None`` values left out).
            tags: name -> value (logged as strings).
            history: per-epoch curves, name -> values (logged as ``epoch_<name>``, step = epoch).
            end: also end the run in this Optuna state (``COMPLETE``/``FAIL``), as :meth:`finish`
                does, with its ``state`` and ``error`` tags in the same batch as ``tags``.
            error: the error message ``end`` tags the run with.
        """
        items = _metric_items(metrics, history)
        run_tags = [RunTag(k, str(v)) for k, v in {**tags, **(_end_tags(end, error) if end else {})}.items()]
        cut = max(0, (len(items) - 1) // _BATCH * _BATCH)  # whole batches first; the last one carries the tags
        self._log_metric_items(items[:cut])
        last = items[cut:]
        if len(run_tags) <= _MAX_TAGS and len(last) + len(run_tags) <= 1000:
            _retrying(self.client.log_batch, self.run_id, metrics=last, tags=run_tags)
        else:
            self._log_metric_items(last)
            for i in range(0, len(run_tags), _MAX_TAGS):
                _retrying(self.client.log_batch, self.run_id, tags=run_tags[i : i + _MAX_TAGS])
        if end:
            _finish_run(self.client, self.run_id, end, error, tags_set=True)

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        """Upload the file ``path`` into the run's artifacts, under ``artifact_path`` (a folder) if given."""
        _retrying(self.client.log_artifact, self.run_id, str(path), artifact_path)

    def log_dict(self, data: dict[str, Any], name: str) -> None:
        """Write ``data`` as the run's artifact ``name`` (JSON or YAML by its extension, as ``mlflow.log_dict``)."""
        _retrying(self.client.log_dict, self.run_id, data, name)

    def log_dataset(self, record: dict[str, Any]) -> None:
        """Record the dataset (a :func:`dse.data.dataset_record`) as the run's MLflow dataset input."""
        _retrying(self.client.log_inputs, self.run_id, datasets=[dataset_input(record)])


class StudyTracker:
    """Driver-side MLflow bookkeeping for one study.

    Args:
        tracking_uri: MLflow tracking URI.
        experiment_name: MLflow experiment to log into (created if missing).
        artifact_location: where a newly created experiment stores artifacts
            (``None`` lets the tracking server decide).
        parent_run_id: the parent run the Optuna study records (an earlier ``dse run`` of it), or
            ``None`` for a study that records none. Where that run is in the store, the study goes on
            logging there, also after its experiment was renamed (a warning says so; before, a renamed
            experiment made a new one and split the study's runs). A study that records none gets a
            parent run of its own (:meth:`study_run`).

    Raises:
        TrackingError: the MLflow experiment exists but is deleted.
    """

    def __init__(self, tracking_uri: str, experiment_name: str, artifact_location: str | None = None,
                 parent_run_id: str | None = None):
        self.tracking_uri = tracking_uri
        if artifact_location is not None:
            from dse.tracking._relocate import relocate_default_store

            relocate_default_store(tracking_uri, artifact_location)
        self.client = _client(tracking_uri)
        self._recorded_parent = parent_run_id
        self._parent = self._live_run(parent_run_id, experiment_name) if parent_run_id else None
        if self._parent is not None:
            self.experiment_id = self._parent.info.experiment_id
            return
        exp = self.client.get_experiment_by_name(experiment_name)
        if exp is not None and exp.lifecycle_stage == "deleted":
            raise TrackingError(
                f"MLflow experiment {experiment_name!r} (id {exp.experiment_id}) in {redact_url(tracking_uri)} is deleted, "
                "and MLflow logs nothing into a deleted experiment. Restore it (`MLFLOW_TRACKING_URI=<that URI> mlflow "
                f"experiments restore --experiment-id {exp.experiment_id}`), remove it for good (`mlflow gc`), or set "
                "`mlflow.experiment_name` to another name"
            )
        self.experiment_id = (
            exp.experiment_id
            if exp is not None
            else self.client.create_experiment(experiment_name, artifact_location=artifact_location)
        )

    def _live_run(self, run_id: str, experiment_name: str) -> Any:
        """The run ``run_id`` where it is in this store and neither it nor its experiment is deleted, else ``None``."""
        try:
            run = self.client.get_run(run_id)
        except MlflowException as e:
            if run_is_gone(e) or getattr(e, "error_code", "") == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise
        experiment = self.client.get_experiment(run.info.experiment_id)
        if run.info.lifecycle_stage != "active" or experiment.lifecycle_stage != "active":
            return None
        if experiment.name != experiment_name:
            params = run.data.params  # the experiment name the study's first run logged into
            first = params.get("mlflow.experiment_name") if params.get("mlflow.experiment_name") not in (None, "None") else params.get("name")
            if first != experiment_name:  # mlflow.experiment_name changed in the experiment file: the new name it is
                return None
            log.warning("MLflow experiment %r holds this study's parent run %s, and the experiment is named %r now (renamed "
                        "in MLflow): the study goes on logging there; set mlflow.experiment_name: %r to say so",
                        experiment.experiment_id, run_id, experiment.name, experiment.name)
        return run

    def _of_study(self, study_name: str) -> str:
        """``search_runs`` filter of the study's runs: its tag, and its parent run where known (an earlier study of the
        same name, deleted in Optuna, left runs with the same tag under a parent run of its own)."""
        of = f"tags.`{STUDY_TAG}` = '{study_name}'"
        return of + (f" and tags.`mlflow.parentRunId` = '{self._recorded_parent}'" if self._recorded_parent else "")

    def study_run(self, study_name: str, config: dict[str, Any]) -> str:
        """Return the parent run of ``study_name``, reusing the one a previous ``dse run`` made.

        That is the parent run the Optuna study records, else one tagged with the study's name, unless
        the study records none and that run has trial runs: then it belongs to an earlier study of the
        same name (an Optuna study deleted and created again, or one in another storage), and this
        study gets a new parent run, with a warning (before, it logged into the earlier study's parent
        run). A tagged run without trial runs is a first ``dse run`` stopped before its first trial: reused.

        A new parent run gets ``config`` as flattened params and as ``experiment.json``, with
        every password inside a URL (e.g. the storage URL) masked by :func:`dse.config.redact_url`.

        A reused run is set RUNNING and loses the ``error`` tag an earlier driver's failure left.
        Its params keep the first run's experiment (MLflow params cannot change), but its
        ``experiment.json`` is replaced by ``config`` (what ``dse compare`` reads objectives and
        constraints from), and the tag ``experiment_updated`` lists the flattened fields whose value
        now differs from the params (``--allow-changed``, ``--n-trials``); it is removed when none does.
        """
        if self._parent is not None and self._parent.data.tags.get(STUDY_TAG) != study_name:
            self._parent = None  # another study's (a copy made by optuna.copy_study under a new name records it)
        found = [self._parent] if self._parent is not None else self.client.search_runs(
            [self.experiment_id], filter_string=f"tags.`{STUDY_TAG}` = '{study_name}' and tags.`{ROLE_TAG}` = 'study'",
            max_results=1,
        )
        if found and self._parent is None and self._recorded_parent is None and self.client.search_runs(
                [self.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{found[0].info.run_id}'", max_results=1):
            log.warning("MLflow experiment %s holds parent run %s of a study named %r, which this Optuna study does not "
                        "record (an Optuna study deleted and created again, or one of the same name in another storage): "
                        "this study gets a parent run of its own, and that run and its trials' runs (their pareto tags "
                        "included) stay as the earlier study left them", self.experiment_id, found[0].info.run_id, study_name)
            found = []
        config = redact_secrets(config)  # a storage URL's database password must not reach MLflow
        flat = {k: str(v)[:6000] for k, v in _flatten(config).items()}
        if found:
            run_id, params, tags = found[0].info.run_id, found[0].data.params, found[0].data.tags
            self.client.update_run(run_id, status="RUNNING")
            if "error" in tags:  # the error of an earlier, stopped driver no longer describes this run
                self.client.delete_tag(run_id, "error")
            # a field the first run's dse did not have (no param) is changed only when it is not at its default
            changed = sorted(k for k in flat.keys() | params.keys() if flat.get(k) != params.get(k)
                             and not (k not in params and flat[k] == _default_param(k)))
            last = _storage_text(tags.get(STORAGE_TAG, params.get("storage")))  # the storage of the run before this one
            if last != _storage_text(flat.get("storage")):  # `optuna.copy_study` into another storage, run from the same run directory
                log.warning("MLflow parent run %s was last used by a run of study %r with storage %s, and this run's "
                            "storage is %s: if that is a copy of the study (optuna.copy_study), both log into this parent "
                            "run and its trial names repeat; give the copy a run_dir or mlflow.tracking_uri of its own to "
                            "keep them apart (a study moved to another storage is told this once)", run_id, study_name,
                            *(v if v != "default" else "the default (in run_dir)" for v in (last, _storage_text(flat.get("storage")))))
            if changed:
                _retrying(self.client.set_tag, run_id, EXPERIMENT_UPDATED_TAG, ", ".join(changed)[:5000])
            elif EXPERIMENT_UPDATED_TAG in tags:  # back to the first run's experiment
                _retrying(self.client.delete_tag, run_id, EXPERIMENT_UPDATED_TAG)
        else:
            run = self.client.create_run(self.experiment_id, run_name=study_name, tags={STUDY_TAG: study_name, ROLE_TAG: "study"})
            run_id = run.info.run_id
            _log_params(self.client, run_id, [Param(k, v) for k, v in flat.items()])
        _retrying(self.client.log_dict, run_id, config, "experiment.json")
        _retrying(self.client.set_tag, run_id, STORAGE_TAG, _storage_text(flat.get("storage")))
        provenance = provenance_tags()
        if found and "dse.git_commit" in provenance:  # every commit that ran the study, oldest first (the tag above: the last)
            ran = [c for c in tags.get("dse.git_commits", tags.get("dse.git_commit", "")).split(",") if c]
            provenance = {**provenance, "dse.git_commits": ",".join(dict.fromkeys([*ran, provenance["dse.git_commit"]]))[:5000]}
        _retrying(self.client.log_batch, run_id, tags=[RunTag(k, v) for k, v in provenance.items()])
        if (diff := source_diff()) is not None:  # what `dse.git_dirty=true` ran: this run's and its trials' code
            _retrying(self.client.log_text, run_id, diff, f"source/{provenance['dse.git_diff']}.diff")
        self._log_search_space(run_id, config.get("search_space"))
        self._recorded_parent = run_id  # the study records it next (StudyRecords.set_tracking)
        return run_id

    def log_experiment_history(self, run_id: str, history: list[dict[str, Any]]) -> None:
        """Attach the experiments ``--allow-changed`` replaced (:meth:`dse.store.StudyRecords.experiment_history`, passwords
        in URLs masked) as ``experiment_history.json``; trial runs name theirs in the tag ``dse.experiment_version``."""
        history = [{**h, "experiment": redact_secrets(h.get("experiment") or {})} for h in history]
        _retrying(self.client.log_dict, run_id, history, "experiment_history.json")
        # the tag lists changed params; a search space or dataset changed in place keeps its path (before, unlisted)
        contents = {f"{line.split(':', 1)[0].split('.', 1)[0].split(' ', 1)[0]} (contents)" for h in history
                    for line in h.get("changed", []) if line.startswith(("search_space", "dataset contents", "dataset inputs"))}
        if contents:
            tag = _retrying(self.client.get_run, run_id).data.tags.get(EXPERIMENT_UPDATED_TAG, "")
            listed = [t for t in tag.split(", ") if t]
            _retrying(self.client.set_tag, run_id, EXPERIMENT_UPDATED_TAG, ", ".join(listed + sorted(contents - set(listed)))[:5000])

    def _log_search_space(self, run_id: str, path: Any) -> None:
        """Attach the search space file's contents (as written) as ``search_space.yaml``."""
        if not path:
            return
        try:
            text = Path(path).read_text()
        except OSError as e:  # a rerun from elsewhere: the stored copy from the first run stays
            log.warning("search space %s not readable, not attached to the parent run: %s", path, e)
            return
        _retrying(self.client.log_text, run_id, text, "search_space.yaml")

    def log_dataset(self, run_id: str, record: dict[str, Any]) -> None:
        """Record the dataset (a :func:`dse.data.dataset_record`) as an MLflow dataset input of ``run_id``."""
        _retrying(self.client.log_inputs, run_id, datasets=[dataset_input(record)])

    def trial_run(self, parent_run_id: str, study_name: str, number: int, params: "TrialParams", pinned: list[str],
                  tags: dict[str, Any] | None = None) -> str:
        """Create the nested child run of trial ``number``.

        Logs one MLflow param per :class:`~dse.config.TrialParams` field, holding the value
        the trial trains with (sampled and pinned alike; ``beta = 0`` as ``0.0``; per-layer
        ReuseFactors as a JSON list), and a ``pinned`` tag listing the names pinned by a rule
        or a condition's default (comma-separated, empty when none); and ``tags`` (``None`` values left out): the
        driver gives ``dse.max_concurrent_trials``, the most trials it runs at once (with more than one,
        which trials finished before this one was asked decides what the sampler had seen), and
        ``dse.experiment_version``, the version of the study's experiment it ran with
        (:meth:`dse.store.StudyRecords.experiment_version`).
        """
        run = _retrying(
            self.client.create_run,
            self.experiment_id,
            run_name=f"trial-{number}",
            tags={
                "mlflow.parentRunId": parent_run_id, STUDY_TAG: study_name, ROLE_TAG: "trial",
                "trial_number": str(number), "state": "RUNNING", "pinned": ",".join(pinned),
                **provenance_tags(), **{k: str(v) for k, v in (tags or {}).items() if v is not None},
            },
        )
        values = params.model_dump(mode="json")
        all_params = [Param(k, json.dumps(v) if isinstance(v, list) else str(v)) for k, v in values.items()]
        _retrying(self.client.log_batch, run.info.run_id, params=all_params)
        return run.info.run_id

    def running_trial_runs(self, study_name: str) -> dict[str, tuple[str, str]]:
        """The study's trial runs still RUNNING in MLflow, one search.

        Returns:
            run id -> (its ``trial_number`` tag, its ``harvested_from`` tag), each ``""`` where the run has none
            (a harvested checkpoint's run has a ``harvested_from`` until the driver numbers it).
        """
        found = self.client.search_runs(
            [self.experiment_id], max_results=50000,
            filter_string=f"{self._of_study(study_name)} and tags.`{ROLE_TAG}` = 'trial' and attributes.status = 'RUNNING'",
        )
        return {r.info.run_id: (r.data.tags.get("trial_number", ""), r.data.tags.get("harvested_from", "")) for r in found}

    def close_checkpoint_runs(self, study_name: str, number: int, error: str, keep: set[str] | frozenset[str] = frozenset()) -> list[str]:
        """End, as ``FAIL`` with ``error``, the harvested-checkpoint runs of trial ``number`` (tag ``harvested_from``)
        that are still RUNNING or tagged ``COMPLETE``, but for the runs ``keep``; one search.

        None of those became a trial of the study: a trial told FAIL with no checkpoint recorded
        (interrupted, timed out, its worker or driver lost while it harvested), or the runs of an
        attempt that Ray retried (``keep``: the runs of the checkpoints that were recorded). So none
        may stay RUNNING or read as a completed trial (``dse compare --tracking-uri``). Their
        ``feasible`` tag goes with it.

        Returns:
            The ids of the runs closed.
        """
        found = _retrying(self.client.search_runs, [self.experiment_id], max_results=50000,
                          filter_string=f"{self._of_study(study_name)} and tags.harvested_from = '{number}'")
        closed = []
        for run in found:
            if run.info.run_id in keep:
                continue
            if run.info.status == "RUNNING" or run.data.tags.get("state") == "COMPLETE":
                _finish_run(self.client, run.info.run_id, "FAIL", error, untag=("feasible",) if "feasible" in run.data.tags else ())
                closed.append(run.info.run_id)
        return closed

    def trial_runs_without_number(self, study_name: str) -> list[str]:
        """The study's trial runs without a ``trial_number`` tag (harvested checkpoints of an earlier dse); one search.

        ``IS NULL`` on a tag is a filter of MLflow releases since 2026-03; a server older than that
        refuses it, and the study's trial runs are then searched and sorted here.
        """
        from mlflow.exceptions import MlflowException

        trials = f"{self._of_study(study_name)} and tags.`{ROLE_TAG}` = 'trial'"
        try:
            found = self.client.search_runs([self.experiment_id], max_results=50000, filter_string=f"{trials} and tags.trial_number IS NULL")
        except MlflowException:
            found = [r for r in self.client.search_runs([self.experiment_id], max_results=50000, filter_string=trials)
                     if "trial_number" not in r.data.tags]
        return [r.info.run_id for r in found]

    def tag_run(self, run_id: str, tags: dict[str, str]) -> None:
        """Set tags on a run of the study: its parent run (``error`` when the driver failed) or a trial's child run
        (``trial_number`` of a harvested checkpoint, known once Optuna stored it)."""
        _retrying(self.client.log_batch, run_id, tags=[RunTag(k, str(v)[:5000]) for k, v in tags.items()])

    def finish_trial_run(self, run_id: str, state: str, error: str | None = None, tagged: str | None = None,
                         feasible: bool | None = None, tags: dict[str, str] | None = None, untag: tuple[str, ...] = ()) -> None:
        """Tag the Optuna state (``COMPLETE``/``FAIL``) and the error message, and end the run.

        Args:
            run_id: the trial's MLflow run.
            state: the Optuna state the trial was told (``COMPLETE``/``FAIL``).
            error: why it failed (``"<ExceptionName>: <message>"``), tagged ``error`` and ``error_type``.
            tagged: the ``state`` tag the worker already set on the run; when it equals ``state``,
                there is no error and no ``feasible`` verdict, only the end of the run is written
                (one MLflow call, not two).
            feasible: a COMPLETE trial's verdict under a constrained study's constraints, tagged
                ``feasible`` (``true``/``false``); ``None`` (no tag) without constraints.
            tags: more tags written in the same call (``logging_error`` when the worker's logging failed).
            untag: tags the worker set that no longer hold (its ``feasible`` verdict on a trial the driver failed), deleted.
        """
        _finish_run(self.client, run_id, state, error, tags_set=tagged == state and not error, feasible=feasible, tags=tags,
                    untag=untag)

    def mark_pareto(self, front_run_ids: set[str], all_run_ids: list[str], tag: str = "pareto",
                    parent_run_id: str | None = None) -> None:
        """Tag ``<tag>=true`` on front members and ``<tag>=false`` on the others.

        A run deleted in MLflow (the UI's delete, ``MlflowClient.delete_run``, or gone after ``mlflow gc``) is left out,
        with one warning naming the runs: before, its ``MlflowException`` ended every later ``dse run`` in a traceback.

        With ``parent_run_id``, a digest of the front and the runs is kept as the parent run's tag
        ``dse.marked.<tag>`` once every run is tagged, and a call with the same front and runs writes nothing (a rerun of
        a finished study of 2,000 trials spent 5.6 s rewriting 1,698 unchanged tags, one SQLite transaction each:
        probe 38). The digest lives in the store beside the tags it describes, so a store put back from a backup is
        tagged again where its digest differs.
        """
        import hashlib

        key = f"dse.marked.{tag}"
        digest = hashlib.sha256(json.dumps([tag, sorted(map(str, front_run_ids)), sorted(map(str, all_run_ids))]).encode()).hexdigest()
        if parent_run_id is not None and _retrying(self.client.get_run, parent_run_id).data.tags.get(key) == digest:
            log.debug("%s tags: the front and the runs are those tagged before; nothing to write", tag)
            return
        gone = []
        for rid in all_run_ids:
            try:
                _retrying(self.client.set_tag, rid, tag, "true" if rid in front_run_ids else "false")
            except MlflowException as e:
                if not run_is_gone(e):
                    raise
                gone.append(rid)
        if gone:
            log.warning("%d trial run(s) deleted in MLflow were not tagged %s=true/false (%s); their trials stay in the "
                        "Optuna study and its front: restore them (mlflow runs restore --run-id ID) to tag them at the "
                        "next run", len(gone), tag, ", ".join(gone))
        elif parent_run_id is not None:
            _retrying(self.client.set_tag, parent_run_id, key, digest)

    def log_study_artifact(self, parent_run_id: str, path: Path, metrics: dict[str, float]) -> None:
        """Attach a study-level file (front or calibration CSV) and metrics to the parent run.

        A metric whose latest value on the parent run is already ``metrics``' value is not logged
        again, so a rerun of a finished study (or a calibration repeated on the same trials) adds no
        row to its MLflow metric history (before, each rerun added one per metric).
        """
        _retrying(self.client.log_artifact, parent_run_id, str(path))
        if metrics:
            latest = _retrying(self.client.get_run, parent_run_id).data.metrics
            changed = {k: float(v) for k, v in metrics.items() if latest.get(k) != float(v)}
            if changed:
                _retrying(
                    self.client.log_batch,
                    parent_run_id,
                    metrics=[Metric(k, v, int(time.time() * 1000), 0) for k, v in changed.items()],
                )

    def end_study_run(self, parent_run_id: str, status: str = "FINISHED") -> None:
        """End the study's parent run with MLflow ``status`` (``FINISHED``, ``FAILED`` or ``KILLED``)."""
        _retrying(self.client.set_terminated, parent_run_id, status)


def _default_param(key: str) -> str | None:
    """The param value (as :meth:`StudyTracker.study_run` writes it) of experiment field ``key`` (dotted) at its default;
    None when the field has no default or is not a field."""
    from pydantic import BaseModel
    from pydantic_core import PydanticUndefined

    from dse.config import ExperimentConfig

    model: Any = ExperimentConfig
    *parents, leaf = key.split(".")
    for name in parents:
        info = model.model_fields.get(name)
        sub = next((t for t in (info.annotation, *getattr(info.annotation, "__args__", ())) if isinstance(t, type)
                    and issubclass(t, BaseModel)), None) if info is not None else None
        if sub is None:
            return None
        model = sub
    info = model.model_fields.get(leaf)
    if info is None or (info.default is PydanticUndefined and info.default_factory is None):
        return None
    value = info.get_default(call_default_factory=True)
    value = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
    return str(json.dumps(value) if isinstance(value, list) else value)[:6000]


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = json.dumps(v) if isinstance(v, list) else v
    return out
