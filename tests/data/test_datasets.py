"""Datasets: the real digits split, user files, and refusal of bad data before any trial."""

import re

import numpy as np
import pandas as pd
import pytest

from dse.config import DatasetConfig
from dse.data import load_dataset, validate_arrays
from dse.exceptions import DatasetError, DatasetUnavailableError


def test_digits_split_is_stratified_standardized_and_seeded(digits_splits):
    s = digits_splits
    assert s.n_features == 64 and s.n_classes == 10
    assert len(s.y_train) + len(s.y_val) + len(s.y_test) == 1797
    assert s.X_train.dtype == np.float32 and s.y_train.dtype == np.int32
    np.testing.assert_allclose(s.X_train.mean(axis=0), 0, atol=1e-5)
    # stratified: class shares in test within 2 points of train
    share = lambda y: np.bincount(y, minlength=10) / len(y)  # noqa: E731
    assert np.abs(share(s.y_train) - share(s.y_test)).max() < 0.02
    again = load_dataset(DatasetConfig(name="digits"))
    np.testing.assert_array_equal(again.X_test, s.X_test)
    other = load_dataset(DatasetConfig(name="digits", split_seed=1))
    assert not np.array_equal(other.y_test, s.y_test)


def test_user_files(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(90, 3)), np.repeat([0, 1, 2], 30)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    s = load_dataset(DatasetConfig(name="file", path=tmp_path / "d.npz"))
    assert s.n_features == 3 and s.n_classes == 3
    df = pd.DataFrame(X, columns=["a", "b", "c"]).assign(label=np.repeat(["g", "q", "t"], 30))
    df.to_csv(tmp_path / "d.csv", index=False)
    df.to_parquet(tmp_path / "d.parquet")
    for name in ("d.csv", "d.parquet"):
        s = load_dataset(DatasetConfig(name="file", path=tmp_path / name, target="label"))
        assert s.class_names == ("g", "q", "t") and s.n_features == 3
    with pytest.raises(DatasetError, match="dataset.target 'cls' is not a column .* columns: a, b, c, label"):
        load_dataset(DatasetConfig(name="file", path=tmp_path / "d.csv", target="cls"))
    wide = pd.DataFrame(np.zeros((3, 64)), columns=[f"pixel_{i}" for i in range(64)])  # before: all 64 names listed
    wide.to_csv(tmp_path / "wide.csv", index=False)
    with pytest.raises(DatasetError, match=r"columns: pixel_0, .*, pixel_19, \.\.\. \(64 in all\)$"):
        load_dataset(DatasetConfig(name="file", path=tmp_path / "wide.csv", target="label"))
    np.savez(tmp_path / "bad.npz", features=X)
    with pytest.raises(DatasetError, match=r"needs arrays 'X' and 'y', missing \['X', 'y'\]"):
        load_dataset(DatasetConfig(name="file", path=tmp_path / "bad.npz"))
    with pytest.raises(DatasetUnavailableError, match="does not exist"):
        load_dataset(DatasetConfig(name="file", path=tmp_path / "none.npz"))


@pytest.mark.parametrize(
    "X, y, expected",
    [
        (np.array([[0.0, np.nan], [1.0, 2.0], [1, 1], [2, 2]]), [0, 1, 0, 1], "1 NaN/inf values in 1 rows"),
        (np.zeros((4, 2, 2)), [0, 1, 0, 1], "features X must be 2-D"),
        (np.zeros((4, 2)), [[0, 1], [0, 1]], "labels y must be 1-D"),
        (np.zeros((4, 2)), [0, 1, 0], "X has 4 rows but y has 3 labels"),
        (np.zeros((4, 2)), [1, 1, 1, 1], "out of range: classes must be 0..K-1"),
        (np.zeros((4, 2)), [0, 0, 0, 0], "single class"),
        (np.zeros((4, 2)), ["a", "a", "a", "a"], "single class ('a')"),
        (np.zeros((4, 2)), [0, -1, 0, 1], "labels y out of range: found -1"),
        (np.zeros((4, 2)), [0, 3, 0, 3], "classes [1, 2] have no samples while the largest label is 3; renumber them (numpy.unique"),
        # labels 1..K, as many files have them (before: advice to store them as strings, which a CSV cannot do)
        (np.zeros((4, 2)), [1, 2, 3, 1], "classes [0] have no samples while the largest label is 3; the labels start at 1: subtract 1"),
        # one-hot or column labels (before: only "must be 1-D")
        (np.zeros((3, 2)), [[0, 1, 0], [1, 0, 0], [0, 0, 1]], "these look one-hot encoded: give the class indices instead (y.argmax(axis=1))"),
        (np.zeros((3, 2)), [[0], [1], [1]], "flatten it (y.ravel())"),
        (np.zeros((4, 2)), [0, 0.5, 1, 1], "whole class indices"),
    ],
)
def test_bad_data_refused(X, y, expected):
    with pytest.raises(DatasetError) as info:
        validate_arrays(np.asarray(X), np.asarray(y))
    assert expected in str(info.value)


