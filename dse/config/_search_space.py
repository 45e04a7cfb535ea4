"""Search space files: YAML mapped onto Optuna distributions, with conditions and rules.

A search space file looks like::

    parameters:
      strategy: {type: categorical, choices: [Latency, Resource, distributed_arithmetic]}
      reuse_factor: {type: categorical, choices: [1, 2, 4], when: {strategy: Resource}, default: 1}
      beta: {type: float, low: 1.0e-7, high: 1.0e-4, log: true, include_zero: true}
    rules:
      - name: resource-strategy tip
        when: {strategy: Resource}
        set: {weight_granularity: per-layer, beta: 0.0}

Parameters are decided in file order. A parameter with ``when`` is sampled only where all its
conditions hold (a condition is a value or a list of allowed values) and takes ``default``
otherwise. A rule whose ``when`` holds pins the parameters in its ``set``: they are not
sampled, and are recorded as fixed values. ``include_zero`` on a float adds the choice 0,
sampled as the categorical ``<name>_is_zero``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dse.config._params import TrialParams, no_bool_for_number
from dse.exceptions import SearchSpaceError

if TYPE_CHECKING:  # annotations only: a trial's worker imports dse.config without Optuna (0.1 s)
    import optuna

__all__ = ["SearchSpace", "load_search_space"]

Scalar = Union[bool, int, float, str]
Condition = dict[str, Union[Scalar, list[Scalar]]]


class _Param(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    # not "*": a before-validator on the discriminator ``type`` is not allowed
    _no_bool = field_validator("low", "high", "step", mode="before", check_fields=False)(classmethod(no_bool_for_number))
    when: Condition | None = None
    default: Scalar | None = None


def _whole(n: float) -> bool:
    """Whether ``n`` (a count of steps: ``(value - low) / step``) is a whole number, to binary rounding (1e-8 relative)."""
    return abs(n - round(n)) <= 1e-8 * max(1.0, abs(n))


def _off_grid(low: float, high: float, step: float, last: float) -> str:
    """The message for a ``step`` that does not divide ``high - low`` (Optuna would never sample ``high``)."""
    return (f"step ({step:g}) does not divide high - low ({high:g} - {low:g}): the grid low, low + step, ... stops at "
            f"{last:g} and never reaches high ({high:g}); set high to {last:g} or {last + step:g}, or choose a step that "
            "divides the range")


class FloatParam(_Param):
    """A float in ``[low, high]``, log-uniform when ``log``; ``include_zero`` adds 0 as a choice."""

    type: Literal["float"]
    low: float
    high: float
    log: bool = False
    step: float | None = Field(default=None, gt=0)
    include_zero: bool = False

    @model_validator(mode="after")
    def _bounds(self) -> "FloatParam":
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log-uniform float needs low > 0, got low={self.low}; use include_zero for 0")
        if self.log and self.step is not None:
            raise ValueError(f"step ({self.step}) cannot be combined with log: true (Optuna samples one or the other); drop one")
        if self.step is not None:
            n = (self.high - self.low) / self.step
            if not _whole(n):
                raise ValueError(_off_grid(self.low, self.high, self.step, self.low + math.floor(n) * self.step))
        return self

    def suggest(self, trial: optuna.trial.BaseTrial, name: str, carry: bool = False) -> float:
        """``<name>_is_zero`` first where ``include_zero``; with ``carry``, ``<name>`` is drawn also where that is
        ``True`` (the value is then 0), so that the parameter stays in every trial (see :meth:`SearchSpace.suggest`)."""
        zero = self.include_zero and trial.suggest_categorical(f"{name}_is_zero", [False, True])
        if zero and not carry:
            return 0.0
        value = trial.suggest_float(name, self.low, self.high, log=self.log, step=self.step)
        return 0.0 if zero else value

    def examples(self) -> list[Any]:
        return [self.low, self.high] + ([0.0] if self.include_zero else [])


class IntParam(_Param):
    """An integer in ``[low, high]`` with ``step``, log-uniform when ``log``."""

    type: Literal["int"]
    low: int
    high: int
    step: int = Field(default=1, gt=0)
    log: bool = False

    @model_validator(mode="after")
    def _bounds(self) -> "IntParam":
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log-uniform int needs low >= 1, got low={self.low}")
        if self.log and self.step != 1:
            raise ValueError(f"step ({self.step}) cannot be combined with log: true (Optuna samples one or the other); drop one")
        if (self.high - self.low) % self.step:
            raise ValueError(_off_grid(self.low, self.high, self.step, self.high - (self.high - self.low) % self.step))
        return self

    def suggest(self, trial: optuna.trial.BaseTrial, name: str, carry: bool = False) -> int:
        return trial.suggest_int(name, self.low, self.high, step=self.step, log=self.log)

    def examples(self) -> list[Any]:
        return [self.low, self.high]


def _field_kinds(name: str) -> set:
    """The types :class:`TrialParams` field ``name`` takes, ``None`` left out (``int | None`` gives ``{int}``)."""
    from typing import get_args

    annotation = TrialParams.model_fields[name].annotation
    return set(get_args(annotation) or (annotation,)) - {type(None)}


def _takes_whole_numbers(name: str) -> bool:
    """Whether :class:`TrialParams` field ``name`` is an ``int`` (optionally ``| None``), so a float draw is invalid."""
    return _field_kinds(name) == {int}


def _takes_numbers(name: str) -> bool:
    """Whether :class:`TrialParams` field ``name`` is a number (``int`` or ``float``, optionally ``| None``)."""
    kinds = _field_kinds(name)
    return bool(kinds) and kinds <= {int, float}


class CategoricalParam(_Param):
    """One of ``choices``."""

    type: Literal["categorical"]
    choices: list[Scalar] = Field(min_length=1)

    @field_validator("choices", mode="before")
    @classmethod
    def _no_null(cls, v: Any) -> Any:
        if isinstance(v, list) and any(c is None for c in v):  # before: pydantic's four lines, one per type
            raise ValueError(f"choices hold null (an empty YAML value or the word null): {v}; write each choice's value, "
                             "or drop the empty one")
        return v

    @field_validator("choices")
    @classmethod
    def _one_kind(cls, v: list[Scalar]) -> list[Scalar]:
        kinds = {"boolean" if isinstance(c, bool) else "number" if isinstance(c, (int, float)) else "string" for c in v}
        if len(kinds) > 1:
            raise ValueError(
                f"choices mix {' and '.join(k + 's' for k in sorted(kinds))}: {v}; give every choice the same type "
                "(quote all of them, or none; write true/false only for yes/no parameters)"
            )
        if len(set(v)) != len(v):  # by value: 4 and 4.0 are one choice (kinds are not mixed, so no True == 1)
            raise ValueError(f"choices repeat a value: {v}; list each choice once")
        return v

    def suggest(self, trial: optuna.trial.BaseTrial, name: str, carry: bool = False) -> Any:
        return trial.suggest_categorical(name, self.choices)

    def examples(self) -> list[Any]:
        return list(self.choices)


ParamSpec = Annotated[Union[FloatParam, IntParam, CategoricalParam], Field(discriminator="type")]


class Rule(BaseModel):
    """Pins parameters (``set``) wherever the condition ``when`` holds."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    name: str = ""
    when: Condition = Field(min_length=1)
    set: dict[str, Scalar] = Field(min_length=1)

    @field_validator("set", mode="before")
    @classmethod
    def _no_null(cls, v: Any) -> Any:
        if isinstance(v, dict) and (empty := sorted(str(k) for k, x in v.items() if x is None)):  # before: pydantic's
            # four lines, one per type (the review of stop 45), though `default: null` is taken
            ramp = (" (no ramp: pin beta_schedule: constant, or beta_end to beta's value)"
                    if "beta_end" in empty else "")
            raise ValueError(f"{', '.join(empty)}: null (an empty YAML value or the word null) cannot be pinned: a rule sets "
                             f"a value{ramp}; write the value, or drop the pin")
        return v


