"""Pages for a center's day and week at its chairs."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from flask import render_template, request

from app import clock, http
from app.auth import require
from app.policy import Action
from app.services import boards as board_service
from app.services import clinic
from app.web.care import bp


def _date_arg(default: dt.date) -> dt.date:
    try:
        return dt.date.fromisoformat(request.args.get("date", ""))
    except ValueError:
        return default


@bp.get("/centers/<int:center_id>/day")
@require(Action.VIEW_SCHEDULE)
def day_board(center_id: int) -> http.ResponseValue:
    """The center's day board: chairs x hours."""
    center = clinic.get_center(http.db(), center_id)
    day = _date_arg(clock.clinic_today(center.timezone))
    board = board_service.day_board(http.db(), center_id, day, http.settings())
    return render_template(
        "care/day.html", board=board, rows=_board_rows(board), one_day=dt.timedelta(days=1)
    )


def _board_rows(board: board_service.DayBoard) -> dict[str, object]:
    """Grid geometry: 15-minute rows from opening to closing, and each infusion's rows."""
    if board.hours is None:
        return {"times": [], "placement": {}}
    zone = ZoneInfo(board.center.timezone)
    opens = dt.datetime.combine(board.day, board.hours[0])
    closes = dt.datetime.combine(board.day, board.hours[1])
    times = []
    cursor = opens
    while cursor < closes:
        times.append(cursor.time())
        cursor += dt.timedelta(minutes=15)
    placement = {}
    for column, chair in enumerate(board.chairs, start=2):
        for infusion in board.by_chair.get(chair.id, []):
            assert infusion.starts_at is not None and infusion.ends_at is not None  # on a chair
            start = infusion.starts_at.astimezone(zone).replace(tzinfo=None)
            end = infusion.ends_at.astimezone(zone).replace(tzinfo=None)
            first = max(0, int((start - opens).total_seconds() // 900))
            last = max(first + 1, int(-(-(end - opens).total_seconds() // 900)))
            placement[infusion.id] = (column, first + 2, min(last, len(times)) + 2)
    return {"times": times, "placement": placement}


@bp.get("/centers/<int:center_id>/week")
@require(Action.VIEW_SCHEDULE)
def week_board(center_id: int) -> http.ResponseValue:
    """The center's week: infusions per day."""
    center = clinic.get_center(http.db(), center_id)
    day = _date_arg(clock.clinic_today(center.timezone))
    monday = day - dt.timedelta(days=day.weekday())
    boards = board_service.week_board(http.db(), center_id, monday, http.settings())
    return render_template(
        "care/week.html", boards=boards, center=center, monday=monday, week=dt.timedelta(days=7)
    )
