"""CSV downloads for the pages and the API: one writer, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence

from flask import Response

#: A cell starting with one of these is run as a formula by spreadsheets (OWASP: CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
#: A plain number ("-2.5") is no formula: it stays as it is, so it stays a number.
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
#: What a download's file name keeps (anything else becomes "_"): no quote, no header trick.
_UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9._-]")


def safe_cell(value: object) -> object:
    """A text cell a spreadsheet shows as text and never runs: a leading quote defuses it."""
    if (
        isinstance(value, str)
        and value.startswith(_FORMULA_STARTS)
        and not _NUMBER.fullmatch(value)
    ):
        return "'" + value
    return value


def csv_text(rows: Iterable[Sequence[object]]) -> str:
    """The rows as CSV text, every text cell defused."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow([safe_cell(value) for value in row])
    return buffer.getvalue()


def csv_response(rows: Iterable[Sequence[object]], filename: str) -> Response:
    """A UTF-8 CSV download of the rows, saved as `filename` (made safe for the header)."""
    return Response(
        csv_text(rows),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{_UNSAFE_IN_NAME.sub("_", filename)}"'
        },
    )
