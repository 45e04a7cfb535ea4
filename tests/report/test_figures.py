"""Report data functions against Optuna on a real study (tiny_study) and on Optuna studies built by hand."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from optuna._hypervolume import compute_hypervolume  # the reference implementation the data functions must agree with

from dse.report import front_frame
from dse.report._figures import (
    Objective,
    failure_counts,
    front_members_table,
    hypervolume,
    hypervolume_history,
    objectives,
    pair_points,
    param_importances,
    parallel_frame,
    reference_point,
)
from dse.store import TrialRecord


def test_front_agrees_with_optuna_best_trials(tiny_study):
    _, _, study = tiny_study
    best = sorted(t.number for t in study.best_trials)
    assert sorted(front_frame(study)["trial"]) == best
    # objectives are (csim_accuracy max, lut min): the 2-D front of that pair is Optuna's front
    pts = pair_points(study, "csim_accuracy", "lut")
    assert sorted(pts.loc[pts["on_front"], "trial"]) == best
    assert set(pts["source"]) == {"ebops-estimate"} and not pts["precise"].any()
    members = front_members_table(study)
    assert sorted(members["trial"]) == best
    assert {"strategy", "reuse_factor", "keras_accuracy", "csim_accuracy", "lut", "lut_source", "mlflow_run_id"} <= set(members.columns)


def test_hypervolume_agrees_with_optuna(tiny_study):
    _, _, study = tiny_study
    objs = objectives(study)
    hist, ref = hypervolume_history(study)
    loss = np.array([[o.sign * v for o, v in zip(objs, t.values)] for t in study.best_trials])
    assert hist["hypervolume"].iloc[-1] == pytest.approx(compute_hypervolume(loss, ref))
    assert hist["hypervolume"].iloc[-1] > 0
    assert list(hist["trial"]) == [t.number for t in study.trials]
    assert (np.diff(hist["hypervolume"]) >= 0).all(), "the front's hypervolume never shrinks"
    assert ref[0] == 0.0  # accuracy reference 0


@pytest.mark.parametrize("k", [1, 2, 3])
def test_hypervolume_random_points(k):
    rng = np.random.default_rng(k)
    loss = rng.random((40, k))
    ref = np.full(k, 1.1)
    assert hypervolume(loss, ref) == pytest.approx(compute_hypervolume(loss, ref))


@pytest.mark.parametrize("k", [2, 3])
def test_hypervolume_history_and_front_mask_agree_with_optuna_at_every_trial(k):
    """Probe 38: the history recomputed the hypervolume of every point so far after each trial (quadratic: 1.3 s at
    2,000 trials), and the front mask compared every point with every other. Now the history updates when a point joins
    the front, and the mask is Optuna's sort: the same values, with ties, dominated points, points outside the reference
    box and failed trials among them."""
    from dse.report._figures import pareto_mask

    rng = np.random.default_rng(k)
    study = optuna.create_study(directions=["maximize"] + ["minimize"] * (k - 1))
    study.set_metric_names(["csim_accuracy", "lut", "ebops"][:k])
    values = np.round(rng.random((120, k)), 1)  # coarse: many ties and duplicates
    values[:, 1:] *= 1000
    for i, v in enumerate(values):
        state = optuna.trial.TrialState.FAIL if i % 9 == 4 else optuna.trial.TrialState.COMPLETE
        study.add_trial(optuna.trial.create_trial(state=state, values=None if state.name == "FAIL" else list(v)))
    ref = np.array([-0.2] + [800.0] * (k - 1))  # leaves some points outside the box
    hist, _ = hypervolume_history(study, ref)
    loss = np.column_stack([-values[:, 0], values[:, 1:]])
    done = []
    for i, t in enumerate(study.trials):
        if t.state.name == "COMPLETE":
            done.append(loss[i])
        inside = np.array([p for p in done if np.all(p < ref)]).reshape(-1, k)
        expected = compute_hypervolume(inside, ref) if len(inside) else 0.0
        assert hist["hypervolume"].iloc[i] == pytest.approx(expected, rel=1e-12, abs=0), i
    complete = np.array(done)
    mask = pareto_mask(complete)
    brute = [not any(np.all(q <= p) and np.any(q < p) for q in complete) for p in complete]
    assert mask.tolist() == brute
    best = {t.number for t in study.best_trials}
    numbers = [t.number for t in study.trials if t.state.name == "COMPLETE"]
    assert {n for n, m in zip(numbers, mask) if m} == best
    # a row holding NaN neither dominates nor is dominated, as in the comparison of every pair (the review: Optuna's
    # sort let [nan, nan] remove the finite [1, 0])
    assert pareto_mask(np.array([[-np.inf, np.nan], [np.nan, np.nan], [1.0, 0.0], [1.0, np.nan]])).tolist() == [True] * 4
    holes = complete.copy()
    holes[::7, -1] = np.nan
    brute = [bool(np.isnan(p).any()) or not any(np.all(q <= p) and np.any(q < p) for q in holes) for p in holes]
    assert pareto_mask(holes).tolist() == brute


def test_reference_point_stated_in_natural_units():
    objs = [Objective("csim_accuracy", "maximize"), Objective("lut", "minimize")]
    ref = reference_point(np.array([[0.9, 1000.0], [0.5, 200.0]]), objs)
    assert ref.tolist() == [0.0, 1100.0]


def test_failures_and_parameters_from_records(tiny_study):
    _, summary, study = tiny_study
    assert failure_counts(study) == {"TrainingDivergedError": summary.n_failed}
    par = parallel_frame(study)
    complete = [TrialRecord.of(t) for t in study.trials if t.state.name == "COMPLETE"]
    assert sorted(par["trial"]) == [r.number for r in complete]
    if "beta" in par:
        for _, row in par.iterrows():
            rec = next(r for r in complete if r.number == row["trial"])
            assert row["beta"] == rec.params.beta  # the trained value (0 under the Resource rule), not Optuna's encoding


def test_importances_respect_each_direction():
    """Objective 0 (maximized) depends on x only, objective 1 (minimized) on y only."""
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=0))
    study.set_metric_names(["csim_accuracy", "lut"])

    def f(t):
        x, y = t.suggest_float("x", 0, 1), t.suggest_float("y", 0, 1)
        t.suggest_float("noise", 0, 1)
        return x, 1000 * y

    study.optimize(f, n_trials=40)
    imp = param_importances(study)
    assert max(imp["csim_accuracy"], key=imp["csim_accuracy"].get) == "x"
    assert max(imp["lut"], key=imp["lut"].get) == "y"


def test_precise_remeasurement_replaces_the_estimate_and_is_marked(tmp_path):
    """A study written through dse.store with one trial re-measured by 'yosys' (as dse synthesize records it)."""
    from dse.report._plots import plot_pair
    from dse.store import StudyRecords
    from tests.report.synthetic import make_study

    study, _, _ = make_study(tmp_path, n_trials=8, epochs=2)
    records = StudyRecords(study)
    number = study.best_trials[0].number
    records.store_measurement("k1", {"metrics": {"yosys_lut": 1234.0, "yosys_ff": 10.0}, "tags": {"yosys_lut_source": "yosys"}})
    records.mark_measured("yosys", number, "k1")
    pts = pair_points(study, "csim_accuracy", "lut")
    row = pts[pts["trial"] == number].iloc[0]
    assert row["value"] == 1234.0 and row["source"] == "yosys" and bool(row["precise"])
    assert row["estimate"] == records.trial(number).metrics["lut"]
    others = pts[pts["trial"] != number]
    assert set(others["source"]) == {"ebops-estimate"} and not others["precise"].any()
    assert pair_points(study, "csim_accuracy", "ebops")["precise"].sum() == 0  # EBOPs have no precise counterpart
    png = plot_pair(pts, "csim_accuracy", "lut", tmp_path / "p.png")
    assert png.stat().st_size > 5000


def test_an_empty_front_still_has_its_columns(tmp_path):
    """No completed trial: the front (and the pareto_front.csv `dse run` writes from it) has a header a reader can parse."""
    import optuna
    import pandas as pd

    from dse.report import front_frame

    study = optuna.create_study(directions=["maximize", "minimize"])
    study.set_metric_names(["csim_accuracy", "lut"])
    front = front_frame(study)
    assert front.empty and list(front.columns) == ["trial", "csim_accuracy", "lut", "pinned", "mlflow_run_id"]
    front.to_csv(tmp_path / "pareto_front.csv", index=False)
    assert list(pd.read_csv(tmp_path / "pareto_front.csv").columns) == list(front.columns)



def test_front_frame_of_trials_without_values_has_their_objective_cells_empty():
    """`front_frame(study, numbers)` of a FAIL or RUNNING trial (the Python API; a review of the public docstrings):
    before, a KeyError from sorting by an objective no row had. Now its objectives are empty cells, sorted last."""
    import optuna

    from dse.report import front_frame

    study = optuna.create_study(directions=["maximize", "minimize"])
    study.set_metric_names(["csim_accuracy", "lut"])
    study.tell(study.ask(), state=optuna.trial.TrialState.FAIL)
    study.tell(study.ask(), [0.9, 300.0])
    study.ask()  # trial 2, RUNNING
    alone = front_frame(study, [0], with_measurements=False)
    assert list(alone.columns[:3]) == ["trial", "csim_accuracy", "lut"] and alone["csim_accuracy"].isna().all()
    mixed = front_frame(study, [0, 2, 1], with_measurements=False)
    assert list(mixed["trial"]) == [1, 0, 2] and list(mixed.columns[:3]) == ["trial", "csim_accuracy", "lut"]
    assert mixed.loc[0, "lut"] == 300.0 and mixed.loc[1:, "lut"].isna().all()


def test_front_says_feasible_for_trials_finished_before_the_study_had_constraints():
    """Before, such a trial's `feasible` was empty (it carries no constraint values) while `dse status` counted it feasible."""
    from optuna.distributions import FloatDistribution
    from optuna.trial import create_trial

    study = optuna.create_study(directions=["maximize", "minimize"])
    study.set_metric_names(["csim_accuracy", "lut"])
    dist = {"x": FloatDistribution(0, 1)}
    study.add_trial(create_trial(values=[0.9, 900.0], params={"x": 0.1}, distributions=dist))  # before any constraint
    study.add_trial(create_trial(values=[0.8, 100.0], params={"x": 0.2}, distributions=dist,
                                 system_attrs={"constraints": [-50.0]}))  # lut <= 150, added later
    study.add_trial(create_trial(values=[0.95, 700.0], params={"x": 0.3}, distributions=dist, system_attrs={"constraints": [550.0]}))
    front = front_frame(study)
    assert dict(zip(front["trial"], front["feasible"])) == {0: True, 1: True}
    every = front_frame(study, numbers=[0, 1, 2])
    assert dict(zip(every["trial"], every["feasible"])) == {0: True, 1: True, 2: False}
    unconstrained = optuna.create_study(directions=["maximize", "minimize"])
    unconstrained.add_trial(create_trial(values=[0.9, 900.0], params={"x": 0.1}, distributions=dist))
    assert "feasible" not in front_frame(unconstrained)
    # no feasible trial: the empty front still has the column the README promises (before, the header lacked it)
    none = optuna.create_study(directions=["maximize", "minimize"])
    none.set_metric_names(["csim_accuracy", "lut"])
    none.add_trial(create_trial(values=[0.95, 700.0], params={"x": 0.3}, distributions=dist, system_attrs={"constraints": [550.0]}))
    empty = front_frame(none)
    assert empty.empty and list(empty.columns) == ["trial", "csim_accuracy", "lut", "pinned", "feasible", "mlflow_run_id"]


