"""A user's resource backend, named by ``resources.backend_modules``: known to the driver, every
Ray worker (trials and re-measurements) and every later command that reads the study."""

from __future__ import annotations

import os
import re
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
def user_module(user_modules):
    """``half_ebops_backend.py`` in a folder of its own, on the driver's ``sys.path`` (Ray passes that path to its workers)."""
    return user_modules("half_ebops_backend", MODULE)


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


def test_a_module_that_raises_or_registers_nothing_gets_its_own_hint(user_modules):
    user_modules("raising_backend_module", "raise RuntimeError('boom at import')\n")
    user_modules("empty_backend_module", "X = 1\n")
    with pytest.raises(ValueError, match=r"cannot import backend module 'raising_backend_module' \(RuntimeError: boom at import\); "
                                         r"the module was found but raised while importing; fix it"):
        ResourcesConfig(backend_modules=["raising_backend_module"])
    with pytest.raises(ValueError, match=r"unknown resource backend 'lut_fit'; .*\(none of resources.backend_modules "
                                         r"\['empty_backend_module'\] registers it"):
        ResourcesConfig(backend="lut_fit", backend_modules=["empty_backend_module"])


def _class(name="checked_ebops", sources=("checked-ebops",), measure=True, base=None, module="checked_module"):
    """A backend class as a user's module would define it (not registered)."""
    from dse.resources import ResourceBackend

    body: dict = {"name": name, "sources": sources, "__module__": module}
    if measure:
        body["measure"] = lambda self, design: None
    return type("Checked", (base or ResourceBackend,), body)


@pytest.mark.parametrize("kwargs, error", [
    ({"measure": False}, r"Checked does not implement measure \(def measure\(self, design\) -> ResourceReport\)"),
    ({"name": "auto"}, r"the name 'auto' is resources.backend's rule .* choose another `name`"),
    ({"name": 42}, r"`name` must be a non-empty string \(the resources.backend value\), got 42"),
    ({"sources": "abc"}, r"`sources` must be a tuple of non-empty strings, e.g. sources = \('checked_ebops-fit',\), got 'abc'"),
    ({"sources": ("yosys",)}, r"source 'yosys' is that of dse's 'yosys' backend, and figures are compared by their source; "
                              r"name your own \(e.g. 'checked_ebops-yosys'\), or subclass YosysBackend"),
    ({"name": "ebops"}, r"resource backend name 'ebops' is taken by EbopsBackend"),
])
def test_register_backend_refuses_a_class_that_would_misbehave_later(kwargs, error):
    """Before, each registered: an abstract class crashed `dse check` with a traceback, `auto` never ran, `42` became a
    backend name, "abc" three sources a, b, c, and a user's figures could be labelled as Yosys's."""
    from dse.resources import register_backend

    with pytest.raises(ValueError, match=error):
        register_backend(_class(**kwargs))
    assert "checked_ebops" not in _registry._REGISTRY and 42 not in _registry._REGISTRY
    with pytest.raises(ValueError, match=r"Dict is not a subclass of dse.resources.ResourceBackend; subclass it"):
        register_backend(type("Dict", (dict,), {"name": "d"}))


def test_a_reloaded_backend_module_registers_again_and_a_subclass_keeps_its_source():
    """Jupyter's autoreload defines the class again: before, 'name is taken by' the class itself."""
    from dse.resources import YosysBackend, register_backend

    try:
        first = register_backend(_class())
        again = register_backend(_class())  # the same module and class, defined again
        assert first is not again and _registry._REGISTRY["checked_ebops"] is again
        assert register_backend(_class(name="tuned_yosys", sources=("yosys",), base=YosysBackend)).sources == ("yosys",)
    finally:
        for name in ("checked_ebops", "tuned_yosys"):
            _registry._REGISTRY.pop(name, None)


