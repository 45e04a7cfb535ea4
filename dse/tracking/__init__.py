"""MLflow tracking: parent run per study, child run per trial, provenance, relocatable default stores."""

from dse.tracking._mlflow import (
    EXPERIMENT_UPDATED_TAG, ROLE_TAG, STUDY_TAG, TRACKING_FAILED_TAG, StudyTracker, TrialRunLogger, dataset_input,
    is_tracking_failure, provenance_tags,
)
from dse.tracking._relocate import default_store_paths, log_files, open_tracking, relocate_default_store, server_problem

__all__ = [
    "EXPERIMENT_UPDATED_TAG", "ROLE_TAG", "STUDY_TAG", "TRACKING_FAILED_TAG", "StudyTracker", "TrialRunLogger", "dataset_input",
    "is_tracking_failure",
    "provenance_tags",
    "default_store_paths", "log_files", "open_tracking", "relocate_default_store",
    "server_problem",
]
