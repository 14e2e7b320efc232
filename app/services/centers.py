"""Infusion centers: set up and edited by the clinic, and every change to when a center is open
(its hours, holidays, chairs, closures) re-books the infusions it leaves without a place.

Decisions:
- A center's calendar change is one transaction: the change, the re-planning of every patient
  with an infusion the new calendar no longer holds, and the audit row.
- A booking no longer fits when its day is closed, it runs outside the day's hours, or its
  chair is inactive. The patient's future cycles are planned afresh (a cycle not begun moves
  as a whole); a day of a cycle already under way is cancelled on its old slot and waits,
  unbooked, for a nurse to place it.
- The time zone cannot change while future infusions are booked: every booked wall-clock time
  would silently move.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import zoneinfo
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.config import Settings
from app.db import utcnow
from app.domain import schedule
from app.models import Center, Chair, Closure, Infusion, InfusionStatus, OpeningHours, Regimen
from app.models.center import CHAIR_KINDS
from app.services import audit, clinic, integrity, previews, regimens, scheduling
from app.services.context import Actor, unit_of_work
from app.services.errors import Conflict, InvalidInput, NotFound

#: Bounds of what a center may say (not clinical): nurses on one shift, chairs at one center.
MAX_NURSES = 100
MAX_CHAIRS = 200
#: The longest closure one entry may cover (a chair out for repairs, a renovation).
MAX_CLOSURE_DAYS = 366
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclasses.dataclass(frozen=True)
class DayHours:
    """One weekday's opening hours (local wall clock) and the infusion nurses on shift."""

    weekday: int
    opens_at: dt.time
    closes_at: dt.time
    nurses: int = 1


@dataclasses.dataclass(frozen=True)
class ChairInput:
    name: str
    kind: str = "recliner"
    active: bool = True
    notes: str | None = None


@dataclasses.dataclass(frozen=True)
class CenterInput:
    """A center as the clinic describes it; `chairs` only when it is created."""

    name: str
    timezone: str
    address: str | None = None
    holiday_country: str | None = None
    holiday_subdivision: str | None = None
    hours: tuple[DayHours, ...] = ()
    chairs: tuple[ChairInput, ...] = ()


@dataclasses.dataclass(frozen=True)
class ClosureInput:
    """A closure as the admin gives it: first and last day (one day when no last), one chair
    or the whole center, the whole day or part of each day (local wall-clock times)."""

    closed_on: dt.date
    reason: str
    closed_until: dt.date | None = None
    chair_id: int | None = None
    from_time: dt.time | None = None
    until_time: dt.time | None = None

    @property
    def last_day(self) -> dt.date:
        return self.closed_until or self.closed_on


def describe_closure(closure: Closure | ClosureInput, chair_name: str | None = None) -> str:
    """A closure in words: "Chair 2, Mon 07 Dec 2026 08:00-12:00" and the like."""
    last = closure.closed_until or closure.closed_on
    days = f"{closure.closed_on:%a %d %b %Y}"
    if last != closure.closed_on:
        days += f" to {last:%a %d %b %Y}"
    if closure.from_time is not None and closure.until_time is not None:
        days += f", {closure.from_time:%H:%M}-{closure.until_time:%H:%M}"
    return f"{chair_name}, {days}" if chair_name else days


_DAY_NAMES = {name[:3].lower(): index for index, name in enumerate(WEEKDAYS)}


def week_from_text(text: str, nurses: int = 1) -> tuple[DayHours, ...]:
    """Read weekly hours written as "Mon-Fri 08:00-18:00" or "Sat 09:00-13:00" (one span of
    days and one span of hours); raise InvalidInput naming what is wrong."""
    try:
        days, hours = text.split()
        first, _, last = days.partition("-")
        start, end = _DAY_NAMES[first[:3].lower()], _DAY_NAMES[(last or first)[:3].lower()]
        opens, closes = (dt.time.fromisoformat(part) for part in hours.split("-"))
    except (KeyError, ValueError):
        raise InvalidInput(
            f"hours: write days and hours like 'Mon-Fri 08:00-18:00' (got {text!r})", "hours"
        ) from None
    return tuple(DayHours(day, opens, closes, nurses) for day in range(start, end + 1))


