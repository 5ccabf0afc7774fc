"""CSV answers: RFC 4180 (the csv module: CRLF line ends, quotes doubled, fields with a comma,
quote or line break quoted), a header row, and no cell a spreadsheet would run as a formula.

Spreadsheets evaluate a cell that starts with = + - @ (and, in some, a tab or carriage
return) as a formula; a page is any text a visitor's browser sent, so such cells get a
leading apostrophe (OWASP's advice for CSV injection). Numbers are written as they are:
every number we write is a count, a non-negative integer, so it starts with a digit.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def harmless(value: object) -> object:
    """A cell's value with formula-like text neutralised; non-text values unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def to_csv(header: Sequence[str], rows: Iterable[dict]) -> str:
    """One header row, then each row's values in header order."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([harmless(row[name]) for name in header])
    return out.getvalue()
