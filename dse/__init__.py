"""fpga-dse: design-space exploration of HGQ2 neural networks for FPGAs.

Pipeline, one package per stage: :mod:`dse.config` (experiment and search space) ->
:mod:`dse.data` -> :mod:`dse.trial` (train, convert, measure) with :mod:`dse.resources`
-> :mod:`dse.study` (Optuna on Ray) -> :mod:`dse.tracking` (MLflow) -> :mod:`dse.report`.
"""

from dse.exceptions import DseError

__version__ = "0.1.0"
__all__ = ["DseError", "__version__"]