#: An int range of more values is listed by its first this many and its ``high`` (:func:`_sampled_values`).
ENUMERATED_INTS = 65_536


def _sampled_values(spec: "ParamSpec") -> list[Any]:
    """What sampling ``spec`` can give: every integer of an int range, a categorical's choices, a float range's bounds.

    An int range of more than :data:`ENUMERATED_INTS` values gives its first :data:`ENUMERATED_INTS` and ``high``: every
    ReuseFactor a Dense layer of up to that many weights can use (before, ``reuse_factor`` up to 3e7 took 3.4 GB to
    check).
    """
    if isinstance(spec, IntParam):
        grid = range(spec.low, spec.high + 1, spec.step)
        return list(grid) if len(grid) <= ENUMERATED_INTS else [*grid[:ENUMERATED_INTS], spec.high]
    return spec.examples()


def _yaml_flow(value: Any) -> str:
    """``value`` as YAML flow text (``[Latency, Resource]``), for a message that shows how to write it."""
    return yaml.safe_dump(value, default_flow_style=True, width=10_000, sort_keys=False).strip().removesuffix("...").strip()


def _implies(b: Condition, a: Condition) -> bool:
    """Whether every trial that meets ``b`` meets ``a``: each parameter ``a`` names, ``b`` names too, allowing only values ``a`` allows."""
    def allowed(want: Any) -> list[Any]:
        return want if isinstance(want, list) else [want]

    return all(k in b and all(any(x == y and isinstance(x, bool) == isinstance(y, bool) for y in allowed(a[k]))
                              for x in allowed(b[k])) for k in a)


