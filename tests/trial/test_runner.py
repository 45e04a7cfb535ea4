"""Worker-side helpers of dse.trial._runner."""

import gc

from dse.trial import _runner


def test_freeze_imports_once_per_process(monkeypatch):
    """The first call moves every live object to the permanent generation; later calls do nothing."""
    monkeypatch.setattr(_runner, "_imports_frozen", False)
    before = gc.get_freeze_count()
    try:
        _runner._freeze_imports()
        frozen = gc.get_freeze_count()
        assert frozen > before and frozen > 10_000  # at least the interpreter's and the test session's modules
        junk = [[i] for i in range(1000)]  # new objects stay collectable
        _runner._freeze_imports()
        # a second freeze would add the 1,001 new lists; frozen objects may still be freed by refcount (a few, by other threads)
        assert gc.get_freeze_count() < frozen + 500
        del junk
    finally:
        gc.unfreeze()


_IMPORT_CHECK = """
import os, sys
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
{pre}
from dse.trial._runner import _import_keras
keras = _import_keras()
print("sklearn_after_keras", "sklearn" in sys.modules)
import sklearn.model_selection  # later code still gets scikit-learn
print("sklearn_later", sklearn.model_selection.train_test_split.__name__)
try:
    keras.wrappers.SKLearnClassifier(model=lambda: None)
    print("wrappers", "usable")
except ImportError:
    print("wrappers", "disabled")
"""


def _run_import_check(pre: str) -> dict[str, str]:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _IMPORT_CHECK.format(pre=pre)], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)


def test_import_keras_skips_scikit_learn_in_a_fresh_worker():
    """A fresh process imports Keras without scikit-learn (0.8 s saved per worker), and can still import it later."""
    got = _run_import_check("")
    assert got["sklearn_after_keras"] == "False"
    assert got["sklearn_later"] == "train_test_split"
    assert got["wrappers"] == "disabled"  # Keras' scikit-learn wrappers alone are off in this process


def test_import_keras_leaves_a_process_that_has_scikit_learn_as_it_is():
    """A driver that has imported scikit-learn keeps Keras' scikit-learn wrappers."""
    got = _run_import_check("import sklearn")
    assert got["sklearn_after_keras"] == "True"
    assert got["wrappers"] == "usable"


def test_a_distributed_arithmetic_trial_converts_with_hls4ml_only_where_it_may_join_the_front(tmp_path, digits_splits,
                                                                                            user_modules):
    """hls4ml's distributed_arithmetic conversion solves every layer's multiplication with da4ml again (0.8 s of a
    quickstart trial, 103 s of a 784-input one in probe 41), and under `csim: front` da4ml's emulation and cost model
    already check and measure the design. It now runs after the measurement, and only where the trial may join the
    front; a Latency trial, or one whose figure backend needs the hls4ml model, converts first, as before."""
    from mlflow import MlflowClient

    from dse.config import TrialParams, load_experiment
    from dse.trial import TrialSpec
    from dse.trial._runner import run_trial
    from tests.conftest import write_experiment

    folder = user_modules("hls_model_backend", (
        "from dse.resources import Figure, ResourceBackend, ResourceReport, register_backend\n\n"
        "@register_backend\n"
        "class NeedsHlsModel(ResourceBackend):\n"
        "    name, sources, figures = 'needs_hls_model', ('hls-model',), ('lut', 'dsp')\n\n"
        "    def measure(self, design):\n"
        "        assert design.hls_model is not None\n"
        "        return ResourceReport(self.name, figures={'lut': Figure(design.ebops, 'hls-model'), 'dsp': Figure(0.0, 'hls-model')})\n"))
    exp, _ = load_experiment(write_experiment(tmp_path, mlflow={"tracking_uri": f"sqlite:///{tmp_path}/mlflow.db"}))
    assert exp.hls4ml.csim == "front" and [o.metric for o in exp.objectives] == ["csim_val_accuracy", "lut"]
    client = MlflowClient(exp.tracking_uri)
    experiment_id = client.create_experiment("t")

    def run(number, strategy, front, experiment=exp):
        spec = TrialSpec(experiment=experiment, params=TrialParams(strategy=strategy, beta=1e-6), number=number,
                         run_id=client.create_run(experiment_id).info.run_id, work_dir=tmp_path / f"trial_{number}",
                         front=front, import_folders=(str(folder),))
        result = run_trial(spec, digits_splits)
        assert result.state == "COMPLETE", result.error
        return result

    dominated = run(0, "distributed_arithmetic", ((1.0, 0.0),))  # a front member better in both objectives
    assert dominated.tags["hls4ml_convert"] == "skipped-dominated" and "seconds_convert_hls4ml" not in dominated.metrics
    assert dominated.tags["csim"] == "da4ml" and dominated.metrics["bit_exact_fraction"] == 1.0
    may_join = run(1, "distributed_arithmetic", None)  # no front known: it may join
    assert may_join.tags["hls4ml_convert"] == "run" and may_join.metrics["seconds_convert_hls4ml"] > 0
    assert may_join.tags["csim_accuracy_source"] == "da4ml" and may_join.metrics["csim_accuracy"] == may_join.metrics["da4ml_accuracy"]
    latency = run(2, "Latency", ((1.0, 0.0),))
    assert "hls4ml_convert" not in latency.tags and latency.tags["csim"] == "skipped-dominated"
    # a figure backend that needs the hls4ml model: converted first, and still emulated by da4ml (the review: its
    # emulated accuracy was overwritten by Keras' in the first version of this change)
    needs = exp.model_copy(update={"resources": exp.resources.model_copy(update={
        "backend": "needs_hls_model", "backend_modules": ["hls_model_backend"]})})
    converted_first = run(3, "distributed_arithmetic", ((1.0, 0.0),), needs)
    assert "hls4ml_convert" not in converted_first.tags and converted_first.tags["lut_source"] == "hls-model"
    assert converted_first.tags["csim"] == "da4ml" and converted_first.tags["csim_accuracy_source"] == "da4ml"
    assert converted_first.metrics["csim_accuracy"] == converted_first.metrics["da4ml_accuracy"]
