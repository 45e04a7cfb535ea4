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


def test_a_reference_that_expands_to_nothing_is_named(monkeypatch):
    """`path: ${MYDATA:-}` with MYDATA unset: before, the empty path became the experiment's folder, refused as
    `file ... is a directory`, with no word of the variable."""
    monkeypatch.delenv("DSE_T_UNSET", raising=False)
    with pytest.raises(ConfigError, match=r"dataset\.path: '\$\{DSE_T_UNSET:-\}' expands to an empty string \(DSE_T_UNSET: unset"):
        expand_env({"dataset": {"path": "${DSE_T_UNSET:-}"}})
    monkeypatch.setenv("DSE_T_EMPTY", "")
    with pytest.raises(ConfigError, match=r"storage: .* expands to an empty string \(DSE_T_EMPTY"):
        expand_env({"storage": "${DSE_T_EMPTY}"})
    assert expand_env({"name": "a${DSE_T_EMPTY}b"}) == {"name": "ab"}  # a reference inside other text may be empty


def test_a_search_space_does_not_expand_references(tmp_path):
    """Before: `'${STRAT:-Latency}' is not allowed`, with no word that search space files are not expanded."""
    from dse.config import load_search_space
    from dse.exceptions import SearchSpaceError

    (tmp_path / "s.yaml").write_text("parameters:\n  strategy: {type: categorical, choices: ['${STRAT:-Latency}', Resource]}\n")
    with pytest.raises(SearchSpaceError, match=r"parameters\.strategy\.choices\[0\]: '\$\{STRAT:-Latency\}' holds an environment "
                                                r"reference, which only the experiment file expands"):
        load_search_space(tmp_path / "s.yaml")
