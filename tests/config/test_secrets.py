"""redact_url / redact_secrets and ${VAR} expansion in experiment files."""

from __future__ import annotations

import pytest

from dse.config import expand_env, redact_secrets, redact_url
from dse.exceptions import ConfigError


@pytest.mark.parametrize(
    "url, expected",
    [
        ("postgresql+psycopg://dse:s3cret@db:5432/optuna", "postgresql+psycopg://dse:***@db:5432/optuna"),
        ("postgresql://dse:p@ss@db/optuna", "postgresql://dse:***@db/optuna"),
        ("http://user:tok@mlflow:5000", "http://user:***@mlflow:5000"),
        ("mysql+pymysql://root@db/x?password=pw&charset=utf8", "mysql+pymysql://root@db/x?password=***&charset=utf8"),
        ("sqlite:////tmp/run/optuna.db", "sqlite:////tmp/run/optuna.db"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("not a url", "not a url"),
    ],
)
def test_redact_url(url, expected):
    assert redact_url(url) == expected


def test_redact_secrets_walks_the_config():
    cfg = {"storage": "postgresql://u:pw@h/db", "ray": {"address": None, "n": 1}, "l": ["http://a:b@c"]}
    assert redact_secrets(cfg) == {"storage": "postgresql://u:***@h/db", "ray": {"address": None, "n": 1}, "l": ["http://a:***@c"]}


def test_expand_env(monkeypatch):
    monkeypatch.setenv("DSE_T_URL", "postgresql://u:pw@h/db")
    monkeypatch.delenv("DSE_T_UNSET", raising=False)
    data = {"storage": "${DSE_T_URL}", "ray": {"address": "${DSE_T_UNSET:-auto}"}, "n": 3, "s": "plain $HOME"}
    assert expand_env(data) == {"storage": "postgresql://u:pw@h/db", "ray": {"address": "auto"}, "n": 3, "s": "plain $HOME"}
    with pytest.raises(ConfigError, match=r"ray\.address: environment variable DSE_T_UNSET is not set"):
        expand_env({"ray": {"address": "${DSE_T_UNSET}"}})
