"""Who is acting, passed explicitly from adapters to services (never read from Flask)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy.orm as so

from app.db import READ_FIRST, SQLITE_BEGIN


@dataclass(frozen=True)
class Actor:
    """The user (or system process) on whose behalf a service runs."""

    label: str
    user_id: int | None = None
    role: str | None = None
    request_id: str | None = None


def system_actor(process: str, request_id: str | None = None) -> Actor:
    """Return the actor for work done by a process, not a person."""
    return Actor(label=f"system:{process}", request_id=request_id)


@contextmanager
def unit_of_work(session: so.Session) -> Iterator[so.Session]:
    """Commit what the block wrote, or roll all of it back if it raises.

    Units nest: a use case that calls others (approving a suggestion sets a regimen and holds
    a taper step) commits once, at the outermost unit, so all of it lands or none does.
    """
    depth = session.info.get("unit_depth", 0)
    if depth == 0 and session.info.get(READ_FIRST):
        # A read-first session (a GET request on SQLite) writes in a transaction of its own
        # that takes the write lock first: what it read before stays as read.
        if session.in_transaction():
            session.commit()
        session.connection(execution_options={SQLITE_BEGIN: "IMMEDIATE"})
    session.info["unit_depth"] = depth + 1
    try:
        yield session
        if depth == 0:
            session.commit()
    except BaseException:
        if depth == 0:
            session.rollback()
        raise
    finally:
        session.info["unit_depth"] = depth
