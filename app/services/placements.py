"""The placement queue: days waiting for a chair (a closure, a retired chair or a full center
left them without one), with the free slots a nurse may put each in."""

from __future__ import annotations

import dataclasses
import datetime as dt

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.config import Settings
from app.domain import schedule
from app.models import Center, Infusion, InfusionStatus
from app.services import clinic, scheduling

#: Slots offered per waiting day (a display choice).
OFFERS = 6


@dataclasses.dataclass(frozen=True)
class Offer:
    chair_id: int
    chair_name: str
    starts_at: dt.datetime


@dataclasses.dataclass(frozen=True)
class Waiting:
    infusion: Infusion
    #: Free slots on its planned day, nearest the regimen's preferred time first in the day.
    offers: tuple[Offer, ...]
    #: Why none is offered, in words (closed that day, no free chair).
    why_none: str | None


def _busy_on(
    session: so.Session, center: Center, day: dt.date
) -> dict[int, list[schedule.Interval]]:
    midnight = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    # A waiting day holds no chair, so the same occupancy serves every one of that day.
    return scheduling.busy_intervals(
        session, center.id, midnight - dt.timedelta(days=1), midnight + dt.timedelta(days=2)
    )


def _offers(
    infusion: Infusion,
    center: Center,
    settings: Settings,
    busy: dict[int, list[schedule.Interval]],
) -> tuple[tuple[Offer, ...], str | None]:
    day = infusion.planned_date
    calendar = scheduling.center_calendar(center, settings, day, day)
    if calendar.hours_on(day) is None:
        return (), "the center is closed that day: move the day to another date"
    found = schedule.free_slots(
        day,
        calendar,
        infusion.regimen.preferred_time,
        dt.timedelta(minutes=infusion.planned_minutes),
        dt.timedelta(minutes=settings.scheduling.turnover_minutes),
        busy,
        settings.scheduling.slot_granularity_minutes,
        OFFERS,
    )
    names = {chair.id: chair.name for chair in center.chairs}
    offers = tuple(Offer(chair, names[chair], start) for chair, start in found)
    return offers, None if offers else "no chair is free long enough that day"


def queue(session: so.Session, center_id: int, settings: Settings, today: dt.date) -> list[Waiting]:
    """The center's days waiting for a chair, from today, earliest first, with offers."""
    center = clinic.get_center(session, center_id)
    rows = session.scalars(
        sa.select(Infusion)
        .where(
            Infusion.center_id == center_id,
            Infusion.status == InfusionStatus.UNBOOKED,
            Infusion.planned_date >= today,
        )
        .options(so.joinedload(Infusion.patient), so.joinedload(Infusion.regimen))
        .order_by(Infusion.planned_date, Infusion.id)
    ).all()
    busy: dict[dt.date, dict[int, list[schedule.Interval]]] = {}
    waiting = []
    for row in rows:
        if row.planned_date not in busy:
            busy[row.planned_date] = _busy_on(session, center, row.planned_date)
        offers, why = _offers(row, center, settings, busy[row.planned_date])
        waiting.append(Waiting(row, offers, why))
    return waiting


def waiting_count(session: so.Session, center_ids: list[int], today: dt.date) -> int:
    """How many days wait for a chair at these centers (for a worklist's badge)."""
    return (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(Infusion)
            .where(
                Infusion.center_id.in_(center_ids),
                Infusion.status == InfusionStatus.UNBOOKED,
                Infusion.planned_date >= today,
            )
        )
        or 0
    )
