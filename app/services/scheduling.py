"""Turn a regimen version into chair bookings, and re-plan only the future when it changes."""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.config import Settings
from app.db import utcnow
from app.domain import reconcile, schedule
from app.domain.schedule import add_months
from app.models import Center, Infusion, InfusionStatus, Notice, Patient, Regimen
from app.models.infusion import CHAIR_HOLDING

if TYPE_CHECKING:
    from app.services import reviews
from app.services import audit, integrity, jobruns, worklist
from app.services.context import system_actor
from app.services.errors import ServiceError

log = logging.getLogger(__name__)


@dataclass
class ReplanResult:
    created: list[Infusion] = field(default_factory=list)
    moved: list[Infusion] = field(default_factory=list)
    unchanged: list[Infusion] = field(default_factory=list)
    cancelled: list[Infusion] = field(default_factory=list)
    #: Manual moves the new plan could not keep (their nurse has a worklist notice).
    unkept: list[Infusion] = field(default_factory=list)
    #: The horizon stopped before the cycle planned on this date (see reconcile).
    blocked_on: dt.date | None = None
    #: The horizon booked nothing: the course review is overdue.
    waiting_review: bool = False

    def summary(self) -> dict[str, int]:
        return {
            "created": len(self.created),
            "moved": len(self.moved),
            "unchanged": len(self.unchanged),
            "cancelled": len(self.cancelled),
            "moves_not_kept": len(self.unkept),
            "unbooked": sum(
                1 for i in self.created + self.moved if i.status == InfusionStatus.UNBOOKED
            ),
        }


def public_holidays(
    center: Center, settings: Settings, start: dt.date, end: dt.date
) -> dict[dt.date, str]:
    """The center's public holidays by date, with their names (its own country and
    subdivision, else the clinic's)."""
    country = center.holiday_country or settings.scheduling.public_holidays_country
    if not country:
        return {}
    import holidays

    subdivision = center.holiday_subdivision if center.holiday_country else None
    days = holidays.country_holidays(
        country, subdiv=subdivision, years=range(start.year, end.year + 1)
    )
    return {day: str(name) for day, name in days.items() if start <= day <= end}


def closures_of(
    center: Center, settings: Settings, start: dt.date, end: dt.date
) -> dict[dt.date, str]:
    """The whole days the center is closed between start and end, with why (its own
    closures win over public holidays)."""
    holidays = public_holidays(center, settings, start, end)
    own = {
        day: c.reason
        for c in center.closures
        if c.whole_days and c.closed_on <= end and c.closed_until >= start
        for day in c.days()
        if start <= day <= end
    }
    return holidays | own


def blocked_of(center: Center, start: dt.date, end: dt.date) -> tuple[schedule.Blocked, ...]:
    """The spans the center's chair and part-of-day closures take between start and end."""
    return tuple(
        schedule.Blocked(
            c.chair_id,
            *schedule.day_span(day, c.from_time, c.until_time, center.timezone),
            reason=c.reason,
        )
        for c in center.closures
        if not c.whole_days and c.closed_on <= end and c.closed_until >= start
        for day in c.days()
        if start <= day <= end
    )


def center_calendar(
    center: Center, settings: Settings, start: dt.date, end: dt.date
) -> schedule.CenterCalendar:
    """Return the center's opening hours, closures and chairs as a domain value."""
    return schedule.CenterCalendar(
        timezone=center.timezone,
        hours=tuple(
            schedule.OpeningHours(h.weekday, h.opens_at, h.closes_at) for h in center.opening_hours
        ),
        closures=frozenset(closures_of(center, settings, start, end)),
        chair_ids=tuple(c.id for c in center.chairs if c.active),
        blocked=blocked_of(center, start, end),
    )


#: PostgreSQL advisory lock space for chair bookings: one lock per center (two-key form).
_BOOKING_LOCK = 480_179


