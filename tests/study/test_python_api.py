"""dse from Python, as an Optuna user calls it: configs built or changed in code, wrong types, a Ray of one's own."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dse.config import RayConfig, load_experiment
from dse.exceptions import ConfigError
from dse.study import preflight, run_study
from dse.study._ray_session import ray_session
from tests.conftest import write_experiment


def test_run_study_validates_what_it_is_given_before_creating_anything(tmp_path):
    exp, space = load_experiment(write_experiment(tmp_path))
    # pydantic's model_copy, the way to change a frozen config, does not validate: run_study does
    with pytest.raises(ConfigError, match=r"invalid experiment 'tiny' \(built or changed in code\):\n  n_trials: Input should be greater than 0"):
        run_study(exp.model_copy(update={"n_trials": -1}), space, progress=False)
    with pytest.raises(ConfigError, match=r"training.epochs: Input should be greater than 0"):
        run_study(exp.model_copy(update={"training": {**exp.training.model_dump(), "epochs": 0}}), space)  # a dict, too
    # a dict of some of a section's fields would reset the others to their defaults (before: silently)
    with pytest.raises(ConfigError, match=r"  training: model_copy\(update=...\) replaced the whole section with \{'epochs': 3\}, "
                                          r"so batch_size, learning_rate, .* would take their defaults, not the values you loaded; "
                                          r"update the section itself: exp.model_copy\(update=\{'training': "
                                          r"exp.training.model_copy\(update=\{'epochs': 3\}\)\}\)"):
        run_study(exp.model_copy(update={"training": {"epochs": 3}}), space, progress=False)
    with pytest.raises(ConfigError, match=r"  n_trail: unknown field; remove it or check its spelling\n  training.epochz: unknown field"):
        run_study(exp.model_copy(update={"n_trail": 3, "training": exp.training.model_copy(update={"epochz": 3})}), space)
    with pytest.raises(TypeError, match=r"exp: expected an ExperimentConfig, got dict .*load_experiment\(path\)"):
        run_study(exp.model_dump(), space, progress=False)
    with pytest.raises(TypeError, match=r"space: expected a SearchSpace, got PosixPath .*load_search_space\(path\)"):
        run_study(exp, Path("space.yaml"), progress=False)
    with pytest.raises(TypeError, match=r"exp: expected an ExperimentConfig, got str"):
        preflight("experiment.yaml", space)
    with pytest.raises(TypeError, match=r"allow_changed: expected bool, got str 'no'; pass allow_changed=True or allow_changed=False"):
        preflight(exp, space, allow_changed="no")  # before: a true value
    with pytest.raises(TypeError, match=r"keep_files: expected bool, got int '1'"):
        run_study(exp, space, keep_files=1)
    assert not exp.resolved_run_dir.exists()  # nothing created


def test_load_experiment_takes_paths_as_strings_do_and_names_python_overrides(tmp_path, monkeypatch):
    path = write_experiment(tmp_path / "exp")
    monkeypatch.chdir(tmp_path)
    as_str, _ = load_experiment(path, search_space="space.yaml", storage="x.db", run_dir="r")
    as_path, _ = load_experiment(path, search_space=Path("space.yaml"), storage=Path("x.db"), run_dir=Path("r"))
    assert as_path == as_str and as_path.search_space == tmp_path / "exp" / "space.yaml"
    with pytest.raises(ConfigError, match=r"n_trial: unknown field.*\n  \(n_trial=3 is an argument of load_experiment, not from the file\)"):
        load_experiment(path, n_trial=3)
    with pytest.raises(ConfigError, match=r"\(n_trials=0 is an argument of load_experiment, not from the file\)"):
        load_experiment(path, n_trials=0)


def test_preflight_counts_the_cpus_of_a_ray_this_process_started(tmp_path):
    more = (os.cpu_count() or 1) + 1  # more CPUs than the machine has: only a Ray started with them offers them
    exp, space = load_experiment(write_experiment(tmp_path, ray={"cpus_per_trial": more}))
    with pytest.raises(ConfigError, match=rf"the local Ray has {more - 1} \(this machine's CPUs"):
        preflight(exp, space)
    with ray_session(RayConfig(num_cpus=more), tmp_path / "own"):  # as a script's own ray.init would: dse reuses it
        preflight(exp, space)
        with pytest.raises(ConfigError, match=rf"the local Ray has {more} \(the Ray this process already started\)"):
            preflight(exp.model_copy(update={"ray": exp.ray.model_copy(update={"cpus_per_trial": more + 1})}), space)


def test_python_entry_points_name_an_argument_of_the_wrong_type(tmp_path):
    """Before: AttributeError ('str' object has no attribute 'user_attrs'), TypeError ('<=' not supported between
    'int' and 'str'), a bare TypeError of pathlib, and `trials="0"` read as the characters of a string."""
    import optuna

    from dse.export import ExportError, export_design
    from dse.report import build_report
    from dse.study import synthesize

    with pytest.raises(TypeError, match=r"study: expected Study, got str 'quickstart'; load it with dse.study.load_study"):
        build_report("quickstart", "sqlite:///x.db")
    study = optuna.create_study(study_name="plain", storage=f"sqlite:///{tmp_path / 'o.db'}")
    with pytest.raises(TypeError, match=r"number: expected int, got str '0'; give the trial's number"):
        export_design(study, f"sqlite:///{tmp_path / 'o.db'}", "0", tmp_path / "out")
    with pytest.raises(ExportError, match=r"study 'plain' has no trial yet; run it"):  # before: "has trials 0..-1"
        export_design(study, f"sqlite:///{tmp_path / 'o.db'}", 0, tmp_path / "out")
    with pytest.raises(TypeError, match=r"trials: expected a list of trial numbers \(ints\), got str '0'; e.g. \[0, 3\]"):
        synthesize("plain", f"sqlite:///{tmp_path / 'o.db'}", "yosys", trials="0")
    with pytest.raises(TypeError, match=r"front: expected bool, got str 'yes'; pass front=True or front=False"):  # probe 33
        synthesize("plain", f"sqlite:///{tmp_path / 'o.db'}", "yosys", front="yes")
    with pytest.raises(TypeError, match=r"path: expected the experiment file's path \(str or pathlib.Path\), got int '3'"):
        load_experiment(3)
    assert not (tmp_path / "out").exists()