@functools.cache
def holiday_countries() -> Mapping[str, tuple[str, ...]]:
    """Countries (ISO 3166 alpha-2) the `holidays` package knows, with their subdivisions."""
    import holidays

    # The package also knows three-letter aliases (USA); the center stores the ISO alpha-2.
    return {
        code: tuple(subs)
        for code, subs in holidays.list_supported_countries().items()
        if len(code) == 2
    }


@functools.cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _check_place(data: CenterInput) -> None:
    if not data.name.strip() or len(data.name) > 120:
        raise InvalidInput("name: give the center's name (at most 120 characters)", "name")
    if data.address is not None and len(data.address) > 255:
        raise InvalidInput("address: at most 255 characters", "address")
    if data.timezone not in _time_zones():
        raise InvalidInput(
            f"timezone: {data.timezone!r} is not an IANA time zone (e.g. America/New_York)",
            "timezone",
        )
    country, subdivision = data.holiday_country, data.holiday_subdivision
    if country is None:
        if subdivision is not None:
            raise InvalidInput(
                "holiday_subdivision: set the holiday country first", "holiday_subdivision"
            )
        return
    known = holiday_countries()
    if country not in known:
        raise InvalidInput(
            f"holiday_country: {country!r} is not a country with known public holidays "
            "(ISO 3166 code, e.g. US)",
            "holiday_country",
        )
    if subdivision is not None and subdivision not in known[country]:
        some = ", ".join(known[country][:12]) + (", ..." if len(known[country]) > 12 else "")
        raise InvalidInput(
            f"holiday_subdivision: {subdivision!r} is not a subdivision of {country} "
            f"({some or 'it has none'})",
            "holiday_subdivision",
        )


def _check_hours(hours: Iterable[DayHours]) -> None:
    seen: set[int] = set()
    for day in hours:
        if not 0 <= day.weekday <= 6:
            raise InvalidInput("weekday: 0 (Monday) to 6 (Sunday)", "hours")
        name = WEEKDAYS[day.weekday]
        if day.weekday in seen:
            raise InvalidInput(f"hours: {name} is given twice", "hours")
        seen.add(day.weekday)
        if day.opens_at >= day.closes_at:
            raise InvalidInput(
                f"hours: {name} closes ({day.closes_at:%H:%M}) before it opens "
                f"({day.opens_at:%H:%M})",
                "hours",
            )
        if not 1 <= day.nurses <= MAX_NURSES:
            raise InvalidInput(
                f"nurses: {name} needs 1 to {MAX_NURSES} infusion nurses (got {day.nurses})",
                "hours",
            )


def _check_chair(chair: ChairInput) -> None:
    if not chair.name.strip() or len(chair.name) > 40:
        raise InvalidInput("chair name: give a name (at most 40 characters)", "name")
    if chair.kind not in CHAIR_KINDS:
        raise InvalidInput(f"kind: one of {', '.join(CHAIR_KINDS)} (got {chair.kind!r})", "kind")
    if chair.notes is not None and len(chair.notes) > 500:
        raise InvalidInput("notes: at most 500 characters", "notes")


def _notes(chair: ChairInput) -> str | None:
    return (chair.notes or "").strip() or None


def _check_chairs(chairs: Iterable[ChairInput]) -> None:
    names: set[str] = set()
    for chair in chairs:
        _check_chair(chair)
        if chair.name.strip().casefold() in names:
            raise InvalidInput(f"chairs: {chair.name!r} is given twice", "chairs")
        names.add(chair.name.strip().casefold())
    if len(names) > MAX_CHAIRS:
        raise InvalidInput(f"chairs: at most {MAX_CHAIRS} at one center", "chairs")


def center_view(center: Center) -> dict[str, Any]:
    """What an audit row says about a center."""
    return {
        "name": center.name,
        "timezone": center.timezone,
        "address": center.address,
        "holiday_country": center.holiday_country,
        "holiday_subdivision": center.holiday_subdivision,
        "hours": [
            {
                "weekday": h.weekday,
                "opens_at": h.opens_at,
                "closes_at": h.closes_at,
                "nurses": h.nurses,
            }
            for h in sorted(center.opening_hours, key=lambda h: h.weekday)
        ],
    }


def chair_view(chair: Chair) -> dict[str, Any]:
    return {"name": chair.name, "kind": chair.kind, "active": chair.active, "notes": chair.notes}


