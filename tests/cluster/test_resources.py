"""Per-trial Ray resources from the experiment's ray section."""

from dse.config import RayConfig
from dse.study._ray_session import trial_resources


def test_trial_resources():
    assert trial_resources(RayConfig()) == {"num_cpus": 1, "num_gpus": 0}
    assert trial_resources(RayConfig(cpus_per_trial=2, gpus_per_trial=0.5, memory_per_trial=2_000_000_000)) == {
        "num_cpus": 2, "num_gpus": 0.5, "memory": 2_000_000_000,
    }
