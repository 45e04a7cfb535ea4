"""The `dse` command line: status of a real study, clear errors with exit code 2."""

import pandas as pd
import pytest
from typer.testing import CliRunner

from dse.cli import app
from tests.conftest import write_experiment

pytestmark = pytest.mark.shared_ray  # in-process studies share one local Ray (tests/conftest.py)

runner = CliRunner()


def test_status_shows_counts_and_front(tiny_study):
    exp, summary, study = tiny_study
    result = runner.invoke(app, ["status", exp.name, "--storage", exp.storage_url])
    assert result.exit_code == 0, result.output
    assert f"trials: {summary.n_complete} complete, {summary.n_failed} failed, 0 running" in result.output
    assert "Pareto front" in result.output and "ebops-estimate" in result.output.replace("\n", "")
    # each failed trial's reason (probe 16: before, a count, and no reason anywhere in `dse status`)
    failed = [t.number for t in study.trials if t.state.name == "FAIL"]
    assert failed, "the tiny space's learning rate 1e30 diverges"
    which = f"trial {failed[0]}" if len(failed) == 1 else f"trials {', '.join(map(str, failed))}"
    assert f"  failed: {which}: TrainingDivergedError: training diverged" in result.output, result.output


def test_status_of_an_experiment_file_reads_its_study(tiny_study):
    """`dse status experiment.yaml` said "no study named 'experiment.yaml'"; it reads the file's study, as --experiment does."""
    exp, summary, _ = tiny_study
    result = runner.invoke(app, ["status", str(exp.search_space.parent / "experiment.yaml")])
    assert result.exit_code == 0 and f"trials: {summary.n_complete} complete" in result.output, result.output