def lock_chairs(session: so.Session, center_id: int) -> None:
    """Serialise booking at one center: taken before its occupancy is read, held to commit.

    Without it two transactions can read the same free slot and both write it; the second
    waits on the first's uncommitted row (the chair-overlap exclusion constraint), and two
    such waits in opposite order are a deadlock. Lock order: patients first, then chairs,
    the audit chain last. SQLite serialises writers by itself.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            sa.text("SELECT pg_advisory_xact_lock(:space, :center)"),
            {"space": _BOOKING_LOCK, "center": center_id},
        )


#: No booking holds a chair this long (an infusion day fits one day's opening hours; the
#: infusions table checks it): what bounds the index range an occupancy query reads.
MAX_HOLD = dt.timedelta(days=1)


def busy_intervals(
    session: so.Session,
    center_id: int,
    start: dt.datetime,
    end: dt.datetime,
    exclude_ids: set[int] | frozenset[int] = frozenset(),
    exclude_patient: int | None = None,
    *,
    within: Sequence[tuple[dt.datetime, dt.datetime]] = (),
) -> dict[int, list[schedule.Interval]]:
    """Return chair occupancy (with turnover) at a center between two UTC times, one query;
    with `within`, only in those spans (UTC) between them (the days a plan may book).

    It is read to book into, so it first takes the center's booking lock (`lock_chairs`).
    """
    lock_chairs(session, center_id)
    spans = [(max(a, start), min(b, end)) for a, b in within or [(start, end)]]
    statement = (
        sa.select(
            Infusion.id, Infusion.chair_id, Infusion.starts_at, Infusion.occupied_until
        ).where(
            Infusion.status.in_([s.value for s in CHAIR_HOLDING]),
            sa.or_(
                *(
                    # The center in each term and a lower bound on starts_at: each span is
                    # then one range of the (center, starts_at) index (SQLite's multi-index
                    # OR), not a walk through the center's whole history.
                    sa.and_(
                        Infusion.center_id == center_id,
                        Infusion.starts_at >= a - MAX_HOLD,
                        Infusion.starts_at < b,
                        Infusion.occupied_until > a,
                    )
                    for a, b in spans
                    if a < b
                ),
                sa.false(),
            ),
        )
        # No ORDER BY: SQLite would walk the center's whole index for it rather than search
        # each span; the domain sorts each chair's spans itself.
    )
    if exclude_patient is not None:
        statement = statement.where(Infusion.patient_id != exclude_patient)
    rows = session.execute(statement).all()
    busy: dict[int, list[schedule.Interval]] = defaultdict(list)
    for infusion_id, chair_id, starts_at, occupied_until in rows:
        if infusion_id not in exclude_ids and chair_id is not None:
            assert starts_at is not None and occupied_until is not None  # it holds a chair
            busy[chair_id].append(schedule.Interval(starts_at, occupied_until))
    return busy


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def first_cycle_start(regimen: Regimen) -> dt.date:
    """Return the regimen's start date moved forward to its preferred weekday, if any."""
    return schedule.first_cycle_start(regimen.starts_on, regimen.preferred_weekday)


def _apply(
    infusion: Infusion,
    day: reconcile.PlannedDay,
    regimen: Regimen,
    turnover: dt.timedelta,
) -> bool:
    """Point an infusion at a planned day; return whether time, status or place changed."""
    booking = day.booking
    status = InfusionStatus.SCHEDULED if booking.chair_id else InfusionStatus.UNBOOKED
    occupied = booking.ends_at + turnover if booking.ends_at else None
    significant = (
        infusion.starts_at != booking.starts_at
        or infusion.ends_at != booking.ends_at
        or infusion.chair_id != booking.chair_id
        or infusion.status != status
        or infusion.planned_date != booking.date
    )
    if infusion.waived_rules and (
        significant
        or infusion.cycle_number != booking.cycle_number
        or infusion.regimen_id != regimen.id
    ):
        # A physician's override was for the row as it was; a moved row is judged afresh.
        infusion.waived_rules, infusion.waiver_reason = [], None
    infusion.regimen_id = regimen.id
    infusion.cycle_number = booking.cycle_number
    infusion.day_number = booking.day_number
    infusion.planned_date = booking.date
    infusion.cycle_planned_on = day.cycle_planned_on
    infusion.shift_days = booking.shift_days
    infusion.center_id = regimen.center_id
    infusion.chair_id = booking.chair_id
    infusion.starts_at = booking.starts_at
    infusion.ends_at = booking.ends_at
    infusion.occupied_until = occupied
    infusion.status = status
    infusion.planned_grams = regimen.grams_per_day
    infusion.planned_vials = regimen.calculation["rounding"]["vials"]
    infusion.planned_minutes = regimen.minutes_per_day
    return significant


