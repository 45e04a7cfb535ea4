"""Experiment files: valid ones load with defaults; each bad input names its field and the fix."""

from pathlib import Path

import pytest
import yaml

from dse.config import SamplerConfig, load_experiment
from dse.exceptions import ConfigError, SearchSpaceError
from tests.conftest import REPO, write_experiment


def test_shipped_experiments_load():
    for name in ("quickstart", "jet_tagging"):
        exp, space = load_experiment(REPO / "experiments" / f"{name}.yaml")
        assert exp.name == name
        assert [o.metric for o in exp.objectives] == ["csim_val_accuracy", "lut"]
        assert "strategy" in space.parameters and space.rules
    exp, space = load_experiment(REPO / "experiments" / "ramps.yaml")
    assert exp.training.harvest_checkpoints > 0 and exp.training.epochs >= 60
    assert "beta_end" in space.parameters
    exp, space = load_experiment(REPO / "experiments" / "long_ramp.yaml")  # the HGQ authors' recipe, one trial
    assert exp.n_trials == 1 and exp.training.epochs == 270 and exp.training.harvest_checkpoints == 24
    assert space.possible_values("beta") == [1e-7] and space.possible_values("beta_end") == [1e-3]
    assert space.possible_values("weight_granularity") == ["per-weight"]
    assert space.possible_values("activation_granularity") == ["per-feature"]
    exp, _ = load_experiment(REPO / "experiments" / "quickstart.yaml")
    assert exp.storage_url == f"sqlite:///{Path.cwd() / 'runs' / 'quickstart' / 'optuna.db'}"
    assert exp.tracking_uri.endswith("runs/quickstart/mlflow.db")
    assert exp.sampler.name == "nsga2" and exp.ray.address is None


