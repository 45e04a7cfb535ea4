"""StudyRecords on in-memory Optuna studies: what its docstrings promise for bad records and numbers."""

from __future__ import annotations

import optuna
import pytest

from dse.exceptions import ConfigError
from dse.store import StudyRecords


def _study() -> optuna.Study:
    study = optuna.create_study(study_name="records")
    study.add_trial(optuna.trial.create_trial(value=1.0))
    return study


def test_a_trial_number_the_study_lacks_is_an_index_error():
    """Before (probe 33), ``trial(-1)`` returned the last trial, counted from the end."""
    records = StudyRecords(_study())
    assert records.trial(0).number == 0
    for number in (-1, 1):
        with pytest.raises(IndexError, match=rf"study 'records' has no trial {number} \(it has trials 0 to 0\)"):
            records.trial(number)


def test_an_earlier_experiment_that_no_longer_validates_is_a_config_error():
    """Before (probe 33), pydantic's ValidationError escaped ``experiment_of_version``, documented as ConfigError."""
    study = _study()
    study.set_user_attr("experiment_history", [{"experiment": {"name": "x"}, "until_trial": 3, "changed": []}])
    with pytest.raises(ConfigError, match=r"experiment version 1 stored with study 'records' \(before trial 3\) does not "
                                          r"validate here(.|\n)*search_space: Field required"):
        StudyRecords(study).experiment_of_version(1)


def test_a_trial_without_a_version_tag_is_read_with_the_experiment_its_number_ran_under(tmp_path):
    """Probe 39: a trial of a dse before the `dse.experiment_version` tag, in a study continued twice with
    --allow-changed, was exported with the latest experiment (a testbench from another split, a README with another
    epoch count). Without the tag its number picks the version (`until_trial`); a tag still wins."""
    from dse.config import load_experiment
    from tests.conftest import write_experiment

    exp, space = load_experiment(write_experiment(tmp_path, training={"epochs": 3}))
    study = optuna.create_study(study_name="versions", directions=["maximize", "minimize"])
    records = StudyRecords(study)
    for epochs, trials in ((3, 2), (4, 2), (5, 1)):  # trials 0-1 with 3 epochs, 2-3 with 4, 4 with 5 (the current)
        later = exp.model_copy(update={"training": exp.training.model_copy(update={"epochs": epochs})})
        records.save_experiment(later, space, None, records.experiment_diff(later, space) if study.trials else None)
        for _ in range(trials):
            study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL))
    assert [h["until_trial"] for h in records.experiment_history()] == [2, 4]
    read = [records.experiment_of_version(None, trial=n)[0].training.epochs for n in range(5)]
    assert read == [3, 3, 4, 4, 5], read
    assert records.experiment_of_version("2", trial=0)[0].training.epochs == 4  # the tag, where a trial has one
    assert records.experiment_of_version(None)[0].training.epochs == 5  # nothing known: the current one, as before


def test_yosys_latency_labels_of_earlier_studies_read_as_da4ml():
    """Before 2026-12-07 Yosys' latency_cycles (da4ml's stage count) was tagged yosys; read as da4ml, as now written
    (probe 31: `dse compare` called the two equal computations not comparable)."""
    from dse.store import current_source_labels

    from dse.store import TrialRecord

    trial = optuna.trial.create_trial(value=1.0, user_attrs={"tags": {"lut_source": "yosys", "latency_cycles_source": "yosys"}})
    assert TrialRecord.of(trial).tags == {"lut_source": "yosys", "latency_cycles_source": "da4ml"}
    old = {"lut_source": "yosys", "latency_cycles_source": "yosys", "yosys_latency_cycles_source": "yosys"}
    assert current_source_labels(old) == {"lut_source": "yosys", "latency_cycles_source": "da4ml",
                                          "yosys_latency_cycles_source": "da4ml"}
    assert old["latency_cycles_source"] == "yosys"  # a copy
    assert current_source_labels({"latency_cycles_source": "vitis-hls"}) == {"latency_cycles_source": "vitis-hls"}
