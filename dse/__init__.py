"""fpga-dse: design-space exploration of HGQ2 neural networks for FPGAs.

Pipeline, one package per stage: :mod:`dse.config` (experiment and search space) ->
:mod:`dse.data` -> :mod:`dse.trial` (train, convert, measure) with :mod:`dse.resources`
-> :mod:`dse.study` (Optuna on Ray) -> :mod:`dse.tracking` (MLflow) -> :mod:`dse.report`.
"""

import os

# MLflow 3 sends usage telemetry to mlflow-telemetry.io unless told not to; a study talks only to
# the stores and the cluster its experiment names. MLFLOW_DISABLE_TELEMETRY=false lets MLflow's through.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from dse.exceptions import DseError  # noqa: E402

__version__ = "0.1.0"
__all__ = ["DseError", "__version__"]
