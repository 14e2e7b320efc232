"""Read-side queries for centers, chairs and patients."""

from __future__ import annotations

import contextlib
import datetime as dt

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.models import Center, Patient, Role, User
from app.services.errors import NotFound


def list_centers(session: so.Session) -> list[Center]:
    """Return every center with its opening hours and chairs loaded."""
    return list(
        session.scalars(
            sa.select(Center)
            .options(so.selectinload(Center.opening_hours), so.selectinload(Center.chairs))
            .order_by(Center.name)
        )
    )


def list_patients(session: so.Session, query: str = "", limit: int = 200) -> list[Patient]:
    """Return patients whose name or MRN contains the query, or born on it (YYYY-MM-DD), by
    family name."""
    statement = sa.select(Patient).options(
        so.joinedload(Patient.home_center), so.joinedload(Patient.treating_physician)
    )
    query = query.strip()
    if query:
        like = f"%{query}%"
        matches: list[sa.ColumnElement[bool]] = [
            Patient.family_name.ilike(like),
            Patient.given_name.ilike(like),
            Patient.mrn.ilike(like),
        ]
        with contextlib.suppress(ValueError):
            matches.append(Patient.birth_date == dt.date.fromisoformat(query))
        statement = statement.where(sa.or_(*matches))
    return list(
        session.scalars(
            statement.order_by(Patient.family_name, Patient.given_name).limit(limit)
        ).unique()
    )


def patient_by_mrn(session: so.Session, mrn: str) -> Patient | None:
    """The patient with exactly this MRN, or None."""
    return session.scalar(sa.select(Patient).where(Patient.mrn == mrn.strip()))


def get_center(session: so.Session, center_id: int, lock: bool = False) -> Center:
    """Return a center with hours, chairs and closures, or raise NotFound; with `lock`, its
    row is locked for the transaction and read afresh (what counts is the locked row)."""
    statement = (
        sa.select(Center)
        .where(Center.id == center_id)
        .options(
            so.selectinload(Center.opening_hours),
            so.selectinload(Center.chairs),
            so.selectinload(Center.closures),
        )
    )
    if lock:
        statement = statement.with_for_update().execution_options(populate_existing=True)
    center = session.scalars(statement).one_or_none()
    if center is None:
        raise NotFound(f"center_id: no center {center_id}", field="center_id")
    return center


def list_physicians(session: so.Session) -> list[User]:
    """Return active physicians, by name."""
    return list(
        session.scalars(
            sa.select(User)
            .where(User.role == Role.PHYSICIAN, User.active.is_(True))
            .order_by(User.full_name)
        )
    )
