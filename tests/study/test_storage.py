"""Opening one new Optuna database from several processes at once (a driver starting while `dse status` reads it)."""

from __future__ import annotations

import multiprocessing as mp

import optuna

from dse.study._storage import rdb_storage


def _open(url: str, barrier) -> str | None:
    from dse.study._storage import driver_storage

    barrier.wait()
    try:
        driver_storage(url)
    except Exception as e:  # reported to the test, which names it
        return f"{type(e).__name__}: {e}"[:300]
    return None


def test_processes_creating_one_sqlite_store_at_once_all_succeed(tmp_path):
    # Without the retry, 4 processes released together lose the race on Optuna's alembic_version
    # table in about one round out of two here (IntegrityError / "table alembic_version already exists").
    ctx = mp.get_context("spawn")
    errors = []
    with ctx.Manager() as manager, ctx.Pool(4) as pool:
        for i in range(6):
            url = f"sqlite:///{tmp_path / f'race_{i}.db'}"
            barrier = manager.Barrier(4)
            errors += [e for e in pool.starmap(_open, [(url, barrier)] * 4) if e]
            study = optuna.create_study(study_name="s", storage=rdb_storage(url))
            assert study.study_name == "s"
    assert errors == []

