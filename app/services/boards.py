"""The center's day and week boards: its chairs and their infusions on local dates."""

from __future__ import annotations

import dataclasses
import datetime as dt

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.models import Center, Chair, Infusion, InfusionStatus
from app.services import clinic


@dataclasses.dataclass(frozen=True)
class DayBoard:
    center: Center
    day: dt.date
    hours: tuple[dt.time, dt.time] | None
    chairs: list[Chair]
    by_chair: dict[int, list[Infusion]]
    unbooked: list[Infusion]


def day_board(session: so.Session, center_id: int, day: dt.date) -> DayBoard:
    """The center's chairs and their infusions on a local date, in a fixed number of queries."""
    return week_board(session, center_id, day, days=1)[0]


def week_board(
    session: so.Session, center_id: int, first_day: dt.date, days: int = 7
) -> list[DayBoard]:
    """Day boards for consecutive local dates, loaded with one query for the infusions."""
    center = clinic.get_center(session, center_id)
    last_day = first_day + dt.timedelta(days=days - 1)
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
        hours = next((h for h in center.opening_hours if h.weekday == day.weekday()), None)
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
                chairs=list(center.chairs),
                by_chair=by_chair,
                unbooked=[i for i in todays if i.status == InfusionStatus.UNBOOKED],
            )
        )
    return boards
