"""Is the database answering, and when did the scheduler last beat?"""

from __future__ import annotations

import datetime as dt
import os
import socket

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.db import utcnow
from app.models import SchedulerHeartbeat
from app.services.context import unit_of_work


def check(session: so.Session) -> dict[str, object]:
    """Return the database backend and the scheduler's last heartbeat; raises if the DB fails."""
    session.execute(sa.text("SELECT 1"))
    beat = session.scalar(sa.select(sa.func.max(SchedulerHeartbeat.last_seen_at)))
    return {
        "database": session.get_bind().dialect.name,
        "scheduler_last_seen": beat.isoformat() if beat else None,
    }


def beat(session: so.Session, name: str, now: dt.datetime | None = None) -> None:
    """Record that a scheduler process is alive (an upsert: safe if two run at once)."""
    now = now or utcnow()
    process = f"{socket.gethostname()}:{os.getpid()}"[:120]
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(SchedulerHeartbeat).values(name=name, last_seen_at=now, process=process)
    statement = statement.on_conflict_do_update(
        index_elements=[SchedulerHeartbeat.name],
        set_={"last_seen_at": statement.excluded.last_seen_at, "process": process},
    )
    with unit_of_work(session):
        session.execute(statement)