def _load(session: so.Session, center_id: int) -> Center:
    return clinic.get_center(session, center_id, lock=True)


def _refuse_taken_name(session: so.Session, name: str, center_id: int | None = None) -> None:
    taken = session.scalar(
        sa.select(Center.id).where(sa.func.lower(Center.name) == name.strip().lower())
    )
    if taken is not None and taken != center_id:
        raise Conflict(f"name: a center is already called {name.strip()!r}", "name")


def create_center(session: so.Session, actor: Actor, data: CenterInput) -> Center:
    """Create a center with its hours and chairs (no bookings yet, so nothing re-plans)."""
    _check_place(data)
    _check_hours(data.hours)
    _check_chairs(data.chairs)
    with unit_of_work(session):
        _refuse_taken_name(session, data.name)
        center = Center(
            name=data.name.strip(),
            timezone=data.timezone,
            address=(data.address or "").strip() or None,
            holiday_country=data.holiday_country,
            holiday_subdivision=data.holiday_subdivision,
        )
        center.opening_hours = [
            OpeningHours(
                weekday=h.weekday, opens_at=h.opens_at, closes_at=h.closes_at, nurses=h.nurses
            )
            for h in data.hours
        ]
        center.chairs = [
            Chair(name=c.name.strip(), kind=c.kind, active=c.active, notes=_notes(c))
            for c in data.chairs
        ]
        session.add(center)
        try:
            with session.begin_nested():
                session.flush()
        except sa.exc.IntegrityError:
            # Another admin created the same name at the same moment.
            raise Conflict(
                f"name: a center is already called {data.name.strip()!r}", "name"
            ) from None
        after = center_view(center) | {"chairs": [chair_view(c) for c in center.chairs]}
        audit.record(session, actor, "center.create", "center", center.id, after=after)
    return center


def _has_future_bookings(session: so.Session, center: Center, today: dt.date) -> bool:
    return (
        session.scalar(
            sa.select(Infusion.id)
            .where(
                Infusion.center_id == center.id,
                Infusion.planned_date >= today,
                Infusion.status.in_([InfusionStatus.SCHEDULED, InfusionStatus.UNBOOKED]),
            )
            .limit(1)
        )
        is not None
    )


def update_center(
    session: so.Session,
    actor: Actor,
    center_id: int,
    data: CenterInput,
    settings: Settings,
    now: dt.datetime | None = None,
) -> tuple[Center, dict[str, int]]:
    """Change a center's name, address, time zone, holidays and weekly hours; infusions the
    new calendar no longer holds are re-booked in the same transaction."""
    _check_place(data)
    _check_hours(data.hours)
    now = now or utcnow()
    with unit_of_work(session):
        center = _load(session, center_id)
        _refuse_taken_name(session, data.name, center.id)
        today = schedule.local_date(now, center.timezone)
        if data.timezone != center.timezone and _has_future_bookings(session, center, today):
            raise Conflict(
                f"timezone: {center.name} has infusions booked on its clock "
                f"({center.timezone}); move or cancel them before changing the time zone",
                "timezone",
            )
        before = center_view(center)
        center.name = data.name.strip()
        center.address = (data.address or "").strip() or None
        center.timezone = data.timezone
        center.holiday_country = data.holiday_country
        center.holiday_subdivision = data.holiday_subdivision
        _replace_hours(session, center, data.hours)
        totals = rebook_misfits(session, center, settings, now, f"{center.name}: opening changed")
        audit.record(
            session,
            actor,
            "center.update",
            "center",
            center.id,
            before=before,
            after=center_view(center) | {"replan": totals},
        )
    return center, totals


def _replace_hours(session: so.Session, center: Center, hours: tuple[DayHours, ...]) -> None:
    wanted = {h.weekday: h for h in hours}
    for row in list(center.opening_hours):
        day = wanted.pop(row.weekday, None)
        if day is None:
            center.opening_hours.remove(row)
        else:
            row.opens_at, row.closes_at, row.nurses = day.opens_at, day.closes_at, day.nurses
    for day in wanted.values():
        center.opening_hours.append(
            OpeningHours(
                weekday=day.weekday,
                opens_at=day.opens_at,
                closes_at=day.closes_at,
                nurses=day.nurses,
            )
        )
    session.flush()


