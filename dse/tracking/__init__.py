"""Experiment tracking in MLflow (parent run per study, child run per trial)."""

from dse.tracking._mlflow import STUDY_TAG, StudyTracker, TrialRunLogger

__all__ = ["STUDY_TAG", "StudyTracker", "TrialRunLogger"]
