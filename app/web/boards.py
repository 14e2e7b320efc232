"""Pages for a center's day and week at its chairs."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

from flask import render_template, request

from app import clock, http
from app.auth import require
from app.domain import dosing
from app.models import InfusionStatus
from app.policy import Action
from app.services import boards as board_service
from app.services import clinic
from app.web.care import bp

#: A visit's state in words: the boards show it beside its colour, never the colour alone.
STATE_LABELS: dict[str, str] = {
    InfusionStatus.SCHEDULED: "scheduled",
    InfusionStatus.CHECKED_IN: "checked in",
    InfusionStatus.IN_CHAIR: "in chair",
    InfusionStatus.GIVEN: "given",
    InfusionStatus.PARTIAL: "stopped early",
    InfusionStatus.MISSED: "missed",
    InfusionStatus.CANCELLED: "cancelled",
    InfusionStatus.UNBOOKED: "waiting for a chair",
}
#: Minutes a row of the day board stands for.
ROW_MINUTES = 15


@bp.app_template_filter("state_label")
def state_label(status: str) -> str:
    """A visit's state in words ("checked in" for checked_in)."""
    return STATE_LABELS.get(status, status)


# Every page that shows a vial breakdown writes it with the domain's one function.
bp.add_app_template_filter(dosing.describe_vials, "vials")


def _date_arg() -> dt.date | None:
    try:
        return dt.date.fromisoformat(request.args.get("date", ""))
    except ValueError:
        return None


@bp.get("/centers/<int:center_id>/day")
@require(Action.VIEW_SCHEDULE)
def day_board(center_id: int) -> http.ResponseValue:
    """The center's day board: chairs x hours, the time now on today's, and what waits."""
    shown = board_service.board_now(http.db(), center_id, http.settings(), clock.now(), _date_arg())
    return render_template(
        "care/day.html",
        board=shown.board,
        shown=shown,
        grid=_grid(shown),
        one_day=dt.timedelta(days=1),
    )


@dataclasses.dataclass(frozen=True)
class NowLine:
    #: How far down the hours the line is, in percent of the day's open time.
    percent: float
    #: The center's time now, and the day's opening and closing, in minutes after midnight
    #: (app.js moves the line as time passes from these).
    minute: float
    opens_minute: int
    closes_minute: int
    label: str
    #: False before opening and after closing: the line waits, hidden, on today's board.
    visible: bool


@dataclasses.dataclass(frozen=True)
class Block:
    #: Where the block sits: its chair's column, its first row and the row after its last.
    classes: str
    #: Its times on the center's wall clock ("09:00-13:55", with an en dash).
    times: str


@dataclasses.dataclass(frozen=True)
class Grid:
    #: Wall-clock start of each row, opening to closing.
    times: list[dt.time]
    #: The grid rows where an hour begins (a gridline each).
    hour_rows: list[int]
    #: Infusion id -> its block on the grid.
    blocks: dict[int, Block]
    now: NowLine | None


def _minutes(at: dt.time) -> int:
    return at.hour * 60 + at.minute


def _grid(shown: board_service.BoardNow) -> Grid:
    """Grid geometry: rows from opening to closing, each infusion's rows, the now line."""
    board = shown.board
    if board.hours is None:
        return Grid([], [], {}, None)
    zone = ZoneInfo(board.center.timezone)
    opens = dt.datetime.combine(board.day, board.hours[0])
    closes = dt.datetime.combine(board.day, board.hours[1])
    times = []
    cursor = opens
    while cursor < closes:
        times.append(cursor.time())
        cursor += dt.timedelta(minutes=ROW_MINUTES)
    rows = len(times)
    blocks = {}
    for column, chair in enumerate(board.chairs, start=2):
        for infusion in board.by_chair.get(chair.id, []):
            assert infusion.starts_at is not None and infusion.ends_at is not None  # on a chair
            start = infusion.starts_at.astimezone(zone).replace(tzinfo=None)
            end = infusion.ends_at.astimezone(zone).replace(tzinfo=None)
            first = max(0, int((start - opens).total_seconds() // (ROW_MINUTES * 60)))
            last = max(first + 1, int(-(-(end - opens).total_seconds() // (ROW_MINUTES * 60))))
            blocks[infusion.id] = Block(
                f"col-{column} rs-{min(first, rows - 1) + 2} re-{min(last, rows) + 2}",
                f"{start:%H:%M}\u2013{end:%H:%M}",
            )
    hour_rows = [row for row, at in enumerate(times, start=2) if at.minute == 0]
    return Grid(times, hour_rows, blocks, _now_line(shown.now_local, *board.hours))


def _now_line(now: dt.time | None, opens: dt.time, closes: dt.time) -> NowLine | None:
    if now is None:
        return None
    minute = now.hour * 60 + now.minute + now.second / 60
    start, end = _minutes(opens), _minutes(closes)
    visible = start <= minute < end
    percent = (minute - start) / (end - start) * 100 if visible else 0.0
    return NowLine(round(percent, 3), round(minute, 2), start, end, f"{now:%H:%M}", visible)


@bp.get("/centers/<int:center_id>/week")
@require(Action.VIEW_SCHEDULE)
def week_board(center_id: int) -> http.ResponseValue:
    """The center's week: infusions per day."""
    center = clinic.get_center(http.db(), center_id)
    day = _date_arg() or clock.clinic_today(center.timezone)
    monday = day - dt.timedelta(days=day.weekday())
    boards = board_service.week_board(http.db(), center_id, monday, http.settings())
    return render_template(
        "care/week.html", boards=boards, center=center, monday=monday, week=dt.timedelta(days=7)
    )