def test_status_json_is_the_front_csv_and_the_counts(tiny_study):
    """Before, `dse status` printed prose and a box table with thousands separators only: nothing a script could parse."""
    import json

    exp, summary, study = tiny_study
    result = runner.invoke(app, ["status", exp.name, "--storage", exp.storage_url, "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["study"] == exp.name and doc["counts"]["complete"] == summary.n_complete
    assert doc["counts"]["failed"] == summary.n_failed and doc["experiment_history"] == [] and doc["orphaned_running"] == []
    assert doc["failures"][0]["type"] == "TrainingDivergedError" and doc["failures"][0]["trials"]
    csv = pd.read_csv(exp.resolved_run_dir / "pareto_front.csv")
    assert [r["trial"] for r in doc["front"]] == list(csv["trial"])
    assert [r["lut"] for r in doc["front"]] == list(csv["lut"])
    accuracy = exp.objectives[0].metric  # a fraction of many digits: as stored (pandas' to_json kept 10)
    assert [r[accuracy] for r in doc["front"]] == [study.trials[n].values[0] for n in csv["trial"]]


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
    assert ok.exit_code == 0 and "64 features, 10 classes" in ok.output


def test_an_ascii_terminal_gets_non_ascii_paths_escaped(tmp_path, monkeypatch):
    """`PYTHONIOENCODING=ascii` (or an ASCII locale's terminal) and a folder named étude: the path is printed escaped.
    Before, printing it raised UnicodeEncodeError, which ended a finished study's `dse run` with exit 1 and no summary."""
    import io
    import sys

    from dse.cli import main

    path = write_experiment(tmp_path / "étude")
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="ascii")  # errors="strict", as Python opens an ASCII stdout
    monkeypatch.setattr(sys, "stdout", stdout)
    monkeypatch.setattr(sys, "argv", ["dse", "check", str(path)])
    with pytest.raises(SystemExit) as done:
        main()
    stdout.flush()
    text = stdout.buffer.getvalue().decode("ascii")
    assert done.value.code in (0, None), text
    assert f"search space {tmp_path}/\\xe9tude/space.yaml" in text, text


def test_mlflows_store_tracebacks_are_left_to_the_error_dse_reports(caplog, monkeypatch):
    """MLflow logs each SQLite error of its store with its traceback before it raises it: a study on a full disk printed
    some 280 lines before dse's one `error:` line. Without -v they are dropped; other MLflow warnings are kept."""
    import logging

    import optuna

    from dse.cli import _NO_STORE_TRACEBACKS, _setup_logging

    monkeypatch.delenv("MLFLOW_LOGGING_LEVEL", raising=False)  # what _setup_logging sets is undone after the test
    store = logging.getLogger("mlflow.store.db.utils")
    verbosity = optuna.logging.get_verbosity()
    try:
        _setup_logging(False)
        with caplog.at_level(logging.WARNING):
            try:
                raise OSError(28, "No space left on device")
            except OSError as e:
                store.exception("SQLAlchemy database error. The following exception is caught.\n%s", e)
            store.warning("another warning")
    finally:
        store.removeFilter(_NO_STORE_TRACEBACKS)
        optuna.logging.set_verbosity(verbosity)
    assert [r.getMessage() for r in caplog.records] == ["another warning"]


def test_status_names_running_trials_of_a_driver_that_is_gone(tiny_study, tmp_path):
    """A copy of the study with a RUNNING trial stamped by an exited process of this machine, as `kill -9` of `dse run` leaves it."""
    import json
    import re
    import sqlite3
    import subprocess
    import sys
    import time
    from contextlib import closing

    import optuna

    from dse.store import record_heartbeat
    from dse.study._liveness import this_driver

    exp, summary, _ = tiny_study
    db = tmp_path / "optuna.db"
    with closing(sqlite3.connect(exp.storage_url.removeprefix("sqlite:///"))) as src, closing(sqlite3.connect(db)) as dst:
        src.backup(dst)  # the store is in WAL mode: a file copy could miss what the log still holds
    study = optuna.load_study(study_name=exp.name, storage=f"sqlite:///{db}")
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    record_heartbeat(study.ask(), "killed", time.time(), {**this_driver(), "pid": proc.pid, "start": 1})
    result = runner.invoke(app, ["status", exp.name, "--storage", f"sqlite:///{db}"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert f"{summary.n_complete} complete, {summary.n_failed} failed, 1 running" in text
    assert f"running trials {summary.n_complete + summary.n_failed} belong to a driver on this machine that is gone" in text
    assert "`dse run` again fails them as DriverLostError" in text
    assert "no heartbeat from" not in text  # said once, as orphaned
    # a driver whose heartbeats carry no process id (another machine, or a dse before the pid): said once its heartbeat
    # is older than the study's heartbeat_grace_s (probe 39: "2 running" for minutes, unexplained); a fresh one is not
    grace = exp.heartbeat_grace_s
    old, fresh = study.ask(), study.ask()
    record_heartbeat(old, "elsewhere", time.time() - grace - 300)
    record_heartbeat(fresh, "alive", time.time())
    result = runner.invoke(app, ["status", exp.name, "--storage", f"sqlite:///{db}"])
    text = " ".join(result.output.split())
    said = re.search(rf"running trial {old.number}: no heartbeat from its driver for (\d+) s or more, past the study's "
                     rf"heartbeat_grace_s \({grace:g} s\): the driver looks gone .* the next `dse run` fails it as DriverLostError", text)
    assert said and grace + 300 <= int(said.group(1)) <= grace + 360, text  # seconds since the stamp, rounded down
    doc = json.loads(runner.invoke(app, ["status", exp.name, "--storage", f"sqlite:///{db}", "--json"]).output)
    silent = doc["silent_running"]
    assert list(silent) == [str(old.number)], silent  # the killed driver's trial is orphaned, with a fresh heartbeat
    assert silent[str(old.number)] >= grace + 300


def test_calibrate_against_a_backend_no_trial_of_the_study_suits(tiny_study):
    """Yosys measures distributed_arithmetic designs only; the tiny study has Latency/Resource trials: the error says so
    instead of sending the user to `dse synthesize --front --backend yosys`, which would measure nothing."""
    exp, _, _ = tiny_study
    result = runner.invoke(app, ["calibrate", exp.name, "--storage", exp.storage_url, "--backend", "yosys"])
    text = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert "'yosys' measures distributed_arithmetic designs only, and study 'tiny' has none" in text, text
    assert "dse synthesize tiny --front" not in text


def test_synthesize_that_measures_nothing_writes_no_front(tiny_study):
    """Yosys skips every trial of the tiny study (Latency/Resource). Before, it printed "front on yosys figures: trials
    []" and wrote and attached an empty pareto_front_yosys.csv."""
    exp, _, _ = tiny_study
    result = runner.invoke(app, ["synthesize", exp.name, "--storage", exp.storage_url, "--backend", "yosys", "--front"])
    text = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert "0 measured, 0 from cache" in text and "skipped: yosys measures distributed_arithmetic designs" in text, text
    assert "no trial was measured with yosys, so there is no front on its figures and no CSV" in text, text
    assert not (exp.resolved_run_dir / "pareto_front_yosys.csv").exists()


def test_every_command_takes_verbose(tmp_path):
    """`-v` on every command (before, status, check and calibrate refused it); with it, check logs its steps."""
    import subprocess
    import sys

    from tests.conftest import REPO

    for command in ("run", "status", "synthesize", "calibrate", "check", "report", "compare", "export"):
        assert "--verbose" in runner.invoke(app, [command, "--help"]).output, command
    path = write_experiment(tmp_path)
    quiet = subprocess.run([sys.executable, "-m", "dse", "check", str(path)], cwd=tmp_path, capture_output=True, text=True,
                           env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, timeout=300)
    loud = subprocess.run([sys.executable, "-m", "dse", "check", "-v", str(path)], cwd=tmp_path, capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert quiet.returncode == loud.returncode == 0, loud.stderr[-2000:]
    assert "INFO dse.data._datasets: dataset digits" in loud.stderr and "INFO" not in quiet.stderr, (loud.stderr, quiet.stderr)


def test_study_name_comes_from_the_experiment_when_left_out(tiny_study, tmp_path):
    exp, summary, _ = tiny_study
    path = write_experiment(tmp_path, run_dir=str(exp.run_dir), storage=exp.storage_url)
    result = runner.invoke(app, ["status", "--experiment", str(path)])
    assert result.exit_code == 0, result.output
    assert f"study {exp.name} (" in result.output
    assert f"trials: {summary.n_complete} complete" in result.output
    calib = runner.invoke(app, ["calibrate", "--experiment", str(path), "--backend", "da4ml"])
    assert f"study {exp.name!r} has none" in calib.output.replace("\n", " ")  # it read the study the experiment names
    neither = runner.invoke(app, ["status"])
    assert neither.exit_code == 2
    assert "give the study name" in neither.output and "--experiment" in neither.output


@pytest.mark.parametrize("args", [["--help"], ["check", "--help"], ["run", "--help"]])
def test_help_points_to_the_example_files_and_the_field_reference(args):
    """A newcomer with only `--help` finds where the experiment and search space formats are shown (before: nowhere)."""
    from tests.conftest import REPO

    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.replace("│", " ").split())
    for example in ("experiments/quickstart.yaml", "search_spaces/default.yaml"):
        assert example in said and (REPO / example).is_file(), said
    assert "README.md lists every field and search parameter" in said, said


def test_a_changed_space_whose_stored_form_no_longer_validates_says_it_cannot_be_restored(tmp_path, monkeypatch):
    """A study begun under a dse whose checks were looser (probe 15: a `beta_schedule` without `beta_end`, since refused):
    the refusal of a changed space no longer only says "restore those fields", which this dse would refuse."""
    import copy

    import yaml

    from tests.conftest import TINY_SPACE
    from tests.report.synthetic import make_study

    study, _, exp = make_study(tmp_path, n_trials=2, name="loose", failures=False)
    stored = copy.deepcopy(TINY_SPACE)
    stored["parameters"]["beta_schedule"] = {"type": "categorical", "choices": ["linear", "log"]}
    study.set_user_attr("search_space", stored)  # as the earlier dse stored it
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(TINY_SPACE, sort_keys=False))  # what the user can write now
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["check", str(tmp_path / "experiment.yaml")])
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and "search_space.parameters.beta_schedule" in said, said
    assert "the stored search space does not validate with this dse" in said and "beta_end" in said, said
    assert "cannot be restored, and --allow-changed continues the study" in said, said


def test_check_warns_of_a_beta_range_in_other_units(tmp_path, caplog):
    """`beta: {low: 1, high: 1000}` ran without a word (probe 14): trials complete, but the EBOPs term outweighs the task
    loss. `dse check` passes and warns; the shipped range does not warn."""
    import logging

    space = {"parameters": {"beta": {"type": "float", "low": 1.0, "high": 1000.0, "log": True}}}
    with caplog.at_level(logging.WARNING, logger="dse.study._preflight"):
        result = runner.invoke(app, ["check", str(write_experiment(tmp_path / "big", space=space))])
    assert result.exit_code == 0, result.output
    assert "parameters.beta reaches 1000: HGQ2's EBOPs term weighs about 1e-7..1e-3" in caplog.text, caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dse.study._preflight"):
        result = runner.invoke(app, ["check", str(write_experiment(tmp_path / "ok"))])
    assert result.exit_code == 0 and "reaches" not in caplog.text, caplog.text


def test_check_warns_of_a_clock_frequency_written_as_a_period(tmp_path, caplog):
    """`clock_period: 200` (200 MHz meant) passed `dse check` without a word, and '200 MHz' was only "not a valid number"
    (probe 16). Now the first is warned of with the period to write, the second refused with it."""
    import logging

    with caplog.at_level(logging.WARNING, logger="dse.study._preflight"):
        result = runner.invoke(app, ["check", str(write_experiment(tmp_path / "mhz", hls4ml={"clock_period": 200}))])
    assert result.exit_code == 0, result.output
    assert "hls4ml.clock_period is 200 ns, a 5 MHz clock: the period is in ns (5.0 = 200 MHz); for a 200 MHz clock write clock_period: 5" in caplog.text
    caplog.clear()
    result = runner.invoke(app, ["check", str(write_experiment(tmp_path / "text", hls4ml={"clock_period": "200 MHz"}))])
    assert result.exit_code == 2 and "'200 MHz' is a frequency; clock_period is the period in ns, a number: for 200 MHz write clock_period: 5" in " ".join(result.output.split())
    result = runner.invoke(app, ["check", str(write_experiment(tmp_path / "zero", hls4ml={"clock_period": "0 MHz"}))])
    assert result.exit_code == 2 and "'0 MHz' is a frequency" in result.output and "Traceback" not in result.output, result.output
    with caplog.at_level(logging.WARNING, logger="dse.study._preflight"):
        result = runner.invoke(app, ["check", str(write_experiment(tmp_path / "ghz", hls4ml={"clock_period": 0.2}))])
    assert result.exit_code == 0 and "hls4ml.clock_period is 0.2 ns, a 5000 MHz clock, beyond any FPGA fabric" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dse.study._preflight"):
        result = runner.invoke(app, ["check", str(write_experiment(tmp_path / "ok"))])
    assert result.exit_code == 0 and "clock_period" not in caplog.text, caplog.text


def test_check_warns_of_more_ray_cpus_than_the_machine_has(tmp_path):
    """Probe 42: `ray: {num_cpus: 8}` on a 2-core machine passed `dse check` without a word; 8 trials then share 2 cores.
    Warned of now; max_concurrent_trials within the cores is not. (A `dse check` process of its own: this module's
    tests share an in-process Ray, whose own CPUs count instead of ray.num_cpus.)"""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    cores = len(os.sched_getaffinity(0))

    def check(name: str, ray: dict) -> str:
        done = subprocess.run([sys.executable, "-m", "dse", "check", str(write_experiment(tmp_path / name, ray=ray))],
                              env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr[-3000:]
        return " ".join(done.stderr.split())

    said = check("many", {"num_cpus": cores + 6})
    assert (f"ray.num_cpus: {cores + 6}, but this process may use {cores} CPU(s): {cores + 6} trials run at once "
            "(ray.cpus_per_trial 1 each), sharing cores") in said, said
    assert "ray.num_cpus" not in check("bounded", {"num_cpus": cores + 6, "max_concurrent_trials": cores})


def test_ray_address_auto_is_resolved_and_checked_by_check(tmp_path):
    """`ray.address: auto` (cluster.yaml's) was left to Ray: `dse check` passed and `dse run` failed only after creating
    the stores (probe 22). It is now resolved as ray.init resolves it and checked: here RAY_ADDRESS names a closed port."""
    path = write_experiment(tmp_path, ray={"address": "auto"})
    result = runner.invoke(app, ["check", str(path)], env={"RAY_ADDRESS": "127.0.0.1:1"})
    text = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert "ray.address (auto: 127.0.0.1:1): no Ray cluster reachable at 127.0.0.1:1" in text, text


def test_ray_address_auto_never_guesses_among_several_clusters(tmp_path, monkeypatch):
    """Probe 24: with several Ray clusters on the machine and no `ray start` file to settle it, Ray's `auto` takes any one
    of them (an unordered set): `dse check` passed once and was refused the next time, joining another user's local Ray.
    dse now refuses, naming them; one cluster, or the last `ray start`'s, is taken as before. (The processes Ray finds
    are what is simulated here: a second real cluster would need its own head.)"""
    import ray._private.services as services

    from dse.study._ray_session import resolve_auto_address

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(services, "find_bootstrap_address", lambda temp_dir: None)
    monkeypatch.setattr(services, "find_gcs_addresses", lambda: {"127.0.0.1:45393", "127.0.0.1:26379"})
    path = write_experiment(tmp_path, ray={"address": "auto"})
    result = runner.invoke(app, ["check", str(path)])
    text = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert "ray.address: auto found 2 Ray clusters on this machine (127.0.0.1:26379, 127.0.0.1:45393;" in text, text
    assert "will not guess among them; give the head's host:port as ray.address" in text, text
    monkeypatch.setattr(services, "find_gcs_addresses", lambda: {"127.0.0.1:26379"})
    assert resolve_auto_address() == "127.0.0.1:26379"
    monkeypatch.setattr(services, "find_gcs_addresses", lambda: {"127.0.0.1:45393", "127.0.0.1:26379"})
    monkeypatch.setattr(services, "find_bootstrap_address", lambda temp_dir: "127.0.0.1:45393")  # the last `ray start`
    assert resolve_auto_address() == "127.0.0.1:45393"
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.9:6379")
    assert resolve_auto_address() == "10.0.0.9:6379"


def test_printed_paths_are_verbatim_and_compare_counts_no_waiting_trial(tiny_study, tmp_path):
    """Before, `--out 'r[/]x'` ended in rich's MarkupError (exit 1, after the files were written) and `'rep[bold]x'`
    printed `repx`; a long path was cut over lines in a pipe; `dse compare` counted enqueued, never-run trials."""
    import sqlite3
    from contextlib import closing

    import optuna

    exp, summary, study = tiny_study
    db = tmp_path / "optuna.db"
    with closing(sqlite3.connect(exp.storage_url.removeprefix("sqlite:///"))) as src, closing(sqlite3.connect(db)) as dst:
        src.backup(dst)
    optuna.load_study(study_name=exp.name, storage=f"sqlite:///{db}").enqueue_trial({})  # WAITING, never run
    out = tmp_path / ("r[/]x" + "_long" * 50)
    result = runner.invoke(app, ["report", exp.name, "--storage", f"sqlite:///{db}", "--no-mlflow", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"report: {out / 'report.html'}  (" in result.output  # one line, as written
    out = tmp_path / "cmp[bold]x"
    result = runner.invoke(app, ["compare", f"{exp.name}@sqlite:///{db}", f"{exp.name}@{exp.storage_url}", "--no-mlflow",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"page: {out / 'compare.html'}; table: {out / 'compare.csv'}" in result.output
    rows = pd.read_csv(out / "compare.csv")
    assert list(rows["trials"]) == [len(study.trials)] * 2, rows  # the copy's enqueued trial left out


def test_global_verbose_and_version():
    """`dse -v status x` was "No such option: -v" though the README says every command takes -v; there was no --version."""
    from importlib.metadata import version

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith(f"dse {version('fpga-dse')}"), result.output
    import dse.cli

    result = runner.invoke(app, ["-v", "status", "nosuch", "--storage", "sqlite:////nonexistent/optuna.db"])
    assert result.exit_code == 2 and "no study named 'nosuch'" in result.output, result.output
    assert dse.cli._VERBOSE_ALL  # what _setup_logging reads: INFO
    runner.invoke(app, ["status", "nosuch", "--storage", "sqlite:////nonexistent/optuna.db"])
    assert not dse.cli._VERBOSE_ALL
    assert "Exit codes: 0 done" in " ".join(runner.invoke(app, ["--help"]).output.split())
