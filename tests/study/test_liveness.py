"""A lost driver's trials: known dead on this machine at once, elsewhere after the heartbeat grace."""

from __future__ import annotations

import subprocess
import sys
import time

import optuna
import pytest

from dse.store import StudyRecords, record_heartbeat
from dse.study._liveness import driver_is_dead, this_driver

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process liveness reads /proc")


def _beat_of(proc: subprocess.Popen) -> dict:
    """The heartbeat fields a driver running as ``proc`` would record (its PID space is ours)."""
    from dse._proc import proc_stat

    return {**this_driver(), "pid": proc.pid, "start": proc_stat(proc.pid).start}


def _running_trial(tmp_path, driver: str, now: float, process: dict | None) -> tuple[optuna.Study, StudyRecords]:
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'o.db'}", study_name="s", load_if_exists=True)
    record_heartbeat(study.ask(), driver, now, process)
    return study, StudyRecords(study)


def test_this_driver_is_alive_and_records_where_it_runs():
    me = this_driver()
    assert set(me) == {"pid_space", "pid", "start"} and me["pid_space"].count("/") == 1
    assert driver_is_dead(me) is False


def test_a_driver_process_is_dead_once_it_exits_or_its_pid_is_reused():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        beat = _beat_of(proc)
        assert driver_is_dead(beat) is False
        assert driver_is_dead({**beat, "start": beat["start"] + 1}) is True, "another process under the same id"
        proc.kill()
        for _ in range(50):  # a zombie until reaped: dead already
            if driver_is_dead(beat):
                break
            time.sleep(0.1)
        assert driver_is_dead(beat) is True
    finally:
        proc.kill()
        proc.wait()
    assert driver_is_dead(beat) is True


def test_heartbeats_from_elsewhere_or_older_versions_are_never_judged_by_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    dead_here = {**this_driver(), "pid": proc.pid, "start": 1}
    assert driver_is_dead(dead_here) is True
    assert driver_is_dead({**dead_here, "pid_space": "another-machine/pid:[1]"}) is False
    assert driver_is_dead({"driver": "old", "time": 0.0}) is False
    assert driver_is_dead({**this_driver(), "pid": "x"}) is False
    assert driver_is_dead({**this_driver(), "pid": 0}) is False and driver_is_dead({**this_driver(), "pid": -1}) is False


def test_stale_trials_takes_a_dead_local_driver_at_once_and_a_remote_one_after_the_grace(tmp_path):
    now = time.time()
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        study, records = _running_trial(tmp_path, "local", now, _beat_of(proc))
        _running_trial(tmp_path, "remote", now, {"pid_space": "another-machine/pid:[1]", "pid": 1, "start": 1})
        stale = lambda t: [x.number for x in records.stale_trials(600, t, exclude_driver="me", dead=driver_is_dead)]  # noqa: E731
        assert stale(now + 1) == [], "both drivers alive or unknown, within the grace"
        proc.kill()
        proc.wait()
        assert stale(now + 1) == [0], "the local driver's process is gone: its trial is stale at once"
        assert stale(now + 601) == [0, 1], "the remote driver is stale after the grace"
        assert [x.number for x in records.stale_trials(600, now + 1, exclude_driver="local", dead=driver_is_dead)] == []
        assert records.heartbeat_of(study.trials[0])["driver"] == "local"
    finally:
        proc.kill()
        proc.wait()


def test_a_process_proc_does_not_show_is_asked_of_the_kernel():
    """With ``/proc`` mounted ``hidepid``, another user's driver has no ``/proc`` entry; signal 0 still finds it."""
    import os

    from dse.study._liveness import _exists

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert _exists(os.getpid()) is True
    assert _exists(proc.pid) is False
