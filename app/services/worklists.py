"""Each role's day on the home page: what needs the nurse, the physician and the admin now.

Reads only: every item links to the page that acts on it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.config import Settings
from app.db import utcnow
from app.domain import schedule
from app.models import (
    Center,
    Infusion,
    Notice,
    Patient,
    SchedulerHeartbeat,
    Suggestion,
    TaperStep,
    User,
)
from app.services import boards, clinic, placements, tapers, worklist
from app.services import suggestions as suggestion_service

#: A scheduler heartbeat older than this is reported as stale (a display threshold).
STALE_AFTER = dt.timedelta(minutes=5)


@dataclasses.dataclass(frozen=True)
class CenterDay:
    """One center's day for the nurse: infusions by time, and the days waiting for a chair."""

    board: boards.DayBoard
    infusions: list[Infusion]
    waiting: int


@dataclasses.dataclass(frozen=True)
class NurseWork:
    #: The centers' days shown, the home center's first.
    centers: list[CenterDay]
    notices: list[Notice]
    #: The user's home center, if they have one.
    home_center: Center | None = None
    #: Whether every center is shown (else only the home center).
    all_centers: bool = True
    #: How many centers there are besides the home center.
    other_centers: int = 0


@dataclasses.dataclass(frozen=True)
class PhysicianWork:
    suggestions: list[Suggestion]
    due_steps: list[TaperStep]
    notices: list[Notice]
    #: Whether the lists are the physician's own patients or, having none, everyone's.
    own_patients: bool
    #: Visits whose day's dose (from the day's weight) waits for a physician's approval.
    dose_approvals: list[Infusion] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class AdminWork:
    scheduler_last_seen: dt.datetime | None
    scheduler_stale: bool
    centers: int
    users_inactive: int


def nurse_work(
    session: so.Session,
    user_id: int,
    settings: Settings,
    now: dt.datetime | None = None,
    *,
    home_center_id: int | None = None,
    all_centers: bool = False,
) -> NurseWork:
    """Today's infusions by start time, with what waits for a chair: at the home center only
    (at every center with `all_centers`, the home center first), or at every center when there
    is no home center."""
    now = now or utcnow()
    centers = clinic.list_centers(session)
    home = next((c for c in centers if c.id == home_center_id), None)
    others = [c for c in centers if c is not home]
    if home is not None:
        centers = [home, *others] if all_centers else [home]
    days = []
    for center in centers:
        today = schedule.local_date(now, center.timezone)
        board = boards.day_board(session, center.id, today, settings)
        todays = sorted(
            (i for chair in board.by_chair.values() for i in chair),
            key=lambda i: (i.starts_at or now, i.chair_id or 0),
        )
        days.append(CenterDay(board, todays, placements.waiting_count(session, [center.id], today)))
    return NurseWork(
        days,
        worklist.open_notices(session, user_id),
        home_center=home,
        all_centers=home is None or all_centers,
        other_centers=len(others) if home is not None else 0,
    )


def physician_work(session: so.Session, user_id: int) -> PhysicianWork:
    """Pending suggestions and due taper steps of the physician's patients (everyone's if
    they have none), and their notices."""
    mine = suggestion_service.queue(session, user_id)
    steps = tapers.due_queue(session, physician_id=user_id)
    own = bool(mine or steps) or _has_patients(session, user_id)
    if not own:
        mine, steps = suggestion_service.queue(session, None), tapers.due_queue(session)
    return PhysicianWork(
        mine,
        steps,
        worklist.open_notices(session, user_id),
        own,
        _dose_approvals(session, user_id if own else None),
    )


def _dose_approvals(session: so.Session, physician_id: int | None) -> list[Infusion]:
    """Visits waiting for a physician to approve the day's dose, oldest check first."""
    statement = (
        sa.select(Infusion)
        .join(Patient, Patient.id == Infusion.patient_id)
        .where(Infusion.dose_approval == "waiting", Infusion.status == "checked_in")
        .options(so.contains_eager(Infusion.patient))
        .order_by(Infusion.checked_in_at, Infusion.id)
    )
    if physician_id is not None:
        statement = statement.where(Patient.treating_physician_id == physician_id)
    return list(session.scalars(statement))


def _has_patients(session: so.Session, user_id: int) -> bool:
    return (
        session.scalar(
            sa.select(Patient.id).where(Patient.treating_physician_id == user_id).limit(1)
        )
        is not None
    )


def admin_work(session: so.Session, now: dt.datetime | None = None) -> AdminWork:
    """The scheduler's heartbeat, and counts an admin keeps an eye on."""
    now = now or utcnow()
    beat = session.scalar(sa.select(sa.func.max(SchedulerHeartbeat.last_seen_at)))
    return AdminWork(
        scheduler_last_seen=beat,
        scheduler_stale=beat is None or now - beat > STALE_AFTER,
        centers=session.scalar(sa.select(sa.func.count()).select_from(Center)) or 0,
        users_inactive=session.scalar(
            sa.select(sa.func.count()).select_from(User).where(User.active.is_(False))
        )
        or 0,
    )
