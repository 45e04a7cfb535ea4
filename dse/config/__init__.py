"""Configuration: experiment files, search spaces and the parameters of one trial."""

from dse.config._experiment import (
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
)
from dse.config._loading import load_experiment
from dse.config._params import TrialParams
from dse.config._search_space import SearchSpace, load_search_space

__all__ = [
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
    "load_search_space",
]
