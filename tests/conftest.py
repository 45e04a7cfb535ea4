"""Shared fixtures: tiny real experiments and a tiny trained HGQ2 model."""

from __future__ import annotations

import importlib
import os
import sys
from contextlib import ExitStack
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]

#: A small space: fast strategies only; a learning rate of 1e30 makes training diverge (NaN loss).
TINY_SPACE = {
    "parameters": {
        "strategy": {"type": "categorical", "choices": ["Latency", "Resource"]},
        "reuse_factor": {"type": "categorical", "choices": [2, 4], "when": {"strategy": "Resource"}, "default": 1},
        "learning_rate": {"type": "categorical", "choices": [0.01, 1.0e30]},
        "beta": {"type": "float", "low": 1e-6, "high": 1e-5, "log": True},
        "weight_bits": {"type": "int", "low": 3, "high": 5},
    },
    "rules": [{"name": "tip", "when": {"strategy": "Resource"}, "set": {"beta": 0.0}}],
}


def write_experiment(tmp: Path, *, space: dict | None = None, **fields) -> Path:
    """Write a tiny digits experiment (2 epochs, hidden [8]) and its search space under ``tmp``."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "space.yaml").write_text(yaml.safe_dump(space or TINY_SPACE, sort_keys=False))
    exp = {
        "name": "tiny",
        "dataset": {"name": "digits"},
        "model": {"hidden": [8]},
        "training": {"epochs": 2, "batch_size": 128, "learning_rate": 0.01},
        "search_space": "space.yaml",
        "n_trials": 4,
        "seed": 3,
        "sampler": {"name": "random"},
        "run_dir": str(tmp / "run"),
        "ray": {"num_cpus": 2},
    }
    exp.update(fields)
    path = tmp / "experiment.yaml"
    path.write_text(yaml.safe_dump(exp, sort_keys=False))
    return path


def pytest_configure(config):
    config.addinivalue_line("markers", "shared_ray: the test's in-process studies run on one local Ray kept across such tests")
    config.addinivalue_line("markers", "own_ray: the test starts and stops its own Ray (overrides a module's shared_ray)")
    config.addinivalue_line("markers", "slow: 25-60 s each on a 2-core host; `bash scripts/test.sh` leaves them out unless "
                                       "SLOW=1 (README, Testing), so that CI stays under 30 minutes")


_SHARED_RAY: dict[str, ExitStack] = {}


def use_shared_ray(tmp_path_factory) -> None:
    """Start, once, a local Ray (2 CPUs, 127.0.0.1 only) that later in-process studies reuse.

    ``run_study`` uses a Ray this process already started as it is (``dse.study._ray_session.ray_session``),
    so the tests that share it skip Ray's start and stop (5-7 s each on 2 cores). It is started
    through ``ray_session`` itself, so its workers get ``WORKER_ENV`` as a study's own would, and
    its files stay in a pytest temp folder. Tests about Ray's own lifecycle do not share it
    (:func:`_ray_per_test` stops it before them).
    """
    if "stack" in _SHARED_RAY:
        return
    from dse.config import RayConfig
    from dse.study._ray_session import ray_session

    stack = ExitStack()
    stack.enter_context(ray_session(RayConfig(num_cpus=2), tmp_path_factory.mktemp("shared_ray")))
    _SHARED_RAY["stack"] = stack


def stop_shared_ray() -> None:
    """Shut the shared Ray down (a no-op when it is not running)."""
    stack = _SHARED_RAY.pop("stack", None)
    if stack is not None:
        stack.close()


@pytest.fixture(autouse=True)
def _ray_per_test(request, tmp_path_factory):
    """Tests marked ``shared_ray`` (and not ``own_ray``) run on the shared Ray; every other test on none of it."""
    if request.node.get_closest_marker("shared_ray") and not request.node.get_closest_marker("own_ray"):
        use_shared_ray(tmp_path_factory)
    else:
        stop_shared_ray()
    yield


def pytest_sessionfinish(session, exitstatus):
    stop_shared_ray()


@pytest.fixture
def user_modules(tmp_path, monkeypatch):
    """Write a user's module (a resource backend, a dataset) into ``tmp_path/plugins``, on ``sys.path``.

    ``user_modules(name, source)`` writes ``plugins/<name>.py`` and returns the folder. The folder is
    on the driver's ``sys.path`` (Ray passes that path to its workers, a Ray started earlier too) until
    the test ends; then the modules written are forgotten (``sys.modules``) and the backends registered
    meanwhile unregistered, so that a later test can register the same names.
    """
    from dse.resources import _registry

    folder = tmp_path / "plugins"
    before, written = set(_registry._REGISTRY), []

    def write(name: str, source: str) -> Path:
        folder.mkdir(exist_ok=True)
        (folder / f"{name}.py").write_text(source)
        if str(folder) not in sys.path:
            monkeypatch.syspath_prepend(str(folder))
        importlib.invalidate_caches()  # a module written into a folder already on sys.path
        written.append(name)
        return folder

    yield write
    for name in written:
        sys.modules.pop(name, None)
    for name in set(_registry._REGISTRY) - before:
        _registry._REGISTRY.pop(name, None)


@pytest.fixture(scope="session")
def digits_splits():
    from dse.config import DatasetConfig
    from dse.data import load_dataset

    return load_dataset(DatasetConfig(name="digits"))


@pytest.fixture(scope="session")
def trained_design_parts(digits_splits, tmp_path_factory):
    """A trained, traced 64-8-10 HGQ2 model (2 epochs) with its experiment, for resource backends."""
    from hgq.utils import trace_minmax

    from dse.config import load_experiment
    from dse.config import TrialParams
    from dse.trial import build_model, train_model

    exp, _ = load_experiment(write_experiment(tmp_path_factory.mktemp("design")))
    params = TrialParams(strategy="distributed_arithmetic", beta=1e-5, weight_bits=4)
    model = build_model(exp.model, params, digits_splits.n_features, digits_splits.n_classes)
    train_model(model, digits_splits, exp.training, params, seed=0)
    ebops = float(trace_minmax(model, digits_splits.X_train))
    return exp, params, model, ebops


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory):
    """4 trials of a 64-8-10 MLP, 2 epochs, each in a fresh worker, all C-simulated; trials with learning rate 1e30 diverge and must FAIL."""
    from dse.config import load_experiment
    from dse.study import run_study
    import optuna

    exp, space = load_experiment(write_experiment(
        tmp_path_factory.mktemp("study"), ray={"num_cpus": 2, "reuse_workers": False}, hls4ml={"csim": "all"}
    ))
    use_shared_ray(tmp_path_factory)
    summary = run_study(exp, space, progress=False)
    study = optuna.load_study(study_name=exp.name, storage=exp.storage_url)
    return exp, summary, study
