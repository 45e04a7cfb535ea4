"""Bad input, one case per kind of mistake and per schema field, through the real CLI.

Every case runs ``dse run`` and ``dse check`` in a fresh folder (the current directory, so the
default ``runs/<name>`` would land there) and asserts: exit code 2, no traceback, the message
names the field and the bad value, and nothing was created or changed on disk (no run
directory, no optuna.db / mlflow.db, hence no study and no MLflow experiment), within 20 s.

Network: the only addresses used are 127.0.0.1 ports this module bound and closed itself.
"""

from __future__ import annotations

import copy
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from dse.cli import app
from tests.conftest import TINY_SPACE

runner = CliRunner()


def _closed_port() -> int:
    """A 127.0.0.1 port nothing listens on: bind it, read it, close it."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


PORT = _closed_port()
DROP = object()  # marks a field to remove from the base experiment

#: A tiny, valid experiment (no run_dir: the default runs/<name> goes under the current directory).
BASE: dict[str, Any] = {
    "name": "tiny",
    "dataset": {"name": "digits"},
    "model": {"hidden": [8]},
    "training": {"epochs": 1, "batch_size": 128, "learning_rate": 0.01},
    "search_space": "space.yaml",
    "n_trials": 2,
    "seed": 0,
    "sampler": {"name": "random"},
    "ray": {"num_cpus": 1},
}

rng = np.random.default_rng(0)
X_OK = rng.normal(size=(60, 4))
Y_OK = np.arange(60) % 3


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if v is DROP:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def space(params: dict | None = None, rules: list | None = None, **top) -> dict:
    """TINY_SPACE with ``params`` merged into its parameters (DROP removes one) and ``rules`` replacing its rules."""
    s = {"parameters": _merge(TINY_SPACE["parameters"], params or {}), "rules": copy.deepcopy(TINY_SPACE["rules"])}
    if rules is not None:
        s["rules"] = rules
    s.update(top)
    return s


@dataclass
class Case:
    """One bad input.

    Attributes:
        id: test id.
        kind: the class of mistake.
        fields: schema fields this case covers (dotted; search-space fields start with ``space.``).
        expect: substrings the error output must hold (the field and the bad value).
        exp: overrides merged into :data:`BASE`.
        raw: experiment file text written verbatim instead (``{port}`` is filled in).
        space: the search space (default: TINY_SPACE).
        raw_space: search space text written verbatim instead.
        files: writes extra files (data) into the folder.
        arg: what to pass to the command instead of ``experiment.yaml``.
    """

    id: str
    kind: str
    fields: tuple[str, ...]
    expect: tuple[str, ...]
    exp: dict | None = None
    raw: str | None = None
    space: dict | None = None
    raw_space: str | None = None
    files: Callable[[Path], None] | None = None
    arg: str | None = None


# ---------------------------------------------------------------- data file writers
def npz(name: str = "data.npz", **arrays) -> Callable[[Path], None]:
    return lambda d: np.savez(d / name, **arrays)


def raw_bytes(name: str, data: bytes) -> Callable[[Path], None]:
    return lambda d: (d / name).write_bytes(data)


def text(name: str, content: str) -> Callable[[Path], None]:
    return lambda d: (d / name).write_text(content)


def truncated_npz(d: Path) -> None:
    np.savez(d / "full.npz", X=X_OK, y=Y_OK)
    data = (d / "full.npz").read_bytes()
    (d / "full.npz").unlink()
    (d / "data.npz").write_bytes(data[: len(data) // 2])


def npy_named_npz(d: Path) -> None:
    with open(d / "data.npz", "wb") as f:
        np.save(f, X_OK)


def parquet(name: str, **columns) -> Callable[[Path], None]:
    def write(d: Path) -> None:
        import pandas as pd

        pd.DataFrame(columns).to_parquet(d / name)

    return write


def sqlite_foreign(d: Path) -> None:
    """A real SQLite database that is not an Optuna storage."""
    import sqlite3

    with sqlite3.connect(d / "other.db") as con:
        con.execute("create table notes (t text)")
    con.close()


def mkdir(name: str) -> Callable[[Path], None]:
    return lambda d: (d / name).mkdir(parents=True)


def both(*writers: Callable[[Path], None]) -> Callable[[Path], None]:
    def write(d: Path) -> None:
        for w in writers:
            w(d)

    return write


def good_csv_text(target: str = "label") -> str:
    rows = "\n".join(f"{a:.3f},{b:.3f},{i % 3}" for i, (a, b) in enumerate(X_OK[:, :2]))
    return f"f0,f1,{target}\n{rows}\n"


def pandas_csv_with_index() -> str:
    """:func:`good_csv_text` as ``df.to_csv(path)`` writes it: a first column with an empty header holding 0..n-1."""
    header, *rows = good_csv_text().splitlines()
    return "\n".join([f",{header}", *(f"{i},{r}" for i, r in enumerate(rows))]) + "\n"


FILE_NPZ = {"dataset": {"name": "file", "path": "data.npz"}}
FILE_CSV = {"dataset": {"name": "file", "path": "data.csv", "target": "label"}}
FILE_PQ = {"dataset": {"name": "file", "path": "data.parquet", "target": "label"}}

CASES: list[Case] = [
    # ---- 1. a directory where a file is expected
    Case("run-arg-is-dir", "directory", (), ("experiment file", "is a directory", "file is needed"), files=mkdir("exps"), arg="exps"),
    Case("run-arg-is-dir-with-yaml", "directory", (), ("is a directory", "experiment.yaml"), arg="."),
    Case("search-space-is-dir", "directory", ("search_space",), ("search_space", "spaces", "is a directory"),
         exp={"search_space": "spaces"}, files=mkdir("spaces")),
    Case("dataset-path-is-dir", "directory", ("dataset.path",), ("dataset.path", "is a directory", "data.npz"),
         exp=FILE_NPZ, files=mkdir("data.npz")),
    Case("dataset-csv-is-dir", "directory", (), ("dataset.path", "is a directory", "data.csv"), exp=FILE_CSV, files=mkdir("data.csv")),
    # ---- 2. unreadable data files
    Case("csv-target-is-a-feature", "data", (), ("feature columns must be numeric", "['label']", "set dataset.target: label"),
         exp={"dataset": {"name": "file", "path": "data.csv", "target": "f0"}},
         files=raw_bytes("data.csv", b"f0,f1,label\n" + b"".join(b"%d,%d,%s\n" % (i, i % 7, b"ab"[i % 2:i % 2 + 1]) for i in range(60)))),
    Case("npz-with-target", "field", (), ("dataset.target names a label column", "a .npz file has none", "remove dataset.target"),
         exp={"dataset": {"name": "file", "path": "data.npz", "target": "label"}}, files=npz(X=X_OK, y=Y_OK)),
    Case("split-smaller-than-classes", "data", (), ("cannot split the dataset stratified", "a sample of each of the 20 classes",
                                                   "raise dataset.test_fraction/validation_fraction"),
         exp=FILE_NPZ, files=npz(X=np.arange(120.0).reshape(60, 2), y=np.arange(60) % 20)),
    Case("max-samples-too-few", "data", (), ("after dataset.max_samples=12", "raise it, or leave it out"),
         exp={"dataset": {"name": "digits", "max_samples": 12}}),
    Case("yaml-env-in-flow-mapping", "field", (), ("not valid YAML", "quote a ${NAME} reference"),
         raw="name: tiny\nsearch_space: space.yaml\ntraining: {epochs: ${EPOCHS}, batch_size: 8}\n"),
    Case("npz-corrupt", "data", (), ("DatasetError", "dataset.path", "data.npz", "not a readable .npz"),
         exp=FILE_NPZ, files=raw_bytes("data.npz", b"PK\x03\x04 this is not a zip archive at all")),
    Case("npz-random-bytes", "data", (), ("DatasetError", "dataset.path", "data.npz", "not an .npz archive"), exp=FILE_NPZ,
         files=raw_bytes("data.npz", bytes(range(256)) * 4)),
    Case("npz-truncated", "data", (), ("DatasetError", "dataset.path", "data.npz"), exp=FILE_NPZ, files=truncated_npz),
    Case("npz-pickled-object-arrays", "data", (), ("DatasetError", "dataset.path", "data.npz", "object (pickled) arrays"),
         exp=FILE_NPZ, files=npz(X=np.array([[1, "a"], [2, None]], dtype=object), y=np.array([0, 1]))),
    Case("npz-is-npy", "data", (), ("DatasetError", "dataset.path", "data.npz", "single .npy array"), exp=FILE_NPZ, files=npy_named_npz),
    # before, accepted: preprocessing then fed column 'a' twice
    Case("npz-repeated-feature-names", "data", (), ("dataset.path", "data.npz", "feature_names repeat ['a']", "its own name"),
         exp=FILE_NPZ, files=npz(X=X_OK, y=Y_OK, feature_names=np.array(["a", "a", "b", "c"]))),
    Case("npz-missing-y", "data", (), ("dataset.path", "data.npz", "missing ['y']"), exp=FILE_NPZ, files=npz(X=X_OK)),
    Case("npz-string-features", "data", (), ("dataset.path", "data.npz", "real numbers", "<U"), exp=FILE_NPZ,
         files=npz(X=X_OK.astype(str), y=Y_OK)),
    Case("npz-complex-features", "data", (), ("dataset.path", "data.npz", "complex"), exp=FILE_NPZ,
         files=npz(X=X_OK.astype(complex), y=Y_OK)),
    Case("npz-1d-features", "data", (), ("dataset.path", "data.npz", "2-D"), exp=FILE_NPZ, files=npz(X=X_OK[:, 0], y=Y_OK)),
    Case("npz-nan-features", "data", (), ("dataset.path", "data.npz", "NaN/inf"), exp=FILE_NPZ,
         files=npz(X=np.where(X_OK > 1.5, np.nan, X_OK), y=Y_OK)),
    Case("npz-empty", "data", (), ("dataset.path", "data.npz", "no samples"), exp=FILE_NPZ,
         files=npz(X=np.zeros((0, 4)), y=np.zeros(0, dtype=int))),
    Case("npz-one-class", "data", (), ("dataset.path", "data.npz", "single class"), exp=FILE_NPZ,
         files=npz(X=X_OK, y=np.zeros(60, dtype=int))),
    Case("csv-empty", "data", (), ("DatasetError", "dataset.path", "data.csv", "empty"), exp=FILE_CSV, files=text("data.csv", "")),
    Case("csv-header-only", "data", (), ("dataset.path", "data.csv", "no data rows"), exp=FILE_CSV, files=text("data.csv", "f0,f1,label\n")),
    Case("csv-missing-target", "data", ("dataset.target",), ("dataset.target", "'label'", "columns: f0, f1, cls"),
         exp=FILE_CSV, files=text("data.csv", good_csv_text("cls"))),
    Case("csv-binary-garbage", "data", (), ("DatasetError", "dataset.path", "data.csv", "cannot read it as .csv"),
         exp=FILE_CSV, files=raw_bytes("data.csv", b"\xff\xfe\x00\x81" * 64)),
    Case("csv-text-feature", "data", (), ("dataset.path", "data.csv", "must be numeric", "f1"),
         exp=FILE_CSV, files=text("data.csv", "f0,f1,label\n1,a,0\n2,b,1\n3,c,0\n")),
    Case("csv-only-target", "data", (), ("dataset.path", "data.csv", "0 columns"),
         exp=FILE_CSV, files=text("data.csv", "label\n" + "\n".join(str(i % 2) for i in range(20)) + "\n")),
    # an empty label cell (before: read as "a mix of ['float', 'str']")
    Case("csv-mixed-labels", "data", (), ("dataset.path", "data.csv", "labels y are missing (empty or NaN) in 1 rows (first rows, counted from 0 after any header: [1])"),
         exp=FILE_CSV, files=text("data.csv", "f0,label\n1,a\n2,\n3,b\n4,a\n")),
    Case("csv-fractional-labels", "data", (), ("dataset.path", "data.csv", "fractional values (e.g. 0.5)", "bin a continuous target"),
         exp=FILE_CSV, files=text("data.csv", "f0,label\n1,0.5\n2,1\n3,0\n4,1\n")),
    # df.to_csv(path) without index=False (before: the row number became the network's first input, silently)
    Case("csv-pandas-index-column", "data", (), ("dataset.path", "data.csv", "['Unnamed: 0'] have no header",
                                                 "holds 0..59, the row index", "index=False"),
         exp=FILE_CSV, files=text("data.csv", pandas_csv_with_index())),
    # a semicolon-separated file: one column named 'f0;f1;label' (before: only "not a column ... columns: f0;f1;label")
    Case("csv-semicolons", "data", (), ("dataset.target", "'label' is not a column", "holding ';'", "comma-separated"),
         exp=FILE_CSV, files=text("data.csv", good_csv_text().replace(",", ";"))),
    # before, accepted: pandas renamed the second 'f0' to 'f0.1', and that name was recorded as the file's
    Case("csv-repeated-column", "data", (), ("dataset.path", "data.csv", "['f0'] appear more than once", "its own name"),
         exp=FILE_CSV, files=text("data.csv", good_csv_text().replace("f1", "f0", 1))),
    # two nameless columns are named as nameless, not as a repeated name 'nan' (review of this change)
    Case("csv-two-nameless-columns", "data", (), ("dataset.path", "data.csv", "have no header"),
         exp=FILE_CSV, files=text("data.csv", "f0,,,label\n1,2,3,0\n2,3,4,1\n3,4,5,0\n")),
    # `f0, f1, label`: the names keep their spaces (before: only "not a column ... columns: f0,  f1,  label")
    Case("csv-spaces-after-commas", "data", (), ("dataset.target", "' label'", "spaces that belong to the name"),
         exp=FILE_CSV, files=text("data.csv", good_csv_text().replace(",", ", ", 2))),
    Case("parquet-corrupt", "data", (), ("DatasetError", "dataset.path", "data.parquet", "cannot read it as .parquet"),
         exp=FILE_PQ, files=raw_bytes("data.parquet", b"PAR1 not really parquet PAR1")),
    Case("parquet-missing-target", "data", (), ("dataset.target", "'label'", "columns: f0"),
         exp=FILE_PQ, files=parquet("data.parquet", f0=X_OK[:, 0], cls=Y_OK)),
    Case("dataset-unsupported-suffix", "data", (), ("dataset.path", "data.txt", "unsupported file type '.txt'"),
         exp={"dataset": {"name": "file", "path": "data.txt"}}, files=text("data.txt", "1 2 3\n")),
    Case("dataset-missing-file", "data", (), ("dataset.path", "nothere.npz", "does not exist"),
         exp={"dataset": {"name": "file", "path": "nothere.npz"}}),
    # ---- 3. storage, tracking and cluster addresses
    Case("storage-notaurl", "address", ("storage",), ("StorageError", "storage: 'notaurl'", "not a database URL"), exp={"storage": "notaurl"}),
    Case("storage-postgres-no-driver", "address", (), ("StorageError", "storage", "postgresql+psycopg2", "'psycopg2'", "pip install psycopg2-binary"),
         exp={"storage": f"postgresql+psycopg2://user:secret@127.0.0.1:{PORT}/optuna"}),
    Case("storage-mysql-no-driver", "address", (), ("storage", "mysql+pymysql", "'pymysql'", "not installed"),
         exp={"storage": f"mysql+pymysql://user@127.0.0.1:{PORT}/optuna"}),
    Case("storage-unknown-database", "address", (), ("storage", "'nosuchdb'", "not a database SQLAlchemy knows"),
         exp={"storage": "nosuchdb://127.0.0.1/x"}),
    Case("storage-sqlite-in-memory", "address", (), ("storage", "'sqlite://'", "in-memory"), exp={"storage": "sqlite://"}),
    Case("storage-sqlite-under-a-file", "address", (), ("storage", "afile", "which is a file"),
         exp={"storage": "sqlite:///afile/optuna.db"}, files=text("afile", "x")),
    Case("storage-sqlite-is-a-dir", "address", (), ("storage", "adir", "is a directory"),
         exp={"storage": "sqlite:///adir"}, files=mkdir("adir")),
    Case("storage-sqlite-not-a-database", "address", (), ("StorageError", "storage", "junk.db", "not an SQLite database"),
         exp={"storage": "sqlite:///junk.db"}, files=text("junk.db", "this is not a database\n" * 100)),
    Case("storage-sqlite-foreign-database", "address", (), ("StorageError", "storage", "other.db", "cannot be read as an Optuna database"),
         exp={"storage": "sqlite:///other.db"}, files=sqlite_foreign),
    Case("storage-journal-not-a-journal", "address", (), ("StorageError", "storage", "notes.log", "not an Optuna journal file"),
         exp={"storage": "notes.log"}, files=text("notes.log", "2026-11-22 INFO something happened\n")),
    Case("storage-journal-under-a-file", "address", (), ("storage", "afile", "which is a file"),
         exp={"storage": "afile/optuna.log"}, files=text("afile", "x")),
    Case("storage-journal-is-a-dir", "address", (), ("storage", "adir.log", "is a directory"),
         exp={"storage": "adir.log"}, files=mkdir("adir.log")),
    Case("tracking-notaurl", "address", ("mlflow.tracking_uri",), ("TrackingError", "mlflow.tracking_uri", "'notaurl'"),
         exp={"mlflow": {"tracking_uri": "notaurl"}}),
    Case("tracking-closed-port", "address", (), ("TrackingError", "mlflow.tracking_uri", f"http://127.0.0.1:{PORT}", "no MLflow server answers"),
         exp={"mlflow": {"tracking_uri": f"http://127.0.0.1:{PORT}"}}),
    Case("tracking-https-closed-port", "address", (), ("mlflow.tracking_uri", f"https://127.0.0.1:{PORT}/prefix"),
         exp={"mlflow": {"tracking_uri": f"https://127.0.0.1:{PORT}/prefix"}}),
    Case("tracking-no-host", "address", (), ("mlflow.tracking_uri", "'http://'", "names no host"), exp={"mlflow": {"tracking_uri": "http://"}}),
    Case("tracking-bad-scheme", "address", (), ("mlflow.tracking_uri", "'ftp://127.0.0.1/x'", "scheme 'ftp'"),
         exp={"mlflow": {"tracking_uri": "ftp://127.0.0.1/x"}}),
    Case("tracking-postgres-no-driver", "address", (), ("TrackingError", "mlflow.tracking_uri", "'psycopg2'"),
         exp={"mlflow": {"tracking_uri": f"postgresql+psycopg2://u@127.0.0.1:{PORT}/mlflow"}}),
    Case("ray-closed-port", "address", ("ray.address",), ("ClusterUnreachableError", "ray.address", f"127.0.0.1:{PORT}", "refused"),
         exp={"ray": {"address": f"127.0.0.1:{PORT}"}}),
    # probe 24: a ray:// address was never checked beyond TCP, and dse run created the study before it failed
    Case("ray-client-address", "address", (), ("ray.address", f"ray://127.0.0.1:{PORT}", "is a Ray Client address, which dse does not use"),
         exp={"ray": {"address": f"ray://127.0.0.1:{PORT}"}}),
    Case("ray-no-port", "address", (), ("ray.address", "'127.0.0.1'", "names no port"), exp={"ray": {"address": "127.0.0.1"}}),
    Case("ray-bad-port", "address", (), ("ray.address", "'127.0.0.1:http'", "invalid port"), exp={"ray": {"address": "127.0.0.1:http"}}),
    Case("ray-bad-scheme", "address", (), ("ray.address", f"'http://127.0.0.1:{PORT}'", "scheme 'http'"),
         exp={"ray": {"address": f"http://127.0.0.1:{PORT}"}}),
    Case("run-dir-under-a-file", "address", ("run_dir",), ("run_dir: ", "afile", "which is a file"),
         exp={"run_dir": "afile/run"}, files=text("afile", "x")),
    Case("run-dir-is-a-file", "address", (), ("run_dir: ", "afile", "is a file"), exp={"run_dir": "afile"}, files=text("afile", "x")),
    # before: '?' made both stores one file named "run" (an alembic error), '%20' put optuna.db in "run x/" (a traceback)
    Case("run-dir-question-mark", "address", (), ("run_dir: ", "run?a=1 holds '?'", "default storage and mlflow.tracking_uri",
                                                  "pick a folder without"), exp={"run_dir": "run?a=1"}),
    Case("run-dir-percent", "address", (), ("run_dir: ", "run%20x holds '%20'", "default mlflow.tracking_uri"),
         exp={"run_dir": "run%20x", "storage": "journal"}),
    # ---- 5. silently accepted before
    Case("duplicate-top-key", "silent", (), ("duplicate key 'n_trials'", "line"),
         raw="name: tiny\nsearch_space: space.yaml\nn_trials: 3\nn_trials: 50\n"),
    Case("duplicate-nested-key", "silent", (), ("duplicate key 'epochs'", "line 4", "line 5"),
         raw="name: tiny\nsearch_space: space.yaml\ntraining:\n  epochs: 3\n  epochs: 5\n"),
    Case("duplicate-flow-key", "silent", (), ("duplicate key 'epochs'", "line 3"),
         raw="name: tiny\nsearch_space: space.yaml\ntraining: {epochs: 3, batch_size: 8, epochs: 30}\n"),
    Case("duplicate-space-key", "silent", (), ("search space", "duplicate key 'strategy'"),
         raw_space="parameters:\n  strategy: {type: categorical, choices: [Latency]}\n  strategy: {type: categorical, choices: [Resource]}\n"),
    Case("epochs-yes", "silent", (), ("training.epochs", "'yes'"), raw="name: tiny\nsearch_space: space.yaml\ntraining: {epochs: yes}\n"),
    Case("batch-size-on", "silent", (), ("training.batch_size", "'on'"), raw="name: tiny\nsearch_space: space.yaml\ntraining: {batch_size: on}\n"),
    Case("n-trials-true", "silent", ("n_trials",), ("n_trials", "boolean true"), exp={"n_trials": True}),
    Case("seed-false", "silent", ("seed",), ("seed", "boolean false"), exp={"seed": False}),
    Case("hidden-bool", "silent", (), ("model.hidden", "not booleans", "[8, True]"), exp={"model": {"hidden": [8, True]}}),
    Case("learning-rate-inf", "silent", (), ("training.learning_rate", "finite", "inf"), raw="name: tiny\nsearch_space: space.yaml\ntraining: {learning_rate: .inf}\n"),
    Case("learning-rate-nan", "silent", (), ("training.learning_rate", "finite", "nan"), raw="name: tiny\nsearch_space: space.yaml\ntraining: {learning_rate: .nan}\n"),
    Case("clock-period-inf", "silent", ("hls4ml.clock_period",), ("hls4ml.clock_period", "finite", "inf"), exp={"hls4ml": {"clock_period": float("inf")}}),
    Case("space-high-inf", "silent", ("space.float.high",), ("parameters.beta", "high", "finite", "inf"),
         space=space({"beta": {"type": "float", "low": 1e-6, "high": float("inf")}})),
    Case("space-low-nan", "silent", ("space.float.low",), ("parameters.beta", "low", "finite", "nan"),
         space=space({"beta": {"type": "float", "low": float("nan"), "high": 1e-5}})),
    Case("space-choices-mixed", "silent", ("space.categorical.choices",), ("parameters.reuse_factor", "choices mix", "[1, '2', 4.0]"),
         space=space({"reuse_factor": {"type": "categorical", "choices": [1, "2", 4.0], "when": {"strategy": "Resource"}, "default": 1}})),
    Case("space-choices-bool-and-number", "silent", (), ("parameters.learning_rate", "choices mix", "[True, 0.01]"),
         space=space({"learning_rate": {"type": "categorical", "choices": [True, 0.01]}})),
    # probe 21: accepted (quoted choices were refused), then compared as a string with numbers in later checks
    Case("space-default-quoted", "silent", (), ("parameters.reuse_factor.default: '1' is quoted", "write 1 without quotes"),
         space=space({"reuse_factor": {"default": "1"}})),
    Case("space-rule-pin-quoted", "silent", (), ("rules[0].set.beta: '0.0' is quoted", "write 0.0 without quotes"),
         space=space(rules=[{"name": "tip", "when": {"strategy": "Resource"}, "set": {"beta": "0.0"}}])),
    Case("space-default-without-when", "silent", (), ("parameters.weight_bits.default: a default is taken only where",
                                                       "add a when, or drop default"),
         space=space({"weight_bits": {"default": 4}})),
    Case("space-choices-null", "silent", (), ("parameters.weight_bits.categorical.choices: choices hold null", "[3, None]"),
         space=space({"weight_bits": {"type": "categorical", "choices": [3, None]}})),
    Case("space-empty-when", "silent", (), ("parameters.weight_bits.when: an empty condition", "or drop when"),
         space=space({"weight_bits": {"when": {}}})),
    Case("space-float-condition-never-holds", "silent", (),
         ("rules[0].when.beta: 0.0 is never a value of 'beta' (it takes [1e-06, 1e-05]) (0 needs include_zero: true)",),
         space=space(rules=[{"name": "dead", "when": {"beta": 0.0}, "set": {"weight_bits": 3}}])),
    # one point of a continuous range: in range, yet drawn almost never (the review of stop 45: accepted, and the
    # condition held for 0 of 200 random trials)
    Case("space-float-condition-one-point", "silent", (),
         ("rules[0].when.beta: 3e-06 is one point of 'beta''s continuous range [1e-06, 1e-05], drawn almost never",
          "condition on a categorical parameter instead", "or pin beta to 3e-06 with a rule or its default"),
         space=space(rules=[{"name": "point", "when": {"beta": 3.0e-6}, "set": {"weight_bits": 3}}])),
    Case("space-float-condition-off-grid", "silent", (),
         ("rules[0].when.beta: 2.5e-06 is off 'beta''s grid (1e-06 + k x 2e-06)", "use a value on the grid"),
         space=space({"beta": {"log": False, "step": 2.0e-6, "low": 1.0e-6, "high": 9.0e-6}},
                     rules=[{"name": "off", "when": {"beta": 2.5e-6}, "set": {"weight_bits": 3}}])),
    Case("space-rule-pins-null", "silent", (),  # the review of stop 45: pydantic's four lines, one per type
         ("rules.0.set", "beta_end: null (an empty YAML value or the word null) cannot be pinned",
          "no ramp: pin beta_schedule: constant, or beta_end to beta's value"),
         space=space({"beta_end": {"type": "float", "low": 1.0e-5, "high": 1.0e-3, "log": True}},
                     rules=[{"name": "flat", "when": {"strategy": "Resource"}, "set": {"beta_end": None}}])),
    Case("space-choices-repeated", "silent", (), ("parameters.learning_rate", "repeat", "[0.01, 0.01]"),
         space=space({"learning_rate": {"type": "categorical", "choices": [0.01, 0.01]}})),
    Case("part-nonsense", "silent", ("hls4ml.part",), ("hls4ml.part", "'foo'", "not a Xilinx part number", "xcvu13p-flga2577-2-e"),
         exp={"hls4ml": {"part": "foo"}}),
    Case("part-no-package", "silent", (), ("hls4ml.part", "'xcvu13p'", "examples"), exp={"hls4ml": {"part": "xcvu13p"}}),
    Case("part-intel", "silent", (), ("hls4ml.part", "'AGFB014R24A2E2V'"), exp={"hls4ml": {"part": "AGFB014R24A2E2V"}}),
    Case("name-dotdot", "silent", ("name",), ("name", "'..'", "start with an ASCII letter or digit"), exp={"name": ".."}),
    Case("name-hidden", "silent", (), ("name", "'.hidden'"), exp={"name": ".hidden"}),
    Case("name-dash", "silent", (), ("name", "'-rf'"), exp={"name": "-rf"}),
    Case("name-too-long", "silent", (), ("name", "at most 100 characters", "300 characters"), exp={"name": "a" * 300}),
    Case("name-slash", "silent", (), ("name", "'a/b'"), exp={"name": "a/b"}),
    # ---- 6. checks `dse run` made and `dse check` did not
    Case("reuse-factor-invalid", "check", (), ("parameters.reuse_factor", "none of [3, 5]", "64x8 Dense layer"),
         space=space({"strategy": {"choices": ["Resource"]},  # Resource only: a Latency trial's ReuseFactor 3 is refused apart
                      "reuse_factor": {"type": "categorical", "choices": [3, 5], "when": {"strategy": "Resource"}, "default": 3}})),
    # probe 21: with Latency beside Resource, the Latency default 1 counted as a Resource choice and [3, 5] passed
    Case("reuse-factor-invalid-beside-latency", "check", (), ("parameters.reuse_factor", "none of [3, 5]", "64x8 Dense layer"),
         space=space({"reuse_factor": {"type": "categorical", "choices": [3, 5], "when": {"strategy": "Resource"}, "default": 1}})),
    # a Latency / distributed_arithmetic trial given a ReuseFactor other than 1 (each trial would fail InvalidHlsConfigError)
    Case("rf-without-strategy", "check", (), ("parameters.reuse_factor", "Strategy Latency needs ReuseFactor 1",
                                              "ReuseFactor 2, 4", "strategy is not a parameter", "choices: [Resource]}` before reuse_factor"),
         space=space({"strategy": DROP, "reuse_factor": {"when": DROP, "default": DROP}}, rules=[])),
    Case("rf-rule-for-latency", "check", (), ("Strategy Latency needs ReuseFactor 1", "ReuseFactor 8", "from rules[1]"),
         space=space(rules=[{"name": "tip", "when": {"strategy": "Resource"}, "set": {"beta": 0.0}},
                            {"when": {"strategy": "Latency"}, "set": {"reuse_factor": 8}}])),
    Case("rf-default-for-latency", "check", (), ("Strategy Latency needs ReuseFactor 1", "ReuseFactor 4",
                                                 "parameters.reuse_factor.default"),
         space=space({"reuse_factor": {"default": 4}})),
    Case("rf-range-for-da", "check", (), ("Strategy distributed_arithmetic needs ReuseFactor 1", "ReuseFactor 2, 3, 4"),
         space=space({"strategy": {"choices": ["Resource", "distributed_arithmetic"]},
                      "reuse_factor": {"type": "int", "low": 1, "high": 4, "when": DROP, "default": DROP, "choices": DROP}})),
    Case("space-quoted-number-choices", "field", (), ("parameters.reuse_factor: choices ['4'] are strings", "without quotes"),
         space=space({"reuse_factor": {"choices": ["4"]}})),
    Case("io-stream-per-feature", "check", ("hls4ml.io_type",), ("parameters.activation_granularity", "io_stream"),
         exp={"hls4ml": {"io_type": "io_stream"}}),
    Case("io-stream-per-feature-from-a-rule", "check", (), ("parameters.activation_granularity", "io_stream",
                                                            "change rules[1] (fine), which sets activation_granularity to per-feature"),
         exp={"hls4ml": {"io_type": "io_stream"}},
         space=space({"activation_granularity": {"type": "categorical", "choices": ["per-layer"]}},
                     rules=[{"name": "tip", "when": {"strategy": "Resource"}, "set": {"beta": 0.0}},
                            {"name": "fine", "when": {"strategy": "Resource"}, "set": {"activation_granularity": "per-feature"}}])),
    Case("fifo-without-vivado", "check", (), ("hls4ml.fifo_depth_optimization", "vitis"),
         exp={"hls4ml": {"io_type": "io_stream", "fifo_depth_optimization": True}}),
    Case("existing-study-other-directions", "check", (), ("study 'tiny'", "directions", "['maximize', 'minimize']"),
         exp={"storage": "sqlite:///old.db", "objectives": [{"metric": "lut", "direction": "minimize"}, {"metric": "csim_accuracy", "direction": "maximize"}]},
         files=lambda d: __import__("optuna").create_study(study_name="tiny", storage=f"sqlite:///{d / 'old.db'}", directions=["maximize", "minimize"])),
    # ---- 7. square brackets survive printing
    Case("bracket-in-space-path", "markup", (), ("search_space", "sp[/x].yaml", "does not exist"), exp={"search_space": "sp[/x].yaml"}),
    Case("bracket-in-data-path", "markup", (), ("dataset.path", "d[per-layer].npz", "does not exist"),
         exp={"dataset": {"name": "file", "path": "d[per-layer].npz"}}),
    Case("bracket-in-choice", "markup", (), ("parameters.weight_granularity", "'[per-layer]'"),
         space=space({"weight_granularity": {"type": "categorical", "choices": ["[per-layer]"]}})),
    Case("bracket-in-name", "markup", (), ("name", "'a[bold]b[/bold]'"), exp={"name": "a[bold]b[/bold]"}),
    # ---- 8. a failed data check with an explicit run_dir leaves nothing
    Case("data-fails-run-dir-set", "nothing-created", (), ("dataset.path", "data.npz"),
         exp={**FILE_NPZ, "run_dir": "myrun", "storage": "sqlite:///myrun/s.db"}, files=raw_bytes("data.npz", b"garbage")),
    # ---- one case per schema field of the experiment file
    Case("unknown-top-field", "field", (), ("trainig", "unknown field"), exp={"trainig": {"epochs": 3}}),
    Case("name-missing", "field", (), ("name", "Field required"), exp={"name": DROP}),
    Case("dataset-not-mapping", "field", ("dataset",), ("dataset", "(got 5)"), exp={"dataset": 5}),
    Case("dataset-name", "field", ("dataset.name",), ("dataset.name", "'mnist'", "'digits'"), exp={"dataset": {"name": "mnist"}}),
    Case("dataset-path-without-file", "field", (), ("dataset.path", "dataset.name: file"), exp={"dataset": {"name": "digits", "path": "x.npz"}}),
    Case("dataset-file-without-path", "field", (), ("dataset.name 'file' needs dataset.path",), exp={"dataset": {"name": "file"}}),
    Case("dataset-csv-without-target", "field", (), ("dataset.target", ".csv"), exp={"dataset": {"name": "file", "path": "data.csv"}}),
    # before, silently ignored
    Case("dataset-data-home-not-jet", "field", (), ("dataset.data_home is the download cache of dataset.name: jet_hlf",
                                                   "'digits'", "remove dataset.data_home"),
         exp={"dataset": {"name": "digits", "data_home": "cache"}}),
    Case("dataset-data-home-file", "field", ("dataset.data_home",), ("dataset.data_home", "cache.txt", "is a file"),
         exp={"dataset": {"name": "jet_hlf", "data_home": "cache.txt"}}, files=text("cache.txt", "x")),
    Case("dataset-max-samples", "field", ("dataset.max_samples",), ("dataset.max_samples", "(got 0)"), exp={"dataset": {"max_samples": 0}}),
    # before, 0.45 + 0.45 was accepted and trained on 10% of the rows
    Case("dataset-held-out-fractions", "silent", (), ("dataset.validation_fraction (0.45) + test_fraction (0.45) = 0.9",
                                                      "leaves 10% of the rows for training", "at most 0.8"),
         exp={"dataset": {"validation_fraction": 0.45, "test_fraction": 0.45}}),
    Case("dataset-validation-fraction", "field", ("dataset.validation_fraction",), ("dataset.validation_fraction", "(got 0.7)"),
         exp={"dataset": {"validation_fraction": 0.7}}),
    Case("dataset-test-fraction", "field", ("dataset.test_fraction",), ("dataset.test_fraction", "(got -0.1)"), exp={"dataset": {"test_fraction": -0.1}}),
    Case("dataset-split-seed", "field", ("dataset.split_seed",), ("dataset.split_seed", "'abc'"), exp={"dataset": {"split_seed": "abc"}}),
    Case("model-not-mapping", "field", ("model",), ("model", "'mlp'"), exp={"model": "mlp"}),
    Case("model-type", "field", ("model.type",), ("model.type", "'cnn'"), exp={"model": {"type": "cnn"}}),
    Case("model-hidden", "field", ("model.hidden",), ("model.hidden", "[8, 0]"), exp={"model": {"hidden": [8, 0]}}),
    Case("model-hidden-empty", "field", (), ("model.hidden", "[]"), exp={"model": {"hidden": []}}),
    Case("model-activation", "field", ("model.activation",), ("model.activation", "'tanh'"), exp={"model": {"activation": "tanh"}}),
    Case("training-not-mapping", "field", ("training",), ("training", "[1, 2]"), exp={"training": [1, 2]}),
    Case("training-epochs", "field", ("training.epochs",), ("training.epochs", "(got -1)"), exp={"training": {"epochs": -1}}),
    Case("training-batch-size", "field", ("training.batch_size",), ("training.batch_size", "(got 1.5)"), exp={"training": {"batch_size": 1.5}}),
    Case("training-learning-rate", "field", ("training.learning_rate",), ("training.learning_rate", "(got 0)"), exp={"training": {"learning_rate": 0}}),
    Case("training-calibration-samples", "field", ("training.calibration_samples",), ("training.calibration_samples", "'many'"),
         exp={"training": {"calibration_samples": "many"}}),
    Case("training-harvest-checkpoints", "field", ("training.harvest_checkpoints",), ("training.harvest_checkpoints", "(got -2)"),
         exp={"training": {"harvest_checkpoints": -2}}),
    Case("search-space-missing", "field", (), ("search_space", "nospace.yaml", "does not exist"), exp={"search_space": "nospace.yaml"}),
    Case("search-space-absent", "field", (), ("search_space", "Field required"), exp={"search_space": DROP}),
    Case("objectives-empty", "field", ("objectives",), ("objectives", "(got [])"), exp={"objectives": []}),
    Case("objectives-repeated", "field", (), ("objectives", "each metric may appear once"),
         exp={"objectives": [{"metric": "lut", "direction": "minimize"}, {"metric": "lut", "direction": "minimize"}]}),
    Case("objective-metric", "field", ("objectives.metric",), ("objectives.0.metric", "'luts'", "unknown metric"),
         exp={"objectives": [{"metric": "luts", "direction": "minimize"}]}),
    Case("objective-direction", "field", ("objectives.direction",), ("objectives.0.direction", "'min'"),
         exp={"objectives": [{"metric": "lut", "direction": "min"}]}),
    Case("objective-direction-reversed", "field", (), ("objectives.1", "direction 'maximize' for 'lut'", "use direction: minimize"),
         exp={"objectives": [{"metric": "csim_accuracy", "direction": "maximize"}, {"metric": "lut", "direction": "maximize"}]}),
    Case("objective-accuracy-minimized", "field", (), ("objectives.0", "least accurate", "use direction: maximize"),
         exp={"objectives": [{"metric": "csim_accuracy", "direction": "minimize"}, {"metric": "lut", "direction": "minimize"}]}),
    Case("sampler-not-mapping", "field", ("sampler",), ("sampler", "'nsga2'"), exp={"sampler": "nsga2"}),
    Case("sampler-name", "field", ("sampler.name",), ("sampler.name", "'cmaes'"), exp={"sampler": {"name": "cmaes"}}),
    Case("enqueue-trials-not-a-list", "field", ("enqueue_trials",), ("enqueue_trials", "valid list"),
         exp={"enqueue_trials": {"strategy": "Latency"}}),
    # probe 37: a trial record's null and list fields got pydantic's four lines each, one per allowed type
    Case("enqueue-trials-null-value", "field", (), ("enqueue_trials.0.beta_end: null; leave the parameter out of the point",),
         exp={"enqueue_trials": [{"strategy": "Latency", "beta_end": None}]}),
    Case("enqueue-trials-list-value", "field", (), ("enqueue_trials.0.layer_reuse_factors: a list", "leave it out"),
         exp={"enqueue_trials": [{"strategy": "Latency", "layer_reuse_factors": [1, 1, 1]}]}),
    # before, accepted and trained as a linear ramp while the trial's parameters said log
    Case("enqueue-trials-log-ramp-from-zero", "field", (),
         ("enqueue_trials[0].beta_schedule: 'log' is never used here, because beta is 0", "beta_schedule: linear"),
         exp={"enqueue_trials": [{"strategy": "Latency", "beta": 0.0, "beta_schedule": "log"}]},
         space=space({"beta": {"include_zero": True}, "beta_end": {"type": "float", "low": 1e-5, "high": 1e-4, "log": True},
                      "beta_schedule": {"type": "categorical", "choices": ["log", "linear"]}})),
    # probe 21: accepted, and the value was used or overridden depending on the strategy the sampler drew
    Case("enqueue-trials-value-a-rule-may-pin", "field", (),
         ("enqueue_trials[0].beta: 5e-06 may never be used: rule 'tip' (when: {strategy: Resource}) decides it from "
          "strategy, which the point leaves out", "give strategy in the point too, or drop beta"),
         exp={"enqueue_trials": [{"beta": 5e-6}]}),
    Case("enqueue-trials-conditional-value-undecided", "field", (),
         ("enqueue_trials[0].reuse_factor: 4 may never be used: its own when: {strategy: Resource} decides it from "
          "strategy", "give strategy in the point too, or drop reuse_factor"),
         exp={"enqueue_trials": [{"reuse_factor": 4}]}),
    Case("enqueue-trials-float-off-its-grid", "field", (),
         ("enqueue_trials[0].beta: 3e-06 is not on the grid 1e-06, 3.25e-06, ... (step 2.25e-06)", "e.g. 3.25e-06"),
         exp={"enqueue_trials": [{"strategy": "Latency", "beta": 3e-6}]},
         space=space({"beta": {"type": "float", "low": 1e-6, "high": 1e-5, "log": False, "step": 2.25e-6}})),
    Case("enqueue-trials-outside-the-space", "field", ("enqueue_trials",),
         ("ConfigError", "enqueue_trials[0].weight_bits: 9 is outside the range [3, 5]", "widen the parameter"),
         exp={"enqueue_trials": [{"strategy": "Latency", "weight_bits": 9}]}),
    Case("sampler-population-size", "field", ("sampler.population_size",), ("sampler.population_size", "(got 1)"),
         exp={"sampler": {"name": "nsga2", "population_size": 1}}),
    Case("sampler-n-startup-trials", "field", ("sampler.n_startup_trials",), ("sampler.n_startup_trials", "(got 0)"),
         exp={"sampler": {"name": "tpe", "n_startup_trials": 0}}),
    Case("sampler-n-startup-trials-not-tpe", "field", (), ("sampler", "n_startup_trials is TPE's", "'random'",
                                                           "set sampler.name: tpe"),
         exp={"sampler": {"name": "random", "n_startup_trials": 3}}),
    Case("n-trials", "field", (), ("n_trials", "(got 0)"), exp={"n_trials": 0}),
    Case("seed-float", "field", (), ("seed", "(got 1.5)"), exp={"seed": 1.5}),
    # before: `check` passed and `run` died in NSGAIISampler(seed=-1) after creating the run dir
    Case("seed-negative", "field", (), ("seed", "greater than or equal to 0", "(got -1)"), exp={"seed": -1}),
    Case("seed-too-large", "field", (), ("seed", "less than or equal to 4294967295", "(got 4294967296)"), exp={"seed": 2**32}),
    Case("dataset-split-seed-negative", "field", (), ("dataset.split_seed", "(got -3)"), exp={"dataset": {"split_seed": -3}}),
    # before: population_size was silently ignored by TPE and random sampling
    Case("sampler-population-size-not-nsga2", "field", (), ("sampler", "population_size is NSGA-II's", "'tpe'",
                                                            "set sampler.name: nsga2"),
         exp={"sampler": {"name": "tpe", "population_size": 6}}),
    Case("trial-timeout", "field", ("trial_timeout_s",), ("trial_timeout_s", "(got -5)"), exp={"trial_timeout_s": -5}),
    Case("trial-timeout-inf", "field", (), ("trial_timeout_s", "finite"), exp={"trial_timeout_s": float("inf")}),
    Case("ray-not-mapping", "field", ("ray",), ("ray", "'local'"), exp={"ray": "local"}),
    Case("ray-num-cpus", "field", ("ray.num_cpus",), ("ray.num_cpus", "(got 0)"), exp={"ray": {"num_cpus": 0}}),
    Case("ray-cpus-per-trial", "field", ("ray.cpus_per_trial",), ("ray.cpus_per_trial", "(got -1)"), exp={"ray": {"cpus_per_trial": -1}}),
    Case("objective-not-measured", "check", (), ("objectives: 'latency_cycles' is not measured for Strategy Latency and "
                                                "Resource (the search space offers them)", "Latency: 'ebops'", "Resource: 'ebops'",
                                                "every such trial would fail", "vivado and vitis measure it for Latency and Resource"),
         exp={"objectives": [{"metric": "csim_accuracy", "direction": "maximize"}, {"metric": "latency_cycles", "direction": "minimize"}]}),
    # probe 19: before, "vivado or vitis" alone, though auto, da4ml and yosys measure distributed_arithmetic designs' latency
    Case("objective-not-measured-da", "check", (), ("objectives: 'latency_cycles' is not measured for Strategy Latency and "
                                                   "distributed_arithmetic", "vivado and vitis measure it for Latency and "
                                                   "distributed_arithmetic; auto, da4ml and yosys measure it for distributed_arithmetic"),
         exp={"resources": {"backend": "ebops"},
              "objectives": [{"metric": "csim_accuracy", "direction": "maximize"}, {"metric": "latency_cycles", "direction": "minimize"}]},
         space={"parameters": {"strategy": {"type": "categorical", "choices": ["Latency", "distributed_arithmetic"]}}}),
    Case("constraint-never-measured", "check", (), ("constraints: 'latency_cycles' is not measured for Strategy Latency",
                                                   "every such trial is infeasible", "could have no front", "vivado and vitis measure it"),
         exp={"constraints": [{"metric": "latency_cycles", "max": 100}]}),
    # before, both passed `dse check`: the study then ran with a front nothing could re-measure
    Case("synthesize-front-measures-no-strategy", "check", (), ("resources.synthesize_front: 'yosys' measures distributed_arithmetic",
                                                                "offers Strategy Latency, Resource", "would measure no front member"),
         exp={"resources": {"synthesize_front": "yosys"}}),
    Case("synthesize-front-tool-missing", "check", (), ("ToolNotFoundError", "resources.synthesize_front 'vitis'", "'vitis-run'"),
         exp={"resources": {"synthesize_front": "vitis"}}),
    Case("ray-cpus-per-trial-beyond-local", "check", (), ("ray.cpus_per_trial: 2 CPUs per trial, but the local Ray has 1",
                                                         "no trial could ever start", "at most 1"),
         exp={"ray": {"num_cpus": 1, "cpus_per_trial": 2}}),
    # before, both passed `dse check`; `dse run` refused them once Ray was up, after creating the study and its MLflow run
    Case("ray-gpus-per-trial-beyond-local", "check", (), ("ray.gpus_per_trial: 1 GPUs per trial, but the local Ray has 0",
                                                         "no trial could ever start", "0 trains on the CPUs"),
         exp={"ray": {"num_cpus": 1, "gpus_per_trial": 1}}),
    Case("ray-memory-per-trial-beyond-local", "check", (), ("ray.memory_per_trial: 999,999,999,999,999 bytes per trial",
                                                           "this machine's memory in all", "no trial could ever start"),
         exp={"ray": {"num_cpus": 1, "memory_per_trial": 999_999_999_999_999}}),
    Case("ray-max-concurrent", "field", ("ray.max_concurrent_trials",), ("ray.max_concurrent_trials", "(got 0)"), exp={"ray": {"max_concurrent_trials": 0}}),
    Case("ray-max-retries", "field", ("ray.max_retries",), ("ray.max_retries", "(got -1)"), exp={"ray": {"max_retries": -1}}),
    Case("ray-gpus-per-trial", "field", ("ray.gpus_per_trial",), ("ray.gpus_per_trial", "(got -1)"), exp={"ray": {"gpus_per_trial": -1}}),
    Case("ray-memory-per-trial", "field", ("ray.memory_per_trial",), ("ray.memory_per_trial", "(got 0)"), exp={"ray": {"memory_per_trial": 0}}),
    Case("ray-reuse-workers", "field", ("ray.reuse_workers",), ("ray.reuse_workers", "'sometimes'"), exp={"ray": {"reuse_workers": "sometimes"}}),
    Case("hls4ml-csim", "field", ("hls4ml.csim",), ("hls4ml.csim", "'some'"), exp={"hls4ml": {"csim": "some"}}),
    Case("heartbeat-interval", "field", ("heartbeat_interval_s",), ("heartbeat_interval_s", "(got 0)"), exp={"heartbeat_interval_s": 0}),
    # before, accepted: a driver elsewhere would take a live driver's trials for lost between two heartbeats
    # before, a traceback (OSError: File name too long) from `dse check` and `dse run`
    Case("run-dir-name-too-long", "field", (), ("run_dir:", "cannot be used (File name too long)", "pick another path"),
         exp={"run_dir": "a" * 300 + "/x"}),
    # before, `dse check` passed it as root (os.access says yes for /proc there) and only `dse run` refused it
    Case("run-dir-in-proc", "address", (), ("run_dir:", "/proc", "pick another path"), exp={"run_dir": "/proc/dse-runs/x"}),
    Case("heartbeat-grace-below-interval", "field", (), ("heartbeat_grace_s (5 s) must exceed heartbeat_interval_s (10 s)",),
         exp={"heartbeat_grace_s": 5}),
    Case("heartbeat-grace", "field", ("heartbeat_grace_s",), ("heartbeat_grace_s", "(got -1)"), exp={"heartbeat_grace_s": -1}),
    Case("storage-retry", "field", ("storage_retry_s",), ("storage_retry_s", "(got -3)"), exp={"storage_retry_s": -3}),
    Case("constraints-not-list", "field", ("constraints",), ("constraints", "list", "lut"), exp={"constraints": "lut < 5000"}),
    Case("constraint-metric", "field", ("constraints.metric",), ("constraints.0.metric", "unknown metric 'luts'", "did you mean 'lut'?"),
         exp={"constraints": [{"metric": "luts", "max": 5000}]}),
    # probe 19: each gave the list of metrics alone
    Case("constraint-metric-upper-case", "field", (), ("unknown metric 'LUT'", "metric names are lower case: 'lut'"),
         exp={"constraints": [{"metric": "LUT", "max": 5000}]}),
    Case("constraint-metric-ebops-source", "field", (), ("unknown metric 'ebops_lut'", "resources.backend: ebops to take ebops's figures)"),
         exp={"constraints": [{"metric": "ebops_lut", "max": 5000}]}),
    Case("constraint-metric-prefixed", "field", (), ("unknown metric 'total_ff'", "did you mean 'ff'?"),
         exp={"constraints": [{"metric": "total_ff", "max": 5000}]}),
    Case("constraint-key-singular", "field", (), ("constraint: unknown field", "did you mean 'constraints'?"),
         exp={"constraint": [{"metric": "lut", "max": 5000}]}),
    # a misspelt nested field is told its likely name too (probe 42: only top-level fields were)
    Case("nested-key-misspelt", "field", (), ("training.epoch: unknown field", "did you mean 'epochs'?"),
         exp={"training": {"epoch": 3, "batch_size": 128, "learning_rate": 0.01}}),
    Case("list-item-key-misspelt", "field", (), ("objectives.0.dirction: unknown field", "did you mean 'direction'?"),
         exp={"objectives": [{"metric": "lut", "dirction": "minimize"}]}),
    Case("objective-with-a-budget", "field", (), ("objectives.1.max: unknown field", "a budget belongs in constraints"),
         exp={"objectives": [{"metric": "csim_accuracy", "direction": "maximize"},
                             {"metric": "lut", "direction": "minimize", "max": 3000}]}),
    Case("constraint-metric-latency-ns", "field", (), ("unknown metric 'latency_ns'", "'latency_cycles', in clock cycles",
                                                      "cycles x hls4ml.clock_period"),
         exp={"constraints": [{"metric": "latency_ns", "max": 50}]}),
    Case("objective-metric-with-source", "field", (), ("unknown metric 'yosys_lut'", "named without its source: 'lut'",
                                                      "resources.backend: yosys", "dse synthesize --backend yosys"),
         exp={"objectives": [{"metric": "csim_accuracy", "direction": "maximize"}, {"metric": "yosys_lut", "direction": "minimize"}]}),
    # probe 19: accepted before; the second constraint on lut replaced the first, a LUT budget of 0.02 admitted none
    Case("constraint-twice", "field", (), ("constraints", "'lut' constrained more than once", "{metric: lut, min: 100, max: 3000}"),
         exp={"constraints": [{"metric": "lut", "max": 3000}, {"metric": "dsp", "max": 0}, {"metric": "lut", "max": 2000}]}),
    Case("constraint-lut-fraction", "field", (), ("constraints.0", "max 0.02 is between 0 and 1", "lut counts LUTs",
                                                 "write the count"),
         exp={"constraints": [{"metric": "lut", "max": 0.02}]}),
    Case("constraint-latency-fraction", "field", (), ("constraints.0", "max 0.5 is between 0 and 1", "counts clock cycles",
                                                     "ns / hls4ml.clock_period"),
         exp={"constraints": [{"metric": "latency_cycles", "max": 0.5}]}),
    Case("constraint-max-inf", "field", ("constraints.max",), ("constraints.0.max", "finite"),
         exp={"constraints": [{"metric": "lut", "max": float("inf")}]}),
    Case("constraint-min-above-max", "field", ("constraints.min",), ("constraints.0", "min (10.0) exceeds max (5.0)"),
         exp={"constraints": [{"metric": "dsp", "min": 10, "max": 5}]}),
    Case("constraint-no-bound", "field", (), ("constraints.0", "needs 'max' and/or 'min'"), exp={"constraints": [{"metric": "dsp"}]}),
    # before, accepted: every trial of the study ended infeasible (an accuracy written in percent, a negative budget)
    Case("constraint-accuracy-in-percent", "field", (), ("constraints.0", "min 90 is above 1", "fraction of test samples",
                                                        "write min: 0.9"),
         exp={"constraints": [{"metric": "csim_accuracy", "min": 90}]}),
    # probe 33: a validation accuracy was called "a fraction of test samples"
    Case("constraint-val-accuracy-in-percent", "field", (), ("constraints.0", "fraction of validation samples"),
         exp={"constraints": [{"metric": "csim_val_accuracy", "min": 90}]}),
    Case("constraint-negative-max", "field", (), ("constraints.1", "max -1 is below 0", "never negative", "max: 0"),
         exp={"constraints": [{"metric": "lut", "max": 5000}, {"metric": "dsp", "max": -1}]}),
    Case("mlflow-not-mapping", "field", ("mlflow",), ("mlflow", "(got 3)"), exp={"mlflow": 3}),
    Case("mlflow-experiment-name", "field", ("mlflow.experiment_name",), ("mlflow.experiment_name", "(got '')"), exp={"mlflow": {"experiment_name": ""}}),
    Case("hls4ml-not-mapping", "field", ("hls4ml",), ("hls4ml", "'Vitis'"), exp={"hls4ml": "Vitis"}),
    Case("hls4ml-backend", "field", ("hls4ml.backend",), ("hls4ml.backend", "'Quartus'"), exp={"hls4ml": {"backend": "Quartus"}}),
    Case("hls4ml-clock-period", "field", (), ("hls4ml.clock_period", "(got 0)"), exp={"hls4ml": {"clock_period": 0}}),
    Case("hls4ml-io-type", "field", (), ("hls4ml.io_type", "'io_serial'"), exp={"hls4ml": {"io_type": "io_serial"}}),
    Case("hls4ml-fifo", "field", ("hls4ml.fifo_depth_optimization",), ("hls4ml.fifo_depth_optimization", "'maybe'"),
         exp={"hls4ml": {"fifo_depth_optimization": "maybe"}}),
    Case("hls4ml-fifo-parallel", "field", (), ("hls4ml.fifo_depth_optimization", "io_stream"), exp={"hls4ml": {"fifo_depth_optimization": True}}),
    Case("resources-not-mapping", "field", ("resources",), ("resources", "'ebops'"), exp={"resources": "ebops"}),
    Case("resources-backend", "field", ("resources.backend",), ("resources.backend", "'quartus'"), exp={"resources": {"backend": "quartus"}}),
    Case("resources-backend-modules", "field", ("resources.backend_modules",),
         ("resources.backend_modules: cannot import backend module 'no_such_module_of_backends' (ModuleNotFoundError", "PYTHONPATH"),
         exp={"resources": {"backend_modules": ["no_such_module_of_backends"]}}),
    Case("resources-backend-modules-not-list", "field", (), ("resources.backend_modules", "valid list"),
         exp={"resources": {"backend_modules": "mybackends"}}),
    Case("resources-dsp-threshold", "field", ("resources.dsp_threshold_bits",), ("resources.dsp_threshold_bits", "(got 0)"),
         exp={"resources": {"dsp_threshold_bits": 0}}),
    Case("resources-da4ml-cutoff", "field", ("resources.da4ml_latency_cutoff",), ("resources.da4ml_latency_cutoff", "(got -1)"),
         exp={"resources": {"da4ml_latency_cutoff": -1}}),
    Case("resources-synthesis-timeout", "field", ("resources.synthesis_timeout_s",), ("resources.synthesis_timeout_s", "(got 0)"),
         exp={"resources": {"synthesis_timeout_s": 0}}),
    Case("resources-synthesize-front", "field", ("resources.synthesize_front",), ("resources.synthesize_front", "'ebops'"),
         exp={"resources": {"synthesize_front": "ebops"}}),
    Case("resources-vsynth", "field", ("resources.vsynth",), ("resources.vsynth", "'sometimes'"), exp={"resources": {"vsynth": "sometimes"}}),
    Case("experiment-empty", "field", (), ("experiment file", "is empty"), raw=""),
    Case("experiment-not-mapping", "field", (), ("experiment file", "must hold a mapping", "list"), raw="- name: tiny\n"),
    Case("experiment-bad-yaml", "field", (), ("experiment file", "not valid YAML"), raw="name: tiny\ntraining: {epochs: 3\n"),
    Case("experiment-missing", "field", (), ("experiment file", "nothere.yaml", "does not exist"), arg="nothere.yaml"),
    # ---- one case per schema field of the search space file
    Case("space-parameters-empty", "field", ("space.parameters",), ("parameters", "(got {})"), space={"parameters": {}}),
    Case("space-unknown-parameter", "field", (), ("parameters.bitz", "unknown parameter"), space=space({"bitz": {"type": "int", "low": 1, "high": 2}})),
    Case("space-unknown-key", "field", (), ("parameters.beta.float.lo", "unknown field"), space=space({"beta": {"type": "float", "lo": 1e-6, "high": 1e-5}})),
    Case("space-type", "field", ("space.float.type",), ("parameters.beta", "'uniform'"), space=space({"beta": {"type": "uniform", "low": 0, "high": 1}})),
    Case("space-low-gt-high", "field", (), ("parameters.weight_bits", "low (5) must not exceed high (3)"),
         space=space({"weight_bits": {"type": "int", "low": 5, "high": 3}})),
    Case("space-log-zero", "field", ("space.float.log",), ("parameters.beta", "low > 0", "low=0.0"),
         space=space({"beta": {"type": "float", "low": 0.0, "high": 1e-5, "log": True}})),
    Case("space-float-step", "field", ("space.float.step",), ("parameters.beta.float.step", "(got 0)"),
         space=space({"beta": {"type": "float", "low": 1e-6, "high": 1e-5, "step": 0}})),
    Case("space-include-zero", "field", ("space.float.include_zero",), ("parameters.beta.float.include_zero", "'perhaps'"),
         space=space({"beta": {"type": "float", "low": 1e-6, "high": 1e-5, "include_zero": "perhaps"}})),
    Case("space-int-low-bool", "field", ("space.int.low",), ("parameters.weight_bits.int.low", "boolean true"),
         space=space({"weight_bits": {"type": "int", "low": True, "high": 5}})),
    Case("space-int-high", "field", ("space.int.high",), ("parameters.weight_bits", "value 40 is not allowed"),
         space=space({"weight_bits": {"type": "int", "low": 3, "high": 40}})),
    # before, accepted: Optuna never sampled high (only 3 with step 10)
    Case("space-int-step-off-grid", "field", (), ("parameters.weight_bits", "step (10) does not divide high - low (8 - 3)",
                                                   "never reaches high (8)"),
         space=space({"weight_bits": {"type": "int", "low": 3, "high": 8, "step": 10}})),
    Case("space-float-step-off-grid", "field", (), ("parameters.beta", "step (3e-06) does not divide", "set high to 7e-06"),
         space=space({"beta": {"log": False, "low": 1e-6, "high": 8e-6, "step": 3e-6}})),
    Case("space-int-step", "field", ("space.int.step",), ("parameters.weight_bits.int.step", "(got 0)"),
         space=space({"weight_bits": {"type": "int", "low": 3, "high": 5, "step": 0}})),
    Case("space-int-log", "field", ("space.int.log",), ("parameters.weight_bits", "step (2) cannot be combined with log"),
         space=space({"weight_bits": {"type": "int", "low": 3, "high": 7, "step": 2, "log": True}})),
    # before, both passed `dse check`; the float one then crashed `dse run` with a traceback on every run
    Case("space-float-for-whole-numbers", "silent", (), ("parameters.weight_bits", "type float", "takes whole numbers", "type: int"),
         space=space({"weight_bits": {"type": "float", "low": 3, "high": 5}})),
    Case("space-choices-repeated-by-value", "silent", (), ("parameters.reuse_factor", "repeat", "[2, 2.0]"),
         space=space({"reuse_factor": {"type": "categorical", "choices": [2, 2.0], "when": {"strategy": "Resource"}, "default": 1}})),
    Case("space-choices-empty", "field", (), ("parameters.strategy.categorical.choices", "(got [])"),
         space=space({"strategy": {"type": "categorical", "choices": []}})),
    Case("space-choice-value", "field", (), ("parameters.strategy", "'Fast'", "not allowed"),
         space=space({"strategy": {"type": "categorical", "choices": ["Latency", "Fast"]}})),
    Case("space-when", "field", ("space.float.when",), ("parameters.strategy.when", "'reuse_factor'"),
         space={"parameters": {"strategy": {"type": "categorical", "choices": ["Latency"], "when": {"reuse_factor": 1}, "default": "Latency"},
                               "reuse_factor": {"type": "categorical", "choices": [1]}}}),
    Case("space-when-value", "field", (), ("parameters.reuse_factor.when.strategy", "'Resourc' is never a value of 'strategy'"),
         space=space({"reuse_factor": {"type": "categorical", "choices": [2, 4], "when": {"strategy": "Resourc"}, "default": 1}})),
    Case("space-default-missing", "field", (), ("parameters.reuse_factor", "needs a 'default'"),
         space=space({"reuse_factor": {"type": "categorical", "choices": [2, 4], "when": {"strategy": "Resource"}, "default": DROP}})),
    Case("space-default", "field", ("space.float.default",), ("parameters.reuse_factor", "value 0 is not allowed"),
         space=space({"reuse_factor": {"type": "categorical", "choices": [2, 4], "when": {"strategy": "Resource"}, "default": 0}})),
    Case("space-rules-not-list", "field", ("space.rules",), ("rules", "'none'"), space=space(rules="none")),
    Case("space-rule-name", "field", ("space.rule.name",), ("rules.0.name", "[1]"), space=space(rules=[{"name": [1], "when": {"strategy": "Resource"}, "set": {"beta": 0.0}}])),
    Case("space-rule-when", "field", ("space.rule.when",), ("rules[0].when", "'strat'"), space=space(rules=[{"when": {"strat": "Resource"}, "set": {"beta": 0.0}}])),
    Case("space-rule-set", "field", ("space.rule.set",), ("rules[0].set.beta", "-1.0"), space=space(rules=[{"when": {"strategy": "Resource"}, "set": {"beta": -1.0}}])),
    Case("space-rule-set-unknown", "field", (), ("rules[0].set", "'gamma'"), space=space(rules=[{"when": {"strategy": "Resource"}, "set": {"gamma": 1}}])),
    # the usual miswritings, named with the fix (before: pydantic's "Input should be a valid dictionary or object to extract
    # fields from", "Unable to extract tag using discriminator 'type'", or 8 union lines for a list as a choice)
    Case("space-bare-list", "field", (), ("parameters.strategy: a list alone is not a parameter",
                                          "strategy: {type: categorical, choices: [Latency, Resource]}"),
         raw_space="parameters:\n  strategy: [Latency, Resource]\n"),
    Case("space-bare-value", "field", (), ("parameters.strategy: 'Latency' alone is not a parameter", "leave it out of the space"),
         raw_space="parameters:\n  strategy: Latency\n"),
    Case("space-no-type", "field", (), ("parameters.weight_bits: no 'type'", "likely type: int"),
         raw_space="parameters:\n  weight_bits: {low: 3, high: 6}\n"),
    Case("space-network-as-parameter", "field", (), ("parameters.hidden: unknown parameter", "model.hidden in the experiment file"),
         raw_space="parameters:\n  hidden: {type: categorical, choices: [[8], [16, 8]]}\n"),
    Case("space-list-as-choice", "field", (), ("parameters.weight_granularity.choices: [per-weight] is not a single value",),
         raw_space="parameters:\n  weight_granularity: {type: categorical, choices: [[per-weight], per-layer]}\n"),
    # before, accepted: the first rule always won where the second held, so the second's pin never applied
    Case("space-rules-contradict", "field", (), ("rules[1].set.weight_bits", "rules[0] (when {strategy: [Resource, Latency]}) holds wherever",
                                                 "weight_bits: 5 would never apply"),
         raw_space="parameters:\n  strategy: {type: categorical, choices: [Latency, Resource]}\n  weight_bits: {type: int, low: 3, high: 6}\n"
                   "rules:\n  - {when: {strategy: [Resource, Latency]}, set: {weight_bits: 4}}\n  - {when: {strategy: Resource}, set: {weight_bits: 5}}\n"),
    # before, accepted: without beta_end every trial keeps beta constant, whatever schedule it drew
    Case("space-schedule-without-beta-end", "field", (), ("parameters.beta_schedule", "no beta_end", "add beta_end"),
         raw_space="parameters:\n  beta: {type: float, low: 1.0e-6, high: 1.0e-4, log: true}\n"
                   "  beta_schedule: {type: categorical, choices: [linear, log]}\n"),
    # a file of the other kind (before: only its fields listed as unknown)
    Case("space-file-given-as-experiment", "field", (), ("looks like a search space file", "names the search space in `search_space:`"),
         arg="space.yaml"),
    Case("experiment-file-given-as-space", "field", (), ("looks like an experiment file", "search_spaces/default.yaml"),
         exp={"search_space": "experiment.yaml"}),
    Case("space-empty-file", "field", (), ("search space file", "is empty"), raw_space=""),
    Case("space-bad-yaml", "field", (), ("search space file", "not valid YAML"), raw_space="parameters: [\n"),
]


def _write(case: Case, d: Path) -> str:
    """Write the case's files into ``d``; return the command's argument."""
    if case.raw_space is not None:
        (d / "space.yaml").write_text(case.raw_space)
    else:
        (d / "space.yaml").write_text(yaml.safe_dump(case.space or TINY_SPACE, sort_keys=False))
    if case.raw is not None:
        (d / "experiment.yaml").write_text(case.raw)
    else:
        (d / "experiment.yaml").write_text(yaml.safe_dump(_merge(BASE, case.exp or {}), sort_keys=False))
    if case.files:
        case.files(d)
    return case.arg or "experiment.yaml"


def _snapshot(d: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``d`` with its size and modification time."""
    return {str(p.relative_to(d)): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in d.rglob("*")}


