"""The clinic reports' filters (center, physician, date range) read from the query string, as
the stewardship ledger and the clinic reports both take them: a bad value is a 422 naming its
field."""

from __future__ import annotations

import datetime as dt

from flask import request

from app import clock, http
from app.services import clinic
from app.services.errors import InvalidInput
from app.services.stewardship import ClinicFilter


def query_date(name: str) -> dt.date | None:
    """The query string's date `name` (YYYY-MM-DD), or None when it is empty."""
    raw = request.args.get(name, "").strip()[:40]
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(f"{name}: {raw!r} is not a date (YYYY-MM-DD)", field=name) from None


def query_id(name: str) -> int | None:
    """The query string's id `name`, or None when it is empty."""
    raw = request.args.get(name, "").strip()[:40]
    if not raw:
        return None
    if not raw.isdigit() or int(raw) >= 2**31:
        raise InvalidInput(f"{name}: {raw!r} is not an id", field=name)
    return int(raw)


def clinic_filter() -> ClinicFilter:
    """The center, physician and date range the query string asks for."""
    return ClinicFilter(
        center_id=query_id("center"),
        physician_id=query_id("physician"),
        since=query_date("since"),
        until=query_date("until"),
    )


def clinic_today() -> dt.date:
    """Today on the clock of the clinic's first center (UTC with none)."""
    centers = clinic.list_centers(http.db())
    return clock.clinic_today(centers[0].timezone if centers else "UTC")


def form_values() -> dict[str, object]:
    """What the filter form (reports/clinic_filter.html) lists, and the query to carry over to
    the CSV link."""
    return {
        "centers": clinic.list_centers(http.db()),
        "physicians": clinic.list_physicians(http.db()),
        "args": {k: v for k, v in request.args.items() if v},
    }