def test_figures_and_reports_hold_numbers_only():
    """Before, Figure(None), Figure(nan) and Figure(-500) were accepted: None crashed the driver's tell (the study stuck,
    its trial RUNNING), NaN made a trial COMPLETE in MLflow and FAIL in Optuna with no reason, -500 LUTs led the front;
    a string extra dropped every metric of the trial's MLflow run."""
    import math

    import numpy as np

    from dse.resources import Figure, ResourceReport

    for bad in (None, "12", math.nan, math.inf, -500.0, True):
        with pytest.raises(ValueError, match=r"a resource figure \(LUTs, DSPs, FFs, cycles\) must be a finite number >= 0"):
            Figure(bad, "yosys")
    assert Figure(np.int64(12), "yosys").value == 12.0 and type(Figure(np.int64(12), "yosys").value) is float
    with pytest.raises(ValueError, match=r"extras\['bad'\] is 'x' \(str\); extras are numbers, logged as MLflow metrics"):
        ResourceReport("yosys", {"lut": Figure(1, "yosys")}, extras={"bad": "x"})
    with pytest.raises(ValueError, match=r"figures\['lut'\] is 12 \(int\); give Figure\(value, source\)"):
        ResourceReport("yosys", {"lut": 12})
    with pytest.raises(ValueError, match=r"ResourceReport\('yosys'\): 'luts!' is no MLflow metric name \(.*Names may only contain"):
        ResourceReport("yosys", {"lut": Figure(1, "yosys")}, extras={"luts!": 1.0})


def test_objective_values_name_what_optuna_cannot_take():
    from dse.config import ObjectiveConfig
    from dse.exceptions import MeasurementError
    from dse.store import objective_values

    objs = [ObjectiveConfig(metric="csim_accuracy", direction="maximize"), ObjectiveConfig(metric="lut", direction="minimize")]
    assert objective_values(objs, {"csim_accuracy": 0.9, "lut": 12}) == [0.9, 12.0]
    for metrics, said in (({"csim_accuracy": 0.9}, "objective 'lut' missing from the trial's metrics"),
                          ({"csim_accuracy": float("nan"), "lut": 1}, "objective 'csim_accuracy' is nan, not a finite number"),
                          ({"csim_accuracy": 0.9, "lut": None}, "objective 'lut' is None (NoneType), not a number")):
        with pytest.raises(MeasurementError, match=re.escape(said)):
            objective_values(objs, metrics)


BROKEN = textwrap.dedent('''
    """Backends with a user's mistakes: a dict for Latency designs, a LUT of None for distributed_arithmetic ones."""
    from dse.resources import Figure, ResourceBackend, ResourceReport, register_backend


    @register_backend
    class Broken(ResourceBackend):
        name = "broken"
        sources = ("broken",)

        def measure(self, design):
            if design.params.strategy == "Latency":
                return {"lut": 1.0}
            return ResourceReport(self.name, {"lut": Figure(None, "broken"), "dsp": Figure(0.0, "broken")})
''')


