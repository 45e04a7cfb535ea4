"""Reading YAML files into validated config objects, with errors that name the field."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from dse.config._experiment import ExperimentConfig
from dse.config._search_space import SearchSpace, load_search_space
from dse.exceptions import ConfigError

__all__ = ["load_experiment", "read_yaml", "format_validation_error", "expand_env"]

_ENV_REF = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


def read_yaml(path: str | Path, *, what: str, error: type[ConfigError] = ConfigError) -> dict[str, Any]:
    """Read a YAML mapping from ``path``.

    Raises:
        ConfigError (or ``error``): missing file, YAML syntax error, or a top level that is not a mapping.
    """
    p = Path(path)
    if not p.is_file():
        raise error(f"{what} file {p} does not exist; check the path (relative paths start at {Path.cwd()})")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        raise error(f"{what} file {p} is not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise error(f"{what} file {p} must hold a mapping of fields at its top level, got {type(data).__name__}")
    return data


def format_validation_error(e: ValidationError) -> str:
    """One line per problem: ``field.path: message (got value)``."""
    lines = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err["loc"] if not str(x).startswith("function-after")) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        got = "" if err["type"] == "missing" else f" (got {err.get('input')!r})"
        if err["type"] == "extra_forbidden":
            msg = "unknown field; remove it or check its spelling"
        lines.append(f"  {loc}: {msg}{got}")
    return "\n".join(lines)


def expand_env(value: Any, where: str = "") -> Any:
    """Replace ``${NAME}`` and ``${NAME:-default}`` in every string of ``value`` by environment variables.

    Keeps secrets (a storage URL with its password) out of experiment files:
    ``storage: ${DSE_STORAGE_URL}``. ``$${`` is no escape; a string without ``${`` is unchanged.

    Args:
        value: a YAML value (mapping, list, string, number).
        where: dotted field path of ``value``, for error messages.

    Returns:
        The value with every reference replaced.

    Raises:
        ConfigError: a referenced variable is unset and has no default; the message names the
            field and the variable.
    """
    if isinstance(value, dict):
        return {k: expand_env(v, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, f"{where}[{i}]") for i, v in enumerate(value)]
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

    return _ENV_REF.sub(sub, value)


def load_experiment(path: str | Path, **overrides: Any) -> tuple[ExperimentConfig, SearchSpace]:
    """Load an experiment file and the search space it names.

    ``search_space`` and ``dataset.path`` are resolved relative to the experiment file.
    ``overrides`` replace top-level fields (e.g. ``n_trials=3``) before validation.
    ``${NAME}`` / ``${NAME:-default}`` in string values are replaced by environment variables
    (see :func:`expand_env`), so secrets such as the storage URL can stay out of the file.

    Returns:
        The validated experiment and its search space.

    Raises:
        ConfigError: the experiment is invalid, or names an unset environment variable; each
            problem is named by its dotted field path.
        SearchSpaceError: the search space file is invalid.
    """
    p = Path(path)
    data = expand_env(read_yaml(p, what="experiment"))
    data.update({k: v for k, v in overrides.items() if v is not None})
    base = p.resolve().parent
    if isinstance(data.get("search_space"), str):
        data["search_space"] = str((base / data["search_space"]).resolve())
    ds = data.get("dataset")
    if isinstance(ds, dict) and isinstance(ds.get("path"), str):
        ds["path"] = str((base / ds["path"]).resolve())
    try:
        exp = ExperimentConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(f"invalid experiment {p}:\n{format_validation_error(e)}") from e
    return exp, load_search_space(exp.search_space)
