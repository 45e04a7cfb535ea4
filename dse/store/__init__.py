"""The study's persisted records: one module writes and reads everything ``dse`` keeps in Optuna storage."""

from dse.store._records import (
    NOT_EVALUATED,
    TRIAL_DEFINING_FIELDS,
    StudyRecords,
    TrialRecord,
    constraint_values,
    current_source_labels,
    harvested_trial,
    objective_values,
    precise_broken,
    is_harvested,
    is_not_evaluated,
    record_heartbeat,
    record_trial_params,
    record_trial_result,
    record_trial_run,
    within_constraints,
)

__all__ = [
    "NOT_EVALUATED",
    "TRIAL_DEFINING_FIELDS",
    "StudyRecords",
    "TrialRecord",
    "constraint_values",
    "current_source_labels",
    "harvested_trial",
    "objective_values",
    "precise_broken",
    "is_harvested",
    "is_not_evaluated",
    "record_heartbeat",
    "record_trial_params",
    "record_trial_result",
    "record_trial_run",
    "within_constraints",
]