def test_legends_sit_outside_the_axes(tmp_path):
    """Before, the legend sat at the lower right inside the axes, over the dominated (faint) trials there."""
    import matplotlib.pyplot as plt
    from PIL import Image

    from dse.report._compare import _pair, load_optuna_source
    from dse.report._plots import _SAVE, compare_figure, pair_figure, plot_compare, plot_pair
    from tests.report.synthetic import make_study

    study, storage, _ = make_study(tmp_path, n_trials=12, epochs=2)
    pts = pair_points(study, "csim_accuracy", "lut")
    assert (~pts["on_front"]).any(), "the check needs dominated trials"
    src = load_optuna_source(study.study_name, storage)
    fronts = {"a": _pair(src.trials, "csim_accuracy", "lut"), "b": _pair(src.trials, "csim_accuracy", "ebops")}
    drawn = [
        (pair_figure(pts, "csim_accuracy", "lut"), plot_pair(pts, "csim_accuracy", "lut", tmp_path / "pair.png")),
        (compare_figure(fronts, "csim_accuracy", "lut"), plot_compare(fronts, "csim_accuracy", "lut", tmp_path / "cmp.png")),
    ]
    for fig, png in drawn:
        try:
            fig.canvas.draw()
            ax = fig.axes[0]
            legend, box = ax.get_legend().get_window_extent(), ax.get_window_extent()
            assert legend.x0 >= box.x1, (legend, box)  # entirely right of the axes: it covers no point
            # the saved PNG (bbox_inches="tight", cropped from the left of the tight box) reaches past the legend
            left = fig.get_tightbbox().x0  # inches
            assert Image.open(png).width >= (legend.x1 / fig.dpi - left) * _SAVE["dpi"], png
        finally:
            plt.close(fig)