def test_python_callers_get_dataset_errors_not_numpy_ones():
    """Probe 33: a ragged X and complex labels (validate_arrays), float labels or a short list of class names
    (split_dataset) and text features (Preprocessing.apply) raised numpy's ValueError or TypeError."""
    from dse.data import split_dataset

    with pytest.raises(DatasetError, match=r"features X could not be read as an array .*rows of equal length"):
        validate_arrays([[1.0, 2.0], [3.0]], [0, 1])
    with pytest.raises(DatasetError, match=r"labels y must be whole class indices 0..K-1 or strings, got complex"):
        validate_arrays(np.zeros((4, 2)), np.array([0, 1, 0, 1], dtype=complex))
    cfg = DatasetConfig(name="digits")
    X = np.random.default_rng(0).normal(size=(30, 2))
    with pytest.raises(DatasetError, match=r"split_dataset: y must be class indices 0..1 .*got dtype float64"):
        split_dataset(X, np.array([0.0, 1.0, 2.0] * 10), ("a", "b"), cfg)
    with pytest.raises(DatasetError, match=r"split_dataset: y must be class indices 0..1 .*got 0..2; pass X, y and names"):
        split_dataset(X, np.array([0, 1, 2] * 10), ("a", "b"), cfg)
    splits = split_dataset(X, np.array([0, 1, 2] * 10, dtype=np.int64), ("a", "b", "c"), cfg)
    assert splits.y_train.dtype == np.int32  # as Splits says
    with pytest.raises(DatasetError, match=r"features must be numbers"):
        splits.preprocessing.apply([["a", "b"]])


def test_class_too_small_to_split(tmp_path):
    X = np.random.default_rng(0).normal(size=(42, 2))
    y = np.array([0] * 20 + [1] * 20 + [2] * 2)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    with pytest.raises(DatasetError, match=r"1 class with fewer than 3 samples: '2' \(2\); each class needs at least 3") as info:
        load_dataset(DatasetConfig(name="file", path=tmp_path / "d.npz"))
    assert f"dataset.path {tmp_path / 'd.npz'}:" in str(info.value)  # named, as the other dataset errors are
    # every such class is named at once (before: only the first, so a user fixed one and ran again)
    np.savez(tmp_path / "e.npz", X=np.zeros((44, 2)), y=np.array([0] * 20 + [1] * 20 + [2] * 2 + [3] * 2))
    with pytest.raises(DatasetError, match=r"2 classes with fewer than 3 samples: '2' \(2\), '3' \(2\);"):
        load_dataset(DatasetConfig(name="file", path=tmp_path / "e.npz"))


def test_a_class_a_split_would_leave_out_is_named(tmp_path, caplog):
    """Probe 41: 3 or 4 samples of a class passed the check, and the stratified 20% splits rounded some such classes to
    no sample at all (4 of 10 classes of 3 samples had no validation sample, 4 no test sample), unsaid. Now warned of,
    not refused: studies that ran on such data before go on."""
    rng = np.random.default_rng(0)
    y = np.concatenate([np.repeat(np.arange(4), 100), np.repeat(np.arange(4, 14), 3)])
    np.savez(tmp_path / "rare.npz", X=rng.normal(size=(len(y), 2)), y=y)
    with caplog.at_level("WARNING", logger="dse.data._datasets"):
        load_dataset(DatasetConfig(name="file", path=tmp_path / "rare.npz"))
    said = " ".join(caplog.text.split())
    assert "classes (samples) got no sample in a split: '" in said and "(3)" in said, said
    assert "a class needs about 5 samples for each split to get one" in said and "raise the smaller of" in said, said
    assert re.search(r"missing from the (validation|test) \(\d+ class(es)?\)", said), said  # probe 42: "(1)", unexplained
    caplog.clear()
    y = np.concatenate([np.repeat(np.arange(4), 100), np.repeat(np.arange(4, 14), 5)])  # 5 each: every split has one
    np.savez(tmp_path / "five.npz", X=rng.normal(size=(len(y), 2)), y=y)
    with caplog.at_level("WARNING", logger="dse.data._datasets"):
        s = load_dataset(DatasetConfig(name="file", path=tmp_path / "five.npz"))
    assert all(set(part.tolist()) == set(range(14)) for part in (s.y_train, s.y_val, s.y_test))
    assert "got no sample" not in caplog.text


