"""PostgreSQL goes away under a running `dse run`: a brief outage is ridden out, a long one stops the driver clearly."""

from __future__ import annotations

import time

import optuna
import pytest

from tests.conftest import write_experiment
from tests.study.test_faults import FAST_SPACE, _driver, _wait_for


def _experiment(tmp_path, retry_s: float, name: str):
    return write_experiment(
        tmp_path, space=FAST_SPACE, name=name, n_trials=2, storage="${DSE_TEST_STORAGE_URL}", storage_retry_s=retry_s,
        training={"epochs": 25, "batch_size": 128, "learning_rate": 0.01}, heartbeat_interval_s=1, hls4ml={"csim": "none"},
        ray={"num_cpus": 1, "max_concurrent_trials": 1},
    )


def _running(url: str, name: str):
    def check():
        try:
            study = optuna.load_study(study_name=name, storage=url)
        except Exception:  # not created yet
            return False
        return study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
    return check


@pytest.mark.slow  # 25-60 s on a 2-core host: SLOW=1 bash scripts/test.sh (README, Testing)
def test_brief_outage_is_retried(tmp_path, postgres, monkeypatch):
    monkeypatch.setenv("DSE_TEST_STORAGE_URL", postgres.url)
    path = _experiment(tmp_path, retry_s=60, name="brief")
    log = tmp_path / "driver.log"
    proc = _driver(path, tmp_path, log)
    try:
        _wait_for(_running(postgres.url, "brief"), 300, "a running trial", proc, log)
        postgres.stop()
        time.sleep(6)  # the driver heartbeats every second: it meets the outage
        postgres.start()
        assert proc.wait(timeout=600) == 0, log.read_text()[-3000:]
    finally:
        proc.kill()
    text = log.read_text()
    assert "storage unavailable during" in text and "retrying in" in text
    study = optuna.load_study(study_name="brief", storage=postgres.url)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    assert postgres.password not in text


def test_long_outage_stops_the_driver_clearly(tmp_path, postgres, monkeypatch):
    monkeypatch.setenv("DSE_TEST_STORAGE_URL", postgres.url)
    path = _experiment(tmp_path / "long", retry_s=3, name="long")
    log = tmp_path / "long.log"
    proc = _driver(path, tmp_path, log)
    try:
        _wait_for(_running(postgres.url, "long"), 300, "a running trial", proc, log)
        postgres.stop()
        t0 = time.time()
        code = proc.wait(timeout=180)
        stopped_after = time.time() - t0
    finally:
        proc.kill()
        postgres.start()
    text = log.read_text()
    assert code == 2, text[-3000:]
    assert "StorageUnavailableError: lost the Optuna storage" in text and "storage_retry_s=3" in text
    assert "Traceback" not in text
    assert stopped_after < 120
    study = optuna.load_study(study_name="long", storage=postgres.url)
    assert study.trials, "what was recorded before the outage is kept"
    assert postgres.password not in text