def test_training_curves_of_many_front_members_stay_readable(tmp_path):
    """47 front members drew 47 curves and a 47-entry legend over the panels; now 10, spread over them, and the title says so."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dse.report import _plots

    curves = {n: {"accuracy": [(e, 0.5 + 0.01 * e) for e in range(5)], "ebops": [(e, 1000.0 - e) for e in range(5)]} for n in range(47)}
    drawn = []
    real_save = _plots._save
    _plots._save = lambda fig, path: drawn.append(fig) or real_save(fig, path)
    try:
        _plots.plot_curves(curves, tmp_path / "curves.png")
    finally:
        _plots._save = real_save
    fig = drawn[0]
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert len(labels) == _plots.MAX_CURVES == 10 and labels[0] == "trial 0" and labels[-1] == "trial 46", labels
    assert fig._suptitle.get_text() == "10 of the 47 front members, spread over them in trial order"
    assert (tmp_path / "curves.png").stat().st_size > 0
    plt.close("all")


def test_parallel_coordinates_of_many_trials_draws_the_front_in_colour_over_the_rest_in_grey(monkeypatch, tmp_path):
    """Probe 38: at 2,000 trials every line in colour made one solid band. Above PARALLEL_FAINT_ABOVE trials the trials
    off the front are one faint grey collection under the front members' coloured lines; below it, every trial in
    colour, as before."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    from matplotlib.collections import LineCollection

    from dse.report import _plots

    drawn = []
    real_save = _plots._save
    monkeypatch.setattr(_plots, "_save", lambda fig, path: drawn.append(fig) or real_save(fig, path))
    rng = np.random.default_rng(0)
    for n in (_plots.PARALLEL_FAINT_ABOVE + 10, 20):
        frame = pd.DataFrame({"trial": range(n), "weight_bits": rng.integers(2, 9, n), "beta": rng.uniform(1e-6, 1e-4, n),
                              "strategy": rng.choice(["Latency", "Resource"], n), "csim_accuracy": rng.uniform(0.5, 1.0, n)})
        _plots.plot_parallel(frame, "csim_accuracy", tmp_path / f"parallel_{n}.png", front={1, 5, 7})
        collections = [c for c in drawn[-1].axes[0].collections if isinstance(c, LineCollection)]
        sizes = [len(c.get_segments()) for c in collections]
        title = drawn[-1].axes[0].get_title()
        if n > _plots.PARALLEL_FAINT_ABOVE:
            assert sizes == [n - 3, 3], sizes  # the grey rest first, under the 3 front members
            assert np.allclose(collections[0].get_edgecolor()[0][:3], 0.6) and collections[0].get_alpha() == 0.12
            assert title.endswith(f"; 3 front members in colour, the other {n - 3} grey"), title
        else:
            assert sizes == [n] and "grey" not in title, (sizes, title)
        assert (tmp_path / f"parallel_{n}.png").stat().st_size > 0
    plt.close("all")


