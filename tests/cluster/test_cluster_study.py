"""A real tiny study across the services: two Ray nodes, PostgreSQL storage, an MLflow server.

Also the secrets check: the PostgreSQL URL carries a password, and it must appear in no MLflow
param, tag or artifact, no log record of the driver and no Ray worker log.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import write_experiment

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cluster_study(tmp_path_factory, postgres, mlflow_server, ray_cluster):
    """3 trials of the tiny study, storage from ``${DSE_TEST_STORAGE_URL}``, on the two-node cluster."""
    import os

    from dse.config import load_experiment
    from dse.study import run_study

    tmp = tmp_path_factory.mktemp("cluster-study")
    path = write_experiment(
        tmp, n_trials=3, storage="${DSE_TEST_STORAGE_URL}", hls4ml={"csim": "none"},
        mlflow={"tracking_uri": mlflow_server.uri}, ray={"address": ray_cluster.address, "cpus_per_trial": 1},
    )
    assert postgres.password not in path.read_text()  # the secret lives in the environment only
    os.environ["DSE_TEST_STORAGE_URL"] = postgres.url
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler, root = Keep(logging.DEBUG), logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        exp, space = load_experiment(path)
        summary = run_study(exp, space, progress=False)
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        os.environ.pop("DSE_TEST_STORAGE_URL", None)
    log_text = "\n".join(f"{r.name}: {r.getMessage()}" for r in records)
    return exp, summary, log_text


def test_trials_in_postgres(cluster_study, postgres):
    import optuna

    exp, summary, _ = cluster_study
    assert exp.storage_url == postgres.url
    study = optuna.load_study(study_name=exp.name, storage=postgres.url)
    finished = [t for t in study.trials if t.state.is_finished()]
    assert len(finished) == 3
    assert summary.n_complete + summary.n_failed == 3 and summary.n_complete >= 1
    rate = 3 / summary.wall_seconds * 3600
    print(f"\ncluster study: 3 trials in {summary.wall_seconds:.1f} s = {rate:.0f} trials/hour")


def _children(client, exp_name: str):
    e = client.get_experiment_by_name(exp_name)
    runs = client.search_runs([e.experiment_id], max_results=100)
    parent = [r for r in runs if r.data.tags.get("dse.role") == "study"]
    return parent, [r for r in runs if r.data.tags.get("dse.role") == "trial"]


def test_runs_and_artifacts_through_the_server(cluster_study, mlflow_server, tmp_path):
    from mlflow.tracking import MlflowClient

    exp, summary, _ = cluster_study
    client = MlflowClient(mlflow_server.uri)
    parent, children = _children(client, exp.name)
    assert [p.info.run_id for p in parent] == [summary.parent_run_id]
    assert len(children) == 3
    done = [c for c in children if c.data.tags.get("state") == "COMPLETE"]
    assert done
    for run in done:
        assert run.info.artifact_uri.startswith("mlflow-artifacts:"), run.info.artifact_uri  # proxied, not a path
        dst = tmp_path / run.info.run_id
        dst.mkdir()
        model = Path(client.download_artifacts(run.info.run_id, "model.keras", str(dst)))
        cfg = Path(client.download_artifacts(run.info.run_id, "hls4ml_config.yaml", str(dst)))
        assert model.stat().st_size > 1000 and "ReuseFactor" in cfg.read_text()
    assert any(mlflow_server.artifacts.rglob("model.keras"))  # stored by the server, under its destination


def test_trials_ran_on_both_nodes(cluster_study, mlflow_server):
    from mlflow.tracking import MlflowClient

    exp, _, _ = cluster_study
    _, children = _children(MlflowClient(mlflow_server.uri), exp.name)
    nodes = {c.data.tags.get("ray_node_id") for c in children}
    assert None not in nodes, [c.data.tags for c in children]
    assert len(nodes) == 2, nodes


def test_no_password_in_mlflow_or_logs(cluster_study, mlflow_server, postgres, ray_cluster, tmp_path):
    from mlflow.tracking import MlflowClient

    exp, _, log_text = cluster_study
    secret = postgres.password
    client = MlflowClient(mlflow_server.uri)
    parent, children = _children(client, exp.name)
    for run in parent + children:
        for kind, values in (("param", run.data.params), ("tag", run.data.tags)):
            leaked = {k: v for k, v in values.items() if secret in v or secret in k}
            assert not leaked, f"password in {kind}s of run {run.info.run_name}: {list(leaked)}"
        dst = tmp_path / run.info.run_id
        Path(client.download_artifacts(run.info.run_id, "", str(dst)))
        files = [f for f in dst.rglob("*") if f.is_file()]
        if run.data.tags.get("state") != "FAIL":  # a diverged trial stops before saving anything
            assert files, run.info.run_name
        leaked_files = [str(f.relative_to(dst)) for f in files if secret.encode() in f.read_bytes()]
        assert not leaked_files, f"password in artifacts of {run.info.run_name}: {leaked_files}"
    assert parent[0].data.params["storage"] == postgres.url.replace(secret, "***")
    assert secret not in log_text and "DSE_TEST_STORAGE_URL" not in log_text
    assert len(log_text) > 0
    ray_logs = [f for d in ray_cluster.temp_dirs for f in Path(d).rglob("logs/*") if f.is_file()]
    assert ray_logs
    leaked = [str(f) for f in ray_logs if secret.encode() in f.read_bytes()]
    assert not leaked, f"password in Ray logs: {leaked}"


def test_joining_without_the_token_is_refused(ray_cluster, tmp_path):
    """Token auth stays on when joining: a driver with a wrong token gets a ClusterError."""
    code = (
        "import sys\nfrom pathlib import Path\nfrom dse.config import RayConfig\nfrom dse.study import ray_session\n"
        "from dse.exceptions import ClusterError\n"
        f"try:\n    with ray_session(RayConfig(address={ray_cluster.address!r}), Path({str(tmp_path)!r})):\n"
        "        print('JOINED')\nexcept ClusterError as e:\n    print('REFUSED', e)\n"
    )
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(RAY_AUTH_TOKEN="0" * 32, PYTHONPATH=str(REPO), RAY_gcs_rpc_server_connect_timeout_s="5")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert "REFUSED" in out.stdout, out.stdout + out.stderr[-3000:]
    # one whole sentence and the remedy (before: Ray's text cut at 300 characters, then a generic hint)
    assert "it does not accept this driver's token; give this driver the cluster's token: RAY_AUTH_TOKEN=" in out.stdout


@pytest.mark.parametrize("token", ["wrong", "none"])
def test_check_refuses_a_driver_the_cluster_does_not_accept(ray_cluster, tmp_path, token):
    """`dse check` asks the GCS to accept the driver's token (before, it passed, and `dse run` failed about 23 s later);
    with no token at all it says so (Ray's own client would abort the process)."""
    import os
    import time

    exp = write_experiment(tmp_path / "exp", name="tok", ray={"address": ray_cluster.address})
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env["PYTHONPATH"] = str(REPO)
    if token == "wrong":
        env["RAY_AUTH_TOKEN"] = "0" * 32
    else:
        env["HOME"] = str(tmp_path)  # no ~/.ray/auth_token there
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "dse.cli", "check", str(exp)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    text = " ".join((out.stdout + out.stderr).split())
    assert out.returncode == 2, text[-3000:]
    why = "Authentication token is missing or incorrect" if token == "wrong" else "no authentication token was found"
    assert f"error: ClusterError: ray.address: the Ray cluster at {ray_cluster.address} does not accept this driver" in text
    assert why in text and "RAY_AUTH_TOKEN=<token>" in text
    assert "gcs_client.cc" not in text  # the C++ client's own line goes to the debug log
    assert time.monotonic() - t0 < 60
    assert not (tmp_path / "runs").exists()


def test_check_accepts_the_clusters_token(ray_cluster, tmp_path):
    import os

    exp = write_experiment(tmp_path / "exp", name="tok", ray={"address": ray_cluster.address})
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RAY_")}, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-m", "dse.cli", "check", str(exp)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "experiment tok: OK" in out.stdout, out.stdout + out.stderr[-3000:]


def test_cli_reports_mask_the_password(cluster_study, postgres, tmp_path):
    """`dse status` prints the storage it reads, and its errors name it; `dse report`'s page shows it: all without the
    password."""
    import os

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    ok = subprocess.run([sys.executable, "-m", "dse.cli", "status", "tiny", "--storage", postgres.url],
                        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "dse:***@127.0.0.1" in ok.stdout and postgres.password not in ok.stdout + ok.stderr
    bad = subprocess.run([sys.executable, "-m", "dse.cli", "status", "no-such-study", "--storage", postgres.url],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "no study named" in bad.stdout + bad.stderr
    assert postgres.password not in bad.stdout + bad.stderr
    # probe 20: `dse report`'s page (mailed, attached to MLflow) printed the storage URL with its password, and
    # `dse compare`'s error named the argument name@URL as given
    page = tmp_path / "report"
    rep = subprocess.run([sys.executable, "-m", "dse.cli", "report", "tiny", "--storage", postgres.url, "--out", str(page),
                          "--no-mlflow"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert rep.returncode == 0, rep.stdout + rep.stderr
    html = (page / "report.html").read_text()
    assert "dse:***@127.0.0.1" in html and postgres.password not in html + rep.stdout + rep.stderr
    cmp = subprocess.run([sys.executable, "-m", "dse.cli", "compare", f"no-such-study@{postgres.url}", "tiny", "--no-mlflow"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert cmp.returncode != 0 and "study argument 'no-such-study@postgresql" in cmp.stdout + cmp.stderr, cmp.stdout + cmp.stderr
    assert postgres.password not in cmp.stdout + cmp.stderr


def test_check_compares_the_study_a_database_server_holds(cluster_study, postgres, mlflow_server, ray_cluster, tmp_path):
    """Probe 24: `dse check` compared an existing study with the experiment for SQLite and journal files only, so a
    changed experiment passed it and `dse run` refused it. A PostgreSQL storage's study is now compared too (read-only),
    and a database without Optuna's tables holds none."""
    from dse.config import load_experiment
    from dse.exceptions import ConfigError
    from dse.study import preflight

    fields = dict(n_trials=3, storage=postgres.url, hls4ml={"csim": "none"}, mlflow={"tracking_uri": mlflow_server.uri},
                  ray={"address": ray_cluster.address, "cpus_per_trial": 1})
    exp, space = load_experiment(write_experiment(tmp_path / "changed", training={"epochs": 3, "batch_size": 128,
                                                                                  "learning_rate": 0.01}, **fields))
    with pytest.raises(ConfigError, match="was run with another experiment") as info:
        preflight(exp, space)
    assert "training.epochs: 2 -> 3" in str(info.value) and postgres.password not in str(info.value)
    same, space = load_experiment(write_experiment(tmp_path / "same", **fields))
    preflight(same, space)  # the study as it ran: nothing to refuse
    other, space = load_experiment(write_experiment(tmp_path / "other", name="not-there", **fields))
    preflight(other, space)  # no such study in that database: nothing to compare


def test_artifacts_a_server_does_not_proxy_are_warned_of_on_a_cluster(mlflow_server, tmp_path, caplog):
    """Probe 24: an MLflow server that hands out a local artifact path (`--no-serve-artifacts`, or an experiment made with
    one) was accepted without a word; on a cluster each worker writes its artifacts to its own disk there. Warned now,
    not for the proxied experiments dse makes on such a server."""
    import logging

    from mlflow.tracking import MlflowClient

    from dse.config import load_experiment
    from dse.study._orchestrator import _warn_unproxied_artifacts
    from dse.tracking import StudyTracker

    MlflowClient(mlflow_server.uri).create_experiment("pathy", artifact_location=str(tmp_path / "art"))
    exp, _ = load_experiment(write_experiment(tmp_path, mlflow={"tracking_uri": mlflow_server.uri},
                                              ray={"address": "127.0.0.1:6379"}))
    with caplog.at_level(logging.WARNING, logger="dse.study._orchestrator"):
        _warn_unproxied_artifacts(StudyTracker(mlflow_server.uri, "pathy"), exp)
        said = [r.getMessage() for r in caplog.records]
        assert len(said) == 1 and f"keeps its artifacts at {tmp_path / 'art'}, a path on each machine" in said[0], said
        _warn_unproxied_artifacts(StudyTracker(mlflow_server.uri, "proxied"), exp)  # mlflow-artifacts:/...
        assert len(caplog.records) == 1