def _invoke(args: list[str]) -> tuple[Any, str, float]:
    t0 = time.monotonic()
    result = runner.invoke(app, args)
    return result, " ".join(result.output.split()), time.monotonic() - t0


@pytest.mark.parametrize("command", ["check", "run"])
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_before_anything_is_created(case: Case, command: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    arg = _write(case, tmp_path)
    before = _snapshot(tmp_path)
    result, output, seconds = _invoke([command, arg])
    assert result.exit_code == 2, f"exit {result.exit_code}: {result.output}\n{result.exception!r}"
    assert "Traceback" not in result.output
    assert output.startswith("error: "), output
    for want in case.expect:
        assert want in output, f"{want!r} not in: {output}"
    assert _snapshot(tmp_path) == before, "something was created or changed on disk"
    assert not (tmp_path / "runs").exists()
    assert seconds < 20, f"took {seconds:.1f} s"


def _schema_fields() -> set[str]:
    """Every field of the experiment file (dotted, sub-models included) and of the search space schema."""
    from pydantic import BaseModel

    from dse.config import ExperimentConfig
    from dse.config._search_space import CategoricalParam, FloatParam, IntParam, Rule, SearchSpace

    def walk(model: type[BaseModel], prefix: str) -> set[str]:
        out = set()
        for name, info in model.model_fields.items():
            out.add(prefix + name)
            ann = info.annotation
            for sub in (ann, *getattr(ann, "__args__", ())):
                if isinstance(sub, type) and issubclass(sub, BaseModel):
                    out |= walk(sub, f"{prefix}{name}.")
        return out

    fields = walk(ExperimentConfig, "")
    fields |= {f"space.{n}" for n in SearchSpace.model_fields}
    fields |= {f"space.float.{n}" for n in FloatParam.model_fields}
    fields |= {f"space.int.{n}" for n in IntParam.model_fields if n not in FloatParam.model_fields or n in ("low", "high", "step", "log")}
    fields |= {f"space.categorical.{n}" for n in CategoricalParam.model_fields if n == "choices"}
    fields |= {f"space.rule.{n}" for n in Rule.model_fields}
    return fields


def test_every_schema_field_has_a_bad_input_case() -> None:
    covered = {f for c in CASES for f in c.fields}
    missing = sorted(_schema_fields() - covered)
    assert not missing, f"add a bad-input case to CASES for: {missing}"


def test_every_class_of_mistake_has_cases() -> None:
    kinds = {c.kind for c in CASES}
    assert {"directory", "data", "address", "silent", "check", "markup", "nothing-created", "field"} <= kinds


def test_good_experiment_checks_and_creates_nothing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    arg = _write(Case("good", "good", (), ()), tmp_path)
    before = _snapshot(tmp_path)
    result, output, _ = _invoke(["check", arg])
    assert result.exit_code == 0, result.output
    assert "experiment tiny: OK" in output and "64 features, 10 classes" in output
    assert _snapshot(tmp_path) == before


def test_a_percent_sign_that_starts_no_escape_is_a_valid_run_dir(tmp_path: Path, monkeypatch) -> None:
    """SQLAlchemy unescapes only %xx: runs/100% is read as written, so it stays accepted."""
    monkeypatch.chdir(tmp_path)
    arg = _write(Case("percent", "address", (), (), exp={"run_dir": "run100%"}), tmp_path)
    result, output, _ = _invoke(["check", arg])
    assert result.exit_code == 0, output


@pytest.mark.parametrize("command", ["check", "run"])
def test_a_c_simulation_without_gxx_is_refused_before_anything_is_created(command: str, tmp_path: Path, monkeypatch) -> None:
    """Before, `dse check` passed and every trial of `dse run` failed on the missing g++, each after its training."""
    monkeypatch.chdir(tmp_path)
    bare = tmp_path / "bin"
    bare.mkdir()
    monkeypatch.setenv("PATH", str(bare))
    arg = _write(Case("no-gxx", "address", (), (), exp={"hls4ml": {"csim": "front"}}), tmp_path)
    before = _snapshot(tmp_path)
    result, output, _ = _invoke([command, arg])
    assert result.exit_code == 2, result.output
    assert ("ToolNotFoundError: hls4ml.csim: front builds the C simulation of Latency and Resource trials with g++, which is "
            "not on PATH; install it (apt-get install g++) or set hls4ml.csim: none") in output, output
    assert _snapshot(tmp_path) == before
    if command == "check":  # nothing to build: distributed_arithmetic designs are emulated by da4ml under `front`
        (tmp_path / "space.yaml").write_text(yaml.safe_dump({"parameters": {"strategy": {"type": "categorical", "choices": ["distributed_arithmetic"]}}}))
        result, output, _ = _invoke([command, arg])
        assert result.exit_code == 0, output


def test_a_tracking_uri_with_a_password_is_masked_and_asked_with_it(tmp_path: Path, monkeypatch) -> None:
    """Before, `http://user:pw@host` was printed whole by `dse check`, and its health check said the host "does not
    resolve" (urllib took the user info for part of the host), also for a server that answers."""
    import http.server
    import threading

    monkeypatch.chdir(tmp_path)
    arg = _write(Case("userinfo", "address", (), (), exp={"mlflow": {"tracking_uri": f"http://mluser:MLURLPW@127.0.0.1:{PORT}"}}), tmp_path)
    result, output, _ = _invoke(["check", arg])
    assert result.exit_code == 2 and "MLURLPW" not in output, output
    assert f"no MLflow server answers at http://mluser:***@127.0.0.1:{PORT} (connection refused" in output, output
    seen = []

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers.get("Authorization"))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        from dse.study._preflight import check_tracking_uri

        check_tracking_uri(f"http://mluser:MLURLPW@127.0.0.1:{server.server_address[1]}")  # answers: no error
    finally:
        server.shutdown()
    assert seen == ["Basic bWx1c2VyOk1MVVJMUFc="]  # mluser:MLURLPW, as MLflow's client sends it