def add_chair(session: so.Session, actor: Actor, center_id: int, data: ChairInput) -> Chair:
    """Add a chair (an active one is bookable at once)."""
    _check_chair(data)
    with unit_of_work(session):
        center = _load(session, center_id)
        _refuse_taken_chair(center, data.name)
        if len(center.chairs) >= MAX_CHAIRS:
            raise Conflict(f"chairs: at most {MAX_CHAIRS} at one center", "chairs")
        chair = Chair(
            name=data.name.strip(), kind=data.kind, active=data.active, notes=_notes(data)
        )
        center.chairs.append(chair)
        session.flush()
        audit.record(session, actor, "chair.create", "chair", chair.id, after=chair_view(chair))
    return chair


def _refuse_taken_chair(center: Center, name: str, chair_id: int | None = None) -> None:
    for chair in center.chairs:
        if chair.name.casefold() == name.strip().casefold() and chair.id != chair_id:
            raise Conflict(f"name: {center.name} already has a chair called {chair.name!r}", "name")


def update_chair(
    session: so.Session,
    actor: Actor,
    chair_id: int,
    data: ChairInput,
    settings: Settings,
    now: dt.datetime | None = None,
) -> tuple[Chair, dict[str, int]]:
    """Rename, re-describe, retire or bring back a chair; a retired chair's bookings move."""
    _check_chair(data)
    now = now or utcnow()
    with unit_of_work(session):
        center_id = session.scalar(sa.select(Chair.center_id).where(Chair.id == chair_id))
        if center_id is None:
            raise NotFound(f"chair_id: no chair {chair_id}", field="chair_id")
        center = _load(session, center_id)
        chair = next(c for c in center.chairs if c.id == chair_id)
        _refuse_taken_chair(center, data.name, chair.id)
        before = chair_view(chair)
        chair.name, chair.kind = data.name.strip(), data.kind
        chair.active, chair.notes = data.active, _notes(data)
        session.flush()
        totals = rebook_misfits(
            session, center, settings, now, f"{center.name}: {chair.name} taken out of use"
        )
        audit.record(
            session,
            actor,
            "chair.update",
            "chair",
            chair.id,
            before=before,
            after=chair_view(chair) | {"replan": totals},
        )
    return chair, totals


# ------------------------------------------------------------------- closures and re-booking


def _lock_for_rebooking(
    session: so.Session, center_id: int, patient_ids: list[int]
) -> dict[int, Regimen | None]:
    """Lock every patient first, then the chairs (the lock order). Their regimens may book at
    other centers too: take each center's chairs now, in order, so two closures never wait on
    each other (re-planning takes them again, at once). Returns each current regimen."""
    for patient_id in patient_ids:
        integrity.lock_patient(session, patient_id)
    current = {pid: regimens.current_regimen(session, pid) for pid in patient_ids}
    booked_at = {center_id} | {r.center_id for r in current.values() if r is not None}
    for booking_center in sorted(booked_at):
        scheduling.lock_chairs(session, booking_center)
    return current


def _misfits(
    session: so.Session, center: Center, settings: Settings, today: dt.date
) -> list[Infusion]:
    """The center's infusions to come that its calendar no longer holds."""
    rows = session.scalars(
        sa.select(Infusion)
        .where(
            Infusion.center_id == center.id,
            Infusion.planned_date >= today,
            Infusion.status.in_([InfusionStatus.SCHEDULED, InfusionStatus.UNBOOKED]),
        )
        .order_by(Infusion.planned_date, Infusion.id)
    ).all()
    if not rows:
        return []
    calendar = scheduling.center_calendar(center, settings, today, rows[-1].planned_date)
    return [row for row in rows if not _fits(row, calendar)]


def _fits(infusion: Infusion, calendar: schedule.CenterCalendar) -> bool:
    if infusion.status == InfusionStatus.UNBOOKED or infusion.starts_at is None:
        return calendar.hours_on(infusion.planned_date) is not None
    ends_at = infusion.ends_at or infusion.starts_at
    return (
        infusion.chair_id in calendar.chair_ids
        and schedule.booking_fits(calendar, infusion.planned_date, infusion.starts_at, ends_at)
        and calendar.blocking(
            infusion.chair_id, infusion.starts_at, infusion.occupied_until or ends_at
        )
        is None
    )


