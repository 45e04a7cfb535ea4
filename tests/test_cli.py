"""The `dse` command line: status of a real study, clear errors with exit code 2."""

from typer.testing import CliRunner

from dse.cli import app
from tests.conftest import write_experiment

runner = CliRunner()


def test_status_shows_counts_and_front(tiny_study):
    exp, summary, study = tiny_study
    result = runner.invoke(app, ["status", exp.name, "--storage", exp.storage_url])
    assert result.exit_code == 0, result.output
    assert f"trials: {summary.n_complete} complete, {summary.n_failed} failed, 0 running" in result.output
    assert "Pareto front" in result.output and "ebops-estimate" in result.output.replace("\n", "")


def test_status_unknown_study(tiny_study):
    exp, _, _ = tiny_study
    result = runner.invoke(app, ["status", "nosuch", "--storage", exp.storage_url])
    assert result.exit_code == 2
    assert "no study named 'nosuch'" in result.output and "tiny" in result.output


def test_check_reports_bad_config(tmp_path):
    path = write_experiment(tmp_path, training={"epochs": 0})
    result = runner.invoke(app, ["check", str(path)])
    assert result.exit_code == 2
    assert "training.epochs" in result.output
    ok = runner.invoke(app, ["check", str(write_experiment(tmp_path / "ok"))])
    assert ok.exit_code == 0 and "'n_classes': 10" in ok.output
