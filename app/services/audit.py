"""The one place audit rows are written, and the admin's view of them."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.models import AuditEvent
from app.services.context import Actor


def json_safe(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return json_safe(dataclasses.asdict(value))
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def record(
    session: so.Session,
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: object | None,
    *,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Add an audit row to the caller's transaction (it commits or rolls back with it)."""
    event = AuditEvent(
        actor_user_id=actor.user_id,
        actor_label=actor.label,
        action=action,
        entity_type=entity_type,
        entity_id=None if entity_id is None else str(entity_id),
        before=json_safe(before) if before is not None else None,
        after=json_safe(after) if after is not None else None,
        request_id=actor.request_id,
    )
    session.add(event)
    return event


@dataclasses.dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    action: str | None = None
    entity_type: str | None = None
    entity_id: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


@dataclasses.dataclass(frozen=True)
class AuditPage:
    events: list[AuditEvent]
    page: int
    page_size: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


def list_events(
    session: so.Session, filters: AuditFilter, page: int = 1, page_size: int = 50
) -> AuditPage:
    """Return one page of audit rows, newest first, matching every given filter."""
    conditions: list[sa.ColumnElement[bool]] = []
    if filters.actor:
        conditions.append(AuditEvent.actor_label.ilike(f"%{filters.actor}%"))
    if filters.action:
        conditions.append(AuditEvent.action.startswith(filters.action))
    if filters.entity_type:
        conditions.append(AuditEvent.entity_type == filters.entity_type)
    if filters.entity_id:
        conditions.append(AuditEvent.entity_id == filters.entity_id)
    if filters.since:
        conditions.append(AuditEvent.occurred_at >= filters.since)
    if filters.until:
        conditions.append(AuditEvent.occurred_at < filters.until)
    total = session.scalar(sa.select(sa.func.count(AuditEvent.id)).where(*conditions)) or 0
    page = max(1, page)
    events = session.scalars(
        sa.select(AuditEvent)
        .where(*conditions)
        .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
        .limit(page_size)
        .offset((page - 1) * page_size)
    ).all()
    return AuditPage(events=list(events), page=page, page_size=page_size, total=total)
