"""Configuration: experiment files, search spaces and the parameters of one trial."""

from dse.config._experiment import (
    JOURNAL,
    JOURNAL_FILE,
    METRICS,
    ConstraintConfig,
    DatasetConfig,
    ExperimentConfig,
    Hls4mlConfig,
    MlflowConfig,
    ModelConfig,
    ObjectiveConfig,
    RayConfig,
    ResourcesConfig,
    SamplerConfig,
    TrainingConfig,
    journal_path,
    sqlite_path,
    storage_file,
)
from dse.config._loading import enqueued_params, expand_env, load_experiment, make_output_dir, read_stored_experiment, revalidate
from dse.config._params import TrialParams
from dse.config._search_space import SearchSpace, load_search_space
from dse.config._secrets import redact_secrets, redact_url

__all__ = [
    "JOURNAL",
    "JOURNAL_FILE",
    "METRICS",
    "ConstraintConfig",
    "DatasetConfig",
    "ExperimentConfig",
    "Hls4mlConfig",
    "MlflowConfig",
    "ModelConfig",
    "ObjectiveConfig",
    "RayConfig",
    "ResourcesConfig",
    "SamplerConfig",
    "TrainingConfig",
    "TrialParams",
    "SearchSpace",
    "load_experiment",
    "revalidate",
    "read_stored_experiment",
    "make_output_dir",
    "enqueued_params",
    "load_search_space",
    "expand_env",
    "journal_path",
    "sqlite_path",
    "storage_file",
    "redact_url",
    "redact_secrets",
]