def _existing(infusion: Infusion) -> reconcile.Existing:
    return reconcile.Existing(
        id=infusion.id,
        regimen_id=infusion.regimen_id,
        cycle_number=infusion.cycle_number,
        day_number=infusion.day_number,
        planned_date=infusion.planned_date,
        cycle_planned_on=infusion.cycle_planned_on,
        status=infusion.status,
        chair_id=infusion.chair_id,
        starts_at=infusion.starts_at,
        occupied_until=infusion.occupied_until,
        pinned_by=infusion.pinned_by_id,
    )


def replan(
    session: so.Session,
    regimen: Regimen,
    settings: Settings,
    today: dt.date,
    now: dt.datetime | None = None,
    *,
    extend_only: bool = False,
    cause: str | None = None,
    course: reviews.CourseLimits | None = None,
) -> ReplanResult:
    """Book the regimen from today to the horizon; only future, not-started infusions move.

    With extend_only, every existing infusion stays where it is and only dates beyond them
    (the horizon rolling forward) are booked. `cause` says why, for cancelled infusions and
    for the worklist of a nurse whose manual move could not be kept. `course`: the course's
    limits as of `today`, when the caller loaded them already.
    """
    now = now or utcnow()
    # A calendar change's cause also stands on the days it books afresh (where they went).
    booked_because = cause
    cause = cause or f"Regimen changed (version {regimen.version})"
    integrity.lock_patient(session, regimen.patient_id)
    rows = list(
        session.scalars(
            sa.select(Infusion)
            .where(Infusion.patient_id == regimen.patient_id)
            .order_by(Infusion.planned_date, Infusion.day_number, Infusion.id)
            .with_for_update()
            # The locked rows are what counts, not what this session read earlier.
            .execution_options(populate_existing=True)
        )
    )
    until = add_months(today, settings.scheduling.horizon_months)
    course = course or _course(session, regimen.patient_id, settings, today)
    authorised = course.authorised_until
    if authorised is not None and authorised < until:
        # The horizon books up to the authorisation's end; the rest needs a renewal.
        until = authorised
    window = settings.scheduling.shift_window_days
    center = session.scalars(
        sa.select(Center)
        .where(Center.id == regimen.center_id)
        .options(
            so.selectinload(Center.opening_hours),
            so.selectinload(Center.chairs),
            so.selectinload(Center.closures),
        )
    ).one()
    calendar = center_calendar(
        center, settings, today - dt.timedelta(days=window), until + dt.timedelta(days=window)
    )
    turnover = dt.timedelta(minutes=settings.scheduling.turnover_minutes)
    version = reconcile.Version(
        id=regimen.id,
        first_cycle_on=first_cycle_start(regimen),
        interval_weeks=regimen.interval_weeks,
        days_per_cycle=regimen.days_per_cycle,
        preferred_time=regimen.preferred_time,
        minutes_per_day=regimen.minutes_per_day,
    )
    facts = [_existing(row) for row in rows]
    options = reconcile.Options(
        until=until,
        shift_window_days=window,
        interval_tolerance_days=settings.scheduling.interval_tolerance_days,
        turnover=turnover,
        granularity_minutes=settings.scheduling.slot_granularity_minutes,
    )

    def plan_with(reach: tuple[tuple[dt.date, dt.date], ...]) -> reconcile.Reconciliation:
        busy = busy_intervals(
            session,
            center.id,
            _midnight(today - dt.timedelta(days=1)),
            _midnight(until + dt.timedelta(days=window + 2)),
            exclude_patient=regimen.patient_id,
            within=[
                (
                    schedule.day_span(a, None, None, center.timezone)[0],
                    schedule.day_span(b, None, None, center.timezone)[1],
                )
                for a, b in reach
            ],
        )
        return reconcile.reconcile(
            version, facts, calendar, busy, today, now, options, extend_only=extend_only
        )

    # In a busy center most cycles book on their planned days: read the chairs there first,
    # and the whole shift windows only if the plan goes off them.
    planned = reconcile.booking_days(
        version, facts, calendar, today, options, extend_only=extend_only, planned_only=True
    )
    plan = plan_with(planned)
    if not reconcile.within(plan, planned):
        plan = plan_with(
            reconcile.booking_days(
                version, facts, calendar, today, options, extend_only=extend_only
            )
        )
    by_id = {row.id: row for row in rows}
    result = ReplanResult()
    # Release what disappears first, so the chair checks never see a slot held twice.
    for infusion_id in plan.cancel_ids:
        infusion = by_id[infusion_id]
        infusion.status = InfusionStatus.CANCELLED
        infusion.status_reason = cause[:500]
        infusion.mark_changed(now, significant=True)
        result.cancelled.append(infusion)
    session.flush()
    for day in plan.days:
        existing = by_id.get(day.existing_id) if day.existing_id is not None else None
        if existing is None:
            infusion = Infusion(patient_id=regimen.patient_id, sequence=0, version=1)
            _apply(infusion, day, regimen, turnover)
            infusion.updated_at = now
            infusion.status_reason = booked_because[:500] if booked_because else None
            session.add(infusion)
            result.created.append(infusion)
        else:
            before = _snapshot(existing)
            significant = _apply(existing, day, regimen, turnover)
            if _snapshot(existing) != before:
                existing.status_reason = cause[:500]  # why it changed, e.g. a closure
                existing.mark_changed(now, significant=significant)
            (result.moved if significant else result.unchanged).append(existing)
    for move in plan.unkept:
        infusion = by_id[move.existing_id]
        infusion.pinned_by_id = None
        worklist.add_notice(
            session,
            user_id=move.pinned_by,
            patient_id=regimen.patient_id,
            infusion_id=infusion.id,
            kind="reschedule_not_kept",
            message=(
                f"Your move of cycle {infusion.cycle_number} day {infusion.day_number} to "
                f"{move.planned_date} could not be kept ({cause}): {move.reason}. It is now "
                + (
                    "cancelled."
                    if infusion.status == InfusionStatus.CANCELLED
                    else f"on {infusion.planned_date}."
                )
            ),
        )
        result.unkept.append(infusion)
    if plan.blocked_on is not None:
        result.blocked_on = plan.blocked_on
        _notify_blocked(session, regimen, plan.blocked_on)
    session.flush()
    return result


