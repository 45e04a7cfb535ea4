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
        # no host (a socket, or host= in the query): the URL keeps its /// (probe 24: shown as postgresql+psycopg:/optuna)
        ("postgresql+psycopg:///optuna?host=h&user=dse&password=SeCrEt", "postgresql+psycopg:///optuna?host=h&user=dse&password=***"),
        ("http://h/x?pwd=1#frag", "http://h/x?pwd=***#frag"),
        ("mysql://h/db?pwd=abc#", "mysql://h/db?pwd=***#"),  # an empty fragment (the review: `?ppwd=***`)
        ("mysql://h/db?pwd=ab\ncd", "mysql://h/db?pwd=***"),  # a newline (the second review: ValueError)
        ("mysql://h/db?pw\td=1&password=x", "mysql://h/db?pw\td=1&password=***"),
        # '/' in a password, as SQLAlchemy reads it (probe 30: shown whole in status, MLflow, reports and compare.csv)
        ("postgresql+psycopg://dse2:SECRET/PWslash@127.0.0.1:5432/optuna", "postgresql+psycopg://dse2:***@127.0.0.1:5432/optuna"),
        ("mysql://u:p/w@x@host:3306/db?a=b@c", "mysql://u:***@host:3306/db?a=b@c"),
        ("http://host:8080/path@x", "http://host:8080/path@x"),  # a port and a path, no password
        ("postgresql://h/db?sslpassword=k", "postgresql://h/db?sslpassword=***"),
        # SQLAlchemy reads `1234/56` and `a?b#c` as passwords (before: shown, read as a port and a path, or a query)
        ("postgresql://u:1234/56@db:5432/optuna", "postgresql://u:***@db:5432/optuna"),
        ("postgresql+psycopg://u:a?b#c@db/optuna?sslmode=require", "postgresql+psycopg://u:***@db/optuna?sslmode=require"),
        ("http://u:1234/56@host", "http://u:1234/56@host"),  # http: a port and a path, as requests reads it
        # a user name holding '@', as Azure's PostgreSQL logins do (the review of stop 45: shown whole); no password
        ("postgresql://admin@myserver:S3cret@myserver.postgres.database.azure.com/optuna",
         "postgresql://admin@myserver:***@myserver.postgres.database.azure.com/optuna"),
        ("postgresql://user@host:5432/db", "postgresql://user@host:5432/db"),
        ("postgresql://user@host/db", "postgresql://user@host/db"),
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


def test_a_reference_that_expands_to_nothing_is_null_and_named(monkeypatch, tmp_path):
    """`path: ${MYDATA:-}` with MYDATA unset: before, the empty path became the experiment's folder, refused as
    `file ... is a directory`, with no word of the variable. Now such a value is null (the field's default), and an
    error it causes names it."""
    from dse.config import load_experiment
    from tests.conftest import write_experiment

    monkeypatch.delenv("DSE_T_UNSET", raising=False)
    monkeypatch.setenv("DSE_T_EMPTY", "")
    assert expand_env({"dataset": {"path": "${DSE_T_UNSET:-}"}, "storage": "${DSE_T_EMPTY}", "name": "a${DSE_T_EMPTY}b",
                       "l": ["${DSE_T_UNSET:-}"]}) == {
        "dataset": {}, "name": "ab", "l": [None]}  # left out; a reference inside other text may be empty; a list item null
    path = write_experiment(tmp_path, dataset={"name": "file", "path": "${DSE_T_UNSET:-}"}, mlflow={"tracking_uri": "${DSE_T_UNSET:-}"})
    with pytest.raises(ConfigError, match=r"dataset\.name 'file' needs dataset\.path[\s\S]*\(dataset\.path is "
                                          r"'\$\{DSE_T_UNSET:-\}', which expanded to nothing, so it is left out\)"):
        load_experiment(path)
    # an optional field: null is its default (here the run directory's MLflow store), as `${MLFLOW_TRACKING_URI:-}` means
    exp, _ = load_experiment(write_experiment(tmp_path / "ok", mlflow={"tracking_uri": "${DSE_T_UNSET:-}"}))
    assert exp.mlflow.tracking_uri is None and exp.tracking_uri.endswith("/mlflow.db")
    # a field whose default is not null takes that default (probe 42: `n_trials: ${NT:-}` was refused as "Input should
    # be a valid integer (got None)", though the README says such a value is the field's default)
    from dse.config import ExperimentConfig

    exp, _ = load_experiment(write_experiment(tmp_path / "n", n_trials="${DSE_T_UNSET:-}"))
    assert exp.n_trials == ExperimentConfig.model_fields["n_trials"].default


def test_a_search_space_does_not_expand_references(tmp_path):
    """Before: `'${STRAT:-Latency}' is not allowed`, with no word that search space files are not expanded."""
    from dse.config import load_search_space
    from dse.exceptions import SearchSpaceError

    (tmp_path / "s.yaml").write_text("parameters:\n  strategy: {type: categorical, choices: ['${STRAT:-Latency}', Resource]}\n")
    with pytest.raises(SearchSpaceError, match=r"parameters\.strategy\.choices\[0\]: '\$\{STRAT:-Latency\}' holds an environment "
                                                r"reference, which only the experiment file expands"):
        load_search_space(tmp_path / "s.yaml")
    # unquoted in a flow mapping it is no valid YAML: the hint is not to quote it (probe 42: quoting it, as the hint for
    # an experiment file says, led to the refusal above)
    (tmp_path / "s.yaml").write_text("parameters:\n  weight_bits: {type: int, low: ${LOW}, high: 8}\n")
    with pytest.raises(SearchSpaceError) as info:
        load_search_space(tmp_path / "s.yaml")
    said = str(info.value)
    assert "is not valid YAML" in said and "a search space file expands no ${NAME} reference" in said, said
    assert "quote a ${NAME}" not in said, said