def test_html_cells_write_ids_plain_and_huge_numbers_short():
    """Before: trial 1938 read `1,938` (dse status and --trial say 1938), and a learning rate of 1e30 31 digits of float noise."""
    from dse.report._render import format_value as fmt

    assert fmt(1938, "trial") == "1938" and fmt(1938.0, "harvested_from") == "1938" and fmt(1938, "lut") == "1,938"
    assert fmt(1e30, "learning_rate") == "1e+30" and fmt(1e30) == "1e+30" and fmt(36990.0) == "36,990"
    assert fmt(0.94444) == "0.9444" and fmt(0.000123) == "0.000123" and fmt(True) == "true" and fmt(float("nan")) == "-"


def test_terminal_front_table_writes_ids_as_the_html_page_does():
    """Before: the terminal had its own formatter, which wrote a harvested checkpoint's `harvested_from` 1938.0 as `1,938`
    (a float column: NaN for trained trials) and an accuracy of 0.000123 as `0.0001`."""
    import pandas as pd
    from rich.console import Console

    from dse.report import front_table

    front = pd.DataFrame({"trial": [2001, 2002], "csim_accuracy": [0.9444, 0.000123], "lut": [36990.0, 1200.0],
                          "harvested_from": [float("nan"), 1938.0]})
    console = Console(width=200, record=True)
    console.print(front_table(front))
    text = console.export_text()
    assert "1938" in text and "1,938" not in text and "2001" in text and "36,990" in text, text
    assert "0.000123" in text and "0.9444" in text, text


