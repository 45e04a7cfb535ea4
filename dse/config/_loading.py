"""Reading YAML files into validated config objects, with errors that name the field."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path, PurePath
from typing import Any

import yaml
from pydantic import ValidationError

from dse.config._experiment import ExperimentConfig, journal_path, sqlite_path
from dse.config._search_space import SearchSpace, load_search_space
from dse.exceptions import ConfigError, DseError, SearchSpaceError

__all__ = ["load_experiment", "experiment_to_read", "enqueued_params", "read_yaml", "check_file", "make_output_dir", "format_validation_error", "expand_env"]

log = logging.getLogger(__name__)

_ENV_REF = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader with two YAML 1.1 surprises removed.

    * A mapping with the same key twice is refused (PyYAML keeps the last value silently).
    * Only ``true``/``false`` are booleans (YAML 1.2); ``yes``/``no``/``on``/``off`` stay
      strings, so ``epochs: yes`` is refused as "not a number" instead of read as 1.
    * ``1e-5`` is a float (YAML 1.2), not the string PyYAML makes of it.
    * Integers are YAML 1.2's: ``010`` is 10 and ``08`` is 8 (YAML 1.1: octal 8, and the string ``'08'``), ``0o10`` is
      octal, ``0x10`` hexadecimal, ``1_000`` 1000; ``1:30`` stays a string (YAML 1.1: 90, base 60).
    """


# Drop the YAML 1.1 bool and int resolvers and put back YAML 1.2 ones (true/false only; decimal, 0o, 0x).
_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?[0-9][0-9_]*|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")
)


def _construct_int(loader: "_StrictLoader", node: yaml.ScalarNode) -> int:
    """A YAML 1.2 integer: decimal (leading zeros allowed, ``1_000`` as PyYAML reads it), ``0o`` octal or ``0x``
    hexadecimal; an explicit ``!!int`` also takes ``0b`` binary."""
    text = str(loader.construct_scalar(node)).replace("_", "")
    sign, digits = (text[0], text[1:]) if text[:1] in "+-" else ("", text)
    try:
        base = {"0o": 8, "0x": 16, "0b": 2}.get(digits[:2].lower(), 10)
        value = int(digits[2:] if base != 10 else digits, base)
    except ValueError as e:
        raise yaml.constructor.ConstructorError(None, None, f"{text!r} is not an integer", node.start_mark) from e
    return -value if sign == "-" else value


_StrictLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)[eE][-+]?[0-9]+$"), list("-+.0123456789")
)


