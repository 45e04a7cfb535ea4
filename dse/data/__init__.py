"""Datasets: digits (bundled), jet_hlf (OpenML 42468) and user files."""

from dse.data._datasets import (
    Preprocessing,
    Splits,
    dataset_record,
    load_dataset,
    load_raw_test_split,
    split_dataset,
    validate_arrays,
)

__all__ = ["Preprocessing", "Splits", "dataset_record", "load_dataset", "load_raw_test_split", "split_dataset", "validate_arrays"]
