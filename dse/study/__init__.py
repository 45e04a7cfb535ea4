"""Studies: Optuna ask/tell in RDB or journal-file storage, trials dispatched to Ray workers."""

from dse.study._calibrate import CalibrationResult, calibrate
from dse.study._liveness import orphaned_trials, silent_trials
from dse.study._orchestrator import StudySummary, run_study
from dse.study._preflight import preflight
from dse.study._ray_session import ray_session, trial_resources
from dse.study._samplers import make_sampler
from dse.study._storage import load_study, open_study
from dse.study._synthesize import SynthesisSummary, experiment_of, precise_front, synthesize

__all__ = [
    "CalibrationResult",
    "calibrate",
    "SynthesisSummary",
    "synthesize",
    "experiment_of",
    "precise_front",
    "preflight",
    "orphaned_trials",
    "silent_trials",
    "StudySummary", "run_study", "ray_session", "trial_resources", "make_sampler", "load_study", "open_study"]
