"""Typed, validated experiment configuration (the YAML file a user passes to ``dse run``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from dse.config._params import no_bool_for_number

__all__ = [
    "DatasetConfig",
    "ModelConfig",
    "TrainingConfig",
    "ObjectiveConfig",
    "SamplerConfig",
    "RayConfig",
    "MlflowConfig",
    "Hls4mlConfig",
    "ResourcesConfig",
    "ExperimentConfig",
    "ConstraintConfig",
    "METRICS",
    "JOURNAL",
    "JOURNAL_FILE",
    "journal_path",
]

#: Metrics a trial can report, with the unit of each. Objectives must name one of these.
METRICS: dict[str, str] = {
    "csim_val_accuracy": "fraction of validation samples, hls4ml C simulation (or its stand-in: tag csim_accuracy_source)",
    "keras_val_accuracy": "fraction of validation samples, quantized Keras model",
    "csim_accuracy": "fraction of test samples, hls4ml C simulation (or its stand-in: tag csim_accuracy_source)",
    "keras_accuracy": "fraction of test samples, quantized Keras model",
    "ebops": "effective bit operations (HGQ2 trace_minmax)",
    "lut": "LUTs (source in tag lut_source)",
    "dsp": "DSP blocks (source in tag dsp_source)",
    "ff": "flip-flops (source in tag ff_source)",
    "latency_cycles": "clock cycles (source in tag latency_cycles_source)",
}


#: the largest seed NumPy, scikit-learn and Optuna accept (``seed`` and ``dataset.split_seed`` are 0..MAX_SEED).
MAX_SEED = 2**32 - 1


class _Strict(BaseModel):
    """Base of every experiment section: unknown fields, inf/nan and booleans-as-numbers are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    _no_bool = field_validator("*", mode="before")(classmethod(no_bool_for_number))


#: Shape of a Xilinx part number: family prefix, device, package + pin count, speed grade, temperature etc.
_PART = re.compile(
    r"^x[caq](7[aksvz]|vu|ku|zu|au|su|k2[46]|u|v[ecpmh]|v)[0-9a-z]*?-?[a-z]{2,6}\d{3,4}-\d[a-z]{0,4}(-[a-z0-9]{1,3}){0,3}$"
)
_PART_EXAMPLES = "xcvu13p-flga2577-2-e, xcu250-figd2104-2L-e, xczu9eg-ffvb1156-2-e, xc7a35tcpg236-1, xck26-sfvc784-2LV-c, xcvc1902-vsva2197-2MP-e-S"

#: ``storage: journal``: Optuna's journal file (``JournalFileBackend``) ``JOURNAL_FILE`` in the run directory.
JOURNAL, JOURNAL_FILE = "journal", "optuna.log"


def journal_path(storage: str) -> Path | None:
    """The file of an Optuna journal storage named by ``storage`` (a path ending in ``.log``, no ``://``), else None.

    Relative paths are taken from the current directory. ``ExperimentConfig.storage_url``
    turns ``storage: journal`` into ``<run_dir>/optuna.log``; the ``--storage`` option of
    ``dse status``/``report``/``compare``/``export`` takes the same path (as
    ``optuna-dashboard <file>.log`` does).
    """
    if "://" in storage or not storage.endswith(".log"):
        return None
    return Path(storage).expanduser().absolute()


