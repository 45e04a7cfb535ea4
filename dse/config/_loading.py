"""Reading YAML files into validated config objects, with errors that name the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from dse.config._experiment import ExperimentConfig
from dse.config._search_space import SearchSpace, load_search_space
from dse.exceptions import ConfigError

__all__ = ["load_experiment", "read_yaml", "format_validation_error"]


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


def load_experiment(path: str | Path, **overrides: Any) -> tuple[ExperimentConfig, SearchSpace]:
    """Load an experiment file and the search space it names.

    ``search_space`` and ``dataset.path`` are resolved relative to the experiment file.
    ``overrides`` replace top-level fields (e.g. ``n_trials=3``) before validation.

    Returns:
        The validated experiment and its search space.

    Raises:
        ConfigError: the experiment is invalid; each problem is named by its dotted field path.
        SearchSpaceError: the search space file is invalid.
    """
    p = Path(path)
    data = read_yaml(p, what="experiment")
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
