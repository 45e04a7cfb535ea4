"""Export one trial's design: hls4ml project, da4ml RTL, Keras model, preprocessing, README.

Everything is rebuilt from the trial's MLflow artifacts (``model.keras``,
``hls4ml_config.yaml``, ``preprocessing.json``) and its record in the study, so an export works
on any machine that reaches the stores, long after the trial's worker is gone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import optuna
import yaml

from dse._args import expect
from dse.exceptions import DseError, ExportError
from dse.store import NOT_EVALUATED, TrialRecord

__all__ = ["EXPORT_NOTICE_S", "ExportError", "ExportResult", "expected_export_seconds", "export_design", "load_trial_model"]

log = logging.getLogger(__name__)


@dataclass
class ExportResult:
    """What :func:`export_design` wrote.

    Attributes:
        out_dir: the export folder.
        hls_project: the hls4ml project folder (``hls4ml_prj``).
        rtl_dir: da4ml's Verilog (``rtl``) for distributed_arithmetic designs, else ``None``.
        model: the Keras model file; preprocessing: ``preprocessing.json`` (``None`` if the trial predates it).
        readme: ``README.md`` with the numbers and build commands.
        hls_model: the hls4ml ``ModelGraph`` (written, not compiled).
        testbench_rows: rows of the test split in ``hls4ml_prj/tb_data/`` (0: the dataset could not be
            loaded here, or the trial predates ``preprocessing.json``; hls4ml's testbench then runs on zeros).
    """

    out_dir: Path
    hls_project: Path
    rtl_dir: Path | None
    model: Path
    preprocessing: Path | None
    readme: Path
    hls_model: Any = field(default=None, repr=False)
    testbench_rows: int = 0


#: README row names that say what a figure's unit is where its name does not
_FIGURE_NAMES = {
    "latency_cycles": "latency_cycles (clock cycles)",
    "da4ml_latency": "da4ml_latency (combinational depth, da4ml delay units, not cycles)",
    "da4ml_cost": "da4ml_cost (da4ml's LUT-cost estimate)",
    "da4ml_adders": "da4ml_adders (operations in the adder graph)",
}


def _run_artifacts(client, run_id: str) -> set[str]:
    """The top-level artifacts of MLflow run ``run_id``, checked to hold ``model.keras`` and ``hls4ml_config.yaml``.

    Raises:
        ExportError: the store at ``client.tracking_uri`` has no run ``run_id`` (a store other than the
            study's, or an incomplete copy of it); the run's artifacts are missing from its artifact store
            (the run says it reached conversion, or its artifact folder does not exist); or the trial never
            logged them (it did not reach conversion), or failed in its conversion (a FAIL run whose step times
            end there, :func:`_conversion_failed`).
    """
    from urllib.parse import unquote, urlparse

    from mlflow.exceptions import MlflowException

    from dse.config import redact_url

    store = redact_url(client.tracking_uri)
    try:
        run = client.get_run(run_id)
        have = {a.path for a in client.list_artifacts(run_id)}
    except MlflowException as e:
        said = (e.message.splitlines() or [type(e).__name__])[0]
        if e.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise ExportError(f"the MLflow store {store} could not be read for run {run_id} ({said}); check that store "
                              "(the study's mlflow.tracking_uri, or mlflow.db in its run directory), then export again") from e
        raise ExportError(
            f"the MLflow store {store} has no run {run_id} ({said}), so the trial's model cannot be "
            "found; it is not the store the study logged to, or an incomplete copy of it: copy mlflow.db and mlartifacts/ "
            "of the study's run directory together, or use the study's own store"
        ) from e
    missing = [a for a in ("model.keras", "hls4ml_config.yaml") if a not in have]
    if run.data.tags.get("state") == "FAIL" and _conversion_failed(run.data.metrics, run.data.tags):
        said = run.data.tags.get("error", "")
        raise ExportError(f"MLflow run {run_id}'s trial failed in its conversion{f' ({said})' if said else ''}: hls4ml made no "
                          "project of it, so there is nothing to export"
                          + ("; its Keras model is the run's artifact model.keras (`mlflow artifacts download --run-id "
                             f"{run_id} --artifact-path model.keras`)" if "model.keras" in have else ""))
    if not missing:
        return have
    location = run.info.artifact_uri
    local = unquote(urlparse(location).path) if location.startswith("file:") else None
    gone = local is not None and not Path(local).is_dir()
    # a trial the driver stopped (time limit, Ctrl-C, a lost worker or driver) never reported, so its run has no step
    # times and no artifact folder: told so, not sent to copy mlartifacts/
    stopped = run.data.tags.get("error_type") in _STOPPED_BY_DRIVER
    if stopped and run.data.tags.get("state") == "FAIL" and "seconds_convert" not in run.data.metrics:
        said = run.data.tags.get("error", run.data.tags["error_type"])
        raise ExportError(f"MLflow run {run_id} has no {', '.join(missing)}: its trial was stopped before its conversion, "
                          f"which logs them ({said[:300]}); only trials that reached conversion can be exported")
    # a run with step times (seconds_train, ...) but none for its conversion never logged a model, whether or not
    # its artifact folder is here; one without any (an earlier dse) and no folder may have lost them in a copy
    timed = bool(_step_times(run.data.metrics))
    if (timed or not gone) and run.data.tags.get("state") == "FAIL" and "seconds_convert" not in run.data.metrics:
        raise ExportError(f"MLflow run {run_id} has no {', '.join(missing)}: its trial stopped before its conversion, which "
                          "logs them (the run's state: FAIL); only trials that reached conversion can be exported")
    if gone or "seconds_convert" in run.data.metrics:
        why = "that folder does not exist" if gone else "the run reached conversion, which logs them"
        raise ExportError(
            f"{', '.join(missing)} of MLflow run {run_id} {'is' if len(missing) == 1 else 'are'} missing from its artifact "
            f"store at {local or location} ({why}); "
            "copy the study's run directory's mlartifacts/ beside its mlflow.db (a moved store is found again by "
            "--storage), then export again"
        )
    raise ExportError(f"MLflow run {run_id} has no {missing}; only trials that reached conversion can be exported")


#: ``error_type`` tags of trials the driver stopped before they reported (they logged nothing of their own).
_STOPPED_BY_DRIVER = frozenset({*NOT_EVALUATED, "TrialTimeoutError", "WorkerLostError"})


def _step_times(metrics: dict[str, float]) -> list[str]:
    """The step times a trial logged (``seconds_<step>``, :class:`dse.trial._runner._Steps`; not ``seconds_total``):
    none where its worker reported nothing, or it ran under an earlier dse that logged none."""
    return [k for k in metrics if k.startswith("seconds_") and k != "seconds_total"]


def _conversion_failed(metrics: dict[str, float], tags: dict[str, str] | None = None) -> bool:
    """Whether a trial failed in its hls4ml conversion: its tag ``hls4ml_convert`` is ``failed`` (a distributed_arithmetic
    design's conversion after its measurement), or its logged step times (``seconds_<step>``,
    :class:`dse.trial._runner._Steps`) end in its conversion: the step ran (its time is logged even when it raised) and
    none that follows it did (the resource measurements, then the C simulation's ``compile`` and ``csim``, which trials
    before 2026-11-21 ran before the measurements)."""
    if (tags or {}).get("hls4ml_convert") == "failed":
        return True
    later = ("seconds_resources_", "seconds_compile", "seconds_csim")
    return "seconds_convert" in metrics and not any(k.startswith(later) for k in metrics)


def load_trial_model(client, run_id: str, dst: Path, artifacts: set[str] | None = None) -> tuple[Any, dict[str, Any], dict[str, Any] | None]:
    """Download a trial's ``model.keras``, ``hls4ml_config.yaml`` and ``preprocessing.json`` into ``dst``.

    Args:
        artifacts: the run's artifacts as :func:`_run_artifacts` returned them, when the caller
            checked them already; ``None``: checked here.

    Returns:
        The Keras model (HGQ2 layers registered), the conversion record, the preprocessing
        record (``None`` when the trial did not log one).

    Raises:
        ExportError: the store has no such run, or the model or the hls4ml configuration is missing
            from the run (see :func:`_run_artifacts`).
    """
    from dse._stderr import import_tensorflow_quietly

    have = _run_artifacts(client, run_id) if artifacts is None else artifacts
    import_tensorflow_quietly()
    import hgq  # noqa: F401  (registers the HGQ2 layers with Keras)
    import keras

    dst.mkdir(parents=True, exist_ok=True)
    model_path = Path(client.download_artifacts(run_id, "model.keras", str(dst)))
    record = yaml.safe_load(Path(client.download_artifacts(run_id, "hls4ml_config.yaml", str(dst))).read_text())
    pre = None
    if "preprocessing.json" in have:
        pre = json.loads(Path(client.download_artifacts(run_id, "preprocessing.json", str(dst))).read_text())
    return keras.models.load_model(model_path), record, pre


#: Names the study and trial an export folder holds, then the files it wrote, one ``<sha256>  <path>`` line each
#: (``sha256sum``'s format; exports before the hashes list bare paths).
_MARKER = ".dse-export"
_WRITTEN = ("model.keras", "hls4ml_config.yaml", "preprocessing.json", "hls4ml_prj", "rtl", "README.md", _MARKER)

#: Rows of the test split written as the hls4ml testbench's vectors (``tb_data``): enough for an
#: accuracy check, few enough that the HLS tool's C simulation of them takes seconds.
TESTBENCH_ROWS = 1000


def _written_files(out: Path) -> list[str]:
    """The files under ``out`` an export writes (``_WRITTEN``), as sorted POSIX paths relative to ``out``."""
    files = []
    for name in _WRITTEN:
        p = out / name
        if p.is_dir() and not p.is_symlink():
            files += [f.relative_to(out).as_posix() for f in p.rglob("*") if not f.is_dir()]
        elif p.exists() or p.is_symlink():
            files.append(name)
    return sorted(files)


def _sha256(p: Path) -> str:
    """The SHA-256 of file ``p``'s content (of a symbolic link: of its target's name, so a broken link hashes too)."""
    if p.is_symlink():
        return hashlib.sha256(b"symlink:" + os.fsencode(os.readlink(p))).hexdigest()
    h = hashlib.sha256()
    with p.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _manifest(out: Path) -> list[str]:
    """The manifest lines of :data:`_MARKER`: ``<sha256>  <path>`` for each file of :func:`_written_files`."""
    return [f"{_sha256(out / f)}  {f}" for f in _written_files(out) if f != _MARKER]


def _recorded(lines: list[str]) -> dict[str, str | None]:
    """Path -> recorded SHA-256 from manifest ``lines`` (``None`` for an export that listed bare paths)."""
    files: dict[str, str | None] = {}
    for line in lines:
        digest, sep, path = line.partition("  ")
        if sep and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest):
            files[path] = digest
        else:
            files[line] = None
    return files


def _listed(files: list[str]) -> str:
    """Up to three of ``files``, comma-separated, with ``...`` when there are more."""
    return ", ".join(files[:3]) + (", ..." if len(files) > 3 else "")


def _prepare_out(out: Path, overwrite: bool, exporting: str = "") -> Path:
    """Create ``out``, or empty an earlier export there of what an export writes; refuse any other non-empty folder.

    An earlier export whose files changed since (an edited ``build_opt.tcl`` or ``README.md``: content
    other than the SHA-256 its manifest records) or that gained files in its folders (an HLS build's
    ``myproject_prj/``, logs, a compiled C simulation) is replaced only with ``overwrite``, so edits and
    hours of synthesis are not lost unasked. An export by an earlier dse whose manifest has no SHA-256s
    (bare paths, or no manifest) counts a file modified after it wrote its manifest as changed. Files
    at the top of ``out`` that an export does not write are left alone, with or without ``overwrite``.

    Raises:
        ExportError: ``out`` is a file, cannot be created, holds files that are not an earlier export,
            or holds an earlier export with files changed or added since and ``overwrite`` is false.
    """
    from dse.config import make_output_dir

    existing = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if existing and not (out / _MARKER).is_file():
        unmarked = ("; it looks like the export of a dse before 2026-12-04, which did not mark its folder: move it away or "
                    "delete it to export there" if {"model.keras", "hls4ml_prj"} <= set(existing) else "")
        raise ExportError(
            f"--out (Python: out_dir=): {out} is not empty ({', '.join(existing[:5])}{', ...' if len(existing) > 5 else ''}) and holds no earlier "
            f"`dse export`{unmarked}; give a new or empty folder, so no file of yours is overwritten or mixed with the design"
        )
    if existing:
        first, *manifest = (out / _MARKER).read_text().splitlines()
        if "(incomplete" not in first:  # an export that did not finish: nothing of it to keep
            # the manifest's SHA-256s; where an earlier dse recorded none (bare paths, or no manifest at all), a file
            # modified after the export wrote its manifest, last, is changed
            recorded = _recorded(manifest)
            written_at = (out / _MARKER).stat().st_mtime
            now = [f for f in _written_files(out) if f != _MARKER]
            added = [f for f in now if f not in recorded] if manifest else []
            changed = [f for f in now if f not in added and (_sha256(out / f) != recorded[f] if recorded.get(f) is not None
                                                             else (out / f).lstat().st_mtime > written_at)]
            since = " and ".join([*([f"{len(changed)} file(s) changed since ({_listed(changed)})"] if changed else []),
                                  *([f"{len(added)} file(s) added since ({_listed(added)})"] if added else [])])
            if since and not overwrite:
                raise ExportError(
                    f"--out (Python: out_dir=): {out} holds the export of {first}, with {since}, which a new export would overwrite or delete; "
                    "move them, give another --out, or pass --overwrite to replace them"
                )
            if since:
                log.warning("replacing the export of %s in %s, with %s", first, out, since)
            elif exporting and first != exporting:  # another trial's export: the folder's name may say otherwise now
                log.warning("replacing the export of %s in %s with %s", first, out, exporting)
    for name in existing:  # an earlier export (of this or another trial): nothing of it may stay beside the new one
        p = out / name
        if name in _WRITTEN:
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
    return make_output_dir(out, error=ExportError)


def _testbench_vectors(exp, pre: dict | None, model, work: Path) -> tuple[Path, Path, int, Any, int] | None:
    """Write the testbench's inputs and expected outputs as ``.npy`` files in ``work``.

    Inputs: the first :data:`TESTBENCH_ROWS` rows of the study's test split (same ``split_seed``),
    standardized with the trial's ``preprocessing.json``, float32 (n, n_features). Expected outputs:
    the trial's Keras model on them, (n, n_classes).

    Returns:
        ``(inputs.npy, outputs.npy, n, labels, n_test)`` (``labels``: the rows' class indices, int (n,); ``n_test``:
        the test split's rows), or ``None``
        (with a warning) when the trial has no preprocessing record or its dataset cannot be loaded on this machine.
    """
    import numpy as np

    from dse.data import Preprocessing, load_raw_test_split

    if pre is None:
        log.warning("no testbench vectors: the trial predates preprocessing.json; hls4ml's testbench will run on zeros")
        return None
    try:
        X_raw, labels = load_raw_test_split(exp.dataset)
    except DseError as e:
        log.warning("no testbench vectors: the study's dataset cannot be loaded here (%s); hls4ml's testbench will run on zeros", e)
        return None
    x = np.ascontiguousarray(Preprocessing.from_json(pre).apply(X_raw[:TESTBENCH_ROWS]), dtype=np.float32)
    y = np.asarray(model.predict(x, verbose=0, batch_size=4096))
    np.save(work / "tb_input.npy", x)
    np.save(work / "tb_output.npy", y)
    return work / "tb_input.npy", work / "tb_output.npy", len(x), np.asarray(labels[:TESTBENCH_ROWS], dtype=np.int64), len(X_raw)


EXPORT_NOTICE_S = 20.0
"""An export expected to take at least this many seconds (:func:`expected_export_seconds`) is announced by ``dse export``."""


def expected_export_seconds(record: TrialRecord) -> float | None:
    """About how many seconds of wall time exporting trial ``record`` spends solving it with da4ml, or ``None``.

    A distributed_arithmetic design is solved twice by an export: by hls4ml's conversion and for
    its RTL (:func:`dse.resources._yosys.write_da4ml_rtl`), each about as long as the trial's own
    conversion (``seconds_convert_hls4ml``, or ``seconds_convert`` where it was not deferred) and its
    own da4ml solve (``seconds_resources_da4ml``, else the conversion's again): minutes for large
    layers (103 s each at 784 inputs on a 2-core machine, measured 2026-12-07). ``None`` for the
    other strategies, whose export takes seconds, and for a trial that recorded neither timing.
    """
    if record.params is None or record.params.strategy != "distributed_arithmetic":
        return None
    m = record.metrics
    conversion = max(m.get("seconds_convert_hls4ml", 0.0), m.get("seconds_convert", 0.0))
    solve = m.get("seconds_resources_da4ml", conversion)
    return conversion + solve if conversion + solve > 0 else None


def export_design(study: optuna.Study, storage_url: str, number: int, out_dir: Path, overwrite: bool = False,
                  tracking_uri: str | None = None, allow_failed: bool = False,
                  notify: Callable[[str], None] | None = None) -> ExportResult:
    """Write trial ``number``'s design to ``out_dir`` ready for synthesis.

    Contents: ``model.keras``; ``hls4ml_config.yaml`` (everything passed to hls4ml);
    ``preprocessing.json`` (apply to raw features first); ``hls4ml_prj/`` (hls4ml project,
    converted from the downloaded model and config with :func:`dse.trial._hls.convert`, then
    ``write()``); ``rtl/`` (da4ml Verilog, distributed_arithmetic only); ``README.md`` (numbers
    with their sources, and build commands). ``hls4ml_prj/tb_data/`` holds testbench vectors: up to
    :data:`TESTBENCH_ROWS` standardized rows of the study's test split and the Keras model's outputs.

    An ``out_dir`` that exists must be empty or hold an earlier export (of any trial): what that
    export wrote (the files and folders above and ``.dse-export``, all of each folder) is replaced;
    if a file it wrote was changed since (its content no longer has the SHA-256 recorded in
    ``.dse-export``) or files were added in its folders (HLS build outputs), only with ``overwrite``.
    Other files at the top of ``out_dir`` are left alone.

    ``tracking_uri`` reads the trial's MLflow run at that tracking URI instead of the one the study
    recorded (its server seen through another address, a moved store). ``storage_url`` is the Optuna storage
    ``study`` was opened from: it locates a moved run directory's MLflow store.

    ``notify`` is called with one line before a long export's work, once the trial and ``out_dir`` are accepted: a
    distributed_arithmetic design whose solves take :data:`EXPORT_NOTICE_S` or more (:func:`expected_export_seconds`;
    ``dse export`` prints it; probe 41: minutes without a line).

    ``allow_failed`` also exports a FAIL trial whose model reached conversion (it failed later: in its
    resource measurement, its C simulation or an objective left unmeasured); its README names the
    failure and holds only the figures measured before it.

    Raises:
        ConfigError: ``tracking_uri`` names a SQLite store that does not exist or a store without the
            study's parent run.
        ExportError: the trial did not complete (FAIL without ``allow_failed``, or RUNNING, WAITING or PRUNED),
            or has no MLflow run or artifacts (a FAIL trial that failed before conversion); ``out_dir`` is a
            file, cannot be created, or is a non-empty folder that holds no earlier export; or holds an
            earlier export with files changed or added since, and ``overwrite`` is false.
        ConversionError: hls4ml refused the model.
        TypeError: ``study`` is not an ``optuna.Study`` or ``number`` not an int.
    """
    from mlflow.tracking import MlflowClient

    from dse.store import StudyRecords
    from dse.config import redact_url
    from dse.tracking import open_tracking, server_problem
    from dse.trial._hls import convert, recorded_settings

    expect("study", study, optuna.Study, "load it with dse.study.load_study(name, storage)")
    import numbers

    # a front_frame(...)["trial"] cell is a NumPy integer (probe 33: refused with a TypeError)
    expect("number", number, numbers.Integral, "give the trial's number, e.g. 3 (see `dse status`)")
    number = int(number)
    records = StudyRecords(study)
    if not study.trials:
        raise ExportError(f"study {study.study_name!r} has no trial yet; run it (`dse run`) before exporting a trial")
    if not 0 <= number < len(study.trials):
        raise ExportError(f"study {study.study_name!r} has trials 0..{len(study.trials) - 1}; there is no trial {number}")
    r = records.trial(number)
    said = f"{': ' + r.fail_reason if r.fail_reason else ''}"
    steps = _step_times(r.metrics)
    if r.state == "FAIL" and steps and "seconds_convert" not in steps:  # its worker reported the steps it ran
        raise ExportError(f"trial {number} is FAIL{said}; it stopped before its conversion, so it logged no model to "
                          "export; export a COMPLETE trial (see `dse status`)")
    strategy = r.params.strategy if r.params else r.tags.get("strategy")
    if (r.state == "FAIL" and strategy == "distributed_arithmetic" and "seconds_resources_da4ml" in r.metrics
            and "da4ml_cost" not in r.metrics):
        raise ExportError(f"trial {number} is FAIL{said}; it failed in da4ml's trace of its design, which the export's RTL "
                          "needs again; export a COMPLETE trial (see `dse status`)")
    if r.state == "FAIL" and _conversion_failed(r.metrics, r.tags):
        raise ExportError(f"trial {number} is FAIL{said}; it failed in its conversion, so hls4ml made no project of it; "
                          "export a COMPLETE trial (see `dse status`)" + (f"; its Keras model is the artifact model.keras of "
                          f"MLflow run {r.run_id}" if r.run_id else ""))
    if r.state != "COMPLETE" and not (r.state == "FAIL" and allow_failed):
        anyway = ""
        if r.state == "FAIL":  # steps reported: past its conversion (above); none: it was stopped before it said
            anyway = (f" or, {'as' if steps else 'if'} it failed after its conversion, its model anyway with --allow-failed "
                      "(allow_failed=True)")
        raise ExportError(f"trial {number} is {r.state}{said}; export a COMPLETE trial (see `dse status`){anyway}")
    if not r.run_id:
        raise ExportError(f"trial {number} has no MLflow run recorded; its artifacts cannot be found")
    where = open_tracking(records, storage_url, tracking_uri)
    if (db := where.missing_store) is not None:  # checked as `dse report` does; opening it would create an empty store
        fix = (f"copy mlflow.db and mlartifacts/ from the study's run directory into {where.run_dir} (beside the Optuna "
               "storage given by --storage)" if where.default_store else
               "if it was moved, pass --tracking-uri sqlite:///<where it is now>")
        raise ExportError(f"the study's MLflow store {db} is missing, and with it trial {number}'s model (an artifact of MLflow "
                          f"run {r.run_id}); {fix}, then export again")
    if problem := server_problem(where.tracking_uri):
        raise ExportError(f"the trial's model is an artifact of MLflow run {r.run_id} on the server {redact_url(where.tracking_uri)}, "
                          f"which does not answer ({problem}); start it and export again")
    client = MlflowClient(where.tracking_uri)
    artifacts = _run_artifacts(client, r.run_id)  # before the earlier export in --out is deleted
    if r.state == "FAIL":
        log.warning("trial %d is FAIL (%s): exporting its model as it was; its README holds only the figures measured "
                    "before the failure", number, r.fail_reason or "no reason recorded")
    out = _prepare_out(Path(out_dir).expanduser().resolve(), overwrite, f"{study.study_name} trial {number}")
    (out / _MARKER).write_text(f"{study.study_name} trial {number} (incomplete: the export did not finish)\n")  # ours from here on
    run_tags = client.get_run(r.run_id).data.tags
    # the experiment that built this trial: an earlier one where --allow-changed replaced it since (its data, split,
    # network and training for the testbench and the README; before, the study's latest was taken for every trial)
    version = run_tags.get("dse.experiment_version")
    exp, digest = records.experiment_of_version(version, trial=r.trained_by)  # a trial of a dse before the tag: by its number
    of_trial = _experiment_call(records, version, r.trained_by)
    if notify is not None and (seconds := expected_export_seconds(r)) is not None and seconds >= EXPORT_NOTICE_S:
        notify(f"trial {number} is a distributed_arithmetic design: its export solves it with da4ml twice (hls4ml's "
               f"conversion, then its RTL), about {seconds:.0f} s by the trial's own timings")
    model, record, pre = load_trial_model(client, r.run_id, out, artifacts)
    if pre is not None:
        (out / "preprocessing.json").write_text(json.dumps(pre, indent=2))
    hls = recorded_settings(record, exp.hls4ml)
    prj = out / "hls4ml_prj"
    if prj.exists():
        shutil.rmtree(prj)
    with tempfile.TemporaryDirectory(prefix="dse-tb-") as work:
        tb = _testbench_vectors(exp, pre, model, Path(work))
        hls_model = convert(model, record["HLSConfig"], hls, prj, *(tb[:2] if tb else ()))
        hls_model.write()
    n_tb = tb[2] if tb else 0
    if tb:  # before, a colleague with the folder alone could not reproduce the recorded accuracy
        import numpy as np

        np.savetxt(prj / "tb_data" / "tb_labels.dat", tb[3], fmt="%d")
    rtl_dir = None
    if strategy == "distributed_arithmetic":
        from dse.resources import Design
        from dse.resources._yosys import write_da4ml_rtl

        rtl_dir = out / "rtl"
        if rtl_dir.exists():
            shutil.rmtree(rtl_dir)
        design = Design(model, r.params, hls, exp.resources, float(r.metrics.get("ebops", 0.0)), out, None)
        files, stages = write_da4ml_rtl(design, rtl_dir)
        (rtl_dir / "files.txt").write_text("\n".join(str(f.relative_to(rtl_dir)) for f in files) + "\n")
    readme = out / "README.md"
    standing = _standing(study, r, records.experiment(reading=True).constraints)  # against the study's constraints now
    readme.write_text(_readme(study.study_name, r, records, hls, rtl_dir, pre, n_tb, standing,
                              _testbench_build(prj, hls_model.config.get_project_name()), tb[4] if tb else None,
                              exp.resources.da4ml_latency_cutoff, of_trial, storage_url)
                      + _provenance(exp, r, digest, run_tags), encoding="utf-8")
    (out / _MARKER).write_text("\n".join([f"{study.study_name} trial {number}", *_manifest(out)]) + "\n")
    log.info("exported trial %d of %s to %s", number, study.study_name, out)
    return ExportResult(out, prj, rtl_dir, out / "model.keras", out / "preprocessing.json" if pre else None, readme, hls_model, n_tb)


def _yosys_knows(part: str) -> bool:
    """Whether Yosys has a ``synth_xilinx`` family for ``part`` (:func:`dse.resources.yosys_family`)."""
    return _family(part, None) is not None


def _family(part: str, fallback: str | None = "xcup") -> str | None:
    """Yosys ``synth_xilinx -family`` for the part (``xcup`` when the part is not one Yosys knows)."""
    from dse.exceptions import DseError as _E
    from dse.resources._yosys import yosys_family

    try:
        return yosys_family(part)
    except _E:
        return fallback


def _input_order(names: list[str]) -> str:
    """The README's line on the input order (``feature_names`` of ``preprocessing.json``)."""
    shown = ", ".join(f"`{n}`" for n in names[:12]) + (f", ... ({len(names)} in all)" if len(names) > 12 else "")
    return (f"Input index j is feature `feature_names[j]`: {shown}. `dse.data.Preprocessing.apply` takes a pandas table "
            "by these column names, in any order.")


def _number(v: float) -> str:
    """A figure for the README table as the report's tables write it (:func:`dse.report.format_value`): whole numbers
    with thousands separators (12,228; a half rounded away from zero), others to 4 digits."""
    from dse.report._render import format_value

    return format_value(float(v))


def _as_of(study) -> str:
    """`` as it stood at this export (...)`` where the study had trials running or fewer evaluated than its ``n_trials``
    (its front may still change), else ``""``. Before, an export made mid-study said "On the study's Pareto front."
    of a trial the finished study dominates (probe 36)."""
    from dse.exceptions import ConfigError
    from dse.report import study_counts
    from dse.store import StudyRecords

    counts = study_counts(study)
    evaluated = counts.evaluated
    try:
        n_trials = StudyRecords(study).experiment(reading=True).n_trials
    except ConfigError:  # no stored experiment (a study dse did not make), or one this dse cannot read: only what runs is known
        n_trials = evaluated
    if not counts.running and evaluated >= n_trials:
        return ""
    running = f", {counts.running} running" if counts.running else ""
    return f" as it stood at this export ({evaluated} of its n_trials {n_trials} trials evaluated{running})"


def _standing(study, r, constraints) -> str:
    """The README's line on where trial ``r`` stands: infeasible (which bound it broke), on the Pareto front, or dominated.

    Infeasibility is what Optuna was told when the trial finished
    (:meth:`dse.store.TrialRecord.broken_constraints`), which stays so after the study's constraints were relaxed.
    A FAIL trial (exported with ``allow_failed``) is said to have failed, with its reason.
    """
    if r.state == "FAIL":
        return (f"**Failed**: this trial is FAIL ({r.fail_reason or 'no reason recorded'}). Its model reached conversion "
                "and is exported as it was, but the figures below are only those measured before the failure, it was "
                "never compared with the study's other trials, and it is not on the study's Pareto front.")
    if not r.feasible:
        broken = r.broken_constraints()
        now = f" (the study's constraints now: {', '.join(c.text for c in constraints) or 'none'})"
        return (f"**Infeasible**: when it finished it broke the study's constraints: {', '.join(broken) or '-'}{now}. "
                "It is not on the study's Pareto front.")
    from dse.store import StudyRecords, precise_broken
    from dse.study import precise_front

    on_front = r.number in {t.number for t in study.best_trials}
    where = (f"On the study's Pareto front{_as_of(study)}" if on_front
             else f"Not on the study's Pareto front{_as_of(study)} (other trials dominate it)")
    # the fronts on re-measured figures (`dse synthesize`), which may differ from the estimates' front
    records = StudyRecords(study)
    backends = records.measured_backends()
    precise = [b for b in backends if r.number in precise_front(study, b, list(constraints))]
    if precise:
        where += f", and on the front of its re-measured {' and '.join(precise)} figures"
    # before, a trial whose re-measured figures break a bound was said to meet the constraints
    broken = {b: texts for b in backends if (entry := records.measurements(b).get(r.number))
              and (texts := precise_broken(entry, b, list(constraints)))}
    if not constraints:
        return where + "."
    bounds = ", ".join(c.text for c in constraints)
    if broken:
        est = "so it is on the study's Pareto front of estimates" if on_front else "though other trials dominate it there"
        return (f"**Over budget on its re-measured figures**: {', '.join(t for texts in broken.values() for t in texts)} "
                f"(the study's constraints: {bounds}). Its estimates meet them, {est}, but it is not on the front of its "
                f"{' or '.join(broken)} figures.")
    return where + f"; it meets the study's constraints ({bounds})."


def _rtl_interface(rtl_dir: Path) -> list[str]:
    """README lines on the da4ml RTL's ports and the other files da4ml writes beside it (``rtl/``)."""
    import re

    wrapper = next(iter(sorted((rtl_dir / "src").glob("*_wrapper.v"))), None)
    text = wrapper.read_text() if wrapper is not None else ""
    ports = dict(re.findall(r"(input|output)\s*\[(\d+):0\]\s*model_(?:inp|out)", text))
    from dse.resources._yosys import _TOP as top

    lines = [f"Ports: `{top}` is the pipelined logic (clock `clk`); `{wrapper.stem}` takes all inputs packed in one bus "
             f"`model_inp[{ports.get('input', '?')}:0]` and gives `model_out[{ports.get('output', '?')}:0]`, each value "
             "a fixed-point field whose width and binary point da4ml's traced logic records (`model/comb.json`)."
             if wrapper is not None and ports else f"Top module: `{top}`."]
    extra = [f"`{name}` ({what})" for name, what in (
        ("build_vivado_prj.tcl", "Vivado: synthesis, place and route and timing at the clock period, `src/*.xdc`"),
        ("build_quartus_prj.tcl", "Intel Quartus"), ("sim/", "a Verilator binder for simulation")) if (rtl_dir / name).exists()]
    if extra:
        lines += ["", "Also written by da4ml: " + ", ".join(extra) + ". There are no RTL test vectors: da4ml's bit-exact "
                  "emulation (`comb.predict`, checked against the Keras model as `da4ml_bit_exact_fraction`, and the "
                  "csim_accuracy source of such designs under `hls4ml.csim: front`) is the reference."]
    return lines


def _testbench_build(prj: Path, project: str) -> str:
    """The g++ command that builds hls4ml's C testbench (``<project>_test.cpp``) of the project in ``prj``, run there.

    The standard is C++11 unless the generated types need C++23, as for dse's own C simulation build
    (:func:`dse.trial._hls.build_csim_library`); ``WEIGHTS_DIR`` points at the weights the testbench loads.
    """
    from dse.trial._hls import csim_cxx_standard

    return (f"g++ -O1 -std={csim_cxx_standard(prj)} -w -Ifirmware/ap_types -DWEIGHTS_DIR='\"firmware/weights\"' "
            f"{project}_test.cpp firmware/{project}.cpp -o csim_tb")


def _accuracy_key(m: dict[str, float]) -> str | None:
    """The recorded test accuracy of the design's own arithmetic: ``csim_accuracy``, else da4ml's (a failed trial)."""
    return next((k for k in ("csim_accuracy", "da4ml_accuracy") if k in m), None)


def _provenance(exp, r, digest: str | None, run_tags: dict[str, str]) -> str:
    """The README's section of what made the trial: seed, code, package versions, data and training settings.

    Args:
        exp: the experiment that built the trial; r: the trial's :class:`~dse.store.TrialRecord`; digest: its
            dataset digest (:func:`dse.data.dataset_record`); run_tags: the tags of the trial's MLflow run (``dse.version.*``,
            ``dse.git_commit``, ``dse.git_dirty``, ``dse.git_diff``).
    """
    versions = ", ".join(f"{k.removeprefix('dse.version.')} {v}" for k, v in sorted(run_tags.items()) if k.startswith("dse.version."))
    commit = run_tags.get("dse.git_commit")
    code = (f"dse at git commit `{commit}`" + (f", with uncommitted changes (the parent run's artifact "
                                                 f"`source/{run_tags['dse.git_diff']}.diff`)" if run_tags.get("dse.git_diff") else
                                                 ", with uncommitted changes" if run_tags.get("dse.git_dirty") == "true" else "")
            if commit else "dse not run from a git checkout (no commit recorded)")
    t = exp.training
    return "\n".join([
        "",
        "## Provenance",
        "",
        f"- Trained with seed {_seed_text(exp, r)} by {code}.",
        f"- Packages: {versions or 'not recorded (a run of an older dse)'}.",
        f"- Data: `{exp.dataset.name}`" + (f", `{exp.dataset.path}`" if getattr(exp.dataset, "path", None) else "")
        + f", split seed {exp.dataset.split_seed}" + (f", digest `{digest}` (the study's; `dse.data.dataset_record`)" if digest else "") + ".",
        f"- Network: hidden layers {list(exp.model.hidden)}; training: {t.epochs} epochs, batch size {t.batch_size}; the "
        "trial's own parameters are the params of its MLflow run.",
        "- To train it again, see \"Retraining one trial\" in dse's README: the same numbers on the same machine and versions.",
        "",
    ])


def _experiment_call(records, version: str | None, trial: int) -> str:
    """The :class:`~dse.store.StudyRecords` call, as Python source for the README, that reads the experiment trial
    ``trial`` (a harvested checkpoint's parent) was built with: ``.experiment()`` where the experiment never changed,
    else :meth:`~dse.store.StudyRecords.experiment_of_version` of its ``dse.experiment_version`` tag ``version``, or of
    its number where it has none. Before, the README's line read the latest experiment (probe 39: another split after
    a change of ``dataset``)."""
    if not records.experiment_history():
        return ".experiment()"
    return f".experiment_of_version({version!r})[0]" if version is not None else f".experiment_of_version(None, trial={trial})[0]"


def _seed_text(exp, r) -> str:
    """The README's seed of trial ``r``: its ``seed`` tag, or for a trial of a dse before that tag the seed worked out
    as dse trains (``exp.seed_for`` of its number; a harvested checkpoint's, its parent's), said to be worked out.
    Before, such a trial's seed read `-`, and a harvested one's formula named its own number (probe 39)."""
    rule = (f"the study's `seed` plus the number of trial {r.harvested_from}, whose checkpoint this is"
            if r.harvested_from is not None else "the study's `seed` plus the trial's number")
    if (seed := r.tags.get("seed")) is not None:
        return f"`{seed}` ({rule})"
    return f"`{exp.seed_for(r.trained_by)}` ({rule}; worked out from the experiment: the dse that trained it did not record it)"


def _readme(study_name: str, r, records, hls, rtl_dir: Path | None, pre: dict | None, n_tb: int, standing: str = "",
            tb_build: str = "", n_test: int | None = None, latency_cutoff: float = 5.0, of_trial: str = ".experiment()",
            storage_url: str | None = None) -> str:
    """The export's README: where the trial stands, numbers (each resource figure with its source) and how to build.

    ``of_trial``: the :class:`~dse.store.StudyRecords` call, as Python source, that reads the experiment the trial was
    built with (``.experiment()`` where the experiment never changed). ``storage_url``: the study's Optuna storage,
    written into the README's Python line where it holds no password (else ``<storage URL>``, as where it is ``None``).
    """
    from dse.config import redact_url

    storage = storage_url if storage_url and redact_url(storage_url) == storage_url else "<storage URL>"
    m, tags = r.metrics, r.tags
    lines = [
        f"# {study_name}, trial {r.number}",
        "",
        f"MLflow run `{r.run_id}`; Strategy `{r.params.strategy if r.params else tags.get('strategy')}`, "
        f"ReuseFactor per Dense layer (input to output) `{list(r.params.layer_reuse_factors or [r.params.reuse_factor]) if r.params else '-'}`; "
        f"hls4ml backend {hls.backend}, part `{hls.part}`, clock period {hls.clock_period} ns, {hls.io_type}.",
        *(["", f"A checkpoint harvested from trial {r.harvested_from} at epoch {r.harvest_epoch} (0-based) of its beta ramp."]
          if r.harvested_from is not None else []),
        *(["", standing] if standing else []),
        "",
        "## Numbers",
        "",
        "| figure | value | source |",
        "| --- | --- | --- |",
    ]
    csim_src = {"da4ml": "da4ml's bit-exact emulation", "keras": "quantized Keras model"}.get(
        tags.get("csim_accuracy_source", "csim"), "hls4ml C simulation")
    for k in ("keras_val_accuracy", "csim_val_accuracy", "keras_accuracy", "csim_accuracy", "bit_exact_fraction"):
        if k in m:
            split = "validation split" if "_val_" in k else "test split"
            lines.append(f"| {k} | {m[k]:.4f} | {split} ({'Keras' if k.startswith('keras') else csim_src}) |")
    if "csim_accuracy" not in m:  # a failed trial: da4ml's emulation ran (with its cost model) before the failure
        for k in ("da4ml_val_accuracy", "da4ml_accuracy", "da4ml_bit_exact_fraction"):
            if k in m:
                split = "validation split" if "_val_" in k else "test split"
                lines.append(f"| {k} | {m[k]:.4f} | {split} (da4ml's bit-exact emulation) |")
    if r.state == "FAIL" and not m:
        lines.append("| - | - | the study recorded no figure of this trial: it was stopped (a time limit, a lost worker, "
                     "Ctrl-C) before its worker reported them |")
    listed = set()
    for k in ("ebops", "lut", "dsp", "ff", "latency_cycles", "da4ml_cost", "da4ml_adders", "da4ml_latency"):
        if k in m:
            listed.add(k)
            lines.append(f"| {_FIGURE_NAMES.get(k, k)} | {_number(m[k])} | "
                         f"{tags.get(f'{k}_source', 'hgq-ebops' if k == 'ebops' else 'da4ml' if k.startswith('da4ml') else '-')} |")
    for backend in records.measured_backends():
        entry = records.measurements(backend).get(r.number)
        if entry:
            for k, v in sorted(entry["metrics"].items()):
                k = k.replace(f"{backend}_{backend}_", f"{backend}_")  # re-measurements logged before 2026-12-05
                if "seconds" in k or (k in listed and m.get(k) == v):  # its run time, or a row already in the table
                    continue
                listed.add(k)
                lines.append(f"| {_FIGURE_NAMES.get(k, k)} | {_number(v)} | "
                             f"{entry['tags'].get(f'{k}_source', backend)} (precise re-measurement) |")
    if rtl_dir is not None and tags.get("lut_source") in ("da4ml", "yosys"):  # probe 43: read as the HLS project's
        lines += ["", "The LUTs of da4ml and Yosys describe `rtl/` (da4ml's logic of the whole network); `hls4ml_prj/` is "
                  "hls4ml's own distributed-arithmetic implementation, solved layer by layer, whose LUTs its HLS report "
                  "gives (close to, not equal to, these)."]
    if "latency_cycles" in m:
        da4ml_stages = rtl_dir is not None and tags.get("latency_cycles_source") in ("da4ml", "yosys")
        lines += ["", f"Latency: {m['latency_cycles']:,.0f} cycles = {m['latency_cycles'] * hls.clock_period:,.1f} ns at {hls.clock_period} ns"
                  + (": the pipeline stages of the da4ml RTL below (`rtl/`; the HLS project's latency comes from the HLS "
                     f"report). da4ml cuts a stage every {latency_cutoff:g} of its delay units "
                     "(`resources.da4ml_latency_cutoff`) and does not read the clock period, so the ns hold only if each "
                     "stage meets the clock. Neither da4ml nor Yosys checks timing: that is known only after place and "
                     "route (Vivado on `rtl/`)." if da4ml_stages else ".")]
    else:
        later = ("the HLS report (C synthesis below, or `dse synthesize --backend vitis`/`vivado` where those tools are) "
                 "gives them.")
        if r.state == "FAIL" and "figure_backend" not in tags:  # tagged once every measurement succeeded
            why = "the trial failed before a resource backend reported it"
        elif tags.get("lut_source", "ebops-estimate") == "ebops-estimate":
            why = "the EBOPs estimate gives no cycles"
        else:
            why = f"its resource backend ({tags.get('figure_backend') or tags.get('lut_source')}) reported none"
        lines += ["", f"Latency: not measured: {why}; {later}"]
    rf = list(r.params.layer_reuse_factors or [r.params.reuse_factor]) if r.params else []
    if tags.get("lut_source") == "ebops-estimate" and any(f > 1 for f in rf):
        lines += ["", f"The EBOPs estimate's LUT count does not model ReuseFactor (its DSP count is divided by it): with "
                  f"ReuseFactor {max(rf)}, each multiplier serves several products, so the HLS report's LUT count may be well "
                  "below the estimate above."]
    lines += [
        "",
        "## Inputs",
        "",
        ("Standardize raw features first: `x_std = float32((x - feature_mean) / feature_scale)` with the vectors in "
         "`preprocessing.json` (fit on the study's train split); output index i is class `class_names[i]`."
         if pre is not None else "This trial predates `preprocessing.json`: the standardization is not recorded."),
        *(["", _input_order(pre["feature_names"])] if pre is not None and pre.get("feature_names") else []),
        "",
        "## Build",
        "",
        "```bash",
        "cd hls4ml_prj",
        *(
            ["# set the steps in build_opt.tcl (csim, synth, cosim, export, vsynth: 0/1), then:",
             "vitis-run --tcl build_prj.tcl --mode hls      # Vitis HLS; vsynth 1 also runs Vivado logic synthesis"]
            if hls.backend == "Vitis" else
            ['vivado_hls -f build_prj.tcl "csim=0 synth=1 vsynth=1"   # Vivado HLS C synthesis, then Vivado logic synthesis']
        ),
        "# the same from Python: hls_model.build(csim=False, synth=True, vsynth=True) on the converted model (hls4ml)",
        "```",
        "",
        "## Testbench",
        "",
        *([f"`hls4ml_prj/tb_data/tb_input_features.dat` holds the first {n_tb} rows of the study's test split, standardized; "
           "`tb_output_predictions.dat` the Keras model's outputs on them. C simulation in the HLS tool (`csim=1`) runs them "
           "and writes its outputs to `tb_data/csim_results.log`. Without an HLS tool, build and run the same testbench with g++:",
           "",
           "```bash",
           "cd hls4ml_prj",
           tb_build or "g++ ... myproject_test.cpp firmware/myproject.cpp -o csim_tb",
           "./csim_tb    # reads tb_data/tb_input_features.dat, writes tb_data/csim_results.log",
           "```",
           "",
           "The same C simulation check in Python (compiles the C simulation with g++; `import hgq` first: it registers "
           "HGQ2's layers with Keras):",
           "",
           "```python",
           "import hgq, hls4ml, keras, numpy as np, yaml",
           "rec = yaml.safe_load(open('hls4ml_config.yaml'))",
           "hm = hls4ml.converters.convert_from_keras_model(keras.models.load_model('model.keras'), hls_config=rec['HLSConfig'],",
           "    output_dir='csim_check', backend=rec['Backend'], part=rec['Part'], clock_period=rec['ClockPeriod'], io_type=rec['IOType'])",
           "hm.compile()",
           "x = np.loadtxt('hls4ml_prj/tb_data/tb_input_features.dat', dtype=np.float32, ndmin=2)",
           "expected = np.loadtxt('hls4ml_prj/tb_data/tb_output_predictions.dat', ndmin=2)",
           "labels = np.loadtxt('hls4ml_prj/tb_data/tb_labels.dat', dtype=int, ndmin=1)",
           "csim = np.asarray(hm.predict(x)).reshape(len(x), -1)",
           "print('C simulation agrees with Keras on', np.mean(csim.argmax(1) == expected.argmax(1)), 'of', len(x), 'rows')",
           "print('C simulation accuracy', np.mean(csim.argmax(1) == labels))",
           "```",
           "",
           "`tb_labels.dat` holds those rows' classes (indices into `class_names`). "
           + ("" if not (acc := _accuracy_key(m)) else
              f"They are the whole test split, so the accuracy printed is the recorded `{acc}` ({m[acc]:.4f})."
              if n_test is not None and n_tb == n_test else
              f"The recorded `{acc}` ({m[acc]:.4f}) is over the whole test split, of which these are the first {n_tb} rows.")]
          if n_tb else
          ["No testbench vectors were written (the study's dataset could not be loaded where this export ran, or the trial "
           "predates `preprocessing.json`): hls4ml's testbench runs on zeros."]),
        "",
        "All raw test rows in Python: `X_raw, y = dse.data.load_raw_test_split(dse.store.StudyRecords(dse.study.load_study("
        f"'{study_name}', {storage!r})){of_trial}.dataset)` gives the test split the trial was measured on, before "
        "standardization; "
        "`dse.data.Preprocessing.from_json(json.load(open('preprocessing.json'))).apply(X_raw)` standardizes it.",
    ]
    if rtl_dir is not None:
        lines += [
            "",
            "## da4ml RTL (distributed arithmetic)",
            "",
            "```bash",
            "cd rtl",
            f"yosys -p \"read_verilog -sv $(tr '\\n' ' ' < files.txt); synth_xilinx -family {_family(hls.part)} -flatten -noiopad -top dse_top; stat\"",
            "```",
            "",
            "`files.txt` lists the Verilog sources to read (da4ml's static library and the generated model)."
            + ("" if _yosys_knows(hls.part) else f" Yosys has no family for part `{hls.part}` (a Versal part, or one it does "
               "not know): `-family xcup` above gives UltraScale+ counts, an indication only; Vivado on this part "
               "(`build_vivado_prj.tcl`) gives its own."),
            "",
            *_rtl_interface(rtl_dir),
        ]
    return "\n".join(lines) + "\n"
