"""Rate limits every worker shares: per-minute counters in the database, not in memory."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
import sqlalchemy.dialects.postgresql
import sqlalchemy.dialects.sqlite
import sqlalchemy.orm as so

from app.models import RateWindow
from app.services.context import unit_of_work


def hit(session: so.Session, key: str, per_minute: int, now: dt.datetime) -> tuple[bool, int]:
    """Count one request for a key; return whether it is allowed and, if not, seconds to wait.

    A sliding minute, estimated from this minute's count and the last one's weighted by how
    much of it still lies in the last 60 seconds. Counters older than that are dropped.
    """
    seconds = int(now.timestamp())
    minute, into = divmod(seconds, 60)
    insert = (
        sa.dialects.postgresql.insert
        if session.get_bind().dialect.name == "postgresql"
        else sa.dialects.sqlite.insert
    )
    with unit_of_work(session):
        statement = insert(RateWindow).values(key=key, minute=minute, hits=1)
        current = session.scalar(
            statement.on_conflict_do_update(
                index_elements=["key", "minute"], set_={"hits": RateWindow.hits + 1}
            ).returning(RateWindow.hits)
        )
        previous = session.scalar(
            sa.select(RateWindow.hits).where(RateWindow.key == key, RateWindow.minute == minute - 1)
        )
        session.execute(sa.delete(RateWindow).where(RateWindow.minute < minute - 1))
    estimate = (current or 0) + (previous or 0) * (60 - into) / 60
    if estimate <= per_minute:
        return True, 0
    return False, 60 - into
