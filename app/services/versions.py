"""Optimistic locking and version chains shared by the services."""

from __future__ import annotations

from typing import Any, TypeVar

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.services.errors import Conflict, NotFound

M = TypeVar("M")


def load_for_change(
    session: so.Session, model: type[M], row_id: int, expected_version: int | None, field: str
) -> M:
    """Lock a row for update; unknown -> 404, a version other than the client saw -> 409."""
    # The locked row is what counts, not a copy the session read before the lock.
    row: Any = session.get(model, row_id, with_for_update=True, populate_existing=True)
    if row is None:
        label = field.removesuffix("_id").replace("_", " ")
        raise NotFound(f"{field}: no {label} {row_id}", field=field)
    if expected_version is not None and row.version != expected_version:
        raise Conflict(
            f"version: it changed since you loaded it (now version {row.version}); reload",
            field="version",
        )
    found: M = row
    return found


def latest_version(
    session: so.Session, model: type[M], patient_id: int, lock: bool = False
) -> M | None:
    """Return a patient's newest row of a versioned model (regimens, taper plans)."""
    column: Any = model
    statement = (
        sa.select(model)
        .where(column.patient_id == patient_id)
        .order_by(column.version.desc())
        .limit(1)
    )
    return session.scalar(statement.with_for_update() if lock else statement)


def require_based_on(current: int | None, based_on: int | None, what: str) -> None:
    """A new version must name the one it replaces (None for the first): else 409, reload."""
    if based_on != current:
        raise Conflict(
            f"based_on_version: the {what} is at version {current or 'none'}, "
            f"not {based_on}; reload and try again",
            field="based_on_version",
        )