def test_a_table_of_text_class_names_that_pandas_reads_as_missing(tmp_path, caplog):
    """Probe 41: class names 'NA' (North America) or 'None' were refused as missing labels in a third of the rows; a
    non-number cell was refused by its column's name alone; a named row-index column was taken as a feature unsaid."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(90, 2)), columns=["a", "b"]).assign(region=np.repeat(["NA", "EU", "None"], 30))
    df.to_csv(tmp_path / "regions.csv", index=False)
    s = load_dataset(DatasetConfig(name="file", path=tmp_path / "regions.csv", target="region"))
    assert s.class_names == ("EU", "NA", "None") and len(s.y_train) + len(s.y_val) + len(s.y_test) == 90
    df.assign(region=np.repeat(["NA", "None", "NA"], 30)).to_csv(tmp_path / "all_na.csv", index=False)
    s = load_dataset(DatasetConfig(name="file", path=tmp_path / "all_na.csv", target="region"))  # every name NA-like
    assert s.class_names == ("NA", "None")
    (tmp_path / "gap.csv").write_text((tmp_path / "regions.csv").read_text().replace(",NA\n", ",\n", 1))
    with pytest.raises(DatasetError, match=r"labels y are missing .* in 1 rows"):  # an empty cell still is missing
        load_dataset(DatasetConfig(name="file", path=tmp_path / "gap.csv", target="region"))
    df.assign(b=["1,5" if i in (3, 17) else "0.5" for i in range(90)]).to_csv(tmp_path / "comma.csv", index=False)
    with pytest.raises(DatasetError, match=r"these are not: \['b'\] \(column 'b', data rows 3, 17: '1,5', '1,5'\)"):
        load_dataset(DatasetConfig(name="file", path=tmp_path / "comma.csv", target="region"))
    df.sort_values("region").reset_index(drop=True).reset_index().rename(columns={"index": "id"}).to_csv(
        tmp_path / "id.csv", index=False)
    with caplog.at_level("WARNING", logger="dse.data._datasets"):
        load_dataset(DatasetConfig(name="file", path=tmp_path / "id.csv", target="region"))
    assert "feature column 'id' holds 0..89 in row order, a row index" in caplog.text, caplog.text
    # a nullable integer column whose first cell is missing: the NaN refusal, not a TypeError of the index check
    df.assign(a=pd.array([None] + list(range(1, 90)), dtype="Int64")).to_parquet(tmp_path / "gap.parquet")
    with pytest.raises(DatasetError, match=r"features X hold 1 NaN/inf values in 1 rows"):
        load_dataset(DatasetConfig(name="file", path=tmp_path / "gap.parquet", target="region"))


def test_small_splits_are_said_to_move_by_a_sample(tmp_path, caplog):
    """Probe 41: 40 rows gave test and validation splits of 8, whose accuracies move by 0.125 a sample, unsaid."""
    np.savez(tmp_path / "tiny.npz", X=np.random.default_rng(0).normal(size=(40, 2)), y=np.repeat([0, 1], 20))
    with caplog.at_level("WARNING", logger="dse.data._datasets"):
        load_dataset(DatasetConfig(name="file", path=tmp_path / "tiny.npz"))
    assert "the validation split has 8 samples, so one sample moves its accuracy by 0.125" in caplog.text, caplog.text
    assert "the test split has 8 samples" in caplog.text


@pytest.mark.parametrize("labels", [["sig", "bkg", None, "sig"] * 3, [0.0, 1.0, float("nan"), 1.0] * 3])
def test_missing_labels_are_named_as_missing(labels):
    """Before: a missing string label read as 'a mix of [float, str]', a NaN number as 'NaN or fractional values'."""
    with pytest.raises(DatasetError, match=r"labels y are missing .* in 3 rows \(first rows, counted from 0 after any header: \[2, 6, 10\]\); give every row a label"):
        validate_arrays(np.zeros((12, 2)), np.array(labels, dtype=object if isinstance(labels[0], str) else float))


def test_jet_hlf_offline_says_how_to_supply_file(tmp_path, monkeypatch):
    """OpenML unreachable: the error must say how to supply the data instead.

    The download goes through a proxy on a closed 127.0.0.1 port, so the test talks to no other address.
    """
    import socket
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # urlopen caches its first opener, with the proxies of that moment: restored after the test, so a later test's
    # urlopen (the MLflow server's health check in tests/cluster) does not go through this closed port
    monkeypatch.setattr(urllib.request, "_opener", None)
    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(var, f"http://127.0.0.1:{port}")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    with pytest.raises(DatasetUnavailableError) as info:
        load_dataset(DatasetConfig(name="jet_hlf", data_home=tmp_path / "cache"))
    msg = str(info.value)
    assert "42468" in msg and "dataset.name: file" in msg and "dataset.target: class" in msg
    # the failed fetch leaves no empty cache tree behind (before: cache/openml/openml.org/api/v1/json/data)
    assert list(tmp_path.iterdir()) == []
    kept = tmp_path / "mine" / "openml" / "openml.org"  # folders that were there before are left alone
    kept.mkdir(parents=True)
    with pytest.raises(DatasetUnavailableError):
        load_dataset(DatasetConfig(name="jet_hlf", data_home=tmp_path / "mine"))
    assert kept.is_dir() and [p.name for p in kept.iterdir()] == []


def test_feature_names_travel_into_the_preprocessing_record(tmp_path):
    """The input order of the firmware, by name: a table's columns, an .npz's feature_names, digits' pixel names.
    Before, preprocessing.json held only the vectors, so a user had to know the training column order."""
    from dse.data import Preprocessing

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(90, 3)) * [1, 10, 100], np.repeat(["g", "q", "t"], 30)
    df = pd.DataFrame(X, columns=["pt", "eta", "mass"]).assign(label=y)
    df.to_csv(tmp_path / "d.csv", index=False)
    s = load_dataset(DatasetConfig(name="file", path=tmp_path / "d.csv", target="label"))
    assert s.feature_names == ("pt", "eta", "mass")
    record = s.preprocessing.to_json()
    assert record["feature_names"] == ["pt", "eta", "mass"]
    pre = Preprocessing.from_json(record)
    # a table in another column order (and with extra columns) is taken by name
    shuffled = df[["label", "mass", "pt", "eta"]]
    np.testing.assert_array_equal(pre.apply(shuffled), pre.apply(X))
    with pytest.raises(DatasetError, match=r"lacks 1 of the 3 features this design was trained on: \['eta'\]"):
        pre.apply(df[["pt", "mass"]])
    # a record written before feature names existed still reads, and takes arrays
    old = {k: v for k, v in record.items() if k != "feature_names"}
    assert Preprocessing.from_json(old).feature_names is None and Preprocessing.from_json(old).apply(X).shape == (90, 3)
    # the file `dse export` writes, by its path (before: AttributeError: 'str' object has no attribute 'get')
    import json

    (tmp_path / "preprocessing.json").write_text(json.dumps(record))
    assert Preprocessing.from_json(str(tmp_path / "preprocessing.json")) == pre == Preprocessing.from_json(tmp_path / "preprocessing.json")
    with pytest.raises(DatasetError, match=r"cannot read the preprocessing record .*missing.json' \(FileNotFoundError"):
        Preprocessing.from_json(tmp_path / "missing.json")
    with pytest.raises(DatasetError, match=r"a preprocessing record is a JSON object \(dict\) or its file's path, not list"):
        Preprocessing.from_json([1, 2])

    np.savez(tmp_path / "n.npz", X=X, y=np.repeat([0, 1, 2], 30), feature_names=np.array(["a", "b", "c"]))
    assert load_dataset(DatasetConfig(name="file", path=tmp_path / "n.npz")).feature_names == ("a", "b", "c")
    np.savez(tmp_path / "short.npz", X=X, y=np.repeat([0, 1, 2], 30), feature_names=np.array(["a", "b"]))
    with pytest.raises(DatasetError, match="2 feature_names for 3 feature columns of X; give one name per column"):
        load_dataset(DatasetConfig(name="file", path=tmp_path / "short.npz"))
    np.savez(tmp_path / "num.npz", X=X, y=np.repeat([0, 1, 2], 30), feature_names=np.arange(3))
    with pytest.raises(DatasetError, match="'feature_names' must be a 1-D array of strings"):
        load_dataset(DatasetConfig(name="file", path=tmp_path / "num.npz"))
    np.savez(tmp_path / "plain.npz", X=X, y=np.repeat([0, 1, 2], 30))
    assert load_dataset(DatasetConfig(name="file", path=tmp_path / "plain.npz")).preprocessing.feature_names is None
    assert load_dataset(DatasetConfig(name="digits")).feature_names[:2] == ("pixel_0_0", "pixel_0_1")