def _notify_blocked(session: so.Session, regimen: Regimen, planned_on: dt.date) -> None:
    """Tell the treating physician, once, that the horizon cannot book on by itself."""
    patient = session.get(Patient, regimen.patient_id)
    if patient is None or patient.treating_physician_id is None:
        return
    already = session.scalar(
        sa.select(Notice.id).where(
            Notice.patient_id == patient.id,
            Notice.kind == "horizon_blocked",
            Notice.done_at.is_(None),
        )
    )
    if already is None:
        worklist.add_notice(
            session,
            user_id=patient.treating_physician_id,
            patient_id=patient.id,
            kind="horizon_blocked",
            message=(
                f"The cycle planned for {planned_on} cannot be booked by the nightly horizon: "
                "it would come too soon after the cycle before it, or no run of open days fits "
                "its window. Set the regimen again (or move that cycle) to plan on from there."
            ),
        )


def _snapshot(infusion: Infusion) -> tuple[object, ...]:
    return (
        infusion.regimen_id,
        infusion.cycle_number,
        infusion.day_number,
        infusion.cycle_planned_on,
        infusion.shift_days,
        infusion.planned_grams,
        infusion.planned_vials,
        infusion.planned_minutes,
        infusion.starts_at,
        infusion.ends_at,
        infusion.chair_id,
        infusion.status,
    )


#: Constraints a concurrent writer trips when it got there first: the chair-overlap guard and
#: a regimen's (patient, version) key.
_RACE_CONSTRAINTS = frozenset({"ex_infusions_chair_overlap", "uq_regimens_patient_version"})
#: PostgreSQL: serialization failure, deadlock (the loser is rolled back and may retry).
_RACE_SQLSTATES = frozenset({"40001", "40P01"})


def is_booking_race(exc: sa.exc.DBAPIError) -> bool:
    """Tell whether the database refused a write because a concurrent one got there first:
    by SQLSTATE and constraint name on PostgreSQL, by SQLite's error name elsewhere."""
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate is not None:
        constraint = getattr(getattr(orig, "diag", None), "constraint_name", None)
        return sqlstate in _RACE_SQLSTATES or constraint in _RACE_CONSTRAINTS
    name = getattr(orig, "sqlite_errorname", "")
    if name.startswith("SQLITE_BUSY"):  # another connection holds the write lock
        return True
    if name == "SQLITE_CONSTRAINT_TRIGGER":  # the overlap trigger raises its constraint's name
        return str(orig).split(":", 1)[0] in _RACE_CONSTRAINTS
    return name == "SQLITE_CONSTRAINT_UNIQUE" and "regimens.patient_id, regimens.version" in str(
        orig
    )


