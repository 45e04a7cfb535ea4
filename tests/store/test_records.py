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
