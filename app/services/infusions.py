"""Nurse actions on infusions: recording them, their status, rescheduling and amending."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import sqlalchemy.orm as so

from app import clock
from app.config import Settings
from app.db import utcnow
from app.domain import schedule
from app.models import Chair, Infusion, InfusionAmendment, InfusionStatus
from app.services import audit, integrity, scheduling, versions
from app.services.context import Actor, unit_of_work
from app.services.errors import Conflict, InvalidInput, NotFound


def infusion_view(infusion: Infusion) -> dict[str, object]:
    return {
        "status": infusion.status,
        "planned_date": infusion.planned_date,
        "chair_id": infusion.chair_id,
        "starts_at": infusion.starts_at,
        "ends_at": infusion.ends_at,
        "planned_grams": infusion.planned_grams,
        "given_grams": infusion.given_grams,
        "lot_numbers": infusion.lot_numbers,
        "given_started_at": infusion.given_started_at,
        "given_ended_at": infusion.given_ended_at,
        "max_rate_ml_per_kg_min": infusion.max_rate_ml_per_kg_min,
        "status_reason": infusion.status_reason,
    }


def load_for_change(
    session: so.Session, infusion_id: int, expected_version: int | None
) -> Infusion:
    return versions.load_for_change(session, Infusion, infusion_id, expected_version, "infusion_id")


def require_status(infusion: Infusion, *allowed: InfusionStatus) -> None:
    if infusion.status not in allowed:
        names = " or ".join(s.value for s in allowed)
        raise Conflict(
            f"status: the infusion is {infusion.status}; this needs it {names}", field="status"
        )


def _changed(infusion: Infusion, significant: bool) -> None:
    infusion.mark_changed(utcnow(), significant=significant)


@dataclasses.dataclass(frozen=True)
class GivenInput:
    given_grams: float
    started_at: dt.datetime
    ended_at: dt.datetime
    lot_numbers: str
    max_rate_ml_per_kg_min: float
    partial: bool = False
    reason: str | None = None
    expected_version: int | None = None


def record_given(
    session: so.Session, actor: Actor, infusion_id: int, data: GivenInput, settings: Settings
) -> Infusion:
    """Record an infusion as given (or partly given, with a reason)."""
    _check_given_input(data)
    with unit_of_work(session):
        lock_patient_of(session, infusion_id)
        integrity.guard(session, field="started_at")
        infusion = load_for_change(session, infusion_id, data.expected_version)
        require_status(infusion, InfusionStatus.SCHEDULED, InfusionStatus.UNBOOKED)
        _check_given(infusion, data, settings)
        before = infusion_view(infusion)
        infusion.status = InfusionStatus.PARTIAL if data.partial else InfusionStatus.GIVEN
        _write_given(infusion, data)
        infusion.recorded_by_id = actor.user_id
        _changed(infusion, significant=True)
        audit.record(
            session,
            actor,
            f"infusion.{infusion.status}",
            "infusion",
            infusion.id,
            before=before,
            after=infusion_view(infusion),
        )
    return infusion


def _check_given_input(data: GivenInput) -> None:
    """Refuse a record of what was given that cannot be true (422 naming the field)."""
    if data.started_at.tzinfo is None or data.ended_at.tzinfo is None:
        raise InvalidInput("started_at: give a time zone offset", field="started_at")
    if data.ended_at <= data.started_at:
        raise InvalidInput("ended_at: must be after started_at", field="ended_at")
    if data.ended_at - data.started_at > dt.timedelta(hours=16):
        raise InvalidInput("ended_at: an infusion day lasts at most 16 hours", field="ended_at")
    if data.started_at > utcnow() + dt.timedelta(minutes=5):
        raise InvalidInput("started_at: not in the future", field="started_at")
    if not data.lot_numbers.strip() or len(data.lot_numbers) > 200:
        raise InvalidInput(
            "lot_numbers: give the lot number(s), at most 200 characters", field="lot_numbers"
        )
    if data.partial and not (data.reason or "").strip():
        raise InvalidInput("reason: say why the infusion was only partly given", field="reason")


def _check_given(infusion: Infusion, data: GivenInput, settings: Settings) -> None:
    """Refuse grams or a rate outside what the product allows (422 naming the field)."""
    product = settings.product_catalog().get(infusion.regimen.product)
    if product is None:
        raise InvalidInput(
            f"given_grams: the product {infusion.regimen.product!r} is no longer configured; "
            "ask an administrator",
            field="given_grams",
        )
    max_grams = product.max_g_per_day
    if not 0 < data.given_grams <= max_grams:
        raise InvalidInput(
            f"given_grams: {data.given_grams:g} is outside 0-{max_grams:g} g "
            f"(the {infusion.regimen.product} maximum per day)",
            field="given_grams",
        )
    max_rate = product.rate_plan.max_ml_per_kg_min
    if not 0 < data.max_rate_ml_per_kg_min <= max_rate:
        raise InvalidInput(
            f"max_rate_ml_per_kg_min: {data.max_rate_ml_per_kg_min:g} is outside "
            f"0-{max_rate:g} mL/kg/min",
            field="max_rate_ml_per_kg_min",
        )


def _write_given(infusion: Infusion, data: GivenInput) -> None:
    infusion.given_grams = data.given_grams
    infusion.given_started_at = data.started_at
    infusion.given_ended_at = data.ended_at
    infusion.lot_numbers = data.lot_numbers.strip()
    infusion.max_rate_ml_per_kg_min = data.max_rate_ml_per_kg_min
    infusion.status_reason = (data.reason or "").strip() or None


def set_status(
    session: so.Session,
    actor: Actor,
    infusion_id: int,
    status: InfusionStatus,
    reason: str,
    expected_version: int | None = None,
) -> Infusion:
    """Mark an infusion missed or cancelled, with a reason."""
    if status not in (InfusionStatus.MISSED, InfusionStatus.CANCELLED):
        raise InvalidInput("status: missed or cancelled", field="status")
    if not reason.strip() or len(reason) > 500:
        raise InvalidInput("reason: give a reason (at most 500 characters)", field="reason")
    with unit_of_work(session):
        lock_patient_of(session, infusion_id)
        integrity.guard(session, field="status")
        infusion = load_for_change(session, infusion_id, expected_version)
        # A patient who came may still be sent home before the infusion starts.
        require_status(
            infusion, InfusionStatus.SCHEDULED, InfusionStatus.UNBOOKED, InfusionStatus.CHECKED_IN
        )
        before = infusion_view(infusion)
        if infusion.status == InfusionStatus.CHECKED_IN:
            # The day's check was for a visit that is not happening.
            infusion.day_weight_kg = infusion.day_grams = infusion.dose_approval = None
            infusion.dose_approved_by_id = infusion.dose_approved_at = None
        infusion.status = status
        infusion.status_reason = reason.strip()
        infusion.recorded_by_id = actor.user_id
        _changed(infusion, significant=True)
        audit.record(
            session,
            actor,
            f"infusion.{status}",
            "infusion",
            infusion.id,
            before=before,
            after=infusion_view(infusion),
        )
    return infusion


def undo_cancel(
    session: so.Session,
    actor: Actor,
    infusion_id: int,
    expected_version: int | None = None,
    now: dt.datetime | None = None,
) -> Infusion:
    """Bring back an infusion a person cancelled, on its chair and time, while that slot is
    still free and still to come (the therapy checker judges it like any booking)."""
    now = now or utcnow()
    with unit_of_work(session):
        lock_patient_of(session, infusion_id)
        integrity.guard(session, field="status")
        infusion = load_for_change(session, infusion_id, expected_version)
        require_status(infusion, InfusionStatus.CANCELLED)
        if infusion.recorded_by_id is None:
            raise Conflict(
                "status: only a cancellation made by a person can be undone; this one came "
                f"from a re-plan ({infusion.status_reason})",
                field="status",
            )
        if infusion.starts_at is not None and infusion.starts_at <= now:
            raise Conflict("status: its time has passed; book the day again instead", "status")
        before = infusion_view(infusion)
        if infusion.chair_id is not None:
            scheduling.lock_chairs(session, infusion.center_id)
        infusion.status = (
            InfusionStatus.SCHEDULED if infusion.chair_id is not None else InfusionStatus.UNBOOKED
        )
        infusion.status_reason = f"Cancellation undone by {actor.label}"
        _changed(infusion, significant=True)
        try:
            session.flush()
        except sa.exc.IntegrityError as exc:
            raise Conflict(
                "status: its chair and time have been given to someone else; book it again",
                field="status",
            ) from exc
        audit.record(
            session,
            actor,
            "infusion.undo_cancel",
            "infusion",
            infusion.id,
            before=before,
            after=infusion_view(infusion),
        )
    return infusion


def lock_patient_of(session: so.Session, infusion_id: int) -> int:
    """Take the patient's therapy lock before the infusion's row lock (one order everywhere)."""
    patient_id = session.scalar(sa.select(Infusion.patient_id).where(Infusion.id == infusion_id))
    if patient_id is None:
        raise NotFound(f"infusion_id: no infusion {infusion_id}", field="infusion_id")
    integrity.lock_patient(session, patient_id)
    return patient_id


def _check_open(
    calendar: schedule.CenterCalendar, local: dt.datetime, minutes: int, timezone: str
) -> None:
    """The center is open that day, the infusion fits in its hours, and the day is not past
    (earlier today is allowed: a patient who came early or late is moved to when they came,
    then recorded; earlier days are history)."""
    hours = calendar.hours_on(local.date())
    if hours is None:
        raise InvalidInput(f"starts_at: the center is closed on {local.date()}", field="starts_at")
    # Added in UTC: across a clock change the wall-clock end is not start + minutes.
    end_local = (local.astimezone(dt.UTC) + dt.timedelta(minutes=minutes)).astimezone(local.tzinfo)
    if (
        local.time() < hours.opens_at
        or end_local.time() > hours.closes_at
        or end_local.date() != local.date()
    ):
        raise InvalidInput(
            f"starts_at: the {minutes}-minute infusion must fit within "
            f"{hours.opens_at:%H:%M}-{hours.closes_at:%H:%M}",
            field="starts_at",
        )
    if local.date() < clock.clinic_today(timezone):
        raise InvalidInput("starts_at: not before today", field="starts_at")


def _follower_moves(
    infusion: Infusion,
    followers: list[Infusion],
    local: dt.datetime,
    calendar: schedule.CenterCalendar,
    busy: dict[int, list[schedule.Interval]],
    chair_id: int,
    settings: Settings,
) -> list[tuple[Infusion, int, dt.datetime]]:
    """Where the cycle's later days go when its first day moves: the following open days at
    the same time, on the same chair when it is free."""
    if not followers:
        return []
    days = schedule.following_open_days(local.date(), len(followers), calendar)
    slots = None
    if days is not None:
        slots = schedule.place_days(
            days,
            calendar,
            local.time().replace(tzinfo=None),
            dt.timedelta(minutes=infusion.planned_minutes),
            dt.timedelta(minutes=settings.scheduling.turnover_minutes),
            busy,
            settings.scheduling.slot_granularity_minutes,
            prefer_chair=chair_id,
        )
    if slots is None:
        raise Conflict(
            f"starts_at: the rest of cycle {infusion.cycle_number} finds no free chair "
            f"on the open days after {local.date()}; move its days one by one",
            field="starts_at",
        )
    return [(follower, slot[0], slot[1]) for follower, slot in zip(followers, slots, strict=True)]


def reschedule(
    session: so.Session,
    actor: Actor,
    infusion_id: int,
    chair_id: int,
    starts_at: dt.datetime,
    settings: Settings,
    expected_version: int | None = None,
    override_reason: str | None = None,
) -> Infusion:
    """Move a not-yet-given infusion to another chair or time (chair and therapy rules apply).

    Moving a cycle's first not-begun day to another date takes the cycle's later days along,
    to the following open days at the same time (the same chair when it is free). The move is
    remembered (pinned) so that a later re-plan keeps it while it stays valid.
    """
    if starts_at.tzinfo is None:
        raise InvalidInput("starts_at: give a time zone offset", field="starts_at")
    with unit_of_work(session):
        lock_patient_of(session, infusion_id)
        integrity.guard(session, field="starts_at", actor=actor, override_reason=override_reason)
        infusion = load_for_change(session, infusion_id, expected_version)
        require_status(infusion, InfusionStatus.SCHEDULED, InfusionStatus.UNBOOKED)
        chair = session.get(Chair, chair_id)
        if chair is None or chair.center_id != infusion.center_id or not chair.active:
            raise InvalidInput(
                f"chair_id: no active chair {chair_id} at this center", field="chair_id"
            )
        center = infusion.center
        zone = ZoneInfo(center.timezone)
        local = starts_at.astimezone(zone)
        duration = dt.timedelta(minutes=infusion.planned_minutes)
        turnover = dt.timedelta(minutes=settings.scheduling.turnover_minutes)
        calendar = scheduling.center_calendar(
            center, settings, local.date(), local.date() + dt.timedelta(days=14)
        )
        _check_open(calendar, local, infusion.planned_minutes, center.timezone)
        followers = _followers(session, infusion, local.date())
        busy = scheduling.busy_intervals(
            session,
            center.id,
            starts_at - dt.timedelta(days=1),
            starts_at + duration + turnover + dt.timedelta(days=14),
            exclude_ids={infusion.id, *(f.id for f in followers)},
        )
        wanted = schedule.Interval(starts_at, starts_at + duration + turnover)
        if any(
            b.starts_at < wanted.ends_at and wanted.starts_at < b.ends_at
            for b in busy.get(chair_id, [])
        ):
            raise Conflict(f"chair_id: {chair.name} is taken at that time", field="chair_id")
        closed = calendar.blocking(chair_id, wanted.starts_at, wanted.ends_at)
        if closed is not None:
            raise Conflict(
                f"chair_id: {chair.name} is closed at that time ({closed.reason})",
                field="chair_id",
            )
        busy.setdefault(chair_id, []).append(wanted)
        moves = [(infusion, chair_id, starts_at)]
        moves += _follower_moves(infusion, followers, local, calendar, busy, chair_id, settings)
        chair_name = chair.name  # read now: after a refused flush the session cannot load it
        befores = {moved.id: infusion_view(moved) for moved, _chair, _start in moves}
        if len(moves) > 1:
            # Days of one cycle may move onto each other's old slots: release them all first,
            # so the database's no-double-booking guard never sees a slot held twice.
            for moved, _chair, _start in moves:
                moved.chair_id = moved.starts_at = moved.ends_at = moved.occupied_until = None
                moved.status = InfusionStatus.UNBOOKED
            session.flush()
        for moved, moved_chair, moved_start in moves:
            before = befores[moved.id]
            moved_end = moved_start + duration
            moved.chair_id = moved_chair
            moved.starts_at = moved_start
            moved.ends_at = moved_end
            moved.occupied_until = moved_end + turnover
            moved.planned_date = schedule.local_date(moved_start, center.timezone)
            moved.status = InfusionStatus.SCHEDULED
            moved.pinned_by_id = actor.user_id
            # An override was for where it was; here it is judged afresh (and may be again).
            moved.waived_rules, moved.waiver_reason = [], None
            _changed(moved, significant=True)
            audit.record(
                session,
                actor,
                "infusion.reschedule",
                "infusion",
                moved.id,
                before=before,
                after=infusion_view(moved),
            )
        try:
            session.flush()
        except sa.exc.IntegrityError as exc:
            raise Conflict(
                f"chair_id: {chair_name} was just taken; pick another slot", field="chair_id"
            ) from exc
    return infusion


def _followers(session: so.Session, infusion: Infusion, new_date: dt.date) -> list[Infusion]:
    """The later days of a cycle that move along when its first planned day changes date."""
    if new_date == infusion.planned_date:
        return []
    siblings = list(
        session.scalars(
            sa.select(Infusion)
            .where(
                Infusion.patient_id == infusion.patient_id,
                Infusion.cycle_number == infusion.cycle_number,
                Infusion.status != InfusionStatus.CANCELLED,
                Infusion.id != infusion.id,
            )
            .order_by(Infusion.day_number)
            .with_for_update()
        )
    )
    earlier = [s for s in siblings if s.day_number < infusion.day_number]
    if earlier:
        return []
    later = [s for s in siblings if s.day_number > infusion.day_number]
    if any(s.status not in (InfusionStatus.SCHEDULED, InfusionStatus.UNBOOKED) for s in later):
        return []
    return later


@dataclasses.dataclass(frozen=True)
class AmendmentInput:
    """A correction: what the record should say, and why."""

    reason: str
    status: InfusionStatus
    #: What was given (for given or partial); None for missed.
    given: GivenInput | None = None
    expected_version: int | None = None


#: Recorded statuses an amendment may set.
AMENDABLE = (InfusionStatus.GIVEN, InfusionStatus.PARTIAL, InfusionStatus.MISSED)


def amend_infusion(
    session: so.Session, actor: Actor, infusion_id: int, data: AmendmentInput, settings: Settings
) -> Infusion:
    """Correct a recorded infusion with a reason; the record as it was stays as an amendment."""
    reason = data.reason.strip()
    if not reason or len(reason) > 2000:
        raise InvalidInput(
            "reason: say why the record is corrected (at most 2000 characters)", field="reason"
        )
    if data.status not in AMENDABLE:
        raise InvalidInput("status: given, partial or missed", field="status")
    given = data.given
    if data.status == InfusionStatus.MISSED:
        given = None
    elif given is None:
        raise InvalidInput("given_grams: say what was given", field="given_grams")
    else:
        given = dataclasses.replace(given, partial=data.status == InfusionStatus.PARTIAL)
        _check_given_input(given)
    with unit_of_work(session):
        lock_patient_of(session, infusion_id)
        integrity.guard(session, field="started_at")
        infusion = load_for_change(session, infusion_id, data.expected_version)
        require_status(infusion, *AMENDABLE)
        before = infusion_view(infusion)
        infusion.status = data.status
        if given is None:
            infusion.given_grams = infusion.given_started_at = infusion.given_ended_at = None
            infusion.max_rate_ml_per_kg_min = None
            infusion.status_reason = reason
        else:
            _check_given(infusion, given, settings)
            _write_given(infusion, given)
        _changed(infusion, significant=True)
        after = infusion_view(infusion)
        session.add(
            InfusionAmendment(
                infusion_id=infusion.id,
                reason=reason,
                before=audit.json_safe(before),
                after=audit.json_safe(after),
                amended_by_id=actor.user_id,
                amended_at=utcnow(),
            )
        )
        audit.record(
            session,
            actor,
            "infusion.amend",
            "infusion",
            infusion.id,
            before=before,
            after=after | {"reason": reason},
        )
    return infusion


def get_infusion(session: so.Session, infusion_id: int, *, visit: bool = False) -> Infusion:
    """An infusion with its patient, place, regimen, reactions and corrections; with `visit`,
    its visit's documentation too (vials, premedication, rate steps, vital signs)."""
    documentation = (
        (
            so.selectinload(Infusion.vials),
            so.selectinload(Infusion.premedications),
            so.selectinload(Infusion.rate_steps),
            so.selectinload(Infusion.vitals),
        )
        if visit
        else ()
    )
    infusion = session.scalar(
        sa.select(Infusion)
        .where(Infusion.id == infusion_id)
        .options(
            so.joinedload(Infusion.patient),
            so.joinedload(Infusion.chair),
            so.joinedload(Infusion.center),
            so.joinedload(Infusion.regimen),
            so.selectinload(Infusion.adverse_events),
            so.selectinload(Infusion.amendments),
            *documentation,
        )
    )
    if infusion is None:
        raise NotFound(f"infusion_id: no infusion {infusion_id}", field="infusion_id")
    return infusion