def sqlite_path(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL (relative to the current directory), else None.

    None too for a URL SQLAlchemy cannot parse (``postgresql://u@h:notaport/db``): the storage
    checks (``dse check``, :func:`dse.study.preflight`) name what is wrong with it.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if "://" not in url:
        return None
    try:
        u = make_url(url)
    except (ArgumentError, ValueError):  # before, a raw ValueError ("invalid literal for int()") in every command
        return None
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return Path(u.database).expanduser().absolute()


def storage_file(storage: str) -> Path | None:
    """The local file behind an Optuna storage: its journal file (:func:`journal_path`) or its
    SQLite database (:func:`sqlite_path`); None for a database server, in-memory SQLite or a URL that does not parse."""
    return journal_path(storage) or sqlite_path(storage)


#: Study names: they become file and folder names (runs/<name>), so a leading letter or digit and a sane length.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class DatasetConfig(_Strict):
    """Which data to train on and how to split it.

    ``digits`` is scikit-learn's bundled ``load_digits`` (8x8 images, 64 features, 10 classes,
    no download). ``jet_hlf`` is OpenML data_id 42468 (16 features, 5 classes), cached under
    ``data_home`` (relative to the current directory, as ``run_dir``; default
    ``~/scikit_learn_data``). ``file`` reads ``path``: ``.npz`` with arrays ``X`` and ``y``, or
    ``.csv``/``.parquet`` with the label in the column named by ``target`` (required for a table).
    ``max_samples``: keep N rows drawn at random (seeded by ``split_seed``) before splitting; ``null`` keeps all.
    ``validation_fraction`` and ``test_fraction``: shares of the rows, stratified by class.
    """

    name: Literal["digits", "jet_hlf", "file"] = "digits"
    path: Path | None = None
    target: str | None = None
    data_home: Path | None = None
    max_samples: int | None = Field(default=None, gt=0)
    validation_fraction: float = Field(default=0.2, gt=0, lt=0.5)
    test_fraction: float = Field(default=0.2, gt=0, lt=0.5)
    split_seed: int = Field(default=0, ge=0, le=MAX_SEED, description="seed of the train/validation/test split, 0..2**32-1")

    @model_validator(mode="after")
    def _file_needs_path(self) -> "DatasetConfig":
        if self.name == "file" and self.path is None:
            raise ValueError("dataset.name 'file' needs dataset.path (an .npz, .csv or .parquet file)")
        if self.path is not None and self.name != "file":
            raise ValueError(
                f"dataset.path is read only with dataset.name: file, but dataset.name is {self.name!r}; "
                "set dataset.name: file to use the file, or remove dataset.path"
            )
        if self.data_home is not None and self.name != "jet_hlf":
            raise ValueError(
                f"dataset.data_home is the download cache of dataset.name: jet_hlf, but dataset.name is {self.name!r}, "
                "which downloads nothing (digits ships with scikit-learn; a file is read from dataset.path): "
                "remove dataset.data_home"
            )
        if self.path is not None and self.path.suffix.lower() in (".csv", ".parquet") and not self.target:
            raise ValueError(f"dataset.target: a {self.path.suffix} file needs the name of its label column")
        if self.target and (self.path is None or self.path.suffix.lower() not in (".csv", ".parquet")):
            where = f"a {self.path.suffix} file" if self.path is not None else f"dataset {self.name!r}"
            raise ValueError(f"dataset.target names a label column of a .csv or .parquet file; {where} has none "
                             "(an .npz holds its labels in the array y): remove dataset.target")
        held_out = self.validation_fraction + self.test_fraction
        if held_out > 0.8:
            raise ValueError(
                f"dataset.validation_fraction ({self.validation_fraction:g}) + test_fraction ({self.test_fraction:g}) = "
                f"{held_out:g} leaves {1 - held_out:.0%} of the rows for training; keep their sum at most 0.8"
            )
        return self


class ModelConfig(_Strict):
    """A Dense/ReLU MLP: ``hidden`` units per hidden layer; the output layer has one unit per class.

    The output layer emits logits (no softmax), so the hls4ml C simulation can be bit-exact.
    """

    type: Literal["mlp"] = "mlp"
    hidden: list[int] = Field(default=[32, 16], min_length=1)
    activation: Literal["relu"] = "relu"

    @field_validator("hidden")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if any(u <= 0 for u in v):
            raise ValueError(f"every hidden layer needs at least 1 unit, got {v}")
        return v


class TrainingConfig(_Strict):
    """Training budget of one trial. ``learning_rate`` may be overridden by a search-space parameter.

    ``harvest_checkpoints: N`` (default 0, off) keeps, besides the trained model, up to N
    checkpoints that were Pareto-optimal in (validation accuracy, EBOPs) along the trial's beta
    ramp, as the HGQ authors do (HGQ2's ``ParetoFront`` callback). Each is traced, converted,
    measured and logged as its own MLflow run and Optuna trial (user attribute
    ``harvested_from``), so one trial yields a front segment instead of a point. Harvested
    trials do not count towards ``n_trials``. When more than N checkpoints are on the
    training front, N spread evenly over EBOPs are kept.

    ``calibration_samples``: the first N training rows given to HGQ2's ``trace_minmax``, which sets the
    activations' ranges (and so their integer bits) and the ``ebops`` figure, after training.
    """

    epochs: int = Field(default=10, gt=0)
    batch_size: int = Field(default=64, gt=0)
    learning_rate: float = Field(default=3e-3, gt=0)
    calibration_samples: int = Field(default=2048, gt=0)
    harvest_checkpoints: int = Field(default=0, ge=0, le=100)


class _OnMetric(_Strict):
    """A setting about one of :data:`METRICS`."""

    metric: str

    @field_validator("metric")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in METRICS:
            raise ValueError(f"unknown metric {v!r}; allowed: {', '.join(METRICS)}{_metric_hint(v)}")
        return v


def _metric_hint(name: str) -> str:
    """What a user who wrote metric ``name`` most likely meant ('LUT', 'latency_ns', 'yosys_lut', 'luts')."""
    import difflib

    from dse.resources import backend_names, precise_backend_names

    low = name.lower()
    figure = low.partition("_")[2]
    if low in METRICS:
        return f"; metric names are lower case: {low!r}"
    if low.startswith("latency"):
        return "; latency is 'latency_cycles', in clock cycles (its time in ns is cycles x hls4ml.clock_period)"
    for source in sorted(backend_names(), key=len, reverse=True):  # a user's backend too; its name may hold a "_"
        if low.startswith(source + "_") and (figure := low[len(source) + 1:]) in METRICS:
            again = f", or `dse synthesize --backend {source}` to re-measure" if source in precise_backend_names() else ""
            return (f"; a figure is named without its source: {figure!r}, whose source is resources.backend "
                    f"(resources.backend: {source} to take {source}'s figures{again})")
    close = [figure] if figure in METRICS else difflib.get_close_matches(low, list(METRICS), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


#: Metrics that count something whole (LUTs, flip-flops, DSP blocks, clock cycles): a bound between 0 and 1 admits only 0.
COUNTED_METRICS = frozenset({"lut", "ff", "dsp", "latency_cycles"})


#: Metrics that are better when larger; every other metric (resources, latency) is better when smaller.
MAXIMIZED_METRICS = frozenset({"csim_val_accuracy", "keras_val_accuracy", "csim_accuracy", "keras_accuracy"})

#: The accuracies on the test split, each with its validation-split counterpart. An objective or constraint on a test
#: accuracy selects designs on the test split, so nothing is held out: ``dse check`` warns of it.
TEST_ACCURACIES: dict[str, str] = {"csim_accuracy": "csim_val_accuracy", "keras_accuracy": "keras_val_accuracy"}

#: The C-simulation accuracies, each with the Keras accuracy on the same split that stands in where a trial is not
#: C-simulated (``hls4ml.csim``: tag ``csim_accuracy_source: keras``).
CSIM_ACCURACIES: dict[str, str] = {"csim_val_accuracy": "keras_val_accuracy", "csim_accuracy": "keras_accuracy"}


class ObjectiveConfig(_OnMetric):
    """One objective of the multi-objective study.

    ``direction`` must be the metric's sense: ``maximize`` for the accuracies
    (:data:`MAXIMIZED_METRICS`), ``minimize`` for EBOPs, LUT, DSP, FF and latency. The other
    way round would search for the worst designs, so it is refused.
    """

    direction: Literal["maximize", "minimize"]

    @model_validator(mode="after")
    def _sense(self) -> "ObjectiveConfig":
        wanted = "maximize" if self.metric in MAXIMIZED_METRICS else "minimize"
        if self.direction != wanted:
            worst = "least accurate" if wanted == "maximize" else f"largest-{self.metric}"
            raise ValueError(
                f"direction {self.direction!r} for {self.metric!r} would search for the {worst} designs; "
                f"use direction: {wanted}"
            )
        return self


class ConstraintConfig(_OnMetric):
    """A budget on one metric: trials outside it are infeasible and never on the Pareto front.

    Passed to Optuna with ``Trial.set_constraint`` (``value - max`` and ``min - value``,
    feasible when <= 0), so NSGA-II and TPE steer towards feasible designs and
    ``study.best_trials`` holds feasible trials only. A trial that did not measure the metric
    (e.g. ``latency_cycles`` of a Latency design on the ``ebops`` backend) is infeasible.

    Example: ``{metric: lut, max: 20000}``, ``{metric: dsp, max: 0}``, ``{metric: csim_accuracy, min: 0.9}``.
    """

    max: float | None = None
    min: float | None = None

    @property
    def text(self) -> str:
        """The bound as people write it: ``lut <= 20000``, ``0.9 <= csim_accuracy``, ``0 <= x <= 5``."""
        return (f"{self.min:g} <= " if self.min is not None else "") + self.metric + (f" <= {self.max:g}" if self.max is not None else "")

    @model_validator(mode="after")
    def _a_bound(self, info: ValidationInfo) -> "ConstraintConfig":
        if self.max is None and self.min is None:
            raise ValueError(f"constraint on {self.metric!r} needs 'max' and/or 'min'")
        if self.max is not None and self.min is not None and self.min > self.max:
            raise ValueError(f"constraint on {self.metric!r}: min ({self.min}) exceeds max ({self.max})")
        if reading_stored(info):  # a study run with such a bound (before this check) is read as it ran
            return self
        # bounds no design can meet: the whole study would end with no feasible trial
        if self.metric in MAXIMIZED_METRICS and self.min is not None and self.min > 1:
            hint = f"; for {self.min:g}% write min: {self.min / 100:g}" if self.min <= 100 else ""
            split = "validation" if "_val_" in self.metric else "test"  # probe 33: a validation accuracy was called a test one
            raise ValueError(f"constraint on {self.metric!r}: min {self.min:g} is above 1, and {self.metric} is a fraction of "
                             f"{split} samples (0..1, 0.9 = 90%), so no trial could meet it{hint}")
        if self.max is not None and self.max < 0:
            raise ValueError(f"constraint on {self.metric!r}: max {self.max:g} is below 0, and {self.metric} is never negative, "
                             f"so no trial could meet it; max: 0 asks for none")
        if self.metric in COUNTED_METRICS and self.max is not None and 0 < self.max < 1:
            raise ValueError(f"constraint on {self.metric!r}: max {self.max:g} is between 0 and 1, and {self.metric} counts "
                             f"{METRICS[self.metric].split(' (')[0]} (a whole number), so only designs with none would meet it; "
                             + ("write the cycles (e.g. max: 10; from a time, its ns / hls4ml.clock_period)"
                                if self.metric == "latency_cycles" else
                                "write the count (e.g. max: 3000; for a share of the part, multiply by the part's count)")
                             + ", or max: 0 for none")
        return self


class SamplerConfig(_Strict):
    """Optuna sampler. ``population_size`` applies to NSGA-II only, ``n_startup_trials`` to TPE only.

    NSGA-II draws its first generation (``population_size``, Optuna's default 50) at random; TPE its first
    ``n_startup_trials`` trials (Optuna's default 10). ``dse check`` warns when that is most of a study (NSGA-II: the
    first generation is half of it or more; TPE: the random trials are all of it).
    """

    name: Literal["nsga2", "tpe", "random"] = "nsga2"
    population_size: int | None = Field(default=None, gt=1)
    n_startup_trials: int | None = Field(default=None, ge=1, description="TPE's random trials before it models")

    @model_validator(mode="after")
    def _options_are_the_samplers(self) -> "SamplerConfig":
        if self.population_size is not None and self.name != "nsga2":
            raise ValueError(
                f"sampler.population_size is NSGA-II's generation size, and sampler.name is {self.name!r}, which has no "
                "generations; remove population_size, or set sampler.name: nsga2"
            )
        if self.n_startup_trials is not None and self.name != "tpe":
            raise ValueError(
                f"sampler.n_startup_trials is TPE's number of random trials before it models the results, and "
                f"sampler.name is {self.name!r}; remove n_startup_trials, or set sampler.name: tpe"
                + (" (NSGA-II's random first generation is sampler.population_size)" if self.name == "nsga2" else "")
            )
        return self


class RayConfig(_Strict):
    """Where trials run and what each trial reserves.

    ``address: null`` (and no ``RAY_ADDRESS`` in the environment) starts a local Ray whose
    processes listen on 127.0.0.1 only, files under the run dir; ``address: <head>:<port>``
    (or ``RAY_ADDRESS``) joins that cluster and starts nothing; ``address: local`` starts the local Ray
    whatever ``RAY_ADDRESS`` says. ``num_cpus`` is the local Ray's
    CPU count (default: all). Per trial: ``cpus_per_trial`` CPUs, ``gpus_per_trial`` GPUs
    (fractions share a GPU; 0 runs on CPU) and ``memory_per_trial`` bytes of memory that Ray
    reserves when scheduling (not a hard limit; null reserves none). ``max_concurrent_trials``
    caps how many trials run at once (default: as many as the cluster's CPUs allow).

    ``reuse_workers: true`` (the default) runs trials in warm worker processes (Ray actors): the
    TensorFlow/HGQ2/hls4ml imports (3.7-3.9 s of a worker's first trial on a quiet 2-core host, more on a busy one:
    ``benchmarks/trial_anatomy.py``, README's Performance section) are paid once per
    worker, and ``keras.backend.clear_session()`` runs between trials. A warm worker's RSS
    still grows about 20 MB per trial (``benchmarks/memory.py``), so it is replaced once its
    RSS exceeds its RSS after its second trial by :data:`dse.study._workers.WORKER_RSS_GROWTH`
    (15%: 7-9 trials of a small MLP). ``false`` gives every trial a fresh worker process.
    """

    address: str | None = None
    num_cpus: int | None = Field(default=None, gt=0)
    cpus_per_trial: int = Field(default=1, gt=0)
    gpus_per_trial: float = Field(default=0, ge=0, description="GPUs per trial")
    memory_per_trial: int | None = Field(default=None, gt=0, description="bytes per trial")
    max_concurrent_trials: int | None = Field(default=None, gt=0)
    max_retries: int = Field(default=1, ge=0, description="retries of a trial whose worker died, in a fresh worker")
    reuse_workers: bool = Field(
        default=True,
        description="run trials in warm worker processes (TensorFlow, HGQ2, hls4ml imported once per worker, "
        "Keras state cleared between trials); false: a fresh worker process per trial",
    )


class MlflowConfig(_Strict):
    """MLflow tracking. ``tracking_uri: null`` means ``sqlite:///<run_dir>/mlflow.db``; ``experiment_name: null`` logs to
    the MLflow experiment named after the study (the experiment's ``name``)."""

    tracking_uri: str | None = None
    experiment_name: str | None = Field(default=None, min_length=1, max_length=500)


class Hls4mlConfig(_Strict):
    """hls4ml conversion settings shared by all trials (Strategy and ReuseFactor are searched).

    ``fifo_depth_optimization`` applies hls4ml's ``<backend>:fifo_depth_optimization`` flow
    (FIFO sizes from RTL co-simulation, H. Borras et al. 2022); it needs ``io_stream`` and the
    Vivado/Vitis executable on PATH, and only changes what the vivado/vitis resource backends build.

    ``csim`` decides which trials compile hls4ml's C simulation (one g++ build per design: 2.0-2.8 s for the quickstart's
    MLP, about 11 s for a distributed_arithmetic design, on 2 cores; ``benchmarks/trial_anatomy.py`` and README's Performance section)
    and measure ``csim_val_accuracy`` (validation split) and ``csim_accuracy`` (test split) with it; what is
    said below of ``csim_accuracy`` and ``keras_accuracy`` holds for the validation pair too: ``all``; ``front`` (the default): only a trial that
    is feasible and not dominated by the study's Pareto front at dispatch time (taking its
    Keras accuracy for ``csim_accuracy``), so every trial that ever joins the front was C
    simulated; ``none``. A trial whose C simulation was skipped reports ``csim_accuracy`` =
    ``keras_accuracy`` with the tag ``csim_accuracy_source: keras`` (``csim`` when simulated)
    and the tag ``csim: skipped-dominated`` (the front dominates it), ``skipped-infeasible`` (it breaks a
    constraint) or ``skipped`` (``none``), a simulated trial ``csim: run``; the two are equal whenever the design is
    bit-exact, which hls4ml guarantees for HGQ2 models (and ``da4ml_bit_exact_fraction``
    checks for distributed_arithmetic designs). Under ``front``, distributed_arithmetic designs
    are not built at all: da4ml's bit-exact emulation of their logic (``CombLogic.predict``,
    under a second) gives ``csim_accuracy``, tagged ``csim: da4ml`` and ``csim_accuracy_source:
    da4ml``; ``all`` builds their C simulation too (about 11 s of g++ each on 2 cores with dse's one-call build).
    """

    backend: Literal["Vitis", "Vivado"] = "Vitis"
    part: str = "xcvu13p-flga2577-2-e"
    clock_period: float = Field(default=5.0, gt=0, description="ns: the target clock period (5.0 is 200 MHz)")
    io_type: Literal["io_parallel", "io_stream"] = "io_parallel"
    fifo_depth_optimization: bool = False
    csim: Literal["all", "front", "none"] = Field(
        default="front",
        description="which trials build and run hls4ml's C simulation: all, only those that may join the Pareto front, none",
    )

    @field_validator("clock_period", mode="before")
    @classmethod
    def _period_in_ns(cls, v: Any) -> Any:
        if isinstance(v, str) and re.fullmatch(r"\s*[\d.]+\s*[mMgGkK]?[hH][zZ]\s*", v):
            try:
                mhz = float(re.sub(r"[^\d.]", "", v)) * {"g": 1000, "m": 1, "k": 1e-3}.get(v.strip()[-3:-2].lower(), 1e-6)
            except ValueError:
                mhz = 0.0
            write = f"for {v.strip()} write clock_period: {1000 / mhz:g}" if mhz > 0 else "e.g. clock_period: 5.0 for 200 MHz"
            raise ValueError(f"{v!r} is a frequency; clock_period is the period in ns, a number: {write}")
        if isinstance(v, str) and re.fullmatch(r"\s*[\d.]+\s*ns\s*", v):
            raise ValueError(f"{v!r}: clock_period is in ns already; write the number alone: clock_period: {v.strip()[:-2].strip()}")
        return v

    @field_validator("part")
    @classmethod
    def _xilinx_part(cls, v: str) -> str:
        if not _PART.match(v.strip().lower()):
            raise ValueError(
                f"{v!r} is not a Xilinx part number (family, device, package and speed grade); "
                f"examples: {_PART_EXAMPLES}"
            )
        return v.strip()

    @model_validator(mode="after")
    def _fifo_needs_stream(self) -> "Hls4mlConfig":
        if self.fifo_depth_optimization and self.io_type != "io_stream":
            raise ValueError("hls4ml.fifo_depth_optimization sizes io_stream FIFOs; set hls4ml.io_type: io_stream or turn it off")
        return self


READING_STORED = "dse.reading_stored"
"""Validation context key (``ExperimentConfig.model_validate(data, context={READING_STORED: True})``): an
experiment stored with a study, read to report or export it. Its ``resources.backend_modules`` need not
import here and its backend names need not be registered: nothing is measured with them. Checks added
since it may have been stored, which refuse what no trial could meet (a constraint's bound), do not apply:
its trials ran with it."""


def reading_stored(info: ValidationInfo) -> bool:
    """Whether a validator runs on a stored experiment read under :data:`READING_STORED`."""
    return bool(info.context and info.context.get(READING_STORED))


class ResourcesConfig(_Strict):
    """How resources are measured.

    ``backend`` gives the figures (``lut``, ``dsp``, ...) of each trial. ``auto`` (the default)
    takes the most faithful figure available at trial time for each Strategy (see
    :func:`dse.resources.figure_backend`): da4ml's cost model for distributed_arithmetic, the
    EBOPs estimate for Latency/Resource. A named backend gives the figures of the trials whose
    Strategy it supports (da4ml and yosys: distributed_arithmetic only); the EBOPs estimate
    fills in the rest. Names are those of :func:`dse.resources.backend_names`.

    ``backend_modules``: modules that register your own backends (a
    :class:`~dse.resources.ResourceBackend` subclass decorated with
    :func:`dse.resources.register_backend`, in a module of its own, not in the script you run),
    by import name (``mybackends`` or ``lab.fpga.backends``). Each is imported when this section is
    validated and by every Ray worker before its trial starts, and the study stores the list, so
    ``dse report``, ``export``, ``synthesize`` and ``calibrate`` load them too (``report``,
    ``export``, ``compare`` and ``status`` read a study without them, with a warning:
    :func:`dse.config.read_stored_experiment`). A backend named in
    ``backend`` or ``synthesize_front`` must come from a listed module (or be one of dse's own).

    ``synthesize_front``: a precise backend (e.g. ``yosys``) that ``dse run`` applies to each trial that joins the
    Pareto front while the study runs, as ``dse synthesize --front`` does by hand (``null``, the default: off).
    ``vsynth``: the vivado and vitis backends add Vivado logic synthesis to the HLS report (slower; real LUT/FF).

    ``dsp_threshold_bits``: in the EBOPs estimate, a multiplication whose weight and input
    bitwidths both exceed this goes to a DSP (a rule of thumb for Vivado/Vitis HLS; see
    :mod:`dse.resources`). ``da4ml_latency_cutoff`` is the pipeline-stage delay cutoff in
    da4ml's delay units.
    """

    backend_modules: list[str] = Field(default_factory=list, description="modules that register your own resource backends")
    backend: str = "auto"
    dsp_threshold_bits: int = Field(default=9, ge=1)
    da4ml_latency_cutoff: float = Field(default=5.0, gt=0)
    synthesis_timeout_s: float = Field(default=1800, gt=0, description="s, per Yosys, Vivado HLS or Vitis run")
    synthesize_front: str | None = None
    vsynth: bool = False

    @field_validator("backend_modules")
    @classmethod
    def _importable(cls, v: list[str], info: ValidationInfo) -> list[str]:
        from dse.resources import import_backend_modules

        try:
            import_backend_modules(v)  # before ``backend`` is checked (pydantic validates fields in this order)
        except ValueError:
            if not reading_stored(info):
                raise
        return v

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, v: str, info: ValidationInfo) -> str:
        from dse.resources import backend_names

        if "backend_modules" not in info.data or reading_stored(info):  # a module failed to import: that error says it all
            return v
        if v != "auto" and v not in backend_names():
            listed = info.data["backend_modules"]
            hint = (f"none of resources.backend_modules {listed} registers it: check the name in its class's `name`"
                    if listed else "a backend of your own: list the module that registers it in resources.backend_modules")
            raise ValueError(f"unknown resource backend {v!r}; allowed: auto, {', '.join(backend_names())} ({hint})")
        return v

    @field_validator("synthesize_front")
    @classmethod
    def _known_precise(cls, v: str | None, info: ValidationInfo) -> str | None:
        from dse.resources import precise_backend_names

        allowed = precise_backend_names()
        if v is not None and v not in allowed and not reading_stored(info):
            raise ValueError(f"unknown precise backend {v!r}; allowed: {', '.join(allowed)}")
        return v

    @model_validator(mode="after")
    def _backends_loadable_elsewhere(self, info: ValidationInfo) -> "ResourcesConfig":
        from dse.resources import unlisted_backend_problem

        if reading_stored(info):
            return self
        for field, name in (("backend", self.backend), ("synthesize_front", self.synthesize_front)):
            if name not in (None, "auto") and (problem := unlisted_backend_problem(name, self.backend_modules)):
                raise ValueError(f"{field}: {problem}")
        return self


def _point_value(value: Any) -> Any:
    """One value of an ``enqueue_trials`` point: a number, string or bool. Before, a null or a list (a trial record's
    ``beta_end: null`` or ``layer_reuse_factors``, copied as the README's retraining steps said) got pydantic's four
    lines, one per allowed type."""
    if value is None:
        raise ValueError("null; leave the parameter out of the point (a parameter left out is sampled, or takes its "
                         "default where a rule or `when` pins it)")
    if isinstance(value, (list, dict, tuple)):
        raise ValueError(f"a {type(value).__name__}; a point holds one number, string or true/false per search-space "
                         "parameter: to try several values, enqueue one point per value (a trial record's "
                         "layer_reuse_factors is no parameter, but worked out from reuse_factor: leave it out)")
    return value


class ExperimentConfig(_Strict):
    """A whole experiment: data, model, training budget, search space, objectives and where to run.

    Relative paths: ``search_space`` and ``dataset.path`` are resolved against the experiment
    file's folder by :func:`dse.config.load_experiment`; ``run_dir`` stays as written and is
    taken from the current directory each time it is used (:attr:`resolved_run_dir`), so a
    Python script that changes directory between loading and running takes it from the new one
    (give an absolute ``run_dir`` to avoid that). The CLI runs where it is started.
    """

    name: str
    dataset: DatasetConfig = DatasetConfig()
    model: ModelConfig = ModelConfig()
    training: TrainingConfig = TrainingConfig()
    search_space: Path
    objectives: list[ObjectiveConfig] = Field(
        default=[
            ObjectiveConfig(metric="csim_val_accuracy", direction="maximize"),
            ObjectiveConfig(metric="lut", direction="minimize"),
        ],
        min_length=1,
    )
    constraints: list[ConstraintConfig] = []
    sampler: SamplerConfig = SamplerConfig()
    enqueue_trials: list[dict[str, Annotated[Union[bool, int, float, str], BeforeValidator(_point_value)]]] = Field(
        default=[],
        description="points of the search space to evaluate first, e.g. a known-good baseline (Optuna's enqueue_trial): "
        "parameter name -> value; parameters left out are sampled. Enqueued when the study is created or continued, "
        "unless a trial of the study already has those values",
    )
    n_trials: int = Field(default=12, gt=0)
    seed: int = Field(
        default=0, ge=0, le=MAX_SEED,
        description="sampler seed; trial k's weights and training use seed + k (wrapped to 0..2**32-1, see seed_for)",
    )
    run_dir: Path | None = None
    storage: str | None = Field(
        default=None,
        description="Optuna storage: an RDB URL (sqlite:///..., postgresql+psycopg://...), 'journal' (Optuna's journal "
        "file <run_dir>/optuna.log) or a journal file path ending in .log; null: sqlite:///<run_dir>/optuna.db",
    )
    trial_timeout_s: float = Field(default=1800, gt=0)
    heartbeat_interval_s: float = Field(default=10.0, gt=0, description="s between the driver's heartbeats on its running trials")
    heartbeat_grace_s: float = Field(default=120.0, gt=0, description="s without heartbeat after which a RUNNING trial's driver is lost")
    storage_retry_s: float = Field(default=60.0, ge=0, description="s a lost Optuna storage connection is retried before the driver stops")
    ray: RayConfig = RayConfig()
    mlflow: MlflowConfig = MlflowConfig()
    hls4ml: Hls4mlConfig = Hls4mlConfig()
    resources: ResourcesConfig = ResourcesConfig()

    @field_validator("name")
    @classmethod
    def _file_safe(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(
                "a study name must start with an ASCII letter or digit, hold only ASCII letters, digits, '_', '.' and '-', "
                f"and have at most 100 characters (it names the run directory runs/<name>); got {len(v)} characters"
                if len(v) > 100 else
                "a study name must start with an ASCII letter or digit and hold only ASCII letters (a-z, A-Z), digits, '_', '.' and '-' "
                "(it names the run directory runs/<name>), e.g. jet_tagging-v2"
            )
        return v

    @model_validator(mode="after")
    def _grace_outlasts_heartbeats(self) -> "ExperimentConfig":
        if self.heartbeat_grace_s <= self.heartbeat_interval_s:
            raise ValueError(
                f"heartbeat_grace_s ({self.heartbeat_grace_s:g} s) must exceed heartbeat_interval_s "
                f"({self.heartbeat_interval_s:g} s): a running trial is stamped every heartbeat_interval_s, so a shorter "
                "grace would take a live driver on another machine for lost between two stamps; keep the grace at "
                "several intervals (the defaults are 10 s and 120 s)"
            )
        return self

    @field_validator("objectives")
    @classmethod
    def _unique(cls, v: list[ObjectiveConfig]) -> list[ObjectiveConfig]:
        names = [o.metric for o in v]
        if len(set(names)) != len(names):
            raise ValueError(f"each metric may appear once, got {names}")
        return v

    @field_validator("constraints")
    @classmethod
    def _once_per_metric(cls, v: list[ConstraintConfig], info: ValidationInfo) -> list[ConstraintConfig]:
        """Before, a second constraint on a metric silently replaced the first (both are Optuna's ``<metric>_max``)."""
        names = [c.metric for c in v]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice and not reading_stored(info):
            raise ValueError(f"{', '.join(map(repr, twice))} constrained more than once; give each metric one entry, with "
                             f"both bounds where it has two (e.g. {{metric: {twice[0]}, min: 100, max: 3000}})")
        return v

    def seed_for(self, offset: int) -> int:
        """``seed + offset`` wrapped into NumPy's and Optuna's seed range 0..2**32-1.

        Trial k trains with ``seed_for(k)`` (a driver's sampler: :meth:`sampler_seed_for`). Below 2**32 this is plain
        ``seed + offset``.
        """
        return (self.seed + offset) % (MAX_SEED + 1)

    def sampler_seed_for(self, first: int) -> int:
        """The sampler seed of a driver whose first trial is ``first``: ``seed`` for 0 (a fresh study repeats exactly),
        else one drawn from ``(seed, first)`` by NumPy's ``SeedSequence``.

        Not ``seed + first`` (before 2026-12-07): a seed-3 study continued at trial 8 then drew exactly what a fresh
        seed-11 study draws (probe 35), so studies whose seeds differ by a number of finished trials were not independent.
        """
        if not first:
            return self.seed
        import numpy as np

        return int(np.random.SeedSequence([self.seed, first]).generate_state(1)[0])

    @property
    def resolved_run_dir(self) -> Path:
        """Run directory: ``run_dir`` or ``runs/<name>`` under the current directory."""
        return (Path(self.run_dir).expanduser() if self.run_dir else Path("runs") / self.name).resolve()

    @property
    def storage_url(self) -> str:
        """Optuna storage: ``storage``, else SQLite in the run directory (``sqlite:///<run_dir>/optuna.db``).

        ``storage: journal`` is Optuna's journal file in the run directory (``<run_dir>/optuna.log``,
        returned as that absolute path); a path ending in ``.log`` names a journal file elsewhere
        (relative to the current directory). See :func:`journal_path`.
        """
        if self.storage == JOURNAL:
            return str(self.resolved_run_dir / JOURNAL_FILE)
        journal = journal_path(self.storage) if self.storage else None
        if journal is not None:
            return str(journal)
        return self.storage or f"sqlite:///{self.resolved_run_dir / 'optuna.db'}"

    @property
    def tracking_uri(self) -> str:
        """MLflow tracking URI: ``mlflow.tracking_uri`` or SQLite in the run directory."""
        return self.mlflow.tracking_uri or f"sqlite:///{self.resolved_run_dir / 'mlflow.db'}"