def _holds(cond: Condition, values: dict[str, Any]) -> bool:
    for key, want in cond.items():
        allowed = want if isinstance(want, list) else [want]
        if not any(_equal(values.get(key), w) for w in allowed):
            return False
    return True


def _equal(value: Any, wanted: Any) -> bool:
    """``value == wanted``, floats to 1e-9 relative: Optuna draws a stepped float as ``low + k * step`` in binary
    (0.1 + 2 x 0.1 is 0.30000000000000004), so `when: {beta: 0.3}` on that grid never held (the review of stop 45)."""
    numbers = (int, float)
    if (isinstance(value, float) or isinstance(wanted, float)) and isinstance(value, numbers) and isinstance(wanted, numbers) \
            and not isinstance(value, bool) and not isinstance(wanted, bool):
        return math.isclose(value, wanted, rel_tol=1e-9, abs_tol=1e-300)
    return value == wanted



def _check_written_as_spec(name: str, spec: Any, known: set[str]) -> None:
    """Raise ``ValueError`` naming how parameter ``name``'s ``spec`` is miswritten (see :meth:`SearchSpace._written_as_specs`)."""
    where = f"parameters.{name}"
    if name not in known:
        network = ("; the network's layer widths are model.hidden in the experiment file, one network per study"
                   if name in ("hidden", "layers", "units", "width", "neurons") else "")
        raise ValueError(f"{where}: unknown parameter; allowed: {', '.join(sorted(known))}{network}")
    if isinstance(spec, _Param):  # built in Python (FloatParam(...)): already a spec
        return
    if isinstance(spec, list):
        raise ValueError(f"{where}: a list alone is not a parameter; write {name}: {{type: categorical, choices: "
                         f"{_yaml_flow(spec)}}}")
    if not isinstance(spec, dict):
        raise ValueError(f"{where}: {spec!r} alone is not a parameter; to search it write {name}: {{type: categorical, "
                         f"choices: [{_yaml_flow(spec)}, ...]}}, and to fix it for every trial leave it out of the space "
                         "(the experiment's defaults apply) or pin it with a rule")
    if "type" not in spec:
        guess = ("categorical" if "choices" in spec else
                 "int" if all(isinstance(spec.get(k), int) and not isinstance(spec.get(k), bool) for k in ("low", "high"))
                 else "float")
        raise ValueError(f"{where}: no 'type'; give type: float, int or categorical (here, likely type: {guess})")
    choices = spec.get("choices")
    if isinstance(choices, list) and any(isinstance(c, (list, dict)) for c in choices):
        bad = next(c for c in choices if isinstance(c, (list, dict)))
        raise ValueError(f"{where}.choices: {_yaml_flow(bad)} is not a single value; each choice is one number, "
                         "string or true/false")


def _problems(check: Any, calls: list[tuple]) -> list[str]:
    """The ``ValueError`` messages of ``check(*args)`` for each ``args`` in ``calls`` (each call's first problem)."""
    out = []
    for args in calls:
        try:
            check(*args)
        except ValueError as e:
            out.append(str(e))
    return out


