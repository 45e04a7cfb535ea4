"""Keeping passwords in URLs (Optuna storage, MLflow tracking) out of logs, MLflow and reports."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["redact_url", "redact_secrets"]

_MASK = "***"
# scheme://user: ... then the password, up to the '@' before the host (see redact_url)
_USER = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://[^:/@?#]*:")
# SQLAlchemy's user name, `[^:/]*`, holds '@' too: Azure's `user@server:password@host` logins (the review of stop 45:
# left unmasked)
_SQLA_USER = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://[^:/]*:")
_HTTP = re.compile(r"(?i)^https?://")


def redact_url(url: str) -> str:
    """``url`` with the password of its user info replaced by ``***``.

    Works for SQLAlchemy URLs (``postgresql+psycopg://user:pw@host:5432/db``), http(s) URLs with
    user info and any other ``scheme://user:password@host`` form; a URL without a password (or
    a string that is no URL at all) comes back unchanged. Outside http(s), the password is read as
    SQLAlchemy reads it (``sqlalchemy.engine.url``'s pattern: ``user:password@``, the password
    holding ``/``, ``?`` or ``#``), and masked up to the last ``@`` before the host's end. Query parameters named ``password`` (``passwd``, ``pwd``, ``sslpassword``)
    are masked too.

    Args:
        url: any string.

    Returns:
        The string with every password masked; never raises.
    """
    if not isinstance(url, str) or "://" not in url:
        return url
    out = url
    m = (_USER if _HTTP.match(out) else _SQLA_USER).match(out)
    if m:
        rest = out[m.end():]
        if _HTTP.match(out):  # an http(s) URL's user info ends at its authority's end: `host:8080/a@b` is a port and a path
            stop = min([i for i in (rest.find("?"), rest.find("#")) if i >= 0], default=len(rest))
            first_at, first_slash = rest.find("@", 0, stop), rest.find("/", 0, stop)
            has_password = first_at > 0 and (first_slash < 0 or first_at < first_slash or not rest[:first_slash].isdigit())
        else:  # SQLAlchemy's own pattern, `user:<[^@]*>@`: '/', '?' and '#' belong to the password, and `u:1234/56@h`
            stop, first_at = len(rest), rest.find("@")  # has one (before 2026-12-07 read as a port and a path, shown)
            has_password = first_at >= 0
        if has_password:
            end = min([i for i in (rest.find("/", first_at, stop), rest.find("?", first_at, stop)) if i >= 0], default=stop)
            at = rest.rfind("@", 0, end)  # a password may hold '@' too: masked up to the last before the host's end
            out = out[: m.end()] + _MASK + rest[at:]
    # the query masked in place, split by hand: urlunsplit drops the empty host of scheme:///db?...
    # (`postgresql:/db`), and urlsplit strips tabs and newlines, so its query need not be found again
    head, mark, tail = out.partition("?")
    query, hash_, fragment = tail.partition("#")
    if mark and re.search(r"(?i)(^|&)(password|passwd|pwd|sslpassword)=", query):
        out = head + mark + re.sub(r"(?i)((?:^|&)(?:password|passwd|pwd|sslpassword)=)[^&]*", rf"\g<1>{_MASK}", query) + hash_ + fragment
    return out


def redact_secrets(value: Any) -> Any:
    """A copy of ``value`` (nested dicts, lists, strings) with the password of every string that is a URL masked by
    :func:`redact_url` (a URL inside a longer text is left as it is: config values hold URLs whole).

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
