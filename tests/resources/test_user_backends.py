"""A user's resource backend, named by ``resources.backend_modules``: known to the driver, every
Ray worker (trials and re-measurements) and every later command that reads the study."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import optuna
import pytest
from mlflow.tracking import MlflowClient

from dse.config import ResourcesConfig, load_experiment
from dse.exceptions import ConfigError
from dse.resources import _registry
from dse.store import TrialRecord
from dse.study import run_study, synthesize
from tests.conftest import write_experiment

MODULE = textwrap.dedent('''
    """A user's backend: LUT = EBOPs / 2, DSP = 0, every Strategy; precise, so dse synthesize runs it."""
    import os

    from dse.resources import Figure, ResourceBackend, ResourceReport, register_backend


    @register_backend
    class HalfEbops(ResourceBackend):
        name = "half_ebops"
        sources = ("half-ebops",)
        figures = ("lut", "dsp")

        def measure(self, design):
            return ResourceReport(backend=self.name, extras={"worker_pid": float(os.getpid())},
                                  figures={"lut": Figure(design.ebops / 2, "half-ebops"), "dsp": Figure(0.0, "half-ebops")})
''')


SPACE = {"parameters": {"strategy": {"type": "categorical", "choices": ["Latency", "distributed_arithmetic"]}}}


@pytest.fixture
def user_module(tmp_path):
    """``half_ebops_backend.py`` in a folder of its own, on the driver's ``sys.path`` (Ray passes that path to its workers)."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "half_ebops_backend.py").write_text(MODULE)
    sys.path.insert(0, str(folder))
    yield folder
    sys.path.remove(str(folder))
    sys.modules.pop("half_ebops_backend", None)
    _registry._REGISTRY.pop("half_ebops", None)


@pytest.mark.shared_ray  # a Ray started before the module was on sys.path: the folder reaches the workers all the same
def test_a_users_backend_measures_in_the_workers_and_later_commands_load_it(tmp_path, user_module):
    exp, space = load_experiment(write_experiment(
        tmp_path / "exp", name="user_backend", n_trials=2, space=SPACE,
        resources={"backend": "half_ebops", "backend_modules": ["half_ebops_backend"]}, hls4ml={"csim": "none"},
    ))
    summary = run_study(exp, space, progress=False)
    assert summary.n_complete == 2, summary.failures
    study = optuna.load_study(study_name="user_backend", storage=exp.storage_url)
    for t in study.trials:
        r = TrialRecord.of(t)
        assert r.tags["figure_backend"] == "half_ebops" and r.tags["lut_source"] == "half-ebops"
        assert r.metrics["lut"] == pytest.approx(r.metrics["ebops"] / 2)
        assert int(r.metrics["worker_pid"]) != os.getpid()  # measured in a Ray worker, which imported the module itself

    # the trials' own figures are half_ebops's with the same settings: taken as its measurement, no worker started
    s = synthesize("user_backend", exp.storage_url, "half_ebops", trials=[0, 1])
    assert sorted(s.own) == sorted(s.cached) == [0, 1] and not s.launched and not s.failed, s
    # a re-measurement's workers import the study's module too, and a backend the driver imported from a module the
    # study does not list
    (user_module / "third_ebops_backend.py").write_text(MODULE.replace("half_ebops", "third_ebops").replace("half-ebops", "third-ebops").replace("/ 2", "/ 3"))
    import third_ebops_backend  # noqa: F401
    try:
        s = synthesize("user_backend", exp.storage_url, "third_ebops", trials=[1])
        assert s.launched == [1] and not s.failed, s.failed
        run = MlflowClient(exp.tracking_uri).get_run(r.run_id)  # trial 1's run
        assert run.data.metrics["third_ebops_lut"] == pytest.approx(r.metrics["ebops"] / 3)
        assert run.data.tags["third_ebops_lut_source"] == "third-ebops"
        namespace: dict = {"__name__": "__main__"}
        exec(MODULE.replace("half_ebops", "script_ebops"), namespace)  # as if defined in the script being run
        with pytest.raises(ConfigError, match=r"--backend: resource backend 'script_ebops' .* is defined in the script being run"):
            synthesize("user_backend", exp.storage_url, "script_ebops", trials=[0])
    finally:
        sys.modules.pop("third_ebops_backend", None)
        for name in ("third_ebops", "script_ebops"):
            _registry._REGISTRY.pop(name, None)

    # a later command reads the stored experiment in a new process: it imports the listed module from PYTHONPATH
    cmd = [sys.executable, "-m", "dse", "report", "user_backend", "--storage", exp.storage_url, "--out", str(tmp_path / "report")]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    found = subprocess.run(cmd, cwd=tmp_path, env={**env, "PYTHONPATH": str(user_module)}, capture_output=True, text=True, timeout=300)
    assert found.returncode == 0, found.stderr
    assert (tmp_path / "report" / "report.html").exists() and "do not load here" not in found.stderr
    # without the module (a study measured where it is installed, read elsewhere): reading the stored figures needs no
    # backend, so report says so and goes on (before: refused); measuring with them is still refused, with the fix
    missing = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    said = " ".join(missing.stderr.split())
    assert missing.returncode == 0, missing.stderr
    assert "study user_backend: its resource backends do not load here" in said, said
    assert "cannot import backend module 'half_ebops_backend'" in said and "PYTHONPATH" in said, said
    assert "unknown resource backend" not in said and "Traceback" not in said  # the cause alone
    assert "half-ebops" in (tmp_path / "report" / "report.html").read_text()  # the stored figures' source
    export = [sys.executable, "-m", "dse", "export", "user_backend", "--trial", "0", "--storage", exp.storage_url,
              "--out", str(tmp_path / "export")]
    exported = subprocess.run(export, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert exported.returncode == 0, exported.stderr
    assert "do not load here" in exported.stderr and (tmp_path / "export" / "README.md").exists()
    measure = [sys.executable, "-m", "dse", "synthesize", "user_backend", "--storage", exp.storage_url, "--backend", "yosys"]
    refused = subprocess.run(measure, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2, refused.stdout + refused.stderr  # a ConfigError
    said = " ".join(refused.stderr.split())
    assert "resources.backend_modules: cannot import backend module 'half_ebops_backend'" in said and "PYTHONPATH" in said, said


def test_a_users_backend_must_come_from_a_listed_module(user_module):
    import half_ebops_backend  # noqa: F401  (registered in this process only)

    with pytest.raises(ValueError, match=r"backend: resource backend 'half_ebops' comes from module 'half_ebops_backend', "
                                         r"which resources.backend_modules does not list; add it \(backend_modules: \[half_ebops_backend\]\)"):
        ResourcesConfig(backend="half_ebops")
    with pytest.raises(ValueError, match="synthesize_front: resource backend 'half_ebops' comes from module"):
        ResourcesConfig(synthesize_front="half_ebops")
    assert ResourcesConfig(backend="half_ebops", backend_modules=["half_ebops_backend"]).backend == "half_ebops"


def test_a_backend_defined_in_the_script_is_refused_with_the_fix():
    namespace: dict = {"__name__": "__main__"}
    exec(MODULE.replace("half_ebops", "script_ebops"), namespace)  # as if defined in the script being run
    try:
        with pytest.raises(ValueError, match=r"'script_ebops' \(HalfEbops\) is defined in the script being run \(__main__\), "
                                             r"which Ray's workers and later dse commands cannot import; move the class into a module"):
            ResourcesConfig(backend="script_ebops")
    finally:
        _registry._REGISTRY.pop("script_ebops", None)


def test_a_backend_module_that_does_not_import_is_named(tmp_path):
    path = write_experiment(tmp_path, resources={"backend": "nowhere", "backend_modules": ["no_such_backend_module"]})
    with pytest.raises(ConfigError) as e:
        load_experiment(path)
    msg = str(e.value)
    assert "resources.backend_modules: cannot import backend module 'no_such_backend_module' (ModuleNotFoundError" in msg
    assert "put the folder that holds it on PYTHONPATH" in msg
    assert "unknown resource backend" not in msg  # not a second error for the consequence


def test_a_module_that_raises_or_registers_nothing_gets_its_own_hint(tmp_path, monkeypatch):
    (tmp_path / "raising_backend_module.py").write_text("raise RuntimeError('boom at import')\n")
    (tmp_path / "empty_backend_module.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with pytest.raises(ValueError, match=r"cannot import backend module 'raising_backend_module' \(RuntimeError: boom at import\); "
                                             r"the module was found but raised while importing; fix it"):
            ResourcesConfig(backend_modules=["raising_backend_module"])
        with pytest.raises(ValueError, match=r"unknown resource backend 'lut_fit'; .*\(none of resources.backend_modules "
                                             r"\['empty_backend_module'\] registers it"):
            ResourcesConfig(backend="lut_fit", backend_modules=["empty_backend_module"])
    finally:
        for name in ("raising_backend_module", "empty_backend_module"):
            sys.modules.pop(name, None)
