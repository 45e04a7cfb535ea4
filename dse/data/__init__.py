"""Datasets: digits (bundled), jet_hlf (OpenML 42468) and user files."""

from dse.data._datasets import Splits, load_dataset, split_dataset, validate_arrays

__all__ = ["Splits", "load_dataset", "split_dataset", "validate_arrays"]