def next_planned_start(session: so.Session, patient_id: int, today: dt.date) -> dt.date:
    """The planned (unshifted) start of the next cycle not yet begun, or today: where a new
    regimen version starts by default. A nurse's move or a closure's shift does not move the
    regimen's grid."""
    first = session.scalar(
        sa.select(Infusion.cycle_planned_on)
        .where(
            Infusion.patient_id == patient_id,
            Infusion.day_number == 1,
            Infusion.status.in_([InfusionStatus.SCHEDULED, InfusionStatus.UNBOOKED]),
            Infusion.planned_date >= today,
        )
        .order_by(Infusion.planned_date)
        .limit(1)
    )
    return first or today


def extend_horizon(
    session: so.Session, patient_id: int, settings: Settings, now: dt.datetime | None = None
) -> ReplanResult:
    """Book the current regimen's cycles that have come inside the horizon (scheduler job)."""
    integrity.lock_patient(session, patient_id)  # first, before the regimen's row lock
    regimen = session.scalar(
        sa.select(Regimen)
        .where(Regimen.patient_id == patient_id)
        .order_by(Regimen.version.desc())
        .limit(1)
        .with_for_update()
    )
    if regimen is None:
        return ReplanResult()
    now = now or utcnow()
    center = session.get(Center, regimen.center_id)
    assert center is not None
    today = schedule.local_date(now, center.timezone)
    if _course(session, patient_id, settings, today).booking_stop is not None:
        # Booking past an overdue review, or after a review stopped the course, needs a
        # physician's reason: the review task asks.
        return ReplanResult(waiting_review=True)
    return replan(session, regimen, settings, today, now, extend_only=True)


def _course(
    session: so.Session, patient_id: int, settings: Settings, today: dt.date
) -> reviews.CourseLimits:
    from app.services import reviews as review_service

    return review_service.course_limits(session, patient_id, settings, today)


def extend_everyone(
    session: so.Session, settings: Settings, now: dt.datetime | None = None
) -> dict[str, int]:
    """Nightly: extend every patient's horizon, each patient in their own transaction.

    Safe if two schedulers run it at once: the patient's row lock (integrity.lock_patient)
    serialises them, and a re-run books nothing new (only cycles after the last one booked).
    One patient's refusal (a therapy rule) is logged and does not stop everyone else's roll.
    """
    now = now or utcnow()
    actor = system_actor("scheduler")
    booked = refused = waiting = 0
    for patient_id in patients_with_regimens(session):

        def extend(pid: int = patient_id) -> ReplanResult:
            result = extend_horizon(session, pid, settings, now)
            if result.created:
                audit.record(
                    session,
                    actor,
                    "infusions.extend_horizon",
                    "patient",
                    pid,
                    after=result.summary(),
                )
            return result

        try:
            result = jobruns.in_batch(session, extend)
        except ServiceError as exc:
            log.warning("extend_horizons: patient %d not extended: %s", patient_id, exc)
            refused += 1
            continue
        booked += len(result.created)
        waiting += result.waiting_review
    return {"booked": booked, "refused": refused, "waiting_review": waiting}


def patients_with_regimens(session: so.Session) -> list[int]:
    """Return the ids of patients who have a regimen."""
    return list(
        session.scalars(sa.select(Regimen.patient_id).distinct().order_by(Regimen.patient_id))
    )


def patients_booked_on(session: so.Session, center_id: int, day: dt.date) -> list[int]:
    """Return the patients with a not-yet-given infusion at a center on a date."""
    return list(
        session.scalars(
            sa.select(Infusion.patient_id)
            .where(
                Infusion.center_id == center_id,
                Infusion.planned_date == day,
                Infusion.status.in_([InfusionStatus.SCHEDULED, InfusionStatus.UNBOOKED]),
            )
            .distinct()
        )
    )


def hold_future(session: so.Session, patient_id: int, reason: str, today: dt.date) -> list[int]:
    """Cancel the patient's not-yet-given future infusions (IVIG held); returns their ids."""
    now = utcnow()
    held: list[int] = []
    for infusion in session.scalars(
        sa.select(Infusion).where(
            Infusion.patient_id == patient_id,
            Infusion.status.in_([InfusionStatus.SCHEDULED, InfusionStatus.UNBOOKED]),
            Infusion.planned_date >= today,
        )
    ):
        if infusion.starts_at is not None and infusion.starts_at <= now:
            continue
        infusion.status = InfusionStatus.CANCELLED
        infusion.status_reason = reason[:500]
        infusion.mark_changed(now, significant=True)
        held.append(infusion.id)
    return held