def rebook_misfits(
    session: so.Session, center: Center, settings: Settings, now: dt.datetime, cause: str
) -> dict[str, int]:
    """Re-plan every patient with an infusion the center's calendar no longer holds; a day of
    a cycle under way that still has no place is cancelled there and left for a nurse."""
    session.expire(center, ["closures", "opening_hours", "chairs"])
    today = schedule.local_date(now, center.timezone)
    totals = {"patients": 0, "moved": 0, "created": 0, "cancelled": 0, "unbooked": 0}
    misfits = _misfits(session, center, settings, today)
    affected = sorted({row.patient_id for row in misfits})
    current = _lock_for_rebooking(session, center.id, affected)
    for patient_id in affected:
        regimen = current[patient_id]
        if regimen is None:
            continue
        summary = scheduling.replan(session, regimen, settings, today, now, cause=cause).summary()
        totals["patients"] += 1
        for key in ("moved", "created", "cancelled", "unbooked"):
            totals[key] += summary[key]
    stranded = [
        row
        for row in _misfits(session, center, settings, today)
        if row.status == InfusionStatus.SCHEDULED
    ]
    for infusion in stranded:
        _strand(session, infusion, cause, now)
    totals["unbooked"] += len(stranded)
    return totals


def _strand(session: so.Session, infusion: Infusion, cause: str, now: dt.datetime) -> None:
    """Cancel a booking its slot no longer holds (calendars show it so, with its time) and
    leave a copy without a chair for a nurse to place."""
    infusion.status = InfusionStatus.CANCELLED
    infusion.status_reason = cause
    infusion.mark_changed(now, significant=True)
    session.add(
        Infusion(
            patient_id=infusion.patient_id,
            regimen_id=infusion.regimen_id,
            cycle_number=infusion.cycle_number,
            day_number=infusion.day_number,
            planned_date=infusion.planned_date,
            cycle_planned_on=infusion.cycle_planned_on,
            shift_days=infusion.shift_days,
            center_id=infusion.center_id,
            status=InfusionStatus.UNBOOKED,
            planned_grams=infusion.planned_grams,
            planned_vials=infusion.planned_vials,
            planned_minutes=infusion.planned_minutes,
            status_reason=f"{cause}; place this day",
            created_at=now,
            updated_at=now,
        )
    )


def patients_at(center_id: int, today: dt.date) -> sa.ColumnElement[bool]:
    """The infusions to come of every patient booked at the center: what a change to its
    calendar may move."""
    booked_here = sa.select(Infusion.patient_id).where(
        Infusion.center_id == center_id,
        Infusion.planned_date >= today,
        Infusion.status.in_([InfusionStatus.SCHEDULED, InfusionStatus.UNBOOKED]),
    )
    return sa.and_(Infusion.patient_id.in_(booked_here), Infusion.planned_date >= today)


def preview_closure(
    session: so.Session,
    actor: Actor,
    center_id: int,
    data: ClosureInput,
    settings: Settings,
    now: dt.datetime | None = None,
) -> previews.Preview:
    """What the closure would do to the bookings; nothing is saved."""
    now = now or utcnow()
    today = _today_at(session, center_id, now)
    _totals, preview = previews.dry_run(
        session,
        patients_at(center_id, today),
        lambda: add_closure(session, actor, center_id, data, settings, now)[1],
    )
    return preview


def _today_at(session: so.Session, center_id: int, now: dt.datetime) -> dt.date:
    zone = session.scalar(sa.select(Center.timezone).where(Center.id == center_id))
    if zone is None:
        raise NotFound(f"center_id: no center {center_id}", field="center_id")
    return schedule.local_date(now, zone)


def add_closure(
    session: so.Session,
    actor: Actor,
    center_id: int,
    data: ClosureInput,
    settings: Settings,
    now: dt.datetime | None = None,
    fingerprint: str | None = None,
) -> tuple[Closure, dict[str, int]]:
    """Close a center (or one chair) and re-plan every patient booked then, in one
    transaction; with the `fingerprint` of a preview, only if it does exactly what the
    preview showed."""
    _check_closure(data)
    now = now or utcnow()
    with unit_of_work(session):
        today = _today_at(session, center_id, now)
        result, _preview = previews.confirmed(
            session,
            patients_at(center_id, today),
            lambda: _close(session, actor, center_id, data, settings, now),
            fingerprint,
        )
    return result


