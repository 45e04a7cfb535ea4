"""Keeping passwords in URLs (Optuna storage, MLflow tracking) out of logs, MLflow and reports."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["redact_url", "redact_secrets"]

_MASK = "***"
# scheme://user:password@host... ; the password part is everything up to the last '@' of the netloc
_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^:/@]*):(?P<pw>[^/]*)@")


def redact_url(url: str) -> str:
    """``url`` with the password of its user info replaced by ``***``.

    Works for SQLAlchemy URLs (``postgresql+psycopg://user:pw@host:5432/db``), http(s) URLs with
    user info and any other ``scheme://user:password@host`` form; a URL without a password (or
    a string that is no URL at all) comes back unchanged. Query parameters named ``password``
    are masked too.

    Args:
        url: any string.

    Returns:
        The string with every password masked; never raises.
    """
    if not isinstance(url, str) or "://" not in url:
        return url
    out = url
    m = _USERINFO.match(out)
    if m and m.group("pw"):
        # the password may itself contain '@' (unencoded): mask up to the last '@' before the path
        rest = out[m.end("user") + 1 :]
        netloc_end = rest.find("/")
        netloc = rest if netloc_end < 0 else rest[:netloc_end]
        at = netloc.rfind("@")
        out = out[: m.end("user") + 1] + _MASK + rest[at:]
    # the query masked in place, split by hand: urlunsplit drops the empty host of scheme:///db?...
    # (`postgresql:/db`), and urlsplit strips tabs and newlines, so its query need not be found again
    head, mark, tail = out.partition("?")
    query, hash_, fragment = tail.partition("#")
    if mark and re.search(r"(?i)(^|&)(password|passwd|pwd)=", query):
        out = head + mark + re.sub(r"(?i)((?:^|&)(?:password|passwd|pwd)=)[^&]*", rf"\g<1>{_MASK}", query) + hash_ + fragment
    return out


def redact_secrets(value: Any) -> Any:
    """A copy of ``value`` (nested dicts, lists, strings) with every URL password masked by :func:`redact_url`.

    Args:
        value: e.g. ``ExperimentConfig.model_dump(mode="json")``.

    Returns:
        The same structure; strings without a URL password are unchanged.
    """
    if isinstance(value, dict):
        return {k: redact_secrets(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_secrets(v) for v in value)
    if isinstance(value, str):
        return redact_url(value)
    return value
