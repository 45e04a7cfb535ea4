"""A PostgreSQL storage that answers but refuses the login: `dse check` says so, and no message shows the password."""

from __future__ import annotations

from typer.testing import CliRunner

from dse.cli import app
from tests.conftest import write_experiment


def test_missing_database_and_wrong_password_are_one_line_each(tmp_path, postgres):
    """Before, `dse check` opened only a TCP connection and printed OK; `dse run` then stopped on a
    550-line OperationalError traceback. And `dse status --storage` printed the password in its error."""
    base = postgres.url.rsplit("/", 1)[0]
    cases = {
        "nodb": (f"{base}/no_such_db", 'database "no_such_db" does not exist'),
        "badpw": (base.replace(postgres.password, "wrong-pw-123") + "/optuna", "password authentication failed"),
    }
    for name, (url, why) in cases.items():
        path = write_experiment(tmp_path / name, name=name, storage=url)
        for cmd in (["check", str(path)], ["run", str(path), "--no-progress"]):
            result = CliRunner().invoke(app, cmd)
            text = " ".join(result.output.split())
            assert result.exit_code == 2, (cmd, result.output)
            assert "storage: the database server of" in text and "refused the login" in text and why in text, text
            assert "Traceback" not in result.output and "wrong-pw-123" not in text and postgres.password not in text, text
        assert not (tmp_path / name / "run").exists()  # refused before anything was created
    status = CliRunner().invoke(app, ["status", "x", "--storage", cases["badpw"][0]])
    text = " ".join(status.output.split())
    assert status.exit_code == 2 and "password authentication failed" in text, text
    assert "wrong-pw-123" not in text and "dse:***@" in text, text