@pytest.mark.shared_ray  # a Ray started before the module was on sys.path: the folder reaches the workers all the same
@pytest.mark.slow  # 25-60 s on a 2-core host: SLOW=1 bash scripts/test.sh (README, Testing)
def test_a_users_backend_measures_in_the_workers_and_later_commands_load_it(tmp_path, user_module, user_modules):
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
    user_modules("third_ebops_backend", MODULE.replace("half_ebops", "third_ebops").replace("half-ebops", "third-ebops").replace("/ 2", "/ 3"))
    import third_ebops_backend  # noqa: F401

    s = synthesize("user_backend", exp.storage_url, "third_ebops", trials=[1])
    assert s.launched == [1] and not s.failed, s.failed
    run = MlflowClient(exp.tracking_uri).get_run(r.run_id)  # trial 1's run
    assert run.data.metrics["third_ebops_lut"] == pytest.approx(r.metrics["ebops"] / 3)
    assert run.data.tags["third_ebops_lut_source"] == "third-ebops"
    namespace: dict = {"__name__": "__main__"}
    exec(MODULE.replace("half_ebops", "script_ebops"), namespace)  # as if defined in the script being run
    with pytest.raises(ConfigError, match=r"--backend \(Python: backend=\): resource backend 'script_ebops' .* is defined in the script being run"):
        synthesize("user_backend", exp.storage_url, "script_ebops", trials=[0])

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
    # the study named by its experiment file (--experiment): the file's backends are not needed to read it either
    # (before: `resources.backend_modules: cannot import ...`, exit 2)
    by_file = [sys.executable, "-m", "dse", "status", "--experiment", str(tmp_path / "exp" / "experiment.yaml")]
    status = subprocess.run(by_file, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert status.returncode == 0, status.stdout + status.stderr
    assert "trials: 2 complete" in status.stdout and "do not load here" in status.stderr, status.stdout + status.stderr
    measure = [sys.executable, "-m", "dse", "synthesize", "user_backend", "--storage", exp.storage_url, "--backend", "yosys"]
    refused = subprocess.run(measure, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2, refused.stdout + refused.stderr  # a ConfigError
    said = " ".join(refused.stderr.split())
    assert "resources.backend_modules: cannot import backend module 'half_ebops_backend'" in said and "PYTHONPATH" in said, said


@pytest.mark.shared_ray
def test_a_backends_mistakes_fail_their_trials_with_a_reason_and_the_study_goes_on(tmp_path, user_modules):
    """Before, the LUT of None raised TypeError in the driver's tell: the study stopped with its trial RUNNING, and each
    later `dse run` failed it as DriverLostError, re-enqueued it and crashed again; a dict gave "'dict' object has no
    attribute 'metrics'"."""
    user_modules("broken_backend", BROKEN)
    exp, space = load_experiment(write_experiment(
        tmp_path / "exp", name="broken", n_trials=2, space=SPACE, hls4ml={"csim": "none"},
        resources={"backend": "broken", "backend_modules": ["broken_backend"]},
        enqueue_trials=[{"strategy": "Latency"}, {"strategy": "distributed_arithmetic"}],
    ))
    summary = run_study(exp, space, progress=False)
    study = optuna.load_study(study_name="broken", storage=exp.storage_url)
    reasons = {TrialRecord.of(t).params.strategy: TrialRecord.of(t).fail_reason for t in study.trials}
    assert [t.state.name for t in study.trials] == ["FAIL", "FAIL"] and summary.n_failed == 2, reasons
    assert reasons["Latency"].startswith("MeasurementError: resource backend 'broken': measure() returned dict"), reasons
    assert "it must return a ResourceReport (or raise MeasurementError)" in reasons["Latency"]
    assert reasons["distributed_arithmetic"].startswith("ValueError: Figure(None, 'broken'): a resource figure"), reasons


@pytest.mark.shared_ray
@pytest.mark.parametrize("figures", ['("lut", "dsp", "latency_cycles")', "None"])
def test_a_users_backend_that_leaves_out_a_declared_figure_is_told_so(tmp_path, user_modules, figures):
    """Probe 18: a backend declaring latency_cycles in `figures` but not reporting it failed its trials with "not
    measured by resource backend ...; choose objectives that backend measures", though it claims to measure it. A
    backend that declares no figures (None, the default) is told to choose objectives it measures."""
    module = MODULE.replace("half_ebops", "partial_ebops").replace("half-ebops", "partial-ebops").replace(
        'figures = ("lut", "dsp")', f"figures = {figures}")
    if figures != "None":  # its report leaves out its declared dsp too (the review of stop 45: the EBOPs estimate's
        # dsp stood in, labelled ebops-estimate, and the trial completed on it)
        module = module.replace(', "dsp": Figure(0.0, "partial-ebops")', "")
    user_modules("partial_ebops_backend", module)
    exp, space = load_experiment(write_experiment(
        tmp_path / "exp", name="partial", n_trials=1, hls4ml={"csim": "none"},
        space={"parameters": {"strategy": {"type": "categorical", "choices": ["Latency"]}}},
        objectives=[{"metric": "csim_accuracy", "direction": "maximize"}, {"metric": "latency_cycles", "direction": "minimize"},
                    {"metric": "dsp", "direction": "minimize"}],
        resources={"backend": "partial_ebops", "backend_modules": ["partial_ebops_backend"]}))
    summary = run_study(exp, space, progress=False)
    assert summary.n_complete == 0
    (reason,) = [why for _, why in summary.failures.values()]
    if figures == "None":
        assert "MeasurementError: objective(s) ['latency_cycles'] not measured by resource backend 'partial_ebops'" in reason
        assert "choose objectives that backend measures" in reason, reason
        return
    assert "MeasurementError: objective(s) ['latency_cycles', 'dsp'] not in the report of resource backend 'partial_ebops'" in reason, reason
    assert "although the backend declares them in its `figures`" in reason and "choose objectives" not in reason, reason