def test_an_mlflow_setting_mlflow_cannot_read_is_named(tmp_path: Path, monkeypatch) -> None:
    """Before, `MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR=0.5` (MLflow reads an integer) passed `dse check`, and `dse run`
    ended in MLflow's traceback at its first request to the server."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0.5")
    arg = _write(Case("mlflow-env", "address", (), (), exp={"mlflow": {"tracking_uri": f"http://127.0.0.1:{PORT}"}}), tmp_path)
    before = _snapshot(tmp_path)
    for command in ("check", "run"):
        result, output, _ = _invoke([command, arg])
        assert result.exit_code == 2, output
        assert ("TrackingError: environment variable MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR='0.5': MLflow reads an integer "
                "there; set it to an integer (dse's default: 1) or unset it") in output, output
        assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("command", ["status", "synthesize", "calibrate"])
def test_unknown_study_with_default_storage(command: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result, output, _ = _invoke([command, "nosuch"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "no study named 'nosuch'" in output and "studies there: none" in output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "storage, expect",
    [
        ("notaurl", ("storage: 'notaurl'", "not a database URL")),
        ("runs/x/optuna.db", ("storage: 'runs/x/optuna.db'", "is given as sqlite:////", "/runs/x/optuna.db")),
        (f"postgresql+psycopg2://u:secret@127.0.0.1:{PORT}/db", ("storage", "'psycopg2'", "not installed")),
        ("sqlite:///elsewhere/optuna.db", ("no study named 'nosuch'", "studies there: none", "does not exist")),
        ("sqlite:///junk.db", ("storage", "junk.db", "not an SQLite database")),
        # before, an empty file was given Optuna's schema (114,688 bytes) by a read-only command
        ("sqlite:///empty.db", ("no study named 'nosuch'", "studies there: none", "empty.db is empty")),
        ("elsewhere/optuna.log", ("no study named 'nosuch'", "studies there: none", "optuna.log does not exist")),
        ("junk.log", ("storage", "junk.log", "not an Optuna journal file")),
        # a port that is no number (probe 33: a raw ValueError, "invalid literal for int()", and a traceback)
        ("postgresql://u:secret@h:notaport/db", ("storage: 'postgresql://u:***@h:notaport/db'", "not a database URL")),
    ],
)
def test_status_bad_storage(storage: str, expect: tuple[str, ...], tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "junk.db").write_text("not a database\n" * 100)
    (tmp_path / "junk.log").write_text("not a journal\n" * 100)
    (tmp_path / "empty.db").touch()
    before = _snapshot(tmp_path)
    result, output, seconds = _invoke(["status", "nosuch", "--storage", storage])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for want in expect:
        assert want in output, f"{want!r} not in: {output}"
    assert "secret" not in output
    assert _snapshot(tmp_path) == before
    assert seconds < 20


def test_compare_names_the_study_argument_and_its_own_options(tmp_path: Path, monkeypatch) -> None:
    """Before, `dse compare a nosuch` advised `--experiment`, an option compare does not have, and a bad `name@`
    storage did not say which argument it came from."""
    monkeypatch.chdir(tmp_path)
    result, output, _ = _invoke(["compare", "a@sqlite:///elsewhere/a.db", "nosuch"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "study argument 'a@sqlite:///elsewhere/a.db': no study named 'a'" in output, output
    assert "--experiment" not in output and "give the study as name@STORAGE_URL, or its storage with --storage" in output
    result, output, _ = _invoke(["compare", "a@", "b@x.db"])
    assert result.exit_code == 2 and "study argument 'a@': storage: ''" in output, output
    assert list(tmp_path.iterdir()) == []


def test_status_experiment_option_is_a_directory(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exps").mkdir()
    result, output, _ = _invoke(["status", "nosuch", "--experiment", "exps"])
    assert result.exit_code == 2 and "is a directory" in output and "Traceback" not in result.output


@pytest.mark.parametrize("command", [["status"], ["status", "other"], ["report"]])
def test_an_experiment_whose_relative_run_dir_is_elsewhere_says_so(command: list[str], tmp_path: Path, monkeypatch) -> None:
    """`dse status --experiment exp/experiment.yaml` from another folder than `dse run`'s: before, "no study ... pass
    --storage (or --experiment) to look elsewhere", with --experiment given; the run directory is relative to the folder."""
    (tmp_path / "exp").mkdir()
    _write(Case("relative", "field", (), ()), tmp_path / "exp")
    (tmp_path / "other").mkdir()
    monkeypatch.chdir(tmp_path / "other")
    result, output, _ = _invoke([*command, "--experiment", "../exp/experiment.yaml"])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert (f"the run_dir (default runs/tiny) of ../exp/experiment.yaml is relative, so it is taken from the current folder "
            f"{tmp_path / 'other'}, as `dse run` takes it from the folder it runs in. If the study ran, run this command "
            "from the folder it ran in, or pass --storage; if it never ran, `dse run ../exp/experiment.yaml` first") in output, output
    assert output.startswith(f"error: StudyNotFoundError: no study named '{command[1] if len(command) > 1 else 'tiny'}'"), output
    assert list((tmp_path / "other").iterdir()) == []