def test_a_front_wider_than_the_terminal_is_turned_not_cut():
    """Before, an 80-column terminal cut every cell of `dse run`'s and `dse status`'s front to `0.…`, `31…`, `eb…`."""
    import pandas as pd
    from rich.console import Console

    from dse.report import front_table

    front = pd.DataFrame({"trial": [3, 7, 11], "csim_val_accuracy": [0.9444, 0.95, 0.9722], "lut": [36990.0, 1200.0, 3000.0],
                          "csim_accuracy": [0.93, 0.94, 0.9556], "csim_accuracy_source": ["csim", "da4ml", "keras"],
                          "ebops": [1e4, 2e4, 3e4], "lut_source": ["ebops-estimate", "da4ml", "ebops-estimate"],
                          "params_strategy": ["distributed_arithmetic"] * 3, "feasible": [True] * 3})
    for width in (80, 200):
        console = Console(width=width, record=True)
        console.print(front_table(front, width=width))
        text = console.export_text()
        assert "…" not in text and max(map(len, text.splitlines())) <= width, text
        for value in ("0.9444", "36,990", "0.9556", "da4ml", "distributed_arithmetic", "csim_accuracy_source", "30,000"):
            assert value in text, (value, text)
        # turned at 80 (a row per figure, a column per trial), as one table at 200
        assert ("trial 11" in text) == (width == 80) and ("┃ trial ┃" in text) == (width == 200), text
        if width == 80:  # as many trials to a table as fit: the names' 24 columns and 25 per trial (distributed_arithmetic)
            assert "Pareto front (1 of 2)" in text and "Pareto front (2 of 2)" in text, text  # before: 3 tables of one


def test_a_front_on_a_dumb_terminal_is_turned_too(monkeypatch):
    """On a terminal with TERM=dumb (Emacs' shell, CI runners with a pty) rich measured every table at 80 columns, so
    `dse status` never turned a wide front and cut its cells to `0.…`."""
    import io
    import sys

    import pandas as pd

    from dse.report import front_table

    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setenv("TERM", "dumb")
    monkeypatch.setattr(sys, "stdout", Tty())
    front = pd.DataFrame({"trial": [3, 7], "csim_val_accuracy": [0.9444, 0.95], "lut": [36990.0, 1200.0],
                          "csim_accuracy": [0.93, 0.94], "csim_accuracy_source": ["csim", "da4ml"], "ebops": [1e4, 2e4],
                          "lut_source": ["ebops-estimate", "da4ml"], "params_strategy": ["distributed_arithmetic"] * 2})
    assert type(front_table(front, width=80)).__name__ == "Group"  # turned: a row per figure


def test_a_dsp_or_latency_source_other_than_the_lut_source_is_shown():
    """`dse status` showed only lut_source, so a DSP or latency figure from another source went unlabelled."""
    import pandas as pd
    from rich.console import Console

    from dse.report import front_table

    front = pd.DataFrame({"trial": [3, 7], "csim_val_accuracy": [0.94, 0.95], "lut": [3000.0, 1200.0], "dsp": [0.0, 4.0],
                          "latency_cycles": [5.0, 9.0], "lut_source": ["da4ml", "ebops-estimate"],
                          "dsp_source": ["da4ml", "ebops-estimate"], "latency_cycles_source": ["da4ml", "vitis-hls"]})

    def header(front):
        console = Console(width=300, record=True)
        console.print(front_table(front, width=300))
        return console.export_text().splitlines()[2]

    assert "latency_cycles_source" in header(front) and "dsp_source" not in header(front)
    front["latency_cycles_source"] = front["lut_source"]
    assert "latency_cycles_source" not in header(front)
    front["latency_cycles_source"] = ["da4ml", None]  # not measured for the second (the quickstart's Latency trials)
    assert "latency_cycles_source" not in header(front)


def test_progress_lines_stop_quietly_when_their_reader_is_gone(monkeypatch):
    """`dse run x.yaml 2>&1 | head -1`: before, rich raised SystemExit(1) at the next progress line, which stopped the
    study and recorded 'SystemExit: 1' as its running trials' reason. Now the lines stop and the study goes on."""
    import os
    import sys

    from dse.report import StudyProgress

    read, write = os.pipe()
    os.close(read)  # the reader is gone
    stream = os.fdopen(write, "w")
    monkeypatch.setattr(sys, "stderr", stream)
    try:
        progress = StudyProgress(True, 3, 0)
        progress.update(1, 0, 1, 1, ["trial 0 COMPLETE"])  # before: SystemExit(1)
        progress.update(2, 0, 0, 1, ["trial 1 COMPLETE"])
        assert progress.console.quiet
    finally:
        stream.close()


