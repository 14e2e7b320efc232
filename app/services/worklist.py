"""Worklist notices: what a person must look at, kept until they mark it done."""

from __future__ import annotations

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.db import utcnow
from app.models import Notice
from app.services import audit
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


def open_notices(session: so.Session, user_id: int) -> list[Notice]:
    """A user's notices not yet marked done, newest first."""
    return list(
        session.scalars(
            sa.select(Notice)
            .where(Notice.user_id == user_id, Notice.done_at.is_(None))
            .options(so.joinedload(Notice.patient))
            .order_by(Notice.created_at.desc(), Notice.id.desc())
        )
    )


def mark_done(session: so.Session, actor: Actor, notice_id: int) -> Notice:
    """Mark one of your own notices done."""
    with unit_of_work(session):
        notice = session.get(Notice, notice_id, with_for_update=True)
        if notice is None or notice.user_id != actor.user_id:
            raise NotFound(f"notice_id: no notice {notice_id} on your worklist", field="notice_id")
        if notice.done_at is not None:
            raise Conflict("notice_id: already marked done", field="notice_id")
        notice.done_at = utcnow()
        audit.record(
            session, actor, "notice.done", "notice", notice.id, after={"kind": notice.kind}
        )
    return notice
