"""Datasets: loading, validation and the standardized, stratified train/validation/test split."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dse.config import DatasetConfig
from dse.exceptions import DatasetError, DatasetUnavailableError

__all__ = ["Splits", "Preprocessing", "load_dataset", "load_raw_test_split", "validate_arrays", "split_dataset", "dataset_record"]

log = logging.getLogger(__name__)

JET_HLF_OPENML_ID = 42468


@dataclass(frozen=True)
class Preprocessing:
    """The standardization a network was trained behind, to apply to raw features before inference.

    ``x_std = float32((x - feature_mean) / feature_scale)``, computed in float64 as scikit-learn's
    ``StandardScaler.transform`` does (mean and scale fit on the train split only; a feature of
    zero variance has scale 1).

    Attributes:
        feature_mean: per-feature mean of the raw train split, shape (n_features,).
        feature_scale: per-feature standard deviation (population, ``ddof=0``), shape (n_features,).
        class_names: output index -> class name.
        feature_names: input index -> feature name (the table's columns, the dataset's names, or an
            .npz file's ``feature_names`` array); ``None`` when the data had none or the record predates them.
    """

    feature_mean: tuple[float, ...]
    feature_scale: tuple[float, ...]
    class_names: tuple[str, ...]
    feature_names: tuple[str, ...] | None = None

    def apply(self, X) -> np.ndarray:
        """Standardize raw features -> float32 (n, n_features).

        Args:
            X: array-like (n, n_features) in the training order, or a pandas DataFrame holding
                the columns ``feature_names`` (in any order; other columns are ignored).

        Raises:
            DatasetError: wrong number of features, values that are no numbers, or a DataFrame without some of
                ``feature_names``.
        """
        if hasattr(X, "columns") and self.feature_names is not None:  # a DataFrame: take its columns by name
            missing = [c for c in self.feature_names if c not in X.columns]
            if missing:
                raise DatasetError(
                    f"the table lacks {len(missing)} of the {len(self.feature_names)} features this design was trained on: "
                    f"{missing[:10]}; give a table with those columns, or an array in the order of feature_names"
                )
            X = X[list(self.feature_names)]
        try:
            X = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError) as e:  # probe 33: numpy's ValueError escaped
            raise DatasetError(f"features must be numbers, in rows of equal length ({' '.join(str(e).split())[:200]}); "
                               f"this design expects (n, {len(self.feature_mean)}) raw features") from e
        if X.ndim != 2 or X.shape[1] != len(self.feature_mean):
            raise DatasetError(
                f"features have shape {X.shape}; this design expects (n, {len(self.feature_mean)}) raw features"
            )
        return ((X - np.asarray(self.feature_mean)) / np.asarray(self.feature_scale)).astype(np.float32)

    def to_json(self) -> dict:
        """The ``preprocessing.json`` record (what ``dse export`` writes beside the design)."""
        return {
            "formula": "x_std = float32((x - feature_mean) / feature_scale), in float64",
            "feature_mean": list(self.feature_mean),
            "feature_scale": list(self.feature_scale),
            "class_names": list(self.class_names),
            **({"feature_names": list(self.feature_names)} if self.feature_names is not None else {}),
        }

    @classmethod
    def from_json(cls, data: "dict | str | os.PathLike") -> "Preprocessing":
        """The preprocessing a ``preprocessing.json`` record describes (:meth:`to_json`).

        Args:
            data: the record (a dict, as ``json.load`` gives it), or the path of the file
                (``dse export``'s ``preprocessing.json``).

        Raises:
            DatasetError: the file cannot be read or is no JSON object, or the record lacks
                ``feature_mean``, ``feature_scale`` or ``class_names``.
        """
        if isinstance(data, (str, os.PathLike)):
            try:
                data = json.loads(Path(data).read_text())
            except (OSError, ValueError) as e:
                raise DatasetError(f"cannot read the preprocessing record {str(data)!r} ({type(e).__name__}: {e}); give "
                                   "the preprocessing.json that `dse export` wrote") from e
        if not isinstance(data, dict):
            raise DatasetError(f"a preprocessing record is a JSON object (dict) or its file's path, not {type(data).__name__}")
        try:
            names = data.get("feature_names")
            return cls(tuple(map(float, data["feature_mean"])), tuple(map(float, data["feature_scale"])), tuple(map(str, data["class_names"])),
                       tuple(map(str, names)) if names is not None else None)
        except (KeyError, TypeError, ValueError) as e:
            raise DatasetError(f"preprocessing record is malformed ({type(e).__name__}: {e}); it needs feature_mean, feature_scale, class_names") from e


@dataclass(frozen=True)
class Splits:
    """Standardized splits. ``X_*`` are float32 of shape (n, n_features); ``y_*`` int32 of shape (n,).

    ``feature_mean``/``feature_scale`` (float64, shape (n_features,)) are the standardization fit
    on the raw train split; ``None`` for splits built by hand. ``feature_names``: input index ->
    name, ``None`` when the data had none.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    feature_mean: np.ndarray | None = None
    feature_scale: np.ndarray | None = None
    feature_names: tuple[str, ...] | None = None

    @property
    def preprocessing(self) -> Preprocessing | None:
        """What to apply to raw features before this model (``None`` when unknown)."""
        if self.feature_mean is None or self.feature_scale is None:
            return None
        return Preprocessing(tuple(map(float, self.feature_mean)), tuple(map(float, self.feature_scale)), self.class_names,
                             self.feature_names)

    @property
    def n_features(self) -> int:
        """Feature columns of ``X_train`` (the network's inputs)."""
        return int(self.X_train.shape[1])

    @property
    def n_classes(self) -> int:
        """Classes (``len(class_names)``; labels are ``0 .. n_classes - 1``)."""
        return len(self.class_names)

    def summary(self) -> dict[str, int]:
        """Sizes for logging: samples per split, features, classes."""
        return {
            "n_train": len(self.y_train),
            "n_val": len(self.y_val),
            "n_test": len(self.y_test),
            "n_features": self.n_features,
            "n_classes": self.n_classes,
        }


Loaded = tuple[np.ndarray, np.ndarray, "tuple[str, ...] | None"]  # features, labels, feature names


def _load_digits() -> Loaded:
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data, d.target, tuple(d.feature_names)


def _load_jet_hlf(cfg: DatasetConfig) -> Loaded:
    from sklearn.datasets import fetch_openml

    data_home = str(cfg.data_home) if cfg.data_home else None
    if cfg.data_home is not None and cfg.data_home.exists() and not cfg.data_home.is_dir():
        raise DatasetUnavailableError(
            f"dataset.data_home {cfg.data_home} is a file, but a folder for the OpenML cache is needed; "
            "give a folder (created if missing) or remove dataset.data_home"
        )
    home = Path(data_home or "~/scikit_learn_data").expanduser()
    folders_before = _folders(home)
    try:
        d = fetch_openml(data_id=JET_HLF_OPENML_ID, as_frame=False, data_home=data_home, parser="auto")
    except Exception as e:  # network errors come as URLError, OSError, HTTPError...
        _remove_new_empty_folders(home, folders_before)  # `dse check` creates nothing: not even an empty cache tree
        raise DatasetUnavailableError(
            f"dataset 'jet_hlf' (OpenML data_id {JET_HLF_OPENML_ID}) could not be fetched into "
            f"data_home={data_home or '~/scikit_learn_data'}: {e}. Either run once where OpenML is reachable "
            "(the cache under data_home is reused offline), or export the data to a file and set "
            "dataset.name: file, dataset.path: jets.parquet, dataset.target: class"
        ) from e
    return d.data, d.target, tuple(map(str, d.feature_names)) if d.feature_names is not None else None


def _folders(root: Path) -> set[Path]:
    """``root`` and every folder under it (empty when ``root`` does not exist)."""
    if not root.is_dir():
        return set()
    return {root, *(Path(d) / n for d, names, _ in os.walk(root) for n in names)}


def _remove_new_empty_folders(root: Path, before: set[Path]) -> None:
    """Remove the folders under (and including) ``root`` that are not in ``before`` and are empty, deepest first."""
    for folder in sorted(_folders(root) - before, key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):  # not empty (a file was written), or already gone
            folder.rmdir()


_SAVE_HINT = ("save plain numeric arrays, e.g. np.savez(path, X=X.astype('float32'), y=y.astype('int32')), "
              "optionally with feature_names=np.array(names)")


def _load_file(cfg: DatasetConfig) -> Loaded:
    from dse.config._loading import check_file

    path = cfg.path
    assert path is not None
    check_file(
        path, field="dataset.path", what="an .npz, .csv or .parquet file", error=DatasetUnavailableError,
        hint="give an .npz, .csv or .parquet file",
    )
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _read_npz(path)
    if suffix in (".csv", ".parquet"):
        return _read_table(path, suffix, cfg.target)
    raise DatasetError(f"dataset.path {path}: unsupported file type {suffix!r}; use .npz, .csv or .parquet")


def _read_npz(path: Path) -> Loaded:
    """Arrays ``X`` and ``y`` (and ``feature_names`` if present) of an .npz file, refusing pickled (object) arrays."""
    import zipfile

    with open(path, "rb") as fh:
        magic = fh.read(6)
    if not magic.startswith(b"PK") and magic != b"\x93NUMPY":
        raise DatasetError(f"dataset.path {path}: not an .npz archive (no zip header; first bytes {magic!r}); {_SAVE_HINT}")
    try:
        f = np.load(path, allow_pickle=False)
        if not isinstance(f, np.lib.npyio.NpzFile):
            raise DatasetError(f"dataset.path {path}: this is a single .npy array, not an .npz archive with X and y; {_SAVE_HINT}")
        with f:
            missing = {"X", "y"} - set(f.files)
            if missing:
                raise DatasetError(
                    f"dataset.path {path}: the .npz needs arrays 'X' and 'y', missing {sorted(missing)} (it holds {sorted(f.files)})"
                )
            names = None
            if "feature_names" in f.files:
                raw = f["feature_names"]
                if raw.ndim != 1 or raw.dtype.kind not in "US":
                    raise DatasetError(
                        f"dataset.path {path}: the .npz's 'feature_names' must be a 1-D array of strings, got shape {raw.shape} "
                        f"dtype {raw.dtype}; save it as np.array(['name_0', 'name_1', ...])"
                    )
                names = tuple(map(str, raw.tolist()))
            return f["X"], f["y"], names
    except DatasetError:
        raise
    except ValueError as e:
        if "allow_pickle" in str(e) or "pickle" in str(e).lower():
            raise DatasetError(
                f"dataset.path {path}: the .npz holds object (pickled) arrays, which dse does not load (pickles can run code); "
                f"{_SAVE_HINT}"
            ) from e
        raise DatasetError(f"dataset.path {path}: not a readable .npz archive ({e}); {_SAVE_HINT}") from e
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise DatasetError(
            f"dataset.path {path}: not a readable .npz archive ({type(e).__name__}: {e}); is the file complete? {_SAVE_HINT}"
        ) from e


def _read_table(path: Path, suffix: str, target: str | None) -> Loaded:
    """Features and labels of a .csv or .parquet table with the label in column ``target``."""
    import pandas as pd

    try:
        df = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    except pd.errors.EmptyDataError as e:
        raise DatasetError(f"dataset.path {path}: the .csv is empty; it needs a header row with column {target!r} and data rows") from e
    except ImportError as e:
        raise DatasetUnavailableError(f"dataset.path {path}: reading {suffix} needs a package that is missing: {e}") from e
    except Exception as e:  # pandas/pyarrow raise ParserError, ArrowInvalid, UnicodeDecodeError, OSError...
        raise DatasetError(
            f"dataset.path {path}: cannot read it as {suffix} ({type(e).__name__}: {' '.join(str(e).split())[:300]}); "
            f"check that it is a complete, valid {suffix} file"
        ) from e
    if target not in df.columns:
        sep = next((c for c in ";\t|" if c in str(df.columns[0])), None) if len(df.columns) == 1 else None
        hint = (f"; the header is one column holding {sep!r}: dse reads comma-separated files only, so write it "
                "with commas (pandas: df.to_csv(path, index=False))") if sep else ""
        spaced = next((str(c) for c in df.columns if str(c).strip() == str(target).strip()), None)
        if spaced is not None and not hint:  # `a, b, target`: pandas keeps the spaces after the commas in the names
            hint = (f"; the header has {spaced!r}, with spaces that belong to the name: write the header without spaces "
                    "after the commas, or set dataset.target to that name in quotes")
        names = [str(c)[:60] for c in df.columns]
        listed = ", ".join(names[:20]) + (f", ... ({len(names)} in all)" if len(names) > 20 else "")
        raise DatasetError(f"dataset.target {target!r} is not a column of {path}{hint}; columns: {listed or 'none'}")
    if suffix == ".csv":  # pandas renames a repeated name ('a' -> 'a.1'): the recorded feature names would not be the file's
        header = [str(c) for c in pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False).iloc[0]]
        repeated = sorted({c for c in header if c and header.count(c) > 1})  # nameless columns: refused below, as such
        if repeated:
            raise DatasetError(f"dataset.path {path}: column name(s) {repeated} appear more than once in the header; pandas "
                               "would rename the repeats ('a' -> 'a.1'), so the feature names recorded with the study "
                               "(preprocessing.json) would not be the file's: give each column its own name")
    if len(df) == 0:
        raise DatasetError(f"dataset.path {path}: the table has a header but no data rows")
    unnamed = [c for c in df.columns if str(c).startswith("Unnamed: ")]
    if unnamed:  # pandas' name for a column with an empty header, as df.to_csv(path) writes for the row index
        first = df[unnamed[0]]
        index_like = pd.api.types.is_integer_dtype(first) and (first.to_numpy() == np.arange(len(df))).all()
        raise DatasetError(
            f"dataset.path {path}: column(s) {unnamed} have no header"
            + (f"; {unnamed[0]!r} holds 0..{len(df) - 1}, the row index that pandas' df.to_csv(path) writes, which "
               "would become the network's first input" if index_like else "")
            + ": write the file with df.to_csv(path, index=False), or name or drop the column(s)"
        )
    y = df[target].to_numpy()
    labels = df[target]
    if suffix == ".csv" and labels.isna().any() and (not pd.api.types.is_numeric_dtype(labels) or labels.isna().all()):
        # text labels: pandas reads 'NA', 'None', 'null', 'nan', 'n/a' ... as missing, which as class names they are not
        # (probe 41: continents' 'NA' refused as "labels missing in 214 rows"); only an empty cell is a missing label
        text = pd.read_csv(path, usecols=[target], dtype=str, keep_default_na=False)[target].to_numpy(dtype=object)
        y = np.where(text == "", np.nan, text)
    X_df = df.drop(columns=[target])
    non_numeric = [c for c in X_df.columns if not pd.api.types.is_numeric_dtype(X_df[c]) or pd.api.types.is_bool_dtype(X_df[c])]
    if non_numeric:
        hint = (f"; is {non_numeric[0]!r} the label column? then set dataset.target: {non_numeric[0]}"
                if len(non_numeric) == 1 and pd.api.types.is_numeric_dtype(df[target]) else "")
        raise DatasetError(f"dataset.path {path}: feature columns must be numeric, these are not: {non_numeric}"
                           f"{_first_non_numbers(X_df[non_numeric[0]])}{hint}")
    for column in X_df.columns:
        if not pd.api.types.is_integer_dtype(X_df[column]) or len(X_df) <= 2 or X_df[column].isna().any():
            continue
        values = X_df[column].to_numpy()
        if values[0] in (0, 1) and ((values == np.arange(len(values))).all()
                                    or (values == np.arange(1, len(values) + 1)).all()):
            log.warning("dataset.path %s: feature column %r holds %d..%d in row order, a row index (as df.reset_index() "
                        "or df.to_csv(path) with a named index writes): it becomes an input of the network and, where "
                        "the rows are ordered by class, tells it the label (probe 41: accuracy 0.58 from it alone on "
                        "noise whose chance is 0.34); drop the column unless it is a real feature", path, str(column),
                        values[0], values[-1])
    return X_df.to_numpy(dtype=np.float64), y, tuple(map(str, X_df.columns))


def _first_non_numbers(column) -> str:
    """`` (column 'f2', data rows 3, 17: 'abc', '1,5')``: the first cells of a feature column that are not numbers (0-based
    data rows), for the error that refuses it (before: the column's name alone)."""
    import pandas as pd

    bad = column[pd.to_numeric(column, errors="coerce").isna() & column.notna()]
    if bad.empty:
        return ""
    rows, cells = [str(i) for i in bad.index[:3]], [repr(str(v))[:40] for v in bad.iloc[:3]]
    return f" (column {str(column.name)!r}, data row{'s' if len(rows) > 1 else ''} {', '.join(rows)}: {', '.join(cells)})"


def validate_arrays(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Check and encode a classification dataset.

    Args:
        X: features, shape (n_samples, n_features), numeric.
        y: labels, shape (n_samples,): non-negative integers 0..K-1, or strings (encoded in sorted order).

    Returns:
        ``X`` as float64, ``y`` as int32 in 0..K-1, and the class names.

    Raises:
        DatasetError: wrong shapes, non-numeric or non-finite features, negative or fractional
            labels, or fewer than two classes.
    """
    for name, value in (("features X", X), ("labels y", y)):
        try:
            np.asarray(value)
        except ValueError as e:  # rows of different lengths (probe 33: numpy's ValueError escaped)
            raise DatasetError(f"{name} could not be read as an array ({' '.join(str(e).split())[:200]}); give one value per "
                               "feature in every row (rows of equal length), e.g. a 2-D numpy array") from e
    X = np.asarray(X)
    y = np.asarray(y)
    if np.iscomplexobj(y):  # probe 33: a TypeError from np.mod
        raise DatasetError(f"labels y must be whole class indices 0..K-1 or strings, got complex numbers (dtype {y.dtype})")
    if X.dtype == object:
        raise DatasetError("features X must be a numeric array, got dtype object; convert it, e.g. X.astype('float32')")
    if y.dtype == object:
        kinds = {type(v).__name__ for v in y.ravel()}
        if kinds <= {"str"}:
            y = y.astype(str)
        else:
            missing = [i for i, v in enumerate(y.ravel()) if v is None or (isinstance(v, float) and v != v)]
            if missing:
                raise DatasetError(
                    f"labels y are missing (empty or NaN) in {len(missing)} rows (first rows, counted from 0 after any header: {missing[:5]}); "
                    "give every row a label, or drop those rows"
                )
            raise DatasetError(
                f"labels y must be all integers or all strings, got a mix of {sorted(kinds)}; convert them to one type"
            )
    if X.ndim != 2:
        raise DatasetError(f"features X must be 2-D (n_samples, n_features), got shape {X.shape}")
    if y.ndim != 1:
        hint = ""
        if y.ndim == 2 and y.shape[1] == 1:
            hint = "; one label per row in a column: flatten it (y.ravel())"
        elif y.ndim == 2 and y.shape[0] == len(X) and np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all():
            hint = "; these look one-hot encoded: give the class indices instead (y.argmax(axis=1))"
        raise DatasetError(f"labels y must be 1-D (n_samples,), got shape {y.shape}{hint}")
    if len(X) != len(y):
        raise DatasetError(f"X has {len(X)} rows but y has {len(y)} labels; they must match")
    if len(X) == 0:
        raise DatasetError("the dataset has no samples (X has 0 rows)")
    if X.shape[1] == 0:
        raise DatasetError("features X have 0 columns; at least one feature is needed")
    if not np.issubdtype(X.dtype, np.number) or np.issubdtype(X.dtype, np.complexfloating):
        raise DatasetError(f"features X must be real numbers, got dtype {X.dtype}")
    X = X.astype(np.float64)
    bad = ~np.isfinite(X)
    if bad.any():
        rows = np.unique(np.nonzero(bad)[0])
        raise DatasetError(
            f"features X hold {int(bad.sum())} NaN/inf values in {len(rows)} rows (first rows, counted from 0 after any header: {rows[:5].tolist()}); "
            "drop or impute them before running"
        )
    if np.issubdtype(y.dtype, np.number):
        if not np.all(np.isfinite(y)):
            rows = np.flatnonzero(~np.isfinite(y))
            raise DatasetError(f"labels y are missing (NaN/inf) in {len(rows)} rows (first rows, counted from 0 after any header: {rows[:5].tolist()}); "
                               "give every row a label, or drop those rows")
        if not np.all(np.equal(np.mod(y, 1), 0)):
            frac = y[np.mod(y, 1) != 0]
            raise DatasetError(
                f"labels y must be whole class indices 0..K-1 (or strings); found fractional values (e.g. {frac[0]:g}): "
                "dse trains classifiers, so bin a continuous target into classes (e.g. numpy.digitize) or store the "
                "classes as strings"
            )
        if (y < 0).any():
            raise DatasetError(f"labels y out of range: found {int(y.min())}; class indices must be 0..K-1")
        y_int = y.astype(np.int64)
        n_classes = int(y_int.max()) + 1
        missing = sorted(set(range(n_classes)) - set(np.unique(y_int).tolist()))
        if missing:
            low = int(y_int.min())
            how = (f"the labels start at {low}: subtract {low} (y - {low}; in a table, the label column minus {low})"
                   if missing == list(range(low)) else
                   "renumber them (numpy.unique(y, return_inverse=True)[1] gives 0..K-1 in sorted order)")
            raise DatasetError(
                f"labels y out of range: classes must be 0..K-1 with every class present; classes {missing[:10]} "
                f"have no samples while the largest label is {n_classes - 1}; {how}"
            )
        names = tuple(str(i) for i in range(n_classes))
    else:
        names_arr, y_int = np.unique(y.astype(str), return_inverse=True)
        names = tuple(names_arr.tolist())
    if len(names) < 2:
        raise DatasetError(f"labels y hold a single class ({names[0]!r}); classification needs at least 2")
    return X, y_int.astype(np.int32), names


def split_dataset(X: np.ndarray, y: np.ndarray, names: tuple[str, ...], cfg: DatasetConfig, *, standardize: bool = True,
                  feature_names: tuple[str, ...] | None = None) -> Splits:
    """Stratified train/validation/test split with ``cfg.split_seed``; standardized on the train split.

    ``names`` are the class names; ``feature_names`` (one per column of ``X``, or ``None``) are kept
    in the splits and their :class:`Preprocessing`.

    With ``standardize=False`` the splits hold the raw float64 features (same rows), for
    checking a design behind its recorded :class:`Preprocessing`.

    Args:
        X, y, names: as :func:`validate_arrays` returns them: float features (n_samples, n_features), class
            indices 0..len(names)-1 (n_samples,), and the class names.

    Raises:
        DatasetError: a class has fewer than 3 samples (a class of a few more that a split's rounding leaves out is
            warned of, naming it and the samples it needs), or ``y`` holds no class indices of
            ``names`` (probe 33: before, a TypeError for float labels, and a short ``names`` was taken as it was).
    """
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    y = np.asarray(y)
    if not np.issubdtype(y.dtype, np.integer) or y.ndim != 1 or (len(y) and not 0 <= y.min() <= y.max() < len(names)):
        got = (f"shape {y.shape}" if y.ndim != 1 else f"dtype {y.dtype}" if not np.issubdtype(y.dtype, np.integer)
               else f"{int(y.min())}..{int(y.max())}")
        raise DatasetError(f"split_dataset: y must be class indices 0..{len(names) - 1} (one per class name), got {got}; "
                           "pass X, y and names as validate_arrays returns them")
    y = y.astype(np.int32)
    counts = np.bincount(y, minlength=len(names))
    if counts.min() < 3:
        where = _named(cfg)
        few = [f"{names[int(c)]!r} ({int(counts[c])})" for c in np.flatnonzero(counts < 3)]
        raise DatasetError(
            f"{where}{len(few)} class{'es' if len(few) > 1 else ''} with fewer than 3 samples: "
            f"{', '.join(few[:10])}{', ...' if len(few) > 10 else ''}; each class needs at least 3 "
            "for a stratified train/validation/test split (add samples of it, drop or merge the class, or raise "
            "dataset.max_samples if it caps them)"
        )
    try:
        X_rest, X_test, y_rest, y_test = train_test_split(
            X, y, test_size=cfg.test_fraction, stratify=y, random_state=cfg.split_seed
        )
        val_share = cfg.validation_fraction / (1 - cfg.test_fraction)
        X_train, X_val, y_train, y_val = train_test_split(
            X_rest, y_rest, test_size=val_share, stratify=y_rest, random_state=cfg.split_seed
        )
    except ValueError as e:
        if "greater or equal to the number of classes" in str(e):  # a split smaller than the number of classes
            fix = (f"each split needs a sample of each of the {len(names)} classes: raise dataset.test_fraction/validation_fraction "
                   f"(each split at least {len(names)} of the {len(y)} samples), or add samples")
        else:
            fix = "lower dataset.test_fraction/validation_fraction or add samples"
        raise DatasetError(f"cannot split the dataset stratified: {e}; {fix}") from e
    absent = {split: np.flatnonzero(np.bincount(part, minlength=len(names)) == 0).tolist()
              for split, part in (("training", y_train), ("validation", y_val), ("test", y_test))}
    if any(absent.values()):  # a class of 3-4 samples can round to none in a 20% split (probe 41: 4 of 10 such classes)
        log.warning("%s", _classes_left_out(absent, counts, names, cfg))
    for split, part in (("validation", y_val), ("test", y_test)):
        if len(part) < 100:
            log.warning("dataset %s: the %s split has %d samples, so one sample moves its accuracy by %.3f: fronts of "
                        "such accuracies are decided by single samples (add samples, or raise dataset.%s_fraction)",
                        cfg.path if cfg.path is not None else cfg.name, split, len(part), 1 / len(part), split)
    scaler = StandardScaler().fit(X_train)
    if not standardize:
        return Splits(X_train, y_train, X_val, y_val, X_test, y_test, names, scaler.mean_, scaler.scale_, feature_names)
    f32 = lambda a: scaler.transform(a).astype(np.float32)  # noqa: E731
    return Splits(f32(X_train), y_train, f32(X_val), y_val, f32(X_test), y_test, names, scaler.mean_, scaler.scale_, feature_names)


def _named(cfg: DatasetConfig) -> str:
    """``"dataset.path <path>: "`` (a user's file) or ``"dataset <name>: "``, the start of a split's message."""
    return f"dataset.path {cfg.path}: " if cfg.path is not None else f"dataset {cfg.name}: "


def _classes_left_out(absent: dict[str, list[int]], counts: np.ndarray, names: tuple[str, ...], cfg: DatasetConfig) -> str:
    """The warning for classes a stratified split left without a sample (``absent``: split -> class indices), with the
    samples a class needs for one in each split: about 1 / the smallest split's fraction (5 at the defaults)."""
    where = _named(cfg)
    classes = sorted({c for cs in absent.values() for c in cs})
    listed = ", ".join(f"{names[c]!r} ({int(counts[c])})" for c in classes[:10]) + (", ..." if len(classes) > 10 else "")
    splits = " and ".join(f"{split} ({len(cs)} class{'es' if len(cs) > 1 else ''})" for split, cs in absent.items() if cs)
    train = 1 - cfg.validation_fraction - cfg.test_fraction
    need = int(np.ceil(1 / min(cfg.validation_fraction, cfg.test_fraction, train)))
    fix = ("lower validation_fraction and test_fraction" if train < min(cfg.validation_fraction, cfg.test_fraction)
           else "raise the smaller of validation_fraction and test_fraction")
    return (f"{where}{len(classes)} class{'es' if len(classes) > 1 else ''} (samples) got no sample in a split: {listed}; "
            f"missing from the {splits} split, whose accuracy then says nothing of them; with validation_fraction "
            f"{cfg.validation_fraction:g} and test_fraction {cfg.test_fraction:g} a class needs about {need} samples for "
            f"each split to get one: add samples of it, drop or merge the class, or {fix}")


def load_dataset(cfg: DatasetConfig, *, standardize: bool = True) -> Splits:
    """Load, validate and split the dataset an experiment names.

    Args:
        cfg: the experiment's ``dataset`` section.
        standardize: ``False`` keeps the raw float64 features (see :func:`load_raw_test_split`).

    Raises:
        DatasetUnavailableError: the data cannot be fetched or the file is missing.
        DatasetError: the data are malformed (see :func:`validate_arrays`).
    """
    if cfg.name == "digits":
        X, y, feature_names = _load_digits()
    elif cfg.name == "jet_hlf":
        X, y, feature_names = _load_jet_hlf(cfg)
    else:
        X, y, feature_names = _load_file(cfg)
    where = f"dataset.path {cfg.path}" if cfg.name == "file" else f"dataset {cfg.name!r}"
    try:
        X, y, names = validate_arrays(X, y)
    except DatasetError as e:
        raise type(e)(f"{where}: {e}") from e
    if feature_names is not None and len(feature_names) != X.shape[1]:
        raise DatasetError(f"{where}: {len(feature_names)} feature_names for {X.shape[1]} feature columns of X; give one name per column")
    if feature_names is not None and (repeated := sorted(n for n, k in Counter(feature_names).items() if k > 1)):
        raise DatasetError(f"{where}: feature_names repeat {repeated[:10]}; give each column its own name (the names "
                           "select a table's columns for the exported design's preprocessing, so a repeated name would "
                           "feed one column twice)")
    subsampled = cfg.max_samples is not None and len(y) > cfg.max_samples
    if subsampled:
        rng = np.random.default_rng(cfg.split_seed)
        keep = np.sort(rng.choice(len(y), cfg.max_samples, replace=False))
        X, y = X[keep], y[keep]
    try:
        splits = split_dataset(X, y, names, cfg, standardize=standardize, feature_names=feature_names)
    except DatasetError as e:
        if not subsampled:
            raise
        raise DatasetError(f"{e} (after dataset.max_samples={cfg.max_samples} kept a random {cfg.max_samples} of the "
                           "samples: raise it, or leave it out)") from e
    log.info("dataset %s: %s", cfg.name, splits.summary())
    return splits


def load_raw_test_split(cfg: DatasetConfig) -> tuple[np.ndarray, np.ndarray]:
    """The test split's RAW features (float64, (n_test, n_features)) and labels (int32, (n_test,)).

    The same rows a study tested on (same ``split_seed``), before standardization: apply a
    trial's recorded :class:`Preprocessing` to reproduce its inputs.

    Raises:
        DatasetUnavailableError: the data cannot be fetched or the file is missing.
        DatasetError: the data are malformed (see :func:`validate_arrays`).
    """
    raw = load_dataset(cfg, standardize=False)
    return raw.X_test, raw.y_test


def dataset_record(name: str, splits: Splits) -> dict:
    """A description of a dataset for MLflow's dataset inputs.

    Returns:
        ``{"name", "digest", "inputs_digest", "shape", "class_counts", "splits"}``: ``shape`` of the whole
        feature matrix (all splits); ``class_counts`` class name -> samples (all splits);
        ``digest`` the first 16 hex digits of the SHA-256 of the standardized float32
        features and int32 labels of every split, in order; ``inputs_digest`` the same of what
        maps raw inputs to those: the feature names, the class names and the standardization's
        mean and scale to 12 significant digits (a column in other units, or renamed, leaves
        ``digest`` as it was, but not what the firmware's inputs mean).
    """
    import hashlib
    import json

    h = hashlib.sha256()
    for a in (splits.X_train, splits.y_train, splits.X_val, splits.y_val, splits.X_test, splits.y_test):
        h.update(np.ascontiguousarray(a).tobytes())
    # the standardization to 12 significant digits: its last bits may differ between NumPy builds and machines
    inputs = hashlib.sha256(json.dumps([splits.feature_names, splits.class_names, *[
        None if a is None else [f"{v:.12g}" for v in np.asarray(a, dtype=np.float64)] for a in (splits.feature_mean, splits.feature_scale)
    ]]).encode())
    y = np.concatenate([splits.y_train, splits.y_val, splits.y_test])
    counts = np.bincount(y, minlength=splits.n_classes)
    n = len(y)
    return {
        "name": name,
        "digest": h.hexdigest()[:16],
        "inputs_digest": inputs.hexdigest()[:16],
        "shape": [n, splits.n_features],
        "class_counts": {c: int(k) for c, k in zip(splits.class_names, counts)},
        "splits": {"train": len(splits.y_train), "val": len(splits.y_val), "test": len(splits.y_test)},
    }
