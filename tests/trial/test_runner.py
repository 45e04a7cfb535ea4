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
