"""fpga-dse: design-space exploration of HGQ2 neural networks for FPGAs.

Pipeline, one package per stage: :mod:`dse.config` (experiment and search space) ->
:mod:`dse.data` -> :mod:`dse.trial` (train, convert, measure) with :mod:`dse.resources`
-> :mod:`dse.study` (Optuna on Ray) -> :mod:`dse.tracking` (MLflow) -> :mod:`dse.report`.
"""

import os

#: MLflow settings of every dse process (driver and Ray workers) unless the environment sets them:
#: - MLflow 3 sends usage telemetry to mlflow-telemetry.io unless told not to; a study talks only to
#:   the stores and the cluster its experiment names (MLFLOW_DISABLE_TELEMETRY=false lets it through).
#: - A request to a tracking server that is down fails after about 15 s (4 retries, backoff factor 1,
#:   30 s timeout) instead of MLflow's 4 minutes or more (7 retries, factor 2, 120 s): with MLflow's
#:   defaults, a server lost mid-study kept a driver retrying for 21 minutes. Raise them for a
#:   rate-limited hosted server.
#: - No artifact progress bars and no "View run at" lines between dse's own output.
MLFLOW_DEFAULTS = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "4",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}
for _k, _v in MLFLOW_DEFAULTS.items():
    os.environ.setdefault(_k, _v)

from dse.exceptions import DseError  # noqa: E402

__version__ = "0.1.0"
__all__ = ["DseError", "__version__"]
