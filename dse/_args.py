"""Argument checks for dse's Python entry points, which a CLI user never reaches with wrong types."""

from __future__ import annotations

import numbers
from typing import Any

__all__ = ["expect", "expect_trial_numbers", "is_real_number"]


def is_real_number(v: Any) -> bool:
    """Whether ``v`` is a real number (``int``, ``float``, a NumPy scalar), and not a ``bool``; NaN and infinity included."""
    return not isinstance(v, bool) and isinstance(v, numbers.Real)


def expect(arg: str, value: Any, kinds: type | tuple[type, ...], how: str) -> None:
    """Raise a ``TypeError`` naming ``arg`` when ``value`` is not one of ``kinds`` (a ``bool`` is no ``int``).

    Args:
        arg: the argument's name, as the caller wrote it.
        value: what was passed.
        kinds: the accepted types.
        how: how to make a right value (``"load it with dse.study.load_study(name, storage)"``).

    Raises:
        TypeError: ``value`` is of another type; the message says what was given and ``how``.
    """
    listed = kinds if isinstance(kinds, tuple) else (kinds,)
    ints = int in listed or numbers.Integral in listed
    if not isinstance(value, kinds) or (ints and isinstance(value, bool)):
        names = " or ".join("int" if k is numbers.Integral else k.__name__ for k in listed)
        raise TypeError(f"{arg}: expected {names}, got {type(value).__name__} {str(value)[:80]!r}; {how}")


def expect_trial_numbers(arg: str, value: Any) -> list[int]:
    """``value`` as a list of trial numbers (ints), or ``TypeError`` naming ``arg``.

    Raises:
        TypeError: ``value`` is a string, or not an iterable of ints (``[0, 3]``, ``range(5)``).
    """
    ok = not isinstance(value, (str, bytes)) and hasattr(value, "__iter__")
    items = list(value) if ok else []
    if not ok or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) for v in items):
        raise TypeError(f"{arg}: expected a list of trial numbers (ints), got {type(value).__name__} {str(value)[:80]!r}; "
                        "e.g. [0, 3]")
    return [int(v) for v in items]