@pytest.mark.parametrize(
    "fields, expected",
    [
        ({"training": {"epochs": -1}}, "training.epochs: Input should be greater than 0 (got -1)"),
        ({"sampler": {"name": "cmaes"}}, "sampler.name: Input should be 'nsga2', 'tpe' or 'random' (got 'cmaes')"),
        ({"objectives": [{"metric": "speed", "direction": "maximize"}]}, "objectives.0.metric: unknown metric 'speed'; allowed:"),
        ({"objectives": [{"metric": "lut", "direction": "down"}]}, "objectives.0.direction: Input should be 'maximize' or 'minimize'"),
        ({"hls4ml": {"io_type": "io_serial"}}, "hls4ml.io_type: Input should be 'io_parallel' or 'io_stream' (got 'io_serial')"),
        ({"hls4ml": {"clock_period": 0}}, "hls4ml.clock_period: Input should be greater than 0"),
        ({"n_trails": 3}, "n_trails: unknown field; remove it or check its spelling"),
        ({"dataset": {"name": "file"}}, "dataset: dataset.name 'file' needs dataset.path"),
        ({"dataset": {"name": "mnist"}}, "dataset.name: Input should be 'digits', 'jet_hlf' or 'file' (got 'mnist')"),
        ({"name": "bad name!"}, "name: a study name must start with an ASCII letter or digit and hold only ASCII letters (a-z, A-Z)"),
        ({"model": {"hidden": [8, 0]}}, "model.hidden: every hidden layer needs at least 1 unit"),
        # YAML reads `name: 08` as 8: say to quote it (before: "Input should be a valid string (got 8)", no fix)
        ({"name": 8}, "name: Input should be a valid string (got 8); YAML reads an unquoted number as a number (08 as 8): quote"),
        ({"name": True}, "name: Input should be a valid string (got True); YAML reads an unquoted true or false as a boolean"),
    ],
)
def test_bad_experiment_names_field(tmp_path, fields, expected):
    path = write_experiment(tmp_path, **fields)
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    assert expected in str(info.value)
    assert not isinstance(info.value, SearchSpaceError)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_experiment(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_experiment(bad)
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_experiment(bad)
    path = write_experiment(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["search_space"] = "missing_space.yaml"
    path.write_text(yaml.safe_dump(data))
    # probe 40: as written, the folder it is taken from, and where the examples are (an installed dse has none)
    with pytest.raises(SearchSpaceError, match=rf"search_space: 'missing_space.yaml' is taken relative to the experiment "
                                               rf"file's folder \({tmp_path}\): {tmp_path}/missing_space.yaml does not "
                                               r"exist\. .*search_spaces/ folder of dse's source"):
        load_experiment(path)
    data["search_space"] = str(tmp_path / "absent.yaml")  # an absolute path: the file's own check
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(SearchSpaceError, match="search space file .*absent.yaml does not exist"):
        load_experiment(path)


def test_overrides_apply(tmp_path):
    exp, _ = load_experiment(write_experiment(tmp_path), n_trials=7)
    assert exp.n_trials == 7


def test_a_bad_override_is_named_as_the_command_line_s(tmp_path):
    """`dse run x.yaml --n-trials 0`: the file is fine; before, the error read as if its n_trials were 0."""
    from typer.testing import CliRunner

    from dse.cli import app

    path = write_experiment(tmp_path)
    with pytest.raises(ConfigError, match=r"\(n_trials=0 is an argument of load_experiment, not from the file\)"):
        load_experiment(path, n_trials=0)  # from Python: before, it named the command-line option
    result = CliRunner().invoke(app, ["run", str(path), "--n-trials", "0"])
    assert result.exit_code == 2 and "--n-trials 0, not from the file" in " ".join(result.output.split()), result.output
    with pytest.raises(ConfigError) as info:  # a problem in the file itself gets no such note
        load_experiment(write_experiment(tmp_path / "bad", seed="x"), n_trials=3)
    assert "seed" in str(info.value) and "command line" not in str(info.value)


def test_enqueue_trials_are_checked_against_the_search_space(tmp_path):
    """Each enqueued point must be one the search space can produce; the error names the entry, the parameter and the fix."""
    from dse.config import enqueued_params

    exp, space = load_experiment(write_experiment(tmp_path, enqueue_trials=[
        {"strategy": "Resource", "reuse_factor": 4}, {"strategy": "Latency", "beta": 2e-6, "weight_bits": 4},
    ]))
    assert enqueued_params(exp, space) == [
        {"strategy": "Resource", "reuse_factor": 4},  # beta is pinned to 0 by the space's rule: not enqueued
        {"strategy": "Latency", "beta": 2e-6, "weight_bits": 4},
    ]
    bad = {
        "stratgy": "enqueue_trials[0].stratgy: not a parameter of the search space; it has strategy, reuse_factor",
        "weight_bits": "enqueue_trials[0].weight_bits: 9 is outside the range [3, 5]",
        "reuse_factor": "enqueue_trials[0].reuse_factor: 4 is never used here, because its condition {strategy: Resource} "
                        "does not hold",
        "beta": "enqueue_trials[0].beta: 0.5, but rule 'tip' pins it to 0.0 here",
        "learning_rate": "enqueue_trials[0].learning_rate: 0.5 is not one of the choices [0.01, 1e+30]",
    }
    points = {"stratgy": {"stratgy": "Latency"}, "weight_bits": {"weight_bits": 9},
              "reuse_factor": {"strategy": "Latency", "reuse_factor": 4}, "beta": {"strategy": "Resource", "beta": 0.5},
              "learning_rate": {"learning_rate": 0.5}}
    for key, point in points.items():
        with pytest.raises(ConfigError) as info:
            load_experiment(write_experiment(tmp_path, enqueue_trials=[point]))
        assert bad[key] in str(info.value), str(info.value)


def test_a_trial_records_params_as_an_enqueued_point_are_told_what_to_leave_out(tmp_path):
    """Probe 37: the README's retraining steps said to enqueue a trial's recorded parameters; the record's nulls and its
    layer_reuse_factors list got pydantic's four lines each (one per allowed type), its other fields 'not a parameter'
    alone. Each is now one line naming what to leave out, and the record trimmed to the space's parameters loads."""
    from dse.config import TrialParams, enqueued_params

    record = TrialParams(strategy="Latency", weight_bits=4, beta=2e-6, layer_reuse_factors=[1, 1, 1]).model_dump(mode="json")  # as a run records it
    assert record["beta_end"] is None and record["learning_rate"] is None and isinstance(record["layer_reuse_factors"], list)
    with pytest.raises(ConfigError) as info:
        load_experiment(write_experiment(tmp_path, enqueue_trials=[record]))
    said = str(info.value)
    assert "enqueue_trials.0.beta_end: null; leave the parameter out of the point" in said, said
    assert "enqueue_trials.0.learning_rate: null; leave the parameter out" in said, said
    assert "enqueue_trials.0.layer_reuse_factors: a list; a point holds one number, string or true/false" in said, said
    assert ".bool:" not in said and ".float:" not in said and len(said.splitlines()) == 4, said  # the heading + 3
    scalars = {k: v for k, v in record.items() if v is not None and not isinstance(v, list)}
    with pytest.raises(ConfigError) as info:
        load_experiment(write_experiment(tmp_path, enqueue_trials=[scalars]))
    _, space = load_experiment(write_experiment(tmp_path))
    # every field the space does not sample named at once (probe 42: one per `dse check`, three rounds for one point)
    said = " ".join(str(info.value).split())
    unknown = [k for k in scalars if k not in space.parameters]
    assert len(unknown) >= 2 and ", ".join(f"enqueue_trials[0].{k}" for k in unknown) + ": not parameters of the search space" in said, said
    assert "a trial's record holds them, but this space does not sample them: leave them out of the point" in said, said
    point = {k: v for k, v in scalars.items() if k in space.parameters}
    exp, space = load_experiment(write_experiment(tmp_path, enqueue_trials=[point]))
    assert enqueued_params(exp, space)[0]["weight_bits"] == 4
    with pytest.raises(ConfigError, match=r"declare it under parameters to set it, or drop it"):  # a name of no record
        load_experiment(write_experiment(tmp_path, enqueue_trials=[{"stratgy": "Latency"}]))


def test_home_in_paths_is_expanded(tmp_path, monkeypatch):
    """`~/...` in run_dir, dataset.path and search_space is the home directory, never a folder named `~`."""
    home = tmp_path / "home"
    (home / "data").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    exp, _ = load_experiment(write_experiment(tmp_path, run_dir="~/runs/x"))
    assert exp.resolved_run_dir == home / "runs" / "x"
    assert exp.storage_url == f"sqlite:///{home / 'runs' / 'x' / 'optuna.db'}"
    exp, _ = load_experiment(write_experiment(tmp_path, dataset={"name": "file", "path": "~/data/x.npz"}))
    assert exp.dataset.path == home / "data" / "x.npz"
    path = write_experiment(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["search_space"] = "~/data/missing.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    assert f"{home}/data/missing.yaml does not exist" in str(info.value)
    assert "relative paths start at" not in str(info.value), "the path was resolved: where a relative one starts does not apply"


def test_relative_storage_files_are_kept_absolute(tmp_path, monkeypatch):
    """`storage: sqlite:///rel.db` or `x.log` names a file in the current directory (as run_dir); before, the run
    summary printed `sqlite:///rel.db` as given, so it did not say which file held the study."""
    monkeypatch.chdir(tmp_path)
    exp, _ = load_experiment(write_experiment(tmp_path / "a", storage="sqlite:///rel_optuna.db"))
    assert exp.storage_url == f"sqlite:///{tmp_path / 'rel_optuna.db'}"
    exp, _ = load_experiment(write_experiment(tmp_path / "b", storage="studies/x.log"))
    assert exp.storage_url == str(tmp_path / "studies" / "x.log")
    exp, _ = load_experiment(write_experiment(tmp_path / "c", storage="sqlite:///rel.db?timeout=30"))
    assert exp.storage_url == "sqlite:///rel.db?timeout=30"  # URL options: left as given
    # a driver and its passphrase stay: the path alone is made absolute (the review of stop 45: sqlite:///<db>, which
    # opened an encrypted file with plain sqlite)
    exp, _ = load_experiment(write_experiment(tmp_path / "d", storage="sqlite+pysqlcipher://:pass@/enc.db"))
    assert exp.storage_url == f"sqlite+pysqlcipher://:pass@/{tmp_path / 'enc.db'}"
    exp, _ = load_experiment(write_experiment(tmp_path / "e", storage="sqlite+pysqlite:///rel.db"))
    assert exp.storage_url == f"sqlite+pysqlite:///{tmp_path / 'rel.db'}"


def test_readme_documents_every_experiment_field_and_search_parameter():
    """A newcomer writes an experiment and a search space from the README alone. Before, 9 fields that error messages tell
    users to set (dataset.test_fraction, ray.max_concurrent_trials, ...) and 8 search parameters were in no part of it."""
    import re

    from pydantic import BaseModel

    from dse.config import ExperimentConfig, TrialParams
    from tests.conftest import REPO

    readme = (REPO / "README.md").read_text()
    experiment = readme.split("### Experiment file", 1)[1].split("\n## ", 1)[0]
    space = readme.split("### Search space file", 1)[1].split("\n### ", 1)[0]

    def fields(model: type[BaseModel], prefix: str = "") -> list[str]:
        out = []
        for name, info in model.model_fields.items():
            out.append(prefix + name)
            for sub in (info.annotation, *getattr(info.annotation, "__args__", ())):
                if isinstance(sub, type) and issubclass(sub, BaseModel):
                    out += fields(sub, f"{prefix}{name}.")
        return out

    undocumented = [f for f in fields(ExperimentConfig) if not re.search(rf"\b{re.escape(f.split('.')[-1])}\b", experiment)]
    assert not undocumented, f"README's 'Experiment file' section does not name: {undocumented}"
    resolved = {"layer_reuse_factors"}  # the driver's, not a search space's
    missing = [p for p in TrialParams.model_fields if p not in resolved and f"`{p}`" not in space]
    assert not missing, f"README's 'Search space file' section does not list: {missing}"


def test_a_continued_studys_sampler_seed_is_no_other_seeds(tmp_path):
    """Probe 35: a continued study's sampler was seeded with seed + its first trial's number, so a seed-3 study continued
    at trial 8 drew exactly what a fresh seed-11 study draws. A fresh study keeps its seed (it repeats exactly)."""
    import optuna

    from dse.study._samplers import make_sampler

    def draws(seed):
        study = optuna.create_study(sampler=make_sampler(SamplerConfig(name="random"), seed))
        return [study.ask().suggest_float("x", 0, 1) for _ in range(4)]

    three, _ = load_experiment(write_experiment(tmp_path / "a", seed=3))
    eleven, _ = load_experiment(write_experiment(tmp_path / "b", seed=11))
    assert three.sampler_seed_for(0) == 3 and eleven.sampler_seed_for(0) == 11
    assert draws(three.sampler_seed_for(8)) != draws(eleven.sampler_seed_for(0))
    assert three.sampler_seed_for(8) == three.sampler_seed_for(8) != three.sampler_seed_for(9)  # repeatable, per driver
    top, _ = load_experiment(write_experiment(tmp_path / "c", seed=2**32 - 1))
    assert 0 <= top.sampler_seed_for(5) <= 2**32 - 1
