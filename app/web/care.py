"""The care pages' blueprint (patients, boards, infusions, the dose calculator live in their
own modules) and the filter they share."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from flask import Blueprint

bp = Blueprint("care", __name__)


@bp.app_template_filter("local")
def local_time(value: dt.datetime | None, timezone: str, fmt: str = "%H:%M") -> str:
    """Show a UTC time on a center's wall clock."""
    return value.astimezone(ZoneInfo(timezone)).strftime(fmt) if value else "—"


from app.web import (  # noqa: E402, F401  (routes)
    boards,
    calculator,
    infusions,
    labs,
    optimise,
    patients,
    placements,
    regimens,
    reviews,
    timeline,
    visits,
)