def _check_closure(data: ClosureInput) -> None:
    if not data.reason.strip() or len(data.reason) > 200:
        raise InvalidInput("reason: give a reason (at most 200 characters)", field="reason")
    if data.last_day < data.closed_on:
        raise InvalidInput(
            f"closed_until: the last day is before the first ({data.closed_on})",
            field="closed_until",
        )
    if (data.last_day - data.closed_on).days + 1 > MAX_CLOSURE_DAYS:
        raise InvalidInput(
            f"closed_until: at most {MAX_CLOSURE_DAYS} days in one closure", field="closed_until"
        )
    if (data.from_time is None) != (data.until_time is None):
        missing = "until_time" if data.until_time is None else "from_time"
        raise InvalidInput(
            f"{missing}: give both times for part of a day, or neither", field=missing
        )
    if (
        data.from_time is not None
        and data.until_time is not None
        and (data.from_time >= data.until_time)
    ):
        raise InvalidInput(f"until_time: must be after {data.from_time:%H:%M}", field="until_time")


def _overlaps(closure: Closure, data: ClosureInput) -> bool:
    """Whether an existing closure already closes what the new one would, at least in part:
    the same place (the center, or the same chair) on a shared day at a shared time."""
    if closure.chair_id != data.chair_id:
        return False
    if closure.closed_on > data.last_day or closure.closed_until < data.closed_on:
        return False
    if closure.from_time is None or data.from_time is None or data.until_time is None:
        return True
    assert closure.until_time is not None
    return closure.from_time < data.until_time and data.from_time < closure.until_time


def _close(
    session: so.Session,
    actor: Actor,
    center_id: int,
    data: ClosureInput,
    settings: Settings,
    now: dt.datetime,
) -> tuple[Closure, dict[str, int]]:
    center = _load(session, center_id)
    today = schedule.local_date(now, center.timezone)
    if data.closed_on < today:
        raise InvalidInput("closed_on: not in the past", field="closed_on")
    chair_name = None
    if data.chair_id is not None:
        chair = next((c for c in center.chairs if c.id == data.chair_id), None)
        if chair is None:
            raise NotFound(
                f"chair_id: {center.name} has no chair {data.chair_id}", field="chair_id"
            )
        chair_name = chair.name
    taken = next((c for c in center.closures if _overlaps(c, data)), None)
    if taken is not None:
        raise Conflict(
            f"closed_on: {chair_name or center.name} is already closed then "
            f"({describe_closure(taken)}: {taken.reason})",
            field="closed_on",
        )
    closure = Closure(
        center_id=center_id,
        closed_on=data.closed_on,
        closed_until=data.last_day,
        chair_id=data.chair_id,
        from_time=data.from_time,
        until_time=data.until_time,
        reason=data.reason.strip(),
    )
    session.add(closure)
    session.flush()
    where = chair_name or center.name
    totals = rebook_misfits(
        session,
        center,
        settings,
        now,
        f"{where} closed on {describe_closure(data)}: {closure.reason}",
    )
    audit.record(
        session,
        actor,
        "center.closure",
        "center",
        center_id,
        after=closure_view(closure) | {"replan": totals},
    )
    return closure, totals


def closures_to_come(
    session: so.Session, center_id: int, now: dt.datetime | None = None
) -> list[Closure]:
    """The center's closures whose last day is today or later, earliest first."""
    today = _today_at(session, center_id, now or utcnow())
    return list(
        session.scalars(
            sa.select(Closure)
            .where(Closure.center_id == center_id, Closure.closed_until >= today)
            .options(so.selectinload(Closure.chair))
            .order_by(Closure.closed_on, Closure.from_time, Closure.id)
        )
    )


def closure_view(closure: Closure) -> dict[str, Any]:
    """A closure as the API and the audit trail show it."""
    return {
        "id": closure.id,
        "center_id": closure.center_id,
        "closed_on": closure.closed_on,
        "closed_until": closure.closed_until,
        "chair_id": closure.chair_id,
        "from_time": closure.from_time,
        "until_time": closure.until_time,
        "reason": closure.reason,
    }