def test_a_dumb_terminal_gets_progress_lines_not_a_bar(monkeypatch):
    """On a terminal with TERM=dumb rich draws no live bar: `dse run` showed nothing until the study's end."""
    import io
    import sys

    from dse.report import StudyProgress

    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stderr", Tty())
    monkeypatch.setenv("TERM", "dumb")
    progress = StudyProgress(True, 3, 0)
    progress.update(1, 0, 1, 1, ["trial 0 COMPLETE"])
    assert not progress.bar and "trial 0 COMPLETE" in sys.stderr.getvalue()
    monkeypatch.setenv("TERM", "xterm")
    progress = StudyProgress(True, 3, 0)
    assert progress.bar
    progress.stop()


def test_counts_line_names_pruned_trials():
    """A PRUNED trial (dse never prunes; Optuna or a user's script can) was left out of the counts line (probe 16)."""
    from dse.report import StudyCounts, counts_line

    assert counts_line(StudyCounts(3, 1, 0, 1, 2)) == "trials: 3 complete, 1 failed, 2 pruned, 0 running, 1 waiting"
    assert "pruned" not in counts_line(StudyCounts(3, 1, 0, 0, 0))


def test_format_value_writes_numpy_scalars_as_python_numbers():
    """Probe 33: a DataFrame's cells (NumPy scalars) missed the separators, ``true``/``false`` and 4 digits."""
    from dse.report import format_value

    for value in (36990, True, 0.94444, float("nan"), 123456.7, 2**40):
        for scalar in (np.int64, np.bool_, np.float32, np.float64):
            try:
                numpy_value = scalar(value)
            except (OverflowError, ValueError):
                continue
            assert format_value(numpy_value) == format_value(numpy_value.item()), (scalar, value)
    assert [format_value(np.int64(36990)), format_value(np.bool_(True)), format_value(np.float32(0.94444))] == [
        "36,990", "true", "0.9444"]
    assert format_value(np.int64(1938), "trial") == "1938"
    # da4ml's half LUTs round half away from zero, all alike (probe 35: 1764.5 gave 1,764 and 987.5 gave 988)
    assert [format_value(v) for v in (1764.5, 987.5, -1764.5, 123456.7, 295632.0)] == ["1,765", "988", "-1,765", "123,457", "295,632"]


def test_compare_studies_names_a_wrong_argument(tmp_path):
    """Probe 33: ``compare_studies([])`` raised IndexError and a list of names AttributeError; the source types
    (``StudySource``, ``load_optuna_source``) were not exported."""
    import dse.report as report

    for name in report.__all__:  # each public name resolves (some lazily)
        assert getattr(report, name) is not None, name
    for sources, got in (([], "an empty list"), (["quickstart"], "a list holding str"), ("quickstart", "str")):
        with pytest.raises(TypeError, match=f"sources: expected a non-empty list of StudySource, got {got}; read each "
                                            r"study with dse.report.load_optuna_source\(name, storage\)"):
            report.compare_studies(sources, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_front_table_shows_every_objective():
    """Probe 33: `front_table` showed the two columns after ``trial``, so a third objective (``ff``) was left out."""
    import pandas as pd
    from rich.console import Console

    from dse.report import front_frame, front_table

    study = optuna.create_study(directions=["maximize", "minimize", "minimize"])
    study.set_metric_names(["csim_val_accuracy", "lut", "ff"])
    study.add_trial(optuna.trial.create_trial(values=[0.9, 100.0, 50.0]))
    front = front_frame(study)
    assert front.attrs["objectives"] == ["csim_val_accuracy", "lut", "ff"]
    assert front_frame(optuna.create_study(directions=["maximize"])).attrs["objectives"] == ["objective_0"]
    console = Console(width=300, record=True)
    console.print(front_table(front, width=300))
    header = console.export_text().splitlines()[2].split()
    assert header[:5] == ["┃", "trial", "┃", "csim_val_accuracy", "┃"] and "ff" in header, header
    plain = pd.DataFrame({"trial": [1], "a": [0.5], "b": [2.0], "c": [3.0]})  # no attrs: the two after trial, as before
    console = Console(width=300, record=True)
    console.print(front_table(plain, width=300))
    assert "c" not in console.export_text().splitlines()[2].split()