class _DuplicateKeyError(yaml.YAMLError):
    """A mapping holds the same key twice."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:  # the mapping's own keys; a key may override one merged in with <<
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            continue  # SafeLoader reports unhashable keys itself below
        line = key_node.start_mark.line + 1
        if key in seen:
            raise _DuplicateKeyError(
                f"duplicate key {key!r} (first on line {seen[key]}, again on line {line}); "
                "a key may appear once per mapping: remove one of them"
            )
        seen[key] = line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def check_file(
    path: str | Path, *, field: str, what: str, error: type[Exception] = ConfigError, hint: str = "", label: str = "file"
) -> Path:
    """Refuse a path that is missing, a directory, or unreadable, naming ``field``.

    Args:
        path: the path to check.
        field: the field (or argument) that named it, e.g. ``dataset.path``.
        what: what the file should be, e.g. ``an .npz, .csv or .parquet file``.
        error: exception class to raise.
        hint: extra advice appended to the "does not exist" message.
        label: how the message calls the path, e.g. ``search space file``.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        error: the path does not exist, is a directory (or other non-file), or cannot be read.
    """
    p = Path(path)
    where = label if field == label else f"{field}: {label}"
    if p.is_dir():
        found = sorted(x.name for x in p.iterdir() if x.is_file() and not x.name.startswith("."))[:5] if os.access(p, os.R_OK | os.X_OK) else []
        inside = f"; files in it: {', '.join(found)}" if found else ""
        raise error(f"{where} {p} is a directory, but {what} is needed; give the path of the file itself{inside}")
    if not p.exists():
        start = "" if p.is_absolute() else f" (relative paths start at {Path.cwd()})"
        raise error(f"{where} {p} does not exist; {hint or 'check the path'}{start}")
    if not p.is_file():
        raise error(f"{where} {p} is not a regular file; give {what}")
    if not os.access(p, os.R_OK):
        raise error(f"{where} {p} is not readable (permission denied); fix its permissions (chmod u+r)")
    return p


def make_output_dir(path: str | Path, *, field: str = "--out (Python: out_dir=)", error: type[DseError] = ConfigError) -> Path:
    """Create the output folder ``path`` (and its parents) if missing; return it.

    Raises:
        error: ``path`` is a file, or cannot be created (a parent is a file, permission denied);
            the message names ``field``.
    """
    p = Path(path).expanduser()
    if p.exists() and not p.is_dir():
        raise error(f"{field} {p} is a file, not a folder; give the path of a folder (it is created if missing)")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise error(f"{field} {p} cannot be created ({type(e).__name__}: {e.strerror or e}); give a folder you can write to") from e
    return p


def read_yaml(path: str | Path, *, what: str, error: type[ConfigError] = ConfigError, field: str | None = None) -> dict[str, Any]:
    """Read a YAML mapping from ``path``.

    Duplicate keys are refused, and only ``true``/``false`` are booleans (see :class:`_StrictLoader`).

    Args:
        path: the YAML file.
        what: what the file is, for messages (``experiment``, ``search space``).
        error: exception class to raise.
        field: the field or argument that named the file (default: ``<what> file``).

    Raises:
        ConfigError (or ``error``): missing file, a directory, unreadable or non-UTF-8 file,
            YAML syntax error, duplicate key, or a top level that is not a mapping.
    """
    p = check_file(path, field=field or f"{what} file", what=f"a YAML {what} file", error=error, label=f"{what} file")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise error(f"{what} file {p} cannot be read as UTF-8 text ({type(e).__name__}: {e}); is it really a YAML file?") from e
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except _DuplicateKeyError as e:
        raise error(f"{what} file {p}: {e}") from e
    except yaml.YAMLError as e:
        detail = " ".join(str(e).replace('"<unicode string>"', str(p)).split())
        marks = [m for m in (getattr(e, "context_mark", None), getattr(e, "problem_mark", None)) if m is not None]
        lines = text.splitlines()
        near = " ".join(lines[m.line] for m in marks if m.line < len(lines))  # the lines YAML points at
        hint = ("" if "${" not in near else  # a search space expands none (probe 42: told to quote, then refused)
                "; a search space file expands no ${NAME} reference (only the experiment file does): write the value"
                if what == "search space" else
                "; inside a flow mapping ({...}) or list ([...]) quote a ${NAME} reference: '${NAME}'")
        raise error(f"{what} file {p} is not valid YAML: {detail}{hint}") from e
    except RecursionError as e:
        raise error(f"{what} file {p} nests too deeply to read; it is not a plain {what} file") from e
    if data is None:
        raise error(f"{what} file {p} is empty; it must hold a mapping of fields (see README.md of dse's source repository)")
    if not isinstance(data, dict):
        raise error(f"{what} file {p} must hold a mapping of fields at its top level, got a {type(data).__name__}: {str(data)[:80]!r}")
    return data


def format_validation_error(e: ValidationError) -> str:
    """One line per problem: ``field.path: message (got value)``.

    The value is left out where the message already shows it, and for whole-file checks
    (whose message names the field itself); long values are cut at 160 characters.
    """
    lines = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err["loc"] if not str(x).startswith("function-after"))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field; remove it or check its spelling" + _unknown_field_hint(e.title, err["loc"])
        full = repr(err.get("input"))
        shown = full if len(full) <= 160 else full[:150] + " ...(cut)"
        # the message quotes the value itself (a quoted string of any length; other values from 6 characters on)
        already = (len(full) >= 6 or len(full) > 3 and full[:1] in "'\"") and full in msg
        got = "" if err["type"] == "missing" or not loc or already else f" (got {shown})"
        if err["type"] == "string_type" and isinstance(err.get("input"), (int, float)):  # YAML read it as no string
            got += ("; YAML reads an unquoted " + ("true or false as a boolean" if isinstance(err["input"], bool) else
                    "number as a number (08 as 8)") + ": quote the value as you mean it, e.g. '08'")
        lines.append(f"  {loc}: {msg}{got}" if loc else f"  {msg}")
    return "\n".join(lines)


def _unknown_field_hint(model: str, loc: tuple) -> str:
    """What an unknown field of an experiment most likely meant (`constraint:`, a `max` in an objective)."""
    import difflib

    if model != ExperimentConfig.__name__:
        return ""
    name = str(loc[-1])
    if loc[0] == "objectives" and name in ("max", "min"):
        return ("; an objective has a metric and a direction only: a budget belongs in constraints "
                "(constraints: [{metric: lut, max: 3000}])")
    target = _nested_model(ExperimentConfig, loc[:-1])  # `training: {epoch: 3}` too (probe 42: the top level only)
    if target is not None and (close := difflib.get_close_matches(name, list(target.model_fields), n=1)):
        return f"; did you mean {close[0]!r}?"
    return ""


def _nested_model(model: type, path: tuple) -> type | None:
    """The pydantic model at field path ``path`` (list indices skipped) below ``model``, or ``None``."""
    import typing

    from pydantic import BaseModel

    def model_in(annotation: Any) -> type | None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return annotation
        for arg in typing.get_args(annotation):
            if (found := model_in(arg)) is not None:
                return found
        return None

    for part in path:
        if isinstance(part, int):
            continue
        field = getattr(model, "model_fields", {}).get(str(part))
        if field is None or (model := model_in(field.annotation)) is None:
            return None
    return model


def expand_env(value: Any, where: str = "", emptied: list[str] | None = None) -> Any:
    """Replace ``${NAME}`` and ``${NAME:-default}`` in every string of ``value`` by environment variables.

    Keeps secrets (a storage URL with its password) out of experiment files:
    ``storage: ${DSE_STORAGE_URL}``. ``$${`` is no escape; a string without ``${`` is unchanged.
    A field whose string expands to nothing (``${NAME:-}`` with ``NAME`` unset, or set empty) is left
    out, so it takes its default: ``tracking_uri: ${MLFLOW_TRACKING_URI:-}`` is the run directory's
    store and ``n_trials: ${N:-}`` is 12 where the variable is unset (a list item is null).

    Args:
        value: a YAML value (mapping, list, string, number).
        where: dotted field path of ``value``, for error messages.
        emptied: if given, a line is added for each field that expanded to nothing (for the
            message of a validation error that such a null may cause).

    Returns:
        The value with every reference replaced.

    Raises:
        ConfigError: a referenced variable is unset and has no default; the message names the
            field and the variable.
    """
    def said(path: str, raw: Any, became: str) -> None:
        if emptied is not None:
            emptied.append(f"{path} is {raw!r}, which expanded to nothing, so it is {became}")

    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            path = f"{where}.{k}" if where else str(k)
            x = expand_env(v, path, emptied)
            if x is None and isinstance(v, str):  # expanded to nothing: as if left out (probe 42: null, which a field
                said(path, v, "left out")  # whose default is not null, n_trials, refused as "Input should be a valid integer")
                continue
            out[k] = x
        return out
    if isinstance(value, list):
        items = [expand_env(v, f"{where}[{i}]", emptied) for i, v in enumerate(value)]
        for i, (v, x) in enumerate(zip(value, items)):
            if x is None and isinstance(v, str):
                said(f"{where}[{i}]", v, "null")
        return items
    if not isinstance(value, str) or "${" not in value:
        return value

    def sub(m: re.Match) -> str:
        name, default = m.group("name"), m.group("default")
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise ConfigError(
            f"{where or '(top level)'}: environment variable {name} is not set (referenced as ${{{name}}}); "
            f"export it, or write ${{{name}:-<default>}}"
        )

    expanded = _ENV_REF.sub(sub, value)
    if not expanded.strip():  # no field takes an empty string: left out by the mapping holding it (said there)
        return None
    return expanded


def load_experiment_from_cli(path: str | Path, **options: Any) -> tuple[ExperimentConfig, SearchSpace]:
    """:func:`load_experiment` for a ``dse`` command: ``options`` are its command-line options
    (``n_trials`` from ``dse run --n-trials``), and an error in one names the option."""
    return _load(path, options, from_cli=True)


def load_experiment(path: str | Path, **overrides: Any) -> tuple[ExperimentConfig, SearchSpace]:
    """Load an experiment file and the search space it names.

    ``search_space`` and ``dataset.path`` are resolved relative to the experiment file's folder;
    ``run_dir`` and a relative SQLite or journal ``storage`` file relative to the current directory
    (the storage is stored absolute). A leading ``~`` in any of them is the home directory.
    ``overrides`` replace top-level fields (e.g. ``n_trials=3``) before validation.
    ``${NAME}`` / ``${NAME:-default}`` in string values are replaced by environment variables
    (see :func:`expand_env`), so secrets such as the storage URL can stay out of the file.

    Returns:
        The validated experiment and its search space.

    Raises:
        ConfigError: the experiment is invalid, or names an unset environment variable; each
            problem is named by its dotted field path.
        SearchSpaceError: the search space file is invalid.
        TypeError: ``path`` is not a str or path.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected the experiment file's path (str or pathlib.Path), got {type(path).__name__} "
                        f"{str(path)[:80]!r}; e.g. load_experiment('experiments/quickstart.yaml')")
    return _load(path, overrides, from_cli=False)


def experiment_to_read(path: str | Path) -> ExperimentConfig:
    """The experiment file at ``path``, for commands that read its study (``--experiment`` of ``dse status``,
    ``report``, ``export``): they need its name, storage and tracking URI, not its search space or backends.

    Validated as :func:`load_experiment` does, but a ``resources.backend_modules`` module that does
    not import here (the study was measured where it does) is a warning, as for a study's stored
    experiment (:func:`read_stored_experiment`), and the search space file is not read.

    Raises:
        ConfigError: the experiment is invalid even so, named by its dotted field path.
    """
    return _load(path, {}, from_cli=True, reading=True)[0]


def _load(path: str | Path, overrides: dict[str, Any], *, from_cli: bool, reading: bool = False) -> tuple[ExperimentConfig, SearchSpace | None]:
    p = Path(path)
    emptied: list[str] = []
    data = expand_env(read_yaml(p, what="experiment", field="experiment file"), emptied=emptied)
    data.update({k: str(v) if isinstance(v, PurePath) else v for k, v in overrides.items() if v is not None})
    base = p.resolve().parent
    written = data.get("search_space")
    if isinstance(written, str):
        data["search_space"] = str((base / Path(written).expanduser()).resolve())
    ds = data.get("dataset")
    if isinstance(ds, dict):  # a copy: an override's dict stays the caller's
        ds = data["dataset"] = {**ds, **({"path": str(ds["path"])} if isinstance(ds.get("path"), PurePath) else {})}
    if isinstance(ds, dict) and isinstance(ds.get("path"), str):
        ds["path"] = str((base / Path(ds["path"]).expanduser()).resolve())
    if isinstance(data.get("run_dir"), str):
        data["run_dir"] = str(Path(data["run_dir"]).expanduser())
    st = data.get("storage")
    if isinstance(st, str) and st != "journal":  # a relative file, from the current directory as run_dir; kept absolute,
        if (journal := journal_path(st)) is not None:  # so the summary, status and the stored experiment say which file
            data["storage"] = str(journal)
        elif "?" not in st and (db := sqlite_path(st)) is not None:  # the path alone: a driver (sqlite+pysqlcipher) and
            # a passphrase stay (the review of stop 45: rewritten as sqlite:///<db>, opening an encrypted file with sqlite)
            from sqlalchemy.engine import make_url

            data["storage"] = make_url(st).set(database=str(db)).render_as_string(hide_password=False)
    try:
        if reading:
            exp, problem = read_stored_experiment(data)
            if problem:
                log.warning("experiment %s: %s; the study's stored figures are read as they are", p, problem)
            return exp, None
        exp = ExperimentConfig.model_validate(data)
    except ValidationError as e:
        given = sorted({str(err["loc"][0]) for err in e.errors() if err["loc"] and overrides.get(str(err["loc"][0])) is not None})
        note = "".join(f"\n  ({k} comes from the command line, --{k.replace('_', '-')} {overrides[k]!r}, not from the file)"
                       if from_cli else f"\n  ({k}={overrides[k]!r} is an argument of load_experiment, not from the file)"
                       for k in given)
        note += "".join(f"\n  ({line})" for line in emptied)
        if isinstance(data, dict) and "parameters" in data and "search_space" not in data:
            note += (f"\n  ({p} looks like a search space file, with its `parameters`; dse commands take the experiment "
                     "file, which names the search space in `search_space:`)")
        raise ConfigError(f"invalid experiment {p}:\n{format_validation_error(e)}{note}") from e
    if isinstance(written, str) and not Path(written).expanduser().is_absolute() and not os.path.lexists(exp.search_space):
        raise SearchSpaceError(_missing_space(written, base, exp.search_space))  # before: the resolved path alone
    space = load_search_space(exp.search_space)
    enqueued_params(exp, space)
    return exp, space


def _missing_space(written: str, base: Path, resolved: str | Path) -> str:
    """The error of a relative ``search_space`` that names no file: as written, the folder it was taken from, and where
    the example spaces are (probe 40: a newcomer with an installed dse and a copied experiment file was told only
    "search space file /x/search_spaces/default.yaml does not exist", as for ``search_space: default``)."""
    return (f"search_space: {written!r} is taken relative to the experiment file's folder ({base}): {resolved} does "
            "not exist. Give the path of a search space YAML file from that folder, or an absolute one. The example "
            "spaces (default.yaml, ramps.yaml, long_ramp.yaml) are in the search_spaces/ folder of dse's source "
            "repository, beside its experiments/ (an installed dse holds neither); copy one beside your experiment "
            "file, or write your own (README.md of the repository, \"Search space file\")")


def _unknown_fields(model: Any, where: str = "") -> list[str]:
    """Dotted names set on ``model`` (and the config objects inside it) that are not fields (``model_copy`` allows them)."""
    from pydantic import BaseModel

    out = [f"{where}{k}" for k in vars(model) if k not in type(model).model_fields]
    for name in type(model).model_fields:
        value = getattr(model, name, None)
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            if isinstance(item, BaseModel):
                out += _unknown_fields(item, f"{where}{name}{f'[{i}]' if isinstance(value, list) else ''}.")
    return out


def revalidate(exp: ExperimentConfig, space: SearchSpace) -> tuple[ExperimentConfig, SearchSpace]:
    """``exp`` and ``space`` validated again, for Python callers that built or changed them in code.

    pydantic's ``model_copy(update=...)``, the way to change a frozen config, does not
    validate: ``exp.model_copy(update={"n_trials": -1})`` would run, and be stored with the study.
    Validating the dumped fields again catches it, at the cost of a millisecond.

    Returns:
        New, validated copies, equal to the inputs when those were valid.

    Raises:
        TypeError: ``exp`` is not an :class:`ExperimentConfig` or ``space`` not a
            :class:`SearchSpace`; the message says how to make them (:func:`load_experiment`).
        ConfigError: a field of ``exp`` is invalid, named by its dotted path.
        SearchSpaceError: ``space`` is invalid.
    """
    import warnings

    from dse.exceptions import SearchSpaceError

    how = "load both with `exp, space = dse.config.load_experiment(path)`"
    if not isinstance(exp, ExperimentConfig):
        raise TypeError(f"exp: expected an ExperimentConfig, got {type(exp).__name__} {str(exp)[:80]!r}; {how}, or build one "
                        "with ExperimentConfig.model_validate(<dict>)")
    if not isinstance(space, SearchSpace):
        raise TypeError(f"space: expected a SearchSpace, got {type(space).__name__} {str(space)[:80]!r}; {how}, or "
                        "`space = dse.config.load_search_space(path)`")
    unknown = _unknown_fields(exp)
    if unknown:  # model_copy(update=...) sets any name; model_dump would drop it silently
        raise ConfigError(f"invalid experiment {exp.name!r} (built or changed in code):\n"
                          + "\n".join(f"  {k}: unknown field; remove it or check its spelling" for k in unknown))
    if partial := _partial_sections(exp):
        raise ConfigError(f"invalid experiment {exp.name!r} (built or changed in code):\n" + "\n".join(partial))
    with warnings.catch_warnings():  # a dict put in place of a section by model_copy: validated below instead
        warnings.simplefilter("ignore", UserWarning)
        exp_data, space_data = exp.model_dump(), space.model_dump()
    try:
        exp = ExperimentConfig.model_validate(exp_data)
    except ValidationError as e:
        raise ConfigError(f"invalid experiment {exp.name!r} (built or changed in code):\n{format_validation_error(e)}") from e
    try:
        space = SearchSpace.model_validate(space_data)
    except ValidationError as e:
        raise SearchSpaceError(f"invalid search space (built or changed in code):\n{format_validation_error(e)}") from e
    return exp, space


def _partial_sections(exp: ExperimentConfig) -> list[str]:
    """One line per section that ``model_copy(update=...)`` replaced with a dict lacking some of its fields.

    pydantic's ``model_copy`` replaces a whole section, so ``{"training": {"epochs": 3}}`` would
    silently reset the file's ``batch_size`` and ``learning_rate`` to their defaults.
    """
    from pydantic import BaseModel

    out = []
    for name, info in type(exp).model_fields.items():
        value, kind = getattr(exp, name, None), info.annotation
        if isinstance(value, dict) and isinstance(kind, type) and issubclass(kind, BaseModel):
            left = [f for f in kind.model_fields if f not in value]
            if left:
                out.append(f"  {name}: model_copy(update=...) replaced the whole section with {value!r}, so {', '.join(left)} "
                           f"would take their defaults, not the values you loaded; update the section itself: "
                           f"exp.model_copy(update={{{name!r}: exp.{name}.model_copy(update={value!r})}})")
    return out


def enqueued_params(exp: ExperimentConfig, space: SearchSpace) -> list[dict[str, Any]]:
    """``exp.enqueue_trials`` as Optuna parameters of ``space`` (see :meth:`SearchSpace.optuna_params`).

    Raises:
        ConfigError: an entry names a parameter the space lacks, or a value it cannot produce;
            the message names ``enqueue_trials[i].<parameter>`` and the fix.
    """
    from dse.exceptions import SearchSpaceError

    out = []
    for i, values in enumerate(exp.enqueue_trials):
        try:
            out.append(space.optuna_params(values, where=f"enqueue_trials[{i}]"))
        except SearchSpaceError as e:
            raise ConfigError(f"experiment {exp.name!r}: {e} (search space {exp.search_space})") from e
    return out


def read_stored_experiment(data: dict[str, Any]) -> tuple[ExperimentConfig, str | None]:
    """Validate an experiment stored with a study (or its MLflow parent run), to report, compare or export it.

    Validated as ``dse run`` would first. If that fails only because of the user's resource
    backends (a ``resources.backend_modules`` module that does not import here, so its backend
    names are unknown: a study measured on a cluster, read on a laptop), it is validated again
    without loading them (:data:`~dse.config._experiment.READING_STORED`): the study's figures
    are stored, and reading them needs no backend.

    Args:
        data: the stored experiment, as :meth:`ExperimentConfig.model_dump` (``mode="json"``) wrote it.

    Returns:
        ``(experiment, problem)``: ``problem`` is ``None``, or, when the experiment validated only
        as stored, what the strict validation said, as a phrase for a warning: ``its resource
        backends do not load here (...)``, or ``it breaks checks this dse added since (...)`` (a
        constraint no trial could meet, refused for new experiments since 2026-12-06).

    Raises:
        pydantic.ValidationError: it does not validate even so (another dse version's fields).
    """
    from dse.config._experiment import READING_STORED

    try:
        return ExperimentConfig.model_validate(data), None
    except ValidationError as strict:
        try:
            exp = ExperimentConfig.model_validate(data, context={READING_STORED: True})
        except ValidationError:
            raise strict from None
        said = " ".join(format_validation_error(strict).split())
        backends = all(err["loc"][:1] == ("resources",) for err in strict.errors())
        return exp, (f"its resource backends do not load here ({said})" if backends else f"it breaks checks this dse added since ({said})")
