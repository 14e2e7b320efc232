"""Worklist tasks: what a person must look at, kept until they (or, for a role's task, one of
their colleagues) mark it done."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.db import utcnow
from app.models import Notice, Patient, User
from app.services import audit, integrity, reminders
from app.services.context import Actor, unit_of_work
from app.services.errors import Conflict, NotFound


def add_notice(
    session: so.Session,
    *,
    user_id: int,
    patient_id: int,
    kind: str,
    message: str,
    infusion_id: int | None = None,
) -> Notice:
    """Put a notice on a user's worklist (inside the caller's unit of work)."""
    notice = Notice(
        user_id=user_id,
        patient_id=patient_id,
        infusion_id=infusion_id,
        kind=kind,
        message=message,
        created_at=utcnow(),
    )
    session.add(notice)
    return notice


def add_tasks(session: so.Session, tasks: Sequence[dict[str, Any]], now: dt.datetime) -> int:
    """Add tasks made by a job, each once (by its unique key), and e-mail the new ones to
    those who chose to receive tasks; returns how many were new. Each task names its `key`,
    `kind`, `patient_id`, `message` and a recipient (`user_id`, or `role` with `center_id`)."""
    blank = {"user_id": None, "role": None, "center_id": None, "infusion_id": None, "due_at": None}
    rows = [{**blank, "created_at": now, **task} for task in tasks]
    ids = reminders.insert_once(session, Notice, rows)
    if ids:
        made = session.scalars(
            sa.select(Notice).where(Notice.id.in_(ids)).options(so.joinedload(Notice.patient))
        )
        secret = integrity.settings_of(session).app.secret_key
        reminders.for_tasks(session, made, now, secret)
    return len(ids)


def _mine(user: User) -> sa.ColumnElement[bool]:
    """Tasks for the user, and for their role at their home center (every center if none)."""
    for_role = Notice.role == user.role
    if user.home_center_id is not None:
        for_role = sa.and_(
            for_role,
            sa.or_(Notice.center_id.is_(None), Notice.center_id == user.home_center_id),
        )
    return sa.or_(Notice.user_id == user.id, for_role)


def open_notices(session: so.Session, user_id: int) -> list[Notice]:
    """A user's open tasks (their own and their role's at their center), due first, then
    newest first."""
    user = session.get(User, user_id)
    if user is None:
        return []
    return list(
        session.scalars(
            sa.select(Notice)
            .where(_mine(user), Notice.done_at.is_(None))
            .options(so.joinedload(Notice.patient).joinedload(Patient.home_center))
            .order_by(
                Notice.due_at.is_(None), Notice.due_at, Notice.created_at.desc(), Notice.id.desc()
            )
        )
    )


def mark_done(session: so.Session, actor: Actor, notice_id: int) -> Notice:
    """Mark one of your tasks done (your own, or your role's at your center)."""
    with unit_of_work(session):
        user = session.get(User, actor.user_id) if actor.user_id is not None else None
        notice = (
            session.scalar(
                sa.select(Notice).where(Notice.id == notice_id, _mine(user)).with_for_update()
            )
            if user is not None
            else None
        )
        if notice is None:
            raise NotFound(f"notice_id: no notice {notice_id} on your worklist", field="notice_id")
        if notice.done_at is not None:
            raise Conflict("notice_id: already marked done", field="notice_id")
        notice.done_at = utcnow()
        notice.done_by_id = actor.user_id
        audit.record(
            session, actor, "notice.done", "notice", notice.id, after={"kind": notice.kind}
        )
    return notice


def close_tasks(
    session: so.Session, actor: Actor, patient_id: int, kinds: Sequence[str], now: dt.datetime
) -> int:
    """Mark a patient's open tasks of some kinds done (what they asked for has been done)."""
    result = session.execute(
        sa.update(Notice)
        .where(
            Notice.patient_id == patient_id,
            Notice.kind.in_(kinds),
            Notice.done_at.is_(None),
        )
        .values(done_at=now, done_by_id=actor.user_id)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
