"""The center's day and week boards: its chairs and their infusions on local dates."""

from __future__ import annotations

import dataclasses
import datetime as dt

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.config import Settings
from app.models import Center, Chair, Infusion, InfusionStatus
from app.services import clinic, scheduling


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


def day_board(session: so.Session, center_id: int, day: dt.date, settings: Settings) -> DayBoard:
    """The center's chairs and their infusions on a local date, in a fixed number of queries."""
    return week_board(session, center_id, day, settings, days=1)[0]


def week_board(
    session: so.Session, center_id: int, first_day: dt.date, settings: Settings, days: int = 7
) -> list[DayBoard]:
    """Day boards for consecutive local dates, loaded with one query for the infusions."""
    center = clinic.get_center(session, center_id)
    last_day = first_day + dt.timedelta(days=days - 1)
    closed = scheduling.closures_of(center, settings, first_day, last_day)
    infusions = list(
        session.scalars(
            sa.select(Infusion)
            .where(
                Infusion.center_id == center_id,
                Infusion.planned_date.between(first_day, last_day),
            )
            .options(so.joinedload(Infusion.patient), so.joinedload(Infusion.regimen))
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