class SearchSpace(BaseModel):
    """A validated search space: ordered parameters and rules.

    Use :meth:`suggest` inside an Optuna trial (``study.ask()``) to get :class:`TrialParams`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    parameters: dict[str, ParamSpec] = Field(min_length=1)
    rules: list[Rule] = []

    @model_validator(mode="before")
    @classmethod
    def _written_as_specs(cls, data: Any) -> Any:
        """Name the usual ways a parameter is miswritten, before pydantic's union and discriminator errors do.

        A bare list or value (``strategy: [Latency, Resource]``), a spec without ``type``, a choice
        that is a list (``hidden: {choices: [[8], [16, 8]]}``), and a name that is no parameter.
        """
        params = data.get("parameters") if isinstance(data, dict) else None
        if not isinstance(params, dict):
            return data
        known = set(TrialParams.model_fields) - _RESOLVED
        problems = _problems(_check_written_as_spec, [(name, spec, known) for name, spec in params.items()])
        if problems:  # every parameter's, not only the first: pydantic's own field errors are all shown too
            raise ValueError("\n  ".join(problems))
        return data

    @model_validator(mode="after")
    def _consistent(self) -> "SearchSpace":
        order = list(self.parameters)
        problems = _problems(self._check_parameter, [(order, name, spec) for name, spec in self.parameters.items()])
        problems += _problems(self._check_rule_names, [(order, i, rule) for i, rule in enumerate(self.rules)])
        declared = lambda condition: condition.keys() <= self.parameters.keys()  # noqa: E731  (else refused above)
        problems += _problems(self._check_condition, [(f"parameters.{name}.when", spec.when) for name, spec in self.parameters.items()
                                                      if spec.when and declared(spec.when)])
        problems += _problems(self._check_condition, [(f"rules[{i}].when", rule.when) for i, rule in enumerate(self.rules)
                                                      if declared(rule.when)])
        problems += _problems(self._check_rules_agree, [()])
        problems += _problems(self._check_schedule_has_end, [()])
        if problems:  # every problem found, one per line, as pydantic shows its field errors
            raise ValueError("\n  ".join(problems))
        return self

    def _check_parameter(self, order: list[str], name: str, spec: "_Param") -> None:
        """Refuse parameter ``name``'s spec where it cannot give what ``name`` takes (names are known: see _written_as_specs)."""
        if isinstance(spec, FloatParam) and _takes_whole_numbers(name):
            raise ValueError(
                f"parameters.{name}: type float, but {name} takes whole numbers (a float draw such as "
                f"{(spec.low + spec.high) / 2 + 0.37:g} would fail every trial); use type: int, or categorical choices"
            )
        if isinstance(spec, CategoricalParam) and _takes_numbers(name):
            quoted = [c for c in spec.choices if isinstance(c, str)]
            if quoted:
                raise ValueError(
                    f"parameters.{name}: choices {quoted} are strings (quoted in the YAML), but {name} takes numbers; "
                    f"write them without quotes, e.g. choices: [{', '.join(quoted)}]"
                )
        for key in spec.when or {}:
            if key not in order[: order.index(name)]:
                raise ValueError(
                    f"parameters.{name}.when: condition on {key!r}, which is not a parameter declared before {name!r}"
                )
        for value in spec.examples():
            _check_value(f"parameters.{name}", name, value)
        if spec.default is not None:
            _check_value(f"parameters.{name}.default", name, spec.default)
        if spec.when and spec.default is None and name not in _OPTIONAL:
            raise ValueError(f"parameters.{name}: a conditional parameter needs a 'default' for when its condition fails")
        # both were accepted and silently ignored
        if spec.when is not None and not spec.when:
            raise ValueError(f"parameters.{name}.when: an empty condition; name the parameters it reads, e.g. "
                             "when: {strategy: Resource}, or drop when")
        if spec.default is not None and not spec.when:
            raise ValueError(f"parameters.{name}.default: a default is taken only where the parameter's when fails, and "
                             f"{name} has no when, so it would never be used; add a when, or drop default")

    def _check_rule_names(self, order: list[str], i: int, rule: "Rule") -> None:
        """Refuse rule ``i`` where it reads or pins a parameter the space does not declare, or pins one before its condition's."""
        for key in rule.when:
            if key not in self.parameters:
                raise ValueError(f"rules[{i}].when: {key!r} is not a parameter of this space")
        last_cond = max(order.index(k) for k in rule.when)
        for key, value in rule.set.items():
            if key not in self.parameters:
                raise ValueError(f"rules[{i}].set: {key!r} is not a parameter of this space; declare it under parameters")
            if order.index(key) <= last_cond:
                raise ValueError(
                    f"rules[{i}].set: {key!r} must be declared after the parameters its condition reads ({', '.join(rule.when)})"
                )
            _check_value(f"rules[{i}].set.{key}", key, value)

    def _check_schedule_has_end(self) -> None:
        """Refuse a ``beta_schedule`` without a ``beta_end`` to ramp to."""
        if ("beta_schedule" in self.parameters and "beta_end" not in self.parameters
                and not any("beta_end" in r.set for r in self.rules)):
            raise ValueError("parameters.beta_schedule: beta_schedule shapes the ramp from beta to beta_end, and this space has "
                             "no beta_end, so every trial keeps beta constant and the sampled schedule changes nothing; add "
                             "beta_end (the value beta ramps to, e.g. {type: float, low: 1.0e-6, high: 1.0e-3, log: true}), "
                             "or drop beta_schedule")

    def _check_rules_agree(self) -> None:
        """Refuse a rule's pin that never applies: an earlier rule holds wherever it holds and pins that parameter otherwise.

        Where two rules hold for one trial, the first one's pin wins (rules apply in file order);
        a later rule that holds also elsewhere still pins there, and is kept.
        """
        for i, a in enumerate(self.rules):
            for j in range(i + 1, len(self.rules)):
                b = self.rules[j]
                clash = [k for k in a.set.keys() & b.set.keys() if not _same_number(a.set[k], b.set[k]) and a.set[k] != b.set[k]]
                if not clash or not _implies(b.when, a.when):
                    continue
                k = sorted(clash)[0]
                raise ValueError(
                    f"rules[{j}].set.{k}: rules[{i}] (when {_yaml_flow(dict(a.when))}) holds wherever rules[{j}] (when {_yaml_flow(dict(b.when))}) does and pins "
                    f"{k} to {a.set[k]!r}; the first rule wins, so rules[{j}]'s {k}: {b.set[k]!r} would never apply: "
                    f"narrow rules[{i}]'s condition, or drop one of the two pins"
                )

    def _check_condition(self, where: str, condition: Condition) -> None:
        """Refuse a condition value its parameter can never take (a misspelt choice would leave the condition dead)."""
        for key, wanted in condition.items():
            spec = self.parameters[key]
            if isinstance(spec, FloatParam):  # `when: {beta: 0.0}` without include_zero never held, unsaid
                pins = [r.set[key] for r in self.rules if key in r.set] + ([spec.default] if spec.default is not None else [])
                for value in wanted if isinstance(wanted, list) else [wanted]:
                    number = isinstance(value, (int, float)) and not isinstance(value, bool)
                    reachable = number and (spec.low <= value <= spec.high or (value == 0 and spec.include_zero)
                                            or any(value == p for p in pins))
                    if reachable and not ((value == 0 and spec.include_zero) or any(value == p for p in pins)):
                        # in the range: a continuous float is drawn at one value almost never, a stepped one on its grid
                        # only (the review of stop 45: `when: {beta: 1.0e-5}` held for 0 of 200 random trials)
                        n = (value - spec.low) / spec.step if spec.step else None
                        if n is None:
                            raise ValueError(
                                f"{where}.{key}: {value!r} is one point of {key!r}'s continuous range [{spec.low:g}, "
                                f"{spec.high:g}], drawn almost never, so this condition would practically never hold; "
                                f"condition on a categorical parameter instead, give {key} a step whose grid holds "
                                f"{value!r}, or pin {key} to {value!r} with a rule or its default")
                        if not _whole(n):
                            raise ValueError(
                                f"{where}.{key}: {value!r} is off {key!r}'s grid ({spec.low:g} + k x {spec.step:g}), so "
                                "this condition would never hold; use a value on the grid")
                    if not reachable:
                        zero = " (0 needs include_zero: true)" if value == 0 and not spec.include_zero else ""
                        raise ValueError(
                            f"{where}.{key}: {value!r} is never a value of {key!r} (it takes [{spec.low:g}, {spec.high:g}]"
                            f"{' or 0' if spec.include_zero else ''}){zero}, so this condition would never hold; check the value"
                        )
                continue
            possible = self.possible_values(key)
            for value in wanted if isinstance(wanted, list) else [wanted]:
                whole = isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer()
                if isinstance(spec, IntParam) and whole and (
                        spec.low <= value <= spec.high and (int(value) - spec.low) % spec.step == 0):
                    continue  # on the grid, however long the range (its listing stops at ENUMERATED_INTS); 4.0 is 4
                if isinstance(spec, IntParam) and len(possible) > 12:  # the grid, not every value, in the message
                    shown = [f"{spec.low}..{spec.high}" + (f" step {spec.step}" if spec.step != 1 else "")] + [
                        str(p) for p in possible if not (isinstance(p, int) and spec.low <= p <= spec.high)]
                    if not any(value == p for p in possible if not isinstance(p, str)):
                        raise ValueError(
                            f"{where}.{key}: {value!r} is never a value of {key!r} (it takes {', '.join(shown)}), "
                            "so this condition would never hold; check the value"
                        )
                    continue
                if not any(value == p and isinstance(value, bool) == isinstance(p, bool) for p in possible):
                    raise ValueError(
                        f"{where}.{key}: {value!r} is never a value of {key!r} (it takes {', '.join(map(repr, possible))}), "
                        "so this condition would never hold; check its spelling, or, if that value was left out of "
                        f"{key!r} on purpose, drop {where.rsplit('.', 1)[0].rsplit('.when', 1)[0]}, which depends on it"
                    )

    def possible_values(self, name: str) -> list[Any]:
        """Every value parameter ``name`` can take: its choices (or integer range), default and rule pins.

        Float ranges give their bounds only. Empty when the space does not declare ``name``.
        """
        spec = self.parameters.get(name)
        if spec is None:
            return []
        values = _sampled_values(spec)
        if spec.default is not None:
            values.append(spec.default)
        values += [r.set[name] for r in self.rules if name in r.set]
        return list(dict.fromkeys(values))

    def values_given(self, name: str, given: dict[str, Any]) -> list[tuple[Any, str]]:
        """Every value parameter ``name`` can take in a trial where the parameters in ``given`` have those values.

        Follows :meth:`suggest`: the first rule whose condition holds pins the value, else a
        ``when`` that fails gives the default, else the value is sampled. A condition on a parameter
        not in ``given`` is taken as possibly true and possibly false, so the answer may hold values
        no trial reaches, never miss one. Float ranges give their bounds only.

        Returns:
            ``(value, where)`` pairs, ``where`` naming what produces it (``"rules[0]"``,
            ``"parameters.reuse_factor"`` or ``"parameters.reuse_factor.default"``). Empty when the
            space does not declare ``name``.
        """
        spec = self.parameters.get(name)
        if spec is None:
            return []

        def verdict(cond: Condition) -> bool | None:
            """True: holds for every trial with ``given``; False: for none; None: for some."""
            if not _holds({k: v for k, v in cond.items() if k in given}, given):
                return False
            return True if cond.keys() <= given.keys() else None

        found: list[tuple[Any, str]] = []
        for i, rule in enumerate(self.rules):
            if name not in rule.set:
                continue
            holds = verdict(rule.when)
            if holds is False:
                continue
            found.append((rule.set[name], f"rules[{i}]"))
            if holds:
                return found
        holds = verdict(spec.when) if spec.when else True
        if holds is not False:
            found += [(v, f"parameters.{name}") for v in _sampled_values(spec)]
        if holds is not True:
            found.append((spec.default, f"parameters.{name}.default"))
        return found

    def suggest(self, trial: optuna.trial.BaseTrial, carry_inactive: bool = False) -> tuple[TrialParams, dict[str, Any]]:
        """Sample one point.

        Args:
            trial: the Optuna trial to draw from.
            carry_inactive: draw every parameter in every trial, also one a rule pins or whose ``when`` does not
                hold (its draw is kept in ``trial.params`` and not used: the trial trains with the pinned value or
                the default), and a float's value also where ``include_zero`` drew 0. For a genetic sampler
                (NSGA-II): it breeds only the parameters every completed trial has (Optuna's intersection search
                space) and draws the others at random, so without this, the conditional parameters of
                ``search_spaces/default.yaml`` (``beta`` among them) were never bred. As inactive genes of a genetic
                algorithm, they are bred and passed on while unexpressed.

        Returns:
            The trial's parameters, and the dict of parameters pinned by rules or defaults
            (store both with :func:`dse.store.record_trial_params`).
        """
        values: dict[str, Any] = {}
        fixed: dict[str, Any] = {}
        for name, spec in self.parameters.items():
            why = self._fixed(name, spec, values)
            if why is not None:
                values[name] = fixed[name] = why[1]
                if carry_inactive:
                    spec.suggest(trial, name, carry=True)
            else:
                values[name] = spec.suggest(trial, name, carry=carry_inactive)
        return TrialParams(**{k: v for k, v in values.items() if v is not None}), fixed

    def distributions(self) -> dict[str, "optuna.distributions.BaseDistribution"]:
        """Optuna's distribution of each parameter as :meth:`suggest` draws it (``<name>_is_zero``, a categorical of
        ``False``/``True``, before a float with ``include_zero``)."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        out: dict[str, Any] = {}
        for name, spec in self.parameters.items():
            if isinstance(spec, FloatParam):
                if spec.include_zero:
                    out[f"{name}_is_zero"] = CategoricalDistribution([False, True])
                out[name] = FloatDistribution(spec.low, spec.high, log=spec.log, step=spec.step)
            elif isinstance(spec, IntParam):
                out[name] = IntDistribution(spec.low, spec.high, log=spec.log, step=spec.step)
            else:
                out[name] = CategoricalDistribution(spec.choices)
        return out

    def _fixed(self, name: str, spec: "ParamSpec", values: dict[str, Any]) -> "tuple[Rule | None, Any] | None":
        """Whether ``name`` is fixed, given the values of the parameters before it.

        Returns:
            ``(rule, value)`` when a rule pins it, ``(None, default)`` when its ``when`` does not
            hold, ``None`` when it is sampled.
        """
        for r in self.rules:
            if name in r.set and _holds(r.when, values):
                return r, r.set[name]
        if spec.when and not _holds(spec.when, values):
            return None, spec.default
        return None

    def optuna_params(self, values: dict[str, Any], where: str = "enqueue_trials[0]") -> dict[str, Any]:
        """Translate a point of this space, as a user writes it, into the Optuna parameters of a trial.

        For Optuna's ``study.enqueue_trial``: a float with ``include_zero`` becomes
        ``<name>_is_zero`` (and ``<name>`` when not 0). Parameters left out are sampled as usual.

        Args:
            values: parameter name -> value, e.g. ``{"strategy": "Latency", "beta": 1e-5}``.
            where: the field that holds ``values``, for error messages.

        Returns:
            Optuna parameter name -> value.

        Raises:
            SearchSpaceError: a name that is not a parameter of this space, a value outside its
                range or choices, or a value for a parameter that a rule pins or whose ``when``
                does not hold (it would not be sampled); the message names ``where.<name>``.
        """
        unknown = [k for k in values if k not in self.parameters]
        if unknown:  # every one at once (probe 42: one per `dse check`, three rounds for a trial record's point)
            record = [k for k in unknown if k in TrialParams.model_fields]
            others = [k for k in unknown if k not in record]
            def it(names: list[str]) -> str:
                return "it" if len(names) == 1 else "them"

            fixes = ([f"{', '.join(record)}: a trial's record holds {it(record)}, but this space does not sample "
                      f"{it(record)}: leave {it(record)} out of the point, as every field of the record the space does not "
                      "name"] if record else []) + (
                     [f"{', '.join(others)}: declare {it(others)} under parameters to set {it(others)}, or drop "
                      f"{it(others)}"] if others else [])
            names = ", ".join(f"{where}.{k}" for k in unknown)
            raise SearchSpaceError(
                f"{names}: not {'a parameter' if len(unknown) == 1 else 'parameters'} of the search space; it has "
                f"{', '.join(self.parameters)} ({'; '.join(fixes)})"
            )
        out: dict[str, Any] = {}
        known: dict[str, Any] = {}  # values decided so far, for conditions (a left-out parameter is unknown)
        for name, spec in self.parameters.items():
            given = name in values
            value = values.get(name)
            decided = all(k in known for r in self.rules if name in r.set for k in r.when) and all(k in known for k in spec.when or {})
            if given and not decided:  # a value the space cannot give is told first (the advice below, then this)
                _optuna_value(spec, name, value, f"{where}.{name}")
            # a value a rule or `when` may replace, depending on what the sampler draws for a parameter the
            # point leaves out, was used or silently overridden. Accepted where every such alternative is that value.
            others = [(v, w) for v, w in self.values_given(name, known) if w != f"parameters.{name}"] if given and not decided else []
            differing = [w for v, w in others if not (v == value and isinstance(v, bool) == isinstance(value, bool))]
            if differing:
                open_ = list(dict.fromkeys(
                    [k for i, r in enumerate(self.rules) if f"rules[{i}]" in differing for k in r.when if k not in known]
                    + [k for k in spec.when or {} if k not in known and f"parameters.{name}.default" in differing]))
                reads = [f"rule {r.name or i!r} (when: {_yaml_flow(dict(r.when))})" for i, r in enumerate(self.rules) if f"rules[{i}]" in differing]
                if f"parameters.{name}.default" in differing:
                    reads.append(f"its own when: {_yaml_flow(dict(spec.when or {}))}")
                raise SearchSpaceError(
                    f"{where}.{name}: {value!r} may never be used: {' and '.join(reads)} decide{'s' if len(reads) == 1 else ''} "
                    f"it from {', '.join(open_)}, which the point leaves out, so the sampler draws "
                    f"{'it' if len(open_) == 1 else 'them'} and the trial may train with another value; give "
                    f"{', '.join(open_)} in the point too, or drop {name}"
                )
            why = self._fixed(name, spec, known) if decided else None
            if why is not None:
                rule, pinned = why
                if given and value != pinned and rule is not None:
                    raise SearchSpaceError(
                        f"{where}.{name}: {value!r}, but rule {rule.name or self.rules.index(rule)!r} pins it to "
                        f"{pinned!r} here; drop {name} or change the parameters the rule reads"
                    )
                if given and value != pinned:
                    raise SearchSpaceError(
                        f"{where}.{name}: {value!r} is never used here, because its condition {_yaml_flow(dict(spec.when or {}))} does not hold "
                        f"(it takes its default {pinned!r}); drop {name} or change the parameters it depends on"
                    )
                known[name] = pinned
                continue
            if not given:
                continue
            out.update(_optuna_value(spec, name, value, f"{where}.{name}"))
            known[name] = value
        zero = [k for k in ("beta", "beta_end") if k in known and known[k] == 0]
        if values.get("beta_schedule") == "log" and zero:
            raise SearchSpaceError(
                f"{where}.beta_schedule: 'log' is never used here, because {zero[0]} is 0 and a log ramp cannot start or "
                "end at 0 (such a ramp trains, and is recorded, as 'linear'); write beta_schedule: linear, or give "
                f"{zero[0]} a value above 0"
            )
        return out


def _optuna_value(spec: "FloatParam | IntParam | CategoricalParam", name: str, value: Any, where: str) -> dict[str, Any]:
    """Optuna parameter(s) for one user value of ``spec``; SearchSpaceError when the space cannot produce it."""
    if isinstance(spec, CategoricalParam):
        same = [c for c in spec.choices if type(value) is type(c) and value == c or _same_number(value, c)]
        if not same:
            raise SearchSpaceError(f"{where}: {value!r} is not one of the choices {spec.choices}; use one of them, or add it to the choices")
        return {name: same[0]}
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SearchSpaceError(f"{where}: {value!r} is not a number; give a number in [{spec.low}, {spec.high}], the range the space samples")
    if isinstance(spec, FloatParam) and spec.include_zero and value == 0:
        return {f"{name}_is_zero": True}
    if not spec.low <= value <= spec.high:
        hint = " (or 0: include_zero)" if isinstance(spec, FloatParam) and spec.include_zero else ""
        raise SearchSpaceError(
            f"{where}: {value!r} is outside the range [{spec.low}, {spec.high}]{hint} the space samples; "
            "give a value inside it, or widen the parameter in the search space"
        )
    if isinstance(spec, IntParam):
        if value != int(value) or (int(value) - spec.low) % spec.step:
            raise SearchSpaceError(f"{where}: {value!r} is not on the grid {spec.low}, {spec.low + spec.step}, ... of the space; give one of those values")
        value = int(value)
    else:
        value = float(value)
        if spec.step is not None:  # accepted, Optuna warned and the trial trained off the grid
            n = (value - spec.low) / spec.step
            if not _whole(n):
                on = spec.low + round(n) * spec.step
                raise SearchSpaceError(f"{where}: {value!r} is not on the grid {spec.low:g}, {spec.low + spec.step:g}, ... "
                                       f"(step {spec.step:g}) of the space; give one of those values, e.g. {on:g}")
    return ({f"{name}_is_zero": False} if isinstance(spec, FloatParam) and spec.include_zero else {}) | {name: value}


def _same_number(a: Any, b: Any) -> bool:
    """1 and 1.0 are the same choice; True and 1 are not."""
    nums = (int, float)
    return isinstance(a, nums) and isinstance(b, nums) and not isinstance(a, bool) and not isinstance(b, bool) and a == b


_OPTIONAL = {"beta_end", "learning_rate"}
#: Parameters the driver resolves from sampled ones; a search space cannot declare them.
_RESOLVED = {"layer_reuse_factors"}


def _check_value(where: str, name: str, value: Any) -> None:
    if isinstance(value, str) and _takes_numbers(name):  # pydantic would read "1" as 1 here, but the string is kept
        raise ValueError(f"{where}: {value!r} is quoted, and {name} is a number; write {value.strip()} without quotes "
                         "(as quoted choices are refused)")
    try:
        TrialParams(**{name: value})
    except ValidationError as e:
        err = e.errors()[0]
        raise ValueError(f"{where}: value {value!r} is not allowed: {err['msg']}") from None


def _env_reference(value: Any, where: str = "") -> tuple[str, str] | None:
    """The first ``(field, string)`` of a YAML value that holds ``${...}``, or None."""
    if isinstance(value, dict):
        items = ((f"{where}.{k}" if where else str(k), v) for k, v in value.items())
    elif isinstance(value, list):
        items = ((f"{where}[{i}]", v) for i, v in enumerate(value))
    else:
        return (where, value) if isinstance(value, str) and "${" in value else None
    return next((found for w, v in items if (found := _env_reference(v, w))), None)


def load_search_space(path: str | Path) -> SearchSpace:
    """Read and validate a search space YAML file.

    Raises:
        SearchSpaceError: the file is missing, not YAML, or invalid; the message names the field.
    """
    from dse.config._loading import format_validation_error, read_yaml

    data = read_yaml(path, what="search space", error=SearchSpaceError, field="search_space")
    if ref := _env_reference(data):
        raise SearchSpaceError(f"invalid search space {path}:\n  {ref[0]}: {ref[1]!r} holds an environment reference, which only "
                               "the experiment file expands; write the value itself in the search space")
    try:
        return SearchSpace.model_validate(data)
    except ValidationError as e:
        note = (f"\n  ({path} looks like an experiment file, with its `search_space`; search_space names the file of "
                "`parameters` and `rules`, e.g. search_spaces/default.yaml)"
                if isinstance(data, dict) and "search_space" in data and "parameters" not in data else "")
        raise SearchSpaceError(f"invalid search space {path}:\n{format_validation_error(e)}{note}") from e