def test_strict_yaml_still_reads_valid_files(tmp_path: Path, monkeypatch) -> None:
    """Merge keys may override, ``1e-3`` is a float (choices of one type), ``log: true`` is a bool."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "space.yaml").write_text(
        "parameters:\n"
        "  strategy: {type: categorical, choices: [Latency, Resource]}\n"
        "  reuse_factor: {type: categorical, choices: [2, 4], when: {strategy: Resource}, default: 1}\n"
        "  learning_rate: {type: categorical, choices: [1e-3, 0.01]}\n"
        "  beta: {type: float, low: 1e-7, high: 1.0e-5, log: true}\n"
    )
    (tmp_path / "experiment.yaml").write_text(
        "name: tiny-1.v2\n"
        "training: {epochs: 1, batch_size: 128, learning_rate: 1e-2}\n"
        "search_space: space.yaml\nmodel: {hidden: [8]}\n"
        "hls4ml: {part: xc7a35tcpg236-1, clock_period: 1e1}\n"
    )
    before = _snapshot(tmp_path)
    result, output, _ = _invoke(["check", "experiment.yaml"])
    assert result.exit_code == 0, result.output
    assert "experiment tiny-1.v2: OK" in output
    assert _snapshot(tmp_path) == before
    # an explicit key beside a merge key overrides it (not a duplicate)
    from dse.config._loading import read_yaml

    (tmp_path / "m.yaml").write_text("a: &b {x: 1, y: 2}\nb: {<<: *b, x: 3}\n")
    assert read_yaml(tmp_path / "m.yaml", what="test")["b"] == {"x": 3, "y": 2}


@pytest.mark.parametrize("trials", ["1 7", "4,,7", "3;7", "-1"])
def test_synthesize_trials_must_be_comma_separated_numbers(trials: str, tmp_path: Path, monkeypatch) -> None:
    """Before, spaces were dropped: `--trials "1 7"` re-measured trial 17 without a word, and `4,,7` passed."""
    monkeypatch.chdir(tmp_path)
    result, output, _ = _invoke(["synthesize", "nosuch", "--trials", trials])
    assert result.exit_code == 2, result.output
    flat = " ".join(output.replace("│", " ").split())  # rich's error box wraps the line
    assert "expected trial numbers separated by commas, like 3,7,9, got " + repr(trials) in flat, output
    assert list(tmp_path.iterdir()) == []
