"""The center's day and week boards: its chairs and their infusions on local dates."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.config import Settings
from app.domain import schedule
from app.models import Center, Chair, Infusion, InfusionStatus, Patient
from app.services import clinic, placements, scheduling


@dataclasses.dataclass(frozen=True)
class DayBoard:
    center: Center
    day: dt.date
    #: None when the center is closed that day (by its weekly hours or a closure).
    hours: tuple[dt.time, dt.time] | None
    #: Why a day the center would open is closed (a closure's reason, a holiday's name).
    closure: str | None
    #: Closures of a chair or part of the day, in words ("Chair 2 closed 08:00-12:00: ...").
    part_closures: list[str]
    chairs: list[Chair]
    by_chair: dict[int, list[Infusion]]
    unbooked: list[Infusion]
    #: Cancelled that day: they hold no chair, so another booking may take their place.
    cancelled: list[Infusion] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class BoardNow:
    """A day board as the chairside tablet shows it: where "now" is, and what waits."""

    board: DayBoard
    #: The center's date now.
    today: dt.date
    #: The center's wall-clock time now, on today's board only (None on any other day).
    now_local: dt.time | None
    #: Days waiting for a chair at the center from today on (the placement queue's length).
    waiting: int


def day_board(session: so.Session, center_id: int, day: dt.date, settings: Settings) -> DayBoard:
    """The center's chairs and their infusions on a local date, in a fixed number of queries."""
    center = clinic.get_center(session, center_id)
    return _boards(session, center, day, settings, days=1)[0]


def board_now(
    session: so.Session,
    center_id: int,
    settings: Settings,
    now: dt.datetime,
    day: dt.date | None = None,
) -> BoardNow:
    """The center's day board (today at the center unless `day` is given), the center's time
    now when the board is today's, and how many days wait for a chair; in a fixed number of
    queries, whatever the number of infusions."""
    center = clinic.get_center(session, center_id)
    today = schedule.local_date(now, center.timezone)
    board = _boards(session, center, day or today, settings, days=1, shown_only=True)[0]
    wall = now.astimezone(ZoneInfo(center.timezone)).time()
    return BoardNow(
        board=board,
        today=today,
        now_local=wall if board.day == today else None,
        waiting=placements.waiting_count(session, [center.id], today),
    )


def week_board(
    session: so.Session, center_id: int, first_day: dt.date, settings: Settings, days: int = 7
) -> list[DayBoard]:
    """Day boards for consecutive local dates, loaded with one query for the infusions."""
    center = clinic.get_center(session, center_id)
    return _boards(session, center, first_day, settings, days)


#: What a board block shows of an infusion and its patient (the rest of the row, and the
#: visit's documentation, stay in the database: reading them cost time the board never used).
_SHOWN = (
    so.load_only(
        Infusion.patient_id,
        Infusion.cycle_number,
        Infusion.day_number,
        Infusion.planned_date,
        Infusion.center_id,
        Infusion.chair_id,
        Infusion.starts_at,
        Infusion.ends_at,
        Infusion.status,
        Infusion.planned_grams,
        Infusion.planned_vials,
        raiseload=True,
    ),
    so.joinedload(Infusion.patient).load_only(
        Patient.family_name, Patient.given_name, Patient.mrn, Patient.birth_date, raiseload=True
    ),
    so.raiseload("*"),
)


def _boards(
    session: so.Session,
    center: Center,
    first_day: dt.date,
    settings: Settings,
    days: int,
    shown_only: bool = False,
) -> list[DayBoard]:
    last_day = first_day + dt.timedelta(days=days - 1)
    closed = scheduling.closures_of(center, settings, first_day, last_day)
    # The boards show the patient, never the regimen: loading it cost a join per row.
    options = _SHOWN if shown_only else (so.joinedload(Infusion.patient),)
    infusions = list(
        session.scalars(
            sa.select(Infusion)
            .where(
                Infusion.center_id == center.id,
                Infusion.planned_date.between(first_day, last_day),
            )
            .options(*options)
            .order_by(Infusion.starts_at, Infusion.id)
        )
    )
    boards = []
    for offset in range(days):
        day = first_day + dt.timedelta(days=offset)
        closure = closed.get(day)
        hours = next((h for h in center.opening_hours if h.weekday == day.weekday()), None)
        if closure is not None:
            hours = None
        todays = [i for i in infusions if i.planned_date == day]
        by_chair: dict[int, list[Infusion]] = {chair.id: [] for chair in center.chairs}
        for infusion in todays:
            if infusion.chair_id is not None and infusion.status != InfusionStatus.CANCELLED:
                by_chair.setdefault(infusion.chair_id, []).append(infusion)
        boards.append(
            DayBoard(
                center=center,
                day=day,
                hours=(hours.opens_at, hours.closes_at) if hours else None,
                closure=closure,
                part_closures=_part_closures(center, day),
                chairs=list(center.chairs),
                by_chair=by_chair,
                unbooked=[i for i in todays if i.status == InfusionStatus.UNBOOKED],
                cancelled=[i for i in todays if i.status == InfusionStatus.CANCELLED],
            )
        )
    return boards


def _part_closures(center: Center, day: dt.date) -> list[str]:
    names = {chair.id: chair.name for chair in center.chairs}
    said = []
    for closure in center.closures:
        if closure.whole_days or not closure.closed_on <= day <= closure.closed_until:
            continue
        place = names.get(closure.chair_id or 0, "Every chair")
        times = (
            f" {closure.from_time:%H:%M}-{closure.until_time:%H:%M}"
            if closure.from_time is not None and closure.until_time is not None
            else " all day"
        )
        said.append(f"{place} closed{times}: {closure.reason}")
    return said
