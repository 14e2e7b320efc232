"""Center administration that matters to care: closures move the infusions booked on them."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.config import Settings
from app.db import utcnow
from app.domain import schedule
from app.models import Center, Closure, Infusion, InfusionStatus, Regimen
from app.services import audit, integrity, regimens, scheduling
from app.services.context import Actor, unit_of_work
from app.services.errors import Conflict, InvalidInput, NotFound


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


def add_closure(
    session: so.Session,
    actor: Actor,
    center_id: int,
    closed_on: dt.date,
    reason: str,
    settings: Settings,
    now: dt.datetime | None = None,
) -> tuple[Closure, dict[str, int]]:
    """Close a center for a day and re-plan every patient booked on it, in one transaction."""
    if not reason.strip() or len(reason) > 200:
        raise InvalidInput("reason: give a reason (at most 200 characters)", field="reason")
    now = now or utcnow()
    with unit_of_work(session):
        center = session.get(Center, center_id)
        if center is None:
            raise NotFound(f"center_id: no center {center_id}", field="center_id")
        today = schedule.local_date(now, center.timezone)
        if closed_on < today:
            raise InvalidInput("closed_on: not in the past", field="closed_on")
        exists = session.scalar(
            sa.select(Closure.id).where(
                Closure.center_id == center_id, Closure.closed_on == closed_on
            )
        )
        if exists is not None:
            raise Conflict(
                f"closed_on: {center.name} is already closed on {closed_on}", field="closed_on"
            )
        closure = Closure(center_id=center_id, closed_on=closed_on, reason=reason.strip())
        session.add(closure)
        session.flush()
        session.expire(center, ["closures"])
        totals = {"patients": 0, "moved": 0, "created": 0, "cancelled": 0, "unbooked": 0}
        affected = sorted(scheduling.patients_booked_on(session, center_id, closed_on))
        current = _lock_for_rebooking(session, center_id, affected)
        for patient_id in affected:
            regimen = current[patient_id]
            if regimen is None:
                continue
            summary = scheduling.replan(
                session,
                regimen,
                settings,
                today,
                now,
                cause=f"{center.name} closed on {closed_on}: {closure.reason}",
            ).summary()
            totals["patients"] += 1
            for key in ("moved", "created", "cancelled", "unbooked"):
                totals[key] += summary[key]
        # Days of cycles already under way are not moved with their cycle: take them off the
        # closed day and leave them for a nurse to place.
        stranded = session.scalars(
            sa.select(Infusion).where(
                Infusion.center_id == center_id,
                Infusion.planned_date == closed_on,
                Infusion.status == InfusionStatus.SCHEDULED,
            )
        ).all()
        for infusion in stranded:
            # The appointment on the closed day is cancelled (calendars show it so, with its
            # time); a copy without a chair waits for a nurse to place the day.
            infusion.status = InfusionStatus.CANCELLED
            infusion.status_reason = f"Center closed: {closure.reason}"
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
                    status_reason=f"Center closed: {closure.reason}; place this day",
                    created_at=now,
                    updated_at=now,
                )
            )
        totals["unbooked"] += len(stranded)
        audit.record(
            session,
            actor,
            "center.closure",
            "center",
            center_id,
            after={"closed_on": closed_on, "reason": closure.reason, "replan": totals},
        )
    return closure, totals
