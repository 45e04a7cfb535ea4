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
